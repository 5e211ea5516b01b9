"""edgerec.history.events: what an article may be (the SDK's one article validator and
time rule, D1-D3), exact round trips of every valid event, the codec."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgerec
from edgerec import (
    EdgerecError,
    HistoryEvent,
    InvalidInputError,
    InvalidTypeError,
    ReadingHistory,
    UnsupportedFormatError,
)
from edgerec.features.values import MAX_TIME, MIN_TIME
from edgerec.history import crypto, events, limits
from tests.support.history import (
    CANARY_ID,
    CANARY_TITLE,
    article,
    digest,
    open_store,
)


def test_history_features_featurize_like_the_article(path: Path) -> None:
    spec = edgerec.FeatureSpec.default()
    with open_store(path) as h:
        h.record(article(3), at=5.0)
        (event,) = h.recent(1)
    assert (
        edgerec.featurize([event.article()], spec) == edgerec.featurize([article(3)], spec)
    ).all()


def test_d1_unicode_round_trips_exactly(path: Path) -> None:
    titles = [
        "nul\x00inside",
        "\u202eRTL override",
        "e\u0301 combining",
        "emoji 🧪👩‍🔬",
        unicodedata.normalize("NFC", "Café"),
        unicodedata.normalize("NFD", "Café"),
    ]
    with open_store(path) as h:
        for i, t in enumerate(titles):
            h.record({"id": f"id-{t}", "title": t, "entities": [t]}, at=float(i))
        got = list(h)
    assert [e.features["title"] for e in got] == titles
    assert [e.article_id for e in got] == [f"id-{t}" for t in titles]
    assert got[4].features["title"] != got[5].features["title"]  # no normalization


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"id": "ok", "title": "lone \ud800"}, "article['title']"),
        ({"id": "\udfff"}, "article['id']"),
        ({"id": "ok", "entities": ["fine", "\ud83d"]}, "article['entities'][1]"),
        ({"id": "ok", "title": "x" * (1 << 20)}, "article['title']"),
        ({"id": "x" * 257}, "article['id']"),
        ({"id": ""}, "article['id']"),
        ({"id": "ok", "entities": ["e"] * 257}, "article['entities']"),
    ],
)
def test_d1_d2_invalid_strings(path: Path, bad: dict[str, Any], param: str) -> None:
    with open_store(path) as h:
        h.record(article(1))
        before = digest(path)
        with pytest.raises(InvalidInputError) as err:
            h.record(bad)
        assert param in str(err.value)
        assert digest(path) == before and len(h) == 1


def test_d2_huge_input_checked_before_encrypting(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kw: Any) -> bytes:
        raise AssertionError("encrypt reached")

    monkeypatch.setattr(crypto, "seal_record", boom)
    with open_store(path) as h:
        for size in (1 << 20, 10 << 20):
            with pytest.raises(InvalidInputError, match="limit"):
                h.record({"id": "a", "abstract": "y" * size})
        many = {"id": "a", **{f: "z" * 16_000 for f in ("title", "abstract", "source", "category")}}
        many["entities"] = ["q" * 16_000] * 20
        with pytest.raises(InvalidInputError, match="bytes"):
            h.record(many)
        assert len(h) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "param"),
    [
        ({"at": math.nan}, InvalidInputError, "at"),
        ({"at": math.inf}, InvalidInputError, "at"),
        ({"at": -math.inf}, InvalidInputError, "at"),
        ({"at": MIN_TIME - 1.0}, InvalidInputError, "at"),  # before year 1
        ({"at": 253402300800.0}, InvalidInputError, "at"),
        ({"at": 10**400}, InvalidInputError, "at"),  # float() overflows
        ({"at": True}, InvalidTypeError, "at"),
        ({"at": "2026-01-01"}, InvalidInputError, "at"),  # naive
        ({"at": "yesterday"}, InvalidInputError, "at"),
        ({"at": {"t": 1}}, InvalidTypeError, "at"),
        ({"at": b"1"}, InvalidTypeError, "at"),
        ({"at": np.bool_(True)}, InvalidTypeError, "at"),
        ({"at": datetime(2026, 1, 1)}, InvalidInputError, "at"),
        ({"dwell_s": math.nan}, InvalidInputError, "dwell_s"),
        ({"dwell_s": -1}, InvalidInputError, "dwell_s"),
        ({"dwell_s": False}, InvalidTypeError, "dwell_s"),
        ({"dwell_s": "3"}, InvalidTypeError, "dwell_s"),
    ],
)
def test_d3_bad_times_and_dwell(
    path: Path, kwargs: dict[str, Any], error: type, param: str
) -> None:
    with open_store(path) as h:
        before = digest(path)
        with pytest.raises(error) as err:
            h.record(article(1), **kwargs)
        assert str(err.value).startswith(param)
        assert issubclass(error, EdgerecError)
        assert digest(path) == before and len(h) == 0


def test_d3_valid_time_forms_normalised_to_utc(path: Path) -> None:
    with open_store(path) as h:
        h.record(article(1), at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
        h.record(article(2), at=datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
        h.record(article(3), at=np.float64(12.5), dwell_s=np.int64(3))
        h.record(article(4), at=0)
        got = [e.at for e in h.recent(4)]
    assert got == [0.0, 12.5, datetime(2026, 1, 1, tzinfo=UTC).timestamp(), 253402297200.0]


def test_at_iso_string_equals_the_epoch_value(path: Path) -> None:
    """The SDK's one time rule: record(at=ISO) as recommend(now=ISO) (edgerec.parse_time)."""
    with open_store(path) as h:
        h.record(article(1), at="2026-12-02T08:00:00Z")
        h.record(article(2), at="2026-12-02T10:00:00+02:00")
        h.record(article(3), at=1_796_198_400)
        got = [e.at for e in h.recent(3)]
    assert got == [1_796_198_400.0] * 3 == [edgerec.parse_time("2026-12-02T08:00:00Z")] * 3


