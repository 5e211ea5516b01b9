"""Ranking with feed signals (issue 18) on the committed SYNTHETIC fixture bundle, given a
spec that declares a vector and a prior and a manifest head: the score follows the
manifest's formula, a missing signal adds nothing, bad signals are refused before
anything is cached, and the history keeps each read's vector (encrypted, exported)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgerec import Recommender
from edgerec.errors import InvalidInputError, InvalidTypeError
from edgerec.features.signals import FeedSignals, encode_vector
from edgerec.model import Bundle
from edgerec.model.manifest import FeedHead
from edgerec.ranking import Ranker
from edgerec.trainer.data.synthetic import synthetic_articles
from tests.support.feed import feed_bundle as support_feed_bundle
from tests.support.updates import FIXTURE

DIM = 8
SIGNALS = FeedSignals(vector_dim=DIM, encoder="test-encoder", prior=True)
HEAD = FeedHead(model=2.0, vector=3.0, vector_mean=0.1, prior=0.5, prior_mean=-2.0)
KW: dict[str, Any] = {"now": 0.0, "exclude_read": False}  # no rules


def feed_bundle(folder: Path, signals: FeedSignals = SIGNALS, head: FeedHead = HEAD) -> Bundle:
    return support_feed_bundle(folder, signals, head)


def with_signals(articles: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i, a in enumerate(articles):
        extra: dict[str, Any] = {}
        if i % 5 != 1:  # every fifth has no vector
            extra["vector"] = encode_vector(rng.integers(-127, 128, DIM))
        if i % 7 != 2:  # every seventh has no prior
            extra["prior"] = float(rng.normal(-2.0, 1.0))
        out.append({**a, **extra})
    return out


def scores(
    ranker: Ranker, history: list[dict[str, Any]], cands: list[dict[str, Any]]
) -> np.ndarray:
    ranker.load_reader(history)
    recs = ranker.recommend(cands, k=len(cands), **KW)
    by_id = {r.id: r.score for r in recs}
    return np.array([by_id[c["id"]] for c in cands])


def _unit(text: str) -> np.ndarray:
    import base64

    v = np.frombuffer(base64.b64decode(text), np.int8).astype(np.float64)
    return v / np.linalg.norm(v)


def test_without_signals_the_order_is_the_models(tmp_path: Path) -> None:
    articles = synthetic_articles(40, seed=11)
    plain = scores(Ranker(Bundle.load(FIXTURE)), articles[:6], articles[6:])
    fed = scores(Ranker(feed_bundle(tmp_path / "b")), articles[:6], articles[6:])
    assert np.allclose(fed, HEAD.model * plain, rtol=1e-5, atol=1e-6)


def test_the_score_follows_the_manifest_formula(tmp_path: Path) -> None:
    articles = with_signals(synthetic_articles(40, seed=12), seed=1)
    history, cands = articles[:6], articles[6:]
    model = scores(Ranker(Bundle.load(FIXTURE)), history, cands)
    got = scores(Ranker(feed_bundle(tmp_path / "b")), history, cands)
    user = np.mean([_unit(a["vector"]) for a in history if "vector" in a], axis=0)
    user /= np.linalg.norm(user)
    expected = HEAD.model * model
    for j, c in enumerate(cands):
        if "vector" in c:
            expected[j] += HEAD.vector * (_unit(c["vector"]) @ user - HEAD.vector_mean)
        if "prior" in c:
            expected[j] += HEAD.prior * (c["prior"] - HEAD.prior_mean)
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(got, HEAD.model * model)  # the signals changed the scores


def test_a_history_without_vectors_adds_no_vector_term(tmp_path: Path) -> None:
    articles = with_signals(synthetic_articles(30, seed=13), seed=2)
    history = [{k: v for k, v in a.items() if k != "vector"} for a in articles[:5]]
    cands = [{k: v for k, v in a.items() if k != "prior"} for a in articles[5:]]
    model = scores(Ranker(Bundle.load(FIXTURE)), history, cands)
    got = scores(Ranker(feed_bundle(tmp_path / "b")), history, cands)
    assert np.allclose(got, HEAD.model * model, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("vector", encode_vector([1, 2, 3]), InvalidInputError),
        ("vector", "@@@@", InvalidInputError),
        ("vector", [1] * DIM, InvalidTypeError),
        ("prior", float("nan"), InvalidInputError),
        ("prior", "high", InvalidTypeError),
    ],
)
def test_a_bad_signal_is_refused_before_anything_is_cached(
    tmp_path: Path, field: str, value: Any, error: type
) -> None:
    ranker = Ranker(feed_bundle(tmp_path / "b"))
    articles = with_signals(synthetic_articles(12, seed=14), seed=3)
    bad = [*articles[2:], {**articles[0], field: value}]
    ranker.load_reader(articles[:2])
    with pytest.raises(error, match=rf"candidates\[10\]\['{field}'\]"):
        ranker.recommend(bad, k=3, **KW)
    assert ranker.cached_unit(articles[2]["id"]) is None  # nothing of the call was kept
    assert len(ranker.recommend(articles[2:], k=3, **KW)) == 3


def test_the_history_keeps_each_reads_vector(tmp_path: Path) -> None:
    bundle = feed_bundle(tmp_path / "b")
    articles = with_signals(synthetic_articles(30, seed=15), seed=4)
    key = bytes(range(32))
    with Recommender.open(tmp_path / "home", key=key, bundle=bundle) as rec:
        for a in articles[:5]:
            rec.record_read(a, at=1_700_000_000)
        before = [(r.id, round(r.score, 5)) for r in rec.recommend(articles[5:], k=10)]
        exported = rec.history.export()
        # "vector" was an ordinary key before feed signals: anything that is not a feed
        # vector under it is ignored, as unknown keys are, and the read is kept
        rec.record_read({**articles[6], "vector": [0.1, 0.2]})
        rec.record_read({**articles[7], "vector": "not base64"})
        newest = rec.history.recent(2)
        assert [e.article_id for e in newest] == [articles[7]["id"], articles[6]["id"]]
        assert all("vector" not in e.features for e in newest)
    events = json.loads(exported)["events"]
    assert [e["features"].get("vector") for e in events] == [a.get("vector") for a in articles[:5]]
    stamps = {e["features"].get("vector_encoder") for e in events if "vector" in e["features"]}
    assert stamps == {SIGNALS.encoder}  # which encoder made each kept vector
    raw = (tmp_path / "home" / "history.db").read_bytes()
    assert articles[0]["vector"].encode() not in raw  # encrypted like the rest
    with Recommender.open(tmp_path / "home", key=key, bundle=bundle) as rec:  # reopened
        again = [(r.id, round(r.score, 5)) for r in rec.recommend(articles[5:], k=10)]
    with Recommender.open(tmp_path / "home2", key=key, bundle=bundle) as rec:  # never closed
        for a in [*articles[:5], {**articles[6], "vector": [0.1]}, {**articles[7], "vector": "x"}]:
            rec.record_read(a, at=1_700_000_000)
        live = [(r.id, round(r.score, 5)) for r in rec.recommend(articles[5:], k=10)]
    assert again == live and before


def test_a_vector_stamped_by_another_encoder_is_ignored(tmp_path: Path) -> None:
    """Same width, another encoder: the reader's old vectors are not mixed in."""
    key = bytes(range(32))
    articles = with_signals(synthetic_articles(30, seed=17), seed=6)
    other = feed_bundle(tmp_path / "other", replace(SIGNALS, encoder="another-encoder"))
    with Recommender.open(tmp_path / "home", key=key, bundle=other) as rec:
        for a in articles[:5]:
            rec.record_read(a, at=1_700_000_000)
    cands = [{k: v for k, v in a.items() if k != "prior"} for a in articles[5:]]
    with Recommender.open(tmp_path / "home", key=key, bundle=feed_bundle(tmp_path / "b")) as rec:
        got = {r.id: r.score for r in rec.recommend(cands, k=25)}
    plain = scores(Ranker(Bundle.load(FIXTURE)), articles[:5], cands)
    assert np.allclose([got[c["id"]] for c in cands], HEAD.model * plain, rtol=1e-5, atol=1e-6)


