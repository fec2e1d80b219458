/*
 * verifier.c - the DMA verifier's checks: wrapped adapter operations, guard zones,
 * quarantine, put adapters, and the device side of the simulated bus. See verifier.h.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the indexes ------------------------------------------------------------------------- */

static size_t va_slot(const struct verify_vahash *h, const void *va)
{
    uint64_t k = (uint64_t)(uintptr_t)va * 0x9e3779b97f4a7c15ull;

    return (size_t)(k >> 32) & (h->cap - 1);
}

/* The record (live or quarantined) whose buffer starts at @va, or NULL. */
static struct verify_rec *va_find(const struct dmahal__verifier *v, const void *va)
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
static int va_reserve(struct verify_vahash *h)
{
    struct verify_vahash g;

    if (h->n < h->cap)
        return 0;
    g.cap = h->cap ? h->cap * 2 : 256;
    g.n = h->n;
    g.bucket = verify_malloc(2 * g.cap * sizeof(*g.bucket));
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
static struct verify_rec *la_find(const struct dmahal__verifier *v, const struct dmahal_device *d,
                                  dmahal_addr_t la)
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
static void la_neighbours(const struct dmahal__verifier *v, const struct dmahal_device *d,
                          dmahal_addr_t la, struct verify_rec **prev, struct verify_rec **next)
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

/* Adds a record to the indexes; the hash tables have room (va_reserve). */
static void rec_index(struct dmahal__verifier *v, struct verify_rec *rec)
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

static void rec_unindex(struct dmahal__verifier *v, struct verify_rec *rec)
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
static void layout(const struct dmahal_adapter *a, size_t len, size_t *under_len, size_t *head,
                   size_t *guard)
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

static bool intact(const unsigned char *p, size_t n, unsigned char want)
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
static inline bool find_changed(const unsigned char *p, size_t n, unsigned char want, size_t *first,
                                size_t *last)
{
    return !intact(p, n, want) && locate_changed(p, n, want, first, last);
}

/* Reports the damaged guard zones of a live buffer and repairs them; returns how many. */
static __attribute__((noinline)) int report_guards(struct dmahal__verifier *v,
                                                   struct verify_rec *rec, const char *when)
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

/* Checks both guard zones of a live buffer: reports damage, repairs it, counts reports. The
 * check inline, the report (with its buffers) out of line. */
static inline int check_guards(struct dmahal__verifier *v, struct verify_rec *rec, const char *when)
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
        return find_changed(p, n, VERIFY_FREED_BYTE, first, last);
    head_bad = find_changed(p, VERIFY_FREED_FILL, VERIFY_FREED_BYTE, first, last);
    if (find_changed(p + tail, VERIFY_FREED_FILL, VERIFY_FREED_BYTE, &f, &l)) {
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

    verify_rec_name(rec, name, sizeof(name));
    r.la = rec->user.la + first;
    r.len = last - first + 1;
    snprintf(r.msg, sizeof(r.msg),
             "write after free found %s: offsets %zu..%zu of %s changed after it was freed", when,
             first, last, name);
    freed_fill(rec);
    verify_emit(v, &r);
}

/* Finds and reports what changed in a quarantined buffer (check_freed found something). */
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
static inline int check_freed(struct dmahal__verifier *v, struct verify_rec *rec, const char *when)
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

static void rec_release(struct dmahal__verifier *v, struct verify_rec *rec)
{
    rec_unindex(v, rec);
    rec->va_owner->inner->common_free(rec->a, &rec->under);
    rec_recycle(v, rec);
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
        check_freed(v, old, "when it left the quarantine");
        rec_release(v, old);
    }
    v->q_n = n;
    v->q_bytes = bytes;
}

/* ---- the wrapped operations --------------------------------------------------------------- */

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
        under_len = len;
        rc = inner->common_alloc(a, len, flags | DMAHAL__COMMON_NO_ZERO, &rec->under);
    }
    if (rc)
        return rc;
    if (!rec->track_flush)
        fill((char *)rec->under.va + head, len, 0); /* else zeroed, for the cache model */
    rec->user = (struct dmahal_buf){(char *)rec->under.va + head, rec->under.la + head, len};
    rec->head = head < guard ? head : guard;
    rec->tail = under_len - head - len;
    if (rec->tail > guard)
        rec->tail = guard;
    fill((char *)rec->user.va - rec->head, rec->head, VERIFY_GUARD_BYTE);
    fill((char *)rec->user.va + len, rec->tail, VERIFY_GUARD_BYTE);
    return 0;
}

