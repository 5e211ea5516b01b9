"""The public surface of the history store: :class:`ReadingHistory`."""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import secrets
import sqlite3
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import (
    ClosedError,
    HistoryError,
    IntegrityError,
    InvalidInputError,
    InvalidTypeError,
    KeyUnavailableError,
    ReadOnlyStorageError,
    RollbackDetectedError,
    StorageBusyError,
    StorageCorruptError,
    StorageError,
    UnsupportedFormatError,
    WrongKeyError,
)
from . import crypto as hc
from .schema import FORMAT_VERSION, apply_migrations, pending_migrations, translate

__all__ = ["HistoryEvent", "MonotonicCounter", "ReadingHistory"]

MAX_ID_CHARS: Final = 256
MAX_STRING_CHARS: Final = 16_384
MAX_ENTITIES: Final = 256
MAX_EVENT_BYTES: Final = 256 * 1024
MAX_PROFILE_CHARS: Final = 128
MAX_DWELL_S: Final = 1e7
MAX_TIME: Final = 253402300800.0  # 10000-01-01T00:00:00Z
MAX_LIMIT: Final = 1_000_000
STRING_FIELDS: Final = ("source", "category", "subcategory", "title", "abstract")
DEFAULT_SCRYPT_N: Final = 2**15
DEFAULT_KEY_USE_LIMIT: Final = 2**30  # well below the 2^32 random-nonce bound (SP 800-38D)
_ZERO32: Final = bytes(32)


@runtime_checkable
class MonotonicCounter(Protocol):
    """A host counter that never goes backwards (TPM NV counter, server, secure element)."""

    def read(self) -> int: ...

    def advance(self, value: int) -> None: ...


