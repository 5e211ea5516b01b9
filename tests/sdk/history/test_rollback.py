"""edgerec.history.rollback: an older copy of the whole file, with a host counter and
without one (A9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import edgerec
from edgerec import (
    KeyUnavailableError,
    RollbackDetectedError,
    StorageError,
)
from tests.support.history import (
    Counter,
    article,
    filled,
    open_store,
)


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
    doc = " ".join((edgerec.history.__doc__ or "").split())
    assert "Without a counter, a rolled-back copy opens and reads as valid" in doc
    docs = Path(__file__).resolve().parents[3] / "docs"
    assert "Rollback: not detected without a counter." in (docs / "sdk.md").read_text("utf-8")
    assert "rollback of the whole file" in (docs / "security.md").read_text("utf-8")


class BrokenCounter:
    def __init__(self, fail: str) -> None:
        self.value, self.fail = 0, fail

    def read(self) -> int:
        if self.fail == "read":
            raise OSError("TPM unavailable")
        return self.value

    def advance(self, value: int) -> None:
        if self.fail == "advance":
            raise OSError("TPM unavailable")
        self.value = value


def test_a9_a_counter_that_fails_is_a_typed_error_and_the_write_stays(path: Path) -> None:
    counter = BrokenCounter("none")
    filled(path, 1, counter=counter).close()
    counter.fail = "read"
    with pytest.raises(KeyUnavailableError, match="counter"):
        open_store(path, counter=counter)
    counter.fail = "advance"
    with open_store(path, counter=counter) as h, pytest.raises(StorageError, match="counter"):
        h.record(article(2))  # committed; only the counter refused
    counter.fail = "none"
    before = counter.value
    with open_store(path, counter=counter) as h:  # the next open catches the counter up
        assert len(h) == 2 and counter.value == before + 1


def crashed_copy(path: Path, tmp_path: Path, counter: Counter | None, damage: str) -> Path:
    """A store whose last acknowledged writes are only in its WAL, copied as a crash would
    leave it (the handle still open), with its WAL then damaged."""
    h = filled(path, 3, counter=counter)
    h._db.checkpoint()  # events 1..3 in the database file
    for i in range(3, 6):
        h.record(article(i))  # acknowledged; only in the WAL
    crash = tmp_path / "crash"
    crash.mkdir()
    for suffix in ("", "-wal"):
        shutil.copy(f"{path}{suffix}", f"{crash}/history.db{suffix}")
    h.close()
    wal = crash / "history.db-wal"
    if damage == "lost":
        wal.unlink()
    else:
        data = bytearray(wal.read_bytes())
        data[32 + 24 + 100 if damage == "first frame" else len(data) - 100] ^= 0x01
        wal.write_bytes(bytes(data))
    return crash / "history.db"


@pytest.mark.parametrize("damage", ["first frame", "last frame", "lost"])
def test_wal_damage_without_counter_is_the_documented_limitation(
    path: Path, tmp_path: Path, damage: str
) -> None:
    """Issue 17, item 3: SQLite drops WAL frames from the first bad checksum on, so a
    damaged (or lost) WAL opens as an older, authentic store: acknowledged events are
    gone and verify() passes. Without a counter that is indistinguishable from a rollback,
    and documented as such."""
    crash = crashed_copy(path, tmp_path, None, damage)
    with open_store(crash) as h:
        assert h.verify() == len(h) < 6  # older, and valid
    docs = Path(__file__).resolve().parents[3] / "docs"
    sdk = " ".join((docs / "sdk.md").read_text("utf-8").split())
    security = " ".join((docs / "security.md").read_text("utf-8").split())
    package = " ".join((edgerec.history.__doc__ or "").split())
    assert "WAL damage: not detected without a counter." in sdk
    assert "damage to the `-wal`" in security
    assert "a damaged or lost WAL opens the same way" in package


@pytest.mark.parametrize("damage", ["first frame", "last frame", "lost"])
def test_wal_damage_with_counter_is_detected(path: Path, tmp_path: Path, damage: str) -> None:
    counter = Counter()
    crash = crashed_copy(path, tmp_path, counter, damage)
    with pytest.raises(RollbackDetectedError):
        open_store(crash, counter=counter)
    with pytest.raises(RollbackDetectedError):
        open_store(crash, counter=counter, read_only=True)
