/* SPDX-License-Identifier: MIT */
/*
 * irq.c - a VFIO device's interrupts and configuration space. Each vector's eventfd (made
 * by the core) is handed to the kernel with VFIO_DEVICE_SET_IRQS; the kernel signals it from
 * its interrupt handler. INTx is auto-masked by vfio-pci when it fires and unmasked with
 * VFIO_IRQ_SET_ACTION_UNMASK. The config region is read and written with pread/pwrite; the
 * kernel virtualises the parts a user must not touch (the MSI/MSI-X capabilities, the BARs).
 */
#include "platform/vfio/vfio.h"

#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static struct vfio_dev *vdev(struct dmahal_device *d)
{
    return dmahal__dev(d)->priv;
}

static int irq_index(enum dmahal_irq_type type)
{
    switch (type) {
    case DMAHAL_IRQ_INTX:
        return VFIO_PCI_INTX_IRQ_INDEX;
    case DMAHAL_IRQ_MSI:
        return VFIO_PCI_MSI_IRQ_INDEX;
    case DMAHAL_IRQ_MSIX:
        return VFIO_PCI_MSIX_IRQ_INDEX;
    default:
        return -1;
    }
}

unsigned dmahal__vfio_irq_count(struct dmahal_device *d, enum dmahal_irq_type type)
{
    struct vfio_irq_info info = {.argsz = sizeof(info), .index = (unsigned)irq_index(type)};

    if (irq_index(type) < 0 || ioctl(vdev(d)->fd, VFIO_DEVICE_GET_IRQ_INFO, &info))
        return 0;
    if (!(info.flags & VFIO_IRQ_INFO_EVENTFD))
        return 0;
    return info.count;
}

/* One VFIO_DEVICE_SET_IRQS with @n eventfds (or none, for DATA_NONE actions). */
static int set_irqs(struct vfio_dev *vd, unsigned index, unsigned flags, unsigned start, unsigned n,
                    const int *fds)
{
    size_t data = fds ? n * sizeof(int32_t) : 0;
    struct vfio_irq_set *set = calloc(1, sizeof(*set) + data);
    int rc = 0;

    if (!set)
        return -ENOMEM;
    set->argsz = (uint32_t)(sizeof(*set) + data);
    set->flags = flags;
    set->index = index;
    set->start = start;
    set->count = n;
    for (unsigned i = 0; fds && i < n; i++)
        ((int32_t *)(void *)set->data)[i] = fds[i];
    if (ioctl(vd->fd, VFIO_DEVICE_SET_IRQS, set))
        rc = -errno;
    free(set);
    return rc;
}

int dmahal__vfio_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec,
                            int *fds)
{
    struct vfio_dev *vd = vdev(d);
    int index = irq_index(type);
    int rc;

    rc = set_irqs(vd, (unsigned)index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                  nvec, fds);
    if (rc) {
        dmahal__vfio_say("cannot enable %u %s vector(s) on %s: %s", nvec,
                         type == DMAHAL_IRQ_INTX  ? "INTx"
                         : type == DMAHAL_IRQ_MSI ? "MSI"
                                                  : "MSI-X",
                         dmahal__dev(d)->name, strerror(-rc));
        return rc;
    }
    vd->irq_index = index;
    vd->irq_nvec = nvec;
    return 0;
}

void dmahal__vfio_irq_disable(struct dmahal_device *d)
{
    struct vfio_dev *vd = vdev(d);

    /* DATA_NONE | TRIGGER with count 0 tears the index down (and frees its vectors). */
    if (vd->irq_index >= 0)
        set_irqs(vd, (unsigned)vd->irq_index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                 0, 0, NULL);
    vd->irq_index = -1;
    vd->irq_nvec = 0;
}

int dmahal__vfio_irq_unmask(struct dmahal_device *d, unsigned vector)
{
    return set_irqs(vdev(d), VFIO_PCI_INTX_IRQ_INDEX,
                    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, vector, 1, NULL);
}

unsigned dmahal__vfio_config_size(struct dmahal_device *d)
{
    return vdev(d)->cfg_size;
}

int dmahal__vfio_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len)
{
    struct vfio_dev *vd = vdev(d);
    ssize_t n = pread(vd->fd, buf, len, (off_t)(vd->cfg_offset + off));

    return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int dmahal__vfio_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len)
{
    struct vfio_dev *vd = vdev(d);
    ssize_t n = pwrite(vd->fd, buf, len, (off_t)(vd->cfg_offset + off));

    return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}
