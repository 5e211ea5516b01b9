"""A bundle that reads feed signals, made from the committed SYNTHETIC fixture model: its
spec declares ``signals`` and its manifest carries ``head`` (issue 18's tests)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgerec.features.signals import FeedSignals
from edgerec.model import Bundle, Manifest, write_bundle
from edgerec.model.manifest import FeedHead

from .updates import FIXTURE


def feed_bundle(
    folder: Path, signals: FeedSignals, head: FeedHead, *, version: int | None = None
) -> Bundle:
    """The fixture's model written to ``folder`` with ``signals`` and ``head`` (and
    ``version``, default the fixture's)."""
    base = Bundle.load(FIXTURE)
    m = base.manifest
    manifest = Manifest.build(
        model=base.model,
        spec=replace(m.spec, signals=signals),
        history_len=m.history_len,
        vector_dim=m.vector_dim,
        model_version=m.model_version if version is None else version,
        quantization=m.quantization,
        golden=m.golden,
        metrics=m.metrics,
        cold_start_prior=m.cold_start_prior,
        feed_head=head,
    )
    return write_bundle(folder, base.model, manifest)
