"""Shared test set-up: deterministic hypothesis, both hashing implementations, MIND paths."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from edgerec import FeatureSpec, _hashing_py, hashing

# Deterministic: the same examples on every run and in CI (no flaky shrinking surprises).
settings.register_profile(
    "edgerec",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("edgerec")

VECTORS = Path(__file__).parent / "vectors"
MIND = Path(__file__).resolve().parents[2] / "shared" / "data" / "mind"


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def native_module() -> ModuleType:
    try:
        from edgerec import _hashing_native  # type: ignore[attr-defined]
    except ImportError:
        pytest.skip(
            "native extension not built (EDGEREC_NO_NATIVE=1 install); "
            "test_implementation_choice fails in that case unless it was intended"
        )
    return _hashing_native  # type: ignore[no-any-return]


@pytest.fixture(params=["native", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """Each hashing implementation, whichever one the facade picked."""
    return native_module() if request.param == "native" else _hashing_py


def featurize_with(impl: ModuleType, articles: list[Any], spec: FeatureSpec) -> np.ndarray:
    """Featurize with one named implementation (the facade's own code path)."""
    out = np.zeros((len(articles), spec.width), dtype=np.int32)
    hashing._featurize_with(impl, spec, articles, out)
    return out


def mind_dir() -> Path:
    if not MIND.is_dir():
        pytest.skip(f"MIND data not found at {MIND} (licensed; not shipped with the repo)")
    return MIND


if os.environ.get("EDGEREC_PURE_PYTHON") == "1":
    assert hashing.IMPLEMENTATION == "python"
