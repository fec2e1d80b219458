/*
 * vfio.c - the "vfio" platform: real PCI devices through Linux VFIO and the type1 IOMMU.
 *
 * One platform is one VFIO container: one IOMMU address space shared by every device opened
 * on it (the kernel replays each mapping into every group's domain). So there is one core
 * IOVA space (iova.h) per container, which every device's dmahal__dev(d)->iova points at: common
 * buffers and streaming maps of all the container's devices come from it and never overlap. It is
 * seeded with the windows the kernel reports (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE), so an
 * adapter's addr_bits and the IOMMU's reserved regions (the MSI window, RMRRs) are honoured by
 * the same allocation, and its granule is the larger of the CPU's page and the IOMMU's
 * smallest one (VFIO maps nothing smaller).
 *
 * Common-buffer memory is anonymous memory, pinned and mapped by VFIO_IOMMU_MAP_DMA; the
 * core's allocator asks for it in arenas and sub-allocates, so the ioctls are rare. Streaming
 * maps (dmahal_map) give the kernel the caller's own pages: the page-aligned span around each
 * piece is mapped at an IOVA whose offset in the page is the memory's, and the kernel pins the
 * pages until the unmap. The device can reach the rest of a partial first or last page: as
 * with Linux's own DMA API, that is the price of mapping memory in place. x86 DMA through
 * VT-d or AMD-Vi snoops the CPU caches, so there is no cache maintenance.
 *
 * Every setup failure prints one line to stderr naming the fix, and returns:
 *   -ENODEV  VFIO or the IOMMU is not there (module not loaded, IOMMU off), or the device
 *            is bound to no driver;
 *   -EBUSY   the device is bound to another driver, its IOMMU group is not viable (another
 *            device of the group is bound to a host driver), or the group is open elsewhere;
 *   -EACCES  no permission on /dev/vfio;
 *   -ENOENT  no PCI device at that address;
 *   -ENOTSUP the kernel lacks the type1v2 IOMMU;
 *   -EINVAL  a malformed address or platform option.
 * Mapping memory fails with -ENOSPC when the container's DMA mappings are all used (the kernel
 * allows dma_entry_limit of them, 65535 by default), -ENOMEM when the pages would exceed the
 * locked-memory limit (RLIMIT_MEMLOCK, unless CAP_IPC_LOCK), each named once on stderr, and
 * -EFAULT when the kernel cannot pin the memory (not mapped; read-only and the device writes).
 */
#include "core/platform_ops.h"

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

#define SYSFS_PCI   "/sys/bus/pci/devices"
#define MAX_WINDOWS 32

struct vfio_group {
    int id;
    int fd;
    unsigned refs; /* devices open in it */
    struct vfio_group *next;
};

struct vfio_plat {
    int container;
    atomic_bool said_avail, said_locked; /* each exhaustion message is printed once */
    pthread_mutex_t lock;                /* everything below */
    struct vfio_group *groups;
    bool iommu_set;           /* VFIO_SET_IOMMU done: needs a group attached first */
    struct dmahal__iova *dom; /* the container's IOVA space, inside the windows; NULL until
                               * a group is attached */
    struct dmahal__extent win[MAX_WINDOWS]; /* the IOMMU's usable IOVA ranges */
    size_t nwin;
    uint64_t pgsizes;  /* IOMMU page sizes the kernel reported */
    int64_t dma_avail; /* mappings the kernel still allowed when last asked; -1: not told */
};

struct vfio_bar {
    uint64_t offset; /* of the region in the device fd */
    uint64_t size;
    volatile uint8_t *map; /* NULL: access with pread/pwrite */
};

struct vfio_dev {
    struct vfio_group *group;
    int fd;
    uint64_t cfg_offset;
    struct vfio_bar bar[DMAHAL__BARS];
};

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
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
    say("no IOMMU groups in /sys/kernel/iommu_groups: the IOMMU is off. Enable VT-d (Intel) "
        "or AMD-Vi in the firmware, boot Linux with intel_iommu=on or amd_iommu=on, then "
        "modprobe vfio-pci");
}

