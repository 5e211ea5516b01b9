"""Feed signals: what the publisher adds to each article of a feed, and how the shipped
model uses them (:mod:`edgerec.features.signals` on the device).

* **vector**: the article's text vector from the feed encoder (all-mpnet-base-v2 when the
  ``[mpnet]`` extra is installed, else all-MiniLM-L6-v2), int8 with one scale per vector
  (:func:`int8_codes`): ``dim`` bytes per article. The device averages the reader's last
  reads' vectors and takes the cosine with each candidate's: the zero-shot ranking,
  computed on the device from the feed.
* **prior**: the article's click prior, a log-odds: a logistic regression of "clicked"
  on the article's text vector and its category and subcategory (one-hot), fitted on the
  impressions of the training users only (:func:`fit_prior`). It says what readers in
  general do with the article; nothing about one reader.
* **head**: the shipped score ``a * student + b * (cos - c) + d * (prior - e)``
  (:class:`edgerec.model.manifest.FeedHead`). The student is the hashed-features LSTM,
  trained as before; the prior's regularization and the weights ``a, b, d`` are chosen on
  the validation impressions (:mod:`edgerec.trainer.data.validation_impressions`) by mean
  per-impression AUC, never on the evaluation file. A missing signal adds 0, so a feed
  without signals is ranked by the student alone.

Example:
    >>> int8_codes(np.array([0.5, -1.0, 0.25], np.float32)).tolist()
    [64, -127, 32]
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgerec._fs import atomic_write
from edgerec.errors import ManifestFormatError
from edgerec.features.signals import MAX_PRIOR, FeedSignals, encode_vector
from edgerec.model.manifest import FeedHead

from ..data.mind import Impression
from ..evaluation.metrics import auc

__all__ = [
    "FeedModel",
    "HeadChoice",
    "apply_head",
    "choose_head",
    "cosines_and_priors",
    "fit_prior",
    "head_scores",
    "int8_codes",
    "publish_feed",
]

FloatArray = npt.NDArray[np.float32]
PRIOR_C: Final = (0.1, 1.0, 10.0)  # inverse regularization strengths tried
WEIGHTS: Final = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # head weights tried, in units of 1 / std
FEED_FOLDER: Final = "feed"  # in the run folder: what the publisher needs


def int8_codes(vector: FloatArray) -> npt.NDArray[np.int8]:
    """One vector as int8 codes with its own scale (only the direction is used)."""
    peak = float(np.abs(vector).max())
    if peak == 0.0:
        return np.zeros(len(vector), np.int8)
    return np.round(vector / peak * 127.0).astype(np.int8)


def _onehot(values: Sequence[str], vocab: Sequence[str]) -> FloatArray:
    index = {v: i for i, v in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)), np.float32)
    for row, v in enumerate(values):
        if v in index:
            out[row, index[v]] = 1.0
    return out


@dataclass
class FeedModel:
    """The publisher's side of the feed signals: the encoder's name and vectors, the
    prior's linear weights over ``[vector, category one-hot, subcategory one-hot]``."""

    encoder: str  # "" when there is no encoder (the prior then reads categories only)
    dim: int
    categories: list[str]
    subcategories: list[str]
    coef: FloatArray  # (dim + C + S,)
    intercept: float
    c: float  # the regularization chosen
    head: FeedHead | None = None  # the shipped head, once chosen
    metrics: dict[str, Any] | None = None  # the shipped bundle's figures with signals
    quantization: str = ""  # the int8 variant they were measured on

    def signals(self) -> FeedSignals:
        return FeedSignals(vector_dim=self.dim, encoder=self.encoder, prior=True)

    def _inputs(
        self, articles: Sequence[Mapping[str, Any]], vectors: FloatArray | None
    ) -> FloatArray:
        parts = []
        if self.dim:
            assert vectors is not None
            parts.append(vectors)
        parts.append(_onehot([str(a.get("category") or "") for a in articles], self.categories))
        parts.append(
            _onehot([str(a.get("subcategory") or "") for a in articles], self.subcategories)
        )
        return np.concatenate(parts, axis=1)

    def priors(
        self, articles: Sequence[Mapping[str, Any]], vectors: FloatArray | None
    ) -> npt.NDArray[np.float64]:
        """(N,) log-odds of each article; ``vectors`` (N, dim) when there is an encoder."""
        x = self._inputs(articles, vectors).astype(np.float64)
        return x @ self.coef.astype(np.float64) + self.intercept

    def feed_fields(
        self, articles: Sequence[Mapping[str, Any]], vectors: FloatArray | None
    ) -> list[dict[str, Any]]:
        """What the publisher adds to each article: ``{"vector": base64, "prior": x}``."""
        priors = np.clip(self.priors(articles, vectors), -MAX_PRIOR, MAX_PRIOR)
        out = []
        for i in range(len(articles)):
            fields: dict[str, Any] = {"prior": round(float(priors[i]), 4)}
            if self.dim and vectors is not None and np.any(vectors[i]):
                fields["vector"] = encode_vector(int8_codes(vectors[i]))
            out.append(fields)
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "encoder": self.encoder,
            "dim": self.dim,
            "categories": self.categories,
            "subcategories": self.subcategories,
            "coef": [float(x) for x in self.coef],
            "intercept": self.intercept,
            "c": self.c,
            "head": None if self.head is None else self.head.to_dict(),
            "metrics": self.metrics,
            "quantization": self.quantization,
        }
        atomic_write(folder / "feed_model.json", json.dumps(meta).encode() + b"\n")

    @classmethod
    def load(cls, folder: Path) -> FeedModel:
        meta = json.loads((folder / "feed_model.json").read_text(encoding="utf-8"))
        return cls(
            meta["encoder"],
            int(meta["dim"]),
            list(meta["categories"]),
            list(meta["subcategories"]),
            np.asarray(meta["coef"], np.float32),
            float(meta["intercept"]),
            float(meta["c"]),
            None if meta.get("head") is None else FeedHead.from_dict(meta["head"]),
            meta.get("metrics"),
            str(meta.get("quantization", "")),
        )


