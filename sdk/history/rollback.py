"""Rollback detection: the store's MAC'd write generation and the host's monotonic counter.

Owns: the ``store_meta`` record ``generation`` (8-byte big-endian count || HMAC-SHA256
under the store's generation key) and every call to the host's :class:`MonotonicCounter`.
May touch: that record (through :mod:`~edgerec.history.schema`), the counter, and
:func:`~edgerec.history.crypto.mac`.

Protocol: a write that changes the store bumps the generation inside its transaction;
after the commit the counter is advanced to it. An open (and :meth:`verify`) reads the
generation: behind the counter is :class:`~edgerec.RollbackDetectedError`; ahead of it is a
crash between commit and advance, and the counter catches up. **Without a counter nothing
is compared**: an older copy of the whole file is authentic and opens (the documented
limitation), and writes leave the generation alone.
"""

from __future__ import annotations

import secrets
import sqlite3
import struct
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from ..errors import IntegrityError, KeyUnavailableError, RollbackDetectedError, StorageError
from . import crypto
from .schema import read_meta, write_meta

if TYPE_CHECKING:
    from .connection import Database

__all__ = ["Generation", "MonotonicCounter"]

_RECORD_BYTES: Final = 8 + 32


@runtime_checkable
class MonotonicCounter(Protocol):
    """A host counter that never goes backwards (TPM NV counter, server, secure element).

    Example:
        >>> class Counter:
        ...     value = 0
        ...     def read(self) -> int:
        ...         return self.value
        ...     def advance(self, value: int) -> None:
        ...         self.value = max(self.value, value)
        >>> isinstance(Counter(), MonotonicCounter)
        True
    """

    def read(self) -> int:
        """The counter's value."""
        ...

    def advance(self, value: int) -> None:
        """Raise the counter to ``value`` (never lower it)."""
        ...


class Generation:
    """The store's generation record, and the host counter watching it (or none)."""

    def __init__(self, key: bytes, store_id: bytes, counter: MonotonicCounter | None) -> None:
        self._key = key
        self._store_id = store_id
        self.counter = counter

    def _mac(self, gen: int) -> bytes:
        return crypto.mac(self._key, b"generation", self._store_id, struct.pack(">Q", gen))

    def write(self, conn: sqlite3.Connection, gen: int) -> None:
        """Store generation ``gen`` with its MAC (inside the caller's transaction)."""
        write_meta(conn, "generation", struct.pack(">Q", gen) + self._mac(gen))

    def read(self, conn: sqlite3.Connection) -> int:
        """The stored generation, authenticated.

        Raises:
            IntegrityError: the record is malformed or fails its MAC.
        """
        raw = read_meta(conn, "generation") or b""
        if len(raw) != _RECORD_BYTES:
            raise IntegrityError("the store's generation record is malformed")
        gen = struct.unpack(">Q", raw[:8])[0]
        if not secrets.compare_digest(raw[8:], self._mac(gen)):
            raise IntegrityError("the store's generation record failed authentication")
        return int(gen)

    def bump(self, conn: sqlite3.Connection) -> int:
        """Count this write in the generation, if a host counter watches it; the caller
        passes the result to :meth:`advance` after the commit.

        Without a counter nothing could ever compare the generation, so it is left alone
        (one row write less per event). Writes made without the counter are invisible to
        it, which is fine: between them there was nothing to detect a rollback with.
        """
        if self.counter is None:
            return 0
        gen = self.read(conn) + 1
        self.write(conn, gen)
        return gen

    def verify(self, db: Database) -> None:
        """Authenticate the stored generation (even without a counter), then compare it
        with the counter (:meth:`check`).

        Raises:
            IntegrityError: the generation record is malformed or fails its MAC.
            RollbackDetectedError, KeyUnavailableError, StorageError: see :meth:`check`.
        """
        with db.read() as conn:
            gen = self.read(conn)
        self.check(gen)

    def check(self, gen: int) -> None:
        """Compare the stored generation ``gen`` (read with :meth:`read`) with the counter.

        Raises:
            RollbackDetectedError: the store is behind the counter.
            KeyUnavailableError: the counter cannot be read.
            StorageError: the counter cannot be advanced.
        """
        if self.counter is None:
            return
        try:
            expected = int(self.counter.read())
        except Exception:  # the host's object: whatever it raises, one typed error
            raise KeyUnavailableError("the host's monotonic counter could not be read") from None
        if gen < expected:
            raise RollbackDetectedError(
                f"the history store is at generation {gen}, the host counter at {expected}"
            )
        if gen > expected:
            self.advance(gen)  # a crash between commit and advance

    def advance(self, gen: int) -> None:
        """Raise the host counter to ``gen`` after the write that bumped it committed.

        Raises:
            StorageError: the counter refused (the write is committed; the next open
                advances the counter again).
        """
        if self.counter is None:
            return
        try:
            self.counter.advance(gen)
        except Exception:  # the host's object: whatever it raises, one typed error
            raise StorageError("the host's monotonic counter could not be advanced") from None
