/* SPDX-License-Identifier: MIT */
/*
 * hooks.c - the verifier's side of the core's hooks (core/verify_hooks.h): new adapters, platform
 * close, NULL adapters, and every device access on the simulated bus.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the core's hooks ------------------------------------------------------------------- */

void dmahal__verify_adapter_new(struct dmahal_adapter *a)
{
    struct dmahal__verifier *v = atomic_load(&a->dev->p->verifier);
    struct dmahal__vadapter *va;

    pthread_once(&dmahal__verify_blocks_once, dmahal__verify_blocks_init);
    if (!atomic_load(&v->on))
        return;
    va = dmahal__verify_malloc(sizeof(*va));
    if (!va) {
        dmahal__verify_oom(v, "wrapping an adapter");
        return;
    }
    *va = (struct dmahal__vadapter){.v = v, .inner = a->ops, .id = a->id, .adapter = a};
    snprintf(va->dev_name, sizeof(va->dev_name), "%s", a->dev->name);
    a->verify = va;
    a->ops = &dmahal__verify_ops;
}

void dmahal__verify_platform_close(struct dmahal_platform *p)
{
    struct dmahal__verifier *v = atomic_load(&p->verifier);

    if (!v)
        return;
    atomic_store(&p->verifier, NULL);
    /* Every device is closed, so every adapter was put and reported its leaks. */
    while (v->graveyard) {
        struct dmahal__vadapter *va = v->graveyard;

        v->graveyard = va->grave_next;
        free(va->adapter);
        free(va);
    }
    dmahal__verify_stream_fini(v);
    /* Kept buffers went back when their adapters were put; any record left goes with the
     * verifier (its memory went with its adapter). */
    for (size_t i = 0; i < v->nready; i++)
        free(v->ready[i]);
    while (v->spare) {
        struct verify_rec *rec = v->spare;

        v->spare = rec->qnext;
        free(rec);
    }
    free(v->by_va.bucket);
    dmahal__verify_depot_fini(&v->depot);
    pthread_mutex_destroy(&v->rlock);
    free(v);
}

void dmahal__verify_null_adapter(const char *fn)
{
    /* No adapter, no platform: every verifying platform hears of it. */
    pthread_mutex_lock(&dmahal__platforms_lock);
    for (struct dmahal_platform *p = dmahal__platforms; p; p = p->next_platform) {
        struct dmahal__verifier *v = atomic_load(&p->verifier);
        struct verify_report r = {.kind = DMAHAL_REPORT_BAD_ADAPTER};

        if (!v || !atomic_load(&v->on))
            continue;
        snprintf(r.msg, sizeof(r.msg), "%s called with a NULL adapter", fn);
        dmahal__verify_emit(v, &r);
    }
    pthread_mutex_unlock(&dmahal__platforms_lock);
}

/* True if [la, la + len) lies in a buffer of an adapter of @d the verifier does not wrap
 * (one got before it was enabled): such memory is the device's to touch. */
struct cover {
    dmahal_addr_t la;
    size_t len;
    bool hit;
};

static void cover_fn(const struct dmahal_buf *b, void *arg)
{
    struct cover *c = arg;

    if (c->la >= b->la && c->la + c->len <= b->la + b->len)
        c->hit = true;
}

static bool unverified_covers(struct dmahal_device *d, dmahal_addr_t la, size_t len)
{
    struct cover c = {la, len, false};

    pthread_mutex_lock(&d->lock);
    for (struct dmahal_adapter *a = d->adapters; a && !c.hit; a = a->next)
        if (!a->verify)
            dmahal__common_walk(a, cover_fn, &c);
    pthread_mutex_unlock(&d->lock);
    return c.hit;
}

