/* SPDX-License-Identifier: MIT */
/*
 * map.c - streaming DMA: scatter/gather lists that honour an adapter's constraints, through
 * the IOMMU when there is one, directly when the device can take the memory as it is, and
 * through bounce pages (map registers) when it cannot; plus the cache maintenance a
 * non-coherent device needs for them. (Cached common buffers: common_sync.c.)
 *
 * Every live list is in a per-adapter table keyed by the list's address, so that unmap
 * and sync can refuse a list they never gave out without touching it. The table's lock
 * is the adapter's own: two adapters never share a lock on the map/unmap path, and the
 * IOVA allocator's per-thread caches keep the IOMMU domain's lock off it too.
 */
#include "core/bounce.h"
#include "core/iova.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum how { HOW_PIN, HOW_IOMMU, HOW_BOUNCE, HOW_REG };

struct mapping {
    struct mapping *hnext; /* live table chain */
    struct dmahal_sgl *sgl;
    struct dmahal_adapter *a;
    enum dmahal_dir dir;
    enum how how;
    bool device_owns; /* false between sync_for_cpu and sync_for_device */
    bool tracked;     /* the platform's cache model follows its memory */
    bool small;       /* a SMALL_BLOCK from the thread's cache */
    unsigned niov;
    struct iovec *iov;  /* the non-empty entries, copied */
    dmahal_addr_t *bus; /* HOW_PIN: each entry's first page's bus address; HOW_REG: its
                         * registration */
    size_t total;
    unsigned cap;       /* room in sgl->seg */
    dmahal_addr_t iova; /* HOW_IOMMU, and HOW_BOUNCE behind an IOMMU */
    size_t iova_len;
    struct dmahal__bounce_run run; /* HOW_BOUNCE */
    size_t boff;  /* where the data starts in the run (untrusted: it ends with the run) */
    size_t guard; /* unmapped IOVA after the run, in iova_len (untrusted) */
    bool spill;   /* the run is spill memory (spill.c), mapped already; not the pool's */
    bool cache;   /* HOW_IOMMU of one piece: its mapping goes to the mapping cache */
    struct dmahal__pool *pool; /* where run came from */
    struct dmahal__bounce_waiter w;
    dmahal_map_fn fn;
    void *ctx;
};

/*
 * The table of live lists: a small lock-free table first (most adapters have a few dozen
 * transfers in flight), chains under the adapter's lock for what does not fit. A slot holds
 * a mapping's address, EMPTY, or TOMB once freed; BUSY is or'ed in while a sync uses the
 * mapping, so that an unmap waits for it. A list's address is the mapping's plus one
 * mapping, so a slot is matched without reading the mapping it names (which another thread
 * may be freeing).
 */
#define FAST_SLOTS  256
#define FAST_PROBES 8
#define SLOT_EMPTY  ((uintptr_t)0)
#define SLOT_TOMB   ((uintptr_t)1)
#define SLOT_BUSY   ((uintptr_t)2)
#define SLOT_DYING  ((uintptr_t)4) /* an unmap has claimed it: no new hold may start */
#define SLOT_FLAGS  (SLOT_BUSY | SLOT_DYING)

/* How the adapter's device reaches host memory, decided once. */
enum path {
    PATH_IOMMU,  /* through its IOMMU domain */
    PATH_PIN,    /* at the memory's bus address, bouncing what it cannot take */
    PATH_BOUNCE, /* only through bounce pages */
    PATH_NONE,   /* not at all: the platform implements no streaming */
};

struct dmahal__stream {
    enum path path;
    _Atomic uintptr_t fast[FAST_SLOTS]; /* the live table's lock-free part */
    dmahal__lock_t lock;                /* the live table's overflow, the pool */
    struct mapping **buckets;
    size_t nbuckets, live;
    atomic_uint regs; /* bounce pages held by live lists */
    struct dmahal__pool *pool;
    unsigned joined;
};

/* ---- mapping memory ------------------------------------------------------------------------ */

/*
 * Most transfers are a few pages in a few pieces, so their mapping fits a small block. Each
 * thread keeps a few freed ones: malloc and free would cost a third of a one-page map/unmap.
 * A block freed by another thread than the one that took it simply changes hands.
 */
