/* SPDX-License-Identifier: MIT */
/*
 * wdm_internal.h - what the files of the Windows-names layer share: the records behind
 * DMA_ADAPTER, SCATTER_GATHER_LIST, MapRegisterBase and DEVICE_OBJECT, and the functions one
 * file implements for another. The layer sits on the public API only (dmahal.h, wdm.h), like
 * any driver framework would; nothing below it includes this header.
 *
 * Packet DMA keeps two kinds of record per transfer, both recycled per adapter so that the
 * I/O path does not allocate once warm: a struct wdm_sg in front of every
 * SCATTER_GATHER_LIST (in the driver's buffer for BuildScatterGatherList), and a struct
 * wdm_regs behind every MapRegisterBase. Neither dmahal_map() nor dmahal_unmap() is ever
 * called with an adapter's lock held: both may run deferred requests' callbacks, which
 * take it.
 */
#ifndef DMAHAL_WDM_INTERNAL_H
#define DMAHAL_WDM_INTERNAL_H

#include <dmahal/wdm.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Windows' x86 HAL limits devices it must map for to 16 map registers (64 KiB). */
#define WDM_MAX_MAP_REGISTERS_NO_SG 16u
/* The HAL drops MaximumLength's top bit so that BYTES_TO_PAGES cannot overflow. */
#define WDM_MAX_LENGTH_MASK 0x7fffffffu
#define WDM_ADAPTER_MAGIC   0x57444d41u /* "WDMA" */
/* States of a struct wdm_sg. */
#define SG_IDLE 0x53474930u /* cached, or put */
#define SG_WAIT 0x53474931u /* mapping requested */
#define SG_LIVE 0x53474932u /* handed to the driver */
/* States of a struct wdm_regs. */
#define REGS_IDLE    0x52454730u /* cached */
#define REGS_WAIT    0x52454731u /* queued for the channel */
#define REGS_LIVE    0x52454732u /* granted: a MapRegisterBase */
#define REGS_CLOSING 0x52454733u /* being released */
/* Lists are cached with room for this many elements at least (6 KiB), so that most
 * transfers of an adapter fit any cached one. */
#define SG_CACHE_ELEMS 256u
/* Pieces of a scatter/gather transfer that GetScatterGatherList describes on its stack. */
#define SG_STACK_IOV 16u

/* One common buffer handed out through AllocateCommonBuffer. */
struct wdm_buf {
    struct dmahal_buf b; /* as dmahal has it: whole pages */
    size_t length;       /* as the driver asked */
    bool cached;
};

struct wdm_adapter;

/*
 * The record in front of a SCATTER_GATHER_LIST (which follows it, then its elements, then,
 * in a driver's buffer, the iovec scratch of BuildScatterGatherList).
 */
struct wdm_sg {
    uint32_t magic; /* SG_*; changed under the adapter's lock */
    bool cached;    /* from the adapter's cache; else in the driver's buffer */
    unsigned cap;   /* elements there is room for */
    struct wdm_adapter *w;
    struct wdm_sg *next;                  /* on the free list */
    struct wdm_sg *all;                   /* every cached record, for the adapter's end */
    struct wdm_sg *live_prev, *live_next; /* on the adapter's live lists, while SG_LIVE */
    bool held;  /* handed back by a synchronous *Ex call without a routine */
    bool write; /* mapped to the device */
    struct dmahal_sgl *dsgl;
    PDEVICE_OBJECT dev;
    PDRIVER_LIST_CONTROL fn;
    PVOID ctx;
};

/* One piece MapTransfer mapped: in place (sgl) or through the registers' pages (stage). */
struct wdm_piece {
    char *va;
    size_t len;
    struct dmahal_sgl *sgl; /* NULL: staged */
    size_t stage;           /* offset of va's copy in its record's stage pages */
    bool write;
};

