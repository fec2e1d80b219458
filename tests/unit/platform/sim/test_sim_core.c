/* SPDX-License-Identifier: MIT */
/* test_sim_core.c - the simulated RAM is left out of core files (MADV_DONTDUMP). */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "test.h"

/* The VmFlags of the mapping of this process that holds @p va, from /proc/self/smaps. */
static void vm_flags_of(const void *va, char *out, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;

    CHECK(f != NULL);
    out[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;

        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = (uintptr_t)va >= lo && (uintptr_t)va < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, size, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

TEST(sim_ram_is_not_dumped)
{
    struct dmahal_platform *p;
    char flags[512];
    void *va;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_sim_contig_alloc(p, 4096, &va));
    vm_flags_of(va, flags, sizeof(flags));
    if (!flags[0])
        TEST_SKIP("no VmFlags in /proc/self/smaps here");
    CHECK(strstr(flags, " dd") != NULL);
    CHECK_OK(dmahal_sim_contig_free(p, va));
    dmahal_platform_close(p);
}
