"""Every SDK benchmark the README quotes runs, shrunk, and prints the JSON the README's
figures come from: the hardware, the inputs, and each figure beside its baseline from the
same run. Structure only: speed is never asserted in a test. (bench_bundle.py has its own
test in test_bundle.py; bench_pipeline.py is `edgerec-train pipeline` on MIND, whose tiny
form test_pipeline.py runs.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> dict[str, Any]:
    # Benchmarks measure what ships, the compiled hashing: never the forced pure twin.
    env = {k: v for k, v in os.environ.items() if k != "EDGEREC_PURE_PYTHON"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    hardware = result["hardware"]
    assert hardware["cpu"] and hardware["cores_visible"] >= 1 and hardware["python"]
    return result


def test_bench_hashing_reports_each_baseline_beside_the_native_path() -> None:
    result = _run("bench_hashing.py", "--tokens", "20000", "--repeat", "1", "--feed-repeat", "20")
    speed = result["token_hashing"]["tokens_per_s"]
    ratios = result["token_hashing"]["ratios"]
    assert speed["sklearn_feature_hasher"] > 0 and speed["mmh3_per_item_loop"] > 0
    expected = speed["native_hash_strings"] / speed["sklearn_feature_hasher"]
    assert ratios["native_vs_sklearn_feature_hasher"] == pytest.approx(expected, rel=0.01)
    feeds = result["featurize_500_articles"]
    assert {"realistic_2pct_non_ascii", "ascii_only", "heavy_50pct_non_ascii"} <= set(feeds)
    assert all(feed["articles"] == 500 for feed in feeds.values())


def test_bench_history_measures_encrypted_beside_plain_sqlite() -> None:
    result = _run(
        "bench_history.py", "--events", "40", "--rounds", "1", "--reads", "10", "--capped", "10"
    )
    append = result["append_durable"]
    ratio = append["plaintext_events_per_s"] / append["encrypted_events_per_s"]
    assert append["encrypted_cost_ratio"] == pytest.approx(ratio, rel=0.01)
    read = result["read_recent_200"]
    assert read["encrypted_ms_p50"] > 0 and read["plaintext_ms_p50"] > 0
    assert isinstance(append["met"], bool) and isinstance(read["met"], bool)
    capped = result["append_durable_at_retention_cap"]
    assert capped["cap"] == 20 and capped["appends"] == 10
    ratio = capped["plaintext_events_per_s"] / capped["encrypted_events_per_s"]
    assert capped["encrypted_cost_ratio"] == pytest.approx(ratio, rel=0.05)


def test_d5_bench_history_large_reports_each_phase_beside_a_small_store() -> None:
    """D5, shrunk (the 5-million-event run is reported in docs/results.md)."""
    result = _run(
        "bench_history_large.py", "--events", "3000", "--baseline-events", "600", "--batch", "1000"
    )
    phases = {"fill", "open", "recent", "append", "prune_age", "prune_count", "verify", "forget"}
    for store in (result["large"], result["baseline"]):
        assert phases | {"erase"} == set(store)
        assert all(store[name]["peak_rss_mb"] > 0 for name in store)
    large = result["large"]
    assert large["fill"]["events"] == 3000 and large["prune_age"]["pruned"] == 300
    assert large["prune_count"]["left"] == large["verify"]["verified"] == 2500
    assert large["forget"]["removed"] == 1 and large["erase"]["db_mb_after"] < 1
    assert set(result["peak_rss_ratio_large_vs_baseline"]) == phases | {"erase"}


def test_a12_bench_nonces_finds_no_repeated_nonce_and_a_respected_key_use_limit() -> None:
    """A12, shrunk (the 10^6-record run is reported in docs/results.md)."""
    args = ["--records", "3000", "--rotation-records", "3000", "--batch", "250"]
    result = _run("bench_nonces.py", *args, "--key-use-limit", "600", "--max-events", "200")
    unique, limit = result["uniqueness_from_raw_rows"], result["key_use_limit"]
    assert unique["records_in_rows"] == unique["distinct_key_nonce_pairs"] == 3000
    assert unique["duplicate_pairs"] == 0 and limit["duplicate_pairs"] == 0
    assert limit["max_encryptions_under_one_key"] <= 600 < limit["encryptions"]
    assert limit["data_keys_used"] > 1 and result["ok"] is True


def test_bench_recommend_measures_recommend_beside_the_bare_invoke() -> None:
    result = _run("bench_recommend.py", "--calls", "20", "--cold-runs", "1")
    assert result["inputs"] == {
        "history_items": 50,
        "candidates": 500,
        "k": 10,
        "articles": "synthetic (seeded)",
        "calls": 20,
    }
    steady, bare = result["recommend"]["steady"], result["bare_invoke_rank"]
    ratio = steady["p50_ms"] / bare["p50_ms"]
    assert result["ratio_p50_recommend_vs_bare_invoke"] == pytest.approx(ratio, abs=0.01)
    cold = result["cold_start"]
    assert cold["tensorflow_imported"] is False and cold["max_peak_rss_mb"] > 0
    assert set(result["targets"]) >= {"p50_le_1ms", "p99_le_3ms", "p50_le_2x_bare_invoke"}
    assert result["record_read_marking_an_impression"]["impressions_in_the_log"] > 100
    shadow = result["shadow"]
    with_, without = shadow["with_shadow"], shadow["without_shadow"]
    ratio = with_["steady"]["p50_ms"] / without["steady"]["p50_ms"]
    assert shadow["ratio_p50_with_vs_without"] == pytest.approx(ratio, abs=0.01)
    assert with_["cold_start_median_s"] > 0 and without["cold_start_max_peak_rss_mb"] > 0
    assert result["targets"]["shadow_p50_le_2x_without"] == shadow["target_p50_le_2x"]


def test_bench_shadow_replays_the_mind_dev_file_through_devices(tmp_path: Path) -> None:
    """Both directions run through the real update path and the SDK's decision rule. The
    two bundles are the committed fixture and its copy that ranks by a feed prior the MIND
    articles lack (so the two rank alike): structure only, the real pair is in docs."""
    from edgerec.features.signals import FeedSignals
    from edgerec.model.manifest import FeedHead
    from tests.support.feed import feed_bundle
    from tests.support.mind import mind_dir
    from tests.support.updates import FIXTURE

    head = FeedHead(model=1.0, vector=0.0, vector_mean=0.0, prior=1.0, prior_mean=0.0)
    other = feed_bundle(tmp_path / "b", FeedSignals(prior=True), head).path
    args = ["--a", str(FIXTURE), "--b", str(other), "--data", str(mind_dir())]
    plot = tmp_path / "curve.png"
    result = _run(
        "bench_shadow.py",
        *args,
        *("--devices", "1", "--max-impressions", "60", "--min-size", "55", "--jobs", "1"),
        *("--plot", str(plot)),
    )
    assert result["dev_impressions"] > 1000 and result["bundles"]["better"] in ("a", "b")
    assert set(result["directions"]) == {"a_active_b_shadow", "b_active_a_shadow"}
    for part in result["directions"].values():
        assert part["devices"] == 1
        assert [c["impressions"] for c in part["curve"]][:2] == [50, 100]
        shares = part["share_better_chosen"] + part["share_worse_promoted"]
        assert 0 <= shares <= 1
    assert result["all"]["devices"] == 2 and plot.stat().st_size > 0
    missing = _run("bench_shadow.py", *args[:4], "--data", str(tmp_path / "nothing"))
    assert "skipped" in missing


def test_bench_update_times_the_update_with_and_without_validation() -> None:
    result = _run("bench_update.py", "--runs", "1", "--model-bytes", "200000")
    assert result["inputs"]["model_bytes"] == 200_000
    full = result["check_for_update_to_active"]["median_ms"]
    bare = result["check_for_update_without_validation"]["median_ms"]
    assert full > 0 and bare > 0
    assert result["validation_child_alone"]["median_ms"] > 0


def test_soak_history_loses_no_acknowledged_write() -> None:
    result = _run("soak_history.py", "--kills", "5", "--check-every", "5")
    assert result["kills"] == 5 and result["ok"] is True and result["failures"] == []
    assert result["rows_present_at_end"] >= result["acknowledged_writes"]


SMALL_MODELS = [
    "--set", "teacher.dim=16", "--set", "teacher.heads=2", "--set", "teacher.history_len=10",
    "--set", "teacher.batch_size=64", "--set", "student.dim=8", "--set", "student.embed_dim=4",
    "--set", "student.n_buckets=1024", "--set", "student.history_len=10",
    "--set", "student.batch_size=64", "--set", "student.representative=20",
]  # fmt: skip


@pytest.mark.trainer
def test_bench_pipeline_scale_reports_every_stage_per_size(tmp_path: Path) -> None:
    """The scaling curve (issue 16), shrunk: two synthetic sizes, each stage's seconds, the
    training throughput, the peak memory, and the fitted line with its projection."""
    result = _run(
        "bench_pipeline.py", "--scale", "--sizes", "400,1200", "--work", str(tmp_path),
        "--plot", str(tmp_path / "curve.png"), *SMALL_MODELS,
    )  # fmt: skip
    small, large = result["points"]
    assert (small["impressions"], large["impressions"]) == (400, 1200)
    assert large["examples_per_epoch"] > small["examples_per_epoch"] > 0
    for point in (small, large):
        assert {"prepare", "baselines", "examples", "teacher", "student_float", "export"} <= set(
            point["stages_s"]
        )
        assert point["training_examples_per_s"]["teacher"] > 0
        assert point["training_examples_per_s"]["student_float"] > 0
        assert 0 < point["peak_rss_mb"] < 4096
        stages_rss = point["stages_peak_rss_mb"]
        assert set(stages_rss) == set(point["stages_s"])
        assert 0 < stages_rss["prepare"] <= stages_rss["export"] <= point["peak_rss_mb"] + 1
    projection = result["projection_mind_large"]
    # at these toy sizes the fixed costs dominate and the fitted slope is noise: only the
    # structure is checked (the real curve is in docs/trainer.md)
    assert projection["impressions"] == 2_200_000
    assert isinstance(projection["one_epoch_each_wall_s"], int)
    assert projection["examples_per_epoch"] > large["examples_per_epoch"]
    assert "SYNTHETIC" in (tmp_path / "synthetic-400" / "README.md").read_text()
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _quality_report(per_impression: list[float], auc: float) -> dict[str, Any]:
    """The parts of a pipeline report.json that bench_quality.py reads."""
    row = {"auc": auc, "auc_ci": [auc - 0.01, auc + 0.01], "ndcg@10": 0.5}
    return {
        "models": {"shipped": row, "teacher+signals": row, "shipped_without_signals": row},
        "comparison": {"shipped": {}, "teacher+signals": {}},
        "export": {
            "bundle_bytes": 1000,
            "feed": {
                "encoder": None,
                "validation_auc": {"shipped": auc, "teacher+signals": auc},
                "validation_per_impression": {
                    "shipped": per_impression,
                    "teacher+signals": per_impression,
                },
            },
        },
    }


def test_bench_quality_pairs_each_variant_with_the_default_on_validation(tmp_path: Path) -> None:
    """Runs already in --work are reused (a new variant costs one pipeline run)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "MINDsmall_dev_sampled_impressions.tsv").write_text("")
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.8, 300).tolist()
    for name, shift in (("default", 0.0), ("better", 0.05), ("same", 0.0)):
        folder = tmp_path / "work" / name
        folder.mkdir(parents=True)
        per = [x + shift for x in base]
        (folder / "report.json").write_text(json.dumps(_quality_report(per, 0.6 + shift)))
    result = _run(
        "bench_quality.py",
        "--work",
        str(tmp_path / "work"),
        "--data",
        str(data),
        "--variant",
        "better=student.epochs=9",
        "--variant",
        "same=seed=1",
    )
    variants = result["variants"]
    assert set(variants) == {"default", "better", "same"}
    assert "validation_vs_default" not in variants["default"]["shipped"]
    better = variants["better"]["shipped"]["validation_vs_default"]
    assert better["mean"] == pytest.approx(0.05) and better["ci"][0] > 0
    assert variants["same"]["shipped"]["validation_vs_default"]["ci"] == [0.0, 0.0]
    assert variants["better"]["overrides"] == ["student.epochs=9"]