/*
 * One critical section: the wrapped allocator is called under v->lock (the lock order
 * allows it), so that the record, its index entries and the buffer appear together, and the
 * lock is taken once.
 */
static int verify_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                               struct dmahal_buf *out)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_bt_raw bt;
    struct verify_rec *rec;
    int rc;

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return va->inner->common_alloc(a, len, flags, out);
    verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    /* Index room is reserved first, so that recording a buffer already allocated cannot fail. */
    if (va_reserve(&v->by_va) != 0)
        goto err_unlock;
    rec = v->spare;
    if (rec) {
        v->spare = rec->qnext;
        v->nspare--;
    } else {
        rec = verify_malloc(sizeof(*rec));
        if (!rec)
            goto err_unlock;
    }
    /* Field by field: what rec_index() and alloc_under() set is left to them (a memset of
     * the whole record is a good part of a small allocation's cost). */
    rec->a = a;
    rec->dev = a->dev;
    rec->va_owner = va;
    rec->state = VERIFY_LIVE;
    rec->track_flush = (flags & DMAHAL_CACHED) && !a->c.coherent;
    rec->flushed = false;
    rec->hash = 0;
    rec->free_seq = 0;
    rec->dev_wrote = false;
    rc = alloc_under(a, rec, len, flags);
    if (rc) {
        rec_recycle(v, rec);
        dmahal__lock_drop(&v->lock);
        return rc;
    }
    rec->alloc_bt = verify_bt_intern(v, &bt);
    rec->free_bt = &verify_bt_none;
    if (rec->track_flush) {
        rec->hash = verify_hash(rec->user.va, len); /* zeroed, and seen so by the device */
        rec->flushed = true;
    }
    rec->seq = ++v->allocs;
    rec_index(v, rec);
    va->live++;
    dmahal__lock_drop(&v->lock);
    *out = rec->user;
    return 0;

err_unlock:
    dmahal__lock_drop(&v->lock);
    verify_oom(v, "recording a common buffer");
    return va->inner->common_alloc(a, len, flags, out);
}

/* The record whose buffer starts at, or else contains, or else is nearest below @p va: for
 * explaining a bad free, so a walk over them all. */
static struct verify_rec *rec_at_or_below(struct dmahal__verifier *v, const void *va)
{
    struct verify_rec *best = va_find(v, va);

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

/* A free that matches no live buffer: reports it; returns what the free returns. Under v->lock,
 * which it drops. */
static __attribute__((noinline)) int bad_free(struct dmahal__verifier *v, struct dmahal_adapter *a,
                                              const struct dmahal_buf *buf)
{
    struct verify_report r = {0};
    struct verify_rec *rec = rec_at_or_below(v, buf->va);

    r.rec = rec;
    explain_bad_free(v, a, buf, rec, &r);
    verify_emit(v, &r);
    dmahal__lock_drop(&v->lock);
    /* A buffer it never saw is the wrapped allocator's to refuse; a known one is not freed. */
    return r.rec ? -EINVAL : a->verify->inner->common_free(a, buf);
}

static int verify_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    struct verify_bt_raw bt;
    bool on = atomic_load_explicit(&v->on, memory_order_relaxed);

    if (on)
        verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    rec = va_find(v, buf->va);
    if (rec && rec->state == VERIFY_LIVE && rec->a == a && rec->user.la == buf->la &&
        rec->user.len == buf->len) {
        va->live--;
        v->frees++;
        if (!on) {
            rec_release(v, rec);
            dmahal__lock_drop(&v->lock);
            return 0;
        }
        check_guards(v, rec, "at free");
        if (v->maps) /* any live list at all */
            verify_stream_check_free(v, rec);
        rec->state = VERIFY_FREED;
        rec->free_seq = v->frees;
        rec->free_bt = verify_bt_intern(v, &bt);
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

static int verify_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                              size_t len, enum dmahal_dir dir)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct verify_rec *rec;
    struct verify_report r = {.la = b->la + off, .len = len};
    struct dmahal_buf under;
    char name[160];

