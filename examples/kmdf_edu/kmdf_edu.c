/* SPDX-License-Identifier: MIT */
/*
 * kmdf_edu.c - see kmdf_edu.h. The DMA code is written as for KMDF on Windows; only the
 * register access (dmahal_mmio_*) and the wait for the device (a poll, where Windows has an
 * interrupt and a DPC) are this target's.
 */
#include "kmdf_edu.h"

#include "edu/edu_regs.h"

#include <stdlib.h>
#include <time.h>

struct _EDU_EXTENSION {
    WDFDEVICE Device;
    struct dmahal_device *Hw;
    WDFDMAENABLER DmaEnabler;
    WDFCOMMONBUFFER CommonBuffer;
    PUCHAR CommonBufferBase;
    PHYSICAL_ADDRESS CommonBufferBaseLA;
    WDFDMATRANSACTION WriteTransaction;
    WDFDMATRANSACTION ReadTransaction;
    ULONG DeviceOffset; /* where the transfer being programmed goes in the device buffer */
    ULONG Transfers;    /* transfers programmed in the current transaction */
    BOOLEAN Programmed; /* EvtProgramDma started one that has not completed */
};

/* Starts one copy of the device's DMA engine. */
static VOID EduStartDma(PEDU_EXTENSION Ext, ULONGLONG HostAddress, ULONG Length,
                        BOOLEAN WriteToDevice)
{
    ULONGLONG device = EDU_BUF_ADDR + Ext->DeviceOffset;

    dmahal_mmio_write64(Ext->Hw, 0, EDU_REG_DMA_SRC, WriteToDevice ? HostAddress : device);
    dmahal_mmio_write64(Ext->Hw, 0, EDU_REG_DMA_DST, WriteToDevice ? device : HostAddress);
    dmahal_mmio_write64(Ext->Hw, 0, EDU_REG_DMA_CNT, Length);
    dmahal_mmio_write64(Ext->Hw, 0, EDU_REG_DMA_CMD,
                        EDU_CMD_RUN | (WriteToDevice ? 0 : EDU_CMD_TO_RAM));
}

