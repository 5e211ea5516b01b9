"""The sharp layer under :mod:`edgerec.history`: master keys, key wrapping, AEAD, MACs.

Everything here works on bytes; the modules above validate input. This is the only module
of the SDK that encrypts or decrypts (``git grep AESGCM sdk`` finds nothing else), and
:func:`open_records` is the only place an event record is decrypted. Exceptions from
``cryptography`` are caught *here* and turned into edgerec errors, with messages that hold
no key bytes and no plaintext.

Key hierarchy::

    master key (host: raw 32 bytes | scrypt(passphrase) | OS keystore)
      ├─ key-check canary        AES-256-GCM; proves the master key at open (WrongKeyError)
      └─ store key (wrapped)     random; rotate_master_key() re-wraps only this
           ├─ HKDF "profile-wrap"  wraps each profile's keys (below)
           ├─ HKDF "profile-id"    HMAC: profile name -> pseudonymous 16-byte id
           ├─ HKDF "profile-name"  AES-GCM: the encrypted profile names
           ├─ HKDF "generation"    HMAC over the rollback generation record
           └─ HKDF "impressions"   AES-GCM: each profile's impression log (one row)
    per profile, wrapped:  a MAC key (head record and row digests; lives as long as the
                           profile) and one data key per key id (two only while
                           rotate_profile_key() is re-encrypting)

Record layout (one AES-256-GCM ciphertext per event)::

    blob = version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)
    aad  = b"edgerec/history/event" || version || profile id || seq (8) || key id (4)

A wrapped secret (a key, the canary, a profile name) is ``nonce (12) || ciphertext || tag``
under its wrapping key, with associated data naming what it is and whose.
"""

from __future__ import annotations

import hmac
import struct
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import IntegrityError, UnsupportedFormatError, WrongKeyError

__all__ = [
    "AAD_PREFIX",
    "KEY_BYTES",
    "MAX_KEY_ID",
    "MAX_SEQ",
    "MIN_RECORD",
    "NONCE_BYTES",
    "RECORD_VERSION",
    "SEQ_KEY",
    "DataKey",
    "RandomBytes",
    "Row",
    "check_rows",
    "data_key",
    "derive_passphrase_key",
    "event_aad",
    "hkdf",
    "mac",
    "open_records",
    "seal_record",
    "unwrap",
    "wrap",
    "xor32",
]

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
RECORD_VERSION: Final = 1
KEY_CHECK_PLAINTEXT: Final = b"edgerec/history/key-check/v1"
# The AAD packs seq in 8 bytes (signed range: SQLite's INTEGER) and the key id in 4.
MAX_SEQ: Final = 2**63 - 1
MAX_KEY_ID: Final = 2**32 - 1

RandomBytes = Callable[[int], bytes]
# A data key with its AES key schedule computed once (a profile encrypts thousands of
# records under one key; building the schedule per record would double the cost).
DataKey: TypeAlias = AESGCM
# An event row as stored in the ``events`` table: (seq, key id, blob).
Row: TypeAlias = tuple[int, int, bytes]


def derive_passphrase_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The master key from a passphrase: scrypt(UTF-8 of its NFC form, salt, n, r, p).

    NFC, so that "é" typed as one code point or as e + combining accent (another keyboard
    or input method on the same kiosk) is the same passphrase.
    """
    data = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(data)


def hkdf(key: bytes, info: bytes) -> bytes:
    """A 32-byte subkey of ``key`` for one purpose (HKDF-SHA256, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


_LEN = struct.Struct(">I").pack


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over length-prefixed parts (so part boundaries cannot shift)."""
    msg = b"".join([_LEN(len(part)) + part for part in parts])
    return hmac.digest(key, msg, "sha256")


def xor32(a: bytes, b: bytes) -> bytes:
    """XOR of two 32-byte strings: the profile digest is the XOR of its row MACs, a keyed
    set hash that adding or removing one row updates in O(1)."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(32, "big")


def data_key(raw: bytes) -> DataKey:
    """The AEAD of one profile data key (32 raw bytes)."""
    return AESGCM(raw)


def wrap(key: bytes, secret: bytes, aad: bytes, random_bytes: RandomBytes) -> bytes:
    """Encrypt a small secret (a key, the key-check canary, a profile name) under ``key``."""
    nonce = random_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, secret, aad)


