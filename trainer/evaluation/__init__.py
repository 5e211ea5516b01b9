"""Measuring models on the evaluation impressions, the same way for every row of the report.

* :mod:`.metrics`: AUC, MRR, nDCG@k per impression, bootstrap intervals (numpy);
* :mod:`.baselines`: random, popularity, category affinity and TF-IDF;
* :mod:`.report`: report rows, ``report.json`` / ``report.md`` / ``report.png``.
"""
