"""edgerec.history.profiles: head records (A7: deleted, truncated, replaced rows; a
tampered head), isolation of profiles (E5), switching (E6), a profile erased by another
handle."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgerec import (
    ClosedError,
    IntegrityError,
)
from tests.support.history import (
    CANARY_PROFILE,
    article,
    filled,
    open_store,
    raw_sql,
)


def test_a7_deleted_middle_row_and_truncated_tail(path: Path) -> None:
    filled(path, 6).close()
    with raw_sql(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = 3")
    with open_store(path) as h:
        for full_read in (h.verify, h.export, lambda: list(h), lambda: h.recent(10)):
            with pytest.raises(IntegrityError, match=r"deleted|missing"):
                full_read()
    filled(path.with_name("t.db"), 6).close()
    with raw_sql(path.with_name("t.db")) as conn:
        conn.execute("DELETE FROM events WHERE seq > 4")
    with open_store(path.with_name("t.db")) as h:
        with pytest.raises(IntegrityError):
            h.verify()
        with pytest.raises(IntegrityError):
            h.recent(6)


def test_a7_replaced_row_with_older_copy_detected(path: Path) -> None:
    """A row put back from an older copy of itself (before a key rotation) is authentic
    AEAD-wise but not what the head record covers."""
    with filled(path, 3) as h:
        with raw_sql(path) as conn:
            old = conn.execute("SELECT key_id, blob FROM events WHERE seq = 2").fetchone()
        h.rotate_profile_key()
    with raw_sql(path) as conn:
        conn.execute("UPDATE events SET key_id = ?, blob = ? WHERE seq = 2", old)
    with open_store(path) as h, pytest.raises(IntegrityError):
        h.verify()


def test_head_record_tamper(path: Path) -> None:
    filled(path, 3).close()
    with raw_sql(path) as conn:
        conn.execute("UPDATE profiles SET count = 2")
    with pytest.raises(IntegrityError, match="head record"):
        open_store(path)


def test_damaged_head_digest_is_integrity_error(path: Path) -> None:
    """A head digest of the wrong length is an IntegrityError at open, not a raw error."""
    with open_store(path) as h:
        h.record(article(1))
    with raw_sql(path) as conn:
        conn.execute("UPDATE profiles SET digest = x'00'")
    with pytest.raises(IntegrityError):
        open_store(path)


def test_e5_profiles_isolated(path: Path) -> None:
    with open_store(path, profile="alice") as h:
        h.record(article(1, title="alice reads"))
        alice_keys = dict(h._profile.keys) if h._profile else {}
        h.switch_profile("bob")
        assert len(h) == 0 and h.recent(10) == []
        h.record(article(2))
        assert [e.article_id for e in h] == ["N2"]
        assert h._profile is not None and h._profile.name == "bob"
        assert not set(map(id, alice_keys.values())) & set(map(id, h._profile.keys.values()))
        assert h.profiles() == ["alice", "bob"]
    with raw_sql(path) as conn:
        assert CANARY_PROFILE.encode() not in b"".join(
            bytes(r[0]) for r in conn.execute("SELECT pid FROM profiles")
        )
    with open_store(path, profile="alice") as h:
        assert [e.features["title"] for e in h] == ["alice reads"]


def test_e6_switch_drops_the_previous_profile_state(path: Path) -> None:
    with open_store(path, profile="a") as h:
        h.record(article(1))
        h.recent(1)
        assert h._profile is not None and h._profile.head_cache is not None
        previous = h._profile
        h.switch_profile("b")
        assert h._profile is not previous and h._profile.name == "b"
        assert h._profile.head_cache is None or h._profile.head_cache[1].count == 0


def test_profile_erased_and_recreated_by_another_handle(path: Path) -> None:
    h1 = filled(path, 2, profile="p")
    with open_store(path, profile="other") as h2:
        h2.erase_profile("p")
        h2.switch_profile("p")  # the same name, a new profile with new keys
        h2.record(article(7))
    with pytest.raises(ClosedError):
        h1.record(article(8))
    h1.close()
    with open_store(path, profile="p") as h:
        assert [e.article_id for e in h] == ["N7"]
