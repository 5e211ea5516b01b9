"""Distillation: what the student learns from the teacher (Hinton et al., 2015).

The student's loss per example, over the same candidate lists the teacher scored::

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * click

where ``click`` is the softmax cross-entropy of the clicked candidate (column 0). The
temperature T softens both distributions so the teacher's ranking of the negatives, not
only its top choice, is what the student copies; T^2 keeps the KL term's gradients on
the scale of the click term's as T changes. ``alpha = 0`` (or no teacher) is the student
trained on clicks alone: the ``student_no_teacher`` row of the report.

The teacher is frozen: :func:`teacher_scorer` encodes its article table once and scores
student batches without gradients.
"""

from __future__ import annotations

import os
from collections.abc import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from .teacher import Teacher

__all__ = ["TeacherScores", "distillation_loss", "teacher_scorer"]

TeacherScores = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (B, L), (B, C) -> (B, C)


def distillation_loss(
    scores: tf.Tensor,
    labels: tf.Tensor,
    teacher_scores: tf.Tensor | None,
    *,
    alpha: float,
    temperature: float,
) -> tf.Tensor:
    """The student's loss of each example, (B,), from its (B, C) ``scores``, the clicked
    column ``labels`` (B,) and the teacher's (B, C) scores of the same candidates (None:
    click loss only, whatever ``alpha``).

    Example:
        >>> s, y = tf.constant([[2.0, 0.0, -1.0]]), tf.constant([0])
        >>> click = distillation_loss(s, y, None, alpha=0.7, temperature=2.0)
        >>> agree = distillation_loss(s, y, s, alpha=0.7, temperature=2.0)  # KL = 0
        >>> round(float(agree[0] / click[0]), 4)  # only (1 - alpha) of the click loss
        0.3
    """
    t = temperature
    click = tf.keras.losses.sparse_categorical_crossentropy(
        labels, scores, from_logits=True
    )  # (B,)
    if teacher_scores is None:
        return click  # (B,): a student without a teacher learns from clicks only
    loss = (1.0 - alpha) * click
    if alpha > 0:
        target = tf.nn.softmax(teacher_scores / t)  # (B, C)
        log_student = tf.nn.log_softmax(scores / t)  # (B, C)
        kl = tf.reduce_sum(target * (tf.math.log(target + 1e-9) - log_student), -1)  # (B,)
        loss += alpha * t * t * kl
    return loss


def teacher_scorer(teacher: Teacher, history_len: int) -> TeacherScores:
    """Teacher scores for student batches: the article table encoded once (the teacher is
    frozen), the student's longer history cut to the teacher's newest ``history_len``."""
    articles = tf.constant(teacher.encode_table())  # (A, D)

    def scores(history: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        return tf.stop_gradient(
            teacher.scores(articles, history[:, -history_len:], candidates, training=False)
        )  # (B, C)

    return scores
