"""edgerec._json: strict parsing for specs and manifests."""

from __future__ import annotations

import pytest

from edgerec._json import StrictJSONError, loads_strict


def test_accepts_plain_json() -> None:
    assert loads_strict('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert loads_strict(b'{"k": "\\u00e9"}') == {"k": "é"}


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"x": {"b": 1, "b": 1}}',
        "NaN",
        "[Infinity]",
        "[-Infinity]",
        "[1e400]",
        "[" * 33 + "]" * 33,
        '{"a": ',
        "",
        "[1,]",
        '"\\ud800" x',
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(StrictJSONError):
        loads_strict(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert loads_strict('["' + "[" * 100 + '"]') == ["[" * 100]
    assert loads_strict('["\\"[[[["]') == ['"[[[[']


def test_huge_integers_are_refused() -> None:
    with pytest.raises(StrictJSONError):
        loads_strict("1" * 5000)
