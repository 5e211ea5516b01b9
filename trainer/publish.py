"""Publishing bundles as a TUF repository (python-tuf metadata API, Ed25519 keys through
securesystemslib). No TensorFlow here.

Example:
    >>> from edgerec.trainer import publish
    >>> publish.keygen("keys")  # doctest: +SKIP
    >>> publish.publish("repo", "run/bundle", "keys")  # doctest: +SKIP
    >>> # serve "repo" with any static HTTP server; devices pin repo/metadata/1.root.json

Where each role's key lives (TUF's own advice for its roles):

* ``root`` -- offline (an air-gapped machine or a hardware token); used only to create the
  repository and to rotate keys. Its compromise is the one a device cannot recover from
  without a new pinned root, so give it a threshold of 2 or more keys in production.
* ``targets`` -- with the release engineer (offline or a signing service); signs which
  bundles exist, with their lengths and sha256.
* ``snapshot`` -- on the publishing machine; signs the consistent set of targets metadata.
* ``timestamp`` -- online, on the machine that runs ``refresh-timestamp`` on a schedule (its
  expiry is short: a device refuses stale metadata, which is what stops a freeze attack).

Key files (``keygen``): ``<keys>/<role>.key`` (PEM PKCS#8 private key, mode 0600) and
``<keys>/<role>.pub`` (the public key as TUF JSON); more keys for one role are
``<role>-2.key``, ``<role>-3.key``, ... A role's signers are every ``<role>*.key`` present.

Repository layout (consistent snapshots: versioned metadata, hash-prefixed targets, so a
client always reads one consistent state even while the publisher writes)::

    repo/metadata/1.root.json, root.json (the newest root, to pin on devices)
    repo/metadata/timestamp.json, <N>.snapshot.json, <N>.targets.json
    repo/targets/bundles/<sha256>.latest.json          {"model_version": V}
    repo/targets/bundles/<V>/<sha256>.manifest.json, <sha256>.model.tflite

The timestamp is written last, so a client never sees a snapshot that is not yet there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from edgerec._fs import atomic_write
from edgerec.errors import BundleError
from edgerec.model import MANIFEST_FILE, MODEL_FILE, Bundle
from edgerec.updates import LATEST_TARGET, bundle_target

from .errors import PublishError

__all__ = [
    "DEFAULT_EXPIRY",
    "ROLES",
    "PublishError",
    "keygen",
    "load_signers",
    "publish",
    "refresh_timestamp",
    "rotate_key",
]

ROLES: Final = ("root", "targets", "snapshot", "timestamp")
DEFAULT_EXPIRY: Final = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
_JSON = JSONSerializer(compact=False)


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).replace(microsecond=0)


def _key_names(role: str, count: int) -> list[str]:
    return [role if i == 1 else f"{role}-{i}" for i in range(1, count + 1)]


def keygen(keys_dir: str | Path, roles: Iterable[str] = ROLES, *, count: int = 1) -> list[Path]:
    """Write ``count`` new Ed25519 key pairs per role; the private key files created 0600.

    Raises:
        PublishError: an unknown role, or a key file that already exists (never overwritten).
    """
    folder = Path(keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for role in roles:
        if role not in ROLES:
            raise PublishError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        for name in _key_names(role, count):
            signer = CryptoSigner.generate_ed25519()
            key_path, pub_path = folder / f"{name}.key", folder / f"{name}.pub"
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise PublishError(f"{key_path} exists; not overwriting a key") from None
            with os.fdopen(fd, "wb") as fh:
                fh.write(signer.private_bytes)
            key = signer.public_key
            pub_path.write_text(json.dumps({"keyid": key.keyid, "key": key.to_dict()}, indent=1))
            written.append(key_path)
    return written


def _key_files(keys_dir: Path, role: str, suffix: str) -> list[Path]:
    files = [keys_dir / f"{role}{suffix}", *sorted(keys_dir.glob(f"{role}-*{suffix}"))]
    return [f for f in files if f.is_file()]


def load_signers(keys_dir: str | Path, role: str) -> list[CryptoSigner]:
    """Every private key of ``role`` in ``keys_dir`` as a signer.

    Raises:
        PublishError: none there, or a file that is not an Ed25519 private key.
    """
    signers = []
    for path in _key_files(Path(keys_dir), role, ".key"):
        try:
            private = load_pem_private_key(path.read_bytes(), password=None)
            signers.append(CryptoSigner(private))
        except (ValueError, TypeError):
            raise PublishError(f"{path.name} is not a usable private key") from None
    if not signers:
        raise PublishError(f"no {role} key (.key) in {keys_dir}")
    return signers


def _public_keys(keys_dir: Path, role: str) -> list[SSlibKey]:
    keys = []
    for path in _key_files(keys_dir, role, ".pub"):
        data = json.loads(path.read_text())
        keys.append(SSlibKey.from_dict(data["keyid"], dict(data["key"])))
    if not keys:
        raise PublishError(f"no {role} public key (.pub) in {keys_dir}")
    return keys


def _write(md: Metadata[Any], path: Path) -> None:
    """Atomic write: a static server never serves half a file."""
    atomic_write(path, md.to_bytes(_JSON))


def _sign(md: Metadata[Any], signers: Iterable[CryptoSigner]) -> None:
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)


class _Repo:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = self.path / "metadata"
        self.targets = self.path / "targets"

    def exists(self) -> bool:
        return (self.meta / "1.root.json").is_file()

    def root(self) -> Metadata[Root]:
        newest = max(int(p.name.split(".")[0]) for p in self.meta.glob("*.root.json"))
        return Metadata[Root].from_file(str(self.meta / f"{newest}.root.json"))

    def timestamp(self) -> Metadata[Timestamp] | None:
        path = self.meta / "timestamp.json"
        return Metadata[Timestamp].from_file(str(path)) if path.is_file() else None

    def snapshot(self) -> Metadata[Snapshot] | None:
        ts = self.timestamp()
        if ts is None:
            return None
        version = ts.signed.snapshot_meta.version
        return Metadata[Snapshot].from_file(str(self.meta / f"{version}.snapshot.json"))

    def targets_md(self) -> Metadata[Targets] | None:
        snap = self.snapshot()
        if snap is None:
            return None
        version = snap.signed.meta["targets.json"].version
        return Metadata[Targets].from_file(str(self.meta / f"{version}.targets.json"))

    def write_root(self, md: Metadata[Root]) -> None:
        self.meta.mkdir(parents=True, exist_ok=True)
        _write(md, self.meta / f"{md.signed.version}.root.json")
        _write(md, self.meta / "root.json")

    def add_target(self, path: str, data: bytes) -> TargetFile:
        """Store a target under its hash-prefixed name; its TargetFile."""
        info = TargetFile.from_data(path, data, ["sha256"])
        folder, _, name = path.rpartition("/")
        dest = self.targets / folder / f"{info.hashes['sha256']}.{name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, data)
        return info


def _expiry(expiry: Mapping[str, timedelta] | None, role: str) -> timedelta:
    return (expiry or {}).get(role, DEFAULT_EXPIRY[role])


def _write_chain(
    repo: _Repo,
    targets: Metadata[Targets],
    signers: Mapping[str, list[CryptoSigner]],
    expiry: Mapping[str, timedelta] | None,
    now: datetime,
) -> None:
    """Bump, sign and write targets, then snapshot, then timestamp (last). A role that has
    no metadata yet starts at version 1."""
    if (repo.meta / f"{targets.signed.version}.targets.json").exists():
        targets.signed.version += 1
    targets.signed.expires = now + _expiry(expiry, "targets")
    _sign(targets, signers["targets"])
    _write(targets, repo.meta / f"{targets.signed.version}.targets.json")
    snap = repo.snapshot()
    if snap is None:
        snap = Metadata(Snapshot())
    else:
        snap.signed.version += 1
    snap.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    snap.signed.expires = now + _expiry(expiry, "snapshot")
    _sign(snap, signers["snapshot"])
    _write(snap, repo.meta / f"{snap.signed.version}.snapshot.json")
    ts = repo.timestamp()
    if ts is None:
        ts = Metadata(Timestamp())
    else:
        ts.signed.version += 1
    ts.signed.snapshot_meta = MetaFile(version=snap.signed.version)
    ts.signed.expires = now + _expiry(expiry, "timestamp")
    _sign(ts, signers["timestamp"])
    _write(ts, repo.meta / "timestamp.json")


def _init(
    repo: _Repo,
    keys_dir: Path,
    thresholds: Mapping[str, int] | None,
    expiry: Mapping[str, timedelta] | None,
    now: datetime,
) -> None:
    root = Root(expires=now + _expiry(expiry, "root"), consistent_snapshot=True)
    for role in ROLES:
        keys = _public_keys(keys_dir, role)
        for key in keys:
            root.add_key(key, role)
        threshold = (thresholds or {}).get(role, 1)
        if not 1 <= threshold <= len(keys):
            raise PublishError(f"{role} threshold {threshold} with {len(keys)} key(s)")
        root.roles[role].threshold = threshold
    md = Metadata(root)
    _sign(md, load_signers(keys_dir, "root"))
    repo.write_root(md)


def publish(
    repo_dir: str | Path,
    bundle_dir: str | Path,
    keys_dir: str | Path,
    *,
    thresholds: Mapping[str, int] | None = None,
    expiry: Mapping[str, timedelta] | None = None,
    now: datetime | None = None,
) -> int:
    """Add a bundle to the repository (created on first use) and announce it as latest.

    Args:
        repo_dir: the repository folder a static HTTP server serves.
        bundle_dir: a bundle folder (``model.tflite`` + ``manifest.json``).
        keys_dir: the key files (see the module docstring).
        thresholds: signatures needed per role, used when the repository is created.
        expiry: lifetime per role (defaults: ``DEFAULT_EXPIRY``).
        now: the signing time (tests; default: now, UTC).

    Returns:
        The published model version.

    Raises:
        PublishError: the bundle does not load, is not newer than the latest published,
            or a key is missing.
    """
    repo, keys, at = _Repo(repo_dir), Path(keys_dir), _now(now)
    try:
        bundle = Bundle.load(bundle_dir)
    except BundleError as exc:
        raise PublishError(f"bundle: {exc}") from None
    version = bundle.manifest.model_version
    if not repo.exists():
        _init(repo, keys, thresholds, expiry, at)
    targets = repo.targets_md() or Metadata(Targets())
    latest = targets.signed.targets.get(LATEST_TARGET)
    published = (
        latest.unrecognized_fields.get("custom", {}).get("model_version", 0) if latest else 0
    )
    if version <= published:
        raise PublishError(f"model {version} is not newer than the published {published}")
    manifest = (Path(bundle_dir) / MANIFEST_FILE).read_bytes()
    for name, data in ((MANIFEST_FILE, manifest), (MODEL_FILE, bundle.model)):
        path = bundle_target(version, name)
        targets.signed.targets[path] = repo.add_target(path, data)
    info = repo.add_target(LATEST_TARGET, json.dumps({"model_version": version}).encode())
    info.unrecognized_fields["custom"] = {"model_version": version}
    targets.signed.targets[LATEST_TARGET] = info
    signers = {role: load_signers(keys, role) for role in ("targets", "snapshot", "timestamp")}
    _write_chain(repo, targets, signers, expiry, at)
    return version


def refresh_timestamp(
    repo_dir: str | Path,
    keys_dir: str | Path,
    *,
    expiry: Mapping[str, timedelta] | None = None,
    now: datetime | None = None,
) -> int:
    """Re-sign the timestamp with a new expiry (run on a schedule); its new version.

    Raises:
        PublishError: no repository there, or no timestamp key.
    """
    repo = _Repo(repo_dir)
    ts = repo.timestamp()
    if ts is None:
        raise PublishError(f"no repository in {repo_dir} (publish a bundle first)")
    ts.signed.version += 1
    ts.signed.expires = _now(now) + _expiry(expiry, "timestamp")
    _sign(ts, load_signers(keys_dir, "timestamp"))
    _write(ts, repo.meta / "timestamp.json")
    return ts.signed.version


def rotate_key(
    repo_dir: str | Path,
    keys_dir: str | Path,
    role: str,
    new_keys_dir: str | Path,
    *,
    threshold: int | None = None,
    expiry: Mapping[str, timedelta] | None = None,
    now: datetime | None = None,
) -> int:
    """Replace ``role``'s keys by those in ``new_keys_dir``: a new root version signed by the
    current root keys and (for the root role) the new ones too, so devices can follow the
    chain N -> N+1. Other roles' metadata is then re-signed with the new keys. Afterwards
    move the new key files into ``keys_dir``. The new root version is returned.

    Raises:
        PublishError: an unknown role, no repository, or missing keys.
    """
    if role not in ROLES:
        raise PublishError(f"unknown role {role!r}")
    repo, keys, new_keys, at = _Repo(repo_dir), Path(keys_dir), Path(new_keys_dir), _now(now)
    if not repo.exists():
        raise PublishError(f"no repository in {repo_dir}")
    md = repo.root()
    root = md.signed
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    fresh = _public_keys(new_keys, role)
    for key in fresh:
        root.add_key(key, role)
    root.roles[role].threshold = threshold or min(root.roles[role].threshold, len(fresh))
    root.version += 1
    root.expires = at + _expiry(expiry, "root")
    old_root = load_signers(keys, "root")
    _sign(md, old_root + (load_signers(new_keys, "root") if role == "root" else []))
    repo.write_root(md)
    if role != "root":
        signers = {
            r: load_signers(new_keys if r == role else keys, r)
            for r in ("targets", "snapshot", "timestamp")
        }
        targets = repo.targets_md()
        if targets is not None:
            _write_chain(repo, targets, signers, expiry, at)
    return root.version
