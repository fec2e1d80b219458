/*
 * wdm.c - the Windows-names layer: IoGetDmaAdapter, MDLs and the DMA_OPERATIONS dmahal
 * implements, on top of the public API only (dmahal.h), like any driver framework would be.
 *
 * Packet DMA keeps two kinds of record per transfer, both recycled per adapter so that the
 * I/O path does not allocate once warm: a struct wdm_sg in front of every
 * SCATTER_GATHER_LIST (in the driver's buffer for BuildScatterGatherList), and a struct
 * wdm_regs behind every MapRegisterBase. Neither dmahal_map() nor dmahal_unmap() is ever
 * called with an adapter's lock held: both may run deferred requests' callbacks, which
 * take it.
 */
#include "core/framed.h"

#include <dmahal/wdm.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    struct dmahal_buf b;
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
    struct wdm_sg *next; /* on the free list */
    struct wdm_sg *all;  /* every cached record, for the adapter's end */
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
    size_t stage;           /* offset of va's copy in the adapter's register pages */
    bool write;
};

/* A MapRegisterBase: registers [first, first + nregs) of the adapter's. */
struct wdm_regs {
    uint32_t magic; /* REGS_*; changed under the adapter's lock */
    unsigned gen;   /* counts grants, so that a recycled record is told apart */
    struct wdm_adapter *w;
    struct wdm_regs *next; /* on the queue or the free list */
    struct wdm_regs *all;
    PDEVICE_OBJECT dev;
    PDRIVER_CONTROL fn;
    PVOID ctx;
    ULONG nregs, first;
    ULONG used;       /* registers the pieces took */
    unsigned npieces; /* live pieces */
    unsigned slots;   /* room in pieces: a piece takes a register at least */
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
    struct dmahal_buf stage; /* the registers' pages; va NULL until first needed */
    unsigned char *reg_used; /* one byte per register */
    struct wdm_regs *chan;   /* holds the adapter channel */
    struct wdm_regs *q_head, *q_tail;
    struct wdm_regs *regs_free, *regs_all;
    bool granting; /* a thread is running channel requests */
};

/* The DEVICE_OBJECT of a dmahal device, attached to it as a context. */
struct wdm_device {
    DEVICE_OBJECT obj;    /* first, so that a PDEVICE_OBJECT is a struct wdm_device * */
    pthread_mutex_t lock; /* guards adapters */
    struct wdm_adapter *adapters;
};

/* The key under which a device's struct wdm_device is attached; its address is what counts. */
static const char device_key = 0;
/* Serialises the creation of device objects, so that two racing callers get the same one. */
static pthread_mutex_t device_create_lock = PTHREAD_MUTEX_INITIALIZER;

static struct wdm_adapter *wdm_adapter_of(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = (struct wdm_adapter *)DmaAdapter;

    return w && w->magic == WDM_ADAPTER_MAGIC ? w : NULL;
}

/* ---- the buffer map: va -> buffer, sorted, binary-searched --------------------------------- */

