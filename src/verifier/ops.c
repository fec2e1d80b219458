/* SPDX-License-Identifier: MIT */
/*
 * ops.c - the verifier's wrapped adapter operations for common buffers, with the guard zones around
 * every buffer and the quarantine of freed ones, kept in one file so that the checks on the
 * allocation path stay inline.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- guard zones ------------------------------------------------------------------------- */

/*
 * Where a buffer of @len sits inside the larger one the verifier asks for, so that the
 * driver still gets everything the contract promises:
 *  - a buffer of a page or more: page-aligned and aligned to the adapter's alignment, so
 *    the head guard is one such alignment unit, and the tail guard is the rest of its last
 *    page plus at least 16 bytes (a whole page when the length is a page multiple). Only
 *    the part it fills is asked for (the allocator reserves whole pages all the same, so no
 *    other buffer comes nearer): as AddressSanitizer sizes its redzones, a thirty-second of
 *    the buffer, 128 bytes at least and VERIFY_GUARD_MAX at most, on each side;
 *  - a smaller one: aligned to its size rounded up to a power of two (A, at least 16 and the
 *    adapter's alignment) and within one page: the verifier asks for 3A, which the
 *    allocator aligns to 4A (or a page), and puts the buffer at offset A; A guard bytes
 *    (VERIFY_GUARD_MAX at most) are filled on each side.
 * The wrapped allocator keeps the whole of it below 2^addr_bits and, when it fits in one,
 * inside one boundary window; when guards would not fit in a boundary window the buffer
 * goes without (head 0, and the caller asks for @len alone).
 */
static inline void layout(const struct dmahal_adapter *a, size_t len, size_t *under_len,
                          size_t *head, size_t *guard)
{
    size_t page = a->dev->p->page_size;
    size_t align = a->c.alignment;
    size_t unit;

    if (len >= page || align >= page) {
        size_t tail = DMAHAL__ALIGN_UP(len + 16, page) - len;

        unit = align > page ? align : page;
        *guard = 128;
        while (*guard < VERIFY_GUARD_MAX && *guard < len / 32)
            *guard *= 2;
        *head = unit;
        *under_len = unit + len + (tail < *guard ? tail : *guard);
    } else {
        size_t need = len > align ? len : align;

        /* The power of two at or above need, at least 16. */
        unit = need <= 16 ? 16 : (size_t)1 << (64 - __builtin_clzll((unsigned long long)need - 1));
        *head = unit;
        *under_len = 3 * unit;
        *guard = unit < VERIFY_GUARD_MAX ? unit : VERIFY_GUARD_MAX;
    }
    if ((a->c.boundary && *under_len > a->c.boundary) || *under_len < len) {
        *head = 0;
        *under_len = len;
    }
}

/* A block of each pattern, so that intact memory is compared at memcmp's speed and
 * only a damaged block is looked at byte by byte. */
#define PATTERN_BLOCK 4096
static unsigned char guard_block[PATTERN_BLOCK], freed_block[PATTERN_BLOCK];
pthread_once_t dmahal__verify_blocks_once = PTHREAD_ONCE_INIT;

void dmahal__verify_blocks_init(void)
{
    memset(guard_block, VERIFY_GUARD_BYTE, sizeof(guard_block));
    memset(freed_block, VERIFY_FREED_BYTE, sizeof(freed_block));
}

static bool intact_blocks(const unsigned char *p, size_t n, unsigned char want);

/* Fills with a pattern: small zones with word stores inline (a string instruction takes
 * long to start), larger ones with memset. */
static inline void fill(void *p, size_t n, unsigned char c)
{
    if (n <= 256) {
        uint64_t b = 0x0101010101010101ull * c;
        verify_v2 w;
        size_t i = 0;

        /* Hidden from the compiler, which would make the loop a memset again. */
        __asm__("" : "+r"(b));
        w = (verify_v2){b, b};
        for (; i + 16 <= n; i += 16)
            memcpy((char *)p + i, &w, 16);
        for (; i < n; i++)
            ((unsigned char *)p)[i] = c;
        return;
    }
    memset(p, c, n);
}

