"""The pipeline's second half: distill students from the teacher, export them to TFLite,
measure quantization and parity, evaluate the int8 bundle through the on-device path
(``edgerec.featurize`` + the LiteRT interpreter, no Keras) and write the bundle.

Report rows: ``student_no_teacher`` (the same student, click loss only), ``student_float``
(the distilled Keras student), ``student_int8`` (the shipped bundle, on-device path).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import numpy.typing as npt

from edgerec import FeatureSpec, featurize
from edgerec.model import Bundle, ModelRunner

from .config import Config
from .data.mind import Impression
from .data.training_examples import ArticleTable, ExampleStream, evaluation_arrays, unpad
from .evaluation.report import summarize
from .export import convert, write_bundle
from .models.distillation import TeacherScores, teacher_scorer
from .models.student import Student, score_indices, train_student
from .models.teacher import Teacher
from .models.training import distribution

__all__ = ["StudentStage", "load_student", "make_bundle", "run_student_stage", "save_student"]

IntArray = npt.NDArray[np.int32]


def _log(msg: str) -> None:
    print(f"[edgerec-train] {msg}", file=sys.stderr, flush=True)


@dataclass
class StudentStage:
    models: dict[str, dict[str, Any]]  # report rows
    export: dict[str, Any]  # quantization comparison, parity, bundle facts
    timings: dict[str, float]


def _rows(articles: dict[str, dict[str, Any]], ids: Sequence[str], spec: FeatureSpec) -> IntArray:
    """Hashed feature rows (N, F) of the known ``ids``, the way a device featurizes them."""
    known = [articles[i] for i in ids if i in articles]
    return featurize(known, spec) if known else np.zeros((0, spec.width), np.int32)


def _p50_ms(call: Callable[[], object], repeat: int = 100) -> float:
    """Median wall time of ``call`` in milliseconds, after one warm-up call (allocation)."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 3)


def on_device_scores(
    ranker: ModelRunner,
    evaluation: Sequence[Impression],
    articles: dict[str, dict[str, Any]],
) -> tuple[list[npt.NDArray[np.float32]], float]:
    """Scores of every evaluation impression the way a device computes them: raw article
    dicts through ``edgerec.featurize``, then the bundle's ``rank`` signature. Returns the
    scores and the median seconds per impression."""
    spec = ranker.manifest.spec
    out, times = [], []
    for imp in evaluation:
        start = time.perf_counter()
        history = _rows(articles, imp.history, spec)
        candidates = _rows(articles, imp.candidates, spec)
        out.append(ranker.rank(history, candidates))
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def _parity(a: list[Any], b: list[Any]) -> dict[str, float]:
    """Largest absolute score difference, and mean top-10 overlap (as sets) per impression."""
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))
    overlap = []
    for x, y in zip(a, b, strict=True):
        k = min(10, len(x))
        top_x = set(np.argsort(-x, kind="stable")[:k].tolist())
        top_y = set(np.argsort(-y, kind="stable")[:k].tolist())
        overlap.append(len(top_x & top_y) / k)
    return {"max_abs_diff": round(diff, 5), "top10_agreement": round(float(np.mean(overlap)), 4)}


def _bare_invoke_ms(ranker: ModelRunner, rng: np.random.Generator, n: int = 500) -> float:
    """p50 of the ``rank`` signature alone on 50-item histories x ``n`` random candidates."""
    spec, length = ranker.manifest.spec, ranker.manifest.history_len
    history = rng.integers(1, spec.n_buckets, (min(50, length), spec.width), dtype=np.int32)
    cands = rng.integers(1, spec.n_buckets, (n, spec.width), dtype=np.int32)
    return _p50_ms(lambda: ranker.rank(history, cands))


