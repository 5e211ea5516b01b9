"""What one reading event is: :class:`HistoryEvent`, and the codec of the plaintext inside
each record's ciphertext.

Owns: the fields an event keeps, :class:`HistoryEvent`, the encoding and decoding of an
event, and the layout of :meth:`~edgerec.ReadingHistory.export`. The limits come from
:mod:`~edgerec.history.limits`. Touches nothing: no file, no key, no clock. Messages name
the parameter (``article['title']``, ``at``) and never hold the value.

Plaintext of one record (UTF-8 JSON, no NaN)::

    {"v": 1, "id": <article id>, "f": {<field>: <value>, ...}, "t": <at>, "d": <dwell or null>}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ..errors import InvalidInputError, InvalidTypeError, UnsupportedFormatError
from ..features.values import MAX_TIME, check_string
from .limits import (
    MAX_DWELL_S,
    MAX_ENTITIES,
    MAX_EVENT_BYTES,
    MAX_ID_CHARS,
    MAX_STRING_CHARS,
    check_number,
    check_text,
)

__all__ = ["STRING_FIELDS", "HistoryEvent", "decode_event", "encode_event", "export_json"]

STRING_FIELDS: Final = ("source", "category", "subcategory", "title", "abstract")


@dataclass(frozen=True, repr=False, eq=True)
class HistoryEvent:
    """One decrypted reading event. Its ``repr`` hides the contents (logs stay clean).

    Attributes:
        seq: the event's sequence number in its profile (strictly increasing).
        article_id: the article's id, exactly as recorded.
        features: the article's fields other than the id (source, category, subcategory,
            title, abstract, published_at, entities), only those that were present.
        at: when it was read, epoch seconds (UTC).
        dwell_s: seconds spent reading, or ``None``.

    Example:
        >>> e = HistoryEvent(3, "N1", {"title": "Hello"}, 0.0, None)
        >>> e, e.article(), e.when.year
        (HistoryEvent(seq=3, <contents hidden>), {'id': 'N1', 'title': 'Hello'}, 1970)
    """

    seq: int
    article_id: str
    features: Mapping[str, Any]
    at: float
    dwell_s: float | None

    @property
    def when(self) -> datetime:
        """``at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.at, UTC)

    def article(self) -> dict[str, Any]:
        """The event as an article mapping for :func:`edgerec.featurize`."""
        return {"id": self.article_id, **self.features}

    def __repr__(self) -> str:
        return f"HistoryEvent(seq={self.seq}, <contents hidden>)"


# ---------------------------------------------------------------------- the codec
def encode_event(article: object, at: object, dwell_s: object) -> bytes:
    """The plaintext of one event, every input checked before anything is encrypted.

    Raises:
        InvalidTypeError, InvalidInputError: a bad value, named (``at``, ``dwell_s``,
            ``article['title']``, ...); or the event encodes to more than
            :data:`MAX_EVENT_BYTES`.
    """
    when = _check_time("at", at)
    dwell = None if dwell_s is None else check_number("dwell_s", dwell_s, 0.0, MAX_DWELL_S)
    if not isinstance(article, Mapping):
        raise InvalidTypeError(f"article must be a mapping, not {type(article).__name__}")
    aid = check_text("article['id']", article.get("id"), MAX_ID_CHARS)
    features: dict[str, Any] = {}
    for name in STRING_FIELDS:
        value = article.get(name)
        if value is not None:
            features[name] = check_string(f"article[{name!r}]", value, MAX_STRING_CHARS)
    published = article.get("published_at")
    if published is not None:
        if isinstance(published, str):
            features["published_at"] = check_string(
                "article['published_at']", published, MAX_STRING_CHARS
            )
        else:
            features["published_at"] = _check_time("article['published_at']", published)
    entities = article.get("entities")
    if entities is not None:
        if isinstance(entities, str | bytes) or not isinstance(entities, Sequence):
            raise InvalidTypeError(
                f"article['entities'] must be a list of str, not {type(entities).__name__}"
            )
        if len(entities) > MAX_ENTITIES:
            raise InvalidInputError(f"article['entities'] has more than {MAX_ENTITIES} items")
        features["entities"] = [
            check_string(f"article['entities'][{i}]", e, MAX_STRING_CHARS)
            for i, e in enumerate(entities)
        ]
    doc = {"v": 1, "id": aid, "f": features, "t": when, "d": dwell}
    data = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    encoded = data.encode("utf-8")
    if len(encoded) > MAX_EVENT_BYTES:
        raise InvalidInputError(f"article encodes to more than {MAX_EVENT_BYTES} bytes")
    return encoded


def _check_time(where: str, value: object) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInputError(f"{where} is a naive datetime; pass an aware one (UTC)")
        value = value.timestamp()
    t = check_number(where, value, 0.0, MAX_TIME)
    if t >= MAX_TIME:
        raise InvalidInputError(f"{where} is at or after year 10000")
    return t


_json_decode = json.JSONDecoder().decode


def decode_event(seq: int, plaintext: bytes) -> HistoryEvent:
    """The event of an authenticated plaintext.

    Raises:
        UnsupportedFormatError: authentic but unreadable (only a bug or a newer SDK writes
            that).
    """
    try:
        doc = _json_decode(plaintext.decode("utf-8"))
        return HistoryEvent(seq, doc["id"], doc["f"], doc["t"], doc["d"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise UnsupportedFormatError(f"event seq={seq} has an unknown layout") from None


def export_json(profile: str, events: Sequence[HistoryEvent]) -> str:
    """The export document: ``{"format": "edgerec.history.export", "version": 1,
    "profile": name, "events": [{"seq", "article_id", "features", "at", "dwell_s"}, ...]}``.
    """
    doc = {
        "format": "edgerec.history.export",
        "version": 1,
        "profile": profile,
        "events": [
            {
                "seq": e.seq,
                "article_id": e.article_id,
                "features": e.features,
                "at": e.at,
                "dwell_s": e.dwell_s,
            }
            for e in events
        ],
    }
    return json.dumps(doc, ensure_ascii=False, allow_nan=False)
