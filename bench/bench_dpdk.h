/* SPDX-License-Identifier: MIT */
/*
 * bench_dpdk.h - the DPDK contestants, behind a plain C interface so that only
 * bench_dpdk.c sees DPDK's headers (and its compiler flags).
 */
#ifndef DMAHAL_BENCH_DPDK_H
#define DMAHAL_BENCH_DPDK_H

#include <stddef.h>

/* The EAL arguments the benchmarks use, as one string for printing. */
extern const char bench_dpdk_eal_args[];

/* Initialises DPDK's EAL (once) and gives back the CPU affinity it takes away.
 * Returns 0, or a negative errno with a message printed. */
int bench_dpdk_init(void);

/* Releases the EAL. */
void bench_dpdk_fini(void);

/* rte_zmalloc / rte_free. Returns NULL on failure. */
void *bench_dpdk_zmalloc(size_t len, size_t align);
void bench_dpdk_free(void *va);

/* rte_memzone_reserve_aligned / rte_memzone_free under a fresh name; @mz receives the zone.
 * Returns the zone's address, NULL on failure. */
void *bench_dpdk_memzone_reserve(size_t len, size_t align, const void **mz);
void bench_dpdk_memzone_free(const void *mz);

#endif /* DMAHAL_BENCH_DPDK_H */
