"""edgerec.updates against a real repository (edgerec.trainer.publish) served over loopback
by a ThreadingHTTPServer that can turn hostile: reliability cases B3, B4, B6 and C1-C14.

Every rejected update must raise its typed error and leave the active pointer and the
installed bundles byte-for-byte unchanged, with no staging leftovers. New bundle versions
are the SYNTHETIC fixture with its manifest edited (no TensorFlow needed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, Timestamp

from edgerec import updates
from edgerec._validate import Rejected, _Flatbuffer, check_ops, operator_codes
from edgerec.errors import (
    DownloadTooLargeError,
    ExpiredMetadataError,
    IncompatibleModelError,
    ManifestFormatError,
    ManifestMismatchError,
    ModelFormatError,
    ModelValidationError,
    SignatureError,
    UntrustedKeyError,
    UpdateError,
    UpdateRejectedError,
    UpdateStorageError,
    UpdateTimeoutError,
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
    Handler,
    Server,
    accept,
    assert_clean,
    make_bundle,
    resign,
    state,
)

# --- happy path, rollback, startup ---------------------------------------------------------


def test_install_replace_rollback(env: Env) -> None:
    first = env.install()  # the real validation child
    assert first is not None and first.version == 1 and first.previous is None
    assert first.validation["golden_max_diff"] <= 1e-3
    assert read_pointer(env.home) == {"version": 1}
    env.publish(2)
    second = env.install()
    assert second is not None and (second.version, second.previous) == (2, 1)
    assert read_pointer(env.home) == {"version": 2, "previous": 1}
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


def test_a_big_host_does_not_fail_the_memory_budget(env: Env) -> None:
    """The child measures its own peak memory, not the host's: ``ru_maxrss`` survives exec,
    so a host above the budget (a long-running app) used to have every update rejected."""
    ballast = bytearray(300 * 1024 * 1024)  # above the default 200 MB budget
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))  # resident, not just mapped
    result = env.install()
    assert result is not None and result.validation["max_rss_kb"] < 200 * 1024
    del ballast


def test_no_trusted_root_is_an_error(env: Env) -> None:
    with pytest.raises(UpdateError, match="trusted root"):
        updates.check_for_update(env.home, env.server.url)


def test_startup_falls_back_from_a_damaged_active_model(v1: Env) -> None:
    """B4: the active bundle no longer matches its manifest (a lost write, a bad sector)."""
    v1.publish(2)
    v1.install(validator=accept)
    model = v1.home / "models" / "2" / MODEL_FILE
    model.write_bytes(model.read_bytes()[:1000])
    assert updates.verified_active_model(v1.home) == v1.home / "models" / "1"
    assert read_pointer(v1.home) == {"version": 1, "rejected": 2}
    (v1.home / "models" / "1" / MANIFEST_FILE).write_text("{")
    with pytest.raises(ModelFormatError):
        updates.verified_active_model(v1.home)


def test_startup_recovers_from_an_unreadable_pointer(v1: Env) -> None:
    """B4: active.json itself damaged: the newest installed bundle that verifies."""
    v1.publish(2)
    v1.install(validator=accept)
    (v1.home / "models" / "active.json").write_bytes(b"\x00garbage")
    assert updates.verified_active_model(v1.home) == v1.home / "models" / "2"
    assert read_pointer(v1.home) == {"version": 2}
    assert updates.verified_active_model(v1.tmp / "empty-home") is None


def test_disk_full_while_staging(v1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """B6 (simulated: fsync of a staged file fails with ENOSPC), then a retry succeeds."""
    v1.publish(2)

    def full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(updates, "_fsync_file", full)
    v1.rejected(UpdateStorageError, validator=accept)
    monkeypatch.undo()
    assert v1.install(validator=accept) is not None


# --- C1-C6: TUF metadata -----------------------------------------------------------------------


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_unsigned_metadata(v1: Env) -> None:
    """C1."""
    v1.publish(2)
    _edit_json(v1.repo / "metadata" / "timestamp.json", lambda d: d.update(signatures=[]))
    assert not isinstance(v1.rejected(SignatureError), UntrustedKeyError)


def test_untrusted_key(v1: Env) -> None:
    """C2: validly signed, by a key the device does not trust."""
    v1.publish(2)
    path = v1.repo / "metadata" / "timestamp.json"
    md = Metadata[Timestamp].from_file(str(path))
    md.sign(CryptoSigner.generate_ed25519(), append=False)
    md.to_file(str(path))
    v1.rejected(UntrustedKeyError)


def test_threshold_two_of_three(tmp_path: Path, keys: Path) -> None:
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


def test_metadata_rollback(v1: Env) -> None:
    """C4 (TUF): the repository is replaced by an older, validly signed copy."""
    old = v1.tmp / "old-metadata"
    shutil.copytree(v1.repo / "metadata", old)
    v1.publish(2)
    v1.install(validator=accept)
    shutil.rmtree(v1.repo / "metadata")
    shutil.copytree(old, v1.repo / "metadata")
    v1.rejected(VersionRollbackError)


def _announce(version: int) -> Callable[[_Repo, Any], None]:
    def edit(r: _Repo, md: Any) -> None:
        latest = json.dumps({"model_version": version}).encode()
        md.signed.targets[updates.LATEST_TARGET] = r.add_target(updates.LATEST_TARGET, latest)

    return edit


def test_model_version_rollback_and_same_version_other_model(v1: Env) -> None:
    """C4 (SDK): a signed release announcing an older model, or another model as model 2."""
    v1.publish(2)
    v1.install(validator=accept)
    resign(v1.repo, v1.keys, _announce(1))
    v1.rejected(VersionRollbackError)

    def other_model(r: _Repo, md: Any) -> None:
        _announce(2)(r, md)
        path = updates.bundle_target(2, MODEL_FILE)
        md.signed.targets[path] = r.add_target(path, MODEL[:-1] + b"\x00")

    resign(v1.repo, v1.keys, other_model)
    v1.rejected(VersionRollbackError)


def test_expired_metadata_freeze(v1: Env) -> None:
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


def test_root_key_rotation(v1: Env) -> None:
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


# --- C7-C9: files and transport -------------------------------------------------------------------


def _target_file(repo: Path, version: int, name: str) -> Path:
    return next((repo / "targets" / "bundles" / str(version)).glob(f"*.{name}"))


def test_mix_and_match(v1: Env) -> None:
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


def _serve_model(mode: str) -> Callable[[Handler], bool]:
    def hostile(h: Handler) -> bool:
        if not h.path.endswith(MODEL_FILE):
            return False
        h.send_response(200)
        h.end_headers()
        try:
            if mode == "oversized":
                h.wfile.write(MODEL + b"x" * 1000)
            elif mode == "endless":
                for _ in range(10_000):
                    h.wfile.write(b"x" * 65536)
            elif mode == "slow":
                for byte in MODEL[:100]:
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                    time.sleep(0.2)
            elif mode == "stall":
                h.wfile.write(MODEL[:10])
                h.wfile.flush()
                time.sleep(5)
        except OSError:
            pass  # the client hung up: what it should do
        return True

    return hostile


@pytest.mark.parametrize("mode", ["oversized", "endless"])
def test_download_over_the_signed_length(v1: Env, mode: str) -> None:
    """C8: aborted at length + 1 bytes."""
    v1.publish(2)
    v1.server.hostile(_serve_model(mode))
    v1.rejected(DownloadTooLargeError)


def test_signed_length_over_the_sdk_cap(v1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """C8: a model or a manifest whose signed length is over the SDK's cap: refused before
    downloading."""
    v1.publish(2)
    requested: list[str] = []
    v1.server.hostile(lambda h: requested.append(h.path) or False)
    v1.rejected(DownloadTooLargeError, max_bytes=len(MODEL) - 1)
    monkeypatch.setattr(updates, "MAX_MANIFEST_BYTES", 1000)
    v1.rejected(DownloadTooLargeError)
    assert requested and not [path for path in requested if "/bundles/2/" in path]


def test_server_down_or_missing_files(v1: Env) -> None:
    """Transport failures are UpdateError (retry later), never a raw exception."""
    v1.server.hostile(lambda h: h.send_error(404) is None)
    with pytest.raises(UpdateError) as info:
        v1.install()
    assert not isinstance(info.value, UpdateRejectedError)
    v1.server.close()
    with pytest.raises(UpdateError):
        v1.install()
    assert state(v1.home) == v1.before


@pytest.mark.parametrize("mode", ["slow", "stall"])
def test_slow_retrieval_hits_the_deadline(v1: Env, mode: str) -> None:
    """C9: one byte every 0.2 s, or a stalled connection; typed error within the deadline."""
    v1.publish(2)
    v1.server.hostile(_serve_model(mode))
    start = time.monotonic()
    v1.rejected(UpdateTimeoutError, deadline_s=1.5)
    assert time.monotonic() - start < 4.0


# --- C10-C14: the bundle itself ---------------------------------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("name", "model", "errors"),
    [
        ("identifier", MODEL[:4] + b"XXXX" + MODEL[8:], ModelFormatError),
        ("header-only", b"\x18\x00\x00\x00TFL3" + b"\x00" * 24, ModelFormatError),
        ("truncated", MODEL[: len(MODEL) // 2], ModelFormatError),
        ("root-offset", b"\xff\xff\xff\x7f" + MODEL[4:], ModelFormatError),
        ("bit-flips", _flip(_flip(MODEL, len(MODEL) // 3), len(MODEL) // 2), UpdateRejectedError),
    ],
)
def test_malformed_model_is_never_activated(
    v1: Env, name: str, model: bytes, errors: type[Exception]
) -> None:
    """C10: signed, matching its manifest, and malformed; the host survives."""
    v1.publish(2, model=model)
    v1.rejected(errors)


def test_random_mutations_never_escape_the_child(tmp_path: Path) -> None:
    """C10 fuzz (seeded, small): 16 random byte changes per model; the child either passes
    it (a weight changed within the golden tolerance) or the host gets a typed rejection."""
    import random

    rng = random.Random(7)
    outcomes = set()
    for i in range(6):
        data = bytearray(MODEL)
        for _ in range(16):
            data[rng.randrange(8, len(data))] = rng.randrange(256)
        folder = make_bundle(tmp_path, 2, model=bytes(data))
        try:
            updates.validate_in_child(folder, updates.Limits(wall_seconds=20))
            outcomes.add("passed")
        except UpdateRejectedError as exc:
            outcomes.add(type(exc).__name__)
        assert folder.is_dir(), i
    assert outcomes - {"passed"}, "no mutation was caught: the test proves nothing"


def test_a_crashing_validation_child_is_a_format_error(tmp_path: Path) -> None:
    """C10: a child killed by SIGSEGV, or running past its wall clock."""
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    with pytest.raises(ModelFormatError, match="SIGSEGV"):
        updates.validate_in_child(tmp_path, _command=crash)
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(ModelValidationError, match="wall-clock"):
        updates.validate_in_child(tmp_path, updates.Limits(wall_seconds=0.5), _command=hang)
    spin = [
        sys.executable,
        "-c",
        "import resource as r; r.setrlimit(r.RLIMIT_CPU, (1, 1))\nwhile 1: pass",
    ]
    with pytest.raises(ModelValidationError, match="CPU"):
        updates.validate_in_child(tmp_path, _command=spin)


def test_incompatible_feature_spec_and_signature(v1: Env) -> None:
    """C11: a FeatureSpec this SDK cannot reproduce; a manifest signature the model lacks."""
    spec = json.loads((FIXTURE / MANIFEST_FILE).read_text())["feature_spec"]
    spec["tokenizer"]["split"] = "whitespace-v9"
    with pytest.raises(publish.PublishError):  # the publisher refuses it too
        v1.publish(2, feature_spec=spec)
    manifest = json.loads((FIXTURE / MANIFEST_FILE).read_text())
    manifest.update(model_version=2, feature_spec=spec)

    def incompatible(r: _Repo, md: Any) -> None:
        _announce(2)(r, md)
        for name, data in ((MANIFEST_FILE, json.dumps(manifest).encode()), (MODEL_FILE, MODEL)):
            path = updates.bundle_target(2, name)
            md.signed.targets[path] = r.add_target(path, data)

    resign(v1.repo, v1.keys, incompatible)
    assert isinstance(v1.rejected(IncompatibleModelError), IncompatibleModelError)
    sigs = json.loads((FIXTURE / MANIFEST_FILE).read_text())["signatures"]
    sigs["rank"]["inputs"]["history"]["shape"] = [1, 21, 58]
    v1.publish(3, signatures=sigs)
    v1.rejected(IncompatibleModelError)


def _with_op_code(model: bytes, code: int) -> bytes:
    """The model with its first operator code's builtin_code field set to ``code``."""
    fb = _Flatbuffer(model)
    codes_field = fb.field(fb.indirect(0), 1)
    assert codes_field is not None
    start, _ = fb.vector(codes_field)
    table = fb.indirect(start)
    pos = fb.field(table, 3)
    assert pos is not None, "the fixture stores builtin_code explicitly"
    out = bytearray(model)
    out[pos : pos + 4] = code.to_bytes(4, "little")
    deprecated = fb.field(table, 0)
    if deprecated is not None:
        out[deprecated] = min(code, 127)
    return bytes(out)


