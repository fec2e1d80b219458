/* SPDX-License-Identifier: MIT */
/*
 * common.c - the common-buffer allocator.
 *
 * DMA memory comes from the platform in arenas (2 MiB when it can, smaller when the device's
 * reachable memory is short), each contiguous for both the CPU and the device, so one
 * platform mapping serves many buffers. Inside an arena:
 *  - buffers of more than half a page take whole pages, found by the core range allocator
 *    in logical-address space (so alignment and boundary hold where the device looks);
 *  - smaller buffers are packed into one-page slabs of power-of-two objects (16 B .. half a
 *    page): an object aligned to its size never crosses a page nor any boundary at least
 *    as large, and many 64-byte descriptors cost one page, not one each.
 * A buffer larger than an arena gets an arena of its own.
 *
 * Isolation: where the platform can keep memory from the device (an IOMMU), a shared arena
 * starts out of the device's reach and each page run is made reachable as a buffer takes it
 * and unreachable again when it is freed (a slab's page when its last object is freed), so
 * that the device never reaches memory the driver gave back. That costs an IOMMU mapping per
 * page-granular buffer or slab page. DMAHAL_DESC_LAZY_UNMAP trades it away: arenas are mapped
 * whole (one mapping per 2 MiB, large IOMMU pages where the platform has them) and leave the
 * device's reach only when they are released, so a freed buffer stays reachable, and its pages
 * are reachable under the next buffer of the same adapter that takes them, until every buffer
 * of its arena is freed. A buffer with an arena of its own leaves the device's reach when it
 * is freed in both modes.
 *
 * Metadata lives outside DMA memory (a device must not be able to corrupt it), and every
 * free is checked against it: the va must start a live buffer of this adapter, and the la
 * and the length must be what the allocation returned.
 */
#include "core/internal.h"
#include "core/lock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_SIZE       ((size_t)2 << 20)
#define MIN_CLASS_SHIFT  4 /* 16-byte objects */
#define MAX_EMPTY_ARENAS 1

struct dmahal__slab {
    struct dmahal__arena *arena;
    char *va;
    dmahal_addr_t la;
    unsigned shift; /* object size is 1 << shift */
    unsigned nobj, nfree;
    bool dark;                        /* empty, and out of the device's reach */
    struct dmahal__slab *next, *prev; /* on the class's partial list while nfree > 0 */
    uint32_t *lens;                   /* requested length per object; 0 when free */
    uint64_t free_map[];              /* bit set: object free */
};

struct dmahal__arena {
    struct dmahal__chunk ch;
    bool single;       /* one buffer spans the arena */
    bool dark;         /* from mem_alloc_dark: only its used runs are reachable */
    size_t single_len; /* its requested length, 0 when free */
    size_t npages, used_pages;
    struct dmahal__range free;   /* free logical ranges (shared arenas) */
    size_t *head_len;            /* per page: length of the page-run buffer starting here */
    struct dmahal__slab **slabs; /* per page: the slab it holds */
};

/* ---- arenas ---------------------------------------------------------------------------- */