/* A MapRegisterBase: nregs of the adapter's map registers, and pages to stage through. */
struct wdm_regs {
    uint32_t magic; /* REGS_*; changed under the adapter's lock */
    unsigned gen;   /* counts grants, so that a recycled record is told apart */
    struct wdm_adapter *w;
    struct wdm_regs *next; /* on the queue or the free list */
    struct wdm_regs *all;
    PDEVICE_OBJECT dev;
    PDRIVER_CONTROL fn; /* NULL: granted synchronously, with no routine */
    PVOID ctx;
    PVOID xctx; /* the DMA transfer context of AllocateAdapterChannelEx, or NULL */
    ULONG nregs;
    ULONG used;              /* registers the pieces took */
    unsigned npieces;        /* live pieces */
    unsigned slots;          /* room in pieces: a piece takes a register at least */
    struct dmahal_buf stage; /* pages to stage pieces through; va NULL until needed */
    struct wdm_piece pieces[];
};

/* A DMA_ADAPTER and what dmahal needs behind it. The driver's PDMA_ADAPTER points at hdr. */
struct wdm_adapter {
    DMA_ADAPTER hdr; /* first, so that a PDMA_ADAPTER is a struct wdm_adapter * */
    uint32_t magic;
    struct dmahal_adapter *a;
    struct wdm_device *dev;
    struct wdm_adapter *prev, *next; /* on dev->adapters */
    pthread_mutex_t lock; /* guards the map, and dmahal's buffers with it; and all below */
    struct wdm_buf *bufs; /* sorted by va, for FreeCommonBuffer's lookup */
    size_t nbufs, cap;
    ULONG nregs;         /* map registers, as IoGetDmaAdapter said */
    size_t max_transfer; /* the adapter's longest transfer */
    size_t page;         /* the platform's page: what a map register covers */
    unsigned max_elems;  /* the most elements a list of this adapter has */
    bool elems_by_pages; /* no element is shorter than a page: a list has at most as many
                            elements as its transfer spans pages */
    struct wdm_sg *sg_free, *sg_all;
    struct wdm_sg *sg_live; /* lists handed to the driver: a put is checked against them */
    ULONG regs_used;        /* map registers granted */
    struct wdm_regs *chan;  /* holds the adapter channel */
    struct wdm_regs *q_head, *q_tail;
    struct wdm_regs *regs_free, *regs_all;
    bool granting; /* a thread is running channel requests */
};

/* The DEVICE_OBJECT of a dmahal device, attached to it as a context. */
struct wdm_device {
    DEVICE_OBJECT obj;    /* first, so that a PDEVICE_OBJECT is a struct wdm_device * */
    pthread_mutex_t lock; /* guards adapters */
    struct wdm_adapter *adapters;
    bool counted; /* one of the system platform's devices */
};

static inline struct wdm_adapter *wdm_adapter_of(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = (struct wdm_adapter *)DmaAdapter;

    return w && w->magic == WDM_ADAPTER_MAGIC ? w : NULL;
}

/* ---- adapter.c ------------------------------------------------------------------------------ */

/* Frees the wrapper only; the dmahal adapter is put (or was put) by the caller. */
void dmahal__wdm_adapter_free(struct wdm_adapter *w);
/* The NTSTATUS for a dmahal error code. */
NTSTATUS dmahal__wdm_status(int rc);

/* ---- common.c: AllocateCommonBuffer, FreeCommonBuffer --------------------------------------- */

/* A common buffer of @len bytes (whole pages, page-aligned, coherent for the device whatever
 * @cached says), recorded for dmahal__wdm_common_free. 0, or dmahal_common_alloc's errors. */
int dmahal__wdm_common_alloc(struct wdm_adapter *w, size_t len, bool cached,
                             struct dmahal_buf *out);
/* Frees a buffer of dmahal__wdm_common_alloc: 0; -ENOENT, -EINVAL or -EPERM (as bufs_take)
 * when the four values do not match one, and then nothing is freed. */
int dmahal__wdm_common_free(struct wdm_adapter *w, void *va, dmahal_addr_t la, size_t len,
                            bool cached);

PVOID dmahal__wdm_allocate_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                         PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled);
VOID dmahal__wdm_free_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                    PHYSICAL_ADDRESS LogicalAddress, PVOID VirtualAddress,
                                    BOOLEAN CacheEnabled);

