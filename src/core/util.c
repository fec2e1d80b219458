/* SPDX-License-Identifier: MIT */
/* util.c - parsing shared by the platforms' spec strings. */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dmahal__parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    *out = 0;
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno)
        return -EINVAL;
    switch (*end) {
    case 'T':
    case 't':
        shift = 40;
        end++;
        break;
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    case 'M':
    case 'm':
        shift = 20;
        end++;
        break;
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0')
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int dmahal__next_kv(char **cursor, char **key, char **val)
{
    char *s = *cursor, *comma, *eq;

    *key = *val = NULL;
    if (!s || !*s)
        return 0;
    comma = strchr(s, ',');
    if (comma) {
        *comma = '\0';
        *cursor = comma + 1;
    } else {
        *cursor = s + strlen(s);
    }
    eq = strchr(s, '=');
    if (eq) {
        *eq = '\0';
        *val = eq + 1;
    }
    *key = s;
    return 1;
}
