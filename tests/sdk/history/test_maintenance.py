"""edgerec.history.maintenance: retention, erasure (E2, E3; kill -9 mid-erase, B9), key
rotations (A10; kill -9 mid-rotation, A11; the key-use limit, A12), master-key rotation."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import edgerec
from edgerec import (
    ClosedError,
    WrongKeyError,
)
from edgerec.history import crypto
from edgerec.history.impressions import Impression
from tests.support.history import (
    CANARY_ID,
    CANARY_PROFILE,
    KEY,
    OTHER_KEY,
    Clock,
    article,
    canary_article,
    drain,
    filled,
    fork,
    integrity_ok,
    kill9,
    open_store,
    raw_bytes,
    raw_sql,
    read_lines_until,
)


def test_retention_by_count(path: Path) -> None:
    with filled(path, 8, max_events=3) as h:
        assert [e.seq for e in h.recent(10)] == [8, 7, 6]
        assert h.verify() == 3


def test_retention_by_age(path: Path) -> None:
    clock = Clock(10_000.0)
    with open_store(path, clock=clock, max_age_s=100.0) as h:
        for t in (9_850.0, 9_890.0, 9_950.0, 9_990.0):
            h.record(article(int(t)), at=t)
        assert [e.at for e in h.recent(10)] == [9_990.0, 9_950.0]
        clock.now = 10_060.0
        assert h.prune() == 1
        assert [e.at for e in h.recent(10)] == [9_990.0]
        assert h.verify() == 1
    clock.now = 20_000.0
    with open_store(path, clock=clock, max_age_s=100.0) as h:  # pruned at open too
        assert len(h) == 0


def test_rotate_master_key_rewraps_only(path: Path) -> None:
    with filled(path, 3) as h:
        with raw_sql(path) as conn:
            before = conn.execute("SELECT seq, blob FROM events").fetchall()
        h.rotate_master_key(passphrase="new pass")
        with raw_sql(path) as conn:
            assert conn.execute("SELECT seq, blob FROM events").fetchall() == before
    with pytest.raises(WrongKeyError):
        open_store(path, key=KEY)
    with open_store(path, passphrase="new pass") as h:
        assert h.verify() == 3
        h.rotate_master_key(key=OTHER_KEY)
    with pytest.raises(WrongKeyError):
        open_store(path, passphrase="new pass")
    with open_store(path, key=OTHER_KEY) as h:
        assert len(h) == 3


def test_a10_rotation_stages(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = filled(path, 10, rotation_batch=3)
    real_seal = crypto.seal_record
    calls = {"n": 0}

    def failing_seal(*args: Any, **kw: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] > 4:  # the second re-encryption batch dies
            raise OSError("injected")
        return real_seal(*args, **kw)

    monkeypatch.setattr(crypto, "seal_record", failing_seal)
    with pytest.raises(OSError):
        h.rotate_profile_key()
    monkeypatch.setattr(crypto, "seal_record", real_seal)
    with raw_sql(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT key_id FROM events ORDER BY seq")]
        nkeys = conn.execute("SELECT count(*) FROM profile_keys").fetchone()[0]
    assert ids == [2, 2, 2] + [1] * 7 and nkeys == 2  # stage 2: both keys enabled
    assert h.verify() == 10  # every row readable mid-rotation
    assert h.record(article(11)) == 11
    h.close()
    with raw_sql(path) as conn:
        assert conn.execute("SELECT key_id FROM events WHERE seq = 11").fetchone()[0] == 2
    with open_store(path) as h:  # resumed at open; old key retired
        assert h.verify() == 11
    with raw_sql(path) as conn:
        assert {r[0] for r in conn.execute("SELECT key_id FROM events")} == {2}
        assert [r[0] for r in conn.execute("SELECT key_id FROM profile_keys")] == [2]


def test_a12_nonces_unique_and_key_use_limit_forces_rotation(path: Path) -> None:
    with filled(path, 12, key_use_limit=5) as h:
        assert h.verify() == 12
    with open_store(path, key_use_limit=5) as h:
        for i in range(5):
            h.record(article(100 + i))
    with raw_sql(path) as conn:
        rows = conn.execute("SELECT key_id, blob FROM events").fetchall()
        keys = [r[0] for r in conn.execute("SELECT key_id FROM profile_keys")]
    assert len(keys) == 1 and keys[0] > 3  # rotated more than twice
    pairs = {(k, bytes(b[1:13])) for k, b in rows}
    assert len(pairs) == len(rows)


def test_a11_kill9_during_rotation_resumes(path: Path) -> None:
    rng = random.Random(2)
    with open_store(path, synchronous="NORMAL") as h:
        for i in range(150):
            h.record(article(i), at=float(i))

    def rotator(w: int) -> None:
        h = open_store(path, rotation_batch=4)
        os.write(w, b"open\n")
        while True:
            h.rotate_profile_key()

    mid_rotation = 0
    for _ in range(50):
        pid, r = fork(rotator)
        assert read_lines_until(r, 10.0, want=1)[0] == ["open"]
        time.sleep(rng.uniform(0, 0.05))
        kill9(pid)
        drain(r)
        with raw_sql(path) as conn:
            row_keys = {r[0] for r in conn.execute("SELECT key_id FROM events")}
            enabled = {r[0] for r in conn.execute("SELECT key_id FROM profile_keys")}
            seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
        assert row_keys <= enabled and 1 <= len(enabled) <= 2  # each row: one enabled key
        mid_rotation += len(row_keys) == 2
        assert seqs == list(range(1, 151))  # none lost or duplicated
    assert mid_rotation > 0  # some kills really fell between re-encryption batches
    with open_store(path) as h:  # resumes and retires the old key
        assert h.verify() == 150
        assert [e.article_id for e in h.recent(2)] == ["N149", "N148"]
    with raw_sql(path) as conn:
        assert conn.execute("SELECT count(*) FROM profile_keys").fetchone()[0] == 1
        assert conn.execute("SELECT count(DISTINCT key_id) FROM events").fetchone()[0] == 1


def test_e2_erase_profile_scrubs_ciphertexts_and_keys(path: Path) -> None:
    h = open_store(path, profile=CANARY_PROFILE)
    for _ in range(30):
        h.record(canary_article())
    h.impressions.add(Impression(1.0, (canary_article()["id"], "N2"), [0]))
    h.save_impressions()
    h.switch_profile("bob")
    h.record(article(1))
    with raw_sql(path) as conn:
        (pid,) = conn.execute("SELECT pid FROM events GROUP BY pid HAVING count(*) = 30").fetchone()
        secrets_ = [
            bytes(r[0]) for r in conn.execute("SELECT blob FROM events WHERE pid = ?", (pid,))
        ]
        secrets_ += [
            bytes(r[0])
            for r in conn.execute("SELECT wrapped FROM profile_keys WHERE pid = ?", (pid,))
        ]
        secrets_ += [
            bytes(r[0]) for r in conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (pid,))
        ]
        secrets_ += [
            bytes(r[0]) for r in conn.execute("SELECT blob FROM impressions WHERE pid = ?", (pid,))
        ]
    assert len(secrets_) == 33 and secrets_[0] in raw_bytes(path)
    assert h.erase_profile(CANARY_PROFILE) is True
    data = raw_bytes(path)
    for s in secrets_:
        assert s[13:45] not in data  # a 32-byte window of every ciphertext / wrapped key
    assert pid not in data
    assert h.profiles() == ["bob"] and len(h) == 1
    names = {p.name for p in path.parent.iterdir()}  # no temp or journal files left over
    assert names <= {path.name, f"{path.name}-wal", f"{path.name}-shm"}
    assert h.erase_profile(CANARY_PROFILE) is False
    h.close()
    with raw_sql(path) as conn:
        assert conn.execute("SELECT count(*) FROM erase_journal").fetchone()[0] == 0
        assert (
            conn.execute("SELECT count(*) FROM profile_keys WHERE pid = ?", (pid,)).fetchone()[0]
            == 0
        )


def test_e3_erase_waits_for_reader_or_reports_busy(path: Path) -> None:
    h = open_store(path, profile=CANARY_PROFILE, busy_timeout_s=0.2)
    for _ in range(5):
        h.record(canary_article())
    with raw_sql(path) as conn:
        (blob,) = conn.execute("SELECT blob FROM events LIMIT 1").fetchone()
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # holds a snapshot
    h.switch_profile("other")
    with pytest.raises(edgerec.StorageBusyError):
        h.erase_profile(CANARY_PROFILE)
    assert CANARY_PROFILE not in h.profiles()  # key destroyed already; scrub pending
    reader.execute("COMMIT")
    reader.close()
    h.erase_profile(CANARY_PROFILE)  # the retry completes the scrub
    assert bytes(blob)[13:45] not in raw_bytes(path)
    h.close()


def test_erasing_active_profile_leaves_handle_without_profile(path: Path) -> None:
    with filled(path, 2, profile="p") as h:
        assert h.erase_profile("p")
        with pytest.raises(ClosedError):
            h.record(article(1))
        h.switch_profile("p")  # a new, empty profile of the same name
        assert len(h) == 0


def test_profile_recreated_while_its_scrub_is_pending(path: Path) -> None:
    h = filled(path, 2, profile="p", busy_timeout_s=0.1)
    h.switch_profile("q")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()
    with pytest.raises(edgerec.StorageBusyError):
        h.erase_profile("p")
    h.switch_profile("p")  # new, empty; the scrub still pending
    h.record(article(5))
    reader.execute("COMMIT")
    reader.close()
    h.close()
    with open_store(path, profile="p") as h:  # the pending scrub runs at open
        assert [e.article_id for e in h] == ["N5"]  # and spares the new profile
    with raw_sql(path) as conn:
        assert conn.execute("SELECT count(*) FROM erase_journal").fetchone()[0] == 0


def erase_round(path: Path, kill_at: Any) -> tuple[list[bytes], bool]:
    """Add the victim profile, fork an eraser, kill it per ``kill_at``; return the
    victim's ciphertexts and whether the erase was caught half-way (journal non-empty)."""
    with open_store(path, profile=CANARY_PROFILE, synchronous="NORMAL") as h:
        for _ in range(15):
            h.record(canary_article())
    with raw_sql(path) as conn:
        blobs = [bytes(r[0]) for r in conn.execute("SELECT blob FROM events")]

    def eraser(w: int) -> None:
        h = open_store(path, profile="keeper")
        kill_at(h)
        os.write(w, b"open\n")
        h.erase_profile(CANARY_PROFILE)
        os.write(w, b"done\n")

    pid, r = fork(eraser)
    if kill_at is no_hook:
        assert read_lines_until(r, 10.0, want=1)[0] == ["open"]
        time.sleep(random.Random(len(blobs)).uniform(0, 0.03))
        kill9(pid)
        drain(r)
    else:  # the child kills itself at the hooked point
        drain(r)
        os.waitpid(pid, 0)
    with raw_sql(path) as conn:
        journaled = conn.execute("SELECT count(*) FROM erase_journal").fetchone()[0] > 0
    return blobs, journaled


