/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_irq.c - interrupts and config space through VFIO on QEMU's edu, in the test guest:
 * the DMA-completion and factorial interrupts with INTx (masked by the kernel until
 * unmasked) and with MSI, the driver's interrupt mode against its polling mode (timed), the
 * config region's IDs and capabilities, devices named by their IDs, and QEMU's nvme with its
 * I/O completion queue on an MSI-X vector of its own, against the same I/O polled.
 */
#include "vm.h"

#include <dmahal/dmahal.h>

#include <poll.h>

#include "edu/edu_driver.h"
#include "nvme/nvme_driver.h"

struct rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
};

static void rig_open(struct rig *r)
{
    struct dmahal_desc desc = {.addr_bits = EDU_DEFAULT_ADDR_BITS};

    CHECK_OK(dmahal_platform_open("vfio", &r->p));
    CHECK_OK(dmahal_device_open(r->p, vm_dev("DMAHAL_VM_EDU"), &r->d));
    CHECK_OK(dmahal_adapter_get(r->d, &desc, &r->a));
    CHECK_OK(dmahal_common_alloc(r->a, 4096, 0, &r->b));
}

static void rig_close(struct rig *r)
{
    dmahal_common_free(r->a, &r->b);
    dmahal_adapter_put(r->a);
    dmahal_device_close(r->d);
    dmahal_platform_close(r->p);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts a DMA of 64 bytes into the device's buffer that raises the DMA interrupt. */
static void dma_irq(struct rig *r)
{
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_SRC, r->b.la);
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_DST, EDU_BUF_ADDR);
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_CNT, 64);
    dmahal_mmio_write64(r->d, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN | EDU_CMD_IRQ);
}

TEST(irq_counts_from_the_kernel)
{
    struct rig r;

    rig_open(&r);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_INTX), 1);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_MSI), 1);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_MSIX), 0);
    CHECK_ERR(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSIX, 1), -ENOTSUP);
    rig_close(&r);
}

TEST(irq_intx_dma_completion_masked_until_unmasked)
{
    struct rig r;
    int fd;

    rig_open(&r);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    dma_irq(&r);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 5000)); /* QEMU's edu takes 100 ms */
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), EDU_IRQ_DMA);
    /* The kernel masked the line: a raise while masked does not reach the fd. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x10);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 200), -ETIMEDOUT);
    /* Unmasked with the line still up, it fires again (a level). */
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_OK(dmahal_irq_wait(r.d, 0, 2000));
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_DMA | 0x10);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 200), -ETIMEDOUT);
    /* The fd, in the driver's own poll loop. */
    fd = dmahal_irq_fd(r.d, 0);
    CHECK_GE(fd, 0);
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, EDU_STATUS_IRQFACT);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 10);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 5000), 1);
    uint64_t cnt;
    CHECK_EQ(read(fd, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), EDU_IRQ_FACT);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 3628800);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_FACT);
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_OK(dmahal_irq_disable(r.d));
    rig_close(&r);
}

TEST(irq_msi_dma_completion)
{
    struct rig r;

    rig_open(&r);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSI, 1), 1);
    dma_irq(&r);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 5000));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), EDU_IRQ_DMA);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_DMA);
    CHECK_OK(dmahal_irq_unmask(r.d, 0)); /* a no-op for MSI */
    /* Each raise is a message. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x2);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 2000));
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x2);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 100), -ETIMEDOUT);
    /* Disabled, then enabled with the other type: the kernel switches index. */
    CHECK_OK(dmahal_irq_disable(r.d));
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x2);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 2000));
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x2);
    rig_close(&r);
}

