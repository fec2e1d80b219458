/* SPDX-License-Identifier: MIT */
/*
 * test_irq.c - interrupts and configuration space on the sim: the edu model's INTx and MSI
 * (factorial and DMA completion, through the fd and through wait), INTx masking, timeouts,
 * a model with MSI-X vectors, config-space identity and capabilities, bus mastering, and
 * every bad argument.
 */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "edu/edu_regs.h"
#include "rig.h"
#include "test.h"

static void edu_open(struct rig *r)
{
    struct dmahal_desc desc = {.addr_bits = 28};

    rig_open(r, "sim", &desc);
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0);
}

static void dma_to_device(struct rig *r, dmahal_addr_t la, uint32_t cmd)
{
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_SRC, la);
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_DST, EDU_BUF_ADDR);
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_CNT, 64);
    dmahal_mmio_write32(r->d, 0, EDU_REG_DMA_CMD, cmd | EDU_CMD_RUN);
    /* The transfer takes platform time: a polling driver waits for RUN to clear. */
    while (dmahal_mmio_read32(r->d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN)
        ;
}

TEST(irq_counts_follow_the_model)
{
    struct rig r;

    edu_open(&r);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_INTX), 1);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_MSI), 1);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_MSIX), 0);
    CHECK_ERR(dmahal_irq_count(r.d, DMAHAL_IRQ_ANY), -EINVAL);
    CHECK_ERR(dmahal_irq_count(r.d, (enum dmahal_irq_type)9), -EINVAL);
    CHECK_ERR(dmahal_irq_count(NULL, DMAHAL_IRQ_INTX), -EINVAL);
    CHECK_ERR(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSIX, 1), -ENOTSUP);
    /* ANY picks the best the device has: MSI on edu. */
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_ANY, 0), 1);
    CHECK_EQ(dmahal_irq_mode(r.d, NULL), DMAHAL_IRQ_MSI);
    CHECK_ERR(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), -EBUSY);
    CHECK_OK(dmahal_irq_disable(r.d));
    CHECK_EQ(dmahal_irq_mode(r.d, NULL), 0);
    rig_close(&r);
}

TEST(irq_bad_arguments)
{
    struct rig r;
    unsigned n = 7;

    edu_open(&r);
    CHECK_ERR(dmahal_irq_enable(NULL, DMAHAL_IRQ_INTX, 1), -EINVAL);
    CHECK_ERR(dmahal_irq_enable(r.d, (enum dmahal_irq_type)7, 1), -EINVAL);
    CHECK_ERR(dmahal_irq_disable(NULL), -EINVAL);
    CHECK_ERR(dmahal_irq_disable(r.d), -EINVAL); /* not enabled */
    CHECK_ERR(dmahal_irq_fd(r.d, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_unmask(r.d, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_mode(NULL, &n), -EINVAL);
    CHECK_EQ(n, 0);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 5), 1); /* capped to what INTx has */
    CHECK_ERR(dmahal_irq_fd(NULL, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_fd(r.d, 1), -EINVAL);
    CHECK_ERR(dmahal_irq_wait(NULL, 0, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_wait(r.d, 1, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, -2), -EINVAL);
    CHECK_ERR(dmahal_irq_unmask(NULL, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_unmask(r.d, 1), -EINVAL);
    CHECK_ERR(dmahal_irq_raise(NULL, 0), -EINVAL);
    CHECK_ERR(dmahal_irq_raise(r.d, 1), -EINVAL); /* edu declares one MSI vector */
    CHECK_EQ(dmahal_irq_raise(r.d, 0), 0);        /* INTx enabled: a message is dropped */
    CHECK_EQ(dmahal_irq_mode(r.d, &n), DMAHAL_IRQ_INTX);
    CHECK_EQ(n, 1);
    CHECK_ERR(dmahal_irq_pending(NULL), -EINVAL);
    dmahal_irq_set(NULL, true); /* nothing */
    rig_close(&r);
}

TEST(irq_edu_intx_factorial_by_wait_masks_until_unmasked)
{
    struct rig r;

    edu_open(&r);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 20), -ETIMEDOUT);
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, EDU_STATUS_IRQFACT);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 5);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 1000));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), EDU_IRQ_FACT);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 120);
    /* Masked since it fired: another cause while the line is up sends nothing. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x10);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    /* Unmasking with the line still asserted fires again at once (a level). */
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_OK(dmahal_irq_wait(r.d, 0, 0));
    /* The handler acknowledges every cause: the line drops; unmask then fires nothing. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_FACT | 0x10);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    /* The next factorial interrupts again. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 3);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 1000));
    /* Without IRQFACT a factorial raises nothing. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_FACT);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 4);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    CHECK_OK(dmahal_irq_disable(r.d));
    rig_close(&r);
}

TEST(irq_edu_intx_dma_done_by_fd)
{
    struct rig r;
    struct dmahal_buf b;
    uint64_t count;
    int fd;

    edu_open(&r);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 0), 1);
    fd = dmahal_irq_fd(r.d, 0);
    CHECK_GE(fd, 0);
    CHECK_EQ(readable(fd), 0);
    dma_to_device(&r, b.la, 0); /* no EDU_CMD_IRQ: no interrupt */
    CHECK_EQ(readable(fd), 0);
    dma_to_device(&r, b.la, EDU_CMD_IRQ);
    CHECK_EQ(readable(fd), 1);
    CHECK_EQ(read(fd, &count, sizeof(count)), (ssize_t)sizeof(count)); /* consumes it */
    CHECK_EQ_U(count, 1);
    CHECK_EQ(readable(fd), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), EDU_IRQ_DMA);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_DMA);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_EQ(readable(fd), 0);
    /* The INTx status bit of config space follows the line. */
    dma_to_device(&r, b.la, EDU_CMD_IRQ);
    uint16_t status;
    CHECK_OK(dmahal_config_read(r.d, 0x06, &status, sizeof(status)));
    CHECK(status & 0x08);
    rig_close(&r); /* closes with interrupts enabled: the device's close disables them */
}

