/* SPDX-License-Identifier: MIT */
/*
 * seed.c - the seed's walkthrough ("Common-buffer DMA? No translation required!") as a
 * driver written for Windows has it, running on dmahal through wdm.h.
 *
 * The lines between "seed:" markers are the seed's snippet, completed only where the seed
 * leaves arguments out. Around them is the least a driver needs to use the buffer: QEMU's
 * edu device (docs/devices/edu.md), whose DMA engine drives 28 address bits, copies a
 * pattern in from the buffer and back out into its other half, by logical address.
 */
#include "seed.h"

#include <dmahal/wdm.h>

#include "edu/edu_regs.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The driver's debug print, as in the Windows sample the seed's snippet comes from. */
#define ERROR                        1
#define DBG_INIT                     1
#define DebugPrint(Level, Area, ...) ((void)(Level), (void)(Area), fprintf(stderr, __VA_ARGS__))

/* edu's registers (BAR0) and DMA engine, from docs/devices/edu.md. */

/* The device extension: what the driver keeps about its device. */
typedef struct _FDO_DATA {
    PDEVICE_OBJECT Pdo;
    struct dmahal_device *Device; /* for register access */
    PDMA_ADAPTER DmaAdapterObject;
    ULONG NumberOfMapRegisters;
    PALLOCATE_COMMON_BUFFER AllocateCommonBuffer;
    PFREE_COMMON_BUFFER FreeCommonBuffer;
    PVOID BaseVa;
    PHYSICAL_ADDRESS BaseLa;
    ULONG BaseLength;
} FDO_DATA, *PFDO_DATA;

/* Gets the adapter and the common buffer, as the seed shows. */
static NTSTATUS SeedStartDevice(PFDO_DATA FdoData)
{
    PDEVICE_OBJECT PDO = FdoData->Pdo;
    DEVICE_DESCRIPTION deviceDescription;
    PDMA_ADAPTER DmaAdapterObject;

    /* The device: a PCI bus master that does not scatter/gather and drives 28 bits. */
    memset(&deviceDescription, 0, sizeof(deviceDescription));
    deviceDescription.Version = DEVICE_DESCRIPTION_VERSION3;
    deviceDescription.Master = TRUE;
    deviceDescription.ScatterGather = FALSE;
    deviceDescription.InterfaceType = PCIBus;
    deviceDescription.DmaAddressWidth = EDU_DEFAULT_ADDR_BITS;
    deviceDescription.MaximumLength = EDU_BUF_SIZE;

    /* seed: (its layout kept) */
    // clang-format off
    // Call IoGetDmaAdapter to get adapter object.
    DmaAdapterObject = IoGetDmaAdapter(PDO,
                                       &deviceDescription,
                                       &FdoData->NumberOfMapRegisters);
    // clang-format on
    /* :seed */
    if (DmaAdapterObject == NULL) {
        DebugPrint(ERROR, DBG_INIT, "IoGetDmaAdapter failed\n");
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    FdoData->DmaAdapterObject = DmaAdapterObject;

    /* seed: (its layout kept) */
    // clang-format off
    // Save pointers to the commonly used DMA functions in
    // FdoData, which was previously initialized to point to
    // the device extension.
    FdoData->AllocateCommonBuffer =
        DmaAdapterObject->DmaOperations->AllocateCommonBuffer;
    FdoData->FreeCommonBuffer =
        DmaAdapterObject->DmaOperations->FreeCommonBuffer;

    // Allocate a buffer for DMA and store the virtual and
    // logical addresses in FdoData.
    FdoData->BaseVa = FdoData->AllocateCommonBuffer(
                          DmaAdapterObject,
                          FdoData->BaseLength,
                          &FdoData->BaseLa,
                          FALSE);
    if (FdoData->BaseVa == NULL)
            DebugPrint(ERROR, DBG_INIT,
              "Failed to allocate DMA buffer\n");
    // clang-format on
    /* :seed */
    if (FdoData->BaseVa == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    return STATUS_SUCCESS;
}

static void SeedStopDevice(PFDO_DATA FdoData)
{
    if (FdoData->BaseVa)
        FdoData->FreeCommonBuffer(FdoData->DmaAdapterObject, FdoData->BaseLength, FdoData->BaseLa,
                                  FdoData->BaseVa, FALSE);
    FdoData->BaseVa = NULL;
    if (FdoData->DmaAdapterObject)
        FdoData->DmaAdapterObject->DmaOperations->PutDmaAdapter(FdoData->DmaAdapterObject);
    FdoData->DmaAdapterObject = NULL;
}

/* One edu transfer of @count bytes; polls the command register until the engine is done. */
static void EduDma(struct dmahal_device *d, uint64_t src, uint64_t dst, uint64_t count,
                   uint32_t cmd)
{
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_SRC, src);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_DST, dst);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_CNT, count);
    dmahal_mmio_write32(d, 0, EDU_REG_DMA_CMD, cmd | EDU_CMD_RUN);
    while (dmahal_mmio_read32(d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN)
        ;
}

