/* SPDX-License-Identifier: MIT */
/*
 * pin.c - the simulated machine's side of streaming DMA: user memory given physical
 * addresses, user memory in the IOMMU's page tables, and bounce memory. (The cache model
 * of a machine whose devices do not snoop: cache.c.)
 *
 * User memory has no physical address on the simulated machine until a map pins it: the
 * pin then reserves frames for it from the frame allocator, high-first as everything else
 * (so on a big machine a 32-bit device has to bounce, as it would), and the physical-to-host
 * translation learns that those frames now stand for the user's pages (a "foreign" region).
 * With the IOMMU no frames are needed: the page table points at the user's pages, as VFIO's
 * does at a process's.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The foreign table reaches every frame: the highest RAM range's end, rounded up to a power
 * of two. */
int dmahal__sim_pin_init(struct sim *s)
{
    uint64_t top = s->nram ? s->ram[s->nram - 1].end - 1 : 0;
    unsigned bits = top ? 64u - (unsigned)__builtin_clzll(top) : s->page_shift + 1;

    return dmahal__sim_iopt_init(&s->foreign, s->page_shift, bits);
}

void dmahal__sim_pin_fini(struct sim *s)
{
    dmahal__sim_iopt_fini(&s->foreign);
}

/* ---- foreign frames: pinned user memory at physical addresses ----------------------------- */

/* [pa, pa + len) lies within one page: a pinned page stands for all of it. */
char *dmahal__sim_phys_host(struct sim *s, uint64_t pa, size_t len)
{
    uint64_t addr;
    bool host;

    if (!atomic_load_explicit(&s->foreign_used, memory_order_acquire) ||
        dmahal__sim_iopt_lookup(&s->foreign, pa, IOPTE_R, &addr, &host))
        return dmahal__sim_host(s, pa, len);
    return (char *)(uintptr_t)addr;
}

int dmahal__sim_pin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    uint64_t pa;
    int rc;

    *bus = 0;
    /* Wherever the machine has room, with no regard for the device: the core checks. */
    rc = dmahal__sim_frames_alloc(s, len, s->page, 0, UINT64_MAX, &pa);
    if (rc)
        return rc;
    if (!atomic_load_explicit(&s->foreign_used, memory_order_relaxed))
        atomic_store_explicit(&s->foreign_used, true, memory_order_release);
    /* The frames are this pin's alone until unpin frees them, so no other thread writes
     * these entries meanwhile. */
    rc = dmahal__sim_iopt_map(&s->foreign, pa, (uint64_t)(uintptr_t)va, len,
                              IOPTE_HOST | IOPTE_R | IOPTE_W);
    if (rc) {
        dmahal__sim_frames_free(s, pa, len);
        return rc;
    }
    *bus = pa;
    return 0;
}

void dmahal__sim_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus)
{
    struct sim *s = dmahal__adp_plat(a)->priv;

    (void)va;
    dmahal__sim_iopt_unmap(&s->foreign, bus, len);
    dmahal__sim_frames_free(s, bus, len);
}

/* ---- the IOMMU and bounce memory ------------------------------------------------------------- */

int dmahal__sim_iommu_map(struct dmahal_device *d, dmahal_addr_t iova, void *va, size_t len,
                          unsigned perm)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    unsigned pte = IOPTE_HOST | (perm & DMAHAL__PERM_READ ? IOPTE_R : 0) |
                   (perm & DMAHAL__PERM_WRITE ? IOPTE_W : 0);

    struct sim *s = dmahal__dev_plat(d)->priv;
    int rc;

    /* No shared counter unless the machine limits mappings: an atomic add per map and unmap
     * would cost a third of the page table's own update, on a path meant to scale. */
    if (s->dma_entries && atomic_fetch_add(&s->dma_used, 1) >= s->dma_entries) {
        atomic_fetch_sub(&s->dma_used, 1);
        return -ENOSPC;
    }
    rc = dmahal__sim_iopt_map(&sd->iopt, iova, (uint64_t)(uintptr_t)va, len, pte);
    if (rc && s->dma_entries)
        atomic_fetch_sub(&s->dma_used, 1);
    return rc;
}

void dmahal__sim_iommu_unmap(struct dmahal_device *d, dmahal_addr_t iova, size_t len)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    struct sim *s = dmahal__dev_plat(d)->priv;

    dmahal__sim_iopt_unmap(&sd->iopt, iova, len);
    if (s->dma_entries)
        atomic_fetch_sub(&s->dma_used, 1);
}

int64_t dmahal__sim_mappings_avail(struct dmahal_platform *p)
{
    struct sim *s = dmahal__plat(p)->priv;

    if (!s->dma_entries)
        return -1;
    return (int64_t)(s->dma_entries - atomic_load(&s->dma_used));
}

int dmahal__sim_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                             struct dmahal__chunk *out)
{
    struct sim *s = dmahal__plat(p)->priv;
    uint64_t pa;
    int rc = dmahal__sim_frames_alloc(s, len, s->page, 0, max_addr, &pa);

    if (rc)
        return rc;
    *out = (struct dmahal__chunk){dmahal__sim_host(s, pa, len), pa, len, pa};
    return 0;
}

void dmahal__sim_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch)
{
    dmahal__sim_frames_release(dmahal__plat(p)->priv, ch->cookie, ch->len);
}
