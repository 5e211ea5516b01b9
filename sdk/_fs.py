"""The one atomic file write, and the fsyncs that make renames durable.

Every file the project replaces in place (the active-model pointer, a pinned TUF root, a
bundle's model and manifest, the trainer's reports and TUF metadata, the kiosk's key file)
goes through :func:`atomic_write`: a reader sees the whole old file or the whole new one,
never a mix, and after it returns the new one survives a power cut (if the disk honours
fsync): data fsynced, renamed over the target, the folder fsynced.

Temporary names start with ``.`` and end in ``.tmp-<pid>`` so that no reader mistakes them
for the real file and a later cleanup (:func:`remove_temporaries`) can find them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "fsync_file", "remove_temporaries", "temporary_name"]

StepHook = Callable[[str], None]


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """fsync a file already written (by someone else, e.g. a download)."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def temporary_name(target: Path) -> Path:
    """The temporary file :func:`atomic_write` uses for ``target`` in this process."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def atomic_write(
    target: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int | None = None,
    on_step: StepHook | None = None,
) -> None:
    """Replace ``target`` with ``data`` atomically and durably.

    Args:
        target: the file to (re)place; its folder must exist.
        data: the whole new content.
        mode: permission bits of the new file (e.g. ``0o600`` for key material); default
            the process umask's.
        on_step: called with ``"temp-written"`` and ``"renamed"`` (crash tests).

    Raises:
        OSError: the file cannot be written; the old one (if any) is still in place and no
            temporary file is left behind.
    """
    path = Path(target)
    tmp = temporary_name(path)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o666 if mode is None else mode)
        with open(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)  # the umask must not widen or narrow it
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if on_step:
            on_step("temp-written")
        os.replace(tmp, path)
        if on_step:
            on_step("renamed")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_temporaries(folder: Path) -> None:
    """Delete what interrupted :func:`atomic_write` calls left in ``folder``."""
    for entry in folder.iterdir():
        if entry.name.startswith(".") and ".tmp-" in entry.name and entry.is_file():
            entry.unlink(missing_ok=True)
