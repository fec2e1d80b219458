/* SPDX-License-Identifier: MIT */
/*
 * platform_ops.h - private: the provider contract. What a platform (sim, vfio, ...)
 * implements, and all of the core's objects it may touch.
 *
 * A platform includes this header (and the core services it names: the IOVA and range
 * allocators, the spec-string parsers), never core/internal.h: it sees the part of each
 * object the contract gives it, through dmahal__plat(), dmahal__dev() and dmahal__adp(),
 * and nothing of the allocators, the lists or the verifier. Drivers and the verifier do not
 * include it either. Linux draws the same line between dma-mapping.h and dma-map-ops.h.
 */
#ifndef DMAHAL_PLATFORM_OPS_H
#define DMAHAL_PLATFORM_OPS_H

#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <stdio.h>

#include "core/iova.h"
#include "core/range.h"
#include "core/util.h"

#define DMAHAL__BARS    DMAHAL_MODEL_BARS
#define DMAHAL__MAX_LEN ((size_t)1 << 40) /* the largest single allocation or transfer */

#define DMAHAL__ALIGN_UP(x, a)   (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define DMAHAL__ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define DMAHAL__IS_POW2(x)       ((x) != 0 && ((x) & ((x)-1)) == 0)

struct dmahal__platform_ops;
struct dmahal_dma_ops;

/*
 * An adapter's constraints, merged once (platform -> device -> adapter) in
 * dmahal_adapter_get() and handed to every allocator. All limits are filled in: no zeros
 * meaning "none".
 */
struct dmahal__constraints {
    uint64_t max_addr;      /* highest logical address the device drives (inclusive) */
    uint64_t boundary;      /* no element crosses a multiple of this; 0 = none */
    uint64_t alignment;     /* element address alignment, >= 1, power of two */
    size_t max_segment;     /* largest element; SIZE_MAX = none */
    size_t max_transfer;    /* largest transfer */
    unsigned max_segments;  /* >= 1 */
    uint64_t virt_boundary; /* elements after the first start on it, all but the last end on it */
    unsigned addr_bits;
    bool coherent; /* device snoops caches (the platform's and the device's word merged) */
};

/*
 * The provider's view of each object: its first members, in this order. internal.h lays
 * each object out as a union of this view and the same members by name, so the core reads
 * them directly and a platform through the accessors below, at no cost.
 */
#define DMAHAL__PLATFORM_VIEW                                                                      \
    const struct dmahal__platform_ops *ops;                                                        \
    void *priv;          /* the platform's; set by open */                                         \
    size_t page_size;    /* set by open (default 4096) */                                          \
    unsigned page_shift; /* set by the core after open */                                          \
    bool has_iommu;      /* set by open */                                                         \
    bool coherent        /* set by open: the machine's devices snoop the caches */

#define DMAHAL__DEVICE_VIEW                                                                        \
    struct dmahal_platform *p;                                                                     \
    char *name;                      /* as opened */                                               \
    void *priv;                      /* the platform's; set by device_open */                      \
    uint64_t bar_size[DMAHAL__BARS]; /* set by device_open; 0: absent */                           \
    struct dmahal__iova *iova        /* the IOVA space, set by device_open with an IOMMU */

#define DMAHAL__ADAPTER_VIEW                                                                       \
    const struct dmahal_dma_ops *ops; /* the core's: first, the hot path's one indirection */      \
    struct dmahal_device *dev;                                                                     \
    struct dmahal__constraints c; /* adapter_init may narrow them */                               \
    void *pdata                   /* the platform's per-adapter state */

struct dmahal__platform_view {
    DMAHAL__PLATFORM_VIEW;
};
struct dmahal__device_view {
    DMAHAL__DEVICE_VIEW;
};
struct dmahal__adapter_view {
    DMAHAL__ADAPTER_VIEW;
};

/* The provider's view of an object: each object begins with its view (internal.h). */
static inline struct dmahal__platform_view *dmahal__plat(struct dmahal_platform *p)
{
    return (struct dmahal__platform_view *)(void *)p;
}

static inline struct dmahal__device_view *dmahal__dev(struct dmahal_device *d)
{
    return (struct dmahal__device_view *)(void *)d;
}

static inline struct dmahal__adapter_view *dmahal__adp(struct dmahal_adapter *a)
{
    return (struct dmahal__adapter_view *)(void *)a;
}

/* The views a platform most often wants: an adapter's device, and the platform of a device
 * or an adapter. */
static inline struct dmahal__device_view *dmahal__adp_dev(struct dmahal_adapter *a)
{
    return dmahal__dev(dmahal__adp(a)->dev);
}

static inline struct dmahal__platform_view *dmahal__dev_plat(struct dmahal_device *d)
{
    return dmahal__plat(dmahal__dev(d)->p);
}

