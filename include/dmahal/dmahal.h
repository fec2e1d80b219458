/* SPDX-License-Identifier: MIT */
/**
 * @file
 * dmahal.h - the DMA hardware-abstraction layer for user-space drivers.
 *
 * A driver opens a platform (the machine's DMA topology), opens its device on it, and asks
 * for a DMA adapter that describes what the device can drive. From the adapter it gets
 * common buffers: one call returns the CPU's virtual address and the device's logical
 * address. The driver never translates addresses itself; the platform does, whatever the
 * machine is (an IOMMU, no IOMMU, RAM above 4 GiB with a 32-bit device, caches the device
 * does not snoop).
 *
 * Conventions:
 *  - every function that can fail returns 0 or a negative errno; dmahal_strerror() names it;
 *  - results go through out-parameters, which are cleared on failure;
 *  - no function aborts on bad input;
 *  - objects are opaque; a platform owns its devices, a device its adapters, an adapter its
 *    buffers. Closing a parent with live children is refused with -EBUSY where the function
 *    can fail, and reported otherwise (see each function).
 */
#ifndef DMAHAL_DMAHAL_H
#define DMAHAL_DMAHAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A logical (device-visible) address: what the driver programs into its device. */
typedef uint64_t dmahal_addr_t;

/** A platform: the machine's DMA topology ("sim", "vfio", "noiommu"). */
struct dmahal_platform;
/** A device: one bus master on a platform. */
struct dmahal_device;
/** A DMA adapter: a device's view of DMA memory under its constraints. */
struct dmahal_adapter;

/* ------------------------------------------------------------------------------------------
 * Errors and version
 * ------------------------------------------------------------------------------------------ */

/**
 * Names an error code.
 *
 * @param err  a negative errno returned by a dmahal function (a positive value is taken as
 *             its negation; 0 is "success").
 * @return     a static, human-readable string; never NULL. Unknown codes give "unknown error".
 */
const char *dmahal_strerror(int err);

/**
 * The version of these headers, semantic versioning (docs/ABI.md): MAJOR changes with an
 * ABI break (and is the soname's number), MINOR with an addition, PATCH with a fix.
 * dmahal_version() is the library's, which may be newer than the headers a program was
 * built with, never of another MAJOR.
 */
#define DMAHAL_VERSION_MAJOR 0
#define DMAHAL_VERSION_MINOR 2 /**< see DMAHAL_VERSION_MAJOR */
#define DMAHAL_VERSION_PATCH 0 /**< see DMAHAL_VERSION_MAJOR */

/** Returns the library's version as "MAJOR.MINOR.PATCH"; never NULL. */
const char *dmahal_version(void);

/* ------------------------------------------------------------------------------------------
 * Platform
 * ------------------------------------------------------------------------------------------ */

/**
 * Opens a platform.
 *
 * @param spec  which platform, and its options:
 *   - NULL or "": the value of the environment variable DMAHAL_PLATFORM, else "sim";
 *   - "sim[:key=val,...]": the simulated machine. Keys:
 *       ram=RANGES     physical RAM as comma-separated "START-END" ranges, END exclusive,
 *                      with K/M/G/T suffixes, page-aligned, not overlapping, at most 16
 *                      (default "0-1G,4G-64G": most RAM above 4 GiB). Host memory backs a
 *                      frame only once it is touched;
 *       iommu=on|off   a per-device IOMMU (default off);
 *       coherent=yes|no  whether devices snoop CPU caches (default yes);
 *       page=SIZE      the page size (4K, default);
 *       dma_entries=N  with the IOMMU: at most N streaming mappings (maps, bounce runs,
 *                      registrations) at once, as vfio's dma_entry_limit (default: no limit);
 *       time=virtual|threads  how device models' deferred work runs (include/dmahal/device.h):
 *                      in virtual time that moves at defined points (default), or on one
 *                      thread per device in real time;
 *       seed=N         the seed of virtual time's jitter (default 0): the same seed replays
 *                      the same interleaving of device work and driver, another changes it;
 *       mmio_ns=N      virtual nanoseconds a register read takes (default 500; 1..10^9);
 *       idle=MS        virtual time: a driver that reaches no point where time moves for MS
 *                      milliseconds of real time (it polls memory only) has time moved to
 *                      the next device work for it (default 100; 0: never). Such a run is
 *                      not replayed exactly;
 *   - "vfio": Linux VFIO with the type1 IOMMU.
 *   - "noiommu[:key=val,...]": real PCI devices on a machine without an IOMMU (bound to
 *     uio_pci_generic, or vfio-pci in no-IOMMU mode), DMA memory from hugepages and a reserved
 *     low range (docs/noiommu.md). Keys: lowmem=START+SIZE (a memmap= reservation, e.g.
 *     0x8000000+64M; else $DMAHAL_NOIOMMU_LOWMEM, else lowmem= in the file
 *     $DMAHAL_NOIOMMU_CONFIG or /etc/dmahal/noiommu.conf; "none": none), hugepages=on|off
 *     (default on), mem=PATH (default /dev/mem), sysfs=PATH (default /sys/bus/pci/devices),
 *     dev=PATH (where the uioN nodes are, default /dev). It returns -EACCES when /dev/mem
 *     cannot be opened or the range mapped (not root, or the range is System RAM).
 * @param out   receives the platform; cleared on failure.
 * @return 0; -EINVAL for a NULL @p out or a malformed spec (unknown platform, key or value,
 *         overlapping or empty RAM ranges); -ENOTSUP for a platform not built in;
 *         -ENOMEM when host memory runs out; a platform may return others (see its docs).
 */
int dmahal_platform_open(const char *spec, struct dmahal_platform **out);

/**
 * Closes a platform, closing every device still open on it (and their adapters and
 * buffers). Passing NULL does nothing.
 */
void dmahal_platform_close(struct dmahal_platform *p);

/** Returns the platform's kind ("sim", "vfio", "noiommu"), or "" for NULL. */
const char *dmahal_platform_name(const struct dmahal_platform *p);

/** Returns the platform's page size in bytes (the granule of DMA memory), or 0 for NULL. */
size_t dmahal_platform_page_size(const struct dmahal_platform *p);

/**
 * Tells whether the platform translates device addresses through an IOMMU.
 * @return 1 if so, 0 if not, -EINVAL for NULL.
 */
int dmahal_platform_has_iommu(const struct dmahal_platform *p);

/* ------------------------------------------------------------------------------------------
 * Device
 * ------------------------------------------------------------------------------------------ */

/**
 * Opens a device on a platform.
 *
 * @param name  on "sim": a device model, optionally with arguments, e.g. "edu" or
 *              "edu:dma_mask=0xffffffff"; each call makes a new instance. On "vfio": a PCI
 *              address such as "0000:00:03.0". On "noiommu": a PCI address, or a
 *              vendor:device such as "1234:11e8" (the first such device by address).
 * @param out   receives the device; cleared on failure.
 * @return 0; -EINVAL for NULL arguments or a malformed name; -ENOENT for an unknown model
 *         or absent device; -ENOMEM; a platform may return others: vfio returns
 *         -ENODEV for a device without an IOMMU group or driver, or vfio-pci not loaded;
 *         -EBUSY for a device bound to another driver, or a group open elsewhere or not
 *         viable; -EACCES without permission on the group; -ENAMETOOLONG for a sysfs link
 *         whose name does not fit; the errno of a failed system call. noiommu returns -ENODEV
 *         for a device bound to no driver, or to vfio-pci on a kernel without no-IOMMU mode;
 *         -EBUSY for one bound to another driver than uio_pci_generic; -EACCES without
 *         permission on its sysfs files.
 */
int dmahal_device_open(struct dmahal_platform *p, const char *name, struct dmahal_device **out);

/**
 * Closes a device, putting every adapter still held on it (their common buffers are freed).
 * Passing NULL does nothing.
 */
void dmahal_device_close(struct dmahal_device *d);

/** Returns the name the device was opened with, or "" for NULL. */
const char *dmahal_device_name(const struct dmahal_device *d);

/** Returns the platform a device belongs to, or NULL for NULL. */
struct dmahal_platform *dmahal_device_platform(const struct dmahal_device *d);

