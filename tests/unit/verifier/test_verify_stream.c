/* SPDX-License-Identifier: MIT */
/* test_verify_stream.c - the verifier's streaming checks (bug check 0xE6, Linux dma-debug):
 * each misuse of dmahal_map/unmap/sync provoked and its report asserted, and clean
 * transfers on every kind of machine with no report at all. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "vrig.h"

/* rig.h's pages, filled with 0x11 rather than zeroes. */
static unsigned char *pages11(size_t n)
{
    unsigned char *p = pages(n);

    memset(p, 0x11, n * 4096);
    return p;
}

/* What a device does with a list: reads or writes every element. */
static void dev_all(struct dmahal_device *d, const struct dmahal_sgl *sgl, bool write)
{
    static unsigned char x[1 << 16];

    for (unsigned i = 0; i < sgl->nseg; i++) {
        CHECK_LE_U(sgl->seg[i].len, sizeof(x));
        if (write)
            CHECK_OK(dmahal_dev_write(d, sgl->seg[i].la, x, sgl->seg[i].len));
        else
            CHECK_OK(dmahal_dev_read(d, sgl->seg[i].la, x, sgl->seg[i].len));
    }
}

static unsigned async_calls;
static struct dmahal_sgl *async_sgl;

static void async_fn(struct dmahal_adapter *a, int status, struct dmahal_sgl *sgl, void *ctx)
{
    (void)a;
    (void)ctx;
    async_calls++;
    async_sgl = status == 0 ? sgl : NULL;
}

TEST(verify_stream_clean_transfers_get_no_report)
{
    static const char *const specs[] = {"sim", "sim:iommu=on", "sim:coherent=no",
                                        "sim:ram=0-64M,4G-8G"};
    static const struct dmahal_desc descs[] = {{.addr_bits = 64, .max_segments = 16},
                                               {.addr_bits = 32, .max_segments = 4},
                                               {.addr_bits = 28, .alignment = 512}};

    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        for (size_t k = 0; k < sizeof(descs) / sizeof(descs[0]); k++) {
            struct vrig r;
            unsigned char *m = pages11(8);
            struct iovec iov[2] = {{m + 100, 5000}, {m + 4 * 4096, 8192}};
            struct dmahal_sgl *sgl;

            vrig_open(&r, specs[s], &descs[k]);
            /* To the device: map, the device reads, unmap. */
            CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, &sgl));
            dev_all(r.d, sgl, false);
            CHECK_OK(dmahal_unmap(r.a, sgl));
            /* From the device: it writes, the CPU looks, gives it back, unmap. */
            CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_FROM_DEVICE, 0, &sgl));
            dev_all(r.d, sgl, true);
            CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
            CHECK_OK(dmahal_sync_for_device(r.a, sgl));
            dev_all(r.d, sgl, true);
            CHECK_OK(dmahal_unmap(r.a, sgl));
            /* Both ways, with the CPU writing in its turn. */
            CHECK_OK(dmahal_map(r.a, iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
            dev_all(r.d, sgl, false);
            dev_all(r.d, sgl, true);
            CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
            m[100] ^= 1;
            CHECK_OK(dmahal_sync_for_device(r.a, sgl));
            dev_all(r.d, sgl, false);
            CHECK_OK(dmahal_unmap(r.a, sgl));
            /* A to-device list the CPU changes in its turn is fine too. */
            CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, &sgl));
            CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
            m[200] ^= 1;
            CHECK_OK(dmahal_sync_for_device(r.a, sgl));
            dev_all(r.d, sgl, false);
            CHECK_OK(dmahal_unmap(r.a, sgl));
            /* Two readers of the same memory may overlap. */
            {
                struct dmahal_sgl *other;

                CHECK_OK(dmahal_map(r.a, iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
                CHECK_OK(dmahal_map(r.a, iov, 1, DMAHAL_TO_DEVICE, 0, &other));
                CHECK_OK(dmahal_unmap(r.a, other));
                CHECK_OK(dmahal_unmap(r.a, sgl));
            }
            /* Deferred. */
            async_calls = 0;
            CHECK_OK(dmahal_map_async(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, async_fn, NULL));
            CHECK_EQ(async_calls, 1);
            CHECK(async_sgl != NULL);
            dev_all(r.d, async_sgl, false);
            CHECK_OK(dmahal_unmap(r.a, async_sgl));
            dmahal_platform_close(r.p);
            CHECK_EQ(r.calls, 0);
            free(m);
        }
    }
}

TEST(verify_stream_device_write_into_to_device_mapping)
{
    struct vrig r;
    unsigned char *m = pages11(1), x = 0;
    struct iovec iov = {m, 4096};
    struct dmahal_sgl *sgl;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la + 10, &x, 1));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_WRITE_TO_DEVICE)->message, "writes 1 byte(s)");
    CHECK_CONTAINS(r.msg, "into to-device mapping #1 of 4096 bytes");
    CHECK_OK(dmahal_unmap(r.a, sgl));
    dmahal_platform_close(r.p);
    free(m);
}

