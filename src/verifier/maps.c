/* SPDX-License-Identifier: MIT */
/*
 * stream.c - the verifier's streaming checks: what bug check 0xE6 and Linux's dma-debug
 * check of map/unmap/sync, on dmahal's streaming API.
 *
 * dmahal's unmap and sync take the list alone (no direction, size or count to get wrong),
 * so the wrong-size and wrong-count checks become this: the driver must hand back the list
 * as it got it. The driver gets a copy of the core's list (the shadow); the verifier keeps
 * another (the segments, for device-side checks after unmap too), and compares.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define UNMAPPED_KEPT 64 /* unmapped lists kept, to catch late DMA and stale pointers */

/*
 * A 64-bit checksum of memory, to notice that the CPU wrote into it: it runs on every map,
 * unmap and sync of a to-device mapping, over all of it, so it must go at the speed memory
 * is read. Eight lanes of 64-bit words (word j of every 64-byte block goes to lane j), each
 * with a running sum (a) and a sum of running sums (b, which weighs each word by its
 * position, as Fletcher's checksum does): only additions, which vector units do several
 * words at a time. A changed word changes its lane's a; two changes that cancel in a would
 * have to cancel in b too. The lanes are then mixed with multiplications, each on its own.
 *
 * The sums are the same however many lanes one instruction adds, so the value does not
 * depend on which of the two loops below ran: 128-bit vectors (SSE2, NEON) everywhere, and
 * 256-bit ones where the CPU has AVX2, twice the words per instruction.
 */
#define HASH_BLOCK 64

static void hash_sums_v2(const unsigned char *c, size_t blocks, uint64_t a[8], uint64_t b[8])
{
    verify_v2 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};

    for (size_t i = 0; i < blocks; i++, c += HASH_BLOCK) {
        verify_v2 w0, w1, w2, w3;

        memcpy(&w0, c, 16);
        memcpy(&w1, c + 16, 16);
        memcpy(&w2, c + 32, 16);
        memcpy(&w3, c + 48, 16);
        a0 += w0;
        a1 += w1;
        a2 += w2;
        a3 += w3;
        b0 += a0;
        b1 += a1;
        b2 += a2;
        b3 += a3;
    }
    memcpy(a, &a0, 16);
    memcpy(a + 2, &a1, 16);
    memcpy(a + 4, &a2, 16);
    memcpy(a + 6, &a3, 16);
    memcpy(b, &b0, 16);
    memcpy(b + 2, &b1, 16);
    memcpy(b + 4, &b2, 16);
    memcpy(b + 6, &b3, 16);
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef uint64_t verify_v4 __attribute__((vector_size(32)));

/* Two blocks a turn: the loop's own instructions are then a small part of each turn. */
__attribute__((target("avx2"))) static void hash_sums_v4(const unsigned char *c, size_t blocks,
                                                         uint64_t a[8], uint64_t b[8])
{
    verify_v4 a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    size_t i = 0;

    for (; i + 2 <= blocks; i += 2, c += 2 * HASH_BLOCK) {
        verify_v4 w0, w1, w2, w3;

        memcpy(&w0, c, 32);
        memcpy(&w1, c + 32, 32);
        memcpy(&w2, c + 64, 32);
        memcpy(&w3, c + 96, 32);
        a0 += w0;
        a1 += w1;
        b0 += a0;
        b1 += a1;
        a0 += w2;
        a1 += w3;
        b0 += a0;
        b1 += a1;
    }
    if (i < blocks) {
        verify_v4 w0, w1;

        memcpy(&w0, c, 32);
        memcpy(&w1, c + 32, 32);
        a0 += w0;
        a1 += w1;
        b0 += a0;
        b1 += a1;
    }
    memcpy(a, &a0, 32);
    memcpy(a + 4, &a1, 32);
    memcpy(b, &b0, 32);
    memcpy(b + 4, &b1, 32);
}

/* Whether this CPU (and the kernel, which must save the wider registers) has AVX2: asked
 * once. */