/* Says where [la, la + len) lies relative to @rec, AddressSanitizer-style. */
static void describe_near(const struct verify_rec *rec, dmahal_addr_t la, size_t len, char *buf,
                          size_t size)
{
    dmahal_addr_t start = rec->user.la, end = rec->user.la + rec->user.len;
    char name[160];

    dmahal__verify_rec_name(rec, name, sizeof(name));
    if (la >= end)
        snprintf(buf, size, "%llu byte(s) after the end of %s", (unsigned long long)(la - end),
                 name);
    else if (la + len <= start)
        snprintf(buf, size, "%llu byte(s) before the start of %s", (unsigned long long)(start - la),
                 name);
    else if (la < start)
        snprintf(buf, size, "starts %llu byte(s) before the start of %s",
                 (unsigned long long)(start - la), name);
    else if (la + len <= end) /* only a freed buffer is reported for an access inside it */
        snprintf(buf, size, "offset %llu of %s", (unsigned long long)(la - start), name);
    else
        snprintf(buf, size, "offset %llu, runs %llu byte(s) past the end of %s",
                 (unsigned long long)(la - start), (unsigned long long)(la + len - end), name);
}

static uint64_t distance(const struct verify_rec *rec, dmahal_addr_t la, size_t len)
{
    if (la >= rec->user.la + rec->user.len)
        return la - (rec->user.la + rec->user.len);
    if (la + len <= rec->user.la)
        return rec->user.la - (la + len);
    return 0;
}

/* The rest of dmahal__verify_dev_access, off its fast path: under v->lock, which it drops.
 * @prev is the record holding @la, if any. */
static __attribute__((noinline)) void dev_access_slow(struct dmahal__verifier *v,
                                                      struct dmahal_device *d, dmahal_addr_t la,
                                                      size_t len, bool write,
                                                      struct verify_rec *prev)
{
    struct verify_report r = {.la = la, .len = len};
    struct verify_rec copy, *next, *freed = NULL, *near;
    char where[320];

    if (prev && prev->state == VERIFY_LIVE && la + len <= prev->user.la + prev->user.len) {
        /* A cached buffer on a non-coherent device: what the CPU wrote since the last
         * flush is not what the device reads. */
        if (prev->track_flush && !write && prev->flushed &&
            dmahal__verify_hash(prev->user.va, prev->user.len) != prev->hash) {
            copy = *prev;
            prev->flushed = false; /* once, until the next sync */
            r.kind = DMAHAL_REPORT_NOT_FLUSHED;
            r.rec = &copy;
            dmahal__verify_rec_name(&copy, where, sizeof(where));
            snprintf(r.msg, sizeof(r.msg),
                     "device %s reads %zu byte(s) at la %#llx from %s, which the CPU wrote "
                     "after its last dmahal_common_sync(DMAHAL_TO_DEVICE)",
                     d->name, len, (unsigned long long)la, where);
        } else if (prev->track_flush && write) {
            size_t first = (size_t)(la - prev->user.la);

            prev->flushed = false; /* the device's data: unknown until the next sync */
            prev->pending |= dmahal__verify_chunks(prev->user.len, first, first + len - 1);
        }
        dmahal__lock_drop(&v->lock);
        if (r.kind)
            dmahal__verify_emit(v, &r);
        return;
    }
    if (dmahal__verify_stream_dev_access(v, d, la, len, write, &r)) {
        if (r.kind)
            dmahal__verify_emit(v, &r); /* under the lock: the report names a live mapping */
        dmahal__lock_drop(&v->lock);
        return;
    }
    dmahal__verify_la_neighbours(v, d, la, &prev, &next);
    if (prev && prev->state == VERIFY_FREED && la < prev->user.la + prev->user.len)
        freed = prev;
    else if (next && next->state == VERIFY_FREED && next->user.la < la + len)
        freed = next;
    if (freed && write) {
        /* Remembered for the quarantine's check: the middle of a large buffer holds no
         * pattern to show it. */
        dmahal_addr_t from = la > freed->user.la ? la : freed->user.la;
        dmahal_addr_t end = freed->user.la + freed->user.len;
        size_t first = (size_t)(from - freed->user.la);
        size_t last = (size_t)((la + len < end ? la + len : end) - freed->user.la) - 1;

        if (!freed->dev_wrote || first < freed->dev_first)
            freed->dev_first = first;
        if (!freed->dev_wrote || last > freed->dev_last)
            freed->dev_last = last;
        freed->dev_wrote = true;
    }
    near = freed;
    if (!near)
        near = !next || (prev && distance(prev, la, len) <= distance(next, la, len)) ? prev : next;
    if (near) {
        copy = *near;
        describe_near(&copy, la, len, where, sizeof(where));
        r.rec = &copy;
        r.dedup = near->seq << 1;
    } else {
        snprintf(where, sizeof(where), "no verified buffer is live on this device");
        r.dedup = (la >> 12) << 1 | ((uint64_t)1 << 63);
    }
    r.dedup_dev = d;
    dmahal__lock_drop(&v->lock);