TEST(verify_stream_cpu_write_while_device_owns)
{
    struct vrig r;
    unsigned char *m = pages11(2);
    struct iovec iov = {m, 8192};
    struct dmahal_sgl *sgl;

    vrig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    m[5000] = 0x77; /* the device owns it now */
    dev_all(r.d, sgl, false);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS)->message,
                   "which the CPU wrote after it was mapped");
    m[10] = 0x77;
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS)->message,
                   "found at unmap: the CPU wrote into to-device mapping #1");
    dmahal_platform_close(r.p);
    free(m);
}

TEST(verify_stream_unmap_and_sync_of_lists_not_mapped)
{
    struct vrig r;
    struct dmahal_adapter *other;
    unsigned char *m = pages11(1);
    struct iovec iov = {m, 4096};
    struct dmahal_sgl *sgl, fake = {.nseg = 0};

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &other));
    CHECK_ERR(dmahal_unmap(r.a, &fake), -ENOENT);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_UNMAP_NOT_MAPPED)->message, "not a live list");
    CHECK_ERR(dmahal_sync_for_cpu(r.a, &fake), -ENOENT);
    vrig_one(&r, DMAHAL_REPORT_SYNC_NOT_MAPPED);

    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    CHECK_ERR(dmahal_unmap(other, sgl), -ENOENT);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_WRONG_ADAPTER)->message, "unmap through adapter");
    CHECK_ERR(dmahal_sync_for_device(other, sgl), -ENOENT);
    vrig_one(&r, DMAHAL_REPORT_WRONG_ADAPTER);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_ERR(dmahal_unmap(r.a, sgl), -ENOENT);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DOUBLE_UNMAP)->message,
                   "unmap of a list unmapped 0 unmap(s) ago: from-device mapping #1");
    CHECK_ERR(dmahal_sync_for_cpu(r.a, sgl), -ENOENT);
    vrig_one(&r, DMAHAL_REPORT_SYNC_NOT_MAPPED);
    dmahal_platform_close(r.p);
    CHECK_EQ(r.calls, 6);
    free(m);
}

/* The list is read-only: handing back another size or entry count is caught. */
TEST(verify_stream_modified_list)
{
    struct vrig r;
    struct dmahal_desc desc = {.max_segments = 8, .max_segment = 4096};
    unsigned char *m = pages11(3);
    struct iovec iov = {m, 3 * 4096};
    struct dmahal_sgl *sgl;

    vrig_open(&r, "sim", &desc);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 3);
    sgl->nseg = 2;
    CHECK_OK(dmahal_sync_for_device(r.a, sgl));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_SGL_MODIFIED)->message,
                   "entry count is 2, it was mapped with 3");
    sgl->nseg = 3;
    sgl->seg[1].len = 100;
    CHECK_OK(dmahal_unmap(r.a, sgl)); /* the core still unmaps all of it */
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_SGL_MODIFIED)->message, "element 1 is la");
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    dmahal_platform_close(r.p);
    free(m);
}

TEST(verify_stream_too_big_and_zero_length)
{
    struct vrig r;
    struct dmahal_desc desc = {.max_transfer = 8192};
    unsigned char *m = pages11(3);
    struct iovec iov = {m, 8193}, none[2] = {{m, 0}, {m + 10, 0}};
    struct dmahal_sgl *sgl;

    vrig_open(&r, "sim", &desc);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -E2BIG);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_TOO_MANY_MAP_REGISTERS)->message,
                   "8193 bytes, spanning 3 pages, is longer than adapter #1's max_transfer 8192 "
                   "(3 map registers)");
    /* The pages counted are those the entries span: two that continue one another share
     * the page where they meet. */
    {
        struct iovec two[2] = {{m + 100, 4000}, {m + 4100, 4200}};

        CHECK_ERR(dmahal_map(r.a, two, 2, DMAHAL_TO_DEVICE, 0, &sgl), -E2BIG);
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_TOO_MANY_MAP_REGISTERS)->message,
                       "8200 bytes, spanning 3 pages");
    }
    CHECK_ERR(dmahal_map(r.a, none, 2, DMAHAL_FROM_DEVICE, 0, &sgl), -EINVAL);
    vrig_one(&r, DMAHAL_REPORT_ZERO_LENGTH_MAP);
    CHECK_ERR(dmahal_map_async(r.a, none, 2, DMAHAL_FROM_DEVICE, 0, async_fn, NULL), -EINVAL);
    vrig_one(&r, DMAHAL_REPORT_ZERO_LENGTH_MAP);
    dmahal_platform_close(r.p);
    free(m);
}

TEST(verify_stream_overlapping_writable_mappings)
{
    struct vrig r;
    unsigned char *m = pages11(4);
    struct iovec a = {m, 8192}, b = {m + 4096, 8192};
    struct dmahal_sgl *s1, *s2;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_map(r.a, &a, 1, DMAHAL_FROM_DEVICE, 0, &s1));
    CHECK_OK(dmahal_map(r.a, &b, 1, DMAHAL_TO_DEVICE, 0, &s2));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_OVERLAPPING_MAPPINGS)->message,
                   "a to-device mapping of memory already in from-device mapping #1");
    CHECK_OK(dmahal_unmap(r.a, s2));
    CHECK_OK(dmahal_unmap(r.a, s1));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    dmahal_platform_close(r.p);
    free(m);
}

