/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_fault.c - the seed's point, on a real IOMMU: a device that drives 28 address
 * bits, programmed with an address it cannot drive (an IOVA above 2^28, or a virtual address
 * as an IOVA=VA scheme hands out), truncates it, and the IOMMU faults at the truncated
 * address; the same device given its adapter's common buffers works. Every case checks the
 * fault the guest kernel logs, address included; this program declares EXPECT-DMAR-FAULT so
 * that run.sh requires faults instead of forbidding them.
 */
#include "vm.h"

#include <dmahal/dmahal.h>
#include <sys/mman.h>

#include "edu/edu_driver.h"

#define MASK28    ((UINT64_C(1) << 28) - 1)
#define PAGE_MASK (~UINT64_C(0xfff))

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 13 + seed);
}

static void expect_fault(void)
{
    printf("EXPECT-DMAR-FAULT\n");
    fflush(stdout);
}

/* A driver that tells its adapter the 28-bit edu drives 64 bits gets IOVAs above 2^28: the
 * device truncates them, the IOMMU faults at the truncated address, nothing arrives. The same
 * IOVA works for the 64-bit edu, so the mapping is fine: the truncation is the bug. The
 * driver that states the true width works. (Nothing else is mapped below 2^28 while the
 * fault happens, so the truncated address cannot land in some other buffer silently.) */
TEST(iova_above_device_width_faults)
{
    struct dmahal_platform *p;
    struct dmahal_device *d, *d64;
    struct edu *lie, *e, *e64;
    struct dmahal_buf w;
    unsigned char p1[EDU_DMA_LIMIT], p2[EDU_DMA_LIMIT], in[EDU_DMA_LIMIT];
    uint64_t addr = 0;
    int kmsg;

    expect_fault();
    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(edu_attach(d, 64, &lie)); /* the wrong width */
    CHECK_OK(dmahal_common_alloc(edu_adapter(lie), EDU_BUF_SIZE, 0, &w));
    CHECK_LT_U(MASK28, w.la);
    printf("buffer at la %#" PRIx64 "; the device drives %#" PRIx64 "\n", w.la, w.la & MASK28);
    fflush(stdout);
    pattern(p2, sizeof(p2), 2);
    memcpy(w.va, p2, sizeof(p2));

    kmsg = vm_kmsg_open();
    CHECK_OK(edu_dma(lie, w.la, 0, EDU_DMA_LIMIT, false)); /* RAM -> device, from w.la */
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, w.la & MASK28 & PAGE_MASK);

    /* The true width: the data read back is not p2, and a round trip works. */
    CHECK_OK(edu_attach(d, EDU_DEFAULT_ADDR_BITS, &e));
    CHECK_OK(edu_read(e, 0, in, sizeof(in)));
    CHECK(memcmp(in, p2, sizeof(in)) != 0);
    pattern(p1, sizeof(p1), 1);
    CHECK_OK(edu_write(e, 0, p1, sizeof(p1)));
    CHECK_OK(edu_read(e, 0, in, sizeof(in)));
    CHECK(memcmp(in, p1, sizeof(in)) == 0);

    /* The 64-bit edu, in the same container, reads the very same IOVA fine. */
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d64));
    CHECK_OK(edu_attach(d64, 64, &e64));
    CHECK_OK(edu_dma(e64, w.la, 0, EDU_DMA_LIMIT, false));
    CHECK_OK(edu_read(e64, 0, in, sizeof(in)));
    CHECK(memcmp(in, p2, sizeof(in)) == 0);
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 0.5, &addr), 0);
    close(kmsg);
    edu_detach(e64);
    edu_detach(e);
    CHECK_OK(dmahal_common_free(edu_adapter(lie), &w));
    edu_detach(lie);
    dmahal_platform_close(p);
}

/* IOVA=VA: a user-space virtual address (47 bits) given to the 28-bit device. It keeps the
 * low 28 bits, which here name a page no buffer is mapped at, and the IOMMU faults there. */
TEST(virtual_address_as_iova_faults)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e;
    unsigned char buf0[EDU_DMA_LIMIT], in[EDU_DMA_LIMIT];
    uint64_t addr = 0, va;
    void *mem;
    int kmsg;

    expect_fault();
    /* A virtual address whose low 28 bits are 0x1000: the one page that no IOVA allocation
     * reaches (the allocator hands out the highest fit first, and page 0 never). */
    mem = mmap((void *)0x7e0000001000, 4096, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(mem != MAP_FAILED);
    va = (uint64_t)(uintptr_t)mem;
    CHECK_EQ_U(va & MASK28, 0x1000);
    memset(mem, 0x77, 4096);

    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(edu_attach(d, EDU_DEFAULT_ADDR_BITS, &e));
    pattern(buf0, sizeof(buf0), 9);
    CHECK_OK(edu_write(e, 0, buf0, sizeof(buf0)));
    kmsg = vm_kmsg_open();
    CHECK_OK(edu_dma(e, va, 0, EDU_DMA_LIMIT, false));
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, 0x1000);
    /* What the device got instead is not the data at the virtual address. */
    CHECK_OK(edu_read(e, 0, in, sizeof(in)));
    printf("device buffer after the faulting read starts %02x %02x %02x %02x\n", in[0], in[1],
           in[2], in[3]);
    CHECK(memcmp(in, mem, sizeof(in)) != 0);
    close(kmsg);
    edu_detach(e);
    dmahal_platform_close(p);
    munmap(mem, 4096);
}

/* Putting an adapter unmaps its memory from the IOMMU: a device that keeps using an old
 * address faults instead of scribbling over memory that is someone else's now. */
TEST(freed_memory_is_unmapped)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    struct edu *e;
    unsigned char buf0[EDU_DMA_LIMIT];
    uint64_t addr = 0, la;
    int kmsg;

    expect_fault();
    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d));
    CHECK_OK(edu_attach(d, 64, &e));
    CHECK_OK(dmahal_adapter_get(d, &(struct dmahal_desc){.addr_bits = 64}, &a));
    CHECK_OK(dmahal_common_alloc(a, 8192, 0, &b));
    la = b.la;
    pattern(buf0, sizeof(buf0), 4);
    CHECK_OK(edu_write(e, 0, buf0, sizeof(buf0)));
    CHECK_OK(edu_dma(e, la, 0, EDU_DMA_LIMIT, true)); /* mapped: fine */
    CHECK(memcmp(b.va, buf0, sizeof(buf0)) == 0);
    dmahal_adapter_put(a); /* frees b and unmaps its arena */

    kmsg = vm_kmsg_open();
    CHECK_OK(edu_dma(e, la, 0, EDU_DMA_LIMIT, true)); /* device -> RAM at a stale address */
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, la & PAGE_MASK);
    close(kmsg);
    edu_detach(e);
    dmahal_platform_close(p);
}
