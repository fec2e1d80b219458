/* SPDX-License-Identifier: MIT */
/*
 * packet.c - a packet-DMA driver for QEMU's edu device (docs/devices/edu.md), written as a
 * Windows driver writes one: the buffers of a request are described by an MDL chain, and the
 * HAL's routines (here dmahal's, through wdm.h) hand the driver logical addresses for them,
 * whatever the machine: bounce pages where the device cannot reach the memory, an IOMMU's
 * addresses where there is one, cache maintenance where the device does not snoop.
 *
 * edu's DMA engine moves one contiguous range per command between RAM and its 4 KiB buffer,
 * so the driver programs the elements of a transfer one after the other, at increasing
 * offsets of the device's buffer: a scatter/gather engine done in software.
 *
 * The driver polls the engine, so its AdapterListControl and AdapterControl routines run the
 * whole transfer and end it (PutScatterGatherList, FlushAdapterBuffers) before returning; a
 * driver that waits for the interrupt would end it in its DPC instead.
 */
#include "packet.h"

#include <dmahal/wdm.h>

#include "edu/edu_regs.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* edu's registers and DMA engine: edu/edu_regs.h. A transfer never touches the buffer's last
 * byte (EDU_DMA_LIMIT). */
/* The largest transfer the driver describes: a packet of two buffers may have each straddle
 * a page, four map registers, which a MaximumLength of three pages gives. */
#define PACKET_MAX_LENGTH (3 * PAGE_SIZE)
/* Polls of the command register before the driver gives up on the engine. */
#define EDU_POLLS 10000000u

#ifndef STATUS_IO_DEVICE_ERROR
#define STATUS_IO_DEVICE_ERROR ((NTSTATUS)0xC0000185L)
#endif

/* The device extension. */
typedef struct _PACKET_EXTENSION {
    struct dmahal_device *Device; /* for register access */
    PDEVICE_OBJECT Pdo;
    PDMA_ADAPTER DmaAdapter;
    ULONG NumberOfMapRegisters;
    /* The operations the driver uses, saved at start as Windows drivers do. */
    PGET_SCATTER_GATHER_LIST GetScatterGatherList;
    PPUT_SCATTER_GATHER_LIST PutScatterGatherList;
    PCALCULATE_SCATTER_GATHER_LIST_SIZE CalculateScatterGatherList;
    PBUILD_SCATTER_GATHER_LIST BuildScatterGatherList;
    PALLOCATE_ADAPTER_CHANNEL AllocateAdapterChannel;
    PMAP_TRANSFER MapTransfer;
    PFLUSH_ADAPTER_BUFFERS FlushAdapterBuffers;
    PFREE_MAP_REGISTERS FreeMapRegisters;
    PFREE_ADAPTER_CHANNEL FreeAdapterChannel;
    /* BuildScatterGatherList's buffer, sized at start for the largest transfer. */
    PVOID SgBuffer;
    ULONG SgBufferLength;
    /* The request in progress. */
    PMDL Mdl;
    PVOID CurrentVa;
    ULONG Length;
    BOOLEAN WriteToDevice;
    BOOLEAN Done;
    NTSTATUS Status;
    PVOID MapRegisterBase; /* AdapterControl's, for FreeMapRegisters */
    ULONG MapRegisterCount;
} PACKET_EXTENSION, *PPACKET_EXTENSION;

/* ---- the device ---------------------------------------------------------------------------- */

/* Moves @Length bytes between logical address @La and offset @Offset of edu's buffer. */
static NTSTATUS EduTransfer(PPACKET_EXTENSION Ext, PHYSICAL_ADDRESS La, ULONG Offset, ULONG Length,
                            BOOLEAN WriteToDevice)
{
    struct dmahal_device *d = Ext->Device;
    uint64_t dev = EDU_BUF_ADDR + Offset, ram = (uint64_t)La.QuadPart;
    unsigned polls = 0;

    if (Length == 0 || Offset + Length > EDU_DMA_LIMIT)
        return STATUS_INVALID_PARAMETER;
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_SRC, WriteToDevice ? ram : dev);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_DST, WriteToDevice ? dev : ram);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_CNT, Length);
    dmahal_mmio_write32(d, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN | (WriteToDevice ? 0 : EDU_CMD_TO_RAM));
    while (dmahal_mmio_read32(d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN)
        if (++polls == EDU_POLLS)
            return STATUS_IO_DEVICE_ERROR;
    return STATUS_SUCCESS;
}

