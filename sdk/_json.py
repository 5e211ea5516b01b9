"""Strict JSON for everything the SDK reads from disk or the network.

Python's ``json`` accepts duplicate keys (the last one wins), ``NaN`` and ``Infinity``,
and numbers such as ``1e400`` that silently become ``inf``. Specs and manifests must mean
exactly one thing, so all of those are errors here.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

__all__ = ["StrictJSONError", "loads_strict", "read_jsonl"]

MAX_DEPTH = 32
MAX_LINE_BYTES = 4 << 20  # one JSON-lines record (an article)


class StrictJSONError(ValueError):
    """The document is not strict JSON (the caller re-raises it as its own error type)."""


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("number out of range")
    return value


def _depth(text: str) -> int:
    """Deepest nesting of brackets outside strings (checked before parsing: no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_strict(data: str | bytes) -> Any:
    """Parse JSON, rejecting duplicate keys, NaN/Infinity, overflowing numbers and deep nesting.

    Raises:
        StrictJSONError: the document is not valid strict JSON.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJSONError("not UTF-8") from None
    if _depth(data) > MAX_DEPTH:
        raise StrictJSONError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(
            data,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StrictJSONError(f"invalid JSON: {exc}") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (blank lines skipped), each line strict JSON.

    Raises:
        InvalidInputError: the file cannot be read, or a line (named by number) is too long,
            not strict JSON or not an object.
    """
    from .errors import InvalidInputError

    rows: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if len(line) > MAX_LINE_BYTES:
                    raise InvalidInputError(f"{path}: line {number} is above {MAX_LINE_BYTES} B")
                try:
                    row = loads_strict(line)
                except StrictJSONError as exc:
                    raise InvalidInputError(f"{path}: line {number}: {exc}") from None
                if not isinstance(row, dict):
                    raise InvalidInputError(f"{path}: line {number} is not a JSON object")
                rows.append(row)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it ({exc.strerror})") from None
    return rows
