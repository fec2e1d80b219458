/* SPDX-License-Identifier: MIT */
/*
 * bench_common.c - zeroed common-buffer allocation: dmahal against glibc and DPDK.
 *
 * Every contestant delivers zeroed memory with the alignment dmahal gives (a buffer of a
 * page or more is page-aligned, a smaller one is aligned to its size rounded up to a power
 * of two, at least 16 bytes). Each buffer is written whole before it is freed, so an
 * allocator that hands back memory it zeroed once cannot skip zeroing it again, and glibc
 * pays its memset as a driver would. Two patterns:
 *   single  alloc, write, free, repeated: one live buffer (the best case for every cache);
 *   batch   N buffers alive at once (a ring of descriptors or data buffers), then all freed
 *           in allocation order.
 * Contestants run interleaved in one process (each repetition runs each of them once, in a
 * rotating order); the report gives per-contestant medians and the median of per-repetition
 * ratios, which cancels most of the noise of a shared machine.
 */
#include "harness.h"
#ifdef BENCH_HAVE_DPDK
#include "bench_dpdk.h"
#endif

#include <dmahal/dmahal.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONTESTANTS 8
#define MAX_REPS        1000

struct handle {
    struct dmahal_buf buf; /* va, la, len for every contestant */
    const void *aux;       /* the memzone, for DPDK's */
};

struct contestant {
    const char *name;
    void *ctx;
    int (*alloc)(void *ctx, size_t len, size_t align, struct handle *h);
    int (*free)(void *ctx, struct handle *h);
    bool is_dmahal;
    bool is_dpdk;
    bool is_floor;
    bool zero_failed;         /* the verification pass found a non-zero byte */
    double samples[MAX_REPS]; /* ns per op, this size and pattern */
};

/* ---- contestants ------------------------------------------------------------------------- */

static int dmahal_alloc(void *ctx, size_t len, size_t align, struct handle *h)
{
    (void)align; /* dmahal aligns as the header says; the others are asked for the same */
    return dmahal_common_alloc(ctx, len, 0, &h->buf);
}

static int dmahal_free(void *ctx, struct handle *h)
{
    return dmahal_common_free(ctx, &h->buf);
}

static int glibc_alloc(void *ctx, size_t len, size_t align, struct handle *h)
{
    (void)ctx;
    void *va;
    int err = posix_memalign(&va, align, len);
    if (err)
        return -err;
    memset(va, 0, len);
    h->buf.va = va;
    h->buf.len = len;
    return 0;
}

static int glibc_free(void *ctx, struct handle *h)
{
    (void)ctx;
    free(h->buf.va);
    return 0;
}

#ifdef BENCH_HAVE_DPDK
static int zmalloc_alloc(void *ctx, size_t len, size_t align, struct handle *h)
{
    (void)ctx;
    h->buf.va = bench_dpdk_zmalloc(len, align);
    h->buf.len = len;
    return h->buf.va ? 0 : -ENOMEM;
}

static int zmalloc_free(void *ctx, struct handle *h)
{
    (void)ctx;
    bench_dpdk_free(h->buf.va);
    return 0;
}

static int memzone_alloc(void *ctx, size_t len, size_t align, struct handle *h)
{
    (void)ctx;
    h->buf.va = bench_dpdk_memzone_reserve(len, align, &h->aux);
    h->buf.len = len;
    return h->buf.va ? 0 : -ENOMEM;
}

static int memzone_free(void *ctx, struct handle *h)
{
    (void)ctx;
    bench_dpdk_memzone_free(h->aux);
    return 0;
}
#endif

/*
 * The floor: no allocator at all, only the work every contestant must do (zero the buffer,
 * then the benchmark writes it), on memory set aside once. What a contestant costs above it
 * is what its allocator adds.
 */
#define FLOOR_POOL ((size_t)32 << 20)

struct floor {
    char *pool;
    size_t live;
};

static struct floor floor_ctx;

