"""The window proof: a read of a profile's newest ``n`` events proves that they are exactly
its newest ``n`` live events; the streaming check of a whole profile; the upgrade of a
format-1 head.

Owns: the checks of what :meth:`~edgerec.ReadingHistory.recent` (a window) and
:meth:`~edgerec.ReadingHistory.verify`, ``export`` and iteration (the whole profile) read,
and :func:`upgrade`. May touch: the ``events`` and ``removed`` rows of the active profile,
inside the caller's transaction, and its MAC key through
:class:`~edgerec.history.profiles.Profile` (which writes the floor and the removal log).
Decrypts only through :func:`~edgerec.history.crypto.open_records`, after the proof.

What the head (fresh: every write rewrites it under its MAC) commits to, in format 2::

    last seq L, floor F, count C; every seq in (F, L] is a row or an entry of the
    removal log (pid, seq, HMAC(mac key, "removed", pid, seq)), never both;
    the log holds exactly L - F - C entries above F.

A window read takes the newest ``n`` rows (seq descending; ``lo`` the lowest seq returned,
or F + 1 when fewer than ``n`` came back), the log entries in [lo, L] and the number of log
entries above F, and checks that rows and entries are exactly the seqs lo..L without
overlap, each entry's MAC, and the count. So:

* a row deleted with plain SQL (the newest one included) leaves a hole, or, with the log
  edited to cover it, a forged entry (MAC) or a wrong count;
* a removed row put back (its old ciphertext is authentic) sits on its own entry or, with
  that entry deleted, leaves the log one short; entries from before a floor raise are
  below F and never count;
* a row put back below F comes back from the query and is refused.

Cost: the ``n`` rows, one range lookup and one count on the log's primary key (no row is
rewritten when another is removed). Why not a link from each row to the previous live one:
an old link and the row it names are both authentic, so a put-back pair passes any check
of the chain alone, and closing that needs a removal log anyway; the log alone is enough,
and ``forget`` and pruning then write one small entry (or none) instead of re-linking.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections import deque
from collections.abc import Iterator
from typing import Final

from ..errors import IntegrityError
from . import crypto
from .profiles import ZERO_DIGEST, Head, Profile

__all__ = ["full", "newest", "upgrade"]

_ALL: Final = "SELECT seq, key_id, blob FROM events WHERE pid = ? ORDER BY seq"
_LOG_COUNT: Final = "SELECT count(*) FROM removed WHERE pid = ? AND seq > ?"
_LOG_RANGE: Final = "SELECT seq, mac FROM removed WHERE pid = ? AND seq BETWEEN ? AND ?"
_HOLE: Final = "rows of this profile are missing or were put back (deleted or replayed)"


def newest(conn: sqlite3.Connection, prof: Profile, head: Head, limit: int) -> list[crypto.Row]:
    """The ``limit`` newest rows, newest first, proven to be exactly the newest live rows
    (each is still authenticated by :func:`~edgerec.history.crypto.open_records`).

    Raises:
        IntegrityError: a malformed row, or the rows are not the newest live ones.
    """
    if limit == 0:
        return []
    if head.floor is None:
        return _legacy_newest(conn, prof, head, limit)
    floor, top = head.floor, head.last_seq
    rows = crypto.check_rows(prof.rows(conn, limit=limit, newest_first=True))
    if rows and rows[-1][0] <= floor:
        raise IntegrityError(f"{_HOLE}: a row at or below the profile's floor")
    lo = rows[-1][0] if len(rows) == limit else floor + 1
    (logged,) = conn.execute(_LOG_COUNT, (prof.pid, floor)).fetchone()
    if logged != head.removed:
        raise IntegrityError(f"{_HOLE}: the removal log does not match the head record")
    log = conn.execute(_LOG_RANGE, (prof.pid, lo, top))
    gone = {_entry(prof, seq, mac) for seq, mac in log}
    have = {seq for seq, _, _ in rows}
    if have & gone or len(have) + len(gone) != top - lo + 1 or (rows and rows[0][0] > top):
        raise IntegrityError(_HOLE)
    return rows


def full(
    conn: sqlite3.Connection, prof: Profile, head: Head
) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Every record of the profile, oldest first, decrypted and checked as it streams
    (constant memory): the count and digest against the head and, in format 2, every seq
    from the floor to the last seq a row or an authentic log entry. The whole-profile
    checks raise when the iterator is exhausted, so a caller uses the records only after.

    Raises:
        IntegrityError: a row failed authentication, or rows were deleted, added,
            replaced or put back.
        UnsupportedFormatError: a record of an unknown format.
    """
    digest, count = ZERO_DIGEST, 0
    entries = None
    expected = 0
    if head.floor is not None:
        log = conn.execute(
            "SELECT seq, mac FROM removed WHERE pid = ? AND seq > ? ORDER BY seq",
            (prof.pid, head.floor),
        )
        entries = (_entry(prof, seq, mac) for seq, mac in log)
        expected = head.floor + 1
    rows = conn.execute(_ALL, (prof.pid,))
    for record in crypto.open_records(prof.keys, prof.pid, rows, last_seq=head.last_seq):
        seq, key_id, blob, _ = record
        digest = crypto.xor32(digest, prof.row_mac(seq, key_id, blob))
        count += 1
        if entries is not None:
            expected = _skip_logged(entries, expected, seq)
            if seq != expected:
                raise IntegrityError(f"{_HOLE} (near seq={seq})", seq=seq)
            expected += 1
        yield record
    if entries is not None and _skip_logged(entries, expected, None) != head.last_seq + 1:
        raise IntegrityError(f"{_HOLE}: the removal log does not match the head record")
    _check_digest(head, count, digest)