/* Inline in this file's checks (a call is a good part of checking a small zone). */
static inline __attribute__((always_inline)) bool intact(const unsigned char *p, size_t n,
                                                         unsigned char want)
{
    if (n <= 256) {
        /* Small guards and small freed buffers: compared inline, 16 bytes at a time. */
        uint64_t b = 0x0101010101010101ull * want;
        verify_v2 w = {b, b}, diff = {0, 0};
        uint64_t rest = 0;
        size_t i = 0;

        for (; i + 16 <= n; i += 16) {
            verify_v2 x;

            memcpy(&x, p + i, 16);
            diff |= x ^ w;
        }
        for (; i < n; i++)
            rest |= p[i] ^ want;
        return (diff[0] | diff[1] | rest) == 0;
    }
    return intact_blocks(p, n, want);
}

bool dmahal__verify_intact(const unsigned char *p, size_t n, unsigned char want)
{
    return intact(p, n, want);
}

static bool intact_blocks(const unsigned char *p, size_t n, unsigned char want)
{
    const unsigned char *block = want == VERIFY_GUARD_BYTE ? guard_block : freed_block;

    for (size_t off = 0; off < n; off += PATTERN_BLOCK) {
        size_t k = n - off < PATTERN_BLOCK ? n - off : PATTERN_BLOCK;

        if (memcmp(p + off, block, k) != 0)
            return false;
    }
    return true;
}

/* The first and last bytes of [p, p + n) that are not @want, some being so. */
static __attribute__((noinline)) bool
locate_changed(const unsigned char *p, size_t n, unsigned char want, size_t *first, size_t *last)
{
    size_t i = 0, j = n;

    while (p[i] == want)
        i++;
    while (p[j - 1] == want)
        j--;
    *first = i;
    *last = j - 1;
    return true;
}

/* Finds the changed bytes in [p, p + n): false if none, else the first and last. */
inline bool dmahal__verify_find_changed(const unsigned char *p, size_t n, unsigned char want,
                                        size_t *first, size_t *last)
{
    return !dmahal__verify_intact(p, n, want) && locate_changed(p, n, want, first, last);
}

/* Reports the damaged guard zones of a live buffer and repairs them; returns how many. */
static __attribute__((noinline)) int report_guards(struct dmahal__verifier *v,
                                                   struct verify_rec *rec, const char *when)
{
    unsigned char *start = rec->user.va;
    char name[160];
    size_t first, last;
    int n = 0;

    if (rec->head && dmahal__verify_find_changed(start - rec->head, rec->head, VERIFY_GUARD_BYTE,
                                                 &first, &last)) {
        struct verify_report r = {.kind = DMAHAL_REPORT_UNDERRUN, .rec = rec};
        size_t from = rec->head - first, to = rec->head - last; /* bytes before the start */

        dmahal__verify_rec_name(rec, name, sizeof(name));
        r.la = rec->user.la - from;
        r.len = from - to + 1;
        snprintf(r.msg, sizeof(r.msg),
                 "underrun found %s: %zu byte(s) before the start changed (offsets -%zu..-%zu) "
                 "of %s",
                 when, r.len, from, to, name);
        memset(start - rec->head, VERIFY_GUARD_BYTE, rec->head);
        dmahal__verify_emit(v, &r);
        n++;
    }
    if (rec->tail && dmahal__verify_find_changed(start + rec->user.len, rec->tail,
                                                 VERIFY_GUARD_BYTE, &first, &last)) {
        struct verify_report r = {.kind = DMAHAL_REPORT_OVERRUN, .rec = rec};

        dmahal__verify_rec_name(rec, name, sizeof(name));
        r.la = rec->user.la + rec->user.len + first;
        r.len = last - first + 1;
        snprintf(r.msg, sizeof(r.msg),
                 "overrun found %s: %zu byte(s) past the end changed (offsets %zu..%zu, "
                 "%zu..%zu byte(s) past the end) of %s",
                 when, r.len, rec->user.len + first, rec->user.len + last, first + 1, last + 1,
                 name);
        memset(start + rec->user.len, VERIFY_GUARD_BYTE, rec->tail);
        dmahal__verify_emit(v, &r);
        n++;
    }
    return n;
}