static int floor_alloc(void *ctx, size_t len, size_t align, struct handle *h)
{
    struct floor *f = ctx;
    size_t slots = FLOOR_POOL / len;
    (void)align; /* the pool is page-aligned and slots are multiples of the size */
    h->buf.va = f->pool + (f->live++ % slots) * len;
    h->buf.len = len;
    memset(h->buf.va, 0, len);
    return 0;
}

static int floor_free(void *ctx, struct handle *h)
{
    struct floor *f = ctx;
    (void)h;
    f->live--;
    return 0;
}

/* ---- patterns ---------------------------------------------------------------------------- */

struct size_case {
    size_t len;
    const char *label;
    unsigned ops;   /* alloc+write+free per sample, full run */
    unsigned batch; /* live buffers in the batch pattern */
};

static const struct size_case sizes[] = {
    {64, "64 B", 51200, 256},
    {4096, "4 KiB", 20480, 256},
    {65536, "64 KiB", 2048, 64},
    {2u << 20, "2 MiB", 96, 16},
};

static size_t align_for(size_t len)
{
    if (len >= 4096)
        return 4096;
    size_t a = 16;
    while (a < len)
        a <<= 1;
    return a;
}

static struct handle *handles; /* room for the largest batch */

/* One sample: @ops alloc+write+free in groups of @batch live buffers; ns per op, or a
 * negative errno. */
static double run_sample(struct contestant *c, size_t len, unsigned ops, unsigned batch)
{
    size_t align = align_for(len);
    unsigned rounds = ops / batch ? ops / batch : 1;
    uint64_t t0 = bench_now_ns();
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < batch; i++) {
            int err = c->alloc(c->ctx, len, align, &handles[i]);
            if (err) {
                fprintf(stderr, "%s: alloc of %zu bytes failed: %s\n", c->name, len,
                        strerror(-err));
                return err;
            }
            memset(handles[i].buf.va, 0xa5, len);
            bench_consume(handles[i].buf.va, len);
        }
        for (unsigned i = 0; i < batch; i++) {
            int err = c->free(c->ctx, &handles[i]);
            if (err) {
                fprintf(stderr, "%s: free failed: %s\n", c->name, strerror(-err));
                return err;
            }
        }
    }
    uint64_t t1 = bench_now_ns();
    return (double)(t1 - t0) / ((double)rounds * batch);
}

/* Not timed: every buffer must come back zeroed even after buffers of the same size were
 * dirtied and freed. */
static int verify_zeroed(struct contestant *c, size_t len, unsigned batch)
{
    size_t align = align_for(len);
    for (int round = 0; round < 3; round++) {
        for (unsigned i = 0; i < batch; i++) {
            int err = c->alloc(c->ctx, len, align, &handles[i]);
            if (err)
                return err;
            const unsigned char *p = handles[i].buf.va;
            if (((uintptr_t)p & (align - 1)) != 0) {
                fprintf(stderr, "%s: %zu-byte buffer at %p not %zu-aligned\n", c->name, len,
                        (const void *)p, align);
                c->zero_failed = true;
            }
            for (size_t k = 0; k < len; k++) {
                if (p[k] != 0) {
                    fprintf(stderr, "%s: %zu-byte buffer not zeroed at offset %zu\n", c->name, len,
                            k);
                    c->zero_failed = true;
                    break;
                }
            }
            memset(handles[i].buf.va, 0x5a, len);
        }
        for (unsigned i = 0; i < batch; i++) {
            int err = c->free(c->ctx, &handles[i]);
            if (err)
                return err;
        }
    }
    return 0;
}

/* ---- report ------------------------------------------------------------------------------ */

static struct contestant cs[MAX_CONTESTANTS];
static unsigned ncs;

static double median_of(const double *v, unsigned n)
{
    double tmp[MAX_REPS];
    memcpy(tmp, v, n * sizeof(*v));
    return bench_median(tmp, n);
}