/**
 * Attaches a context to a device under a key of the caller's (the address of something of
 * its own), so that layers above dmahal (a driver framework, the Windows-names layer) can
 * keep per-device state. @p release, if not NULL, is called with @p ctx when the device
 * closes.
 * @return 0; -EINVAL for a NULL @p d or @p key; -EEXIST if the key is attached already;
 *         -ENOMEM.
 */
int dmahal_device_set_context(struct dmahal_device *d, const void *key, void *ctx,
                              void (*release)(void *ctx));

/** Returns the context attached under @p key, or NULL if none (or for NULL arguments). */
void *dmahal_device_context(const struct dmahal_device *d, const void *key);

/**
 * Tells the size of one of the device's memory BARs.
 * @param size  receives the size in bytes, 0 if the BAR is absent; cleared on failure.
 * @return 0; -EINVAL for NULL arguments or @p bar above 5.
 */
int dmahal_device_bar_size(const struct dmahal_device *d, unsigned bar, uint64_t *size);

/**
 * Reads a 32-bit device register.
 *
 * Register access has no error return, as on hardware: an access outside the BAR, to an
 * absent BAR, misaligned, or through NULL reads all ones (0xffffffff), like a master abort.
 */
uint32_t dmahal_mmio_read32(struct dmahal_device *d, unsigned bar, uint64_t off);

/** Writes a 32-bit device register. A write that dmahal_mmio_read32 would refuse is dropped. */
void dmahal_mmio_write32(struct dmahal_device *d, unsigned bar, uint64_t off, uint32_t v);

/** Reads a 64-bit device register; all ones where dmahal_mmio_read32 would refuse. */
uint64_t dmahal_mmio_read64(struct dmahal_device *d, unsigned bar, uint64_t off);

/** Writes a 64-bit device register; dropped where dmahal_mmio_write32 would refuse. */
void dmahal_mmio_write64(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t v);

/*
 * Ordering of register access against DMA memory, on every platform (as Linux's writel and
 * readl):
 *  - dmahal_mmio_write32/64: every store the CPU made to DMA memory (common buffers, mapped
 *    buffers) before the call is visible to the device before the register write reaches
 *    it. A doorbell write needs no fence of the driver's own.
 *  - dmahal_mmio_read32/64: the register read completes before any later load of DMA
 *    memory, so a driver that reads a "done" register and then the data sees the data the
 *    device wrote before it set the register.
 * Neither orders against non-coherent caches: dmahal_sync_for_cpu/_device still do that.
 */

/* ------------------------------------------------------------------------------------------
 * Interrupts
 *
 * One model on every platform, VFIO's: each vector of the type the driver enabled has a
 * file descriptor that becomes readable when the vector fires. A driver waits on it with
 * dmahal_irq_wait(), or puts it in its own poll/epoll loop (dmahal_irq_fd()). MSI and MSI-X
 * are edge-triggered messages: each firing is one event. INTx is a level: when the line
 * rises the platform signals the fd and masks the line, and nothing more arrives until the
 * driver has quietened the device (acknowledged it in its registers) and called
 * dmahal_irq_unmask(); if the line is still asserted then, it fires again at once.
 *
 * What each platform supports:
 *  - sim:  every type the device model declares (edu: INTx and one MSI vector; see
 *          docs/devices/); the fds are eventfds the models' raises write;
 *  - vfio: what the kernel reports for the device (VFIO_DEVICE_GET_IRQ_INFO): INTx
 *          (masked by the kernel when it fires), MSI and MSI-X with several vectors, as
 *          eventfds given to VFIO_DEVICE_SET_IRQS;
 *  - a platform without interrupts returns -ENOTSUP from dmahal_irq_enable().
 * A port of a Windows driver's IoConnectInterrupt ISR becomes a thread (or an event loop)
 * that waits for the vector, runs the ISR's body (read and acknowledge the device's
 * interrupt status) and the DPC's work, then calls dmahal_irq_unmask() for INTx: the
 * passive-level, message-signalled model (IoConnectInterruptEx with
 * CONNECT_MESSAGE_BASED), not a callback at device IRQL.
 * ------------------------------------------------------------------------------------------ */

/** Interrupt types, as PCI has them. */
enum dmahal_irq_type {
    DMAHAL_IRQ_ANY = 0,  /**< the best the device offers: MSI-X, else MSI, else INTx */
    DMAHAL_IRQ_INTX = 1, /**< the legacy level-triggered line (INTA#); one vector */
    DMAHAL_IRQ_MSI = 2,  /**< message-signalled, up to 32 vectors */
    DMAHAL_IRQ_MSIX = 3, /**< message-signalled with a table, up to 2048 vectors */
};

/**
 * Tells how many vectors of a type the device has.
 * @return the number (> 0); 0 if the device has none of that type (or the platform no
 *         interrupts); -EINVAL for NULL or a type that is not INTX, MSI or MSIX.
 */
int dmahal_irq_count(struct dmahal_device *d, enum dmahal_irq_type type);

/**
 * Enables a device's interrupts: @p nvec vectors of @p type, numbered 0 .. nvec - 1.
 *
 * @param nvec  vectors wanted; 0 means all the device has of the type. More than it has is
 *              capped to what it has (INTx has one; MSI a power of two).
 * @return the number of vectors enabled (> 0); -EINVAL for NULL or an unknown type;
 *         -ENOTSUP if the device (or the platform) lacks the type; -EBUSY if interrupts are
 *         enabled already (dmahal_irq_disable first); -EMFILE, -ENOMEM; on vfio the errno of
 *         a failed VFIO_DEVICE_SET_IRQS.
 */
int dmahal_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec);

/**
 * Disables the device's interrupts and closes their fds. A dmahal_irq_wait() pending in
 * another thread returns -ECANCELED first; fds returned by dmahal_irq_fd() are invalid
 * afterwards. dmahal_device_close() does this too.
 * @return 0; -EINVAL for NULL or when interrupts are not enabled.
 */
int dmahal_irq_disable(struct dmahal_device *d);

/**
 * Returns the type enabled by dmahal_irq_enable() (DMAHAL_IRQ_INTX, _MSI or _MSIX) and, in
 * @p nvec if not NULL, the number of vectors; 0 (and *nvec = 0) when interrupts are off;
 * -EINVAL for NULL @p d. Device models use it to choose between a message and the line.
 */
int dmahal_irq_mode(struct dmahal_device *d, unsigned *nvec);

/**
 * Returns the file descriptor of a vector, for the driver's own poll/epoll loop: it becomes
 * readable (POLLIN) when the vector fires; reading 8 bytes from it consumes the events so
 * far (it is an eventfd in non-blocking mode). The library owns it: do not close it.
 * @return the fd (>= 0); -EINVAL for NULL, interrupts not enabled, or a vector out of range.
 */
int dmahal_irq_fd(struct dmahal_device *d, unsigned vector);

/**
 * Waits for a vector to fire and consumes its event.
 * @param timeout_ms  milliseconds; 0 only checks; -1 waits for ever.
 * @return 0 when it fired; -ETIMEDOUT; -EINTR when a signal interrupted the wait;
 *         -ECANCELED when dmahal_irq_disable() ran meanwhile; -EINVAL for NULL, interrupts
 *         not enabled, a vector out of range or a timeout below -1.
 */
int dmahal_irq_wait(struct dmahal_device *d, unsigned vector, int timeout_ms);

/**
 * Unmasks a vector after its event was handled: for INTx, which the platform masks when it
 * fires (VFIO's semantics); a no-op (0) for MSI and MSI-X, which nothing masks.
 * @return 0; -EINVAL for NULL, interrupts not enabled or a vector out of range; on vfio the
 *         errno of a failed VFIO_DEVICE_SET_IRQS.
 */
int dmahal_irq_unmask(struct dmahal_device *d, unsigned vector);

/* ------------------------------------------------------------------------------------------
 * PCI configuration space
 *
 * sim: each device model has a 256-byte type-0 header built from what it declares (IDs,
 * class, BARs, the MSI/MSI-X capabilities it offers, the command register); writes reach
 * the command register (memory enable, bus master, INTx disable), the BARs and the
 * interrupt line. vfio: the device's config region, as the kernel virtualises it.
 * Device DMA needs the command register's bus-master bit: dmahal_adapter_get() sets it (the
 * sim refuses a DMA without it, as a fault of reason DMAHAL_FAULT_BUS_MASTER).
 * ------------------------------------------------------------------------------------------ */

