/* SPDX-License-Identifier: MIT */
/* test_range.c - the range allocator: high-first, limits, alignment, boundary, merging. */
#include <dmahal/dmahal.h>

#include <errno.h>

#include "core/range.h"
#include "test.h"

#define K 1024ull
#define M (1024ull * K)
#define G (1024ull * M)

TEST(range_empty_set_has_nothing)
{
    struct dmahal__range r;
    uint64_t at = 123;

    dmahal__range_init(&r);
    CHECK_ERR(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &at), -ENOMEM);
    CHECK_EQ_U(at, 0);
    dmahal__range_fini(&r);
}

TEST(range_hands_out_highest_first)
{
    struct dmahal__range r;
    uint64_t a, b;

    dmahal__range_init(&r);
    CHECK_OK(dmahal__range_add(&r, 0, 1 * G));
    CHECK_OK(dmahal__range_add(&r, 4 * G, 60 * G));
    CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &a));
    CHECK_EQ_U(a, 64 * G - 4096);
    CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &b));
    CHECK_EQ_U(b, 64 * G - 8192);
    CHECK_EQ_U(r.free_bytes, 61 * G - 8192);
    dmahal__range_fini(&r);
}

TEST(range_respects_max_addr)
{
    struct dmahal__range r;
    uint64_t a;

    dmahal__range_init(&r);
    CHECK_OK(dmahal__range_add(&r, 4096, 1 * G - 4096));
    CHECK_OK(dmahal__range_add(&r, 4 * G, 60 * G));
    /* A 32-bit device: the high range is out of reach, the top of low RAM is not. */
    CHECK_OK(dmahal__range_alloc(&r, 8192, 4096, 0, 0xffffffffull, &a));
    CHECK_EQ_U(a, 1 * G - 8192);
    /* A 28-bit limit cuts into the low range. */
    CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, (1ull << 28) - 1, &a));
    CHECK_EQ_U(a, (1ull << 28) - 4096);
    /* The last byte may sit exactly on the limit, never above. */
    CHECK_OK(dmahal__range_alloc(&r, 16, 16, 0, 0x1000000full, &a));
    CHECK_EQ_U(a, 0x10000000ull);
    /* Nothing below the first page. */
    CHECK_ERR(dmahal__range_alloc(&r, 4096, 4096, 0, 4095, &a), -ENOMEM);
    dmahal__range_fini(&r);
}

TEST(range_alignment)
{
    struct dmahal__range r;
    uint64_t a;

    dmahal__range_init(&r);
    CHECK_OK(dmahal__range_add(&r, 0x1000, 0x100000 - 0x1000 - 0x10));
    CHECK_OK(dmahal__range_alloc(&r, 0x100, 0x10000, 0, UINT64_MAX, &a));
    CHECK_EQ_U(a, 0xf0000);
    CHECK_EQ_U(a % 0x10000, 0);
    CHECK_ERR(dmahal__range_alloc(&r, 0x100, 3, 0, UINT64_MAX, &a), -EINVAL);
    CHECK_ERR(dmahal__range_alloc(&r, 0x100, 0, 0, UINT64_MAX, &a), -EINVAL);
    dmahal__range_fini(&r);
}

TEST(range_boundary_is_never_crossed)
{
    struct dmahal__range r;
    uint64_t a;

    dmahal__range_init(&r);
    /* Free space ends 0x800 past a 64 KiB multiple: a 4 KiB block there would cross it. */
    CHECK_OK(dmahal__range_add(&r, 0x10000, 0x10800));
    CHECK_OK(dmahal__range_alloc(&r, 0x1000, 0x10, 0x10000, UINT64_MAX, &a));
    CHECK_EQ_U(a, 0x20000 - 0x1000);
    CHECK_EQ_U(a / 0x10000, (a + 0x1000 - 1) / 0x10000);
    CHECK_ERR(dmahal__range_alloc(&r, 0x20000, 1, 0x10000, UINT64_MAX, &a), -E2BIG);
    CHECK_ERR(dmahal__range_alloc(&r, 0x100, 1, 0x3000, UINT64_MAX, &a), -EINVAL);
    dmahal__range_fini(&r);
}