static bool hash_wide(void)
{
    static atomic_int known; /* 0: not asked yet, 1: no, 2: yes */
    int k = atomic_load_explicit(&known, memory_order_relaxed);

    if (k == 0) {
        __builtin_cpu_init();
        k = __builtin_cpu_supports("avx2") ? 2 : 1;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 2;
}
#endif

uint64_t dmahal__verify_hash(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t a[8], b[8];
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, s = 0;
    size_t blocks = n / HASH_BLOCK;

#if defined(__x86_64__) && defined(__GNUC__)
    if (blocks >= 2 && hash_wide())
        hash_sums_v4(c, blocks, a, b);
    else
#endif
        hash_sums_v2(c, blocks, a, b);
    /* Each lane mixed on its own (eight chains of multiplications side by side, not one
     * sixteen long), with a key of its own so that lanes trading places changes the sum. */
    for (int j = 0; j < 8; j++) {
        uint64_t x = (a[j] ^ 0x9e3779b97f4a7c15ull * (uint64_t)(j + 1)) * 0xff51afd7ed558ccdull;

        x ^= x >> 29;
        x = (x ^ b[j]) * 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 32;
        s += x;
    }
    h = (h ^ s) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    for (size_t i = blocks * HASH_BLOCK; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h * 0xc4ceb9fe1a85ec53ull;
}

static uint64_t map_hash(const struct dmahal__verify_map *m)
{
    uint64_t h = 0;

    for (unsigned i = 0; i < m->iovcnt; i++)
        h = h * 31 + dmahal__verify_hash(m->iov[i].iov_base, m->iov[i].iov_len);
    return h;
}

static size_t sgl_size(unsigned nseg)
{
    return sizeof(struct dmahal_sgl) + nseg * sizeof(struct dmahal_seg);
}

static const char *dir_name(enum dmahal_dir dir)
{
    return dir == DMAHAL_TO_DEVICE     ? "to-device"
           : dir == DMAHAL_FROM_DEVICE ? "from-device"
                                       : "bidirectional";
}

/* The segments to check a device access against: the driver's copy may have been changed,
 * and the core's list is freed at unmap, so the verifier's record is the shadow as mapped
 * (restored at unmap from what the core had). */
static const struct dmahal_sgl *segs_of(const struct dmahal__verify_map *m)
{
    return m->unmapped ? m->shadow : m->inner;
}

static void map_name(const struct dmahal__verify_map *m, char *buf, size_t size)
{
    snprintf(buf, size, "%s mapping #%llu of %zu bytes in %u segment(s) (adapter #%llu, device %s)",
             dir_name(m->dir), (unsigned long long)m->seq, m->bytes, segs_of(m)->nseg,
             (unsigned long long)m->owner->id, m->owner->dev_name);
}

static void map_free(struct dmahal__verify_map *m)
{
    free(m->shadow);
    free(m->iov);
    free(m);
}

static void report_map(struct dmahal__verifier *v, int kind, const struct dmahal__verify_map *m,
                       dmahal_addr_t la, size_t len, const char *fmt, const char *what)
{
    struct verify_report r = {.kind = kind, .la = la, .len = len};
    char name[200];

    if (m) {
        map_name(m, name, sizeof(name));
        r.extra_bt = m->map_bt;
        r.extra_what = "mapped by";
        if (m->unmapped) {
            r.extra_bt2 = m->unmap_bt;
            r.extra_what2 = "unmapped by";
        }
    } else
        name[0] = '\0';
    snprintf(r.msg, sizeof(r.msg), fmt, what, name);
    dmahal__verify_emit(v, &r);
}

/* ---- finding lists --------------------------------------------------------------------- */

static size_t map_slot(const struct dmahal__verifier *v, const struct dmahal_sgl *sgl)
{
    uint64_t k = dmahal__hash_ptr(sgl);

    return (size_t)(k >> 32) & (v->map_cap - 1);
}

/* The live mapping whose list (the driver's) is @sgl, or NULL. */
static struct dmahal__verify_map *live_find(const struct dmahal__verifier *v,
                                            const struct dmahal_sgl *sgl)
{
    if (!v->map_cap)
        return NULL;
    for (struct dmahal__verify_map *m = v->map_bucket[map_slot(v, sgl)]; m; m = m->hnext)
        if (m->shadow == sgl)
            return m;
    return NULL;
}

/* Makes room in the hash table for one more live mapping. */
static int live_reserve(struct dmahal__verifier *v)
{
    size_t cap = v->map_cap ? v->map_cap * 2 : 64, old_cap = v->map_cap;
    struct dmahal__verify_map **old = v->map_bucket, **b;

    if (v->nmaps < v->map_cap)
        return 0;
    b = dmahal__verify_malloc(cap * sizeof(*b));
    if (!b)
        return -ENOMEM;
    memset(b, 0, cap * sizeof(*b));
    v->map_bucket = b;
    v->map_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        while (old[i]) {
            struct dmahal__verify_map *m = old[i];
            size_t at = map_slot(v, m->shadow);

            old[i] = m->hnext;
            m->hnext = b[at];
            b[at] = m;
        }
    }
    free(old);
    return 0;
}

static void live_add(struct dmahal__verifier *v, struct dmahal__verify_map *m)
{
    size_t at = map_slot(v, m->shadow);

    m->hnext = v->map_bucket[at];
    v->map_bucket[at] = m;
    m->prev = NULL;
    DMAHAL__LIST_PUSH(v->maps, m, next, prev);
    v->nmaps++;
}

static void live_remove(struct dmahal__verifier *v, struct dmahal__verify_map *m)
{
    struct dmahal__verify_map **pp = &v->map_bucket[map_slot(v, m->shadow)];

    while (*pp != m)
        pp = &(*pp)->hnext;
    *pp = m->hnext;
    DMAHAL__LIST_UNLINK(v->maps, m, next, prev);
    v->nmaps--;
}

/* Keeps a record, with its buffers, for a later mapping: malloc is a good part of the cost. */
static void map_recycle(struct dmahal__verifier *v, struct dmahal__verify_map *m)
{
    if (v->nmap_spare >= UNMAPPED_KEPT) {
        map_free(m);
        return;
    }
    m->hnext = v->map_spare;
    v->map_spare = m;
    v->nmap_spare++;
}

static struct dmahal__verify_map *unmapped_find(struct dmahal__verifier *v,
                                                const struct dmahal_sgl *sgl)
{
    struct dmahal__verify_map *found = NULL;

    /* The newest with that address: a shadow's memory is the verifier's, never reused while
     * it is kept, so this is the list the driver means. */
    for (struct dmahal__verify_map *m = v->unmapped; m; m = m->next)
        if (m->shadow == sgl)
            found = m;
    return found;
}

/* The list must come back as the driver got it: the count and every element. */
static void check_tamper(struct dmahal__verifier *v, const struct dmahal__verify_map *m,
                         const char *when)
{
    const struct dmahal_sgl *orig = m->inner;
    char what[160];
    unsigned i;

    if (m->shadow->nseg != orig->nseg) {
        snprintf(what, sizeof(what), "%s: the list's entry count is %u, it was mapped with %u",
                 when, m->shadow->nseg, orig->nseg);
        report_map(v, DMAHAL_REPORT_SGL_MODIFIED, m, 0, 0, "%s, of %s", what);
        return;
    }
    for (i = 0; i < orig->nseg; i++)
        if (m->shadow->seg[i].la != orig->seg[i].la || m->shadow->seg[i].len != orig->seg[i].len)
            break;
    if (i == orig->nseg)
        return;
    snprintf(what, sizeof(what),
             "%s: element %u is la %#llx len %zu, it was mapped as la %#llx len %zu", when, i,
             (unsigned long long)m->shadow->seg[i].la, m->shadow->seg[i].len,
             (unsigned long long)orig->seg[i].la, orig->seg[i].len);
    report_map(v, DMAHAL_REPORT_SGL_MODIFIED, m, orig->seg[i].la, orig->seg[i].len, "%s, of %s",
               what);
}

/* A to-device mapping belongs to the device from map (or sync_for_device) until unmap (or
 * sync_for_cpu): a CPU write in between is a race, and on a non-coherent machine lost. */
static void check_cpu_write(struct dmahal__verifier *v, struct dmahal__verify_map *m,
                            const char *when)
{
    uint64_t h;

    if (m->dir != DMAHAL_TO_DEVICE || m->cpu_owns)
        return;
    h = map_hash(m);
    if (h == m->hash)
        return;
    m->hash = h; /* once */
    report_map(v, DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS, m, 0, m->bytes,
               "found %s: the CPU wrote into %s while the device owned it (no "
               "dmahal_sync_for_cpu before the write)",
               when);
}

/* ---- map -------------------------------------------------------------------------------- */

static bool ranges_overlap(const struct dmahal__verify_map *x, const struct iovec *iov, unsigned n)
{
    for (unsigned i = 0; i < x->iovcnt; i++)
        for (unsigned j = 0; j < n; j++) {
            uintptr_t a0 = (uintptr_t)x->iov[i].iov_base, a1 = a0 + x->iov[i].iov_len;
            uintptr_t b0 = (uintptr_t)iov[j].iov_base, b1 = b0 + iov[j].iov_len;

            if (iov[j].iov_len && x->iov[i].iov_len && a0 < b1 && b0 < a1)
                return true;
        }
    return false;
}

/* Checks a request's arguments before it goes to the core: the reports the core's refusal
 * deserves. Returns the bytes it asks for. */
static size_t check_args(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                         enum dmahal_dir dir)
{
    struct dmahal__verifier *v = a->verify->v;
    size_t bytes = 0;
    char what[200];

    for (unsigned i = 0; i < iovcnt; i++)
        bytes += iov[i].iov_len;
    if (bytes == 0) {
        snprintf(what, sizeof(what), "a %s mapping of 0 bytes (%u entries) on adapter #%llu",
                 dir_name(dir), iovcnt, (unsigned long long)a->id);
        report_map(v, DMAHAL_REPORT_ZERO_LENGTH_MAP, NULL, 0, 0, "%s%s", what);
    } else if (bytes > a->c.max_transfer) {
        /* The pages these entries span (entries that continue one another share theirs),
         * not the worst case of any transfer of this length. */
        size_t page = a->dev->p->page_size, pages = 0;
        uintptr_t end = 0;

        for (unsigned i = 0; i < iovcnt; i++) {
            uintptr_t s0 = (uintptr_t)iov[i].iov_base, s1 = s0 + iov[i].iov_len;

            if (!iov[i].iov_len)
                continue;
            if (s0 == end && end % page)
                s0 = end - end % page + page;
            if (s1 > s0)
                pages += (DMAHAL__ALIGN_UP(s1, page) - DMAHAL__ALIGN_DOWN(s0, page)) / page;
            end = (uintptr_t)iov[i].iov_base + iov[i].iov_len;
        }
        snprintf(what, sizeof(what),
                 "a %s mapping of %zu bytes, spanning %zu pages, is longer than adapter "
                 "#%llu's max_transfer %zu (%u map registers)",
                 dir_name(dir), bytes, pages, (unsigned long long)a->id, a->c.max_transfer,
                 a->map_registers);
        report_map(v, DMAHAL_REPORT_TOO_MANY_MAP_REGISTERS, NULL, 0, bytes, "%s%s", what);
    }
    return bytes;
}

/* Checks a request of @bytes (not 0) against the live mappings; under v->lock. */
static void check_overlap(struct dmahal__verifier *v, const struct iovec *iov, unsigned iovcnt,
                          enum dmahal_dir dir, size_t bytes)
{
    char what[200];

    for (struct dmahal__verify_map *x = v->maps; x; x = x->next) {
        /* Two readers may share memory; a writer may not share it with anyone. */
        if (x->dir == DMAHAL_TO_DEVICE && dir == DMAHAL_TO_DEVICE)
            continue;
        if (ranges_overlap(x, iov, iovcnt)) {
            snprintf(what, sizeof(what), "a %s mapping of memory already in", dir_name(dir));
            report_map(v, DMAHAL_REPORT_OVERLAPPING_MAPPINGS, x, 0, bytes, "%s %s", what);
            break;
        }
    }
}

/* Checks a request before it goes to the core: its arguments, and the live mappings. */
static void check_request(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                          enum dmahal_dir dir)
{
    struct dmahal__verifier *v = a->verify->v;
    size_t bytes = check_args(a, iov, iovcnt, dir);

    if (bytes == 0)
        return;
    dmahal__lock_take(&v->lock);
    check_overlap(v, iov, iovcnt, dir, bytes);
    dmahal__lock_drop(&v->lock);
}

/* The hash of the memory @iov describes, as map_hash() gives it once recorded. */
static uint64_t iov_hash(const struct iovec *iov, unsigned iovcnt)
{
    uint64_t h = 0;

    for (unsigned i = 0; i < iovcnt; i++)
        h = h * 31 + dmahal__verify_hash(iov[i].iov_base, iov[i].iov_len);
    return h;
}

/* Records a list the core made; returns what the driver gets (the core's own list when the
 * verifier has no memory left for the record). @bt is where it was mapped. With @overlap (the
 * request's bytes, or 0), checks it against the live mappings first, in the same critical
 * section. */
static struct dmahal_sgl *record(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                                 enum dmahal_dir dir, struct dmahal_sgl *inner,
                                 const struct verify_bt_raw *bt, size_t overlap)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    /* Hashed before the lock is taken: other threads need not wait for it. */
    uint64_t hash = dir == DMAHAL_TO_DEVICE ? iov_hash(iov, iovcnt) : 0;
    struct dmahal__verify_map *m;

    dmahal__lock_take(&v->lock);
    if (overlap)
        check_overlap(v, iov, iovcnt, dir, overlap);
    if (live_reserve(v) != 0)
        goto err_unlock;
    m = v->map_spare;
    if (m) {
        v->map_spare = m->hnext;
        v->nmap_spare--;
    } else {
        m = dmahal__verify_malloc(sizeof(*m));
        if (!m)
            goto err_unlock;
        memset(m, 0, sizeof(*m));
    }
    if (m->shadow_cap < inner->nseg) {
        struct dmahal_sgl *shadow = dmahal__verify_realloc(m->shadow, sgl_size(inner->nseg));

        if (!shadow)
            goto err_recycle;
        m->shadow = shadow;
        m->shadow_cap = inner->nseg;
    }
    if (m->iov_cap < iovcnt || !m->iov) {
        struct iovec *copy = dmahal__verify_realloc(m->iov, (iovcnt ? iovcnt : 1) * sizeof(*copy));

        if (!copy)
            goto err_recycle;
        m->iov = copy;
        m->iov_cap = iovcnt ? iovcnt : 1;
    }
    memcpy(m->shadow, inner, sgl_size(inner->nseg));
    memcpy(m->iov, iov, iovcnt * sizeof(*iov));
    m->a = a;
    m->dev = a->dev;
    m->owner = va;
    m->inner = inner;
    m->iovcnt = iovcnt;
    m->bytes = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        m->bytes += iov[i].iov_len;
    m->dir = dir;
    m->cpu_owns = false;
    m->unmapped = false;
    m->hash = hash;
    m->unmap_seq = 0;
    m->map_bt = dmahal__verify_bt_intern(v, bt);
    m->unmap_bt = &dmahal__verify_bt_none;
    m->seq = ++v->nmapped;
    live_add(v, m);
    dmahal__lock_drop(&v->lock);
    return m->shadow;

err_recycle:
    map_recycle(v, m);
err_unlock:
    dmahal__lock_drop(&v->lock);
    dmahal__verify_oom(v, "recording a mapping");
    return inner;
}

