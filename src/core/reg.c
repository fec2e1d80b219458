/* SPDX-License-Identifier: MIT */
/*
 * reg.c - registered memory: host memory a driver owns (a pool, hugepages, a packet arena),
 * mapped into the device's reach once (the IOMMU domain, or pinned at its bus address), so
 * that a streaming map inside it is a translation and a reference count: no system call, no
 * page-table write.
 *
 * The translation is a two-level table by virtual address, as SPDK's memory map: the first
 * level by 1 GiB, the second by 2 MiB unit (with 4 KiB pages), each entry naming the one
 * registration that covers the whole unit. A unit that registrations cover in part points to
 * a third level by page instead. A lookup is two or three loads whatever the number of
 * registrations. The map path reads the tables without a lock; registering and unregistering
 * write them under the adapter's registration lock.
 *
 * Behind an IOMMU a registration is one run of IOVAs. Without one it is where its memory is:
 * one pin, or, where the platform gives the addresses piece by piece (noiommu: hugepages,
 * each contiguous but not with the next), an array of them; a map inside it then takes the
 * registered path when its bytes are contiguous for the device, and the ordinary one (a
 * bounce) when they straddle two pieces that are not.
 *
 * A registration's maps hold a count on it. Unregister refuses a registration with maps
 * (-EBUSY) by turning a zero count into DYING in one exchange, after which no map takes it.
 * A record that has been unregistered stays allocated (retired) until the adapter is put,
 * so that a map which read the table just before it changed never touches freed memory.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define L1_SHIFT 30u /* the first level covers 2^48 bytes of user address space */
#define VA_BITS  48u
#define FANOUT   512u
#define DYING    (1u << 31)

struct dmahal__reg {
    char *va; /* as registered */
    size_t len;
    char *pva; /* the page span */
    size_t plen;
    dmahal_addr_t bus;  /* the device's address of pva */
    dmahal_addr_t *seg; /* else: the address of each piece of 2^seg_shift bytes (reg_pin) */
    uintptr_t seg_base; /* pva rounded down to the piece */
    unsigned seg_shift;
    bool iommu;       /* mapped in the IOMMU domain; else pinned */
    atomic_uint live; /* maps inside it, | DYING once unregistered */
    struct dmahal__reg *next;
};

struct l3 {
    struct dmahal__reg *_Atomic page[FANOUT];
};

struct l2 {
    _Atomic uintptr_t unit[FANOUT]; /* a registration, or a struct l3 | 1 */
};

struct dmahal__regs {
    pthread_mutex_t lock;
    struct l2 *_Atomic *l1; /* 2^(VA_BITS - L1_SHIFT) entries */
    atomic_size_t n;        /* live registrations: 0 lets the map path skip the lookup */
    uint64_t bytes;
    struct dmahal__reg *list, *retired;
};

static unsigned unit_shift(const struct dmahal_adapter *a)
{
    return a->dev->p->page_shift + 9;
}

/* The registration holding the page of @va, or NULL. Lock-free. */
static struct dmahal__reg *lookup(const struct dmahal_adapter *a, const struct dmahal__regs *rg,
                                  uintptr_t va)
{
    unsigned us = unit_shift(a);
    struct l2 *l2;
    uintptr_t e;

    if (va >> VA_BITS)
        return NULL;
    l2 = atomic_load_explicit(&rg->l1[va >> L1_SHIFT], memory_order_acquire);
    if (!l2)
        return NULL;
    e = atomic_load_explicit(&l2->unit[(va >> us) & (FANOUT - 1)], memory_order_acquire);
    if (e & 1)
        return atomic_load_explicit(
            &((struct l3 *)(e & ~(uintptr_t)1))->page[(va >> a->dev->p->page_shift) & (FANOUT - 1)],
            memory_order_acquire);
    return (struct dmahal__reg *)e;
}

/* Writes @r (or NULL) for every page of [pva, pva + plen) into the tables. -ENOMEM, with
 * the tables as they were for what was not reached (the caller clears what it wrote). */