@dataclass(frozen=True, repr=False, eq=True)
class HistoryEvent:
    """One decrypted reading event. Its ``repr`` hides the contents (logs stay clean).

    Attributes:
        seq: the event's sequence number in its profile (strictly increasing).
        article_id: the article's id, exactly as recorded.
        features: the article's feature strings (source, category, subcategory, title,
            abstract, published_at, entities), only those that were present.
        at: when it was read, epoch seconds (UTC).
        dwell_s: seconds spent reading, or ``None``.
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


@dataclass
class _Head:
    active_key_id: int
    count: int
    last_seq: int
    digest: bytes
    key_uses: int


@dataclass
class _Profile:
    name: str
    pid: bytes
    mac_key: bytes
    keys: dict[int, AESGCM]
    wrapped_mac_key: bytes = b""


# ------------------------------------------------------------------ input validation
def _check_str(param: str, value: object, limit: int, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(f"{param} must be str, not {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInputError(f"{param} is longer than the limit of {limit} characters")
    if not allow_empty and not value:
        raise InvalidInputError(f"{param} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{param} is not valid Unicode (lone surrogate)") from None
    return value


def _check_number(param: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{param} must be a real number, not {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise InvalidInputError(f"{param} must be finite")
    if not lo <= f <= hi:
        raise InvalidInputError(f"{param} is outside [{lo:g}, {hi:g}]")
    return f


def _check_time(param: str, value: object) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInputError(f"{param} is a naive datetime; pass an aware one (UTC)")
        value = value.timestamp()
    t = _check_number(param, value, 0.0, MAX_TIME)
    if t >= MAX_TIME:
        raise InvalidInputError(f"{param} is at or after year 10000")
    return t


def _check_int(param: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"{param} must be int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidInputError(f"{param} is outside [{lo}, {hi}]")
    return value


def _check_profile(param: str, value: object) -> str:
    return _check_str(param, value, MAX_PROFILE_CHARS, allow_empty=False)


def _encode_event(article: object, at: float, dwell_s: float | None) -> tuple[str, bytes]:
    if not isinstance(article, Mapping):
        raise InvalidTypeError(f"article must be a mapping, not {type(article).__name__}")
    aid = _check_str("article['id']", article.get("id"), MAX_ID_CHARS, allow_empty=False)
    features: dict[str, Any] = {}
    for name in STRING_FIELDS:
        value = article.get(name)
        if value is not None:
            features[name] = _check_str(f"article[{name!r}]", value, MAX_STRING_CHARS)
    published = article.get("published_at")
    if published is not None:
        if isinstance(published, str):
            features["published_at"] = _check_str(
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
            _check_str(f"article['entities'][{i}]", e, MAX_STRING_CHARS)
            for i, e in enumerate(entities)
        ]
    doc = {"v": 1, "id": aid, "f": features, "t": at, "d": dwell_s}
    data = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    encoded = data.encode("utf-8")
    if len(encoded) > MAX_EVENT_BYTES:
        raise InvalidInputError(f"article encodes to more than {MAX_EVENT_BYTES} bytes")
    return aid, encoded


_json_decode = json.JSONDecoder().decode


def _decode_event(seq: int, plaintext: bytes) -> HistoryEvent:
    try:
        doc = _json_decode(plaintext.decode("utf-8"))
        return HistoryEvent(seq, doc["id"], doc["f"], doc["t"], doc["d"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        # Authentic but unreadable: only a bug (or a newer SDK) writes that.
        raise UnsupportedFormatError(f"event seq={seq} has an unknown layout") from None


# ------------------------------------------------------------------------- the store
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
        >>> _ = h.record({"id": "N7", "category": "sports"}, at=1.0)
        >>> len(h), h.profiles()
        (1, ['kiosk-1'])
        >>> h.close()
    """

    _path: Path
    _clock: Callable[[], float]
    _random: Callable[[int], bytes]
    _counter: MonotonicCounter | None
    _max_events: int | None
    _max_age: float | None
    _key_use_limit: int
    _rotation_batch: int
    _scrypt_n: int
    _profile: _Profile | None
    _read_only: bool
    _conn: sqlite3.Connection
    _store_id: bytes
    _master: bytes
    _kdf_raw: bytes
    _wrap_key: bytes
    _pid_key: bytes
    _names: AESGCM
    _gen_key: bytes
    _created_file: bool
    _guest: bool
    _store_created: bool
    _head_cache: tuple[tuple[Any, ...], _Head] | None = None

    # ------------------------------------------------------------------- opening
    def __init__(self, *, _token: object = None) -> None:
        if _token is not _PRIVATE:
            raise TypeError("use ReadingHistory.open(...)")
        self._lock = threading.RLock()
        self._closed = True

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
            InvalidInputError, InvalidTypeError: a bad argument (named in the message).
        """
        self = cls(_token=_PRIVATE)
        sources = [s for s in (key, passphrase, keyring_service) if s is not None]
        if len(sources) != 1:
            raise InvalidInputError("pass exactly one of key=, passphrase=, keyring_service=")
        if key is not None:
            if not isinstance(key, bytes):
                raise InvalidTypeError(f"key must be bytes, not {type(key).__name__}")
            if len(key) != hc.KEY_BYTES:
                raise InvalidInputError(f"key must be exactly {hc.KEY_BYTES} bytes")
        if passphrase is not None:
            _check_str("passphrase", passphrase, 1024, allow_empty=False)
        if keyring_service is not None:
            _check_str("keyring_service", keyring_service, 256, allow_empty=False)
        _check_profile("profile", profile)
        if path is not _GUEST and not isinstance(path, str | os.PathLike):
            raise InvalidTypeError(f"path must be str or PathLike, not {type(path).__name__}")
        if not isinstance(read_only, bool):
            raise InvalidTypeError("read_only must be bool")
        if max_events is not None:
            _check_int("max_events", max_events, 1, 2**62)
        if max_age_s is not None:
            _check_number("max_age_s", max_age_s, 0.0, MAX_TIME)
        if max_bytes is not None:
            _check_int("max_bytes", max_bytes, 64 * 1024, 2**62)
        _check_number("busy_timeout_s", busy_timeout_s, 0.0, 3600.0)
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise InvalidInputError("synchronous must be 'FULL', 'EXTRA' or 'NORMAL'")
        _check_int("scrypt_n", scrypt_n, 2, 2**24)
        if scrypt_n & (scrypt_n - 1):
            raise InvalidInputError("scrypt_n must be a power of two")
        _check_int("key_use_limit", key_use_limit, 1, 2**32)
        _check_int("rotation_batch", rotation_batch, 1, 1_000_000)
        if counter is not None and not isinstance(counter, MonotonicCounter):
            raise InvalidTypeError("counter must have read() and advance(value)")
        if not callable(clock) or not callable(random_bytes):
            raise InvalidTypeError("clock and random_bytes must be callables")

        self._guest = path is _GUEST
        self._path = Path(os.fspath(path))
        self._clock = clock
        self._random = random_bytes
        self._counter = counter
        self._max_events = max_events
        self._max_age = None if max_age_s is None else float(max_age_s)
        self._key_use_limit = key_use_limit
        self._rotation_batch = rotation_batch
        self._scrypt_n = scrypt_n
        self._profile = None
        self._closed = False
        self._created_file = False
        self._store_created = False
        try:
            self._connect(read_only, busy_timeout_s, synchronous, max_bytes)
            try:
                self._init_store(key, passphrase, keyring_service)
                with contextlib.suppress(StorageBusyError):
                    # Keys and rows went in the journaled transaction; if a reader keeps
                    # the WAL busy now, the scrub waits for the next open or erase.
                    self._finish_erasures()
                self._activate(profile)
            except BaseException:
                self._conn.close()
                raise
        except BaseException:
            self._closed = True
            self._profile = None
            if self._created_file and not self._store_created and not self._guest:
                # Our own empty file from a failed create: leave nothing behind.
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.unlink(f"{self._path}{suffix}")
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
        """
        return cls.open(
            _GUEST,
            key=random_bytes(hc.KEY_BYTES),
            profile=profile,
            clock=clock,
            random_bytes=random_bytes,
        )

    def _connect(
        self, read_only: bool, busy_timeout_s: float, synchronous: str, max_bytes: int | None
    ) -> None:
        path = self._path
        if self._guest:
            self._read_only = False
            self._conn = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False, timeout=0
            )
            self._conn.execute("PRAGMA secure_delete = ON")
            return
        fs = filesystem_type(path.resolve().parent)
        if fs in NETWORK_FILESYSTEMS:
            warnings.warn(
                f"the history is on a network filesystem ({fs}): SQLite's WAL mode needs "
                "shared memory on one host; concurrent use from several machines corrupts it",
                RuntimeWarning,
                stacklevel=3,
            )
        exists = path.exists()
        if exists and not path.is_file():
            raise StorageError("the history path exists and is not a file")
        if exists and path.stat().st_size == 0:
            # SQLite would treat it as a new, empty database: refuse to create over it.
            raise StorageCorruptError("the history database file is empty (truncated?)")
        if not exists and read_only:
            raise ReadOnlyStorageError("no history store at this path to open read-only")
        if exists and not read_only and not os.access(path, os.W_OK):
            read_only = True
        self._read_only = read_only
        if not exists:
            # Owner-only from the first byte (SQLite gives -wal/-shm the same mode).
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                self._created_file = True
            except FileExistsError:
                pass  # another process created it meanwhile: open theirs
            except OSError:
                raise StorageError("the history database file cannot be created") from None
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
        self._conn = conn
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

    # ------------------------------------------------------------ sql plumbing
    @contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise translate(exc) from None
        except UnicodeDecodeError:  # text SQLite returned from a damaged page
            raise StorageCorruptError("the history database file is damaged") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; rolled back on any error (A13)."""
        if self._read_only:
            raise ReadOnlyStorageError("this history was opened read-only")
        conn = self._conn
        with self._sql():
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

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read snapshot (a deferred transaction), so head and rows agree."""
        conn = self._conn
        with self._sql():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _meta(self, conn: sqlite3.Connection, name: str) -> bytes | None:
        row = conn.execute("SELECT value FROM store_meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return _blob(row[0], f"the store record {name!r}")

    def _set_meta(self, conn: sqlite3.Connection, name: str, value: bytes) -> None:
        conn.execute(
            "INSERT INTO store_meta (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -------------------------------------------------------------- master key
    def _init_store(
        self, key: bytes | None, passphrase: str | None, keyring_service: str | None
    ) -> None:
        conn = self._conn
        with self._sql():
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        created_master: bytes | None = None
        if "store_meta" not in tables and tables:
            raise UnsupportedFormatError("this database is not an edgerec history store")
        if not self._read_only and not self._guest:  # never change a file that is not ours
            with self._sql():
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError("the history database cannot use WAL mode here")
        if "store_meta" not in tables:
            if self._read_only:
                raise ReadOnlyStorageError("cannot create a history store read-only")
            with self._write() as conn:
                if self._meta_if_exists(conn) is None:  # not created meanwhile by another
                    apply_migrations(conn)
                    created_master = self._create_store(conn, key, passphrase, keyring_service)
            self._store_created = True
        with self._sql():
            fmt = self._meta(conn, "format")
        if fmt is None or not fmt.isdigit():
            raise StorageCorruptError("the history store has no valid format record")
        if int(fmt) > FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"the history store has format {int(fmt)}; this SDK reads {FORMAT_VERSION}"
            )
        with self._sql():
            pending = pending_migrations(conn)
        if pending:
            with self._write() as conn:
                apply_migrations(conn)
        with self._read() as conn:
            store_id = self._meta(conn, "store_id") or b""
            kdf_raw = self._meta(conn, "kdf") or b"{}"
            check = self._meta(conn, "key_check") or b""
            wrapped = self._meta(conn, "store_key") or b""
        self._store_id = store_id
        try:
            kdf = json.loads(kdf_raw)
        except ValueError:
            raise StorageCorruptError("the history store's key record is unreadable") from None
        master = created_master or self._master_from(
            kdf, key, passphrase, keyring_service, store_id
        )
        hc.unwrap(master, check, self._aad(b"key-check", kdf_raw), what="key-check")
        store_key = hc.unwrap(master, wrapped, self._aad(b"store-key", kdf_raw), what="store key")
        self._master = master
        self._kdf_raw = kdf_raw
        self._set_store_key(store_key)
        self._check_generation()

    def _meta_if_exists(self, conn: sqlite3.Connection) -> bytes | None:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store_meta'"
        ).fetchone()
        return None if exists is None else self._meta(conn, "format")

    def _aad(self, purpose: bytes, kdf_raw: bytes) -> bytes:
        return b"edgerec/history/" + purpose + b"\x00" + self._store_id + b"\x00" + kdf_raw

    def _set_store_key(self, store_key: bytes) -> None:
        self._wrap_key = hc.hkdf(store_key, b"edgerec/history/profile-wrap")
        self._pid_key = hc.hkdf(store_key, b"edgerec/history/profile-id")
        self._names = AESGCM(hc.hkdf(store_key, b"edgerec/history/profile-name"))
        self._gen_key = hc.hkdf(store_key, b"edgerec/history/generation")

    def _new_kdf(
        self, key: bytes | None, passphrase: str | None, keyring_service: str | None
    ) -> tuple[bytes, bytes]:
        """(kdf record, master key) for a new store or a master-key rotation."""
        if key is not None:
            return json.dumps({"kind": "raw"}).encode(), key
        if passphrase is not None:
            salt = self._random(16)
            kdf = {"kind": "scrypt", "salt": salt.hex(), "n": self._scrypt_n, "r": 8, "p": 1}
            master = hc.derive_passphrase_key(passphrase, salt, self._scrypt_n, 8, 1)
            return json.dumps(kdf, sort_keys=True).encode(), master
        assert keyring_service is not None
        user = "history-" + self._store_id.hex()
        master = self._random(hc.KEY_BYTES)
        kr = _keyring()
        try:
            if kr.get_password(keyring_service, user) is not None:
                raise KeyUnavailableError("the keystore already holds a key for this store id")
            kr.set_password(keyring_service, user, master.hex())
        except HistoryError:
            raise
        except Exception:
            raise KeyUnavailableError("the OS keystore refused to store the key") from None
        kdf = {"kind": "keyring", "service": keyring_service, "user": user}
        return json.dumps(kdf, sort_keys=True).encode(), master

    def _master_from(
        self,
        kdf: Any,
        key: bytes | None,
        passphrase: str | None,
        keyring_service: str | None,
        store_id: bytes,
    ) -> bytes:
        kind = kdf.get("kind") if isinstance(kdf, dict) else None
        given = "raw" if key is not None else "scrypt" if passphrase is not None else "keyring"
        if kind not in ("raw", "scrypt", "keyring"):
            raise UnsupportedFormatError("the history store uses an unknown key derivation")
        if kind != given:
            names = {"raw": "key=", "scrypt": "passphrase=", "keyring": "keyring_service="}
            raise WrongKeyError(f"this history store is opened with {names[kind]}")
        if key is not None:
            return key
        if passphrase is not None:
            try:
                salt = bytes.fromhex(kdf["salt"])
                n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
                return hc.derive_passphrase_key(passphrase, salt, n, r, p)
            except (KeyError, ValueError, TypeError, MemoryError):
                raise StorageCorruptError("the history store's scrypt record is invalid") from None
        if kdf.get("service") != keyring_service:
            raise WrongKeyError("this history store uses another keystore service name")
        kr = _keyring()
        try:
            secret = kr.get_password(keyring_service, str(kdf.get("user")))
        except Exception:
            raise KeyUnavailableError("the OS keystore is locked or unavailable") from None
        if secret is None:
            raise KeyUnavailableError("the OS keystore holds no key for this history store")
        try:
            master = bytes.fromhex(secret)
        except (ValueError, TypeError):
            raise KeyUnavailableError("the keystore entry for this store is not a key") from None
        if len(master) != hc.KEY_BYTES:
            raise KeyUnavailableError("the keystore entry for this store is not a key")
        return master

    def _create_store(
        self,
        conn: sqlite3.Connection,
        key: bytes | None,
        passphrase: str | None,
        keyring_service: str | None,
    ) -> bytes:
        self._store_id = self._random(16)
        kdf_raw, master = self._new_kdf(key, passphrase, keyring_service)
        store_key = self._random(hc.KEY_BYTES)
        self._set_meta(conn, "format", str(FORMAT_VERSION).encode())
        self._set_meta(conn, "store_id", self._store_id)
        self._set_meta(conn, "kdf", kdf_raw)
        check = hc.wrap(
            master, hc.KEY_CHECK_PLAINTEXT, self._aad(b"key-check", kdf_raw), self._random
        )
        self._set_meta(conn, "key_check", check)
        wrapped = hc.wrap(master, store_key, self._aad(b"store-key", kdf_raw), self._random)
        self._set_meta(conn, "store_key", wrapped)
        self._set_store_key(store_key)
        self._write_generation(conn, 0)
        return master

    # ------------------------------------------------------ rollback generation
    def _generation_mac(self, gen: int) -> bytes:
        return hc.mac(self._gen_key, b"generation", self._store_id, struct.pack(">Q", gen))

    def _write_generation(self, conn: sqlite3.Connection, gen: int) -> None:
        self._set_meta(conn, "generation", struct.pack(">Q", gen) + self._generation_mac(gen))

    def _read_generation(self, conn: sqlite3.Connection) -> int:
        raw = self._meta(conn, "generation") or b""
        if len(raw) != 40:
            raise IntegrityError("the store's generation record is malformed")
        gen = struct.unpack(">Q", raw[:8])[0]
        if not secrets.compare_digest(raw[8:], self._generation_mac(gen)):
            raise IntegrityError("the store's generation record failed authentication")
        return int(gen)

    def _bump_generation(self, conn: sqlite3.Connection) -> int:
        """Count this write in the store's generation, if a host counter watches it.

        Without a counter nothing could ever compare the generation, so it is left alone
        (one row write less per event). Writes made without the counter are invisible to
        it, which is fine: between them there was nothing to detect a rollback with.
        """
        if self._counter is None:
            return 0
        gen = self._read_generation(conn) + 1
        self._write_generation(conn, gen)
        return gen

    def _check_generation(self) -> None:
        with self._read() as conn:
            gen = self._read_generation(conn)
        if self._counter is None:
            return
        try:
            expected = int(self._counter.read())
        except Exception:
            raise KeyUnavailableError("the host's monotonic counter could not be read") from None
        if gen < expected:
            raise RollbackDetectedError(
                f"the history store is at generation {gen}, the host counter at {expected}"
            )
        if gen > expected:
            self._advance_counter(gen)  # a crash between commit and advance

    def _advance_counter(self, gen: int) -> None:
        if self._counter is None:
            return
        try:
            self._counter.advance(gen)
        except Exception:
            raise StorageError("the host's monotonic counter could not be advanced") from None

    # ------------------------------------------------------------------ profiles
    def _pid(self, name: str) -> bytes:
        return hc.mac(self._pid_key, b"profile", name.encode("utf-8"))[:16]

    def _head_mac(self, prof: _Profile, head: _Head) -> bytes:
        return hc.mac(
            prof.mac_key,
            b"head",
            prof.pid,
            struct.pack(">IQQQ", head.active_key_id, head.count, head.last_seq, head.key_uses),
            head.digest,
        )

    def _row_mac(self, prof: _Profile, seq: int, key_id: int, blob: bytes) -> bytes:
        return hc.mac(prof.mac_key, b"row", prof.pid, struct.pack(">QI", seq, key_id), blob)

    def _wrap_aad(self, pid: bytes, what: bytes, key_id: int = 0) -> bytes:
        return b"edgerec/history/wrap/" + what + b"\x00" + pid + struct.pack(">I", key_id)

    def _activate(self, name: str) -> None:
        pid = self._pid(name)
        with self._read() as conn:
            row = conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (pid,)).fetchone()
        if row is None:
            if self._read_only:
                raise ReadOnlyStorageError("this profile does not exist and the store is read-only")
            with self._write() as conn:
                row = conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (pid,)).fetchone()
                if row is None:
                    self._create_profile(conn, name, pid)
                    row = conn.execute(
                        "SELECT mac_key FROM profiles WHERE pid = ?", (pid,)
                    ).fetchone()
        mac_key = hc.unwrap(
            self._wrap_key,
            _blob(row[0], "the profile's MAC key"),
            self._wrap_aad(pid, b"mac"),
            what="profile MAC key",
        )
        self._head_cache = None
        self._profile = _Profile(name, pid, mac_key, {}, row[0])
        with self._read() as conn:
            self._load_keys(conn)
            self._load_head(conn)
        if not self._read_only:
            self._resume_rotation()
            if self._max_events is not None or self._max_age is not None:
                self.prune()

    def _create_profile(self, conn: sqlite3.Connection, name: str, pid: bytes) -> None:
        mac_key = self._random(hc.KEY_BYTES)
        data_key = self._random(hc.KEY_BYTES)
        nonce = self._random(hc.NONCE_BYTES)
        name_ct = nonce + self._names.encrypt(nonce, name.encode("utf-8"), b"name" + pid)
        prof = _Profile(name, pid, mac_key, {})
        head = _Head(1, 0, 0, _ZERO32, 0)
        conn.execute(
            "INSERT INTO profiles (pid, name_ct, mac_key, active_key_id, count, last_seq, "
            "digest, key_uses, head_mac) VALUES (?, ?, ?, 1, 0, 0, ?, 0, ?)",
            (
                pid,
                name_ct,
                hc.wrap(self._wrap_key, mac_key, self._wrap_aad(pid, b"mac"), self._random),
                _ZERO32,
                self._head_mac(prof, head),
            ),
        )
        self._insert_key(conn, pid, 1, data_key)
        self._bump_generation(conn)

    def _insert_key(self, conn: sqlite3.Connection, pid: bytes, key_id: int, key: bytes) -> None:
        wrapped = hc.wrap(self._wrap_key, key, self._wrap_aad(pid, b"data", key_id), self._random)
        conn.execute(
            "INSERT INTO profile_keys (pid, key_id, wrapped) VALUES (?, ?, ?)",
            (pid, key_id, wrapped),
        )

    def _load_keys(self, conn: sqlite3.Connection) -> None:
        prof = self._active()
        keys: dict[int, AESGCM] = {}
        for key_id, wrapped in conn.execute(
            "SELECT key_id, wrapped FROM profile_keys WHERE pid = ?", (prof.pid,)
        ):
            if type(key_id) is not int or not 0 <= key_id <= _MAX_KEY_ID:
                raise IntegrityError("a profile data key has an invalid key id")
            raw = hc.unwrap(
                self._wrap_key,
                _blob(wrapped, "a profile data key"),
                self._wrap_aad(prof.pid, b"data", key_id),
                what="profile data key",
            )
            keys[int(key_id)] = AESGCM(raw)
        prof.keys = keys

    def _load_head(self, conn: sqlite3.Connection) -> _Head:
        prof = self._active()
        row = conn.execute(
            "SELECT active_key_id, count, last_seq, digest, key_uses, head_mac "
            "FROM profiles WHERE pid = ?",
            (prof.pid,),
        ).fetchone()
        if row is None:
            raise ClosedError("the active profile was erased")
        cached = self._head_cache
        if cached is not None and cached[0] == row:
            return _Head(**vars(cached[1]))
        key_id, count, last_seq, digest, key_uses, head_mac = row
        ok = (
            type(key_id) is int
            and 0 <= key_id <= _MAX_KEY_ID
            and all(type(v) is int and 0 <= v <= _MAX_SEQ for v in (count, last_seq, key_uses))
            and type(digest) is bytes
            and len(digest) == 32
            and type(head_mac) is bytes
        )
        if ok:
            head = _Head(key_id, count, last_seq, digest, key_uses)
            ok = secrets.compare_digest(head_mac, self._head_mac(prof, head))
        if not ok:
            wrapped = conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (prof.pid,))
            if wrapped.fetchone() != (prof.wrapped_mac_key,):
                raise ClosedError("the active profile was erased (and made anew) elsewhere")
            raise IntegrityError("the profile's head record failed authentication")
        self._head_cache = (tuple(row), _Head(**vars(head)))
        if head.active_key_id not in prof.keys:
            self._load_keys(conn)  # another handle rotated the key
            if head.active_key_id not in prof.keys:
                raise IntegrityError("the profile's active data key is missing")
        return head

    def _store_head(self, conn: sqlite3.Connection, head: _Head) -> None:
        prof = self._active()
        head_mac = self._head_mac(prof, head)
        conn.execute(
            "UPDATE profiles SET active_key_id = ?, count = ?, last_seq = ?, digest = ?, "
            "key_uses = ?, head_mac = ? WHERE pid = ?",
            (
                head.active_key_id,
                head.count,
                head.last_seq,
                head.digest,
                head.key_uses,
                head_mac,
                prof.pid,
            ),
        )
        # Cached as the row SQLite will return, so the next read skips one HMAC; a row
        # that differs in any byte (another writer, or tampering) is verified again.
        row = (head.active_key_id, head.count, head.last_seq, head.digest, head.key_uses, head_mac)
        self._head_cache = (row, _Head(**vars(head)))

    def _active(self) -> _Profile:
        if self._closed:
            raise ClosedError("this history is closed")
        if self._profile is None:
            raise ClosedError("the active profile was erased; switch_profile() or reopen")
        return self._profile

    # ------------------------------------------------------------------ writing
    def record(
        self,
        article: Mapping[str, Any],
        *,
        at: float | datetime | None = None,
        dwell_s: float | None = None,
    ) -> int:
        """Append one reading event durably (one transaction; ``synchronous=FULL``).

        Args:
            article: an article mapping (``id`` required; feature fields as in the module
                docstring).
            at: when it was read: epoch seconds or an aware datetime; default ``clock()``.
            dwell_s: seconds spent reading, or ``None``.

        Returns:
            The event's sequence number. When this returns, the event is on disk.

        Raises:
            InvalidInputError, InvalidTypeError: bad input (nothing is written).
            StorageFullError, StorageBusyError, ReadOnlyStorageError: nothing is written.
        """
        with self._lock:
            prof = self._active()
            when = _check_time("at", self._clock() if at is None else at)
            dwell = None if dwell_s is None else _check_number("dwell_s", dwell_s, 0, MAX_DWELL_S)
            _, plaintext = _encode_event(article, when, dwell)
            with self._write() as conn:
                head = self._load_head(conn)
                seq = head.last_seq + 1
                blob = hc.seal_record(
                    prof.keys[head.active_key_id],
                    prof.pid,
                    seq,
                    head.active_key_id,
                    plaintext,
                    random_bytes=self._random,
                )
                conn.execute(
                    "INSERT INTO events (pid, seq, key_id, blob) VALUES (?, ?, ?, ?)",
                    (prof.pid, seq, head.active_key_id, blob),
                )
                head.count += 1
                head.last_seq = seq
                head.key_uses += 1
                head.digest = hc.xor32(
                    head.digest, self._row_mac(prof, seq, head.active_key_id, blob)
                )
                self._prune_locked(conn, head)
                self._store_head(conn, head)
                gen = self._bump_generation(conn)
            self._advance_counter(gen)
            if head.key_uses >= self._key_use_limit:
                self.rotate_profile_key()
            return seq

    def _delete_rows(
        self, conn: sqlite3.Connection, head: _Head, rows: Sequence[tuple[int, int, bytes]]
    ) -> None:
        prof = self._active()
        for seq, key_id, blob in rows:
            head.digest = hc.xor32(head.digest, self._row_mac(prof, seq, key_id, blob))
            head.count -= 1
            conn.execute("DELETE FROM events WHERE pid = ? AND seq = ?", (prof.pid, seq))

    def _prune_locked(self, conn: sqlite3.Connection, head: _Head) -> int:
        prof = self._active()
        removed = 0
        if self._max_events is not None and head.count > self._max_events:
            excess = head.count - self._max_events
            rows = _valid_rows(
                conn.execute(
                    "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq LIMIT ?",
                    (prof.pid, excess),
                ).fetchall()
            )
            self._delete_rows(conn, head, rows)
            removed += len(rows)
        if self._max_age is not None:
            cutoff = self._clock() - self._max_age
            while head.count > 0:
                batch = _valid_rows(
                    conn.execute(
                        "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq LIMIT 64",
                        (prof.pid,),
                    ).fetchall()
                )
                old = []
                for seq, key_id, blob in batch:
                    plain = hc.open_record(prof.keys.get(key_id), prof.pid, seq, key_id, blob)
                    if _decode_event(seq, plain).at >= cutoff:
                        break
                    old.append((seq, key_id, blob))
                self._delete_rows(conn, head, old)
                removed += len(old)
                if len(old) < len(batch) or not batch:
                    break
        return removed

    def prune(self) -> int:
        """Apply the retention limits now (``record`` applies them on every append).

        Age pruning walks from the oldest event and stops at the first one inside
        ``max_age_s``: events recorded with an ``at`` far out of order may outlive the limit
        until the older-sequence events before them expire. Pruned rows go through
        ``secure_delete``. Returns the number of events removed.
        """
        with self._lock:
            self._active()
            with self._write() as conn:
                head = self._load_head(conn)
                removed = self._prune_locked(conn, head)
                if removed:
                    self._store_head(conn, head)
                    gen = self._bump_generation(conn)
            if removed:
                self._advance_counter(gen)
            return removed

    def forget(self, article_id: str) -> int:
        """Delete every event of ``article_id`` in the active profile (secure_delete).

        Returns:
            How many events were removed.
        """
        with self._lock:
            prof = self._active()
            aid = _check_str("article_id", article_id, MAX_ID_CHARS, allow_empty=False)
            with self._write() as conn:
                head = self._load_head(conn)
                doomed = []
                for seq, key_id, blob in _valid_rows(
                    conn.execute(
                        "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq",
                        (prof.pid,),
                    ).fetchall()
                ):
                    plain = hc.open_record(prof.keys.get(key_id), prof.pid, seq, key_id, blob)
                    if _decode_event(seq, plain).article_id == aid:
                        doomed.append((seq, key_id, blob))
                if doomed:
                    self._delete_rows(conn, head, doomed)
                    self._store_head(conn, head)
                    gen = self._bump_generation(conn)
            if doomed:
                self._advance_counter(gen)
            return len(doomed)

    # ------------------------------------------------------------------ reading
    def recent(self, limit: int = 50) -> list[HistoryEvent]:
        """The ``limit`` newest events of the active profile, newest first.

        Each row is authenticated; rows missing from the newest ``limit`` (fewer rows
        than the head record promises) raise :class:`~edgerec.IntegrityError`.
        """
        with self._lock:
            prof = self._active()
            _check_int("limit", limit, 0, MAX_LIMIT)
            with self._read() as conn:
                head = self._load_head(conn)
                rows = conn.execute(
                    "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq DESC LIMIT ?",
                    (prof.pid, limit),
                ).fetchall()
            if len(rows) != min(limit, head.count):
                raise IntegrityError("rows of this profile are missing (truncated history)")
            # The hot path (the ranker reads the last L events per recommendation): the
            # checks of _valid_rows and open_record, inlined. A column holding the wrong type
            # fails the range check, struct.pack or decrypt with TypeError / struct.error.
            key_for = prof.keys.get
            aad_prefix = hc.AAD_PREFIX + prof.pid
            pack = hc.SEQ_KEY
            last = head.last_seq
            out = []
            seq = None
            try:
                for seq, key_id, blob in rows:
                    if not 0 < seq <= last:
                        raise IntegrityError(f"event seq={seq} is past the head record", seq=seq)
                    aead = key_for(key_id)
                    if (
                        aead is None
                        or type(blob) is not bytes
                        or len(blob) < hc.MIN_RECORD
                        or blob[0] != hc.RECORD_VERSION
                    ):  # the slow path raises, naming the precise fault
                        hc.open_record(aead, prof.pid, seq, key_id, _blob(blob, f"event {seq}"))
                        continue  # unreachable
                    plain = aead.decrypt(blob[1:13], blob[13:], aad_prefix + pack(seq, key_id))
                    out.append(_decode_event(seq, plain))
            except InvalidTag:
                raise IntegrityError(f"event seq={seq} failed authentication", seq=seq) from None
            except (TypeError, struct.error, OverflowError):
                where = f"event seq={seq}" if type(seq) is int else "an event row"
                raise IntegrityError(
                    f"{where} is malformed", seq=seq if type(seq) is int else None
                ) from None
            return out

    def _all_events(self) -> list[HistoryEvent]:
        """Every event, oldest first, with the full head check (count, seqs, digest)."""
        prof = self._active()
        with self._read() as conn:
            head = self._load_head(conn)
            rows = _valid_rows(
                conn.execute(
                    "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq", (prof.pid,)
                ).fetchall()
            )
        digest = _ZERO32
        out = []
        for seq, key_id, blob in rows:
            if not 0 < seq <= head.last_seq:
                raise IntegrityError(f"event seq={seq} is outside the head record", seq=seq)
            plain = hc.open_record(prof.keys.get(key_id), prof.pid, seq, key_id, blob)
            out.append(_decode_event(seq, plain))
            digest = hc.xor32(digest, self._row_mac(prof, seq, key_id, blob))
        if len(rows) != head.count:
            raise IntegrityError(
                f"the profile has {len(rows)} rows, its head record {head.count} "
                "(rows deleted or truncated)"
            )
        if not secrets.compare_digest(digest, head.digest):
            raise IntegrityError("the profile's rows do not match its head record (replaced)")
        return out

    def __len__(self) -> int:
        """The number of events in the active profile (from the authenticated head)."""
        with self._lock:
            self._active()
            with self._read() as conn:
                return self._load_head(conn).count

    def __iter__(self) -> Iterator[HistoryEvent]:
        """Every event of the active profile, oldest first (fully verified)."""
        with self._lock:
            return iter(self._all_events())

    def export(self) -> str:
        """The active profile's events as JSON (oldest first), fully verified first.

        Layout: ``{"format": "edgerec.history.export", "version": 1, "profile": name,
        "events": [{"seq", "article_id", "features", "at", "dwell_s"}, ...]}``.
        """
        with self._lock:
            events = self._all_events()
            prof = self._active()
            doc = {
                "format": "edgerec.history.export",
                "version": 1,
                "profile": prof.name,
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

    def verify(self) -> int:
        """Check the whole file and the active profile: SQLite's ``integrity_check``, the
        store's generation record (and the host counter), every row's authentication, the
        row count, sequence numbers and digest against the head record.

        Returns:
            The number of events verified.

        Raises:
            StorageCorruptError, IntegrityError, RollbackDetectedError.
        """
        with self._lock:
            self._active()
            with self._sql() as conn:
                result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                raise StorageCorruptError("the history database failed integrity_check")
            self._check_generation()
            return len(self._all_events())

    # ------------------------------------------------------------------ profiles
    @property
    def profile(self) -> str:
        """The active profile's name."""
        with self._lock:
            return self._active().name

    @property
    def read_only(self) -> bool:
        return self._read_only

    def profiles(self) -> list[str]:
        """The names of every profile in the store (names are stored encrypted), sorted."""
        with self._lock:
            if self._closed:
                raise ClosedError("this history is closed")
            with self._read() as conn:
                rows = conn.execute("SELECT pid, name_ct FROM profiles").fetchall()
            names = []
            for pid, name_ct in rows:
                ct = _blob(name_ct, "a profile name")
                try:
                    name = self._names.decrypt(
                        ct[:12], ct[12:], b"name" + _blob(pid, "a profile id")
                    )
                except Exception:
                    raise IntegrityError("a profile name failed authentication") from None
                names.append(name.decode("utf-8"))
            return sorted(names)

    def switch_profile(self, profile: str) -> None:
        """Make ``profile`` active (created if new). The previous profile's keys are
        dropped first, so two profiles' keys are never loaded in one handle at once."""
        with self._lock:
            if self._closed:
                raise ClosedError("this history is closed")
            _check_profile("profile", profile)
            self._profile = None
            self._activate(profile)

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
        """
        with self._lock:
            if self._closed:
                raise ClosedError("this history is closed")
            _check_profile("profile", profile)
            pid = self._pid(profile)
            with self._write() as conn:
                existed = (
                    conn.execute("SELECT 1 FROM profiles WHERE pid = ?", (pid,)).fetchone()
                    is not None
                )
                conn.execute("INSERT OR IGNORE INTO erase_journal (pid) VALUES (?)", (pid,))
                conn.execute("DELETE FROM profile_keys WHERE pid = ?", (pid,))
                conn.execute("DELETE FROM profiles WHERE pid = ?", (pid,))
                conn.execute("DELETE FROM events WHERE pid = ?", (pid,))
                gen = self._bump_generation(conn)
            self._advance_counter(gen)
            if self._profile is not None and self._profile.pid == pid:
                self._profile = None
            self._finish_erasures()
            return existed

    def _checkpoint(self) -> None:
        with self._sql() as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StorageBusyError("a reader kept the WAL busy; the erase finishes later")

    def _finish_erasures(self) -> None:
        if self._read_only:
            return
        with self._sql() as conn:
            pids = [r[0] for r in conn.execute("SELECT pid FROM erase_journal")]
        if not pids:
            return
        # The keys and rows went in the transaction that journaled the erase; what is left
        # is the scrub. (Never delete by pid here: the name may already be a new profile.)
        self._checkpoint()
        with self._sql() as conn:
            conn.execute("VACUUM")
        self._checkpoint()
        with self._write() as conn:
            conn.executemany("DELETE FROM erase_journal WHERE pid = ?", [(p,) for p in pids])
        self._checkpoint()

    # ------------------------------------------------------------------ keys
    def rotate_master_key(self, *, key: bytes | None = None, passphrase: str | None = None) -> None:
        """Re-wrap the store key under a new master key (O(1): no row is touched).

        The key-check canary and the wrapped store key change in one transaction. Stores
        opened through the OS keystore cannot switch master keys here (not implemented).
        """
        with self._lock:
            if self._closed:
                raise ClosedError("this history is closed")
            if (key is None) == (passphrase is None):
                raise InvalidInputError("pass exactly one of key=, passphrase=")
            if key is not None and not isinstance(key, bytes):
                raise InvalidTypeError(f"key must be bytes, not {type(key).__name__}")
            if key is not None and len(key) != hc.KEY_BYTES:
                raise InvalidInputError(f"key must be exactly {hc.KEY_BYTES} bytes")
            if passphrase is not None:
                _check_str("passphrase", passphrase, 1024, allow_empty=False)
            with self._read() as conn:
                wrapped = self._meta(conn, "store_key") or b""
            store_key = hc.unwrap(
                self._master, wrapped, self._aad(b"store-key", self._kdf_raw), what="store key"
            )
            kdf_raw, master = self._new_kdf(key, passphrase, None)
            with self._write() as conn:
                self._set_meta(conn, "kdf", kdf_raw)
                check = hc.wrap(
                    master, hc.KEY_CHECK_PLAINTEXT, self._aad(b"key-check", kdf_raw), self._random
                )
                self._set_meta(conn, "key_check", check)
                self._set_meta(
                    conn,
                    "store_key",
                    hc.wrap(master, store_key, self._aad(b"store-key", kdf_raw), self._random),
                )
                gen = self._bump_generation(conn)
            self._master, self._kdf_raw = master, kdf_raw
            self._advance_counter(gen)

    def rotate_profile_key(self) -> None:
        """Re-encrypt the active profile under a fresh data key, resumably.

        Stage 1 (one transaction) adds the new key, wrapped, under a new key id and makes it
        the key for new writes; the old key stays wrapped beside it. Stage 2 re-encrypts
        ``rotation_batch`` rows per transaction (each row records its key id). Stage 3
        retires the old key once no row needs it. A kill -9 anywhere leaves every row
        readable under exactly one enabled key; the next open (or call) resumes.
        """
        with self._lock:
            prof = self._active()
            with self._write() as conn:
                head = self._load_head(conn)
                if len(prof.keys) == 1:
                    new_id = max(prof.keys) + 1
                    raw = self._random(hc.KEY_BYTES)
                    self._insert_key(conn, prof.pid, new_id, raw)
                    head.active_key_id = new_id
                    head.key_uses = 0
                    self._store_head(conn, head)
                    self._bump_generation(conn)
                    prof.keys[new_id] = AESGCM(raw)
            self._resume_rotation()

    def _resume_rotation(self) -> None:
        prof = self._active()
        if len(prof.keys) <= 1:
            return
        while True:
            with self._write() as conn:
                head = self._load_head(conn)
                active = head.active_key_id
                rows = _valid_rows(
                    conn.execute(
                        "SELECT seq, key_id, blob FROM events WHERE pid = ? AND key_id != ? "
                        "ORDER BY seq LIMIT ?",
                        (prof.pid, active, self._rotation_batch),
                    ).fetchall()
                )
                for seq, key_id, blob in rows:
                    plain = hc.open_record(prof.keys.get(key_id), prof.pid, seq, key_id, blob)
                    new = hc.seal_record(
                        prof.keys[active], prof.pid, seq, active, plain, random_bytes=self._random
                    )
                    conn.execute(
                        "UPDATE events SET key_id = ?, blob = ? WHERE pid = ? AND seq = ?",
                        (active, new, prof.pid, seq),
                    )
                    head.digest = hc.xor32(
                        head.digest,
                        hc.xor32(
                            self._row_mac(prof, seq, key_id, blob),
                            self._row_mac(prof, seq, active, new),
                        ),
                    )
                    head.key_uses += 1
                if not rows:
                    conn.execute(
                        "DELETE FROM profile_keys WHERE pid = ? AND key_id != ?",
                        (prof.pid, active),
                    )
                else:
                    self._store_head(conn, head)
                gen = self._bump_generation(conn)
            self._advance_counter(gen)
            if not rows:
                prof.keys = {active: prof.keys[active]}
                return

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def quarantine(cls, path: str | os.PathLike[str]) -> Path:
        """Move a damaged store (and its ``-wal``/``-shm``) aside, so that the next open
        creates a new one. The only way this SDK ever replaces a store; returns the new
        path of the database file."""
        src = Path(os.fspath(path))
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        dst = src.with_name(f"{src.name}.corrupt-{stamp}")
        n = 0
        while dst.exists():
            n += 1
            dst = src.with_name(f"{src.name}.corrupt-{stamp}-{n}")
        try:
            for suffix in ("-wal", "-shm", ""):
                side = Path(str(src) + suffix)
                if side.exists():
                    side.rename(Path(str(dst) + suffix))
        except OSError:
            raise StorageError("the damaged history could not be moved aside") from None
        return dst

    def close(self) -> None:
        """Close the database and drop the keys. Later calls raise ClosedError. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._profile = None
            self._master = b""
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                raise translate(exc) from None

    @property
    def closed(self) -> bool:
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


_PRIVATE = object()
_MAX_SEQ: Final = 2**63 - 1
_MAX_KEY_ID: Final = 2**32 - 1


def _blob(value: object, what: str) -> bytes:
    if type(value) is not bytes:
        raise IntegrityError(f"{what} is malformed")
    return value


def _valid_rows(rows: list[Any]) -> list[tuple[int, int, bytes]]:
    """Event rows as stored, typed; anything else in the columns is tampering."""
    for seq, key_id, blob in rows:
        if type(seq) is not int or not 0 < seq <= _MAX_SEQ:
            raise IntegrityError("an event row has an invalid sequence number")
        if type(key_id) is not int or not 0 <= key_id <= _MAX_KEY_ID or type(blob) is not bytes:
            raise IntegrityError(f"event seq={seq} is malformed", seq=seq)
    return rows


_GUEST: Any = "\x00edgerec-guest"  # a path no filesystem accepts: never a real file

# Filesystems where SQLite's WAL (shared memory between processes) is unsafe.
NETWORK_FILESYSTEMS: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs"}
)


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


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        raise KeyUnavailableError(
            "keyring_service= needs the optional 'keyring' package (pip install keyring)"
        ) from None
    return keyring
