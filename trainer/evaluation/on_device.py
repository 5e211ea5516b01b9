"""An exported bundle measured the way a device runs it: no Keras, no TensorFlow.

Each evaluation impression goes through the SDK's own path: the raw article dicts through
:func:`edgerec.featurize` (the device's hashing), then the bundle's ``rank`` signature in
:class:`edgerec.model.ModelRunner` (LiteRT, one thread). What this measures is what ships:

* quality: the report row of the bundle's scores (``student_int8``);
* parity: how far the TFLite scores are from the Keras student's (quantization error);
* latency: the median ``rank`` call on 50 history items x 500 candidates, and the median
  per evaluation impression including featurization.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgerec import FeatureSpec, featurize
from edgerec.model import Bundle, ModelRunner

from ..data.mind import Impression
from .report import summarize

__all__ = [
    "Measured",
    "bare_invoke_ms",
    "feature_rows",
    "measure_bundle",
    "on_device_scores",
    "p50_ms",
    "parity",
]

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


def feature_rows(
    articles: dict[str, dict[str, Any]], ids: Sequence[str], spec: FeatureSpec
) -> IntArray:
    """Hashed feature rows (N, F) of the known ``ids``, the way a device featurizes them."""
    known = [articles[i] for i in ids if i in articles]
    return featurize(known, spec) if known else np.zeros((0, spec.width), np.int32)


def p50_ms(call: Callable[[], object], repeat: int = 100) -> float:
    """Median wall time of ``call`` in milliseconds, after one warm-up call (allocation)."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 3)


def on_device_scores(
    runner: ModelRunner,
    evaluation: Sequence[Impression],
    articles: dict[str, dict[str, Any]],
) -> tuple[list[FloatArray], float]:
    """Scores of every evaluation impression the way a device computes them: raw article
    dicts through ``edgerec.featurize``, then the bundle's ``rank`` signature. Returns the
    scores and the median seconds per impression."""
    spec = runner.manifest.spec
    out, times = [], []
    for imp in evaluation:
        start = time.perf_counter()
        history = feature_rows(articles, imp.history, spec)  # (H, F)
        candidates = feature_rows(articles, imp.candidates, spec)  # (N, F)
        out.append(runner.rank(history, candidates))  # (N,)
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def parity(a: Sequence[FloatArray], b: Sequence[FloatArray]) -> dict[str, float]:
    """Largest absolute score difference, and mean top-10 overlap (as sets) per impression."""
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))
    overlap = []
    for x, y in zip(a, b, strict=True):
        k = min(10, len(x))
        top_x = set(np.argsort(-x, kind="stable")[:k].tolist())
        top_y = set(np.argsort(-y, kind="stable")[:k].tolist())
        overlap.append(len(top_x & top_y) / k)
    return {"max_abs_diff": round(diff, 5), "top10_agreement": round(float(np.mean(overlap)), 4)}


def bare_invoke_ms(runner: ModelRunner, rng: np.random.Generator, n: int = 500) -> float:
    """p50 of the ``rank`` signature alone on 50-item histories x ``n`` random candidates."""
    spec, length = runner.manifest.spec, runner.manifest.history_len
    history = rng.integers(1, spec.n_buckets, (min(50, length), spec.width), dtype=np.int32)
    cands = rng.integers(1, spec.n_buckets, (n, spec.width), dtype=np.int32)  # (n, F)
    return p50_ms(lambda: runner.rank(history, cands))


@dataclass(frozen=True)
class Measured:
    """One bundle's measurement: its report row, the facts the report's ``export`` section
    lists for it, its scores per impression and the runner that produced them."""

    row: dict[str, Any]
    facts: dict[str, Any]
    scores: list[FloatArray]
    runner: ModelRunner


def measure_bundle(
    bundle: Bundle,
    evaluation: Sequence[Impression],
    articles: dict[str, dict[str, Any]],
    *,
    keras_scores: Sequence[FloatArray],
    rng: np.random.Generator,
    bootstrap: int,
    seed: int,
) -> Measured:
    """Quality, parity with the Keras student's ``keras_scores`` and latency of
    ``bundle``, through the on-device path. ``rng`` draws the latency inputs."""
    runner = ModelRunner(bundle)
    scores, per_impression = on_device_scores(runner, evaluation, articles)
    row = summarize(evaluation, scores, n_bootstrap=bootstrap, seed=seed)
    facts = {
        "bytes": len(bundle.model),
        "auc": row["auc"],
        "auc_ci": row["auc_ci"],
        "ndcg@10": row["ndcg@10"],
        "invoke_p50_ms_50x500": bare_invoke_ms(runner, rng),
        "on_device_p50_ms_per_impression": round(per_impression * 1e3, 3),
        "parity_vs_keras": parity(keras_scores, scores),
    }
    return Measured(row, facts, scores, runner)
