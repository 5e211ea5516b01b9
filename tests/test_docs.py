"""The docs cannot rot: docstring examples, the README's Python blocks and every command
of its shell walk-through are executed; the embedding example is examples/quickstart.py."""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import edgerec
from edgerec import errors, features, history, model, recommender
from edgerec.features import hashing, spec, values
from edgerec.model import bundle, manifest, runner
from edgerec.trainer import config
from edgerec.trainer import errors as trainer_errors
from edgerec.trainer.data import synthetic, training_examples

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.mark.parametrize(
    "module",
    [
        edgerec,
        features,
        spec,
        hashing,
        values,
        errors,
        synthetic,
        config,
        trainer_errors,
        training_examples,
        model,
        bundle,
        manifest,
        runner,
        history,
        recommender,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docstring_examples_exist() -> None:
    attempted = sum(
        doctest.testmod(m).attempted for m in (edgerec, features, spec, hashing, synthetic)
    )
    assert attempted >= 8


def _blocks(language: str, text: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _python_blocks() -> list[str]:
    return _blocks("python", README.read_text(encoding="utf-8"))


def test_readme_has_python_examples() -> None:
    assert _python_blocks(), "README lost its embedding example"


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_blocks_run(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # as a reader runs them: from the repository root
    exec(compile(_python_blocks()[index], f"README.md block {index}", "exec"), {})


def test_the_embedding_example_is_the_quickstart_file() -> None:
    block = _blocks("python", _sections("##")["Embedding example"])
    code = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    body = code.split('"""', 2)[2].strip()  # after the module docstring
    assert block == [body + "\n"]
    assert len([line for line in body.splitlines() if line.strip()]) <= 12


def _sections(level: str) -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _sh_blocks(text: str) -> list[str]:
    return _blocks("sh", text)


def test_every_shell_block_is_in_the_setup_or_the_walk_through() -> None:
    sections = _sections("##")
    run = sum(len(_sh_blocks(body)) for name, body in sections.items() if name.startswith("From"))
    setup = len(_sh_blocks(sections["Set-up"]))
    assert run >= 5 and setup == 1
    assert len(_sh_blocks(README.read_text(encoding="utf-8"))) == run + setup


def test_make_demo_and_make_test_run_what_the_suite_checks() -> None:
    """The set-up block is the two make targets: CI runs `make test` itself, and `make demo`
    is examples/demo.py (run end to end by tests/test_examples_run.py)."""
    quiet = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    dry = subprocess.run(  # inside `make test` too: a sub-make must not announce itself
        ["make", "-n", "--no-print-directory", "-W", ".venv/.trainer", "demo"],
        cwd=ROOT,
        env=quiet,
        capture_output=True,
        text=True,
        check=False,
    )
    if dry.returncode != 0 and "No such file" in dry.stderr:
        pytest.skip("make is not installed")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip().splitlines()[-1] == ".venv/bin/python examples/demo.py"


@pytest.mark.trainer
def test_the_readme_walk_through_runs_as_written(tmp_path: Path) -> None:
    """Every command of "From your logs to your devices", in order, in one bash, as a new
    user types them: in a scratch folder beside the repository's examples/."""
    walk = _sections("##")["From your logs to your devices"]
    script = "\n".join(_sh_blocks(walk))
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TF_CONFIG", None)
    cleanup = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"  # servers it started
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"{cleanup}\n{script}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    log = done.stdout[-4000:] + done.stderr[-6000:]
    assert done.returncode == 0, log
    out = done.stdout
    try_dir = tmp_path / "try"
    # the walk-through did what it says, not just exit 0
    assert (try_dir / "run" / "bundle" / "model.tflite").is_file()
    assert (try_dir / "repo" / "metadata" / "1.root.json").is_file()
    active = json.loads((try_dir / "device" / "models" / "active.json").read_text())
    assert active["rejected"] > active["version"]  # updated to the newer one, rolled back
    assert "up to date" in out  # the update after the key rotation verified and found none
    assert re.search(r"^\s*1\s+N[345]\b", out, re.M), out  # a ranked list from the CLI
    assert "N1" not in re.findall(r"^\s*\d+\s+(N\d)\b", out, re.M)  # already read
    assert '"visitor": null' in out and '"profiles": []' in out  # the kiosk's state (erased)
    assert "same model" in out


def test_readme_names_exactly_the_two_setup_commands() -> None:
    setup = _sections("##")["Set-up"]
    assert re.findall(r"^make \w+", setup, re.M) == ["make demo", "make test"]
