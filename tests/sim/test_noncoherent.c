/* SPDX-License-Identifier: MIT */
/* test_noncoherent.c - the machine whose devices do not snoop CPU caches: a driver that
 * syncs works, and a driver that misses any one sync sees (or makes the device see) stale
 * data. */
#include "rig.h"

static const char *const machines[] = {"sim:coherent=no,ram=0-64M", "sim:coherent=no",
                                       "sim:coherent=no,iommu=on"};
#define NMACHINES (sizeof(machines) / sizeof(machines[0]))

static const struct dmahal_desc nc = {.addr_bits = 64, .max_segments = 4};

TEST(noncoherent_to_device_needs_sync_for_device)
{
    for (size_t m = 0; m < NMACHINES; m++) {
        struct rig r;
        unsigned char *b = pages(2), *seen = pages(2);
        struct iovec iov = {b + 64, 5000};
        struct dmahal_sgl *sgl;

        rig_open(&r, machines[m], &nc);
        fill(b, 8192, 7);
        /* A correct driver: write, map (which flushes), the device reads the data. */
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
        dev_gather(r.d, sgl, seen);
        CHECK(memcmp(seen, b + 64, 5000) == 0);
        /* A driver that writes again and forgets sync_for_device: the device reads the old
         * bytes, still in memory behind the CPU's cache. */
        memset(b + 64, 0xee, 5000);
        dev_gather(r.d, sgl, seen);
        CHECK_NE(seen[0], 0xee);
        CHECK_NE(seen[4999], 0xee);
        CHECK_OK(dmahal_sync_for_device(r.a, sgl));
        dev_gather(r.d, sgl, seen);
        CHECK_EQ(seen[0], 0xee);
        CHECK_EQ(seen[4999], 0xee);
        CHECK_OK(dmahal_unmap(r.a, sgl));
        rig_close(&r);
        free(b);
        free(seen);
    }
}

TEST(noncoherent_from_device_needs_sync_for_cpu)
{
    for (size_t m = 0; m < NMACHINES; m++) {
        struct rig r;
        unsigned char *b = pages(2), *data = pages(2);
        struct iovec iov = {b, 6000};
        struct dmahal_sgl *sgl;

        rig_open(&r, machines[m], &nc);
        fill(data, 6000, 99);
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
        dev_scatter(r.d, sgl, data);
        /* A driver that reads before sync_for_cpu sees what its cache held: zeroes. */
        CHECK_EQ(b[0], 0);
        CHECK_EQ(b[5999], 0);
        CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
        CHECK(memcmp(b, data, 6000) == 0);
        /* Bytes next to the buffer, in the same page, were never the device's. */
        CHECK_EQ(b[6000], 0);
        CHECK_OK(dmahal_unmap(r.a, sgl));
        rig_close(&r);
        free(b);
        free(data);
    }
}

