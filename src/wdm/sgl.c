/* SPDX-License-Identifier: MIT */
/*
 * sgl.c - packet DMA through scatter/gather lists: GetScatterGatherList,
 * PutScatterGatherList, CalculateScatterGatherList and BuildScatterGatherList, over
 * dmahal_map_async().
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static PSCATTER_GATHER_LIST sg_list(struct wdm_sg *sg)
{
    return (PSCATTER_GATHER_LIST)(sg + 1);
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
    sg->live_prev = NULL;
    sg->live_next = sg->w->sg_live;
    if (sg->w->sg_live)
        sg->w->sg_live->live_prev = sg;
    sg->w->sg_live = sg;
    pthread_mutex_unlock(&sg->w->lock);
    fn(sg->dev, NULL, list, sg->ctx);
}

/* Starts the mapping of a filled-in record. On failure the record is released. */
static NTSTATUS sg_start(struct wdm_adapter *w, struct wdm_sg *sg, const struct iovec *iov,
                         unsigned npieces, BOOLEAN WriteToDevice, unsigned flags)
{
    enum dmahal_dir dir = WriteToDevice ? DMAHAL_TO_DEVICE : DMAHAL_FROM_DEVICE;
    int rc;

    sg->magic = SG_WAIT;
    sg->held = (flags & WDM_SG_HELD) != 0;
    sg->write = WriteToDevice != FALSE;
    rc = dmahal_map_async(w->a, iov, npieces, dir, flags & ~WDM_SG_HELD, sg_mapped, sg);
    /* Mapped (the routine has run, and may have put the list already) or queued: the
     * record is not ours to touch any more. */
    if (rc == 0 || rc == -EINPROGRESS)
        return STATUS_SUCCESS;
    sg_release(sg);
    return dmahal__wdm_status(rc);
}

/* Checks what Get and Build share, and measures the transfer. */
static NTSTATUS sg_check(struct wdm_adapter *w, PMDL Mdl, PVOID CurrentVa, ULONG Length,
                         PDRIVER_LIST_CONTROL ExecutionRoutine, struct xfer *x)
{
    NTSTATUS st;

    *x = (struct xfer){0, 0};
    if (!w || !Mdl || !CurrentVa || !Length || !ExecutionRoutine)
        return STATUS_INVALID_PARAMETER;
    st = dmahal__wdm_xfer_walk(w, Mdl, CurrentVa, Length, NULL, x);
    if (st)
        return st;
    /* As on Windows, only the map registers limit a transfer, not MaximumLength. */
    if (x->regs > w->nregs)
        return STATUS_INSUFFICIENT_RESOURCES;
    return STATUS_SUCCESS;
}

NTSTATUS dmahal__wdm_sg_get(struct wdm_adapter *w, PDEVICE_OBJECT DeviceObject, PMDL Mdl,
                            PVOID CurrentVa, ULONG Length, PDRIVER_LIST_CONTROL ExecutionRoutine,
                            PVOID Context, BOOLEAN WriteToDevice, unsigned flags)
{
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
    dmahal__wdm_xfer_walk(w, Mdl, CurrentVa, Length, iov, &x);
    sg = sg_get(w, dmahal__wdm_xfer_elems(w, &x));
    if (!sg) {
        st = STATUS_INSUFFICIENT_RESOURCES;
        goto out;
    }
    sg->dev = DeviceObject;
    sg->fn = ExecutionRoutine;
    sg->ctx = Context;
    st = sg_start(w, sg, iov, x.npieces, WriteToDevice, flags);
out:
    if (iov != stack_iov)
        free(iov);
    return st;
}

NTSTATUS dmahal__wdm_get_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                             PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                             PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                             BOOLEAN WriteToDevice)
{
    return dmahal__wdm_sg_get(wdm_adapter_of(DmaAdapter), DeviceObject, Mdl, CurrentVa, Length,
                              ExecutionRoutine, Context, WriteToDevice, 0);
}

