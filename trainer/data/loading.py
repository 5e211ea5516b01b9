"""A data folder, in either layout, as one :class:`Data` record: what every command trains
and evaluates on, and what ``examples/demo.py`` reads to pick its reader.

Two layouts, told apart by their files:

* MIND (:mod:`.mind`): ``MINDsmall_train_subset/news.tsv`` (+ ``news_supplement.tsv`` if
  present) and ``MINDsmall_train_subset/behaviors.tsv`` train, the sampled dev file
  ``MINDsmall_dev_sampled_impressions.tsv`` is evaluated (:func:`mind_paths`), and
  ``recprompt_test400_impressions.tsv``, when present, is the slice with published results;
* generic (:mod:`.interactions`): ``articles.csv`` + ``interactions.csv`` (or Parquet); the
  last ``eval_fraction`` of the log's time span is evaluated, everything before it trains.
  Histories of evaluated impressions still include every earlier click; no row at or after
  the cut reaches training (:func:`split_by_time`).

Loading prints one summary line per file (rows kept, skipped and why) and the share of
history entries, candidates and clicks that have article metadata. Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from ..errors import DataError
from ..progress import log as progress
from .interactions import (
    ARTICLES_FILE,
    INTERACTIONS_FILE,
    find_table,
    iter_interaction_impressions,
    read_articles,
    time_span,
)
from .mind import Impression, ReadReport, coverage, iter_impressions, read_news

__all__ = ["DEFAULT_EVAL_FRACTION", "Data", "load", "mind_paths", "split_by_time"]

DEFAULT_EVAL_FRACTION: Final = 0.1
SLICE_FILE: Final = "recprompt_test400_impressions.tsv"
Log = Callable[[str], None]


@dataclass(frozen=True)
class Data:
    """A loaded data folder: articles, a re-openable training log, evaluation impressions."""

    articles: dict[str, dict[str, Any]]
    train: Callable[[], Iterator[Impression]]  # re-opens the log: nothing held as lists
    evaluation: list[Impression]
    eval_file: str  # what the report says was evaluated
    # MIND only: the 400 RecPrompt test impressions that have published results (when the
    # folder has recprompt_test400_impressions.tsv), reported beside the published table
    slice: list[Impression] = field(default_factory=list)
    slice_file: str = ""


def mind_paths(folder: Path) -> dict[str, Path]:
    """The MIND files of ``folder``: ``news``, ``supplement`` (optional), ``train``, ``eval``.

    Raises:
        DataError: a required file is missing (the folder is in neither layout).
    """
    paths = {
        "news": folder / "MINDsmall_train_subset" / "news.tsv",
        "supplement": folder / "news_supplement.tsv",
        "train": folder / "MINDsmall_train_subset" / "behaviors.tsv",
        "eval": folder / "MINDsmall_dev_sampled_impressions.tsv",
        "slice": folder / SLICE_FILE,
    }
    for key in ("news", "train", "eval"):
        if not paths[key].is_file():
            raise DataError(
                f"{folder} is neither the MIND layout (missing {paths[key].relative_to(folder)}) "
                f"nor the generic one ({ARTICLES_FILE} + {INTERACTIONS_FILE}, or .parquet)"
            )
    return paths


def _load_mind(folder: Path, log: Log) -> Data:
    paths = mind_paths(folder)
    news_files = [paths["news"]]
    if paths["supplement"].is_file():
        news_files.append(paths["supplement"])
    news_report = ReadReport("news")
    articles = read_news(news_files, news_report)
    log(news_report.summary())
    train_report = ReadReport(paths["train"].name)
    for _ in iter_impressions(paths["train"], train_report):  # a counting pass, for the summary
        pass
    log(train_report.summary())
    eval_report = ReadReport(paths["eval"].name)
    evaluation = list(iter_impressions(paths["eval"], eval_report))
    log(eval_report.summary())
    sliced: list[Impression] = []
    if paths["slice"].is_file():
        slice_report = ReadReport(paths["slice"].name)
        sliced = [i for i in iter_impressions(paths["slice"], slice_report) if _known(i, articles)]
        log(slice_report.summary())
    return Data(
        articles,
        lambda: iter_impressions(paths["train"]),
        evaluation,
        str(paths["eval"]),
        sliced,
        str(paths["slice"]) if sliced else "",
    )


def _known(imp: Impression, articles: dict[str, Any]) -> bool:
    return all(c in articles for c in imp.candidates)


def split_by_time(first: datetime, last: datetime, eval_fraction: float) -> datetime:
    """The cut between training and evaluation: the last ``eval_fraction`` of the span
    from ``first`` to ``last`` is evaluated."""
    return first + (last - first) * (1 - eval_fraction)


def _known_candidates(imp: Impression, articles: dict[str, Any]) -> Impression | None:
    """``imp`` with only the candidates that have metadata (the others cannot be ranked);
    None when none has."""
    known = [(c, y) for c, y in zip(imp.candidates, imp.labels, strict=True) if c in articles]
    if not known:
        return None
    return replace(imp, candidates=tuple(c for c, _ in known), labels=tuple(y for _, y in known))


def _load_generic(folder: Path, eval_fraction: float, log: Log) -> Data:
    articles_report = ReadReport(ARTICLES_FILE)
    articles = read_articles(folder, articles_report)
    log(articles_report.summary())
    table = find_table(folder, INTERACTIONS_FILE)
    assert table is not None  # load() checked
    span_report = ReadReport(INTERACTIONS_FILE)
    cutoff = split_by_time(*time_span(table, span_report), eval_fraction)
    log(span_report.summary())
    evaluation = []
    for imp in iter_interaction_impressions(table, since=cutoff):
        kept = _known_candidates(imp, articles)
        if kept is not None:
            evaluation.append(kept)
    log(f"evaluation: {len(evaluation)} impressions from {cutoff:%Y-%m-%d %H:%M} UTC on")
    return Data(
        articles,
        lambda: iter_interaction_impressions(table, until=cutoff),
        evaluation,
        f"{table} (impressions from {cutoff.isoformat()})",
    )


def load(
    folder: Path, eval_fraction: float = DEFAULT_EVAL_FRACTION, *, log: Log = progress
) -> Data:
    """Either layout, cleaned, with its summaries and coverage passed to ``log``.

    Raises:
        DataError: no such folder, in neither layout, or nothing usable after cleaning
            (:class:`~edgerec.trainer.errors.InteractionsFormatError` for an unreadable
            generic file).
        OSError: a file cannot be read.
    """
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}")
    if find_table(folder, INTERACTIONS_FILE) is not None:
        loaded = _load_generic(folder, eval_fraction, log)
    else:
        loaded = _load_mind(folder, log)
    if not loaded.articles or not loaded.evaluation or next(loaded.train(), None) is None:
        raise DataError("nothing usable left after cleaning (see the summaries above)")
    for name, imps in (("train", loaded.train()), ("eval", iter(loaded.evaluation))):
        cov = coverage(imps, loaded.articles)
        log(
            f"coverage {name}: history {cov['history']:.1%}, candidates "
            f"{cov['candidates']:.1%}, clicked {cov['clicks']:.1%} have metadata"
        )
    return loaded