/* The driver's two modes on the same transfers; the ratio is recorded, not judged. */
TEST(irq_driver_interrupt_vs_polling_timed)
{
    static const int modes[] = {0, DMAHAL_IRQ_INTX, DMAHAL_IRQ_MSI};
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e;
    unsigned char data[256] = {1, 2, 3}, back[256];
    double secs[3];

    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    for (int m = 0; m < 3; m++) {
        double t0;

        CHECK_OK(edu_attach(d, EDU_DEFAULT_ADDR_BITS, &e));
        if (modes[m])
            CHECK_OK(edu_irq_enable(e, (enum dmahal_irq_type)modes[m]));
        t0 = now();
        for (int i = 0; i < 5; i++) {
            CHECK_OK(edu_write(e, 0, data, sizeof(data)));
            CHECK_OK(edu_read(e, 0, back, sizeof(back)));
            CHECK_EQ(memcmp(data, back, sizeof(data)), 0);
        }
        secs[m] = (now() - t0) / 10;
        edu_detach(e);
    }
    printf("edu DMA completion, per transfer: polling %.2f ms, INTx %.2f ms (%.3fx), MSI %.2f ms "
           "(%.3fx)\n",
           secs[0] * 1e3, secs[1] * 1e3, secs[1] / secs[0], secs[2] * 1e3, secs[2] / secs[0]);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(config_region_ids_and_msi_capability)
{
    struct rig r;
    uint16_t id[2], cmd;
    uint8_t cls[3];
    unsigned cap;

    rig_open(&r);
    CHECK_OK(dmahal_config_read(r.d, 0, id, sizeof(id)));
    CHECK_EQ_U(id[0], 0x1234);
    CHECK_EQ_U(id[1], 0x11e8);
    CHECK_OK(dmahal_config_read(r.d, 9, cls, sizeof(cls)));
    CHECK_EQ_U(cls[2], 0x00); /* PCI_CLASS_OTHERS: class 00, subclass ff */
    CHECK_EQ_U(cls[1], 0xff);
    /* What the sim's edu model claims to copy: revision, subsystem, the MSI capability. */
    uint8_t rev;
    uint16_t sub[2], ctl;
    CHECK_OK(dmahal_config_read(r.d, 8, &rev, 1));
    CHECK_EQ_U(rev, 0x10);
    CHECK_OK(dmahal_config_read(r.d, 0x2c, sub, sizeof(sub)));
    CHECK_EQ_U(sub[0], 0x1af4);
    CHECK_EQ_U(sub[1], 0x1100);
    CHECK_OK(dmahal_config_find_cap(r.d, DMAHAL_PCI_CAP_ID_MSI, &cap));
    CHECK_EQ_U(cap, 0x40);
    CHECK_OK(dmahal_config_read(r.d, cap + 2, &ctl, sizeof(ctl)));
    CHECK_EQ_U(ctl & 0x80, 0x80); /* 64-bit */
    CHECK_EQ_U(ctl & 0x0e, 0);    /* one vector */
    CHECK_ERR(dmahal_config_find_cap(r.d, DMAHAL_PCI_CAP_ID_MSIX, &cap), -ENOENT);
    CHECK_OK(dmahal_config_read(r.d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd)));
    CHECK(cmd & DMAHAL_PCI_COMMAND_MASTER);
    CHECK_ERR(dmahal_config_read(r.d, 4096, &cmd, 2), -EINVAL);
    rig_close(&r);
}

TEST(device_open_by_ids)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct vm_capture c;
    int rc;

    CHECK_OK(dmahal_platform_open("vfio", &p));
    /* 00:03.0 and 00:04.0 are both edus: the first match, then the second. */
    CHECK_OK(dmahal_device_open(p, "1234:11e8", &d));
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, EDU_REG_ID) & EDU_ID_MASK, EDU_ID_VALUE);
    dmahal_device_close(d);
    CHECK_OK(dmahal_device_open(p, "1234:11e8#1", &d));
    dmahal_device_close(d);
    vm_capture_begin(&c);
    rc = dmahal_device_open(p, "1234:11e8#2", &d);
    vm_capture_end(&c);
    CHECK_ERR(rc, -ENXIO);
    CHECK_CONTAINS(c.text, "no PCI device 1234:11e8#2");
    vm_capture_begin(&c);
    rc = dmahal_device_open(p, "dead:beef", &d);
    vm_capture_end(&c);
    CHECK_ERR(rc, -ENXIO);
    vm_capture_begin(&c);
    rc = dmahal_device_open(p, "1234:11e8#x", &d);
    vm_capture_end(&c);
    CHECK_ERR(rc, -EINVAL);
    dmahal_platform_close(p);
}

/* Writes and reads back 64 blocks, 20 times; returns the seconds per round trip. */
static double nvme_round_trips(struct nvme *n)
{
    struct nvme_info info;
    struct dmahal_buf b;
    double t0;

    CHECK_OK(nvme_identify(n, &info));
    CHECK_OK(dmahal_common_alloc(nvme_adapter(n), 64 * info.lba_size, 0, &b));
    t0 = now();
    for (unsigned i = 0; i < 20; i++) {
        memset(b.va, (int)i + 1, b.len);
        CHECK_OK(nvme_io(n, NVME_CMD_WRITE, 128, 64, &b, 0, NULL));
        memset(b.va, 0, b.len);
        CHECK_OK(nvme_io(n, NVME_CMD_READ, 128, 64, &b, 0, NULL));
        CHECK_EQ(((unsigned char *)b.va)[b.len - 1], i + 1);
    }
    t0 = (now() - t0) / 20;
    dmahal_common_free(nvme_adapter(n), &b);
    return t0;
}

TEST(nvme_io_completions_on_msix)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct nvme *n;
    double polled, irq;
    unsigned nvec;

    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_NVME"), &d));
    CHECK_GE(dmahal_irq_count(d, DMAHAL_IRQ_MSIX), 2);
    CHECK_OK(nvme_open_flags(d, 0, &n));
    CHECK_EQ(nvme_irq_type(n), 0);
    polled = nvme_round_trips(n);
    nvme_close(n);
    CHECK_OK(nvme_open_flags(d, NVME_OPEN_IRQ, &n));
    CHECK_EQ(nvme_irq_type(n), DMAHAL_IRQ_MSIX);
    CHECK_EQ(dmahal_irq_mode(d, &nvec), DMAHAL_IRQ_MSIX);
    CHECK_EQ(nvec, 2);
    irq = nvme_round_trips(n);
    nvme_close(n);
    CHECK_EQ(dmahal_irq_mode(d, NULL), 0);
    printf("nvme 32 KiB write+read: polled %.3f ms, MSI-X %.3f ms (%.3fx)\n", polled * 1e3,
           irq * 1e3, irq / polled);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}
