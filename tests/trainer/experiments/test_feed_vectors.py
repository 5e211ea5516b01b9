"""edgerec.trainer.experiments.feed_vectors: the feed-vector student converts and reads its
vectors, and the int8 projection keeps the main axes (TensorFlow; SYNTHETIC inputs)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from edgerec import FeatureSpec  # noqa: E402
from edgerec.trainer.config import StudentConfig  # noqa: E402
from edgerec.trainer.experiments.feed_vectors import project_int8  # noqa: E402
from edgerec.trainer.export import convert  # noqa: E402
from edgerec.trainer.models.student import Student  # noqa: E402

SPEC = FeatureSpec(n_buckets=512)


def _ids(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(1, SPEC.n_buckets, (*shape, SPEC.width), dtype=np.int32)


def test_feed_vector_variant_converts_and_uses_the_vectors() -> None:
    cfg = StudentConfig(history_len=6, embed_dim=4, dim=8, feed_vector_dim=3)
    tf.keras.utils.set_random_seed(3)
    model = Student(SPEC, cfg)
    rng = np.random.default_rng(3)
    history, cands = _ids(rng, 1, 6), _ids(rng, 1, 4)
    hv = rng.normal(size=(1, 6, 3)).astype(np.float32)
    cv = rng.normal(size=(1, 4, 3)).astype(np.float32)
    runner = Interpreter(model_content=convert(model, "float")).get_signature_runner("rank")
    a = runner(history=history, history_vectors=hv, candidates=cands, candidate_vectors=cv)
    b = runner(history=history, history_vectors=hv, candidates=cands, candidate_vectors=-cv)
    assert not np.allclose(a["scores"], b["scores"])


def test_project_int8_keeps_the_main_axes_and_padding() -> None:
    rng = np.random.default_rng(4)
    basis = rng.normal(size=(2, 16))
    vectors = (rng.normal(size=(200, 2)) * [5.0, 2.0]) @ basis + 0.01 * rng.normal(size=(200, 16))
    vectors = np.vstack([np.zeros((1, 16)), vectors]).astype(np.float32)
    codes, scale, dequantized = project_int8(vectors, 2)
    assert codes.dtype == np.int8 and codes.shape == (201, 2)
    assert np.abs(codes).max() == 127 and not dequantized[0].any()
    # two axes carry almost all of the variance: distances survive the projection
    d_full = np.linalg.norm(vectors[1] - vectors[2])
    d_proj = np.linalg.norm(dequantized[1] - dequantized[2])
    assert abs(d_full - d_proj) < 0.1 * d_full + 2 * scale
