/* SPDX-License-Identifier: MIT */
/*
 * v3.c - the DMA_OPERATIONS members of DMA version 3 and later (GetDmaAdapterInfo through
 * CreateCommonBufferFromMdl), over what the version-2 routines do. Those that exist for
 * system DMA controllers or DMA domains, which dmahal does not have, return the status
 * Windows documents for an adapter without them.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Common-buffer vectors: AllocateCommonBufferVector's elements. */
struct _DMA_COMMON_BUFFER_VECTOR {
    ULONG n;
    bool cached;
    struct dmahal_buf b[]; /* va NULL: freed */
};

NTSTATUS dmahal__wdm_get_dma_adapter_info(PDMA_ADAPTER DmaAdapter, PDMA_ADAPTER_INFO AdapterInfo)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct dmahal_desc desc = {.size = sizeof(desc)};

    if (!w || !AdapterInfo)
        return STATUS_INVALID_PARAMETER;
    if (AdapterInfo->Version != DMA_ADAPTER_INFO_VERSION1)
        return STATUS_NOT_SUPPORTED;
    if (dmahal_adapter_desc(w->a, &desc))
        return STATUS_UNSUCCESSFUL;
    AdapterInfo->V1 = (DMA_ADAPTER_INFO_V1){
        .ReadDmaCounterAvailable = FALSE,
        .ScatterGatherLimit = w->max_elems,
        .DmaAddressWidth = desc.addr_bits,
        .Flags = 0,
        .MinimumTransferUnit = 1,
    };
    return STATUS_SUCCESS;
}

NTSTATUS dmahal__wdm_get_dma_transfer_info(PDMA_ADAPTER DmaAdapter, PMDL Mdl, ULONGLONG Offset,
                                           ULONG Length, BOOLEAN WriteOnly,
                                           PDMA_TRANSFER_INFO TransferInfo)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct xfer x;
    unsigned elems;
    size_t bytes;
    NTSTATUS st;
    PMDL at;
    char *va;

    (void)WriteOnly;
    if (!w || !Mdl || !Length || !TransferInfo)
        return STATUS_INVALID_PARAMETER;
    if (TransferInfo->Version != DMA_TRANSFER_INFO_VERSION1 &&
        TransferInfo->Version != DMA_TRANSFER_INFO_VERSION2)
        return STATUS_NOT_SUPPORTED;
    if (!dmahal__wdm_mdl_at(Mdl, Offset, &at, &va))
        return STATUS_INVALID_PARAMETER;
    st = dmahal__wdm_xfer_walk(w, at, va, Length, NULL, &x);
    if (st)
        return st;
    elems = dmahal__wdm_xfer_elems(w, &x);
    bytes = dmahal__wdm_sg_build_bytes(elems, x.npieces);
    if (bytes > UINT32_MAX || x.regs > UINT32_MAX)
        return STATUS_INSUFFICIENT_RESOURCES;
    TransferInfo->V2.MapRegisterCount = (ULONG)x.regs;
    TransferInfo->V2.ScatterGatherElementCount = elems;
    TransferInfo->V2.ScatterGatherListSize = (ULONG)bytes;
    if (TransferInfo->Version == DMA_TRANSFER_INFO_VERSION2)
        TransferInfo->V2.LogicalPageCount = (ULONG)x.regs;
    return STATUS_SUCCESS;
}

NTSTATUS dmahal__wdm_initialize_dma_transfer_context(PDMA_ADAPTER DmaAdapter,
                                                     PVOID DmaTransferContext)
{
    if (!wdm_adapter_of(DmaAdapter) || !DmaTransferContext)
        return STATUS_INVALID_PARAMETER;
    memset(DmaTransferContext, 0, DMA_TRANSFER_CONTEXT_SIZE_V1);
    return STATUS_SUCCESS;
}

/* A common buffer inside [lo, hi] of the device's addresses, or NULL (nothing kept). */
static PVOID common_in_bounds(struct wdm_adapter *w, uint64_t lo, uint64_t hi, size_t len,
                              bool cached, PPHYSICAL_ADDRESS LogicalAddress)
{
    struct dmahal_buf b;

    LogicalAddress->QuadPart = 0;
    if (dmahal__wdm_common_alloc(w, len, cached, &b))
        return NULL;
    if (b.la < lo || b.la + len - 1 > hi) {
        dmahal__wdm_common_free(w, b.va, b.la, b.len, cached);
        return NULL;
    }
    LogicalAddress->QuadPart = (LONGLONG)b.la;
    return b.va;
}

