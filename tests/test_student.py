"""The student, its TFLite export and the feed-vector projection (TensorFlow; SYNTHETIC
inputs)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from edgerec import FeatureSpec  # noqa: E402
from edgerec.trainer.config import StudentConfig  # noqa: E402
from edgerec.trainer.distill import project_int8  # noqa: E402
from edgerec.trainer.export import convert  # noqa: E402
from edgerec.trainer.models.student import Student, field_groups  # noqa: E402

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


def test_tflite_float_matches_keras_over_a_sequence_of_calls() -> None:
    """Regression: the fused TFLite LSTM kept its state between invokes, so the same
    input scored twice differed; the unrolled student is stateless."""
    tf.keras.utils.set_random_seed(1)
    model = Student(SPEC, CFG)
    runner = Interpreter(model_content=convert(model, "float")).get_signature_runner("rank")
    rng = np.random.default_rng(1)
    for n in (5, 5, 9, 5):  # repeated candidate counts: no resize between those calls
        history = _ids(rng, 1, CFG.history_len)
        history[0, :2] = 0  # left padding
        cands = _ids(rng, 1, n)
        keras = model({"history": history, "candidates": cands}).numpy()
        lite = runner(history=history, candidates=cands)["scores"]
        np.testing.assert_allclose(lite, keras, atol=1e-5)


def test_dynamic_int8_export_is_smaller_and_close() -> None:
    tf.keras.utils.set_random_seed(2)
    model = Student(SPEC, CFG)
    rng = np.random.default_rng(2)
    history, cands = _ids(rng, 1, CFG.history_len), _ids(rng, 1, 20)
    float_model, int8_model = convert(model, "float"), convert(model, "dynamic")
    assert len(int8_model) < len(float_model)
    keras = model({"history": history, "candidates": cands}).numpy()
    lite = Interpreter(model_content=int8_model).get_signature_runner("rank")(
        history=history, candidates=cands
    )["scores"]
    assert np.corrcoef(keras[0], lite[0])[0, 1] > 0.9


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