def fit_prior(
    train: Sequence[tuple[str, int]],
    articles: Mapping[str, Mapping[str, Any]],
    vectors: Mapping[str, FloatArray] | None,
    *,
    encoder: str,
    c: float,
    seed: int,
) -> FeedModel:
    """The click prior fitted on ``train``: (article id, clicked) of the training users'
    impressions (known articles only)."""
    from sklearn.linear_model import LogisticRegression

    dim = len(next(iter(vectors.values()))) if vectors else 0
    categories = sorted({str(a.get("category") or "") for a in articles.values()} - {""})
    subcategories = sorted({str(a.get("subcategory") or "") for a in articles.values()} - {""})
    model = FeedModel(
        encoder if dim else "",
        dim,
        categories,
        subcategories,
        np.zeros(0, np.float32),
        0.0,
        c,
    )
    ids = [i for i, _ in train]
    y = np.array([label for _, label in train])
    vecs = np.stack([vectors[i] for i in ids]) if vectors else None
    x = model._inputs([articles[i] for i in ids], vecs)
    if len(set(y.tolist())) < 2:  # nothing to learn: a flat prior
        model.coef = np.zeros(x.shape[1], np.float32)
        return model
    fit = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)
    model.coef = fit.coef_[0].astype(np.float32)
    model.intercept = float(fit.intercept_[0])
    return model


@dataclass(frozen=True)
class HeadChoice:
    """The chosen head, the validation AUC of every combination tried, and the winner's
    (its mean, and per validation impression: what pairs two runs' choices)."""

    head: FeedHead
    validation_auc: float
    tried: list[dict[str, float]]
    per_impression: list[float]


def _cosines(
    impressions: Sequence[Impression], vectors: Mapping[str, FloatArray], history_len: int
) -> list[npt.NDArray[np.float64]]:
    """Per impression, each candidate's cosine with the mean of the unit vectors of the
    last ``history_len`` reads (int8 codes), as the device computes it; NaN where the
    device would have none."""
    out = []
    for imp in impressions:
        last = imp.history[-history_len:]
        hist = [int8_codes(vectors[h]).astype(np.float64) for h in last if h in vectors]
        hist = [h / np.linalg.norm(h) for h in hist if np.any(h)]
        cands = [
            int8_codes(vectors[c]).astype(np.float64) if c in vectors else None
            for c in imp.candidates
        ]
        if not hist:
            out.append(np.full(len(cands), np.nan))
            continue
        user = np.mean(hist, axis=0)
        user /= np.linalg.norm(user)
        out.append(
            np.array(
                [
                    np.nan if c is None or not np.any(c) else c @ user / np.linalg.norm(c)
                    for c in cands
                ]
            )
        )
    return out


def head_scores(
    head: FeedHead,
    model: npt.NDArray[np.float64],
    cos: npt.NDArray[np.float64] | None,
    prior: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.float64]:
    """The device's formula (:meth:`edgerec.ranking.Ranker`): a missing (NaN) signal adds 0."""
    score = head.model * np.asarray(model, np.float64)
    if cos is not None and head.vector:
        score = score + head.vector * np.where(np.isnan(cos), 0.0, cos - head.vector_mean)
    if prior is not None and head.prior:
        score = score + head.prior * np.where(np.isnan(prior), 0.0, prior - head.prior_mean)
    return score


def cosines_and_priors(
    impressions: Sequence[Impression],
    vectors: Mapping[str, FloatArray] | None,
    priors: Mapping[str, float],
    history_len: int,
) -> tuple[list[npt.NDArray[np.float64]] | None, list[npt.NDArray[np.float64]]]:
    """The two signals per impression as the device computes them (its model averages
    the last ``history_len`` reads): cosines (None without an encoder) and priors."""
    cos = _cosines(impressions, vectors, history_len) if vectors else None
    prior = [np.array([priors.get(c, np.nan) for c in imp.candidates]) for imp in impressions]
    return cos, prior


