/* SPDX-License-Identifier: MIT */
/*
 * mem.c - DMA memory on noiommu: the low reservation through /dev/mem, hugepages and their
 * physical addresses, allocation under an adapter's reach, and what streaming maps may give a
 * device where it is.
 */
#include "platform/noiommu/noiommu.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGEMAP_PRESENT  (1ull << 63)
#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)

/* ---- physical addresses ----------------------------------------------------------------- */

int dmahal__nio_virt_to_phys(const void *va, uint64_t *pa)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t ent = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    *pa = 0;
    if (fd < 0)
        return errno == EACCES ? -EPERM : -errno;
    n = pread(fd, &ent, sizeof(ent), (off_t)((uintptr_t)va / (uintptr_t)page * sizeof(ent)));
    close(fd);
    if (n != (ssize_t)sizeof(ent))
        return -EFAULT;
    if (!(ent & PAGEMAP_PRESENT))
        return -EFAULT;
    /* Without CAP_SYS_ADMIN the kernel shows every page present at frame 0. */
    if ((ent & PAGEMAP_PFN_MASK) == 0)
        return -EPERM;
    *pa = (ent & PAGEMAP_PFN_MASK) * (uint64_t)page + ((uintptr_t)va & (uintptr_t)(page - 1));
    return 0;
}

/* ---- regions ------------------------------------------------------------------------------ */

static void region_insert(struct nio_plat *np, struct nio_region *r)
{
    /* Hugepages first, the low reservation last: a wide adapter leaves the low memory to the
     * narrow ones. */
    struct nio_region **pp = &np->regions;

    if (r->huge) {
        r->next = np->regions;
        np->regions = r;
        return;
    }
    while (*pp)
        pp = &(*pp)->next;
    r->next = NULL;
    *pp = r;
}

static void region_destroy(struct nio_region *r)
{
    dmahal__range_fini(&r->free);
    munmap(r->map, r->map_len);
    free(r);
}

