/* SPDX-License-Identifier: MIT */
/*
 * group.c - IOMMU groups: found from sysfs, opened, checked viable and attached to the container,
 * shared by the devices in them.
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

/* ---- groups ----------------------------------------------------------------------------- */

/* Names the devices that make group @id not viable: those bound to a host driver. */
static void say_not_viable(int id)
{
    char path[PATH_MAX], link[PATH_MAX];
    struct dirent *e;
    DIR *dir;

    dmahal__vfio_say(
        "IOMMU group %d is not viable: every device in it must be bound to vfio-pci (or to no "
        "driver). Devices in /sys/kernel/iommu_groups/%d/devices:",
        id, id);
    snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", id);
    dir = opendir(path);
    if (!dir)
        return;
    while ((e = readdir(dir))) {
        ssize_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver", e->d_name);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0) {
            dmahal__vfio_say("  %s: no driver", e->d_name);
            continue;
        }
        link[n] = '\0';
        dmahal__vfio_say("  %s: bound to %s%s", e->d_name, strrchr(link, '/') + 1,
                         strcmp(strrchr(link, '/') + 1, "vfio-pci") ? " (rebind it to vfio-pci)"
                                                                    : "");
    }
    closedir(dir);
}

/* Opens group @id and attaches it to the container, or takes another reference on it.
 * Called under vp->lock. */
int dmahal__vfio_group_get(struct dmahal_platform *p, int id, struct vfio_group **out)
{
    struct vfio_plat *vp = dmahal__plat(p)->priv;
    struct vfio_group_status st = {.argsz = sizeof(st)};
    struct vfio_group *g;
    char path[64];
    int rc;

    for (g = vp->groups; g; g = g->next) {
        if (g->id == id) {
            g->refs++;
            *out = g;
            return 0;
        }
    }
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->id = id;
    snprintf(path, sizeof(path), "/dev/vfio/%d", id);
    g->fd = open(path, O_RDWR | O_CLOEXEC);
    if (g->fd < 0) {
        rc = -errno;
        if (rc == -EACCES || rc == -EPERM) {
            dmahal__vfio_say("no permission to open %s: run as root, or chown it to your user",
                             path);
            rc = -EACCES;
        } else if (rc == -EBUSY) {
            dmahal__vfio_say(
                "%s is open already (another process, or another platform in this one): "
                "close it there first",
                path);
        } else if (rc == -ENOENT) {
            dmahal__vfio_say("%s is missing: is vfio-pci loaded (modprobe vfio-pci)?", path);
            rc = -ENODEV;
        } else {
            dmahal__vfio_say("cannot open %s: %s", path, strerror(-rc));
        }
        goto err_alloc;
    }
    if (ioctl(g->fd, VFIO_GROUP_GET_STATUS, &st)) {
        rc = -errno;
        dmahal__vfio_say("VFIO_GROUP_GET_STATUS on %s failed: %s", path, strerror(errno));
        goto err_fd;
    }
    if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        say_not_viable(id);
        rc = -EBUSY;
        goto err_fd;
    }
    if (ioctl(g->fd, VFIO_GROUP_SET_CONTAINER, &vp->container)) {
        rc = -errno;
        dmahal__vfio_say(
            "cannot add IOMMU group %d to the container: %s%s", id, strerror(errno),
            errno == EINVAL ? " (its reserved regions clash with mappings made already)" : "");
        goto err_fd;
    }
    if (!vp->iommu_set) {
        if (ioctl(vp->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
            rc = -errno;
            dmahal__vfio_say("VFIO_SET_IOMMU(type1v2) failed: %s", strerror(errno));
            goto err_attach;
        }
        vp->iommu_set = true;
    }
    rc = dmahal__vfio_iova_refresh(p, vp);
    if (rc)
        goto err_attach;
    g->refs = 1;
    g->next = vp->groups;
    vp->groups = g;
    *out = g;
    return 0;

err_attach:
    ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER);
    if (!vp->groups)
        dmahal__vfio_iommu_forget(vp); /* no group left: the kernel dropped the IOMMU */
err_fd:
    close(g->fd);
err_alloc:
    free(g);
    return rc;
}

/* Called under vp->lock. */
void dmahal__vfio_group_put(struct vfio_plat *vp, struct vfio_group *g)
{
    struct vfio_group **pp;

    if (--g->refs)
        return;
    for (pp = &vp->groups; *pp != g; pp = &(*pp)->next)
        ;
    *pp = g->next;
    ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER);
    close(g->fd);
    free(g);
    if (!vp->groups)
        dmahal__vfio_iommu_forget(vp);
}
