"""edgerec.updates.client against a real repository (edgerec.trainer.publish) served over
loopback by a server that can turn hostile: reliability cases B3, B6 and C1-C7, C11, C14.

Every rejected update must raise its typed error and leave the active pointer and the
installed bundles byte-for-byte unchanged, with no staging leftovers. New bundle versions
are the SYNTHETIC fixture with its manifest edited (no TensorFlow needed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, Timestamp

from edgerec import home, updates
from edgerec.errors import (
    ExpiredMetadataError,
    IncompatibleModelError,
    ManifestFormatError,
    ManifestMismatchError,
    SignatureError,
    UntrustedKeyError,
    UpdateError,
    UpdateStorageError,
    VersionRollbackError,
)
from edgerec.home import read_pointer
from edgerec.model import MANIFEST_FILE, MODEL_FILE
from edgerec.trainer import publish
from edgerec.trainer.publish import _Repo, load_signers
from tests.support.updates import (
    FIXTURE,
    MODEL,
    Env,
    Server,
    accept,
    announce,
    assert_clean,
    make_bundle,
    resign,
    sign_release,
    state,
)


def test_install_replace_rollback(env: Env) -> None:
    first = env.install()  # the real validation child
    assert first is not None and first.version == 1 and first.previous is None
    assert first.validation["golden_max_diff"] <= 1e-3
    assert read_pointer(env.home) == {"version": 1, "probation": 1}  # not served yet
    env.publish(2)
    second = env.install()
    assert second is not None and (second.version, second.previous) == (2, 1)
    assert read_pointer(env.home) == {"version": 2, "previous": 1, "probation": 2}
    assert env.install() is None  # up to date
    assert updates.rollback(env.home) == 1
    assert read_pointer(env.home) == {"version": 1, "rejected": 2}
    assert env.install() is None  # not reinstalled after a rollback
    assert updates.verified_active_model(env.home) == env.home / "models" / "1"
    with pytest.raises(UpdateError):
        updates.rollback(env.home)  # no previous left
    env.publish(3)
    third = env.install(validator=accept)
    assert third is not None and third.version == 3
    names = sorted(p.name for p in (env.home / "models").iterdir())
    assert names == [".lock", "1", "3", "active.json"]


def test_no_trusted_root_is_an_error(env: Env) -> None:
    with pytest.raises(UpdateError, match="trusted root"):
        updates.check_for_update(env.home, env.server.url)


def test_b6_disk_full_while_staging(v1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """B6 (simulated: fsync of a staged file fails with ENOSPC), then a retry succeeds."""
    v1.publish(2)

    def full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(home, "fsync_file", full)
    v1.rejected(UpdateStorageError, validator=accept)
    monkeypatch.undo()
    assert v1.install(validator=accept) is not None


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_c1_unsigned_metadata(v1: Env) -> None:
    """C1."""
    v1.publish(2)
    _edit_json(v1.repo / "metadata" / "timestamp.json", lambda d: d.update(signatures=[]))
    assert not isinstance(v1.rejected(SignatureError), UntrustedKeyError)


def test_c2_untrusted_key(v1: Env) -> None:
    """C2: validly signed, by a key the device does not trust."""
    v1.publish(2)
    path = v1.repo / "metadata" / "timestamp.json"
    md = Metadata[Timestamp].from_file(str(path))
    md.sign(CryptoSigner.generate_ed25519(), append=False)
    md.to_file(str(path))
    v1.rejected(UntrustedKeyError)


def test_c3_threshold_two_of_three(tmp_path: Path, keys: Path) -> None:
    """C3: one signature, or one key's signature twice (a duplicated keyid): each counts once."""
    keys3 = tmp_path / "keys3"
    keys3.mkdir()
    for role in ("root", "snapshot", "timestamp"):
        for suffix in (".key", ".pub"):
            shutil.copy(keys / f"{role}{suffix}", keys3 / f"{role}{suffix}")
    publish.keygen(keys3, ["targets"], count=3)
    repo = tmp_path / "repo3"
    publish.publish(repo, FIXTURE, keys3, thresholds={"targets": 2})
    srv = Server(repo)
    try:
        env = Env(tmp_path, keys3, repo, tmp_path / "ok", srv)
        assert env.install(validator=accept) is not None
        path = next((repo / "metadata").glob("*.targets.json"))
        good = json.loads(path.read_text())
        first = good["signatures"][0]
        for i, sigs in enumerate(([first], [first, first], [first, {**first}])):
            path.write_text(json.dumps({**good, "signatures": sigs}))
            env.home = tmp_path / f"home{i}"
            with pytest.raises(SignatureError):
                env.install(validator=accept)
    finally:
        srv.close()


