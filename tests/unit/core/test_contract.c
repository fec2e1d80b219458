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
