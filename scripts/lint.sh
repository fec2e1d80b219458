#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The tree's habits, checked: every C/C++ file as .clang-format lays it out, every include
# within its layer's rules (scripts/check-layers.py), every file with its license line, and no
# static-analysis finding outside the reviewed baseline (scripts/analyze.sh, cppcheck).
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.cpp')
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/dmahal-format.$$; then
    grep -E '^[^ ].*: error' /tmp/dmahal-format.$$ | cut -d: -f1 | sort -u |
        sed 's/^/not formatted (clang-format -i): /'
    status=1
else
    echo "format: ${#files[@]} files as .clang-format lays them out"
fi
rm -f /tmp/dmahal-format.$$
python3 scripts/check-layers.py || status=1
python3 scripts/spdx.py || status=1
scripts/analyze.sh || status=1
exit $status