def unwrap(key: bytes, blob: bytes, aad: bytes, *, what: str) -> bytes:
    """Decrypt a wrapped secret. A failure on the key-check canary is a wrong master key; on
    anything else it is tampering (the canary already proved the master key).

    Raises:
        WrongKeyError: ``what`` is ``"key-check"`` and ``key`` is not the master key.
        IntegrityError: any other wrapped secret failed authentication.
    """
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):  # ValueError: a nonce cut short by tampering
        if what == "key-check":
            raise WrongKeyError("the master key does not open this history store") from None
        raise IntegrityError(f"the wrapped {what} failed authentication") from None


AAD_PREFIX: Final = b"edgerec/history/event" + bytes([RECORD_VERSION])
SEQ_KEY: Final = struct.Struct(">QI").pack
MIN_RECORD: Final = 1 + NONCE_BYTES + TAG_BYTES


def event_aad(pid: bytes, seq: int, key_id: int) -> bytes:
    """The associated data of one event record (binds profile, seq, key id, format)."""
    return AAD_PREFIX + pid + SEQ_KEY(seq, key_id)


def seal_record(
    aead: DataKey,
    pid: bytes,
    seq: int,
    key_id: int,
    plaintext: bytes,
    *,
    random_bytes: RandomBytes,
) -> bytes:
    """One event's ciphertext blob; a fresh random nonce every call."""
    nonce = random_bytes(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError("random_bytes returned the wrong number of bytes")
    body = aead.encrypt(nonce, plaintext, event_aad(pid, seq, key_id))
    return bytes([RECORD_VERSION]) + nonce + body


def check_rows(rows: Iterable[Sequence[object]]) -> list[Row]:
    """Event rows as the record layout allows them; anything else in the columns (NULL,
    text, a float, a seq or key id the AAD cannot hold) is tampering.

    Raises:
        IntegrityError: a row's seq, key id or blob has the wrong type or range.
    """
    return [_row(*row) for row in rows]


def _row(seq: object, key_id: object, blob: object) -> Row:
    if type(seq) is not int or not 0 < seq <= MAX_SEQ:
        raise IntegrityError("an event row has an invalid sequence number")
    if type(key_id) is not int or not 0 <= key_id <= MAX_KEY_ID or type(blob) is not bytes:
        raise IntegrityError(f"event seq={seq} is malformed", seq=seq)
    return seq, key_id, blob


def open_records(
    keys: Mapping[int, DataKey],
    pid: bytes,
    rows: Iterable[Sequence[object]],
    *,
    last_seq: int,
) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Decrypt event rows lazily, in the order given: ``(seq, key_id, blob, plaintext)``.

    The one decryption of a record, on the ranker's hot path (the newest ``L`` events per
    recommendation): a caller that stops early (age pruning) decrypts no further row.
    Each row is authenticated before it is yielded; a fault names the row's seq and yields
    nothing of it (no partial plaintext).

    Args:
        keys: the profile's data keys by key id.
        pid: the profile's pseudonymous id (part of the AAD).
        rows: ``(seq, key_id, blob)`` as read from the ``events`` table, unchecked.
        last_seq: the head record's last seq; a row past it is not the profile's.

    Raises:
        IntegrityError: a malformed row, a seq outside the head record, a key id the
            profile does not have, or a failed authentication.
        UnsupportedFormatError: the record's version byte is unknown.
    """
    prefix = AAD_PREFIX + pid
    for raw in rows:
        seq, key_id, blob = _row(*raw)
        if seq > last_seq:
            raise IntegrityError(f"event seq={seq} is outside the head record", seq=seq)
        if len(blob) < MIN_RECORD:
            raise IntegrityError(f"event seq={seq} is malformed", seq=seq)
        if blob[0] != RECORD_VERSION:
            raise UnsupportedFormatError(
                f"event seq={seq} has record format {blob[0]}; this SDK reads {RECORD_VERSION}"
            )
        aead = keys.get(key_id)
        if aead is None:
            raise IntegrityError(f"event seq={seq} names a key this profile does not have", seq=seq)
        try:
            plain = aead.decrypt(blob[1:13], blob[13:], prefix + SEQ_KEY(seq, key_id))
        except InvalidTag:
            raise IntegrityError(f"event seq={seq} failed authentication", seq=seq) from None
        yield seq, key_id, blob, plain
