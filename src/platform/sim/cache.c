/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the cache model: with coherent=no, host memory is the CPU's view (its caches), and each
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

void dmahal__sim_cache_init(struct sim *s)
{
    pthread_mutex_init(&s->shadow_lock, NULL);
}

void dmahal__sim_cache_fini(struct sim *s)
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
    pthread_mutex_destroy(&s->shadow_lock);
}

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

int dmahal__sim_cache_track(struct dmahal_platform *p, void *va, size_t len)
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

void dmahal__sim_cache_untrack(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;

    pthread_mutex_lock(&s->shadow_lock);
    shadow_each(s, va, len, false, untrack_piece);
    shadow_collect(s);
    pthread_mutex_unlock(&s->shadow_lock);
}

void dmahal__sim_cache_flush(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;

    pthread_mutex_lock(&s->shadow_lock);
    shadow_each(s, va, len, false, flush_piece);
    pthread_mutex_unlock(&s->shadow_lock);
}

void dmahal__sim_cache_invalidate(struct dmahal_platform *p, void *va, size_t len)
{
    struct sim *s = dmahal__plat(p)->priv;

    pthread_mutex_lock(&s->shadow_lock);
    shadow_each(s, va, len, false, invalidate_piece);
    pthread_mutex_unlock(&s->shadow_lock);
}

/* A device access to memory no cached buffer covers. */
static void dev_plain(char *host, void *buf, size_t len, bool write)
{
    if (write)
        dmahal__sim_dev_store(host, buf, len);
    else
        memcpy(buf, host, len);
}

void dmahal__sim_dev_copy(struct sim *s, char *host, void *buf, size_t len, bool write)
{
    struct sim_shadow *sh;
    size_t off;
    char *b = buf;

    if (atomic_load_explicit(&s->nshadow, memory_order_acquire) == 0) {
        dev_plain(host, buf, len, write);
        return;
    }
    pthread_mutex_lock(&s->shadow_lock);
    sh = shadow_find(s, DMAHAL__ALIGN_DOWN((uintptr_t)host, s->page));
    off = (uintptr_t)host & (s->page - 1);
    if (!sh)
        dev_plain(host, buf, len, write);
    for (size_t i = 0; sh && i < len; i++) {
        char *cell = sh->count[off + i] ? (char *)&sh->data[off + i] : &host[i];

        if (write)
            *cell = b[i];
        else
            b[i] = *cell;
    }
    pthread_mutex_unlock(&s->shadow_lock);
}