static int vfio_open(struct dmahal_platform *p, const char *args)
{
    struct vfio_plat *vp;
    long page = sysconf(_SC_PAGESIZE);
    int rc;

    if (*args) {
        say("the vfio platform takes no options (got \"%s\")", args);
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
                say("/dev/vfio/vfio is missing: load VFIO with modprobe vfio-pci");
            rc = -ENODEV;
        } else if (rc == -EACCES || rc == -EPERM) {
            say("no permission to open /dev/vfio/vfio: run as root, or chmod 0666 it");
            rc = -EACCES;
        } else {
            say("cannot open /dev/vfio/vfio: %s", strerror(-rc));
        }
        goto err_alloc;
    }
    if (ioctl(vp->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        say("the kernel's VFIO API version is not %d", VFIO_API_VERSION);
        rc = -ENOTSUP;
        goto err_container;
    }
    if (ioctl(vp->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        say("the type1v2 IOMMU backend is missing: modprobe vfio_iommu_type1");
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

static void vfio_close(struct dmahal_platform *p)
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
static int iommu_info(struct vfio_plat *vp, struct vfio_iommu_type1_info **out)
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

            say("VFIO_IOMMU_GET_INFO failed: %s", strerror(-rc));
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

/* How many more mappings the kernel allows the container, or -1 if it does not say (kernels
 * before 5.10). */
static int64_t info_dma_avail(const struct vfio_iommu_type1_info *info)
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
    rc = iommu_info(vp, &info);
    if (rc)
        return rc;
    vp->pgsizes = info->flags & VFIO_IOMMU_INFO_PGSIZES ? info->iova_pgsizes : 0;
    vp->dma_avail = info_dma_avail(info);
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
static int iova_refresh(struct dmahal_platform *p, struct vfio_plat *vp)
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
        say("the IOMMU's smallest page is now %" PRIu64 " bytes, larger than the %zu bytes in "
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
static void iommu_forget(struct vfio_plat *vp)
{
    vp->iommu_set = false;
    vp->nwin = 0;
    dmahal__iova_destroy(vp->dom);
    vp->dom = NULL;
}

/* ---- groups ----------------------------------------------------------------------------- */

/* Names the devices that make group @id not viable: those bound to a host driver. */
static void say_not_viable(int id)
{
    char path[PATH_MAX], link[PATH_MAX];
    struct dirent *e;
    DIR *dir;

    say("IOMMU group %d is not viable: every device in it must be bound to vfio-pci (or to no "
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
            say("  %s: no driver", e->d_name);
            continue;
        }
        link[n] = '\0';
        say("  %s: bound to %s%s", e->d_name, strrchr(link, '/') + 1,
            strcmp(strrchr(link, '/') + 1, "vfio-pci") ? " (rebind it to vfio-pci)" : "");
    }
    closedir(dir);
}

/* Opens group @id and attaches it to the container, or takes another reference on it.
 * Called under vp->lock. */
static int group_get(struct dmahal_platform *p, int id, struct vfio_group **out)
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
            say("no permission to open %s: run as root, or chown it to your user", path);
            rc = -EACCES;
        } else if (rc == -EBUSY) {
            say("%s is open already (another process, or another platform in this one): "
                "close it there first",
                path);
        } else if (rc == -ENOENT) {
            say("%s is missing: is vfio-pci loaded (modprobe vfio-pci)?", path);
            rc = -ENODEV;
        } else {
            say("cannot open %s: %s", path, strerror(-rc));
        }
        goto err_alloc;
    }
    if (ioctl(g->fd, VFIO_GROUP_GET_STATUS, &st)) {
        rc = -errno;
        say("VFIO_GROUP_GET_STATUS on %s failed: %s", path, strerror(errno));
        goto err_fd;
    }
    if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        say_not_viable(id);
        rc = -EBUSY;
        goto err_fd;
    }
    if (ioctl(g->fd, VFIO_GROUP_SET_CONTAINER, &vp->container)) {
        rc = -errno;
        say("cannot add IOMMU group %d to the container: %s%s", id, strerror(errno),
            errno == EINVAL ? " (its reserved regions clash with mappings made already)" : "");
        goto err_fd;
    }
    if (!vp->iommu_set) {
        if (ioctl(vp->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
            rc = -errno;
            say("VFIO_SET_IOMMU(type1v2) failed: %s", strerror(errno));
            goto err_attach;
        }
        vp->iommu_set = true;
    }
    rc = iova_refresh(p, vp);
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
        iommu_forget(vp); /* no group left: the kernel dropped the IOMMU */
err_fd:
    close(g->fd);
err_alloc:
    free(g);
    return rc;
}

