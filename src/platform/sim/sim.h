/*
 * sim.h - private: the simulated machine's state, shared by its files.
 */
#ifndef DMAHAL_SIM_H
#define DMAHAL_SIM_H

#include "core/core.h"

#define SIM_MAX_RAM 16
#define SIM_IOVA_BITS 48 /* the IO page table's reach, as a 4-level VT-d table */

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
    size_t page;
    unsigned page_shift;

    pthread_mutex_t lock;      /* frames and contig list */
    struct dmahal__range free; /* free physical frames */
    uint64_t ram_total, ram_used;
    struct sim_contig *contig;
};

/* An IO page table: a radix tree of 512-entry nodes; a leaf entry is pfn << 2 | R | W. */
#define IOPTE_R 1u
#define IOPTE_W 2u

struct sim_iopt {
    uint64_t *root;
    unsigned levels;
    unsigned page_shift;
};

struct sim_dev {
    const struct dmahal_model *model;
    void *state;
    pthread_mutex_t lock;      /* the IO page table and IOVA space */
    struct sim_iopt iopt;      /* iommu=on */
    struct dmahal__range iova; /* iommu=on: free IOVA space of this device's domain */
    uint64_t mapped_pages;
};

/* registry.c */
void sim_models_init(void);
const struct dmahal_model *sim_model_find(const char *name, size_t len);

/* iopt.c */
int sim_iopt_init(struct sim_iopt *t, unsigned page_shift);
void sim_iopt_fini(struct sim_iopt *t);
/* Maps [iova, iova + len) to [pa, pa + len), both page-aligned. -ENOMEM (nothing mapped). */
int sim_iopt_map(struct sim_iopt *t, uint64_t iova, uint64_t pa, size_t len, unsigned perm);
void sim_iopt_unmap(struct sim_iopt *t, uint64_t iova, size_t len);
/* Translates one address: 0, or the enum dmahal_fault_reason that stops it. */
int sim_iopt_lookup(const struct sim_iopt *t, uint64_t iova, unsigned perm, uint64_t *pa);

/* sim.c: physical address to host memory, NULL if [pa, pa + len) is not within one range. */
char *sim_host(const struct sim *s, uint64_t pa, size_t len);

#endif /* DMAHAL_SIM_H */
