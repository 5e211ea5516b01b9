"""edgerec.history.connection under faults: the file never replaced, truncated and
corrupted files (A8), kill -9 during appends (B1), disk full (B5), read-only files (B7),
injected I/O errors (B8), a rolled-back transaction (A13), busy locks and two processes
(D7), network filesystems (D7), private file modes.

Children are forked (no interpreter start-up per kill), so 100 kills take seconds. The
1,000-kill soak is benchmarks/soak_history.py.
"""

from __future__ import annotations

import json
import os
import random
import shutil
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
    EdgerecError,
    IntegrityError,
    ReadingHistory,
    ReadOnlyStorageError,
    StorageBusyError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageIOError,
    UnsupportedFormatError,
)
from edgerec.history import connection
from tests.support import iolog
from tests.support.history import (
    article,
    digest,
    drain,
    filled,
    fork,
    integrity_ok,
    kill9,
    open_store,
    raw_sql,
    read_lines_until,
    seeded_random,
)


def test_existing_file_is_never_replaced(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with raw_sql(other) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES ('keep me')")
    before = digest(other)
    with pytest.raises(UnsupportedFormatError):
        open_store(other)
    assert digest(other) == before
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StorageCorruptError):
        open_store(empty, busy_timeout_s=0.05)  # (an empty file is waited on that long)
    assert empty.read_bytes() == b""


def test_new_store_is_private_to_its_user(path: Path) -> None:
    with open_store(path) as h:
        h.record(article(1))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert modes and set(modes.values()) == {0o600}, modes


@pytest.mark.parametrize("cut", [0, 50, 4096 + 100, -100])
def test_a8_truncated_file(path: Path, cut: int) -> None:
    filled(path, 40).close()
    data = path.read_bytes()
    assert len(data) > 4 * 4096
    path.write_bytes(data[: cut if cut >= 0 else len(data) + cut])
    with pytest.raises((StorageCorruptError, IntegrityError)), open_store(path) as h:
        h.verify()


def test_a8_corrupt_bytes_typed_error_and_quarantine(path: Path) -> None:
    filled(path, 40).close()
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):  # corrupt every page, header included
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageCorruptError), open_store(path) as h:
        h.verify()
    assert path.read_bytes() == bytes(data)  # nothing reset implicitly
    moved = ReadingHistory.quarantine(path)
    assert moved.read_bytes() == bytes(data) and not path.exists()
    with open_store(path) as h:
        assert len(h) == 0


def test_a8_random_byte_corruption_only_typed_errors(tmp_path: Path) -> None:
    """Random bytes anywhere in the file: each open/read either works or raises an
    EdgerecError (corrupt storage, integrity, format); never a raw exception or a hang."""
    import random

    pristine = tmp_path / "pristine.db"
    filled(pristine, 60).close()
    size = pristine.stat().st_size
    rng = random.Random(8)
    errors: dict[str, int] = {}
    for _ in range(60):
        case = tmp_path / "case.db"
        data = bytearray(pristine.read_bytes())
        for _ in range(rng.choice([1, 4, 32])):
            data[rng.randrange(size)] = rng.randrange(256)
        case.write_bytes(bytes(data))
        try:
            with open_store(case) as h:
                h.verify()
                h.recent(60)
            errors["none"] = errors.get("none", 0) + 1
        except EdgerecError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
    assert errors.get("StorageCorruptError", 0) + errors.get("IntegrityError", 0) > 10, errors


def test_a13_failure_inside_encrypt_rolls_back(path: Path) -> None:
    calls = {"n": 0}
    rnd = seeded_random(1)

    def flaky(n: int) -> bytes:
        calls["n"] += 1
        if calls.get("fail"):
            raise OSError("entropy source failed")
        return rnd(n)

    h = filled(path, 3, random_bytes=flaky)
    with raw_sql(path) as conn:
        before = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    calls["fail"] = 1
    with pytest.raises(OSError):
        h.record(article(9))
    del calls["fail"]
    with raw_sql(path) as conn:
        assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == before
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert h.verify() == 3 and h.record(article(9)) == 4
    h.close()


def appender(path: Path, **kw: Any) -> Any:
    def run(w: int) -> None:
        h = open_store(path, **kw)
        i = 0
        while True:
            seq = h.record(article(i), at=float(i))
            os.write(w, f"{seq}\n".encode())  # acknowledged: record() has returned
            i += 1

    return run


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


