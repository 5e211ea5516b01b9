"""edgerec.trainer.data.mind: synthetic MIND-layout files, malformed lines, and (when
present) the real MIND subset in ../shared/data/mind."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgerec.trainer.data.mind import (
    TIME_FORMAT,
    ReadReport,
    _parse_time,
    coverage,
    iter_impressions,
    read_news,
)
from tests.support.mind import mind_dir


def test_behaviors_cleaning_counts_every_skip(tmp_path: Path) -> None:
    path = tmp_path / "behaviors.tsv"
    path.write_text(
        "1\tU1\t11/12/2019 2:14:46 PM\tN1 N2 N1\tN3-1 N4-0\n"  # history repeat removed
        "1\tU1\t11/12/2019 2:14:46 PM\tN1 N2\tN3-1 N4-0\n"  # repeated impression
        "2\tU2\t11/12/2019 2:14:46 PM\tN1\tN3-2 N4-0\n"  # label 2
        "3\tU2\t13/45/2019 2:14:46 PM\tN1\tN3-1\n"  # bad timestamp
        "x\tU2\t11/12/2019 2:14:46 PM\tN1\tN3-1\n"  # bad id
        "4\tU2\tN1\tN3-1\n"  # 4 columns
        "5\tU3\t11/13/2019 5:53:12 AM\t\tN9-0 N8-1\n"  # empty history is fine
        "6\tU3\t11/13/2019 5:53:12 AM\tN1\t\n",  # no candidates
        encoding="utf-8",
    )
    report = ReadReport("behaviors")
    rows = list(iter_impressions(path, report))
    assert [r.impression_id for r in rows] == [1, 5]
    assert rows[0].history == ("N1", "N2") and rows[0].labels == (1, 0)
    assert rows[1].history == () and rows[1].candidates == ("N9", "N8")
    assert report.rows == 8 and report.kept == 2 and report.repeated_history_entries == 1
    assert report.skipped == {
        "repeated impression": 1,
        "bad impression label": 1,
        "bad timestamp": 1,
        "bad impression id": 1,
        "wrong column count": 1,
        "no candidates": 1,
    }
    assert "8 rows, 2 kept" in report.summary()


TIMES = [
    "11/12/2019 2:14:46 PM",
    "11/12/2019 12:00:00 AM",  # midnight
    "11/12/2019 12:30:05 PM",  # half past noon
    "1/2/2019 01:02:03 AM",
    "02/29/2020 11:59:59 PM",
    "02/29/2019 1:00:00 PM",  # no such day
    "13/45/2019 2:14:46 PM",
    "11/12/2019 0:14:46 PM",  # %I has no hour 0
    "11/12/2019 13:14:46 PM",
    "11/12/2019 2:14:60 PM",
    "11/12/2019 2:14:46 pm",  # strptime's %p ignores case: the slow path decides
    "11/12/19 2:14:46 PM",
    "11/12/2019 2:14:46",
    "11/12/2019  2:14:46 PM",
    "\u0661\u0661/12/2019 2:14:46 PM",  # Arabic-Indic digits
    "+1/12/2019 2:14:46 PM",
    "11/12/2019 2:14:46 PM ",
    "",
]


@pytest.mark.parametrize("text", TIMES)
def test_the_time_fast_path_agrees_with_strptime(text: str) -> None:
    """A MIND time is read by hand when it has the usual shape: the result, or the
    ValueError, is what strptime gives for every input."""
    try:
        expected: datetime | type[ValueError] = datetime.strptime(text, TIME_FORMAT)
        expected = expected.replace(tzinfo=UTC)
    except ValueError:
        expected = ValueError
    try:
        got: datetime | type[ValueError] = _parse_time(text)
    except ValueError:
        got = ValueError
    assert got == expected


def test_a_repeated_impression_is_the_same_reader_time_and_candidates(tmp_path: Path) -> None:
    """Repeats are found by a digest of (reader, parsed time, candidates): the same time
    written with a leading zero is a repeat, another reader or candidate list is not."""
    path = tmp_path / "behaviors.tsv"
    path.write_text(
        "1\tU1\t11/12/2019 2:14:46 PM\tN1\tN3-1 N4-0\n"
        "2\tU1\t11/12/2019 02:14:46 PM\tN1\tN3-1 N4-0\n"  # same time, other spelling
        "3\tU2\t11/12/2019 2:14:46 PM\tN1\tN3-1 N4-0\n"  # another reader
        "4\tU1\t11/12/2019 2:14:46 PM\tN1\tN3-1 N5-0\n",  # other candidates
        encoding="utf-8",
    )
    report = ReadReport("behaviors")
    assert [r.impression_id for r in iter_impressions(path, report)] == [1, 3, 4]
    assert report.skipped == {"repeated impression": 1}


def test_news_reading(tmp_path: Path) -> None:
    path = tmp_path / "news.tsv"
    ents = json.dumps([{"WikidataId": "Q1"}, {"WikidataId": "Q2"}])
    path.write_text(
        f'N1\tsports\tfootball\tA "quoted" title\tAbstract\turl\t{ents}\t[{{"WikidataId": "Q1"}}]\n'
        "N2\tnews\tworld\t\tno title\t\t[]\t[]\n"
        "N3\tnews\tworld\tshort row\n"
        "N1\tx\ty\tDuplicate\t\t\t[]\t[]\n"
        "N4\tnews\tworld\tBad entities\t\t\tnot json\t\n",
        encoding="utf-8",
    )
    report = ReadReport("news")
    articles = read_news([path], report)
    assert set(articles) == {"N1", "N4"}
    assert articles["N1"]["title"] == 'A "quoted" title'
    assert articles["N1"]["entities"] == ["Q1", "Q2"]
    assert articles["N4"]["entities"] == []
    assert report.skipped == {
        "missing id or title": 1,
        "wrong column count": 1,
        "repeated news id": 1,
    }


@pytest.mark.mind
def test_real_mind_subset_counts_and_coverage() -> None:
    data = mind_dir()
    articles = read_news(
        [data / "MINDsmall_train_subset" / "news.tsv", data / "news_supplement.tsv"]
    )
    assert len(articles) == 8135  # 2,000 + 6,135 (data README)
    train = list(iter_impressions(data / "MINDsmall_train_subset" / "behaviors.tsv"))
    evaluation = list(iter_impressions(data / "MINDsmall_dev_sampled_impressions.tsv"))
    assert len(train) == 5000 and len(evaluation) == 1817
    assert sum(sum(i.labels) for i in evaluation) == 1955
    cov = coverage(evaluation, articles)
    assert cov == {"history": 1.0, "candidates": 1.0, "clicks": 1.0}
    assert coverage(train, articles)["candidates"] == pytest.approx(0.252, abs=0.001)