#define SMALL_BLOCK 512
#define SMALL_KEEP  16

struct block_cache {
    void *v[SMALL_KEEP];
    unsigned n;
};

static _Thread_local struct block_cache *blocks;
static pthread_once_t blocks_once = PTHREAD_ONCE_INIT;
static pthread_key_t blocks_key;

static void blocks_destroy(void *arg)
{
    struct block_cache *c = arg;

    while (c->n)
        free(c->v[--c->n]);
    free(c);
    blocks = NULL;
}

static void blocks_key_init(void)
{
    pthread_key_create(&blocks_key, blocks_destroy);
}

static void *block_get(size_t bytes)
{
    if (bytes > SMALL_BLOCK)
        return malloc(bytes);
    if (blocks && blocks->n)
        return blocks->v[--blocks->n];
    return malloc(SMALL_BLOCK);
}

static void mapping_free(struct mapping *m)
{
    if (m->small && !blocks) {
        pthread_once(&blocks_once, blocks_key_init);
        blocks = calloc(1, sizeof(*blocks));
        if (blocks && pthread_setspecific(blocks_key, blocks)) {
            free(blocks);
            blocks = NULL;
        }
    }
    if (m->small && blocks && blocks->n < SMALL_KEEP) {
        blocks->v[blocks->n++] = m;
        return;
    }
    free(m);
}

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

/* ---- building the list -------------------------------------------------------------------- */

/* Appends [la, la + len) to the list, merging with the last element where the constraints
 * allow and splitting at max_segment and boundary multiples. -EAGAIN when the device cannot
 * take this layout (reach, alignment, element count): the caller bounces. */
static int sg_add(const struct dmahal__constraints *c, struct mapping *m, dmahal_addr_t la,
                  size_t len)
{
    struct dmahal_sgl *sgl = m->sgl;
    /* A split at max_segment must leave the next element aligned too. */
    uint64_t maxseg = c->max_segment == SIZE_MAX
                          ? UINT64_MAX
                          : DMAHAL__ALIGN_DOWN((uint64_t)c->max_segment, c->alignment);

    if (la + len - 1 < la || la + len - 1 > c->max_addr)
        return -EAGAIN;
    /* The first element of a list that needs no split (most maps): no merge to try. */
    if (sgl->nseg == 0 && len <= maxseg && !(la & (c->alignment - 1)) && m->cap &&
        (!c->boundary || c->boundary - (la & (c->boundary - 1)) >= len)) {
        sgl->seg[0] = (struct dmahal_seg){la, len};
        sgl->nseg = 1;
        return 0;
    }
    while (len) {
        struct dmahal_seg *last = sgl->nseg ? &sgl->seg[sgl->nseg - 1] : NULL;
        uint64_t room, take;

        if (last && last->la + last->len == la && last->len < maxseg &&
            !(c->boundary && (la & (c->boundary - 1)) == 0)) {
            room = maxseg - last->len;
        } else {
            if ((la & (c->alignment - 1)) || sgl->nseg == c->max_segments || sgl->nseg == m->cap)
                return -EAGAIN;
            /* A gap in the list must fall on the virtual boundary: the element before it
             * ends there, and this one starts there. */
            if (c->virt_boundary && last &&
                ((la | (last->la + last->len)) & (c->virt_boundary - 1)))
                return -EAGAIN;
            last = &sgl->seg[sgl->nseg++];
            *last = (struct dmahal_seg){la, 0};
            room = maxseg;
        }
        if (c->boundary && c->boundary - (la & (c->boundary - 1)) < room)
            room = c->boundary - (la & (c->boundary - 1));
        take = len < room ? len : room;
        last->len += take;
        la += take;
        len -= take;
    }
    return 0;
}

static unsigned perm_of(enum dmahal_dir dir)
{
    return (dir & DMAHAL_TO_DEVICE ? DMAHAL__PERM_READ : 0) |
           (dir & DMAHAL_FROM_DEVICE ? DMAHAL__PERM_WRITE : 0);
}