def choose_head(
    validation: Sequence[Impression],
    model_scores: Sequence[npt.NDArray[np.float64]] | None,
    cos: Sequence[npt.NDArray[np.float64]] | None,
    prior: Sequence[npt.NDArray[np.float64]] | None,
) -> HeadChoice:
    """The head maximizing mean per-impression AUC on ``validation`` over a grid of
    weights, each in units of its term's standard deviation over the validation
    candidates; ties go to the first (smaller) weights. A term given as None is left out
    (weight 0): without ``model_scores`` the head ranks by the signals alone."""
    labels = [np.asarray(imp.labels) for imp in validation]
    n = len(validation)

    def spread(parts: Sequence[npt.NDArray[np.float64]] | None) -> tuple[float, float]:
        if parts is None or not len(parts):
            return 0.0, 1.0
        flat = np.concatenate(list(parts))
        flat = flat[~np.isnan(flat)]
        if not len(flat):
            return 0.0, 1.0
        return float(flat.mean()), float(flat.std()) or 1.0

    _, model_sd = spread(model_scores)
    cos_mean, cos_sd = spread(cos)
    prior_mean, prior_sd = spread(prior)
    zeros = [np.zeros(len(y)) for y in labels]
    tried = []
    best: tuple[float, FeedHead, list[float]] | None = None
    grid_v = WEIGHTS if cos is not None else (0.0,)
    grid_p = WEIGHTS if prior is not None else (0.0,)
    for wv, wp in itertools.product(grid_v, grid_p):
        if model_scores is None and wv == wp == 0.0:
            continue
        head = FeedHead(
            model=round(1.0 / model_sd, 6) if model_scores is not None else 0.0,
            vector=round(wv / cos_sd, 6),
            vector_mean=round(cos_mean, 6),
            prior=round(wp / prior_sd, 6),
            prior_mean=round(prior_mean, 6),
        )
        if model_scores is not None and not _shippable(head):
            continue  # a weight the device's manifest parser would refuse
        aucs = [
            auc(
                labels[i],
                head_scores(
                    head,
                    zeros[i] if model_scores is None else model_scores[i],
                    None if cos is None else cos[i],
                    None if prior is None else prior[i],
                ),
            )
            for i in range(n)
        ]
        value = float(np.nanmean(aucs)) if aucs else float("nan")
        tried.append({"vector": wv, "prior": wp, "validation_auc": round(value, 4)})
        if best is None or value > best[0] + 1e-9:
            best = (value, head, aucs)
    assert best is not None
    return HeadChoice(best[1], round(best[0], 4), tried, [round(a, 5) for a in best[2]])


def _shippable(head: FeedHead) -> bool:
    try:
        FeedHead.from_dict(head.to_dict())
    except ManifestFormatError:
        return False
    return True


def apply_head(
    head: FeedHead,
    model_scores: Sequence[npt.NDArray[np.float64]] | None,
    cos: Sequence[npt.NDArray[np.float64]] | None,
    prior: Sequence[npt.NDArray[np.float64]] | None,
    sizes: Sequence[int],
) -> list[npt.NDArray[np.float64]]:
    """:func:`head_scores` per impression (``sizes``: candidates per impression)."""
    return [
        head_scores(
            head,
            np.zeros(n) if model_scores is None else model_scores[i],
            None if cos is None else cos[i],
            None if prior is None else prior[i],
        )
        for i, n in enumerate(sizes)
    ]


def publish_feed(
    run: Path, articles: Sequence[Mapping[str, Any]], cache: Path
) -> list[dict[str, Any]]:
    """The publisher's side: ``articles`` with the feed signals of the pipeline run ``run``
    (its ``feed/``) added: ``prior`` for every article, ``vector`` when the run has an
    encoder (encoded with it, through the vector cache in ``cache``).

    Raises:
        DataError: ``run`` has no feed model, or an article has no string ``id``.
        EmbeddingsUnavailable: the run's encoder is not installed and the cache lacks some.
    """
    from ..data.embeddings import MPNET_NAME, cached_mpnet_vectors, cached_vectors
    from ..errors import DataError

    try:
        model = FeedModel.load(run / FEED_FOLDER)
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{run}: no feed model (run the pipeline with feed_signals on)") from None
    by_id: dict[str, Mapping[str, Any]] = {}
    for i, article in enumerate(articles):
        aid = article.get("id") if isinstance(article, Mapping) else None
        if not isinstance(aid, str) or not aid:
            raise DataError(f"article {i + 1}: no string 'id'")
        by_id[aid] = article
    vectors = None
    if model.dim:
        encode = cached_mpnet_vectors if model.encoder == MPNET_NAME else cached_vectors
        table = encode(by_id, cache)
        vectors = np.stack([table[a["id"]] for a in articles]) if articles else None
    fields = model.feed_fields(list(articles), vectors) if articles else []
    return [{**a, **f} for a, f in zip(articles, fields, strict=True)]
