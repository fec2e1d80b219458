/* SPDX-License-Identifier: MIT */
/*
 * noiommu_rig.h - what the guest tests of the noiommu platform share: the platform from the
 * guest's configuration (which must be noiommu), its low reservation, and one edu device
 * attached with the example driver at a given address width.
 */
#ifndef DMAHAL_TESTS_VM_NOIOMMU_RIG_H
#define DMAHAL_TESTS_VM_NOIOMMU_RIG_H

#include "edu/edu_driver.h"
#include "vm.h"

#include <dmahal/dmahal.h>

#define LEN 3000u /* less than EDU_DMA_LIMIT: QEMU 7.2's edu stops on the buffer's last byte */

struct rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e;
    struct dmahal_adapter *a;
    uint64_t low, low_len;
};

/* Opens the edu named by the environment variable @var, driven at @bits address bits. */
static inline void rig_up(struct rig *r, const char *var, unsigned bits)
{
    CHECK_OK(dmahal_platform_open(NULL, &r->p));
    CHECK_STR(dmahal_platform_name(r->p), "noiommu");
    CHECK_OK(dmahal_noiommu_lowmem(r->p, &r->low, &r->low_len));
    CHECK_OK(dmahal_device_open(r->p, vm_dev(var), &r->d));
    CHECK_OK(edu_attach(r->d, bits, &r->e));
    r->a = edu_adapter(r->e);
}

static inline void rig_down(struct rig *r)
{
    edu_detach(r->e);
    dmahal_device_close(r->d);
    dmahal_platform_close(r->p);
}

/* A byte pattern of its own for each @seed. */
static inline void pattern(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 31 + seed);
}

#endif /* DMAHAL_TESTS_VM_NOIOMMU_RIG_H */
