"""edgerec.ranking (the Recommender's ranker) on the committed SYNTHETIC fixture bundle:
scores equal the model's, the candidate cache, cold start, rules, reasons, bad input."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from edgerec import featurize
from edgerec.errors import InvalidInputError, InvalidTypeError
from edgerec.model import Bundle, ModelRunner
from edgerec.ranking import COLD_START_HALF_LIFE_H, MAX_CANDIDATES, Ranker
from edgerec.trainer.data.synthetic import synthetic_articles
from tests.support.updates import FIXTURE

NOW = 1_701_000_000.0


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return Bundle.load(FIXTURE)


@pytest.fixture()
def ranker(bundle: Bundle) -> Ranker:
    return Ranker(bundle)


@pytest.fixture(scope="module")
def feed() -> list[dict[str, Any]]:
    return synthetic_articles(60, seed=3)


def _rec(ranker: Ranker, candidates: Any, **kw: Any) -> list[Any]:
    args: dict[str, Any] = {
        "k": 10,
        "now": NOW,
        "exclude_read": True,
        "categories": None,
        "exclude_categories": None,
        "sources": None,
        "exclude_sources": None,
        "max_per_source": None,
        "freshness_half_life_h": None,
        "diversity": None,
    }
    args.update(kw)
    return ranker.recommend(candidates, **args)


def _with_history(ranker: Ranker, reads: list[dict[str, Any]]) -> None:
    ranker.load_reader(reads)


def test_scores_are_the_models_rank_scores(ranker: Ranker, bundle: Bundle, feed: list) -> None:
    history, candidates = feed[:8], feed[8:]
    _with_history(ranker, history)
    got = _rec(ranker, candidates, k=len(candidates))
    runner = ModelRunner(bundle)
    spec = bundle.manifest.spec
    expected = runner.rank(featurize(history, spec), featurize(candidates, spec))
    by_id = {a["id"]: float(s) for a, s in zip(candidates, expected, strict=True)}
    assert len(got) == len(candidates)
    for r in got:
        assert r.score == pytest.approx(by_id[r.id], abs=1e-4)
    assert [r.rank for r in got] == list(range(1, len(got) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(got))


def test_candidates_are_embedded_once_and_re_embedded_when_changed(
    ranker: Ranker, feed: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_history(ranker, feed[:5])
    assert ranker.runner is not None
    calls: list[int] = []
    real = ranker.runner.item_vectors
    monkeypatch.setattr(
        ranker.runner, "item_vectors", lambda rows: calls.append(len(rows)) or real(rows)
    )
    first = _rec(ranker, feed[5:])
    assert calls == [55]
    again = _rec(ranker, feed[5:])
    assert calls == [55] and again == first
    edited = [dict(a) for a in feed[5:]]
    edited[3]["title"] = "A completely different headline"
    _rec(ranker, edited)
    assert calls == [55, 1]


def test_cold_start_ranks_by_prior_and_freshness(ranker: Ranker, bundle: Bundle) -> None:
    prior = bundle.manifest.cold_start_prior["subcategory"]
    best = max(prior, key=prior.get)
    worst = min(prior, key=prior.get)
    same_time = NOW - 3600
    cands = [
        {"id": "low", "subcategory": worst, "published_at": same_time},
        {"id": "high", "subcategory": best, "published_at": same_time},
        {"id": "bare"},
    ]
    got = _rec(ranker, cands)
    assert [r.id for r in got] == ["high", "bare", "low"]  # no time: no freshness penalty
    assert got[0].reasons == ("popular now", "new")
    low = next(r for r in got if r.id == "low")
    assert "popular now" not in low.reasons and "new" in low.reasons
    # Freshness decides between equal priors: two days older halves the odds twice.
    cands = [
        {"id": "old", "subcategory": best, "published_at": NOW - 48 * 3600},
        {"id": "fresh", "subcategory": best, "published_at": NOW - 60},
    ]
    got = _rec(ranker, cands)
    assert [r.id for r in got] == ["fresh", "old"]
    gap = got[0].score - got[1].score
    assert gap == pytest.approx(math.log(2) * (48 - 1 / 60) / COLD_START_HALF_LIFE_H, rel=1e-6)
    assert got[1].reasons == ("popular now",)


def test_no_model_ranks_by_freshness_and_never_returns_nothing() -> None:
    ranker = Ranker(None)
    cands = [{"id": f"a{i}", "published_at": NOW - i * 3600} for i in range(5)]
    got = _rec(ranker, list(reversed(cands)), k=3)
    assert [r.id for r in got] == ["a0", "a1", "a2"]
    ranker.load_reader([{"id": "a0"}])
    assert [r.id for r in _rec(ranker, cands, k=3)] == ["a1", "a2", "a3"]


def test_because_you_read_names_the_nearest_history_item(ranker: Ranker, feed: list) -> None:
    history = feed[:6]
    _with_history(ranker, history)
    got = _rec(ranker, feed[6:], k=5)
    titles = {a["title"] for a in history}
    for r in got:
        assert len(r.reasons) >= 1
        assert r.reasons[0].startswith("because you read ")
        assert r.reasons[0].removeprefix("because you read ") in titles
    # The candidate identical to a history item points at that item.
    twin = dict(history[2], id="twin")
    got = _rec(ranker, [twin], k=1)
    assert got[0].reasons[0] == f"because you read {history[2]['title']}"


def test_exclude_read_and_incremental_reads(ranker: Ranker, feed: list) -> None:
    _with_history(ranker, feed[:3])
    before = ranker._user.copy()  # type: ignore[union-attr]
    ids = {r.id for r in _rec(ranker, feed[:20], k=20)}
    assert not ids & {a["id"] for a in feed[:3]}
    assert len(_rec(ranker, feed[:20], k=20, exclude_read=False)) == 20
    ranker.add_read(feed[10]["id"], ranker.prepare_read(feed[10]))
    assert feed[10]["id"] not in {r.id for r in _rec(ranker, feed[:20], k=20)}
    assert not np.allclose(before, ranker._user)  # type: ignore[arg-type]
    # Incremental == loading the same history from scratch.
    fresh = Ranker(ranker.bundle)
    fresh.load_reader([*feed[:3], feed[10]])
    np.testing.assert_allclose(fresh._user, ranker._user, atol=1e-6)  # type: ignore[arg-type]
    np.testing.assert_allclose(fresh._history_units, ranker._history_units, atol=1e-6)  # type: ignore[arg-type]


def test_category_source_filters_and_per_source_cap(ranker: Ranker, feed: list) -> None:
    _with_history(ranker, feed[:4])
    pool = feed[4:]
    got = _rec(ranker, pool, k=50, categories=["Sports", "TECH"])
    cats = {a["id"]: a["category"] for a in pool}
    assert got and {cats[r.id] for r in got} <= {"sports", "tech"}
    got = _rec(ranker, pool, k=50, exclude_categories=["sports"])
    assert got and "sports" not in {cats[r.id] for r in got}
    sources = {a["id"]: a["source"] for a in pool}
    one = pool[0]["source"]
    got = _rec(ranker, pool, k=50, sources=[one])
    assert got and {sources[r.id] for r in got} == {one}
    got = _rec(ranker, pool, k=50, exclude_sources=[one])
    assert one not in {sources[r.id] for r in got}
    got = _rec(ranker, pool, k=10, max_per_source=1)
    picked = [sources[r.id] for r in got]
    assert len(picked) == len(set(picked)) == min(10, len(set(sources.values())))


def test_diversity_spreads_the_list(ranker: Ranker, feed: list) -> None:
    _with_history(ranker, feed[:4])
    pool = feed[4:]

    def spread(results: list[Any]) -> float:
        units = [ranker.cached_unit(r.id) for r in results]
        sims = [float(a @ b) for i, a in enumerate(units) for b in units[i + 1 :]]
        return float(np.mean(sims))

    plain = _rec(ranker, pool, k=8)
    diverse = _rec(ranker, pool, k=8, diversity=0.9)
    assert spread(diverse) < spread(plain)
    assert _rec(ranker, pool, k=8, diversity=0.0) == plain


@pytest.mark.parametrize(
    ("candidates", "error", "where"),
    [
        ([{"id": "a"}, {"title": "no id"}], InvalidInputError, "candidates[1]"),
        ([{"id": "a"}, {"id": 7}], InvalidTypeError, "candidates[1]"),
        ([{"id": "a"}, {"id": "a"}], InvalidInputError, "duplicate"),
        ([{"id": "a"}, {"id": "b", "published_at": float("nan")}], InvalidInputError, "[1]"),
        ([{"id": "a"}, {"id": "b", "title": "x" * 1_000_000}], InvalidInputError, "[1]"),
        ([{"id": "a"}, "not a mapping"], InvalidTypeError, "candidates[1]"),
        ({"id": "a"}, InvalidTypeError, "candidates"),
    ],
)
def test_bad_candidates_are_typed_errors_and_cache_nothing(
    ranker: Ranker, feed: list, candidates: Any, error: type, where: str
) -> None:
    _with_history(ranker, feed[:3])
    _rec(ranker, feed[3:10])
    cached = dict(ranker._cands)
    with pytest.raises(error) as info:
        _rec(ranker, candidates)
    assert where in str(info.value)
    assert "x" * 50 not in str(info.value)
    assert dict(ranker._cands) == cached


def test_too_many_candidates_and_bad_arguments(ranker: Ranker) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        _rec(ranker, [{"id": str(i)} for i in range(MAX_CANDIDATES + 1)])
    for k in (0, -1, -(10**400)):
        with pytest.raises(InvalidInputError, match=r"^k: "):
            _rec(ranker, [{"id": "a"}], k=k)
    for k in (2.0, True, "3", None):
        with pytest.raises(InvalidTypeError, match=r"^k: "):
            _rec(ranker, [{"id": "a"}], k=k)
    with pytest.raises(InvalidInputError, match="freshness_half_life_h"):
        _rec(ranker, [{"id": "a"}], freshness_half_life_h=float("nan"))
    with pytest.raises(InvalidInputError, match="diversity"):
        _rec(ranker, [{"id": "a"}], diversity=1.5)
    with pytest.raises(InvalidTypeError, match="categories"):
        _rec(ranker, [{"id": "a"}], categories="sports")
    # k above the candidate count is clamped, not an error, however large.
    assert len(_rec(ranker, [{"id": "a"}, {"id": "b"}], k=10)) == 2
    assert len(_rec(ranker, [{"id": "a"}, {"id": "b"}], k=10**400)) == 2


@pytest.mark.parametrize(
    "options",
    [
        {"freshness_half_life_h": 10**400},
        {"freshness_half_life_h": -(10**400)},
        {"diversity": 10**400},
        {"max_per_source": 0},
        {"now": 10**400},
        {"now": -(10**400)},
    ],
    ids=lambda o: "-".join(f"{k}={str(v)[:6]}" for k, v in o.items()),
)
def test_d3_huge_integers_are_typed_errors(ranker: Ranker, options: dict[str, Any]) -> None:
    """D3: an integer too large for a float is an InvalidInputError naming the parameter,
    never an OverflowError."""
    name = next(iter(options))
    if name == "now":
        from edgerec import parse_time

        with pytest.raises(InvalidInputError, match=r"^now"):
            parse_time(options["now"], "now")
        return
    with pytest.raises(InvalidInputError, match=name):
        _rec(ranker, [{"id": "a"}], **options)


def test_100k_candidates_are_refused_before_any_work(ranker: Ranker) -> None:
    huge = [{"id": f"n{i}"} for i in range(100_000)]
    with pytest.raises(InvalidInputError, match="100000 articles"):
        _rec(ranker, huge)
    assert len(ranker._cands) == 0


def test_the_cache_is_bounded_and_slots_are_reused(
    ranker: Ranker, feed: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgerec import ranking

    monkeypatch.setattr(ranking, "CACHE_SIZE", 30)
    _with_history(ranker, feed[:3])
    first = _rec(ranker, feed[3:28], k=5)
    assert len(ranker._cands) == 25
    rows = len(ranker._vectors)
    _rec(ranker, feed[28:48], k=5)  # 45 cached > 30: only this feed stays
    assert set(ranker._cands) == {a["id"] for a in feed[28:48]}
    again = _rec(ranker, feed[3:28], k=5)  # re-embedded into freed rows
    assert again == first
    assert len(ranker._vectors) <= max(rows, 45) + 256


@pytest.mark.parametrize(
    "rules",
    [{}, {"diversity": 0.8}, {"max_per_source": 1}, {"freshness_half_life_h": 6.0}],
    ids=["plain", "diversity", "per-source", "freshness"],
)
def test_a_model_in_shadow_ranks_an_identical_model_s_answer_identically(
    bundle: Bundle, feed: list[dict[str, Any]], rules: dict[str, Any]
) -> None:
    """Shadow ranks compare orders under the same rules: the same model as the candidate
    orders the active model's answer 1..k and agrees fully, through the shared check."""
    active, candidate = Ranker(bundle), Ranker(bundle)
    for r in (active, candidate):
        r.load_reader(feed[:5])
    out = _rec(active, feed[5:], **rules)
    shown = [r.id for r in out]
    ranks, agreement = candidate.shadow_ranks(
        feed[5:], shown, active.last_checked, **{**_options(), **rules}
    )
    assert ranks == list(range(1, len(shown) + 1)) and agreement == 1.0


def _options() -> dict[str, Any]:
    return {"k": 10, "now": NOW, "exclude_read": True}
