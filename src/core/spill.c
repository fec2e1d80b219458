/* SPDX-License-Identifier: MIT */
/*
 * spill.c - where streaming maps go when the IOMMU has no mapping left to give (vfio's
 * dma_entry_limit, 65,535 by default): bounce pages carved out of chunks of the adapter's DMA
 * memory, each chunk mapped once (one mapping per 2 MiB), so that a map costs a copy instead
 * of a mapping and never fails because the limit is near.
 *
 * The guarantee of an ordinary map holds: the device reaches the copy, never the driver's
 * memory, so after dmahal_unmap it cannot reach the memory that was mapped. It can still
 * reach the spill chunk (a stale copy, or another map's data) until the adapter is put: the
 * chunks stay for the adapter's life, as the bounce pools stay for the platform's.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>

#define SPILL_CHUNK ((size_t)2 << 20)

struct dmahal__spill {
    pthread_mutex_t lock;
    struct dmahal__range free; /* free device addresses in the chunks */
    struct dmahal__chunk *chunks;
    size_t n, cap;
};

static struct dmahal__spill *spill_get(struct dmahal_adapter *a)
{
    struct dmahal__spill *sp = atomic_load_explicit(&a->spill, memory_order_acquire), *fresh;

    if (sp)
        return sp;
    fresh = calloc(1, sizeof(*fresh));
    if (!fresh)
        return NULL;
    pthread_mutex_init(&fresh->lock, NULL);
    dmahal__range_init(&fresh->free);
    if (!atomic_compare_exchange_strong(&a->spill, &sp, fresh)) {
        dmahal__range_fini(&fresh->free);
        pthread_mutex_destroy(&fresh->lock);
        free(fresh);
        return sp;
    }
    return fresh;
}

/* One more chunk, at least @bytes; the caller holds the lock. */
static int spill_grow(struct dmahal_adapter *a, struct dmahal__spill *sp, size_t bytes)
{
    size_t len = bytes > SPILL_CHUNK ? DMAHAL__ALIGN_UP(bytes, SPILL_CHUNK) : SPILL_CHUNK;
    struct dmahal__chunk ch;
    int rc;

    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 8;
        struct dmahal__chunk *v = realloc(sp->chunks, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        sp->chunks = v;
        sp->cap = cap;
    }
    rc = a->dev->p->ops->mem_alloc(a, len, a->dev->p->page_size, &ch);
    if (rc)
        return rc;
    rc = dmahal__range_add(&sp->free, ch.la, ch.len);
    if (rc) {
        a->dev->p->ops->mem_free(a, &ch);
        return rc;
    }
    sp->chunks[sp->n++] = ch;
    return 0;
}

int dmahal__spill_get(struct dmahal_adapter *a, size_t bytes, uint64_t align, char **va,
                      dmahal_addr_t *la)
{
    struct dmahal__spill *sp = spill_get(a);
    uint64_t at;
    int rc;

    if (!sp)
        return -ENOMEM;
    pthread_mutex_lock(&sp->lock);
    rc = dmahal__range_alloc(&sp->free, bytes, align, 0, a->c.max_addr, &at);
    if (rc == -ENOMEM) {
        rc = spill_grow(a, sp, bytes);
        if (rc == 0)
            rc = dmahal__range_alloc(&sp->free, bytes, align, 0, a->c.max_addr, &at);
    }
    if (rc == 0) {
        rc = -EFAULT;
        for (size_t i = 0; i < sp->n; i++) {
            if (at >= sp->chunks[i].la && at - sp->chunks[i].la < sp->chunks[i].len) {
                *va = (char *)sp->chunks[i].va + (at - sp->chunks[i].la);
                *la = at;
                rc = 0;
                break;
            }
        }
    }
    pthread_mutex_unlock(&sp->lock);
    return rc == -EFAULT ? -ENOMEM : rc;
}

void dmahal__spill_put(struct dmahal_adapter *a, dmahal_addr_t la, size_t bytes)
{
    struct dmahal__spill *sp = atomic_load_explicit(&a->spill, memory_order_acquire);

    pthread_mutex_lock(&sp->lock);
    /* Out of host memory for an extent, the pages stay out of use: never handed out twice. */
    (void)dmahal__range_add(&sp->free, la, bytes);
    pthread_mutex_unlock(&sp->lock);
}

void dmahal__spill_fini(struct dmahal_adapter *a)
{
    struct dmahal__spill *sp = atomic_load(&a->spill);

    if (!sp)
        return;
    for (size_t i = 0; i < sp->n; i++)
        a->dev->p->ops->mem_free(a, &sp->chunks[i]);
    free(sp->chunks);
    dmahal__range_fini(&sp->free);
    pthread_mutex_destroy(&sp->lock);
    free(sp);
    atomic_store(&a->spill, NULL);
}
