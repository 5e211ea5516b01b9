"""The model update channel, end to end over loopback: from ``check_for_update`` to the new
model active (TUF refresh, download, SDK checks, validation child, atomic activation), the
same without the validation child, and the validation child alone. Prints JSON.

    python benchmarks/bench_update.py [--runs 7] [--model-bytes 1000000]

The bundle is the committed SYNTHETIC fixture with its model padded with zero bytes to
``--model-bytes`` (TFLite ignores bytes after the flatbuffer; the manifest's length and
sha256 cover the padded file), so download, hashing and the child's copy handle a ~1 MB
model without TensorFlow; the interpreter's own work is that of the 157 kB fixture. A fresh
repository is published in a temp folder and served by ``http.server`` on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import hardware, pin_to_one_core

from edgerec import updates
from edgerec.model import MANIFEST_FILE, MODEL_FILE
from edgerec.trainer import publish

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny_bundle"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _bundle(tmp: Path, version: int, model_bytes: int) -> Path:
    folder = tmp / f"bundle{version}"
    shutil.copytree(FIXTURE, folder)
    model = (folder / MODEL_FILE).read_bytes()
    model += b"\0" * max(0, model_bytes - len(model))
    (folder / MODEL_FILE).write_bytes(model)
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["model_version"] = version
    data["model"].update(bytes=len(model), sha256=hashlib.sha256(model).hexdigest())
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    return folder


def _ok(folder: Path, limits: updates.Limits) -> dict[str, Any]:
    return {"ok": True}


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--model-bytes", type=int, default=1_000_000)
    args = parser.parse_args()
    contended = subprocess.run(
        ["pgrep", "-f", "edgerec[.-]train"], capture_output=True, check=False
    ).stdout.split()
    core = pin_to_one_core()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        keys, repo, home = tmp / "keys", tmp / "repo", tmp / "home"
        publish.keygen(keys)
        publish.publish(repo, _bundle(tmp, 1, args.model_bytes), keys)
        handler = functools.partial(_Quiet, directory=str(repo))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        root = repo / "metadata" / "1.root.json"
        updates.check_for_update(home, url, trusted_root=root, validator=_ok)

        timings: dict[str, list[float]] = {"full": [], "without_validation": [], "validation": []}
        version = 1
        for run in range(args.runs * 2):
            version += 1
            publish.publish(repo, _bundle(tmp, version, args.model_bytes), keys)
            kind = "full" if run % 2 == 0 else "without_validation"
            start = time.perf_counter()
            result = updates.check_for_update(home, url, validator=None if kind == "full" else _ok)
            timings[kind].append(time.perf_counter() - start)
            assert result is not None and result.version == version
        active = home / "models" / str(version)
        for _ in range(args.runs):
            start = time.perf_counter()
            report = updates.validate_in_child(active)
            timings["validation"].append(time.perf_counter() - start)
        server.shutdown()
        model_size = (active / MODEL_FILE).stat().st_size
        manifest_size = (active / MANIFEST_FILE).stat().st_size

    full = statistics.median(timings["full"])
    print(
        json.dumps(
            {
                "benchmark": "update",
                "hardware": hardware(core),
                "contended": bool(contended),
                "contended_note": (
                    "an edgerec-train run was using the CPU during this measurement"
                    if contended
                    else "no edgerec-train process running"
                ),
                "inputs": {
                    "bundle": "SYNTHETIC fixture, model zero-padded (see docstring)",
                    "model_bytes": model_size,
                    "manifest_bytes": manifest_size,
                    "transport": "http.server on 127.0.0.1",
                    "runs": args.runs,
                },
                "check_for_update_to_active": _ms(timings["full"]),
                "check_for_update_without_validation": _ms(timings["without_validation"]),
                "validation_child_alone": _ms(timings["validation"]),
                "validation_share_of_full": round(
                    statistics.median(timings["validation"]) / full, 2
                ),
                "child_report": {k: report[k] for k in ("latency_ms", "max_rss_kb")},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