def test_a_candidate_whose_signal_becomes_an_array_is_refused_typed(tmp_path: Path) -> None:
    ranker = Ranker(feed_bundle(tmp_path / "b"))
    articles = with_signals(synthetic_articles(8, seed=18), seed=7)
    ranker.load_reader(articles[:2])
    ranker.recommend(articles[2:], k=3, **KW)  # cached
    changed = [*articles[2:7], {**articles[7], "prior": np.array([1.5, 2.0])}]
    with pytest.raises(InvalidTypeError, match=r"candidates\[5\]\['prior'\]"):
        ranker.recommend(changed, k=3, **KW)


def test_a_stored_vector_of_another_width_is_ignored(tmp_path: Path) -> None:
    articles = with_signals(synthetic_articles(20, seed=16), seed=5)
    wide = [{**a, "vector": encode_vector(list(range(1, 17)))} for a in articles[:4]]
    model = scores(Ranker(Bundle.load(FIXTURE)), wide, articles[4:])
    cands = [{k: v for k, v in a.items() if k != "prior"} for a in articles[4:]]
    got = scores(Ranker(feed_bundle(tmp_path / "b")), wide, cands)
    assert np.allclose(got, HEAD.model * model, rtol=1e-5, atol=1e-6)


def test_inspect_model_prints_the_signals_and_the_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgerec import cli

    feed_bundle(tmp_path / "b")
    assert cli.main(["inspect-model", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert '"vector_dim": 8' in out and '"vector": 3.0' in out
