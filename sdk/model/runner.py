"""Running a bundle's model: :class:`ModelRunner` over its three signatures.

* ``rank``: ``history`` (1, L, F) and ``candidates`` (1, N, F) -> ``scores`` (1, N);
* ``items``: ``features`` (N, F) -> ``vectors`` (N, D): an article's vector, cached per feed;
* ``user``: ``history`` (1, L, F) -> ``vector`` (1, D): the reader's vector, once per read.

``score == items . user`` (pinned by the bundle tests), which is why the ranking never runs
``rank`` per call. Histories are oldest first and left-padded with zero rows to L
(:func:`pad_history`), the layout the student was trained on: the LSTM's last step is the
newest read.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import (
    IncompatibleModelError,
    ManifestFormatError,
    ModelFormatError,
    ModelValidationError,
)
from .bundle import Bundle
from .manifest import SIGNATURES
from .runtime import make_interpreter

__all__ = ["ModelRunner", "pad_history"]

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


def pad_history(items: npt.ArrayLike, length: int) -> IntArray:
    """The last ``length`` items along the first axis, left-padded with zeros (int32).

    Works for a list of article indices (H,) -> (L,) as the trainer keeps them, and for
    hashed feature rows (H, F) -> (L, F) as the device keeps them.

    Example:
        >>> pad_history([7, 8, 9], 5).tolist()
        [0, 0, 7, 8, 9]
    """
    arr = np.asarray(items, dtype=np.int32)
    tail = arr[-length:] if len(arr) else arr
    out = np.zeros((length, *arr.shape[1:]), dtype=np.int32)
    if len(tail):
        out[length - len(tail) :] = tail
    return out


class ModelRunner:
    """Runs a bundle's signatures on hashed feature rows.

    One interpreter per runner, built once; the candidate count is resized per call.
    Not thread-safe: one runner per thread, or a lock around it (the Recommender's).

    Example:
        >>> runner = ModelRunner(Bundle.load("tests/fixtures/tiny_bundle"))  # doctest: +SKIP
        >>> runner.user_vector(history_rows).shape  # doctest: +SKIP
        (16,)
    """

    def __init__(self, bundle: Bundle, *, num_threads: int = 1) -> None:
        """Raises:
        RuntimeUnavailableError: no TFLite runtime.
        ModelFormatError: the runtime refuses the model or its signatures.
        IncompatibleModelError: a signature the manifest promises is missing.
        """
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.interpreter = make_interpreter(bundle.model, num_threads=num_threads)
        try:
            listed = self.interpreter.get_signature_list()
            missing = [name for name in SIGNATURES if name not in listed]
            if missing:
                raise IncompatibleModelError(f"the model lacks the signature(s) {missing}")
            self._runners: dict[str, Any] = {
                name: self.interpreter.get_signature_runner(name) for name in SIGNATURES
            }
        except IncompatibleModelError:
            raise
        except Exception as exc:
            raise ModelFormatError(f"the model's signatures cannot be read: {exc}") from None

    def history_input(self, rows: IntArray) -> IntArray:
        """(H, F) rows, oldest first -> the (1, L, F) input of ``rank`` and ``user``."""
        width = self.manifest.spec.width
        rows = np.asarray(rows, dtype=np.int32).reshape(-1, width)
        return pad_history(rows, self.manifest.history_len)[None]  # (1, L, F)

    def rank(self, history: IntArray, candidates: IntArray) -> FloatArray:
        """Scores (N,) of ``candidates`` (N, F) for ``history`` (H, F), oldest first."""
        cands = np.ascontiguousarray(candidates, dtype=np.int32)[None]  # (1, N, F)
        out = self._runners["rank"](history=self.history_input(history), candidates=cands)
        return np.asarray(out["scores"][0], dtype=np.float32)

    def item_vectors(self, rows: IntArray) -> FloatArray:
        """(N, F) hashed rows -> (N, D) item vectors."""
        features = np.ascontiguousarray(rows, dtype=np.int32)
        return np.asarray(self._runners["items"](features=features)["vectors"], np.float32)

    def user_vector(self, history: IntArray) -> FloatArray:
        """(H, F) history rows -> (D,) user vector."""
        out = self._runners["user"](history=self.history_input(history))
        return np.asarray(out["vector"][0], dtype=np.float32)

    def check_golden(self) -> float:
        """Run the manifest's golden inputs; the largest absolute difference seen.

        Raises:
            ManifestFormatError: a golden case is malformed.
            ModelValidationError: an output is not finite or differs beyond the tolerance.
        """
        worst = 0.0
        for i, case in enumerate(self.manifest.golden):
            try:
                history = np.array(case["history"], dtype=np.int32)
                candidates = np.array(case["candidates"], dtype=np.int32)
                expected = np.array(case["scores"], dtype=np.float32)
                tolerance = float(case["tolerance"])
            except (KeyError, TypeError, ValueError, OverflowError):
                raise ManifestFormatError(f"manifest: golden case {i} is malformed") from None
            got = self.rank(history, candidates)
            if got.shape != expected.shape or not np.isfinite(got).all():
                raise ModelValidationError(f"golden case {i}: wrong shape or non-finite scores")
            diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
            if not math.isfinite(diff) or diff > tolerance:
                raise ModelValidationError(
                    f"golden case {i}: scores differ by {diff:.3g} (tolerance {tolerance:.3g})"
                )
            worst = max(worst, diff)
        return worst