/* ---- mdl.c: transfers over MDL chains ------------------------------------------------------- */

/* One transfer: @len bytes from @va on, through @mdl's chain (or the one buffer at @va). */
struct xfer {
    unsigned npieces;
    uint64_t regs;
};

/* Pages of @page bytes that [va, va + len) touches: the map registers it needs. */
uint64_t dmahal__wdm_span_pages(const void *va, size_t len, size_t page);
/* Tells whether @va is inside @mdl's buffer. */
bool dmahal__wdm_inside_mdl(PMDL mdl, const void *va);
/*
 * Walks the transfer, counting its pieces and map registers, and filling @iov (room for
 * every piece) when not NULL. STATUS_INVALID_PARAMETER for a @va outside @mdl's buffer,
 * STATUS_BUFFER_TOO_SMALL when the chain ends first.
 */
NTSTATUS dmahal__wdm_xfer_walk(const struct wdm_adapter *w, PMDL mdl, void *va, ULONG len,
                               struct iovec *iov, struct xfer *x);
/* Finds the byte @offset bytes into @mdl's chain: its MDL and address. False past the end. */
bool dmahal__wdm_mdl_at(PMDL mdl, ULONGLONG offset, PMDL *at, char **va);
/* The most elements the transfer's list can have. */
unsigned dmahal__wdm_xfer_elems(const struct wdm_adapter *w, const struct xfer *x);

/* ---- sgl.c: scatter/gather lists ------------------------------------------------------------ */

NTSTATUS dmahal__wdm_get_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                             PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                             PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                             BOOLEAN WriteToDevice);
VOID dmahal__wdm_put_scatter_gather_list(PDMA_ADAPTER DmaAdapter,
                                         PSCATTER_GATHER_LIST ScatterGather, BOOLEAN WriteToDevice);
NTSTATUS dmahal__wdm_calculate_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                   PVOID CurrentVa, ULONG Length,
                                                   PULONG ScatterGatherListSize,
                                                   PULONG pNumberOfMapRegisters);
NTSTATUS dmahal__wdm_build_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                               PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                               PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                               BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                                               ULONG ScatterGatherLength);

/* Flag of dmahal__wdm_sg_get/build: the list is held by the driver without a routine, and
 * FreeAdapterObject(DeallocateObject) ends it if PutScatterGatherList has not. */
#define WDM_SG_HELD 0x10000u
/* Get and Build on @w, with dmahal_map_async's @flags (DMAHAL_MAP_NOWAIT: now or never), and
 * WDM_SG_HELD. */
NTSTATUS dmahal__wdm_sg_get(struct wdm_adapter *w, PDEVICE_OBJECT DeviceObject, PMDL Mdl,
                            PVOID CurrentVa, ULONG Length, PDRIVER_LIST_CONTROL ExecutionRoutine,
                            PVOID Context, BOOLEAN WriteToDevice, unsigned flags);
NTSTATUS dmahal__wdm_sg_build(struct wdm_adapter *w, PDEVICE_OBJECT DeviceObject, PMDL Mdl,
                              PVOID CurrentVa, ULONG Length, PDRIVER_LIST_CONTROL ExecutionRoutine,
                              PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                              ULONG ScatterGatherLength, unsigned flags);
/* Ends every live list of @w that a synchronous *Ex call handed back without a routine. */
void dmahal__wdm_sg_put_held(struct wdm_adapter *w);
/* The bytes BuildScatterGatherList needs for a list of @elems over @npieces buffers. */
size_t dmahal__wdm_sg_build_bytes(unsigned elems, unsigned npieces);

/* ---- channel.c: adapter channels and map registers ------------------------------------------ */

/*
 * AllocateAdapterChannel(Ex): queues a request for @nregs registers and the channel, tagged
 * with @xctx (a DMA transfer context, or NULL) for CancelAdapterChannel. With @now, grants
 * at once or fails with STATUS_INSUFFICIENT_RESOURCES; @fn NULL (only with @now) grants the
 * channel and the registers into *@base, held until FreeAdapterObject.
 */