/* ---- scatter/gather lists -------------------------------------------------------------------- */

/* AdapterListControl: programs every element into the engine, then ends the transfer. */
static VOID PacketAdapterListControl(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                     PSCATTER_GATHER_LIST ScatterGather, PVOID Context)
{
    PPACKET_EXTENSION Ext = Context;
    ULONG Offset = 0;
    NTSTATUS Status = STATUS_SUCCESS;

    (void)DeviceObject;
    (void)Irp;
    for (ULONG i = 0; i < ScatterGather->NumberOfElements && NT_SUCCESS(Status); i++) {
        Status = EduTransfer(Ext, ScatterGather->Elements[i].Address, Offset,
                             ScatterGather->Elements[i].Length, Ext->WriteToDevice);
        Offset += ScatterGather->Elements[i].Length;
    }
    if (NT_SUCCESS(Status) && Offset != Ext->Length)
        Status = STATUS_IO_DEVICE_ERROR;
    /* For a read this also makes what the device wrote visible in the buffers. */
    Ext->PutScatterGatherList(Ext->DmaAdapter, ScatterGather, Ext->WriteToDevice);
    Ext->Status = Status;
    Ext->Done = TRUE;
}

/* ---- adapter channel and map registers ----------------------------------------------------------
 */

/*
 * AdapterControl: maps the transfer piece by piece, programming each piece as it comes, and
 * flushes each MDL's part when it is done (for a read, that is when the device's data
 * reaches the buffer). Then it tells the system what to keep: a write keeps the channel
 * (the driver calls FreeAdapterChannel after), a read only the map registers
 * (FreeMapRegisters after), as a bus-master driver would while its device runs.
 */
static IO_ALLOCATION_ACTION PacketAdapterControl(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                                 PVOID MapRegisterBase, PVOID Context)
{
    PPACKET_EXTENSION Ext = Context;
    ULONG Left = Ext->Length, Offset = 0;
    NTSTATUS Status = STATUS_SUCCESS;

    (void)DeviceObject;
    (void)Irp;
    Ext->MapRegisterBase = MapRegisterBase;
    for (PMDL Mdl = Ext->Mdl; Mdl && Left && NT_SUCCESS(Status); Mdl = Mdl->Next) {
        PUCHAR Start = Mdl == Ext->Mdl ? (PUCHAR)Ext->CurrentVa : MmGetMdlVirtualAddress(Mdl);
        PUCHAR End = (PUCHAR)MmGetMdlVirtualAddress(Mdl) + MmGetMdlByteCount(Mdl);
        ULONG Part = Left < (ULONG)(End - Start) ? Left : (ULONG)(End - Start), Done = 0;

        /* Windows maps inside one MDL per call: the MDL's part, piece by piece. */
        while (Done < Part && NT_SUCCESS(Status)) {
            ULONG Length = Part - Done;
            PHYSICAL_ADDRESS La = Ext->MapTransfer(Ext->DmaAdapter, Mdl, MapRegisterBase,
                                                   Start + Done, &Length, Ext->WriteToDevice);

            if (Length == 0) {
                Status = STATUS_INSUFFICIENT_RESOURCES;
                break;
            }
            Status = EduTransfer(Ext, La, Offset, Length, Ext->WriteToDevice);
            Done += Length;
            Offset += Length;
        }
        if (Done &&
            !Ext->FlushAdapterBuffers(Ext->DmaAdapter, Mdl, MapRegisterBase, Start, Done,
                                      Ext->WriteToDevice) &&
            NT_SUCCESS(Status))
            Status = STATUS_IO_DEVICE_ERROR;
        Left -= Done;
    }
    if (NT_SUCCESS(Status) && Left)
        Status = STATUS_BUFFER_TOO_SMALL;
    Ext->Status = Status;
    Ext->Done = TRUE;
    return Ext->WriteToDevice ? KeepObject : DeallocateObjectKeepRegisters;
}

