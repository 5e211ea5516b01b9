"""Pipeline step ``feed``: the feed signals the shipped bundle reads (:mod:`.models.feed_signals`).

Runs inside the export, once the int8 student is chosen and before ``bundle/`` is
written:

1. the feed encoder's vectors (``cfg.feed_encoder``: mpnet when its extra is installed,
   else MiniLM, else none: then the prior reads categories only);
2. the validation impressions of the held-out users, shaped like the evaluation
   (:mod:`.data.validation_impressions`); the click prior is fitted on the other users'
   impressions, once per regularization in :data:`~.models.feed_signals.PRIOR_C`;
3. on the validation impressions only: for every prior and every combination of the
   terms (signals alone, student + one signal, student + both, teacher + both), the head
   weights by mean per-impression AUC (:func:`~.models.feed_signals.choose_head`);
4. the shipped bundle gets the student + both signals head; the publisher's side is
   saved in ``OUT/feed/`` (:meth:`FeedModel.save`, read by ``edgerec-train feed``).

Then every variant is scored on the evaluation impressions (and the 400-impression slice
when present) to report, never to choose. ``shipped`` is scored through the device's own
ranking (:class:`edgerec.ranking.Ranker`) on article dicts carrying the publisher's fields;
``shipped_without_signals`` is the same bundle on the plain articles (the fallback),
``shipped_half_signals`` on a feed where a random half of the articles carry them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgerec.features.signals import MAX_PRIOR
from edgerec.model import Bundle, ModelRunner
from edgerec.ranking import Ranker

from .config import Config
from .data.embeddings import MODEL_NAME, MPNET_NAME, cached_mpnet_vectors, mpnet_installed
from .data.loading import Data
from .data.mind import Impression
from .data.training_examples import ArticleTable, evaluation_arrays, held_out, unpad
from .data.validation_impressions import validation_impressions
from .errors import DataError
from .evaluation.metrics import auc
from .evaluation.on_device import on_device_scores
from .evaluation.report import summarize
from .models.feed_signals import (
    FEED_FOLDER,
    PRIOR_C,
    FeedModel,
    HeadChoice,
    apply_head,
    choose_head,
    cosines_and_priors,
    fit_prior,
)
from .progress import log

if TYPE_CHECKING:
    from .models.teacher import Teacher
    from .pipeline import Prepared, Run

__all__ = [
    "FEED_FOLDER",
    "FeedStep",
    "choose",
    "encoder_vectors",
    "fit_step",
    "measure_step",
    "ranker_scores",
    "with_signals",
]

FloatArray = npt.NDArray[np.float32]
Scores = list[npt.NDArray[np.float64]]
Scorer = Any  # (impressions) -> per-impression scores


def encoder_vectors(
    cfg: Config,
    articles: Mapping[str, Mapping[str, Any]],
    minilm: dict[str, FloatArray] | None,
    cache: Path,
) -> tuple[str, dict[str, FloatArray] | None]:
    """The feed encoder's name and vectors by article id (``""``, None: no encoder)."""
    wanted = cfg.feed_encoder
    if wanted == "mpnet" or (wanted == "auto" and mpnet_installed()):
        return MPNET_NAME, cached_mpnet_vectors(articles, cache)
    if wanted in ("auto", "minilm") and minilm is not None:
        return MODEL_NAME, minilm
    if wanted == "minilm":
        log("feed without vectors: the MiniLM vectors are not available")
    return "", None


@dataclass
class FeedStep:
    """What the step chose and measured."""

    model: FeedModel
    choice: HeadChoice  # the shipped head: student + both signals
    vectors: dict[str, FloatArray] | None
    priors: dict[str, float]
    validation: list[Impression]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> facts
    heads: dict[str, HeadChoice] = field(default_factory=dict)  # non-shipped variants
    teacher: Scorer | None = None  # the teacher's scores of any impressions
    history_len: int = 50  # the reads the device averages (the student's L)


