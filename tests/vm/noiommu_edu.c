/* SPDX-License-Identifier: MIT */
/*
 * noiommu_edu.c - the noiommu platform on QEMU's edu devices in the guest without an IOMMU
 * (tests/vm/run.sh --machine noiommu): streaming maps of malloc'd memory bounced through the
 * low reservation (28-bit edu) or hugepages (64-bit edu), maps of common buffers and hugepage
 * memory given to the device in place, every transfer read back; and the seed's wrong way on a
 * real kernel: a hugepage's physical address from pagemap, above 2^28, programmed into the
 * 28-bit edu is truncated, and the device writes into the low reservation instead (where it
 * harms nothing of the guest's), while the adapter's common buffer works.
 */
#include "edu/edu_driver.h"
#include "edu/edu_regs.h"
#include "noiommu_rig.h"

#include <dmahal/dmahal.h>

#include <sys/mman.h>
#include <sys/uio.h>

/* @src to the device through a map of it, back into @dst through a map of that; checks. */
static void round_trip(struct rig *r, void *src, void *dst, bool want_direct)
{
    struct iovec in = {src, LEN}, out = {dst, LEN};
    struct dmahal_sgl *s;
    uint64_t pa = 0;

    CHECK_OK(dmahal_map(r->a, &in, 1, DMAHAL_TO_DEVICE, 0, &s));
    CHECK_EQ(s->nseg, 1);
    printf("  to the device: va %p at bus 0x%llx (%s)\n", src, (unsigned long long)s->seg[0].la,
           dmahal_adapter_map_registers_in_use(r->a) ? "bounced" : "in place");
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r->a) == 0, want_direct);
    if (want_direct) {
        CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, src, &pa));
        CHECK_EQ_U(s->seg[0].la, pa);
    }
    CHECK_OK(edu_dma(r->e, s->seg[0].la, 0, LEN, false));
    CHECK_OK(dmahal_unmap(r->a, s));
    CHECK_OK(dmahal_map(r->a, &out, 1, DMAHAL_FROM_DEVICE, 0, &s));
    CHECK_EQ(s->nseg, 1);
    CHECK_OK(edu_dma(r->e, s->seg[0].la, 0, LEN, true));
    CHECK_OK(dmahal_unmap(r->a, s));
    CHECK(memcmp(src, dst, LEN) == 0);
}

TEST(edu28_malloc_is_bounced_through_the_low_range)
{
    unsigned char *src = malloc(LEN), *dst = calloc(1, LEN);
    struct iovec v = {src, LEN};
    struct dmahal_sgl *s;
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU", 28);
    pattern(src, LEN, 1);
    CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_TO_DEVICE, 0, &s));
    CHECK_GE_U(s->seg[0].la, r.low);
    CHECK_LE_U(s->seg[0].la + LEN, r.low + r.low_len);
    CHECK_LE_U(s->seg[0].la + LEN, 1u << 28);
    CHECK_OK(dmahal_unmap(r.a, s));
    round_trip(&r, src, dst, false);
    free(src);
    free(dst);
    rig_down(&r);
}

TEST(edu28_common_buffer_maps_in_place)
{
    struct dmahal_buf b;
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 2 * 4096, 0, &b));
    CHECK_GE_U(b.la, r.low);
    CHECK_LE_U(b.la + b.len, 1u << 28);
    pattern(b.va, LEN, 2);
    round_trip(&r, b.va, (char *)b.va + 4096, true);
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_down(&r);
}

TEST(edu64_hugepage_memory_maps_in_place)
{
    struct dmahal_buf b;
    uint64_t pa;
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU64", 64);
    CHECK_OK(dmahal_common_alloc(r.a, 2 * 4096, 0, &b));
    /* A wide device gets hugepage memory, above 4 GiB on this machine, and the low range is
     * left to the narrow ones. */
    CHECK_OK(dmahal_noiommu_virt_to_phys(r.p, b.va, &pa));
    CHECK_EQ_U(pa, b.la);
    printf("  common buffer of the 64-bit edu: bus 0x%llx (a hugepage)\n",
           (unsigned long long)b.la);
    CHECK(b.la < r.low || b.la >= r.low + r.low_len);
    pattern(b.va, LEN, 3);
    round_trip(&r, b.va, (char *)b.va + 4096, true);
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_down(&r);
}

TEST(edu64_malloc_is_bounced)
{
    unsigned char *src = malloc(LEN), *dst = calloc(1, LEN);
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU64", 64);
    pattern(src, LEN, 4);
    round_trip(&r, src, dst, false);
    free(src);
    free(dst);
    rig_down(&r);
}