PVOID dmahal__wdm_allocate_common_buffer_ex(PDMA_ADAPTER DmaAdapter,
                                            PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                            PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled,
                                            NODE_REQUIREMENT PreferredNode)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    (void)PreferredNode;
    if (!LogicalAddress)
        return NULL;
    LogicalAddress->QuadPart = 0;
    if (!w || !Length)
        return NULL;
    return common_in_bounds(w, 0, MaximumAddress ? (uint64_t)MaximumAddress->QuadPart : UINT64_MAX,
                            Length, CacheEnabled != FALSE, LogicalAddress);
}

NTSTATUS dmahal__wdm_allocate_adapter_channel_ex(PDMA_ADAPTER DmaAdapter,
                                                 PDEVICE_OBJECT DeviceObject,
                                                 PVOID DmaTransferContext,
                                                 ULONG NumberOfMapRegisters, ULONG Flags,
                                                 PDRIVER_CONTROL ExecutionRoutine,
                                                 PVOID ExecutionContext, PVOID *MapRegisterBase)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    bool now = (Flags & DMA_SYNCHRONOUS_CALLBACK) != 0;

    if (MapRegisterBase)
        *MapRegisterBase = NULL;
    if (!w || !DmaTransferContext || (Flags & ~(ULONG)DMA_SYNCHRONOUS_CALLBACK))
        return STATUS_INVALID_PARAMETER;
    /* A routine, or (synchronously) the registers returned: one of the two, never both. */
    if (!ExecutionRoutine == !MapRegisterBase || (MapRegisterBase && !now))
        return STATUS_INVALID_PARAMETER;
    return dmahal__wdm_channel_request(w, DeviceObject, NumberOfMapRegisters, ExecutionRoutine,
                                       ExecutionContext, DmaTransferContext, now, MapRegisterBase);
}

NTSTATUS dmahal__wdm_configure_adapter_channel(PDMA_ADAPTER DmaAdapter, ULONG FunctionNumber,
                                               PVOID Context)
{
    (void)DmaAdapter;
    (void)FunctionNumber;
    (void)Context;
    return STATUS_NOT_SUPPORTED; /* controller-specific functions of system DMA */
}

BOOLEAN dmahal__wdm_cancel_adapter_channel(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                           PVOID DmaTransferContext)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    (void)DeviceObject;
    return w && dmahal__wdm_channel_cancel(w, DmaTransferContext) ? TRUE : FALSE;
}

NTSTATUS dmahal__wdm_map_transfer_ex(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                     ULONGLONG Offset, ULONG DeviceOffset, PULONG Length,
                                     BOOLEAN WriteToDevice,
                                     PSCATTER_GATHER_LIST ScatterGatherBuffer,
                                     ULONG ScatterGatherBufferLength,
                                     PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
                                     PVOID CompletionContext)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    ULONG want, done = 0, room;
    PMDL at;
    char *va;

    (void)DeviceOffset; /* system DMA only */
    (void)CompletionContext;
    if (!Length)
        return STATUS_INVALID_PARAMETER;
    want = *Length;
    *Length = 0;
    if (!w || !Mdl || !MapRegisterBase || !want || !ScatterGatherBuffer || DmaCompletionRoutine)
        return STATUS_INVALID_PARAMETER;
    if (ScatterGatherBufferLength < sizeof(SCATTER_GATHER_LIST) + sizeof(SCATTER_GATHER_ELEMENT))
        return STATUS_BUFFER_TOO_SMALL;
    room =
        (ScatterGatherBufferLength - sizeof(SCATTER_GATHER_LIST)) / sizeof(SCATTER_GATHER_ELEMENT);
    ScatterGatherBuffer->NumberOfElements = 0;
    ScatterGatherBuffer->Reserved = 0;
    /* Element by element, over the chain, until the transfer, the registers or the room end. */
    while (done < want && ScatterGatherBuffer->NumberOfElements < room &&
           dmahal__wdm_mdl_at(Mdl, Offset + done, &at, &va)) {
        PSCATTER_GATHER_ELEMENT e =
            &ScatterGatherBuffer->Elements[ScatterGatherBuffer->NumberOfElements];
        ULONG l = want - done;
        PHYSICAL_ADDRESS la =
            dmahal__wdm_map_transfer(DmaAdapter, at, MapRegisterBase, va, &l, WriteToDevice);

        if (!l)
            break;
        e->Address = la;
        e->Length = l;
        e->Reserved = 0;
        ScatterGatherBuffer->NumberOfElements++;
        done += l;
    }
    *Length = done;
    return done ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