static int table_set(struct dmahal_adapter *a, struct dmahal__regs *rg, uintptr_t pva, size_t plen,
                     struct dmahal__reg *r)
{
    unsigned us = unit_shift(a), ps = a->dev->p->page_shift;
    uintptr_t end = pva + plen, unit = (uintptr_t)1 << us;

    for (uintptr_t at = pva; at < end;) {
        struct l2 *l2 = atomic_load_explicit(&rg->l1[at >> L1_SHIFT], memory_order_relaxed);
        uintptr_t ustart = at & ~(unit - 1), uend = ustart + unit;
        _Atomic uintptr_t *slot;
        uintptr_t e;

        if (!l2) {
            if (!r)
                return 0; /* nothing was written here */
            l2 = calloc(1, sizeof(*l2));
            if (!l2)
                return -ENOMEM;
            atomic_store_explicit(&rg->l1[at >> L1_SHIFT], l2, memory_order_release);
        }
        slot = &l2->unit[(at >> us) & (FANOUT - 1)];
        e = atomic_load_explicit(slot, memory_order_relaxed);
        if (!(e & 1) && at == ustart && end >= uend) {
            atomic_store_explicit(slot, (uintptr_t)r, memory_order_release);
            at = uend;
            continue;
        }
        if (!(e & 1)) {
            /* Part of a unit: its pages get a table of their own, kept once made. */
            struct l3 *l3 = calloc(1, sizeof(*l3));

            if (!l3)
                return -ENOMEM;
            for (unsigned i = 0; i < FANOUT; i++)
                atomic_init(&l3->page[i], (struct dmahal__reg *)e);
            e = (uintptr_t)l3 | 1;
            atomic_store_explicit(slot, e, memory_order_release);
        }
        for (; at < end && at < uend; at += (uintptr_t)1 << ps)
            atomic_store_explicit(
                &((struct l3 *)(e & ~(uintptr_t)1))->page[(at >> ps) & (FANOUT - 1)], r,
                memory_order_release);
    }
    return 0;
}

static struct dmahal__regs *regs_get(struct dmahal_adapter *a)
{
    struct dmahal__regs *rg = atomic_load_explicit(&a->regs, memory_order_acquire), *fresh;

    if (rg)
        return rg;
    fresh = calloc(1, sizeof(*fresh));
    if (!fresh)
        return NULL;
    fresh->l1 = calloc((size_t)1 << (VA_BITS - L1_SHIFT), sizeof(*fresh->l1));
    if (!fresh->l1) {
        free(fresh);
        return NULL;
    }
    pthread_mutex_init(&fresh->lock, NULL);
    /* Two first registrations racing: one table wins. */
    if (!atomic_compare_exchange_strong(&a->regs, &rg, fresh)) {
        pthread_mutex_destroy(&fresh->lock);
        free(fresh->l1);
        free(fresh);
        return rg;
    }
    return fresh;
}

/* Makes [r->pva, r->pva + r->plen) reachable: one IOMMU mapping, the platform's pin for
 * registrations, or one pin. */
static int reach(struct dmahal_adapter *a, struct dmahal__reg *r)
{
    const struct dmahal__platform_ops *ops = a->dev->p->ops;
    uint64_t align = a->dev->p->page_size, big = (uint64_t)2 << 20;
    int rc;

    if (a->dev->p->has_iommu) {
        if (!ops->iommu_map || !a->dev->iova)
            return -ENOTSUP;
        /* Memory aligned to 2 MiB gets an IOVA aligned alike, so that the IOMMU can map it
         * with its large pages (huge pages are physically contiguous). */
        if (r->plen >= big && !((uintptr_t)r->pva & (big - 1)) && big > align)
            align = big;
        rc = dmahal__iova_alloc(a->dev->iova, r->plen, align, 0, a->c.max_addr, &r->bus);
        if (rc)
            return -ENOSPC;
        rc =
            ops->iommu_map(a->dev, r->bus, r->pva, r->plen, DMAHAL__PERM_READ | DMAHAL__PERM_WRITE);
        if (rc) {
            dmahal__iova_free(a->dev->iova, r->bus, r->plen);
            return rc;
        }
        r->iommu = true;
        return 0;
    }
    rc = ops->reg_pin ? ops->reg_pin(a, r->pva, r->plen, &r->seg_shift, &r->seg) : -EAGAIN;
    if (rc == 0) {
        r->seg_base = DMAHAL__ALIGN_DOWN((uintptr_t)r->pva, (uintptr_t)1 << r->seg_shift);
        r->bus = r->seg[0] + ((uintptr_t)r->pva - r->seg_base);
        return 0;
    }
    if (rc != -EAGAIN)
        return rc;
    if (!ops->pin)
        return -ENOTSUP;
    return ops->pin(a, r->pva, r->plen, &r->bus);
}