/* Checks both guard zones of a live buffer: reports damage, repairs it, counts reports. The
 * check inline, the report (with its buffers) out of line. */
inline int dmahal__verify_check_guards(struct dmahal__verifier *v, struct verify_rec *rec,
                                       const char *when)
{
    const unsigned char *start = rec->user.va;

    if (intact(start - rec->head, rec->head, VERIFY_GUARD_BYTE) &&
        intact(start + rec->user.len, rec->tail, VERIFY_GUARD_BYTE))
        return 0;
    return report_guards(v, rec, when);
}

/*
 * A freed buffer holds the pattern at both ends, VERIFY_FREED_FILL bytes each (all of it when
 * smaller): a stale pointer's writes land mostly near where the driver's structures start and
 * end, and filling and checking all of a large buffer would cost as much as the memory
 * traffic of its use. The middle of a large buffer is not watched for CPU writes; device
 * accesses to any of it are (by address).
 */
static void freed_fill(const struct verify_rec *rec)
{
    unsigned char *p = rec->user.va;
    size_t n = rec->user.len;

    if (n <= 2 * VERIFY_FREED_FILL) {
        fill(p, n, VERIFY_FREED_BYTE);
        return;
    }
    fill(p, VERIFY_FREED_FILL, VERIFY_FREED_BYTE);
    fill(p + n - VERIFY_FREED_FILL, VERIFY_FREED_FILL, VERIFY_FREED_BYTE);
}

/* Finds the changed bytes in what freed_fill() filled: false if none. */
static bool freed_changed(const struct verify_rec *rec, size_t *first, size_t *last)
{
    const unsigned char *p = rec->user.va;
    size_t n = rec->user.len, f, l, tail = n - VERIFY_FREED_FILL;
    bool head_bad;

    if (n <= 2 * VERIFY_FREED_FILL)
        return dmahal__verify_find_changed(p, n, VERIFY_FREED_BYTE, first, last);
    head_bad = dmahal__verify_find_changed(p, VERIFY_FREED_FILL, VERIFY_FREED_BYTE, first, last);
    if (dmahal__verify_find_changed(p + tail, VERIFY_FREED_FILL, VERIFY_FREED_BYTE, &f, &l)) {
        if (!head_bad)
            *first = tail + f;
        *last = tail + l;
        return true;
    }
    return head_bad;
}

static __attribute__((noinline)) void report_freed(struct dmahal__verifier *v,
                                                   struct verify_rec *rec, const char *when,
                                                   size_t first, size_t last)
{
    struct verify_report r = {.kind = DMAHAL_REPORT_WRITE_AFTER_FREE, .rec = rec};
    char name[160];

    dmahal__verify_rec_name(rec, name, sizeof(name));
    r.la = rec->user.la + first;
    r.len = last - first + 1;
    snprintf(r.msg, sizeof(r.msg),
             "write after free found %s: offsets %zu..%zu of %s changed after it was freed", when,
             first, last, name);
    freed_fill(rec);
    dmahal__verify_emit(v, &r);
}

/* Finds and reports what changed in a quarantined buffer (dmahal__verify_check_freed found
 * something). */
static __attribute__((noinline)) int check_freed_slow(struct dmahal__verifier *v,
                                                      struct verify_rec *rec, const char *when)
{
    size_t first, last;
    bool changed = freed_changed(rec, &first, &last);

    if (rec->dev_wrote) {
        /* Late DMA, seen by address: it counts wherever it landed, pattern or not. */
        if (!changed || rec->dev_first < first)
            first = rec->dev_first;
        if (!changed || rec->dev_last > last)
            last = rec->dev_last;
        changed = true;
        rec->dev_wrote = false;
    }
    if (!changed)
        return 0;
    report_freed(v, rec, when, first, last); /* its report's buffers stay off this path */
    return 1;
}

/* Checks that nothing wrote into a quarantined buffer since it was freed (as far as the
 * pattern shows, and by the device's writes seen). */
