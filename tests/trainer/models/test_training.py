"""edgerec.trainer.models.training: early stopping on held-out ranking AUC (TensorFlow;
SYNTHETIC inputs)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from edgerec.trainer.data.training_examples import Examples  # noqa: E402
from edgerec.trainer.models.training import ValidationRanking, ranking_auc  # noqa: E402


def test_ranking_auc_counts_ties_as_half() -> None:
    scores = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(ranking_auc(scores), [1.0, 0.25])


def _fit(keep_start: bool, aucs: list[float]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train a tiny model for len(aucs) - 1 epochs while the validation AUC follows ``aucs``
    (before training, then after each epoch); returns the start and the kept weights."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    start = [w.copy() for w in model.get_weights()]
    sequence: Iterator[float] = iter(aucs)

    def scorer(history: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        auc = next(sequence)  # one negative: the AUC is 1 where the positive wins
        wins = np.arange(len(candidates)) < auc * len(candidates)
        return np.where(wins[:, None], [[1.0, 0.0]], [[0.0, 1.0]]).astype(np.float32)

    validation = Examples(
        np.zeros((10, 3), np.int32), np.ones((10, 2), np.int32), np.zeros(10, np.int8)
    )
    monitor = ValidationRanking(validation, patience=5, score=scorer, keep_start=keep_start)
    x = np.ones((8, 2), np.float32)
    model.fit(x, x[:, :1] * 3.0, epochs=len(aucs) - 1, callbacks=[monitor], verbose=0)
    assert monitor.history == aucs
    return start, model.get_weights()


def test_the_teacher_keeps_its_start_when_training_only_hurts() -> None:
    start, kept = _fit(keep_start=True, aucs=[0.9, 0.5, 0.6])
    assert all(np.array_equal(a, b) for a, b in zip(start, kept, strict=True))


def test_a_student_never_keeps_its_random_start() -> None:
    start, kept = _fit(keep_start=False, aucs=[0.9, 0.5, 0.6])
    assert not all(np.array_equal(a, b) for a, b in zip(start, kept, strict=True))