def test_d7_processes_creating_one_store_at_once_all_open_it(tmp_path: Path) -> None:
    """The first opens of a new store, in 4 processes released together: one creates it,
    the others wait for its first page (the file exists, still empty, for a few
    milliseconds) and open it; never "the file is empty (truncated?)". The switch to WAL
    races too: SQLite answers SQLITE_BUSY (no busy handler) or SQLITE_IOERR_DELETE_NOENT
    while another opener switches; both are retried (seen in CI on a busy machine: one
    opener failed, and the creator's failure removed the file under the others)."""
    for round_ in range(8):
        path = tmp_path / f"new-{round_}.db"
        go_r, go_w = os.pipe()

        def opener(w: int, path: Path = path, go_r: int = go_r) -> None:
            os.read(go_r, 1)  # the barrier
            try:
                with open_store(path) as h:
                    h.record(article(os.getpid()))
            except Exception as exc:  # reported to the parent, whose assertion shows it
                os.write(w, f"{type(exc).__name__}: {exc}\n".encode())
                return
            os.write(w, b"ok\n")

        kids = [fork(opener) for _ in range(4)]
        os.write(go_w, b"x" * 4)
        results = []
        for pid, r in kids:
            results += drain(r)
            os.waitpid(pid, 0)
        os.close(go_r)
        os.close(go_w)
        assert results == ["ok"] * 4, round_
        with open_store(path) as h:
            assert h.verify() == 4


def test_d7_the_wal_switch_waits_for_another_opener(tmp_path: Path) -> None:
    """Deterministic form of the race above: another connection is writing the new file
    (a RESERVED lock) while it is still in rollback-journal mode. The switch to WAL takes
    a SHARED lock and must escalate; SQLite answers SQLITE_BUSY at once instead of
    calling the busy handler (waiting could deadlock). The switch retries until
    busy_timeout, then is a typed StorageBusyError."""
    path = tmp_path / "fresh.db"
    plain = sqlite3.connect(path, isolation_level=None)
    plain.execute("CREATE TABLE t (x)")  # a non-empty file, still in rollback mode
    plain.close()

    def opened(timeout_s: float) -> connection.Database:
        return connection.Database.open(
            path, read_only=False, busy_timeout_s=timeout_s, synchronous="FULL", max_bytes=None
        )

    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO t VALUES (1)")  # holds a RESERVED lock, uncommitted
    db = opened(0.05)
    try:
        with pytest.raises(StorageBusyError):
            db.use_wal()
    finally:
        db.conn.close()
    release = threading.Timer(0.2, lambda: blocker.execute("COMMIT"))
    release.start()
    db = opened(5.0)
    try:
        start = time.monotonic()
        db.use_wal()  # waited for the reader, then switched
        assert time.monotonic() - start >= 0.15
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        db.conn.close()
        blocker.close()


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


def test_d7_network_filesystem_is_warned(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "filesystem_type", lambda folder: "nfs4")
    with pytest.warns(RuntimeWarning, match="network filesystem"):
        open_store(path).close()
    assert connection.filesystem_type(Path("/")) != ""  # the real probe finds a type


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


def test_b7_read_only_open(path: Path) -> None:
    filled(path, 3).close()
    before = digest(path)
    with open_store(path, read_only=True) as h:
        assert h.read_only and [e.seq for e in h.recent(2)] == [3, 2]
        assert h.verify() == 3
        for call in (lambda: h.record(article(9)), lambda: h.forget("N1"), h.rotate_profile_key):
            with pytest.raises(ReadOnlyStorageError):
                call()
    assert digest(path) == before
    with pytest.raises(ReadOnlyStorageError):
        open_store(path.with_name("missing.db"), read_only=True)
    with pytest.raises(ReadOnlyStorageError):
        open_store(path, read_only=True, profile="new-profile")
    assert issubclass(ReadOnlyStorageError, StorageError)


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


# ------------------------------------------------- power loss and failing disks (B2, B8)
WORKLOAD = """
import ctypes, json, os, sys
from edgerec import ReadingHistory
mark = ctypes.CDLL(None).edgerec_iolog_mark
path, synchronous, cap = sys.argv[1], sys.argv[2], int(sys.argv[3]) or None
h = ReadingHistory.open(path, key=bytes(range(32)), synchronous=synchronous, max_events=cap)
def ack():  # after the call returned: the live seqs, as the SDK acknowledged them
    mark(json.dumps([e.seq for e in h.recent(10**6)]).encode())
for i in range(30):
    if i in (9, 21):
        h.forget(f"N{i - 4}")
    elif i == 14:
        h.record_many([{"id": f"B{j}", "title": "batch"} for j in range(5)])
    else:
        h.record({"id": f"N{i}", "title": f"event {i}"}, at=1000.0 + i, dwell_s=1.0)
    ack()
os._exit(0)  # no close(): the power goes right after the last acknowledgement
"""