/** Command register bits (offset 0x04), as PCI defines them. */
#define DMAHAL_PCI_COMMAND          0x04
#define DMAHAL_PCI_COMMAND_MEMORY   0x0002u /**< memory space decoding */
#define DMAHAL_PCI_COMMAND_MASTER   0x0004u /**< bus mastering: the device may DMA */
#define DMAHAL_PCI_COMMAND_INTX_OFF 0x0400u /**< INTx disable */
/** @{ */
#define DMAHAL_PCI_CAP_ID_MSI  0x05u /**< capability IDs for dmahal_config_find_cap */
#define DMAHAL_PCI_CAP_ID_PCIE 0x10u
#define DMAHAL_PCI_CAP_ID_MSIX 0x11u
/** @} */

/**
 * Reads @p len bytes of the device's configuration space from offset @p off.
 * @return 0; -EINVAL for NULL arguments, len 0, or a range beyond the space (256 bytes on
 *         sim, what the kernel reports on vfio); -ENOTSUP on a platform without one; on
 *         vfio -EIO for a short read or the errno of pread.
 */
int dmahal_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len);

/**
 * Writes @p len bytes of configuration space at @p off; read-only bits keep their values.
 * @return as dmahal_config_read.
 */
int dmahal_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len);

/**
 * Finds a capability by ID in the device's capability list (standard, not extended).
 * @param off  receives its offset in config space; cleared on failure.
 * @return 0; -ENOENT if the device has none (or no capability list); -ELOOP for a list that
 *         loops; -EINVAL for NULL arguments; the codes of dmahal_config_read.
 */
int dmahal_config_find_cap(struct dmahal_device *d, uint8_t id, unsigned *off);

/* ------------------------------------------------------------------------------------------
 * Discovery: what a platform could open
 * ------------------------------------------------------------------------------------------ */

/** One device a platform can see, from dmahal_device_list(). */
struct dmahal_device_info {
    char name[64];       /**< what dmahal_device_open() takes: "0000:00:03.0", or a model */
    uint16_t vendor;     /**< PCI vendor ID */
    uint16_t device;     /**< PCI device ID */
    uint32_t class_code; /**< base class, subclass, programming interface (24 bits) */
    int iommu_group;     /**< -1: none (the IOMMU is off); sim: -1 */
    char driver[64];     /**< the kernel driver bound, "" if none; sim: "sim" */
    bool openable;       /**< the platform can open it as things are */
    char fix[256];       /**< if not openable: the one-line fix; "" otherwise */
};

/**
 * Lists the devices a platform can see, without opening the platform: "sim" lists the
 * registered device models (with the IDs their config space reports), "vfio" every PCI
 * device in sysfs, with what stands between it and dmahal_device_open().
 *
 * @param platform  "sim", "vfio", or NULL/"" for $DMAHAL_PLATFORM, else "sim".
 * @param out       receives an array to free with free(); NULL when @p count is 0.
 * @return the number of devices (>= 0); -EINVAL for a NULL @p out or an unknown platform;
 *         -ENOTSUP for a platform that cannot list; -ENOMEM; the errno of opening sysfs.
 */
int dmahal_device_list(const char *platform, struct dmahal_device_info **out);

/* ------------------------------------------------------------------------------------------
 * Adapter: IoGetDmaAdapter with a DEVICE_DESCRIPTION
 * ------------------------------------------------------------------------------------------ */

/**
 * What a device can drive. Zero-initialise it and set what you know.
 *
 * Like every public struct that may grow, it starts with its size: set it to
 * sizeof(struct dmahal_desc) to use members added after the first layout; 0 stands for the
 * first layout (every member up to virt_boundary). A newer program's longer struct is
 * accepted as long as the members this library does not know are zero.
 */
struct dmahal_desc {
    size_t size;           /**< sizeof(struct dmahal_desc), or 0 (see above) */
    unsigned addr_bits;    /**< address width the device drives, 24..64; 0 means 32 */
    unsigned max_segments; /**< scatter/gather elements per transfer; 0 or 1: none */
    size_t max_transfer;   /**< largest transfer in bytes; 0: 1 MiB; above 1 TiB: 1 TiB */
    size_t max_segment;    /**< largest element in bytes; 0: no limit */
    uint64_t boundary;     /**< no element crosses a multiple of this (power of two); 0: none */
    size_t alignment;      /**< element address alignment, power of two; 0: 1 */
    bool coherent;         /**< the device snoops CPU caches */
    /**
     * A virtual boundary (power of two; 0: none), as NVMe's PRPs and Linux's block layer
     * virt_boundary_mask need: in a scatter/gather list, only the first element may start
     * off a multiple of it, and every element but the last must end on one. A layout that
     * breaks it is bounced into one run. With max_segment it must divide max_segment; with
     * boundary, boundary must be at least this large.
     */
    uint64_t virt_boundary;
    /** DMAHAL_DESC_*: how far the device is kept from memory (since 0.2: set size). */
    unsigned flags;
};

/**
 * dmahal_desc flag: free common buffers lazily. By default a page-granular common buffer
 * leaves the device's reach when it is freed, and a small one when the last buffer on its
 * page is (on machines that can keep memory from a device: an IOMMU), at the cost of one
 * IOMMU mapping per buffer or page of small buffers, and a system call per alloc and free
 * on vfio. With this flag the memory is mapped in 2 MiB arenas, one mapping each (with the
 * IOMMU's large pages where the memory allows), and an arena leaves the device's reach only
 * when every buffer on it is freed. The risk: until then the device can still reach a freed
 * buffer, and the buffer the same adapter allocates there next, so a device that writes
 * through a stale address corrupts it silently (Linux's lazy IOTLB flush takes the same risk
 * for a shorter time).
 */
#define DMAHAL_DESC_LAZY_UNMAP 0x1u
/**
 * dmahal_desc flag: the device is untrusted. An IOMMU maps whole pages, so a device given a
 * buffer that shares its first or last page with other memory (the heap or the stack around
 * a small buffer) could reach that memory too. With this flag every streaming map whose first
 * or last page is shared bounces: the device reaches a copy on pages of its own, the copy ends
 * where the mapping ends (so that an access just past the end faults behind an IOMMU), and
 * the bytes around the buffer stay out of its reach. Maps of whole pages and of registered
 * memory are not affected. Costs a copy and a bounce run per such map.
 */
#define DMAHAL_DESC_UNTRUSTED 0x2u
/**
 * dmahal_desc flag: keep the IOMMU mappings of unmapped memory in a cache, so that mapping the
 * same buffer again (a driver's recycled I/O buffers) costs no system call and no page-table
 * write. At most DMAHAL_MAP_CACHE_ENTRIES mappings are kept per adapter, the least recently
 * used one leaving first; dmahal_map_cache_flush() empties it. The risk, which the default
 * does not take: after dmahal_unmap the device can still reach a cached buffer, and on vfio
 * its pages stay pinned, so memory that the program frees and maps again at the same address
 * must be flushed from the cache first, or a later map of that address hands the device the
 * old pages. Without an IOMMU the flag does nothing.
 */
#define DMAHAL_DESC_MAP_CACHE 0x4u
/** How many unmapped mappings an adapter with DMAHAL_DESC_MAP_CACHE keeps. */
#define DMAHAL_MAP_CACHE_ENTRIES 1024u

/**
 * Gets a DMA adapter for a device: the analog of IoGetDmaAdapter.
 *
 * The description is merged with the platform's own limits once, here. The adapter keeps no
 * pointer to @p desc. A max_transfer above the library's limit on one transfer (1 TiB) is
 * capped to it (dmahal_adapter_desc tells the result), so SIZE_MAX means "no limit"; an
 * alignment above it is then larger than max_transfer, and refused.
 *
 * @param desc  the device's constraints; NULL means all defaults.
 * @param out   receives the adapter; cleared on failure.
 * @return 0; -EINVAL for a NULL @p d or @p out, a size from 1 to less than the first
 *         layout, @p addr_bits outside 24..64, an alignment or boundary that is not a power
 *         of two, a boundary smaller than the alignment, max_segment or max_transfer smaller
 *         than the alignment, a virt_boundary that is not a power of two, larger than a
 *         boundary or not dividing max_segment, or unknown flags; -ENOTSUP for a longer struct that
 * sets a member this library does not have; -ENOMEM.
 */
