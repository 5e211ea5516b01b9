"""The feature contract shared by the trainer and the device: FeatureSpec, tokenize, featurize.

Where things live in ``edgerec.features``: this module holds the spec and the two public
verbs; :mod:`~edgerec.features.values` the one article validator and time rule;
:mod:`~edgerec.features.hashing` the hashing facade that picks the native or pure-Python
implementation once.

An article (a mapping of field name to value) becomes a fixed-width row of int32 hash ids.
The rules, pinned by golden vectors in ``tests/vectors/``:

* **Fields** are laid out left to right in spec order; field ``f`` owns ``f.slots`` columns.
  Id 0 is padding: a missing field, a short token list or an empty value leaves zeros.
* **Normalization** (fields with ``normalize=True``, the default): Unicode NFKC, then
  ``str.casefold()``. Fields with ``normalize=False`` (article ids) are hashed as given.
* **Kinds**:

  - ``categorical``: the whole (normalized) string is one value, one slot.
  - ``text``: tokens are the maximal runs of characters for which ``str.isalnum()`` is true
    (Unicode-aware: letters and digits of every script; punctuation, spaces, symbols,
    emoji and the underscore separate tokens). The first ``slots`` tokens are kept.
  - ``list``: a list of strings (e.g. entity ids); each non-empty item is one value; the
    first ``slots`` items are kept.
  - ``time_bucket``: a time (epoch seconds as int/float, an aware ``datetime``, or an
    ISO-8601 string with an offset) becomes the tokens ``hour=H`` and/or ``weekday=D``
    (UTC, Monday = 0), one per slot. Naive times are refused rather than guessed.
* **Hashing**: each value or token ``v`` of field ``name`` becomes
  ``1 + murmur3_x86_32(utf8(name + "\\x1f" + v), seed) mod (n_buckets - 1)``, the hash taken
  as unsigned, so ids fall in ``[1, n_buckets)``.

Validation is strict and names the field: an article that is not a mapping, a ``bytes``
title, a non-str id, a lone surrogate, a value above the field's ``max_chars``, or a NaN
time raises :class:`~edgerec.InvalidTypeError` / :class:`~edgerec.InvalidInputError`
(subclasses of ``TypeError`` / ``ValueError``). ``None`` means "missing" and is padding,
unless the field is ``required``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from .._json import StrictJSONError, loads_strict
from ..errors import InvalidTypeError, SpecError
from . import hashing
from .signals import FeedSignals
from .values import TOKEN_RE

__all__ = ["FeatureSpec", "FieldSpec", "featurize", "tokenize"]

SPEC_VERSION: Final = 1
FieldKind = Literal["categorical", "text", "list", "time_bucket"]
KINDS: Final[tuple[str, ...]] = ("categorical", "text", "list", "time_bucket")
TIME_BUCKETS: Final[tuple[str, ...]] = ("hour", "weekday")
# The only tokenizer this SDK implements. A spec asking for anything else is refused:
# the device must never guess how the trainer tokenized.
TOKENIZER: Final[Mapping[str, Any]] = {
    "normalization": "NFKC",
    "casefold": True,
    "split": "non_alnum",
}

MIN_BUCKETS: Final = 2
MAX_BUCKETS: Final = 1 << 24  # 16.7M rows: far above any on-device embedding table
MAX_SLOTS: Final = 256
MAX_WIDTH: Final = 1024
MAX_CHARS_LIMIT: Final = 1 << 20
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class FieldSpec:
    """One article field and how it is hashed.

    Example:
        >>> title = FieldSpec("title", "text", slots=16, max_chars=2048)
        >>> title.prefix, title.normalize
        (b'title\\x1f', True)
    """

    name: str
    kind: FieldKind
    slots: int = 1
    max_chars: int = 256  # longer values are refused, not truncated (applies per list item)
    normalize: bool = True  # NFKC + casefold before hashing
    required: bool = False  # missing/empty is an error instead of padding
    buckets: tuple[str, ...] = ()  # time_bucket only: ("hour", "weekday") or a subset

    @property
    def prefix(self) -> bytes:
        """The bytes hashed before every value of this field: ``name + "\\x1f"``."""
        return self.name.encode("utf-8") + b"\x1f"


def _default_fields() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("id", "categorical", max_chars=256, normalize=False, required=True),
        FieldSpec("source", "categorical"),
        FieldSpec("category", "categorical"),
        FieldSpec("subcategory", "categorical"),
        FieldSpec("title", "text", slots=16, max_chars=2048),
        FieldSpec("abstract", "text", slots=32, max_chars=16384),
        FieldSpec("entities", "list", slots=4),
        FieldSpec("published_at", "time_bucket", slots=2, max_chars=64, buckets=TIME_BUCKETS),
    )


@dataclass(frozen=True)
class FeatureSpec:
    """Versioned description of how articles become hash-id rows (DESIGN.md section 2).

    Build one with :meth:`default`, :meth:`from_dict` or :meth:`from_json`; every path
    validates strictly and raises :class:`~edgerec.SpecError` (a ``ValueError``) naming the
    field at fault. The spec travels as JSON inside every model manifest.

    Example:
        >>> spec = FeatureSpec.default()
        >>> spec.width
        58
        >>> FeatureSpec.from_json(spec.to_json()) == spec
        True
    """

    fields: tuple[FieldSpec, ...] = field(default_factory=_default_fields)
    n_buckets: int = 1 << 15
    seed: int = 0
    version: int = SPEC_VERSION
    signals: FeedSignals | None = None  # optional feed inputs (edgerec.features.signals)

    def __post_init__(self) -> None:
        _validate(self)

    # ----------------------------------------------------------------- construction
    @classmethod
    def default(cls) -> FeatureSpec:
        """The spec the shipped models use: id, source, category, subcategory, title,
        abstract, entities, published_at; 2**15 buckets."""
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Build a spec from its JSON object form.

        Raises:
            SpecError: unknown keys, wrong types, unknown kinds, duplicate fields, bucket
                counts out of range, or a tokenizer this SDK does not implement.
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"spec must be a JSON object, got {type(data).__name__}")
        _check_keys(
            "spec",
            data,
            required={"spec_version", "n_buckets", "seed", "fields"},
            optional={"tokenizer", "signals"},
        )
        version = _int(data, "spec_version", "spec")
        if version != SPEC_VERSION:
            raise SpecError(
                f"spec_version {version} is not supported by this SDK (supports {SPEC_VERSION})"
            )
        tokenizer = data.get("tokenizer", dict(TOKENIZER))
        if not isinstance(tokenizer, Mapping) or dict(tokenizer) != dict(TOKENIZER):
            raise SpecError(
                f"tokenizer {tokenizer!r} is not implemented by this SDK "
                f"(supports {dict(TOKENIZER)!r})"
            )
        raw_fields = data["fields"]
        if not isinstance(raw_fields, list) or not raw_fields:
            raise SpecError("spec 'fields' must be a non-empty list")
        fields = tuple(_field_from_dict(i, raw) for i, raw in enumerate(raw_fields))
        return cls(
            fields=fields,
            n_buckets=_int(data, "n_buckets", "spec"),
            seed=_int(data, "seed", "spec"),
            version=version,
            signals=FeedSignals.from_dict(data["signals"]) if "signals" in data else None,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        """Parse a spec from strict JSON (no duplicate keys, NaN or deep nesting).

        Raises:
            SpecError: the JSON is not strict or the spec is invalid.
        """
        try:
            data = loads_strict(text)
        except StrictJSONError as exc:
            raise SpecError(f"feature spec: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form (the inverse of :meth:`from_dict`)."""
        fields = []
        for f in self.fields:
            d: dict[str, Any] = {
                "name": f.name,
                "kind": f.kind,
                "slots": f.slots,
                "max_chars": f.max_chars,
                "normalize": f.normalize,
                "required": f.required,
            }
            if f.kind == "time_bucket":
                d["buckets"] = list(f.buckets)
            fields.append(d)
        out: dict[str, Any] = {
            "spec_version": self.version,
            "n_buckets": self.n_buckets,
            "seed": self.seed,
            "tokenizer": dict(TOKENIZER),
            "fields": fields,
        }
        if self.signals is not None:  # absent, not null: older specs keep their fingerprint
            out["signals"] = self.signals.to_dict()
        return out

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): equal specs give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    # ----------------------------------------------------------------- layout
    @property
    def width(self) -> int:
        """Columns of a featurized row (F)."""
        return sum(f.slots for f in self.fields)

    @cached_property
    def columns(self) -> Mapping[str, slice]:
        """Column slice owned by each field, in spec order."""
        out: dict[str, slice] = {}
        start = 0
        for f in self.fields:
            out[f.name] = slice(start, start + f.slots)
            start += f.slots
        return out

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON: identifies the spec in manifests and caches."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


