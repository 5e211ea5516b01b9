"""Seeded SYNTHETIC news articles, for the demo, the fast tests and the benchmarks.

Everything produced here is synthetic and says so: ids start with ``SYN-`` and the demo
prints "synthetic" beside every figure measured on it. It exists so that nothing in the
repository needs the licensed MIND rows (which must never be committed) to run.

Pure numpy: importable without TensorFlow.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "SYNTHETIC_ID_PREFIX",
    "synthetic_articles",
    "write_interactions_layout",
    "write_mind_layout",
]

SYNTHETIC_ID_PREFIX: Final = "SYN-"

_TOPICS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # category: (subcategories, topic words)
    "sports": (
        ("football", "tennis", "racing", "basketball"),
        (
            "match",
            "season",
            "coach",
            "title",
            "league",
            "goal",
            "injury",
            "final",
            "record",
            "team",
            "championship",
            "transfer",
            "stadium",
            "fans",
            "win",
        ),
    ),
    "news": (
        ("politics", "world", "crime", "science"),
        (
            "election",
            "senate",
            "court",
            "police",
            "minister",
            "vote",
            "policy",
            "report",
            "investigation",
            "border",
            "treaty",
            "budget",
            "protest",
            "law",
        ),
    ),
    "finance": (
        ("markets", "companies", "realestate", "personalfinance"),
        (
            "stocks",
            "earnings",
            "rates",
            "inflation",
            "shares",
            "investors",
            "bank",
            "mortgage",
            "profit",
            "merger",
            "dividend",
            "bonds",
            "housing",
            "tax",
        ),
    ),
    "lifestyle": (
        ("food", "travel", "health", "style"),
        (
            "recipe",
            "trip",
            "beach",
            "diet",
            "sleep",
            "fashion",
            "garden",
            "city",
            "holiday",
            "coffee",
            "wellness",
            "restaurant",
            "hotel",
            "museum",
        ),
    ),
    "tech": (
        ("gadgets", "software", "space", "ai"),
        (
            "phone",
            "launch",
            "update",
            "chip",
            "privacy",
            "robot",
            "rocket",
            "app",
            "battery",
            "laptop",
            "satellite",
            "security",
            "model",
            "startup",
        ),
    ),
}
_COMMON: Final = (
    "the",
    "a",
    "new",
    "after",
    "how",
    "why",
    "what",
    "says",
    "first",
    "big",
    "week",
    "year",
    "could",
    "over",
    "plan",
    "top",
    "best",
    "more",
    "into",
)
# A few non-ASCII words so every code path (NFKC, casefold, multi-byte UTF-8) is exercised.
_UNICODE: Final = ("café", "Zürich", "São", "Straße", "naïve", "Ω-Labs", "東京", "🚀", "ﬁnal")
_SOURCES: Final = (
    "Daily Wire Desk",
    "Metro Post",
    "The Ledger",
    "Signal Times",
    "Kiosk News",
    "Harbor Herald",
    "Valley Voice",
    "Pulse Weekly",
)
_T0: Final = 1_700_000_000  # 2023-11-14T22:13:20Z


def _words(rng: np.random.Generator, topic: tuple[str, ...], n: int, p_unicode: float) -> str:
    pool = topic + _COMMON
    words = [str(pool[i]) for i in rng.integers(0, len(pool), size=n)]
    if rng.random() < p_unicode:
        words[int(rng.integers(0, n))] = str(_UNICODE[int(rng.integers(0, len(_UNICODE)))])
    words[0] = words[0].capitalize()
    return " ".join(words)


def synthetic_articles(n: int, *, seed: int = 0, p_unicode: float = 0.1) -> list[dict[str, Any]]:
    """``n`` SYNTHETIC articles shaped like a news feed (deterministic for a seed).

    Each has ``id`` (``SYN-…``), ``source``, ``category``, ``subcategory``, ``title`` (6-14
    words), ``abstract`` (20-45 words), ``entities`` (0-4 ``Q…`` ids) and ``published_at``
    (epoch seconds, a two-week window).

    Example:
        >>> a = synthetic_articles(3, seed=1)
        >>> len(a), a[0]["id"].startswith("SYN-")
        (3, True)
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    categories = list(_TOPICS)
    out: list[dict[str, Any]] = []
    for i in range(n):
        category = categories[int(rng.integers(0, len(categories)))]
        subcategories, topic = _TOPICS[category]
        out.append(
            {
                "id": f"{SYNTHETIC_ID_PREFIX}N{i:06d}",
                "source": _SOURCES[int(rng.integers(0, len(_SOURCES)))],
                "category": category,
                "subcategory": subcategories[int(rng.integers(0, len(subcategories)))],
                "title": _words(rng, topic, int(rng.integers(6, 15)), p_unicode),
                "abstract": _words(rng, topic, int(rng.integers(20, 46)), p_unicode) + ".",
                "entities": [
                    f"Q{int(q)}" for q in rng.integers(1, 5000, size=int(rng.integers(0, 5)))
                ],
                "published_at": _T0 + int(rng.integers(0, 14 * 86400)),
            }
        )
    return out


