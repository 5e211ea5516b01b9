"""Shadow evaluation: a new model proves itself on the device's own readers before it
serves, and nothing about them leaves the device.

A model installed with ``check_for_update(url, shadow=True)`` is the *candidate*: the
active model still answers every ``recommend()``; the candidate ranks the same candidate
list under the same rules, and the call's impression (:mod:`edgerec.history.impressions`)
keeps its order of the returned articles. When the reader reads one of them within the
window, that impression becomes evidence.

Local metrics, per impression with a read, over the articles the call returned (what the
reader could read): each model's AUC (the share of (read, not read) pairs it orders read
first; needs one unread article) and reciprocal rank of the first read, plus the top-k
agreement of the two models over every shadow-scored impression. Summed over every
profile of the device.

The decision (:func:`decide`), a group-sequential test on the paired AUC differences
(candidate minus active), one per impression with a read:

- looks at ``min_reads``, ``2 * min_reads``, ``4 * min_reads``, ... up to ``max_reads``
  impressions with a read (device-wide, in the order they were served);
- at a look on the first ``n`` of them, the paired bootstrap's one-sided ``(1 - alpha)``
  bounds of the mean difference, with ``alpha`` = :data:`ALPHA` divided by the number of
  looks (so all looks together promote an equal model at most about ALPHA of the time);
- **promote** when the lower bound is above ``-margin`` (strictly: a bound of exactly 0
  from tied differences is no evidence); **reject** when the upper bound is below
  ``-margin`` (the candidate is worse), when the last look is reached undecided, or when
  ``max_reads`` impressions with a read gave too few comparisons (the active model
  stays: the burden of proof is on the candidate).

A promoted model goes through the usual probation; a rejected version is remembered and
never installed again. A candidate that fails inside the interpreter or scores NaN is
rejected at once; the active model is untouched.

Example:
    >>> import numpy as np
    >>> better = np.full(200, 0.1)  # the candidate orders every impression better
    >>> decide(better + np.linspace(-0.05, 0.05, 200)).decision
    'promote'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from .errors import EdgerecError, InvalidInputError, InvalidTypeError, UpdateError
from .history.impressions import Impression, ImpressionLog
from .home import MODELS_DIR, installed_status, promote_candidate, reject_candidate
from .model import Bundle
from .ranking import Ranker

if TYPE_CHECKING:
    from .history import ReadingHistory

log = logging.getLogger("edgerec.shadow")

__all__ = [
    "ALPHA",
    "BOOTSTRAP_DRAWS",
    "MAX_READS",
    "MIN_READS",
    "MIN_READS_FLOOR",
    "Candidate",
    "Decision",
    "LocalMetrics",
    "Paired",
    "ShadowEvaluation",
    "ShadowStatus",
    "decide",
    "looks",
    "metrics_of",
    "paired",
    "report",
    "verdict_of",
]

MIN_READS: Final = 50  # impressions with a read (device-wide) before the first look
MIN_READS_FLOOR: Final = 30  # a percentile bootstrap at 1% needs about this many
MAX_READS: Final = 800  # the last look: undecided there is a rejection
ALPHA: Final = 0.05  # shared by the looks
BOOTSTRAP_DRAWS: Final = 4_000
_SEED: Final = 20261202  # the bootstrap is deterministic: the same evidence, the same call

DecisionName = Literal["none", "pending", "promote", "reject"]


@dataclass(frozen=True)
class LocalMetrics:
    """One model's metrics over the device's impressions with a read (None: no evidence)."""

    auc: float | None
    mrr: float | None


@dataclass(frozen=True)
class Paired:
    """The evidence about one candidate, impressions in the order they were served."""

    impressions: int  # shadow-scored impressions (with or without a read)
    reads: int  # of them, with a read
    auc_active: npt.NDArray[np.float64]  # (A,) impressions with a read and an unread one
    auc_candidate: npt.NDArray[np.float64]  # (A,)
    rr_active: npt.NDArray[np.float64]  # (reads,)
    rr_candidate: npt.NDArray[np.float64]  # (reads,)
    agreement: float | None  # mean top-k agreement over the shadow-scored impressions


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` concluded at the last look reached."""

    decision: DecisionName
    looked_at: int  # impressions with a read the verdict used (0: no look yet)
    difference: float | None  # mean paired AUC difference, candidate - active
    lower: float | None  # the look's one-sided bootstrap bounds
    upper: float | None


