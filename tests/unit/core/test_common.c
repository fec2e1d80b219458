/* SPDX-License-Identifier: MIT */
/* test_common.c - common buffers: constraints, packing, zeroing, and every misuse. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "rig.h"

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;

    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

static const char *const specs[] = {"sim", "sim:iommu=on", "sim:ram=0-64M", "sim:coherent=no"};

TEST(common_fits_addr_bits_everywhere)
{
    static const unsigned widths[] = {24, 28, 32, 40, 64};

    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
            struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .addr_bits = widths[w]};
            static const size_t sizes[] = {1, 64, 100, 4096, 5000, 65536, 3u << 20};
            struct rig r;

            rig_open(&r, specs[s], &desc);
            for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                struct dmahal_buf b;
                uint64_t max = widths[w] == 64 ? UINT64_MAX : (1ull << widths[w]) - 1;

                CHECK_OK(dmahal_common_alloc(r.a, sizes[i], 0, &b));
                CHECK(b.va != NULL);
                CHECK_NE_U(b.la, 0);
                CHECK_EQ_U(b.len, sizes[i]);
                CHECK_LE_U(b.la + b.len - 1, max);
                CHECK(all_zero(b.va, b.len));
                memset(b.va, 0xab, b.len);
                CHECK_OK(dmahal_common_free(r.a, &b));
            }
            rig_close(&r);
        }
    }
}

TEST(common_default_machine_puts_64bit_buffers_high)
{
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .addr_bits = 64};
    struct rig r;
    struct dmahal_buf b;

    rig_open(&r, "sim", &desc);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    /* High-first: a device that reaches everything gets memory above 4 GiB... */
    CHECK_GE_U(b.la, 4ull << 30);
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_close(&r);
    /* ...and a 32-bit device on the same machine gets low memory. */
    desc.addr_bits = 32;
    rig_open(&r, "sim", &desc);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_LT_U(b.la, 1ull << 30);
    rig_close(&r);
}

TEST(common_alignment_and_boundary)
{
    struct dmahal_desc desc = {
        .size = sizeof(struct dmahal_desc), .alignment = 256, .boundary = 64 * 1024};
    struct rig r;
    struct dmahal_buf b[64];

    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_EQ(dmahal_adapter_alignment(r.a), 256);
    for (int i = 0; i < 64; i++) {
        size_t len = (size_t)(i * 977 % 60000) + 1;

        CHECK_OK(dmahal_common_alloc(r.a, len, 0, &b[i]));
        CHECK_EQ_U(b[i].la % 256, 0);
        CHECK_EQ_U(b[i].la / (64 * 1024), (b[i].la + len - 1) / (64 * 1024));
    }
    for (int i = 0; i < 64; i++)
        CHECK_OK(dmahal_common_free(r.a, &b[i]));
    CHECK_ERR(dmahal_common_alloc(r.a, 64 * 1024 + 1, 0, &b[0]), -E2BIG);
    rig_close(&r);
}

TEST(common_large_buffers_are_page_granular)
{
    struct rig r;
    struct dmahal_buf a, b;

    rig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &a));
    CHECK_OK(dmahal_common_alloc(r.a, 5000, 0, &b));
    CHECK_EQ_U(a.la % 4096, 0);
    CHECK_EQ_U(b.la % 4096, 0);
    CHECK_EQ_U((uintptr_t)b.va % 4096, 0);
    /* Distinct pages, no overlap. */
    CHECK(a.la + 4096 <= b.la || b.la + 8192 <= a.la);
    CHECK_OK(dmahal_common_free(r.a, &a));
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_close(&r);
}

TEST(common_small_buffers_are_packed)
{
    struct rig r;
    struct dmahal_buf b[64];

    rig_open(&r, "sim:iommu=on", NULL);
    for (int i = 0; i < 64; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b[i]));
        CHECK_EQ_U(b[i].la % 64, 0);
        /* The device's view and the CPU's move together. */
        CHECK_EQ_U((uintptr_t)b[i].va % 4096, b[i].la % 4096);
    }
    /* 64 descriptors of 64 bytes fit in one page: they must not each cost one. */
    for (int i = 1; i < 64; i++)
        CHECK_EQ_U(b[i].la / 4096, b[0].la / 4096);
    /* No two overlap. */
    for (int i = 0; i < 64; i++)
        for (int j = i + 1; j < 64; j++)
            CHECK_NE_U(b[i].la, b[j].la);
    for (int i = 0; i < 64; i++)
        CHECK_OK(dmahal_common_free(r.a, &b[i]));
    rig_close(&r);
}

