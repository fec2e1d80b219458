/* SPDX-License-Identifier: MIT */
/* test_iova.c - the IOVA allocator and its per-thread caches. */
#include "core/iova.h"

#include <dmahal/dmahal.h>

#include <errno.h>

#include "test.h"

#define PG 4096ull

static struct dmahal__iova *space(uint64_t start, uint64_t len)
{
    struct dmahal__iova *d;

    CHECK_OK(dmahal__iova_create(PG, &d));
    CHECK_OK(dmahal__iova_add(d, start, len));
    return d;
}

TEST(iova_fast_is_high_first_and_under_the_limit)
{
    struct dmahal__iova *d = space(PG, (1ull << 40) - PG);
    uint64_t a, b;

    CHECK_OK(dmahal__iova_alloc_fast(d, PG, (1ull << 32) - 1, &a));
    CHECK_EQ_U(a, (1ull << 32) - PG);
    CHECK_OK(dmahal__iova_alloc_fast(d, 3 * PG, (1ull << 32) - 1, &b));
    /* Three pages are served as four: the cached size class. */
    CHECK_EQ_U(b, (1ull << 32) - 5 * PG);
    CHECK_EQ_U(dmahal__iova_free_bytes(d), (1ull << 40) - PG - 5 * PG);
    dmahal__iova_free_fast(d, a, PG);
    dmahal__iova_free_fast(d, b, 3 * PG);
    dmahal__iova_destroy(d);
}

TEST(iova_fast_reuses_the_threads_cache)
{
    struct dmahal__iova *d = space(PG, 1024 * PG);
    uint64_t a, b, before;

    CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &a));
    before = dmahal__iova_free_bytes(d);
    dmahal__iova_free_fast(d, a, PG);
    /* Cached, not returned to the space... */
    CHECK_EQ_U(dmahal__iova_free_bytes(d), before);
    CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &b));
    /* ...and handed out again first. */
    CHECK_EQ_U(b, a);
    dmahal__iova_free_fast(d, b, PG);
    dmahal__iova_destroy(d);
}

TEST(iova_cached_range_above_the_limit_is_not_handed_out)
{
    struct dmahal__iova *d = space(PG, (1ull << 33) - PG);
    uint64_t hi, lo;

    CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &hi));
    CHECK_GE_U(hi, 1ull << 32);
    dmahal__iova_free_fast(d, hi, PG);
    CHECK_OK(dmahal__iova_alloc_fast(d, PG, (1ull << 32) - 1, &lo));
    CHECK_LE_U(lo + PG - 1, (1ull << 32) - 1);
    dmahal__iova_free_fast(d, lo, PG);
    dmahal__iova_destroy(d);
}

TEST(iova_exhaustion_flushes_caches_before_failing)
{
    struct dmahal__iova *d = space(PG, 8 * PG);
    uint64_t v[8], big;

    for (int i = 0; i < 8; i++)
        CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &v[i]));
    CHECK_ERR(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &big), -ENOMEM);
    for (int i = 0; i < 8; i++)
        dmahal__iova_free_fast(d, v[i], PG);
    CHECK_EQ_U(dmahal__iova_free_bytes(d), 0);
    /* All eight pages sit in this thread's cache; a large request gets them back. */
    CHECK_OK(dmahal__iova_alloc(d, 8 * PG, PG, 0, UINT64_MAX, &big));
    CHECK_EQ_U(big, PG);
    dmahal__iova_free(d, big, 8 * PG);
    CHECK_OK(dmahal__iova_alloc_fast(d, 8 * PG, UINT64_MAX, &big));
    CHECK_ERR(dmahal__iova_alloc_fast(d, 2 * PG, UINT64_MAX, &v[0]), -ENOMEM);
    dmahal__iova_free_fast(d, big, 8 * PG);
    CHECK_OK(dmahal__iova_alloc_fast(d, 2 * PG, UINT64_MAX, &v[0]));
    dmahal__iova_free_fast(d, v[0], 2 * PG);
    dmahal__iova_destroy(d);
}

