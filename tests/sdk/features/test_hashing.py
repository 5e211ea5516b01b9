"""edgerec.hashing: golden vectors, native == twin == mmh3 == scikit-learn, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import mmh3
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.utils import murmurhash3_32 as sk_murmurhash3_32

from edgerec import InvalidInputError, InvalidTypeError
from edgerec.features import hashing
from tests.support.hashing import load_vectors, native_module

MURMUR = load_vectors("murmur3.json")
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _data(case: dict[str, object]) -> str | bytes:
    return case["text"] if "text" in case else bytes.fromhex(str(case["hex"]))  # type: ignore[return-value]


def test_foo_seed_0_matches_the_published_value() -> None:
    # scikit-learn's documented golden value, independent of our vectors file.
    assert hashing.murmur3_32("foo", 0) == -156908512


@pytest.mark.parametrize("case", MURMUR, ids=lambda c: repr(_data(c))[:24])
def test_golden_murmur3(case: dict[str, object]) -> None:
    data = _data(case)
    assert hashing.murmur3_32(data, case["seed"]) == case["hash"]  # type: ignore[arg-type]
    assert mmh3.hash(data, case["seed"]) == case["hash"]


@pytest.mark.parametrize("case", MURMUR, ids=lambda c: repr(_data(c))[:24])
def test_golden_murmur3_each_implementation(impl: ModuleType, case: dict[str, object]) -> None:
    data = _data(case)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    expected = int(case["hash"]) % 2**32  # type: ignore[call-overload]
    assert impl.murmur3_32(raw, case["seed"]) == expected


def test_minus_two_to_the_31_edge() -> None:
    # The value that breaks a naive abs(): pinned so the unsigned bucket path stays right.
    edge = next(c for c in MURMUR if c["hash"] == -(2**31))
    assert hashing.murmur3_32(_data(edge), edge["seed"]) == -(2**31)
    ids = hashing.hash_strings([str(_data(edge))], seed=edge["seed"], n_buckets=1000)
    assert ids.tolist() == [1 + 2**31 % 999]


@given(st.text(), seeds)
def test_native_twin_and_mmh3_agree_on_text(text: str, seed: int) -> None:
    native = native_module()
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates are refused before hashing
        return
    expected = mmh3.hash(raw, seed, signed=False)
    assert native.murmur3_32(raw, seed) == expected
    from edgerec.features import _hashing_py

    assert _hashing_py.murmur3_32(raw, seed) == expected


@given(st.binary(max_size=64), seeds)
def test_native_and_mmh3_agree_on_bytes(data: bytes, seed: int) -> None:
    assert native_module().murmur3_32(data, seed) == mmh3.hash(data, seed, signed=False)


@given(st.text(max_size=40), st.integers(min_value=0, max_value=2**31 - 1))
def test_matches_scikit_learn(text: str, seed: int) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert hashing.murmur3_32(text, seed) == sk_murmurhash3_32(text, seed)


@given(st.lists(st.text(max_size=20), max_size=30), seeds, st.integers(2, 2**31 - 1))
def test_hash_strings_native_equals_twin_and_oracle(
    strings: list[str], seed: int, n_buckets: int
) -> None:
    from edgerec.features import _hashing_py

    strings = [s for s in strings if _encodable(s)]
    native, twin = np.empty(len(strings), np.int32), np.empty(len(strings), np.int32)
    assert native_module().hash_strings(strings, seed, n_buckets, native) == -1
    assert _hashing_py.hash_strings(strings, seed, n_buckets, twin) == -1
    oracle = [1 + mmh3.hash(s, seed, signed=False) % (n_buckets - 1) for s in strings]
    assert native.tolist() == twin.tolist() == oracle
    assert all(1 <= v < n_buckets for v in oracle)


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_hash_strings_shape_dtype_and_range() -> None:
    ids = hashing.hash_strings(["a", "b", "", "ü"], seed=3, n_buckets=2)
    assert ids.dtype == np.int32 and ids.shape == (4,)
    assert ids.tolist() == [1, 1, 1, 1]  # n_buckets=2: every id is the one non-padding id
    assert hashing.hash_strings((), seed=0, n_buckets=10).shape == (0,)
    assert hashing.hash_strings(("x",), seed=0, n_buckets=10).tolist() == [
        1 + mmh3.hash("x", 0, signed=False) % 9
    ]


@pytest.mark.parametrize(
    ("strings", "error", "needle"),
    [
        (["ok", b"bytes"], InvalidTypeError, "strings[1]"),
        (["ok", None], InvalidTypeError, "strings[1]"),
        (["ok", "ok", 5], InvalidTypeError, "strings[2]"),
        (["ok", "\ud800"], InvalidInputError, "strings[1]"),
        ("not a list", InvalidTypeError, "sequence of str"),
        (b"bytes", InvalidTypeError, "sequence of str"),
    ],
)
def test_hash_strings_bad_input(strings: object, error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle.replace("[", r"\[").replace("]", r"\]")):
        hashing.hash_strings(strings, seed=0, n_buckets=10)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, None, "0"])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(InvalidInputError, match="seed"):
        hashing.murmur3_32("x", seed)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="seed"):
        hashing.hash_strings(["x"], seed=seed, n_buckets=10)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_buckets", [0, 1, -5, 2**31, 3.0, True])
def test_bad_bucket_count(n_buckets: object) -> None:
    with pytest.raises(InvalidInputError, match="n_buckets"):
        hashing.hash_strings(["x"], seed=0, n_buckets=n_buckets)  # type: ignore[arg-type]


def test_murmur3_bad_data() -> None:
    with pytest.raises(InvalidTypeError, match="str or bytes"):
        hashing.murmur3_32(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        hashing.murmur3_32(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="surrogate"):
        hashing.murmur3_32("\udc80")
    assert hashing.murmur3_32(bytearray(b"foo")) == hashing.murmur3_32(memoryview(b"foo"))


def test_errors_are_builtin_subclasses() -> None:
    with pytest.raises(TypeError):
        hashing.hash_strings([1], seed=0, n_buckets=10)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        hashing.hash_strings(["x"], seed=-1, n_buckets=10)


def test_implementation_choice() -> None:
    forced = os.environ.get("EDGEREC_PURE_PYTHON") == "1"
    # A build that silently lost the extension must fail here, not pass slower.
    assert ("python" if forced else "native") == hashing.IMPLEMENTATION


@pytest.mark.parametrize(
    ("value", "expected"), [("1", "python"), ("yes", "python"), ("0", "native"), ("", "native")]
)
def test_environment_variable_forces_the_twin(value: str, expected: str) -> None:
    native_module()
    env = {**os.environ, "EDGEREC_PURE_PYTHON": value}
    out = subprocess.run(
        [sys.executable, "-c", "import edgerec; print(edgerec.hashing.IMPLEMENTATION)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected


def test_a_faked_class_is_not_a_str() -> None:
    class Fake:
        __class__ = property(lambda self: str)  # type: ignore[assignment]  # fools isinstance

    assert isinstance(Fake(), str)
    with pytest.raises(InvalidTypeError, match=r"strings\[1\] must be str, got Fake"):
        hashing.hash_strings(["a", Fake()], seed=0, n_buckets=10)  # type: ignore[list-item]
