/* SPDX-License-Identifier: MIT */
/*
 * bench_map.c - streaming DMA:
 *  1. dmahal_map + dmahal_unmap of one 4 KiB page behind the IOMMU, against malloc + free of
 *     4 KiB in the same run (goal: <= 150 ns and <= 3x malloc + free);
 *  2. an IOVA alloc + free pair from the per-thread caches (goal: <= 50 ns), and the
 *     throughput of two threads against one on the same domain (goal: >= 1.6x);
 *  3. the bounce path: a 64 KiB map + sync_for_cpu + unmap of a 32-bit device on a machine
 *     whose RAM is mostly above 4 GiB (one copy out of the bounce pages), against memcpy of
 *     64 KiB (goal: >= 0.5x the bandwidth).
 *
 * Contestants run interleaved in one process; medians over repetitions, ratios are medians
 * of per-repetition ratios.
 */
#include "harness.h"

#include "core/iova.h"

#include <dmahal/dmahal.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS   1000
#define BOUNCE_LEN ((size_t)64 << 10)

static const char usage[] = "usage: bench_map [--quick] [--reps N]\n"
                            "  streaming map/unmap, IOVA allocation and the bounce path\n";

static struct dmahal_adapter *iommu_a, *bounce_a;
static unsigned char *page, *big, *dst;
static unsigned iters;

/* ---- contestants: each returns ns per operation, or a negative errno ---------------------- */

static double map_page(void)
{
    struct iovec iov = {page, 4096};
    struct dmahal_sgl *sgl;
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        int err = dmahal_map(iommu_a, &iov, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &sgl);

        if (err)
            return err;
        bench_consume(sgl, sizeof(*sgl));
        dmahal_unmap(iommu_a, sgl);
    }
    return (double)(bench_now_ns() - t0) / iters;
}

static double malloc_page(void)
{
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        void *p = malloc(4096);

        bench_consume(&p, sizeof(p));
        free(p);
    }
    return (double)(bench_now_ns() - t0) / iters;
}

static struct dmahal__iova *space;

static double iova_pair(void)
{
    uint64_t t0 = bench_now_ns(), v;

    for (unsigned i = 0; i < iters; i++) {
        if (dmahal__iova_alloc_fast(space, 4096, UINT32_MAX, &v))
            return -1;
        bench_consume(&v, sizeof(v));
        dmahal__iova_free_fast(space, v, 4096);
    }
    return (double)(bench_now_ns() - t0) / iters;
}

static void *iova_thread(void *arg)
{
    double *ns = arg;

    *ns = iova_pair();
    return NULL;
}

/* Pairs per microsecond with @n threads on the same domain. */
static double iova_throughput(int n)
{
    pthread_t t[2];
    double ns[2];
    uint64_t t0 = bench_now_ns();

    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, iova_thread, &ns[i]))
            return -1;
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return (double)n * iters * 1000.0 / (double)(bench_now_ns() - t0);
}

/* GB/s of the device's view coming back to the CPU through bounce pages. */
static double bounce_64k(void)
{
    struct iovec iov = {big, BOUNCE_LEN};
    struct dmahal_sgl *sgl;
    unsigned n = iters / 16 ? iters / 16 : 1;
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < n; i++) {
        int err = dmahal_map(bounce_a, &iov, 1, DMAHAL_FROM_DEVICE, DMAHAL_MAP_NOWAIT, &sgl);

        if (err)
            return err;
        dmahal_sync_for_cpu(bounce_a, sgl);
        bench_consume(big, BOUNCE_LEN);
        dmahal_unmap(bounce_a, sgl);
    }
    return (double)BOUNCE_LEN * n / (double)(bench_now_ns() - t0);
}

static double memcpy_64k(void)
{
    unsigned n = iters / 16 ? iters / 16 : 1;
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < n; i++) {
        memcpy(big, dst, BOUNCE_LEN);
        bench_consume(big, BOUNCE_LEN);
    }
    return (double)BOUNCE_LEN * n / (double)(bench_now_ns() - t0);
}

/* ---- the run ---------------------------------------------------------------------------- */

struct pair {
    const char *what;
    double (*a)(void), (*b)(void);
    double va[MAX_REPS], vb[MAX_REPS];
};

static bool run_pair(struct pair *p, unsigned reps)
{
    if (p->a() < 0 || p->b() < 0) /* warm-up */
        return false;
    for (unsigned r = 0; r < reps; r++) {
        if (r % 2) {
            p->vb[r] = p->b();
            p->va[r] = p->a();
        } else {
            p->va[r] = p->a();
            p->vb[r] = p->b();
        }
        if (p->va[r] < 0 || p->vb[r] < 0)
            return false;
    }
    return true;
}

static double median_ratio(const double *x, const double *y, unsigned reps)
{
    double r[MAX_REPS];

    for (unsigned i = 0; i < reps; i++)
        r[i] = x[i] / y[i];
    return bench_median(r, reps);
}

static double median_of(const double *x, unsigned reps)
{
    double tmp[MAX_REPS];

    memcpy(tmp, x, reps * sizeof(double));
    return bench_median(tmp, reps);
}