/* Allocates a mapping with room for the worst case of either layout, and copies the
 * non-empty iovec entries. */
static int mapping_new(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                       enum dmahal_dir dir, struct mapping **out)
{
    const struct dmahal__constraints *c = &a->c;
    uint64_t unit = c->max_segment == SIZE_MAX
                        ? UINT64_MAX
                        : DMAHAL__ALIGN_DOWN((uint64_t)c->max_segment, c->alignment);
    uint64_t total = 0, bound = 2, cap, window = UINT64_MAX;
    unsigned n = 0;
    struct mapping *m;
    size_t bytes;

    *out = NULL;
    /*
     * Elements of one contiguous piece of L bytes: within each boundary window, ceil(w /
     * unit); at most L / unit + (windows touched), windows touched at most L / boundary + 2.
     * When the unit divides the boundary (or there is none) a split at a window's end is a
     * split at a unit's end too, and L / unit + 2 is enough; when the boundary is the
     * smaller, each window is one element.
     */
    if (c->boundary && c->boundary <= unit)
        unit = c->boundary;
    else if (c->boundary && c->boundary % unit)
        window = c->boundary;
    for (unsigned i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        if (!iov[i].iov_base)
            return -EINVAL;
        if (iov[i].iov_len > DMAHAL__MAX_LEN || total + iov[i].iov_len > DMAHAL__MAX_LEN)
            return -E2BIG;
        total += iov[i].iov_len;
        /* No division when there is no limit (most adapters). */
        bound += (unit == UINT64_MAX ? 0 : iov[i].iov_len / unit) +
                 (window == UINT64_MAX ? 0 : iov[i].iov_len / window) + 2;
        n++;
    }
    if (total == 0)
        return -EINVAL;
    if (total > c->max_transfer)
        return -E2BIG;
    cap = bound < c->max_segments ? bound : c->max_segments;
    bytes = sizeof(*m) + sizeof(struct dmahal_sgl) + cap * sizeof(struct dmahal_seg) +
            n * (sizeof(struct iovec) + sizeof(dmahal_addr_t));
    m = block_get(bytes);
    if (!m)
        return -ENOMEM;
    m->small = bytes <= SMALL_BLOCK;
    /* Field by field: a whole-struct clear compiles to a string store that costs more. */
    m->hnext = NULL;
    m->sgl = (struct dmahal_sgl *)(m + 1);
    m->sgl->nseg = 0;
    m->a = a;
    m->dir = dir;
    m->how = HOW_PIN;
    m->device_owns = true;
    m->tracked = false;
    m->niov = 0;
    m->iov = (struct iovec *)&m->sgl->seg[cap];
    m->bus = (dmahal_addr_t *)&m->iov[n];
    m->total = total;
    m->cap = (unsigned)cap;
    m->iova = 0;
    m->iova_len = 0;
    m->run = (struct dmahal__bounce_run){NULL, 0, 0};
    m->boff = 0;
    m->guard = 0;
    m->spill = false;
    m->cache = false;
    m->pool = NULL;
    m->fn = NULL;
    m->ctx = NULL;
    /* Entries that continue one another in memory become one: one pin, one run of pages,
     * and one element where the device allows it. */
    for (unsigned i = 0; i < iovcnt; i++) {
        struct iovec *last = m->niov ? &m->iov[m->niov - 1] : NULL;

        if (!iov[i].iov_len)
            continue;
        if (last && (char *)last->iov_base + last->iov_len == (char *)iov[i].iov_base)
            last->iov_len += iov[i].iov_len;
        else
            m->iov[m->niov++] = iov[i];
    }
    *out = m;
    return 0;
}

/* ---- cache maintenance ------------------------------------------------------------------- */

/* Calls @op on each piece of host memory the device sees for this mapping. */
static void for_each_device_view(struct mapping *m,
                                 void (*op)(struct dmahal_platform *p, void *va, size_t len))
{
    struct dmahal_platform *p = m->a->dev->p;

    if (!op)
        return;
    if (m->how == HOW_BOUNCE) {
        op(p, m->run.va + m->boff, m->total);
        return;
    }
    for (unsigned i = 0; i < m->niov; i++)
        op(p, m->iov[i].iov_base, m->iov[i].iov_len);
}

