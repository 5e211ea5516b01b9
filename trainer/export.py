"""From a trained student to the bundle a device installs (DESIGN.md section 3).

1. :func:`convert`: the student as a TFLite flatbuffer, float, dynamic-range int8 or
   full-integer int8 (calibrated on :func:`representative` training pairs). Three
   signatures, all with hashed feature rows as int32 inputs:

   * ``rank``: ``history`` (1, L, F), ``candidates`` (1, N, F) -> ``scores`` (1, N); N is
     resized at run time;
   * ``items``: ``features`` (N, F) -> ``vectors`` (N, D), for caching candidate vectors;
   * ``user``: ``history`` (1, L, F) -> ``vector`` (1, D), for "because you read" reasons.

2. :func:`choose_quantization`: which int8 variant ships, from their on-device
   measurements (:mod:`edgerec.trainer.evaluation.on_device`).
3. :func:`make_bundle`: ``model.tflite`` + ``manifest.json`` written through the SDK
   (:meth:`edgerec.model.Manifest.build`, :func:`edgerec.model.write_bundle`), with golden
   outputs computed by the model itself through the device's runtime and checked on the
   written bundle; the manifest carries the metrics and the :func:`cold_start_prior`.
4. :func:`save_student` / :func:`load_student`: what ``edgerec-train export``
   (:func:`reexport`) needs to rebuild a bundle from a pipeline run without retraining.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from edgerec import FeatureSpec
from edgerec.errors import EdgerecError
from edgerec.features.signals import FeedSignals
from edgerec.model import Bundle, Manifest, ModelRunner
from edgerec.model import write_bundle as write_bundle_folder
from edgerec.model.manifest import FeedHead

from .config import StudentConfig
from .data.mind import Impression
from .data.training_examples import TrainingSet
from .errors import ExportError
from .evaluation.on_device import feature_rows
from .models.feed_signals import FEED_FOLDER, FeedModel
from .models.student import Student
from .progress import log

__all__ = [
    "QUANTIZATIONS",
    "choose_quantization",
    "cold_start_prior",
    "convert",
    "golden_inputs",
    "load_student",
    "make_bundle",
    "reexport",
    "representative",
    "save_student",
    "write_bundle",
]

QUANTIZATIONS = ("float", "dynamic", "full")
IntArray = npt.NDArray[np.int32]
Pair = tuple[IntArray, IntArray]  # history (1, L, F) or (L, F), candidates (1, N, F) or (N, F)


class _Signatures(tf.Module):  # type: ignore[misc]
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student
        length, width = student.cfg.history_len, student.spec.width
        history = tf.TensorSpec([1, length, width], tf.int32, name="history")
        candidates = tf.TensorSpec([1, None, width], tf.int32, "candidates")
        p = student.cfg.feed_vector_dim
        if p:  # the feed-vector variant: measured, not shipped (manifest schema 1 has no vectors)
            self.rank = tf.function(
                self._rank_with_vectors,
                input_signature=[
                    history,
                    tf.TensorSpec([1, length, p], tf.float32, "history_vectors"),
                    candidates,
                    tf.TensorSpec([1, None, p], tf.float32, "candidate_vectors"),
                ],
            )
            return
        self.rank = tf.function(self._rank, input_signature=[history, candidates])
        self.items = tf.function(
            self._items, input_signature=[tf.TensorSpec([None, width], tf.int32, "features")]
        )
        self.user = tf.function(self._user, input_signature=[history])

    def _rank(self, history: tf.Tensor, candidates: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": self.student({"history": history, "candidates": candidates})}

    def _rank_with_vectors(
        self,
        history: tf.Tensor,
        history_vectors: tf.Tensor,
        candidates: tf.Tensor,
        candidate_vectors: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        inputs = {
            "history": history,
            "history_vectors": history_vectors,
            "candidates": candidates,
            "candidate_vectors": candidate_vectors,
        }
        return {"scores": self.student(inputs)}

    def _items(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"vectors": self.student.item_vectors(features)}

    def _user(self, history: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"vector": self.student.user_vector(history)}


def convert(
    student: Student,
    quantization: str,
    representative: Iterator[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] | None = None,
) -> bytes:
    """The student as a TFLite flatbuffer.

    ``float``: no quantization. ``dynamic``: int8 weights, float activations.
    ``full``: int8 weights and activations, calibrated on ``representative`` (history,
    candidates) pairs from real training data; int32 id inputs and float outputs stay.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    module = _Signatures(student)
    with tempfile.TemporaryDirectory(prefix="edgerec-export-") as tmp:
        signatures = {"rank": module.rank}
        if not student.cfg.feed_vector_dim:
            signatures.update(items=module.items, user=module.user)
        tf.saved_model.save(module, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(signatures))
        if quantization != "float":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "full":
            if representative is None:
                raise ValueError("full-integer quantization needs representative data")
            pairs = list(representative)

            def samples() -> Iterator[tuple[str, dict[str, npt.NDArray[np.int32]]]]:
                for history, candidates in pairs:  # (1, L, F), (1, N, F)
                    yield "rank", {"history": history, "candidates": candidates}
                    yield "user", {"history": history}
                    yield "items", {"features": candidates[0]}

            converter.representative_dataset = samples
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return bytes(converter.convert())


