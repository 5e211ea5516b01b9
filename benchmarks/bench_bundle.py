"""The model that ships, alone: bundle size and the latency of its three signatures through
`edgerec.model.ModelRunner`, next to a bare `Invoke` of the same signature on the same
tensors, in one run on one core. Prints JSON.

    python benchmarks/bench_bundle.py [--bundle DIR] [--candidates 500] [--history 50]
                                      [--calls 300]

Targets (DESIGN.md section 7): the bundle <= 1 MB. The `recommend()` budget (p50 <= 1 ms,
<= 2x a bare invoke) is measured end to end by the Recommender's benchmark; this one shows
what the model and the ModelRunner wrapper cost by themselves. Inputs are SYNTHETIC articles
(seeded) featurized with the bundle's own FeatureSpec; the default bundle is the committed
synthetic fixture. To measure a MIND-trained bundle, point ``--bundle`` at
``RUN/bundle`` written by ``edgerec-train pipeline`` (never commit it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware, pin_to_one_core

from edgerec import featurize
from edgerec.model import MANIFEST_FILE, MODEL_FILE, Bundle, ModelRunner, runtime
from edgerec.trainer.data.synthetic import synthetic_articles

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny_bundle"
BUDGET_BYTES = 1_000_000


def timings(fn: Callable[[], object], calls: int) -> dict[str, float]:
    """p50 / p99 / mean of ``calls`` calls after 20 warm-up calls, in milliseconds."""
    for _ in range(20):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 4),
        "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 4),
        "mean_ms": round(statistics.fmean(times), 4),
    }


def bare_invoke(ranker: ModelRunner, name: str, **inputs: np.ndarray) -> Callable[[], object]:
    """The floor: the signature's kernels alone. One full call sets shapes and tensors;
    the returned function only re-runs ``Invoke`` on them (LiteRT's private wrapper: there
    is no public per-signature invoke without resize + allocate + copy)."""
    runner = ranker._runners[name]
    runner(**inputs)
    wrapper, index = runner._interpreter_wrapper, runner._subgraph_index
    return lambda: wrapper.Invoke(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=FIXTURE)
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    core = pin_to_one_core()

    bundle = Bundle.load(args.bundle)
    manifest = bundle.manifest
    ranker = ModelRunner(bundle)
    spec = manifest.spec
    articles = synthetic_articles(args.candidates + args.history, seed=7)
    rows = featurize(articles, spec)  # (H + N, F)
    history, candidates = rows[: args.history], rows[args.history :]
    padded = ranker.history_input(history)  # (1, L, F)

    rank = timings(lambda: ranker.rank(history, candidates), args.calls)
    rank_bare = timings(
        bare_invoke(ranker, "rank", history=padded, candidates=candidates[None]), args.calls
    )
    items = timings(lambda: ranker.item_vectors(candidates), args.calls)
    items_bare = timings(bare_invoke(ranker, "items", features=candidates), args.calls)
    user = timings(lambda: ranker.user_vector(history), args.calls)
    user_bare = timings(bare_invoke(ranker, "user", history=padded), args.calls)

    model_bytes = (args.bundle / MODEL_FILE).stat().st_size
    manifest_bytes = (args.bundle / MANIFEST_FILE).stat().st_size
    total = model_bytes + manifest_bytes
    result: dict[str, Any] = {
        "benchmark": "bundle",
        "hardware": hardware(core),
        "runtime": runtime.RUNTIME,
        "bundle": str(args.bundle),
        "inputs": {
            "history_items": args.history,
            "history_len": manifest.history_len,
            "candidates": args.candidates,
            "features_per_article": spec.width,
            "n_buckets": spec.n_buckets,
            "articles": "synthetic (seeded)",
            "calls": args.calls,
        },
        "size": {
            "model_bytes": model_bytes,
            "manifest_bytes": manifest_bytes,
            "bundle_bytes": total,
            "budget_bytes": BUDGET_BYTES,
            "within_budget": total <= BUDGET_BYTES,
        },
        "latency": {
            "rank": {**rank, "bare_invoke": rank_bare},
            "items": {**items, "bare_invoke": items_bare},
            "user": {**user, "bare_invoke": user_bare},
        },
        "ratios_vs_bare_invoke_p50": {
            name: round(wrapped["p50_ms"] / bare["p50_ms"], 3)
            for name, wrapped, bare in (
                ("rank", rank, rank_bare),
                ("items", items, items_bare),
                ("user", user, user_bare),
            )
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
