/* SPDX-License-Identifier: MIT */
/*
 * test_seed.c - the seed walkthrough (examples/seed) on every simulated machine, and what
 * happens on one of them to a driver that describes its device wrongly.
 */
#include "seed/seed.c" /* the example itself, statics included */

#include <dmahal/wdm.h>

#include <errno.h>

#include "test.h"

TEST(seed_on_sim)
{
    CHECK_OK(seed_run("sim"));
}

TEST(seed_with_iommu)
{
    CHECK_OK(seed_run("sim:iommu=on"));
}

TEST(seed_with_most_ram_above_4g)
{
    CHECK_OK(seed_run("sim:ram=0-1G,4G-64G"));
}

TEST(seed_with_ram_only_above_4g)
{
    /* No memory below 2^28 at all: only an IOMMU could serve edu, and there is none. */
    CHECK_ERR(seed_run("sim:ram=4G-8G"), -ENOMEM);
    CHECK_OK(seed_run("sim:ram=4G-8G,iommu=on"));
}

TEST(seed_non_coherent)
{
    CHECK_OK(seed_run("sim:coherent=no"));
}

TEST(seed_non_coherent_with_iommu)
{
    CHECK_OK(seed_run("sim:iommu=on,coherent=no"));
}

TEST(seed_on_an_edu_with_a_wider_mask)
{
    setenv("DMAHAL_SEED_DEVICE", "edu:dma_mask=0xffffffff", 1);
    CHECK_OK(seed_run("sim"));
}

TEST(seed_refuses_a_device_that_is_not_there)
{
    setenv("DMAHAL_SEED_DEVICE", "nosuch", 1);
    CHECK_ERR(seed_run("sim"), -ENOENT);
    CHECK_ERR(seed_run("nosuch"), -EINVAL);
}

/*
 * The seed's point, shown: the same driver describing edu as a 64-bit device gets a buffer
 * high in RAM, edu drops the address bits it does not drive, and the copy comes from and
 * goes to the wrong memory. The description, not the driver, is what keeps DMA right.
 */
TEST(seed_wrong_description_breaks_the_copy)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    DEVICE_DESCRIPTION dd;
    PDMA_ADAPTER a;
    PHYSICAL_ADDRESS la;
    ULONG nregs;
    UCHAR *va;

    CHECK_OK(dmahal_platform_open("sim:ram=0-1G,4G-64G", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION2;
    dd.Master = TRUE;
    dd.Dma64BitAddresses = TRUE; /* wrong: edu drives 28 bits */
    dd.InterfaceType = PCIBus;
    dd.MaximumLength = EDU_BUF_SIZE;
    a = IoGetDmaAdapter(dmahal_wdm_device(d), &dd, &nregs);
    CHECK(a != NULL);
    va = a->DmaOperations->AllocateCommonBuffer(a, EDU_BUF_SIZE, &la, FALSE);
    CHECK(va != NULL);
    CHECK_GE_U((uint64_t)la.QuadPart, UINT64_C(1) << 28);
    for (ULONG i = 0; i < EDU_BUF_SIZE / 2; i++)
        va[i] = (UCHAR)(i * 7 + 3);
    EduDma(d, (uint64_t)la.QuadPart, EDU_BUF_ADDR, EDU_BUF_SIZE / 2, 0);
    EduDma(d, EDU_BUF_ADDR, (uint64_t)la.QuadPart + EDU_BUF_SIZE / 2, EDU_BUF_SIZE / 2,
           EDU_CMD_TO_RAM);
    CHECK(memcmp(va, va + EDU_BUF_SIZE / 2, EDU_BUF_SIZE / 2) != 0);
    a->DmaOperations->FreeCommonBuffer(a, EDU_BUF_SIZE, la, va, FALSE);
    a->DmaOperations->PutDmaAdapter(a);
    dmahal_platform_close(p);
}
