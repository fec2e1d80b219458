/*
 * stream.c - the simulated machine's side of streaming DMA: user memory given physical
 * addresses, user memory in the IOMMU's page tables, bounce memory, and the cache model of
 * a machine whose devices do not snoop CPU caches.
 *
 * User memory has no physical address on the simulated machine until a map pins it: the
 * pin then reserves frames for it from the frame allocator, high-first as everything else
 * (so on a big machine a 32-bit device has to bounce, as it would), and the physical-to-host
 * translation learns that those frames now stand for the user's pages (a "foreign" region).
 * With the IOMMU no frames are needed: the page table points at the user's pages, as VFIO's
 * does at a process's.
 *
 * The cache model: with coherent=no, host memory is the CPU's view (its caches), and each
 * page that a non-coherent mapping or cached buffer covers gets a device-side copy (the
 * memory behind the caches), made when tracking starts. Device accesses to tracked bytes go
 * to the copy; cache_flush copies the CPU's bytes into it, cache_invalidate copies it back.
 * A driver that forgets a sync therefore sees, or makes the device see, stale data.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void sim_stream_init(struct sim *s)
{
    pthread_rwlock_init(&s->foreign_lock, NULL);
    pthread_mutex_init(&s->shadow_lock, NULL);
}

void sim_stream_fini(struct sim *s)
{
    for (unsigned b = 0; b < SIM_SHADOW_BUCKETS; b++) {
        while (s->shadow[b]) {
            struct sim_shadow *sh = s->shadow[b];

            s->shadow[b] = sh->next;
            free(sh->data);
            free(sh->count);
            free(sh);
        }
    }
    free(s->foreign);
    pthread_mutex_destroy(&s->shadow_lock);
    pthread_rwlock_destroy(&s->foreign_lock);
}

/* ---- foreign regions: pinned user memory at physical addresses ---------------------------- */

/* Index of the first region whose end is above @pa; the caller holds the lock. */
static size_t foreign_index(const struct sim *s, uint64_t pa)
{
    size_t lo = 0, hi = s->nforeign;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->foreign[mid].pa + s->foreign[mid].len <= pa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

char *sim_phys_host(struct sim *s, uint64_t pa, size_t len)
{
    char *host = NULL;
    size_t i;

    if (atomic_load_explicit(&s->nforeign_hint, memory_order_acquire)) {
        pthread_rwlock_rdlock(&s->foreign_lock);
        i = foreign_index(s, pa);
        if (i < s->nforeign && s->foreign[i].pa <= pa) {
            const struct sim_foreign *f = &s->foreign[i];

            host = len <= f->pa + f->len - pa ? f->host + (pa - f->pa) : NULL;
            pthread_rwlock_unlock(&s->foreign_lock);
            return host;
        }
        pthread_rwlock_unlock(&s->foreign_lock);
    }
    return sim_host(s, pa, len);
}

int sim_pin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t *bus)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    uint64_t pa;
    size_t i;
    int rc;

    *bus = 0;
    /* Wherever the machine has room, with no regard for the device: the core checks. */
    rc = sim_frames_alloc(s, len, s->page, 0, UINT64_MAX, &pa);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&s->foreign_lock);
    if (s->nforeign == s->foreign_cap) {
        size_t cap = s->foreign_cap ? s->foreign_cap * 2 : 16;
        struct sim_foreign *v = realloc(s->foreign, cap * sizeof(*v));

        if (!v) {
            pthread_rwlock_unlock(&s->foreign_lock);
            sim_frames_free(s, pa, len);
            return -ENOMEM;
        }
        s->foreign = v;
        s->foreign_cap = cap;
    }
    i = foreign_index(s, pa);
    memmove(&s->foreign[i + 1], &s->foreign[i], (s->nforeign - i) * sizeof(s->foreign[0]));
    s->foreign[i] = (struct sim_foreign){pa, len, va};
    s->nforeign++;
    atomic_store(&s->nforeign_hint, s->nforeign);
    pthread_rwlock_unlock(&s->foreign_lock);
    *bus = pa;
    return 0;
}