TEST(irq_edu_msi_each_raise_is_one_message)
{
    struct rig r;
    struct dmahal_buf b;
    uint16_t ctl;
    unsigned cap;

    edu_open(&r);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_OK(dmahal_config_find_cap(r.d, DMAHAL_PCI_CAP_ID_MSI, &cap));
    CHECK_OK(dmahal_config_read(r.d, cap + 2, &ctl, sizeof(ctl)));
    CHECK_EQ_U(ctl & 1, 0);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSI, 1), 1);
    CHECK_OK(dmahal_config_read(r.d, cap + 2, &ctl, sizeof(ctl)));
    CHECK_EQ_U(ctl & 1, 1); /* MSI enable follows, as VFIO's virtualised capability */
    dma_to_device(&r, b.la, EDU_CMD_IRQ);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 1000));
    /* MSI: the INTx line stays down, and unmask is a no-op. */
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    /* QEMU's edu sends a message on every raise, the cause pending or not. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, EDU_STATUS_IRQFACT);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 6);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 1000));
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x2);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 1000));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), EDU_IRQ_DMA | EDU_IRQ_FACT | 0x2);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0);
    CHECK_OK(dmahal_irq_disable(r.d));
    CHECK_OK(dmahal_config_read(r.d, cap + 2, &ctl, sizeof(ctl)));
    CHECK_EQ_U(ctl & 1, 0);
    /* Disabled: the device falls back to its line, as QEMU's edu without MSI. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x1);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    rig_close(&r);
}

TEST(irq_intx_enabled_with_the_line_up_fires_at_once)
{
    struct rig r;

    edu_open(&r);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x4);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 0));
    rig_close(&r);
}

TEST(irq_intx_disable_bit_holds_the_line_back)
{
    struct rig r;
    uint16_t cmd;

    edu_open(&r);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    CHECK_OK(dmahal_config_read(r.d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
    cmd |= DMAHAL_PCI_COMMAND_INTX_OFF;
    CHECK_OK(dmahal_config_write(r.d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x4);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    cmd &= (uint16_t)~DMAHAL_PCI_COMMAND_INTX_OFF;
    CHECK_OK(dmahal_config_write(r.d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
    CHECK_OK(dmahal_irq_wait(r.d, 0, 0));
    rig_close(&r);
}

/* ---- a model with MSI-X: several vectors ------------------------------------------------ */