int dmahal__verify_map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                       enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out)
{
    struct dmahal__vadapter *va = a->verify;
    struct verify_bt_raw bt;
    size_t bytes;
    int rc;

    if (!atomic_load_explicit(&va->v->on, memory_order_relaxed))
        return va->inner->map(a, iov, iovcnt, dir, flags, out);
    /* The live mappings are checked with the record made (one critical section), or after
     * the core refused the request. */
    bytes = check_args(a, iov, iovcnt, dir);
    rc = va->inner->map(a, iov, iovcnt, dir, flags, out);
    if (rc == 0) {
        verify_bt_capture(va->v, &bt);
        *out = record(a, iov, iovcnt, dir, *out, &bt, bytes);
    } else if (bytes) {
        dmahal__lock_take(&va->v->lock);
        check_overlap(va->v, iov, iovcnt, dir, bytes);
        dmahal__lock_drop(&va->v->lock);
    }
    return rc;
}

/* A deferred request: the driver's callback gets the shadow when the core's list comes. */
struct async_req {
    dmahal_map_fn fn;
    void *ctx;
    struct iovec *iov;
    unsigned iovcnt;
    enum dmahal_dir dir;
};

static void async_done(struct dmahal_adapter *a, int status, struct dmahal_sgl *sgl, void *ctx)
{
    struct async_req *req = ctx;
    struct verify_bt_raw bt;

    if (status == 0 && atomic_load(&a->verify->v->on)) {
        /* Where the list came: the core's completion, and whoever drove it. */
        verify_bt_capture(a->verify->v, &bt);
        sgl = record(a, req->iov, req->iovcnt, req->dir, sgl, &bt, 0);
    }
    req->fn(a, status, sgl, req->ctx);
    free(req->iov);
    free(req);
}

