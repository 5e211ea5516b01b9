"""edgerec.history under faults: kill -9 (appends, rotation, erase), threads and processes,
a busy lock, disk full, read-only files, injected I/O errors (reliability cases b, d6, d7).

Children are forked (no interpreter start-up per kill), so 100 kills take seconds. The
1,000-kill soak is benchmarks/soak_history.py.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edgerec import (
    IntegrityError,
    ReadOnlyStorageError,
    StorageBusyError,
    StorageFullError,
    StorageIOError,
)

from .history_support import (
    CANARY_PROFILE,
    article,
    canary_article,
    drain,
    fork,
    kill9,
    open_store,
    raw_bytes,
    raw_sql,
    read_lines_until,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


def integrity_ok(path: Path) -> bool:
    with raw_sql(path) as conn:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]


def appender(path: Path, **kw: Any) -> Any:
    def run(w: int) -> None:
        h = open_store(path, **kw)
        i = 0
        while True:
            seq = h.record(article(i), at=float(i))
            os.write(w, f"{seq}\n".encode())  # acknowledged: record() has returned
            i += 1

    return run


# ------------------------------------------------------------------ B1: kill -9
def test_b1_kill9_during_appends_loses_no_acknowledged_write(path: Path) -> None:
    rng = random.Random(1)
    open_store(path).close()
    acked: set[int] = set()
    kills = 100
    for n in range(kills):
        pid, r = fork(appender(path))
        if n % 2:  # half the kills land anywhere, open included
            time.sleep(rng.uniform(0, 0.03))
        else:  # half after the first acknowledged write, mid-stream
            first, _ = read_lines_until(r, 30.0, want=1)
            assert first, "the appender acknowledged nothing"
            time.sleep(rng.uniform(0, 0.01))
        kill9(pid)
        acked |= {int(s) for s in drain(r)}
        if n % 10 == 9 or n == kills - 1:
            assert integrity_ok(path)
            with open_store(path) as h:
                present = {e.seq for e in h}  # full read: the head record verifies
                assert h.verify() == len(present)
            missing = acked - present
            assert not missing, f"acknowledged writes lost: {sorted(missing)[:5]}"
    assert len(acked) >= kills // 2  # the kills really hit a working appender


# ------------------------------------------------------------- A11: rotation
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


# ----------------------------------------------------------------- B9: erase
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


# ------------------------------------------------------- D6 / D7: concurrency
def test_d6_eight_threads_lose_nothing(path: Path) -> None:
    shared = open_store(path)
    errors: list[BaseException] = []
    per_thread = 20

    def work(tid: int) -> None:
        try:
            h = shared if tid < 4 else open_store(path)  # shared handle and own handles
            for i in range(per_thread):
                h.record(article(tid * 1000 + i))
                h.recent(5)
                if tid == 7 and i % 5 == 0:  # and erasures of another profile meanwhile
                    h.switch_profile(f"temp-{i}")
                    h.record(article(i))
                    h.switch_profile("default")
                    h.erase_profile(f"temp-{i}")
            if h is not shared:
                h.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ids = [e.article_id for e in shared]
    assert len(ids) == 8 * per_thread == len(set(ids))
    assert shared.verify() == 8 * per_thread
    assert shared.profiles() == ["default"]
    shared.close()


def test_d7_two_processes_and_eight_threads_write_at_once(path: Path) -> None:
    open_store(path).close()

    def writer(tag: int) -> Any:
        def run(w: int) -> None:  # each process: 4 threads (2 share a handle), 8 in all
            shared = open_store(path, busy_timeout_s=30.0)
            lock = threading.Lock()
            failed: list[BaseException] = []

            def work(t: int) -> None:
                try:
                    h = shared if t < 2 else open_store(path, busy_timeout_s=30.0)
                    for i in range(15):
                        seq = h.record(article(tag * 1000 + t * 100 + i))
                        h.recent(3)
                        with lock:
                            os.write(w, f"{seq}\n".encode())
                except BaseException as exc:
                    failed.append(exc)

            threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failed:
                raise failed[0]

        return run

    kids = [fork(writer(t)) for t in (1, 2)]
    acked = []
    for pid, r in kids:
        acked += [int(s) for s in drain(r)]
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    assert sorted(acked) == list(range(1, 121))  # no seq handed out twice
    with open_store(path) as h:
        assert h.verify() == 120
        assert len({e.article_id for e in h}) == 120
    with raw_sql(path) as conn:  # A12 across processes: no (key, nonce) pair repeats
        pairs = {(k, bytes(b[1:13])) for k, b in conn.execute("SELECT key_id, blob FROM events")}
    assert len(pairs) == 120


def test_d7_lock_held_too_long_is_storage_busy(path: Path) -> None:
    h = open_store(path, busy_timeout_s=0.05)
    h.record(article(1))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageBusyError) as err:
            h.record(article(2))
        assert "database is locked" not in str(err.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert h.record(article(2)) == 2 and h.verify() == 2
    h.close()


# ---------------------------------------------------------- B5: disk full
def test_b5_disk_full_is_typed_and_keeps_earlier_data(path: Path) -> None:
    h = open_store(path, max_bytes=96 * 1024)
    big = "word " * 3000  # ~15 kB per event
    stored = 0
    with pytest.raises(StorageFullError):
        for i in range(100):
            h.record(article(i, abstract=big))
            stored += 1
    assert 0 < stored < 100
    assert len(h) == stored and h.verify() == stored  # nothing half-written
    assert [e.seq for e in h.recent(1)] == [stored]  # reads still served
    h.record(article(0))  # small events may still fit; the handle stays usable
    h.close()
    assert integrity_ok(path)
    with open_store(path) as h2:
        assert h2.verify() == stored + 1


# ------------------------------------------------------- B7: read-only files
@pytest.mark.skipif(not hasattr(os, "setuid"), reason="needs POSIX users")
@pytest.mark.parametrize("folder_writable", [True, False])
def test_b7_read_only_file_opens_read_only(folder_writable: bool) -> None:
    """As root every file is writable, so the check runs in a child as user ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user for the child")
    folder = Path(tempfile.mkdtemp())
    try:
        path = folder / "history.db"
        with open_store(path) as h:
            h.record(article(1))
        path.chmod(0o644)
        folder.chmod(0o777 if folder_writable else 0o755)
        before = path.read_bytes()

        def child(w: int) -> None:
            os.setgid(65534)
            os.setuid(65534)
            h = open_store(path)
            out = [str(h.read_only), str(len(h)), h.recent(1)[0].article_id]
            try:
                h.record(article(2))
                out.append("wrote")
            except ReadOnlyStorageError:
                out.append("ReadOnlyStorageError")
            os.write(w, (" ".join(out) + "\n").encode())

        pid, r = fork(child)
        lines = drain(r)
        os.waitpid(pid, 0)
        assert lines == ["True 1 N1 ReadOnlyStorageError"]
        assert path.read_bytes() == before and path.exists()
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


