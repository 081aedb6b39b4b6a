#!/usr/bin/env bash
# tools/build-asan-with-fuzzer.sh OUT.so
#
# One shared library holding clang's AddressSanitizer runtime (UBSan handlers
# included) and libFuzzer without its main(), to LD_PRELOAD into the Python that runs
# an atheris harness.  The compiled core, built with
# -fsanitize=fuzzer-no-link,address,undefined, then reports its coverage edges to
# libFuzzer instead of to the sanitizer runtime's weak stubs.  (atheris 3.0's wheel
# ships one too, but built from another LLVM; this one matches the clang-14 that
# instruments the core.  OSS-Fuzz's builder preloads the same kind of library, as
# $OUT/sanitizer_with_fuzzer.so; tests/test_clusterfuzzlite.py builds it here.)
# Needs clang-14 and libclang-rt-14-dev (Debian 12).
set -euo pipefail
OUT="${1:?usage: build-asan-with-fuzzer.sh OUT.so}"
CLANG=${CLANG:-clang-14}
rt=$(dirname "$("$CLANG" -print-file-name=libclang_rt.asan-x86_64.a)")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && ar x "$rt/libclang_rt.asan-x86_64.a" && rm -f asan_preinit.cpp.o)  # .preinit_array is not allowed in a DSO
"$CLANG" -shared -o "$OUT" "$work"/*.o \
  -Wl,--whole-archive "$rt/libclang_rt.asan_cxx-x86_64.a" "$rt/libclang_rt.fuzzer_no_main-x86_64.a" \
  -Wl,--no-whole-archive -lpthread -ldl -lrt -lm -lstdc++
echo "$OUT"
