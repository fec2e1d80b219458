/* SPDX-License-Identifier: MIT */
/*
 * graveyard.c - put adapters: leaks reported at put, and the adapter's struct kept a while so that
 * a later use of it is caught; the ops table that wraps an adapter.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- put adapters ---------------------------------------------------------------------- */

static void report_dead(struct dmahal_adapter *a, const char *what)
{
    struct dmahal__vadapter *va = a->verify;
    struct verify_report r = {.kind = DMAHAL_REPORT_BAD_ADAPTER,
                              .extra_bt = va->put_bt,
                              .extra_what = "the adapter was put by"};

    snprintf(r.msg, sizeof(r.msg), "%s on adapter #%llu (device %s), which was put already", what,
             (unsigned long long)va->id, va->dev_name);
    dmahal__verify_emit(va->v, &r);
}

static int dead_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                             struct dmahal_buf *out)
{
    (void)len;
    (void)flags;
    (void)out;
    report_dead(a, "dmahal_common_alloc");
    return -EINVAL;
}

static int dead_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf)
{
    (void)buf;
    report_dead(a, "dmahal_common_free");
    return -EINVAL;
}

static void dead_put(struct dmahal_adapter *a)
{
    report_dead(a, "dmahal_adapter_put");
}

static int dead_map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                    enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out)
{
    (void)iov, (void)iovcnt, (void)dir, (void)flags, (void)out;
    report_dead(a, "dmahal_map");
    return -EINVAL;
}

static int dead_map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                          enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx)
{
    (void)iov, (void)iovcnt, (void)dir, (void)flags, (void)fn, (void)ctx;
    report_dead(a, "dmahal_map_async");
    return -EINVAL;
}

static int dead_unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    (void)sgl;
    report_dead(a, "dmahal_unmap");
    return -EINVAL;
}

static int dead_sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    (void)sgl;
    report_dead(a, "dmahal_sync_for_device");
    return -EINVAL;
}

static int dead_sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl)
{
    (void)sgl;
    report_dead(a, "dmahal_sync_for_cpu");
    return -EINVAL;
}

static int dead_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                            size_t len, enum dmahal_dir dir)
{
    (void)b, (void)off, (void)len, (void)dir;
    report_dead(a, "dmahal_common_sync");
    return -EINVAL;
}

static const struct dmahal_dma_ops dead_ops = {
    .common_alloc = dead_common_alloc,
    .common_free = dead_common_free,
    .put = dead_put,
    .map = dead_map,
    .map_async = dead_map_async,
    .unmap = dead_unmap,
    .sync_for_device = dead_sync_for_device,
    .sync_for_cpu = dead_sync_for_cpu,
    .common_sync = dead_common_sync,
};

/* Drops every record of @a: live ones are leaks; quarantined ones just leave; buffers kept
 * for reuse go back. */
static void forget_adapter(struct dmahal__verifier *v, struct dmahal_adapter *a)
{
    struct verify_rec **q = &v->q_head;

    dmahal__verify_ready_drain(v, a);
    v->q_tail = NULL;
    while (*q) {
        if ((*q)->a == a) {
            v->q_n--;
            v->q_bytes -= (*q)->under.len;
            dmahal__verify_check_freed(v, *q, "when its adapter was put");
            *q = (*q)->qnext;
        } else {
            v->q_tail = *q;
            q = &(*q)->qnext;
        }
    }
    for (struct verify_rec *rec = v->recs, *next; rec; rec = next) {
        next = rec->next;
        if (rec->a != a)
            continue;
        if (rec->state == VERIFY_LIVE) {
            struct verify_report r = {
                .kind = DMAHAL_REPORT_LEAK, .la = rec->user.la, .len = rec->user.len, .rec = rec};
            char name[160];

            dmahal__verify_rec_name(rec, name, sizeof(name));
            snprintf(r.msg, sizeof(r.msg), "leak: adapter put with %s still allocated", name);
            dmahal__verify_check_guards(v, rec, "at adapter put");
            dmahal__verify_emit(v, &r);
        }
        dmahal__verify_rec_unindex(v, rec);
        free(rec);
    }
}

static void verify_put(struct dmahal_adapter *a)
{
    struct dmahal__vadapter *va = a->verify;
    struct dmahal__verifier *v = va->v;
    struct dmahal__vadapter *old = NULL;
    struct verify_bt_raw bt;

    verify_bt_capture(v, &bt);
    dmahal__lock_take(&v->lock);
    forget_adapter(v, a);
    dmahal__verify_stream_forget_adapter(v, a);
    dmahal__lock_drop(&v->lock);
    /* Its memory goes with it (the common allocator frees what is left); the struct stays,
     * so a later call through it is reported rather than a use of freed memory. */
    dmahal__adapter_release(a);
    va->dead = true;
    a->ops = &dead_ops;
    dmahal__lock_take(&v->lock);
    va->put_bt = dmahal__verify_bt_intern(v, &bt);
    va->grave_next = v->graveyard;
    v->graveyard = va;
    if (++v->ngrave > VERIFY_GRAVEYARD) {
        struct dmahal__vadapter **pp = &v->graveyard;

        while ((*pp)->grave_next)
            pp = &(*pp)->grave_next;
        old = *pp;
        *pp = NULL;
        v->ngrave--;
    }
    dmahal__lock_drop(&v->lock);
    if (old) {
        free(old->adapter);
        free(old);
    }
}

const struct dmahal_dma_ops dmahal__verify_ops = {
    .common_alloc = dmahal__verify_common_alloc,
    .common_free = dmahal__verify_common_free,
    .put = verify_put,
    .map = dmahal__verify_map,
    .map_async = dmahal__verify_map_async,
    .unmap = dmahal__verify_unmap,
    .sync_for_device = dmahal__verify_sync_for_device,
    .sync_for_cpu = dmahal__verify_sync_for_cpu,
    .common_sync = dmahal__verify_common_sync,
};
