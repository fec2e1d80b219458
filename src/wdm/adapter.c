/* SPDX-License-Identifier: MIT */
/*
 * adapter.c - IoGetDmaAdapter (a DEVICE_DESCRIPTION translated into a dmahal_desc), the
 * DMA_ADAPTER behind it with its DMA_OPERATIONS, and PutDmaAdapter.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Frees the wrapper only; the dmahal adapter is put (or was put) by the caller. */
void dmahal__wdm_adapter_free(struct wdm_adapter *w)
{
    w->magic = 0;
    while (w->sg_all) {
        struct wdm_sg *sg = w->sg_all;

        w->sg_all = sg->all;
        free(sg);
    }
    while (w->regs_all) {
        struct wdm_regs *r = w->regs_all;

        w->regs_all = r->all;
        free(r);
    }
    pthread_mutex_destroy(&w->lock);
    free(w->bufs);
    free(w);
}

static VOID put_dma_adapter(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_device *dev;

    if (!w)
        return;
    dev = w->dev;
    pthread_mutex_lock(&dev->lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        dev->adapters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&dev->lock);
    /* The registers' staging pages are ours, not a leak of the driver's. */
    for (struct wdm_regs *r = w->regs_all; r; r = r->all)
        if (r->stage.va)
            dmahal_common_free(w->a, &r->stage);
    /* dmahal frees the buffers still allocated, and its verifier reports them as leaks;
     * requests still waiting for map registers are dropped (sg_mapped sees them cancelled). */
    dmahal_adapter_put(w->a);
    dmahal__wdm_adapter_free(w);
}

static ULONG get_dma_alignment(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    return w ? (ULONG)dmahal_adapter_alignment(w->a) : 0;
}

NTSTATUS dmahal__wdm_status(int rc)
{
    switch (rc) {
    case 0:
        return STATUS_SUCCESS;
    case -EINVAL:
        return STATUS_INVALID_PARAMETER;
    case -E2BIG:
    case -ENOMEM:
    case -ENOSPC:
        return STATUS_INSUFFICIENT_RESOURCES;
    case -ENOTSUP:
        return STATUS_NOT_SUPPORTED;
    default:
        return STATUS_UNSUCCESSFUL;
    }
}

/* The members of DMA_OPERATIONS version 1, which every version's table starts with. */
#define WDM_OPS_V1                                                                                 \
    .PutDmaAdapter = put_dma_adapter, .AllocateCommonBuffer = dmahal__wdm_allocate_common_buffer,  \
    .FreeCommonBuffer = dmahal__wdm_free_common_buffer,                                            \
    .AllocateAdapterChannel = dmahal__wdm_allocate_adapter_channel,                                \
    .FlushAdapterBuffers = dmahal__wdm_flush_adapter_buffers,                                      \
    .FreeAdapterChannel = dmahal__wdm_free_adapter_channel,                                        \
    .FreeMapRegisters = dmahal__wdm_free_map_registers, .MapTransfer = dmahal__wdm_map_transfer,   \
    .GetDmaAlignment = get_dma_alignment,                                                          \
    .GetScatterGatherList = dmahal__wdm_get_scatter_gather_list,                                   \
    .PutScatterGatherList = dmahal__wdm_put_scatter_gather_list

/* Versions 0 and 1: DMA_OPERATIONS version 1, up to PutScatterGatherList (Calculate and
 * BuildScatterGatherList came with version 2). ReadDmaCounter answers as for an adapter
 * without a system DMA controller. */
static const DMA_OPERATIONS wdm_ops_v1 = {
    .Size = offsetof(DMA_OPERATIONS, CalculateScatterGatherList),
    WDM_OPS_V1,
    .ReadDmaCounter = dmahal__wdm_read_dma_counter,
};

/* Version 2: up to BuildMdlFromScatterGatherList, which answers as for an adapter without
 * CPU pages behind its logical addresses. */
static const DMA_OPERATIONS wdm_ops_v2 = {
    .Size = offsetof(DMA_OPERATIONS, GetDmaAdapterInfo),
    WDM_OPS_V1,
    .CalculateScatterGatherList = dmahal__wdm_calculate_scatter_gather_list,
    .BuildScatterGatherList = dmahal__wdm_build_scatter_gather_list,
    .ReadDmaCounter = dmahal__wdm_read_dma_counter,
    .BuildMdlFromScatterGatherList = dmahal__wdm_build_mdl_from_scatter_gather_list,
};

