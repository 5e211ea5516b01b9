"""Reading MIND-layout click logs: news tables, impression logs, and the sampled dev file.

Everything streams line by line (bounded memory, no pandas). Malformed lines are counted
by reason and skipped; :class:`ReadReport` carries the counts so every command can print
a one-screen summary instead of a traceback from deep inside a parser.

Formats (tab-separated, no header):

* ``news.tsv``: id, category, subcategory, title, abstract, url, title_entities,
  abstract_entities (the last two JSON lists of objects with ``WikidataId``).
* ``behaviors.tsv``: impression id, user, time (``M/D/YYYY h:mm:ss AM``), history
  (space-separated ids, oldest first), impressions (``N123-1``: 1 clicked, 0 not).
* ``MINDsmall_dev_sampled_impressions.tsv``: impression id, history, impressions.

Pure Python: importable without TensorFlow.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["Impression", "ReadReport", "iter_impressions", "read_news"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # abstracts and entity lists run long


@dataclass(frozen=True)
class Impression:
    """One impression: what the reader had clicked before, and what was shown."""

    impression_id: int
    user: str | None  # None in the sampled dev file (it has no user column)
    time: datetime | None
    history: tuple[str, ...]  # oldest first, repeats removed
    candidates: tuple[str, ...]
    labels: tuple[int, ...]  # 1 clicked, 0 shown but not clicked


@dataclass
class ReadReport:
    """What a reader kept and skipped, by reason."""

    source: str
    rows: int = 0
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    repeated_history_entries: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {r}" for r, n in self.skipped.most_common()) or "none"
        extra = (
            f"; {self.repeated_history_entries} repeated history entries removed"
            if self.repeated_history_entries
            else ""
        )
        return f"{self.source}: {self.rows} rows, {self.kept} kept, skipped: {reasons}{extra}"


def _entities(raw: str) -> list[str]:
    if not raw:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [
        str(e["WikidataId"])
        for e in items
        if isinstance(e, dict) and isinstance(e.get("WikidataId"), str)
    ]


def read_news(
    paths: Iterable[Path | str], report: ReadReport | None = None
) -> dict[str, dict[str, Any]]:
    """Articles by id, shaped for :func:`edgerec.featurize` (id, category, subcategory,
    title, abstract, entities). Earlier files win when an id repeats.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    articles: dict[str, dict[str, Any]] = {}
    for path in paths:
        rep = report or ReadReport(str(path))
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                rep.rows += 1
                if len(row) != 8:
                    rep.skip("wrong column count")
                    continue
                news_id, category, subcategory, title, abstract = (c.strip() for c in row[:5])
                if not news_id or not title:
                    rep.skip("missing id or title")
                    continue
                if news_id in articles:
                    rep.skip("repeated news id")
                    continue
                entities = list(dict.fromkeys(_entities(row[6]) + _entities(row[7])))
                articles[news_id] = {
                    "id": news_id,
                    "category": category,
                    "subcategory": subcategory,
                    "title": title,
                    "abstract": abstract,
                    "entities": entities,
                }
                rep.kept += 1
    return articles


TIME_FORMAT: Final = "%m/%d/%Y %I:%M:%S %p"  # MIND: "11/15/2019 8:55:22 AM"


def _parse_time(text: str) -> datetime:
    """A MIND time as an aware UTC datetime; ``ValueError`` when it is not one.

    The usual shape is read by hand (``strptime`` was half the time of reading a log);
    anything else goes to ``strptime``, which decides (a test pins the two equal)."""
    date, _, rest = text.partition(" ")
    clock, _, half = rest.partition(" ")
    parts = date.split("/") + clock.split(":")
    if (
        len(parts) == 6
        and half in ("AM", "PM")
        and all(p.isascii() and p.isdigit() for p in parts)
        and len(parts[2]) == 4
        and all(1 <= len(p) <= 2 for i, p in enumerate(parts) if i != 2)
    ):
        month, day, year, hour, minute, second = map(int, parts)
        if 1 <= hour <= 12:
            hour = hour % 12 + (12 if half == "PM" else 0)
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _impression_key(
    user: str | None, when: datetime | None, impression_id: int, candidates: tuple[str, ...]
) -> bytes:
    """What makes an impression a repeat (the same reader, time and candidate list), as a
    16-byte digest: the set of keys seen is the one thing a pass over the log holds per
    impression (the tuples themselves took about 1 KB each)."""
    who = f"{user}\t{when.isoformat() if when else ''}" if user is not None else f"#{impression_id}"
    return hashlib.blake2b(f"{who}\t{' '.join(candidates)}".encode(), digest_size=16).digest()


def _parse_labels(text: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    ids: list[str] = []
    labels: list[int] = []
    for item in text.split():
        news_id, sep, label = item.rpartition("-")
        if not sep or not news_id or label not in {"0", "1"}:
            return None
        ids.append(news_id)
        labels.append(int(label))
    return tuple(ids), tuple(labels)


def iter_impressions(path: Path | str, report: ReadReport | None = None) -> Iterator[Impression]:
    """Stream impressions from a behaviors.tsv (5 columns) or the sampled dev file
    (3 columns), deduplicating repeated impressions and repeated history entries.

    Raises:
        FileNotFoundError: the path does not exist.
    """
    rep = report or ReadReport(str(path))
    seen: set[bytes] = set()
    with open(path, encoding="utf-8", newline="") as fh:
        for line in fh:
            rep.rows += 1
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) == 5:
                raw_id, user, raw_time, raw_history, raw_impressions = cols
            elif len(cols) == 3:
                raw_id, raw_history, raw_impressions = cols
                user, raw_time = None, None
            else:
                rep.skip("wrong column count")
                continue
            try:
                impression_id = int(raw_id)
            except ValueError:
                rep.skip("bad impression id")
                continue
            try:
                when = _parse_time(raw_time) if raw_time is not None else None
            except ValueError:
                rep.skip("bad timestamp")
                continue
            parsed = _parse_labels(raw_impressions)
            if parsed is None:
                rep.skip("bad impression label")
                continue
            candidates, labels = parsed
            if not candidates:
                rep.skip("no candidates")
                continue
            raw = raw_history.split()
            history = tuple(dict.fromkeys(raw))
            rep.repeated_history_entries += len(raw) - len(history)
            key = _impression_key(user, when, impression_id, candidates)
            if key in seen:
                rep.skip("repeated impression")
                continue
            seen.add(key)
            rep.kept += 1
            yield Impression(impression_id, user, when, history, candidates, labels)


def coverage(impressions: Iterable[Impression], articles: dict[str, Any]) -> dict[str, float]:
    """Share of history entries, candidates and clicked candidates that have metadata."""
    counts = Counter[str]()
    for imp in impressions:
        counts["history"] += len(imp.history)
        counts["history_known"] += sum(h in articles for h in imp.history)
        counts["candidates"] += len(imp.candidates)
        counts["candidates_known"] += sum(c in articles for c in imp.candidates)
        clicked = [c for c, y in zip(imp.candidates, imp.labels, strict=True) if y]
        counts["clicks"] += len(clicked)
        counts["clicks_known"] += sum(c in articles for c in clicked)
    return {
        k: counts[f"{k}_known"] / counts[k] if counts[k] else 0.0
        for k in ("history", "candidates", "clicks")
    }
