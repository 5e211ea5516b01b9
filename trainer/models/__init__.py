"""The trainer's models (TensorFlow, tf-keras): what is trained, and how.

* :mod:`.teacher`: the server-side ranker (attention over titles and history, optionally
  on frozen MiniLM vectors);
* :mod:`.student`: the compact LSTM ranker that ships, and its training wrapper;
* :mod:`.distillation`: the student's loss (temperature-scaled KL to the teacher + click
  loss) and the frozen teacher's scores for student batches;
* :mod:`.training`: what both share: :class:`~.training.RankingModel` (the one training
  style: ``compute_loss`` + Keras's own ``fit()``), streamed batches, the learning-rate
  schedule, early stopping, the ``tf.distribute`` strategy.

Importing any of these imports TensorFlow (with ``TF_USE_LEGACY_KERAS=1`` set first).
"""
