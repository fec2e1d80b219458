/* SPDX-License-Identifier: MIT */
/*
 * map.c - streaming DMA: scatter/gather lists that honour an adapter's constraints, through the
 * IOMMU when there is one, directly when the device can take the memory as it is, and through
 * bounce pages (map registers) when it cannot. The layouts are built in map_layout.c; cached common
 * buffers are in common_sync.c.
 */
#include "core/map_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ---- the live-list table ------------------------------------------------------------- */

static size_t bucket_of(const struct dmahal__stream *st, const void *sgl)
{
    uint64_t h = dmahal__hash_ptr(sgl);

    return (size_t)(h >> 32) & (st->nbuckets - 1);
}

/* The caller holds the lock. Growing may fail: the table then just gets longer chains. */
static void live_insert(struct dmahal__stream *st, struct mapping *m)
{
    size_t b;

    if (st->live >= st->nbuckets) {
        size_t n = st->nbuckets * 2;
        struct mapping **v = calloc(n, sizeof(*v));

        if (v) {
            struct mapping **old = st->buckets;
            size_t oldn = st->nbuckets;

            st->buckets = v;
            st->nbuckets = n;
            for (size_t i = 0; i < oldn; i++) {
                while (old[i]) {
                    struct mapping *x = old[i];

                    old[i] = x->hnext;
                    b = bucket_of(st, x->sgl);
                    x->hnext = v[b];
                    v[b] = x;
                }
            }
            free(old);
        }
    }
    b = bucket_of(st, m->sgl);
    m->hnext = st->buckets[b];
    st->buckets[b] = m;
    st->live++;
}

/* Finds a live list (the caller holds the lock), unlinking it when @remove. */
static struct mapping *live_find(struct dmahal__stream *st, const struct dmahal_sgl *sgl,
                                 bool remove)
{
    struct mapping **pp = &st->buckets[bucket_of(st, sgl)];

    for (; *pp; pp = &(*pp)->hnext) {
        struct mapping *m = *pp;

        if (m->sgl != sgl)
            continue;
        if (remove) {
            *pp = m->hnext;
            st->live--;
        }
        return m;
    }
    return NULL;
}

int dmahal__stream_init(struct dmahal_adapter *a)
{
    struct dmahal__stream *st = calloc(1, sizeof(*st));

    if (!st)
        return -ENOMEM;
    st->nbuckets = 16;
    st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
    if (!st->buckets) {
        free(st);
        return -ENOMEM;
    }
    dmahal__lock_init(&st->lock);
    if (a->dev->p->has_iommu)
        st->path = a->dev->p->ops->iommu_map && a->dev->iova ? PATH_IOMMU : PATH_NONE;
    else if (a->dev->p->ops->pin)
        st->path = PATH_PIN;
    else
        st->path = a->dev->p->ops->bounce_alloc ? PATH_BOUNCE : PATH_NONE;
    a->stream = st;
    return 0;
}

/* ---- bouncing ----------------------------------------------------------------------------- */

static size_t bounce_pages(const struct mapping *m)
{
    size_t page = m->a->dev->p->page_size;

    return (m->total + page - 1) / page;
}

static uint64_t bounce_align(const struct dmahal_adapter *a)
{
    size_t page = a->dev->p->page_size;

    return a->c.alignment > page ? a->c.alignment : page;
}

static int stream_pool(struct dmahal_adapter *a, struct dmahal__pool **out)
{
    struct dmahal__stream *st = a->stream;
    struct dmahal__pool *pool;
    unsigned joined;
    int rc;

    dmahal__lock_take(&st->lock);
    *out = st->pool;
    dmahal__lock_drop(&st->lock);
    if (*out)
        return 0;
    /* Joined outside the adapter's lock, which dump takes under the platform's. */
    rc = dmahal__bounce_join(a, &pool, &joined);
    if (rc)
        return rc;
    dmahal__lock_take(&st->lock);
    if (!st->pool) {
        st->pool = pool;
        st->joined = joined;
        joined = 0;
    }
    *out = st->pool;
    dmahal__lock_drop(&st->lock);
    if (joined)
        dmahal__bounce_leave(pool, joined); /* another thread joined first */
    return 0;
}

