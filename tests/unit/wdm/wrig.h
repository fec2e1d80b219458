/* SPDX-License-Identifier: MIT */
/* wrig.h - the test rig (rig.h) through the Windows names: a platform, a device and its
 * DEVICE_OBJECT, an adapter from IoGetDmaAdapter, and the device's side of a
 * SCATTER_GATHER_LIST, for the Windows-names tests. */
#ifndef DMAHAL_TEST_WRIG_H
#define DMAHAL_TEST_WRIG_H

#include <dmahal/dmahal.h>
#include <dmahal/wdm.h>

#include "rig.h"
#include "test.h"

struct wrig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    PDEVICE_OBJECT pdo;
    PDMA_ADAPTER a; /* NULL until wrig_adapter */
    const DMA_OPERATIONS *ops;
    ULONG nregs;
};

/* Opens @spec and a device @dev on it, with no adapter yet. */
static inline void wrig_open(struct wrig *r, const char *spec, const char *dev)
{
    memset(r, 0, sizeof(*r));
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    CHECK_OK(dmahal_device_open(r->p, dev, &r->d));
    r->pdo = dmahal_wdm_device(r->d);
    CHECK(r->pdo != NULL);
}

/* Gets the rig's adapter for @dd. */
static inline PDMA_ADAPTER wrig_adapter(struct wrig *r, DEVICE_DESCRIPTION *dd)
{
    r->a = IoGetDmaAdapter(r->pdo, dd, &r->nregs);
    CHECK(r->a != NULL);
    r->ops = r->a->DmaOperations;
    return r->a;
}

/* A version-3 bus master on PCI of @bits and @max_len, scatter/gather or not. */
static inline DEVICE_DESCRIPTION wrig_desc3(ULONG bits, ULONG max_len, BOOLEAN sg)
{
    DEVICE_DESCRIPTION dd;

    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.ScatterGather = sg;
    dd.InterfaceType = PCIBus;
    dd.DmaAddressWidth = bits;
    dd.MaximumLength = max_len;
    return dd;
}

/* Opens @spec, a device @dev on it and an adapter of wrig_desc3(@bits, @max_len, @sg). */
static inline void wrig_open3(struct wrig *r, const char *spec, const char *dev, ULONG bits,
                              ULONG max_len, BOOLEAN sg)
{
    DEVICE_DESCRIPTION dd = wrig_desc3(bits, max_len, sg);

    wrig_open(r, spec, dev);
    wrig_adapter(r, &dd);
}

static inline void wrig_close(struct wrig *r)
{
    if (r->a)
        r->ops->PutDmaAdapter(r->a);
    dmahal_platform_close(r->p);
}

/* The device reads the transfer through the list into @out; returns the bytes. */
static inline size_t sg_gather(struct dmahal_device *d, PSCATTER_GATHER_LIST sg, unsigned char *out)
{
    size_t t = 0;

    for (ULONG i = 0; i < sg->NumberOfElements; i++) {
        CHECK_OK(dmahal_dev_read(d, (dmahal_addr_t)sg->Elements[i].Address.QuadPart, out + t,
                                 sg->Elements[i].Length));
        t += sg->Elements[i].Length;
    }
    return t;
}

/* The device writes @in through the list. */
static inline void sg_scatter(struct dmahal_device *d, PSCATTER_GATHER_LIST sg,
                              const unsigned char *in)
{
    for (ULONG i = 0; i < sg->NumberOfElements; i++) {
        CHECK_OK(dmahal_dev_write(d, (dmahal_addr_t)sg->Elements[i].Address.QuadPart, in,
                                  sg->Elements[i].Length));
        in += sg->Elements[i].Length;
    }
}

/* A pattern whose period is no power of two below 512, so that a page out of place shows. */
static inline void fill13(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 13 + (i >> 9));
}

#endif
