"""Reading a generic interactions log: an article table and a time-ordered click log.

The format is a folder holding two UTF-8 CSV files, each with a header row (column names
are matched case-insensitively, surrounding spaces ignored, unknown columns ignored, a
UTF-8 byte-order mark tolerated):

* ``articles.csv``: ``id``, ``title`` required; ``abstract``, ``category``,
  ``subcategory``, ``source``, ``published_at`` (a time, see below) and ``entities``
  (space-separated ids) optional.
* ``interactions.csv``: ``user``, ``article``, ``timestamp`` required; ``label`` or
  ``dwell`` optional. One row per article shown to a user. Rows **must be in
  non-decreasing timestamp order**; a row earlier than the one before it is skipped
  ("timestamp out of order"), so sort the log first (e.g. ``sort -t, -k3``).

  - ``timestamp``: ISO 8601 (``2023-11-14T22:13:20Z``, ``2023-11-14 22:13:20+01:00``; no
    offset means UTC) or a plain number of unix seconds (``1700000000``, ``1700000000.5``;
    a plain number is always unix seconds, never a compact ISO date). Always UTC inside.
  - ``label``: ``1`` clicked, ``0`` shown but not clicked; anything else is skipped.
  - ``dwell``: seconds spent on the article (a finite number >= 0; an empty cell means 0).
    A row is a click when ``dwell > 0 and dwell >= min_dwell_s``: with the default
    ``min_dwell_s = 0`` any positive dwell is a click, ``dwell = 0`` is not.
  - With both columns, ``label`` decides and ``dwell`` is ignored; with neither, every row
    is a click.

Either file may instead be Parquet (``articles.parquet``, ``interactions.parquet``; the
CSV wins when both exist), with the same column names, read in record batches through
pyarrow (part of the ``trainer`` extra). Cells are read as the text the CSV would hold:
a Parquet timestamp column as ISO 8601 (naive means UTC), a list column (``entities``) as
space-separated ids, a null as an empty cell.

The rows of one user at one timestamp form one :class:`~edgerec.trainer.data.mind.Impression`;
its history is the user's clicks *before* that timestamp, so reading never leaks the
future. Like :mod:`edgerec.trainer.data.mind`, everything streams (no pandas): malformed rows
are counted by reason in a :class:`~edgerec.trainer.data.mind.ReadReport` and skipped, and
format problems raise :class:`InteractionsFormatError` with a one-line message.

Holding out the last 10 % of the log for evaluation, without leakage::

    first, last = time_span(folder)
    cutoff = first + (last - first) * 0.9
    train = iter_interaction_impressions(folder, until=cutoff)
    evaluate = iter_interaction_impressions(folder, since=cutoff)  # histories from all rows

Pure Python: importable without TensorFlow.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from ..errors import InteractionsFormatError
from .mind import Impression, ReadReport

__all__ = [
    "ARTICLES_FILE",
    "INTERACTIONS_FILE",
    "InteractionsFormatError",
    "find_table",
    "iter_interaction_impressions",
    "read_articles",
    "time_span",
]

ARTICLES_FILE: Final = "articles.csv"
INTERACTIONS_FILE: Final = "interactions.csv"

_ARTICLE_REQUIRED: Final = ("id", "title")
_INTERACTION_REQUIRED: Final = ("user", "article", "timestamp")
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class _Row(NamedTuple):
    user: str
    article: str
    when: datetime
    clicked: bool
    repeated: bool  # the same article was already shown to this user at this timestamp


def _resolve(path: Path | str, name: str) -> Path:
    """``path`` itself, or, when ``path`` is a folder, ``path / name`` (the CSV) or the
    Parquet file of the same stem when only that one exists."""
    p = Path(path)
    if not p.is_dir():
        return p
    csv_file, parquet_file = p / name, (p / name).with_suffix(".parquet")
    return parquet_file if not csv_file.exists() and parquet_file.exists() else csv_file


def find_table(folder: Path | str, name: str) -> Path | None:
    """``folder / name`` (CSV) or its Parquet twin, whichever exists (CSV first)."""
    file = _resolve(folder, name)
    return file if file.is_file() else None


def _cell(value: Any) -> str:
    """A Parquet value as the text the CSV reader would see."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return " ".join(_cell(v) for v in value)
    return str(value)


