/* SPDX-License-Identifier: MIT */
/*
 * edu.c - a model of QEMU's educational PCI device "edu" (QEMU hw/misc/edu.c, specified in
 * QEMU docs/specs/edu.rst), so that one driver runs unchanged on the simulated platform and
 * on the QEMU-emulated device through VFIO. docs/devices/edu.md is this model's spec.
 *
 * The factorial and the DMA take time as in QEMU: a transfer runs when its timer fires,
 * 100 ms of platform time after the command (dma_ns=), and the factorial is computed
 * fact_ns= later (QEMU's worker thread); a latency of 0 runs either inside the register
 * write that starts it. It differs from QEMU only where QEMU crashes: a DMA whose
 * device-side range leaves the 4 KiB buffer is refused (QEMU 7.2 aborts the whole machine)
 * and reported in two registers of the model's own at 0xa0 and 0xa4.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "platform/sim/models.h"

/* Register offsets in BAR0. */
#define EDU_REG_ID         0x00 /* RO: 0xRRrr00ed, major RR, minor rr */
#define EDU_REG_LIVENESS   0x04 /* RW: reads back the bitwise inverse of what was written */
#define EDU_REG_FACT       0x08 /* RW: write n, read n! (mod 2^32) once computed */
#define EDU_REG_STATUS     0x20 /* RW: EDU_STATUS_* */
#define EDU_REG_IRQ_STATUS 0x24 /* RO: the causes of the pending interrupt */
#define EDU_REG_IRQ_RAISE  0x60 /* WO: ORs the value into the interrupt status */
#define EDU_REG_IRQ_ACK    0x64 /* WO: clears the value's bits from the interrupt status */
#define EDU_REG_DMA_SRC    0x80 /* RW, 64-bit: where the DMA reads */
#define EDU_REG_DMA_DST    0x88 /* RW, 64-bit: where the DMA writes */
#define EDU_REG_DMA_CNT    0x90 /* RW, 64-bit: bytes to move */
#define EDU_REG_DMA_CMD    0x98 /* RW, 64-bit: EDU_CMD_* */
/* The model's own (QEMU reads all ones there): how the last DMA command ended, and how
 * many have failed, so that tests and drivers can tell a refused transfer from a done one. */
#define EDU_REG_SIM_DMA_ERROR 0xa0
#define EDU_REG_SIM_DMA_FAILS 0xa4

#define EDU_ID        0x010000edu /* version 1.0 */
#define EDU_BAR0_SIZE (1u << 20)
#define EDU_WIDE_REGS 0x80 /* registers from here on also take 8-byte accesses */

#define EDU_STATUS_COMPUTING 0x01u /* a factorial is being computed (read-only) */
#define EDU_STATUS_IRQFACT   0x80u /* raise EDU_IRQ_FACT when a factorial is done */

#define EDU_IRQ_FACT 0x001u /* interrupt status bit: a factorial finished */
#define EDU_IRQ_DMA  0x100u /* interrupt status bit: a DMA finished */

#define EDU_CMD_RUN    0x1u /* start; reads as 1 until the transfer is done */
#define EDU_CMD_TO_RAM 0x2u /* direction: 0 = RAM to the device's buffer, 1 = buffer to RAM */
#define EDU_CMD_IRQ    0x4u /* raise EDU_IRQ_DMA when done */

/* The device's DMA buffer, as it appears in its own address space. */
#define EDU_DMA_START 0x40000u
#define EDU_DMA_SIZE  4096u

#define EDU_DMA_MASK_DEFAULT ((UINT64_C(1) << 28) - 1) /* QEMU's default: 28 bits */
#define EDU_DMA_NS_DEFAULT   UINT64_C(100000000)       /* QEMU's DMA timer: 100 ms */
#define EDU_FACT_NS_DEFAULT  UINT64_C(10000)           /* the worker thread's turn */
#define EDU_LATENCY_MAX      UINT64_C(3600000000000)   /* an hour */

/* Values of EDU_REG_SIM_DMA_ERROR. */
#define EDU_DMA_OK        0 /* done, or no DMA yet */
#define EDU_DMA_ERR_RANGE 1 /* refused: the buffer-side range leaves the 4 KiB buffer */
#define EDU_DMA_ERR_BUS   2 /* the platform refused the RAM-side access (a fault) */

