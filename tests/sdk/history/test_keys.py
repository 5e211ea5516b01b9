"""edgerec.history.keys: master-key sources (raw, passphrase, OS keystore), the canary
(A1), keystore faults (A2), scrypt costs and NFC passphrases, a hostile KDF record (D3)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from edgerec import (
    InvalidInputError,
    KeyUnavailableError,
    StorageCorruptError,
    WrongKeyError,
)
from edgerec.history import keys
from tests.support.history import (
    FAST_SCRYPT,
    KEY,
    OTHER_KEY,
    article,
    digest,
    filled,
    open_store,
    raw_sql,
)


def test_a1_wrong_raw_key_fails_at_open_file_unchanged(path: Path) -> None:
    filled(path, 2).close()
    before = digest(path)
    with pytest.raises(WrongKeyError):
        open_store(path, key=OTHER_KEY)
    assert digest(path) == before
    with open_store(path) as h:
        assert len(h) == 2


def test_passphrase_round_trip_and_wrong_passphrase(path: Path) -> None:
    filled(path, 2, passphrase="correct horse", scrypt_n=FAST_SCRYPT).close()
    before = digest(path)
    with pytest.raises(WrongKeyError):
        open_store(path, passphrase="wrong horse")
    with pytest.raises(WrongKeyError, match="passphrase="):
        open_store(path, key=KEY)
    assert digest(path) == before
    with open_store(path, passphrase="correct horse") as h:
        assert len(h) == 2
    with raw_sql(path) as conn:
        kdf = json.loads(
            conn.execute("SELECT value FROM store_meta WHERE name='kdf'").fetchone()[0]
        )
    assert kdf["kind"] == "scrypt" and kdf["n"] == FAST_SCRYPT


def test_default_scrypt_cost_is_strong(path: Path) -> None:
    assert keys.DEFAULT_SCRYPT_N == 2**15
    open_store(path, passphrase="pw").close()
    with raw_sql(path) as conn:
        kdf = json.loads(
            conn.execute("SELECT value FROM store_meta WHERE name='kdf'").fetchone()[0]
        )
    assert (kdf["n"], kdf["r"], kdf["p"]) == (2**15, 8, 1)


def test_passphrase_is_nfc_normalised(path: Path) -> None:
    composed, decomposed = "caf\u00e9 ol\u00e9", "cafe\u0301 ole\u0301"
    filled(path, 1, passphrase=composed, scrypt_n=FAST_SCRYPT).close()
    with open_store(path, passphrase=decomposed) as h:
        assert len(h) == 1
    with pytest.raises(WrongKeyError):
        open_store(path, passphrase="cafe ole")


class FakeKeyring(types.ModuleType):
    """The slice of the ``keyring`` module API the SDK uses, in memory."""

    def __init__(self) -> None:
        super().__init__("keyring")
        self.store: dict[tuple[str, str], str] = {}
        self.locked = False

    def get_password(self, service: str, user: str) -> str | None:
        if self.locked:
            raise RuntimeError("keyring locked")
        return self.store.get((service, user))

    def set_password(self, service: str, user: str, secret: str) -> None:
        if self.locked:
            raise RuntimeError("keyring locked")
        self.store[(service, user)] = secret


def test_a2_keyring_missing_locked_or_changed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKeyring()
    monkeypatch.setitem(sys.modules, "keyring", fake)
    with open_store(path, keyring_service="edgerec-test") as h:
        h.record(article(1))
    (secret,) = fake.store.values()
    assert len(bytes.fromhex(secret)) == 32
    with open_store(path, keyring_service="edgerec-test") as h:
        assert len(h) == 1
    before = digest(path)
    fake.locked = True
    with pytest.raises(KeyUnavailableError):
        open_store(path, keyring_service="edgerec-test")
    fake.locked = False
    with pytest.raises(WrongKeyError):  # another service name: not this store's entry
        open_store(path, keyring_service="other-service")
    saved = dict(fake.store)
    fake.store.clear()  # the entry is gone (backend changed / wiped)
    with pytest.raises(KeyUnavailableError):
        open_store(path, keyring_service="edgerec-test")
    fake.store.update({k: "not hex" for k in saved})
    with pytest.raises(KeyUnavailableError):
        open_store(path, keyring_service="edgerec-test")
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed
    with pytest.raises(KeyUnavailableError, match="keyring"):
        open_store(path, keyring_service="edgerec-test")
    assert digest(path) == before  # never a new store over the old one


def test_a2_keyring_not_installed_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    target = tmp_path / "new.db"
    with pytest.raises(KeyUnavailableError):
        open_store(target, keyring_service="svc")
    assert not target.exists()  # the failed create leaves nothing behind


def test_a2_real_keyring_package_with_memory_backend(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = pytest.importorskip(
        "keyring", reason="the optional 'keyring' package is not installed (dev extra)"
    )
    from keyring.backend import KeyringBackend
    from keyring.errors import KeyringLocked

    class MemoryBackend(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}
            self.locked = False

        def get_password(self, service: str, username: str) -> str | None:
            if self.locked:
                raise KeyringLocked("locked")
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            del self.items[(service, username)]

    previous = keyring.get_keyring()
    backend = MemoryBackend()
    keyring.set_keyring(backend)
    try:
        with open_store(path, keyring_service="edgerec-real") as h:
            h.record(article(1))
        with open_store(path, keyring_service="edgerec-real") as h:
            assert len(h) == 1
        backend.locked = True
        with pytest.raises(KeyUnavailableError):
            open_store(path, keyring_service="edgerec-real")
        backend.locked = False
        keyring.set_keyring(MemoryBackend())  # the backend changed: no entry there
        with pytest.raises(KeyUnavailableError):
            open_store(path, keyring_service="edgerec-real")
    finally:
        keyring.set_keyring(previous)


def test_key_source_and_store_keys_never_show_their_secrets() -> None:
    source = keys.KeySource.checked(KEY, None, None)
    phrase = keys.KeySource.checked(None, "correct horse", None)
    unlocked = keys.StoreKeys.derive(b"i" * 16, b"{}", KEY, OTHER_KEY)
    text = f"{source!r} {phrase!r} {unlocked!r} {source} {unlocked}"
    assert "correct horse" not in text and KEY.hex() not in text and repr(KEY) not in text
    assert (source.kind, phrase.kind) == ("raw", "scrypt")
    with pytest.raises(InvalidInputError, match=r"key=, passphrase=$"):
        keys.KeySource.checked(None, None, "svc", keyring=False)


@pytest.mark.parametrize(
    "record",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in a plain json.loads
        b'{"kind": "raw", "kind": "scrypt"}',  # duplicate keys
        b'{"kind": "scrypt", "salt": "00", "n": NaN, "r": 8, "p": 1}',
        b'{"kind": "scrypt", "salt": "00", "n": 1e400, "r": 8, "p": 1}',
        b'{"kind": "scrypt", "salt": "00", "n": 1099511627776, "r": 8, "p": 1}',  # 2**40
        b'{"kind": "scrypt", "salt": "00", "n": 16, "r": 1000000, "p": 1}',
        b'{"kind": "scrypt", "salt": "00", "n": 16.0, "r": 8, "p": 1}',
        b"\xff\xfe not utf-8",
    ],
)
def test_d3_hostile_key_record_is_a_typed_error(path: Path, record: bytes) -> None:
    """The KDF record is parsed before anything authenticates it: deep nesting, NaN,
    huge numbers or an edited scrypt cost are StorageCorruptError, never a RecursionError
    nor minutes of scrypt."""
    filled(path, 1, passphrase="pw", scrypt_n=FAST_SCRYPT).close()
    with raw_sql(path) as conn:
        conn.execute("UPDATE store_meta SET value = ? WHERE name = 'kdf'", (record,))
    with pytest.raises(StorageCorruptError):
        open_store(path, passphrase="pw")
