"""The docs cannot rot: docstring examples and the README's Python blocks are executed."""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from types import ModuleType

import pytest

import edgerec
from edgerec import _values, bundle, errors, features, hashing, history, recommender
from edgerec.trainer import config, examples, synthetic

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize(
    "module",
    [
        edgerec,
        features,
        hashing,
        _values,
        errors,
        synthetic,
        config,
        examples,
        bundle,
        history,
        recommender,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docstring_examples_exist() -> None:
    attempted = sum(doctest.testmod(m).attempted for m in (edgerec, features, hashing, synthetic))
    assert attempted >= 8


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_python_examples() -> None:
    assert _python_blocks(), "README lost its embedding example"


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_blocks_run(index: int) -> None:
    exec(compile(_python_blocks()[index], f"README.md block {index}", "exec"), {})


def test_readme_names_exactly_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^make \w+", setup, re.M) == ["make demo", "make test"]
