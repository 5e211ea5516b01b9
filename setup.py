"""Build script: compiles the Cython hashing extension from native/.

Everything declarative lives in pyproject.toml; this file exists only because the
extension needs code. Set EDGEREC_PURE_PYTHON=1 to build without it (the SDK then uses its
pure-Python twin, bit-identical and slower): the same variable that forces the twin at run
time. EDGEREC_NO_NATIVE=1, its old name, still works for one release.
"""

import os

from setuptools import Extension, setup

_ON = {"1", "true", "yes", "on"}
pure = os.environ.get("EDGEREC_PURE_PYTHON", "").strip().lower() in _ON
if os.environ.get("EDGEREC_NO_NATIVE", "").strip().lower() in _ON:  # deprecated name
    print("setup.py: EDGEREC_NO_NATIVE is deprecated; use EDGEREC_PURE_PYTHON=1")
    pure = True

ext_modules = []
if not pure:
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                "edgerec.features._hashing_native",
                ["native/hashing.pyx"],
                extra_compile_args=["-O3"],
            )
        ],
    )

setup(ext_modules=ext_modules)
