/* SPDX-License-Identifier: MIT */
/*
 * vfio.h - private: the "vfio" platform: real PCI devices through Linux VFIO and the type1 IOMMU.
 *
 * One platform is one VFIO container: one IOMMU address space shared by every device opened
 * on it (the kernel replays each mapping into every group's domain). So there is one core
 * IOVA space (iova.h) per container, which every device's iova points at: common
 * buffers and streaming maps of all the container's devices come from it and never overlap. It is
 * seeded with the windows the kernel reports (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE), so an
 * adapter's addr_bits and the IOMMU's reserved regions (the MSI window, RMRRs) are honoured by
 * the same allocation, and its granule is the larger of the CPU's page and the IOMMU's
 * smallest one (VFIO maps nothing smaller).
 *
 * Common-buffer memory is anonymous memory, pinned and mapped by VFIO_IOMMU_MAP_DMA. By default
 * (strict isolation) the core reserves each arena's memory and IOVA (mem_alloc_dark) and maps
 * one run per buffer or slab page as it hands them out, unmapping each when it is freed, so the
 * device never reaches memory the driver gave back; with DMAHAL_DESC_LAZY_UNMAP, and for
 * buffers with an arena of their own, an arena is one mapping, in huge pages (hugetlbfs, else
 * transparent ones) at an IOVA aligned to the IOMMU's largest page that fits, so that 2 MiB
 * costs one IOMMU entry. Streaming maps (dmahal_map) give the kernel the caller's own pages:
 * the page-aligned span around each piece is mapped at an IOVA whose offset in the page is the
 * memory's, and the kernel pins the pages until the unmap. The device can reach the rest of a
 * partial first or last page (as with Linux's own DMA API) unless the adapter is
 * DMAHAL_DESC_UNTRUSTED; maps inside registered memory (dmahal_register) cost no ioctl at all.
 * x86 DMA through VT-d or AMD-Vi snoops the CPU caches, so there is no cache maintenance.
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
 * Streaming maps leave the container's last 256 DMA mappings (a sixteenth of a smaller limit; the
 * kernel allows dma_entry_limit of them, 65535 by default, and tells how many are left) to common
 * buffers and registrations: past that point the core copies them through its pre-mapped spill
 * memory instead. Mapping memory fails with -ENOSPC when the container's DMA mappings are all used,
 * -ENOMEM when the pages would exceed the locked-memory limit (RLIMIT_MEMLOCK, unless
 * CAP_IPC_LOCK), each named once on stderr, and -EFAULT when the kernel cannot pin the memory (not
 * mapped; read-only and the device writes).
 */

#ifndef DMAHAL_VFIO_H
#define DMAHAL_VFIO_H

#include "core/platform_ops.h"

#include <linux/vfio.h>
#include <pthread.h>
#include <stdatomic.h>

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
    /* Mappings the kernel allows the container in all (dma_avail when last asked plus ours
     * then; -1: not told), and ours now: the difference is what is left, known without an
     * ioctl. */
    _Atomic int64_t dma_limit;
    atomic_int_fast64_t dma_maps;
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
    unsigned cfg_size; /* of the config region (256, or 4096 with extended space) */
    int irq_index;     /* VFIO_PCI_*_IRQ_INDEX enabled; -1: none */
    unsigned irq_nvec;
    struct vfio_bar bar[DMAHAL__BARS];
};

/* container.c: one line to stderr, "dmahal: vfio: ..." (the fix for a setup failure). */
__attribute__((format(printf, 1, 2))) void dmahal__vfio_say(const char *fmt, ...);
/* container.c */
int dmahal__vfio_open(struct dmahal_platform *p, const char *args);
void dmahal__vfio_close(struct dmahal_platform *p);
int64_t dmahal__vfio_info_dma_avail(const struct vfio_iommu_type1_info *info);
int dmahal__vfio_iommu_info(struct vfio_plat *vp, struct vfio_iommu_type1_info **out);
void dmahal__vfio_iommu_forget(struct vfio_plat *vp);
int dmahal__vfio_iova_refresh(struct dmahal_platform *p, struct vfio_plat *vp);
/* group.c */
int dmahal__vfio_group_get(struct dmahal_platform *p, int id, struct vfio_group **out);
void dmahal__vfio_group_put(struct vfio_plat *vp, struct vfio_group *g);
/* device.c */
int dmahal__vfio_device_open(struct dmahal_device *d, const char *name);
void dmahal__vfio_device_close(struct dmahal_device *d);
/* irq.c: interrupts through VFIO_DEVICE_SET_IRQS, the config region (dmahal__vfio_ops). */
unsigned dmahal__vfio_irq_count(struct dmahal_device *d, enum dmahal_irq_type type);
int dmahal__vfio_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec,
                            int *fds);
void dmahal__vfio_irq_disable(struct dmahal_device *d);
int dmahal__vfio_irq_unmask(struct dmahal_device *d, unsigned vector);
unsigned dmahal__vfio_config_size(struct dmahal_device *d);
int dmahal__vfio_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len);
int dmahal__vfio_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len);
/* list.c: the PCI devices in sysfs. */
int dmahal__vfio_device_list(struct dmahal_device_info **out);
/* Finds the @nth (0: first) device with IDs @vendor:@device, in address order; writes its
 * address. -ENXIO when there is none. */
int dmahal__vfio_find_ids(unsigned vendor, unsigned device, unsigned nth, char *addr, size_t size);
uint64_t dmahal__vfio_mmio_read(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size);
void dmahal__vfio_mmio_write(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                             unsigned size);

#endif /* DMAHAL_VFIO_H */
