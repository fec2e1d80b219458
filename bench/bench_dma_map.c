/* SPDX-License-Identifier: MIT */
/*
 * bench_dma_map.c - streaming map + unmap latency in the form of Linux's dma_map_benchmark
 * (tools/testing/selftests/dma/dma_map_benchmark.c): the same parameters (threads, seconds,
 * granule in pages, direction, DMA mask bits, a delay between map and unmap standing for the
 * transfer) and the same output (average map and unmap latency with their standard deviation,
 * in microseconds with one decimal, computed from samples in units of 100 ns), so that our
 * figures sit beside the kernel's published ones.
 *
 *   bench_dma_map [-p SPEC] [-D DEVICE] [-m MODE] [-t THREADS] [-s SECONDS] [-g GRANULE]
 *                 [-d DIR] [-b BITS] [-x DELAY_NS]
 *     SPEC     platform (default "sim:iommu=on"); DEVICE its device (default "edu", on vfio
 *              $DMAHAL_VM_EDU64)
 *     MODE     plain: each thread maps its own buffer again and again (the default);
 *              registered: the buffer is registered first (dmahal_register);
 *              cached: plain on an adapter with DMAHAL_DESC_MAP_CACHE;
 *              untrusted: a buffer 64 bytes short of the granule, on an adapter with
 *              DMAHAL_DESC_UNTRUSTED (it bounces); shared: the same short buffer, trusted
 *     DIR      0 bidirectional, 1 to device, 2 from device (the kernel's numbering)
 *   bench_dma_map --vm [--quick]
 *     in the test guest: each mode on the simulated machine with its IOMMU and on vfio, same
 *     run, interleaved, with the ratios.
 *   bench_dma_map --quick
 *     a smoke run of each mode on the simulated machine.
 */
#include "harness.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_THREADS 64

enum mode { MODE_PLAIN, MODE_REGISTERED, MODE_CACHED, MODE_UNTRUSTED, MODE_SHARED, NMODES };

static const char *const mode_names[NMODES] = {"plain", "registered", "cached", "untrusted",
                                               "shared"};

struct params {
    const char *spec, *device;
    enum mode mode;
    unsigned threads, granule, bits, dir;
    double seconds;
    unsigned delay_ns;
};

struct result {
    double map_100ns, map_sd, unmap_100ns, unmap_sd; /* in units of 100 ns */
    uint64_t loops;
    int err;
};

struct worker {
    const struct params *pp;
    struct dmahal_adapter *a;
    pthread_barrier_t *start;
    double sum_map, sq_map, sum_unmap, sq_unmap;
    uint64_t loops;
    int err;
};

static void spin_ns(unsigned ns)
{
    uint64_t until = bench_now_ns() + ns;

    while (ns && bench_now_ns() < until)
        ;
}

static const enum dmahal_dir dirs[3] = {DMAHAL_BIDIRECTIONAL, DMAHAL_TO_DEVICE, DMAHAL_FROM_DEVICE};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    const struct params *pp = w->pp;
    size_t len = (size_t)pp->granule * 4096;
    void *buf = NULL;
    struct iovec v;
    uint64_t end;

    if (posix_memalign(&buf, 4096, len)) {
        w->err = -ENOMEM;
        return NULL;
    }
    memset(buf, 1, len);
    v = (struct iovec){buf, len};
    if (pp->mode == MODE_UNTRUSTED || pp->mode == MODE_SHARED)
        v.iov_len = len - 64;
    if (pp->mode == MODE_REGISTERED)
        w->err = dmahal_register(w->a, buf, len);
    pthread_barrier_wait(w->start);
    end = bench_now_ns() + (uint64_t)(pp->seconds * 1e9);
    while (!w->err && bench_now_ns() < end) {
        struct dmahal_sgl *sgl;
        uint64_t t0 = bench_now_ns(), t1, t2, t3;
        double m, u;

        w->err = dmahal_map(w->a, &v, 1, dirs[pp->dir], 0, &sgl);
        t1 = bench_now_ns();
        if (w->err)
            break;
        spin_ns(pp->delay_ns);
        t2 = bench_now_ns();
        w->err = dmahal_unmap(w->a, sgl);
        t3 = bench_now_ns();
        m = (double)(t1 - t0) / 100.0;
        u = (double)(t3 - t2) / 100.0;
        w->sum_map += m;
        w->sq_map += m * m;
        w->sum_unmap += u;
        w->sq_unmap += u * u;
        w->loops++;
    }
    if (pp->mode == MODE_REGISTERED)
        dmahal_unregister(w->a, buf, len);
    free(buf);
    return NULL;
}

