"""Model bundles on disk: a folder holding ``model.tflite`` + ``manifest.json``.

A bundle is trusted only after :meth:`Bundle.load` has parsed the manifest strictly
(:meth:`~edgerec.model.manifest.Manifest.parse`) and checked the model's bytes against the
manifest's length and sha256. :func:`write_bundle` is how the trainer writes one, through
the same manifest code. Update-channel signatures (TUF) are checked before a bundle
reaches a device folder (:mod:`edgerec.updates`); this module checks what is on disk.

Example:
    >>> import pathlib
    >>> Bundle.load(pathlib.Path("_nothing_here"))
    Traceback (most recent call last):
    ...
    edgerec.errors.BundleError: no manifest.json in the bundle folder _nothing_here
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .._fs import atomic_write
from ..errors import BundleError, ManifestMismatchError
from .manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES, MAX_MODEL_BYTES, MODEL_FILE, Manifest

__all__ = ["Bundle", "write_bundle"]


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    """The file's bytes, refusing more than ``cap`` (read at most cap + 1: no huge reads)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except FileNotFoundError:
        raise BundleError(f"no {what} in the bundle folder {path.parent.name}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise BundleError(f"{what} cannot be read ({type(exc).__name__})") from None
    if len(data) > cap:
        raise BundleError(f"{what} is larger than {cap} bytes")
    return data


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: its manifest and the model bytes that match it."""

    path: Path
    manifest: Manifest
    model: bytes

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        """Read and check a bundle folder.

        Raises:
            BundleError: a file is missing, unreadable or too large.
            ManifestFormatError: the manifest is not strict JSON or not the schema.
            IncompatibleModelError: a schema version or FeatureSpec this SDK cannot use.
            ManifestMismatchError: the model's length or sha256 differ from the manifest's.
        """
        folder = Path(path)
        manifest = Manifest.parse(
            _read_capped(folder / MANIFEST_FILE, MAX_MANIFEST_BYTES, MANIFEST_FILE)
        )
        model = _read_capped(folder / MODEL_FILE, MAX_MODEL_BYTES, MODEL_FILE)
        if len(model) != manifest.model_bytes:
            raise ManifestMismatchError(
                f"{MODEL_FILE} is {len(model)} bytes, the manifest says {manifest.model_bytes}"
            )
        if hashlib.sha256(model).hexdigest() != manifest.model_sha256:
            raise ManifestMismatchError(f"{MODEL_FILE} does not match the manifest's sha256")
        return cls(folder, manifest, model)


def write_bundle(folder: str | os.PathLike[str], model: bytes, manifest: Manifest) -> Bundle:
    """Write a bundle folder (created if missing) and load it back through :meth:`Bundle.load`.

    Each file is replaced atomically, the model first and the manifest last, so a folder
    whose manifest is new always holds the model it describes.

    Raises:
        OSError: the folder cannot be written.
        BundleError: ``model`` is not the model ``manifest`` describes (and the subclasses
            of :meth:`Bundle.load`).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / MODEL_FILE, model)
    atomic_write(out / MANIFEST_FILE, manifest.to_json())
    return Bundle.load(out)
