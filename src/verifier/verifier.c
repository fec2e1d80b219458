/*
 * verifier.c - the DMA verifier's checks: wrapped adapter operations, guard zones,
 * quarantine, put adapters, and the device side of the simulated bus. See verifier.h.
 */
#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the indexes ------------------------------------------------------------------------- */

/* First position whose record's CPU address is above @va. */
static size_t upper_va(const struct verify_index *ix, const void *va)
{
    size_t lo = 0, hi = ix->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((uintptr_t)ix->v[mid]->user.va <= (uintptr_t)va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Logical addresses are per device (each has its own IO page table): the key is both. */
static bool la_key_le(const struct verify_rec *r, const struct dmahal_device *d, dmahal_addr_t la)
{
    if (r->dev != d)
        return (uintptr_t)r->dev < (uintptr_t)d;
    return r->user.la <= la;
}

/* First position whose record's (device, logical address) is above (@d, @la). */
static size_t upper_la(const struct verify_index *ix, const struct dmahal_device *d,
                       dmahal_addr_t la)
{
    size_t lo = 0, hi = ix->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (la_key_le(ix->v[mid], d, la))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int index_reserve(struct verify_index *ix, size_t extra)
{
    size_t cap;
    struct verify_rec **v;

    if (ix->n + extra <= ix->cap)
        return 0;
    cap = ix->cap ? ix->cap * 2 : 64;
    while (cap < ix->n + extra)
        cap *= 2;
    v = verify_realloc(ix->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    ix->v = v;
    ix->cap = cap;
    return 0;
}

static void index_insert(struct verify_index *ix, size_t at, struct verify_rec *rec)
{
    memmove(&ix->v[at + 1], &ix->v[at], (ix->n - at) * sizeof(ix->v[0]));
    ix->v[at] = rec;
    ix->n++;
}

static void index_delete(struct verify_index *ix, size_t at)
{
    memmove(&ix->v[at], &ix->v[at + 1], (ix->n - at - 1) * sizeof(ix->v[0]));
    ix->n--;
}

static void rec_unindex(struct dmahal__verifier *v, struct verify_rec *rec)
{
    index_delete(&v->by_va, upper_va(&v->by_va, rec->user.va) - 1);
    index_delete(&v->by_la, upper_la(&v->by_la, rec->dev, rec->user.la) - 1);
}

/* ---- guard zones ------------------------------------------------------------------------- */

/*
 * Where a buffer of @len sits inside the larger one the verifier asks for, so that the
 * driver still gets everything the contract promises:
 *  - a buffer of a page or more: page-aligned and aligned to the adapter's alignment, so
 *    the head guard is one such alignment unit, and the tail guard is the rest of its last
 *    page plus at least 16 bytes (a whole page when the length is a page multiple);
 *  - a smaller one: aligned to its size rounded up to a power of two (A, at least 16 and the
 *    adapter's alignment) and within one page: the verifier asks for 3A, which the
 *    allocator aligns to 4A (or a page), and puts the buffer at offset A.
 * The wrapped allocator keeps the whole of it below 2^addr_bits and, when it fits in one,
 * inside one boundary window; when guards would not fit in a boundary window the buffer
 * goes without (head 0, and the caller asks for @len alone).
 */
static void layout(const struct dmahal_adapter *a, size_t len, size_t *under_len, size_t *head)
{
    size_t page = a->dev->p->page_size;
    size_t align = a->c.alignment;
    size_t unit;

    if (len >= page || align >= page) {
        unit = align > page ? align : page;
        *head = unit;
        *under_len = unit + DMAHAL__ALIGN_UP(len + 16, page);
    } else {
        size_t need = len > align ? len : align;

        unit = 16;
        while (unit < need)
            unit *= 2;
        *head = unit;
        *under_len = 3 * unit;
    }
    if ((a->c.boundary && *under_len > a->c.boundary) || *under_len < len) {
        *head = 0;
        *under_len = len;
    }
}

/* A block of each pattern, so that intact memory is compared at memcmp's speed and only a
 * damaged block is looked at byte by byte. */
#define PATTERN_BLOCK 4096
static unsigned char guard_block[PATTERN_BLOCK], freed_block[PATTERN_BLOCK];
static pthread_once_t blocks_once = PTHREAD_ONCE_INIT;

static void blocks_init(void)
{
    memset(guard_block, VERIFY_GUARD_BYTE, sizeof(guard_block));
    memset(freed_block, VERIFY_FREED_BYTE, sizeof(freed_block));
}

static bool intact(const unsigned char *p, size_t n, unsigned char want)
{
    const unsigned char *block = want == VERIFY_GUARD_BYTE ? guard_block : freed_block;

    for (size_t off = 0; off < n; off += PATTERN_BLOCK) {
        size_t k = n - off < PATTERN_BLOCK ? n - off : PATTERN_BLOCK;

        if (memcmp(p + off, block, k) != 0)
            return false;
    }
    return true;
}

/* Finds the changed bytes in [p, p + n): false if none, else the first and last. */
static bool find_changed(const unsigned char *p, size_t n, unsigned char want, size_t *first,
                         size_t *last)
{
    size_t i = 0, j = n;

    if (intact(p, n, want))
        return false;
    while (p[i] == want)
        i++;
    while (p[j - 1] == want)
        j--;
    *first = i;
    *last = j - 1;
    return true;
}

/* Checks both guard zones of a live buffer: reports damage, repairs it, counts reports. */
static int check_guards(struct dmahal__verifier *v, struct verify_rec *rec, const char *when)
{
    unsigned char *start = rec->user.va;
    char name[160];
    size_t first, last;
    int n = 0;

    if (rec->head && find_changed(start - rec->head, rec->head, VERIFY_GUARD_BYTE, &first, &last)) {
        struct verify_report r = {.kind = DMAHAL_REPORT_UNDERRUN, .rec = rec};
        size_t from = rec->head - first, to = rec->head - last; /* bytes before the start */

        verify_rec_name(rec, name, sizeof(name));
        r.la = rec->user.la - from;
        r.len = from - to + 1;
        snprintf(r.msg, sizeof(r.msg),
                 "underrun found %s: %zu byte(s) before the start changed (offsets -%zu..-%zu) "
                 "of %s",
                 when, r.len, from, to, name);
        memset(start - rec->head, VERIFY_GUARD_BYTE, rec->head);
        verify_emit(v, &r);
        n++;
    }
    if (rec->tail &&
        find_changed(start + rec->user.len, rec->tail, VERIFY_GUARD_BYTE, &first, &last)) {
        struct verify_report r = {.kind = DMAHAL_REPORT_OVERRUN, .rec = rec};

        verify_rec_name(rec, name, sizeof(name));
        r.la = rec->user.la + rec->user.len + first;
        r.len = last - first + 1;
        snprintf(r.msg, sizeof(r.msg),
                 "overrun found %s: %zu byte(s) past the end changed (offsets %zu..%zu, "
                 "%zu..%zu byte(s) past the end) of %s",
                 when, r.len, rec->user.len + first, rec->user.len + last, first + 1, last + 1,
                 name);
        memset(start + rec->user.len, VERIFY_GUARD_BYTE, rec->tail);
        verify_emit(v, &r);
        n++;
    }
    return n;
}

/* Checks that nothing wrote into a quarantined buffer since it was freed. */
static int check_freed(struct dmahal__verifier *v, struct verify_rec *rec, const char *when)
{
    struct verify_report r = {.kind = DMAHAL_REPORT_WRITE_AFTER_FREE, .rec = rec};
    size_t first, last;
    char name[160];

    if (!find_changed(rec->user.va, rec->user.len, VERIFY_FREED_BYTE, &first, &last))
        return 0;
    verify_rec_name(rec, name, sizeof(name));
    r.la = rec->user.la + first;
    r.len = last - first + 1;
    snprintf(r.msg, sizeof(r.msg),
             "write after free found %s: offsets %zu..%zu of %s changed after it was freed", when,
             first, last, name);
    memset(rec->user.va, VERIFY_FREED_BYTE, rec->user.len);
    verify_emit(v, &r);
    return 1;
}

/* ---- quarantine ------------------------------------------------------------------------- */

/* Keeps a few records for the next allocations: malloc is a good part of the cost. */
static void rec_recycle(struct dmahal__verifier *v, struct verify_rec *rec)
{
    if (v->nspare < VERIFY_SPARE_RECS) {
        rec->qnext = v->spare;
        v->spare = rec;
        v->nspare++;
    } else
        free(rec);
}

static void rec_release(struct dmahal__verifier *v, struct verify_rec *rec)
{
    rec_unindex(v, rec);
    rec->va_owner->inner->common_free(rec->a, &rec->under);
    rec_recycle(v, rec);
}

static void quarantine_push(struct dmahal__verifier *v, struct verify_rec *rec)
{
    rec->qnext = NULL;
    if (v->q_tail)
        v->q_tail->qnext = rec;
    else
        v->q_head = rec;
    v->q_tail = rec;
    v->q_n++;
    v->q_bytes += rec->under.len;
    /* Late DMA into the oldest is no longer caught once its memory goes back. */
    while (v->q_n > VERIFY_QUARANTINE || (v->q_bytes > VERIFY_QUARANTINE_BYTES && v->q_n > 1)) {
        struct verify_rec *old = v->q_head;

        v->q_head = old->qnext;
        if (!v->q_head)
            v->q_tail = NULL;
        v->q_n--;
        v->q_bytes -= old->under.len;
        check_freed(v, old, "when it left the quarantine");
        rec_release(v, old);
    }
}

/* ---- the wrapped operations --------------------------------------------------------------- */

static int alloc_under(struct dmahal_adapter *a, struct verify_rec *rec, size_t len, unsigned flags)
{
    const struct dmahal_dma_ops *inner = a->verify->inner;
    size_t under_len, head;
    int rc;

    layout(a, len, &under_len, &head);
    rc = inner->common_alloc(a, under_len, flags, &rec->under);
    if ((rc == -ENOMEM || rc == -E2BIG) && head) {
        /* Guards must not make a call fail that would succeed without them. */
        head = 0;
        under_len = len;
        rc = inner->common_alloc(a, len, flags, &rec->under);
    }
    if (rc)
        return rc;
    rec->user = (struct dmahal_buf){(char *)rec->under.va + head, rec->under.la + head, len};
    rec->head = head < VERIFY_GUARD_MAX ? head : VERIFY_GUARD_MAX;
    rec->tail = under_len - head - len;
    if (rec->tail > VERIFY_GUARD_MAX)
        rec->tail = VERIFY_GUARD_MAX;
    memset((char *)rec->user.va - rec->head, VERIFY_GUARD_BYTE, rec->head);
    memset((char *)rec->user.va + len, VERIFY_GUARD_BYTE, rec->tail);
    return 0;
}

static int verify_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                               struct dmahal_buf *out)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    int rc;

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return va->inner->common_alloc(a, len, flags, out);
    /* Index room is reserved first, so that recording a buffer already allocated cannot fail. */
    pthread_mutex_lock(&v->lock);
    rec = v->spare;
    if (rec) {
        v->spare = rec->qnext;
        v->nspare--;
    }
    rc = index_reserve(&v->by_va, v->reserved + 1);
    if (rc == 0)
        rc = index_reserve(&v->by_la, v->reserved + 1);
    if (rc == 0)
        v->reserved++;
    pthread_mutex_unlock(&v->lock);
    if (rc == 0 && !rec) {
        rec = verify_malloc(sizeof(*rec));
        if (!rec) {
            pthread_mutex_lock(&v->lock);
            v->reserved--;
            pthread_mutex_unlock(&v->lock);
        }
    }
    if (rc || !rec)
        goto err_rec;
    memset(rec, 0, sizeof(*rec));
    rec->a = a;
    rec->dev = a->dev;
    rec->va_owner = va;
    rec->track_flush = (flags & DMAHAL_CACHED) && !a->c.coherent;
    rc = alloc_under(a, rec, len, flags);
    if (rc) {
        pthread_mutex_lock(&v->lock);
        v->reserved--;
        pthread_mutex_unlock(&v->lock);
        free(rec);
        return rc;
    }
    verify_bt_capture(v, &rec->alloc_bt);
    if (rec->track_flush) {
        rec->hash = verify_hash(rec->user.va, len); /* zeroed, and seen so by the device */
        rec->flushed = true;
    }
    pthread_mutex_lock(&v->lock);
    v->reserved--;
    rec->seq = ++v->allocs;
    index_insert(&v->by_va, upper_va(&v->by_va, rec->user.va), rec);
    index_insert(&v->by_la, upper_la(&v->by_la, rec->dev, rec->user.la), rec);
    va->live++;
    pthread_mutex_unlock(&v->lock);
    *out = rec->user;
    return 0;

err_rec:
    free(rec);
    verify_oom(v, "recording a common buffer");
    return va->inner->common_alloc(a, len, flags, out);
}

/* The record whose buffer starts at, or else contains, or else is nearest below @p va. */
static struct verify_rec *rec_at_or_below(struct dmahal__verifier *v, const void *va)
{
    size_t i = upper_va(&v->by_va, va);

    return i ? v->by_va.v[i - 1] : NULL;
}

/* Explains a free that matches no live buffer; returns the report's kind. */
static void explain_bad_free(struct dmahal__verifier *v, struct dmahal_adapter *a,
                             const struct dmahal_buf *buf, struct verify_rec *rec,
                             struct verify_report *r)
{
    char name[160];

    r->la = buf->la;
    r->len = buf->len;
    if (rec)
        verify_rec_name(rec, name, sizeof(name));
    if (rec && rec->user.va == buf->va && rec->state == VERIFY_FREED) {
        r->kind = DMAHAL_REPORT_DOUBLE_FREE;
        snprintf(r->msg, sizeof(r->msg), "double free of %s (freed %llu frees ago)", name,
                 (unsigned long long)(v->frees - rec->free_seq));
    } else if (rec && rec->user.va == buf->va && rec->a != a) {
        r->kind = DMAHAL_REPORT_FREE_WRONG_ADAPTER;
        snprintf(r->msg, sizeof(r->msg), "free through adapter #%llu (device %s) of %s",
                 (unsigned long long)a->id, a->verify->dev_name, name);
    } else if (rec && rec->user.va == buf->va && rec->user.la != buf->la) {
        r->kind = DMAHAL_REPORT_FREE_WRONG_LA;
        snprintf(r->msg, sizeof(r->msg), "free with logical address %#llx of %s",
                 (unsigned long long)buf->la, name);
    } else if (rec && rec->user.va == buf->va) {
        r->kind = DMAHAL_REPORT_FREE_WRONG_LEN;
        snprintf(r->msg, sizeof(r->msg), "free with length %zu of %s", buf->len, name);
    } else if (rec && (char *)buf->va < (char *)rec->user.va + rec->user.len) {
        r->kind = DMAHAL_REPORT_FREE_UNKNOWN;
        snprintf(r->msg, sizeof(r->msg), "free of va %p, %zu bytes inside %s%s", buf->va,
                 (size_t)((char *)buf->va - (char *)rec->user.va), name,
                 rec->state == VERIFY_FREED ? " (freed)" : "");
    } else {
        r->kind = DMAHAL_REPORT_FREE_UNKNOWN;
        r->rec = NULL;
        snprintf(r->msg, sizeof(r->msg),
                 "free of va %p la %#llx len %zu through adapter #%llu (device %s): no buffer "
                 "was allocated there",
                 buf->va, (unsigned long long)buf->la, buf->len, (unsigned long long)a->id,
                 a->verify->dev_name);
    }
}

static int verify_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    struct verify_report r = {0};
    bool on = atomic_load_explicit(&v->on, memory_order_relaxed);

    pthread_mutex_lock(&v->lock);
    rec = rec_at_or_below(v, buf->va);
    if (rec && rec->user.va == buf->va && rec->state == VERIFY_LIVE && rec->a == a &&
        rec->user.la == buf->la && rec->user.len == buf->len) {
        va->live--;
        v->frees++;
        if (!on) {
            rec_release(v, rec);
            pthread_mutex_unlock(&v->lock);
            return 0;
        }
        check_guards(v, rec, "at free");
        verify_stream_check_free(v, rec);
        rec->state = VERIFY_FREED;
        rec->free_seq = v->frees;
        verify_bt_capture(v, &rec->free_bt);
        memset(rec->user.va, VERIFY_FREED_BYTE, rec->user.len);
        quarantine_push(v, rec);
        pthread_mutex_unlock(&v->lock);
        return 0;
    }
    if (!on) {
        /* Allocated after the verifier turned off: the wrapped allocator knows it. */
        pthread_mutex_unlock(&v->lock);
        return va->inner->common_free(a, buf);
    }
    r.rec = rec;
    explain_bad_free(v, a, buf, rec, &r);
    verify_emit(v, &r);
    pthread_mutex_unlock(&v->lock);
    /* A buffer it never saw is the wrapped allocator's to refuse; a known one is not freed. */
    return r.rec ? -EINVAL : va->inner->common_free(a, buf);
}

static int verify_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                              size_t len, enum dmahal_dir dir)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    struct verify_report r = {.la = b->la + off, .len = len};
    struct dmahal_buf under;
    char name[160];

    pthread_mutex_lock(&v->lock);
    rec = rec_at_or_below(v, b->va);
    if (rec && rec->user.va == b->va && rec->state == VERIFY_LIVE && rec->a == a &&
        rec->user.la == b->la && rec->user.len == b->len) {
        size_t head = (size_t)((char *)rec->user.va - (char *)rec->under.va);

        if (rec->track_flush && (dir & DMAHAL_TO_DEVICE)) {
            rec->hash = verify_hash(rec->user.va, rec->user.len);
            rec->flushed = true;
        }
        under = rec->under;
        pthread_mutex_unlock(&v->lock);
        return va->inner->common_sync(a, &under, head + off, len, dir);
    }
    if (!atomic_load_explicit(&v->on, memory_order_relaxed) && !(rec && rec->user.va == b->va)) {
        pthread_mutex_unlock(&v->lock);
        return va->inner->common_sync(a, b, off, len, dir);
    }
    if (rec && rec->user.va == b->va && rec->state == VERIFY_LIVE && rec->a == a &&
        rec->user.la == b->la && off + len > rec->user.len) {
        /* The buffer passed claims another length, and the range lies outside the real one. */
        verify_rec_name(rec, name, sizeof(name));
        r.kind = DMAHAL_REPORT_SYNC_OUT_OF_RANGE;
        r.rec = rec;
        snprintf(r.msg, sizeof(r.msg),
                 "dmahal_common_sync of offsets %zu..%zu, outside %s (the buffer passed says "
                 "len %zu)",
                 off, off + len - 1, name, b->len);
        verify_emit(v, &r);
        pthread_mutex_unlock(&v->lock);
        return -ENOENT;
    }
    r.rec = rec && rec->user.va == b->va ? rec : NULL;
    if (r.rec && rec->a != a) {
        verify_rec_name(rec, name, sizeof(name));
        r.kind = DMAHAL_REPORT_WRONG_ADAPTER;
        snprintf(r.msg, sizeof(r.msg), "dmahal_common_sync through adapter #%llu of %s",
                 (unsigned long long)a->id, name);
    } else if (r.rec) {
        verify_rec_name(rec, name, sizeof(name));
        r.kind = DMAHAL_REPORT_SYNC_NOT_MAPPED;
        snprintf(r.msg, sizeof(r.msg), "dmahal_common_sync of %s, %s", name,
                 rec->state == VERIFY_FREED ? "which was freed"
                 : rec->user.la != b->la    ? "with the wrong logical address"
                                            : "with the wrong length");
    } else {
        r.kind = DMAHAL_REPORT_SYNC_NOT_MAPPED;
        snprintf(r.msg, sizeof(r.msg),
                 "dmahal_common_sync of va %p on adapter #%llu: not a live common buffer", b->va,
                 (unsigned long long)a->id);
    }
    verify_emit(v, &r);
    pthread_mutex_unlock(&v->lock);
    return -ENOENT;
}

