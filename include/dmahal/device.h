/* SPDX-License-Identifier: MIT */
/**
 * @file
 * device.h - writing device models for the simulated platform.
 *
 * A device model is a register file plus whatever engines the device has. The simulated
 * platform creates one instance of a model per dmahal_device_open() and routes the driver's
 * register accesses to it; the model does DMA through dmahal_dev_read()/dmahal_dev_write(),
 * exactly as a real device masters the bus, so every access is translated (and checked) by
 * the platform.
 *
 * Work that takes time on a real device (a transfer, a computation, a command) is deferred
 * with dmahal_model_schedule(): the callback runs later in the platform's time, beside the
 * driver, so the driver sees it only once it has waited as it must on real hardware. The
 * simulated platform has two kinds of time (its `time=` option, see dmahal_platform_open):
 *
 *  - `virtual` (the default): a clock in nanoseconds that moves only at defined points:
 *    each driver register read (it costs the bus some time), dmahal_sim_advance(), a driver
 *    that keeps polling while nothing changes (time skips to the next device work), and a
 *    driver idle in real time for `idle=` ms. Work whose time has come runs there, one
 *    callback at a time, in time order. Delays get a jitter drawn from `seed=`, so the same
 *    seed gives the same run and another seed another interleaving.
 *  - `threads`: each device has a thread of its own that runs its work in real time;
 *    callbacks of one device never run at once, but they run concurrently with the driver
 *    and with the model's register callbacks, which must lock what they share.
 *
 * A model written for both takes a lock of its own around its state in every callback (it
 * may hold it while it schedules or cancels). A model may still do its work inside the
 * register access that starts it (the built-in models do with a latency of 0): then it is
 * synchronous, and a driver that polls a status register sees the work done at once.
 *
 * Each model also has a PCI configuration space, built by the platform from the identity
 * it declares (IDs, class, BARs, interrupt capabilities), and raises interrupts through
 * dmahal_irq_set() (the INTx level) and dmahal_irq_raise() (MSI/MSI-X messages).
 *
 * docs/models.md is the guide, with a complete model in examples/ring.
 */
#ifndef DMAHAL_DEVICE_H
#define DMAHAL_DEVICE_H

#include <dmahal/dmahal.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The number of BARs a model may have. */
#define DMAHAL_MODEL_BARS 6

/**
 * A device model: one per kind of device; instances are made by dmahal_device_open().
 * Members are only ever added at the end; @p size says how far the model's build had them.
 */
struct dmahal_model {
    /** sizeof(struct dmahal_model) as the model was built: a model built outside the library
     *  sets it to exactly that. 0 means this library's own size (for models built with it). */
    size_t size;
    /** The model's name, as given to dmahal_device_open() before any ':'. Not NULL. */
    const char *name;
    /** One line saying what the device is, for `dmahal info`. Not NULL. */
    const char *summary;
    /** Bytes of per-instance state, handed zeroed to every callback as @p state. */
    size_t state_size;
    /** Size of each memory BAR in bytes; 0 for an absent BAR. */
    uint64_t bar_size[DMAHAL_MODEL_BARS];
    /**
     * Sets up a new instance. May be NULL (nothing to set up).
     * @param args  what followed ':' in the device name ("" if nothing), e.g.
     *              "dma_mask=0xffffffff"; the model parses it.
     * @return 0, or a negative errno (-EINVAL for arguments it does not accept), which
     *         dmahal_device_open() returns.
     */
    int (*init)(struct dmahal_device *d, void *state, const char *args);
    /** Tears an instance down. May be NULL. */
    void (*fini)(struct dmahal_device *d, void *state);
    /**
     * A register read of @p size bytes (1, 2, 4 or 8) at @p off in @p bar, within the BAR.
     * Not NULL. Returns the value (a real device answers every read).
     */
    uint64_t (*mmio_read)(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                          unsigned size);
    /** A register write; as mmio_read. Not NULL. */
    void (*mmio_write)(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                       uint64_t val, unsigned size);
    /* ---- end of DMAHAL_MODEL_SIZE_V1 ---- */

