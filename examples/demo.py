"""The whole loop in one command: train, publish, serve, update a device, recommend.

This is what ``make demo`` runs. Six steps, each timed:

1. train the ``tiny`` config (``edgerec-train pipeline``, in a child process: TensorFlow
   stays on the trainer's side) on the real MIND files in ``../shared/data/mind`` when they
   are there, else on the seeded SYNTHETIC generator (``--synthetic`` forces it);
2. make TUF keys and publish the bundle to a local TUF repository;
3. serve the repository on 127.0.0.1 (a stdlib HTTP server in a thread);
4. a fresh device home pulls, verifies, validates and activates the model
   (``Recommender.check_for_update``): the SDK only, TensorFlow is never imported here;
5. one reader's history from the evaluation data is replayed into the encrypted store;
6. the top 10 of that reader's evaluation candidates, with reasons, and the evaluation
   table of every model the pipeline trained.

Everything goes to ``--out`` (default ``demo-out/``, git-ignored); nothing is written into
the repository. MIND is licensed: its titles are printed on the console for the top 10,
never written anywhere else by this program.

    python examples/demo.py [--out demo-out] [--data ../shared/data/mind] [--synthetic]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import edgerec
from edgerec.trainer import publish
from edgerec.trainer.data.loading import load
from edgerec.trainer.data.mind import Impression
from edgerec.trainer.data.synthetic import write_mind_layout

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mind"
MARKER = ".edgerec-demo"  # only a folder carrying it is ever emptied by --out
TOP_K = 10

_timings: dict[str, float] = {}


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


@contextmanager
def step(name: str, what: str) -> Iterator[None]:
    """Print the step's start and its duration (every step is timed, short ones too)."""
    n = len(_timings) + 1
    say(f"step {n}/6 {name}: {what} ...")
    start = time.perf_counter()
    yield
    _timings[name] = time.perf_counter() - start
    say(f"step {n}/6 {name}: done in {_timings[name]:.1f} s")


