/* SPDX-License-Identifier: MIT */
/*
 * common.c - AllocateCommonBuffer and FreeCommonBuffer, and the map from a buffer's virtual
 * address to the buffer that FreeCommonBuffer checks what the driver passes against.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
 * Takes the entry that matches @wb (va, la, the driver's length, CacheEnabled) out of the
 * map, into @taken. Returns 0; -ENOENT when no entry has that va; -EINVAL when one has but
 * its la or length differs; -EPERM when only its CacheEnabled differs (@taken then shows the
 * entry). A mismatched entry stays. Caller holds w->lock.
 */
static int bufs_take(struct wdm_adapter *w, const struct wdm_buf *wb, struct wdm_buf *taken)
{
    size_t i = bufs_lower_bound(w, wb->b.va);

    if (i == w->nbufs || w->bufs[i].b.va != wb->b.va)
        return -ENOENT;
    if (w->bufs[i].b.la != wb->b.la || w->bufs[i].length != wb->length)
        return -EINVAL;
    *taken = w->bufs[i];
    if (w->bufs[i].cached != wb->cached)
        return -EPERM;
    w->nbufs--;
    memmove(&w->bufs[i], &w->bufs[i + 1], (w->nbufs - i) * sizeof(*w->bufs));
    return 0;
}

int dmahal__wdm_common_alloc(struct wdm_adapter *w, size_t len, bool cached, struct dmahal_buf *out)
{
    /* Whole pages: Windows' common buffers start a page, and drivers count on it. */
    size_t bytes = (len + w->page - 1) & ~(w->page - 1);
    struct wdm_buf wb = {.length = len, .cached = cached};
    int rc;

    memset(out, 0, sizeof(*out));
    if (len == 0 || bytes < len)
        return -EINVAL;
    /*
     * Never DMAHAL_CACHED: a driver of the Windows names has no call to sync a common buffer
     * (before FlushDmaBuffer of version 3, which is for MDLs), so Windows makes a cached one
     * coherent for a device that does not snoop; where the device snoops, both are the same.
     * dmahal and the map change together, so that no free sees one without the other.
     */
    pthread_mutex_lock(&w->lock);
    rc = dmahal_common_alloc(w->a, bytes, 0, &wb.b);
    if (rc == 0) {
        rc = bufs_insert(w, &wb);
        if (rc)
            dmahal_common_free(w->a, &wb.b);
    }
    pthread_mutex_unlock(&w->lock);
    if (rc == 0)
        *out = (struct dmahal_buf){wb.b.va, wb.b.la, len};
    return rc;
}

int dmahal__wdm_common_free(struct wdm_adapter *w, void *va, dmahal_addr_t la, size_t len,
                            bool cached)
{
    struct wdm_buf wb = {.b = {.va = va, .la = la, .len = len}, .length = len, .cached = cached};
    struct wdm_buf taken;
    int rc;

    pthread_mutex_lock(&w->lock);
    rc = bufs_take(w, &wb, &taken);
    /*
     * A buffer not ours as described goes to dmahal all the same: it refuses to free what
     * does not match a live buffer exactly, so nothing is freed, and its verifier reports
     * the bad free with both sides. A CacheEnabled mismatch alone would match, so it is not
     * handed on: the verifier hears of it as what it is.
     */
    if (rc == 0)
        dmahal_common_free(w->a, &taken.b);
    else if (rc != -EPERM)
        dmahal_common_free(w->a, &wb.b);
    else
        dmahal_verify_free_mismatch(w->a, &taken.b,
                                    cached ? "CacheEnabled TRUE, allocated FALSE"
                                           : "CacheEnabled FALSE, allocated TRUE");
    pthread_mutex_unlock(&w->lock);
    return rc;
}

PVOID dmahal__wdm_allocate_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                         PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct dmahal_buf b;

    if (!LogicalAddress)
        return NULL;
    LogicalAddress->QuadPart = 0;
    if (!w || dmahal__wdm_common_alloc(w, Length, CacheEnabled != FALSE, &b))
        return NULL;
    LogicalAddress->QuadPart = (LONGLONG)b.la;
    return b.va;
}

VOID dmahal__wdm_free_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                    PHYSICAL_ADDRESS LogicalAddress, PVOID VirtualAddress,
                                    BOOLEAN CacheEnabled)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    if (w)
        dmahal__wdm_common_free(w, VirtualAddress, (dmahal_addr_t)LogicalAddress.QuadPart, Length,
                                CacheEnabled != FALSE);
}