def _prior_rows(data: Data, fraction: float) -> list[tuple[str, int]]:
    """(article, clicked) of every known candidate shown to the training users."""
    rows = []
    for imp in data.train():
        if held_out(imp.user or str(imp.impression_id), fraction):
            continue
        rows += [
            (c, y) for c, y in zip(imp.candidates, imp.labels, strict=True) if c in data.articles
        ]
    return rows


def _all_priors(
    model: FeedModel, data: Data, vectors: dict[str, FloatArray] | None
) -> dict[str, float]:
    ids = list(data.articles)
    vecs = np.stack([vectors[i] for i in ids]) if vectors else None
    values = np.clip(model.priors([data.articles[i] for i in ids], vecs), -MAX_PRIOR, MAX_PRIOR)
    return {i: round(float(v), 4) for i, v in zip(ids, values, strict=True)}  # as published


def validation_set(cfg: Config, data: Data) -> list[Impression]:
    """The validation impressions every export choice is made on (module docstring).

    Raises:
        DataError: the held-out users have no usable impression.
    """
    fraction = cfg.teacher.validation_fraction
    validation = validation_impressions(data.train, data.articles, fraction, seed=cfg.seed)
    if not validation:
        raise DataError("no validation impressions: the held-out users have no usable impression")
    return validation


def validation_auc(runner: ModelRunner, validation: Sequence[Impression], data: Data) -> float:
    """Mean per-impression AUC of a bundle's model on the validation impressions."""
    scores, _ = on_device_scores(runner, validation, data.articles)
    labels = [np.asarray(imp.labels) for imp in validation]
    aucs = [auc(y, s.astype(np.float64)) for y, s in zip(labels, scores, strict=True)]
    return round(float(np.nanmean(aucs)), 4)


def choose(
    cfg: Config,
    data: Data,
    *,
    runner: ModelRunner,
    encoder: str,
    vectors: dict[str, FloatArray] | None,
    teacher: Scorer | None,
    validation: list[Impression],
) -> FeedStep:
    """Steps 2-3 of the module docstring: every choice on the validation impressions."""
    fraction = cfg.teacher.validation_fraction
    rows = _prior_rows(data, fraction)
    history_len = cfg.student.history_len  # the device averages the last L reads
    log(
        f"feed signals: {len(validation)} validation impressions (held-out users, short "
        f"histories, impression negatives); prior fitted on {len(rows):,} shown articles"
    )
    student, _ = on_device_scores(runner, validation, data.articles)
    student_val: Scores = [s.astype(np.float64) for s in student]
    teacher_val: Scores | None = teacher(validation) if teacher is not None else None
    best: tuple[float, FeedStep] | None = None
    variants: dict[str, dict[str, Any]] = {}
    for c in PRIOR_C:
        start = time.perf_counter()
        model = fit_prior(rows, data.articles, vectors, encoder=encoder, c=c, seed=cfg.seed)
        priors = _all_priors(model, data, vectors)
        cos, prior = cosines_and_priors(validation, vectors, priors, history_len)
        choice = choose_head(validation, student_val, cos, prior)
        variants[f"prior C={c}"] = {
            "validation_auc": choice.validation_auc,
            "fit_s": round(time.perf_counter() - start, 1),
        }
        log(f"feed signals: prior C={c}: student + signals validation AUC {choice.validation_auc}")
        if best is None or choice.validation_auc > best[0]:
            best = (choice.validation_auc, FeedStep(model, choice, vectors, priors, validation))
    assert best is not None
    step = best[1]
    step.variants = variants
    step.history_len = history_len
    cos, prior = cosines_and_priors(validation, vectors, step.priors, history_len)
    combos: dict[str, tuple[Scores | None, Scores | None, Scores | None]] = {
        "signals_prior": (None, None, prior),
        "student+prior": (student_val, None, prior),
    }
    if cos is not None:
        combos["signals_vector"] = (None, cos, None)
        combos["signals_both"] = (None, cos, prior)
        combos["student+vector"] = (student_val, cos, None)
    if teacher_val is not None:
        combos["teacher+signals"] = (teacher_val, cos, prior)
    for name, (m, v, p) in combos.items():
        step.heads[name] = choose_head(validation, m, v, p)
    return step


