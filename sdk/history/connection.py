"""The SQLite connection of a history store: the file, pragmas, transactions, and the one
place where ``sqlite3`` exceptions become edgerec errors.

Owns: the ``sqlite3.Connection``, the database file and its ``-wal``/``-shm`` companions
(created owner-only, never replaced: a damaged store is only moved aside by
:func:`quarantine`), the pragmas, the write and read transactions, WAL checkpoints and
``VACUUM``, the network-filesystem check. Knows no table of the store: the other modules
run their SQL inside :meth:`Database.write` / :meth:`Database.read` / :meth:`Database.sql`,
which translate every ``sqlite3`` error on the way out (:func:`translate`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from ..errors import (
    HistoryError,
    ReadOnlyStorageError,
    StorageBusyError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageIOError,
)

__all__ = ["NETWORK_FILESYSTEMS", "Database", "filesystem_type", "quarantine", "translate"]

# Filesystems where SQLite's WAL (shared memory between processes) is unsafe.
NETWORK_FILESYSTEMS: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs"}
)
_SUFFIXES: Final = ("", "-wal", "-shm")


class Database:
    """One connection to a history file (or to a private in-memory database for a guest).

    Every statement runs inside :meth:`sql` (or :meth:`write` / :meth:`read`, which use
    it), so no ``sqlite3`` exception escapes. The connection is used by one thread at a
    time: the store's lock serializes its callers.
    """

    conn: sqlite3.Connection

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        read_only: bool,
        guest: bool,
        created_file: Path | None,
        busy_ms: int = 0,
        path: Path | None = None,
    ) -> None:
        self.conn = conn
        self.path = path
        self.read_only = read_only
        self.guest = guest
        self.created_file = created_file  # our own new, empty file: removed if the open fails
        self.busy_ms = busy_ms
        # Rows were removed and their old bytes may still be in the WAL (a reader blocked
        # the checkpoint): the next write, scrub or close tries again.
        self.scrub_pending = False
        self._data_version: int | None = None

    # ------------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        path: Path | None,
        *,
        read_only: bool,
        busy_timeout_s: float,
        synchronous: str,
        max_bytes: int | None,
    ) -> Database:
        """Connect to ``path`` (``None``: a private in-memory database) and set the pragmas.

        A missing file is created owner-only (mode 0600; SQLite gives ``-wal``/``-shm`` the
        same mode). An existing file is opened as it is, read-only when it or its folder is
        not writable; an empty one is refused (SQLite would take it for a new database).

        Raises:
            StorageError: the path is not a file or cannot be created.
            StorageCorruptError: the file is empty or damaged.
            ReadOnlyStorageError: ``read_only`` and there is no file.
        """
        if path is None:
            conn = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False, timeout=0
            )
            conn.execute("PRAGMA secure_delete = ON")
            return cls(conn, read_only=False, guest=True, created_file=None)
        fs = filesystem_type(path.resolve().parent)
        if fs in NETWORK_FILESYSTEMS:
            warnings.warn(
                f"the history is on a network filesystem ({fs}): SQLite's WAL mode needs "
                "shared memory on one host; concurrent use from several machines corrupts it",
                RuntimeWarning,
                stacklevel=3,  # the caller of ReadingHistory.open
            )
        exists = path.exists()
        if exists and not path.is_file():
            raise StorageError("the history path exists and is not a file")
        if exists and not _filled(path, busy_timeout_s):
            # SQLite would treat it as a new, empty database: refuse to create over it.
            raise StorageCorruptError("the history database file is empty (truncated?)")
        if not exists and read_only:
            raise ReadOnlyStorageError("no history store at this path to open read-only")
        if exists and not read_only and not os.access(path, os.W_OK):
            read_only = True
        created: Path | None = None
        if not exists:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                created = path
            except FileExistsError:
                pass  # another process created it meanwhile: open theirs
            except OSError:
                raise StorageError("the history database file cannot be created") from None
        try:
            conn = _connect(path, read_only)
            _set_pragmas(conn, busy_timeout_s, synchronous, max_bytes)
        except BaseException:
            if created is not None:
                _remove(created)
            raise
        busy_ms = int(busy_timeout_s * 1000)
        return cls(
            conn,
            read_only=read_only,
            guest=False,
            created_file=created,
            busy_ms=busy_ms,
            path=path,
        )

    def use_wal(self) -> None:
        """Switch the file to WAL mode (a change to the file: only for stores we write).

        The switch needs the file to itself for a moment, and SQLite does not wait for
        that with the busy handler: while other processes open the same new store it
        answers ``SQLITE_BUSY`` at once, or ``SQLITE_IOERR_DELETE_NOENT`` when another
        process's switch removed the rollback journal first (measured: 4 processes
        creating one store together on a busy machine). Both are retried until
        ``busy_timeout``.

        Raises:
            StorageBusyError: the switch stayed blocked past ``busy_timeout``.
            StorageError: the filesystem cannot hold a WAL database.
        """
        deadline = time.monotonic() + self.busy_ms / 1000
        while True:
            try:
                mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.Error as exc:
                transient = getattr(exc, "sqlite_errorname", "") in _SWITCH_RACES
                if not transient or time.monotonic() >= deadline:
                    raise translate(exc) from None
            time.sleep(0.005)
        if str(mode).lower() != "wal":
            raise StorageError("the history database cannot use WAL mode here")

    # -------------------------------------------------------------- transactions
    @contextmanager
    def sql(self) -> Iterator[sqlite3.Connection]:
        """The connection, with every ``sqlite3`` error translated (no transaction)."""
        try:
            yield self.conn
        except sqlite3.Error as exc:
            raise translate(exc) from None
        except UnicodeDecodeError:  # text SQLite returned from a damaged page
            raise StorageCorruptError("the history database file is damaged") from None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, rolled back on any error, the caller's included (A13).

        Raises:
            ReadOnlyStorageError: the store was opened read-only.
            StorageBusyError: another writer held the lock past ``busy_timeout``.
        """
        if self.read_only:
            raise ReadOnlyStorageError("this history was opened read-only")
        conn = self.conn
        try:
            with self.sql():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except StorageIOError:
            self._drop_failed_frames()
            raise

    def _drop_failed_frames(self) -> None:
        """After an I/O error in a write: the failed transaction's frames may sit in the
        WAL past its last commit, written but unacknowledged (a failed fsync, after the
        frames were written). SQLite ignores them while it runs, but its recovery after a
        crash would find a valid commit among them and bring the failed write back. A
        TRUNCATE checkpoint cuts the WAL to zero bytes: the write is then gone for good. It
        is not retried; if it fails too (the device is failing, or a reader holds a
        snapshot), the frames stay until the next write overwrites them.
        """
        with contextlib.suppress(HistoryError, sqlite3.Error):
            self.checkpoint(wait=False)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read snapshot (a deferred transaction), so head and rows agree."""
        conn = self.conn
        with self.sql():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def changed_elsewhere(self) -> bool:
        """Whether another connection (thread, process) committed since the last call:
        ``PRAGMA data_version``, which SQLite answers from memory and the shared WAL index.
        The first call says True."""
        with self.sql() as conn:
            (version,) = conn.execute("PRAGMA data_version").fetchone()
        changed = version != self._data_version
        self._data_version = version
        return bool(changed)

    # --------------------------------------------------------------- scrubbing
    def checkpoint(self, *, wait: bool = True) -> None:
        """Copy the WAL into the file and truncate it (``wal_checkpoint(TRUNCATE)``): no
        old frame is left in the WAL. ``secure_delete`` zeroed what was deleted in the
        pages copied, so deleted rows are then gone from the database, the WAL and the
        ``-shm`` (an index of the WAL, which holds no row data).

        Args:
            wait: wait up to ``busy_timeout`` for readers of older snapshots to finish;
                ``False``: do not wait.

        Raises:
            StorageBusyError: a reader's snapshot kept old frames in the WAL.
        """
        with self.sql() as conn:
            if not wait:
                conn.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                if not wait:
                    conn.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
        if busy:
            raise StorageBusyError("a reader kept old bytes in the WAL; the scrub finishes later")
        self.scrub_pending = False

    def scrub(self, *, wait: bool) -> None:
        """Checkpoint after rows were removed (or again, if an earlier scrub was blocked);
        a no-op for a guest (no file) or when nothing is pending.

        Raises:
            StorageBusyError: only when ``wait``: a reader kept the old bytes in the WAL
                (the scrub stays pending).
        """
        if not self.scrub_pending or self.guest or self.read_only:
            self.scrub_pending = False
            return
        try:
            self.checkpoint(wait=wait)
        except StorageBusyError:
            if wait:
                raise

    def wal_has_frames(self) -> bool:
        """Whether the ``-wal`` file holds anything (left by a crash, or in use by others)."""
        if self.path is None:
            return False
        try:
            return os.stat(f"{self.path}-wal").st_size > 0
        except OSError:
            return False

    def vacuum(self) -> None:
        """Rebuild the file (``secure_delete`` zeroed freed cells; VACUUM drops the pages)."""
        with self.sql() as conn:
            conn.execute("VACUUM")  # temp_store = MEMORY: its copy never touches the disk

    def integrity_ok(self) -> bool:
        """Whether SQLite's ``PRAGMA integrity_check`` finds the file sound."""
        with self.sql() as conn:
            return [r[0] for r in conn.execute("PRAGMA integrity_check")] == ["ok"]

    # --------------------------------------------------------------- closing
    def close(self) -> None:
        """Close the connection, after one more try at a pending scrub.

        Raises:
            StorageError: SQLite failed to close (translated).
        """
        with contextlib.suppress(HistoryError):
            self.scrub(wait=False)
        with self.sql():
            self.conn.close()

    def holds_store(self) -> None:
        """Record that the file now holds a store: a failed open must leave it in place."""
        self.created_file = None

    def abandon(self) -> None:
        """Close after a failed open; remove the file if this open created it and it holds
        no store yet (our own empty file: leave nothing behind)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self.created_file is not None:
            _remove(self.created_file)


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "?mode=rwc")
    try:
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=0
        )
        if read_only and not os.access(path.parent, os.W_OK):
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                # A WAL database in a read-only folder without its -shm: SQLite can only
                # read it as immutable. Safe there, since nobody can write it either.
                conn.close()
                conn = sqlite3.connect(
                    uri + "&immutable=1",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=0,
                )
    except sqlite3.Error as exc:
        raise translate(exc) from None
    return conn


def _set_pragmas(
    conn: sqlite3.Connection, busy_timeout_s: float, synchronous: str, max_bytes: int | None
) -> None:
    # The numbers and the synchronous mode were checked (limits.Options): nothing else is
    # ever formatted into SQL.
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA temp_store = MEMORY")  # VACUUM's copy stays off disk
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        if max_bytes is not None:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page)}")
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc) from None
    except UnicodeDecodeError:  # text SQLite returned from a damaged page
        conn.close()
        raise StorageCorruptError("the history database file is damaged") from None
    except BaseException:
        conn.close()
        raise


# What a WAL switch racing other openers of the same new store answers (use_wal).
_SWITCH_RACES: Final = frozenset({"SQLITE_BUSY", "SQLITE_IOERR_DELETE_NOENT"})


def _filled(path: Path, timeout_s: float) -> bool:
    """Whether the file holds bytes, waiting up to ``timeout_s`` while it is empty: another
    process may have just created it (O_EXCL) and not yet written its first page, which
    takes milliseconds. A file still empty after that is a truncated store."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if path.stat().st_size > 0:
                return True
        except OSError:  # gone meanwhile: the other process's open failed and removed it
            raise StorageBusyError("another process was creating this store; retry") from None
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _remove(path: Path) -> None:
    for suffix in _SUFFIXES:
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")


def filesystem_type(folder: Path) -> str:
    """The type of the filesystem holding ``folder`` (Linux /proc/self/mounts), or ""."""
    best, kind = "", ""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = str(folder) == mount or str(folder).startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        return ""
    return kind


def quarantine(path: Path) -> Path:
    """Move a damaged store (and its ``-wal``/``-shm``) aside; return the database's new path.

    Raises:
        StorageError: the files could not be moved.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    dst = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while dst.exists():
        n += 1
        dst = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        for suffix in ("-wal", "-shm", ""):  # the database last: it names the set
            side = Path(f"{path}{suffix}")
            if side.exists():
                side.rename(Path(f"{dst}{suffix}"))
    except OSError:
        raise StorageError("the damaged history could not be moved aside") from None
    return dst


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
