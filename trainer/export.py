"""Export a student to TFLite (float, dynamic-range int8, full-integer int8) and write
the model bundle (DESIGN.md section 3): ``model.tflite`` + ``manifest.json``.

Three signatures, all with hashed feature rows as int32 inputs:

* ``rank``: ``history`` (1, L, F), ``candidates`` (1, N, F) -> ``scores`` (1, N); N is
  resized at run time;
* ``items``: ``features`` (N, F) -> ``vectors`` (N, D), for caching candidate vectors;
* ``user``: ``history`` (1, L, F) -> ``vector`` (1, D), for "because you read" reasons.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from edgerec.model import Bundle, Manifest
from edgerec.model import write_bundle as write_bundle_folder

from .models.student import Student

__all__ = ["QUANTIZATIONS", "convert", "write_bundle"]

QUANTIZATIONS = ("float", "dynamic", "full")


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
) -> Bundle:
    """Write ``model.tflite`` and ``manifest.json`` through the SDK's own code: the
    manifest built and checked by :meth:`edgerec.model.Manifest.build` (the parser a
    device runs), both files written atomically by :func:`edgerec.model.write_bundle`
    (the manifest last), and the folder loaded back through :meth:`Bundle.load`."""
    manifest = Manifest.build(
        model=model,
        spec=student.spec,
        history_len=student.cfg.history_len,
        vector_dim=student.cfg.dim,
        model_version=model_version,
        quantization=quantization,
        golden=golden,
        metrics=metrics,
        cold_start_prior=cold_start_prior,
    )
    return write_bundle_folder(out_dir, model, manifest)
