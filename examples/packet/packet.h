/* SPDX-License-Identifier: MIT */
/*
 * packet.h - a packet-DMA driver written the Windows way (wdm.h), for QEMU's edu device.
 */
#ifndef DMAHAL_EXAMPLE_PACKET_H
#define DMAHAL_EXAMPLE_PACKET_H

/** How the driver maps its transfers. */
enum packet_mode {
    PACKET_GET_LIST = 1,   /**< GetScatterGatherList / PutScatterGatherList */
    PACKET_BUILD_LIST = 2, /**< BuildScatterGatherList into a buffer allocated at start */
    PACKET_CHANNEL = 3,    /**< AllocateAdapterChannel, MapTransfer, FlushAdapterBuffers */
};

/**
 * Runs the driver on a platform: it describes edu to IoGetDmaAdapter as a scatter/gather
 * bus master of @p addr_bits, then, over several rounds, sends a packet made of two buffers
 * (an MDL chain, at odd offsets) into the device's DMA buffer one element at a time, has
 * the device write it back into a third buffer, and checks that the bytes came back.
 *
 * @param platform_spec  as dmahal_platform_open() takes it; NULL for the default.
 * @param device         the edu to open ("edu", "edu:dma_mask=0xffffffff", ...).
 * @param addr_bits      the width the edu's DMA engine drives: 28 for QEMU's default mask.
 * @param mode           which of Windows' packet-DMA interfaces the driver uses.
 * @return 0; a negative errno from opening the platform or device; -ENODEV if the device is
 *         not an edu; -ENOMEM when the adapter or a buffer cannot be had; -EINVAL for a bad
 *         mode; -EIO if a transfer failed or the data came back different.
 */
int packet_run(const char *platform_spec, const char *device, unsigned addr_bits,
               enum packet_mode mode);

#endif /* DMAHAL_EXAMPLE_PACKET_H */
