/* SPDX-License-Identifier: MIT */
/*
 * bounce.c - bounce pools: per platform, one per constraint class (see bounce.h).
 */
#include "core/bounce.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One piece of platform memory; runs never span two, whose CPU addresses need not meet. */
struct pchunk {
    struct dmahal__chunk ch;
    struct dmahal__range free; /* by bus address */
};

struct dmahal__pool {
    struct dmahal__pool *next;
    struct dmahal_platform *p;
    uint64_t max_addr; /* the class: what its devices reach */
    unsigned bits;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* sleeping waiters */
    struct pchunk *chunks;
    size_t nchunks, cap;
    size_t total, used; /* pages */
    size_t wanted;      /* pages the joined adapters asked for */
    struct dmahal__bounce_waiter *head, *tail;
};

struct dmahal__bounce {
    struct dmahal__pool *pools;
};

static struct dmahal__pool *pool_get(struct dmahal_platform *p, uint64_t max_addr, unsigned bits)
{
    struct dmahal__pool *pool;

    /* Pools are created under the platform's lock and live until it closes. */
    pthread_mutex_lock(&p->lock);
    if (!p->bounce)
        p->bounce = calloc(1, sizeof(*p->bounce));
    if (!p->bounce) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    for (pool = p->bounce->pools; pool; pool = pool->next)
        if (pool->max_addr == max_addr)
            break;
    if (!pool) {
        pool = calloc(1, sizeof(*pool));
        if (pool) {
            pool->p = p;
            pool->max_addr = max_addr;
            pool->bits = bits;
            pthread_mutex_init(&pool->lock, NULL);
            pthread_cond_init(&pool->cond, NULL);
            pool->next = p->bounce->pools;
            p->bounce->pools = pool;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return pool;
}

/* Whether a run of @pages aligned to @align fits in the chunk when all of it is free. */
static bool chunk_holds(const struct pchunk *pc, size_t pages, uint64_t align, unsigned shift)
{
    uint64_t start = DMAHAL__ALIGN_UP((uint64_t)pc->ch.la, align);

    return start >= pc->ch.la && start - pc->ch.la <= pc->ch.len &&
           pc->ch.len - (start - pc->ch.la) >= ((uint64_t)pages << shift);
}

/* Whether some chunk could ever hold the run: if none can, waiting would never end. */
static bool pool_holds(const struct dmahal__pool *pool, size_t pages, uint64_t align)
{
    for (size_t i = 0; i < pool->nchunks; i++)
        if (chunk_holds(&pool->chunks[i], pages, align, pool->p->page_shift))
            return true;
    return false;
}

/*
 * Grows the pool by one piece of at least @pages that holds a run of @run pages aligned to
 * @align; the caller holds the pool's lock. The platform aligns a piece to the page only:
 * when the first piece is not aligned enough it is returned and a piece with room to align
 * the run in it is taken instead.
 */
static int pool_grow(struct dmahal__pool *pool, size_t pages, size_t run, uint64_t align)
{
    struct dmahal_platform *p = pool->p;
    size_t slack = (size_t)(align >> p->page_shift) - 1;
    struct pchunk *pc;
    int rc;

    if (pool->nchunks == pool->cap) {
        size_t cap = pool->cap ? pool->cap * 2 : 4;
        struct pchunk *v = realloc(pool->chunks, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        pool->chunks = v;
        pool->cap = cap;
    }
    pc = &pool->chunks[pool->nchunks];
    memset(pc, 0, sizeof(*pc));
    dmahal__range_init(&pc->free);
    rc = p->ops->bounce_alloc(p, pages << p->page_shift, pool->max_addr, &pc->ch);
    if (rc == 0 && !chunk_holds(pc, run, align, p->page_shift)) {
        p->ops->bounce_free(p, &pc->ch);
        if (pages < run + slack)
            pages = run + slack;
        rc = p->ops->bounce_alloc(p, pages << p->page_shift, pool->max_addr, &pc->ch);
    }
    if (rc)
        return rc;
    rc = dmahal__range_add(&pc->free, pc->ch.la, pc->ch.len);
    if (rc) {
        p->ops->bounce_free(p, &pc->ch);
        dmahal__range_fini(&pc->free);
        return rc;
    }
    pool->nchunks++;
    pool->total += pages;
    return 0;
}

int dmahal__bounce_join(struct dmahal_adapter *a, struct dmahal__pool **out, unsigned *joined)
{
    struct dmahal_platform *p = a->dev->p;
    bool iommu = p->has_iommu;
    unsigned want =
        a->map_registers < DMAHAL__BOUNCE_MAX_JOIN ? a->map_registers : DMAHAL__BOUNCE_MAX_JOIN;
    uint64_t align = a->c.alignment > p->page_size ? a->c.alignment : p->page_size;
    size_t run = want;
    struct dmahal__pool *pool;
    int rc = 0;

    *out = NULL;
    *joined = 0;
    if (!p->ops->bounce_alloc)
        return -ENOTSUP;
    pool = pool_get(p, iommu ? UINT64_MAX : a->c.max_addr, iommu ? 64 : a->c.addr_bits);
    if (!pool)
        return -ENOMEM;
    /* The largest run the adapter's transfers take: max_transfer's pages, not the one more
     * a transfer's start within a page adds, since a run starts at a page. */
    if (run > 1 && (a->c.max_transfer + p->page_size - 1) / p->page_size < run)
        run = (size_t)((a->c.max_transfer + p->page_size - 1) / p->page_size);
    pthread_mutex_lock(&pool->lock);
    /* All or nothing: either the pool holds every adapter's share, or this one fails. And
     * runs never span two pieces: one piece must hold the adapter's largest run, aligned,
     * or its transfers would wait for pages that can never come together. */
    if (!pool_holds(pool, run, align)) {
        size_t more = pool->wanted + want > pool->total ? pool->wanted + want - pool->total : 0;

        rc = pool_grow(pool, more > want ? more : want, run, align);
    } else if (pool->wanted + want > pool->total) {
        rc = pool_grow(pool, pool->wanted + want - pool->total, 1, p->page_size);
    }
    if (rc == 0)
        pool->wanted += want;
    pthread_mutex_unlock(&pool->lock);
    if (rc)
        return rc;
    *out = pool;
    *joined = want;
    return 0;
}

void dmahal__bounce_leave(struct dmahal__pool *pool, unsigned joined)
{
    pthread_mutex_lock(&pool->lock);
    pool->wanted -= joined;
    pthread_mutex_unlock(&pool->lock);
}

static bool try_take(struct dmahal__pool *pool, size_t pages, uint64_t align,
                     struct dmahal__bounce_run *run)
{
    unsigned shift = pool->p->page_shift;

    for (size_t i = pool->nchunks; i-- > 0;) {
        struct pchunk *pc = &pool->chunks[i];
        uint64_t la;

        if (pc->free.free_bytes < (pages << shift))
            continue;
        if (dmahal__range_alloc(&pc->free, pages << shift, align, 0, UINT64_MAX, &la))
            continue;
        run->la = la;
        run->va = (char *)pc->ch.va + (la - pc->ch.la);
        run->pages = pages;
        pool->used += pages;
        return true;
    }
    return false;
}

int dmahal__bounce_reserve(struct dmahal__pool *pool, size_t pages, uint64_t align, bool wait,
                           struct dmahal__bounce_waiter *w, struct dmahal__bounce_run *run)
{
    struct dmahal__bounce_waiter self = {.pages = pages, .align = align};
    int rc = 0;

    memset(run, 0, sizeof(*run));
    pthread_mutex_lock(&pool->lock);
    if (!pool_holds(pool, pages, align)) {
        rc = -E2BIG;
        goto out;
    }
    /* First come, first served: nobody overtakes a waiter, even when its run would fit. */
    if (!pool->head && try_take(pool, pages, align, run))
        goto out;
    if (!w && !wait) {
        rc = -ENOSPC;
        goto out;
    }
    if (!w)
        w = &self;
    w->next = NULL;
    w->pages = pages;
    w->align = align;
    w->granted = false;
    if (pool->tail)
        pool->tail->next = w;
    else
        pool->head = w;
    pool->tail = w;
    if (w != &self) {
        rc = -EINPROGRESS;
        goto out;
    }
    while (!self.granted)
        pthread_cond_wait(&pool->cond, &pool->lock);
    *run = self.run;
out:
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void dmahal__bounce_release(struct dmahal__pool *pool, const struct dmahal__bounce_run *run)
{
    unsigned shift = pool->p->page_shift;
    struct dmahal__bounce_waiter *granted = NULL, **tail = &granted;
    bool woke = false;

    pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->nchunks; i++) {
        struct pchunk *pc = &pool->chunks[i];

        if (run->la >= pc->ch.la && run->la < pc->ch.la + pc->ch.len) {
            /* Without memory for an extent the pages stay out of use, never handed twice. */
            if (dmahal__range_add(&pc->free, run->la, run->pages << shift) == 0)
                pool->used -= run->pages;
            break;
        }
    }
    while (pool->head && try_take(pool, pool->head->pages, pool->head->align, &pool->head->run)) {
        struct dmahal__bounce_waiter *w = pool->head;

        pool->head = w->next;
        if (!pool->head)
            pool->tail = NULL;
        w->granted = true;
        w->next = NULL;
        if (w->grant) {
            *tail = w;
            tail = &w->next;
        } else {
            woke = true;
        }
    }
    if (woke)
        pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    while (granted) {
        struct dmahal__bounce_waiter *w = granted;

        granted = w->next;
        w->grant(w); /* may free w */
    }
}

struct dmahal__bounce_waiter *dmahal__bounce_cancel(struct dmahal__pool *pool,
                                                    struct dmahal_adapter *a)
{
    struct dmahal__bounce_waiter *out = NULL, **tail = &out, **pp;

    pthread_mutex_lock(&pool->lock);
    pool->tail = NULL;
    for (pp = &pool->head; *pp;) {
        struct dmahal__bounce_waiter *w = *pp;

        if (w->a == a && w->grant) {
            *pp = w->next;
            w->next = NULL;
            *tail = w;
            tail = &w->next;
        } else {
            pool->tail = w;
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return out;
}

void dmahal__bounce_stats(struct dmahal__pool *pool, size_t *total, size_t *used, unsigned *bits)
{
    pthread_mutex_lock(&pool->lock);
    *total = pool->total;
    *used = pool->used;
    *bits = pool->bits;
    pthread_mutex_unlock(&pool->lock);
}

void dmahal__bounce_describe(struct dmahal_platform *p, FILE *f)
{
    pthread_mutex_lock(&p->lock);
    for (struct dmahal__pool *pool = p->bounce ? p->bounce->pools : NULL; pool; pool = pool->next) {
        size_t total, used;
        unsigned bits;
        size_t waiting = 0;

        dmahal__bounce_stats(pool, &total, &used, &bits);
        pthread_mutex_lock(&pool->lock);
        for (struct dmahal__bounce_waiter *w = pool->head; w; w = w->next)
            waiting++;
        pthread_mutex_unlock(&pool->lock);
        fprintf(f, "bounce pool %u-bit: %zu pages, %zu in use, %zu waiting\n", bits, total, used,
                waiting);
    }
    pthread_mutex_unlock(&p->lock);
}

void dmahal__bounce_fini(struct dmahal_platform *p)
{
    struct dmahal__pool *pool, *next;

    if (!p->bounce)
        return;
    for (pool = p->bounce->pools; pool; pool = next) {
        next = pool->next;
        for (size_t i = 0; i < pool->nchunks; i++) {
            p->ops->bounce_free(p, &pool->chunks[i].ch);
            dmahal__range_fini(&pool->chunks[i].free);
        }
        free(pool->chunks);
        pthread_cond_destroy(&pool->cond);
        pthread_mutex_destroy(&pool->lock);
        free(pool);
    }
    free(p->bounce);
    p->bounce = NULL;
}