NTSTATUS dmahal__wdm_channel_request(struct wdm_adapter *w, PDEVICE_OBJECT dev, ULONG nregs,
                                     PDRIVER_CONTROL fn, PVOID ctx, PVOID xctx, bool now,
                                     PVOID *base);
/* Takes the queued request tagged @xctx off the queue; tells whether there was one. */
bool dmahal__wdm_channel_cancel(struct wdm_adapter *w, PVOID xctx);
/* FreeAdapterObject: what an AdapterControl routine's return would have done. */
void dmahal__wdm_channel_release(struct wdm_adapter *w, IO_ALLOCATION_ACTION act);

NTSTATUS dmahal__wdm_allocate_adapter_channel(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                              ULONG NumberOfMapRegisters,
                                              PDRIVER_CONTROL ExecutionRoutine, PVOID Context);
PHYSICAL_ADDRESS dmahal__wdm_map_transfer(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                          PVOID CurrentVa, PULONG Length, BOOLEAN WriteToDevice);
BOOLEAN dmahal__wdm_flush_adapter_buffers(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                          PVOID CurrentVa, ULONG Length, BOOLEAN WriteToDevice);
VOID dmahal__wdm_free_map_registers(PDMA_ADAPTER DmaAdapter, PVOID MapRegisterBase,
                                    ULONG NumberOfMapRegisters);
VOID dmahal__wdm_free_adapter_channel(PDMA_ADAPTER DmaAdapter);

/* ---- device.c: device objects --------------------------------------------------------------- */

/* The record behind a DEVICE_OBJECT that dmahal_wdm_device() made, or NULL for anything
 * else. */
struct wdm_device *dmahal__wdm_device_of(PDEVICE_OBJECT obj);
/* The platform MmAllocatePagesForMdl takes pages from, or NULL while no device has an
 * object. */
struct dmahal_platform *dmahal__wdm_system_platform(void);
/* mdl.c: frees the pages still allocated from @p, which is losing its last device object. */
void dmahal__wdm_pages_release(struct dmahal_platform *p);

/* ---- v3.c: the operations of DMA version 3 and later ----------------------------------------- */

NTSTATUS dmahal__wdm_get_dma_adapter_info(PDMA_ADAPTER DmaAdapter, PDMA_ADAPTER_INFO AdapterInfo);
NTSTATUS dmahal__wdm_get_dma_transfer_info(PDMA_ADAPTER DmaAdapter, PMDL Mdl, ULONGLONG Offset,
                                           ULONG Length, BOOLEAN WriteOnly,
                                           PDMA_TRANSFER_INFO TransferInfo);
NTSTATUS dmahal__wdm_initialize_dma_transfer_context(PDMA_ADAPTER DmaAdapter,
                                                     PVOID DmaTransferContext);
PVOID dmahal__wdm_allocate_common_buffer_ex(PDMA_ADAPTER DmaAdapter,
                                            PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                            PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled,
                                            NODE_REQUIREMENT PreferredNode);
NTSTATUS dmahal__wdm_allocate_adapter_channel_ex(PDMA_ADAPTER DmaAdapter,
                                                 PDEVICE_OBJECT DeviceObject,
                                                 PVOID DmaTransferContext,
                                                 ULONG NumberOfMapRegisters, ULONG Flags,
                                                 PDRIVER_CONTROL ExecutionRoutine,
                                                 PVOID ExecutionContext, PVOID *MapRegisterBase);
NTSTATUS dmahal__wdm_configure_adapter_channel(PDMA_ADAPTER DmaAdapter, ULONG FunctionNumber,
                                               PVOID Context);
BOOLEAN dmahal__wdm_cancel_adapter_channel(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                           PVOID DmaTransferContext);
NTSTATUS dmahal__wdm_map_transfer_ex(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                     ULONGLONG Offset, ULONG DeviceOffset, PULONG Length,
                                     BOOLEAN WriteToDevice,
                                     PSCATTER_GATHER_LIST ScatterGatherBuffer,
                                     ULONG ScatterGatherBufferLength,
                                     PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
                                     PVOID CompletionContext);
