/* SPDX-License-Identifier: MIT */
/* test_verify_device.c - the verifier's device side on the simulated bus: accesses outside
 * every live buffer named by the nearest one, accesses to freed (quarantined) buffers, and
 * the clean accesses a correct driver's device makes. */
#include <dmahal/dmahal.h>

#include <errno.h>

#include "edu/edu_regs.h"
#include "vrig.h"

static const char *const specs[] = {"sim", "sim:iommu=on", "sim:ram=0-64M,4G-8G"};

TEST(verify_device_clean_accesses_get_no_report)
{
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct dmahal_desc desc = {.addr_bits = 28};
        struct vrig r;
        struct dmahal_buf b, small;
        unsigned char x[4096];

        vrig_open(&r, specs[s], &desc);
        CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
        CHECK_OK(dmahal_common_alloc(r.a, 24, 0, &small));
        memset(b.va, 0x33, 4096);
        rig_edu_dma(r.d, b.la, EDU_BUF_ADDR, 4096, 0); /* whole buffer to the device */
        rig_edu_dma(r.d, EDU_BUF_ADDR, b.la + 4095, 1, EDU_CMD_TO_RAM); /* its last byte */
        rig_edu_dma(r.d, EDU_BUF_ADDR, small.la, 24, EDU_CMD_TO_RAM);
        CHECK_OK(dmahal_dev_read(r.d, b.la, x, 4096));
        CHECK_OK(dmahal_dev_write(r.d, small.la + 23, x, 1));
        CHECK_EQ(((unsigned char *)small.va)[0], 0x33);
        CHECK_OK(dmahal_common_free(r.a, &b));
        CHECK_OK(dmahal_common_free(r.a, &small));
        dmahal_platform_close(r.p);
        CHECK_EQ(r.calls, 0);
    }
}

TEST(verify_device_access_past_the_end_names_the_buffer)
{
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct vrig r;
        struct dmahal_buf b;
        const struct dmahal_report *rep;
        unsigned char x[64] = {0};
        char want[96];

        vrig_open(&r, specs[s], NULL);
        CHECK_OK(dmahal_common_alloc(r.a, 100, 0, &b));
        /* Inside the guard zone: the platform lets it through, the verifier does not. */
        CHECK_OK(dmahal_dev_read(r.d, b.la + 104, x, 4));
        rep = vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS);
        CHECK_EQ_U(rep->la, b.la + 104);
        CHECK_EQ_U(rep->len, 4);
        CHECK_CONTAINS(rep->message, "device edu reads 4 byte(s)");
        snprintf(want, sizeof(want),
                 "4 byte(s) after the end of 100-byte common buffer la 0x%012llx",
                 (unsigned long long)b.la);
        CHECK_CONTAINS(rep->message, want);

        /* Starting inside and running past the end. */
        CHECK_OK(dmahal_dev_write(r.d, b.la + 90, x, 20));
        rep = vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS);
        CHECK_CONTAINS(rep->message, "writes 20 byte(s)");
        CHECK_CONTAINS(rep->message, "offset 90, runs 10 byte(s) past the end of 100-byte");
        /* The write went through (as a real device's would) and the guard says so. */
        CHECK_EQ(dmahal_verify_check(r.p), 1);
        vrig_one(&r, DMAHAL_REPORT_OVERRUN);

        /* Before the start. */
        CHECK_OK(dmahal_dev_read(r.d, b.la - 8, x, 8));
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message,
                       "8 byte(s) before the start of 100-byte");
        CHECK_OK(dmahal_dev_read(r.d, b.la - 2, x, 4));
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message,
                       "starts 2 byte(s) before the start of 100-byte");
        CHECK_OK(dmahal_common_free(r.a, &b));
        dmahal_platform_close(r.p);
    }
}

/* The device engine itself overrunning: the driver programmed one byte too many. */
TEST(verify_device_engine_overrun_is_reported)
{
    struct dmahal_desc desc = {.addr_bits = 28};
    struct vrig r;
    struct dmahal_buf b;

    vrig_open(&r, "sim", &desc);
    CHECK_OK(dmahal_common_alloc(r.a, 512, 0, &b));
    rig_edu_dma(r.d, EDU_BUF_ADDR, b.la, 513, EDU_CMD_TO_RAM);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message, "writes 513 byte(s)");
    CHECK_OK(dmahal_common_free(r.a, &b));
    vrig_one(&r, DMAHAL_REPORT_OVERRUN); /* and the free found the damage too */
    dmahal_platform_close(r.p);
}