def cold_start_prior(
    train: Callable[[], Iterator[Impression]], articles: dict[str, Any]
) -> dict[str, Any]:
    """Smoothed click-through rate per category and subcategory from training impressions,
    for ranking a reader with no history (the SDK adds freshness)."""
    shown: dict[tuple[str, str], int] = {}
    clicked: dict[tuple[str, str], int] = {}
    total_shown = total_clicked = 0
    for imp in train():
        for c, y in zip(imp.candidates, imp.labels, strict=True):
            article = articles.get(c)
            if article is None:
                continue
            total_shown += 1
            total_clicked += y
            for field in ("category", "subcategory"):
                key = (field, article.get(field) or "")
                shown[key] = shown.get(key, 0) + 1
                clicked[key] = clicked.get(key, 0) + y
    base = (total_clicked + 1) / (total_shown + 2)
    prior: dict[str, Any] = {"default": round(base, 5), "category": {}, "subcategory": {}}
    strength = 20.0  # pseudo-impressions pulling rare groups toward the base rate
    for (field, value), n in sorted(shown.items()):
        if value:
            rate = (clicked[(field, value)] + strength * base) / (n + strength)
            prior[field][value] = round(rate, 5)
    return prior


def run_student_stage(
    cfg: Config,
    *,
    articles: dict[str, dict[str, Any]],
    table: ArticleTable,
    train: Callable[[], Iterator[Impression]],
    evaluation: Sequence[Impression],
    teacher: Teacher | None,
    teacher_history_len: int,
    teacher_metrics: dict[str, Any] | None,
    out_dir: Path,
    minilm: npt.NDArray[np.float32] | None = None,
) -> StudentStage:
    sc = cfg.student
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    spec = FeatureSpec(n_buckets=sc.n_buckets) if sc.n_buckets else FeatureSpec.default()
    features = np.zeros((len(table), spec.width), dtype=np.int32)  # (A, F) row 0 padding
    features[1:] = featurize([articles[i] for i in table.ids[1:]], spec)
    stream = ExampleStream(
        train,
        table,
        history_len=sc.history_len,
        negatives=sc.negatives,
        validation_fraction=cfg.teacher.validation_fraction,
        seed=cfg.seed,
    )
    validation = stream.validation()
    hist, cands = evaluation_arrays(evaluation, table, sc.history_len)
    timings["student_examples"] = time.perf_counter() - clock
    models: dict[str, dict[str, Any]] = {}
    scorer = teacher_scorer(teacher, teacher_history_len) if teacher is not None else None
    students: dict[str, tuple[Student, list[npt.NDArray[np.float32]]]] = {}
    for name, distil in (("student_no_teacher", None), ("student_float", scorer)):
        if name == "student_float" and distil is None:
            _log("no teacher to distill from: student_float is trained on clicks only")
        clock = time.perf_counter()
        _log(f"training {name} ({'distilled' if distil is not None else 'click loss only'})")
        student = train_student(
            stream,
            validation,
            features,
            spec,
            sc,
            teacher=distil,
            seed=cfg.seed,
            strategy=distribution(cfg.distribute, cfg.cpu_replicas),
        )
        scores = unpad(score_indices(student, features, hist, cands), evaluation)
        models[name] = summarize(evaluation, scores, n_bootstrap=cfg.bootstrap, seed=cfg.seed)
        students[name] = student, scores
        timings[name] = time.perf_counter() - clock
        _log(
            f"{name}: AUC {models[name]['auc']:.3f} {models[name]['auc_ci']} "
            f"({timings[name]:.0f} s)"
        )

    student, keras_scores = students["student_float"]
    clock = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    represent = _representative(stream, features, sc.representative, rng)
    golden_inputs = []
    for imp in list(evaluation)[:2]:
        history = _rows(articles, imp.history, spec)[-sc.history_len :]
        golden_inputs.append((history, _rows(articles, imp.candidates[:8], spec)))
    variants: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, Any]] = {}  # report row of each converted variant
    on_device: dict[str, list[Any]] = {}
    rankers: dict[str, ModelRunner] = {}
    measured = (
        ("float", "dynamic", "full") if sc.quantization == "auto" else ("float", sc.quantization)
    )
    for quant in measured:
        start = time.perf_counter()
        try:
            model = convert(student, quant, iter(represent) if quant == "full" else None)
        except Exception as exc:  # a converter failure is a measured outcome, not a crash
            variants[quant] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            _log(f"TFLite {quant}: conversion failed ({variants[quant]['error'][:120]})")
            continue
        bundle = make_bundle(  # each variant as a loadable bundle, for measurements
            out_dir / "variants" / quant,
            student,
            model,
            model_version=1,
            quantization={"mode": quant},
            golden_inputs=golden_inputs,
            metrics={},
            cold_start_prior={},
        )
        ranker = ModelRunner(bundle)
        scores_q, per_impression = on_device_scores(ranker, evaluation, articles)
        row = summarize(evaluation, scores_q, n_bootstrap=cfg.bootstrap, seed=cfg.seed)
        variants[quant] = {
            "bytes": len(model),
            "auc": row["auc"],
            "auc_ci": row["auc_ci"],
            "ndcg@10": row["ndcg@10"],
            "invoke_p50_ms_50x500": _bare_invoke_ms(ranker, rng),
            "on_device_p50_ms_per_impression": round(per_impression * 1e3, 3),
            "parity_vs_keras": _parity(keras_scores, scores_q),
            "convert_s": round(time.perf_counter() - start, 1),
        }
        on_device[quant] = scores_q
        rankers[quant] = ranker
        rows[quant] = row
        _log(
            f"TFLite {quant}: {len(model) / 1e6:.2f} MB, AUC {row['auc']:.4f}, invoke p50 "
            f"{variants[quant]['invoke_p50_ms_50x500']} ms (50 x 500)"
        )
    shipped, why = _choose(variants, sc.quantization)
    _log(f"shipping {shipped}: {why}")
    if "float" in on_device:
        for quant in ("dynamic", "full"):
            if quant in on_device:
                variants[quant]["parity_vs_tflite_float"] = _parity(
                    on_device["float"], on_device[quant]
                )
    models["student_int8"] = rows[shipped]
    timings["export"] = time.perf_counter() - clock
    if minilm is not None and sc.feed_vector_variant:
        clock = time.perf_counter()
        row, facts = feed_vector_variant(
            cfg,
            stream=stream,
            validation=validation,
            features=features,
            spec=spec,
            scorer=scorer,
            minilm=minilm,
            hist=hist,
            cands=cands,
            evaluation=evaluation,
        )
        models["student_feed_vectors"] = row
        export_extra: dict[str, Any] = {"feed_vector_variant": facts}
        timings["student_feed_vectors"] = time.perf_counter() - clock
    else:
        export_extra = {"feed_vector_variant": "not measured (needs the MiniLM vectors)"}

    metrics = {k: models["student_int8"][k] for k in ("auc", "auc_ci", "mrr", "ndcg@5", "ndcg@10")}
    metrics = {**metrics, "teacher": teacher_metrics, "n_impressions": len(evaluation)}
    prior = cold_start_prior(train, articles)
    save_student(
        out_dir / "student",
        student,
        seed=cfg.seed,
        representative=represent,
        golden_inputs=golden_inputs,
        metrics=metrics,
        cold_start_prior=prior,
    )
    bundle = make_bundle(
        out_dir / "bundle",
        student,
        rankers[shipped].bundle.model,
        model_version=sc.version or int(time.time()),
        quantization={"mode": shipped, "why": why, "measured": variants},
        golden_inputs=golden_inputs,
        metrics=metrics,
        cold_start_prior=prior,
    )
    export = {
        "shipped": shipped,
        "why": why,
        "bundle_bytes": sum(p.stat().st_size for p in (out_dir / "bundle").iterdir()),
        "model_bytes": len(bundle.model),
        "variants": variants,
        "parity_keras_vs_int8": variants[shipped]["parity_vs_keras"],
        **export_extra,
    }
    return StudentStage(models, export, timings)


