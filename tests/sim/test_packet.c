/* SPDX-License-Identifier: MIT */
/*
 * test_packet.c - the packet-DMA example (examples/packet) on every simulated machine, in
 * each of its three ways to map, and what a wrong description does to it.
 */
#include "packet/packet.c" /* the example itself, statics included */

#include <errno.h>

#include "test.h"

static void all_modes(const char *spec, const char *device, unsigned bits)
{
    CHECK_OK(packet_run(spec, device, bits, PACKET_GET_LIST));
    CHECK_OK(packet_run(spec, device, bits, PACKET_BUILD_LIST));
    CHECK_OK(packet_run(spec, device, bits, PACKET_CHANNEL));
}

TEST(packet_on_sim)
{
    all_modes("sim", "edu", 28);
}

TEST(packet_with_iommu)
{
    all_modes("sim:iommu=on", "edu", 28);
}

TEST(packet_non_coherent)
{
    all_modes("sim:coherent=no", "edu", 28);
}

TEST(packet_non_coherent_with_iommu)
{
    all_modes("sim:iommu=on,coherent=no", "edu", 28);
}

/* Most RAM above 4 GiB, no IOMMU: every buffer is bounced, for 32 bits and for 28. */
TEST(packet_bounced_for_32_bits)
{
    all_modes("sim:ram=0-1G,4G-64G", "edu:dma_mask=0xffffffff", 32);
}

TEST(packet_bounced_for_28_bits)
{
    all_modes("sim:ram=0-1G,4G-64G", "edu", 28);
}

/* RAM only above 4 GiB: bounce pages for a 28-bit device cannot be had; with an IOMMU they
 * are not needed. */
TEST(packet_without_low_memory)
{
    CHECK_ERR(packet_run("sim:ram=4G-8G", "edu", 28, PACKET_GET_LIST), -ENOMEM);
    all_modes("sim:ram=4G-8G,iommu=on", "edu", 28);
}

/* The same driver describing edu as a 64-bit device: the lists hold addresses edu cannot
 * drive, it drops their high bits, and the data does not come back. The check is real. */
TEST(packet_wrong_description_breaks_the_data)
{
    CHECK_ERR(packet_run("sim", "edu", 64, PACKET_GET_LIST), -EIO);
    CHECK_ERR(packet_run("sim", "edu", 64, PACKET_CHANNEL), -EIO);
}

TEST(packet_refuses_bad_arguments)
{
    CHECK_ERR(packet_run("sim", "edu", 28, (enum packet_mode)0), -EINVAL);
    CHECK_ERR(packet_run("sim", "nosuch", 28, PACKET_GET_LIST), -ENOENT);
    CHECK_ERR(packet_run("nosuch", "edu", 28, PACKET_GET_LIST), -EINVAL);
}
