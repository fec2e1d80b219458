/* SPDX-License-Identifier: MIT */
/*
 * noiommu.h - private: the "noiommu" platform: real PCI devices on a machine without an IOMMU,
 * where a device's bus address is the physical address and the device reaches all of memory.
 *
 * Devices are bound to uio_pci_generic (or to vfio-pci in the kernel's no-IOMMU mode, where
 * the kernel has CONFIG_VFIO_NOIOMMU): their BARs are the sysfs resourceN files, mapped; their
 * configuration space is the sysfs config file; bus mastering is turned on when the first
 * adapter is got and off when the device is closed; INTx is the uio fd (MSI needs vfio-pci).
 *
 * DMA memory comes only from memory whose physical address never moves, in regions:
 *   - hugetlbfs pages (2 MiB by default), mapped shared and kept out of children, whose
 *     physical addresses come from /proc/self/pagemap (which shows them only with
 *     CAP_SYS_ADMIN); the kernel does not migrate or swap them while they are mapped;
 *   - a low-memory reservation the administrator set aside with the kernel's memmap=SIZE$START
 *     (or a device tree reserved-memory node), mapped through /dev/mem: the one place a
 *     device narrower than where the hugepages lie (28 or 32 address bits, above 4 GiB of RAM)
 *     can get memory at all.
 * Each region has a range allocator over its bus addresses; an allocation takes the highest fit
 * below the adapter's reach, hugepages first, so that the low memory is left for the devices
 * that need it. Streaming maps give a device memory the library owns (common buffers, bounce
 * pages, hugepages the application registered) where it is, when it fits; any other memory is
 * bounced: ordinary pages move (mlock does not stop migration or compaction), so their
 * physical address is never handed out, and registering them is refused (reg.c).
 *
 * Setup failures print one line to stderr naming the fix, and return:
 *   -ENOENT  no PCI device at that address, or none with that vendor:device;
 *   -ENODEV  the device is bound to no driver, or to vfio-pci on a kernel without no-IOMMU mode;
 *   -EBUSY   the device is bound to another driver;
 *   -EACCES  no permission on sysfs or /dev/mem (run as root);
 *   -EPERM   /proc/self/pagemap shows no physical addresses (CAP_SYS_ADMIN is needed);
 *   -EINVAL  a malformed address, vendor:device or platform option;
 *   -ENOMEM  no DMA memory the adapter reaches: the message says what to reserve;
 *   -ENOTSUP dmahal_register of memory whose physical addresses may move (not hugetlbfs
 *            pages, or private ones a fork would copy): the message says which.
 */
#ifndef DMAHAL_NOIOMMU_H
#define DMAHAL_NOIOMMU_H

#include "core/platform_ops.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#define NIO_SYSFS_PCI   "/sys/bus/pci/devices"
#define NIO_CONFIG_FILE "/etc/dmahal/noiommu.conf"
#define NIO_ENV_LOWMEM  "DMAHAL_NOIOMMU_LOWMEM"
#define NIO_ENV_CONFIG  "DMAHAL_NOIOMMU_CONFIG"

/* A run of DMA memory with fixed bus addresses: the low reservation, or a hugepage mapping. */
struct nio_region {
    uint8_t *va;               /* the CPU's view of bus address pa */
    uint64_t pa;               /* bus (= physical) address of va */
    size_t len;                /* bytes */
    void *map;                 /* what to munmap, and its length */
    size_t map_len;            /* (the low region reserves extra address space to align) */
    bool huge;                 /* a hugepage mapping; else the low reservation */
    struct dmahal__range free; /* free bus addresses of the region */
    struct nio_region *next;
};