/* The list a synchronous Get/Build hands back instead of calling a routine. */
static VOID take_list(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST ScatterGather,
                      PVOID Context)
{
    (void)DeviceObject;
    (void)Irp;
    *(PSCATTER_GATHER_LIST *)Context = ScatterGather;
}

/* What GetScatterGatherListEx and BuildScatterGatherListEx check alike. */
static NTSTATUS sg_ex_check(struct wdm_adapter *w, PVOID ctx, PMDL Mdl, ULONGLONG Offset,
                            ULONG Flags, PDRIVER_LIST_CONTROL fn, PDMA_COMPLETION_ROUTINE done,
                            PSCATTER_GATHER_LIST *out, PMDL *at, char **va)
{
    if (out)
        *out = NULL;
    if (!w || !ctx || !Mdl || (Flags & ~(ULONG)DMA_SYNCHRONOUS_CALLBACK) || done)
        return STATUS_INVALID_PARAMETER;
    if (!fn && (!(Flags & DMA_SYNCHRONOUS_CALLBACK) || !out))
        return STATUS_INVALID_PARAMETER;
    if (!dmahal__wdm_mdl_at(Mdl, Offset, at, va))
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

NTSTATUS dmahal__wdm_get_scatter_gather_list_ex(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
    PVOID CompletionContext, PSCATTER_GATHER_LIST *ScatterGatherList)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    unsigned flags = Flags & DMA_SYNCHRONOUS_CALLBACK ? DMAHAL_MAP_NOWAIT : 0;
    PSCATTER_GATHER_LIST got = NULL;
    NTSTATUS st;
    PMDL at;
    char *va;

    (void)CompletionContext;
    st = sg_ex_check(w, DmaTransferContext, Mdl, Offset, Flags, ExecutionRoutine,
                     DmaCompletionRoutine, ScatterGatherList, &at, &va);
    if (st)
        return st;
    if (ExecutionRoutine)
        return dmahal__wdm_sg_get(w, DeviceObject, at, va, Length, ExecutionRoutine, Context,
                                  WriteToDevice, flags);
    st = dmahal__wdm_sg_get(w, DeviceObject, at, va, Length, take_list, &got, WriteToDevice,
                            flags | WDM_SG_HELD);
    if (st == STATUS_SUCCESS)
        *ScatterGatherList = got;
    return st;
}

NTSTATUS dmahal__wdm_build_scatter_gather_list_ex(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer, ULONG ScatterGatherLength,
    PDMA_COMPLETION_ROUTINE DmaCompletionRoutine, PVOID CompletionContext, PVOID ScatterGatherList)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    PSCATTER_GATHER_LIST *out = ScatterGatherList;
    unsigned flags = Flags & DMA_SYNCHRONOUS_CALLBACK ? DMAHAL_MAP_NOWAIT : 0;
    PSCATTER_GATHER_LIST got = NULL;
    NTSTATUS st;
    PMDL at;
    char *va;

    (void)CompletionContext;
    st = sg_ex_check(w, DmaTransferContext, Mdl, Offset, Flags, ExecutionRoutine,
                     DmaCompletionRoutine, out, &at, &va);
    if (st)
        return st;
    if (ExecutionRoutine)
        return dmahal__wdm_sg_build(w, DeviceObject, at, va, Length, ExecutionRoutine, Context,
                                    WriteToDevice, ScatterGatherBuffer, ScatterGatherLength, flags);
    st = dmahal__wdm_sg_build(w, DeviceObject, at, va, Length, take_list, &got, WriteToDevice,
                              ScatterGatherBuffer, ScatterGatherLength, flags | WDM_SG_HELD);
    if (st == STATUS_SUCCESS)
        *out = got;
    return st;
}

NTSTATUS dmahal__wdm_flush_adapter_buffers_ex(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                              PVOID MapRegisterBase, ULONGLONG Offset, ULONG Length,
                                              BOOLEAN WriteToDevice)
{
    ULONGLONG end = Offset + Length;
    bool ok = true;

    if (!wdm_adapter_of(DmaAdapter) || !Mdl || !Length)
        return STATUS_INVALID_PARAMETER;
    /* Each MDL of the chain that the range touches, flushed over its part of the range. */
    for (ULONGLONG off = Offset; off < end;) {
        PMDL at;
        char *va;
        ULONG part;

        if (!dmahal__wdm_mdl_at(Mdl, off, &at, &va))
            return STATUS_INVALID_PARAMETER;
        part = (ULONG)((char *)MmGetMdlVirtualAddress(at) + at->ByteCount - va);
        if (part > end - off)
            part = (ULONG)(end - off);
        ok &= dmahal__wdm_flush_adapter_buffers(DmaAdapter, at, MapRegisterBase, va, part,
                                                WriteToDevice) != FALSE;
        off += part;
    }
    return ok ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
}

