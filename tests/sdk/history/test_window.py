"""edgerec.history.window: recent(n) proves it returns exactly the newest n live events
(issue 17, item 1: a row deleted, put back or re-inserted with plain SQL inside the window,
the newest included, once the profile holds more than n events), the removal log against
tampering, the streaming whole-profile check, and the upgrade of a format-1 store (the
committed tests/fixtures/history_format1.db, written by the SDK before issue 17)."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from edgerec import IntegrityError
from tests.support.history import article, digest, filled, open_store, raw_sql

FORMAT1 = Path(__file__).resolve().parents[2] / "fixtures" / "history_format1.db"
ALICE = ["N11", "N10", "N9", "N8", "N6", "N5", "N4", "N2"]  # newest first (see the fixture)


def rows_of(path: Path) -> dict[int, tuple[Any, ...]]:
    with raw_sql(path) as conn:
        return {r[0]: r for r in conn.execute("SELECT seq, pid, key_id, blob FROM events")}


def put_back(path: Path, row: tuple[Any, ...]) -> None:
    with raw_sql(path) as conn:
        conn.execute("INSERT INTO events (seq, pid, key_id, blob) VALUES (?, ?, ?, ?)", row)


def test_recent_window_detects_a_row_deleted_inside_it(path: Path) -> None:
    filled(path, 20).close()
    with raw_sql(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = 17")  # inside the newest 5, of 20
    with open_store(path) as h:
        assert [e.seq for e in h.recent(3)] == [20, 19, 18]  # above the hole: still proven
        with pytest.raises(IntegrityError, match="missing"):
            h.recent(5)
        assert len(h) == 20  # the head still counts it: nothing was silently dropped


def test_recent_window_detects_the_newest_row_deleted(path: Path) -> None:
    filled(path, 20).close()
    with raw_sql(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = 20")
    with open_store(path) as h:
        for n in (1, 5):
            with pytest.raises(IntegrityError):
                h.recent(n)


def test_recent_window_detects_a_forgotten_row_put_back(path: Path) -> None:
    """The Recommender's case: a read forgotten through the API (or pruned), its authentic
    old ciphertext re-inserted with plain SQL, with or without its log entry deleted."""
    filled(path, 20).close()
    before = rows_of(path)
    with open_store(path) as h:
        assert h.forget("N17") == 1  # seq 18
    put_back(path, before[18])
    with open_store(path) as h:
        assert [e.seq for e in h.recent(2)] == [20, 19]
        with pytest.raises(IntegrityError):
            h.recent(5)
    with raw_sql(path) as conn:
        conn.execute("DELETE FROM removed")  # hide the removal too
    with open_store(path) as h, pytest.raises(IntegrityError, match="removal log"):
        h.recent(5)


def test_recent_window_detects_a_pruned_row_put_back(path: Path) -> None:
    filled(path, 12).close()
    before = rows_of(path)
    with open_store(path, max_events=10) as h:  # seqs 1 and 2 pruned at open
        assert [e.seq for e in h.recent(20)][-1] == 3
    put_back(path, before[2])
    with open_store(path) as h:
        assert len(h.recent(10)) == 10  # the window above it is still exactly right
        with pytest.raises(IntegrityError, match="floor"):
            h.recent(11)


def test_deleting_a_row_and_forging_its_log_entry_is_detected(path: Path) -> None:
    with filled(path, 20) as h:
        h.forget("N5")  # one genuine entry (seq 6)
    with raw_sql(path) as conn:
        (pid, mac) = conn.execute("SELECT pid, mac FROM removed").fetchone()
        conn.execute("DELETE FROM events WHERE seq = 17")
        conn.execute("INSERT INTO removed VALUES (?, 17, ?)", (pid, mac))  # a copied MAC
        conn.execute("DELETE FROM removed WHERE seq = 6")  # keeps the count right
    with open_store(path) as h:
        with pytest.raises(IntegrityError, match="authentication"):
            h.recent(5)
        with pytest.raises(IntegrityError):
            h.verify()


@pytest.mark.parametrize(
    ("column", "value"),
    [("seq", v) for v in ("text", -1, 0, 2**63 - 1, 1.5, b"")]  # (a key: never NULL)
    + [("mac", v) for v in (None, "text", 7, b"", b"\x00" * 32)],
)
def test_any_value_in_the_removal_log_is_an_integrity_error(
    path: Path, column: str, value: Any
) -> None:
    with filled(path, 6) as h:
        h.forget("N3")
    with raw_sql(path) as conn:
        conn.execute(f"UPDATE removed SET {column} = ?", (value,))
    with open_store(path) as h:
        with pytest.raises(IntegrityError):
            h.recent(6)
        with pytest.raises(IntegrityError):
            h.verify()


def test_forget_and_prune_keep_the_log_small_and_every_window_proven(path: Path) -> None:
    with filled(path, 30, max_events=25) as h:  # seqs 6..30
        for aid in ("N5", "N6", "N20", "N29"):  # the oldest two: the floor moves past them
            assert h.forget(aid) == 1
        live = [e.seq for e in h.recent(100)]
        assert live == [s for s in range(30, 7, -1) if s not in (21, 30)]
        for n in range(len(live) + 2):
            assert [e.seq for e in h.recent(n)] == live[:n]
        assert h.verify() == len(live)
    with raw_sql(path) as conn:
        assert [r[0] for r in conn.execute("SELECT seq FROM removed ORDER BY seq")] == [21, 30]
        (floor,) = conn.execute("SELECT floor FROM profiles").fetchone()
    assert floor == 7


def test_verify_memory_is_flat(tmp_path: Path) -> None:
    """D5: verify() streams the profile: its peak memory does not grow with the number of
    events (holding 4,000 decrypted events would take megabytes)."""
    peaks = []
    for n in (400, 4000):
        with open_store(tmp_path / f"{n}.db") as h:
            h.record_many([article(i) for i in range(n)], at=1.0)
            tracemalloc.start()
            assert h.verify() == n
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    assert peaks[1] < peaks[0] + 256 * 1024, peaks


# --------------------------------------------------------------- format 1 (old stores)
@pytest.fixture
def old(tmp_path: Path) -> Path:
    target = tmp_path / "history.db"
    shutil.copy(FORMAT1, target)
    return target


def test_format1_store_upgrades_per_profile_and_keeps_its_events(old: Path) -> None:
    with open_store(old, profile="alice") as h:
        assert [e.article_id for e in h.recent(20)] == ALICE
        assert h.verify() == 8 and len(h) == 8
        assert h.record(article(12)) == 13
    with raw_sql(old) as conn:
        assert conn.execute("SELECT value FROM store_meta WHERE name = 'format'").fetchone() == (
            b"3",
        )
        floors = sorted(r[0] is None for r in conn.execute("SELECT floor FROM profiles"))
        assert floors == [False, True, True]  # only alice so far
        logged = [r[0] for r in conn.execute("SELECT seq FROM removed ORDER BY seq")]
    assert logged == [4, 8]  # the two forgotten seqs; the pruned ones are below the floor
    with open_store(old, profile="bob") as h:
        assert [e.article_id for e in h] == ["N100", "N101", "N102"]
    with open_store(old, profile="carol") as h:
        assert h.recent(5) == [] and h.verify() == 0 and h.record(article(1)) == 3
    with open_store(old, profile="alice") as h:  # the window proof now holds for alice
        with raw_sql(old) as conn:
            conn.execute("DELETE FROM events WHERE seq = 11")
        with pytest.raises(IntegrityError):
            h.recent(4)


def test_format1_store_read_only_keeps_every_promise(old: Path) -> None:
    """Read-only, the store cannot be migrated: windows are proven by the whole head check."""
    before = digest(old)
    with open_store(old, profile="alice", read_only=True) as h:
        assert [e.article_id for e in h.recent(3)] == ALICE[:3]
        assert h.verify() == 8
    assert digest(old) == before
    with raw_sql(old) as conn:
        conn.execute("DELETE FROM events WHERE seq = 11")
    with open_store(old, profile="alice", read_only=True) as h, pytest.raises(IntegrityError):
        h.recent(3)


def test_format1_upgrade_is_one_transaction_and_idempotent(
    old: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgerec.history import window  # (imported here: the module is new in format 2)

    real = window.upgrade

    def dies(conn: Any, prof: Any, head: Any) -> bool:
        real(conn, prof, head)  # everything written, then the process "dies"
        raise OSError("killed mid-upgrade")

    monkeypatch.setattr(window, "upgrade", dies)
    with pytest.raises(OSError):
        open_store(old, profile="alice")
    with raw_sql(old) as conn:
        assert conn.execute("SELECT count(*) FROM removed").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM profiles WHERE floor IS NULL").fetchone() == (3,)
    monkeypatch.setattr(window, "upgrade", real)
    for _ in range(2):
        with open_store(old, profile="alice") as h:
            assert [e.article_id for e in h.recent(20)] == ALICE
    with raw_sql(old) as conn:
        assert conn.execute("SELECT count(*) FROM removed").fetchone() == (2,)


def test_format1_profile_with_tampered_rows_is_not_upgraded(old: Path) -> None:
    with raw_sql(old) as conn:
        conn.execute("DELETE FROM events WHERE seq = 11")
    with open_store(old, profile="alice") as h:  # opens, as it did; stays format 1
        with pytest.raises(IntegrityError):
            h.recent(3)
        with pytest.raises(IntegrityError):
            h.verify()
    with raw_sql(old) as conn:
        assert conn.execute("SELECT count(*) FROM profiles WHERE floor IS NULL").fetchone() == (3,)
