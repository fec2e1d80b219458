/* SPDX-License-Identifier: MIT */
/* rig.h - the test rig: a platform, a device and an adapter, and helpers for streaming-DMA
 * checks; every test of the public API builds on it. */
#ifndef DMAHAL_TEST_RIG_H
#define DMAHAL_TEST_RIG_H

#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "test.h"

struct rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
};

/* Opens a device @dev on the rig's platform, already open, and an adapter with @desc: for a
 * rig that sets the platform up (the verifier, say) before the device exists. */
static inline void rig_attach(struct rig *r, const char *dev, const struct dmahal_desc *desc)
{
    CHECK_OK(dmahal_device_open(r->p, dev, &r->d));
    CHECK_OK(dmahal_adapter_get(r->d, desc, &r->a));
}

/* Opens @spec, a device @dev on it (a model with its arguments on sim) and an adapter. */
static inline void rig_open_dev(struct rig *r, const char *spec, const char *dev,
                                const struct dmahal_desc *desc)
{
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    rig_attach(r, dev, desc);
}

static inline void rig_open(struct rig *r, const char *spec, const struct dmahal_desc *desc)
{
    rig_open_dev(r, spec, "edu", desc);
}

/* Sets the bus-master bit, for tests that have the device DMA without an adapter. */
static inline void rig_bus_master(struct dmahal_device *d)
{
    uint16_t cmd = 0;

    CHECK_OK(dmahal_config_read(d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
    cmd |= DMAHAL_PCI_COMMAND_MASTER;
    CHECK_OK(dmahal_config_write(d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
}

static inline void rig_close(struct rig *r)
{
    dmahal_platform_close(r->p);
}

/* Page-aligned host memory that the test frees itself. */
static inline unsigned char *pages(size_t n)
{
    void *p = NULL;

    CHECK_EQ(posix_memalign(&p, 4096, n * 4096), 0);
    memset(p, 0, n * 4096);
    return p;
}

static inline void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 7 + (i >> 8));
}

static inline size_t sgl_total(const struct dmahal_sgl *sgl)
{
    size_t t = 0;

    for (unsigned i = 0; i < sgl->nseg; i++)
        t += sgl->seg[i].len;
    return t;
}

/* What the device reads through the list, in order, into @out (sgl_total bytes). */
static inline void dev_gather(struct dmahal_device *d, const struct dmahal_sgl *sgl,
                              unsigned char *out)
{
    for (unsigned i = 0; i < sgl->nseg; i++) {
        CHECK_OK(dmahal_dev_read(d, sgl->seg[i].la, out, sgl->seg[i].len));
        out += sgl->seg[i].len;
    }
}

/* The device writes @in through the list. */
static inline void dev_scatter(struct dmahal_device *d, const struct dmahal_sgl *sgl,
                               const unsigned char *in)
{
    for (unsigned i = 0; i < sgl->nseg; i++) {
        CHECK_OK(dmahal_dev_write(d, sgl->seg[i].la, in, sgl->seg[i].len));
        in += sgl->seg[i].len;
    }
}

/* Every element honours the adapter's constraints. */
static inline void check_constraints(struct dmahal_adapter *a, const struct dmahal_sgl *sgl)
{
    struct dmahal_desc d = {.size = sizeof(d)};

    CHECK_OK(dmahal_adapter_desc(a, &d));
    CHECK_GE(sgl->nseg, 1);
    CHECK_LE(sgl->nseg, d.max_segments);
    for (unsigned i = 0; i < sgl->nseg; i++) {
        const struct dmahal_seg *s = &sgl->seg[i];

        CHECK_GT(s->len, 0);
        if (d.addr_bits < 64)
            CHECK_LE_U(s->la + s->len - 1, (1ull << d.addr_bits) - 1);
        CHECK_EQ_U(s->la & (d.alignment - 1), 0);
        if (d.max_segment)
            CHECK_LE_U(s->len, d.max_segment);
        if (d.boundary)
            CHECK_EQ_U(s->la / d.boundary, (s->la + s->len - 1) / d.boundary);
        if (d.virt_boundary && i > 0)
            CHECK_EQ_U(s->la & (d.virt_boundary - 1), 0);
        if (d.virt_boundary && i + 1 < sgl->nseg)
            CHECK_EQ_U((s->la + s->len) & (d.virt_boundary - 1), 0);
    }
}

#endif