@dataclass(frozen=True)
class ShadowStatus:
    """What :meth:`edgerec.Recommender.shadow_status` reports (no article ids, no reader).

    ``decision`` is ``"none"`` without a candidate, ``"pending"`` while evidence is
    gathered, else the verdict the rule reaches on the evidence now (a Recommender acts on
    it at its next look); ``impressions`` and ``reads`` are device-wide.
    """

    candidate: int | None
    active: int | None
    impressions: int
    reads: int
    active_metrics: LocalMetrics
    candidate_metrics: LocalMetrics
    agreement: float | None
    decision: DecisionName
    difference: float | None
    lower: float | None
    upper: float | None
    min_reads: int
    margin: float


def paired(logs: Iterable[ImpressionLog], candidate: int, active: int | None = None) -> Paired:
    """The paired local metrics of ``candidate`` against the active model over every
    impression it shadow-scored (answered by model ``active``, when given), in the order
    they were served."""
    scored: list[Impression] = sorted(
        (
            imp
            for log in logs
            for imp in log
            if imp.candidate == candidate and (active is None or imp.active == active)
        ),
        key=lambda imp: imp.at,
    )
    auc_a, auc_c, rr_a, rr_c = [], [], [], []
    for imp in scored:
        if not imp.read:
            continue
        read = set(imp.read)
        cand = imp.candidate_ranks
        rr_a.append(1.0 / (min(read) + 1))
        rr_c.append(1.0 / min(cand[i] for i in read))
        unread = [i for i in range(len(imp.ids)) if i not in read]
        if not unread:
            continue
        pairs = len(read) * len(unread)
        auc_a.append(sum(p < n for p in read for n in unread) / pairs)
        auc_c.append(sum(cand[p] < cand[n] for p in read for n in unread) / pairs)
    agreement = float(np.mean([imp.agreement for imp in scored])) if scored else None
    return Paired(
        len(scored),
        len(rr_a),
        np.array(auc_a, dtype=np.float64),
        np.array(auc_c, dtype=np.float64),
        np.array(rr_a, dtype=np.float64),
        np.array(rr_c, dtype=np.float64),
        agreement,
    )


def looks(min_reads: int = MIN_READS, max_reads: int = MAX_READS) -> list[int]:
    """The numbers of impressions with a read at which :func:`decide` looks."""
    out, n = [], min_reads
    while n < max_reads:
        out.append(n)
        n *= 2
    return [*out, max_reads]


def decide(
    differences: npt.NDArray[np.float64],
    *,
    reads: int | None = None,
    min_reads: int = MIN_READS,
    max_reads: int = MAX_READS,
    margin: float = 0.0,
    draws: int = BOOTSTRAP_DRAWS,
    alpha: float | None = None,
) -> Decision:
    """The rule of the module docstring on paired AUC differences (candidate - active),
    oldest first; looks past ``len(differences)`` are not taken yet. ``reads``: the
    impressions with a read (default ``len(differences)``; an impression whose every
    returned article was read has no AUC): at ``max_reads`` of them without a verdict, the
    candidate is rejected. ``alpha``: each look's one-sided level (default :data:`ALPHA`
    shared by the looks)."""
    points = looks(min_reads, max_reads)
    if alpha is None:
        alpha = ALPHA / len(points)
    rng = np.random.default_rng(_SEED)
    last = Decision("pending", 0, None, None, None)
    for n in points:
        if len(differences) < n:
            break
        sample = differences[:n]
        means = _bootstrap_means(sample, draws, rng)
        lower, upper = (float(q) for q in np.quantile(means, [alpha, 1.0 - alpha]))
        mean = float(sample.mean())
        # Strictly above: differences are often exactly 0 (the candidate keeps the read
        # article's place), and a bound of 0 is no evidence that it is better.
        if lower > -margin:
            return Decision("promote", n, mean, lower, upper)
        if upper < -margin or n == points[-1]:
            return Decision("reject", n, mean, lower, upper)
        last = Decision("pending", n, mean, lower, upper)
    if (len(differences) if reads is None else reads) >= max_reads:
        return Decision("reject", last.looked_at, last.difference, last.lower, last.upper)
    return last


