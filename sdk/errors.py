"""The SDK's exceptions: one root, precise leaves, one class per fault.

Every error the public API raises is an :class:`EdgerecError`. Leaves that describe bad
input also derive from the matching builtin (``ValueError`` or ``TypeError``), so callers
that already catch those keep working. Messages name the parameter or field at fault and
never contain the offending value: the same code featurizes a reader's history, and what a
reader read must not leak into logs or tracebacks.

The tree::

    EdgerecError
    ├── InvalidInputError (ValueError), InvalidTypeError (TypeError), SpecError (ValueError)
    ├── RuntimeUnavailableError (ImportError)
    ├── HistoryError: ClosedError (ProfileErasedError), WrongKeyError, KeyUnavailableError,
    │   IntegrityError, UnsupportedFormatError, RollbackDetectedError,
    │   StorageError: StorageCorruptError, StorageBusyError, StorageFullError,
    │                 ReadOnlyStorageError, StorageIOError
    ├── UpdateError: UpdateTimeoutError, UpdateStorageError,
    │   UpdateRejectedError: SignatureError (UntrustedKeyError), ExpiredMetadataError,
    │                        VersionRollbackError, DownloadTooLargeError
    └── BundleError: ManifestFormatError, ManifestMismatchError, IncompatibleModelError,
                     ModelFormatError, ModelValidationError

A fault of a model bundle is one class wherever it is found: a bundle folder given to
:meth:`edgerec.Recommender.open`, an installed model re-verified at start-up, or a download
checked by the update client. Those five classes are therefore both a :class:`BundleError`
and an :class:`UpdateRejectedError` (retrying with the same bundle fails the same way).

Renamed in 0.2 (the old names still import, with a ``DeprecationWarning``, until 0.3):
``ModelLoadError`` is :class:`ModelFormatError` (or :class:`ModelValidationError` for
golden outputs that differ); ``IncompatibleUpdateError`` is :class:`IncompatibleModelError`.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = [
    "BundleError",
    "ClosedError",
    "DownloadTooLargeError",
    "EdgerecError",
    "ExpiredMetadataError",
    "HistoryError",
    "IncompatibleModelError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidTypeError",
    "KeyUnavailableError",
    "ManifestFormatError",
    "ManifestMismatchError",
    "ModelFormatError",
    "ModelValidationError",
    "ProfileErasedError",
    "ReadOnlyStorageError",
    "RollbackDetectedError",
    "RuntimeUnavailableError",
    "SignatureError",
    "SpecError",
    "StorageBusyError",
    "StorageCorruptError",
    "StorageError",
    "StorageFullError",
    "StorageIOError",
    "UnsupportedFormatError",
    "UntrustedKeyError",
    "UpdateError",
    "UpdateRejectedError",
    "UpdateStorageError",
    "UpdateTimeoutError",
    "VersionRollbackError",
    "WrongKeyError",
]


class EdgerecError(Exception):
    """Root of every exception raised by edgerec."""


class InvalidInputError(EdgerecError, ValueError):
    """A value passed to the API has the right type but is not acceptable.

    Examples: a NaN timestamp, a title above the field's character limit, a string that
    cannot be encoded as UTF-8 (a lone surrogate).
    """


class InvalidTypeError(EdgerecError, TypeError):
    """A value passed to the API has the wrong type (``bytes`` where ``str`` is required)."""


class SpecError(EdgerecError, ValueError):
    """A :class:`~edgerec.FeatureSpec` is malformed, or uses rules this SDK cannot reproduce."""


class RuntimeUnavailableError(EdgerecError, ImportError):
    """No TFLite runtime loads (``ai-edge-litert``, else ``tflite-runtime``)."""


# --------------------------------------------------------------------- reading history
class HistoryError(EdgerecError):
    """Root of the errors of the encrypted reading history (:class:`~edgerec.ReadingHistory`).

    Messages name a profile only by its pseudonymous id and a row only by its sequence
    number: never a profile name, an article id, a title or key bytes.
    """


class ClosedError(HistoryError):
    """The history was closed (or its profile erased); open it again to use it."""


class ProfileErasedError(ClosedError):
    """The handle's active profile was erased, by this handle or by another one (another
    thread, process, or the ``edgerec`` command). The handle has dropped the profile's
    keys; :meth:`~edgerec.ReadingHistory.switch_profile` (or a new open) gives it one
    again."""


class WrongKeyError(HistoryError):
    """The master key, passphrase or keystore entry does not open this store.

    Detected at open through a key-check canary, before any row is read; the file is left
    untouched (never replaced by a new store).
    """


class KeyUnavailableError(HistoryError):
    """The OS keystore cannot give the master key: ``keyring`` is not installed, has no
    usable backend, is locked, or holds no entry for this store."""


class IntegrityError(HistoryError):
    """Stored history failed authentication: a flipped bit, swapped or moved ciphertexts,
    deleted or truncated rows. Nothing of the affected row is returned.

    Attributes:
        seq: the sequence number of the row at fault, or ``None`` when the fault is about
            the profile as a whole (a row count or head record mismatch).
    """

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class UnsupportedFormatError(HistoryError):
    """The store or a record uses a format version this SDK does not know (written by a
    newer SDK, or a damaged version byte)."""


class RollbackDetectedError(HistoryError):
    """The store is older than the host's monotonic counter says it must be: the database
    file (and its WAL) were replaced by an earlier copy."""


class StorageError(HistoryError):
    """The database file cannot be used as asked (the leaves say why)."""


class StorageCorruptError(StorageError):
    """The database file is damaged or not a database. It is never reset silently: move it
    aside with :meth:`~edgerec.ReadingHistory.quarantine`."""


class StorageBusyError(StorageError):
    """Another connection held the database lock for longer than ``busy_timeout``. Nothing
    was written; retry later. (Exception: raised by a removal, ``erase_profile``,
    ``forget`` or ``prune``, when the rows are gone but a reader's snapshot kept their old
    bytes in the WAL; the method's docstring says when the scrub completes.)"""


class StorageFullError(StorageError):
    """The disk, or the store's ``max_bytes`` quota, is full. The write was rolled back;
    earlier data is intact."""


class ReadOnlyStorageError(StorageError):
    """A write was asked of a store opened read-only, or whose file or folder is
    read-only. Nothing was written."""


class StorageIOError(StorageError):
    """The operating system reported an I/O error (a failed read, write or fsync). The
    operation failed as a whole and is not retried; a write that failed this way is not
    in the store, now or after a crash and reopen (see ``docs/sdk.md``)."""


# --------------------------------------------------------------------- model updates
class UpdateError(EdgerecError):
    """A model update did not complete; the active model is unchanged.

    Raised as such for transport failures (server unreachable, HTTP errors): try again later.
    """


class UpdateTimeoutError(UpdateError):
    """The update did not finish within its deadline (slow retrieval or a stalled server)."""


class UpdateStorageError(UpdateError):
    """The device could not store the update (disk full, I/O error); partial files removed."""


class UpdateRejectedError(UpdateError):
    """The update was refused: it is not authentic, fresh, newer, well-formed or valid.

    Retrying against the same repository will fail the same way.
    """


class SignatureError(UpdateRejectedError):
    """Update metadata lacks a threshold of valid signatures from the trusted keys."""


class UntrustedKeyError(SignatureError):
    """Update metadata is signed, but only by keys the device does not trust."""


class ExpiredMetadataError(UpdateRejectedError):
    """Update metadata has expired (a freeze attack, or a publisher that stopped signing)."""


class VersionRollbackError(UpdateRejectedError):
    """The offered metadata or model is older than (or the same version as, but different
    from) what the device already has."""


class DownloadTooLargeError(UpdateRejectedError):
    """A download exceeded its signed length or the SDK-wide size cap; it was aborted."""


# --------------------------------------------------------------------- model bundles
class BundleError(EdgerecError):
    """A model bundle cannot be used (the leaves say why). Raised as such for a missing
    file; nothing of the bundle is loaded."""


class ManifestFormatError(BundleError, UpdateRejectedError):
    """The manifest is not strict JSON (duplicate keys, NaN, deep nesting, not UTF-8) or
    not the manifest schema (a key missing or of the wrong type, a bad file name)."""


class ManifestMismatchError(BundleError, UpdateRejectedError):
    """A file does not match what vouches for it: the model's length or sha256 differ from
    the manifest's, a download from its signed hash, or the manifest and model belong to
    different releases (mix-and-match)."""


class IncompatibleModelError(BundleError, UpdateRejectedError):
    """A well-formed bundle this SDK cannot run: a newer manifest schema, a FeatureSpec it
    cannot reproduce, signatures other than the manifest's, or ops outside the built-in
    allow-list."""


class ModelFormatError(BundleError, UpdateRejectedError):
    """The model file is malformed: not a TFLite flatbuffer, refused by the runtime, or it
    crashed the validation process."""


class ModelValidationError(BundleError, UpdateRejectedError):
    """The model loads but fails validation: golden outputs off or not finite, or over the
    latency/memory/CPU budget."""


_RENAMED = {
    "ModelLoadError": ("ModelFormatError", ModelFormatError),
    "IncompatibleUpdateError": ("IncompatibleModelError", IncompatibleModelError),
}


def __getattr__(name: str) -> Any:
    """The names renamed in 0.2, for one release, with a ``DeprecationWarning``."""
    if name in _RENAMED:
        new, cls = _RENAMED[name]
        warnings.warn(
            f"edgerec.errors.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=2
        )
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