/* Version 3: every member, through CreateCommonBufferFromMdl. */
static const DMA_OPERATIONS wdm_ops_v3 = {
    .Size = sizeof(DMA_OPERATIONS),
    WDM_OPS_V1,
    .CalculateScatterGatherList = dmahal__wdm_calculate_scatter_gather_list,
    .BuildScatterGatherList = dmahal__wdm_build_scatter_gather_list,
    .ReadDmaCounter = dmahal__wdm_read_dma_counter,
    .BuildMdlFromScatterGatherList = dmahal__wdm_build_mdl_from_scatter_gather_list,
    .GetDmaAdapterInfo = dmahal__wdm_get_dma_adapter_info,
    .GetDmaTransferInfo = dmahal__wdm_get_dma_transfer_info,
    .InitializeDmaTransferContext = dmahal__wdm_initialize_dma_transfer_context,
    .AllocateCommonBufferEx = dmahal__wdm_allocate_common_buffer_ex,
    .AllocateAdapterChannelEx = dmahal__wdm_allocate_adapter_channel_ex,
    .ConfigureAdapterChannel = dmahal__wdm_configure_adapter_channel,
    .CancelAdapterChannel = dmahal__wdm_cancel_adapter_channel,
    .MapTransferEx = dmahal__wdm_map_transfer_ex,
    .GetScatterGatherListEx = dmahal__wdm_get_scatter_gather_list_ex,
    .BuildScatterGatherListEx = dmahal__wdm_build_scatter_gather_list_ex,
    .FlushAdapterBuffersEx = dmahal__wdm_flush_adapter_buffers_ex,
    .FreeAdapterObject = dmahal__wdm_free_adapter_object,
    .CancelMappedTransfer = dmahal__wdm_cancel_mapped_transfer,
    .AllocateDomainCommonBuffer = dmahal__wdm_allocate_domain_common_buffer,
    .FlushDmaBuffer = dmahal__wdm_flush_dma_buffer,
    .JoinDmaDomain = dmahal__wdm_join_dma_domain,
    .LeaveDmaDomain = dmahal__wdm_leave_dma_domain,
    .GetDmaDomain = dmahal__wdm_get_dma_domain,
    .AllocateCommonBufferWithBounds = dmahal__wdm_allocate_common_buffer_with_bounds,
    .AllocateCommonBufferVector = dmahal__wdm_allocate_common_buffer_vector,
    .GetCommonBufferFromVectorByIndex = dmahal__wdm_get_common_buffer_from_vector_by_index,
    .FreeCommonBufferFromVector = dmahal__wdm_free_common_buffer_from_vector,
    .FreeCommonBufferVector = dmahal__wdm_free_common_buffer_vector,
    .CreateCommonBufferFromMdl = dmahal__wdm_create_common_buffer_from_mdl,
};

/* ---- IoGetDmaAdapter ------------------------------------------------------------------------- */

/* Every dmahal device sits on PCI; an undefined interface type resolves to it, as Windows
 * resolves it from the PDO. */
static bool desc_on_pci(const DEVICE_DESCRIPTION *dd)
{
    return dd->InterfaceType == PCIBus || dd->InterfaceType == InterfaceTypeUndefined;
}

static unsigned desc_addr_bits(const DEVICE_DESCRIPTION *dd)
{
    if (dd->Version == DEVICE_DESCRIPTION_VERSION3)
        return dd->DmaAddressWidth;
    if (dd->Dma64BitAddresses)
        return 64;
    if (dd->Dma32BitAddresses)
        return 32;
    /* Windows takes a PCI scatter/gather master to drive 32 bits even if the flag is unset. */
    if (dd->ScatterGather && desc_on_pci(dd))
        return 32;
    return 24;
}