def _bootstrap_means(
    sample: npt.NDArray[np.float64], draws: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """``draws`` means of resamples of ``sample``, 500 at a time (memory stays small)."""
    n = len(sample)
    out = np.empty(draws, dtype=np.float64)
    for start in range(0, draws, 500):
        stop = min(start + 500, draws)
        picks = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        out[start:stop] = sample[picks].mean(axis=1)
    return out


def report(
    history: ReadingHistory,
    candidate: int | None,
    active: int | None,
    *,
    min_reads: int = MIN_READS,
    margin: float = 0.0,
) -> ShadowStatus:
    """The :class:`ShadowStatus` of ``candidate`` against ``active`` from every profile's
    impression log in ``history``; reads only (nothing is decided or changed)."""
    if candidate is None:
        empty = LocalMetrics(None, None)
        return ShadowStatus(
            None, active, 0, 0, empty, empty, None, "none", None, None, None, min_reads, margin
        )
    evidence = paired(history.device_impressions(), candidate, active or 0)
    verdict = verdict_of(evidence, min_reads=min_reads, margin=margin)
    active_metrics, candidate_metrics = metrics_of(evidence)
    return ShadowStatus(
        candidate,
        active,
        evidence.impressions,
        evidence.reads,
        active_metrics,
        candidate_metrics,
        evidence.agreement,
        verdict.decision,
        verdict.difference,
        verdict.lower,
        verdict.upper,
        min_reads,
        margin,
    )


def verdict_of(evidence: Paired, *, min_reads: int, margin: float) -> Decision:
    return decide(
        evidence.auc_candidate - evidence.auc_active,
        reads=evidence.reads,
        min_reads=min_reads,
        margin=margin,
    )


def metrics_of(evidence: Paired) -> tuple[LocalMetrics, LocalMetrics]:
    """Each model's mean local AUC and MRR (active, candidate)."""

    def mean(values: npt.NDArray[np.float64]) -> float | None:
        return float(values.mean()) if len(values) else None

    return (
        LocalMetrics(mean(evidence.auc_active), mean(evidence.rr_active)),
        LocalMetrics(mean(evidence.auc_candidate), mean(evidence.rr_candidate)),
    )


class Candidate:
    """The model in shadow inside a Recommender: its own ranker (vector cache, the same
    reader), scoring each call the active model answered."""

    def __init__(self, version: int, bundle: Bundle) -> None:
        self.version = version
        self.ranker = Ranker(bundle)

    def load_reader(self, articles: Sequence[Mapping[str, Any]]) -> None:
        self.ranker.load_reader(articles)

    def add_read(self, article: Mapping[str, Any]) -> None:
        """The reader's new read; one this model's spec refuses still counts as read."""
        try:
            read = self.ranker.prepare_read(article)
        except EdgerecError:
            read = None
        self.ranker.add_read(str(article["id"]), read)

    def score(
        self,
        candidates: object,
        impression: Impression,
        options: dict[str, Any],
        checked: Any = None,
    ) -> bool:
        """Rank the call's candidates with the candidate model and keep its order of what
        the active model returned in ``impression`` (``checked``: the active ranker's
        :attr:`~edgerec.ranking.Ranker.last_checked` of the call); False when this model's
        spec refuses a candidate the active one accepted (the call then is not evidence).

        Raises:
            ModelFormatError: a NaN or infinite score; any other exception: the interpreter
                failed. Either way the candidate is to be rejected.
        """
        try:
            ranks, agreement = self.ranker.shadow_ranks(
                candidates, impression.ids, checked, **options
            )
        except (InvalidInputError, InvalidTypeError):
            return False
        impression.candidate = self.version
        impression.candidate_ranks = tuple(ranks)
        impression.agreement = agreement
        return True


class ShadowEvaluation:
    """A Recommender's side of shadow evaluation: the candidate the pointer names, its
    ranker kept on the same reader, the decision rule's looks and acting on a verdict.
    Every call into the candidate's interpreter is guarded: a failure rejects the
    candidate and never reaches the caller. Not thread-safe: the Recommender's lock
    guards it."""

    def __init__(self, home: Path, *, min_reads: int = MIN_READS, margin: float = 0.0) -> None:
        self.home = home
        self.min_reads = min_reads
        self.margin = margin
        self.candidate: Candidate | None = None
        self._next_look = 0  # impressions with evidence until the rule looks again

    # -- the reader, as the active ranker sees it --------------------------------------

    def clear_reader(self) -> None:
        if self.candidate is not None:
            self.candidate.ranker.clear_reader()

    def load_reader(self, articles: Sequence[Mapping[str, Any]]) -> None:
        if self.candidate is not None:
            try:
                self.candidate.ranker.load_reader(articles)
            except Exception as exc:
                self.reject(f"it failed to read the history ({type(exc).__name__})")

    def add_read(self, article: Mapping[str, Any]) -> None:
        if self.candidate is not None:
            try:
                self.candidate.add_read(article)
            except Exception as exc:
                self.reject(f"it failed to add a read ({type(exc).__name__})")

    # -- the candidate ------------------------------------------------------------------

    def sync(self) -> bool:
        """Follow the pointer: load the candidate it names (one that cannot be loaded is
        rejected) or drop one it no longer names. Whether a new candidate was loaded (the
        caller then loads the reader into it). Looks at no evidence."""
        version = installed_status(self.home).candidate
        if self.candidate is not None and self.candidate.version == version:
            return False
        self.clear_reader()
        self.candidate = None
        if version is None:
            return False
        try:
            self.candidate = Candidate(version, Bundle.load(self.home / MODELS_DIR / str(version)))
        except Exception as exc:  # damaged files, or the runtime refuses the model
            log.error("the model in shadow (%d) cannot be loaded (%s)", version, type(exc).__name__)
            self._record_rejection(version)
            return False
        self._next_look = 0
        return True

    def score(
        self, candidates: object, impression: Impression, options: dict[str, Any], checked: Any
    ) -> None:
        """Let the candidate rank the call the active model answered with ``impression``;
        a failure (NaN, the interpreter) rejects it."""
        if self.candidate is None:
            return
        try:
            self.candidate.score(candidates, impression, options, checked)
        except Exception as exc:
            self.reject(f"it failed to rank ({type(exc).__name__})")

    def on_read(
        self, impression: Impression, history: ReadingHistory, active: int | None
    ) -> Candidate | None:
        """A read was counted on ``impression``: at a look, apply the rule. The candidate
        when it was promoted (the caller ranks with it from now on)."""
        candidate = self.candidate
        if candidate is None or impression.candidate != candidate.version:
            return None
        if len(impression.read) == 1:  # its first read: one more impression with a read
            self._next_look -= 1
        return self.look(history, active) if self._next_look <= 0 else None

    def look(self, history: ReadingHistory, active: int | None) -> Candidate | None:
        """Apply the rule to the device's evidence now and act on a verdict; the
        candidate when it was promoted."""
        if self.candidate is None:
            return None
        evidence = paired(history.device_impressions(), self.candidate.version, active or 0)
        verdict = verdict_of(evidence, min_reads=self.min_reads, margin=self.margin)
        if verdict.decision == "promote":
            try:
                return self.promote()
            except (EdgerecError, OSError) as exc:  # another process decided; the disk
                log.warning("could not promote the candidate (%s)", type(exc).__name__)
                return None
        if verdict.decision == "reject":
            self.reject(f"its local AUC difference is {verdict.difference or 0.0:+.4f}")
            return None
        counted = len(evidence.auc_active)  # what the looks count
        upcoming = [n for n in looks(self.min_reads) if n > counted]
        self._next_look = max(1, (upcoming[0] if upcoming else counted + 1) - counted)
        return None

    def promote(self) -> Candidate:
        """Make the candidate the active model (on probation); it is returned to serve.

        Raises:
            UpdateError: no candidate (or another process decided first).
            ModelFormatError: its files are damaged (it is rejected instead).
        """
        candidate = self.candidate
        if candidate is None:
            raise UpdateError("no model is in shadow")
        self.candidate = None
        try:
            promote_candidate(self.home, candidate.version)
        except BaseException:
            candidate.ranker.clear_reader()
            raise
        return candidate

    def reject(self, why: str) -> int:
        """Reject the candidate (never installed again); its version.

        Raises:
            UpdateError: no candidate.
        """
        candidate = self.candidate
        if candidate is None:
            raise UpdateError("no model is in shadow")
        self.candidate = None
        candidate.ranker.clear_reader()
        if self._record_rejection(candidate.version):
            log.warning("model %d in shadow rejected: %s", candidate.version, why)
        return candidate.version

    def _record_rejection(self, version: int) -> bool:
        """The pointer forgets the candidate and remembers it as rejected; False when it
        no longer named it (another process decided) or the disk refused (then the next
        open tries again)."""
        try:
            return reject_candidate(self.home, version)
        except OSError as exc:
            log.warning("could not record the rejection (%s)", type(exc).__name__)
            return False

    def status(self, history: ReadingHistory, active: int | None) -> ShadowStatus:
        """:meth:`edgerec.Recommender.shadow_status`."""
        version = self.candidate.version if self.candidate is not None else None
        return report(history, version, active, min_reads=self.min_reads, margin=self.margin)
