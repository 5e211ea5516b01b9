"""Master keys: where the host's key comes from, the KDF record, the key-check canary, and
the store key with the subkeys derived from it.

Owns: the ``store_meta`` records ``store_id``, ``kdf``, ``key_check`` and ``store_key``,
every path to :class:`~edgerec.WrongKeyError` and :class:`~edgerec.KeyUnavailableError`,
and the opening of a store (:func:`open_store`): a new file gets its tables, its keys and
generation 0 in one transaction, an existing store is migrated, then unlocked. May touch:
those records and the schema (through :mod:`~edgerec.history.schema`), the first generation
record, the OS keystore (only for ``keyring_service=`` stores, only through the optional
``keyring`` package), and :mod:`~edgerec.history.crypto` for every derivation and wrap.

Sources, exactly one per open (:class:`KeySource`):

* ``key=``: 32 raw bytes from the host. KDF record ``{"kind": "raw"}``.
* ``passphrase=``: scrypt(NFC(passphrase), a random 16-byte salt, n, r=8, p=1). The record
  holds salt and cost, so an existing store keeps its cost whatever ``scrypt_n`` says.
* ``keyring_service=``: a random master key, saved at creation under
  ``(service, "history-<store id hex>")`` in the OS keystore and read from there at each
  open. A missing, locked or changed keystore is ``KeyUnavailableError``: never a new store.

The canary and the wrapped store key are bound (AAD) to the store id and the KDF record:
a KDF record edited, or copied from another store, fails like a wrong key.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Final

from .._json import StrictJSONError, loads_strict
from ..errors import (
    HistoryError,
    InvalidInputError,
    InvalidTypeError,
    KeyUnavailableError,
    ReadOnlyStorageError,
    StorageCorruptError,
    UnsupportedFormatError,
    WrongKeyError,
)
from . import crypto, schema
from .connection import Database
from .limits import MAX_PASSPHRASE_CHARS, MAX_SERVICE_CHARS, check_text
from .rollback import Generation
from .schema import read_meta, write_meta

__all__ = [
    "DEFAULT_SCRYPT_N",
    "KeySource",
    "StoreKeys",
    "create",
    "new_master",
    "open_store",
    "read_store_key",
    "unlock",
    "write_master",
]

DEFAULT_SCRYPT_N: Final = 2**15  # 128 * n * r bytes: 32 MiB of memory per derivation
_MAX_SCRYPT_N: Final = 2**24  # the largest scrypt_n open() accepts
_OPTION: Final = {"raw": "key=", "scrypt": "passphrase=", "keyring": "keyring_service="}


@dataclass(frozen=True, repr=False, eq=False)  # secrets: never compared, never shown
class KeySource:
    """Exactly one master-key source, checked. Its ``repr`` shows the kind, never the secret."""

    key: bytes | None = None
    passphrase: str | None = None
    keyring_service: str | None = None

    @classmethod
    def checked(
        cls, key: object, passphrase: object, keyring_service: object, *, keyring: bool = True
    ) -> KeySource:
        """The source given by exactly one of the arguments.

        Raises:
            InvalidInputError: not exactly one source, a key of the wrong length, an empty
                or over-long passphrase or service name.
            InvalidTypeError: a key that is not ``bytes``, a passphrase that is not ``str``.
        """
        options = "key=, passphrase=, keyring_service=" if keyring else "key=, passphrase="
        given = [s for s in (key, passphrase, keyring_service) if s is not None]
        if len(given) != 1 or (keyring_service is not None and not keyring):
            raise InvalidInputError(f"pass exactly one of {options}")
        if key is not None:
            if not isinstance(key, bytes):
                raise InvalidTypeError(f"key: expected bytes, got {type(key).__name__}")
            if len(key) != crypto.KEY_BYTES:
                raise InvalidInputError(f"key: must be exactly {crypto.KEY_BYTES} bytes")
            return cls(key=key)
        if passphrase is not None:
            return cls(passphrase=check_text("passphrase", passphrase, MAX_PASSPHRASE_CHARS))
        service = check_text("keyring_service", keyring_service, MAX_SERVICE_CHARS)
        return cls(keyring_service=service)

    @property
    def kind(self) -> str:
        """``"raw"``, ``"scrypt"`` or ``"keyring"``: the KDF record's ``kind``."""
        if self.key is not None:
            return "raw"
        return "scrypt" if self.passphrase is not None else "keyring"

    def __repr__(self) -> str:
        return f"KeySource({self.kind}, <hidden>)"