/* Called under vp->lock. */
static void group_put(struct vfio_plat *vp, struct vfio_group *g)
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
        iommu_forget(vp);
}

/* ---- devices ---------------------------------------------------------------------------- */

/* Reads @n hex digits exactly. */
static bool hex_field(const char *s, int n, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        int c = s[i];
        unsigned v = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;

        if (v == 16)
            return false;
        *out = *out << 4 | v;
    }
    return true;
}

/* Accepts "DDDD:BB:SS.F" or "BB:SS.F" exactly, and writes the canonical form sysfs uses. */
static int pci_addr_parse(const char *name, char *out, size_t size)
{
    unsigned dom = 0, bus, slot, fn;
    size_t len = strlen(name);
    const char *s = name;

    if (len == 12) {
        if (!hex_field(s, 4, &dom) || s[4] != ':')
            return -EINVAL;
        s += 5;
    } else if (len != 7) {
        return -EINVAL;
    }
    if (!hex_field(s, 2, &bus) || s[2] != ':' || !hex_field(s + 3, 2, &slot) || s[5] != '.' ||
        !hex_field(s + 6, 1, &fn) || slot > 0x1f || fn > 7)
        return -EINVAL;
    snprintf(out, size, "%04x:%02x:%02x.%x", dom, bus, slot, fn);
    return 0;
}

/* Reads the last component of a sysfs symlink (a driver's or a group's name). */
static int link_name(const char *addr, const char *what, char *out, size_t size)
{
    char path[PATH_MAX], link[PATH_MAX];
    const char *base;
    ssize_t n;

    snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", addr, what);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return -errno;
    link[n] = '\0';
    base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
    if (strlen(base) >= size)
        return -ENAMETOOLONG;
    memcpy(out, base, strlen(base) + 1);
    return 0;
}

/* Checks that @addr exists, has an IOMMU group and is bound to vfio-pci; sets @group. */
static int device_check(const char *addr, int *group)
{
    char path[PATH_MAX], name[256], cmd[512];

    snprintf(path, sizeof(path), SYSFS_PCI "/%s", addr);
    if (access(path, F_OK)) {
        say("no PCI device %s (see ls " SYSFS_PCI ")", addr);
        return -ENOENT;
    }
    if (link_name(addr, "iommu_group", name, sizeof(name))) {
        say("%s has no IOMMU group: the IOMMU is off. Enable VT-d or AMD-Vi in the firmware "
            "and boot with intel_iommu=on or amd_iommu=on",
            addr);
        return -ENODEV;
    }
    *group = atoi(name);
    snprintf(cmd, sizeof(cmd),
             "echo vfio-pci > " SYSFS_PCI "/%s/driver_override; "
             "echo %s > /sys/bus/pci/drivers_probe",
             addr, addr);
    if (link_name(addr, "driver", name, sizeof(name))) {
        say("%s is bound to no driver; bind it to vfio-pci: modprobe vfio-pci; %s", addr, cmd);
        return -ENODEV;
    }
    if (strcmp(name, "vfio-pci") != 0) {
        say("%s is bound to %s, not vfio-pci; rebind it: echo %s > " SYSFS_PCI
            "/%s/driver/unbind; %s",
            addr, name, addr, addr, cmd);
        return -EBUSY;
    }
    return 0;
}

