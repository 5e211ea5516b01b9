"""edgerec.history.writes and ReadingHistory.record_many: a batch is all or nothing (issue
17, item 5: a bad last line stores nothing), messages name the index, one transaction
whatever fails inside it, and the key-use limit switches keys inside a batch (A12). The
scrub after removals is tested in test_maintenance, I/O errors in test_connection."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgerec import InvalidInputError, InvalidTypeError, StorageFullError
from edgerec.history import crypto
from tests.support.history import article, digest, filled, open_store, raw_sql


def test_record_many_stores_in_order_and_returns_the_seqs(path: Path) -> None:
    with filled(path, 2) as h:
        seqs = h.record_many(
            [article(10), article(11), article(12)],
            at=[5.0, 6.0, "1970-01-01T00:00:07Z"],
            dwell_s=1.5,
        )
        assert seqs == [3, 4, 5]
        got = h.recent(3)
        assert [(e.article_id, e.at, e.dwell_s) for e in got] == [
            ("N12", 7.0, 1.5),
            ("N11", 6.0, 1.5),
            ("N10", 5.0, 1.5),
        ]
        assert h.record_many([]) == [] and h.verify() == 5


def test_record_many_default_time_is_the_clock(path: Path) -> None:
    with open_store(path, clock=lambda: 42.0) as h:
        h.record_many([article(1), article(2)], dwell_s=[np.float64(1.0), None])
        assert [(e.at, e.dwell_s) for e in h] == [(42.0, 1.0), (42.0, None)]


@pytest.mark.parametrize(
    ("articles", "kw", "error", "named"),
    [
        ([article(0), article(1), {"title": "no id"}], {}, InvalidInputError, "articles[2]['id']"),
        ([article(0), article(1), "N2"], {}, InvalidTypeError, "articles[2]"),
        ([article(0), article(1)], {"at": [1.0, math.nan]}, InvalidInputError, "at[1]"),
        ([article(0), article(1)], {"at": [1.0]}, InvalidInputError, "at"),
        ([article(0), article(1)], {"dwell_s": [1.0, 10**400]}, InvalidInputError, "dwell_s[1]"),
        ([article(0), article(1)], {"dwell_s": [1.0, True]}, InvalidTypeError, "dwell_s[1]"),
        ([article(0), article(1)], {"at": "yesterday"}, InvalidInputError, "at[0]"),
        ((a for a in [article(0)]), {}, InvalidTypeError, "articles"),
        ({"id": "N1"}, {}, InvalidTypeError, "articles"),
    ],
)
def test_record_many_bad_last_item_stores_nothing(
    path: Path, articles: Any, kw: dict[str, Any], error: type, named: str
) -> None:
    with filled(path, 2) as h:
        before = digest(path)
        with pytest.raises(error) as err:
            h.record_many(articles, **kw)
        assert str(err.value).startswith(named)
        assert digest(path) == before and len(h) == 2


def test_record_many_failure_inside_the_transaction_stores_nothing(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = filled(path, 2)
    before = digest(path)
    real, calls = crypto.seal_record, {"n": 0}

    def fails_on_the_last(*args: Any, **kw: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] == 50:
            raise OSError("injected")
        return real(*args, **kw)

    monkeypatch.setattr(crypto, "seal_record", fails_on_the_last)
    with pytest.raises(OSError):
        h.record_many([article(i) for i in range(50)])
    assert digest(path) == before and len(h) == 2 and h.verify() == 2
    h.close()


def test_record_many_disk_full_stores_nothing(path: Path) -> None:
    with open_store(path, max_bytes=96 * 1024) as h:
        h.record_many([article(1)])
        with pytest.raises(StorageFullError):
            h.record_many([article(i, abstract="word " * 3000) for i in range(40)])
        assert len(h) == 1 and h.verify() == 1


def test_a12_a_batch_switches_keys_at_the_key_use_limit(path: Path) -> None:
    seals: dict[int, int] = {}
    real = crypto.seal_record

    def counting(aead: Any, pid: bytes, seq: int, key_id: int, *a: Any, **kw: Any) -> bytes:
        seals[key_id] = seals.get(key_id, 0) + 1
        return real(aead, pid, seq, key_id, *a, **kw)

    with open_store(path, key_use_limit=10) as h:
        h.record_many([article(i) for i in range(4)])
        crypto.seal_record, saved = counting, crypto.seal_record
        try:
            assert h.record_many([article(i) for i in range(4, 12)]) == list(range(5, 13))
        finally:
            crypto.seal_record = saved
        assert h.verify() == 12
        with pytest.raises(InvalidInputError, match="key_use_limit"):
            h.record_many([article(i) for i in range(11)])
    assert seals[1] == 6  # key 1 sealed 4 + 6 = its 10, then the batch went on under key 2
    assert seals[2] == 2 + 10  # the batch's last 2, then the 10 older rows re-encrypted
    with raw_sql(path) as conn:
        assert [r[0] for r in conn.execute("SELECT key_id FROM profile_keys")] == [2]
        pairs = {(k, bytes(b[1:13])) for k, b in conn.execute("SELECT key_id, blob FROM events")}
    assert len(pairs) == 12
