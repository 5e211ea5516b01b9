"""Embedding edgerec in ten lines: open a device home, record a read, recommend (SYNTHETIC
articles and the committed fixture bundle, so run it from the repository root; a real app
uses the model the update client installed, ``bundle=None``, and keeps its key in the OS
keystore). Only the SDK is imported. The README's "Embedding example" is this file's code,
checked by a test."""

import tempfile

import edgerec

feed = edgerec.read_jsonl("examples/data/synthetic_feed.jsonl")  # SYNTHETIC articles
bundle = "tests/fixtures/tiny_bundle"  # a real app: bundle=None, the installed model
with edgerec.Recommender.open(tempfile.mkdtemp(), key=bytes(range(32)), bundle=bundle) as rec:
    rec.record_read(feed[0], dwell_s=40.0)  # encrypted at rest; nothing leaves the device
    for r in rec.recommend(feed[:50], k=5):
        print(r.rank, r.id, f"{r.score:.3f}", "; ".join(r.reasons))
