/* SPDX-License-Identifier: MIT */
/* edu_driver.c - see edu_driver.h. Uses the public dmahal API only. */
#include "edu_driver.h"

#include "edu_regs.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

/* BAR0 registers (QEMU docs/specs/edu.rst). */

struct edu {
    struct dmahal_device *dev;
    struct dmahal_adapter *adapter;
    struct dmahal_buf bounce; /* one page of DMA memory for edu_read/edu_write */
    unsigned version;
    int irq; /* enum dmahal_irq_type waited on; 0: the driver polls */
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls until (reg & mask) == 0. A simulated device finishes inside the write that starts
 * it; a real one takes its time (QEMU's edu DMA takes 100 ms), so back off a little. */
static int wait_clear(struct edu *e, uint64_t reg, uint64_t mask, bool wide, double secs)
{
    struct timespec pause = {0, 200000};
    double deadline = now() + secs;

    for (;;) {
        uint64_t v = wide ? dmahal_mmio_read64(e->dev, 0, reg) : dmahal_mmio_read32(e->dev, 0, reg);

        if (!(v & mask))
            return 0;
        if (now() > deadline)
            return -ETIMEDOUT;
        nanosleep(&pause, NULL);
    }
}

/*
 * Waits for the interrupt that reports @cause, as an interrupt handler would: each event,
 * read the causes, acknowledge them (which lowers the INTx line), unmask INTx, and stop once
 * @cause was among them.
 */
static int wait_irq(struct edu *e, uint32_t cause, double secs)
{
    double deadline = now() + secs;

    for (;;) {
        int left = (int)((deadline - now()) * 1000);
        uint32_t st;
        int rc;

        rc = dmahal_irq_wait(e->dev, 0, left > 0 ? left : 0);
        if (rc)
            return rc;
        st = dmahal_mmio_read32(e->dev, 0, EDU_REG_IRQ_STATUS);
        if (st)
            dmahal_mmio_write32(e->dev, 0, EDU_REG_IRQ_ACK, st);
        if (e->irq == DMAHAL_IRQ_INTX) {
            rc = dmahal_irq_unmask(e->dev, 0);
            if (rc)
                return rc;
        }
        if (st & cause)
            return 0;
    }
}

int edu_irq_enable(struct edu *e, enum dmahal_irq_type type)
{
    int rc;

    if (!e)
        return -EINVAL;
    rc = dmahal_irq_enable(e->dev, type, 1);
    if (rc < 0)
        return rc;
    e->irq = dmahal_irq_mode(e->dev, NULL);
    return 0;
}

int edu_irq_type(const struct edu *e)
{
    return e ? e->irq : 0;
}

int edu_attach(struct dmahal_device *dev, unsigned addr_bits, struct edu **out)
{
    struct dmahal_desc desc = {.addr_bits = addr_bits, .max_transfer = EDU_BUF_SIZE};
    struct edu *e;
    uint32_t id;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dev || addr_bits < 24 || addr_bits > 64)
        return -EINVAL;
    id = dmahal_mmio_read32(dev, 0, EDU_REG_ID);
    if ((id & 0xff) != 0xed)
        return -ENODEV;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->dev = dev;
    e->version = id >> 16;
    rc = dmahal_adapter_get(dev, &desc, &e->adapter);
    if (rc)
        goto err_alloc;
    rc = dmahal_common_alloc(e->adapter, EDU_BUF_SIZE, 0, &e->bounce);
    if (rc)
        goto err_adapter;
    *out = e;
    return 0;

err_adapter:
    dmahal_adapter_put(e->adapter);
err_alloc:
    free(e);
    return rc;
}

void edu_detach(struct edu *e)
{
    if (!e)
        return;
    if (e->irq)
        dmahal_irq_disable(e->dev);
    dmahal_common_free(e->adapter, &e->bounce);
    dmahal_adapter_put(e->adapter);
    free(e);
}

unsigned edu_version(const struct edu *e)
{
    return e->version;
}

struct dmahal_adapter *edu_adapter(const struct edu *e)
{
    return e->adapter;
}

int edu_liveness(struct edu *e, uint32_t v)
{
    dmahal_mmio_write32(e->dev, 0, EDU_REG_LIVENESS, v);
    return dmahal_mmio_read32(e->dev, 0, EDU_REG_LIVENESS) == ~v ? 0 : -EIO;
}

int edu_factorial(struct edu *e, uint32_t n, uint32_t *out)
{
    int rc;

    *out = 0;
    /* The device ignores a new operand while it computes: wait for any earlier one. */
    rc = wait_clear(e, EDU_REG_STATUS, EDU_STATUS_COMPUTING, false, 1.0);
    if (rc)
        return rc;
    dmahal_mmio_write32(e->dev, 0, EDU_REG_STATUS, e->irq ? EDU_STATUS_IRQFACT : 0);
    dmahal_mmio_write32(e->dev, 0, EDU_REG_FACT, n);
    rc = e->irq ? wait_irq(e, EDU_IRQ_FACT, 1.0)
                : wait_clear(e, EDU_REG_STATUS, EDU_STATUS_COMPUTING, false, 1.0);
    if (rc)
        return rc;
    *out = dmahal_mmio_read32(e->dev, 0, EDU_REG_FACT);
    return 0;
}

int edu_dma(struct edu *e, dmahal_addr_t la, uint32_t off, uint32_t len, bool to_ram)
{
    if (!len || off >= EDU_DMA_LIMIT || len > EDU_DMA_LIMIT - off)
        return -EINVAL;
    /* The device ignores register writes while a transfer runs. */
    if (wait_clear(e, EDU_REG_DMA_CMD, EDU_CMD_RUN, true, 5.0))
        return -ETIMEDOUT;
    dmahal_mmio_write64(e->dev, 0, EDU_REG_DMA_SRC, to_ram ? EDU_BUF_ADDR + off : la);
    dmahal_mmio_write64(e->dev, 0, EDU_REG_DMA_DST, to_ram ? la : EDU_BUF_ADDR + off);
    dmahal_mmio_write64(e->dev, 0, EDU_REG_DMA_CNT, len);
    /* The register write orders the CPU's stores to the buffer before it (as writel). */
    dmahal_mmio_write64(e->dev, 0, EDU_REG_DMA_CMD,
                        EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0) | (e->irq ? EDU_CMD_IRQ : 0));
    if (e->irq)
        return wait_irq(e, EDU_IRQ_DMA, 5.0);
    return wait_clear(e, EDU_REG_DMA_CMD, EDU_CMD_RUN, true, 5.0);
}

