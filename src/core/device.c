/* SPDX-License-Identifier: MIT */
/* device.c - device objects, register access, contexts, interrupts, device-side DMA. */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dmahal_device_open(struct dmahal_platform *p, const char *name, struct dmahal_device **out)
{
    struct dmahal_device *d;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!p || !name || !*name)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->p = p;
    d->name = strdup(name);
    if (!d->name) {
        rc = -ENOMEM;
        goto err_alloc;
    }
    pthread_mutex_init(&d->lock, NULL);
    rc = p->ops->device_open(d, name);
    if (rc)
        goto err_lock;
    pthread_mutex_lock(&p->lock);
    DMAHAL__LIST_PUSH(p->devices, d, next, prev);
    pthread_mutex_unlock(&p->lock);
    *out = d;
    return 0;

err_lock:
    pthread_mutex_destroy(&d->lock);
    free(d->name);
err_alloc:
    free(d);
    return rc;
}

void dmahal_device_close(struct dmahal_device *d)
{
    struct dmahal_platform *p;

    if (!d)
        return;
    p = d->p;
    while (d->adapters)
        dmahal_adapter_put(d->adapters);
    while (d->contexts) {
        struct dmahal__context *c = d->contexts;

        d->contexts = c->next;
        if (c->release)
            c->release(c->ctx);
        free(c);
    }
    if (p->ops->device_close)
        p->ops->device_close(d);
    pthread_mutex_lock(&p->lock);
    DMAHAL__LIST_UNLINK(p->devices, d, next, prev);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&d->lock);
    free(d->name);
    free(d);
}

const char *dmahal_device_name(const struct dmahal_device *d)
{
    return d ? d->name : "";
}

struct dmahal_platform *dmahal_device_platform(const struct dmahal_device *d)
{
    return d ? d->p : NULL;
}

int dmahal_device_bar_size(const struct dmahal_device *d, unsigned bar, uint64_t *size)
{
    if (size)
        *size = 0;
    if (!d || !size || bar >= DMAHAL__BARS)
        return -EINVAL;
    *size = d->bar_size[bar];
    return 0;
}

int dmahal_device_set_context(struct dmahal_device *d, const void *key, void *ctx,
                              void (*release)(void *ctx))
{
    struct dmahal__context *c;
    int rc = 0;

    if (!d || !key)
        return -EINVAL;
    pthread_mutex_lock(&d->lock);
    for (c = d->contexts; c; c = c->next) {
        if (c->key == key) {
            rc = -EEXIST;
            goto out;
        }
    }
    c = malloc(sizeof(*c));
    if (!c) {
        rc = -ENOMEM;
        goto out;
    }
    *c = (struct dmahal__context){key, ctx, release, d->contexts};
    d->contexts = c;
out:
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void *dmahal_device_context(const struct dmahal_device *d, const void *key)
{
    void *ctx = NULL;

    if (!d || !key)
        return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&d->lock);
    for (const struct dmahal__context *c = d->contexts; c; c = c->next) {
        if (c->key == key) {
            ctx = c->ctx;
            break;
        }
    }
    pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
    return ctx;
}

/* ---- registers ------------------------------------------------------------------------- */

static bool mmio_ok(const struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size)
{
    return d && bar < DMAHAL__BARS && off % size == 0 && off < d->bar_size[bar] &&
           d->bar_size[bar] - off >= size;
}

uint32_t dmahal_mmio_read32(struct dmahal_device *d, unsigned bar, uint64_t off)
{
    if (!mmio_ok(d, bar, off, 4))
        return UINT32_MAX;
    return (uint32_t)d->p->ops->mmio_read(d, bar, off, 4);
}

void dmahal_mmio_write32(struct dmahal_device *d, unsigned bar, uint64_t off, uint32_t v)
{
    if (mmio_ok(d, bar, off, 4))
        d->p->ops->mmio_write(d, bar, off, v, 4);
}

uint64_t dmahal_mmio_read64(struct dmahal_device *d, unsigned bar, uint64_t off)
{
    if (!mmio_ok(d, bar, off, 8))
        return UINT64_MAX;
    return d->p->ops->mmio_read(d, bar, off, 8);
}

void dmahal_mmio_write64(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t v)
{
    if (mmio_ok(d, bar, off, 8))
        d->p->ops->mmio_write(d, bar, off, v, 8);
}

/* ---- interrupts and device-side DMA ------------------------------------------------------ */

void dmahal_irq_set(struct dmahal_device *d, bool asserted)
{
    if (d)
        atomic_store_explicit(&d->irq, asserted, memory_order_release);
}

int dmahal_irq_pending(const struct dmahal_device *d)
{
    if (!d)
        return -EINVAL;
    return atomic_load_explicit(&((struct dmahal_device *)d)->irq, memory_order_acquire);
}