    if (freed) {
        r.kind = DMAHAL_REPORT_DEV_USE_AFTER_FREE;
        snprintf(r.msg, sizeof(r.msg), "device %s %s %zu byte(s) at la %#llx in a freed buffer: %s",
                 d->name, write ? "writes" : "reads", len, (unsigned long long)la, where);
    } else {
        if (unverified_covers(d, la, len))
            return;
        r.kind = DMAHAL_REPORT_DEV_OUT_OF_BOUNDS;
        snprintf(r.msg, sizeof(r.msg),
                 "device %s %s %zu byte(s) at la %#llx outside every live "
                 "buffer: %s",
                 d->name, write ? "writes" : "reads", len, (unsigned long long)la, where);
    }
    dmahal__verify_add_activity(d, &r);
    dmahal__verify_emit(v, &r);
}

void dmahal__verify_add_activity(struct dmahal_device *d, struct verify_report *r)
{
    size_t used = strlen(r->msg);
    char what[256];

    if (!d->p->ops->dev_activity || !d->p->ops->dev_activity(d, what, sizeof(what)))
        return;
    snprintf(r->msg + used, sizeof(r->msg) - used, "; the device was %s", what);
}

void dmahal__verify_dev_consumed(struct dmahal__verifier *v, struct dmahal_device *d,
                                 dmahal_addr_t la, size_t len)
{
    struct verify_report r = {.la = la, .len = len};
    struct verify_rec *rec, copy;
    size_t first, last;
    char where[320];

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return;
    dmahal__lock_take(&v->lock);
    rec = dmahal__verify_la_find(v, d, la);
    if (!rec || rec->state != VERIFY_LIVE || !rec->track_flush || !rec->pending) {
        dmahal__lock_drop(&v->lock);
        return;
    }
    /* The part of the range inside the buffer, against what the device wrote unsynced. */
    first = (size_t)(la - rec->user.la);
    last = len - 1 > rec->user.len - 1 - first ? rec->user.len - 1 : first + len - 1;
    if (!(rec->pending & dmahal__verify_chunks(rec->user.len, first, last))) {
        dmahal__lock_drop(&v->lock);
        return;
    }
    copy = *rec;
    r.rec = &copy;
    r.kind = DMAHAL_REPORT_NOT_INVALIDATED;
    r.dedup = rec->seq << 1;
    r.dedup_dev = d;
    dmahal__lock_drop(&v->lock);
    dmahal__verify_rec_name(&copy, where, sizeof(where));
    snprintf(r.msg, sizeof(r.msg),
             "device %s saw the driver take %zu byte(s) at la %#llx (offsets %zu..%zu of %s), "
             "which the device wrote after the last dmahal_common_sync(DMAHAL_FROM_DEVICE) of "
             "them: the CPU read what its cache held",
             d->name, len, (unsigned long long)la, first, last, where);
    dmahal__verify_emit(v, &r);
}

void dmahal__verify_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                               dmahal_addr_t la, size_t len, bool write)
{
    struct verify_rec *rec;

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return;
    dmahal__lock_take(&v->lock);
    rec = dmahal__verify_la_find(v, d, la);
    if (rec && rec->state == VERIFY_LIVE && la + len <= rec->user.la + rec->user.len &&
        !rec->track_flush) {
        dmahal__lock_drop(&v->lock); /* inside a live buffer: the common case */
        return;
    }
    dev_access_slow(v, d, la, len, write, rec);
}
