/* SPDX-License-Identifier: MIT */
/*
 * index.c - the verifier's indexes of live buffers: by CPU address, and by device and logical
 * address (see verifier.h).
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the indexes ------------------------------------------------------------------------- */

static size_t va_slot(const struct verify_vahash *h, const void *va)
{
    uint64_t k = dmahal__hash_ptr(va);

    return (size_t)(k >> 32) & (h->cap - 1);
}

/* The record (live or quarantined) whose buffer starts at @va, or NULL. */
struct verify_rec *dmahal__verify_va_find(const struct dmahal__verifier *v, const void *va)
{
    if (!v->by_va.cap)
        return NULL;
    for (struct verify_rec *r = v->by_va.bucket[va_slot(&v->by_va, va)]; r; r = r->hnext)
        if (r->user.va == va)
            return r;
    return NULL;
}

static size_t page_slot(const struct verify_vahash *h, const struct dmahal_device *d,
                        dmahal_addr_t la)
{
    uint64_t k =
        ((uint64_t)(la >> d->p->page_shift) ^ (uint64_t)(uintptr_t)d) * 0x9e3779b97f4a7c15ull;

    return (size_t)(k >> 32) & (h->cap - 1);
}

/* Hash chains are doubly linked (a pointer to whatever points to the record), so that a
 * record leaves in O(1) however many share its bucket (a page holds many small buffers). */
static void va_chain_add(struct verify_rec **head, struct verify_rec *r)
{
    r->hnext = *head;
    if (*head)
        (*head)->hpprev = &r->hnext;
    *head = r;
    r->hpprev = head;
}

static void page_chain_add(struct verify_rec **head, struct verify_rec *r)
{
    r->lnext = *head;
    if (*head)
        (*head)->lpprev = &r->lnext;
    *head = r;
    r->lpprev = head;
}

/* Makes room for one more record, so that recording a buffer once allocated cannot fail. */
int dmahal__verify_va_reserve(struct verify_vahash *h)
{
    struct verify_vahash g;

    if (h->n < h->cap)
        return 0;
    g.cap = h->cap ? h->cap * 2 : 256;
    g.n = h->n;
    g.bucket = dmahal__verify_malloc(2 * g.cap * sizeof(*g.bucket));
    if (!g.bucket)
        return -ENOMEM;
    memset(g.bucket, 0, 2 * g.cap * sizeof(*g.bucket));
    g.lbucket = g.bucket + g.cap;
    for (size_t i = 0; i < h->cap; i++) {
        while (h->bucket[i]) {
            struct verify_rec *r = h->bucket[i];
            size_t at = va_slot(&g, r->user.va);

            h->bucket[i] = r->hnext;
            va_chain_add(&g.bucket[at], r);
        }
        while (h->lbucket[i]) {
            struct verify_rec *r = h->lbucket[i];
            size_t at = page_slot(&g, r->dev, r->user.la);

            h->lbucket[i] = r->lnext;
            page_chain_add(&g.lbucket[at], r);
        }
    }
    free(h->bucket);
    *h = g;
    return 0;
}

/* Logical addresses are per device (each has its own IO page table): the key is both. */
static bool la_key_le(const struct verify_rec *r, const struct dmahal_device *d, dmahal_addr_t la)
{
    if (r->dev != d)
        return (uintptr_t)r->dev < (uintptr_t)d;
    return r->user.la <= la;
}

static bool la_before(const struct verify_rec *x, const struct verify_rec *y)
{
    return !la_key_le(y, x->dev, x->user.la);
}

/*
 * The (device, logical address) index is a treap: a search tree kept balanced by random
 * priorities, O(log n) to insert, delete and find the neighbours of an address, with its links
 * in the records (no allocation). Equal keys, should there be any, go right.
 */
static struct verify_rec *treap_merge(struct verify_rec *l, struct verify_rec *r)
{
    if (!l)
        return r;
    if (!r)
        return l;
    if (l->prio > r->prio) {
        l->right = treap_merge(l->right, r);
        return l;
    }
    r->left = treap_merge(l, r->left);
    return r;
}

/* Splits @t into the records before @x's key (*l) and the rest (*r). */
static void treap_split(struct verify_rec *t, const struct verify_rec *x, struct verify_rec **l,
                        struct verify_rec **r)
{
    if (!t) {
        *l = *r = NULL;
    } else if (la_before(t, x)) {
        treap_split(t->right, x, &t->right, r);
        *l = t;
    } else {
        treap_split(t->left, x, l, &t->left);
        *r = t;
    }
}

