/* SPDX-License-Identifier: MIT */
/*
 * tool.h - what the dmahal command's files share. Not a public header.
 */
#ifndef DMAHAL_TOOL_H
#define DMAHAL_TOOL_H

#include <dmahal/dmahal.h>

/* Exit codes: 0 success, 1 the command ran and failed, 2 the command line was wrong. */
#define TOOL_EXIT_OK    0
#define TOOL_EXIT_FAIL  1
#define TOOL_EXIT_USAGE 2

/* The platforms `dmahal demo` runs when no --platform is given: without, then with IOMMU. */
#define TOOL_DEMO_SPECS                                                                            \
    {                                                                                              \
        "sim", "sim:iommu=on"                                                                      \
    }

/**
 * Opens a platform for a command; on failure prints why on stderr, naming the error with
 * dmahal_strerror().
 * @param spec  as dmahal_platform_open() takes it (NULL: $DMAHAL_PLATFORM, else "sim").
 * @return 0, or the negative errno of dmahal_platform_open().
 */
int tool_platform_open(const char *spec, struct dmahal_platform **out);

/**
 * Writes dmahal_dump()'s view of @p p to stdout, each line prefixed with @p indent; with
 * @p only not NULL, just the lines that start with it.
 * @return 0, or the negative errno of dmahal_dump() (-ENOMEM if no buffer could be made).
 */
int tool_dump_indented(struct dmahal_platform *p, unsigned flags, const char *indent,
                       const char *only);

/** `dmahal devices`: what the platform (NULL: $DMAHAL_PLATFORM, else vfio) can see and open. */
int tool_devices(const char *platform);

/** `dmahal bind BDF [DRIVER]` (default vfio-pci), through sysfs driver_override. */
int tool_bind(const char *bdf, const char *driver);

/** `dmahal unbind BDF`: unbinds the device and clears its driver_override. */
int tool_unbind(const char *bdf);

/**
 * `dmahal dma`: the !dma view of another process (--pid PID) or of a core file (--core CORE
 * PROGRAM), through gdb and tools/gdb/dmahal.py.
 * @param argv  what follows "dma" on the command line, @p argc entries.
 * @return an exit code: gdb's failure or a missing extension is TOOL_EXIT_FAIL.
 */
int tool_dma(int argc, char **argv);

/** `dmahal info`: the platform's configuration and the device models. Returns an exit code. */
int tool_info(const char *spec);

/**
 * `dmahal demo`: the seed's story on the simulated machine.
 * @param spec  one platform to run on; NULL runs each of TOOL_DEMO_SPECS.
 * @return TOOL_EXIT_OK when the story unfolded as explained on every platform run (in
 *         Part 4: the verifier made exactly the reports expected, for the buffers concerned),
 *         TOOL_EXIT_FAIL otherwise.
 */
int tool_demo(const char *spec);

/** The buffers the demo's driver with bugs allocates, and its device's address width. */
struct tool_buggy_sizes {
    unsigned addr_bits;
    size_t ring, status, table;
};

/** The demo's driver with bugs, loaded: its adapter and its three common buffers. */
struct tool_buggy {
    struct dmahal_adapter *a;
    struct dmahal_buf ring, status, table;
};

/**
 * Loads the demo's driver with bugs (buggy.c): an adapter for @p d and three common buffers
 * of the sizes given. Global, so that the verifier's backtraces name it.
 * @param bd  receives the adapter and the buffers; cleared on failure.
 * @return 0, or the negative errno of dmahal_adapter_get() or dmahal_common_alloc().
 */
int tool_buggy_load(struct dmahal_device *d, const struct tool_buggy_sizes *sz,
                    struct tool_buggy *bd);

/**
 * `dmahal demo --platform noiommu[:...]`: the seed's story on a real edu device without an
 * IOMMU (tools/dmahal/demo_noiommu.c). Needs root, hugepages and a low reservation.
 * @return TOOL_EXIT_OK when the story unfolded as explained, else TOOL_EXIT_FAIL.
 */
int tool_demo_noiommu(const char *spec);

#endif /* DMAHAL_TOOL_H */
