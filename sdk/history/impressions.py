"""Each profile's impression log: which articles a ``recommend()`` call returned, in which
order, which of them the reader then read, and (while a candidate model is in shadow) how
the candidate ordered the same articles. What :mod:`edgerec.shadow` measures models on.

Owns: the log's records, their limits and JSON layout, and its sealed row. May touch: the
``impressions`` table, one row per profile, inside the caller's transaction.

Stored in pages of :data:`PAGE` impressions (by their sequence number in the profile),
one AES-256-GCM ciphertext per page (``impressions(pid, page, blob)``), under a subkey of
the store key (HKDF ``"impressions"``) with the profile id and the page number in the
associated data: a page cannot be moved to another profile or place, and every device
profile's log can be read for the device-wide shadow totals. A save writes only the pages
that changed (a read marks one impression: one page). A modified, truncated or swapped
ciphertext fails authentication: the whole log is then discarded (logged by type, never
trusted) and starts again; the reading history is not affected. Deleting a page, or
putting back an older ciphertext of the same page, is not detected (it only loses
impressions: nothing can be forged without the key). Erasing a profile deletes its pages
in the erase transaction.

Bounded: the newest ``max_impressions`` (default :data:`MAX_IMPRESSIONS`) records, each
with at most :data:`MAX_SHOWN` ids (the first ranks of the call).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import sqlite3
import struct
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
    "PAGE",
    "READ_WINDOW_S",
    "Impression",
    "ImpressionLog",
    "decode_page",
    "delete",
    "encode_page",
    "load",
    "load_all",
    "saved",
    "store",
]

log = logging.getLogger("edgerec.history")

LOG_FORMAT: Final = 1
MAX_IMPRESSIONS: Final = 2_000  # kept per profile (the oldest dropped first)
MAX_SHOWN: Final = 100  # ids kept per impression: the first ranks of the call
PAGE: Final = 100  # impressions per stored page
READ_WINDOW_S: Final = 24 * 3600.0  # a read counts for an impression up to this long after
_AAD: Final = b"edgerec/history/impressions/v1"
_PAGE_KEY: Final = struct.Struct(">Q").pack


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
    seq: int = -1  # its number in the profile's log (which page keeps it); -1: not yet

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
    """The active profile's impressions in memory, oldest first, and which stored pages
    they changed (not thread-safe: the history's lock guards it)."""

    def __init__(
        self,
        items: Sequence[Impression] = (),
        *,
        max_impressions: int = MAX_IMPRESSIONS,
        window_s: float = READ_WINDOW_S,
    ) -> None:
        self.max_impressions = max_impressions
        self.window_s = window_s
        self.items: list[Impression] = []
        self.next_seq = 0
        self.dirty: set[int] = set()  # pages to write (or delete, when emptied)
        self.changes = 0  # impressions added, marked or dropped since the last save
        self.rewrite = False  # the stored pages are not to be trusted: replace them all
        self.discarded = False  # the stored log failed authentication and was dropped
        for impression in items:
            self.add(impression)

    @property
    def unsaved(self) -> int:
        """Changes since the last save (0: nothing to write)."""
        return self.changes + self.rewrite

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Impression]:
        return iter(self.items)

    def _touch(self, impression: Impression) -> None:
        self.dirty.add(impression.seq // PAGE)
        self.changes += 1

    def add(self, impression: Impression) -> None:
        impression.seq = self.next_seq
        self.next_seq += 1
        self.items.append(impression)
        self._touch(impression)
        if len(self.items) > self.max_impressions:
            self._drop([imp for imp in self.items[: len(self.items) - self.max_impressions]])

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
                self._touch(imp)
                return imp
        return None

    def forget(self, article_id: str) -> int:
        """Drop every impression that showed ``article_id``; how many."""
        return self._drop([imp for imp in self.items if article_id in imp.ids])

    def drop_before(self, cutoff: float) -> int:
        """Drop impressions served before ``cutoff`` (the history's ``max_age_s``)."""
        return self._drop([imp for imp in self.items if imp.at < cutoff])

    def _drop(self, doomed: Sequence[Impression]) -> int:
        if doomed:
            gone = {id(imp) for imp in doomed}
            self.items = [imp for imp in self.items if id(imp) not in gone]
            for imp in doomed:
                self._touch(imp)
        return len(doomed)

    def page(self, number: int) -> list[Impression]:
        """The impressions stored in page ``number`` (seq // PAGE), oldest first."""
        seqs = [imp.seq for imp in self.items]
        lo = bisect.bisect_left(seqs, number * PAGE)
        hi = bisect.bisect_left(seqs, (number + 1) * PAGE)
        return self.items[lo:hi]

    def to_json(self) -> list[dict[str, Any]]:
        return [imp.to_json() for imp in self.items]


def encode_page(number: int, items: Sequence[Impression]) -> bytes:
    docs = [{**imp.to_json(), "seq": imp.seq} for imp in items]
    doc = {"format": LOG_FORMAT, "page": number, "impressions": docs}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def decode_page(number: int, plaintext: bytes) -> list[Impression]:
    """Raises IntegrityError: not page ``number`` as this SDK wrote it."""
    from .._json import StrictJSONError, loads_strict

    try:
        doc = loads_strict(plaintext)
    except StrictJSONError:
        raise IntegrityError("the impression log is malformed") from None
    if not isinstance(doc, dict) or doc.get("format") != LOG_FORMAT or doc.get("page") != number:
        raise IntegrityError("the impression log has an unknown format")
    docs = doc.get("impressions")
    if not isinstance(docs, list) or not docs or len(docs) > PAGE:
        raise IntegrityError("the impression log is malformed")
    items: list[Impression] = []
    for entry in docs:
        impression = Impression.from_json(entry)
        seq = entry.get("seq")
        if type(seq) is not int or seq // PAGE != number or (items and seq <= items[-1].seq):
            raise IntegrityError("the impression log is malformed")
        impression.seq = seq
        items.append(impression)
    return items


# ------------------------------------------------------------------ the stored pages
def _aad(pid: bytes, page: int) -> bytes:
    return _AAD + pid + _PAGE_KEY(page)


def store(
    conn: sqlite3.Connection,
    key: bytes,
    pid: bytes,
    log_: ImpressionLog,
    random_bytes: crypto.RandomBytes,
) -> None:
    """Write the pages of ``log_`` that changed (all of them after a discard) as profile
    ``pid``'s (caller's transaction); emptied pages are deleted."""
    if log_.rewrite:
        conn.execute("DELETE FROM impressions WHERE pid = ?", (pid,))
        pages = {imp.seq // PAGE for imp in log_.items}
    else:
        pages = set(log_.dirty)
    for number in sorted(pages):
        items = log_.page(number)
        if not items:
            conn.execute("DELETE FROM impressions WHERE pid = ? AND page = ?", (pid, number))
            continue
        blob = crypto.wrap(key, encode_page(number, items), _aad(pid, number), random_bytes)
        conn.execute(
            "INSERT INTO impressions (pid, page, blob) VALUES (?, ?, ?) "
            "ON CONFLICT(pid, page) DO UPDATE SET blob = excluded.blob",
            (pid, number, blob),
        )


def saved(log_: ImpressionLog) -> None:
    """``log_`` was stored: nothing is pending."""
    log_.dirty.clear()
    log_.changes = 0
    log_.rewrite = False


def load(conn: sqlite3.Connection, key: bytes, pid: bytes, **options: Any) -> ImpressionLog:
    """Profile ``pid``'s log; an empty one when it has none (or the file predates the
    table). A log one of whose pages fails authentication or parsing is discarded: an
    empty log with ``discarded`` set comes back (its next save replaces every page), and
    the failure is logged by type only."""
    if not _has_table(conn):
        return ImpressionLog(**options)
    rows = conn.execute(
        "SELECT page, blob FROM impressions WHERE pid = ? ORDER BY page", (pid,)
    ).fetchall()
    return _opened(key, pid, rows, options)


def load_all(conn: sqlite3.Connection, key: bytes, **options: Any) -> dict[bytes, ImpressionLog]:
    """Every profile's log by profile id (discarded ones empty)."""
    if not _has_table(conn):
        return {}
    by_pid: dict[bytes, list[tuple[object, object]]] = {}
    for pid, page, blob in conn.execute(
        "SELECT pid, page, blob FROM impressions ORDER BY pid, page"
    ):
        if type(pid) is bytes:
            by_pid.setdefault(pid, []).append((page, blob))
    return {pid: _opened(key, pid, rows, options) for pid, rows in by_pid.items()}


def delete(conn: sqlite3.Connection, pid: bytes) -> None:
    """Profile ``pid``'s log is gone (its erasure; caller's transaction)."""
    if _has_table(conn):
        conn.execute("DELETE FROM impressions WHERE pid = ?", (pid,))


def _opened(
    key: bytes, pid: bytes, rows: Sequence[Sequence[object]], options: dict[str, Any]
) -> ImpressionLog:
    try:
        items: list[Impression] = []
        for page, blob in rows:
            if type(page) is not int or not 0 <= page < 2**62:
                raise IntegrityError("an impression page number is malformed")
            sealed = stored_bytes(blob, "the impression log")
            plain = crypto.unwrap(key, sealed, _aad(pid, page), what="impression log")
            items += decode_page(page, plain)
    except IntegrityError as exc:
        log.error("IntegrityError: a profile's impression log was discarded (%s)", exc)
        fresh = ImpressionLog(**options)
        fresh.discarded = fresh.rewrite = True  # the next save replaces every page
        return fresh
    restored = ImpressionLog(**options)
    restored.items = items
    restored.next_seq = items[-1].seq + 1 if items else 0
    return restored


def _has_table(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'impressions'"
        ).fetchone()
        is not None
    )