def _planted_readers(
    articles: list[dict[str, Any]], n_users: int, rng: np.random.Generator
) -> tuple[dict[str, list[str]], list[str], list[list[str]]]:
    """The planted signal both writers share: article ids by category, all ids, and each
    synthetic reader's one or two preferred categories (drawn from ``rng``)."""
    by_category: dict[str, list[str]] = {}
    for a in articles:
        by_category.setdefault(a["category"], []).append(a["id"])
    categories = sorted(by_category)
    users = [
        [
            categories[int(i)]
            for i in rng.choice(len(categories), int(rng.integers(1, 3)), replace=False)
        ]
        for _ in range(n_users)
    ]
    return by_category, [a["id"] for a in articles], users


def _write_news_tsv(path: Path, articles: list[dict[str, Any]]) -> None:
    """MIND's news.tsv: id, category, subcategory, title, abstract, url (empty), title and
    abstract entities (JSON lists)."""
    with open(path, "w", encoding="utf-8") as fh:
        for a in articles:
            ents = json.dumps([{"Label": q, "WikidataId": q} for q in a["entities"]])
            row = [a["id"], a["category"], a["subcategory"], a["title"], a["abstract"]]
            fh.write("\t".join([*row, "", ents, "[]"]) + "\n")


def write_mind_layout(
    out_dir: str | Path,
    *,
    n_articles: int = 600,
    n_users: int = 300,
    n_train: int = 600,
    n_eval: int = 200,
    seed: int = 0,
) -> Path:
    """Write a SYNTHETIC data set in the MIND layout the trainer reads from ../shared.

    Each synthetic reader prefers one or two categories: histories and clicks are drawn
    mostly from those, so content-aware rankers can beat random (a planted, known signal).
    Files: ``MINDsmall_train_subset/{news,behaviors}.tsv``, ``news_supplement.tsv`` (empty)
    and ``MINDsmall_dev_sampled_impressions.tsv``, plus a README saying it is synthetic.
    """
    out = Path(out_dir)
    (out / "MINDsmall_train_subset").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    articles = synthetic_articles(n_articles, seed=seed)
    by_category, all_ids, users = _planted_readers(articles, n_users, rng)

    def pick(prefs: list[str], p_pref: float) -> str:
        if rng.random() < p_pref:
            pool = by_category[prefs[int(rng.integers(0, len(prefs)))]]
        else:
            pool = all_ids
        return pool[int(rng.integers(0, len(pool)))]

    def impression(u: int) -> tuple[list[str], list[str]]:
        history = [pick(users[u], 0.8) for _ in range(int(rng.integers(1, 20)))]
        shown = [all_ids[int(i)] for i in rng.integers(0, len(all_ids), int(rng.integers(4, 15)))]
        clicked = pick(users[u], 0.9)
        shown = [s for s in shown if s != clicked]
        shown.insert(int(rng.integers(0, len(shown) + 1)), clicked)
        return history, [f"{s}-{int(s == clicked)}" for s in shown]

    _write_news_tsv(out / "MINDsmall_train_subset" / "news.tsv", articles)
    with open(out / "MINDsmall_train_subset" / "behaviors.tsv", "w", encoding="utf-8") as fh:
        for i in range(n_train):
            u = int(rng.integers(0, n_users))
            history, shown = impression(u)
            when = f"11/{9 + i % 6}/2019 {1 + i % 12}:{i % 60:02d}:00 {'AM' if i % 2 else 'PM'}"
            fh.write(f"{i + 1}\tSYN-U{u}\t{when}\t{' '.join(history)}\t{' '.join(shown)}\n")
    with open(out / "MINDsmall_dev_sampled_impressions.tsv", "w", encoding="utf-8") as fh:
        for i in range(n_eval):
            history, shown = impression(int(rng.integers(0, n_users)))
            fh.write(f"{100000 + i}\t{' '.join(history)}\t{' '.join(shown)}\n")
    (out / "news_supplement.tsv").write_text("", encoding="utf-8")
    (out / "README.md").write_text(
        "SYNTHETIC data in the MIND layout, made by edgerec.trainer.data.synthetic "
        f"(seed {seed}).\nNot real click logs.\n",
        encoding="utf-8",
    )
    return out


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_ARTICLE_COLUMNS: Final = (
    "id",
    "title",
    "abstract",
    "category",
    "subcategory",
    "source",
    "published_at",
    "entities",
)