static int cfg_rw(struct vfio_dev *vd, bool write, uint64_t off, void *buf, size_t len)
{
    ssize_t n = write ? pwrite(vd->fd, buf, len, (off_t)(vd->cfg_offset + off))
                      : pread(vd->fd, buf, len, (off_t)(vd->cfg_offset + off));

    return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/* Turns on memory decoding and bus mastering: without the latter the device's DMA goes
 * nowhere, silently. */
static int bus_master(struct vfio_dev *vd, bool on)
{
    uint16_t cmd;
    int rc = cfg_rw(vd, false, PCI_COMMAND, &cmd, sizeof(cmd));

    if (rc)
        return rc;
    if (on)
        cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    else
        cmd &= (uint16_t)~PCI_COMMAND_MASTER;
    return cfg_rw(vd, true, PCI_COMMAND, &cmd, sizeof(cmd));
}

static int regions_setup(struct dmahal_device *d, struct vfio_dev *vd)
{
    struct vfio_device_info info = {.argsz = sizeof(info)};
    struct vfio_region_info ri = {.argsz = sizeof(ri)};

    if (ioctl(vd->fd, VFIO_DEVICE_GET_INFO, &info)) {
        say("VFIO_DEVICE_GET_INFO on %s failed: %s", dmahal__dev(d)->name, strerror(errno));
        return -errno;
    }
    if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
        say("%s is not a PCI device", dmahal__dev(d)->name);
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
        say("cannot find the config space of %s: %s", dmahal__dev(d)->name, strerror(errno));
        return -errno;
    }
    vd->cfg_offset = ri.offset;
    return 0;
}

static void regions_unmap(struct vfio_dev *vd)
{
    for (unsigned i = 0; i < DMAHAL__BARS; i++)
        if (vd->bar[i].map)
            munmap((void *)vd->bar[i].map, vd->bar[i].size);
}