inline int dmahal__verify_check_freed(struct dmahal__verifier *v, struct verify_rec *rec,
                                      const char *when)
{
    const unsigned char *p = rec->user.va;
    size_t n = rec->user.len;

    if (!rec->dev_wrote &&
        (n <= 2 * VERIFY_FREED_FILL
             ? intact(p, n, VERIFY_FREED_BYTE)
             : intact(p, VERIFY_FREED_FILL, VERIFY_FREED_BYTE) &&
                   intact(p + n - VERIFY_FREED_FILL, VERIFY_FREED_FILL, VERIFY_FREED_BYTE)))
        return 0;
    return check_freed_slow(v, rec, when);
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

/* An unindexed record's buffer goes back to the wrapped allocator. */
static void rec_give_back(struct dmahal__verifier *v, struct verify_rec *rec)
{
    rec->va_owner->inner->common_free(rec->a, &rec->under);
    rec_recycle(v, rec);
}

static void rec_release(struct dmahal__verifier *v, struct verify_rec *rec)
{
    dmahal__verify_rec_unindex(v, rec);
    rec_give_back(v, rec);
}

/*
 * A buffer leaving the quarantine would go back to the wrapped allocator, and the next
 * allocation of its size would ask it for one again: two calls that each take the adapter's
 * lock, a good part of a small allocation's cost. The last few are kept instead, with their
 * records, for allocations of the same adapter, size and flags, which fill them as the
 * allocator's would be (zeroes, fresh guards). Unindexed, they are out of the driver's and
 * the device's reach as a buffer given back is: the driver holds no live handle to them, and
 * a device access there is outside every buffer. Cached buffers on a non-coherent adapter
 * always go back (the cache model's state of them goes with the free).
 */
static void ready_push(struct dmahal__verifier *v, struct verify_rec *rec)
{
    if (rec->track_flush || rec->under.len > VERIFY_READY_MAX) {
        rec_give_back(v, rec);
        return;
    }
    if (v->nready == VERIFY_READY) {
        rec_give_back(v, v->ready[0]);
        memmove(v->ready, v->ready + 1, (VERIFY_READY - 1) * sizeof(v->ready[0]));
        v->nready--;
    }
    v->ready[v->nready++] = rec;
}

/* A kept buffer of @a's, @under_len bytes, allocated with @flags, or NULL; the newest first
 * (its lines are the likeliest still in the cache). */
static struct verify_rec *ready_take(struct dmahal__verifier *v, const struct dmahal_adapter *a,
                                     size_t under_len, unsigned flags)
{
    for (size_t i = v->nready; i-- > 0;) {
        struct verify_rec *rec = v->ready[i];

        if (rec->a == a && rec->under.len == under_len && rec->flags == flags) {
            /* mostly nothing to move: the newest fits */
            memmove(v->ready + i, v->ready + i + 1, (v->nready - i - 1) * sizeof(v->ready[0]));
            v->nready--;
            return rec;
        }
    }
    return NULL;
}

void dmahal__verify_ready_drain(struct dmahal__verifier *v, struct dmahal_adapter *a)
{
    size_t kept = 0;

    for (size_t i = 0; i < v->nready; i++) {
        if (!a || v->ready[i]->a == a)
            rec_give_back(v, v->ready[i]);
        else
            v->ready[kept++] = v->ready[i];
    }
    v->nready = kept;
}

static void quarantine_push(struct dmahal__verifier *v, struct verify_rec *rec)
{
    size_t n, bytes;

    rec->qnext = NULL;
    if (v->q_tail)
        v->q_tail->qnext = rec;
    else
        v->q_head = rec;
    v->q_tail = rec;
    /* Counted in locals, stored once: stores to both fields then a load of the pair (the
     * compiler loads them together) would wait for store forwarding. */
    n = v->q_n + 1;
    bytes = v->q_bytes + rec->under.len;
    /* Late DMA into the oldest is no longer caught once its memory goes back. */
    while (n > VERIFY_QUARANTINE || (bytes > VERIFY_QUARANTINE_BYTES && n > 1)) {
        struct verify_rec *old = v->q_head;

        v->q_head = old->qnext;
        if (!v->q_head)
            v->q_tail = NULL;
        n--;
        bytes -= old->under.len;
        dmahal__verify_check_freed(v, old, "when it left the quarantine");
        dmahal__verify_rec_unindex(v, old);
        ready_push(v, old);
    }
    v->q_n = n;
    v->q_bytes = bytes;
}

/* Empties the quarantine and the buffers kept for reuse: their memory goes back before an
 * allocation fails for want of it. */
static void quarantine_drain(struct dmahal__verifier *v)
{
    dmahal__verify_ready_drain(v, NULL);
    while (v->q_head) {
        struct verify_rec *old = v->q_head;

        v->q_head = old->qnext;
        dmahal__verify_check_freed(v, old, "when it left the quarantine");
        rec_release(v, old);
    }
    v->q_tail = NULL;
    v->q_n = 0;
    v->q_bytes = 0;
}

/* ---- the wrapped operations --------------------------------------------------------------- */

/* Lays the driver's buffer out in rec->under: zeroed, between fresh guard zones. */
static inline void place(struct verify_rec *rec, size_t len, size_t head, size_t guard)
{
    if (!rec->track_flush)
        fill((char *)rec->under.va + head, len, 0); /* else zeroed, for the cache model */
    rec->user = (struct dmahal_buf){(char *)rec->under.va + head, rec->under.la + head, len};
    rec->head = head < guard ? head : guard;
    rec->tail = rec->under.len - head - len;
    if (rec->tail > guard)
        rec->tail = guard;
    fill((char *)rec->user.va - rec->head, rec->head, VERIFY_GUARD_BYTE);
    fill((char *)rec->user.va + len, rec->tail, VERIFY_GUARD_BYTE);
}

static int alloc_under(struct dmahal_adapter *a, struct verify_rec *rec, size_t len, unsigned flags)
{
    const struct dmahal_dma_ops *inner = a->verify->inner;
    size_t under_len, head, guard;
    int rc;

    layout(a, len, &under_len, &head, &guard);
    /* The allocator would zero the guard zones too (a whole page before a large buffer):
     * the verifier zeroes the buffer itself. */
    rc = inner->common_alloc(a, under_len, flags | DMAHAL__COMMON_NO_ZERO, &rec->under);
    if ((rc == -ENOMEM || rc == -E2BIG) && head) {
        /* Guards must not make a call fail that would succeed without them. */
        head = 0;
        rc = inner->common_alloc(a, len, flags | DMAHAL__COMMON_NO_ZERO, &rec->under);
    }
    if (rc)
        return rc;
    place(rec, len, head, guard);
    return 0;
}

/* A record for a new buffer of @len bytes: a kept one whose buffer fits, laid out anew, or
 * else a spare or new one with no buffer yet (*has_buf false). NULL when out of memory. */
static struct verify_rec *rec_get(struct dmahal__verifier *v, struct dmahal_adapter *a, size_t len,
                                  unsigned flags, bool track_flush, bool *has_buf)
{
    struct verify_rec *rec = NULL;
    size_t under_len, head, guard;

    *has_buf = false;
    if (v->nready && !track_flush) {
        layout(a, len, &under_len, &head, &guard);
        rec = ready_take(v, a, under_len, flags);
        if (rec) { /* never a cached buffer of a non-coherent adapter: ready_push */
            place(rec, len, head, guard);
            *has_buf = true;
            return rec;
        }
    }
    rec = v->spare;
    if (rec) {
        v->spare = rec->qnext;
        v->nspare--;
        return rec;
    }
    return dmahal__verify_malloc(sizeof(*rec));
}

/*
 * One critical section: the wrapped allocator is called under v->lock (the lock order
 * allows it), so that the record, its index entries and the buffer appear together, and the
 * lock is taken once.
 */
int dmahal__verify_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                                struct dmahal_buf *out)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_bt_raw bt;
    struct verify_rec *rec;
    bool track_flush, has_buf;
    int rc;

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return va->inner->common_alloc(a, len, flags, out);
    verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    /* Index room is reserved first, so that recording a buffer already allocated cannot fail. */
    if (v->by_va.n >= v->by_va.cap && dmahal__verify_va_reserve(&v->by_va) != 0)
        goto err_unlock;
    track_flush = (flags & DMAHAL_CACHED) && !a->c.coherent;
    rec = rec_get(v, a, len, flags, track_flush, &has_buf);
    if (!rec)
        goto err_unlock;
    /* Field by field: what dmahal__verify_rec_index() and alloc_under() set is left to them (a
     * memset of the whole record is a good part of a small allocation's cost). */
    rec->a = a;
    rec->dev = a->dev;
    rec->va_owner = va;
    rec->state = VERIFY_LIVE;
    rec->flags = flags;
    rec->track_flush = track_flush;
    rec->flushed = false;
    rec->pending = 0;
    rec->hash = 0;
    rec->free_seq = 0;
    rec->dev_wrote = false;
    rc = has_buf ? 0 : alloc_under(a, rec, len, flags);
    if (rc == -ENOMEM && (v->q_head || v->nready)) {
        /* The verifier never makes a call fail that would succeed without it. */
        quarantine_drain(v);
        rc = alloc_under(a, rec, len, flags);
    }
    if (rc) {
        rec_recycle(v, rec);
        dmahal__lock_drop(&v->lock);
        return rc;
    }
    rec->alloc_bt = dmahal__verify_bt_intern(v, &bt);
    rec->free_bt = &dmahal__verify_bt_none;
    if (rec->track_flush) {
        rec->hash = dmahal__verify_hash(rec->user.va, len); /* zeroed, and seen so by the device */
        rec->flushed = true;
    }
    rec->seq = ++v->allocs;
    dmahal__verify_rec_index(v, rec);
    va->live++;
    dmahal__lock_drop(&v->lock);
    *out = rec->user;
    return 0;

