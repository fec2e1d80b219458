/* SPDX-License-Identifier: MIT */
/*
 * mdl.c - MDLs (IoAllocateMdl, IoFreeMdl, MmBuildMdlForNonPagedPool) and the walk over an
 * MDL chain that measures a transfer for the packet-DMA routines.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <stdint.h>
#include <stdlib.h>

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

uint64_t dmahal__wdm_span_pages(const void *va, size_t len, size_t page)
{
    uintptr_t v = (uintptr_t)va;

    return (uint64_t)((v + len + page - 1) / page - v / page);
}

bool dmahal__wdm_inside_mdl(PMDL mdl, const void *va)
{
    const char *start = MmGetMdlVirtualAddress(mdl);

    return (const char *)va >= start && (const char *)va < start + mdl->ByteCount;
}

NTSTATUS dmahal__wdm_xfer_walk(const struct wdm_adapter *w, PMDL mdl, void *va, ULONG len,
                               struct iovec *iov, struct xfer *x)
{
    size_t left = len;

    *x = (struct xfer){0, 0};
    if (!mdl) {
        if (iov)
            iov[0] = (struct iovec){va, len};
        *x = (struct xfer){1, dmahal__wdm_span_pages(va, len, w->page)};
        return STATUS_SUCCESS;
    }
    if (!dmahal__wdm_inside_mdl(mdl, va))
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
        x->regs += dmahal__wdm_span_pages(start, take, w->page);
        left -= take;
    }
    return STATUS_SUCCESS;
}

unsigned dmahal__wdm_xfer_elems(const struct wdm_adapter *w, const struct xfer *x)
{
    if (w->elems_by_pages && x->regs < w->max_elems)
        return (unsigned)x->regs;
    return w->max_elems;
}

bool dmahal__wdm_mdl_at(PMDL mdl, ULONGLONG offset, PMDL *at, char **va)
{
    *at = NULL;
    *va = NULL;
    for (PMDL m = mdl; m; m = m->Next) {
        if (offset < m->ByteCount) {
            *at = m;
            *va = (char *)MmGetMdlVirtualAddress(m) + offset;
            return true;
        }
        offset -= m->ByteCount;
    }
    return false;
}
