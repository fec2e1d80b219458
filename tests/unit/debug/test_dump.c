/* SPDX-License-Identifier: MIT */
/* test_dump.c - dmahal_dump's layout: each section's count before its items, a streaming
 * mapping listed once and as a mapping, the same indentation on verified and plain adapters. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "rig.h"
#include "test.h"

__attribute__((noinline)) static char *dump_of(struct dmahal_platform *p)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    CHECK(f != NULL);
    CHECK_OK(dmahal_dump(p, f, DMAHAL_DUMP_ALL));
    fclose(f);
    return text;
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;

    for (const char *at = strstr(text, what); at; at = strstr(at + 1, what))
        n++;
    return n;
}

/* Two buffers and one 8 KiB mapping on an adapter, verified or not. */
static void check_layout(bool verified)
{
    struct rig r;
    struct dmahal_buf a, b;
    unsigned char *mem = pages(2);
    struct iovec iov = {mem, 2 * 4096};
    struct dmahal_sgl *sgl;
    const char *common, *buffer, *lists, *item;
    char *text;

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &r.p));
    if (verified && dmahal_verify_enable(r.p, DMAHAL_VERIFY_COUNT, NULL, NULL) == -ENOTSUP)
        TEST_SKIP("the library is built without the verifier");
    CHECK_OK(dmahal_device_open(r.p, "edu", &r.d));
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &r.a));
    CHECK_OK(dmahal_common_alloc(r.a, 100, 0, &a));
    CHECK_OK(dmahal_common_alloc(r.a, 5000, 0, &b));
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    text = dump_of(r.p);
    common = strstr(text, "\n    common buffers: 2, 5100 bytes");
    buffer = strstr(text, "\n      buffer va ");
    lists = strstr(text, "\n    scatter/gather lists: 1");
    item = strstr(text, verified ? "\n      to-device mapping #1 of 8192 bytes" : "\n      sgl 0x");
    CHECK(common && buffer && lists && item);
    CHECK(common < buffer);
    CHECK(lists < item);
    CHECK(common < lists); /* common buffers, then lists, as the flags number them */
    /* The mapping once, as a mapping: neither two lists nor a third buffer. */
    CHECK_EQ(count_of(text, "\n      buffer va "), 2);
    CHECK_EQ(count_of(text, verified ? "mapping #1 of" : "\n      sgl 0x"), 1);
    if (verified)
        CHECK_EQ(count_of(text, "\n      sgl 0x"), 0);
    free(text);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_OK(dmahal_common_free(r.a, &a));
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_close(&r);
    free(mem);
}

TEST(dump_counts_come_before_items_and_lists_show_once)
{
    check_layout(false);
}

TEST(dump_verified_counts_come_before_items_and_lists_show_once)
{
    check_layout(true);
}
