"""edgerec.history: round trips, keys, tampering (group a), bad input (d), privacy (e).

Crash, concurrency and disk faults live in test_history_faults.py.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sqlite3
import sys
import tempfile
import types
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgerec
from edgerec import (
    ClosedError,
    EdgerecError,
    HistoryEvent,
    IntegrityError,
    InvalidInputError,
    InvalidTypeError,
    KeyUnavailableError,
    ReadingHistory,
    ReadOnlyStorageError,
    RollbackDetectedError,
    StorageCorruptError,
    StorageError,
    UnsupportedFormatError,
    WrongKeyError,
)
from edgerec.features.values import MAX_TIME, MIN_TIME
from edgerec.history import connection, keys, limits
from edgerec.history import crypto as hc

from .history_support import (
    CANARIES,
    CANARY_ID,
    CANARY_PROFILE,
    CANARY_TITLE,
    KEY,
    OTHER_KEY,
    Clock,
    article,
    canary_article,
    digest,
    flip_blob_byte,
    open_store,
    raw_bytes,
    raw_sql,
    seeded_random,
)

FAST_SCRYPT = 2**4


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


def filled(path: Path, n: int = 5, **kw: Any) -> ReadingHistory:
    h = open_store(path, **kw)
    for i in range(n):
        h.record(article(i), at=1_000.0 + i, dwell_s=float(i))
    return h


# ------------------------------------------------------------------ basic behaviour
def test_record_and_recent_round_trip(path: Path) -> None:
    with open_store(path, profile="alice") as h:
        assert h.record(article(1), at=1_700_000_000.5, dwell_s=12.25) == 1
        assert h.record({"id": "N2"}, at=datetime(2026, 1, 2, tzinfo=UTC)) == 2
        newest, oldest = h.recent(10)
        assert (newest.seq, newest.article_id, newest.features, newest.dwell_s) == (
            2,
            "N2",
            {},
            None,
        )
        assert newest.at == datetime(2026, 1, 2, tzinfo=UTC).timestamp()
        assert newest.when == datetime(2026, 1, 2, tzinfo=UTC)
        expected = {k: v for k, v in article(1).items() if k != "id"}
        assert oldest == HistoryEvent(1, "N1", expected, 1_700_000_000.5, 12.25)
        assert oldest.article() == article(1)
        assert len(h) == 2
        assert [e.seq for e in h.recent(1)] == [2]
        assert h.recent(0) == []
        assert h.profile == "alice"
        assert h.verify() == 2


def test_history_features_featurize_like_the_article(path: Path) -> None:
    spec = edgerec.FeatureSpec.default()
    with open_store(path) as h:
        h.record(article(3), at=5.0)
        (event,) = h.recent(1)
    assert (
        edgerec.featurize([event.article()], spec) == edgerec.featurize([article(3)], spec)
    ).all()


def test_default_clock_and_injected_clock(path: Path) -> None:
    clock = Clock(1_234.5)
    with open_store(path, clock=clock) as h:
        h.record(article(1))
        assert h.recent(1)[0].at == 1_234.5


def test_injected_randomness_gives_exact_ciphertexts(tmp_path: Path) -> None:
    blobs = []
    for name in ("a.db", "b.db"):
        with open_store(tmp_path / name, random_bytes=seeded_random(7), clock=Clock()) as h:
            h.record(article(1))
        with raw_sql(tmp_path / name) as conn:
            blobs.append(conn.execute("SELECT blob FROM events").fetchone()[0])
    assert blobs[0] == blobs[1]
    assert blobs[0][0] == hc.RECORD_VERSION and len(blobs[0]) > 1 + 12 + 16


def test_export_json(path: Path) -> None:
    with filled(path, 3, profile="bob") as h:
        doc = json.loads(h.export())
    assert doc["format"] == "edgerec.history.export" and doc["profile"] == "bob"
    assert [e["seq"] for e in doc["events"]] == [1, 2, 3]
    assert doc["events"][0]["article_id"] == "N0" and doc["events"][2]["dwell_s"] == 2.0


def test_reopen_keeps_events_and_sequence(path: Path) -> None:
    filled(path, 3).close()
    with open_store(path) as h:
        assert len(h) == 3
        assert h.record(article(9)) == 4
        assert [e.article_id for e in h] == ["N0", "N1", "N2", "N9"]


def test_forget(path: Path) -> None:
    with filled(path, 4) as h:
        h.record(article(1), at=2_000.0)
        assert h.forget("N1") == 2
        assert h.forget("N1") == 0
        assert [e.article_id for e in h.recent(10)] == ["N3", "N2", "N0"]
        assert len(h) == 3 and h.verify() == 3


def test_retention_by_count(path: Path) -> None:
    with filled(path, 8, max_events=3) as h:
        assert [e.seq for e in h.recent(10)] == [8, 7, 6]
        assert h.verify() == 3


def test_retention_by_age(path: Path) -> None:
    clock = Clock(10_000.0)
    with open_store(path, clock=clock, max_age_s=100.0) as h:
        for t in (9_850.0, 9_890.0, 9_950.0, 9_990.0):
            h.record(article(int(t)), at=t)
        assert [e.at for e in h.recent(10)] == [9_990.0, 9_950.0]
        clock.now = 10_060.0
        assert h.prune() == 1
        assert [e.at for e in h.recent(10)] == [9_990.0]
        assert h.verify() == 1
    clock.now = 20_000.0
    with open_store(path, clock=clock, max_age_s=100.0) as h:  # pruned at open too
        assert len(h) == 0


def test_migrations_recorded_once(path: Path) -> None:
    open_store(path).close()
    open_store(path).close()
    with raw_sql(path) as conn:
        rows = conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [("edgerec.history", "0001_initial")]
    assert mode == "wal"


def test_closed_and_context_manager(path: Path) -> None:
    h = filled(path, 1)
    with h:
        pass
    assert h.closed
    h.close()  # idempotent
    for call in (
        lambda: h.record(article(1)),
        lambda: h.recent(1),
        lambda: len(h),
        h.verify,
        h.export,
        h.profiles,
        lambda: h.forget("N1"),
        lambda: h.switch_profile("x"),
        lambda: h.erase_profile("x"),
        h.rotate_profile_key,
        lambda: h.rotate_master_key(key=OTHER_KEY),
    ):
        with pytest.raises(ClosedError):
            call()
    with pytest.raises(TypeError):
        ReadingHistory()


# ---------------------------------------------------------------- (a) keys, A1, A2
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


def test_rotate_master_key_rewraps_only(path: Path) -> None:
    with filled(path, 3) as h:
        with raw_sql(path) as conn:
            before = conn.execute("SELECT seq, blob FROM events").fetchall()
        h.rotate_master_key(passphrase="new pass")
        with raw_sql(path) as conn:
            assert conn.execute("SELECT seq, blob FROM events").fetchall() == before
    with pytest.raises(WrongKeyError):
        open_store(path, key=KEY)
    with open_store(path, passphrase="new pass") as h:
        assert h.verify() == 3
        h.rotate_master_key(key=OTHER_KEY)
    with pytest.raises(WrongKeyError):
        open_store(path, passphrase="new pass")
    with open_store(path, key=OTHER_KEY) as h:
        assert len(h) == 3


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


def test_existing_file_is_never_replaced(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with raw_sql(other) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES ('keep me')")
    before = digest(other)
    with pytest.raises(UnsupportedFormatError):
        open_store(other)
    assert digest(other) == before
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StorageCorruptError):
        open_store(empty)
    assert empty.read_bytes() == b""


def test_newer_store_format_is_refused(path: Path) -> None:
    filled(path, 1).close()
    with raw_sql(path) as conn:
        conn.execute("UPDATE store_meta SET value = ? WHERE name = 'format'", (b"99",))
    with pytest.raises(UnsupportedFormatError):
        open_store(path)


# ------------------------------------------------------------ (a) tampering A3-A7
def test_a3_bit_flip_first_and_last_row(path: Path) -> None:
    filled(path, 5).close()
    flip_blob_byte(path, seq=1, offset=20)
    with open_store(path) as h:
        assert [e.seq for e in h.recent(4)] == [5, 4, 3, 2]  # the others still read
        with pytest.raises(IntegrityError) as err:
            h.recent(5)
        assert err.value.seq == 1 and "seq=1" in str(err.value)
    flip_blob_byte(path, seq=5, offset=-1)  # last byte: the tag
    with open_store(path) as h:
        with pytest.raises(IntegrityError) as err:
            h.recent(1)
        assert err.value.seq == 5
        with pytest.raises(IntegrityError):
            h.verify()


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (0, UnsupportedFormatError),  # record format version byte
        (1, IntegrityError),  # nonce
        (12, IntegrityError),  # last nonce byte
        (13, IntegrityError),  # first ciphertext byte
        (-16, IntegrityError),  # first tag byte
    ],
)
def test_a4_flip_header_fields(path: Path, offset: int, error: type[Exception]) -> None:
    filled(path, 2).close()
    flip_blob_byte(path, seq=2, offset=offset)
    with open_store(path) as h, pytest.raises(error):
        h.recent(1)


def test_a4_changed_key_id_column(path: Path) -> None:
    with filled(path, 3) as h:
        h.rotate_profile_key()  # rows now under key id 2
        h.record(article(9))
    with raw_sql(path) as conn:
        conn.execute("UPDATE events SET key_id = 7 WHERE seq = 2")
        conn.execute("UPDATE events SET key_id = 1 WHERE seq = 3")  # a retired key id
    with open_store(path) as h:
        for limit in (3, 2):
            with pytest.raises(IntegrityError):
                h.recent(limit)


def test_a5_swapped_ciphertexts_fail_on_both_rows(path: Path) -> None:
    filled(path, 4).close()
    with raw_sql(path) as conn:
        b2, b3 = (
            conn.execute("SELECT blob FROM events WHERE seq = ?", (s,)).fetchone()[0]
            for s in (2, 3)
        )
        conn.execute("UPDATE events SET blob = ? WHERE seq = 2", (b3,))
        conn.execute("UPDATE events SET blob = ? WHERE seq = 3", (b2,))
    with open_store(path) as h:
        assert [e.seq for e in h.recent(1)] == [4]
        with pytest.raises(IntegrityError) as e3:
            h.recent(2)
        assert e3.value.seq == 3
        with raw_sql(path) as conn:  # put seq 3 back: seq 2 alone still fails
            conn.execute("UPDATE events SET blob = ? WHERE seq = 3", (b3,))
        with pytest.raises(IntegrityError) as e2:
            h.recent(3)
        assert e2.value.seq == 2


def test_a6_row_moved_to_another_profile(path: Path) -> None:
    with filled(path, 3, profile="a") as h:
        h.switch_profile("b")
        for i in range(3):
            h.record(article(10 + i))
    with raw_sql(path) as conn:
        pid_a, pid_b = (
            conn.execute("SELECT pid FROM events ORDER BY rowid LIMIT 1 OFFSET ?", (k,)).fetchone()[
                0
            ]
            for k in (0, 3)
        )
        conn.execute("DELETE FROM events WHERE pid = ? AND seq = 2", (pid_b,))
        conn.execute("UPDATE events SET pid = ? WHERE pid = ? AND seq = 2", (pid_b, pid_a))
    with open_store(path, profile="b") as h:
        with pytest.raises(IntegrityError) as err:
            h.recent(3)
        assert err.value.seq == 2
        assert [e.article_id for e in h.recent(1)] == ["N12"]  # never A's data
    with open_store(path, profile="a") as h, pytest.raises(IntegrityError):
        h.verify()  # A lost a row


def test_a7_deleted_middle_row_and_truncated_tail(path: Path) -> None:
    filled(path, 6).close()
    with raw_sql(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = 3")
    with open_store(path) as h:
        for full_read in (h.verify, h.export, lambda: list(h), lambda: h.recent(10)):
            with pytest.raises(IntegrityError, match=r"deleted|missing"):
                full_read()
    filled(path.with_name("t.db"), 6).close()
    with raw_sql(path.with_name("t.db")) as conn:
        conn.execute("DELETE FROM events WHERE seq > 4")
    with open_store(path.with_name("t.db")) as h:
        with pytest.raises(IntegrityError):
            h.verify()
        with pytest.raises(IntegrityError):
            h.recent(6)


def test_a7_replaced_row_with_older_copy_detected(path: Path) -> None:
    """A row put back from an older copy of itself (before a key rotation) is authentic
    AEAD-wise but not what the head record covers."""
    with filled(path, 3) as h:
        with raw_sql(path) as conn:
            old = conn.execute("SELECT key_id, blob FROM events WHERE seq = 2").fetchone()
        h.rotate_profile_key()
    with raw_sql(path) as conn:
        conn.execute("UPDATE events SET key_id = ?, blob = ? WHERE seq = 2", old)
    with open_store(path) as h, pytest.raises(IntegrityError):
        h.verify()


def test_head_record_tamper(path: Path) -> None:
    filled(path, 3).close()
    with raw_sql(path) as conn:
        conn.execute("UPDATE profiles SET count = 2")
    with pytest.raises(IntegrityError, match="head record"):
        open_store(path)


# ---------------------------------------------------------------- (a) A8, A9
@pytest.mark.parametrize("cut", [0, 50, 4096 + 100, -100])
def test_a8_truncated_file(path: Path, cut: int) -> None:
    filled(path, 40).close()
    data = path.read_bytes()
    assert len(data) > 4 * 4096
    path.write_bytes(data[: cut if cut >= 0 else len(data) + cut])
    with pytest.raises((StorageCorruptError, IntegrityError)), open_store(path) as h:
        h.verify()


def test_a8_corrupt_bytes_typed_error_and_quarantine(path: Path) -> None:
    filled(path, 40).close()
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):  # corrupt every page, header included
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageCorruptError), open_store(path) as h:
        h.verify()
    assert path.read_bytes() == bytes(data)  # nothing reset implicitly
    moved = ReadingHistory.quarantine(path)
    assert moved.read_bytes() == bytes(data) and not path.exists()
    with open_store(path) as h:
        assert len(h) == 0


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def read(self) -> int:
        return self.value

    def advance(self, value: int) -> None:
        assert value >= self.value
        self.value = value


def test_a9_rollback_detected_with_counter(path: Path, tmp_path: Path) -> None:
    counter = Counter()
    with filled(path, 2, counter=counter):
        pass
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(path, old / "history.db")
    with open_store(path, counter=counter) as h:
        h.record(article(5))
    assert counter.value > 0
    shutil.copy(old / "history.db", path)
    with pytest.raises(RollbackDetectedError):
        open_store(path, counter=counter)


def test_a9_without_counter_rollback_is_the_documented_limitation(
    path: Path, tmp_path: Path
) -> None:
    filled(path, 2).close()
    shutil.copy(path, tmp_path / "old.db")
    with open_store(path) as h:
        h.record(article(5))
    shutil.copy(tmp_path / "old.db", path)
    with open_store(path) as h:  # opens: an authentic, older store
        assert h.verify() == 2
    doc = edgerec.history.__doc__ or ""
    assert "Without a counter, a rolled-back copy opens and\n  reads as valid" in doc
    readme = Path(__file__).parents[1] / "README.md"
    assert "Rollback: not detected without a counter." in readme.read_text(encoding="utf-8")


# ---------------------------------------------------------- (a) A10, A12, A13
def test_a10_rotation_stages(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = filled(path, 10, rotation_batch=3)
    real_seal = hc.seal_record
    calls = {"n": 0}

    def failing_seal(*args: Any, **kw: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] > 4:  # the second re-encryption batch dies
            raise OSError("injected")
        return real_seal(*args, **kw)

    monkeypatch.setattr(hc, "seal_record", failing_seal)
    with pytest.raises(OSError):
        h.rotate_profile_key()
    monkeypatch.setattr(hc, "seal_record", real_seal)
    with raw_sql(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT key_id FROM events ORDER BY seq")]
        nkeys = conn.execute("SELECT count(*) FROM profile_keys").fetchone()[0]
    assert ids == [2, 2, 2] + [1] * 7 and nkeys == 2  # stage 2: both keys enabled
    assert h.verify() == 10  # every row readable mid-rotation
    assert h.record(article(11)) == 11
    h.close()
    with raw_sql(path) as conn:
        assert conn.execute("SELECT key_id FROM events WHERE seq = 11").fetchone()[0] == 2
    with open_store(path) as h:  # resumed at open; old key retired
        assert h.verify() == 11
    with raw_sql(path) as conn:
        assert {r[0] for r in conn.execute("SELECT key_id FROM events")} == {2}
        assert [r[0] for r in conn.execute("SELECT key_id FROM profile_keys")] == [2]


def test_a12_nonces_unique_and_key_use_limit_forces_rotation(path: Path) -> None:
    with filled(path, 12, key_use_limit=5) as h:
        assert h.verify() == 12
    with open_store(path, key_use_limit=5) as h:
        for i in range(5):
            h.record(article(100 + i))
    with raw_sql(path) as conn:
        rows = conn.execute("SELECT key_id, blob FROM events").fetchall()
        keys = [r[0] for r in conn.execute("SELECT key_id FROM profile_keys")]
    assert len(keys) == 1 and keys[0] > 3  # rotated more than twice
    pairs = {(k, bytes(b[1:13])) for k, b in rows}
    assert len(pairs) == len(rows)


def test_a13_failure_inside_encrypt_rolls_back(path: Path) -> None:
    calls = {"n": 0}
    rnd = seeded_random(1)

    def flaky(n: int) -> bytes:
        calls["n"] += 1
        if calls.get("fail"):
            raise OSError("entropy source failed")
        return rnd(n)

    h = filled(path, 3, random_bytes=flaky)
    with raw_sql(path) as conn:
        before = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    calls["fail"] = 1
    with pytest.raises(OSError):
        h.record(article(9))
    del calls["fail"]
    with raw_sql(path) as conn:
        assert conn.execute("SELECT * FROM events ORDER BY seq").fetchall() == before
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert h.verify() == 3 and h.record(article(9)) == 4
    h.close()


# ------------------------------------------------------------------ (d) bad input
def test_d1_unicode_round_trips_exactly(path: Path) -> None:
    titles = [
        "nul\x00inside",
        "\u202eRTL override",
        "e\u0301 combining",
        "emoji 🧪👩‍🔬",
        unicodedata.normalize("NFC", "Café"),
        unicodedata.normalize("NFD", "Café"),
    ]
    with open_store(path) as h:
        for i, t in enumerate(titles):
            h.record({"id": f"id-{t}", "title": t, "entities": [t]}, at=float(i))
        got = list(h)
    assert [e.features["title"] for e in got] == titles
    assert [e.article_id for e in got] == [f"id-{t}" for t in titles]
    assert got[4].features["title"] != got[5].features["title"]  # no normalization


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"id": "ok", "title": "lone \ud800"}, "article['title']"),
        ({"id": "\udfff"}, "article['id']"),
        ({"id": "ok", "entities": ["fine", "\ud83d"]}, "article['entities'][1]"),
        ({"id": "ok", "title": "x" * (1 << 20)}, "article['title']"),
        ({"id": "x" * 257}, "article['id']"),
        ({"id": ""}, "article['id']"),
        ({"id": "ok", "entities": ["e"] * 257}, "article['entities']"),
    ],
)
def test_d1_d2_invalid_strings(path: Path, bad: dict[str, Any], param: str) -> None:
    with open_store(path) as h:
        h.record(article(1))
        before = digest(path)
        with pytest.raises(InvalidInputError) as err:
            h.record(bad)
        assert param in str(err.value)
        assert digest(path) == before and len(h) == 1


def test_d2_huge_input_checked_before_encrypting(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kw: Any) -> bytes:
        raise AssertionError("encrypt reached")

    monkeypatch.setattr(hc, "seal_record", boom)
    with open_store(path) as h:
        for size in (1 << 20, 10 << 20):
            with pytest.raises(InvalidInputError, match="limit"):
                h.record({"id": "a", "abstract": "y" * size})
        many = {"id": "a", **{f: "z" * 16_000 for f in ("title", "abstract", "source", "category")}}
        many["entities"] = ["q" * 16_000] * 20
        with pytest.raises(InvalidInputError, match="bytes"):
            h.record(many)
        assert len(h) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "param"),
    [
        ({"at": math.nan}, InvalidInputError, "at"),
        ({"at": math.inf}, InvalidInputError, "at"),
        ({"at": -math.inf}, InvalidInputError, "at"),
        ({"at": MIN_TIME - 1.0}, InvalidInputError, "at"),  # before year 1
        ({"at": 253402300800.0}, InvalidInputError, "at"),
        ({"at": 10**400}, InvalidInputError, "at"),  # float() overflows
        ({"at": True}, InvalidTypeError, "at"),
        ({"at": "2026-01-01"}, InvalidInputError, "at"),  # naive
        ({"at": "yesterday"}, InvalidInputError, "at"),
        ({"at": {"t": 1}}, InvalidTypeError, "at"),
        ({"at": b"1"}, InvalidTypeError, "at"),
        ({"at": np.bool_(True)}, InvalidTypeError, "at"),
        ({"at": datetime(2026, 1, 1)}, InvalidInputError, "at"),
        ({"dwell_s": math.nan}, InvalidInputError, "dwell_s"),
        ({"dwell_s": -1}, InvalidInputError, "dwell_s"),
        ({"dwell_s": False}, InvalidTypeError, "dwell_s"),
        ({"dwell_s": "3"}, InvalidTypeError, "dwell_s"),
    ],
)
def test_d3_bad_times_and_dwell(
    path: Path, kwargs: dict[str, Any], error: type, param: str
) -> None:
    with open_store(path) as h:
        before = digest(path)
        with pytest.raises(error) as err:
            h.record(article(1), **kwargs)
        assert str(err.value).startswith(param)
        assert issubclass(error, EdgerecError)
        assert digest(path) == before and len(h) == 0


def test_d3_valid_time_forms_normalised_to_utc(path: Path) -> None:
    with open_store(path) as h:
        h.record(article(1), at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
        h.record(article(2), at=datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
        h.record(article(3), at=np.float64(12.5), dwell_s=np.int64(3))
        h.record(article(4), at=0)
        got = [e.at for e in h.recent(4)]
    assert got == [0.0, 12.5, datetime(2026, 1, 1, tzinfo=UTC).timestamp(), 253402297200.0]


def test_at_iso_string_equals_the_epoch_value(path: Path) -> None:
    """The SDK's one time rule: record(at=ISO) as recommend(now=ISO) (edgerec.parse_time)."""
    with open_store(path) as h:
        h.record(article(1), at="2026-12-02T08:00:00Z")
        h.record(article(2), at="2026-12-02T10:00:00+02:00")
        h.record(article(3), at=1_796_198_400)
        got = [e.at for e in h.recent(3)]
    assert got == [1_796_198_400.0] * 3 == [edgerec.parse_time("2026-12-02T08:00:00Z")] * 3


