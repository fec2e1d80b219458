/* SPDX-License-Identifier: MIT */
/*
 * range.h - private: an allocator of address ranges, shared by every platform: the IOVA
 * space of an IOMMU domain, the frames of simulated RAM, the pages of an arena.
 *
 * It hands out the highest fit first (as a large server hands out high memory first), under
 * an address limit, at an alignment, without crossing a boundary. It does no locking: its
 * owner does.
 */
#ifndef DMAHAL_RANGE_H
#define DMAHAL_RANGE_H

#include <stddef.h>
#include <stdint.h>

struct dmahal__extent {
    uint64_t start, end; /* [start, end) */
};

struct dmahal__range {
    struct dmahal__extent *v; /* free extents, sorted, never adjacent or overlapping */
    size_t n, cap;
    uint64_t free_bytes;
};

/* An empty range set (nothing free). Cannot fail. */
void dmahal__range_init(struct dmahal__range *r);
void dmahal__range_fini(struct dmahal__range *r);

/*
 * Adds [start, start + len) to the free space, merging with neighbours. Also the way to
 * free what dmahal__range_alloc gave.
 * -EINVAL for len 0 or a range that wraps; -EEXIST if any part of it is free already
 * (a double free); -ENOMEM.
 */
int dmahal__range_add(struct dmahal__range *r, uint64_t start, uint64_t len);

/*
 * Takes @len bytes: the highest start address such that the range is free, start is a
 * multiple of @align (a power of two, >= 1), start + len - 1 <= @max_addr, and, when
 * @boundary is not 0 (a power of two), the range crosses no multiple of it.
 * -EINVAL for len 0 or bad align/boundary; -E2BIG if len > boundary; -ENOMEM if nothing fits
 * (and nothing changed); also -ENOMEM if splitting an extent needs memory that is not there.
 */
int dmahal__range_alloc(struct dmahal__range *r, uint64_t len, uint64_t align, uint64_t boundary,
                        uint64_t max_addr, uint64_t *out);

/*
 * Takes exactly [start, start + len), which must be free. -ENOENT if any part is not;
 * -EINVAL for len 0 or a wrap; -ENOMEM.
 */
int dmahal__range_take(struct dmahal__range *r, uint64_t start, uint64_t len);

/* Tells whether all of [start, start + len) is free. */
int dmahal__range_is_free(const struct dmahal__range *r, uint64_t start, uint64_t len);

#endif /* DMAHAL_RANGE_H */