struct edu {
    /* QEMU serialises register accesses under its big lock; drivers here may not. */
    pthread_mutex_t lock;
    uint64_t dma_mask; /* applied to the RAM-side address of every transfer */
    uint64_t dma_ns;   /* from the command to the transfer; 0: at once */
    uint64_t fact_ns;  /* from the operand to the result; 0: at once */
    uint32_t liveness;
    uint32_t fact;
    uint32_t status;
    uint32_t irq_status;
    uint64_t dma_src, dma_dst, dma_cnt, dma_cmd;
    uint32_t dma_error;
    uint32_t dma_fails;
    unsigned char buf[EDU_DMA_SIZE];
};

/* One number as QEMU's property parser takes it: decimal, 0x hex or 0 octal, with no
 * leading blanks or sign (strtoull would take both). */
static int parse_u64(const char *text, size_t len, uint64_t *out)
{
    char buf[32], *end;

    if (len == 0 || len >= sizeof(buf) || text[0] < '0' || text[0] > '9')
        return -EINVAL;
    memcpy(buf, text, len);
    buf[len] = '\0';
    errno = 0;
    *out = strtoull(buf, &end, 0);
    return errno || *end ? -EINVAL : 0;
}

/* Parses "dma_mask=N,dma_ns=N,fact_ns=N", each optional: QEMU's one property (dma_mask)
 * and the two latencies. */
static int parse_args(struct edu *e, const char *args)
{
    if (!args || !*args)
        return 0;
    for (;;) {
        const char *comma = strchr(args, ',');
        size_t len = comma ? (size_t)(comma - args) : strlen(args);
        const char *eq = memchr(args, '=', len);
        size_t klen = eq ? (size_t)(eq - args) : len;
        uint64_t v;

        if (!eq || parse_u64(eq + 1, len - klen - 1, &v))
            return -EINVAL;
        if (klen == 8 && strncmp(args, "dma_mask", 8) == 0)
            e->dma_mask = v;
        else if (klen == 6 && strncmp(args, "dma_ns", 6) == 0 && v <= EDU_LATENCY_MAX)
            e->dma_ns = v;
        else if (klen == 7 && strncmp(args, "fact_ns", 7) == 0 && v <= EDU_LATENCY_MAX)
            e->fact_ns = v;
        else
            return -EINVAL;
        if (!comma)
            return 0;
        args = comma + 1;
        if (!*args)
            return -EINVAL;
    }
}

static int edu_init(struct dmahal_device *d, void *state, const char *args)
{
    struct edu *e = state;
    int rc;

    (void)d;
    e->dma_mask = EDU_DMA_MASK_DEFAULT;
    e->dma_ns = EDU_DMA_NS_DEFAULT;
    e->fact_ns = EDU_FACT_NS_DEFAULT;
    rc = parse_args(e, args);
    if (rc)
        return rc;
    return -pthread_mutex_init(&e->lock, NULL);
}

static void edu_fini(struct dmahal_device *d, void *state)
{
    struct edu *e = state;

    (void)d;
    pthread_mutex_destroy(&e->lock);
}

/* As QEMU's edu_raise_irq: with MSI enabled every raise sends the message (vector 0), even
 * when the cause was pending already; otherwise the INTx line follows the interrupt status,
 * asserted while any cause is set. */
static void irq_raise(struct dmahal_device *d, struct edu *e, uint32_t causes)
{
    e->irq_status |= causes;
    if (!e->irq_status)
        return;
    if (dmahal_irq_mode(d, NULL) == DMAHAL_IRQ_MSI)
        dmahal_irq_raise(d, 0);
    else
        dmahal_irq_set(d, true);
}

/* As QEMU's edu_lower_irq: a message needs no lowering; the line drops with the last cause. */
static void irq_lower(struct dmahal_device *d, struct edu *e, uint32_t causes)
{
    e->irq_status &= ~causes;
    if (!e->irq_status && dmahal_irq_mode(d, NULL) != DMAHAL_IRQ_MSI)
        dmahal_irq_set(d, false);
}

/*
 * n! modulo 2^32, as QEMU's 32-bit loop computes it. Once the product is 0 it stays 0, and
 * any 34 consecutive factors hold at least 32 twos, so stopping there keeps the result
 * exact while n = 0xffffffff costs 34 steps instead of four billion.
 */
static uint32_t factorial32(uint32_t n)
{
    uint32_t r = 1;

    while (n > 0 && r != 0)
        r *= n--;
    return r;
}

