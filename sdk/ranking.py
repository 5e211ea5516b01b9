"""The ranker behind :class:`edgerec.Recommender`: the candidate cache, the reader's
cached history vectors, the product rules (filters, freshness, per-source caps, diversity)
and the reasons. It holds no storage and no lock: the Recommender owns both.

Scores. With a history, an article's score is the model's: the dot product of its item
vector with the reader's user vector (``rank`` == ``items`` . ``user``, pinned by the bundle
tests), so a candidate is embedded once per feed and a call costs one matrix-vector
product. With no history (cold start) it is the log-odds of the bundle's cold-start prior
for the article's subcategory, else its category, else the base rate. Freshness, when on,
subtracts ``ln 2 * age / half_life`` (halves the odds every half-life); an article with no
``published_at`` is neither boosted nor penalised, one published in the future counts as
age 0. Cold start turns freshness on with :data:`COLD_START_HALF_LIFE_H` when the caller
gives no half-life.

Feed signals. A bundle whose spec declares them (:mod:`edgerec.features.signals`) scores
``a * model + b * (cos - c) + d * (prior - e)`` with its manifest's ``feed_head``: ``cos``
is the cosine of the candidate's feed vector with the mean of the reader's last reads'
vectors, ``prior`` the candidate's click prior; a signal the candidate (or the whole
history) lacks adds 0, so a feed without signals is ranked by the model alone. Cold start
is unchanged.

Reasons. ``because you read <title>``: the history item whose vector is nearest (cosine)
to the candidate's. ``popular now``: cold start, and the article's prior is above the base
rate. ``new``: freshness was applied and the article is younger than the half-life. A
recommendation may carry no reason when none of these holds.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .errors import EdgerecError, InvalidInputError, InvalidTypeError, ModelFormatError
from .features import FeatureSpec, hashing, parse_time
from .features.values import check_int, check_number
from .model import Bundle, ModelRunner

__all__ = ["COLD_START_HALF_LIFE_H", "MAX_CANDIDATES", "Ranker", "Recommendation"]

MAX_CANDIDATES: Final = 20_000  # per call; more is an InvalidInputError (cache and latency)
CACHE_SIZE: Final = 50_000  # candidate vectors kept; past it, only the current feed is kept
READ_IDS_WINDOW: Final = 1_000  # exclude_read covers the reader's last 1,000 reads
COLD_START_HALF_LIFE_H: Final = 24.0
EMBED_CHUNK: Final = 1_024  # candidates embedded per interpreter call

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One ranked article.

    Attributes:
        id: the candidate's ``id``.
        score: the final score (model or prior, after freshness); higher is better.
        rank: 1 for the first recommendation.
        reasons: short texts for the reader, e.g. ``("because you read Late goal seals
            the title",)``, ``("popular now", "new")``; may be empty.
    """

    id: str
    score: float
    rank: int
    reasons: tuple[str, ...]


@dataclass(slots=True)
class _Candidate:
    # A snapshot of the article (lists copied): any change re-embeds it. Comparing two dicts
    # is one C call, several times cheaper than building a tuple of the spec's fields.
    fingerprint: dict[str, Any]
    slot: int  # its row in Engine._vectors / Engine._units; -1 without a model
    published_s: float | None
    category: str
    subcategory: str
    source: str


@dataclass(slots=True)
class _Read:
    article_id: str
    title: str
    row: npt.NDArray[np.int32]  # (F,)
    feed: FloatArray | None  # (P,) its feed vector at unit length, if it had one
    unit: FloatArray | None = None  # (D,) its item vector, unit length, once computed


@dataclass(slots=True)
class _Scored:
    """One call's candidates after the rules, with their final scores."""

    ids: list[str]  # (N,) the kept candidates' ids
    cands: list[_Candidate]
    slots: npt.NDArray[np.intp]  # (N,)
    scores: npt.NDArray[np.float64]  # (N,)
    personal: bool  # scored by the model (a history), not the cold-start prior
    ages_h: npt.NDArray[np.float64] | None  # (N,) with freshness on
    half_life: float | None
    k: int
    max_per_source: int | None
    diversity: float | None


