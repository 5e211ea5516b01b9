"""Names that moved in 0.2, importable at their old place for one release.

Each old module path is registered as an alias of its new home; a renamed class is reached
through the alias with a ``DeprecationWarning``. Nothing here implements anything: these
are the only lines to delete in 0.3. The changelog is ``docs/changelog.md``.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["install"]


def _alias(old: str, module: ModuleType, renamed: dict[str, tuple[str, Any]]) -> None:
    alias = ModuleType(old, f"Deprecated alias of {module.__name__} (moved in 0.2).")

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # introspection (inspect, pickle, doctest): no warning
            raise AttributeError(name)
        if name in renamed:
            new, value = renamed[name]
            warnings.warn(f"{old}.{name} is deprecated; use {new}", DeprecationWarning, 2)
            return value
        warnings.warn(f"{old} is deprecated; use {module.__name__}", DeprecationWarning, 2)
        return getattr(module, name)

    alias.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules.setdefault(old, alias)


def install() -> None:
    """Register the old module paths (called once by ``edgerec/__init__.py``)."""
    from . import model
    from .features import hashing
    from .model import runtime

    sys.modules.setdefault("edgerec.hashing", hashing)  # still public, not deprecated
    _alias("edgerec.bundle", model, {"Ranker": ("edgerec.model.ModelRunner", model.ModelRunner)})
    _alias("edgerec.runtime", runtime, {})
