/* SPDX-License-Identifier: MIT */
/*
 * device.c - PCI devices without an IOMMU: found by address or vendor:device in sysfs, bound to
 * uio_pci_generic (or vfio-pci in no-IOMMU mode), BARs through the resourceN files, the
 * configuration space through the config file, bus mastering.
 */
#include "platform/noiommu/noiommu.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define IORESOURCE_MEM 0x200ul /* include/linux/ioport.h */

/* "VVVV:DDDD": the first device by address with those IDs. */
static int find_by_id(const struct nio_plat *np, const char *name, char *out, size_t size)
{
    unsigned ven, devid;
    struct dirent **list;
    int n, rc = -ENOENT;

    if (strlen(name) != 9 || !dmahal__hex_field(name, 4, &ven) || name[4] != ':' ||
        !dmahal__hex_field(name + 5, 4, &devid)) {
        dmahal__nio_say("\"%s\" is neither a PCI address (DDDD:BB:SS.F) nor a vendor:device "
                        "(VVVV:DDDD, e.g. 1234:11e8)",
                        name);
        return -EINVAL;
    }
    n = scandir(np->sysfs, &list, NULL, alphasort);
    if (n < 0) {
        dmahal__nio_say("cannot list %s: %s", np->sysfs, strerror(errno));
        return -errno;
    }
    for (int i = 0; i < n; i++) {
        unsigned long v, d;

        if (rc == -ENOENT && list[i]->d_name[0] != '.' &&
            dmahal__sysfs_num(np->sysfs, list[i]->d_name, "vendor", &v) && v == ven &&
            dmahal__sysfs_num(np->sysfs, list[i]->d_name, "device", &d) && d == devid &&
            strlen(list[i]->d_name) < size) {
            memcpy(out, list[i]->d_name, strlen(list[i]->d_name) + 1);
            rc = 0;
        }
        free(list[i]);
    }
    free(list);
    if (rc)
        dmahal__nio_say("no PCI device %04x:%04x in %s (see lspci -nn)", ven, devid, np->sysfs);
    return rc;
}

/* vfio-pci serves a device without an IOMMU only in the kernel's no-IOMMU mode. */
static int vfio_noiommu_check(const struct nio_plat *np, const char *addr)
{
    char group[64], path[PATH_MAX + 64], mode = 'N';
    FILE *f = fopen("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", "re");

    if (!f) {
        dmahal__nio_say("%s is bound to vfio-pci, but this kernel has no VFIO no-IOMMU mode "
                        "(CONFIG_VFIO_NOIOMMU; Debian's kernel lacks it): bind it to "
                        "uio_pci_generic instead",
                        addr);
        return -ENODEV;
    }
    if (fscanf(f, "%c", &mode) != 1)
        mode = 'N';
    fclose(f);
    snprintf(path, sizeof(path), "iommu_group");
    if (mode != 'Y' || dmahal__sysfs_link_base(np->sysfs, addr, path, group, sizeof(group))) {
        dmahal__nio_say("%s is bound to vfio-pci without no-IOMMU mode: echo 1 > "
                        "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode before binding "
                        "it, or bind it to uio_pci_generic",
                        addr);
        return -ENODEV;
    }
    return 0;
}

/* Checks the device and its driver; fills nd->driver. */
static int device_check(const struct nio_plat *np, struct nio_dev *nd)
{
    char path[PATH_MAX + 64];
    unsigned long ven = 0, dev = 0;
    const char *addr = nd->addr;

    snprintf(path, sizeof(path), "%s/%s", np->sysfs, addr);
    if (access(path, F_OK)) {
        dmahal__nio_say("no PCI device %s (see ls %s)", addr, np->sysfs);
        return -ENOENT;
    }
    dmahal__sysfs_num(np->sysfs, addr, "vendor", &ven);
    dmahal__sysfs_num(np->sysfs, addr, "device", &dev);
    if (dmahal__sysfs_link_base(np->sysfs, addr, "driver", nd->driver, sizeof(nd->driver))) {
        dmahal__nio_say("%s is bound to no driver; bind it to uio_pci_generic: modprobe "
                        "uio_pci_generic; echo %04lx %04lx > "
                        "/sys/bus/pci/drivers/uio_pci_generic/new_id",
                        addr, ven, dev);
        return -ENODEV;
    }
    if (strcmp(nd->driver, "uio_pci_generic") == 0)
        return 0;
    if (strcmp(nd->driver, "vfio-pci") == 0)
        return vfio_noiommu_check(np, addr);
    dmahal__nio_say("%s is bound to %s, not uio_pci_generic; rebind it: echo %s > "
                    "/sys/bus/pci/devices/%s/driver/unbind; echo uio_pci_generic > "
                    "/sys/bus/pci/devices/%s/driver_override; echo %s > "
                    "/sys/bus/pci/drivers_probe",
                    addr, nd->driver, addr, addr, addr, addr);
    return -EBUSY;
}

