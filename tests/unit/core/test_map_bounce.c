/* SPDX-License-Identifier: MIT */
/* test_map_bounce.c - bounce pages (map registers): both directions, exhaustion, deferred
 * requests served in order, pools shared per constraint class. */
#include "rig.h"

/* The default machine: most RAM above 4 GiB, so user memory lands high and a 32-bit device
 * without an IOMMU must bounce. max_transfer 16 KiB: 5 map registers. */
static const struct dmahal_desc dev32 = {.addr_bits = 32, .max_transfer = 16384, .max_segments = 1};

TEST(bounce_to_device_copies_at_map_and_sync_for_device)
{
    struct rig r;
    unsigned char *b = pages(4), *seen = pages(4);
    struct iovec iov = {b + 10, 12000};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim", &dev32);
    fill(b, 4 * 4096, 21);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    check_constraints(r.a, sgl);
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 3);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b + 10, 12000) == 0);
    /* The device reads a copy: a CPU write reaches it at sync_for_device, not before. */
    b[10] ^= 0xff;
    dev_gather(r.d, sgl, seen);
    CHECK_NE(seen[0], b[10]);
    CHECK_OK(dmahal_sync_for_device(r.a, sgl));
    dev_gather(r.d, sgl, seen);
    CHECK_EQ(seen[0], b[10]);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(bounce_from_device_copies_at_sync_for_cpu_and_unmap)
{
    struct rig r;
    unsigned char *b = pages(4), *data = pages(4), *orig = pages(4);
    struct iovec iov[2] = {{b + 100, 5000}, {b + 3 * 4096, 3000}};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim", &dev32);
    fill(data, 8000, 33);
    fill(b, 4 * 4096, 1);
    memcpy(orig, b, 4 * 4096);
    CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_FROM_DEVICE, 0, &sgl));
    /* Two scattered entries and one element allowed: the bounce run joins them. */
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ(sgl_total(sgl), 8000);
    dev_scatter(r.d, sgl, data);
    /* Not yet: the device wrote the bounce pages. */
    CHECK(memcmp(b, orig, 4 * 4096) == 0);
    CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
    CHECK(memcmp(b + 100, data, 5000) == 0);
    CHECK(memcmp(b + 3 * 4096, data + 5000, 3000) == 0);
    /* Bytes around the entries are untouched. */
    CHECK(memcmp(b, orig, 100) == 0);
    CHECK(memcmp(b + 5100, orig + 5100, 3 * 4096 - 5100) == 0);
    /* The device's second turn comes back at unmap. */
    CHECK_OK(dmahal_sync_for_device(r.a, sgl));
    data[0] ^= 0x5a;
    dev_scatter(r.d, sgl, data);
    CHECK_NE(b[100], data[0]);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_EQ(b[100], data[0]);
    rig_close(&r);
    free(b);
    free(data);
    free(orig);
}

TEST(bounce_only_when_needed)
{
    struct dmahal_desc dev64 = {.addr_bits = 64, .max_transfer = 16384};
    struct rig r;
    unsigned char *b = pages(2);
    struct iovec iov = {b, 8192};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim", &dev64);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    /* High-first: the user's pages stand above 4 GiB, which this device reaches. */
    CHECK_GE_U(sgl->seg[0].la, 4ull << 30);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(bounce_24bit_device_gets_pages_below_16m)
{
    struct dmahal_desc d24 = {.addr_bits = 24, .max_transfer = 65536, .max_segments = 4};
    struct rig r;
    unsigned char *b = pages(16), *seen = pages(16);
    struct iovec iov = {b, 65536};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim", &d24);
    fill(b, 65536, 2);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    check_constraints(r.a, sgl);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 16);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b, 65536) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(bounce_exhaustion_nowait_is_enospc)
{
    struct rig r;
    unsigned char *b = pages(8);
    struct iovec big = {b, 16384}, more = {b + 16384, 8192};
    struct dmahal_sgl *s1, *s2;

    rig_open(&r, "sim", &dev32);
    CHECK_EQ(dmahal_adapter_map_registers(r.a), 5);
    CHECK_OK(dmahal_map(r.a, &big, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s1));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 4);
    /* One page left; two are needed. Nothing is held by the failed attempt. */
    CHECK_ERR(dmahal_map(r.a, &more, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s2), -ENOSPC);
    CHECK(s2 == NULL);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 4);
    CHECK_OK(dmahal_unmap(r.a, s1));
    CHECK_OK(dmahal_map(r.a, &more, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s2));
    CHECK_OK(dmahal_unmap(r.a, s2));
    rig_close(&r);
    free(b);
}

