"""Import hygiene: the SDK never pulls in TensorFlow; the trainer package imports lazily."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_import_edgerec_does_not_import_tensorflow() -> None:
    out = _run(
        "import sys, edgerec; edgerec.featurize([{'id': 'a'}], edgerec.FeatureSpec());"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'tensorflow', 'keras', 'tf_keras', 'torch'}))"
    )
    assert out == "[]"


def test_trainer_package_imports_without_tensorflow() -> None:
    out = _run(
        "import sys, edgerec.trainer, edgerec.trainer.synthetic;print('tensorflow' in sys.modules)"
    )
    assert out == "False"


def test_package_ships_type_information() -> None:
    out = _run(
        "import edgerec, pathlib; p = pathlib.Path(edgerec.__file__).parent;"
        "print((p / 'py.typed').exists(), (p / 'features' / '_hashing_native.pyi').exists())"
    )
    assert out == "True True"
