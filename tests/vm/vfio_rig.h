/* SPDX-License-Identifier: MIT */
/*
 * vfio_rig.h - what the guest tests of streaming DMA on vfio share: the vfio platform, the
 * edu device named by an environment variable with the example driver attached (for its DMA
 * engine), and the test's own adapter on the same device; rig.h's byte pattern and list
 * helpers come with it.
 */
#ifndef DMAHAL_TESTS_VM_VFIO_RIG_H
#define DMAHAL_TESTS_VM_VFIO_RIG_H

#include "edu/edu_driver.h"
#include "rig.h"
#include "vm.h"

#include <dmahal/dmahal.h>

struct erig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e;            /* the edu driver, for its engine and its own buffer */
    struct dmahal_adapter *a; /* the test's adapter on the same device */
};

/* Opens vfio, the device named by @var, the edu driver at @bits, then an adapter of @desc. */
static inline void erig_open(struct erig *r, const char *var, unsigned bits,
                             const struct dmahal_desc *desc)
{
    CHECK_OK(dmahal_platform_open("vfio", &r->p));
    CHECK_OK(dmahal_device_open(r->p, vm_dev(var), &r->d));
    CHECK_OK(edu_attach(r->d, bits, &r->e));
    CHECK_OK(dmahal_adapter_get(r->d, desc, &r->a));
}

static inline void erig_close(struct erig *r)
{
    dmahal_adapter_put(r->a);
    edu_detach(r->e);
    dmahal_platform_close(r->p);
}

#endif /* DMAHAL_TESTS_VM_VFIO_RIG_H */
