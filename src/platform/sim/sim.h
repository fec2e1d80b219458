/* SPDX-License-Identifier: MIT */
/*
 * sim.h - private: the simulated machine's state, shared by its files.
 */
#ifndef DMAHAL_SIM_H
#define DMAHAL_SIM_H

#include "core/platform_ops.h"

#include <pthread.h>
#include <stdatomic.h>

#define SIM_MAX_RAM        16
#define SIM_IOVA_BITS      48 /* the IO page table's reach, as a 4-level VT-d table */
#define SIM_SHADOW_BUCKETS 256

struct sim_ram {
    uint64_t start, end; /* [start, end) physical */
    char *host;          /* host memory backing start; frames fault in on first touch */
    size_t map_len;      /* what was mmap'ed, from map_base */
    void *map_base;
};

struct sim_contig {
    void *va;
    uint64_t pa;
    size_t len;
    struct sim_contig *next;
};

struct sim {
    struct sim_ram ram[SIM_MAX_RAM];
    unsigned nram;
    bool iommu;
    bool coherent;
    uint64_t dma_entries;          /* streaming IOMMU mappings allowed at once; 0: no limit */
    atomic_uint_fast64_t dma_used; /* counted only when dma_entries is set */
    size_t page;
    unsigned page_shift;

    pthread_mutex_t lock;      /* frames and contig list */
    struct dmahal__range free; /* free physical frames */
    uint64_t ram_total, ram_used;
    struct sim_contig *contig;

    pthread_rwlock_t foreign_lock; /* foreign regions, sorted by pa */
    struct sim_foreign *foreign;
    size_t nforeign, foreign_cap;
    atomic_size_t nforeign_hint; /* nforeign, read without the lock: 0 skips it */

    pthread_mutex_t shadow_lock; /* the non-coherent model */
    struct sim_shadow *shadow[SIM_SHADOW_BUCKETS];
    atomic_size_t nshadow;
};

/* An IO page table: a radix tree of 512-entry nodes. A leaf entry is a page-aligned address
 * | flags: a physical address of simulated RAM, or (IOPTE_HOST) a host address, for user
 * memory mapped by a streaming map, as VFIO maps a process's pages. */
#define IOPTE_R    1u
#define IOPTE_W    2u
#define IOPTE_HOST 4u

typedef _Atomic uint64_t sim_pte;

struct sim_iopt {
    sim_pte *root;
    unsigned levels;
    unsigned page_shift;
    uint64_t id; /* unique in the process: keys the per-thread leaf hint */
};

/* Host memory that stands at physical addresses: user memory pinned by a streaming map
 * without an IOMMU, given frames of its own as a real machine's pages have. */
struct sim_foreign {
    uint64_t pa;
    size_t len;
    char *host;
};

/* The non-coherent machine's memory, as the device sees it, for one host page that a
 * non-coherent mapping or cached buffer covers: a byte is the device's (data) only while
 * some range tracks it (count > 0); other bytes of the page are the CPU's memory. */
struct sim_shadow {
    struct sim_shadow *next;
    uintptr_t page; /* host page address */
    unsigned char *data;
    unsigned char *count; /* per byte: ranges tracking it */
    size_t tracked;       /* bytes with count > 0 */
};

struct sim_dev {
    const struct dmahal_model *model;
    void *state;
    struct sim_iopt iopt;              /* iommu=on; the IOVA space is dmahal__dev(d)->iova */
    atomic_uint_fast64_t mapped_pages; /* by common-buffer arenas */
};

/* models.c: the model registry */
const struct dmahal_model *dmahal__sim_model_find(const char *name, size_t len);

/* iopt.c */
int dmahal__sim_iopt_init(struct sim_iopt *t, unsigned page_shift);
void dmahal__sim_iopt_fini(struct sim_iopt *t);
/* Maps [iova, iova + len) to [addr, addr + len), both page-aligned; @perm may hold
 * IOPTE_HOST. -ENOMEM (nothing mapped). Lock-free. */
int dmahal__sim_iopt_map(struct sim_iopt *t, uint64_t iova, uint64_t addr, size_t len,
                         unsigned perm);
void dmahal__sim_iopt_unmap(struct sim_iopt *t, uint64_t iova, size_t len);
/* Translates one address to *addr (host when *host): 0, or the enum dmahal_fault_reason that
 * stops it. */
int dmahal__sim_iopt_lookup(const struct sim_iopt *t, uint64_t iova, unsigned perm, uint64_t *addr,
                            bool *host);

/* sim.c: physical address to host memory, NULL if [pa, pa + len) is not within one range. */
char *dmahal__sim_host(const struct sim *s, uint64_t pa, size_t len);

/* pin.c and cache.c: streaming DMA and the cache model (members of dmahal__sim_ops). */
int dmahal__sim_pin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus);
void dmahal__sim_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus);
int dmahal__sim_iommu_map(struct dmahal_device *d, dmahal_addr_t iova, void *va, size_t len,
                          unsigned perm);
void dmahal__sim_iommu_unmap(struct dmahal_device *d, dmahal_addr_t iova, size_t len);
int64_t dmahal__sim_mappings_avail(struct dmahal_platform *p);
int dmahal__sim_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                             struct dmahal__chunk *out);
void dmahal__sim_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch);
int dmahal__sim_cache_track(struct dmahal_platform *p, void *va, size_t len);
void dmahal__sim_cache_untrack(struct dmahal_platform *p, void *va, size_t len);
void dmahal__sim_cache_flush(struct dmahal_platform *p, void *va, size_t len);
void dmahal__sim_cache_invalidate(struct dmahal_platform *p, void *va, size_t len);
/* The host memory behind one physical page-run [pa, pa + len) (not crossing a page),
 * foreign regions first; NULL if none. */
char *dmahal__sim_phys_host(struct sim *s, uint64_t pa, size_t len);
/* A device access to host memory [host, host + len) (within one page), through the
 * non-coherent model when it covers the page. */
void dmahal__sim_dev_copy(struct sim *s, char *host, void *buf, size_t len, bool write);
void dmahal__sim_pin_init(struct sim *s);
void dmahal__sim_pin_fini(struct sim *s);
/* cache.c */
void dmahal__sim_cache_init(struct sim *s);
void dmahal__sim_cache_fini(struct sim *s);
/* sim.c: frames, for pin.c */
int dmahal__sim_frames_alloc(struct sim *s, size_t len, size_t align, uint64_t boundary,
                             uint64_t max_addr, uint64_t *pa);
void dmahal__sim_frames_free(struct sim *s, uint64_t pa, size_t len);
/* Frees frames whose host memory was used, giving that memory back to the host first. */
void dmahal__sim_frames_release(struct sim *s, uint64_t pa, size_t len);

#endif /* DMAHAL_SIM_H */
