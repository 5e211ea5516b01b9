"""The history store's tables: schema migrations, the format record, ``store_meta``.

Owns: the table definitions, their migrations, the store's format version and the
``store_meta`` key-value records (read and written here for the modules that own each
record: keys, rollback). May touch: only the connection it is handed, inside the
caller's transaction; errors are translated by :mod:`~edgerec.history.connection`.

Schema changes go through sqlite-utils' built-in :class:`sqlite_utils.Migrations` (the
``sqlite-migrate`` package is now only a compatibility shim over it), recorded in the
``_sqlite_migrations`` table. Table and column names are constants here; nothing from the
caller is ever formatted into SQL.

What a reader of the file can see: the tables below, the number of profiles and of events
per profile, each ciphertext's length and sequence number, which key id encrypted it, which
sequence numbers were removed (``removed``, and each profile's floor), and the time the
schema was created (``_sqlite_migrations.applied_at``). Everything a reader
read, the profile names and the event times are inside AES-256-GCM ciphertexts.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Final

from ..errors import IntegrityError, StorageCorruptError, UnsupportedFormatError

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

__all__ = [
    "FORMAT_VERSION",
    "MIGRATION_SET",
    "apply_migrations",
    "check_format",
    "create",
    "has_window",
    "pending_migrations",
    "read_meta",
    "store_format",
    "stored_bytes",
    "tables",
    "write_meta",
]

FORMAT_VERSION: Final = 3
MIGRATION_SET: Final = "edgerec.history"
MIGRATIONS_TABLE: Final = "_sqlite_migrations"  # sqlite-utils' own table name


def _initial(db: Database) -> None:
    # store-level records: format version, store id, KDF parameters, key-check canary,
    # the wrapped store key, the rollback generation and its MAC.
    db.table("store_meta").create({"name": str, "value": bytes}, pk="name")
    # one row per profile: pseudonymous id, encrypted name, wrapped MAC key, and the head
    # record (count, last seq, keyed digest of the rows, key uses; the floor since 0002)
    # with its MAC.
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


def _window(db: Database) -> None:
    # The window proof (edgerec.history.window): each profile's head gains a floor (every
    # seq at or below it is gone) and the removal log, one MACed entry per removed seq
    # between the floor and the last seq. A NULL floor is a format-1 head, upgraded when
    # its profile is next opened for writing. Format 2: an older SDK would take the new
    # heads for tampering, so it refuses the file instead.
    db.execute("ALTER TABLE profiles ADD COLUMN floor INTEGER")
    db.execute(
        "CREATE TABLE removed (pid BLOB, seq INTEGER, mac BLOB, PRIMARY KEY (pid, seq)) "
        "WITHOUT ROWID"
    )
    write_meta(db.conn, "format", b"2")


def _impressions(db: Database) -> None:
    # Each profile's impression log (edgerec.history.impressions): one sealed row per page
    # of impressions. Format 3: an older SDK would leave a profile's log behind when it
    # erases the profile, so it refuses the file instead.
    db.execute(
        "CREATE TABLE impressions (pid BLOB, page INTEGER, blob BLOB, PRIMARY KEY (pid, page)) "
        "WITHOUT ROWID"
    )
    write_meta(db.conn, "format", b"3")


# In order; a new schema version appends here (and bumps FORMAT_VERSION if old SDKs must
# refuse the file).
_STEPS: Final = (
    ("0001_initial", _initial),
    ("0002_window", _window),
    ("0003_impressions", _impressions),
)


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


def create(conn: sqlite3.Connection) -> None:
    """Make a new store's tables and its format record (inside the caller's transaction)."""
    apply_migrations(conn)
    write_meta(conn, "format", str(FORMAT_VERSION).encode())


def has_window(conn: sqlite3.Connection) -> bool:
    """Whether migration ``0002_window`` was applied (a read-only handle on a format-1
    store cannot apply it, and reads without it)."""
    return "removed" in tables(conn)


def tables(conn: sqlite3.Connection) -> set[str]:
    """The names in ``sqlite_master`` (empty for a new file)."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def store_format(conn: sqlite3.Connection) -> bytes | None:
    """The format record, or ``None`` when the file holds no store (yet)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store_meta'"
    ).fetchone()
    return None if exists is None else read_meta(conn, "format")


def check_format(conn: sqlite3.Connection) -> None:
    """Refuse a store this SDK cannot read.

    Raises:
        StorageCorruptError: no valid format record.
        UnsupportedFormatError: a newer format.
    """
    fmt = read_meta(conn, "format")
    if fmt is None or not fmt.isdigit():
        raise StorageCorruptError("the history store has no valid format record")
    if int(fmt) > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"the history store has format {int(fmt)}; this SDK reads {FORMAT_VERSION}"
        )


def read_meta(conn: sqlite3.Connection, name: str) -> bytes | None:
    """The ``store_meta`` record ``name``, or ``None``.

    Raises:
        IntegrityError: the record is not a BLOB (tampering).
    """
    row = conn.execute("SELECT value FROM store_meta WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return stored_bytes(row[0], f"the store record {name!r}")


def write_meta(conn: sqlite3.Connection, name: str, value: bytes) -> None:
    """Insert or replace the ``store_meta`` record ``name``."""
    conn.execute(
        "INSERT INTO store_meta (name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def stored_bytes(value: object, what: str) -> bytes:
    """``value`` read from a BLOB column; anything else there (NULL, text, a number) is
    tampering: SQLite columns are not typed, so the SDK checks on the way out.

    Raises:
        IntegrityError: ``value`` is not ``bytes`` (the message says ``what`` it was).
    """
    if type(value) is not bytes:
        raise IntegrityError(f"{what} is malformed")
    return value