/* The median over repetitions of a/b, each repetition's pair measured side by side. */
static double ratio_of(const struct contestant *a, const struct contestant *b, unsigned reps)
{
    double r[MAX_REPS];
    for (unsigned i = 0; i < reps; i++)
        r[i] = a->samples[i] / b->samples[i];
    return bench_median(r, reps);
}

static bool sane(double ns)
{
    return isfinite(ns) && ns > 0 && ns < 1e9;
}

/* Prints one size's row of figures and the ratio lines; returns false if a figure is not
 * sane. */
static bool report_size(const struct size_case *s, unsigned reps)
{
    bool ok = true;
    printf("%-7s", s->label);
    for (unsigned i = 0; i < ncs; i++) {
        double m = median_of(cs[i].samples, reps);
        ok = ok && sane(m);
        printf(" %14.1f", m);
    }
    printf("\n");

    const struct contestant *glibc = NULL, *best_dpdk = NULL, *fl = NULL;
    for (unsigned i = 0; i < ncs; i++) {
        if (strcmp(cs[i].name, "glibc") == 0)
            glibc = &cs[i];
        if (cs[i].is_floor)
            fl = &cs[i];
        if (cs[i].is_dpdk &&
            (!best_dpdk || median_of(cs[i].samples, reps) < median_of(best_dpdk->samples, reps)))
            best_dpdk = &cs[i];
    }
    double dpdk_goal = s->len <= 64 ? 0.3 : 0.8;
    for (unsigned i = 0; i < ncs; i++) {
        if (!cs[i].is_dmahal)
            continue;
        double rg = ratio_of(&cs[i], glibc, reps);
        printf("        %-13s /glibc %5.2fx (goal <= 1.20x: %s)", cs[i].name, rg,
               rg <= 1.2 ? "met" : "MISSED");
        if (best_dpdk) {
            double rd = ratio_of(&cs[i], best_dpdk, reps);
            printf("  /%s %5.2fx (goal <= %.2fx: %s)", best_dpdk->name, rd, dpdk_goal,
                   rd <= dpdk_goal ? "met" : "MISSED");
        }
        printf("\n");
    }
    printf("        above the floor (ns/op):");
    for (unsigned i = 0; i < ncs; i++)
        if (!cs[i].is_floor)
            printf(" %s %.1f", cs[i].name,
                   median_of(cs[i].samples, reps) - median_of(fl->samples, reps));
    printf("\n");
    return ok;
}

/* ---- main -------------------------------------------------------------------------------- */

static const char usage[] = "usage: bench_common [--quick] [--reps N] [--no-dpdk]\n"
                            "  zeroed common-buffer alloc+write+free, ns/op, dmahal vs glibc "
                            "and DPDK\n";

