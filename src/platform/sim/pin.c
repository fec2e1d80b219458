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
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void dmahal__sim_pin_init(struct sim *s)
{
    pthread_rwlock_init(&s->foreign_lock, NULL);
}

void dmahal__sim_pin_fini(struct sim *s)
{
    free(s->foreign);
    pthread_rwlock_destroy(&s->foreign_lock);
}

/* ---- foreign regions: pinned user memory at physical addresses ---------------------------- */

/* Index of the first region whose end is above @pa; the caller holds the lock. */
static size_t foreign_index(const struct sim *s, uint64_t pa)
{
    size_t lo = 0, hi = s->nforeign;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->foreign[mid].pa + s->foreign[mid].len <= pa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

char *dmahal__sim_phys_host(struct sim *s, uint64_t pa, size_t len)
{
    char *host = NULL;
    size_t i;

    if (atomic_load_explicit(&s->nforeign_hint, memory_order_acquire)) {
        pthread_rwlock_rdlock(&s->foreign_lock);
        i = foreign_index(s, pa);
        if (i < s->nforeign && s->foreign[i].pa <= pa) {
            const struct sim_foreign *f = &s->foreign[i];

            host = len <= f->pa + f->len - pa ? f->host + (pa - f->pa) : NULL;
            pthread_rwlock_unlock(&s->foreign_lock);
            return host;
        }
        pthread_rwlock_unlock(&s->foreign_lock);
    }
    return dmahal__sim_host(s, pa, len);
}

int dmahal__sim_pin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    uint64_t pa;
    size_t i;
    int rc;

    *bus = 0;
    /* Wherever the machine has room, with no regard for the device: the core checks. */
    rc = dmahal__sim_frames_alloc(s, len, s->page, 0, UINT64_MAX, &pa);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&s->foreign_lock);
    if (s->nforeign == s->foreign_cap) {
        size_t cap = s->foreign_cap ? s->foreign_cap * 2 : 16;
        struct sim_foreign *v = realloc(s->foreign, cap * sizeof(*v));

        if (!v) {
            pthread_rwlock_unlock(&s->foreign_lock);
            dmahal__sim_frames_free(s, pa, len);
            return -ENOMEM;
        }
        s->foreign = v;
        s->foreign_cap = cap;
    }
    i = foreign_index(s, pa);
    memmove(&s->foreign[i + 1], &s->foreign[i], (s->nforeign - i) * sizeof(s->foreign[0]));
    s->foreign[i] = (struct sim_foreign){pa, len, va};
    s->nforeign++;
    atomic_store(&s->nforeign_hint, s->nforeign);
    pthread_rwlock_unlock(&s->foreign_lock);
    *bus = pa;
    return 0;
}

void dmahal__sim_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    size_t i;
    bool found = false;

    (void)va;
    pthread_rwlock_wrlock(&s->foreign_lock);
    i = foreign_index(s, bus);
    if (i < s->nforeign && s->foreign[i].pa == bus && s->foreign[i].len == len) {
        memmove(&s->foreign[i], &s->foreign[i + 1], (s->nforeign - i - 1) * sizeof(s->foreign[0]));
        s->nforeign--;
        found = true;
    }
    atomic_store(&s->nforeign_hint, s->nforeign);
    pthread_rwlock_unlock(&s->foreign_lock);
    if (found)
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
