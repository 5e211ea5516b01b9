"""Feed signals: two optional inputs a publisher computes on its server and adds to each
article of a feed, beside the text fields that are hashed.

* ``vector``: the article's text vector from the trainer's encoder (the spec names it),
  as int8 codes in standard base64 (padded, ``dim`` bytes once decoded). Only its direction
  is used, so the publisher may scale each vector as it likes before rounding.
* ``prior``: the article's click prior, a log-odds number in ``[-MAX_PRIOR, MAX_PRIOR]``
  (what readers in general do with it, fitted on the server; nothing about one reader).

A :class:`~edgerec.FeatureSpec` declares which of them its model reads
(:class:`FeedSignals`, ``spec.signals``; ``None`` = none); the bundle's manifest says how
the score uses them (:class:`~edgerec.model.manifest.FeedHead`). Both are optional per
article: an article without them is ranked from its hashed features, and a present value
is checked like any field (:class:`~edgerec.InvalidTypeError` /
:class:`~edgerec.InvalidInputError`, naming the article, never holding the value).

Example:
    >>> signals = FeedSignals(vector_dim=4, encoder="demo", prior=True)
    >>> signals.vector({"vector": encode_vector([3, 0, -4, 0])}, "article").tolist()
    [0.6000000238418579, 0.0, -0.800000011920929, 0.0]
    >>> signals.prior_of({"prior": -2.5}, "article")
    -2.5
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, InvalidTypeError, SpecError
from .values import check_number

__all__ = [
    "MAX_PRIOR",
    "MAX_VECTOR_DIM",
    "VECTOR_TEXT_CHARS",
    "FeedSignals",
    "check_vector_text",
    "encode_vector",
    "history_vector",
]

MAX_VECTOR_DIM: Final = 2048  # bytes per vector (the ranker keeps one row per cached candidate)
MAX_PRIOR: Final = 100.0
VECTOR_TEXT_CHARS: Final = 4 * (-(-MAX_VECTOR_DIM // 3))  # base64 of MAX_VECTOR_DIM bytes
VECTOR_KEY: Final = "vector"
PRIOR_KEY: Final = "prior"
ENCODER_KEY: Final = "vector_encoder"  # the stamp a history event keeps beside its vector
_ENCODER_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

FloatArray = npt.NDArray[np.float32]


def encode_vector(values: Sequence[int] | npt.NDArray[np.int8]) -> str:
    """int8 codes -> the feed's base64 text (what a publisher writes)."""
    codes = np.asarray(values)
    if (
        codes.ndim != 1
        or not 0 < len(codes) <= MAX_VECTOR_DIM
        or codes.min(initial=0) < -128
        or codes.max(initial=0) > 127
    ):
        raise InvalidInputError(f"vector: expected 1..{MAX_VECTOR_DIM} int8 codes")
    return base64.b64encode(codes.astype(np.int8).tobytes()).decode("ascii")


def history_vector(value: object) -> str | None:
    """What the reading history keeps of an article's ``vector``: the text when it is a
    well-formed feed vector (any width), else None. The key was an ordinary article key
    before feed signals existed, so anything else under it is ignored, as unknown keys
    are, rather than refused."""
    try:
        check_vector_text("vector", value)
    except (InvalidTypeError, InvalidInputError):
        return None
    return value  # type: ignore[return-value]  # checked: a str


def check_vector_text(where: str, value: object, dim: int | None = None) -> npt.NDArray[np.int8]:
    """The int8 codes of a feed ``vector`` value (any length up to
    :data:`MAX_VECTOR_DIM` when ``dim`` is None).

    Raises:
        InvalidTypeError: not a str.
        InvalidInputError: not canonical base64 (padded, no stray padding bits), the wrong
            length, or all zeros (no direction).
    """
    if not isinstance(value, str):
        raise InvalidTypeError(f"{where}: expected base64 text, got {type(value).__name__}")
    if len(value) > VECTOR_TEXT_CHARS:
        raise InvalidInputError(f"{where}: longer than {MAX_VECTOR_DIM} bytes")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInputError(f"{where}: not base64 text") from None
    if base64.b64encode(raw).decode("ascii") != value:  # one text per vector, no slack
        raise InvalidInputError(f"{where}: not canonical base64 text")
    if not raw or (dim is not None and len(raw) != dim):
        want = f"{dim}" if dim is not None else f"1..{MAX_VECTOR_DIM}"
        raise InvalidInputError(f"{where}: {len(raw)} bytes, expected {want}")
    codes = np.frombuffer(raw, dtype=np.int8)
    if not codes.any():
        raise InvalidInputError(f"{where}: all zeros (a vector needs a direction)")
    return codes