def test_article_is_checked_by_the_shared_validator(path: Path) -> None:
    """The history checks an article with edgerec.features.values.check_fields: the same
    types, rules and messages as featurize, with the history's own limits."""
    from edgerec.features.values import check_fields
    from edgerec.history.events import STORED_FIELDS

    edgerec.FeatureSpec(fields=STORED_FIELDS)  # a valid field description
    bad = {"id": "a", "published_at": "2026-13-45T00:00:00Z"}
    with pytest.raises(InvalidInputError) as shared:
        check_fields(bad, STORED_FIELDS)
    with open_store(path) as h:
        with pytest.raises(InvalidInputError) as ours:
            h.record(bad)
        assert str(ours.value) == str(shared.value)


@pytest.mark.parametrize(
    "published",
    ["2026-13-45T00:00:00Z", "2026-01-01T00:00:00", "last week", "9" * 65, math.nan, True],
)
def test_bad_published_at_is_refused(path: Path, published: Any) -> None:
    with open_store(path) as h:
        with pytest.raises((InvalidInputError, InvalidTypeError)) as err:
            h.record({"id": "a", "published_at": published})
        assert str(err.value).startswith("article['published_at']")
        assert len(h) == 0


def test_published_at_string_is_stored_as_given_once_it_parsed(path: Path) -> None:
    given = "2026-12-02T10:00:00+02:00"
    with open_store(path) as h:
        h.record({"id": "a", "published_at": given})
        h.record({"id": "b", "published_at": datetime(2026, 12, 2, 8, tzinfo=UTC)})
        b, a = h.recent(2)
    assert a.features["published_at"] == given
    assert b.features["published_at"] == 1_796_198_400.0