static unsigned desc_flags(enum mode m)
{
    if (m == MODE_UNTRUSTED)
        return DMAHAL_DESC_UNTRUSTED;
    if (m == MODE_CACHED)
        return DMAHAL_DESC_MAP_CACHE;
    return 0;
}

static struct result run(const struct params *pp)
{
    struct result r = {0};
    struct dmahal_platform *p = NULL;
    struct dmahal_device *d = NULL;
    struct dmahal_adapter *a = NULL;
    struct dmahal_desc desc = {.size = sizeof(desc),
                               .addr_bits = pp->bits,
                               .max_transfer = (size_t)pp->granule * 4096,
                               .flags = desc_flags(pp->mode)};
    static struct worker w[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    pthread_barrier_t start;
    double n;

    r.err = dmahal_platform_open(pp->spec, &p);
    if (!r.err)
        r.err = dmahal_device_open(p, pp->device, &d);
    if (!r.err)
        r.err = dmahal_adapter_get(d, &desc, &a);
    if (r.err)
        goto out;
    pthread_barrier_init(&start, NULL, pp->threads);
    for (unsigned i = 0; i < pp->threads; i++) {
        w[i] = (struct worker){.pp = pp, .a = a, .start = &start};
        pthread_create(&tid[i], NULL, worker_run, &w[i]);
    }
    for (unsigned i = 0; i < pp->threads; i++) {
        pthread_join(tid[i], NULL);
        r.loops += w[i].loops;
        if (w[i].err && !r.err)
            r.err = w[i].err;
    }
    pthread_barrier_destroy(&start);
    n = r.loops ? (double)r.loops : 1;
    {
        double sm = 0, qm = 0, su = 0, qu = 0;

        for (unsigned i = 0; i < pp->threads; i++) {
            sm += w[i].sum_map;
            qm += w[i].sq_map;
            su += w[i].sum_unmap;
            qu += w[i].sq_unmap;
        }
        r.map_100ns = sm / n;
        r.unmap_100ns = su / n;
        r.map_sd = sqrt(fmax(0, qm / n - r.map_100ns * r.map_100ns));
        r.unmap_sd = sqrt(fmax(0, qu / n - r.unmap_100ns * r.unmap_100ns));
    }
out:
    dmahal_adapter_put(a);
    dmahal_platform_close(p);
    return r;
}

static const char *const dir_names[3] = {"BIDIRECTIONAL", "TO_DEVICE", "FROM_DEVICE"};

static void print_result(const struct params *pp, const struct result *r)
{
    printf("dma mapping benchmark: platform:%s mode:%s threads:%u seconds:%g dir:%s granule:%u "
           "bits:%u delay:%uns\n",
           pp->spec, mode_names[pp->mode], pp->threads, pp->seconds, dir_names[pp->dir],
           pp->granule, pp->bits, pp->delay_ns);
    if (r->err) {
        printf("  failed: %s\n", dmahal_strerror(r->err));
        return;
    }
    printf("average map latency(us):%.1f standard deviation:%.1f\n", r->map_100ns / 10.0,
           r->map_sd / 10.0);
    printf("average unmap latency(us):%.1f standard deviation:%.1f\n", r->unmap_100ns / 10.0,
           r->unmap_sd / 10.0);
    printf("  (%llu map+unmap pairs; in 100 ns units: map %.2f sd %.2f, unmap %.2f sd %.2f)\n",
           (unsigned long long)r->loops, r->map_100ns, r->map_sd, r->unmap_100ns, r->unmap_sd);
}

/* The guest's comparison: each mode on sim:iommu=on and on vfio, interleaved over @reps
 * rounds, with the goals stated. */
static int vm_suite(bool quick)
{
    const char *dev = getenv("DMAHAL_VM_EDU64");
    static const enum mode modes[] = {MODE_REGISTERED, MODE_CACHED, MODE_PLAIN, MODE_SHARED,
                                      MODE_UNTRUSTED};
    static const double goal[NMODES] = {[MODE_REGISTERED] = 2.0, [MODE_CACHED] = 3.0};
    unsigned reps = quick ? 1 : 3;
    int failed = 0;

    if (!dev || !*dev) {
        fprintf(stderr, "bench_dma_map: DMAHAL_VM_EDU64 is not set: run --vm in the test guest\n");
        return 2;
    }
    bench_print_machine();
    printf("map+unmap of 1 page, 1 thread, %s s per run, sim:iommu=on against vfio, %u "
           "rounds\n",
           quick ? "0.2" : "0.4", reps);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        double sim[8], vf[8], ratio[8];

        for (unsigned k = 0; k < reps; k++) {
            for (unsigned side = 0; side < 2; side++) {
                unsigned which = (k + side) % 2; /* rotate which goes first */
                struct params pp = {.spec = which ? "vfio" : "sim:iommu=on",
                                    .device = which ? dev : "edu",
                                    .mode = modes[i],
                                    .threads = 1,
                                    .granule = 1,
                                    .bits = 64,
                                    .dir = 0,
                                    .seconds = quick ? 0.2 : 0.4};
                struct result r = run(&pp);

                if (k == reps - 1 || r.err)
                    print_result(&pp, &r);
                if (r.err)
                    failed = 1;
                (which ? vf : sim)[k] = (r.map_100ns + r.unmap_100ns) / 10.0;
            }
            ratio[k] = sim[k] > 0 ? vf[k] / sim[k] : 0;
        }
        {
            double s = bench_median(sim, reps), v = bench_median(vf, reps);
            double q = bench_median(ratio, reps);

            printf("%-10s map+unmap: sim %.2f us, vfio %.2f us, vfio/sim %.2fx",
                   mode_names[modes[i]], s, v, q);
            if (goal[modes[i]] > 0)
                printf(" (goal <= %.0fx: %s)", goal[modes[i]],
                       q <= goal[modes[i]] ? "met" : "MISSED");
            printf("\n");
        }
    }
    return failed;
}