TEST(noncoherent_unmap_makes_device_writes_visible)
{
    struct rig r;
    unsigned char *b = pages(1), byte = 0x42;
    struct iovec iov = {b, 4096};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim:coherent=no", &nc);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la + 17, &byte, 1));
    CHECK_EQ(b[17], 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_EQ(b[17], 0x42);
    rig_close(&r);
    free(b);
}

TEST(noncoherent_coherent_adapter_needs_no_sync)
{
    struct dmahal_desc snoops = {.addr_bits = 64, .coherent = true};
    struct rig r;
    unsigned char *b = pages(1), byte = 0x42, seen;
    struct iovec iov = {b, 4096};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim:coherent=no", &snoops);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la, &byte, 1));
    CHECK_EQ(b[0], 0x42);
    b[1] = 0x24;
    CHECK_OK(dmahal_dev_read(r.d, sgl->seg[0].la + 1, &seen, 1));
    CHECK_EQ(seen, 0x24);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(noncoherent_cached_common_buffer_needs_common_sync)
{
    for (size_t m = 0; m < NMACHINES; m++) {
        struct rig r;
        struct dmahal_buf cached, plain;
        unsigned char seen[64], in[64];

        rig_open(&r, machines[m], &nc);
        CHECK_OK(dmahal_common_alloc(r.a, 256, DMAHAL_CACHED, &cached));
        CHECK_OK(dmahal_common_alloc(r.a, 256, 0, &plain));
        memset(cached.va, 0x11, 64);
        memset(plain.va, 0x22, 64);
        /* Uncached: the device sees the CPU's writes at once. */
        CHECK_OK(dmahal_dev_read(r.d, plain.la, seen, 64));
        CHECK_EQ(seen[63], 0x22);
        /* Cached, no flush: the device reads the zeroes memory still holds. */
        CHECK_OK(dmahal_dev_read(r.d, cached.la, seen, 64));
        CHECK_EQ(seen[0], 0);
        CHECK_OK(dmahal_common_sync(r.a, &cached, 0, 64, DMAHAL_TO_DEVICE));
        CHECK_OK(dmahal_dev_read(r.d, cached.la, seen, 64));
        CHECK_EQ(seen[0], 0x11);
        CHECK_EQ(seen[63], 0x11);
        /* The device writes; the CPU sees it after an invalidate only. */
        memset(in, 0x77, sizeof(in));
        CHECK_OK(dmahal_dev_write(r.d, cached.la + 128, in, 64));
        CHECK_EQ(((unsigned char *)cached.va)[128], 0);
        CHECK_OK(dmahal_common_sync(r.a, &cached, 128, 64, DMAHAL_FROM_DEVICE));
        CHECK_EQ(((unsigned char *)cached.va)[128], 0x77);
        CHECK_EQ(((unsigned char *)cached.va)[191], 0x77);
        CHECK_OK(dmahal_dev_write(r.d, plain.la + 128, in, 64));
        CHECK_EQ(((unsigned char *)plain.va)[128], 0x77);
        /* Syncing an uncached buffer is allowed and harmless. */
        CHECK_OK(dmahal_common_sync(r.a, &plain, 0, 0, DMAHAL_BIDIRECTIONAL));
        CHECK_OK(dmahal_common_free(r.a, &cached));
        CHECK_ERR(dmahal_common_sync(r.a, &cached, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
        CHECK_OK(dmahal_common_free(r.a, &plain));
        rig_close(&r);
    }
}

TEST(common_sync_checks_arguments)
{
    struct rig r;
    struct dmahal_buf b;

    rig_open(&r, "sim:coherent=no", &nc);
    CHECK_OK(dmahal_common_alloc(r.a, 100, DMAHAL_CACHED, &b));
    CHECK_ERR(dmahal_common_sync(NULL, &b, 0, 0, DMAHAL_TO_DEVICE), -EINVAL);
    CHECK_ERR(dmahal_common_sync(r.a, NULL, 0, 0, DMAHAL_TO_DEVICE), -EINVAL);
    CHECK_ERR(dmahal_common_sync(r.a, &b, 0, 0, (enum dmahal_dir)0), -EINVAL);
    CHECK_ERR(dmahal_common_sync(r.a, &b, 101, 0, DMAHAL_TO_DEVICE), -EINVAL);
    CHECK_ERR(dmahal_common_sync(r.a, &b, 50, 51, DMAHAL_TO_DEVICE), -EINVAL);
    CHECK_OK(dmahal_common_sync(r.a, &b, 50, 50, DMAHAL_TO_DEVICE));
    b.len = 99;
    CHECK_ERR(dmahal_common_sync(r.a, &b, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
    b.len = 100;
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_close(&r);
}

TEST(noncoherent_buffer_freed_by_adapter_put_leaves_no_stale_view)
{
    struct rig r;
    struct dmahal_buf b;
    unsigned char seen;

    rig_open(&r, "sim:coherent=no,ram=0-64M", &nc);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, DMAHAL_CACHED, &b));
    dmahal_adapter_put(r.a);
    /* The next adapter's uncached buffer reuses the memory: the device sees the CPU's. */
    CHECK_OK(dmahal_adapter_get(r.d, &nc, &r.a));
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    memset(b.va, 0x5c, 4096);
    CHECK_OK(dmahal_dev_read(r.d, b.la + 4095, &seen, 1));
    CHECK_EQ(seen, 0x5c);
    rig_close(&r);
}
