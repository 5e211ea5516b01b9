"""Import hygiene: the SDK never pulls in TensorFlow; the trainer package imports lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
        "import sys, edgerec.trainer, edgerec.trainer.data.synthetic;"
        "print('tensorflow' in sys.modules)"
    )
    assert out == "False"


def test_package_ships_type_information() -> None:
    out = _run(
        "import edgerec, pathlib; p = pathlib.Path(edgerec.__file__).parent;"
        "print((p / 'py.typed').exists(), (p / 'features' / '_hashing_native.pyi').exists())"
    )
    assert out == "True True"


def test_the_device_path_does_not_load_the_update_stack() -> None:
    """Opening a home and recommending needs neither TUF nor an HTTP client (cold start);
    they load on the first update check only."""
    out = _run(
        "import sys, tempfile, edgerec\n"
        "with edgerec.Recommender.open(tempfile.mkdtemp(), key=bytes(32)) as rec:\n"
        "    rec.recommend([{'id': 'a'}])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tuf', 'urllib3', 'http'}))"
    )
    assert out == "[]"


def test_the_installed_package_is_the_source_tree() -> None:
    """Every module of the installed package has its source in sdk/ (no stale module from
    an older build is shipped)."""
    out = _run(
        "import edgerec, pathlib; p = pathlib.Path(edgerec.__file__).parent;"
        "print('\\n'.join(str(f.relative_to(p)) for f in p.rglob('*.py')"
        " if 'trainer' not in f.parts))"
    )
    sdk = Path(__file__).resolve().parents[2] / "sdk"
    installed = set(out.split())
    assert installed and installed == {str(f.relative_to(sdk)) for f in sdk.rglob("*.py")}
