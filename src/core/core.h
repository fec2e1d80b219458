/*
 * core.h - private: the objects behind the public handles, and the ops tables that
 * platforms implement. Nothing here is for drivers; nothing in include/ includes it.
 */
#ifndef DMAHAL_CORE_H
#define DMAHAL_CORE_H

#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <pthread.h>
#include <stdatomic.h>

#include "lock.h"
#include "range.h"

#define DMAHAL__BARS       DMAHAL_MODEL_BARS
#define DMAHAL__FAULT_RING 256
#define DMAHAL__MAX_LEN    ((size_t)1 << 40) /* the largest single allocation or transfer */

#define DMAHAL__ALIGN_UP(x, a)   (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define DMAHAL__ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define DMAHAL__IS_POW2(x)       ((x) != 0 && ((x) & ((x)-1)) == 0)

/*
 * An adapter's constraints, merged once (platform -> device -> adapter) in
 * dmahal_adapter_get() and handed to every allocator. All limits are filled in: no zeros
 * meaning "none".
 */
struct dmahal__constraints {
    uint64_t max_addr;     /* highest logical address the device drives (inclusive) */
    uint64_t boundary;     /* no element crosses a multiple of this; 0 = none */
    uint64_t alignment;    /* element address alignment, >= 1, power of two */
    size_t max_segment;    /* largest element; SIZE_MAX = none */
    size_t max_transfer;   /* largest transfer */
    unsigned max_segments; /* >= 1 */
    unsigned addr_bits;
    bool coherent; /* device snoops caches (the platform's and the device's word merged) */
};

/* A run of DMA memory from a platform: contiguous for the CPU (va) and the device (la). */
struct dmahal__chunk {
    void *va;
    dmahal_addr_t la;
    size_t len;
    uint64_t cookie; /* the platform's own (a physical address, a mapping id, ...) */
};

/*
 * What a platform implements. Tables are const, built with designated initialisers. The
 * core checks every argument before it calls a member, so members may trust theirs.
 */
struct dmahal__platform_ops {
    const char *name; /* "sim", "vfio"; not NULL */
    /* Parses @args (what followed "name:"), sets p->priv, page_size, has_iommu, coherent.
     * Not NULL. On failure it leaves nothing allocated. */
    int (*open)(struct dmahal_platform *p, const char *args);
    /* Releases p->priv; every device is closed already. May be NULL. */
    void (*close)(struct dmahal_platform *p);
    /* Opens device @name: sets d->priv and d->bar_size[]. Not NULL. */
    int (*device_open)(struct dmahal_device *d, const char *name);
    /* Every adapter of @d is put already. May be NULL. */
    void (*device_close)(struct dmahal_device *d);
    /* Register access; the core has checked that [off, off+size) lies in the BAR and is
     * naturally aligned, size 4 or 8. Not NULL. */
    uint64_t (*mmio_read)(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size);
    void (*mmio_write)(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                       unsigned size);
    /* Narrows an adapter's constraints to what the platform can give it (an IOVA window),
     * and sets up per-adapter state in a->pdata. May be NULL (nothing to narrow). */
    int (*adapter_init)(struct dmahal_adapter *a);
    void (*adapter_fini)(struct dmahal_adapter *a); /* May be NULL. */
    /* DMA memory for @a: @len bytes (a multiple of the page), va and la both aligned to
     * @align (a power of two >= page), la inside a->c (max_addr, and no multiple of
     * a->c.boundary crossed when len <= boundary). Contents unspecified. Not NULL.
     * -ENOMEM when nothing fits. */
    int (*mem_alloc)(struct dmahal_adapter *a, size_t len, size_t align, struct dmahal__chunk *out);
    /* Returns what mem_alloc gave, whole. Not NULL. */
    void (*mem_free)(struct dmahal_adapter *a, const struct dmahal__chunk *ch);
    /* A device access to logical memory; records a fault and returns -EFAULT when it
     * cannot be translated. NULL: the device is real, the core returns -ENOTSUP. */
    int (*dev_access)(struct dmahal_device *d, dmahal_addr_t la, void *buf, size_t len, bool write);
    /* Writes the platform's configuration, one "key: value" per line. Not NULL. */
    void (*describe)(struct dmahal_platform *p, FILE *f);

