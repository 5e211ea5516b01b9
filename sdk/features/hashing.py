"""Feature hashing: MurmurHash3 x86_32 and hashed-id batches (DESIGN.md section 2).

The implementation is chosen once, at import: the compiled extension
(``edgerec.features._hashing_native``, built from ``native/hashing.pyx``) when it loads,
else the pure-Python twin (``edgerec.features._hashing_py``), which gives bit-identical
output. Setting the
environment variable ``EDGEREC_PURE_PYTHON=1`` forces the twin. :data:`IMPLEMENTATION`
says which one runs; nothing else in the SDK decides it.

Example:
    >>> from edgerec.features import hashing
    >>> hashing.murmur3_32("foo")
    -156908512
    >>> hashing.hash_strings(["foo", "bar"], seed=0, n_buckets=1024).tolist()
    [256, 390]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError, InvalidTypeError
from . import _hashing_py
from .values import MARK_RANGES, FieldValue, field_value

if TYPE_CHECKING:
    from .spec import FeatureSpec

__all__ = ["IMPLEMENTATION", "hash_strings", "murmur3_32"]

_log = logging.getLogger(__name__)
_FORCE_VALUES: Final = {"1", "true", "yes", "on"}


def _choose() -> tuple[Literal["native", "python"], ModuleType]:
    if os.environ.get("EDGEREC_PURE_PYTHON", "").strip().lower() in _FORCE_VALUES:
        return "python", _hashing_py
    try:
        from . import _hashing_native
    except ImportError as exc:  # built with EDGEREC_PURE_PYTHON=1, or no compiler
        _log.debug("native hashing unavailable (%s); using the pure-Python twin", exc)
        return "python", _hashing_py
    return "native", _hashing_native


IMPLEMENTATION: Literal["native", "python"]
_impl: ModuleType
IMPLEMENTATION, _impl = _choose()


def _check_seed(seed: object) -> int:
    if type(seed) is not int or not 0 <= seed < 1 << 32:
        raise InvalidInputError(f"seed must be an int in [0, 2**32), got {seed!r}")
    return seed


def murmur3_32(data: str | bytes, seed: int = 0) -> int:
    """Signed 32-bit MurmurHash3 x86_32 of ``data`` (a str is hashed as UTF-8).

    Identical to ``mmh3.hash(data, seed)`` and scikit-learn's ``murmurhash3_32``.

    Raises:
        InvalidTypeError: ``data`` is neither str nor bytes.
        InvalidInputError: ``seed`` is outside ``[0, 2**32)`` or ``data`` holds a lone
            surrogate.
    """
    _check_seed(seed)
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("data is not encodable as UTF-8 (a lone surrogate?)") from None
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise InvalidTypeError(f"data must be str or bytes, got {type(data).__name__}")
    h: int = _impl.murmur3_32(raw, seed)
    return h - (1 << 32) if h >= 1 << 31 else h


def hash_strings(strings: Sequence[str], *, seed: int, n_buckets: int) -> npt.NDArray[np.int32]:
    """Bucket ids of whole strings: ``1 + murmur3(utf8(s), seed) mod (n_buckets - 1)``.

    The hash is taken as unsigned, so ids fall in ``[1, n_buckets)``; 0 stays free for
    padding. Strings are hashed exactly as given (no normalization, no splitting).

    Raises:
        InvalidTypeError: ``strings`` is not a sequence of str (names the first bad index).
        InvalidInputError: bad ``seed``/``n_buckets``, or a string with a lone surrogate.
    """
    _check_seed(seed)
    if type(n_buckets) is not int or not 2 <= n_buckets <= 2**31 - 1:
        raise InvalidInputError(f"n_buckets must be an int in [2, 2**31 - 1], got {n_buckets!r}")
    if isinstance(strings, (str, bytes)) or not isinstance(strings, Sequence):
        raise InvalidTypeError(f"strings must be a sequence of str, got {type(strings).__name__}")
    batch = strings if type(strings) is list else list(strings)
    out = np.empty(len(batch), dtype=np.int32)
    bad: int = _impl.hash_strings(batch, seed, n_buckets, out)
    if bad < 0:
        return out
    if not issubclass(type(batch[bad]), str):  # by type, as the native check
        raise InvalidTypeError(f"strings[{bad}] must be str, got {type(batch[bad]).__name__}")
    raise InvalidInputError(f"strings[{bad}] is not encodable as UTF-8 (a lone surrogate?)")


def _articles_label(row: int) -> str:
    return f"articles[{row}]"


# Compiled plans per (implementation, spec fingerprint): a spec is immutable, so a plan is
# built once. Bounded: a process sees a handful of specs (one per model it has loaded).
_PLANS: dict[tuple[str, str], Any] = {}
_MAX_PLANS: Final = 32


def _plan(impl: ModuleType, spec: FeatureSpec) -> Any:
    key = (impl.__name__, spec.fingerprint)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[key] = impl.Plan(list(spec.fields), spec.seed, spec.n_buckets, MARK_RANGES)
    return plan


def featurize_into(
    spec: FeatureSpec,
    articles: list[Any],
    out: npt.NDArray[np.int32],
    *,
    label: Callable[[int], str] = _articles_label,
) -> None:
    """Fill the zeroed ``out`` (N, F) for ``articles`` (used by :func:`edgerec.featurize`).

    ``label(i)`` names article ``i`` in error messages (default ``articles[i]``), so a
    caller featurizing a subset names the articles by its own indices.
    """
    _featurize_with(_impl, spec, articles, out, label)


def _featurize_with(
    impl: ModuleType,
    spec: FeatureSpec,
    articles: list[Any],
    out: npt.NDArray[np.int32],
    label: Callable[[int], str] = _articles_label,
) -> None:
    fields = spec.fields

    def slow(row: int, article: object, index: int) -> FieldValue:
        return field_value(article, fields[index], label(row))

    impl.featurize(_plan(impl, spec), articles, slow, out)