static int add_dmahal(const char *name, const char *spec, struct dmahal_platform **p,
                      struct dmahal_adapter **a)
{
    struct dmahal_device *d;
    int err = bench_open_sim(spec, p, &d);
    if (err) {
        fprintf(stderr, "cannot open %s: %s\n", spec, dmahal_strerror(err));
        return err;
    }
    /* A modern 64-bit, cache-coherent bus master: the common case. */
    struct dmahal_desc desc = {.addr_bits = 64, .coherent = true};
    err = dmahal_adapter_get(d, &desc, a);
    if (err) {
        fprintf(stderr, "%s: dmahal_adapter_get: %s\n", spec, dmahal_strerror(err));
        dmahal_platform_close(*p);
        *p = NULL;
        return err;
    }
    cs[ncs++] = (struct contestant){
        .name = name, .ctx = *a, .alloc = dmahal_alloc, .free = dmahal_free, .is_dmahal = true};
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    int rc = bench_parse(argc, argv, usage, &o);
    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct dmahal_platform *p_sim = NULL, *p_iommu = NULL;
    struct dmahal_adapter *a_sim = NULL, *a_iommu = NULL;
    int status = 1;
    if (add_dmahal("dmahal-sim", "sim", &p_sim, &a_sim) ||
        add_dmahal("dmahal-iommu", "sim:iommu=on", &p_iommu, &a_iommu))
        goto out;
    cs[ncs++] = (struct contestant){.name = "glibc", .alloc = glibc_alloc, .free = glibc_free};
    if (posix_memalign((void **)&floor_ctx.pool, 4096, FLOOR_POOL))
        goto out;
    memset(floor_ctx.pool, 0, FLOOR_POOL);
    cs[ncs++] = (struct contestant){.name = "floor",
                                    .ctx = &floor_ctx,
                                    .alloc = floor_alloc,
                                    .free = floor_free,
                                    .is_floor = true};
#ifdef BENCH_HAVE_DPDK
    if (o.no_dpdk) {
        printf("DPDK: left out (--no-dpdk)\n");
    } else if (bench_dpdk_init() == 0) {
        cs[ncs++] = (struct contestant){
            .name = "rte_zmalloc", .alloc = zmalloc_alloc, .free = zmalloc_free, .is_dpdk = true};
        cs[ncs++] = (struct contestant){
            .name = "rte_memzone", .alloc = memzone_alloc, .free = memzone_free, .is_dpdk = true};
        printf("DPDK EAL: %s\n", bench_dpdk_eal_args);
    } else {
        printf("DPDK: EAL failed to initialise; DPDK contestants left out\n");
    }
#else
    printf("DPDK: not found at build time (pkg-config libdpdk); DPDK contestants left out\n");
#endif
    bench_print_machine();
    if (getenv("DMAHAL_VERIFY"))
        printf("note: DMAHAL_VERIFY is set; dmahal's figures include the verifier's checks\n");
    printf("method: %u repetitions after a warm-up, contestants interleaved in rotating order; "
           "median ns per alloc+write+free; ratios are medians of per-repetition ratios%s\n",
           o.reps, o.quick ? " (--quick: figures are only a smoke test)" : "");

    handles = calloc(256, sizeof(*handles));
    if (!handles)
        goto out;
    bool ok = true;
    for (int batched = 0; batched <= 1; batched++) {
        printf("\npattern %s\n%-7s",
               batched ? "batch (N live buffers, then all freed)"
                       : "single (alloc, write, free; one live buffer)",
               "size");
        for (unsigned i = 0; i < ncs; i++)
            printf(" %14s", cs[i].name);
        printf("   (ns/op)\n");
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            const struct size_case *s = &sizes[si];
            unsigned batch = batched ? s->batch : 1;
            unsigned ops = o.quick ? (s->ops / 50 > batch ? s->ops / 50 : batch) : s->ops;
            if (!batched) {
                for (unsigned i = 0; i < ncs; i++)
                    if (verify_zeroed(&cs[i], s->len, s->batch) < 0)
                        goto out;
            }
            for (unsigned i = 0; i < ncs; i++) /* warm-up */
                if (run_sample(&cs[i], s->len, ops, batch) < 0)
                    goto out;
            for (unsigned r = 0; r < o.reps; r++) {
                for (unsigned k = 0; k < ncs; k++) {
                    struct contestant *c = &cs[(r + k) % ncs];
                    double ns = run_sample(c, s->len, ops, batch);
                    if (ns < 0)
                        goto out;
                    c->samples[r] = ns;
                }
            }
            ok = report_size(s, o.reps) && ok;
        }
    }
    for (unsigned i = 0; i < ncs; i++) {
        if (cs[i].zero_failed) {
            printf("%s returned memory that was not zeroed or not aligned\n", cs[i].name);
            if (cs[i].is_dmahal)
                ok = false;
        }
    }
    if (!ok) {
        printf("FAILED: a figure is not sane or dmahal broke its contract\n");
        goto out;
    }
    printf("\ndone\n");
    status = 0;
out:
    free(handles);
    free(floor_ctx.pool);
    dmahal_adapter_put(a_iommu);
    dmahal_adapter_put(a_sim);
    dmahal_platform_close(p_iommu);
    dmahal_platform_close(p_sim);
#ifdef BENCH_HAVE_DPDK
    bench_dpdk_fini();
#endif
    return status;
}
