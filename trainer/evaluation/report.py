"""The evaluation report: every model and baseline scored on the same impressions.

``report.json`` is a contract other parts script against::

    {"eval_file": ..., "n_impressions": ...,
     "models": {"<name>": {"auc": x, "auc_ci": [lo, hi], "mrr": x, "mrr_ci": [lo, hi],
                           "ndcg@5": x, "ndcg@5_ci": [...], "ndcg@10": x, "ndcg@10_ci": [...]}}}

``report.md`` is the same table for people, and ``report.png`` plots each model's AUC and
nDCG@10 with their intervals.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgerec._fs import atomic_write

from ..data.mind import Impression
from .metrics import METRICS, evaluate

__all__ = ["summarize", "write_report"]


def summarize(
    impressions: Sequence[Impression],
    scores: Sequence[np.ndarray],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One report row from per-impression scores (aligned with ``impressions``)."""
    labels = [np.asarray(imp.labels, dtype=np.float64) for imp in impressions]
    floats = [np.asarray(s, dtype=np.float64) for s in scores]
    summary = evaluate(labels, floats, n_bootstrap=n_bootstrap, seed=seed)
    row: dict[str, Any] = {}
    for name in METRICS:
        s = summary[name]
        row[name] = round(s.mean, 4)
        row[f"{name}_ci"] = [round(s.low, 4), round(s.high, 4)]
    return row


def write_report(
    out_dir: Path,
    *,
    eval_file: str,
    n_impressions: int,
    models: dict[str, dict[str, Any]],
    notes: Sequence[str] = (),
    timings: dict[str, float] | None = None,
    comparison: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; returns the JSON path.
    ``timings`` (seconds per pipeline stage) go to the JSON as ``timings_s``;
    ``comparison`` (:func:`.comparison.compare`: AUC by history-category group and the
    paired difference against ``minilm``, per model) as ``comparison`` and as a second
    table; ``extra`` keys are added to the JSON as they are.

    Each file is replaced atomically (:func:`edgerec._fs.atomic_write`), so a crash never
    leaves a half-written report behind.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "eval_file": eval_file,
        "n_impressions": n_impressions,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notes": list(notes),
        "models": models,
    }
    if timings is not None:
        report["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    if comparison is not None:
        report["comparison"] = comparison
    report.update(extra or {})
    lines = [
        f"Evaluated on `{eval_file}` ({n_impressions} impressions); "
        "mean per impression [bootstrap 95% interval].",
        "",
        "| model | AUC | MRR | nDCG@5 | nDCG@10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in sorted(models.items(), key=lambda kv: -kv[1]["auc"]):
        cells = [
            f"{row[m]:.3f} [{row[m + '_ci'][0]:.3f}, {row[m + '_ci'][1]:.3f}]"
            for m in ("auc", "mrr", "ndcg@5", "ndcg@10")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if comparison:
        lines += _comparison_table(comparison, models)
    feed = (extra or {}).get("export", {}).get("feed")
    if feed:
        lines += _feed_tables(feed, models)
    lines += [""] + [f"- {n}" for n in notes]
    for name, text in (
        ("report.json", json.dumps(report, indent=2) + "\n"),
        ("report.md", "\n".join(lines) + "\n"),
    ):
        atomic_write(out_dir / name, text.encode("utf-8"))
    _plot(out_dir, models, f"{Path(eval_file).name}, {n_impressions} impressions")
    return out_dir / "report.json"


def _comparison_table(
    comparison: dict[str, dict[str, Any]], models: dict[str, dict[str, Any]]
) -> list[str]:
    """The report.md lines of :func:`.comparison.compare`'s result."""

    def cell(part: dict[str, Any] | None, signed: bool = False) -> str:
        if not part or part["mean"] is None:
            return "–"
        sign = "+" if signed else ""
        low, high = part["ci"]
        return f"{part['mean']:{sign}.3f} [{low:{sign}.3f}, {high:{sign}.3f}] (n={part['n']})"

    lines = [
        "",
        "AUC where a clicked candidate's category occurs in the history (match) and where it "
        "does not (no match); per-impression AUC difference against minilm, paired "
        "bootstrap 95% interval.",
        "",
        "| model | AUC, match | AUC, no match | AUC − minilm (paired) |",
        "| --- | --- | --- | --- |",
    ]
    for name in sorted(comparison, key=lambda n: -models.get(n, {}).get("auc", 0.0)):
        part = comparison[name]
        groups = part["auc_by_group"]
        lines.append(
            f"| {name} | {cell(groups['match'])} | {cell(groups['no_match'])} | "
            f"{cell(part.get('auc_vs_minilm'), signed=True)} |"
        )
    return lines


def _feed_tables(feed: dict[str, Any], models: dict[str, dict[str, Any]]) -> list[str]:
    """The report.md lines of the feed-signal variants (validation beside evaluation) and
    of the 400-impression slice beside its published results."""
    lines = [
        "",
        f"Feed signals ({feed['encoder'] or 'no'} vectors, {feed['vector_bytes_per_article']} "
        f"bytes per article; click prior, C={feed['prior_c']}): each variant's weights were "
        f"chosen on {feed['n_validation_impressions']} validation impressions of held-out "
        "training users; the evaluation column is read to report only.",
        "",
        "| variant | validation AUC | evaluation AUC | evaluation nDCG@10 |",
        "| --- | --- | --- | --- |",
    ]
    for name, value in sorted(feed["validation_auc"].items(), key=lambda kv: -kv[1]):
        row = models.get(name)
        auc = f"{row['auc']:.3f}" if row else "–"
        ndcg = f"{row['ndcg@10']:.3f}" if row else "–"
        lines.append(f"| {name} | {value:.3f} | {auc} | {ndcg} |")
    sliced = feed.get("slice")
    if sliced:
        lines += [
            "",
            f"The {sliced['n_impressions']} RecPrompt test impressions (`{sliced['file']}`): "
            "ours beside the published results (not trained or chosen on them).",
            "",
            "| model | AUC | MRR | nDCG@10 |",
            "| --- | --- | --- | --- |",
        ]
        table = [(name, row, "") for name, row in sliced["ours"].items()]
        table += [(name, row, " (published)") for name, row in sliced["published"].items()]
        for name, row, tag in sorted(table, key=lambda t: -t[1]["auc"]):
            lines.append(
                f"| {name}{tag} | {row['auc']:.4f} | {row['mrr']:.4f} | {row['ndcg@10']:.4f} |"
            )
    return lines


def _plot(out_dir: Path, models: dict[str, dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    names = sorted(models, key=lambda n: models[n]["auc"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.5), sharey=True)
    for ax, metric in zip(axes, ("auc", "ndcg@10"), strict=True):
        means = [models[n][metric] for n in names]
        lows = [m - models[n][f"{metric}_ci"][0] for n, m in zip(names, means, strict=True)]
        highs = [models[n][f"{metric}_ci"][1] - m for n, m in zip(names, means, strict=True)]
        ax.errorbar(means, range(len(names)), xerr=[lows, highs], fmt="o", capsize=3)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel(f"{metric.upper()} (mean, 95% bootstrap interval)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write(out_dir / "report.png", png.getvalue())
