/* SPDX-License-Identifier: MIT */
/*
 * verify_absent.c - the verifier's public functions in a library built without it
 * (DMAHAL_VERIFIER=OFF): it cannot be turned on, and there is nothing to report.
 */
#include "core/internal.h"

#include <errno.h>

#ifndef DMAHAL_VERIFIER

int dmahal_verify_enable(struct dmahal_platform *p, unsigned flags, dmahal_report_fn fn, void *ctx)
{
    (void)p, (void)flags, (void)fn, (void)ctx;
    return -ENOTSUP;
}

int dmahal_verify_enabled(const struct dmahal_platform *p)
{
    return p ? 0 : -EINVAL;
}

int dmahal_verify_check(struct dmahal_platform *p)
{
    return p ? -ENOTSUP : -EINVAL;
}

uint64_t dmahal_verify_count(const struct dmahal_platform *p, int kind)
{
    (void)p, (void)kind;
    return 0;
}

int dmahal_verify_report(const struct dmahal_platform *p, size_t index, struct dmahal_report *out)
{
    (void)index;
    if (!out)
        return -EINVAL;
    dmahal__struct_clear(out, sizeof(*out), DMAHAL__REPORT_V1);
    return p ? -ENOENT : -EINVAL;
}

int dmahal_verify_free_mismatch(struct dmahal_adapter *a, const struct dmahal_buf *b,
                                const char *what)
{
    if (!a || !b || !what)
        return -EINVAL;
    return dmahal__common_live(a, b) ? 0 : -ENOENT;
}

uint64_t dmahal_verify_repeats(const struct dmahal_platform *p, int kind)
{
    (void)p, (void)kind;
    return 0;
}

void dmahal_verify_clear(struct dmahal_platform *p)
{
    (void)p;
}

#endif /* !DMAHAL_VERIFIER */
