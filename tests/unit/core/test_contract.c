/* SPDX-License-Identifier: MIT */
/* test_contract.c - where the headers and the code once disagreed: each case pins the one
 * answer the header now gives. */
#include "rig.h"

/* A max_transfer above the library's limit (1 TiB) is capped to it, as the header says,
 * and the adapter reports the cap; it is never refused. */
TEST(adapter_max_transfer_above_the_limit_is_capped)
{
    struct dmahal_desc huge = {.addr_bits = 64, .max_transfer = SIZE_MAX};
    struct dmahal_desc got;
    struct rig r;
    struct dmahal_adapter *a = NULL;

    rig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_adapter_get(r.d, &huge, &a));
    CHECK_OK(dmahal_adapter_desc(a, &got));
    CHECK_EQ_U(got.max_transfer, (size_t)1 << 40);
    dmahal_adapter_put(a);
    huge.max_transfer = ((size_t)1 << 40) + 1;
    CHECK_OK(dmahal_adapter_get(r.d, &huge, &a));
    dmahal_adapter_put(a);
    /* An alignment above the limit has no transfer it could fit: refused. */
    huge.alignment = (size_t)1 << 41;
    a = (struct dmahal_adapter *)&r;
    CHECK_ERR(dmahal_adapter_get(r.d, &huge, &a), -EINVAL);
    CHECK(a == NULL);
    rig_close(&r);
}

