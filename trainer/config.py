"""Trainer configuration: frozen dataclasses with commented defaults, presets, TOML files,
and ``key=value`` overrides. Unknown keys and wrong types are errors, never ignored.

Example:
    >>> cfg = load_config("tiny", overrides=["teacher.epochs=2"])
    >>> cfg.teacher.epochs, cfg.name
    (2, 'tiny')
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Config", "ConfigError", "StudentConfig", "TeacherConfig", "load_config"]


@dataclass(frozen=True)
class TeacherConfig:
    history_len: int = 30  # last L clicks the user encoder attends over (MIND dev: 1-25)
    negatives: int = 4  # K sampled negatives per next-click example
    dim: int = 64  # article and user vector width
    heads: int = 4  # attention heads in the user encoder
    use_minilm: bool = True  # frozen pretrained article vectors as an extra input
    encoder: str = "minilm"  # whose vectors: minilm | feed (the feed encoder's, e.g. mpnet)
    zero_shot: bool = True  # with MiniLM: score = MiniLM cosine + gated learned residual
    impression_weight: float = 1.0  # loss weight of impression examples (real negatives)
    truncate_histories: bool = False  # train on histories cut to evaluation-like lengths
    batch_size: int = 512
    epochs: int = 8  # upper bound: early stopping usually ends sooner
    learning_rate: float = 2e-3  # peak, after linear warm-up; cosine decay to 0
    warmup_fraction: float = 0.05
    weight_decay: float = 1e-4  # AdamW
    dropout: float = 0.2
    patience: int = 2  # epochs without validation improvement before stopping
    # share of training users held out: early stopping, and every feed-signal choice on
    # their impressions (edgerec.trainer.data.validation_impressions)
    validation_fraction: float = 0.2
    max_examples: int = 0  # training examples per epoch, 0 = all; the tiny preset caps it


@dataclass(frozen=True)
class StudentConfig:
    """The LSTM that ships (DESIGN.md section 3): hashed-feature embeddings shared by the
    item and history towers, an LSTM over the last L history items, dot-product scores."""

    history_len: int = 50  # L, left-padded (the on-device budget: 50 history items)
    # Hash space of the student's FeatureSpec; 0 = the default spec's (2^15). 2^14 x 24 int8
    # embedding weights = 393 KB, beside ~300 KB of unrolled LSTM: the bundle stays under 1 MB
    # (2^15 buckets made it 1.13 MB).
    n_buckets: int = 1 << 14
    embed_dim: int = 24  # per hashed id
    dim: int = 64  # item and user vector width (LSTM units)
    use_id: bool = False  # the article-id column: fresh articles never seen in training
    feed_vector_dim: int = 0  # > 0: each article also carries a P-dim int8 vector in the feed
    feed_vector_variant: int = 0  # > 0: also measure a student with P-dim MiniLM projections
    negatives: int = 4  # K per example, as for the teacher
    truncate_histories: bool = False  # train on histories cut to evaluation-like lengths
    alpha: float = 0.7  # loss = alpha * T^2 * KL(teacher || student) + (1 - alpha) * click
    temperature: float = 2.0  # T, softens both score distributions for the KL term
    batch_size: int = 512
    epochs: int = 6  # upper bound: early stopping on validation ranking AUC
    learning_rate: float = 3e-3  # peak, after linear warm-up; cosine decay to 0
    warmup_fraction: float = 0.05
    weight_decay: float = 1e-4  # AdamW
    patience: int = 2
    max_examples: int = 0  # training examples per epoch, 0 = all
    quantization: str = "auto"  # auto (measure both, ship the better) | dynamic | full
    representative: int = 300  # real training histories for full-integer calibration
    version: int = 0  # model version in the manifest; 0 = the creation time in unix seconds


@dataclass(frozen=True)
class Config:
    name: str = "default"
    seed: int = 0
    bootstrap: int = 1000  # resamples for the 95% intervals
    minilm: bool = True  # MiniLM baseline and teacher input (needs the [embed] extra)
    # What does not ship is off here and on in the "research" preset:
    teacher_ablation: bool = False  # also train teacher_no_minilm: what MiniLM adds
    student_ablation: bool = False  # also train student_no_teacher: what distillation adds
    # Feed signals (edgerec.trainer.models.feed_signals): a click prior and a text vector
    # per article, computed by the publisher; the shipped bundle reads them when present.
    feed_signals: bool = True
    feed_encoder: str = "auto"  # auto (mpnet if installed, else MiniLM) | mpnet | minilm | none
    # Prepared training examples: written once as shards of this many examples, the unit
    # of shuffling (an epoch: shards in random order, each shuffled whole) and of memory.
    shard_size: int = 200_000
    # tf.distribute for the teacher and the students: none | mirrored (every GPU, else the
    # CPU) | multiworker (the cluster in TF_CONFIG). batch_size stays the global batch.
    distribute: str = "none"
    cpu_replicas: int = 0  # mirrored without GPUs: split the CPU into N logical devices
    # multiworker: a folder every worker can read; the chief (worker 0) writes the prepared
    # examples and the hashed article tables there, the others read their shards from it.
    shared_dir: str = ""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)


PRESETS: dict[str, Config] = {
    "default": Config(),
    "tiny": Config(
        name="tiny",
        bootstrap=200,
        minilm=False,  # encoding costs ~20 s even for a small corpus
        feed_encoder="none",  # the tiny feed carries the click prior only
        teacher=TeacherConfig(
            history_len=20,
            dim=32,
            heads=2,
            batch_size=64,
            epochs=3,
            max_examples=3000,
        ),
        student=StudentConfig(
            history_len=20,
            n_buckets=4096,  # keeps the committed fixture bundle small
            embed_dim=8,
            dim=16,
            batch_size=64,
            epochs=2,
            max_examples=3000,
            representative=50,
            quantization="dynamic",  # the full-integer conversion alone costs ~20 s
        ),
    ),
    # default + every measurement that does not ship: the teacher without MiniLM, the
    # student without the teacher, the student that reads 32-dim feed vectors.
    "research": Config(
        name="research",
        teacher_ablation=True,
        student_ablation=True,
        student=StudentConfig(feed_vector_variant=32),
    ),
}


def _coerce(key: str, current: Any, raw: Any) -> Any:
    kind = type(current)
    if isinstance(raw, str) and kind is not str:
        text = raw.strip()
        if kind is bool:
            if text.lower() not in {"true", "false"}:
                raise ConfigError(f"{key}: expected true or false, got {raw!r}")
            return text.lower() == "true"
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{key}: expected {kind.__name__}, got {raw!r}") from None
    if kind is float and type(raw) is int:
        return float(raw)
    if type(raw) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(raw).__name__}")
    return raw


def _apply(obj: Any, values: dict[str, Any], prefix: str = "") -> Any:
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        path = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown config key {path!r}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a table")
            changes[key] = _apply(current, raw, prefix=f"{path}.")
        else:
            changes[key] = _coerce(path, current, raw)
    return replace(obj, **changes)


DISTRIBUTE = ("none", "mirrored", "multiworker")
_CHOICES = {
    "distribute": DISTRIBUTE,
    "student.quantization": ("auto", "dynamic", "full"),
    "feed_encoder": ("auto", "mpnet", "minilm", "none"),
    "teacher.encoder": ("minilm", "feed"),
}


def _check_choices(config: Config) -> Config:
    for key, allowed in _CHOICES.items():
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        if value not in allowed:
            raise ConfigError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return config


def load_config(preset_or_path: str, overrides: list[str] | None = None) -> Config:
    """A preset name (``tiny``, ``default``) or a TOML file, then ``key=value`` overrides
    (dotted keys: ``teacher.epochs=3``).

    Raises:
        ConfigError: unknown preset/key, malformed override, or a wrong type.
    """
    if preset_or_path in PRESETS:
        config = PRESETS[preset_or_path]
    else:
        path = Path(preset_or_path)
        if not path.is_file():
            raise ConfigError(
                f"no preset or file named {preset_or_path!r} (presets: {', '.join(PRESETS)})"
            )
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        base = PRESETS[data.pop("preset", "default")]
        config = _apply(base, data)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        nested: dict[str, Any] = {}
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        config = _apply(config, nested)
    return _check_choices(config)
