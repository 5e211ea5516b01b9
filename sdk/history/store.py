"""The public API of the history store: :class:`ReadingHistory`.

Owns: the handle (its lock, whether it is open, its options) and the order of the steps of
each public verb. Every step is someone else's: argument checks and options
(:mod:`~edgerec.history.limits`), the event codec (:mod:`~edgerec.history.events`), the
file and its transactions (:mod:`~edgerec.history.connection`), opening the store and its
master keys (:mod:`~edgerec.history.keys`), the generation
(:mod:`~edgerec.history.rollback`), profiles and head records
(:mod:`~edgerec.history.profiles`), the proof of what a read returns
(:mod:`~edgerec.history.window`), encryption (:mod:`~edgerec.history.crypto`), the write
transactions of events (:mod:`~edgerec.history.writes`), retention, erasure and rotation
(:mod:`~edgerec.history.maintenance`). No SQL is written here.

Reads top-down: opening, writing, reading, profiles, erasure and keys, lifecycle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from ..errors import (
    ClosedError,
    EdgerecError,
    InvalidInputError,
    ProfileErasedError,
    StorageCorruptError,
)
from ..features.values import check_int
from . import crypto, impressions, keys, maintenance, profiles, schema, window, writes
from .connection import Database, quarantine
from .events import HistoryEvent, decode_event, encode_batch, encode_event, export_json
from .impressions import Impression, ImpressionLog
from .keys import DEFAULT_SCRYPT_N, KeySource, StoreKeys
from .limits import MAX_ID_CHARS, MAX_LIMIT, MAX_PROFILE_CHARS, Options, check_path, check_text
from .profiles import Profile
from .rollback import Generation, MonotonicCounter

__all__ = ["ReadingHistory"]

_log = logging.getLogger("edgerec.history")

DEFAULT_KEY_USE_LIMIT: Final = 2**30  # well below the 2^32 random-nonce bound (SP 800-38D)
_PRIVATE: Final = object()
_GUEST: Any = "\x00edgerec-guest"  # a path no filesystem accepts: never a real file


class ReadingHistory:
    """An encrypted, tamper-evident reading history for one active profile at a time.

    Open with :meth:`open`; every method may raise a :class:`~edgerec.HistoryError` leaf
    (never a raw ``sqlite3`` or ``cryptography`` exception). Thread-safe: one handle may be
    shared by threads (calls are serialized); several handles and processes may use one
    file at once (SQLite WAL locking, ``busy_timeout``).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "h.db")
        >>> h = ReadingHistory.open(path, key=b"k" * 32, profile="kiosk-1")
        >>> _ = h.record({"id": "N7", "category": "sports"}, at="2026-12-02T08:00:00Z")
        >>> len(h), h.profiles(), h.recent(1)[0].at
        (1, ['kiosk-1'], 1796198400.0)
        >>> h.close()
    """

    _opts: Options
    _db: Database
    _keys: StoreKeys
    _gen: Generation
    _profile: Profile | None
    _has_window: bool  # the file has the removal log (not: a format-1 store, read-only)

    def __init__(self, *, _token: object = None) -> None:
        if _token is not _PRIVATE:
            raise TypeError("use ReadingHistory.open(...)")
        self._lock = threading.RLock()
        self._closed = True
        self._profile = None
        self._log: ImpressionLog | None = None  # the active profile's, once loaded
        self._pending: list[Impression] = []  # added before it was loaded

    # ------------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        passphrase: str | None = None,
        keyring_service: str | None = None,
        profile: str = "default",
        counter: MonotonicCounter | None = None,
        read_only: bool = False,
        max_events: int | None = None,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
        busy_timeout_s: float = 5.0,
        synchronous: str = "FULL",
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        scrypt_n: int = DEFAULT_SCRYPT_N,
        key_use_limit: int = DEFAULT_KEY_USE_LIMIT,
        rotation_batch: int = 256,
    ) -> ReadingHistory:
        """Open (or create) the history at ``path`` with exactly one master-key source.

        Args:
            path: the SQLite file. A missing file is created; an existing file is never
                replaced, whatever goes wrong.
            key: the master key, 32 raw bytes from the host.
            passphrase: a passphrase; the master key is scrypt(passphrase, salt, n, 8, 1).
            keyring_service: use the OS keystore through the optional ``keyring`` package;
                a new store generates a random master key and saves it there.
            profile: the active profile (created on first use unless ``read_only``).
            counter: a host monotonic counter to detect rollback of the whole file.
            read_only: open for reading only (also chosen when the file is not writable);
                writes raise :class:`~edgerec.ReadOnlyStorageError`.
            max_events: keep at most this many events per profile (oldest pruned).
            max_age_s: prune events recorded more than this many seconds before now.
            max_bytes: cap the database file size (a quota; writes past it raise
                :class:`~edgerec.StorageFullError`).
            busy_timeout_s: how long a write waits for another writer.
            synchronous: ``"FULL"`` (default, durable) or ``"NORMAL"`` (the last commits
                may roll back on power loss; never corruption).
            clock: epoch seconds now; injectable for exact tests.
            random_bytes: randomness for keys, salts and nonces; injectable for tests.
            scrypt_n: scrypt cost for a *new* passphrase (existing stores keep theirs).
            key_use_limit: encryptions under one data key before it is rotated.
            rotation_batch: rows re-encrypted per transaction by a key rotation.

        Raises:
            WrongKeyError: the master key does not open this store.
            KeyUnavailableError: the keystore has no usable entry.
            StorageCorruptError: the file is damaged or empty.
            UnsupportedFormatError: the file is another database or a newer format.
            RollbackDetectedError: the store is older than ``counter``.
            InvalidInputError, InvalidTypeError: a bad argument (named in the message;
                ``path`` with a NUL character included).
        """
        self = cls(_token=_PRIVATE)
        source = KeySource.checked(key, passphrase, keyring_service)
        check_text("profile", profile, MAX_PROFILE_CHARS)
        guest = path is _GUEST
        where = None if guest else Path(check_path(path))
        opts = self._opts = Options.checked(
            read_only=read_only,
            max_events=max_events,
            max_age_s=max_age_s,
            max_bytes=max_bytes,
            busy_timeout_s=busy_timeout_s,
            synchronous=synchronous,
            counter=counter,
            clock=clock,
            random_bytes=random_bytes,
            scrypt_n=scrypt_n,
            key_use_limit=key_use_limit,
            rotation_batch=rotation_batch,
        )
        self._db = Database.open(
            where,
            read_only=opts.read_only,
            busy_timeout_s=opts.busy_timeout_s,
            synchronous=opts.synchronous,
            max_bytes=opts.max_bytes,
        )
        self._closed = False
        try:
            self._keys = keys.open_store(
                self._db, source, scrypt_n=opts.scrypt_n, random_bytes=opts.random_bytes
            )
            self._gen = Generation(self._keys.generation, self._keys.store_id, opts.counter)
            self._gen.verify(self._db)
            maintenance.scrub_at_open(self._db)
            with self._db.sql() as conn:
                self._has_window = schema.has_window(conn)
            self._activate(profile)
        except BaseException:
            self._closed = True
            self._profile = None
            self._db.abandon()  # our own new file, if it holds no store yet, goes too
            raise
        return self

    @classmethod
    def open_guest(
        cls,
        *,
        profile: str = "guest",
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> ReadingHistory:
        """A history that writes nothing to disk: a private in-memory database under a
        random key, both gone at :meth:`close` (a kiosk's guest session).

        Example:
            >>> with ReadingHistory.open_guest() as g:
            ...     _ = g.record({"id": "N1"}, at=1.0)
            ...     len(g)
            1

        Raises:
            InvalidInputError, InvalidTypeError: a bad argument (named in the message).
        """
        return cls.open(
            _GUEST,
            key=random_bytes(crypto.KEY_BYTES),
            profile=profile,
            clock=clock,
            random_bytes=random_bytes,
        )

    def _activate(self, name: str) -> None:
        """Make profile ``name`` (created if new) the active one, then bring it up to date:
        upgrade a format-1 head, finish a key rotation cut short, apply the retention
        limits."""
        db, opts = self._db, self._opts
        self._log, self._pending = None, []
        self._profile = profiles.activate(
            db, self._keys, self._gen, name, opts.random_bytes, has_window=self._has_window
        )
        if not db.read_only:
            maintenance.bring_up_to_date(db, self._gen, self._profile, opts)
            if opts.max_events is not None or opts.max_age_s is not None:
                self.prune()

    # ------------------------------------------------------------------- writing
    def record(
        self,
        article: Mapping[str, Any],
        *,
        at: float | datetime | str | None = None,
        dwell_s: float | None = None,
    ) -> int:
        """Append one reading event durably (one transaction; ``synchronous=FULL``).

        Args:
            article: an article mapping: ``id`` required; ``source``, ``category``,
                ``subcategory``, ``title``, ``abstract``, ``published_at``, ``entities``
                kept when present (:data:`~edgerec.history.events.STORED_FIELDS`); other
                keys ignored.
            at: when it was read: epoch seconds, an aware datetime or an ISO-8601 string
                with an offset (the rule of :func:`edgerec.parse_time`); default
                ``clock()``.
            dwell_s: seconds spent reading, or ``None``.

        Returns:
            The event's sequence number. When this returns, the event is on disk, and the
            events its retention limits removed are scrubbed from the WAL unless another
            connection's reader holds an older snapshot (then the handle's next write,
            :meth:`prune` or :meth:`close` scrubs them; :meth:`prune` waits for readers).

        Raises:
            InvalidInputError, InvalidTypeError: bad input, named (nothing is written).
            StorageFullError, StorageBusyError, ReadOnlyStorageError: nothing is written.
            StorageIOError: the OS failed a read, write or fsync: nothing is written.
            ClosedError: the handle is closed or its profile was erased.
        """
        with self._lock:
            prof = self._active()
            at = self._opts.clock() if at is None else at
            plaintext = encode_event(article, at, dwell_s)
            return writes.append(self._db, self._gen, prof, [plaintext], self._opts)[0]

    def record_many(
        self,
        articles: Sequence[Mapping[str, Any]],
        *,
        at: Any = None,
        dwell_s: Any = None,
    ) -> list[int]:
        """Append many reading events, all or nothing: every article, time and dwell is
        checked first, then all are stored in one transaction.

        Example:
            >>> with ReadingHistory.open_guest() as h:
            ...     h.record_many([{"id": "N1"}, {"id": "N2"}], at=[1.0, 2.0])
            [1, 2]

        Args:
            articles: a list or tuple of article mappings (as :meth:`record` takes).
            at: ``None`` (``clock()`` for every event), one time for all, or a list or
                tuple with one time per article.
            dwell_s: ``None``, one dwell for all, or a list or tuple, one per article.

        Returns:
            The events' sequence numbers, in the order given; when this returns, every
            event is on disk (and the retention limits applied, as by :meth:`record`).

        Raises:
            InvalidInputError, InvalidTypeError: a bad batch or value, named by index
                (``articles[3]['title']``, ``at[3]``).
            StorageFullError, StorageBusyError, ReadOnlyStorageError, StorageIOError,
            ClosedError: as :meth:`record`. On any error nothing is written.
        """
        with self._lock:
            prof = self._active()
            plaintexts = encode_batch(articles, at, dwell_s, self._opts.clock())
            if len(plaintexts) > self._opts.key_use_limit:
                raise InvalidInputError("articles: more events than key_use_limit in one batch")
            if not plaintexts:
                return []
            return writes.append(self._db, self._gen, prof, plaintexts, self._opts)

    def prune(self) -> int:
        """Apply the retention limits now (``record`` applies them on every append).

        Age pruning walks from the oldest event and stops at the first one inside
        ``max_age_s``: events recorded with an ``at`` far out of order may outlive the limit
        until the older-sequence events before them expire. Pruned rows go through
        ``secure_delete`` and a ``TRUNCATE`` checkpoint: when this returns, their
        ciphertexts are in neither the database, its WAL nor its ``-shm``.

        Returns:
            The number of events removed.

        Raises:
            IntegrityError: a row to be read for its age fails authentication.
            StorageBusyError: before the removal, another writer held the lock (nothing is
                removed); or after it, a reader's snapshot kept the old bytes in the WAL
                past ``busy_timeout`` (the events are gone from the store; the handle's
                next write, :meth:`close`, or the next open scrubs the WAL).
            ClosedError, ReadOnlyStorageError: nothing is removed.
        """
        with self._lock:
            prof, opts = self._active(), self._opts
            old = opts.max_age_s is not None and not self._db.read_only
            if old and self.impressions.drop_before(opts.clock() - (opts.max_age_s or 0.0)):
                self._save_and_scrub()  # the impressions past the age limit, scrubbed
            return writes.remove(self._db, self._gen, prof, partial(maintenance.prune, opts=opts))

    def forget(self, article_id: str) -> int:
        """Delete every event of ``article_id`` in the active profile: ``secure_delete``,
        then a ``TRUNCATE`` checkpoint, so that when this returns their ciphertexts are in
        neither the database, its WAL nor its ``-shm`` (as :meth:`prune`).

        Returns:
            How many events were removed.

        Raises:
            InvalidInputError, InvalidTypeError: a bad ``article_id``.
            IntegrityError: a row fails authentication (nothing is removed).
            StorageBusyError: as :meth:`prune` (before the removal: nothing is removed;
                after it: the WAL scrub is pending).
            ClosedError, ReadOnlyStorageError: nothing is removed.
        """
        with self._lock:
            prof = self._active()
            aid = check_text("article_id", article_id, MAX_ID_CHARS)
            # The calls that showed it go too, first: the removal's scrub (secure_delete,
            # TRUNCATE checkpoint) then takes the old pages that named it as well.
            if self.impressions.forget(aid):
                self._save_and_scrub()
            return writes.remove(self._db, self._gen, prof, partial(maintenance.forget, aid=aid))

    # ------------------------------------------------------------------- reading
    def recent(self, limit: int = 50) -> list[HistoryEvent]:
        """The ``limit`` newest events of the active profile, newest first.

        The read proves that these are exactly the ``limit`` newest live events (the
        window proof of :mod:`~edgerec.history.window`): a row deleted, put back or
        re-inserted with plain SQL anywhere in the window, the newest included, raises
        :class:`~edgerec.IntegrityError`, as does a row that fails authentication.

        Raises:
            InvalidInputError, InvalidTypeError: a bad ``limit``.
            IntegrityError: a row failed authentication, or the window is not the newest.
            ClosedError: the handle is closed or its profile was erased.
        """
        with self._lock:
            prof = self._active()
            limit = check_int("limit", limit, 0, MAX_LIMIT)
            with self._db.read() as conn:
                head = prof.load_head(conn)
                rows = window.newest(conn, prof, head, limit)
            opened = crypto.open_records(prof.keys, prof.pid, rows, last_seq=head.last_seq)
            return [decode_event(seq, plain) for seq, _, _, plain in opened]

    def _all_events(self) -> list[HistoryEvent]:
        """Every event, oldest first, with the whole-profile check (count, seqs, digest)."""
        prof = self._active()
        with self._db.read() as conn:
            head = prof.load_head(conn)
            records = window.full(conn, prof, head)
            return [decode_event(seq, plain) for seq, _, _, plain in records]

    def __len__(self) -> int:
        """The number of events in the active profile (from the authenticated head)."""
        with self._lock:
            prof = self._active()
            with self._db.read() as conn:
                return prof.load_head(conn).count

    def __iter__(self) -> Iterator[HistoryEvent]:
        """Every event of the active profile, oldest first (fully verified)."""
        with self._lock:
            return iter(self._all_events())

    def export(self) -> str:
        """The active profile's events as JSON (oldest first), fully verified first.

        Layout: :func:`~edgerec.history.events.export_json`.

        Raises:
            IntegrityError: a row failed authentication, or rows were deleted or replaced.
            ClosedError: the handle is closed or its profile was erased.
        """
        with self._lock:
            events = self._all_events()
            return export_json(self._active().name, events, self.impressions.to_json())

    def verify(self) -> int:
        """Check the whole file and the active profile: SQLite's ``integrity_check``, the
        store's generation record (and the host counter), every row's authentication, the
        row count, sequence numbers, removal log and digest against the head record.
        Streams: memory stays flat whatever the profile's size.

        Returns:
            The number of events verified.

        Raises:
            StorageCorruptError, IntegrityError, RollbackDetectedError.
        """
        with self._lock:
            prof = self._active()
            if not self._db.integrity_ok():
                raise StorageCorruptError("the history database failed integrity_check")
            self._gen.verify(self._db)
            with self._db.read() as conn:
                head = prof.load_head(conn)
                count = 0
                for seq, _, _, plain in window.full(conn, prof, head):
                    count += decode_event(seq, plain) is not None
                return count

    # --------------------------------------------------------------- impressions
    @property
    def impressions(self) -> ImpressionLog:
        """The active profile's impression log (:mod:`~edgerec.history.impressions`),
        loaded on first use; changes are kept in memory until :meth:`save_impressions`.
        A stored log that fails authentication comes back empty with ``discarded`` set.

        Raises:
            ClosedError: the handle is closed or its profile was erased.
        """
        with self._lock:
            prof = self._active()
            if self._log is None:
                with self._db.read() as conn:
                    self._log = impressions.load(conn, self._keys.impressions, prof.pid)
                for impression in self._pending:
                    self._log.add(impression)
                self._pending = []
            return self._log

    def add_impression(self, impression: Impression) -> int:
        """Append ``impression`` to the active profile's log without reading the stored
        log (a cold start's first recommendation decrypts nothing more); the number of
        changes not yet saved.

        Raises:
            ClosedError: the handle is closed or its profile was erased.
        """
        with self._lock:
            self._active()
            if self._log is None:
                self._pending.append(impression)
                del self._pending[: -impressions.MAX_IMPRESSIONS]
                return len(self._pending)
            self._log.add(impression)
            return self._log.unsaved

    def save_impressions(self) -> None:
        """Write the active profile's impression log if it changed (one transaction). A
        read-only handle keeps it in memory only.

        Raises:
            ProfileErasedError: the profile was erased meanwhile (nothing is written).
            StorageFullError, StorageBusyError, StorageIOError: nothing is written.
        """
        with self._lock:
            prof = self._active()
            if (self._log is None and not self._pending) or self._db.read_only:
                return
            log_ = self.impressions
            if not log_.unsaved:
                return
            with self._db.write() as conn:
                if not prof.exists(conn):
                    raise prof.erased()
                impressions.store(
                    conn, self._keys.impressions, prof.pid, log_, self._opts.random_bytes
                )
            impressions.saved(log_)

    def _save_and_scrub(self) -> None:
        """Save the log after impressions were dropped, then scrub (``secure_delete`` and a
        ``TRUNCATE`` checkpoint, as for events): their old pages leave the file and WAL.

        Raises:
            StorageBusyError: a reader kept the old bytes in the WAL (the scrub stays
                pending, as for events).
        """
        self.save_impressions()
        self._db.scrub_pending = True
        self._db.scrub(wait=True)

    def _save_quietly(self) -> None:
        """Save the impression log before the profile or the handle goes (a failure is
        logged: the log is evidence, not the reader's data)."""
        if self._log is None and not self._pending:
            return
        try:
            self.save_impressions()
        except EdgerecError as exc:
            _log.warning("the impression log was not saved (%s)", type(exc).__name__)

    def device_impressions(self) -> list[ImpressionLog]:
        """Every profile's impression log (the active one as it is in memory), for the
        device-wide shadow totals. Logs that fail authentication come back empty.

        Raises:
            ClosedError: the handle is closed.
        """
        with self._lock:
            self._check_open()
            with self._db.read() as conn:
                logs = impressions.load_all(conn, self._keys.impressions)
            prof = self._profile
            if prof is not None and not prof.gone:
                logs[prof.pid] = self.impressions
            return list(logs.values())

    def ensure_alive(self) -> None:
        """Raise if this handle can no longer serve its active profile. Cheap enough to
        call before every read: one ``PRAGMA data_version``, plus one lookup of the
        profile when another connection (thread, process, the ``edgerec`` command) has
        committed since. A profile found erased has its keys dropped here.

        Raises:
            ProfileErasedError: the active profile was erased, by this or another handle.
            ClosedError: the handle is closed.
        """
        with self._lock:
            self._active()

    # ------------------------------------------------------------------ profiles
    @property
    def profile(self) -> str:
        """The active profile's name."""
        with self._lock:
            return self._active().name

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (asked for, or the file or folder is read-only)."""
        return self._db.read_only

    def profiles(self) -> list[str]:
        """The names of every profile in the store (names are stored encrypted), sorted.

        Raises:
            IntegrityError: a stored name failed authentication.
            ClosedError: the handle is closed.
        """
        with self._lock:
            self._check_open()
            with self._db.read() as conn:
                return profiles.names(conn, self._keys)

    def switch_profile(self, profile: str) -> None:
        """Make ``profile`` active (created if new). The previous profile's keys are
        dropped first, so two profiles' keys are never loaded in one handle at once.

        Raises:
            InvalidInputError, InvalidTypeError: a bad profile name.
            ReadOnlyStorageError: a new profile in a read-only store.
            ClosedError: the handle is closed.
        """
        with self._lock:
            self._check_open()
            check_text("profile", profile, MAX_PROFILE_CHARS)
            self._save_quietly()
            self._profile = None
            self._activate(profile)

    # ---------------------------------------------------------- erasure and keys
    def erase_profile(self, profile: str) -> bool:
        """Erase ``profile`` for good: destroy its keys, delete its rows with
        ``secure_delete``, checkpoint the WAL with ``TRUNCATE`` and ``VACUUM``.

        The erase is journaled in the same transaction that destroys the keys: if the
        process dies before the scrub finishes, the next open finishes it. When this
        returns, none of the profile's ciphertexts (nor anything else of it) remain in
        the database file or its WAL. Erasing the active profile leaves the handle
        without one (:class:`~edgerec.ClosedError` until :meth:`switch_profile`).

        Returns:
            Whether the profile existed.

        Raises:
            StorageBusyError: a reader kept the WAL busy past ``busy_timeout``; the key is
                already destroyed and the scrub completes on a retry or the next open.
            InvalidInputError, InvalidTypeError: a bad profile name.
            ClosedError, ReadOnlyStorageError: nothing is erased.
        """
        with self._lock:
            self._check_open()
            check_text("profile", profile, MAX_PROFILE_CHARS)
            pid = profiles.pseudonym(self._keys.pseudonym, profile)
            existed = maintenance.erase(self._db, self._gen, pid)
            if self._profile is not None and self._profile.pid == pid:
                self._profile.erased()  # its keys go now
                self._profile = None
                self._log, self._pending = None, []
            maintenance.finish_erasures(self._db)
            return existed

    def rotate_master_key(self, *, key: bytes | None = None, passphrase: str | None = None) -> None:
        """Re-wrap the store key under a new master key (O(1): no row is touched).

        The key-check canary and the wrapped store key change in one transaction. Stores
        opened through the OS keystore cannot switch master keys here (not implemented).

        Raises:
            InvalidInputError, InvalidTypeError: not exactly one well-formed new key.
            ClosedError, ReadOnlyStorageError, StorageBusyError: the old key still opens.
        """
        with self._lock:
            self._check_open()
            source = KeySource.checked(key, passphrase, None, keyring=False)
            self._keys = maintenance.rotate_master_key(
                self._db, self._gen, self._keys, source, self._opts
            )

    def rotate_profile_key(self) -> None:
        """Re-encrypt the active profile under a fresh data key, resumably: a new key for new
        writes (stage 1), ``rotation_batch`` rows re-encrypted per transaction (2), the old
        key retired once no row needs it (3; :mod:`~edgerec.history.maintenance`). A kill -9
        anywhere leaves every row readable under exactly one enabled key; the next open (or
        call) resumes.

        Raises:
            IntegrityError: a row failed authentication (its batch is rolled back).
            ClosedError, ReadOnlyStorageError, StorageBusyError: resumed by a later call.
        """
        with self._lock:
            prof = self._active()
            maintenance.start_rotation(self._db, self._gen, prof, self._opts)
            maintenance.resume_rotation(self._db, self._gen, prof, self._opts)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def quarantine(cls, path: str | os.PathLike[str]) -> Path:
        """Move a damaged store (and its ``-wal``/``-shm``) aside, so that the next open
        creates a new one. The only way this SDK ever replaces a store.

        Returns:
            The new path of the database file.

        Raises:
            StorageError: the files could not be moved.
        """
        return quarantine(Path(check_path(path)))

    def close(self) -> None:
        """Close the database and drop the keys. Later calls raise ClosedError. Idempotent.

        Raises:
            StorageError: SQLite failed to close (the handle is closed anyway).
        """
        with self._lock:
            if self._closed:
                return
            self._save_quietly()
            self._closed = True
            self._profile = None
            self._log, self._pending = None, []
            del self._keys, self._gen  # CPython cannot scrub them; the references go
            self._db.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the open failed)."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ReadingHistory {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this history is closed")

    def _active(self) -> Profile:
        """The active profile, after a check that nobody erased it (``ensure_alive``)."""
        self._check_open()
        prof = self._profile
        if prof is not None and not prof.gone and self._db.changed_elsewhere():
            with self._db.read() as conn:
                if not prof.exists(conn):
                    prof.erased()
        if prof is None or prof.gone:
            self._profile = None
            self._log, self._pending = None, []
            raise ProfileErasedError("the active profile was erased; switch_profile() or reopen")
        return prof
