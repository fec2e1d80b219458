#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds a program against it with pkg-config,
# linked statically and dynamically; both must run.
set -euo pipefail
build="$1"
src="$(cd "$(dirname "$0")" && pwd)"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name dmahal.pc)")
export PKG_CONFIG_PATH="$libdir"
for f in include/dmahal/dmahal.h include/dmahal/device.h bin/dmahal; do
    [ -e "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
cc=${CC:-cc}
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer" "$src/consumer.c" $(pkg-config --cflags --libs dmahal)
LD_LIBRARY_PATH="$libdir" "$prefix/consumer"
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Werror -o "$prefix/consumer-static" "$src/consumer.c" \
    $(pkg-config --cflags dmahal) "$libdir/libdmahal.a" -pthread
"$prefix/consumer-static"
"$prefix/bin/dmahal" help >/dev/null 2>&1 || [ $? -eq 2 ]
echo "install: headers, libraries, tool and pkg-config file work"