def test_c4_metadata_rollback(v1: Env) -> None:
    """C4 (TUF): the repository is replaced by an older, validly signed copy."""
    old = v1.tmp / "old-metadata"
    shutil.copytree(v1.repo / "metadata", old)
    v1.publish(2)
    v1.install(validator=accept)
    shutil.rmtree(v1.repo / "metadata")
    shutil.copytree(old, v1.repo / "metadata")
    v1.rejected(VersionRollbackError)


def test_c4_model_version_rollback_and_same_version_other_model(v1: Env) -> None:
    """C4 (SDK): a signed release announcing an older model, or another model as model 2."""
    v1.publish(2)
    v1.install(validator=accept)
    resign(v1.repo, v1.keys, announce(1))
    v1.rejected(VersionRollbackError)

    def other_model(r: _Repo, md: Any) -> None:
        announce(2)(r, md)
        path = updates.bundle_target(2, MODEL_FILE)
        md.signed.targets[path] = r.add_target(path, MODEL[:-1] + b"\x00")

    resign(v1.repo, v1.keys, other_model)
    v1.rejected(VersionRollbackError)


def test_c5_expired_metadata_freeze(v1: Env) -> None:
    """C5: a validly signed timestamp that has expired (signing time injected); the
    staleness is visible through update_status."""
    now = datetime.now(UTC)
    status = updates.update_status(v1.home, now=now)
    assert (status.active, status.stale) == (1, False)
    assert status.metadata_expires is not None
    assert status.metadata_expires - now <= timedelta(days=1)
    publish.refresh_timestamp(v1.repo, v1.keys, now=now - timedelta(days=2))
    v1.rejected(ExpiredMetadataError)
    assert updates.update_status(v1.home, now=now + timedelta(days=2)).stale
    assert updates.update_status(v1.tmp / "fresh-home").stale


def test_c6_root_key_rotation(v1: Env) -> None:
    """C6: root N+1 signed by old and new keys is followed; N+2 by the new key only is not."""
    new = v1.tmp / "new-keys"
    publish.keygen(new, ["root"])
    assert publish.rotate_key(v1.repo, v1.keys, "root", new) == 2
    v1.publish(2)
    result = v1.install(validator=accept)
    assert result is not None and result.version == 2
    newer = v1.tmp / "newer-keys"
    publish.keygen(newer, ["root"])
    md = _Repo(v1.repo).root()
    for keyid in list(md.signed.roles["root"].keyids):
        md.signed.revoke_key(keyid, "root")
    md.signed.add_key(load_signers(newer, "root")[0].public_key, "root")
    md.signed.version = 3
    md.sign(load_signers(newer, "root")[0], append=False)
    md.to_file(str(v1.repo / "metadata" / "3.root.json"))
    v1.rejected(SignatureError)
    assert Metadata[Root].from_file(str(v1.home / "tuf" / "root.json")).signed.version == 2


def _target_file(repo: Path, version: int, name: str) -> Path:
    return next((repo / "targets" / "bundles" / str(version)).glob(f"*.{name}"))


def test_c7_mix_and_match(v1: Env) -> None:
    """C7: a file swapped after signing; a signed manifest paired with another model."""
    v1.publish(2)
    target = _target_file(v1.repo, 2, MODEL_FILE)
    original = target.read_bytes()
    target.write_bytes(original[:-1] + b"\x00")
    v1.rejected(ManifestMismatchError)
    target.write_bytes(original)

    def pair_with_other_model(r: _Repo, md: Any) -> None:
        path = updates.bundle_target(2, MODEL_FILE)
        md.signed.targets[path] = r.add_target(path, MODEL[:-1] + b"\x00")

    resign(v1.repo, v1.keys, pair_with_other_model)
    v1.rejected(ManifestMismatchError, validator=accept)


