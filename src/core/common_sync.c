/* SPDX-License-Identifier: MIT */
/*
 * common_sync.c - common buffers on non-coherent adapters (dmahal__noncoherent_ops'
 * members): a cached buffer is tracked by the platform's cache model from allocation to free,
 * and dmahal_common_sync flushes or invalidates the part the driver names (FlushDmaBuffer).
 * An uncached buffer needs nothing: the platform's memory for it is what the device sees.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dmahal__cbuf {
    void *va;
    dmahal_addr_t la;
    size_t len;
    bool cached;
};

static size_t cbuf_index(const struct dmahal__cbufs *st, const void *va)
{
    size_t lo = 0, hi = st->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((const char *)st->v[mid].va < (const char *)va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int dmahal__common_alloc_synced(struct dmahal_adapter *a, size_t len, unsigned flags,
                                struct dmahal_buf *out)
{
    struct dmahal__cbufs *st = &a->cbufs;
    struct dmahal_platform *p = a->dev->p;
    bool cached = flags & DMAHAL_CACHED;
    int rc = dmahal__common_alloc(a, len, flags, out);
    size_t i;

    if (rc || a->c.coherent)
        return rc;
    dmahal__lock_take(&st->lock);
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        struct dmahal__cbuf *v = realloc(st->v, cap * sizeof(*v));

        if (!v) {
            rc = -ENOMEM;
            goto err_unlock;
        }
        st->v = v;
        st->cap = cap;
    }
    /* The zeroes the allocator wrote are what memory holds when the device first looks. */
    if (cached && p->ops->cache_track && p->ops->cache_track(p, out->va, len)) {
        rc = -ENOMEM;
        goto err_unlock;
    }
    i = cbuf_index(st, out->va);
    memmove(&st->v[i + 1], &st->v[i], (st->n - i) * sizeof(st->v[0]));
    st->v[i] = (struct dmahal__cbuf){out->va, out->la, len, cached};
    st->n++;
    dmahal__lock_drop(&st->lock);
    return 0;

err_unlock:
    dmahal__lock_drop(&st->lock);
    dmahal__common_free(a, out);
    *out = (struct dmahal_buf){0};
    return rc;
}

/* The entry for a live buffer with this va, la and length, or NULL; the caller holds the lock. */
static struct dmahal__cbuf *cbuf_find(struct dmahal__cbufs *st, const struct dmahal_buf *b)
{
    size_t i = cbuf_index(st, b->va);

    if (i < st->n && st->v[i].va == b->va && st->v[i].la == b->la && st->v[i].len == b->len)
        return &st->v[i];
    return NULL;
}

int dmahal__common_free_synced(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    struct dmahal__cbufs *st = &a->cbufs;
    struct dmahal_platform *p = a->dev->p;
    struct dmahal__cbuf *e;
    int rc;

    if (a->c.coherent)
        return dmahal__common_free(a, buf);
    dmahal__lock_take(&st->lock);
    e = cbuf_find(st, buf);
    rc = dmahal__common_free(a, buf);
    if (rc == 0 && e) {
        if (e->cached && p->ops->cache_untrack)
            p->ops->cache_untrack(p, e->va, e->len);
        memmove(e, e + 1, (size_t)(&st->v[st->n] - (e + 1)) * sizeof(*e));
        st->n--;
    }
    dmahal__lock_drop(&st->lock);
    return rc;
}

int dmahal__common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                        size_t len, enum dmahal_dir dir)
{
    struct dmahal__cbufs *st = &a->cbufs;
    const struct dmahal__platform_ops *ops = a->dev->p->ops;
    struct dmahal_platform *p = a->dev->p;
    struct dmahal__cbuf *e;
    int rc = 0;

    /* Coherent: nothing to do but tell, as on every adapter, whether the buffer is live. */
    if (a->c.coherent)
        return dmahal__common_live(a, b) ? 0 : -ENOENT;
    dmahal__lock_take(&st->lock);
    e = cbuf_find(st, b);
    if (!e)
        rc = -ENOENT;
    else if (e->cached) {
        if ((dir & DMAHAL_TO_DEVICE) && ops->cache_flush)
            ops->cache_flush(p, (char *)b->va + off, len);
        if ((dir & DMAHAL_FROM_DEVICE) && ops->cache_invalidate)
            ops->cache_invalidate(p, (char *)b->va + off, len);
    }
    dmahal__lock_drop(&st->lock);
    return rc;
}

void dmahal__cbufs_fini(struct dmahal_adapter *a)
{
    struct dmahal__cbufs *st = &a->cbufs;
    struct dmahal_platform *p = a->dev->p;

    for (size_t i = 0; i < st->n; i++)
        if (st->v[i].cached && p->ops->cache_untrack)
            p->ops->cache_untrack(p, st->v[i].va, st->v[i].len);
    free(st->v);
    *st = (struct dmahal__cbufs){0};
}
