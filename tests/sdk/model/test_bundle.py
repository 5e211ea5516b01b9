"""edgerec.model (bundle, manifest, runner, runtime) on the committed SYNTHETIC fixture
bundle: loading, checks, the three signatures, golden outputs, determinism. No TensorFlow."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgerec
from edgerec.errors import (
    BundleError,
    IncompatibleModelError,
    ManifestFormatError,
    ManifestMismatchError,
    ModelFormatError,
    ModelValidationError,
    UpdateRejectedError,
)
from edgerec.model import Bundle, ModelRunner, runtime
from edgerec.trainer.data.synthetic import synthetic_articles
from tests.support.updates import FIXTURE


@pytest.fixture()
def bundle_dir(tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture(scope="module")
def ranker() -> ModelRunner:
    return ModelRunner(Bundle.load(FIXTURE))


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_fixture_loads_and_matches_its_goldens(ranker: ModelRunner) -> None:
    manifest = ranker.manifest
    assert manifest.model_version == 1
    assert manifest.quantization["mode"] in {"dynamic", "full"}
    assert manifest.spec.width == edgerec.FeatureSpec.default().width
    assert ranker.check_golden() <= 1e-3
    assert runtime.RUNTIME == "ai-edge-litert"
    assert "tensorflow" not in sys.modules or "edgerec.trainer.models.teacher" in sys.modules


def test_candidate_count_is_resized_and_scores_are_deterministic(ranker: ModelRunner) -> None:
    spec = ranker.manifest.spec
    articles = synthetic_articles(60, seed=5)
    history = edgerec.featurize(articles[:12], spec)
    for n in (1, 7, 48, 7):
        cands = edgerec.featurize(articles[12 : 12 + n], spec)
        first = ranker.rank(history, cands)
        assert first.shape == (n,) and np.isfinite(first).all()
        # the same input twice, and after other calls, scores the same (no state kept)
        ranker.rank(history[:3], edgerec.featurize(articles[:5], spec))
        assert np.array_equal(first, ranker.rank(history, cands))


def test_rank_is_the_dot_product_of_the_two_towers(ranker: ModelRunner) -> None:
    spec = ranker.manifest.spec
    articles = synthetic_articles(30, seed=6)
    history = edgerec.featurize(articles[:20], spec)
    cands = edgerec.featurize(articles[20:], spec)
    user = ranker.user_vector(history)
    items = ranker.item_vectors(cands)
    assert user.shape == (ranker.manifest.vector_dim,)
    assert items.shape == (10, ranker.manifest.vector_dim)
    np.testing.assert_allclose(items @ user, ranker.rank(history, cands), rtol=0.05, atol=0.05)


def test_history_is_cut_to_the_newest_and_left_padded(ranker: ModelRunner) -> None:
    length = ranker.manifest.history_len
    rows = np.arange(1, (length + 5) * 2 + 1, dtype=np.int32).reshape(length + 5, 2)
    rows = np.repeat(rows, ranker.manifest.spec.width // 2 + 1, axis=1)[
        :, : ranker.manifest.spec.width
    ]
    padded = ranker.history_input(rows)
    assert padded.shape == (1, length, ranker.manifest.spec.width)
    assert np.array_equal(padded[0], rows[-length:])
    short = ranker.history_input(rows[:2])
    assert not short[0, :-2].any() and np.array_equal(short[0, -2:], rows[:2])
    assert not ranker.history_input(rows[:0]).any()


def test_model_bytes_must_match_the_manifest(bundle_dir: Path) -> None:
    model = bundle_dir / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped, same length
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        Bundle.load(bundle_dir)
    model.write_bytes(bytes(data[:-10]))
    with pytest.raises(BundleError, match="bytes"):
        Bundle.load(bundle_dir)


def test_missing_files_and_bad_json_are_bundle_errors(bundle_dir: Path) -> None:
    (bundle_dir / "model.tflite").unlink()
    with pytest.raises(BundleError, match=r"no model\.tflite"):
        Bundle.load(bundle_dir)
    (bundle_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestFormatError, match="invalid JSON"):
        Bundle.load(bundle_dir)
    (bundle_dir / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        Bundle.load(bundle_dir)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace('"history_len"', '"history_len": 1, "history_len"', 1), "duplicate"),
        (lambda t: t.replace('"tolerance": 0.001', '"tolerance": NaN', 1), "NaN"),
        (lambda t: t.replace('"metrics": {', '"metrics": {"x": 1e400, ', 1), "range"),
        (
            lambda t: t.replace(
                '"metrics": {', '"metrics": {"x": ' + "[" * 5000 + "]" * 5000 + ", ", 1
            ),
            "nested",
        ),
        (lambda t: t.replace('"file": "model.tflite"', '"file": "../evil"', 1), "model.file"),
    ],
    ids=["duplicate-key", "nan", "1e400", "deep-nesting", "dotdot"],
)
def test_one_strict_manifest_parser_for_a_local_bundle(
    bundle_dir: Path, edit: Any, match: str
) -> None:
    """The parser of the update path is the one Bundle.load uses (C14 for a bundle folder)."""
    path = bundle_dir / "manifest.json"
    text = path.read_text()
    edited = edit(text)
    assert edited != text
    path.write_text(edited)
    with pytest.raises(ManifestFormatError, match=match):
        Bundle.load(bundle_dir)


def test_one_error_per_fault_wherever_it_is_found() -> None:
    """A bundle's faults are the same classes on the update path and on disk."""
    for cls in (
        ManifestFormatError,
        ManifestMismatchError,
        IncompatibleModelError,
        ModelFormatError,
        ModelValidationError,
    ):
        assert issubclass(cls, BundleError) and issubclass(cls, UpdateRejectedError)
    with pytest.warns(DeprecationWarning):
        from edgerec.errors import ModelLoadError
    assert ModelLoadError is ModelFormatError
    with pytest.warns(DeprecationWarning):
        from edgerec.errors import IncompatibleUpdateError
    assert IncompatibleUpdateError is IncompatibleModelError


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"schema_version": 2}, IncompatibleModelError, "schema 2"),
        ({"schema_version": "1"}, BundleError, "schema_version has the wrong type"),
        ({"model_version": 0}, BundleError, ">= 1"),
        ({"model_version": True}, BundleError, "wrong type"),
        ({"golden": []}, BundleError, "golden"),
        ({"feature_spec": {"spec_version": 99}}, IncompatibleModelError, "feature_spec"),
        ({"signatures": {"rank": {}}}, BundleError, "missing"),
    ],
)
def test_manifest_schema_errors(
    bundle_dir: Path, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    _edit_manifest(bundle_dir, **changes)
    with pytest.raises(error, match=match):
        Bundle.load(bundle_dir)


def test_a_model_that_is_not_tflite_is_refused(bundle_dir: Path) -> None:
    import hashlib

    junk = b"not a flatbuffer" * 100
    (bundle_dir / "model.tflite").write_bytes(junk)
    _edit_manifest(
        bundle_dir,
        model={
            "file": "model.tflite",
            "bytes": len(junk),
            "sha256": hashlib.sha256(junk).hexdigest(),
        },
    )
    with pytest.raises(ModelFormatError):
        ModelRunner(Bundle.load(bundle_dir))


def test_golden_mismatch_is_a_model_load_error(bundle_dir: Path) -> None:
    data = json.loads((bundle_dir / "manifest.json").read_text())
    data["golden"][0]["scores"] = [s + 1.0 for s in data["golden"][0]["scores"]]
    (bundle_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelValidationError, match="golden case 0"):
        ModelRunner(Bundle.load(bundle_dir)).check_golden()


def test_fixture_is_small_and_labelled_synthetic() -> None:
    assert (FIXTURE / "model.tflite").stat().st_size < 200_000
    assert "SYNTHETIC" in (FIXTURE / "README.md").read_text()


def test_bundle_benchmark_runs_and_reports_the_fixture(tmp_path: Path) -> None:
    """benchmarks/bench_bundle.py, shrunk: the JSON it prints names the fixture's real size
    and times all three signatures beside their bare invoke (not a speed assertion)."""
    import subprocess

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_bundle.py"
    args = ["--calls", "3", "--candidates", "7", "--history", "5"]
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    size = result["size"]
    assert size["model_bytes"] == (FIXTURE / "model.tflite").stat().st_size
    assert size["bundle_bytes"] == size["model_bytes"] + size["manifest_bytes"]
    assert size["within_budget"] is True
    assert result["inputs"]["candidates"] == 7
    for name in ("rank", "items", "user"):
        assert result["latency"][name]["p50_ms"] > 0
        assert result["latency"][name]["bare_invoke"]["p50_ms"] > 0
