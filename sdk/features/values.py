"""The one article validator: what any article field must be, whoever reads it.

The feature hashing (both implementations), the reading history and the ranking's time
arguments all go through this module, so an article means one thing on the device: the
same types, the same limits, the same time rule, the same messages. The native extension
calls back into it for every value off its fast path (non-ASCII text, datetimes, anything
invalid). Messages name the place (``articles[3]['title']``, ``article['id']``, ``now``)
and never the value: the same code checks a reader's history, and what a reader read must
not leak into logs or tracebacks.

Times: epoch seconds (int or float, not bool), an aware ``datetime``, or an ISO-8601
string with an offset (``2026-12-02T08:00:00Z``); naive times are refused rather than
guessed; years 1..9999 (``MIN_TIME <= t < MAX_TIME``).

Example:
    >>> parse_time("2026-12-02T08:00:00Z")
    1796198400.0
    >>> parse_time(float("nan"), "now")
    Traceback (most recent call last):
    ...
    edgerec.errors.InvalidInputError: now: time is NaN or infinite
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from .spec import FieldSpec

__all__ = [
    "MARK_RANGES",
    "MAX_TIME",
    "MAX_TIME_CHARS",
    "MIN_TIME",
    "TOKEN_RE",
    "FieldValue",
    "check_fields",
    "check_int",
    "check_number",
    "check_string",
    "checked_value",
    "field_value",
    "parse_time",
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
MAX_TIME_CHARS: Final = 64  # an ISO-8601 time string longer than this is refused unparsed

# None: padding. bytes: a categorical value, or the text to tokenize. list[bytes]: list
# items (already cut to the field's slots). float: epoch seconds of a time_bucket field.
FieldValue = None | bytes | list[bytes] | float


def parse_time(value: object, where: str = "time", *, max_chars: int = MAX_TIME_CHARS) -> float:
    """Epoch seconds (UTC) of a time argument: the SDK's one time rule.

    Raises:
        InvalidTypeError: not a number, an aware datetime or a string (``bool`` included).
        InvalidInputError: NaN or infinite, naive, not ISO-8601, outside years 1..9999.
    """
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
            if len(moment) > max_chars:
                raise InvalidInputError(f"{where}: time string above {max_chars} chars")
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


def check_number(where: str, value: object, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``value`` as a float if it is a real number (numpy scalars too, never ``bool``) in
    ``[lo, hi]``: the SDK's one rule for numeric parameters (times go through
    :func:`parse_time`). An integer too large for a float is out of range, not an
    ``OverflowError``.

    Raises:
        InvalidTypeError: not a real number, or a ``bool``.
        InvalidInputError: NaN, infinite, or outside ``[lo, hi]``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{where}: expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        raise InvalidInputError(f"{where}: out of range") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{where}: NaN or infinite")
    if not lo <= number <= hi:
        raise InvalidInputError(f"{where}: outside [{lo:g}, {hi:g}]")
    return number


def check_int(where: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` if it is an ``int`` (numpy integers too, never ``bool``) in ``[lo, hi]``
    (no upper bound when ``hi`` is None; Python ints compare exactly however large).

    Raises:
        InvalidTypeError: not an integer, or a ``bool``.
        InvalidInputError: outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{where}: expected an int, got {type(value).__name__}")
    number = int(value)
    if number < lo or (hi is not None and number > hi):
        raise InvalidInputError(f"{where}: outside [{lo}, {'...' if hi is None else hi}]")
    return number


def check_string(where: str, value: object, max_chars: int) -> str:
    """``value`` if it is a ``str`` of at most ``max_chars`` characters that UTF-8 can encode.

    Raises:
        InvalidTypeError: not a ``str``.
        InvalidInputError: too long, or a lone surrogate.
    """
    if not isinstance(value, str):
        raise InvalidTypeError(f"{where}: expected str, got {type(value).__name__}")
    if len(value) > max_chars:
        raise InvalidInputError(
            f"{where}: {len(value)} characters, above the field's limit of {max_chars}"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                f"{where}: not encodable as UTF-8 (a lone surrogate?)"
            ) from None
    return value


def _items(where: str, value: object, field: FieldSpec) -> list[str]:
    """The list field's items up to its slots (items past them are never read, so never
    judged), each a valid string; empty items dropped."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidTypeError(f"{where}: expected a list of str, got {type(value).__name__}")
    out: list[str] = []
    for j, item in enumerate(value):
        if len(out) == field.slots:
            break
        text = check_string(f"{where}[{j}]", item, field.max_chars)
        if text:
            out.append(text)
    return out


def checked_value(where: str, value: object, field: FieldSpec) -> str | list[str] | float | None:
    """``value`` checked against ``field``, as given (not normalized): a str, a list of str,
    the epoch seconds of a time, or None when missing or empty.

    Raises:
        InvalidTypeError, InvalidInputError: the value breaks the field's rules (including
            a missing or empty ``required`` field).
    """
    result: str | list[str] | float | None
    if value is None:
        result = None
    elif field.kind in {"categorical", "text"}:
        result = check_string(where, value, field.max_chars) or None
    elif field.kind == "list":
        result = _items(where, value, field) or None
    else:
        result = parse_time(value, where, max_chars=field.max_chars)
    if result is None and field.required:
        raise InvalidInputError(f"{where}: required field is missing or empty")
    return result


def check_fields(
    article: object, fields: tuple[FieldSpec, ...], where: str = "article"
) -> dict[str, Any]:
    """The fields of ``article`` named in ``fields``, each checked (as given; a time stays
    the string or number it was, once parsed). Missing or empty fields are left out.

    Raises:
        InvalidTypeError: ``article`` is not a mapping, or a field has the wrong type.
        InvalidInputError: a field breaks its rules.
    """
    if not isinstance(article, Mapping):
        raise InvalidTypeError(f"{where} must be a mapping, got {type(article).__name__}")
    out: dict[str, Any] = {}
    for field in fields:
        raw = article.get(field.name)
        value = checked_value(f"{where}[{field.name!r}]", raw, field)
        if value is None:
            continue
        out[field.name] = raw if field.kind == "time_bucket" and isinstance(raw, str) else value
    return out


def field_value(article: object, field: FieldSpec, where: str) -> FieldValue:
    """What the hash of ``article[field.name]`` sees: normalized (NFKC + casefold when
    ``field.normalize``) and UTF-8 encoded; the reference semantics of both hashing
    implementations. ``where`` names the article (``articles[3]``).

    Raises:
        InvalidTypeError: the article is not a mapping or the value has the wrong type.
        InvalidInputError: the value is unacceptable.
    """
    if not isinstance(article, Mapping):
        raise InvalidTypeError(f"{where} must be a mapping, got {type(article).__name__}")
    value = checked_value(f"{where}[{field.name!r}]", article.get(field.name), field)
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, list):
        return [_encoded(item, field) for item in value]
    return _encoded(value, field)


def _encoded(text: str, field: FieldSpec) -> bytes:
    if field.normalize:
        text = unicodedata.normalize("NFKC", text).casefold()
    return text.encode("utf-8")  # checked encodable; NFKC and casefold keep it so


def time_tokens(seconds: float, buckets: tuple[str, ...]) -> list[bytes]:
    """The bucket tokens of a validated time: whole UTC seconds, floor division throughout."""
    whole = math.floor(seconds)
    days, in_day = divmod(whole, 86400)
    values = {"hour": in_day // 3600, "weekday": (days + 3) % 7}  # 1970-01-01 was a Thursday
    return [f"{b}={values[b]}".encode("ascii") for b in buckets]
