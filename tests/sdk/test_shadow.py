"""Shadow evaluation through the public API (edgerec.shadow): a model installed with
``check_for_update(shadow=True)`` ranks the same calls as the active one, the readers'
reads decide, and a failing candidate never touches the active model.

The candidate is the SYNTHETIC fixture model with a feed head that ranks by the article's
``prior`` field; the simulated reader reads the shown article with the highest (or the
lowest) prior, so the candidate is the better (or the worse) model by construction."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgerec
from edgerec import shadow
from edgerec.errors import InvalidInputError, UpdateError
from edgerec.features.signals import FeedSignals
from edgerec.home import installed_status
from edgerec.model.manifest import FeedHead
from edgerec.trainer import publish
from edgerec.trainer.data.synthetic import synthetic_articles
from tests.support.feed import feed_bundle
from tests.support.history import drain, fork, kill9, raw_sql, read_lines_until
from tests.support.updates import Env, accept

KEY = bytes(range(32))
T0 = 1_701_000_000.0
PRIOR_HEAD = FeedHead(model=1e-6, vector=0.0, vector_mean=0.0, prior=1.0, prior_mean=0.0)


@pytest.fixture(scope="module")
def feed() -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    articles = synthetic_articles(600, seed=11)
    for article in articles:
        article["prior"] = round(float(rng.normal()), 4)
    return articles


@pytest.fixture()
def shadowed(v1: Env) -> Env:
    """Model 1 active; model 2 (ranks by prior) published, not yet installed."""
    folder = feed_bundle(v1.tmp / "candidate", FeedSignals(prior=True), PRIOR_HEAD, version=2)
    publish.publish(v1.repo, folder.path, v1.keys)
    return v1


def _open(home: Path, **kw: Any) -> edgerec.Recommender:
    return edgerec.Recommender.open(home, key=KEY, clock=lambda: T0, **kw)


def _serve(
    rec: edgerec.Recommender, feed: list[dict[str, Any]], calls: int, *, best: bool, start: int = 0
) -> None:
    """``calls`` recommendations of 10 of the feed's articles; the reader reads the
    returned article with the highest prior (``best``) or the lowest."""
    by_id = {a["id"]: a for a in feed}
    for i in range(start, start + calls):
        at = T0 + 600 * i
        batch = [feed[(7 * i + j) % len(feed)] for j in range(10)]
        out = rec.recommend(batch, k=10, now=at, exclude_read=False)
        pick = max if best else min
        chosen = pick(out, key=lambda r: by_id[r.id]["prior"])
        rec.record_read(by_id[chosen.id], at=at + 60)


def _with_history(rec: edgerec.Recommender, feed: list[dict[str, Any]]) -> None:
    for article in feed[-5:]:
        rec.record_read(article, at=T0 - 3600)


def test_shadow_install_leaves_the_active_model_answering(shadowed: Env, feed: list) -> None:
    with _open(shadowed.home) as rec:
        _with_history(rec, feed)
        before = rec.recommend(feed[:50], k=10, now=T0)
        result = rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        assert result is not None and result.shadow and result.version == 2
        assert result.previous == 1 and rec.model_version == 1
        status = installed_status(shadowed.home)
        assert (status.active, status.candidate) == (1, 2)
        assert rec.recommend(feed[:50], k=10, now=T0) == before  # the active model's answer
        report = rec.shadow_status()
        assert (report.candidate, report.active, report.impressions, report.reads) == (2, 1, 1, 0)
        assert report.decision == "pending" and report.agreement is not None
        # Already in shadow: not installed again.
        assert rec.check_for_update(shadowed.server.url, shadow=True, validator=accept) is None


def test_better_candidate_is_promoted_then_serves_on_probation(shadowed: Env, feed: list) -> None:
    with _open(shadowed.home) as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        _serve(rec, feed, 49, best=True)
        assert rec.model_version == 1 and rec.shadow_status().reads == 49
        _serve(rec, feed, 1, best=True, start=49)  # the 50th read: the first look
        assert rec.model_version == 2
        status = installed_status(shadowed.home)
        assert (status.active, status.previous, status.candidate) == (2, 1, None)
        assert status.on_probation
        assert rec.shadow_status().decision == "none"


def test_worse_candidate_is_rejected_and_never_reinstalled(shadowed: Env, feed: list) -> None:
    with _open(shadowed.home) as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        _serve(rec, feed, 50, best=False)
        assert rec.model_version == 1
        status = installed_status(shadowed.home)
        assert (status.active, status.candidate, status.rejected) == (1, None, 2)
        assert not (shadowed.home / "models" / "2").exists()
        assert rec.check_for_update(shadowed.server.url, shadow=True, validator=accept) is None
        assert rec.check_for_update(shadowed.server.url, validator=accept) is None


def test_evidence_from_every_profile_counts_and_survives_a_restart(
    shadowed: Env, feed: list
) -> None:
    with _open(shadowed.home, profile="ann") as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        _serve(rec, feed, 30, best=True)
    with _open(shadowed.home, profile="bob") as rec:
        _with_history(rec, feed)
        status = rec.shadow_status()
        assert (status.candidate, status.reads) == (2, 30)
        _serve(rec, feed, 19, best=True, start=30)
        assert rec.shadow_status().reads == 49 and rec.model_version == 1
        _serve(rec, feed, 1, best=True, start=49)
        assert rec.model_version == 2


def test_e2_erasing_a_profile_removes_its_impressions_and_shadow_counts(
    shadowed: Env, feed: list
) -> None:
    with _open(shadowed.home, profile="ann") as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        _serve(rec, feed, 20, best=True)
        ann_ids = {i for imp in rec.history.impressions for i in imp.ids}
    with _open(shadowed.home, profile="bob") as rec:
        _with_history(rec, feed)
        _serve(rec, feed, 10, best=True, start=100)
        assert rec.shadow_status().reads == 30
        assert rec.history.erase_profile("ann")
        assert rec.shadow_status().reads == 10
    with raw_sql(shadowed.home / "history.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM impressions").fetchone() == (1,)
    with _open(shadowed.home, profile="ann") as rec:  # a new, empty profile of that name
        assert len(rec.history.impressions) == 0 and ann_ids


@pytest.mark.parametrize("failure", ["nan", "crash"])
def test_c12_failing_candidate_is_rejected_and_the_active_model_untouched(
    shadowed: Env, feed: list, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    with _open(shadowed.home) as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        expected = rec.recommend(feed[100:140], k=10, now=T0)
        candidate = rec._shadow.candidate
        assert candidate is not None and candidate.ranker.runner is not None
        runner = candidate.ranker.runner

        def broken(rows: Any) -> Any:
            if failure == "crash":
                raise RuntimeError("the interpreter failed")
            return np.full((len(rows), runner.bundle.manifest.vector_dim), np.nan, np.float32)

        runner.item_vectors = broken  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="edgerec"):
            got = rec.recommend(feed[200:240], k=10, now=T0)
        assert len(got) == 10 and all(np.isfinite(r.score) for r in got)
        assert rec.model_version == 1
        status = installed_status(shadowed.home)
        assert (status.active, status.candidate, status.rejected) == (1, None, 2)
        assert "rejected" in caplog.text
        assert rec.recommend(feed[100:140], k=10, now=T0) == expected


def test_b1_kill9_during_shadow_scoring_keeps_every_recorded_read(
    shadowed: Env, feed: list
) -> None:
    with _open(shadowed.home) as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)

    def child(w: int) -> None:
        with _open(shadowed.home) as rec:
            _serve(rec, feed, 12, best=True)
            os.write(w, b"served\n")
            original = shadow.Candidate.score

            def stalled(self: Any, *args: Any) -> bool:
                os.write(w, b"scoring\n")
                time.sleep(60)
                return original(self, *args)

            shadow.Candidate.score = stalled  # type: ignore[method-assign]
            rec.recommend(feed[300:340], k=10, now=T0 + 90_000)

    pid, r = fork(child)
    try:
        lines, _ = read_lines_until(r, 60, 2)
        assert lines == ["served", "scoring"]
    finally:
        kill9(pid)
        drain(r)
    with _open(shadowed.home) as rec:
        assert len(rec.history) == 5 + 12
        assert not rec.history.impressions.discarded
        assert len(rec.history.impressions) == 12
        status = rec.shadow_status()
        assert (status.candidate, status.reads, status.decision) == (2, 12, "pending")
        assert rec.model_version == 1


def test_operator_overrides(shadowed: Env, feed: list) -> None:
    with _open(shadowed.home) as rec:
        with pytest.raises(UpdateError):
            rec.promote_candidate()
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        assert rec.promote_candidate() == 2 and rec.model_version == 2
        assert installed_status(shadowed.home).on_probation


def test_operator_reject(shadowed: Env) -> None:
    with _open(shadowed.home) as rec:
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        assert rec.reject_candidate() == 2
        assert installed_status(shadowed.home).rejected == 2
        with pytest.raises(UpdateError):
            rec.reject_candidate()


def test_e6_guests_leave_no_impressions_and_do_not_shadow(shadowed: Env, feed: list) -> None:
    with _open(shadowed.home) as rec:
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
    with edgerec.Recommender.open_guest(shadowed.home) as guest:
        assert guest.recommend(feed[:20], k=5, now=T0)
        assert len(guest.history.impressions) == 0
        assert guest.shadow_status().candidate is None
        with pytest.raises(InvalidInputError):
            guest.promote_candidate()


def test_shadow_needs_an_active_model(env: Env) -> None:
    with pytest.raises(UpdateError):
        env.install(validator=accept, shadow=True)


def test_bad_rule_arguments_are_typed_errors(tmp_path: Path) -> None:
    bad = ({"shadow_min_reads": 29}, {"shadow_margin": -0.1}, {"shadow_margin": "0"})
    for kw in bad:
        with pytest.raises((InvalidInputError, edgerec.InvalidTypeError)):
            _open(tmp_path, **kw)


def test_c12_a_candidate_failing_on_the_reader_is_rejected_and_reads_are_kept(
    shadowed: Env, feed: list
) -> None:
    with _open(shadowed.home) as rec:
        _with_history(rec, feed)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        candidate = rec._shadow.candidate
        assert candidate is not None and candidate.ranker.runner is not None

        def broken(rows: Any) -> Any:
            raise RuntimeError("the interpreter failed")

        candidate.ranker.runner.user_vector = broken  # type: ignore[method-assign]
        rec.record_read(feed[0], at=T0)  # no error reaches the caller; the read is kept
        assert len(rec.history) == 6 and rec.model_version == 1
        assert installed_status(shadowed.home).candidate is None
    with _open(shadowed.home) as rec:  # and the app opens again
        assert rec.shadow_status().candidate is None


def test_an_override_does_what_was_asked_whatever_the_evidence(shadowed: Env, feed: list) -> None:
    """The overrides never act on the evidence first, even for a candidate another
    process installed while this Recommender was open."""
    with _open(shadowed.home, profile="app") as app:
        with _open(shadowed.home, profile="other", shadow_min_reads=800) as other:
            _with_history(other, feed)
            other.check_for_update(shadowed.server.url, shadow=True, validator=accept)
            _serve(other, feed, 60, best=True)  # enough to promote at 50, not looked at
        assert app.reject_candidate() == 2
        status = installed_status(shadowed.home)
        assert (status.active, status.candidate, status.rejected) == (1, None, 2)


def test_a_plain_update_activates_the_model_in_shadow(shadowed: Env) -> None:
    assert shadowed.install(validator=accept, shadow=True) is not None
    result = shadowed.install(validator=accept)
    assert result is not None and result.version == 2 and not result.shadow
    status = installed_status(shadowed.home)
    assert (status.active, status.previous, status.candidate) == (2, 1, None)


def test_forget_scrubs_the_impressions_that_showed_the_article(shadowed: Env, feed: list) -> None:
    secret = {**feed[0], "id": "SECRET-ID-0001"}
    with _open(shadowed.home) as rec:
        rec.recommend([secret, *feed[1:9]], k=9, now=T0)
        rec.history.save_impressions()
        with raw_sql(shadowed.home / "history.db") as conn:
            (old,) = conn.execute("SELECT blob FROM impressions").fetchone()
        rec.history.forget("SECRET-ID-0001")
        data = b"".join(p.read_bytes() for p in shadowed.home.glob("history.db*"))
        assert old[20:84] not in data  # no 64-byte window of the old page is left
        assert len(rec.history.impressions) == 0


def test_a_rollback_keeps_the_candidate_and_restarts_its_comparison(
    shadowed: Env, feed: list
) -> None:
    """Model 2 active on probation (model 1 previous), model 3 in shadow: the active model
    fails, the device rolls back to 1, and model 3 is now compared with model 1 only."""
    from tests.support.updates import make_bundle

    with _open(shadowed.home, shadow_min_reads=800) as rec:
        _with_history(rec, feed)
        assert rec.check_for_update(shadowed.server.url, validator=accept) is not None  # 2
        publish.publish(shadowed.repo, make_bundle(shadowed.tmp, 3), shadowed.keys)
        rec.check_for_update(shadowed.server.url, shadow=True, validator=accept)
        assert (rec.model_version, rec.shadow_status().candidate) == (2, 3)
        _serve(rec, feed, 5, best=True)
        assert rec.shadow_status().reads == 5
        assert rec.rollback() == 1
        status = rec.shadow_status()
        assert (status.active, status.candidate, status.reads) == (1, 3, 0)
        assert installed_status(shadowed.home).candidate == 3
        _serve(rec, feed, 3, best=True, start=5)
        assert rec.shadow_status().reads == 3
