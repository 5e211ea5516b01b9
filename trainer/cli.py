"""``edgerec-train`` (also ``python -m edgerec.trainer``): the trainer's command line.

Every :class:`~edgerec.trainer.errors.TrainerError` (and an OS or SDK error about the
user's files) becomes one line on stderr and exit code 1; progress goes to stderr, results
to the output folder. Subcommands: ``evaluate`` (baselines on the evaluation file),
``pipeline`` (baselines, teacher, distilled students, int8 TFLite export, on-device
evaluation and the bundle, in one report), ``export`` (re-export a run's student), ``feed``
(add a run's feed signals to the articles of a feed), and the
update channel (:mod:`edgerec.trainer.publish`, no TensorFlow): ``keygen``, ``publish``,
``refresh-timestamp``, ``rotate-key``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgerec.errors import EdgerecError

from .data.loading import DEFAULT_EVAL_FRACTION
from .errors import TrainerError, UsageError
from .evaluation.baselines import BASELINES
from .progress import log

__all__ = ["main"]

DEFAULT_DATA = Path("../shared/data/mind")
DEFAULT_CACHE = Path.home() / ".cache" / "edgerec"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.baseline_report import evaluate

    evaluate(
        args.data,
        args.out,
        eval_fraction=args.eval_fraction,
        cache=args.cache,
        names=args.baselines,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from .config import load_config
    from .pipeline import run

    cfg = load_config(args.config, args.set)
    run(cfg, data_dir=args.data, out=args.out, cache=args.cache, eval_fraction=args.eval_fraction)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Re-export the student a pipeline run saved (``DIR/student``) as a bundle."""
    from .export import reexport

    reexport(args.run, out=args.out, quantization=args.quantization, version=args.version)
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    """Add a run's feed signals (``vector``, ``prior``) to the articles of a JSON-lines feed."""
    import json

    from edgerec import read_jsonl
    from edgerec._fs import atomic_write

    from .models.feed_signals import publish_feed

    rows = publish_feed(args.run, read_jsonl(args.articles), args.cache)
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    atomic_write(args.out, text.encode("utf-8"))
    log(f"wrote {len(rows)} articles with feed signals to {args.out}")
    return 0