def _same(fingerprint: dict[str, Any], article: Mapping[str, Any]) -> bool:
    """Whether a cached candidate's snapshot equals the article now (one C call). A value
    whose ``==`` is not a bool (a numpy array) counts as a change: the article is then
    checked afresh and refused with a typed error if it is bad."""
    try:
        return bool(fingerprint == article)
    except Exception:
        return False


def _fold(value: object) -> str:
    return value.casefold() if isinstance(value, str) else ""


def _fold_set(name: str, values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidTypeError(f"{name} must be a collection of strings")
    folded = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidTypeError(f"{name} must hold strings, got {type(value).__name__}")
        folded.append(value.casefold())
    return frozenset(folded)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class Ranker:
    """Ranks for one profile with one model (or none). Not thread-safe: the Recommender
    holds the lock."""

    def __init__(self, bundle: Bundle | None) -> None:
        self.bundle = bundle
        self.runner = ModelRunner(bundle) if bundle is not None else None
        self.spec: FeatureSpec | None = bundle.manifest.spec if bundle is not None else None
        self.history_len = bundle.manifest.history_len if bundle is not None else 0
        prior = bundle.manifest.cold_start_prior if bundle is not None else {}
        self._prior_default = float(prior.get("default", 0.5) or 0.5)
        self._prior = {
            field: {_fold(k): float(v) for k, v in dict(prior.get(field) or {}).items()}
            for field in ("subcategory", "category")
        }
        self._cands: dict[str, _Candidate] = {}
        dim = bundle.manifest.vector_dim if bundle is not None else 0
        self._vectors: FloatArray = np.zeros((0, dim), np.float32)  # (slots, D) item vectors
        self._units: FloatArray = np.zeros((0, dim), np.float32)  # the same, unit length
        self.signals = self.spec.signals if self.spec is not None else None
        self.head = bundle.manifest.feed_head if bundle is not None else None
        feed_dim = self.signals.vector_dim if self.signals is not None else 0
        # (slots, P) int8 codes and (slots,) 1 / their norm: a quarter of float32's memory
        self._feed = np.zeros((0, feed_dim), np.int8)
        self._feed_scale = np.zeros(0, dtype=np.float32)
        self._feed_has = np.zeros(0, dtype=bool)  # (slots,) the candidate had a vector
        self._feed_prior = np.zeros(0, dtype=np.float64)  # (slots,) its prior, NaN: none
        self._free: list[int] = []
        # The last call's validated ids and cache entries: a model in shadow ranking the
        # same call adopts them instead of checking every candidate again (edgerec.shadow).
        self.last_checked: tuple[list[str], list[_Candidate]] | None = None
        self.clear_reader()

    # -- the reader -------------------------------------------------------------------

    def clear_reader(self) -> None:
        """Forget every in-memory trace of the current reader (profile switch, close)."""
        self._reads: list[_Read] = []  # oldest first, the last history_len
        self._read_ids: OrderedDict[str, None] = OrderedDict()
        self._history_units: FloatArray | None = None  # (H, D)
        self._user: FloatArray | None = None  # (D,)
        self._feed_user: FloatArray | None = None  # (P,) mean of the reads' feed vectors

    def load_reader(self, articles: Sequence[Mapping[str, Any]]) -> None:
        """The reader's recent reads, oldest first (decrypted by the caller)."""
        self.clear_reader()
        for article in articles[-READ_IDS_WINDOW:]:
            self._remember_id(str(article.get("id")))
        keep = articles[-self.history_len :] if self.history_len else []
        if self.spec is not None:
            for article in keep:
                try:
                    self._reads.append(self._read(article))
                except EdgerecError:
                    # Stored under an older model's FeatureSpec and refused by this one's
                    # limits: it still counts as read, it just does not shape the vector.
                    continue
        self._refresh_user()

    def prepare_read(self, article: Mapping[str, Any]) -> _Read | None:
        """Featurize a read before it is stored: a bad article fails here, nothing stored.
        None without a model (the history store validates the article itself)."""
        return self._read(article) if self.spec is not None else None

    def add_read(self, article_id: str, read: _Read | None) -> None:
        """A read that was stored: update the cached history and user vector."""
        self._remember_id(article_id)
        if read is None:
            return
        self._reads.append(read)
        del self._reads[: -self.history_len]
        self._refresh_user()

    def stamped(self, article: Mapping[str, Any]) -> Mapping[str, Any]:
        """The article as the history keeps it: with a model that reads feed vectors, its
        vector stamped with the model's encoder (a later model with another encoder of
        the same width then ignores it instead of mixing two spaces)."""
        if self.signals is None or not self.signals.vector_dim or not isinstance(article, Mapping):
            return article
        if article.get("vector") in (None, ""):
            return article
        return {**article, "vector_encoder": self.signals.encoder}

    def has_history(self) -> bool:
        return bool(self._reads)

    def _remember_id(self, article_id: str) -> None:
        self._read_ids[article_id] = None
        self._read_ids.move_to_end(article_id)
        while len(self._read_ids) > READ_IDS_WINDOW:
            self._read_ids.popitem(last=False)

    def _read(self, article: Mapping[str, Any]) -> _Read:
        assert self.spec is not None
        row = np.zeros((1, self.spec.width), dtype=np.int32)  # (1, F)
        hashing.featurize_into(self.spec, [article], row, label=lambda _: "article")
        title = article.get("title")
        feed = self.signals.stored_vector(article) if self.signals is not None else None
        return _Read(str(article.get("id")), title if isinstance(title, str) else "", row[0], feed)

    def _refresh_user(self) -> None:
        if self.runner is None or not self._reads:
            self._user = self._history_units = self._feed_user = None
            return
        feeds = [r.feed for r in self._reads if r.feed is not None]
        self._feed_user = None
        if feeds:
            mean = np.mean(feeds, axis=0)  # (P,)
            norm = float(np.linalg.norm(mean))
            self._feed_user = (mean / norm).astype(np.float32) if norm > 1e-6 else None
        rows = np.stack([r.row for r in self._reads])  # (H, F)
        self._user = self.runner.user_vector(rows)  # (D,): the LSTM reads the whole history
        new = [r for r in self._reads if r.unit is None]  # only new reads are embedded
        if new:
            vectors = self.runner.item_vectors(np.stack([r.row for r in new]))  # (M, D)
            norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            for read, unit in zip(new, vectors / norms, strict=True):
                read.unit = unit
        self._history_units = np.stack([r.unit for r in self._reads])  # type: ignore[misc]

    # -- candidates -------------------------------------------------------------------

    def _candidates(self, candidates: object) -> tuple[list[str], list[_Candidate]]:
        """Validated, cached candidates in the caller's order; new or changed ones are
        featurized and embedded once. Nothing is cached unless every candidate is valid.

        This loop runs on every call over every candidate: it is kept to dict lookups."""
        if isinstance(candidates, (str, bytes, Mapping)) or not isinstance(candidates, Sequence):
            raise InvalidTypeError("candidates must be a list of article mappings")
        if len(candidates) > MAX_CANDIDATES:
            raise InvalidInputError(
                f"candidates: {len(candidates)} articles, above the limit of {MAX_CANDIDATES}"
            )
        cache = self._cands
        seen: dict[str, int] = {}
        pool: list[_Candidate | None] = []
        fresh: list[tuple[int, str, Mapping[str, Any]]] = []
        for i, article in enumerate(candidates):
            if type(article) is not dict and not isinstance(article, Mapping):
                raise InvalidTypeError(
                    f"candidates[{i}] must be a mapping, got {type(article).__name__}"
                )
            article_id = article.get("id")
            if type(article_id) is not str or not article_id:
                if article_id is None or article_id == "":
                    raise InvalidInputError(f"candidates[{i}]: 'id' is missing or empty")
                raise InvalidTypeError(
                    f"candidates[{i}]['id']: expected str, got {type(article_id).__name__}"
                )
            if article_id in seen:
                raise InvalidInputError(
                    f"candidates[{i}]: duplicate id (first seen at candidates[{seen[article_id]}])"
                )
            seen[article_id] = i
            cached = cache.get(article_id)
            if cached is None or not _same(cached.fingerprint, article):
                fresh.append((i, article_id, article))
            pool.append(cached)
        made = self._make(fresh) if fresh else []  # may raise: nothing is cached yet
        for (i, article_id, _), candidate in zip(fresh, made, strict=True):
            old = cache.get(article_id)
            if old is not None and old.slot >= 0:
                self._free.append(old.slot)
            cache[article_id] = pool[i] = candidate
        done: list[_Candidate] = pool  # type: ignore[assignment]  # every None was filled
        ids = list(seen)
        if len(cache) > CACHE_SIZE:
            self._evict(ids)
        return ids, done

    def _adopt(
        self, candidates: Sequence[Mapping[str, Any]], checked: tuple[list[str], list[_Candidate]]
    ) -> tuple[list[str], list[_Candidate]]:
        """The call another ranker (the active model's) just validated, as
        :meth:`_candidates` would return it: an entry whose snapshot is the very object the
        other ranker checked this call is current; any other is made afresh here, sharing
        that snapshot. Nothing is cached unless every new one is valid for this model."""
        ids, theirs = checked
        cache = self._cands
        pool: list[_Candidate | None] = [cache.get(i) for i in ids]
        fresh = [
            (j, ids[j], candidates[j])
            for j, (mine, other) in enumerate(zip(pool, theirs, strict=True))
            if mine is None or mine.fingerprint is not other.fingerprint
        ]
        made = self._make(fresh) if fresh else []  # may raise: nothing is cached yet
        for (j, article_id, _), candidate in zip(fresh, made, strict=True):
            candidate.fingerprint = theirs[j].fingerprint
            old = cache.get(article_id)
            if old is not None and old.slot >= 0:
                self._free.append(old.slot)
            cache[article_id] = pool[j] = candidate
        if len(cache) > CACHE_SIZE:
            self._evict(ids)
        return ids, pool  # type: ignore[return-value]  # every None was filled

    def _evict(self, keep: Sequence[str]) -> None:
        """Past CACHE_SIZE, the cache is rebuilt from this call's candidates alone: feeds
        move on, and tracking recency per candidate would cost every call."""
        current = {article_id: self._cands[article_id] for article_id in keep}
        for article_id, candidate in self._cands.items():
            if article_id not in current and candidate.slot >= 0:
                self._free.append(candidate.slot)
        self._cands = current

    def _slots(self, count: int) -> list[int]:
        """``count`` free rows of the vector matrices, growing them when needed."""
        take = [self._free.pop() for _ in range(min(count, len(self._free)))]
        missing = count - len(take)
        if missing:
            start = len(self._vectors)
            grow = max(missing, start // 2, 256)
            pad = np.zeros((grow, self._vectors.shape[1]), np.float32)
            self._vectors = np.concatenate([self._vectors, pad])
            self._units = np.concatenate([self._units, pad])
            self._feed = np.concatenate(
                [self._feed, np.zeros((grow, self._feed.shape[1]), np.int8)]
            )
            self._feed_scale = np.concatenate([self._feed_scale, np.zeros(grow, np.float32)])
            self._feed_has = np.concatenate([self._feed_has, np.zeros(grow, dtype=bool)])
            self._feed_prior = np.concatenate([self._feed_prior, np.full(grow, np.nan)])
            take += list(range(start, start + missing))
            self._free += list(range(start + grow - 1, start + missing - 1, -1))
        return take

    def _make(self, fresh: Sequence[tuple[int, str, Mapping[str, Any]]]) -> list[_Candidate]:
        positions = [i for i, _, _ in fresh]
        articles = [a for _, _, a in fresh]
        published: list[float | None] = []
        for i, article in zip(positions, articles, strict=True):
            when = article.get("published_at")
            published.append(
                None if when is None else parse_time(when, f"candidates[{i}]['published_at']")
            )
        slots = [-1] * len(articles)
        feeds: list[npt.NDArray[np.int8] | None] = []
        priors: list[float | None] = []
        if self.signals is not None:  # checked before anything is cached
            for i, article in zip(positions, articles, strict=True):
                feeds.append(self.signals.codes(article, f"candidates[{i}]"))
                priors.append(self.signals.prior_of(article, f"candidates[{i}]"))
        if self.spec is not None and self.runner is not None:
            rows = np.zeros((len(articles), self.spec.width), dtype=np.int32)  # (M, F)
            hashing.featurize_into(
                self.spec, articles, rows, label=lambda row: f"candidates[{positions[row]}]"
            )
            vectors = np.concatenate(
                [
                    self.runner.item_vectors(rows[s : s + EMBED_CHUNK])
                    for s in range(0, len(rows), EMBED_CHUNK)
                ]
            )  # (M, D)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (M, 1)
            slots = self._slots(len(articles))
            self._vectors[slots] = vectors
            self._units[slots] = vectors / np.maximum(norms, 1e-12)
            if self.signals is not None:
                for slot, feed, prior in zip(slots, feeds, priors, strict=True):
                    self._feed_has[slot] = feed is not None
                    if feed is not None:
                        self._feed[slot] = feed
                        self._feed_scale[slot] = 1.0 / np.linalg.norm(feed.astype(np.float32))
                    self._feed_prior[slot] = np.nan if prior is None else prior
        return [
            _Candidate(
                fingerprint={k: list(v) if type(v) is list else v for k, v in article.items()},
                slot=slots[j],
                published_s=published[j],
                category=_fold(article.get("category")),
                subcategory=_fold(article.get("subcategory")),
                source=_fold(article.get("source")),
            )
            for j, article in enumerate(articles)
        ]

    def cached_unit(self, article_id: str) -> FloatArray | None:
        """A cached candidate's unit item vector (tests, explanations)."""
        c = self._cands.get(article_id)
        return self._units[c.slot] if c is not None and c.slot >= 0 else None

    # -- ranking ----------------------------------------------------------------------

    def recommend(self, candidates: object, **options: Any) -> list[Recommendation]:
        """The top ``k`` of ``candidates`` under the rules (the Recommender's
        ``recommend``; ``options`` are its keyword arguments, ``now`` as epoch seconds)."""
        scored = self._score(candidates, **options)
        if scored is None:
            return []
        out = []
        for rank, j in enumerate(self._chosen(scored), start=1):
            c = scored.cands[j]
            reasons: list[str] = []
            if scored.personal:
                because = self._because(int(scored.slots[j]))
                if because:
                    reasons.append(f"because you read {because}")
            elif self._prior_rate(c) > self._prior_default:
                reasons.append("popular now")
            ages_h, half_life = scored.ages_h, scored.half_life
            if ages_h is not None and half_life is not None and ages_h[j] < half_life:
                reasons.append("new")
            out.append(Recommendation(scored.ids[j], float(scored.scores[j]), rank, tuple(reasons)))
        return out

    def shadow_ranks(
        self,
        candidates: object,
        shown: Sequence[str],
        checked: tuple[list[str], list[_Candidate]] | None = None,
        **options: Any,
    ) -> tuple[list[int], float]:
        """How this model would have ranked a call another model answered with ``shown``:
        its order of ``shown`` (1 = the one it scores highest) and the share of its own
        top ``len(shown)`` that ``shown`` holds (top-k agreement). ``checked``: that
        model's :attr:`last_checked` of the same call (its candidates are then not
        checked again).

        Raises:
            ModelFormatError: a score is NaN or infinite.
            InvalidTypeError, InvalidInputError: this model's spec refuses a candidate.
        """
        scored = self._score(candidates, checked=checked, **{**options, "k": max(len(shown), 1)})
        if scored is None or not shown:
            return [], 0.0
        if not np.isfinite(scored.scores).all():
            raise ModelFormatError("the model scored NaN or infinity")
        position = {article_id: j for j, article_id in enumerate(scored.ids)}
        # Its own order under the same rules (per-source caps, diversity) first; the shown
        # articles it would not have returned after, by score. An id it filtered out
        # cannot happen with the same rules and reads; if it does, it ranks last.
        chosen = [scored.ids[j] for j in self._chosen(scored)]
        place = {article_id: i for i, article_id in enumerate(chosen)}
        keys = [
            (place.get(i, len(chosen)), -scored.scores[position[i]] if i in position else np.inf)
            for i in shown
        ]
        order = sorted(range(len(shown)), key=keys.__getitem__)  # shown indices, best first
        ranks = [0] * len(shown)
        for rank, index in enumerate(order, start=1):
            ranks[index] = rank
        return ranks, len(place.keys() & set(shown)) / len(shown)

    def _score(
        self,
        candidates: object,
        *,
        k: int,
        now: float,
        exclude_read: bool,
        categories: Iterable[str] | None = None,  # the rules: None is no rule
        exclude_categories: Iterable[str] | None = None,
        sources: Iterable[str] | None = None,
        exclude_sources: Iterable[str] | None = None,
        max_per_source: int | None = None,
        freshness_half_life_h: float | None = None,
        diversity: float | None = None,
        checked: tuple[list[str], list[_Candidate]] | None = None,
    ) -> _Scored | None:
        """The candidates that pass the rules and their final scores; None: none pass."""
        k = check_int("k", k, 1)  # above the number of candidates: all of them
        if max_per_source is not None:
            max_per_source = check_int("max_per_source", max_per_source, 1)
        half_life = _positive("freshness_half_life_h", freshness_half_life_h)
        if diversity is not None:
            diversity = _unit_interval("diversity", diversity)
        if type(exclude_read) is not bool:
            raise InvalidTypeError("exclude_read must be a bool")
        wanted_categories = _fold_set("categories", categories)
        unwanted_categories = _fold_set("exclude_categories", exclude_categories)
        wanted_sources = _fold_set("sources", sources)
        unwanted_sources = _fold_set("exclude_sources", exclude_sources)
        if checked is None:
            ids, pool = self._candidates(candidates)
        else:
            ids, pool = self._adopt(candidates, checked)  # type: ignore[arg-type]
        self.last_checked = (ids, pool)

        read = self._read_ids
        if exclude_read and read:
            keep = [i for i, a in enumerate(ids) if a not in read]
        else:
            keep = list(range(len(ids)))
        if wanted_categories is not None:
            keep = [i for i in keep if pool[i].category in wanted_categories]
        if unwanted_categories:
            keep = [i for i in keep if pool[i].category not in unwanted_categories]
        if wanted_sources is not None:
            keep = [i for i in keep if pool[i].source in wanted_sources]
        if unwanted_sources:
            keep = [i for i in keep if pool[i].source not in unwanted_sources]
        if not keep:
            return None
        cands = [pool[i] for i in keep] if len(keep) < len(pool) else pool
        slots = np.array([c.slot for c in cands], dtype=np.intp)  # (N,)

        personal = self._user is not None and self.runner is not None
        if personal:
            assert self._user is not None
            scores = (self._vectors[slots] @ self._user).astype(np.float64)  # (N,)
            if self.head is not None:
                scores = self._with_signals(scores, slots)
        else:
            scores = np.array([self._prior_logit(c) for c in cands], dtype=np.float64)
            if half_life is None:
                half_life = COLD_START_HALF_LIFE_H
        ages_h = None
        if half_life is not None:
            ages_h = np.array(
                [np.nan if c.published_s is None else c.published_s for c in cands]
            )  # (N,) publication times, then ages in hours
            ages_h = np.maximum(0.0, now - ages_h) / 3600.0
            known = ~np.isnan(ages_h)
            scores[known] -= math.log(2.0) * ages_h[known] / half_life
        kept_ids = [ids[i] for i in keep] if len(keep) < len(ids) else ids
        return _Scored(
            kept_ids,
            cands,
            slots,
            scores,
            personal,
            ages_h,
            half_life,
            k,
            max_per_source,
            diversity,
        )

    def _chosen(self, scored: _Scored) -> list[int]:
        return self._select(
            scored.cands,
            slots=scored.slots,
            scores=scored.scores,
            k=scored.k,
            max_per_source=scored.max_per_source,
            diversity=scored.diversity,
        )

    def _with_signals(
        self, model: npt.NDArray[np.float64], slots: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """The feed head's score (module docstring): missing signals add 0."""
        head = self.head
        assert head is not None
        scores = head.model * model  # (N,)
        if head.vector and self._feed_user is not None:
            codes = self._feed[slots].astype(np.float32)  # (N, P)
            cos = ((codes @ self._feed_user) * self._feed_scale[slots]).astype(np.float64)
            scores += head.vector * np.where(self._feed_has[slots], cos - head.vector_mean, 0.0)
        if head.prior:
            prior = self._feed_prior[slots]  # (N,)
            scores += head.prior * np.where(np.isnan(prior), 0.0, prior - head.prior_mean)
        return scores

    def _prior_rate(self, c: _Candidate) -> float:
        for field, value in (("subcategory", c.subcategory), ("category", c.category)):
            rate = self._prior[field].get(value)
            if rate is not None:
                return rate
        return self._prior_default

    def _prior_logit(self, c: _Candidate) -> float:
        return _logit(self._prior_rate(c))

    def _because(self, slot: int) -> str:
        if self._history_units is None or slot < 0:
            return ""
        nearest = int(np.argmax(self._history_units @ self._units[slot]))  # (H,) -> index
        return self._reads[nearest].title

    def _select(
        self,
        cands: Sequence[_Candidate],
        *,
        slots: npt.NDArray[np.intp],
        scores: npt.NDArray[np.float64],
        k: int,
        max_per_source: int | None,
        diversity: float | None,
    ) -> list[int]:
        """Greedy top-k under the per-source cap; with ``diversity`` > 0, maximal marginal
        relevance: (1 - d) * scaled score - d * max cosine to what was already chosen."""
        per_source: dict[str, int] = {}

        def allowed(j: int) -> bool:
            source = cands[j].source
            if max_per_source is None or not source:
                return True
            if per_source.get(source, 0) >= max_per_source:
                return False
            per_source[source] = per_source.get(source, 0) + 1
            return True

        if not diversity or slots[0] < 0:
            if max_per_source is None and k < len(scores):
                top = np.argpartition(-scores, k - 1)[:k]
                return [int(j) for j in top[np.argsort(-scores[top], kind="stable")]]
            chosen = []
            for j in np.argsort(-scores, kind="stable"):
                if allowed(int(j)):
                    chosen.append(int(j))
                    if len(chosen) == k:
                        break
            return chosen
        units = self._units[slots]  # (N, D)
        spread = float(scores.max() - scores.min()) or 1.0
        relevance = (scores - scores.min()) / spread  # (N,) in [0, 1]
        closest = np.full(len(cands), -1.0)  # max cosine to the chosen set
        open_ = np.ones(len(cands), dtype=bool)
        chosen = []
        while len(chosen) < k and open_.any():
            value = (1 - diversity) * relevance - diversity * np.maximum(closest, 0.0)
            value[~open_] = -np.inf
            j = int(np.argmax(value))
            open_[j] = False
            if not allowed(j):
                continue
            chosen.append(j)
            closest = np.maximum(closest, units @ units[j])
        return chosen


def _positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    number = check_number(name, value, 0.0)
    if number <= 0:
        raise InvalidInputError(f"{name} must be a finite number > 0")
    return number


def _unit_interval(name: str, value: object) -> float:
    return check_number(name, value, 0.0, 1.0)