static int vfio_device_open(struct dmahal_device *d, const char *name)
{
    struct vfio_plat *vp = dmahal__dev_plat(d)->priv;
    struct vfio_dev *vd;
    char addr[32];
    int group, rc;

    if (pci_addr_parse(name, addr, sizeof(addr))) {
        say("\"%s\" is not a PCI address (DDDD:BB:SS.F, e.g. 0000:00:03.0)", name);
        return -EINVAL;
    }
    rc = device_check(addr, &group);
    if (rc)
        return rc;
    vd = calloc(1, sizeof(*vd));
    if (!vd)
        return -ENOMEM;
    pthread_mutex_lock(&vp->lock);
    rc = group_get(dmahal__dev(d)->p, group, &vd->group);
    /* Every device of the container shares its IOVA space. */
    dmahal__dev(d)->iova = rc ? NULL : vp->dom;
    pthread_mutex_unlock(&vp->lock);
    if (rc)
        goto err_alloc;
    vd->fd = ioctl(vd->group->fd, VFIO_GROUP_GET_DEVICE_FD, addr);
    if (vd->fd < 0) {
        rc = -errno;
        say("cannot get %s from IOMMU group %d: %s%s", addr, group, strerror(errno),
            errno == EBUSY ? " (it is open already)" : "");
        goto err_group;
    }
    rc = regions_setup(d, vd);
    if (rc)
        goto err_fd;
    rc = bus_master(vd, true);
    if (rc) {
        say("cannot enable bus mastering on %s: %s", addr, strerror(-rc));
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
    group_put(vp, vd->group);
    pthread_mutex_unlock(&vp->lock);
err_alloc:
    free(vd);
    return rc;
}

static void vfio_device_close(struct dmahal_device *d)
{
    struct vfio_plat *vp = dmahal__dev_plat(d)->priv;
    struct vfio_dev *vd = dmahal__dev(d)->priv;

    /* Its buffers are freed already: a device still mastering now would fault. */
    bus_master(vd, false);
    regions_unmap(vd);
    close(vd->fd);
    dmahal__dev(d)->iova = NULL;
    pthread_mutex_lock(&vp->lock);
    group_put(vp, vd->group);
    pthread_mutex_unlock(&vp->lock);
    free(vd);
}

static uint64_t vfio_mmio_read(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size)
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

static void vfio_mmio_write(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
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

/* ---- adapters and DMA memory ------------------------------------------------------------ */

/* Narrows the adapter to the IOVA windows it can reach: the highest usable address at or
 * below what its addr_bits allow. */
static int vfio_adapter_init(struct dmahal_adapter *a)
{
    struct vfio_plat *vp = dmahal__adp_plat(a)->priv;
    uint64_t top = 0;
    bool any = false;

    pthread_mutex_lock(&vp->lock);
    for (size_t i = 0; i < vp->nwin; i++) {
        uint64_t last = vp->win[i].end - 1;

        if (vp->win[i].start > dmahal__adp(a)->c.max_addr)
            continue;
        last = last < dmahal__adp(a)->c.max_addr ? last : dmahal__adp(a)->c.max_addr;
        top = last > top ? last : top;
        any = true;
    }
    pthread_mutex_unlock(&vp->lock);
    if (!any) {
        say("no IOVA window of the IOMMU lies below 2^%u, the width %s drives",
            dmahal__adp(a)->c.addr_bits, dmahal__adp_dev(a)->name);
        return -ENOSPC;
    }
    dmahal__adp(a)->c.max_addr = top;
    return 0;
}

/* Anonymous memory of @len bytes at an @align-aligned address. */
static void *map_aligned(size_t len, size_t align)
{
    /* mmap aligns to the CPU's page, which the platform's may exceed (see iova_refresh). */
    long cpu = sysconf(_SC_PAGESIZE);
    size_t page = cpu > 0 ? (size_t)cpu : 4096;
    size_t extra = align > page ? align - page : 0;
    uint8_t *raw, *va;

    raw = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    va = (uint8_t *)DMAHAL__ALIGN_UP((uintptr_t)raw, align);
    if (va > raw)
        munmap(raw, (size_t)(va - raw));
    if (raw + len + extra > va + len)
        munmap(va + len, (size_t)(raw + len + extra - (va + len)));
    return va;
}

/*
 * Turns a failed VFIO_IOMMU_MAP_DMA of [iova, iova + len) into the code the caller gets. The
 * limits a person can raise are named once per platform: a driver that retries would
 * otherwise fill its log.
 */
static int map_error(struct vfio_plat *vp, int err, uint64_t iova, size_t len)
{
    switch (err) {
    case ENOSPC:
        if (!atomic_exchange(&vp->said_avail, true))
            say("VFIO_IOMMU_MAP_DMA: the container's DMA mappings are all in use (each map "
                "of a piece of memory takes one): unmap some, or raise vfio_iommu_type1's "
                "dma_entry_limit (echo N > "
                "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit, for containers "
                "opened after)");
        return -ENOSPC;
    case ENOMEM:
        if (!atomic_exchange(&vp->said_locked, true))
            say("VFIO_IOMMU_MAP_DMA of %zu bytes: out of locked memory (raise ulimit -l, or "
                "run with CAP_IPC_LOCK)",
                len);
        return -ENOMEM;
    case EFAULT:
        /* The caller's memory is not there, or is read-only and the device would write. */
        return -EFAULT;
    default:
        say("VFIO_IOMMU_MAP_DMA of %zu bytes at IOVA %#" PRIx64 " failed: %s", len, iova,
            strerror(err));
        return -err;
    }
}

static int dma_map(struct vfio_plat *vp, uint64_t iova, void *va, size_t len, unsigned perm)
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = (perm & DMAHAL__PERM_READ ? VFIO_DMA_MAP_FLAG_READ : 0) |
                 (perm & DMAHAL__PERM_WRITE ? VFIO_DMA_MAP_FLAG_WRITE : 0),
        .vaddr = (uintptr_t)va,
        .iova = iova,
        .size = len,
    };

    /* The kernel maps all of it or nothing. */
    if (ioctl(vp->container, VFIO_IOMMU_MAP_DMA, &map))
        return map_error(vp, errno, iova, len);
    return 0;
}

