"""Fixtures of the update tests: publisher keys, a served repository, model 1 installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgerec.trainer import publish
from tests.support.updates import FIXTURE, Env, Server, accept, state


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    publish.keygen(folder)
    return folder


@pytest.fixture()
def env(tmp_path: Path, keys: Path) -> Iterator[Env]:
    repo = tmp_path / "repo"
    publish.publish(repo, FIXTURE, keys)
    srv = Server(repo)
    yield Env(tmp_path, keys, repo, tmp_path / "home", srv)
    srv.close()


@pytest.fixture()
def v1(env: Env) -> Env:
    """Model 1 installed (validation faked here: tested on its own); ``before`` its state."""
    result = env.install(validator=accept)
    assert result is not None and result.version == 1
    env.before = state(env.home)
    return env
