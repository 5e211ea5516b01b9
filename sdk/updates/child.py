"""Validation of a downloaded model, in the child process
(``python -I -m edgerec.updates.child``; the host's side is :mod:`edgerec.updates.validation`).

A model is a program (TensorFlow SECURITY.md): a malformed flatbuffer can crash or hang the
TFLite runtime. The update client therefore never loads a new model in the host process. It
starts this module as a fresh interpreter (not a fork of the host) under CPU-time and
address-space limits and a wall-clock deadline, and reads one JSON line:

    {"ok": true, "golden_max_diff": ..., "latency_ms": ..., "max_rss_kb": ...}
    {"ok": false, "kind": "format" | "incompatible" | "validation", "message": "..."}

A child that dies (a signal, a limit, a timeout) is a malformed model to the host.

The checks, in order: the bundle's manifest and the model's length/sha256
(:meth:`Bundle.load`); the ``TFL3`` file identifier at bytes 4-8; every operator code in
the flatbuffer is a built-in (no custom or Flex/select-TF op); the runtime builds the
interpreter; each signature's input/output names, dtypes and shapes equal the manifest's;
the golden inputs give the expected scores (finite, within tolerance); the latency of a
golden call and the peak resident memory stay within budget.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path
from typing import Any, Final

__all__ = ["CUSTOM_OP", "check_identifier", "check_ops", "operator_codes", "validate_bundle"]

IDENTIFIER: Final = b"TFL3"
CUSTOM_OP: Final = 32  # BuiltinOperator.CUSTOM in the TFLite schema
MAX_BUILTIN_OP: Final = 255  # schema codes are below this; anything above is not a built-in


class Rejected(Exception):
    """A check failed; ``kind`` tells the host which typed error to raise."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_identifier(model: bytes) -> None:
    """The TFLite flatbuffer identifier at bytes 4-8 (checked before anything parses it).

    Raises:
        Rejected: kind ``format``.
    """
    if len(model) < 8 or model[4:8] != IDENTIFIER:
        raise Rejected("format", "the model is not a TFLite flatbuffer (no TFL3 identifier)")


class _Flatbuffer:
    """Bounds-checked reads of the few flatbuffer tables the op walk needs."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _u(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise Rejected("format", "the model's flatbuffer points outside the file")
        return int(struct.unpack_from(fmt, self.data, pos)[0])

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None."""
        vtable = table - self._u("<i", table)
        vt_size = self._u("<H", vtable)
        entry = 4 + 2 * index
        if entry + 2 > vt_size:
            return None
        offset = self._u("<H", vtable + entry)
        return table + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self._u("<I", pos)

    def vector(self, pos: int) -> tuple[int, int]:
        start = self.indirect(pos)
        length = self._u("<I", start)
        if start + 4 + 4 * length > len(self.data):
            raise Rejected("format", "a flatbuffer vector runs past the end of the file")
        return start + 4, length

    def string(self, pos: int) -> str:
        start = self.indirect(pos)
        length = self._u("<I", start)
        raw = self.data[start + 4 : start + 4 + length]
        if len(raw) != length:
            raise Rejected("format", "a flatbuffer string runs past the end of the file")
        return raw.decode("utf-8", "replace")


def operator_codes(model: bytes) -> list[tuple[int, str | None]]:
    """Every ``(builtin_code, custom_code)`` of the model's ``operator_codes`` table.

    Walks the flatbuffer directly (Model field 1; OperatorCode fields 0, 1 and 3; the
    effective code is the larger of the deprecated int8 and the int32 field, as in the
    schema), so a custom op is found without asking the runtime to resolve it.

    Raises:
        Rejected: kind ``format`` when the flatbuffer is malformed.
    """
    check_identifier(model)
    fb = _Flatbuffer(model)
    root = fb.indirect(0)
    codes_field = fb.field(root, 1)
    if codes_field is None:
        return []
    start, count = fb.vector(codes_field)
    out = []
    for i in range(count):
        table = fb.indirect(start + 4 * i)
        deprecated = fb.field(table, 0)
        custom = fb.field(table, 1)
        builtin = fb.field(table, 3)
        code = max(
            fb._u("<b", deprecated) if deprecated is not None else 0,
            fb._u("<i", builtin) if builtin is not None else 0,
        )
        out.append((code, fb.string(custom) if custom is not None else None))
    return out


def check_ops(codes: list[tuple[int, str | None]]) -> None:
    """Allow built-in ops only: reject CUSTOM (which is how Flex/select-TF ops are stored
    too) and codes outside the schema's range.

    Raises:
        Rejected: kind ``incompatible``; the message names the op.
    """
    for code, custom in codes:
        if code == CUSTOM_OP or custom is not None:
            name = custom or "?"
            flex = " (Flex/select-TF)" if name.startswith("Flex") else ""
            raise Rejected("incompatible", f"custom op {name!r}{flex} is not on the allow-list")
        if not 0 <= code < MAX_BUILTIN_OP:
            raise Rejected("incompatible", f"operator code {code} is not a built-in op")


