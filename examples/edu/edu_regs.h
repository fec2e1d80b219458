/* SPDX-License-Identifier: MIT */
/*
 * edu_regs.h - QEMU's educational PCI device (hw/misc/edu.c) as a driver sees it: BAR0's
 * registers, their bits, and the DMA engine's buffer. One copy for every driver-side user (the
 * examples, the `dmahal demo`, the tests); the device side (the sim's model) keeps its own.
 * The full specification, and where the sim's model differs from QEMU 7.2: docs/devices/edu.md.
 */
#ifndef DMAHAL_EDU_REGS_H
#define DMAHAL_EDU_REGS_H

/* ---- BAR0 ---- */
#define EDU_REG_ID         0x00 /* RO: 0xRRrr00ed, major RR, minor rr */
#define EDU_REG_LIVENESS   0x04 /* RW: reads back the bitwise inverse of what was written */
#define EDU_REG_FACT       0x08 /* RW: write n, read n! (mod 2^32) once computed */
#define EDU_REG_STATUS     0x20 /* RW: EDU_STATUS_* */
#define EDU_REG_IRQ_STATUS 0x24 /* RO: the causes of the pending interrupt, EDU_IRQ_* */
#define EDU_REG_IRQ_RAISE  0x60 /* WO: ORs the value into the interrupt status */
#define EDU_REG_IRQ_ACK    0x64 /* WO: clears the value's bits from the interrupt status */
#define EDU_REG_DMA_SRC    0x80 /* RW, 64-bit: where the DMA reads */
#define EDU_REG_DMA_DST    0x88 /* RW, 64-bit: where the DMA writes */
#define EDU_REG_DMA_CNT    0x90 /* RW, 64-bit: bytes to move */
#define EDU_REG_DMA_CMD    0x98 /* RW, 64-bit: EDU_CMD_* */
/* The sim's model only (QEMU reads all ones): how the last DMA command ended, EDU_DMA_*, and
 * how many commands moved no data. */
#define EDU_REG_SIM_DMA_RESULT 0xa0
#define EDU_REG_SIM_DMA_FAILS  0xa4

#define EDU_ID_MASK  0xff0000ffu /* the identification's fixed bits: major version and 0xed */
#define EDU_ID_VALUE 0x010000edu /* what they read on version 1.x */

#define EDU_STATUS_COMPUTING 0x01u /* a factorial is being computed (read-only) */
#define EDU_STATUS_IRQFACT   0x80u /* raise EDU_IRQ_FACT when a factorial is done */

#define EDU_IRQ_FACT 0x001u /* interrupt status: a factorial finished */
#define EDU_IRQ_DMA  0x100u /* interrupt status: a DMA finished */

#define EDU_CMD_RUN    0x1u /* start; reads as 1 until the transfer is done */
#define EDU_CMD_TO_RAM 0x2u /* direction: 0 = RAM to the device's buffer, 1 = buffer to RAM */
#define EDU_CMD_IRQ    0x4u /* raise EDU_IRQ_DMA when done */

#define EDU_DMA_OK        0 /* EDU_REG_SIM_DMA_RESULT: done, or no DMA yet */
#define EDU_DMA_ERR_RANGE 1 /* refused: the buffer-side range leaves the device's buffer */
#define EDU_DMA_ERR_BUS   2 /* the platform refused the RAM-side access (a fault) */

/* ---- the DMA engine ---- */
/* The buffer inside the device: 4 KiB at this address in the device's own address space. */
#define EDU_BUF_ADDR 0x40000u
#define EDU_BUF_SIZE 4096u
/*
 * How far into the buffer a transfer may reach: all but its last byte. QEMU 7.2's range check
 * is off by one and stops the whole machine (hw_error) on a transfer that touches the last
 * byte, so a driver that must run on it never does.
 */
#define EDU_DMA_LIMIT (EDU_BUF_SIZE - 1)
/* The address width of the DMA engine unless the device's dma_mask property says otherwise. */
#define EDU_DEFAULT_ADDR_BITS 28u

#endif /* DMAHAL_EDU_REGS_H */
