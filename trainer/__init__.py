"""edgerec.trainer: the server-side half (data, teacher, student, export, evaluation, publish).

Installed with the ``[trainer]`` extra (TensorFlow). It imports the SDK's feature hashing
(:func:`edgerec.featurize`) and writes bundles through the SDK's own manifest code
(:mod:`edgerec.model`), never copies of them, so training and serving cannot drift.
Importing this package does not import TensorFlow; the modules that need it do.

The map, in the order ``edgerec-train pipeline`` runs (:mod:`.pipeline`)::

    cli.py, __main__.py   edgerec-train / python -m edgerec.trainer: argparse, one-line errors
    config.py             frozen dataclasses with commented defaults; presets tiny, default
    errors.py             TrainerError and its leaves
    pipeline.py           prepare -> baselines -> teacher -> students -> export -> report
    data/                 reading logs (MIND, generic, synthetic), training examples, MiniLM
    models/               teacher, student, distillation loss, the shared training loop
    evaluation/           metrics, baselines, the report, the bundle measured on-device
    export.py             TFLite conversion, int8, the bundle (edgerec.model), golden outputs
    publish.py            the TUF repository devices update from (no TensorFlow)
    experiments/          measured, never shipped: the teacher ablation, feed vectors
    progress.py           the "[edgerec-train] ..." progress lines

Dependencies point one way: ``data`` needs nothing of the trainer but ``errors``;
``models`` and ``evaluation`` read ``data``; ``export`` reads ``models`` and
``evaluation.on_device``; ``pipeline`` ties them together and alone calls
``experiments``.
"""

import sys as _sys

from .data import interactions, synthetic

# Deprecated: the paths of 0.1 (``edgerec.trainer.synthetic``, ``.interactions``), kept
# for one release as the same module objects; use ``edgerec.trainer.data.*``.
_sys.modules.setdefault(f"{__name__}.interactions", interactions)
_sys.modules.setdefault(f"{__name__}.synthetic", synthetic)
