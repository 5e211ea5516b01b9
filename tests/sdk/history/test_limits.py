"""edgerec.history.limits: open()'s options and the argument checks (D3: huge integers,
NaN, bool, numpy scalars in every numeric parameter, a NUL byte in the path)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgerec import (
    InvalidInputError,
    InvalidTypeError,
    ReadingHistory,
)
from edgerec.history import limits
from tests.support.history import (
    KEY,
)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": "k" * 32}, InvalidTypeError),
        ({"key": b"short"}, InvalidInputError),
        ({"key": KEY, "passphrase": "x"}, InvalidInputError),
        ({"passphrase": b"x"}, InvalidTypeError),
        ({"key": KEY, "profile": None}, InvalidTypeError),
        ({"key": KEY, "max_events": 0}, InvalidInputError),
        ({"key": KEY, "max_age_s": math.nan}, InvalidInputError),
        ({"key": KEY, "busy_timeout_s": -1}, InvalidInputError),
        ({"key": KEY, "synchronous": "OFF"}, InvalidInputError),
        ({"key": KEY, "scrypt_n": 1000}, InvalidInputError),
        ({"key": KEY, "counter": object()}, InvalidTypeError),
    ],
)
def test_d3_bad_open_arguments_create_nothing(
    tmp_path: Path, kwargs: dict[str, Any], error: type
) -> None:
    target = tmp_path / "never.db"
    with pytest.raises(error):
        ReadingHistory.open(target, **kwargs)
    assert not target.exists()


@pytest.mark.parametrize(
    ("check", "value", "error"),
    [
        (lambda v: limits.check_text("profile", v, 8), "x" * 9, InvalidInputError),
        (lambda v: limits.check_text("profile", v, 8), "", InvalidInputError),
        (lambda v: limits.check_text("profile", v, 8), b"p", InvalidTypeError),
        (lambda v: limits.check_number("dwell_s", v, 0, 1), 10**400, InvalidInputError),
        (lambda v: limits.check_number("dwell_s", v, 0, 1), math.inf, InvalidInputError),
        (lambda v: limits.check_number("dwell_s", v, 0, 1), True, InvalidTypeError),
        (lambda v: limits.check_int("limit", v, 0, 5), 6, InvalidInputError),
        (lambda v: limits.check_int("limit", v, 0, 5), 1.0, InvalidTypeError),
    ],
)
def test_checks_name_the_parameter_never_the_value(check: Any, value: Any, error: type) -> None:
    with pytest.raises(error) as err:
        check(value)
    message = str(err.value)
    assert message.split(":", maxsplit=1)[0] in ("profile", "dwell_s", "limit")
    assert (repr(value)[:20] not in message) or isinstance(value, bool | float)


HOSTILE_NUMBERS: list[Any] = [
    10**400,
    -(10**400),
    math.nan,
    math.inf,
    True,
    np.bool_(True),
    np.float64("nan"),
    "5",
    None,
]
OPEN_NUMBERS = [
    "max_events",
    "max_age_s",
    "max_bytes",
    "busy_timeout_s",
    "scrypt_n",
    "key_use_limit",
    "rotation_batch",
]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
@pytest.mark.parametrize("param", OPEN_NUMBERS)
def test_d3_huge_nan_bool_in_every_numeric_option(tmp_path: Path, param: str, value: Any) -> None:
    """Typed errors naming the parameter, never OverflowError (one numeric rule, shared
    with featurize and the ranking: edgerec.features.values)."""
    target = tmp_path / "never.db"
    if value is None and param in ("max_events", "max_age_s", "max_bytes"):
        ReadingHistory.open(target, key=KEY, **{param: value}).close()  # None: no limit
        return
    with pytest.raises((InvalidInputError, InvalidTypeError)) as err:
        ReadingHistory.open(target, key=KEY, **{param: value})
    assert str(err.value).startswith(f"{param}:")
    assert not target.exists()


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
def test_d3_huge_nan_bool_in_every_numeric_argument(tmp_path: Path, value: Any) -> None:
    with ReadingHistory.open(tmp_path / "h.db", key=KEY) as h:
        h.record({"id": "N1"}, at=1.0)
        calls = [
            ("limit", lambda: h.recent(value)),
            ("dwell_s", lambda: h.record({"id": "N2"}, dwell_s=value)),
            ("dwell_s[1]", lambda: h.record_many([{"id": "a"}, {"id": "b"}], dwell_s=[1, value])),
        ]
        for name, call in calls:
            if value is None:
                continue  # None is a valid dwell and the default limit; checked elsewhere
            with pytest.raises((InvalidInputError, InvalidTypeError)) as err:
                call()
            assert str(err.value).startswith(f"{name}:"), name
        assert len(h) == 1


def test_d3_numpy_scalars_are_numbers(tmp_path: Path) -> None:
    """The SDK's one rule: a numpy integer is an int, a numpy float a number."""
    opts = {
        "max_events": np.int64(100),
        "max_age_s": np.float32(1e9),
        "max_bytes": np.int32(1 << 20),
        "busy_timeout_s": np.float64(1.5),
        "key_use_limit": np.uint32(1000),
        "rotation_batch": np.int16(8),
    }
    with ReadingHistory.open(tmp_path / "h.db", key=KEY, clock=lambda: 10.0, **opts) as h:
        h.record({"id": "N1"}, at=np.float64(5.0), dwell_s=np.float32(2.5))
        (event,) = h.recent(np.int64(3))
        assert (event.at, event.dwell_s, type(event.dwell_s)) == (5.0, 2.5, float)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("dir/a\x00b.db", InvalidInputError),
        (Path("a\x00b.db"), InvalidInputError),
        ("", InvalidInputError),
        (b"history.db", InvalidTypeError),
        (3, InvalidTypeError),
    ],
    ids=repr,
)
def test_d3_bad_path_is_a_typed_error(tmp_path: Path, path: Any, error: type) -> None:
    with pytest.raises(error) as err:
        ReadingHistory.open(path, key=KEY)
    assert str(err.value).startswith("path:")
    with pytest.raises(error):
        ReadingHistory.quarantine(path)
