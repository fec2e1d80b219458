/* SPDX-License-Identifier: MIT */
/*
 * map_layout.c - the layouts of a streaming map that need no bounce pages: its memory, the list
 * built within the adapter's constraints, the IOMMU, pinned and registered layouts, and the cache
 * maintenance a non-coherent device needs (map.c decides which, and bounces the rest).
 */
#include "core/map_internal.h"
#include "core/util.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ---- mapping memory ------------------------------------------------------------------------ */

/*
 * Most transfers are a few pages in a few pieces, so their mapping fits a small block. Each
 * thread keeps up to SMALL_KEEP freed ones (32 KiB): malloc and free would cost a third of a
 * one-page map/unmap, and a driver with a queue's worth of transfers in flight (NVMe at QD 32)
 * frees them in batches, which 16 sent back to free() and malloc(). A block freed by another
 * thread than the one that took it simply changes hands.
 */
#define SMALL_BLOCK 512
#define SMALL_KEEP  64

struct block_cache {
    void *v[SMALL_KEEP];
    unsigned n;
};

static DMAHAL__TLS struct block_cache *blocks;
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

void *dmahal__mapping_block_get(size_t bytes)
{
    if (bytes > SMALL_BLOCK)
        return malloc(bytes);
    if (blocks && blocks->n)
        return blocks->v[--blocks->n];
    return malloc(SMALL_BLOCK);
}

void dmahal__mapping_free(struct mapping *m)
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

/* ---- building the list -------------------------------------------------------------------- */

/* Appends [la, la + len) to the list, merging with the last element where the constraints
 * allow and splitting at max_segment and boundary multiples. -EAGAIN when the device cannot
 * take this layout (reach, alignment, element count): the caller bounces. */
int dmahal__map_sg_add(const struct dmahal__constraints *c, struct mapping *m, dmahal_addr_t la,
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

unsigned dmahal__map_perm_of(enum dmahal_dir dir)
{
    return (dir & DMAHAL_TO_DEVICE ? DMAHAL__PERM_READ : 0) |
           (dir & DMAHAL_FROM_DEVICE ? DMAHAL__PERM_WRITE : 0);
}

/* Allocates a mapping with room for the worst case of either layout, and copies the
 * non-empty iovec entries. */
int dmahal__mapping_new(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
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
    m = dmahal__mapping_block_get(bytes);
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

int dmahal__map_cache_track(struct mapping *m)
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

void dmahal__map_cache_untrack(struct mapping *m)
{
    if (m->tracked)
        for_each_device_view(m, m->a->dev->p->ops->cache_untrack);
    m->tracked = false;
}

/* The device's view gets the driver's bytes: copied into the bounce run, caches written. */
void dmahal__map_fill_device_view(struct mapping *m)
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
void dmahal__map_to_cpu(struct mapping *m)
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

void *dmahal__map_base_of(const struct iovec *v, size_t page)
{
    return (void *)DMAHAL__ALIGN_DOWN((uintptr_t)v->iov_base, page);
}

void dmahal__map_iova_put(struct dmahal_adapter *a, dmahal_addr_t iova, size_t len)
{
    if (a->c.alignment > a->dev->p->page_size)
        dmahal__iova_free(a->dev->iova, iova, len);
    else
        dmahal__iova_free_fast(a->dev->iova, iova, len);
}

int dmahal__map_iova_get(struct dmahal_adapter *a, size_t len, dmahal_addr_t *iova)
{
    /* Streaming maps align only to the page, which the per-thread caches serve; a larger
     * alignment goes to the allocator itself. */
    if (a->c.alignment > a->dev->p->page_size)
        return dmahal__iova_alloc(a->dev->iova, len, a->c.alignment, 0, a->c.max_addr, iova);
    return dmahal__iova_alloc_fast(a->dev->iova, len, a->c.max_addr, iova);
}

/* One contiguous IOVA range for the whole transfer, each entry's pages after the last's. */
int dmahal__map_iommu(struct mapping *m)
{
    struct dmahal_adapter *a = m->a;
    struct dmahal_device *d = a->dev;
    size_t page = d->p->page_size, len = 0, at;
    unsigned mapped, perm = dmahal__map_perm_of(m->dir);
    int rc;

    for (unsigned i = 0; i < m->niov; i++)
        len += span_of(&m->iov[i], page);
    if ((a->desc.flags & DMAHAL_DESC_MAP_CACHE) && m->niov == 1) {
        m->cache = true;
        if (dmahal__mcache_take(a, dmahal__map_base_of(&m->iov[0], page), len, perm, &m->iova) ==
            0) {
            m->iova_len = len;
            rc =
                dmahal__map_sg_add(&a->c, m, m->iova + ((uintptr_t)m->iov[0].iov_base & (page - 1)),
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
    rc = dmahal__map_iova_get(a, len, &m->iova);
    if (rc)
        return rc;
    m->iova_len = len;
    at = 0;
    if (m->niov == 1) {
        /* One piece (most maps): its span is the whole range, no walk needed. */
        rc = dmahal__map_sg_add(&a->c, m, m->iova + ((uintptr_t)m->iov[0].iov_base & (page - 1)),
                                m->iov[0].iov_len);
    } else {
        for (unsigned i = 0; i < m->niov; i++) {
            rc = dmahal__map_sg_add(&a->c, m,
                                    m->iova + at + ((uintptr_t)m->iov[i].iov_base & (page - 1)),
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

        rc = d->p->ops->iommu_map(d, m->iova + at, dmahal__map_base_of(&m->iov[mapped], page), span,
                                  perm);
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
    dmahal__map_iova_put(a, m->iova, len);
    m->iova_len = 0;
    m->sgl->nseg = 0;
    return rc;
}

void dmahal__map_unpin_all(struct mapping *m, unsigned n)
{
    struct dmahal_adapter *a = m->a;
    size_t page = a->dev->p->page_size;

    for (unsigned i = 0; i < n; i++)
        a->dev->p->ops->unpin(a, dmahal__map_base_of(&m->iov[i], page), span_of(&m->iov[i], page),
                              m->bus[i]);
}

/* Without an IOMMU: the memory where it is, if the device reaches all of it. */
int dmahal__map_pinned(struct mapping *m)
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

        rc = ops->pin(a, dmahal__map_base_of(v, page), span_of(v, page), &m->bus[i]);
        if (rc)
            break;
        rc = dmahal__map_sg_add(&a->c, m, m->bus[i] + ((uintptr_t)v->iov_base & (page - 1)),
                                v->iov_len);
        if (rc) {
            i++;
            break;
        }
    }
    if (rc) {
        dmahal__map_unpin_all(m, i);
        m->sgl->nseg = 0;
        return rc;
    }
    m->how = HOW_PIN;
    return 0;
}

void dmahal__map_reg_put_all(struct mapping *m, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        dmahal__reg_put((struct dmahal__reg *)(uintptr_t)m->bus[i]);
}

/* Inside registered memory (reg.c): the address is the registration's, nothing to map.
 * -EAGAIN when a piece lies outside every registration, or the layout does not fit. */
int dmahal__map_registered(struct mapping *m)
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
        rc = dmahal__map_sg_add(&a->c, m, la, m->iov[i].iov_len);
        if (rc) {
            i++;
            break;
        }
    }
    if (rc) {
        dmahal__map_reg_put_all(m, i);
        m->sgl->nseg = 0;
        return -EAGAIN;
    }
    m->how = HOW_REG;
    return 0;
}
