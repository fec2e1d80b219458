/* SPDX-License-Identifier: MIT */
/*
 * entry.c - the public entry points whose frames lie between a driver and the verifier:
 * each checks its arguments, then dispatches once through the adapter's ops table (or the
 * platform's, for device-side access).
 *
 * This file is compiled with frame pointers (core/framed.h, included first): the verifier's
 * backtraces follow them from its own frames, through these, to the driver's. A public
 * function that dispatches to an operation the verifier wraps belongs here, not in the file
 * of its topic, or its reports lose the driver's frame. The code below the ops tables (the
 * allocators, the maps, the platforms) runs under the verifier, never between it and the
 * driver, and keeps the register.
 */
#include "core/framed.h"

#include "core/verify_hooks.h"

#include <errno.h>

/* ---- common buffers: check, then dispatch once ------------------------------------------ */

int dmahal_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                        struct dmahal_buf *out)
{
    if (!out)
        return -EINVAL;
    *out = (struct dmahal_buf){0};
    if (!a) {
        dmahal__vhook_null_adapter("dmahal_common_alloc");
        return -EINVAL;
    }
    if (len == 0 || (flags & ~DMAHAL_CACHED))
        return -EINVAL;
    if (len > DMAHAL__MAX_LEN)
        return -E2BIG;
    return a->ops->common_alloc(a, len, flags, out);
}

int dmahal_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    if (!a)
        dmahal__vhook_null_adapter("dmahal_common_free");
    if (!a || !buf)
        return -EINVAL;
    return a->ops->common_free(a, buf);
}

/* ---- streaming DMA: check, then dispatch once ---------------------------------------------- */

static bool dir_ok(enum dmahal_dir dir)
{
    return dir == DMAHAL_TO_DEVICE || dir == DMAHAL_FROM_DEVICE || dir == DMAHAL_BIDIRECTIONAL;
}

int dmahal_map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
               enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!a || !iov || !dir_ok(dir) || (flags & ~DMAHAL_MAP_NOWAIT))
        return -EINVAL;
    return a->ops->map(a, iov, iovcnt, dir, flags, out);
}

int dmahal_map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                     enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx)
{
    if (!a || !iov || !fn || !dir_ok(dir) || (flags & ~DMAHAL_MAP_NOWAIT))
        return -EINVAL;
    return a->ops->map_async(a, iov, iovcnt, dir, flags, fn, ctx);
}

int dmahal_unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    if (!a || !sgl)
        return -EINVAL;
    return a->ops->unmap(a, sgl);
}

int dmahal_sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    if (!a || !sgl)
        return -EINVAL;
    return a->ops->sync_for_device(a, sgl);
}

int dmahal_sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    if (!a || !sgl)
        return -EINVAL;
    return a->ops->sync_for_cpu(a, sgl);
}

int dmahal_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off, size_t len,
                       enum dmahal_dir dir)
{
    if (!a || !b || !b->va || !dir_ok(dir) || off > b->len)
        return -EINVAL;
    if (len == 0)
        len = b->len - off;
    if (len > b->len - off)
        return -EINVAL;
    return a->ops->common_sync(a, b, off, len, dir);
}

/* ---- device-side access (device models and tests) --------------------------------------- */

static int dev_access(struct dmahal_device *d, dmahal_addr_t la, void *buf, size_t len, bool write)
{
    if (!d || (!buf && len) || la + len < la)
        return -EINVAL;
    if (!d->p->ops->dev_access)
        return -ENOTSUP;
    if (len == 0)
        return 0;
    dmahal__vhook_dev_access(d, la, len, write);
    return d->p->ops->dev_access(d, la, buf, len, write);
}

int dmahal_dev_read(struct dmahal_device *d, dmahal_addr_t la, void *dst, size_t len)
{
    return dev_access(d, la, dst, len, false);
}

int dmahal_dev_write(struct dmahal_device *d, dmahal_addr_t la, const void *src, size_t len)
{
    return dev_access(d, la, (void *)src, len, true);
}

int dmahal_dev_consumed(struct dmahal_device *d, dmahal_addr_t la, size_t len)
{
    if (!d || la + len < la)
        return -EINVAL;
    if (len)
        dmahal__vhook_dev_consumed(d, la, len);
    return 0;
}