@dataclass(frozen=True)
class FeedSignals:
    """Which feed signals a model reads: a ``vector_dim``-byte vector made by ``encoder``
    (0 = none) and/or the click ``prior``."""

    vector_dim: int = 0
    encoder: str = ""
    prior: bool = False

    def __post_init__(self) -> None:
        if type(self.vector_dim) is not int or not 0 <= self.vector_dim <= MAX_VECTOR_DIM:
            raise SpecError(f"signals.vector_dim must be an integer in [0, {MAX_VECTOR_DIM}]")
        if type(self.encoder) is not str:
            raise SpecError("signals.encoder must be a string")
        if self.vector_dim and not _ENCODER_RE.fullmatch(self.encoder):
            raise SpecError("signals.encoder must name the encoder of the vectors")
        if not self.vector_dim and self.encoder:
            raise SpecError("signals.encoder without signals.vector_dim")
        if type(self.prior) is not bool:
            raise SpecError("signals.prior must be true or false")
        if not self.vector_dim and not self.prior:
            raise SpecError("signals must declare a vector, a prior or both")

    @classmethod
    def from_dict(cls, data: object) -> FeedSignals:
        """Raises: SpecError: not the form :meth:`to_dict` writes."""
        if not isinstance(data, Mapping) or set(data) - {"vector_dim", "encoder", "prior"}:
            raise SpecError("spec 'signals' must be {vector_dim, encoder, prior}")
        return cls(
            vector_dim=data.get("vector_dim", 0),
            encoder=data.get("encoder", ""),
            prior=data.get("prior", False),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"vector_dim": self.vector_dim, "encoder": self.encoder, "prior": self.prior}

    # ----------------------------------------------------------------- reading
    def vector(self, article: Mapping[str, Any], where: str) -> FloatArray | None:
        """The article's vector at unit length (float32), or None when it has none (or
        this model reads no vector).

        Raises:
            InvalidTypeError, InvalidInputError: a vector is present but malformed.
        """
        codes = self.codes(article, where)
        if codes is None:
            return None
        unit = codes.astype(np.float32)
        return unit / np.float32(np.linalg.norm(unit))

    def codes(self, article: Mapping[str, Any], where: str) -> npt.NDArray[np.int8] | None:
        """The article's vector as int8 codes (not normalized), or None: :meth:`vector`'s
        checks, for a caller that keeps the codes (the ranker's candidate cache).

        Raises:
            InvalidTypeError, InvalidInputError: a vector is present but malformed.
        """
        if not self.vector_dim:
            return None
        value = article.get(VECTOR_KEY)
        if value is None or value == "":
            return None
        return check_vector_text(f"{where}[{VECTOR_KEY!r}]", value, self.vector_dim)

    def stored_vector(self, article: Mapping[str, Any]) -> FloatArray | None:
        """:meth:`vector` of a history item, lenient: one recorded for another encoder
        (another width, or another ``vector_encoder`` stamp) or malformed is missing."""
        stamp = article.get(ENCODER_KEY)
        if stamp is not None and stamp != self.encoder:
            return None
        try:
            return self.vector(article, "history")
        except (InvalidTypeError, InvalidInputError):
            return None

    def prior_of(self, article: Mapping[str, Any], where: str) -> float | None:
        """The article's click prior, or None when it has none (or the model reads none).

        Raises:
            InvalidTypeError, InvalidInputError: a prior is present but not a finite
                number in ``[-MAX_PRIOR, MAX_PRIOR]``.
        """
        if not self.prior:
            return None
        value = article.get(PRIOR_KEY)
        if value is None:
            return None
        return check_number(f"{where}[{PRIOR_KEY!r}]", value, -MAX_PRIOR, MAX_PRIOR)
