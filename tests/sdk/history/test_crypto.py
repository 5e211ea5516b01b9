"""edgerec.history.crypto: exact ciphertexts under injected randomness, tampered records
(A3-A6: bit flips, header fields, key ids, swapped or moved rows), no plaintext on disk
(E1), and the one place that encrypts and decrypts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import edgerec
from edgerec import (
    IntegrityError,
    UnsupportedFormatError,
)
from edgerec.history import crypto
from tests.support.history import (
    CANARIES,
    CANARY_PROFILE,
    CANARY_TITLE,
    Clock,
    article,
    canary_article,
    filled,
    flip_blob_byte,
    open_store,
    raw_bytes,
    raw_sql,
    seeded_random,
)


def test_injected_randomness_gives_exact_ciphertexts(tmp_path: Path) -> None:
    blobs = []
    for name in ("a.db", "b.db"):
        with open_store(tmp_path / name, random_bytes=seeded_random(7), clock=Clock()) as h:
            h.record(article(1))
        with raw_sql(tmp_path / name) as conn:
            blobs.append(conn.execute("SELECT blob FROM events").fetchone()[0])
    assert blobs[0] == blobs[1]
    assert blobs[0][0] == crypto.RECORD_VERSION and len(blobs[0]) > 1 + 12 + 16


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


def test_only_crypto_encrypts_and_decrypts() -> None:
    """Every AEAD use of the SDK is in edgerec.history.crypto, and open_records is the one
    place a record is decrypted (the installed package is scanned, trainer excepted)."""
    package = Path(edgerec.__file__).parent
    sources = {
        p.relative_to(package).as_posix(): p.read_text(encoding="utf-8")
        for p in package.rglob("*.py")
        if "trainer" not in p.parts
    }
    assert "history/crypto.py" in sources
    assert [name for name, text in sources.items() if "AESGCM" in text] == ["history/crypto.py"]
    assert [name for name, text in sources.items() if "decrypt(" in text] == ["history/crypto.py"]
    assert sources["history/crypto.py"].count("aead.decrypt(") == 1


def _records(n: int) -> tuple[dict[int, crypto.DataKey], bytes, list[tuple[Any, ...]]]:
    keys = {1: crypto.data_key(bytes(32))}
    pid = b"p" * 16
    rng = seeded_random(3)
    rows: list[tuple[Any, ...]] = [
        (seq, 1, crypto.seal_record(keys[1], pid, seq, 1, b"event %d" % seq, random_bytes=rng))
        for seq in range(1, n + 1)
    ]
    return keys, pid, rows


def test_open_records_round_trip_and_stops_where_the_caller_stops() -> None:
    keys, pid, rows = _records(3)
    opened = crypto.open_records(keys, pid, rows, last_seq=3)
    assert [plain for _, _, _, plain in opened] == [b"event 1", b"event 2", b"event 3"]
    bad = [*rows[:1], (2, 1, b"\x01" + b"x" * 40)]
    lazy = crypto.open_records(keys, pid, bad, last_seq=3)
    assert next(lazy)[3] == b"event 1"  # the damaged row after it is not read yet
    with pytest.raises(IntegrityError) as err:
        next(lazy)
    assert err.value.seq == 2


@pytest.mark.parametrize(
    ("row", "error", "seq"),
    [
        ((None, 1, b""), IntegrityError, None),  # seq not an int
        ((1, 1.0, b"x" * 40), IntegrityError, 1),  # key id not an int
        ((1, 1, "text"), IntegrityError, 1),  # blob not bytes
        ((4, 1, "row"), IntegrityError, 4),  # past the head record
        ((1, 1, b"\x01" * 10), IntegrityError, 1),  # too short
        ((1, 1, b"\x02" + b"x" * 40), UnsupportedFormatError, None),  # unknown version
        ((1, 7, "row"), IntegrityError, 1),  # a key the profile does not have
    ],
)
def test_open_records_names_each_fault(row: tuple[Any, ...], error: type, seq: int | None) -> None:
    keys, pid, rows = _records(1)
    if row[2] == "row":
        row = (row[0], row[1], rows[0][2])
    with pytest.raises(error) as err:
        list(crypto.open_records(keys, pid, [row], last_seq=3))
    assert getattr(err.value, "seq", None) == seq
