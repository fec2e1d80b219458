/* SPDX-License-Identifier: MIT */
/*
 * fuzz.c - a model-based fuzzer of the public API (dmahal.h, and the Windows names of wdm.h).
 *
 * Each run opens a random simulated machine (RAM only low, only above 4 GiB, a tiny one;
 * IOMMU on or off; coherent or not; the verifier on or off), random adapters, and makes a
 * random sequence of calls: common buffers allocated, written, synced, read by the device
 * and freed; transfers mapped (waiting never: DMAHAL_MAP_NOWAIT or dmahal_map_async),
 * written and read by the device, synced and unmapped; adapters put with work still live;
 * bad calls of every kind. A model of what is live checks every result against what the
 * headers promise: the constraints of every logical address, zeroed buffers, the data
 * through coherent, non-coherent and bounced paths, error codes and cleared
 * out-parameters, no two live buffers overlapping in a device's address space, and
 * faults where the IOMMU must give them.
 *
 *   dmahal_fuzz [--seed N] [--runs N] [--ops N] [--seconds S] [--threads N]
 *               [--verify on|off] [--quiet]
 *
 * Without --seed the seed comes from the clock, and is printed first: a failing run prints
 * its seed, and "--seed N" with the same other options replays it exactly (the threaded
 * mode replays each thread's calls, not how the threads interleave).
 */
#include <dmahal/wdm.h>

#include <dmahal/dmahal.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADAPTERS  4
#define MAX_BUFS      24
#define MAX_MAPS      16
#define PAGE          4096u
#define ALIGN_PAGE(x) (((x) + PAGE - 1) & ~(size_t)(PAGE - 1))

/* ---- options, randomness, failure ---------------------------------------------------------- */

static struct {
    uint64_t seed;
    unsigned runs, ops, threads;
    double seconds;
    bool quiet;
    int verify; /* -1: each run picks; 0 off; 1 on */
} opt = {.runs = 40, .ops = 400, .threads = 1, .seconds = 0, .verify = -1};

static _Atomic bool failed;

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    /* splitmix64: one 64-bit state, every seed a good one. */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned below(struct rng *r, unsigned n)
{
    return n ? (unsigned)(rnd(r) % n) : 0;
}

static bool chance(struct rng *r, unsigned percent)
{
    return below(r, 100) < percent;
}

/* What one sequence of calls runs on: for the failure message. */
struct ctx {
    struct rng r;
    uint64_t run_seed;
    unsigned thread, op;
    const char *spec;
    bool verify;
    const char *last; /* the operation under way */
};

static void fail(const struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(const struct ctx *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr,
            "dmahal_fuzz: FAILED: seed %" PRIu64 " (run seed %#" PRIx64
            "), thread %u, op %u (%s), machine \"%s\", verifier %s:\n  ",
            opt.seed, c->run_seed, c->thread, c->op, c->last ? c->last : "-", c->spec,
            c->verify ? "on" : "off");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr,
            "\n  replay: dmahal_fuzz --seed %" PRIu64 " --runs %u --ops %u --threads %u%s\n",
            opt.seed, opt.runs, opt.ops, opt.threads,
            opt.verify < 0 ? ""
            : opt.verify   ? " --verify on"
                           : " --verify off");
    atomic_store(&failed, true);
    abort();
}

#define EXPECT(c, cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail((c), __VA_ARGS__);                                                                \
    } while (0)

#define EXPECT_RC(c, got, want)                                                                    \
    do {                                                                                           \
        int got_ = (got), want_ = (want);                                                          \
        if (got_ != want_)                                                                         \
            fail((c), "%s: got %d (%s), expected %d (%s)", #got, got_, dmahal_strerror(got_),      \
                 want_, dmahal_strerror(want_));                                                   \
    } while (0)

/* ---- the model --------------------------------------------------------------------------------
 */

struct madapter {
    struct dmahal_adapter *a;
    struct dmahal_desc d; /* as the adapter reports it */
    bool coherent;        /* the adapter's device snoops (platform or description) */
};

struct mbuf {
    bool live;
    unsigned ai;
    struct dmahal_buf b;
    bool cached;
};

struct mmap {
    int state; /* 0 free, 1 live, 2 queued (map_async) */
    unsigned ai;
    enum dmahal_dir dir;
    struct dmahal_sgl *sgl;
    unsigned char *host; /* the driver's memory (malloc'd), len + slack */
    size_t off, len;
    struct iovec iov[3];
    unsigned iovcnt;
    unsigned char *want; /* what the driver's bytes must be at unmap */
    bool cpu_owns;       /* between sync_for_cpu and sync_for_device */
    int status;          /* of the async completion */
    unsigned regs;       /* bounce pages it took */
    size_t dev_wrote;    /* bytes the device wrote last */
};

struct world {
    struct ctx *c;
    bool shared; /* other threads use the machine too: checks of the whole machine are off */
    struct dmahal_platform *p;
    struct dmahal_device *d;
    bool iommu, coherent_machine, low_only, verify;
    struct madapter ad[MAX_ADAPTERS];
    unsigned nad;
    struct mbuf bufs[MAX_BUFS];
    struct mmap maps[MAX_MAPS];
};

static uint64_t max_addr(const struct dmahal_desc *d)
{
    return d->addr_bits >= 64 ? UINT64_MAX : (UINT64_C(1) << d->addr_bits) - 1;
}

/* The constraints every logical range handed out must meet (a common buffer's, an
 * element's). */
static void check_range(struct world *w, const struct dmahal_desc *d, uint64_t la, size_t len,
                        bool element)
{
    struct ctx *c = w->c;

    EXPECT(c, len > 0, "a range of 0 bytes at %#" PRIx64, la);
    EXPECT(c, la + len - 1 >= la && la + len - 1 <= max_addr(d),
           "range %#" PRIx64 "+%zu beyond the adapter's %u address bits", la, len, d->addr_bits);
    EXPECT(c, (la & (d->alignment - 1)) == 0, "range %#" PRIx64 " not aligned to %zu", la,
           d->alignment);
    if (d->boundary)
        EXPECT(c, la / d->boundary == (la + len - 1) / d->boundary,
               "range %#" PRIx64 "+%zu crosses a multiple of the boundary %#" PRIx64, la, len,
               d->boundary);
    if (element && d->max_segment)
        EXPECT(c, len <= d->max_segment, "element of %zu bytes above max_segment %zu", len,
               d->max_segment);
}

