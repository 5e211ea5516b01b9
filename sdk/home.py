"""A device home folder and the models installed in it: what lives where, which model is
active, and the only code that changes that (activate, roll back, repair at start-up).

    home/
      history.db              the encrypted reading history (edgerec.history)
      models/<version>/       installed bundles (model.tflite + manifest.json)
      models/active.json      {"version": N, "previous": M}: the pointer to the active model
                              (+ "rejected": R after a rollback from R or a rejected
                              candidate R; + "probation": N until model N has served its
                              first recommendations; + "candidate": C while model C is
                              in shadow, edgerec.shadow)
      models/.lock            one writer of models/ at a time (flock)
      tuf/                    the update client's trusted TUF metadata (edgerec.updates)

The pointer is replaced atomically (:func:`edgerec._fs.atomic_write`): a reader sees the
old or the new pointer, never a mix. A bundle becomes active in three durable steps
(:func:`activate`): its staging folder is fsynced and renamed to ``models/<N>``, the folder
fsynced, then the pointer swapped with the old version kept as ``previous`` (the last
known-good model) and the new one marked as on probation: whichever Recommender opens the
home next (in this process or another, after a restart too) watches its first
recommendations and rolls back on a failure, then records that it passed
(:func:`finish_probation`). At start-up :func:`verified_active_model` re-verifies the active bundle
against its manifest (length and sha256) and falls back to the previous one when it is
damaged (reliability cases B3, B4).

Example:
    >>> import tempfile
    >>> home = checked_home(tempfile.mkdtemp())
    >>> read_pointer(home), active_model_dir(home), installed_status(home).active
    ({}, None, None)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ._fs import atomic_write, fsync_dir, fsync_file, remove_temporaries
from .errors import (
    BundleError,
    InvalidInputError,
    InvalidTypeError,
    ModelFormatError,
    UpdateError,
)
from .model import MANIFEST_FILE, MODEL_FILE, Bundle

__all__ = [
    "ACTIVE_FILE",
    "HISTORY_FILE",
    "MODELS_DIR",
    "STAGING_PREFIX",
    "InstalledModels",
    "activate",
    "active_model_dir",
    "checked_home",
    "cleanup",
    "finish_probation",
    "has_installed_models",
    "install_candidate",
    "installed_status",
    "locked",
    "promote_candidate",
    "read_pointer",
    "readable_model",
    "reject_candidate",
    "rollback",
    "verified_active_model",
    "write_pointer",
]

log = logging.getLogger("edgerec.home")

HISTORY_FILE: Final = "history.db"
MODELS_DIR: Final = "models"
ACTIVE_FILE: Final = "active.json"
STAGING_PREFIX: Final = ".staging-"  # update downloads in progress (edgerec.updates)
LOCK_FILE: Final = ".lock"
_POINTER_STEPS: Final = {"temp-written": "pointer-temp", "renamed": "pointer-renamed"}

StepHook = Callable[[str], None]


def checked_home(home: object) -> Path:
    """``home`` as a Path, created if missing.

    Raises:
        InvalidTypeError: not a str or path.
        InvalidInputError: it exists and is not a folder, or it cannot be created (a NUL
            byte in the path, a read-only parent).
    """
    if not isinstance(home, (str, os.PathLike)):
        raise InvalidTypeError(f"home must be a str or Path, got {type(home).__name__}")
    path = Path(home)
    try:
        if path.exists() and not path.is_dir():
            raise InvalidInputError("home exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL byte
        raise InvalidInputError(f"home cannot be used ({type(exc).__name__})") from None
    return path


# --- the pointer ---------------------------------------------------------------------------


def read_pointer(home: Path) -> dict[str, int]:
    """The active-model pointer, or ``{}`` when none is installed or it is unreadable
    (damaged, not JSON, nested too deeply: :func:`verified_active_model` repairs it)."""
    from ._json import StrictJSONError, loads_strict

    try:
        data = loads_strict((home / MODELS_DIR / ACTIVE_FILE).read_bytes())
    except (OSError, StrictJSONError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if type(v) is int and 0 < v < 1 << 63}


def write_pointer(
    home: Path,
    version: int,
    previous: int | None = None,
    *,
    rejected: int | None = None,
    probation: bool = False,
    candidate: int | None = None,
    on_step: StepHook | None = None,
) -> None:
    """Replace ``models/active.json`` atomically: a reader sees the old or the new pointer.

    ``rejected`` records the newest version rolled back from (not reinstalled by updates);
    ``probation`` marks ``version`` as not yet proven by its first recommendations;
    ``candidate`` names the model in shadow (installed, not active).
    ``on_step`` is called with ``"pointer-temp"`` and ``"pointer-renamed"`` (crash tests).

    Raises:
        InvalidInputError: a version is not a positive int.
        OSError: the folder cannot be written (the old pointer is then still in place).
    """
    for value in (version, previous, rejected, candidate):
        if value is not None and (type(value) is not int or value < 1):
            raise InvalidInputError("model versions must be positive ints")
    models = home / MODELS_DIR
    models.mkdir(parents=True, exist_ok=True)
    data: dict[str, int] = {"version": version}
    if previous is not None:
        data["previous"] = previous
    if rejected is not None:
        data["rejected"] = rejected
    if probation:
        data["probation"] = version
    if candidate is not None:
        data["candidate"] = candidate
    step = (lambda name: on_step(_POINTER_STEPS[name])) if on_step else None
    atomic_write(models / ACTIVE_FILE, json.dumps(data).encode() + b"\n", on_step=step)


def active_model_dir(home: Path) -> Path | None:
    """The folder of the active model, or None when no model is installed."""
    version = read_pointer(home).get("version")
    if version is None:
        return None
    folder = home / MODELS_DIR / str(version)
    return folder if folder.is_dir() else None


def has_installed_models(home: Path) -> bool:
    """Whether anything is installed: a pointer that names a model, or a bundle folder."""
    models = home / MODELS_DIR
    if "version" in read_pointer(home):
        return True
    return models.is_dir() and any(p.name.isdigit() for p in models.iterdir())


def readable_model(home: Path) -> Path | None:
    """The active model's folder if it verifies, else the previous one's, else None;
    changes nothing (what a guest session, which writes nothing, ranks with)."""
    pointer = read_pointer(home)
    for key in ("version", "previous"):
        version = pointer.get(key)
        if version is None:
            continue
        try:
            return Bundle.load(home / MODELS_DIR / str(version)).path
        except BundleError:
            log.error("ModelFormatError: installed model %d is damaged", version)
    return None


@dataclass(frozen=True)
class InstalledModels:
    """The versions the pointer names (None: none)."""

    active: int | None
    previous: int | None  # the last known-good model, what a rollback returns to
    rejected: int | None  # the newest version rolled back from or rejected (not reinstalled)
    on_probation: bool = False  # the active model has not served its first calls yet
    candidate: int | None = None  # the model in shadow (installed, not active)


def installed_status(home: Path) -> InstalledModels:
    """What the pointer says (reads one file; nothing is verified or repaired)."""
    pointer = read_pointer(home)
    active = pointer.get("version")
    return InstalledModels(
        active,
        pointer.get("previous"),
        pointer.get("rejected"),
        active is not None and pointer.get("probation") == active,
        pointer.get("candidate"),
    )


# --- changing what is installed (one writer at a time) ----------------------------------------


@contextlib.contextmanager
def locked(home: Path) -> Iterator[Path]:
    """Hold ``models/.lock`` (flock, released by the kernel if the process dies): one
    writer of ``models/`` at a time. Yields the models folder."""
    models = home / MODELS_DIR
    models.mkdir(parents=True, exist_ok=True)
    with open(models / LOCK_FILE, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield models
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def cleanup(home: Path) -> None:
    """Remove what an interrupted call left: staging folders, pointer temp files, and bundle
    folders that are neither the active, the previous nor the candidate model (call with the
    lock held)."""
    models = home / MODELS_DIR
    pointer = read_pointer(home)
    keep = {str(v) for k, v in pointer.items() if k in ("version", "previous", "candidate")}
    remove_temporaries(models)
    for entry in models.iterdir():
        staging = entry.name.startswith(STAGING_PREFIX)
        orphan = "version" in pointer and entry.name.isdigit() and entry.name not in keep
        if staging or orphan:
            shutil.rmtree(entry, ignore_errors=True)


def _stage(home: Path, staging: Path, version: int, step: StepHook) -> None:
    """The durable steps before a pointer swap (lock held): the validated bundle in
    ``staging`` fsynced (``staged``), renamed to ``models/<version>`` (``renamed``) and the
    folder fsynced (``dir-fsynced``)."""
    models = home / MODELS_DIR
    for name in (MANIFEST_FILE, MODEL_FILE):
        fsync_file(staging / name)
    fsync_dir(staging)
    step("staged")
    final = models / str(version)
    if final.exists():  # a complete orphan of a call killed before its pointer swap
        shutil.rmtree(final)
    os.rename(staging, final)
    step("renamed")
    fsync_dir(models)
    step("dir-fsynced")


def activate(home: Path, staging: Path, version: int, step: StepHook) -> int | None:
    """Make the validated bundle in ``staging`` the active model ``version`` (lock held);
    the version it replaced (now ``previous``), or None.

    ``step`` is called after each durable step (crash tests kill the process there):
    ``staged``, ``renamed``, ``dir-fsynced``, ``pointer-temp``, ``pointer-renamed``,
    ``pointer-swapped``.

    Raises:
        OSError: the disk refused a step; what was active stays active.
    """
    _stage(home, staging, version, step)
    pointer = read_pointer(home)
    previous, candidate = pointer.get("version"), pointer.get("candidate")
    if candidate is not None and candidate <= version:
        candidate = None  # a newer model went live: the shadow comparison is moot
    write_pointer(home, version, previous, probation=True, candidate=candidate, on_step=step)
    step("pointer-swapped")
    cleanup(home)
    return previous


def finish_probation(home: Path, version: int) -> bool:
    """Record that model ``version`` served its first recommendations without failing;
    False when the pointer has moved on (another update or a rollback) or it was recorded
    already.

    Raises:
        OSError: the pointer cannot be written (the probation then runs again next time).
    """
    with locked(home):
        pointer = read_pointer(home)
        if pointer.get("version") != version or pointer.get("probation") != version:
            return False
        write_pointer(
            home,
            version,
            pointer.get("previous"),
            rejected=pointer.get("rejected"),
            candidate=pointer.get("candidate"),
        )
    log.info("model %d passed its probation", version)
    return True


def install_candidate(home: Path, staging: Path, version: int, step: StepHook) -> None:
    """Install the validated bundle in ``staging`` as model ``version`` in shadow (lock
    held): durable as :func:`activate` (``staged``, ``renamed``, ``dir-fsynced``,
    ``pointer-temp``, ``pointer-renamed``, ``pointer-swapped``), but the pointer only gains
    ``"candidate"``: the active model keeps serving. A candidate it replaces is removed.

    Raises:
        OSError: the disk refused a step; the pointer is unchanged.
    """
    _stage(home, staging, version, step)
    pointer = read_pointer(home)
    _rewrite(home, pointer, candidate=version, on_step=step)
    step("pointer-swapped")
    cleanup(home)


def promote_candidate(home: Path, version: int) -> int | None:
    """Make the candidate ``version`` the active model, on probation (the existing
    rollback then applies); the version it replaced (now ``previous``).

    Raises:
        UpdateError: ``version`` is not the candidate (another process decided first).
        ModelFormatError: the candidate's files are damaged (it is rejected instead).
        OSError: the pointer cannot be written (nothing changed).
    """
    with locked(home) as models:
        pointer = read_pointer(home)
        if pointer.get("candidate") != version:
            raise UpdateError(f"model {version} is not the candidate in shadow")
        try:
            Bundle.load(models / str(version))
        except BundleError as exc:
            _rewrite(home, pointer, candidate=None, rejected=version)
            cleanup(home)
            raise ModelFormatError(f"the candidate is damaged: {exc}") from None
        previous = pointer.get("version")
        write_pointer(home, version, previous, rejected=pointer.get("rejected"), probation=True)
        cleanup(home)
    log.info("candidate model %d promoted (previous %s)", version, previous)
    return previous


def reject_candidate(home: Path, version: int) -> bool:
    """Drop the candidate ``version`` and remember it as rejected (the update client never
    installs it, or anything older, again); False when it is not the candidate.

    Raises:
        OSError: the pointer cannot be written (nothing changed).
    """
    with locked(home):
        pointer = read_pointer(home)
        if pointer.get("candidate") != version:
            return False
        _rewrite(home, pointer, candidate=None, rejected=max(version, pointer.get("rejected", 0)))
        cleanup(home)
    log.warning("candidate model %d rejected", version)
    return True


def _rewrite(
    home: Path,
    pointer: dict[str, int],
    *,
    candidate: int | None,
    rejected: int | None = None,
    on_step: StepHook | None = None,
) -> None:
    """The pointer with only its candidate (and perhaps ``rejected``) changed."""
    active = pointer.get("version")
    if active is None:  # no active model yet: the candidate is all there is
        raise UpdateError("a model in shadow needs an active model to compare with")
    write_pointer(
        home,
        active,
        pointer.get("previous"),
        rejected=rejected if rejected is not None else pointer.get("rejected"),
        probation=pointer.get("probation") == active,
        candidate=candidate,
        on_step=on_step,
    )


def rollback(home: str | Path) -> int:
    """Make the previous (last known-good) model active again; the version now active.

    The version rolled back from is remembered as rejected: the update client does not
    reinstall it, only a newer one.

    Raises:
        UpdateError: there is no previous model.
        ModelFormatError: the previous model's files are damaged (nothing changed).
    """
    home = checked_home(home)
    with locked(home) as models:
        cleanup(home)
        pointer = read_pointer(home)
        previous, current = pointer.get("previous"), pointer.get("version")
        if previous is None or current is None or not (models / str(previous)).is_dir():
            raise UpdateError("no previous model to roll back to")
        try:
            Bundle.load(models / str(previous))
        except BundleError as exc:
            raise ModelFormatError(f"the previous model is damaged: {exc}") from None
        write_pointer(
            home,
            previous,
            rejected=max(current, pointer.get("rejected", 0)),
            candidate=pointer.get("candidate"),
        )
        cleanup(home)
    log.warning("rolled back from model %d to %d", current, previous)
    return previous


def _recover_pointer(home: Path) -> Path | None:
    """No readable pointer: the newest installed bundle that verifies becomes active (the
    pointer is written atomically, so this is a damaged disk, not an interrupted update)."""
    models = home / MODELS_DIR
    versions = sorted((int(p.name) for p in models.iterdir() if p.name.isdigit()), reverse=True)
    for version in versions:
        try:
            path = Bundle.load(models / str(version)).path
        except BundleError:
            continue
        if (models / ACTIVE_FILE).exists():
            log.error("ModelFormatError: the active-model pointer is unreadable")
        write_pointer(home, version)
        return path
    return None


def verified_active_model(home: str | Path) -> Path | None:
    """At start-up: the active model's folder after :meth:`Bundle.load` re-verified it
    (manifest schema, model length and sha256); a damaged one falls back to the previous,
    an unreadable pointer to the newest installed bundle that verifies.

    Also removes what an interrupted update left behind. None when no model is installed.

    Raises:
        ModelFormatError: the active and the previous model are both damaged.
    """
    home = checked_home(home)
    with locked(home) as models:
        cleanup(home)
        pointer = read_pointer(home)
        version = pointer.get("version")
        if version is None:
            return _recover_pointer(home)
        try:
            return Bundle.load(models / str(version)).path
        except BundleError as exc:
            log.error(
                "ModelFormatError: active model %d is damaged (%s)", version, type(exc).__name__
            )
        previous = pointer.get("previous")
        if previous is not None:
            try:
                path = Bundle.load(models / str(previous)).path
            except BundleError as exc:
                log.error(
                    "ModelFormatError: previous model %d is damaged (%s)",
                    previous,
                    type(exc).__name__,
                )
            else:
                write_pointer(
                    home,
                    previous,
                    rejected=max(version, pointer.get("rejected", 0)),
                    candidate=pointer.get("candidate"),
                )
                cleanup(home)
                log.warning("fell back from damaged model %d to %d", version, previous)
                return path
        raise ModelFormatError("the active model is damaged and no good previous one exists")
