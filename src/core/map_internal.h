/* SPDX-License-Identifier: MIT */
/*
 * map_internal.h - private to the streaming maps (map.c, map_layout.c): a mapping, the
 * adapter's streaming state, and the layouts map.c chooses among.
 *
 * Every live list is in a per-adapter table keyed by the list's address, so that unmap
 * and sync can refuse a list they never gave out without touching it. The table's lock
 * is the adapter's own: two adapters never share a lock on the map/unmap path, and the
 * IOVA allocator's per-thread caches keep the IOMMU domain's lock off it too.
 */
#ifndef DMAHAL_MAP_INTERNAL_H
#define DMAHAL_MAP_INTERNAL_H

#include "core/bounce.h"
#include "core/iova.h"

enum how { HOW_PIN, HOW_IOMMU, HOW_BOUNCE, HOW_REG };

struct mapping {
    struct mapping *hnext; /* live table chain */
    struct dmahal_sgl *sgl;
    struct dmahal_adapter *a;
    enum dmahal_dir dir;
    enum how how;
    bool device_owns; /* false between sync_for_cpu and sync_for_device */
    bool tracked;     /* the platform's cache model follows its memory */
    bool small;       /* a SMALL_BLOCK from the thread's cache */
    unsigned niov;
    struct iovec *iov;  /* the non-empty entries, copied */
    dmahal_addr_t *bus; /* HOW_PIN: each entry's first page's bus address; HOW_REG: its
                         * registration */
    size_t total;
    unsigned cap;       /* room in sgl->seg */
    dmahal_addr_t iova; /* HOW_IOMMU, and HOW_BOUNCE behind an IOMMU */
    size_t iova_len;
    struct dmahal__bounce_run run; /* HOW_BOUNCE */
    size_t boff;  /* where the data starts in the run (untrusted: it ends with the run) */
    size_t guard; /* unmapped IOVA after the run, in iova_len (untrusted) */
    bool spill;   /* the run is spill memory (spill.c), mapped already; not the pool's */
    bool cache;   /* HOW_IOMMU of one piece: its mapping goes to the mapping cache */
    struct dmahal__pool *pool; /* where run came from */
    struct dmahal__bounce_waiter w;
    dmahal_map_fn fn;
    void *ctx;
};

/*
 * The table of live lists: a small lock-free table first (most adapters have a few dozen
 * transfers in flight), chains under the adapter's lock for what does not fit. A slot holds
 * a mapping's address, EMPTY, or TOMB once freed; BUSY is or'ed in while a sync uses the
 * mapping, so that an unmap waits for it. A list's address is the mapping's plus one
 * mapping, so a slot is matched without reading the mapping it names (which another thread
 * may be freeing).
 */
#define FAST_SLOTS  256
#define FAST_PROBES 8
#define SLOT_EMPTY  ((uintptr_t)0)
#define SLOT_TOMB   ((uintptr_t)1)
#define SLOT_BUSY   ((uintptr_t)2)
#define SLOT_DYING  ((uintptr_t)4) /* an unmap has claimed it: no new hold may start */
#define SLOT_FLAGS  (SLOT_BUSY | SLOT_DYING)

/* How the adapter's device reaches host memory, decided once. */
enum path {
    PATH_IOMMU,  /* through its IOMMU domain */
    PATH_PIN,    /* at the memory's bus address, bouncing what it cannot take */
    PATH_BOUNCE, /* only through bounce pages */
    PATH_NONE,   /* not at all: the platform implements no streaming */
};

struct dmahal__stream {
    enum path path;
    _Atomic uintptr_t fast[FAST_SLOTS]; /* the live table's lock-free part */
    dmahal__lock_t lock;                /* the live table's overflow, the pool */
    struct mapping **buckets;
    size_t nbuckets, live;
    atomic_uint regs; /* bounce pages held by live lists */
    struct dmahal__pool *pool;
    unsigned joined;
};

/* ---- map_layout.c --------------------------------------------------------------------- */

/* A mapping's memory (from the calling thread's cache when small), and its release. */
void dmahal__mapping_free(struct mapping *m);
void *dmahal__mapping_block_get(size_t bytes);
int dmahal__mapping_new(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                        enum dmahal_dir dir, struct mapping **out);
unsigned dmahal__map_perm_of(enum dmahal_dir dir);
int dmahal__map_sg_add(const struct dmahal__constraints *c, struct mapping *m, dmahal_addr_t la,
                       size_t len);
int dmahal__map_cache_track(struct mapping *m);
void dmahal__map_cache_untrack(struct mapping *m);
void dmahal__map_fill_device_view(struct mapping *m);
void dmahal__map_to_cpu(struct mapping *m);
void *dmahal__map_base_of(const struct iovec *v, size_t page);
int dmahal__map_iova_get(struct dmahal_adapter *a, size_t len, dmahal_addr_t *iova);
void dmahal__map_iova_put(struct dmahal_adapter *a, dmahal_addr_t iova, size_t len);
int dmahal__map_iommu(struct mapping *m);
int dmahal__map_pinned(struct mapping *m);
int dmahal__map_registered(struct mapping *m);
void dmahal__map_reg_put_all(struct mapping *m, unsigned n);
void dmahal__map_unpin_all(struct mapping *m, unsigned n);

#endif /* DMAHAL_MAP_INTERNAL_H */
