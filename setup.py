"""Builds the compiled core.  Metadata lives in pyproject.toml.

WDCORE_NO_EXTENSIONS=1 at build time skips the compiled core (pure-Python install).
WDCORE_SANITIZE selects an instrumented build (docs/fuzzing.md):
  fuzzer  clang: -fsanitize=fuzzer-no-link,address,undefined, so that libFuzzer (through
          atheris) sees the edges of the compiled core and ASan/UBSan check it;
          build with CC=clang-14 LDSHARED="clang-14 -shared" (./run fuzz does)
  gcc     gcc: -fsanitize=address,undefined
  oss-fuzz  no flags of setup.py's own: the builder's $CC and $CFLAGS (sanitizer and
          -fsanitize=fuzzer-no-link), which distutils applies to compiling and linking,
          are the whole build (.clusterfuzzlite/build.sh, with LDSHARED="$CC -shared")
WDCORE_CFLAGS adds compiler flags.
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

    cflags = ["-O2"]
    ldflags = []
    sanitize = os.environ.get("WDCORE_SANITIZE", "")
    if sanitize == "fuzzer":
        cflags = ["-O1", "-g", "-fno-omit-frame-pointer",
                  "-fsanitize=fuzzer-no-link,address,undefined", "-fno-sanitize-recover=undefined"]
        ldflags = ["-fsanitize=address,undefined"]  # runtime: preloaded (docs/fuzzing.md)
    elif sanitize == "gcc":
        cflags = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=undefined"]
        ldflags = ["-fsanitize=address,undefined"]
    elif sanitize == "oss-fuzz":
        cflags = []  # not even -O2: the builder's -O1 and sanitizers stand alone
    elif sanitize:
        raise SystemExit(f"WDCORE_SANITIZE must be 'fuzzer', 'gcc' or 'oss-fuzz', not {sanitize!r}")
    cflags += shlex.split(os.environ.get("WDCORE_CFLAGS", ""))
    exts = [
        Extension(name, [os.path.join("src", *name.split(".")) + ".pyx"],
                  extra_compile_args=cflags, extra_link_args=ldflags,
                  # the snapshot checksum is zlib's crc32 (zlib1g-dev comes with python3-dev)
                  libraries=["z"] if name == "wdcore._core" else [])
        for name in CORE_MODULES
    ]
    return cythonize(exts, compiler_directives=DIRECTIVES,
                     include_path=["src"], build_dir="build/cython")


# an instrumented build keeps its objects apart from the normal build's
_SANITIZE = os.environ.get("WDCORE_SANITIZE", "")
setup(ext_modules=extensions(),
      options={"build": {"build_base": f"build/{_SANITIZE}" if _SANITIZE else "build"}})
