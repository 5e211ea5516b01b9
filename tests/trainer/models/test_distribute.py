"""tf.distribute in the trainer (`distribute = mirrored | multiworker`): one training step
under a strategy equals the same step on one device, and the whole tiny pipeline runs as
a two-worker cluster on 127.0.0.1 (SYNTHETIC data). Each run is a child process: a
strategy has to exist before TensorFlow starts its devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edgerec.trainer.config import ConfigError, load_config
from edgerec.trainer.data.synthetic import write_mind_layout

pytestmark = pytest.mark.trainer

SUPPORT = Path(__file__).resolve().parents[2] / "support" / "distribute.py"
BIN = Path(sys.executable).parent


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _cluster_env(index: int, ports: list[int]) -> dict[str, str]:
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
    return {**os.environ, "TF_CONFIG": json.dumps(config)}


def _run_cluster(command: Callable[[int], list[str]], timeout: float) -> list[tuple[str, str]]:
    """``command(i)`` run by worker i of a two-worker cluster on 127.0.0.1: each worker's
    (stdout, stderr), both asserted to succeed."""
    ports = _free_ports(2)
    workers = [
        subprocess.Popen(
            command(i),
            env=_cluster_env(i, ports),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err[-3000:]
        outputs.append((out, err))
    return outputs


def _check_step(result: dict[str, object]) -> None:
    assert result["replicas"] == 2
    for model in ("teacher", "student"):
        step = result[model]
        assert isinstance(step, dict)
        assert step["moved"] > 1e-4, model  # the step changed the weights
        # a per-replica mean loss moved them 13-40% differently here (measured)
        assert step["max_diff"] < 1e-3 * step["moved"], (model, step)


def test_a_mirrored_step_equals_the_same_step_on_one_device() -> None:
    done = subprocess.run(
        [sys.executable, str(SUPPORT), "mirrored"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _check_step(json.loads(done.stdout))


def test_a_multiworker_step_equals_the_same_step_on_one_device() -> None:
    outputs = _run_cluster(lambda i: [sys.executable, str(SUPPORT), "multiworker"], 300)
    results = [json.loads(out) for out, _ in outputs]
    for result in results:
        _check_step(result)
    assert results[0] == results[1]  # the workers hold the same weights


def test_the_tiny_pipeline_trains_as_a_two_worker_cluster(tmp_path: Path) -> None:
    """Issue 16: the chief alone prepares, evaluates, exports and reports; each worker reads
    only its own shard files; the two train one model in lockstep."""
    data = write_mind_layout(tmp_path / "data", seed=1)
    shared = tmp_path / "shared"
    args = [
        "pipeline",
        "--config",
        "tiny",
        "--data",
        str(data),
        "--cache",
        str(tmp_path / "cache"),
        "--set",
        "distribute=multiworker",
        "--set",
        f"shared_dir={shared}",
        "--set",
        "teacher.epochs=1",
        "--set",
        "student.epochs=1",
        "--set",
        "teacher.max_examples=1280",
        "--set",
        "student.max_examples=1280",
        "--set",
        "student.version=5",
    ]
    train = str(BIN / "edgerec-train")
    outputs = _run_cluster(lambda i: [train, *args, "--out", str(tmp_path / f"worker{i}")], 900)
    logs = [err for _, err in outputs]
    assert all("distribute=multiworker: 2 replicas in sync" in log for log in logs)
    # each input pipeline read its own shard files, never the other's
    assert "input pipeline 0 of 2 reads shards [0]" in logs[0], logs[0][-3000:]
    assert "input pipeline 1 of 2 reads shards [1]" in logs[1], logs[1][-3000:]
    # the worker did not load the data, evaluate or export: the chief did, once
    assert "coverage train" in logs[0] and "coverage train" not in logs[1]
    assert not (tmp_path / "worker1" / "bundle").exists()
    assert not (tmp_path / "worker1" / "report.json").exists()

    from edgerec.model import Bundle, ModelRunner

    report = json.loads((tmp_path / "worker0" / "report.json").read_text())
    models = report["models"]
    assert models["teacher"]["auc_ci"][0] > models["random"]["auc_ci"][1]
    assert models["student_int8"]["auc"] > models["random"]["auc"]
    bundle = Bundle.load(tmp_path / "worker0" / "bundle")
    assert bundle.manifest.model_version == 5 and ModelRunner(bundle).check_golden() <= 1e-3
    # one model, trained in lockstep: the same validation AUC after every epoch
    worker = json.loads((tmp_path / "worker1" / "worker.json").read_text())
    for name in ("teacher", "student_float"):
        ours = report["training"][name]["validation_ranking_auc"]
        theirs = worker["training"][name]["validation_ranking_auc"]
        assert ours == pytest.approx(theirs, abs=1e-6), name


def test_a_cluster_without_a_shared_dir_is_one_clear_error(tmp_path: Path) -> None:
    env = {**_cluster_env(0, _free_ports(2))}
    done = subprocess.run(
        [
            str(BIN / "edgerec-train"),
            "pipeline",
            "--config",
            "tiny",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--set",
            "distribute=multiworker",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "shared_dir" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["tpu", "Mirrored", ""])
def test_an_unknown_strategy_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="distribute: expected one of none, mirrored"):
        load_config("tiny", [f"distribute={value}"])
