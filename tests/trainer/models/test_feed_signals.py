"""edgerec.trainer.models.feed_signals (issue 18): the click prior learns what readers in
general click, the head is chosen on validation and computes what the device computes,
the publisher's fields are what the SDK reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgerec.features.signals import FeedSignals
from edgerec.model.manifest import FeedHead
from edgerec.trainer.data.mind import Impression
from edgerec.trainer.errors import DataError
from edgerec.trainer.models.feed_signals import (
    FeedModel,
    choose_head,
    cosines_and_priors,
    fit_prior,
    head_scores,
    int8_codes,
    publish_feed,
)

RNG = np.random.default_rng(0)
ARTICLES = {
    f"n{i}": {"category": ["sports", "news", "autos"][i % 3], "subcategory": f"s{i % 5}"}
    for i in range(90)
}
VECTORS = {k: RNG.normal(size=6).astype(np.float32) for k in ARTICLES}


def _rows(n: int = 3000) -> list[tuple[str, int]]:
    rng = np.random.default_rng(1)
    rates = {"sports": 0.3, "news": 0.05, "autos": 0.02}
    ids = [f"n{i}" for i in rng.integers(0, 90, n)]
    return [(i, int(rng.random() < rates[ARTICLES[i]["category"]])) for i in ids]


def test_int8_codes_keep_the_direction() -> None:
    v = RNG.normal(size=768).astype(np.float32)
    codes = int8_codes(v).astype(np.float64)
    assert np.abs(codes).max() == 127
    assert codes @ v / (np.linalg.norm(codes) * np.linalg.norm(v)) > 0.999
    assert not int8_codes(np.zeros(4, np.float32)).any()


def test_the_prior_learns_which_categories_get_clicked(tmp_path: Path) -> None:
    model = fit_prior(_rows(), ARTICLES, VECTORS, encoder="enc", c=1.0, seed=0)
    assert model.signals() == FeedSignals(vector_dim=6, encoder="enc", prior=True)
    ids = ["n0", "n1", "n2"]  # sports, news, autos
    priors = model.priors([ARTICLES[i] for i in ids], np.stack([VECTORS[i] for i in ids]))
    assert priors[0] > priors[1] > priors[2]
    model.head = FeedHead(1.0, 0.5, 0.1, 0.2, -2.0)
    model.save(tmp_path)
    again = FeedModel.load(tmp_path)
    assert again.head == model.head and np.array_equal(again.coef, model.coef)
    fields = model.feed_fields([ARTICLES["n0"]], VECTORS["n0"][None])
    assert set(fields[0]) == {"vector", "prior"}
    assert model.signals().vector({"vector": fields[0]["vector"]}, "a") is not None
    flat = fit_prior([("n0", 0), ("n1", 0)], ARTICLES, None, encoder="", c=1.0, seed=0)
    assert flat.dim == 0 and not flat.coef.any()  # no click: a flat prior, no vector


def test_the_head_is_chosen_on_validation_and_matches_the_device_formula() -> None:
    rng = np.random.default_rng(2)
    val = []
    for i in range(60):
        cands = tuple(f"n{j}" for j in rng.choice(90, 10, replace=False))
        labels = tuple(int(ARTICLES[c]["category"] == "sports") for c in cands)
        if 0 < sum(labels) < 10:
            val.append(Impression(i, None, None, ("n3",), cands, labels))
    priors = {k: 1.0 if a["category"] == "sports" else 0.0 for k, a in ARTICLES.items()}
    model_scores = [rng.normal(size=len(v.candidates)) for v in val]  # an uninformed model
    cos, prior = cosines_and_priors(val, VECTORS, priors, 50)
    choice = choose_head(val, model_scores, cos, prior)
    assert choice.head.prior > 0 and choice.validation_auc > 0.9  # the prior is the signal
    assert len(choice.tried) == 36
    alone = choose_head(val, model_scores, None, None)
    assert alone.head.vector == alone.head.prior == 0.0 and len(alone.tried) == 1
    # a missing signal (NaN) adds nothing, as on the device
    head = FeedHead(2.0, 1.0, 0.5, 3.0, 0.25)
    got = head_scores(head, np.array([1.0, 1.0]), np.array([np.nan, 0.7]), np.array([1.0, np.nan]))
    assert np.allclose(got, [2.0 + 3.0 * 0.75, 2.0 + 1.0 * 0.2])


def test_publish_feed_needs_a_run_with_a_feed_model(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no feed model"):
        publish_feed(tmp_path, [{"id": "a"}], tmp_path)
    fit_prior(_rows(), ARTICLES, None, encoder="", c=1.0, seed=0).save(tmp_path / "feed")
    with pytest.raises(DataError, match="article 2"):
        publish_feed(tmp_path, [{"id": "a"}, {"title": "no id"}], tmp_path)
    rows = publish_feed(tmp_path, [{"id": "a", "category": "sports"}], tmp_path)
    assert rows[0]["id"] == "a" and isinstance(rows[0]["prior"], float) and "vector" not in rows[0]


def test_the_trainers_head_scores_are_the_devices(tmp_path: Path) -> None:
    """What the head is chosen on (numpy, here) is what the device's Ranker computes,
    with a history longer than the model's window (the device averages the last L)."""
    from edgerec import featurize
    from edgerec.features.signals import encode_vector
    from edgerec.model import ModelRunner
    from edgerec.trainer.data.synthetic import synthetic_articles
    from edgerec.trainer.feed import ranker_scores
    from tests.support.feed import feed_bundle

    head = FeedHead(model=1.7, vector=2.5, vector_mean=0.05, prior=0.8, prior_mean=-2.0)
    signals = FeedSignals(vector_dim=6, encoder="enc", prior=True)
    bundle = feed_bundle(tmp_path / "b", signals, head)
    m = bundle.manifest
    rng = np.random.default_rng(4)
    arts = {a["id"]: a for a in synthetic_articles(m.history_len + 40, seed=9)}
    vectors = {i: rng.normal(size=6).astype(np.float32) for i in arts}
    priors = {i: round(float(rng.normal(-2, 1)), 4) for i in arts}
    fed = {
        i: {**a, "vector": encode_vector(int8_codes(vectors[i])), "prior": priors[i]}
        for i, a in arts.items()
    }
    ids = list(arts)
    imp = Impression(
        1, None, None, tuple(ids[: m.history_len + 10]), tuple(ids[-20:]), (1,) + (0,) * 19
    )
    model = (
        ModelRunner(bundle)
        .rank(
            featurize([arts[h] for h in imp.history], m.spec),
            featurize([arts[c] for c in imp.candidates], m.spec),
        )
        .astype(np.float64)
    )
    cos, prior = cosines_and_priors([imp], vectors, priors, m.history_len)
    expected = head_scores(head, model, cos[0], prior[0])
    (got,) = ranker_scores(bundle, [imp], fed)  # the device's Ranker
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4)
    longer, _ = cosines_and_priors([imp], vectors, priors, m.history_len + 10)
    assert not np.allclose(longer[0], cos[0])  # the window matters, and it is the device's