def prepare_out(out: Path) -> None:
    """Use ``out`` as scratch: created if missing, emptied only if an earlier demo made it."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise SystemExit(
                f"demo: {out} exists, is not empty and was not made by the demo; "
                "choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("scratch folder of examples/demo.py; safe to delete\n")


def pick_data(args: argparse.Namespace, out: Path) -> tuple[Path, bool]:
    """The data folder and whether it is synthetic."""
    if args.synthetic or (args.data is None and not DEFAULT_DATA.is_dir()):
        if not args.synthetic:
            say(f"no MIND data at {DEFAULT_DATA}: using the synthetic generator")
        folder = write_mind_layout(out / "data", seed=1)
        say(f"data: SYNTHETIC (seeded generator, not real readers) in {folder}")
        return folder, True
    folder = args.data or DEFAULT_DATA
    if not folder.is_dir():
        raise SystemExit(f"demo: data folder not found: {folder}")
    say(f"data: {folder} (real logs; licensed, nothing from it leaves {out})")
    return folder, False


def pick_reader(
    articles: dict[str, dict[str, Any]], evaluation: list[Impression]
) -> tuple[Impression, list[dict[str, Any]], list[dict[str, Any]]]:
    """The first evaluation impression with a real history and enough candidates for the
    top 10 to be a choice (else the one with the most candidates)."""
    best = None
    for imp in evaluation:
        history = [articles[a] for a in imp.history if a in articles]
        candidates = [articles[c] for c in dict.fromkeys(imp.candidates) if c in articles]
        if len(history) >= 3 and len(candidates) >= TOP_K + 5:
            return imp, history, candidates
        if best is None or (len(history) > 0, len(candidates)) > (len(best[1]) > 0, len(best[2])):
            best = (imp, history, candidates)
    if best is None:
        raise SystemExit("demo: the evaluation data has no impressions")
    return best


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(root: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def table(report: dict[str, Any]) -> list[str]:
    rows = sorted(report["models"].items(), key=lambda kv: -kv[1]["auc"])
    lines = [f"  {'model':<20} {'AUC [95% interval]':<24} nDCG@10"]
    for name, m in rows:
        lo, hi = m["auc_ci"]
        lines.append(f"  {name:<20} {m['auc']:.3f} [{lo:.3f}, {hi:.3f}]     {m['ndcg@10']:.3f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "demo-out", help="scratch folder")
    parser.add_argument("--data", type=Path, default=None, help=f"default {DEFAULT_DATA}")
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic generator")
    args = parser.parse_args()
    if args.synthetic and args.data is not None:
        parser.error("--synthetic and --data exclude each other")
    started = time.perf_counter()
    out = args.out.resolve()
    prepare_out(out)
    data, synthetic = pick_data(args, out)
    label = "SYNTHETIC" if synthetic else "real"
    run, keys, repo, home = out / "run", out / "keys", out / "repo", out / "device"

    with step("train", "the tiny config (edgerec-train pipeline; TensorFlow in a child)"):
        cmd = [sys.executable, "-m", "edgerec.trainer", "pipeline", "--config", "tiny"]
        cmd += ["--data", str(data), "--out", str(run), "--cache", str(out / "cache")]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if (code := subprocess.run(cmd, env=env, check=False).returncode) != 0:
            raise SystemExit(f"demo: the training pipeline failed (exit {code}; see above)")
        report = json.loads((run / "report.json").read_text(encoding="utf-8"))

    with step("publish", "new TUF keys, the bundle into a local TUF repository"):
        publish.keygen(keys)
        version = publish.publish(repo, run / "bundle", keys)
        say(f"published model {version} in {repo}")

    with step("serve", "the repository on 127.0.0.1 (stdlib HTTP server, a thread)"):
        httpd = serve(repo)
        url = f"http://127.0.0.1:{httpd.server_port}"
        say(f"serving {repo} at {url}")

    key = os.urandom(32)  # the host app's master key; a real app keeps it in the OS keystore
    try:
        with edgerec.Recommender.open(home, key=key) as rec:
            with step("update", "a fresh device home pulls, verifies, validates, activates"):
                say(f"device home {home}: model before the update: {rec.model_version}")
                result = rec.check_for_update(url, trusted_root=repo / "metadata" / "1.root.json")
                assert result is not None, "the device found no model to install"
                say(
                    f"device: model {rec.model_version} active (TUF-verified, validated in "
                    f"a child process; previous {result.previous})"
                )

            loaded = load(data, log=lambda _: None)  # the trainer's split (it already said so)
            articles = loaded.articles
            imp, history, candidates = pick_reader(articles, loaded.evaluation)
            with step("replay", "one reader's history into the encrypted store"):
                for article in history:
                    rec.record_read(article)
                say(
                    f"reader of evaluation impression {imp.impression_id}: {len(history)} "
                    f"reads recorded, encrypted ({len(rec.history)} in the store)"
                )

            with step("recommend", f"top {TOP_K} for that reader, and the evaluation table"):
                clicked = {c for c, y in zip(imp.candidates, imp.labels, strict=True) if y}
                top = rec.recommend(candidates, k=TOP_K)
                print(
                    f"\nTop {len(top)} of the reader's {len(candidates)} evaluation candidates "
                    f"({label} data, model {rec.model_version}; * = what the reader clicked):"
                )
                for r in top:
                    mark = "*" if r.id in clicked else " "
                    title = str(articles[r.id]["title"])
                    title = title if len(title) <= 60 else title[:57] + "..."
                    print(f"  {r.rank:>2}. {mark} {r.id:<14} {r.score:+7.3f}  {title}")
                    for reason in r.reasons:
                        print(f"{'':26}- {reason}")
                print(
                    f"\nEvaluation ({label} data, {report['n_impressions']} impressions, "
                    f"config tiny; student_int8 is the shipped model):"
                )
                print("\n".join(table(report)) + "\n")
    finally:
        httpd.shutdown()
        httpd.server_close()

    # The device side above ran in this process; the trainer ran in a child.
    tf = "tensorflow" in sys.modules
    say(f"TensorFlow imported by the device side: {'YES (a bug)' if tf else 'no'}")
    total = time.perf_counter() - started
    say("times: " + ", ".join(f"{name} {s:.1f} s" for name, s in _timings.items()))
    say(f"total {total:.1f} s ({label} data); everything is in {out}")
    return 1 if tf else 0


if __name__ == "__main__":
    sys.exit(main())
