"""Profiles: pseudonyms, encrypted names, per-profile keys, and the head record that makes
a profile's rows tamper-evident as a whole.

Owns: the ``profiles`` and ``profile_keys`` tables, and the bookkeeping of the ``events``
and ``removed`` rows of a profile (every insert and delete goes through :class:`Profile`,
which keeps the head record and the removal log in step). May touch: those tables inside
the caller's transaction, and :mod:`~edgerec.history.crypto` for every wrap, unwrap and
MAC. Never decrypts an event. What the floor and the removal log prove, and how a read
checks it, is :mod:`~edgerec.history.window`.

A profile is named in the file only by ``pid = HMAC(pseudonym key, name)[:16]``; its name is
stored encrypted. It has one MAC key for as long as it lives and one data key per key id
(two only while a rotation re-encrypts). Its head record holds::

    active key id, row count, last seq, key uses, floor (format 2),
    digest   = XOR over its rows of HMAC(mac key, "row", pid, seq, key id, blob)
    head_mac = HMAC(mac key, "head/v2", pid, the five numbers, digest)
               (a format-1 head, floor NULL: HMAC(mac key, "head", pid, the four, digest))

and every seq in (floor, last seq] is either a row or an entry of the removal log
(``removed``: pid, seq, HMAC(mac key, "removed", pid, seq)), never both. A deleted,
truncated, replaced (even by an older authentic copy of itself) or moved row changes the
count or the digest; any edit of the head fails its MAC.
"""

from __future__ import annotations

import secrets
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ..errors import IntegrityError, ProfileErasedError, ReadOnlyStorageError
from . import crypto
from .connection import Database
from .keys import StoreKeys
from .rollback import Generation
from .schema import stored_bytes

__all__ = ["ZERO_DIGEST", "Head", "Profile", "activate", "create", "find", "names", "pseudonym"]

ZERO_DIGEST: Final = bytes(32)
_HEAD_COLUMNS: Final = "active_key_id, count, last_seq, digest, key_uses"
_HEAD_SQL: Final = f"SELECT {_HEAD_COLUMNS}, floor, head_mac FROM profiles WHERE pid = ?"
_HEAD_SQL_V1: Final = f"SELECT {_HEAD_COLUMNS}, NULL, head_mac FROM profiles WHERE pid = ?"
_OLDEST_FIRST: Final = "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq LIMIT ?"
_NEWEST_FIRST: Final = (
    "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq DESC LIMIT ?"
)


@dataclass
class Head:
    """A profile's head record (see the module docstring), as the writers update it.

    ``floor`` is ``None`` for a format-1 head (no removal log yet); such a profile is
    upgraded when it is next opened for writing (:func:`~edgerec.history.window.upgrade`).
    """

    active_key_id: int
    count: int
    last_seq: int
    digest: bytes
    key_uses: int
    floor: int | None = None

    @property
    def removed(self) -> int:
        """How many entries the removal log must hold: seqs in (floor, last seq] that are
        not rows."""
        return self.last_seq - (self.floor or 0) - self.count

    def row(self, head_mac: bytes) -> tuple[Any, ...]:
        """The ``profiles`` columns as SQLite returns them (the head cache's key)."""
        return (
            self.active_key_id,
            self.count,
            self.last_seq,
            self.digest,
            self.key_uses,
            self.floor,
            head_mac,
        )


# ------------------------------------------------------------ store-wide lookups
def pseudonym(key: bytes, name: str) -> bytes:
    """The 16-byte pseudonymous id of profile ``name`` (a keyed hash: not reversible
    without the store key, not linkable across stores)."""
    return crypto.mac(key, b"profile", name.encode("utf-8"))[:16]


def find(conn: sqlite3.Connection, pid: bytes) -> bytes | None:
    """The profile's wrapped MAC key, or ``None`` if there is no such profile."""
    row = conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (pid,)).fetchone()
    return None if row is None else stored_bytes(row[0], "the profile's MAC key")


def names(conn: sqlite3.Connection, keys: StoreKeys) -> list[str]:
    """The names of every profile, decrypted, sorted.

    Raises:
        IntegrityError: a name or id failed authentication or is malformed.
    """
    out = []
    for pid, name_ct in conn.execute("SELECT pid, name_ct FROM profiles").fetchall():
        aad = b"name" + stored_bytes(pid, "a profile id")
        ct = stored_bytes(name_ct, "a profile name")
        out.append(crypto.unwrap(keys.names, ct, aad, what="profile name").decode("utf-8"))
    return sorted(out)


