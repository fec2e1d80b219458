/* SPDX-License-Identifier: MIT */
/* test_reg.c - registered memory: maps inside it are translations, the rules of overlap and
 * partial ranges, unregister while mapped, and the device's reach before and after. */
#include <dmahal/dmahal.h>

#include <string.h>
#include <sys/uio.h>

#include "rig.h"

static struct dmahal_sgl *map1(struct rig *r, void *va, size_t len, enum dmahal_dir dir)
{
    struct iovec v = {va, len};
    struct dmahal_sgl *sgl = NULL;

    CHECK_OK(dmahal_map(r->a, &v, 1, dir, 0, &sgl));
    return sgl;
}

/* A map inside a registration is its address plus the offset, every time, and the device
 * reads and writes the memory through it. */
static void maps_are_translations(const char *spec)
{
    struct dmahal_desc desc = {.addr_bits = 64};
    struct rig r;
    unsigned char *mem = pages(64), in[300];
    struct dmahal_sgl *s1, *s2, *s3;
    struct dmahal_reg_info info;

    rig_open(&r, spec, &desc);
    CHECK_OK(dmahal_register(r.a, mem, 64 * 4096));
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.regions, 1);
    CHECK_EQ_U(info.bytes, 64 * 4096);
    s1 = map1(&r, mem + 100, 300, DMAHAL_TO_DEVICE);
    s2 = map1(&r, mem + 5 * 4096 + 7, 9000, DMAHAL_FROM_DEVICE);
    s3 = map1(&r, mem + 100, 300, DMAHAL_TO_DEVICE);
    CHECK_EQ(s1->nseg, 1);
    CHECK_EQ_U(s3->seg[0].la, s1->seg[0].la);
    CHECK_EQ_U(s2->seg[0].la - s1->seg[0].la, 5 * 4096 + 7 - 100);
    CHECK_EQ(s2->nseg, 1);
    CHECK_EQ(s2->seg[0].len, 9000);
    fill(mem + 100, 300, 3);
    CHECK_OK(dmahal_dev_read(r.d, s1->seg[0].la, in, 300));
    CHECK(memcmp(in, mem + 100, 300) == 0);
    fill(in, 300, 9);
    CHECK_OK(dmahal_dev_write(r.d, s2->seg[0].la + 8000, in, 300));
    CHECK(memcmp(mem + 5 * 4096 + 7 + 8000, in, 300) == 0);
    /* Unregister is refused while any map inside is live. */
    CHECK_ERR(dmahal_unregister(r.a, mem, 64 * 4096), -EBUSY);
    CHECK_OK(dmahal_unmap(r.a, s1));
    CHECK_OK(dmahal_unmap(r.a, s2));
    CHECK_ERR(dmahal_unregister(r.a, mem, 64 * 4096), -EBUSY);
    CHECK_OK(dmahal_unmap(r.a, s3));
    CHECK_OK(dmahal_unregister(r.a, mem, 64 * 4096));
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.regions, 0);
    /* Mapped the ordinary way now, and still correct. */
    s1 = map1(&r, mem + 100, 300, DMAHAL_TO_DEVICE);
    CHECK_OK(dmahal_dev_read(r.d, s1->seg[0].la, in, 300));
    CHECK(memcmp(in, mem + 100, 300) == 0);
    CHECK_OK(dmahal_unmap(r.a, s1));
    rig_close(&r);
    free(mem);
}

TEST(reg_maps_are_translations_iommu)
{
    maps_are_translations("sim:iommu=on");
}

TEST(reg_maps_are_translations_pinned)
{
    maps_are_translations("sim");
}

/* Behind the IOMMU the device reaches registered memory until unregister, and not after. */
TEST(reg_unregister_takes_memory_out_of_reach)
{
    struct rig r;
    unsigned char *mem = pages(4), x[8];
    struct dmahal_sgl *s;
    dmahal_addr_t la;

    rig_open(&r, "sim:iommu=on", NULL);
    CHECK_OK(dmahal_register(r.a, mem, 4 * 4096));
    s = map1(&r, mem, 4096, DMAHAL_BIDIRECTIONAL);
    la = s->seg[0].la;
    CHECK_OK(dmahal_unmap(r.a, s));
    CHECK_OK(dmahal_dev_read(r.d, la, x, sizeof(x))); /* registered: still reachable */
    CHECK_OK(dmahal_unregister(r.a, mem, 4 * 4096));
    CHECK_ERR(dmahal_dev_read(r.d, la, x, sizeof(x)), -EFAULT);
    CHECK_ERR(dmahal_dev_read(r.d, la + 3 * 4096, x, sizeof(x)), -EFAULT);
    rig_close(&r);
    free(mem);
}