def write_bundle(
    out_dir: Path,
    model: bytes,
    *,
    student: Student,
    model_version: int,
    quantization: Mapping[str, Any],
    golden: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    cold_start_prior: Mapping[str, Any],
    feed: tuple[FeedSignals, FeedHead] | None = None,
) -> Bundle:
    """Write ``model.tflite`` and ``manifest.json`` through the SDK's own code: the
    manifest built and checked by :meth:`edgerec.model.Manifest.build` (the parser a
    device runs), both files written atomically by :func:`edgerec.model.write_bundle`
    (the manifest last), and the folder loaded back through :meth:`Bundle.load`. With
    ``feed``, the spec declares the feed signals and the manifest carries the head."""
    manifest = Manifest.build(
        model=model,
        spec=student.spec if feed is None else replace(student.spec, signals=feed[0]),
        history_len=student.cfg.history_len,
        vector_dim=student.cfg.dim,
        model_version=model_version,
        quantization=quantization,
        golden=golden,
        metrics=metrics,
        cold_start_prior=cold_start_prior,
        feed_head=None if feed is None else feed[1],
    )
    return write_bundle_folder(out_dir, model, manifest)


def representative(inputs: TrainingSet, n: int, seed: int) -> list[Pair]:
    """``n`` real training (history, candidates) pairs as feature rows, for calibration."""
    drawn = inputs.examples.sample(n, inputs.history_len, inputs.negatives, seed)
    features = inputs.features  # (A, F)
    return [
        (features[h][None], features[c][None])  # (1, L, F), (1, C, F)
        for h, c in zip(drawn.history, drawn.candidates, strict=True)
    ]


def golden_inputs(
    evaluation: Sequence[Impression],
    articles: dict[str, dict[str, Any]],
    spec: FeatureSpec,
    history_len: int,
) -> list[Pair]:
    """The golden cases of the manifest: the first two evaluation impressions as a device
    featurizes them, (L, F) history rows and the first 8 candidates' (N, F) rows."""
    pairs = []
    for imp in list(evaluation)[:2]:
        history = feature_rows(articles, imp.history, spec)[-history_len:]  # (<= L, F)
        pairs.append((history, feature_rows(articles, imp.candidates[:8], spec)))
    return pairs


def choose_quantization(variants: dict[str, dict[str, Any]], wanted: str) -> tuple[str, str]:
    """The int8 variant to ship and why: as configured, or (auto) the better on quality x
    latency: the higher validation AUC (each variant's ``validation_auc``: the validation
    impressions of held-out users, never the evaluation file; the on-device ``auc`` only
    when a variant lacks it) unless within 0.002, then the faster.

    Raises:
        ExportError: no int8 variant converted.
    """
    ok = {q: v for q, v in variants.items() if q in ("dynamic", "full") and "error" not in v}
    if not ok:
        raise ExportError(
            "no int8 variant converted: " + str({q: v.get("error") for q, v in variants.items()})
        )
    if wanted in ok:
        return wanted, f"configured (student.quantization={wanted})"
    if len(ok) == 1:
        (only,) = ok
        return only, f"the only int8 variant that converted ({variants})"
    d, f = ok["dynamic"], ok["full"]
    key = "validation_auc" if "validation_auc" in d and "validation_auc" in f else "auc"
    what = "validation AUC" if key == "validation_auc" else "on-device AUC"
    if abs(d[key] - f[key]) < 0.002:
        faster = "dynamic" if d["invoke_p50_ms_50x500"] <= f["invoke_p50_ms_50x500"] else "full"
        return faster, (
            f"{what} within 0.002 (dynamic {d[key]:.4f}, full {f[key]:.4f}); {faster} is faster "
            f"({d['invoke_p50_ms_50x500']} vs {f['invoke_p50_ms_50x500']} ms per 50 x 500 call)"
        )
    better = "dynamic" if d[key] > f[key] else "full"
    return better, f"higher {what} (dynamic {d[key]:.4f}, full {f[key]:.4f})"


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


