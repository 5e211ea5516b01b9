"""edgerec.history.store: the public surface and each verb end to end: round trips, the
clock, export, forget, closed handles, the API boundary (bad arguments, injection-looking
ids, tampered columns: only typed errors), privacy of messages (E4), guests (E6), no
network (E7), threads sharing a handle (D6).

The verbs' parts are tested beside their modules: test_events (what an article may be),
test_crypto, test_keys, test_profiles, test_rollback, test_maintenance, test_connection.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import edgerec
from edgerec import (
    ClosedError,
    EdgerecError,
    HistoryEvent,
    IntegrityError,
    InvalidInputError,
    InvalidTypeError,
    ReadingHistory,
    WrongKeyError,
)
from tests.support.history import (
    CANARIES,
    CANARY_ID,
    CANARY_PROFILE,
    CANARY_TITLE,
    KEY,
    OTHER_KEY,
    Clock,
    Counter,
    article,
    canary_article,
    digest,
    filled,
    flip_blob_byte,
    open_store,
    raw_sql,
)


def test_record_and_recent_round_trip(path: Path) -> None:
    with open_store(path, profile="alice") as h:
        assert h.record(article(1), at=1_700_000_000.5, dwell_s=12.25) == 1
        assert h.record({"id": "N2"}, at=datetime(2026, 1, 2, tzinfo=UTC)) == 2
        newest, oldest = h.recent(10)
        assert (newest.seq, newest.article_id, newest.features, newest.dwell_s) == (
            2,
            "N2",
            {},
            None,
        )
        assert newest.at == datetime(2026, 1, 2, tzinfo=UTC).timestamp()
        assert newest.when == datetime(2026, 1, 2, tzinfo=UTC)
        expected = {k: v for k, v in article(1).items() if k != "id"}
        assert oldest == HistoryEvent(1, "N1", expected, 1_700_000_000.5, 12.25)
        assert oldest.article() == article(1)
        assert len(h) == 2
        assert [e.seq for e in h.recent(1)] == [2]
        assert h.recent(0) == []
        assert h.profile == "alice"
        assert h.verify() == 2


def test_default_clock_and_injected_clock(path: Path) -> None:
    clock = Clock(1_234.5)
    with open_store(path, clock=clock) as h:
        h.record(article(1))
        assert h.recent(1)[0].at == 1_234.5


def test_export_json(path: Path) -> None:
    with filled(path, 3, profile="bob") as h:
        doc = json.loads(h.export())
    assert doc["format"] == "edgerec.history.export" and doc["profile"] == "bob"
    assert [e["seq"] for e in doc["events"]] == [1, 2, 3]
    assert doc["events"][0]["article_id"] == "N0" and doc["events"][2]["dwell_s"] == 2.0


def test_reopen_keeps_events_and_sequence(path: Path) -> None:
    filled(path, 3).close()
    with open_store(path) as h:
        assert len(h) == 3
        assert h.record(article(9)) == 4
        assert [e.article_id for e in h] == ["N0", "N1", "N2", "N9"]


def test_forget(path: Path) -> None:
    with filled(path, 4) as h:
        h.record(article(1), at=2_000.0)
        assert h.forget("N1") == 2
        assert h.forget("N1") == 0
        assert [e.article_id for e in h.recent(10)] == ["N3", "N2", "N0"]
        assert len(h) == 3 and h.verify() == 3


def test_closed_and_context_manager(path: Path) -> None:
    h = filled(path, 1)
    with h:
        pass
    assert h.closed
    h.close()  # idempotent
    for call in (
        lambda: h.record(article(1)),
        lambda: h.recent(1),
        lambda: len(h),
        h.verify,
        h.export,
        h.profiles,
        lambda: h.forget("N1"),
        lambda: h.switch_profile("x"),
        lambda: h.erase_profile("x"),
        h.rotate_profile_key,
        lambda: h.rotate_master_key(key=OTHER_KEY),
    ):
        with pytest.raises(ClosedError):
            call()
    with pytest.raises(TypeError):
        ReadingHistory()


@pytest.mark.parametrize(
    ("call", "error", "param"),
    [
        (lambda h: h.record(None), InvalidTypeError, "article"),
        (lambda h: h.record(["id", "N1"]), InvalidTypeError, "article"),
        (lambda h: h.record({"id": b"N1"}), InvalidTypeError, "article['id']"),
        (lambda h: h.record({"id": 5}), InvalidTypeError, "article['id']"),
        (lambda h: h.record({"id": "a", "title": {"x": 1}}), InvalidTypeError, "article['title']"),
        (
            lambda h: h.record({"id": "a", "entities": "Q1"}),
            InvalidTypeError,
            "article['entities']",
        ),
        (
            lambda h: h.record({"id": "a", "published_at": math.nan}),
            InvalidInputError,
            "article['published_at']",
        ),
        (lambda h: h.recent(-1), InvalidInputError, "limit"),
        (lambda h: h.recent(True), InvalidTypeError, "limit"),
        (lambda h: h.recent(2.0), InvalidTypeError, "limit"),
        (lambda h: h.forget(None), InvalidTypeError, "article_id"),
        (lambda h: h.forget(b"N1"), InvalidTypeError, "article_id"),
        (lambda h: h.switch_profile(""), InvalidInputError, "profile"),
        (lambda h: h.switch_profile(b"p"), InvalidTypeError, "profile"),
        (lambda h: h.erase_profile("\ud800"), InvalidInputError, "profile"),
        (lambda h: h.rotate_master_key(key=b"short"), InvalidInputError, "key"),
        (lambda h: h.rotate_master_key(key="x" * 32), InvalidTypeError, "key"),
    ],
)
def test_d3_wrong_types_for_public_parameters(
    path: Path, call: Any, error: type, param: str
) -> None:
    with open_store(path) as h:
        h.record(article(1))
        before = digest(path)
        with pytest.raises(error) as err:
            call(h)
        assert str(err.value).startswith(param)
        assert digest(path) == before and len(h) == 1


@pytest.mark.parametrize("aid", ["'); DROP TABLE events;--", "%", "_", "SELECT", "events", '"x"'])
def test_d4_injection_looking_ids_stored_literally(path: Path, aid: str) -> None:
    with open_store(path, profile=aid) as h:
        h.record({"id": aid, "title": aid})
        assert [e.article_id for e in h.recent(5)] == [aid]
        assert h.profiles() == [aid]
        assert h.forget(aid) == 1
    with raw_sql(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "profiles", "profile_keys", "store_meta"} <= tables


def test_e4_messages_and_logs_hold_no_plaintext_or_keys(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages = []
    with open_store(path, profile=CANARY_PROFILE) as h:
        h.record(canary_article())
        (event,) = h.recent(1)
        messages += [repr(event), str(event), repr(h)]
        for bad in (
            {"id": CANARY_ID, "title": CANARY_TITLE + "\ud800"},
            {"id": CANARY_ID, "title": CANARY_TITLE * 2000},
            {"id": CANARY_ID * 30},
        ):
            with pytest.raises(EdgerecError) as err:
                h.record(bad)
            messages += [str(err.value), repr(err.value)]
    flip_blob_byte(path, seq=1, offset=20)
    with open_store(path, profile=CANARY_PROFILE) as h, pytest.raises(IntegrityError) as err2:
        h.recent(1)
    messages += [str(err2.value), repr(err2.value)]
    with pytest.raises(WrongKeyError) as err3:
        open_store(path, key=OTHER_KEY, profile=CANARY_PROFILE)
    messages += [str(err3.value), repr(err3.value)]
    text = "\n".join(messages) + caplog.text
    for secret in (*CANARIES, KEY.hex(), OTHER_KEY.hex(), repr(KEY)):
        assert secret not in text


def test_e6_guest_session_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = set(Path(tempfile.gettempdir()).iterdir())
    g = ReadingHistory.open_guest(clock=Clock(5.0))
    g.record(canary_article())
    assert [e.article_id for e in g.recent(5)] == [CANARY_ID] and g.verify() == 1
    assert list(tmp_path.iterdir()) == []
    assert set(Path(tempfile.gettempdir()).iterdir()) == before
    g.close()
    with pytest.raises(ClosedError):
        g.recent(1)


def test_e7_no_network_use(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the history opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with open_store(path, profile=CANARY_PROFILE) as h:
        h.record(canary_article())
        h.recent(1)
        h.verify()
        h.export()
        h.rotate_profile_key()
        h.erase_profile(CANARY_PROFILE)


TAMPER_VALUES: list[Any] = [None, "text", -1, 2**63 - 1, 1.5, b"", b"\x00" * 40]


TAMPER_TARGETS = (
    [("events", col, "seq = 2") for col in ("pid", "seq", "key_id", "blob")]
    + [
        ("profiles", col, "1")
        for col in (
            "name_ct",
            "mac_key",
            "active_key_id",
            "count",
            "last_seq",
            "digest",
            "key_uses",
            "head_mac",
        )
    ]
    + [("profile_keys", col, "1") for col in ("key_id", "wrapped")]
    + [
        ("store_meta", "value", f"name = '{name}'")
        for name in ("format", "store_id", "kdf", "key_check", "store_key", "generation")
    ]
)


def test_no_raw_exception_whatever_the_columns_hold(tmp_path: Path) -> None:
    """Any value in any column (NULL, text, negative, huge, float, empty, zeros) gives an
    EdgerecError or a correct result: never a raw sqlite3 / cryptography / struct /
    TypeError from inside the SDK."""
    pristine = tmp_path / "pristine.db"
    with filled(pristine, 3, counter=Counter()):
        pass
    outcomes: dict[str, int] = {"typed_error": 0, "ok": 0}
    for table, column, where in TAMPER_TARGETS:
        for value in TAMPER_VALUES:
            case = tmp_path / "case.db"
            shutil.copy(pristine, case)
            with raw_sql(case) as conn:
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))
            try:
                with open_store(case) as h:
                    h.recent(3)
                    h.verify()
                    h.export()
                    h.profiles()
                    h.record(article(9))
                outcomes["ok"] += 1
            except EdgerecError:
                outcomes["typed_error"] += 1
    assert outcomes["typed_error"] > 100  # almost every edit is caught


def test_d6_eight_threads_lose_nothing(path: Path) -> None:
    shared = open_store(path)
    errors: list[BaseException] = []
    per_thread = 20

    def work(tid: int) -> None:
        try:
            h = shared if tid < 4 else open_store(path)  # shared handle and own handles
            for i in range(per_thread):
                h.record(article(tid * 1000 + i))
                h.recent(5)
                if tid == 7 and i % 5 == 0:  # and erasures of another profile meanwhile
                    h.switch_profile(f"temp-{i}")
                    h.record(article(i))
                    h.switch_profile("default")
                    h.erase_profile(f"temp-{i}")
            if h is not shared:
                h.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ids = [e.article_id for e in shared]
    assert len(ids) == 8 * per_thread == len(set(ids))
    assert shared.verify() == 8 * per_thread
    assert shared.profiles() == ["default"]
    shared.close()


def test_public_surface() -> None:
    """The package's three names, also at the top level; everything else is internal."""
    from edgerec.history import HistoryEvent as Event
    from edgerec.history import MonotonicCounter as Monotonic
    from edgerec.history import ReadingHistory as History

    assert (History, Event, Monotonic) == (
        edgerec.ReadingHistory,
        edgerec.HistoryEvent,
        edgerec.MonotonicCounter,
    )
    assert edgerec.history.__all__ == ["HistoryEvent", "MonotonicCounter", "ReadingHistory"]
