"""Seeded SYNTHETIC news articles, for the demo, the fast tests and the benchmarks.

Everything produced here is synthetic and says so: ids start with ``SYN-`` and the demo
prints "synthetic" beside every figure measured on it. It exists so that nothing in the
repository needs the licensed MIND rows (which must never be committed) to run.

Pure numpy: importable without TensorFlow.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

__all__ = ["SYNTHETIC_ID_PREFIX", "synthetic_articles"]

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