TEST(verify_device_use_after_free_caught_in_quarantine)
{
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct vrig r;
        struct dmahal_buf b, other;
        const struct dmahal_report *rep;
        unsigned char x[16] = {1};
        char want[128];

        vrig_open(&r, specs[s], NULL);
        CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b));
        CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &other));
        CHECK_OK(dmahal_common_free(r.a, &b));
        /* Late DMA: the memory is neither reused nor unmapped, so the device gets through. */
        CHECK_OK(dmahal_dev_write(r.d, b.la + 4096, x, 16));
        rep = vrig_one(&r, DMAHAL_REPORT_DEV_USE_AFTER_FREE);
        CHECK_EQ_U(rep->la, b.la + 4096);
        snprintf(want, sizeof(want),
                 "in a freed buffer: offset 4096 of 8192-byte common buffer la "
                 "0x%012llx",
                 (unsigned long long)b.la);
        CHECK_CONTAINS(rep->message, want);
        /* Inside the buffer: nothing runs past its end. */
        CHECK(strstr(rep->message, "past the end") == NULL);
        /* Across its end: how far past it. */
        CHECK_OK(dmahal_dev_write(r.d, b.la + 8184, x, 16));
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_USE_AFTER_FREE)->message,
                       "in a freed buffer: offset 8184, runs 8 byte(s) past the end of 8192-byte");
        /* The freed contents changed: the quarantine check sees it too. */
        CHECK_EQ(dmahal_verify_check(r.p), 1);
        vrig_one(&r, DMAHAL_REPORT_WRITE_AFTER_FREE);
        CHECK_OK(dmahal_common_free(r.a, &other));
        dmahal_platform_close(r.p);
    }
}

/* With an IOMMU each device has its own logical address space: a buffer of one device is
 * not the other's to touch, even at the same address. */
TEST(verify_device_buffers_belong_to_their_device)
{
    struct vrig r;
    struct dmahal_device *d2;
    struct dmahal_adapter *a2;
    struct dmahal_buf b, b2;
    unsigned char x[8];

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_device_open(r.p, "edu", &d2));
    CHECK_OK(dmahal_adapter_get(d2, NULL, &a2));
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK_OK(dmahal_common_alloc(a2, 64, 0, &b2));
    CHECK_OK(dmahal_dev_read(d2, b2.la, x, 8));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    CHECK_OK(dmahal_dev_read(d2, b.la, x, 8)); /* no IOMMU: the bus lets it through */
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message,
                   "device edu reads 8 byte(s)");
    dmahal_platform_close(r.p);
}

/* No buffer at all on the device: the report says so. */
TEST(verify_device_access_with_no_buffer)
{
    struct vrig r;
    unsigned char x[8];

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_dev_read(r.d, 0x100000, x, 8));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message,
                   "no verified buffer is live on this device");
    dmahal_platform_close(r.p);
}

/* Buffers of an adapter the verifier does not wrap (got before it was on) are legitimate. */
TEST(verify_device_may_use_unverified_buffers)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *before, *after;
    struct dmahal_buf b, v;
    struct vrig seen = {0};
    unsigned char x[8];

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &before));
    CHECK_OK(dmahal_common_alloc(before, 64, 0, &b));
    CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, vrig_fn, &seen));
    CHECK_OK(dmahal_adapter_get(d, NULL, &after));
    CHECK_OK(dmahal_common_alloc(after, 64, 0, &v));
    CHECK_OK(dmahal_dev_read(d, b.la, x, 8));
    CHECK_OK(dmahal_dev_read(d, v.la, x, 8));
    CHECK_EQ(dmahal_verify_count(p, 0), 0);
    CHECK_OK(dmahal_dev_read(d, b.la + 64, x, 8)); /* past the unverified one: reported */
    CHECK_EQ(dmahal_verify_count(p, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS), 1);
    CHECK_EQ(seen.calls, 1);
    CHECK_OK(dmahal_common_free(before, &b));
    CHECK_OK(dmahal_common_free(after, &v));
    dmahal_platform_close(p);
}
