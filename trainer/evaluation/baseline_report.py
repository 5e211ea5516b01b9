"""``edgerec-train evaluate``: the baselines of a data folder scored on its evaluation
impressions, as a report (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.loading import load
from ..progress import log
from .baselines import score_baselines
from .comparison import compare
from .report import write_report

__all__ = ["evaluate"]


def evaluate(
    data_dir: Path,
    out: Path,
    *,
    eval_fraction: float,
    cache: Path,
    names: Sequence[str] | None,
    bootstrap: int,
    seed: int,
) -> Path:
    """``edgerec-train evaluate``: the baselines on the evaluation impressions, as a report.

    Raises:
        DataError: the data folder is unusable.
        EmbeddingsUnavailable: ``minilm`` asked for without the ``[embed]`` extra.
    """
    data = load(data_dir, eval_fraction)
    scores: dict[str, list[Any]] = {}
    rows = score_baselines(
        data, names=names, bootstrap=bootstrap, seed=seed, cache=cache, scores=scores
    )
    path = write_report(
        out,
        eval_file=data.eval_file,
        n_impressions=len(data.evaluation),
        models=rows,
        comparison=compare(
            data.evaluation, scores, data.articles, n_bootstrap=bootstrap, seed=seed
        ),
    )
    log(f"wrote {path} and {path.with_suffix('.md')}")
    return path
