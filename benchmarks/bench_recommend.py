"""`Recommender.recommend()` end to end: 50 history items (stored encrypted, decrypted at
open) x 500 candidates, top 10, next to a bare `Invoke` of the model's rank signature on the
same tensors, in one run on one core; the lock under 4 threads; and the cold start in a new
process (import, open the store, load the model, first recommendation) with its peak RSS.
Prints JSON.

    python benchmarks/bench_recommend.py [--bundle DIR] [--candidate DIR] [--calls 1000]
        [--cold-runs 5]

Targets (DESIGN.md section 7): p50 <= 1 ms, p99 <= 3 ms, p50 <= 2x the bare invoke; cold
start <= 0.5 s and <= 100 MB, TensorFlow never imported. Articles are SYNTHETIC (seeded).
The default bundle is the committed synthetic fixture (small); the shipped architecture's
figures come from ``--bundle RUN/bundle`` of ``edgerec-train pipeline --config default``
(never commit that bundle). A bundle that reads feed signals (issue 18) gets seeded random
ones on every article (a vector of its width, a prior), and the steady call is measured
again on the same articles without them.

Shadow evaluation (issue 19): two homes with ``--bundle`` installed as the active model,
one of them with ``--candidate`` (default: the same bundle) in shadow; the steady call is
timed on both in alternating rounds (target: p50 with a model in shadow <= 2x without),
and the cold start of each from its installed models (target: without a candidate,
unchanged).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware, pin_to_one_core
from bench_bundle import bare_invoke

import edgerec
from edgerec import featurize
from edgerec.model import Bundle
from edgerec.trainer.data.synthetic import synthetic_articles

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny_bundle"
KEY = bytes(range(32))  # a benchmark key, never a real one

COLD_START = r"""
import json, resource, sys, time
start = time.perf_counter()
def peak_rss_mb():
    # This process's own high-water mark (VmHWM). ru_maxrss is not: Linux carries the
    # parent's resident size at fork across exec into it, so a benchmark parent holding a
    # big feed would be counted as the cold start's.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import edgerec
imported = time.perf_counter()
home, bundle, feed = sys.argv[1], sys.argv[2], sys.argv[3]
rec = edgerec.Recommender.open(
    home, key=bytes(range(32)), bundle=None if bundle == "-" else bundle
)
opened = time.perf_counter()
candidates = json.load(open(feed))
result = rec.recommend(candidates, k=10)
done = time.perf_counter()
assert len(result) == 10
print(json.dumps({
    "import_s": imported - start,
    "open_and_load_s": opened - imported,
    "first_recommendation_s": done - opened,
    "total_s": done - start,
    "peak_rss_mb": peak_rss_mb(),
    "tensorflow_imported": "tensorflow" in sys.modules,
}))
"""


def percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 4),
        "mean_ms": round(statistics.fmean(ordered), 4),
    }


def timed(fn: Callable[[], object], calls: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def threaded(fn: Callable[[], object], threads: int, calls_each: int) -> float:
    """Calls per second with ``threads`` threads sharing one Recommender."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls_each):
            fn()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return threads * calls_each / (time.perf_counter() - start)


def with_signals(articles: list[dict[str, Any]], dim: int, prior: bool) -> list[dict[str, Any]]:
    """Seeded random feed signals on every article (SYNTHETIC)."""
    import numpy as np

    from edgerec.features.signals import encode_vector

    rng = np.random.default_rng(18)
    out = []
    for a in articles:
        extra: dict[str, Any] = {}
        if dim:
            extra["vector"] = encode_vector(rng.integers(-127, 128, dim))
        if prior:
            extra["prior"] = round(float(rng.normal(-3.0, 1.0)), 4)
        out.append({**a, **extra})
    return out


def installed_home(
    folder: Path, bundle: Path, candidate: Path | None, reads: list[dict[str, Any]]
) -> Path:
    """A home with ``bundle`` installed as model 1 and ``candidate`` (if any) as model 2 in
    shadow, and the reads recorded."""
    from edgerec.home import MODELS_DIR, write_pointer

    models = folder / MODELS_DIR
    models.mkdir(parents=True)
    shutil.copytree(bundle, models / "1")
    if candidate is not None:
        shutil.copytree(candidate, models / "2")
        manifest = json.loads((models / "2" / "manifest.json").read_text())
        manifest["model_version"] = 2
        (models / "2" / "manifest.json").write_text(json.dumps(manifest))
    write_pointer(folder, 1, candidate=2 if candidate is not None else None)
    with edgerec.Recommender.open(folder, key=KEY) as rec:
        for i, article in enumerate(reads):
            rec.record_read(article, at=1_700_000_000 + i * 60)
    return folder


