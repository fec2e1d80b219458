/* SPDX-License-Identifier: MIT */
/* registry.c - the platforms this build has, by the name a spec string starts with. */
#include "core/platform_ops.h"

#include <string.h>

static const struct dmahal__platform_ops *const platforms[] = {
    &dmahal__sim_ops,
#ifdef DMAHAL_HAVE_VFIO
    &dmahal__vfio_ops,
#endif
#ifdef DMAHAL_HAVE_NOIOMMU
    &dmahal__noiommu_ops,
#endif
};

const struct dmahal__platform_ops *dmahal__platform_find(const char *name)
{
    for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++)
        if (strcmp(platforms[i]->name, name) == 0)
            return platforms[i];
    return NULL;
}
