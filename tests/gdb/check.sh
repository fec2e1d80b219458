#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The gdb `dma` command (tools/gdb/dmahal.py) on a process stopped mid-run: it must find the
# buffers the program says it has, from the process's memory alone. Then `dmahal dma` shows
# the same of a core file the stopped process leaves (gcore), and of the process running
# (--pid), when a TOOL is given.
#   check.sh GDB TARGET DMAHAL_PY [TOOL]
set -euo pipefail
gdb=$1 target=$2 py=$3 tool=${4:-}
# gcore of the stopped process, for `dmahal dma --core`: about 1 MiB (the simulated RAM is
# left out of cores); never under sanitizers, whose shadow memory would be in it.
out=$(mktemp) tmp=$(mktemp -d)
trap 'rm -rf "$out" "$tmp"; [ -z "${live:-}" ] || kill "$live" 2>/dev/null || true' EXIT

gcore=()
[ -z "$tool" ] || gcore=(-ex "gcore $tmp/core")
"$gdb" -nx -batch -ex "source $py" -ex "break dmahal_gdb_stop" -ex run -ex "echo ==all\n" \
    -ex "dma" -ex "echo ==common\n" -ex "dma 0 0xf" -ex "echo ==one\n" -ex "dma #1 2" \
    "${gcore[@]}" -ex "echo ==end\n" -ex kill "$target" >"$out" 2>&1 || true
if [ -n "$tool" ]; then
    echo "==core" >>"$out"
    DMAHAL_GDB_SCRIPT="$py" DMAHAL_GDB="$gdb" "$tool" dma --core "$tmp/core" "$target" 0 0xf \
        >>"$out" 2>&1 || echo "dmahal dma --core failed: $?" >>"$out"
    # A process that waits at its stop for the tool to look at it.
    DMAHAL_GDB_TARGET_WAIT=1 "$target" >"$tmp/live.out" 2>&1 &
    live=$!
    for _ in $(seq 100); do grep -q '^waiting' "$tmp/live.out" && break; sleep 0.1; done
    echo "==pid" >>"$out"
    DMAHAL_GDB_SCRIPT="$py" DMAHAL_GDB="$gdb" "$tool" dma --pid "$live" 0 2 \
        >>"$out" 2>&1 || echo "dmahal dma --pid failed: $?" >>"$out"
    echo "==end" >>"$out"
fi

fail=0
want() { # want SECTION TEXT: TEXT appears in SECTION of the output
    if ! sed -n "/^==$1\$/,/^==/p" "$out" | grep -qF -- "$2"; then
        echo "check.sh: section $1 lacks: $2" >&2
        fail=1
    fi
}
absent() {
    if sed -n "/^==$1\$/,/^==/p" "$out" | grep -qF -- "$2"; then
        echo "check.sh: section $1 should not show: $2" >&2
        fail=1
    fi
}

# What the program printed before it stopped.
plain=$(sed -n 's/^plain \(0x[0-9a-f]*\) id 1$/\1/p' "$out")
la100=$(sed -n 's/^buffer la \(0x[0-9a-f]*\) len 100$/\1/p' "$out")
la5000=$(sed -n 's/^buffer la \(0x[0-9a-f]*\) len 5000$/\1/p' "$out")
la64=$(sed -n 's/^verified la \(0x[0-9a-f]*\) len 64$/\1/p' "$out")
laq=$(sed -n 's/^quarantined la \(0x[0-9a-f]*\) len 300$/\1/p' "$out")
lamap=$(sed -n 's/^mapped la \(0x[0-9a-f]*\) len [0-9]*$/\1/p' "$out")
if [ -z "$plain" ] || [ -z "$la100" ] || [ -z "$la64" ] || [ -z "$laq" ]; then
    echo "check.sh: the program did not run to its stop" >&2
    cat "$out" >&2
    exit 1
fi

want all "platform 0x"
want all "sim:iommu=on"
want all "device edu"
want all "adapter $plain  id 1  32-bit"
want all "common buffers: 2, 5100 bytes"
want all "common buffers: 1, 64 bytes (verified)"
want all "verifier: on, 2 allocations, 1 frees, 1 buffers in quarantine"
want all "quarantined: 300-byte buffer la $laq"
absent all "buffer va"

want common "la $la100-"
want common "len 100"
want common "la $la5000-"
want common "la $la64-"
want common "OVERRUN: 3..3 byte(s) past the end changed"
want common "allocated by:"
want common " main+"
want common "gdb_target.c:"
want common "description: addr_bits 32, max_segments 1"
want common "alignment 64"
want common "map registers: "
want common "to-device mapping #1 of 8192 bytes"
want common "la $lamap len "
want common "scatter/gather lists: 1 (verified)"

if [ -n "$tool" ]; then
    want core "device edu"
    want core "common buffers: 2, 5100 bytes"
    want core "la $la64-"
    # The simulated RAM is not in a core file (MADV_DONTDUMP): guard zones cannot be read.
    want core "guards unreadable"
    want core "to-device mapping #1 of 8192 bytes"
    want pid "device edu"
    want pid "sim:iommu=on"
    want pid "common buffers: 1, 64 bytes (verified)"
fi

want one "adapter $plain  id 1"
want one "la $la100-"
absent one "(verified)"

if [ "$fail" != 0 ]; then
    echo "---- gdb said:" >&2
    cat "$out" >&2
    exit 1
fi
echo "check.sh: the dma command found every buffer"
