/* SPDX-License-Identifier: MIT */
/*
 * internal.h - private: the objects behind the public handles, the adapter ops table, and
 * the core's functions shared across its files. For the core (src/core), the verifier and
 * the dump; never for a platform (core/platform_ops.h is theirs) or for drivers.
 */
#ifndef DMAHAL_INTERNAL_H
#define DMAHAL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "core/lock.h"
#include "core/platform_ops.h"

#define DMAHAL__FAULT_RING 256

/*
 * The first layout of each versioned public struct, what a size of 0 stands for: the bytes up
 * to the end of its last member then, padded as the struct was. These never change; members
 * added later start at or after them (docs/ABI.md).
 */
#define DMAHAL__V1_SIZE(type, last)                                                                \
    DMAHAL__ALIGN_UP(offsetof(type, last) + sizeof(((type *)0)->last), _Alignof(type))
#define DMAHAL__DESC_V1   DMAHAL__V1_SIZE(struct dmahal_desc, virt_boundary)
#define DMAHAL__FAULT_V1  DMAHAL__V1_SIZE(struct dmahal_fault, reason)
#define DMAHAL__REPORT_V1 DMAHAL__V1_SIZE(struct dmahal_report, len)

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
struct dmahal__bounce;
struct dmahal__stream;

struct dmahal__context {
    const void *key;
    void *ctx;
    void (*release)(void *ctx);
    struct dmahal__context *next;
};

struct dmahal_platform {
    union { /* first: the provider's view (platform_ops.h) */
        struct dmahal__platform_view view;
        struct {
            DMAHAL__PLATFORM_VIEW;
        };
    };
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

/* A device's enabled interrupts (irq.c). Under its lock; waiters are counted so that
 * disable can close the fds only once no wait is still polling them. */
struct dmahal__irq {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when waiters drops to 0 */
    int type;            /* enum dmahal_irq_type; 0: off */
    unsigned nvec;
    int *fds;   /* what each vector's waiter polls (the platform may have replaced some) */
    int *own;   /* the eventfds the core made, closed at disable */
    int cancel; /* an eventfd, readable once disable has started */
    unsigned waiters;
    bool closing;
    /* type | nvec << 8 while enabled and not closing, 0 otherwise: what dmahal_irq_mode
     * answers without the lock, so that a model may ask while holding its own lock (which
     * the platform takes under this one, e.g. to unmask MSI-X vectors on enable). */
    atomic_uint mode;
};

struct dmahal_device {
    union { /* first: the provider's view (platform_ops.h) */
        struct dmahal__device_view view;
        struct {
            DMAHAL__DEVICE_VIEW;
        };
    };
    struct dmahal__irq irq; /* irq.c */

    pthread_mutex_t lock; /* the adapter list and contexts */
    struct dmahal_adapter *adapters;
    struct dmahal__context *contexts;
    struct dmahal_device *next, *prev;
};

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

/* The common buffers of a non-coherent adapter, sorted by va (common_sync.c). */
struct dmahal__cbuf;
struct dmahal__cbufs {
    dmahal__lock_t lock;
    struct dmahal__cbuf *v;
    size_t n, cap;
};

struct dmahal_adapter {
    union { /* first: the provider's view (platform_ops.h); ops leads it */
        struct dmahal__adapter_view view;
        struct {
            DMAHAL__ADAPTER_VIEW;
        };
    };
    struct dmahal_desc desc; /* as merged, defaults filled in */
    unsigned map_registers;
    uint64_t id; /* unique in the process, never reused */

    struct dmahal__common common;
    struct dmahal__stream *stream;       /* streaming maps and bounce pages (map.c) */
    struct dmahal__cbufs cbufs;          /* tracked common buffers (common_sync.c) */
    struct dmahal_adapter *next, *prev;  /* on dev->adapters, under dev->lock */
    struct dmahal__vadapter *verify;     /* the verifier's per-adapter state; NULL if unverified */
    struct dmahal__regs *_Atomic regs;   /* registered memory (reg.c); NULL until the first */
    struct dmahal__spill *_Atomic spill; /* bounce memory past the IOMMU's limit (spill.c) */
    struct dmahal__mcache *_Atomic mcache; /* kept mappings (mcache.c), DMAHAL_DESC_MAP_CACHE */
};

_Static_assert(offsetof(struct dmahal_platform, view) == 0 &&
                   offsetof(struct dmahal_platform, coherent) ==
                       offsetof(struct dmahal__platform_view, coherent),
               "a platform begins with its provider view");
_Static_assert(offsetof(struct dmahal_device, view) == 0 &&
                   offsetof(struct dmahal_device, iova) ==
                       offsetof(struct dmahal__device_view, iova),
               "a device begins with its provider view");
_Static_assert(offsetof(struct dmahal_adapter, ops) == 0 &&
                   offsetof(struct dmahal_adapter, pdata) ==
                       offsetof(struct dmahal__adapter_view, pdata),
               "an adapter begins with its provider view");

/* Inserts @x at the head of an intrusive doubly-linked list whose members link through
 * @next and @prev, and unlinks it. */
#define DMAHAL__LIST_PUSH(head, x, next, prev)                                                     \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (x);                                                                    \
        (head) = (x);                                                                              \
    } while (0)
#define DMAHAL__LIST_UNLINK(head, x, next, prev)                                                   \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x)->prev;                                                           \
    } while (0)

/* A pointer's hash for open-addressed tables: the golden-ratio multiply, top bits wanted. */
static inline uint64_t dmahal__hash_ptr(const void *ptr)
{
    return (uint64_t)(uintptr_t)ptr * 0x9e3779b97f4a7c15ull;
}