TEST(common_memory_is_zeroed_after_reuse)
{
    struct rig r;
    struct dmahal_buf b;

    rig_open(&r, "sim", NULL);
    for (int round = 0; round < 4; round++) {
        static const size_t sizes[] = {48, 4096, 70000};

        for (size_t i = 0; i < 3; i++) {
            CHECK_OK(dmahal_common_alloc(r.a, sizes[i], 0, &b));
            CHECK(all_zero(b.va, b.len));
            memset(b.va, 0xff, b.len);
            CHECK_OK(dmahal_common_free(r.a, &b));
        }
    }
    rig_close(&r);
}

TEST(common_device_sees_what_cpu_wrote)
{
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct rig r;
        struct dmahal_buf b;
        char back[300];

        rig_open(&r, specs[s], NULL);
        CHECK_OK(dmahal_common_alloc(r.a, 300, 0, &b));
        for (int i = 0; i < 300; i++)
            ((char *)b.va)[i] = (char)i;
        CHECK_OK(dmahal_dev_read(r.d, b.la, back, sizeof(back)));
        CHECK(memcmp(back, b.va, sizeof(back)) == 0);
        memset(back, 0x5c, sizeof(back));
        CHECK_OK(dmahal_dev_write(r.d, b.la, back, sizeof(back)));
        CHECK(memcmp(back, b.va, sizeof(back)) == 0);
        rig_close(&r);
    }
}

TEST(common_bad_arguments)
{
    struct rig r;
    struct dmahal_buf b = {(void *)1, 2, 3};

    rig_open(&r, "sim", NULL);
    CHECK_ERR(dmahal_common_alloc(NULL, 64, 0, &b), -EINVAL);
    CHECK(b.va == NULL && b.la == 0 && b.len == 0); /* cleared on failure */
    CHECK_ERR(dmahal_common_alloc(r.a, 64, 0, NULL), -EINVAL);
    CHECK_ERR(dmahal_common_alloc(r.a, 0, 0, &b), -EINVAL);
    CHECK_ERR(dmahal_common_alloc(r.a, 64, 0x80, &b), -EINVAL);
    CHECK_ERR(dmahal_common_alloc(r.a, SIZE_MAX, 0, &b), -E2BIG);
    CHECK_ERR(dmahal_common_alloc(r.a, (size_t)1 << 41, 0, &b), -E2BIG);
    CHECK_ERR(dmahal_common_free(NULL, &b), -EINVAL);
    CHECK_ERR(dmahal_common_free(r.a, NULL), -EINVAL);
    rig_close(&r);
}

TEST(common_misuse_of_free_is_refused)
{
    struct rig r, other;
    struct dmahal_buf small, large, huge, bad;
    char stack[64];

    rig_open(&r, "sim:iommu=on", NULL);
    rig_open(&other, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &small));
    CHECK_OK(dmahal_common_alloc(r.a, 10000, 0, &large));
    CHECK_OK(dmahal_common_alloc(r.a, 3u << 20, 0, &huge));
    const struct dmahal_buf *all[] = {&small, &large, &huge};

    for (int i = 0; i < 3; i++) {
        bad = *all[i];
        bad.len++;
        CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL); /* wrong length */
        bad = *all[i];
        bad.la += 4096;
        CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL); /* wrong logical address */
        bad = *all[i];
        bad.va = (char *)bad.va + 16;
        CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL);       /* inside, not the start */
        CHECK_ERR(dmahal_common_free(other.a, all[i]), -EINVAL); /* another adapter */
    }
    bad = (struct dmahal_buf){stack, 0x1000, sizeof(stack)};
    CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL); /* never allocated */
    bad = (struct dmahal_buf){NULL, 0, 0};
    CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(dmahal_common_free(r.a, all[i]));
        CHECK_ERR(dmahal_common_free(r.a, all[i]), -EINVAL); /* double free */
    }
    rig_close(&other);
    rig_close(&r);
}

