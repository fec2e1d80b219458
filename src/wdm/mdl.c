/* SPDX-License-Identifier: MIT */
/*
 * mdl.c - MDLs (IoAllocateMdl, IoFreeMdl, MmBuildMdlForNonPagedPool) and the walk over an
 * MDL chain that measures a transfer for the packet-DMA routines.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- pages for MDLs: MmAllocatePagesForMdl(Ex) and what goes with it --------------------- */

/* One MDL of MmAllocatePagesForMdl(Ex), from its allocation to ExFreePool. */
struct pages {
    struct pages *next;
    PMDL mdl;
    struct dmahal_platform *p; /* the sim's memory came from it; NULL: from the C library */
    void *va;                  /* NULL once MmFreePagesFromMdl freed it */
};

static pthread_mutex_t pages_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pages *pages_all;

/* The record of @mdl, or NULL. Caller holds pages_lock. */
static struct pages **pages_find(PMDL mdl)
{
    struct pages **pp;

    for (pp = &pages_all; *pp; pp = &(*pp)->next)
        if ((*pp)->mdl == mdl)
            return pp;
    return NULL;
}

static void pages_free_memory(struct pages *pg)
{
    if (!pg->va)
        return;
    if (pg->p)
        dmahal_sim_contig_free(pg->p, pg->va);
    else
        free(pg->va);
    pg->va = NULL;
}

void dmahal__wdm_pages_release(struct dmahal_platform *p)
{
    pthread_mutex_lock(&pages_lock);
    for (struct pages *pg = pages_all; pg; pg = pg->next) {
        if (pg->p == p) {
            pages_free_memory(pg);
            pg->mdl->ByteCount = 0;
        }
    }
    pthread_mutex_unlock(&pages_lock);
}

/* Memory for @bytes and its page frame numbers: the sim's frames, inside [lo, hi], or the C
 * library's memory (frames 0) where there is no simulated machine. */
static int pages_memory(struct pages *pg, size_t bytes, uint64_t lo, uint64_t hi, PPFN_NUMBER pfn)
{
    struct dmahal_platform *p = dmahal__wdm_system_platform();
    size_t n = bytes / PAGE_SIZE;

    if (p && dmahal_sim_contig_alloc(p, bytes, &pg->va) == 0) {
        pg->p = p;
        for (size_t i = 0; i < n; i++) {
            uint64_t pa;

            if (dmahal_sim_virt_to_phys(p, (char *)pg->va + i * PAGE_SIZE, &pa) || pa < lo ||
                pa + PAGE_SIZE - 1 > hi) {
                pages_free_memory(pg);
                return -ENOMEM;
            }
            pfn[i] = (PFN_NUMBER)(pa >> PAGE_SHIFT);
        }
        return 0;
    }
    if (p && strcmp(dmahal_platform_name(p), "sim") == 0)
        return -ENOMEM; /* the simulated machine is out of memory */
    if (posix_memalign(&pg->va, PAGE_SIZE, bytes)) {
        pg->va = NULL;
        return -ENOMEM;
    }
    memset(pfn, 0, n * sizeof(*pfn));
    return 0;
}