# ------------------------------------------------------------- B8: EIO
class FailingConnection:
    """A sqlite3 connection whose statements matching ``fail_on`` raise SQLITE_IOERR."""

    def __init__(self, real: sqlite3.Connection, fail_on: str) -> None:
        self._real = real
        self.fail_on = fail_on

    def execute(self, sql: str, *args: Any) -> Any:
        if self.fail_on and sql.lstrip().upper().startswith(self.fail_on):
            exc = sqlite3.OperationalError("disk I/O error")
            exc.sqlite_errorcode = 10  # type: ignore[attr-defined]
            raise exc
        return self._real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("fail_on", ["INSERT", "COMMIT", "SELECT"])
def test_b8_io_errors_are_typed_and_not_retried(path: Path, fail_on: str) -> None:
    h = open_store(path)
    h.record(article(1))
    real = h._db.conn
    h._db.conn = FailingConnection(real, fail_on)  # type: ignore[assignment]
    with pytest.raises(StorageIOError):
        h.record(article(2))
    h._db.conn = real
    assert not real.in_transaction
    h.close()
    with open_store(path) as h2:  # state unchanged after reopen
        assert h2.verify() == 1 and [e.article_id for e in h2] == ["N1"]


def test_damaged_head_digest_is_integrity_error(path: Path) -> None:
    """A head digest of the wrong length is an IntegrityError at open, not a raw error."""
    with open_store(path) as h:
        h.record(article(1))
    with raw_sql(path) as conn:
        conn.execute("UPDATE profiles SET digest = x'00'")
    with pytest.raises(IntegrityError):
        open_store(path)


def test_new_store_is_private_to_its_user(path: Path) -> None:
    with open_store(path) as h:
        h.record(article(1))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert modes and set(modes.values()) == {0o600}, modes


@pytest.fixture
def tiny_tmpfs() -> Any:
    """A 320 kB tmpfs: a real "No space left on device" (needs root and mount rights)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(tempfile.mkdtemp())
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        folder.rmdir()
        pytest.skip("mount -t tmpfs is not permitted here (container without CAP_SYS_ADMIN)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def test_b5_real_disk_full_on_tmpfs(tiny_tmpfs: Path) -> None:
    path = tiny_tmpfs / "history.db"
    h = open_store(path)
    stored = 0
    with pytest.raises(StorageFullError):
        for i in range(1000):
            h.record(article(i, abstract="word " * 1500))
            stored += 1
    assert stored > 0
    assert len(h) == stored and [e.seq for e in h.recent(1)] == [stored]
    assert h.verify() == stored  # the failed write left nothing behind
    h.close()
    with open_store(path) as h2:  # reopening on the full disk still reads everything
        assert h2.verify() == stored