TEST(common_low_memory_exhaustion_fails_cleanly)
{
    /* 28-bit device, no IOMMU, 8 MiB of RAM below 2^28: it runs out, and everything it got
     * comes back when freed. */
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .addr_bits = 28};
    struct rig r;
    struct dmahal_buf b[64];
    int n = 0, rc;

    rig_open(&r, "sim:ram=0-8M,4G-8G", &desc);
    while (n < 64 && (rc = dmahal_common_alloc(r.a, 1 << 20, 0, &b[n])) == 0) {
        CHECK_LE_U(b[n].la + b[n].len, 1ull << 28);
        n++;
    }
    CHECK_ERR(rc, -ENOMEM);
    CHECK_GE(n, 6); /* 8 MiB less page 0 and arena slack */
    CHECK_LT(n, 8);
    /* Small allocations may still fit in the slack, but a big one must not. */
    CHECK_ERR(dmahal_common_alloc(r.a, 4u << 20, 0, &b[n]), -ENOMEM);
    for (int i = 0; i < n; i++)
        CHECK_OK(dmahal_common_free(r.a, &b[i]));
    /* After freeing, the same amount fits again: nothing leaked. */
    for (int i = 0; i < n; i++)
        CHECK_OK(dmahal_common_alloc(r.a, 1 << 20, 0, &b[i]));
    rig_close(&r);
}

TEST(common_iommu_maps_high_memory_low)
{
    /* With an IOMMU a 28-bit device works on a machine whose RAM is all above 4 GiB. */
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .addr_bits = 28};
    struct rig r;
    struct dmahal_buf b;
    uint64_t pa;

    rig_open(&r, "sim:iommu=on,ram=4G-8G", &desc);
    CHECK_OK(dmahal_common_alloc(r.a, 3 << 20, 0, &b));
    CHECK_LT_U(b.la + b.len - 1, 1ull << 28);
    CHECK_OK(dmahal_sim_virt_to_phys(r.p, b.va, &pa));
    CHECK_GE_U(pa, 4ull << 30);
    CHECK_NE_U(pa, b.la); /* the logical address is not the physical one */
    rig_close(&r);
}

TEST(common_freed_buffer_faults_with_iommu)
{
    struct rig r;
    struct dmahal_buf b, keep;
    char x[16];
    struct dmahal_fault f = {.size = sizeof(f)};

    rig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 3 << 20, 0, &b));
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &keep));
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_ERR(dmahal_dev_read(r.d, b.la, x, sizeof(x)), -EFAULT);
    CHECK_EQ_U(dmahal_fault_count(r.p), 1);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ_U(f.la, b.la);
    CHECK(!f.write);
    CHECK_EQ(f.reason, DMAHAL_FAULT_UNMAPPED);
    CHECK_STR(f.device, "edu");
    rig_close(&r);
}

TEST(common_put_frees_everything)
{
    struct rig r;
    struct dmahal_buf b;

    rig_open(&r, "sim:ram=0-16M", NULL);
    /* Leave buffers behind, many times over: putting the adapter must give their memory
     * back, or 16 MiB would run out. */
    for (int i = 0; i < 20; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 1 << 20, 0, &b));
        CHECK_OK(dmahal_common_alloc(r.a, 100, 0, &b));
        dmahal_adapter_put(r.a);
        CHECK_OK(dmahal_adapter_get(r.d, NULL, &r.a));
    }
    rig_close(&r);
}

/* The device can reach a page-granular buffer until it is freed, and not after, though its
 * arena stays (its neighbour is live); the neighbour stays reachable. */
TEST(common_free_takes_page_runs_out_of_reach)
{
    struct rig r;
    struct dmahal_buf b, keep;
    char x[16] = {1};
    struct dmahal_fault f;

    rig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b));
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &keep));
    CHECK_OK(dmahal_dev_write(r.d, b.la + 4096, x, sizeof(x)));
    CHECK_EQ(((char *)b.va)[4096], 1);
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_ERR(dmahal_dev_read(r.d, b.la, x, sizeof(x)), -EFAULT);
    CHECK_ERR(dmahal_dev_write(r.d, b.la + 8192 - 1, x, 1), -EFAULT);
    CHECK_EQ_U(dmahal_fault_count(r.p), 2);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ_U(f.la, b.la);
    CHECK_EQ(f.reason, DMAHAL_FAULT_UNMAPPED);
    CHECK_OK(dmahal_dev_read(r.d, keep.la, x, sizeof(x)));
    CHECK_OK(dmahal_dev_read(r.d, keep.la + 8192 - sizeof(x), x, sizeof(x)));
    /* Allocated again, the pages are reachable again. */
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b));
    CHECK_OK(dmahal_dev_read(r.d, b.la, x, sizeof(x)));
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_OK(dmahal_common_free(r.a, &keep));
    CHECK_ERR(dmahal_dev_read(r.d, keep.la, x, sizeof(x)), -EFAULT);
    rig_close(&r);
}