static int cache_track(struct mapping *m)
{
    struct dmahal_platform *p = m->a->dev->p;

    if (m->a->c.coherent || !p->ops->cache_track)
        return 0;
    if (m->how == HOW_BOUNCE) {
        if (p->ops->cache_track(p, m->run.va + m->boff, m->total))
            return -ENOMEM;
    } else {
        for (unsigned i = 0; i < m->niov; i++) {
            if (p->ops->cache_track(p, m->iov[i].iov_base, m->iov[i].iov_len)) {
                while (i-- > 0)
                    p->ops->cache_untrack(p, m->iov[i].iov_base, m->iov[i].iov_len);
                return -ENOMEM;
            }
        }
    }
    m->tracked = true;
    return 0;
}

static void cache_untrack(struct mapping *m)
{
    if (m->tracked)
        for_each_device_view(m, m->a->dev->p->ops->cache_untrack);
    m->tracked = false;
}

/* The device's view gets the driver's bytes: copied into the bounce run, caches written. */
static void fill_device_view(struct mapping *m)
{
    if (m->how == HOW_BOUNCE) {
        char *at = m->run.va + m->boff;

        for (unsigned i = 0; i < m->niov; i++) {
            memcpy(at, m->iov[i].iov_base, m->iov[i].iov_len);
            at += m->iov[i].iov_len;
        }
    }
    if (m->tracked)
        for_each_device_view(m, m->a->dev->p->ops->cache_flush);
}

/* The device hands the memory back to the CPU. */
static void to_cpu(struct mapping *m)
{
    if (!(m->dir & DMAHAL_FROM_DEVICE))
        return;
    if (m->tracked)
        for_each_device_view(m, m->a->dev->p->ops->cache_invalidate);
    if (m->how == HOW_BOUNCE) {
        const char *at = m->run.va + m->boff;

        for (unsigned i = 0; i < m->niov; i++) {
            memcpy(m->iov[i].iov_base, at, m->iov[i].iov_len);
            at += m->iov[i].iov_len;
        }
    }
}

/* ---- the direct layouts ------------------------------------------------------------------- */

static size_t span_of(const struct iovec *v, size_t page)
{
    uintptr_t va = (uintptr_t)v->iov_base;

    return DMAHAL__ALIGN_UP(va + v->iov_len, page) - DMAHAL__ALIGN_DOWN(va, page);
}

static void *base_of(const struct iovec *v, size_t page)
{
    return (void *)DMAHAL__ALIGN_DOWN((uintptr_t)v->iov_base, page);
}

static void iova_put(struct dmahal_adapter *a, dmahal_addr_t iova, size_t len)
{
    if (a->c.alignment > a->dev->p->page_size)
        dmahal__iova_free(a->dev->iova, iova, len);
    else
        dmahal__iova_free_fast(a->dev->iova, iova, len);
}

static int iova_get(struct dmahal_adapter *a, size_t len, dmahal_addr_t *iova)
{
    /* Streaming maps align only to the page, which the per-thread caches serve; a larger
     * alignment goes to the allocator itself. */
    if (a->c.alignment > a->dev->p->page_size)
        return dmahal__iova_alloc(a->dev->iova, len, a->c.alignment, 0, a->c.max_addr, iova);
    return dmahal__iova_alloc_fast(a->dev->iova, len, a->c.max_addr, iova);
}

