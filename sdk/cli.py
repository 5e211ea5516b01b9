"""The ``edgerec`` command (also ``python -m edgerec``): a device's view of the SDK.

    edgerec info [--home DIR]
    edgerec recommend --home DIR --candidates FILE.jsonl [--k N] [--json]
    edgerec history add|list|export|erase --home DIR ...
    edgerec inspect-model BUNDLE
    edgerec update --home DIR --url URL [--root root.json] [--shadow]
    edgerec shadow status|promote|reject --home DIR
    edgerec rollback --home DIR

The history key comes from ``--key-file`` (32 raw bytes) or a passphrase in the environment
variable named by ``--passphrase-env`` (default ``EDGEREC_PASSPHRASE``); never from the
command line, where other users of the machine could read it. Errors are one line on
stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._json import read_jsonl
from .errors import EdgerecError, InvalidInputError
from .features import hashing

__all__ = ["main"]

PASSPHRASE_ENV = "EDGEREC_PASSPHRASE"


def _key_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.key_file is not None:
        try:
            key = Path(args.key_file).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"--key-file: cannot read it ({exc.strerror})") from None
        return {"key": key}
    passphrase = os.environ.get(args.passphrase_env)
    if passphrase:
        return {"passphrase": passphrase}
    raise InvalidInputError(
        f"no history key: give --key-file FILE or set the environment variable "
        f"{args.passphrase_env}"
    )


def _open(args: argparse.Namespace) -> Any:
    from .recommender import Recommender

    return Recommender.open(args.home, profile=args.profile, bundle=args.bundle, **_key_args(args))


def cmd_info(args: argparse.Namespace) -> int:
    from .home import active_model_dir, read_pointer
    from .model import runtime

    try:
        runtime.interpreter_class()
        runtime_name = runtime.RUNTIME
    except EdgerecError as exc:
        runtime_name = f"unavailable ({exc})"
    info: dict[str, Any] = {
        "edgerec": __version__,
        "hashing": hashing.IMPLEMENTATION,
        "tflite_runtime": runtime_name,
    }
    if args.home is not None:
        home = Path(args.home)
        info["home"] = str(home)
        info["active_model"] = read_pointer(home).get("version")
        info["active_model_dir"] = str(active_model_dir(home) or "")
        info["shadow_candidate"] = read_pointer(home).get("candidate")
    for key, value in info.items():
        print(f"{key}: {value}")
    if args.home is not None and info["shadow_candidate"] is not None and _has_key(args):
        try:
            _print_shadow(args)
        except EdgerecError as exc:
            print(f"shadow evidence: unavailable ({type(exc).__name__})")
    return 0


def _has_key(args: argparse.Namespace) -> bool:
    return args.key_file is not None or bool(os.environ.get(args.passphrase_env))


def _print_shadow(args: argparse.Namespace) -> None:
    """The shadow evaluation's state, read only: the history (the evidence is encrypted,
    so the key is needed) is opened read-only on an existing profile and nothing is
    decided, created or written; the rule's default settings."""
    from .history import ReadingHistory
    from .home import HISTORY_FILE, installed_status
    from .shadow import report

    home = Path(args.home)
    installed = installed_status(home)
    with ReadingHistory.open(
        home / HISTORY_FILE, read_only=True, profile=args.profile, **_key_args(args)
    ) as history:
        s = report(history, installed.candidate, installed.active)

    def number(value: float | None, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    print(f"shadow: model {s.candidate} against active model {s.active}: {s.decision}")
    print(
        f"shadow impressions: {s.impressions}, with a read: {s.reads} "
        f"(the rule looks from {s.min_reads})"
    )
    for name, m in (("active", s.active_metrics), ("candidate", s.candidate_metrics)):
        print(f"shadow {name}: local AUC {number(m.auc)}, MRR {number(m.mrr)}")
    print(f"shadow top-k agreement: {number(s.agreement, 3)}")
    if s.difference is not None:
        print(
            f"shadow AUC difference (candidate - active): {s.difference:+.4f} "
            f"[{s.lower:+.4f}, {s.upper:+.4f}] at the last look, margin {s.margin}"
        )


def cmd_recommend(args: argparse.Namespace) -> int:
    candidates = read_jsonl(args.candidates)
    with _open(args) as rec:
        results = rec.recommend(candidates, k=args.k)
        version = rec.model_version
    if args.json:
        print(
            json.dumps(
                {
                    "model_version": version,
                    "recommendations": [
                        {"id": r.id, "rank": r.rank, "score": r.score, "reasons": r.reasons}
                        for r in results
                    ],
                }
            )
        )
    else:
        for r in results:
            reasons = "; ".join(r.reasons)
            print(f"{r.rank:>3}  {r.id:<24} {r.score:+.3f}  {reasons}")
    return 0


def cmd_history_add(args: argparse.Namespace) -> int:
    articles = read_jsonl(args.file)
    with _open(args) as rec:
        rec.history.record_many(articles)  # all or nothing: one bad line stores none
        total = len(rec.history)
    print(f"recorded {len(articles)} reads; profile {args.profile!r} holds {total}")
    return 0


def cmd_history_list(args: argparse.Namespace) -> int:
    with _open(args) as rec:
        events = rec.history.recent(args.limit)
    for event in events:
        title = event.features.get("title") or ""
        print(f"{event.when:%Y-%m-%d %H:%M:%S}  {event.article_id:<24} {title}")
    return 0


def cmd_history_export(args: argparse.Namespace) -> int:
    with _open(args) as rec:
        text = rec.history.export()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def cmd_history_erase(args: argparse.Namespace) -> int:
    if not args.yes:
        raise InvalidInputError("erasing a profile cannot be undone: add --yes")
    with _open(args) as rec:
        rec.history.erase_profile(args.profile)
    print(f"erased profile {args.profile!r}")
    return 0


def cmd_inspect_model(args: argparse.Namespace) -> int:
    from .model import Bundle, ModelRunner

    bundle = Bundle.load(args.bundle)
    m = bundle.manifest
    worst = ModelRunner(bundle).check_golden()
    print(f"model_version: {m.model_version}")
    print(f"created: {m.created}")
    print(f"model: {m.model_bytes} bytes, sha256 {m.model_sha256}")
    print(f"quantization: {json.dumps(m.quantization)}")
    print(f"history_len: {m.history_len}, vector_dim: {m.vector_dim}")
    print(f"feature_spec: {m.spec.width} columns, {m.spec.n_buckets} buckets")
    if m.spec.signals is not None and m.feed_head is not None:
        print(f"feed signals: {json.dumps(m.spec.signals.to_dict(), sort_keys=True)}")
        print(f"feed head: {json.dumps(m.feed_head.to_dict(), sort_keys=True)}")
    print(f"golden cases: {len(m.golden)} pass (largest difference {worst:.3g})")
    print(f"metrics: {json.dumps(m.metrics, sort_keys=True)}")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    from . import updates

    root = Path(args.root) if args.root else None
    print(f"checking {args.url} for a newer model ...", flush=True)
    result = updates.check_for_update(
        args.home, args.url, trusted_root=root, deadline_s=args.deadline, shadow=args.shadow
    )
    if result is None:
        status = updates.update_status(args.home)
        print(f"up to date: model {status.active} is active")
    elif result.shadow:
        print(f"model {result.version} is in shadow; model {result.previous} keeps serving")
    else:
        print(f"model {result.version} is active (previous: {result.previous})")
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    """``status`` reads the sealed evidence (the history key); ``promote`` and ``reject``
    change only the installed models, so they need no key."""
    from .errors import UpdateError
    from .home import checked_home, installed_status, promote_candidate, reject_candidate

    home = checked_home(args.home)
    version = installed_status(home).candidate
    if version is None:
        if args.action != "status":
            raise UpdateError("no model is in shadow")
        print("no model is in shadow")
    elif args.action == "status":
        _print_shadow(args)
    elif args.action == "promote":
        promote_candidate(home, version)
        print(f"model {version} promoted: it is active, on probation")
    else:
        reject_candidate(home, version)
        print(f"model {version} rejected: it will not be installed again")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from . import updates

    version = updates.rollback(args.home)
    print(f"rolled back: model {version} is active")
    return 0


def _home_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", required=True, help="the device home folder")
    parser.add_argument("--profile", default="default", help="reader profile")
    parser.add_argument("--bundle", default=None, help="rank with this bundle folder")
    parser.add_argument("--key-file", default=None, help="file holding the 32-byte master key")
    parser.add_argument(
        "--passphrase-env",
        default=PASSPHRASE_ENV,
        help=f"environment variable holding the passphrase (default {PASSPHRASE_ENV})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgerec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "info", help="versions, runtime, a home's active model and the model in shadow"
    )
    p.add_argument("--home", default=None)
    p.add_argument("--profile", default="default", help="reader profile (for the key)")
    p.add_argument("--bundle", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--key-file", default=None, help="the history key: with it, the shadow evidence too"
    )
    p.add_argument("--passphrase-env", default=PASSPHRASE_ENV, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("recommend", help="rank a JSONL file of candidate articles")
    _home_args(p)
    p.add_argument("--candidates", required=True, help="JSONL, one article per line")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_recommend)

    history = sub.add_parser("history", help="the encrypted reading history")
    hsub = history.add_subparsers(dest="history_command", required=True)
    p = hsub.add_parser(
        "add",
        help="record the reads in a JSONL file of articles, all or nothing",
        description="Record the reads in a JSONL file of articles (one per line, read now), "
        "all or nothing: every line is checked first and all are stored in one transaction, "
        "so a bad line anywhere stores none of them.",
    )
    _home_args(p)
    p.add_argument("--file", required=True, help="JSONL, one article per line (all or nothing)")
    p.set_defaults(func=cmd_history_add)
    p = hsub.add_parser("list", help="the newest reads")
    _home_args(p)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_history_list)
    p = hsub.add_parser("export", help="the profile's reads as JSON")
    _home_args(p)
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_history_export)
    p = hsub.add_parser("erase", help="destroy a profile's key and reads")
    _home_args(p)
    p.add_argument("--yes", action="store_true", help="confirm")
    p.set_defaults(func=cmd_history_erase)

    p = sub.add_parser("inspect-model", help="check a bundle and print its manifest")
    p.add_argument("bundle")
    p.set_defaults(func=cmd_inspect_model)

    p = sub.add_parser("update", help="pull, verify, validate and activate a newer model")
    p.add_argument("--home", required=True, help="the device home folder")
    p.add_argument("--url", required=True, help="the TUF repository's base URL")
    p.add_argument("--root", default=None, help="the pinned root.json (first update only)")
    p.add_argument("--deadline", type=float, default=120.0, help="seconds for all downloads")
    p.add_argument(
        "--shadow",
        action="store_true",
        help="install it as the candidate in shadow: the active model keeps serving until "
        "the readers' own reads promote or reject it",
    )
    p.set_defaults(func=cmd_update)

    p = sub.add_parser("shadow", help="the model in shadow: its evidence, or an override")
    p.add_argument("action", choices=("status", "promote", "reject"))
    _home_args(p)
    p.set_defaults(func=cmd_shadow)

    p = sub.add_parser("rollback", help="make the last known-good model active again")
    p.add_argument("--home", required=True, help="the device home folder")
    p.set_defaults(func=cmd_rollback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; never a traceback. An SDK error (and an OS error naming a file) is
    one line and exit 1; anything else is a bug, reported by its type only (its message may
    hold data) with exit 2; Ctrl-C exits 130."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (EdgerecError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"edgerec: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgerec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so without a traceback or the message's data
        print(
            f"edgerec: internal error ({type(exc).__name__}); please report it",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