def project_int8(
    vectors: npt.NDArray[np.float32], dim: int
) -> tuple[npt.NDArray[np.int8], float, npt.NDArray[np.float32]]:
    """What a publisher would put in the feed: each article's vector projected on the top
    ``dim`` principal axes (fitted on the article table, row 0 padding excluded), then
    int8 with one global scale. Returns the int8 codes (A, P), the scale, and the
    dequantized float vectors the student reads (row 0 stays zero)."""
    rows = vectors[1:].astype(np.float64)
    mean = rows.mean(0)
    _, _, axes = np.linalg.svd(rows - mean, full_matrices=False)  # (384, 384), top first
    projected = (vectors - mean) @ axes[:dim].T  # (A, P)
    projected[0] = 0.0
    scale = float(np.abs(projected).max() / 127.0) or 1.0
    codes = np.clip(np.round(projected / scale), -127, 127).astype(np.int8)
    return codes, scale, (codes.astype(np.float32) * scale)


def feed_vector_variant(
    cfg: Config,
    *,
    stream: ExampleStream,
    validation: Any,
    features: IntArray,
    spec: FeatureSpec,
    scorer: TeacherScores | None,
    minilm: npt.NDArray[np.float32],
    hist: IntArray,
    cands: IntArray,
    evaluation: Sequence[Impression],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The student with a P-dim int8 feed vector per article beside its hashed features:
    its quality (dynamic-range int8 TFLite, on every evaluation impression), its cost per
    article in the feed, and its latency next to the hashed-only model's."""
    from dataclasses import replace

    from ai_edge_litert.interpreter import Interpreter

    p = cfg.student.feed_vector_variant
    sc = replace(cfg.student, feed_vector_dim=p)
    _, scale, dequantized = project_int8(minilm, p)
    _log(f"training student_feed_vectors ({p}-dim int8 MiniLM projections in the feed)")
    student = train_student(
        stream,
        validation,
        features,
        spec,
        sc,
        teacher=scorer,
        seed=cfg.seed,
        feed_vectors=dequantized,
        strategy=distribution(cfg.distribute, cfg.cpu_replicas),
    )
    model = convert(student, "dynamic")
    runner = Interpreter(model_content=model, num_threads=1).get_signature_runner("rank")
    length = sc.history_len
    scores = []
    for i, imp in enumerate(evaluation):
        n = len(imp.candidates)
        out = runner(
            history=features[hist[i]][None],
            history_vectors=dequantized[hist[i]][None],
            candidates=features[cands[i, :n]][None],
            candidate_vectors=dequantized[cands[i, :n]][None],
        )
        scores.append(out["scores"][0])
    row = summarize(evaluation, scores, n_bootstrap=cfg.bootstrap, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    h = rng.integers(1, spec.n_buckets, (1, length, spec.width), dtype=np.int32)
    c = rng.integers(1, spec.n_buckets, (1, 500, spec.width), dtype=np.int32)
    hv = rng.normal(size=(1, length, p)).astype(np.float32)
    cv = rng.normal(size=(1, 500, p)).astype(np.float32)
    invoke_ms = _p50_ms(
        lambda: runner(history=h, history_vectors=hv, candidates=c, candidate_vectors=cv)
    )
    facts = {
        "dim": p,
        "feed_bytes_per_article": p,  # int8 codes; one float32 scale per feed
        "scale": scale,
        "projection": "top principal axes of the article table's MiniLM vectors, int8",
        "model_bytes_dynamic_int8": len(model),
        "auc": row["auc"],
        "auc_ci": row["auc_ci"],
        "ndcg@10": row["ndcg@10"],
        "invoke_p50_ms_50x500": invoke_ms,
        "evaluated": "dynamic-range int8 TFLite, feature rows from the article table",
    }
    _log(
        f"student_feed_vectors: AUC {row['auc']:.4f} {row['auc_ci']}, {p} bytes per "
        f"article, invoke p50 {facts['invoke_p50_ms_50x500']} ms (50 x 500)"
    )
    return row, facts


def make_bundle(
    out_dir: Path,
    student: Student,
    model: bytes,
    *,
    model_version: int,
    quantization: dict[str, Any],
    golden_inputs: Sequence[tuple[IntArray, IntArray]],
    metrics: dict[str, Any],
    cold_start_prior: dict[str, Any],
) -> Bundle:
    """Write the bundle with golden outputs computed by the model itself through the
    runtime the device uses, then load it back and check those goldens."""
    scratch = write_bundle(
        out_dir / ".golden",
        model,
        student=student,
        model_version=model_version,
        quantization=quantization,
        golden=[{"history": [], "candidates": [], "scores": [], "tolerance": 1.0}],
        metrics=metrics,
        cold_start_prior=cold_start_prior,
    )
    ranker = ModelRunner(scratch)
    golden = [
        {
            "history": history.tolist(),
            "candidates": candidates.tolist(),
            "scores": [round(float(x), 6) for x in ranker.rank(history, candidates)],
            "tolerance": 1e-3,
        }
        for history, candidates in golden_inputs
    ]
    shutil.rmtree(out_dir / ".golden")
    bundle = write_bundle(
        out_dir,
        model,
        student=student,
        model_version=model_version,
        quantization=quantization,
        golden=golden,
        metrics=metrics,
        cold_start_prior=cold_start_prior,
    )
    ModelRunner(bundle).check_golden()
    return bundle


def save_student(
    folder: Path,
    student: Student,
    *,
    seed: int,
    representative: Sequence[tuple[IntArray, IntArray]],
    golden_inputs: Sequence[tuple[IntArray, IntArray]],
    metrics: dict[str, Any],
    cold_start_prior: dict[str, Any],
) -> None:
    """What ``edgerec-train export`` needs to rebuild the bundle: weights, the config and
    spec that made them, calibration pairs, golden inputs, metrics and the prior."""
    folder.mkdir(parents=True, exist_ok=True)
    student.save_weights(str(folder / "student.weights.h5"))
    arrays: dict[str, IntArray] = {}
    if representative:
        arrays["rep_history"] = np.concatenate([h for h, _ in representative])
        arrays["rep_candidates"] = np.concatenate([c for _, c in representative])
    for i, (history, candidates) in enumerate(golden_inputs):
        arrays[f"golden_history_{i}"] = history
        arrays[f"golden_candidates_{i}"] = candidates
    np.savez_compressed(folder / "inputs.npz", **arrays)  # type: ignore[arg-type]
    config = {
        "student": asdict(student.cfg),
        "spec": student.spec.to_dict(),
        "seed": seed,
        "metrics": metrics,
        "cold_start_prior": cold_start_prior,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def load_student(folder: Path) -> tuple[Student, dict[str, Any], dict[str, IntArray]]:
    """A student saved by :func:`save_student`, its config.json and its inputs.

    Raises:
        FileNotFoundError: a file is missing.
    """
    from .config import StudentConfig

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    spec = FeatureSpec.from_dict(config["spec"])
    cfg = StudentConfig(**config["student"])
    student = Student(spec, cfg)
    dummy = np.zeros((1, cfg.history_len, spec.width), np.int32)
    student({"history": dummy, "candidates": dummy[:, :1]})  # create the variables
    student.load_weights(str(folder / "student.weights.h5"))
    with np.load(folder / "inputs.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return student, config, arrays


def _representative(
    stream: ExampleStream, features: IntArray, n: int, rng: np.random.Generator
) -> list[tuple[IntArray, IntArray]]:
    """``n`` real training (history, candidates) pairs as feature rows, for calibration."""
    pairs = []
    for hist, cands, _ in stream.iterate():
        if rng.random() < 0.2:
            pairs.append((features[hist][None], features[cands][None]))  # (1, L, F), (1, C, F)
            if len(pairs) >= n:
                break
    return pairs


def _choose(variants: dict[str, dict[str, Any]], wanted: str) -> tuple[str, str]:
    """The int8 variant to ship: as configured, or (auto) the better on quality x latency:
    the higher on-device AUC unless within 0.002 (bootstrap noise on this file), then the
    faster."""
    ok = {q: v for q, v in variants.items() if q in ("dynamic", "full") and "error" not in v}
    if not ok:
        raise RuntimeError(
            "no int8 variant converted: " + str({q: v.get("error") for q, v in variants.items()})
        )
    if wanted in ok:
        return wanted, f"configured (student.quantization={wanted})"
    if len(ok) == 1:
        (only,) = ok
        return only, f"the only int8 variant that converted ({variants})"
    d, f = ok["dynamic"], ok["full"]
    if abs(d["auc"] - f["auc"]) < 0.002:
        faster = "dynamic" if d["invoke_p50_ms_50x500"] <= f["invoke_p50_ms_50x500"] else "full"
        return faster, (
            f"AUC within 0.002 (dynamic {d['auc']:.4f}, full {f['auc']:.4f}); {faster} is faster "
            f"({d['invoke_p50_ms_50x500']} vs {f['invoke_p50_ms_50x500']} ms per 50 x 500 call)"
        )
    better = "dynamic" if d["auc"] > f["auc"] else "full"
    return better, f"higher on-device AUC (dynamic {d['auc']:.4f}, full {f['auc']:.4f})"
