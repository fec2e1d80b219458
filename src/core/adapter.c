/* SPDX-License-Identifier: MIT */
/*
 * adapter.c - adapters: a device's constraints merged once, their lifetime, and the two ops
 * tables an adapter starts with. The public entry points that dispatch through a table are
 * in entry.c.
 */
#include "core/verify_hooks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t next_adapter_id = 1;

/* Fills in the defaults of a description (of any layout: see dmahal__struct_in) and checks
 * it. */
static int desc_normalise(const struct dmahal_desc *in, struct dmahal_desc *d)
{
    *d = (struct dmahal_desc){.size = sizeof(*d)};
    if (in) {
        int rc = dmahal__struct_in(d, sizeof(*d), in, DMAHAL__DESC_V1);

        if (rc)
            return rc;
    }
    if (d->addr_bits == 0)
        d->addr_bits = 32;
    if (d->max_segments == 0)
        d->max_segments = 1;
    if (d->max_transfer == 0)
        d->max_transfer = 1u << 20;
    if (d->alignment == 0)
        d->alignment = 1;
    /* No transfer is ever larger: "as large as you can" gets the limit, never a refusal. */
    if (d->max_transfer > DMAHAL__MAX_LEN)
        d->max_transfer = DMAHAL__MAX_LEN;
    if (d->addr_bits < 24 || d->addr_bits > 64)
        return -EINVAL;
    if (!DMAHAL__IS_POW2(d->alignment))
        return -EINVAL;
    if (d->boundary && (!DMAHAL__IS_POW2(d->boundary) || d->boundary < d->alignment))
        return -EINVAL;
    if ((d->max_segment && d->max_segment < d->alignment) || d->max_transfer < d->alignment)
        return -EINVAL;
    /* Splits at max_segment or at boundary multiples must fall on the virtual boundary. */
    if (d->virt_boundary &&
        (!DMAHAL__IS_POW2(d->virt_boundary) || (d->boundary && d->boundary < d->virt_boundary) ||
         (d->max_segment && d->max_segment % d->virt_boundary)))
        return -EINVAL;
    if (d->flags & ~(DMAHAL_DESC_LAZY_UNMAP | DMAHAL_DESC_UNTRUSTED | DMAHAL_DESC_MAP_CACHE))
        return -EINVAL;
    return 0;
}

/* Windows computes NumberOfMapRegisters as the pages a transfer of MaximumLength can span. */
static unsigned map_registers(size_t max_transfer, size_t page)
{
    uint64_t pages = (max_transfer + page - 1) / page + 1;

    return pages > UINT32_MAX ? UINT32_MAX : (unsigned)pages;
}

static void constraints_from_desc(struct dmahal__constraints *c, const struct dmahal_desc *d,
                                  const struct dmahal_platform *p)
{
    c->addr_bits = d->addr_bits;
    c->max_addr = d->addr_bits == 64 ? UINT64_MAX : ((uint64_t)1 << d->addr_bits) - 1;
    c->boundary = d->boundary;
    c->alignment = d->alignment;
    c->max_segment = d->max_segment ? d->max_segment : SIZE_MAX;
    c->max_segments = d->max_segments;
    c->max_transfer = d->max_transfer;
    c->virt_boundary = d->virt_boundary;
    c->coherent = p->coherent || d->coherent;
}

