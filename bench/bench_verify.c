/* SPDX-License-Identifier: MIT */
/*
 * bench_verify.c - what the verifier costs: the same work with it off, on, and on without
 * backtraces, in one run, interleaved, as medians and ratios to "off".
 *
 *   bench_verify [--quick] [--reps N]
 *
 * Workloads: common alloc+free pairs at three sizes (the verifier adds a record, guard
 * zones, a quarantine and, by default, an allocation and a free backtrace), streaming
 * map+unmap of one and of four pages (a record, a copy of the list, a hash of to-device
 * memory), and a device read inside a live buffer (the device-side hook: a lookup).
 */
#include <dmahal/dmahal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum mode { OFF, ON, ON_NO_BT, MODES };
static const char *const mode_names[MODES] = {"off", "on", "on, no backtraces"};

struct rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
};

static void quiet(const struct dmahal_report *r, void *ctx)
{
    (void)r;
    (*(unsigned long *)ctx)++;
}

static unsigned long reports;

static int rig_open(struct rig *r, enum mode m)
{
    int rc = bench_open_sim("sim", &r->p, &r->d);

    if (rc)
        return rc;
    if (m != OFF)
        rc = dmahal_verify_enable(
            r->p, DMAHAL_VERIFY_COUNT | (m == ON_NO_BT ? DMAHAL_VERIFY_NO_BACKTRACE : 0), quiet,
            &reports);
    if (rc == 0)
        rc = dmahal_adapter_get(r->d, NULL, &r->a);
    return rc;
}

/* Nanoseconds per alloc+free pair of @len bytes. */
static double run_alloc_free(struct rig *r, size_t len, unsigned iters)
{
    struct dmahal_buf b;
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        if (dmahal_common_alloc(r->a, len, 0, &b) || dmahal_common_free(r->a, &b)) {
            fprintf(stderr, "bench_verify: alloc/free of %zu bytes failed\n", len);
            exit(1);
        }
    }
    return (double)(bench_now_ns() - t0) / iters;
}

/* Nanoseconds per map+unmap of @len bytes of host memory, to the device. */
static double run_map_unmap(struct rig *r, void *mem, size_t len, unsigned iters)
{
    struct iovec iov = {mem, len};
    struct dmahal_sgl *sgl;
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        if (dmahal_map(r->a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl) || dmahal_unmap(r->a, sgl)) {
            fprintf(stderr, "bench_verify: map/unmap of %zu bytes failed\n", len);
            exit(1);
        }
    }
    return (double)(bench_now_ns() - t0) / iters;
}

/* Nanoseconds per 64-byte device read inside a live buffer. */
static double run_dev_read(struct rig *r, const struct dmahal_buf *b, unsigned iters)
{
    unsigned char x[64];
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        if (dmahal_dev_read(r->d, b->la + (i % 64) * 64, x, sizeof(x))) {
            fprintf(stderr, "bench_verify: device read failed\n");
            exit(1);
        }
        bench_consume(x, sizeof(x));
    }
    return (double)(bench_now_ns() - t0) / iters;
}

#define WORKLOADS 6
static const char *const workload_names[WORKLOADS] = {
    "common alloc+free 64 B",     "common alloc+free 4 KiB",
    "common alloc+free 64 KiB",   "map+unmap to device 4 KiB",
    "map+unmap to device 16 KiB", "device read 64 B (in a live buffer)"};
static const size_t sizes[WORKLOADS] = {64, 4096, 65536, 4096, 16384, 0};
#define FIRST_MAP 3
#define DEV_READ  5

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct rig rigs[MODES];
    struct dmahal_buf target[MODES];
    unsigned iters;
    double *samples[WORKLOADS][MODES];
    void *mem = NULL;
    int rc = bench_parse(argc, argv, "bench_verify [--quick] [--reps N]", &o);

    if (rc)
        return rc > 0 ? 0 : 2;
    iters = o.quick ? 2000 : 50000;
    if (posix_memalign(&mem, 4096, 16384))
        return 1;
    memset(mem, 1, 16384);
    bench_print_machine();
    for (int m = 0; m < MODES; m++) {
        if (rig_open(&rigs[m], (enum mode)m) ||
            dmahal_common_alloc(rigs[m].a, 4096, 0, &target[m])) {
            fprintf(stderr, "bench_verify: cannot open the simulated platform\n");
            return 1;
        }
        for (int w = 0; w < WORKLOADS; w++)
            samples[w][m] = calloc(o.reps, sizeof(double));
    }
    /* One warm-up round, then the timed ones, each mode once per round in rotating order. */
    for (unsigned rep = 0; rep <= o.reps; rep++) {
        for (int w = 0; w < WORKLOADS; w++) {
            for (int k = 0; k < MODES; k++) {
                int m = (int)((rep + (unsigned)k) % MODES);
                double ns = w == DEV_READ    ? run_dev_read(&rigs[m], &target[m], iters * 4)
                            : w >= FIRST_MAP ? run_map_unmap(&rigs[m], mem, sizes[w], iters)
                                             : run_alloc_free(&rigs[m], sizes[w], iters);

                if (rep > 0)
                    samples[w][m][rep - 1] = ns;
            }
        }
    }
    printf("%-38s %12s %12s %12s %8s %8s\n", "workload (median ns per operation)", "off", "on",
           "on, no bt", "on/off", "nobt/off");
    for (int w = 0; w < WORKLOADS; w++) {
        double med[MODES];

        for (int m = 0; m < MODES; m++)
            med[m] = bench_median(samples[w][m], o.reps);
        printf("%-38s %12.1f %12.1f %12.1f %7.2fx %7.2fx\n", workload_names[w], med[OFF], med[ON],
               med[ON_NO_BT], med[ON] / med[OFF], med[ON_NO_BT] / med[OFF]);
    }
    printf("(modes: %s | %s | %s; %u repetitions of %u operations; reports made: %lu)\n",
           mode_names[OFF], mode_names[ON], mode_names[ON_NO_BT], o.reps, iters, reports);
    for (int m = 0; m < MODES; m++) {
        dmahal_common_free(rigs[m].a, &target[m]);
        dmahal_platform_close(rigs[m].p);
        for (int w = 0; w < WORKLOADS; w++)
            free(samples[w][m]);
    }
    free(mem);
    return reports ? 1 : 0; /* a clean workload must not make the verifier speak */
}
