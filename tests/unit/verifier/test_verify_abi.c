/* SPDX-License-Identifier: MIT */
/* test_verify_abi.c - verifier reports as a versioned struct: the callback's carries its size,
 * dmahal_verify_report fills the first layout with nothing after it in memory. */
#include "core/internal.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vrig.h"

TEST(reports_carry_their_size_and_fill_the_first_layout_no_further)
{
    long page = sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct dmahal_report *old, bad = {.size = 2};
    struct dmahal_buf b;
    struct vrig r;

    CHECK(m != MAP_FAILED);
    CHECK_EQ(mprotect(m + page, (size_t)page, PROT_NONE), 0);
    old = (struct dmahal_report *)(m + page - DMAHAL__REPORT_V1);
    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_ERR(dmahal_common_free(r.a, &b), -EINVAL);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.last.size, sizeof(struct dmahal_report));
    CHECK_EQ(r.last.kind, DMAHAL_REPORT_DOUBLE_FREE);
    old->size = 0;
    CHECK_OK(dmahal_verify_report(r.p, 0, old));
    CHECK_EQ(old->size, DMAHAL__REPORT_V1);
    CHECK_EQ(old->kind, DMAHAL_REPORT_DOUBLE_FREE);
    CHECK(old->message && strstr(old->message, "free"));
    CHECK_ERR(dmahal_verify_report(r.p, 0, &bad), -EINVAL);
    dmahal_platform_close(r.p);
}