err_unlock:
    dmahal__lock_drop(&v->lock);
    dmahal__verify_oom(v, "recording a common buffer");
    return va->inner->common_alloc(a, len, flags, out);
}

/* The record whose buffer starts at, or else contains, or else is nearest below @p va: for
 * explaining a bad free, so a walk over them all. */
static struct verify_rec *rec_at_or_below(struct dmahal__verifier *v, const void *va)
{
    struct verify_rec *best = dmahal__verify_va_find(v, va);

    if (best)
        return best;
    for (struct verify_rec *r = v->recs; r; r = r->next)
        if ((uintptr_t)r->user.va <= (uintptr_t)va &&
            (!best || (uintptr_t)r->user.va > (uintptr_t)best->user.va))
            best = r;
    return best;
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
        dmahal__verify_rec_name(rec, name, sizeof(name));
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

/* A free that matches no live buffer: reports it; returns what the free returns. Under v->lock,
 * which it drops. */
static __attribute__((noinline)) int bad_free(struct dmahal__verifier *v, struct dmahal_adapter *a,
                                              const struct dmahal_buf *buf)
{
    struct verify_report r = {0};
    struct verify_rec *rec = rec_at_or_below(v, buf->va);

    r.rec = rec;
    explain_bad_free(v, a, buf, rec, &r);
    dmahal__verify_emit(v, &r);
    dmahal__lock_drop(&v->lock);
    /* A buffer it never saw is the wrapped allocator's to refuse; a known one is not freed. */
    return r.rec ? -EINVAL : a->verify->inner->common_free(a, buf);
}

int dmahal__verify_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    struct verify_bt_raw bt;
    bool on = atomic_load_explicit(&v->on, memory_order_relaxed);