/* ---- put adapters ---------------------------------------------------------------------- */

static void report_dead(struct dmahal_adapter *a, const char *what)
{
    struct dmahal__vadapter *va = a->verify;
    struct verify_report r = {.kind = DMAHAL_REPORT_BAD_ADAPTER,
                              .extra_bt = &va->put_bt,
                              .extra_what = "the adapter was put by"};

    snprintf(r.msg, sizeof(r.msg), "%s on adapter #%llu (device %s), which was put already", what,
             (unsigned long long)va->id, va->dev_name);
    verify_emit(va->v, &r);
}

static int dead_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                             struct dmahal_buf *out)
{
    (void)len;
    (void)flags;
    (void)out;
    report_dead(a, "dmahal_common_alloc");
    return -EINVAL;
}

static int dead_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    (void)buf;
    report_dead(a, "dmahal_common_free");
    return -EINVAL;
}

static void dead_put(struct dmahal_adapter *a)
{
    report_dead(a, "dmahal_adapter_put");
}

static int dead_map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                    enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out)
{
    (void)iov, (void)iovcnt, (void)dir, (void)flags, (void)out;
    report_dead(a, "dmahal_map");
    return -EINVAL;
}

static int dead_map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                          enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx)
{
    (void)iov, (void)iovcnt, (void)dir, (void)flags, (void)fn, (void)ctx;
    report_dead(a, "dmahal_map_async");
    return -EINVAL;
}

