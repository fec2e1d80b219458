/* SPDX-License-Identifier: MIT */
/* device.c - device objects, register access, contexts, configuration space, discovery. */
#include "core/internal.h"

#include <errno.h>
#include <stdatomic.h>
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
    dmahal__irq_init(d);
    rc = p->ops->device_open(d, name);
    if (rc)
        goto err_lock;
    pthread_mutex_lock(&p->lock);
    DMAHAL__LIST_PUSH(p->devices, d, next, prev);
    pthread_mutex_unlock(&p->lock);
    *out = d;
    return 0;

err_lock:
    dmahal__irq_fini(d);
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
    /* Interrupts first: a wait pending in another thread returns before anything goes. */
    dmahal_irq_disable(d);
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
    dmahal__irq_fini(d);
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

/*
 * The ordering dmahal.h promises, as Linux's writel/readl: before a register write, the
 * CPU's earlier stores to DMA memory are visible to the device; after a register read, later
 * loads of DMA memory happen after it. On x86 stores are not reordered with stores nor
 * loads with loads (uncached BAR mappings included), so only the compiler must be kept
 * from moving accesses across; arm64 needs the barriers Linux's __iowmb/__iormb use. The
 * fence also orders against a device model running on another thread.
 */
static inline void mmio_wmb(void)
{
#if defined(__aarch64__)
    __asm__ __volatile__("dmb oshst" ::: "memory");
#else
    atomic_thread_fence(memory_order_release);
#endif
}

static inline void mmio_rmb(void)
{
#if defined(__aarch64__)
    __asm__ __volatile__("dmb oshld" ::: "memory");
#else
    atomic_thread_fence(memory_order_acquire);
#endif
}

static bool mmio_ok(const struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size)
{
    return d && bar < DMAHAL__BARS && off % size == 0 && off < d->bar_size[bar] &&
           d->bar_size[bar] - off >= size;
}

uint32_t dmahal_mmio_read32(struct dmahal_device *d, unsigned bar, uint64_t off)
{
    uint32_t v;

    if (!mmio_ok(d, bar, off, 4))
        return UINT32_MAX;
    v = (uint32_t)d->p->ops->mmio_read(d, bar, off, 4);
    mmio_rmb();
    return v;
}

void dmahal_mmio_write32(struct dmahal_device *d, unsigned bar, uint64_t off, uint32_t v)
{
    if (!mmio_ok(d, bar, off, 4))
        return;
    mmio_wmb();
    d->p->ops->mmio_write(d, bar, off, v, 4);
}

uint64_t dmahal_mmio_read64(struct dmahal_device *d, unsigned bar, uint64_t off)
{
    uint64_t v;

    if (!mmio_ok(d, bar, off, 8))
        return UINT64_MAX;
    v = d->p->ops->mmio_read(d, bar, off, 8);
    mmio_rmb();
    return v;
}

void dmahal_mmio_write64(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t v)
{
    if (!mmio_ok(d, bar, off, 8))
        return;
    mmio_wmb();
    d->p->ops->mmio_write(d, bar, off, v, 8);
}

/* ---- configuration space ------------------------------------------------------------ */

static int config_check(struct dmahal_device *d, unsigned off, const void *buf, size_t len)
{
    unsigned size;

    if (!d || !buf || len == 0)
        return -EINVAL;
    if (!d->p->ops->config_size)
        return -ENOTSUP;
    size = d->p->ops->config_size(d);
    return off < size && len <= size - off ? 0 : -EINVAL;
}

int dmahal_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len)
{
    int rc = config_check(d, off, buf, len);

    return rc ? rc : d->p->ops->config_read(d, off, buf, len);
}

int dmahal_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len)
{
    int rc = config_check(d, off, buf, len);

    return rc ? rc : d->p->ops->config_write(d, off, buf, len);
}

int dmahal_config_find_cap(struct dmahal_device *d, uint8_t id, unsigned *off)
{
    uint8_t ptr, hdr[2];
    uint16_t status;
    int rc;

    if (off)
        *off = 0;
    if (!d || !off)
        return -EINVAL;
    rc = dmahal_config_read(d, 0x06, &status, sizeof(status));
    if (rc)
        return rc;
    if (!(status & 0x10)) /* no capability list */
        return -ENOENT;
    rc = dmahal_config_read(d, 0x34, &ptr, 1);
    /* At most 48 capabilities fit in the 192 bytes after the header. */
    for (unsigned n = 0; rc == 0 && n < 48; n++) {
        ptr &= 0xfc;
        if (ptr < 0x40)
            return -ENOENT;
        rc = dmahal_config_read(d, ptr, hdr, sizeof(hdr));
        if (rc)
            return rc;
        if (hdr[0] == id) {
            *off = ptr;
            return 0;
        }
        ptr = hdr[1];
    }
    return rc ? rc : -ELOOP;
}

/* Sets the command register's bus-master (and memory) bits, where the platform has a
 * config space: without them the device's DMA goes nowhere. */
int dmahal__bus_master(struct dmahal_device *d)
{
    uint16_t cmd;
    int rc;

    if (!d->p->ops->config_size)
        return 0;
    rc = dmahal_config_read(d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd));
    if (rc || (cmd & DMAHAL_PCI_COMMAND_MASTER))
        return rc;
    cmd |= DMAHAL_PCI_COMMAND_MASTER | DMAHAL_PCI_COMMAND_MEMORY;
    return dmahal_config_write(d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd));
}

/* ---- discovery ------------------------------------------------------------------------ */

int dmahal_device_list(const char *platform, struct dmahal_device_info **out)
{
    const struct dmahal__platform_ops *ops;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!platform || !*platform)
        platform = getenv("DMAHAL_PLATFORM");
    if (!platform || !*platform)
        platform = "sim";
    /* A platform spec's options ("sim:iommu=on") do not change what it can see. */
    char name[16];
    size_t len = strcspn(platform, ":");

    if (len >= sizeof(name))
        return -EINVAL;
    memcpy(name, platform, len);
    name[len] = '\0';
    ops = dmahal__platform_find(name);
    if (!ops)
        return -EINVAL;
    if (!ops->device_list)
        return -ENOTSUP;
    return ops->device_list(out);
}
