"""What the teacher and the student share in training.

* :class:`RankingModel`: the one training style. A model (or a thin training wrapper)
  says what its loss is per example; Keras's own ``train_step`` and ``fit()`` do the rest,
  as tensorflow/recommenders' models do. No hand-written training step.
* :func:`fit_streamed`: the loop both run: batches from the prepared shards
  (:func:`stream_dataset`; a step encodes each distinct article once,
  :func:`batch_articles`),
  AdamW with linear warm-up then cosine decay (:func:`warmup_cosine`), early stopping on
  held-out users (:class:`ValidationRanking`).
* ``tf.distribute``: :func:`distribution` makes the strategy once per process,
  :func:`cross_replica_sum` and :func:`undistributed` are what a replicated model needs.

A batch is ``({"history": (B, L), "candidates": (B, 1 + K)}, labels (B,), weights (B,))``:
article-table indices, the positive always in column 0 (so every label is 0).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from ..config import DISTRIBUTE, Config
from ..data.training_examples import Examples, ExampleShards
from ..errors import ConfigError
from ..progress import log

keras = tf.keras
_Callback: Any = keras.callbacks.Callback
_Model: Any = keras.Model

__all__ = [
    "FitReport",
    "RankingModel",
    "Schedule",
    "Throughput",
    "ValidationRanking",
    "batch_articles",
    "cross_replica_sum",
    "distribution",
    "fit_streamed",
    "ranking_auc",
    "start_distribution",
    "stream_dataset",
    "undistributed",
    "warmup_cosine",
]

_strategy: dict[str, Any] = {}
STEPS_PER_CALL = 8
M = TypeVar("M")

Scorer = Callable[[npt.NDArray[np.int32], npt.NDArray[np.int32]], npt.NDArray[np.float32]]


def batch_articles(history: tf.Tensor, candidates: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """The distinct articles of a batch and the batch re-indexed into them: ``rows`` (U,)
    table indices, padding (0) first so that index 0 still means padding, then
    ``history`` (B, L) and ``candidates`` (B, C) as positions in ``rows``.

    A model encodes the U rows once and gathers, instead of encoding every history slot
    and candidate (B * (L + C) of them; on MIND U is 10-20 times smaller).
    """
    flat = tf.concat(
        [tf.zeros([1], history.dtype), tf.reshape(history, [-1]), tf.reshape(candidates, [-1])],
        0,
    )  # (1 + B*L + B*C,)
    rows, where = tf.unique(flat)  # (U,), (1 + B*L + B*C,): rows[0] == 0
    n = tf.size(history)
    history_local = tf.reshape(where[1 : 1 + n], tf.shape(history))  # (B, L)
    candidates_local = tf.reshape(where[1 + n :], tf.shape(candidates))  # (B, C)
    return rows, history_local, candidates_local


def stream_dataset(
    examples: ExampleShards,
    *,
    history_len: int,
    negatives: int,
    batch_size: int,
    impression_weight: float,
    seed: int,
    strategy: Any,
    bucket: bool = False,
    truncate: bool = False,
) -> Any:
    """Endless training batches from the prepared shards, ``({history, candidates}, label 0,
    weight)``, for ``fit(steps_per_epoch=...)``; distributed when ``strategy`` is.

    ``batch_size`` is the global batch. Under a strategy each input pipeline (one per
    worker) makes the batches of its own replicas from its own shards
    (``distribute_datasets_from_function``): a worker of a cluster reads the shard files
    ``worker, worker + W, ...`` only, never the whole stream filtered.
    """
    width = 1 + negatives
    signature = (
        {
            "history": tf.TensorSpec((None, history_len), tf.int32),
            "candidates": tf.TensorSpec((None, width), tf.int32),
        },
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None,), tf.float32),
    )

    def pipeline(batch: int, shard_ids: list[int] | None) -> tf.data.Dataset:
        def batches() -> Iterator[Any]:
            yield from examples.batches(
                history_len=history_len,
                negatives=negatives,
                batch_size=batch,
                seed=seed,
                shard_ids=shard_ids,
                impression_weight=impression_weight,
                bucket=bucket,
                truncate=truncate,
            )

        data = tf.data.Dataset.from_generator(batches, output_signature=signature)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF  # each pipeline picks its shards
        )
        return data.with_options(options).prefetch(2)

    replicated = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    if not isinstance(strategy, replicated):
        return pipeline(batch_size, None)

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        count = len(examples.shard_names)
        mine = list(range(context.input_pipeline_id, count, context.num_input_pipelines))
        if not mine:  # fewer shards than workers: share them all (never an empty input)
            mine = list(range(count))
        log(
            f"input pipeline {context.input_pipeline_id} of {context.num_input_pipelines} "
            f"reads shards {mine}"
        )
        return pipeline(context.get_per_replica_batch_size(batch_size), mine)

    return strategy.distribute_datasets_from_function(per_worker)


class _EpochMeans:
    """The epoch means Keras logs (``loss``, ``top1``), held outside the model: a metric
    assigned to a Keras model becomes one of its weights (measured with tf-keras 2.21:
    ``total`` and ``count`` listed first in ``model.weights``), and would then be saved
    with the teacher's weights and copied with every ``get_weights``."""

    def __init__(self) -> None:
        # Means, not returned tensors: under a strategy they aggregate across replicas.
        self.loss = keras.metrics.Mean(name="loss")
        self.top1 = keras.metrics.Mean(name="top1")


