"""Pure-Python twin of the native hashing extension: readable, and bit-identical to it.

Same functions, same signatures as ``native/hashing.pyx``. Used where the extension is
absent or when ``EDGEREC_PURE_PYTHON=1``. The golden vectors and the property tests
(``tests/sdk/features/test_hashing.py``) hold the two to the same output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, cast

import numpy as np
import numpy.typing as npt

from .values import TOKEN_RE, FieldValue, time_tokens

if TYPE_CHECKING:
    from .spec import FieldSpec

_C1: Final = 0xCC9E2D51
_C2: Final = 0x1B873593
_MASK: Final = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def murmur3_32(data: bytes, seed: int) -> int:
    """MurmurHash3 x86_32 of ``data``, as an unsigned 32-bit integer."""
    h = seed
    n = len(data)
    tail_start = n - n % 4
    for i in range(0, tail_start, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (_rotl((k * _C1) & _MASK, 15) * _C2) & _MASK
        h = (_rotl(h ^ k, 13) * 5 + 0xE6546B64) & _MASK
    tail = data[tail_start:]
    if tail:
        k = int.from_bytes(tail, "little")
        h ^= (_rotl((k * _C1) & _MASK, 15) * _C2) & _MASK
    h ^= n
    # fmix32: final avalanche
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def _bucket(data: bytes, seed: int, n_buckets: int) -> int:
    return 1 + murmur3_32(data, seed) % (n_buckets - 1)


def hash_strings(
    strings: list[object], seed: int, n_buckets: int, out: npt.NDArray[np.int32]
) -> int:
    """Bucket ids of ``strings`` into ``out``; returns -1, or the index of a string that is
    not a ``str`` or not encodable as UTF-8."""
    for i, s in enumerate(strings):
        if not issubclass(type(s), str):  # by type: a faked __class__ is not a str
            return i
        try:
            out[i] = _bucket(cast(str, s).encode("utf-8"), seed, n_buckets)
        except UnicodeEncodeError:
            return i
    return -1


class Plan:
    """The spec as the twin needs it (the native twin compiles it to C arrays)."""

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        seed: int,
        n_buckets: int,
        marks: tuple[tuple[int, int], ...],
    ) -> None:
        # ``marks`` is accepted for parity with the native Plan; TOKEN_RE already has them.
        self.fields = tuple(fields)
        self.seed = seed
        self.n_buckets = n_buckets


def _tokens(text: bytes, limit: int) -> list[bytes]:
    found = TOKEN_RE.findall(text.decode("utf-8"))  # valid UTF-8: values.field_value encoded it
    return [t.encode("utf-8") for t in found[:limit]]


def featurize(
    plan: Plan,
    articles: list[object],
    slow: Callable[[int, object, int], FieldValue],
    out: npt.NDArray[np.int32],
) -> None:
    """Fill ``out`` (N, F), zeroed by the caller. ``slow`` validates every value here."""
    for row, article in enumerate(articles):
        col = 0
        for index, fs in enumerate(plan.fields):
            value = slow(row, article, index)
            values: list[bytes]
            if value is None:
                values = []
            elif isinstance(value, float):  # time_bucket
                values = time_tokens(value, fs.buckets)
            elif isinstance(value, list):
                values = value
            elif fs.kind == "text":
                values = _tokens(value, fs.slots)
            else:
                values = [value]
            for j, v in enumerate(values):
                out[row, col + j] = _bucket(fs.prefix + v, plan.seed, plan.n_buckets)
            col += fs.slots
