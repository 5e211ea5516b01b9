"""Shadow evaluation on simulated devices: does the decision rule promote the better of two
real trainer bundles from the readers' own reads? Prints JSON.

    python benchmarks/bench_shadow.py --a RUN_A/bundle --b RUN_B/bundle
        [--data ../shared/data/mind] [--devices 60] [--max-impressions 500]
        [--min-size 100] [--seed 0] [--jobs 2] [--plot docs/shadow-curve.png]

Replays the MIND dev impressions (``MINDsmall_dev_sampled_impressions.tsv``; skipped,
with a JSON note, when the folder is missing) through simulated kiosks. Each device is a
fresh home set up once through the real update path (both bundles published to a TUF
repository on 127.0.0.1, the first installed and activated, the second installed with
``check_for_update(shadow=True)``, both validated in the child process) and copied per
device. A device serves impressions drawn at random (without repeats) from the dev file:
each is a visit by a reader with that impression's history (a profile of its own: the
history recorded, then ``recommend()`` over the impression's candidates, all returned, as
MIND showed them all), and the reader reads what the MIND reader clicked, a minute later.
Every device runs in both directions: A active with B in shadow, and B active with A in
shadow.

A device runs until the SDK decides (the candidate promoted or rejected) or
``--max-impressions``; the impressions it took are recorded. A device of size ``s`` (drawn
uniformly from ``--min-size`` to ``--max-impressions`` per device) ends with the decision
if it came within ``s`` impressions, else undecided: the active model keeps serving. The
*better* model is the one with the higher mean per-impression AUC over the whole dev file
through the same SDK ranking (printed). Correct: the better model serves at the end
(promoted when it was the candidate; not promoted when it was active). Wrong: the worse
model was promoted. Target (issue 19): correct >= 90%, wrong <= 5%.

The bundles come from ``edgerec-train pipeline`` runs (e.g. the distilled student and the
same student on clicks only, ``--set student.alpha=0``); never commit them or this output's
inputs (MIND licence). Output names no article.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mind"
KEY = bytes(range(32))
T0 = 1_780_000_000.0
CURVE = tuple(range(50, 501, 50))


# ------------------------------------------------------------------- setting up a device
def _versioned(bundle: Path, version: int, out: Path) -> Path:
    """A copy of ``bundle`` as model ``version`` (the manifest names its own version)."""
    folder = out / f"bundle-{version}"
    shutil.copytree(bundle, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model_version"] = version
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_port}"


def template_home(active: Path, candidate: Path, work: Path) -> Path:
    """A home with ``active`` serving and ``candidate`` in shadow, through the real update
    path (TUF repository on loopback, validation in the child process)."""
    import edgerec
    from edgerec.trainer import publish

    work.mkdir(parents=True)
    keys, repo, home = work / "keys", work / "repo", work / "home"
    publish.keygen(keys)
    publish.publish(repo, _versioned(active, 1, work), keys)
    httpd, url = _serve(repo)
    try:
        root = repo / "metadata" / "1.root.json"
        with edgerec.Recommender.open(home, key=KEY) as rec:
            assert rec.check_for_update(url, trusted_root=root) is not None
            publish.publish(repo, _versioned(candidate, 2, work), keys)
            result = rec.check_for_update(url, shadow=True)
            assert result is not None and result.shadow
    finally:
        httpd.shutdown()
        httpd.server_close()
    (home / "history.db").unlink()
    for extra in home.glob("history.db-*"):
        extra.unlink()
    return home


# --------------------------------------------------------------------- one device
_DATA: dict[str, Any] = {}


def _init(data: Path) -> None:
    from edgerec.trainer.data.loading import load

    loaded = load(data, log=lambda _: None)
    _DATA["articles"] = loaded.articles
    _DATA["impressions"] = loaded.evaluation


def run_device(task: tuple[str, Path, int, int, int]) -> dict[str, Any]:
    """One device: serve impressions until the SDK decides or ``limit``."""
    import edgerec
    from edgerec.home import installed_status

    direction, template, device, seed, limit = task
    articles, impressions = _DATA["articles"], _DATA["impressions"]
    order = np.random.default_rng(seed).permutation(len(impressions))[:limit]
    with tempfile.TemporaryDirectory(prefix="shadow-device-") as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(template, home)
        decided_at, verdict, reads = None, None, 0
        started = time.perf_counter()
        with edgerec.Recommender.open(home, key=KEY, profile="r0") as rec:
            for j, index in enumerate(order):
                imp = impressions[int(index)]
                at = T0 + 3600.0 * j
                profile = f"r{j}"
                rec.switch_profile(profile)
                history = [articles[h] for h in imp.history if h in articles]
                if history:
                    rec.history.record_many(history, at=at - 86_400.0)
                    rec.switch_profile(profile)  # loads the reader's vectors
                candidates = [articles[c] for c in dict.fromkeys(imp.candidates)]
                rec.recommend(candidates, k=len(candidates), now=at, exclude_read=False)
                for cid, label in zip(imp.candidates, imp.labels, strict=True):
                    if label:
                        rec.record_read(articles[cid], at=at + 60.0)
                        reads += 1
                status = installed_status(home)
                if status.candidate is None:
                    decided_at = j + 1
                    verdict = "promote" if status.active == 2 else "reject"
                    break
        seconds = time.perf_counter() - started
    return {
        "direction": direction,
        "device": device,
        "decided_at": decided_at,
        "verdict": verdict,
        "reads": reads,
        "seconds": round(seconds, 2),
    }


def dev_auc(bundle: Path) -> tuple[float, list[float]]:
    """Mean per-impression AUC of ``bundle`` over the whole dev file, ranked by the SDK."""
    from sklearn.metrics import roc_auc_score

    from edgerec.model import Bundle
    from edgerec.trainer.feed import ranker_scores

    scores = ranker_scores(Bundle.load(bundle), _DATA["impressions"], _DATA["articles"])
    aucs = [
        float(roc_auc_score(imp.labels, s))
        for imp, s in zip(_DATA["impressions"], scores, strict=True)
        if 0 < sum(imp.labels) < len(imp.labels)
    ]
    return float(np.mean(aucs)), aucs


# ------------------------------------------------------------------------ the summary
def outcome(row: dict[str, Any], size: int, better_is_candidate: bool) -> str:
    """``correct``, ``wrong`` or ``undecided-*`` for a device of ``size`` impressions."""
    decided = row["decided_at"] is not None and row["decided_at"] <= size
    promoted = decided and row["verdict"] == "promote"
    if better_is_candidate:
        return "correct" if promoted else ("undecided-wrong" if not decided else "rejected-better")
    return "wrong" if promoted else "correct"


def summarize(
    rows: list[dict[str, Any]], sizes: dict[int, int], better: dict[str, bool]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for direction in sorted({r["direction"] for r in rows}):
        mine = [r for r in rows if r["direction"] == direction]
        ends = [outcome(r, sizes[r["device"]], better[direction]) for r in mine]
        needed = [r["decided_at"] for r in mine if r["decided_at"] is not None]
        curve = []
        for n in CURVE:
            at_n = [outcome(r, n, better[direction]) for r in mine]
            curve.append(
                {
                    "impressions": n,
                    "correct": round(at_n.count("correct") / len(mine), 3),
                    "wrong": round(at_n.count("wrong") / len(mine), 3),
                    "decided": round(
                        sum(r["decided_at"] is not None and r["decided_at"] <= n for r in mine)
                        / len(mine),
                        3,
                    ),
                }
            )
        out[direction] = {
            "devices": len(mine),
            "candidate_is_better": better[direction],
            "share_better_chosen": round(ends.count("correct") / len(mine), 3),
            "share_worse_promoted": round(ends.count("wrong") / len(mine), 3),
            "share_better_candidate_rejected": round(ends.count("rejected-better") / len(mine), 3),
            "share_undecided": round(
                sum(r["decided_at"] is None or r["decided_at"] > sizes[r["device"]] for r in mine)
                / len(mine),
                3,
            ),
            "impressions_to_decide": {
                "decided_within_limit": len(needed),
                "median": float(np.median(needed)) if needed else None,
                "p90": float(np.percentile(needed, 90)) if needed else None,
                "max": max(needed) if needed else None,
            },
            "verdicts": {
                v: sum(r["verdict"] == v for r in mine) for v in ("promote", "reject", None)
            },
            "curve": curve,
        }
    every = [
        outcome(r, sizes[r["device"]], better[r["direction"]]) for r in rows
    ]  # both directions together
    out["all"] = {
        "devices": len(rows),
        "share_better_chosen": round(every.count("correct") / len(rows), 3),
        "share_worse_promoted": round(every.count("wrong") / len(rows), 3),
        "targets": {"better_chosen": 0.9, "worse_promoted": 0.05},
    }
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for part in result["directions"].values():
        name = "better model in shadow" if part["candidate_is_better"] else "worse in shadow"
        xs = [c["impressions"] for c in part["curve"]]
        ax.plot(xs, [c["correct"] for c in part["curve"]], marker="o", label=f"{name}: correct")
        ax.plot(
            xs, [c["wrong"] for c in part["curve"]], linestyle="--", label=f"{name}: worse promoted"
        )
    ax.axhline(0.9, color="grey", linewidth=0.8)
    ax.axhline(0.05, color="grey", linewidth=0.8)
    ax.set_xlabel("impressions the device has served")
    ax.set_ylabel("share of devices")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Shadow evaluation on MIND dev replays")
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="a trainer bundle folder")
    parser.add_argument("--b", type=Path, required=True, help="another trainer bundle folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--devices", type=int, default=60, help="per direction")
    parser.add_argument("--max-impressions", type=int, default=500)
    parser.add_argument("--min-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    from edgerec import shadow

    eval_file = args.data / "MINDsmall_dev_sampled_impressions.tsv"
    if not eval_file.is_file():
        note = f"no MIND dev impressions at {eval_file}"
        print(json.dumps({"skipped": note, "hardware": hardware(None)}))
        return
    started = time.perf_counter()
    _init(args.data)
    auc_a, per_a = dev_auc(args.a)
    auc_b, per_b = dev_auc(args.b)
    diff = np.asarray(per_a) - np.asarray(per_b)
    a_better = auc_a > auc_b
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        work = Path(tmp)
        templates = {
            "a_active_b_shadow": template_home(args.a, args.b, work / "ab"),
            "b_active_a_shadow": template_home(args.b, args.a, work / "ba"),
        }
        better = {"a_active_b_shadow": not a_better, "b_active_a_shadow": a_better}
        tasks = [
            (direction, template, d, args.seed * 100_003 + d, args.max_impressions)
            for d in range(args.devices)
            for direction, template in templates.items()
        ]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.jobs, initializer=_init, initargs=(args.data,)) as pool:
            rows = []
            for i, row in enumerate(pool.imap_unordered(run_device, tasks), start=1):
                rows.append(row)
                if i % 10 == 0:
                    print(f"[bench_shadow] {i}/{len(tasks)} devices", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    sizes = {
        d: int(rng.integers(args.min_size, args.max_impressions + 1)) for d in range(args.devices)
    }
    directions = summarize(rows, sizes, better)
    result = {
        "benchmark": "bench_shadow",
        "hardware": hardware(None),
        "data": str(eval_file.name),
        "dev_impressions": len(_DATA["impressions"]),
        "bundles": {
            "a": {"path": str(args.a), "dev_auc": round(auc_a, 4)},
            "b": {"path": str(args.b), "dev_auc": round(auc_b, 4)},
            "a_minus_b": round(float(diff.mean()), 4),
            "better": "a" if a_better else "b",
        },
        "rule": {"min_reads": shadow.MIN_READS, "margin": 0.0, "looks": shadow.looks()},
        "device_sizes": [args.min_size, args.max_impressions],
        "all": directions.pop("all"),
        "directions": directions,
        "seconds": round(time.perf_counter() - started, 1),
        "device_seconds_median": float(np.median([r["seconds"] for r in rows])),
    }
    if args.plot is not None:
        plot(result, args.plot)
        result["plot"] = str(args.plot)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
