"""edgerec.trainer.export: TFLite conversion, the bundle written through the SDK's manifest
code, and `edgerec-train export`'s errors (TensorFlow; SYNTHETIC inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.trainer

tf = pytest.importorskip("tensorflow")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from edgerec import FeatureSpec  # noqa: E402
from edgerec.model import MANIFEST_FILE, Bundle, Manifest, ModelRunner  # noqa: E402
from edgerec.trainer import cli  # noqa: E402
from edgerec.trainer.config import StudentConfig  # noqa: E402
from edgerec.trainer.errors import ExportError  # noqa: E402
from edgerec.trainer.export import (  # noqa: E402
    choose_quantization,
    convert,
    make_bundle,
    reexport,
)
from edgerec.trainer.models.student import Student  # noqa: E402

SPEC = FeatureSpec(n_buckets=512)
CFG = StudentConfig(history_len=6, embed_dim=4, dim=8)


def _ids(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(1, SPEC.n_buckets, (*shape, SPEC.width), dtype=np.int32)


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


def test_the_bundle_is_written_through_the_sdk_and_checks_its_goldens(tmp_path: Path) -> None:
    tf.keras.utils.set_random_seed(4)
    model = Student(SPEC, CFG)
    rng = np.random.default_rng(4)
    golden = [(_ids(rng, 4), _ids(rng, 3)), (_ids(rng, 9)[-CFG.history_len :], _ids(rng, 8))]
    bundle = make_bundle(
        tmp_path / "bundle",
        model,
        convert(model, "dynamic"),
        model_version=3,
        quantization={"mode": "dynamic"},
        golden_inputs=golden,
        metrics={"auc": 0.5},
        cold_start_prior={"default": 0.1},
    )
    again = Bundle.load(tmp_path / "bundle")
    assert again.manifest == bundle.manifest and again.manifest.model_version == 3
    assert [len(case["scores"]) for case in again.manifest.golden] == [3, 8]
    assert ModelRunner(again).check_golden() <= 1e-6  # the goldens are the model's own
    written = (tmp_path / "bundle" / MANIFEST_FILE).read_bytes()
    assert written == again.manifest.to_json()  # Manifest's own bytes, not a second writer
    assert not (tmp_path / "bundle" / ".golden").exists()
    rebuilt = Manifest.parse(written)
    assert rebuilt.history_len == CFG.history_len and rebuilt.vector_dim == CFG.dim


def test_choose_quantization() -> None:
    dynamic = {"auc": 0.700, "invoke_p50_ms_50x500": 0.5}
    full = {"auc": 0.701, "invoke_p50_ms_50x500": 1.5}
    assert choose_quantization({"dynamic": dynamic, "full": full}, "auto")[0] == "dynamic"
    assert choose_quantization({"dynamic": dynamic, "full": full}, "full")[0] == "full"
    better = {**full, "auc": 0.75}
    assert choose_quantization({"dynamic": dynamic, "full": better}, "auto")[0] == "full"
    assert choose_quantization({"dynamic": dynamic, "full": {"error": "x"}}, "auto")[0] == (
        "dynamic"
    )
    with pytest.raises(ExportError, match="no int8 variant converted"):
        choose_quantization({"float": dynamic, "dynamic": {"error": "boom"}}, "auto")


def test_an_unusable_saved_student_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "student"
    saved.mkdir()
    (saved / "config.json").write_text(json.dumps({"student": {"dims": 3}}))
    with pytest.raises(ExportError, match="unusable"):
        reexport(tmp_path, out=None, quantization="dynamic", version=1)
    assert cli.main(["export", "--run", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgerec-train: error: the saved student in") and err.count("\n") == 1
