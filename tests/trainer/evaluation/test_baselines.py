"""edgerec.trainer.evaluation.baselines and `edgerec-train evaluate` on SYNTHETIC data (no
TensorFlow): every baseline's row, the planted category signal found, the report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgerec.trainer import cli
from edgerec.trainer.data.synthetic import write_mind_layout
from edgerec.trainer.evaluation.baselines import MiniLMCosine


def test_evaluate_on_synthetic_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_mind_layout(tmp_path / "data", seed=3)
    assert "SYNTHETIC" in (data / "README.md").read_text()
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
                "100",
                "--baselines",
                "random",
                "popularity",
                "category",
                "tfidf",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["n_impressions"] == 200
    models = report["models"]
    assert set(models) == {"random", "popularity", "category", "tfidf"}
    for row in models.values():
        assert row["auc_ci"][0] <= row["auc"] <= row["auc_ci"][1]
    # The synthetic readers prefer categories: category affinity must find that signal.
    assert models["category"]["auc_ci"][0] > models["random"]["auc_ci"][1]
    assert "| category |" in (out / "report.md").read_text()
    # issue 18's views: every row by history-category group (the synthetic readers click
    # their own categories, so "match" dominates), and paired against minilm when scored
    compared = report["comparison"]
    assert set(compared) == set(models)
    groups = compared["category"]["auc_by_group"]
    assert groups["match"]["n"] + groups["no_match"]["n"] == 200
    assert groups["match"]["n"] > groups["no_match"]["n"]
    assert "auc_vs_minilm" not in compared["category"]  # minilm not among the baselines
    assert "AUC, no match" in (out / "report.md").read_text()
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "coverage eval" in capsys.readouterr().err


def test_minilm_cosine_scores() -> None:
    vecs = {k: np.eye(3, dtype=np.float32)[i] for i, k in enumerate("abc")}
    scorer = MiniLMCosine(vecs)
    scores = scorer.score(["a", "a", "unknown"], ["a", "b", "zzz"])
    assert scores.tolist() == [1.0, 0.0, 0.0]
    assert scorer.score([], ["a"]).tolist() == [0.0]