/* No live range of the device's address space overlaps another: buffers and elements. */
static void check_no_overlap(struct world *w, uint64_t la, size_t len, const void *self)
{
    struct ctx *c = w->c;

    for (unsigned i = 0; i < MAX_BUFS; i++) {
        const struct mbuf *b = &w->bufs[i];

        if (!b->live || b == self)
            continue;
        EXPECT(c, la + len <= b->b.la || b->b.la + b->b.len <= la,
               "range %#" PRIx64 "+%zu overlaps live buffer %#" PRIx64 "+%zu", la, len, b->b.la,
               b->b.len);
    }
    for (unsigned i = 0; i < MAX_MAPS; i++) {
        const struct mmap *m = &w->maps[i];

        if (m->state != 1 || m == self)
            continue;
        for (unsigned k = 0; k < m->sgl->nseg; k++) {
            uint64_t s = m->sgl->seg[k].la;
            size_t n = m->sgl->seg[k].len;

            EXPECT(c, la + len <= s || s + n <= la,
                   "range %#" PRIx64 "+%zu overlaps a live list's element %#" PRIx64 "+%zu", la,
                   len, s, n);
        }
    }
}

static void pattern(unsigned char *p, size_t n, uint64_t seed)
{
    struct rng r = {seed};
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v = rnd(&r);

        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (unsigned char)rnd(&r);
}

/* ---- common buffers ---------------------------------------------------------------------------
 */

static struct mbuf *pick_buf(struct world *w, bool live)
{
    unsigned start = below(&w->c->r, MAX_BUFS);

    for (unsigned k = 0; k < MAX_BUFS; k++) {
        struct mbuf *b = &w->bufs[(start + k) % MAX_BUFS];

        if (b->live == live)
            return b;
    }
    return NULL;
}

static size_t rand_len(struct rng *r)
{
    static const size_t lens[] = {1,    15,   16,   64,    100,   512,   2048,   4095,
                                  4096, 4097, 8192, 12288, 65536, 65537, 200000, 1u << 20};

    return lens[below(r, sizeof(lens) / sizeof(lens[0]))];
}

static void op_alloc(struct world *w)
{
    struct ctx *c = w->c;
    struct mbuf *b = pick_buf(w, false);
    struct madapter *ma = &w->ad[below(&c->r, w->nad)];
    size_t len = rand_len(&c->r);
    unsigned flags = chance(&c->r, 40) ? DMAHAL_CACHED : 0;
    struct dmahal_buf out;
    int rc;

    c->last = "dmahal_common_alloc";
    if (!b)
        return;
    memset(&out, 0xa5, sizeof(out));
    rc = dmahal_common_alloc(ma->a, len, flags, &out);
    if (rc) {
        EXPECT(c, rc == -ENOMEM || (rc == -E2BIG && ma->d.boundary && len > ma->d.boundary),
               "dmahal_common_alloc(%zu) failed with %d (%s)", len, rc, dmahal_strerror(rc));
        EXPECT(c, !out.va && !out.la && !out.len, "out not cleared on failure");
        return;
    }
    EXPECT(c, out.len == len && out.va, "dmahal_common_alloc gave len %zu for %zu", out.len, len);
    check_range(w, &ma->d, out.la, len, false);
    if (len >= PAGE)
        EXPECT(c, (out.la & (PAGE - 1)) == 0 && ((uintptr_t)out.va & (PAGE - 1)) == 0,
               "a buffer of a page or more not page-aligned (la %#" PRIx64 ")", out.la);
    for (size_t i = 0; i < len; i++)
        EXPECT(c, ((unsigned char *)out.va)[i] == 0, "byte %zu of a new buffer is %#x, not 0", i,
               ((unsigned char *)out.va)[i]);
    check_no_overlap(w, out.la, len, NULL);
    *b = (struct mbuf){.live = true, .ai = (unsigned)(ma - w->ad), .b = out, .cached = flags != 0};
}

/* The CPU writes, the device reads; the device writes, the CPU reads: through syncs where a
 * cached buffer on a device that does not snoop needs them, and none otherwise. */
static void op_buf_data(struct world *w)
{
    struct ctx *c = w->c;
    struct mbuf *b = pick_buf(w, true);
    struct madapter *ma;
    unsigned char tmp[256], back[256];
    size_t off, n;
    bool sync;

    c->last = "common buffer data";
    if (!b)
        return;
    ma = &w->ad[b->ai];
    sync = b->cached && !ma->coherent;
    off = below(&c->r, (unsigned)b->b.len);
    n = b->b.len - off < sizeof(tmp) ? b->b.len - off : sizeof(tmp);
    pattern(tmp, n, rnd(&c->r));
    memcpy((char *)b->b.va + off, tmp, n);
    if (sync || chance(&c->r, 30))
        EXPECT_RC(c, dmahal_common_sync(ma->a, &b->b, off, n, DMAHAL_TO_DEVICE), 0);
    EXPECT_RC(c, dmahal_dev_read(w->d, b->b.la + off, back, n), 0);
    EXPECT(c, memcmp(back, tmp, n) == 0, "the device read other bytes than the CPU wrote at %zu",
           off);
    pattern(tmp, n, rnd(&c->r));
    EXPECT_RC(c, dmahal_dev_write(w->d, b->b.la + off, tmp, n), 0);
    if (sync || chance(&c->r, 30))
        EXPECT_RC(c, dmahal_common_sync(ma->a, &b->b, off, n, DMAHAL_FROM_DEVICE), 0);
    EXPECT(c, memcmp((char *)b->b.va + off, tmp, n) == 0,
           "the CPU read other bytes than the device wrote at %zu", off);
}