/* With a run reserved: the list, the IOMMU mapping of the run if any, the copy in. */
static int bounce_finish(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    struct dmahal_device *d = a->dev;
    size_t len = m->run.pages << d->p->page_shift;
    dmahal_addr_t bus = m->run.la;
    int rc;

    m->how = HOW_BOUNCE;
    if (d->p->has_iommu) {
        rc = dmahal__map_iova_get(a, len + m->guard, &m->iova);
        if (rc)
            return rc;
        m->iova_len = len + m->guard;
        rc = d->p->ops->iommu_map(d, m->iova, m->run.va, len, dmahal__map_perm_of(m->dir));
        if (rc) {
            dmahal__map_iova_put(a, m->iova, m->iova_len);
            m->iova_len = 0;
            return rc;
        }
        bus = m->iova;
    }
    /* An untrusted device's copy ends where the mapping does, as far as the alignment lets
     * it: an access past the end reaches the unmapped guard page. */
    if (m->guard)
        m->boff = DMAHAL__ALIGN_DOWN(len - m->total, (size_t)a->c.alignment);
    rc = dmahal__map_sg_add(&a->c, m, bus + m->boff, m->total);
    if (rc == 0)
        rc = dmahal__map_cache_track(m);
    if (rc) {
        if (m->iova_len) {
            d->p->ops->iommu_unmap(d, m->iova, len);
            dmahal__map_iova_put(a, m->iova, m->iova_len);
            m->iova_len = 0;
        }
        /* Even a fresh contiguous run does not fit: no layout would. */
        return rc == -EAGAIN ? -E2BIG : rc;
    }
    atomic_fetch_add(&a->stream->regs, (unsigned)m->run.pages);
    /* In every direction, as Linux's swiotlb does: bytes a FROM_DEVICE transfer's device
     * does not write come back at unmap as the driver left them, never as whatever the
     * pages held before (another transfer's data). */
    dmahal__map_fill_device_view(m);
    return 0;
}

static void bounce_unwind(struct mapping *m)
{
    if (m->run.pages)
        dmahal__bounce_release(m->pool, &m->run);
    m->run.pages = 0;
}

/* Releases everything a completed mapping holds, after the data went where it belongs. */
static void mapping_release(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    struct dmahal_device *d = a->dev;

    dmahal__map_cache_untrack(m);
    if (m->cache && m->how == HOW_IOMMU &&
        dmahal__mcache_keep(a, dmahal__map_base_of(&m->iov[0], d->p->page_size), m->iova_len,
                            dmahal__map_perm_of(m->dir), m->iova)) {
        m->iova_len = 0; /* kept mapped, for the next map of the same memory */
    } else if (m->iova_len) {
        d->p->ops->iommu_unmap(d, m->iova, m->iova_len - m->guard);
        dmahal__map_iova_put(a, m->iova, m->iova_len);
    }
    if (m->how == HOW_PIN)
        dmahal__map_unpin_all(m, m->niov);
    if (m->how == HOW_REG)
        dmahal__map_reg_put_all(m, m->niov);
    if (m->how == HOW_BOUNCE && m->spill) {
        dmahal__spill_put(a, m->run.la, m->run.pages << d->p->page_shift);
    } else if (m->how == HOW_BOUNCE) {
        atomic_fetch_sub(&a->stream->regs, (unsigned)m->run.pages);
        bounce_unwind(m);
    }
    dmahal__mapping_free(m);
}

/* ---- the live-list table: registering, finding and holding a list ---------------------- */

static bool slot_names(uintptr_t v, const struct dmahal_sgl *sgl)
{
    return v > SLOT_TOMB && (uintptr_t)((struct mapping *)(v & ~SLOT_FLAGS) + 1) == (uintptr_t)sgl;
}

static size_t fast_home(const void *sgl)
{
    return (size_t)((dmahal__hash_ptr(sgl)) >> 40);
}

static void mapping_register(struct mapping *m)
{
    struct dmahal__stream *st = m->a->stream;
    size_t h = fast_home(m->sgl);

    for (size_t i = 0; i < FAST_PROBES; i++) {
        _Atomic uintptr_t *slot = &st->fast[(h + i) & (FAST_SLOTS - 1)];
        uintptr_t v = atomic_load_explicit(slot, memory_order_relaxed);

        /* Release: whoever finds the list finds the mapping written. */
        if (v <= SLOT_TOMB &&
            atomic_compare_exchange_strong_explicit(slot, &v, (uintptr_t)m, memory_order_release,
                                                    memory_order_relaxed))
            return;
    }
    dmahal__lock_take(&st->lock);
    live_insert(st, m);
    dmahal__lock_drop(&st->lock);
}

