"""The writes that rewrite or remove history already stored: retention pruning,
``forget``, the erasure of a profile, and both key rotations.

Owns: the retention rules, the choice of the rows ``forget`` removes, the
``erase_journal`` table and the scrub that follows an
erasure, the re-encryption of a profile's rows. May touch: the database through
:class:`~edgerec.history.connection.Database` (transactions, checkpoints, ``VACUUM``), the
active :class:`~edgerec.history.profiles.Profile` (rows and head), the key records through
:mod:`~edgerec.history.keys`, the generation through
:class:`~edgerec.history.rollback.Generation`. Runs under the store's lock.

Each of these survives kill -9 at any instant (A11, B9): an erasure is journaled in the
transaction that destroys the profile's keys and finished by the next open; a rotation
re-encrypts in batches, every row readable under exactly one enabled key in between.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Final

from ..errors import StorageBusyError, StorageError
from . import crypto, impressions, keys, window
from .connection import Database
from .events import decode_event
from .keys import KeySource, StoreKeys
from .limits import Options
from .profiles import Head, Profile
from .rollback import Generation

__all__ = [
    "bring_up_to_date",
    "erase",
    "finish_erasures",
    "forget",
    "new_data_key",
    "prune",
    "resume_rotation",
    "rotate_master_key",
    "scrub_at_open",
    "start_rotation",
]

_AGE_BATCH: Final = 64  # rows decrypted per step of age pruning
_COUNT_BATCH: Final = 10_000  # rows deleted per step of count pruning (memory stays flat)


def bring_up_to_date(db: Database, gen: Generation, prof: Profile, opts: Options) -> None:
    """What a writable handle does to a profile it activates: give a format-1 head the
    window proof (:func:`~edgerec.history.window.upgrade`, once, in one transaction) and
    finish a key rotation cut short. The retention limits are the caller's."""
    with db.read() as conn:
        head = prof.load_head(conn)
    if head.floor is None and prof.has_window:
        with db.write() as conn:
            head = prof.load_head(conn)
            new_gen = gen.bump(conn) if window.upgrade(conn, prof, head) else None
        if new_gen is not None:
            gen.advance(new_gen)
    resume_rotation(db, gen, prof, opts)


# ------------------------------------------------------------------- retention
def prune(conn: sqlite3.Connection, prof: Profile, head: Head, *, opts: Options) -> int:
    """Delete the oldest rows past ``opts.max_events``, then the rows older than
    ``opts.max_age_s`` (inside the caller's transaction; the caller stores ``head``).
    Returns how many.

    Age pruning walks from the oldest row and stops at the first one inside the limit,
    decrypting no further: rows recorded far out of order outlive the limit until the
    rows before them expire.
    """
    removed = 0
    max_events, max_age_s = opts.max_events, opts.max_age_s
    while max_events is not None and head.count > max_events:
        # Deleted unread: only their shape is checked (their MACs leave the digest). In
        # batches, so that a store opened with a much smaller cap streams.
        want = min(head.count - max_events, _COUNT_BATCH)
        rows = crypto.check_rows(prof.rows(conn, limit=want))
        prof.delete_rows(conn, head, rows, oldest=True)
        removed += len(rows)
        if len(rows) < want:
            break  # fewer rows than the head counts: reads will say so
    if max_age_s is not None:
        cutoff = opts.clock() - max_age_s
        while head.count > 0:
            batch = prof.rows(conn, limit=_AGE_BATCH)
            old: list[crypto.Row] = []
            for seq, key_id, blob, plain in crypto.open_records(
                prof.keys, prof.pid, batch, last_seq=head.last_seq
            ):
                if decode_event(seq, plain).at >= cutoff:
                    break
                old.append((seq, key_id, blob))
            prof.delete_rows(conn, head, old, oldest=True)
            removed += len(old)
            if len(old) < len(batch) or not batch:
                break
    return removed


def forget(conn: sqlite3.Connection, prof: Profile, head: Head, *, aid: str) -> int:
    """Delete every row of article ``aid`` (inside the caller's transaction; the caller
    stores ``head``); return how many. Streams the profile: only the matching rows are
    kept in memory, and all of them are authenticated first (a failure removes nothing).
    """
    rows = conn.execute(
        "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq", (prof.pid,)
    )
    doomed = [
        (seq, key_id, blob)
        for seq, key_id, blob, plain in crypto.open_records(
            prof.keys, prof.pid, rows, last_seq=head.last_seq
        )
        if decode_event(seq, plain).article_id == aid
    ]
    prof.delete_rows(conn, head, doomed, oldest=False)
    return len(doomed)


# --------------------------------------------------------------------- erasure
def erase(db: Database, gen: Generation, pid: bytes) -> bool:
    """Destroy profile ``pid``'s keys, head and rows in one journaled transaction; return
    whether it existed. The scrub of the file is :func:`finish_erasures`.
    """
    with db.write() as conn:
        existed = conn.execute("SELECT 1 FROM profiles WHERE pid = ?", (pid,)).fetchone()
        conn.execute("INSERT OR IGNORE INTO erase_journal (pid) VALUES (?)", (pid,))
        conn.execute("DELETE FROM profile_keys WHERE pid = ?", (pid,))
        conn.execute("DELETE FROM profiles WHERE pid = ?", (pid,))
        conn.execute("DELETE FROM events WHERE pid = ?", (pid,))
        conn.execute("DELETE FROM removed WHERE pid = ?", (pid,))
        impressions.delete(conn, pid)
        new_gen = gen.bump(conn)
    gen.advance(new_gen)
    return existed is not None


