#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Static analysis of the library (src/) with cppcheck; fails on any finding that is not in the
# reviewed baseline, scripts/analyze-baseline.txt ("file: check-id", line numbers left out so
# that edits elsewhere in a file do not disturb it). A new finding is fixed, or, when it is
# wrong, added to the baseline with a line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out" "$out.new"' EXIT
cppcheck --quiet --enable=warning,performance,portability --std=c11 --inline-suppr \
    -D__GNUC__ -D_GNU_SOURCE -DDMAHAL_VERIFIER -DDMAHAL_HAVE_VFIO -I include -I src \
    --template='{file}: {id}: {line}: {message}' src 2>"$out" >/dev/null || true
cut -d: -f1,2 "$out" | sort -u >"$out.new"
new=$(grep -v '^#' scripts/analyze-baseline.txt | grep -v '^$' | cut -d: -f1,2 | sort -u |
    comm -13 - "$out.new")
if [ -n "$new" ]; then
    echo "analyze: findings not in scripts/analyze-baseline.txt:"
    while IFS= read -r key; do grep -F "$key:" "$out"; done <<<"$new"
    exit 1
fi
echo "analyze: cppcheck over src/, no finding outside the baseline ($(wc -l <"$out") in all)"
