/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_strict.c - strict isolation on a real IOMMU: memory the driver gave back leaves the
 * device's IOMMU domain at once. Every case checks the fault the guest kernel logs; this
 * program declares EXPECT-DMAR-FAULT so that run.sh requires faults instead of forbidding them.
 */
#include "vm.h"

#include <dmahal/dmahal.h>

#include "edu/edu_driver.h"

#define PAGE_MASK (~UINT64_C(0xfff))

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 13 + seed);
}

/* The kernel rate-limits its DMAR fault messages (a burst per 5 s): the program before this
 * one faulted on purpose too, so wait out its burst before counting ours. */
static void expect_fault(void)
{
    printf("EXPECT-DMAR-FAULT\n");
    fflush(stdout);
    sleep(3);
}

/* Strict isolation: a freed common buffer leaves the IOMMU domain at once, though the arena it
 * came from stays (a neighbour is live); a small buffer leaves it with the last buffer on its
 * page. The device using a stale address faults, the live neighbours still work. */
TEST(common_free_unmaps_at_once)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b, keep, s1, s2;
    struct edu *e;
    unsigned char buf0[EDU_DMA_LIMIT];
    uint64_t addr = 0;
    int kmsg;

    expect_fault();
    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d));
    CHECK_OK(edu_attach(d, 64, &e));
    CHECK_OK(dmahal_adapter_get(d, &(struct dmahal_desc){.addr_bits = 64}, &a));
    CHECK_OK(dmahal_common_alloc(a, 8192, 0, &b));
    CHECK_OK(dmahal_common_alloc(a, 8192, 0, &keep));
    CHECK_OK(dmahal_common_alloc(a, 64, 0, &s1));
    CHECK_OK(dmahal_common_alloc(a, 64, 0, &s2));
    pattern(buf0, sizeof(buf0), 5);
    CHECK_OK(edu_write(e, 0, buf0, sizeof(buf0)));
    CHECK_OK(edu_dma(e, b.la, 0, EDU_DMA_LIMIT, true));
    CHECK(memcmp(b.va, buf0, sizeof(buf0)) == 0);
    CHECK_OK(dmahal_common_free(a, &b));

    kmsg = vm_kmsg_open();
    CHECK_OK(edu_dma(e, b.la, 0, EDU_DMA_LIMIT, true)); /* a stale address */
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, b.la & PAGE_MASK);
    /* The neighbour in the same arena works, and so does s1 while s2 shares its page. */
    CHECK_OK(edu_dma(e, keep.la, 0, EDU_DMA_LIMIT, true));
    CHECK(memcmp(keep.va, buf0, sizeof(buf0)) == 0);
    CHECK_OK(dmahal_common_free(a, &s2));
    CHECK_OK(edu_dma(e, s1.la, 0, 64, true));
    CHECK(memcmp(s1.va, buf0, 64) == 0);
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 0.5, &addr), 0);
    /* The page's last small buffer freed: the page is unmapped. */
    CHECK_OK(dmahal_common_free(a, &s1));
    sleep(1);
    CHECK_OK(edu_dma(e, s1.la, 0, 64, true));
    CHECK_EQ(vm_kmsg_dmar_fault(kmsg, vm_dev("DMAHAL_VM_EDU64"), 3.0, &addr), 1);
    CHECK_EQ_U(addr & PAGE_MASK, s1.la & PAGE_MASK);
    close(kmsg);
    CHECK_OK(dmahal_common_free(a, &keep));
    dmahal_adapter_put(a);
    edu_detach(e);
    dmahal_platform_close(p);
}
