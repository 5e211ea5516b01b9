"""The SDK's exceptions: one root, precise leaves.

Every error the public API raises is an :class:`EdgerecError`. Leaves that describe bad
input also derive from the matching builtin (``ValueError`` or ``TypeError``), so callers
that already catch those keep working. Messages name the parameter or field at fault and
never contain the offending value: the same code featurizes a reader's history, and what a
reader read must not leak into logs or tracebacks.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "EdgerecError",
    "IncompatibleModelError",
    "InvalidInputError",
    "InvalidTypeError",
    "ModelLoadError",
    "RuntimeUnavailableError",
    "SpecError",
]


class EdgerecError(Exception):
    """Root of every exception raised by edgerec."""


class InvalidInputError(EdgerecError, ValueError):
    """A value passed to the API has the right type but is not acceptable.

    Examples: a NaN timestamp, a title above the field's character limit, a string that
    cannot be encoded as UTF-8 (a lone surrogate).
    """


class InvalidTypeError(EdgerecError, TypeError):
    """A value passed to the API has the wrong type (``bytes`` where ``str`` is required)."""


class SpecError(EdgerecError, ValueError):
    """A :class:`~edgerec.FeatureSpec` is malformed, or uses rules this SDK cannot reproduce."""


class RuntimeUnavailableError(EdgerecError, ImportError):
    """No TFLite runtime loads (``ai-edge-litert``, else ``tflite-runtime``)."""


class BundleError(EdgerecError):
    """A model bundle cannot be used: a missing file, a manifest that is not the schema, a
    model whose bytes do not match the manifest's length and sha256."""


class IncompatibleModelError(BundleError):
    """A well-formed bundle this SDK cannot run: a newer manifest schema, a FeatureSpec it
    cannot reproduce, a signature other than the one the manifest promises."""


class ModelLoadError(BundleError):
    """The TFLite runtime refused the model, or its golden outputs do not match."""
