/* SPDX-License-Identifier: MIT */
/*
 * noiommu_reg.c - registered memory on the noiommu platform, in the guest without an IOMMU
 * (tests/vm/run.sh --machine noiommu): the program's own hugepages, registered with
 * dmahal_register, go to the 64-bit edu and the NVMe controller in place (the bus address in
 * the list is the physical address pagemap shows, and no bounce page is held), with every
 * transfer read back; malloc'd memory is still bounced beside them; ordinary memory, locked or
 * not, and private hugepages a fork would copy are refused; and the 28-bit edu, which does not
 * reach the hugepages above 4 GiB, bounces its maps of them through the low reservation.
 */
#include "edu/edu_driver.h"
#include "noiommu_rig.h"
#include "nvme/nvme_driver.h"

#include <dmahal/dmahal.h>

#include <sys/mman.h>
#include <sys/uio.h>

#define HUGE (2u << 20)

/* @n bytes of hugepages of the program's own, mapped shared. */
static unsigned char *huge_map(size_t n)
{
    unsigned char *va =
        mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

    CHECK(va != MAP_FAILED);
    return va;
}

/* Maps [va, va + len) to the device and checks where it went: in place at pagemap's address,
 * or bounced under @max. Returns the list, still mapped. */
static struct dmahal_sgl *map_at(struct rig *r, struct dmahal_adapter *a, void *va, size_t len,
                                 enum dmahal_dir dir, bool want_direct, uint64_t max)
{
    struct iovec v = {va, len};
    struct dmahal_sgl *s;
    uint64_t pa = 0;

    CHECK_OK(dmahal_map(a, &v, 1, dir, 0, &s));
    CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, va, &pa));
    printf("  va %p (physical 0x%llx): %u segment(s), the first at bus 0x%llx, %s\n", va,
           (unsigned long long)pa, s->nseg, (unsigned long long)s->seg[0].la,
           dmahal_adapter_map_registers_in_use(a) ? "bounced" : "in place");
    if (want_direct) {
        CHECK_EQ(s->nseg, 1);
        CHECK_EQ_U(s->seg[0].la, pa);
        CHECK_EQ(dmahal_adapter_map_registers_in_use(a), 0);
    } else {
        CHECK_GT(dmahal_adapter_map_registers_in_use(a), 0);
        for (unsigned i = 0; i < s->nseg; i++)
            CHECK_LE_U(s->seg[i].la + s->seg[i].len - 1, max);
    }
    return s;
}

/* @src into the edu through a map of it, back into @dst through a map of that; checks the
 * bytes and where each map went. */
static void edu_trip(struct rig *r, unsigned char *src, unsigned char *dst, bool want_direct)
{
    struct dmahal_desc desc;
    struct dmahal_sgl *s;
    uint64_t max;

    CHECK_OK(dmahal_adapter_desc(r->a, &desc));
    max = desc.addr_bits < 64 ? ((uint64_t)1 << desc.addr_bits) - 1 : UINT64_MAX;
    pattern(src, LEN, (unsigned)(uintptr_t)src);
    memset(dst, 0, LEN);
    s = map_at(r, r->a, src, LEN, DMAHAL_TO_DEVICE, want_direct, max);
    CHECK_EQ(s->nseg, 1);
    CHECK_OK(edu_dma(r->e, s->seg[0].la, 0, LEN, false));
    CHECK_OK(dmahal_unmap(r->a, s));
    s = map_at(r, r->a, dst, LEN, DMAHAL_FROM_DEVICE, want_direct, max);
    CHECK_EQ(s->nseg, 1);
    CHECK_OK(edu_dma(r->e, s->seg[0].la, 0, LEN, true));
    CHECK_OK(dmahal_unmap(r->a, s));
    CHECK(memcmp(src, dst, LEN) == 0);
}

TEST(edu64_registered_hugepage_maps_in_place)
{
    unsigned char *h = huge_map(HUGE), *heap = malloc(LEN), *back = malloc(LEN);
    struct dmahal_reg_info info;
    uint64_t pa;
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU64", 64);
    CHECK_OK(dmahal_register(r.a, h, HUGE));
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.regions, 1);
    CHECK_OK(dmahal_noiommu_virt_to_phys(r.p, h, &pa));
    printf("  registered hugepage at va %p, physical 0x%llx\n", (void *)h, (unsigned long long)pa);
    edu_trip(&r, h + 100, h + HUGE - 8192, true);
    /* Beside it, malloc'd memory is bounced, both ways. */
    edu_trip(&r, heap, back, false);
    /* A live map keeps the registration; unregistered, the same memory is bounced. */
    {
        struct dmahal_sgl *s = map_at(&r, r.a, h, LEN, DMAHAL_TO_DEVICE, true, UINT64_MAX);

        CHECK_ERR(dmahal_unregister(r.a, h, HUGE), -EBUSY);
        CHECK_OK(dmahal_unmap(r.a, s));
    }
    CHECK_OK(dmahal_unregister(r.a, h, HUGE));
    edu_trip(&r, h + 100, h + HUGE - 8192, false);
    munmap(h, HUGE);
    free(heap);
    free(back);
    rig_down(&r);
}