def _parquet_rows(path: Path, batch: int = 8192) -> tuple[list[str], Iterator[list[str]]]:
    """A Parquet file's column names and its rows as text, streamed in record batches."""
    try:
        import pyarrow.parquet as pq  # optional: only Parquet input needs it
    except ImportError:
        raise InteractionsFormatError(
            f"{path}: reading Parquet needs pyarrow (pip install 'edgerec[trainer]')"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InteractionsFormatError(f"{path}: not a readable Parquet file ({exc})") from None
    names = list(parquet.schema_arrow.names)

    def rows() -> Iterator[list[str]]:
        try:
            for record_batch in parquet.iter_batches(batch_size=batch):
                columns = [record_batch.column(i).to_pylist() for i in range(len(names))]
                for values in zip(*columns, strict=True):
                    yield [_cell(v) for v in values]
        except OSError as exc:
            raise InteractionsFormatError(f"{path}: unreadable Parquet data ({exc})") from None

    return names, rows()


def _parse_time(text: str) -> datetime:
    """A UTC datetime from ISO 8601 (naive means UTC) or unix seconds.

    Raises:
        ValueError: neither, or out of range.
    """
    text = text.strip()
    if _NUMBER.fullmatch(text):
        seconds = float(text)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"time out of range: {text}") from exc
    when = datetime.fromisoformat(text)
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"time out of range: {text}") from exc


