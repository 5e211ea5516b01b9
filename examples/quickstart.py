"""Embedding edgerec in ten lines: open a device home, record a read, recommend (SYNTHETIC
articles and the committed fixture bundle, so run it from the repository root; a real app
uses the model the update client installed, ``bundle=None``, and keeps its key in the OS
keystore). The README's "Embedding example" is this file's code, checked by a test."""

import tempfile
from pathlib import Path

import edgerec
from edgerec.trainer.synthetic import synthetic_articles  # a seeded SYNTHETIC feed

bundle = Path("tests/fixtures/tiny_bundle")  # a real app: bundle=None, the installed model
feed = synthetic_articles(50, seed=3)
with edgerec.Recommender.open(tempfile.mkdtemp(), key=bytes(range(32)), bundle=bundle) as rec:
    rec.record_read(feed[0], dwell_s=40.0)  # encrypted at rest; nothing leaves the device
    for r in rec.recommend(feed, k=5):
        print(r.rank, r.id, f"{r.score:.3f}", "; ".join(r.reasons))