/* One contiguous IOVA range for the whole transfer, each entry's pages after the last's. */
static int map_iommu(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    struct dmahal_device *d = a->dev;
    size_t page = d->p->page_size, len = 0, at;
    unsigned mapped, perm = perm_of(m->dir);
    int rc;

    for (unsigned i = 0; i < m->niov; i++)
        len += span_of(&m->iov[i], page);
    if ((a->desc.flags & DMAHAL_DESC_MAP_CACHE) && m->niov == 1) {
        m->cache = true;
        if (dmahal__mcache_take(a, base_of(&m->iov[0], page), len, perm, &m->iova) == 0) {
            m->iova_len = len;
            rc = sg_add(&a->c, m, m->iova + ((uintptr_t)m->iov[0].iov_base & (page - 1)),
                        m->iov[0].iov_len);
            if (rc == 0) {
                m->how = HOW_IOMMU;
                return 0;
            }
            m->sgl->nseg = 0;
            d->p->ops->iommu_unmap(d, m->iova, len);
            goto err_iova;
        }
    }
    rc = iova_get(a, len, &m->iova);
    if (rc)
        return rc;
    m->iova_len = len;
    at = 0;
    if (m->niov == 1) {
        /* One piece (most maps): its span is the whole range, no walk needed. */
        rc = sg_add(&a->c, m, m->iova + ((uintptr_t)m->iov[0].iov_base & (page - 1)),
                    m->iov[0].iov_len);
    } else {
        for (unsigned i = 0; i < m->niov; i++) {
            rc = sg_add(&a->c, m, m->iova + at + ((uintptr_t)m->iov[i].iov_base & (page - 1)),
                        m->iov[i].iov_len);
            if (rc)
                break;
            at += span_of(&m->iov[i], page);
        }
    }
    if (rc)
        goto err_iova;
    at = 0;
    for (mapped = 0; mapped < m->niov; mapped++) {
        size_t span = m->niov == 1 ? len : span_of(&m->iov[mapped], page);

        rc = d->p->ops->iommu_map(d, m->iova + at, base_of(&m->iov[mapped], page), span, perm);
        if (rc)
            goto err_map;
        at += span;
    }
    m->how = HOW_IOMMU;
    return 0;

err_map:
    if (at)
        d->p->ops->iommu_unmap(d, m->iova, at);
err_iova:
    iova_put(a, m->iova, len);
    m->iova_len = 0;
    m->sgl->nseg = 0;
    return rc;
}

static void unpin_all(struct mapping *m, unsigned n)
{
    struct dmahal_adapter *a = m->a;
    size_t page = a->dev->p->page_size;

    for (unsigned i = 0; i < n; i++)
        a->dev->p->ops->unpin(a, base_of(&m->iov[i], page), span_of(&m->iov[i], page), m->bus[i]);
}

/* Without an IOMMU: the memory where it is, if the device reaches all of it. */
static int map_pinned(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    const struct dmahal__platform_ops *ops = a->dev->p->ops;
    size_t page = a->dev->p->page_size;
    unsigned i;
    int rc = 0;

    if (!ops->pin)
        return -EAGAIN;
    for (i = 0; i < m->niov; i++) {
        const struct iovec *v = &m->iov[i];

        rc = ops->pin(a, base_of(v, page), span_of(v, page), &m->bus[i]);
        if (rc)
            break;
        rc = sg_add(&a->c, m, m->bus[i] + ((uintptr_t)v->iov_base & (page - 1)), v->iov_len);
        if (rc) {
            i++;
            break;
        }
    }
    if (rc) {
        unpin_all(m, i);
        m->sgl->nseg = 0;
        return rc;
    }
    m->how = HOW_PIN;
    return 0;
}

static void reg_put_all(struct mapping *m, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        dmahal__reg_put((struct dmahal__reg *)(uintptr_t)m->bus[i]);
}

/* Inside registered memory (reg.c): the address is the registration's, nothing to map.
 * -EAGAIN when a piece lies outside every registration, or the layout does not fit. */
