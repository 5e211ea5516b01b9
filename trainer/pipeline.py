"""``edgerec-train pipeline``: the whole training run, one step after the other.

::

    prepare    read and clean the data folder; featurize every article once
               (edgerec.featurize, the device's hashing); MiniLM vectors when configured
    baselines  random, popularity, category, TF-IDF, MiniLM cosine on the evaluation file
    examples   the training examples, written once as shards (OUT/examples/), read by
               every model after
    teacher    the teacher (and, in the research preset, the teacher_no_minilm ablation)
    students   student_float, distilled from the teacher (and, in the research preset,
               student_no_teacher, the same student on clicks only)
    export     TFLite float / dynamic / full int8, each written and measured on-device;
               the feed signals (click prior, encoder vectors) and the head that adds
               them, chosen on validation impressions of held-out users (:mod:`.feed`);
               the chosen int8 model with its head as bundle/, the Keras student as
               student/, the publisher's feed model as feed/
    report     report.json, report.md, report.png

Outputs in ``--out``: ``report.*``, ``teacher/`` (``teacher_no_minilm/``),
``variants/<quantization>/``, ``student/``, ``bundle/``, ``feed/``, ``examples/``. ``report.json``'s
``timings_s`` has each step's seconds, ``peak_rss_mb`` the process's peak resident memory
at the end of each step (a high-water mark: the step that raised it is the first whose
figure is higher) and ``training`` each trained model's steady-state examples per second
and validation AUC per epoch; ``comparison`` each model's AUC by history-category group
and its paired difference against ``minilm`` (:mod:`.evaluation.comparison`).
``edgerec-train evaluate`` (the baselines alone) is
:func:`.evaluation.baseline_report.evaluate`.

The steps share a :class:`Run` (config, output folder, report rows, timings) and the
:class:`Prepared` data. Models and export import TensorFlow, so they are imported inside
the steps that need them: ``evaluate`` never starts TensorFlow.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgerec import FeatureSpec
from edgerec._fs import atomic_write

from . import cluster, feed
from .config import Config
from .data.embeddings import cached_vectors, installed
from .data.loading import Data, load
from .data.training_examples import (
    ArticleTable,
    ExampleShards,
    TrainingSet,
    featurize_table,
    training_set,
    unpad,
)
from .errors import DataError
from .evaluation.baselines import score_baselines
from .evaluation.comparison import compare
from .evaluation.report import summarize, write_report
from .experiments import feed_vectors, teacher_ablation
from .progress import log

if TYPE_CHECKING:
    from edgerec.model import Bundle

    from .evaluation.on_device import Measured
    from .models.distillation import TeacherScores
    from .models.student import Student
    from .models.teacher import Teacher

__all__ = ["Prepared", "Run", "run"]

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


@dataclass
class Run:
    """What the steps share: the config, the output folder, the report rows so far and
    the seconds each step took."""

    cfg: Config
    out: Path
    cache: Path
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # high-water mark per step
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)  # per trained model
    # each row's per-impression scores, aligned with the evaluation impressions
    scores: dict[str, list[Any]] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Record the seconds the block takes as ``timings[step]`` and the process's peak
        resident memory at its end as ``peak_rss_mb[step]`` (when it succeeds)."""
        start = time.perf_counter()
        yield
        self.timings[step] = time.perf_counter() - start
        self.peak_rss_mb[step] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def log_row(self, name: str) -> None:
        row = self.rows[name]
        speed = self.fits.get(name, {}).get("examples_per_s")
        rate = f", {speed:,.0f} training examples/s" if speed else ""
        log(f"{name}: AUC {row['auc']:.3f} {row['auc_ci']} ({self.timings[name]:.0f} s{rate})")

    def strategy(self) -> Any:
        """The ``tf.distribute`` strategy of the config (made once per process)."""
        from .models.training import distribution

        return distribution(self.cfg.distribute, self.cfg.cpu_replicas)


@dataclass(frozen=True)
class Prepared:
    """The data, featurized once: what every later step reads."""

    data: Data
    table: ArticleTable
    spec: FeatureSpec  # the default spec: the teacher's hash space
    features: IntArray  # (A, F) hashed with ``spec``, row 0 padding
    minilm: dict[str, FloatArray] | None  # MiniLM vectors by article id, when computed
    feed_encoder: str = ""  # the feed vectors' encoder ("": none; cfg.feed_encoder)
    feed_vectors: dict[str, FloatArray] | None = None  # its vectors by article id


