"""edgerec: on-device news recommendation.

The SDK never imports TensorFlow: ``import edgerec`` stays light enough for a kiosk's
cold start. The trainer lives in :mod:`edgerec.trainer` (installed with the ``[trainer]``
extra).

Where things live (each a part of the architecture):

* :class:`Recommender` (``recommender.py``): the entry point; ``ranking.py`` is its ranker;
* :mod:`edgerec.features`: the feature contract (:class:`FeatureSpec`, :func:`featurize`,
  the one article validator, hashing);
* :mod:`edgerec.history`: the encrypted reading history (:class:`ReadingHistory`);
* :mod:`edgerec.model`: the bundle, its manifest and the model runner;
* :mod:`edgerec.updates` and ``home.py``: signed model updates and the installed models;
* :mod:`edgerec.errors`: every exception; ``cli.py``: the ``edgerec`` command.

Example:
    >>> import edgerec
    >>> spec = edgerec.FeatureSpec.default()
    >>> rows = edgerec.featurize([{"id": "N1", "title": "Hello, world"}], spec)
    >>> rows.shape, rows.dtype.name
    ((1, 58), 'int32')
"""

from . import _compat
from ._json import read_jsonl
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
    ManifestFormatError,
    ManifestMismatchError,
    ModelFormatError,
    ModelValidationError,
    ProfileErasedError,
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
    UpdateError,
    UpdateRejectedError,
    WrongKeyError,
)
from .features import FeatureSpec, FieldSpec, featurize, hashing, parse_time, tokenize
from .history import HistoryEvent, MonotonicCounter, ReadingHistory
from .recommender import Recommendation, Recommender

__version__ = "0.2.0"

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
    "ManifestFormatError",
    "ManifestMismatchError",
    "ModelFormatError",
    "ModelValidationError",
    "MonotonicCounter",
    "ProfileErasedError",
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
    "UpdateError",
    "UpdateRejectedError",
    "WrongKeyError",
    "__version__",
    "featurize",
    "hashing",
    "parse_time",
    "read_jsonl",
    "tokenize",
]

_compat.install()


def __getattr__(name: str) -> object:
    """``edgerec.ModelLoadError`` (renamed in 0.2), for one release."""
    from . import errors

    if name in errors._RENAMED:
        return getattr(errors, name)
    raise AttributeError(f"module 'edgerec' has no attribute {name!r}")