static int map_registered(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    unsigned i;
    int rc = 0;

    for (i = 0; i < m->niov; i++) {
        struct dmahal__reg *r;
        dmahal_addr_t la;

        if (dmahal__reg_get(a, m->iov[i].iov_base, m->iov[i].iov_len, &r, &la)) {
            rc = -EAGAIN;
            break;
        }
        m->bus[i] = (dmahal_addr_t)(uintptr_t)r;
        rc = sg_add(&a->c, m, la, m->iov[i].iov_len);
        if (rc) {
            i++;
            break;
        }
    }
    if (rc) {
        reg_put_all(m, i);
        m->sgl->nseg = 0;
        return -EAGAIN;
    }
    m->how = HOW_REG;
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
        rc = iova_get(a, len + m->guard, &m->iova);
        if (rc)
            return rc;
        m->iova_len = len + m->guard;
        rc = d->p->ops->iommu_map(d, m->iova, m->run.va, len, perm_of(m->dir));
        if (rc) {
            iova_put(a, m->iova, m->iova_len);
            m->iova_len = 0;
            return rc;
        }
        bus = m->iova;
    }
    /* An untrusted device's copy ends where the mapping does, as far as the alignment lets
     * it: an access past the end reaches the unmapped guard page. */
    if (m->guard)
        m->boff = DMAHAL__ALIGN_DOWN(len - m->total, (size_t)a->c.alignment);
    rc = sg_add(&a->c, m, bus + m->boff, m->total);
    if (rc == 0)
        rc = cache_track(m);
    if (rc) {
        if (m->iova_len) {
            d->p->ops->iommu_unmap(d, m->iova, len);
            iova_put(a, m->iova, m->iova_len);
            m->iova_len = 0;
        }
        /* Even a fresh contiguous run does not fit: no layout would. */
        return rc == -EAGAIN ? -E2BIG : rc;
    }
    atomic_fetch_add(&a->stream->regs, (unsigned)m->run.pages);
    /* In every direction, as Linux's swiotlb does: bytes a FROM_DEVICE transfer's device
     * does not write come back at unmap as the driver left them, never as whatever the
     * pages held before (another transfer's data). */
    fill_device_view(m);
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

    cache_untrack(m);
    if (m->cache && m->how == HOW_IOMMU &&
        dmahal__mcache_keep(a, base_of(&m->iov[0], d->p->page_size), m->iova_len, perm_of(m->dir),
                            m->iova)) {
        m->iova_len = 0; /* kept mapped, for the next map of the same memory */
    } else if (m->iova_len) {
        d->p->ops->iommu_unmap(d, m->iova, m->iova_len - m->guard);
        iova_put(a, m->iova, m->iova_len);
    }
    if (m->how == HOW_PIN)
        unpin_all(m, m->niov);
    if (m->how == HOW_REG)
        reg_put_all(m, m->niov);
    if (m->how == HOW_BOUNCE && m->spill) {
        dmahal__spill_put(a, m->run.la, m->run.pages << d->p->page_shift);
    } else if (m->how == HOW_BOUNCE) {
        atomic_fetch_sub(&a->stream->regs, (unsigned)m->run.pages);
        bounce_unwind(m);
    }
    mapping_free(m);
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
        mapping_free(m);
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
    rc = sg_add(&a->c, m, m->run.la, m->total);
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
    rc = mapping_new(a, iov, iovcnt, dir, &m);
    if (rc)
        return rc;
    rc = -EAGAIN;
    if (atomic_load_explicit(&a->regs, memory_order_relaxed) && a->stream->path <= PATH_PIN)
        rc = map_registered(m);
    if (rc == 0)
        goto direct;
    if ((a->desc.flags & DMAHAL_DESC_UNTRUSTED) && shares_a_page(m)) {
        m->guard = a->dev->p->page_size;
        rc = -EAGAIN;
        goto bounce;
    }
    switch (a->stream->path) {
    case PATH_IOMMU:
        rc = map_iommu(m);
        /* Out of mappings: the cache gives its back first, then the copy goes to spill. */
        if (rc == -ENOSPC && dmahal__mcache_flush(a))
            rc = map_iommu(m);
        if (rc == -ENOSPC)
            rc = map_spill(m);
        break;
    case PATH_PIN:
        rc = map_pinned(m);
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
        rc = cache_track(m);
        if (rc) {
            mapping_release(m);
            return rc;
        }
        /* A direct layout has nothing to copy: only a tracked one has caches to flush, in
         * every direction (as arm64 cleans them): bytes the device does not write stay. A
         * spilled one has its copy to make. */
        if (m->tracked || m->how == HOW_BOUNCE)
            fill_device_view(m);
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
    mapping_free(m);
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
        to_cpu(m);
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
        fill_device_view(m);
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
    to_cpu(m);
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
            mapping_free(m);
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