static struct verify_rec *treap_insert(struct verify_rec *t, struct verify_rec *x)
{
    if (!t)
        return x;
    if (x->prio > t->prio) {
        treap_split(t, x, &x->left, &x->right);
        return x;
    }
    if (la_before(x, t))
        t->left = treap_insert(t->left, x);
    else
        t->right = treap_insert(t->right, x);
    return t;
}

static struct verify_rec *treap_delete(struct verify_rec *t, struct verify_rec *x)
{
    if (!t)
        return NULL;
    if (t == x)
        return treap_merge(t->left, t->right);
    if (la_before(x, t))
        t->left = treap_delete(t->left, x);
    else
        t->right = treap_delete(t->right, x);
    return t;
}

/* The record whose buffer holds (@d, @la), or NULL: O(1) for a buffer within one page,
 * O(log n) for a larger one. */
struct verify_rec *dmahal__verify_la_find(const struct dmahal__verifier *v,
                                          const struct dmahal_device *d, dmahal_addr_t la)
{
    struct verify_rec *prev = NULL;

    if (!v->by_va.cap)
        return NULL;
    for (struct verify_rec *r = v->by_va.lbucket[page_slot(&v->by_va, d, la)]; r; r = r->lnext)
        if (r->dev == d && la >= r->user.la && la - r->user.la < r->user.len)
            return r;
    for (struct verify_rec *t = v->by_la; t;) {
        if (la_key_le(t, d, la)) {
            prev = t;
            t = t->right;
        } else
            t = t->left;
    }
    if (prev && prev->dev == d && la - prev->user.la < prev->user.len)
        return prev;
    return NULL;
}

/* The records of @d just at or below, and just above, @la, or NULL: a walk over them all, for
 * the error path. */
void dmahal__verify_la_neighbours(const struct dmahal__verifier *v, const struct dmahal_device *d,
                                  dmahal_addr_t la, struct verify_rec **prev,
                                  struct verify_rec **next)
{
    *prev = *next = NULL;
    for (struct verify_rec *r = v->recs; r; r = r->next) {
        if (r->dev != d)
            continue;
        if (r->user.la <= la) {
            if (!*prev || r->user.la > (*prev)->user.la)
                *prev = r;
        } else if (!*next || r->user.la < (*next)->user.la) {
            *next = r;
        }
    }
}

/* Adds a record to the indexes; the hash tables have room (dmahal__verify_va_reserve). */
void dmahal__verify_rec_index(struct dmahal__verifier *v, struct verify_rec *rec)
{
    size_t at = va_slot(&v->by_va, rec->user.va);
    unsigned shift = rec->dev->p->page_shift;

    va_chain_add(&v->by_va.bucket[at], rec);
    v->by_va.n++;
    rec->big = rec->user.la >> shift != (rec->user.la + rec->user.len - 1) >> shift;
    if (rec->big) {
        uint32_t x = v->prio_seed;

        x ^= x << 13; /* xorshift32: priorities need only be unpredictable by the keys */
        x ^= x >> 17;
        x ^= x << 5;
        v->prio_seed = x;
        rec->prio = x;
        rec->left = rec->right = NULL;
        v->by_la = treap_insert(v->by_la, rec);
    } else {
        page_chain_add(&v->by_va.lbucket[page_slot(&v->by_va, rec->dev, rec->user.la)], rec);
    }
    rec->next = NULL;
    rec->prev = v->recs_tail;
    if (v->recs_tail)
        v->recs_tail->next = rec;
    else
        v->recs = rec;
    v->recs_tail = rec;
}

void dmahal__verify_rec_unindex(struct dmahal__verifier *v, struct verify_rec *rec)
{
    *rec->hpprev = rec->hnext;
    if (rec->hnext)
        rec->hnext->hpprev = rec->hpprev;
    v->by_va.n--;
    if (rec->big) {
        v->by_la = treap_delete(v->by_la, rec);
    } else {
        *rec->lpprev = rec->lnext;
        if (rec->lnext)
            rec->lnext->lpprev = rec->lpprev;
    }
    if (rec->prev)
        rec->prev->next = rec->next;
    else
        v->recs = rec->next;
    if (rec->next)
        rec->next->prev = rec->prev;
    else
        v->recs_tail = rec->prev;
}