/* dmahal_common_sync of a buffer that is not live: -ENOENT on every kind of adapter. */
TEST(common_sync_of_a_buffer_not_live_is_enoent_everywhere)
{
    const char *specs[] = {"sim", "sim:coherent=no", "sim:iommu=on"};
    struct dmahal_desc coh = {.addr_bits = 64, .coherent = true}, non = {.addr_bits = 64};

    for (unsigned i = 0; i < 3; i++) {
        for (unsigned k = 0; k < 2; k++) {
            struct rig r;
            struct dmahal_buf b, other;
            unsigned flags = k ? DMAHAL_CACHED : 0;

            rig_open(&r, specs[i], i == 1 ? &non : &coh);
            CHECK_OK(dmahal_common_alloc(r.a, 8192, flags, &b));
            CHECK_OK(dmahal_common_sync(r.a, &b, 0, 0, DMAHAL_TO_DEVICE));
            other = b;
            other.len = 4096;
            CHECK_ERR(dmahal_common_sync(r.a, &other, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
            other = b;
            other.la ^= 4096;
            CHECK_ERR(dmahal_common_sync(r.a, &other, 0, 0, DMAHAL_FROM_DEVICE), -ENOENT);
            other = b;
            other.va = (char *)b.va + 4096;
            other.len = 4096;
            CHECK_ERR(dmahal_common_sync(r.a, &other, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
            CHECK_OK(dmahal_common_free(r.a, &b));
            CHECK_ERR(dmahal_common_sync(r.a, &b, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
            /* A small (packed) buffer: same answers. */
            CHECK_OK(dmahal_common_alloc(r.a, 64, flags, &b));
            CHECK_OK(dmahal_common_sync(r.a, &b, 0, 64, DMAHAL_BIDIRECTIONAL));
            CHECK_OK(dmahal_common_free(r.a, &b));
            CHECK_ERR(dmahal_common_sync(r.a, &b, 0, 64, DMAHAL_BIDIRECTIONAL), -ENOENT);
            rig_close(&r);
        }
    }
}

/* A boundary that max_segment does not divide: each boundary window takes two elements
 * (6 KiB then 2 KiB), more than length / max_segment; a list that fits max_segments must
 * be given, not refused. */
TEST(map_list_sized_for_max_segment_not_dividing_boundary)
{
    struct dmahal_desc d = {.addr_bits = 64,
                            .boundary = 8192,
                            .max_segment = 6144,
                            .max_segments = 64,
                            .max_transfer = 256 * 1024};
    const char *specs[] = {"sim:iommu=on", "sim"};
    unsigned char *b = pages(32);
    struct iovec iov = {b, 96 * 1024}, two[2] = {{b, 40 * 1024}, {b + 64 * 1024, 56 * 1024}};

    for (unsigned i = 0; i < 2; i++) {
        struct rig r;
        struct dmahal_sgl *sgl;

        rig_open(&r, specs[i], &d);
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
        check_constraints(r.a, sgl);
        CHECK_EQ(sgl_total(sgl), 96 * 1024);
        CHECK_GE(sgl->nseg, 24);
        CHECK_OK(dmahal_unmap(r.a, sgl));
        CHECK_OK(dmahal_map(r.a, two, 2, DMAHAL_FROM_DEVICE, 0, &sgl));
        check_constraints(r.a, sgl);
        CHECK_EQ(sgl_total(sgl), 96 * 1024);
        CHECK_OK(dmahal_unmap(r.a, sgl));
        rig_close(&r);
    }
    free(b);
}

/* ---- gaps the headers now close ----------------------------------------------------------- */

/* What a device may do against a mapping's direction. With an IOMMU: only what the direction
 * allows, anything else faults. Without: nothing stops it, and what it did is what the
 * layout makes of it (in place: the driver's memory; bounced: pages never copied back for a
 * TO_DEVICE map, filled from the driver's memory for a FROM_DEVICE one). */
TEST(device_access_against_the_direction)
{
    struct dmahal_desc d64 = {.addr_bits = 64, .max_transfer = 16384};
    struct dmahal_desc d32 = {.addr_bits = 32, .max_transfer = 16384};
    struct {
        const char *spec;
        const struct dmahal_desc *d;
        bool iommu, bounced;
    } cases[] = {{"sim:iommu=on", &d64, true, false},
                 {"sim", &d64, false, false},
                 {"sim", &d32, false, true}};

    for (unsigned i = 0; i < 3; i++) {
        struct rig r;
        unsigned char *b = pages(1), x[16], y[16];
        struct iovec iov = {b, 4096};
        struct dmahal_sgl *sgl;

        rig_open(&r, cases[i].spec, cases[i].d);
        memset(b, 0x33, 4096);
        memset(x, 0xee, sizeof(x));
        /* TO_DEVICE: the device writes. */
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
        CHECK_OK(dmahal_dev_read(r.d, sgl->seg[0].la, y, sizeof(y)));
        CHECK_EQ_U(y[0], 0x33);
        if (cases[i].iommu) {
            CHECK_ERR(dmahal_dev_write(r.d, sgl->seg[0].la, x, sizeof(x)), -EFAULT);
        } else {
            CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la, x, sizeof(x)));
        }
        CHECK_OK(dmahal_unmap(r.a, sgl));
        CHECK_EQ_U(b[0], cases[i].iommu || cases[i].bounced ? 0x33 : 0xee);
        /* FROM_DEVICE: the device reads. */
        memset(b, 0x44, 4096);
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
        if (cases[i].iommu) {
            CHECK_ERR(dmahal_dev_read(r.d, sgl->seg[0].la, y, sizeof(y)), -EFAULT);
        } else {
            CHECK_OK(dmahal_dev_read(r.d, sgl->seg[0].la, y, sizeof(y)));
            CHECK_EQ_U(y[0], 0x44);
        }
        CHECK_OK(dmahal_unmap(r.a, sgl));
        rig_close(&r);
        free(b);
    }
}

/* A coherent and a non-coherent adapter of one device map the same memory on a machine
 * that does not snoop: the caches are the machine's, so the device sees, through either
 * mapping, memory as the non-coherent adapter's syncs leave it. */
TEST(coherent_and_non_coherent_adapters_sharing_memory)
{
    struct dmahal_desc non = {.addr_bits = 64}, coh = {.addr_bits = 64, .coherent = true};
    struct rig r;
    struct dmahal_adapter *c;
    unsigned char *b = pages(1), y = 0;
    struct iovec iov = {b, 4096};
    struct dmahal_sgl *sn, *sc;

    rig_open(&r, "sim:coherent=no", &non);
    CHECK_OK(dmahal_adapter_get(r.d, &coh, &c));
    b[0] = 1;
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sn));
    b[0] = 2; /* after the non-coherent map's flush, in the CPU's cache only */
    CHECK_OK(dmahal_map(c, &iov, 1, DMAHAL_TO_DEVICE, 0, &sc));
    CHECK_OK(dmahal_dev_read(r.d, sc->seg[0].la, &y, 1));
    CHECK_EQ_U(y, 1);
    CHECK_OK(dmahal_dev_read(r.d, sn->seg[0].la, &y, 1));
    CHECK_EQ_U(y, 1);
    CHECK_OK(dmahal_sync_for_device(r.a, sn));
    CHECK_OK(dmahal_dev_read(r.d, sc->seg[0].la, &y, 1));
    CHECK_EQ_U(y, 2);
    CHECK_OK(dmahal_unmap(c, sc));
    CHECK_OK(dmahal_unmap(r.a, sn));
    rig_close(&r);
    free(b);
}

struct done {
    int n, order[4];
};

struct req {
    struct done *d;
    int id;
    struct dmahal_sgl *sgl;
};

static void on_map(struct dmahal_adapter *a, int status, struct dmahal_sgl *sgl, void *ctx)
{
    struct req *q = ctx;

    (void)a;
    CHECK_OK(status);
    q->sgl = sgl;
    q->d->order[q->d->n++] = q->id;
}

/* A request that needs no bounce pages never queues: it completes at once, ahead of
 * earlier requests still waiting for pages. */
TEST(map_async_without_bounce_pages_overtakes_waiting_requests)
{
    struct dmahal_desc d = {
        .addr_bits = 64, .alignment = 256, .max_segments = 1, .max_transfer = 16384};
    struct rig r;
    unsigned char *b = pages(16);
    struct iovec mis1 = {b + 8, 16000}, mis2 = {b + 8 + 8 * 4096, 16000}, fits = {b, 4096};
    struct done dn = {0};
    struct req q1 = {&dn, 1, NULL}, q2 = {&dn, 2, NULL}, q3 = {&dn, 3, NULL};

    rig_open(&r, "sim", &d);
    CHECK_OK(dmahal_map_async(r.a, &mis1, 1, DMAHAL_TO_DEVICE, 0, on_map, &q1));
    CHECK_ERR(dmahal_map_async(r.a, &mis2, 1, DMAHAL_TO_DEVICE, 0, on_map, &q2), -EINPROGRESS);
    CHECK_OK(dmahal_map_async(r.a, &fits, 1, DMAHAL_TO_DEVICE, 0, on_map, &q3));
    CHECK_EQ(dn.n, 2);
    CHECK_EQ(dn.order[1], 3);
    CHECK_OK(dmahal_unmap(r.a, q1.sgl));
    CHECK_EQ(dn.n, 3);
    CHECK_EQ(dn.order[2], 2);
    CHECK_OK(dmahal_unmap(r.a, q2.sgl));
    CHECK_OK(dmahal_unmap(r.a, q3.sgl));
    rig_close(&r);
    free(b);
}

/* Put with lists still mapped: they are unmapped, their bounce pages back in the pool. */
TEST(adapter_put_unmaps_what_is_still_mapped)
{
    struct dmahal_desc d = {.addr_bits = 32, .max_transfer = 16384, .max_segments = 1};
    struct rig r;
    struct dmahal_adapter *a2;
    unsigned char *b = pages(4);
    struct iovec iov = {b, 16384};
    struct dmahal_sgl *sgl;
    char *text = NULL;
    size_t len;
    FILE *f;

    rig_open(&r, "sim", &d);
    CHECK_OK(dmahal_adapter_get(r.d, &d, &a2));
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_OK(dmahal_map(a2, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    dmahal_adapter_put(r.a);
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_MAPREGS));
    fclose(f);
    CHECK_CONTAINS(text, "10 pages, 4 in use");
    free(text);
    CHECK_OK(dmahal_unmap(a2, sgl));
    rig_close(&r);
    free(b);
}
