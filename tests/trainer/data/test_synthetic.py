"""edgerec.trainer.data.synthetic: seeded, labelled, shaped like a feed."""

from __future__ import annotations

import pytest

from edgerec import FeatureSpec, featurize
from edgerec.trainer.data.synthetic import SYNTHETIC_ID_PREFIX, synthetic_articles


def test_deterministic_per_seed_and_labelled() -> None:
    a, b, c = (
        synthetic_articles(50, seed=1),
        synthetic_articles(50, seed=1),
        synthetic_articles(50, seed=2),
    )
    assert a == b and a != c
    assert all(x["id"].startswith(SYNTHETIC_ID_PREFIX) for x in a)
    assert len({x["id"] for x in a}) == 50


def test_featurizes_and_covers_unicode() -> None:
    feed = synthetic_articles(200, seed=0, p_unicode=0.5)
    assert any(not x["title"].isascii() for x in feed)
    rows = featurize(feed, FeatureSpec.default())
    assert rows.shape == (200, 58) and (rows[:, 0] > 0).all()


def test_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="n must be"):
        synthetic_articles(-1)