def no_hook(h: Any) -> None:
    pass


def die_at_first_checkpoint(h: Any) -> None:
    def die() -> None:
        os.kill(os.getpid(), 9)

    h._db.checkpoint = die  # after the key is destroyed and the rows deleted, before the scrub


def check_after_erase(path: Path, blobs: list[bytes]) -> None:
    with open_store(path, profile="keeper") as h:  # finishes any journaled erase
        names = h.profiles()
        assert h.verify() == 5
    if CANARY_PROFILE in names:  # killed before the erase began: wholly intact
        with open_store(path, profile=CANARY_PROFILE) as h:
            assert h.verify() == len(blobs) - 5
            h.erase_profile(CANARY_PROFILE)
    else:
        assert names == ["keeper"]
    data = raw_bytes(path)
    assert sum(b[13:45] in data for b in blobs) == 5  # only the keeper's rows remain
    assert integrity_ok(path)


def test_b9_kill9_mid_scrub_completes_on_next_open(path: Path) -> None:
    with open_store(path, profile="keeper", synchronous="NORMAL") as h:
        for i in range(5):
            h.record(article(i))
    blobs, journaled = erase_round(path, die_at_first_checkpoint)
    assert journaled  # the kill really fell between key destruction and scrub
    with raw_sql(path) as conn:  # the key was destroyed in the journaled transaction
        assert conn.execute("SELECT count(*) FROM profile_keys").fetchone()[0] == 1
    check_after_erase(path, blobs)