    /* ---- streaming DMA (see map.c) ---- */
    /* Without an IOMMU: gives the bus address of host memory [va, va + len) (both
     * page-aligned), contiguous over the range, and keeps it there until unpin. The address
     * may be out of the adapter's reach: the core checks and bounces. May be NULL: the
     * platform reaches host memory only through its IOMMU. */
    int (*pin)(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus);
    void (*unpin)(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus);
    /* With an IOMMU: maps host memory [va, va + len) at @iova in @d's domain (page-aligned;
     * the core took @iova from d->iova), @perm of DMAHAL__PERM_*. Called concurrently for
     * disjoint ranges, so it takes no lock the device's other mappings need. Not NULL when
     * has_iommu. -ENOMEM: nothing is left mapped. */
    int (*iommu_map)(struct dmahal_device *d, dmahal_addr_t iova, void *va, size_t len,
                     unsigned perm);
    void (*iommu_unmap)(struct dmahal_device *d, dmahal_addr_t iova, size_t len);
    /* Memory for the bounce pools: @len bytes (a page multiple) with a page-aligned bus
     * address at most @max_addr (without an IOMMU; with one, any). NULL: no bouncing, a
     * transfer the device cannot take directly fails with -ENOTSUP. */
    int (*bounce_alloc)(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                        struct dmahal__chunk *out);
    void (*bounce_free)(struct dmahal_platform *p, const struct dmahal__chunk *ch);
    /* Caches a non-coherent device does not snoop; called only for non-coherent adapters.
     * cache_track: host memory [va, va + len) is about to be seen by such a device (until
     * cache_untrack; ranges may overlap, the platform counts); cache_flush: the CPU's
     * writes to it become visible to the device; cache_invalidate: the device's writes
     * become visible to the CPU. Each may be NULL (nothing to do). */
    int (*cache_track)(struct dmahal_platform *p, void *va, size_t len);
    void (*cache_untrack)(struct dmahal_platform *p, void *va, size_t len);
    void (*cache_flush)(struct dmahal_platform *p, void *va, size_t len);
    void (*cache_invalidate)(struct dmahal_platform *p, void *va, size_t len);
};

#define DMAHAL__PERM_READ  1u /* the device may read */
#define DMAHAL__PERM_WRITE 2u /* the device may write */

/*
 * An adapter's operations: the DMA_OPERATIONS analog. Public functions check their
 * arguments and dispatch through a->ops, so the verifier can wrap them. Every member is
 * non-NULL.
 */