int dmahal__verify_map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                             enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx)
{
    struct dmahal__vadapter *va = a->verify;
    struct async_req *req;
    int rc;

    if (!atomic_load_explicit(&va->v->on, memory_order_relaxed))
        return va->inner->map_async(a, iov, iovcnt, dir, flags, fn, ctx);
    check_request(a, iov, iovcnt, dir);
    req = dmahal__verify_malloc(sizeof(*req));
    if (req)
        req->iov = dmahal__verify_malloc((iovcnt ? iovcnt : 1) * sizeof(*iov));
    if (!req || !req->iov) {
        free(req);
        dmahal__verify_oom(va->v, "recording a deferred mapping");
        return va->inner->map_async(a, iov, iovcnt, dir, flags, fn, ctx);
    }
    *req = (struct async_req){fn, ctx, req->iov, iovcnt, dir};
    memcpy(req->iov, iov, iovcnt * sizeof(*iov));
    rc = va->inner->map_async(a, iov, iovcnt, dir, flags, async_done, req);
    if (rc != 0 && rc != -EINPROGRESS) { /* refused: the callback will not run */
        free(req->iov);
        free(req);
    }
    return rc;
}

/* ---- unmap and sync ------------------------------------------------------------------------- */

/* Finds the live list @sgl of @a, reporting why not; NULL then. Under v->lock. */
static struct dmahal__verify_map *lookup(struct dmahal_adapter *a, struct dmahal_sgl *sgl,
                                         const char *op, int not_mapped_kind)
{
    struct dmahal__verifier *v = a->verify->v;
    struct dmahal__verify_map *m = live_find(v, sgl);
    struct dmahal__verify_map *old;
    char what[160];

    if (m && m->a == a)
        return m;
    if (m) {
        snprintf(what, sizeof(what), "%s through adapter #%llu (device %s) of", op,
                 (unsigned long long)a->id, a->verify->dev_name);
        report_map(v, DMAHAL_REPORT_WRONG_ADAPTER, m, 0, 0, "%s %s", what);
        return NULL;
    }
    old = unmapped_find(v, sgl);
    if (old) {
        snprintf(what, sizeof(what), "%s of a list unmapped %llu unmap(s) ago:", op,
                 (unsigned long long)(v->nunmaps - old->unmap_seq));
        report_map(v,
                   not_mapped_kind == DMAHAL_REPORT_UNMAP_NOT_MAPPED ? DMAHAL_REPORT_DOUBLE_UNMAP
                                                                     : not_mapped_kind,
                   old, 0, 0, "%s %s", what);
        return NULL;
    }
    snprintf(what, sizeof(what),
             "%s of list %p on adapter #%llu (device %s): not a live list (never mapped, or "
             "unmapped long ago)",
             op, (void *)sgl, (unsigned long long)a->id, a->verify->dev_name);
    report_map(v, not_mapped_kind, NULL, 0, 0, "%s%s", what);
    return NULL;
}