def test_b9_kill9_at_random_points_of_erase(path: Path) -> None:
    with open_store(path, profile="keeper", synchronous="NORMAL") as h:
        for i in range(5):
            h.record(article(i))
    for _ in range(10):
        blobs, _ = erase_round(path, no_hook)
        check_after_erase(path, blobs)


# ------------------------------------------ forget and pruning scrub the WAL (issue 17, 2)
def ciphertexts(path: Path, *seqs: int) -> list[bytes]:
    """A 32-byte window of each row's ciphertext: what the raw-byte scans look for."""
    with raw_sql(path) as conn:
        return [
            bytes(conn.execute("SELECT blob FROM events WHERE seq = ?", (s,)).fetchone()[0])[13:45]
            for s in seqs
        ]


def test_forget_leaves_no_ciphertext_in_db_wal_or_shm(path: Path) -> None:
    h = open_store(path, profile=CANARY_PROFILE)
    for i in range(30):
        h.record(canary_article() if i in (3, 17) else article(i))
    gone, kept = ciphertexts(path, 4, 18), ciphertexts(path, 5, 30)
    assert all(c in raw_bytes(path) for c in gone + kept)
    assert h.forget(CANARY_ID) == 2
    data = raw_bytes(path)  # the store is still open: DB, WAL and SHM as they are now
    assert not [c for c in gone if c in data]
    assert all(c in data for c in kept)  # the scan does see ciphertexts that remain
    h.close()