def make_bundle(
    out_dir: Path,
    student: Student,
    model: bytes,
    *,
    model_version: int,
    quantization: dict[str, Any],
    golden_inputs: Sequence[Pair],
    metrics: dict[str, Any],
    cold_start_prior: dict[str, Any],
    feed: tuple[FeedSignals, FeedHead] | None = None,
) -> Bundle:
    """Write the bundle with golden outputs computed by the model itself through the
    runtime the device uses, then load it back and check those goldens.

    Raises:
        edgerec.errors.BundleError: the written bundle does not check (e.g. a golden
            output the model itself does not reproduce).
    """
    placeholder = [{"history": [], "candidates": [], "scores": [], "tolerance": 1.0}]
    scratch = write_bundle(  # a loadable bundle, only to run the model as a device would
        out_dir / ".golden",
        model,
        student=student,
        model_version=model_version,
        quantization=quantization,
        golden=placeholder,
        metrics=metrics,
        cold_start_prior=cold_start_prior,
    )
    runner = ModelRunner(scratch)
    golden = [
        {
            "history": history.tolist(),
            "candidates": candidates.tolist(),
            "scores": [round(float(x), 6) for x in runner.rank(history, candidates)],
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
        feed=feed,
    )
    ModelRunner(bundle).check_golden()
    return bundle


def save_student(
    folder: Path,
    student: Student,
    *,
    seed: int,
    representative: Sequence[Pair],
    golden_inputs: Sequence[Pair],
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
        ExportError: a file is there but not what :func:`save_student` writes.
    """
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        missing = {"student", "spec", "metrics", "cold_start_prior"} - set(config)
        if missing:
            raise KeyError(", ".join(sorted(missing)))
        spec = FeatureSpec.from_dict(config["spec"])
        cfg = StudentConfig(**config["student"])
        with np.load(folder / "inputs.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise ExportError(f"the saved student in {folder} is unusable ({exc})") from None
    student = Student(spec, cfg)
    dummy = np.zeros((1, cfg.history_len, spec.width), np.int32)  # (1, L, F)
    student({"history": dummy, "candidates": dummy[:, :1]})  # create the variables
    student.load_weights(str(folder / "student.weights.h5"))
    return student, config, arrays


def _saved_feed(run_dir: Path) -> FeedModel | None:
    """The run's feed model (``RUN/feed``), or None when it has none."""
    if not (run_dir / FEED_FOLDER / "feed_model.json").is_file():
        return None
    try:
        return FeedModel.load(run_dir / FEED_FOLDER)
    except (OSError, ValueError, KeyError, TypeError, EdgerecError) as exc:
        raise ExportError(f"{run_dir / FEED_FOLDER}: unreadable feed model ({exc})") from None


def reexport(run_dir: Path, *, out: Path | None, quantization: str, version: int) -> Bundle:
    """``edgerec-train export``: the student a pipeline run saved (``RUN/student``) as a new
    bundle (default ``RUN/bundle``); ``version`` 0 means the current unix time.

    Raises:
        ExportError: no saved student there, an unusable one, or ``full`` without saved
            calibration inputs.
    """
    folder = run_dir / "student"
    if not (folder / "config.json").is_file():
        raise ExportError(f"no saved student in {folder} (run `edgerec-train pipeline` first)")
    student, config, arrays = load_student(folder)
    calibration = None
    if "rep_history" in arrays:
        calibration = list(
            zip(
                np.split(arrays["rep_history"], len(arrays["rep_history"])),
                np.split(arrays["rep_candidates"], len(arrays["rep_candidates"])),
                strict=True,
            )
        )  # [((1, L, F), (1, C, F)), ...]
    if quantization == "full" and not calibration:
        raise ExportError("full-integer quantization needs the saved calibration inputs")
    golden = [
        (arrays[f"golden_history_{i}"], arrays[f"golden_candidates_{i}"])
        for i in range(len(arrays))
        if f"golden_history_{i}" in arrays
    ]
    log(f"converting {folder} ({quantization} int8)")
    model = convert(student, quantization, iter(calibration or []))
    target = out or run_dir / "bundle"
    feed, metrics = _saved_feed(run_dir), config["metrics"]
    if feed is not None and feed.head is not None:
        log("keeping the run's feed signals and head (RUN/feed)")
        if feed.quantization == quantization:  # measured on this very variant
            metrics = {**metrics, **(feed.metrics or {})}
    bundle = make_bundle(
        target,
        student,
        model,
        model_version=version or int(time.time()),
        quantization={"mode": quantization, "why": "chosen on the command line"},
        golden_inputs=golden,
        metrics=metrics,
        cold_start_prior=config["cold_start_prior"],
        feed=None if feed is None or feed.head is None else (feed.signals(), feed.head),
    )
    log(
        f"wrote {target} (model {len(bundle.model):,} bytes, version "
        f"{bundle.manifest.model_version}); metrics are the pipeline's measurement of "
        "its own shipped variant"
    )
    return bundle