static void pair_print(const unsigned char *h, uint64_t pa0, uint64_t pa1)
{
    printf("  hugepages at va %p: physical 0x%llx and 0x%llx, %s\n", (const void *)h,
           (unsigned long long)pa0, (unsigned long long)pa1,
           pa1 == pa0 + HUGE ? "side by side" : "apart");
}

/* Two hugepages of the program's own that lie apart in physical memory; NULL if 16 tries gave
 * none. Pairs that do not serve stay mapped until the search ends, so that the next try gets
 * other pages. */
static unsigned char *pair_apart(struct rig *r)
{
    unsigned char *tried[16], *found = NULL;
    unsigned n = 0;

    while (!found && n < 16) {
        unsigned char *h = huge_map(2 * HUGE);
        uint64_t pa0, pa1;

        h[0] = 1;
        h[HUGE] = 1;
        CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, h, &pa0));
        CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, h + HUGE, &pa1));
        pair_print(h, pa0, pa1);
        if (pa1 != pa0 + HUGE)
            found = h;
        else
            tried[n++] = h;
    }
    while (n)
        munmap(tried[--n], 2 * HUGE);
    return found;
}

/*
 * Two hugepages of the program's own side by side in physical memory; NULL if 32 did not hold
 * two. Which pages two faults get depends on the kernel's free list, which the programs before
 * this one reshuffled (seen: two runs of descending addresses, interleaved). So single
 * hugepages are taken until two lie side by side, the others given back, then those two, the
 * higher first: the free list hands out the last page freed first, so a fresh two-page
 * mapping faulted in address order gets the lower one, then the higher.
 */
static unsigned char *pair_side_by_side(struct rig *r)
{
    unsigned char *one[32], *h;
    uint64_t pa[32];
    int n = 0, lo = -1, hi = -1;

    while (n < 32 && lo < 0) {
        one[n] = huge_map(HUGE);
        one[n][0] = 1;
        CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, one[n], &pa[n]));
        for (int k = 0; k < n && lo < 0; k++) {
            if (pa[k] == pa[n] + HUGE)
                lo = n, hi = k;
            else if (pa[n] == pa[k] + HUGE)
                lo = k, hi = n;
        }
        n++;
    }
    for (int i = 0; i < n; i++)
        if (i != lo && i != hi)
            munmap(one[i], HUGE);
    if (lo < 0)
        return NULL;
    munmap(one[hi], HUGE);
    munmap(one[lo], HUGE);
    h = huge_map(2 * HUGE);
    h[0] = 1;
    h[HUGE] = 1;
    CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, h, &pa[0]));
    CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, h + HUGE, &pa[1]));
    pair_print(h, pa[0], pa[1]);
    if (pa[1] != pa[0] + HUGE) {
        munmap(h, 2 * HUGE);
        return NULL;
    }
    return h;
}

/* A registration over two hugepages: in place within each, and across the two only when they
 * lie side by side in physical memory; bounced otherwise, never wrong. Both kinds of pair. */
TEST(edu64_map_across_two_hugepages)
{
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU64", 64);
    for (int adjacent = 0; adjacent < 2; adjacent++) {
        unsigned char *h = adjacent ? pair_side_by_side(&r) : pair_apart(&r);
        struct dmahal_sgl *s;

        CHECK(h != NULL); /* the guest's pool of 192 holds pairs of both kinds */
        CHECK_OK(dmahal_register(r.a, h, 2 * HUGE));
        /* Within the second hugepage: in place wherever it lies. */
        edu_trip(&r, h + HUGE + 4096, h + HUGE + 65536, true);
        pattern(h + HUGE - 1000, LEN, 9);
        s = map_at(&r, r.a, h + HUGE - 1000, LEN, DMAHAL_TO_DEVICE, adjacent, UINT64_MAX);
        CHECK_EQ(s->nseg, 1);
        CHECK_OK(edu_dma(r.e, s->seg[0].la, 0, LEN, false));
        CHECK_OK(dmahal_unmap(r.a, s));
        memset(h + 8192, 0, LEN);
        CHECK_OK(edu_read(r.e, 0, h + 8192, LEN));
        CHECK(memcmp(h + 8192, h + HUGE - 1000, LEN) == 0);
        CHECK_OK(dmahal_unregister(r.a, h, 2 * HUGE));
        munmap(h, 2 * HUGE);
    }
    rig_down(&r);
}

