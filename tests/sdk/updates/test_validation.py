"""edgerec.updates.validation and .child: a model is validated in a child process that may
crash, never in the host (C10, C12, C13); the op allow-list walks the flatbuffer itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgerec import updates
from edgerec.errors import (
    IncompatibleModelError,
    ModelFormatError,
    ModelValidationError,
    UpdateRejectedError,
)
from edgerec.model import MANIFEST_FILE
from edgerec.updates.child import Rejected, _Flatbuffer, check_ops, operator_codes
from tests.support.updates import (
    FIXTURE,
    MODEL,
    Env,
    make_bundle,
)


def test_a_big_host_does_not_fail_the_memory_budget(env: Env) -> None:
    """The child measures its own peak memory, not the host's: ``ru_maxrss`` survives exec,
    so a host above the budget (a long-running app) used to have every update rejected."""
    ballast = bytearray(300 * 1024 * 1024)  # above the default 200 MB budget
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))  # resident, not just mapped
    result = env.install()
    assert result is not None and result.validation["max_rss_kb"] < 200 * 1024
    del ballast


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("name", "model", "errors"),
    [
        ("identifier", MODEL[:4] + b"XXXX" + MODEL[8:], ModelFormatError),
        ("header-only", b"\x18\x00\x00\x00TFL3" + b"\x00" * 24, ModelFormatError),
        ("truncated", MODEL[: len(MODEL) // 2], ModelFormatError),
        ("root-offset", b"\xff\xff\xff\x7f" + MODEL[4:], ModelFormatError),
        ("bit-flips", _flip(_flip(MODEL, len(MODEL) // 3), len(MODEL) // 2), UpdateRejectedError),
    ],
)
def test_c10_malformed_model_is_never_activated(
    v1: Env, name: str, model: bytes, errors: type[Exception]
) -> None:
    """C10: signed, matching its manifest, and malformed; the host survives."""
    v1.publish(2, model=model)
    v1.rejected(errors)


def test_c10_random_mutations_never_escape_the_child(tmp_path: Path) -> None:
    """C10 fuzz (seeded, small): 16 random byte changes per model; the child either passes
    it (a weight changed within the golden tolerance) or the host gets a typed rejection."""
    import random

    rng = random.Random(7)
    outcomes = set()
    for i in range(6):
        data = bytearray(MODEL)
        for _ in range(16):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        folder = make_bundle(tmp_path, 2, model=bytes(data))
        try:
            updates.validate_in_child(folder, updates.Limits(wall_seconds=20))
            outcomes.add("passed")
        except UpdateRejectedError as exc:
            outcomes.add(type(exc).__name__)
        assert folder.is_dir(), i
    assert outcomes - {"passed"}, "no mutation was caught: the test proves nothing"


def test_c10_a_crashing_validation_child_is_a_format_error(tmp_path: Path) -> None:
    """C10: a child killed by SIGSEGV, or running past its wall clock."""
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    with pytest.raises(ModelFormatError, match="SIGSEGV"):
        updates.validate_in_child(tmp_path, _command=crash)
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(ModelValidationError, match="wall-clock"):
        updates.validate_in_child(tmp_path, updates.Limits(wall_seconds=0.5), _command=hang)
    spin = [
        sys.executable,
        "-c",
        "import resource as r; r.setrlimit(r.RLIMIT_CPU, (1, 1))\nwhile 1: pass",
    ]
    with pytest.raises(ModelValidationError, match="CPU"):
        updates.validate_in_child(tmp_path, _command=spin)


def _with_op_code(model: bytes, code: int) -> bytes:
    """The model with its first operator code's builtin_code field set to ``code``."""
    fb = _Flatbuffer(model)
    codes_field = fb.field(fb.indirect(0), 1)
    assert codes_field is not None
    start, _ = fb.vector(codes_field)
    table = fb.indirect(start)
    pos = fb.field(table, 3)
    assert pos is not None, "the fixture stores builtin_code explicitly"
    out = bytearray(model)
    out[pos : pos + 4] = code.to_bytes(4, "little")
    deprecated = fb.field(table, 0)
    if deprecated is not None:
        out[deprecated] = min(code, 127)
    return bytes(out)


def test_c13_op_allow_list() -> None:
    """C13 on crafted op lists (the fixture has built-ins only)."""
    assert all(code != 32 and custom is None for code, custom in operator_codes(MODEL))
    check_ops(operator_codes(MODEL))
    for codes in (
        [(32, "FlexAddV2")],
        [(0, None), (32, "MyCustomOp")],
        [(32, None)],
        [(9999, None)],
    ):
        with pytest.raises(Rejected) as info:
            check_ops(codes)
        assert info.value.kind == "incompatible"


def test_c13_custom_op_model_is_rejected(v1: Env) -> None:
    """C13: the fixture with its first op turned into CUSTOM, end to end."""
    model = _with_op_code(MODEL, 32)
    assert operator_codes(model)[0][0] == 32
    v1.publish(2, model=model)
    v1.rejected(IncompatibleModelError)


def test_c12_golden_mismatch_and_latency_budget(v1: Env) -> None:
    """C12: expected scores off by 1; a latency budget no model meets."""
    golden = json.loads((FIXTURE / MANIFEST_FILE).read_text())["golden"]
    golden[0]["scores"] = [s + 1.0 for s in golden[0]["scores"]]
    v1.publish(2, golden=golden)
    v1.rejected(ModelValidationError)
    v1.publish(3)
    v1.rejected(ModelValidationError, limits=updates.Limits(latency_budget_ms=0))
    v1.rejected(ModelValidationError, limits=updates.Limits(memory_budget_mb=1))
