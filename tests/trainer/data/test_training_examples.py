"""edgerec.trainer.data.training_examples: examples prepared once as shards from an
impression log, read back as batches (pure numpy, SYNTHETIC data)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgerec.model import pad_history  # what the examples are padded with
from edgerec.trainer.data.mind import Impression, iter_impressions, read_news
from edgerec.trainer.data.synthetic import write_mind_layout
from edgerec.trainer.data.training_examples import (
    ArticleTable,
    ExampleShards,
    _draw_by_counts,
    _draw_from_pools,
    evaluation_like_lengths,
)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mind_layout(tmp_path_factory.mktemp("synthetic"), seed=3)


def _shards(
    layout: Path, folder: Path, **kw: Any
) -> tuple[ExampleShards, ArticleTable, list[Impression]]:
    articles = read_news([layout / "MINDsmall_train_subset" / "news.tsv"])
    table = ArticleTable.build(articles)
    behaviors = layout / "MINDsmall_train_subset" / "behaviors.tsv"
    opened: list[Impression] = []

    def reopen() -> Iterator[Impression]:
        for imp in iter_impressions(behaviors):
            opened.append(imp)
            yield imp

    args: dict[str, Any] = {"validation_fraction": 0.2, "seed": 0}
    args.update(kw)
    return ExampleShards.prepare(reopen, table, folder, **args), table, opened


def _epoch(shards: ExampleShards, **kw: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One full pass (batch size 1: nothing is left over), as (history, candidates, weight)."""
    args: dict[str, Any] = {"history_len": 10, "negatives": 4, "batch_size": 1, "seed": 0}
    args.update(kw)
    batches = itertools.islice(shards.batches(**args), shards.n_train)
    return [(x["history"][0], x["candidates"][0], w[0]) for x, _, w in batches]


def test_pad_history_keeps_the_last_items_left_padded() -> None:
    assert pad_history([5, 6, 7], 5).tolist() == [0, 0, 5, 6, 7]
    assert pad_history([1, 2, 3, 4, 5, 6], 3).tolist() == [4, 5, 6]
    assert pad_history([], 2).tolist() == [0, 0]


def test_counts_match_what_an_epoch_yields(layout: Path, tmp_path: Path) -> None:
    shards, _, _ = _shards(layout, tmp_path)
    epoch = _epoch(shards)
    validation = shards.validation(10, 4, seed=0)
    assert shards.n_train == len(epoch) > 0
    assert shards.n_validation == len(validation) > 0
    assert set(validation.kind.tolist()) == {0, 1}
    positives = sorted(int(c[0]) for _, c, _ in epoch)
    assert positives == sorted(int(c[0]) for _, c, _ in _epoch(shards, seed=1))  # same set


def test_example_shapes_and_indices_are_valid(layout: Path, tmp_path: Path) -> None:
    shards, table, _ = _shards(layout, tmp_path)
    for hist, cands, _ in _epoch(shards):
        assert hist.shape == (10,) and cands.shape == (5,)
        assert hist.dtype == np.int32 and cands.dtype == np.int32
        assert cands.min() >= 1 and cands.max() < len(table)  # never the padding row
        nonzero = np.flatnonzero(hist)
        assert nonzero.size == 0 or nonzero[0] == 10 - nonzero.size  # left-padded


def test_one_preparation_serves_every_history_length(layout: Path, tmp_path: Path) -> None:
    """The teacher reads 30 items and the student 50 from the same shards: a shorter
    window is the tail of a longer one."""
    shards, _, _ = _shards(layout, tmp_path)
    long = _epoch(shards, history_len=12, bucket=False)  # the same order for both lengths
    short = _epoch(shards, history_len=5, bucket=False)
    for (h12, c12, _), (h5, c5, _) in zip(long, short, strict=True):
        assert h12[-5:].tolist() == h5.tolist() and c12[0] == c5[0]


def test_truncated_histories_are_the_tails_of_the_full_ones(layout: Path, tmp_path: Path) -> None:
    """issue 18: ``truncate`` keeps the newest items, evaluation-like lengths (1-25)."""
    shards, _, _ = _shards(layout, tmp_path)
    full = _epoch(shards, history_len=40, bucket=False)
    cut = _epoch(shards, history_len=40, bucket=False, truncate=True)
    kept = []
    for (hf, cf, _), (hc, cc, _) in zip(full, cut, strict=True):
        n = int((hc > 0).sum())
        assert 1 <= n <= min(25, int((hf > 0).sum())) and cf[0] == cc[0]
        assert hc[-n:].tolist() == hf[-n:].tolist() and not hc[:-n].any()
        kept.append(n)
    assert np.mean(kept) < np.mean([(h > 0).sum() for h, _, _ in full])
    lengths = evaluation_like_lengths(20_000, np.random.default_rng(0))
    assert lengths.min() == 1 and lengths.max() == 25 and 6 <= np.median(lengths) <= 8


def test_impression_negatives_are_real_skips(layout: Path, tmp_path: Path) -> None:
    shards, table, _ = _shards(layout, tmp_path, validation_fraction=0.0)
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
    impressions = [c for _, c, w in _epoch(shards, impression_weight=2.0) if w == 2.0]
    assert impressions
    for cands in impressions:
        assert set(cands[1:].tolist()) <= skipped_by_click[int(cands[0])]