/* The map registers a transfer needs: the pages each MDL's part of it spans. */
static ULONG PacketMapRegisters(PMDL Mdl, PVOID CurrentVa, ULONG Length)
{
    ULONG Registers = 0;

    for (PMDL m = Mdl; m && Length; m = m->Next) {
        PUCHAR Start = m == Mdl ? (PUCHAR)CurrentVa : MmGetMdlVirtualAddress(m);
        PUCHAR End = (PUCHAR)MmGetMdlVirtualAddress(m) + MmGetMdlByteCount(m);
        ULONG Part = Length < (ULONG)(End - Start) ? Length : (ULONG)(End - Start);

        Registers += ADDRESS_AND_SIZE_TO_SPAN_PAGES(Start, Part);
        Length -= Part;
    }
    return Registers;
}

/* ---- requests ------------------------------------------------------------------------------- */

/* Runs one transfer of @Length bytes of @Mdl's chain from @CurrentVa, in @Mode. */
static NTSTATUS PacketTransfer(PPACKET_EXTENSION Ext, enum packet_mode Mode, PMDL Mdl,
                               PVOID CurrentVa, ULONG Length, BOOLEAN WriteToDevice)
{
    NTSTATUS Status;

    Ext->Mdl = Mdl;
    Ext->CurrentVa = CurrentVa;
    Ext->Length = Length;
    Ext->WriteToDevice = WriteToDevice;
    Ext->Done = FALSE;
    Ext->Status = STATUS_UNSUCCESSFUL;
    switch (Mode) {
    case PACKET_GET_LIST:
        Status = Ext->GetScatterGatherList(Ext->DmaAdapter, Ext->Pdo, Mdl, CurrentVa, Length,
                                           PacketAdapterListControl, Ext, WriteToDevice);
        break;
    case PACKET_BUILD_LIST:
        Status = Ext->BuildScatterGatherList(Ext->DmaAdapter, Ext->Pdo, Mdl, CurrentVa, Length,
                                             PacketAdapterListControl, Ext, WriteToDevice,
                                             Ext->SgBuffer, Ext->SgBufferLength);
        break;
    case PACKET_CHANNEL:
        Ext->MapRegisterCount = PacketMapRegisters(Mdl, CurrentVa, Length);
        Status = Ext->AllocateAdapterChannel(Ext->DmaAdapter, Ext->Pdo, Ext->MapRegisterCount,
                                             PacketAdapterControl, Ext);
        break;
    default:
        return STATUS_INVALID_PARAMETER;
    }
    if (!NT_SUCCESS(Status))
        return Status;
    /* One request at a time: the routine ran before the call returned. */
    if (!Ext->Done)
        return STATUS_UNSUCCESSFUL;
    if (Mode == PACKET_CHANNEL && WriteToDevice)
        Ext->FreeAdapterChannel(Ext->DmaAdapter);
    else if (Mode == PACKET_CHANNEL)
        Ext->FreeMapRegisters(Ext->DmaAdapter, Ext->MapRegisterBase, Ext->MapRegisterCount);
    return Ext->Status;
}

/* ---- start and stop -------------------------------------------------------------------------- */