int dmahal_adapter_get(struct dmahal_device *d, const struct dmahal_desc *desc,
                       struct dmahal_adapter **out);

/**
 * Puts an adapter: the analog of PutDmaAdapter. Common buffers still allocated from it are
 * freed (and reported as leaks when the verifier is on), lists still mapped are unmapped,
 * and queued dmahal_map_async requests complete with -ECANCELED. Passing NULL does nothing.
 *
 * The handle is then gone, as a pointer after free(): without the verifier, any later call
 * with it (a second put included) uses freed memory and its outcome is undefined. With the
 * verifier on, the adapter's struct is kept a while (the 64 most recently put) so that
 * such a call is reported (DMAHAL_REPORT_BAD_ADAPTER) and fails with -EINVAL.
 */
void dmahal_adapter_put(struct dmahal_adapter *a);

/**
 * Returns the number of map registers the adapter has: the analog of IoGetDmaAdapter's
 * NumberOfMapRegisters, computed from max_transfer as Windows does
 * (BYTES_TO_PAGES(max_transfer) + 1). 0 for NULL.
 */
unsigned dmahal_adapter_map_registers(const struct dmahal_adapter *a);

/**
 * Returns the alignment, in bytes, that the adapter requires of buffer addresses: the
 * analog of GetDmaAlignment. 1 means none; 0 for NULL.
 */
size_t dmahal_adapter_alignment(const struct dmahal_adapter *a);

/** Returns the device an adapter belongs to, or NULL for NULL. */
struct dmahal_device *dmahal_adapter_device(const struct dmahal_adapter *a);

/**
 * Reads back the adapter's merged constraints (defaults filled in).
 * @param out  its size member says how much the caller has room for (0: the first layout);
 *             on return it says how much was written.
 * @return 0; -EINVAL for NULL arguments or a size from 1 to less than the first layout.
 */
int dmahal_adapter_desc(const struct dmahal_adapter *a, struct dmahal_desc *out);

/* ------------------------------------------------------------------------------------------
 * Common buffers: AllocateCommonBuffer / FreeCommonBuffer
 * ------------------------------------------------------------------------------------------ */

/** A common buffer: the CPU's view (va), the device's view (la), and its length. */
struct dmahal_buf {
    void *va;         /**< CPU virtual address */
    dmahal_addr_t la; /**< logical address: program this into the device */
    size_t len;       /**< length in bytes, as requested */
};

/**
 * Flag for dmahal_common_alloc: CacheEnabled = TRUE. On a non-coherent platform the driver
 * must then call dmahal_common_sync around device access; without it the buffer is mapped
 * uncached and needs no sync.
 */
#define DMAHAL_CACHED 0x1u

/**
 * Allocates a common buffer: the analog of AllocateCommonBuffer.
 *
 * The memory is zeroed. Its logical range [la, la + len) fits the adapter: below
 * 2^addr_bits, aligned to the adapter's alignment, and crossing no multiple of its boundary.
 * Buffers of a page or more are page-aligned and page-granular; smaller ones are packed
 * (aligned to their size rounded up to a power of two, at least 16 bytes, and never crossing
 * a page) so that many small descriptors do not each cost a page. Thread-safe.
 *
 * @param len    bytes; 1 up to the platform's limit (never above 1 TiB).
 * @param flags  0 or DMAHAL_CACHED.
 * @param out    receives the buffer; cleared on failure.
 * @return 0; -EINVAL for a NULL @p a or @p out, a zero length or unknown flags;
 *         -E2BIG for a length above the limit, or larger than a boundary allows;
 *         -ENOMEM when no memory the device can reach is left (nothing is leaked).
 */
int dmahal_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                        struct dmahal_buf *out);

/**
 * Frees a common buffer: the analog of FreeCommonBuffer. @p buf must be what
 * dmahal_common_alloc returned from the same adapter: same va, la and len.
 *
 * @return 0; -EINVAL for NULL arguments or a va, la or len that does not match a live
 *         buffer of this adapter (a double free, a buffer of another adapter, a wrong
 *         length); nothing is freed then.
 */
int dmahal_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf);

/* ------------------------------------------------------------------------------------------
 * Streaming DMA: GetScatterGatherList / PutScatterGatherList / FlushAdapterBuffers
 *
 * A driver maps memory it already has (malloc'd, on its stack, anywhere) for one transfer,
 * programs the device with the scatter/gather list it gets back, and unmaps it when the
 * transfer is done. The list honours every constraint of the adapter (address width,
 * alignment, boundary, segment size and count, transfer size), whatever the machine: with
 * an IOMMU the transfer gets one contiguous I/O virtual range; without one, memory the
 * device cannot reach or a layout it cannot take is copied through bounce pages (the map
 * registers). Between map and unmap the memory belongs to the device: the CPU touches it
 * only between dmahal_sync_for_cpu and dmahal_sync_for_device, as on Linux.
 *
 * What the device may do against the direction: with an IOMMU, only what the direction
 * allows (a write into a DMAHAL_TO_DEVICE map, a read of a DMAHAL_FROM_DEVICE one, faults:
 * -EFAULT, and a fault logged). Without one nothing stops it, and the layout decides what
 * it did: mapped in place, a write lands in the driver's memory; bounced, it is lost (a
 * TO_DEVICE map is never copied back), and a read of a FROM_DEVICE map sees the driver's
 * bytes (bounce pages start as a copy). The verifier reports a write into a TO_DEVICE map
 * on every machine.
 *
 * Caches are the machine's, not an adapter's: when a coherent and a non-coherent adapter
 * of one device (or of two) map the same memory on a machine that does not snoop, the
 * device sees it, through either mapping, as the non-coherent adapter's syncs leave it
 * (the CPU's writes once flushed by a map or dmahal_sync_for_device of that adapter).
 * ------------------------------------------------------------------------------------------ */

/** Which way data moves in a transfer. */
enum dmahal_dir {
    DMAHAL_TO_DEVICE = 1,     /**< the device reads the memory */
    DMAHAL_FROM_DEVICE = 2,   /**< the device writes the memory */
    DMAHAL_BIDIRECTIONAL = 3, /**< both */
};

/** One scatter/gather element: program @p la and @p len into the device. */
struct dmahal_seg {
    dmahal_addr_t la; /**< logical address */
    size_t len;       /**< bytes */
};

/** A scatter/gather list: what dmahal_map returns. Read-only for the driver. */
struct dmahal_sgl {
    unsigned nseg; /**< elements, 1 .. the adapter's max_segments */
#ifdef __cplusplus
    struct dmahal_seg seg[1]; /* C++ has no flexible array member; the layout is the same */
#else
    struct dmahal_seg seg[]; /**< nseg elements, in transfer order */
#endif
};

/** Flag for dmahal_map and dmahal_map_async: fail with -ENOSPC rather than wait for map
 *  registers. */
#define DMAHAL_MAP_NOWAIT 0x1u