/* Returns the index of the first entry whose va is not below @va. Caller holds w->lock. */
static size_t bufs_lower_bound(const struct wdm_adapter *w, const void *va)
{
    size_t lo = 0, hi = w->nbufs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((uintptr_t)w->bufs[mid].b.va < (uintptr_t)va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Adds @wb to the map. Caller holds w->lock. */
static int bufs_insert(struct wdm_adapter *w, const struct wdm_buf *wb)
{
    size_t i;

    if (w->nbufs == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct wdm_buf *bufs = realloc(w->bufs, cap * sizeof(*bufs));

        if (!bufs)
            return -ENOMEM;
        w->bufs = bufs;
        w->cap = cap;
    }
    i = bufs_lower_bound(w, wb->b.va);
    memmove(&w->bufs[i + 1], &w->bufs[i], (w->nbufs - i) * sizeof(*w->bufs));
    w->bufs[i] = *wb;
    w->nbufs++;
    return 0;
}

/*
 * Takes the entry that matches @wb exactly out of the map. Returns 0; -ENOENT when no entry
 * has that va; -EINVAL when one has but its la or len differs; -EPERM when only its
 * CacheEnabled differs. A mismatched entry stays. Caller holds w->lock.
 */
static int bufs_take(struct wdm_adapter *w, const struct wdm_buf *wb)
{
    size_t i = bufs_lower_bound(w, wb->b.va);

    if (i == w->nbufs || w->bufs[i].b.va != wb->b.va)
        return -ENOENT;
    if (w->bufs[i].b.la != wb->b.la || w->bufs[i].b.len != wb->b.len)
        return -EINVAL;
    if (w->bufs[i].cached != wb->cached)
        return -EPERM;
    w->nbufs--;
    memmove(&w->bufs[i], &w->bufs[i + 1], (w->nbufs - i) * sizeof(*w->bufs));
    return 0;
}

/* ---- the operations -------------------------------------------------------------------------- */

/* Frees the wrapper only; the dmahal adapter is put (or was put) by the caller. */
static void wdm_adapter_free(struct wdm_adapter *w)
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
    free(w->reg_used);
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
    /* The register pages are ours, not a leak of the driver's. */
    if (w->stage.va)
        dmahal_common_free(w->a, &w->stage);
    /* dmahal frees the buffers still allocated, and its verifier reports them as leaks;
     * requests still waiting for map registers are dropped (sg_mapped sees them cancelled). */
    dmahal_adapter_put(w->a);
    wdm_adapter_free(w);
}

static PVOID allocate_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                    PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_buf wb = {.cached = CacheEnabled != FALSE};
    int rc;

    if (!LogicalAddress)
        return NULL;
    LogicalAddress->QuadPart = 0;
    if (!w || Length == 0)
        return NULL;
    /* dmahal and the map change together, so that no free sees one without the other. */
    pthread_mutex_lock(&w->lock);
    rc = dmahal_common_alloc(w->a, Length, wb.cached ? DMAHAL_CACHED : 0, &wb.b);
    if (rc == 0) {
        rc = bufs_insert(w, &wb);
        if (rc)
            dmahal_common_free(w->a, &wb.b);
    }
    pthread_mutex_unlock(&w->lock);
    if (rc)
        return NULL;
    LogicalAddress->QuadPart = (LONGLONG)wb.b.la;
    return wb.b.va;
}

static VOID free_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                               PHYSICAL_ADDRESS LogicalAddress, PVOID VirtualAddress,
                               BOOLEAN CacheEnabled)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_buf wb = {
        .b = {.va = VirtualAddress, .la = (dmahal_addr_t)LogicalAddress.QuadPart, .len = Length},
        .cached = CacheEnabled != FALSE,
    };
    int rc;

    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    rc = bufs_take(w, &wb);
    /*
     * A buffer not ours as described goes to dmahal all the same: it refuses to free what
     * does not match a live buffer exactly, so nothing is freed, and its verifier reports
     * the bad free with both sides. A CacheEnabled mismatch alone would match, so it is not
     * handed on.
     */
    if (rc != -EPERM)
        dmahal_common_free(w->a, &wb.b);
    pthread_mutex_unlock(&w->lock);
}

static ULONG get_dma_alignment(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    return w ? (ULONG)dmahal_adapter_alignment(w->a) : 0;
}

/* ---- MDLs -------------------------------------------------------------------------------- */

PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                   PIRP Irp)
{
    uintptr_t va = (uintptr_t)VirtualAddress;
    PMDL mdl;

    (void)SecondaryBuffer;
    (void)ChargeQuota;
    if (!VirtualAddress || Length == 0 || Irp || va + Length - 1 < va)
        return NULL;
    mdl = calloc(1, sizeof(*mdl));
    if (!mdl)
        return NULL;
    mdl->Size = (CSHORT)sizeof(*mdl);
    mdl->MdlFlags = MDL_ALLOCATED_FIXED_SIZE | MDL_PAGES_LOCKED;
    mdl->StartVa = PAGE_ALIGN(VirtualAddress);
    mdl->ByteOffset = BYTE_OFFSET(VirtualAddress);
    mdl->ByteCount = Length;
    return mdl;
}

VOID IoFreeMdl(PMDL Mdl)
{
    free(Mdl);
}

VOID MmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList)
{
    if (!MemoryDescriptorList)
        return;
    MemoryDescriptorList->MappedSystemVa = MmGetMdlVirtualAddress(MemoryDescriptorList);
    MemoryDescriptorList->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
}

/* ---- transfers over MDL chains --------------------------------------------------------------- */

static NTSTATUS status_of(int rc)
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

/* Pages of @page bytes that [va, va + len) touches: the map registers it needs. */
static uint64_t span_pages(const void *va, size_t len, size_t page)
{
    uintptr_t v = (uintptr_t)va;

    return (uint64_t)((v + len + page - 1) / page - v / page);
}

static bool inside_mdl(PMDL mdl, const void *va)
{
    const char *start = MmGetMdlVirtualAddress(mdl);

    return (const char *)va >= start && (const char *)va < start + mdl->ByteCount;
}

