"""The TFLite runtime, chosen once per process: ai-edge-litert (LiteRT, maintained), else
tflite-runtime (its last release, 2.14, does not load with numpy 2; DESIGN.md section 3).
TensorFlow is never imported.

``RUNTIME`` names the choice after the first :func:`interpreter_class` call; the rest of
the SDK reads it instead of probing again.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelFormatError, RuntimeUnavailableError

__all__ = ["RUNTIME", "interpreter_class", "make_interpreter"]

RUNTIME: str | None = None  # "ai-edge-litert" or "tflite-runtime" once chosen
_CLASS: Any = None


def interpreter_class() -> Any:
    """The ``Interpreter`` class of the first runtime that imports.

    Raises:
        RuntimeUnavailableError: neither runtime loads; the message says what to install.
    """
    global RUNTIME, _CLASS
    if _CLASS is not None:
        return _CLASS
    errors = []
    try:
        from ai_edge_litert.interpreter import Interpreter

        RUNTIME, _CLASS = "ai-edge-litert", Interpreter
        return _CLASS
    except Exception as exc:  # an ImportError, or a broken binary raising anything
        errors.append(f"ai-edge-litert: {type(exc).__name__}: {exc}")
    try:
        from tflite_runtime.interpreter import Interpreter

        RUNTIME, _CLASS = "tflite-runtime", Interpreter
        return _CLASS
    except Exception as exc:
        errors.append(f"tflite-runtime: {type(exc).__name__}: {exc}")
    raise RuntimeUnavailableError(
        "no TFLite runtime loads; install one with `pip install ai-edge-litert` "
        f"({'; '.join(errors)})"
    )


def make_interpreter(model: bytes, *, num_threads: int = 1) -> Any:
    """An interpreter over a model held in memory (the bytes were verified by the caller).

    Raises:
        RuntimeUnavailableError: no runtime.
        ModelFormatError: the runtime refuses the model.
    """
    cls = interpreter_class()
    try:
        return cls(model_content=model, num_threads=num_threads)
    except Exception as exc:  # the runtimes raise ValueError/RuntimeError for a bad model
        raise ModelFormatError(f"the TFLite runtime refused the model: {exc}") from None