static void unreach(struct dmahal_adapter *a, struct dmahal__reg *r)
{
    if (r->iommu) {
        a->dev->p->ops->iommu_unmap(a->dev, r->bus, r->plen);
        dmahal__iova_free(a->dev->iova, r->bus, r->plen);
    } else if (r->seg) {
        /* A map that read the record before it was retired finds it DYING, and never reads
         * the array. */
        a->dev->p->ops->reg_unpin(a, r->pva, r->plen, r->seg);
    } else {
        a->dev->p->ops->unpin(a, r->pva, r->plen, r->bus);
    }
}

/* The bus address of [va, va + len) inside @r, pinned piece by piece: -ENOENT when the bytes
 * straddle two pieces that are not contiguous for the device. */
static int seg_addr(const struct dmahal__reg *r, const void *va, size_t len, dmahal_addr_t *la)
{
    uintptr_t off = (uintptr_t)va - r->seg_base, last = off + (len ? len - 1 : 0);
    size_t i = off >> r->seg_shift, n = last >> r->seg_shift;

    for (; i < n; i++)
        if (r->seg[i + 1] != r->seg[i] + ((dmahal_addr_t)1 << r->seg_shift))
            return -ENOENT;
    *la = r->seg[off >> r->seg_shift] + (off & (((uintptr_t)1 << r->seg_shift) - 1));
    return 0;
}

int dmahal_register(struct dmahal_adapter *a, void *va, size_t len)
{
    size_t page;
    struct dmahal__regs *rg;
    struct dmahal__reg *r;
    uintptr_t pva, end;
    int rc;

    if (!a || !va || len == 0)
        return -EINVAL;
    if (len > DMAHAL__MAX_LEN)
        return -E2BIG;
    page = a->dev->p->page_size;
    pva = DMAHAL__ALIGN_DOWN((uintptr_t)va, page);
    end = DMAHAL__ALIGN_UP((uintptr_t)va + len, page);
    if (end < pva || end >> VA_BITS)
        return -EINVAL;
    rg = regs_get(a);
    if (!rg)
        return -ENOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = (struct dmahal__reg){.va = va, .len = len, .pva = (char *)pva, .plen = end - pva};
    pthread_mutex_lock(&rg->lock);
    for (uintptr_t at = pva; at < end; at += page) {
        if (lookup(a, rg, at)) {
            rc = -EEXIST;
            goto err_lock;
        }
    }
    rc = reach(a, r);
    if (rc)
        goto err_lock;
    rc = table_set(a, rg, pva, r->plen, r);
    if (rc) {
        table_set(a, rg, pva, r->plen, NULL);
        unreach(a, r);
        goto err_lock;
    }
    r->next = rg->list;
    rg->list = r;
    rg->bytes += r->plen;
    atomic_fetch_add(&rg->n, 1);
    pthread_mutex_unlock(&rg->lock);
    return 0;

err_lock:
    pthread_mutex_unlock(&rg->lock);
    free(r);
    return rc;
}