@dataclass(frozen=True)
class Students:
    """What the student step leaves for the export: the distilled student, its Keras
    scores of the evaluation impressions, its inputs and the teacher's scorer."""

    inputs: TrainingSet
    student: Student
    keras_scores: list[FloatArray]
    scorer: TeacherScores | None
    teacher: Teacher | None


def run(cfg: Config, *, data_dir: Path, out: Path, cache: Path, eval_fraction: float) -> Path:
    """The whole pipeline (module docstring); returns the path of ``report.json`` (for a
    worker of a cluster other than the chief, of ``worker.json``: it only trains).

    Raises:
        ConfigError: the ``tf.distribute`` strategy cannot be made.
        ClusterError: ``multiworker`` without a usable ``TF_CONFIG`` or ``shared_dir``.
        DataError: the data folder is unusable, or gives no training examples.
        ExportError: no int8 variant of the student converts.
    """
    log(f"config {cfg.name}: {cfg.teacher}")
    me = cluster.role(cfg)
    shared = cluster.shared(cfg, out)  # before TensorFlow starts: a missing shared_dir
    if cfg.distribute != "none":  # before anything starts TensorFlow
        from .models.training import start_distribution

        start_distribution(cfg)
    state = Run(cfg, out, cache)
    if not me.chief:
        return run_worker(state, me, shared)
    with state.timed("prepare"):
        prepared = prepare(data_dir, eval_fraction, cfg, cache)
    with state.timed("baselines"):
        state.rows.update(baselines(prepared, cfg, cache, state.scores))
    with state.timed("examples"):
        examples = prepare_examples(state, prepared, cluster.examples_folder(cfg, out))
        teachers = teacher_inputs(state, prepared, examples)
        students = student_inputs(state, prepared, examples)
    vectors = _teacher_vectors(prepared, cfg)
    if me.count > 1:  # the other workers wait at the barrier for these
        cluster.publish(shared, cluster.WorkerInputs(teachers.features, students.features, vectors))
        cluster.barrier(state.strategy())
    teacher = train_teachers(state, teachers, vectors, prepared.data)
    trained = train_students(state, students, teacher, prepared.data)
    with state.timed("export"):
        exported = export_student(state, prepared, trained)
    exported.update(measure_feed_vectors(state, prepared, trained, vectors))
    return report(state, prepared.data, exported)


def run_worker(state: Run, me: cluster.Role, shared: Path) -> Path:
    """A worker of a cluster other than the chief: wait for the chief's inputs, train the
    same models in lockstep on its own shards, write ``OUT/worker.json`` (its timings and
    throughput); the chief evaluates, exports and reports."""
    cfg = state.cfg
    log(f"worker {me.index} of {me.count}: waiting for the chief's prepared examples")
    cluster.barrier(state.strategy())
    published = cluster.load(shared)
    examples = ExampleShards.open(cluster.examples_folder(cfg, state.out))
    teachers = _worker_set(examples, FeatureSpec.default(), published.teacher_features, cfg, True)
    students = _worker_set(examples, _student_spec(cfg), published.student_features, cfg, False)
    teacher = train_teachers(state, teachers, published.vectors, None)
    train_students(state, students, teacher, None)
    state.out.mkdir(parents=True, exist_ok=True)
    path = state.out / "worker.json"
    summary = {
        "worker": me.index,
        "timings_s": state.timings,
        "peak_rss_mb": state.peak_rss_mb,
        "training": state.fits,
    }
    atomic_write(path, (json.dumps(summary, indent=1) + "\n").encode())
    log(f"worker {me.index}: trained; the chief evaluates, exports and reports")
    return path


def _worker_set(
    examples: ExampleShards, spec: FeatureSpec, features: IntArray, cfg: Config, teacher: bool
) -> TrainingSet:
    """A worker's :class:`TrainingSet`: no evaluation impressions (the chief evaluates)."""
    length = cfg.teacher.history_len if teacher else cfg.student.history_len
    negatives = cfg.teacher.negatives if teacher else cfg.student.negatives
    validation = examples.validation(length, negatives, cfg.seed)
    empty = np.zeros((0, length), np.int32), np.zeros((0, 1), np.int32)
    return TrainingSet(spec, features, examples, length, negatives, validation, *empty)