class RankingModel(_Model):  # type: ignore[misc]
    """A Keras model trained by ``fit()`` through :meth:`compute_loss`, the hook Keras's
    own ``train_step`` calls. Subclasses implement :meth:`example_losses`; this class
    reduces it to the global batch's mean and keeps the epoch metrics.

    The mean is over the *global* batch: under a ``tf.distribute`` strategy each replica
    holds a share of the batch and the replicas' gradients are summed, so each replica
    divides its weighted sum by the whole batch's denominator
    (:func:`cross_replica_sum`); one step under a strategy equals one step on one device
    (``tests/trainer/models/test_distribute.py``). ``normalize_by`` picks the denominator:

    * ``"examples"``: the number of examples, what Keras's ``compile(loss=...)`` divides
      by (``SUM_OVER_BATCH_SIZE``); the teacher's loss;
    * ``"weights"``: the sum of the example weights, a weighted mean; the student's loss.
      With every weight 1 (the pipeline's students) the two are the same.
    """

    normalize_by = "examples"
    # Batches grouped by history length (ExampleShards.batches(bucket=True)): only worth it
    # for a model whose cost grows with the history length it actually reads.
    length_buckets = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._epoch = _EpochMeans()

    @property
    def metrics(self) -> list[Any]:
        return [self._epoch.loss, self._epoch.top1]  # reset by Keras at each epoch

    def example_losses(self, inputs: Any, labels: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        """(B,) loss of each example, from its inputs, label and (B, C) scores."""
        raise NotImplementedError

    def compute_loss(
        self,
        x: Any = None,
        y: tf.Tensor | None = None,
        y_pred: tf.Tensor | None = None,
        sample_weight: tf.Tensor | None = None,
    ) -> tf.Tensor:
        losses = self.example_losses(x, y, y_pred)  # (B,)
        if sample_weight is None:
            weights = tf.ones_like(losses)  # (B,)
        else:
            weights = tf.cast(sample_weight, losses.dtype)  # (B,)
        total = tf.reduce_sum(losses * weights)  # this replica's share of the batch
        if self.normalize_by == "weights":
            denominator = tf.reduce_sum(weights)
        else:
            denominator = tf.cast(tf.shape(losses)[0], losses.dtype)
        self._epoch.loss.update_state(total / denominator, sample_weight=denominator)
        return total / cross_replica_sum(denominator)

    def compute_metrics(
        self, x: Any, y: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None
    ) -> dict[str, tf.Tensor]:
        top = tf.argmax(y_pred, -1, output_type=tf.int32)  # (B,)
        hits = tf.cast(tf.equal(top, tf.cast(y, tf.int32)), tf.float32)  # (B,)
        self._epoch.top1.update_state(hits, sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics}


class Schedule(Protocol):
    """The training settings the teacher's and the student's configs share."""

    @property
    def batch_size(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def warmup_fraction(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def patience(self) -> int: ...
    @property
    def max_examples(self) -> int: ...
    @property
    def history_len(self) -> int: ...
    @property
    def negatives(self) -> int: ...
    @property
    def truncate_histories(self) -> bool: ...


def fit_streamed(
    model: RankingModel,
    train: ExampleShards,
    validation: Examples,
    cfg: Schedule,
    *,
    strategy: Any,
    score: Scorer,
    impression_weight: float,
    seed: int,
    name: str,
    keep_start: bool,
) -> ValidationRanking:
    """Train ``model`` (made under ``strategy.scope()``) on the prepared examples with
    Keras's ``fit()``: AdamW, warm-up then cosine decay over every step, early stopping on
    ``validation`` scored by ``score``. Returns the early-stopping monitor (its
    ``history``: the validation ranking AUC before training, then after each epoch); the
    model ends with the best weights seen."""
    data = stream_dataset(
        train,
        history_len=cfg.history_len,
        negatives=cfg.negatives,
        batch_size=cfg.batch_size,
        impression_weight=impression_weight,
        seed=seed,
        strategy=strategy,
        bucket=model.length_buckets,
        truncate=cfg.truncate_histories,
    )
    per_epoch = train.steps_per_epoch(cfg.batch_size, cfg.max_examples)
    # Several steps per call of the training function: Keras's per-step Python work
    # (callbacks, logs) and the call itself are paid once per STEPS_PER_CALL (measured on
    # MIND: the student 2,770 -> 2,942 examples/s, the teacher 2,901 -> 3,092). Not across
    # workers: tf-keras 2.21 fails the cross-worker gradient reduction inside the loop
    # that runs the steps (InvalidArgumentError at CollectiveGatherV2).
    many = not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    with strategy.scope():  # the optimizer's slots mirror the variables
        model.compile(
            optimizer=keras.optimizers.AdamW(
                learning_rate=warmup_cosine(
                    cfg.learning_rate, per_epoch * cfg.epochs, cfg.warmup_fraction
                ),
                weight_decay=cfg.weight_decay,
            ),
            steps_per_execution=min(STEPS_PER_CALL, per_epoch) if many else 1,
        )
        # build the weights, so that the untrained start can be measured (and kept)
        model({"history": validation.history[:1], "candidates": validation.candidates[:1]})
    monitor = ValidationRanking(validation, cfg.patience, score, name=name, keep_start=keep_start)
    monitor.throughput = Throughput(cfg.batch_size)
    model.fit(
        data,
        epochs=cfg.epochs,
        steps_per_epoch=per_epoch,
        callbacks=[monitor.throughput, monitor],  # throughput first: before validation
        verbose=1 if sys.stderr.isatty() else 2,
    )
    return monitor


def distribution(name: str = "none", cpu_replicas: int = 0) -> Any:
    """The ``tf.distribute`` strategy for ``Config.distribute``, made once per process
    (the teacher and the students share it):

    - ``none``: TensorFlow's default strategy (one device; its ops use every core);
    - ``mirrored``: ``MirroredStrategy`` over every GPU, else the CPU; with
      ``cpu_replicas`` > 0 the CPU is first split into that many logical devices (so the
      distributed path runs on a machine without GPUs, as the tests do);
    - ``multiworker``: ``MultiWorkerMirroredStrategy``, the cluster read from ``TF_CONFIG``.

    ``batch_size`` is the global batch: each of R replicas gets ``batch_size / R``.
    Call it before TensorFlow runs anything when ``cpu_replicas`` is set.
    """
    if name not in DISTRIBUTE:
        raise ValueError(f"distribute: expected one of {', '.join(DISTRIBUTE)}, got {name!r}")
    key = f"{name}:{cpu_replicas}"
    if key in _strategy:
        return _strategy[key]
    if _strategy:
        raise RuntimeError(f"one strategy per process: {next(iter(_strategy))} already made")
    if name == "none":
        made = tf.distribute.get_strategy()
    elif name == "multiworker":
        made = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        devices = None
        if cpu_replicas > 0 and not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
                )
            except RuntimeError:
                raise RuntimeError(
                    "cpu_replicas must be set before TensorFlow initialises its devices"
                ) from None
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        made = tf.distribute.MirroredStrategy(devices)
    _strategy[key] = made
    return made


def start_distribution(cfg: Config) -> None:
    """Make the configured ``tf.distribute`` strategy before anything starts TensorFlow
    (``cpu_replicas`` splits the CPU into logical devices, allowed only before that).
    The pipeline calls it only for ``distribute != none`` (importing this module starts
    TensorFlow).

    Raises:
        ConfigError: the strategy cannot be made (for example no usable ``TF_CONFIG``).
    """
    try:
        strategy = distribution(cfg.distribute, cfg.cpu_replicas)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"distribute={cfg.distribute}: {exc}") from None
    log(
        f"distribute={cfg.distribute}: {strategy.num_replicas_in_sync} replicas in sync; "
        f"global batch {cfg.teacher.batch_size} (teacher), {cfg.student.batch_size} (students)"
    )


def cross_replica_sum(value: tf.Tensor) -> tf.Tensor:
    """``value`` summed over the replicas in sync (itself outside a strategy): what
    :meth:`RankingModel.compute_loss` divides by so that its loss is the global batch's
    mean."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def undistributed(trained: M, make: Callable[[], M], sample: dict[str, Any]) -> M:
    """A plain copy of a model trained under a strategy (its variables mirrored), built
    with ``make()`` outside any scope and called on ``sample``: what export, scoring and
    saving work on. Outside a strategy, ``trained`` itself."""
    model: Any = trained
    if not any(isinstance(v, tf.distribute.DistributedValues) for v in model.weights):
        return trained
    plain = make()
    copy: Any = plain
    copy(sample)
    copy.set_weights(model.get_weights())
    return plain


def warmup_cosine(peak: float, steps: int, warmup_fraction: float) -> Any:
    """Linear warm-up to ``peak`` over the first ``warmup_fraction`` of ``steps``, then
    cosine decay to 0."""
    warmup = max(1, int(steps * warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), warmup_target=peak, warmup_steps=warmup
    )


def ranking_auc(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Per example: share of the K negatives scored below the positive (column 0), ties
    counting half; the AUC of a one-click impression."""
    pos = scores[:, :1]
    neg = scores[:, 1:]
    return ((neg < pos).sum(1) + 0.5 * (neg == pos).sum(1)) / neg.shape[1]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class FitReport:
    """What one training run measured: the validation ranking AUC before training and
    after each epoch, and its steady-state throughput (:class:`Throughput`)."""

    validation_ranking_auc: list[float]
    examples_per_s: float
    timed_examples: int
    timed_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Throughput(_Callback):  # type: ignore[misc]
    """Training examples per second, steady state: the wall time from the end of each
    epoch's first call of the training function (tracing and the first steps left out)
    to the end of its last, before any epoch-end work (validation) runs. With
    ``steps_per_execution`` a call runs several steps: ``batch`` is the last one's index.
    ``examples`` counts the timed steps."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.examples = 0
        self.seconds = 0.0
        self._start: float | None = None
        self._first = self._last = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._start is None:
            self._start, self._first = time.perf_counter(), batch
        self._last = batch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self.examples += (self._last - self._first) * self.batch_size
        self._start = None

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0


class ValidationRanking(_Callback):  # type: ignore[misc]
    """Early stopping on a ranking signal from held-out users, checked before the first
    epoch too: the weights kept are the best seen, the untrained start included when
    ``keep_start`` (the teacher's zero-shot start is the MiniLM baseline, so training can
    only add; a student's start is random weights, so students set it False).

    The signal is the AUC on held-out impression examples (real shown-but-not-clicked
    negatives, the closest thing to the evaluation task in the training data) when there
    are at least ``min_impressions`` of them, else on every validation example.
    """

    def __init__(
        self,
        validation: Examples,
        patience: int,
        score: Scorer,
        *,
        name: str = "teacher",
        min_impressions: int = 100,
        keep_start: bool = True,
    ) -> None:
        super().__init__()
        self.validation = validation
        self.score = score
        self.name = name
        self.keep_start = keep_start
        self.patience = patience
        use = validation.kind == 1
        self.rows = np.flatnonzero(use) if use.sum() >= min_impressions else None
        self.best = -np.inf
        self.best_weights: list[Any] | None = None
        self.wait = 0
        self.history: list[float] = []
        self.throughput = Throughput(0)  # set by fit_streamed

    def _measure(self) -> float:
        ex = self.validation if self.rows is None else self.validation.take(self.rows)
        return float(ranking_auc(self.score(ex.history, ex.candidates)).mean())

    def _check(self, epoch: int, logs: dict[str, Any] | None) -> None:
        value = self._measure()
        self.history.append(value)
        if logs is not None:
            logs["val_ranking_auc"] = value
        if epoch < 0 and not self.keep_start:
            pass  # measured and logged, never kept
        elif value > self.best:
            self.best, self.best_weights, self.wait = value, self.model.get_weights(), 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
        where = "before training" if epoch < 0 else f"after epoch {epoch + 1}"
        print(
            f"[{self.name}] validation ranking AUC {where}: {value:.4f}",
            file=sys.stderr,
            flush=True,
        )

    def report(self) -> FitReport:
        t = self.throughput
        return FitReport(
            [round(v, 5) for v in self.history],
            round(t.examples_per_s, 1),
            t.examples,
            round(t.seconds, 2),
        )

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._check(-1, None)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(epoch, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