/**
 * Maps memory for one transfer: the analog of GetScatterGatherList (and of Linux's
 * dma_map_sg). The memory need not be page-aligned nor contiguous; @p iov lists it in
 * transfer order (entries of length 0 are skipped). On a non-coherent machine the CPU's
 * writes are made visible to the device for DMAHAL_TO_DEVICE and DMAHAL_BIDIRECTIONAL.
 *
 * When the transfer needs bounce pages and too few are free, the call waits until enough
 * are unmapped (behind earlier waiters, first come first served), unless @p flags has
 * DMAHAL_MAP_NOWAIT. A thread that itself holds the bounce pages it would wait for waits
 * forever: such a driver passes DMAHAL_MAP_NOWAIT or uses dmahal_map_async. A request
 * never waits for pages that cannot come: every transfer up to the adapter's max_transfer
 * fits one piece of its pool (aligned as the adapter asks) once the pages are unmapped,
 * and one that fits none fails at once with -E2BIG. Thread-safe.
 *
 * Behind an IOMMU that runs short of mappings (vfio: the kernel's dma_entry_limit, less a
 * reserve it keeps for common buffers), a map is copied through spill memory, mapped once
 * per 2 MiB, instead of failing; the device then reaches the copy, not the memory, as with
 * bounce pages. Memory inside a registration (dmahal_register) takes no mapping at all.
 *
 * Bounce pages start, in every direction, as a copy of the memory mapped (and caches are
 * written back): bytes a DMAHAL_FROM_DEVICE transfer's device does not write come back at
 * unmap as the driver left them, never as what the pages held before. dmahal_sync_for_device
 * after dmahal_sync_for_cpu does the same, so this holds for the CPU's changes between them.
 *
 * @param iov     the memory, @p iovcnt entries; not NULL.
 * @param dir     the direction of the transfer.
 * @param flags   0 or DMAHAL_MAP_NOWAIT.
 * @param out     receives the list, valid until dmahal_unmap; cleared on failure.
 * @return 0; -EINVAL for NULL arguments, an entry with a NULL base and a length, an unknown
 *         direction or flag, or a transfer of 0 bytes; -E2BIG for a transfer longer than
 *         the adapter's max_transfer, one that no layout can fit into its max_segments
 *         (a boundary or max_segment smaller than the page with too few segments), or one
 *         that needs more bounce pages than its pool will ever hold;
 *         -ENOSPC with DMAHAL_MAP_NOWAIT when the bounce pages are taken, and whatever the
 *         flags when the IOMMU takes no more mappings and no spill memory can be had;
 *         -EFAULT when the platform cannot pin the memory (vfio: not mapped, or read-only
 *         in a transfer the device writes); -ENOTSUP when the platform has no streaming
 *         DMA for this device, or the memory needs bounce pages and the platform has none;
 *         -ENOMEM when host memory runs out, past the locked-memory limit (vfio), and when
 *         the transfer needs bounce pages and no RAM the device can reach is left for them
 *         (as dmahal_common_alloc fails for such a device).
 */
int dmahal_map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
               enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out);

/**
 * Unmaps a transfer: the analog of PutScatterGatherList. For DMAHAL_FROM_DEVICE and
 * DMAHAL_BIDIRECTIONAL it first makes the device's writes visible to the CPU (copying out
 * of bounce pages, invalidating caches), so no dmahal_sync_for_cpu is needed before it.
 * Bounce pages it frees go to the oldest waiters first.
 *
 * @return 0; -EINVAL for NULL arguments; -ENOENT if @p sgl is not a live list of this
 *         adapter (never mapped, unmapped already, or another adapter's); nothing is
 *         touched then.
 */
int dmahal_unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl);

/**
 * Empties the mapping cache of an adapter with DMAHAL_DESC_MAP_CACHE: the device can no longer
 * reach any memory that is not mapped now. Call it before memory that was mapped is unmapped
 * from the process (munmap, or free of a large malloc block) and something else may come to
 * that address. Thread-safe.
 * @return the number of mappings released (0 without the flag); -EINVAL for NULL.
 */
int dmahal_map_cache_flush(struct dmahal_adapter *a);

/* ------------------------------------------------------------------------------------------
 * Registered memory: mapped into the device's reach once, streaming maps inside it for free
 * ------------------------------------------------------------------------------------------ */

/**
 * Registers host memory the driver owns (a pool, hugepages, a packet arena) with an adapter:
 * its pages are mapped into the device's reach once (one IOMMU mapping; without an IOMMU,
 * pinned at their bus address), and a later dmahal_map of a piece lying wholly inside the
 * registered bytes is a table lookup: no system call, no page-table write. Memory that starts
 * on a 2 MiB boundary and spans 2 MiB or more gets an IOVA aligned alike, so that the IOMMU
 * can map its huge pages whole.
 *
 * Registrations are page-granular and do not overlap: the memory's page span must share no
 * page with another registration of the adapter. A map piece that runs past a registration's
 * end, or across two registrations, is mapped the ordinary way. The device can reach every
 * registered page, mapped or not, until dmahal_unregister: register only memory the device
 * may see. On vfio each registration counts as one of the container's DMA mappings
 * (dmahal_register_info tells how many are left). Thread-safe.
 *
 * Without an IOMMU (noiommu) the device is given the memory's physical addresses, so only
 * memory whose physical addresses cannot move is taken: hugetlbfs pages (mmap with
 * MAP_HUGETLB, or a hugetlbfs file) mapped MAP_SHARED or kept out of children with
 * madvise(MADV_DONTFORK) (a fork would make a private page copy-on-write, and the parent's
 * next write would move it), and the library's own common buffers. Ordinary pages are
 * refused with -ENOTSUP, mlock'ed or not: the kernel migrates and compacts them. The pages
 * are faulted in, and their addresses read from /proc/self/pagemap, at registration. A map
 * inside the registration goes to the device in place when its bytes are contiguous in
 * physical memory (within one hugepage, or across hugepages that lie side by side) and the
 * device reaches them; otherwise it is bounced, as unregistered memory is.
 *
 * @param va, len  the memory; it must stay mapped until it is unregistered.
 * @return 0; -EINVAL for a NULL @p a or @p va, a zero @p len, or a range beyond the address
 *         space; -E2BIG above 1 TiB; -EEXIST when a page of it is registered already;
 *         -ENOTSUP when the platform cannot map host memory for the device, and on noiommu
 *         for memory that is not hugetlbfs pages, or private hugetlbfs pages a fork would
 *         copy (the platform prints which, once); -ENOSPC when the IOMMU's address space or
 *         mappings are used up; -EFAULT when the memory is not mapped (vfio, noiommu);
 *         -EPERM on noiommu without CAP_SYS_ADMIN (pagemap shows no physical addresses);
 *         -ENOMEM.
 */
int dmahal_register(struct dmahal_adapter *a, void *va, size_t len);

/**
 * Unregisters what dmahal_register registered, exactly: @p va and @p len as given to it.
 * The device can no longer reach the memory when it returns. Thread-safe.
 * @return 0; -EINVAL for NULL, a zero @p len, or a range that is part of a registration or
 *         more than one; -ENOENT when @p va lies in no registration; -EBUSY while a
 *         streaming map inside the registration is live (unmap it first).
 */
int dmahal_unregister(struct dmahal_adapter *a, void *va, size_t len);

/** What dmahal_register_info reports. */
struct dmahal_reg_info {
    size_t regions;         /**< live registrations of the adapter */
    uint64_t bytes;         /**< their page spans, in bytes */
    int64_t mappings_avail; /**< IOMMU mappings the platform still allows (vfio: from
                                 dma_entry_limit, as the kernel reports it); -1: no limit
                                 known */
};

/**
 * Reports an adapter's registrations and the mappings left.
 * @return 0; -EINVAL for NULL arguments (@p out is cleared).
 */
int dmahal_register_info(struct dmahal_adapter *a, struct dmahal_reg_info *out);

/**
 * Gives a mapped transfer back to the device after the CPU touched it: the analog of
 * dma_sync_sg_for_device. The CPU's writes become visible to the device (copied into bounce
 * pages, caches written back): for DMAHAL_TO_DEVICE and DMAHAL_BIDIRECTIONAL always, for
 * DMAHAL_FROM_DEVICE after a dmahal_sync_for_cpu (as Linux's swiotlb does), so that what
 * the device then does not write keeps the CPU's bytes.
 * @return 0; -EINVAL for NULL arguments; -ENOENT as dmahal_unmap.
 */
int dmahal_sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl);

/**
 * Lets the CPU look at a mapped transfer the device has finished with: the analog of
 * dma_sync_sg_for_cpu (and of FlushAdapterBuffers). For DMAHAL_FROM_DEVICE and
 * DMAHAL_BIDIRECTIONAL the device's writes become visible to the CPU.
 * @return 0; -EINVAL for NULL arguments; -ENOENT as dmahal_unmap.
 */
int dmahal_sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl);

/**
 * Called when a deferred mapping completes (see dmahal_map_async).
 * @param status  0, with @p sgl the list; or a negative errno as dmahal_map's, @p sgl NULL;
 *                -ECANCELED for a request still queued when its adapter is put (directly,
 *                or by closing its device or platform): the callback then runs inside that
 *                call, and must not use the adapter.
 */
