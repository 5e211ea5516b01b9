"""Measuring models on the evaluation impressions, the same way for every row of the report.

* :mod:`.metrics`: AUC, MRR, nDCG@k per impression, bootstrap intervals (numpy);
* :mod:`.baselines`: random, popularity, category affinity, TF-IDF and MiniLM cosine, and
  :func:`~.baselines.score_baselines` (``edgerec-train evaluate``);
* :mod:`.report`: report rows, ``report.json`` / ``report.md`` / ``report.png``;
* :mod:`.on_device`: an exported bundle scored through the SDK's own path
  (``edgerec.featurize`` + :class:`edgerec.model.ModelRunner`): quality, parity, latency.

No TensorFlow here: a bundle is measured the way a device runs it.
"""