@dataclass(frozen=True, repr=False, eq=False)  # secrets: never compared, never shown
class StoreKeys:
    """An unlocked store: its id, KDF record, master key and the store key's subkeys."""

    store_id: bytes
    kdf_raw: bytes
    master: bytes
    wrap: bytes  # wraps each profile's MAC key and data keys
    pseudonym: bytes  # HMAC: profile name -> pseudonymous id
    names: bytes  # encrypts the profile names
    generation: bytes  # MACs the rollback generation record
    impressions: bytes  # seals each profile's impression log

    @classmethod
    def derive(cls, store_id: bytes, kdf_raw: bytes, master: bytes, store_key: bytes) -> StoreKeys:
        """The subkeys of ``store_key`` (one HKDF per purpose; see the crypto diagram)."""
        return cls(
            store_id,
            kdf_raw,
            master,
            wrap=crypto.hkdf(store_key, b"edgerec/history/profile-wrap"),
            pseudonym=crypto.hkdf(store_key, b"edgerec/history/profile-id"),
            names=crypto.hkdf(store_key, b"edgerec/history/profile-name"),
            generation=crypto.hkdf(store_key, b"edgerec/history/generation"),
            impressions=crypto.hkdf(store_key, b"edgerec/history/impressions"),
        )

    def __repr__(self) -> str:
        return "StoreKeys(<hidden>)"


def create(
    conn: sqlite3.Connection,
    source: KeySource,
    *,
    scrypt_n: int,
    random_bytes: crypto.RandomBytes,
) -> StoreKeys:
    """Key a new store (inside its creating transaction): store id, master key, canary and
    a random store key wrapped under the master key.

    Raises:
        KeyUnavailableError: the OS keystore is missing, refuses, or already has an entry.
    """
    store_id = random_bytes(16)
    kdf_raw, master = new_master(source, store_id, scrypt_n=scrypt_n, random_bytes=random_bytes)
    store_key = random_bytes(crypto.KEY_BYTES)
    write_meta(conn, "store_id", store_id)
    write_master(
        conn,
        store_id,
        kdf_raw=kdf_raw,
        master=master,
        store_key=store_key,
        random_bytes=random_bytes,
    )
    return StoreKeys.derive(store_id, kdf_raw, master, store_key)


def new_master(
    source: KeySource, store_id: bytes, *, scrypt_n: int, random_bytes: crypto.RandomBytes
) -> tuple[bytes, bytes]:
    """(KDF record, master key) for a new store or a master-key rotation.

    Raises:
        KeyUnavailableError: the OS keystore is missing, refuses, or already has an entry.
    """
    if source.key is not None:
        return json.dumps({"kind": "raw"}).encode(), source.key
    if source.passphrase is not None:
        salt = random_bytes(16)
        kdf = {"kind": "scrypt", "salt": salt.hex(), "n": scrypt_n, "r": 8, "p": 1}
        master = crypto.derive_passphrase_key(source.passphrase, salt, scrypt_n, 8, 1)
        return json.dumps(kdf, sort_keys=True).encode(), master
    service = source.keyring_service
    user = "history-" + store_id.hex()
    master = random_bytes(crypto.KEY_BYTES)
    kr = _keyring()
    try:
        if kr.get_password(service, user) is not None:
            raise KeyUnavailableError("the keystore already holds a key for this store id")
        kr.set_password(service, user, master.hex())
    except HistoryError:
        raise
    except Exception:  # keyring backends raise anything; the message must not echo it
        raise KeyUnavailableError("the OS keystore refused to store the key") from None
    kdf = {"kind": "keyring", "service": service, "user": user}
    return json.dumps(kdf, sort_keys=True).encode(), master


def write_master(
    conn: sqlite3.Connection,
    store_id: bytes,
    *,
    kdf_raw: bytes,
    master: bytes,
    store_key: bytes,
    random_bytes: crypto.RandomBytes,
) -> None:
    """Write the KDF record, the canary and the store key wrapped under ``master`` (one
    transaction: the caller's)."""
    write_meta(conn, "kdf", kdf_raw)
    check = crypto.wrap(
        master, crypto.KEY_CHECK_PLAINTEXT, _aad(b"key-check", store_id, kdf_raw), random_bytes
    )
    write_meta(conn, "key_check", check)
    wrapped = crypto.wrap(master, store_key, _aad(b"store-key", store_id, kdf_raw), random_bytes)
    write_meta(conn, "store_key", wrapped)


# ------------------------------------------------------------------- opening
def open_store(
    db: Database, source: KeySource, *, scrypt_n: int, random_bytes: crypto.RandomBytes
) -> StoreKeys:
    """The keys of the store in ``db``. A file without a store gets its tables, keys and
    generation 0 in one transaction (a store is never without its keys); an existing store
    is migrated if needed, then unlocked with ``source`` (A1, A2).

    Raises:
        UnsupportedFormatError: the file is another database, or a newer store format.
        ReadOnlyStorageError: the file holds no store and is opened read-only.
        StorageCorruptError: the store has no valid format record.
        WrongKeyError, KeyUnavailableError: see :func:`unlock`.
    """
    with db.sql() as conn:
        tables = schema.tables(conn)
    if tables and "store_meta" not in tables:
        raise UnsupportedFormatError("this database is not an edgerec history store")
    if not db.read_only and not db.guest:  # after the check: never change a foreign file
        db.use_wal()
    created: StoreKeys | None = None
    if "store_meta" not in tables:
        if db.read_only:
            raise ReadOnlyStorageError("cannot create a history store read-only")
        with db.write() as conn:
            if schema.store_format(conn) is None:  # not created meanwhile by another
                schema.create(conn)
                created = create(conn, source, scrypt_n=scrypt_n, random_bytes=random_bytes)
                Generation(created.generation, created.store_id, None).write(conn, 0)
        db.holds_store()
    with db.sql() as conn:
        schema.check_format(conn)
        pending = schema.pending_migrations(conn)
    if pending and not db.read_only:
        # (Read-only, an older store is read as it is: see schema.has_window.)
        with db.write() as conn:
            schema.apply_migrations(conn)
    return created or unlock(db, source)


