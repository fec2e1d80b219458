/* SPDX-License-Identifier: MIT */
/*
 * harness.h - what every benchmark program shares: the clock, the median, the command line
 * and the model of a device for the simulated platform.
 *
 * Timings on a shared machine are noisy, so programs interleave their contestants (every
 * repetition runs each contestant once, in rotating order) and report medians and ratios,
 * never absolute pass/fail figures.
 */
#ifndef DMAHAL_BENCH_HARNESS_H
#define DMAHAL_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dmahal_platform;
struct dmahal_device;

/* What the command line asked for. */
struct bench_opts {
    bool quick;    /* a smoke run: few iterations, few repetitions */
    bool no_dpdk;  /* leave DPDK's contestants out (e.g. under valgrind) */
    unsigned reps; /* timed repetitions per contestant (after one warm-up) */
};

/* Parses --quick, --reps N, --no-dpdk and --help. Returns 0, 1 if the program should exit with 0
 * (help was printed), or -1 after printing the usage for a bad argument. */
int bench_parse(int argc, char **argv, const char *usage, struct bench_opts *o);

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);

/* The median of @n samples (sorted in place); 0 for n == 0. */
double bench_median(double *v, size_t n);

/* Keeps the compiler from dropping work whose result nobody reads. */
void bench_consume(const void *p, size_t len);

/* Prints a one-line description of the machine: CPU model, online CPUs, load average. */
void bench_print_machine(void);

/*
 * Opens @spec and a device of the benchmark's own model on it ("bench": one empty BAR, no
 * engine; the benchmarks drive DMA with dmahal_dev_read themselves).
 * @return 0 or a negative errno, with both out-parameters cleared.
 */
int bench_open_sim(const char *spec, struct dmahal_platform **p, struct dmahal_device **d);

#endif /* DMAHAL_BENCH_HARNESS_H */
