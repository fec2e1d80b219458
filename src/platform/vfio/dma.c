/* SPDX-License-Identifier: MIT */
/*
 * dma.c - DMA memory on vfio: adapters' IOVA windows, common-buffer arenas mapped with
 * VFIO_IOMMU_MAP_DMA, streaming maps of the caller's own pages, bounce memory; and the platform's
 * ops table.
 */
#include "platform/vfio/vfio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Mappings that streaming maps leave to everything else (at most). */
#define STREAM_RESERVE 256

/* ---- adapters and DMA memory ------------------------------------------------------------ */

/* Narrows the adapter to the IOVA windows it can reach: the highest usable address at or
 * below what its addr_bits allow. */
static int vfio_adapter_init(struct dmahal_adapter *a)
{
    struct vfio_plat *vp = dmahal__adp_plat(a)->priv;
    uint64_t top = 0;
    bool any = false;

    pthread_mutex_lock(&vp->lock);
    for (size_t i = 0; i < vp->nwin; i++) {
        uint64_t last = vp->win[i].end - 1;

        if (vp->win[i].start > dmahal__adp(a)->c.max_addr)
            continue;
        last = last < dmahal__adp(a)->c.max_addr ? last : dmahal__adp(a)->c.max_addr;
        top = last > top ? last : top;
        any = true;
    }
    pthread_mutex_unlock(&vp->lock);
    if (!any) {
        dmahal__vfio_say("no IOVA window of the IOMMU lies below 2^%u, the width %s drives",
                         dmahal__adp(a)->c.addr_bits, dmahal__adp_dev(a)->name);
        return -ENOSPC;
    }
    dmahal__adp(a)->c.max_addr = top;
    return 0;
}

/* Anonymous memory of @len bytes at an @align-aligned address. */
static void *map_aligned(size_t len, size_t align)
{
    /* mmap aligns to the CPU's page, which the platform's may exceed (see
     * dmahal__vfio_iova_refresh). */
    long cpu = sysconf(_SC_PAGESIZE);
    size_t page = cpu > 0 ? (size_t)cpu : 4096;
    size_t extra = align > page ? align - page : 0;
    uint8_t *raw, *va;

    raw = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    va = (uint8_t *)DMAHAL__ALIGN_UP((uintptr_t)raw, align);
    if (va > raw)
        munmap(raw, (size_t)(va - raw));
    if (raw + len + extra > va + len)
        munmap(va + len, (size_t)(raw + len + extra - (va + len)));
    return va;
}

/* The largest IOMMU page size above the CPU's that fits @len and that huge pages can back
 * (at most 1 GiB), or 0. */
static size_t large_page(const struct vfio_plat *vp, size_t len)
{
    uint64_t best = 0;

    for (uint64_t ps = vp->pgsizes; ps; ps &= ps - 1) {
        uint64_t size = ps & -ps;

        if (size > 4096 && size <= len && size <= ((uint64_t)1 << 30) && !(len & (size - 1)))
            best = size;
    }
    return (size_t)best;
}

/* @len bytes in pages of @big bytes where the system gives them: hugetlbfs pages, else memory
 * aligned to @big and advised to be transparent huge pages. */
static void *map_huge(size_t len, size_t big)
{
    int shift = __builtin_ctzll(big);
    void *va = mmap(NULL, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (shift << MAP_HUGE_SHIFT), -1, 0);

    if (va != MAP_FAILED)
        return va;
    va = map_aligned(len, big);
    if (va)
        madvise(va, len, MADV_HUGEPAGE); /* before the pin touches it; fails harmlessly */
    return va;
}

/*
 * Turns a failed VFIO_IOMMU_MAP_DMA of [iova, iova + len) into the code the caller gets. The
 * limits a person can raise are named once per platform: a driver that retries would
 * otherwise fill its log.
 */
static int map_error(struct vfio_plat *vp, int err, uint64_t iova, size_t len)
{
    switch (err) {
    case ENOSPC:
        if (!atomic_exchange(&vp->said_avail, true))
            dmahal__vfio_say(
                "VFIO_IOMMU_MAP_DMA: the container's DMA mappings are all in use (each map "
                "of a piece of memory takes one): unmap some, or raise vfio_iommu_type1's "
                "dma_entry_limit (echo N > "
                "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit, for containers "
                "opened after)");
        return -ENOSPC;
    case ENOMEM:
        if (!atomic_exchange(&vp->said_locked, true))
            dmahal__vfio_say(
                "VFIO_IOMMU_MAP_DMA of %zu bytes: out of locked memory (raise ulimit -l, or "
                "run with CAP_IPC_LOCK)",
                len);
        return -ENOMEM;
    case EFAULT:
        /* The caller's memory is not there, or is read-only and the device would write. */
        return -EFAULT;
    default:
        dmahal__vfio_say("VFIO_IOMMU_MAP_DMA of %zu bytes at IOVA %#" PRIx64 " failed: %s", len,
                         iova, strerror(err));
        return -err;
    }
}

