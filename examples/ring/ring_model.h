/* SPDX-License-Identifier: MIT */
/* ring_model.h - registers the "ring" copy engine's model with the simulated platform. */
#ifndef RING_MODEL_H
#define RING_MODEL_H

#include <dmahal/device.h>

/* Registers the model (once; again is 0). @return 0 or dmahal_model_register's error. */
int ring_model_register(void);

#endif /* RING_MODEL_H */
