"""The model update client: TUF-verified download, validation in a child process, atomic
activation with the last known-good model kept (DESIGN.md section 6).

Example:
    >>> from edgerec import updates
    >>> result = updates.check_for_update(  # doctest: +SKIP
    ...     "/var/lib/kiosk", "https://models.example/repo", trusted_root=root_json_bytes
    ... )
    >>> result.version if result else "up to date"  # doctest: +SKIP
    >>> updates.verified_active_model("/var/lib/kiosk")  # at startup  # doctest: +SKIP

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
3. :mod:`edgerec._validate` in a fresh child interpreter under CPU-time, address-space and
   wall-clock limits: built-in ops only, signatures equal to the manifest's, golden outputs,
   latency budget. A crash of the child is a :class:`~edgerec.errors.ModelFormatError` in
   the host, which carries on.
4. Activation: the staging folder (``models/.staging-*``) is fsynced and renamed to
   ``models/<N>``, the folder fsynced, then ``active.json`` is swapped atomically with the
   old version as ``previous``. Older bundles are removed; leftovers of an interrupted call
   are removed by the next one.

Not protected against (stated in TUF's own terms): a network attacker can block updates (we
detect stale metadata only when the device checks); a malicious model beyond the validation
process's limits; a device clock set far back (expiry is judged by the device clock).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Metadata, Root, Timestamp
from tuf.api.serialization import DeserializationError
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from ._json import StrictJSONError, loads_strict
from ._validate import Rejected, check_identifier
from .errors import (
    BundleError,
    DownloadTooLargeError,
    ExpiredMetadataError,
    IncompatibleModelError,
    ManifestFormatError,
    ManifestMismatchError,
    ModelFormatError,
    ModelValidationError,
    SignatureError,
    UntrustedKeyError,
    UpdateError,
    UpdateRejectedError,
    UpdateStorageError,
    UpdateTimeoutError,
    VersionRollbackError,
)
from .home import ACTIVE_FILE, MODELS_DIR, POINTER_TMP_PREFIX, checked_home, fsync_dir, read_pointer
from .home import write_pointer as _write_pointer
from .model import Bundle, Manifest
from .model.manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES, MODEL_FILE

__all__ = [
    "LATEST_TARGET",
    "MAX_DOWNLOAD_BYTES",
    "TUF_DIR",
    "Limits",
    "UpdateResult",
    "UpdateStatus",
    "bundle_target",
    "check_for_update",
    "rollback",
    "update_status",
    "validate_in_child",
    "verified_active_model",
]

log = logging.getLogger("edgerec.updates")

MAX_DOWNLOAD_BYTES: Final = 50 << 20  # SDK-wide cap on any one download
MAX_LATEST_BYTES: Final = 4096
TUF_DIR: Final = "tuf"
LATEST_TARGET: Final = "bundles/latest.json"
STAGING_PREFIX: Final = ".staging-"
LOCK_FILE: Final = ".lock"

StepHook = Callable[[str], None]


def bundle_target(version: int, name: str) -> str:
    """The TUF target path of one file of a bundle (shared with the publisher)."""
    return f"bundles/{version}/{name}"


@dataclass(frozen=True)
class Limits:
    """Resource limits of the validation child process (keyword defaults for a kiosk)."""

    cpu_seconds: int = 30  # RLIMIT_CPU of the child
    address_space_mb: int = 2048  # RLIMIT_AS of the child (LiteRT maps generously)
    wall_seconds: float = 60.0  # killed after this, whatever it is doing
    latency_budget_ms: float = 50.0  # median of 5 golden rank() calls
    memory_budget_mb: float = 200.0  # peak RSS of the child (Python + LiteRT + model: ~60)


@dataclass(frozen=True)
class UpdateResult:
    """A model that was installed and is now active."""

    version: int
    previous: int | None
    path: Path
    validation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateStatus:
    """What the device has, and whether its update metadata is stale (a freeze, a blocked
    network, or a publisher that stopped signing: the device cannot tell which)."""

    active: int | None
    previous: int | None
    rejected: int | None  # the newest version rolled back from
    metadata_expires: datetime | None  # of the last verified timestamp; None: never checked
    stale: bool  # no verified metadata, or it has expired


def update_status(home: str | Path, *, now: datetime | None = None) -> UpdateStatus:
    """The device's update state, for an app to show or report (reads files only).

    Args:
        home: the device home folder.
        now: the time to judge expiry at (default: now, UTC).
    """
    home = checked_home(home)
    pointer = read_pointer(home)
    try:
        path = home / TUF_DIR / "timestamp.json"
        expires: datetime | None = Metadata[Timestamp].from_file(str(path)).signed.expires
    except Exception:  # never checked, or unreadable: stale either way
        expires = None
    at = now or datetime.now(UTC)
    return UpdateStatus(
        pointer.get("version"),
        pointer.get("previous"),
        pointer.get("rejected"),
        expires,
        expires is None or expires <= at,
    )


# --- transport -----------------------------------------------------------------------------


class _DeadlineFetcher(FetcherInterface):
    """HTTP(S) GETs with a per-read socket timeout and one overall monotonic deadline.

    ``last_body`` keeps the last small (metadata-sized) download, to tell an untrusted key
    from a missing signature when TUF rejects it.
    """

    def __init__(
        self,
        deadline: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        socket_timeout: float = 10.0,
        chunk_size: int = 1 << 16,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.deadline = deadline
        self.clock = clock
        self.socket_timeout = socket_timeout
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes
        self.last_body = b""

    def _remaining(self) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise tuf_exc.SlowRetrievalError("update deadline passed")
        return min(left, self.socket_timeout)

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        conn_cls: type[http.client.HTTPConnection]
        if parts.scheme == "http":
            conn_cls = http.client.HTTPConnection
        elif parts.scheme == "https":
            conn_cls = http.client.HTTPSConnection
        else:
            raise tuf_exc.DownloadError("only http and https URLs are supported")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = conn_cls(parts.hostname or "", parts.port, timeout=self._remaining())
        try:
            conn.request("GET", path or "/", headers={"User-Agent": "edgerec-updates"})
            # Kept: getresponse() drops conn.sock when the server closes after the body
            # (HTTP/1.0), but the response still reads from this socket.
            sock = conn.sock
            response = conn.getresponse()
        except TimeoutError:
            conn.close()
            raise tuf_exc.SlowRetrievalError("the server did not answer in time") from None
        except BaseException:
            conn.close()
            raise
        if response.status >= 400:
            conn.close()
            raise tuf_exc.DownloadHTTPError(f"HTTP {response.status}", response.status)
        return self._chunks(conn, sock, response)

    def _chunks(
        self,
        conn: http.client.HTTPConnection,
        sock: socket.socket | None,
        response: http.client.HTTPResponse,
    ) -> Iterator[bytes]:
        received = 0
        keep = bytearray()
        try:
            while True:
                timeout = self._remaining()
                if sock is not None:
                    sock.settimeout(timeout)
                try:
                    chunk = response.read1(self.chunk_size)
                except TimeoutError:
                    raise tuf_exc.SlowRetrievalError("the server stalled") from None
                except (OSError, http.client.HTTPException) as exc:
                    raise tuf_exc.DownloadError(f"connection failed: {exc}") from None
                if not chunk:
                    break
                received += len(chunk)
                if received > self.max_bytes:
                    raise tuf_exc.DownloadLengthMismatchError(
                        f"more than the SDK cap of {self.max_bytes} bytes"
                    )
                if received <= 1 << 20:
                    keep += chunk
                yield chunk
            self._remaining()  # a download that ends after the deadline still fails
            self.last_body = bytes(keep) if received <= 1 << 20 else b""
        finally:
            response.close()
            conn.close()


def _signature_error(fetcher: FetcherInterface, tuf_dir: Path, exc: Exception) -> SignatureError:
    """UntrustedKeyError when the rejected metadata carries signatures, none of them by a
    key of the trusted root; SignatureError otherwise (no signature, threshold not met)."""
    body = getattr(fetcher, "last_body", b"")
    try:
        keyids = {s["keyid"] for s in json.loads(body)["signatures"]}
        trusted = Metadata[Root].from_file(str(tuf_dir / "root.json")).signed.keys
    except Exception:
        keyids, trusted = set(), {}
    if keyids and not keyids & set(trusted):
        return UntrustedKeyError("update metadata is signed only by untrusted keys")
    return SignatureError(f"update metadata lacks a threshold of valid signatures ({exc})")


@contextlib.contextmanager
def _translated(fetcher: FetcherInterface, tuf_dir: Path) -> Iterator[None]:
    """python-tuf and OS exceptions -> the SDK's typed errors (nothing raw crosses)."""
    try:
        yield
    except tuf_exc.UnsignedMetadataError as exc:
        raise _signature_error(fetcher, tuf_dir, exc) from None
    except tuf_exc.BadVersionNumberError as exc:
        raise VersionRollbackError(f"update metadata rolled back: {exc}") from None
    except tuf_exc.ExpiredMetadataError as exc:
        raise ExpiredMetadataError(f"update metadata expired: {exc}") from None
    except tuf_exc.LengthOrHashMismatchError as exc:
        raise ManifestMismatchError(f"a download does not match its signed hash: {exc}") from None
    except DeserializationError as exc:
        if "Multiple signatures" in str(exc.__cause__):  # one key listed twice: counts once
            raise SignatureError("update metadata lists one key's signature twice") from None
        raise UpdateRejectedError(f"update metadata is malformed: {exc}") from None
    except tuf_exc.RepositoryError as exc:
        raise UpdateRejectedError(f"update metadata rejected: {exc}") from None
    except tuf_exc.DownloadLengthMismatchError as exc:
        raise DownloadTooLargeError(f"download aborted: {exc}") from None
    except tuf_exc.SlowRetrievalError as exc:
        raise UpdateTimeoutError(f"update timed out: {exc}") from None
    except tuf_exc.DownloadError as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise UpdateError(f"update server unavailable: {exc}{cause}") from None
    except OSError as exc:
        raise _storage_error(exc) from None


