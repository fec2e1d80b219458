#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The installed tree works for a program outside it, three ways, each built and run:
#  1. installed with a prefix chosen at install time (not the configured one), a program
#     built with pkg-config, linked dynamically and statically;
#  2. the same tree through the CMake package: find_package(dmahal CONFIG), the imported
#     targets dmahal::dmahal and dmahal::dmahal_static; a newer MAJOR is refused;
#  3. staged with DESTDIR, then moved elsewhere: pkg-config still finds it (the .pc file is
#     relocatable), and so does the CMake package.
# Also: the tool, the man pages and the gdb extension are installed, and gdb loads it.
# usage: check.sh BUILD_DIR
set -euo pipefail
build="$1"
src="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
fail() { echo "FAIL: $*"; exit 1; }

# Builds consumer.c against the tree at $1 with pkg-config and runs it both ways.
with_pkgconfig() {
    local prefix="$1" pcdir libdir
    pcdir=$(dirname "$(find "$prefix" -name dmahal.pc)")
    libdir=$(dirname "$pcdir")
    grep -q '^prefix=${pcfiledir}' "$pcdir/dmahal.pc" || fail "dmahal.pc is not relocatable"
    # shellcheck disable=SC2046
    $cc -std=c11 -Wall -Werror -o "$tmp/consumer" "$src/consumer.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs dmahal)
    LD_LIBRARY_PATH="$libdir" "$tmp/consumer" >/dev/null || fail "pkg-config, shared: $prefix"
    # shellcheck disable=SC2046
    $cc -std=c11 -Wall -Werror -o "$tmp/consumer-static" "$src/consumer.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs --static dmahal | sed 's/-ldmahal/-l:libdmahal.a/')
    "$tmp/consumer-static" >/dev/null || fail "pkg-config, static: $prefix"
    rm -f "$tmp/consumer" "$tmp/consumer-static"
}

# Builds consumer.c with the CMake package of the tree at $1 and runs both programs.
with_cmake() {
    local prefix="$1" want="${2:-}" out="$tmp/cmake-build"
    rm -rf "$out"
    cmake -S "$src/cmake" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_SOURCE="$src/consumer.c" \
        -DDMAHAL_WANT="$want" >"$tmp/cmake.log" 2>&1 || return 1
    cmake --build "$out" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake build: $prefix"; }
    "$out/consumer_shared" >/dev/null || fail "CMake package, dmahal::dmahal: $prefix"
    "$out/consumer_static" >/dev/null || fail "CMake package, dmahal::dmahal_static: $prefix"
    # The shared one really is the shared library.
    ldd "$out/consumer_shared" >"$tmp/ldd"
    grep -q 'libdmahal\.so' "$tmp/ldd" || fail "dmahal::dmahal is not the shared library"
}

# 1. A prefix given at install time.
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/dmahal/dmahal.h include/dmahal/device.h bin/dmahal share/dmahal/gdb/dmahal.py; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
for f in dmahal.1 dmahal.3; do
    [ -n "$(find "$prefix/share/man" -name "$f*" 2>/dev/null)" ] || fail "man page not installed: $f"
done
with_pkgconfig "$prefix"
"$prefix/bin/dmahal" help >/dev/null 2>&1 || [ $? -eq 2 ]
echo "install --prefix: pkg-config, shared and static: ok"

# 2. The CMake package, and its version rule (same MAJOR, at least the version asked for).
version=$("$prefix/bin/dmahal" --version | awk '{print $2}')
major=${version%%.*}
with_cmake "$prefix" || { cat "$tmp/cmake.log"; fail "find_package(dmahal CONFIG)"; }
with_cmake "$prefix" "$major.0" || { cat "$tmp/cmake.log"; fail "find_package(dmahal $major.0)"; }
if with_cmake "$prefix" "$((major + 1)).0"; then fail "find_package(dmahal $((major + 1)).0) accepted $version"; fi
echo "CMake package: dmahal::dmahal, dmahal::dmahal_static, version $version: ok"

# 3. DESTDIR staging, then the staged tree moved somewhere else.
DESTDIR="$tmp/stage" cmake --install "$build" >/dev/null
staged=$(dirname "$(dirname "$(find "$tmp/stage" -path '*/include/dmahal' -type d)")")
mv "$staged" "$tmp/moved"
with_pkgconfig "$tmp/moved"
with_cmake "$tmp/moved" || { cat "$tmp/cmake.log"; fail "CMake package after a move"; }
echo "DESTDIR staging, moved: pkg-config and CMake package: ok"

# The gdb extension loads from where it is installed.
if command -v gdb >/dev/null; then
    gdb -nx -batch -ex "source $prefix/share/dmahal/gdb/dmahal.py" -ex "help dma" >"$tmp/gdb" 2>&1
    grep -q 'dmahal' "$tmp/gdb" || fail "gdb cannot load $prefix/share/dmahal/gdb/dmahal.py"
    echo "gdb extension: loads from share/dmahal/gdb"
fi