NTSTATUS dmahal__wdm_get_scatter_gather_list_ex(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
    PVOID CompletionContext, PSCATTER_GATHER_LIST *ScatterGatherList);
NTSTATUS dmahal__wdm_build_scatter_gather_list_ex(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer, ULONG ScatterGatherLength,
    PDMA_COMPLETION_ROUTINE DmaCompletionRoutine, PVOID CompletionContext, PVOID ScatterGatherList);
NTSTATUS dmahal__wdm_flush_adapter_buffers_ex(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                              PVOID MapRegisterBase, ULONGLONG Offset, ULONG Length,
                                              BOOLEAN WriteToDevice);
VOID dmahal__wdm_free_adapter_object(PDMA_ADAPTER DmaAdapter,
                                     IO_ALLOCATION_ACTION AllocationAction);
NTSTATUS dmahal__wdm_cancel_mapped_transfer(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext);
NTSTATUS dmahal__wdm_allocate_domain_common_buffer(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle,
                                                   PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                                   ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
                                                   NODE_REQUIREMENT PreferredNode,
                                                   PPHYSICAL_ADDRESS LogicalAddress,
                                                   PVOID *VirtualAddress);
NTSTATUS dmahal__wdm_flush_dma_buffer(PDMA_ADAPTER DmaAdapter, PMDL Mdl, BOOLEAN ReadOperation);
NTSTATUS dmahal__wdm_join_dma_domain(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle);
NTSTATUS dmahal__wdm_leave_dma_domain(PDMA_ADAPTER DmaAdapter);
HANDLE dmahal__wdm_get_dma_domain(PDMA_ADAPTER DmaAdapter);
PVOID dmahal__wdm_allocate_common_buffer_with_bounds(PDMA_ADAPTER DmaAdapter,
                                                     PPHYSICAL_ADDRESS MinimumAddress,
                                                     PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                                     ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
                                                     NODE_REQUIREMENT PreferredNode,
                                                     PPHYSICAL_ADDRESS LogicalAddress);
NTSTATUS dmahal__wdm_allocate_common_buffer_vector(
    PDMA_ADAPTER DmaAdapter, PHYSICAL_ADDRESS LowAddress, PHYSICAL_ADDRESS HighAddress,
    MEMORY_CACHING_TYPE CacheType, NODE_REQUIREMENT IdealNode, ULONG Flags, ULONG NumberOfElements,
    ULONGLONG SizeOfElements, PDMA_COMMON_BUFFER_VECTOR *VectorOut);
VOID dmahal__wdm_get_common_buffer_from_vector_by_index(PDMA_ADAPTER DmaAdapter,
                                                        PDMA_COMMON_BUFFER_VECTOR Vector,
                                                        ULONG Index, PVOID *VirtualAddressOut,
                                                        PPHYSICAL_ADDRESS LogicalAddressOut);
VOID dmahal__wdm_free_common_buffer_from_vector(PDMA_ADAPTER DmaAdapter,
                                                PDMA_COMMON_BUFFER_VECTOR Vector, ULONG Index);
VOID dmahal__wdm_free_common_buffer_vector(PDMA_ADAPTER DmaAdapter,
                                           PDMA_COMMON_BUFFER_VECTOR Vector);
NTSTATUS dmahal__wdm_create_common_buffer_from_mdl(
    PDMA_ADAPTER DmaAdapter, PMDL Mdl, PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION ExtendedConfigs,
    ULONG ExtendedConfigsCount, PPHYSICAL_ADDRESS LogicalAddress);
ULONG dmahal__wdm_read_dma_counter(PDMA_ADAPTER DmaAdapter);
NTSTATUS dmahal__wdm_build_mdl_from_scatter_gather_list(PDMA_ADAPTER DmaAdapter,
                                                        PSCATTER_GATHER_LIST ScatterGather,
                                                        PMDL OriginalMdl, PMDL *TargetMdl);

#endif /* DMAHAL_WDM_INTERNAL_H */
