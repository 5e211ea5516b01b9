"""The sharp layer under :mod:`edgerec.history`: master keys, key wrapping, AEAD, MACs.

Everything here works on bytes; the public layer validates input and translates errors.
Exceptions from ``cryptography`` are caught *here* and turned into edgerec errors, with
messages that hold no key bytes and no plaintext.

Key hierarchy::

    master key (host: raw 32 bytes | scrypt(passphrase) | OS keystore)
      ├─ key-check canary        AES-256-GCM; proves the master key at open (WrongKeyError)
      └─ store key (wrapped)     random; rotate_master_key() re-wraps only this
           ├─ HKDF "profile-wrap"  wraps each profile's keys (below)
           ├─ HKDF "profile-id"    HMAC: profile name -> pseudonymous 16-byte id
           ├─ HKDF "profile-name"  AES-GCM: the encrypted profile names
           └─ HKDF "generation"    HMAC over the rollback generation record
    per profile, wrapped:  a MAC key (head record and row digests; lives as long as the
                           profile) and one data key per key id (two only while
                           rotate_profile_key() is re-encrypting)

Record layout (one AES-256-GCM ciphertext per event)::

    blob = version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)
    aad  = b"edgerec/history/event" || version || profile id || seq (8) || key id (4)
"""

from __future__ import annotations

import hmac
import struct
import unicodedata
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import IntegrityError, UnsupportedFormatError, WrongKeyError

__all__ = [
    "AAD_PREFIX",
    "KEY_BYTES",
    "MIN_RECORD",
    "NONCE_BYTES",
    "RECORD_VERSION",
    "SEQ_KEY",
    "RandomBytes",
    "derive_passphrase_key",
    "event_aad",
    "hkdf",
    "mac",
    "open_record",
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

RandomBytes = Callable[[int], bytes]


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


def wrap(master: bytes, secret: bytes, aad: bytes, random_bytes: RandomBytes) -> bytes:
    """Encrypt a key (or the key-check canary) under the master key."""
    nonce = random_bytes(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, secret, aad)


def unwrap(master: bytes, blob: bytes, aad: bytes, *, what: str) -> bytes:
    """Decrypt a wrapped key. A failure on the key-check canary is a wrong master key; on
    anything else it is tampering (the canary already proved the master key)."""
    try:
        return AESGCM(master).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        if what == "key-check":
            raise WrongKeyError("the master key does not open this history store") from None
        raise IntegrityError(f"the wrapped {what} failed authentication") from None


AAD_PREFIX: Final = b"edgerec/history/event" + bytes([RECORD_VERSION])
SEQ_KEY: Final = struct.Struct(">QI").pack
MIN_RECORD: Final = 1 + NONCE_BYTES + TAG_BYTES


def event_aad(pid: bytes, seq: int, key_id: int) -> bytes:
    return AAD_PREFIX + pid + SEQ_KEY(seq, key_id)


def seal_record(
    aead: AESGCM,
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


def open_record(aead: AESGCM | None, pid: bytes, seq: int, key_id: int, blob: bytes) -> bytes:
    """Decrypt one event or raise ``IntegrityError(seq=...)``; never partial plaintext."""
    if not isinstance(blob, bytes) or len(blob) < MIN_RECORD:
        raise IntegrityError(f"event seq={seq} is malformed", seq=seq)
    if blob[0] != RECORD_VERSION:
        raise UnsupportedFormatError(
            f"event seq={seq} has record format {blob[0]}; this SDK reads {RECORD_VERSION}"
        )
    if aead is None:
        raise IntegrityError(f"event seq={seq} names a key this profile does not have", seq=seq)
    try:
        return aead.decrypt(blob[1:13], blob[13:], AAD_PREFIX + pid + SEQ_KEY(seq, key_id))
    except InvalidTag:
        raise IntegrityError(f"event seq={seq} failed authentication", seq=seq) from None