static int cfg_rw(struct nio_dev *nd, bool write, unsigned off, void *buf, size_t len)
{
    return dmahal__pci_cfg_rw(nd->cfg_fd, 0, write, off, buf, len);
}

static int bus_master(struct nio_dev *nd, bool on)
{
    return dmahal__pci_bus_master(nd->cfg_fd, 0, on);
}

/* Maps every memory BAR the sysfs resource file lists. */
static int bars_map(const struct nio_plat *np, struct dmahal_device *d, struct nio_dev *nd)
{
    char path[PATH_MAX + 64], line[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/resource", np->sysfs, nd->addr);
    f = fopen(path, "re");
    if (!f) {
        dmahal__nio_say("cannot read %s: %s", path, strerror(errno));
        return -errno;
    }
    for (unsigned i = 0; i < DMAHAL__BARS && fgets(line, sizeof(line), f); i++) {
        unsigned long long start, end, flags;
        uint64_t size;
        void *map;
        int fd;

        if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3 || end <= start ||
            !(flags & IORESOURCE_MEM))
            continue;
        size = end - start + 1;
        snprintf(path, sizeof(path), "%s/%s/resource%u", np->sysfs, nd->addr, i);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
            continue;
        nd->bar[i].map = map;
        nd->bar[i].size = size;
        dmahal__dev(d)->bar_size[i] = size;
    }
    fclose(f);
    return 0;
}

static void bars_unmap(struct nio_dev *nd)
{
    for (unsigned i = 0; i < DMAHAL__BARS; i++)
        if (nd->bar[i].map)
            munmap((void *)nd->bar[i].map, nd->bar[i].size);
}

/* The uio node of the device (/dev/uioN), for its interrupt; -1 if it has none. */
static int uio_open(const struct nio_plat *np, const struct nio_dev *nd)
{
    char path[PATH_MAX + 300];
    struct dirent *e;
    DIR *dir;
    int fd = -1;

    snprintf(path, sizeof(path), "%s/%s/uio", np->sysfs, nd->addr);
    dir = opendir(path);
    if (!dir)
        return -1;
    while (fd < 0 && (e = readdir(dir)))
        if (strncmp(e->d_name, "uio", 3) == 0) {
            snprintf(path, sizeof(path), "%s/%s", np->dev_dir, e->d_name);
            fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
        }
    closedir(dir);
    return fd;
}

int dmahal__nio_device_open(struct dmahal_device *d, const char *name)
{
    struct nio_plat *np = dmahal__dev_plat(d)->priv;
    char path[PATH_MAX + 64];
    struct nio_dev *nd;
    int rc;

    nd = calloc(1, sizeof(*nd));
    if (!nd)
        return -ENOMEM;
    nd->cfg_fd = nd->uio_fd = nd->irq_fd = -1;
    if (dmahal__pci_addr_parse(name, nd->addr, sizeof(nd->addr))) {
        rc = find_by_id(np, name, nd->addr, sizeof(nd->addr));
        if (rc)
            goto err_free;
    }
    rc = device_check(np, nd);
    if (rc)
        goto err_free;
    snprintf(path, sizeof(path), "%s/%s/config", np->sysfs, nd->addr);
    nd->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
    if (nd->cfg_fd < 0) {
        rc = errno == EACCES || errno == EPERM ? -EACCES : -errno;
        dmahal__nio_say("cannot open %s: %s%s", path, strerror(errno),
                        rc == -EACCES ? " (run as root)" : "");
        goto err_free;
    }
    rc = bars_map(np, d, nd);
    if (rc)
        goto err_cfg;
    nd->uio_fd = uio_open(np, nd);
    dmahal__dev(d)->priv = nd;
    return 0;

err_cfg:
    close(nd->cfg_fd);
err_free:
    free(nd);
    return rc;
}

void dmahal__nio_device_close(struct dmahal_device *d)
{
    struct nio_dev *nd = dmahal__dev(d)->priv;

    /* Its buffers are freed already: a device still mastering now would write anywhere. */
    if (nd->master)
        bus_master(nd, false);
    bars_unmap(nd);
    if (nd->uio_fd >= 0)
        close(nd->uio_fd);
    close(nd->cfg_fd);
    free(nd);
}