void sim_unpin(struct dmahal_adapter *a, void *va, size_t len, dmahal_addr_t bus)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    size_t i;
    bool found = false;

    (void)va;
    pthread_rwlock_wrlock(&s->foreign_lock);
    i = foreign_index(s, bus);
    if (i < s->nforeign && s->foreign[i].pa == bus && s->foreign[i].len == len) {
        memmove(&s->foreign[i], &s->foreign[i + 1], (s->nforeign - i - 1) * sizeof(s->foreign[0]));
        s->nforeign--;
        found = true;
    }
    atomic_store(&s->nforeign_hint, s->nforeign);
    pthread_rwlock_unlock(&s->foreign_lock);
    if (found)
        sim_frames_free(s, bus, len);
}

/* ---- the IOMMU and bounce memory ------------------------------------------------------------- */

int sim_iommu_map(struct dmahal_device *d, dmahal_addr_t iova, void *va, size_t len, unsigned perm)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    unsigned pte = IOPTE_HOST | (perm & DMAHAL__PERM_READ ? IOPTE_R : 0) |
                   (perm & DMAHAL__PERM_WRITE ? IOPTE_W : 0);

    /* No shared counter here: an atomic add per map and unmap would cost a third of the
     * page table's own update, on a path meant to scale across threads. */
    return sim_iopt_map(&sd->iopt, iova, (uint64_t)(uintptr_t)va, len, pte);
}

void sim_iommu_unmap(struct dmahal_device *d, dmahal_addr_t iova, size_t len)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;

    sim_iopt_unmap(&sd->iopt, iova, len);
}

int sim_bounce_alloc(struct dmahal_platform *p, size_t len, uint64_t max_addr,
                     struct dmahal__chunk *out)
{
    struct sim *s = dmahal__plat(p)->priv;
    uint64_t pa;
    int rc = sim_frames_alloc(s, len, s->page, 0, max_addr, &pa);

    if (rc)
        return rc;
    *out = (struct dmahal__chunk){sim_host(s, pa, len), pa, len, pa};
    return 0;
}

void sim_bounce_free(struct dmahal_platform *p, const struct dmahal__chunk *ch)
{
    sim_frames_free(dmahal__plat(p)->priv, ch->cookie, ch->len);
}

/* ---- the cache model --------------------------------------------------------------------- */

static unsigned shadow_bucket(uintptr_t page)
{
    return (unsigned)((page >> 12) * 0x9e3779b1u >> 24) % SIM_SHADOW_BUCKETS;
}

/* The caller holds shadow_lock. */
static struct sim_shadow *shadow_find(struct sim *s, uintptr_t page)
{
    for (struct sim_shadow *sh = s->shadow[shadow_bucket(page)]; sh; sh = sh->next)
        if (sh->page == page)
            return sh;
    return NULL;
}

/* Calls @fn for each page-piece of [va, va + len) with the page's shadow (NULL when the
 * page has none and @create is false). Stops at the first non-zero return. */
static int shadow_each(struct sim *s, void *va, size_t len, bool create,
                       int (*fn)(struct sim_shadow *sh, char *cpu, size_t off, size_t n))
{
    char *at = va;

    while (len) {
        uintptr_t page = DMAHAL__ALIGN_DOWN((uintptr_t)at, s->page);
        size_t off = (uintptr_t)at - page;
        size_t n = s->page - off < len ? s->page - off : len;
        struct sim_shadow *sh = shadow_find(s, page);
        int rc;

        if (!sh && create) {
            sh = calloc(1, sizeof(*sh));
            if (sh) {
                sh->data = malloc(s->page);
                sh->count = calloc(s->page, 1);
            }
            if (!sh || !sh->data || !sh->count) {
                if (sh) {
                    free(sh->data);
                    free(sh->count);
                }
                free(sh);
                return -ENOMEM;
            }
            sh->page = page;
            sh->next = s->shadow[shadow_bucket(page)];
            s->shadow[shadow_bucket(page)] = sh;
            atomic_fetch_add(&s->nshadow, 1);
        }
        rc = sh ? fn(sh, at, off, n) : 0;
        if (rc)
            return rc;
        at += n;
        len -= n;
    }
    return 0;
}