/* Overlap, partial and unknown ranges, and pieces that leave a registration. */
TEST(reg_overlap_and_partial_rules)
{
    struct rig r;
    unsigned char *mem = pages(1024); /* spans 2 MiB units: direct and per-page entries */
    struct dmahal_sgl *s, *inside;
    struct iovec two[2];
    struct dmahal_desc desc = {.max_segments = 4};

    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_ERR(dmahal_register(NULL, mem, 4096), -EINVAL);
    CHECK_ERR(dmahal_register(r.a, NULL, 4096), -EINVAL);
    CHECK_ERR(dmahal_register(r.a, mem, 0), -EINVAL);
    CHECK_ERR(dmahal_register(r.a, mem, (size_t)2 << 40), -E2BIG);
    CHECK_OK(dmahal_register(r.a, mem + 100, 8000)); /* pages 0 and 1 */
    CHECK_ERR(dmahal_register(r.a, mem + 4096, 4096), -EEXIST);
    CHECK_ERR(dmahal_register(r.a, mem + 8100, 100), -EEXIST); /* page 1, past the bytes */
    CHECK_OK(dmahal_register(r.a, mem + 2 * 4096, 1000 * 4096));
    CHECK_ERR(dmahal_register(r.a, mem, 1024 * 4096), -EEXIST);
    /* Unregister names a whole registration. */
    CHECK_ERR(dmahal_unregister(r.a, mem + 100, 4000), -EINVAL);
    CHECK_ERR(dmahal_unregister(r.a, mem + 200, 8000 - 100), -EINVAL);
    CHECK_ERR(dmahal_unregister(r.a, mem + 1010 * 4096, 4096), -ENOENT);
    CHECK_ERR(dmahal_unregister(NULL, mem, 4096), -EINVAL);
    /* A piece inside the registration's pages but past its bytes, and one across two
     * registrations: mapped the ordinary way (an IOVA of their own). */
    inside = map1(&r, mem + 100, 10, DMAHAL_TO_DEVICE);
    s = map1(&r, mem + 50, 100, DMAHAL_TO_DEVICE);
    CHECK_NE_U(s->seg[0].la & ~0xfffull, inside->seg[0].la & ~0xfffull);
    CHECK_OK(dmahal_unmap(r.a, s));
    s = map1(&r, mem + 8000, 200, DMAHAL_TO_DEVICE);
    CHECK_NE_U(s->seg[0].la - inside->seg[0].la, 8000 - 100);
    CHECK_OK(dmahal_unmap(r.a, s));
    /* Several pieces, each inside a registration. */
    two[0] = (struct iovec){mem + 200, 50};
    two[1] = (struct iovec){mem + 600 * 4096, 50};
    CHECK_OK(dmahal_map(r.a, two, 2, DMAHAL_TO_DEVICE, 0, &s));
    CHECK_ERR(dmahal_unregister(r.a, mem + 2 * 4096, 1000 * 4096), -EBUSY);
    CHECK_OK(dmahal_unmap(r.a, s));
    CHECK_OK(dmahal_unregister(r.a, mem + 2 * 4096, 1000 * 4096));
    CHECK_OK(dmahal_unmap(r.a, inside));
    CHECK_OK(dmahal_unregister(r.a, mem + 100, 8000));
    CHECK_ERR(dmahal_unregister(r.a, mem + 100, 8000), -ENOENT);
    /* The same memory registers again; the adapter's put unmaps what is left. */
    CHECK_OK(dmahal_register(r.a, mem, 1024 * 4096));
    rig_close(&r);
    free(mem);
}

TEST(reg_info_bad_arguments)
{
    struct rig r;
    struct dmahal_reg_info info;

    rig_open(&r, "sim", NULL);
    CHECK_ERR(dmahal_register_info(NULL, &info), -EINVAL);
    CHECK_EQ(info.mappings_avail, -1);
    CHECK_ERR(dmahal_register_info(r.a, NULL), -EINVAL);
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.regions, 0);
    rig_close(&r);
}

/* Registrations count against the machine's mapping limit, and say what is left. */
TEST(reg_counts_against_the_mapping_limit)
{
    struct rig r;
    unsigned char *mem = pages(8);
    struct dmahal_reg_info info;

    rig_open(&r, "sim:iommu=on,dma_entries=2", NULL);
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.mappings_avail, 2);
    CHECK_OK(dmahal_register(r.a, mem, 4096));
    CHECK_OK(dmahal_register(r.a, mem + 4096, 4096));
    CHECK_OK(dmahal_register_info(r.a, &info));
    CHECK_EQ(info.mappings_avail, 0);
    CHECK_ERR(dmahal_register(r.a, mem + 8192, 4096), -ENOSPC);
    CHECK_OK(dmahal_unregister(r.a, mem, 4096));
    CHECK_OK(dmahal_register(r.a, mem + 8192, 4096));
    rig_close(&r);
    free(mem);
}
