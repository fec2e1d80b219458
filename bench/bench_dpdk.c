/* SPDX-License-Identifier: MIT */
/*
 * bench_dpdk.c - DPDK's allocators as benchmark contestants.
 *
 * The EAL runs without hugepages (--no-huge: the machine has none and may not be ours to
 * configure), without PCI scanning, shared files or telemetry, so that it runs as root in a
 * container with nothing set up. IOVA-as-VA is what DPDK picks without physical addresses;
 * asking for it says so. -m 512 preallocates the heap, so the timed loops measure DPDK's
 * allocator, not the kernel's page faults.
 */
#include "bench_dpdk.h"

#include <errno.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <sched.h>
#include <stdio.h>

#define EAL_ARGS                                                                                   \
    "--no-huge", "--iova-mode=va", "--no-pci", "-m", "512", "--no-shconf", "--no-telemetry",       \
        "--log-level=error", "-l", "0"

const char bench_dpdk_eal_args[] = "--no-huge --iova-mode=va --no-pci -m 512 --no-shconf "
                                   "--no-telemetry --log-level=error -l 0";

static int initialised;

int bench_dpdk_init(void)
{
    if (initialised)
        return 0;
    char *argv[] = {"bench", EAL_ARGS, NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
    cpu_set_t before;
    /* The EAL pins the main thread to lcore 0; the benchmarks pin nothing, so every
     * contestant gets the same scheduler freedom. */
    int have_mask = sched_getaffinity(0, sizeof(before), &before) == 0;
    if (rte_eal_init(argc, argv) < 0) {
        fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
        return -rte_errno ? -rte_errno : -EIO;
    }
    if (have_mask)
        sched_setaffinity(0, sizeof(before), &before);
    initialised = 1;
    return 0;
}

void bench_dpdk_fini(void)
{
    if (initialised)
        rte_eal_cleanup();
    initialised = 0;
}

void *bench_dpdk_zmalloc(size_t len, size_t align)
{
    return rte_zmalloc(NULL, len, (unsigned)align);
}

void bench_dpdk_free(void *va)
{
    rte_free(va);
}

void *bench_dpdk_memzone_reserve(size_t len, size_t align, const void **mz)
{
    /* Zones are named and names must be unique among live zones; a counter is the cheapest
     * way a program could name them, and its cost belongs to this API. */
    static unsigned long seq;
    char name[RTE_MEMZONE_NAMESIZE];
    snprintf(name, sizeof(name), "b%lu", seq++);
    const struct rte_memzone *z =
        rte_memzone_reserve_aligned(name, len, SOCKET_ID_ANY, 0, (unsigned)align);
    *mz = z;
    return z ? z->addr : NULL;
}

void bench_dpdk_memzone_free(const void *mz)
{
    rte_memzone_free(mz);
}