def prepare(data_dir: Path, eval_fraction: float, cfg: Config, cache: Path) -> Prepared:
    """Step 1: load and clean the data, featurize the article table with the default spec,
    and encode the MiniLM vectors once (the baseline and the teacher share them) when
    ``cfg.minilm`` and the ``[embed]`` extra is installed."""
    data = load(data_dir, eval_fraction)
    table = ArticleTable.build(data.articles)
    spec = FeatureSpec.default()
    features = featurize_table(data.articles, table, spec)
    minilm = cached_vectors(data.articles, cache) if cfg.minilm and installed() else None
    encoder, vectors = "", None
    if cfg.feed_signals:
        encoder, vectors = feed.encoder_vectors(cfg, data.articles, minilm, cache)
    return Prepared(data, table, spec, features, minilm, encoder, vectors)


def baselines(
    prepared: Prepared, cfg: Config, cache: Path, scores: dict[str, list[Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Step 2: the baseline rows (:func:`~.evaluation.baselines.score_baselines`), their
    per-impression scores into ``scores``."""
    return score_baselines(
        prepared.data,
        names=None,
        bootstrap=cfg.bootstrap,
        seed=cfg.seed,
        cache=cache,
        minilm=cfg.minilm,
        minilm_vectors=prepared.minilm,
        scores=scores,
    )


def _teacher_vectors(prepared: Prepared, cfg: Config) -> FloatArray | None:
    """(A, 384) MiniLM vectors in table order for the teacher (row 0 zeros), or None;
    with ``teacher.encoder = "feed"`` the feed encoder's vectors (mpnet: (A, 768))."""
    source = prepared.minilm
    if cfg.teacher.encoder == "feed" and prepared.feed_vectors is not None:
        source = prepared.feed_vectors
    if source is not None and cfg.teacher.use_minilm:
        dim = len(next(iter(source.values())))
        vectors = np.zeros((len(prepared.table), dim), dtype=np.float32)  # (A, 384|768)
        vectors[1:] = np.stack([source[i] for i in prepared.table.ids[1:]])
        return vectors
    if cfg.minilm and cfg.teacher.use_minilm:
        log("teacher without MiniLM vectors: the [embed] extra is not installed")
    return None


def prepare_examples(state: Run, prepared: Prepared, folder: Path) -> ExampleShards:
    """Step 3: the training examples of the training log, written once as shards in
    ``folder`` (``OUT/examples``; in a cluster, ``shared_dir/examples``): every model
    reads them (:class:`ExampleShards`).

    Raises:
        DataError: the training log gives no examples.
    """
    cfg = state.cfg
    examples = ExampleShards.prepare(
        prepared.data.train,
        prepared.table,
        folder,
        validation_fraction=cfg.teacher.validation_fraction,
        seed=cfg.seed,
        shard_size=cfg.shard_size,
        min_shards=cluster.role(cfg).count,
    )
    log(
        f"examples: {examples.n_train} train in {len(examples.shard_names)} shard(s), "
        f"{examples.n_validation} validation (held-out users)"
    )
    if examples.n_train == 0 or examples.n_validation == 0:
        raise DataError("no training examples: the training logs have no known histories")
    return examples


def _student_spec(cfg: Config) -> FeatureSpec:
    n = cfg.student.n_buckets
    return FeatureSpec(n_buckets=n) if n else FeatureSpec.default()


def teacher_inputs(state: Run, prepared: Prepared, examples: ExampleShards) -> TrainingSet:
    """The teachers' :class:`TrainingSet`: the default hash space, 30-item histories."""
    tc = state.cfg.teacher
    return training_set(
        examples,
        prepared.data.evaluation,
        prepared.table,
        spec=prepared.spec,
        features=prepared.features,
        history_len=tc.history_len,
        negatives=tc.negatives,
        seed=state.cfg.seed,
    )


def student_inputs(state: Run, prepared: Prepared, examples: ExampleShards) -> TrainingSet:
    """The students' :class:`TrainingSet`: their own (smaller) hash space, 50 items."""
    sc, spec = state.cfg.student, _student_spec(state.cfg)
    return training_set(
        examples,
        prepared.data.evaluation,
        prepared.table,
        spec=spec,
        features=featurize_table(prepared.data.articles, prepared.table, spec),
        history_len=sc.history_len,
        negatives=sc.negatives,
        seed=state.cfg.seed,
    )


def train_teachers(
    state: Run, inputs: TrainingSet, vectors: FloatArray | None, data: Data | None
) -> Teacher:
    """Step 4: the teacher the students learn from (on the MiniLM ``vectors`` when there
    are some), then the configured ablation (:mod:`.experiments.teacher_ablation`); each
    evaluated when ``data`` is given (the chief). Returns the teacher."""
    kept = {}
    for name, vecs in [("teacher", vectors), *teacher_ablation.variants(state.cfg, vectors)]:
        with state.timed(name):
            kept[name] = _fit_teacher(state, data, inputs, name, vecs)
        if data is not None:
            state.log_row(name)
    return kept["teacher"]  # the one the students learn from


def _fit_teacher(
    state: Run, data: Data | None, inputs: TrainingSet, name: str, vectors: FloatArray | None
) -> Teacher:
    """Train one teacher (weights and config saved in ``OUT/<name>``); with ``data``, its
    report row."""
    from .models.teacher import score, train_teacher

    log(f"training {name} ({'with' if vectors is not None else 'without'} MiniLM vectors)")
    model, fit = train_teacher(
        inputs.examples,
        inputs.validation,
        inputs.features,
        vectors,
        spec=inputs.spec,
        cfg=state.cfg.teacher,
        seed=state.cfg.seed,
        out_dir=state.out / name,
        strategy=state.strategy(),
    )
    state.fits[name] = fit.as_dict()
    if data is not None:
        scores = score(model, inputs.hist, inputs.cands)  # (N, Cmax): drop padded columns
        state.scores[name] = unpad(scores, data.evaluation)
        state.rows[name] = summarize(
            data.evaluation,
            state.scores[name],
            n_bootstrap=state.cfg.bootstrap,
            seed=state.cfg.seed,
        )
    return model


def train_students(
    state: Run, inputs: TrainingSet, teacher: Teacher, data: Data | None
) -> Students:
    """Step 5: the student distilled from the teacher, ``student_float`` (the one
    exported); with ``student_ablation`` first ``student_no_teacher``, the same student on
    clicks only. Each evaluated when ``data`` is given (the chief)."""
    from .models.distillation import teacher_scorer

    scorer = teacher_scorer(teacher, state.cfg.teacher.history_len)
    runs: list[tuple[str, TeacherScores | None]] = [("student_float", scorer)]
    if state.cfg.student_ablation:
        runs.insert(0, ("student_no_teacher", None))
    trained = {}
    for name, distil in runs:
        with state.timed(name):
            trained[name] = _fit_student(state, data, inputs, name, distil)
        if data is not None:
            state.log_row(name)
    student, scores = trained["student_float"]
    return Students(inputs, student, scores, scorer, teacher)


def _fit_student(
    state: Run, data: Data | None, inputs: TrainingSet, name: str, teacher: TeacherScores | None
) -> tuple[Student, list[FloatArray]]:
    """Train one student; with ``data``, record its report row. The student and its Keras
    scores of the evaluation impressions (none without ``data``)."""
    from .models.student import score_indices, train_student

    log(f"training {name} ({'distilled' if teacher is not None else 'click loss only'})")
    student, fit = train_student(
        inputs.examples,
        inputs.validation,
        inputs.features,
        inputs.spec,
        state.cfg.student,
        teacher=teacher,
        seed=state.cfg.seed,
        strategy=state.strategy(),
    )
    state.fits[name] = fit.as_dict()
    if data is None:
        return student, []
    scores = unpad(
        score_indices(student, inputs.features, inputs.hist, inputs.cands), data.evaluation
    )
    state.scores[name] = scores
    state.rows[name] = summarize(
        data.evaluation, scores, n_bootstrap=state.cfg.bootstrap, seed=state.cfg.seed
    )
    return student, scores


def export_student(state: Run, prepared: Prepared, students: Students) -> dict[str, Any]:
    """Step 5: ``student_float`` as TFLite in each measured quantization, each written as
    a bundle in ``variants/`` and measured on-device; the chosen int8 one becomes the
    ``student_int8`` row and ``bundle/``; the Keras student is saved in ``student/``.
    Returns the report's ``export`` section."""
    from .export import golden_inputs, representative

    cfg, sc, inputs = state.cfg, state.cfg.student, students.inputs
    rng = np.random.default_rng(cfg.seed)  # calibration draws, then latency inputs
    validation = feed.validation_set(cfg, prepared.data)  # every export choice is made on it
    calibration = representative(inputs, sc.representative, state.cfg.seed)
    golden = golden_inputs(
        prepared.data.evaluation, prepared.data.articles, inputs.spec, sc.history_len
    )
    measured = (
        ("float", "dynamic", "full") if sc.quantization == "auto" else ("float", sc.quantization)
    )
    variants: dict[str, dict[str, Any]] = {}
    results: dict[str, Measured] = {}
    for quant in measured:
        result = _export_variant(
            state,
            prepared,
            students,
            quant,
            calibration=calibration,
            golden=golden,
            rng=rng,
            validation=validation,
        )
        if isinstance(result, str):
            variants[quant] = {"error": result}
            continue
        results[quant], variants[quant] = result, result.facts
    return _ship(
        state,
        prepared,
        students,
        variants=variants,
        results=results,
        calibration=calibration,
        golden=golden,
        validation=validation,
    )


def _export_variant(
    state: Run,
    prepared: Prepared,
    students: Students,
    quant: str,
    *,
    calibration: list[tuple[IntArray, IntArray]],
    golden: list[tuple[IntArray, IntArray]],
    rng: np.random.Generator,
    validation: list[Any],
) -> Measured | str:
    """One quantization converted, written to ``variants/<quant>`` and measured
    on-device; the converter's error message when it does not convert."""
    from .evaluation.on_device import measure_bundle
    from .export import convert, make_bundle

    start = time.perf_counter()
    try:
        model = convert(students.student, quant, iter(calibration) if quant == "full" else None)
    except Exception as exc:  # a converter failure is a measured outcome, not a crash
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        log(f"TFLite {quant}: conversion failed ({error[:120]})")
        return error
    bundle = make_bundle(  # each variant as a loadable bundle, to measure it as a device
        state.out / "variants" / quant,
        students.student,
        model,
        model_version=1,
        quantization={"mode": quant},
        golden_inputs=golden,
        metrics={},
        cold_start_prior={},
    )
    result = measure_bundle(
        bundle,
        prepared.data.evaluation,
        prepared.data.articles,
        keras_scores=students.keras_scores,
        rng=rng,
        bootstrap=state.cfg.bootstrap,
        seed=state.cfg.seed,
    )
    result.facts["validation_auc"] = feed.validation_auc(result.runner, validation, prepared.data)
    result.facts["convert_s"] = round(time.perf_counter() - start, 1)
    log(
        f"TFLite {quant}: {len(model) / 1e6:.2f} MB, AUC {result.row['auc']:.4f}, invoke p50 "
        f"{result.facts['invoke_p50_ms_50x500']} ms (50 x 500)"
    )
    return result


def _ship(
    state: Run,
    prepared: Prepared,
    students: Students,
    *,
    variants: dict[str, dict[str, Any]],
    results: dict[str, Measured],
    calibration: list[tuple[IntArray, IntArray]],
    golden: list[tuple[IntArray, IntArray]],
    validation: list[Any],
) -> dict[str, Any]:
    """Choose the int8 variant, write ``student/`` and ``bundle/`` with the metrics the
    device will show and the cold-start prior; the report's ``export`` section."""
    from .evaluation.on_device import parity
    from .export import choose_quantization, cold_start_prior, make_bundle, save_student

    cfg, sc, data = state.cfg, state.cfg.student, prepared.data
    shipped, why = choose_quantization(variants, sc.quantization)
    log(f"shipping {shipped}: {why}")
    step = feed.fit_step(state, prepared, results[shipped].runner, students.teacher, validation)
    if "float" in results:
        for quant in ("dynamic", "full"):
            if quant in results:
                variants[quant]["parity_vs_tflite_float"] = parity(
                    results["float"].scores, results[quant].scores
                )
    state.rows["student_int8"] = row = results[shipped].row
    state.scores["student_int8"] = results[shipped].scores
    metrics = {k: row[k] for k in ("auc", "auc_ci", "mrr", "ndcg@5", "ndcg@10")}
    metrics = {
        **metrics,
        "teacher": state.rows.get("teacher"),
        "n_impressions": len(data.evaluation),
    }
    prior = cold_start_prior(data.train, data.articles)
    save_student(
        state.out / "student",
        students.student,
        seed=cfg.seed,
        representative=calibration,
        golden_inputs=golden,
        metrics=metrics,
        cold_start_prior=prior,
    )
    version = sc.version or int(time.time())

    def write(metrics: dict[str, Any]) -> Bundle:
        return make_bundle(
            state.out / "bundle",
            students.student,
            results[shipped].runner.bundle.model,
            model_version=version,
            quantization={"mode": shipped, "why": why, "measured": variants},
            golden_inputs=golden,
            metrics=metrics,
            cold_start_prior=prior,
            feed=None if step is None else (step.model.signals(), step.choice.head),
        )

    bundle = write(metrics)
    signals = {}
    if step is not None:  # measured through the written bundle, then kept in its metrics
        signals = {"feed": feed.measure_step(state, prepared, bundle, step)}
        shipped_row = state.rows["shipped"]
        with_signals = {k: shipped_row[k] for k in ("auc", "auc_ci", "mrr", "ndcg@10")}
        step.model.metrics = {"with_feed_signals": with_signals}
        step.model.quantization = shipped
        step.model.save(state.out / feed.FEED_FOLDER)  # what `edgerec-train export` keeps
        bundle = write({**metrics, **step.model.metrics})
    return {
        **signals,
        "shipped": shipped,
        "why": why,
        "bundle_bytes": sum(p.stat().st_size for p in (state.out / "bundle").iterdir()),
        "model_bytes": len(bundle.model),
        "variants": variants,
        "parity_keras_vs_int8": variants[shipped]["parity_vs_keras"],
    }


def measure_feed_vectors(
    state: Run, prepared: Prepared, students: Students, vectors: FloatArray | None
) -> dict[str, Any]:
    """After the export: the feed-vector student (:mod:`.experiments.feed_vectors`), when
    the teacher had MiniLM vectors and ``student.feed_vector_variant`` is set."""
    if vectors is None or not state.cfg.student.feed_vector_variant:
        return {"feed_vector_variant": "not measured (needs the MiniLM vectors)"}
    with state.timed(feed_vectors.NAME):
        row, facts = feed_vectors.measure(
            state.cfg,
            students.inputs,
            evaluation=prepared.data.evaluation,
            scorer=students.scorer,
            minilm=vectors,
            strategy=state.strategy(),
        )
    state.rows[feed_vectors.NAME] = row
    return {"feed_vector_variant": facts}


def report(state: Run, data: Data, exported: dict[str, Any]) -> Path:
    """Step 6: ``report.json`` (every row, the timings, the export section), ``.md``,
    ``.png``; returns the JSON's path."""
    notes = [
        f"config: {state.cfg.name}",
        f"shipped bundle: {state.out / 'bundle'} ({exported['bundle_bytes']:,} bytes, "
        f"{exported['shipped']} int8: {exported['why']})",
        f"student_int8 is measured through the on-device path (edgerec.featurize + LiteRT); "
        f"Keras vs int8: max |score diff| {exported['parity_keras_vs_int8']['max_abs_diff']}, "
        f"top-10 agreement {exported['parity_keras_vs_int8']['top10_agreement']}",
    ]
    if "feed" in exported:
        notes.append(
            "shipped is the bundle as a device ranks (edgerec.ranking.Ranker) articles that "
            "carry the publisher's feed signals; shipped_without_signals the same bundle on "
            "plain articles (the fallback); every head was chosen on validation impressions"
        )
    compared = compare(
        data.evaluation,
        state.scores,
        data.articles,
        n_bootstrap=state.cfg.bootstrap,
        seed=state.cfg.seed,
    )
    path = write_report(
        state.out,
        eval_file=data.eval_file,
        n_impressions=len(data.evaluation),
        models=state.rows,
        notes=notes,
        timings=state.timings,
        comparison=compared,
        extra={
            "export": exported,
            "training": state.fits,
            "peak_rss_mb": {k: round(v) for k, v in state.peak_rss_mb.items()},
        },
    )
    log(f"wrote {path} and {path.with_suffix('.md')}")
    return path