/* True if the verifier never saw @sgl and is off: the core's own list, to pass through. */
static bool passthrough(struct dmahal__verifier *v, struct dmahal_sgl *sgl)
{
    return !atomic_load_explicit(&v->on, memory_order_relaxed) && !live_find(v, sgl);
}

int dmahal__verify_unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct dmahal__verify_map *m;
    struct dmahal_sgl *inner;
    struct verify_bt_raw bt;

    verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    if (passthrough(v, sgl)) {
        dmahal__lock_drop(&v->lock);
        return va->inner->unmap(a, sgl);
    }
    m = lookup(a, sgl, "unmap", DMAHAL_REPORT_UNMAP_NOT_MAPPED);
    if (!m) {
        dmahal__lock_drop(&v->lock);
        return -ENOENT;
    }
    check_tamper(v, m, "at unmap");
    check_cpu_write(v, m, "at unmap");
    live_remove(v, m);
    /* The core's list goes with the unmap: its segments stay, in the shadow, for late-DMA
     * checks (as mapped, whatever the driver did to its copy). The record is unmapped before
     * the core unmaps it (one critical section): a device access meanwhile is a use after
     * unmap already. */
    memcpy(m->shadow, m->inner, sgl_size(m->inner->nseg));
    inner = m->inner;
    m->inner = NULL;
    m->unmap_bt = dmahal__verify_bt_intern(v, &bt);
    m->unmapped = true;
    m->unmap_seq = ++v->nunmaps;
    m->next = NULL;
    if (v->unmapped_tail)
        v->unmapped_tail->next = m;
    else
        v->unmapped = m;
    v->unmapped_tail = m;
    if (++v->nunmapped > UNMAPPED_KEPT) {
        struct dmahal__verify_map *old = v->unmapped;

        v->unmapped = old->next;
        v->nunmapped--;
        map_recycle(v, old);
    }
    dmahal__lock_drop(&v->lock);
    return va->inner->unmap(a, inner);
}

