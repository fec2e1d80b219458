/* SPDX-License-Identifier: MIT */
/*
 * device.c - PCI devices through VFIO: the device fd, its BARs mapped or reached by pread/pwrite,
 * bus mastering.
 */
#include "platform/vfio/vfio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- devices ---------------------------------------------------------------------------- */

/* Accepts "VVVV:DDDD" and "VVVV:DDDD#N" (N decimal, 0 the first match). */
static bool ids_parse(const char *name, unsigned *vendor, unsigned *device, unsigned *nth)
{
    const char *s = name + 9;

    *nth = 0;
    if (strlen(name) < 9 || !dmahal__hex_field(name, 4, vendor) || name[4] != ':' ||
        !dmahal__hex_field(name + 5, 4, device))
        return false;
    if (*s == '\0')
        return true;
    if (*s++ != '#' || *s == '\0' || strlen(s) > 4)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        *nth = *nth * 10 + (unsigned)(*s - '0');
    }
    return true;
}

/* Checks that @addr exists, has an IOMMU group and is bound to vfio-pci; sets @group. */
static int device_check(const char *addr, int *group)
{
    char path[PATH_MAX], name[256], cmd[512];

    snprintf(path, sizeof(path), SYSFS_PCI "/%s", addr);
    if (access(path, F_OK)) {
        dmahal__vfio_say("no PCI device %s (dmahal devices lists them)", addr);
        return -ENXIO;
    }
    if (dmahal__sysfs_link_base(SYSFS_PCI, addr, "iommu_group", name, sizeof(name))) {
        dmahal__vfio_say(
            "%s has no IOMMU group: the IOMMU is off. Enable VT-d or AMD-Vi in the firmware "
            "and boot with intel_iommu=on or amd_iommu=on",
            addr);
        return -ENODEV;
    }
    *group = atoi(name);
    snprintf(cmd, sizeof(cmd),
             "echo vfio-pci > " SYSFS_PCI "/%s/driver_override; "
             "echo %s > /sys/bus/pci/drivers_probe",
             addr, addr);
    if (dmahal__sysfs_link_base(SYSFS_PCI, addr, "driver", name, sizeof(name))) {
        dmahal__vfio_say("%s is bound to no driver; bind it to vfio-pci: modprobe vfio-pci; %s",
                         addr, cmd);
        return -ENODEV;
    }
    if (strcmp(name, "vfio-pci") != 0) {
        dmahal__vfio_say("%s is bound to %s, not vfio-pci; rebind it: echo %s > " SYSFS_PCI
                         "/%s/driver/unbind; %s",
                         addr, name, addr, addr, cmd);
        return -EBUSY;
    }
    return 0;
}

static int bus_master(struct vfio_dev *vd, bool on)
{
    return dmahal__pci_bus_master(vd->fd, vd->cfg_offset, on);
}

static int regions_setup(struct dmahal_device *d, struct vfio_dev *vd)
{
    struct vfio_device_info info = {.argsz = sizeof(info)};
    struct vfio_region_info ri = {.argsz = sizeof(ri)};

    if (ioctl(vd->fd, VFIO_DEVICE_GET_INFO, &info)) {
        dmahal__vfio_say("VFIO_DEVICE_GET_INFO on %s failed: %s", dmahal__dev(d)->name,
                         strerror(errno));
        return -errno;
    }
    if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
        dmahal__vfio_say("%s is not a PCI device", dmahal__dev(d)->name);
        return -ENOTSUP;
    }
    for (unsigned i = VFIO_PCI_BAR0_REGION_INDEX; i < DMAHAL__BARS; i++) {
        struct vfio_bar *b = &vd->bar[i];
        void *map;

        ri = (struct vfio_region_info){.argsz = sizeof(ri), .index = i};
        if (ioctl(vd->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) || !ri.size ||
            !(ri.flags & VFIO_REGION_INFO_FLAG_READ))
            continue;
        b->offset = ri.offset;
        b->size = ri.size;
        dmahal__dev(d)->bar_size[i] = ri.size;
        if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP))
            continue;
        /* A BAR holding an MSI-X table may refuse a whole mapping: pread/pwrite then. */
        map = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, vd->fd, (off_t)ri.offset);
        if (map != MAP_FAILED)
            b->map = map;
    }
    ri = (struct vfio_region_info){.argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX};
    if (ioctl(vd->fd, VFIO_DEVICE_GET_REGION_INFO, &ri)) {
        dmahal__vfio_say("cannot find the config space of %s: %s", dmahal__dev(d)->name,
                         strerror(errno));
        return -errno;
    }
    vd->cfg_offset = ri.offset;
    vd->cfg_size = ri.size > 4096 ? 4096 : (unsigned)ri.size;
    return 0;
}