/* One transfer: @len bytes from @va on, through @mdl's chain (or the one buffer at @va). */
struct xfer {
    unsigned npieces;
    uint64_t regs;
};

/*
 * Walks the transfer, counting its pieces and map registers, and filling @iov (room for
 * every piece) when not NULL. STATUS_INVALID_PARAMETER for a @va outside @mdl's buffer,
 * STATUS_BUFFER_TOO_SMALL when the chain ends first.
 */
static NTSTATUS xfer_walk(const struct wdm_adapter *w, PMDL mdl, void *va, ULONG len,
                          struct iovec *iov, struct xfer *x)
{
    size_t left = len;

    *x = (struct xfer){0, 0};
    if (!mdl) {
        if (iov)
            iov[0] = (struct iovec){va, len};
        *x = (struct xfer){1, span_pages(va, len, w->page)};
        return STATUS_SUCCESS;
    }
    if (!inside_mdl(mdl, va))
        return STATUS_INVALID_PARAMETER;
    for (PMDL m = mdl; left; m = m->Next) {
        char *start, *end;
        size_t take;

        if (!m)
            return STATUS_BUFFER_TOO_SMALL;
        start = m == mdl ? (char *)va : (char *)MmGetMdlVirtualAddress(m);
        end = (char *)MmGetMdlVirtualAddress(m) + m->ByteCount;
        take = (size_t)(end - start) < left ? (size_t)(end - start) : left;
        if (!take)
            continue;
        if (iov)
            iov[x->npieces] = (struct iovec){start, take};
        x->npieces++;
        x->regs += span_pages(start, take, w->page);
        left -= take;
    }
    return STATUS_SUCCESS;
}

/* The most elements the transfer's list can have. */
static unsigned xfer_elems(const struct wdm_adapter *w, const struct xfer *x)
{
    if (w->elems_by_pages && x->regs < w->max_elems)
        return (unsigned)x->regs;
    return w->max_elems;
}

/* ---- scatter/gather lists ------------------------------------------------------------------- */

static PSCATTER_GATHER_LIST sg_list(struct wdm_sg *sg)
{
    return (PSCATTER_GATHER_LIST)(sg + 1);
}

static struct wdm_sg *sg_of(PSCATTER_GATHER_LIST list)
{
    return (struct wdm_sg *)list - 1;
}

static size_t sg_bytes(unsigned elems)
{
    return sizeof(struct wdm_sg) + sizeof(SCATTER_GATHER_LIST) +
           (size_t)elems * sizeof(SCATTER_GATHER_ELEMENT);
}

/* What BuildScatterGatherList needs: the record, the list, the iovec scratch, and room to
 * align a buffer that is not. */
static size_t sg_build_bytes(unsigned elems, unsigned npieces)
{
    return _Alignof(max_align_t) - 1 + sg_bytes(elems) + (size_t)npieces * sizeof(struct iovec);
}

/* A cached record with room for @elems, or a new one. */
static struct wdm_sg *sg_get(struct wdm_adapter *w, unsigned elems)
{
    struct wdm_sg **pp, *sg;
    unsigned cap = elems > SG_CACHE_ELEMS ? elems : SG_CACHE_ELEMS;

    pthread_mutex_lock(&w->lock);
    for (pp = &w->sg_free; *pp; pp = &(*pp)->next) {
        if ((*pp)->cap >= elems) {
            sg = *pp;
            *pp = sg->next;
            pthread_mutex_unlock(&w->lock);
            return sg;
        }
    }
    if (cap > w->max_elems && elems <= w->max_elems)
        cap = w->max_elems;
    sg = calloc(1, sg_bytes(cap));
    if (sg) {
        sg->magic = SG_IDLE;
        sg->cached = true;
        sg->cap = cap;
        sg->w = w;
        sg->all = w->sg_all;
        w->sg_all = sg;
    }
    pthread_mutex_unlock(&w->lock);
    return sg;
}

/* Ends a record's transfer: a cached one goes back to the cache. */
static void sg_release(struct wdm_sg *sg)
{
    struct wdm_adapter *w = sg->w;

    pthread_mutex_lock(&w->lock);
    sg->magic = SG_IDLE;
    sg->dsgl = NULL;
    if (sg->cached) {
        sg->next = w->sg_free;
        w->sg_free = sg;
    }
    pthread_mutex_unlock(&w->lock);
}

