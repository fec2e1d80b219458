/* SPDX-License-Identifier: MIT */
/*
 * mcache.c - the mapping cache of an adapter with DMAHAL_DESC_MAP_CACHE: IOMMU mappings of
 * streaming maps kept after their unmap, so that mapping the same memory again (a driver's
 * recycled I/O buffers) reuses the mapping: no system call, no page-table write.
 *
 * An entry is one mapping of a page span of host memory with one set of permissions, at its
 * IOVA, not in use by any map (a map takes the entry out while it lives, and gives it back at
 * its unmap). At most DMAHAL_MAP_CACHE_ENTRIES are kept, in least-recently-used order; the
 * oldest leaves when a new one comes, and every one leaves at dmahal_map_cache_flush, when the
 * IOMMU runs out of mappings, and when the adapter is put. Hash chains and the LRU list live
 * under one lock per adapter.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>

#define BUCKETS 2048u /* a power of two, twice the entries */

_Static_assert(BUCKETS >= 2 * DMAHAL_MAP_CACHE_ENTRIES, "the table stays half empty");

struct entry {
    struct entry *hnext;
    struct entry *older, *newer; /* the LRU list */
    void *base;
    size_t span;
    unsigned perm;
    dmahal_addr_t iova;
};

struct dmahal__mcache {
    dmahal__lock_t lock;
    struct entry *bucket[BUCKETS];
    struct entry *oldest, *newest;
    struct entry *spare; /* freed entries, for the next keep */
    unsigned n;
};

static size_t bucket_of(const void *base, size_t span, unsigned perm)
{
    return (size_t)((dmahal__hash_ptr(base) ^ ((uint64_t)span << 7) ^ perm) >> 40) & (BUCKETS - 1);
}

static struct dmahal__mcache *mcache_get(struct dmahal_adapter *a)
{
    struct dmahal__mcache *mc = atomic_load_explicit(&a->mcache, memory_order_acquire), *fresh;

    if (mc)
        return mc;
    fresh = calloc(1, sizeof(*fresh));
    if (!fresh)
        return NULL;
    dmahal__lock_init(&fresh->lock);
    if (!atomic_compare_exchange_strong(&a->mcache, &mc, fresh)) {
        free(fresh);
        return mc;
    }
    return fresh;
}

/* Unlinks @e from its chain and the LRU list; the caller holds the lock. */
static void unlink_entry(struct dmahal__mcache *mc, struct entry *e)
{
    struct entry **pp = &mc->bucket[bucket_of(e->base, e->span, e->perm)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        mc->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        mc->newest = e->older;
    mc->n--;
}

static void release(struct dmahal_adapter *a, const struct entry *e)
{
    a->dev->p->ops->iommu_unmap(a->dev, e->iova, e->span);
    if (a->c.alignment > a->dev->p->page_size)
        dmahal__iova_free(a->dev->iova, e->iova, e->span);
    else
        dmahal__iova_free_fast(a->dev->iova, e->iova, e->span);
}

int dmahal__mcache_take(struct dmahal_adapter *a, void *base, size_t span, unsigned perm,
                        dmahal_addr_t *iova)
{
    struct dmahal__mcache *mc = atomic_load_explicit(&a->mcache, memory_order_acquire);
    struct entry *e;

    if (!mc)
        return -ENOENT;
    dmahal__lock_take(&mc->lock);
    for (e = mc->bucket[bucket_of(base, span, perm)]; e; e = e->hnext)
        if (e->base == base && e->span == span && e->perm == perm)
            break;
    if (e) {
        unlink_entry(mc, e);
        *iova = e->iova;
        e->hnext = mc->spare;
        mc->spare = e;
    }
    dmahal__lock_drop(&mc->lock);
    return e ? 0 : -ENOENT;
}

bool dmahal__mcache_keep(struct dmahal_adapter *a, void *base, size_t span, unsigned perm,
                         dmahal_addr_t iova)
{
    struct dmahal__mcache *mc = mcache_get(a);
    struct entry *e, victim;
    bool evict = false;
    size_t b;

    if (!mc)
        return false;
    dmahal__lock_take(&mc->lock);
    if (mc->n >= DMAHAL_MAP_CACHE_ENTRIES) {
        /* Full: the oldest entry makes room, and is released outside the lock. */
        e = mc->oldest;
        unlink_entry(mc, e);
        victim = *e;
        evict = true;
    } else if ((e = mc->spare) != NULL) {
        mc->spare = e->hnext;
    } else {
        e = malloc(sizeof(*e));
    }
    if (e) {
        *e = (struct entry){.base = base, .span = span, .perm = perm, .iova = iova};
        b = bucket_of(base, span, perm);
        e->hnext = mc->bucket[b];
        mc->bucket[b] = e;
        e->older = mc->newest;
        if (mc->newest)
            mc->newest->newer = e;
        else
            mc->oldest = e;
        mc->newest = e;
        mc->n++;
    }
    dmahal__lock_drop(&mc->lock);
    if (evict)
        release(a, &victim);
    return e != NULL;
}

unsigned dmahal__mcache_flush(struct dmahal_adapter *a)
{
    struct dmahal__mcache *mc = atomic_load_explicit(&a->mcache, memory_order_acquire);
    struct entry *all;
    unsigned n = 0;

    if (!mc)
        return 0;
    dmahal__lock_take(&mc->lock);
    all = mc->oldest;
    for (unsigned i = 0; i < BUCKETS; i++)
        mc->bucket[i] = NULL;
    mc->oldest = mc->newest = NULL;
    mc->n = 0;
    dmahal__lock_drop(&mc->lock);
    while (all) {
        struct entry *e = all;

        all = e->newer;
        release(a, e);
        free(e);
        n++;
    }
    return n;
}

void dmahal__mcache_fini(struct dmahal_adapter *a)
{
    struct dmahal__mcache *mc = atomic_load(&a->mcache);

    if (!mc)
        return;
    dmahal__mcache_flush(a);
    while (mc->spare) {
        struct entry *e = mc->spare;

        mc->spare = e->hnext;
        free(e);
    }
    free(mc);
    atomic_store(&a->mcache, NULL);
}

int dmahal_map_cache_flush(struct dmahal_adapter *a)
{
    if (!a)
        return -EINVAL;
    return (int)dmahal__mcache_flush(a);
}