/* Waits until a sync on another thread is done with the mapping in @slot. */
static uintptr_t slot_wait(_Atomic uintptr_t *slot)
{
    uintptr_t v;

    while ((v = atomic_load_explicit(slot, memory_order_acquire)) & SLOT_BUSY)
        sched_yield();
    return v;
}

/*
 * Finds a live list and takes it out of the live table (@hold false), or marks it busy for a
 * sync (@hold true; *slotp tells where to unmark it, NULL when the list lives in the chains:
 * the caller then holds the adapter's lock). NULL when the list is not live.
 */
static struct mapping *live_get(struct dmahal__stream *st, const struct dmahal_sgl *sgl, bool hold,
                                _Atomic uintptr_t **slotp)
{
    size_t h = fast_home(sgl);
    struct mapping *m;

    for (size_t i = 0; i < FAST_PROBES; i++) {
        _Atomic uintptr_t *slot = &st->fast[(h + i) & (FAST_SLOTS - 1)];
        uintptr_t v = atomic_load_explicit(slot, memory_order_acquire);

        while (slot_names(v, sgl) && !(v & SLOT_DYING)) {
            if (!hold) {
                /* No sync holds it (the usual case): one exchange takes it out. */
                if (!(v & SLOT_BUSY) &&
                    atomic_compare_exchange_strong_explicit(
                        slot, &v, SLOT_TOMB, memory_order_acq_rel, memory_order_acquire)) {
                    *slotp = slot;
                    return (struct mapping *)v;
                }
                if (!(v & SLOT_BUSY))
                    continue; /* v changed under us: look at it again */
                /* An unmap claims the slot first, so that syncs racing it cannot keep it
                 * busy forever, then waits out the one sync that may be running. */
                if (!atomic_compare_exchange_strong_explicit(
                        slot, &v, v | SLOT_DYING, memory_order_acq_rel, memory_order_acquire))
                    continue;
                v = slot_wait(slot);
                atomic_store_explicit(slot, SLOT_TOMB, memory_order_release);
                *slotp = slot;
                return (struct mapping *)(v & ~SLOT_FLAGS);
            }
            if (v & SLOT_BUSY) {
                v = slot_wait(slot);
                continue;
            }
            if (atomic_compare_exchange_strong_explicit(
                    slot, &v, v | SLOT_BUSY, memory_order_acq_rel, memory_order_acquire)) {
                *slotp = slot;
                return (struct mapping *)v;
            }
        }
    }
    *slotp = NULL;
    dmahal__lock_take(&st->lock);
    m = live_find(st, sgl, !hold);
    if (!hold || !m)
        dmahal__lock_drop(&st->lock);
    return m;
}

/* Ends a hold of live_get. */
static void live_put(struct dmahal__stream *st, struct mapping *m, _Atomic uintptr_t *slot)
{
    (void)m;
    if (slot)
        atomic_fetch_and_explicit(slot, ~SLOT_BUSY, memory_order_release); /* keeps DYING */
    else
        dmahal__lock_drop(&st->lock);
}

/* ---- a map: choosing the layout, waiting for bounce pages ------------------------------- */

/* Runs on the thread that freed the pages a queued request waited for. */
static void grant_async(struct dmahal__bounce_waiter *w)
{
    struct mapping *m = (struct mapping *)((char *)w - offsetof(struct mapping, w));
    struct dmahal_adapter *a = m->a;
    int rc;

    m->run = w->run;
    rc = bounce_finish(m);
    if (rc) {
        dmahal_map_fn fn = m->fn;
        void *ctx = m->ctx;

        bounce_unwind(m);
        dmahal__mapping_free(m);
        fn(a, rc, NULL, ctx);
        return;
    }
    mapping_register(m);
    m->fn(a, 0, m->sgl, m->ctx);
}

/* The IOMMU has no mapping left: a copy in spill memory, mapped already (spill.c). */
static int map_spill(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    size_t bytes = bounce_pages(m) << a->dev->p->page_shift;
    int rc;

    rc = dmahal__spill_get(a, bytes, bounce_align(a), &m->run.va, &m->run.la);
    if (rc)
        return -ENOSPC;
    m->run.pages = bounce_pages(m);
    rc = dmahal__map_sg_add(&a->c, m, m->run.la, m->total);
    if (rc) {
        dmahal__spill_put(a, m->run.la, bytes);
        m->sgl->nseg = 0;
        return rc == -EAGAIN ? -E2BIG : rc;
    }
    m->how = HOW_BOUNCE;
    m->spill = true;
    return 0;
}