static int dma_map(struct vfio_plat *vp, uint64_t iova, void *va, size_t len, unsigned perm)
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = (perm & DMAHAL__PERM_READ ? VFIO_DMA_MAP_FLAG_READ : 0) |
                 (perm & DMAHAL__PERM_WRITE ? VFIO_DMA_MAP_FLAG_WRITE : 0),
        .vaddr = (uintptr_t)va,
        .iova = iova,
        .size = len,
    };

    /* The kernel maps all of it or nothing. */
    if (ioctl(vp->container, VFIO_IOMMU_MAP_DMA, &map))
        return map_error(vp, errno, iova, len);
    atomic_fetch_add_explicit(&vp->dma_maps, 1, memory_order_relaxed);
    return 0;
}

/* Unmaps whole mappings covering exactly [iova, iova + len); false (said) if it failed, and
 * the range must then stay allocated so that nothing else lands on it. */
static bool dma_unmap(struct vfio_plat *vp, uint64_t iova, size_t len)
{
    struct vfio_iommu_type1_dma_unmap unmap = {.argsz = sizeof(unmap), .iova = iova, .size = len};

    if (ioctl(vp->container, VFIO_IOMMU_UNMAP_DMA, &unmap) == 0 && unmap.size == len) {
        atomic_fetch_sub_explicit(&vp->dma_maps, 1, memory_order_relaxed);
        return true;
    }
    dmahal__vfio_say("VFIO_IOMMU_UNMAP_DMA of IOVA %#" PRIx64 "+%zu failed: %s", iova, len,
                     unmap.size != len ? "not all of it was mapped" : strerror(errno));
    return false;
}

static int vfio_mem_alloc(struct dmahal_adapter *a, size_t len, size_t align,
                          struct dmahal__chunk *out)
{
    struct vfio_plat *vp = dmahal__adp_plat(a)->priv;
    uint64_t boundary = dmahal__adp(a)->c.boundary && len <= dmahal__adp(a)->c.boundary
                            ? dmahal__adp(a)->c.boundary
                            : 0;
    uint64_t iova;
    size_t big = large_page(vp, len);
    void *va;
    int rc;

    /* Large IOMMU pages: memory in huge pages (hugetlbfs when the system has them reserved,
     * else transparent ones), at an IOVA aligned alike, lets the kernel map each with one
     * IOMMU entry instead of 512. Without them the pages are small: nothing else changes. */
    if (big > align)
        align = big;
    va = big ? map_huge(len, big) : map_aligned(len, align);
    if (!va)
        return -ENOMEM;
    /* A child of fork() must not get copy-on-write copies of pinned pages: the device
     * would keep writing to the parent's. */
    if (madvise(va, len, MADV_DONTFORK)) {
        rc = -errno;
        goto err_mem;
    }
    /* From the container's space, which streaming maps and the other devices share. */
    rc = dmahal__iova_alloc(dmahal__adp_dev(a)->iova, len, align, boundary,
                            dmahal__adp(a)->c.max_addr, &iova);
    if (rc) {
        rc = -ENOMEM;
        goto err_mem;
    }
    rc = dma_map(vp, iova, va, len, DMAHAL__PERM_READ | DMAHAL__PERM_WRITE);
    if (rc)
        goto err_iova;
    *out = (struct dmahal__chunk){.va = va, .la = iova, .len = len};
    return 0;

err_iova:
    dmahal__iova_free(dmahal__adp_dev(a)->iova, iova, len);
err_mem:
    munmap(va, len);
    return rc;
}

/* Strict isolation: the memory and its IOVA, mapped run by run as buffers take it
 * (vfio_mem_reach); the cookie marks the chunk so. */
static int vfio_mem_alloc_dark(struct dmahal_adapter *a, size_t len, size_t align,
                               struct dmahal__chunk *out)
{
    uint64_t boundary = dmahal__adp(a)->c.boundary && len <= dmahal__adp(a)->c.boundary
                            ? dmahal__adp(a)->c.boundary
                            : 0;
    uint64_t iova;
    void *va;