def _skip_logged(entries: Iterator[int], expected: int, until: int | None) -> int:
    """Consume the log entries below ``until`` (all of them for ``None``), each of which
    must be the next expected seq; return the seq expected next."""
    while until is None or expected < until:
        seq = next(entries, None)
        if seq is None:
            return expected
        if seq != expected:
            raise IntegrityError(f"{_HOLE}: the removal log does not match the rows")
        expected += 1
    return expected


def _entry(prof: Profile, seq: object, mac: object) -> int:
    if type(seq) is not int or type(mac) is not bytes:
        raise IntegrityError("a removal-log entry is malformed")
    if not secrets.compare_digest(mac, prof.removed_mac(seq)):
        raise IntegrityError("a removal-log entry failed authentication")
    return seq


def _check_digest(head: Head, count: int, digest: bytes) -> None:
    if count != head.count:
        raise IntegrityError(
            f"the profile has {count} rows, its head record {head.count} "
            "(rows deleted or truncated)"
        )
    if not secrets.compare_digest(digest, head.digest):
        raise IntegrityError("the profile's rows do not match its head record (replaced)")


def _legacy_newest(
    conn: sqlite3.Connection, prof: Profile, head: Head, limit: int
) -> list[crypto.Row]:
    """A format-1 head has no removal log (a read-only handle on an older store: a
    writable one upgrades it), so the window is proven by the whole head check: O(count)
    row MACs, streamed, keeping the newest ``limit`` rows."""
    digest, count = ZERO_DIGEST, 0
    window: deque[crypto.Row] = deque(maxlen=limit)
    for raw in conn.execute(_ALL, (prof.pid,)):
        row = crypto.check_rows([raw])[0]
        digest = crypto.xor32(digest, prof.row_mac(*row))
        count += 1
        window.append(row)
    _check_digest(head, count, digest)
    return list(reversed(window))


def upgrade(conn: sqlite3.Connection, prof: Profile, head: Head) -> bool:
    """Give a format-1 head its floor and removal log, inside the caller's write
    transaction (so a crash leaves it format 1, and the next open upgrades it again).

    Streams the rows once (row MACs; nothing is decrypted) and proves them against the
    head first: the live rows are then exactly the authenticated ones, and every other seq
    up to the last is a removal. A profile whose rows do not match its head is left in
    format 1, where its reads fail as they did.

    Returns:
        Whether ``head`` was upgraded (the caller stores nothing more; the head is written).
    """
    if head.floor is not None:
        return False
    digest, count, lowest, expected = ZERO_DIGEST, 0, 0, 0
    holes: list[tuple[int, int]] = []  # [start, stop) runs of removed seqs above the floor
    for raw in conn.execute(_ALL, (prof.pid,)):
        try:
            seq, key_id, blob = crypto.check_rows([raw])[0]
        except IntegrityError:
            return False  # a malformed row: reads report it, as in format 1
        if seq > head.last_seq:
            return False
        digest = crypto.xor32(digest, prof.row_mac(seq, key_id, blob))
        count += 1
        if not lowest:
            lowest = seq
        elif seq > expected:
            holes.append((expected, seq))
        expected = seq + 1
    if count != head.count or not secrets.compare_digest(digest, head.digest):
        return False
    if lowest:
        if expected <= head.last_seq:
            holes.append((expected, head.last_seq + 1))
        head.floor = lowest - 1
    else:
        head.floor = head.last_seq
    for start, stop in holes:
        conn.executemany(
            "INSERT INTO removed (pid, seq, mac) VALUES (?, ?, ?)",
            ((prof.pid, seq, prof.removed_mac(seq)) for seq in range(start, stop)),
        )
    prof.store_head(conn, head)
    return True
