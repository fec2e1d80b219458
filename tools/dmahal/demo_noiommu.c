/* SPDX-License-Identifier: MIT */
/*
 * demo_noiommu.c - `dmahal demo --platform noiommu`: the seed's story on a real kernel without
 * an IOMMU, on QEMU's (or any) edu device bound to uio_pci_generic.
 *
 * The wrong way is what drivers without a HAL do there: hugepage memory, its physical address
 * read from /proc/self/pagemap, programmed into the device. The hugepages lie above 4 GiB, the
 * edu drives 28 address bits, so the address is cut and the DMA goes elsewhere. To show where
 * without harming the machine, the demo picks a hugepage whose cut address falls in the low
 * reservation the platform owns (memmap=, its lowmem), watches that page through /dev/mem and
 * sees the device's write land there. The right way, the adapter's common buffer, works.
 * Device: $DMAHAL_EDU_DEVICE, else $DMAHAL_VM_EDU, else the first 1234:11e8.
 */
#include "edu/edu_regs.h"
#include "tool.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE     (2u << 20)
#define TRIES    4096u /* at most 8 GiB of hugepages tried */
#define MASK28   ((1ull << EDU_DEFAULT_ADDR_BITS) - 1)
#define KEEP_TOP (16u << 20) /* the platform's arenas come from the top of its low range */
#define SPINS    100000000u

static const char MESSAGE[] = "hello from the driver";

struct nstory {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    uint64_t low, low_len;
    char *page;          /* the driver's own hugepage (the wrong way) */
    uint64_t pa, cut;    /* its physical address, and that cut to 28 bits */
    unsigned char *land; /* the low page at the cut address, through /dev/mem */
    uint64_t lo, hi;     /* the physical addresses the hugepages tried had */
    unsigned tried;
};

static int dma(struct dmahal_device *d, uint64_t ram, bool to_ram)
{
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_SRC, to_ram ? EDU_BUF_ADDR : ram);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_DST, to_ram ? ram : EDU_BUF_ADDR);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_CNT, sizeof(MESSAGE));
    dmahal_mmio_write32(d, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0));
    for (unsigned spin = 0; dmahal_mmio_read32(d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN; spin++)
        if (spin == SPINS)
            return -ETIMEDOUT;
    return 0;
}

/* Finds the wrong way's hugepage, trying the whole pool; the ones that do not serve go back.
 * A hugepage is physically contiguous, so its address cut to 28 bits is one 2 MiB run of the
 * low 256 MiB: one pagemap read per hugepage tells whether it lands in the low range. */
static int pick_page(struct nstory *s)
{
    char **tried = NULL;
    unsigned n = 0, cap = 0;
    int rc = -ENOMEM;

    s->lo = UINT64_MAX;
    while (!s->page && n < TRIES) {
        char *va = mmap(NULL, HUGE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
        uint64_t pa, cut;

        if (va == MAP_FAILED)
            break;
        if (n == cap) {
            char **more = realloc(tried, (cap = cap ? 2 * cap : 64) * sizeof(*tried));

            if (!more) {
                munmap(va, HUGE);
                break;
            }
            tried = more;
        }
        tried[n++] = va;
        va[0] = 0;
        if (dmahal_noiommu_virt_to_phys(s->p, va, &pa)) {
            rc = -EPERM;
            break;
        }
        s->lo = pa < s->lo ? pa : s->lo;
        s->hi = pa + HUGE - 1 > s->hi ? pa + HUGE - 1 : s->hi;
        s->tried = n;
        cut = pa & MASK28;
        if (pa > MASK28 && cut >= s->low && cut + 4096 <= s->low + s->low_len - KEEP_TOP) {
            s->page = va;
            s->pa = pa;
            s->cut = cut;
            tried[--n] = NULL;
            rc = 0;
        }
    }
    while (n)
        munmap(tried[--n], HUGE);
    free(tried);
    return rc;
}

static int watch_landing(struct nstory *s)
{
    int fd = open("/dev/mem", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    s->land = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)s->cut);
    close(fd);
    if (s->land == MAP_FAILED) {
        s->land = NULL;
        return -EACCES;
    }
    memset(s->land, '.', 4096);
    s->land[4095] = '\0';
    return 0;
}

static int setup(struct nstory *s, const char *spec, const char *name)
{
    struct dmahal_desc desc = {.addr_bits = EDU_DEFAULT_ADDR_BITS};
    int rc;

    if ((rc = tool_platform_open(spec, &s->p)))
        return rc;
    if (strcmp(dmahal_platform_name(s->p), "noiommu") != 0)
        return -EINVAL;
    if ((rc = dmahal_noiommu_lowmem(s->p, &s->low, &s->low_len))) {
        fprintf(stderr, "dmahal demo: the platform has no low range: reserve one with "
                        "memmap=128M$0x8000000 and give noiommu:lowmem=0x8000000+128M\n");
        return rc;
    }
    if ((rc = dmahal_device_open(s->p, name, &s->d)))
        return rc;
    printf("device:  %s, an edu, whose DMA engine drives %u address bits\n", name,
           EDU_DEFAULT_ADDR_BITS);
    tool_dump_indented(s->p, DMAHAL_DUMP_PLATFORM, "  ", NULL);
    if ((rc = dmahal_adapter_get(s->d, &desc, &s->a)))
        return rc;
    return dmahal_common_alloc(s->a, 4096, 0, &s->b);
}

