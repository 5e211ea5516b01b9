"""Validating a downloaded model in a fresh child interpreter (the host's side).

A model is a program (TensorFlow SECURITY.md): a malformed flatbuffer can crash or hang the
TFLite runtime. So the host never loads a new model itself: :func:`validate_in_child` runs
:mod:`edgerec.updates.child` as a fresh interpreter (not a fork of the host) under
CPU-time, address-space and wall-clock limits, and reads its one-line JSON report. A child
that dies (a signal, a limit, a timeout) is a malformed model to the host, which carries on.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .._json import StrictJSONError, loads_strict
from ..errors import (
    IncompatibleModelError,
    ModelFormatError,
    ModelValidationError,
    UpdateRejectedError,
)
from ..features.values import check_int, check_number

__all__ = ["DEFAULT_LIMITS", "Limits", "validate_in_child"]


@dataclass(frozen=True)
class Limits:
    """Resource limits of the validation child process (keyword defaults for a kiosk)."""

    cpu_seconds: int = 30  # RLIMIT_CPU of the child
    address_space_mb: int = 2048  # RLIMIT_AS of the child (LiteRT maps generously)
    wall_seconds: float = 60.0  # killed after this, whatever it is doing
    latency_budget_ms: float = 50.0  # median of 5 golden rank() calls
    memory_budget_mb: float = 200.0  # peak RSS of the child (Python + LiteRT + model: ~60)

    def __post_init__(self) -> None:
        """Raises InvalidTypeError/InvalidInputError for a limit that is not a sane number."""
        check_int("cpu_seconds", self.cpu_seconds, 1, 86400)
        check_int("address_space_mb", self.address_space_mb, 64, 1 << 20)
        check_number("wall_seconds", self.wall_seconds, 0.1, 86400.0)
        check_number("latency_budget_ms", self.latency_budget_ms, 0.0, 3.6e6)
        check_number("memory_budget_mb", self.memory_budget_mb, 1.0, float(1 << 20))


DEFAULT_LIMITS: Final = Limits()


_REJECTIONS: Final[dict[str, type[UpdateRejectedError]]] = {
    "format": ModelFormatError,
    "incompatible": IncompatibleModelError,
    "validation": ModelValidationError,
}


def validate_in_child(
    folder: str | Path, limits: Limits = DEFAULT_LIMITS, *, _command: Sequence[str] | None = None
) -> dict[str, Any]:
    """Validate the bundle in ``folder`` in a fresh child interpreter (see
    :mod:`edgerec.updates.child`); the report of a model that passed.

    Raises:
        ModelFormatError: malformed, or the child crashed (a signal, no report).
        IncompatibleModelError: custom/Flex ops, or signatures other than the manifest's.
        ModelValidationError: golden outputs, latency, CPU time or wall-clock over budget.
    """
    command = list(_command) if _command is not None else [sys.executable, "-I", "-m"]
    command += [
        "edgerec.updates.child",
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