static int dead_unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    (void)sgl;
    report_dead(a, "dmahal_unmap");
    return -EINVAL;
}

static int dead_sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    (void)sgl;
    report_dead(a, "dmahal_sync_for_device");
    return -EINVAL;
}

static int dead_sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    (void)sgl;
    report_dead(a, "dmahal_sync_for_cpu");
    return -EINVAL;
}

static int dead_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                            size_t len, enum dmahal_dir dir)
{
    (void)b, (void)off, (void)len, (void)dir;
    report_dead(a, "dmahal_common_sync");
    return -EINVAL;
}

static const struct dmahal_dma_ops dead_ops = {
    .common_alloc = dead_common_alloc,
    .common_free = dead_common_free,
    .put = dead_put,
    .map = dead_map,
    .map_async = dead_map_async,
    .unmap = dead_unmap,
    .sync_for_device = dead_sync_for_device,
    .sync_for_cpu = dead_sync_for_cpu,
    .common_sync = dead_common_sync,
};

/* Drops every record of @a: live ones are leaks; quarantined ones just leave. */
static void forget_adapter(struct dmahal__verifier *v, struct dmahal_adapter *a)
{
    struct verify_rec **q = &v->q_head;
    size_t out = 0;

    v->q_tail = NULL;
    while (*q) {
        if ((*q)->a == a) {
            v->q_n--;
            v->q_bytes -= (*q)->under.len;
            check_freed(v, *q, "when its adapter was put");
            *q = (*q)->qnext;
        } else {
            v->q_tail = *q;
            q = &(*q)->qnext;
        }
    }
    for (size_t i = 0; i < v->by_la.n; i++)
        if (v->by_la.v[i]->a != a)
            v->by_la.v[out++] = v->by_la.v[i];
    v->by_la.n = out;
    out = 0;
    for (size_t i = 0; i < v->by_va.n; i++) {
        struct verify_rec *rec = v->by_va.v[i];

        if (rec->a != a) {
            v->by_va.v[out++] = rec;
            continue;
        }
        if (rec->state == VERIFY_LIVE) {
            struct verify_report r = {
                .kind = DMAHAL_REPORT_LEAK, .la = rec->user.la, .len = rec->user.len, .rec = rec};
            char name[160];

            verify_rec_name(rec, name, sizeof(name));
            snprintf(r.msg, sizeof(r.msg), "leak: adapter put with %s still allocated", name);
            check_guards(v, rec, "at adapter put");
            verify_emit(v, &r);
        }
        free(rec);
    }
    v->by_va.n = out;
}

