"""edgerec.history.schema: migrations, the format record, a cold open without
sqlite-utils."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgerec import (
    UnsupportedFormatError,
)
from tests.support.history import (
    filled,
    open_store,
    raw_sql,
)


def test_migrations_recorded_once(path: Path) -> None:
    open_store(path).close()
    open_store(path).close()
    with raw_sql(path) as conn:
        rows = conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [
        ("edgerec.history", "0001_initial"),
        ("edgerec.history", "0002_window"),
        ("edgerec.history", "0003_impressions"),
    ]
    assert mode == "wal"


def test_newer_store_format_is_refused(path: Path) -> None:
    filled(path, 1).close()
    with raw_sql(path) as conn:
        conn.execute("UPDATE store_meta SET value = ? WHERE name = 'format'", (b"99",))
    with pytest.raises(UnsupportedFormatError):
        open_store(path)


def test_opening_an_up_to_date_store_needs_no_sqlite_utils(path: Path) -> None:
    """Cold start (DESIGN.md section 7): sqlite-utils is loaded to create or migrate."""

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
