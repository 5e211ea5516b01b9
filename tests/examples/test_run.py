"""The programs in examples/ run as a user would run them (subprocesses, SYNTHETIC data)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: str, cwd: Path, timeout: float) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_synthetic_feed_is_the_generators_output() -> None:
    """examples/data/synthetic_feed.jsonl is exactly what its README says wrote it."""
    from edgerec.trainer.data.synthetic import synthetic_articles

    lines = (EXAMPLES / "data" / "synthetic_feed.jsonl").read_text(encoding="utf-8").splitlines()
    expected = synthetic_articles(200, seed=7, p_unicode=0.0)
    assert lines == [json.dumps(a, ensure_ascii=False, sort_keys=True) for a in expected]


def test_examples_import_only_the_public_sdk() -> None:
    """A user copies examples/: the quickstart and the kiosk use the SDK's public API only
    (no private module, no trainer)."""
    for path in (EXAMPLES / "quickstart.py", EXAMPLES / "kiosk" / "app.py"):
        text = path.read_text(encoding="utf-8")
        imported = re.findall(r"^\s*(?:from|import) (edgerec[\w.]*)", text, re.M)
        assert imported, path
        assert all(name in {"edgerec", "edgerec.errors"} for name in imported), (path, imported)


def test_quickstart_prints_five_ranked_recommendations() -> None:
    out = _run(str(EXAMPLES / "quickstart.py"), cwd=EXAMPLES.parent, timeout=120)
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2", "3", "4", "5"]
    ids = [line.split()[1] for line in lines]
    assert all(i.startswith("SYN-") for i in ids) and len(set(ids)) == 5
    assert "SYN-N000000" not in ids  # the article just read is not recommended again
    assert any("because you read" in line for line in lines)


@pytest.mark.trainer
def test_demo_runs_the_whole_loop_on_synthetic_data(tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    out = _run(
        str(EXAMPLES / "demo.py"), "--synthetic", "--out", str(out_dir), cwd=tmp_path, timeout=900
    )
    assert "data: SYNTHETIC" in out
    active = re.search(r"device: model (\d+) active", out)
    assert active, out
    assert re.search(rf"Top 10 of .*model {active.group(1)}", out)
    top = re.findall(r"^\s+(\d+)\. [* ] (SYN-\S+)\s+[+-]\d+\.\d+", out, re.M)
    assert [int(rank) for rank, _ in top] == list(range(1, 11)), out
    table = re.findall(
        r"^  (\w+)\s+(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]\s+(\d\.\d{3})$", out, re.M
    )
    assert {"student_int8", "teacher", "random"} <= {row[0] for row in table}, out
    assert "TensorFlow imported by the device side: no" in out
    assert re.search(r"total \d+\.\d s \(SYNTHETIC data\)", out)
    assert (out_dir / "repo" / "metadata" / "1.root.json").is_file()
    assert (out_dir / "device" / "models" / active.group(1)).is_dir()

    # A folder the demo did not make is refused, untouched (before any training starts).
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--synthetic", "--out", str(stranger)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "not made by the demo" in proc.stderr
    assert (stranger / "keep.txt").read_text() == "mine"