VOID dmahal__wdm_put_scatter_gather_list(PDMA_ADAPTER DmaAdapter,
                                         PSCATTER_GATHER_LIST ScatterGather, BOOLEAN WriteToDevice)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct dmahal_sgl *dsgl;
    struct wdm_sg *sg;

    if (!w || !ScatterGather)
        return;
    pthread_mutex_lock(&w->lock);
    /* Looked up, not read through: a list this adapter did not hand out (another's, one the
     * driver built, one put already whose buffer it freed) has no record in front of it. */
    for (sg = w->sg_live; sg && sg_list(sg) != ScatterGather; sg = sg->live_next)
        ;
    if (!sg) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    /* Taken now, so that a second put of the same list, even a racing one, finds nothing. */
    if (sg->live_prev)
        sg->live_prev->live_next = sg->live_next;
    else
        w->sg_live = sg->live_next;
    if (sg->live_next)
        sg->live_next->live_prev = sg->live_prev;
    sg->magic = SG_WAIT;
    dsgl = sg->dsgl;
    pthread_mutex_unlock(&w->lock);
    if (!WriteToDevice)
        dmahal_sync_for_cpu(w->a, dsgl);
    dmahal_unmap(w->a, dsgl);
    sg_release(sg);
}

NTSTATUS dmahal__wdm_calculate_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                   PVOID CurrentVa, ULONG Length,
                                                   PULONG ScatterGatherListSize,
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
    /* Without an MDL, CurrentVa is only an address (0 included): its page offset counts. */
    if (!w || (Mdl && !CurrentVa) || !Length)
        return STATUS_INVALID_PARAMETER;
    st = dmahal__wdm_xfer_walk(w, Mdl, CurrentVa, Length, NULL, &x);
    if (st)
        return st;
    if (x.regs > w->nregs)
        return STATUS_INSUFFICIENT_RESOURCES;
    bytes = sg_build_bytes(dmahal__wdm_xfer_elems(w, &x), x.npieces);
    if (bytes > UINT32_MAX)
        return STATUS_INSUFFICIENT_RESOURCES;
    *ScatterGatherListSize = (ULONG)bytes;
    if (pNumberOfMapRegisters)
        *pNumberOfMapRegisters = (ULONG)x.regs;
    return STATUS_SUCCESS;
}

NTSTATUS dmahal__wdm_sg_build(struct wdm_adapter *w, PDEVICE_OBJECT DeviceObject, PMDL Mdl,
                              PVOID CurrentVa, ULONG Length, PDRIVER_LIST_CONTROL ExecutionRoutine,
                              PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                              ULONG ScatterGatherLength, unsigned flags)
{
    const uintptr_t align = _Alignof(max_align_t);
    struct wdm_sg *sg;
    struct iovec *iov;
    unsigned elems;
    struct xfer x;
    NTSTATUS st;

    st = sg_check(w, Mdl, CurrentVa, Length, ExecutionRoutine, &x);
    if (st)
        return st;
    elems = dmahal__wdm_xfer_elems(w, &x);
    if (!ScatterGatherBuffer || ScatterGatherLength < sg_build_bytes(elems, x.npieces))
        return STATUS_BUFFER_TOO_SMALL;
    /* Everything lives in the driver's buffer: the record, the list, the iovec scratch. */
    sg = (struct wdm_sg *)(((uintptr_t)ScatterGatherBuffer + align - 1) & ~(align - 1));
    iov = (struct iovec *)((char *)sg + sg_bytes(elems));
    dmahal__wdm_xfer_walk(w, Mdl, CurrentVa, Length, iov, &x);
    *sg = (struct wdm_sg){
        .magic = SG_IDLE,
        .cached = false,
        .cap = elems,
        .w = w,
        .dev = DeviceObject,
        .fn = ExecutionRoutine,
        .ctx = Context,
    };
    return sg_start(w, sg, iov, x.npieces, WriteToDevice, flags);
}

NTSTATUS dmahal__wdm_build_scatter_gather_list(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                               PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                               PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                               BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                                               ULONG ScatterGatherLength)
{
    return dmahal__wdm_sg_build(wdm_adapter_of(DmaAdapter), DeviceObject, Mdl, CurrentVa, Length,
                                ExecutionRoutine, Context, WriteToDevice, ScatterGatherBuffer,
                                ScatterGatherLength, 0);
}

size_t dmahal__wdm_sg_build_bytes(unsigned elems, unsigned npieces)
{
    return sg_build_bytes(elems, npieces);
}

void dmahal__wdm_sg_put_held(struct wdm_adapter *w)
{
    for (;;) {
        struct wdm_sg *sg;
        bool write;

        pthread_mutex_lock(&w->lock);
        for (sg = w->sg_live; sg && !sg->held; sg = sg->live_next)
            ;
        write = sg && sg->write;
        pthread_mutex_unlock(&w->lock);
        if (!sg)
            return;
        /* Looked up again by the put, which takes it off the live lists. */
        dmahal__wdm_put_scatter_gather_list(&w->hdr, sg_list(sg), write);
    }
}
