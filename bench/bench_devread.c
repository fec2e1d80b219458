/* SPDX-License-Identifier: MIT */
/*
 * bench_devread.c - a device's DMA read of a 1 MiB common buffer (dmahal_dev_read on the
 * simulated platform, without and with its IOMMU) against memcpy of 1 MiB between two host
 * buffers: what the simulation costs over the copy it ultimately performs.
 *
 * All three contestants copy into the same destination, from a source of the same size, so
 * they see the same caches. They run interleaved in one process; the report gives the median
 * bandwidth of each and the median of per-repetition ratios.
 */
#include "harness.h"

#include <dmahal/dmahal.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEN      ((size_t)1 << 20)
#define MAX_REPS 1000
#define NCONT    3

struct contestant {
    const char *name;
    struct dmahal_device *dev; /* NULL: memcpy */
    struct dmahal_buf buf;
    double gbps[MAX_REPS];
};

static void *src, *dst;

/* One sample: @iters copies of LEN bytes; GB/s, or a negative errno. */
static double run_sample(struct contestant *c, unsigned iters)
{
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < iters; i++) {
        if (c->dev) {
            int err = dmahal_dev_read(c->dev, c->buf.la, dst, LEN);
            if (err) {
                fprintf(stderr, "%s: dmahal_dev_read: %s\n", c->name, dmahal_strerror(err));
                return err;
            }
        } else {
            memcpy(dst, src, LEN);
        }
        bench_consume(dst, LEN);
    }
    uint64_t t1 = bench_now_ns();
    return (double)LEN * iters / (double)(t1 - t0); /* bytes per ns = GB/s */
}

static double ratio_of(const struct contestant *a, const struct contestant *b, unsigned reps)
{
    double r[MAX_REPS];
    for (unsigned i = 0; i < reps; i++)
        r[i] = a->gbps[i] / b->gbps[i];
    return bench_median(r, reps);
}

static const char usage[] = "usage: bench_devread [--quick] [--reps N]\n"
                            "  dmahal_dev_read of 1 MiB vs memcpy of 1 MiB, GB/s\n";

static int open_one(struct contestant *c, const char *spec, struct dmahal_platform **p,
                    struct dmahal_adapter **a)
{
    int err = bench_open_sim(spec, p, &c->dev);
    if (err) {
        fprintf(stderr, "cannot open %s: %s\n", spec, dmahal_strerror(err));
        return err;
    }
    struct dmahal_desc desc = {.addr_bits = 64, .coherent = true};
    err = dmahal_adapter_get(c->dev, &desc, a);
    if (!err)
        err = dmahal_common_alloc(*a, LEN, 0, &c->buf);
    if (err) {
        fprintf(stderr, "%s: %s\n", spec, dmahal_strerror(err));
        return err;
    }
    memset(c->buf.va, 0x3c, LEN);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    int rc = bench_parse(argc, argv, usage, &o);
    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct contestant cs[NCONT] = {
        {.name = "dev_read-sim"}, {.name = "dev_read-iommu"}, {.name = "memcpy"}};
    struct dmahal_platform *p[2] = {NULL, NULL};
    struct dmahal_adapter *a[2] = {NULL, NULL};
    int status = 1;
    if (open_one(&cs[0], "sim", &p[0], &a[0]) || open_one(&cs[1], "sim:iommu=on", &p[1], &a[1]))
        goto out;
    if (posix_memalign(&src, 4096, LEN) || posix_memalign(&dst, 4096, LEN))
        goto out;
    memset(src, 0x3c, LEN);
    memset(dst, 0, LEN);

    /* The device must read what the CPU wrote, or the figures measure nothing. */
    for (int i = 0; i < 2; i++) {
        memset(dst, 0, LEN);
        if (run_sample(&cs[i], 1) < 0)
            goto out;
        if (memcmp(dst, src, LEN) != 0) {
            printf("FAILED: %s read back something else than the buffer holds\n", cs[i].name);
            goto out;
        }
    }

    bench_print_machine();
    unsigned iters = o.quick ? 4 : 256;
    printf("method: %u repetitions of %u copies of 1 MiB after a warm-up, interleaved in "
           "rotating order; median GB/s; ratios are medians of per-repetition ratios%s\n",
           o.reps, iters, o.quick ? " (--quick: figures are only a smoke test)" : "");
    for (int i = 0; i < NCONT; i++)
        if (run_sample(&cs[i], iters) < 0)
            goto out;
    for (unsigned r = 0; r < o.reps; r++) {
        for (int k = 0; k < NCONT; k++) {
            struct contestant *c = &cs[(r + k) % NCONT];
            double g = run_sample(c, iters);
            if (g < 0)
                goto out;
            c->gbps[r] = g;
        }
    }

    bool ok = true;
    printf("\n%-16s %10s %24s\n", "contestant", "GB/s", "ratio to memcpy");
    for (int i = 0; i < NCONT; i++) {
        double tmp[MAX_REPS];
        memcpy(tmp, cs[i].gbps, o.reps * sizeof(double));
        double m = bench_median(tmp, o.reps);
        ok = ok && isfinite(m) && m > 0;
        if (cs[i].dev) {
            double rt = ratio_of(&cs[i], &cs[2], o.reps);
            printf("%-16s %10.2f %8.2fx (goal >= 0.70x: %s)\n", cs[i].name, m, rt,
                   rt >= 0.7 ? "met" : "MISSED");
        } else {
            printf("%-16s %10.2f %9s\n", cs[i].name, m, "1.00x");
        }
    }
    if (!ok) {
        printf("FAILED: a figure is not sane\n");
        goto out;
    }
    printf("\ndone\n");
    status = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (a[i] && cs[i].buf.va)
            dmahal_common_free(a[i], &cs[i].buf);
        dmahal_adapter_put(a[i]);
        dmahal_platform_close(p[i]);
    }
    free(src);
    free(dst);
    return status;
}
