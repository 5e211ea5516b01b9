"""``edgerec-train``'s edge (:mod:`edgerec.trainer.cli`): ``python -m edgerec.trainer`` is the
same command, and every :class:`~edgerec.trainer.errors.TrainerError` becomes one line on
stderr and exit code 1, never a traceback. No TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgerec.trainer import cli
from edgerec.trainer.data.synthetic import write_mind_layout
from edgerec.trainer.errors import (
    ConfigError,
    DataError,
    EmbeddingsUnavailable,
    ExportError,
    InteractionsFormatError,
    PublishError,
    TrainerError,
    UsageError,
)

LEAVES = (
    ConfigError,
    DataError,
    EmbeddingsUnavailable,
    ExportError,
    InteractionsFormatError,
    PublishError,
    UsageError,
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgerec.trainer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_python_m_edgerec_trainer_is_edgerec_train() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: edgerec-train")
    for command in ("evaluate", "pipeline", "export", "synthetic", "keygen", "publish"):
        assert command in done.stdout
    assert "refresh-timestamp" in done.stdout and "rotate-key" in done.stdout


def test_a_trainer_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not synthetic")
    done = _run("synthetic", "--out", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"edgerec-train: error: {tmp_path} is not empty: synthetic data goes into a new folder"
    ]
    assert (tmp_path / "mine.txt").read_text() == "not synthetic"


@pytest.mark.parametrize("error", LEAVES, ids=lambda e: e.__name__)
def test_every_trainer_error_becomes_one_line(
    error: type[TrainerError],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(args: object) -> int:
        raise error("what went wrong, in one line")

    monkeypatch.setattr(cli, "cmd_synthetic", fail)
    assert cli.main(["synthetic", "--out", str(tmp_path / "new")]) == 1
    assert capsys.readouterr().err == "edgerec-train: error: what went wrong, in one line\n"


def test_errors_have_one_root_and_keep_their_builtin_bases() -> None:
    assert all(issubclass(leaf, TrainerError) for leaf in LEAVES)
    for leaf in (ConfigError, DataError, InteractionsFormatError, UsageError):
        assert issubclass(leaf, ValueError)  # callers that caught ValueError still do
    assert issubclass(EmbeddingsUnavailable, RuntimeError)
    assert issubclass(InteractionsFormatError, DataError)


def test_a_malformed_threshold_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["publish", "--repo", str(tmp_path / "r"), "--keys", str(tmp_path / "k")]
    assert cli.main([*args, "--bundle", str(tmp_path), "--threshold", "root"]) == 1
    assert capsys.readouterr().err == (
        "edgerec-train: error: --threshold 'root': expected ROLE=N, e.g. root=2\n"
    )


@pytest.mark.parametrize("problem", ["missing folder", "missing file", "empty eval"])
def test_evaluate_errors_are_one_line(
    tmp_path: Path, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_mind_layout(tmp_path / "data", n_articles=50, n_users=10, n_train=20, n_eval=5)
    if problem == "missing folder":
        data = tmp_path / "nowhere"
    elif problem == "missing file":
        (data / "MINDsmall_train_subset" / "behaviors.tsv").unlink()
    else:
        (data / "MINDsmall_dev_sampled_impressions.tsv").write_text("garbage\n")
    assert cli.main(["evaluate", "--data", str(data), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgerec-train: error: ")
    assert "Traceback" not in "\n".join(err)


def test_a_folder_in_neither_layout_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    args = ["evaluate", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "neither the MIND layout" in err and "interactions.csv" in err
    assert len(err.splitlines()) == 1