static void verify_put(struct dmahal_adapter *a)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct dmahal__vadapter *old = NULL;

    pthread_mutex_lock(&v->lock);
    forget_adapter(v, a);
    verify_stream_forget_adapter(v, a);
    pthread_mutex_unlock(&v->lock);
    /* Its memory goes with it (the common allocator frees what is left); the struct stays,
     * so a later call through it is reported rather than a use of freed memory. */
    dmahal__adapter_release(a);
    verify_bt_capture(v, &va->put_bt);
    va->dead = true;
    a->ops = &dead_ops;
    pthread_mutex_lock(&v->lock);
    va->grave_next = v->graveyard;
    v->graveyard = va;
    if (++v->ngrave > VERIFY_GRAVEYARD) {
        struct dmahal__vadapter **pp = &v->graveyard;

        while ((*pp)->grave_next)
            pp = &(*pp)->grave_next;
        old = *pp;
        *pp = NULL;
        v->ngrave--;
    }
    pthread_mutex_unlock(&v->lock);
    if (old) {
        free(old->adapter);
        free(old);
    }
}

static const struct dmahal_dma_ops verify_ops = {
    .common_alloc = verify_common_alloc,
    .common_free = verify_common_free,
    .put = verify_put,
    .map = verify_map,
    .map_async = verify_map_async,
    .unmap = verify_unmap,
    .sync_for_device = verify_sync_for_device,
    .sync_for_cpu = verify_sync_for_cpu,
    .common_sync = verify_common_sync,
};

