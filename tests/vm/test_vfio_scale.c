/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_scale.c - vfio at scale, in the test guest: registered memory (mapped once, maps
 * inside it with no ioctl, the container's mapping count), and maps that never fail because
 * the kernel's dma_entry_limit is near. No case here may make the IOMMU fault.
 */
#include "vm.h"

#include <dmahal/dmahal.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "vfio_rig.h"

/* The 64-bit edu with an adapter of 1 MiB transfers and @flags. */
static void scale_open(struct erig *r, unsigned flags)
{
    struct dmahal_desc desc = {.size = sizeof(struct dmahal_desc),
                               .addr_bits = 64,
                               .max_transfer = 1 << 20,
                               .flags = flags};

    erig_open(r, "DMAHAL_VM_EDU64", 64, &desc);
}

static struct dmahal_sgl *map1(struct erig *r, void *va, size_t len, enum dmahal_dir dir)
{
    struct iovec v = {va, len};
    struct dmahal_sgl *sgl = NULL;

    CHECK_OK(dmahal_map(r->a, &v, 1, dir, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    return sgl;
}

/* A registered pool costs one of the container's mappings; maps inside it cost none, and the
 * device moves data through them both ways. */
TEST(registered_pool_maps_without_mappings)
{
    struct erig r;
    size_t len = 256 * 1024;
    unsigned char *pool =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char out[EDU_DMA_LIMIT];
    struct dmahal_reg_info before, after, mapped;
    struct dmahal_sgl *s[64];

    CHECK(pool != MAP_FAILED);
    scale_open(&r, 0);
    CHECK_OK(dmahal_register_info(r.a, &before));
    printf("mappings available before: %lld\n", (long long)before.mappings_avail);
    CHECK_GT(before.mappings_avail, 1000);
    CHECK_OK(dmahal_register(r.a, pool, len));
    CHECK_OK(dmahal_register_info(r.a, &after));
    CHECK_EQ(after.regions, 1);
    CHECK_EQ(after.mappings_avail, before.mappings_avail - 1);
    for (unsigned i = 0; i < 64; i++)
        s[i] = map1(&r, pool + i * 4096 + 16, EDU_DMA_LIMIT - 16, DMAHAL_BIDIRECTIONAL);
    CHECK_OK(dmahal_register_info(r.a, &mapped));
    CHECK_EQ(mapped.mappings_avail, after.mappings_avail);
    fill(pool + 5 * 4096 + 16, EDU_DMA_LIMIT - 16, 3);
    CHECK_OK(edu_dma(r.e, s[5]->seg[0].la, 0, EDU_DMA_LIMIT - 16, false)); /* RAM -> device */
    CHECK_OK(edu_dma(r.e, s[9]->seg[0].la, 0, EDU_DMA_LIMIT - 16, true));  /* device -> RAM */
    CHECK(memcmp(pool + 9 * 4096 + 16, pool + 5 * 4096 + 16, EDU_DMA_LIMIT - 16) == 0);
    memcpy(out, pool + 9 * 4096 + 16, EDU_DMA_LIMIT - 16);
    CHECK_ERR(dmahal_unregister(r.a, pool, len), -EBUSY);
    for (unsigned i = 0; i < 64; i++)
        CHECK_OK(dmahal_unmap(r.a, s[i]));
    CHECK_OK(dmahal_unregister(r.a, pool, len));
    CHECK_OK(dmahal_register_info(r.a, &after));
    CHECK_EQ(after.mappings_avail, before.mappings_avail);
    CHECK_EQ(after.regions, 0);
    erig_close(&r);
    munmap(pool, len);
}

/* 100,000 maps of 4 KiB live at once, past the kernel's default dma_entry_limit of 65,535:
 * every one succeeds (the last ones through spill memory), the device reads what each maps,
 * and every mapping comes back. Four maps per page, so that the guest's memory holds it. */
TEST(hundred_thousand_concurrent_maps)
{
    enum { MAPS = 100000, PAGES = MAPS / 4 };
    struct erig r;
    size_t len = (size_t)PAGES * 4096;
    unsigned char *mem =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct dmahal_sgl **s = calloc(MAPS, sizeof(*s));
    struct dmahal_reg_info before, during, after;
    unsigned char got[64];

    CHECK(mem != MAP_FAILED && s != NULL);
    for (size_t i = 0; i < len; i += 64)
        memset(mem + i, (int)(i / 4096 * 3 + 1), 64);
    scale_open(&r, 0);
    CHECK_OK(dmahal_register_info(r.a, &before));
    printf("mappings available: %lld\n", (long long)before.mappings_avail);
    for (unsigned i = 0; i < MAPS; i++) {
        struct iovec v = {mem + (size_t)(i % PAGES) * 4096, 4096};

        CHECK_OK(dmahal_map(r.a, &v, 1, DMAHAL_TO_DEVICE, 0, &s[i]));
    }
    CHECK_OK(dmahal_register_info(r.a, &during));
    printf("with %d maps live: %lld mappings available\n", MAPS, (long long)during.mappings_avail);
    CHECK_LT(during.mappings_avail, 300);
    for (unsigned i = 0; i < MAPS; i += 4999) {
        CHECK_OK(edu_dma(r.e, s[i]->seg[0].la, 0, 64, false));
        CHECK_OK(edu_read(r.e, 0, got, 64));
        CHECK_EQ(got[0], (unsigned char)((i % PAGES) * 3 + 1));
    }
    for (unsigned i = 0; i < MAPS; i++)
        CHECK_OK(dmahal_unmap(r.a, s[i]));
    CHECK_OK(dmahal_register_info(r.a, &after));
    CHECK_GE(after.mappings_avail, before.mappings_avail - 100); /* the spill chunks' */
    erig_close(&r);
    free(s);
    munmap(mem, len);
}

/* The kB that the mapping holding @va reports for @key in /proc/self/smaps, or -1. */
static long smaps_kb(const void *va, const char *key)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[256];
    bool in = false;
    long kb = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;

        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            if (in)
                break;
            in = (uintptr_t)va >= lo && (uintptr_t)va < hi;
            continue;
        }
        if (in && strncmp(line, key, strlen(key)) == 0)
            kb = strtol(line + strlen(key), NULL, 10);
    }
    fclose(f);
    return kb;
}

