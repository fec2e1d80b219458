/* SPDX-License-Identifier: MIT */
/*
 * list.c - the PCI devices sysfs shows, as `dmahal devices` prints them: IDs, class, IOMMU
 * group, driver, and whether the vfio platform can open each (if not, the one-line fix),
 * like dpdk-devbind.py --status. Also the lookup behind "VVVV:DDDD#N" device names.
 */
#include "platform/vfio/vfio.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct dmahal_device_info *)a)->name,
                  ((const struct dmahal_device_info *)b)->name);
}

/* Drivers that leave a group viable for VFIO besides vfio-pci itself. */
static bool vfio_friendly(const char *drv)
{
    return !*drv || strcmp(drv, "vfio-pci") == 0 || strcmp(drv, "pci-stub") == 0 ||
           strcmp(drv, "pcieport") == 0;
}

/* Why the vfio platform cannot open v, as the fix, or "" when it can. */
static void judge(struct dmahal_device_info *v, const struct dmahal_device_info *all, size_t n)
{
    char path[64];

    v->openable = false;
    if (v->iommu_group < 0) {
        snprintf(v->fix, sizeof(v->fix),
                 "no IOMMU group: enable VT-d/AMD-Vi and boot with intel_iommu=on or amd_iommu=on");
        return;
    }
    if (strcmp(v->driver, "vfio-pci") != 0) {
        snprintf(v->fix, sizeof(v->fix), "%s%s, not vfio-pci; run: dmahal bind %s",
                 v->driver[0] ? "bound to " : "bound to no driver", v->driver, v->name);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (all[i].iommu_group == v->iommu_group && !vfio_friendly(all[i].driver)) {
            snprintf(v->fix, sizeof(v->fix),
                     "IOMMU group %d not viable: %s is bound to %s; run: dmahal bind %s",
                     v->iommu_group, all[i].name, all[i].driver, all[i].name);
            return;
        }
    }
    snprintf(path, sizeof(path), "/dev/vfio/%d", v->iommu_group);
    if (access(path, R_OK | W_OK)) {
        snprintf(v->fix, sizeof(v->fix), "no access to %s: run as root or chown it", path);
        return;
    }
    v->openable = true;
}

/* Every PCI device, sorted by address; -errno when sysfs cannot be read. */
static int scan(struct dmahal_device_info **out)
{
    struct dmahal_device_info *v = NULL, *grown;
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *dir = opendir(SYSFS_PCI);

    *out = NULL;
    if (!dir)
        return -errno;
    while ((e = readdir(dir))) {
        struct dmahal_device_info *x;
        unsigned long vendor = 0, device = 0, cls = 0;
        char group[32];

        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(v->name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            grown = realloc(v, cap * sizeof(*v));
            if (!grown) {
                free(v);
                closedir(dir);
                return -ENOMEM;
            }
            v = grown;
        }
        x = &v[n++];
        memset(x, 0, sizeof(*x));
        memcpy(x->name, e->d_name, strlen(e->d_name) + 1); /* fits: checked above */
        dmahal__sysfs_num(SYSFS_PCI, x->name, "vendor", &vendor);
        dmahal__sysfs_num(SYSFS_PCI, x->name, "device", &device);
        dmahal__sysfs_num(SYSFS_PCI, x->name, "class", &cls);
        x->vendor = (uint16_t)vendor;
        x->device = (uint16_t)device;
        x->class_code = (uint32_t)cls & 0xffffff;
        /* No group: -1; no driver: "" (the entry is zeroed). No name of either is too long. */
        x->iommu_group =
            dmahal__sysfs_link_base(SYSFS_PCI, x->name, "iommu_group", group, sizeof(group))
                ? -1
                : atoi(group);
        (void)dmahal__sysfs_link_base(SYSFS_PCI, x->name, "driver", x->driver, sizeof(x->driver));
    }
    closedir(dir);
    if (n)
        qsort(v, n, sizeof(*v), cmp_name);
    *out = v;
    return (int)n;
}

int dmahal__vfio_device_list(struct dmahal_device_info **out)
{
    int n = scan(out);

    for (int i = 0; i < n; i++)
        judge(&(*out)[i], *out, (size_t)n);
    return n;
}

int dmahal__vfio_find_ids(unsigned vendor, unsigned device, unsigned nth, char *addr, size_t size)
{
    struct dmahal_device_info *v;
    int n = scan(&v), rc = -ENXIO;

    for (int i = 0; i < n; i++) {
        if (v[i].vendor == vendor && v[i].device == device && nth-- == 0) {
            snprintf(addr, size, "%s", v[i].name);
            rc = 0;
            break;
        }
    }
    free(v);
    return n < 0 ? n : rc;
}