/*
 * Uses the buffer as the seed intends: the driver writes through the virtual address, the
 * device reads and writes by the logical address. Half of it goes into the device and comes
 * back into the other half.
 */
static int SeedRoundTrip(PFDO_DATA FdoData)
{
    UCHAR *va = FdoData->BaseVa;
    uint64_t la = (uint64_t)FdoData->BaseLa.QuadPart;
    ULONG half = FdoData->BaseLength / 2;

    for (ULONG i = 0; i < half; i++)
        va[i] = (UCHAR)(i * 7 + 3);
    EduDma(FdoData->Device, la, EDU_BUF_ADDR, half, 0);
    EduDma(FdoData->Device, EDU_BUF_ADDR, la + half, half, EDU_CMD_TO_RAM);
    if (memcmp(va, va + half, half) != 0) {
        DebugPrint(ERROR, DBG_INIT, "the device's copy differs from the pattern\n");
        return -EIO;
    }
    printf("seed: edu copied %" PRIu32 " bytes in from logical address 0x%" PRIx64
           " and back out to 0x%" PRIx64 "\n",
           half, la, la + half);
    return 0;
}

int seed_run(const char *platform_spec)
{
    const char *name = getenv("DMAHAL_SEED_DEVICE");
    struct dmahal_platform *p;
    FDO_DATA FdoData = {.BaseLength = EDU_BUF_SIZE};
    int rc;

    rc = dmahal_platform_open(platform_spec, &p);
    if (rc)
        return rc;
    rc = dmahal_device_open(p, name && *name ? name : "edu", &FdoData.Device);
    if (rc)
        goto err_platform;
    if ((dmahal_mmio_read32(FdoData.Device, 0, EDU_REG_ID) & EDU_ID_MASK) != EDU_ID_VALUE) {
        rc = -ENODEV;
        goto err_device;
    }
    FdoData.Pdo = dmahal_wdm_device(FdoData.Device);
    if (!FdoData.Pdo) {
        rc = -ENOMEM;
        goto err_device;
    }
    if (!NT_SUCCESS(SeedStartDevice(&FdoData))) {
        rc = -ENOMEM;
        goto err_stop;
    }
    printf("seed: %s, %" PRIu32 " map registers, %" PRIu32 "-byte common buffer at va %p, "
           "logical address 0x%" PRIx64 "\n",
           dmahal_platform_name(p), FdoData.NumberOfMapRegisters, FdoData.BaseLength,
           FdoData.BaseVa, (uint64_t)FdoData.BaseLa.QuadPart);
    rc = SeedRoundTrip(&FdoData);

err_stop:
    SeedStopDevice(&FdoData);
err_device:
    dmahal_device_close(FdoData.Device);
err_platform:
    dmahal_platform_close(p);
    return rc;
}