static void region_unlink(struct nio_plat *np, struct nio_region *r)
{
    for (struct nio_region **pp = &np->regions; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

void dmahal__nio_regions_free(struct nio_plat *np)
{
    while (np->regions) {
        struct nio_region *r = np->regions;

        np->regions = r->next;
        region_destroy(r);
    }
}

/* The largest power of two, at most 1 GiB, that divides @pa: the low region's CPU mapping is
 * placed at the same offset modulo it, so that an aligned bus address has an aligned va. */
static uint64_t natural_align(uint64_t pa)
{
    uint64_t a = pa ? pa & -pa : (1ull << 30);

    return a > (1ull << 30) ? (1ull << 30) : a;
}

int dmahal__nio_low_open(struct nio_plat *np)
{
    uint64_t align = natural_align(np->low_start);
    struct nio_region *r;
    uint8_t *raw, *va;
    int fd, rc;

    fd = open(np->mem_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        dmahal__nio_say("cannot open %s for the low reservation (%s): %s%s", np->mem_path,
                        np->low_from, strerror(errno),
                        errno == EACCES || errno == EPERM ? " (run as root)" : "");
        return rc == -EPERM ? -EACCES : rc;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        close(fd);
        return -ENOMEM;
    }
    /* Address space first (nothing behind it), then the reservation over its aligned part. */
    r->map_len = (size_t)(np->low_len + align);
    raw = mmap(NULL, r->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        rc = -ENOMEM;
        goto err_free;
    }
    va = (uint8_t *)DMAHAL__ALIGN_UP((uintptr_t)raw, align);
    if (mmap(va, (size_t)np->low_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
             (off_t)np->low_start) == MAP_FAILED) {
        rc = errno == EPERM || errno == EACCES ? -EACCES : -errno;
        dmahal__nio_say("cannot map 0x%" PRIx64 "+0x%" PRIx64 " of %s (%s): %s. The range must "
                        "be reserved, not System RAM: boot with memmap=%" PRIu64 "M$0x%" PRIx64
                        " and check that /proc/iomem shows it as Reserved",
                        np->low_start, np->low_len, np->mem_path, np->low_from, strerror(errno),
                        np->low_len >> 20, np->low_start);
        munmap(raw, r->map_len);
        goto err_free;
    }
    close(fd);
    madvise(va, (size_t)np->low_len, MADV_DONTFORK);
    r->map = raw;
    r->va = va;
    r->pa = np->low_start;
    r->len = (size_t)np->low_len;
    dmahal__range_init(&r->free);
    rc = dmahal__range_add(&r->free, r->pa, r->len);
    if (rc) {
        region_destroy(r);
        return rc;
    }
    region_insert(np, r);
    return 0;

err_free:
    close(fd);
    free(r);
    return rc;
}

/* Maps @len bytes of hugepages (a multiple of the hugepage size), physically contiguous, as a
 * new region. Called with the lock held. */
static int huge_map(struct nio_plat *np, size_t len, struct nio_region **out)
{
    struct nio_region *r;
    uint64_t pa, next;
    uint8_t *va;
    int rc;

    *out = NULL;
    va = mmap(NULL, len, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
    if (va == MAP_FAILED)
        return np->huge_error = -ENOMEM;
    /* MAP_POPULATE gives no error when the pool runs dry: touch every page to be sure. */
    for (size_t off = 0; off < len; off += np->huge_size)
        va[off] = 0;
    madvise(va, len, MADV_DONTFORK);
    rc = dmahal__nio_virt_to_phys(va, &pa);
    for (size_t off = np->huge_size; rc == 0 && off < len; off += np->huge_size) {
        rc = dmahal__nio_virt_to_phys(va + off, &next);
        if (rc == 0 && next != pa + off)
            rc = -EAGAIN; /* not contiguous */
    }
    if (rc) {
        munmap(va, len);
        if (rc != -EAGAIN)
            np->huge_error = rc;
        return rc;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        munmap(va, len);
        return -ENOMEM;
    }
    r->map = r->va = va;
    r->map_len = r->len = len;
    r->pa = pa;
    r->huge = true;
    dmahal__range_init(&r->free);
    rc = dmahal__range_add(&r->free, pa, len);
    if (rc) {
        region_destroy(r);
        return rc;
    }
    if (pa < np->huge_lowest)
        np->huge_lowest = pa;
    region_insert(np, r);
    *out = r;
    return 0;
}

static int region_take(struct nio_region *r, size_t len, uint64_t align, uint64_t boundary,
                       uint64_t max_addr, struct dmahal__chunk *out)
{
    uint64_t pa;

    if (r->pa > max_addr || dmahal__range_alloc(&r->free, len, align, boundary, max_addr, &pa))
        return -ENOMEM;
    out->va = r->va + (pa - r->pa);
    out->la = pa;
    out->len = len;
    out->cookie = (uint64_t)(uintptr_t)r;
    return 0;
}

/* The message for memory that is not there, once per platform. */
static void say_nomem(struct nio_plat *np, const char *who, size_t len, uint64_t max_addr)
{
    unsigned bits = 64;

    while (bits > 1 && (max_addr >> (bits - 1)) == 0)
        bits--;
    if (atomic_exchange(&np->said_nomem, true))
        return;
    if (np->huge_error == -EPERM)
        dmahal__nio_say("hugepages are unusable: reading physical addresses from "
                        "/proc/self/pagemap needs CAP_SYS_ADMIN (run as root)");
    if (np->low_len)
        dmahal__nio_say("no DMA memory for %s: %zu bytes below 2^%u wanted; the low reservation "
                        "0x%" PRIx64 "+%" PRIu64 "M (%s) is %s. Reserve more below 2^%u: "
                        "memmap=SIZE$START on the kernel command line, and lowmem=START+SIZE",
                        who, len, bits, np->low_start, np->low_len >> 20, np->low_from,
                        np->low_start + len - 1 > max_addr ? "out of its reach" : "used up", bits);
    else
        dmahal__nio_say("no DMA memory for %s: %zu bytes below 2^%u wanted, and %s. Reserve low "
                        "memory: boot with memmap=64M$0x8000000 and open "
                        "\"noiommu:lowmem=0x8000000+64M\" (or set " NIO_ENV_LOWMEM ")",
                        who, len, bits,
                        !np->huge_on ? "hugepages are off"
                        : np->huge_error == -ENOMEM
                            ? "no hugepage is free (echo N > /proc/sys/vm/nr_hugepages)"
                            : "the hugepages lie above that");
}

/* Takes @len bytes at bus addresses <= @max_addr; with the lock held. */
static int take(struct nio_plat *np, size_t len, uint64_t align, uint64_t boundary,
                uint64_t max_addr, struct dmahal__chunk *out)
{
    struct nio_region *r;

    /* Hugepages mapped already, then a fresh one, and the low reservation last: it is the
     * only memory a narrow device reaches. */
    for (r = np->regions; r && r->huge; r = r->next)
        if (region_take(r, len, align, boundary, max_addr, out) == 0)
            return 0;
    /* A fresh hugepage, unless hugepages have come only from above this reach. */
    if (np->huge_on && align <= np->huge_size && max_addr >= np->huge_lowest &&
        np->huge_error != -EPERM && huge_map(np, DMAHAL__ALIGN_UP(len, np->huge_size), &r) == 0) {
        if (region_take(r, len, align, boundary, max_addr, out) == 0)
            return 0;
        region_unlink(np, r);
        region_destroy(r);
    }
    for (r = np->regions; r; r = r->next)
        if (!r->huge && region_take(r, len, align, boundary, max_addr, out) == 0)
            return 0;
    return -ENOMEM;
}

static void give_back(struct nio_plat *np, const struct dmahal__chunk *ch)
{
    struct nio_region *r = (struct nio_region *)(uintptr_t)ch->cookie;
    unsigned spare = 0;

    dmahal__range_add(&r->free, ch->la, ch->len);
    if (!r->huge || r->free.free_bytes != r->len)
        return;
    /* One whole hugepage region stays for the next arena; more go back to the kernel. */
    for (struct nio_region *o = np->regions; o; o = o->next)
        if (o != r && o->huge && o->free.free_bytes == o->len)
            spare++;
    if (spare) {
        region_unlink(np, r);
        region_destroy(r);
    }
}

int dmahal__nio_mem_alloc(struct dmahal_adapter *a, size_t len, size_t align,
                          struct dmahal__chunk *out)
{
    struct nio_plat *np = dmahal__adp_plat(a)->priv;
    const struct dmahal__constraints *c = &dmahal__adp(a)->c;
    uint64_t boundary = c->boundary && len <= c->boundary ? c->boundary : 0;
    int rc;

    pthread_mutex_lock(&np->lock);
    rc = take(np, len, align, boundary, c->max_addr, out);
    pthread_mutex_unlock(&np->lock);
    if (rc)
        say_nomem(np, dmahal__adp_dev(a)->name, len, c->max_addr);
    return rc;
}

void dmahal__nio_mem_free(struct dmahal_adapter *a, const struct dmahal__chunk *ch)
{
    struct nio_plat *np = dmahal__adp_plat(a)->priv;

    pthread_mutex_lock(&np->lock);
    give_back(np, ch);
    pthread_mutex_unlock(&np->lock);
}

int dmahal__nio_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                             struct dmahal__chunk *out)
{
    struct nio_plat *np = dmahal__plat(p)->priv;
    int rc;

    pthread_mutex_lock(&np->lock);
    rc = take(np, len, dmahal__plat(p)->page_size, 0, max_addr, out);
    pthread_mutex_unlock(&np->lock);
    if (rc)
        say_nomem(np, "bounce pages", len, max_addr);
    return rc;
}

void dmahal__nio_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch)
{
    struct nio_plat *np = dmahal__plat(p)->priv;

    pthread_mutex_lock(&np->lock);
    give_back(np, ch);
    pthread_mutex_unlock(&np->lock);
}

int dmahal__nio_region_phys(struct nio_plat *np, const void *va, uint64_t *pa)
{
    const uint8_t *p = va;
    int rc = -ENOENT;

    pthread_mutex_lock(&np->lock);
    for (struct nio_region *r = np->regions; r; r = r->next)
        if (p >= r->va && p < r->va + r->len) {
            *pa = r->pa + (uint64_t)(p - r->va);
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&np->lock);
    return rc;
}

/* ---- streaming maps: only memory the library owns goes to a device in place --------------- */

/* Tells whether any of [pa, pa + len) is free in @r (not handed out, so not the caller's). */
static bool overlaps_free(const struct nio_region *r, uint64_t pa, uint64_t len)
{
    for (size_t i = 0; i < r->free.n; i++)
        if (r->free.v[i].start < pa + len && pa < r->free.v[i].end)
            return true;
    return false;
}

int dmahal__nio_pin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus)
{
    struct nio_plat *np = dmahal__adp_plat(a)->priv;
    uint8_t *p = va;
    int rc = -EAGAIN;

    pthread_mutex_lock(&np->lock);
    for (struct nio_region *r = np->regions; r; r = r->next) {
        if (p < r->va || p + len > r->va + r->len)
            continue;
        *bus = r->pa + (uint64_t)(p - r->va);
        rc = overlaps_free(r, *bus, len) ? -EAGAIN : 0;
        break;
    }
    pthread_mutex_unlock(&np->lock);
    return rc;
}