/* ---- configuration space and INTx through uio ------------------------------------------ */

unsigned dmahal__nio_config_size(struct dmahal_device *d)
{
    struct nio_dev *nd = dmahal__dev(d)->priv;
    off_t end = lseek(nd->cfg_fd, 0, SEEK_END);

    /* sysfs gives 4096 bytes for PCIe devices, 256 for conventional PCI. */
    return end >= 4096 ? 4096 : 256;
}

int dmahal__nio_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len)
{
    return cfg_rw(dmahal__dev(d)->priv, false, off, buf, len);
}

int dmahal__nio_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len)
{
    return cfg_rw(dmahal__dev(d)->priv, true, off, (void *)buf, len);
}

unsigned dmahal__nio_irq_count(struct dmahal_device *d, enum dmahal_irq_type type)
{
    struct nio_dev *nd = dmahal__dev(d)->priv;

    /* uio_pci_generic serves the line only; MSI would need vfio-pci. */
    return type == DMAHAL_IRQ_INTX && nd->uio_fd >= 0 ? 1 : 0;
}

/* uio_pci_generic masks INTx on each interrupt with the command register's Interrupt
 * Disable bit, and has no irqcontrol: user space clears the bit to unmask (the kernel's
 * uio howto does the same). */
static int uio_control(struct nio_dev *nd, int32_t on)
{
    uint16_t cmd;
    int rc = cfg_rw(nd, false, PCI_COMMAND, &cmd, sizeof(cmd));

    if (rc)
        return rc;
    if (on)
        cmd &= (uint16_t)~PCI_COMMAND_INTX_DISABLE;
    else
        cmd |= PCI_COMMAND_INTX_DISABLE;
    return cfg_rw(nd, true, PCI_COMMAND, &cmd, sizeof(cmd));
}

int dmahal__nio_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec,
                           int *fds)
{
    struct nio_dev *nd = dmahal__dev(d)->priv;
    int rc;

    if (type != DMAHAL_IRQ_INTX || nvec != 1 || nd->uio_fd < 0)
        return -ENOTSUP;
    /* The uio fd is readable once per interrupt: it is the vector's fd, as a copy that
     * irq_disable closes. */
    nd->irq_fd = fcntl(nd->uio_fd, F_DUPFD_CLOEXEC, 0);
    if (nd->irq_fd < 0)
        return -errno;
    rc = uio_control(nd, 1);
    if (rc) {
        close(nd->irq_fd);
        nd->irq_fd = -1;
        return rc;
    }
    fds[0] = nd->irq_fd;
    return 0;
}

void dmahal__nio_irq_disable(struct dmahal_device *d)
{
    struct nio_dev *nd = dmahal__dev(d)->priv;

    uio_control(nd, 0);
    close(nd->irq_fd);
    nd->irq_fd = -1;
}

int dmahal__nio_irq_unmask(struct dmahal_device *d, unsigned vector)
{
    (void)vector;
    return uio_control(dmahal__dev(d)->priv, 1);
}

int dmahal__nio_irq_consume(struct dmahal_device *d, unsigned vector, int fd)
{
    int32_t count;
    ssize_t n = read(fd, &count, sizeof(count));

    (void)d;
    (void)vector;
    if (n == (ssize_t)sizeof(count))
        return 1;
    return n < 0 && errno != EAGAIN ? -errno : 0;
}

int dmahal__nio_adapter_init(struct dmahal_adapter *a)
{
    struct nio_dev *nd = dmahal__adp_dev(a)->priv;
    int rc;

    if (nd->master)
        return 0;
    rc = bus_master(nd, true);
    if (rc) {
        dmahal__nio_say("cannot enable bus mastering on %s: %s", nd->addr, strerror(-rc));
        return rc;
    }
    nd->master = true;
    return 0;
}

uint64_t dmahal__nio_mmio_read(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size)
{
    struct nio_bar *b = &((struct nio_dev *)dmahal__dev(d)->priv)->bar[bar];

    return size == 8 ? *(volatile uint64_t *)(b->map + off) : *(volatile uint32_t *)(b->map + off);
}

void dmahal__nio_mmio_write(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                            unsigned size)
{
    struct nio_bar *b = &((struct nio_dev *)dmahal__dev(d)->priv)->bar[bar];

    if (size == 8)
        *(volatile uint64_t *)(b->map + off) = val;
    else
        *(volatile uint32_t *)(b->map + off) = (uint32_t)val;
}
