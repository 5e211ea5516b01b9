"""The feature contract shared by the trainer and the device (DESIGN.md section 2).

* :mod:`~edgerec.features.spec`: :class:`FeatureSpec`, :class:`FieldSpec`,
  :func:`featurize` (articles -> ``(N, F)`` int32 hash ids) and :func:`tokenize`;
* :mod:`~edgerec.features.values`: the one article validator and time rule
  (:func:`parse_time`), used by hashing, the reading history and the ranking alike;
* :mod:`~edgerec.features.hashing`: MurmurHash3 and the choice, made once, between the
  compiled extension and its pure-Python twin (``EDGEREC_PURE_PYTHON=1`` forces the twin).

Example:
    >>> from edgerec.features import FeatureSpec, featurize
    >>> featurize([{"id": "N1", "title": "Storm hits the coast"}], FeatureSpec.default()).shape
    (1, 58)
"""

from . import hashing
from .spec import SPEC_VERSION, FeatureSpec, FieldSpec, featurize, tokenize
from .values import parse_time

__all__ = [
    "SPEC_VERSION",
    "FeatureSpec",
    "FieldSpec",
    "featurize",
    "hashing",
    "parse_time",
    "tokenize",
]
