#!/bin/sh
# SPDX-License-Identifier: MIT
# The library's symbols, as a program linking it sees them:
#  - the shared library exports exactly the names src/dmahal.map lists, and the map lists
#    names only (no wildcards that would export a future helper by accident);
#  - every function the public headers declare is in the map;
#  - the static library defines, as globals, only dmahal_* / DMAHAL_* names, the internals'
#    dmahal__* and the Windows names of the map: nothing that collides with a program's own.
# usage: check.sh SOURCE_DIR LIBDMAHAL.so LIBDMAHAL.a
set -eu
src=$1 so=$2 ar=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);$/\1/p' "$src/src/dmahal.map" | grep -v '^local$' |
    sort -u >"$tmp/map"
if grep -E '^[[:space:]]+[A-Za-z0-9_]*[][*?][][A-Za-z0-9_*?]*;' "$src/src/dmahal.map" |
    grep -qvxE '[[:space:]]*[*];'; then
    echo "FAIL: src/dmahal.map has a wildcard outside 'local: *;'"
    status=1
fi
nm -D --defined-only "$so" | awk '{print $NF}' | grep -v '^_' | sort -u >"$tmp/so"
if ! cmp -s "$tmp/map" "$tmp/so"; then
    echo "FAIL: the shared library's exports differ from src/dmahal.map (< map only, > exported only):"
    diff "$tmp/map" "$tmp/so" | grep '^[<>]' || true
    status=1
fi
grep -hE '^[A-Za-z_][A-Za-z0-9_ *]*\bdmahal_[a-z0-9_]+\(' "$src"/include/dmahal/*.h | grep -v '^static' |
    grep -oE '^[A-Za-z_][A-Za-z0-9_ *]*\bdmahal_[a-z0-9_]+\(' |
    grep -oE 'dmahal_[a-z0-9_]+\($' | tr -d '(' | sort -u >"$tmp/hdr"
missing=$(comm -23 "$tmp/hdr" "$tmp/map")
if [ -n "$missing" ]; then
    echo "FAIL: declared in include/dmahal/ but not exported by src/dmahal.map:" $missing
    status=1
fi
nm -g --defined-only "$ar" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/ar"
# (AddressSanitizer adds an __odr_asan.NAME for each global NAME.)
stray=$(grep -vE '^(dmahal_|DMAHAL_|__odr_asan\.dmahal__)' "$tmp/ar" | comm -23 - "$tmp/map")
if [ -n "$stray" ]; then
    echo "FAIL: the static library defines globals outside its namespace (name them dmahal__*, or make them static):" $stray
    status=1
fi
[ "$status" = 0 ] && echo "symbols: $(wc -l <"$tmp/map") exported, $(wc -l <"$tmp/ar") globals in the archive, all in the namespace"
exit $status
