"""edgerec.history.limits: open()'s options and the argument checks (D3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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
