/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_map_fault.c - what the IOMMU refuses after dmahal_map on the vfio platform: a
 * device that uses a list's address after the unmap, and a device that writes into memory
 * mapped for it to read. Each case checks the fault the guest kernel logs, address included,
 * and that the memory did not change; this program declares EXPECT-DMAR-FAULT so that run.sh
 * requires faults instead of forbidding them.
 */
#include "vm.h"

#include <dmahal/dmahal.h>
#include <sys/uio.h>

#include "edu/edu_driver.h"

#define PAGE_MASK (~UINT64_C(0xfff))

static void expect_fault(void)
{
    printf("EXPECT-DMAR-FAULT\n");
    fflush(stdout);
}

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 11 + seed);
}

/* The unmap takes the pages out of the IOMMU at once: the device's late write faults at the
 * list's address and the memory, the caller's again, keeps what the CPU wrote. (The 64-bit
 * edu, so that the address it drives is the IOVA itself.) */
TEST(device_access_after_unmap_faults)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e;
    unsigned char *mem = malloc(8192), data[EDU_DMA_LIMIT], before[EDU_DMA_LIMIT];
    struct iovec iov = {mem + 200, EDU_DMA_LIMIT};
    struct dmahal_sgl *sgl;
    uint64_t addr = 0, la;
    int kmsg;

    expect_fault();
    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d));
    CHECK_OK(edu_attach(d, 64, &e));
    pattern(data, sizeof(data), 1);
    CHECK_OK(edu_write(e, 0, data, sizeof(data)));
    memset(mem, 0, 8192);
    CHECK_OK(dmahal_map(edu_adapter(e), &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    la = sgl->seg[0].la;
    CHECK_OK(edu_dma(e, la, 0, 100, true)); /* mapped: lands */
    CHECK_OK(dmahal_unmap(edu_adapter(e), sgl));
    CHECK(memcmp(mem + 200, data, 100) == 0);
    memset(mem, 0x5a, 8192);
    memcpy(before, mem + 200, sizeof(before));

    kmsg = vm_kmsg_open();
    CHECK_OK(edu_dma(e, la, 0, EDU_DMA_LIMIT, true)); /* device -> a stale address */
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, la & PAGE_MASK);
    CHECK(memcmp(mem + 200, before, sizeof(before)) == 0);
    close(kmsg);
    free(mem);
    edu_detach(e);
    dmahal_platform_close(p);
}

/* DMAHAL_TO_DEVICE maps the pages read-only in the IOMMU: the device's write faults and
 * leaves the memory as it was, and its read works. (The write goes first: QEMU's VT-d reports
 * a permission fault only on a table walk, not on a hit in its IOTLB that a read would fill.) */
TEST(device_write_into_to_device_map_faults)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct edu *e;
    unsigned char *mem = malloc(8192), in[EDU_DMA_LIMIT], other[EDU_DMA_LIMIT];
    struct iovec iov = {mem + 64, EDU_DMA_LIMIT};
    struct dmahal_sgl *sgl;
    uint64_t addr = 0;
    int kmsg;

    expect_fault();
    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d));
    CHECK_OK(edu_attach(d, 64, &e));
    pattern(mem, 8192, 2);
    memcpy(in, mem + 64, sizeof(in));
    CHECK_OK(dmahal_map(edu_adapter(e), &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    pattern(other, sizeof(other), 99);
    CHECK_OK(edu_write(e, 0, other, sizeof(other)));
    kmsg = vm_kmsg_open();
    CHECK_OK(edu_dma(e, sgl->seg[0].la, 0, EDU_DMA_LIMIT, true)); /* a write: refused */
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, sgl->seg[0].la & PAGE_MASK);
    CHECK(memcmp(in, mem + 64, sizeof(in)) == 0);

    CHECK_OK(edu_dma(e, sgl->seg[0].la, 0, EDU_DMA_LIMIT, false)); /* a read: allowed */
    CHECK_OK(edu_read(e, 0, other, sizeof(other)));
    CHECK(memcmp(other, mem + 64, sizeof(other)) == 0);
    CHECK_OK(dmahal_unmap(edu_adapter(e), sgl));
    close(kmsg);
    free(mem);
    edu_detach(e);
    dmahal_platform_close(p);
}
