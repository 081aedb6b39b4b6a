#!/usr/bin/env bash
# tools/setup-clang.sh
#
# The clang toolchain the instrumented builds use, from Debian 12: clang-14, its
# sanitizer and libFuzzer runtimes (libclang-rt-14-dev) and llvm-symbolizer (llvm-14,
# for symbolized sanitizer reports).  Installs what is missing with apt-get when run
# as root; otherwise names it and fails.  Returns at once when all is there.
# Used by `./run fuzz` and tests/test_clusterfuzzlite.py.
set -euo pipefail
log() { printf '[clang] %s\n' "$*" >&2; }

missing=()
if ! command -v clang-14 >/dev/null; then
  missing+=(clang-14 libclang-rt-14-dev)
elif [ ! -e "$(clang-14 -print-file-name=libclang_rt.fuzzer_no_main-x86_64.a)" ]; then
  missing+=(libclang-rt-14-dev)   # clang answers the bare name when it has no such file
fi
command -v llvm-symbolizer-14 >/dev/null || missing+=(llvm-14)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "missing: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})"
  exit 1
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
