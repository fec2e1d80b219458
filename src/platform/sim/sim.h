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
#define SIM_POSTED_MAX     64 /* device writes up to this size land word by word (sim.c) */

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

/* The driver's register write that work stems from (directly, or through work it queued). */
struct sim_origin {
    bool set;
    unsigned bar, size;
    uint64_t off, val;
    uint64_t at; /* the platform's time of the write */
};

/* A piece of device work (dmahal_model_schedule). */
struct sim_work {
    uint64_t when;   /* due, in the platform's time */
    uint64_t id;     /* orders work due at once, and names it for cancel */
    uint64_t queued; /* when it was scheduled */
    struct dmahal_device *d;
    dmahal_work_fn fn;
    void *arg;
    struct sim_origin origin;
};

/* Work waiting for its time: a binary min-heap by (when, id). */
struct sim_queue {
    struct sim_work **heap;
    size_t n, cap;
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
    unsigned bits; /* the table's reach: addresses below 2^bits */
    uint64_t id;   /* unique in the process: keys the per-thread leaf hint */
};

#define SIM_GIVEBACK_RUNS 256

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
    /* Frames freed whose host memory is still resident, oldest first (a ring under lock):
     * given back once they add up to more than giveback_budget (dmahal__sim_frames_release). */
    struct sim_run {
        uint64_t pa, len;
    } giveback[SIM_GIVEBACK_RUNS];
    unsigned giveback_head, giveback_n;
    uint64_t giveback_bytes, giveback_budget;
    struct sim_contig *contig;

    /* User memory pinned by a streaming map without an IOMMU stands at frames of its own, as
     * a real machine's pages have physical addresses: this table maps those frames to the
     * user's pages (IOPTE_HOST entries), lock-free as the IOMMU's. foreign_used is set at the
     * first pin and never cleared: until then a device access skips the table. */
    struct sim_iopt foreign;
    atomic_bool foreign_used;

    pthread_mutex_t shadow_lock; /* the non-coherent model */
    struct sim_shadow *shadow[SIM_SHADOW_BUCKETS];
    atomic_size_t nshadow;

    /* time.c: options (set by open), then virtual time and its queue */
    bool threads;             /* time=threads */
    uint64_t seed;            /* seed= */
    uint64_t mmio_ns;         /* mmio_ns= */
    unsigned idle_ms;         /* idle= */
    uint64_t t0;              /* CLOCK_MONOTONIC at open */
    pthread_mutex_t run_lock; /* held while device work runs in virtual time */
    pthread_mutex_t tlock;    /* what follows */
    struct sim_queue queue;
    _Atomic uint64_t now; /* written under tlock, read anywhere */
    uint64_t rng, next_id, points, works_run, idle_runs;
    unsigned spin;
    pthread_t idle_thread;
    pthread_cond_t idle_cond;
    bool idle_started, idle_stop;
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

/* A model's PCI side (irq.c): its configuration space and the interrupts the driver
 * enabled, under one lock, which models' raises take (never the other way round). */
#define SIM_CFG_SIZE 256

struct sim_pci {
    pthread_mutex_t lock;
    uint8_t cfg[SIM_CFG_SIZE];
    uint64_t bar_addr[DMAHAL__BARS]; /* what the BARs decode at, as written */
    unsigned msi_cap, msix_cap;      /* offsets of the capabilities; 0: none */
    int irq_type;                    /* enum dmahal_irq_type the driver enabled; 0: off */
    unsigned irq_nvec;
    const int *irq_fds; /* the core's eventfds, valid until irq_disable */
    bool line;          /* INTx asserted by the model */
    bool masked;        /* INTx masked since it fired (VFIO's automask) */
    atomic_bool master; /* the command register's bus-master bit, for the DMA path */
};

/* A device's own clock with time=threads: its queue and the thread that runs it. */
struct sim;
struct sim_clock {
    struct sim *s;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct sim_queue queue;
    pthread_t thread;
    bool stop;
    uint64_t works_run;
};

struct sim_dev {
    const struct dmahal_model *model;
    struct sim *s;
    struct sim_clock *clock; /* time=threads */
    void *state;
    struct sim_pci pci;
    struct sim_iopt iopt;              /* iommu=on; the IOVA space is dmahal__dev(d)->iova */
    atomic_uint_fast64_t mapped_pages; /* by common-buffer arenas */
};

/* irq.c: the configuration space and interrupts (members of dmahal__sim_ops). */
void dmahal__sim_pci_init(struct sim_dev *sd);
void dmahal__sim_pci_fini(struct sim_dev *sd);
unsigned dmahal__sim_irq_count(struct dmahal_device *d, enum dmahal_irq_type type);
int dmahal__sim_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec,
                           int *fds);
void dmahal__sim_irq_disable(struct dmahal_device *d);
int dmahal__sim_irq_unmask(struct dmahal_device *d, unsigned vector);
unsigned dmahal__sim_config_size(struct dmahal_device *d);
int dmahal__sim_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len);
int dmahal__sim_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len);
int dmahal__sim_device_list(struct dmahal_device_info **out);

/* time.c */
void dmahal__sim_time_defaults(struct sim *s);
/* A time option of the spec (time=, seed=, mmio_ns=, idle=): *taken says whether @key is
 * one; -EINVAL for a bad value. */
int dmahal__sim_time_option(struct sim *s, const char *key, const char *val, bool *taken);
void dmahal__sim_time_init(struct sim *s);
void dmahal__sim_time_fini(struct sim *s);
int dmahal__sim_time_device_open(struct sim *s, struct sim_dev *sd);
/* Drops the device's pending work; none of it runs after this returns. */
void dmahal__sim_time_device_close(struct sim *s, struct dmahal_device *d);
/* A driver's register read: virtual time moves, due work runs. */
void dmahal__sim_time_read_point(struct sim *s);
void dmahal__sim_time_describe(struct sim *s, FILE *f);
/* A driver about to block in dmahal_irq_wait (a member of dmahal__sim_ops). */
void dmahal__sim_wait_point(struct dmahal_device *d, uint64_t max_ns, bool (*ready)(void *ctx),
                            void *ctx);
/* A driver's register write to @d begins (its model may queue work) or ends. */
void dmahal__sim_time_write_begin(struct sim *s, unsigned bar, uint64_t off, uint64_t val,
                                  unsigned size);
void dmahal__sim_time_write_end(void);
/* What @d is doing on this thread (a member of dmahal__sim_ops). */
size_t dmahal__sim_dev_activity(struct dmahal_device *d, char *buf, size_t size);

/* models.c: the model registry */
const struct dmahal_model *dmahal__sim_model_find(const char *name, size_t len);

/* iopt.c */
/* A table for addresses below 2^@bits (at most 64) in pages of 2^@page_shift bytes: 0 or
 * -ENOMEM. */
int dmahal__sim_iopt_init(struct sim_iopt *t, unsigned page_shift, unsigned bits);
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
/* sim.c: a device's write of @len bytes landing at host memory @host (every path to memory
 * goes through it): a small aligned one word by word, each a release store. */
void dmahal__sim_dev_store(char *host, const void *buf, size_t len);
int dmahal__sim_pin_init(struct sim *s);
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
