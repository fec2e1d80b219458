/* SPDX-License-Identifier: MIT */
/* test_map.c - streaming maps: every adapter constraint, the IOMMU, and every misuse. */
#include "rig.h"

/* The low machine: all RAM below 64 MiB, so pinned user memory is reachable by any device
 * and the list shows the constraints alone. */
#define LOW "sim:ram=0-64M"

TEST(map_rejects_bad_arguments)
{
    struct rig r;
    unsigned char *b = pages(1);
    struct iovec iov = {b, 100};
    struct iovec empty[2] = {{b, 0}, {b + 10, 0}};
    struct iovec nullbase = {NULL, 10};
    struct dmahal_sgl *sgl = (struct dmahal_sgl *)(uintptr_t)1;

    rig_open(&r, LOW, NULL);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, NULL), -EINVAL);
    CHECK_ERR(dmahal_map(NULL, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
    CHECK(sgl == NULL);
    CHECK_ERR(dmahal_map(r.a, NULL, 1, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, (enum dmahal_dir)0, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, (enum dmahal_dir)4, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0x80, &sgl), -EINVAL);
    /* Zero bytes in all: nothing to map. */
    CHECK_ERR(dmahal_map(r.a, &iov, 0, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, empty, 2, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, &nullbase, 1, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
    CHECK(sgl == NULL);
    rig_close(&r);
    free(b);
}

TEST(unmap_and_sync_refuse_unknown_lists)
{
    struct rig r;
    struct dmahal_adapter *other;
    unsigned char *b = pages(1);
    struct iovec iov = {b, 4096};
    struct dmahal_sgl *sgl;
    /* Something that looks like a list but was never mapped: refused without a crash. */
    struct {
        struct dmahal_sgl h;
        struct dmahal_seg s[1];
    } fake = {{1}, {{0x1000, 4096}}};

    rig_open(&r, LOW, NULL);
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &other));
    CHECK_ERR(dmahal_unmap(r.a, NULL), -EINVAL);
    CHECK_ERR(dmahal_unmap(NULL, &fake.h), -EINVAL);
    CHECK_ERR(dmahal_unmap(r.a, &fake.h), -ENOENT);
    CHECK_ERR(dmahal_sync_for_cpu(r.a, &fake.h), -ENOENT);
    CHECK_ERR(dmahal_sync_for_device(r.a, &fake.h), -ENOENT);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    /* Another adapter's list is not this one's. */
    CHECK_ERR(dmahal_unmap(other, sgl), -ENOENT);
    CHECK_ERR(dmahal_sync_for_cpu(other, sgl), -ENOENT);
    CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
    CHECK_OK(dmahal_sync_for_device(r.a, sgl));
    CHECK_OK(dmahal_unmap(r.a, sgl));
    /* Double unmap, and sync after unmap. */
    CHECK_ERR(dmahal_unmap(r.a, sgl), -ENOENT);
    CHECK_ERR(dmahal_sync_for_device(r.a, sgl), -ENOENT);
    rig_close(&r);
    free(b);
}

TEST(map_direct_when_the_device_reaches_the_memory)
{
    struct rig r;
    unsigned char *b = pages(4), *seen = pages(4);
    struct iovec iov = {b + 300, 3 * 4096};
    struct dmahal_sgl *sgl;

    rig_open(&r, LOW, NULL);
    fill(b, 4 * 4096, 1);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ(sgl_total(sgl), 3 * 4096);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    check_constraints(r.a, sgl);
    /* The user's pages themselves: a later CPU write is seen at once on a coherent machine. */
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b + 300, 3 * 4096) == 0);
    b[300] ^= 0xff;
    dev_gather(r.d, sgl, seen);
    CHECK_EQ(seen[0], b[300]);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
    free(seen);
}

/* Without an IOMMU a pin gives user memory frames of its own, high-first: here above 2^48,
 * past the IOMMU's reach, where the physical-to-host table must still translate. The device
 * reaches the user's pages while the list lives, and only the frames' own RAM after it. */
TEST(map_pins_user_memory_at_frames_anywhere_in_ram)
{
    const struct dmahal_desc wide = {.addr_bits = 64};
    unsigned char *b = pages(3), *seen = pages(3), *in = pages(3);
    struct iovec iov = {b + 100, 2 * 4096};
    struct dmahal_sgl *sgl;
    dmahal_addr_t la;
    struct rig r;

    rig_open(&r, "sim:ram=0-64M,262144G-262145G", &wide);
    fill(b, 3 * 4096, 2);
    fill(in, 3 * 4096, 3);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_GE_U(sgl->seg[0].la, UINT64_C(1) << 48);
    la = sgl->seg[0].la;
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b + 100, 2 * 4096) == 0);
    /* An access across the two pinned pages is one run of the user's memory. */
    CHECK_OK(dmahal_dev_read(r.d, la + 4000, seen, 200));
    CHECK(memcmp(seen, b + 4100, 200) == 0);
    dev_scatter(r.d, sgl, in);
    CHECK(memcmp(b + 100, in, 2 * 4096) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    /* The frames are free RAM again: a stray write lands there, not in the user's pages. */
    memcpy(seen, b, 3 * 4096);
    CHECK_OK(dmahal_dev_write(r.d, la, in + 4096, 4096));
    CHECK(memcmp(seen, b, 3 * 4096) == 0);
    rig_close(&r);
    free(b);
    free(seen);
    free(in);
}