typedef void (*dmahal_map_fn)(struct dmahal_adapter *a, int status, struct dmahal_sgl *sgl,
                              void *ctx);

/**
 * Maps memory for one transfer without ever blocking: the analog of AllocateAdapterChannel
 * with its ExecutionRoutine (and of FreeBSD's deferred bus_dmamap_load). When the map
 * registers are there, @p fn runs before this returns. When they are short, the request
 * joins a queue and @p fn runs later, on the thread whose dmahal_unmap freed enough of
 * them: requests are granted in the order they were made, and one unmap runs the callbacks
 * it grants in that order; callbacks granted by unmaps on different threads run on those
 * threads, concurrently, in no order between them. A request that needs no bounce pages
 * (mapped in place or through the IOMMU) never queues: @p fn runs before this returns,
 * ahead of earlier requests still waiting. @p iov must stay valid until @p fn runs (the
 * iovec array itself is copied).
 *
 * @param fn   not NULL; must not call dmahal_unmap on this adapter's own pending requests
 *             from other threads' callbacks in a way that waits for them.
 * @return 0 when @p fn has run; -EINPROGRESS when the request is queued; otherwise
 *         dmahal_map's errors, and @p fn does not run.
 */
int dmahal_map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                     enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx);

/**
 * Tells how many map registers (bounce pages) the adapter holds right now, over all its
 * live mappings. 0 for NULL.
 */
unsigned dmahal_adapter_map_registers_in_use(const struct dmahal_adapter *a);

/**
 * Makes a cached common buffer coherent with the device: the analog of FlushDmaBuffer (and
 * of Linux's dma_sync_single_*). On a non-coherent machine, a buffer allocated with
 * DMAHAL_CACHED needs it: before the device reads what the CPU wrote (DMAHAL_TO_DEVICE),
 * and before the CPU reads what the device wrote (DMAHAL_FROM_DEVICE); BIDIRECTIONAL does
 * both. It does nothing for coherent adapters and uncached buffers but look the buffer up:
 * a buffer that is not live is -ENOENT on every adapter, coherent or not, verifier or not.
 *
 * @param b    a live common buffer of @p a, as dmahal_common_alloc returned it.
 * @param off  where the range starts in the buffer; @p len its length (0: to the end).
 * @return 0; -EINVAL for NULL arguments, an unknown direction or a range outside the
 *         buffer; -ENOENT if @p b is not a live buffer of @p a.
 */
int dmahal_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off, size_t len,
                       enum dmahal_dir dir);

/* ------------------------------------------------------------------------------------------
 * Device side: what the device does on the bus. For device models and tests.
 * ------------------------------------------------------------------------------------------ */

/**
 * Reads device-visible memory as the device would (a DMA read, memory to device).
 *
 * The logical address goes through the platform's translation (the IOMMU's page table, or
 * none). An access the platform cannot translate fails, touches nothing, and is recorded as
 * a fault (see dmahal_fault_get).
 *
 * @return 0; -EINVAL for NULL arguments or a range that wraps; -EFAULT for an access outside
 *         any mapping or outside RAM; -ENOTSUP on platforms where the device is real.
 */
int dmahal_dev_read(struct dmahal_device *d, dmahal_addr_t la, void *dst, size_t len);

/**
 * Writes device-visible memory as the device would (a DMA write); as dmahal_dev_read. On the
 * sim, a write of at most 64 bytes to a 4-byte-aligned address, a multiple of 4 long, lands
 * one 32-bit word at a time in address order, each a release store, as a posted write does
 * on hardware: a driver that polls the last word (a completion's phase bit) with an acquire
 * load sees the words before it and the device's earlier writes, on every thread.
 */
int dmahal_dev_write(struct dmahal_device *d, dmahal_addr_t la, const void *src, size_t len);

/**
 * Tells the verifier that the driver has taken the device's data at [la, la + len): the
 * device saw it acknowledged, as an NVMe controller sees a completion queue's head doorbell
 * move past an entry, or a ring's head register move past a descriptor it wrote back.
 *
 * On an adapter that does not snoop (coherent false), a cached common buffer there whose
 * bytes the device wrote after the last dmahal_common_sync(DMAHAL_FROM_DEVICE) covering them
 * is reported as DMAHAL_REPORT_NOT_INVALIDATED: the CPU can only have read what its cache
 * held. Bytes outside every such buffer are not checked. Device models call it (since 0.2);
 * without the verifier it does nothing.
 *
 * @return 0; -EINVAL for NULL or a range that wraps.
 */
int dmahal_dev_consumed(struct dmahal_device *d, dmahal_addr_t la, size_t len);

/** Fault reasons. */
enum dmahal_fault_reason {
    DMAHAL_FAULT_UNMAPPED = 1,   /**< no IOMMU mapping covers the address */
    DMAHAL_FAULT_NO_RAM = 2,     /**< no RAM at the (physical) address */
    DMAHAL_FAULT_PERM = 3,       /**< the mapping does not allow the access */
    DMAHAL_FAULT_BUS_MASTER = 4, /**< the device's bus-master bit is clear (config space) */
};

/*
 * What each platform can report of DMA faults:
 *  - sim: every access it refuses (no mapping, no RAM, permission, bus mastering off), with
 *    the device, address, length and direction: dmahal_fault_count()/dmahal_fault_get().
 *  - vfio: nothing. The IOMMU's faults go to the kernel, which logs them ("DMAR: [DMA Read]
 *    Request device [00:03.0] ... fault addr ..." with VT-d; "AMD-Vi: Event logged
 *    [IO_PAGE_FAULT ...]" with AMD): a test on real hardware reads the kernel log (dmesg,
 *    /dev/kmsg). dmahal_fault_count() stays 0 there; the device's own error registers and
 *    the kernel log are where to look.
 */

/**
 * One recorded DMA fault, like an IOMMU's fault record. The caller sets size (as for
 * struct dmahal_desc: its sizeof, or 0 for the first layout, up to reason) before
 * dmahal_fault_get, which fills that much and sets size to what it wrote.
 */
struct dmahal_fault {
    size_t size;        /**< sizeof(struct dmahal_fault), or 0 (see above) */
    uint64_t seq;       /**< 1 for the platform's first fault, then counting up */
    const char *device; /**< the device that faulted; valid until the platform closes or
                             256 newer faults are recorded */
    dmahal_addr_t la;   /**< the logical address of the first byte that failed */
    size_t len;         /**< length of the access that failed */
    bool write;         /**< true for a device write (DMA to memory) */
    enum dmahal_fault_reason reason; /**< why the access failed */
};

/**
 * Returns the number of faults recorded on a platform since it opened (or since
 * dmahal_fault_clear); 0 for NULL. The platform keeps the most recent 256 records.
 */
uint64_t dmahal_fault_count(const struct dmahal_platform *p);

/**
 * Reads one recorded fault.
 * @param index  0 for the oldest fault still kept, up to the number kept minus one.
 * @param out    receives the record, as far as its size says; cleared on failure.
 * @return 0; -EINVAL for NULL arguments or a size from 1 to less than the first layout;
 *         -ENOENT when there is no such record.
 */
int dmahal_fault_get(const struct dmahal_platform *p, size_t index, struct dmahal_fault *out);

/** Forgets every recorded fault. Passing NULL does nothing. */
void dmahal_fault_clear(struct dmahal_platform *p);

/** Names a fault reason; never NULL. */
const char *dmahal_fault_reason_name(enum dmahal_fault_reason r);

/* ------------------------------------------------------------------------------------------
 * The simulated platform's anti-pattern: MmAllocateContiguousMemory + MmGetPhysicalAddress
 * ------------------------------------------------------------------------------------------ */

/**
 * Allocates physically contiguous memory on the simulated machine, with no regard for any
 * device: the analog of MmAllocateContiguousMemory. Frames come high-first, so on a machine
 * with RAM above 4 GiB the memory is usually out of reach of 32-bit devices. It exists to
 * show why drivers must not do this: use dmahal_common_alloc.
 *
 * @return 0; -EINVAL for NULL arguments or zero length; -ENOTSUP off the sim platform;
 *         -ENOMEM.
 */
int dmahal_sim_contig_alloc(struct dmahal_platform *p, size_t len, void **va);

