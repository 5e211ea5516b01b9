"""The I/O shim of the power-loss and I/O-error tests (reliability cases B2 and B8):
build tests/support/iolog.c, run a workload in a child with it preloaded, read the log
back, and rebuild crash states from it (as dm-log-writes replay or ALICE do).

A crash state after the first ``k`` logged operations: for each file, every write and
truncate before that file's last sync (among the ``k``) is on disk, in order; of the later
ones a random subset is, applied in a random order (unsynced writes dropped or
reordered). Whole write calls are the unit (no torn sector). A file created or unlinked
during the workload exists as of its last directory sync, otherwise either way. The
``-shm`` is never part of a crash state (SQLite rebuilds it: its unix VFS truncates a
``-shm`` nobody holds).
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["Op", "build_shim", "crash_states", "parse_log", "run_with_shim"]

SOURCE = Path(__file__).with_name("iolog.c")
OPEN, WRITE, TRUNC, SYNC, UNLINK, MARK, FAIL = range(1, 8)
_HEAD = struct.Struct("<BBHIq")


@dataclass(frozen=True)
class Op:
    """One logged operation: ``kind`` (OPEN ... FAIL), the file's path, and its offset
    (the size for TRUNC, 1 for an OPEN that created the file) and bytes."""

    kind: int
    path: str
    offset: int = 0
    data: bytes = field(default=b"", repr=False)


def build_shim(folder: Path) -> Path:
    """Compile the shim into ``folder``; skip the test (saying why) without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the LD_PRELOAD I/O shim cannot be built")
    lib = folder / "libiolog.so"
    done = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(lib), str(SOURCE), "-ldl", "-lpthread"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"the LD_PRELOAD I/O shim does not build here: {done.stderr[-300:]}")
    return lib


def run_with_shim(
    lib: Path, store: Path, code: str, *args: str, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args`` with the shim preloaded, watching ``store``'s files."""
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(lib)
    env["EDGEREC_IOLOG_MATCH"] = str(store.resolve())
    if log is not None:
        env["EDGEREC_IOLOG_OUT"] = str(log)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def parse_log(raw: bytes) -> list[Op]:
    """The operations of a log written by the shim, in order."""
    ops: list[Op] = []
    paths: dict[int, str] = {}
    pos = 0
    while pos + _HEAD.size <= len(raw):
        kind, file, _, length, offset = _HEAD.unpack_from(raw, pos)
        pos += _HEAD.size
        data = raw[pos : pos + length]
        pos += length
        if kind in (OPEN, UNLINK):
            paths[file] = data.decode()
        ops.append(Op(kind, paths.get(file, ""), offset, data))
    return ops


def _apply(content: bytearray, op: Op) -> None:
    if op.kind == TRUNC:
        del content[op.offset :]
    else:
        end = op.offset + len(op.data)
        if len(content) < op.offset:
            content.extend(bytes(op.offset - len(content)))
        content[op.offset : end] = op.data


def crash_state(
    ops: list[Op], k: int, initial: dict[str, bytes], rng: random.Random
) -> dict[str, bytes]:
    """The files (path -> bytes; absent: no file) after a power loss following ``ops[:k]``."""
    folder = os.path.dirname(next(iter(initial)))
    done = ops[:k]
    last_sync: dict[str, int] = {}
    for i, op in enumerate(done):
        if op.kind == SYNC:
            last_sync[op.path] = i
    dir_sync = last_sync.get(folder, -1)
    state: dict[str, bytes] = {}
    paths = {op.path for op in done if op.kind in (OPEN, WRITE, TRUNC)} | set(initial)
    for path in paths:
        if path == folder or path.endswith("-shm"):
            continue
        # Existence: the last create or unlink, durable if a directory sync followed it.
        exists = path in initial
        for i, op in enumerate(done):
            if op.path != path or op.kind not in (OPEN, UNLINK):
                continue
            if op.kind == OPEN and not op.offset:
                continue  # opened an existing file: no change to the directory
            now = op.kind == OPEN
            exists = now if i < dir_sync or rng.random() < 0.5 else exists
        if not exists:
            continue
        content = bytearray(initial.get(path, b""))
        synced = last_sync.get(path, -1)
        volatile = []
        for i, op in enumerate(done):
            if op.path == path and op.kind in (WRITE, TRUNC):
                if i < synced:
                    _apply(content, op)
                else:
                    volatile.append(op)
        kept = [op for op in volatile if rng.random() < 0.5]
        rng.shuffle(kept)
        for op in kept:
            _apply(content, op)
        state[path] = bytes(content)
    return state


def crash_states(
    ops: list[Op], initial: dict[str, bytes], rng: random.Random, per_point: int
) -> Iterator[tuple[int, dict[str, bytes]]]:
    """``per_point`` crash states after every prefix of the log that ends on a write,
    truncate, sync or unlink (and after the whole log)."""
    points = [i + 1 for i, op in enumerate(ops) if op.kind in (WRITE, TRUNC, SYNC, UNLINK)]
    for k in [*points, len(ops)]:
        for _ in range(per_point):
            yield k, crash_state(ops, k, initial, rng)
