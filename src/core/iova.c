/* SPDX-License-Identifier: MIT */
/*
 * iova.c - I/O virtual address spaces: the core range allocator under a lock, fronted by
 * per-thread magazines for the common sizes (see iova.h).
 *
 * Each thread has a small cache (allocated on first use, flushed back when the thread
 * exits) of a few domains' magazines, keyed by the domain's id, which is never reused: a
 * magazine of a domain that was destroyed is recognised by its stale id and dropped, so a
 * domain never has to chase other threads' caches. Only the thread-exit and eviction paths,
 * which must hand ranges back to a domain that may be gone, look the id up in a global
 * registry of live domains; the map/unmap path never does.
 */
#include "core/iova.h"

#include "core/range.h"
#include "core/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES   6  /* 1, 2, 4, 8, 16, 32 granules */
#define MAG_SIZE  64 /* ranges per magazine */
#define DEPOT_MAX 32 /* full magazines a domain keeps per class */
#define SLOTS     4  /* domains a thread caches at once */

struct mag {
    unsigned n;
    uint64_t v[MAG_SIZE];
};

struct dmahal__iova {
    pthread_mutex_t lock; /* the range and the depot */
    struct dmahal__range r;
    uint64_t granule;
    unsigned shift;
    uint64_t id;
    struct mag *depot[CLASSES][DEPOT_MAX];
    unsigned ndepot[CLASSES];
};

struct slot {
    uint64_t id; /* 0: empty */
    struct dmahal__iova *d;
    struct mag loaded[CLASSES];
};

struct tcache {
    struct slot s[SLOTS];
    unsigned evict; /* round robin */
};

static DMAHAL__TLS struct tcache *tc;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static pthread_key_t tc_key;
static atomic_uint_fast64_t next_id = 1;

/* Live domains, for the paths that return cached ranges to a domain that may be gone. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dmahal__iova **reg;
static size_t nreg, reg_cap;

static void depot_flush_locked(struct dmahal__iova *d);
struct slot;
static struct slot *slot_find(struct dmahal__iova *d);

/* The class of a rounded size, or -1 when it is not cached. */
static int class_of(const struct dmahal__iova *d, uint64_t len, uint64_t *size)
{
    uint64_t g = (len + d->granule - 1) >> d->shift;
    /* The smallest power of two >= g, by its log: one instruction, not a loop. */
    int cls = g > 1 ? 64 - __builtin_clzll(g - 1) : 0;

    if (g == 0)
        g = 1;
    if (cls >= CLASSES) {
        *size = g << d->shift;
        return -1;
    }
    *size = (uint64_t)1 << (cls + (int)d->shift);
    return cls;
}

/* Returns a slot's ranges to its domain; the caller holds the domain's lock. */
static void slot_flush_locked(struct slot *s)
{
    for (int c = 0; c < CLASSES; c++) {
        uint64_t size = (uint64_t)1 << (c + (int)s->d->shift);

        for (unsigned i = 0; i < s->loaded[c].n; i++)
            dmahal__range_add(&s->d->r, s->loaded[c].v[i], size);
        s->loaded[c].n = 0;
    }
}

