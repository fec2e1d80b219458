/* SPDX-License-Identifier: MIT */
/*
 * models.h - private: the device models built into the simulated platform.
 *
 * models.c puts them in its registry the first time a model is looked up or registered;
 * drivers reach them by name through dmahal_device_open().
 */
#ifndef DMAHAL_SIM_MODELS_H
#define DMAHAL_SIM_MODELS_H

#include <dmahal/device.h>

/* QEMU's educational PCI device "edu" (hw/misc/edu.c); see docs/devices/edu.md. */
extern const struct dmahal_model dmahal__model_edu;

/* An NVMe controller as QEMU 7.2's "nvme" (hw/nvme/ctrl.c); see docs/devices/nvme.md. */
extern const struct dmahal_model dmahal__model_nvme;

/* Sets the size of one of the device's BARs from a model's init, for models whose register
 * file depends on their arguments (the NVMe model's doorbells and MSI-X table). */
void dmahal__model_set_bar_size(struct dmahal_device *d, unsigned bar, uint64_t size);

#endif /* DMAHAL_SIM_MODELS_H */
