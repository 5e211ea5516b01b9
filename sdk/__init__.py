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
from .errors import (
    BundleError,
    ClosedError,
    EdgerecError,
    HistoryError,
    IncompatibleModelError,
    IntegrityError,
    InvalidInputError,
    InvalidTypeError,
    KeyUnavailableError,
    ModelLoadError,
    ReadOnlyStorageError,
    RollbackDetectedError,
    RuntimeUnavailableError,
    SpecError,
    StorageBusyError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageIOError,
    UnsupportedFormatError,
    WrongKeyError,
)
from .features import FeatureSpec, FieldSpec, featurize, tokenize
from .history import HistoryEvent, MonotonicCounter, ReadingHistory
from .recommender import Recommendation, Recommender

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "ClosedError",
    "EdgerecError",
    "FeatureSpec",
    "FieldSpec",
    "HistoryError",
    "HistoryEvent",
    "IncompatibleModelError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidTypeError",
    "KeyUnavailableError",
    "ModelLoadError",
    "MonotonicCounter",
    "ReadOnlyStorageError",
    "ReadingHistory",
    "Recommendation",
    "Recommender",
    "RollbackDetectedError",
    "RuntimeUnavailableError",
    "SpecError",
    "StorageBusyError",
    "StorageCorruptError",
    "StorageError",
    "StorageFullError",
    "StorageIOError",
    "UnsupportedFormatError",
    "WrongKeyError",
    "__version__",
    "featurize",
    "hashing",
    "tokenize",
]
