"""Baselines scored on the same evaluation impressions as every model.

Each baseline maps (history ids, candidate ids) to one score per candidate. They need no
TensorFlow; TF-IDF uses scikit-learn. The zero-training semantic baseline (MiniLM
sentence embeddings) lives with the text-embedding extra.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..data.mind import Impression

__all__ = ["Baseline", "CategoryAffinity", "Popularity", "RandomScores", "TfidfCosine"]

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