static int list_sync(struct dmahal_adapter *a, struct dmahal_sgl *sgl, bool for_cpu)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    const char *op = for_cpu ? "dmahal_sync_for_cpu" : "dmahal_sync_for_device";
    struct dmahal__verify_map *m;
    struct dmahal_sgl *inner;

    dmahal__lock_take(&v->lock);
    if (passthrough(v, sgl)) {
        dmahal__lock_drop(&v->lock);
        return for_cpu ? va->inner->sync_for_cpu(a, sgl) : va->inner->sync_for_device(a, sgl);
    }
    m = lookup(a, sgl, op, DMAHAL_REPORT_SYNC_NOT_MAPPED);
    if (!m) {
        dmahal__lock_drop(&v->lock);
        return -ENOENT;
    }
    check_tamper(v, m, op);
    if (for_cpu) {
        check_cpu_write(v, m, op);
        m->cpu_owns = true;
    } else {
        m->cpu_owns = false;
        if (m->dir == DMAHAL_TO_DEVICE)
            m->hash = map_hash(m);
    }
    inner = m->inner;
    dmahal__lock_drop(&v->lock);
    return for_cpu ? va->inner->sync_for_cpu(a, inner) : va->inner->sync_for_device(a, inner);
}

int dmahal__verify_sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    return list_sync(a, sgl, false);
}

