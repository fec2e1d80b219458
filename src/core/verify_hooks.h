/* SPDX-License-Identifier: MIT */
/*
 * verify_hooks.h - private: the only way the core reaches the verifier (src/verifier/).
 *
 * As Linux's kernel/dma/debug.h: one hook per place the verifier must see, each a static
 * inline that costs one predictable branch while the platform's verifier is off, and nothing
 * at all when the library is built without the verifier (DMAHAL_VERIFIER=OFF, which leaves
 * src/verifier/ out of the build). The verifier registers itself by swapping an adapter's
 * ops table in dmahal__verify_adapter_new; everything else goes through the table.
 */
#ifndef DMAHAL_VERIFY_HOOKS_H
#define DMAHAL_VERIFY_HOOKS_H

#include "core/internal.h"

#ifdef DMAHAL_VERIFIER

/* The verifier's side of each hook (src/verifier/). */
void dmahal__verify_platform_open(struct dmahal_platform *p);  /* honours DMAHAL_VERIFY */
void dmahal__verify_platform_close(struct dmahal_platform *p); /* devices are closed */
void dmahal__verify_adapter_new(struct dmahal_adapter *a);     /* may wrap a->ops */
void dmahal__verify_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                               dmahal_addr_t la, size_t len, bool write);
void dmahal__verify_dev_consumed(struct dmahal__verifier *v, struct dmahal_device *d,
                                 dmahal_addr_t la, size_t len);
void dmahal__verify_null_adapter(const char *fn);
void dmahal__verify_dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags);
void dmahal__verify_dump_platform(struct dmahal_platform *p, FILE *f);

/* A platform was opened: the verifier turns itself on when DMAHAL_VERIFY says so. */
static inline void dmahal__vhook_platform_open(struct dmahal_platform *p)
{
    dmahal__verify_platform_open(p);
}

/* A platform is closing, its devices closed: the verifier reports leaks and goes. */
static inline void dmahal__vhook_platform_close(struct dmahal_platform *p)
{
    if (atomic_load_explicit(&p->verifier, memory_order_acquire))
        dmahal__verify_platform_close(p);
}

/* A new adapter, not yet on its device's list: the verifier may wrap its ops. */
static inline void dmahal__vhook_adapter_new(struct dmahal_adapter *a)
{
    if (atomic_load_explicit(&a->dev->p->verifier, memory_order_acquire))
        dmahal__verify_adapter_new(a);
}

/* A device access that the platform translated: the verifier checks it against the
 * buffers it knows. */
static inline void dmahal__vhook_dev_access(struct dmahal_device *d, dmahal_addr_t la, size_t len,
                                            bool write)
{
    struct dmahal__verifier *v = atomic_load_explicit(&d->p->verifier, memory_order_acquire);

    if (__builtin_expect(v != NULL, 0))
        dmahal__verify_dev_access(v, d, la, len, write);
}

/* A device model saw the driver take the device's data (dmahal_dev_consumed). */
static inline void dmahal__vhook_dev_consumed(struct dmahal_device *d, dmahal_addr_t la, size_t len)
{
    struct dmahal__verifier *v = atomic_load_explicit(&d->p->verifier, memory_order_acquire);

    if (__builtin_expect(v != NULL, 0))
        dmahal__verify_dev_consumed(v, d, la, len);
}

/* A public entry point was given a NULL adapter. */
static inline void dmahal__vhook_null_adapter(const char *fn)
{
    dmahal__verify_null_adapter(fn);
}

/* The dump of a verified adapter: the verifier knows its buffers as the driver got them.
 * Returns true if it printed them. */
static inline bool dmahal__vhook_dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags)
{
    if (!a->verify)
        return false;
    dmahal__verify_dump_adapter(a, f, flags);
    return true;
}

static inline void dmahal__vhook_dump_platform(struct dmahal_platform *p, FILE *f)
{
    if (atomic_load(&p->verifier))
        dmahal__verify_dump_platform(p, f);
}

#else /* !DMAHAL_VERIFIER */

static inline void dmahal__vhook_platform_open(struct dmahal_platform *p)
{
    (void)p;
}

static inline void dmahal__vhook_platform_close(struct dmahal_platform *p)
{
    (void)p;
}

static inline void dmahal__vhook_adapter_new(struct dmahal_adapter *a)
{
    (void)a;
}

static inline void dmahal__vhook_dev_access(struct dmahal_device *d, dmahal_addr_t la, size_t len,
                                            bool write)
{
    (void)d, (void)la, (void)len, (void)write;
}

static inline void dmahal__vhook_dev_consumed(struct dmahal_device *d, dmahal_addr_t la, size_t len)
{
    (void)d, (void)la, (void)len;
}

static inline void dmahal__vhook_null_adapter(const char *fn)
{
    (void)fn;
}

static inline bool dmahal__vhook_dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags)
{
    (void)a, (void)f, (void)flags;
    return false;
}

static inline void dmahal__vhook_dump_platform(struct dmahal_platform *p, FILE *f)
{
    (void)p, (void)f;
}

#endif /* DMAHAL_VERIFIER */

#endif /* DMAHAL_VERIFY_HOOKS_H */
