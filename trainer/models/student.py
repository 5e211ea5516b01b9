"""The student: the compact LSTM ranker that ships to devices (DESIGN.md section 3).

Item tower: one embedding table over the student's hashed ids (every field shares it),
masked mean per field, concatenated, then a dense layer: (X, F) ids -> (X, D). The same
tower encodes candidates and history items. User tower: an LSTM over the last L history
item vectors, left-padded (the padding comes first, so the last state is the newest
click), then a dense layer: (B, L, F) -> (B, D). Score: the dot product, (B, N).

Training (:class:`StudentTrainer`, a thin wrapper; only the :class:`Student` inside it is
saved and exported) reads the same prepared examples as the teacher (article-table
indices). Its loss is :func:`.distillation.distillation_loss`: temperature-scaled KL to
the teacher's scores of the same candidate lists plus the click loss, a weighted mean over
the global batch. It computes exactly what :meth:`Student.call` computes, faster
(measured on MIND, one training step of 512 examples: 0.75 s the direct way):

* each distinct article of the batch goes through the item tower once, then is gathered
  (:func:`.training.batch_articles`): about 13x fewer rows than one per history slot;
* the LSTM runs over the last T steps only, T the longest history of the batch: the
  L - T steps before are padding for every row, and the state they lead to depends on
  the weights alone, so it is computed once (on one row) and every row starts from it.
  Batches of similar history lengths (the shards' length buckets) make T short.

Uses tf-keras (TF_USE_LEGACY_KERAS=1): its LSTM converts to TFLite's fused
UNIDIRECTIONAL_SEQUENCE_LSTM (DESIGN.md section 3), but that op is stateful across
invokes, so the exported student unrolls its LSTM over the fixed L steps; training runs
the same cell in a loop over a variable T (``unroll=False``). The weights are the same
either way: :func:`train_student` returns them in an unrolled :class:`Student`, and a test
pins the two paths' scores equal.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from edgerec import FeatureSpec

from ..config import StudentConfig
from ..data.training_examples import Examples, ExampleShards
from .distillation import TeacherScores, distillation_loss
from .training import FitReport, RankingModel, batch_articles, fit_streamed

keras = tf.keras
_Layer: Any = keras.layers.Layer
_Model: Any = keras.Model

__all__ = [
    "Student",
    "StudentTrainer",
    "field_groups",
    "score_indices",
    "train_student",
    "unrolled_copy",
]


def field_groups(spec: FeatureSpec, use_id: bool) -> npt.NDArray[np.float32]:
    """(F, G) 0/1 matrix: which columns pool into which field (the id column dropped
    unless ``use_id``)."""
    names = [f.name for f in spec.fields if use_id or f.name != "id"]
    groups = np.zeros((spec.width, len(names)), dtype=np.float32)
    for g, name in enumerate(names):
        groups[spec.columns[name], g] = 1.0
    return groups


class Student(_Model):  # type: ignore[misc]
    """Scores candidates for a history, both as hashed feature rows.

    Inputs: ``history`` (B, L, F) and ``candidates`` (B, N, F) int32 ids (0 = padding).
    Output: (B, N) scores. ``item_vectors`` (X, F) -> (X, D) and ``user_vector``
    (B, L, F) -> (B, D) are the two towers; ``score = user . item``.

    Example:
        >>> spec = FeatureSpec(n_buckets=64)
        >>> model = Student(spec, StudentConfig(history_len=3, embed_dim=4, dim=8))
        >>> ids = tf.zeros((2, 3, spec.width), tf.int32)
        >>> model({"history": ids, "candidates": ids[:, :2]}).shape
        TensorShape([2, 2])
    """

    def __init__(self, spec: FeatureSpec, cfg: StudentConfig, *, unroll: bool = True) -> None:
        super().__init__()
        self.spec = spec
        self.cfg = cfg
        groups = field_groups(spec, cfg.use_id)
        self.groups = tf.constant(groups)  # (F, G)
        self.embed = keras.layers.Embedding(spec.n_buckets, cfg.embed_dim, name="hashed")
        self.item_dense = keras.layers.Dense(cfg.dim, activation="tanh", name="item")
        # unroll=True (what is exported): the fused TFLite LSTM op keeps its state in
        # variable tensors that carry over from one invoke to the next (measured: the same
        # input scored twice differed by 2e-3, and full-integer calibration failed on it);
        # unrolled over the fixed L steps the graph is stateless. unroll=False (training):
        # the same weights, run over a variable number of steps.
        self.lstm = keras.layers.LSTM(
            cfg.dim, unroll=unroll, return_state=True, name="history_lstm"
        )
        self.user_dense = keras.layers.Dense(cfg.dim, name="user")

    def item_vectors(self, ids: tf.Tensor, vectors: tf.Tensor | None = None) -> tf.Tensor:
        """(X, F) ids [and (X, P) feed vectors when ``feed_vector_dim``] -> (X, D)."""
        mask = tf.cast(ids > 0, tf.float32)  # (X, F)
        emb = self.embed(ids) * mask[..., None]  # (X, F, E)
        summed = tf.einsum("xfe,fg->xge", emb, self.groups)  # (X, G, E)
        count = tf.matmul(mask, self.groups)  # (X, G)
        mean = summed / tf.maximum(count, 1.0)[..., None]  # (X, G, E)
        flat = tf.reshape(mean, (-1, self.groups.shape[1] * self.cfg.embed_dim))  # (X, G*E)
        if self.cfg.feed_vector_dim:
            flat = tf.concat([flat, vectors], -1)  # (X, G*E + P)
        return self.item_dense(flat)  # (X, D)

    def user_vector(self, history: tf.Tensor, vectors: tf.Tensor | None = None) -> tf.Tensor:
        """(B, L, F) ids [and (B, L, P) feed vectors], left-padded -> (B, D)."""
        flat_vectors = None
        if self.cfg.feed_vector_dim:
            flat_vectors = tf.reshape(vectors, (-1, self.cfg.feed_vector_dim))  # (B*L, P)
        items = self.item_vectors(
            tf.reshape(history, (-1, self.spec.width)), flat_vectors
        )  # (B*L, D)
        items = tf.reshape(items, (-1, self.cfg.history_len, self.cfg.dim))  # (B, L, D)
        return self.user_dense(self.lstm(items)[0])  # (B, D)

    def user_from_items(
        self, items: tf.Tensor, history: tf.Tensor, padding: tf.Tensor
    ) -> tf.Tensor:
        """The user vector of (B, L, D) history item vectors, the same as
        :meth:`user_vector`'s, skipping the steps that are padding for every row.

        ``history`` (B, L) says which slots are padding (0); ``padding`` (D,) is the item
        vector of a padding slot. The first L - T slots are padding in every row (T: from
        the earliest real slot of the batch on), so the LSTM state after them is the state
        after L - T padding inputs from zero, the same for every row: computed once, on
        one row, then the LSTM continues over the last T slots of each row.
        """
        if self.lstm.unroll:  # a fixed graph (export): every step, as user_vector does
            return self.user_dense(self.lstm(items)[0])  # (B, D)
        length = self.cfg.history_len
        real = history > 0  # (B, L)
        first = tf.where(
            tf.reduce_any(real, 1),
            tf.argmax(tf.cast(real, tf.int32), 1, output_type=tf.int32),
            length,
        )  # (B,) each row's first real slot
        skip = tf.minimum(tf.reduce_min(first), length - 1)  # () shared padding steps (>= 1 left)
        cell = self.lstm.cell
        zero = tf.zeros((1, self.cfg.dim), items.dtype)  # (1, D)

        def step(i: tf.Tensor, h: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, ...]:
            _, (h, c) = cell(padding[None], [h, c])  # (1, D) each
            return i + 1, h, c

        _, h, c = tf.while_loop(
            lambda i, h, c: i < skip, step, (tf.constant(0), zero, zero), maximum_iterations=length
        )
        rows = tf.shape(items)[0]
        start = [tf.tile(h, [rows, 1]), tf.tile(c, [rows, 1])]  # (B, D) each
        output = self.lstm(items[:, skip:], initial_state=start)[0]  # (B, D)
        return self.user_dense(output)  # (B, D)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        user = self.user_vector(inputs["history"], inputs.get("history_vectors"))  # (B, D)
        shape = tf.shape(inputs["candidates"])
        flat = tf.reshape(inputs["candidates"], (-1, self.spec.width))  # (B*N, F)
        flat_vectors = None
        if self.cfg.feed_vector_dim:
            flat_vectors = tf.reshape(inputs["candidate_vectors"], (-1, self.cfg.feed_vector_dim))
        items = self.item_vectors(flat, flat_vectors)  # (B*N, D)
        items = tf.reshape(items, (shape[0], shape[1], self.cfg.dim))
        return tf.einsum("bd,bnd->bn", user, items)  # (B, N)


def gather_inputs(
    features: tf.Tensor, vectors: tf.Tensor | None, history: tf.Tensor, candidates: tf.Tensor
) -> dict[str, tf.Tensor]:
    """Student inputs from article-table indices: (B, L) and (B, C) -> feature rows
    (B, L, F), (B, C, F) [and feed vectors (B, L, P), (B, C, P)]."""
    out = {"history": tf.gather(features, history), "candidates": tf.gather(features, candidates)}
    if vectors is not None:
        out["history_vectors"] = tf.gather(vectors, history)
        out["candidate_vectors"] = tf.gather(vectors, candidates)
    return out


class StudentTrainer(RankingModel):
    """Training wrapper: examples as article-table indices, features gathered in-graph,
    the distillation loss (a weighted mean: ``normalize_by = "weights"``). Only
    ``student`` is saved and exported."""

    normalize_by = "weights"
    length_buckets = True  # the LSTM skips the padding steps a batch shares

    def __init__(
        self,
        student: Student,
        features: npt.NDArray[np.int32],
        cfg: StudentConfig,
        teacher: TeacherScores | None,
        feed_vectors: npt.NDArray[np.float32] | None = None,
    ) -> None:
        super().__init__()
        self.student = student
        self.features = tf.constant(features)  # (A, F) the student's hashed rows
        self.feed_vectors = None if feed_vectors is None else tf.constant(feed_vectors)  # (A, P)
        self.cfg = cfg
        self._teacher = [teacher]  # a list: not tracked as a layer, never trained or saved

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """(B, C) scores: what ``student(gather_inputs(...))`` gives (module docstring)."""
        rows, history, candidates = batch_articles(inputs["history"], inputs["candidates"])
        ids = tf.gather(self.features, rows)  # (U, F): rows[0] is the padding row
        vectors = None if self.feed_vectors is None else tf.gather(self.feed_vectors, rows)
        items = self.student.item_vectors(ids, vectors)  # (U, D)
        user = self.student.user_from_items(
            tf.gather(items, history), inputs["history"], items[0]
        )  # (B, D)
        return tf.einsum("bd,bcd->bc", user, tf.gather(items, candidates))  # (B, C)

    def score_indices(
        self, history: npt.NDArray[np.int32], candidates: npt.NDArray[np.int32], batch: int = 512
    ) -> npt.NDArray[np.float32]:
        """Scores for index arrays (N, L) and (N, C) through the training path."""
        out = [
            self(
                {"history": history[s : s + batch], "candidates": candidates[s : s + batch]}
            ).numpy()
            for s in range(0, len(history), batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, candidates.shape[1]), np.float32)

    def example_losses(
        self, inputs: dict[str, tf.Tensor], labels: tf.Tensor, scores: tf.Tensor
    ) -> tf.Tensor:
        """:func:`.distillation.distillation_loss` of each example: (B,)."""
        teacher = self._teacher[0]
        teacher_scores = None
        if teacher is not None and self.cfg.alpha > 0:
            teacher_scores = teacher(inputs["history"], inputs["candidates"])  # (B, C)
        return distillation_loss(
            scores,
            labels,
            teacher_scores,
            alpha=self.cfg.alpha,
            temperature=self.cfg.temperature,
        )


def train_student(
    train: ExampleShards,
    validation: Examples,
    features: npt.NDArray[np.int32],
    spec: FeatureSpec,
    cfg: StudentConfig,
    *,
    teacher: TeacherScores | None,
    seed: int,
    feed_vectors: npt.NDArray[np.float32] | None = None,
    strategy: Any = None,
) -> tuple[Student, FitReport]:
    """Train a student on the prepared examples, distilled from ``teacher`` when given;
    early stopping keeps the weights with the best held-out ranking AUC. Returns a plain,
    unrolled :class:`Student` with the trained weights (what is exported, also after a
    ``tf.distribute`` strategy) and the fit's report (validation AUC per epoch,
    throughput)."""
    tf.keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():  # variables (mirrored under a strategy) and the optimizer
        student = Student(spec, cfg, unroll=False)
        trainer = StudentTrainer(student, features, cfg, teacher, feed_vectors)
    monitor = fit_streamed(
        trainer,
        train,
        validation,
        cfg,
        strategy=strategy,
        score=trainer.score_indices,
        impression_weight=1.0,  # every example weighs the same
        seed=seed,
        name="student",
        keep_start=False,  # an untrained student is random weights, not a model to ship
    )
    sample = gather_inputs(
        tf.constant(features),
        None if feed_vectors is None else tf.constant(feed_vectors),
        validation.history[:1],
        validation.candidates[:1],
    )
    return unrolled_copy(student, sample), monitor.report()


def unrolled_copy(student: Student, sample: dict[str, Any]) -> Student:
    """A plain :class:`Student` with an unrolled LSTM and ``student``'s weights (made
    outside any ``tf.distribute`` scope, built on ``sample``): what is exported."""
    plain = Student(student.spec, student.cfg, unroll=True)
    plain(sample)
    plain.set_weights(student.get_weights())
    return plain


def score_indices(
    student: Student,
    features: npt.NDArray[np.int32],
    history: npt.NDArray[np.int32],
    candidates: npt.NDArray[np.int32],
    feed_vectors: npt.NDArray[np.float32] | None = None,
    *,
    batch: int = 256,
) -> npt.NDArray[np.float32]:
    """Keras student scores for index arrays: (N, L) histories, (N, C) candidates."""
    table = tf.constant(features)
    vectors = None if feed_vectors is None else tf.constant(feed_vectors)
    out = []
    for start in range(0, len(history), batch):
        h = history[start : start + batch]
        c = candidates[start : start + batch]
        out.append(student(gather_inputs(table, vectors, h, c)).numpy())
    return np.concatenate(out) if out else np.zeros((0, candidates.shape[1]), np.float32)
