"""The model that ranks on the device: its manifest, its bundle on disk, and running it.

* :mod:`~edgerec.model.manifest`: :class:`Manifest`, read by the device and written by the
  trainer through the same code;
* :mod:`~edgerec.model.bundle`: :class:`Bundle` (``model.tflite`` + ``manifest.json``,
  checked against each other) and :func:`write_bundle`;
* :mod:`~edgerec.model.runner`: :class:`ModelRunner`, the interpreter over the bundle's
  ``rank``, ``items`` and ``user`` signatures, and :func:`pad_history`;
* :mod:`~edgerec.model.runtime`: the TFLite runtime, chosen once (LiteRT, else
  tflite-runtime; never TensorFlow).
"""

from .bundle import Bundle, write_bundle
from .manifest import MANIFEST_FILE, MODEL_FILE, SCHEMA_VERSION, Manifest
from .runner import ModelRunner, pad_history

__all__ = [
    "MANIFEST_FILE",
    "MODEL_FILE",
    "SCHEMA_VERSION",
    "Bundle",
    "Manifest",
    "ModelRunner",
    "pad_history",
    "write_bundle",
]
