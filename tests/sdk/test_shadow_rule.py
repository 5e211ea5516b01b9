"""edgerec.shadow's local metrics and decision rule, on hand-made evidence."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec import shadow
from edgerec.history.impressions import Impression, ImpressionLog


def test_paired_metrics_by_hand() -> None:
    def imp(
        at: float, ids: str, read: list[int], ranks: str, *, cand: int = 7, agree: float = 1.0
    ) -> Impression:
        return Impression(at, tuple(ids), read, 1, cand, tuple(int(r) for r in ranks), agree)

    log = ImpressionLog(
        [
            imp(1.0, "abcd", [2], "2314", agree=0.5),  # the candidate puts c first; c read
            imp(2.0, "abcd", [0, 3], "2341"),  # a and d read; it orders d, a, b, c
            imp(3.0, "ab", [], "12"),  # no read: agreement only
            imp(4.0, "ab", [0], "21", cand=6, agree=0.0),  # another candidate's
            Impression(5.0, ("a", "b"), [0]),  # not shadow-scored
            Impression(6.0, ("a", "b"), [0], 2, 7, (2, 1), 0.0),  # another active model's
        ]
    )
    assert shadow.paired([log], 7).impressions == 4
    got = shadow.paired([log], 7, active=1)
    assert (got.impressions, got.reads) == (3, 2)
    assert got.auc_active.tolist() == [1 / 3, 0.5]  # c above d only; a above b, c
    assert got.auc_candidate.tolist() == [1.0, 1.0]
    assert got.rr_active.tolist() == [1 / 3, 1.0]
    assert got.rr_candidate.tolist() == [1.0, 1.0]
    assert got.agreement == pytest.approx(2.5 / 3)
    active, candidate = shadow.metrics_of(got)
    assert active.auc == pytest.approx((1 / 3 + 0.5) / 2) and candidate.mrr == 1.0


def test_every_article_read_gives_no_auc_but_a_reciprocal_rank() -> None:
    log = ImpressionLog([Impression(1.0, ("a", "b"), [0, 1], 1, 3, (2, 1), 1.0)])
    got = shadow.paired([log], 3)
    assert got.reads == 1 and len(got.auc_active) == 0 and got.rr_candidate.tolist() == [1.0]


def test_looks_double_up_to_the_last() -> None:
    assert shadow.looks(50, 800) == [50, 100, 200, 400, 800]
    assert shadow.looks(50, 120) == [50, 100, 120]


def test_clear_evidence_decides_at_the_first_look() -> None:
    rng = np.random.default_rng(0)
    better = 0.15 + rng.normal(0, 0.2, 50)
    assert shadow.decide(better[:49]).decision == "pending"
    verdict = shadow.decide(better)
    assert (verdict.decision, verdict.looked_at) == ("promote", 50)
    assert verdict.lower is not None and verdict.lower >= 0
    assert shadow.decide(-better).decision == "reject"


def test_the_margin_lets_a_slightly_worse_candidate_through() -> None:
    rng = np.random.default_rng(1)
    slightly_worse = -0.01 + rng.normal(0, 0.05, 200)
    assert shadow.decide(slightly_worse).decision != "promote"
    assert shadow.decide(slightly_worse, margin=0.05).decision == "promote"


def test_undecided_at_the_last_look_is_a_rejection() -> None:
    noise = np.tile([0.3, -0.3], 400)  # mean 0 exactly
    assert shadow.decide(noise[:799]).decision == "pending"
    verdict = shadow.decide(noise)
    assert (verdict.decision, verdict.looked_at) == ("reject", 800)


def test_an_equal_candidate_is_rarely_promoted() -> None:
    """All looks together: an equal model is promoted in about ALPHA of devices or fewer."""
    rng = np.random.default_rng(7)
    promoted = sum(
        shadow.decide(rng.normal(0, 0.25, 800), draws=1000).decision == "promote"
        for _ in range(120)
    )
    assert promoted / 120 <= 0.06


def test_tied_evidence_is_no_evidence() -> None:
    """Per-impression differences are often exactly 0 (the candidate keeps the read
    article's place): a bound of 0 must not promote."""
    zeros = np.zeros(800)
    assert shadow.decide(zeros[:400]).decision == "pending"
    assert shadow.decide(zeros).decision == "reject"
    rng = np.random.default_rng(11)
    promoted = 0
    for _ in range(200):
        sparse = np.where(rng.random(800) < 0.05, rng.choice([-0.5, 0.5], 800), 0.0)
        promoted += shadow.decide(sparse, draws=1000).decision == "promote"
    assert promoted / 200 <= 0.06


def test_without_comparable_impressions_the_candidate_is_rejected_at_the_last_look() -> None:
    """With k=1 (or every returned article read) no impression has an AUC: the reads
    still count towards the last look."""
    none = np.zeros(0)
    assert shadow.decide(none, reads=799).decision == "pending"
    assert shadow.decide(none, reads=800).decision == "reject"