/* dmahal_map_async's callback: the list is mapped (or the request was cancelled). */
static void sg_mapped(struct dmahal_adapter *a, int status, struct dmahal_sgl *dsgl, void *ctx)
{
    struct wdm_sg *sg = ctx;
    PSCATTER_GATHER_LIST list = sg_list(sg);
    PDRIVER_LIST_CONTROL fn = sg->fn;

    if (status) {
        sg_release(sg);
        return;
    }
    if (dsgl->nseg > sg->cap) {
        /* Cannot happen with the bound xfer_elems computes; refused rather than overrun. */
        dmahal_unmap(a, dsgl);
        sg_release(sg);
        return;
    }
    list->NumberOfElements = dsgl->nseg;
    list->Reserved = 0;
    for (unsigned i = 0; i < dsgl->nseg; i++) {
        list->Elements[i].Address.QuadPart = (LONGLONG)dsgl->seg[i].la;
        list->Elements[i].Length = (ULONG)dsgl->seg[i].len;
        list->Elements[i].Reserved = 0;
    }
    pthread_mutex_lock(&sg->w->lock);
    sg->dsgl = dsgl;
    sg->magic = SG_LIVE;
    pthread_mutex_unlock(&sg->w->lock);
    fn(sg->dev, NULL, list, sg->ctx);
}

/* Starts the mapping of a filled-in record. On failure the record is released. */
static NTSTATUS sg_start(struct wdm_adapter *w, struct wdm_sg *sg, const struct iovec *iov,
                         unsigned npieces, BOOLEAN WriteToDevice)
{
    enum dmahal_dir dir = WriteToDevice ? DMAHAL_TO_DEVICE : DMAHAL_FROM_DEVICE;
    int rc;

    sg->magic = SG_WAIT;
    rc = dmahal_map_async(w->a, iov, npieces, dir, 0, sg_mapped, sg);
    /* Mapped (the routine has run, and may have put the list already) or queued: the
     * record is not ours to touch any more. */
    if (rc == 0 || rc == -EINPROGRESS)
        return STATUS_SUCCESS;
    sg_release(sg);
    return status_of(rc);
}

/* Checks what Get and Build share, and measures the transfer. */
static NTSTATUS sg_check(struct wdm_adapter *w, PMDL Mdl, PVOID CurrentVa, ULONG Length,
                         PDRIVER_LIST_CONTROL ExecutionRoutine, struct xfer *x)
{
    NTSTATUS st;

    *x = (struct xfer){0, 0};
    if (!w || !Mdl || !CurrentVa || !Length || !ExecutionRoutine)
        return STATUS_INVALID_PARAMETER;
    st = xfer_walk(w, Mdl, CurrentVa, Length, NULL, x);
    if (st)
        return st;
    if (x->regs > w->nregs || Length > w->max_transfer)
        return STATUS_INSUFFICIENT_RESOURCES;
    return STATUS_SUCCESS;
}

static NTSTATUS get_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                        PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                        PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                        BOOLEAN WriteToDevice)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct iovec stack_iov[SG_STACK_IOV], *iov = stack_iov;
    struct wdm_sg *sg;
    struct xfer x;
    NTSTATUS st;

    st = sg_check(w, Mdl, CurrentVa, Length, ExecutionRoutine, &x);
    if (st)
        return st;
    if (x.npieces > SG_STACK_IOV) {
        iov = malloc(x.npieces * sizeof(*iov));
        if (!iov)
            return STATUS_INSUFFICIENT_RESOURCES;
    }
    xfer_walk(w, Mdl, CurrentVa, Length, iov, &x);
    sg = sg_get(w, xfer_elems(w, &x));
    if (!sg) {
        st = STATUS_INSUFFICIENT_RESOURCES;
        goto out;
    }
    sg->dev = DeviceObject;
    sg->fn = ExecutionRoutine;
    sg->ctx = Context;
    st = sg_start(w, sg, iov, x.npieces, WriteToDevice);
out:
    if (iov != stack_iov)
        free(iov);
    return st;
}

static VOID put_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PSCATTER_GATHER_LIST ScatterGather,
                                    BOOLEAN WriteToDevice)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct dmahal_sgl *dsgl;
    struct wdm_sg *sg;

    if (!w || !ScatterGather)
        return;
    sg = sg_of(ScatterGather);
    pthread_mutex_lock(&w->lock);
    if (sg->magic != SG_LIVE || sg->w != w) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    /* Taken now, so that a second put of the same list, even a racing one, finds nothing. */
    sg->magic = SG_WAIT;
    dsgl = sg->dsgl;
    pthread_mutex_unlock(&w->lock);
    if (!WriteToDevice)
        dmahal_sync_for_cpu(w->a, dsgl);
    dmahal_unmap(w->a, dsgl);
    sg_release(sg);
}