/* ---- the core's hooks ------------------------------------------------------------------- */

void dmahal__verify_adapter_new(struct dmahal_adapter *a)
{
    struct dmahal__verifier *v = atomic_load(&a->dev->p->verifier);
    struct dmahal__vadapter *va;

    pthread_once(&blocks_once, blocks_init);
    if (!atomic_load(&v->on))
        return;
    va = verify_malloc(sizeof(*va));
    if (!va) {
        verify_oom(v, "wrapping an adapter");
        return;
    }
    *va = (struct dmahal__vadapter){.v = v, .inner = a->ops, .id = a->id, .adapter = a};
    snprintf(va->dev_name, sizeof(va->dev_name), "%s", a->dev->name);
    a->verify = va;
    a->ops = &verify_ops;
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
    verify_stream_fini(v);
    while (v->spare) {
        struct verify_rec *rec = v->spare;

        v->spare = rec->qnext;
        free(rec);
    }
    free(v->by_va.v);
    free(v->by_la.v);
    pthread_mutex_destroy(&v->lock);
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
        verify_emit(v, &r);
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

    verify_rec_name(rec, name, sizeof(name));
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

void dmahal__verify_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                               dmahal_addr_t la, size_t len, bool write)
{
    struct verify_report r = {.la = la, .len = len};
    struct verify_rec copy, *prev = NULL, *next = NULL, *freed = NULL, *near;
    char where[320];
    size_t i;

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return;
    pthread_mutex_lock(&v->lock);
    i = upper_la(&v->by_la, d, la);
    if (i > 0 && v->by_la.v[i - 1]->dev == d)
        prev = v->by_la.v[i - 1];
    if (i < v->by_la.n && v->by_la.v[i]->dev == d)
        next = v->by_la.v[i];
    if (prev && prev->state == VERIFY_LIVE && la + len <= prev->user.la + prev->user.len) {
        /* A cached buffer on a non-coherent device: what the CPU wrote since the last
         * flush is not what the device reads. */
        if (prev->track_flush && !write && prev->flushed &&
            verify_hash(prev->user.va, prev->user.len) != prev->hash) {
            copy = *prev;
            prev->flushed = false; /* once, until the next sync */
            r.kind = DMAHAL_REPORT_NOT_FLUSHED;
            r.rec = &copy;
            verify_rec_name(&copy, where, sizeof(where));
            snprintf(r.msg, sizeof(r.msg),
                     "device %s reads %zu byte(s) at la %#llx from %s, which the CPU wrote "
                     "after its last dmahal_common_sync(DMAHAL_TO_DEVICE)",
                     d->name, len, (unsigned long long)la, where);
        } else if (prev->track_flush && write) {
            prev->flushed = false; /* the device's data: unknown until the next sync */
        }
        pthread_mutex_unlock(&v->lock);
        if (r.kind)
            verify_emit(v, &r);
        return;
    }
    if (verify_stream_dev_access(v, d, la, len, write, &r)) {
        if (r.kind)
            verify_emit(v, &r); /* under the lock: the report names a live mapping */
        pthread_mutex_unlock(&v->lock);
        return;
    }
    if (prev && prev->state == VERIFY_FREED && la < prev->user.la + prev->user.len)
        freed = prev;
    else if (next && next->state == VERIFY_FREED && next->user.la < la + len)
        freed = next;
    near = freed;
    if (!near)
        near = !next || (prev && distance(prev, la, len) <= distance(next, la, len)) ? prev : next;
    if (near) {
        copy = *near;
        describe_near(&copy, la, len, where, sizeof(where));
        r.rec = &copy;
    } else
        snprintf(where, sizeof(where), "no verified buffer is live on this device");
    pthread_mutex_unlock(&v->lock);

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
    verify_emit(v, &r);
}

