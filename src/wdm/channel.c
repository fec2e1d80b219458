/* SPDX-License-Identifier: MIT */
/*
 * channel.c - packet DMA through an adapter channel and map registers:
 * AllocateAdapterChannel, MapTransfer, FlushAdapterBuffers, FreeMapRegisters and
 * FreeAdapterChannel.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Tells whether @n more registers are free. Caller holds w->lock. */
static bool regs_fit(const struct wdm_adapter *w, ULONG n)
{
    return n <= w->nregs - w->regs_used;
}

/* Ends one piece of @r: the device's writes reach the buffer for a read. No lock held. */
static void piece_end(struct wdm_regs *r, struct wdm_piece *pc)
{
    struct wdm_adapter *w = r->w;

    if (pc->sgl) {
        if (!pc->write)
            dmahal_sync_for_cpu(w->a, pc->sgl);
        dmahal_unmap(w->a, pc->sgl);
    } else if (!pc->write) {
        memcpy(pc->va, (char *)r->stage.va + pc->stage, pc->len);
    }
}

/* Ends every piece still mapped through @r, which the caller owns. No lock held. */
static void regs_flush(struct wdm_regs *r)
{
    for (unsigned i = 0; i < r->npieces; i++)
        piece_end(r, &r->pieces[i]);
    r->npieces = 0;
    r->used = 0;
}

