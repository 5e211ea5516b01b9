"""The update client's flow: TUF-verified download, the SDK's checks, validation in a
child process, atomic activation with the last known-good model kept (DESIGN.md section 6).

Example:
    >>> from edgerec import updates
    >>> result = updates.check_for_update(  # doctest: +SKIP
    ...     "/var/lib/kiosk", "https://models.example/repo", trusted_root=root_json_bytes
    ... )
    >>> result.version if result else "up to date"  # doctest: +SKIP

What a device trusts: the root metadata it was given once (``trusted_root=``, installed as
``home/tuf/root.json``; later roots are accepted only through the TUF chain N -> N+1 signed
by both thresholds). What it fetches from ``url`` (any static HTTP server serving a folder
written by ``edgerec-train publish``)::

    url/metadata/{N.root,timestamp,N.snapshot,N.targets}.json    TUF metadata
    url/targets/bundles/latest.json                              {"model_version": N}
    url/targets/bundles/<N>/<sha256>.{manifest.json,model.tflite}

Order of checks, each failure a typed :class:`~edgerec.errors.UpdateError`, after which the
active model and pointer are unchanged and the staging folder is deleted:

1. TUF (``tuf.ngclient``): signatures and thresholds, expiry, metadata version rollback,
   target length and sha256 (so a manifest and model are checked before either is parsed).
   Every download is capped by its signed length and by ``max_bytes``, and the whole check
   by a monotonic ``deadline_s`` (also between bytes: a server trickling one byte at a time
   cannot hold the device past it).
2. The SDK: ``latest.json`` names a version strictly above the installed one; the manifest
   is strict JSON and the schema, its FeatureSpec one this SDK reproduces, its version the
   one announced, its model file the one downloaded (length, sha256), with the ``TFL3``
   identifier.
3. :mod:`edgerec.updates.child` in a fresh child interpreter under CPU-time, address-space and
   wall-clock limits: built-in ops only, signatures equal to the manifest's, golden outputs,
   latency budget. A crash of the child is a :class:`~edgerec.errors.ModelFormatError` in
   the host, which carries on.
4. Activation (:func:`edgerec.home.activate`): the staging folder (``models/.staging-*``)
   is fsynced and renamed to ``models/<N>``, the folder fsynced, then ``active.json`` is
   swapped atomically with the old version as ``previous``. Older bundles are removed;
   leftovers of an interrupted call are removed by the next one.

Not protected against (stated in TUF's own terms): a network attacker can block updates (we
detect stale metadata only when the device checks); a malicious model beyond the validation
process's limits; a device clock set far back (expiry is judged by the device clock).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from tuf.api.metadata import Metadata, Root, Timestamp
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from .._fs import atomic_write
from .._json import StrictJSONError, loads_strict
from ..errors import (
    BundleError,
    DownloadTooLargeError,
    InvalidTypeError,
    ManifestFormatError,
    ManifestMismatchError,
    ModelFormatError,
    UpdateError,
    UpdateRejectedError,
    VersionRollbackError,
)
from ..features.values import check_int, check_number
from ..home import (
    MODELS_DIR,
    STAGING_PREFIX,
    activate,
    checked_home,
    cleanup,
    install_candidate,
    installed_status,
    locked,
    read_pointer,
)
from ..model import Bundle, Manifest
from ..model.manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES, MODEL_FILE
from .child import Rejected, check_identifier
from .transport import MAX_DOWNLOAD_BYTES, DeadlineFetcher, storage_error, translated
from .validation import DEFAULT_LIMITS, Limits, validate_in_child

__all__ = [
    "LATEST_TARGET",
    "TUF_DIR",
    "UpdateResult",
    "UpdateStatus",
    "bundle_target",
    "check_for_update",
    "update_status",
]

log = logging.getLogger("edgerec.updates")

MAX_LATEST_BYTES: Final = 4096
TUF_DIR: Final = "tuf"
LATEST_TARGET: Final = "bundles/latest.json"

StepHook = Callable[[str], None]


def bundle_target(version: int, name: str) -> str:
    """The TUF target path of one file of a bundle (shared with the publisher)."""
    return f"bundles/{version}/{name}"


@dataclass(frozen=True)
class UpdateResult:
    """A model that was installed: now active, or (``shadow``) the candidate in shadow
    while ``previous`` keeps serving."""

    version: int
    previous: int | None
    path: Path
    validation: dict[str, Any] = field(default_factory=dict)
    shadow: bool = False


@dataclass(frozen=True)
class UpdateStatus:
    """What the device has, and whether its update metadata is stale (a freeze, a blocked
    network, or a publisher that stopped signing: the device cannot tell which)."""

    active: int | None
    previous: int | None
    rejected: int | None  # the newest version rolled back from
    metadata_expires: datetime | None  # of the last verified timestamp; None: never checked
    stale: bool  # no verified metadata, or it has expired
    candidate: int | None = None  # the model in shadow, if any


def update_status(home: str | Path, *, now: datetime | None = None) -> UpdateStatus:
    """The device's update state, for an app to show or report (reads files only).

    Args:
        home: the device home folder.
        now: the time to judge expiry at (default: now, UTC).
    """
    home = checked_home(home)
    installed = installed_status(home)
    try:
        path = home / TUF_DIR / "timestamp.json"
        expires: datetime | None = Metadata[Timestamp].from_file(str(path)).signed.expires
    except Exception:  # never checked, or unreadable: stale either way
        expires = None
    at = now or datetime.now(UTC)
    return UpdateStatus(
        installed.active,
        installed.previous,
        installed.rejected,
        expires,
        expires is None or expires <= at,
        installed.candidate,
    )


# --- before TUF: the trusted root -----------------------------------------------------


def _install_root(home: Path, trusted_root: bytes | str | Path | None) -> Path:
    """``home/tuf`` with a root.json in it: the installed one (possibly rotated since), or
    ``trusted_root`` installed once."""
    tuf_dir = home / TUF_DIR
    if (tuf_dir / "root.json").is_file():
        return tuf_dir
    if trusted_root is None:
        raise UpdateError("no trusted root installed; pass trusted_root= (root.json) once")
    try:
        data = trusted_root if isinstance(trusted_root, bytes) else Path(trusted_root).read_bytes()
        Metadata[Root].from_bytes(data)
    except OSError:
        raise UpdateError("trusted_root cannot be read") from None
    except Exception:
        raise UpdateError("trusted_root is not TUF root metadata") from None
    tuf_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(tuf_dir / "root.json", data)
    return tuf_dir


# --- the checks after TUF -------------------------------------------------------------------


def _parse_latest(data: bytes) -> int:
    try:
        doc = loads_strict(data)
    except StrictJSONError as exc:
        raise ManifestFormatError(f"latest.json: {exc}") from None
    version = doc.get("model_version") if isinstance(doc, dict) else None
    if type(version) is not int or version < 1:
        raise ManifestFormatError("latest.json: model_version must be a positive int")
    return version


def _check_bundle(staging: Path, version: int) -> Manifest:
    """The SDK's checks on a TUF-verified manifest + model, before any TFLite parsing:
    the one strict manifest parser, the release the manifest names, the model's length and
    sha256 against the manifest, and the TFLite file identifier."""
    try:
        bundle = Bundle.load(staging)  # ManifestFormatError, IncompatibleModelError, mismatch
    except UpdateRejectedError:
        raise
    except BundleError as exc:  # a file TUF verified is gone or unreadable
        raise ManifestMismatchError(f"the downloaded bundle is incomplete: {exc}") from None
    if bundle.manifest.model_version != version:
        raise ManifestMismatchError(
            f"the manifest is for model {bundle.manifest.model_version}, the release is {version}"
        )
    try:
        check_identifier(bundle.model)
    except Rejected as exc:
        raise ModelFormatError(str(exc)) from None
    return bundle.manifest


def check_for_update(
    home: str | Path,
    url: str,
    *,
    trusted_root: bytes | str | Path | None = None,
    deadline_s: float = 120.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    limits: Limits = DEFAULT_LIMITS,
    validator: Callable[[Path, Limits], dict[str, Any]] | None = None,
    fetcher: FetcherInterface | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_step: StepHook | None = None,
    shadow: bool = False,
) -> UpdateResult | None:
    """Install and activate the repository's newest model if it is newer and valid.

    With ``shadow=True`` the model passes the same checks and validation but is installed
    as the *candidate* (:mod:`edgerec.shadow`): the active model keeps serving, and the
    device decides later, on its readers' own reads, whether to promote it.

    Blocks for at most about ``deadline_s`` (downloads) plus ``limits.wall_seconds``
    (validation): call it from a background thread, never the UI thread.

    Args:
        home: the device home folder (see :mod:`edgerec.home`).
        url: base URL of the TUF repository folder written by ``edgerec-train publish``.
        trusted_root: the pinned ``root.json`` (bytes or a path), needed on the first call
            only: it is installed into ``home/tuf/root.json`` and updated by TUF rotations.
        deadline_s: seconds for all downloads together.
        max_bytes: SDK-wide cap on one download, on top of the signed length.
        limits: resource limits of the validation child process.
        validator: replaces :func:`validate_in_child` (tests, benchmarks).
        fetcher: replaces the HTTP transport (a ``tuf.ngclient`` ``FetcherInterface``).
        clock: monotonic clock for the deadline.
        on_step: called with each step name (crash tests).
        shadow: install as the candidate in shadow instead of activating. Needs an active
            model (UpdateError otherwise).

    Returns:
        The installed model, or None when the device already has the newest one (active,
        or in shadow when ``shadow``), or rolled back from or rejected it. Without
        ``shadow``, the model in shadow is activated when it is the newest.

    Raises:
        InvalidTypeError, InvalidInputError: a bad argument (a ``deadline_s`` that is not
            a finite number of seconds, a ``max_bytes`` above the SDK cap).
        UpdateTimeoutError: past the deadline.
        UpdateStorageError: the device could not store it (disk full).
        UpdateRejectedError: one of its leaves (signature, expiry, rollback, mismatch, size,
            manifest, compatibility, model format, validation).
        UpdateError: the server is unreachable or answered with an HTTP error.
    """
    step = on_step or (lambda name: None)
    home = checked_home(home)
    if not isinstance(url, str) or not url:
        raise InvalidTypeError("url must be a non-empty str")
    check_number("deadline_s", deadline_s, 0.001, 7 * 86400.0)
    check_int("max_bytes", max_bytes, 1, MAX_DOWNLOAD_BYTES)
    if type(shadow) is not bool:
        raise InvalidTypeError("shadow must be a bool")
    with locked(home) as models:
        if shadow and "version" not in read_pointer(home):
            raise UpdateError("a model in shadow needs an active model; install one first")
        cleanup(home)
        tuf_dir = _install_root(home, trusted_root)
        if fetcher is None:
            fetcher = DeadlineFetcher(clock() + deadline_s, clock=clock, max_bytes=max_bytes)
        base = url.rstrip("/")
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=models))
        try:
            with translated(fetcher, tuf_dir):
                updater = Updater(
                    str(tuf_dir),
                    f"{base}/metadata/",
                    str(staging),
                    f"{base}/targets/",
                    fetcher=fetcher,
                    config=UpdaterConfig(),
                    bootstrap=None,
                )
                updater.refresh()
                step("refreshed")
                latest = updater.get_targetinfo(LATEST_TARGET)
                if latest is None:
                    shutil.rmtree(staging)
                    return None
                if latest.length > MAX_LATEST_BYTES:
                    raise DownloadTooLargeError("latest.json is larger than allowed")
                path = updater.download_target(latest, str(staging / ".latest.json"))
                version = _parse_latest(Path(path).read_bytes())
                Path(path).unlink()
                pointer = read_pointer(home)
                installed = pointer.get("version", 0)
                if version < installed:
                    raise VersionRollbackError(
                        f"the repository offers model {version}; {installed} is installed"
                    )
                infos = {
                    name: updater.get_targetinfo(bundle_target(version, name))
                    for name in (MANIFEST_FILE, MODEL_FILE)
                }
                man_info, model_info = infos[MANIFEST_FILE], infos[MODEL_FILE]
                if man_info is None or model_info is None:
                    raise ManifestMismatchError(f"release {version} lacks a signed file")
                if version == installed:
                    _check_same_release(home, version, model_info.hashes.get("sha256"))
                    shutil.rmtree(staging)
                    return None
                in_shadow = shadow and version == pointer.get("candidate")
                if version <= pointer.get("rejected", 0) or in_shadow:
                    shutil.rmtree(staging)
                    return None  # rolled back from or rejected; or already in shadow
                if man_info.length > MAX_MANIFEST_BYTES:
                    raise DownloadTooLargeError("the signed manifest is larger than allowed")
                if model_info.length > max_bytes:
                    raise DownloadTooLargeError(
                        f"the signed model is {model_info.length} bytes; the cap is {max_bytes}"
                    )
                updater.download_target(man_info, str(staging / MANIFEST_FILE))
                updater.download_target(model_info, str(staging / MODEL_FILE))
                step("downloaded")
            _check_bundle(staging, version)
            step("verified")
            report = (validator or validate_in_child)(staging, limits)
            step("validated")
            previous: int | None = installed
            try:
                if shadow:
                    install_candidate(home, staging, version, step)
                else:
                    previous = activate(home, staging, version, step)
            except OSError as exc:
                raise storage_error(exc) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    if shadow:
        log.info("model %d in shadow (model %s serves)", version, previous)
    else:
        log.info("model %d active (previous %s)", version, previous)
    return UpdateResult(version, previous, models / str(version), report, shadow)


def _check_same_release(home: Path, version: int, signed_sha: str | None) -> None:
    """The repository re-announces the installed version: it must be the same model."""
    try:
        installed = Bundle.load(home / MODELS_DIR / str(version)).manifest.model_sha256
    except BundleError:
        return  # a damaged install is verified_active_model's business
    if signed_sha != installed:
        raise VersionRollbackError(
            f"the repository offers a different model under the installed version {version}"
        )
