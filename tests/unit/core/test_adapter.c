/* SPDX-License-Identifier: MIT */
/* test_adapter.c - adapters: descriptions, defaults, map registers, errors, strerror. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "test.h"

static struct dmahal_platform *p;
static struct dmahal_device *d;

static void open_dev(void)
{
    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
}

TEST(adapter_defaults_are_filled_in)
{
    struct dmahal_adapter *a;
    struct dmahal_desc got = {.size = sizeof(got)};

    open_dev();
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    CHECK_OK(dmahal_adapter_desc(a, &got));
    CHECK_EQ(got.addr_bits, 32);
    CHECK_EQ(got.max_segments, 1);
    CHECK_EQ(got.max_transfer, 1 << 20);
    CHECK_EQ(got.alignment, 1);
    CHECK_EQ(got.boundary, 0);
    CHECK_EQ(dmahal_adapter_alignment(a), 1);
    CHECK(dmahal_adapter_device(a) == d);
    /* Windows: BYTES_TO_PAGES(MaximumLength) + 1 */
    CHECK_EQ(dmahal_adapter_map_registers(a), 257);
    dmahal_adapter_put(a);
    dmahal_platform_close(p);
}

TEST(adapter_map_registers_follow_max_transfer)
{
    static const struct {
        size_t max_transfer;
        unsigned regs;
    } cases[] = {{1, 2}, {4096, 2}, {4097, 3}, {65536, 17}, {3 << 20, 769}};

    open_dev();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dmahal_desc desc = {.max_transfer = cases[i].max_transfer};
        struct dmahal_adapter *a;

        CHECK_OK(dmahal_adapter_get(d, &desc, &a));
        CHECK_EQ(dmahal_adapter_map_registers(a), cases[i].regs);
        dmahal_adapter_put(a);
    }
    dmahal_platform_close(p);
}

TEST(adapter_bad_descriptions)
{
    static const struct dmahal_desc bad[] = {
        {.addr_bits = 23},
        {.addr_bits = 65},
        {.alignment = 3},
        {.boundary = 1000},
        {.boundary = 64, .alignment = 128},
        {.max_segment = 8, .alignment = 16},
        {.max_transfer = 8, .alignment = 16},
        {.max_transfer = (size_t)1 << 41, .alignment = (size_t)1 << 41}, /* capped below it */
    };
    struct dmahal_adapter *a = (struct dmahal_adapter *)1;

    open_dev();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ERR(dmahal_adapter_get(d, &bad[i], &a), -EINVAL);
        CHECK(a == NULL);
    }
    CHECK_ERR(dmahal_adapter_get(NULL, NULL, &a), -EINVAL);
    CHECK_ERR(dmahal_adapter_get(d, NULL, NULL), -EINVAL);
    CHECK_ERR(dmahal_adapter_desc(NULL, NULL), -EINVAL);
    CHECK_EQ(dmahal_adapter_map_registers(NULL), 0);
    CHECK_EQ(dmahal_adapter_alignment(NULL), 0);
    CHECK(dmahal_adapter_device(NULL) == NULL);
    dmahal_adapter_put(NULL);
    dmahal_platform_close(p);
}

TEST(adapter_coherence_merges_platform_and_device)
{
    struct dmahal_desc snoops = {.coherent = true}, not = {.coherent = false};
    struct dmahal_adapter *a;
    char *text = NULL;
    size_t len;
    FILE *f;

    CHECK_OK(dmahal_platform_open("sim:coherent=no", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, &snoops, &a));
    CHECK_OK(dmahal_adapter_get(d, &not, &a));
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(p, f, 0));
    fclose(f);
    CHECK_CONTAINS(text, " coherent");
    CHECK_CONTAINS(text, "non-coherent");
    free(text);
    dmahal_platform_close(p);
}

TEST(errors_have_names)
{
    CHECK_STR(dmahal_strerror(0), "success");
    CHECK_STR(dmahal_strerror(-EINVAL), "invalid argument");
    CHECK_STR(dmahal_strerror(EINVAL), "invalid argument");
    CHECK_STR(dmahal_strerror(-ENOMEM), "out of memory the device can reach");
    CHECK_STR(dmahal_strerror(-EFAULT), "device access outside any mapping (DMA fault)");
    CHECK_STR(dmahal_strerror(-12345), "unknown error");
    CHECK_STR(dmahal_fault_reason_name(DMAHAL_FAULT_PERM), "permission");
    CHECK_STR(dmahal_fault_reason_name((enum dmahal_fault_reason)99), "unknown");
    CHECK_STR(dmahal_version(), "0.2.0");
}
