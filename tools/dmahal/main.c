/* SPDX-License-Identifier: MIT */
/*
 * main.c - the dmahal command: parses the command line and runs one command.
 *
 *   dmahal info [--platform SPEC]
 *   dmahal demo [--platform SPEC]
 *   dmahal devices [--platform SPEC]
 *   dmahal bind BDF [DRIVER]
 *   dmahal unbind BDF
 *   dmahal dma --pid PID | --core CORE PROGRAM [ADAPTER [FLAGS]]
 *   dmahal help | --help | --version
 */
#include "tool.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: dmahal COMMAND [--platform SPEC]\n"
               "\n"
               "commands:\n"
               "  info      the platform's configuration, the device models, the version\n"
               "  demo      common-buffer DMA the wrong way and the right way, then the DMA\n"
               "            verifier catching a driver's bugs, on the simulated machine with an\n"
               "            edu device (28-bit DMA); without --platform it runs on \"sim\" and\n"
               "            on \"sim:iommu=on\"; with --platform noiommu[:...] it tells the same\n"
               "            story on a real edu without an IOMMU (root, hugepages, lowmem=)\n"
               "  devices   the devices the platform sees (default: vfio, every PCI device), with\n"
               "            IDs, class, IOMMU group, driver, and whether dmahal can open each\n"
               "            (if not, the fix)\n"
               "  bind BDF [DRIVER]\n"
               "            binds a PCI device to DRIVER (default vfio-pci) through sysfs\n"
               "            driver_override; refuses when its IOMMU group has devices on kernel\n"
               "            drivers\n"
               "  unbind BDF\n"
               "            unbinds a PCI device from its driver and clears the override\n"
               "  dma       the !dma view of another process: dma --pid PID, or of a core\n"
               "            file: dma --core CORE PROGRAM; then ADAPTER (0: all, an address\n"
               "            or #ID) and FLAGS (0x1 map registers, 0x2 common buffers, 0x4\n"
               "            scatter/gather lists, 0x8 descriptions), as gdb's dma command\n"
               "  help      this text (also --help); --version prints the version\n"
               "\n"
               "SPEC: \"sim[:key=val,...]\" with ram=RANGES (default 0-1G,4G-64G), iommu=on|off,\n"
               "      coherent=yes|no, page=SIZE; or \"vfio\"; or \"noiommu[:lowmem=START+SIZE,\n"
               "      hugepages=on|off]\" (docs/noiommu.md). Without --platform, info uses\n"
               "      $DMAHAL_PLATFORM, else \"sim\".\n"
               "\n"
               "exit status: 0 success, 1 failure, 2 wrong usage\n");
}

static int misuse(const char *fmt, const char *arg)
{
    fputs("dmahal: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    usage(stderr);
    return TOOL_EXIT_USAGE;
}

/* Reads the options after the command: only --platform SPEC (or --platform=SPEC), once. */
static int parse_options(int argc, char **argv, const char **spec)
{
    *spec = NULL;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *val;

        if (strcmp(arg, "--platform") == 0) {
            if (i + 1 == argc)
                return misuse("option --platform needs a value%s", "");
            val = argv[++i];
        } else if (strncmp(arg, "--platform=", 11) == 0) {
            val = arg + 11;
        } else {
            return misuse("unknown option '%s'", arg);
        }
        if (*spec)
            return misuse("option --platform given twice%s", "");
        if (*val == '\0')
            return misuse("option --platform needs a value%s", "");
        *spec = val;
    }
    return TOOL_EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    const char *spec;
    int rc;

    if (!cmd)
        return misuse("no command given%s", "");
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2)
            return misuse("'%s' takes no arguments", cmd);
        usage(stdout);
        return TOOL_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("dmahal %s\n", dmahal_version());
        return TOOL_EXIT_OK;
    }
    if (strcmp(cmd, "bind") == 0) {
        if (argc < 3 || argc > 4)
            return misuse("usage: dmahal bind BDF [DRIVER]%s", "");
        return tool_bind(argv[2], argc == 4 ? argv[3] : NULL);
    }
    if (strcmp(cmd, "unbind") == 0) {
        if (argc != 3)
            return misuse("usage: dmahal unbind BDF%s", "");
        return tool_unbind(argv[2]);
    }
    if (strcmp(cmd, "devices") == 0) {
        rc = parse_options(argc, argv, &spec);
        return rc != TOOL_EXIT_OK ? rc : tool_devices(spec);
    }
    if (strcmp(cmd, "dma") == 0)
        return tool_dma(argc - 2, argv + 2);
    if (strcmp(cmd, "info") != 0 && strcmp(cmd, "demo") != 0)
        return misuse("unknown command '%s'", cmd);
    rc = parse_options(argc, argv, &spec);
    if (rc != TOOL_EXIT_OK)
        return rc;
    return strcmp(cmd, "info") == 0 ? tool_info(spec) : tool_demo(spec);
}
