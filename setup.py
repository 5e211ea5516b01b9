"""Build script: compiles the Cython hashing extension from native/.

Everything declarative lives in pyproject.toml; this file exists only because the
extension needs code. Set EDGEREC_NO_NATIVE=1 to build without it (the SDK then uses its
pure-Python twin, bit-identical and slower).
"""

import os

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("EDGEREC_NO_NATIVE") != "1":
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                "edgerec._hashing_native",
                ["native/hashing.pyx"],
                extra_compile_args=["-O3"],
            )
        ],
    )

setup(ext_modules=ext_modules)