/* An untrusted device is given no page it shares with other memory. */
static bool shares_a_page(const struct mapping *m)
{
    size_t page = m->a->dev->p->page_size;

    for (unsigned i = 0; i < m->niov; i++)
        if (((uintptr_t)m->iov[i].iov_base | m->iov[i].iov_len) & (page - 1))
            return true;
    return false;
}

/*
 * Maps directly if the device can take the memory as it is, else reserves bounce pages:
 * 0 with the mapping complete; -EINPROGRESS when queued (@fn set); an error otherwise.
 */
static int map_common(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                      enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx,
                      struct mapping **out)
{
    struct dmahal__pool *pool;
    struct mapping *m;
    int rc;

    *out = NULL;
    rc = dmahal__mapping_new(a, iov, iovcnt, dir, &m);
    if (rc)
        return rc;
    rc = -EAGAIN;
    if (atomic_load_explicit(&a->regs, memory_order_relaxed) && a->stream->path <= PATH_PIN)
        rc = dmahal__map_registered(m);
    if (rc == 0)
        goto direct;
    if ((a->desc.flags & DMAHAL_DESC_UNTRUSTED) && shares_a_page(m)) {
        m->guard = a->dev->p->page_size;
        rc = -EAGAIN;
        goto bounce;
    }
    switch (a->stream->path) {
    case PATH_IOMMU:
        rc = dmahal__map_iommu(m);
        /* Out of mappings: the cache gives its back first, then the copy goes to spill. */
        if (rc == -ENOSPC && dmahal__mcache_flush(a))
            rc = dmahal__map_iommu(m);
        if (rc == -ENOSPC)
            rc = map_spill(m);
        break;
    case PATH_PIN:
        rc = dmahal__map_pinned(m);
        break;
    case PATH_BOUNCE:
        rc = -EAGAIN;
        break;
    default:
        rc = -ENOTSUP;
        break;
    }
    if (rc == 0) {
    direct:
        rc = dmahal__map_cache_track(m);
        if (rc) {
            mapping_release(m);
            return rc;
        }
        /* A direct layout has nothing to copy: only a tracked one has caches to flush, in
         * every direction (as arm64 cleans them): bytes the device does not write stay. A
         * spilled one has its copy to make. */
        if (m->tracked || m->how == HOW_BOUNCE)
            dmahal__map_fill_device_view(m);
        *out = m;
        return 0;
    }
    if (rc != -EAGAIN)
        goto err_free;
bounce:
    if (a->stream->path == PATH_NONE) {
        rc = -ENOTSUP;
        goto err_free;
    }
    rc = stream_pool(a, &pool);
    if (rc)
        goto err_free;
    m->pool = pool;
    if (fn) {
        m->fn = fn;
        m->ctx = ctx;
        m->w.a = a;
        m->w.grant = grant_async;
    }
    /* NOWAIT fails at once; otherwise a callback queues and a plain map sleeps. */
    rc =
        dmahal__bounce_reserve(pool, bounce_pages(m), bounce_align(a), !(flags & DMAHAL_MAP_NOWAIT),
                               fn && !(flags & DMAHAL_MAP_NOWAIT) ? &m->w : NULL, &m->run);
    if (rc == -EINPROGRESS)
        return rc;
    if (rc)
        goto err_free;
    rc = bounce_finish(m);
    if (rc) {
        bounce_unwind(m);
        goto err_free;
    }
    *out = m;
    return 0;

err_free:
    dmahal__mapping_free(m);
    return rc;
}

/* ---- the adapter's operations --------------------------------------------------------------- */

int dmahal__map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out)
{
    struct mapping *m;
    int rc = map_common(a, iov, iovcnt, dir, flags, NULL, NULL, &m);

    if (rc)
        return rc;
    mapping_register(m);
    *out = m->sgl;
    return 0;
}

int dmahal__map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                      enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx)
{
    struct mapping *m;
    int rc = map_common(a, iov, iovcnt, dir, flags, fn, ctx, &m);

    if (rc)
        return rc;
    mapping_register(m);
    fn(a, 0, m->sgl, ctx);
    return 0;
}

