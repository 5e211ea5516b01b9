"""The history store's SQLite layer: schema migrations, pragmas, and error translation.

Schema changes go through sqlite-utils' built-in :class:`sqlite_utils.Migrations` (the
``sqlite-migrate`` package is now only a compatibility shim over it), recorded in the
``_sqlite_migrations`` table. Table and column names are constants here; nothing from the
caller is ever formatted into SQL.

What a reader of the file can see: the tables below, the number of profiles and of events
per profile, each ciphertext's length and sequence number, which key id encrypted it, and
the time the schema was created (``_sqlite_migrations.applied_at``). Everything a reader
read, the profile names and the event times are inside AES-256-GCM ciphertexts.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Final

from ..errors import (
    HistoryError,
    ReadOnlyStorageError,
    StorageBusyError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageIOError,
)

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

__all__ = ["FORMAT_VERSION", "MIGRATION_SET", "apply_migrations", "pending_migrations", "translate"]

FORMAT_VERSION: Final = 1
MIGRATION_SET: Final = "edgerec.history"
MIGRATIONS_TABLE: Final = "_sqlite_migrations"  # sqlite-utils' own table name


def _initial(db: Database) -> None:
    # store-level records: format version, store id, KDF parameters, key-check canary,
    # the wrapped store key, the rollback generation and its MAC.
    db.table("store_meta").create({"name": str, "value": bytes}, pk="name")
    # one row per profile: pseudonymous id, encrypted name, wrapped MAC key, and the head
    # record (count, last seq, keyed digest of the rows, key uses) with its MAC.
    db.table("profiles").create(
        {
            "pid": bytes,
            "name_ct": bytes,
            "mac_key": bytes,
            "active_key_id": int,
            "count": int,
            "last_seq": int,
            "digest": bytes,
            "key_uses": int,
            "head_mac": bytes,
        },
        pk="pid",
    )
    # wrapped data keys; two per profile only while a rotation is re-encrypting.
    db.table("profile_keys").create(
        {"pid": bytes, "key_id": int, "wrapped": bytes}, pk=("pid", "key_id")
    )
    db.table("events").create(
        {"pid": bytes, "seq": int, "key_id": int, "blob": bytes}, pk=("pid", "seq")
    )
    # profiles whose erasure was started: the scrub is finished on the next open.
    db.table("erase_journal").create({"pid": bytes}, pk="pid")


# In order; a new schema version appends here (and bumps FORMAT_VERSION if old SDKs must
# refuse the file).
_STEPS: Final = (("0001_initial", _initial),)


def _migrations() -> Migrations:
    # sqlite-utils is imported only when a store is created or migrated: opening an
    # up-to-date store (the kiosk's cold start) needs no sqlite-utils at all.
    from sqlite_utils import Migrations

    migrations = Migrations(MIGRATION_SET)
    for name, step in _STEPS:
        migrations(name=name)(step)
    return migrations


def pending_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations not yet applied (plain SQL on sqlite-utils' table)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
    ).fetchone()
    applied = set()
    if exists:
        applied = {
            r[0]
            for r in conn.execute(
                f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ?", (MIGRATION_SET,)
            )
        }
    return [name for name, _ in _STEPS if name not in applied]


def apply_migrations(conn: sqlite3.Connection) -> None:
    """Apply the pending migrations through sqlite-utils (inside the caller's transaction:
    sqlite-utils nests them as savepoints)."""
    from sqlite_utils import Database

    _migrations().apply(Database(conn))


# SQLite primary result codes (https://sqlite.org/rescode.html).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


_SCHEMA_DAMAGE: Final = ("no such table", "no such column", "already exists", "could not decode")


def translate(exc: sqlite3.Error) -> HistoryError:
    """The edgerec error for a sqlite3 exception. The message is fixed text: SQLite's own
    messages hold no user data today, but nothing obliges them not to."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary in (_BUSY, _LOCKED) or "locked" in text or "busy" in text:
        return StorageBusyError("the history database stayed locked past busy_timeout")
    if primary == _FULL or "disk is full" in text:
        return StorageFullError("the disk or the history's max_bytes quota is full")
    if primary == _READONLY or "readonly" in text:
        return ReadOnlyStorageError("the history database is read-only")
    if (
        primary in (_CORRUPT, _NOTADB)
        or "malformed" in text
        or "not a database" in text
        # this SDK's schema is fixed: a missing or doubled table or column, or undecodable
        # schema text, means the file's schema pages were damaged
        or any(sign in text for sign in _SCHEMA_DAMAGE)
    ):
        return StorageCorruptError("the history database file is damaged or not a database")
    if primary == _IOERR:
        return StorageIOError("the operating system reported an I/O error on the history")
    if primary == _CANTOPEN:
        return StorageError("the history database file cannot be opened")
    name = getattr(exc, "sqlite_errorname", type(exc).__name__)
    return StorageError(f"the history database failed ({name})")
