"""edgerec.trainer: the server-side half (data, teacher, student, export, evaluation, publish).

Installed with the ``[trainer]`` extra (TensorFlow). It imports the SDK's feature hashing
(:func:`edgerec.featurize`), never a copy of it, so training and serving cannot drift.
Importing this package does not import TensorFlow; the modules that need it do.

The map::

    cli.py                edgerec-train: data loading, baselines, the pipeline's first half
    distill.py            the pipeline's second half: students, export, on-device evaluation
    config.py             frozen dataclasses with commented defaults; presets tiny, default
    data/                 reading logs (MIND, generic, synthetic), training examples, MiniLM
    models/               teacher, student, shared training loop
    evaluation/           metrics, baselines, the report
    export.py             TFLite conversion, int8, the bundle
    publish.py            the TUF repository devices update from (no TensorFlow)
"""

import sys as _sys

from .data import interactions, synthetic

# The README and examples/kiosk import these two by their first paths
# (``edgerec.trainer.synthetic``): the same module objects, not copies.
_sys.modules.setdefault(f"{__name__}.interactions", interactions)
_sys.modules.setdefault(f"{__name__}.synthetic", synthetic)