def test_article_is_checked_by_the_shared_validator(path: Path) -> None:
    """The history checks an article with edgerec.features.values.check_fields: the same
    types, rules and messages as featurize, with the history's own limits."""
    from edgerec.features.values import check_fields
    from edgerec.history.events import STORED_FIELDS

    edgerec.FeatureSpec(fields=STORED_FIELDS)  # a valid field description
    bad = {"id": "a", "published_at": "2026-13-45T00:00:00Z"}
    with pytest.raises(InvalidInputError) as shared:
        check_fields(bad, STORED_FIELDS)
    with open_store(path) as h:
        with pytest.raises(InvalidInputError) as ours:
            h.record(bad)
        assert str(ours.value) == str(shared.value)


@pytest.mark.parametrize(
    "published",
    ["2026-13-45T00:00:00Z", "2026-01-01T00:00:00", "last week", "9" * 65, math.nan, True],
)
def test_bad_published_at_is_refused(path: Path, published: Any) -> None:
    with open_store(path) as h:
        with pytest.raises((InvalidInputError, InvalidTypeError)) as err:
            h.record({"id": "a", "published_at": published})
        assert str(err.value).startswith("article['published_at']")
        assert len(h) == 0


def test_published_at_string_is_stored_as_given_once_it_parsed(path: Path) -> None:
    given = "2026-12-02T10:00:00+02:00"
    with open_store(path) as h:
        h.record({"id": "a", "published_at": given})
        h.record({"id": "b", "published_at": datetime(2026, 12, 2, 8, tzinfo=UTC)})
        b, a = h.recent(2)
    assert a.features["published_at"] == given
    assert b.features["published_at"] == 1_796_198_400.0


def test_empty_fields_are_left_out_and_lists_stay_whole(path: Path) -> None:
    with open_store(path) as h:
        h.record({"id": "a", "title": "", "entities": ["", "Q1", "Q2"], "source": "s"})
        h.record({"id": "b", "entities": ["Q"] * 256})
        b, a = h.recent(2)
    assert a.features == {"source": "s", "entities": ["Q1", "Q2"]}
    assert b.features["entities"] == ["Q"] * 256  # all of them: slots never cut the list


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    h = open_store(tmp_path_factory.mktemp("prop") / "h.db", synchronous="NORMAL")
    yield h
    h.close()


@settings(max_examples=60)
@given(
    doc=st.fixed_dictionaries(
        {"id": _text.filter(bool)},
        optional={
            "title": _text,
            "abstract": _text,
            "category": _text,
            "source": _text,
            "entities": st.lists(_text, max_size=4),
            "published_at": st.one_of(
                st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
                st.floats(MIN_TIME, MAX_TIME, exclude_max=True),
            ),
            "unknown_field": _text,
        },
    ),
    at=st.floats(MIN_TIME, MAX_TIME, exclude_max=True),
    dwell=st.none() | st.floats(0, limits.MAX_DWELL_S),
)
def test_any_valid_event_round_trips_exactly(
    shared_store: ReadingHistory, doc: dict[str, Any], at: float, dwell: float | None
) -> None:
    seq = shared_store.record(doc, at=at, dwell_s=dwell)
    (event,) = shared_store.recent(1)
    # Exactly as given; empty strings and entities are left out (the featurizer's "missing").
    expected = {}
    for name, value in doc.items():
        kept = [e for e in value if e] if name == "entities" else value
        if name not in ("id", "unknown_field") and kept not in ("", []):
            expected[name] = kept
    assert (event.seq, event.article_id, event.features, event.at, event.dwell_s) == (
        seq,
        doc["id"],
        expected,
        at,
        dwell,
    )


def test_codec_round_trip_and_unknown_layout() -> None:
    plain = events.encode_event({"id": "N1", "title": "T", "x": 1}, 5, 2)
    assert json.loads(plain) == {"v": 1, "id": "N1", "f": {"title": "T"}, "t": 5.0, "d": 2.0}
    assert events.decode_event(9, plain) == HistoryEvent(9, "N1", {"title": "T"}, 5.0, 2.0)
    for bad in (b"\xff", b"[]", b'{"id": "N1"}', b"not json"):
        with pytest.raises(UnsupportedFormatError, match="seq=9"):
            events.decode_event(9, bad)


def test_history_event_hides_its_contents() -> None:
    event = HistoryEvent(3, CANARY_ID, {"title": CANARY_TITLE}, 0.0, None)
    assert repr(event) == str(event) == "HistoryEvent(seq=3, <contents hidden>)"
    assert event.article() == {"id": CANARY_ID, "title": CANARY_TITLE}
    assert event.when == datetime(1970, 1, 1, tzinfo=UTC)