    dmahal__lock_take(&v->lock);
    rec = va_find(v, b->va); /* every case below concerns the buffer starting there */
    if (rec && rec->user.va == b->va && rec->state == VERIFY_LIVE && rec->a == a &&
        rec->user.la == b->la && rec->user.len == b->len) {
        size_t head = (size_t)((char *)rec->user.va - (char *)rec->under.va);

        if (rec->track_flush && (dir & DMAHAL_TO_DEVICE)) {
            rec->hash = verify_hash(rec->user.va, rec->user.len);
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
        verify_rec_name(rec, name, sizeof(name));
        r.kind = DMAHAL_REPORT_SYNC_OUT_OF_RANGE;
        r.rec = rec;
        snprintf(r.msg, sizeof(r.msg),
                 "dmahal_common_sync of offsets %zu..%zu, outside %s (the buffer passed says "
                 "len %zu)",
                 off, off + len - 1, name, b->len);
        verify_emit(v, &r);
        dmahal__lock_drop(&v->lock);
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
    dmahal__lock_drop(&v->lock);
    return -ENOENT;
}

/* ---- put adapters ---------------------------------------------------------------------- */

static void report_dead(struct dmahal_adapter *a, const char *what)
{
    struct dmahal__vadapter *va = a->verify;
    struct verify_report r = {.kind = DMAHAL_REPORT_BAD_ADAPTER,
                              .extra_bt = va->put_bt,
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
    for (struct verify_rec *rec = v->recs, *next; rec; rec = next) {
        next = rec->next;
        if (rec->a != a)
            continue;
        if (rec->state == VERIFY_LIVE) {
            struct verify_report r = {
                .kind = DMAHAL_REPORT_LEAK, .la = rec->user.la, .len = rec->user.len, .rec = rec};
            char name[160];

            verify_rec_name(rec, name, sizeof(name));
            snprintf(r.msg, sizeof(r.msg), "leak: adapter put with %s still allocated", name);
            check_guards(v, rec, "at adapter put");
            verify_emit(v, &r);
        }
        rec_unindex(v, rec);
        free(rec);
    }
}

static void verify_put(struct dmahal_adapter *a)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct dmahal__vadapter *old = NULL;
    struct verify_bt_raw bt;

    verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    forget_adapter(v, a);
    verify_stream_forget_adapter(v, a);
    dmahal__lock_drop(&v->lock);
    /* Its memory goes with it (the common allocator frees what is left); the struct stays,
     * so a later call through it is reported rather than a use of freed memory. */
    dmahal__adapter_release(a);
    va->dead = true;
    a->ops = &dead_ops;
    dmahal__lock_take(&v->lock);
    va->put_bt = verify_bt_intern(v, &bt);
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
    dmahal__lock_drop(&v->lock);
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
    free(v->by_va.bucket);
    verify_depot_fini(&v->depot);
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
        dmahal__lock_drop(&v->lock);
        if (r.kind)
            verify_emit(v, &r);
        return;
    }
    if (verify_stream_dev_access(v, d, la, len, write, &r)) {
        if (r.kind)
            verify_emit(v, &r); /* under the lock: the report names a live mapping */
        dmahal__lock_drop(&v->lock);
        return;
    }
    la_neighbours(v, d, la, &prev, &next);
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
    } else
        snprintf(where, sizeof(where), "no verified buffer is live on this device");
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
    verify_emit(v, &r);
}

void dmahal__verify_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                               dmahal_addr_t la, size_t len, bool write)
{
    struct verify_rec *rec;

    if (!atomic_load_explicit(&v->on, memory_order_relaxed))
        return;
    dmahal__lock_take(&v->lock);
    rec = la_find(v, d, la);
    if (rec && rec->state == VERIFY_LIVE && la + len <= rec->user.la + rec->user.len &&
        !rec->track_flush) {
        dmahal__lock_drop(&v->lock); /* inside a live buffer: the common case */
        return;
    }
    dev_access_slow(v, d, la, len, write, rec);
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
    dmahal__lock_take(&v->lock);
    for (struct verify_rec *rec = v->recs; rec; rec = rec->next) {
        n += rec->state == VERIFY_LIVE ? check_guards(v, rec, "on demand")
                                       : check_freed(v, rec, "on demand");
    }
    dmahal__lock_drop(&v->lock);
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

    dmahal__lock_take(&v->lock);
    for (const struct verify_rec *rec = v->recs; rec; rec = rec->next) {
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
        verify_bt_print(f, "          ", rec->alloc_bt);
    }
    dmahal__lock_drop(&v->lock);
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
    dmahal__lock_take(&v->lock);
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
    dmahal__lock_drop(&v->lock);
    fprintf(f, "  reports: %llu\n", (unsigned long long)total);
    for (int k = 1; k < DMAHAL_REPORT_KINDS; k++)
        if (counts[k])
            fprintf(f, "    %s: %llu\n", dmahal_report_kind_name(k), (unsigned long long)counts[k]);
}
