"""edgerec.trainer.config: presets, TOML, overrides; unknown keys and wrong types fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgerec.trainer.config import ConfigError, load_config


def test_presets_and_overrides() -> None:
    tiny = load_config("tiny")
    assert tiny.name == "tiny" and tiny.teacher.dim == 32 and not tiny.minilm
    cfg = load_config(
        "default",
        ["teacher.epochs=3", "teacher.use_minilm=false", "teacher.learning_rate=5e-4", "seed=7"],
    )
    assert (cfg.teacher.epochs, cfg.teacher.use_minilm, cfg.seed) == (3, False, 7)
    assert cfg.teacher.learning_rate == 5e-4


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('preset = "tiny"\nseed = 3\n[teacher]\nepochs = 1\nlearning_rate = 1\n')
    cfg = load_config(str(path), ["teacher.epochs=2"])
    assert (cfg.name, cfg.seed, cfg.teacher.epochs, cfg.teacher.dim) == ("tiny", 3, 2, 32)
    assert cfg.teacher.learning_rate == 1.0


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["teacher.epoch=3"], "unknown config key 'teacher.epoch'"),
        (["colour=red"], "unknown config key 'colour'"),
        (["teacher.epochs=three"], "teacher.epochs: expected int"),
        (["teacher.use_minilm=maybe"], "teacher.use_minilm: expected true or false"),
        (["teacher=1"], "teacher: expected a table"),
        (["noequals"], "not key=value"),
    ],
)
def test_bad_overrides(overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config("default", overrides)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no preset or file"):
        load_config("nonexistent")
    bad = tmp_path / "bad.toml"
    bad.write_text("[teacher]\nepochs = 'x'\n")
    with pytest.raises(ConfigError, match=r"teacher\.epochs: expected int"):
        load_config(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("[teacher\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(str(broken))


def test_what_does_not_ship_is_off_by_default_and_on_in_research() -> None:
    """Issue 16: the ablations and experimental variants cost more than the pipeline that
    ships; the default leaves them out, the research preset measures them."""
    default, research = load_config("default"), load_config("research")
    assert not default.teacher_ablation and not default.student_ablation
    assert default.student.feed_vector_variant == 0
    assert research.teacher_ablation and research.student_ablation
    assert research.student.feed_vector_variant == 32
    assert research.teacher == default.teacher  # the same models, more of them