static int track_piece(struct sim_shadow *sh, char *cpu, size_t off, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (sh->count[off + i] == UCHAR_MAX)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        /* Memory and cache agree when tracking starts: the device sees what the CPU has. */
        if (sh->count[off + i]++ == 0) {
            sh->data[off + i] = cpu[i];
            sh->tracked++;
        }
    }
    return 0;
}

static int untrack_piece(struct sim_shadow *sh, char *cpu, size_t off, size_t n)
{
    (void)cpu;
    for (size_t i = 0; i < n; i++)
        if (sh->count[off + i] && --sh->count[off + i] == 0)
            sh->tracked--;
    return 0;
}

static int flush_piece(struct sim_shadow *sh, char *cpu, size_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sh->count[off + i])
            sh->data[off + i] = cpu[i];
    return 0;
}

static int invalidate_piece(struct sim_shadow *sh, char *cpu, size_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sh->count[off + i])
            cpu[i] = sh->data[off + i];
    return 0;
}

/* Frees the shadows of pages nothing tracks any more; the caller holds shadow_lock. */
static void shadow_collect(struct sim *s)
{
    for (unsigned b = 0; b < SIM_SHADOW_BUCKETS; b++) {
        for (struct sim_shadow **pp = &s->shadow[b]; *pp;) {
            struct sim_shadow *sh = *pp;

            if (sh->tracked) {
                pp = &sh->next;
                continue;
            }
            *pp = sh->next;
            free(sh->data);
            free(sh->count);
            free(sh);
            atomic_fetch_sub(&s->nshadow, 1);
        }
    }
}

int sim_cache_track(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;
    int rc;

    pthread_mutex_lock(&s->shadow_lock);
    rc = shadow_each(s, va, len, true, track_piece);
    if (rc) {
        /* Undo what was counted: pieces before the failing one were tracked whole. */
        shadow_each(s, va, len, false, untrack_piece);
        shadow_collect(s);
    }
    pthread_mutex_unlock(&s->shadow_lock);
    return rc;
}

void sim_cache_untrack(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;

    pthread_mutex_lock(&s->shadow_lock);
    shadow_each(s, va, len, false, untrack_piece);
    shadow_collect(s);
    pthread_mutex_unlock(&s->shadow_lock);
}

void sim_cache_flush(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;

    pthread_mutex_lock(&s->shadow_lock);
    shadow_each(s, va, len, false, flush_piece);
    pthread_mutex_unlock(&s->shadow_lock);
}

void sim_cache_invalidate(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;

    pthread_mutex_lock(&s->shadow_lock);
    shadow_each(s, va, len, false, invalidate_piece);
    pthread_mutex_unlock(&s->shadow_lock);
}

void sim_dev_copy(struct sim *s, char *host, void *buf, size_t len, bool write)
{
    struct sim_shadow *sh;
    size_t off;
    char *b = buf;

    if (atomic_load_explicit(&s->nshadow, memory_order_acquire) == 0) {
        if (write)
            memcpy(host, buf, len);
        else
            memcpy(buf, host, len);
        return;
    }
    pthread_mutex_lock(&s->shadow_lock);
    sh = shadow_find(s, DMAHAL__ALIGN_DOWN((uintptr_t)host, s->page));
    off = (uintptr_t)host & (s->page - 1);
    for (size_t i = 0; i < len; i++) {
        char *cell = sh && sh->count[off + i] ? (char *)&sh->data[off + i] : &host[i];

        if (write)
            *cell = b[i];
        else
            b[i] = *cell;
    }
    pthread_mutex_unlock(&s->shadow_lock);
}
