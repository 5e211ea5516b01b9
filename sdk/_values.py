"""Turning one article field into what the hash sees — the validating, message-writing path.

Both hashing implementations use this module: the pure-Python twin for every value, the
native extension only for values off its fast path (non-ASCII text, datetimes, anything
invalid). Keeping validation here, in Python, means one set of rules and one set of error
messages whatever implementation runs. Messages name the article index and field, never
the value (it may be a reader's history).
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final

from .errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from .features import FieldSpec

__all__ = [
    "MARK_RANGES",
    "MAX_TIME",
    "MIN_TIME",
    "TOKEN_RE",
    "FieldValue",
    "field_value",
    "time_tokens",
]


# A token is a maximal run of "word characters": those for which str.isalnum() is true,
# plus combining marks (Unicode category M*), which belong to the letter before them
# (Devanagari vowel signs, the dot of a casefolded "İ"). re's \w is exactly isalnum()
# plus "_", so [^\W_] is isalnum(); the marks come from the table below. The native loop
# asks CPython's same isalnum table (Py_UNICODE_ISALNUM) and the same mark ranges.
def _scan_marks() -> tuple[tuple[int, int], ...]:
    """Inclusive code point ranges of category M*, from this Python's Unicode database.

    Marks live only in planes 0, 1 and 14, so only those are scanned (about 75 ms: the
    result for the shipped Unicode version is committed in ``_unicode_marks.py``).
    """
    ranges: list[tuple[int, int]] = []
    start = -1
    for cp in (*range(0x20000), *range(0xE0000, 0xE1000), 0x110000):
        is_mark = cp < 0x110000 and unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start < 0:
            start = cp
        elif not is_mark and start >= 0:
            ranges.append((start, cp - 1))
            start = -1
    return tuple(ranges)


def _marks() -> tuple[tuple[int, int], ...]:
    from . import _unicode_marks

    if unicodedata.unidata_version == _unicode_marks.UNIDATA_VERSION:
        return _unicode_marks.RANGES
    return _scan_marks()  # another Python, another Unicode version: derive, never guess


MARK_RANGES: Final = _marks()
TOKEN_RE: Final = re.compile(
    "(?:[^\\W_]|["
    + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in MARK_RANGES)
    + "])+"
)

# Years 1..9999, the range of datetime; the native fast path uses the same bounds.
MIN_TIME: Final = -62135596800.0
MAX_TIME: Final = 253402300800.0

# None: padding. bytes: a categorical value, or the text to tokenize. list[bytes]: list
# items (already cut to the field's slots). float: epoch seconds of a time_bucket field.
FieldValue = None | bytes | list[bytes] | float


def field_value(index: int, article: object, spec: FieldSpec) -> FieldValue:
    """Validate and normalize ``article[spec.name]`` (the reference semantics).

    Raises:
        InvalidTypeError: the article is not a mapping or the value has the wrong type.
        InvalidInputError: the value is unacceptable (see ``edgerec.features``).
    """
    if not isinstance(article, Mapping):
        raise InvalidTypeError(f"articles[{index}] must be a mapping, got {type(article).__name__}")
    where = f"articles[{index}][{spec.name!r}]"
    value = article.get(spec.name)
    result: FieldValue
    if value is None:
        result = None
    elif spec.kind in {"categorical", "text"}:
        result = _string(where, value, spec) or None
    elif spec.kind == "list":
        result = _items(where, value, spec) or None
    else:
        result = _time(where, value, spec)
    if result is None and spec.required:
        raise InvalidInputError(f"{where}: required field is missing or empty")
    return result


def _string(where: str, value: object, spec: FieldSpec) -> bytes:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{where}: expected str, got {type(value).__name__}")
    if len(value) > spec.max_chars:
        raise InvalidInputError(
            f"{where}: {len(value)} characters, above the field's limit of {spec.max_chars}"
        )
    if spec.normalize:
        value = unicodedata.normalize("NFKC", value).casefold()
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{where}: not encodable as UTF-8 (a lone surrogate?)") from None


def _items(where: str, value: object, spec: FieldSpec) -> list[bytes]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidTypeError(f"{where}: expected a list of str, got {type(value).__name__}")
    out: list[bytes] = []
    for j, item in enumerate(value):
        if len(out) == spec.slots:
            break  # items past the field's slots are never read, so never judged
        encoded = _string(f"{where}[{j}]", item, spec)
        if encoded:
            out.append(encoded)
    return out


def _time(where: str, value: object, spec: FieldSpec) -> float:
    if isinstance(value, bool):  # an int subclass, but True is not a time (numpy.bool_ is
        # not a numbers.Real, so it ends in the type error below)
        raise InvalidTypeError(f"{where}: expected a time, got bool")
    if isinstance(value, numbers.Real):
        try:
            seconds = float(value)
        except (OverflowError, ValueError):
            raise InvalidInputError(f"{where}: time out of range") from None
    elif isinstance(value, (datetime, str)):
        moment = value
        if isinstance(moment, str):
            if len(moment) > spec.max_chars:
                raise InvalidInputError(f"{where}: time string above {spec.max_chars} chars")
            try:
                moment = datetime.fromisoformat(moment)
            except ValueError:
                raise InvalidInputError(f"{where}: not an ISO-8601 time") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidInputError(f"{where}: naive time; give a UTC offset (e.g. 'Z' or +00:00)")
        try:
            seconds = moment.timestamp()
        except (OverflowError, ValueError):
            raise InvalidInputError(f"{where}: time out of range") from None
    else:
        raise InvalidTypeError(
            f"{where}: expected epoch seconds, an aware datetime or an ISO-8601 string, "
            f"got {type(value).__name__}"
        )
    if not math.isfinite(seconds):
        raise InvalidInputError(f"{where}: time is NaN or infinite")
    if not MIN_TIME <= seconds < MAX_TIME:
        raise InvalidInputError(f"{where}: time outside years 1..9999")
    return seconds


def time_tokens(seconds: float, buckets: tuple[str, ...]) -> list[bytes]:
    """The bucket tokens of a validated time: whole UTC seconds, floor division throughout."""
    whole = math.floor(seconds)
    days, in_day = divmod(whole, 86400)
    values = {"hour": in_day // 3600, "weekday": (days + 3) % 7}  # 1970-01-01 was a Thursday
    return [f"{b}={values[b]}".encode("ascii") for b in buckets]
