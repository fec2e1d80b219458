/* SPDX-License-Identifier: MIT */
/*
 * seed.h - the seed's common-buffer walkthrough as a function, so that tests can run it.
 */
#ifndef DMAHAL_EXAMPLE_SEED_H
#define DMAHAL_EXAMPLE_SEED_H

/**
 * Runs the walkthrough on a platform: a driver written to Windows' DMA interface gets an
 * adapter for QEMU's edu device with IoGetDmaAdapter, allocates a common buffer through the
 * AllocateCommonBuffer pointer it saved, has the device copy a pattern in from the buffer
 * and back out into its other half by the buffer's logical address, checks the copy
 * through the virtual address, and frees everything.
 *
 * The device is "edu" on the sim platform, or what the environment variable
 * DMAHAL_SEED_DEVICE names (a PCI address on vfio).
 *
 * @param platform_spec  as dmahal_platform_open() takes it; NULL for the default.
 * @return 0; a negative errno from opening the platform or device; -ENODEV if the device
 *         is not an edu; -ENOMEM if IoGetDmaAdapter or AllocateCommonBuffer failed;
 *         -EIO if the device's copy differs from the pattern.
 */
int seed_run(const char *platform_spec);

#endif /* DMAHAL_EXAMPLE_SEED_H */
