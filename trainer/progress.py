"""Progress lines on stderr, ``[edgerec-train] ...``: what every step of the trainer says
while it runs. Results go to files in the output folder; errors to :mod:`.cli`."""

from __future__ import annotations

import sys

__all__ = ["log"]


def log(msg: str) -> None:
    """One progress line on stderr, flushed (a long step should show where it is)."""
    print(f"[edgerec-train] {msg}", file=sys.stderr, flush=True)
