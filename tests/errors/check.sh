#!/bin/sh
# SPDX-License-Identifier: MIT
# Every error code the library can return has a name: each -ECODE written in src/ (what the
# code returns) or in include/dmahal/ (what the headers say it returns) is an errno, and
# dmahal_strerror() names it rather than answering "unknown error".
# usage: check.sh SOURCE_DIR LIBDMAHAL.a [CFLAGS...] (the library's sanitizer flags, if any)
set -eu
src=$1 ar=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$src"
grep -rnoE -- '(^|[^A-Za-z0-9_])-E[A-Z0-9]{2,}\b' src include/dmahal |
    sed -E 's/^([^:]*:[0-9]+):.*-(E[A-Z0-9]+)$/\2 \1/' | sort -u -k1,1 >"$tmp/codes"
[ -s "$tmp/codes" ] || { echo "FAIL: no error codes found under $src/src"; exit 1; }
{
    cat <<'HEAD'
#include <dmahal/dmahal.h>
#include <errno.h>
#include <string.h>
static int bad;
static void check(int code, const char *name, const char *where)
{
    const char *s = dmahal_strerror(-code);

    if (!strcmp(s, "unknown error")) {
        printf("FAIL: -%s (%s) is not named by dmahal_strerror\n", name, where);
        bad = 1;
    } else {
        printf("-%s: %s\n", name, s);
    }
}
#define NOT_ERRNO(name, where)                                                                  \
    do {                                                                                        \
        printf("FAIL: %s (%s) is not an errno\n", name, where);                                 \
        bad = 1;                                                                                \
    } while (0)
int main(void)
{
HEAD
    while read -r code where; do
        printf '#ifdef %s\n    check(%s, "%s", "%s");\n#else\n    NOT_ERRNO("%s", "%s");\n#endif\n' \
            "$code" "$code" "$code" "$where" "$code" "$where"
    done <"$tmp/codes"
    printf '    return bad;\n}\n'
} >"$tmp/codes.c"
${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Werror -Iinclude "$@" -o "$tmp/names" "$tmp/codes.c" "$ar" -pthread
"$tmp/names"
echo "errors: $(wc -l <"$tmp/codes") codes, each named by dmahal_strerror"
