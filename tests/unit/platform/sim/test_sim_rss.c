/* SPDX-License-Identifier: MIT */
/* test_sim_rss.c - the simulated machine gives freed frames' host memory back: a long run's
 * resident set follows what is allocated now, not every page ever touched. */
#include "rig.h"

#include <stdio.h>
#include <unistd.h>

static size_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void churn(bool verify)
{
    enum { N = 64, LEN = 4u << 20 };
    struct dmahal_desc d = {.addr_bits = 64};
    static struct dmahal_buf b[N];
    struct rig r;
    size_t before, full, after;

    if (!rss_bytes())
        TEST_SKIP("no /proc/self/statm");
    CHECK_OK(dmahal_platform_open("sim", &r.p));
    if (verify && dmahal_verify_enable(r.p, DMAHAL_VERIFY_COUNT, NULL, NULL) == -ENOTSUP)
        TEST_SKIP("the library is built without the verifier");
    CHECK_OK(dmahal_device_open(r.p, "edu", &r.d));
    CHECK_OK(dmahal_adapter_get(r.d, &d, &r.a));
    before = rss_bytes();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            /* Lengths that differ each round: the frames reused are not the same ones. */
            CHECK_OK(dmahal_common_alloc(r.a, LEN + (size_t)round * 12288, 0, &b[i]));
            memset(b[i].va, 0x5a, b[i].len);
        }
        full = rss_bytes();
        CHECK_GE(full, before + (size_t)N * LEN / 2);
        for (int i = 0; i < N; i++)
            CHECK_OK(dmahal_common_free(r.a, &b[i]));
        after = rss_bytes();
        /* The sim keeps the last 64 MiB freed resident, and the verifier some freed buffers
         * in its quarantine (at most 64 MiB of them); everything else has left the resident
         * set. */
        CHECK_LE(after, before + (verify ? 160u << 20 : 96u << 20));
    }
    dmahal_platform_close(r.p);
}

TEST(sim_keeps_the_last_runs_freed_resident)
{
    struct dmahal_desc d = {.addr_bits = 64};
    struct dmahal_buf b;
    struct rig r;
    size_t full, after;

    if (!rss_bytes())
        TEST_SKIP("no /proc/self/statm");
    /* A 2 MiB buffer freed stays resident for the next one (within the 64 MiB kept), which
     * takes the same frames again, zeroed. */
    CHECK_OK(dmahal_platform_open("sim", &r.p));
    CHECK_OK(dmahal_device_open(r.p, "edu", &r.d));
    CHECK_OK(dmahal_adapter_get(r.d, &d, &r.a));
    CHECK_OK(dmahal_common_alloc(r.a, 2u << 20, 0, &b));
    memset(b.va, 0x5a, b.len);
    full = rss_bytes();
    CHECK_OK(dmahal_common_free(r.a, &b));
    after = rss_bytes();
    CHECK_GE(after + (512u << 10), full);
    CHECK_OK(dmahal_common_alloc(r.a, 2u << 20, 0, &b));
    for (size_t i = 0; i < b.len; i += 4096)
        CHECK_EQ_U(((unsigned char *)b.va)[i], 0);
    CHECK_OK(dmahal_common_free(r.a, &b));
    dmahal_platform_close(r.p);
}

TEST(sim_freed_common_buffers_leave_the_resident_set)
{
    churn(false);
}

TEST(sim_freed_common_buffers_leave_the_resident_set_with_the_verifier)
{
    churn(true);
}