static NTSTATUS calculate_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID CurrentVa,
                                              ULONG Length, PULONG ScatterGatherListSize,
                                              PULONG pNumberOfMapRegisters)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct xfer x;
    NTSTATUS st;
    size_t bytes;

    if (pNumberOfMapRegisters)
        *pNumberOfMapRegisters = 0;
    if (!ScatterGatherListSize)
        return STATUS_INVALID_PARAMETER;
    *ScatterGatherListSize = 0;
    if (!w || !CurrentVa || !Length)
        return STATUS_INVALID_PARAMETER;
    st = xfer_walk(w, Mdl, CurrentVa, Length, NULL, &x);
    if (st)
        return st;
    if (x.regs > w->nregs || Length > w->max_transfer)
        return STATUS_INSUFFICIENT_RESOURCES;
    bytes = sg_build_bytes(xfer_elems(w, &x), x.npieces);
    if (bytes > UINT32_MAX)
        return STATUS_INSUFFICIENT_RESOURCES;
    *ScatterGatherListSize = (ULONG)bytes;
    if (pNumberOfMapRegisters)
        *pNumberOfMapRegisters = (ULONG)x.regs;
    return STATUS_SUCCESS;
}

static NTSTATUS build_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                          PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                          PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                          BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                                          ULONG ScatterGatherLength)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    const uintptr_t align = _Alignof(max_align_t);
    struct wdm_sg *sg;
    struct iovec *iov;
    unsigned elems;
    struct xfer x;
    NTSTATUS st;

    st = sg_check(w, Mdl, CurrentVa, Length, ExecutionRoutine, &x);
    if (st)
        return st;
    elems = xfer_elems(w, &x);
    if (!ScatterGatherBuffer || ScatterGatherLength < sg_build_bytes(elems, x.npieces))
        return STATUS_BUFFER_TOO_SMALL;
    /* Everything lives in the driver's buffer: the record, the list, the iovec scratch. */
    sg = (struct wdm_sg *)(((uintptr_t)ScatterGatherBuffer + align - 1) & ~(align - 1));
    iov = (struct iovec *)((char *)sg + sg_bytes(elems));
    xfer_walk(w, Mdl, CurrentVa, Length, iov, &x);
    *sg = (struct wdm_sg){
        .magic = SG_IDLE,
        .cached = false,
        .cap = elems,
        .w = w,
        .dev = DeviceObject,
        .fn = ExecutionRoutine,
        .ctx = Context,
    };
    return sg_start(w, sg, iov, x.npieces, WriteToDevice);
}

/* ---- adapter channels and map registers ------------------------------------------------------ */

/* Finds @n free registers in a row (first fit). Caller holds w->lock. */
static bool regs_find(const struct wdm_adapter *w, ULONG n, ULONG *first)
{
    ULONG run = 0;

    *first = 0;
    if (n == 0)
        return true;
    for (ULONG i = 0; i < w->nregs; i++) {
        run = w->reg_used[i] ? 0 : run + 1;
        if (run == n) {
            *first = i + 1 - n;
            return true;
        }
    }
    return false;
}

/* Ends one piece: the device's writes reach the buffer for a read. No lock held. */
static void piece_end(struct wdm_adapter *w, struct wdm_piece *pc)
{
    if (pc->sgl) {
        if (!pc->write)
            dmahal_sync_for_cpu(w->a, pc->sgl);
        dmahal_unmap(w->a, pc->sgl);
    } else if (!pc->write) {
        memcpy(pc->va, (char *)w->stage.va + pc->stage, pc->len);
    }
}

/* Ends every piece still mapped through @r, which the caller owns. No lock held. */
static void regs_flush(struct wdm_regs *r)
{
    for (unsigned i = 0; i < r->npieces; i++)
        piece_end(r->w, &r->pieces[i]);
    r->npieces = 0;
    r->used = 0;
}

/* Gives @r's registers back and caches the record. Caller holds w->lock. */
static void regs_free_locked(struct wdm_adapter *w, struct wdm_regs *r)
{
    memset(&w->reg_used[r->first], 0, r->nregs);
    r->magic = REGS_IDLE;
    r->next = w->regs_free;
    w->regs_free = r;
}

/*
 * Grants queued requests, in order, while the channel and the head's registers are free,
 * calling their routines without the lock. One thread at a time does it: others that free
 * resources meanwhile leave the granting to it. Caller holds w->lock.
 */
