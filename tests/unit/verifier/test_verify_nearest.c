/* SPDX-License-Identifier: MIT */
/* test_verify_nearest.c - a device's stray access names the nearest buffer in that device's
 * own address space: never another device's, however close its logical address. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "vrig.h"

TEST(stray_access_names_the_nearest_buffer_of_the_same_device)
{
    static const char *const specs[] = {"sim", "sim:iommu=on"};

    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct dmahal_desc wide = {.addr_bits = 64};
        struct dmahal_device *other;
        struct dmahal_adapter *oa;
        struct dmahal_buf mine, theirs;
        const struct dmahal_report *rep;
        char x[4], want[128];
        struct vrig r;
        int rc;

        /* This device: 32 bits, one buffer. Another device: 64 bits, one buffer. */
        vrig_open(&r, specs[s], NULL);
        CHECK_OK(dmahal_common_alloc(r.a, 100, 0, &mine));
        CHECK_OK(dmahal_device_open(r.p, "edu", &other));
        CHECK_OK(dmahal_adapter_get(other, &wide, &oa));
        CHECK_OK(dmahal_common_alloc(oa, 100, 0, &theirs));
        /* A stray access by this device just past the other device's buffer. */
        rc = dmahal_dev_read(r.d, theirs.la + 200, x, 4);
        CHECK(rc == 0 || rc == -EFAULT);
        rep = vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS);
        snprintf(want, sizeof(want), "100-byte common buffer la 0x%012llx",
                 (unsigned long long)mine.la);
        CHECK_CONTAINS(rep->message, want);
        snprintf(want, sizeof(want), "la 0x%012llx", (unsigned long long)theirs.la);
        CHECK(strstr(rep->message, want) == NULL);
        CHECK_OK(dmahal_common_free(oa, &theirs));
        CHECK_OK(dmahal_common_free(r.a, &mine));
        dmahal_platform_close(r.p);
    }
}
