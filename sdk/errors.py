"""The SDK's exceptions: one root, precise leaves.

Every error the public API raises is an :class:`EdgerecError`. Leaves that describe bad
input also derive from the matching builtin (``ValueError`` or ``TypeError``), so callers
that already catch those keep working. Messages name the parameter or field at fault and
never contain the offending value: the same code featurizes a reader's history, and what a
reader read must not leak into logs or tracebacks.
"""

from __future__ import annotations

__all__ = [
    "EdgerecError",
    "InvalidInputError",
    "InvalidTypeError",
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