/* The worker's computation: the operand in fact becomes its factorial. */
static void fact_finish(struct dmahal_device *d, struct edu *e)
{
    e->fact = factorial32(e->fact);
    e->status &= ~EDU_STATUS_COMPUTING;
    if (e->status & EDU_STATUS_IRQFACT)
        irq_raise(d, e, EDU_IRQ_FACT);
}

static void fact_work(struct dmahal_device *d, void *state, void *arg)
{
    struct edu *e = state;

    (void)arg;
    pthread_mutex_lock(&e->lock);
    fact_finish(d, e);
    pthread_mutex_unlock(&e->lock);
}

static void fact_start(struct dmahal_device *d, struct edu *e, uint32_t n)
{
    /* As QEMU: a new operand is ignored while computing; until the result is in, the
     * register reads the operand. */
    if (e->status & EDU_STATUS_COMPUTING)
        return;
    e->status |= EDU_STATUS_COMPUTING;
    e->fact = n;
    if (e->fact_ns == 0 || dmahal_model_schedule(d, e->fact_ns, fact_work, NULL, NULL) != 0)
        fact_finish(d, e);
}

/*
 * QEMU 7.2's check of the buffer-side range: it must start inside the buffer, hold at least
 * one byte, not wrap, and end inside the buffer.
 */
static bool dma_range_ok(uint64_t addr, uint64_t cnt)
{
    uint64_t end = addr + cnt;

    return addr >= EDU_DMA_START && addr < EDU_DMA_START + EDU_DMA_SIZE && end > addr &&
           end <= EDU_DMA_START + EDU_DMA_SIZE;
}

/* Runs the programmed transfer to completion: what QEMU's DMA timer does when it fires. */
static void dma_run(struct dmahal_device *d, struct edu *e)
{
    bool to_ram = e->dma_cmd & EDU_CMD_TO_RAM;
    uint64_t dev_addr = to_ram ? e->dma_src : e->dma_dst;
    /* The device drives only the mask's bits: higher address bits are dropped, not
     * refused, so a driver that ignores the mask has its data land somewhere else. */
    dmahal_addr_t la = (to_ram ? e->dma_dst : e->dma_src) & e->dma_mask;
    int rc;

    if (!dma_range_ok(dev_addr, e->dma_cnt)) {
        e->dma_error = EDU_DMA_ERR_RANGE;
    } else {
        unsigned char *p = e->buf + (dev_addr - EDU_DMA_START);

        if (to_ram)
            rc = dmahal_dev_write(d, la, p, (size_t)e->dma_cnt);
        else
            rc = dmahal_dev_read(d, la, p, (size_t)e->dma_cnt);
        /* Like QEMU's edu, the command completes whatever the bus said; the platform has
         * recorded the fault, and the error register says the data did not move. */
        e->dma_error = rc ? EDU_DMA_ERR_BUS : EDU_DMA_OK;
    }
    if (e->dma_error != EDU_DMA_OK && e->dma_fails != UINT32_MAX)
        e->dma_fails++;

    e->dma_cmd &= ~(uint64_t)EDU_CMD_RUN;
    if (e->dma_cmd & EDU_CMD_IRQ)
        irq_raise(d, e, EDU_IRQ_DMA);
}

static void dma_work(struct dmahal_device *d, void *state, void *arg)
{
    struct edu *e = state;

    (void)arg;
    pthread_mutex_lock(&e->lock);
    dma_run(d, e);
    pthread_mutex_unlock(&e->lock);
}

/* Starts the programmed transfer: QEMU arms its DMA timer. */
static void dma_start(struct dmahal_device *d, struct edu *e)
{
    if (e->dma_ns == 0 || dmahal_model_schedule(d, e->dma_ns, dma_work, NULL, NULL) != 0)
        dma_run(d, e);
}

/* Where QEMU's edu answers an access of this size; elsewhere it reads all ones. */
static bool size_ok(uint64_t off, unsigned size)
{
    return size == 4 || (size == 8 && off >= EDU_WIDE_REGS);
}

