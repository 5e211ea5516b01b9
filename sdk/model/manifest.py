"""The bundle manifest (DESIGN.md section 3): parsed, checked *and* written here only.

The device reads it (:meth:`Manifest.parse`, one strict parser for a bundle folder, an
installed model and an update download alike) and the trainer writes it
(:meth:`Manifest.build` then :meth:`Manifest.to_json`), so the two sides cannot disagree
on a key. The schema, version 1::

    {"schema_version": 1, "model_version": N, "created": "2026-12-02T08:00:00Z",
     "feature_spec": {...FeatureSpec.to_dict()...},
     "history_len": L, "vector_dim": D,
     "signatures": {"rank":  {"inputs": {"history": T, "candidates": T}, "outputs": {"scores": T}},
                    "items": {"inputs": {"features": T}, "outputs": {"vectors": T}},
                    "user":  {"inputs": {"history": T}, "outputs": {"vector": T}}},
     "quantization": {"mode": "dynamic", ...}, "model": {"file": "model.tflite",
     "bytes": n, "sha256": hex}, "golden": [{"history", "candidates", "scores",
     "tolerance"}, ...], "metrics": {...}, "cold_start_prior": {...},
     "feed_head": {"model": a, "vector": b, "vector_mean": c, "prior": d, "prior_mean": e}}

``feed_head`` is present exactly when the spec declares feed signals
(:class:`~edgerec.features.signals.FeedSignals`): the score of a candidate is then
``a * model + b * (cos - c) + d * (prior - e)``, where ``model`` is the LiteRT score of the
hashed features, ``cos`` the cosine of the candidate's feed vector with the mean of the
reader's, ``prior`` its click prior; a missing signal contributes 0 (its mean), so a feed
without signals is ranked by the model alone.

where ``T`` is ``{"dtype": "int32" | "float32", "shape": [...]}`` (-1: resized at run time).

Example:
    >>> Manifest.parse(b'{"schema_version": 1, "schema_version": 1}')
    Traceback (most recent call last):
    ...
    edgerec.errors.ManifestFormatError: manifest: duplicate key 'schema_version'
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._json import StrictJSONError, loads_strict
from ..errors import IncompatibleModelError, ManifestFormatError, SpecError
from ..features import FeatureSpec

__all__ = [
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "MAX_MODEL_BYTES",
    "MODEL_FILE",
    "SCHEMA_VERSION",
    "SIGNATURES",
    "FeedHead",
    "Manifest",
]

SCHEMA_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
MODEL_FILE: Final = "model.tflite"  # the only model file name a manifest may name
MAX_MANIFEST_BYTES: Final = 4 << 20
MAX_MODEL_BYTES: Final = 64 << 20

# The signatures every bundle of this schema exports: name -> (inputs, outputs).
SIGNATURES: Final = {
    "rank": (("history", "candidates"), ("scores",)),
    "items": (("features",), ("vectors",)),
    "user": (("history",), ("vector",)),
}


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ManifestFormatError(f"manifest: {where}{key} is missing")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestFormatError(f"manifest: {where}{key} has the wrong type")
    return value


MAX_HEAD_WEIGHT: Final = 1e3
MIN_MODEL_WEIGHT: Final = 1e-6  # the model's own order must survive a feed without signals


@dataclass(frozen=True)
class FeedHead:
    """How a model that reads feed signals combines them with its LiteRT score (above)."""

    model: float  # > 0: the hashed model's score keeps its order when signals are missing
    vector: float
    vector_mean: float
    prior: float
    prior_mean: float

    @classmethod
    def from_dict(cls, data: object) -> FeedHead:
        """Raises: ManifestFormatError: not five finite numbers (model > 0, weights >= 0)."""
        keys = ("model", "vector", "vector_mean", "prior", "prior_mean")
        if not isinstance(data, dict) or sorted(data) != sorted(keys):
            raise ManifestFormatError(f"manifest: feed_head must hold exactly {list(keys)}")
        values = {}
        for key in keys:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ManifestFormatError(f"manifest: feed_head.{key} has the wrong type")
            if not abs(value) <= MAX_HEAD_WEIGHT:  # NaN fails too
                raise ManifestFormatError(f"manifest: feed_head.{key} is out of range")
            values[key] = float(value)
        if values["model"] < MIN_MODEL_WEIGHT or values["vector"] < 0 or values["prior"] < 0:
            raise ManifestFormatError(
                f"manifest: feed_head needs model >= {MIN_MODEL_WEIGHT:g}, weights >= 0"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        return {
            "model": self.model,
            "vector": self.vector,
            "vector_mean": self.vector_mean,
            "prior": self.prior,
            "prior_mean": self.prior_mean,
        }


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
    feed_head: FeedHead | None = None  # exactly when spec.signals

    # ----------------------------------------------------------------- reading
    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse a manifest file's bytes: strict JSON, then the schema.

        Raises:
            ManifestFormatError: too large, not strict JSON (duplicate keys, NaN, numbers
                that overflow, nesting deeper than 32, not UTF-8), or not the schema.
            IncompatibleModelError: a schema version or FeatureSpec this SDK cannot use.
        """
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestFormatError(f"manifest: larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            doc = loads_strict(data)
        except StrictJSONError as exc:
            raise ManifestFormatError(f"manifest: {exc}") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Check a manifest's JSON object (already parsed strictly).

        Raises:
            ManifestFormatError: not the schema (a key missing or of the wrong type, a
                model file name other than ``model.tflite``).
            IncompatibleModelError: a schema version or FeatureSpec this SDK cannot use.
        """
        if not isinstance(data, dict):
            raise ManifestFormatError("manifest: not a JSON object")
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
        if model.get("file", MODEL_FILE) != MODEL_FILE:  # never a path: no "/", "..", "/abs"
            raise ManifestFormatError(f"manifest: model.file must be {MODEL_FILE!r}")
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
            raise ManifestFormatError(
                "manifest: model_version, history_len, vector_dim must be >= 1"
            )
        size = _need(model, "bytes", int, "model.")
        if not 0 < size <= MAX_MODEL_BYTES:
            raise ManifestFormatError(f"manifest: model.bytes must be in [1, {MAX_MODEL_BYTES}]")
        sha = _need(model, "sha256", str, "model.")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ManifestFormatError("manifest: model.sha256 is not a lowercase hex sha256")
        if (spec.signals is None) != ("feed_head" not in data):
            raise ManifestFormatError(
                "manifest: feed_head must be present exactly when the spec declares signals"
            )
        head = FeedHead.from_dict(data["feed_head"]) if "feed_head" in data else None
        signals = spec.signals
        unread = (
            head is not None
            and signals is not None
            and ((head.vector and not signals.vector_dim) or (head.prior and not signals.prior))
        )
        if unread:
            raise ManifestFormatError("manifest: feed_head weighs a signal the spec lacks")
        golden = _need(data, "golden", list, "")
        if not golden or not all(isinstance(g, dict) for g in golden):
            raise ManifestFormatError("manifest: golden must list at least one case")
        return cls(
            model_version=version,
            created=_need(data, "created", str, ""),
            spec=spec,
            history_len=history_len,
            vector_dim=vector_dim,
            signatures=signatures,
            quantization=_need(data, "quantization", dict, ""),
            model_bytes=size,
            model_sha256=sha,
            golden=golden,
            metrics=_need(data, "metrics", dict, ""),
            cold_start_prior=_need(data, "cold_start_prior", dict, ""),
            raw=data,
            feed_head=head,
        )

    # ----------------------------------------------------------------- writing
    @classmethod
    def build(
        cls,
        *,
        model: bytes,
        spec: FeatureSpec,
        history_len: int,
        vector_dim: int,
        model_version: int,
        quantization: Mapping[str, Any],
        golden: Sequence[Mapping[str, Any]],
        metrics: Mapping[str, Any],
        cold_start_prior: Mapping[str, Any],
        created: str | None = None,
        feed_head: FeedHead | None = None,
    ) -> Manifest:
        """The manifest of ``model`` (what the trainer writes), checked as a device would.

        Raises:
            ManifestFormatError, IncompatibleModelError: the result is not a manifest this
                SDK accepts (a bad version or size, no golden case, NaN in a metric).
        """
        width = spec.width

        def tensor(shape: list[int], dtype: str) -> dict[str, Any]:
            return {"dtype": dtype, "shape": shape}  # -1: resized at run time

        doc = {
            "schema_version": SCHEMA_VERSION,
            "model_version": model_version,
            "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "feature_spec": spec.to_dict(),
            "history_len": history_len,
            "vector_dim": vector_dim,
            "signatures": {
                "rank": {
                    "inputs": {
                        "history": tensor([1, history_len, width], "int32"),
                        "candidates": tensor([1, -1, width], "int32"),
                    },
                    "outputs": {"scores": tensor([1, -1], "float32")},
                },
                "items": {
                    "inputs": {"features": tensor([-1, width], "int32")},
                    "outputs": {"vectors": tensor([-1, vector_dim], "float32")},
                },
                "user": {
                    "inputs": {"history": tensor([1, history_len, width], "int32")},
                    "outputs": {"vector": tensor([1, vector_dim], "float32")},
                },
            },
            "quantization": dict(quantization),
            "model": {
                "file": MODEL_FILE,
                "bytes": len(model),
                "sha256": hashlib.sha256(model).hexdigest(),
            },
            "golden": [dict(g) for g in golden],
            "metrics": dict(metrics),
            "cold_start_prior": dict(cold_start_prior),
        }
        if feed_head is not None:
            doc["feed_head"] = feed_head.to_dict()
        # Through the device's own parser: what the trainer writes, a device reads.
        return cls.parse(_dumps(doc))

    def to_json(self) -> bytes:
        """The manifest file's bytes (strict JSON: no NaN, one key each)."""
        return _dumps(self.raw)


def _dumps(doc: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)
    except ValueError:
        raise ManifestFormatError("manifest: a number is NaN or infinite") from None
    return (text + "\n").encode("utf-8")
