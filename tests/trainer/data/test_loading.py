"""edgerec.trainer.data.loading: either layout into one Data record, the generic layout's
time split without leakage, and one-line errors (SYNTHETIC data, no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgerec.trainer.data.interactions import iter_interaction_impressions, time_span
from edgerec.trainer.data.loading import load, mind_paths, split_by_time
from edgerec.trainer.data.synthetic import write_interactions_layout, write_mind_layout
from edgerec.trainer.errors import DataError


def test_mind_layout(tmp_path: Path) -> None:
    folder = write_mind_layout(tmp_path, n_articles=80, n_users=20, n_train=40, n_eval=15)
    lines: list[str] = []
    data = load(folder, log=lines.append)
    assert len(data.articles) == 80 and len(data.evaluation) == 15
    assert data.eval_file == str(folder / "MINDsmall_dev_sampled_impressions.tsv")
    assert len(list(data.train())) == len(list(data.train())) == 40  # re-opened each time
    assert any(line.startswith("news: 80 rows, 80 kept") for line in lines)
    assert any(line.startswith("coverage eval: ") for line in lines)
    assert mind_paths(folder)["supplement"].name == "news_supplement.tsv"


def test_generic_layout_splits_by_time_without_leakage(tmp_path: Path) -> None:
    folder = write_interactions_layout(tmp_path, n_impressions=300, seed=3)
    data = load(folder, 0.25, log=lambda _: None)
    cutoff = split_by_time(*time_span(folder), 0.25)
    train = list(data.train())
    assert train and all(imp.time is not None and imp.time < cutoff for imp in train)
    assert data.evaluation and all(
        imp.time is not None and imp.time >= cutoff for imp in data.evaluation
    )
    held_out = list(iter_interaction_impressions(folder, since=cutoff))
    assert [i.impression_id for i in data.evaluation] == [i.impression_id for i in held_out]
    # a held-out impression still sees the clicks before it
    assert any(imp.history for imp in data.evaluation)
    assert all(c in data.articles for imp in data.evaluation for c in imp.candidates)
    assert "interactions.csv" in data.eval_file


def test_unknown_candidates_are_dropped_from_the_evaluation(tmp_path: Path) -> None:
    folder = write_interactions_layout(tmp_path, n_impressions=200, seed=4)
    log = folder / "interactions.csv"
    lines = log.read_text().splitlines()
    user, _, when, _ = lines[-1].split(",")
    log.write_text("\n".join([*lines, f"{user},NOT-AN-ARTICLE,{when},0"]) + "\n")
    data = load(folder, 0.2, log=lambda _: None)
    assert all("NOT-AN-ARTICLE" not in imp.candidates for imp in data.evaluation)
    last = data.evaluation[-1]
    assert len(last.candidates) == len(last.labels)


@pytest.mark.parametrize("problem", ["no folder", "neither layout", "empty evaluation"])
def test_unusable_folders_are_one_clear_error(tmp_path: Path, problem: str) -> None:
    folder = tmp_path / "data"
    if problem == "neither layout":
        folder.mkdir()
    elif problem == "empty evaluation":
        write_mind_layout(folder, n_articles=30, n_users=5, n_train=10, n_eval=3)
        (folder / "MINDsmall_dev_sampled_impressions.tsv").write_text("garbage\n")
    with pytest.raises(DataError) as caught:
        load(folder, log=lambda _: None)
    message = str(caught.value)
    assert "\n" not in message
    expected = {
        "no folder": "data folder not found",
        "neither layout": "neither the MIND layout",
        "empty evaluation": "nothing usable left",
    }[problem]
    assert expected in message