static NTSTATUS PacketStartDevice(PPACKET_EXTENSION Ext, ULONG AddressBits)
{
    DEVICE_DESCRIPTION dd;
    PDMA_OPERATIONS Ops;
    ULONG MaxRegisters = 0;

    if ((dmahal_mmio_read32(Ext->Device, 0, EDU_REG_ID) & EDU_ID_MASK) != EDU_ID_VALUE)
        return STATUS_NOT_SUPPORTED;
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.ScatterGather = TRUE; /* the driver chains the engine's commands itself */
    dd.InterfaceType = PCIBus;
    dd.DmaAddressWidth = AddressBits;
    dd.MaximumLength = PACKET_MAX_LENGTH;
    Ext->DmaAdapter = IoGetDmaAdapter(Ext->Pdo, &dd, &Ext->NumberOfMapRegisters);
    if (!Ext->DmaAdapter)
        return STATUS_INSUFFICIENT_RESOURCES;
    Ops = Ext->DmaAdapter->DmaOperations;
    /* Everything this driver calls lies below Size, and is there. */
    if (Ops->Size <= offsetof(DMA_OPERATIONS, BuildScatterGatherList) ||
        !Ops->GetScatterGatherList || !Ops->MapTransfer)
        return STATUS_NOT_SUPPORTED;
    Ext->GetScatterGatherList = Ops->GetScatterGatherList;
    Ext->PutScatterGatherList = Ops->PutScatterGatherList;
    Ext->CalculateScatterGatherList = Ops->CalculateScatterGatherList;
    Ext->BuildScatterGatherList = Ops->BuildScatterGatherList;
    Ext->AllocateAdapterChannel = Ops->AllocateAdapterChannel;
    Ext->MapTransfer = Ops->MapTransfer;
    Ext->FlushAdapterBuffers = Ops->FlushAdapterBuffers;
    Ext->FreeMapRegisters = Ops->FreeMapRegisters;
    Ext->FreeAdapterChannel = Ops->FreeAdapterChannel;
    /* BuildScatterGatherList's buffer, once, for the worst transfer of two buffers: both
     * straddle a page. The I/O path then allocates nothing. */
    {
        static UCHAR Probe[5 * PAGE_SIZE];
        PUCHAR Page = PAGE_ALIGN(Probe + PAGE_SIZE - 1); /* the array's first whole page */
        PMDL First = IoAllocateMdl(Page + PAGE_SIZE - 1, 2, FALSE, FALSE, NULL);
        PMDL Second =
            IoAllocateMdl(Page + 3 * PAGE_SIZE - 1, EDU_DMA_LIMIT - 2, FALSE, FALSE, NULL);
        NTSTATUS Status = STATUS_INSUFFICIENT_RESOURCES;

        if (First && Second) {
            First->Next = Second;
            Status = Ext->CalculateScatterGatherList(Ext->DmaAdapter, First,
                                                     MmGetMdlVirtualAddress(First), EDU_DMA_LIMIT,
                                                     &Ext->SgBufferLength, &MaxRegisters);
        }
        IoFreeMdl(First);
        IoFreeMdl(Second);
        if (!NT_SUCCESS(Status))
            return Status;
        Ext->SgBuffer = malloc(Ext->SgBufferLength);
        if (!Ext->SgBuffer)
            return STATUS_INSUFFICIENT_RESOURCES;
    }
    return MaxRegisters <= Ext->NumberOfMapRegisters ? STATUS_SUCCESS
                                                     : STATUS_INSUFFICIENT_RESOURCES;
}

static void PacketStopDevice(PPACKET_EXTENSION Ext)
{
    free(Ext->SgBuffer);
    Ext->SgBuffer = NULL;
    if (Ext->DmaAdapter)
        Ext->DmaAdapter->DmaOperations->PutDmaAdapter(Ext->DmaAdapter);
    Ext->DmaAdapter = NULL;
}

/* ---- the walkthrough ------------------------------------------------------------------------- */

