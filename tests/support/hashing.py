"""Both hashing implementations side by side, and the golden vectors that pin them."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from edgerec import FeatureSpec
from edgerec.features import _hashing_py, hashing

__all__ = ["VECTORS", "featurize_with", "load_vectors", "native_module", "pure_module"]

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def native_module() -> ModuleType:
    try:
        from edgerec.features import _hashing_native  # type: ignore[attr-defined]
    except ImportError:
        pytest.skip(
            "native extension not built (EDGEREC_PURE_PYTHON=1 install); "
            "test_implementation_choice fails in that case unless it was intended"
        )
    return _hashing_native  # type: ignore[no-any-return]


def pure_module() -> ModuleType:
    return _hashing_py


def featurize_with(impl: ModuleType, articles: list[Any], spec: FeatureSpec) -> np.ndarray:
    """Featurize with one named implementation (the facade's own code path)."""
    out = np.zeros((len(articles), spec.width), dtype=np.int32)
    hashing._featurize_with(impl, spec, articles, out)
    return out