def with_signals(
    articles: Mapping[str, Mapping[str, Any]], step: FeedStep
) -> dict[str, dict[str, Any]]:
    """Every article as the publisher sends it: its fields plus ``vector`` and ``prior``."""
    ids = list(articles)
    vecs = np.stack([step.vectors[i] for i in ids]) if step.vectors else None
    extra = step.model.feed_fields([articles[i] for i in ids], vecs)
    return {i: {**articles[i], **fields} for i, fields in zip(ids, extra, strict=True)}


def ranker_scores(
    bundle: Bundle, impressions: Sequence[Impression], articles: Mapping[str, Mapping[str, Any]]
) -> Scores:
    """Each impression ranked the way ``Recommender.recommend`` ranks it: the history's
    article dicts as the reader's reads, every candidate returned with its score."""
    ranker = Ranker(bundle)
    out = []
    for imp in impressions:
        ranker.load_reader([articles[h] for h in imp.history if h in articles])
        cands = [articles[c] for c in dict.fromkeys(imp.candidates)]  # a repeat: one score
        recs = ranker.recommend(cands, k=len(cands), now=0.0, exclude_read=False)
        by_id = {r.id: r.score for r in recs}
        out.append(np.array([by_id[c] for c in imp.candidates], dtype=np.float64))
    return out


def variant_scores(
    step: FeedStep,
    impressions: Sequence[Impression],
    *,
    student: Scores,
    teacher: Scores | None,
) -> dict[str, Scores]:
    """Every non-shipped variant's scores of ``impressions`` (with the heads chosen on
    validation): the signals alone and the student or teacher with some of them."""
    cos, prior = cosines_and_priors(impressions, step.vectors, step.priors, step.history_len)
    sizes = [len(imp.candidates) for imp in impressions]
    inputs = {
        "signals_prior": (None, None, prior),
        "student+prior": (student, None, prior),
        "signals_vector": (None, cos, None),
        "signals_both": (None, cos, prior),
        "student+vector": (student, cos, None),
        "teacher+signals": (teacher, cos, prior),
    }
    return {
        name: apply_head(choice.head, *inputs[name], sizes) for name, choice in step.heads.items()
    }


# ---------------------------------------------------------------- in the pipeline
def teacher_scorer(teacher: Teacher, table: ArticleTable, history_len: int) -> Scorer:
    """The teacher's scores of any impressions whose articles are in ``table``."""
    from .models.teacher import score

    def scores(impressions: Sequence[Impression]) -> Scores:
        hist, cands = evaluation_arrays(impressions, table, history_len)
        return [s.astype(np.float64) for s in unpad(score(teacher, hist, cands), impressions)]

    return scores


def fit_step(
    state: Run,
    prepared: Prepared,
    runner: ModelRunner,
    teacher: Teacher | None,
    validation: list[Impression],
) -> FeedStep | None:
    """Steps 1-3 (module docstring), timed as ``feed``; the publisher's side saved in
    ``OUT/feed/``. None when ``cfg.feed_signals`` is off."""
    cfg = state.cfg
    if not cfg.feed_signals:
        return None
    with state.timed("feed"):
        data = prepared.data
        encoder, vectors = prepared.feed_encoder, prepared.feed_vectors
        log(f"feed signals: vectors from {encoder or 'no encoder'}, click prior per article")
        scorer = (
            teacher_scorer(teacher, prepared.table, cfg.teacher.history_len)
            if teacher is not None
            else None
        )
        step = choose(
            cfg,
            data,
            runner=runner,
            encoder=encoder,
            vectors=vectors,
            teacher=scorer,
            validation=validation,
        )
        step.teacher = scorer
        head = step.model.head = step.choice.head
        step.model.save(state.out / FEED_FOLDER)
        log(
            f"feed signals: shipped head {head.to_dict()} (validation AUC "
            f"{step.choice.validation_auc}, prior C={step.model.c})"
        )
    return step


