"""edgerec.trainer.models.distillation: the student's loss, term by term (TensorFlow)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from edgerec.trainer.models import distillation  # noqa: E402
from edgerec.trainer.models.distillation import distillation_loss  # noqa: E402


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_the_loss_is_the_temperature_scaled_kl_plus_the_click_loss() -> None:
    rng = np.random.default_rng(0)
    student = rng.normal(size=(6, 5)).astype(np.float32)  # (B, C)
    teacher = rng.normal(size=(6, 5)).astype(np.float32)
    labels = np.zeros(6, np.int32)
    alpha, t = 0.7, 2.0
    got = distillation_loss(student, labels, teacher, alpha=alpha, temperature=t).numpy()
    click = -np.log(_softmax(student)[:, 0])
    target, q = _softmax(teacher / t), _softmax(student / t)
    kl = (target * (np.log(target) - np.log(q))).sum(-1)
    np.testing.assert_allclose(got, (1 - alpha) * click + alpha * t * t * kl, rtol=1e-4)


def test_without_a_teacher_it_is_the_click_loss() -> None:
    scores = tf.constant([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    labels = tf.constant([0, 0])
    click = tf.keras.losses.sparse_categorical_crossentropy(labels, scores, from_logits=True)
    for teacher, alpha in ((None, 0.7), (scores * 3.0, 0.0)):
        got = distillation_loss(scores, labels, teacher, alpha=alpha, temperature=2.0)
        np.testing.assert_array_equal(got.numpy(), click.numpy())


def test_the_docstring_example() -> None:
    assert doctest.testmod(distillation, optionflags=doctest.ELLIPSIS).failed == 0
