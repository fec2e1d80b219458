#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the build into a scratch prefix and builds a program against it with pkg-config,
# linked statically and dynamically; both must run.
set -euo pipefail
build="$1"
src="$(cd "$(dirname "$0")" && pwd)"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
pcdir=$(dirname "$(find "$prefix" -name dmahal.pc)")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_PATH="$pcdir"
# The .pc file names the prefix it was configured for; point it at the scratch one.
pkgconf() { pkg-config --define-variable=prefix="$prefix" "$@"; }
for f in include/dmahal/dmahal.h include/dmahal/device.h bin/dmahal; do
    [ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
cc=${CC:-cc}
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer" "$src/consumer.c" $(pkgconf --cflags --libs dmahal)
LD_LIBRARY_PATH="$libdir" "$prefix/consumer"
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer-static" "$src/consumer.c" \
    $(pkgconf --cflags dmahal) "$libdir/libdmahal.a" -pthread
"$prefix/consumer-static"
"$prefix/bin/dmahal" help >/dev/null 2>&1 || [ $? -eq 2 ]
echo "install: headers, libraries, tool and pkg-config file work"