TEST(verify_stream_common_buffer_freed_while_mapped)
{
    struct vrig r;
    struct dmahal_buf b;
    struct iovec iov;
    struct dmahal_sgl *sgl;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    iov = (struct iovec){b.va, 512};
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_FREED_WHILE_MAPPED)->message,
                   "while it is in bidirectional mapping #1");
    CHECK_OK(dmahal_unmap(r.a, sgl));
    dmahal_platform_close(r.p);
}

TEST(verify_stream_leak_at_put_and_late_dma_after_unmap)
{
    static const char *const specs[] = {"sim", "sim:iommu=on"};

    for (size_t s = 0; s < 2; s++) {
        struct vrig r;
        unsigned char *m = pages11(2), x[8];
        struct iovec iov = {m, 8192};
        struct dmahal_sgl *sgl, *kept;
        dmahal_addr_t la;

        vrig_open(&r, specs[s], NULL);
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
        la = sgl->seg[0].la;
        CHECK_OK(dmahal_unmap(r.a, sgl));
        /* The device was not told: it still writes (the bus may or may not let it). */
        dmahal_dev_write(r.d, la + 8, x, 8);
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_USE_AFTER_UNMAP)->message,
                       "writes 8 byte(s)");
        CHECK_CONTAINS(r.msg, "unmapped 0 unmap(s) ago");

        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &kept));
        /* Past the end of its only segment. */
        dmahal_dev_write(r.d, kept->seg[0].la + 8190, x, 4); /* the bus may refuse it too */
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message,
                       "runs 2 byte(s) past the segments of from-device mapping #2");
        dmahal_adapter_put(r.a);
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_MAP_LEAK)->message,
                       "leak: adapter put with from-device mapping #2 of 8192 bytes");
        /* And the put adapter refuses to map. */
        CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl), -EINVAL);
        vrig_one(&r, DMAHAL_REPORT_BAD_ADAPTER);
        dmahal_platform_close(r.p);
        free(m);
    }
}

/* A cached common buffer on a machine that does not snoop: the device reads what the last
 * flush gave it, so a write without one is reported. */
TEST(verify_stream_cached_buffer_not_flushed)
{
    struct vrig r;
    struct dmahal_buf b;
    unsigned char x[64];

    vrig_open(&r, "sim:coherent=no", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 256, DMAHAL_CACHED, &b));
    memset(b.va, 1, 256);
    CHECK_OK(dmahal_common_sync(r.a, &b, 0, 0, DMAHAL_TO_DEVICE));
    CHECK_OK(dmahal_dev_read(r.d, b.la, x, 64));
    CHECK_EQ(x[0], 1); /* the sync reached the allocator under the guard zones */
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    ((unsigned char *)b.va)[3] = 2;
    CHECK_OK(dmahal_dev_read(r.d, b.la, x, 64));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_NOT_FLUSHED)->message,
                   "which the CPU wrote after its last dmahal_common_sync(DMAHAL_TO_DEVICE)");
    CHECK_OK(dmahal_common_sync(r.a, &b, 0, 0, DMAHAL_TO_DEVICE));
    CHECK_OK(dmahal_dev_read(r.d, b.la, x, 64));
    CHECK_EQ(x[3], 2);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    /* An uncached buffer needs no flush: nothing to report. */
    {
        struct dmahal_buf u;

        CHECK_OK(dmahal_common_alloc(r.a, 256, 0, &u));
        ((unsigned char *)u.va)[3] = 2;
        CHECK_OK(dmahal_dev_read(r.d, u.la, x, 64));
        CHECK_OK(dmahal_common_free(r.a, &u));
        CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    }
    CHECK_OK(dmahal_common_free(r.a, &b));
    dmahal_platform_close(r.p);
}

TEST(verify_stream_common_sync_misuse)
{
    struct vrig r;
    struct dmahal_adapter *other;
    struct dmahal_buf b, lie;

    vrig_open(&r, "sim:coherent=no", NULL);
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &other));
    CHECK_OK(dmahal_common_alloc(r.a, 256, DMAHAL_CACHED, &b));
    lie = b;
    lie.len = 4096;
    CHECK_ERR(dmahal_common_sync(r.a, &lie, 200, 100, DMAHAL_TO_DEVICE), -ENOENT);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_SYNC_OUT_OF_RANGE)->message,
                   "offsets 200..299, outside 256-byte common buffer");
    lie.len = 100; /* inside, but not the buffer's length: not a live buffer, as the core says */
    CHECK_ERR(dmahal_common_sync(r.a, &lie, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_SYNC_NOT_MAPPED)->message, "with the wrong length");
    CHECK_ERR(dmahal_common_sync(other, &b, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
    vrig_one(&r, DMAHAL_REPORT_WRONG_ADAPTER);
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_ERR(dmahal_common_sync(r.a, &b, 0, 0, DMAHAL_FROM_DEVICE), -ENOENT);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_SYNC_NOT_MAPPED)->message, "which was freed");
    dmahal_platform_close(r.p);
}
