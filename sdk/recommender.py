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

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from . import shadow
from .errors import (
    BundleError,
    ClosedError,
    EdgerecError,
    InvalidInputError,
    InvalidTypeError,
    ModelFormatError,
    ProfileErasedError,
)
from .features import parse_time
from .features.values import check_int, check_number
from .history import ReadingHistory
from .history.impressions import MAX_SHOWN, Impression
from .home import (
    HISTORY_FILE,
    active_model_dir,
    checked_home,
    finish_probation,
    has_installed_models,
    installed_status,
    readable_model,
    verified_active_model,
)
from .model import Bundle
from .ranking import READ_IDS_WINDOW, Ranker, Recommendation
from .shadow import Candidate, ShadowEvaluation, ShadowStatus

if TYPE_CHECKING:
    from .updates import UpdateResult

__all__ = ["PROBATION_CALLS", "Recommendation", "Recommender", "ShadowStatus"]

log = logging.getLogger(__name__)

# A newly activated model is on probation for its first calls: if one of them fails in the
# interpreter or scores NaN/Inf, the SDK rolls back to the last known-good model.
PROBATION_CALLS: Final = 20
# The impression log is written with each read it records, and otherwise every this many
# calls (and at close or a profile switch): a kill -9 loses at most this many unread
# impressions, never a read.
IMPRESSIONS_SAVED_EVERY: Final = 200


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
        self._ranker = Ranker(bundle)
        self._probation = 0
        self._guest = False
        self._shadow = ShadowEvaluation(home)  # the model in shadow, if any
        self._installed = False  # ranks with the home's installed models (shadow possible)
        self._save_due = IMPRESSIONS_SAVED_EVERY  # unsaved impressions that trigger a save
        self._load_reader()

    @classmethod
    def open(
        cls,
        home: str | Path,
        *,
        key: bytes | None = None,
        passphrase: str | None = None,
        keyring_service: str | None = None,
        profile: str = "default",
        bundle: str | Path | Bundle | None = None,
        clock: Callable[[], float] = time.time,
        shadow_min_reads: int = shadow.MIN_READS,
        shadow_margin: float = 0.0,
    ) -> Recommender:
        """Open (or create) a device home and one reader profile in it.

        Args:
            home: the folder holding ``history.db`` and the installed models.
            key, passphrase, keyring_service: where the history store's master key comes
                from: 32 raw bytes, a passphrase, or the OS keystore (exactly one; see
                :meth:`edgerec.ReadingHistory.open`).
            profile: the reader profile to open (created on first use).
            bundle: a bundle folder (or a loaded :class:`~edgerec.model.Bundle`) to rank
                with; None uses the model installed in ``home`` by the update client, and
                with none installed the Recommender ranks by freshness alone.
            clock: epoch seconds now (injectable for tests).
            shadow_min_reads, shadow_margin: the shadow decision rule's first look (device
                impressions with a read) and margin (:mod:`edgerec.shadow`). A model in
                shadow is compared only when ``bundle`` is None (the installed models).

        Raises:
            InvalidTypeError, InvalidInputError: a bad argument.
            BundleError (and its leaves), RuntimeUnavailableError: the model cannot be used.
            WrongKeyError, KeyUnavailableError, StorageCorruptError: see ReadingHistory.
        """
        min_reads = check_int(
            "shadow_min_reads", shadow_min_reads, shadow.MIN_READS_FLOOR, shadow.MAX_READS
        )
        margin = check_number("shadow_margin", shadow_margin, 0.0, 1.0)
        folder = checked_home(home)
        loaded = cls._load_bundle(folder, bundle)
        history = ReadingHistory.open(
            folder / HISTORY_FILE,
            key=key,
            passphrase=passphrase,
            keyring_service=keyring_service,
            profile=profile,
        )
        try:
            rec = cls(folder, history, loaded, clock=clock)
        except BaseException:
            history.close()
            raise
        rec._shadow.min_reads, rec._shadow.margin = min_reads, margin
        if bundle is None and loaded is not None:
            status = installed_status(folder)
            if status.on_probation and status.active == loaded.manifest.model_version:
                rec._probation = PROBATION_CALLS  # activated by another process or run
            rec._installed = True
            try:
                rec._sync_candidate(look=True)
            except BaseException:
                rec.close()
                raise
        return rec

    @classmethod
    def open_guest(
        cls,
        home: str | Path,
        *,
        bundle: str | Path | Bundle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Recommender:
        """A reader who leaves no trace (a kiosk's guest): the history lives in memory under
        a random key (:meth:`ReadingHistory.open_guest`) and is gone at :meth:`close`.

        It ranks with ``bundle``, else with the model installed in ``home``, else by
        freshness alone. The home is only read: a guest Recommender writes nothing to
        disk, so it does not install or roll back models (the device's own Recommender
        does) and cannot switch to a stored profile.

        Raises:
            InvalidTypeError, InvalidInputError: a bad argument; ``home`` is not an
                existing folder.
            BundleError (and its leaves), RuntimeUnavailableError: the model cannot be used
                (a damaged active model is skipped for the previous one, read only;
                :meth:`open` repairs the pointer).
        """
        if not isinstance(home, (str, Path)):
            raise InvalidTypeError(f"home must be a str or Path, got {type(home).__name__}")
        folder = Path(home)
        if not folder.is_dir():
            raise InvalidInputError("home is not an existing folder")
        if bundle is None:
            good = readable_model(folder)  # read only: a guest repairs nothing
            loaded = Bundle.load(good) if good is not None else None
        else:
            loaded = cls._load_bundle(folder, bundle)
        history = ReadingHistory.open_guest()
        try:
            rec = cls(folder, history, loaded, clock=clock)
        except BaseException:
            history.close()
            raise
        rec._guest = True
        return rec

    @property
    def is_guest(self) -> bool:
        """True for a Recommender from :meth:`open_guest` (nothing is stored)."""
        return self._guest

    def _refuse_for_guest(self, what: str) -> None:
        if self._guest:
            raise InvalidInputError(f"a guest Recommender writes nothing to disk: no {what}")

    @staticmethod
    def _load_bundle(home: Path, bundle: str | Path | Bundle | None) -> Bundle | None:
        if isinstance(bundle, Bundle):
            return bundle
        if bundle is None:
            installed = active_model_dir(home)
            if installed is not None:
                try:
                    return Bundle.load(installed)
                except BundleError:
                    pass
            elif not has_installed_models(home):
                return None
            # The pointer names a model that is missing (a rename lost with the power) or
            # damaged (a bad sector), or the pointer itself is unreadable: re-verify and
            # fall back to the last known-good model (B4), logged as a ModelFormatError.
            good = verified_active_model(home)
            return Bundle.load(good) if good is not None else None
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
            self._ranker.clear_reader()
            self._shadow.clear_reader()
            if self._history is not None:
                self._save_impressions()
                self._history.close()
                self._history = None

    def _open_history(self) -> ReadingHistory:
        if self._history is None:
            raise ClosedError("the Recommender is closed")
        return self._history

    def _save_impressions(self) -> bool:
        """Write the impression log if it changed; a failure is logged, never raised (the
        log is evidence for shadow evaluation, not the reader's data). Whether it saved."""
        history = self._history
        if history is None or self._guest:
            return True
        try:
            history.save_impressions()
        except EdgerecError as exc:
            log.warning("the impression log was not saved (%s)", type(exc).__name__)
            return False
        return True

    def _live_history(self) -> ReadingHistory:
        """The history, checked to still hold the active reader's profile (one
        ``PRAGMA data_version`` per call; a lookup only after another connection wrote).

        Raises:
            ProfileErasedError: the reader's profile was erased, by this Recommender's
                history, another handle or another process (``edgerec history erase``):
                every in-memory trace of the reader (vectors, titles, read ids) is dropped
                first. ``switch_profile()`` opens another reader.
            ClosedError: the Recommender is closed.
        """
        history = self._open_history()
        try:
            history.ensure_alive()
        except ProfileErasedError:
            self._ranker.clear_reader()
            self._shadow.clear_reader()
            raise
        return history

    def _load_reader(self) -> None:
        events = self._open_history().recent(READ_IDS_WINDOW)  # newest first
        articles = [e.article() for e in reversed(events)]
        self._ranker.load_reader(articles)
        self._shadow.load_reader(articles)

    # -- properties -------------------------------------------------------------------

    @property
    def profile(self) -> str:
        """The active reader profile."""
        with self._lock:
            return self._live_history().profile

    @property
    def model_version(self) -> int | None:
        """The version of the model ranking now, or None when no model is loaded."""
        bundle = self._ranker.bundle
        return bundle.manifest.model_version if bundle is not None else None

    @property
    def home(self) -> Path:
        """The device home folder (history, installed models)."""
        return self._home

    @property
    def bundle(self) -> Bundle | None:
        """The model bundle ranking now (None: freshness alone); a guest can share it."""
        return self._ranker.bundle

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
            ProfileErasedError: the reader's profile was erased (here or elsewhere); no
                trace of the reader is left in memory.
            ClosedError: after :meth:`close`. Storage errors: see ReadingHistory.record.
        """
        with self._lock:
            history = self._live_history()
            read = self._ranker.prepare_read(article)  # a bad article: refused, not stored
            history.record(self._ranker.stamped(article), at=at, dwell_s=dwell_s)
            self._ranker.add_read(str(article["id"]), read)
            self._shadow.add_read(article)
            if not self._guest:
                self._count_read(history, str(article["id"]), self._now(at))

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
            ProfileErasedError: the reader's profile was erased (by this Recommender's
                history, another handle or process): the reader's vectors and titles are
                dropped before it is raised; ``switch_profile()`` opens another reader.
            ClosedError: after :meth:`close`.
        """
        with self._lock:
            self._live_history()
            options: dict[str, Any] = {
                "k": k,
                "now": self._now(now),
                "exclude_read": exclude_read,
                "categories": categories,
                "exclude_categories": exclude_categories,
                "sources": sources,
                "exclude_sources": exclude_sources,
                "max_per_source": max_per_source,
                "freshness_half_life_h": freshness_half_life_h,
                "diversity": diversity,
            }
            if not self._probation:
                out = self._ranker.recommend(candidates, **options)
            else:
                out = self._on_probation(candidates, options)
            if out and not self._guest:
                self._remember(candidates, options, out)
            return out

    def _on_probation(self, candidates: Any, options: dict[str, Any]) -> list[Recommendation]:
        """One of a new model's first calls: a failure in the model rolls back to the
        previous model and the call is answered by it. Bad input is the caller's error."""
        try:
            out = self._ranker.recommend(candidates, **options)
            if not all(math.isfinite(r.score) for r in out):
                raise ModelFormatError("the new model scored NaN or infinity")
        except EdgerecError as exc:
            if not isinstance(exc, ModelFormatError):
                raise
            failure: Exception = exc
        except Exception as exc:  # the interpreter failed inside invoke
            failure = exc
        else:
            self._probation -= 1
            if not self._probation and not self._guest:
                self._record_probation_passed()
            return out
        version = self.model_version
        log.error(
            "model %s failed its first inferences (%s): rolling back",
            version,
            type(failure).__name__,
        )
        self._rollback_locked()
        return self._ranker.recommend(candidates, **options)

    def _record_probation_passed(self) -> None:
        version = self.model_version
        if version is None:
            return
        try:
            finish_probation(self._home, version)
        except OSError as exc:  # the next Recommender runs the probation again: harmless
            log.warning("could not record that model %s passed probation (%s)", version, exc)

    # -- impressions and shadow evaluation -------------------------------------------

    def _remember(
        self, candidates: Any, options: dict[str, Any], out: list[Recommendation]
    ) -> None:
        """Log the call's impression; with a model in shadow, it ranks the same candidates
        first (its failure rejects it; the caller's answer stands)."""
        shown = tuple(r.id for r in out[:MAX_SHOWN])
        impression = Impression(options["now"], shown, active=self.model_version or 0)
        self._shadow.score(candidates, impression, options, self._ranker.last_checked)
        try:
            unsaved = self._open_history().add_impression(impression)
        except ProfileErasedError:  # erased by another process since the call began
            self._ranker.clear_reader()
            self._shadow.clear_reader()
            raise
        if unsaved >= self._save_due:
            # A save that fails (disk full, a busy store) is retried only after as many
            # calls again, never on every call.
            saved = self._save_impressions()
            self._save_due = IMPRESSIONS_SAVED_EVERY if saved else unsaved + IMPRESSIONS_SAVED_EVERY

    def _count_read(self, history: ReadingHistory, article_id: str, at: float) -> None:
        """Mark the read on the impression that showed it (saved at once); evidence for
        the model in shadow, which the rule may promote."""
        impression = history.impressions.mark_read(article_id, at)
        if impression is None:
            return
        self._save_impressions()
        promoted = self._shadow.on_read(impression, history, self.model_version)
        if promoted is not None:
            self._serve_with(promoted)

    def _sync_candidate(self, *, look: bool) -> None:
        """Load (or drop) the model in shadow the pointer names; with ``look``, apply the
        rule to the evidence earlier runs left (a verdict may be due already)."""
        if self._guest or not self._installed or not self._shadow.sync():
            return
        self._load_reader()
        if not look:
            return
        promoted = self._shadow.look(self._open_history(), self.model_version)
        if promoted is not None:
            self._serve_with(promoted)

    def _serve_with(self, promoted: Candidate) -> None:
        """Rank with the promoted candidate: its vectors and the reader are loaded."""
        self._ranker.clear_reader()
        self._ranker = promoted.ranker
        self._probation = PROBATION_CALLS

    def shadow_status(self) -> ShadowStatus:
        """The model in shadow and the device's evidence about it: impressions and reads
        seen (over every profile), both models' local AUC and MRR, their top-k agreement,
        and the decision rule's state (:mod:`edgerec.shadow`). Holds no article id and
        nothing about any reader.

        Raises:
            ProfileErasedError, ClosedError: as :meth:`recommend`.
        """
        with self._lock:
            return self._shadow.status(self._live_history(), self.model_version)

    def promote_candidate(self) -> int:
        """Promote the model in shadow now, whatever the evidence (an operator's override:
        ``edgerec shadow promote``); it then serves on probation. Its version.

        Raises:
            UpdateError: no model is in shadow. InvalidInputError: a guest Recommender.
            ModelFormatError: its files are damaged (it is rejected instead).
        """
        self._refuse_for_guest("model updates")
        with self._lock:
            self._sync_candidate(look=False)  # the operator decides, not the evidence
            promoted = self._shadow.promote()
            self._serve_with(promoted)
            return promoted.version

    def reject_candidate(self) -> int:
        """Reject the model in shadow now (``edgerec shadow reject``): it is never
        installed again. Its version.

        Raises:
            UpdateError: no model is in shadow. InvalidInputError: a guest Recommender.
        """
        self._refuse_for_guest("model updates")
        with self._lock:
            self._sync_candidate(look=False)
            return self._shadow.reject("rejected by the operator")

    # -- model updates ----------------------------------------------------------------

    def check_for_update(
        self,
        url: str,
        *,
        trusted_root: bytes | str | Path | None = None,
        shadow: bool = False,
        **options: Any,
    ) -> UpdateResult | None:
        """Pull, verify (TUF), validate (child process) and activate the repository's newest
        model if it is newer; this Recommender then ranks with it, without a restart. Its
        first :data:`PROBATION_CALLS` recommendations roll back automatically on failure.

        With ``shadow=True`` the model is installed as the candidate instead: the active
        model keeps answering, the candidate ranks the same calls, and the decision rule
        of :mod:`edgerec.shadow` promotes or rejects it on the readers' own reads
        (:meth:`shadow_status`).

        Blocking (downloads and validation, bounded by their deadlines): call it from a
        background thread; recommendations keep being served meanwhile.

        Args:
            url: the TUF repository written by ``edgerec-train publish``.
            trusted_root: the pinned ``root.json``, needed once per home.
            options: see :func:`edgerec.updates.check_for_update`.

        Returns:
            The installed model, or None when already up to date.

        Raises:
            UpdateError and its leaves: see :func:`edgerec.updates.check_for_update`; the
            active model keeps serving.
        """
        from . import updates

        self._refuse_for_guest("model updates")
        result = updates.check_for_update(
            self._home, url, trusted_root=trusted_root, shadow=shadow, **options
        )
        if result is not None:
            with self._lock:
                if not result.shadow:
                    self._set_model(Bundle.load(result.path))
                    self._probation = PROBATION_CALLS
                    self._installed = True
                self._sync_candidate(look=False)
        return result

    def rollback(self) -> int:
        """Make the last known-good model active again (and rank with it); its version.

        Raises:
            UpdateError: there is no previous model.
            InvalidInputError: a guest Recommender.
        """
        self._refuse_for_guest("rollback")
        with self._lock:
            return self._rollback_locked()

    def _rollback_locked(self) -> int:
        from . import updates

        version = updates.rollback(self._home)
        self._set_model(self._load_bundle(self._home, None))
        self._probation = 0
        return version

    def _set_model(self, bundle: Bundle | None) -> None:
        """Rank with ``bundle`` from now on: new engine, the reader's vectors recomputed
        (candidate vectors belong to a model and are embedded again)."""
        self._ranker.clear_reader()
        self._ranker = Ranker(bundle)
        self._load_reader()

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
            InvalidInputError: a guest Recommender (:meth:`open_guest`).
        """
        if self._guest:  # its in-memory store has no other reader to switch to
            raise InvalidInputError("a guest Recommender cannot switch profiles; open one")
        with self._lock:
            self._save_impressions()
            self._shadow.clear_reader()
            if self._history is not None and key is None and passphrase is None:
                history = self._history  # the same master key wraps every profile
                self._ranker.clear_reader()
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
        return parse_time(now, "now")