/**
 * Frees memory from dmahal_sim_contig_alloc.
 * @return 0; -EINVAL if @p va is not such memory; -ENOTSUP off the sim platform.
 */
int dmahal_sim_contig_free(struct dmahal_platform *p, void *va);

/**
 * Translates a CPU virtual address to the simulated machine's physical address: the analog
 * of MmGetPhysicalAddress. The result is what the CPU sees, not what a device can use: it
 * ignores the IOMMU and the device's address width. Do not program it into a device.
 *
 * @param pa  receives the physical address; cleared on failure.
 * @return 0; -EINVAL for NULL arguments or an address that is not simulated RAM;
 *         -ENOTSUP off the sim platform.
 */
int dmahal_sim_virt_to_phys(struct dmahal_platform *p, const void *va, uint64_t *pa);

/**
 * Moves the simulated machine's virtual time forward by @p ns nanoseconds, running every
 * piece of device work that falls due, in time order, before it returns. With
 * `time=threads` it sleeps @p ns of real time (the devices' threads run meanwhile).
 * Not callable from device work.
 *
 * @return 0; -EINVAL for NULL @p p or @p ns above 2^62; -ENOTSUP off the sim platform;
 *         -EDEADLK when called from a device model's callback.
 */
int dmahal_sim_advance(struct dmahal_platform *p, uint64_t ns);

/**
 * The simulated machine's time in nanoseconds since it was opened (virtual or real, as
 * `time=` says), through @p ns.
 * @return 0; -EINVAL for NULL arguments; -ENOTSUP off the sim platform.
 */
int dmahal_sim_now(struct dmahal_platform *p, uint64_t *ns);

/* ------------------------------------------------------------------------------------------
 * The noiommu platform's own
 * ------------------------------------------------------------------------------------------ */

/**
 * Reads the physical address of host memory from /proc/self/pagemap: what drivers that
 * hand-roll DMA on a machine without an IOMMU do, and what a device narrower than the address
 * cannot use. An ordinary page may move after the read; the address is for showing, not for
 * programming into a device: use dmahal_common_alloc or dmahal_map.
 *
 * @param pa  receives the physical address; cleared on failure.
 * @return 0; -EINVAL for NULL arguments; -ENOTSUP off the noiommu platform; -EPERM when the
 *         kernel shows no physical addresses (it does only to CAP_SYS_ADMIN); -EFAULT when
 *         @p va is not mapped or not yet backed by a page.
 */
int dmahal_noiommu_virt_to_phys(struct dmahal_platform *p, const void *va, uint64_t *pa);

/**
 * Tells which reserved low range the noiommu platform takes DMA memory from (its lowmem).
 *
 * @param start  receives the range's first physical address; cleared on failure.
 * @param len    receives its length in bytes; cleared on failure.
 * @return 0; -EINVAL for NULL arguments; -ENOTSUP off the noiommu platform; -ENOENT when the
 *         platform has no low range.
 */
int dmahal_noiommu_lowmem(struct dmahal_platform *p, uint64_t *start, uint64_t *len);

/* ------------------------------------------------------------------------------------------
 * Inspection: the !dma analog
 * ------------------------------------------------------------------------------------------ */

/** Flags of dmahal_dump, numbered as the debugger's !dma numbers its own. 0: adapters only. */
#define DMAHAL_DUMP_MAPREGS  0x01u  /**< map registers */
#define DMAHAL_DUMP_COMMON   0x02u  /**< common buffers */
#define DMAHAL_DUMP_SGL      0x04u  /**< scatter/gather lists */
#define DMAHAL_DUMP_DESC     0x08u  /**< each adapter's device description */
#define DMAHAL_DUMP_PLATFORM 0x100u /**< the platform's configuration and memory */
#define DMAHAL_DUMP_FAULTS   0x200u /**< recorded faults */
#define DMAHAL_DUMP_ALL      0x30fu /**< everything */

/**
 * Writes a human-readable view of the platform's DMA state: devices, adapters and, by
 * @p flags, their buffers and more.
 * @return 0; -EINVAL for NULL arguments or unknown flags; -EIO if writing to @p f failed.
 */
int dmahal_dump(struct dmahal_platform *p, FILE *f, unsigned flags);

/* ------------------------------------------------------------------------------------------
 * The verifier: Driver Verifier's DMA option, and more
 * ------------------------------------------------------------------------------------------ */

/** What a verifier report is about. Numbers are stable; new kinds are appended. */
enum dmahal_report_kind {
    DMAHAL_REPORT_VERIFIER_OOM = 1,        /**< the verifier ran out of memory and turned off */
    DMAHAL_REPORT_BAD_ADAPTER = 2,         /**< a NULL adapter, or one already put */
    DMAHAL_REPORT_DOUBLE_FREE = 3,         /**< a common buffer freed twice */
    DMAHAL_REPORT_FREE_UNKNOWN = 4,        /**< freeing an address no live buffer starts at */
    DMAHAL_REPORT_FREE_WRONG_LEN = 5,      /**< freeing with a length other than allocated */
    DMAHAL_REPORT_FREE_WRONG_LA = 6,       /**< freeing with a logical address other than given */
    DMAHAL_REPORT_FREE_WRONG_ADAPTER = 7,  /**< freeing through another adapter */
    DMAHAL_REPORT_LEAK = 8,                /**< a buffer still allocated when its adapter goes */
    DMAHAL_REPORT_OVERRUN = 9,             /**< the guard zone after a buffer was written */
    DMAHAL_REPORT_UNDERRUN = 10,           /**< the guard zone before a buffer was written */
    DMAHAL_REPORT_WRITE_AFTER_FREE = 11,   /**< a freed (quarantined) buffer was written */
    DMAHAL_REPORT_DEV_OUT_OF_BOUNDS = 12,  /**< a device access outside every live buffer */
    DMAHAL_REPORT_DEV_USE_AFTER_FREE = 13, /**< a device access to a freed buffer */
    /* Streaming DMA (dmahal_map and friends), after bug check 0xE6 and Linux's dma-debug. */
    DMAHAL_REPORT_DEV_WRITE_TO_DEVICE = 14,    /**< a device wrote into a to-device mapping */
    DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS = 15,  /**< the CPU wrote into a to-device mapping
                                                    while the device owned it */
    DMAHAL_REPORT_DOUBLE_UNMAP = 16,           /**< a list unmapped twice */
    DMAHAL_REPORT_UNMAP_NOT_MAPPED = 17,       /**< unmapping a list never mapped */
    DMAHAL_REPORT_SYNC_NOT_MAPPED = 18,        /**< syncing a list that is not mapped, or a
                                                    common buffer that is not live */
    DMAHAL_REPORT_WRONG_ADAPTER = 19,          /**< unmap or sync through another adapter */
    DMAHAL_REPORT_SGL_MODIFIED = 20,           /**< the driver changed its (read-only) list:
                                                    wrong size or entry count at unmap */
    DMAHAL_REPORT_SYNC_OUT_OF_RANGE = 21,      /**< a sync outside the buffer */
    DMAHAL_REPORT_TOO_MANY_MAP_REGISTERS = 22, /**< a transfer needing more map registers
                                                    than the adapter was given */
    DMAHAL_REPORT_FREED_WHILE_MAPPED = 23,     /**< a common buffer freed while mapped */
    DMAHAL_REPORT_ZERO_LENGTH_MAP = 24,        /**< mapping nothing */
    DMAHAL_REPORT_OVERLAPPING_MAPPINGS = 25,   /**< memory in two live mappings, one of them
                                                    device-writable */
    DMAHAL_REPORT_NOT_FLUSHED = 26,            /**< a device read a cached buffer the CPU wrote
                                                    since its last dmahal_common_sync */
    DMAHAL_REPORT_MAP_LEAK = 27,               /**< a list still mapped when its adapter goes */
    DMAHAL_REPORT_DEV_USE_AFTER_UNMAP = 28,    /**< a device access to an unmapped list */
    DMAHAL_REPORT_FREE_WRONG_CACHE = 29,       /**< freeing with another cache attribute than
                                                    allocated (FreeCommonBuffer's CacheEnabled) */
    DMAHAL_REPORT_NOT_INVALIDATED = 30,        /**< the driver took data a device wrote into a
                                                    cached buffer without a FROM_DEVICE sync
                                                    (dmahal_dev_consumed) */
    DMAHAL_REPORT_KINDS                        /**< one more than the highest kind */
};

