"""The trainer's exceptions: one root, :class:`TrainerError`, and a leaf per condition.

``edgerec-train`` prints any of them as one line on stderr and exits 1 (:mod:`.cli`): each
message says what is wrong with the user's input (a file, a flag, a config key) and never
contains key bytes or a traceback. Leaves that describe bad input keep the builtin base
that callers already catch (``ValueError``, ``RuntimeError``)::

    TrainerError
    ├── ConfigError (ValueError)              a config file or --set override is wrong
    ├── DataError (ValueError)                a data folder cannot be trained on
    │   └── InteractionsFormatError           an articles/interactions file cannot be read
    ├── EmbeddingsUnavailable (RuntimeError)  the [embed] extra is not installed
    ├── ExportError (RuntimeError)            nothing to export, or no int8 variant converts
    ├── PublishError                          the update channel refuses (keys, versions)
    └── UsageError (ValueError)               a command-line argument is wrong

Example:
    >>> issubclass(ConfigError, TrainerError) and issubclass(ConfigError, ValueError)
    True
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConfigError",
    "DataError",
    "EmbeddingsUnavailable",
    "ExportError",
    "InteractionsFormatError",
    "PublishError",
    "TrainerError",
    "UsageError",
]


class TrainerError(Exception):
    """Root of every error the trainer reports to its user."""


class ConfigError(TrainerError, ValueError):
    """A configuration file or override is wrong; the message names the key."""


class DataError(TrainerError, ValueError):
    """A data folder cannot be trained on: in neither layout, or nothing usable left after
    cleaning (the summaries printed before it say what was skipped)."""


class InteractionsFormatError(DataError):
    """An interactions file cannot be read at all: empty, no header, a required column
    missing, or not valid CSV / UTF-8. The message names the file and the problem."""


class EmbeddingsUnavailable(TrainerError, RuntimeError):
    """The text-embedding extra is not installed (``pip install 'edgerec[embed]'``)."""


class ExportError(TrainerError, RuntimeError):
    """A bundle cannot be made: no saved student, unusable saved inputs, or no int8
    variant converted."""


class ClusterError(TrainerError, RuntimeError):
    """A training cluster cannot run: ``TF_CONFIG`` does not describe this worker, no
    ``shared_dir``, or the chief published no inputs (:mod:`edgerec.trainer.cluster`)."""


class PublishError(TrainerError):
    """A publishing problem to report in one line (never contains key bytes)."""


class UsageError(TrainerError, ValueError):
    """A command-line argument is wrong (beyond what argparse checks)."""