static void channel_run(struct wdm_adapter *w)
{
    struct wdm_regs *r;
    ULONG first;

    if (w->granting)
        return;
    w->granting = true;
    while ((r = w->q_head) && !w->chan && regs_find(w, r->nregs, &first)) {
        IO_ALLOCATION_ACTION act;
        unsigned gen = ++r->gen;

        w->q_head = r->next;
        if (!w->q_head)
            w->q_tail = NULL;
        r->next = NULL;
        if (r->nregs)
            memset(&w->reg_used[first], 1, r->nregs);
        r->first = first;
        r->used = 0;
        r->npieces = 0;
        r->magic = REGS_LIVE;
        w->chan = r;
        pthread_mutex_unlock(&w->lock);
        act = r->fn(r->dev, NULL, r, r->ctx);
        pthread_mutex_lock(&w->lock);
        /* The routine may have freed the channel itself, and the record been granted anew. */
        if (w->chan != r || r->gen != gen || act == KeepObject)
            continue;
        w->chan = NULL;
        if (act == DeallocateObjectKeepRegisters)
            continue;
        r->magic = REGS_CLOSING;
        pthread_mutex_unlock(&w->lock);
        regs_flush(r);
        pthread_mutex_lock(&w->lock);
        regs_free_locked(w, r);
    }
    w->granting = false;
}

/* The register pages, allocated once per adapter. Caller holds w->lock. */
static int stage_alloc(struct wdm_adapter *w)
{
    int rc;

    if (w->stage.va)
        return 0;
    w->reg_used = calloc(w->nregs, 1);
    if (!w->reg_used)
        return -ENOMEM;
    /* Uncached: the device sees the CPU's copies without a flush on any platform. */
    rc = dmahal_common_alloc(w->a, (size_t)w->nregs * w->page, 0, &w->stage);
    if (rc) {
        free(w->reg_used);
        w->reg_used = NULL;
    }
    return rc;
}

/* A cached record with room for @nregs pieces, or a new one. Caller holds w->lock. */
static struct wdm_regs *regs_get(struct wdm_adapter *w, ULONG nregs)
{
    unsigned slots = nregs ? nregs : 1;
    struct wdm_regs **pp, *r;

    for (pp = &w->regs_free; *pp; pp = &(*pp)->next) {
        if ((*pp)->slots >= slots) {
            r = *pp;
            *pp = r->next;
            return r;
        }
    }
    r = calloc(1, sizeof(*r) + slots * sizeof(r->pieces[0]));
    if (!r)
        return NULL;
    r->slots = slots;
    r->w = w;
    r->all = w->regs_all;
    w->regs_all = r;
    return r;
}

static NTSTATUS allocate_adapter_channel(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                         ULONG NumberOfMapRegisters,
                                         PDRIVER_CONTROL ExecutionRoutine, PVOID Context)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_regs *r;

    if (!w || !ExecutionRoutine)
        return STATUS_INVALID_PARAMETER;
    if (NumberOfMapRegisters > w->nregs)
        return STATUS_INSUFFICIENT_RESOURCES;
    pthread_mutex_lock(&w->lock);
    if (stage_alloc(w) || !(r = regs_get(w, NumberOfMapRegisters))) {
        pthread_mutex_unlock(&w->lock);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    r->magic = REGS_WAIT;
    r->dev = DeviceObject;
    r->fn = ExecutionRoutine;
    r->ctx = Context;
    r->nregs = NumberOfMapRegisters;
    r->next = NULL;
    if (w->q_tail)
        w->q_tail->next = r;
    else
        w->q_head = r;
    w->q_tail = r;
    channel_run(w);
    pthread_mutex_unlock(&w->lock);
    return STATUS_SUCCESS;
}

/* The granted record behind a MapRegisterBase of @w, or NULL. */
static struct wdm_regs *regs_live(struct wdm_adapter *w, PVOID MapRegisterBase)
{
    struct wdm_regs *r = MapRegisterBase;
    bool ok;

    if (!r)
        return NULL;
    pthread_mutex_lock(&w->lock);
    ok = r->magic == REGS_LIVE && r->w == w;
    pthread_mutex_unlock(&w->lock);
    return ok ? r : NULL;
}

/* The piece of @r that maps @va, or NULL. */
static struct wdm_piece *piece_find(struct wdm_regs *r, const char *va)
{
    for (unsigned i = 0; i < r->npieces; i++)
        if (va >= r->pieces[i].va && va < r->pieces[i].va + r->pieces[i].len)
            return &r->pieces[i];
    return NULL;
}

