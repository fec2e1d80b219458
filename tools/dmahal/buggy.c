/* SPDX-License-Identifier: MIT */
/*
 * buggy.c - the driver with bugs that `dmahal demo` runs under the verifier: how it loads.
 *
 * It is a file of its own with global functions, as a driver is a module with symbols, so
 * that the verifier's allocation backtraces (dmahal_dump's "allocated by:") can name the
 * function that allocated a leaked buffer. The mistakes themselves are made in demo.c,
 * where the demo tells them.
 */
#include "tool.h"

#include <string.h>

int tool_buggy_load(struct dmahal_device *d, const struct tool_buggy_sizes *sz,
                    struct tool_buggy *bd)
{
    struct dmahal_desc desc = {.addr_bits = sz->addr_bits};
    int rc;

    memset(bd, 0, sizeof(*bd));
    rc = dmahal_adapter_get(d, &desc, &bd->a);
    if (rc)
        return rc;
    rc = dmahal_common_alloc(bd->a, sz->ring, 0, &bd->ring);
    if (rc)
        goto err_put;
    rc = dmahal_common_alloc(bd->a, sz->status, 0, &bd->status);
    if (rc)
        goto err_ring;
    rc = dmahal_common_alloc(bd->a, sz->table, 0, &bd->table);
    if (rc)
        goto err_status;
    return 0;

err_status:
    dmahal_common_free(bd->a, &bd->status);
err_ring:
    dmahal_common_free(bd->a, &bd->ring);
err_put:
    dmahal_adapter_put(bd->a);
    memset(bd, 0, sizeof(*bd));
    return rc;
}
