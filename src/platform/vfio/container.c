/* SPDX-License-Identifier: MIT */
/*
 * container.c - the vfio platform itself: one VFIO container, its type1 IOMMU, and the IOVA windows
 * the kernel reports for it.
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

void dmahal__vfio_say(const char *fmt, ...)
{
    va_list ap;

    fputs("dmahal: vfio: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- platform --------------------------------------------------------------------------- */

static bool iommu_groups_exist(void)
{
    char path[64];

    /* Group 0 exists as soon as the IOMMU driver has claimed any device. */
    snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/0");
    return access(path, F_OK) == 0;
}

static void say_no_iommu(void)
{
    dmahal__vfio_say(
        "no IOMMU groups in /sys/kernel/iommu_groups: the IOMMU is off. Enable VT-d (Intel) "
        "or AMD-Vi in the firmware, boot Linux with intel_iommu=on or amd_iommu=on, then "
        "modprobe vfio-pci");
}

int dmahal__vfio_open(struct dmahal_platform *p, const char *args)
{
    struct vfio_plat *vp;
    long page = sysconf(_SC_PAGESIZE);
    int rc;

    if (*args) {
        dmahal__vfio_say("the vfio platform takes no options (got \"%s\")", args);
        return -EINVAL;
    }
    vp = calloc(1, sizeof(*vp));
    if (!vp)
        return -ENOMEM;
    vp->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (vp->container < 0) {
        rc = -errno;
        if (rc == -ENOENT || rc == -ENODEV) {
            if (!iommu_groups_exist())
                say_no_iommu();
            else
                dmahal__vfio_say("/dev/vfio/vfio is missing: load VFIO with modprobe vfio-pci");
            rc = -ENODEV;
        } else if (rc == -EACCES || rc == -EPERM) {
            dmahal__vfio_say("no permission to open /dev/vfio/vfio: run as root, or chmod 0666 it");
            rc = -EACCES;
        } else {
            dmahal__vfio_say("cannot open /dev/vfio/vfio: %s", strerror(-rc));
        }
        goto err_alloc;
    }
    if (ioctl(vp->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        dmahal__vfio_say("the kernel's VFIO API version is not %d", VFIO_API_VERSION);
        rc = -ENOTSUP;
        goto err_container;
    }
    if (ioctl(vp->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        dmahal__vfio_say("the type1v2 IOMMU backend is missing: modprobe vfio_iommu_type1");
        rc = -ENOTSUP;
        goto err_container;
    }
    if (!iommu_groups_exist()) {
        say_no_iommu();
        rc = -ENODEV;
        goto err_container;
    }
    pthread_mutex_init(&vp->lock, NULL);
    vp->dma_avail = -1;
    atomic_init(&vp->dma_limit, -1);
    dmahal__plat(p)->priv = vp;
    dmahal__plat(p)->page_size = page > 0 ? (size_t)page : 4096;
    dmahal__plat(p)->has_iommu = true;
    /* Type1 maps with IOMMU_CACHE where the IOMMU enforces snooping, and x86 PCI snoops. */
    dmahal__plat(p)->coherent = true;
    return 0;

err_container:
    close(vp->container);
err_alloc:
    free(vp);
    return rc;
}

void dmahal__vfio_close(struct dmahal_platform *p)
{
    struct vfio_plat *vp = dmahal__plat(p)->priv;

    /* Every device is closed, so every group is detached and closed too. */
    close(vp->container);
    dmahal__iova_destroy(vp->dom);
    pthread_mutex_destroy(&vp->lock);
    free(vp);
}

/* ---- IOVA windows ----------------------------------------------------------------------- */

/* The container's VFIO_IOMMU_GET_INFO, capabilities included; the caller frees it. */
int dmahal__vfio_iommu_info(struct vfio_plat *vp, struct vfio_iommu_type1_info **out)
{
    struct vfio_iommu_type1_info *info;
    size_t argsz = sizeof(*info);

    *out = NULL;
    for (;;) {
        info = calloc(1, argsz);
        if (!info)
            return -ENOMEM;
        info->argsz = (uint32_t)argsz;
        if (ioctl(vp->container, VFIO_IOMMU_GET_INFO, info)) {
            int rc = -errno;

            dmahal__vfio_say("VFIO_IOMMU_GET_INFO failed: %s", strerror(-rc));
            free(info);
            return rc;
        }
        if (info->argsz <= argsz)
            break;
        argsz = info->argsz; /* capabilities follow: ask again with room for them */
        free(info);
    }
    *out = info;
    return 0;
}

/* The capability @id of @info, or NULL. */
static const struct vfio_info_cap_header *info_cap(const struct vfio_iommu_type1_info *info,
                                                   uint16_t id)
{
    uint32_t off = info->flags & VFIO_IOMMU_INFO_CAPS ? info->cap_offset : 0;

    while (off && off + sizeof(struct vfio_info_cap_header) <= info->argsz) {
        const struct vfio_info_cap_header *h = (const void *)((const char *)info + off);

        if (h->id == id)
            return h;
        off = h->next;
    }
    return NULL;
}

/* How many more mappings the kernel allows the container, or -1 if it does not dmahal__vfio_say
 * (kernels before 5.10). */
int64_t dmahal__vfio_info_dma_avail(const struct vfio_iommu_type1_info *info)
{
    const struct vfio_iommu_type1_info_dma_avail *c =
        (const void *)info_cap(info, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);

    return c ? (int64_t)c->avail : -1;
}

/* Reads the container's usable IOVA ranges into @win, in @granule units; the first granule is
 * left out, so that no buffer gets logical address 0, which drivers take for "none". */
static int iova_windows(struct vfio_plat *vp, uint64_t granule, struct dmahal__extent *win,
                        size_t *nwin)
{
    const struct vfio_iommu_type1_info_cap_iova_range *r;
    struct vfio_iommu_type1_info *info;
    int rc;

    *nwin = 0;
    rc = dmahal__vfio_iommu_info(vp, &info);
    if (rc)
        return rc;
    vp->pgsizes = info->flags & VFIO_IOMMU_INFO_PGSIZES ? info->iova_pgsizes : 0;
    vp->dma_avail = dmahal__vfio_info_dma_avail(info);
    atomic_store(&vp->dma_limit,
                 vp->dma_avail < 0 ? -1 : vp->dma_avail + (int64_t)atomic_load(&vp->dma_maps));
    r = (const void *)info_cap(info, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
    for (uint32_t i = 0; r && i < r->nr_iovas && *nwin < MAX_WINDOWS; i++) {
        uint64_t start = r->iova_ranges[i].start, last = r->iova_ranges[i].end;

        start = start < granule ? granule : DMAHAL__ALIGN_UP(start, granule);
        if (last == UINT64_MAX)
            last--; /* keeps end = last + 1 representable */
        if (start > last || last + 1 - start < granule)
            continue;
        win[(*nwin)++] = (struct dmahal__extent){start, DMAHAL__ALIGN_DOWN(last + 1, granule)};
    }
    if (*nwin == 0) {
        /* Kernels before 5.4 report no windows: assume the 48 bits every x86 IOMMU has. */
        win[0] = (struct dmahal__extent){granule, (uint64_t)1 << 48};
        *nwin = 1;
    }
    free(info);
    return 0;
}

/* Takes out of the IOVA space what lies outside @win but inside the old windows: a group
 * attached later may bring reserved regions of its own. */
static int iova_restrict(struct vfio_plat *vp, const struct dmahal__extent *win, size_t nwin)
{
    for (size_t i = 0; i < vp->nwin; i++) {
        uint64_t at = vp->win[i].start, end = vp->win[i].end;

        /* Windows are sorted and disjoint (the kernel keeps its list so). */
        for (size_t w = 0; w < nwin && at < end; w++) {
            if (win[w].end <= at)
                continue;
            if (win[w].start > at) {
                uint64_t cut = win[w].start < end ? win[w].start : end;
                int rc = dmahal__iova_reserve(vp->dom, at, cut - at);

                if (rc)
                    return rc;
            }
            at = win[w].end;
        }
        if (at < end) {
            int rc = dmahal__iova_reserve(vp->dom, at, end - at);

            if (rc)
                return rc;
        }
    }
    return 0;
}

/*
 * Called under vp->lock after a group joined the container. The first group creates the IOVA
 * space; with no device open before it, it may also raise the platform's page to the IOMMU's
 * smallest one, which a later group may not exceed.
 */
int dmahal__vfio_iova_refresh(struct dmahal_platform *p, struct vfio_plat *vp)
{
    struct dmahal__extent win[MAX_WINDOWS];
    uint64_t iommu_page, granule = dmahal__plat(p)->page_size;
    size_t nwin;
    int rc;

    rc = iova_windows(vp, granule, win, &nwin);
    if (rc)
        return rc;
    iommu_page = vp->pgsizes ? vp->pgsizes & -vp->pgsizes : 0;
    if (iommu_page > granule && vp->dom) {
        dmahal__vfio_say("the IOMMU's smallest page is now %" PRIu64
                         " bytes, larger than the %zu bytes in "
                         "use: open this device on another platform",
                         iommu_page, dmahal__plat(p)->page_size);
        return -ENOTSUP;
    }
    if (iommu_page > granule) {
        granule = iommu_page;
        rc = iova_windows(vp, granule, win, &nwin);
        if (rc)
            return rc;
        dmahal__plat(p)->page_size = (size_t)granule;
        dmahal__plat(p)->page_shift = (unsigned)__builtin_ctzll(granule);
    }
    if (!vp->dom) {
        rc = dmahal__iova_create(granule, &vp->dom);
        for (size_t i = 0; rc == 0 && i < nwin; i++)
            rc = dmahal__iova_add(vp->dom, win[i].start, win[i].end - win[i].start);
        if (rc) {
            dmahal__iova_destroy(vp->dom);
            vp->dom = NULL;
            return rc;
        }
    } else {
        rc = iova_restrict(vp, win, nwin);
        if (rc)
            return rc;
    }
    memcpy(vp->win, win, nwin * sizeof(win[0]));
    vp->nwin = nwin;
    return 0;
}

/* The last group left: the kernel dropped the IOMMU, start afresh on the next one. Called
 * under vp->lock. */
void dmahal__vfio_iommu_forget(struct vfio_plat *vp)
{
    vp->iommu_set = false;
    vp->nwin = 0;
    dmahal__iova_destroy(vp->dom);
    vp->dom = NULL;
}
