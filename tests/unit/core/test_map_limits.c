/* SPDX-License-Identifier: MIT */
/* test_map_limits.c - maps when the IOMMU's mappings run out (they spill into pre-mapped
 * bounce memory and still move the data both ways), and untrusted devices (a map that shares
 * a page bounces; the device cannot reach the bytes around it). */
#include <dmahal/dmahal.h>

#include <string.h>
#include <sys/uio.h>

#include "rig.h"

#define N 600

/* A limit of 64 mappings and 600 maps live at once: every map succeeds, the data goes both
 * ways, nothing leaks (the same again works), and the spill leaves the memory unreachable
 * after its unmap. */
TEST(maps_spill_when_the_mappings_run_out)
{
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .addr_bits = 64};
    struct rig r;
    unsigned char *mem = pages(N), in[4096];
    static struct dmahal_sgl *s[N];
    struct dmahal_reg_info info;

    rig_open(&r, "sim:iommu=on,dma_entries=64", &desc);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            struct iovec v = {mem + i * 4096, 4096};

            fill(mem + i * 4096, 4096, (unsigned)i);
            CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_BIDIRECTIONAL, 0, &s[i]));
        }
        CHECK_OK(dmahal_register_info(r.a, &info));
        CHECK_EQ(info.mappings_avail, 0);
        for (int i = 0; i < N; i += 7) {
            CHECK_OK(dmahal_dev_read(r.d, s[i]->seg[0].la, in, 4096));
            CHECK(memcmp(in, mem + i * 4096, 4096) == 0);
            fill(in, 4096, (unsigned)i + 99);
            CHECK_OK(dmahal_dev_write(r.d, s[i]->seg[0].la, in, 4096));
        }
        for (int i = 0; i < N; i++)
            CHECK_OK(dmahal_unmap(r.a, s[i]));
        for (int i = 0; i < N; i += 7) {
            fill(in, 4096, (unsigned)i + 99);
            CHECK(memcmp(in, mem + i * 4096, 4096) == 0);
        }
        CHECK_OK(dmahal_register_info(r.a, &info));
        CHECK_EQ(info.mappings_avail, 64);
    }
    rig_close(&r);
    free(mem);
}

/* An untrusted device: a 100-byte map inside a page of live data bounces; a device write past
 * its end faults, the bytes around the buffer are intact, and the data arrives. */
TEST(untrusted_small_map_bounces_and_faults_past_the_end)
{
    struct dmahal_desc desc = {
        .size = sizeof(struct dmahal_desc), .addr_bits = 64, .flags = DMAHAL_DESC_UNTRUSTED};
    struct rig r;
    unsigned char *page = pages(1), before[4096], in[100];
    struct iovec v = {page + 1000, 100};
    struct dmahal_sgl *s;
    struct dmahal_fault f;

    rig_open(&r, "sim:iommu=on", &desc);
    fill(page, 4096, 5);
    memcpy(before, page, 4096);
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_FROM_DEVICE, 0, &s));
    CHECK_EQ(s->nseg, 1);
    CHECK_EQ(s->seg[0].len, 100);
    CHECK_EQ_U((s->seg[0].la + 100) & 0xfff, 0); /* the copy ends with its page */
    CHECK_ERR(dmahal_dev_write(r.d, s->seg[0].la + 100, in, 1), -EFAULT);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ_U(f.la, s->seg[0].la + 100);
    CHECK(f.write);
    fill(in, 100, 77);
    CHECK_OK(dmahal_dev_write(r.d, s->seg[0].la, in, 100));
    CHECK_OK(dmahal_unmap(r.a, s));
    CHECK(memcmp(page + 1000, in, 100) == 0);
    CHECK(memcmp(page, before, 1000) == 0);
    CHECK(memcmp(page + 1100, before + 1100, 4096 - 1100) == 0);
    rig_close(&r);
    free(page);
}

/* The same map on a trusted adapter reaches the whole page: the write past the end lands in
 * the driver's memory with no fault (what the flag prevents). Whole pages never bounce. */
