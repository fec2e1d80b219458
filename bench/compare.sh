#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compares this tree's benchmarks with another revision's on the same machine, in one run:
# builds both in Release, then alternates them ROUNDS times (base, this, this, base, ...) so
# that both see the same load, and prints each round's figures side by side with the median
# of the per-round ratios (this / base). A ratio near 1.00 is no change; noise on a shared
# machine is a few percent, more under load.
#   bench/compare.sh REV [ROUNDS] [BENCH...]      e.g. bench/compare.sh 3b3a850 5 bench_map
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/compare.sh REV [ROUNDS] [BENCH...]}
rounds=${2:-5}
shift $(($# < 2 ? $# : 2))
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(bench_map bench_common)

base=$(mktemp -d /tmp/dmahal-compare.XXXXXX)
trap 'git worktree remove --force "$base/src" >/dev/null 2>&1 || true; rm -rf "$base"' EXIT
git worktree add --detach "$base/src" "$rev" >/dev/null
for tree in "$base/src" .; do
    cmake -S "$tree" -B "$tree/build-compare" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        >/dev/null
    cmake --build "$tree/build-compare" -j2 --target "${benches[@]}" >/dev/null
done

for b in "${benches[@]}"; do
    for ((r = 0; r < rounds; r++)); do
        if ((r % 2)); then order=("." "$base/src"); else order=("$base/src" "."); fi
        for tree in "${order[@]}"; do
            tag=this
            [ "$tree" = . ] || tag=base
            "$tree/build-compare/bench/$b" --reps 5 >"$base/$b.$tag.$r" 2>/dev/null || true
        done
    done
    echo "== $b: $rev (base) against this tree, $rounds rounds; ratio = this / base (median)"
    python3 - "$base" "$b" "$rounds" <<'PY'
import re, statistics, sys
base, bench, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
fig = re.compile(r"([A-Za-z][\w+/.-]*(?: [A-Za-z][\w+/.-]*)*) ([0-9.]+) (ns|us|GB/s|pairs/us)\b")
per = re.compile(r"([0-9.]+) (ns) per (\w+)")
row = re.compile(r"^(\d+ (?:B|KiB|MiB|GiB))\s+([0-9.\s-]+)$")
def figures(path):
    out, section, cols = {}, "", []
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("size "):
            cols = line.split()[1:-1]  # the contestants; the last word is the unit
            continue
        m = row.match(line)
        if m and cols:
            for name, v in zip(cols, m.group(2).split()):
                out["%s | %s %s (ns/op)" % (section, m.group(1), name)] = float(v)
            continue
        if line and not line[0].isspace():
            section = line.strip()[:48]
        for m in fig.finditer(line):
            out["%s | %s (%s)" % (section, m.group(1), m.group(3))] = float(m.group(2))
        for m in per.finditer(line):
            out["%s | ns per %s" % (section, m.group(3))] = float(m.group(1))
    return out
ratios = {}
for r in range(rounds):
    b, t = figures("%s/%s.base.%d" % (base, bench, r)), figures("%s/%s.this.%d" % (base, bench, r))
    for k in b:
        if k in t and b[k] > 0:
            ratios.setdefault(k, []).append(t[k] / b[k])
for k in sorted(ratios):
    print("  %-86s %5.2fx" % (k, statistics.median(ratios[k])))
PY
done
