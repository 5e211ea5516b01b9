"""Run by tests/trainer/models/test_distribute.py in a child process (the CPU must be split
into logical devices before TensorFlow starts): one SGD step of the teacher and of the
distilling student on the same SYNTHETIC batch, once on one device and once under
``distribution("mirrored", cpu_replicas=2)`` (or ``"multiworker"``: run once per worker,
with ``TF_CONFIG`` set), from the same weights. Both train the one way the trainer trains:
their own ``compute_loss`` under Keras's ``fit()``. Prints JSON: the largest weight
difference after the step and how far the step moved the weights.

SGD, not Adam: Adam's update does not depend on the gradient's scale, so it would hide a
loss that is not divided across replicas.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from edgerec import FeatureSpec
from edgerec.trainer.config import StudentConfig, TeacherConfig
from edgerec.trainer.models.student import Student, StudentTrainer
from edgerec.trainer.models.teacher import Teacher
from edgerec.trainer.models.training import distribution

keras = tf.keras


def _batch(rng: np.random.Generator, articles: int, length: int, width: int) -> tf.data.Dataset:
    n = 8  # one global batch: 4 examples per replica
    history = rng.integers(0, articles, (n, length), dtype=np.int32)
    candidates = rng.integers(1, articles, (n, width), dtype=np.int32)
    weights = rng.uniform(0.5, 2.0, n).astype(np.float32)  # unequal, as impression weights
    labels = np.zeros(n, np.int32)
    data = ({"history": history, "candidates": candidates}, labels, weights)
    return tf.data.Dataset.from_tensor_slices(data).batch(n)


def _step(make, data, start, strategy):  # type: ignore[no-untyped-def]
    with strategy.scope():
        model = make()
        model.compile(optimizer=keras.optimizers.SGD(0.5))  # the loss is the model's own
        for inputs, _, _ in data:
            model(inputs)
        if start is not None:
            for var, value in zip(model.trainable_weights, start, strict=True):
                var.assign(value)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(data, epochs=1, verbose=0)
    return before, [w.numpy() for w in model.trainable_weights]


def _compare(make, data, mirrored):  # type: ignore[no-untyped-def]
    before, one = _step(make, data, None, tf.distribute.get_strategy())
    _, two = _step(make, data, before, mirrored)
    return {
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(one, before, strict=True)),
        "max_diff": max(float(np.abs(a - b).max()) for a, b in zip(one, two, strict=True)),
    }


def main(mode: str) -> None:
    mirrored = distribution(mode, cpu_replicas=2 if mode == "mirrored" else 0)
    tf.keras.utils.set_random_seed(0)  # every worker starts from the same weights
    rng = np.random.default_rng(0)
    spec = FeatureSpec(n_buckets=97)
    articles = 40
    features = rng.integers(0, spec.n_buckets, (articles, spec.width), dtype=np.int32)
    features[0] = 0  # row 0 is padding
    out = {"replicas": mirrored.num_replicas_in_sync}

    tc = TeacherConfig(history_len=5, dim=8, heads=2, dropout=0.0)
    out["teacher"] = _compare(
        lambda: Teacher(features, None, spec, tc),
        _batch(rng, articles, tc.history_len, 1 + tc.negatives),
        mirrored,
    )

    sc = StudentConfig(history_len=4, n_buckets=spec.n_buckets, embed_dim=4, dim=8)

    def teacher(history: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        return tf.cast(candidates % 7, tf.float32)  # any fixed scores: exercises the KL term

    out["student"] = _compare(
        lambda: StudentTrainer(Student(spec, sc), features, sc, teacher),
        _batch(rng, articles, sc.history_len, 1 + sc.negatives),
        mirrored,
    )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])  # mirrored | multiworker (one process per worker, TF_CONFIG set)