/* Unmaps whole mappings covering exactly [iova, iova + len); false (said) if it failed, and
 * the range must then stay allocated so that nothing else lands on it. */
static bool dma_unmap(struct vfio_plat *vp, uint64_t iova, size_t len)
{
    struct vfio_iommu_type1_dma_unmap unmap = {.argsz = sizeof(unmap), .iova = iova, .size = len};

    if (ioctl(vp->container, VFIO_IOMMU_UNMAP_DMA, &unmap) == 0 && unmap.size == len)
        return true;
    say("VFIO_IOMMU_UNMAP_DMA of IOVA %#" PRIx64 "+%zu failed: %s", iova, len,
        unmap.size != len ? "not all of it was mapped" : strerror(errno));
    return false;
}

static int vfio_mem_alloc(struct dmahal_adapter *a, size_t len, size_t align,
                          struct dmahal__chunk *out)
{
    struct vfio_plat *vp = dmahal__adp_plat(a)->priv;
    uint64_t boundary = dmahal__adp(a)->c.boundary && len <= dmahal__adp(a)->c.boundary
                            ? dmahal__adp(a)->c.boundary
                            : 0;
    uint64_t iova;
    void *va;
    int rc;

    va = map_aligned(len, align);
    if (!va)
        return -ENOMEM;
    /* A child of fork() must not get copy-on-write copies of pinned pages: the device
     * would keep writing to the parent's. */
    if (madvise(va, len, MADV_DONTFORK)) {
        rc = -errno;
        goto err_mem;
    }
    /* From the container's space, which streaming maps and the other devices share. */
    rc = dmahal__iova_alloc(dmahal__adp_dev(a)->iova, len, align, boundary,
                            dmahal__adp(a)->c.max_addr, &iova);
    if (rc) {
        rc = -ENOMEM;
        goto err_mem;
    }
    rc = dma_map(vp, iova, va, len, DMAHAL__PERM_READ | DMAHAL__PERM_WRITE);
    if (rc)
        goto err_iova;
    *out = (struct dmahal__chunk){.va = va, .la = iova, .len = len};
    return 0;

err_iova:
    dmahal__iova_free(dmahal__adp_dev(a)->iova, iova, len);
err_mem:
    munmap(va, len);
    return rc;
}

static void vfio_mem_free(struct dmahal_adapter *a, const struct dmahal__chunk *ch)
{
    if (dma_unmap(dmahal__adp_plat(a)->priv, ch->la, ch->len))
        dmahal__iova_free(dmahal__adp_dev(a)->iova, ch->la, ch->len);
    munmap(ch->va, ch->len);
}

/* ---- streaming DMA ---------------------------------------------------------------------- */

/* The caller's pages [va, va + len) at @iova: the kernel pins them until the unmap. Both are
 * granule-aligned, as VFIO requires (the core aligns to the platform's page, which is at
 * least the IOMMU's smallest). */
static int vfio_iommu_map(struct dmahal_device *d, dmahal_addr_t iova, void *va, size_t len,
                          unsigned perm)
{
    /* A read-only pin of a page no one has written yet pins the shared zero page (Debian
     * 12's 6.1 does, tests/vm shows it): the CPU's next write would then go to a fresh copy
     * the device never sees. Have the pages made writable first; memory that is read-only
     * cannot change, and for it (and on kernels without MADV_POPULATE_WRITE) this fails
     * harmlessly. A pin for writing does as much itself. */
    if (!(perm & DMAHAL__PERM_WRITE))
        madvise(va, len, MADV_POPULATE_WRITE);
    return dma_map(dmahal__dev_plat(d)->priv, iova, va, len, perm);
}