static int errno_of(NTSTATUS Status)
{
    switch (Status) {
    case STATUS_SUCCESS:
        return 0;
    case STATUS_NOT_SUPPORTED:
        return -ENODEV;
    case STATUS_INSUFFICIENT_RESOURCES:
        return -ENOMEM;
    case STATUS_INVALID_PARAMETER:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* One round: a header and a payload out to the device, back into one buffer, compared. */
static NTSTATUS PacketRound(PPACKET_EXTENSION Ext, enum packet_mode Mode, UCHAR *Header,
                            ULONG HeaderLength, UCHAR *Payload, ULONG PayloadLength, UCHAR *Back,
                            unsigned Seed)
{
    ULONG Total = HeaderLength + PayloadLength;
    PMDL Tx = IoAllocateMdl(Header, HeaderLength, FALSE, FALSE, NULL);
    PMDL TxPayload = IoAllocateMdl(Payload, PayloadLength, FALSE, FALSE, NULL);
    PMDL Rx = IoAllocateMdl(Back, Total, FALSE, FALSE, NULL);
    NTSTATUS Status = STATUS_INSUFFICIENT_RESOURCES;

    if (!Tx || !TxPayload || !Rx)
        goto out;
    Tx->Next = TxPayload;
    for (ULONG i = 0; i < HeaderLength; i++)
        Header[i] = (UCHAR)(Seed + i);
    for (ULONG i = 0; i < PayloadLength; i++)
        Payload[i] = (UCHAR)(Seed * 7 + i * 3 + (i >> 8));
    memset(Back, 0, Total);
    Status = PacketTransfer(Ext, Mode, Tx, Header, Total, TRUE);
    if (!NT_SUCCESS(Status))
        goto out;
    Status = PacketTransfer(Ext, Mode, Rx, Back, Total, FALSE);
    if (!NT_SUCCESS(Status))
        goto out;
    if (memcmp(Back, Header, HeaderLength) != 0 ||
        memcmp(Back + HeaderLength, Payload, PayloadLength) != 0)
        Status = STATUS_IO_DEVICE_ERROR;
out:
    IoFreeMdl(Tx);
    IoFreeMdl(TxPayload);
    IoFreeMdl(Rx);
    return Status;
}

int packet_run(const char *platform_spec, const char *device, unsigned addr_bits,
               enum packet_mode mode)
{
    /* Offsets and lengths that cross pages in different ways (round 2: both buffers straddle
     * a page, the worst case); the total stays below 4 KiB. */
    static const struct {
        ULONG HeaderOffset, HeaderLength, PayloadOffset, PayloadLength, BackOffset;
    } rounds[] = {
        {0, 64, 0, 1500, 0},
        {4000, 200, 3000, 3800, 2100},
        {17, 1, 4095, 2, 4095},
        {123, 4000, 0, 95, 1},
    };
    struct dmahal_platform *p = NULL;
    PACKET_EXTENSION Ext;
    UCHAR *Header = NULL, *Payload = NULL, *Back = NULL;
    NTSTATUS Status;
    int rc;

    if (mode != PACKET_GET_LIST && mode != PACKET_BUILD_LIST && mode != PACKET_CHANNEL)
        return -EINVAL;
    memset(&Ext, 0, sizeof(Ext));
    rc = dmahal_platform_open(platform_spec, &p);
    if (rc)
        return rc;
    rc = dmahal_device_open(p, device, &Ext.Device);
    if (rc)
        goto out;
    Ext.Pdo = dmahal_wdm_device(Ext.Device);
    /* Page-aligned, so that each round's offsets cross pages where the table says. */
    Header = aligned_alloc(PAGE_SIZE, 2 * PAGE_SIZE);
    Payload = aligned_alloc(PAGE_SIZE, 2 * PAGE_SIZE);
    Back = aligned_alloc(PAGE_SIZE, 2 * PAGE_SIZE);
    if (!Ext.Pdo || !Header || !Payload || !Back) {
        rc = -ENOMEM;
        goto out;
    }
    Status = PacketStartDevice(&Ext, addr_bits);
    for (size_t i = 0; i < sizeof(rounds) / sizeof(rounds[0]) && NT_SUCCESS(Status); i++)
        Status = PacketRound(&Ext, mode, Header + rounds[i].HeaderOffset, rounds[i].HeaderLength,
                             Payload + rounds[i].PayloadOffset, rounds[i].PayloadLength,
                             Back + rounds[i].BackOffset, (unsigned)i + 1);
    rc = errno_of(Status);
    PacketStopDevice(&Ext);
out:
    free(Header);
    free(Payload);
    free(Back);
    dmahal_platform_close(p);
    return rc;
}