void dmahal__nio_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus)
{
    /* Nothing was pinned: the memory is the library's and stays where it is. */
    (void)a;
    (void)va;
    (void)len;
    (void)bus;
}

void dmahal__nio_describe_mem(struct nio_plat *np, FILE *f)
{
    unsigned huge = 0;
    uint64_t huge_free = 0;

    pthread_mutex_lock(&np->lock);
    for (struct nio_region *r = np->regions; r; r = r->next) {
        if (r->huge) {
            huge++;
            huge_free += r->free.free_bytes;
            continue;
        }
        fprintf(f,
                "lowmem: 0x%09" PRIx64 "-0x%09" PRIx64 " (%" PRIu64 " MiB, from %s), free: %" PRIu64
                " KiB\n",
                r->pa, r->pa + r->len, (uint64_t)r->len >> 20, np->low_from,
                r->free.free_bytes >> 10);
    }
    if (!np->low_len)
        fprintf(f, "lowmem: none (noiommu:lowmem=START+SIZE over a memmap= reservation)\n");
    if (np->huge_on)
        fprintf(f, "hugepages: %zu KiB pages, %u mapped, free in them: %" PRIu64 " KiB\n",
                np->huge_size >> 10, huge, huge_free >> 10);
    else
        fprintf(f, "hugepages: off\n");
    pthread_mutex_unlock(&np->lock);
}
