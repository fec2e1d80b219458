/* SPDX-License-Identifier: MIT */
/*
 * range.c - free address ranges as a sorted array of extents.
 *
 * The sets it manages stay small (simulated RAM, IOVA windows, arenas sub-allocated by the
 * common-buffer allocator), so a sorted array beats a tree: lookups are a binary search and
 * the allocation scan walks down from the top, where the high-first policy finds room first.
 */
#include "range.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void dmahal__range_init(struct dmahal__range *r)
{
    memset(r, 0, sizeof(*r));
}

void dmahal__range_fini(struct dmahal__range *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Index of the first extent whose end is > addr (the one containing addr, or after it). */
static size_t find(const struct dmahal__range *r, uint64_t addr)
{
    size_t lo = 0, hi = r->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (r->v[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int reserve(struct dmahal__range *r, size_t extra)
{
    size_t cap;
    struct dmahal__extent *v;

    if (r->n + extra <= r->cap)
        return 0;
    cap = r->cap ? r->cap * 2 : 16;
    while (cap < r->n + extra)
        cap *= 2;
    v = realloc(r->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    r->v = v;
    r->cap = cap;
    return 0;
}

static void insert_at(struct dmahal__range *r, size_t i, uint64_t start, uint64_t end)
{
    memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(r->v[0]));
    r->v[i] = (struct dmahal__extent){start, end};
    r->n++;
}

static void remove_at(struct dmahal__range *r, size_t i)
{
    memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
    r->n--;
}

int dmahal__range_add(struct dmahal__range *r, uint64_t start, uint64_t len)
{
    uint64_t end = start + len;
    size_t i;
    bool merge_prev, merge_next;

    if (len == 0 || end < start)
        return -EINVAL;
    i = find(r, start);
    if (i < r->n && r->v[i].start < end)
        return -EEXIST;
    merge_prev = i > 0 && r->v[i - 1].end == start;
    merge_next = i < r->n && r->v[i].start == end;
    if (merge_prev && merge_next) {
        r->v[i - 1].end = r->v[i].end;
        remove_at(r, i);
    } else if (merge_prev) {
        r->v[i - 1].end = end;
    } else if (merge_next) {
        r->v[i].start = start;
    } else {
        if (reserve(r, 1))
            return -ENOMEM;
        insert_at(r, i, start, end);
    }
    r->free_bytes += len;
    return 0;
}

/* Removes [start, end) from extent i, which contains it. */
static int carve(struct dmahal__range *r, size_t i, uint64_t start, uint64_t end)
{
    struct dmahal__extent *e = &r->v[i];

    if (e->start == start && e->end == end) {
        remove_at(r, i);
    } else if (e->start == start) {
        e->start = end;
    } else if (e->end == end) {
        e->end = start;
    } else {
        uint64_t tail = e->end;

        if (reserve(r, 1))
            return -ENOMEM;
        r->v[i].end = start;
        insert_at(r, i + 1, end, tail);
    }
    r->free_bytes -= end - start;
    return 0;
}

/* The highest fitting start inside [lo, hi] (hi inclusive), or false. */
static bool fit(uint64_t lo, uint64_t hi, uint64_t len, uint64_t align, uint64_t boundary,
                uint64_t *out)
{
    uint64_t s;

    if (hi < lo || hi - lo < len - 1)
        return false;
    s = (hi - len + 1) & ~(align - 1);
    if (boundary) {
        uint64_t m = (s + len - 1) & ~(boundary - 1); /* the last multiple inside, if any */

        /* It crosses m: move down so that it ends just below m. len <= boundary and the
         * alignment divides or is a multiple of the boundary, so it crosses nothing else. */
        if (m > s) {
            if (m < len)
                return false;
            s = (m - len) & ~(align - 1);
        }
    }
    if (s < lo || s + len - 1 > hi)
        return false;
    *out = s;
    return true;
}

int dmahal__range_alloc(struct dmahal__range *r, uint64_t len, uint64_t align, uint64_t boundary,
                        uint64_t max_addr, uint64_t *out)
{
    size_t i;

    *out = 0;
    if (len == 0 || !align || (align & (align - 1)) || (boundary & (boundary - 1)))
        return -EINVAL;
    if (boundary && len > boundary)
        return -E2BIG;
    i = find(r, max_addr);
    if (i == r->n)
        i--; /* wraps to SIZE_MAX when empty: the loop below does not run */
    for (; i < r->n; i--) {
        const struct dmahal__extent *e = &r->v[i];
        uint64_t hi = e->end - 1 < max_addr ? e->end - 1 : max_addr;
        uint64_t s;

        if (e->start > max_addr)
            continue;
        if (!fit(e->start, hi, len, align, boundary, &s))
            continue;
        if (carve(r, i, s, s + len))
            return -ENOMEM;
        *out = s;
        return 0;
    }
    return -ENOMEM;
}

int dmahal__range_take(struct dmahal__range *r, uint64_t start, uint64_t len)
{
    uint64_t end = start + len;
    size_t i;

    if (len == 0 || end < start)
        return -EINVAL;
    i = find(r, start);
    if (i == r->n || r->v[i].start > start || r->v[i].end < end)
        return -ENOENT;
    return carve(r, i, start, end);
}

int dmahal__range_is_free(const struct dmahal__range *r, uint64_t start, uint64_t len)
{
    size_t i = find(r, start);

    return len && start + len >= start && i < r->n && r->v[i].start <= start &&
           r->v[i].end >= start + len;
}