static void regions_unmap(struct vfio_dev *vd)
{
    for (unsigned i = 0; i < DMAHAL__BARS; i++)
        if (vd->bar[i].map)
            munmap((void *)vd->bar[i].map, vd->bar[i].size);
}

int dmahal__vfio_device_open(struct dmahal_device *d, const char *name)
{
    struct vfio_plat *vp = dmahal__dev_plat(d)->priv;
    struct vfio_dev *vd;
    char addr[32];
    unsigned vendor, devid, nth;
    int group, rc;

    if (ids_parse(name, &vendor, &devid, &nth)) {
        rc = dmahal__vfio_find_ids(vendor, devid, nth, addr, sizeof(addr));
        if (rc) {
            dmahal__vfio_say("no PCI device %04x:%04x%s (dmahal devices lists them)", vendor, devid,
                             strchr(name, '#') ? strchr(name, '#') : "");
            return rc;
        }
    } else if (dmahal__pci_addr_parse(name, addr, sizeof(addr))) {
        dmahal__vfio_say("\"%s\" is not a PCI address (DDDD:BB:SS.F, e.g. 0000:00:03.0) nor "
                         "IDs (VVVV:DDDD or VVVV:DDDD#N); device models are the sim platform's",
                         name);
        return -EINVAL;
    }
    rc = device_check(addr, &group);
    if (rc)
        return rc;
    vd = calloc(1, sizeof(*vd));
    if (!vd)
        return -ENOMEM;
    vd->irq_index = -1;
    pthread_mutex_lock(&vp->lock);
    rc = dmahal__vfio_group_get(dmahal__dev(d)->p, group, &vd->group);
    /* Every device of the container shares its IOVA space. */
    dmahal__dev(d)->iova = rc ? NULL : vp->dom;
    pthread_mutex_unlock(&vp->lock);
    if (rc)
        goto err_alloc;
    vd->fd = ioctl(vd->group->fd, VFIO_GROUP_GET_DEVICE_FD, addr);
    if (vd->fd < 0) {
        rc = -errno;
        dmahal__vfio_say("cannot get %s from IOMMU group %d: %s%s", addr, group, strerror(errno),
                         errno == EBUSY ? " (it is open already)" : "");
        goto err_group;
    }
    rc = regions_setup(d, vd);
    if (rc)
        goto err_fd;
    rc = bus_master(vd, true);
    if (rc) {
        dmahal__vfio_say("cannot enable bus mastering on %s: %s", addr, strerror(-rc));
        goto err_map;
    }
    dmahal__dev(d)->priv = vd;
    return 0;

err_map:
    regions_unmap(vd);
err_fd:
    close(vd->fd);
err_group:
    dmahal__dev(d)->iova = NULL;
    pthread_mutex_lock(&vp->lock);
    dmahal__vfio_group_put(vp, vd->group);
    pthread_mutex_unlock(&vp->lock);
err_alloc:
    free(vd);
    return rc;
}

void dmahal__vfio_device_close(struct dmahal_device *d)
{
    struct vfio_plat *vp = dmahal__dev_plat(d)->priv;
    struct vfio_dev *vd = dmahal__dev(d)->priv;

    /* Its buffers are freed already: a device still mastering now would fault. */
    bus_master(vd, false);
    regions_unmap(vd);
    close(vd->fd);
    dmahal__dev(d)->iova = NULL;
    pthread_mutex_lock(&vp->lock);
    dmahal__vfio_group_put(vp, vd->group);
    pthread_mutex_unlock(&vp->lock);
    free(vd);
}

uint64_t dmahal__vfio_mmio_read(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size)
{
    struct vfio_bar *b = &((struct vfio_dev *)dmahal__dev(d)->priv)->bar[bar];
    uint64_t v = 0;

    if (b->map)
        return size == 8 ? *(volatile uint64_t *)(b->map + off)
                         : *(volatile uint32_t *)(b->map + off);
    if (pread(((struct vfio_dev *)dmahal__dev(d)->priv)->fd, &v, size, (off_t)(b->offset + off)) !=
        size)
        return size == 8 ? UINT64_MAX : UINT32_MAX; /* what a failed PCI read returns */
    return v;
}

void dmahal__vfio_mmio_write(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                             unsigned size)
{
    struct vfio_bar *b = &((struct vfio_dev *)dmahal__dev(d)->priv)->bar[bar];
    uint32_t v32 = (uint32_t)val;

    if (b->map) {
        if (size == 8)
            *(volatile uint64_t *)(b->map + off) = val;
        else
            *(volatile uint32_t *)(b->map + off) = v32;
        return;
    }
    /* A write the device drops is what a failed posted write does too: nothing to report. */
    if (pwrite(((struct vfio_dev *)dmahal__dev(d)->priv)->fd,
               size == 8 ? (void *)&val : (void *)&v32, size, (off_t)(b->offset + off)) != size)
        return;
}
