"""Regenerate the golden vectors in this folder (run by hand; the tests only read them).

    python tests/vectors/make_vectors.py

Hashes come from ``mmh3``, an implementation independent of edgerec's, so the vectors
check edgerec rather than echo it. Tokens come from ``edgerec.tokenize`` (the documented
rule); review a diff of tokenize.json by eye before committing it. Every input is made up
here: no licensed data.
"""

from __future__ import annotations

import json
from pathlib import Path

import mmh3

from edgerec import FeatureSpec, tokenize
from edgerec.features.values import field_value, time_tokens

HERE = Path(__file__).parent
EDGE_SEED = 1672057931  # murmur3_32(b"edge", EDGE_SEED) == -2**31, found by inverting fmix32

MURMUR_CASES: list[tuple[str | bytes, int]] = [
    ("", 0),
    ("", 1),
    ("foo", 0),
    ("a", 0),
    ("ab", 0),
    ("abc", 0),
    ("abcd", 0),
    ("abcde", 0),
    ("foo", 1),
    ("foo", 2**32 - 1),
    ("hello world", 42),
    ("café", 0),
    ("cafe\u0301", 0),
    ("Straße", 0),
    ("東京", 7),
    ("🚀", 0),
    ("\x00", 0),
    ("a\x00b", 3),
    ("\u202eabc", 0),
    (b"\xff\xfe\x00\x01", 0),
    (b"\x80", 9),
    ("edge", EDGE_SEED),
    ("title\x1fstorm", 0),
]

TOKENIZE_CASES = [
    "Hello, World!",
    "Straße in Zürich",
    "ﬁnal ﬂight",
    "e\u0301cole",
    "café",
    "ＡＢＣ１２３",
    "snake_case and kebab-case",
    "rocket🚀launch",
    "\u202eabc\u202c def",
    "مرحبا بالعالم",
    "東京タワー",
    "नमस्ते दुनिया",
    "3.14 × 10²",
    "don’t stop — ever…",
    "  ",
    "",
    "NUL\x00inside",
    "İstanbul",
    "ΣΊΣΥΦΟΣ",
    "x" * 3,
]

ARTICLES: list[dict[str, object]] = [
    {
        "id": "N1",
        "source": "Metro Post",
        "category": "Sports",
        "subcategory": "football",
        "title": "Late goal seals the title",
        "abstract": "A dramatic finish at the stadium.",
        "entities": ["Q1", "Q2"],
        "published_at": 1700000000,
    },
    {
        "id": "N2",
        "title": "Café culture in Zürich — a guide",
        "category": "lifestyle",
        "published_at": "2024-02-29T23:59:59+01:00",
        "entities": ["Q42", "", "Q7", "Q8", "Q9"],
    },
    {
        "id": "n-ümlaut",
        "title": "ＦＵＬＬＷＩＤＴＨ ﬁnal",
        "abstract": "",
        "published_at": -1.5,
        "source": None,
        "unknown_field": "ignored",
    },
    {
        "id": "N4",
        "title": " ".join(f"w{i}" for i in range(40)),
        "abstract": " ".join(f"tok{i}" for i in range(100)),
        "published_at": 253402300799,
    },
]


def bucket(data: bytes, seed: int, n_buckets: int) -> int:
    return 1 + mmh3.hash(data, seed, signed=False) % (n_buckets - 1)


def expected_row(spec: FeatureSpec, index: int, article: dict[str, object]) -> list[int]:
    row: list[int] = []
    for f in spec.fields:
        value = field_value(article, f, f"articles[{index}]")
        if value is None:
            values: list[bytes] = []
        elif f.kind == "text":
            assert isinstance(value, bytes)
            values = [t.encode() for t in tokenize(value.decode(), max_tokens=f.slots)]
        elif f.kind == "list":
            assert isinstance(value, list)
            values = value
        elif f.kind == "time_bucket":
            assert isinstance(value, float)
            values = time_tokens(value, f.buckets)
        else:
            assert isinstance(value, bytes)
            values = [value]
        ids = [bucket(f.prefix + v, spec.seed, spec.n_buckets) for v in values]
        row += ids + [0] * (f.slots - len(ids))
    return row


def main() -> None:
    murmur = []
    for data, seed in MURMUR_CASES:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        case: dict[str, object] = {"seed": seed, "hash": mmh3.hash(raw, seed)}
        case["text" if isinstance(data, str) else "hex"] = (
            data if isinstance(data, str) else raw.hex()
        )
        murmur.append(case)
    (HERE / "murmur3.json").write_text(json.dumps(murmur, ensure_ascii=False, indent=1) + "\n")

    tokens = [{"text": t, "tokens": tokenize(t)} for t in TOKENIZE_CASES]
    (HERE / "tokenize.json").write_text(json.dumps(tokens, ensure_ascii=False, indent=1) + "\n")

    spec = FeatureSpec.default()
    small = FeatureSpec.from_dict({**spec.to_dict(), "n_buckets": 97, "seed": 12345})
    featurize = [
        {
            "spec": s.to_dict(),
            "articles": ARTICLES,
            "rows": [expected_row(s, i, a) for i, a in enumerate(ARTICLES)],
        }
        for s in (spec, small)
    ]
    (HERE / "featurize.json").write_text(json.dumps(featurize, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
