/* SPDX-License-Identifier: MIT */
/* main.c - runs the packet-DMA example: `packet [PLATFORM [DEVICE BITS [MODE]]]`, e.g.
 * `packet sim:iommu=on edu 28 channel`. Without a mode, every mode runs. */
#include <dmahal/dmahal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        enum packet_mode mode;
    } modes[] = {
        {"get", PACKET_GET_LIST}, {"build", PACKET_BUILD_LIST}, {"channel", PACKET_CHANNEL}};
    const char *spec = argc > 1 ? argv[1] : NULL, *dev = argc > 2 ? argv[2] : "edu";
    unsigned bits = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 28;
    int ran = 0;

    if (argc > 5 || argc == 3) {
        fprintf(stderr, "usage: %s [PLATFORM [DEVICE BITS [get|build|channel]]]\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        int rc;

        if (argc > 4 && strcmp(argv[4], modes[i].name) != 0)
            continue;
        ran++;
        rc = packet_run(spec, dev, bits, modes[i].mode);
        printf("packet %s %s %u-bit %s: %s\n", spec ? spec : "(default)", dev, bits, modes[i].name,
               rc ? dmahal_strerror(rc) : "ok");
        if (rc)
            return 1;
    }
    if (!ran) {
        fprintf(stderr, "packet: unknown mode %s\n", argv[4]);
        return 2;
    }
    return 0;
}
