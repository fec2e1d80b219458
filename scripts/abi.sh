#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The library's ABI against the one recorded in the tree (abi/libdmahal.so.abi), with
# libabigail's abidw and abidiff (Debian: abigail-tools). docs/ABI.md says what is a break.
#   scripts/abi.sh check [BUILD_DIR]    fail if a function or variable of the record was
#                                       removed or changed (its types included); functions
#                                       added since are fine, and listed
#   scripts/abi.sh update [BUILD_DIR]   record the built library's ABI (an intended change:
#                                       commit abi/libdmahal.so.abi with it)
# BUILD_DIR (default build/) holds a build with debug information (RelWithDebInfo, the
# default, or Debug). Only the types of the public headers (include/dmahal/) are compared.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-check}"
build="${2:-$root/build}"
record="$root/abi/libdmahal.so.abi"
# The library the build links now (an older version's file may still lie beside it).
lib=$(readlink -f "$build/libdmahal.so" 2>/dev/null || true)
[ -f "$lib" ] || { echo "abi: no libdmahal.so in $build: build it first" >&2; exit 2; }
command -v abidiff >/dev/null || { echo "abi: abidiff missing: apt-get install abigail-tools" >&2; exit 2; }

case "$cmd" in
update)
    mkdir -p "$(dirname "$record")"
    abidw --headers-dir "$root/include/dmahal" --no-corpus-path --no-comp-dir-path --short-locs \
        --type-id-style hash --out-file "$record" "$lib"
    echo "abi: recorded $(grep -c '<elf-symbol ' "$record") symbols of $(basename "$lib") in abi/$(basename "$record")"
    ;;
check)
    [ -f "$record" ] || { echo "abi: no record $record: scripts/abi.sh update" >&2; exit 2; }
    out=$(mktemp) now=$(mktemp)
    trap 'rm -f "$out" "$now"' EXIT
    rc=0
    abidiff --fail-no-debug-info --headers-dir2 "$root/include/dmahal" \
        "$record" "$lib" >"$out" 2>&1 || rc=$?
    # Bits of abidiff's status: 1 error, 2 usage, 4 a change, 8 an incompatible change.
    if [ $((rc & 3)) -ne 0 ]; then
        cat "$out"
        echo "abi: abidiff failed (status $rc)"
        exit 1
    fi
    # A change to what the record holds is a break; an addition is not.
    broken=$(grep -E 'summary:' "$out" | grep -vE ' 0 Removed(,| )' || true)
    broken+=$(grep -E 'summary:' "$out" | grep -E '[1-9][0-9]* Changed' || true)
    # abidiff reports a changed type once, where it first meets it; when that is inside an
    # opaque object, which the headers filter hides, the change goes unsaid. Every public
    # struct's and union's layout is therefore compared on its own too.
    abidw --headers-dir "$root/include/dmahal" --no-corpus-path --out-file "$now" "$lib"
    python3 "$root/scripts/abi_layouts.py" "$record" "$now" >>"$out" || broken+=" layouts"
    if [ -n "$broken" ] || [ $((rc & 8)) -ne 0 ]; then
        cat "$out"
        echo
        echo "abi: FAIL: the ABI recorded in abi/libdmahal.so.abi changed (above). If it is meant"
        echo "     to, follow docs/ABI.md (version bump) and record it: scripts/abi.sh update"
        exit 1
    fi
    added=$(sed -n 's/.*, \([0-9]*\) Added functions.*/\1/p' "$out" | head -1)
    echo "abi: no function or variable of the record removed or changed; ${added:-0} functions added since it was made"
    ;;
*)
    echo "usage: scripts/abi.sh check|update [BUILD_DIR]" >&2
    exit 2
    ;;
esac