@pytest.mark.parametrize("how", ["prune", "record"])
def test_retention_pruning_leaves_no_ciphertext_in_db_wal_or_shm(path: Path, how: str) -> None:
    clock = Clock(10_000.0)
    h = open_store(path, clock=clock, max_age_s=100.0, max_events=40)
    for i in range(30):
        h.record(article(i), at=9_950.0 + i)
    gone = ciphertexts(path, 1, 2, 3)
    clock.now = 10_053.0  # seqs 1..3 now older than max_age_s
    if how == "prune":
        assert h.prune() == 3
    else:
        h.record(article(99), at=10_053.0)  # record() applies the limits too
    assert len(h) == 27 + (how == "record")
    assert not [c for c in gone if c in raw_bytes(path)]
    h.close()


def test_forget_with_a_reader_holding_a_snapshot_reports_busy(path: Path) -> None:
    """E3's rule for forget and prune: never success with the bytes left behind."""
    h = open_store(path, busy_timeout_s=0.2)
    for i in range(6):
        h.record(article(i))
    (gone,) = ciphertexts(path, 3)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # holds a snapshot
    with pytest.raises(edgerec.StorageBusyError):
        h.forget("N2")
    assert len(h) == 5 and [e.article_id for e in h].count("N2") == 0  # removed already
    assert gone in raw_bytes(path)  # ... and said so, since its bytes are still there
    h.record(article(7))  # a write while the reader holds on: no error, still pending
    reader.execute("COMMIT")
    reader.close()
    h.record(article(8))  # the handle's next write finishes the scrub
    assert gone not in raw_bytes(path)
    h.close()


def test_record_never_fails_for_a_blocked_scrub_and_close_finishes_it(path: Path) -> None:
    h = open_store(path, max_events=3, busy_timeout_s=0.2)
    for i in range(3):
        h.record(article(i))
    (gone,) = ciphertexts(path, 1)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()
    assert h.record(article(3)) == 4  # seq 1 pruned; the scrub waits for the reader
    assert gone in raw_bytes(path)
    reader.execute("COMMIT")
    h.close()  # another connection is open, so SQLite keeps the WAL: we scrub it
    assert gone not in raw_bytes(path)
    reader.close()