/* errors.c: the code's own name ("EINVAL"), or NULL if it has none. */
const char *dmahal__errname(int err);

/* platform.c: every open platform, newest first. */
extern struct dmahal_platform *dmahal__platforms;
extern pthread_mutex_t dmahal__platforms_lock;

/* adapter.c */
extern const struct dmahal_dma_ops dmahal__noncoherent_ops; /* non-coherent devices */
extern const struct dmahal_dma_ops dmahal__coherent_ops;    /* coherent devices */
void dmahal__adapter_destroy(struct dmahal_adapter *a);     /* release, then free */
/* Unlinks the adapter and frees everything it holds but the struct itself (the verifier
 * keeps put adapters' structs a while, to catch their later use). */
void dmahal__adapter_release(struct dmahal_adapter *a);

/* common.c: the common-buffer allocator. */
/* An internal common_alloc flag (the public entry refuses it): the caller zeroes what it
 * needs itself (the verifier: its guard zones are filled with a pattern anyway). Ignored
 * with DMAHAL_CACHED on a non-coherent adapter, whose cache model must see zeroes. */
#define DMAHAL__COMMON_NO_ZERO 0x80000000u
int dmahal__common_init(struct dmahal_adapter *a);
void dmahal__common_fini(struct dmahal_adapter *a); /* frees everything still allocated */
int dmahal__common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                         struct dmahal_buf *out);
int dmahal__common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf);
/* Whether @b is a live buffer of @a: same va, la and len as allocated. */
bool dmahal__common_live(struct dmahal_adapter *a, const struct dmahal_buf *b);
/* Calls @fn for every live buffer of @a, under its lock (for dump and leak reports). */
void dmahal__common_walk(struct dmahal_adapter *a,
                         void (*fn)(const struct dmahal_buf *b, void *arg), void *arg);

/* common_sync.c: common buffers on non-coherent adapters; cached ones are tracked by the
 * platform's cache model from allocation to free (dmahal__noncoherent_ops' members). */
int dmahal__common_alloc_synced(struct dmahal_adapter *a, size_t len, unsigned flags,
                                struct dmahal_buf *out);
int dmahal__common_free_synced(struct dmahal_adapter *a, const struct dmahal_buf *buf);
int dmahal__common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                        size_t len, enum dmahal_dir dir);
/* Untracks what is still tracked and frees the list (at adapter release). */
void dmahal__cbufs_fini(struct dmahal_adapter *a);

/* map.c: streaming DMA (both tables' streaming members) and the adapter's state for it. */
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
/* For dump: calls @fn for every live list of @a, under its lock. */
void dmahal__stream_walk(struct dmahal_adapter *a,
                         void (*fn)(const struct dmahal_sgl *sgl, enum dmahal_dir dir,
                                    unsigned regs, void *arg),
                         void *arg);

/* reg.c: registered memory. */
struct dmahal__reg;
struct dmahal__regs;
/* The registration holding all of [va, va + len), with a count taken on it, and the
 * device's address of va. -ENOENT when no one registration holds it. Lock-free. */
int dmahal__reg_get(struct dmahal_adapter *a, const void *va, size_t len, struct dmahal__reg **out,
                    dmahal_addr_t *la);
void dmahal__reg_put(struct dmahal__reg *r);
/* Unmaps every registration (the adapter is being put; its maps are gone). */
void dmahal__reg_fini(struct dmahal_adapter *a);

/* spill.c: pre-mapped bounce memory for maps the IOMMU has no mapping left for. */
struct dmahal__spill;
/* @bytes (a page multiple) at an @align-aligned device address the adapter reaches, from
 * memory mapped for the device already. -ENOMEM. Thread-safe. */
int dmahal__spill_get(struct dmahal_adapter *a, size_t bytes, uint64_t align, char **va,
                      dmahal_addr_t *la);
void dmahal__spill_put(struct dmahal_adapter *a, dmahal_addr_t la, size_t bytes);
void dmahal__spill_fini(struct dmahal_adapter *a); /* after the adapter's last map */

/* mcache.c: the mapping cache of DMAHAL_DESC_MAP_CACHE. */
struct dmahal__mcache;
/* Takes the kept mapping of the page span [base, base + span) with @perm out of the cache:
 * 0 with its IOVA, or -ENOENT. */
int dmahal__mcache_take(struct dmahal_adapter *a, void *base, size_t span, unsigned perm,
                        dmahal_addr_t *iova);
/* Keeps a mapping an unmap would release (evicting the oldest when full); false when it
 * could not, and the caller releases it. */
bool dmahal__mcache_keep(struct dmahal_adapter *a, void *base, size_t span, unsigned perm,
                         dmahal_addr_t iova);
unsigned dmahal__mcache_flush(struct dmahal_adapter *a); /* releases all; how many */
void dmahal__mcache_fini(struct dmahal_adapter *a);      /* after the adapter's last map */

/* irq.c: set up at device open, torn down (interrupts disabled) at close. */
void dmahal__irq_init(struct dmahal_device *d);
void dmahal__irq_fini(struct dmahal_device *d);
/* device.c: sets the command register's bus-master bit, where there is a config space. */
int dmahal__bus_master(struct dmahal_device *d);

/* bounce.c: the bounce pools, shared per platform and constraint class. */
void dmahal__bounce_fini(struct dmahal_platform *p);
/* For dump: pages of each pool, one line per class. */
void dmahal__bounce_describe(struct dmahal_platform *p, FILE *f);

#endif /* DMAHAL_INTERNAL_H */