TEST(map_max_transfer_is_e2big)
{
    struct dmahal_desc desc = {.max_transfer = 8192, .max_segments = 16};
    struct rig r;
    unsigned char *b = pages(4);
    struct iovec iov[2] = {{b, 4096}, {b + 8192, 4097}};
    struct dmahal_sgl *sgl;

    rig_open(&r, LOW, &desc);
    CHECK_ERR(dmahal_map(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, &sgl), -E2BIG);
    CHECK(sgl == NULL);
    iov[1].iov_len = 4096;
    CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl_total(sgl), 8192);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(map_splits_at_max_segment)
{
    struct dmahal_desc desc = {.max_segment = 4096, .max_segments = 8};
    struct rig r;
    unsigned char *b = pages(4), *seen = pages(4);
    struct iovec iov = {b, 10000};
    struct dmahal_sgl *sgl;

    rig_open(&r, LOW, &desc);
    fill(b, 10000, 3);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 3);
    CHECK_EQ(sgl->seg[0].len, 4096);
    CHECK_EQ(sgl->seg[1].len, 4096);
    CHECK_EQ(sgl->seg[2].len, 10000 - 8192);
    check_constraints(r.a, sgl);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b, 10000) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(map_unaligned_start_needs_one_more_segment_at_a_boundary)
{
    struct dmahal_desc desc = {.boundary = 4096, .max_segments = 8};
    struct rig r;
    unsigned char *b = pages(4), *seen = pages(4);
    struct dmahal_sgl *sgl;
    struct iovec aligned = {b, 8192}, unaligned = {b + 100, 8192};

    rig_open(&r, LOW, &desc);
    fill(b, 4 * 4096, 5);
    CHECK_OK(dmahal_map(r.a, &aligned, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 2);
    check_constraints(r.a, sgl);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    /* Two pages' worth starting 100 bytes in spans three pages: three elements. */
    CHECK_OK(dmahal_map(r.a, &unaligned, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 3);
    CHECK_EQ(sgl->seg[0].len, 4096 - 100);
    CHECK_EQ(sgl->seg[2].len, 100);
    check_constraints(r.a, sgl);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b + 100, 8192) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(map_boundary_below_page_with_too_few_segments_is_e2big)
{
    struct dmahal_desc desc = {.boundary = 1024, .max_segments = 2, .max_transfer = 65536};
    struct rig r;
    unsigned char *b = pages(2);
    struct iovec iov = {b, 4096};
    struct dmahal_sgl *sgl;

    rig_open(&r, LOW, &desc);
    /* Four 1 KiB windows in any layout: two elements never suffice. */
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -E2BIG);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    iov.iov_len = 2048;
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 2);
    check_constraints(r.a, sgl);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(map_coalesces_adjacent_entries)
{
    struct dmahal_desc desc = {.max_segments = 4};
    struct rig r;
    unsigned char *b = pages(2), *seen = pages(2);
    /* Three entries that continue one another in memory: one element. */
    struct iovec iov[3] = {{b, 100}, {b + 100, 3000}, {b + 3100, 2000}};
    struct dmahal_sgl *sgl;

    fill(b, 8192, 9);
    rig_open(&r, LOW, &desc);
    CHECK_OK(dmahal_map(r.a, iov, 3, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ(sgl->seg[0].len, 5100);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b, 5100) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(map_iommu_gives_one_contiguous_range_per_transfer)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_segments = 1};
    struct rig r;
    unsigned char *x = pages(2), *y = pages(1), *z = pages(1), *seen = pages(4);
    /* Scattered in memory, page-aligned where they meet: one element through the IOMMU. */
    struct iovec iov[3] = {{x + 4096 + 512, 4096 - 512}, {y, 4096}, {z, 1000}};
    struct dmahal_sgl *sgl;
    dmahal_addr_t la;

    fill(x, 8192, 11);
    fill(y, 4096, 12);
    fill(z, 4096, 13);
    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_OK(dmahal_map(r.a, iov, 3, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ(sgl->seg[0].len, 4096 - 512 + 4096 + 1000);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    check_constraints(r.a, sgl);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, x + 4096 + 512, 4096 - 512) == 0);
    CHECK(memcmp(seen + 4096 - 512, y, 4096) == 0);
    CHECK(memcmp(seen + 8192 - 512, z, 1000) == 0);
    la = sgl->seg[0].la;
    CHECK_OK(dmahal_unmap(r.a, sgl));
    /* The IOMMU forgot it: the same address faults now. */
    CHECK_ERR(dmahal_dev_read(r.d, la, seen, 1), -EFAULT);
    rig_close(&r);
    free(x);
    free(y);
    free(z);
    free(seen);
}

TEST(map_iommu_enforces_direction)
{
    struct rig r;
    unsigned char *b = pages(1), byte = 1;
    struct iovec iov = {b, 4096};
    struct dmahal_sgl *sgl;
    struct dmahal_fault f = {.size = sizeof(f)};

    rig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_OK(dmahal_dev_read(r.d, sgl->seg[0].la, &byte, 1));
    CHECK_ERR(dmahal_dev_write(r.d, sgl->seg[0].la, &byte, 1), -EFAULT);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ(f.reason, DMAHAL_FAULT_PERM);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(map_iommu_honours_addr_bits)
{
    static const unsigned widths[] = {24, 32, 40, 64};

    for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
        struct dmahal_desc desc = {.addr_bits = widths[w], .max_segments = 4};
        struct rig r;
        unsigned char *b = pages(8);
        struct iovec iov = {b + 7, 5 * 4096};
        struct dmahal_sgl *sgl;

        rig_open(&r, "sim:iommu=on", &desc);
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
        check_constraints(r.a, sgl);
        CHECK_EQ(sgl->nseg, 1);
        CHECK_OK(dmahal_unmap(r.a, sgl));
        rig_close(&r);
        free(b);
    }
}

TEST(map_iommu_misaligned_entries_bounce)
{
    struct dmahal_desc desc = {.alignment = 512, .max_segments = 1};
    struct rig r;
    unsigned char *b = pages(2), *seen = pages(2);
    struct iovec iov = {b + 100, 3000};
    struct dmahal_sgl *sgl;

    fill(b, 8192, 17);
    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ_U(sgl->seg[0].la & 511, 0);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 1);
    dev_gather(r.d, sgl, seen);
    CHECK(memcmp(seen, b + 100, 3000) == 0);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    rig_close(&r);
    free(b);
    free(seen);
}

