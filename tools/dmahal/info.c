/* SPDX-License-Identifier: MIT */
/*
 * info.c - `dmahal info`: what a platform is made of, and what the tool can run on it.
 */
#include "tool.h"

#include <dmahal/device.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The spec dmahal_platform_open() resolves @p spec to, for messages. */
static const char *spec_shown(const char *spec)
{
    if (!spec || !*spec)
        spec = getenv("DMAHAL_PLATFORM");
    return spec && *spec ? spec : "sim";
}

int tool_platform_open(const char *spec, struct dmahal_platform **out)
{
    int rc = dmahal_platform_open(spec, out);

    if (rc) {
        fprintf(stderr, "dmahal: cannot open platform \"%s\": %s (dmahal_platform_open: %d)\n",
                spec_shown(spec), dmahal_strerror(rc), rc);
        if (rc == -EINVAL)
            fprintf(stderr, "dmahal: see 'dmahal help' for the forms SPEC takes\n");
    }
    return rc;
}

int tool_dump_indented(struct dmahal_platform *p, unsigned flags, const char *indent,
                       const char *only)
{
    char *text = NULL, *line, *save = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    int rc;

    if (!mem)
        return -ENOMEM;
    rc = dmahal_dump(p, mem, flags);
    if (fclose(mem) != 0 && rc == 0)
        rc = -ENOMEM;
    /* Print what was written even after a failure: it is the best view there is. */
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (!only || strncmp(line, only, strlen(only)) == 0)
            printf("%s%s\n", indent, line);
    free(text);
    return rc;
}

int tool_info(const char *spec)
{
    struct dmahal_platform *p;
    const struct dmahal_model *m;
    int rc;

    printf("dmahal %s\n\n", dmahal_version());
    if (tool_platform_open(spec, &p))
        return TOOL_EXIT_FAIL;
    printf("platform \"%s\": %s, page size %zu\n", spec_shown(spec),
           dmahal_platform_has_iommu(p) == 1 ? "IOMMU" : "no IOMMU", dmahal_platform_page_size(p));
    rc = tool_dump_indented(p, DMAHAL_DUMP_PLATFORM | DMAHAL_DUMP_FAULTS, "  ", NULL);
    if (rc) {
        fprintf(stderr, "dmahal: dmahal_dump: %s\n", dmahal_strerror(rc));
        dmahal_platform_close(p);
        return TOOL_EXIT_FAIL;
    }
    printf("\ndevice models (open one with dmahal_device_open(p, NAME) on sim):\n");
    for (size_t i = 0; (m = dmahal_model_at(i)) != NULL; i++)
        printf("  %-8s %s\n", m->name, m->summary);
    if (strcmp(dmahal_platform_name(p), "sim") != 0)
        printf("  (models run on the sim platform only; \"%s\" has real devices)\n",
               dmahal_platform_name(p));
    dmahal_platform_close(p);
    return TOOL_EXIT_OK;
}
