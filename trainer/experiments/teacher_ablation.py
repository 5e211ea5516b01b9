"""``teacher_no_minilm``: the teacher without its frozen MiniLM article vectors.

Measured, never shipped: the students learn from ``teacher``. The ablation is the
shipped teacher's recipe with that one input removed, trained right after it on the same
examples with the same seed and config, so the gap between the two report rows is what
the pretrained vectors add. It runs only when the teacher had vectors and
``teacher_ablation = true`` (the default); ``--set teacher_ablation=false`` skips it: on
the MIND sample it took about four times the teacher's own training time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..config import Config

__all__ = ["NAME", "variants"]

NAME = "teacher_no_minilm"
Vectors = npt.NDArray[np.float32]


def variants(cfg: Config, vectors: Vectors | None) -> list[tuple[str, Vectors | None]]:
    """The teachers to train besides ``teacher``, as (report row, its MiniLM vectors):
    the ablation when it is configured and there are vectors to take away, else none."""
    if vectors is None or not cfg.teacher_ablation:
        return []
    return [(NAME, None)]