struct order {
    int seq[8];
    int status[8];
    struct dmahal_sgl *sgl[8];
    int n;
};

struct req {
    struct order *o;
    int id;
};

static void on_mapped(struct dmahal_adapter *a, int status, struct dmahal_sgl *sgl, void *ctx)
{
    struct req *q = ctx;
    struct order *o = q->o;

    (void)a;
    o->seq[o->n] = q->id;
    o->status[o->n] = status;
    o->sgl[o->n] = sgl;
    o->n++;
}

TEST(bounce_deferred_requests_run_in_order)
{
    struct rig r;
    unsigned char *b = pages(16), *seen = pages(4);
    struct iovec first = {b, 16384}, second = {b + 16384, 16384}, third = {b + 32768, 100};
    struct order o = {{0}};
    struct req q1 = {&o, 1}, q2 = {&o, 2}, q3 = {&o, 3};
    struct dmahal_sgl *tmp;

    fill(b, 16 * 4096, 44);
    rig_open(&r, "sim", &dev32);
    /* Resources there: the callback runs before the call returns. */
    CHECK_OK(dmahal_map_async(r.a, &first, 1, DMAHAL_TO_DEVICE, 0, on_mapped, &q1));
    CHECK_EQ(o.n, 1);
    CHECK_EQ(o.status[0], 0);
    /* Short: queued. The third would fit in the one free page, but does not overtake. */
    CHECK_ERR(dmahal_map_async(r.a, &second, 1, DMAHAL_TO_DEVICE, 0, on_mapped, &q2), -EINPROGRESS);
    CHECK_ERR(dmahal_map_async(r.a, &third, 1, DMAHAL_TO_DEVICE, 0, on_mapped, &q3), -EINPROGRESS);
    CHECK_ERR(dmahal_map(r.a, &third, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &tmp), -ENOSPC);
    CHECK_ERR(dmahal_map_async(r.a, &third, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, on_mapped, &q3),
              -ENOSPC);
    CHECK_EQ(o.n, 1);
    /* Freeing the first serves the second, then the third, on this thread, in order. */
    CHECK_OK(dmahal_unmap(r.a, o.sgl[0]));
    CHECK_EQ(o.n, 3);
    CHECK_EQ(o.seq[1], 2);
    CHECK_EQ(o.seq[2], 3);
    CHECK_EQ(o.status[1], 0);
    CHECK_EQ(o.status[2], 0);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 5);
    /* Deferred maps copied their data in when granted. */
    dev_gather(r.d, o.sgl[1], seen);
    CHECK(memcmp(seen, b + 16384, 16384) == 0);
    dev_gather(r.d, o.sgl[2], seen);
    CHECK(memcmp(seen, b + 32768, 100) == 0);
    CHECK_OK(dmahal_unmap(r.a, o.sgl[1]));
    CHECK_OK(dmahal_unmap(r.a, o.sgl[2]));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(bounce_queued_requests_are_cancelled_by_adapter_put)
{
    struct rig r;
    unsigned char *b = pages(8);
    struct iovec first = {b, 16384}, second = {b + 16384, 16384};
    struct order o = {{0}};
    struct req q1 = {&o, 1}, q2 = {&o, 2};

    rig_open(&r, "sim", &dev32);
    CHECK_OK(dmahal_map_async(r.a, &first, 1, DMAHAL_TO_DEVICE, 0, on_mapped, &q1));
    CHECK_ERR(dmahal_map_async(r.a, &second, 1, DMAHAL_TO_DEVICE, 0, on_mapped, &q2), -EINPROGRESS);
    dmahal_adapter_put(r.a);
    CHECK_EQ(o.n, 2);
    CHECK_EQ(o.seq[1], 2);
    CHECK_EQ(o.status[1], -ECANCELED);
    CHECK(o.sgl[1] == NULL);
    rig_close(&r);
    free(b);
}