# --------------------------------------------------------------------- validation
def _check_keys(
    where: str, data: Mapping[str, Any], *, required: set[str], optional: set[str]
) -> None:
    for key in data:
        if key not in required and key not in optional:
            raise SpecError(f"{where}: unknown key {key!r}")
    for key in sorted(required):
        if key not in data:
            raise SpecError(f"{where}: missing key {key!r}")


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data[key]
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise SpecError(f"{where}: {key!r} must be an integer, got {type(value).__name__}")
    return value


def _bool(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data[key]
    if type(value) is not bool:
        raise SpecError(f"{where}: {key!r} must be true or false, got {type(value).__name__}")
    return value


def _field_from_dict(index: int, raw: Any) -> FieldSpec:
    if not isinstance(raw, Mapping):
        raise SpecError(f"fields[{index}] must be an object, got {type(raw).__name__}")
    name = raw.get("name")
    where = f"field {name!r}" if isinstance(name, str) else f"fields[{index}]"
    _check_keys(
        where,
        raw,
        required={"name", "kind", "slots"},
        optional={"max_chars", "normalize", "required", "buckets"},
    )
    if not isinstance(name, str):
        raise SpecError(f"{where}: 'name' must be a string")
    kind = raw["kind"]
    if kind not in KINDS:
        raise SpecError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    buckets: tuple[str, ...] = ()
    if "buckets" in raw:
        if not isinstance(raw["buckets"], list) or not all(
            isinstance(b, str) for b in raw["buckets"]
        ):
            raise SpecError(f"{where}: 'buckets' must be a list of strings")
        buckets = tuple(raw["buckets"])
    return FieldSpec(
        name=name,
        kind=kind,
        slots=_int(raw, "slots", where),
        max_chars=_int(raw, "max_chars", where) if "max_chars" in raw else 256,
        normalize=_bool(raw, "normalize", where) if "normalize" in raw else True,
        required=_bool(raw, "required", where) if "required" in raw else False,
        buckets=buckets,
    )


def _validate(spec: FeatureSpec) -> None:
    if spec.signals is not None and not isinstance(spec.signals, FeedSignals):
        raise SpecError("signals must be a FeedSignals or None")
    if spec.signals is not None and {"vector", "prior"} & {f.name for f in spec.fields}:
        raise SpecError("a field may not be named 'vector' or 'prior' (feed signal keys)")
    if type(spec.version) is not int or spec.version != SPEC_VERSION:
        raise SpecError(f"spec_version {spec.version!r} is not supported (supports {SPEC_VERSION})")
    if type(spec.n_buckets) is not int or not MIN_BUCKETS <= spec.n_buckets <= MAX_BUCKETS:
        raise SpecError(
            f"n_buckets must be an integer in [{MIN_BUCKETS}, {MAX_BUCKETS}], "
            f"got {spec.n_buckets!r}"
        )
    if type(spec.seed) is not int or not 0 <= spec.seed < 1 << 32:
        raise SpecError(f"seed must be an integer in [0, 2**32), got {spec.seed!r}")
    if not isinstance(spec.fields, tuple) or not spec.fields:
        raise SpecError("fields must be a non-empty tuple of FieldSpec")
    seen: set[str] = set()
    for f in spec.fields:
        if not isinstance(f, FieldSpec):
            raise SpecError(f"fields must hold FieldSpec objects, got {type(f).__name__}")
        where = f"field {f.name!r}"
        if not isinstance(f.name, str) or not _NAME_RE.fullmatch(f.name):
            raise SpecError(f"{where}: names are 1-64 chars of [a-z0-9_], starting with a letter")
        if f.name in seen:
            raise SpecError(f"{where}: duplicate field")
        seen.add(f.name)
        if f.kind not in KINDS:
            raise SpecError(f"{where}: unknown kind {f.kind!r} (known: {', '.join(KINDS)})")
        if type(f.slots) is not int or not 1 <= f.slots <= MAX_SLOTS:
            raise SpecError(f"{where}: slots must be an integer in [1, {MAX_SLOTS}]")
        if type(f.max_chars) is not int or not 1 <= f.max_chars <= MAX_CHARS_LIMIT:
            raise SpecError(f"{where}: max_chars must be an integer in [1, {MAX_CHARS_LIMIT}]")
        if type(f.normalize) is not bool or type(f.required) is not bool:
            raise SpecError(f"{where}: normalize and required must be booleans")
        if f.kind == "categorical" and f.slots != 1:
            raise SpecError(f"{where}: a categorical field takes exactly 1 slot")
        if f.kind == "time_bucket":
            if (
                not f.buckets
                or len(set(f.buckets)) != len(f.buckets)
                or any(b not in TIME_BUCKETS for b in f.buckets)
            ):
                raise SpecError(f"{where}: buckets must be distinct values from {TIME_BUCKETS}")
            if f.slots != len(f.buckets):
                raise SpecError(f"{where}: slots must equal the number of buckets")
        elif f.buckets:
            raise SpecError(f"{where}: only time_bucket fields take buckets")
    if sum(f.slots for f in spec.fields) > MAX_WIDTH:
        raise SpecError(f"spec is wider than {MAX_WIDTH} columns")


# --------------------------------------------------------------------- public helpers
def tokenize(text: str, *, max_tokens: int | None = None, normalize: bool = True) -> list[str]:
    """Split text exactly as a ``text`` field is split before hashing (readable reference).

    Example:
        >>> tokenize("Ünïcode café — 2 Straße!")
        ['ünïcode', 'café', '2', 'strasse']

    Raises:
        InvalidTypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise InvalidTypeError(f"text must be str, got {type(text).__name__}")
    if normalize:
        text = unicodedata.normalize("NFKC", text).casefold()
    tokens = TOKEN_RE.findall(text)
    return tokens if max_tokens is None else tokens[:max_tokens]


def featurize(articles: Sequence[Mapping[str, Any]], spec: FeatureSpec) -> npt.NDArray[np.int32]:
    """Hash a batch of articles into an ``(N, spec.width)`` int32 matrix.

    Example:
        >>> spec = FeatureSpec.default()
        >>> featurize([{"id": "N1", "title": "Storm hits the coast"}], spec).shape
        (1, 58)

    Raises:
        InvalidTypeError: ``articles`` is not a sequence of mappings, or a field value has
            the wrong type (the message names the article index and field).
        InvalidInputError: a value is unacceptable (too long, NaN time, lone surrogate,
            missing required field).
    """
    if not isinstance(spec, FeatureSpec):
        raise InvalidTypeError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
    if isinstance(articles, (str, bytes, Mapping)) or not isinstance(articles, Sequence):
        raise InvalidTypeError(
            f"articles must be a sequence of mappings, got {type(articles).__name__}"
        )
    batch = list(articles)  # our own list: user code run mid-call cannot resize it
    out = np.zeros((len(batch), spec.width), dtype=np.int32)  # (N, F)
    hashing.featurize_into(spec, batch, out)
    return out