    va = map_aligned(len, align);
    if (!va)
        return -ENOMEM;
    if (madvise(va, len, MADV_DONTFORK) ||
        dmahal__iova_alloc(dmahal__adp_dev(a)->iova, len, align, boundary,
                           dmahal__adp(a)->c.max_addr, &iova)) {
        munmap(va, len);
        return -ENOMEM;
    }
    *out = (struct dmahal__chunk){.va = va, .la = iova, .len = len, .cookie = 1};
    return 0;
}

/* One VFIO mapping per run: type1 unmaps only whole mappings, and the core takes each run
 * out of reach exactly as it made it reachable. */
static int vfio_mem_reach(struct dmahal_adapter *a, const struct dmahal__chunk *ch, size_t off,
                          size_t len, bool reach)
{
    struct vfio_plat *vp = dmahal__adp_plat(a)->priv;

    if (reach)
        return dma_map(vp, ch->la + off, (char *)ch->va + off, len,
                       DMAHAL__PERM_READ | DMAHAL__PERM_WRITE);
    dma_unmap(vp, ch->la + off, len);
    return 0;
}

static void vfio_mem_free(struct dmahal_adapter *a, const struct dmahal__chunk *ch)
{
    struct vfio_plat *vp = dmahal__adp_plat(a)->priv;

    if (ch->cookie == 1) {
        /* Whatever runs are still mapped (buffers live at adapter put): one unmap of the
         * whole range takes every mapping inside it, and holes are no error. */
        struct vfio_iommu_type1_dma_unmap unmap = {
            .argsz = sizeof(unmap), .iova = ch->la, .size = ch->len};

        if (ioctl(vp->container, VFIO_IOMMU_UNMAP_DMA, &unmap) == 0)
            dmahal__iova_free(dmahal__adp_dev(a)->iova, ch->la, ch->len);
        else
            dmahal__vfio_say("VFIO_IOMMU_UNMAP_DMA of IOVA %#" PRIx64 "+%zu failed: %s", ch->la,
                             ch->len, strerror(errno));
    } else if (dma_unmap(vp, ch->la, ch->len)) {
        dmahal__iova_free(dmahal__adp_dev(a)->iova, ch->la, ch->len);
    }
    munmap(ch->va, ch->len);
}

/* ---- streaming DMA ---------------------------------------------------------------------- */

/* The caller's pages [va, va + len) at @iova: the kernel pins them until the unmap. Both are
 * granule-aligned, as VFIO requires (the core aligns to the platform's page, which is at
 * least the IOMMU's smallest). */
static int vfio_iommu_map(struct dmahal_device *d, dmahal_addr_t iova, void *va, size_t len,
                          unsigned perm)
{
    /* A read-only pin of a page no one has written yet pins the shared zero page (Debian
     * 12's 6.1 does, tests/vm shows it): the CPU's next write would then go to a fresh copy
     * the device never sees. Have the pages made writable first; memory that is read-only
     * cannot change, and for it (and on kernels without MADV_POPULATE_WRITE) this fails
     * harmlessly. A pin for writing does as much itself. */
    struct vfio_plat *vp = dmahal__dev_plat(d)->priv;
    int64_t limit = atomic_load_explicit(&vp->dma_limit, memory_order_relaxed);

    int64_t reserve = limit / 16 < STREAM_RESERVE ? limit / 16 : STREAM_RESERVE;

    /* The last STREAM_RESERVE mappings (or a sixteenth of a smaller limit) are kept for common
     * buffers and the core's spill memory, which streaming maps go to once they are all that
     * is left (no ioctl, and no complaint on stderr: nothing failed). */
    if (limit >= 0 &&
        limit - (int64_t)atomic_load_explicit(&vp->dma_maps, memory_order_relaxed) <= reserve)
        return -ENOSPC;
    if (!(perm & DMAHAL__PERM_WRITE))
        madvise(va, len, MADV_POPULATE_WRITE);
    return dma_map(vp, iova, va, len, perm);
}

static void vfio_iommu_unmap(struct dmahal_device *d, dmahal_addr_t iova, size_t len)
{
    /* The core frees the IOVA whatever happens; a range the kernel kept mapped makes a later
     * map there fail (EEXIST, said), never reach the wrong memory. */
    dma_unmap(dmahal__dev_plat(d)->priv, iova, len);
}

/* Bounce pages, for layouts the device cannot take where the memory lies (alignment, segment
 * count): plain anonymous memory, which the core maps through the IOMMU like any other. */
