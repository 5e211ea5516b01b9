"""A real TUF repository (edgerec.trainer.publish) served over loopback by a server that
can turn hostile, and the SYNTHETIC fixture bundle re-versioned: what the update, CLI and
kiosk tests build on."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edgerec import updates
from edgerec.model import MANIFEST_FILE, MODEL_FILE
from edgerec.trainer import publish
from edgerec.trainer.publish import _Repo, _write_chain, load_signers

__all__ = [
    "FIXTURE",
    "MODEL",
    "Env",
    "Handler",
    "Server",
    "accept",
    "announce",
    "assert_clean",
    "make_bundle",
    "resign",
    "sign_release",
    "state",
]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_bundle"
MODEL = (FIXTURE / MODEL_FILE).read_bytes()


def accept(folder: Path, limits: updates.Limits) -> dict[str, Any]:
    """A validator that accepts (for tests about what happens before or after validation)."""
    return {"ok": True}


# --- a repository and a server that can turn hostile --------------------------------------------


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        hostile: Callable[[Handler], bool] | None = getattr(self.server, "hostile", None)
        if hostile is not None and hostile(self):
            return
        super().do_GET()


class Server:
    def __init__(self, root: Path) -> None:
        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a hostile handler may still be sleeping
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def hostile(self, fn: Callable[[Handler], bool] | None) -> None:
        self.httpd.hostile = fn  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Env:
    """A repository with model 1 published, served over loopback, and a device home."""

    tmp: Path
    keys: Path
    repo: Path
    home: Path
    server: Server
    before: tuple[bytes, list[tuple[str, str]]] = ((b""), [])

    def install(self, **kw: Any) -> updates.UpdateResult | None:
        return updates.check_for_update(
            self.home, self.server.url, trusted_root=self.repo / "metadata" / "1.root.json", **kw
        )

    def publish(self, version: int, *, model: bytes | None = None, **changes: Any) -> Path:
        folder = make_bundle(self.tmp, version, model=model, **changes)
        publish.publish(self.repo, folder, self.keys)
        return folder

    def rejected(self, error: type[Exception], **kw: Any) -> Exception:
        """``error`` raised; the pointer and installed files unchanged; no leftovers."""
        before = state(self.home)
        with pytest.raises(error) as info:
            self.install(**kw)
        assert state(self.home) == before
        assert_clean(self.home)
        return info.value


def make_bundle(tmp: Path, version: int, *, model: bytes | None = None, **changes: Any) -> Path:
    """The fixture as ``version``; ``model`` replaces the model (manifest length/sha too)."""
    folder = tmp / f"bundle{version}-{len(list(tmp.glob('bundle*')))}"
    shutil.copytree(FIXTURE, folder)
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["model_version"] = version
    if model is not None:
        (folder / MODEL_FILE).write_bytes(model)
        data["model"].update(bytes=len(model), sha256=hashlib.sha256(model).hexdigest())
    data.update(changes)
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    return folder


def state(home: Path) -> tuple[bytes, list[tuple[str, str]]]:
    """The pointer's bytes and a digest of every installed file (``.lock`` aside)."""
    models = home / "models"
    files = sorted(
        (str(p.relative_to(models)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in models.rglob("*")
        if p.is_file() and p.name != ".lock"
    )
    return (models / "active.json").read_bytes(), files


def assert_clean(home: Path) -> None:
    leftovers = [p.name for p in (home / "models").iterdir() if p.name.startswith(".")]
    assert leftovers == [".lock"]


def resign(repo: Path, keys: Path, edit: Callable[[_Repo, Any], None]) -> None:
    """Edit the targets metadata with the publisher's own writer (a validly signed release
    the publisher's checks would have refused)."""
    r = _Repo(repo)
    targets = r.targets_md()
    assert targets is not None
    edit(r, targets)
    signers = {role: load_signers(keys, role) for role in ("targets", "snapshot", "timestamp")}
    _write_chain(r, targets, signers, None, datetime.now(UTC))


def announce(version: int) -> Callable[[_Repo, Any], None]:
    """An edit for :func:`resign`: ``latest.json`` names ``version``."""

    def edit(r: _Repo, md: Any) -> None:
        latest = json.dumps({"model_version": version}).encode()
        md.signed.targets[updates.LATEST_TARGET] = r.add_target(updates.LATEST_TARGET, latest)

    return edit


def sign_release(env: Env, version: int, manifest: bytes) -> None:
    """A validly signed release whose manifest is ``manifest`` (with the fixture's model)."""

    def edit(r: _Repo, md: Any) -> None:
        announce(version)(r, md)
        for name, data in ((MANIFEST_FILE, manifest), (MODEL_FILE, MODEL)):
            path = updates.bundle_target(version, name)
            md.signed.targets[path] = r.add_target(path, data)

    resign(env.repo, env.keys, edit)
