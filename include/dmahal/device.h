/* SPDX-License-Identifier: MIT */
/**
 * @file
 * device.h - writing device models for the simulated platform.
 *
 * A device model is a register file plus whatever engines the device has. The simulated
 * platform creates one instance of a model per dmahal_device_open() and routes the driver's
 * register accesses to it; the model does DMA through dmahal_dev_read()/dmahal_dev_write(),
 * exactly as a real device masters the bus, so every access is translated (and checked) by
 * the platform. Models run synchronously inside the register access that starts them: a
 * driver that polls a status register sees the work done on its next read.
 */
#ifndef DMAHAL_DEVICE_H
#define DMAHAL_DEVICE_H

#include <dmahal/dmahal.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The number of BARs a model may have. */
#define DMAHAL_MODEL_BARS 6

/** A device model: one per kind of device; instances are made by dmahal_device_open(). */
struct dmahal_model {
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
};

/**
 * Registers a device model with the simulated platform, for every platform opened after
 * (and before) the call. The model must stay valid for the life of the process.
 * Built-in models ("edu") are registered already.
 *
 * @return 0; -EINVAL for NULL, a model without a name, mmio_read or mmio_write, or a name
 *         containing ':' or ','; -EEXIST if a model of that name is registered;
 *         -ENOSPC if the registry (64 models) is full.
 */
int dmahal_model_register(const struct dmahal_model *m);

/**
 * Finds a registered model by name.
 * @return the model, or NULL if none has that name.
 */
const struct dmahal_model *dmahal_model_find(const char *name);

/**
 * Lists registered models, for tools.
 * @param index  0, 1, ... until NULL is returned.
 */
const struct dmahal_model *dmahal_model_at(size_t index);

/**
 * Raises the device's interrupt line (level-triggered, as the device keeps it asserted)
 * or lowers it. A driver sees it with dmahal_irq_pending(). Meant for models.
 */
void dmahal_irq_set(struct dmahal_device *d, bool asserted);

/**
 * Tells whether the device's interrupt line is asserted (its interrupt is pending).
 * @return 1 if asserted, 0 if not, -EINVAL for NULL.
 */
int dmahal_irq_pending(const struct dmahal_device *d);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_DEVICE_H */
