/* SPDX-License-Identifier: MIT */
/*
 * edu_driver.h - a driver for QEMU's educational PCI device "edu", written against the public
 * dmahal API only, so that it runs unchanged on the simulated platform ("sim", device "edu")
 * and on the real (QEMU-emulated) device through VFIO ("vfio", device "0000:00:03.0").
 *
 * The device (QEMU docs/specs/edu.rst): BAR0 holds an identification register, a liveness
 * register that inverts what is written, a factorial unit, and a DMA engine that moves up to
 * 4 KiB between host memory and a buffer inside the device. Its DMA engine drives only the
 * low 28 address bits by default: the driver says so in its adapter description, and every
 * logical address it programs comes from that adapter.
 */
#ifndef DMAHAL_EXAMPLE_EDU_DRIVER_H
#define DMAHAL_EXAMPLE_EDU_DRIVER_H

#include <dmahal/dmahal.h>

#include "edu_regs.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One bound edu device. */
struct edu;

/**
 * Binds the driver to an open device: checks the identification register and gets a DMA
 * adapter for the given width.
 * @param dev        an open device (dmahal_device_open); the driver does not close it.
 * @param addr_bits  the width the device's DMA engine drives, 24..64: EDU_DEFAULT_ADDR_BITS
 *                   for a device with QEMU's default dma_mask.
 * @param out        receives the driver instance; cleared on failure.
 * @return 0; -EINVAL for NULL arguments or a bad width; -ENODEV if the device does not
 *         identify as an edu; -ENOMEM; or what dmahal_adapter_get() returns.
 */
int edu_attach(struct dmahal_device *dev, unsigned addr_bits, struct edu **out);

/**
 * Makes the driver wait for the device's interrupts instead of polling its registers: the
 * factorial (status bit 0x80) and DMA completion (command bit 0x4) then end with an
 * interrupt, which the driver waits for with dmahal_irq_wait(), acknowledges at 0x64 and,
 * for INTx, unmasks.
 * @param type  DMAHAL_IRQ_INTX, DMAHAL_IRQ_MSI, or DMAHAL_IRQ_ANY (the best: MSI).
 * @return 0; what dmahal_irq_enable() returns (-ENOTSUP, -EBUSY, ...).
 */
int edu_irq_enable(struct edu *e, enum dmahal_irq_type type);

/** Returns the interrupt type the driver waits on, or 0 when it polls. */
int edu_irq_type(const struct edu *e);

/** Releases the adapter and the driver's buffers. NULL does nothing. */
void edu_detach(struct edu *e);

/** Returns the device's version (major << 8 | minor), read at attach. */
unsigned edu_version(const struct edu *e);

/** Returns the driver's DMA adapter, for callers that program the device themselves. */
struct dmahal_adapter *edu_adapter(const struct edu *e);

/**
 * Checks that the device answers: writes @p v to the liveness register, expects ~v back.
 * @return 0; -EIO if the device answered something else.
 */
int edu_liveness(struct edu *e, uint32_t v);

/**
 * Computes n! (mod 2^32) on the device, polling its status register.
 * @return 0 with @p out set; -ETIMEDOUT if the device stayed busy for a second.
 */
int edu_factorial(struct edu *e, uint32_t n, uint32_t *out);

/**
 * Starts one DMA transfer of @p len bytes between logical address @p la and offset @p off of
 * the device's buffer, and waits for it. @p to_ram: device buffer to host memory.
 * The driver does not check @p la: this is the raw engine, for tests that show what a bad
 * address does. Use edu_write()/edu_read() for the checked path.
 * @return 0; -EINVAL if len is 0 or [off, off + len) reaches past EDU_DMA_LIMIT;
 *         -ETIMEDOUT if the device did not finish within five seconds.
 */
int edu_dma(struct edu *e, dmahal_addr_t la, uint32_t off, uint32_t len, bool to_ram);

/**
 * Copies @p len bytes from @p src into the device's buffer at @p off, by DMA from a common
 * buffer of the driver's adapter.
 * @return 0; -EINVAL for a range outside the buffer or NULL @p src; -ENOMEM; -ETIMEDOUT.
 */
int edu_write(struct edu *e, uint32_t off, const void *src, uint32_t len);

/**
 * Copies @p len bytes of the device's buffer at @p off into @p dst, by DMA to a common
 * buffer of the driver's adapter.
 * @return as edu_write().
 */
int edu_read(struct edu *e, uint32_t off, void *dst, uint32_t len);

/**
 * Moves @p len bytes between the caller's own memory @p mem (malloc'd, static, registered
 * hugepages: anywhere in the process) and the device's buffer at @p off, by DMA straight from
 * or into @p mem: the driver maps it with dmahal_map() for the transfer, one DMA per element
 * of the list, and unmaps it after. Where the device cannot reach the memory in place,
 * dmahal bounces it. @p to_ram: device buffer to @p mem.
 * @return 0; -EINVAL for NULL @p mem or a range outside the buffer; what dmahal_map()
 *         returns; -ETIMEDOUT.
 */
int edu_dma_mem(struct edu *e, void *mem, uint32_t off, uint32_t len, bool to_ram);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_EXAMPLE_EDU_DRIVER_H */
