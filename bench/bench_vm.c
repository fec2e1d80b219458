/* SPDX-License-Identifier: MIT */
/*
 * bench_vm.c - dmahal on real VFIO against the simulated platform, in the test guest
 * (tests/vm/run.sh runs it like a test): the cost of a common buffer (alloc + free of 64 B,
 * 4 KiB and 64 KiB) on each, the round trip of 4 KiB through QEMU's edu device and through
 * the simulated edu model with the same driver, the latency of a 4 KiB NVMe write and
 * read with the example NVMe driver, and a streaming map + unmap of 4 KiB of malloc'd memory
 * (dmahal_map) on VFIO, where the kernel pins the page and writes the IOMMU's tables, against
 * the simulated machine with and without its IOMMU.
 *
 * The guest runs under TCG unless told otherwise, so absolute figures are emulated time on a
 * shared machine: read the ratios. Contestants run interleaved (every repetition runs each
 * once, in rotating order); figures are medians, ratios medians of per-repetition ratios.
 *
 *   bench_vm [--quick] [--reps N]
 * Devices come from $DMAHAL_VM_EDU, $DMAHAL_VM_EDU64 and $DMAHAL_VM_NVME (the guest sets
 * them). Exits 0 when every figure was measured and every transfer read back what it wrote.
 */
#include "edu/edu_driver.h"
#include "harness.h"
#include "nvme/nvme_driver.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define MAX_REPS 1000
#define BATCH    16u /* buffers live at once in an alloc+free sample */
#define NSIZES   3
#define EDU_LEN  EDU_DMA_LIMIT /* 4 KiB less the byte QEMU 7.2's edu must not be given */
#define NVME_LBA 2048u

static const size_t sizes[NSIZES] = {64, 4096, 65536};

static const char usage[] = "usage: bench_vm [--quick] [--reps N]\n"
                            "  in the test guest: common buffers and device round trips,\n"
                            "  VFIO against the simulated platform\n";

struct side {
    const char *name;
    struct dmahal_platform *p;
    struct dmahal_device *alloc_dev, *edu_dev;
    struct dmahal_adapter *a;
    struct edu *edu;
    double alloc_ns[NSIZES][MAX_REPS];
    double edu_us[MAX_REPS];
};

static const char *env(const char *var)
{
    const char *v = getenv(var);

    if (!v || !*v) {
        fprintf(stderr, "bench_vm: %s is not set: run this program through tests/vm/run.sh\n", var);
        return NULL;
    }
    return v;
}

static int side_open(struct side *s, const char *spec, const char *alloc_dev, const char *edu)
{
    struct dmahal_desc desc = {.addr_bits = 64, .coherent = true};
    int err;

    s->name = spec;
    err = dmahal_platform_open(spec, &s->p);
    if (!err)
        err = dmahal_device_open(s->p, alloc_dev, &s->alloc_dev);
    if (!err)
        err = dmahal_adapter_get(s->alloc_dev, &desc, &s->a);
    if (!err)
        err = dmahal_device_open(s->p, edu, &s->edu_dev);
    if (!err)
        err = edu_attach(s->edu_dev, EDU_DEFAULT_ADDR_BITS, &s->edu);
    if (err)
        fprintf(stderr, "bench_vm: cannot set up %s: %s\n", spec, dmahal_strerror(err));
    return err;
}

static void side_close(struct side *s)
{
    edu_detach(s->edu);
    dmahal_adapter_put(s->a);
    dmahal_platform_close(s->p);
}

/* @iters batches of BATCH allocations then their frees; ns per alloc+free, or -errno. */
static double alloc_sample(struct side *s, size_t len, unsigned iters)
{
    struct dmahal_buf b[BATCH];
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        for (unsigned k = 0; k < BATCH; k++) {
            int err = dmahal_common_alloc(s->a, len, 0, &b[k]);

            if (err) {
                fprintf(stderr, "bench_vm: %s: alloc of %zu: %s\n", s->name, len,
                        dmahal_strerror(err));
                return err;
            }
            ((volatile unsigned char *)b[k].va)[len - 1] = 1; /* the CPU can use it */
        }
        for (unsigned k = 0; k < BATCH; k++) {
            int err = dmahal_common_free(s->a, &b[k]);

            if (err) {
                fprintf(stderr, "bench_vm: %s: free: %s\n", s->name, dmahal_strerror(err));
                return err;
            }
        }
    }
    return (double)(bench_now_ns() - t0) / ((double)iters * BATCH);
}

