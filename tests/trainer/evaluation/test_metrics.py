"""edgerec.trainer.evaluation.metrics against scikit-learn and brute force, on random cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score, roc_auc_score

from edgerec.trainer.evaluation.metrics import auc, evaluate, mrr, ndcg

# Scores drawn from a few values so that ties are common, as with category baselines.
_case = st.integers(2, 12).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(
            st.sampled_from([0.0, 0.25, 0.5, 1.0, -3.0]) | st.floats(-5, 5), min_size=n, max_size=n
        ),
    )
)


@given(_case)
def test_auc_matches_scikit_learn(case: tuple[list[int], list[float]]) -> None:
    y, s = case
    if 0 < sum(y) < len(y):
        assert auc(y, s) == pytest.approx(roc_auc_score(y, s))
    else:
        assert math.isnan(auc(y, s))


@given(_case, st.sampled_from([1, 3, 5, 10]))
def test_ndcg_matches_scikit_learn_including_ties(
    case: tuple[list[int], list[float]], k: int
) -> None:
    y, s = case
    if sum(y) == 0:
        assert math.isnan(ndcg(y, s, k))
        return
    expected = ndcg_score([y], [s], k=k, ignore_ties=False)
    assert ndcg(y, s, k) == pytest.approx(expected)


def _mrr_brute_force(y: list[int], s: list[float]) -> float:
    """Mean over every order consistent with the scores (ties permuted) of MIND's MRR."""
    values = []
    for perm in itertools.permutations(range(len(s))):
        ranked = sorted(perm, key=lambda i: -s[i])  # stable: perm decides inside ties
        values.append(sum(y[i] / (r + 1) for r, i in enumerate(ranked)) / sum(y))
    return float(np.mean(values))


@given(_case.filter(lambda c: len(c[0]) <= 6 and sum(c[0]) > 0))
def test_mrr_is_the_expectation_over_tie_orders(case: tuple[list[int], list[float]]) -> None:
    y, s = case
    assert mrr(y, s) == pytest.approx(_mrr_brute_force(y, s))


def test_mind_formulas_without_ties() -> None:
    y = np.array([0, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.3, 0.1, 0.5])
    assert mrr(y, s) == pytest.approx((1 / 2 + 1 / 5) / 2)
    dcg = 1 / np.log2(3) + 1 / np.log2(6)
    assert ndcg(y, s, 10) == pytest.approx(dcg / (1 + 1 / np.log2(3)))
    assert ndcg(y, s, 1) == 0.0
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_evaluate_means_intervals_and_determinism() -> None:
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 2, size=10).astype(float) for _ in range(300)]
    good = [y + rng.normal(0, 0.8, size=10) for y in labels]  # informative scores
    noise = [rng.normal(size=10) for _ in labels]
    a = evaluate(labels, good, n_bootstrap=200, seed=1)
    b = evaluate(labels, good, n_bootstrap=200, seed=1)
    r = evaluate(labels, noise, n_bootstrap=200, seed=1)
    assert a == b
    assert a["auc"].low < a["auc"].mean < a["auc"].high
    assert a["auc"].low > r["auc"].high  # a real signal is separated from noise
    assert 0.4 < r["auc"].mean < 0.6
    per_impression = [
        roc_auc_score(y, s) for y, s in zip(labels, good, strict=True) if 0 < y.sum() < len(y)
    ]
    assert a["auc"].mean == pytest.approx(np.mean(per_impression))
    assert a["auc"].n == len(per_impression)


def test_evaluate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="label rows"):
        evaluate([np.ones(2)], [])
    with pytest.raises(ValueError, match="impression 0"):
        evaluate([np.ones(2)], [np.ones(3)])
    with pytest.raises(ValueError, match="NaN"):
        evaluate([np.array([1.0, 0.0])], [np.array([np.nan, 0.0])])