def _as_utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows, with csv and decoding errors turned into one-line messages."""
    while True:
        try:
            row: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InteractionsFormatError(f"{path}: line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError:
            raise InteractionsFormatError(
                f"{path}: not valid UTF-8 (after line {reader.line_num})"
            ) from None
        yield row


@contextmanager
def _table(
    path: Path, required: tuple[str, ...]
) -> Iterator[tuple[dict[str, int], Iterator[list[str]]]]:
    """Open a CSV or Parquet file: its column positions by name, and its data rows.

    Raises:
        FileNotFoundError: the path does not exist.
        InteractionsFormatError: empty, a blank or repeated header, a required column missing.
    """
    if path.suffix.lower() == ".parquet":
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        header, rows = _parquet_rows(path)
        yield _columns(path, header, required), rows
        return
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        rows = _rows(reader, path)
        yield _columns(path, next(rows, None), required), rows


def _sized_rows(rows: Iterator[list[str]], width: int, rep: ReadReport) -> Iterator[list[str]]:
    """The data rows with one cell per header column; blank lines and rows of another
    width are counted in ``rep`` and skipped."""
    for row in rows:
        rep.rows += 1
        if not row:
            rep.skip("blank line")
        elif len(row) != width:
            rep.skip("wrong column count")
        else:
            yield row


def _columns(path: Path, header: list[str] | None, required: tuple[str, ...]) -> dict[str, int]:
    """Column positions by name from a header row, checked."""
    wanted = ", ".join(required)
    if header is None:
        raise InteractionsFormatError(f"{path}: empty file; expected a header row ({wanted})")
    names = [c.strip().lower() for c in header]
    if not any(names):
        raise InteractionsFormatError(f"{path}: first line is blank; expected a header row")
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in columns:
            raise InteractionsFormatError(f"{path}: column {name!r} repeated in the header")
        columns[name] = i
    missing = [c for c in required if c not in columns]
    if missing:
        raise InteractionsFormatError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(header: {', '.join(names)}; required: {wanted})"
        )
    return columns


def read_articles(path: Path | str, report: ReadReport | None = None) -> dict[str, dict[str, Any]]:
    """Articles by id from ``articles.csv`` (``path`` is the file or its folder), shaped
    like :func:`edgerec.trainer.data.mind.read_news`: ``id``, ``category``, ``subcategory``,
    ``title``, ``abstract`` (``""`` when the column is absent), ``entities`` (a list,
    repeats removed), plus ``source`` and ``published_at`` (ISO 8601 in UTC) only when the
    cell is not empty. Text is stripped.

    Rows skipped and counted: "wrong column count", "missing id or title", "repeated
    article id" (the first row wins), "bad published_at", "blank line".

    Raises:
        FileNotFoundError: the file does not exist.
        InteractionsFormatError: empty file, no header, ``id`` or ``title`` column missing,
            or not valid CSV / UTF-8.
    """
    file = _resolve(path, ARTICLES_FILE)
    rep = report or ReadReport(str(file))
    articles: dict[str, dict[str, Any]] = {}
    with _table(file, _ARTICLE_REQUIRED) as (columns, rows):

        def cell(row: list[str], name: str) -> str:
            i = columns.get(name)
            return row[i].strip() if i is not None else ""

        for row in _sized_rows(rows, len(columns), rep):
            article_id, title = cell(row, "id"), cell(row, "title")
            if not article_id or not title:
                rep.skip("missing id or title")
                continue
            if article_id in articles:
                rep.skip("repeated article id")
                continue
            article: dict[str, Any] = {
                "id": article_id,
                "category": cell(row, "category"),
                "subcategory": cell(row, "subcategory"),
                "title": title,
                "abstract": cell(row, "abstract"),
                "entities": list(dict.fromkeys(cell(row, "entities").split())),
            }
            if source := cell(row, "source"):
                article["source"] = source
            if published := cell(row, "published_at"):
                try:
                    article["published_at"] = _parse_time(published).isoformat()
                except ValueError:
                    rep.skip("bad published_at")
                    continue
            articles[article_id] = article
            rep.kept += 1
    return articles


def _interactions(file: Path, rep: ReadReport, min_dwell_s: float) -> Generator[_Row, None, None]:
    """The valid rows of ``interactions.csv``, in file order; the rest counted and skipped.

    Memory: one set of the rows at the current timestamp (for "repeated row"), nothing else.
    """
    with _table(file, _INTERACTION_REQUIRED) as (columns, rows):
        i_user, i_article, i_time = (columns[c] for c in _INTERACTION_REQUIRED)
        i_label, i_dwell = columns.get("label"), columns.get("dwell")
        last: datetime | None = None
        group_rows: set[tuple[str, ...]] = set()  # rows seen at timestamp ``last``
        group_pairs: set[tuple[str, str]] = set()  # (user, article) seen at ``last``
        for row in _sized_rows(rows, len(columns), rep):
            cells = tuple(c.strip() for c in row)
            user, article = cells[i_user], cells[i_article]
            if not user or not article:
                rep.skip("empty user or article")
                continue
            try:
                when = _parse_time(cells[i_time])
            except ValueError:
                rep.skip("bad timestamp")
                continue
            if i_label is not None:
                if cells[i_label] not in {"0", "1"}:
                    rep.skip("bad label")
                    continue
                clicked = cells[i_label] == "1"
            elif i_dwell is not None:
                raw = cells[i_dwell] or "0"
                dwell = float(raw) if _NUMBER.fullmatch(raw) else math.nan
                if not (math.isfinite(dwell) and dwell >= 0):
                    rep.skip("bad dwell")
                    continue
                clicked = dwell > 0 and dwell >= min_dwell_s
            else:
                clicked = True
            if last is not None and when < last:
                rep.skip("timestamp out of order")
                continue
            if when != last:
                last = when
                group_rows.clear()
                group_pairs.clear()
            if cells in group_rows:
                rep.skip("repeated row")
                continue
            group_rows.add(cells)
            repeated = (user, article) in group_pairs
            group_pairs.add((user, article))
            if repeated:
                rep.skip("repeated candidate")
            else:
                rep.kept += 1
            yield _Row(user, article, when, clicked, repeated)


def time_span(path: Path | str, report: ReadReport | None = None) -> tuple[datetime, datetime]:
    """The first and last timestamps (UTC) of the valid rows of ``interactions.csv``
    (``path`` is the file or its folder), in one streaming pass.

    Raises:
        FileNotFoundError: the file does not exist.
        InteractionsFormatError: empty file, no header, a required column missing, not
            valid CSV / UTF-8, or no valid row at all.
    """
    file = _resolve(path, INTERACTIONS_FILE)
    rep = report or ReadReport(str(file))
    first: datetime | None = None
    last: datetime | None = None
    for row in _interactions(file, rep, 0.0):
        if first is None:
            first = row.when
        last = row.when
    if first is None or last is None:
        raise InteractionsFormatError(f"{file}: no valid interaction rows ({rep.summary()})")
    return first, last


def iter_interaction_impressions(
    path: Path | str,
    report: ReadReport | None = None,
    *,
    max_history: int = 200,
    min_dwell_s: float = 0.0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[Impression]:
    """Stream impressions from ``interactions.csv`` (``path`` is the file or its folder),
    reading it once.

    The rows of one user at one timestamp form one impression: ``candidates`` are the
    articles in file order, ``labels`` 1 when clicked. A candidate repeated within an
    impression is counted ("repeated candidate") and dropped, but a click on it still marks
    the candidate clicked. ``history`` is the user's clicks at earlier timestamps, oldest
    first, ordered by each article's latest click (a re-click moves it to the end and counts
    as a repeated history entry), at most the last ``max_history``. Impressions without a
    click are yielded too. ``impression_id`` counts every impression in the file from 1, so
    an impression has the same id whatever the window.

    Only impressions with ``since <= time < until`` are yielded (naive datetimes mean UTC),
    but histories are built from every earlier row, so a held-out window sees the clicks
    before it and nothing after. Reading stops at the first row at or after ``until``.

    Memory: per user at most ``max_history`` ids (only users who clicked), plus the rows of
    the current timestamp; never the whole file. ``report.kept`` counts rows used.

    Raises:
        FileNotFoundError: the file does not exist (at call time).
        InteractionsFormatError: empty file, no header or a required column missing (at
            call time); not valid CSV / UTF-8 (while iterating).
        ValueError: ``max_history`` or ``min_dwell_s`` negative, or ``since >= until``.
    """
    if max_history < 0:
        raise ValueError(f"max_history must be >= 0, got {max_history}")
    if not (math.isfinite(min_dwell_s) and min_dwell_s >= 0):
        raise ValueError(f"min_dwell_s must be a finite number >= 0, got {min_dwell_s}")
    since, until = _as_utc(since), _as_utc(until)
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    file = _resolve(path, INTERACTIONS_FILE)
    with _table(file, _INTERACTION_REQUIRED):
        pass  # fail now, not on the first next(), when the file or a column is missing
    rep = report or ReadReport(str(file))
    return _impressions(
        file, rep, max_history=max_history, min_dwell_s=min_dwell_s, since=since, until=until
    )


def _impressions(
    file: Path,
    rep: ReadReport,
    *,
    max_history: int,
    min_dwell_s: float,
    since: datetime | None,
    until: datetime | None,
) -> Iterator[Impression]:
    histories: dict[str, dict[str, None]] = {}  # user -> ordered set of clicked ids
    pending: dict[str, dict[str, int]] = {}  # user -> {candidate: label} at ``current``
    current: datetime | None = None
    counter = 0

    def flush() -> Iterator[Impression]:
        nonlocal counter
        for user, shown in pending.items():
            counter += 1
            history = histories.get(user)
            assert current is not None
            if (since is None or current >= since) and (until is None or current < until):
                yield Impression(
                    counter,
                    user,
                    current,
                    tuple(history or ()),
                    tuple(shown),
                    tuple(shown.values()),
                )
            if max_history == 0:
                continue
            for article, label in shown.items():
                if not label:
                    continue
                if history is None:
                    history = histories[user] = {}
                elif article in history:
                    del history[article]
                    rep.repeated_history_entries += 1
                history[article] = None
                if len(history) > max_history:
                    del history[next(iter(history))]
        pending.clear()

    rows = _interactions(file, rep, min_dwell_s)
    try:
        for row in rows:
            if row.when != current:
                yield from flush()
                current = row.when
                if until is not None and current >= until:
                    return
            shown = pending.setdefault(row.user, {})
            shown[row.article] = max(shown.get(row.article, 0), int(row.clicked))
        yield from flush()
    finally:
        rows.close()