def test_empty_fields_are_left_out_and_lists_stay_whole(path: Path) -> None:
    with open_store(path) as h:
        h.record({"id": "a", "title": "", "entities": ["", "Q1", "Q2"], "source": "s"})
        h.record({"id": "b", "entities": ["Q"] * 256})
        b, a = h.recent(2)
    assert a.features == {"source": "s", "entities": ["Q1", "Q2"]}
    assert b.features["entities"] == ["Q"] * 256  # all of them: slots never cut the list


@pytest.mark.parametrize(
    ("call", "error", "param"),
    [
        (lambda h: h.record(None), InvalidTypeError, "article"),
        (lambda h: h.record(["id", "N1"]), InvalidTypeError, "article"),
        (lambda h: h.record({"id": b"N1"}), InvalidTypeError, "article['id']"),
        (lambda h: h.record({"id": 5}), InvalidTypeError, "article['id']"),
        (lambda h: h.record({"id": "a", "title": {"x": 1}}), InvalidTypeError, "article['title']"),
        (
            lambda h: h.record({"id": "a", "entities": "Q1"}),
            InvalidTypeError,
            "article['entities']",
        ),
        (
            lambda h: h.record({"id": "a", "published_at": math.nan}),
            InvalidInputError,
            "article['published_at']",
        ),
        (lambda h: h.recent(-1), InvalidInputError, "limit"),
        (lambda h: h.recent(True), InvalidTypeError, "limit"),
        (lambda h: h.recent(2.0), InvalidTypeError, "limit"),
        (lambda h: h.forget(None), InvalidTypeError, "article_id"),
        (lambda h: h.forget(b"N1"), InvalidTypeError, "article_id"),
        (lambda h: h.switch_profile(""), InvalidInputError, "profile"),
        (lambda h: h.switch_profile(b"p"), InvalidTypeError, "profile"),
        (lambda h: h.erase_profile("\ud800"), InvalidInputError, "profile"),
        (lambda h: h.rotate_master_key(key=b"short"), InvalidInputError, "key"),
        (lambda h: h.rotate_master_key(key="x" * 32), InvalidTypeError, "key"),
    ],
)
def test_d3_wrong_types_for_public_parameters(
    path: Path, call: Any, error: type, param: str
) -> None:
    with open_store(path) as h:
        h.record(article(1))
        before = digest(path)
        with pytest.raises(error) as err:
            call(h)
        assert str(err.value).startswith(param)
        assert digest(path) == before and len(h) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": "k" * 32}, InvalidTypeError),
        ({"key": b"short"}, InvalidInputError),
        ({"key": KEY, "passphrase": "x"}, InvalidInputError),
        ({"passphrase": b"x"}, InvalidTypeError),
        ({"key": KEY, "profile": None}, InvalidTypeError),
        ({"key": KEY, "max_events": 0}, InvalidInputError),
        ({"key": KEY, "max_age_s": math.nan}, InvalidInputError),
        ({"key": KEY, "busy_timeout_s": -1}, InvalidInputError),
        ({"key": KEY, "synchronous": "OFF"}, InvalidInputError),
        ({"key": KEY, "scrypt_n": 1000}, InvalidInputError),
        ({"key": KEY, "counter": object()}, InvalidTypeError),
    ],
)
def test_d3_bad_open_arguments_create_nothing(
    tmp_path: Path, kwargs: dict[str, Any], error: type
) -> None:
    target = tmp_path / "never.db"
    with pytest.raises(error):
        ReadingHistory.open(target, **kwargs)
    assert not target.exists()