static size_t arena_index(const struct dmahal__common *cm, const void *va)
{
    size_t lo = 0, hi = cm->narenas;

    /* The first arena whose va is above @va, minus one, is the candidate. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((const char *)cm->arenas[mid]->ch.va <= (const char *)va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct dmahal__arena *arena_find(const struct dmahal__common *cm, const void *va)
{
    size_t i = arena_index(cm, va);
    struct dmahal__arena *ar;

    if (i == 0)
        return NULL;
    ar = cm->arenas[i - 1];
    if ((const char *)va >= (const char *)ar->ch.va + ar->ch.len)
        return NULL;
    return ar;
}

static int arena_insert(struct dmahal__common *cm, struct dmahal__arena *ar)
{
    size_t i;

    if (cm->narenas == cm->arenas_cap) {
        size_t cap = cm->arenas_cap ? cm->arenas_cap * 2 : 8;
        struct dmahal__arena **v = realloc(cm->arenas, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        cm->arenas = v;
        cm->arenas_cap = cap;
    }
    i = arena_index(cm, ar->ch.va);
    memmove(&cm->arenas[i + 1], &cm->arenas[i], (cm->narenas - i) * sizeof(cm->arenas[0]));
    cm->arenas[i] = ar;
    cm->narenas++;
    return 0;
}

static void arena_release(struct dmahal_adapter *a, struct dmahal__arena *ar)
{
    struct dmahal__common *cm = &a->common;
    size_t i = arena_index(cm, ar->ch.va) - 1;

    memmove(&cm->arenas[i], &cm->arenas[i + 1], (cm->narenas - i - 1) * sizeof(cm->arenas[0]));
    cm->narenas--;
    a->dev->p->ops->mem_free(a, &ar->ch);
    dmahal__range_fini(&ar->free);
    free(ar->head_len);
    free(ar->slabs);
    free(ar);
}

/* Gets @len bytes of platform memory as a new arena, aligned to @align. */
static int arena_new(struct dmahal_adapter *a, size_t len, size_t align, bool single,
                     struct dmahal__arena **out)
{
    struct dmahal_platform *p = a->dev->p;
    struct dmahal__arena *ar;
    int rc;

    ar = calloc(1, sizeof(*ar));
    if (!ar)
        return -ENOMEM;
    ar->single = single;
    ar->npages = len >> p->page_shift;
    dmahal__range_init(&ar->free);
    if (!single) {
        ar->head_len = calloc(ar->npages, sizeof(*ar->head_len));
        ar->slabs = calloc(ar->npages, sizeof(*ar->slabs));
        if (!ar->head_len || !ar->slabs) {
            rc = -ENOMEM;
            goto err_meta;
        }
    }
    rc = -ENOTSUP;
    if (!single && !(a->desc.flags & DMAHAL_DESC_LAZY_UNMAP) && p->ops->mem_alloc_dark)
        rc = p->ops->mem_alloc_dark(a, len, align, &ar->ch);
    ar->dark = rc == 0;
    if (rc == -ENOTSUP)
        rc = p->ops->mem_alloc(a, len, align, &ar->ch);
    if (rc)
        goto err_meta;
    if (!single && dmahal__range_add(&ar->free, ar->ch.la, len)) {
        rc = -ENOMEM;
        goto err_mem;
    }
    rc = arena_insert(&a->common, ar);
    if (rc)
        goto err_mem;
    *out = ar;
    return 0;

err_mem:
    p->ops->mem_free(a, &ar->ch);
err_meta:
    dmahal__range_fini(&ar->free);
    free(ar->head_len);
    free(ar->slabs);
    free(ar);
    return rc;
}

/* Frees an arena that has become empty, unless it is worth keeping for the next request. */
static void arena_maybe_release(struct dmahal_adapter *a, struct dmahal__arena *ar)
{
    struct dmahal__common *cm = &a->common;

    if (cm->spare && cm->spare != ar) {
        arena_release(a, ar);
        return;
    }
    cm->spare = ar;
}

static void arena_used(struct dmahal__common *cm, struct dmahal__arena *ar)
{
    if (cm->spare == ar)
        cm->spare = NULL;
}

/* Makes a run of a dark arena reachable by the device, or takes it out of reach again. */
static int arena_reach(struct dmahal_adapter *a, struct dmahal__arena *ar, dmahal_addr_t la,
                       size_t len, bool reach)
{
    if (!ar->dark)
        return 0;
    return a->dev->p->ops->mem_reach(a, &ar->ch, (size_t)(la - ar->ch.la), len, reach);
}

/* ---- page runs --------------------------------------------------------------------------- */

static int run_try(struct dmahal_adapter *a, struct dmahal__arena *ar, size_t bytes, size_t align,
                   uint64_t boundary, char **va, dmahal_addr_t *la)
{
    uint64_t at;

    if (ar->single || ar->free.free_bytes < bytes)
        return -ENOMEM;
    if (dmahal__range_alloc(&ar->free, bytes, align, boundary, a->c.max_addr, &at))
        return -ENOMEM;
    ar->used_pages += bytes >> a->dev->p->page_shift;
    arena_used(&a->common, ar);
    *la = at;
    *va = (char *)ar->ch.va + (at - ar->ch.la);
    return 0;
}

/*
 * Takes @bytes (page multiple, at most an arena) from a shared arena, making a new arena if
 * none has room. A new arena is 2 MiB when the device can reach that much contiguous
 * memory, else as small as the request. @boundary is 0 for slab pages: their objects keep
 * the adapter's boundary by their own alignment.
 */
static int run_alloc(struct dmahal_adapter *a, size_t bytes, size_t align, uint64_t boundary,
                     struct dmahal__arena **arp, char **va, dmahal_addr_t *la)
{
    struct dmahal__common *cm = &a->common;
    size_t page = a->dev->p->page_size;
    struct dmahal__arena *ar;
    size_t size;
    int rc = -ENOMEM;

    for (size_t i = cm->narenas; i-- > 0;) {
        ar = cm->arenas[i];
        if (ar != cm->spare && run_try(a, ar, bytes, align, boundary, va, la) == 0)
            goto found;
    }
    ar = cm->spare;
    if (ar && run_try(a, ar, bytes, align, boundary, va, la) == 0)
        goto found;
    for (size = ARENA_SIZE; size >= bytes; size /= 2) {
        size_t arena_align = size > align ? size : align;

        if (a->c.boundary && size > a->c.boundary && size > bytes)
            continue; /* keep arenas within one boundary window, where the buffers live */
        rc = arena_new(a, size, arena_align < page ? page : arena_align, false, &ar);
        if (rc == 0)
            break;
        if (rc != -ENOMEM)
            return rc;
    }
    if (rc)
        return rc;
    rc = run_try(a, ar, bytes, align, boundary, va, la);
    if (rc) {
        arena_release(a, ar);
        return rc;
    }
found:
    *arp = ar;
    return 0;
}

static void run_free(struct dmahal_adapter *a, struct dmahal__arena *ar, dmahal_addr_t la,
                     size_t bytes)
{
    /* Out of host memory for an extent, the pages stay out of use: never handed out twice. */
    if (dmahal__range_add(&ar->free, la, bytes) != 0)
        return;
    ar->used_pages -= bytes >> a->dev->p->page_shift;
    if (ar->used_pages == 0)
        arena_maybe_release(a, ar);
}

/* ---- slabs ------------------------------------------------------------------------------- */

static unsigned class_shift(size_t len, size_t alignment)
{
    size_t need = len > alignment ? len : alignment;
    unsigned shift = MIN_CLASS_SHIFT;

    while (((size_t)1 << shift) < need)
        shift++;
    return shift;
}

static void partial_push(struct dmahal__common *cm, struct dmahal__slab *s)
{
    struct dmahal__slab **head = &cm->partial[s->shift - MIN_CLASS_SHIFT];

    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void partial_remove(struct dmahal__common *cm, struct dmahal__slab *s)
{
    DMAHAL__LIST_UNLINK(cm->partial[s->shift - MIN_CLASS_SHIFT], s, next, prev);
    s->next = s->prev = NULL;
}

static int slab_new(struct dmahal_adapter *a, unsigned shift, struct dmahal__slab **out)
{
    struct dmahal_platform *p = a->dev->p;
    unsigned nobj = (unsigned)(p->page_size >> shift);
    size_t words = (nobj + 63) / 64;
    struct dmahal__slab *s;
    struct dmahal__arena *ar;
    int rc;

    s = calloc(1, sizeof(*s) + words * sizeof(uint64_t));
    if (!s)
        return -ENOMEM;
    s->lens = calloc(nobj, sizeof(*s->lens));
    if (!s->lens) {
        rc = -ENOMEM;
        goto err_alloc;
    }
    rc = run_alloc(a, p->page_size, p->page_size, 0, &ar, &s->va, &s->la);
    if (rc)
        goto err_lens;
    rc = arena_reach(a, ar, s->la, p->page_size, true);
    if (rc) {
        run_free(a, ar, s->la, p->page_size);
        goto err_lens;
    }
    s->arena = ar;
    s->shift = shift;
    s->nobj = s->nfree = nobj;
    for (unsigned i = 0; i < nobj; i++)
        s->free_map[i / 64] |= (uint64_t)1 << (i % 64);
    ar->slabs[(s->la - ar->ch.la) >> p->page_shift] = s;
    partial_push(&a->common, s);
    *out = s;
    return 0;

err_lens:
    free(s->lens);
err_alloc:
    free(s);
    return rc;
}

static void slab_destroy(struct dmahal_adapter *a, struct dmahal__slab *s)
{
    struct dmahal__arena *ar = s->arena;

    partial_remove(&a->common, s);
    if (!s->dark)
        arena_reach(a, ar, s->la, a->dev->p->page_size, false);
    ar->slabs[(s->la - ar->ch.la) >> a->dev->p->page_shift] = NULL;
    run_free(a, ar, s->la, a->dev->p->page_size);
    free(s->lens);
    free(s);
}

static int small_alloc(struct dmahal_adapter *a, size_t len, unsigned shift, struct dmahal_buf *out)
{
    struct dmahal__common *cm = &a->common;
    struct dmahal__slab *s = cm->partial[shift - MIN_CLASS_SHIFT];
    unsigned w, i;
    int rc;

    if (!s) {
        rc = slab_new(a, shift, &s);
        if (rc)
            return rc;
    } else if (s->dark) {
        rc = arena_reach(a, s->arena, s->la, a->dev->p->page_size, true);
        if (rc)
            return rc;
        s->dark = false;
    }
    for (w = 0; !s->free_map[w]; w++)
        ;
    i = w * 64 + (unsigned)__builtin_ctzll(s->free_map[w]);
    s->free_map[w] &= ~((uint64_t)1 << (i % 64));
    s->lens[i] = (uint32_t)len;
    if (--s->nfree == 0)
        partial_remove(cm, s);
    out->va = s->va + ((size_t)i << shift);
    out->la = s->la + ((dmahal_addr_t)i << shift);
    out->len = len;
    return 0;
}

static int small_free(struct dmahal_adapter *a, struct dmahal__slab *s, const struct dmahal_buf *b)
{
    struct dmahal__common *cm = &a->common;
    size_t off = (size_t)((char *)b->va - s->va);
    unsigned i = (unsigned)(off >> s->shift);
    uint64_t bit = (uint64_t)1 << (i % 64);

    if (off & (((size_t)1 << s->shift) - 1))
        return -EINVAL; /* not the start of an object */
    if ((s->free_map[i / 64] & bit) || s->lens[i] != b->len || b->la != s->la + off)
        return -EINVAL; /* a double free, or the wrong length or logical address */
    s->free_map[i / 64] |= bit;
    s->lens[i] = 0;
    if (s->nfree++ == 0)
        partial_push(cm, s);
    /* Keep one empty slab per class so that alloc/free churn does not hit the arena; out
     * of the device's reach, as its page holds no buffer. */
    if (s->nfree == s->nobj && (s->next || s->prev)) {
        slab_destroy(a, s);
    } else if (s->nfree == s->nobj && s->arena->dark) {
        arena_reach(a, s->arena, s->la, a->dev->p->page_size, false);
        s->dark = true;
    }
    return 0;
}

/* ---- large buffers ------------------------------------------------------------------------ */

static int large_alloc(struct dmahal_adapter *a, size_t len, struct dmahal_buf *out)
{
    struct dmahal_platform *p = a->dev->p;
    size_t bytes = DMAHAL__ALIGN_UP(len, p->page_size);
    size_t align = a->c.alignment > p->page_size ? a->c.alignment : p->page_size;
    struct dmahal__arena *ar;
    char *va;
    dmahal_addr_t la;
    int rc;

    if (bytes > ARENA_SIZE) {
        rc = arena_new(a, bytes, align, true, &ar);
        if (rc)
            return rc;
        ar->single_len = len;
        va = ar->ch.va;
        la = ar->ch.la;
    } else {
        rc = run_alloc(a, bytes, align, a->c.boundary, &ar, &va, &la);
        if (rc)
            return rc;
        rc = arena_reach(a, ar, la, bytes, true);
        if (rc) {
            run_free(a, ar, la, bytes);
            return rc;
        }
        ar->head_len[(la - ar->ch.la) >> p->page_shift] = len;
    }
    out->va = va;
    out->la = la;
    out->len = len;
    return 0;
}

static int large_free(struct dmahal_adapter *a, struct dmahal__arena *ar,
                      const struct dmahal_buf *b)
{
    struct dmahal_platform *p = a->dev->p;
    size_t off = (size_t)((char *)b->va - (char *)ar->ch.va);
    size_t page = off >> p->page_shift;

    if (b->la != ar->ch.la + off)
        return -EINVAL;
    if (ar->single) {
        if (off != 0 || ar->single_len != b->len)
            return -EINVAL;
        arena_release(a, ar);
        return 0;
    }
    if ((off & (p->page_size - 1)) || ar->head_len[page] != b->len)
        return -EINVAL;
    ar->head_len[page] = 0;
    arena_reach(a, ar, b->la, DMAHAL__ALIGN_UP(b->len, p->page_size), false);
    run_free(a, ar, b->la, DMAHAL__ALIGN_UP(b->len, p->page_size));
    return 0;
}

/* ---- the adapter's operations --------------------------------------------------------------- */

int dmahal__common_init(struct dmahal_adapter *a)
{
    memset(&a->common, 0, sizeof(a->common));
    dmahal__lock_init(&a->common.lock);
    return 0;
}

void dmahal__common_fini(struct dmahal_adapter *a)
{
    struct dmahal__common *cm = &a->common;

    while (cm->narenas) {
        struct dmahal__arena *ar = cm->arenas[cm->narenas - 1];

        size_t page = a->dev->p->page_size;

        for (size_t i = 0; !ar->single && i < ar->npages; i++) {
            /* A dark arena's live runs leave the device's reach as they were given to it. */
            if (ar->head_len[i])
                arena_reach(a, ar, ar->ch.la + i * page, DMAHAL__ALIGN_UP(ar->head_len[i], page),
                            false);
            if (ar->slabs[i]) {
                if (!ar->slabs[i]->dark)
                    arena_reach(a, ar, ar->slabs[i]->la, page, false);
                free(ar->slabs[i]->lens);
                free(ar->slabs[i]);
            }
        }
        arena_release(a, ar);
    }
    free(cm->arenas);
    memset(cm, 0, sizeof(*cm));
}

int dmahal__common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                         struct dmahal_buf *out)
{
    size_t page = a->dev->p->page_size;
    unsigned shift = class_shift(len, a->c.alignment);
    int rc;

    if (a->c.boundary && len > a->c.boundary)
        return -E2BIG;
    dmahal__lock_take(&a->common.lock);
    if (((size_t)1 << shift) <= page / 2)
        rc = small_alloc(a, len, shift, out);
    else
        rc = large_alloc(a, len, out);
    dmahal__lock_drop(&a->common.lock);
    if (rc == 0 &&
        (!(flags & DMAHAL__COMMON_NO_ZERO) || ((flags & DMAHAL_CACHED) && !a->c.coherent)))
        memset(out->va, 0, len);
    return rc;
}

int dmahal__common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    struct dmahal__common *cm = &a->common;
    struct dmahal__arena *ar;
    int rc = -EINVAL;

    if (!buf->va || buf->len == 0)
        return -EINVAL;
    dmahal__lock_take(&cm->lock);
    ar = arena_find(cm, buf->va);
    if (ar) {
        struct dmahal__slab *s =
            ar->single ? NULL
                       : ar->slabs[((char *)buf->va - (char *)ar->ch.va) >> a->dev->p->page_shift];

        rc = s ? small_free(a, s, buf) : large_free(a, ar, buf);
    }
    dmahal__lock_drop(&cm->lock);
    return rc;
}