static int setup(struct dmahal_platform **p1, struct dmahal_platform **p2)
{
    struct dmahal_device *d1, *d2;
    struct dmahal_desc wide = {.addr_bits = 64, .coherent = true, .max_segments = 16};
    struct dmahal_desc narrow = {.addr_bits = 32, .coherent = true, .max_transfer = BOUNCE_LEN};
    struct iovec iov;
    struct dmahal_sgl *sgl;
    int err;

    err = bench_open_sim("sim:iommu=on", p1, &d1);
    if (!err)
        err = dmahal_adapter_get(d1, &wide, &iommu_a);
    if (!err)
        err = bench_open_sim("sim", p2, &d2);
    if (!err)
        err = dmahal_adapter_get(d2, &narrow, &bounce_a);
    if (!err)
        err = dmahal__iova_create(4096, &space);
    if (!err)
        err = dmahal__iova_add(space, 4096, ((uint64_t)1 << 32) - 4096);
    if (err)
        return err;
    /* The bounce contestant must bounce, and the data must come back, or it measures
     * nothing. */
    memset(dst, 0x5a, BOUNCE_LEN);
    iov = (struct iovec){big, BOUNCE_LEN};
    err = dmahal_map(bounce_a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl);
    if (err)
        return err;
    if (dmahal_adapter_map_registers_in_use(bounce_a) != BOUNCE_LEN / 4096) {
        printf("FAILED: the 32-bit device did not bounce\n");
        return -1;
    }
    for (unsigned i = 0; i < sgl->nseg; i++)
        dmahal_dev_write(d2, sgl->seg[i].la, dst, sgl->seg[i].len);
    dmahal_unmap(bounce_a, sgl);
    if (memcmp(big, dst, BOUNCE_LEN) != 0) {
        printf("FAILED: the device's data did not come back\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct dmahal_platform *p1 = NULL, *p2 = NULL;
    static struct pair map = {"map+unmap 4 KiB (IOMMU) vs malloc+free 4 KiB", map_page,
                              malloc_page};
    static struct pair bounce = {"bounce 64 KiB map+sync+unmap vs memcpy 64 KiB", bounce_64k,
                                 memcpy_64k};
    static double one[MAX_REPS], two[MAX_REPS], pair_ns[MAX_REPS];
    double m, r;
    int rc = bench_parse(argc, argv, usage, &o), status = 1;

    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    iters = o.quick ? 2000 : 200000;
    page = aligned_alloc(4096, 4096);
    big = aligned_alloc(4096, BOUNCE_LEN);
    dst = aligned_alloc(4096, BOUNCE_LEN);
    if (!page || !big || !dst)
        goto out;
    memset(page, 1, 4096);
    memset(big, 0, BOUNCE_LEN);
    rc = setup(&p1, &p2);
    if (rc) {
        printf("FAILED: setup: %s\n", dmahal_strerror(rc));
        goto out;
    }
    bench_print_machine();
    printf("method: %u repetitions of %u operations after a warm-up, contestants alternating; "
           "medians%s\n",
           o.reps, iters, o.quick ? " (--quick: figures are only a smoke test)" : "");

    if (!run_pair(&map, o.reps) || !run_pair(&bounce, o.reps))
        goto out;
    m = median_of(map.va, o.reps);
    r = median_ratio(map.va, map.vb, o.reps);
    printf("\n%s\n  map+unmap %.1f ns, malloc+free %.1f ns, ratio %.2fx "
           "(goal <= 150 ns: %s; <= 3x: %s)\n",
           map.what, m, median_of(map.vb, o.reps), r, m <= 150 ? "met" : "MISSED",
           r <= 3 ? "met" : "MISSED");

    for (unsigned i = 0; i < o.reps; i++) {
        pair_ns[i] = iova_pair();
        one[i] = iova_throughput(1);
        two[i] = iova_throughput(2);
        if (pair_ns[i] < 0 || one[i] < 0 || two[i] < 0)
            goto out;
    }
    m = median_of(pair_ns, o.reps);
    r = median_ratio(two, one, o.reps);
    printf("\nIOVA alloc+free pair (per-thread cache)\n  %.1f ns per pair (goal <= 50 ns: %s)\n"
           "  1 thread %.1f pairs/us, 2 threads %.1f pairs/us, %.2fx (goal >= 1.6x: %s)\n",
           m, m <= 50 ? "met" : "MISSED", median_of(one, o.reps), median_of(two, o.reps), r,
           r >= 1.6 ? "met" : "MISSED");

    m = median_of(bounce.va, o.reps);
    r = median_ratio(bounce.va, bounce.vb, o.reps);
    printf("\n%s\n  bounce %.2f GB/s, memcpy %.2f GB/s, ratio %.2fx (goal >= 0.5x: %s)\n",
           bounce.what, m, median_of(bounce.vb, o.reps), r, r >= 0.5 ? "met" : "MISSED");
    status = isfinite(m) && m > 0 ? 0 : 1;
out:
    dmahal__iova_destroy(space);
    dmahal_platform_close(p1);
    dmahal_platform_close(p2);
    free(page);
    free(big);
    free(dst);
    return status;
}