static int vfio_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                             struct dmahal__chunk *out)
{
    void *va = map_aligned(len, dmahal__plat(p)->page_size);

    (void)max_addr; /* behind the IOMMU every page is reachable */
    if (!va)
        return -ENOMEM;
    /* Written now, so that read-only maps of it pin real pages (see vfio_iommu_map). */
    memset(va, 0, len);
    if (madvise(va, len, MADV_DONTFORK)) {
        munmap(va, len);
        return -ENOMEM;
    }
    /* The pool needs distinct page-aligned addresses: the memory's own do. */
    *out = (struct dmahal__chunk){.va = va, .la = (uintptr_t)va, .len = len};
    return 0;
}

static void vfio_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch)
{
    (void)p;
    munmap(ch->va, ch->len);
}

static int64_t vfio_mappings_avail(struct dmahal_platform *p)
{
    struct vfio_plat *vp = dmahal__plat(p)->priv;
    int64_t limit = atomic_load_explicit(&vp->dma_limit, memory_order_relaxed);

    if (limit < 0)
        return -1;
    limit -= (int64_t)atomic_load_explicit(&vp->dma_maps, memory_order_relaxed);
    return limit > 0 ? limit : 0;
}

static void vfio_describe(struct dmahal_platform *p, FILE *f)
{
    struct vfio_plat *vp = dmahal__plat(p)->priv;
    struct vfio_iommu_type1_info *info = NULL;

    pthread_mutex_lock(&vp->lock);
    fprintf(f, "iommu: vfio type1v2%s\n", vp->iommu_set ? "" : " (no group attached yet)");
    fprintf(f, "groups:");
    for (struct vfio_group *g = vp->groups; g; g = g->next)
        fprintf(f, " %d(%u device%s)", g->id, g->refs, g->refs == 1 ? "" : "s");
    fprintf(f, "\niova-windows:");
    for (size_t i = 0; i < vp->nwin; i++)
        fprintf(f, " %#" PRIx64 "-%#" PRIx64, vp->win[i].start, vp->win[i].end - 1);
    fprintf(f, "\niommu-page-sizes: %#" PRIx64 "\n", vp->pgsizes);
    fprintf(f, "iova-free: %" PRIu64 " bytes\n", vp->dom ? dmahal__iova_free_bytes(vp->dom) : 0);
    /* Asked afresh: every map and unmap moves it. */
    if (vp->iommu_set && dmahal__vfio_iommu_info(vp, &info) == 0) {
        vp->dma_avail = dmahal__vfio_info_dma_avail(info);
        atomic_store(&vp->dma_limit,
                     vp->dma_avail < 0 ? -1 : vp->dma_avail + (int64_t)atomic_load(&vp->dma_maps));
        free(info);
    }
    if (vp->dma_avail >= 0)
        fprintf(f, "dma-mappings-avail: %" PRId64 "\n", vp->dma_avail);
    pthread_mutex_unlock(&vp->lock);
}

const struct dmahal__platform_ops dmahal__vfio_ops = {
    .name = "vfio",
    .open = dmahal__vfio_open,
    .close = dmahal__vfio_close,
    .device_open = dmahal__vfio_device_open,
    .device_close = dmahal__vfio_device_close,
    .mmio_read = dmahal__vfio_mmio_read,
    .mmio_write = dmahal__vfio_mmio_write,
    .adapter_init = vfio_adapter_init,
    .mem_alloc = vfio_mem_alloc,
    .mem_free = vfio_mem_free,
    .mem_alloc_dark = vfio_mem_alloc_dark,
    .mem_reach = vfio_mem_reach,
    .dev_access = NULL, /* a real device does its own DMA */
    .mappings_avail = vfio_mappings_avail,
    .describe = vfio_describe,
    .pin = NULL, /* the device reaches host memory only through the IOMMU */
    .unpin = NULL,
    .iommu_map = vfio_iommu_map,
    .iommu_unmap = vfio_iommu_unmap,
    .bounce_alloc = vfio_bounce_alloc,
    .bounce_free = vfio_bounce_free,
    /* DMA through an x86 IOMMU snoops the caches (the platform says coherent). */
    .cache_track = NULL,
    .cache_untrack = NULL,
    .cache_flush = NULL,
    .cache_invalidate = NULL,
    .irq_count = dmahal__vfio_irq_count,
    .irq_enable = dmahal__vfio_irq_enable,
    .irq_disable = dmahal__vfio_irq_disable,
    .irq_unmask = dmahal__vfio_irq_unmask,
    .irq_consume = NULL, /* the fds are the core's eventfds */
    .config_size = dmahal__vfio_config_size,
    .config_read = dmahal__vfio_config_read,
    .config_write = dmahal__vfio_config_write,
    .device_list = dmahal__vfio_device_list,
};