static uint64_t edu_read_locked(struct edu *e, uint64_t off)
{
    switch (off) {
    case EDU_REG_ID:
        return EDU_ID;
    case EDU_REG_LIVENESS:
        return e->liveness;
    case EDU_REG_FACT:
        return e->fact;
    case EDU_REG_STATUS:
        return e->status;
    case EDU_REG_IRQ_STATUS:
        return e->irq_status;
    case EDU_REG_DMA_SRC:
        return e->dma_src;
    case EDU_REG_DMA_DST:
        return e->dma_dst;
    case EDU_REG_DMA_CNT:
        return e->dma_cnt;
    case EDU_REG_DMA_CMD:
        return e->dma_cmd;
    case EDU_REG_SIM_DMA_ERROR:
        return e->dma_error;
    case EDU_REG_SIM_DMA_FAILS:
        return e->dma_fails;
    default:
        return UINT64_MAX;
    }
}

static uint64_t edu_mmio_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                              unsigned size)
{
    struct edu *e = state;
    uint64_t v = UINT64_MAX;

    (void)d;
    if (bar == 0 && size_ok(off, size)) {
        pthread_mutex_lock(&e->lock);
        v = edu_read_locked(e, off);
        pthread_mutex_unlock(&e->lock);
    }
    /* A narrower access sees the low bytes, as on a little-endian bus. */
    return size >= 8 ? v : v & ((UINT64_C(1) << (8 * size)) - 1);
}

/* A write to a DMA register while a transfer runs is ignored, as in QEMU. */
static void dma_reg_write(struct edu *e, uint64_t *reg, uint64_t v)
{
    if (!(e->dma_cmd & EDU_CMD_RUN))
        *reg = v;
}

static void edu_write_locked(struct dmahal_device *d, struct edu *e, uint64_t off, uint64_t v)
{
    switch (off) {
    case EDU_REG_LIVENESS:
        e->liveness = ~(uint32_t)v;
        break;
    case EDU_REG_FACT:
        fact_start(d, e, (uint32_t)v);
        break;
    case EDU_REG_STATUS:
        /* Only IRQFACT is writable; COMPUTING belongs to the device. */
        if (v & EDU_STATUS_IRQFACT)
            e->status |= EDU_STATUS_IRQFACT;
        else
            e->status &= ~EDU_STATUS_IRQFACT;
        break;
    case EDU_REG_IRQ_RAISE:
        irq_raise(d, e, (uint32_t)v);
        break;
    case EDU_REG_IRQ_ACK:
        irq_lower(d, e, (uint32_t)v);
        break;
    case EDU_REG_DMA_SRC:
        dma_reg_write(e, &e->dma_src, v);
        break;
    case EDU_REG_DMA_DST:
        dma_reg_write(e, &e->dma_dst, v);
        break;
    case EDU_REG_DMA_CNT:
        dma_reg_write(e, &e->dma_cnt, v);
        break;
    case EDU_REG_DMA_CMD:
        /* A command without RUN is dropped whole: it does not even change the register. */
        if (!(v & EDU_CMD_RUN) || (e->dma_cmd & EDU_CMD_RUN))
            break;
        e->dma_cmd = v;
        dma_start(d, e);
        break;
    default:
        /* Read-only and unassigned registers ignore writes. */
        break;
    }
}

static void edu_mmio_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                           uint64_t val, unsigned size)
{
    struct edu *e = state;

    if (bar != 0 || !size_ok(off, size))
        return;
    /* A 4-byte write replaces the whole register with the zero-extended value: QEMU's
     * 64-bit DMA registers have no separately writable high half (0x84 is unassigned). */
    if (size == 4)
        val &= UINT32_MAX;
    pthread_mutex_lock(&e->lock);
    edu_write_locked(d, e, off, val);
    pthread_mutex_unlock(&e->lock);
}

const struct dmahal_model dmahal__model_edu = {
    .size = sizeof(struct dmahal_model),
    .name = "edu",
    .summary = "QEMU's educational PCI device (1234:11e8): factorial, interrupts, "
               "4 KiB DMA engine with a 28-bit mask",
    .state_size = sizeof(struct edu),
    .bar_size = {EDU_BAR0_SIZE},
    .usage = "dma_mask=N,dma_ns=N,fact_ns=N",
    .init = edu_init,
    .fini = edu_fini,
    .mmio_read = edu_mmio_read,
    .mmio_write = edu_mmio_write,
    /* QEMU 7.2's edu: PCI_CLASS_OTHERS (class 00, subclass ff), revision 0x10, INTA# and one 64-bit
     * MSI vector (msi_init(pdev, 0, 1, true, false)). */
    .vendor_id = 0x1234,
    .device_id = 0x11e8,
    .class_code = 0x00ff00,
    .revision = 0x10,
    .intx = true,
    .msi_vectors = 1,
};
