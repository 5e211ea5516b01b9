"""Validation impressions carved from the training log, built to look like the evaluation.

Every choice the feed signals need (the click prior's regularization, the head's weights)
is made on these, never on the evaluation file. They come from the held-out users (the
same hash and share as the teacher's and the student's validation, so no model has
trained on them) and are shaped like the MIND dev sample:

* **short histories**: each history keeps its last ``L`` known reads, ``L`` drawn
  log-uniformly in [1, 50] and capped at 25 (median 7, range 1-25, as the dev sample);
* **impression negatives**: the candidates are what the impression really showed (those
  with metadata), every click kept and the non-clicks down-sampled to a list of 5-25;
* an impression needs a known click, a known non-click and a known history item.

Example:
    >>> from edgerec.trainer.data.mind import Impression
    >>> log = [Impression(1, "u", None, ("a", "b"), ("c", "d"), (1, 0))]
    >>> arts = dict.fromkeys("abcd", {})
    >>> [sorted(i.candidates) for i in validation_impressions(lambda: iter(log), arts, 1.0, seed=0)]
    [['c', 'd']]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

import numpy as np

from .mind import Impression
from .training_examples import evaluation_like_lengths, held_out

__all__ = ["validation_impressions"]

MIN_CANDIDATES: Final = 5
MAX_CANDIDATES: Final = 25


def validation_impressions(
    impressions: Callable[[], Iterable[Impression]],
    articles: Mapping[str, Any],
    fraction: float,
    *,
    seed: int,
) -> list[Impression]:
    """The held-out users' impressions (``fraction`` of users, :func:`held_out`), with
    known candidates and histories, shaped like the evaluation (module docstring)."""
    rng = np.random.default_rng([seed, 18])
    out = []
    for imp in impressions():
        if not held_out(imp.user or str(imp.impression_id), fraction):
            continue
        history = [h for h in imp.history if h in articles]
        shown = [(c, y) for c, y in zip(imp.candidates, imp.labels, strict=True) if c in articles]
        clicked = [c for c, y in shown if y]
        skipped = [c for c, y in shown if not y]
        if not (history and clicked and skipped):
            continue
        length = int(evaluation_like_lengths(1, rng)[0])
        size = int(rng.integers(MIN_CANDIDATES, MAX_CANDIDATES + 1))
        keep = max(1, size - len(clicked))
        negatives = [skipped[i] for i in sorted(rng.permutation(len(skipped))[:keep])]
        order = rng.permutation(len(clicked) + len(negatives))
        pairs = [(c, 1) for c in clicked] + [(c, 0) for c in negatives]
        pairs = [pairs[i] for i in order]
        out.append(
            replace(
                imp,
                history=tuple(history[-length:]),
                candidates=tuple(c for c, _ in pairs),
                labels=tuple(y for _, y in pairs),
            )
        )
    return out