    /* ---- PCI identity and interrupts: the model's configuration space ----------------- */
    /** @{ */
    /** PCI vendor and device IDs (QEMU's edu: 0x1234, 0x11e8). 0, 0: 0x1234, 0xffff. */
    uint16_t vendor_id, device_id;
    /** @} */
    /** @{ */
    /** Subsystem IDs; 0, 0: QEMU's defaults, 0x1af4, 0x1100. */
    uint16_t subsystem_vendor_id, subsystem_id;
    /** @} */
    /** Class code: base class << 16 | subclass << 8 | programming interface. */
    uint32_t class_code;
    /** Revision ID. */
    uint8_t revision;
    /** The device has the INTx line (INTA#); the model drives it with dmahal_irq_set(). */
    bool intx;
    /** MSI vectors (0: no MSI capability; else a power of two, at most 32); the model sends
     *  them with dmahal_irq_raise(). */
    unsigned msi_vectors;
    /** @{ */
    /** MSI-X vectors (0: no MSI-X capability; at most 2048), sent with dmahal_irq_raise().
     *  The table and the PBA are the model's own registers, in msix_bar at the offsets
     *  below, which the capability reports. As the host's kernel does under VFIO,
     *  dmahal_irq_enable() of MSI-X clears the mask bit (Vector Control, bit 0, at 12 in
     *  each 16-byte entry) of every vector it enables by a 4-byte write through the
     *  model's mmio_write, and dmahal_irq_disable() sets it again. */
    unsigned msix_vectors;
    unsigned msix_bar;
    uint32_t msix_table_off, msix_pba_off;
    /** @} */

    /** The arguments init takes, for `dmahal info` (e.g. "dma_mask=N,dma_ns=N"). May be
     *  NULL (none). */
    const char *usage;
};

/**
 * The size of the first versioned layout of struct dmahal_model (its members from @p size
 * to @p mmio_write). dmahal_model_register() takes any size from this one up: members a
 * model's size does not cover read as absent (0, NULL), so a model built against an older
 * header keeps working when the struct grows.
 */
#define DMAHAL_MODEL_SIZE_V1 offsetof(struct dmahal_model, vendor_id)

/**
 * Registers a device model with the simulated platform, for every platform opened after
 * (and before) the call.
 * Built-in models ("edu") are registered already.
 *
 * The library keeps a copy of the struct (the strings and functions it points to must stay).
 *
 * @return 0; -EINVAL for NULL, a nonzero @p size below DMAHAL_MODEL_SIZE_V1, a model without a
 *         name, mmio_read or mmio_write, or a name containing ':' or ','; -E2BIG for a
 *         model larger than this library's struct whose extra bytes are not all zero (it
 *         needs members this library does not have); -EEXIST if a model of that name is
 *         registered; -ENOSPC if the registry (64 models) is full.
 */
int dmahal_model_register(const struct dmahal_model *m);

/**
 * Finds a registered model by name.
 * @return the library's copy of the model (full size: members the registered model's
 *         @p size did not cover are 0), or NULL if none has that name.
 */
const struct dmahal_model *dmahal_model_find(const char *name);

/**
 * Lists registered models, for tools.
 * @param index  0, 1, ... until NULL is returned.
 */
const struct dmahal_model *dmahal_model_at(size_t index);

