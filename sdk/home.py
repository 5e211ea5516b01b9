"""A device home folder: what lives where.

    home/
      history.db              the encrypted reading history (edgerec.history)
      models/<version>/       installed bundles (model.tflite + manifest.json)
      models/active.json      {"version": N, "previous": M}: the pointer to the active model

The pointer is replaced atomically by the update client; this module only reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from .errors import InvalidInputError, InvalidTypeError

__all__ = ["ACTIVE_FILE", "HISTORY_FILE", "MODELS_DIR", "active_model_dir", "checked_home"]

HISTORY_FILE: Final = "history.db"
MODELS_DIR: Final = "models"
ACTIVE_FILE: Final = "active.json"


def checked_home(home: object) -> Path:
    """``home`` as a Path, created if missing.

    Raises:
        InvalidTypeError: not a str or path.
        InvalidInputError: it exists and is not a folder.
    """
    if not isinstance(home, (str, Path)):
        raise InvalidTypeError(f"home must be a str or Path, got {type(home).__name__}")
    path = Path(home)
    if path.exists() and not path.is_dir():
        raise InvalidInputError("home exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_pointer(home: Path) -> dict[str, int]:
    """The active-model pointer, or ``{}`` when none is installed or it is unreadable."""
    try:
        data = json.loads((home / MODELS_DIR / ACTIVE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if type(v) is int and v > 0}


def active_model_dir(home: Path) -> Path | None:
    """The folder of the active model, or None when no model is installed."""
    version = read_pointer(home).get("version")
    if version is None:
        return None
    folder = home / MODELS_DIR / str(version)
    return folder if folder.is_dir() else None
