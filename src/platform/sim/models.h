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

#endif /* DMAHAL_SIM_MODELS_H */
