"""``student_feed_vectors``: a student that also reads a P-dim int8 vector per article.

The question it answers: how much of the teacher's MiniLM advantage could a device get if
the publisher put a small pretrained vector of each article in the feed? The vectors are
the article table's MiniLM vectors projected on their top P principal axes and quantized
to int8 with one global scale (:func:`project_int8`): P bytes per article in the feed.
The student reads them beside its hashed features (``StudentConfig.feed_vector_dim``),
distilled from the same teacher on the same examples.

Measured, never shipped: the manifest schema has no vector inputs, so this variant is
converted to dynamic-range int8 TFLite and run with the LiteRT interpreter directly, on
feature rows from the article table. Runs when the teacher had MiniLM vectors and
``student.feed_vector_variant = P > 0`` (the default is 32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgerec import FeatureSpec

from ..config import Config
from ..data.mind import Impression
from ..data.training_examples import TrainingSet
from ..evaluation.on_device import p50_ms
from ..evaluation.report import summarize
from ..progress import log

if TYPE_CHECKING:
    from ..models.distillation import TeacherScores

__all__ = ["NAME", "measure", "project_int8"]

NAME = "student_feed_vectors"
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


def project_int8(vectors: FloatArray, dim: int) -> tuple[npt.NDArray[np.int8], float, FloatArray]:
    """What a publisher would put in the feed: each article's vector projected on the top
    ``dim`` principal axes (fitted on the article table, row 0 padding excluded), then
    int8 with one global scale. Returns the int8 codes (A, P), the scale, and the
    dequantized float vectors the student reads (row 0 stays zero)."""
    rows = vectors[1:].astype(np.float64)  # (A - 1, 384)
    mean = rows.mean(0)
    _, _, axes = np.linalg.svd(rows - mean, full_matrices=False)  # (384, 384), top first
    projected = (vectors - mean) @ axes[:dim].T  # (A, P)
    projected[0] = 0.0
    scale = float(np.abs(projected).max() / 127.0) or 1.0
    codes = np.clip(np.round(projected / scale), -127, 127).astype(np.int8)  # (A, P)
    return codes, scale, (codes.astype(np.float32) * scale)


def measure(
    cfg: Config,
    inputs: TrainingSet,
    *,
    evaluation: Sequence[Impression],
    scorer: TeacherScores | None,
    minilm: FloatArray,
    strategy: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the variant (P = ``cfg.student.feed_vector_variant``) on the students'
    ``inputs``, distilled by ``scorer``, with ``minilm`` (A, 384) projected to the feed, and
    measure it: its report row (dynamic-range int8 TFLite, every evaluation impression)
    and its facts: cost per article in the feed, model size, latency beside the
    hashed-only model's."""
    from ai_edge_litert.interpreter import Interpreter

    from ..export import convert
    from ..models.student import train_student

    p = cfg.student.feed_vector_variant
    sc = replace(cfg.student, feed_vector_dim=p)
    _, scale, dequantized = project_int8(minilm, p)  # (A, P) floats the student reads
    log(f"training {NAME} ({p}-dim int8 MiniLM projections in the feed)")
    student, _ = train_student(
        inputs.examples,
        inputs.validation,
        inputs.features,
        inputs.spec,
        sc,
        teacher=scorer,
        seed=cfg.seed,
        feed_vectors=dequantized,
        strategy=strategy,
    )
    model = convert(student, "dynamic")
    runner = Interpreter(model_content=model, num_threads=1).get_signature_runner("rank")
    scores = _scores(runner, inputs, dequantized, evaluation)
    row = summarize(evaluation, scores, n_bootstrap=cfg.bootstrap, seed=cfg.seed)
    facts = {
        "dim": p,
        "feed_bytes_per_article": p,  # int8 codes; one float32 scale per feed
        "scale": scale,
        "projection": "top principal axes of the article table's MiniLM vectors, int8",
        "model_bytes_dynamic_int8": len(model),
        "auc": row["auc"],
        "auc_ci": row["auc_ci"],
        "ndcg@10": row["ndcg@10"],
        "invoke_p50_ms_50x500": _invoke_ms(runner, inputs.spec, sc.history_len, p, cfg.seed),
        "evaluated": "dynamic-range int8 TFLite, feature rows from the article table",
    }
    log(
        f"{NAME}: AUC {row['auc']:.4f} {row['auc_ci']}, {p} bytes per "
        f"article, invoke p50 {facts['invoke_p50_ms_50x500']} ms (50 x 500)"
    )
    return row, facts


def _scores(
    runner: Any, inputs: TrainingSet, vectors: FloatArray, evaluation: Sequence[Impression]
) -> list[FloatArray]:
    """Each evaluation impression scored by the TFLite ``rank`` signature, with feature
    rows and feed vectors from the article table."""
    features, hist, cands = inputs.features, inputs.hist, inputs.cands
    scores = []
    for i, imp in enumerate(evaluation):
        n = len(imp.candidates)
        out = runner(
            history=features[hist[i]][None],  # (1, L, F)
            history_vectors=vectors[hist[i]][None],  # (1, L, P)
            candidates=features[cands[i, :n]][None],  # (1, N, F)
            candidate_vectors=vectors[cands[i, :n]][None],  # (1, N, P)
        )
        scores.append(out["scores"][0])  # (N,)
    return scores


def _invoke_ms(runner: Any, spec: FeatureSpec, length: int, p: int, seed: int) -> float:
    """p50 of one ``rank`` call on random ids and vectors, L history items x 500."""
    rng = np.random.default_rng(seed)
    h = rng.integers(1, spec.n_buckets, (1, length, spec.width), dtype=np.int32)
    c = rng.integers(1, spec.n_buckets, (1, 500, spec.width), dtype=np.int32)
    hv = rng.normal(size=(1, length, p)).astype(np.float32)
    cv = rng.normal(size=(1, 500, p)).astype(np.float32)
    return p50_ms(lambda: runner(history=h, history_vectors=hv, candidates=c, candidate_vectors=cv))