TEST(range_boundary_exhaustive_small)
{
    /* Every placement in a small window: the result must fit every rule, and an answer of
     * -ENOMEM must mean that no placement existed. */
    for (uint64_t len = 1; len <= 64; len += 7) {
        for (uint64_t align = 1; align <= 32; align *= 2) {
            for (uint64_t bnd = 0; bnd <= 64; bnd = bnd ? bnd * 2 : 8) {
                struct dmahal__range r;
                uint64_t a, best = UINT64_MAX;
                int rc;

                if (bnd && (len > bnd))
                    continue;
                for (uint64_t s = 3; s + len <= 200; s++) {
                    bool ok = s % align == 0 && s + len - 1 <= 180;

                    if (bnd && s / bnd != (s + len - 1) / bnd)
                        ok = false;
                    if (ok)
                        best = s;
                }
                dmahal__range_init(&r);
                CHECK_OK(dmahal__range_add(&r, 3, 197));
                rc = dmahal__range_alloc(&r, len, align, bnd, 180, &a);
                if (best == UINT64_MAX) {
                    CHECK_ERR(rc, -ENOMEM);
                } else {
                    CHECK_OK(rc);
                    CHECK_EQ_U(a, best);
                }
                dmahal__range_fini(&r);
            }
        }
    }
}

TEST(range_free_merges_and_detects_double_free)
{
    struct dmahal__range r;
    uint64_t a, b, c;

    dmahal__range_init(&r);
    CHECK_OK(dmahal__range_add(&r, 0, 3 * 4096));
    CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &a));
    CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &b));
    CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &c));
    CHECK_EQ(r.n, 0);
    CHECK_OK(dmahal__range_add(&r, a, 4096));
    CHECK_OK(dmahal__range_add(&r, c, 4096));
    CHECK_EQ(r.n, 2);
    CHECK_OK(dmahal__range_add(&r, b, 4096));
    CHECK_EQ(r.n, 1); /* merged both ways */
    CHECK_ERR(dmahal__range_add(&r, b, 4096), -EEXIST);
    CHECK_ERR(dmahal__range_add(&r, b + 100, 4096 * 5), -EEXIST);
    CHECK_ERR(dmahal__range_add(&r, 0, 0), -EINVAL);
    CHECK_ERR(dmahal__range_add(&r, UINT64_MAX - 10, 100), -EINVAL);
    CHECK_EQ_U(r.free_bytes, 3 * 4096);
    dmahal__range_fini(&r);
}

TEST(range_take_exact)
{
    struct dmahal__range r;

    dmahal__range_init(&r);
    CHECK_OK(dmahal__range_add(&r, 0x1000, 0x10000));
    CHECK_OK(dmahal__range_take(&r, 0x4000, 0x1000));
    CHECK(!dmahal__range_is_free(&r, 0x4000, 1));
    CHECK(dmahal__range_is_free(&r, 0x1000, 0x3000));
    CHECK(dmahal__range_is_free(&r, 0x5000, 0xc000));
    CHECK_ERR(dmahal__range_take(&r, 0x3800, 0x1000), -ENOENT);
    CHECK_ERR(dmahal__range_take(&r, 0x3800, 0), -EINVAL);
    dmahal__range_fini(&r);
}

TEST(range_many_fragments_reassemble)
{
    struct dmahal__range r;
    uint64_t at[256];

    dmahal__range_init(&r);
    CHECK_OK(dmahal__range_add(&r, 0, 256 * 4096));
    for (int i = 0; i < 256; i++)
        CHECK_OK(dmahal__range_alloc(&r, 4096, 4096, 0, UINT64_MAX, &at[i]));
    /* Free the even ones, then the odd ones: everything merges back into one extent. */
    for (int i = 0; i < 256; i += 2)
        CHECK_OK(dmahal__range_add(&r, at[i], 4096));
    CHECK_EQ(r.n, 128);
    for (int i = 1; i < 256; i += 2)
        CHECK_OK(dmahal__range_add(&r, at[i], 4096));
    CHECK_EQ(r.n, 1);
    CHECK_EQ_U(r.free_bytes, 256 * 4096);
    dmahal__range_fini(&r);
}
