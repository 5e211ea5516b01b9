"""Where the licensed MIND rows are (never in the repository): tests skip without them."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["MIND", "mind_dir"]

MIND = Path(__file__).resolve().parents[3] / "shared" / "data" / "mind"


def mind_dir() -> Path:
    if not MIND.is_dir():
        pytest.skip(f"MIND data not found at {MIND} (licensed; not shipped with the repo)")
    return MIND
