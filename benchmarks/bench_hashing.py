"""Feature-hashing throughput: native vs pure-Python twin vs a per-item mmh3 loop vs
scikit-learn's FeatureHasher, on the same tokens in one run; and featurizing 500 full
articles. Prints JSON.

    python benchmarks/bench_hashing.py [--tokens 1000000] [--repeat 5]

Targets (DESIGN.md section 7): native >= 10x FeatureHasher and >= 3x the mmh3 loop;
featurizing 500 full articles <= 1 ms on one core. All inputs are SYNTHETIC (seeded).
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

import mmh3
import numpy as np
from sklearn.feature_extraction import FeatureHasher

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware, pin_to_one_core

from edgerec import FeatureSpec, FieldSpec, featurize, tokenize
from edgerec.features import _hashing_py, hashing
from edgerec.trainer.data.synthetic import synthetic_articles

N_BUCKETS = 1 << 15
SEED = 0


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` runs, in seconds (the least disturbed by the shared machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_tokens(n: int) -> list[str]:
    tokens: list[str] = []
    seed = 0
    while len(tokens) < n:
        for article in synthetic_articles(2000, seed=seed):
            tokens += tokenize(article["title"] + " " + article["abstract"])
        seed += 1
    return tokens[:n]


def token_throughput(tokens: list[str], repeat: int) -> dict[str, Any]:
    n = len(tokens)
    docs = [tokens[i : i + 32] for i in range(0, n, 32)]  # the same tokens, as documents
    texts = [{"t": " ".join(d)} for d in docs]
    text_spec = FeatureSpec(
        fields=(FieldSpec("t", "text", slots=32, max_chars=4096),), n_buckets=N_BUCKETS, seed=SEED
    )
    m = N_BUCKETS - 1

    def mmh3_loop() -> np.ndarray:
        return np.fromiter(
            (1 + mmh3.hash(t, SEED, signed=False) % m for t in tokens), dtype=np.int32, count=n
        )

    hasher = FeatureHasher(n_features=N_BUCKETS, input_type="string", alternate_sign=False)

    def twin() -> np.ndarray:
        out = np.empty(n, dtype=np.int32)
        _hashing_py.hash_strings(tokens, SEED, N_BUCKETS, out)
        return out

    def native() -> np.ndarray:
        return hashing.hash_strings(tokens, seed=SEED, n_buckets=N_BUCKETS)

    # Same answers before any timing: the comparison is only fair if the work is equal.
    assert np.array_equal(native(), mmh3_loop())
    assert hashing.IMPLEMENTATION == "native", "build the extension first (make test)"
    assert np.array_equal(twin()[:20000], mmh3_loop()[:20000])

    seconds = {
        "native_hash_strings": best_of(native, repeat),
        "native_featurize_text_one_pass": best_of(lambda: featurize(texts, text_spec), repeat),
        "mmh3_per_item_loop": best_of(mmh3_loop, repeat),
        "sklearn_feature_hasher": best_of(lambda: hasher.transform(docs), repeat),
        "python_twin": best_of(twin, 1),
    }
    rates = {k: n / v for k, v in seconds.items()}
    return {
        "tokens": n,
        "tokens_per_s": {k: round(v) for k, v in rates.items()},
        "ratios": {
            "native_vs_sklearn_feature_hasher": round(
                rates["native_hash_strings"] / rates["sklearn_feature_hasher"], 1
            ),
            "native_vs_mmh3_loop": round(
                rates["native_hash_strings"] / rates["mmh3_per_item_loop"], 2
            ),
            "native_vs_python_twin": round(rates["native_hash_strings"] / rates["python_twin"], 1),
            "one_pass_text_vs_sklearn_feature_hasher": round(
                rates["native_featurize_text_one_pass"] / rates["sklearn_feature_hasher"], 1
            ),
        },
        "notes": "native_featurize_text_one_pass tokenizes raw text (NFKC, casefold, split) "
        "and hashes in one pass; the others hash the pre-split tokens",
    }


def feed_latency(repeat: int) -> dict[str, Any]:
    spec = FeatureSpec.default()
    out: dict[str, Any] = {}
    # p_unicode: share of titles/abstracts given a non-ASCII word. Real MIND titles and
    # abstracts are ~1% non-ASCII, so 0.02 is the realistic feed and 0.5 the stress case.
    for label, p in (
        ("realistic_2pct_non_ascii", 0.02),
        ("ascii_only", 0.0),
        ("heavy_50pct_non_ascii", 0.5),
    ):
        feed = synthetic_articles(500, seed=11, p_unicode=p)
        featurize(feed, spec)  # warm: compiles the plan once per spec
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            featurize(feed, spec)
            times.append(time.perf_counter() - start)
        # The host's speed drifts (shared vCPUs): medians of 100-call windows show it.
        windows = [statistics.median(times[i : i + 100]) for i in range(0, len(times), 100)]
        times.sort()
        twin = np.zeros((len(feed), spec.width), dtype=np.int32)
        twin_s = best_of(lambda: hashing._featurize_with(_hashing_py, spec, feed, twin), 3)  # noqa: B023
        out[label] = {
            "articles": len(feed),
            "native_ms_p50": round(statistics.median(times) * 1e3, 3),
            "native_ms_p99": round(times[int(0.99 * (len(times) - 1))] * 1e3, 3),
            "native_ms_min": round(times[0] * 1e3, 3),
            "native_ms_p50_per_100_call_window": {
                "fastest": round(min(windows) * 1e3, 3),
                "slowest": round(max(windows) * 1e3, 3),
            },
            "python_twin_ms": round(twin_s * 1e3, 2),
            "native_vs_twin": round(twin_s / statistics.median(times), 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--feed-repeat", type=int, default=1000)
    args = parser.parse_args()

    core = pin_to_one_core()
    tokens = make_tokens(args.tokens)
    result: dict[str, Any] = {
        "benchmark": "hashing",
        "hardware": hardware(core),
        "data": "SYNTHETIC (edgerec.trainer.data.synthetic, seeded)",
        "spec": {
            "n_buckets": N_BUCKETS,
            "seed": SEED,
            "default_spec_fingerprint": FeatureSpec.default().fingerprint[:12],
        },
        "token_hashing": token_throughput(tokens, args.repeat),
        "featurize_500_articles": feed_latency(args.feed_repeat),
    }
    ratios = result["token_hashing"]["ratios"]
    realistic = result["featurize_500_articles"]["realistic_2pct_non_ascii"]
    result["targets"] = {
        "native_ge_10x_feature_hasher": ratios["native_vs_sklearn_feature_hasher"] >= 10,
        "native_ge_3x_mmh3_loop": ratios["native_vs_mmh3_loop"] >= 3,
        "featurize_500_le_1ms_p50_realistic": realistic["native_ms_p50"] <= 1.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