TEST(bounce_pool_is_shared_per_class)
{
    struct rig r;
    struct dmahal_adapter *a2, *a64;
    struct dmahal_desc d64 = {.addr_bits = 40, .max_transfer = 16384};
    unsigned char *b = pages(16);
    struct iovec x = {b, 16384}, y = {b + 16384, 16384}, z = {b + 32768, 12288},
                 tail = {b + 49152, 100};
    struct dmahal_sgl *s1, *s2, *s3, *s4;
    char *text = NULL;
    size_t len;
    FILE *f;

    rig_open(&r, "sim", &dev32);
    CHECK_OK(dmahal_adapter_get(r.d, &dev32, &a2));
    CHECK_OK(dmahal_adapter_get(r.d, &d64, &a64));
    CHECK_OK(dmahal_map(r.a, &x, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s1));
    CHECK_OK(dmahal_map(a2, &y, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s2));
    /* Both 32-bit adapters draw on one pool of 5 + 5 pages: 8 used, 2 left for anyone. */
    CHECK_ERR(dmahal_map(r.a, &z, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s3), -ENOSPC);
    CHECK_OK(dmahal_map(a2, &tail, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s3));
    /* A 40-bit device reaches the user's pages above 4 GiB: no bouncing, no pool. */
    CHECK_OK(dmahal_map(a64, &z, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s4));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(a64), 0);
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_MAPREGS));
    fclose(f);
    CHECK_CONTAINS(text, "bounce pool 32-bit: 10 pages, 9 in use, 0 waiting");
    free(text);
    CHECK_OK(dmahal_unmap(r.a, s1));
    CHECK_OK(dmahal_unmap(a2, s2));
    CHECK_OK(dmahal_unmap(a2, s3));
    CHECK_OK(dmahal_unmap(a64, s4));
    rig_close(&r);
    free(b);
}

TEST(bounce_honours_alignment_and_segments_without_iommu)
{
    struct dmahal_desc d = {
        .addr_bits = 64, .alignment = 256, .max_segments = 2, .max_transfer = 65536};
    struct rig r;
    unsigned char *b = pages(8), *seen = pages(8);
    /* Reachable, but misaligned: the list must bounce. */
    struct iovec mis = {b + 8, 4000};
    /* Reachable and aligned, but three pieces for two elements: bounce into one run. */
    struct iovec three[3] = {{b, 1024}, {b + 8192, 1024}, {b + 16384, 1024}};
    struct dmahal_sgl *sgl;

    fill(b, 8 * 4096, 55);
    rig_open(&r, "sim", &d);
    CHECK_OK(dmahal_map(r.a, &mis, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    check_constraints(r.a, sgl);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 1);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b + 8, 4000) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_OK(dmahal_map(r.a, three, 3, DMAHAL_TO_DEVICE, 0, &sgl));
    check_constraints(r.a, sgl);
    CHECK_EQ(sgl->nseg, 1);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b, 1024) == 0);
    CHECK(memcmp(seen + 1024, b + 8192, 1024) == 0);
    CHECK(memcmp(seen + 2048, b + 16384, 1024) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(bounce_transfer_larger_than_the_pool_can_ever_hold_is_e2big)
{
    /* 32 MiB transfers would need 8193 map registers; one adapter adds at most 4096 pages
     * (16 MiB) to its pool, so a 20 MiB transfer can never bounce. */
    struct dmahal_desc d = {.addr_bits = 32, .max_transfer = 32u << 20, .max_segments = 1};
    struct rig r;
    size_t len = 20u << 20;
    unsigned char *b = malloc(len);
    struct iovec iov = {b, len};
    struct dmahal_sgl *sgl;

    CHECK(b != NULL);
    memset(b, 0x3c, len);
    rig_open(&r, "sim", &d);
    CHECK_EQ(dmahal_adapter_map_registers(r.a), 8193);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -E2BIG);
    CHECK(sgl == NULL);
    iov.iov_len = 16u << 20;
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 4096);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(bounce_with_no_ram_the_device_reaches_is_enomem)
{
    /* All RAM above 4 GiB and a 32-bit device: neither the memory nor a bounce page is in
     * reach, which is out of memory the device can reach, as for a common buffer. */
    struct dmahal_desc d = {.addr_bits = 32};
    struct rig r;
    unsigned char *b = pages(2);
    struct iovec iov = {b, 2 * 4096};
    struct dmahal_sgl *sgl;
    struct dmahal_buf buf;

    rig_open(&r, "sim:ram=4G-5G", &d);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -ENOMEM);
    CHECK(sgl == NULL);
    CHECK_ERR(dmahal_common_alloc(r.a, 4096, 0, &buf), -ENOMEM);
    rig_close(&r);
    free(b);
}