def measure_step(state: Run, prepared: Prepared, bundle: Bundle, step: FeedStep) -> dict[str, Any]:
    """Score every variant on the evaluation impressions (rows ``shipped``,
    ``shipped_without_signals``, ``shipped_half_signals`` (a random half of the articles
    carry them), ``teacher+signals``, ``signals_*``, ``student+*``) and on the slice; the
    report's ``feed`` section (validation figures, choices, slice)."""
    cfg, data = state.cfg, prepared.data
    fed = with_signals(data.articles, step)
    rng = np.random.default_rng([cfg.seed, 18])
    half = {i: fed[i] if rng.random() < 0.5 else data.articles[i] for i in data.articles}
    evaluated = {
        "shipped": ranker_scores(bundle, data.evaluation, fed),
        "shipped_without_signals": ranker_scores(bundle, data.evaluation, data.articles),
        "shipped_half_signals": ranker_scores(bundle, data.evaluation, half),
    }
    student = [np.asarray(s, np.float64) for s in state.scores["student_int8"]]
    teacher = state.scores.get("teacher")
    evaluated.update(
        variant_scores(
            step,
            data.evaluation,
            student=student,
            teacher=None if teacher is None else [np.asarray(s, np.float64) for s in teacher],
        )
    )
    for name, scores in evaluated.items():
        state.scores[name] = scores
        state.rows[name] = summarize(
            data.evaluation, scores, n_bootstrap=cfg.bootstrap, seed=cfg.seed
        )
    validation = {name: choice.validation_auc for name, choice in step.heads.items()} | {
        "shipped": step.choice.validation_auc
    }
    section: dict[str, Any] = {
        "encoder": step.model.encoder or None,
        "vector_bytes_per_article": step.model.dim,
        "prior_c": step.model.c,
        "head": step.choice.head.to_dict(),
        "n_validation_impressions": len(step.validation),
        "validation_auc": validation,
        "prior_variants": step.variants,
        "head_grid": step.choice.tried,
        # per validation impression (NaN: one class only), to pair two runs' choices
        "validation_per_impression": {
            "shipped": step.choice.per_impression,
            **{name: c.per_impression for name, c in step.heads.items()},
        },
    }
    if data.slice:
        section["slice"] = slice_rows(state, prepared, bundle, step, fed)
    return section


def slice_rows(
    state: Run,
    prepared: Prepared,
    bundle: Bundle,
    step: FeedStep,
    fed: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The 400 RecPrompt impressions: our models beside the published table."""
    from .evaluation.baselines import MiniLMCosine
    from .evaluation.published import PUBLISHED

    cfg, data = state.cfg, prepared.data
    imps = data.slice
    student = [s.astype(np.float64) for s in ranker_scores(bundle, imps, data.articles)]
    teacher = step.teacher(imps) if step.teacher is not None else None
    scored: dict[str, Scores] = {
        "shipped": ranker_scores(bundle, imps, fed),
        "student_int8": student,
    }
    if prepared.minilm is not None:
        zero_shot = MiniLMCosine(prepared.minilm)
        scored["minilm"] = [zero_shot.score(i.history, i.candidates) for i in imps]
    if teacher is not None:
        scored["teacher"] = teacher
    scored.update(variant_scores(step, imps, student=student, teacher=teacher))
    ours = {
        name: summarize(imps, s, n_bootstrap=cfg.bootstrap, seed=cfg.seed)
        for name, s in scored.items()
    }
    return {
        "file": data.slice_file,
        "n_impressions": len(imps),
        "ours": ours,
        "published": PUBLISHED,
    }
