"""edgerec.trainer.evaluation.on_device on the committed SYNTHETIC fixture bundle: scores
through edgerec.featurize + ModelRunner, parity, latency. No TensorFlow."""

from __future__ import annotations

import sys

import numpy as np

from edgerec.model import Bundle, ModelRunner
from edgerec.trainer.data.mind import Impression
from edgerec.trainer.data.synthetic import synthetic_articles
from edgerec.trainer.evaluation.on_device import feature_rows, measure_bundle, parity
from tests.support.updates import FIXTURE


def test_feature_rows_keep_only_known_articles() -> None:
    articles = {a["id"]: a for a in synthetic_articles(5, seed=2)}
    spec = Bundle.load(FIXTURE).manifest.spec
    ids = list(articles)
    assert feature_rows(articles, [ids[0], "unknown", ids[1]], spec).shape == (2, spec.width)
    assert feature_rows(articles, ["unknown"], spec).shape == (0, spec.width)


def test_parity() -> None:
    a = [np.arange(12, dtype=np.float32), np.array([0.5, 0.1], np.float32)]
    assert parity(a, a) == {"max_abs_diff": 0.0, "top10_agreement": 1.0}
    b = [-a[0], a[1] + 0.25]
    result = parity(a, b)
    assert result["max_abs_diff"] == 22.0  # 11 - (-11)
    assert result["top10_agreement"] == (8 / 10 + 1.0) / 2  # 8 of the top 10 shared


def test_a_bundle_is_measured_the_way_a_device_runs_it() -> None:
    feed = synthetic_articles(40, seed=6)
    articles = {a["id"]: a for a in feed}
    ids = list(articles)
    evaluation = [
        Impression(
            i, None, None, tuple(ids[i : i + 5]), tuple(ids[20 + i : 26 + i]), (1, 0, 0, 0, 0, 0)
        )
        for i in range(6)
    ]
    bundle = Bundle.load(FIXTURE)
    runner = ModelRunner(bundle)
    keras_like = [
        runner.rank(
            feature_rows(articles, imp.history, bundle.manifest.spec),
            feature_rows(articles, imp.candidates, bundle.manifest.spec),
        )
        for imp in evaluation
    ]
    measured = measure_bundle(
        bundle,
        evaluation,
        articles,
        keras_scores=keras_like,
        rng=np.random.default_rng(0),
        bootstrap=20,
        seed=0,
    )
    assert set(measured.row) >= {"auc", "auc_ci", "mrr", "ndcg@10"}
    assert measured.facts["bytes"] == len(bundle.model)
    assert measured.facts["parity_vs_keras"] == {"max_abs_diff": 0.0, "top10_agreement": 1.0}
    assert measured.facts["invoke_p50_ms_50x500"] > 0
    assert [len(s) for s in measured.scores] == [6] * 6
    assert "tensorflow" not in sys.modules or "edgerec.trainer.models.teacher" in sys.modules
