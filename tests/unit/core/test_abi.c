/* SPDX-License-Identifier: MIT */
/* test_abi.c - what a program built against other headers relies on: the version macros, and
 * versioned structs of the first layout (size 0 or that layout's size, nothing after it in
 * memory), of a newer, longer layout, and of an impossible size. */
#include "core/internal.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* @n bytes that end where a page with no access begins: a read or write past them crashes. */
static void *at_page_end(size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    CHECK(m != MAP_FAILED);
    CHECK_EQ(mprotect(m + page, (size_t)page, PROT_NONE), 0);
    memset(m, 0, (size_t)page);
    return m + page - n;
}

static struct dmahal_platform *p;
static struct dmahal_device *d;

static void open_dev(void)
{
    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
}

TEST(version_macros_match_the_library)
{
    CHECK_STR(dmahal_version(), STR(DMAHAL_VERSION_MAJOR) "." STR(DMAHAL_VERSION_MINOR) "." STR(
                                    DMAHAL_VERSION_PATCH));
}

TEST(first_layouts_are_what_the_header_says)
{
    /* The first layouts end with these members; a member added later goes after them. */
    CHECK_EQ(offsetof(struct dmahal_desc, size), 0);
    CHECK_EQ(offsetof(struct dmahal_fault, size), 0);
    CHECK_EQ(offsetof(struct dmahal_report, size), 0);
    CHECK_EQ(DMAHAL__DESC_V1, offsetof(struct dmahal_desc, flags));
    CHECK_EQ(DMAHAL__V1_SIZE(struct dmahal_desc, flags), sizeof(struct dmahal_desc));
    CHECK_EQ(DMAHAL__FAULT_V1, sizeof(struct dmahal_fault));
    CHECK_EQ(DMAHAL__REPORT_V1, sizeof(struct dmahal_report));
}

TEST(desc_of_the_first_layout_is_read_no_further)
{
    struct dmahal_desc *old = at_page_end(DMAHAL__DESC_V1), got = {.size = sizeof(got)};
    struct dmahal_adapter *a;

    open_dev();
    old->size = DMAHAL__DESC_V1;
    old->addr_bits = 28;
    old->max_transfer = 8192;
    CHECK_OK(dmahal_adapter_get(d, old, &a));
    CHECK_OK(dmahal_adapter_desc(a, &got));
    CHECK_EQ(got.size, sizeof(got));
    CHECK_EQ(got.addr_bits, 28);
    CHECK_EQ(got.max_transfer, 8192);
    /* Size 0 is the same first layout. */
    old->size = 0;
    CHECK_OK(dmahal_adapter_get(d, old, &a));
    CHECK_EQ(dmahal_adapter_map_registers(a), 3);
    dmahal_platform_close(p);
}

TEST(desc_of_a_newer_layout_is_taken_when_its_unknown_members_are_zero)
{
    struct newer {
        struct dmahal_desc known;
        uint64_t added_later;
    } n = {.known = {.size = sizeof(n), .addr_bits = 40}};
    struct dmahal_adapter *a;
    struct dmahal_desc got = {.size = sizeof(got)};

    open_dev();
    CHECK_OK(dmahal_adapter_get(d, &n.known, &a));
    CHECK_OK(dmahal_adapter_desc(a, &got));
    CHECK_EQ(got.addr_bits, 40);
    n.added_later = 1; /* asks for something this library does not have */
    CHECK_ERR(dmahal_adapter_get(d, &n.known, &a), -ENOTSUP);
    CHECK(a == NULL);
    dmahal_platform_close(p);
}

TEST(desc_of_an_impossible_size_is_einval)
{
    struct dmahal_desc desc = {.size = 8, .addr_bits = 32};
    struct dmahal_adapter *a;

    open_dev();
    CHECK_ERR(dmahal_adapter_get(d, &desc, &a), -EINVAL);
    desc.size = DMAHAL__DESC_V1 - 1;
    CHECK_ERR(dmahal_adapter_get(d, &desc, &a), -EINVAL);
    dmahal_platform_close(p);
}

TEST(adapter_desc_writes_only_what_the_caller_has_room_for)
{
    struct dmahal_desc *old = at_page_end(DMAHAL__DESC_V1);
    struct {
        struct dmahal_desc known;
        uint64_t added_later;
    } n = {.known = {.size = sizeof(n)}, .added_later = 0x5a5a};
    struct dmahal_desc desc = {.addr_bits = 36}, bad = {.size = 3};
    struct dmahal_adapter *a;

    open_dev();
    CHECK_OK(dmahal_adapter_get(d, &desc, &a));
    old->size = 0;
    CHECK_OK(dmahal_adapter_desc(a, old));
    CHECK_EQ(old->size, DMAHAL__DESC_V1);
    CHECK_EQ(old->addr_bits, 36);
    /* A newer caller learns how much is filled from size; the rest is left alone. */
    CHECK_OK(dmahal_adapter_desc(a, &n.known));
    CHECK_EQ(n.known.size, sizeof(struct dmahal_desc));
    CHECK_EQ(n.known.addr_bits, 36);
    CHECK_EQ_U(n.added_later, 0x5a5a);
    CHECK_ERR(dmahal_adapter_desc(a, &bad), -EINVAL);
    CHECK_EQ(bad.size, 3);
    dmahal_platform_close(p);
}

TEST(fault_of_the_first_layout_is_written_no_further)
{
    struct dmahal_fault *old = at_page_end(DMAHAL__FAULT_V1), bad = {.size = 1};
    char byte;

    open_dev();
    CHECK_ERR(dmahal_dev_read(d, 1ull << 40, &byte, 1), -EFAULT);
    old->size = 0;
    CHECK_OK(dmahal_fault_get(p, 0, old));
    CHECK_EQ(old->size, DMAHAL__FAULT_V1);
    CHECK_EQ_U(old->la, 1ull << 40);
    CHECK(old->reason != 0);
    CHECK_ERR(dmahal_fault_get(p, 0, &bad), -EINVAL);
    /* A failed read clears what it may, keeping the size. */
    CHECK_ERR(dmahal_fault_get(p, 1, old), -ENOENT);
    CHECK_EQ(old->size, DMAHAL__FAULT_V1);
    CHECK_EQ_U(old->la, 0);
    dmahal_platform_close(p);
}
