"""Builds the compiled core.  Metadata lives in pyproject.toml.

WDCORE_NO_EXTENSIONS=1 at build time skips the compiled core (pure-Python install).
WDCORE_CFLAGS adds compiler flags (sanitizer builds, debugging).
"""
import os
import shlex

from setuptools import Extension, setup

# Every compiled module of the core; tests/test_packaging.py checks this list
# against wdcore._select.COMPILED_MODULES.
CORE_MODULES = ["wdcore._core", "wdcore._ib700", "wdcore._i6300esb", "wdcore._machine"]

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}


def extensions():
    if os.environ.get("WDCORE_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    from Cython.Build import cythonize

    cflags = ["-O2"] + shlex.split(os.environ.get("WDCORE_CFLAGS", ""))
    exts = [
        Extension(name, [os.path.join("src", *name.split(".")) + ".pyx"],
                  extra_compile_args=cflags)
        for name in CORE_MODULES
    ]
    return cythonize(exts, compiler_directives=DIRECTIVES,
                     include_path=["src"], build_dir="build/cython")


setup(ext_modules=extensions())