/* Returns a slot's ranges if its domain still lives, and empties the slot. */
static void slot_release(struct slot *s)
{
    if (!s->id)
        return;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nreg; i++) {
        if (reg[i] == s->d && reg[i]->id == s->id) {
            pthread_mutex_lock(&s->d->lock);
            slot_flush_locked(s);
            pthread_mutex_unlock(&s->d->lock);
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    memset(s, 0, sizeof(*s));
}

static void tc_destroy(void *arg)
{
    struct tcache *t = arg;

    for (int i = 0; i < SLOTS; i++)
        slot_release(&t->s[i]);
    free(t);
    tc = NULL;
}

static void tc_key_init(void)
{
    pthread_key_create(&tc_key, tc_destroy);
}

/* The calling thread's slot for @d if it has one. */
static struct slot *slot_find(struct dmahal__iova *d)
{
    for (int i = 0; tc && i < SLOTS; i++)
        if (tc->s[i].d == d && tc->s[i].id == d->id)
            return &tc->s[i];
    return NULL;
}

/* slot_get's search and claim, out of line: the hit in the first slot is the common case. */
static struct slot *slot_get_slow(struct dmahal__iova *d)
{
    struct tcache *t = tc;
    struct slot *s;

    if (t) {
        for (int i = 1; i < SLOTS; i++)
            if (t->s[i].d == d && t->s[i].id == d->id)
                return &t->s[i];
    } else {
        pthread_once(&tc_once, tc_key_init);
        t = calloc(1, sizeof(*t));
        if (!t)
            return NULL;
        if (pthread_setspecific(tc_key, t)) {
            free(t);
            return NULL;
        }
        tc = t;
    }
    s = NULL;
    for (int i = 0; i < SLOTS && !s; i++)
        if (!t->s[i].id)
            s = &t->s[i];
    if (!s) {
        s = &t->s[t->evict++ % SLOTS];
        slot_release(s);
    }
    s->d = d;
    s->id = d->id;
    return s;
}

/* The calling thread's slot for @d, claiming one if needed; NULL without memory. */
static inline struct slot *slot_get(struct dmahal__iova *d)
{
    struct tcache *t = tc;

    if (__builtin_expect(t && t->s[0].d == d && t->s[0].id == d->id, 1))
        return &t->s[0];
    return slot_get_slow(d);
}

int dmahal__iova_create(uint64_t granule, struct dmahal__iova **out)
{
    struct dmahal__iova *d;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    dmahal__range_init(&d->r);
    d->granule = granule;
    d->shift = (unsigned)__builtin_ctzll(granule);
    d->id = atomic_fetch_add(&next_id, 1);
    pthread_mutex_lock(&reg_lock);
    if (nreg == reg_cap) {
        size_t cap = reg_cap ? reg_cap * 2 : 16;
        struct dmahal__iova **v = realloc(reg, cap * sizeof(*v));

        if (!v) {
            pthread_mutex_unlock(&reg_lock);
            pthread_mutex_destroy(&d->lock);
            free(d);
            return -ENOMEM;
        }
        reg = v;
        reg_cap = cap;
    }
    reg[nreg++] = d;
    pthread_mutex_unlock(&reg_lock);
    *out = d;
    return 0;
}

void dmahal__iova_destroy(struct dmahal__iova *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nreg; i++) {
        if (reg[i] == d) {
            reg[i] = reg[--nreg];
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    /* Other threads' magazines for it go stale and are dropped when next looked at. */
    for (int i = 0; tc && i < SLOTS; i++)
        if (tc->s[i].d == d && tc->s[i].id == d->id)
            memset(&tc->s[i], 0, sizeof(tc->s[i]));
    for (int c = 0; c < CLASSES; c++)
        for (unsigned i = 0; i < d->ndepot[c]; i++)
            free(d->depot[c][i]);
    dmahal__range_fini(&d->r);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

int dmahal__iova_add(struct dmahal__iova *d, uint64_t start, uint64_t len)
{
    int rc;

    pthread_mutex_lock(&d->lock);
    rc = dmahal__range_add(&d->r, start, len);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int dmahal__iova_reserve(struct dmahal__iova *d, uint64_t start, uint64_t len)
{
    uint64_t end = start + len;
    struct slot *s;
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    depot_flush_locked(d);
    s = slot_find(d);
    if (s)
        slot_flush_locked(s);
    /* One free extent at a time: taking one may split or remove it, moving the others. */
    for (size_t i = 0; rc == 0 && i < d->r.n;) {
        uint64_t a = d->r.v[i].start > start ? d->r.v[i].start : start;
        uint64_t b = d->r.v[i].end < end ? d->r.v[i].end : end;

        if (d->r.v[i].start >= end)
            break;
        if (a >= b) {
            i++;
            continue;
        }
        rc = dmahal__range_take(&d->r, a, b - a);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int dmahal__iova_alloc(struct dmahal__iova *d, uint64_t len, uint64_t align, uint64_t boundary,
                       uint64_t max_addr, uint64_t *out)
{
    int rc;

    pthread_mutex_lock(&d->lock);
    rc = dmahal__range_alloc(&d->r, len, align, boundary, max_addr, out);
    if (rc == -ENOMEM) {
        /* Space may be sitting in magazines: the depot's, and the caller's own. */
        depot_flush_locked(d);
        rc = dmahal__range_alloc(&d->r, len, align, boundary, max_addr, out);
    }
    pthread_mutex_unlock(&d->lock);
    if (rc == -ENOMEM && slot_find(d)) {
        pthread_mutex_lock(&d->lock);
        slot_flush_locked(slot_find(d));
        rc = dmahal__range_alloc(&d->r, len, align, boundary, max_addr, out);
        pthread_mutex_unlock(&d->lock);
    }
    return rc;
}

void dmahal__iova_free(struct dmahal__iova *d, uint64_t start, uint64_t len)
{
    pthread_mutex_lock(&d->lock);
    dmahal__range_add(&d->r, start, len);
    pthread_mutex_unlock(&d->lock);
}

uint64_t dmahal__iova_free_bytes(struct dmahal__iova *d)
{
    uint64_t n;

    pthread_mutex_lock(&d->lock);
    n = d->r.free_bytes;
    pthread_mutex_unlock(&d->lock);
    return n;
}

/* Returns every depot magazine to the range; the caller holds the lock. */
static void depot_flush_locked(struct dmahal__iova *d)
{
    for (int c = 0; c < CLASSES; c++) {
        uint64_t size = (uint64_t)1 << (c + (int)d->shift);

        for (unsigned i = 0; i < d->ndepot[c]; i++) {
            for (unsigned k = 0; k < d->depot[c][i]->n; k++)
                dmahal__range_add(&d->r, d->depot[c][i]->v[k], size);
            free(d->depot[c][i]);
        }
        d->ndepot[c] = 0;
    }
}

/* Loads a full magazine from the depot into an empty loaded one; false if none. */
static bool depot_get(struct dmahal__iova *d, int cls, struct mag *m)
{
    struct mag *full = NULL;

    pthread_mutex_lock(&d->lock);
    if (d->ndepot[cls])
        full = d->depot[cls][--d->ndepot[cls]];
    pthread_mutex_unlock(&d->lock);
    if (!full)
        return false;
    *m = *full;
    free(full);
    return true;
}

/* Moves a full loaded magazine to the depot (or, when that is full, to the range). */
static void depot_put(struct dmahal__iova *d, int cls, struct mag *m)
{
    uint64_t size = (uint64_t)1 << (cls + (int)d->shift);
    struct mag *copy = malloc(sizeof(*copy));

    pthread_mutex_lock(&d->lock);
    if (copy && d->ndepot[cls] < DEPOT_MAX) {
        *copy = *m;
        d->depot[cls][d->ndepot[cls]++] = copy;
        copy = NULL;
    } else {
        for (unsigned i = 0; i < m->n; i++)
            dmahal__range_add(&d->r, m->v[i], size);
    }
    pthread_mutex_unlock(&d->lock);
    free(copy);
    m->n = 0;
}

/* alloc_fast past its loaded magazine: the depot, then the range itself. Out of line, so
 * that the common hit saves no registers. */
static __attribute__((noinline)) int alloc_slow(struct dmahal__iova *d, struct slot *s, int cls,
                                                uint64_t size, uint64_t max_addr, uint64_t *out)
{
    int rc;

    if (s) {
        struct mag *m = &s->loaded[cls];

        if (m->n == 0)
            depot_get(d, cls, m);
        if (m->n && m->v[m->n - 1] + size - 1 <= max_addr) {
            *out = m->v[--m->n];
            return 0;
        }
    }
    pthread_mutex_lock(&d->lock);
    rc = dmahal__range_alloc(&d->r, size, d->granule, 0, max_addr, out);
    if (rc == -ENOMEM) {
        /* Space may be sitting in magazines: the depot's first, then the caller's own. */
        depot_flush_locked(d);
        if (!s)
            s = slot_find(d);
        if (s)
            slot_flush_locked(s);
        rc = dmahal__range_alloc(&d->r, size, d->granule, 0, max_addr, out);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int dmahal__iova_alloc_fast(struct dmahal__iova *d, uint64_t len, uint64_t max_addr, uint64_t *out)
{
    uint64_t size;
    int cls = class_of(d, len, &size);
    struct slot *s = cls >= 0 ? slot_get(d) : NULL;

    if (s) {
        struct mag *m = &s->loaded[cls];

        if (m->n && m->v[m->n - 1] + size - 1 <= max_addr) {
            *out = m->v[--m->n];
            return 0;
        }
    }
    return alloc_slow(d, s, cls, size, max_addr, out);
}

void dmahal__iova_free_fast(struct dmahal__iova *d, uint64_t start, uint64_t len)
{
    uint64_t size;
    int cls = class_of(d, len, &size);
    struct slot *s = cls >= 0 ? slot_get(d) : NULL;

    if (!s) {
        dmahal__iova_free(d, start, size);
        return;
    }
    if (s->loaded[cls].n == MAG_SIZE)
        depot_put(d, cls, &s->loaded[cls]);
    s->loaded[cls].v[s->loaded[cls].n++] = start;
}