int dmahal__verify_sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    return list_sync(a, sgl, true);
}

/* ---- the device side ------------------------------------------------------------------------ */

/* Bytes of [la, la + len) covered by @m's segments from la on; 0 if la is in none. */
static size_t covered(const struct dmahal__verify_map *m, dmahal_addr_t la, size_t len)
{
    const struct dmahal_sgl *s = segs_of(m);
    size_t done = 0;
    bool progress = true;

    while (done < len && progress) {
        progress = false;
        for (unsigned i = 0; i < s->nseg; i++) {
            dmahal_addr_t at = la + done;

            if (at >= s->seg[i].la && at < s->seg[i].la + s->seg[i].len) {
                size_t n = (size_t)(s->seg[i].la + s->seg[i].len - at);

                done += n < len - done ? n : len - done;
                progress = true;
                break;
            }
        }
    }
    return done;
}

bool dmahal__verify_stream_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                                      dmahal_addr_t la, size_t len, bool write,
                                      struct verify_report *r)
{
    char name[200];

    for (struct dmahal__verify_map *m = v->maps; m; m = m->next) {
        size_t n;

        if (m->dev != d || (n = covered(m, la, len)) == 0)
            continue;
        r->extra_bt = m->map_bt;
        r->extra_what = "mapped by";
        r->dedup = m->seq << 1 | 1;
        r->dedup_dev = d;
        if (n < len) {
            map_name(m, name, sizeof(name)); /* named only for a report: accesses are many */
            r->kind = DMAHAL_REPORT_DEV_OUT_OF_BOUNDS;
            snprintf(r->msg, sizeof(r->msg),
                     "device %s %s %zu byte(s) at la %#llx: runs %zu byte(s) past the segments "
                     "of %s",
                     d->name, write ? "writes" : "reads", len, (unsigned long long)la, len - n,
                     name);
            dmahal__verify_add_activity(d, r);
        } else if (write && m->dir == DMAHAL_TO_DEVICE) {
            map_name(m, name, sizeof(name));
            r->kind = DMAHAL_REPORT_DEV_WRITE_TO_DEVICE;
            snprintf(r->msg, sizeof(r->msg), "device %s writes %zu byte(s) at la %#llx into %s",
                     d->name, len, (unsigned long long)la, name);
        } else if (!write && m->dir == DMAHAL_TO_DEVICE && !m->cpu_owns) {
            uint64_t h = map_hash(m);

            if (h != m->hash) {
                m->hash = h;
                map_name(m, name, sizeof(name));
                r->kind = DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS;
                snprintf(r->msg, sizeof(r->msg),
                         "device %s reads %s, which the CPU wrote after it was mapped "
                         "(no dmahal_sync_for_cpu/dmahal_sync_for_device around the write)",
                         d->name, name);
            }
        }
        return true;
    }
    for (struct dmahal__verify_map *m = v->unmapped; m; m = m->next) {
        if (m->dev != d || covered(m, la, len) == 0)
            continue;
        map_name(m, name, sizeof(name));
        r->kind = DMAHAL_REPORT_DEV_USE_AFTER_UNMAP;
        r->dedup = m->seq << 1 | 1;
        r->dedup_dev = d;
        r->extra_bt = m->map_bt;
        r->extra_what = "mapped by";
        r->extra_bt2 = m->unmap_bt;
        r->extra_what2 = "unmapped by";
        snprintf(r->msg, sizeof(r->msg),
                 "device %s %s %zu byte(s) at la %#llx in %s, unmapped %llu unmap(s) ago", d->name,
                 write ? "writes" : "reads", len, (unsigned long long)la, name,
                 (unsigned long long)(v->nunmaps - m->unmap_seq));
        dmahal__verify_add_activity(d, r);
        return true;
    }
    return false;
}