/* @iters round trips of EDU_LEN bytes into the device and back, checked; us each or -errno. */
static double edu_sample(struct side *s, unsigned iters, unsigned seed)
{
    static unsigned char out[EDU_LEN], back[EDU_LEN];
    uint64_t t = 0;

    for (unsigned i = 0; i < iters; i++) {
        uint64_t t0;
        int err;

        for (size_t k = 0; k < EDU_LEN; k++)
            out[k] = (unsigned char)(k * 13 + seed + i);
        memset(back, 0, sizeof(back));
        t0 = bench_now_ns();
        err = edu_write(s->edu, 0, out, EDU_LEN);
        if (!err)
            err = edu_read(s->edu, 0, back, EDU_LEN);
        t += bench_now_ns() - t0;
        if (!err && memcmp(out, back, EDU_LEN) != 0)
            err = -EIO;
        if (err) {
            fprintf(stderr, "bench_vm: %s: edu round trip: %s\n", s->name, dmahal_strerror(err));
            return err;
        }
    }
    return (double)t / 1e3 / iters;
}

/* @iters 4 KiB writes each followed by a read of the same blocks, checked. */
static int nvme_sample(struct nvme *n, const struct dmahal_buf *b, uint32_t lba_size,
                       unsigned iters, unsigned seed, double *w_us, double *r_us)
{
    uint32_t nblocks = 4096 / lba_size;
    uint64_t tw = 0, tr = 0;

    for (unsigned i = 0; i < iters; i++) {
        unsigned char *p = b->va;
        uint64_t t0, t1, t2;
        int err;

        for (size_t k = 0; k < 4096; k++)
            p[k] = (unsigned char)(k * 5 + seed + i);
        t0 = bench_now_ns();
        err = nvme_io(n, NVME_CMD_WRITE, NVME_LBA, nblocks, b, 0, NULL);
        t1 = bench_now_ns();
        memset(p, 0, 4096);
        if (!err)
            err = nvme_io(n, NVME_CMD_READ, NVME_LBA, nblocks, b, 0, NULL);
        t2 = bench_now_ns();
        for (size_t k = 0; !err && k < 4096; k++)
            if (p[k] != (unsigned char)(k * 5 + seed + i))
                err = -EIO;
        if (err) {
            fprintf(stderr, "bench_vm: nvme write+read: %s\n", dmahal_strerror(err));
            return err;
        }
        tw += t1 - t0;
        tr += t2 - t1;
    }
    *w_us = (double)tw / 1e3 / iters;
    *r_us = (double)tr / 1e3 / iters;
    return 0;
}

/* @iters map+unmap pairs of @len bytes at @buf, TO_DEVICE; ns per pair, or -errno. */
static double map_sample(struct dmahal_adapter *a, void *buf, size_t len, unsigned iters)
{
    struct iovec iov = {buf, len};
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        struct dmahal_sgl *sgl;
        int err = dmahal_map(a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl);

        if (!err)
            err = dmahal_unmap(a, sgl);
        if (err) {
            fprintf(stderr, "bench_vm: map+unmap: %s\n", dmahal_strerror(err));
            return err;
        }
    }
    return (double)(bench_now_ns() - t0) / iters;
}

static double median_of(const double *v, unsigned n)
{
    double tmp[MAX_REPS];

    memcpy(tmp, v, n * sizeof(double));
    return bench_median(tmp, n);
}

static double ratio_median(const double *a, const double *b, unsigned n)
{
    double r[MAX_REPS];

    for (unsigned i = 0; i < n; i++)
        r[i] = a[i] / b[i];
    return bench_median(r, n);
}