def _check_signatures(ranker: Any) -> None:
    import numpy as np

    interpreter = ranker.interpreter
    for name, sig in ranker.manifest.signatures.items():
        runner = interpreter.get_signature_runner(name)
        for part, details in (
            ("inputs", runner.get_input_details()),
            ("outputs", runner.get_output_details()),
        ):
            want = sig[part]
            if sorted(details) != sorted(want):
                raise Rejected("incompatible", f"signature {name} {part} differ from the manifest")
            for tensor, detail in details.items():
                dtype = np.dtype(detail["dtype"]).name
                shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
                if dtype != want[tensor].get("dtype") or shape != want[tensor].get("shape"):
                    raise Rejected(
                        "incompatible",
                        f"signature {name} {part} {tensor}: {dtype}{shape} in the model, "
                        f"{want[tensor].get('dtype')}{want[tensor].get('shape')} in the manifest",
                    )


def validate_bundle(
    folder: Path, *, latency_budget_ms: float, memory_budget_mb: float = float("inf")
) -> dict[str, Any]:
    """Run every check on the bundle in ``folder`` in this process (the child's body).

    Raises:
        Rejected: the first check that failed.
    """

    import numpy as np

    from ..errors import BundleError, IncompatibleModelError, ModelFormatError, ModelValidationError
    from ..model import Bundle, ModelRunner

    try:
        bundle = Bundle.load(folder)
    except IncompatibleModelError as exc:
        raise Rejected("incompatible", str(exc)) from None
    except BundleError as exc:
        raise Rejected("format", str(exc)) from None
    check_ops(operator_codes(bundle.model))
    try:
        ranker = ModelRunner(bundle)
    except IncompatibleModelError as exc:
        raise Rejected("incompatible", str(exc)) from None
    except (ModelFormatError, BundleError) as exc:
        raise Rejected("format", str(exc)) from None
    _check_signatures(ranker)
    try:
        worst = ranker.check_golden()
    except ModelValidationError as exc:
        raise Rejected("validation", str(exc)) from None
    except BundleError as exc:
        raise Rejected("format", str(exc)) from None
    case = bundle.manifest.golden[0]
    history = np.array(case["history"], dtype=np.int32)
    candidates = np.array(case["candidates"], dtype=np.int32)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        ranker.rank(history, candidates)
        times.append((time.perf_counter() - start) * 1000)
    latency = sorted(times)[len(times) // 2]
    if latency > latency_budget_ms:
        raise Rejected(
            "validation", f"golden call took {latency:.2f} ms (budget {latency_budget_ms} ms)"
        )
    max_rss_kb = peak_rss_kb()
    if max_rss_kb > memory_budget_mb * 1024:
        raise Rejected(
            "validation", f"peak memory {max_rss_kb >> 10} MB (budget {memory_budget_mb} MB)"
        )
    return {"ok": True, "golden_max_diff": worst, "latency_ms": latency, "max_rss_kb": max_rss_kb}


def peak_rss_kb() -> int:
    """This interpreter's own peak resident memory, in kB.

    ``VmHWM`` of ``/proc/self/status``: the high-water mark of this process image's memory.
    Not ``getrusage().ru_maxrss``: Linux carries it across ``execve`` from the process that
    spawned the child, so a host using 300 MB would make every model "use" 300 MB (a
    long-running app, or a test process, rejecting every update).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    import resource  # no procfs: an upper bound (it may include the parent's peak)

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def set_limits(cpu_seconds: int, address_space_mb: int) -> None:
    """CPU time, address space, no core file: set first thing in the child (not in a
    ``preexec_fn``: the host may run threads, and a ``preexec_fn`` is unsafe then)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    limit = address_space_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    """``python -m edgerec.updates.child FOLDER LATENCY_MS CPU_S ADDRESS_SPACE_MB MEMORY_MB``:
    one JSON line on stdout; exit 0 when the model passed, 3 when it was rejected."""
    folder, budget, memory = Path(argv[0]), float(argv[1]), float(argv[4])
    set_limits(int(argv[2]), int(argv[3]))
    try:
        result = validate_bundle(folder, latency_budget_ms=budget, memory_budget_mb=memory)
        code = 0
    except Rejected as exc:
        result, code = {"ok": False, "kind": exc.kind, "message": str(exc)}, 3
    except MemoryError:
        result, code = {"ok": False, "kind": "validation", "message": "out of memory"}, 3
    except Exception as exc:  # anything else the runtime raises: a model it cannot use
        result = {"ok": False, "kind": "format", "message": f"{type(exc).__name__}: {exc}"}
        code = 3
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
