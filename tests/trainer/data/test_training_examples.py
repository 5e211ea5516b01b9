"""edgerec.trainer.data.training_examples: examples streamed from an impression log (pure
numpy, SYNTHETIC data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgerec.model import pad_history  # what the examples are padded with
from edgerec.trainer.data.mind import Impression, iter_impressions, read_news
from edgerec.trainer.data.synthetic import write_mind_layout
from edgerec.trainer.data.training_examples import ArticleTable, ExampleStream


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mind_layout(tmp_path_factory.mktemp("synthetic"), seed=3)


def _stream(layout: Path, **kw: object) -> tuple[ExampleStream, ArticleTable, list[Impression]]:
    articles = read_news([layout / "MINDsmall_train_subset" / "news.tsv"])
    table = ArticleTable.build(articles)
    behaviors = layout / "MINDsmall_train_subset" / "behaviors.tsv"
    opened: list[Impression] = []

    def reopen() -> Iterator[Impression]:
        for imp in iter_impressions(behaviors):
            opened.append(imp)
            yield imp

    args: dict[str, object] = {
        "history_len": 10,
        "negatives": 4,
        "validation_fraction": 0.2,
        "seed": 0,
    }
    args.update(kw)
    return ExampleStream(reopen, table, **args), table, opened  # type: ignore[arg-type]


def test_pad_history_keeps_the_last_items_left_padded() -> None:
    assert pad_history([5, 6, 7], 5).tolist() == [0, 0, 5, 6, 7]
    assert pad_history([1, 2, 3, 4, 5, 6], 3).tolist() == [4, 5, 6]
    assert pad_history([], 2).tolist() == [0, 0]


def test_counts_match_what_iterate_yields(layout: Path) -> None:
    stream, _, _ = _stream(layout)
    train = list(stream.iterate())
    validation = stream.validation()
    assert stream.n_train == len(train) > 0
    assert stream.n_validation == len(validation) > 0
    assert {kind for _, _, kind in train} == {0, 1}


def test_example_shapes_and_indices_are_valid(layout: Path) -> None:
    stream, table, _ = _stream(layout)
    for hist, cands, _ in stream.iterate():
        assert hist.shape == (10,) and cands.shape == (5,)
        assert hist.dtype == np.int32 and cands.dtype == np.int32
        assert cands.min() >= 1 and cands.max() < len(table)  # never the padding row
        nonzero = np.flatnonzero(hist)
        assert nonzero.size == 0 or nonzero[0] == 10 - nonzero.size  # left-padded


def test_impression_negatives_are_real_skips(layout: Path) -> None:
    stream, table, _ = _stream(layout, validation_fraction=0.0)
    skipped_by_click: dict[int, set[int]] = {}
    for imp in iter_impressions(layout / "MINDsmall_train_subset" / "behaviors.tsv"):
        shown = {
            table.index[c]: y
            for c, y in zip(imp.candidates, imp.labels, strict=True)
            if c in table.index
        }
        for idx, y in shown.items():
            if y:
                skipped_by_click.setdefault(idx, set()).update(i for i, v in shown.items() if not v)
    for _, cands, kind in stream.iterate():
        if kind == 1:
            assert set(cands[1:].tolist()) <= skipped_by_click[int(cands[0])]


def test_validation_users_are_disjoint_from_training_users() -> None:
    # 40 readers, each with articles of their own: an example's history and positive name
    # its reader (next-click negatives come from the training readers' clicks).
    log = [
        Impression(
            u,
            f"u{u}",
            None,
            tuple(f"a{u}-{i}" for i in range(4)),
            (f"a{u}-4", f"a{u}-5", f"a{u}-6"),
            (1, 0, 0),
        )
        for u in range(40)
    ]
    table = ArticleTable.build({c: None for imp in log for c in imp.history + imp.candidates})
    stream = ExampleStream(
        lambda: iter(log), table, history_len=5, negatives=2, validation_fraction=0.3, seed=0
    )

    def readers(rows: Iterator[tuple[np.ndarray, np.ndarray]]) -> set[str]:
        return {table.ids[i].split("-")[0] for h, c in rows for i in [*h.tolist(), int(c[0])] if i}

    train = readers((h, c) for h, c, _ in stream.iterate())
    val = stream.validation()
    held = readers(zip(val.history, val.candidates, strict=True))
    assert train and held and not train & held
    assert len(train) + len(held) == 40


def test_negatives_are_fresh_each_epoch_and_deterministic(layout: Path) -> None:
    first, _, _ = _stream(layout)
    second, _, _ = _stream(layout)
    epoch1 = [c.tolist() for _, c, _ in first.iterate()]
    epoch2 = [c.tolist() for _, c, _ in first.iterate()]
    assert epoch1 != epoch2  # new negatives
    assert [c[0] for c in epoch1] == [c[0] for c in epoch2]  # same positives
    assert epoch1 == [c.tolist() for _, c, _ in second.iterate()]  # same seed, same draw


def test_the_log_is_reopened_not_held(layout: Path) -> None:
    stream, _, opened = _stream(layout)
    per_pass = len(opened) // 2  # two passes in the constructor
    list(stream.iterate())
    assert per_pass > 0 and len(opened) == 3 * per_pass


def test_validation_is_capped(layout: Path) -> None:
    stream, _, _ = _stream(layout, max_validation=7)
    assert len(stream.validation()) == 7


def test_an_empty_log_gives_no_examples() -> None:
    table = ArticleTable.build(dict.fromkeys("ab"))
    stream = ExampleStream(
        lambda: iter([]), table, history_len=3, negatives=2, validation_fraction=0.1, seed=0
    )
    assert stream.n_train == stream.n_validation == 0
    assert list(stream.iterate()) == []
    assert stream.validation().history.shape == (0, 3)