/* BAR0: writing V to offset 0 sends vector V. */
static uint64_t vec_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                         unsigned size)
{
    (void)d, (void)state, (void)bar, (void)off, (void)size;
    return 0;
}

static void vec_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                      uint64_t val, unsigned size)
{
    (void)state, (void)size;
    if (bar == 0 && off == 0) /* BAR2 holds the table: the host's kernel writes it */
        dmahal_irq_raise(d, (unsigned)val);
}

static const struct dmahal_model vec_model = {
    .name = "test-msix",
    .summary = "a device with 8 MSI-X and 4 MSI vectors",
    .bar_size = {4096, 0, 8192},
    .mmio_read = vec_read,
    .mmio_write = vec_write,
    .vendor_id = 0x1b36,
    .device_id = 0x0010,
    .class_code = 0x010802,
    .revision = 2,
    .msi_vectors = 4,
    .msix_vectors = 8,
    .msix_bar = 2,
    .msix_table_off = 0x0,
    .msix_pba_off = 0x1000,
};

static void vec_open(struct dmahal_platform **p, struct dmahal_device **d)
{
    int rc = dmahal_model_register(&vec_model);

    CHECK(rc == 0 || rc == -EEXIST);
    CHECK_OK(dmahal_platform_open("sim", p));
    CHECK_OK(dmahal_device_open(*p, "test-msix", d));
}

TEST(irq_msix_vectors_are_separate)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint32_t table, pba;
    uint16_t ctl;
    unsigned cap, msi;
    int fds[8];

    vec_open(&p, &d);
    CHECK_EQ(dmahal_irq_count(d, DMAHAL_IRQ_INTX), 0);
    CHECK_ERR(dmahal_irq_enable(d, DMAHAL_IRQ_INTX, 1), -ENOTSUP);
    /* MSI grants a power of two. */
    CHECK_EQ(dmahal_irq_enable(d, DMAHAL_IRQ_MSI, 3), 2);
    CHECK_OK(dmahal_irq_disable(d));
    CHECK_EQ(dmahal_irq_enable(d, DMAHAL_IRQ_ANY, 0), 8);
    CHECK_EQ(dmahal_irq_mode(d, NULL), DMAHAL_IRQ_MSIX);
    for (unsigned v = 0; v < 8; v++) {
        fds[v] = dmahal_irq_fd(d, v);
        CHECK_GE(fds[v], 0);
    }
    dmahal_mmio_write32(d, 0, 0, 5);
    for (unsigned v = 0; v < 8; v++)
        CHECK_EQ(readable(fds[v]), v == 5);
    CHECK_OK(dmahal_irq_wait(d, 5, 0));
    CHECK_ERR(dmahal_irq_wait(d, 5, 0), -ETIMEDOUT);
    /* Two messages before the driver looks are one wake (an eventfd counts them). */
    dmahal_mmio_write32(d, 0, 0, 7);
    dmahal_mmio_write32(d, 0, 0, 7);
    CHECK_OK(dmahal_irq_wait(d, 7, 0));
    CHECK_EQ(dmahal_irq_raise(d, 8), -EINVAL);
    /* The capability says where the table and PBA are. */
    CHECK_OK(dmahal_config_find_cap(d, DMAHAL_PCI_CAP_ID_MSIX, &cap));
    CHECK_OK(dmahal_config_read(d, cap + 2, &ctl, sizeof(ctl)));
    CHECK_EQ_U(ctl, 0x8000 | 7);
    CHECK_OK(dmahal_config_read(d, cap + 4, &table, sizeof(table)));
    CHECK_OK(dmahal_config_read(d, cap + 8, &pba, sizeof(pba)));
    CHECK_EQ_U(table, 0x0 | 2);
    CHECK_EQ_U(pba, 0x1000 | 2);
    CHECK_OK(dmahal_config_find_cap(d, DMAHAL_PCI_CAP_ID_MSI, &msi));
    CHECK_NE(msi, cap);
    /* With fewer vectors enabled, a message past them is dropped. */
    CHECK_OK(dmahal_irq_disable(d));
    CHECK_EQ(dmahal_irq_enable(d, DMAHAL_IRQ_MSIX, 2), 2);
    CHECK_EQ(dmahal_irq_raise(d, 3), 0);
    CHECK_EQ(dmahal_irq_raise(d, 1), 1);
    CHECK_OK(dmahal_irq_wait(d, 1, 0));
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