def test_c11_incompatible_feature_spec_and_signature(v1: Env) -> None:
    """C11: a FeatureSpec this SDK cannot reproduce; a manifest signature the model lacks."""
    spec = json.loads((FIXTURE / MANIFEST_FILE).read_text())["feature_spec"]
    spec["tokenizer"]["split"] = "whitespace-v9"
    with pytest.raises(publish.PublishError):  # the publisher refuses it too
        v1.publish(2, feature_spec=spec)
    manifest = json.loads((FIXTURE / MANIFEST_FILE).read_text())
    manifest.update(model_version=2, feature_spec=spec)

    def incompatible(r: _Repo, md: Any) -> None:
        announce(2)(r, md)
        for name, data in ((MANIFEST_FILE, json.dumps(manifest).encode()), (MODEL_FILE, MODEL)):
            path = updates.bundle_target(2, name)
            md.signed.targets[path] = r.add_target(path, data)

    resign(v1.repo, v1.keys, incompatible)
    assert isinstance(v1.rejected(IncompatibleModelError), IncompatibleModelError)
    sigs = json.loads((FIXTURE / MANIFEST_FILE).read_text())["signatures"]
    sigs["rank"]["inputs"]["history"]["shape"] = [1, 21, 58]
    v1.publish(3, signatures=sigs)
    v1.rejected(IncompatibleModelError)


DEEP = "[" * 100 + "]" * 100


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace('"history_len"', '"history_len": 20, "history_len"', 1),
        lambda t: t.replace('"tolerance": ', '"tolerance": NaN, "x": ', 1),
        lambda t: t.replace('"tolerance": ', '"tolerance": 1e400, "x": ', 1),
        lambda t: t.replace(
            '"metrics": {', '"metrics": {"deep": ' + "[" * 100 + "]" * 100 + ", ", 1
        ),
        lambda t: t.replace('"file": "model.tflite"', '"file": "../../evil"', 1),
        lambda t: t.replace('"file": "model.tflite"', '"file": "/etc/evil"', 1),
    ],
    ids=["duplicate-key", "nan", "1e400", "deep-nesting", "dotdot", "absolute"],
)
def test_c14_hostile_manifest(v1: Env, edit: Callable[[str], str]) -> None:
    """C14: signed but not strict JSON / not an allowed file name; nothing written outside."""
    folder = make_bundle(v1.tmp, 2)
    text = json.dumps(json.loads((folder / MANIFEST_FILE).read_text()))
    edited = edit(text)
    assert edited != text
    sign_release(v1, 2, edited.encode())  # the publisher itself refuses to publish it
    v1.rejected(ManifestFormatError)
    assert not (v1.tmp / "evil").exists()


def test_c14_non_utf8_manifest(v1: Env) -> None:
    """C14: signed bytes that are not UTF-8 (the publisher cannot even read them)."""
    text = (
        (FIXTURE / MANIFEST_FILE).read_bytes().replace(b'"model_version": 1', b'"model_version": 2')
    )
    bad = text.replace(b'"dynamic"', b'"dyn\xffamic"', 1)
    assert bad != text
    sign_release(v1, 2, bad)
    v1.rejected(ManifestFormatError)


STEPS = [
    "refreshed",
    "downloaded",
    "verified",
    "validated",
    "staged",
    "renamed",
    "dir-fsynced",
    "pointer-temp",
    "pointer-renamed",
    "pointer-swapped",
]


@pytest.mark.parametrize("step", STEPS)
def test_b3_sigkill_at_each_install_step(v1: Env, step: str) -> None:
    """B3: a forked installer SIGKILLs itself at ``step``; after restart the active model is
    the complete old one or the complete new one, and no temp file is left."""
    v1.publish(2)

    def die(name: str) -> None:
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()
    if pid == 0:  # the child: install, dying at the step
        try:
            v1.install(validator=accept, on_step=die)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    active = updates.verified_active_model(v1.home)  # the restart
    assert_clean(v1.home)
    new = STEPS.index(step) >= STEPS.index("pointer-renamed")
    assert active == v1.home / "models" / ("2" if new else "1")
    if not new:
        assert state(v1.home) == v1.before
    result = v1.install(validator=accept)  # and a retry completes
    assert (result is None) == new
    assert read_pointer(v1.home)["version"] == 2
