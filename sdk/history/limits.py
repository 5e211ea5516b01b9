"""Every limit of the history's arguments, and the checks that enforce them: one place.

Owns: the limits (:data:`MAX_ID_CHARS` ... :data:`MAX_LIMIT`), the checks of plain
arguments (names, paths) and :class:`Options`, the checked options of one handle. Numbers
and counts follow the SDK's one numeric rule (:func:`edgerec.features.values.check_number`
and :func:`~edgerec.features.values.check_int`, re-exported here): numpy scalars are
numbers, ``bool`` is not, ``10**400`` is out of range (never an ``OverflowError``).
The article itself is checked by the SDK's one article validator
(:mod:`edgerec.features.values`) against the field descriptions in
:mod:`~edgerec.history.events`, built from the limits here; times follow its one time rule
(:func:`edgerec.parse_time`, with the shared :data:`~edgerec.features.values.MAX_TIME`).
Touches nothing: no file, no key, no clock.

Messages name the parameter (``profile``, ``dwell_s``) and never hold its value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from ..errors import InvalidInputError, InvalidTypeError
from ..features.values import MAX_TIME, check_int, check_number, check_string
from .rollback import MonotonicCounter

__all__ = [
    "MAX_DWELL_S",
    "MAX_ENTITIES",
    "MAX_EVENT_BYTES",
    "MAX_ID_CHARS",
    "MAX_LIMIT",
    "MAX_PASSPHRASE_CHARS",
    "MAX_PROFILE_CHARS",
    "MAX_SERVICE_CHARS",
    "MAX_STRING_CHARS",
    "SYNCHRONOUS_MODES",
    "Options",
    "check_int",
    "check_number",
    "check_path",
    "check_text",
]

MAX_ID_CHARS: Final = 256
MAX_STRING_CHARS: Final = 16_384  # each other string of the article, each entity
MAX_ENTITIES: Final = 256
MAX_EVENT_BYTES: Final = 256 * 1024  # the whole encoded event; far below pyca's 2^31 - 1
MAX_DWELL_S: Final = 1e7
MAX_PROFILE_CHARS: Final = 128
MAX_PASSPHRASE_CHARS: Final = 1024
MAX_SERVICE_CHARS: Final = 256  # a keyring service name
MAX_LIMIT: Final = 1_000_000  # events returned by one recent() call
SYNCHRONOUS_MODES: Final = ("FULL", "EXTRA", "NORMAL")


@dataclass(frozen=True)
class Options:
    """The checked options of one handle: :meth:`~edgerec.ReadingHistory.open`'s arguments
    other than the path, the key source and the profile (documented there)."""

    read_only: bool
    max_events: int | None
    max_age_s: float | None
    max_bytes: int | None
    busy_timeout_s: float
    synchronous: str
    counter: MonotonicCounter | None
    clock: Callable[[], float]
    random_bytes: Callable[[int], bytes]
    scrypt_n: int
    key_use_limit: int
    rotation_batch: int

    @classmethod
    def checked(
        cls,
        *,
        read_only: object,
        max_events: object,
        max_age_s: object,
        max_bytes: object,
        busy_timeout_s: object,
        synchronous: object,
        counter: object,
        clock: object,
        random_bytes: object,
        scrypt_n: object,
        key_use_limit: object,
        rotation_batch: object,
    ) -> Options:
        """The options, each checked in the order of the signature.

        Raises:
            InvalidTypeError, InvalidInputError: an option of the wrong type or out of
                range (named in the message).
        """
        if not isinstance(read_only, bool):
            raise InvalidTypeError(f"read_only: expected bool, got {type(read_only).__name__}")
        events = None if max_events is None else check_int("max_events", max_events, 1, 2**62)
        # A duration, not an instant: a number of seconds, bounded by the shared time range.
        age = None if max_age_s is None else check_number("max_age_s", max_age_s, 0.0, MAX_TIME)
        quota = None if max_bytes is None else check_int("max_bytes", max_bytes, 64 * 1024, 2**62)
        busy = check_number("busy_timeout_s", busy_timeout_s, 0.0, 3600.0)
        if not isinstance(synchronous, str) or synchronous not in SYNCHRONOUS_MODES:
            raise InvalidInputError("synchronous: must be 'FULL', 'EXTRA' or 'NORMAL'")
        n = check_int("scrypt_n", scrypt_n, 2, 2**24)
        if n & (n - 1):
            raise InvalidInputError("scrypt_n: must be a power of two")
        uses = check_int("key_use_limit", key_use_limit, 1, 2**32)
        batch = check_int("rotation_batch", rotation_batch, 1, 1_000_000)
        if counter is not None and not isinstance(counter, MonotonicCounter):
            raise InvalidTypeError("counter: must have read() and advance(value)")
        if not callable(clock) or not callable(random_bytes):
            raise InvalidTypeError("clock and random_bytes must be callables")
        return cls(
            read_only=read_only,
            max_events=events,
            max_age_s=age,
            max_bytes=quota,
            busy_timeout_s=busy,
            synchronous=synchronous,
            counter=counter,
            clock=cast("Callable[[], float]", clock),
            random_bytes=cast("Callable[[int], bytes]", random_bytes),
            scrypt_n=n,
            key_use_limit=uses,
            rotation_batch=batch,
        )


def check_text(where: str, value: object, max_chars: int) -> str:
    """A non-empty ``str`` of at most ``max_chars`` characters that UTF-8 can encode
    (profile names, article ids, passphrases, keystore service names).

    Raises:
        InvalidTypeError: not a ``str``.
        InvalidInputError: empty, too long, or a lone surrogate.
    """
    text = check_string(where, value, max_chars)
    if not text:
        raise InvalidInputError(f"{where}: must not be empty")
    return text


def check_path(value: object) -> str:
    """A file path: ``str`` or a ``PathLike`` giving ``str``, without a NUL character (the
    OS cannot name such a file; ``os.stat`` would raise a bare ``ValueError``).

    Raises:
        InvalidTypeError: not a ``str`` or ``PathLike[str]``.
        InvalidInputError: empty, or holds a NUL character.
    """
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise InvalidTypeError(f"path: expected str or PathLike, got {type(value).__name__}")
    if not text or "\x00" in text:
        raise InvalidInputError("path: empty or holds a NUL character")
    return text
