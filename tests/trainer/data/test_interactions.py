"""edgerec.trainer.data.interactions: the generic articles.csv + interactions.csv format, its
cleaning, impression grouping, leak-free time windows, and the SYNTHETIC writer."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgerec.trainer.data.interactions import (
    InteractionsFormatError,
    iter_interaction_impressions,
    read_articles,
    time_span,
)
from edgerec.trainer.data.mind import Impression, ReadReport
from edgerec.trainer.data.synthetic import (
    SYNTHETIC_ID_PREFIX,
    synthetic_articles,
    write_interactions_layout,
)


def _log(tmp_path: Path, text: str, name: str = "interactions.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _t(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _summary(imps: list[Impression]) -> list[tuple[str | None, tuple[str, ...], tuple[str, ...]]]:
    return [
        (i.user, i.history, tuple(c for c, y in zip(i.candidates, i.labels, strict=True) if y))
        for i in imps
    ]


# A small log: u1 at 100 and 300, u2 at 100 (interleaved with u1) and 200.
LOG = (
    "user,article,timestamp,label\n"
    "u1,A,100,1\n"
    "u2,X,100,0\n"
    "u1,B,100,0\n"
    "u2,Y,100,1\n"
    "u1,C,100,1\n"
    "u2,Z,200,1\n"
    "u1,D,300,1\n"
    "u1,A,300,0\n"
)


def test_rows_of_one_user_and_timestamp_form_one_impression(tmp_path: Path) -> None:
    report = ReadReport("log")
    imps = list(iter_interaction_impressions(_log(tmp_path, LOG), report))
    assert [(i.impression_id, i.user, i.time) for i in imps] == [
        (1, "u1", _t(100)),
        (2, "u2", _t(100)),
        (3, "u2", _t(200)),
        (4, "u1", _t(300)),
    ]
    assert imps[0].candidates == ("A", "B", "C") and imps[0].labels == (1, 0, 1)
    assert imps[1].candidates == ("X", "Y") and imps[1].labels == (0, 1)
    assert imps[3].candidates == ("D", "A") and imps[3].labels == (1, 0)
    assert report.rows == 8 and report.kept == 8 and not report.skipped


def test_history_is_earlier_clicks_only(tmp_path: Path) -> None:
    imps = list(iter_interaction_impressions(_log(tmp_path, LOG)))
    # Own clicks never in the impression's history; earlier clicks are, oldest first.
    assert [i.history for i in imps] == [(), (), ("Y",), ("A", "C")]


def test_reclick_moves_to_end_and_counts_as_repeat(tmp_path: Path) -> None:
    log = "user,article,timestamp\nu,A,1\nu,B,2\nu,A,3\nu,C,4\n"
    report = ReadReport("log")
    imps = list(iter_interaction_impressions(_log(tmp_path, log), report))
    assert [i.history for i in imps] == [(), ("A",), ("A", "B"), ("B", "A")]
    assert report.repeated_history_entries == 1


def test_max_history_bounds_the_history(tmp_path: Path) -> None:
    rows = "".join(f"u,N{i},{i}\n" for i in range(10))
    path = _log(tmp_path, "user,article,timestamp\n" + rows)
    imps = list(iter_interaction_impressions(path, max_history=3))
    assert imps[-1].history == ("N6", "N7", "N8")
    assert max(len(i.history) for i in imps) == 3
    assert all(i.history == () for i in iter_interaction_impressions(path, max_history=0))
    with pytest.raises(ValueError, match="max_history"):
        iter_interaction_impressions(path, max_history=-1)


def test_since_until_window_keeps_earlier_history(tmp_path: Path) -> None:
    path = _log(tmp_path, LOG)
    window = list(iter_interaction_impressions(path, since=_t(200), until=_t(300)))
    assert _summary(window) == [("u2", ("Y",), ("Z",))]
    assert window[0].impression_id == 3  # the same id as in the full pass
    held_out = list(iter_interaction_impressions(path, since=_t(150)))
    assert _summary(held_out) == [("u2", ("Y",), ("Z",)), ("u1", ("A", "C"), ("D",))]
    train = list(iter_interaction_impressions(path, until=_t(150)))
    assert [i.impression_id for i in train] == [1, 2]
    # Naive datetimes mean UTC.
    naive = _t(200).replace(tzinfo=None)
    assert [i.impression_id for i in iter_interaction_impressions(path, since=naive)] == [3, 4]
    with pytest.raises(ValueError, match="before until"):
        iter_interaction_impressions(path, since=_t(300), until=_t(300))


def test_time_span_and_last_tenth_cutoff(tmp_path: Path) -> None:
    path = _log(tmp_path, LOG)
    report = ReadReport("span")
    first, last = time_span(path, report)
    assert (first, last) == (_t(100), _t(300)) and report.kept == 8
    cutoff = first + (last - first) * 0.9
    assert cutoff == _t(280)
    assert [i.impression_id for i in iter_interaction_impressions(path, since=cutoff)] == [4]
    with pytest.raises(InteractionsFormatError, match="no valid interaction rows"):
        time_span(_log(tmp_path, "user,article,timestamp\nu,,1\n", "bad.csv"))


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time five hours off UTC, so a naive time read as local time shows."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_not_utc")
def test_timestamp_formats_all_mean_utc(tmp_path: Path) -> None:
    log = (
        "user,article,timestamp\n"
        "u,A,2023-11-14T22:13:20Z\n"
        "u,B,1700000000\n"  # the same instant: same impression
        "u,C,2023-11-14 23:13:20+01:00\n"  # the same instant again
        "u,D,2023-11-14T22:13:21\n"  # naive = UTC
        "u,E,1700000001.5\n"
    )
    imps = list(iter_interaction_impressions(_log(tmp_path, log)))
    assert [(i.time, i.candidates) for i in imps] == [
        (_t(1_700_000_000), ("A", "B", "C")),
        (_t(1_700_000_001), ("D",)),
        (_t(1_700_000_001) + timedelta(seconds=0.5), ("E",)),
    ]
    assert all(i.time is not None and i.time.tzinfo == UTC for i in imps)


def test_every_malformed_row_is_counted_and_skipped(tmp_path: Path) -> None:
    log = (
        "user,article,timestamp,label\n"
        "u1,A,10,1\n"
        "u1,B,10,2\n"  # bad label
        "u1,B,10,N1-2\n"  # bad label
        "u1,B,10,\n"  # bad label (empty)
        "u1,B,yesterday,1\n"  # bad timestamp
        "u1,B,2023-13-45,1\n"  # bad timestamp
        "u1,B,nan,1\n"  # bad timestamp
        ",B,10,1\n"  # empty user
        "u1, ,10,1\n"  # empty article
        "u1,B,10\n"  # wrong column count
        "u1,B,10,1,extra\n"  # wrong column count
        "\n"  # blank line
        "u1,A,10,1\n"  # repeated row
        "u1,A,10,0\n"  # repeated candidate (click kept)
        "u2,C,20,1\n"
        "u2,D,15,1\n"  # timestamp out of order
        "u2,E,20,0\n"
    )
    report = ReadReport("log")
    imps = list(iter_interaction_impressions(_log(tmp_path, log), report))
    assert [(i.user, i.candidates, i.labels) for i in imps] == [
        ("u1", ("A",), (1,)),
        ("u2", ("C", "E"), (1, 0)),
    ]
    assert imps[1].history == ()  # u2 never clicked before
    assert report.skipped == {
        "bad label": 3,
        "bad timestamp": 3,
        "empty user or article": 2,
        "wrong column count": 2,
        "blank line": 1,
        "repeated row": 1,
        "repeated candidate": 1,
        "timestamp out of order": 1,
    }
    assert report.rows == 17 and report.kept == 3
    assert "17 rows, 3 kept" in report.summary()


def test_repeated_candidate_keeps_a_later_click(tmp_path: Path) -> None:
    log = "user,article,timestamp,label\nu,A,1,0\nu,B,1,0\nu,A,1,1\nu,Z,2,0\n"
    imps = list(iter_interaction_impressions(_log(tmp_path, log)))
    assert imps[0].candidates == ("A", "B") and imps[0].labels == (1, 0)
    assert imps[1].history == ("A",)


def test_dwell_variant_and_min_dwell(tmp_path: Path) -> None:
    log = (
        "user,article,timestamp,dwell\n"
        "u,A,1,0\n"
        "u,B,1,3.5\n"
        "u,C,1,\n"  # empty = 0
        "u,D,1,12\n"
        "u,E,1,-1\n"  # bad dwell
        "u,F,1,abc\n"  # bad dwell
        "u,G,1,inf\n"  # bad dwell
    )
    path = _log(tmp_path, log)
    report = ReadReport("dwell")
    (imp,) = iter_interaction_impressions(path, report)
    assert imp.candidates == ("A", "B", "C", "D") and imp.labels == (0, 1, 0, 1)
    assert report.skipped == {"bad dwell": 3}
    (imp,) = iter_interaction_impressions(path, min_dwell_s=5)
    assert imp.labels == (0, 0, 0, 1)
    (imp,) = iter_interaction_impressions(path, min_dwell_s=3.5)
    assert imp.labels == (0, 1, 0, 1)
    with pytest.raises(ValueError, match="min_dwell_s"):
        iter_interaction_impressions(path, min_dwell_s=-1)


def test_label_wins_over_dwell_and_no_label_means_click(tmp_path: Path) -> None:
    both = "user,article,timestamp,dwell,label\nu,A,1,50,0\nu,B,1,0,1\n"
    (imp,) = iter_interaction_impressions(_log(tmp_path, both, "both.csv"))
    assert imp.labels == (0, 1)
    plain = "User , ARTICLE,timestamp,extra\nu,A,1,x\nu,B,1,y\n"  # names case-insensitive
    (imp,) = iter_interaction_impressions(_log(tmp_path, plain, "plain.csv"))
    assert imp.candidates == ("A", "B") and imp.labels == (1, 1)


def test_format_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    cases = {
        "empty.csv": ("", "empty file"),
        "blank.csv": ("\nu,A,1\n", "first line is blank"),
        "nocol.csv": ("user,article,label\nu,A,1\n", "missing column(s) timestamp"),
        "dup.csv": ("user,article,timestamp,user\n", "column 'user' repeated"),
        "notutf8.csv": (None, "not valid UTF-8"),
    }
    for name, (text, problem) in cases.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(b"user,article,timestamp\nu,\xff\xfe,1\n")
        else:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(InteractionsFormatError) as info:
            list(iter_interaction_impressions(path))
        message = str(info.value)
        assert name in message and problem in message and "\n" not in message, message
        assert isinstance(info.value, ValueError)
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        iter_interaction_impressions(tmp_path / "missing.csv")  # at call time, not first next()
    with pytest.raises(FileNotFoundError, match=r"interactions\.csv"):
        time_span(tmp_path / "no-such-folder" / "interactions.csv")
    with pytest.raises(InteractionsFormatError, match="missing column"):
        read_articles(_log(tmp_path, "id,abstract\nA,text\n", "articles.csv"))
    with pytest.raises(InteractionsFormatError, match="empty file"):
        read_articles(_log(tmp_path, "", "empty_articles.csv"))


def test_header_only_file_yields_nothing(tmp_path: Path) -> None:
    path = _log(tmp_path, "user,article,timestamp\n")
    assert list(iter_interaction_impressions(path)) == []


def test_read_articles_shape_and_cleaning(tmp_path: Path) -> None:
    text = (
        "\ufeffid,title,abstract,category,subcategory,source,published_at,entities\n"
        'A1,"  A, quoted ""title"" ",Abstract ,sports,tennis,Metro Post,'
        "2023-11-14T23:13:20+01:00,Q1 Q2 Q1\n"
        "A2,Plain,,,,,,\n"
        ",No id,,,,,,\n"  # missing id
        "A3,,abstract only,,,,,\n"  # missing title
        "A1,Duplicate,,,,,,\n"  # repeated id
        "A4,Bad date,,,,,not a date,\n"  # bad published_at
        "A5,Short row\n"  # wrong column count
    )
    report = ReadReport("articles")
    articles = read_articles(_log(tmp_path, text, "articles.csv"), report)
    assert articles == {
        "A1": {
            "id": "A1",
            "category": "sports",
            "subcategory": "tennis",
            "title": 'A, quoted "title"',
            "abstract": "Abstract",
            "entities": ["Q1", "Q2"],
            "source": "Metro Post",
            "published_at": "2023-11-14T22:13:20+00:00",
        },
        "A2": {
            "id": "A2",
            "category": "",
            "subcategory": "",
            "title": "Plain",
            "abstract": "",
            "entities": [],
        },
    }
    assert report.skipped == {
        "missing id or title": 2,
        "repeated article id": 1,
        "bad published_at": 1,
        "wrong column count": 1,
    }
    assert report.rows == 7 and report.kept == 2
    minimal = read_articles(_log(tmp_path, "title,id\nHello,N1\n", "min.csv"))
    assert minimal["N1"]["title"] == "Hello" and minimal["N1"]["abstract"] == ""


def test_synthetic_writer_round_trip(tmp_path: Path) -> None:
    folder = write_interactions_layout(
        tmp_path / "data", n_articles=80, n_users=12, n_impressions=150, seed=4
    )
    assert "SYNTHETIC" in (folder / "README.md").read_text(encoding="utf-8")
    same = write_interactions_layout(
        tmp_path / "again", n_articles=80, n_users=12, n_impressions=150, seed=4
    )
    for name in ("articles.csv", "interactions.csv"):
        assert (folder / name).read_bytes() == (same / name).read_bytes()
    other = write_interactions_layout(tmp_path / "other", n_articles=80, n_users=12, seed=5)
    assert (other / "interactions.csv").read_bytes() != (folder / "interactions.csv").read_bytes()

    art_report = ReadReport("articles")
    articles = read_articles(folder, art_report)  # the folder works as well as the file
    expected = synthetic_articles(80, seed=4)
    assert art_report.rows == 80 and not art_report.skipped
    assert list(articles) == [a["id"] for a in expected]
    for a in expected:
        got = articles[a["id"]]
        for key in ("title", "abstract", "category", "subcategory", "source"):
            assert got[key] == a[key], key
        assert got["entities"] == list(dict.fromkeys(a["entities"]))
        assert datetime.fromisoformat(got["published_at"]).timestamp() == a["published_at"]

    report = ReadReport("interactions")
    imps = list(iter_interaction_impressions(folder, report))
    assert len(imps) == 150 and not report.skipped and report.kept == report.rows
    assert [i.impression_id for i in imps] == list(range(1, 151))
    times = [i.time for i in imps if i.time is not None]
    assert times == sorted(times) and len(set(times)) == 150
    assert all(i.user is not None and i.user.startswith(SYNTHETIC_ID_PREFIX) for i in imps)
    assert all(1 <= sum(i.labels) <= 2 and 4 <= len(i.candidates) <= 16 for i in imps)
    assert all(set(i.candidates) <= set(articles) for i in imps)
    # Histories are exactly the user's earlier clicks (recomputed independently here).
    clicks: dict[str, list[str]] = {}
    for imp in imps:
        assert imp.user is not None
        earlier = clicks.setdefault(imp.user, [])
        assert imp.history == tuple(reversed(dict.fromkeys(reversed(earlier))))
        earlier += [c for c, y in zip(imp.candidates, imp.labels, strict=True) if y]
    assert any(len(i.history) >= 5 for i in imps)

    # The planted signal: clicks concentrate on each user's preferred categories.
    share = []
    for user in {i.user for i in imps}:
        cats = Counter(articles[c]["category"] for c in clicks[str(user)])
        share.append(sum(n for _, n in cats.most_common(2)) / sum(cats.values()))
    assert sum(share) / len(share) > 0.7

    first, last = time_span(folder)
    assert (first, last) == (times[0], times[-1])
    cutoff = first + (last - first) * 0.9
    held_out = list(iter_interaction_impressions(folder, since=cutoff))
    assert held_out == [i for i in imps if i.time is not None and i.time >= cutoff]
    assert 0 < len(held_out) < 40


def test_parquet_reads_like_the_csv(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    from pyarrow import csv as pa_csv
    from pyarrow import parquet as pq

    from edgerec.trainer.data.interactions import find_table

    csv_dir = write_interactions_layout(tmp_path / "csv", n_impressions=200, seed=4)
    pq_dir = tmp_path / "parquet"
    pq_dir.mkdir()
    as_text = pa_csv.ConvertOptions(
        column_types={"user": pa.string(), "article": pa.string(), "label": pa.string()}
    )
    for stem in ("articles", "interactions"):
        table = pa_csv.read_csv(csv_dir / f"{stem}.csv", convert_options=as_text)
        pq.write_table(table, pq_dir / f"{stem}.parquet", row_group_size=97)  # several batches
    # the timestamp column is a real Parquet timestamp type, not text
    assert pa.types.is_timestamp(pq.read_schema(pq_dir / "interactions.parquet").field(2).type)
    assert find_table(pq_dir, "interactions.csv") == pq_dir / "interactions.parquet"
    assert find_table(csv_dir, "interactions.csv") == csv_dir / "interactions.csv"
    assert find_table(tmp_path, "interactions.csv") is None
    assert read_articles(pq_dir) == read_articles(csv_dir)
    assert time_span(pq_dir) == time_span(csv_dir)
    assert list(iter_interaction_impressions(pq_dir)) == list(iter_interaction_impressions(csv_dir))


def test_a_broken_parquet_file_is_one_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    (tmp_path / "interactions.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InteractionsFormatError, match="not a readable Parquet file"):
        time_span(tmp_path)
