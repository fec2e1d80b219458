/* SPDX-License-Identifier: MIT */
/*
 * iova.h - private: an IOMMU domain's I/O virtual address space, shared by every platform
 * with an IOMMU.
 *
 * The space is a core range allocator under a lock, fronted by per-thread caches of
 * recently freed ranges for the common sizes (1, 2, 4, ... 32 granules), as Linux's iova
 * rcache fronts its tree: a streaming map/unmap pair takes and returns a range from the
 * calling thread's own magazine, with no lock at all. Full and empty magazines move
 * through a per-domain depot under the lock, and a failed allocation flushes the depot
 * and the caller's cache before it gives up.
 */
#ifndef DMAHAL_IOVA_H
#define DMAHAL_IOVA_H

#include <stddef.h>
#include <stdint.h>

struct dmahal__iova;

/* An empty space whose ranges are multiples of @granule (a power of two). -ENOMEM. */
int dmahal__iova_create(uint64_t granule, struct dmahal__iova **out);
/* Frees the space; ranges still allocated or cached by any thread are dropped with it. */
void dmahal__iova_destroy(struct dmahal__iova *d);
/* Adds [start, start + len) to the free space (granule multiples). As dmahal__range_add. */
int dmahal__iova_add(struct dmahal__iova *d, uint64_t start, uint64_t len);

/*
 * Takes out of the free space whatever of [start, start + len) is free in it, after
 * returning the depot's and the calling thread's cached ranges: for an IOMMU that learns of a
 * new reserved region once the space is in use (a platform whose domain grows a device). Parts
 * that are allocated stay so; other threads' cached ranges cannot be reached, so a platform
 * that must never hand out the region checks its mappings too (VFIO's kernel side does).
 * -ENOMEM.
 */
int dmahal__iova_reserve(struct dmahal__iova *d, uint64_t start, uint64_t len);

/* The general allocator (common buffers): as dmahal__range_alloc, under the lock. */
int dmahal__iova_alloc(struct dmahal__iova *d, uint64_t len, uint64_t align, uint64_t boundary,
                       uint64_t max_addr, uint64_t *out);
void dmahal__iova_free(struct dmahal__iova *d, uint64_t start, uint64_t len);

/*
 * The fast path (streaming maps): @len bytes, granule-aligned, at most @max_addr at the
 * end. Sizes up to 32 granules are rounded up to a power of two and cached per thread;
 * dmahal__iova_free_fast must get the same @len. -ENOMEM when nothing fits.
 */
int dmahal__iova_alloc_fast(struct dmahal__iova *d, uint64_t len, uint64_t max_addr, uint64_t *out);
void dmahal__iova_free_fast(struct dmahal__iova *d, uint64_t start, uint64_t len);

/* Free bytes in the range allocator (not counting ranges held in caches). */
uint64_t dmahal__iova_free_bytes(struct dmahal__iova *d);

#endif /* DMAHAL_IOVA_H */