TEST(untrusted_flag_is_what_keeps_the_neighbour)
{
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc), .addr_bits = 64};
    struct rig r, u;
    unsigned char *page = pages(2), x = 0xee;
    struct iovec v = {page + 1000, 100}, whole = {page + 4096, 4096};
    struct dmahal_sgl *s;

    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_FROM_DEVICE, 0, &s));
    CHECK_OK(dmahal_dev_write(r.d, s->seg[0].la + 100, &x, 1));
    CHECK_EQ(page[1100], 0xee);
    CHECK_EQ_U(dmahal_fault_count(r.p), 0);
    CHECK_OK(dmahal_unmap(r.a, s));
    rig_close(&r);

    desc.flags = DMAHAL_DESC_UNTRUSTED;
    rig_open(&u, "sim:iommu=on", &desc);
    CHECK_OK(dmahal_map(u.a, &whole, 1, DMAHAL_FROM_DEVICE, 0, &s));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(u.a), 0); /* not bounced */
    CHECK_OK(dmahal_dev_write(u.d, s->seg[0].la, &x, 1));
    CHECK_EQ(page[4096], 0xee);
    CHECK_OK(dmahal_unmap(u.a, s));
    rig_close(&u);
    free(page);
}

/* DMAHAL_DESC_MAP_CACHE: the same memory mapped again reuses its mapping (same address); the
 * documented risk holds (reachable after unmap) until a flush; other permissions are another
 * mapping; the cache gives its mappings back when the IOMMU runs out. */
TEST(map_cache_reuses_and_flushes)
{
    struct dmahal_desc desc = {
        .size = sizeof(struct dmahal_desc), .addr_bits = 64, .flags = DMAHAL_DESC_MAP_CACHE};
    struct rig r;
    unsigned char *mem = pages(8), x[8];
    struct iovec v = {mem + 16, 100};
    struct dmahal_sgl *s, *t;
    dmahal_addr_t la;

    rig_open(&r, "sim:iommu=on,dma_entries=4", &desc);
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_TO_DEVICE, 0, &s));
    la = s->seg[0].la;
    CHECK_OK(dmahal_unmap(r.a, s));
    CHECK_OK(dmahal_dev_read(r.d, la, x, sizeof(x))); /* kept: still reachable */
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_TO_DEVICE, 0, &s));
    CHECK_EQ_U(s->seg[0].la, la);
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_TO_DEVICE, 0, &t)); /* in use: a second mapping */
    CHECK_NE_U(t->seg[0].la, la);
    CHECK_OK(dmahal_unmap(r.a, t));
    CHECK_OK(dmahal_unmap(r.a, s));
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_FROM_DEVICE, 0, &t));
    CHECK_NE_U(t->seg[0].la & ~0xfffull, la & ~0xfffull);
    CHECK_OK(dmahal_unmap(r.a, t));
    CHECK_EQ(dmahal_map_cache_flush(r.a), 3);
    CHECK_ERR(dmahal_dev_read(r.d, la, x, sizeof(x)), -EFAULT);
    CHECK_EQ(dmahal_map_cache_flush(r.a), 0);
    CHECK_ERR(dmahal_map_cache_flush(NULL), -EINVAL);
    /* Four mappings allowed: eight pages mapped and unmapped keep four cached, and four
     * more maps live at once still get mappings of their own. */
    for (int i = 0; i < 8; i++) {
        CHECK_OK(
            dmahal_map(r.a, &(struct iovec){mem + i * 4096, 4096}, 1, DMAHAL_TO_DEVICE, 0, &s));
        CHECK_OK(dmahal_unmap(r.a, s));
    }
    {
        struct dmahal_sgl *live[4];

        for (int i = 0; i < 4; i++)
            CHECK_OK(dmahal_map(r.a, &(struct iovec){mem + i * 4096 + 8, 100}, 1,
                                DMAHAL_FROM_DEVICE, 0, &live[i]));
        CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
        for (int i = 0; i < 4; i++)
            CHECK_OK(dmahal_unmap(r.a, live[i]));
    }
    rig_close(&r);
    free(mem);
}