    if (on)
        verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    rec = dmahal__verify_va_find(v, buf->va);
    if (rec && rec->state == VERIFY_LIVE && rec->a == a && rec->user.la == buf->la &&
        rec->user.len == buf->len) {
        va->live--;
        v->frees++;
        if (!on) {
            rec_release(v, rec);
            dmahal__lock_drop(&v->lock);
            return 0;
        }
        dmahal__verify_check_guards(v, rec, "at free");
        if (v->maps) /* any live list at all */
            dmahal__verify_stream_check_free(v, rec);
        rec->state = VERIFY_FREED;
        rec->free_seq = v->frees;
        rec->free_bt = dmahal__verify_bt_intern(v, &bt);
        freed_fill(rec);
        quarantine_push(v, rec);
        dmahal__lock_drop(&v->lock);
        return 0;
    }
    if (!on) {
        /* Allocated after the verifier turned off: the wrapped allocator knows it. */
        dmahal__lock_drop(&v->lock);
        return va->inner->common_free(a, buf);
    }
    return bad_free(v, a, buf);
}

int dmahal__verify_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                               size_t len, enum dmahal_dir dir)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    struct verify_report r = {.la = b->la + off, .len = len};
    struct dmahal_buf under;
    char name[160];

    dmahal__lock_take(&v->lock);
    rec =
        dmahal__verify_va_find(v, b->va); /* every case below concerns the buffer starting there */
    if (rec && rec->user.va == b->va && rec->state == VERIFY_LIVE && rec->a == a &&
        rec->user.la == b->la && rec->user.len == b->len) {
        size_t head = (size_t)((char *)rec->user.va - (char *)rec->under.va);

        /* The CPU now sees what the device wrote there. */
        if (rec->track_flush && (dir & DMAHAL_FROM_DEVICE) && len)
            rec->pending &= ~dmahal__verify_chunks(rec->user.len, off, off + len - 1);
        if (rec->track_flush && (dir & DMAHAL_TO_DEVICE)) {
            rec->hash = dmahal__verify_hash(rec->user.va, rec->user.len);
            rec->flushed = true;
        }
        under = rec->under;
        dmahal__lock_drop(&v->lock);
        return va->inner->common_sync(a, &under, head + off, len, dir);
    }
    if (!atomic_load_explicit(&v->on, memory_order_relaxed) && !(rec && rec->user.va == b->va)) {
        dmahal__lock_drop(&v->lock);
        return va->inner->common_sync(a, b, off, len, dir);
    }
    if (rec && rec->user.va == b->va && rec->state == VERIFY_LIVE && rec->a == a &&
        rec->user.la == b->la && off + len > rec->user.len) {
        /* The buffer passed claims another length, and the range lies outside the real one. */
        dmahal__verify_rec_name(rec, name, sizeof(name));
        r.kind = DMAHAL_REPORT_SYNC_OUT_OF_RANGE;
        r.rec = rec;
        snprintf(r.msg, sizeof(r.msg),
                 "dmahal_common_sync of offsets %zu..%zu, outside %s (the buffer passed says "
                 "len %zu)",
                 off, off + len - 1, name, b->len);
        dmahal__verify_emit(v, &r);
        dmahal__lock_drop(&v->lock);
        return -ENOENT;
    }
    r.rec = rec && rec->user.va == b->va ? rec : NULL;
    if (r.rec && rec->a != a) {
        dmahal__verify_rec_name(rec, name, sizeof(name));
        r.kind = DMAHAL_REPORT_WRONG_ADAPTER;
        snprintf(r.msg, sizeof(r.msg), "dmahal_common_sync through adapter #%llu of %s",
                 (unsigned long long)a->id, name);
    } else if (r.rec) {
        dmahal__verify_rec_name(rec, name, sizeof(name));
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
    dmahal__verify_emit(v, &r);
    dmahal__lock_drop(&v->lock);
    return -ENOENT;
}