def create(
    conn: sqlite3.Connection,
    keys: StoreKeys,
    name: str,
    pid: bytes,
    random_bytes: crypto.RandomBytes,
) -> bytes:
    """Add profile ``name`` (a new MAC key, data key 1, an empty head); return its wrapped
    MAC key. Inside the caller's transaction."""
    mac_key = random_bytes(crypto.KEY_BYTES)
    data_key = random_bytes(crypto.KEY_BYTES)
    name_ct = crypto.wrap(keys.names, name.encode("utf-8"), b"name" + pid, random_bytes)
    wrapped_mac = crypto.wrap(keys.wrap, mac_key, _wrap_aad(pid, b"mac"), random_bytes)
    head = Head(1, 0, 0, ZERO_DIGEST, 0, floor=0)
    conn.execute(
        "INSERT INTO profiles (pid, name_ct, mac_key, active_key_id, count, last_seq, "
        "digest, key_uses, floor, head_mac) VALUES (?, ?, ?, 1, 0, 0, ?, 0, 0, ?)",
        (pid, name_ct, wrapped_mac, ZERO_DIGEST, _head_mac(mac_key, pid, head)),
    )
    add_data_key(conn, keys.wrap, pid, 1, raw=data_key, random_bytes=random_bytes)
    return wrapped_mac


def add_data_key(
    conn: sqlite3.Connection,
    wrap_key: bytes,
    pid: bytes,
    key_id: int,
    *,
    raw: bytes,
    random_bytes: crypto.RandomBytes,
) -> None:
    """Store data key ``key_id`` of the profile, wrapped."""
    wrapped = crypto.wrap(wrap_key, raw, _wrap_aad(pid, b"data", key_id), random_bytes)
    conn.execute(
        "INSERT INTO profile_keys (pid, key_id, wrapped) VALUES (?, ?, ?)", (pid, key_id, wrapped)
    )


def _wrap_aad(pid: bytes, what: bytes, key_id: int = 0) -> bytes:
    return b"edgerec/history/wrap/" + what + b"\x00" + pid + struct.pack(">I", key_id)


def _head_mac(mac_key: bytes, pid: bytes, head: Head) -> bytes:
    fields = struct.pack(">IQQQ", head.active_key_id, head.count, head.last_seq, head.key_uses)
    if head.floor is None:  # format 1
        return crypto.mac(mac_key, b"head", pid, fields, head.digest)
    floor = struct.pack(">Q", head.floor)
    return crypto.mac(mac_key, b"head/v2", pid, fields, floor, head.digest)


def activate(
    db: Database,
    keys: StoreKeys,
    gen: Generation,
    name: str,
    random_bytes: crypto.RandomBytes,
    *,
    has_window: bool,
) -> Profile:
    """Profile ``name`` (created if new, in its own transaction), its keys unwrapped and
    its head authenticated.

    Raises:
        ReadOnlyStorageError: a new profile in a read-only store.
        IntegrityError: a wrapped key or the head record failed authentication.
    """
    pid = pseudonym(keys.pseudonym, name)
    with db.read() as conn:
        wrapped = find(conn, pid)
    if wrapped is None:
        if db.read_only:
            raise ReadOnlyStorageError("this profile does not exist and the store is read-only")
        with db.write() as conn:
            wrapped = find(conn, pid)
            if wrapped is None:
                wrapped = create(conn, keys, name, pid, random_bytes)
                # Not advanced here: the next write's advance (or the next open, which
                # finds the store ahead of the counter) covers this generation.
                gen.bump(conn)
    prof = Profile(name, pid, wrapped, keys.wrap, has_window=has_window)
    with db.read() as conn:
        prof.load_keys(conn)
        prof.load_head(conn)
    return prof


