"""The docs cannot rot: docstring examples, every Python block of the README and docs/, and
every command of the walk-through are executed; the embedding example is
examples/quickstart.py; links between the pages resolve."""

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
from edgerec import errors, features, history, home, model, recommender, shadow
from edgerec.features import hashing, signals, spec, values
from edgerec.history import events as history_events
from edgerec.history import rollback as history_rollback
from edgerec.history import store as history_store
from edgerec.model import bundle, manifest, runner
from edgerec.trainer import config
from edgerec.trainer import errors as trainer_errors
from edgerec.trainer.data import synthetic, training_examples, validation_impressions
from edgerec.trainer.models import feed_signals

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
WALK_THROUGH = DOCS / "walkthrough.md"


@pytest.mark.parametrize(
    "module",
    [
        edgerec,
        features,
        spec,
        signals,
        hashing,
        values,
        errors,
        synthetic,
        config,
        trainer_errors,
        training_examples,
        validation_impressions,
        feed_signals,
        model,
        bundle,
        manifest,
        runner,
        history,
        history_store,
        history_events,
        history_rollback,
        recommender,
        shadow,
        home,
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


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _sections(path: Path, level: str = "##") -> dict[str, str]:
    parts = re.split(rf"^{level} (.+)$", _read(path), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


PAGES = [README, *sorted(DOCS.glob("*.md"))]
PYTHON_BLOCKS = [
    (page, n, block) for page in PAGES for n, block in enumerate(_blocks("python", _read(page)))
]


def test_the_readme_is_a_front_page() -> None:
    """Who it is for, the two commands, the quickstart, the diagram, headline figures and
    links, within about 200 lines: the reference lives in docs/."""
    text = _read(README)
    assert len(text.splitlines()) <= 200
    assert list(_sections(README)) == [
        "Set-up",
        "Embedding example",
        "Architecture",
        "Headline figures",
        "Documentation",
        "Data",
        "Licence",
    ]
    assert re.findall(r"^make \w+", _sections(README)["Set-up"], re.M) == ["make demo", "make test"]


@pytest.mark.parametrize(
    ("page", "index", "block"),
    PYTHON_BLOCKS,
    ids=[f"{page.name}-{n}" for page, n, _ in PYTHON_BLOCKS],
)
def test_python_blocks_run(
    page: Path, index: int, block: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # as a reader runs them: from the repository root
    exec(compile(block, f"{page.name} block {index}", "exec"), {})


def test_the_embedding_example_is_the_quickstart_file() -> None:
    block = _blocks("python", _sections(README)["Embedding example"])
    code = _read(ROOT / "examples" / "quickstart.py")
    body = code.split('"""', 2)[2].strip()  # after the module docstring
    assert block == [body + "\n"]
    assert len([line for line in body.splitlines() if line.strip()]) <= 12
    assert re.findall(r"^(?:from|import) (\S+)", body, re.M) == ["tempfile", "edgerec"]


def test_every_shell_block_is_the_setup_or_in_the_walk_through() -> None:
    """The README's one shell block is the set-up; every other command is on the
    walk-through page, which the next test runs."""
    assert len(_blocks("sh", _read(README))) == 1
    assert len(_blocks("sh", _sections(README)["Set-up"])) == 1
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "walkthrough.md":
            assert not _blocks("sh", _read(page)), page.name
    assert len(_blocks("sh", _read(WALK_THROUGH))) >= 5


def test_links_between_pages_resolve() -> None:
    """Every relative link of the README and docs/ names a file that exists, and an
    anchor that is one of its headings."""

    def anchor(heading: str) -> str:
        return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")

    checked = 0
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", _read(page)):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL
            path, _, fragment = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.name}: {target}"
            if fragment:
                headings = re.findall(r"^#+ (.+)$", _read(dest), re.M)
                assert fragment in {anchor(h) for h in headings}, f"{page.name}: {target}"
            checked += 1
    assert checked >= 20


def test_make_demo_and_make_test_run_what_the_suite_checks() -> None:
    """The set-up block is the two make targets: CI runs `make test` itself, and `make demo`
    is examples/demo.py (run end to end by tests/examples/test_run.py)."""
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
def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    """Every command of docs/walkthrough.md, in order, in one bash, as a new user types
    them: in a scratch folder beside the repository's examples/."""
    script = "\n".join(_blocks("sh", _read(WALK_THROUGH)))
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
    assert "one model, exported by the chief" in out


def test_the_reliability_catalogue_lists_all_50_cases_with_existing_tests() -> None:
    """docs/reliability.md: every case A1-E7 has a row, and every test it names exists in
    the file it names (and carries the case id)."""
    table = _read(DOCS / "reliability.md")
    rows = dict(re.findall(r"^\| ([A-E]\d+) \| .*? \| (.+) \|$", table, re.M))
    expected = [f"{letter}{n}" for letter, k in zip("ABCDE", (13, 9, 14, 7, 7), strict=True)
                for n in range(1, k + 1)]  # fmt: skip
    assert sorted(rows) == sorted(expected)
    for case, cell in rows.items():
        names = re.findall(r"`([\w/.]+)::(\w+)`", cell)
        assert names, case
        for path, test in names:
            assert re.search(rf"^def {test}\(", _read(ROOT / path), re.M), (case, path, test)
            assert f"_{case.lower()}_" in f"_{test[5:]}", (case, test)