def _write_articles_csv(path: Path, articles: list[dict[str, Any]]) -> None:
    """The generic layout's articles.csv, every optional column filled."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(_ARTICLE_COLUMNS)
        for a in articles:
            row = {
                **a,
                "published_at": _iso(a["published_at"]),
                "entities": " ".join(a["entities"]),
            }
            writer.writerow([row[c] for c in _ARTICLE_COLUMNS])


def write_interactions_layout(
    out_dir: str | Path,
    *,
    n_articles: int = 600,
    n_users: int = 150,
    n_impressions: int = 1500,
    seed: int = 0,
) -> Path:
    """Write a SYNTHETIC data set in the generic interactions format that
    :mod:`edgerec.trainer.data.interactions` reads: ``articles.csv`` (every optional column
    filled), ``interactions.csv`` (``user``, ``article``, ``timestamp`` in ISO 8601 UTC,
    ``label``) and a README saying it is synthetic.

    Same planted signal as :func:`write_mind_layout`: each reader prefers one or two
    categories and clicks mostly within them. Impressions are 4-14 distinct articles with
    one click (sometimes two), at strictly increasing timestamps a few minutes apart (one
    impression per timestamp), so the log is time-ordered and free of repeats.
    Deterministic for a seed. Returns ``out_dir``.

    Raises:
        ValueError: a count is negative, or ``n_impressions > 0`` with fewer than 15
            articles or no users.
    """
    if min(n_articles, n_users, n_impressions) < 0:
        raise ValueError("counts must be >= 0")
    if n_impressions and (n_articles < 15 or n_users < 1):
        raise ValueError("impressions need at least 15 articles and one user")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])  # not write_mind_layout's stream
    articles = synthetic_articles(n_articles, seed=seed)
    by_category, all_ids, users = _planted_readers(articles, n_users, rng)

    def pick(prefs: list[str], p_pref: float) -> str:
        pool = by_category[prefs[int(rng.integers(0, len(prefs)))]]
        if rng.random() >= p_pref:
            pool = all_ids
        return pool[int(rng.integers(0, len(pool)))]

    _write_articles_csv(out / "articles.csv", articles)
    with open(out / "interactions.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user", "article", "timestamp", "label"])
        when = _T0 + 86400
        for _ in range(n_impressions):
            when += int(rng.integers(60, 600))
            u = int(rng.integers(0, n_users))
            clicked = {pick(users[u], 0.9)}
            if rng.random() < 0.2:
                clicked.add(pick(users[u], 0.9))
            shown = [
                all_ids[int(i)]
                for i in rng.choice(len(all_ids), int(rng.integers(4, 15)), replace=False)
                if all_ids[int(i)] not in clicked
            ]
            for c in sorted(clicked):
                shown.insert(int(rng.integers(0, len(shown) + 1)), c)
            for s in shown:
                writer.writerow([f"{SYNTHETIC_ID_PREFIX}U{u}", s, _iso(when), int(s in clicked)])
    (out / "README.md").write_text(
        "SYNTHETIC data in the generic interactions format (articles.csv, interactions.csv),\n"
        f"made by edgerec.trainer.data.synthetic.write_interactions_layout (seed {seed}).\n"
        "Not real click logs.\n",
        encoding="utf-8",
    )
    return out