/* Large IOMMU pages: a lazily unmapped adapter's 2 MiB arena is one huge page (hugetlbfs or
 * transparent) at a 2 MiB-aligned IOVA, and the device reaches all of it. */
TEST(arenas_use_large_pages)
{
    struct erig r;
    struct dmahal_buf small, big;
    unsigned char buf[EDU_DMA_LIMIT];
    char *text = NULL;
    size_t tlen = 0;
    FILE *f;
    long thp, kps;

    scale_open(&r, DMAHAL_DESC_LAZY_UNMAP);
    f = open_memstream(&text, &tlen);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_PLATFORM));
    fclose(f);
    printf("%s", strstr(text, "iommu-page-sizes") ? strstr(text, "iommu-page-sizes") : "");
    if (!strstr(text, "iommu-page-sizes: 0x") ||
        !(strtoull(strstr(text, "iommu-page-sizes: ") + 18, NULL, 16) & (2u << 20))) {
        free(text);
        erig_close(&r);
        TEST_SKIP("the IOMMU reports no 2 MiB page");
    }
    free(text);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &small));
    CHECK_OK(dmahal_common_alloc(r.a, 64 * 1024, 0, &big));
    CHECK_EQ_U(small.la & ~(uint64_t)((2u << 20) - 1), big.la & ~(uint64_t)((2u << 20) - 1));
    thp = smaps_kb(small.va, "AnonHugePages:");
    kps = smaps_kb(small.va, "KernelPageSize:");
    printf("arena at va %p la %#" PRIx64 ": AnonHugePages %ld kB, KernelPageSize %ld kB\n",
           small.va, small.la, thp, kps);
    CHECK(thp >= 2048 || kps >= 2048);
    fill(buf, sizeof(buf), 11);
    CHECK_OK(edu_write(r.e, 0, buf, sizeof(buf)));
    CHECK_OK(edu_dma(r.e, big.la + 8192, 0, EDU_DMA_LIMIT, true));
    CHECK(memcmp((char *)big.va + 8192, buf, sizeof(buf)) == 0);
    CHECK_OK(dmahal_common_free(r.a, &small));
    CHECK_OK(dmahal_common_free(r.a, &big));
    erig_close(&r);
}