static int wrong_way(struct nstory *s)
{
    int rc;

    printf("\n-- Part 1: the wrong way (a hugepage + its physical address from pagemap) --\n");
    if ((rc = pick_page(s))) {
        fprintf(stderr, "dmahal demo: %s\n",
                rc == -EPERM
                    ? "pagemap shows no physical addresses: run as root"
                    : "no hugepage whose address, cut to 28 bits, falls in the low "
                      "range (reserve more hugepages, e.g. hugepages=192, so that some lie where "
                      "the address cut to 28 bits falls in the low range)");
        fprintf(stderr, "dmahal demo: %u hugepage(s) tried, physical 0x%llx-0x%llx\n", s->tried,
                (unsigned long long)s->lo, (unsigned long long)s->hi);
        return rc;
    }
    if ((rc = watch_landing(s)))
        return rc;
    memset(s->page, 0, 4096);
    printf("  mmap(MAP_HUGETLB) gave va %p; /proc/self/pagemap says physical 0x%llx\n",
           (void *)s->page, (unsigned long long)s->pa);
    printf("  the driver puts \"%s\" in the device's buffer, then programs DMA_DST = 0x%llx\n",
           MESSAGE, (unsigned long long)s->pa);
    memcpy(s->b.va, MESSAGE, sizeof(MESSAGE));
    if ((rc = dma(s->d, s->b.la, false)) || (rc = dma(s->d, s->pa, true)))
        return rc;
    printf("  the device drives 28 bits: it wrote to 0x%llx & 0x%llx = 0x%llx\n",
           (unsigned long long)s->pa, (unsigned long long)MASK28, (unsigned long long)s->cut);
    printf("  the driver's hugepage holds: \"%.21s\"\n", s->page[0] ? s->page : "(nothing)");
    printf("  physical 0x%llx holds:      \"%.21s\"  (inside the low reservation, 0x%llx+%lluM: "
           "harmless here; anywhere else it is someone's memory)\n",
           (unsigned long long)s->cut, (char *)s->land, (unsigned long long)s->low,
           (unsigned long long)(s->low_len >> 20));
    return memcmp(s->land, MESSAGE, sizeof(MESSAGE)) == 0 && s->page[0] == 0 ? 0 : -EIO;
}

static int right_way(struct nstory *s)
{
    int rc;

    printf("\n-- Part 2: the seed's way (adapter + common buffer + logical address) --\n");
    printf("  dmahal_adapter_get(addr_bits = 28) + dmahal_common_alloc: va %p, la 0x%llx "
           "(from the low range, below 2^28)\n",
           s->b.va, (unsigned long long)s->b.la);
    memset(s->b.va, 0, 4096);
    if ((rc = dma(s->d, s->b.la, true)))
        return rc;
    printf("  the device wrote to la 0x%llx; the buffer holds: \"%s\"\n",
           (unsigned long long)s->b.la, (char *)s->b.va);
    return strcmp(s->b.va, MESSAGE) == 0 ? 0 : -EIO;
}

int tool_demo_noiommu(const char *spec)
{
    const char *name = getenv("DMAHAL_EDU_DEVICE");
    struct nstory s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!name || !*name)
        name = getenv("DMAHAL_VM_EDU");
    if (!name || !*name)
        name = "1234:11e8";
    printf("=== dmahal demo on \"%s\" ===\n", spec);
    printf("machine: no IOMMU (bus address = physical address): RAM above 4 GiB, hugepages "
           "there\n");
    rc = setup(&s, spec, name);
    if (!rc)
        rc = wrong_way(&s);
    if (!rc)
        rc = right_way(&s);
    if (s.land)
        munmap(s.land, 4096);
    if (s.page)
        munmap(s.page - ((uintptr_t)s.page & (HUGE - 1)), HUGE);
    if (s.b.va)
        dmahal_common_free(s.a, &s.b);
    dmahal_platform_close(s.p);
    printf("\n=== summary ===\n");
    if (rc) {
        printf("%s  FAILED: %s\n", spec, dmahal_strerror(rc));
        return TOOL_EXIT_FAIL;
    }
    printf("%s  wrong way: the pagemap address 0x%llx, cut to 28 bits, sent the DMA to 0x%llx\n",
           spec, (unsigned long long)s.pa, (unsigned long long)s.cut);
    printf("%s  right way: the common buffer at la 0x%llx received it\n", spec,
           (unsigned long long)s.b.la);
    printf("the story unfolded as explained: the wrong way misdirected the DMA, the right way "
           "delivered it\n");
    return TOOL_EXIT_OK;
}