TEST(map_dump_shows_lists_and_map_registers)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_transfer = 16384};
    struct rig r;
    unsigned char *b = pages(2);
    struct iovec iov = {b, 5000};
    struct dmahal_sgl *sgl;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    rig_open(&r, "sim", &desc);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    f = open_memstream(&text, &len);
    CHECK(f != NULL);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_MAPREGS | DMAHAL_DUMP_SGL));
    fclose(f);
    CHECK_CONTAINS(text, "map registers: 5, 2 in use");
    CHECK_CONTAINS(text, "5000 bytes  1 segments  map registers 2 (bounced)");
    CHECK_CONTAINS(text, "scatter/gather lists: 1");
    CHECK_CONTAINS(text, "bounce pool 32-bit: 5 pages, 2 in use, 0 waiting");
    free(text);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_MAPREGS | DMAHAL_DUMP_SGL));
    fclose(f);
    CHECK_CONTAINS(text, "map registers: 5, 0 in use");
    CHECK_CONTAINS(text, "scatter/gather lists: 0");
    free(text);
    rig_close(&r);
    free(b);
}

TEST(adapter_put_releases_live_maps)
{
    struct dmahal_desc desc = {.addr_bits = 32};
    struct rig r;
    unsigned char *b = pages(2);
    struct iovec iov = {b, 8192};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim", &desc);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    CHECK_GT(dmahal_adapter_map_registers_in_use(r.a), 0);
    /* A leak the adapter cleans up: ASan would see the list and pages go astray. */
    dmahal_adapter_put(r.a);
    CHECK_OK(dmahal_adapter_get(r.d, &desc, &r.a));
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

TEST(map_many_live_lists_on_one_adapter)
{
    /* More lists than the registry's lock-free table holds: the rest go to its chains, and
     * every one is found, unmapped once, and refused the second time. */
    enum { N = 700 };
    struct dmahal_desc desc = {.addr_bits = 64, .max_segments = 2};
    struct rig r;
    unsigned char *b = pages(N);
    static struct dmahal_sgl *sgl[N];
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    rig_open(&r, "sim:iommu=on", &desc);
    for (int i = 0; i < N; i++) {
        struct iovec iov = {b + (size_t)i * 4096, 4096};

        b[(size_t)i * 4096] = (unsigned char)i;
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl[i]));
    }
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_SGL));
    fclose(f);
    CHECK_CONTAINS(text, "scatter/gather lists: 700");
    free(text);
    for (int i = 0; i < N; i += 2) {
        unsigned char v;

        CHECK_OK(dmahal_sync_for_cpu(r.a, sgl[i]));
        CHECK_OK(dmahal_dev_read(r.d, sgl[i]->seg[0].la, &v, 1));
        CHECK_EQ(v, (unsigned char)i);
        CHECK_OK(dmahal_unmap(r.a, sgl[i]));
    }
    for (int i = 0; i < N; i++)
        CHECK_ERR(dmahal_unmap(r.a, sgl[i]), i % 2 ? 0 : -ENOENT);
    rig_close(&r);
    free(b);
}
