"""Fixtures of the history tests; their helpers are in tests/support/history.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where a test's store lives (created by the test)."""
    return tmp_path / "history.db"
