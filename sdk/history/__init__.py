"""Encrypted on-device reading history: :class:`ReadingHistory`.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "history.db")
    >>> key = bytes(range(32))                      # from the host; never stored here
    >>> with ReadingHistory.open(path, key=key, profile="alice") as h:
    ...     seq = h.record({"id": "N1", "title": "Hello"}, at=1_700_000_000.0, dwell_s=12.5)
    ...     seq = h.record({"id": "N2"}, at="2026-12-02T08:00:00Z")
    ...     [(e.article_id, e.features.get("title"), e.at) for e in h.recent(10)]
    [('N2', None, 1796198400.0), ('N1', 'Hello', 1700000000.0)]

What is protected, and how:

* Every event (article id, the article's feature strings, time, dwell) is one AES-256-GCM
  ciphertext with a fresh random 96-bit nonce, bound by associated data to the profile,
  its sequence number, the key id and the record format. No column holds reading data in
  plaintext; profile names are encrypted too and rows name a profile by a keyed,
  pseudonymous id. Visible to whoever can read the file: the number of profiles and of
  events, ciphertext sizes, sequence numbers, key ids, file times.
* Keys: the host's master key (``key=`` raw 32 bytes, ``passphrase=`` through scrypt, or
  ``keyring_service=`` for the OS keystore through the optional ``keyring`` package) wraps a
  random store key, which wraps each profile's data key(s) and MAC key. A key-check canary
  turns a wrong master key into :class:`~edgerec.WrongKeyError` at open; a store is never
  created over an existing file. :meth:`ReadingHistory.rotate_master_key` re-wraps only the
  store key (O(1)); :meth:`ReadingHistory.rotate_profile_key` re-encrypts every row of the
  profile in batches that survive kill -9 and resume on the next open.
* Integrity: each profile has a head record (row count, last seq, the XOR of keyed row MACs,
  key uses, a floor) under an HMAC, and a log of removed seqs, each entry MACed. Flipped
  bits and swapped ciphertexts fail authentication (:class:`~edgerec.IntegrityError`
  naming the seq, never partial plaintext); deleted, truncated or replaced rows fail
  :meth:`~ReadingHistory.verify` and every full read; and every
  :meth:`~ReadingHistory.recent` proves its rows are exactly the newest live ones, so a
  row deleted, put back or re-inserted with plain SQL inside the window fails it too
  (:mod:`~edgerec.history.window`).
* Rollback of the whole file (an older copy of DB + WAL) is detected only with a host
  ``counter`` (an object with ``read() -> int`` and ``advance(value: int)``, e.g. backed by
  a TPM NV counter or a server): every write bumps a MAC'd generation in the store and then
  advances the counter; an open that finds the store behind the counter raises
  :class:`~edgerec.RollbackDetectedError`. **Without a counter, a rolled-back copy opens and
  reads as valid** (it is authentic, only old): that is the documented limitation, and a
  damaged or lost WAL opens the same way (SQLite drops WAL frames from the first bad
  checksum on, which leaves an older authentic store; with a counter, it is
  :class:`~edgerec.RollbackDetectedError`). Once a store is used with a counter, keep
  passing it.
* Durability: WAL, ``synchronous=FULL`` by default (every acknowledged write survives power
  loss, if the disk honours fsync), ``busy_timeout`` then :class:`~edgerec.StorageBusyError`.
  A write the OS fails (EIO on a write or fsync) raises :class:`~edgerec.StorageIOError`
  and is not in the store, then or after a crash.
* Removal: :meth:`~ReadingHistory.forget`, retention pruning and
  :meth:`~ReadingHistory.erase_profile` delete with ``secure_delete`` and checkpoint the
  WAL with ``TRUNCATE``: when they return, the removed ciphertexts are in neither the
  database, its WAL nor its ``-shm`` (or they raise :class:`~edgerec.StorageBusyError`:
  a reader's snapshot kept them in the WAL).

Profiles: one handle has exactly one active profile, and only that profile's data key and
MAC key are unwrapped; :meth:`ReadingHistory.switch_profile` drops them before loading the
next profile's (CPython cannot scrub freed memory; the references are dropped). Opening one
handle per profile works too: handles in threads or processes share the file safely. A
profile erased by another handle or process is noticed on the handle's next call
(:meth:`ReadingHistory.ensure_alive`): its keys are dropped and the call raises
:class:`~edgerec.ProfileErasedError`.

Limits (checked before encrypting; :class:`~edgerec.InvalidInputError` or
:class:`~edgerec.InvalidTypeError` naming the parameter, never holding its value): the
article goes through the SDK's one article validator, the rules of
:func:`edgerec.featurize`, with the history's limits: article id ≤ 256 characters; each
other string ≤ 16,384 characters; at most 256 entities; the encoded event ≤ 256 KiB.
Times (``at``, ``published_at``) follow the SDK's one time rule (:func:`edgerec.parse_time`):
epoch seconds, an aware datetime or an ISO-8601 string with an offset
(``"2026-12-02T08:00:00Z"``), years 1..9999; naive times are refused, not guessed. Dwell is
a finite number of seconds in [0, 10^7]. Strings are stored exactly as given (no
normalization; a ``published_at`` string as given once it parsed); lone surrogates are
refused; empty fields and empty entities are left out. Fields kept: source, category,
subcategory, title, abstract, published_at, entities; other keys of the article are
ignored.

Where each job lives (each module's docstring says what it owns and what it may touch):

* :mod:`~edgerec.history.store`: :class:`ReadingHistory`, the public verbs, in order;
* :mod:`~edgerec.history.limits`: every limit, the argument checks, the handle's options;
* :mod:`~edgerec.history.events`: :class:`HistoryEvent`, the fields kept (described as
  :class:`~edgerec.FieldSpec`, checked by the SDK's one article validator) and the event
  codec (the plaintext);
* :mod:`~edgerec.history.crypto`: every encryption, decryption, wrap and MAC; the key
  hierarchy and the record layout;
* :mod:`~edgerec.history.keys`: master-key sources (raw, scrypt, OS keystore), the KDF
  record, the key-check canary, the store key and its subkeys;
* :mod:`~edgerec.history.writes`: the write transactions of events (sealing new ones,
  the key-use limit inside a batch, removals, the WAL scrub after them);
* :mod:`~edgerec.history.profiles`: pseudonyms, encrypted names, per-profile keys, head
  records and their MACs, the removal log's bookkeeping;
* :mod:`~edgerec.history.window`: the proof that a read is exactly the newest live events,
  the streaming whole-profile check, the upgrade of format-1 heads;
* :mod:`~edgerec.history.rollback`: the MAC'd generation and :class:`MonotonicCounter`;
* :mod:`~edgerec.history.maintenance`: retention pruning, erasure, both key rotations;
* :mod:`~edgerec.history.connection`: the SQLite file, pragmas, transactions, network-FS
  check, quarantine, and the one translation of ``sqlite3`` errors;
* :mod:`~edgerec.history.schema`: tables, migrations, the format and ``store_meta``
  records.
"""

from .events import HistoryEvent
from .rollback import MonotonicCounter
from .store import ReadingHistory

__all__ = ["HistoryEvent", "MonotonicCounter", "ReadingHistory"]
