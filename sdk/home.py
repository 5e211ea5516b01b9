"""A device home folder: what lives where.

    home/
      history.db              the encrypted reading history (edgerec.history)
      models/<version>/       installed bundles (model.tflite + manifest.json)
      models/active.json      {"version": N, "previous": M}: the pointer to the active model
                              (+ "rejected": R after a rollback from R)

The pointer is replaced atomically by the update client (:mod:`edgerec.updates`) through
:func:`write_pointer`: a temp file in ``models/``, fsynced, renamed over ``active.json``,
then the folder fsynced. Temp names start with ``.`` so no reader mistakes them for a model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from .errors import InvalidInputError, InvalidTypeError

__all__ = [
    "ACTIVE_FILE",
    "HISTORY_FILE",
    "MODELS_DIR",
    "POINTER_TMP_PREFIX",
    "active_model_dir",
    "checked_home",
    "fsync_dir",
    "read_pointer",
    "write_pointer",
]

HISTORY_FILE: Final = "history.db"
MODELS_DIR: Final = "models"
ACTIVE_FILE: Final = "active.json"
POINTER_TMP_PREFIX: Final = ".active.json.tmp-"


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


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_pointer(
    home: Path,
    version: int,
    previous: int | None = None,
    *,
    rejected: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> None:
    """Replace ``models/active.json`` atomically: a reader sees the old or the new pointer.

    ``rejected`` records the newest version rolled back from (not reinstalled by updates).

    ``on_step`` is called with ``"pointer-temp"`` and ``"pointer-renamed"`` (crash tests).

    Raises:
        InvalidInputError: a version is not a positive int.
        OSError: the folder cannot be written (the old pointer is then still in place).
    """
    for value in (version, previous, rejected):
        if value is not None and (type(value) is not int or value < 1):
            raise InvalidInputError("model versions must be positive ints")
    models = home / MODELS_DIR
    models.mkdir(parents=True, exist_ok=True)
    data: dict[str, int] = {"version": version}
    if previous is not None:
        data["previous"] = previous
    if rejected is not None:
        data["rejected"] = rejected
    tmp = models / f"{POINTER_TMP_PREFIX}{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(json.dumps(data).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        if on_step:
            on_step("pointer-temp")
        os.replace(tmp, models / ACTIVE_FILE)
        if on_step:
            on_step("pointer-renamed")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(models)