VOID dmahal__wdm_free_adapter_object(PDMA_ADAPTER DmaAdapter, IO_ALLOCATION_ACTION AllocationAction)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    if (!w)
        return;
    /* The lists a synchronous Get/BuildScatterGatherListEx handed back without a routine
     * are this call's to end, if PutScatterGatherList has not. */
    if (AllocationAction == DeallocateObject)
        dmahal__wdm_sg_put_held(w);
    dmahal__wdm_channel_release(w, AllocationAction);
}

NTSTATUS dmahal__wdm_cancel_mapped_transfer(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext)
{
    (void)DmaAdapter;
    (void)DmaTransferContext;
    return STATUS_NOT_SUPPORTED; /* a system DMA transfer in progress */
}

NTSTATUS dmahal__wdm_allocate_domain_common_buffer(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle,
                                                   PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                                   ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
                                                   NODE_REQUIREMENT PreferredNode,
                                                   PPHYSICAL_ADDRESS LogicalAddress,
                                                   PVOID *VirtualAddress)
{
    (void)DmaAdapter;
    (void)DomainHandle;
    (void)MaximumAddress;
    (void)Length;
    (void)Flags;
    (void)CacheType;
    (void)PreferredNode;
    if (LogicalAddress)
        LogicalAddress->QuadPart = 0;
    if (VirtualAddress)
        *VirtualAddress = NULL;
    return STATUS_NOT_SUPPORTED; /* no DMA domains */
}

NTSTATUS dmahal__wdm_flush_dma_buffer(PDMA_ADAPTER DmaAdapter, PMDL Mdl, BOOLEAN ReadOperation)
{
    (void)ReadOperation;
    /* The buffers an MDL of this layer describes are coherent for the device already: common
     * buffers are mapped so, and mapped transfers are synced by the routines that end them. */
    if (!wdm_adapter_of(DmaAdapter) || !Mdl)
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

NTSTATUS dmahal__wdm_join_dma_domain(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle)
{
    (void)DmaAdapter;
    (void)DomainHandle;
    return STATUS_NOT_SUPPORTED;
}

NTSTATUS dmahal__wdm_leave_dma_domain(PDMA_ADAPTER DmaAdapter)
{
    (void)DmaAdapter;
    return STATUS_NOT_SUPPORTED;
}

HANDLE dmahal__wdm_get_dma_domain(PDMA_ADAPTER DmaAdapter)
{
    (void)DmaAdapter;
    return NULL; /* in no domain */
}

PVOID dmahal__wdm_allocate_common_buffer_with_bounds(PDMA_ADAPTER DmaAdapter,
                                                     PPHYSICAL_ADDRESS MinimumAddress,
                                                     PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                                     ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
                                                     NODE_REQUIREMENT PreferredNode,
                                                     PPHYSICAL_ADDRESS LogicalAddress)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    (void)PreferredNode;
    if (!LogicalAddress)
        return NULL;
    LogicalAddress->QuadPart = 0;
    if (!w || !Length || Flags)
        return NULL;
    return common_in_bounds(w, MinimumAddress ? (uint64_t)MinimumAddress->QuadPart : 0,
                            MaximumAddress ? (uint64_t)MaximumAddress->QuadPart : UINT64_MAX,
                            Length, CacheType && *CacheType == MmCached, LogicalAddress);
}

