"""The student: the compact LSTM ranker that ships to devices (DESIGN.md section 3).

Item tower: one embedding table over the student's hashed ids (every field shares it),
masked mean per field, concatenated, then a dense layer: (X, F) ids -> (X, D). The same
tower encodes candidates and history items. User tower: an LSTM over the last L history
item vectors, left-padded (the padding comes first, so the last state is the newest
click), then a dense layer: (B, L, F) -> (B, D). Score: the dot product, (B, N).

Training (:class:`StudentTrainer`, a thin wrapper; only the :class:`Student` inside it is
saved and exported) reads the same streamed examples as the teacher (article-table
indices) and gathers their hashed features inside the graph. Its loss is
:func:`.distillation.distillation_loss`: temperature-scaled KL to the teacher's scores of
the same candidate lists plus the click loss, a weighted mean over the global batch.

Uses tf-keras (TF_USE_LEGACY_KERAS=1): its LSTM converts to TFLite's fused
UNIDIRECTIONAL_SEQUENCE_LSTM (DESIGN.md section 3), but that op is stateful
across invokes, so the student unrolls its LSTM over the fixed L steps instead.
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
from ..data.training_examples import Examples, ExampleStream
from .distillation import TeacherScores, distillation_loss
from .training import RankingModel, fit_streamed, undistributed

keras = tf.keras
_Layer: Any = keras.layers.Layer
_Model: Any = keras.Model

__all__ = ["Student", "StudentTrainer", "field_groups", "score_indices", "train_student"]


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

    def __init__(self, spec: FeatureSpec, cfg: StudentConfig) -> None:
        super().__init__()
        self.spec = spec
        self.cfg = cfg
        groups = field_groups(spec, cfg.use_id)
        self.groups = tf.constant(groups)  # (F, G)
        self.embed = keras.layers.Embedding(spec.n_buckets, cfg.embed_dim, name="hashed")
        self.item_dense = keras.layers.Dense(cfg.dim, activation="tanh", name="item")
        # unroll=True: the fused TFLite LSTM op keeps its state in variable tensors that
        # carry over from one invoke to the next (measured: the same input scored twice
        # differed by 2e-3, and full-integer calibration failed on it); unrolled over the
        # fixed L steps the graph is stateless.
        self.lstm = keras.layers.LSTM(cfg.dim, unroll=True, name="history_lstm")
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
        return self.user_dense(self.lstm(items))  # (B, D)

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
        return self.student(
            gather_inputs(
                self.features, self.feed_vectors, inputs["history"], inputs["candidates"]
            ),
            training=training,
        )

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
    train: ExampleStream,
    validation: Examples,
    features: npt.NDArray[np.int32],
    spec: FeatureSpec,
    cfg: StudentConfig,
    *,
    teacher: TeacherScores | None,
    seed: int,
    feed_vectors: npt.NDArray[np.float32] | None = None,
    strategy: Any = None,
) -> Student:
    """Train a student on the streamed examples, distilled from ``teacher`` when given;
    early stopping keeps the weights with the best held-out ranking AUC. Under a
    ``tf.distribute`` strategy it trains replicated and a plain copy is returned."""
    tf.keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():  # variables (mirrored under a strategy) and the optimizer
        student = Student(spec, cfg)
        trainer = StudentTrainer(student, features, cfg, teacher, feed_vectors)
    fit_streamed(
        trainer,
        train,
        validation,
        cfg,
        strategy=strategy,
        score=lambda h, c: score_indices(student, features, h, c, feed_vectors),
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
    return undistributed(student, lambda: Student(spec, cfg), sample)


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