/* ---- the adapter and the buffers ------------------------------------------------------------ */

void dmahal__verify_stream_forget_adapter(struct dmahal__verifier *v, struct dmahal_adapter *a)
{
    struct dmahal__verify_map **pp, *next;

    for (struct dmahal__verify_map *m = v->maps; m; m = next) {
        next = m->next;
        if (m->a != a)
            continue;
        report_map(v, DMAHAL_REPORT_MAP_LEAK, m, 0, m->bytes,
                   "%sleak: adapter put with %s still mapped", "");
        live_remove(v, m);
        map_free(m);
    }
    v->unmapped_tail = NULL;
    for (pp = &v->unmapped; *pp;) {
        struct dmahal__verify_map *m = *pp;

        if (m->a == a) {
            *pp = m->next;
            v->nunmapped--;
            map_free(m);
        } else {
            v->unmapped_tail = m;
            pp = &m->next;
        }
    }
}

void dmahal__verify_stream_check_free(struct dmahal__verifier *v, const struct verify_rec *rec)
{
    struct iovec buf = {rec->user.va, rec->user.len};
    char what[200];

    for (struct dmahal__verify_map *m = v->maps; m; m = m->next) {
        if (!ranges_overlap(m, &buf, 1))
            continue;
        dmahal__verify_rec_name(rec, what, sizeof(what));
        report_map(v, DMAHAL_REPORT_FREED_WHILE_MAPPED, m, rec->user.la, rec->user.len,
                   "free of %s while it is in %s", what);
        return;
    }
}

void dmahal__verify_stream_fini(struct dmahal__verifier *v)
{
    while (v->maps) {
        struct dmahal__verify_map *m = v->maps;

        v->maps = m->next;
        map_free(m);
    }
    while (v->unmapped) {
        struct dmahal__verify_map *m = v->unmapped;

        v->unmapped = m->next;
        map_free(m);
    }
    while (v->map_spare) {
        struct dmahal__verify_map *m = v->map_spare;

        v->map_spare = m->hnext;
        map_free(m);
    }
    free(v->map_bucket);
}

size_t dmahal__verify_stream_dump(struct dmahal__verifier *v, struct dmahal_adapter *a, FILE *f)
{
    char name[200];
    size_t n = 0;

    dmahal__lock_take(&v->lock);
    for (struct dmahal__verify_map *m = v->maps; m; m = m->next) {
        const struct dmahal_sgl *s = segs_of(m);

        if (m->a != a)
            continue;
        n++;
        map_name(m, name, sizeof(name));
        fprintf(f, "      %s%s\n", name, m->cpu_owns ? ", CPU owns it" : "");
        for (unsigned i = 0; i < s->nseg; i++)
            fprintf(f, "        la 0x%012llx len %zu\n", (unsigned long long)s->seg[i].la,
                    s->seg[i].len);
        fprintf(f, "        mapped by:\n");
        dmahal__verify_bt_print(f, "          ", m->map_bt);
    }
    dmahal__lock_drop(&v->lock);
    return n;
}
