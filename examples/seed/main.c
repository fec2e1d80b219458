/* SPDX-License-Identifier: MIT */
/* main.c - runs the seed walkthrough: `seed [PLATFORM]`, e.g. `seed sim:iommu=on`. */
#include <dmahal/dmahal.h>

#include <stdio.h>

#include "seed.h"

int main(int argc, char **argv)
{
    int rc;

    if (argc > 2) {
        fprintf(stderr, "usage: %s [PLATFORM]\n", argv[0]);
        return 2;
    }
    rc = seed_run(argc > 1 ? argv[1] : NULL);
    if (rc) {
        fprintf(stderr, "seed: %s\n", dmahal_strerror(rc));
        return 1;
    }
    return 0;
}