/* ---- on demand ----------------------------------------------------------------------------- */

int dmahal_verify_check(struct dmahal_platform *p)
{
    struct dmahal__verifier *v;
    int n = 0;

    if (!p)
        return -EINVAL;
    v = atomic_load(&p->verifier);
    if (!v || !atomic_load(&v->on))
        return -ENOTSUP;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->by_va.n; i++) {
        struct verify_rec *rec = v->by_va.v[i];

        n += rec->state == VERIFY_LIVE ? check_guards(v, rec, "on demand")
                                       : check_freed(v, rec, "on demand");
    }
    pthread_mutex_unlock(&v->lock);
    return n;
}

/* ---- the dump ------------------------------------------------------------------------------ */

static void guard_state(const struct verify_rec *rec, char *buf, size_t size)
{
    const unsigned char *start = rec->user.va;
    size_t first, last;
    bool under, over;

    if (!rec->head && !rec->tail) {
        snprintf(buf, size, "no guards (they would not fit the adapter's constraints)");
        return;
    }
    under = find_changed(start - rec->head, rec->head, VERIFY_GUARD_BYTE, &first, &last);
    over = find_changed(start + rec->user.len, rec->tail, VERIFY_GUARD_BYTE, &first, &last);
    if (!under && !over)
        snprintf(buf, size, "guards intact (%zu before, %zu after)", rec->head, rec->tail);
    else if (over)
        snprintf(buf, size, "OVERRUN: %zu..%zu byte(s) past the end changed%s", first + 1, last + 1,
                 under ? "; UNDERRUN too" : "");
    else
        snprintf(buf, size, "UNDERRUN: guard before the start changed");
}