def scrub_at_open(db: Database) -> None:
    """At open: finish journaled erasures, and checkpoint a WAL left by a crash (it may
    hold rows a ``forget()`` or ``prune()`` removed just before it, whose scrub a reader
    had blocked). Best effort: never waits for readers, never fails the open."""
    with contextlib.suppress(StorageBusyError):
        # Keys and rows went in the journaled transaction; if a reader keeps the WAL busy
        # now, the scrub waits for the next open or erase.
        finish_erasures(db)
    if not db.read_only and db.wal_has_frames():
        with contextlib.suppress(StorageError):
            db.checkpoint(wait=False)


def finish_erasures(db: Database) -> None:
    """Scrub what journaled erasures left in the file: checkpoint the WAL (``TRUNCATE``),
    ``VACUUM``, checkpoint again, then clear the journal. Idempotent.

    Raises:
        StorageBusyError: a reader's snapshot kept old frames in the WAL; the journal
            stays, and the next erase or open retries.
    """
    if db.read_only:
        return
    with db.sql() as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM erase_journal")]
    if not pids:
        return
    # The keys and rows went in the transaction that journaled the erase; what is left
    # is the scrub. (Never delete by pid here: the name may already be a new profile.)
    db.checkpoint()
    db.vacuum()
    db.checkpoint()
    with db.write() as conn:
        conn.executemany("DELETE FROM erase_journal WHERE pid = ?", [(p,) for p in pids])
    db.checkpoint()


# ------------------------------------------------------------------ key rotation
def rotate_master_key(
    db: Database, gen: Generation, store: StoreKeys, source: KeySource, opts: Options
) -> StoreKeys:
    """Re-wrap the store key under the master key of ``source``: the KDF record, the
    canary and the wrapped store key change in one transaction; no row is touched.

    Raises:
        IntegrityError: the store key on disk fails under the current master key.
    """
    with db.read() as conn:
        store_key = keys.read_store_key(conn, store)
    random_bytes = opts.random_bytes
    kdf_raw, master = keys.new_master(
        source, store.store_id, scrypt_n=opts.scrypt_n, random_bytes=random_bytes
    )
    with db.write() as conn:
        keys.write_master(
            conn,
            store.store_id,
            kdf_raw=kdf_raw,
            master=master,
            store_key=store_key,
            random_bytes=random_bytes,
        )
        new_gen = gen.bump(conn)
    gen.advance(new_gen)
    return StoreKeys.derive(store.store_id, kdf_raw, master, store_key)


def start_rotation(db: Database, gen: Generation, prof: Profile, opts: Options) -> None:
    """Stage 1 of a profile-key rotation (one transaction): a new data key, wrapped, under
    a new key id becomes the key for new writes; the old key stays beside it. Nothing
    happens if a rotation is already under way (two keys loaded)."""
    with db.write() as conn:
        head = prof.load_head(conn)
        if len(prof.keys) == 1:
            new_id, aead = new_data_key(conn, prof, head, opts)
            prof.store_head(conn, head)
            gen.bump(conn)  # advanced by resume_rotation's first batch
        else:
            return
    prof.keys[new_id] = aead


def new_data_key(
    conn: sqlite3.Connection, prof: Profile, head: Head, opts: Options
) -> tuple[int, crypto.DataKey]:
    """Stage 1 inside the caller's transaction: store a fresh data key, wrapped, under the
    next key id and make it the key for new writes in ``head`` (uses from 0). The caller
    stores the head, and adds the key to ``prof.keys`` once the transaction commits."""
    raw = opts.random_bytes(crypto.KEY_BYTES)
    new_id = prof.add_key(conn, raw, opts.random_bytes)
    head.active_key_id = new_id
    head.key_uses = 0
    return new_id, crypto.data_key(raw)


def resume_rotation(db: Database, gen: Generation, prof: Profile, opts: Options) -> None:
    """Stages 2 and 3: re-encrypt ``opts.rotation_batch`` rows per transaction under the
    active key, then retire the old key once no row needs it. Idempotent; a no-op without
    a rotation.

    Raises:
        IntegrityError: a row fails authentication (the batch is rolled back).
    """
    if len(prof.keys) <= 1:
        return
    while True:
        with db.write() as conn:
            head = prof.load_head(conn)
            active = head.active_key_id
            rows = conn.execute(
                "SELECT seq, key_id, blob FROM events WHERE pid = ? AND key_id != ? "
                "ORDER BY seq LIMIT ?",
                (prof.pid, active, opts.rotation_batch),
            ).fetchall()
            for seq, key_id, blob, plain in crypto.open_records(
                prof.keys, prof.pid, rows, last_seq=head.last_seq
            ):
                new = crypto.seal_record(
                    prof.keys[active], prof.pid, seq, active, plain, random_bytes=opts.random_bytes
                )
                prof.replace_row(conn, head, (seq, key_id, blob), active, new)
            if not rows:
                conn.execute(
                    "DELETE FROM profile_keys WHERE pid = ? AND key_id != ?", (prof.pid, active)
                )
            else:
                prof.store_head(conn, head)
            new_gen = gen.bump(conn)
        gen.advance(new_gen)
        if not rows:
            prof.keys = {active: prof.keys[active]}
            return