struct dmahal_dma_ops {
    int (*common_alloc)(struct dmahal_adapter *a, size_t len, unsigned flags,
                        struct dmahal_buf *out);
    int (*common_free)(struct dmahal_adapter *a, const struct dmahal_buf *buf);
    /* Called first by dmahal_adapter_put, before anything is released. */
    void (*put)(struct dmahal_adapter *a);
    /* Streaming DMA; the public functions have checked the arguments as their docs say
     * (iov and out not NULL, dir and flags known, sgl not NULL, b's range inside it). */
    int (*map)(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
               enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out);
    int (*map_async)(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                     enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx);
    int (*unmap)(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
    int (*sync_for_device)(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
    int (*sync_for_cpu)(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
    int (*common_sync)(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off, size_t len,
                       enum dmahal_dir dir);
};

/* The verifier's state (src/verifier/); NULL while it is off. */
struct dmahal__verifier;
struct dmahal__vadapter;

struct dmahal__context {
    const void *key;
    void *ctx;
    void (*release)(void *ctx);
    struct dmahal__context *next;
};

struct dmahal_platform {
    const struct dmahal__platform_ops *ops;
    void *priv;
    size_t page_size;
    unsigned page_shift;
    bool has_iommu;
    bool coherent;
    char *spec; /* as opened, for dump and info */

    pthread_mutex_t lock; /* the device list and the fault log */
    struct dmahal_device *devices;

    struct dmahal__bounce *bounce; /* bounce pools per constraint class (bounce.c) */

    struct dmahal_fault faults[DMAHAL__FAULT_RING];
    char fault_dev[DMAHAL__FAULT_RING][64]; /* device names, copied: they outlive devices */
    uint64_t fault_total;                   /* recorded since open or clear */

    /* Set once by dmahal_verify_enable (or DMAHAL_VERIFY=1), freed at close. Read on the
     * device-access path: one predictable branch when it is NULL. */
    struct dmahal__verifier *_Atomic verifier;
    /* On dmahal__platforms, so that a debugger finds every platform with no help from the
     * process (tools/gdb/dmahal.py). Under dmahal__platforms_lock. */
    struct dmahal_platform *next_platform, *prev_platform;
};

struct dmahal_device {
    struct dmahal_platform *p;
    char *name;
    void *priv; /* the platform's */
    uint64_t bar_size[DMAHAL__BARS];
    atomic_bool irq;
    struct dmahal__iova *iova; /* the device's IOVA space, set by device_open with an IOMMU */

    pthread_mutex_t lock; /* the adapter list and contexts */
    struct dmahal_adapter *adapters;
    struct dmahal__context *contexts;
    struct dmahal_device *next, *prev;
};

struct dmahal__bounce;
struct dmahal__iova;
struct dmahal__stream;

/* The common-buffer allocator's state for one adapter; see common.c. */
struct dmahal__arena;
struct dmahal__slab;
#define DMAHAL__SLAB_CLASSES 12 /* 16 B .. 32 KiB objects */

struct dmahal__common {
    dmahal__lock_t lock;
    struct dmahal__arena **arenas; /* sorted by va */
    size_t narenas, arenas_cap;
    struct dmahal__arena *spare; /* one empty arena kept to absorb alloc/free churn */
    struct dmahal__slab *partial[DMAHAL__SLAB_CLASSES]; /* slabs with free objects */
};

struct dmahal_adapter {
    const struct dmahal_dma_ops *ops; /* first: the hot path's one indirection */
    struct dmahal_device *dev;
    struct dmahal_desc desc; /* as merged, defaults filled in */
    struct dmahal__constraints c;
    unsigned map_registers;
    uint64_t id; /* unique in the process, never reused */
    void *pdata; /* the platform's per-adapter state */

    struct dmahal__common common;
    struct dmahal__stream *stream;      /* streaming maps, bounce pages, cached buffers (map.c) */
    struct dmahal_adapter *next, *prev; /* on dev->adapters, under dev->lock */
    struct dmahal__vadapter *verify;    /* the verifier's per-adapter state; NULL if unverified */
};

/* errors.c */
const char *dmahal__errname(int err);

/* platform.c: every open platform, newest first. */
extern struct dmahal_platform *dmahal__platforms;
extern pthread_mutex_t dmahal__platforms_lock;
/* platform.c */
void dmahal__fault_record(struct dmahal_device *d, dmahal_addr_t la, size_t len, bool write,
                          enum dmahal_fault_reason reason);
const struct dmahal__platform_ops *dmahal__platform_find(const char *name);
extern const struct dmahal__platform_ops dmahal__sim_ops;
#ifdef DMAHAL_HAVE_VFIO
extern const struct dmahal__platform_ops dmahal__vfio_ops;
#endif

/* Parses "4096", "4K", "1M", "2G", "1T", "0x1000" into @out; -EINVAL if malformed or
 * overflowing. util.c */
int dmahal__parse_size(const char *s, uint64_t *out);
/* Splits "key=val,key=val" one pair at a time: returns 1 with @key/@val set (pointing into
 * @buf, which is modified), 0 at the end. */
int dmahal__next_kv(char **cursor, char **key, char **val);

/* adapter.c */
extern const struct dmahal_dma_ops dmahal__direct_ops;   /* non-coherent devices */
extern const struct dmahal_dma_ops dmahal__coherent_ops; /* coherent devices */
void dmahal__adapter_destroy(struct dmahal_adapter *a);  /* release, then free */
/* Unlinks the adapter and frees everything it holds but the struct itself (the verifier
 * keeps put adapters' structs a while, to catch their later use). */
void dmahal__adapter_release(struct dmahal_adapter *a);

/* common.c: the common-buffer allocator (dmahal__direct_ops' members). */
/* An internal common_alloc flag (the public entry refuses it): the caller zeroes what it
 * needs itself (the verifier: its guard zones are filled with a pattern anyway). Ignored
 * with DMAHAL_CACHED on a non-coherent adapter, whose cache model must see zeroes. */
#define DMAHAL__COMMON_NO_ZERO 0x80000000u
int dmahal__common_init(struct dmahal_adapter *a);
void dmahal__common_fini(struct dmahal_adapter *a); /* frees everything still allocated */
int dmahal__common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                         struct dmahal_buf *out);
int dmahal__common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf);
/* Calls @fn for every live buffer of @a, under its lock (for dump and leak reports). */
void dmahal__common_walk(struct dmahal_adapter *a,
                         void (*fn)(const struct dmahal_buf *b, void *arg), void *arg);

/* verifier/verifier.c: the hooks the core calls. Each is reached only when the platform's
 * verifier is set (or, for the NULL-adapter one, on an error path). */
void dmahal__verify_platform_open(struct dmahal_platform *p);  /* honours DMAHAL_VERIFY */
void dmahal__verify_platform_close(struct dmahal_platform *p); /* devices are closed */
void dmahal__verify_adapter_new(struct dmahal_adapter *a);     /* may wrap a->ops */
void dmahal__verify_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                               dmahal_addr_t la, size_t len, bool write);
void dmahal__verify_null_adapter(const char *fn);
/* map.c: streaming DMA (dmahal__direct_ops' members) and the adapter's state for it. */
int dmahal__stream_init(struct dmahal_adapter *a);
/* Unmaps what is still mapped, cancels queued requests (their callbacks get -ECANCELED). */
void dmahal__stream_fini(struct dmahal_adapter *a);
int dmahal__map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out);
int dmahal__map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                      enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx);
int dmahal__unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
int dmahal__sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
int dmahal__sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
/* Common buffers on non-coherent adapters: cached ones are tracked by the platform's
 * cache model from allocation to free. */
int dmahal__common_alloc_synced(struct dmahal_adapter *a, size_t len, unsigned flags,
                                struct dmahal_buf *out);
int dmahal__common_free_synced(struct dmahal_adapter *a, const struct dmahal_buf *buf);
int dmahal__common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                        size_t len, enum dmahal_dir dir);
/* For dump: calls @fn for every live list of @a, under its lock. */
void dmahal__stream_walk(struct dmahal_adapter *a,
                         void (*fn)(const struct dmahal_sgl *sgl, enum dmahal_dir dir,
                                    unsigned regs, void *arg),
                         void *arg);

/* bounce.c: the bounce pools, shared per platform and constraint class. */
void dmahal__bounce_fini(struct dmahal_platform *p);
/* For dump: pages of each pool, one line per class. */
void dmahal__bounce_describe(struct dmahal_platform *p, FILE *f);

#endif /* DMAHAL_CORE_H */
