/* SPDX-License-Identifier: MIT */
/* platform.c - platform objects, the list of open platforms, and the fault log. */
#include "core/verify_hooks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dmahal_platform *dmahal__platforms;
pthread_mutex_t dmahal__platforms_lock = PTHREAD_MUTEX_INITIALIZER;

int dmahal_platform_open(const char *spec, struct dmahal_platform **out)
{
    struct dmahal_platform *p;
    const struct dmahal__platform_ops *ops;
    char *name, *colon;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!spec || !*spec)
        spec = getenv("DMAHAL_PLATFORM");
    if (!spec || !*spec)
        spec = "sim";
    name = strdup(spec);
    if (!name)
        return -ENOMEM;
    colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    ops = dmahal__platform_find(name);
    if (!ops) {
        /* A known platform this build left out is "not supported"; anything else is a typo. */
        rc = strcmp(name, "vfio") == 0 ? -ENOTSUP : -EINVAL;
        goto err_name;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto err_name;
    }
    p->ops = ops;
    p->page_size = 4096;
    p->coherent = true;
    p->spec = strdup(spec);
    if (!p->spec) {
        rc = -ENOMEM;
        goto err_alloc;
    }
    pthread_mutex_init(&p->lock, NULL);
    rc = ops->open(p, colon ? colon + 1 : "");
    if (rc)
        goto err_lock;
    p->page_shift = (unsigned)__builtin_ctzll(p->page_size);
    free(name);
    pthread_mutex_lock(&dmahal__platforms_lock);
    DMAHAL__LIST_PUSH(dmahal__platforms, p, next_platform, prev_platform);
    pthread_mutex_unlock(&dmahal__platforms_lock);
    dmahal__vhook_platform_open(p);
    *out = p;
    return 0;

err_lock:
    pthread_mutex_destroy(&p->lock);
    free(p->spec);
err_alloc:
    free(p);
err_name:
    free(name);
    return rc;
}

void dmahal_platform_close(struct dmahal_platform *p)
{
    if (!p)
        return;
    while (p->devices)
        dmahal_device_close(p->devices);
    dmahal__vhook_platform_close(p);
    pthread_mutex_lock(&dmahal__platforms_lock);
    DMAHAL__LIST_UNLINK(dmahal__platforms, p, next_platform, prev_platform);
    pthread_mutex_unlock(&dmahal__platforms_lock);
    dmahal__bounce_fini(p);
    if (p->ops->close)
        p->ops->close(p);
    pthread_mutex_destroy(&p->lock);
    free(p->spec);
    free(p);
}

const char *dmahal_platform_name(const struct dmahal_platform *p)
{
    return p ? p->ops->name : "";
}

size_t dmahal_platform_page_size(const struct dmahal_platform *p)
{
    return p ? p->page_size : 0;
}

int dmahal_platform_has_iommu(const struct dmahal_platform *p)
{
    return p ? p->has_iommu : -EINVAL;
}

/* ---- faults ---------------------------------------------------------------------------- */

void dmahal__fault_record(struct dmahal_device *d, dmahal_addr_t la, size_t len, bool write,
                          enum dmahal_fault_reason reason)
{
    struct dmahal_platform *p = d->p;
    size_t slot;

    pthread_mutex_lock(&p->lock);
    slot = p->fault_total % DMAHAL__FAULT_RING;
    p->fault_total++;
    snprintf(p->fault_dev[slot], sizeof(p->fault_dev[slot]), "%s", d->name);
    p->faults[slot] = (struct dmahal_fault){
        .size = sizeof(struct dmahal_fault),
        .seq = p->fault_total,
        .device = p->fault_dev[slot],
        .la = la,
        .len = len,
        .write = write,
        .reason = reason,
    };
    pthread_mutex_unlock(&p->lock);
}

uint64_t dmahal_fault_count(const struct dmahal_platform *p)
{
    uint64_t n;

    if (!p)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&p->lock);
    n = p->fault_total;
    pthread_mutex_unlock((pthread_mutex_t *)&p->lock);
    return n;
}

int dmahal_fault_get(const struct dmahal_platform *p, size_t index, struct dmahal_fault *out)
{
    pthread_mutex_t *lock;
    uint64_t kept, first;
    int rc = 0;

    if (!out)
        return -EINVAL;
    dmahal__struct_clear(out, sizeof(*out), DMAHAL__FAULT_V1);
    if (!p)
        return -EINVAL;
    lock = (pthread_mutex_t *)&p->lock;
    pthread_mutex_lock(lock);
    kept = p->fault_total < DMAHAL__FAULT_RING ? p->fault_total : DMAHAL__FAULT_RING;
    first = p->fault_total - kept;
    if (index >= kept)
        rc = -ENOENT;
    else
        rc = dmahal__struct_out(out, &p->faults[(first + index) % DMAHAL__FAULT_RING], sizeof(*out),
                                DMAHAL__FAULT_V1);
    pthread_mutex_unlock(lock);
    return rc;
}

void dmahal_fault_clear(struct dmahal_platform *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->fault_total = 0;
    memset(p->faults, 0, sizeof(p->faults));
    pthread_mutex_unlock(&p->lock);
}

const char *dmahal_fault_reason_name(enum dmahal_fault_reason r)
{
    switch (r) {
    case DMAHAL_FAULT_UNMAPPED:
        return "unmapped";
    case DMAHAL_FAULT_NO_RAM:
        return "no RAM";
    case DMAHAL_FAULT_PERM:
        return "permission";
    case DMAHAL_FAULT_BUS_MASTER:
        return "bus mastering off";
    }
    return "unknown";
}
