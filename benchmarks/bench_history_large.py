"""A very large profile (reliability case D5): latency and peak memory of each operation on
a store of 5 million events, beside the same operations on a small store in the same run.
Prints JSON.

    python benchmarks/bench_history_large.py [--events 5000000] [--baseline-events 50000]
                                             [--batch 10000] [--dir DIR]

Each phase runs in its own process, so its peak memory (``VmHWM`` of /proc/self/status:
the resident high-water mark of that process alone; ``ru_maxrss`` would include the
children's) is its own. Phases, in order: fill (``record_many`` in batches of ``--batch``,
one transaction each), open, read the newest 200 (x200), append one event (x100), prune
the oldest events by age (``prune()``), open with a ``max_events`` cap that prunes
(count), ``verify()`` (every row decrypted and checked, streamed), ``forget()`` of one
article (streamed), and erase the profile. Constant memory means the large store's peaks
are the small one's; latencies of open, read, append and pruning should not grow with the
store. Inputs are SYNTHETIC (seeded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware

KEY = bytes(range(32))
T0 = 1_700_000_000.0  # event i is read at T0 + i
PHASES = (
    "fill",
    "open",
    "recent",
    "append",
    "prune_age",
    "prune_count",
    "verify",
    "forget",
    "erase",
)


def peak_mb() -> float:
    """This process's resident high-water mark (Linux), in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def article(i: int) -> dict[str, Any]:
    return {
        "id": f"L{i}",
        "title": f"synthetic title {i % 977}",
        "category": ("news", "sports", "finance")[i % 3],
        "source": "synthetic",
    }


def pct(xs: list[float], q: float) -> float:
    return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))], 3)


def phase(name: str, store: Path, events: int, batch: int) -> dict[str, Any]:
    """One phase, in this process; returns its figures."""
    from edgerec import ReadingHistory

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if name == "fill":
        with ReadingHistory.open(store, key=KEY, profile="big") as h:
            for start in range(0, events, batch):
                ids = range(start, min(events, start + batch))
                h.record_many([article(i) for i in ids], at=[T0 + i for i in ids], dwell_s=9.0)
            out["events"] = len(h)
        out["seconds"] = round(time.perf_counter() - t0, 2)
        out["events_per_s"] = round(events / out["seconds"])
        out["db_mb"] = round(store.stat().st_size / 1e6, 1)
    elif name == "open":
        h = ReadingHistory.open(store, key=KEY, profile="big")
        out["ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        h.close()
    elif name == "recent":
        with ReadingHistory.open(store, key=KEY, profile="big") as h:
            times = []
            for _ in range(200):
                t = time.perf_counter()
                got = h.recent(200)
                times.append((time.perf_counter() - t) * 1e3)
            assert len(got) == 200
        out |= {"ms_p50": pct(times, 0.5), "ms_p99": pct(times, 0.99)}
    elif name == "append":
        with ReadingHistory.open(store, key=KEY, profile="big") as h:
            times = []
            for i in range(100):
                t = time.perf_counter()
                h.record(article(events + i), at=T0 + events + i)
                times.append((time.perf_counter() - t) * 1e3)
        out |= {"ms_p50": pct(times, 0.5), "ms_p99": pct(times, 0.99)}
    elif name == "prune_age":
        gone = max(1, min(10_000, events // 10))
        now = [0.0]
        with ReadingHistory.open(
            store, key=KEY, profile="big", max_age_s=1e6, clock=lambda: now[0]
        ) as h:
            now[0] = T0 + gone + 1e6  # events 0 .. gone-1 are now too old
            t = time.perf_counter()
            out["pruned"] = h.prune()
            out["seconds"] = round(time.perf_counter() - t, 3)
    elif name == "prune_count":
        with ReadingHistory.open(store, key=KEY, profile="big") as h:
            cap = len(h) - max(1, min(10_000, events // 10))
        t = time.perf_counter()
        with ReadingHistory.open(store, key=KEY, profile="big", max_events=cap) as h:
            out["seconds_open_with_cap"] = round(time.perf_counter() - t, 3)
            out["left"] = len(h)
    elif name == "verify":
        with ReadingHistory.open(store, key=KEY, profile="big") as h:
            t = time.perf_counter()
            out["verified"] = h.verify()
            out["seconds"] = round(time.perf_counter() - t, 2)
    elif name == "forget":
        with ReadingHistory.open(store, key=KEY, profile="big") as h:
            t = time.perf_counter()
            out["removed"] = h.forget(f"L{events // 2}")
            out["seconds"] = round(time.perf_counter() - t, 2)
    elif name == "erase":
        with ReadingHistory.open(store, key=KEY, profile="other") as h:
            t = time.perf_counter()
            assert h.erase_profile("big")
            out["seconds"] = round(time.perf_counter() - t, 2)
        out["db_mb_after"] = round(store.stat().st_size / 1e6, 2)
    out["peak_rss_mb"] = peak_mb()
    return out


def run_all(store: Path, events: int, batch: int) -> dict[str, Any]:
    results = {}
    for name in PHASES:
        done = subprocess.run(
            [
                *(sys.executable, __file__, "--phase", name, "--store", str(store)),
                *("--events", str(events), "--batch", str(batch)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"phase {name} failed: {done.stderr[-2000:]}")
        results[name] = json.loads(done.stdout)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--baseline-events", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--dir", default=os.environ.get("BENCH_DIR"), help="where the stores go")
    ap.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.store), args.events, args.batch)))
        return
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        small = run_all(Path(tmp) / "small.db", args.baseline_events, args.batch)
        large = run_all(Path(tmp) / "large.db", args.events, args.batch)
    peaks = {name: (large[name]["peak_rss_mb"], small[name]["peak_rss_mb"]) for name in PHASES}
    result = {
        "benchmark": "history_large",
        "hardware": hardware(None),
        "inputs": {
            "events": args.events,
            "baseline_events": args.baseline_events,
            "batch": args.batch,
            "data": "synthetic, seeded",
        },
        "large": large,
        "baseline": small,
        "peak_rss_ratio_large_vs_baseline": {
            name: round(big / little, 3) for name, (big, little) in peaks.items()
        },
        "max_peak_rss_mb": max(big for big, _ in peaks.values()),
        "recent_200_p50_ratio": round(large["recent"]["ms_p50"] / small["recent"]["ms_p50"], 3),
        "append_p50_ratio": round(large["append"]["ms_p50"] / small["append"]["ms_p50"], 3),
        "open_ratio": round(large["open"]["ms"] / small["open"]["ms"], 3),
        "seconds": round(time.perf_counter() - start, 1),
        "note": "p50/p99 over 200 reads and 100 appends; each phase a fresh process",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
