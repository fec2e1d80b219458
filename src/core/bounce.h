/* SPDX-License-Identifier: MIT */
/*
 * bounce.h - private: bounce pages (the map registers of a machine without an IOMMU, or of
 * a layout the device cannot take), pooled per platform and constraint class.
 *
 * As FreeBSD's bounce zones: adapters whose devices reach the same memory (24-bit, 32-bit,
 * ... and "anything" behind an IOMMU) share one pool, which grows by an adapter's map
 * registers when the adapter first needs to bounce (by one piece that holds its largest run,
 * aligned, when no piece does yet) and never shrinks until the platform closes. A transfer reserves
 * one contiguous run of pages, all or nothing; when the run is not there the caller fails, sleeps,
 * or queues a callback, and runs freed later go to the waiters strictly in arrival order.
 */
#ifndef DMAHAL_BOUNCE_H
#define DMAHAL_BOUNCE_H

#include "core/internal.h"

struct dmahal__pool;

/* A reserved run: CPU address, bus address (physical without an IOMMU), pages. */
struct dmahal__bounce_run {
    char *va;
    dmahal_addr_t la;
    size_t pages;
};

/* A request that waits for a run. */
struct dmahal__bounce_waiter {
    struct dmahal__bounce_waiter *next;
    struct dmahal_adapter *a;
    size_t pages;
    uint64_t align;
    bool granted;
    struct dmahal__bounce_run run; /* when granted */
    /* Runs outside the pool's lock once granted; NULL: a thread sleeps on the pool. */
    void (*grant)(struct dmahal__bounce_waiter *w);
};

/* The most pages one adapter adds to its pool: a huge max_transfer does not pin memory. */
#define DMAHAL__BOUNCE_MAX_JOIN 4096u

/* Joins @a to the pool of its class (creating it), growing the pool by
 * min(map registers, DMAHAL__BOUNCE_MAX_JOIN) pages; *joined receives what to give back
 * with dmahal__bounce_leave. -ENOTSUP if the platform has no bounce memory; -ENOMEM. */
int dmahal__bounce_join(struct dmahal_adapter *a, struct dmahal__pool **out, unsigned *joined);
void dmahal__bounce_leave(struct dmahal__pool *pool, unsigned joined);

/*
 * Reserves @pages contiguous pages aligned to @align (>= the page).
 *  - @w NULL and @wait false: 0, or -ENOSPC when they are not free;
 *  - @w NULL and @wait true: sleeps until granted, behind earlier waiters;
 *  - @w given: 0 if granted now, else queues @w and returns -EINPROGRESS: w->grant runs
 *    later from dmahal__bounce_release.
 * -E2BIG when no piece of the pool could ever hold the run (aligned), at once: a waiter
 * always waits for pages that some unmap gives back.
 */
int dmahal__bounce_reserve(struct dmahal__pool *pool, size_t pages, uint64_t align, bool wait,
                           struct dmahal__bounce_waiter *w, struct dmahal__bounce_run *run);
/* Returns a run and grants waiters in order; their grant callbacks run before it returns. */
void dmahal__bounce_release(struct dmahal__pool *pool, const struct dmahal__bounce_run *run);
/* Unlinks the queued waiters of @a and returns them (in order, through ->next). */
struct dmahal__bounce_waiter *dmahal__bounce_cancel(struct dmahal__pool *pool,
                                                    struct dmahal_adapter *a);
/* Pages in the pool and in use. */
void dmahal__bounce_stats(struct dmahal__pool *pool, size_t *total, size_t *used, unsigned *bits);

#endif /* DMAHAL_BOUNCE_H */
