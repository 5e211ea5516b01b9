"""edgerec.trainer.publish and its ``edgerec-train`` subcommands (no TensorFlow): key files,
repository layout, versions, thresholds, expiry, timestamp refresh, key rotation."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root, Targets, Timestamp

from edgerec.model import MANIFEST_FILE, MODEL_FILE
from edgerec.trainer import publish
from edgerec.trainer.cli import main
from edgerec.updates import LATEST_TARGET, bundle_target
from tests.support.updates import FIXTURE


def _bundle(tmp: Path, version: int) -> Path:
    folder = tmp / f"bundle{version}"
    shutil.copytree(FIXTURE, folder)
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["model_version"] = version
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    return folder


def test_keygen_writes_private_keys_0600_and_never_overwrites(tmp_path: Path) -> None:
    written = publish.keygen(tmp_path, count=2)
    assert sorted(p.name for p in written) == sorted(
        f"{r}{s}.key" for r in publish.ROLES for s in ("", "-2")
    )
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        pub = json.loads(path.with_suffix(".pub").read_text())
        assert pub["key"]["keytype"] == "ed25519" and "private" not in json.dumps(pub)
    before = (tmp_path / "root.key").read_bytes()
    with pytest.raises(publish.PublishError, match="exists"):
        publish.keygen(tmp_path, ["root"])
    assert (tmp_path / "root.key").read_bytes() == before
    assert len(publish.load_signers(tmp_path, "targets")) == 2


def test_publish_writes_a_consistent_snapshot_repository(tmp_path: Path) -> None:
    keys, repo = tmp_path / "keys", tmp_path / "repo"
    publish.keygen(keys)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert publish.publish(repo, FIXTURE, keys, now=now) == 1
    meta = repo / "metadata"
    root = Metadata[Root].from_file(str(meta / "1.root.json"))
    assert root.signed.consistent_snapshot and root.signed.version == 1
    assert root.signed.expires == now + publish.DEFAULT_EXPIRY["root"]
    assert (meta / "root.json").read_bytes() == (meta / "1.root.json").read_bytes()
    ts = Metadata[Timestamp].from_file(str(meta / "timestamp.json"))
    assert ts.signed.expires == now + timedelta(days=1)
    targets = Metadata[Targets].from_file(str(meta / "1.targets.json"))
    assert set(targets.signed.targets) == {
        LATEST_TARGET,
        bundle_target(1, MANIFEST_FILE),
        bundle_target(1, MODEL_FILE),
    }
    info = targets.signed.targets[bundle_target(1, MODEL_FILE)]
    stored = repo / "targets" / "bundles" / "1" / f"{info.hashes['sha256']}.{MODEL_FILE}"
    assert stored.read_bytes() == (FIXTURE / MODEL_FILE).read_bytes()
    root.verify_delegate("targets", targets)

    with pytest.raises(publish.PublishError, match="not newer"):
        publish.publish(repo, FIXTURE, keys)
    assert publish.publish(repo, _bundle(tmp_path, 2), keys) == 2
    assert (meta / "2.targets.json").is_file() and (meta / "2.snapshot.json").is_file()
    v2 = Metadata[Targets].from_file(str(meta / "2.targets.json")).signed.targets
    assert bundle_target(1, MODEL_FILE) in v2 and bundle_target(2, MODEL_FILE) in v2


def test_threshold_must_be_reachable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    publish.keygen(keys)
    with pytest.raises(publish.PublishError, match="threshold"):
        publish.publish(tmp_path / "repo", FIXTURE, keys, thresholds={"targets": 2})


def test_refresh_timestamp_and_rotate_key(tmp_path: Path) -> None:
    keys, repo = tmp_path / "keys", tmp_path / "repo"
    publish.keygen(keys)
    with pytest.raises(publish.PublishError, match="no repository"):
        publish.refresh_timestamp(repo, keys)
    publish.publish(repo, FIXTURE, keys)
    assert publish.refresh_timestamp(repo, keys) == 2
    new = tmp_path / "new"
    publish.keygen(new, ["timestamp"])
    assert publish.rotate_key(repo, keys, "timestamp", new) == 2
    root = Metadata[Root].from_file(str(repo / "metadata" / "2.root.json"))
    ts = Metadata[Timestamp].from_file(str(repo / "metadata" / "timestamp.json"))
    root.verify_delegate("timestamp", ts)
    old = Metadata[Root].from_file(str(repo / "metadata" / "1.root.json"))
    old.verify_delegate("root", root)  # signed by the old root


def test_cli_keygen_publish_refresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, repo = str(tmp_path / "keys"), str(tmp_path / "repo")
    assert main(["keygen", "--keys", keys]) == 0
    args = ["--repo", repo, "--keys", keys]
    assert main(["publish", *args, "--bundle", str(FIXTURE), "--timestamp-days", "0.5"]) == 0
    assert main(["refresh-timestamp", *args]) == 0
    assert main(["publish", *args, "--bundle", str(FIXTURE)]) == 1
    err = capsys.readouterr().err
    assert "not newer" in err and "BEGIN" not in err
    assert main(["keygen", "--keys", keys]) == 1  # never overwrites
    assert "tensorflow" not in sys.modules or "edgerec.trainer.models.teacher" in sys.modules