static inline struct dmahal__platform_view *dmahal__adp_plat(struct dmahal_adapter *a)
{
    return dmahal__plat(dmahal__adp_dev(a)->p);
}

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
    /* Parses @args (what followed "name:"), sets priv, page_size, has_iommu, coherent.
     * Not NULL. On failure it leaves nothing allocated. */
    int (*open)(struct dmahal_platform *p, const char *args);
    /* Releases priv; every device is closed already. May be NULL. */
    void (*close)(struct dmahal_platform *p);
    /* Opens device @name: sets priv and bar_size[]. Not NULL. */
    int (*device_open)(struct dmahal_device *d, const char *name);
    /* Every adapter of @d is put already. May be NULL. */
    void (*device_close)(struct dmahal_device *d);
    /* Register access; the core has checked that [off, off+size) lies in the BAR and is
     * naturally aligned, size 4 or 8. Not NULL. */
    uint64_t (*mmio_read)(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size);
    void (*mmio_write)(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                       unsigned size);
    /* Narrows an adapter's constraints to what the platform can give it (an IOVA window),
     * and sets up per-adapter state in pdata. May be NULL (nothing to narrow). */
    int (*adapter_init)(struct dmahal_adapter *a);
    void (*adapter_fini)(struct dmahal_adapter *a); /* May be NULL. */
    /* DMA memory for @a: @len bytes (a multiple of the page), va and la both aligned to
     * @align (a power of two >= page), la inside c (max_addr, and no multiple of
     * c.boundary crossed when len <= boundary). Contents unspecified. Not NULL.
     * -ENOMEM when nothing fits. */
    int (*mem_alloc)(struct dmahal_adapter *a, size_t len, size_t align, struct dmahal__chunk *out);
    /* Returns what mem_alloc (or mem_alloc_dark) gave, whole, whatever of it is reachable.
     * Not NULL. */
    void (*mem_free)(struct dmahal_adapter *a, const struct dmahal__chunk *ch);
    /* Strict isolation. As mem_alloc, but the device reaches none of the chunk until
     * mem_reach makes page runs of it reachable; the core does so as it hands buffers out,
     * and takes each run out of reach again, exactly as it was given, when the buffers on it
     * are freed. -ENOTSUP: this machine cannot keep memory from the device (no IOMMU), the
     * core then uses mem_alloc. May be NULL (the same). */
    int (*mem_alloc_dark)(struct dmahal_adapter *a, size_t len, size_t align,
                          struct dmahal__chunk *out);
    /* Makes [ch->la + off, ch->la + off + len) reachable by the device (@reach), or takes a
     * run made reachable before out of its reach again (never fails then). Page-aligned.
     * -ENOMEM, -ENOSPC (the IOMMU's mappings are all used). Not NULL with mem_alloc_dark. */
    int (*mem_reach)(struct dmahal_adapter *a, const struct dmahal__chunk *ch, size_t off,
                     size_t len, bool reach);
    /* A device access to logical memory; records a fault and returns -EFAULT when it
     * cannot be translated. NULL: the device is real, the core returns -ENOTSUP. */
    int (*dev_access)(struct dmahal_device *d, dmahal_addr_t la, void *buf, size_t len, bool write);
    /* How many more IOMMU mappings (iommu_map, mem_alloc, mem_reach calls) the platform
     * allows, or -1 if it knows no limit. Cheap: called on the map path when a map fails.
     * May be NULL (no limit). */
    int64_t (*mappings_avail)(struct dmahal_platform *p);
    /* Writes the platform's configuration, one "key: value" per line. Not NULL. */
    void (*describe)(struct dmahal_platform *p, FILE *f);

    /* ---- streaming DMA (see core/map.c) ---- */
    /* Without an IOMMU: gives the bus address of host memory [va, va + len) (both
     * page-aligned), contiguous over the range, and keeps it there until unpin. The address
     * may be out of the adapter's reach: the core checks and bounces. -EAGAIN: the platform
     * will not give this memory to a device where it is (noiommu: memory the library does not
     * own, whose pages may move); the core bounces it. May be NULL: the platform reaches host
     * memory only through its IOMMU, or bounces everything. */
    int (*pin)(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus);
    void (*unpin)(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus);
    /* Without an IOMMU, for dmahal_register: keeps host memory [va, va + len) (both
     * page-aligned) at its bus addresses until reg_unpin, after checking that they cannot
     * move. The addresses need not be contiguous: they come per piece of 2^*shift bytes
     * (*shift at least the page shift), (*bus)[i] being the bus address of
     * ALIGN_DOWN(va, 2^*shift) + (i << *shift), in an array the platform allocates and
     * reg_unpin frees. They may lie out of the adapter's reach: maps check and bounce.
     * -ENOTSUP: memory whose bus addresses may move (noiommu: ordinary pages); -EFAULT: not
     * mapped; -EPERM: the platform cannot see physical addresses; -ENOMEM; -EAGAIN: the
     * memory is the library's own, the core registers it through pin. May be NULL: the core
     * registers everything through pin. */
    int (*reg_pin)(struct dmahal_adapter *a, void *va, size_t len, unsigned *shift,
                   dmahal_addr_t **bus);
    /* Undoes reg_pin and frees @bus. Not NULL when reg_pin is not. */
    void (*reg_unpin)(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus);
    /* With an IOMMU: maps host memory [va, va + len) at @iova in @d's domain (page-aligned;
     * the core took @iova from the device's iova), @perm of DMAHAL__PERM_*. Called
     * concurrently for disjoint ranges, so it takes no lock the device's other mappings need.
     * Not NULL when has_iommu. -ENOMEM: nothing is left mapped. */
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

    /* ---- interrupts (see core/irq.c) ---- */
    /* Vectors of @type (INTX, MSI, MSIX; never ANY) the device has; 0 for none. NULL: the
     * platform has no interrupts, dmahal_irq_enable() returns -ENOTSUP. */
    unsigned (*irq_count)(struct dmahal_device *d, enum dmahal_irq_type type);
    /* Connects @nvec (1 .. irq_count) vectors of @type to the non-blocking eventfds
     * fds[0 .. nvec): the platform makes fds[i] readable (adds to its counter) each time
     * vector i fires, and for INTx masks the line until irq_unmask. A platform whose events
     * come on a descriptor of its own (a uio fd) stores it in fds[i] instead: it stays the
     * platform's, closed by its irq_disable; the core still closes the eventfds it made.
     * Not NULL when irq_count is not. On failure nothing stays connected. */
    int (*irq_enable)(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec, int *fds);
    /* Disconnects what irq_enable connected; no vector fires after it returns. Not NULL
     * when irq_count is not. */
    void (*irq_disable)(struct dmahal_device *d);
    /* Unmasks INTx (@vector 0) after an event. May be NULL: nothing masks, a no-op. */
    int (*irq_unmask)(struct dmahal_device *d, unsigned vector);
    /* Consumes the event that made fds[@vector] readable: 1 if there was one, 0 if none
     * (another reader took it), or a negative errno. May be NULL: the core reads the
     * eventfd's 8-byte counter. */
    int (*irq_consume)(struct dmahal_device *d, unsigned vector, int fd);
    /* A driver is about to block in dmahal_irq_wait() for up to @max_ns (UINT64_MAX: for
     * ever): a platform with virtual time runs device work, in time order, until @ready(ctx)
     * is true, nothing is pending within @max_ns, or that much time has passed. May be NULL:
     * the devices run in real time. */
    void (*wait_point)(struct dmahal_device *d, uint64_t max_ns, bool (*ready)(void *ctx),
                       void *ctx);
    /* What @d is doing on this thread, for the verifier's reports of its accesses: one phrase
     * in @buf ("in work due at ..., queued at ... by the driver's write ..."), its length
     * returned; 0 when the access is not the device's deferred work. May be NULL. */
    size_t (*dev_activity)(struct dmahal_device *d, char *buf, size_t size);

    /* ---- configuration space ---- */
    /* Size of the device's configuration space in bytes. NULL: it has none,
     * dmahal_config_read/_write return -ENOTSUP (and config_read/_write are NULL). */
    unsigned (*config_size)(struct dmahal_device *d);
    /* Access [off, off + len) of it; the core has checked the range. Not NULL when
     * config_size is not. */
    int (*config_read)(struct dmahal_device *d, unsigned off, void *buf, size_t len);
    int (*config_write)(struct dmahal_device *d, unsigned off, const void *buf, size_t len);

    /* ---- discovery ---- */
    /* Lists the devices the platform could open, without an open platform: *out gets a
     * malloc'ed array, the return value its length, or a negative errno. May be NULL:
     * dmahal_device_list() returns -ENOTSUP. */
    int (*device_list)(struct dmahal_device_info **out);
};

#define DMAHAL__PERM_READ  1u /* the device may read */
#define DMAHAL__PERM_WRITE 2u /* the device may write */

/* ---- what the core offers a platform ---------------------------------------------------- */

/* The platforms this build has (src/platform/registry.c lists them). */
extern const struct dmahal__platform_ops dmahal__sim_ops;
#ifdef DMAHAL_HAVE_VFIO
extern const struct dmahal__platform_ops dmahal__vfio_ops;
#endif
#ifdef DMAHAL_HAVE_NOIOMMU
extern const struct dmahal__platform_ops dmahal__noiommu_ops;
#endif

/* Records a device access that could not be translated in the platform's fault log
 * (dmahal_fault_get). Takes the platform's lock. */
void dmahal__fault_record(struct dmahal_device *d, dmahal_addr_t la, size_t len, bool write,
                          enum dmahal_fault_reason reason);

/* ---- the registry (src/platform/registry.c) ------------------------------------------- */

/* The platform called @name ("sim", "vfio", "noiommu"), or NULL if this build has none. */
const struct dmahal__platform_ops *dmahal__platform_find(const char *name);

#endif /* DMAHAL_PLATFORM_OPS_H */
