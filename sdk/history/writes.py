"""The write transactions of events: appending new ones, removing old ones, and what
follows each commit.

Owns: the sequence numbers new events get and which data key seals each (the key-use
limit's switch to a fresh key inside a batch), the one transaction of each append and of
each removal (``prune``, ``forget``) with the head record and the generation, and what
follows the commit: the host counter advanced, the removed rows scrubbed from the WAL, a
rotation at the key-use limit. May touch: the database through
:class:`~edgerec.history.connection.Database`, the active
:class:`~edgerec.history.profiles.Profile`, :func:`~edgerec.history.crypto.seal_record`,
:mod:`~edgerec.history.maintenance` (retention, ``forget``, rotation) and the
:class:`~edgerec.history.rollback.Generation`. Runs under the store's lock.

A data key seals at most ``key_use_limit`` records of a batch: once the head's use count
reaches the limit, the rest of the batch goes under a new key added in the same
transaction (so a failure anywhere stores neither the events nor the key), and the older
rows are re-encrypted after the commit, as a rotation's stages 2 and 3. One switch per
batch: :meth:`~edgerec.ReadingHistory.record_many` refuses batches longer than the limit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from . import crypto, maintenance
from .connection import Database
from .limits import Options
from .profiles import Head, Profile
from .rollback import Generation

__all__ = ["append", "remove"]

Removal = Callable[[sqlite3.Connection, Profile, Head], int]


def append(
    db: Database, gen: Generation, prof: Profile, plaintexts: Sequence[bytes], opts: Options
) -> list[int]:
    """Store ``plaintexts`` as the next events of ``prof`` in one transaction, with the
    retention limits; then advance the counter, scrub (without waiting for readers), and
    rotate the data key if it reached the limit. Returns the sequence numbers."""
    maintenance.resume_rotation(db, gen, prof, opts)  # a no-op unless a rotation was cut
    with db.write() as conn:
        head = prof.load_head(conn)
        seqs, fresh = _seal(conn, prof, head, plaintexts, opts)
        pruned = maintenance.prune(conn, prof, head, opts=opts)
        new_gen = _store(conn, gen, prof, head)
    prof.keys.update(fresh)
    _after_commit(db, gen, new_gen, pruned, wait=False)
    if fresh or head.key_uses >= opts.key_use_limit:
        maintenance.start_rotation(db, gen, prof, opts)
        maintenance.resume_rotation(db, gen, prof, opts)
    return seqs


def remove(db: Database, gen: Generation, prof: Profile, how: Removal) -> int:
    """One removal (``how(conn, prof, head)`` returns how many rows it deleted) in one
    transaction; then advance the counter and scrub, waiting for readers.

    Raises:
        StorageBusyError: a reader kept the removed rows' old bytes in the WAL (they are
            removed; the scrub stays pending).
    """
    with db.write() as conn:
        head = prof.load_head(conn)
        removed = how(conn, prof, head)
        new_gen = _store(conn, gen, prof, head) if removed else None
    _after_commit(db, gen, new_gen, removed, wait=True)
    return removed


def _seal(
    conn: sqlite3.Connection,
    prof: Profile,
    head: Head,
    plaintexts: Sequence[bytes],
    opts: Options,
) -> tuple[list[int], dict[int, crypto.DataKey]]:
    """Seal and insert ``plaintexts``; return their seqs and the data key the batch
    switched to (``{}`` if none), which joins ``prof.keys`` once the transaction commits."""
    fresh: dict[int, crypto.DataKey] = {}
    seqs = []
    for plaintext in plaintexts:
        # While another handle's rotation is under way (two keys), no third key: that
        # rotation's new key is the active one, and it is finished after the commit.
        if head.key_uses >= opts.key_use_limit and not fresh and len(prof.keys) == 1:
            new_id, new_key = maintenance.new_data_key(conn, prof, head, opts)
            fresh[new_id] = new_key
        key_id = head.active_key_id
        aead = fresh.get(key_id) or prof.keys[key_id]
        seq = head.last_seq + 1
        blob = crypto.seal_record(
            aead, prof.pid, seq, key_id, plaintext, random_bytes=opts.random_bytes
        )
        prof.insert_row(conn, head, seq, key_id, blob)
        seqs.append(seq)
    return seqs, fresh


def _store(conn: sqlite3.Connection, gen: Generation, prof: Profile, head: Head) -> int:
    """Write the changed head and count the write; advanced after the commit."""
    prof.store_head(conn, head)
    return gen.bump(conn)


def _after_commit(
    db: Database, gen: Generation, new_gen: int | None, removed: int, *, wait: bool
) -> None:
    if new_gen is not None:
        gen.advance(new_gen)
    if removed:
        db.scrub_pending = True
    db.scrub(wait=wait)
