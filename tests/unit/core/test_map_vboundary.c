/* SPDX-License-Identifier: MIT */
/*
 * test_map_vboundary.c - the virtual boundary constraint (struct dmahal_desc.virt_boundary,
 * NVMe's PRP rule): on every simulated machine, layouts that keep it map in place, layouts
 * that break it are bounced into one run, and either way the device moves the right bytes.
 */
#include <dmahal/dmahal.h>

#include <sys/uio.h>

#include "rig.h"
#include "test.h"

#define PG 4096u

static const char *const machines[] = {
    "sim", "sim:iommu=on", "sim:coherent=no", "sim:ram=4G-64G", "sim:iommu=on,coherent=no",
};

/* Maps @iov to the device and back: the list keeps the constraints, the device reads the
 * bytes in order, and its writes reach the memory after unmap. Returns whether the map
 * bounced. */
static bool round_trip(struct rig *r, struct iovec *iov, unsigned n)
{
    unsigned char want[8 * PG], got[8 * PG];
    struct dmahal_sgl *sgl;
    size_t total = 0;
    bool bounced;

    for (unsigned i = 0; i < n; i++) {
        fill(iov[i].iov_base, iov[i].iov_len, 5 + i);
        memcpy(want + total, iov[i].iov_base, iov[i].iov_len);
        total += iov[i].iov_len;
    }
    CHECK_OK(dmahal_map(r->a, iov, n, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    bounced = dmahal_adapter_map_registers_in_use(r->a) > 0;
    check_constraints(r->a, sgl);
    CHECK_EQ_U(sgl_total(sgl), total);
    dev_gather(r->d, sgl, got);
    CHECK(!memcmp(got, want, total));
    for (size_t i = 0; i < total; i++)
        want[i] = (unsigned char)~want[i];
    dev_scatter(r->d, sgl, want);
    CHECK_OK(dmahal_unmap(r->a, sgl));
    total = 0;
    for (unsigned i = 0; i < n; i++) {
        CHECK(!memcmp(iov[i].iov_base, want + total, iov[i].iov_len));
        total += iov[i].iov_len;
    }
    return bounced;
}

static void open_vb(struct rig *r, const char *spec, uint64_t vb)
{
    struct dmahal_desc desc = {.addr_bits = 64, .max_segments = 16, .virt_boundary = vb};

    rig_open(r, spec, &desc);
}

TEST(layouts_that_keep_the_rule_map_in_place)
{
    for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++) {
        unsigned char *b = pages(8);
        struct rig r;
        /* Whole pages; the first starting inside its page; the last ending inside one. */
        struct iovec whole[] = {{b, PG}, {b + 2 * PG, 2 * PG}};
        struct iovec first[] = {{b + 512, PG - 512}, {b + 2 * PG, PG}};
        struct iovec last[] = {
            {b, PG},
            {b + 2 * PG, 100},
        };

        open_vb(&r, machines[m], PG);
        CHECK(!round_trip(&r, whole, 2));
        CHECK(!round_trip(&r, first, 2));
        CHECK(!round_trip(&r, last, 2));
        rig_close(&r);
        free(b);
    }
}

TEST(layouts_that_break_it_are_bounced)
{
    for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++) {
        unsigned char *b = pages(8);
        struct rig r;
        /* A gap after an element that ends inside its page; before one that starts inside;
         * three pieces with a gap in the middle of a page. */
        struct iovec end_inside[] = {{b, 1000}, {b + 2 * PG, PG}};
        struct iovec start_inside[] = {{b, PG}, {b + 2 * PG + 512, 1000}};
        struct iovec three[] = {{b, PG}, {b + 2 * PG, 300}, {b + 5 * PG + 8, 2 * PG}};

        open_vb(&r, machines[m], PG);
        CHECK(round_trip(&r, end_inside, 2));
        CHECK(round_trip(&r, start_inside, 2));
        CHECK(round_trip(&r, three, 3));
        rig_close(&r);
        free(b);
    }
}

TEST(without_it_the_same_layout_is_not_bounced)
{
    unsigned char *b = pages(4);
    struct iovec end_inside[] = {{b, 1000}, {b + 2 * PG, PG}};
    struct rig r;

    open_vb(&r, "sim", 0);
    CHECK(!round_trip(&r, end_inside, 2));
    rig_close(&r);
    free(b);
}

TEST(with_max_segment_and_boundary)
{
    struct dmahal_desc desc = {.addr_bits = 64,
                               .max_segments = 16,
                               .max_segment = 2 * PG,
                               .boundary = 4 * PG,
                               .virt_boundary = PG};
    unsigned char *b = pages(16);
    /* Splits at max_segment land on the virtual boundary when the element starts on it. */
    struct iovec big[] = {{b, 6 * PG}, {b + 8 * PG, 100}};
    struct rig r;

    for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++) {
        rig_open(&r, machines[m], &desc);
        round_trip(&r, big, 2);
        rig_close(&r);
    }
    free(b);
}

TEST(descriptions_it_cannot_honour)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_desc bad[] = {
        {.virt_boundary = 3000},
        {.virt_boundary = PG, .boundary = PG / 2},
        {.virt_boundary = PG, .max_segment = PG + 512},
    };
    struct dmahal_desc good = {.virt_boundary = PG, .boundary = PG, .max_segment = 2 * PG}, got;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ERR(dmahal_adapter_get(d, &bad[i], &a), -EINVAL);
        CHECK(a == NULL);
    }
    CHECK_OK(dmahal_adapter_get(d, &good, &a));
    CHECK_OK(dmahal_adapter_desc(a, &got));
    CHECK_EQ_U(got.virt_boundary, PG);
    dmahal_adapter_put(a);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}