static const char usage[] =
    "usage: bench_dma_map [-p SPEC] [-D DEVICE] [-m plain|registered|cached|untrusted|shared]\n"
    "                     [-t THREADS] [-s SECONDS] [-g GRANULE] [-d 0|1|2] [-b BITS] [-x NS]\n"
    "       bench_dma_map --vm [--quick]    (in the test guest: sim against vfio)\n"
    "       bench_dma_map --quick           (a smoke run of every mode on the sim)\n";

int main(int argc, char **argv)
{
    struct params pp = {.spec = "sim:iommu=on",
                        .device = NULL,
                        .mode = MODE_PLAIN,
                        .threads = 1,
                        .granule = 1,
                        .bits = 32,
                        .dir = 0,
                        .seconds = 1};
    bool quick = false, vm = false;
    int c;

    /* Run by tests/vm/run.sh with no arguments: the guest's comparison. */
    if (argc == 1 && getenv("DMAHAL_VM_EDU64"))
        return vm_suite(false);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true, argv[i] = "";
        else if (strcmp(argv[i], "--vm") == 0)
            vm = true, argv[i] = "";
    }
    if (vm)
        return vm_suite(quick);
    while ((c = getopt(argc, argv, "p:D:m:t:s:g:d:b:x:h")) != -1) {
        switch (c) {
        case 'p':
            pp.spec = optarg;
            break;
        case 'D':
            pp.device = optarg;
            break;
        case 'm':
            for (pp.mode = 0; pp.mode < NMODES && strcmp(optarg, mode_names[pp.mode]); pp.mode++)
                ;
            break;
        case 't':
            pp.threads = (unsigned)atoi(optarg);
            break;
        case 's':
            pp.seconds = atof(optarg);
            break;
        case 'g':
            pp.granule = (unsigned)atoi(optarg);
            break;
        case 'd':
            pp.dir = (unsigned)atoi(optarg);
            break;
        case 'b':
            pp.bits = (unsigned)atoi(optarg);
            break;
        case 'x':
            pp.delay_ns = (unsigned)atoi(optarg);
            break;
        default:
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (pp.mode == NMODES || pp.threads < 1 || pp.threads > MAX_THREADS || pp.granule < 1 ||
        pp.granule > 1024 || pp.dir > 2 || pp.bits < 24 || pp.bits > 64 || pp.seconds <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (!pp.device)
        pp.device = strncmp(pp.spec, "vfio", 4) == 0 && getenv("DMAHAL_VM_EDU64")
                        ? getenv("DMAHAL_VM_EDU64")
                        : "edu";
    if (quick) {
        int failed = 0;

        pp.seconds = 0.05;
        for (pp.mode = 0; pp.mode < NMODES; pp.mode++) {
            struct result r = run(&pp);

            print_result(&pp, &r);
            failed |= r.err != 0 || r.loops == 0;
        }
        return failed;
    }
    {
        struct result r = run(&pp);

        print_result(&pp, &r);
        return r.err ? 1 : 0;
    }
}