/* Maps [va, va + len) as a new piece, in place if dmahal can at once, else staged. */
static struct wdm_piece *piece_new(struct wdm_adapter *w, struct wdm_regs *r, char *va, size_t len,
                                   BOOLEAN write)
{
    size_t off = (uintptr_t)va & (w->page - 1);
    ULONG left = r->nregs - r->used;
    struct wdm_piece *pc;
    struct iovec iov;

    if (!left || r->npieces == r->slots)
        return NULL;
    if (len > (size_t)left * w->page - off)
        len = (size_t)left * w->page - off;
    pc = &r->pieces[r->npieces];
    iov = (struct iovec){va, len};
    /* Never waits: the registers are this transfer's guarantee, bounce pages are not. */
    if (dmahal_map(w->a, &iov, 1, write ? DMAHAL_TO_DEVICE : DMAHAL_FROM_DEVICE, DMAHAL_MAP_NOWAIT,
                   &pc->sgl)) {
        pc->sgl = NULL;
        pc->stage = (size_t)(r->first + r->used) * w->page + off;
        if (write)
            memcpy((char *)w->stage.va + pc->stage, va, len);
    }
    pc->va = va;
    pc->len = len;
    pc->write = write;
    r->used += (ULONG)span_pages(va, len, w->page);
    r->npieces++;
    return pc;
}

static PHYSICAL_ADDRESS map_transfer(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                     PVOID CurrentVa, PULONG Length, BOOLEAN WriteToDevice)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    PHYSICAL_ADDRESS la;
    struct wdm_regs *r;
    struct wdm_piece *pc;
    char *va = CurrentVa, *end;
    size_t len, off;

    la.QuadPart = 0;
    if (!Length)
        return la;
    if (!w || !Mdl || !va || !*Length || !inside_mdl(Mdl, va) ||
        !(r = regs_live(w, MapRegisterBase)))
        goto fail;
    end = (char *)MmGetMdlVirtualAddress(Mdl) + Mdl->ByteCount;
    len = (size_t)(end - va) < *Length ? (size_t)(end - va) : *Length;
    pc = piece_find(r, va);
    if (!pc)
        pc = piece_new(w, r, va, len, WriteToDevice);
    if (!pc)
        goto fail;
    off = (size_t)(va - pc->va);
    if (len > pc->len - off)
        len = pc->len - off;
    if (!pc->sgl) {
        la.QuadPart = (LONGLONG)(w->stage.la + pc->stage + off);
    } else {
        const struct dmahal_seg *seg = pc->sgl->seg;

        /* The element that holds @off; the piece goes on in the next ones. */
        while (off >= seg->len) {
            off -= seg->len;
            seg++;
        }
        la.QuadPart = (LONGLONG)(seg->la + off);
        if (len > seg->len - off)
            len = seg->len - off;
    }
    *Length = (ULONG)len;
    return la;

fail:
    *Length = 0;
    return la;
}

static BOOLEAN flush_adapter_buffers(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                     PVOID CurrentVa, ULONG Length, BOOLEAN WriteToDevice)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    const char *lo = CurrentVa, *hi = lo + Length;
    struct wdm_regs *r;

    (void)WriteToDevice; /* each piece is ended by the direction it was mapped with */
    if (!w || !Mdl || !inside_mdl(Mdl, CurrentVa) || !(r = regs_live(w, MapRegisterBase)))
        return FALSE;
    for (unsigned i = 0; i < r->npieces;) {
        struct wdm_piece *pc = &r->pieces[i];

        if (pc->va < hi && lo < pc->va + pc->len) {
            piece_end(w, pc);
            r->pieces[i] = r->pieces[--r->npieces];
        } else {
            i++;
        }
    }
    if (!r->npieces)
        r->used = 0;
    return TRUE;
}

static VOID free_map_registers(PDMA_ADAPTER DmaAdapter, PVOID MapRegisterBase,
                               ULONG NumberOfMapRegisters)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_regs *r = MapRegisterBase;

    if (!w || !r)
        return;
    pthread_mutex_lock(&w->lock);
    if (r->magic != REGS_LIVE || r->w != w || w->chan == r || r->nregs != NumberOfMapRegisters) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    r->magic = REGS_CLOSING;
    pthread_mutex_unlock(&w->lock);
    regs_flush(r);
    pthread_mutex_lock(&w->lock);
    regs_free_locked(w, r);
    channel_run(w);
    pthread_mutex_unlock(&w->lock);
}

static VOID free_adapter_channel(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_regs *r;

    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    r = w->chan;
    if (!r) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    w->chan = NULL;
    r->magic = REGS_CLOSING;
    pthread_mutex_unlock(&w->lock);
    regs_flush(r);
    pthread_mutex_lock(&w->lock);
    regs_free_locked(w, r);
    channel_run(w);
    pthread_mutex_unlock(&w->lock);
}