int dmahal__unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    _Atomic uintptr_t *slot;
    struct mapping *m = live_get(a->stream, sgl, false, &slot);

    if (!m)
        return -ENOENT;
    /* After sync_for_cpu the CPU has the data already, and the device had no turn since. */
    if (m->device_owns && (m->tracked || m->how == HOW_BOUNCE))
        dmahal__map_to_cpu(m);
    mapping_release(m);
    return 0;
}

int dmahal__sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    _Atomic uintptr_t *slot;
    /* Held, so that a racing unmap of the same list cannot free it meanwhile. */
    struct mapping *m = live_get(a->stream, sgl, true, &slot);

    if (!m)
        return -ENOENT;
    /* In every direction after the CPU had it, as at map: a FROM_DEVICE transfer's device
     * may write only part of it, and what it leaves must come back as the CPU left it.
     * While the device has it, a FROM_DEVICE transfer holds the device's bytes: kept. */
    if ((m->dir & DMAHAL_TO_DEVICE) || !m->device_owns)
        dmahal__map_fill_device_view(m);
    m->device_owns = true;
    live_put(a->stream, m, slot);
    return 0;
}

int dmahal__sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    _Atomic uintptr_t *slot;
    struct mapping *m = live_get(a->stream, sgl, true, &slot);

    if (!m)
        return -ENOENT;
    dmahal__map_to_cpu(m);
    m->device_owns = false;
    live_put(a->stream, m, slot);
    return 0;
}

void dmahal__stream_walk(struct dmahal_adapter *a,
                         void (*fn)(const struct dmahal_sgl *sgl, enum dmahal_dir dir,
                                    unsigned regs, void *arg),
                         void *arg)
{
    struct dmahal__stream *st = a->stream;

    for (size_t i = 0; i < FAST_SLOTS; i++) {
        _Atomic uintptr_t *slot = &st->fast[i];
        uintptr_t v = slot_wait(slot);
        struct mapping *m = (struct mapping *)v;

        /* Held like a sync holds it, so that it cannot be unmapped while it is printed. */
        if (v <= SLOT_TOMB || (v & SLOT_DYING) ||
            !atomic_compare_exchange_strong_explicit(slot, &v, v | SLOT_BUSY, memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        fn(m->sgl, m->dir, m->how == HOW_BOUNCE ? (unsigned)m->run.pages : 0, arg);
        atomic_fetch_and_explicit(slot, ~SLOT_BUSY, memory_order_release);
    }
    dmahal__lock_take(&st->lock);
    for (size_t i = 0; i < st->nbuckets; i++)
        for (struct mapping *m = st->buckets[i]; m; m = m->hnext)
            fn(m->sgl, m->dir, m->how == HOW_BOUNCE ? (unsigned)m->run.pages : 0, arg);
    dmahal__lock_drop(&st->lock);
}

unsigned dmahal_adapter_map_registers_in_use(const struct dmahal_adapter *a)
{
    return a && a->stream ? atomic_load(&a->stream->regs) : 0;
}

/* ---- teardown -------------------------------------------------------------------------------- */

void dmahal__stream_fini(struct dmahal_adapter *a)
{
    struct dmahal__stream *st = a->stream;

    if (!st)
        return;
    if (st->pool) {
        struct dmahal__bounce_waiter *w = dmahal__bounce_cancel(st->pool, a);

        while (w) {
            struct mapping *m = (struct mapping *)((char *)w - offsetof(struct mapping, w));

            w = w->next;
            m->fn(a, -ECANCELED, NULL, m->ctx);
            dmahal__mapping_free(m);
        }
    }
    for (size_t i = 0; i < FAST_SLOTS; i++) {
        uintptr_t v = atomic_load(&st->fast[i]);

        if (v > SLOT_TOMB)
            mapping_release((struct mapping *)(v & ~SLOT_FLAGS));
    }
    for (size_t i = 0; i < st->nbuckets; i++) {
        while (st->buckets[i]) {
            struct mapping *m = st->buckets[i];

            st->buckets[i] = m->hnext;
            mapping_release(m);
        }
    }
    if (st->pool)
        dmahal__bounce_leave(st->pool, st->joined);
    free(st->buckets);
    free(st);
    a->stream = NULL;
}