int dmahal_unregister(struct dmahal_adapter *a, void *va, size_t len)
{
    struct dmahal__regs *rg;
    struct dmahal__reg *r, **pp;
    unsigned zero = 0;
    int rc = 0;

    if (!a || !va || len == 0)
        return -EINVAL;
    rg = atomic_load_explicit(&a->regs, memory_order_acquire);
    if (!rg)
        return -ENOENT;
    pthread_mutex_lock(&rg->lock);
    r = lookup(a, rg, (uintptr_t)va);
    if (!r) {
        rc = -ENOENT;
    } else if (r->va != va || r->len != len) {
        rc = -EINVAL; /* a part of a registration, or more than one */
    } else if (!atomic_compare_exchange_strong(&r->live, &zero, DYING)) {
        rc = -EBUSY;
    }
    if (rc) {
        pthread_mutex_unlock(&rg->lock);
        return rc;
    }
    table_set(a, rg, (uintptr_t)r->pva, r->plen, NULL);
    for (pp = &rg->list; *pp != r; pp = &(*pp)->next)
        ;
    *pp = r->next;
    r->next = rg->retired;
    rg->retired = r;
    rg->bytes -= r->plen;
    atomic_fetch_sub(&rg->n, 1);
    unreach(a, r);
    pthread_mutex_unlock(&rg->lock);
    return 0;
}

int dmahal_register_info(struct dmahal_adapter *a, struct dmahal_reg_info *out)
{
    struct dmahal__regs *rg;

    if (out)
        *out = (struct dmahal_reg_info){.mappings_avail = -1};
    if (!a || !out)
        return -EINVAL;
    rg = atomic_load_explicit(&a->regs, memory_order_acquire);
    if (rg) {
        pthread_mutex_lock(&rg->lock);
        out->regions = atomic_load(&rg->n);
        out->bytes = rg->bytes;
        pthread_mutex_unlock(&rg->lock);
    }
    if (a->dev->p->ops->mappings_avail)
        out->mappings_avail = a->dev->p->ops->mappings_avail(a->dev->p);
    return 0;
}

int dmahal__reg_get(struct dmahal_adapter *a, const void *va, size_t len, struct dmahal__reg **out,
                    dmahal_addr_t *la)
{
    struct dmahal__regs *rg = atomic_load_explicit(&a->regs, memory_order_acquire);
    struct dmahal__reg *r;

    if (!rg || !atomic_load_explicit(&rg->n, memory_order_relaxed))
        return -ENOENT;
    r = lookup(a, rg, (uintptr_t)va);
    /* The whole piece inside the bytes registered: a map across two registrations, or past
     * one's end, takes the ordinary path. */
    if (!r || (const char *)va < r->va || len > r->len ||
        (size_t)((const char *)va - r->va) > r->len - len)
        return -ENOENT;
    if (atomic_fetch_add_explicit(&r->live, 1, memory_order_acquire) & DYING) {
        atomic_fetch_sub_explicit(&r->live, 1, memory_order_relaxed);
        return -ENOENT;
    }
    if (!r->seg) {
        *la = r->bus + (dmahal_addr_t)((const char *)va - r->pva);
    } else if (seg_addr(r, va, len, la)) {
        atomic_fetch_sub_explicit(&r->live, 1, memory_order_relaxed);
        return -ENOENT;
    }
    *out = r;
    return 0;
}

void dmahal__reg_put(struct dmahal__reg *r)
{
    atomic_fetch_sub_explicit(&r->live, 1, memory_order_release);
}

void dmahal__reg_fini(struct dmahal_adapter *a)
{
    struct dmahal__regs *rg = atomic_load(&a->regs);
    size_t n = (size_t)1 << (VA_BITS - L1_SHIFT);

    if (!rg)
        return;
    while (rg->list) {
        struct dmahal__reg *r = rg->list;

        rg->list = r->next;
        unreach(a, r);
        free(r);
    }
    while (rg->retired) {
        struct dmahal__reg *r = rg->retired;

        rg->retired = r->next;
        free(r);
    }
    for (size_t i = 0; i < n; i++) {
        struct l2 *l2 = atomic_load_explicit(&rg->l1[i], memory_order_relaxed);

        for (unsigned u = 0; l2 && u < FANOUT; u++) {
            uintptr_t e = atomic_load_explicit(&l2->unit[u], memory_order_relaxed);

            if (e & 1)
                free((void *)(e & ~(uintptr_t)1));
        }
        free(l2);
    }
    free(rg->l1);
    pthread_mutex_destroy(&rg->lock);
    free(rg);
    atomic_store(&a->regs, NULL);
}