/* Fills @desc from @dd and returns the map register count Windows would give. */
static ULONG desc_translate(const DEVICE_DESCRIPTION *dd, size_t page, struct dmahal_desc *desc)
{
    size_t max_len = dd->MaximumLength & WDM_MAX_LENGTH_MASK;
    ULONG nregs = (ULONG)((max_len + page - 1) / page + 1);

    /* Only a scatter/gather master on PCI or EISA escapes the HAL's 64 KiB limit. */
    if (!(dd->ScatterGather && (desc_on_pci(dd) || dd->InterfaceType == Eisa)) &&
        nregs > WDM_MAX_MAP_REGISTERS_NO_SG)
        nregs = WDM_MAX_MAP_REGISTERS_NO_SG;
    *desc = (struct dmahal_desc){
        .size = sizeof(*desc),
        .addr_bits = desc_addr_bits(dd),
        .max_segments = dd->ScatterGather ? nregs : 1,
        /* The most that nregs map registers map (page-aligned): Windows refuses a transfer
         * only when its registers are short, whatever MaximumLength says. */
        .max_transfer = (size_t)nregs * page,
        .coherent = false, /* the platform decides */
    };
    return nregs;
}

/*
 * Reserves the adapter's map registers now, while memory its device reaches is there: one
 * mapping that bounces (user memory always does, where there is no IOMMU) makes dmahal join
 * the adapter to its bounce pool, which grows by the adapter's share and keeps it. Without
 * it the pool would grow at the first transfer, after common buffers may have taken the low
 * memory a 24- or 28-bit device needs. Where nothing bounces, nothing is reserved; a failure
 * leaves the pool to grow later, as it would have.
 */
static void reserve_map_registers(struct wdm_adapter *w)
{
    static const char byte;
    struct iovec iov = {(void *)&byte, 1};
    struct dmahal_sgl *sgl;

    if (dmahal_map(w->a, &iov, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &sgl) == 0)
        dmahal_unmap(w->a, sgl);
}

PDMA_ADAPTER IoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject,
                             PDEVICE_DESCRIPTION DeviceDescription, PULONG NumberOfMapRegisters)
{
    struct wdm_device *dev = dmahal__wdm_device_of(PhysicalDeviceObject);
    const DEVICE_DESCRIPTION *dd = DeviceDescription;
    struct dmahal_desc desc, merged = {.size = sizeof(merged)};
    struct wdm_adapter *w;
    size_t page;
    ULONG nregs;

    if (!NumberOfMapRegisters)
        return NULL;
    *NumberOfMapRegisters = 0;
    if (!dev || !dd)
        return NULL;
    if (dd->Version > DEVICE_DESCRIPTION_VERSION3 || !dd->Master || dd->Reserved1)
        return NULL;
    if (dd->Version == DEVICE_DESCRIPTION_VERSION3 &&
        (dd->DmaAddressWidth == 0 || dd->DmaAddressWidth > 64))
        return NULL;
    page = dmahal_platform_page_size(dmahal_device_platform(dev->obj.DmahalDevice));
    if (!page)
        return NULL;
    nregs = desc_translate(dd, page, &desc);

    w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    if (dmahal_adapter_get(dev->obj.DmahalDevice, &desc, &w->a))
        goto err_alloc;
    /* Windows sets 1 whatever the description's version; the table's Size tells more. */
    w->hdr.Version = 1;
    w->hdr.Size = sizeof(w->hdr);
    /* Windows' member is not const; the table is, and stays read-only. */
    w->hdr.DmaOperations =
        (PDMA_OPERATIONS)(dd->Version == DEVICE_DESCRIPTION_VERSION3   ? &wdm_ops_v3
                          : dd->Version == DEVICE_DESCRIPTION_VERSION2 ? &wdm_ops_v2
                                                                       : &wdm_ops_v1);
    if (dmahal_adapter_desc(w->a, &merged))
        goto err_adapter;
    w->nregs = nregs;
    w->max_transfer = merged.max_transfer;
    w->page = page;
    w->max_elems = merged.max_segments ? merged.max_segments : 1;
    /* Elements shorter than a page come only from a max_segment or boundary below it. */
    w->elems_by_pages = (merged.max_segment == 0 || merged.max_segment >= page) &&
                        (merged.boundary == 0 || merged.boundary >= page);
    reserve_map_registers(w);
    w->magic = WDM_ADAPTER_MAGIC;
    w->dev = dev;
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_lock(&dev->lock);
    w->next = dev->adapters;
    if (dev->adapters)
        dev->adapters->prev = w;
    dev->adapters = w;
    pthread_mutex_unlock(&dev->lock);
    *NumberOfMapRegisters = nregs;
    return &w->hdr;

err_adapter:
    dmahal_adapter_put(w->a);
err_alloc:
    free(w);
    return NULL;
}

struct dmahal_adapter *dmahal_wdm_adapter(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    return w ? w->a : NULL;
}
