"""How the models of a report compare, impression by impression (issue 18's protocol).

Two views the headline AUC hides:

* **by group**: the impressions whose clicked candidate's category occurs in the reader's
  history (``match``) and the others (``no_match``). On the MIND dev sample 43% of the
  impressions are ``no_match`` (about 21-27% in natural traffic), and content methods
  that score well on ``match`` are near chance there, so a change that helps one group
  can hide a loss on the other;
* **paired against a reference** (``minilm``, the zero-shot encoder): the mean of the
  per-impression AUC differences with a paired bootstrap 95% interval (the same
  impressions resampled for both models), much tighter than comparing two unpaired
  intervals.

Per-impression AUC is MIND's: impressions with no click, or only clicks, have none and are
left out (of both sides of a pair). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..data.mind import Impression
from .metrics import auc, bootstrap_interval

__all__ = ["by_group", "category_match", "compare", "paired_difference", "per_impression_auc"]

FloatArray = npt.NDArray[np.float64]


def per_impression_auc(impressions: Sequence[Impression], scores: Sequence[Any]) -> FloatArray:
    """(N,) AUC of each impression (NaN where undefined).

    Raises:
        ValueError: ``scores`` does not have one row per impression.
    """
    if len(scores) != len(impressions):
        raise ValueError(f"{len(impressions)} impressions but {len(scores)} score rows")
    return np.array(
        [
            auc(np.asarray(imp.labels, np.float64), np.asarray(row, np.float64))
            for imp, row in zip(impressions, scores, strict=True)
        ],
        dtype=np.float64,
    )


def category_match(
    impressions: Sequence[Impression], articles: Mapping[str, Mapping[str, Any]]
) -> npt.NDArray[np.bool_]:
    """(N,) whether a clicked candidate's category occurs among the history's categories
    (articles without metadata have no category)."""
    out = np.zeros(len(impressions), dtype=bool)
    for i, imp in enumerate(impressions):
        seen = {articles[h].get("category") for h in imp.history if h in articles}
        clicked = {
            articles[c].get("category")
            for c, y in zip(imp.candidates, imp.labels, strict=True)
            if y and c in articles
        }
        out[i] = bool((seen & clicked) - {None})
    return out


def _interval(values: FloatArray, n_bootstrap: int, seed: int) -> dict[str, Any]:
    """Mean of ``values`` with a bootstrap 95% interval (NaN-free input)."""
    if not len(values):
        return {"mean": None, "ci": [None, None], "n": 0}
    low, high = bootstrap_interval(values, n_bootstrap, np.random.default_rng(seed))
    return {
        "mean": round(float(values.mean()), 4),
        "ci": [round(float(low), 4), round(float(high), 4)],
        "n": len(values),
    }


def by_group(
    aucs: FloatArray, match: npt.NDArray[np.bool_], *, n_bootstrap: int, seed: int
) -> dict[str, dict[str, Any]]:
    """AUC on the ``match`` impressions and on the others, each with its interval."""
    defined = ~np.isnan(aucs)
    return {
        "match": _interval(aucs[defined & match], n_bootstrap, seed),
        "no_match": _interval(aucs[defined & ~match], n_bootstrap, seed),
    }


def paired_difference(
    aucs: FloatArray, reference: FloatArray, *, n_bootstrap: int, seed: int
) -> dict[str, Any]:
    """Mean per-impression AUC difference ``aucs - reference`` over the impressions where
    both are defined, with a paired bootstrap 95% interval."""
    if aucs.shape != reference.shape:
        raise ValueError(f"{aucs.shape} against {reference.shape}: not the same impressions")
    both = ~np.isnan(aucs) & ~np.isnan(reference)
    return _interval(aucs[both] - reference[both], n_bootstrap, seed)


def compare(
    impressions: Sequence[Impression],
    scores: Mapping[str, Sequence[Any]],
    articles: Mapping[str, Mapping[str, Any]],
    *,
    reference: str = "minilm",
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per model of ``scores`` (its per-impression score rows, aligned with
    ``impressions``): ``auc_by_group`` and, when ``reference`` was scored,
    ``auc_vs_<reference>`` (the reference itself included: zero by construction)."""
    match = category_match(impressions, articles)
    aucs = {name: per_impression_auc(impressions, rows) for name, rows in scores.items()}
    out: dict[str, dict[str, Any]] = {}
    for name, values in aucs.items():
        out[name] = {"auc_by_group": by_group(values, match, n_bootstrap=n_bootstrap, seed=seed)}
        if reference in aucs:
            out[name][f"auc_vs_{reference}"] = paired_difference(
                values, aucs[reference], n_bootstrap=n_bootstrap, seed=seed
            )
    return out