/* A hugepage of the driver's own whose physical address, cut to 28 bits, lands on a page of
 * the low reservation below its top @keep bytes, where the platform's arenas are (they are
 * taken highest first). The whole pool is tried: most of the guest's hugepages lie where the
 * cut falls below the reservation, and which ones do not depends on the boot. A hugepage is
 * physically contiguous, so one pagemap read tells where all of it lands. */
static void *wrong_page(struct rig *r, uint64_t keep, uint64_t *pa, uint64_t *cut)
{
    const size_t huge = 2u << 20;
    static void *tried[4096];
    void *found = NULL;
    unsigned n = 0;

    while (!found && n < sizeof(tried) / sizeof(tried[0])) {
        char *va = mmap(NULL, huge, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
        uint64_t c;

        if (va == MAP_FAILED)
            break;
        tried[n++] = va;
        va[0] = 0;
        CHECK_OK(dmahal_noiommu_virt_to_phys(r->p, va, pa));
        c = *pa & ((1u << 28) - 1);
        if (*pa >= (1u << 28) && c >= r->low && c + 4096 <= r->low + r->low_len - keep) {
            found = va;
            *cut = c;
            tried[--n] = NULL;
        }
    }
    printf("  %u hugepage(s) tried before one whose cut address lands in the low range\n", n);
    while (n)
        munmap(tried[--n], huge);
    return found;
}

TEST(wrong_way_pagemap_address_is_truncated)
{
    static const char msg[] = "hello from the driver";
    struct dmahal_buf b;
    uint64_t pa = 0, cut = 0;
    unsigned char *land;
    char got[sizeof(msg)];
    char *page;
    struct rig r;
    int fd;

    rig_up(&r, "DMAHAL_VM_EDU", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_GE_U(b.la, r.low + r.low_len - (16u << 20));
    page = wrong_page(&r, 16u << 20, &pa, &cut);
    /* The guest's pool (hugepages=192) always holds one: a skip here would hide a regression. */
    CHECK(page != NULL); /* no hugepage whose address cut to 28 bits lands in the low range */
    fd = open("/dev/mem", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    land = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)cut);
    CHECK(land != MAP_FAILED);
    close(fd);
    memset(land, 0xee, 4096);
    memset(page, 0, 4096);
    printf("  the wrong way: a hugepage at va %p, physical 0x%llx (from pagemap)\n", (void *)page,
           (unsigned long long)pa);

    /* The message goes into the device the right way; the device writes it out the wrong way. */
    CHECK_OK(edu_write(r.e, 0, msg, sizeof(msg)));
    CHECK_OK(edu_dma(r.e, pa, 0, sizeof(msg), true));
    printf("  the 28-bit edu drove 0x%llx: page has \"%.21s\", 0x%llx has \"%.21s\"\n",
           (unsigned long long)pa, page[0] ? page : "(nothing)", (unsigned long long)cut,
           (char *)land);
    CHECK(memcmp(page, msg, sizeof(msg)) != 0);
    CHECK(memcmp(land, msg, sizeof(msg)) == 0); /* it landed at the address cut to 28 bits */

    /* The right way: the adapter's common buffer, which the device reaches. */
    memset(b.va, 0, 4096);
    CHECK_OK(edu_dma(r.e, b.la, 0, sizeof(msg), true));
    CHECK(memcmp(b.va, msg, sizeof(msg)) == 0);
    CHECK_OK(edu_read(r.e, 0, got, sizeof(got)));
    CHECK_STR(got, msg);
    printf("  the right way: common buffer at bus 0x%llx got \"%s\"\n", (unsigned long long)b.la,
           (char *)b.va);
    munmap(land, 4096);
    munmap(page - ((uintptr_t)page & ((2u << 20) - 1)), 2u << 20);
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_down(&r);
}

TEST(narrow_adapter_without_low_range_is_told_what_to_reserve)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e = NULL;
    struct vm_capture c;

    CHECK_OK(dmahal_platform_open("noiommu:lowmem=none", &p));
    CHECK_OK(dmahal_device_open(p, "1234:11e8", &d));
    vm_capture_begin(&c);
    /* The hugepages lie above 4 GiB: the 28-bit edu's buffer cannot come from them. */
    CHECK_ERR(edu_attach(d, 28, &e), -ENOMEM);
    vm_capture_end(&c);
    CHECK_CONTAINS(c.text, "below 2^28");
    CHECK_CONTAINS(c.text, "memmap=64M$0x8000000");
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(edu_intx_through_uio)
{
    struct rig r;

    rig_up(&r, "DMAHAL_VM_EDU", 28);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_INTX), 1);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x8);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 5000));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x8u);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x8);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 100), -ETIMEDOUT);
    /* Once more: the line was unmasked. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x10);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 5000));
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x10);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_OK(dmahal_irq_disable(r.d));
    printf("  INTx of the edu through /dev/uioN: fired twice, unmasked between\n");
    rig_down(&r);
}
