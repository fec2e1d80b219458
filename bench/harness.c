/* SPDX-License-Identifier: MIT */
/*
 * harness.c - the clock, medians, the command line and the benchmark's device model.
 */
#include "harness.h"

#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int bench_parse(int argc, char **argv, const char *usage, struct bench_opts *o)
{
    o->quick = false;
    o->no_dpdk = false;
    o->reps = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(argv[i], "--no-dpdk") == 0) {
            o->no_dpdk = true;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || v == 0 || v > 1000) {
                fprintf(stderr, "--reps wants 1..1000\n%s", usage);
                return -1;
            }
            o->reps = (unsigned)v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        } else {
            fprintf(stderr, "unknown argument '%s'\n%s", argv[i], usage);
            return -1;
        }
    }
    if (o->reps == 0)
        o->reps = o->quick ? 3 : 11;
    return 0;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_consume(const void *p, size_t len)
{
    /* An empty asm that claims to read the memory: the writes before it must happen. */
    __asm__ volatile("" : : "r"(p), "r"(len) : "memory");
}

void bench_print_machine(void)
{
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *colon = strchr(line, ':');
                if (colon) {
                    snprintf(model, sizeof(model), "%s", colon + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    printf("machine: %s, %ld CPUs online, load average %.2f\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), load[0]);
}

static uint64_t model_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                           unsigned size)
{
    (void)d, (void)state, (void)bar, (void)off, (void)size;
    return 0;
}

static void model_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                        uint64_t val, unsigned size)
{
    (void)d, (void)state, (void)bar, (void)off, (void)val, (void)size;
}

static const struct dmahal_model bench_model = {
    .size = sizeof(struct dmahal_model),
    .name = "bench",
    .summary = "benchmark bus master: registers read as zero, DMA driven by the benchmark",
    .bar_size = {4096},
    .mmio_read = model_read,
    .mmio_write = model_write,
};

int bench_open_sim(const char *spec, struct dmahal_platform **p, struct dmahal_device **d)
{
    *p = NULL;
    *d = NULL;
    int err = dmahal_model_register(&bench_model);
    if (err && err != -EEXIST)
        return err;
    err = dmahal_platform_open(spec, p);
    if (err)
        return err;
    err = dmahal_device_open(*p, "bench", d);
    if (err) {
        dmahal_platform_close(*p);
        *p = NULL;
    }
    return err;
}