/*
 * Interrupts, from the model's side. A model declares what it has (intx, msi_vectors,
 * msix_vectors above) and signals with two calls:
 *  - dmahal_irq_set(d, level): the INTx line, a level. The model asserts it while it has a
 *    cause pending and lowers it when the driver acknowledges the last one. When the driver
 *    enabled INTx, a rise (while unmasked) makes vector 0's fd readable and masks the line;
 *    dmahal_irq_unmask() re-fires it if the line is still asserted.
 *  - dmahal_irq_raise(d, vector): one MSI or MSI-X message, an edge: vector's fd becomes
 *    readable. Delivered only when the driver enabled MSI or MSI-X with that many vectors;
 *    otherwise dropped, as a device whose MSI enable bit is clear sends nothing.
 * A model that has both picks with dmahal_irq_mode(), as QEMU's msi_enabled():
 *
 *     if (dmahal_irq_mode(d, NULL) == DMAHAL_IRQ_MSI)
 *         dmahal_irq_raise(d, 0);
 *     else
 *         dmahal_irq_set(d, true);
 *
 * Both calls are thread-safe and cheap (an eventfd write at most); a model may call them
 * with its own lock held, from a register access or from its own thread.
 */

/**
 * Raises the device's INTx line (level-triggered: the device keeps it asserted) or lowers
 * it. A driver that enabled INTx sees it on vector 0 (see above); one that did not can
 * still look at the line with dmahal_irq_pending(). Passing NULL does nothing.
 */
void dmahal_irq_set(struct dmahal_device *d, bool asserted);

/**
 * Tells whether the device's INTx line is asserted (its interrupt is pending).
 * @return 1 if asserted, 0 if not, -EINVAL for NULL; 0 on platforms without models.
 */
int dmahal_irq_pending(const struct dmahal_device *d);

/**
 * Sends one MSI or MSI-X message for @p vector (see above).
 * @return 1 if delivered; 0 if dropped (the driver enabled no message-signalled interrupts,
 *         or fewer vectors); -EINVAL for NULL or a vector beyond what the model declares;
 *         -ENOTSUP for a device that is not a model's.
 */
int dmahal_irq_raise(struct dmahal_device *d, unsigned vector);

/**
 * Tells whether the device's command register lets it master the bus (the driver's
 * dmahal_adapter_get() sets the bit). The platform already refuses a model's DMA without
 * it; a model may check first to fail a command cleanly.
 * @return 1 or 0; -EINVAL for NULL; -ENOTSUP for a device that is not a model's.
 */
int dmahal_model_bus_master(struct dmahal_device *d);

/* ------------------------------------------------------------------------------------------
 * Time: deferred device work
 * ------------------------------------------------------------------------------------------ */

/**
 * Device work: runs once, @p state being the instance's state (as in the register
 * callbacks) and @p arg what dmahal_model_schedule() was given.
 */
typedef void (*dmahal_work_fn)(struct dmahal_device *d, void *state, void *arg);

/**
 * Schedules @p fn to run @p delay_ns nanoseconds of platform time from now (virtual time:
 * plus up to a quarter of the delay of seeded jitter; a delay of 0 runs at the next point
 * where time moves, never inside this call). Callable from any callback of the model,
 * including device work itself (a periodic engine reschedules itself).
 *
 * @param id  if not NULL, receives the work's id (never 0), for dmahal_model_cancel().
 * @return 0; -EINVAL for NULL @p d or @p fn, or a delay above 2^62 ns; -ENOTSUP for a
 *         device that is not a simulated model; -ENOMEM.
 */
int dmahal_model_schedule(struct dmahal_device *d, uint64_t delay_ns, dmahal_work_fn fn, void *arg,
                          uint64_t *id);

/**
 * Cancels scheduled work that has not started.
 * @return 0 (it will not run); -ENOENT if no such work is pending: it has run, is running
 *         now (on another thread: the model's lock orders them) or was never scheduled
 *         for @p d; -EINVAL for NULL @p d or id 0; -ENOTSUP off the simulated platform.
 */
int dmahal_model_cancel(struct dmahal_device *d, uint64_t id);

/**
 * The platform's time now, in nanoseconds since the platform was opened: virtual time, or
 * real (monotonic) time with `time=threads`. Inside device work it is the time the work
 * was due. 0 for NULL or a device that is not a simulated model.
 */
uint64_t dmahal_model_now(struct dmahal_device *d);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_DEVICE_H */
