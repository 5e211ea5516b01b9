"""edgerec: on-device news recommendation.

The SDK never imports TensorFlow: ``import edgerec`` stays light enough for a kiosk's
cold start. The trainer lives in :mod:`edgerec.trainer` (installed with the ``[trainer]``
extra).

Example:
    >>> import edgerec
    >>> spec = edgerec.FeatureSpec.default()
    >>> rows = edgerec.featurize([{"id": "N1", "title": "Hello, world"}], spec)
    >>> rows.shape, rows.dtype.name
    ((1, 58), 'int32')
"""

from . import hashing
from .errors import EdgerecError, InvalidInputError, InvalidTypeError, SpecError
from .features import FeatureSpec, FieldSpec, featurize, tokenize

__version__ = "0.1.0"

__all__ = [
    "EdgerecError",
    "FeatureSpec",
    "FieldSpec",
    "InvalidInputError",
    "InvalidTypeError",
    "SpecError",
    "__version__",
    "featurize",
    "hashing",
    "tokenize",
]