/* Gives @r's registers back and caches the record. Caller holds w->lock. */
static void regs_free_locked(struct wdm_adapter *w, struct wdm_regs *r)
{
    w->regs_used -= r->nregs;
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

    if (w->granting)
        return;
    w->granting = true;
    while ((r = w->q_head) && !w->chan && regs_fit(w, r->nregs)) {
        IO_ALLOCATION_ACTION act;
        unsigned gen = ++r->gen;

        w->q_head = r->next;
        if (!w->q_head)
            w->q_tail = NULL;
        r->next = NULL;
        w->regs_used += r->nregs;
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

/*
 * Gives @r pages for @nregs registers, to stage what dmahal cannot map at once: sized to the
 * request, not to the adapter (whose MaximumLength may ask for 2 GiB), and kept with the
 * record for the next request it serves. Caller holds w->lock.
 */
static int stage_alloc(struct wdm_adapter *w, struct wdm_regs *r, ULONG nregs)
{
    size_t bytes = (size_t)nregs * w->page;

    if (r->stage.len >= bytes)
        return 0;
    if (r->stage.va)
        dmahal_common_free(w->a, &r->stage);
    memset(&r->stage, 0, sizeof(r->stage));
    /* Uncached: the device sees the CPU's copies without a flush on any platform. */
    return dmahal_common_alloc(w->a, bytes, 0, &r->stage);
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

NTSTATUS dmahal__wdm_channel_request(struct wdm_adapter *w, PDEVICE_OBJECT dev, ULONG nregs,
                                     PDRIVER_CONTROL fn, PVOID ctx, PVOID xctx, bool now,
                                     PVOID *base)
{
    struct wdm_regs *r;

    if (base)
        *base = NULL;
    if (nregs > w->nregs)
        return STATUS_INSUFFICIENT_RESOURCES;
    pthread_mutex_lock(&w->lock);
    /* Now or never: nobody waits before it, and what it needs is free. */
    if (now && (w->q_head || w->granting || w->chan || !regs_fit(w, nregs)))
        goto err_unlock;
    r = regs_get(w, nregs);
    if (r && stage_alloc(w, r, nregs)) {
        r->next = w->regs_free;
        w->regs_free = r;
        r = NULL;
    }
    if (!r)
        goto err_unlock;
    r->dev = dev;
    r->fn = fn;
    r->ctx = ctx;
    r->xctx = xctx;
    r->nregs = nregs;
    r->next = NULL;
    if (!fn) {
        /* Granted at once, with no routine to return an action: the caller holds the
         * channel, as with KeepObject, until FreeAdapterObject. */
        r->gen++;
        w->regs_used += nregs;
        r->used = 0;
        r->npieces = 0;
        r->magic = REGS_LIVE;
        w->chan = r;
        *base = r;
        pthread_mutex_unlock(&w->lock);
        return STATUS_SUCCESS;
    }
    r->magic = REGS_WAIT;
    if (w->q_tail)
        w->q_tail->next = r;
    else
        w->q_head = r;
    w->q_tail = r;
    channel_run(w);
    pthread_mutex_unlock(&w->lock);
    return STATUS_SUCCESS;

err_unlock:
    pthread_mutex_unlock(&w->lock);
    return STATUS_INSUFFICIENT_RESOURCES;
}

NTSTATUS dmahal__wdm_allocate_adapter_channel(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                              ULONG NumberOfMapRegisters,
                                              PDRIVER_CONTROL ExecutionRoutine, PVOID Context)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    if (!w || !ExecutionRoutine)
        return STATUS_INVALID_PARAMETER;
    return dmahal__wdm_channel_request(w, DeviceObject, NumberOfMapRegisters, ExecutionRoutine,
                                       Context, NULL, false, NULL);
}

bool dmahal__wdm_channel_cancel(struct wdm_adapter *w, PVOID xctx)
{
    struct wdm_regs **pp, *prev = NULL;
    bool found = false;

    if (!xctx)
        return false;
    pthread_mutex_lock(&w->lock);
    for (pp = &w->q_head; *pp; prev = *pp, pp = &(*pp)->next) {
        struct wdm_regs *r = *pp;

        if (r->xctx != xctx)
            continue;
        *pp = r->next;
        if (w->q_tail == r)
            w->q_tail = prev;
        r->magic = REGS_IDLE;
        r->next = w->regs_free;
        w->regs_free = r;
        found = true;
        break;
    }
    pthread_mutex_unlock(&w->lock);
    return found;
}

void dmahal__wdm_channel_release(struct wdm_adapter *w, IO_ALLOCATION_ACTION act)
{
    if (act == DeallocateObject) {
        dmahal__wdm_free_adapter_channel(&w->hdr);
        return;
    }
    if (act != DeallocateObjectKeepRegisters)
        return;
    pthread_mutex_lock(&w->lock);
    if (w->chan) {
        w->chan = NULL;
        channel_run(w);
    }
    pthread_mutex_unlock(&w->lock);
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
        pc->stage = (size_t)r->used * w->page + off;
        if (write)
            memcpy((char *)r->stage.va + pc->stage, va, len);
    }
    pc->va = va;
    pc->len = len;
    pc->write = write;
    r->used += (ULONG)dmahal__wdm_span_pages(va, len, w->page);
    r->npieces++;
    return pc;
}

PHYSICAL_ADDRESS dmahal__wdm_map_transfer(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
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
    if (!w || !Mdl || !va || !*Length || !dmahal__wdm_inside_mdl(Mdl, va) ||
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
        la.QuadPart = (LONGLONG)(r->stage.la + pc->stage + off);
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

BOOLEAN dmahal__wdm_flush_adapter_buffers(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                          PVOID CurrentVa, ULONG Length, BOOLEAN WriteToDevice)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    const char *lo = CurrentVa, *hi = lo + Length;
    struct wdm_regs *r;

    (void)WriteToDevice; /* each piece is ended by the direction it was mapped with */
    if (!w || !Mdl || !dmahal__wdm_inside_mdl(Mdl, CurrentVa) ||
        !(r = regs_live(w, MapRegisterBase)))
        return FALSE;
    for (unsigned i = 0; i < r->npieces;) {
        struct wdm_piece *pc = &r->pieces[i];

        if (pc->va < hi && lo < pc->va + pc->len) {
            piece_end(r, pc);
            r->pieces[i] = r->pieces[--r->npieces];
        } else {
            i++;
        }
    }
    if (!r->npieces)
        r->used = 0;
    return TRUE;
}

VOID dmahal__wdm_free_map_registers(PDMA_ADAPTER DmaAdapter, PVOID MapRegisterBase,
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

VOID dmahal__wdm_free_adapter_channel(PDMA_ADAPTER DmaAdapter)
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