def shadow_cost(
    scratch: Path,
    bundle: Path,
    candidate: Path,
    reads: list[dict[str, Any]],
    feed: list[Any],
    *,
    calls: int,
    cold_runs: int,
) -> dict[str, Any]:
    """The steady call with and without a model in shadow, alternating rounds of calls in
    one process; and each home's cold start."""
    homes = {
        "without_shadow": installed_home(scratch / "plain", bundle, None, reads),
        "with_shadow": installed_home(scratch / "shadow", bundle, candidate, reads),
    }
    recs = {name: edgerec.Recommender.open(home, key=KEY) for name, home in homes.items()}
    assert recs["with_shadow"].shadow_status().candidate == 2
    times: dict[str, list[float]] = {name: [] for name in homes}
    for _ in range(5):
        for name, rec in recs.items():
            times[name] += timed(lambda rec=rec: rec.recommend(feed, k=10), calls // 5)
    assert recs["with_shadow"].shadow_status().impressions >= calls
    for rec in recs.values():
        rec.close()
    feed_file = scratch / "shadow-feed.json"
    feed_file.write_text(json.dumps(feed))
    out: dict[str, Any] = {"candidate": str(candidate)}
    for name, home in homes.items():
        cold = [cold_start(home, "-", feed_file) for _ in range(cold_runs)]
        out[name] = {
            "steady": percentiles(times[name]),
            "cold_start_median_s": round(statistics.median(c["total_s"] for c in cold), 4),
            "cold_start_max_peak_rss_mb": round(max(c["peak_rss_mb"] for c in cold), 1),
        }
    ratio = out["with_shadow"]["steady"]["p50_ms"] / out["without_shadow"]["steady"]["p50_ms"]
    out["ratio_p50_with_vs_without"] = round(ratio, 3)
    out["target_p50_le_2x"] = ratio <= 2.0
    return out


def cold_start(home: Path, bundle: str, feed_file: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", COLD_START, str(home), bundle, str(feed_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=FIXTURE)
    parser.add_argument(
        "--candidate", type=Path, default=None, help="in shadow (default: --bundle)"
    )
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    core = pin_to_one_core()

    bundle = Bundle.load(args.bundle)
    articles = synthetic_articles(args.history + 3 * args.candidates, seed=11)
    signals = bundle.manifest.spec.signals
    if signals is not None:
        articles = with_signals(articles, signals.vector_dim, signals.prior)
    reads = articles[: args.history]
    feeds = [
        articles[args.history + i * args.candidates : args.history + (i + 1) * args.candidates]
        for i in range(3)
    ]
    scratch = tempfile.TemporaryDirectory(prefix="edgerec-bench-")
    home = Path(scratch.name) / "home"
    with edgerec.Recommender.open(home, key=KEY, bundle=bundle) as rec:
        record_ms = []
        for i, article in enumerate(reads):
            start = time.perf_counter()
            rec.record_read(article, at=1_700_000_000 + i * 60)
            record_ms.append((time.perf_counter() - start) * 1e3)

    rec = edgerec.Recommender.open(home, key=KEY, bundle=bundle)  # decrypts the history
    candidates = feeds[0]
    refresh_ms = []
    for feed in feeds:  # a feed refresh: every candidate featurized and embedded once
        start = time.perf_counter()
        rec.recommend(feed, k=10)
        refresh_ms.append((time.perf_counter() - start) * 1e3)
    rec.recommend(candidates, k=10)
    steady = timed(lambda: rec.recommend(candidates, k=10), args.calls)
    rules = timed(
        lambda: rec.recommend(
            candidates, k=10, max_per_source=2, freshness_half_life_h=12, diversity=0.3
        ),
        args.calls,
    )
    decrypt = timed(lambda: rec.history.recent(args.history), max(50, args.calls // 10))
    plain_steady = None
    if signals is not None:
        plain = [{k: v for k, v in a.items() if k not in ("vector", "prior")} for a in candidates]
        rec.recommend(plain, k=10)  # re-embedded once: a changed article
        plain_steady = percentiles(timed(lambda: rec.recommend(plain, k=10), args.calls))

    ranker = rec._ranker.runner
    assert ranker is not None
    spec = bundle.manifest.spec
    padded = ranker.history_input(featurize(reads, spec))  # (1, L, F)
    cands = featurize(candidates, spec)[None]  # (1, N, F)
    bare = timed(bare_invoke(ranker, "rank", history=padded, candidates=cands), args.calls)

    one_thread = threaded(lambda: rec.recommend(candidates, k=10), 1, 200)
    four_threads = threaded(lambda: rec.recommend(candidates, k=10), 4, 100)
    # A read of a recommended article with the profile's impression log full: the read is
    # marked on its impression and the whole log is saved with it.
    logged = len(rec.history.impressions)
    shown = {a["id"]: a for a in candidates}
    marked_ms = []
    for i in range(20):
        top = rec.recommend(candidates, k=10, now=1_800_000_000 + i)
        start = time.perf_counter()
        rec.record_read(shown[top[0].id], at=1_800_000_060 + i)
        marked_ms.append((time.perf_counter() - start) * 1e3)
    rec.close()

    feed_file = Path(scratch.name) / "feed.json"
    feed_file.write_text(json.dumps(candidates))
    cold = [cold_start(home, str(args.bundle), feed_file) for _ in range(args.cold_runs)]
    shadow = shadow_cost(
        Path(scratch.name),
        args.bundle,
        args.candidate or args.bundle,
        reads,
        candidates,
        calls=args.calls,
        cold_runs=args.cold_runs,
    )
    cold_total = statistics.median(c["total_s"] for c in cold)
    cold_rss = max(c["peak_rss_mb"] for c in cold)

    p_steady, p_bare = percentiles(steady), percentiles(bare)
    result: dict[str, Any] = {
        "benchmark": "recommend",
        "hardware": hardware(core),
        "bundle": str(args.bundle),
        "model": {
            "version": bundle.manifest.model_version,
            "history_len": bundle.manifest.history_len,
            "vector_dim": bundle.manifest.vector_dim,
            "n_buckets": spec.n_buckets,
            "bytes": bundle.manifest.model_bytes,
        },
        "inputs": {
            "history_items": args.history,
            "candidates": args.candidates,
            "k": 10,
            "articles": "synthetic (seeded)",
            "calls": args.calls,
        },
        "recommend": {
            "steady": p_steady,
            "with_rules": percentiles(rules),
            "feed_refresh_ms": [round(t, 3) for t in refresh_ms],
            "feed_signals": None if signals is None else signals.to_dict(),
            "steady_same_articles_without_signals": plain_steady,
        },
        "bare_invoke_rank": p_bare,
        "ratio_p50_recommend_vs_bare_invoke": round(p_steady["p50_ms"] / p_bare["p50_ms"], 3),
        "record_read": percentiles(record_ms),
        "record_read_marking_an_impression": {
            "impressions_in_the_log": logged,
            **percentiles(marked_ms),
        },
        "history_recent_decrypt": {"items": args.history, **percentiles(decrypt)},
        "threads": {
            "calls_per_s_1_thread": round(one_thread, 1),
            "calls_per_s_4_threads_one_lock": round(four_threads, 1),
        },
        "shadow": shadow,
        "cold_start": {
            "runs": cold,
            "median_total_s": round(cold_total, 4),
            "max_peak_rss_mb": round(cold_rss, 1),
            "tensorflow_imported": any(c["tensorflow_imported"] for c in cold),
        },
        "targets": {
            "p50_le_1ms": p_steady["p50_ms"] <= 1.0,
            "p99_le_3ms": p_steady["p99_ms"] <= 3.0,
            "p50_le_2x_bare_invoke": p_steady["p50_ms"] <= 2 * p_bare["p50_ms"],
            "cold_start_le_0_5s": cold_total <= 0.5,
            "cold_start_le_100mb": cold_rss <= 100,
            "shadow_p50_le_2x_without": shadow["target_p50_le_2x"],
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
