/* SPDX-License-Identifier: MIT */
/*
 * test_wdm_cxx.cpp - wdm.h from C++ (C++11, pedantic): the header compiles alone, its
 * layouts are the C ones, and a C++ driver gets an adapter and a common buffer through the
 * saved operation pointers.
 */
#include <dmahal/wdm.h> /* first: the header must stand alone in C++ too */

#include <dmahal/wdf.h> /* KMDF's DMA objects: C++ too */

#include <cstddef>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "test.h"
}

static_assert(sizeof(ULONG) == 4, "ULONG is 32 bits, as on Windows");
C_ASSERT(sizeof(DMA_ADAPTER_INFO_V1) == 20);
static_assert(sizeof(WDF_DMA_ENABLER_CONFIG) >= sizeof(size_t) + 8, "WDF_DMA_ENABLER_CONFIG");
static_assert(sizeof(DEVICE_DESCRIPTION) == 0x40, "DEVICE_DESCRIPTION as on Windows x64");
static_assert(offsetof(DEVICE_DESCRIPTION, DeviceAddress) == 0x38, "DeviceAddress offset");
static_assert(sizeof(DMA_ADAPTER) == 16, "DMA_ADAPTER as on Windows x64");
static_assert(offsetof(DMA_OPERATIONS, GetDmaAlignment) == 0x48, "GetDmaAlignment offset");
static_assert(sizeof(DMA_OPERATIONS) == 0x140, "DMA_OPERATIONS as on Windows x64");
static_assert(sizeof(MDL) == 48, "MDL as on Windows x64");
static_assert(offsetof(MDL, ByteOffset) == 44, "MDL ByteOffset offset");
static_assert(sizeof(SCATTER_GATHER_ELEMENT) == 24, "SCATTER_GATHER_ELEMENT as on Windows x64");
static_assert(sizeof(SCATTER_GATHER_LIST) == 16, "SCATTER_GATHER_LIST header as on Windows x64");
static_assert(offsetof(SCATTER_GATHER_LIST, Elements) == 16, "Elements offset");

namespace
{

struct Driver {
    PDMA_ADAPTER adapter = nullptr;
    ULONG map_registers = 0;
    PALLOCATE_COMMON_BUFFER allocate = nullptr;
    PFREE_COMMON_BUFFER free_buffer = nullptr;
};

} // namespace

TEST(wdm_cxx_driver_allocates_and_frees)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    DEVICE_DESCRIPTION dd;
    Driver drv;
    PHYSICAL_ADDRESS la;
    unsigned char back[16];

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.DmaAddressWidth = 28;
    dd.MaximumLength = 8192;
    drv.adapter = IoGetDmaAdapter(dmahal_wdm_device(d), &dd, &drv.map_registers);
    CHECK(drv.adapter != nullptr);
    CHECK_EQ(drv.map_registers, 3);
    drv.allocate = drv.adapter->DmaOperations->AllocateCommonBuffer;
    drv.free_buffer = drv.adapter->DmaOperations->FreeCommonBuffer;
    CHECK(drv.adapter->DmaOperations->MapTransfer != nullptr);
    CHECK(drv.adapter->DmaOperations->CreateCommonBufferFromMdl != nullptr);

    auto *va = static_cast<unsigned char *>(drv.allocate(drv.adapter, 4096, &la, FALSE));
    CHECK(va != nullptr);
    CHECK_LT_U(static_cast<uint64_t>(la.QuadPart) + 4095, UINT64_C(1) << 28);
    memset(va, 0x3c, 16);
    CHECK_OK(dmahal_dev_read(d, static_cast<dmahal_addr_t>(la.QuadPart), back, sizeof(back)));
    CHECK_EQ(back[15], 0x3c);
    drv.free_buffer(drv.adapter, 4096, la, va, FALSE);
    drv.adapter->DmaOperations->PutDmaAdapter(drv.adapter);
    dmahal_platform_close(p);
}
