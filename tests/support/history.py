"""Helpers shared by the history tests (tests/sdk/history/): opening and filling stores, a
settable clock and a host counter, raw-file tampering, forked children."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import select
import signal
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgerec import ReadingHistory

__all__ = [
    "CANARIES",
    "CANARY_ENTITY",
    "CANARY_ID",
    "CANARY_PROFILE",
    "CANARY_TITLE",
    "FAST_SCRYPT",
    "KEY",
    "OTHER_KEY",
    "Clock",
    "Counter",
    "article",
    "canary_article",
    "digest",
    "drain",
    "files_of",
    "filled",
    "flip_blob_byte",
    "fork",
    "integrity_ok",
    "kill9",
    "open_store",
    "raw_bytes",
    "raw_sql",
    "read_lines_until",
    "seeded_random",
]

KEY = bytes(range(32))
FAST_SCRYPT = 2**4  # for tests only: the default cost is 2**15
OTHER_KEY = bytes(range(1, 33))
# Strings that must never appear in any file, log or message in plaintext.
CANARY_ID = "CANARYIDzq81"
CANARY_TITLE = "CanaryTitleXk7 Elephants on the moon"
CANARY_ENTITY = "QCANARYENT55"
CANARY_PROFILE = "canary-profile-alice-7731"
CANARIES = (CANARY_ID, CANARY_TITLE, CANARY_ENTITY, CANARY_PROFILE)


def article(i: int, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"N{i}",
        "title": f"Title number {i}",
        "abstract": "An abstract " * 5,
        "category": "news",
        "subcategory": "world",
        "source": "example",
        "published_at": "2026-01-01T00:00:00+00:00",
        "entities": ["Q1", "Q2"],
    }
    doc.update(extra)
    return doc


def canary_article() -> dict[str, Any]:
    return article(0, id=CANARY_ID, title=CANARY_TITLE, entities=[CANARY_ENTITY])


class Clock:
    """A settable clock (CONVENTIONS §5)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_store(path: Path, **kw: Any) -> ReadingHistory:
    if not any(k in kw for k in ("key", "passphrase", "keyring_service")):
        kw["key"] = KEY
    return ReadingHistory.open(path, **kw)


def filled(path: Path, n: int = 5, **kw: Any) -> ReadingHistory:
    """A store opened with ``kw`` holding ``n`` events (N0, N1, ... at 1000 s, 1001 s, ...)."""
    h = open_store(path, **kw)
    for i in range(n):
        h.record(article(i), at=1_000.0 + i, dwell_s=float(i))
    return h


class Counter:
    """An in-memory MonotonicCounter that fails the test if it ever goes back."""

    def __init__(self) -> None:
        self.value = 0

    def read(self) -> int:
        return self.value

    def advance(self, value: int) -> None:
        assert value >= self.value
        self.value = value


def integrity_ok(path: Path) -> bool:
    """SQLite's own integrity_check on the file, through a plain connection."""
    with raw_sql(path) as conn:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]


def files_of(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def raw_bytes(path: Path) -> bytes:
    """Every byte of the database, its WAL and its shared-memory file, concatenated."""
    return b"".join(p.read_bytes() for p in files_of(path))


def digest(path: Path) -> str:
    """ "State unchanged" (reliability-cases.md): the database file and the WAL's content
    (a missing and an empty WAL are the same state; -shm is an index, not data)."""
    h = hashlib.sha256(path.read_bytes())
    wal = Path(f"{path}-wal")
    h.update(b"\0wal\0" + (wal.read_bytes() if wal.exists() else b""))
    return h.hexdigest()


@contextmanager
def raw_sql(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, as an attacker with file access would use."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def flip_blob_byte(path: Path, seq: int, offset: int, profile_pid: bytes | None = None) -> None:
    with raw_sql(path) as conn:
        where = "seq = ?" + (" AND pid = ?" if profile_pid else "")
        args: tuple[Any, ...] = (seq, profile_pid) if profile_pid else (seq,)
        (blob,) = conn.execute(f"SELECT blob FROM events WHERE {where}", args).fetchone()
        b = bytearray(blob)
        b[offset] ^= 0x01
        conn.execute(f"UPDATE events SET blob = ? WHERE {where}", (bytes(b), *args))


def fork(child: Callable[[int], None]) -> tuple[int, int]:
    """Run ``child(write_fd)`` in a forked process; return (pid, read_fd)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(r)
            child(w)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def read_lines_until(fd: int, deadline_s: float, want: int) -> tuple[list[str], bool]:
    """Read newline-terminated lines until ``want`` lines, EOF or the deadline."""
    import time

    buf = b""
    end = time.monotonic() + deadline_s
    eof = False
    while buf.count(b"\n") < want:
        left = end - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            eof = True
            break
        buf += chunk
    return buf.decode().splitlines(keepends=False), eof


def drain(fd: int) -> list[str]:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    text = b"".join(chunks).decode()
    # A line without its newline was cut by the kill: the parent never saw it acknowledged.
    return text.split("\n")[:-1]


def kill9(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def seeded_random(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return rng.randbytes
