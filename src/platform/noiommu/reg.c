/* SPDX-License-Identifier: MIT */
/*
 * reg.c - registered memory on noiommu: the application's own hugepages, given to devices
 * where they are.
 *
 * Without an IOMMU a registration hands the device physical addresses, so it takes only
 * memory whose physical addresses cannot move while it stays registered: hugetlbfs pages
 * (VmFlags "ht" in /proc/self/smaps), which the kernel neither swaps, reclaims, compacts nor
 * migrates for NUMA balancing while they are mapped, in a mapping that a fork does not turn
 * copy-on-write (shared, "sh", or kept out of children with MADV_DONTFORK, "dc"): after a fork
 * the parent's first write to a private page would move it to a copy. Ordinary pages are
 * refused: mlock keeps a page in RAM but not at one physical address, and transparent huge
 * pages are split and compacted like any other. The pages are faulted in, and their
 * addresses read from /proc/self/pagemap, once per hugepage, at registration.
 *
 * The library's own memory (a common buffer) is registered through pin, as it was mapped.
 */
#include "platform/noiommu/noiommu.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Tells whether the VmFlags line @flags holds the two-letter flag @f. */
static bool has_flag(const char *flags, const char *f)
{
    for (const char *p = flags; (p = strstr(p, f)) != NULL; p += 2)
        if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
            return true;
    return false;
}

int dmahal__nio_smaps_check(FILE *f, uintptr_t start, uintptr_t end, size_t *page, const char **why)
{
    uintptr_t at = start, vs = 0, ve = 0;
    size_t kps = 0;
    char line[512];

    *page = 0;
    *why = "not mapped";
    while (at < end && fgets(line, sizeof(line), f)) {
        unsigned long s, e;
        char perms[8];

        if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3) {
            vs = s;
            ve = e;
            kps = 0;
            continue;
        }
        if (sscanf(line, "KernelPageSize: %zu kB", &kps) == 1) {
            kps <<= 10;
            continue;
        }
        /* VmFlags ends each mapping's block. */
        if (strncmp(line, "VmFlags:", 8) != 0 || ve <= at)
            continue;
        if (vs > at)
            break; /* a hole */
        if (!has_flag(line + 8, "ht") || !kps) {
            *why = "not hugetlbfs memory";
            return -ENOTSUP;
        }
        if (!has_flag(line + 8, "sh") && !has_flag(line + 8, "dc")) {
            *why = "private hugetlbfs memory that a fork would make copy-on-write";
            return -ENOTSUP;
        }
        if (!*page || kps < *page)
            *page = kps;
        at = ve;
    }
    if (at < end) {
        *page = 0;
        return -EFAULT;
    }
    *why = NULL;
    return 0;
}

/* Faults in [va, va + len) of hugetlbfs memory without changing a byte of it. */
static void populate(uint8_t *va, size_t len, size_t huge)
{
    if (madvise(va, len, MADV_POPULATE_WRITE) == 0)
        return;
    /* Older kernels, or memory the process may not write: a read faults the page in too
     * (hugetlbfs has no shared zero page). */
    for (size_t off = 0; off < len; off += huge)
        (void)*(volatile uint8_t *)(va + off);
}

int dmahal__nio_reg_pin(struct dmahal_adapter *a, void *va, size_t len, unsigned *shift,
                        dmahal_addr_t **bus)
{
    struct nio_plat *np = dmahal__adp_plat(a)->priv;
    uintptr_t base, end = (uintptr_t)va + len;
    const char *why = NULL;
    dmahal_addr_t b, *seg;
    size_t huge, n;
    FILE *f;
    int rc;

    *bus = NULL;
    if (dmahal__nio_pin(a, va, len, &b) == 0)
        return -EAGAIN; /* the library's own: registered as it is mapped */
    f = fopen("/proc/self/smaps", "re");
    if (!f)
        return -errno;
    rc = dmahal__nio_smaps_check(f, (uintptr_t)va, end, &huge, &why);
    fclose(f);
    if (rc == 0 && (huge < dmahal__adp_plat(a)->page_size || !DMAHAL__IS_POW2(huge))) {
        why = "not hugetlbfs memory";
        rc = -ENOTSUP;
    }
    if (rc) {
        if (!atomic_exchange(&np->said_reg, true))
            dmahal__nio_say("cannot register %p+0x%zx for devices without an IOMMU: %s. Register "
                            "hugepages (mmap MAP_HUGETLB, MAP_SHARED or MADV_DONTFORK); other "
                            "memory is bounced by dmahal_map without registering it",
                            va, len, why);
        return rc;
    }
    base = DMAHAL__ALIGN_DOWN((uintptr_t)va, huge);
    n = (DMAHAL__ALIGN_UP(end, huge) - base) / huge;
    seg = calloc(n, sizeof(*seg));
    if (!seg)
        return -ENOMEM;
    populate((uint8_t *)base, n * huge, huge);
    for (size_t i = 0; i < n; i++) {
        uint64_t pa;

        rc = dmahal__nio_virt_to_phys((uint8_t *)base + i * huge, &pa);
        if (rc) {
            if (rc == -EPERM && !atomic_exchange(&np->said_reg, true))
                dmahal__nio_say("cannot register memory: reading physical addresses from "
                                "/proc/self/pagemap needs CAP_SYS_ADMIN (run as root)");
            free(seg);
            return rc;
        }
        seg[i] = pa;
    }
    *shift = (unsigned)__builtin_ctzll(huge); /* a power of two: checked above */
    *bus = seg;
    return 0;
}

void dmahal__nio_reg_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus)
{
    /* Hugetlbfs pages stay where they are while they are mapped: nothing was taken. */
    (void)a;
    (void)va;
    (void)len;
    free(bus);
}
