/* SPDX-License-Identifier: MIT */
/* vrig.h - the test rig (rig.h) with the verifier on and its reports captured, for the
 * verifier's tests. */
#ifndef VRIG_H
#define VRIG_H

#include <dmahal/dmahal.h>

#include "rig.h"
#include "test.h"

struct vrig {
    union {
        struct rig rig; /* for rig.h's helpers */
        struct {
            struct dmahal_platform *p;
            struct dmahal_device *d;
            struct dmahal_adapter *a;
        };
    };
    int calls;                 /* reports the callback saw */
    struct dmahal_report last; /* the last one (message copied) */
    char msg[512];
};

static inline void vrig_fn(const struct dmahal_report *r, void *ctx)
{
    struct vrig *v = ctx;

    v->calls++;
    v->last = *r;
    snprintf(v->msg, sizeof(v->msg), "%s", r->message);
    v->last.message = v->msg;
}

/* Opens @spec with the verifier counting reports into the callback (quiet), then a device
 * and an adapter with @desc. */
static inline void vrig_open(struct vrig *r, const char *spec, const struct dmahal_desc *desc)
{
    memset(r, 0, sizeof(*r));
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    CHECK_OK(dmahal_verify_enable(r->p, DMAHAL_VERIFY_COUNT, vrig_fn, r));
    rig_attach(&r->rig, "edu", desc);
}

/* Asserts that exactly one report was made since the last clear, of @kind, and returns it. */
static inline const struct dmahal_report *vrig_one(struct vrig *r, int kind)
{
    CHECK_EQ(dmahal_verify_count(r->p, 0), 1);
    CHECK_EQ(dmahal_verify_count(r->p, kind), 1);
    CHECK_STR(dmahal_report_kind_name(r->last.kind), dmahal_report_kind_name(kind));
    dmahal_verify_clear(r->p);
    return &r->last;
}

#endif /* VRIG_H */
