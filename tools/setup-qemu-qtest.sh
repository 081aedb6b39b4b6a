#!/usr/bin/env bash
# tools/setup-qemu-qtest.sh [DIR]
#
# Makes a QEMU that the conformance tests can drive over qtest: Debian 12's
# qemu-system-x86 (QEMU 7.2) plus its qtest accelerator module, which Debian leaves
# out of the package.  The module is compiled from the very source package the
# installed binary came from, configured with the same package-version string, so
# that its build stamp is the one the binary accepts (QEMU refuses modules with any
# other stamp).  About a minute on 2 cores; later calls find the cached module and
# return at once.
#
# DIR defaults to $WDCORE_QEMU_DIR, else ~/.cache/wdcore/qemu-qtest.  Afterwards:
#   QEMU_MODULE_DIR=DIR qemu-system-x86_64 -accel qtest ...
# Needs root (apt-get) unless qemu-system-x86 and the build tools are already there.
set -euo pipefail
DIR="${1:-${WDCORE_QEMU_DIR:-$HOME/.cache/wdcore/qemu-qtest}}"
MODULE="$DIR/accel-qtest-x86_64.so"
log() { printf '[qemu-qtest] %s\n' "$*" >&2; }

stamp_of_binary() { grep -ao 'qemu_stamp_[0-9a-f_]*' "$(command -v qemu-system-x86_64)" | head -1; }
stamp_of_module() { nm -D "$1" 2>/dev/null | grep -o 'qemu_stamp_[0-9a-f_]*' | head -1; }

if [ -f "$MODULE" ] && command -v qemu-system-x86_64 >/dev/null && command -v nm >/dev/null \
   && [ "$(stamp_of_binary)" = "$(stamp_of_module "$MODULE")" ]; then
  log "cached: $MODULE"
  exit 0
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else log "needs root for: $*"; exit 1; fi; }
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends qemu-system-x86 dpkg-dev meson \
  ninja-build pkg-config libglib2.0-dev libpixman-1-dev libfdt-dev binutils gcc >/dev/null

# source entries for the archives apt already uses, so that `apt-get source` works
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    grep -q '^Types: deb$' "$f" && sed 's/^Types: deb$/Types: deb-src/' "$f" && echo
  done > /tmp/wdcore-src.sources.$$ || true
  [ -s /tmp/wdcore-src.sources.$$ ] && as_root mv /tmp/wdcore-src.sources.$$ /etc/apt/sources.list.d/wdcore-src.sources
  rm -f /tmp/wdcore-src.sources.$$
  if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /tmp/wdcore-src.list.$$
    as_root mv /tmp/wdcore-src.list.$$ /etc/apt/sources.list.d/wdcore-src.list
  fi
  as_root apt-get update -qq
fi

src_version=$(dpkg-query -W -f='${source:Version}' qemu-system-x86)
pkg_version=$(qemu-system-x86_64 --version | sed -n '1s/.*(\(.*\)).*/\1/p')
log "building the qtest accelerator for QEMU $src_version ('$pkg_version')"
work=$(mktemp -d /tmp/wdcore-qemu-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq "qemu=$src_version" >/dev/null 2>&1)
tree=$(find "$work" -maxdepth 1 -type d -name 'qemu-*' | head -1)
mkdir "$tree/build"
(cd "$tree/build" && ../configure --target-list=x86_64-softmmu --enable-modules \
   --with-pkgversion="$pkg_version" --without-default-features --disable-docs \
   --disable-tools --disable-user --prefix=/usr --libdir=/usr/lib/x86_64-linux-gnu \
   --with-git-submodules=ignore >configure.log 2>&1) || { tail -30 "$tree/build/configure.log" >&2; exit 1; }
(cd "$tree/build" && ninja accel-qtest-x86_64.so >ninja.log 2>&1) || { tail -30 "$tree/build/ninja.log" >&2; exit 1; }
built="$tree/build/accel-qtest-x86_64.so"
if [ "$(stamp_of_binary)" != "$(stamp_of_module "$built")" ]; then
  log "build stamp $(stamp_of_module "$built") does not match the binary's $(stamp_of_binary)"; exit 1
fi
mkdir -p "$DIR"
cp "$built" "$MODULE.tmp" && mv "$MODULE.tmp" "$MODULE"

# check: the accelerator loads and qtest answers (QEMU ignores EOF on -qtest stdio,
# so timeout ends it)
reply=$(printf 'inl 0xcfc\n' | QEMU_MODULE_DIR="$DIR" timeout 5 qemu-system-x86_64 \
  -machine pc,pit=off -accel qtest -qtest stdio -qtest-log none -display none -nodefaults \
  -device ib700 -device i6300esb 2>&1 | head -1 || true)
[ "${reply%% *}" = "OK" ] || { log "qtest check failed: '$reply'"; exit 1; }
log "ready: $MODULE ($(stamp_of_module "$MODULE"))"
