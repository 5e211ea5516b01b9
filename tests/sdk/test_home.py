"""edgerec.home: the installed models at start-up (B4): a damaged active model falls back to
the last known-good one, an unreadable pointer to the newest bundle that verifies."""

from __future__ import annotations

import pytest

from edgerec import updates
from edgerec.errors import (
    ModelFormatError,
)
from edgerec.home import read_pointer
from edgerec.model import MANIFEST_FILE, MODEL_FILE
from tests.support.updates import (
    Env,
    accept,
)


def test_startup_falls_back_from_a_damaged_active_model(v1: Env) -> None:
    """B4: the active bundle no longer matches its manifest (a lost write, a bad sector)."""
    v1.publish(2)
    v1.install(validator=accept)
    model = v1.home / "models" / "2" / MODEL_FILE
    model.write_bytes(model.read_bytes()[:1000])
    assert updates.verified_active_model(v1.home) == v1.home / "models" / "1"
    assert read_pointer(v1.home) == {"version": 1, "rejected": 2}
    (v1.home / "models" / "1" / MANIFEST_FILE).write_text("{")
    with pytest.raises(ModelFormatError):
        updates.verified_active_model(v1.home)


def test_startup_recovers_from_an_unreadable_pointer(v1: Env) -> None:
    """B4: active.json itself damaged: the newest installed bundle that verifies."""
    v1.publish(2)
    v1.install(validator=accept)
    (v1.home / "models" / "active.json").write_bytes(b"\x00garbage")
    assert updates.verified_active_model(v1.home) == v1.home / "models" / "2"
    assert read_pointer(v1.home) == {"version": 2}
    assert updates.verified_active_model(v1.tmp / "empty-home") is None
