"""Each profile's impression log: which articles a ``recommend()`` call returned, in which
order, which of them the reader then read, and (while a candidate model is in shadow) how
the candidate ordered the same articles. What :mod:`edgerec.shadow` measures models on.

Owns: the log's records, their limits and JSON layout, and its sealed row. May touch: the
``impressions`` table, one row per profile, inside the caller's transaction.

Stored as one AES-256-GCM ciphertext per profile (``impressions(pid, blob)``), under a
subkey of the store key (HKDF ``"impressions"``) with the profile id in the associated
data, so a log cannot be moved to another profile and every device profile's log can be
read for the device-wide shadow totals. A modified, truncated or swapped ciphertext fails
authentication: the log is then discarded (logged by type, never trusted) and starts
again; the reading history is not affected. Deleting the row, or putting back an older
ciphertext of the same profile, is not detected (it only loses impressions: nothing can
be forged without the key). Erasing a profile deletes its row in the erase transaction.

Bounded: the newest ``max_impressions`` (default :data:`MAX_IMPRESSIONS`) records, each
with at most :data:`MAX_SHOWN` ids (the first ranks of the call).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from ..errors import IntegrityError
from . import crypto
from .limits import MAX_ID_CHARS
from .schema import stored_bytes

__all__ = [
    "LOG_FORMAT",
    "MAX_IMPRESSIONS",
    "MAX_SHOWN",
    "READ_WINDOW_S",
    "Impression",
    "ImpressionLog",
    "delete",
    "load",
    "load_all",
    "store",
]

log = logging.getLogger("edgerec.history")

LOG_FORMAT: Final = 1
MAX_IMPRESSIONS: Final = 2_000  # kept per profile (the oldest dropped first)
MAX_SHOWN: Final = 100  # ids kept per impression: the first ranks of the call
READ_WINDOW_S: Final = 24 * 3600.0  # a read counts for an impression up to this long after
_AAD: Final = b"edgerec/history/impressions/v1"


@dataclass(slots=True)
class Impression:
    """One ``recommend()`` call as the log keeps it.

    Attributes:
        at: when it was served (epoch seconds: the call's ``now``).
        ids: the returned ids, rank 1 first (at most :data:`MAX_SHOWN`).
        read: indices into ``ids`` the reader read within the window.
        active: the model version that answered the call (0: none).
        candidate: the model version that shadow-scored the call, 0 when none did.
        candidate_ranks: with a candidate, its order of ``ids`` (1 = it ranks that
            article first among them); empty otherwise.
        agreement: with a candidate, the share of the call's top ``len(ids)`` that both
            models return.
    """

    at: float
    ids: tuple[str, ...]
    read: list[int] = field(default_factory=list)
    active: int = 0
    candidate: int = 0
    candidate_ranks: tuple[int, ...] = ()
    agreement: float = 0.0

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"at": self.at, "ids": list(self.ids), "read": sorted(self.read)}
        if self.active:
            doc["active"] = self.active
        if self.candidate:
            doc["candidate"] = self.candidate
            doc["candidate_ranks"] = list(self.candidate_ranks)
            doc["agreement"] = self.agreement
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Impression:
        """One record as stored; anything else is tampering (raises IntegrityError)."""
        if not isinstance(doc, dict):
            raise IntegrityError("an impression record is malformed")
        at, ids, read = doc.get("at"), doc.get("ids"), doc.get("read")
        if not _is_number(at) or not math.isfinite(at):
            raise IntegrityError("an impression record is malformed")
        if not isinstance(ids, list) or len(ids) > MAX_SHOWN or not all(_is_id(i) for i in ids):
            raise IntegrityError("an impression record is malformed")
        if not isinstance(read, list) or not all(_index(r, len(ids)) for r in read):
            raise IntegrityError("an impression record is malformed")
        imp = cls(float(at), tuple(ids), sorted(set(read)))
        active = doc.get("active", 0)
        if type(active) is not int or active < 0:
            raise IntegrityError("an impression record is malformed")
        imp.active = active
        candidate = doc.get("candidate", 0)
        if candidate:
            ranks, agreement = doc.get("candidate_ranks"), doc.get("agreement")
            if (
                type(candidate) is not int
                or candidate < 1
                or not isinstance(ranks, list)
                or sorted(ranks) != list(range(1, len(ids) + 1))
                or not _is_number(agreement)
                or not 0.0 <= agreement <= 1.0
            ):
                raise IntegrityError("an impression record is malformed")
            imp.candidate, imp.candidate_ranks = candidate, tuple(ranks)
            imp.agreement = float(agreement)
        return imp


def _is_number(value: object) -> TypeGuard[float]:
    return type(value) in (int, float)


def _is_id(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID_CHARS


def _index(value: object, n: int) -> bool:
    return type(value) is int and 0 <= value < n


class ImpressionLog:
    """The active profile's impressions in memory, oldest first (not thread-safe: the
    history's lock guards it)."""

    def __init__(
        self,
        items: Sequence[Impression] = (),
        *,
        max_impressions: int = MAX_IMPRESSIONS,
        window_s: float = READ_WINDOW_S,
    ) -> None:
        self.max_impressions = max_impressions
        self.window_s = window_s
        self.items: list[Impression] = list(items)[-max_impressions:]
        self.unsaved = 0  # changes since the last save
        self.discarded = False  # the stored log failed authentication and was dropped

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Impression]:
        return iter(self.items)

    def add(self, impression: Impression) -> None:
        self.items.append(impression)
        if len(self.items) > self.max_impressions:
            del self.items[: len(self.items) - self.max_impressions]
        self.unsaved += 1

    def mark_read(self, article_id: str, at: float) -> Impression | None:
        """Count a read of ``article_id`` at ``at`` for the newest impression that showed
        it within the window before; that impression, or None."""
        for imp in reversed(self.items):
            if imp.at > at:
                continue
            if at - imp.at > self.window_s:
                return None  # older ones are further out of the window
            if article_id in imp.ids:
                index = imp.ids.index(article_id)
                if index in imp.read:
                    return None
                imp.read.append(index)
                imp.read.sort()
                self.unsaved += 1
                return imp
        return None

    def forget(self, article_id: str) -> int:
        """Drop every impression that showed ``article_id``; how many."""
        kept = [imp for imp in self.items if article_id not in imp.ids]
        dropped = len(self.items) - len(kept)
        if dropped:
            self.items = kept
            self.unsaved += 1
        return dropped

    def drop_before(self, cutoff: float) -> int:
        """Drop impressions served before ``cutoff`` (the history's ``max_age_s``)."""
        kept = [imp for imp in self.items if imp.at >= cutoff]
        dropped = len(self.items) - len(kept)
        if dropped:
            self.items = kept
            self.unsaved += 1
        return dropped

    def to_json(self) -> list[dict[str, Any]]:
        return [imp.to_json() for imp in self.items]

    def encode(self) -> bytes:
        doc = {"format": LOG_FORMAT, "impressions": self.to_json()}
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def decode(cls, plaintext: bytes, **options: Any) -> ImpressionLog:
        """Raises IntegrityError: not a log this SDK wrote."""
        from .._json import StrictJSONError, loads_strict

        try:
            doc = loads_strict(plaintext)
        except StrictJSONError:
            raise IntegrityError("the impression log is malformed") from None
        if not isinstance(doc, dict) or doc.get("format") != LOG_FORMAT:
            raise IntegrityError("the impression log has an unknown format")
        items = doc.get("impressions")
        if not isinstance(items, list):
            raise IntegrityError("the impression log is malformed")
        return cls([Impression.from_json(d) for d in items], **options)


