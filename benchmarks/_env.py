"""What every benchmark prints beside its figures: the machine and the software."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pin_to_one_core() -> int | None:
    """Run on one core, as the budgets in DESIGN.md section 7 are stated."""
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return core
    return None


def hardware(pinned_core: int | None) -> dict[str, Any]:
    import numpy

    import edgerec

    return {
        "cpu": cpu_model(),
        "cores_visible": os.cpu_count(),
        "pinned_core": pinned_core,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "edgerec": edgerec.__version__,
        "hashing_implementation": edgerec.hashing.IMPLEMENTATION,
        "note": "shared machine: absolute times are indicative, ratios are measured side by side",
    }