@pytest.mark.parametrize("aid", ["'); DROP TABLE events;--", "%", "_", "SELECT", "events", '"x"'])
def test_d4_injection_looking_ids_stored_literally(path: Path, aid: str) -> None:
    with open_store(path, profile=aid) as h:
        h.record({"id": aid, "title": aid})
        assert [e.article_id for e in h.recent(5)] == [aid]
        assert h.profiles() == [aid]
        assert h.forget(aid) == 1
    with raw_sql(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "profiles", "profile_keys", "store_meta"} <= tables


# ------------------------------------------------------------ (e) privacy
def test_e1_no_plaintext_in_db_wal_shm(path: Path) -> None:
    h = open_store(path, profile=CANARY_PROFILE)
    for i in range(20):
        h.record(canary_article() | {"abstract": f"{CANARY_TITLE} {i}"})
    assert Path(f"{path}-wal").exists()  # scanned while the WAL holds the writes
    data = raw_bytes(path)
    with raw_sql(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data += raw_bytes(path)
    h.close()
    data += raw_bytes(path)
    for canary in CANARIES:
        for form in (canary.encode("utf-8"), canary.encode("utf-16-le")):
            assert form not in data
    assert b"example" not in data and b"world" not in data  # no plaintext at all


def test_e2_erase_profile_scrubs_ciphertexts_and_keys(path: Path) -> None:
    h = open_store(path, profile=CANARY_PROFILE)
    for _ in range(30):
        h.record(canary_article())
    h.switch_profile("bob")
    h.record(article(1))
    with raw_sql(path) as conn:
        (pid,) = conn.execute("SELECT pid FROM events GROUP BY pid HAVING count(*) = 30").fetchone()
        secrets_ = [
            bytes(r[0]) for r in conn.execute("SELECT blob FROM events WHERE pid = ?", (pid,))
        ]
        secrets_ += [
            bytes(r[0])
            for r in conn.execute("SELECT wrapped FROM profile_keys WHERE pid = ?", (pid,))
        ]
        secrets_ += [
            bytes(r[0]) for r in conn.execute("SELECT mac_key FROM profiles WHERE pid = ?", (pid,))
        ]
    assert len(secrets_) == 32 and secrets_[0] in raw_bytes(path)
    assert h.erase_profile(CANARY_PROFILE) is True
    data = raw_bytes(path)
    for s in secrets_:
        assert s[13:45] not in data  # a 32-byte window of every ciphertext / wrapped key
    assert pid not in data
    assert h.profiles() == ["bob"] and len(h) == 1
    names = {p.name for p in path.parent.iterdir()}  # no temp or journal files left over
    assert names <= {path.name, f"{path.name}-wal", f"{path.name}-shm"}
    assert h.erase_profile(CANARY_PROFILE) is False
    h.close()
    with raw_sql(path) as conn:
        assert conn.execute("SELECT count(*) FROM erase_journal").fetchone()[0] == 0
        assert (
            conn.execute("SELECT count(*) FROM profile_keys WHERE pid = ?", (pid,)).fetchone()[0]
            == 0
        )


def test_e3_erase_waits_for_reader_or_reports_busy(path: Path) -> None:
    h = open_store(path, profile=CANARY_PROFILE, busy_timeout_s=0.2)
    for _ in range(5):
        h.record(canary_article())
    with raw_sql(path) as conn:
        (blob,) = conn.execute("SELECT blob FROM events LIMIT 1").fetchone()
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # holds a snapshot
    h.switch_profile("other")
    with pytest.raises(edgerec.StorageBusyError):
        h.erase_profile(CANARY_PROFILE)
    assert CANARY_PROFILE not in h.profiles()  # key destroyed already; scrub pending
    reader.execute("COMMIT")
    reader.close()
    h.erase_profile(CANARY_PROFILE)  # the retry completes the scrub
    assert bytes(blob)[13:45] not in raw_bytes(path)
    h.close()


def test_e4_messages_and_logs_hold_no_plaintext_or_keys(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages = []
    with open_store(path, profile=CANARY_PROFILE) as h:
        h.record(canary_article())
        (event,) = h.recent(1)
        messages += [repr(event), str(event), repr(h)]
        for bad in (
            {"id": CANARY_ID, "title": CANARY_TITLE + "\ud800"},
            {"id": CANARY_ID, "title": CANARY_TITLE * 2000},
            {"id": CANARY_ID * 30},
        ):
            with pytest.raises(EdgerecError) as err:
                h.record(bad)
            messages += [str(err.value), repr(err.value)]
    flip_blob_byte(path, seq=1, offset=20)
    with open_store(path, profile=CANARY_PROFILE) as h, pytest.raises(IntegrityError) as err2:
        h.recent(1)
    messages += [str(err2.value), repr(err2.value)]
    with pytest.raises(WrongKeyError) as err3:
        open_store(path, key=OTHER_KEY, profile=CANARY_PROFILE)
    messages += [str(err3.value), repr(err3.value)]
    text = "\n".join(messages) + caplog.text
    for secret in (*CANARIES, KEY.hex(), OTHER_KEY.hex(), repr(KEY)):
        assert secret not in text


def test_e5_profiles_isolated(path: Path) -> None:
    with open_store(path, profile="alice") as h:
        h.record(article(1, title="alice reads"))
        alice_keys = dict(h._profile.keys) if h._profile else {}
        h.switch_profile("bob")
        assert len(h) == 0 and h.recent(10) == []
        h.record(article(2))
        assert [e.article_id for e in h] == ["N2"]
        assert h._profile is not None and h._profile.name == "bob"
        assert not set(map(id, alice_keys.values())) & set(map(id, h._profile.keys.values()))
        assert h.profiles() == ["alice", "bob"]
    with raw_sql(path) as conn:
        assert CANARY_PROFILE.encode() not in b"".join(
            bytes(r[0]) for r in conn.execute("SELECT pid FROM profiles")
        )
    with open_store(path, profile="alice") as h:
        assert [e.features["title"] for e in h] == ["alice reads"]


def test_erasing_active_profile_leaves_handle_without_profile(path: Path) -> None:
    with filled(path, 2, profile="p") as h:
        assert h.erase_profile("p")
        with pytest.raises(ClosedError):
            h.record(article(1))
        h.switch_profile("p")  # a new, empty profile of the same name
        assert len(h) == 0


def test_b7_read_only_open(path: Path) -> None:
    filled(path, 3).close()
    before = digest(path)
    with open_store(path, read_only=True) as h:
        assert h.read_only and [e.seq for e in h.recent(2)] == [3, 2]
        assert h.verify() == 3
        for call in (lambda: h.record(article(9)), lambda: h.forget("N1"), h.rotate_profile_key):
            with pytest.raises(ReadOnlyStorageError):
                call()
    assert digest(path) == before
    with pytest.raises(ReadOnlyStorageError):
        open_store(path.with_name("missing.db"), read_only=True)
    with pytest.raises(ReadOnlyStorageError):
        open_store(path, read_only=True, profile="new-profile")
    assert issubclass(ReadOnlyStorageError, StorageError)


def test_e6_guest_session_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = set(Path(tempfile.gettempdir()).iterdir())
    g = ReadingHistory.open_guest(clock=Clock(5.0))
    g.record(canary_article())
    assert [e.article_id for e in g.recent(5)] == [CANARY_ID] and g.verify() == 1
    assert list(tmp_path.iterdir()) == []
    assert set(Path(tempfile.gettempdir()).iterdir()) == before
    g.close()
    with pytest.raises(ClosedError):
        g.recent(1)


def test_e6_switch_drops_the_previous_profile_state(path: Path) -> None:
    with open_store(path, profile="a") as h:
        h.record(article(1))
        h.recent(1)
        assert h._profile is not None and h._profile.head_cache is not None
        previous = h._profile
        h.switch_profile("b")
        assert h._profile is not previous and h._profile.name == "b"
        assert h._profile.head_cache is None or h._profile.head_cache[1].count == 0


def test_d7_network_filesystem_is_warned(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "filesystem_type", lambda folder: "nfs4")
    with pytest.warns(RuntimeWarning, match="network filesystem"):
        open_store(path).close()
    assert connection.filesystem_type(Path("/")) != ""  # the real probe finds a type


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


TAMPER_VALUES: list[Any] = [None, "text", -1, 2**63 - 1, 1.5, b"", b"\x00" * 40]
TAMPER_TARGETS = (
    [("events", col, "seq = 2") for col in ("pid", "seq", "key_id", "blob")]
    + [
        ("profiles", col, "1")
        for col in (
            "name_ct",
            "mac_key",
            "active_key_id",
            "count",
            "last_seq",
            "digest",
            "key_uses",
            "head_mac",
        )
    ]
    + [("profile_keys", col, "1") for col in ("key_id", "wrapped")]
    + [
        ("store_meta", "value", f"name = '{name}'")
        for name in ("format", "store_id", "kdf", "key_check", "store_key", "generation")
    ]
)


def test_no_raw_exception_whatever_the_columns_hold(tmp_path: Path) -> None:
    """Any value in any column (NULL, text, negative, huge, float, empty, zeros) gives an
    EdgerecError or a correct result: never a raw sqlite3 / cryptography / struct /
    TypeError from inside the SDK."""
    pristine = tmp_path / "pristine.db"
    with filled(pristine, 3, counter=Counter()):
        pass
    outcomes: dict[str, int] = {"typed_error": 0, "ok": 0}
    for table, column, where in TAMPER_TARGETS:
        for value in TAMPER_VALUES:
            case = tmp_path / "case.db"
            shutil.copy(pristine, case)
            with raw_sql(case) as conn:
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))
            try:
                with open_store(case) as h:
                    h.recent(3)
                    h.verify()
                    h.export()
                    h.profiles()
                    h.record(article(9))
                outcomes["ok"] += 1
            except EdgerecError:
                outcomes["typed_error"] += 1
    assert outcomes["typed_error"] > 100  # almost every edit is caught


