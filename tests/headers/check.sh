#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every public header compiles alone, as C11 and as C++, with warnings as errors.
set -euo pipefail
inc="$(cd "$(dirname "$0")/../../include" && pwd)"
cc=${CC:-cc}
status=0
for h in "$inc"/dmahal/*.h; do
    name="dmahal/$(basename "$h")"
    if ! echo "#include <$name>" | $cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only \
            -I"$inc" -x c -; then
        echo "FAIL: $name as C11"; status=1
    fi
    if command -v c++ >/dev/null; then
        if ! echo "#include <$name>" | c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only \
                -I"$inc" -x c++ -; then
            echo "FAIL: $name as C++"; status=1
        fi
    else
        echo "skip: no C++ compiler for $name"
    fi
done
[ $status -eq 0 ] && echo "headers: each compiles alone as C11 and C++"
exit $status