/* ---- configuration space ----------------------------------------------------------------- */

TEST(config_edu_identity_is_qemus)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint8_t c[256];
    unsigned cap;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_config_read(d, 0, c, sizeof(c)));
    CHECK_EQ_U(c[0] | c[1] << 8, 0x1234);
    CHECK_EQ_U(c[2] | c[3] << 8, 0x11e8);
    CHECK_EQ_U(c[4] | c[5] << 8, 0); /* command: nothing enabled before an adapter */
    CHECK_EQ_U(c[8], 0x10);
    CHECK_EQ_U(c[9] | c[10] << 8 | c[11] << 16, 0x00ff00);
    CHECK_EQ_U(c[0x2c] | c[0x2d] << 8, 0x1af4);
    CHECK_EQ_U(c[0x2e] | c[0x2f] << 8, 0x1100);
    CHECK_EQ_U(c[0x3d], 1); /* INTA# */
    CHECK(c[6] & 0x10);     /* a capability list */
    CHECK_OK(dmahal_config_find_cap(d, DMAHAL_PCI_CAP_ID_MSI, &cap));
    CHECK_EQ_U(cap, 0x40);
    CHECK_EQ_U(c[cap + 2] & 0x80, 0x80);  /* 64-bit addresses */
    CHECK_EQ_U((c[cap + 2] >> 1) & 7, 0); /* one vector */
    CHECK_ERR(dmahal_config_find_cap(d, DMAHAL_PCI_CAP_ID_MSIX, &cap), -ENOENT);
    CHECK_EQ_U(cap, 0);
    /* BAR0 sizing: all ones reads back the size mask, and the address is restored. */
    uint32_t bar, ones = 0xffffffff;
    CHECK_OK(dmahal_config_read(d, 0x10, &bar, sizeof(bar)));
    CHECK_NE_U(bar, 0);
    CHECK_OK(dmahal_config_write(d, 0x10, &ones, sizeof(ones)));
    CHECK_OK(dmahal_config_read(d, 0x10, &ones, sizeof(ones)));
    CHECK_EQ_U(ones, 0xfff00000u); /* 1 MiB, 32-bit memory */
    CHECK_OK(dmahal_config_write(d, 0x10, &bar, sizeof(bar)));
    CHECK_OK(dmahal_config_read(d, 0x10, &ones, sizeof(ones)));
    CHECK_EQ_U(ones, bar);
    /* The IDs are read-only; the interrupt line is the firmware's scratch byte. */
    uint16_t junk = 0xbeef;
    CHECK_OK(dmahal_config_write(d, 0, &junk, sizeof(junk)));
    CHECK_OK(dmahal_config_read(d, 0, &junk, sizeof(junk)));
    CHECK_EQ_U(junk, 0x1234);
    uint8_t line = 11;
    CHECK_OK(dmahal_config_write(d, 0x3c, &line, 1));
    line = 0;
    CHECK_OK(dmahal_config_read(d, 0x3c, &line, 1));
    CHECK_EQ_U(line, 11);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(config_bad_arguments)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint8_t c[8];
    unsigned cap = 5;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_ERR(dmahal_config_read(NULL, 0, c, 4), -EINVAL);
    CHECK_ERR(dmahal_config_read(d, 0, NULL, 4), -EINVAL);
    CHECK_ERR(dmahal_config_read(d, 0, c, 0), -EINVAL);
    CHECK_ERR(dmahal_config_read(d, 256, c, 1), -EINVAL);
    CHECK_ERR(dmahal_config_read(d, 252, c, 8), -EINVAL);
    CHECK_ERR(dmahal_config_read(d, UINT32_MAX, c, 2), -EINVAL);
    CHECK_OK(dmahal_config_read(d, 252, c, 4));
    CHECK_ERR(dmahal_config_write(d, 255, c, 2), -EINVAL);
    CHECK_ERR(dmahal_config_write(NULL, 0, c, 2), -EINVAL);
    CHECK_ERR(dmahal_config_find_cap(NULL, 5, &cap), -EINVAL);
    CHECK_ERR(dmahal_config_find_cap(d, 5, NULL), -EINVAL);
    CHECK_ERR(dmahal_config_find_cap(d, 0x10, &cap), -ENOENT);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(config_dma_refused_without_bus_mastering)
{
    struct dmahal_platform *p;
    struct dmahal_device *d, *d2;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    struct dmahal_fault f;
    char x[16] = {0};
    uint16_t cmd;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_device_open(p, "edu", &d2));
    CHECK_EQ(dmahal_model_bus_master(d), 0);
    CHECK_OK(dmahal_adapter_get(d2, NULL, &a));
    CHECK_OK(dmahal_common_alloc(a, 4096, 0, &b));
    /* d has no adapter: its bus-master bit is clear and its DMA fails, as a fault. */
    CHECK_ERR(dmahal_dev_read(d, b.la, x, sizeof(x)), -EFAULT);
    CHECK_EQ_U(dmahal_fault_count(p), 1);
    CHECK_OK(dmahal_fault_get(p, 0, &f));
    CHECK_EQ(f.reason, DMAHAL_FAULT_BUS_MASTER);
    CHECK_STR(dmahal_fault_reason_name(f.reason), "bus mastering off");
    CHECK_STR(f.device, "edu");
    /* dmahal_adapter_get set d2's bit. */
    CHECK_EQ(dmahal_model_bus_master(d2), 1);
    CHECK_OK(dmahal_config_read(d2, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
    CHECK_EQ_U(cmd & (DMAHAL_PCI_COMMAND_MASTER | DMAHAL_PCI_COMMAND_MEMORY),
               DMAHAL_PCI_COMMAND_MASTER | DMAHAL_PCI_COMMAND_MEMORY);
    CHECK_OK(dmahal_dev_read(d2, b.la, x, sizeof(x)));
    /* The edu engine's DMA with the bit cleared again ends with a bus error. */
    cmd &= (uint16_t)~DMAHAL_PCI_COMMAND_MASTER;
    CHECK_OK(dmahal_config_write(d2, DMAHAL_PCI_COMMAND, &cmd, 2));
    CHECK_EQ(dmahal_model_bus_master(d2), 0);
    dmahal_mmio_write64(d2, 0, EDU_REG_DMA_SRC, b.la);
    dmahal_mmio_write64(d2, 0, EDU_REG_DMA_DST, EDU_BUF_ADDR);
    dmahal_mmio_write64(d2, 0, EDU_REG_DMA_CNT, 16);
    dmahal_mmio_write32(d2, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN);
    while (dmahal_mmio_read32(d2, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN)
        ;
    CHECK_EQ_U(dmahal_mmio_read32(d2, 0, EDU_REG_SIM_DMA_RESULT), EDU_DMA_ERR_BUS);
    CHECK_EQ_U(dmahal_fault_count(p), 2);
    CHECK_ERR(dmahal_model_bus_master(NULL), -EINVAL);
    dmahal_common_free(a, &b);
    dmahal_adapter_put(a);
    dmahal_device_close(d2);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(device_list_sim_names_the_models)
{
    struct dmahal_device_info *v;
    int n;
    bool edu = false;

    n = dmahal_device_list("sim", &v);
    CHECK_GE(n, 2);
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i].name, "edu") == 0) {
            edu = true;
            CHECK_EQ_U(v[i].vendor, 0x1234);
            CHECK_EQ_U(v[i].device, 0x11e8);
            CHECK(v[i].openable);
        }
    }
    CHECK(edu);
    free(v);
    CHECK_ERR(dmahal_device_list("sim", NULL), -EINVAL);
    CHECK_ERR(dmahal_device_list("no-such-platform", &v), -EINVAL);
    CHECK(v == NULL);
}