def unlock(db: Database, source: KeySource) -> StoreKeys:
    """Derive the master key from ``source``, prove it on the canary, unwrap the store key.

    Raises:
        WrongKeyError: another key, passphrase, kind of source or keystore service.
        KeyUnavailableError: the OS keystore is missing, locked, or has no usable entry.
        StorageCorruptError: the KDF record is unreadable.
        UnsupportedFormatError: the KDF record names an unknown derivation.
        IntegrityError: the wrapped store key failed authentication.
    """
    with db.read() as conn:
        store_id = read_meta(conn, "store_id") or b""
        kdf_raw = read_meta(conn, "kdf") or b"{}"
        check = read_meta(conn, "key_check") or b""
        wrapped = read_meta(conn, "store_key") or b""
    try:
        # Strict: read before anything authenticates it (the canary's AAD does, after), so
        # a hostile record (deep nesting, NaN, duplicate keys) is a typed error.
        kdf = loads_strict(kdf_raw)
    except StrictJSONError:
        raise StorageCorruptError("the history store's key record is unreadable") from None
    master = _master_from(kdf, source)
    crypto.unwrap(master, check, _aad(b"key-check", store_id, kdf_raw), what="key-check")
    store_key = crypto.unwrap(
        master, wrapped, _aad(b"store-key", store_id, kdf_raw), what="store key"
    )
    return StoreKeys.derive(store_id, kdf_raw, master, store_key)


def read_store_key(conn: sqlite3.Connection, keys: StoreKeys) -> bytes:
    """The store key as wrapped on disk now (a master-key rotation re-wraps it).

    Raises:
        IntegrityError: it failed authentication under the current master key.
    """
    wrapped = read_meta(conn, "store_key") or b""
    aad = _aad(b"store-key", keys.store_id, keys.kdf_raw)
    return crypto.unwrap(keys.master, wrapped, aad, what="store key")


def _master_from(kdf: Any, source: KeySource) -> bytes:
    kind = kdf.get("kind") if isinstance(kdf, dict) else None
    if kind not in _OPTION:
        raise UnsupportedFormatError("the history store uses an unknown key derivation")
    if kind != source.kind:
        raise WrongKeyError(f"this history store is opened with {_OPTION[kind]}")
    if source.key is not None:
        return source.key
    if source.passphrase is not None:
        try:
            salt = bytes.fromhex(kdf["salt"])
            n, r, p = kdf["n"], kdf["r"], kdf["p"]
            # The costs this SDK writes (limits.Options); anything else was edited, and an
            # edited cost must not make the open spend minutes or gigabytes.
            if not (
                all(type(v) is int for v in (n, r, p))
                and 2 <= n <= _MAX_SCRYPT_N
                and not n & (n - 1)
                and r == 8
                and p == 1
            ):
                raise ValueError("scrypt cost out of range")
            return crypto.derive_passphrase_key(source.passphrase, salt, n, r, p)
        except (KeyError, ValueError, TypeError, MemoryError, OverflowError):
            raise StorageCorruptError("the history store's scrypt record is invalid") from None
    if kdf.get("service") != source.keyring_service:
        raise WrongKeyError("this history store uses another keystore service name")
    kr = _keyring()
    try:
        secret = kr.get_password(source.keyring_service, str(kdf.get("user")))
    except Exception:  # a locked or broken backend: whatever it raises, one typed error
        raise KeyUnavailableError("the OS keystore is locked or unavailable") from None
    if secret is None:
        raise KeyUnavailableError("the OS keystore holds no key for this history store")
    try:
        master = bytes.fromhex(secret)
    except (ValueError, TypeError):
        raise KeyUnavailableError("the keystore entry for this store is not a key") from None
    if len(master) != crypto.KEY_BYTES:
        raise KeyUnavailableError("the keystore entry for this store is not a key")
    return master


def _aad(purpose: bytes, store_id: bytes, kdf_raw: bytes) -> bytes:
    return b"edgerec/history/" + purpose + b"\x00" + store_id + b"\x00" + kdf_raw


def _keyring() -> Any:
    # Imported here, not at module level: the package is optional, and a kiosk that opens
    # with key= must not pay for (or depend on) a keystore backend.
    try:
        import keyring
    except ImportError:
        raise KeyUnavailableError(
            "keyring_service= needs the optional 'keyring' package (pip install keyring)"
        ) from None
    return keyring