def _expiry(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import timedelta

    from .publish import ROLES

    return {
        role: timedelta(days=days)
        for role in ROLES
        if (days := getattr(args, f"{role}_days", None)) is not None
    }


def _thresholds(items: list[str]) -> dict[str, int]:
    """``--threshold ROLE=N`` flags as a dict."""
    out = {}
    for item in items:
        role, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise UsageError(f"--threshold {item!r}: expected ROLE=N, e.g. root=2")
        out[role.strip()] = int(value)
    return out


def cmd_synthetic(args: argparse.Namespace) -> int:
    from .data.synthetic import write_interactions_layout, write_mind_layout

    if args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"{args.out} is not empty: synthetic data goes into a new folder")
    if args.layout == "mind":
        write_mind_layout(args.out, seed=args.seed)
    else:
        write_interactions_layout(args.out, seed=args.seed)
    log(f"wrote a SYNTHETIC data set ({args.layout} layout, seed {args.seed}) in {args.out}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from .publish import ROLES, keygen

    written = keygen(args.keys, args.roles or ROLES, count=args.count)
    log(f"wrote {len(written)} private key file(s) (mode 0600) and their .pub in {args.keys}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .publish import PublishError, publish

    try:
        version = publish(
            args.repo,
            args.bundle,
            args.keys,
            thresholds=_thresholds(args.threshold),
            expiry=_expiry(args),
        )
    except ValueError as exc:  # from the metadata libraries: still one line
        raise PublishError(str(exc)) from None
    log(f"published model {version} in {args.repo} (serve it with any static HTTP server)")
    return 0


def cmd_refresh_timestamp(args: argparse.Namespace) -> int:
    from .publish import refresh_timestamp

    version = refresh_timestamp(args.repo, args.keys, expiry=_expiry(args))
    log(f"timestamp version {version} signed")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from .publish import rotate_key

    version = rotate_key(
        args.repo, args.keys, args.role, args.new_keys, threshold=args.new_threshold
    )
    log(f"root version {version} signed; move the new {args.role} key files into {args.keys}")
    return 0


def _publish_args(parser: argparse.ArgumentParser, *, expiry: bool = True) -> None:
    parser.add_argument("--repo", type=Path, required=True, help="TUF repository folder")
    parser.add_argument("--keys", type=Path, required=True, help="folder of the key files")
    if expiry:
        for role in ("root", "targets", "snapshot", "timestamp"):
            parser.add_argument(
                f"--{role}-days", type=float, default=None, help=f"{role} metadata lifetime"
            )


def _add_publish_commands(sub: Any) -> None:
    kg = sub.add_parser("keygen", help="new Ed25519 key files for the update channel roles")
    kg.add_argument("--keys", type=Path, required=True, help="folder for the key files")
    kg.add_argument(
        "--roles", nargs="+", choices=("root", "targets", "snapshot", "timestamp"), default=None
    )
    kg.add_argument("--count", type=int, default=1, help="keys per role (for thresholds)")
    kg.set_defaults(func=cmd_keygen)
    pb = sub.add_parser("publish", help="add a bundle to the TUF repository (created if new)")
    _publish_args(pb)
    pb.add_argument("--bundle", type=Path, required=True, help="bundle folder")
    pb.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="ROLE=N",
        help="signatures needed for a role, when the repository is created",
    )
    pb.set_defaults(func=cmd_publish)
    rt = sub.add_parser("refresh-timestamp", help="re-sign the timestamp (run on a schedule)")
    _publish_args(rt)
    rt.set_defaults(func=cmd_refresh_timestamp)
    rk = sub.add_parser("rotate-key", help="replace a role's keys (new root signed by old+new)")
    _publish_args(rk, expiry=False)
    rk.add_argument("--role", choices=("root", "targets", "snapshot", "timestamp"), required=True)
    rk.add_argument("--new-keys", type=Path, required=True, help="folder with the new key files")
    rk.add_argument("--new-threshold", type=int, default=None)
    rk.set_defaults(func=cmd_rotate_key)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"folder in the MIND layout (default {DEFAULT_DATA})",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder for report.*")
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=DEFAULT_EVAL_FRACTION,
        help="generic layout only: the last share of the log's time span that is evaluated",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where article embeddings are cached (default {DEFAULT_CACHE})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgerec-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score the baselines on the evaluation impressions")
    _common(ev)
    ev.add_argument(
        "--baselines",
        nargs="+",
        choices=BASELINES,
        default=None,
        help="default: all (minilm only when the [embed] extra is installed)",
    )
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    ev.add_argument("--seed", type=int, default=0)
    ev.set_defaults(func=cmd_evaluate)
    pl = sub.add_parser(
        "pipeline", help="baselines, teacher, students, int8 export and bundle, in one report"
    )
    _common(pl)
    pl.add_argument(
        "--config",
        default="default",
        help="preset (tiny, default) or a TOML file (default: default)",
    )
    pl.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set teacher.epochs=3",
    )
    pl.set_defaults(func=cmd_pipeline)
    ex = sub.add_parser("export", help="re-export a pipeline run's student as a bundle")
    ex.add_argument("--run", type=Path, required=True, help="a pipeline --out folder")
    ex.add_argument("--out", type=Path, default=None, help="bundle folder (default RUN/bundle)")
    ex.add_argument("--quantization", choices=("dynamic", "full"), default="dynamic")
    ex.add_argument("--version", type=int, default=0, help="model version (default: now)")
    ex.set_defaults(func=cmd_export)
    fd = sub.add_parser(
        "feed", help="add a pipeline run's feed signals (vector, prior) to a JSON-lines feed"
    )
    fd.add_argument("--run", type=Path, required=True, help="a pipeline --out folder")
    fd.add_argument("--articles", type=Path, required=True, help="the feed, one article a line")
    fd.add_argument("--out", type=Path, required=True, help="the feed with signals (JSON lines)")
    fd.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="text-vector cache")
    fd.set_defaults(func=cmd_feed)
    sy = sub.add_parser(
        "synthetic", help="write a seeded SYNTHETIC data set to try the trainer without logs"
    )
    sy.add_argument("--out", type=Path, required=True, help="a new folder")
    sy.add_argument(
        "--layout",
        choices=("generic", "mind"),
        default="generic",
        help="generic: articles.csv + interactions.csv (default); mind: the MIND tsv files",
    )
    sy.add_argument("--seed", type=int, default=0)
    sy.set_defaults(func=cmd_synthetic)
    _add_publish_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports TensorFlow: the Keras that converts LSTMs to TFLite, quiet C++
    # logs, and no TensorFlow inside transformers (the embedding model runs on torch).
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("USE_TF", "0")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (TrainerError, EdgerecError, OSError, UnicodeDecodeError) as exc:
        print(f"edgerec-train: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
