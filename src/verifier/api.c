/* SPDX-License-Identifier: MIT */
/*
 * api.c - the verifier's public entry points (dmahal_verify_*) and its settings, from the call or
 * from DMAHAL_VERIFY.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the public entry points --------------------------------------------------------------- */

#define BT_FLAGS    (DMAHAL_VERIFY_NO_BACKTRACE | DMAHAL_VERIFY_FULL_BACKTRACE)
#define KNOWN_FLAGS (DMAHAL_VERIFY_PRINT | DMAHAL_VERIFY_COUNT | DMAHAL_VERIFY_ABORT | BT_FLAGS)

static struct dmahal__verifier *verifier_new(struct dmahal_platform *p)
{
    struct dmahal__verifier *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->p = p;
    dmahal__lock_init(&v->lock);
    pthread_mutex_init(&v->rlock, NULL);
    atomic_init(&v->on, true);
    v->prio_seed = 0x9e3779b9u;
    return v;
}

int dmahal_verify_enable(struct dmahal_platform *p, unsigned flags, dmahal_report_fn fn, void *ctx)
{
    struct dmahal__verifier *v;

    if (!p || (flags & ~KNOWN_FLAGS))
        return -EINVAL;
    if (!(flags & ~BT_FLAGS))
        flags |= DMAHAL_VERIFY_PRINT | DMAHAL_VERIFY_COUNT;
    /* Serialised against other enables by the platform lock: one verifier per platform. */
    pthread_mutex_lock(&p->lock);
    v = atomic_load(&p->verifier);
    if (!v) {
        v = verifier_new(p);
        if (!v) {
            pthread_mutex_unlock(&p->lock);
            return -ENOMEM;
        }
    }
    pthread_mutex_lock(&v->rlock);
    v->fn = fn;
    v->ctx = ctx;
    __atomic_store_n(&v->flags, flags, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&v->rlock);
    atomic_store_explicit(&p->verifier, v, memory_order_release);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void dmahal__verify_platform_open(struct dmahal_platform *p)
{
    const char *env = getenv("DMAHAL_VERIFY");

    if (!env || !*env || strcmp(env, "0") == 0)
        return;
    /* Out of memory here, the platform simply opens unverified, as the contract promises. */
    dmahal_verify_enable(
        p, strcmp(env, "abort") == 0 ? DMAHAL_VERIFY_ABORT | DMAHAL_VERIFY_COUNT : 0, NULL, NULL);
}

int dmahal_verify_enabled(const struct dmahal_platform *p)
{
    struct dmahal__verifier *v;

    if (!p)
        return -EINVAL;
    v = atomic_load(&((struct dmahal_platform *)p)->verifier);
    return v && atomic_load(&v->on);
}

uint64_t dmahal_verify_count(const struct dmahal_platform *p, int kind)
{
    struct dmahal__verifier *v = p ? atomic_load(&((struct dmahal_platform *)p)->verifier) : NULL;
    uint64_t n;

    if (!v || kind < 0 || kind >= DMAHAL_REPORT_KINDS)
        return 0;
    pthread_mutex_lock(&v->rlock);
    n = kind ? v->count[kind] : v->total;
    pthread_mutex_unlock(&v->rlock);
    return n;
}

uint64_t dmahal_verify_repeats(const struct dmahal_platform *p, int kind)
{
    struct dmahal__verifier *v = p ? atomic_load(&((struct dmahal_platform *)p)->verifier) : NULL;
    uint64_t n;

    if (!v || kind < 0 || kind >= DMAHAL_REPORT_KINDS)
        return 0;
    pthread_mutex_lock(&v->rlock);
    n = kind ? v->repeats[kind] : v->repeats_total;
    pthread_mutex_unlock(&v->rlock);
    return n;
}

int dmahal_verify_report(const struct dmahal_platform *p, size_t index, struct dmahal_report *out)
{
    struct dmahal__verifier *v;
    int rc = 0;

    if (!out)
        return -EINVAL;
    dmahal__struct_clear(out, sizeof(*out), DMAHAL__REPORT_V1);
    if (!p)
        return -EINVAL;
    v = atomic_load(&((struct dmahal_platform *)p)->verifier);
    if (!v)
        return -ENOENT;
    pthread_mutex_lock(&v->rlock);
    if (index >= VERIFY_RING || index >= v->total)
        rc = -ENOENT;
    else
        rc = dmahal__struct_out(out, &v->ring[(v->total - 1 - index) % VERIFY_RING], sizeof(*out),
                                DMAHAL__REPORT_V1);
    pthread_mutex_unlock(&v->rlock);
    return rc;
}

void dmahal_verify_clear(struct dmahal_platform *p)
{
    struct dmahal__verifier *v = p ? atomic_load(&p->verifier) : NULL;

    if (!v)
        return;
    pthread_mutex_lock(&v->rlock);
    memset(v->count, 0, sizeof(v->count));
    memset(v->ring, 0, sizeof(v->ring));
    v->total = 0;
    memset(v->seen, 0, sizeof(v->seen));
    memset(v->repeats, 0, sizeof(v->repeats));
    v->repeats_total = 0;
    pthread_mutex_unlock(&v->rlock);
}