void dmahal__verify_dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags)
{
    struct dmahal__verifier *v = a->verify->v;
    size_t n = 0, bytes = 0;

    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->by_va.n; i++) {
        const struct verify_rec *rec = v->by_va.v[i];
        char state[160];

        if (rec->a != a || rec->state != VERIFY_LIVE)
            continue;
        n++;
        bytes += rec->user.len;
        if (!(flags & DMAHAL_DUMP_COMMON))
            continue;
        guard_state(rec, state, sizeof(state));
        fprintf(f, "      buffer va %p  la 0x%012llx-0x%012llx  len %zu  #%llu\n", rec->user.va,
                (unsigned long long)rec->user.la,
                (unsigned long long)(rec->user.la + rec->user.len - 1), rec->user.len,
                (unsigned long long)rec->seq);
        fprintf(f, "        %s\n", state);
        fprintf(f, "        allocated by:\n");
        verify_bt_print(f, "          ", &rec->alloc_bt);
    }
    pthread_mutex_unlock(&v->lock);
    fprintf(f, "    common buffers: %zu, %zu bytes (verified)\n", n, bytes);
    if (flags & DMAHAL_DUMP_SGL)
        verify_stream_dump(v, a, f);
}

void dmahal__verify_dump_platform(struct dmahal_platform *p, FILE *f)
{
    struct dmahal__verifier *v = atomic_load(&p->verifier);
    uint64_t counts[DMAHAL_REPORT_KINDS], total;

    if (!v) {
        fprintf(f, "verifier: off\n");
        return;
    }
    pthread_mutex_lock(&v->rlock);
    memcpy(counts, v->count, sizeof(counts));
    total = v->total;
    pthread_mutex_unlock(&v->rlock);
    pthread_mutex_lock(&v->lock);
    fprintf(f,
            "verifier: %s, %llu allocations, %llu frees, %zu buffers in quarantine "
            "(%zu bytes), %zu put adapters kept\n",
            atomic_load(&v->on) ? "on" : "off (out of memory)", (unsigned long long)v->allocs,
            (unsigned long long)v->frees, v->q_n, v->q_bytes, v->ngrave);
    for (const struct verify_rec *rec = v->q_head; rec; rec = rec->qnext) {
        char name[160];

        verify_rec_name(rec, name, sizeof(name));
        fprintf(f, "  quarantined: %s, freed %llu frees ago\n", name,
                (unsigned long long)(v->frees - rec->free_seq));
    }
    pthread_mutex_unlock(&v->lock);
    fprintf(f, "  reports: %llu\n", (unsigned long long)total);
    for (int k = 1; k < DMAHAL_REPORT_KINDS; k++)
        if (counts[k])
            fprintf(f, "    %s: %llu\n", dmahal_report_kind_name(k), (unsigned long long)counts[k]);
}
