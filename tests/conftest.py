"""Shared test set-up: deterministic hypothesis, and each hashing implementation as a fixture.

Helpers shared by several test modules live in ``tests/support/`` (never in a test module).
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from edgerec import hashing
from tests.support.hashing import native_module, pure_module

# Deterministic: the same examples on every run and in CI (no flaky shrinking surprises).
settings.register_profile(
    "edgerec",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("edgerec")


@pytest.fixture(params=["native", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """Each hashing implementation, whichever one the facade picked."""
    return native_module() if request.param == "native" else pure_module()


if os.environ.get("EDGEREC_PURE_PYTHON") == "1":
    assert hashing.IMPLEMENTATION == "python"