TEST(edu28_registered_hugepage_above_its_reach_is_bounced)
{
    unsigned char *h = huge_map(HUGE);
    uint64_t pa;
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU", 28);
    CHECK_OK(dmahal_register(r.a, h, HUGE));
    CHECK_OK(dmahal_noiommu_virt_to_phys(r.p, h, &pa));
    printf("  registered hugepage at physical 0x%llx, the 28-bit edu reaches below 0x10000000\n",
           (unsigned long long)pa);
    CHECK_GE_U(pa, 1ull << 32); /* the guest's hugepages lie above 4 GiB */
    edu_trip(&r, h + 100, h + 65536, false);
    CHECK_OK(dmahal_unregister(r.a, h, HUGE));
    munmap(h, HUGE);
    rig_down(&r);
}

TEST(register_refuses_memory_that_moves)
{
    unsigned char *heap = malloc(3 * 4096);
    unsigned char *anon =
        mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *priv =
        mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    struct dmahal_reg_info info;
    struct vm_capture c;
    struct rig r;

    CHECK(anon != MAP_FAILED && priv != MAP_FAILED);
    CHECK_OK(mlock(anon, HUGE));
    rig_up(&r, "DMAHAL_VM_EDU64", 64);
    vm_capture_begin(&c);
    CHECK_ERR(dmahal_register(r.a, heap, 3 * 4096), -ENOTSUP);
    CHECK_ERR(dmahal_register(r.a, anon, HUGE), -ENOTSUP);
    vm_capture_end(&c);
    CHECK_CONTAINS(c.text, "not hugetlbfs memory");
    CHECK_ERR(dmahal_register(r.a, priv, HUGE), -ENOTSUP); /* a fork would copy it */
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.regions, 0);
    CHECK_OK(madvise(priv, HUGE, MADV_DONTFORK));
    CHECK_OK(dmahal_register(r.a, priv, HUGE));
    edu_trip(&r, priv, priv + 8192, true);
    CHECK_OK(dmahal_unregister(r.a, priv, HUGE));
    munmap(priv, HUGE);
    munmap(anon, HUGE);
    free(heap);
    rig_down(&r);
}

/* Writes a pattern to the namespace straight from @mem and reads it back straight into it. */
static void nvme_trip(struct nvme *n, const struct nvme_info *info, unsigned char *mem, size_t len,
                      uint64_t lba)
{
    unsigned char *want = malloc(len);

    CHECK(want != NULL);
    pattern(mem, len, (unsigned)lba);
    memcpy(want, mem, len);
    CHECK_OK(nvme_io_mem(n, NVME_CMD_WRITE, lba, (uint32_t)(len / info->lba_size), mem, NULL));
    memset(mem, 0, len);
    CHECK_OK(nvme_io_mem(n, NVME_CMD_READ, lba, (uint32_t)(len / info->lba_size), mem, NULL));
    CHECK(memcmp(mem, want, len) == 0);
    free(want);
}

TEST(nvme_registered_hugepage_maps_in_place)
{
    unsigned char *h = huge_map(HUGE), *heap = malloc(64 << 10);
    struct dmahal_adapter *a;
    struct dmahal_sgl *s;
    struct nvme_info info;
    struct nvme *n;
    struct rig r = {0};

    CHECK_OK(dmahal_platform_open(NULL, &r.p));
    CHECK_OK(dmahal_device_open(r.p, vm_dev("DMAHAL_VM_NVME"), &r.d));
    CHECK_OK(nvme_open(r.d, &n));
    CHECK_OK(nvme_identify(n, &info));
    a = nvme_adapter(n);
    CHECK_OK(dmahal_register(a, h, HUGE));
    /* Each map of it is in place: one segment at pagemap's address, no bounce page. */
    s = map_at(&r, a, h + 65536, 64 << 10, DMAHAL_TO_DEVICE, true, UINT64_MAX);
    CHECK_OK(dmahal_unmap(a, s));
    nvme_trip(n, &info, h + 65536, 64 << 10, 512);
    nvme_trip(n, &info, h + 512, 2 * 4096, 640);
    nvme_trip(n, &info, h, info.max_transfer, 1024);
    printf("  NVMe: 64 KiB, 8 KiB at offset 512 and %zu KiB from the registered hugepage, in "
           "place, read back equal\n",
           info.max_transfer >> 10);
    /* malloc'd memory is bounced, and its data arrives all the same. */
    s = map_at(&r, a, heap, 64 << 10, DMAHAL_TO_DEVICE, false, UINT64_MAX);
    CHECK_OK(dmahal_unmap(a, s));
    nvme_trip(n, &info, heap, 64 << 10, 2048);
    CHECK_OK(dmahal_unregister(a, h, HUGE));
    nvme_close(n);
    dmahal_device_close(r.d);
    dmahal_platform_close(r.p);
    munmap(h, HUGE);
    free(heap);
}
