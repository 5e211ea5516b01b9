"""The teacher: a content-based neural ranker (server side, any size).

Article encoder: hashed-id embeddings (the SDK's FeatureSpec, one table shared by every
field) for title tokens pooled by additive attention, category, subcategory and entities,
plus, optionally, the frozen MiniLM sentence vector of the article, mixed by a dense layer.
User encoder: multi-head self-attention over the last L clicked articles, then additive
attention pooling. Score: dot product of user and candidate vectors. Trained with softmax
cross-entropy over one positive and K negatives (:meth:`Teacher.example_losses`, averaged
over the batch's examples as ``compile(loss=...)`` would), AdamW, linear warm-up then
cosine decay, early stopping on held-out users (:func:`.training.fit_streamed`).

In training, a step encodes each distinct article of its batch once and gathers
(:func:`.training.batch_articles`): on MIND a batch of 512 examples (30 history items and
5 candidates each) names about 1,500 distinct articles of the 8,136 in the table, which
the teacher used to encode in full at every step. Scoring (evaluation, distillation)
encodes the whole table once.

Uses tf-keras (TF_USE_LEGACY_KERAS=1), the Keras whose LSTM converts to TFLite (DESIGN.md
section 3), so teacher and student share one Keras.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from edgerec import FeatureSpec

from ..config import TeacherConfig
from ..data.training_examples import Examples, ExampleShards
from .training import FitReport, RankingModel, batch_articles, fit_streamed, undistributed

keras = tf.keras
_Layer: Any = keras.layers.Layer
_Model: Any = keras.Model
tf.get_logger().setLevel("ERROR")  # subclassed-model get_config warnings on save_weights

__all__ = ["Teacher", "train_teacher"]


class AdditiveAttention(_Layer):  # type: ignore[misc]
    """Attention pooling: (B, T, D) with a (B, T) mask -> (B, D)."""

    def __init__(self, hidden: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proj = keras.layers.Dense(hidden, activation="tanh")
        self.query = keras.layers.Dense(1, use_bias=False)

    def call(self, x: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        logits = tf.squeeze(self.query(self.proj(x)), -1)  # (B, T)
        logits = tf.where(mask, logits, tf.fill(tf.shape(logits), -1e9))
        weights = tf.nn.softmax(logits, axis=-1)  # (B, T)
        weights = weights * tf.cast(tf.reduce_any(mask, -1, keepdims=True), weights.dtype)
        return tf.einsum("bt,btd->bd", weights, x)


class Teacher(RankingModel):
    """Scores candidates for a history. Inputs: ``history`` (B, L) and ``candidates``
    (B, C) indices into the article table (0 = padding). Output: (B, C) scores."""

    def __init__(
        self,
        features: npt.NDArray[np.int32],
        vectors: npt.NDArray[np.float32] | None,
        spec: FeatureSpec,
        cfg: TeacherConfig,
    ) -> None:
        super().__init__()
        cols = spec.columns
        self.title = tf.constant(features[:, cols["title"]])  # (A, T)
        self.categorical = tf.constant(
            np.concatenate([features[:, cols[n]] for n in ("category", "subcategory")], 1)
        )  # (A, 2)
        self.entities = tf.constant(features[:, cols["entities"]])  # (A, E)
        self.vectors = None if vectors is None else tf.constant(vectors)  # (A, 384)
        self.embed = keras.layers.Embedding(spec.n_buckets, cfg.dim)
        self.title_pool = AdditiveAttention(cfg.dim)
        self.project = keras.layers.Dense(cfg.dim)
        self.mix = keras.layers.Dense(cfg.dim, activation="gelu")
        self.article_norm = keras.layers.LayerNormalization()
        self.drop = keras.layers.Dropout(cfg.dropout)
        self.self_attention = keras.layers.MultiHeadAttention(
            cfg.heads, cfg.dim // cfg.heads, dropout=cfg.dropout
        )
        self.user_norm = keras.layers.LayerNormalization()
        self.user_pool = AdditiveAttention(cfg.dim)
        # Start from the zero-shot MiniLM cosine (mean history vs candidate): the learned
        # towers enter through a gate that starts at 0, so training can only add to it.
        self.zero_shot = self.vectors is not None and cfg.zero_shot
        self.zs_scale = self.add_weight(
            name="zero_shot_scale", shape=(), initializer=keras.initializers.Constant(10.0)
        )
        self.gate = self.add_weight(
            name="residual_gate",
            shape=(),
            initializer=keras.initializers.Constant(0.0 if self.zero_shot else 1.0),
            trainable=True,
        )

    def encode_articles(self, training: bool = False, rows: tf.Tensor | None = None) -> tf.Tensor:
        """Every article of the table as a (A, D) matrix (row 0, padding, included), or
        only the table rows ``rows`` (U,) as (U, D)."""

        def pick(table: tf.Tensor) -> tf.Tensor:
            return table if rows is None else tf.gather(table, rows)

        title_ids = pick(self.title)  # (A, T)
        title = self.drop(self.embed(title_ids), training=training)  # (A, T, D)
        parts = [self.title_pool(title, title_ids > 0)]  # (A, D)
        cat = self.embed(pick(self.categorical))  # (A, 2, D)
        parts += [cat[:, 0], cat[:, 1]]
        entities = pick(self.entities)  # (A, E)
        ent_mask = tf.cast(entities > 0, tf.float32)[..., None]  # (A, E, 1)
        ents = tf.reduce_sum(self.embed(entities) * ent_mask, 1)  # (A, D)
        parts.append(ents / tf.maximum(tf.reduce_sum(ent_mask, 1), 1.0))  # (A, D)
        if self.vectors is not None:
            parts.append(self.project(pick(self.vectors)))  # (A, D)
        mixed = self.mix(self.drop(tf.concat(parts, -1), training=training))  # (A, D)
        return self.article_norm(mixed)  # (A, D)

    def encode_table(self, chunk: int = 4096) -> tf.Tensor:
        """Every article of the table, (A, D), encoded ``chunk`` rows at a time (inference):
        one call over a 50,000-article table held its (A, T, D) title activations at once,
        about 0.5 GB of the trainer's peak memory on a 500k-impression log."""
        count = int(self.title.shape[0])
        return tf.concat(
            [
                self.encode_articles(False, tf.range(start, min(start + chunk, count)))
                for start in range(0, count, chunk)
            ],
            0,
        )  # (A, D)

    def encode_users(
        self, articles: tf.Tensor, history: tf.Tensor, training: bool = False
    ) -> tf.Tensor:
        """(B, L) history indices -> (B, D) user vectors, from the (A, D) encoded table."""
        hist = tf.gather(articles, history)  # (B, L, D)
        mask = history > 0  # (B, L)
        pair_mask = tf.logical_and(mask[:, :, None], mask[:, None, :])  # (B, L, L)
        attended = self.self_attention(
            hist, hist, attention_mask=pair_mask, training=training
        )  # (B, L, D)
        hist = self.user_norm(hist + attended)  # (B, L, D)
        return self.user_pool(hist, mask)  # (B, D)

    def scores(
        self,
        articles: tf.Tensor,
        history: tf.Tensor,
        candidates: tf.Tensor,
        training: bool,
        vectors: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """(B, C) scores from the encoded articles (A, D), ``history`` and ``candidates``
        indexing them (0: padding); ``vectors`` the MiniLM rows of the same articles
        (default: the whole table's, for the whole encoded table)."""
        user = self.encode_users(articles, history, training)  # (B, D)
        cands = tf.gather(articles, candidates)  # (B, C, D)
        learned = tf.einsum("bd,bcd->bc", user, cands)  # (B, C)
        if not self.zero_shot:
            return learned
        table = self.vectors if vectors is None else vectors  # (A, 384)
        mask = tf.cast(history > 0, tf.float32)[..., None]  # (B, L, 1)
        mean = tf.reduce_sum(tf.gather(table, history) * mask, 1)  # (B, 384)
        mean = tf.math.l2_normalize(mean, -1)  # zero for an empty history
        cosine = tf.einsum("bd,bcd->bc", mean, tf.gather(table, candidates))  # (B, C)
        return self.zs_scale * cosine + self.gate * learned  # (B, C)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """(B, C) scores of a batch: each distinct article of it encoded once."""
        rows, history, candidates = batch_articles(inputs["history"], inputs["candidates"])
        articles = self.encode_articles(training, rows)  # (U, D)
        vectors = None if self.vectors is None else tf.gather(self.vectors, rows)  # (U, 384)
        return self.scores(articles, history, candidates, training, vectors)

    def example_losses(
        self, inputs: dict[str, tf.Tensor], labels: tf.Tensor, scores: tf.Tensor
    ) -> tf.Tensor:
        """Softmax cross-entropy of the positive among the (B, C) scores: (B,)."""
        return keras.losses.sparse_categorical_crossentropy(labels, scores, from_logits=True)


def train_teacher(
    train: ExampleShards,
    validation: Examples,
    features: npt.NDArray[np.int32],
    vectors: npt.NDArray[np.float32] | None,
    *,
    spec: FeatureSpec,
    cfg: TeacherConfig,
    seed: int,
    out_dir: Path | None = None,
    strategy: Any = None,
) -> tuple[Teacher, FitReport]:
    """Train a teacher; with ``out_dir``, save its weights next to the config that made it.
    Under a ``tf.distribute`` strategy (:func:`training.distribution`) the model trains
    replicated and a plain copy is returned, with the fit's report."""
    tf.keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():  # variables (mirrored under a strategy) and the optimizer
        model = Teacher(features, vectors, spec, cfg)
    monitor = fit_streamed(
        model,
        train,
        validation,
        cfg,
        strategy=strategy,
        score=lambda h, c: score(model, h, c),
        impression_weight=cfg.impression_weight,
        seed=seed,
        name="teacher",
        keep_start=True,  # the zero-shot start is the MiniLM baseline: training only adds
    )
    sample = {"history": validation.history[:1], "candidates": validation.candidates[:1]}
    model = undistributed(model, lambda: Teacher(features, vectors, spec, cfg), sample)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(out_dir / "teacher.weights.h5"))
        (out_dir / "config.json").write_text(
            json.dumps(
                {
                    "teacher": asdict(cfg),
                    "seed": seed,
                    "spec": spec.to_dict(),
                    "minilm": vectors is not None,
                    "validation_ranking_auc": monitor.history,  # before training, then epochs
                },
                indent=2,
            )
            + "\n"
        )
    return model, monitor.report()


def score(
    model: Teacher,
    history: npt.NDArray[np.int32],
    candidates: npt.NDArray[np.int32],
    batch: int = 512,
) -> npt.NDArray[np.float32]:
    """(N, C) scores for padded candidate lists (callers ignore the padded columns)."""
    articles = model.encode_table()
    out = []
    for start in range(0, len(history), batch):
        h = tf.constant(history[start : start + batch])
        c = tf.constant(candidates[start : start + batch])
        out.append(model.scores(articles, h, c, training=False).numpy())
    return np.concatenate(out) if out else np.zeros((0, candidates.shape[1]), np.float32)
