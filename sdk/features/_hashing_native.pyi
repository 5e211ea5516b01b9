# Type stub for the Cython extension built from native/hashing.pyx.
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .spec import FieldSpec
from .values import FieldValue

def murmur3_32(data: bytes, seed: int) -> int: ...
def hash_strings(
    strings: list[object], seed: int, n_buckets: int, out: npt.NDArray[np.int32]
) -> int: ...

class Plan:
    def __init__(
        self,
        fields: Sequence[FieldSpec],
        seed: int,
        n_buckets: int,
        marks: tuple[tuple[int, int], ...],
    ) -> None: ...

def featurize(
    plan: Plan,
    articles: list[object],
    slow: Callable[[int, object, int], FieldValue],
    out: npt.NDArray[np.int32],
) -> None: ...
