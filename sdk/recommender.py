"""``edgerec.Recommender``: the SDK's main entry point. One reader's encrypted history, one
model, the candidates of a feed in, ranked recommendations with reasons out; nothing about
the reader leaves the device.

Example:
    >>> import edgerec, pathlib, tempfile
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> with edgerec.Recommender.open(home, key=bytes(32)) as rec:
    ...     rec.record_read({"id": "N1", "title": "Late goal seals the title"})
    ...     [r.id for r in rec.recommend([{"id": "N1"}, {"id": "N2"}], k=5)]
    ['N2']

Threads: every public method takes one lock, so a Recommender may be shared by threads
(the TFLite interpreter runs one call at a time anyway; ``benchmarks/bench_recommend.py``
measures what the lock costs under contention).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .bundle import Bundle
from .errors import ClosedError, InvalidTypeError
from .history import ReadingHistory
from .home import HISTORY_FILE, active_model_dir, checked_home
from .ranking import READ_IDS_WINDOW, Engine, Recommendation

__all__ = ["Recommendation", "Recommender"]


class Recommender:
    """Ranks candidate articles for the active reader profile with the active model.

    Open it with :meth:`open`; use it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        home: Path,
        history: ReadingHistory,
        bundle: Bundle | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._home = home
        self._history: ReadingHistory | None = history
        self._clock = clock
        self._lock = threading.RLock()
        self._engine = Engine(bundle)
        self._load_reader()

    @classmethod
    def open(
        cls,
        home: str | Path,
        *,
        key: bytes | None = None,
        passphrase: str | None = None,
        profile: str = "default",
        bundle: str | Path | Bundle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Recommender:
        """Open (or create) a device home and one reader profile in it.

        Args:
            home: the folder holding ``history.db`` and the installed models.
            key, passphrase, profile: the history store's master key and profile (see
                :meth:`edgerec.ReadingHistory.open`).
            bundle: a bundle folder (or a loaded :class:`~edgerec.bundle.Bundle`) to rank
                with; None uses the model installed in ``home`` by the update client, and
                with none installed the Recommender ranks by freshness alone.
            clock: epoch seconds now (injectable for tests).

        Raises:
            InvalidTypeError, InvalidInputError: a bad argument.
            BundleError, ModelLoadError, RuntimeUnavailableError: the model cannot be used.
            WrongKeyError, KeyUnavailableError, StorageCorruptError: see ReadingHistory.
        """
        folder = checked_home(home)
        loaded = cls._load_bundle(folder, bundle)
        history = ReadingHistory.open(
            folder / HISTORY_FILE, key=key, passphrase=passphrase, profile=profile
        )
        try:
            return cls(folder, history, loaded, clock=clock)
        except BaseException:
            history.close()
            raise

    @staticmethod
    def _load_bundle(home: Path, bundle: str | Path | Bundle | None) -> Bundle | None:
        if isinstance(bundle, Bundle):
            return bundle
        if bundle is None:
            installed = active_model_dir(home)
            return Bundle.load(installed) if installed is not None else None
        if not isinstance(bundle, (str, Path)):
            raise InvalidTypeError(
                f"bundle must be a folder path or a Bundle, got {type(bundle).__name__}"
            )
        return Bundle.load(bundle)

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the history store and forget the reader's cached vectors. Idempotent."""
        with self._lock:
            self._engine.clear_reader()
            if self._history is not None:
                self._history.close()
                self._history = None

    def _open_history(self) -> ReadingHistory:
        if self._history is None:
            raise ClosedError("the Recommender is closed")
        return self._history

    def _load_reader(self) -> None:
        events = self._open_history().recent(READ_IDS_WINDOW)  # newest first
        self._engine.load_reader([e.article() for e in reversed(events)])

    # -- properties -------------------------------------------------------------------

    @property
    def profile(self) -> str:
        """The active reader profile."""
        with self._lock:
            return self._open_history().profile

    @property
    def model_version(self) -> int | None:
        """The version of the model ranking now, or None when no model is loaded."""
        bundle = self._engine.bundle
        return bundle.manifest.model_version if bundle is not None else None

    @property
    def history(self) -> ReadingHistory:
        """The active profile's history store (for export, forget, retention)."""
        with self._lock:
            return self._open_history()

    # -- verbs ------------------------------------------------------------------------

    def record_read(
        self, article: Mapping[str, Any], *, at: Any = None, dwell_s: float | None = None
    ) -> None:
        """Store one read, encrypted, and update the reader's vectors incrementally.

        Raises:
            InvalidTypeError, InvalidInputError: a bad article, time or dwell (nothing is
                stored).
            ClosedError: after :meth:`close`. Storage errors: see ReadingHistory.record.
        """
        with self._lock:
            history = self._open_history()
            read = self._engine.prepare_read(article)  # a bad article: refused, not stored
            history.record(article, at=at, dwell_s=dwell_s)
            self._engine.add_read(str(article["id"]), read)

    def recommend(
        self,
        candidates: Sequence[Mapping[str, Any]],
        *,
        k: int = 10,
        now: Any = None,
        exclude_read: bool = True,
        categories: Iterable[str] | None = None,
        exclude_categories: Iterable[str] | None = None,
        sources: Iterable[str] | None = None,
        exclude_sources: Iterable[str] | None = None,
        max_per_source: int | None = None,
        freshness_half_life_h: float | None = None,
        diversity: float | None = None,
    ) -> list[Recommendation]:
        """The top ``k`` of ``candidates`` for the active reader.

        Args:
            candidates: article mappings following the FeatureSpec (id, title, abstract,
                category, subcategory, source, published_at, entities). Unknown fields are
                ignored; missing optional fields are padding. At most
                :data:`edgerec.ranking.MAX_CANDIDATES` per call.
            k: how many to return (>= 1); fewer come back when fewer candidates pass the
                rules.
            now: the time freshness is measured from (epoch seconds, aware datetime or
                ISO-8601); default the clock.
            exclude_read: drop articles the reader read (the last 1,000 reads).
            categories, sources: keep only these (case-insensitive); None keeps all.
            exclude_categories, exclude_sources: drop these.
            max_per_source: at most this many results per source.
            freshness_half_life_h: halve an article's odds every this many hours of age.
            diversity: 0..1, weight of maximal-marginal-relevance re-ranking (0 = off).

        Returns:
            Recommendations, best first, ``rank`` from 1.

        Raises:
            InvalidTypeError, InvalidInputError: a bad candidate (named by index) or
                argument; nothing is cached from a refused call.
            ClosedError: after :meth:`close`.
        """
        with self._lock:
            self._open_history()
            return self._engine.recommend(
                candidates,
                k=k,
                now=self._now(now),
                exclude_read=exclude_read,
                categories=categories,
                exclude_categories=exclude_categories,
                sources=sources,
                exclude_sources=exclude_sources,
                max_per_source=max_per_source,
                freshness_half_life_h=freshness_half_life_h,
                diversity=diversity,
            )

    def switch_profile(
        self, profile: str, *, key: bytes | None = None, passphrase: str | None = None
    ) -> None:
        """Close the current profile, forget every in-memory trace of it, open another.

        Without ``key``/``passphrase`` the store's master key stays loaded and only the
        profile changes (each profile still has its own data key); with one, the store is
        reopened under it.

        Raises:
            as :meth:`open` for the history store. On failure the Recommender is closed
            (no profile is active), never left on the previous reader.
        """
        with self._lock:
            if self._history is not None and key is None and passphrase is None:
                history = self._history  # the same master key wraps every profile
                self._engine.clear_reader()
                try:
                    history.switch_profile(profile)
                except BaseException:
                    self.close()
                    raise
            else:
                self.close()
                history = ReadingHistory.open(
                    self._home / HISTORY_FILE, key=key, passphrase=passphrase, profile=profile
                )
                self._history = history
            self._load_reader()

    def _now(self, now: Any) -> float:
        if now is None:
            return float(self._clock())
        return self._engine.parse_time("now", now)
