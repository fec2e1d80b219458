/* SPDX-License-Identifier: MIT */
/*
 * bench_dma_paths.c - the platform the test guest runs ($DMAHAL_PLATFORM: vfio in the guest
 * with an IOMMU, noiommu in the one without) against the simulated platform, on the 64-bit edu
 * ($DMAHAL_VM_EDU64): common-buffer alloc+free of 4 KiB and 64 KiB, and a streaming map+unmap
 * of 64 KiB TO_DEVICE, of malloc'd memory (noiommu: bounced, a 64 KiB copy; vfio: pinned and
 * mapped in the IOMMU), of a common buffer (noiommu: in place; vfio: mapped again) and of a
 * registered hugepage of the program's own (dmahal_register; noiommu: in place, vfio: inside
 * one IOMMU mapping made at registration). Where no hugepage is free the registered memory is
 * malloc'd (the sim, and vfio, take that; noiommu refuses it and the benchmark fails).
 *
 * Contestants run interleaved (every repetition runs each once, in rotating order); figures
 * are medians of the per-operation time, ratios medians of per-repetition ratios. The guest is
 * emulated (TCG): read the ratios.
 *
 *   bench_dma_paths [--quick] [--reps N]
 */
#include "harness.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#define MAX_REPS 1000
#define OPS      5 /* 4 KiB alloc+free, 64 KiB alloc+free, map malloc'd, common, registered */
#define MAPLEN   (64u << 10)
#define HUGE     (2u << 20)

static const char usage[] = "usage: bench_dma_paths [--quick] [--reps N]\n"
                            "  in the test guest: common buffers and 64 KiB maps on the guest's\n"
                            "  platform against the simulated one\n";
static const char *const op_names[OPS] = {"alloc+free 4 KiB", "alloc+free 64 KiB",
                                          "map 64 KiB malloc'd", "map 64 KiB common",
                                          "map 64 KiB registered"};

struct side {
    const char *name;
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    unsigned char *user;
    unsigned char *reg; /* registered: a hugepage, else malloc'd */
    bool reg_huge;
    struct dmahal_buf cb;
    double ns[OPS][MAX_REPS];
};

static int side_open(struct side *s, const char *spec, const char *dev)
{
    struct dmahal_desc desc = {.addr_bits = 64, .max_segments = 32, .max_transfer = 1u << 20};
    int rc = dev ? dmahal_platform_open(spec, &s->p) : bench_open_sim(spec, &s->p, &s->d);

    if (!rc && dev)
        rc = dmahal_device_open(s->p, dev, &s->d);
    if (!rc)
        rc = dmahal_adapter_get(s->d, &desc, &s->a);
    if (!rc)
        rc = dmahal_common_alloc(s->a, MAPLEN, 0, &s->cb);
    s->user = malloc(MAPLEN);
    if (!rc && !s->user)
        rc = -ENOMEM;
    s->reg =
        mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    s->reg_huge = s->reg != MAP_FAILED;
    if (!s->reg_huge)
        s->reg = aligned_alloc(HUGE, HUGE);
    if (!rc && !s->reg)
        rc = -ENOMEM;
    if (!rc)
        rc = dmahal_register(s->a, s->reg, HUGE);
    if (rc)
        fprintf(stderr, "bench_dma_paths: %s: %s\n", spec, dmahal_strerror(rc));
    else
        memset(s->user, 1, MAPLEN);
    s->name = dmahal_platform_name(s->p);
    if (!rc)
        printf("%s: registered memory is %s\n", s->name,
               s->reg_huge ? "a hugepage" : "malloc'd (no hugepage free)");
    return rc;
}

static void side_close(struct side *s)
{
    if (s->cb.va)
        dmahal_common_free(s->a, &s->cb);
    free(s->user);
    if (s->reg && s->reg != MAP_FAILED) {
        dmahal_unregister(s->a, s->reg, HUGE);
        if (s->reg_huge)
            munmap(s->reg, HUGE);
        else
            free(s->reg);
    }
    dmahal_platform_close(s->p);
}

/* One sample of @op: @n operations, ns per operation; -1 on failure. */
static double sample(struct side *s, int op, unsigned n)
{
    struct dmahal_buf b;
    struct dmahal_sgl *sgl;
    struct iovec v = {op == 2 ? (void *)s->user : op == 3 ? s->cb.va : s->reg + MAPLEN, MAPLEN};
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < n; i++) {
        if (op < 2) {
            if (dmahal_common_alloc(s->a, op ? MAPLEN : 4096, 0, &b) ||
                dmahal_common_free(s->a, &b))
                return -1;
        } else if (dmahal_map(s->a, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl) || dmahal_unmap(s->a, sgl)) {
            return -1;
        }
    }
    return (double)(bench_now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    const char *dev = getenv("DMAHAL_VM_EDU64"), *spec = getenv("DMAHAL_PLATFORM");
    static struct side s[2];
    unsigned n;
    int rc = bench_parse(argc, argv, usage, &o);

    if (rc)
        return rc > 0 ? 0 : 2;
    if (!dev || !*dev || !spec || !*spec) {
        fprintf(stderr, "bench_dma_paths: DMAHAL_VM_EDU64 and DMAHAL_PLATFORM are not set: run "
                        "it through tests/vm/run.sh\n");
        return 1;
    }
    if (o.reps > MAX_REPS)
        o.reps = MAX_REPS;
    n = o.quick ? 4 : 64;
    if (side_open(&s[0], "sim", NULL) || side_open(&s[1], spec, dev))
        return 1;
    bench_print_machine();
    printf("method: %u repetitions of %u operations after a warm-up, sim and %s interleaved in "
           "rotating order; median ns per operation\n",
           o.reps, n, s[1].name);
    for (unsigned r = 0; r <= o.reps; r++)
        for (int op = 0; op < OPS; op++)
            for (int k = 0; k < 2; k++) {
                struct side *x = &s[(k + r) % 2];
                double ns = sample(x, op, n);

                if (ns < 0) {
                    fprintf(stderr, "bench_dma_paths: %s failed on %s\n", op_names[op], x->name);
                    return 1;
                }
                if (r)
                    x->ns[op][r - 1] = ns;
            }
    printf("\n  %-22s %12s %12s %10s\n", "operation", "sim", s[1].name, "ratio");
    for (int op = 0; op < OPS; op++) {
        double ratio[MAX_REPS];

        for (unsigned r = 0; r < o.reps; r++)
            ratio[r] = s[1].ns[op][r] / s[0].ns[op][r];
        printf("  %-22s %12.0f %12.0f %9.2fx\n", op_names[op], bench_median(s[0].ns[op], o.reps),
               bench_median(s[1].ns[op], o.reps), bench_median(ratio, o.reps));
    }
    side_close(&s[0]);
    side_close(&s[1]);
    printf("\ndone\n");
    return 0;
}