# ------------------------------------------------------------ the active profile
class Profile:
    """The active profile of one handle: its keys (unwrapped) and its head record.

    Dropping the object drops the keys and the head cache together, so a handle never
    holds two profiles' keys at once (E5, E6).
    """

    def __init__(
        self,
        name: str,
        pid: bytes,
        wrapped_mac_key: bytes,
        wrap_key: bytes,
        *,
        has_window: bool = True,
    ) -> None:
        """Unwrap the profile's MAC key (its data keys come with :meth:`load_keys`).

        ``has_window``: the file has the floor column and the removal log (False only for
        a format-1 store opened read-only, which cannot be migrated).

        Raises:
            IntegrityError: the wrapped MAC key failed authentication.
        """
        self.name = name
        self.pid = pid
        self.has_window = has_window
        self._head_sql = _HEAD_SQL if has_window else _HEAD_SQL_V1
        self.wrapped_mac_key = wrapped_mac_key
        self._wrap_key = wrap_key
        self.mac_key = crypto.unwrap(
            wrap_key, wrapped_mac_key, _wrap_aad(pid, b"mac"), what="profile MAC key"
        )
        self.keys: dict[int, crypto.DataKey] = {}
        self.gone = False  # set by erased(): the keys are dropped
        # The last head row read or written, with its parsed record: a read that finds the
        # same bytes skips one HMAC. Any byte that differs (another writer, tampering) is
        # verified again.
        self.head_cache: tuple[tuple[Any, ...], Head] | None = None

    def __repr__(self) -> str:
        return "Profile(<hidden>)"

    def load_keys(self, conn: sqlite3.Connection) -> None:
        """Unwrap every data key of the profile (one, or two during a rotation).

        Raises:
            IntegrityError: a key id or wrapped key is malformed or fails authentication.
        """
        keys: dict[int, crypto.DataKey] = {}
        for key_id, wrapped in conn.execute(
            "SELECT key_id, wrapped FROM profile_keys WHERE pid = ?", (self.pid,)
        ):
            if type(key_id) is not int or not 0 <= key_id <= crypto.MAX_KEY_ID:
                raise IntegrityError("a profile data key has an invalid key id")
            raw = crypto.unwrap(
                self._wrap_key,
                stored_bytes(wrapped, "a profile data key"),
                _wrap_aad(self.pid, b"data", key_id),
                what="profile data key",
            )
            keys[key_id] = crypto.data_key(raw)
        self.keys = keys

    def add_key(
        self, conn: sqlite3.Connection, raw: bytes, random_bytes: crypto.RandomBytes
    ) -> int:
        """Store a new data key under the next key id; return the id. The caller loads it
        into :attr:`keys` once the rest of its transaction is written."""
        key_id = max(self.keys) + 1
        add_data_key(conn, self._wrap_key, self.pid, key_id, raw=raw, random_bytes=random_bytes)
        return key_id

    def load_head(self, conn: sqlite3.Connection) -> Head:
        """The head record, authenticated (a copy the caller may update).

        Raises:
            ProfileErasedError: the profile was erased (and perhaps made anew) by another
                handle; the keys are dropped.
            IntegrityError: the head record is malformed or fails its MAC, or its active
                data key is missing.
        """
        row = conn.execute(self._head_sql, (self.pid,)).fetchone()
        if row is None:
            raise self.erased()
        cached = self.head_cache
        if cached is not None and cached[0] == row:
            return replace(cached[1])
        key_id, count, last_seq, digest, key_uses, floor, head_mac = row
        ok = (
            type(key_id) is int
            and 0 <= key_id <= crypto.MAX_KEY_ID
            and all(
                type(v) is int and 0 <= v <= crypto.MAX_SEQ for v in (count, last_seq, key_uses)
            )
            and (floor is None or (type(floor) is int and 0 <= floor <= last_seq - count))
            and type(digest) is bytes
            and len(digest) == 32
            and type(head_mac) is bytes
        )
        if ok:
            head = Head(key_id, count, last_seq, digest, key_uses, floor)
            ok = secrets.compare_digest(head_mac, _head_mac(self.mac_key, self.pid, head))
        if not ok:
            if not self.exists(conn):
                raise self.erased()
            raise IntegrityError("the profile's head record failed authentication")
        self.head_cache = (tuple(row), replace(head))
        if head.active_key_id not in self.keys:
            self.load_keys(conn)  # another handle rotated the key
            if head.active_key_id not in self.keys:
                raise IntegrityError("the profile's active data key is missing")
        return head

    def exists(self, conn: sqlite3.Connection) -> bool:
        """Whether this profile (this incarnation: its wrapped MAC key) is still stored."""
        wrapped = conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (self.pid,))
        return bool(wrapped.fetchone() == (self.wrapped_mac_key,))

    def erased(self) -> ProfileErasedError:
        """Drop the keys and the head cache, and return the error to raise: the profile
        was erased (and perhaps made anew, with other keys) by this or another handle."""
        self.keys = {}
        self.mac_key = b""
        self.head_cache = None
        self.gone = True
        return ProfileErasedError("the active profile was erased; switch_profile() or reopen")

    def store_head(self, conn: sqlite3.Connection, head: Head) -> None:
        """Write ``head`` with its MAC (inside the caller's transaction)."""
        head_mac = _head_mac(self.mac_key, self.pid, head)
        if head.floor is None:  # a format-1 head keeps its format until upgraded
            conn.execute(
                "UPDATE profiles SET active_key_id = ?, count = ?, last_seq = ?, digest = ?, "
                "key_uses = ?, head_mac = ? WHERE pid = ?",
                (*head.row(head_mac)[:5], head_mac, self.pid),
            )
        else:
            conn.execute(
                "UPDATE profiles SET active_key_id = ?, count = ?, last_seq = ?, digest = ?, "
                "key_uses = ?, floor = ?, head_mac = ? WHERE pid = ?",
                (*head.row(head_mac), self.pid),
            )
        # Cached as the row SQLite will return, so the next read skips one HMAC.
        self.head_cache = (head.row(head_mac), replace(head))

    # ------------------------------------------------------------------ rows
    def rows(
        self, conn: sqlite3.Connection, *, limit: int = -1, newest_first: bool = False
    ) -> list[tuple[Any, ...]]:
        """The profile's event rows ``(seq, key_id, blob)`` in seq order, as stored
        (unchecked: :func:`~edgerec.history.crypto.open_records` checks them); ``limit``
        -1 is all of them."""
        sql = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
        return conn.execute(sql, (self.pid, limit)).fetchall()

    def row_mac(self, seq: int, key_id: int, blob: bytes) -> bytes:
        """The keyed MAC of one row, as XORed into the head digest."""
        return crypto.mac(self.mac_key, b"row", self.pid, struct.pack(">QI", seq, key_id), blob)

    def insert_row(
        self, conn: sqlite3.Connection, head: Head, seq: int, key_id: int, blob: bytes
    ) -> None:
        """Append an encrypted event and count it in ``head`` (the caller stores the head)."""
        conn.execute(
            "INSERT INTO events (pid, seq, key_id, blob) VALUES (?, ?, ?, ?)",
            (self.pid, seq, key_id, blob),
        )
        head.count += 1
        head.last_seq = seq
        head.key_uses += 1
        head.digest = crypto.xor32(head.digest, self.row_mac(seq, key_id, blob))

    def replace_row(
        self, conn: sqlite3.Connection, head: Head, old: crypto.Row, key_id: int, blob: bytes
    ) -> None:
        """Swap a row's ciphertext for one under ``key_id`` (a rotation) and re-digest it."""
        seq = old[0]
        conn.execute(
            "UPDATE events SET key_id = ?, blob = ? WHERE pid = ? AND seq = ?",
            (key_id, blob, self.pid, seq),
        )
        change = crypto.xor32(self.row_mac(*old), self.row_mac(seq, key_id, blob))
        head.digest = crypto.xor32(head.digest, change)
        head.key_uses += 1

    def removed_mac(self, seq: int) -> bytes:
        """The keyed MAC of the removal-log entry of ``seq``."""
        return crypto.mac(self.mac_key, b"removed", self.pid, struct.pack(">Q", seq))

    def delete_rows(
        self, conn: sqlite3.Connection, head: Head, rows: Sequence[crypto.Row], *, oldest: bool
    ) -> None:
        """Delete rows (``secure_delete`` zeroes them), take them out of ``head`` and keep
        the removal log in step (a format-1 head has none).

        ``oldest``: the rows are the profile's oldest (retention), so the floor moves up
        past them and nothing is logged; otherwise (``forget``) each gets a log entry.
        """
        log = head.floor is not None and not oldest
        for seq, key_id, blob in rows:
            head.digest = crypto.xor32(head.digest, self.row_mac(seq, key_id, blob))
            head.count -= 1
            conn.execute("DELETE FROM events WHERE pid = ? AND seq = ?", (self.pid, seq))
            if log:
                conn.execute(
                    "INSERT INTO removed (pid, seq, mac) VALUES (?, ?, ?)",
                    (self.pid, seq, self.removed_mac(seq)),
                )
        if rows:
            self.raise_floor(conn, head)

    def raise_floor(self, conn: sqlite3.Connection, head: Head) -> None:
        """Move the floor up to just below the oldest row left (or to the last seq), and
        drop the log entries it passes: the log holds only the removals it must.

        The oldest row is read unauthenticated: a row deleted by someone else is not in
        ``head.count``, so the floor moving past it leaves ``head.removed`` short of the
        log, which every read checks (:mod:`~edgerec.history.window`).
        """
        if head.floor is None:
            return
        (oldest,) = conn.execute(
            "SELECT min(seq) FROM events WHERE pid = ?", (self.pid,)
        ).fetchone()
        top = head.last_seq + 1 if type(oldest) is not int else min(oldest, head.last_seq + 1)
        # Never past what the count allows (only tampering gets there; reads then say so).
        floor = min(top - 1, head.last_seq - head.count)
        if floor > head.floor:
            head.floor = floor
            conn.execute("DELETE FROM removed WHERE pid = ? AND seq <= ?", (self.pid, head.floor))