struct nio_plat {
    pthread_mutex_t lock; /* the regions */
    struct nio_region *regions;
    /* Options, from the spec, else the environment, else the configuration file. */
    char mem_path[PATH_MAX];           /* the physical-memory device, /dev/mem */
    char sysfs[PATH_MAX];              /* the PCI devices directory */
    char dev_dir[PATH_MAX];            /* where the uioN nodes are, /dev */
    char low_from[PATH_MAX];           /* where the lowmem option came from, for messages */
    uint64_t low_start, low_len;       /* the low reservation; low_len 0: none */
    bool huge_on;                      /* use hugepages (hugepages=on, the default) */
    size_t huge_size;                  /* the default hugepage size */
    uint64_t huge_lowest;              /* the lowest bus address a fresh hugepage had; UINT64_MAX */
    int huge_error;                    /* why the last hugepage mapping failed; 0: none did */
    atomic_bool said_nomem, said_huge; /* each message once per platform */
    atomic_bool said_reg;              /* the refusal of a registration, once too */
};

struct nio_bar {
    volatile uint8_t *map;
    uint64_t size;
};

struct nio_dev {
    char addr[16];   /* DDDD:BB:SS.F */
    char driver[32]; /* uio_pci_generic or vfio-pci */
    int cfg_fd;      /* the sysfs config file */
    int uio_fd;      /* /dev/uioN, for INTx; -1 if none */
    int irq_fd;      /* its copy while INTx is enabled; -1 */
    bool master;     /* bus mastering turned on by this platform */
    struct nio_bar bar[DMAHAL__BARS];
};

/* platform.c: one line to stderr, "dmahal: noiommu: ...". */
__attribute__((format(printf, 1, 2))) void dmahal__nio_say(const char *fmt, ...);
/* Parses "START+SIZE" (each as dmahal__parse_size takes it), page-aligned, no wrap. */
int dmahal__nio_parse_lowmem(const char *s, uint64_t *start, uint64_t *len);

/* device.c */
int dmahal__nio_device_open(struct dmahal_device *d, const char *name);
void dmahal__nio_device_close(struct dmahal_device *d);
uint64_t dmahal__nio_mmio_read(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size);
void dmahal__nio_mmio_write(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                            unsigned size);
int dmahal__nio_adapter_init(struct dmahal_adapter *a);
unsigned dmahal__nio_config_size(struct dmahal_device *d);
int dmahal__nio_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len);
int dmahal__nio_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len);
unsigned dmahal__nio_irq_count(struct dmahal_device *d, enum dmahal_irq_type type);
int dmahal__nio_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec,
                           int *fds);
void dmahal__nio_irq_disable(struct dmahal_device *d);
int dmahal__nio_irq_unmask(struct dmahal_device *d, unsigned vector);
int dmahal__nio_irq_consume(struct dmahal_device *d, unsigned vector, int fd);

/* mem.c */
int dmahal__nio_low_open(struct nio_plat *np);
void dmahal__nio_regions_free(struct nio_plat *np);
int dmahal__nio_virt_to_phys(const void *va, uint64_t *pa);
/* The bus address of @va if it lies in one of the platform's regions; -ENOENT if not (the
 * low region is a /dev/mem mapping, which pagemap does not show). */
int dmahal__nio_region_phys(struct nio_plat *np, const void *va, uint64_t *pa);
int dmahal__nio_mem_alloc(struct dmahal_adapter *a, size_t len, size_t align,
                          struct dmahal__chunk *out);
void dmahal__nio_mem_free(struct dmahal_adapter *a, const struct dmahal__chunk *ch);
int dmahal__nio_pin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus);
void dmahal__nio_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus);
int dmahal__nio_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                             struct dmahal__chunk *out);
void dmahal__nio_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch);
void dmahal__nio_describe_mem(struct nio_plat *np, FILE *f);

/* reg.c */
/* Checks, from an smaps listing @f, that [start, end) lies in hugetlbfs mappings that a fork
 * leaves in place (shared, or MADV_DONTFORK), and gives the smallest of their page sizes in
 * *page. 0; -EFAULT when part of the range is not mapped; -ENOTSUP when some of it is other
 * memory, *why saying what. */
int dmahal__nio_smaps_check(FILE *f, uintptr_t start, uintptr_t end, size_t *page,
                            const char **why);
int dmahal__nio_reg_pin(struct dmahal_adapter *a, void *va, size_t len, unsigned *shift,
                        dmahal_addr_t **bus);
void dmahal__nio_reg_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus);

#endif /* DMAHAL_NOIOMMU_H */
