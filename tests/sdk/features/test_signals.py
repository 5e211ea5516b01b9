"""edgerec.features.signals (issue 18): the feed signals a spec may declare, checked like
any field, and the manifest's feed head, checked like any manifest key."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from edgerec import FeatureSpec
from edgerec.errors import (
    InvalidInputError,
    InvalidTypeError,
    ManifestFormatError,
    SpecError,
)
from edgerec.features.signals import (
    MAX_VECTOR_DIM,
    FeedSignals,
    check_vector_text,
    encode_vector,
)
from edgerec.model import Bundle, Manifest
from edgerec.model.manifest import FeedHead
from tests.support.updates import FIXTURE

SIGNALS = FeedSignals(vector_dim=4, encoder="all-mpnet-base-v2", prior=True)
HEAD = {"model": 1.5, "vector": 2.0, "vector_mean": 0.3, "prior": 0.5, "prior_mean": -2.0}


def test_a_spec_without_signals_keeps_its_form_and_fingerprint() -> None:
    spec = FeatureSpec.default()
    assert "signals" not in spec.to_dict()  # absent, not null: old fingerprints hold
    with_signals = replace(spec, signals=SIGNALS)
    assert with_signals.to_dict()["signals"] == SIGNALS.to_dict()
    assert with_signals.fingerprint != spec.fingerprint
    assert FeatureSpec.from_json(with_signals.to_json()) == with_signals


@pytest.mark.parametrize(
    "raw",
    [
        {"vector_dim": -1, "encoder": "x", "prior": True},
        {"vector_dim": MAX_VECTOR_DIM + 1, "encoder": "x", "prior": False},
        {"vector_dim": 8, "encoder": "", "prior": False},  # a vector needs its encoder
        {"vector_dim": 8, "encoder": "../x", "prior": False},
        {"vector_dim": 0, "encoder": "x", "prior": True},
        {"vector_dim": 0, "encoder": "", "prior": False},  # declares nothing
        {"vector_dim": True, "encoder": "x", "prior": False},
        {"vector_dim": 8, "encoder": "x", "prior": 1},
        {"vector_dim": 8, "encoder": "x", "prior": False, "extra": 1},
        {"vector_dim": 8, "encoder": 5, "prior": False},
        {"vector_dim": 0, "encoder": None, "prior": True},
        [8, "x", True],
    ],
)
def test_malformed_signal_declarations_are_spec_errors(raw: Any) -> None:
    data = FeatureSpec.default().to_dict() | {"signals": raw}
    with pytest.raises(SpecError):
        FeatureSpec.from_dict(data)


def test_a_field_may_not_shadow_a_signal_key() -> None:
    from edgerec import FieldSpec

    with pytest.raises(SpecError, match="vector"):
        FeatureSpec(
            fields=(FieldSpec("id", "categorical"), FieldSpec("vector", "text")), signals=SIGNALS
        )


def test_vectors_and_priors_are_read_at_unit_length_and_as_floats() -> None:
    article = {"id": "a", "vector": encode_vector([3, 0, -4, 0]), "prior": -1.25}
    unit = SIGNALS.vector(article, "a")
    assert unit is not None and np.allclose(unit, [0.6, 0, -0.8, 0]) and unit.dtype == np.float32
    assert SIGNALS.prior_of(article, "a") == -1.25
    assert SIGNALS.vector({"id": "a"}, "a") is None and SIGNALS.prior_of({"id": "a"}, "a") is None
    # a model that declares neither ignores both
    assert FeedSignals(prior=True).vector(article, "a") is None
    assert FeedSignals(vector_dim=4, encoder="e").prior_of(article, "a") is None


SECRET = "c2VjcmV0IHZhbHVl"  # never echoed by a message


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"\x01\x02\x03\x04", InvalidTypeError),
        ([1, 2, 3, 4], InvalidTypeError),
        ("not base64!", InvalidInputError),
        ("AQID", InvalidInputError),  # 3 bytes, the model reads 4
        (base64.b64encode(bytes(4)).decode(), InvalidInputError),  # zeros: no direction
        (SECRET, InvalidInputError),  # wrong length
        ("A" * 6000, InvalidInputError),
        ("AQIDBA", InvalidInputError),  # unpadded
        ("AQID\nBA==", InvalidInputError),
        ("AQIDBA===", InvalidInputError),  # stray padding
        ("AQIDBB==", InvalidInputError),  # non-zero padding bits: not canonical
        ("ＡＱＩＤＢＡ＝＝", InvalidInputError),  # non-ASCII
    ],
)
def test_a_malformed_vector_is_refused_with_its_name_not_its_value(value: Any, error: type) -> None:
    with pytest.raises(error) as caught:
        SIGNALS.vector({"vector": value}, "candidates[3]")
    message = str(caught.value)
    assert "candidates[3]['vector']" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), InvalidInputError),
        (float("inf"), InvalidInputError),
        (101.0, InvalidInputError),
        (True, InvalidTypeError),
        ("0.5", InvalidTypeError),
        (10**400, InvalidInputError),
    ],
)
def test_a_malformed_prior_is_refused(value: Any, error: type) -> None:
    with pytest.raises(error, match=r"candidates\[0\]\['prior'\]"):
        SIGNALS.prior_of({"prior": value}, "candidates[0]")


def test_an_empty_vector_is_missing_and_the_history_ignores_non_vectors() -> None:
    from edgerec.features.signals import history_vector

    assert SIGNALS.vector({"vector": ""}, "a") is None
    assert history_vector([0.1, 0.2]) is None and history_vector("sports") is None
    assert history_vector(encode_vector([1, 2])) == encode_vector([1, 2])
    assert encode_vector([-128, 127]) == "gH8="


def test_stored_vectors_of_another_width_are_ignored_not_fatal() -> None:
    other = {"vector": encode_vector([1, 2, 3, 4, 5, 6, 7, 8])}
    assert SIGNALS.stored_vector(other) is None
    assert SIGNALS.stored_vector({"vector": "%%%"}) is None
    assert check_vector_text("v", other["vector"]).tolist() == [1, 2, 3, 4, 5, 6, 7, 8]


def test_encode_vector_refuses_what_is_not_int8() -> None:
    for bad in ([], [128], [[1, 2]]):
        with pytest.raises(InvalidInputError):
            encode_vector(bad)


# ---------------------------------------------------------------- the manifest's head
def _manifest_doc(signals: FeedSignals | None, head: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Bundle.load(FIXTURE).manifest.to_json())
    if signals is not None:
        doc["feature_spec"]["signals"] = signals.to_dict()
    if head is not None:
        doc["feed_head"] = head
    return doc


def test_a_head_is_read_when_the_spec_declares_signals() -> None:
    manifest = Manifest.from_dict(_manifest_doc(SIGNALS, HEAD))
    assert manifest.feed_head == FeedHead.from_dict(HEAD)
    assert manifest.spec.signals == SIGNALS
    assert Manifest.from_dict(_manifest_doc(None, None)).feed_head is None


@pytest.mark.parametrize(
    ("signals", "head"),
    [
        (SIGNALS, None),  # signals without a head
        (None, HEAD),  # a head without signals
        (SIGNALS, HEAD | {"model": 0.0}),  # the model must keep a weight
        (SIGNALS, HEAD | {"prior": -1.0}),
        (SIGNALS, HEAD | {"vector": 1e9}),
        (SIGNALS, HEAD | {"vector": True}),
        (SIGNALS, HEAD | {"vector": "1"}),
        (SIGNALS, HEAD | {"extra": 1.0}),
        (SIGNALS, {k: v for k, v in HEAD.items() if k != "prior_mean"}),
        (SIGNALS, [1, 2, 3]),
        (SIGNALS, HEAD | {"model": 1e-320}),  # the model's order must survive
        (FeedSignals(prior=True), HEAD),  # weighs a vector the spec does not declare
    ],
)
def test_a_malformed_head_is_a_manifest_format_error(signals: Any, head: Any) -> None:
    with pytest.raises(ManifestFormatError):
        Manifest.from_dict(_manifest_doc(signals, head))


def test_a_nan_head_weight_is_refused_by_the_strict_parser() -> None:
    text = json.dumps(_manifest_doc(SIGNALS, HEAD)).replace('"vector": 2.0', '"vector": NaN')
    with pytest.raises(ManifestFormatError):
        Manifest.parse(text.encode())
