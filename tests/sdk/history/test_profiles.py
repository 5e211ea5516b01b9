"""edgerec.history.profiles: head records (A7: deleted, truncated, replaced rows; a
tampered head), isolation of profiles (E5), switching (E6), a profile erased by another
handle, another process or the CLI (issue 17, item 4: ensure_alive)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgerec import (
    ClosedError,
    IntegrityError,
    ProfileErasedError,
)
from tests.support.history import (
    CANARY_PROFILE,
    KEY,
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


def test_erase_by_another_handle_is_noticed_by_the_open_one(path: Path) -> None:
    """Issue 17, item 4: the open handle notices on its next call, drops the profile's
    keys, and says so with ProfileErasedError (a ClosedError) until switch_profile."""
    h1 = filled(path, 3, profile="p")
    h1.ensure_alive()  # alive: no error
    assert h1._profile is not None and h1._profile.keys
    profile = h1._profile
    with open_store(path, profile="other") as h2:
        assert h2.erase_profile("p")
    with pytest.raises(ProfileErasedError):
        h1.ensure_alive()
    assert h1._profile is None and profile.keys == {} and profile.mac_key == b""
    for call in (lambda: h1.profile, lambda: h1.recent(1), lambda: len(h1), h1.verify):
        with pytest.raises(ProfileErasedError):
            call()
    assert issubclass(ProfileErasedError, ClosedError)
    h1.switch_profile("other")  # the handle itself is still open
    assert h1.profile == "other" and len(h1) == 0
    h1.close()


def test_erase_by_the_cli_in_another_process_is_noticed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    key_file = tmp_path / "master.key"
    key_file.write_bytes(KEY)
    h = filled(home / "history.db", 2, profile="reader")
    args = ["--home", str(home), "--profile", "reader", "--key-file", str(key_file), "--yes"]
    done = subprocess.run(
        [sys.executable, "-m", "edgerec", "history", "erase", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(ProfileErasedError):
        h.recent(5)  # no ensure_alive() needed: every call checks
    assert h._profile is None
    h.close()


def test_alive_check_is_cheap_when_nobody_else_wrote(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One PRAGMA data_version per call; the profile lookup only after another
    connection committed."""
    h = filled(path, 2)
    looked: list[int] = []
    profile = h._profile
    assert profile is not None
    real = profile.exists

    def exists(conn: Any) -> bool:
        looked.append(1)
        return real(conn)

    monkeypatch.setattr(profile, "exists", exists)  # this handle's profile only
    h.ensure_alive()
    h.recent(1)
    h.record(article(3))
    assert looked == []  # our own writes and reads do not count
    with open_store(path, profile="other") as h2:
        h2.record(article(1))
    h.ensure_alive()
    h.ensure_alive()
    assert looked == [1]
    h.close()