/* Waits for the DMA engine to finish: what the interrupt tells a Windows driver. */
static NTSTATUS EduWaitForDma(PEDU_EXTENSION Ext)
{
    struct timespec nap = {0, 1000000};

    for (int i = 0; i < 5000; i++) {
        if (!(dmahal_mmio_read64(Ext->Hw, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN))
            return STATUS_SUCCESS;
        if (i >= 100)
            nanosleep(&nap, NULL);
    }
    return STATUS_IO_DEVICE_ERROR;
}

/* EvtProgramDma: one transfer of a transaction, one element (the packet profile). */
static BOOLEAN EduEvtProgramDma(WDFDMATRANSACTION Transaction, WDFDEVICE Device, WDFCONTEXT Context,
                                WDF_DMA_DIRECTION Direction, PSCATTER_GATHER_LIST SgList)
{
    PEDU_EXTENSION ext = Context;

    UNREFERENCED_PARAMETER(Transaction);
    UNREFERENCED_PARAMETER(Device);
    if (SgList->NumberOfElements != 1)
        return FALSE;
    EduStartDma(ext, (ULONGLONG)SgList->Elements[0].Address.QuadPart, SgList->Elements[0].Length,
                Direction == WdfDmaDirectionWriteToDevice);
    ext->Transfers++;
    ext->Programmed = TRUE;
    return TRUE;
}

NTSTATUS EduPrepareHardware(WDFDEVICE Device, struct dmahal_device *Hw, PEDU_EXTENSION *Extension)
{
    WDF_DMA_ENABLER_CONFIG dmaConfig;
    PEDU_EXTENSION ext;
    NTSTATUS status;

    *Extension = NULL;
    if ((dmahal_mmio_read32(Hw, 0, EDU_REG_ID) & EDU_ID_MASK) != EDU_ID_VALUE)
        return STATUS_DEVICE_DATA_ERROR;
    ext = calloc(1, sizeof(*ext));
    if (ext == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    ext->Device = Device;
    ext->Hw = Hw;

    /* The DMA engine addresses 8-byte-aligned memory with 28 bits, one element at a time. */
    WdfDeviceSetAlignmentRequirement(Device, FILE_QUAD_ALIGNMENT);
    WDF_DMA_ENABLER_CONFIG_INIT(&dmaConfig, WdfDmaProfilePacket, EDU_MAX_TRANSFER);
    dmaConfig.WdmDmaVersionOverride = 3;
    dmaConfig.AddressWidthOverride = EDU_DEFAULT_ADDR_BITS;
    status = WdfDmaEnablerCreate(Device, &dmaConfig, WDF_NO_OBJECT_ATTRIBUTES, &ext->DmaEnabler);
    if (!NT_SUCCESS(status))
        goto err_ext;

    status = WdfCommonBufferCreate(ext->DmaEnabler, EDU_BUF_SIZE, WDF_NO_OBJECT_ATTRIBUTES,
                                   &ext->CommonBuffer);
    if (!NT_SUCCESS(status))
        goto err_enabler;
    ext->CommonBufferBase = WdfCommonBufferGetAlignedVirtualAddress(ext->CommonBuffer);
    ext->CommonBufferBaseLA = WdfCommonBufferGetAlignedLogicalAddress(ext->CommonBuffer);
    RtlZeroMemory(ext->CommonBufferBase, EDU_BUF_SIZE);

    /* One transaction per direction, created once and reused, as a sequential queue can. */
    status =
        WdfDmaTransactionCreate(ext->DmaEnabler, WDF_NO_OBJECT_ATTRIBUTES, &ext->WriteTransaction);
    if (!NT_SUCCESS(status))
        goto err_enabler;
    status =
        WdfDmaTransactionCreate(ext->DmaEnabler, WDF_NO_OBJECT_ATTRIBUTES, &ext->ReadTransaction);
    if (!NT_SUCCESS(status))
        goto err_enabler;
    *Extension = ext;
    return STATUS_SUCCESS;

err_enabler:
    WdfObjectDelete((WDFOBJECT)ext->DmaEnabler);
err_ext:
    free(ext);
    return status;
}

VOID EduReleaseHardware(PEDU_EXTENSION Extension)
{
    if (Extension == NULL)
        return;
    /* The common buffer and the transactions are the enabler's children: they go with it. */
    WdfObjectDelete((WDFOBJECT)Extension->DmaEnabler);
    free(Extension);
}

NTSTATUS EduTransfer(PEDU_EXTENSION Extension, PVOID Buffer, ULONG Length, ULONG DeviceOffset,
                     BOOLEAN WriteToDevice, BOOLEAN RequireSingleTransfer, size_t *Transferred,
                     ULONG *Transfers)
{
    WDFDMATRANSACTION transaction =
        WriteToDevice ? Extension->WriteTransaction : Extension->ReadTransaction;
    NTSTATUS status;
    PMDL mdl;

    *Transferred = 0;
    *Transfers = 0;
    if (Length == 0 || DeviceOffset >= EDU_DMA_LIMIT || Length > EDU_DMA_LIMIT - DeviceOffset)
        return STATUS_INVALID_PARAMETER;
    mdl = IoAllocateMdl(Buffer, Length, FALSE, FALSE, NULL);
    if (mdl == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    MmBuildMdlForNonPagedPool(mdl);
    WdfDmaTransactionSetSingleTransferRequirement(transaction, RequireSingleTransfer);
    status = WdfDmaTransactionInitialize(transaction, EduEvtProgramDma,
                                         WriteToDevice ? WdfDmaDirectionWriteToDevice
                                                       : WdfDmaDirectionReadFromDevice,
                                         mdl, MmGetMdlVirtualAddress(mdl), Length);
    if (!NT_SUCCESS(status))
        goto out;
    Extension->DeviceOffset = DeviceOffset;
    Extension->Transfers = 0;
    Extension->Programmed = FALSE;
    status = WdfDmaTransactionExecute(transaction, Extension);
    if (!NT_SUCCESS(status))
        goto out;
    /* The ISR and DPC: each interrupt ends a transfer; the framework starts the next one. */
    for (;;) {
        BOOLEAN complete;

        if (!Extension->Programmed) {
            status = STATUS_IO_DEVICE_ERROR; /* EvtProgramDma refused the transfer */
            WdfDmaTransactionDmaCompletedFinal(transaction, 0, &status);
            break;
        }
        status = EduWaitForDma(Extension);
        if (!NT_SUCCESS(status)) {
            WdfDmaTransactionDmaCompletedFinal(transaction, 0, &status);
            break;
        }
        Extension->Programmed = FALSE;
        Extension->DeviceOffset += (ULONG)WdfDmaTransactionGetCurrentDmaTransferLength(transaction);
        complete = WdfDmaTransactionDmaCompleted(transaction, &status);
        if (complete)
            break;
    }
    *Transferred = WdfDmaTransactionGetBytesTransferred(transaction);
    *Transfers = Extension->Transfers;
out:
    WdfDmaTransactionRelease(transaction);
    IoFreeMdl(mdl);
    return status;
}

NTSTATUS EduCommonBufferRoundTrip(PEDU_EXTENSION Extension, ULONG DeviceOffset, ULONG Length)
{
    PUCHAR base = Extension->CommonBufferBase;
    NTSTATUS status;

    if (Length == 0 || Length * 2 > EDU_BUF_SIZE || DeviceOffset >= EDU_DMA_LIMIT ||
        Length > EDU_DMA_LIMIT - DeviceOffset)
        return STATUS_INVALID_PARAMETER;
    for (ULONG i = 0; i < Length; i++)
        base[i] = (UCHAR)(i * 5 + 1);
    RtlZeroMemory(base + Length, Length);
    /* Uncached, as KMDF's common buffers are: no flush before or after the device's access. */
    Extension->DeviceOffset = DeviceOffset;
    EduStartDma(Extension, (ULONGLONG)Extension->CommonBufferBaseLA.QuadPart, Length, TRUE);
    status = EduWaitForDma(Extension);
    if (!NT_SUCCESS(status))
        return status;
    EduStartDma(Extension, (ULONGLONG)Extension->CommonBufferBaseLA.QuadPart + Length, Length,
                FALSE);
    status = EduWaitForDma(Extension);
    if (!NT_SUCCESS(status))
        return status;
    return RtlEqualMemory(base, base + Length, Length) ? STATUS_SUCCESS : STATUS_DEVICE_DATA_ERROR;
}