def test_e7_no_network_use(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the history opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with open_store(path, profile=CANARY_PROFILE) as h:
        h.record(canary_article())
        h.recent(1)
        h.verify()
        h.export()
        h.rotate_profile_key()
        h.erase_profile(CANARY_PROFILE)


def test_profile_erased_and_recreated_by_another_handle(path: Path) -> None:
    h1 = filled(path, 2, profile="p")
    with open_store(path, profile="other") as h2:
        h2.erase_profile("p")
        h2.switch_profile("p")  # the same name, a new profile with new keys
        h2.record(article(7))
    with pytest.raises(ClosedError):
        h1.record(article(8))
    h1.close()
    with open_store(path, profile="p") as h:
        assert [e.article_id for e in h] == ["N7"]


def test_profile_recreated_while_its_scrub_is_pending(path: Path) -> None:
    h = filled(path, 2, profile="p", busy_timeout_s=0.1)
    h.switch_profile("q")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()
    with pytest.raises(edgerec.StorageBusyError):
        h.erase_profile("p")
    h.switch_profile("p")  # new, empty; the scrub still pending
    h.record(article(5))
    reader.execute("COMMIT")
    reader.close()
    h.close()
    with open_store(path, profile="p") as h:  # the pending scrub runs at open
        assert [e.article_id for e in h] == ["N5"]  # and spares the new profile
    with raw_sql(path) as conn:
        assert conn.execute("SELECT count(*) FROM erase_journal").fetchone()[0] == 0


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    h = open_store(tmp_path_factory.mktemp("prop") / "h.db", synchronous="NORMAL")
    yield h
    h.close()


@settings(max_examples=60)
@given(
    doc=st.fixed_dictionaries(
        {"id": _text.filter(bool)},
        optional={
            "title": _text,
            "abstract": _text,
            "category": _text,
            "source": _text,
            "entities": st.lists(_text, max_size=4),
            "published_at": st.one_of(
                st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
                st.floats(MIN_TIME, MAX_TIME, exclude_max=True),
            ),
            "unknown_field": _text,
        },
    ),
    at=st.floats(MIN_TIME, MAX_TIME, exclude_max=True),
    dwell=st.none() | st.floats(0, limits.MAX_DWELL_S),
)
def test_any_valid_event_round_trips_exactly(
    shared_store: ReadingHistory, doc: dict[str, Any], at: float, dwell: float | None
) -> None:
    seq = shared_store.record(doc, at=at, dwell_s=dwell)
    (event,) = shared_store.recent(1)
    # Exactly as given; empty strings and entities are left out (the featurizer's "missing").
    expected = {}
    for name, value in doc.items():
        kept = [e for e in value if e] if name == "entities" else value
        if name not in ("id", "unknown_field") and kept not in ("", []):
            expected[name] = kept
    assert (event.seq, event.article_id, event.features, event.at, event.dwell_s) == (
        seq,
        doc["id"],
        expected,
        at,
        dwell,
    )


def test_opening_an_up_to_date_store_needs_no_sqlite_utils(path: Path) -> None:
    """Cold start (DESIGN.md section 7): sqlite-utils is loaded to create or migrate."""
    import subprocess

    filled(path, 1).close()
    code = (
        "import sys, edgerec\n"
        f"h = edgerec.ReadingHistory.open({str(path)!r}, key=bytes(range(32)))\n"
        "assert len(h) == 1\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlite_utils', 'tensorflow', 'keyring')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a8_random_byte_corruption_only_typed_errors(tmp_path: Path) -> None:
    """Random bytes anywhere in the file: each open/read either works or raises an
    EdgerecError (corrupt storage, integrity, format); never a raw exception or a hang."""
    import random

    pristine = tmp_path / "pristine.db"
    filled(pristine, 60).close()
    size = pristine.stat().st_size
    rng = random.Random(8)
    errors: dict[str, int] = {}
    for _ in range(60):
        case = tmp_path / "case.db"
        data = bytearray(pristine.read_bytes())
        for _ in range(rng.choice([1, 4, 32])):
            data[rng.randrange(size)] = rng.randrange(256)
        case.write_bytes(bytes(data))
        try:
            with open_store(case) as h:
                h.verify()
                h.recent(60)
            errors["none"] = errors.get("none", 0) + 1
        except EdgerecError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
    assert errors.get("StorageCorruptError", 0) + errors.get("IntegrityError", 0) > 10, errors


def test_passphrase_is_nfc_normalised(path: Path) -> None:
    composed, decomposed = "caf\u00e9 ol\u00e9", "cafe\u0301 ole\u0301"
    filled(path, 1, passphrase=composed, scrypt_n=FAST_SCRYPT).close()
    with open_store(path, passphrase=decomposed) as h:
        assert len(h) == 1
    with pytest.raises(WrongKeyError):
        open_store(path, passphrase="cafe ole")