PMDL MmAllocatePagesForMdlEx(PHYSICAL_ADDRESS LowAddress, PHYSICAL_ADDRESS HighAddress,
                             PHYSICAL_ADDRESS SkipBytes, SIZE_T TotalBytes,
                             MEMORY_CACHING_TYPE CacheType, ULONG Flags)
{
    size_t bytes = ROUND_TO_PAGES(TotalBytes);
    size_t n = bytes / PAGE_SIZE;
    struct pages *pg;
    PMDL mdl;

    (void)SkipBytes;
    (void)CacheType;
    (void)Flags; /* every allocation is zeroed, whole, and waits for nothing */
    /* An MDL's Size (a CSHORT) counts its frame numbers: 4,089 pages at most. */
    if (!TotalBytes || bytes < TotalBytes || sizeof(*mdl) + n * sizeof(PFN_NUMBER) > INT16_MAX)
        return NULL;
    pg = calloc(1, sizeof(*pg));
    mdl = calloc(1, sizeof(*mdl) + n * sizeof(PFN_NUMBER));
    if (!pg || !mdl)
        goto err;
    if (pages_memory(pg, bytes, (uint64_t)LowAddress.QuadPart, (uint64_t)HighAddress.QuadPart,
                     (PPFN_NUMBER)(mdl + 1)))
        goto err;
    memset(pg->va, 0, bytes);
    mdl->Size = (CSHORT)(sizeof(*mdl) + n * sizeof(PFN_NUMBER));
    mdl->MdlFlags = MDL_PAGES_LOCKED;
    mdl->StartVa = pg->va;
    mdl->ByteOffset = 0;
    mdl->ByteCount = (ULONG)bytes;
    pg->mdl = mdl;
    pthread_mutex_lock(&pages_lock);
    pg->next = pages_all;
    pages_all = pg;
    pthread_mutex_unlock(&pages_lock);
    return mdl;

err:
    free(pg);
    free(mdl);
    return NULL;
}

PMDL MmAllocatePagesForMdl(PHYSICAL_ADDRESS LowAddress, PHYSICAL_ADDRESS HighAddress,
                           PHYSICAL_ADDRESS SkipBytes, SIZE_T TotalBytes)
{
    return MmAllocatePagesForMdlEx(LowAddress, HighAddress, SkipBytes, TotalBytes, MmCached, 0);
}

VOID MmFreePagesFromMdl(PMDL MemoryDescriptorList)
{
    struct pages **pp;

    pthread_mutex_lock(&pages_lock);
    pp = MemoryDescriptorList ? pages_find(MemoryDescriptorList) : NULL;
    if (pp) {
        pages_free_memory(*pp);
        MemoryDescriptorList->ByteCount = 0;
        MemoryDescriptorList->MdlFlags &= (CSHORT)~MDL_MAPPED_TO_SYSTEM_VA;
    }
    pthread_mutex_unlock(&pages_lock);
}

VOID ExFreePoolWithTag(PVOID P, ULONG Tag)
{
    struct pages **pp, *pg = NULL;

    (void)Tag;
    pthread_mutex_lock(&pages_lock);
    pp = P ? pages_find(P) : NULL;
    if (pp) {
        pg = *pp;
        *pp = pg->next;
    }
    pthread_mutex_unlock(&pages_lock);
    if (!pg)
        return;
    pages_free_memory(pg);
    free(pg->mdl);
    free(pg);
}

VOID ExFreePool(PVOID P)
{
    ExFreePoolWithTag(P, 0);
}

PPFN_NUMBER MmGetMdlPfnArray(PMDL Mdl)
{
    if (!Mdl || (size_t)Mdl->Size <= sizeof(*Mdl))
        return NULL;
    return (PPFN_NUMBER)(Mdl + 1);
}

PVOID MmMapLockedPagesSpecifyCache(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode,
                                   MEMORY_CACHING_TYPE CacheType, PVOID RequestedAddress,
                                   ULONG BugCheckOnFailure, ULONG Priority)
{
    PMDL mdl = MemoryDescriptorList;

    (void)AccessMode;
    (void)CacheType;
    (void)BugCheckOnFailure;
    (void)Priority;
    if (!mdl || RequestedAddress || !mdl->ByteCount)
        return NULL;
    /* The process reaches the pages already, at the MDL's own address. */
    mdl->MappedSystemVa = MmGetMdlVirtualAddress(mdl);
    mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    return mdl->MappedSystemVa;
}

VOID MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList)
{
    PMDL mdl = MemoryDescriptorList;

    if (!mdl || !(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA) || mdl->MappedSystemVa != BaseAddress)
        return;
    mdl->MdlFlags &= (CSHORT)~MDL_MAPPED_TO_SYSTEM_VA;
    mdl->MappedSystemVa = NULL;
}
