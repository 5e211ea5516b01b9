"""edgerec.trainer.models.student: the towers, and the training wrapper's loss
(TensorFlow; SYNTHETIC inputs)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from edgerec import FeatureSpec  # noqa: E402
from edgerec.trainer.config import StudentConfig  # noqa: E402
from edgerec.trainer.models.distillation import distillation_loss  # noqa: E402
from edgerec.trainer.models.student import Student, StudentTrainer, field_groups  # noqa: E402

SPEC = FeatureSpec(n_buckets=512)
CFG = StudentConfig(history_len=6, embed_dim=4, dim=8)


def _ids(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(1, SPEC.n_buckets, (*shape, SPEC.width), dtype=np.int32)


def test_field_groups_cover_every_column_but_the_id() -> None:
    groups = field_groups(SPEC, use_id=False)
    assert groups.shape == (SPEC.width, len(SPEC.fields) - 1)
    assert groups[SPEC.columns["id"]].sum() == 0
    assert groups.sum() == SPEC.width - 1
    assert field_groups(SPEC, use_id=True).sum() == SPEC.width


def test_padding_slots_and_padding_ids_do_not_move_the_item_vector() -> None:
    tf.keras.utils.set_random_seed(0)
    model = Student(SPEC, CFG)
    rng = np.random.default_rng(0)
    row = _ids(rng, 1)
    row[0, SPEC.columns["abstract"]] = 0  # an article without an abstract
    changed_id = row.copy()
    changed_id[0, SPEC.columns["id"]] = 7  # the id column is not used by default
    a = model.item_vectors(tf.constant(row)).numpy()
    b = model.item_vectors(tf.constant(changed_id)).numpy()
    np.testing.assert_allclose(a, b, atol=1e-6)


def _batch(
    rng: np.random.Generator, articles: int, width: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    inputs = {
        "history": rng.integers(0, articles, (8, CFG.history_len), dtype=np.int32),
        "candidates": rng.integers(1, articles, (8, width), dtype=np.int32),
    }
    return inputs, np.zeros(8, np.int32), rng.uniform(0.5, 2.0, 8).astype(np.float32)


def test_the_trainer_loss_is_the_weighted_mean_of_the_distillation_loss() -> None:
    tf.keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    features = rng.integers(0, SPEC.n_buckets, (30, SPEC.width), dtype=np.int32)  # (A, F)
    features[0] = 0

    def teacher(history: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        return tf.cast(candidates % 5, tf.float32)  # (B, C): any fixed scores

    trainer = StudentTrainer(Student(SPEC, CFG), features, CFG, teacher)
    inputs, labels, weights = _batch(rng, 30, 5)
    scores = trainer(inputs)  # (B, C)
    per_example = distillation_loss(
        scores,
        labels,
        teacher(inputs["history"], inputs["candidates"]),
        alpha=CFG.alpha,
        temperature=CFG.temperature,
    ).numpy()
    loss = float(trainer.compute_loss(inputs, labels, scores, weights))
    assert loss == pytest.approx(float((per_example * weights).sum() / weights.sum()), rel=1e-6)
    # its logged epoch metrics are not weights: only the student's variables are
    assert len(trainer.weights) == len(trainer.student.weights)


@pytest.mark.parametrize("layout", ["left-padded", "short-batch", "zeros-anywhere"])
def test_the_training_path_scores_what_the_exported_student_scores(layout: str) -> None:
    """The trainer's fast path (each distinct article once; the LSTM from the shared
    padding state over the last T steps only) equals ``Student.call`` and the unrolled copy
    that is exported, to the float."""
    from edgerec.trainer.models.student import gather_inputs, unrolled_copy

    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    features = rng.integers(1, SPEC.n_buckets, (40, SPEC.width), dtype=np.int32)  # (A, F)
    features[0] = 0
    length = CFG.history_len
    history = np.zeros((7, length), np.int32)
    if layout == "zeros-anywhere":
        history = rng.integers(0, 40, (7, length), dtype=np.int32)
    else:
        longest = length if layout == "left-padded" else 2
        for row, n in enumerate(rng.integers(0, longest + 1, 7)):
            history[row, length - n :] = rng.integers(1, 40, n)
    candidates = rng.integers(1, 40, (7, 5), dtype=np.int32)
    student = Student(SPEC, CFG, unroll=False)
    trainer = StudentTrainer(student, features, CFG, None)
    fast = trainer({"history": history, "candidates": candidates}).numpy()
    inputs = gather_inputs(tf.constant(features), None, history, candidates)
    direct = student(inputs).numpy()
    exported = unrolled_copy(student, inputs)(inputs).numpy()
    np.testing.assert_allclose(fast, direct, atol=1e-5)
    np.testing.assert_allclose(fast, exported, atol=1e-5)
    assert exported.std() > 0  # a real comparison, not constants