/**
 * One verifier report. The verifier hands its callback one with size set to the bytes it
 * filled (check it before reading a member added after the first layout, which ends with
 * len); dmahal_verify_report fills one as far as the caller's size says, as dmahal_fault_get.
 */
struct dmahal_report {
    size_t size;         /**< sizeof(struct dmahal_report), or 0 (see above) */
    int kind;            /**< enum dmahal_report_kind; dmahal_report_kind_name() names it */
    const char *message; /**< one line a person can act on: the bug, the buffer, its owner */
    dmahal_addr_t la;    /**< the logical address concerned, 0 if none */
    size_t len;          /**< the length concerned, 0 if none */
};

/**
 * Receives verifier reports. It runs with the verifier's lock held, on the thread that made
 * the faulty call (or whose device access was faulty): it must not call dmahal functions on
 * the same platform. @p r and its message are valid only during the call.
 */
typedef void (*dmahal_report_fn)(const struct dmahal_report *r, void *ctx);

/** Flags of dmahal_verify_enable: what to do on a report. 0 means PRINT | COUNT. */
#define DMAHAL_VERIFY_PRINT        0x1u /**< print it to stderr, with buffers and backtraces */
#define DMAHAL_VERIFY_COUNT        0x2u /**< keep it: dmahal_verify_count(), dmahal_verify_report() */
#define DMAHAL_VERIFY_ABORT        0x4u /**< print it and abort(), like a bug check */
#define DMAHAL_VERIFY_NO_BACKTRACE 0x8u /**< record no backtraces (faster; reports say less) */
/**
 * Record backtraces with the unwinder that reads the binaries' unwind tables (backtrace()):
 * exact through code built without frame pointers, but about a microsecond per trace. By
 * default the verifier follows frame pointers instead, as AddressSanitizer does for malloc:
 * tens of nanoseconds, exact through code built with -fno-omit-frame-pointer (dmahal is), cut
 * short or missing a frame where the driver's code has none.
 */
#define DMAHAL_VERIFY_FULL_BACKTRACE 0x10u

/**
 * Turns the verifier on for every adapter created on @p p after this call: each adapter's
 * operations are wrapped and checked, common buffers get guard zones, freed buffers are
 * quarantined, and on the simulated platform every device access is checked against the
 * live buffers. A later call changes the flags and the callback; the verifier stays on
 * until the platform closes. The environment variable DMAHAL_VERIFY=1 turns it on for
 * every platform when it opens (DMAHAL_VERIFY=abort: with DMAHAL_VERIFY_ABORT).
 *
 * What it costs: a common allocation and free, a map and unmap, take a few times as long
 * as without it (bench/bench_verify measures it). Guard zones are sized by the buffer, as
 * AddressSanitizer sizes its redzones (a small buffer's own size, a large one's
 * thirty-second, 128 to 1024 bytes a side). A freed buffer holds a pattern, checked when it
 * leaves the quarantine: all of a buffer up to 1 KiB, the first and last 512 bytes of a
 * larger one (device writes anywhere in it are caught by their address). Each backtrace is
 * stored once however many buffers share it.
 *
 * The verifier never makes a driver's call fail: when it runs out of memory it reports
 * DMAHAL_REPORT_VERIFIER_OOM and turns itself off, and when an allocation finds no memory
 * the device reaches, the quarantine gives back every buffer it holds (checked as they
 * leave) and the allocation is tried again.
 *
 * Each frame of a backtrace reads "function+0xoff (file:line) in object", static functions
 * too, from the program's own debug information (elfutils' libdw, loaded at run time when
 * the library was built with its header, Debian's libdw-dev); without libdw, or in a
 * statically linked program, a frame says what the dynamic symbol table knows
 * ("function+0xoff in object" for an exported function, else "object+0xoff", which
 * addr2line -f -e object 0xoff names).
 *
 * The core file that DMAHAL_VERIFY_ABORT leaves holds no simulated RAM ("sim" marks it
 * MADV_DONTDUMP, or a 64 GiB machine would write a 64 GiB core): what common buffers,
 * bounce pages and contiguous memory held is not in it. The library's state (platforms,
 * adapters, buffers, mappings, the verifier's records and backtraces), which the gdb `dma`
 * command and `dmahal dma --core` show, is.
 *
 * @param flags  DMAHAL_VERIFY_* flags; 0 means PRINT | COUNT.
 * @param fn     called for each report; NULL: reports are printed to stderr.
 * @param ctx    passed to @p fn.
 * @return 0; -EINVAL for a NULL @p p or unknown flags; -ENOMEM; -ENOTSUP, whatever the
 *         arguments, when the library was built without the verifier (the CMake option
 *         DMAHAL_VERIFIER=OFF; DMAHAL_VERIFY is then ignored).
 */
int dmahal_verify_enable(struct dmahal_platform *p, unsigned flags, dmahal_report_fn fn, void *ctx);

/**
 * Tells whether the verifier is on: 1 if so, 0 if it is off (never enabled, or turned off
 * after running out of memory), -EINVAL for NULL.
 */
int dmahal_verify_enabled(const struct dmahal_platform *p);

/**
 * Checks, now, the guard zones of every live common buffer and the contents of every
 * quarantined one (as far as they hold the freed pattern: see dmahal_verify_enable, and
 * any device write into it), reporting each damage found (once: it is then repaired).
 * @return the number of reports made (0: all intact); -EINVAL for NULL; -ENOTSUP when the
 *         verifier is off.
 */
int dmahal_verify_check(struct dmahal_platform *p);

/**
 * Counts the reports kept (DMAHAL_VERIFY_COUNT) since the verifier was enabled or cleared.
 * @param kind  an enum dmahal_report_kind, or 0 for every kind.
 * @return the count; 0 for NULL, an unknown kind, or a verifier that is off.
 */
uint64_t dmahal_verify_count(const struct dmahal_platform *p, int kind);

/**
 * Counts device-side reports not made because they repeat one made already: a device that
 * touches a freed buffer, an unmapped list or memory outside its buffers is reported once
 * per kind of bug, buffer or mapping, and device; each further access of that kind is only
 * counted here (a polling engine would otherwise report the same bug thousands of times).
 * @param kind  an enum dmahal_report_kind, or 0 for every kind.
 * @return the count since the verifier was enabled or cleared; 0 for NULL, an unknown kind,
 *         or a verifier that is off.
 */
uint64_t dmahal_verify_repeats(const struct dmahal_platform *p, int kind);

/**
 * Reads one kept report. The most recent 64 are kept.
 * @param index  0 for the most recent, 1 for the one before, ...
 * @param out    receives the report, as far as its size says; its message stays valid until
 *               64 newer reports are made, dmahal_verify_clear() or the platform closes.
 *               Cleared on failure.
 * @return 0; -EINVAL for NULL arguments or a size from 1 to less than the first layout;
 *         -ENOENT when there is no such report.
 */
int dmahal_verify_report(const struct dmahal_platform *p, size_t index, struct dmahal_report *out);

/**
 * Reports a free of a live common buffer that only the layer above dmahal can tell is wrong:
 * for the Windows names, FreeCommonBuffer with another CacheEnabled than AllocateCommonBuffer
 * was given, which frees nothing. The report is DMAHAL_REPORT_FREE_WRONG_CACHE and names the
 * buffer and where it was allocated, as the verifier's own free reports do; @p what says
 * how the free differs ("CacheEnabled FALSE, allocated TRUE"). Nothing is freed.
 *
 * @param b  the buffer as dmahal_common_alloc returned it.
 * @return 0, also when the verifier is off for @p a (nothing is reported then); -EINVAL for
 *         NULL arguments; -ENOENT if @p b is not a live buffer of @p a.
 */
int dmahal_verify_free_mismatch(struct dmahal_adapter *a, const struct dmahal_buf *b,
                                const char *what);

/** Forgets every kept report and zeroes the counts. Passing NULL does nothing. */
void dmahal_verify_clear(struct dmahal_platform *p);

/** Names a report kind ("double-free", "overrun", ...); never NULL ("unknown"). */
const char *dmahal_report_kind_name(int kind);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_DMAHAL_H */
