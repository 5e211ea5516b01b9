"""edgerec.trainer.evaluation.comparison: the per-group AUC and the paired difference
against a reference (issue 18's report), on hand-made impressions (SYNTHETIC)."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.trainer.data.mind import Impression
from edgerec.trainer.evaluation.comparison import (
    by_group,
    category_match,
    compare,
    paired_difference,
    per_impression_auc,
)

ARTICLES = {
    "s1": {"category": "sports"},
    "s2": {"category": "sports"},
    "n1": {"category": "news"},
    "n2": {"category": "news"},
    "f1": {"category": "food"},
}


def _imp(i: int, history: tuple[str, ...], shown: dict[str, int]) -> Impression:
    return Impression(i, None, None, history, tuple(shown), tuple(shown.values()))


def test_category_match_looks_at_the_clicked_candidates_only() -> None:
    impressions = [
        _imp(1, ("s1",), {"s2": 1, "n1": 0}),  # clicked sports, history sports
        _imp(2, ("s1",), {"n1": 1, "s2": 0}),  # clicked news: a shown sports does not count
        _imp(3, ("unknown",), {"s2": 1}),  # no metadata for the history
        _imp(4, ("n1", "f1"), {"x": 1, "f1": 1}),  # one of two clicks matches
        _imp(5, (), {"s1": 1, "n1": 0}),  # empty history
    ]
    assert category_match(impressions, ARTICLES).tolist() == [True, False, False, True, False]


def test_per_impression_auc_is_nan_where_undefined() -> None:
    impressions = [_imp(1, (), {"a": 1, "b": 0}), _imp(2, (), {"a": 0, "b": 0})]
    aucs = per_impression_auc(impressions, [np.array([2.0, 1.0]), np.array([1.0, 0.0])])
    assert aucs[0] == 1.0 and np.isnan(aucs[1])
    with pytest.raises(ValueError, match="2 impressions but 1"):
        per_impression_auc(impressions, [np.array([1.0, 0.0])])


def test_paired_difference_resamples_pairs() -> None:
    """A model that is always exactly 0.05 above the reference: the paired interval is the
    single point +0.05, though both unpaired spreads are wide; undefined pairs are left
    out on both sides."""
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.3, 0.9, 400)
    reference[7] = np.nan
    better = reference + 0.05
    better[11] = np.nan
    result = paired_difference(better, reference, n_bootstrap=200, seed=0)
    assert result["n"] == 398
    assert result["mean"] == pytest.approx(0.05) and result["ci"] == [0.05, 0.05]
    worse = paired_difference(
        reference - rng.uniform(0.0, 0.1, 400), reference, n_bootstrap=200, seed=0
    )
    assert worse["ci"][1] < 0 < 0.1 + worse["ci"][0]
    with pytest.raises(ValueError, match="not the same impressions"):
        paired_difference(reference[:3], reference, n_bootstrap=10, seed=0)


def test_by_group_splits_and_reports_an_empty_group_as_none() -> None:
    aucs = np.array([1.0, 0.0, np.nan, 1.0])
    match = np.array([True, False, False, True])
    groups = by_group(aucs, match, n_bootstrap=50, seed=0)
    assert groups["match"] == {"mean": 1.0, "ci": [1.0, 1.0], "n": 2}
    assert groups["no_match"]["mean"] == 0.0 and groups["no_match"]["n"] == 1
    empty = by_group(aucs, np.zeros(4, bool) | True, n_bootstrap=50, seed=0)["no_match"]
    assert empty == {"mean": None, "ci": [None, None], "n": 0}


def test_compare_reports_every_model_against_the_reference() -> None:
    impressions = [
        _imp(1, ("s1",), {"s2": 1, "n1": 0}),
        _imp(2, ("s1",), {"n1": 1, "s2": 0}),
        _imp(3, ("n2",), {"n1": 1, "f1": 0}),
    ]
    scores = {
        "minilm": [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0])],
        "model": [np.array([1.0, 0.0]), np.array([1.0, 0.0]), np.array([1.0, 0.0])],
    }
    out = compare(impressions, scores, ARTICLES, n_bootstrap=100, seed=0)
    assert out["model"]["auc_vs_minilm"]["mean"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["minilm"]["auc_vs_minilm"] == {"mean": 0.0, "ci": [0.0, 0.0], "n": 3}
    assert out["model"]["auc_by_group"]["no_match"] == {"mean": 1.0, "ci": [1.0, 1.0], "n": 1}
    assert out["minilm"]["auc_by_group"]["no_match"]["mean"] == 0.0
    # without the reference scored, only the groups
    assert set(compare(impressions, {"model": scores["model"]}, ARTICLES)["model"]) == {
        "auc_by_group"
    }