static void op_free(struct world *w)
{
    struct ctx *c = w->c;
    struct mbuf *b = pick_buf(w, true);
    struct madapter *ma;
    struct dmahal_buf bad;

    c->last = "dmahal_common_free";
    if (!b)
        return;
    ma = &w->ad[b->ai];
    if (chance(&c->r, 20)) {
        /* A free that matches nothing frees nothing: the buffer stays live. */
        bad = b->b;
        bad.len += 1 + below(&c->r, 100);
        EXPECT_RC(c, dmahal_common_free(ma->a, &bad), -EINVAL);
        bad = b->b;
        bad.la ^= PAGE;
        EXPECT_RC(c, dmahal_common_free(ma->a, &bad), -EINVAL);
        for (unsigned i = 0; i < w->nad; i++)
            if (&w->ad[i] != ma)
                EXPECT_RC(c, dmahal_common_free(w->ad[i].a, &b->b), -EINVAL);
    }
    EXPECT_RC(c, dmahal_common_free(ma->a, &b->b), 0);
    b->live = false;
    /* Gone for every call that names it. */
    EXPECT_RC(c, dmahal_common_free(ma->a, &b->b), -EINVAL);
    EXPECT_RC(c, dmahal_common_sync(ma->a, &b->b, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
}

/* ---- streaming maps ---------------------------------------------------------------------------
 */

static struct mmap *pick_map(struct world *w, int state)
{
    unsigned start = below(&w->c->r, MAX_MAPS);

    for (unsigned k = 0; k < MAX_MAPS; k++) {
        struct mmap *m = &w->maps[(start + k) % MAX_MAPS];

        if (m->state == state)
            return m;
    }
    return NULL;
}

/* Bounce pages any adapter holds: while none does, a map cannot be short of them. */
static unsigned regs_in_use(struct world *w)
{
    unsigned n = 0;

    for (unsigned i = 0; i < w->nad; i++)
        n += dmahal_adapter_map_registers_in_use(w->ad[i].a);
    return n;
}

static bool queued_any(struct world *w)
{
    for (unsigned i = 0; i < MAX_MAPS; i++)
        if (w->maps[i].state == 2)
            return true;
    return false;
}

/* Whether some layout could need more elements than the adapter takes: then -E2BIG is an
 * answer the header allows for a transfer within max_transfer. */
static bool layout_may_not_fit(const struct madapter *ma, size_t len, unsigned iovcnt)
{
    /* An element ends where the next one can start: max_segment rounded down to the
     * alignment. */
    uint64_t unit =
        ma->d.max_segment ? ma->d.max_segment & ~(uint64_t)(ma->d.alignment - 1) : UINT64_MAX;

    if (ma->d.boundary && ma->d.boundary < unit)
        unit = ma->d.boundary;
    if (ma->d.virt_boundary)
        return true;
    if (unit == UINT64_MAX)
        return false;
    return len / unit + 2 * iovcnt + (ma->d.boundary ? len / ma->d.boundary + 2 : 0) >
           ma->d.max_segments;
}

static void map_gather_check(struct world *w, struct mmap *m, const char *when)
{
    struct ctx *c = w->c;
    size_t at = 0;
    unsigned char *seen;

    if (!(m->dir & DMAHAL_TO_DEVICE))
        return;
    seen = malloc(m->len);
    EXPECT(c, seen != NULL, "out of memory");
    for (unsigned k = 0; k < m->sgl->nseg; k++) {
        EXPECT_RC(c, dmahal_dev_read(w->d, m->sgl->seg[k].la, seen + at, m->sgl->seg[k].len), 0);
        at += m->sgl->seg[k].len;
    }
    EXPECT(c, memcmp(seen, m->want, m->len) == 0, "the device read other bytes than mapped %s",
           when);
    free(seen);
}

/* A list handed out: its constraints, its length, no overlap, what the device reads. */
static void map_accept(struct world *w, struct mmap *m, struct dmahal_sgl *sgl)
{
    struct ctx *c = w->c;
    struct madapter *ma = &w->ad[m->ai];
    size_t total = 0;

    m->sgl = sgl;
    EXPECT(c, sgl && sgl->nseg >= 1 && sgl->nseg <= ma->d.max_segments,
           "a list of %u elements for max_segments %u", sgl ? sgl->nseg : 0, ma->d.max_segments);
    for (unsigned k = 0; k < sgl->nseg; k++) {
        check_range(w, &ma->d, sgl->seg[k].la, sgl->seg[k].len, true);
        check_no_overlap(w, sgl->seg[k].la, sgl->seg[k].len, m);
        total += sgl->seg[k].len;
    }
    EXPECT(c, total == m->len, "a list of %zu bytes for a transfer of %zu", total, m->len);
    m->state = 1;
    m->cpu_owns = false;
    m->regs = dmahal_adapter_map_registers_in_use(ma->a);
    map_gather_check(w, m, "at map");
}

static void on_mapped(struct dmahal_adapter *a, int status, struct dmahal_sgl *sgl, void *ctx)
{
    struct mmap *m = ctx;

    (void)a;
    m->status = status;
    if (status == 0)
        m->sgl = sgl;
    m->state = status == 0 ? 3 : 4; /* completed: the model takes it in after the call */
}

static void map_release_host(struct mmap *m)
{
    free(m->host);
    free(m->want);
    memset(m, 0, sizeof(*m));
}

/* Completions that ran inside a call (queued requests granted by an unmap, cancelled by a
 * put): taken into the model. */
static void map_settle(struct world *w)
{
    for (unsigned i = 0; i < MAX_MAPS; i++) {
        struct mmap *m = &w->maps[i];

        if (m->state == 3)
            map_accept(w, m, m->sgl);
        else if (m->state == 4) {
            EXPECT(w->c, m->status == -ECANCELED || m->status == -E2BIG || m->status == -ENOMEM,
                   "a queued request completed with %d (%s)", m->status,
                   dmahal_strerror(m->status));
            map_release_host(m);
        }
    }
}

static void op_map(struct world *w, bool async)
{
    struct ctx *c = w->c;
    struct mmap *m = pick_map(w, 0);
    struct madapter *ma = &w->ad[below(&c->r, w->nad)];
    size_t cap = ma->d.max_transfer < (256u << 10) ? ma->d.max_transfer : (256u << 10);
    struct dmahal_sgl *sgl = (struct dmahal_sgl *)&sgl;
    unsigned held;
    int rc;

    c->last = async ? "dmahal_map_async" : "dmahal_map";
    if (!m)
        return;
    memset(m, 0, sizeof(*m));
    m->ai = (unsigned)(ma - w->ad);
    m->dir = (enum dmahal_dir)(1 + below(&c->r, 3));
    m->len = 1 + below(&c->r, (unsigned)cap + (chance(&c->r, 5) ? PAGE : 0));
    if (chance(&c->r, 30))
        m->len = ALIGN_PAGE(m->len);
    m->off = chance(&c->r, 50) ? 0 : below(&c->r, 2 * PAGE);
    m->host = aligned_alloc(PAGE, ALIGN_PAGE(m->off + m->len + 3 * PAGE));
    m->want = malloc(m->len);
    EXPECT(c, m->host && m->want, "out of memory");
    pattern(m->host, m->off + m->len + 3 * PAGE, rnd(&c->r));
    /* One piece, or up to three with gaps between them (scattered memory). */
    m->iovcnt = m->len >= 3 && chance(&c->r, 40) ? 2 + below(&c->r, 2) : 1;
    {
        size_t at = m->off, left = m->len;

        for (unsigned k = 0; k < m->iovcnt; k++) {
            size_t n = k + 1 == m->iovcnt
                           ? left
                           : 1 + below(&c->r, (unsigned)(left - (m->iovcnt - k - 1)));

            m->iov[k] = (struct iovec){m->host + at, n};
            memcpy(m->want + (m->len - left), m->host + at, n);
            at += n + below(&c->r, PAGE);
            left -= n;
        }
    }
    held = regs_in_use(w);
    if (async) {
        m->state = 2;
        rc = dmahal_map_async(ma->a, m->iov, m->iovcnt, m->dir,
                              chance(&c->r, 30) ? DMAHAL_MAP_NOWAIT : 0, on_mapped, m);
        if (rc == -EINPROGRESS) {
            EXPECT(c, m->state == 2, "the callback ran for a queued request");
            return;
        }
        if (rc == 0) {
            EXPECT(c, m->state == 3, "dmahal_map_async returned 0 but its callback did not run");
            map_accept(w, m, m->sgl);
            return;
        }
        EXPECT(c, m->state == 2, "the callback ran for a request that failed with %d", rc);
        sgl = NULL;
    } else {
        rc = dmahal_map(ma->a, m->iov, m->iovcnt, m->dir, DMAHAL_MAP_NOWAIT, &sgl);
        if (rc == 0) {
            map_accept(w, m, sgl);
            return;
        }
        EXPECT(c, sgl == NULL, "out not cleared by a failed dmahal_map (%d)", rc);
    }
    if (m->len > ma->d.max_transfer)
        EXPECT_RC(c, rc, -E2BIG);
    else if (rc == -ENOSPC)
        EXPECT(c, held > 0 || queued_any(w) || w->shared || w->iommu,
               "-ENOSPC with no bounce page held by any adapter (%zu bytes, adapter %u)", m->len,
               m->ai);
    else if (rc == -E2BIG)
        EXPECT(c, layout_may_not_fit(ma, m->len, m->iovcnt) || m->len > (16u << 20),
               "-E2BIG for %zu bytes in %u pieces on an adapter of max_transfer %zu, "
               "max_segments %u, max_segment %zu, boundary %#" PRIx64 ", alignment %zu",
               m->len, m->iovcnt, ma->d.max_transfer, ma->d.max_segments, ma->d.max_segment,
               ma->d.boundary, ma->d.alignment);
    else
        EXPECT(c, rc == -ENOMEM || rc == -ENOTSUP, "dmahal_map failed with %d (%s)", rc,
               dmahal_strerror(rc));
    map_release_host(m);
}

/* The device works on a live transfer: reads what it may, writes part of what it may; and
 * with an IOMMU, what the direction forbids faults. */
static void op_map_device(struct world *w)
{
    struct ctx *c = w->c;
    struct mmap *m = pick_map(w, 1);
    unsigned char *data;
    size_t n, at = 0;

    c->last = "device access to a list";
    if (!m || m->cpu_owns)
        return;
    if (m->dir & DMAHAL_FROM_DEVICE) {
        /* A prefix only: the rest must come back as the driver left it. */
        n = 1 + below(&c->r, (unsigned)m->len);
        data = malloc(n);
        EXPECT(c, data != NULL, "out of memory");
        pattern(data, n, rnd(&c->r));
        for (unsigned k = 0; k < m->sgl->nseg && at < n; k++) {
            size_t piece = m->sgl->seg[k].len < n - at ? m->sgl->seg[k].len : n - at;

            EXPECT_RC(c, dmahal_dev_write(w->d, m->sgl->seg[k].la, data + at, piece), 0);
            at += piece;
        }
        memcpy(m->want, data, n);
        m->dev_wrote = n;
        free(data);
    } else if (w->iommu) {
        unsigned char x = 0;

        EXPECT_RC(c, dmahal_dev_write(w->d, m->sgl->seg[0].la, &x, 1), -EFAULT);
    }
    if (m->dir == DMAHAL_FROM_DEVICE && w->iommu) {
        unsigned char x;

        EXPECT_RC(c, dmahal_dev_read(w->d, m->sgl->seg[0].la, &x, 1), -EFAULT);
    }
    if (m->dir & DMAHAL_TO_DEVICE)
        map_gather_check(w, m, "during the transfer");
}

/* The CPU takes the transfer back (sync_for_cpu), looks, changes it, gives it back. */
static void op_map_sync(struct world *w)
{
    struct ctx *c = w->c;
    struct mmap *m = pick_map(w, 1);
    struct madapter *ma;
    size_t at = 0;

    c->last = "dmahal_sync_for_cpu / dmahal_sync_for_device";
    if (!m)
        return;
    ma = &w->ad[m->ai];
    if (!m->cpu_owns) {
        EXPECT_RC(c, dmahal_sync_for_cpu(ma->a, m->sgl), 0);
        m->cpu_owns = true;
        if (m->dir & DMAHAL_FROM_DEVICE)
            for (unsigned k = 0; k < m->iovcnt; k++) {
                EXPECT(c, memcmp(m->iov[k].iov_base, m->want + at, m->iov[k].iov_len) == 0,
                       "after sync_for_cpu the driver's piece %u is not what the device wrote", k);
                at += m->iov[k].iov_len;
            }
        return;
    }
    /* The CPU writes its buffer, then hands it to the device. */
    for (unsigned k = 0; k < m->iovcnt; k++) {
        pattern(m->iov[k].iov_base, m->iov[k].iov_len, rnd(&c->r));
        memcpy(m->want + at, m->iov[k].iov_base, m->iov[k].iov_len);
        at += m->iov[k].iov_len;
    }
    EXPECT_RC(c, dmahal_sync_for_device(ma->a, m->sgl), 0);
    m->cpu_owns = false;
    map_gather_check(w, m, "after sync_for_device");
}

static void op_unmap(struct world *w)
{
    struct ctx *c = w->c;
    struct mmap *m = pick_map(w, 1);
    struct madapter *ma;
    struct dmahal_sgl *sgl;
    uint64_t la;
    size_t at = 0;

    c->last = "dmahal_unmap";
    if (!m)
        return;
    ma = &w->ad[m->ai];
    sgl = m->sgl;
    la = sgl->seg[0].la;
    (void)ma;
    for (unsigned i = 0; i < w->nad; i++)
        if (&w->ad[i] != ma)
            EXPECT_RC(c, dmahal_unmap(w->ad[i].a, sgl), -ENOENT);
    EXPECT_RC(c, dmahal_unmap(ma->a, sgl), 0);
    m->state = 0;
    for (unsigned k = 0; k < m->iovcnt; k++) {
        const unsigned char *got = m->iov[k].iov_base;

        for (size_t i = 0; i < m->iov[k].iov_len; i++)
            EXPECT(c, got[i] == m->want[at + i],
                   "after unmap (%s, %zu bytes in %u pieces, %u bounce pages, device wrote "
                   "%zu) byte %zu of the transfer is %#x, not %#x",
                   m->dir == DMAHAL_TO_DEVICE     ? "to-device"
                   : m->dir == DMAHAL_FROM_DEVICE ? "from-device"
                                                  : "bidirectional",
                   m->len, m->iovcnt, m->regs, m->dev_wrote, at + i, got[i], m->want[at + i]);
        at += m->iov[k].iov_len;
    }
    /* The list is gone: every call naming it is refused without touching it. */
    EXPECT_RC(c, dmahal_unmap(ma->a, sgl), -ENOENT);
    EXPECT_RC(c, dmahal_sync_for_cpu(ma->a, sgl), -ENOENT);
    EXPECT_RC(c, dmahal_sync_for_device(ma->a, sgl), -ENOENT);
    map_release_host(m);
    map_settle(w);
    /* With an IOMMU the device is out of that memory now (unless a granted request took the
     * same addresses back). */
    if (w->iommu && !w->shared && !pick_map(w, 1)) {
        unsigned char x;
        bool in_buf = false;

        for (unsigned i = 0; i < MAX_BUFS; i++)
            if (w->bufs[i].live && la >= w->bufs[i].b.la && la < w->bufs[i].b.la + w->bufs[i].b.len)
                in_buf = true;
        if (!in_buf)
            EXPECT_RC(c, dmahal_dev_read(w->d, la, &x, 1), -EFAULT);
    }
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void op_bad(struct world *w)
{
    struct ctx *c = w->c;
    struct madapter *ma = &w->ad[below(&c->r, w->nad)];
    unsigned char b[64];
    struct iovec iov = {b, sizeof(b)}, zero = {b, 0}, nul = {NULL, 16};
    struct dmahal_sgl *sgl = (struct dmahal_sgl *)&sgl;
    struct dmahal_sgl fake = {0};
    struct dmahal_buf out, none = {b, 0x1000, sizeof(b)};

    c->last = "bad input";
    switch (below(&c->r, 12)) {
    case 0:
        EXPECT_RC(c, dmahal_map(ma->a, NULL, 1, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
        EXPECT(c, sgl == NULL, "out not cleared");
        break;
    case 1:
        EXPECT_RC(c, dmahal_map(ma->a, &iov, 1, (enum dmahal_dir)(4 + below(&c->r, 100)), 0, &sgl),
                  -EINVAL);
        EXPECT(c, sgl == NULL, "out not cleared");
        break;
    case 2:
        EXPECT_RC(c, dmahal_map(ma->a, &iov, 1, DMAHAL_TO_DEVICE, 0x100u << below(&c->r, 20), &sgl),
                  -EINVAL);
        break;
    case 3:
        EXPECT_RC(c, dmahal_map(ma->a, &zero, 1, DMAHAL_FROM_DEVICE, 0, &sgl), -EINVAL);
        EXPECT_RC(c, dmahal_map(ma->a, &nul, 1, DMAHAL_FROM_DEVICE, 0, &sgl), -EINVAL);
        break;
    case 4:
        EXPECT_RC(c, dmahal_unmap(ma->a, &fake), -ENOENT);
        EXPECT_RC(c, dmahal_sync_for_cpu(ma->a, &fake), -ENOENT);
        EXPECT_RC(c, dmahal_sync_for_device(ma->a, &fake), -ENOENT);
        EXPECT_RC(c, dmahal_unmap(ma->a, NULL), -EINVAL);
        break;
    case 5:
        memset(&out, 0x5a, sizeof(out));
        EXPECT_RC(c, dmahal_common_alloc(ma->a, 0, 0, &out), -EINVAL);
        EXPECT(c, !out.va && !out.la && !out.len, "out not cleared");
        EXPECT_RC(c, dmahal_common_alloc(ma->a, 64, 0x10u << below(&c->r, 20), &out), -EINVAL);
        break;
    case 6:
        memset(&out, 0x5a, sizeof(out));
        EXPECT_RC(c, dmahal_common_alloc(ma->a, (size_t)1 << (41 + below(&c->r, 20)), 0, &out),
                  -E2BIG);
        EXPECT(c, !out.va && !out.la && !out.len, "out not cleared");
        break;
    case 7:
        EXPECT_RC(c, dmahal_common_free(ma->a, &none), -EINVAL);
        EXPECT_RC(c, dmahal_common_free(ma->a, NULL), -EINVAL);
        EXPECT_RC(c, dmahal_common_free(NULL, &none), -EINVAL);
        break;
    case 8:
        EXPECT_RC(c, dmahal_common_sync(ma->a, &none, 0, 0, DMAHAL_TO_DEVICE), -ENOENT);
        EXPECT_RC(c, dmahal_common_sync(ma->a, &none, 0, 0, (enum dmahal_dir)9), -EINVAL);
        break;
    case 9: {
        struct mbuf *mb = pick_buf(w, true);

        if (mb) {
            EXPECT_RC(c,
                      dmahal_common_sync(w->ad[mb->ai].a, &mb->b, mb->b.len, 1, DMAHAL_TO_DEVICE),
                      -EINVAL);
            for (unsigned i = 0; i < w->nad; i++)
                if (i != mb->ai)
                    EXPECT_RC(c, dmahal_common_sync(w->ad[i].a, &mb->b, 0, 0, DMAHAL_TO_DEVICE),
                              -ENOENT);
        }
        break;
    }
    case 10:
        EXPECT_RC(c, dmahal_map(NULL, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
        EXPECT_RC(c, dmahal_map(ma->a, &iov, 1, DMAHAL_TO_DEVICE, 0, NULL), -EINVAL);
        break;
    default:
        /* The device outside everything: with an IOMMU a fault; a wild address, always. */
        if (w->iommu) {
            EXPECT_RC(c, dmahal_dev_read(w->d, UINT64_C(0xfff0000000000000), b, 8), -EFAULT);
            EXPECT_RC(c, dmahal_dev_write(w->d, UINT64_C(0xfff0000000000000), b, 8), -EFAULT);
        }
        EXPECT_RC(c, dmahal_dev_read(w->d, UINT64_MAX - 3, b, 8), -EINVAL); /* wraps */
        break;
    }
}

/* ---- the Windows names ------------------------------------------------------------------------
 */

static VOID on_list(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST ScatterGather,
                    PVOID Context)
{
    (void)DeviceObject, (void)Irp;
    *(PSCATTER_GATHER_LIST *)Context = ScatterGather;
}

static void op_wdm(struct world *w)
{
    struct ctx *c = w->c;
    DEVICE_DESCRIPTION dd;
    PDMA_ADAPTER a;
    ULONG nregs, len = 1 + below(&c->r, 3 * PAGE), bits = chance(&c->r, 50) ? 32 : 64;
    PHYSICAL_ADDRESS la;
    PVOID va;
    BOOLEAN cached = chance(&c->r, 50);
    unsigned char *host, *seen;
    PMDL mdl;
    PSCATTER_GATHER_LIST sg = NULL;
    struct {
        ULONG n;
        ULONG pad;
        ULONG_PTR r;
        SCATTER_GATHER_ELEMENT e[1];
    } foreign = {1, 0, 0, {{{.QuadPart = 0x1000}, 64, 0}}};

    c->last = "Windows names";
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.ScatterGather = chance(&c->r, 70);
    dd.InterfaceType = PCIBus;
    dd.DmaAddressWidth = bits;
    dd.MaximumLength = 64 * 1024;
    a = IoGetDmaAdapter(dmahal_wdm_device(w->d), &dd, &nregs);
    if (!a)
        return; /* memory the device reaches may be short on a tiny machine */
    EXPECT(c, nregs == (dd.ScatterGather ? 17u : 16u),
           "IoGetDmaAdapter gave %lu map registers for 64 KiB", (unsigned long)nregs);
    va = a->DmaOperations->AllocateCommonBuffer(a, len, &la, cached);
    if (va) {
        EXPECT(c, ((uintptr_t)va & (PAGE - 1)) == 0 && (la.QuadPart & (PAGE - 1)) == 0,
               "AllocateCommonBuffer not page-aligned");
        EXPECT(c, bits >= 64 || (uint64_t)la.QuadPart + len - 1 < (UINT64_C(1) << bits),
               "AllocateCommonBuffer beyond %lu bits", (unsigned long)bits);
        for (ULONG i = 0; i < len; i++)
            EXPECT(c, ((unsigned char *)va)[i] == 0, "AllocateCommonBuffer not zeroed at %lu",
                   (unsigned long)i);
        /* The wrong CacheEnabled frees nothing: the buffer is still there to free. */
        a->DmaOperations->FreeCommonBuffer(a, len, la, va, !cached);
        a->DmaOperations->FreeCommonBuffer(a, len, la, va, cached);
    }
    host = aligned_alloc(PAGE, 4 * PAGE);
    seen = malloc(4 * PAGE);
    EXPECT(c, host && seen, "out of memory");
    pattern(host, 4 * PAGE, rnd(&c->r));
    mdl = IoAllocateMdl(host + 100, len, FALSE, FALSE, NULL);
    EXPECT(c, mdl != NULL, "IoAllocateMdl failed");
    if (a->DmaOperations->GetScatterGatherList(a, dmahal_wdm_device(w->d), mdl, host + 100, len,
                                               on_list, &sg, TRUE) == STATUS_SUCCESS &&
        sg) {
        size_t at = 0;

        for (ULONG i = 0; i < sg->NumberOfElements; i++) {
            uint64_t ea = (uint64_t)sg->Elements[i].Address.QuadPart;

            EXPECT(c, bits >= 64 || ea + sg->Elements[i].Length - 1 < (UINT64_C(1) << bits),
                   "a list element beyond %lu bits", (unsigned long)bits);
            EXPECT_RC(c, dmahal_dev_read(w->d, ea, seen + at, sg->Elements[i].Length), 0);
            at += sg->Elements[i].Length;
        }
        EXPECT(c, at == len && memcmp(seen, host + 100, len) == 0,
               "the device read other bytes through GetScatterGatherList's list");
        /* A list the adapter never handed out is ignored, never read. */
        a->DmaOperations->PutScatterGatherList(a, (PSCATTER_GATHER_LIST)&foreign, TRUE);
        a->DmaOperations->PutScatterGatherList(a, sg, TRUE);
    }
    IoFreeMdl(mdl);
    free(host);
    free(seen);
    a->DmaOperations->PutDmaAdapter(a);
}

/* ---- adapters ---------------------------------------------------------------------------------
 */

static int adapter_new(struct world *w, struct madapter *ma)
{
    struct ctx *c = w->c;
    static const unsigned bits[] = {24, 28, 32, 32, 36, 40, 64, 64};
    static const size_t aligns[] = {0, 0, 0, 1, 16, 256, 4096, 8192, 1u << 20};
    static const size_t maxsegs[] = {0, 0, 0, 512, 4096, 6144, 8192, 65536};
    static const uint64_t bounds[] = {0, 0, 0, 4096, 8192, 65536, 1u << 20};
    static const unsigned nsegs[] = {0, 1, 2, 4, 16, 64, 256};
    struct dmahal_desc d = {
        .addr_bits = bits[below(&c->r, 8)],
        .max_segments = nsegs[below(&c->r, 7)],
        .max_transfer = chance(&c->r, 10) ? 0 : (size_t)(1 + below(&c->r, 64)) * 4096,
        .max_segment = maxsegs[below(&c->r, 8)],
        .boundary = bounds[below(&c->r, 7)],
        .alignment = aligns[below(&c->r, 9)],
        .coherent = chance(&c->r, 20),
    };
    struct dmahal_adapter *a = (struct dmahal_adapter *)&a;
    int rc;

    c->last = "dmahal_adapter_get";
    if (chance(&c->r, 5))
        d.max_transfer = SIZE_MAX;
    rc = dmahal_adapter_get(w->d, &d, &a);
    if (rc) {
        bool bad = (d.alignment > 1 && d.max_transfer && d.max_transfer < d.alignment) ||
                   (d.max_segment && d.max_segment < d.alignment) ||
                   (d.boundary && d.boundary < d.alignment);

        EXPECT(c, a == NULL, "out not cleared by a failed dmahal_adapter_get");
        EXPECT(c, (rc == -EINVAL && bad) || rc == -ENOMEM,
               "dmahal_adapter_get failed with %d (%s) for a description it should take", rc,
               dmahal_strerror(rc));
        return rc;
    }
    ma->a = a;
    EXPECT_RC(c, dmahal_adapter_desc(a, &ma->d), 0);
    EXPECT(c, ma->d.max_transfer >= 1 && ma->d.max_transfer <= ((size_t)1 << 40),
           "max_transfer %zu", ma->d.max_transfer);
    if (!ma->d.alignment)
        ma->d.alignment = 1;
    if (!ma->d.max_segments)
        ma->d.max_segments = 1;
    ma->coherent = w->coherent_machine || d.coherent;
    return 0;
}

/* Puts an adapter with whatever is live on it: its buffers and lists go with it. */
static void op_put(struct world *w)
{
    struct ctx *c = w->c;
    unsigned i = below(&c->r, w->nad);

    c->last = "dmahal_adapter_put";
    dmahal_adapter_put(w->ad[i].a);
    for (unsigned k = 0; k < MAX_BUFS; k++)
        if (w->bufs[k].live && w->bufs[k].ai == i)
            w->bufs[k].live = false;
    for (unsigned k = 0; k < MAX_MAPS; k++) {
        struct mmap *m = &w->maps[k];

        if (m->ai != i || m->state == 0)
            continue;
        if (m->state == 2)
            EXPECT(c, false, "a queued request of a put adapter did not complete");
        map_release_host(m);
    }
    map_settle(w);
    for (unsigned k = 0; k < MAX_MAPS; k++)
        EXPECT(c, !(w->maps[k].state && w->maps[k].ai == i), "a list outlived its adapter");
    while (adapter_new(w, &w->ad[i]) != 0)
        ;
}

/* ---- a run ------------------------------------------------------------------------------------
 */

static const char *machine(struct world *w, char *spec, size_t n)
{
    static const char *const rams[] = {"", "ram=0-16M,", "ram=4G-8G,", "ram=0-64M,4G-6G,",
                                       "ram=0-2G,"};
    unsigned ram = below(&w->c->r, 5);

    w->iommu = chance(&w->c->r, 40);
    w->coherent_machine = chance(&w->c->r, 60);
    snprintf(spec, n, "sim:%siommu=%s,coherent=%s", rams[ram], w->iommu ? "on" : "off",
             w->coherent_machine ? "yes" : "no");
    return spec;
}

static void report_ignore(const struct dmahal_report *r, void *ctx)
{
    (void)r;
    atomic_fetch_add((atomic_ulong *)ctx, 1);
}

static atomic_ulong reports;

static void run_one(struct ctx *c, struct dmahal_platform *shared, struct dmahal_device *dev)
{
    struct world *w = calloc(1, sizeof(*w));
    char spec[128];

    if (!w)
        abort();
    w->c = c;
    if (shared) {
        w->shared = true;
        w->p = shared;
        w->d = dev;
        w->iommu = strstr(c->spec, "iommu=on") != NULL;
        w->coherent_machine = strstr(c->spec, "coherent=no") == NULL;
    } else {
        c->spec = machine(w, spec, sizeof(spec));
        c->last = "dmahal_platform_open";
        EXPECT_RC(c, dmahal_platform_open(c->spec, &w->p), 0);
        c->verify = chance(&c->r, 50);
        if (opt.verify >= 0)
            c->verify = opt.verify;
        if (c->verify &&
            dmahal_verify_enable(w->p, DMAHAL_VERIFY_COUNT | DMAHAL_VERIFY_NO_BACKTRACE,
                                 report_ignore, &reports) != 0)
            c->verify = false;
        EXPECT_RC(c, dmahal_device_open(w->p, "edu", &w->d), 0);
    }
    w->nad = 1 + below(&c->r, MAX_ADAPTERS);
    for (unsigned i = 0; i < w->nad; i++)
        while (adapter_new(w, &w->ad[i]) != 0)
            ;
    for (c->op = 0; c->op < opt.ops && !atomic_load(&failed); c->op++) {
        unsigned k = below(&c->r, 100);

        if (k < 14)
            op_alloc(w);
        else if (k < 26)
            op_buf_data(w);
        else if (k < 36)
            op_free(w);
        else if (k < 50)
            op_map(w, false);
        else if (k < 56)
            op_map(w, !w->shared); /* a grant may run on another thread: not shared */
        else if (k < 66)
            op_map_device(w);
        else if (k < 74)
            op_map_sync(w);
        else if (k < 88)
            op_unmap(w);
        else if (k < 95)
            op_bad(w);
        else if (k < 97)
            op_wdm(w);
        else
            op_put(w);
    }
    /* Everything is given back, in an order the run picks. */
    c->last = "teardown";
    while (pick_map(w, 1))
        op_unmap(w);
    for (unsigned i = 0; i < MAX_BUFS; i++)
        if (w->bufs[i].live)
            EXPECT_RC(c, dmahal_common_free(w->ad[w->bufs[i].ai].a, &w->bufs[i].b), 0);
    EXPECT(c, !queued_any(w), "a request is still queued with nothing mapped");
    for (unsigned i = 0; i < w->nad; i++)
        dmahal_adapter_put(w->ad[i].a);
    if (!shared)
        dmahal_platform_close(w->p);
    free(w);
}

/* ---- threads ----------------------------------------------------------------------------------
 */

struct thread_arg {
    struct ctx c;
    struct dmahal_platform *p;
    struct dmahal_device *d;
};

static void *thread_main(void *arg)
{
    struct thread_arg *t = arg;

    run_one(&t->c, t->p, t->d);
    return NULL;
}

/* Several threads, one machine and one device each run: each thread its own adapters and
 * model, all of them on the machine's shared frames, bounce pools and IOMMU domain. */
static void run_threads(uint64_t run_seed, unsigned run)
{
    struct thread_arg t[16];
    pthread_t tid[16];
    struct world probe = {0};
    struct ctx pc = {.r = {run_seed}, .run_seed = run_seed};
    char spec[128];
    struct dmahal_platform *p;
    struct dmahal_device *d;
    unsigned n = opt.threads > 16 ? 16 : opt.threads;

    probe.c = &pc;
    pc.spec = machine(&probe, spec, sizeof(spec));
    pc.last = "dmahal_platform_open";
    EXPECT_RC(&pc, dmahal_platform_open(pc.spec, &p), 0);
    pc.verify = chance(&pc.r, 50);
    if (opt.verify >= 0)
        pc.verify = opt.verify;
    if (pc.verify && dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT | DMAHAL_VERIFY_NO_BACKTRACE,
                                          report_ignore, &reports) != 0)
        pc.verify = false;
    EXPECT_RC(&pc, dmahal_device_open(p, "edu", &d), 0);
    for (unsigned i = 0; i < n; i++) {
        t[i] = (struct thread_arg){.p = p, .d = d};
        t[i].c = pc;
        t[i].c.thread = i;
        t[i].c.r.s = run_seed ^ (0x1000193ull * (i + 1));
        /* A device of its own per thread would share nothing: share the machine's device,
         * but let no thread's device accesses land in another's memory by accident. */
        if (pthread_create(&tid[i], NULL, thread_main, &t[i]))
            abort();
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    dmahal_platform_close(p);
    (void)run;
}

/* ---- main -------------------------------------------------------------------------------------
 */

/* The resident set now and at its peak, in MiB: a long run must stay flat. */
static void rss_mib(double *now_mib, double *peak_mib)
{
    unsigned long size = 0, resident = 0;
    struct rusage ru;
    FILE *f = fopen("/proc/self/statm", "r");

    *now_mib = *peak_mib = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) == 2)
            *now_mib = (double)resident * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
        fclose(f);
    }
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        *peak_mib = (double)ru.ru_maxrss / 1024;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: dmahal_fuzz [--seed N] [--runs N] [--ops N] [--seconds S] "
                    "[--threads N] [--verify on|off] [--quiet]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool seeded = false;
    double start, rss, peak;
    unsigned run;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet")) {
            opt.quiet = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--seed")) {
            opt.seed = strtoull(argv[++i], NULL, 0);
            seeded = true;
        } else if (!strcmp(argv[i], "--runs")) {
            opt.runs = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--ops")) {
            opt.ops = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--seconds")) {
            opt.seconds = strtod(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--verify")) {
            opt.verify = !strcmp(argv[++i], "on") ? 1 : !strcmp(argv[i], "off") ? 0 : -1;
        } else if (!strcmp(argv[i], "--threads")) {
            opt.threads = (unsigned)strtoul(argv[++i], NULL, 0);
        } else {
            usage();
        }
    }
    if (!seeded) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        opt.seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
    }
    /* First, and flushed: a run killed by a timeout still leaves its seed. */
    printf("dmahal_fuzz: seed %" PRIu64 " (replay: --seed %" PRIu64 " --runs %u --ops %u "
           "--threads %u%s)\n",
           opt.seed, opt.seed, opt.runs, opt.ops, opt.threads,
           opt.verify < 0 ? ""
           : opt.verify   ? " --verify on"
                          : " --verify off");
    fflush(stdout);
    start = now();
    for (run = 0; run < opt.runs || (opt.seconds > 0 && opt.runs == 0); run++) {
        struct rng r = {opt.seed};
        uint64_t run_seed;

        for (unsigned k = 0; k <= run; k++)
            run_seed = rnd(&r);
        if (opt.threads > 1) {
            run_threads(run_seed, run);
        } else {
            struct ctx c = {.r = {run_seed}, .run_seed = run_seed};

            run_one(&c, NULL, NULL);
        }
        if (!opt.quiet && (run + 1) % 50 == 0) {
            rss_mib(&rss, &peak);
            printf("dmahal_fuzz: %u runs, RSS %.0f MiB (peak %.0f MiB)\n", run + 1, rss, peak);
            fflush(stdout);
        }
        if (opt.seconds > 0 && now() - start >= opt.seconds) {
            run++;
            break;
        }
    }
    rss_mib(&rss, &peak);
    printf("dmahal_fuzz: %u runs of %u operations%s in %.1f s, %lu verifier reports, RSS %.0f "
           "MiB (peak %.0f MiB), all guarantees held\n",
           run, opt.ops, opt.threads > 1 ? " per thread" : "", now() - start,
           (unsigned long)atomic_load(&reports), rss, peak);
    return 0;
}