/* Small buffers share a page: it stays reachable while one of them lives, and leaves the
 * device's reach with the last one, also when the allocator keeps the empty slab. */
TEST(common_small_buffers_leave_reach_with_their_page)
{
    struct rig r;
    struct dmahal_buf s1, s2, again;
    char x[8] = {0};

    rig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &s1));
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &s2));
    CHECK_EQ_U(s1.la & ~0xfffull, s2.la & ~0xfffull);
    CHECK_OK(dmahal_common_free(r.a, &s1));
    CHECK_OK(dmahal_dev_read(r.d, s1.la, x, sizeof(x))); /* s2 keeps the page mapped */
    CHECK_OK(dmahal_common_free(r.a, &s2));
    CHECK_ERR(dmahal_dev_read(r.d, s1.la, x, sizeof(x)), -EFAULT);
    CHECK_ERR(dmahal_dev_read(r.d, s2.la, x, sizeof(x)), -EFAULT);
    /* The kept slab comes back into reach for its next object. */
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &again));
    CHECK_OK(dmahal_dev_write(r.d, again.la, x, sizeof(x)));
    CHECK_OK(dmahal_common_free(r.a, &again));
    CHECK_ERR(dmahal_dev_read(r.d, again.la, x, sizeof(x)), -EFAULT);
    rig_close(&r);
}

/* DMAHAL_DESC_LAZY_UNMAP: the documented risk holds (a freed buffer stays reachable while its
 * arena has a live buffer), and the arena leaves the device's reach once empty. */
TEST(common_lazy_unmap_keeps_arena_reachable_until_empty)
{
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .flags = DMAHAL_DESC_LAZY_UNMAP};
    struct rig r;
    struct dmahal_buf b, keep, big;
    char x[8];

    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b));
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &keep));
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_OK(dmahal_dev_read(r.d, b.la, x, sizeof(x)));
    /* A second arena, so that the first one is not kept as the spare when it empties. */
    CHECK_OK(dmahal_common_alloc(r.a, 3 << 20, 0, &big));
    CHECK_OK(dmahal_common_free(r.a, &big));
    CHECK_ERR(dmahal_dev_read(r.d, big.la, x, sizeof(x)), -EFAULT); /* its own arena */
    CHECK_OK(dmahal_common_free(r.a, &keep));
    CHECK_OK(dmahal_common_alloc(r.a, 1 << 20, 0, &big)); /* the spare arena serves it */
    CHECK_OK(dmahal_common_free(r.a, &big));
    CHECK_EQ_U(dmahal_fault_count(r.p), 1);
    rig_close(&r);
}

TEST(common_unknown_desc_flags_are_refused)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a = (void *)1;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_ERR(dmahal_adapter_get(
                  d, &(struct dmahal_desc){.size = sizeof(struct dmahal_desc), .flags = 0x80}, &a),
              -EINVAL);
    CHECK(a == NULL);
    dmahal_platform_close(p);
}

/* Buffers left at adapter put go with their arenas, whatever of them was reachable. */
TEST(common_put_with_live_buffers_leaves_nothing_reachable)
{
    struct rig r;
    struct dmahal_buf b[6];
    char x[8];

    rig_open(&r, "sim:iommu=on", NULL);
    for (int i = 0; i < 6; i++)
        CHECK_OK(dmahal_common_alloc(r.a, i % 2 ? 100 : 12288, 0, &b[i]));
    CHECK_OK(dmahal_common_free(r.a, &b[2]));
    dmahal_adapter_put(r.a);
    for (int i = 0; i < 6; i++)
        CHECK_ERR(dmahal_dev_read(r.d, b[i].la, x, sizeof(x)), -EFAULT);
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &r.a));
    rig_close(&r);
}