int dmahal_verify_free_mismatch(struct dmahal_adapter *a, const struct dmahal_buf *b,
                                const char *what)
{
    struct dmahal__verifier *v;
    struct verify_rec *rec;
    struct verify_report r = {.kind = DMAHAL_REPORT_FREE_WRONG_CACHE};
    char name[160];

    if (!a || !b || !what)
        return -EINVAL;
    if (!a->verify)
        return dmahal__common_live(a, b) ? 0 : -ENOENT;
    v = a->verify->v;
    dmahal__lock_take(&v->lock);
    rec = dmahal__verify_va_find(v, b->va);
    if (!rec || rec->state != VERIFY_LIVE || rec->a != a || rec->user.va != b->va ||
        rec->user.la != b->la || rec->user.len != b->len) {
        dmahal__lock_drop(&v->lock);
        return -ENOENT;
    }
    if (atomic_load_explicit(&v->on, memory_order_relaxed)) {
        dmahal__verify_rec_name(rec, name, sizeof(name));
        r.rec = rec;
        r.la = b->la;
        r.len = b->len;
        snprintf(r.msg, sizeof(r.msg), "free with %s of %s: nothing was freed", what, name);
        dmahal__verify_emit(v, &r);
    }
    dmahal__lock_drop(&v->lock);
    return 0;
}
