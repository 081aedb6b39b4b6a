#!/bin/bash -eu
# wdcore's ClusterFuzzLite / OSS-Fuzz build (docs/fuzzing.md, "Scale-out").  The
# builder runs it as `bash -eux $SRC/build.sh` in $SRC/wdcore, with $CC and $CFLAGS
# carrying the sanitizer and -fsanitize=fuzzer-no-link, and $OUT for the products.
# tests/test_clusterfuzzlite.py runs it the same way outside docker.
cd "$SRC/wdcore"

# The compiled core, built by the builder's compiler with the builder's flags alone
# (setup.py's oss-fuzz mode adds none); objects of an earlier build with other flags
# must not be reused.
rm -rf build/oss-fuzz
WDCORE_SANITIZE=oss-fuzz LDSHARED="$CC -shared" pip3 install --no-deps .

# wdcore imports its compiled modules and their Python twins by name
# (wdcore._select.COMPILED_MODULES), which PyInstaller cannot follow: name them all.
hidden=()
for module in $(WDCORE_NO_EXTENSIONS=1 python3 -c \
    'from wdcore._select import COMPILED_MODULES as m; print(*m, *m.values())'); do
  hidden+=(--hidden-import "$module")
done

for target in ops restore; do
  # one self-contained executable per target, packaged by the builder's own script;
  # the repository root is on the path for `fuzz.harness`
  compile_python_fuzzer "fuzz/fuzz_$target.py" --paths "$SRC/wdcore" "${hidden[@]}" \
    --runtime-hook .clusterfuzzlite/require_compiled_core.py
  # the seed corpus, flat, and the input length ./run fuzz uses
  python3 -m zipfile -c "$OUT/fuzz_${target}_seed_corpus.zip" "fuzz/corpus/$target"/*
  printf '[libfuzzer]\nmax_len = 512\n' > "$OUT/fuzz_$target.options"
done
