"""edgerec.home: the installed models at start-up (B4): a damaged active model falls back to
the last known-good one, an unreadable pointer to the newest bundle that verifies."""

from __future__ import annotations

import pytest

import edgerec
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


def test_b4_startup_falls_back_from_a_damaged_active_model(v1: Env) -> None:
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


def test_b4_startup_recovers_from_an_unreadable_pointer(v1: Env) -> None:
    """B4: active.json itself damaged: the newest installed bundle that verifies."""
    v1.publish(2)
    v1.install(validator=accept)
    (v1.home / "models" / "active.json").write_bytes(b"\x00garbage")
    assert updates.verified_active_model(v1.home) == v1.home / "models" / "2"
    assert read_pointer(v1.home) == {"version": 2}
    assert updates.verified_active_model(v1.tmp / "empty-home") is None


@pytest.mark.parametrize("fault", ["rename-lost", "model-corrupted", "manifest-corrupted"])
def test_b4_recommender_open_after_power_loss_uses_the_last_known_good_model(
    v1: Env, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """B4 through the path an app takes at start-up: power lost after the pointer named
    model 2 but before the rename of its folder reached the disk (the folder is still a
    staging folder), or model 2's files damaged. ``Recommender.open`` re-verifies, falls
    back to model 1, logs a ModelFormatError, and removes the leftovers."""
    v1.publish(2)
    v1.install(validator=accept)
    models = v1.home / "models"
    if fault == "rename-lost":
        (models / "2").rename(models / ".staging-lost")
    elif fault == "model-corrupted":
        model = models / "2" / MODEL_FILE
        model.write_bytes(model.read_bytes()[:-100] + bytes(100))
    else:
        (models / "2" / MANIFEST_FILE).write_text('{"schema_version": 1, "schema_version": 1}')
    assert read_pointer(v1.home)["version"] == 2
    guest = edgerec.Recommender.open_guest(v1.home)  # a guest reads, repairs nothing
    assert guest.model_version == 1
    guest.close()
    assert read_pointer(v1.home)["version"] == 2
    caplog.clear()
    with edgerec.Recommender.open(v1.home, key=bytes(32)) as rec:
        assert rec.model_version == 1
        assert len(rec.recommend([{"id": "a"}, {"id": "b"}], k=2)) == 2
    assert read_pointer(v1.home) == {"version": 1, "rejected": 2}
    assert "ModelFormatError: active model 2 is damaged" in caplog.text
    assert not [p.name for p in models.iterdir() if p.name.startswith(".staging")]