@pytest.mark.parametrize(("synchronous", "cap"), [("FULL", 12), ("NORMAL", 0)])
def test_b2_power_loss_with_unsynced_writes_dropped_or_reordered(
    tmp_path: Path, synchronous: str, cap: int
) -> None:
    """Replay of a logged workload (an LD_PRELOAD shim under SQLite records every write,
    truncate and fsync of the store's files): hundreds of crash states, each with the
    writes after each file's last fsync randomly dropped or reordered. Each opens with
    integrity_check ok, no IntegrityError on this honest data, every window proven; with
    FULL it holds every acknowledged write (the last, unacknowledged call wholly or not at
    all); with NORMAL only the last commits since the last WAL sync may be missing."""
    lib = iolog.build_shim(tmp_path)
    store = tmp_path / "live" / "history.db"
    store.parent.mkdir()
    with open_store(store) as h:
        h.record_many([article(i) for i in range(3)])
    initial = {str(store.resolve()): store.read_bytes()}
    log = tmp_path / "io.log"
    done = iolog.run_with_shim(lib, store, WORKLOAD, str(store), synchronous, str(cap), log=log)
    assert done.returncode == 0, done.stderr[-2000:]
    ops = iolog.parse_log(log.read_bytes())
    acked = [[3, 2, 1]]  # acked[i]: the live seqs after the i-th acknowledged call
    acked += [json.loads(op.data) for op in ops if op.kind == iolog.MARK]
    assert len(acked) == 31 and any(op.kind == iolog.SYNC for op in ops)
    rng = random.Random(synchronous)
    case = tmp_path / "case"
    checked = 0
    for k, state in iolog.crash_states(ops, initial, rng, per_point=3):
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir()
        for name, data in state.items():
            (case / Path(name).name).write_bytes(data)
        assert integrity_ok(case / "history.db")
        with open_store(case / "history.db") as h:
            live = [e.seq for e in h.recent(10**6)]
            assert h.verify() == len(live)
        calls = sum(op.kind == iolog.MARK for op in ops[:k])
        durable = calls
        if synchronous == "NORMAL":  # only what an fsync covered before the crash
            syncs = [i for i, op in enumerate(ops[:k]) if op.kind == iolog.SYNC]
            durable = sum(op.kind == iolog.MARK for op in ops[: syncs[-1]]) if syncs else 0
        assert live in acked[durable : calls + 2], (k, calls, live)
        checked += 1
    print(f"B2 {synchronous}: {checked} crash states checked")
    assert checked > 600, checked  # (FULL: 1,203 states; NORMAL: 669)


FAILING = """
import ctypes, json, os, sys
from edgerec import EdgerecError, ReadingHistory
shim = ctypes.CDLL(None)
path, kind = sys.argv[1], sys.argv[2]
key = bytes(range(32))
h = ReadingHistory.open(path, key=key)
h.record({"id": "N0"}, at=1.0)
h.record({"id": "N1"}, at=2.0)
shim.edgerec_iolog_mark(b"armed")
shim.edgerec_iolog_fail(kind.encode(), 1)
try:
    if kind == "read":  # a new handle reads the file (the open one has it cached)
        ReadingHistory.open(path, key=key).recent(5)
    else:
        h.record({"id": "N2"}, at=3.0)
    result = "succeeded"
except EdgerecError as exc:
    result = type(exc).__name__
shim.edgerec_iolog_mark(b"returned")
print(json.dumps({"result": result, "live": [e.article_id for e in h.recent(5)]}))
os._exit(0)  # the process dies without closing: a crash right after the failure
"""


@pytest.mark.parametrize("kind", ["write", "sync", "read"])
def test_b8_eio_from_the_disk_is_typed_and_leaves_the_state_unchanged(
    tmp_path: Path, kind: str
) -> None:
    """EIO from the libc call beneath SQLite (the shim fails one pwrite, fsync or pread of
    the store's files): StorageIOError, the write reported failed and not retried (no
    write to the WAL after the failed call), and after a crash and reopen the store holds
    exactly what it held before. A failed fsync is the hard case: the frames were written,
    and SQLite's recovery would bring the failed write back unless they are cut off."""
    lib = iolog.build_shim(tmp_path)
    store = tmp_path / "history.db"
    open_store(store).close()
    log = tmp_path / "io.log"
    done = iolog.run_with_shim(lib, store, FAILING, str(store), kind, log=log)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report == {"result": "StorageIOError", "live": ["N1", "N0"]}
    ops = iolog.parse_log(log.read_bytes())
    marks = [i for i, op in enumerate(ops) if op.kind == iolog.MARK]
    call = ops[marks[0] : marks[1]]
    failed = [i for i, op in enumerate(call) if op.kind == iolog.FAIL]
    assert len(failed) == 1  # exactly one failure, injected once
    assert not [
        op for op in call[failed[0] :] if op.kind == iolog.WRITE and op.path.endswith("-wal")
    ]  # not retried: nothing written to the WAL after the failure
    assert integrity_ok(store)
    with open_store(store) as h:  # the crash's recovery must not bring N2 back
        assert [e.article_id for e in h] == ["N0", "N1"] and h.verify() == 2
