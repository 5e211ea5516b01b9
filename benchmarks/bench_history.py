"""Encrypted history vs plain sqlite3, side by side in one run. Prints JSON.

    python benchmarks/bench_history.py [--events 2000] [--rounds 4] [--reads 300] [--capped 400]

* Durable append: one transaction per event, ``synchronous=FULL``, WAL. The baseline is
  plain ``sqlite3`` with the same schema (the ``events`` table: pid, seq, key_id, blob),
  the same pragmas, and the event's plaintext JSON as the blob (``json.dumps`` of the same
  document inside the timed loop; no input validation, no head record, no crypto).
* Read the newest 200 events: ``ReadingHistory.recent(200)`` (head check, the window proof,
  200 AES-GCM decryptions, JSON, event objects) vs the same SELECT on the plaintext table,
  decoded the same way into the same event objects.
* Durable append at a retention cap (``max_events``): every append also removes the oldest
  event. Encrypted: the store's record() (the prune, and the ``TRUNCATE`` checkpoint that
  scrubs the removed ciphertext from the WAL); plaintext: INSERT and DELETE of the oldest
  row in one transaction, ``secure_delete`` on, no checkpoint.

Rounds alternate encrypted and plaintext so that a shared machine's slow moments hit both.
Targets (DESIGN.md section 7): append >= 1,000 events/s and encrypted <= 1.5x plaintext
cost; read 200 <= 2 ms and <= 1.5x plaintext. Inputs are SYNTHETIC (seeded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware, pin_to_one_core

from edgerec import HistoryEvent, ReadingHistory
from edgerec.history.events import encode_event

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA secure_delete = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA trusted_schema = OFF",
    "PRAGMA cell_size_check = ON",
)
_decode = json.JSONDecoder().decode


def synthetic_articles(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(3000)]
    return [
        {
            "id": f"S{i}",
            "title": " ".join(rng.choices(words, k=rng.randint(6, 14))),
            "abstract": " ".join(rng.choices(words, k=rng.randint(15, 40))),
            "category": rng.choice(["news", "sports", "finance", "lifestyle"]),
            "subcategory": rng.choice(["world", "us", "football", "markets"]),
            "source": "synthetic",
            "published_at": "2026-11-28T09:30:00+00:00",
            "entities": [f"Q{rng.randint(1, 10**6)}" for _ in range(rng.randint(0, 4))],
        }
        for i in range(n)
    ]


class PlainStore:
    """The baseline: the same table and pragmas, plaintext JSON blobs."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in PRAGMAS:
            self.conn.execute(pragma)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS events (pid BLOB, seq INTEGER, key_id INTEGER, "
            "blob BLOB, PRIMARY KEY (pid, seq))"
        )
        self.pid = b"p" * 16
        self.seq = 0

    def record(self, doc: dict[str, Any], cap: int | None = None) -> None:
        """One durable append; with ``cap``, the events older than the newest ``cap`` are
        deleted in the same transaction (what ``max_events`` does in the store)."""
        plaintext = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.conn.execute("BEGIN IMMEDIATE")
        self.seq += 1
        self.conn.execute(
            "INSERT INTO events (pid, seq, key_id, blob) VALUES (?, ?, 0, ?)",
            (self.pid, self.seq, plaintext),
        )
        if cap is not None:
            self.conn.execute(
                "DELETE FROM events WHERE pid = ? AND seq <= ?", (self.pid, self.seq - cap)
            )
        self.conn.execute("COMMIT")

    def recent(self, limit: int) -> list[HistoryEvent]:
        self.conn.execute("BEGIN")
        rows = self.conn.execute(
            "SELECT seq, blob FROM events WHERE pid = ? ORDER BY seq DESC LIMIT ?",
            (self.pid, limit),
        ).fetchall()
        self.conn.execute("COMMIT")
        out = []
        for seq, blob in rows:
            doc = _decode(blob.decode("utf-8"))
            out.append(HistoryEvent(seq, doc["id"], doc["f"], doc["t"], doc["d"]))
        return out


def filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "-T", str(path)], capture_output=True, text=True, check=True
        ).stdout
        return out.splitlines()[1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000, help="appends per store per run")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--capped", type=int, default=400, help="appends at the retention cap")
    args = ap.parse_args()
    core = pin_to_one_core()
    articles = synthetic_articles(args.events)
    plaintexts = [encode_event(a, 1_800_000_000.0 + i, 30.0) for i, a in enumerate(articles)]
    # What the baseline serializes: the same document, built before the clock starts (as
    # the article dicts handed to record() are).
    docs = [json.loads(p) for p in plaintexts]
    per_round = args.events // args.rounds

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        folder = Path(tmp)
        enc = ReadingHistory.open(folder / "enc.db", key=os.urandom(32), profile="bench")
        plain = PlainStore(folder / "plain.db")
        enc_times: list[float] = []
        plain_times: list[float] = []
        for r in range(args.rounds):
            chunk = range(r * per_round, (r + 1) * per_round)
            t0 = time.perf_counter()
            for i in chunk:
                enc.record(articles[i], at=1_800_000_000.0 + i, dwell_s=30.0)
            enc_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for i in chunk:
                plain.record(docs[i])
            plain_times.append(time.perf_counter() - t0)
        enc_rate = per_round / statistics.median(enc_times)
        plain_rate = per_round / statistics.median(plain_times)

        for _ in range(20):  # warm both
            enc.recent(200)
            plain.recent(200)
        enc_ms: list[float] = []
        plain_ms: list[float] = []
        for _ in range(args.reads):
            t0 = time.perf_counter()
            got = enc.recent(200)
            enc_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            base = plain.recent(200)
            plain_ms.append((time.perf_counter() - t0) * 1e3)
        assert [e.article_id for e in got] == [e.article_id for e in base]
        assert got[0].features == base[0].features
        fs = filesystem(folder)
        enc.close()
        plain.conn.close()

        # At the cap: both stores already hold `cap` events; each append removes one.
        cap = max(1, args.events // 2)
        enc = ReadingHistory.open(
            folder / "enc_cap.db", key=os.urandom(32), profile="capped", max_events=cap
        )
        plain = PlainStore(folder / "plain_cap.db")
        for i in range(cap):
            enc.record(articles[i % len(articles)], at=1_800_000_000.0 + i, dwell_s=30.0)
            plain.record(docs[i % len(docs)], cap)
        capped_enc: list[float] = []
        capped_plain: list[float] = []
        for i in range(args.capped):
            t0 = time.perf_counter()
            enc.record(articles[i % len(articles)], at=1_900_000_000.0 + i, dwell_s=30.0)
            capped_enc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            plain.record(docs[i % len(docs)], cap)
            capped_plain.append(time.perf_counter() - t0)
        assert len(enc) == cap
        enc.close()
        plain.conn.close()

    def pct(xs: list[float], q: float) -> float:
        return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))], 3)

    append_ratio = plain_rate / enc_rate  # cost ratio: time per encrypted / plaintext event
    read_ratio = statistics.median(enc_ms) / statistics.median(plain_ms)
    result = {
        "benchmark": "history",
        "hardware": hardware(core) | {"filesystem": fs},
        "inputs": {
            "events": args.events,
            "rounds": args.rounds,
            "reads": args.reads,
            "mean_plaintext_bytes": round(sum(map(len, plaintexts)) / len(plaintexts)),
            "data": "synthetic, seeded",
        },
        "append_durable": {
            "encrypted_events_per_s": round(enc_rate),
            "plaintext_events_per_s": round(plain_rate),
            "encrypted_cost_ratio": round(append_ratio, 3),
            "per_round_encrypted_events_per_s": [round(per_round / t) for t in enc_times],
            "per_round_plaintext_events_per_s": [round(per_round / t) for t in plain_times],
            "target": ">= 1000 events/s and ratio <= 1.5",
            "met": enc_rate >= 1000 and append_ratio <= 1.5,
        },
        "read_recent_200": {
            "encrypted_ms_p50": pct(enc_ms, 0.5),
            "encrypted_ms_p99": pct(enc_ms, 0.99),
            "plaintext_ms_p50": pct(plain_ms, 0.5),
            "plaintext_ms_p99": pct(plain_ms, 0.99),
            "encrypted_cost_ratio": round(read_ratio, 3),
            "target": "p50 <= 2 ms and ratio <= 1.5",
            "met": statistics.median(enc_ms) <= 2.0 and read_ratio <= 1.5,
        },
        "append_durable_at_retention_cap": {
            "cap": cap,
            "appends": args.capped,
            "encrypted_events_per_s": round(1 / statistics.median(capped_enc)),
            "plaintext_events_per_s": round(1 / statistics.median(capped_plain)),
            "encrypted_cost_ratio": round(
                statistics.median(capped_enc) / statistics.median(capped_plain), 3
            ),
            "note": "encrypted: prune + TRUNCATE checkpoint (WAL scrub) per append; "
            "plaintext: INSERT + DELETE, no checkpoint",
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