def _storage_error(exc: OSError) -> UpdateStorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UpdateStorageError("no space left for the update; partial files removed")
    return UpdateStorageError(f"the update could not be stored ({exc.strerror or exc})")


# --- the device folder -------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[Path]:
    """One updater per home at a time (flock: released by the kernel if we are killed)."""
    models = home / MODELS_DIR
    models.mkdir(parents=True, exist_ok=True)
    with open(models / LOCK_FILE, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield models
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _cleanup(home: Path) -> None:
    """Remove what an interrupted call left: staging folders, pointer temp files, and bundle
    folders that are neither the active nor the previous model (call with the lock held)."""
    models = home / MODELS_DIR
    pointer = read_pointer(home)
    keep = {str(v) for k, v in pointer.items() if k in ("version", "previous")}
    for entry in models.iterdir():
        if entry.name.startswith(STAGING_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(POINTER_TMP_PREFIX):
            entry.unlink(missing_ok=True)
        elif "version" in pointer and entry.name.isdigit() and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


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
    tmp = tuf_dir / ".root.json.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, tuf_dir / "root.json")
    fsync_dir(tuf_dir)
    return tuf_dir


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


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


_REJECTIONS: Final[dict[str, type[UpdateRejectedError]]] = {
    "format": ModelFormatError,
    "incompatible": IncompatibleModelError,
    "validation": ModelValidationError,
}


def validate_in_child(
    folder: str | Path, limits: Limits = Limits(), *, _command: Sequence[str] | None = None
) -> dict[str, Any]:
    """Validate the bundle in ``folder`` in a fresh child interpreter (see
    :mod:`edgerec._validate`); the report of a model that passed.

    Raises:
        ModelFormatError: malformed, or the child crashed (a signal, no report).
        IncompatibleModelError: custom/Flex ops, or signatures other than the manifest's.
        ModelValidationError: golden outputs, latency, CPU time or wall-clock over budget.
    """
    command = list(_command) if _command is not None else [sys.executable, "-I", "-m"]
    command += [
        "edgerec._validate",
        str(folder),
        str(limits.latency_budget_ms),
        str(limits.cpu_seconds),
        str(limits.address_space_mb),
        str(limits.memory_budget_mb),
    ]
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            timeout=limits.wall_seconds,
            stdin=subprocess.DEVNULL,
            close_fds=True,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ModelValidationError(
            f"validation ran past its wall-clock limit of {limits.wall_seconds} s"
        ) from None
    if proc.returncode < 0:
        sig = -proc.returncode
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            raise ModelValidationError("validation ran past its CPU-time limit")
        raise ModelFormatError(
            f"the model crashed the validation process ({signal.Signals(sig).name})"
        )
    lines = proc.stdout.strip().splitlines()
    try:
        report = loads_strict(lines[-1]) if lines else None
    except StrictJSONError:
        report = None
    if not isinstance(report, dict):
        raise ModelFormatError(f"the validation process gave no report (exit {proc.returncode})")
    if proc.returncode == 0 and report.get("ok") is True:
        return report
    error = _REJECTIONS.get(str(report.get("kind")), ModelFormatError)
    raise error(str(report.get("message", "validation failed")))


def _activate(home: Path, staging: Path, version: int, step: StepHook) -> int | None:
    models = home / MODELS_DIR
    for name in (MANIFEST_FILE, MODEL_FILE):
        _fsync_file(staging / name)
    fsync_dir(staging)
    step("staged")
    final = models / str(version)
    if final.exists():  # a complete orphan of a call killed before its pointer swap
        shutil.rmtree(final)
    os.rename(staging, final)
    step("renamed")
    fsync_dir(models)
    step("dir-fsynced")
    previous = read_pointer(home).get("version")
    _write_pointer(home, version, previous, on_step=step)
    step("pointer-swapped")
    _cleanup(home)
    return previous


def check_for_update(
    home: str | Path,
    url: str,
    *,
    trusted_root: bytes | str | Path | None = None,
    deadline_s: float = 120.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    limits: Limits = Limits(),
    validator: Callable[[Path, Limits], dict[str, Any]] | None = None,
    fetcher: FetcherInterface | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_step: StepHook | None = None,
) -> UpdateResult | None:
    """Install and activate the repository's newest model if it is newer and valid.

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

    Returns:
        The installed model, or None when the device already has the newest one (or
        rolled back from it).

    Raises:
        UpdateTimeoutError: past the deadline.
        UpdateStorageError: the device could not store it (disk full).
        UpdateRejectedError: one of its leaves (signature, expiry, rollback, mismatch, size,
            manifest, compatibility, model format, validation).
        UpdateError: the server is unreachable or answered with an HTTP error.
    """
    step = on_step or (lambda name: None)
    home = checked_home(home)
    with _locked(home) as models:
        _cleanup(home)
        tuf_dir = _install_root(home, trusted_root)
        if fetcher is None:
            fetcher = _DeadlineFetcher(clock() + deadline_s, clock=clock, max_bytes=max_bytes)
        base = url.rstrip("/")
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=models))
        try:
            with _translated(fetcher, tuf_dir):
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
                if version <= pointer.get("rejected", 0):
                    shutil.rmtree(staging)
                    return None  # rolled back from it: not reinstalled until a newer one
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
            try:
                previous = _activate(home, staging, version, step)
            except OSError as exc:
                raise _storage_error(exc) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log.info("model %d active (previous %s)", version, previous)
    return UpdateResult(version, previous, models / str(version), report)


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


