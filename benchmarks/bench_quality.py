"""Quality variants of the trainer, compared the way issue 18's protocol asks. Prints JSON.

    python benchmarks/bench_quality.py --work DIR [--data ../shared/data/mind]
        [--cache ~/.cache/edgerec] [--variant NAME=key=value,key=value ...]

Each variant is one ``edgerec-train pipeline --config default`` run with its overrides
(``default`` has none; runs already in ``--work/<name>`` are reused, so the next
experiment costs one run). For each: the shipped model's validation AUC (the mean
per-impression AUC on the validation impressions of held-out training users, what every
choice is made on), its paired difference against ``default`` on those same impressions
(bootstrap 95% interval), then, to report only, the evaluation file's AUC and nDCG@10, the
paired interval against zero-shot MiniLM, and the 400-impression slice's AUC; the same for
the teacher with the feed signals.

The rule applied to every variant: a variant replaces the default only when its paired
validation interval against ``default`` lies above 0 (the validation set is a few hundred
impressions; smaller gains are noise).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware
from bench_pipeline import DEFAULT_DATA, run_pipeline

BOOTSTRAP = 2000


def paired(a: list[float], b: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean of ``a - b`` per impression and its paired bootstrap 95% interval."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    diff = diff[~np.isnan(diff)]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(diff), size=(BOOTSTRAP, len(diff)))
    low, high = np.percentile(diff[draws].mean(axis=1), [2.5, 97.5])
    return {
        "mean": round(float(diff.mean()), 4),
        "ci": [round(float(low), 4), round(float(high), 4)],
    }


def summary(report: dict[str, Any], default: dict[str, Any] | None) -> dict[str, Any]:
    models, feed = report["models"], report["export"]["feed"]
    per = feed["validation_per_impression"]
    out: dict[str, Any] = {}
    for name in ("shipped", "teacher+signals"):
        if name not in per:
            continue
        row = models[name]
        part = {
            "validation_auc": feed["validation_auc"][name],
            "evaluation_auc": row["auc"],
            "evaluation_auc_ci": row["auc_ci"],
            "evaluation_ndcg@10": row["ndcg@10"],
            "evaluation_auc_vs_minilm": report["comparison"][name].get("auc_vs_minilm"),
            "slice_auc": feed.get("slice", {}).get("ours", {}).get(name, {}).get("auc"),
        }
        if default is not None:
            other = default["export"]["feed"]["validation_per_impression"][name]
            part["validation_vs_default"] = paired(per[name], other)
        out[name] = part
    out["hashed_only_auc"] = models["shipped_without_signals"]["auc"]
    out["bundle_bytes"] = report["export"]["bundle_bytes"]
    out["encoder"] = feed["encoder"]
    out["run"] = report.get("wall")  # wall seconds and peak RSS, when this harness ran it
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="one folder per variant")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edgerec")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=key=value,...",
        help="a variant: its name, then its overrides separated by commas",
    )
    args = parser.parse_args()
    if not (args.data / "MINDsmall_dev_sampled_impressions.tsv").is_file():
        sys.exit(f"bench_quality: no MIND data at {args.data} (see ../shared/data/mind)")
    variants: dict[str, list[str]] = {"default": []}
    for item in args.variant:
        name, _, overrides = item.partition("=")
        if not name or not overrides or "/" in name:
            sys.exit(f"bench_quality: --variant {item!r} is not NAME=key=value,...")
        variants[name] = overrides.split(",")
    reports: dict[str, dict[str, Any]] = {}
    for name, overrides in variants.items():
        out = args.work / name
        if not (out / "report.json").is_file():
            run = run_pipeline(args.data, out, args.cache, overrides)
            wall = {"wall_s": round(run["wall_s"], 1), "peak_rss_mb": round(run["peak_rss_mb"])}
            (out / "wall.json").write_text(json.dumps(wall), encoding="utf-8")
        reports[name] = json.loads((out / "report.json").read_text(encoding="utf-8"))
        if (out / "wall.json").is_file():
            reports[name]["wall"] = json.loads((out / "wall.json").read_text(encoding="utf-8"))
    default = reports["default"]
    result = {
        "benchmark": "quality variants of the default pipeline, MIND subset",
        "hardware": hardware(None),
        "rule": "a variant replaces the default only when its paired validation interval "
        "against default lies above 0",
        "variants": {
            name: {
                "overrides": variants[name],
                **summary(report, None if name == "default" else default),
            }
            for name, report in reports.items()
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
