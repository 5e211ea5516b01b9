"""Ranking metrics per impression, averaged, with bootstrap confidence intervals.

Definitions follow the MIND benchmark (AUC, MRR, nDCG@5, nDCG@10 per impression, then the
mean over impressions), with one deliberate difference: ties are resolved in expectation
over a random order instead of by the candidates' position in the log. Baselines such as
category affinity give many candidates the same score; breaking those ties by log
position would quietly reward whatever order the log happened to use.

Pure numpy: importable without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["METRICS", "MetricSummary", "auc", "bootstrap_interval", "evaluate", "mrr", "ndcg"]

FloatArray = npt.NDArray[np.float64]


def _groups(scores: FloatArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Order by descending score and the tie-group id of each sorted position."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    new_group = np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1]))
    return order, np.cumsum(new_group) - 1


def _expected_by_group(values_at_rank: FloatArray, group: npt.NDArray[np.intp]) -> FloatArray:
    """For each sorted position, the mean of ``values_at_rank`` over its tie group: the
    expectation when ties are broken uniformly at random."""
    sums = np.bincount(group, weights=values_at_rank)
    counts = np.bincount(group)
    return (sums / counts)[group]


def auc(labels: Sequence[float] | FloatArray, scores: Sequence[float] | FloatArray) -> float:
    """ROC AUC (Mann-Whitney U with mid-ranks for ties). NaN when only one class is present.

    Example:
        >>> auc([1, 0, 0], [0.9, 0.1, 0.5])
        1.0
    """
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order, group = _groups(-s)  # ascending score order for ranks
    ranks = np.empty(len(s))
    ranks[order] = _expected_by_group(np.arange(1, len(s) + 1, dtype=np.float64), group)
    return float((ranks[y > 0].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mrr(labels: Sequence[float] | FloatArray, scores: Sequence[float] | FloatArray) -> float:
    """Mean reciprocal rank of the clicked candidates (MIND: sum(y / rank) / sum(y)).

    Example:
        >>> mrr([0, 1, 0], [0.9, 0.5, 0.1])
        0.5
    """
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if y.sum() == 0:
        return float("nan")
    order, group = _groups(s)
    reciprocal = _expected_by_group(1.0 / np.arange(1, len(s) + 1), group)
    return float((y[order] * reciprocal).sum() / y.sum())


def ndcg(
    labels: Sequence[float] | FloatArray, scores: Sequence[float] | FloatArray, k: int
) -> float:
    """nDCG@k with gains 2**y - 1 and log2 discounts (MIND; equal to linear gains for 0/1).

    Example:
        >>> round(ndcg([0, 1], [0.9, 0.1], k=2), 4)
        0.6309
    """
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    positions = np.arange(len(s))
    discount = np.where(positions < k, 1.0 / np.log2(positions + 2.0), 0.0)
    gains = 2.0**y - 1.0
    ideal = float((np.sort(gains)[::-1] * discount).sum())
    if ideal == 0:
        return float("nan")
    order, group = _groups(s)
    return float((gains[order] * _expected_by_group(discount, group)).sum() / ideal)


METRICS: Final[dict[str, Callable[[FloatArray, FloatArray], float]]] = {
    "auc": auc,
    "mrr": mrr,
    "ndcg@5": lambda y, s: ndcg(y, s, 5),
    "ndcg@10": lambda y, s: ndcg(y, s, 10),
}


@dataclass(frozen=True)
class MetricSummary:
    """Mean of one metric over impressions, with a bootstrap 95% interval."""

    mean: float
    low: float
    high: float
    n: int


def evaluate(
    labels: Sequence[FloatArray],
    scores: Sequence[FloatArray],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, MetricSummary]:
    """Per-impression metrics averaged over impressions, with bootstrap 95% intervals.

    Impressions where a metric is undefined (no click, or nothing but clicks) are left out
    of that metric's mean, as in MIND's scorer. The bootstrap resamples impressions with
    replacement ``n_bootstrap`` times (seeded: the same inputs give the same interval).

    Raises:
        ValueError: ``labels`` and ``scores`` differ in length or in a row's shape.
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} label rows but {len(scores)} score rows")
    rng = np.random.default_rng(seed)
    out: dict[str, MetricSummary] = {}
    per_metric: dict[str, FloatArray] = {name: np.empty(len(labels)) for name in METRICS}
    for i, (row_labels, row_scores) in enumerate(zip(labels, scores, strict=True)):
        y = np.asarray(row_labels, dtype=np.float64)
        s = np.asarray(row_scores, dtype=np.float64)
        if y.shape != s.shape:
            raise ValueError(f"impression {i}: {y.shape} labels but {s.shape} scores")
        if not np.isfinite(s).all():
            raise ValueError(f"impression {i}: scores contain NaN or infinity")
        for name, fn in METRICS.items():
            per_metric[name][i] = fn(y, s)
    for name, all_values in per_metric.items():
        values = all_values[~np.isnan(all_values)]
        if len(values) == 0:
            out[name] = MetricSummary(float("nan"), float("nan"), float("nan"), 0)
            continue
        low, high = bootstrap_interval(values, n_bootstrap, rng)
        out[name] = MetricSummary(float(values.mean()), low, high, len(values))
    return out


def bootstrap_interval(
    values: FloatArray, n_bootstrap: int, rng: np.random.Generator
) -> tuple[float, float]:
    """The 95% percentile interval of the mean of ``values`` (non-empty, NaN-free) over
    ``n_bootstrap`` resamples with replacement drawn from ``rng``."""
    draws = rng.integers(0, len(values), size=(n_bootstrap, len(values)))
    low, high = np.percentile(values[draws].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)
