"""edgerec.trainer.data.validation_impressions (issue 18): the validation impressions are
the held-out users' own, shaped like the evaluation (short histories, 5-25 real shown
candidates with every click), and reproducible."""

from __future__ import annotations

import numpy as np

from edgerec.trainer.data.mind import Impression
from edgerec.trainer.data.training_examples import held_out
from edgerec.trainer.data.validation_impressions import validation_impressions

ARTICLES = {f"n{i}": {} for i in range(200)}


def _log(n: int = 600, seed: int = 0) -> list[Impression]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        history = tuple(
            f"n{j}" for j in rng.choice(200, size=int(rng.integers(0, 60)), replace=False)
        )
        shown = rng.choice(220, size=int(rng.integers(2, 60)), replace=False)  # n200+ unknown
        labels = tuple(int(x) for x in (rng.random(len(shown)) < 0.1))
        out.append(
            Impression(i, f"u{i % 150}", None, history, tuple(f"n{j}" for j in shown), labels)
        )
    return out


def test_only_held_out_users_with_a_known_click_non_click_and_history() -> None:
    log = _log()
    val = validation_impressions(lambda: iter(log), ARTICLES, 0.3, seed=0)
    assert 20 < len(val) < len(log)
    for imp in val:
        assert imp.user is not None and held_out(imp.user, 0.3)
        assert 1 in imp.labels and 0 in imp.labels
        assert all(c in ARTICLES for c in (*imp.history, *imp.candidates))
        assert 1 <= len(imp.history) <= 25
        assert len(imp.candidates) <= max(25, sum(imp.labels) + 1)
        original = log[imp.impression_id]
        assert (
            imp.history == tuple(h for h in original.history if h in ARTICLES)[-len(imp.history) :]
        )
        clicked = {
            c
            for c, y in zip(original.candidates, original.labels, strict=True)
            if y and c in ARTICLES
        }
        assert {c for c, y in zip(imp.candidates, imp.labels, strict=True) if y} == clicked
        truth = dict(zip(original.candidates, original.labels, strict=True))
        assert all(truth[c] == y for c, y in zip(imp.candidates, imp.labels, strict=True))
    lengths = [len(i.history) for i in val if len(log[i.impression_id].history) >= 25]
    assert 4 <= float(np.median(lengths)) <= 10  # short, like the evaluation's median 7
    assert validation_impressions(lambda: iter(log), ARTICLES, 0.3, seed=0) == val
    assert validation_impressions(lambda: iter(log), ARTICLES, 0.0, seed=0) == []