def test_op_allow_list() -> None:
    """C13 on crafted op lists (the fixture has built-ins only)."""
    assert all(code != 32 and custom is None for code, custom in operator_codes(MODEL))
    check_ops(operator_codes(MODEL))
    for codes in (
        [(32, "FlexAddV2")],
        [(0, None), (32, "MyCustomOp")],
        [(32, None)],
        [(9999, None)],
    ):
        with pytest.raises(Rejected) as info:
            check_ops(codes)
        assert info.value.kind == "incompatible"


def test_custom_op_model_is_rejected(v1: Env) -> None:
    """C13: the fixture with its first op turned into CUSTOM, end to end."""
    model = _with_op_code(MODEL, 32)
    assert operator_codes(model)[0][0] == 32
    v1.publish(2, model=model)
    v1.rejected(IncompatibleModelError)


def test_golden_mismatch_and_latency_budget(v1: Env) -> None:
    """C12: expected scores off by 1; a latency budget no model meets."""
    golden = json.loads((FIXTURE / MANIFEST_FILE).read_text())["golden"]
    golden[0]["scores"] = [s + 1.0 for s in golden[0]["scores"]]
    v1.publish(2, golden=golden)
    v1.rejected(ModelValidationError)
    v1.publish(3)
    v1.rejected(ModelValidationError, limits=updates.Limits(latency_budget_ms=0))
    v1.rejected(ModelValidationError, limits=updates.Limits(memory_budget_mb=1))


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
def test_hostile_manifest(v1: Env, edit: Callable[[str], str]) -> None:
    """C14: signed but not strict JSON / not an allowed file name; nothing written outside."""
    folder = make_bundle(v1.tmp, 2)
    text = json.dumps(json.loads((folder / MANIFEST_FILE).read_text()))
    edited = edit(text)
    assert edited != text
    _sign_release(v1, 2, edited.encode())  # the publisher itself refuses to publish it
    v1.rejected(ManifestFormatError)
    assert not (v1.tmp / "evil").exists()


def _sign_release(env: Env, version: int, manifest: bytes) -> None:
    """A validly signed release whose manifest is ``manifest`` (with the fixture's model)."""

    def edit(r: _Repo, md: Any) -> None:
        _announce(version)(r, md)
        for name, data in ((MANIFEST_FILE, manifest), (MODEL_FILE, MODEL)):
            path = updates.bundle_target(version, name)
            md.signed.targets[path] = r.add_target(path, data)

    resign(env.repo, env.keys, edit)


def test_non_utf8_manifest(v1: Env) -> None:
    """C14: signed bytes that are not UTF-8 (the publisher cannot even read them)."""
    text = (
        (FIXTURE / MANIFEST_FILE).read_bytes().replace(b'"model_version": 1', b'"model_version": 2')
    )
    bad = text.replace(b'"dynamic"', b'"dyn\xffamic"', 1)
    assert bad != text
    _sign_release(v1, 2, bad)
    v1.rejected(ManifestFormatError)


# --- B3: SIGKILL at each step --------------------------------------------------------------------

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
def test_sigkill_at_each_install_step(v1: Env, step: str) -> None:
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
