"""Model bundles: ``model.tflite`` + ``manifest.json`` (DESIGN.md section 3), loaded,
checked and run with the TFLite runtime, never TensorFlow.

A bundle is trusted only after :meth:`Bundle.load` has checked the manifest against the
schema and the model's bytes against the manifest's length and sha256; :class:`Ranker`
then runs it. Update-channel signatures (TUF) are checked before a bundle reaches a device
folder; this module checks what is on disk.

Example:
    >>> import pathlib
    >>> fixture = pathlib.Path(__file__).parent / "_nothing_here"
    >>> Bundle.load(fixture)
    Traceback (most recent call last):
    ...
    edgerec.errors.BundleError: no manifest.json in the bundle folder _nothing_here
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .errors import BundleError, IncompatibleModelError, ModelLoadError, SpecError
from .features import FeatureSpec
from .runtime import make_interpreter

__all__ = ["MANIFEST_FILE", "MODEL_FILE", "SCHEMA_VERSION", "Bundle", "Manifest", "Ranker"]

SCHEMA_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
MODEL_FILE: Final = "model.tflite"
MAX_MANIFEST_BYTES: Final = 4 << 20
MAX_MODEL_BYTES: Final = 64 << 20

# The signatures every bundle of this schema exports: name -> (inputs, outputs).
SIGNATURES: Final = {
    "rank": (("history", "candidates"), ("scores",)),
    "items": (("features",), ("vectors",)),
    "user": (("history",), ("vector",)),
}

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise BundleError(f"manifest: {where}{key} is missing")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"manifest: {where}{key} has the wrong type")
    return value


@dataclass(frozen=True)
class Manifest:
    """The parsed, checked ``manifest.json``."""

    model_version: int
    created: str
    spec: FeatureSpec
    history_len: int
    vector_dim: int
    signatures: dict[str, Any]
    quantization: dict[str, Any]
    model_bytes: int
    model_sha256: str
    golden: list[dict[str, Any]]
    metrics: dict[str, Any]
    cold_start_prior: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Check a manifest's JSON object.

        Raises:
            BundleError: not the schema (a key missing or of the wrong type).
            IncompatibleModelError: a schema version or FeatureSpec this SDK cannot use.
        """
        if not isinstance(data, dict):
            raise BundleError("manifest: not a JSON object")
        schema = _need(data, "schema_version", int, "")
        if schema != SCHEMA_VERSION:
            raise IncompatibleModelError(
                f"manifest schema {schema}; this SDK reads schema {SCHEMA_VERSION}"
            )
        try:
            spec = FeatureSpec.from_dict(_need(data, "feature_spec", dict, ""))
        except SpecError as exc:
            raise IncompatibleModelError(f"manifest: feature_spec: {exc}") from None
        model = _need(data, "model", dict, "")
        signatures = _need(data, "signatures", dict, "")
        for name, (inputs, outputs) in SIGNATURES.items():
            sig = _need(signatures, name, dict, "signatures.")
            for part, names in (("inputs", inputs), ("outputs", outputs)):
                got = _need(sig, part, dict, f"signatures.{name}.")
                if sorted(got) != sorted(names):
                    raise IncompatibleModelError(
                        f"manifest: signature {name} {part} are {sorted(got)}, "
                        f"expected {sorted(names)}"
                    )
        history_len = _need(data, "history_len", int, "")
        vector_dim = _need(data, "vector_dim", int, "")
        version = _need(data, "model_version", int, "")
        if version < 1 or history_len < 1 or vector_dim < 1:
            raise BundleError("manifest: model_version, history_len, vector_dim must be >= 1")
        sha = _need(model, "sha256", str, "model.")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BundleError("manifest: model.sha256 is not a lowercase hex sha256")
        golden = _need(data, "golden", list, "")
        if not golden or not all(isinstance(g, dict) for g in golden):
            raise BundleError("manifest: golden must list at least one case")
        return cls(
            model_version=version,
            created=_need(data, "created", str, ""),
            spec=spec,
            history_len=history_len,
            vector_dim=vector_dim,
            signatures=signatures,
            quantization=_need(data, "quantization", dict, ""),
            model_bytes=_need(model, "bytes", int, "model."),
            model_sha256=sha,
            golden=golden,
            metrics=_need(data, "metrics", dict, ""),
            cold_start_prior=_need(data, "cold_start_prior", dict, ""),
            raw=data,
        )


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: its manifest and the model bytes that match it."""

    path: Path
    manifest: Manifest
    model: bytes

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        """Read and check a bundle folder.

        Raises:
            BundleError: a file is missing or too large, the manifest is not JSON or not the
                schema, or the model's length or sha256 differ from the manifest's.
            IncompatibleModelError: see :meth:`Manifest.from_dict`.
        """
        folder = Path(path)
        manifest_path = folder / MANIFEST_FILE
        model_path = folder / MODEL_FILE
        if not manifest_path.is_file():
            raise BundleError(f"no {MANIFEST_FILE} in the bundle folder {folder.name}")
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            data = json.loads(manifest_path.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"{MANIFEST_FILE} is not valid JSON ({exc})") from None
        manifest = Manifest.from_dict(data)
        if not model_path.is_file():
            raise BundleError(f"no {MODEL_FILE} in the bundle folder {folder.name}")
        size = model_path.stat().st_size
        if size != manifest.model_bytes or size > MAX_MODEL_BYTES:
            raise BundleError(
                f"{MODEL_FILE} is {size} bytes, the manifest says {manifest.model_bytes}"
            )
        model = model_path.read_bytes()
        if hashlib.sha256(model).hexdigest() != manifest.model_sha256:
            raise BundleError(f"{MODEL_FILE} does not match the manifest's sha256")
        return cls(folder, manifest, model)


class Ranker:
    """Runs a bundle's three signatures on hashed feature rows.

    One interpreter per ranker, built once; the candidate count is resized per call.
    Not thread-safe: one ranker per thread, or a lock around it.
    """

    def __init__(self, bundle: Bundle, *, num_threads: int = 1) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.interpreter = make_interpreter(bundle.model, num_threads=num_threads)
        try:
            listed = self.interpreter.get_signature_list()
            missing = [name for name in SIGNATURES if name not in listed]
            if missing:
                raise IncompatibleModelError(f"the model lacks the signature(s) {missing}")
            self._runners = {
                name: self.interpreter.get_signature_runner(name) for name in SIGNATURES
            }
        except IncompatibleModelError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"the model's signatures cannot be read: {exc}") from None

    def pad_history(self, rows: IntArray) -> IntArray:
        """The last ``history_len`` rows, left-padded with zero rows: (1, L, F)."""
        length, width = self.manifest.history_len, self.manifest.spec.width
        rows = np.asarray(rows, dtype=np.int32).reshape(-1, width)[-length:]
        out = np.zeros((1, length, width), dtype=np.int32)
        if len(rows):
            out[0, length - len(rows) :] = rows
        return out

    def rank(self, history: IntArray, candidates: IntArray) -> FloatArray:
        """Scores (N,) of ``candidates`` (N, F) for ``history`` (H, F), oldest first."""
        cands = np.ascontiguousarray(candidates, dtype=np.int32)[None]  # (1, N, F)
        out = self._runners["rank"](history=self.pad_history(history), candidates=cands)
        return np.asarray(out["scores"][0], dtype=np.float32)

    def item_vectors(self, rows: IntArray) -> FloatArray:
        """(N, F) hashed rows -> (N, D) item vectors."""
        features = np.ascontiguousarray(rows, dtype=np.int32)
        return np.asarray(self._runners["items"](features=features)["vectors"], np.float32)

    def user_vector(self, history: IntArray) -> FloatArray:
        """(H, F) history rows -> (D,) user vector."""
        out = self._runners["user"](history=self.pad_history(history))
        return np.asarray(out["vector"][0], dtype=np.float32)

    def check_golden(self) -> float:
        """Run the manifest's golden inputs; the largest absolute difference seen.

        Raises:
            ModelLoadError: an output is not finite or differs beyond the tolerance.
        """
        worst = 0.0
        for i, case in enumerate(self.manifest.golden):
            try:
                history = np.array(case["history"], dtype=np.int32)
                candidates = np.array(case["candidates"], dtype=np.int32)
                expected = np.array(case["scores"], dtype=np.float32)
                tolerance = float(case["tolerance"])
            except (KeyError, TypeError, ValueError):
                raise BundleError(f"manifest: golden case {i} is malformed") from None
            got = self.rank(history, candidates)
            if got.shape != expected.shape or not np.isfinite(got).all():
                raise ModelLoadError(f"golden case {i}: wrong shape or non-finite scores")
            diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
            if not math.isfinite(diff) or diff > tolerance:
                raise ModelLoadError(
                    f"golden case {i}: scores differ by {diff:.3g} (tolerance {tolerance:.3g})"
                )
            worst = max(worst, diff)
        return worst
