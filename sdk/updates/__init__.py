"""Signed model updates (DESIGN.md section 6): TUF-verified download, validation in a child
process, atomic activation with the last known-good model kept.

* :mod:`~edgerec.updates.client`: :func:`check_for_update` and :func:`update_status`, the
  flow and the SDK's checks after TUF;
* :mod:`~edgerec.updates.transport`: HTTP under one deadline and the translation of TUF and
  OS errors into :class:`~edgerec.errors.UpdateError` leaves;
* :mod:`~edgerec.updates.validation` (host) and :mod:`~edgerec.updates.child` (the child
  process): the model validated where a crash cannot hurt the app;
* installing, rolling back and repairing the installed models is :mod:`edgerec.home`'s
  (:func:`rollback` and :func:`verified_active_model` are re-exported here).

Example:
    >>> from edgerec import updates
    >>> result = updates.check_for_update(  # doctest: +SKIP
    ...     "/var/lib/kiosk", "https://models.example/repo", trusted_root=root_json_bytes
    ... )
    >>> result.version if result else "up to date"  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, imported on first use (see __getattr__)
    from ..home import rollback, verified_active_model
    from .client import (
        LATEST_TARGET,
        TUF_DIR,
        UpdateResult,
        UpdateStatus,
        bundle_target,
        check_for_update,
        update_status,
    )
    from .transport import MAX_DOWNLOAD_BYTES
    from .validation import Limits, validate_in_child

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

# Where each public name lives. Imported lazily: the validation child
# (``python -m edgerec.updates.child``) imports this package first and must not pull in
# TUF and its HTTP stack (urllib3 even opens a socket at import to probe for IPv6).
_HOMES = {
    "rollback": "..home",
    "verified_active_model": "..home",
    "MAX_DOWNLOAD_BYTES": ".transport",
    "Limits": ".validation",
    "validate_in_child": ".validation",
    **dict.fromkeys(
        (
            "LATEST_TARGET",
            "TUF_DIR",
            "UpdateResult",
            "UpdateStatus",
            "bundle_target",
            "check_for_update",
            "update_status",
        ),
        ".client",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