/* Whether @b is, in the arena that holds it, a live buffer exactly as allocated. */
static bool buf_live(const struct dmahal_adapter *a, const struct dmahal__arena *ar,
                     const struct dmahal_buf *b)
{
    size_t off = (size_t)((char *)b->va - (char *)ar->ch.va);
    size_t page = off >> a->dev->p->page_shift;
    const struct dmahal__slab *s = ar->single ? NULL : ar->slabs[page];

    if (b->la != ar->ch.la + off)
        return false;
    if (ar->single)
        return off == 0 && ar->single_len == b->len;
    if (s) {
        size_t in = (size_t)((char *)b->va - s->va);
        unsigned i = (unsigned)(in >> s->shift);

        return !(in & (((size_t)1 << s->shift) - 1)) && i < s->nobj &&
               !(s->free_map[i / 64] & ((uint64_t)1 << (i % 64))) && s->lens[i] == b->len;
    }
    return !(off & (a->dev->p->page_size - 1)) && ar->head_len[page] == b->len;
}

bool dmahal__common_live(struct dmahal_adapter *a, const struct dmahal_buf *b)
{
    struct dmahal__common *cm = &a->common;
    struct dmahal__arena *ar;
    bool live = false;

    if (!b->va || b->len == 0)
        return false;
    dmahal__lock_take(&cm->lock);
    ar = arena_find(cm, b->va);
    if (ar)
        live = buf_live(a, ar, b);
    dmahal__lock_drop(&cm->lock);
    return live;
}

