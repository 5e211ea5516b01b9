"""Nonce uniqueness and the key-use limit at scale (reliability case A12). Prints JSON.

    python benchmarks/bench_nonces.py [--records 1000000] [--restarts 3] [--processes 2]
        [--rotation-records 200000] [--key-use-limit 20000] [--max-events 5000]

Part 1, uniqueness: ``--records`` events go into one profile of one store, written by
``--processes`` processes at once (``record_many`` batches), started ``--restarts`` times
(each round a fresh set of processes on the same store, so every process starts from a
cold open). No key is rotated, so every nonce ever used is still in a row: the (key id,
nonce) pairs are collected from the raw rows and must all differ.

Part 2, the key-use limit: the same processes and restarts write ``--rotation-records``
events under ``key_use_limit=--key-use-limit`` with ``max_events=--max-events`` (a
retention cap below the limit, so that a rotation's re-encryption of the kept rows fits in
the new key's budget). Every encryption (appends and re-encryptions, in every process) is
counted per key id through a wrapper around ``edgerec.history.crypto.seal_record``; no key
may seal more than the limit, and the (key id, nonce) pairs of all of them must differ.
Inputs are SYNTHETIC (seeded).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware

KEY = bytes(range(32))
PROFILE = "shared"
_SEAL = struct.Struct(">I12s")  # key id, nonce


def worker(args: argparse.Namespace) -> None:
    """Append ``--count`` events in batches; with ``--seal-log``, log every encryption."""
    from edgerec import ReadingHistory
    from edgerec.history import crypto

    if args.seal_log:  # one file per process: appends from two processes never interleave
        log = open(f"{args.seal_log}.{args.tag}", "wb", buffering=1 << 20)  # noqa: SIM115
        real = crypto.seal_record

        def logged(aead: Any, pid: bytes, seq: int, key_id: int, *a: Any, **kw: Any) -> bytes:
            blob = real(aead, pid, seq, key_id, *a, **kw)
            log.write(_SEAL.pack(key_id, blob[1:13]))
            return blob

        crypto.seal_record = logged
    opts: dict[str, Any] = {"busy_timeout_s": 600.0}
    if args.worker_limit:
        opts |= {"key_use_limit": args.worker_limit, "max_events": args.worker_cap}
    with ReadingHistory.open(args.store, key=KEY, profile=PROFILE, **opts) as h:
        tag = f"{args.tag}-"
        for start in range(0, args.count, args.batch):
            n = min(args.batch, args.count - start)
            h.record_many(
                [{"id": f"{tag}{start + i}", "title": "nonce"} for i in range(n)],
                at=1_700_000_000.0,
            )
    if args.seal_log:
        log.close()


def run_rounds(
    store: Path, records: int, ns: argparse.Namespace, extra: list[str]
) -> dict[str, Any]:
    writers = ns.restarts * ns.processes
    share = [records // writers + (w < records % writers) for w in range(writers)]
    t0 = time.perf_counter()
    for restart in range(ns.restarts):
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, __file__, "--worker", "--store", str(store)),
                    *("--count", str(share[restart * ns.processes + p])),
                    *("--batch", str(ns.batch)),
                    *("--tag", f"r{restart}p{p}", *extra),
                ],
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in range(ns.processes)
        ]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"a writer failed: {err[-2000:]}")
    return {"events_written": sum(share), "seconds": time.perf_counter() - t0}


def part1(folder: Path, ns: argparse.Namespace) -> dict[str, Any]:
    store = folder / "nonces.db"
    out = run_rounds(store, ns.records, ns, [])
    conn = sqlite3.connect(store)
    pairs = collections.Counter(
        (key_id, bytes(blob[1:13]))
        for key_id, blob in conn.execute("SELECT key_id, blob FROM events")
    )
    keys = [r[0] for r in conn.execute("SELECT key_id FROM profile_keys")]
    conn.close()
    return {
        "records_in_rows": sum(pairs.values()),
        "distinct_key_nonce_pairs": len(pairs),
        "duplicate_pairs": sum(n - 1 for n in pairs.values() if n > 1),
        "data_keys": len(keys),
        "seconds": round(out["seconds"], 1),
        "events_per_s": round(out["events_written"] / out["seconds"]),
    }


def part2(folder: Path, ns: argparse.Namespace) -> dict[str, Any]:
    store = folder / "rotation.db"
    seal_log = folder / "seals.bin"
    extra = [
        *("--worker-limit", str(ns.key_use_limit), "--worker-cap", str(ns.max_events)),
        *("--seal-log", str(seal_log)),
    ]
    out = run_rounds(store, ns.rotation_records, ns, extra)
    seals = []
    for log in folder.glob("seals.bin.*"):
        raw = log.read_bytes()
        seals += [_SEAL.unpack_from(raw, i) for i in range(0, len(raw), _SEAL.size)]
    per_key = collections.Counter(key_id for key_id, _ in seals)
    pairs = collections.Counter(seals)
    return {
        "key_use_limit": ns.key_use_limit,
        "max_events": ns.max_events,
        "encryptions": len(seals),
        "data_keys_used": len(per_key),
        "max_encryptions_under_one_key": max(per_key.values()),
        "limit_respected": max(per_key.values()) <= ns.key_use_limit,
        "duplicate_pairs": sum(n - 1 for n in pairs.values() if n > 1),
        "seconds": round(out["seconds"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--rotation-records", type=int, default=200_000)
    ap.add_argument("--key-use-limit", type=int, default=20_000)
    ap.add_argument("--max-events", type=int, default=5_000)
    ap.add_argument("--dir", default=os.environ.get("BENCH_DIR"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tag", help=argparse.SUPPRESS)
    ap.add_argument("--seal-log", help=argparse.SUPPRESS)
    ap.add_argument("--worker-limit", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--worker-cap", type=int, default=0, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.worker:
        worker(ns)
        return
    with tempfile.TemporaryDirectory(dir=ns.dir) as tmp:
        uniqueness = part1(Path(tmp), ns)
        rotation = part2(Path(tmp), ns)
    result = {
        "benchmark": "nonces",
        "hardware": hardware(None),
        "inputs": {
            "records": ns.records,
            "restarts": ns.restarts,
            "processes": ns.processes,
            "batch": ns.batch,
            "rotation_records": ns.rotation_records,
            "data": "synthetic",
        },
        "uniqueness_from_raw_rows": uniqueness,
        "key_use_limit": rotation,
        "ok": uniqueness["duplicate_pairs"] == 0
        and uniqueness["records_in_rows"] == uniqueness["distinct_key_nonce_pairs"]
        and rotation["duplicate_pairs"] == 0
        and rotation["limit_respected"]
        and rotation["data_keys_used"] > 1,
    }
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
