"""What one reading event is: the fields it keeps, :class:`HistoryEvent`, and the codec
of the plaintext inside each record's ciphertext.

Owns: :data:`STORED_FIELDS` (the article fields an event keeps, described as
:class:`~edgerec.FieldSpec` and checked by the SDK's one article validator,
:func:`edgerec.features.values.check_fields`), :class:`HistoryEvent`, the encoding and
decoding of an event, and the layout of :meth:`~edgerec.ReadingHistory.export`. The limits
come from :mod:`~edgerec.history.limits`. Touches nothing: no file, no key, no clock.

Times follow the SDK's one time rule (:func:`edgerec.parse_time`): epoch seconds, an aware
``datetime`` or an ISO-8601 string with an offset, years 1..9999; naive times are refused,
not guessed. Strings are stored exactly as given (no normalization); a ``published_at``
string is stored as given once it parsed; empty fields (and empty entities) are left out,
as the featurizer treats them as missing. Messages name the parameter
(``article['title']``, ``at``) and never hold the value.

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
from ..features.signals import history_vector
from ..features.spec import TIME_BUCKETS, FieldSpec
from ..features.values import MAX_TIME_CHARS, check_fields, check_number, parse_time
from .limits import MAX_DWELL_S, MAX_ENTITIES, MAX_EVENT_BYTES, MAX_ID_CHARS, MAX_STRING_CHARS

__all__ = [
    "STORED_FIELDS",
    "HistoryEvent",
    "decode_event",
    "encode_batch",
    "encode_event",
    "export_json",
]

# The article fields an event keeps, in the order they are stored. Other keys of the
# article are ignored. (A valid FeatureSpec field list, so the slots mean what they mean
# there; only the entities' slots matter here, and the count is refused above them.)
STORED_FIELDS: Final[tuple[FieldSpec, ...]] = (
    FieldSpec("id", "categorical", max_chars=MAX_ID_CHARS, normalize=False, required=True),
    FieldSpec("source", "categorical", max_chars=MAX_STRING_CHARS),
    FieldSpec("category", "categorical", max_chars=MAX_STRING_CHARS),
    FieldSpec("subcategory", "categorical", max_chars=MAX_STRING_CHARS),
    FieldSpec("title", "text", max_chars=MAX_STRING_CHARS),
    FieldSpec("abstract", "text", max_chars=MAX_STRING_CHARS),
    FieldSpec(
        "published_at", "time_bucket", slots=2, max_chars=MAX_TIME_CHARS, buckets=TIME_BUCKETS
    ),
    FieldSpec("entities", "list", slots=MAX_ENTITIES, max_chars=MAX_STRING_CHARS),
    # Which encoder made the feed vector below (the Recommender stamps it from its model).
    FieldSpec("vector_encoder", "categorical", max_chars=128, normalize=False),
)
# Beside them, the article's feed vector (edgerec.features.signals) when it is one: kept so
# that a model reading feed signals can average the reader's; anything else under the key
# is ignored (features.signals.history_vector).


@dataclass(frozen=True, repr=False, eq=True)
class HistoryEvent:
    """One decrypted reading event. Its ``repr`` hides the contents (logs stay clean).

    Attributes:
        seq: the event's sequence number in its profile (strictly increasing).
        article_id: the article's id, exactly as recorded.
        features: the article's fields other than the id (source, category, subcategory,
            title, abstract, published_at, entities, the feed vector), only those that
            were present.
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
_NAMES: Final = ("article", "at", "dwell_s")


def encode_event(
    article: object, at: object, dwell_s: object, *, names: tuple[str, str, str] = _NAMES
) -> bytes:
    """The plaintext of one event, every input checked before anything is encrypted.

    Args:
        article: an article mapping (``id`` required; :data:`STORED_FIELDS`).
        at: when it was read (the time rule of :func:`edgerec.parse_time`).
        dwell_s: seconds spent reading (finite, in [0, :data:`MAX_DWELL_S`]) or ``None``.
        names: what messages call the three (``("articles[3]", "at[3]", "dwell_s[3]")``
            for one event of a batch).

    Raises:
        InvalidTypeError, InvalidInputError: a bad value, named (``at``, ``dwell_s``,
            ``article['title']``, ...); or the event encodes to more than
            :data:`MAX_EVENT_BYTES`.
    """
    article_name, at_name, dwell_name = names
    when = parse_time(at, at_name)
    dwell = None if dwell_s is None else check_number(dwell_name, dwell_s, 0.0, MAX_DWELL_S)
    if isinstance(article, Mapping):
        entities = article.get("entities")
        # check_fields keeps a list's first `slots` items and drops the rest; the history
        # refuses them instead (it never stores less than it was given without saying so).
        if isinstance(entities, list | tuple) and len(entities) > MAX_ENTITIES:
            raise InvalidInputError(f"{article_name}['entities']: more than {MAX_ENTITIES} items")
    fields = check_fields(article, STORED_FIELDS, article_name)
    vector = history_vector(article.get("vector")) if isinstance(article, Mapping) else None
    if vector is not None:
        fields["vector"] = vector
    else:
        fields.pop("vector_encoder", None)  # a stamp without its vector means nothing
    aid = fields.pop("id")
    doc = {"v": 1, "id": aid, "f": fields, "t": when, "d": dwell}
    data = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    encoded = data.encode("utf-8")  # check_fields refused what UTF-8 cannot encode
    if len(encoded) > MAX_EVENT_BYTES:
        raise InvalidInputError(f"{article_name} encodes to more than {MAX_EVENT_BYTES} bytes")
    return encoded


def encode_batch(articles: object, at: object, dwell_s: object, now: float) -> list[bytes]:
    """The plaintexts of a batch (:meth:`~edgerec.ReadingHistory.record_many`), every
    event checked before any is encrypted; messages name the index (``articles[3]['id']``,
    ``at[3]``).

    Args:
        articles: a list or tuple of article mappings.
        at: ``None`` (``now`` for every event), one time for every event, or a list or tuple
            of times, one per article.
        dwell_s: ``None``, one dwell for every event, or a list or tuple, one per article.
        now: the time an event without ``at`` gets.

    Raises:
        InvalidTypeError, InvalidInputError: a bad batch or value, named.
    """
    if not isinstance(articles, list | tuple):
        raise InvalidTypeError(f"articles: expected a list or tuple, got {type(articles).__name__}")
    n = len(articles)
    times = _per_event("at", now if at is None else at, n)
    dwells = _per_event("dwell_s", dwell_s, n)
    return [
        encode_event(a, t, d, names=(f"articles[{i}]", f"at[{i}]", f"dwell_s[{i}]"))
        for i, (a, t, d) in enumerate(zip(articles, times, dwells, strict=True))
    ]


def _per_event(name: str, value: object, n: int) -> Sequence[object]:
    """One value per event: a list or tuple of ``n`` values, or one value repeated."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise InvalidInputError(f"{name}: {len(value)} values for {n} articles")
        return value
    return [value] * n


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


def export_json(
    profile: str, events: Sequence[HistoryEvent], impressions: Sequence[Any] = ()
) -> str:
    """The export document: ``{"format": "edgerec.history.export", "version": 1,
    "profile": name, "events": [{"seq", "article_id", "features", "at", "dwell_s"}, ...],
    "impressions": [{"at", "ids", "read", ...}, ...]}`` (the impression log's records,
    :meth:`edgerec.history.impressions.Impression.to_json`).
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
        "impressions": list(impressions),
    }
    return json.dumps(doc, ensure_ascii=False, allow_nan=False)