/* Members not listed are NULL: dmahal does not implement them yet (ReadDmaCounter is for
 * system DMA controllers, which dmahal does not have). */
static const DMA_OPERATIONS wdm_ops = {
    .Size = offsetof(DMA_OPERATIONS, BuildMdlFromScatterGatherList),
    .PutDmaAdapter = put_dma_adapter,
    .AllocateCommonBuffer = allocate_common_buffer,
    .FreeCommonBuffer = free_common_buffer,
    .AllocateAdapterChannel = allocate_adapter_channel,
    .FlushAdapterBuffers = flush_adapter_buffers,
    .FreeAdapterChannel = free_adapter_channel,
    .FreeMapRegisters = free_map_registers,
    .MapTransfer = map_transfer,
    .GetDmaAlignment = get_dma_alignment,
    .GetScatterGatherList = get_scatter_gather_list,
    .PutScatterGatherList = put_scatter_gather_list,
    .CalculateScatterGatherList = calculate_scatter_gather_list,
    .BuildScatterGatherList = build_scatter_gather_list,
};

/* ---- device objects -------------------------------------------------------------------------- */

/* Runs when the dmahal device closes: its adapters are (or are about to be) put by dmahal. */
static void wdm_device_release(void *ctx)
{
    struct wdm_device *dev = ctx;

    while (dev->adapters) {
        struct wdm_adapter *w = dev->adapters;

        dev->adapters = w->next;
        wdm_adapter_free(w);
    }
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

PDEVICE_OBJECT dmahal_wdm_device(struct dmahal_device *d)
{
    struct wdm_device *dev;

    if (!d)
        return NULL;
    dev = dmahal_device_context(d, &device_key);
    if (dev)
        return &dev->obj;
    pthread_mutex_lock(&device_create_lock);
    dev = dmahal_device_context(d, &device_key);
    if (dev)
        goto out;
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        goto out;
    dev->obj.Type = IO_TYPE_DEVICE;
    dev->obj.Size = sizeof(dev->obj);
    dev->obj.DmahalDevice = d;
    pthread_mutex_init(&dev->lock, NULL);
    if (dmahal_device_set_context(d, &device_key, dev, wdm_device_release)) {
        pthread_mutex_destroy(&dev->lock);
        free(dev);
        dev = NULL;
    }
out:
    pthread_mutex_unlock(&device_create_lock);
    return dev ? &dev->obj : NULL;
}

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
        .addr_bits = desc_addr_bits(dd),
        .max_segments = dd->ScatterGather ? nregs : 1,
        /* What nregs map registers span, so that dmahal counts as many. */
        .max_transfer = max_len ? (nregs - 1) * page : page,
        .coherent = false, /* the platform decides */
    };
    if (max_len && max_len < desc->max_transfer)
        desc->max_transfer = max_len;
    return nregs;
}

PDMA_ADAPTER IoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject,
                             PDEVICE_DESCRIPTION DeviceDescription, PULONG NumberOfMapRegisters)
{
    struct wdm_device *dev = (struct wdm_device *)PhysicalDeviceObject;
    const DEVICE_DESCRIPTION *dd = DeviceDescription;
    struct dmahal_desc desc, merged;
    struct wdm_adapter *w;
    size_t page;
    ULONG nregs;

    if (!NumberOfMapRegisters)
        return NULL;
    *NumberOfMapRegisters = 0;
    if (!dev || !dd || dev->obj.Type != IO_TYPE_DEVICE || !dev->obj.DmahalDevice ||
        dmahal_device_context(dev->obj.DmahalDevice, &device_key) != dev)
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
    w->hdr.Version = dd->Version <= DEVICE_DESCRIPTION_VERSION1 ? 1 : (USHORT)dd->Version;
    w->hdr.Size = sizeof(w->hdr);
    /* Windows' member is not const; the table is, and stays read-only. */
    w->hdr.DmaOperations = (PDMA_OPERATIONS)&wdm_ops;
    if (dmahal_adapter_desc(w->a, &merged))
        goto err_adapter;
    w->nregs = nregs;
    w->max_transfer = merged.max_transfer;
    w->page = page;
    w->max_elems = merged.max_segments ? merged.max_segments : 1;
    /* Elements shorter than a page come only from a max_segment or boundary below it. */
    w->elems_by_pages = (merged.max_segment == 0 || merged.max_segment >= page) &&
                        (merged.boundary == 0 || merged.boundary >= page);
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
