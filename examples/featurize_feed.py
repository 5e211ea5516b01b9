"""Featurize a SYNTHETIC news feed and report shapes and throughput.

It shows the one contract every later part stands on — articles in, an (N, F) int32 matrix
of hashed ids out — on the implementation this machine picked.

    python examples/featurize_feed.py [--articles 500] [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import edgerec
from edgerec.trainer.data.synthetic import synthetic_articles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=500, help="feed size (default 500)")
    parser.add_argument("--repeat", type=int, default=200, help="timed repetitions")
    args = parser.parse_args()
    if args.articles < 1 or args.repeat < 1:
        parser.error("--articles and --repeat must be positive")

    spec = edgerec.FeatureSpec.default()
    feed = synthetic_articles(args.articles, seed=7)
    print(
        f"edgerec {edgerec.__version__}, hashing implementation: {edgerec.hashing.IMPLEMENTATION}"
    )
    print(f"feed: {len(feed)} SYNTHETIC articles (seeded generator, not real data)")
    print(
        f"feature spec v{spec.version}: {len(spec.fields)} fields, width F={spec.width}, "
        f"{spec.n_buckets} buckets, fingerprint {spec.fingerprint[:12]}"
    )
    for f in spec.fields:
        cols = spec.columns[f.name]
        print(f"  {f.name:<13} {f.kind:<12} columns {cols.start:>2}..{cols.stop - 1:<2}")

    rows = edgerec.featurize(feed, spec)
    print(
        f"featurize -> shape {rows.shape}, dtype {rows.dtype}, "
        f"non-padding ids {int((rows > 0).sum())}"
    )
    print(f"first article {feed[0]['id']!r}: {feed[0]['title']!r}")
    print(f"  title ids {rows[0, spec.columns['title']].tolist()}")

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        edgerec.featurize(feed, spec)
        times.append(time.perf_counter() - start)
    p50 = statistics.median(times)
    print(
        f"throughput: {len(feed)} articles in {p50 * 1e3:.3f} ms (p50 of {args.repeat}), "
        f"{len(feed) / p50:,.0f} articles/s on one core"
    )


if __name__ == "__main__":
    main()
