"""edgerec.features: the FeatureSpec contract, the tokenizer, featurize (both implementations)."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import mmh3
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import edgerec
from edgerec import (
    FeatureSpec,
    FieldSpec,
    InvalidInputError,
    InvalidTypeError,
    SpecError,
    featurize,
    tokenize,
)
from edgerec.features import _unicode_marks
from edgerec.features import values as _values
from edgerec.trainer.data.synthetic import synthetic_articles
from tests.support.hashing import featurize_with, load_vectors, native_module

SPEC = FeatureSpec.default()


# ----------------------------------------------------------------------------- spec
def test_default_spec_layout() -> None:
    assert [f.name for f in SPEC.fields] == [
        "id",
        "source",
        "category",
        "subcategory",
        "title",
        "abstract",
        "entities",
        "published_at",
    ]
    assert SPEC.width == 58
    assert SPEC.columns["title"] == slice(4, 20)
    assert SPEC.columns["published_at"] == slice(56, 58)


def test_json_round_trip_is_canonical() -> None:
    text = SPEC.to_json()
    again = FeatureSpec.from_json(text)
    assert again == SPEC and again.to_json() == text
    assert again.fingerprint == SPEC.fingerprint
    other = FeatureSpec.from_dict({**SPEC.to_dict(), "seed": 1})
    assert other.fingerprint != SPEC.fingerprint


def _spec(**changes: Any) -> dict[str, Any]:
    d = SPEC.to_dict()
    d.update(changes)
    return d


def _field(index: int, **changes: Any) -> dict[str, Any]:
    d = SPEC.to_dict()
    d["fields"][index].update(changes)
    return d


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (_spec(n_buckets=0), "n_buckets"),
        (_spec(n_buckets=1), "n_buckets"),
        (_spec(n_buckets=2**40), "n_buckets"),
        (_spec(n_buckets="32768"), "n_buckets"),
        (_spec(n_buckets=True), "n_buckets"),
        (_spec(seed=-1), "seed"),
        (_spec(seed=2**32), "seed"),
        (_spec(spec_version=2), "spec_version 2"),
        (_spec(surprise=1), "unknown key 'surprise'"),
        (_spec(fields=[]), "fields"),
        (
            _spec(tokenizer={"normalization": "NFC", "casefold": True, "split": "non_alnum"}),
            "tokenizer",
        ),
        (_field(4, kind="bigram"), "field 'title': unknown kind 'bigram'"),
        (_field(4, slots=0), "field 'title': slots"),
        (_field(4, slots=10_000), "field 'title': slots"),
        (_field(4, slots="16"), "field 'title': 'slots' must be an integer"),
        (_field(4, max_chars=0), "field 'title': max_chars"),
        (_field(4, normalize="yes"), "field 'title': 'normalize'"),
        (_field(4, colour="red"), "field 'title': unknown key 'colour'"),
        (_field(1, slots=2), "field 'source': a categorical field takes exactly 1 slot"),
        (_field(7, buckets=["hour", "minute"]), "field 'published_at': buckets"),
        (_field(7, buckets=["hour"]), "field 'published_at': slots must equal"),
        (_field(4, name="Title"), "field 'Title': names"),
        (_field(4, name="category"), "field 'category': duplicate field"),
        (_field(4, buckets=["hour"]), "field 'title': only time_bucket"),
    ],
)
def test_invalid_specs_name_the_field(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        FeatureSpec.from_dict(data)


def test_spec_errors_are_value_errors_and_missing_keys_are_named() -> None:
    d = SPEC.to_dict()
    del d["fields"][0]["kind"]
    with pytest.raises(ValueError, match="field 'id': missing key 'kind'"):
        FeatureSpec.from_dict(d)
    with pytest.raises(SpecError, match="JSON object"):
        FeatureSpec.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"spec_version": 1, "spec_version": 1}', "duplicate key"),
        ('{"n_buckets": NaN}', "NaN"),
        ('{"n_buckets": 1e400}', "out of range"),
        ("[" * 100 + "]" * 100, "nested"),
        (b"\xff\xfe", "UTF-8"),
        ("{", "invalid JSON"),
    ],
)
def test_from_json_is_strict(text: str | bytes, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        FeatureSpec.from_json(text)


def test_spec_constructor_validates_too() -> None:
    with pytest.raises(SpecError, match="duplicate"):
        FeatureSpec(fields=(FieldSpec("a", "text"), FieldSpec("a", "categorical")))
    with pytest.raises(SpecError, match="wider"):
        FeatureSpec(fields=tuple(FieldSpec(f"f{i}", "text", slots=256) for i in range(5)))


# ----------------------------------------------------------------------------- tokenizer
@pytest.mark.parametrize("case", load_vectors("tokenize.json"), ids=lambda c: repr(c["text"])[:20])
def test_golden_tokens(case: dict[str, Any]) -> None:
    assert tokenize(case["text"]) == case["tokens"]


def test_tokenizer_rules() -> None:
    assert tokenize("NFD: e\u0301cole") == ["nfd", "école"]  # NFKC composes
    assert tokenize("e\u0301cole") == tokenize("école")
    assert tokenize("Straße") == ["strasse"]  # casefold, not lower
    assert tokenize("snake_case") == ["snake", "case"]  # underscore separates
    assert tokenize("नमस्ते") == ["नमस्ते"]  # combining marks stay inside the word
    assert tokenize("a b c d", max_tokens=2) == ["a", "b"]
    assert tokenize("MiXeD", normalize=False) == ["MiXeD"]
    with pytest.raises(InvalidTypeError):
        tokenize(b"bytes")  # type: ignore[arg-type]


def test_committed_mark_table_matches_this_python() -> None:
    if unicodedata.unidata_version != _unicode_marks.UNIDATA_VERSION:
        pytest.skip("another Unicode version: the SDK derives the table at import instead")
    assert _values._scan_marks() == _unicode_marks.RANGES
    assert _values.MARK_RANGES == _unicode_marks.RANGES


# ----------------------------------------------------------------------------- featurize
@pytest.mark.parametrize("case", load_vectors("featurize.json"), ids=["default", "small"])
def test_golden_rows(impl: ModuleType, case: dict[str, Any]) -> None:
    spec = FeatureSpec.from_dict(case["spec"])
    got = featurize_with(impl, case["articles"], spec)
    assert got.tolist() == case["rows"]


def test_public_featurize_shape_dtype_and_padding() -> None:
    rows = featurize([{"id": "N1"}, {"id": "N2", "title": "One two"}], SPEC)
    assert rows.shape == (2, SPEC.width) and rows.dtype == np.int32
    assert rows[0, 1:].tolist() == [0] * (SPEC.width - 1)
    assert (rows[1, SPEC.columns["title"]] > 0).sum() == 2
    assert featurize([], SPEC).shape == (0, SPEC.width)
    assert featurize(({"id": "N1"},), SPEC).shape == (1, SPEC.width)


def test_hash_formula_against_the_oracle() -> None:
    row = featurize([{"id": "N9", "category": "Sports", "title": "Big WIN"}], SPEC)[0]

    def bucket(field: str, value: str) -> int:
        data = (field + "\x1f" + value).encode()
        return 1 + mmh3.hash(data, SPEC.seed, signed=False) % (SPEC.n_buckets - 1)

    assert row[SPEC.columns["id"]].tolist() == [bucket("id", "N9")]  # ids keep their case
    assert row[SPEC.columns["category"]].tolist() == [bucket("category", "sports")]
    assert row[SPEC.columns["title"]][:3].tolist() == [
        bucket("title", "big"),
        bucket("title", "win"),
        0,
    ]


def test_time_buckets() -> None:
    # 2024-01-01 was a Monday; 13:05 UTC.
    moment = datetime(2024, 1, 1, 13, 5, tzinfo=UTC)
    forms = [
        moment,
        moment.timestamp(),
        int(moment.timestamp()),
        "2024-01-01T13:05:00Z",
        moment.astimezone(timezone(timedelta(hours=-5))),
        "2024-01-01T14:05:00+01:00",
    ]
    rows = featurize([{"id": "N", "published_at": f} for f in forms], SPEC)
    assert len({tuple(r) for r in rows.tolist()}) == 1
    assert _values.time_tokens(moment.timestamp(), ("hour", "weekday")) == [
        b"hour=13",
        b"weekday=0",
    ]
    # Floor semantics before 1970 (negative seconds): -1.5 s is 23:59:58 on a Wednesday.
    assert _values.time_tokens(-1.5, ("hour", "weekday")) == [b"hour=23", b"weekday=2"]


# Article values a feed could contain, valid ones only: the two implementations must agree
# on every one of them, whichever path (fast ASCII, callback) a value takes.
_text = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["", "ASCII only", "Café ﬁnal", "e\u0301", "don’t — stop…", "東京 タワー", "x_y-z"]
)
_time = (
    st.integers(int(_values.MIN_TIME), int(_values.MAX_TIME) - 1)
    | st.floats(_values.MIN_TIME, _values.MAX_TIME - 1)
    | st.datetimes(timezones=st.just(UTC))
    | st.none()
)
_article = st.fixed_dictionaries(
    {"id": st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)},
    optional={
        "source": _text | st.none(),
        "category": _text,
        "subcategory": _text,
        "title": _text,
        "abstract": _text,
        "entities": st.lists(_text, max_size=6) | st.tuples(_text, _text),
        "published_at": _time,
        "ignored": st.integers(),
    },
)


@given(st.lists(_article, max_size=8))
def test_native_equals_twin_on_arbitrary_articles(articles: list[dict[str, Any]]) -> None:
    from edgerec.features import _hashing_py

    native = featurize_with(native_module(), articles, SPEC)
    twin = featurize_with(_hashing_py, articles, SPEC)
    assert np.array_equal(native, twin)


@given(st.text(st.characters(codec="utf-8"), max_size=80))
def test_text_tokens_are_the_reference_tokens(text: str) -> None:
    from edgerec.features import _hashing_py

    spec = FeatureSpec(fields=(FieldSpec("t", "text", slots=64, max_chars=80),))
    expected = [
        1 + mmh3.hash(b"t\x1f" + t.encode(), 0, signed=False) % (spec.n_buckets - 1)
        for t in tokenize(text, max_tokens=64)
    ]
    for impl in (native_module(), _hashing_py):
        row = featurize_with(impl, [{"t": text}], spec)[0].tolist()
        assert row == expected + [0] * (64 - len(expected))


def test_synthetic_feed_native_equals_twin() -> None:
    from edgerec.features import _hashing_py

    feed = synthetic_articles(300, seed=3, p_unicode=0.5)
    assert np.array_equal(
        featurize_with(native_module(), feed, SPEC), featurize_with(_hashing_py, feed, SPEC)
    )


# ----------------------------------------------------------------------------- bad input
BAD = [
    (None, InvalidTypeError, r"articles\[0\] must be a mapping"),
    ("a string", InvalidTypeError, r"articles\[0\] must be a mapping"),
    ({"title": "no id"}, InvalidInputError, r"\['id'\]: required"),
    ({"id": ""}, InvalidInputError, r"\['id'\]: required"),
    ({"id": None}, InvalidInputError, r"\['id'\]: required"),
    ({"id": 123}, InvalidTypeError, r"\['id'\]: expected str, got int"),
    ({"id": b"N1"}, InvalidTypeError, r"\['id'\]: expected str, got bytes"),
    ({"id": "N1", "title": b"bytes"}, InvalidTypeError, r"\['title'\]: expected str, got bytes"),
    ({"id": "N1", "title": 3.5}, InvalidTypeError, r"\['title'\]: expected str"),
    ({"id": "N1", "title": "x\ud800y"}, InvalidInputError, r"\['title'\]: not encodable"),
    ({"id": "\udfff"}, InvalidInputError, r"\['id'\]: not encodable"),
    ({"id": "N1", "title": "t" * 1_000_000}, InvalidInputError, r"\['title'\]: 1000000 char"),
    ({"id": "N1", "abstract": "é" * 16_385}, InvalidInputError, r"\['abstract'\]: 16385"),
    ({"id": "N1", "entities": "Q1"}, InvalidTypeError, r"\['entities'\]: expected a list"),
    ({"id": "N1", "entities": ["Q1", 2]}, InvalidTypeError, r"\['entities'\]\[1\]"),
    ({"id": "N1", "entities": ["Q1", "x" * 300]}, InvalidInputError, r"\['entities'\]\[1\]"),
    ({"id": "N1", "published_at": math.nan}, InvalidInputError, r"\['published_at'\]: .*NaN"),
    ({"id": "N1", "published_at": math.inf}, InvalidInputError, r"\['published_at'\]"),
    ({"id": "N1", "published_at": -math.inf}, InvalidInputError, r"\['published_at'\]"),
    ({"id": "N1", "published_at": 1e300}, InvalidInputError, r"\['published_at'\]: .*1\.\.9999"),
    ({"id": "N1", "published_at": 10**30}, InvalidInputError, r"\['published_at'\]"),
    ({"id": "N1", "published_at": True}, InvalidTypeError, r"\['published_at'\]"),
    ({"id": "N1", "published_at": np.bool_(True)}, InvalidTypeError, r"\['published_at'\]"),
    ({"id": "N1", "published_at": b"2024"}, InvalidTypeError, r"\['published_at'\]"),
    ({"id": "N1", "published_at": "yesterday"}, InvalidInputError, r"not an ISO-8601"),
    ({"id": "N1", "published_at": "2024-01-01T10:00:00"}, InvalidInputError, r"naive"),
    ({"id": "N1", "published_at": datetime(2024, 1, 1)}, InvalidInputError, r"naive"),
    ({"id": "N1", "published_at": {"t": 1}}, InvalidTypeError, r"\['published_at'\]"),
]


@pytest.mark.parametrize(
    ("article", "error", "pattern"), BAD, ids=[f"bad{i}" for i in range(len(BAD))]
)
def test_bad_article_values(
    impl: ModuleType, article: Any, error: type[Exception], pattern: str
) -> None:
    batch = [{"id": "ok"}, article]
    with pytest.raises(error, match=pattern.replace(r"articles\[0\]", r"articles\[1\]")):
        featurize_with(impl, batch, SPEC)


def test_messages_never_contain_the_value() -> None:
    secret = "canary-7f3a\ud800"
    with pytest.raises(InvalidInputError) as info:
        featurize([{"id": "N1", "title": secret}], SPEC)
    assert "canary" not in str(info.value)


@pytest.mark.parametrize("articles", [None, "abc", b"abc", {"id": "N1"}, 42])
def test_articles_must_be_a_sequence(articles: Any) -> None:
    with pytest.raises(InvalidTypeError, match="sequence of mappings"):
        featurize(articles, SPEC)


def test_spec_must_be_a_feature_spec() -> None:
    with pytest.raises(InvalidTypeError, match="FeatureSpec"):
        featurize([], SPEC.to_dict())  # type: ignore[arg-type]


def test_mapping_subclasses_and_str_subclasses_take_the_slow_path() -> None:
    class Title(str):
        pass

    from collections import OrderedDict, UserDict

    plain = featurize([{"id": "N1", "title": "Hello World"}], SPEC)
    for article in (
        OrderedDict(id="N1", title="Hello World"),
        UserDict({"id": "N1", "title": "Hello World"}),
        {"id": "N1", "title": Title("Hello World")},
    ):
        assert np.array_equal(featurize([article], SPEC), plain)


def test_featurize_does_not_keep_references() -> None:
    import gc
    import sys

    title = "".join(["Référence ", "unique"])  # non-ASCII: goes through the callback
    before = sys.getrefcount(title)
    for _ in range(50):
        featurize([{"id": "N1", "title": title}], SPEC)
    gc.collect()
    assert sys.getrefcount(title) == before


def test_public_exports() -> None:
    assert edgerec.featurize is featurize
    assert {"FeatureSpec", "featurize", "hashing", "EdgerecError"} <= set(edgerec.__all__)


def test_user_code_dropping_values_mid_call_cannot_corrupt_the_output() -> None:
    from collections.abc import Iterator, Mapping

    def fresh_title() -> str:
        return "".join(["Hello ", "world " * 40])  # a new object, referenced only by the dict

    class Dropper(Mapping[str, Any]):
        """A mapping whose lookup deletes another article's title and churns the heap."""

        def __init__(self, victim: dict[str, Any]) -> None:
            self.victim = victim

        def __getitem__(self, key: str) -> Any:
            if key == "id":
                self.victim.pop("title", None)
                # Reuse the freed memory with other words of the same size.
                _ = ["".join(["Qqqqq ", "zzzzz " * 40]) for _ in range(200)]
                return "N2"
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            return iter(["id"])

        def __len__(self) -> int:
            return 1

    def article() -> dict[str, Any]:  # later fields too, so no loop variable holds the title
        return {"id": "N1", "title": fresh_title(), "abstract": "Short.", "entities": ["Q1"]}

    expected = featurize([article()], SPEC)[0]
    victim = article()
    rows = featurize([victim, Dropper(victim)], SPEC)
    assert np.array_equal(rows[0], expected)