TEST(iova_large_sizes_bypass_the_cache)
{
    struct dmahal__iova *d = space(PG, 1024 * PG);
    uint64_t a;

    CHECK_OK(dmahal__iova_alloc_fast(d, 33 * PG, UINT64_MAX, &a));
    CHECK_EQ_U(dmahal__iova_free_bytes(d), 1024 * PG - 33 * PG);
    dmahal__iova_free_fast(d, a, 33 * PG);
    CHECK_EQ_U(dmahal__iova_free_bytes(d), 1024 * PG);
    dmahal__iova_destroy(d);
}

TEST(iova_many_frees_overflow_into_the_depot_and_back)
{
    struct dmahal__iova *d = space(PG, 4096 * PG);
    static uint64_t v[1000];

    for (int i = 0; i < 1000; i++)
        CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &v[i]));
    for (int i = 0; i < 1000; i++)
        dmahal__iova_free_fast(d, v[i], PG);
    /* Nothing lost and nothing doubled: 1000 distinct pages come back out. */
    for (int i = 0; i < 1000; i++)
        CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &v[i]));
    for (int i = 0; i < 1000; i++)
        for (int j = i + 1; j < 1000; j++)
            CHECK_NE_U(v[i], v[j]);
    for (int i = 0; i < 1000; i++)
        dmahal__iova_free_fast(d, v[i], PG);
    /* Destroying a space with cached ranges leaks nothing (ASan watches). */
    dmahal__iova_destroy(d);
}

TEST(iova_many_spaces_in_one_thread)
{
    /* More spaces than a thread caches at once: evicted caches go home, stale ones are
     * dropped. */
    struct dmahal__iova *d[6];
    uint64_t a;

    for (int i = 0; i < 6; i++) {
        d[i] = space(PG, 64 * PG);
        CHECK_OK(dmahal__iova_alloc_fast(d[i], PG, UINT64_MAX, &a));
        dmahal__iova_free_fast(d[i], a, PG);
    }
    /* The first spaces' caches were evicted back to them. */
    CHECK_EQ_U(dmahal__iova_free_bytes(d[0]), 64 * PG);
    dmahal__iova_destroy(d[2]);
    for (int i = 0; i < 6; i++) {
        if (i == 2)
            continue;
        CHECK_OK(dmahal__iova_alloc_fast(d[i], 64 * PG, UINT64_MAX, &a));
        dmahal__iova_free_fast(d[i], a, 64 * PG);
        dmahal__iova_destroy(d[i]);
    }
}

/* A region reserved after the space is in use: its free parts go, allocated parts stay, and
 * what the thread's cache held inside it is not handed out again. */
TEST(iova_reserve_takes_only_what_is_free)
{
    struct dmahal__iova *d = space(PG, 64 * PG);
    uint64_t a, b, c, v;

    CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &a)); /* page 64 */
    CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &b)); /* page 63 */
    CHECK_EQ_U(a, 64 * PG);
    CHECK_EQ_U(b, 63 * PG);
    dmahal__iova_free_fast(d, b, PG); /* cached by this thread */
    /* Pages 40..64 reserved: 24 free pages there (40..62), plus the cached page 63. */
    CHECK_OK(dmahal__iova_reserve(d, 40 * PG, 25 * PG));
    CHECK_EQ_U(dmahal__iova_free_bytes(d), 39 * PG);
    for (int i = 0; i < 39; i++) {
        CHECK_OK(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &v));
        CHECK_LT_U(v, 40 * PG);
    }
    CHECK_ERR(dmahal__iova_alloc_fast(d, PG, UINT64_MAX, &v), -ENOMEM);
    /* The page allocated before the reservation is still the holder's, and freeing it
     * returns it. */
    dmahal__iova_free(d, a, PG);
    CHECK_OK(dmahal__iova_alloc(d, PG, PG, 0, UINT64_MAX, &c));
    CHECK_EQ_U(c, a);
    /* A region with nothing free in it is no error. */
    CHECK_OK(dmahal__iova_reserve(d, 100 * PG, 4 * PG));
    dmahal__iova_destroy(d);
}
