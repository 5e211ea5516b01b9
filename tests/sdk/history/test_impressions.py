"""edgerec.history.impressions: each profile's impression log, bounded, kept within the
read window, erased, forgotten and exported with the profile, sealed so that tampering
and truncation are detected (reliability cases A3/A7 for the new record: the log is
discarded, never trusted, and the reading history is untouched)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edgerec.history import ReadingHistory
from edgerec.history.impressions import MAX_IMPRESSIONS, PAGE, Impression, ImpressionLog
from tests.support.history import Clock, article, open_store, raw_sql


def _saved(path: Path, profile: str = "ann", n: int = 3) -> ReadingHistory:
    h = open_store(path, profile=profile)
    h.record(article(1))
    for i in range(n):
        h.impressions.add(Impression(100.0 * i, (f"N{i}", f"N{i + 1}", "N99"), [0]))
    h.save_impressions()
    return h


def test_the_log_is_saved_sealed_and_reloaded(path: Path) -> None:
    _saved(path).close()
    with raw_sql(path) as conn:
        (blob,) = conn.execute("SELECT blob FROM impressions").fetchone()
    assert b"N99" not in blob and b"N99" not in path.read_bytes()
    with open_store(path, profile="ann") as h:
        assert h.impressions.items[0].ids == ("N0", "N1", "N99")
        assert [imp.read for imp in h.impressions] == [[0], [0], [0]]
        assert not h.impressions.discarded


def test_bounded_to_the_newest(path: Path) -> None:
    log = ImpressionLog()
    for i in range(MAX_IMPRESSIONS + 5):
        log.add(Impression(float(i), (f"N{i}",)))
    assert len(log) == MAX_IMPRESSIONS and log.items[0].at == 5.0


def test_a_read_counts_within_the_window_for_the_newest_impression_showing_it() -> None:
    log = ImpressionLog([Impression(0.0, ("a", "b")), Impression(3600.0, ("c", "a"))])
    assert log.mark_read("a", 7200.0) is log.items[1] and log.items[1].read == [1]
    assert log.mark_read("a", 7300.0) is None  # already counted
    assert log.mark_read("b", 25 * 3600.0) is None  # past the 24 h window
    assert log.mark_read("b", -1.0) is None  # read before it was shown
    assert log.mark_read("zz", 7200.0) is None


def test_forget_drops_the_calls_that_showed_the_article(path: Path) -> None:
    with _saved(path) as h:
        h.forget("N1")  # shown by the first two impressions
        assert [imp.ids[0] for imp in h.impressions] == ["N2"]
    with open_store(path, profile="ann") as h:
        assert len(h.impressions) == 1


def test_export_holds_the_impressions(path: Path) -> None:
    with _saved(path, n=2) as h:
        doc = json.loads(h.export())
    assert doc["impressions"][1] == {"at": 100.0, "ids": ["N1", "N2", "N99"], "read": [0]}


def test_age_limit_applies_to_impressions(path: Path) -> None:
    _saved(path).close()
    clock = Clock(now=150.0)  # the impression served at 0 is 150 s old: past the limit
    with open_store(path, profile="ann", max_age_s=120.0, clock=clock) as h:
        assert [imp.at for imp in h.impressions] == [100.0, 200.0]


def test_e5_profiles_have_separate_impression_logs(path: Path) -> None:
    h = _saved(path, "ann", 2)
    h.switch_profile("bob")
    assert len(h.impressions) == 0
    h.impressions.add(Impression(5.0, ("B1",)))
    h.save_impressions()
    assert sorted(len(log) for log in h.device_impressions()) == [1, 2]
    assert h.erase_profile("ann")
    assert [len(log) for log in h.device_impressions()] == [1]
    h.close()


@pytest.mark.parametrize(
    "damage", ["flip-first", "flip-last", "truncate", "swap", "not-bytes", "moved-page"]
)
def test_a3_a7_tampered_impression_log_is_discarded_history_untouched(
    path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    _saved(path, "ann").close()
    _saved(path, "bob").close()
    with raw_sql(path) as conn:
        rows = dict(conn.execute("SELECT pid, blob FROM impressions").fetchall())
        pid_a, pid_b = sorted(rows)
        blob = bytearray(rows[pid_a])
        if damage == "flip-first":
            blob[0] ^= 1
        elif damage == "flip-last":
            blob[-1] ^= 1
        new: object = bytes(blob)
        if damage == "truncate":
            new = bytes(blob[: len(blob) // 2])
        elif damage == "swap":
            new = rows[pid_b]
        elif damage == "not-bytes":
            new = "text"
        if damage == "moved-page":  # the same ciphertext under another page number
            conn.execute("UPDATE impressions SET page = 1 WHERE pid = ?", (pid_a,))
        else:
            conn.execute("UPDATE impressions SET blob = ? WHERE pid = ?", (new, pid_a))
    with caplog.at_level(logging.ERROR, logger="edgerec"):
        logs = {}
        for name in ("ann", "bob"):
            with open_store(path, profile=name) as h:
                logs[name] = h.impressions
                assert len(h) == 1 and h.verify() == 1  # the history is untouched
    damaged = [name for name, log in logs.items() if log.discarded]
    assert len(damaged) == 1 and len(logs[damaged[0]]) == 0
    assert "IntegrityError" in caplog.text and "N99" not in caplog.text
    with open_store(path, profile=damaged[0]) as h:  # the next save replaces the bad row
        h.impressions.add(Impression(1.0, ("N5",)))
        h.save_impressions()
    with open_store(path, profile=damaged[0]) as h:
        assert not h.impressions.discarded and len(h.impressions) == 1


def test_a_read_only_handle_keeps_the_log_in_memory(path: Path) -> None:
    _saved(path).close()
    with open_store(path, profile="ann", read_only=True) as h:
        h.impressions.add(Impression(9.0, ("N9",)))
        h.save_impressions()  # nothing written, no error
    with open_store(path, profile="ann") as h:
        assert len(h.impressions) == 3


def test_malformed_records_are_refused() -> None:
    good = {"at": 1.0, "ids": ["a", "b"], "read": [1]}
    assert Impression.from_json(good).read == [1]
    bad = [
        {**good, "at": float("nan")},
        {**good, "ids": ["a", 3]},
        {**good, "read": [2]},
        {**good, "candidate": 2, "candidate_ranks": [1, 1], "agreement": 0.5},
        {**good, "candidate": 2, "candidate_ranks": [2, 1], "agreement": 1.5},
        [1, 2],
    ]
    from edgerec.errors import IntegrityError

    for doc in bad:
        with pytest.raises(IntegrityError):
            Impression.from_json(doc)


def test_impressions_added_before_the_stored_log_is_read_are_merged(path: Path) -> None:
    _saved(path).close()
    with open_store(path, profile="ann") as h:
        assert h.add_impression(Impression(500.0, ("N7",))) == 1  # nothing decrypted yet
        assert h.add_impression(Impression(600.0, ("N8",))) == 2
        h.save_impressions()
    with open_store(path, profile="ann") as h:
        assert [imp.at for imp in h.impressions] == [0.0, 100.0, 200.0, 500.0, 600.0]


def test_a_save_writes_only_the_pages_that_changed(path: Path) -> None:
    with open_store(path, profile="ann") as h:
        for i in range(3 * PAGE + 10):
            h.add_impression(Impression(float(i), (f"N{i}",)))
        h.save_impressions()
        with raw_sql(path) as conn:
            before = dict(conn.execute("SELECT page, blob FROM impressions").fetchall())
        assert sorted(before) == [0, 1, 2, 3]
        assert h.impressions.mark_read("N150", 150.5) is not None  # page 1
        h.save_impressions()
        with raw_sql(path) as conn:
            after = dict(conn.execute("SELECT page, blob FROM impressions").fetchall())
    assert [p for p in before if before[p] != after[p]] == [1]
    with open_store(path, profile="ann") as h:
        assert len(h.impressions) == 3 * PAGE + 10 and h.impressions.items[150].read == [0]


def test_the_oldest_pages_go_when_the_log_is_full(path: Path) -> None:
    with open_store(path, profile="ann") as h:
        assert len(h.impressions) == 0  # loaded: the adds number on from the stored log
        for i in range(MAX_IMPRESSIONS + PAGE + 5):
            h.add_impression(Impression(float(i), (f"N{i}",)))
        h.save_impressions()
        assert len(h.impressions) == MAX_IMPRESSIONS
    with raw_sql(path) as conn:
        pages = [r[0] for r in conn.execute("SELECT page FROM impressions ORDER BY page")]
    assert pages[0] == 1 and len(pages) == MAX_IMPRESSIONS // PAGE + 1
    with open_store(path, profile="ann") as h:
        assert h.impressions.items[0].at == float(PAGE + 5)
        assert h.impressions.next_seq == MAX_IMPRESSIONS + PAGE + 5