static void vfio_iommu_unmap(struct dmahal_device *d, dmahal_addr_t iova, size_t len)
{
    /* The core frees the IOVA whatever happens; a range the kernel kept mapped makes a later
     * map there fail (EEXIST, said), never reach the wrong memory. */
    dma_unmap(dmahal__dev_plat(d)->priv, iova, len);
}

/* Bounce pages, for layouts the device cannot take where the memory lies (alignment, segment
 * count): plain anonymous memory, which the core maps through the IOMMU like any other. */
static int vfio_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                             struct dmahal__chunk *out)
{
    void *va = map_aligned(len, dmahal__plat(p)->page_size);

    (void)max_addr; /* behind the IOMMU every page is reachable */
    if (!va)
        return -ENOMEM;
    /* Written now, so that read-only maps of it pin real pages (see vfio_iommu_map). */
    memset(va, 0, len);
    if (madvise(va, len, MADV_DONTFORK)) {
        munmap(va, len);
        return -ENOMEM;
    }
    /* The pool needs distinct page-aligned addresses: the memory's own do. */
    *out = (struct dmahal__chunk){.va = va, .la = (uintptr_t)va, .len = len};
    return 0;
}

static void vfio_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch)
{
    (void)p;
    munmap(ch->va, ch->len);
}

static void vfio_describe(struct dmahal_platform *p, FILE *f)
{
    struct vfio_plat *vp = dmahal__plat(p)->priv;
    struct vfio_iommu_type1_info *info = NULL;

    pthread_mutex_lock(&vp->lock);
    fprintf(f, "iommu: vfio type1v2%s\n", vp->iommu_set ? "" : " (no group attached yet)");
    fprintf(f, "groups:");
    for (struct vfio_group *g = vp->groups; g; g = g->next)
        fprintf(f, " %d(%u device%s)", g->id, g->refs, g->refs == 1 ? "" : "s");
    fprintf(f, "\niova-windows:");
    for (size_t i = 0; i < vp->nwin; i++)
        fprintf(f, " %#" PRIx64 "-%#" PRIx64, vp->win[i].start, vp->win[i].end - 1);
    fprintf(f, "\niommu-page-sizes: %#" PRIx64 "\n", vp->pgsizes);
    fprintf(f, "iova-free: %" PRIu64 " bytes\n", vp->dom ? dmahal__iova_free_bytes(vp->dom) : 0);
    /* Asked afresh: every map and unmap moves it. */
    if (vp->iommu_set && iommu_info(vp, &info) == 0) {
        vp->dma_avail = info_dma_avail(info);
        free(info);
    }
    if (vp->dma_avail >= 0)
        fprintf(f, "dma-mappings-avail: %" PRId64 "\n", vp->dma_avail);
    pthread_mutex_unlock(&vp->lock);
}

const struct dmahal__platform_ops dmahal__vfio_ops = {
    .name = "vfio",
    .open = vfio_open,
    .close = vfio_close,
    .device_open = vfio_device_open,
    .device_close = vfio_device_close,
    .mmio_read = vfio_mmio_read,
    .mmio_write = vfio_mmio_write,
    .adapter_init = vfio_adapter_init,
    .mem_alloc = vfio_mem_alloc,
    .mem_free = vfio_mem_free,
    .dev_access = NULL, /* a real device does its own DMA */
    .describe = vfio_describe,
    .pin = NULL, /* the device reaches host memory only through the IOMMU */
    .unpin = NULL,
    .iommu_map = vfio_iommu_map,
    .iommu_unmap = vfio_iommu_unmap,
    .bounce_alloc = vfio_bounce_alloc,
    .bounce_free = vfio_bounce_free,
    /* DMA through an x86 IOMMU snoops the caches (the platform says coherent). */
    .cache_track = NULL,
    .cache_untrack = NULL,
    .cache_flush = NULL,
    .cache_invalidate = NULL,
};
