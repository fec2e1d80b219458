/* SPDX-License-Identifier: MIT */
/*
 * ring_regs.h - the register map of "ring", the descriptor-ring copy engine of
 * docs/models.md: what its model (ring_model.c) and its driver (ring_driver.c) share.
 *
 * The driver puts descriptors in a ring in DMA memory, says how far it filled the ring by
 * writing the producer index to the doorbell, and the device copies each descriptor's bytes,
 * writes the descriptor's status back, advances the consumer index and, if asked, raises
 * its interrupt (INTx, level: asserted until acknowledged).
 */
#ifndef RING_REGS_H
#define RING_REGS_H

#include <stdint.h>

/* BAR0 registers, all 4 bytes except RING_BASE (8). */
#define RING_REG_ID   0x00 /* RO: RING_ID */
#define RING_REG_BASE 0x08 /* RW, 8 bytes: logical address of the ring */
#define RING_REG_SIZE 0x10 /* RW: entries, a power of two from 2 to 256; written while idle */
#define RING_REG_DOORBELL                                                                          \
    0x14                     /* WO: the producer index (mod 2^32): entries before it are ready     \
                              */
#define RING_REG_DONE   0x18 /* RO: the consumer index: entries before it are done */
#define RING_REG_IRQ    0x1c /* R: 1 while the interrupt is pending; W: 1 acknowledges */
#define RING_REG_CTRL   0x20 /* RW: RING_CTRL_* */
#define RING_REG_ERRORS 0x24 /* RO: descriptors that failed */

#define RING_ID          0x52494e47u /* "RING" */
#define RING_CTRL_IRQ    0x1u        /* interrupt when the ring drains */
#define RING_BAR0_SIZE   4096u
#define RING_MAX_ENTRIES 256u
#define RING_MAX_COPY    65536u /* bytes one descriptor may move */

/* One descriptor, 32 bytes, little-endian. The device reads it whole and writes status. */
struct ring_desc {
    uint64_t src;    /* logical address the device reads */
    uint64_t dst;    /* logical address the device writes */
    uint32_t len;    /* bytes, 1 .. RING_MAX_COPY */
    uint32_t status; /* the driver writes 0; the device RING_DESC_DONE or RING_DESC_ERROR */
    uint64_t cookie; /* the driver's, untouched */
};

#define RING_DESC_DONE  1u
#define RING_DESC_ERROR 2u

#endif /* RING_REGS_H */
