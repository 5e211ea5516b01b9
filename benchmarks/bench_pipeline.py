"""The trainer's wall time, throughput and memory, per pipeline stage. Prints JSON.

    python benchmarks/bench_pipeline.py [--data ../shared/data/mind] [--cache DIR]
                                        [--set key=value ...]
    python benchmarks/bench_pipeline.py --scale [--sizes 5000,50000,500000]
                                        [--work DIR] [--plot FILE.png] [--set key=value ...]

Without ``--scale``: ``edgerec-train pipeline --config default`` on the MIND subset in a
child process (DESIGN.md section 7: the default MIND pipeline in at most 10 minutes on the
2-core machine; a warm MiniLM cache with ``--cache ~/.cache/edgerec``, a cold one by
default), with the shipped model's quality beside the figure it must stay within (the int8
student at 0.621 [0.606, 0.636] before the throughput work).

With ``--scale``: SYNTHETIC logs in the MIND layout from the seeded generator
(``edgerec.trainer.data.synthetic.write_mind_layout``; one reader per 3 impressions, one
article per 10, 2,000 evaluation impressions), each trained by the default config for one
epoch of the teacher and one of the student, without MiniLM (the vectors of generated text
mean nothing; with MiniLM, encoding is its own stage, about 60 articles/s). Per size:
every stage's wall seconds, the examples of an epoch, each model's training examples/s
and the peak resident memory of the run; then a least-squares line of wall time against
examples and the projection for a log of 2.2M impressions (MIND-large's size). The logs
are cached in ``--work``; reports stay there too (synthetic: nothing to protect).
``--plot`` draws the curve (wall seconds and peak memory against examples) as a PNG
(matplotlib, from the trainer extra).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware

TARGET_S = 10 * 60
BEFORE = {"student_int8_auc": 0.621, "auc_ci": [0.606, 0.636]}
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mind"
MIND_LARGE_IMPRESSIONS = 2_200_000
SCALE_CONFIG = [
    "minilm=false",
    "teacher.epochs=1",
    "student.epochs=1",
    "student.quantization=dynamic",
    "bootstrap=200",
]


def run_pipeline(data: Path, out: Path, cache: Path, overrides: list[str]) -> dict[str, Any]:
    """One pipeline run in a child process: its report, wall time and peak RSS (the child's
    own, from wait4: not the maximum over every child this benchmark started)."""
    command = [sys.executable, "-m", "edgerec.trainer", "pipeline", "--config", "default"]
    command += ["--data", str(data), "--out", str(out), "--cache", str(cache)]
    for override in overrides:
        command += ["--set", override]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=sys.stderr)  # progress (Keras too) to stderr
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench_pipeline: the pipeline failed ({' '.join(command)})")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {"report": report, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def mind(args: argparse.Namespace) -> dict[str, Any]:
    if not (args.data / "MINDsmall_dev_sampled_impressions.tsv").is_file():
        sys.exit(f"bench_pipeline: no MIND data at {args.data} (see ../shared/data/mind)")
    scratch = tempfile.TemporaryDirectory(prefix="edgerec-bench-")
    out = Path(scratch.name) / "out"
    cache = args.cache or Path(scratch.name) / "cache"
    run = run_pipeline(args.data, out, cache, args.set)
    report, models = run["report"], run["report"]["models"]
    shipped = models["student_int8"]
    result = {
        "benchmark": "trainer pipeline, --config default, MIND subset",
        "hardware": hardware(None),  # both cores: TensorFlow trains on every core it sees
        "cold_minilm_cache": args.cache is None,
        "overrides": args.set,
        "n_impressions": report["n_impressions"],
        "stages_s": report["timings_s"],
        "training": {
            name: {
                "examples_per_s": fit["examples_per_s"],
                "epochs": len(fit["validation_ranking_auc"]) - 1,
            }
            for name, fit in report["training"].items()
        },
        "process_wall_s": round(run["wall_s"], 1),
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "target": {"limit_s": TARGET_S, "met": run["wall_s"] <= TARGET_S},
        "quality": {
            "student_int8_auc": shipped["auc"],
            "student_int8_auc_ci": shipped["auc_ci"],
            "student_int8_ndcg@10": shipped["ndcg@10"],
            "teacher_auc": models["teacher"]["auc"],
            "minilm_auc": models.get("minilm", {}).get("auc"),
            # issue 18: the bundle with the feed signals, as a device ranks it
            "shipped_with_feed_signals_auc": models.get("shipped", {}).get("auc"),
            "before": BEFORE,
            "within_the_interval_before": BEFORE["auc_ci"][0]
            <= shipped["auc"]
            <= BEFORE["auc_ci"][1],
        },
    }
    scratch.cleanup()
    return result


def _synthetic(work: Path, impressions: int) -> Path:
    from edgerec.trainer.data.synthetic import write_mind_layout

    folder = work / f"synthetic-{impressions}"
    if not (folder / "README.md").is_file():
        write_mind_layout(
            folder,
            n_articles=max(2_000, impressions // 10),
            n_users=max(100, impressions // 3),
            n_train=impressions,
            n_eval=2_000,
            seed=0,
        )
    return folder


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of ys against xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return slope, my - slope * mx


def scale(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work or Path(tempfile.mkdtemp(prefix="edgerec-scale-"))
    points = []
    for size in args.sizes:
        start = time.perf_counter()
        data = _synthetic(work, size)
        generate_s = time.perf_counter() - start
        run = run_pipeline(data, work / f"run-{size}", work / "cache", SCALE_CONFIG + args.set)
        report = run["report"]
        examples = json.loads(
            (work / f"run-{size}" / "examples" / "examples.json").read_text(encoding="utf-8")
        )
        points.append(
            {
                "impressions": size,
                "examples_per_epoch": sum(examples["sizes"]),
                "shards": len(examples["shards"]),
                "stages_s": report["timings_s"],
                "stages_peak_rss_mb": report.get("peak_rss_mb", {}),
                "training_examples_per_s": {
                    name: fit["examples_per_s"] for name, fit in report["training"].items()
                },
                "pipeline_wall_s": round(run["wall_s"], 1),
                "peak_rss_mb": round(run["peak_rss_mb"]),
                "generate_log_s": round(generate_s, 1),
                "student_int8_auc": report["models"]["student_int8"]["auc"],
            }
        )
        print(json.dumps(points[-1]), file=sys.stderr, flush=True)
    xs = [float(p["examples_per_epoch"]) for p in points]
    slope, intercept = _line(xs, [p["pipeline_wall_s"] for p in points])
    per_impression = sum(p["examples_per_epoch"] / p["impressions"] for p in points) / len(points)
    large_examples = per_impression * MIND_LARGE_IMPRESSIONS
    return {
        "benchmark": "trainer pipeline scaling, SYNTHETIC logs",
        "hardware": hardware(None),
        "config": "default + " + ", ".join(SCALE_CONFIG + args.set),
        "points": points,
        "fit": {
            "seconds_per_example": slope,
            "fixed_seconds": round(intercept, 1),
            "ratio_largest_to_smallest_wall": round(
                points[-1]["pipeline_wall_s"] / points[0]["pipeline_wall_s"], 2
            ),
            "ratio_largest_to_smallest_examples": round(xs[-1] / xs[0], 2),
        },
        "projection_mind_large": {
            "impressions": MIND_LARGE_IMPRESSIONS,
            "examples_per_epoch": round(large_examples),
            "one_epoch_each_wall_s": round(intercept + slope * large_examples),
            "basis": "the least-squares line above; a projection, not a measurement",
        },
        "work_folder": str(work),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """The scaling curve as a PNG: wall seconds per stage and peak RSS against the
    examples of an epoch, with the fitted line and the MIND-large projection."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    xs = [p["examples_per_epoch"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(xs, [p["pipeline_wall_s"] for p in points], "o-", label="whole pipeline")
    for stage in ("teacher", "student_float", "export", "examples"):
        left.plot(xs, [p["stages_s"].get(stage, 0.0) for p in points], ".--", label=stage)
    projection = result["projection_mind_large"]
    fit = result["fit"]
    line_x = [min(xs), projection["examples_per_epoch"]]
    left.plot(
        line_x,
        [fit["fixed_seconds"] + fit["seconds_per_example"] * x for x in line_x],
        ":",
        color="grey",
        label="least-squares line (projection)",
    )
    left.plot([projection["examples_per_epoch"]], [projection["one_epoch_each_wall_s"]], "x")
    left.set(xscale="log", yscale="log", xlabel="training examples an epoch", ylabel="seconds")
    left.set_title("wall time, one epoch each (SYNTHETIC logs)", fontsize=10)
    left.legend(fontsize=7)
    right.plot(xs, [p["peak_rss_mb"] for p in points], "o-")
    right.axhline(2048, color="red", linestyle=":", label="2 GB target")
    right.set(xscale="log", xlabel="training examples an epoch", ylabel="peak RSS (MB)")
    right.set_ylim(0, 2300)
    right.set_title("peak resident memory of the run", fontsize=10)
    right.legend(fontsize=7)
    for ax, key in ((left, "pipeline_wall_s"), (right, "peak_rss_mb")):
        for p in points:
            ax.annotate(f"{p['impressions']:,} imp.", (p["examples_per_epoch"], p[key]), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=None, help="MiniLM cache (default: cold)")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--scale", action="store_true", help="the synthetic scaling curve")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[5_000, 50_000, 500_000],
        help="impressions per synthetic log (--scale)",
    )
    parser.add_argument("--work", type=Path, default=None, help="where the logs and runs go")
    parser.add_argument("--plot", type=Path, default=None, help="the curve as a PNG (--scale)")
    args = parser.parse_args()
    result = scale(args) if args.scale else mind(args)
    if args.plot is not None and args.scale:
        plot(result, args.plot)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