static int run_alloc(struct side s[2], const struct bench_opts *o, unsigned iters)
{
    for (int z = 0; z < NSIZES; z++)
        for (int k = 0; k < 2; k++)
            if (alloc_sample(&s[k], sizes[z], 1) < 0) /* warm-up */
                return -1;
    for (unsigned r = 0; r < o->reps; r++) {
        for (int z = 0; z < NSIZES; z++) {
            for (int k = 0; k < 2; k++) {
                struct side *c = &s[(r + k) % 2];
                double v = alloc_sample(c, sizes[z], iters);

                if (v < 0)
                    return -1;
                c->alloc_ns[z][r] = v;
            }
        }
    }
    printf("\ncommon buffer alloc+free (%u batches of %u live buffers; median ns per pair)\n",
           iters, BATCH);
    printf("  %-8s %12s %12s %12s\n", "size", "sim", "vfio", "vfio/sim");
    for (int z = 0; z < NSIZES; z++) {
        double ms = median_of(s[0].alloc_ns[z], o->reps), mv = median_of(s[1].alloc_ns[z], o->reps);

        printf("  %-8zu %12.0f %12.0f %11.2fx\n", sizes[z], ms, mv,
               ratio_median(s[1].alloc_ns[z], s[0].alloc_ns[z], o->reps));
        if (!(ms > 0 && mv > 0 && isfinite(ms) && isfinite(mv)))
            return -1;
    }
    return 0;
}

static int run_edu(struct side s[2], const struct bench_opts *o)
{
    /* QEMU's edu takes 100 ms of virtual time per transfer: one round trip per sample on
     * VFIO; the model finishes at once, so many per sample there. */
    const unsigned iters[2] = {o->quick ? 10 : 200, 1};

    for (int k = 0; k < 2; k++)
        if (edu_sample(&s[k], 1, 0) < 0)
            return -1;
    for (unsigned r = 0; r < o->reps; r++) {
        for (int k = 0; k < 2; k++) {
            int i = (int)(r + k) % 2;
            double v = edu_sample(&s[i], iters[i], r);

            if (v < 0)
                return -1;
            s[i].edu_us[r] = v;
        }
    }
    {
        double ms = median_of(s[0].edu_us, o->reps), mv = median_of(s[1].edu_us, o->reps);

        printf("\nedu DMA of %u bytes to the device and back, same driver (median us per round "
               "trip)\n",
               EDU_LEN);
        printf("  %-8s %12.1f\n  %-8s %12.1f\n  vfio/sim %11.0fx\n", "sim", ms, "vfio", mv,
               ratio_median(s[1].edu_us, s[0].edu_us, o->reps));
        return ms > 0 && mv > 0 ? 0 : -1;
    }
}

/* Map + unmap of one 4 KiB page: sim without IOMMU (a pin), sim with its IOMMU (its page
 * table), vfio (VFIO_IOMMU_MAP_DMA and UNMAP_DMA: pinning, the guest's VT-d tables and, with
 * caching-mode, a trap to QEMU on each). */