int dmahal_adapter_get(struct dmahal_device *d, const struct dmahal_desc *desc,
                       struct dmahal_adapter **out)
{
    struct dmahal_adapter *a;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!d)
        return -EINVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    rc = desc_normalise(desc, &a->desc);
    if (rc)
        goto err_alloc;
    a->ops = &dmahal__noncoherent_ops;
    a->dev = d;
    dmahal__lock_init(&a->cbufs.lock);
    a->id = atomic_fetch_add(&next_adapter_id, 1);
    constraints_from_desc(&a->c, &a->desc, d->p);
    a->map_registers = map_registers(a->desc.max_transfer, d->p->page_size);
    /* IoGetDmaAdapter's promise: the device may master the bus once it has an adapter. */
    rc = dmahal__bus_master(d);
    if (rc)
        goto err_alloc;
    if (d->p->ops->adapter_init) {
        rc = d->p->ops->adapter_init(a);
        if (rc)
            goto err_alloc;
    }
    rc = dmahal__common_init(a);
    if (rc)
        goto err_platform;
    rc = dmahal__stream_init(a);
    if (rc)
        goto err_common;
    /* Decided once: a device that snoops the caches needs no bookkeeping of cached buffers,
     * so its common buffers go straight to the allocator. */
    if (a->c.coherent)
        a->ops = &dmahal__coherent_ops;
    dmahal__vhook_adapter_new(a);
    pthread_mutex_lock(&d->lock);
    DMAHAL__LIST_PUSH(d->adapters, a, next, prev);
    pthread_mutex_unlock(&d->lock);
    *out = a;
    return 0;

err_common:
    dmahal__common_fini(a);
err_platform:
    if (d->p->ops->adapter_fini)
        d->p->ops->adapter_fini(a);
err_alloc:
    free(a);
    return rc;
}

void dmahal__adapter_release(struct dmahal_adapter *a)
{
    struct dmahal_device *d = a->dev;

    pthread_mutex_lock(&d->lock);
    DMAHAL__LIST_UNLINK(d->adapters, a, next, prev);
    pthread_mutex_unlock(&d->lock);
    dmahal__stream_fini(a);
    dmahal__mcache_fini(a);
    dmahal__spill_fini(a);
    dmahal__reg_fini(a);
    dmahal__cbufs_fini(a);
    dmahal__common_fini(a);
    if (d->p->ops->adapter_fini)
        d->p->ops->adapter_fini(a);
}

void dmahal__adapter_destroy(struct dmahal_adapter *a)
{
    dmahal__adapter_release(a);
    free(a);
}

void dmahal_adapter_put(struct dmahal_adapter *a)
{
    if (a)
        a->ops->put(a);
}

unsigned dmahal_adapter_map_registers(const struct dmahal_adapter *a)
{
    return a ? a->map_registers : 0;
}

size_t dmahal_adapter_alignment(const struct dmahal_adapter *a)
{
    return a ? a->c.alignment : 0;
}

struct dmahal_device *dmahal_adapter_device(const struct dmahal_adapter *a)
{
    return a ? a->dev : NULL;
}

int dmahal_adapter_desc(const struct dmahal_adapter *a, struct dmahal_desc *out)
{
    if (!out)
        return -EINVAL;
    if (!a) {
        dmahal__struct_clear(out, sizeof(*out), DMAHAL__DESC_V1);
        return -EINVAL;
    }
    return dmahal__struct_out(out, &a->desc, sizeof(*out), DMAHAL__DESC_V1);
}

/* Streaming and teardown are the same for every device; only common buffers differ. */
#define SHARED_OPS                                                                                 \
    .put = dmahal__adapter_destroy, .map = dmahal__map, .map_async = dmahal__map_async,            \
    .unmap = dmahal__unmap, .sync_for_device = dmahal__sync_for_device,                            \
    .sync_for_cpu = dmahal__sync_for_cpu, .common_sync = dmahal__common_sync

/* A device that does not snoop: cached common buffers are tracked for dmahal_common_sync. */
const struct dmahal_dma_ops dmahal__noncoherent_ops = {
    .common_alloc = dmahal__common_alloc_synced,
    .common_free = dmahal__common_free_synced,
    SHARED_OPS,
};

/* A coherent device: common buffers go straight to the allocator, with nothing to track. */
const struct dmahal_dma_ops dmahal__coherent_ops = {
    .common_alloc = dmahal__common_alloc,
    .common_free = dmahal__common_free,
    SHARED_OPS,
};