int edu_write(struct edu *e, uint32_t off, const void *src, uint32_t len)
{
    if (!src || !len || off >= EDU_DMA_LIMIT || len > EDU_DMA_LIMIT - off)
        return -EINVAL;
    /* The bounce buffer is allocated without DMAHAL_CACHED, so no flush is needed even
     * where the device does not snoop caches. */
    memcpy(e->bounce.va, src, len);
    return edu_dma(e, e->bounce.la, off, len, false);
}

int edu_read(struct edu *e, uint32_t off, void *dst, uint32_t len)
{
    int rc;

    if (!dst)
        return -EINVAL;
    rc = edu_dma(e, e->bounce.la, off, len, true);
    if (rc)
        return rc;
    memcpy(dst, e->bounce.va, len);
    return 0;
}

int edu_dma_mem(struct edu *e, void *mem, uint32_t off, uint32_t len, bool to_ram)
{
    struct dmahal_sgl *sgl;
    int rc;

    if (!mem || !len || off >= EDU_DMA_LIMIT || len > EDU_DMA_LIMIT - off)
        return -EINVAL;
    rc = dmahal_map(e->adapter, &(struct iovec){mem, len}, 1,
                    to_ram ? DMAHAL_FROM_DEVICE : DMAHAL_TO_DEVICE, 0, &sgl);
    if (rc)
        return rc;
    for (unsigned i = 0; i < sgl->nseg && rc == 0; i++) {
        rc = edu_dma(e, sgl->seg[i].la, off, (uint32_t)sgl->seg[i].len, to_ram);
        off += (uint32_t)sgl->seg[i].len;
    }
    dmahal_unmap(e->adapter, sgl);
    return rc;
}