static int run_map(struct side s[2], const struct bench_opts *o)
{
    enum { N = 3 };
    static double ns[N][MAX_REPS];
    static const char *const names[N] = {"sim", "sim:iommu=on", "vfio"};
    const unsigned iters[N] = {o->quick ? 100 : 4000, o->quick ? 100 : 4000, o->quick ? 10 : 200};
    struct dmahal_desc desc = {.addr_bits = 64, .coherent = true};
    struct dmahal_platform *ip = NULL;
    struct dmahal_device *idev = NULL;
    struct dmahal_adapter *a[N] = {s[0].a, NULL, s[1].a};
    void *buf = aligned_alloc(4096, 4096);
    int err = buf ? 0 : -ENOMEM;

    if (!err)
        err = dmahal_platform_open("sim:iommu=on", &ip);
    if (!err)
        err = dmahal_device_open(ip, "edu", &idev);
    if (!err)
        err = dmahal_adapter_get(idev, &desc, &a[1]);
    if (err) {
        fprintf(stderr, "bench_vm: cannot set up sim:iommu=on: %s\n", dmahal_strerror(err));
        goto out;
    }
    memset(buf, 7, 4096);
    for (int k = 0; k < N && !err; k++)
        if (map_sample(a[k], buf, 4096, 10) < 0) /* warm-up */
            err = -EIO;
    for (unsigned r = 0; r < o->reps && !err; r++) {
        for (int k = 0; k < N && !err; k++) {
            int i = (int)(r + (unsigned)k) % N;
            double v = map_sample(a[i], buf, 4096, iters[i]);

            if (v < 0)
                err = -EIO;
            ns[i][r] = v;
        }
    }
    if (!err) {
        printf("\nstreaming map+unmap of 4 KiB of malloc'd memory, TO_DEVICE (median ns per "
               "pair)\n");
        for (int k = 0; k < N; k++)
            printf("  %-14s %12.0f\n", names[k], median_of(ns[k], o->reps));
        printf("  vfio/sim:iommu=on %8.0fx\n", ratio_median(ns[2], ns[1], o->reps));
    }
out:
    if (a[1])
        dmahal_adapter_put(a[1]);
    dmahal_platform_close(ip);
    free(buf);
    return err ? -1 : 0;
}

static int run_nvme(struct dmahal_platform *p, const struct bench_opts *o)
{
    const char *addr = env("DMAHAL_VM_NVME");
    struct dmahal_device *dev = NULL;
    struct nvme *n = NULL;
    struct nvme_info info;
    struct dmahal_buf b = {0};
    double w[MAX_REPS], rd[MAX_REPS], tot[MAX_REPS];
    unsigned iters = o->quick ? 4 : 32;
    int err = addr ? 0 : -EINVAL;

    if (!err)
        err = dmahal_device_open(p, addr, &dev);
    if (!err)
        err = nvme_open(dev, &n);
    if (!err)
        err = nvme_identify(n, &info);
    if (!err)
        err = dmahal_common_alloc(nvme_adapter(n), 4096, 0, &b);
    if (!err)
        err = nvme_sample(n, &b, info.lba_size, 2, 99, &w[0], &rd[0]); /* warm-up */
    for (unsigned r = 0; !err && r < o->reps; r++) {
        err = nvme_sample(n, &b, info.lba_size, iters, r, &w[r], &rd[r]);
        tot[r] = w[r] + rd[r];
    }
    if (!err) {
        printf("\nnvme (%s, \"%s\") 4 KiB at lba %u, %u pairs per sample (median us)\n", addr,
               info.model, NVME_LBA, iters);
        printf("  write %10.1f\n  read  %10.1f\n  both  %10.1f\n", median_of(w, o->reps),
               median_of(rd, o->reps), median_of(tot, o->reps));
    } else {
        fprintf(stderr, "bench_vm: nvme: %s\n", dmahal_strerror(err));
    }
    if (b.va)
        dmahal_common_free(nvme_adapter(n), &b);
    nvme_close(n);
    dmahal_device_close(dev);
    return err ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    static struct side s[2]; /* sim, vfio */
    const char *edu, *edu64;
    int rc = bench_parse(argc, argv, usage, &o), status = 1;

    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    edu = env("DMAHAL_VM_EDU");
    edu64 = env("DMAHAL_VM_EDU64");
    if (!edu || !edu64)
        return 2;
    if (side_open(&s[0], "sim", "edu", "edu") || side_open(&s[1], "vfio", edu64, edu))
        goto out;
    bench_print_machine();
    printf("method: %u repetitions after a warm-up, sim and vfio interleaved in rotating order; "
           "medians; ratios are medians of per-repetition ratios%s\n",
           o.reps, o.quick ? " (--quick: a smoke test)" : "");
    printf("note: the guest is emulated (TCG unless run with --accel kvm): compare ratios, not "
           "absolute figures\n");
    if (run_alloc(s, &o, o.quick ? 4 : 64) || run_edu(s, &o) || run_map(s, &o) ||
        run_nvme(s[1].p, &o))
        goto out;
    printf("\ndone\n");
    status = 0;
out:
    side_close(&s[0]);
    side_close(&s[1]);
    return status;
}
