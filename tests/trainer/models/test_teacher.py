"""edgerec.trainer.models.teacher: its loss is the one ``compile(loss=...)`` computed, and
its scores (TensorFlow; SYNTHETIC inputs)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from edgerec import FeatureSpec  # noqa: E402
from edgerec.trainer.config import TeacherConfig  # noqa: E402
from edgerec.trainer.models.teacher import Teacher, score  # noqa: E402

SPEC = FeatureSpec(n_buckets=97)
CFG = TeacherConfig(history_len=5, dim=8, heads=2, dropout=0.0)
ARTICLES = 40


def _teacher(seed: int, vectors: np.ndarray | None = None) -> Teacher:
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    features = rng.integers(0, SPEC.n_buckets, (ARTICLES, SPEC.width), dtype=np.int32)
    features[0] = 0  # row 0 is padding
    return Teacher(features, vectors, SPEC, CFG)


def test_the_loss_is_what_compile_loss_computed() -> None:
    """The teacher's compute_loss replaced ``compile(loss=SparseCategoricalCrossentropy)``:
    the same number, sample weights included (the mean over examples, not over weights)."""
    model = _teacher(0)
    rng = np.random.default_rng(0)
    inputs = {
        "history": rng.integers(0, ARTICLES, (8, CFG.history_len), dtype=np.int32),
        "candidates": rng.integers(1, ARTICLES, (8, 1 + CFG.negatives), dtype=np.int32),
    }
    labels = np.zeros(8, np.int32)
    weights = rng.uniform(0.5, 2.0, 8).astype(np.float32)
    scores = model(inputs)  # (B, C)
    keras_loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = float(keras_loss(labels, scores, sample_weight=weights))
    assert float(model.compute_loss(inputs, labels, scores, weights)) == pytest.approx(
        expected, rel=1e-6
    )
    # the logged epoch means are not weights of the model (nor saved with them)
    assert not {w.name.split(":")[0] for w in model.weights} & {"total", "count"}


def test_scores_cover_padded_candidate_lists() -> None:
    vectors = np.random.default_rng(1).normal(size=(ARTICLES, 384)).astype(np.float32)
    model = _teacher(1, vectors)
    history = np.array([[0, 0, 3, 4, 5], [0, 0, 0, 0, 0]], np.int32)  # (N, L), one empty
    candidates = np.array([[6, 7, 8, 0], [9, 10, 0, 0]], np.int32)  # (N, Cmax), 0 = padding
    out = score(model, history, candidates, batch=1)
    assert out.shape == (2, 4) and np.isfinite(out).all()


@pytest.mark.parametrize("chunk", [7, 40, 4096])
def test_the_table_encoded_in_chunks_is_the_whole_table(chunk: int) -> None:
    """Issue 16 (memory): ``encode_table`` encodes the article table a chunk of rows at a
    time and gives what one call over every row gives."""
    vectors = np.random.default_rng(2).normal(size=(ARTICLES, 384)).astype(np.float32)
    model = _teacher(2, vectors)
    whole = model.encode_articles(training=False).numpy()
    chunked = model.encode_table(chunk).numpy()
    assert chunked.shape == whole.shape == (ARTICLES, CFG.dim)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