def rollback(home: str | Path) -> int:
    """Make the previous (last known-good) model active again; the version now active.

    The version rolled back from is remembered as rejected: :func:`check_for_update` does
    not reinstall it, only a newer one.

    Raises:
        UpdateError: there is no previous model.
        ModelFormatError: the previous model's files are damaged (nothing changed).
    """
    home = checked_home(home)
    with _locked(home) as models:
        _cleanup(home)
        pointer = read_pointer(home)
        previous, current = pointer.get("previous"), pointer.get("version")
        if previous is None or current is None or not (models / str(previous)).is_dir():
            raise UpdateError("no previous model to roll back to")
        try:
            Bundle.load(models / str(previous))
        except BundleError as exc:
            raise ModelFormatError(f"the previous model is damaged: {exc}") from None
        _write_pointer(home, previous, rejected=max(current, pointer.get("rejected", 0)))
        _cleanup(home)
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
        _write_pointer(home, version)
        return path
    return None


def verified_active_model(home: str | Path) -> Path | None:
    """At startup: the active model's folder after :meth:`Bundle.load` re-verified it
    (manifest schema, model length and sha256); a damaged one falls back to the previous,
    an unreadable pointer to the newest installed bundle that verifies.

    Also removes what an interrupted update left behind. None when no model is installed.

    Raises:
        ModelFormatError: the active and the previous model are both damaged.
    """
    home = checked_home(home)
    with _locked(home) as models:
        _cleanup(home)
        pointer = read_pointer(home)
        version = pointer.get("version")
        if version is None:
            return _recover_pointer(home)
        try:
            return Bundle.load(models / str(version)).path
        except BundleError as exc:
            log.error("ModelFormatError: active model %d is damaged (%s)", version, exc)
        previous = pointer.get("previous")
        if previous is not None:
            try:
                path = Bundle.load(models / str(previous)).path
            except BundleError as exc:
                log.error("ModelFormatError: previous model %d is damaged (%s)", previous, exc)
            else:
                _write_pointer(home, previous, rejected=max(version, pointer.get("rejected", 0)))
                _cleanup(home)
                log.warning("fell back from damaged model %d to %d", version, previous)
                return path
        raise ModelFormatError("the active model is damaged and no good previous one exists")
