"""What leaves the reader's data: logs, exception messages and network traffic across the
SDK's paths (reliability cases E4 and E7), on SYNTHETIC articles with canary strings.

E4: at DEBUG level, through the recommend, model and update paths and their error paths
(bad candidates, a damaged installed model, hostile updates, a probation rollback), no log
record and no exception message holds a title or id the reader read, a profile name, or
key bytes. E7: every connection the process opens during an update goes to the update
server, and recommending opens none (the audit hook sees Python's socket.connect and
getaddrinfo, which every HTTP client in the SDK goes through).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import edgerec
from edgerec import updates
from edgerec.errors import EdgerecError
from edgerec.model import MODEL_FILE
from edgerec.trainer import publish
from tests.support.updates import FIXTURE, Server, make_bundle

KEY = bytes(range(32))
PROFILE = "canary-profile-Zq81"
CANARIES = [
    {"id": "canary-id-Xy7Q", "title": "canary title Wb4k about harbors", "category": "news"},
    {"id": "canary-id-Pl9M", "title": "canary title Rt2v about trains", "abstract": "canary Mm3"},
]

_connections: list[tuple[str, Any]] = []
_recording = {"on": False}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording["on"] and event in ("socket.connect", "socket.getaddrinfo"):
        address = args[1] if event == "socket.connect" else args[:2]
        _connections.append((event, address))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only while asked to


class _Recording:
    def __enter__(self) -> list[tuple[str, Any]]:
        _connections.clear()
        _recording["on"] = True
        return _connections

    def __exit__(self, *exc: object) -> None:
        _recording["on"] = False


@pytest.fixture()
def channel(tmp_path: Path) -> Iterator[dict[str, Any]]:
    keys = tmp_path / "keys"
    publish.keygen(keys)
    repo = tmp_path / "repo"
    publish.publish(repo, FIXTURE, keys)
    server = Server(repo)
    yield {"keys": keys, "repo": repo, "server": server, "root": repo / "metadata/1.root.json"}
    server.close()


def _secrets() -> list[str]:
    out = [PROFILE, KEY.hex()]
    for article in CANARIES:
        out += [str(v) for v in article.values()]
    return out


def test_e4_logs_and_messages_of_the_recommend_model_and_update_paths(
    tmp_path: Path, channel: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []

    def expect_error(call: Any) -> None:
        try:
            call()
        except EdgerecError as exc:
            messages.append(f"{type(exc).__name__}: {exc}")
        else:
            messages.append("(no error)")

    home = tmp_path / "home"
    url, root = channel["server"].url, channel["root"]
    with edgerec.Recommender.open(home, key=KEY, profile=PROFILE) as rec:
        rec.check_for_update(url, trusted_root=root)
        for article in CANARIES:
            rec.record_read(article, dwell_s=30.0)
        feed = [*CANARIES, {"id": "other", "title": "Storm hits the coast"}]
        rec.recommend(feed, k=3)
        # error paths of recommend: every bad candidate shape next to the canaries
        for bad in (
            [*CANARIES, CANARIES[0]],  # duplicate id
            [*CANARIES, {"id": 7}],
            [*CANARIES, {"id": "x", "title": "t" * 5000}],
            [*CANARIES, {"id": "x", "published_at": "not a time"}],
            [{"id": CANARIES[0]["id"], "title": b"bytes"}],
        ):
            expect_error(lambda bad=bad: rec.recommend(bad, k=3))
        expect_error(lambda: rec.record_read({**CANARIES[0], "title": "\udc80"}))
        expect_error(lambda: rec.record_read(CANARIES[0], at=float("nan")))
        # error paths of the update client: a model that fails validation, then a probation
        # rollback of a model that fails in use
        publish.publish(
            channel["repo"],
            make_bundle(tmp_path, 2, model=b"\x18\x00\x00\x00TFL3"),
            channel["keys"],
        )
        expect_error(lambda: rec.check_for_update(url))
        publish.publish(channel["repo"], make_bundle(tmp_path, 3), channel["keys"])
        rec.check_for_update(url)
        rec._ranker.recommend = _broken  # type: ignore[method-assign]  # fails in use:
        rec.recommend(feed, k=3)  # the probation rolls it back
        assert rec.model_version == 1
        publish.publish(channel["repo"], make_bundle(tmp_path, 4), channel["keys"])
        assert rec.check_for_update(url) is not None
    # the model path: a damaged installed model at start-up falls back and logs it
    model = home / "models" / "4" / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with edgerec.Recommender.open(home, key=KEY, profile=PROFILE) as rec:
        assert rec.model_version == 1
        rec.recommend(CANARIES, k=2)
    expect_error(lambda: edgerec.Recommender.open(home, key=bytes(32), profile=PROFILE))

    logged = "\n".join(f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records)
    assert "rolling back" in logged and "damaged" in logged  # the paths did log
    assert len(messages) >= 8 and "(no error)" not in messages, messages
    text = logged + "\n" + "\n".join(messages)
    for secret in _secrets():
        assert secret not in text, f"a log or message holds {secret[:12]}..."


def _broken(*args: Any, **kw: Any) -> Any:
    raise RuntimeError("invoke failed")


def test_e7_an_update_contacts_only_the_update_server(
    tmp_path: Path, channel: dict[str, Any]
) -> None:
    server: Server = channel["server"]
    home = tmp_path / "home"
    with _Recording() as seen:
        result = updates.check_for_update(home, server.url, trusted_root=channel["root"])
    assert result is not None and result.version == 1
    port = server.httpd.server_port
    connects = [address for event, address in seen if event == "socket.connect"]
    assert connects, "the audit hook saw no connection: the test would prove nothing"
    assert {tuple(a[:2]) for a in connects} == {("127.0.0.1", port)}
    lookups = {address[0] for event, address in seen if event == "socket.getaddrinfo"}
    assert lookups <= {"127.0.0.1"}

    # recommending, recording, switching and closing open no connection at all
    with _Recording() as seen, edgerec.Recommender.open(home, key=KEY) as rec:
        rec.record_read(CANARIES[0])
        rec.recommend(CANARIES, k=2)
        rec.switch_profile("someone else")
    assert seen == []


def test_e7_the_validation_child_opens_no_connection(
    tmp_path: Path, channel: dict[str, Any]
) -> None:
    """The child that loads the new model runs the same audit hook: it connects nowhere."""
    hook = tmp_path / "hooked_child.py"
    hook.write_text(
        "import json, sys\n"
        "seen = []\n"
        "sys.addaudithook(lambda e, a: seen.append(e) if e.startswith('socket.') else None)\n"
        "from edgerec.updates import child\n"
        "code = child.main(sys.argv[1:])\n"
        "sys.stderr.write(json.dumps(seen))\n"
        "sys.exit(code)\n"
    )
    import subprocess

    limits = updates.Limits()
    done = subprocess.run(
        [
            sys.executable,
            str(hook),
            str(FIXTURE),
            str(limits.latency_budget_ms),
            "30",
            "2048",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["ok"] is True
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
