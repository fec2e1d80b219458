/* SPDX-License-Identifier: MIT */
/* nvme_drv_rig.h - the example NVMe driver on a sim machine, with the verifier counting: what
 * the driver's tests share. */
#ifndef DMAHAL_TESTS_SIM_NVME_DRV_RIG_H
#define DMAHAL_TESTS_SIM_NVME_DRV_RIG_H

#include <dmahal/dmahal.h>

#include <stdlib.h>
#include <string.h>

#include "nvme/nvme_driver.h"
#include "test.h"

struct ctx {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct nvme *n;
    struct nvme_info info;
};

static inline void up(struct ctx *c, const char *spec)
{
    memset(c, 0, sizeof(*c));
    CHECK_OK(dmahal_platform_open(spec, &c->p));
    CHECK_OK(dmahal_verify_enable(c->p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_OK(dmahal_device_open(c->p, "nvme:size=64M,serial=dmahal0", &c->d));
    CHECK_OK(nvme_open(c->d, &c->n));
    CHECK_OK(nvme_identify(c->n, &c->info));
}

static inline void down(struct ctx *c)
{
    nvme_close(c->n);
    dmahal_device_close(c->d);
    CHECK_EQ(dmahal_verify_count(c->p, 0), 0);
    dmahal_platform_close(c->p);
}

static inline void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 9));
}

#endif