NTSTATUS dmahal__wdm_allocate_common_buffer_vector(
    PDMA_ADAPTER DmaAdapter, PHYSICAL_ADDRESS LowAddress, PHYSICAL_ADDRESS HighAddress,
    MEMORY_CACHING_TYPE CacheType, NODE_REQUIREMENT IdealNode, ULONG Flags, ULONG NumberOfElements,
    ULONGLONG SizeOfElements, PDMA_COMMON_BUFFER_VECTOR *VectorOut)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    PDMA_COMMON_BUFFER_VECTOR v;

    (void)IdealNode;
    if (VectorOut)
        *VectorOut = NULL;
    if (!w || !VectorOut || Flags || !NumberOfElements || !SizeOfElements ||
        SizeOfElements > UINT32_MAX)
        return STATUS_INVALID_PARAMETER;
    v = calloc(1, sizeof(*v) + (size_t)NumberOfElements * sizeof(v->b[0]));
    if (!v)
        return STATUS_INSUFFICIENT_RESOURCES;
    v->n = NumberOfElements;
    v->cached = CacheType == MmCached;
    for (ULONG i = 0; i < NumberOfElements; i++) {
        PHYSICAL_ADDRESS la;

        v->b[i].va =
            common_in_bounds(w, (uint64_t)LowAddress.QuadPart, (uint64_t)HighAddress.QuadPart,
                             (size_t)SizeOfElements, v->cached, &la);
        if (!v->b[i].va) {
            dmahal__wdm_free_common_buffer_vector(DmaAdapter, v);
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        v->b[i].la = (dmahal_addr_t)la.QuadPart;
        v->b[i].len = (size_t)SizeOfElements;
    }
    *VectorOut = v;
    return STATUS_SUCCESS;
}

VOID dmahal__wdm_get_common_buffer_from_vector_by_index(PDMA_ADAPTER DmaAdapter,
                                                        PDMA_COMMON_BUFFER_VECTOR Vector,
                                                        ULONG Index, PVOID *VirtualAddressOut,
                                                        PPHYSICAL_ADDRESS LogicalAddressOut)
{
    bool ok = wdm_adapter_of(DmaAdapter) && Vector && Index < Vector->n;

    if (VirtualAddressOut)
        *VirtualAddressOut = ok ? Vector->b[Index].va : NULL;
    if (LogicalAddressOut)
        LogicalAddressOut->QuadPart = ok && Vector->b[Index].va ? (LONGLONG)Vector->b[Index].la : 0;
}

VOID dmahal__wdm_free_common_buffer_from_vector(PDMA_ADAPTER DmaAdapter,
                                                PDMA_COMMON_BUFFER_VECTOR Vector, ULONG Index)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    if (!w || !Vector || Index >= Vector->n || !Vector->b[Index].va)
        return;
    dmahal__wdm_common_free(w, Vector->b[Index].va, Vector->b[Index].la, Vector->b[Index].len,
                            Vector->cached);
    memset(&Vector->b[Index], 0, sizeof(Vector->b[Index]));
}

VOID dmahal__wdm_free_common_buffer_vector(PDMA_ADAPTER DmaAdapter,
                                           PDMA_COMMON_BUFFER_VECTOR Vector)
{
    if (!wdm_adapter_of(DmaAdapter) || !Vector)
        return;
    for (ULONG i = 0; i < Vector->n; i++)
        dmahal__wdm_free_common_buffer_from_vector(DmaAdapter, Vector, i);
    free(Vector);
}

NTSTATUS dmahal__wdm_create_common_buffer_from_mdl(
    PDMA_ADAPTER DmaAdapter, PMDL Mdl, PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION ExtendedConfigs,
    ULONG ExtendedConfigsCount, PPHYSICAL_ADDRESS LogicalAddress)
{
    (void)ExtendedConfigs;
    (void)ExtendedConfigsCount;
    if (LogicalAddress)
        LogicalAddress->QuadPart = 0;
    if (!wdm_adapter_of(DmaAdapter) || !Mdl || !LogicalAddress)
        return STATUS_INVALID_PARAMETER;
    /* dmahal gives a device memory it allocated for it, or maps a transfer; it does not make
     * memory the driver got elsewhere a common buffer (on a machine without an IOMMU, such
     * memory reaches the device only through bounce pages). */
    return STATUS_NOT_SUPPORTED;
}

ULONG dmahal__wdm_read_dma_counter(PDMA_ADAPTER DmaAdapter)
{
    (void)DmaAdapter;
    return 0; /* a system DMA controller's count; a bus master has none */
}

NTSTATUS dmahal__wdm_build_mdl_from_scatter_gather_list(PDMA_ADAPTER DmaAdapter,
                                                        PSCATTER_GATHER_LIST ScatterGather,
                                                        PMDL OriginalMdl, PMDL *TargetMdl)
{
    (void)DmaAdapter;
    (void)ScatterGather;
    (void)OriginalMdl;
    if (TargetMdl)
        *TargetMdl = NULL;
    /* Logical addresses do not name CPU pages on every platform (an IOMMU's do not). */
    return STATUS_NOT_SUPPORTED;
}
