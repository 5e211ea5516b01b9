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
    ClosedError,
    EdgerecError,
    HistoryError,
    IntegrityError,
    InvalidInputError,
    InvalidTypeError,
    KeyUnavailableError,
    ReadOnlyStorageError,
    RollbackDetectedError,
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

__version__ = "0.1.0"

__all__ = [
    "ClosedError",
    "EdgerecError",
    "FeatureSpec",
    "FieldSpec",
    "HistoryError",
    "HistoryEvent",
    "IntegrityError",
    "InvalidInputError",
    "InvalidTypeError",
    "KeyUnavailableError",
    "MonotonicCounter",
    "ReadOnlyStorageError",
    "ReadingHistory",
    "RollbackDetectedError",
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
