"""Who does what in a training cluster (``distribute = multiworker``).

Every worker runs the same ``edgerec-train pipeline`` command with its own ``TF_CONFIG``
and ``--out``. Worker 0 is the chief: it alone reads and cleans the data, scores the
baselines, prepares the training examples (shards) and, after training, evaluates,
exports and writes the report. The other workers wait for what they need, written by the
chief into ``shared_dir`` (a folder every worker can read: a shared file system in a real
cluster, the same disk on one machine), train in lockstep with it, each reading only its
own shard files, and exit when the students are trained::

    shared_dir/examples/           the shards, the validation file (ExampleShards)
    shared_dir/worker-inputs.npz   hashed article tables (teacher, student), MiniLM vectors
    shared_dir/READY               written last, atomically: the inputs are complete

The order is kept by a collective barrier (:func:`barrier`: a one-number all-reduce under
the strategy): the chief reaches it after publishing, a worker reads the inputs after it,
so a worker never reads a previous run's files. A worker that finds no inputs after the
barrier, or a ``TF_CONFIG`` that does not describe it, is a
:class:`~edgerec.trainer.errors.ClusterError`.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgerec._fs import atomic_write

from .config import Config
from .errors import ClusterError

__all__ = [
    "READY_FILE",
    "Role",
    "WorkerInputs",
    "barrier",
    "examples_folder",
    "load",
    "publish",
    "role",
    "shared",
]

READY_FILE: Final = "READY"
INPUTS_FILE: Final = "worker-inputs.npz"

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Role:
    """This process's place in the cluster: ``index`` of ``count`` workers."""

    index: int = 0
    count: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0


def role(cfg: Config) -> Role:
    """The role ``TF_CONFIG`` gives this process under ``multiworker``; a lone chief
    otherwise.

    Raises:
        ClusterError: ``TF_CONFIG`` is missing or malformed under ``multiworker``.
    """
    if cfg.distribute != "multiworker":
        return Role()
    try:
        spec = json.loads(os.environ["TF_CONFIG"])
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        if task.get("type", "worker") != "worker":
            raise ValueError("only 'worker' tasks are supported (worker 0 is the chief)")
        index, count = int(task["index"]), len(workers)
    except (KeyError, TypeError, ValueError) as exc:
        raise ClusterError(f"TF_CONFIG does not describe this worker ({exc})") from None
    if not 0 <= index < count:
        raise ClusterError(f"TF_CONFIG: task index {index} outside the {count} workers")
    return Role(index, count)


def shared(cfg: Config, out: Path) -> Path:
    """The folder of what workers share: ``shared_dir`` in a cluster, ``out`` otherwise.

    Raises:
        ClusterError: ``multiworker`` without a ``shared_dir``.
    """
    if cfg.distribute != "multiworker":
        return out
    if not cfg.shared_dir:
        raise ClusterError(
            "distribute=multiworker needs --set shared_dir=DIR: a folder every worker can "
            "read, where the chief writes the prepared training examples"
        )
    return Path(cfg.shared_dir)


def examples_folder(cfg: Config, out: Path) -> Path:
    """Where the prepared training examples are written (chief) and read (everyone)."""
    return shared(cfg, out) / "examples"


@dataclass(frozen=True)
class WorkerInputs:
    """What a worker needs besides the shards: the article table hashed for the teacher
    and for the student, and the teacher's MiniLM vectors (None without)."""

    teacher_features: IntArray  # (A, F) default spec
    student_features: IntArray  # (A, F') the student's hash space
    vectors: FloatArray | None  # (A, 384)


def publish(folder: Path, inputs: WorkerInputs) -> None:
    """Chief: write the workers' inputs, then the READY marker (last, atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / READY_FILE).unlink(missing_ok=True)
    arrays: dict[str, Any] = {
        "teacher_features": inputs.teacher_features,
        "student_features": inputs.student_features,
    }
    if inputs.vectors is not None:
        arrays["vectors"] = inputs.vectors
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(folder / INPUTS_FILE, buffer.getvalue())
    atomic_write(folder / READY_FILE, json.dumps({"at": time.time()}).encode() + b"\n")


def barrier(strategy: Any) -> None:
    """Wait until every worker of ``strategy`` reaches this call (one all-reduce)."""
    import tensorflow as tf

    def one() -> Any:
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0))

    strategy.run(tf.function(one))


def load(folder: Path) -> WorkerInputs:
    """Worker, after :func:`barrier`: the inputs the chief published.

    Raises:
        ClusterError: the chief published nothing in ``folder``.
    """
    if not (folder / READY_FILE).exists():
        raise ClusterError(f"the chief published no training inputs in {folder}")
    with np.load(folder / INPUTS_FILE, allow_pickle=False) as npz:
        return WorkerInputs(
            npz["teacher_features"],
            npz["student_features"],
            npz["vectors"] if "vectors" in npz.files else None,
        )