# ------------------------------------------------------------------ the stored row
def _aad(pid: bytes) -> bytes:
    return _AAD + pid


def store(
    conn: sqlite3.Connection,
    key: bytes,
    pid: bytes,
    impressions: ImpressionLog,
    random_bytes: crypto.RandomBytes,
) -> None:
    """Seal and write ``impressions`` as profile ``pid``'s log (caller's transaction)."""
    blob = crypto.wrap(key, impressions.encode(), _aad(pid), random_bytes)
    conn.execute(
        "INSERT INTO impressions (pid, blob) VALUES (?, ?) "
        "ON CONFLICT(pid) DO UPDATE SET blob = excluded.blob",
        (pid, blob),
    )


def load(conn: sqlite3.Connection, key: bytes, pid: bytes, **options: Any) -> ImpressionLog:
    """Profile ``pid``'s log; an empty one when it has none (or the file predates the
    table). A log that fails authentication or parsing is discarded: an empty log with
    ``discarded`` set comes back, and the failure is logged by type only."""
    if not _has_table(conn):
        return ImpressionLog(**options)
    row = conn.execute("SELECT blob FROM impressions WHERE pid = ?", (pid,)).fetchone()
    if row is None:
        return ImpressionLog(**options)
    return _opened(key, pid, row[0], options)


def load_all(conn: sqlite3.Connection, key: bytes, **options: Any) -> dict[bytes, ImpressionLog]:
    """Every profile's log by profile id (discarded ones empty)."""
    if not _has_table(conn):
        return {}
    out = {}
    for pid, blob in conn.execute("SELECT pid, blob FROM impressions").fetchall():
        if type(pid) is bytes:
            out[pid] = _opened(key, pid, blob, options)
    return out


def delete(conn: sqlite3.Connection, pid: bytes) -> None:
    """Profile ``pid``'s log is gone (its erasure; caller's transaction)."""
    if _has_table(conn):
        conn.execute("DELETE FROM impressions WHERE pid = ?", (pid,))


def _opened(key: bytes, pid: bytes, blob: object, options: dict[str, Any]) -> ImpressionLog:
    try:
        sealed = stored_bytes(blob, "the impression log")
        return ImpressionLog.decode(
            crypto.unwrap(key, sealed, _aad(pid), what="impression log"), **options
        )
    except IntegrityError as exc:
        log.error("IntegrityError: a profile's impression log was discarded (%s)", exc)
        fresh = ImpressionLog(**options)
        fresh.discarded = True
        fresh.unsaved = 1  # the next save replaces the bad row
        return fresh


def _has_table(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'impressions'"
        ).fetchone()
        is not None
    )
