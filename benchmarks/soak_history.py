"""Soak: SIGKILL a history appender at random instants, many times; prints JSON.

    python benchmarks/soak_history.py [--kills 1000] [--check-every 50] [--seed 0]

Each round forks a child that opens the store and appends events in a loop, writing each
sequence number to a pipe only after ``record()`` returned (the acknowledgement). The
parent kills it with SIGKILL after a random delay (half the rounds before the first
acknowledgement, so kills land in open() too), then collects the acknowledgements. Every
``--check-every`` rounds and at the end it checks: ``PRAGMA integrity_check`` is ok, the
store opens and ``verify()`` passes (the head record covers exactly the rows present, so an
unacknowledged write is wholly present or wholly absent), and every acknowledged sequence
number is present. Exits non-zero on any failure. reliability-cases.md B1 (scaled: 1,000
kills instead of 5,000; the test suite runs 100).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware

from edgerec import ReadingHistory

KEY = bytes(range(32))


def child(path: Path, w: int) -> None:
    code = 0
    try:
        h = ReadingHistory.open(path, key=KEY)
        i = 0
        while True:
            seq = h.record({"id": f"N{i}", "title": f"soak event {i}"}, at=float(i))
            os.write(w, f"{seq}\n".encode())
            i += 1
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def round_(path: Path, rng: random.Random) -> tuple[list[int], bool]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        child(path, w)
    os.close(w)
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0, 0.03))
    else:
        select.select([r], [], [], 10.0)
        time.sleep(rng.uniform(0, 0.01))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return [int(s) for s in data.decode().split("\n")[:-1]], killed


def check(path: Path, acked: set[int]) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    conn.close()
    with ReadingHistory.open(path, key=KEY) as h:
        verified = h.verify()
        present = {e.seq for e in h}
    return {
        "integrity_ok": integrity == ["ok"],
        "verified": verified,
        "lost": sorted(acked - present),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--check-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    failures: list[dict[str, Any]] = []
    acked: set[int] = set()
    not_killed = checks = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.db"
        ReadingHistory.open(path, key=KEY).close()
        for n in range(args.kills):
            seqs, killed = round_(path, rng)
            acked.update(seqs)
            not_killed += not killed
            if (n + 1) % args.check_every == 0 or n == args.kills - 1:
                checks += 1
                result = check(path, acked)
                if not result["integrity_ok"] or result["lost"]:
                    failures.append({"round": n, **result, "lost": result["lost"][:10]})
        final = check(path, acked)
    report = {
        "benchmark": "soak_history",
        "hardware": hardware(None),
        "kills": args.kills,
        "children_not_killed_by_sigkill": not_killed,
        "acknowledged_writes": len(acked),
        "rows_present_at_end": final["verified"],
        "checks": checks,
        "failures": failures,
        "ok": not failures and final["integrity_ok"] and not final["lost"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