def test_pool_draws_are_distinct_when_the_pool_is_large_enough() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([4, 10, 2, 7, 1] * 200, dtype=np.int32)
    picks = _draw_from_pools(sizes, 4, rng)
    assert (picks >= 0).all() and (picks < sizes[:, None]).all()
    for row, size in zip(picks, sizes, strict=True):
        if size >= 4:
            assert len(set(row.tolist())) == 4  # without replacement
    # uniform: each member of a 10-pool drawn about equally often
    tens = picks[sizes == 10].ravel()
    counts = np.bincount(tens, minlength=10)
    assert counts.min() > 0.6 * counts.mean()


def test_next_click_negatives_follow_the_click_counts() -> None:
    counts = np.array([0, 10, 0, 30, 60], dtype=np.float64)
    drawn = _draw_by_counts(np.cumsum(counts), (20_000, 4), np.random.default_rng(1))
    share = np.bincount(drawn.ravel(), minlength=5) / drawn.size
    assert share[0] == 0 and share[2] == 0  # never an article nobody clicked
    np.testing.assert_allclose(share[[1, 3, 4]], [0.1, 0.3, 0.6], atol=0.01)


def test_validation_users_are_disjoint_from_training_users(tmp_path: Path) -> None:
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
    shards = ExampleShards.prepare(
        lambda: iter(log), table, tmp_path, validation_fraction=0.3, seed=0
    )

    def readers(rows: Any) -> set[str]:
        return {table.ids[i].split("-")[0] for h, c in rows for i in [*h.tolist(), int(c[0])] if i}

    train = readers((h, c) for h, c, _ in _epoch(shards, history_len=5, negatives=2))
    val = shards.validation(5, 2, seed=0)
    held = readers(zip(val.history, val.candidates, strict=True))
    assert train and held and not train & held
    assert len(train) + len(held) == 40


def test_negatives_are_fresh_each_epoch_and_deterministic(layout: Path, tmp_path: Path) -> None:
    shards, _, _ = _shards(layout, tmp_path)
    args = {"history_len": 10, "negatives": 4, "batch_size": 1, "seed": 0}
    stream = shards.batches(**args)
    epoch1 = [x["candidates"][0].tolist() for x, _, _ in itertools.islice(stream, shards.n_train)]
    epoch2 = [x["candidates"][0].tolist() for x, _, _ in itertools.islice(stream, shards.n_train)]
    assert sorted(epoch1) != sorted(epoch2)  # new negatives (and a new order)
    assert sorted(c[0] for c in epoch1) == sorted(c[0] for c in epoch2)  # same positives
    again = shards.batches(**args)
    assert epoch1 == [
        x["candidates"][0].tolist() for x, _, _ in itertools.islice(again, shards.n_train)
    ]


def test_the_log_is_read_three_times_and_never_again(layout: Path, tmp_path: Path) -> None:
    shards, _, opened = _shards(layout, tmp_path)
    per_pass = len(opened) // 3  # three passes to prepare
    _epoch(shards)
    shards.validation(10, 4, seed=0)
    assert per_pass > 0 and len(opened) == 3 * per_pass


def test_shards_are_bounded_and_workers_read_disjoint_shards(layout: Path, tmp_path: Path) -> None:
    """Memory is bounded by one shard; a worker reads its own shard files only."""
    shards, _, _ = _shards(layout, tmp_path, shard_size=100)
    assert len(shards.shard_names) > 3 and max(shards.shard_sizes) <= 100 + 30
    assert sum(shards.shard_sizes) == shards.n_train
    ids = list(range(len(shards.shard_names)))
    every = sorted(int(c[0]) for _, c, _ in _epoch(shards))
    per_worker = []
    for worker in (0, 1):
        mine = ids[worker::2]
        n = sum(shards.shard_sizes[i] for i in mine)
        batches = shards.batches(history_len=10, negatives=4, batch_size=1, seed=0, shard_ids=mine)
        per_worker.append([int(x["candidates"][0, 0]) for x, _, _ in itertools.islice(batches, n)])
    assert per_worker[0] and per_worker[1]
    assert sorted(per_worker[0] + per_worker[1]) == every  # together: one whole epoch
    reopened = ExampleShards.open(tmp_path)
    assert reopened.n_train == shards.n_train and reopened.shard_names == shards.shard_names


def test_batches_are_grouped_by_history_length(layout: Path, tmp_path: Path) -> None:
    """Length buckets: a batch's histories are of similar length (the student's LSTM
    skips the padding steps a batch shares)."""
    shards, _, _ = _shards(layout, tmp_path)
    spread = []
    for bucket in (True, False):
        batches = shards.batches(history_len=10, negatives=4, batch_size=32, seed=0, bucket=bucket)
        lengths = [
            (x["history"] > 0).sum(1) for x, _, _ in itertools.islice(batches, shards.n_train // 32)
        ]
        spread.append(float(np.mean([length.max() - length.min() for length in lengths])))
    assert spread[0] < spread[1] / 2


def test_validation_is_capped(layout: Path, tmp_path: Path) -> None:
    shards, _, _ = _shards(layout, tmp_path, max_validation=7)
    assert len(shards.validation(10, 4, seed=0)) == 7


def test_an_empty_log_gives_no_examples(tmp_path: Path) -> None:
    table = ArticleTable.build(dict.fromkeys("ab"))
    shards = ExampleShards.prepare(
        lambda: iter([]), table, tmp_path, validation_fraction=0.1, seed=0
    )
    assert shards.n_train == shards.n_validation == 0
    batches = shards.batches(history_len=3, negatives=2, batch_size=1, seed=0)
    assert list(batches) == []
    assert shards.validation(3, 2, seed=0).history.shape == (0, 3)