void dmahal__common_walk(struct dmahal_adapter *a,
                         void (*fn)(const struct dmahal_buf *b, void *arg), void *arg)
{
    struct dmahal__common *cm = &a->common;
    size_t page_size = a->dev->p->page_size;

    dmahal__lock_take(&cm->lock);
    for (size_t i = 0; i < cm->narenas; i++) {
        const struct dmahal__arena *ar = cm->arenas[i];

        if (ar->single) {
            if (ar->single_len)
                fn(&(struct dmahal_buf){ar->ch.va, ar->ch.la, ar->single_len}, arg);
            continue;
        }
        for (size_t pg = 0; pg < ar->npages; pg++) {
            const struct dmahal__slab *s = ar->slabs[pg];
            size_t off = pg * page_size;

            if (ar->head_len[pg])
                fn(&(struct dmahal_buf){(char *)ar->ch.va + off, ar->ch.la + off, ar->head_len[pg]},
                   arg);
            for (unsigned o = 0; s && o < s->nobj; o++) {
                if (s->lens[o])
                    fn(&(struct dmahal_buf){s->va + ((size_t)o << s->shift),
                                            s->la + ((dmahal_addr_t)o << s->shift), s->lens[o]},
                       arg);
            }
        }
    }
    dmahal__lock_drop(&cm->lock);
}
