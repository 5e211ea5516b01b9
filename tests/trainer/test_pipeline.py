"""edgerec.trainer.pipeline: `edgerec-train pipeline --config tiny` end to end on SYNTHETIC
data, and `edgerec-train export` on its run (TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgerec import read_jsonl
from edgerec.features.signals import FeedSignals
from edgerec.model.manifest import FeedHead
from edgerec.ranking import Ranker
from edgerec.trainer import cli
from edgerec.trainer.data.synthetic import synthetic_articles, write_mind_layout

pytestmark = pytest.mark.trainer


def test_tiny_pipeline_trains_a_teacher_that_finds_the_signal(tmp_path: Path) -> None:
    data = write_mind_layout(tmp_path / "data", seed=1)
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "pipeline",
                "--config",
                "tiny",
                "--data",
                str(data),
                "--out",
                str(out),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    models = report["models"]
    assert {"random", "popularity", "category", "tfidf", "teacher"} <= set(models)
    assert "minilm" not in models  # the tiny preset skips the slow encoder
    teacher, random = models["teacher"], models["random"]
    assert teacher["auc_ci"][0] > random["auc_ci"][1]  # the planted preference is learned
    saved = json.loads((out / "teacher" / "config.json").read_text())
    assert saved["teacher"]["dim"] == 32 and saved["minilm"] is False
    assert (out / "teacher" / "teacher.weights.h5").stat().st_size > 0

    # the distilled student (the ablations are the research preset's), the int8 export
    # measured through the on-device path, and the bundle
    assert {"student_float", "student_int8"} <= set(models)
    assert "student_no_teacher" not in models and "teacher_no_minilm" not in models
    for name in ("teacher", "student_float"):  # issue 16: each model's throughput
        fit = report["training"][name]
        assert fit["examples_per_s"] > 0 and fit["timed_examples"] > 0
    assert report["timings_s"]["examples"] > 0  # the shards, prepared once
    assert set(report["peak_rss_mb"]) == set(report["timings_s"])
    assert (out / "examples" / "examples.json").is_file()
    # issue 18's views of every row: AUC by history-category group (no minilm scored here,
    # so no paired difference against it)
    compared = report["comparison"]
    assert set(compared) == set(models)
    for name, part in compared.items():
        groups = part["auc_by_group"]
        assert 0 < groups["match"]["n"] + groups["no_match"]["n"] <= report["n_impressions"]
        assert "auc_vs_minilm" not in part, name
    assert models["student_int8"]["auc_ci"][0] > random["auc_ci"][1]
    export = report["export"]
    assert export["shipped"] in {"dynamic", "full"}
    assert export["bundle_bytes"] <= 1_000_000
    float_variant = export["variants"]["float"]
    assert float_variant["parity_vs_keras"]["max_abs_diff"] < 1e-3  # same graph, float
    assert float_variant["parity_vs_keras"]["top10_agreement"] > 0.99
    shipped = export["variants"][export["shipped"]]
    assert shipped["parity_vs_tflite_float"]["top10_agreement"] >= 0.9
    assert shipped["auc"] == models["student_int8"]["auc"]

    from edgerec.model import Bundle, ModelRunner

    bundle = Bundle.load(out / "bundle")
    assert ModelRunner(bundle).check_golden() <= 1e-3
    assert bundle.manifest.metrics["auc"] == models["student_int8"]["auc"]
    assert bundle.manifest.quantization["mode"] == export["shipped"]
    assert bundle.manifest.cold_start_prior["category"]

    # issue 18: the feed signals (the tiny feed: the click prior only, no encoder), every
    # weight chosen on validation impressions; the bundle declares them; without them the
    # shipped bundle ranks exactly as the student does
    feed = export["feed"]
    assert feed["encoder"] is None and feed["vector_bytes_per_article"] == 0
    assert feed["n_validation_impressions"] > 20
    assert set(feed["validation_auc"]) == {
        "shipped",
        "signals_prior",
        "student+prior",
        "teacher+signals",
    }
    assert {"shipped", "shipped_without_signals", "signals_prior", "student+prior"} <= set(models)
    assert models["shipped_without_signals"] == models["student_int8"]
    assert bundle.manifest.spec.signals == FeedSignals(prior=True)
    assert bundle.manifest.feed_head == FeedHead.from_dict(feed["head"])
    assert bundle.manifest.metrics["with_feed_signals"]["auc"] == models["shipped"]["auc"]
    assert "Feed signals" in (out / "report.md").read_text()

    # the publisher: `edgerec-train feed` adds each article's prior; the device takes it
    articles = synthetic_articles(30, seed=5)
    plain = tmp_path / "feed.jsonl"
    plain.write_text("".join(json.dumps(a) + "\n" for a in articles))
    assert (
        cli.main(
            [
                "feed",
                "--run",
                str(out),
                "--articles",
                str(plain),
                "--out",
                str(tmp_path / "fed.jsonl"),
            ]
        )
        == 0
    )
    fed = read_jsonl(tmp_path / "fed.jsonl")
    assert [a["id"] for a in fed] == [a["id"] for a in articles]
    assert all(isinstance(a["prior"], float) and "vector" not in a for a in fed)
    assert len({a["prior"] for a in fed}) > 1  # categories differ in click rate
    ranker = Ranker(bundle)
    ranker.load_reader(fed[:5])
    ranked = ranker.recommend(fed[5:], k=25, now=0.0, exclude_read=False)
    assert len(ranked) == 25

    # `edgerec-train export` rebuilds a bundle from the saved student
    again = out / "reexported"
    assert cli.main(["export", "--run", str(out), "--out", str(again), "--version", "7"]) == 0
    rebuilt = Bundle.load(again)
    assert rebuilt.manifest.model_version == 7
    assert ModelRunner(rebuilt).check_golden() <= 1e-3
    assert rebuilt.manifest.metrics == bundle.manifest.metrics
    assert rebuilt.manifest.feed_head == bundle.manifest.feed_head  # the run's feed kept
    assert rebuilt.manifest.spec == bundle.manifest.spec


def test_export_without_a_run_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", "--run", str(tmp_path)]) == 1
    assert "no saved student" in capsys.readouterr().err


def test_pipeline_config_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(
            ["pipeline", "--config", "tiny", "--set", "teacher.dims=3", "--out", str(tmp_path)]
        )
        == 1
    )
    assert capsys.readouterr().err.strip() == (
        "edgerec-train: error: unknown config key 'teacher.dims'"
    )


def test_tiny_pipeline_on_the_generic_interactions_layout(tmp_path: Path) -> None:
    from edgerec.trainer.data.synthetic import write_interactions_layout

    data = write_interactions_layout(tmp_path / "data", seed=2)
    out = tmp_path / "out"
    args = ["pipeline", "--config", "tiny", "--data", str(data), "--out", str(out)]
    args += ["--set", "teacher.epochs=1", "--set", "student.epochs=1"]  # the layout is tested
    assert cli.main([*args, "--cache", str(tmp_path / "cache"), "--eval-fraction", "0.2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "interactions.csv" in report["eval_file"]
    assert 0 < report["n_impressions"] < 1500 * 0.3  # only the last fifth of the log
    models = report["models"]
    assert models["teacher"]["auc_ci"][0] > models["random"]["auc_ci"][1]
