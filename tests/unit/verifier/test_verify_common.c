/* SPDX-License-Identifier: MIT */
/* test_verify_common.c - the verifier's common-buffer checks: each misuse provoked and its
 * report asserted, guard zones that keep the adapter's constraints, and a clean driver that
 * gets no report at all. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "verifier/verifier.h"
#include "vrig.h"

static bool is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

/* Everything dmahal_common_alloc promises, checked on a buffer the verifier handed out. */
static void check_contract(const struct dmahal_buf *b, size_t len, const struct dmahal_desc *d)
{
    uint64_t max = d->addr_bits == 64 ? UINT64_MAX : (1ull << d->addr_bits) - 1;
    size_t align = d->alignment ? d->alignment : 1;
    size_t want = 16;

    CHECK_EQ_U(b->len, len);
    CHECK_NE_U(b->la, 0);
    CHECK_LE_U(b->la + len - 1, max);
    CHECK_EQ_U(b->la % align, 0);
    if (d->boundary)
        CHECK_EQ_U(b->la / d->boundary, (b->la + len - 1) / d->boundary);
    if (len >= 4096) {
        CHECK_EQ_U(b->la % 4096, 0);
        CHECK_EQ_U((uintptr_t)b->va % 4096, 0);
    } else {
        while (want < len)
            want *= 2;
        CHECK_EQ_U(b->la % want, 0);
        CHECK_EQ_U(b->la / 4096, (b->la + len - 1) / 4096); /* within one page */
    }
    for (size_t i = 0; i < len; i++)
        CHECK_EQ(((unsigned char *)b->va)[i], 0);
}

TEST(verify_clean_driver_keeps_every_constraint_and_gets_no_report)
{
    static const char *const specs[] = {"sim", "sim:iommu=on", "sim:ram=0-64M", "sim:coherent=no"};
    static const struct dmahal_desc descs[] = {
        {.addr_bits = 24},
        {.addr_bits = 32},
        {.addr_bits = 64},
        {.addr_bits = 32, .alignment = 64},
        {.addr_bits = 32, .alignment = 65536},
        {.addr_bits = 32, .boundary = 65536},
        {.addr_bits = 32, .boundary = 4096, .alignment = 512},
    };
    static const size_t sizes[] = {1, 16, 64, 100, 2048, 3000, 4096, 5000, 65536, 3u << 20};

    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        for (size_t k = 0; k < sizeof(descs) / sizeof(descs[0]); k++) {
            struct dmahal_buf b[sizeof(sizes) / sizeof(sizes[0])];
            struct vrig r;

            vrig_open(&r, specs[s], &descs[k]);
            for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                int rc = dmahal_common_alloc(r.a, sizes[i], 0, &b[i]);

                /* Too big for the boundary is the allocator's answer, not the verifier's. */
                if (descs[k].boundary && sizes[i] > descs[k].boundary) {
                    CHECK_ERR(rc, -E2BIG);
                    continue;
                }
                CHECK_OK(rc);
                check_contract(&b[i], sizes[i], &descs[k]);
                memset(b[i].va, 0x5a, sizes[i]); /* the whole buffer is the driver's */
            }
            CHECK_EQ(dmahal_verify_check(r.p), 0);
            for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                if (b[i].len)
                    CHECK_OK(dmahal_common_free(r.a, &b[i]));
            dmahal_adapter_put(r.a);
            dmahal_platform_close(r.p);
            CHECK_EQ(r.calls, 0);
        }
    }
}

TEST(verify_double_free)
{
    struct vrig r;
    struct dmahal_buf b, again;
    const struct dmahal_report *rep;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    again = b;
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    CHECK_ERR(dmahal_common_free(r.a, &again), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_DOUBLE_FREE);
    CHECK_CONTAINS(rep->message, "double free of 64-byte common buffer");
    CHECK_CONTAINS(rep->message, "device edu");
    CHECK_EQ_U(rep->la, b.la);
    CHECK_EQ_U(rep->len, 64);
    dmahal_platform_close(r.p);
}

TEST(verify_free_with_wrong_length_address_or_adapter)
{
    struct vrig r;
    struct dmahal_adapter *other;
    struct dmahal_buf b, bad;
    const struct dmahal_report *rep;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &other));
    CHECK_OK(dmahal_common_alloc(r.a, 5000, 0, &b));

    bad = b;
    bad.len = 4096;
    CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_FREE_WRONG_LEN);
    CHECK_CONTAINS(rep->message, "free with length 4096 of 5000-byte common buffer");

    bad = b;
    bad.la += 4096;
    CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL);
    vrig_one(&r, DMAHAL_REPORT_FREE_WRONG_LA);

    CHECK_ERR(dmahal_common_free(other, &b), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_FREE_WRONG_ADAPTER);
    CHECK_CONTAINS(rep->message, "free through adapter #");

    bad = b;
    bad.va = (char *)b.va + 8;
    CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_FREE_UNKNOWN);
    CHECK_CONTAINS(rep->message, "8 bytes inside 5000-byte common buffer");

    bad = (struct dmahal_buf){(char *)&bad, 0x1000, 64}; /* never DMA memory at all */
    CHECK_ERR(dmahal_common_free(r.a, &bad), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_FREE_UNKNOWN);
    CHECK_CONTAINS(rep->message, "no buffer was allocated there");

    /* None of the bad frees freed anything: the right one still works, once. */
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    dmahal_adapter_put(other);
    dmahal_platform_close(r.p);
    CHECK_EQ(r.calls, 5);
}

TEST(verify_leaks_reported_at_put_and_at_platform_close)
{
    struct vrig r;
    struct dmahal_adapter *second;
    struct dmahal_buf b1, b2, b3, kept;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b1));
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b2));
    CHECK_OK(dmahal_common_alloc(r.a, 128, 0, &kept));
    CHECK_OK(dmahal_common_free(r.a, &kept)); /* freed (quarantined): not a leak */
    dmahal_adapter_put(r.a);
    CHECK_EQ(dmahal_verify_count(r.p, DMAHAL_REPORT_LEAK), 2);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 2);
    CHECK_CONTAINS(r.last.message, "leak: adapter put with");
    /* The two reports name the two buffers, whichever order they came in. */
    {
        struct dmahal_report x = {.size = sizeof(x)}, y = {.size = sizeof(y)};

        CHECK_OK(dmahal_verify_report(r.p, 0, &x));
        CHECK_OK(dmahal_verify_report(r.p, 1, &y));
        CHECK((x.la == b1.la && y.la == b2.la) || (x.la == b2.la && y.la == b1.la));
        CHECK_ERR(dmahal_verify_report(r.p, 2, &x), -ENOENT);
    }
    dmahal_verify_clear(r.p);

    CHECK_OK(dmahal_adapter_get(r.d, NULL, &second));
    CHECK_OK(dmahal_common_alloc(second, 100, 0, &b3));
    dmahal_platform_close(r.p);
    CHECK_EQ(r.calls, 3);
    CHECK_EQ_U(r.last.kind, DMAHAL_REPORT_LEAK);
    CHECK_EQ_U(r.last.la, b3.la);
    CHECK_CONTAINS(r.msg, "100-byte common buffer");
}

TEST(verify_null_and_put_adapters)
{
    struct vrig r;
    struct dmahal_buf b = {0};
    const struct dmahal_report *rep;

    vrig_open(&r, "sim", NULL);
    CHECK_ERR(dmahal_common_alloc(NULL, 64, 0, &b), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_BAD_ADAPTER);
    CHECK_CONTAINS(rep->message, "dmahal_common_alloc called with a NULL adapter");
    CHECK_ERR(dmahal_common_free(NULL, &b), -EINVAL);
    vrig_one(&r, DMAHAL_REPORT_BAD_ADAPTER);

    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK_OK(dmahal_common_free(r.a, &b));
    dmahal_adapter_put(r.a);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    /* The adapter is gone: every call through it is reported and refused. */
    CHECK_ERR(dmahal_common_alloc(r.a, 64, 0, &b), -EINVAL);
    rep = vrig_one(&r, DMAHAL_REPORT_BAD_ADAPTER);
    CHECK_CONTAINS(rep->message, "dmahal_common_alloc on adapter #");
    CHECK_CONTAINS(rep->message, "which was put already");
    CHECK_ERR(dmahal_common_free(r.a, &b), -EINVAL);
    vrig_one(&r, DMAHAL_REPORT_BAD_ADAPTER);
    dmahal_adapter_put(r.a);
    rep = vrig_one(&r, DMAHAL_REPORT_BAD_ADAPTER);
    CHECK_CONTAINS(rep->message, "dmahal_adapter_put on adapter");
    dmahal_platform_close(r.p);
}

/* Overruns and underruns are found at free, with the offset, for every kind of buffer. */
TEST(verify_guard_zones_catch_overrun_and_underrun_at_free)
{
    static const size_t sizes[] = {1, 100, 2048, 4096, 5000, 3u << 20};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct vrig r;
        struct dmahal_buf b;
        const struct dmahal_report *rep;
        unsigned char *c;
        char want[64];

        vrig_open(&r, "sim", NULL);
        CHECK_OK(dmahal_common_alloc(r.a, sizes[i], 0, &b));
        c = b.va;
        c[sizes[i] + 2] = 1; /* three bytes past the end: off by more than one */
        CHECK_OK(dmahal_common_free(r.a, &b));
        rep = vrig_one(&r, DMAHAL_REPORT_OVERRUN);
        CHECK_EQ_U(rep->la, b.la + sizes[i] + 2);
        CHECK_EQ_U(rep->len, 1);
        snprintf(want, sizeof(want), "(offsets %zu..%zu, 3..3 byte(s) past the end)", sizes[i] + 2,
                 sizes[i] + 2);
        CHECK_CONTAINS(rep->message, want);

        CHECK_OK(dmahal_common_alloc(r.a, sizes[i], 0, &b));
        c = b.va;
        c[-1] = 1;
        c[-4] = 1;
        CHECK_OK(dmahal_common_free(r.a, &b));
        rep = vrig_one(&r, DMAHAL_REPORT_UNDERRUN);
        CHECK_EQ_U(rep->la, b.la - 4);
        CHECK_EQ_U(rep->len, 4);
        CHECK_CONTAINS(rep->message, "(offsets -4..-1)");
        dmahal_platform_close(r.p);
    }
}

TEST(verify_check_on_demand_reports_once_and_repairs)
{
    struct vrig r;
    struct dmahal_buf b;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK_EQ(dmahal_verify_check(r.p), 0);
    ((unsigned char *)b.va)[64] = 0;
    CHECK_EQ(dmahal_verify_check(r.p), 1);
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_OVERRUN)->message, "found on demand");
    CHECK_EQ(dmahal_verify_check(r.p), 0);
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    CHECK_ERR(dmahal_verify_check(NULL), -EINVAL);
    dmahal_platform_close(r.p);
}

TEST(verify_write_after_free_found_in_quarantine)
{
    struct vrig r;
    struct dmahal_buf b;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 256, 0, &b));
    CHECK_OK(dmahal_common_free(r.a, &b));
    ((unsigned char *)b.va)[10] = 7; /* the driver kept a pointer */
    CHECK_EQ(dmahal_verify_check(r.p), 1);
    CHECK_EQ_U(vrig_one(&r, DMAHAL_REPORT_WRITE_AFTER_FREE)->la, b.la + 10);
    CHECK_CONTAINS(r.msg, "offsets 10..10 of 256-byte common buffer");
    dmahal_platform_close(r.p);
}

/* Freed memory is not handed out again while it is in quarantine. */
TEST(verify_quarantine_delays_reuse)
{
    struct vrig r;
    struct dmahal_buf first, b[VERIFY_QUARANTINE];
    bool reused = false;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &first));
    CHECK_OK(dmahal_common_free(r.a, &first));
    for (size_t i = 0; i < VERIFY_QUARANTINE / 2; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b[i]));
        CHECK(b[i].la + 64 <= first.la || b[i].la >= first.la + 64);
        CHECK_OK(dmahal_common_free(r.a, &b[i]));
    }
    /* Once it has left the quarantine (a quarantine's worth of frees), it is reused. */
    for (size_t i = 0; i < 2 * VERIFY_QUARANTINE && !reused; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b[0]));
        reused = b[0].la == first.la;
        CHECK_OK(dmahal_common_free(r.a, &b[0]));
    }
    CHECK(reused);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    dmahal_platform_close(r.p);
}

/* A buffer out of the quarantine is kept for the next allocation of its adapter, size and
 * flags: handed out again zeroed, with guards filled anew (a write into them while it was
 * freed is no overrun of the new buffer; one after is), never to another adapter, and given
 * back when the adapter goes. */
TEST(verify_buffer_kept_for_reuse_is_as_good_as_new)
{
    struct vrig r;
    struct dmahal_adapter *other;
    struct dmahal_buf first, b, o;
    unsigned char *c;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_adapter_get(r.d, NULL, &other));
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &first));
    CHECK_OK(dmahal_common_free(r.a, &first));
    ((unsigned char *)first.va)[64 + 3] = 0x11; /* its guard, while it is freed */
    /* A quarantine's worth of frees of another size pushes it out. */
    for (size_t i = 0; i < VERIFY_QUARANTINE; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 1000, 0, &b));
        CHECK_OK(dmahal_common_free(r.a, &b));
    }
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    CHECK_OK(dmahal_common_alloc(other, 64, 0, &o)); /* not another adapter's */
    CHECK(o.va != first.va);
    CHECK_OK(dmahal_common_free(other, &o));
    CHECK_OK(dmahal_common_alloc(r.a, 64, DMAHAL_CACHED, &b)); /* nor other flags' */
    CHECK(b.va != first.va);
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK(b.va == first.va);
    CHECK_EQ_U(b.la, first.la);
    c = b.va;
    for (size_t i = 0; i < 64; i++)
        CHECK_EQ(c[i], 0);
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0); /* the old scribble is gone */
    for (size_t i = 0; i <= VERIFY_QUARANTINE; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 1000, 0, &o));
        CHECK_OK(dmahal_common_free(r.a, &o));
    }
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK(b.va == first.va);
    ((unsigned char *)b.va)[64] = 1;
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_EQ_U(vrig_one(&r, DMAHAL_REPORT_OVERRUN)->la, b.la + 64);
    dmahal_adapter_put(other);
    dmahal_adapter_put(r.a);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0); /* no leak: the kept ones went back */
    dmahal_platform_close(r.p);
}

TEST(verify_abort_flag_stops_the_process_like_a_bug_check)
{
    pid_t pid = fork();
    int status;

    CHECK(pid >= 0);
    if (pid == 0) {
        struct dmahal_platform *p;
        struct dmahal_device *d;
        struct dmahal_adapter *a;
        struct dmahal_buf b, c;

        if (!freopen("/dev/null", "w", stderr) || dmahal_platform_open("sim", &p) ||
            dmahal_verify_enable(p, DMAHAL_VERIFY_ABORT, NULL, NULL) ||
            dmahal_device_open(p, "edu", &d) || dmahal_adapter_get(d, NULL, &a) ||
            dmahal_common_alloc(a, 64, 0, &b))
            _exit(3);
        c = b;
        dmahal_common_free(a, &b);
        dmahal_common_free(a, &c);
        _exit(0); /* not reached */
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WTERMSIG(status), SIGABRT);
}

/* With no callback the report goes to stderr, with the buffer and both backtraces. */
TEST(verify_prints_reports_with_backtraces)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b, c;
    char text[8192] = {0};
    FILE *f = tmpfile();
    int saved = dup(2);

    CHECK(f != NULL);
    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_verify_enable(p, 0, NULL, NULL));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    CHECK_OK(dmahal_common_alloc(a, 64, 0, &b));
    c = b;
    CHECK_OK(dmahal_common_free(a, &b));
    fflush(stderr);
    dup2(fileno(f), 2);
    CHECK_ERR(dmahal_common_free(a, &c), -EINVAL);
    fflush(stderr);
    dup2(saved, 2);
    rewind(f);
    CHECK(fread(text, 1, sizeof(text) - 1, f) > 0);
    CHECK_CONTAINS(text, "dmahal verifier: double-free: double free of 64-byte");
    CHECK_CONTAINS(text, "freed by:\n    #0 0x");
    CHECK_CONTAINS(text, "allocated by:\n    #0 0x");
    CHECK_CONTAINS(text, "here:\n");
    /* Flags 0 mean PRINT and COUNT. */
    CHECK_EQ(dmahal_verify_count(p, DMAHAL_REPORT_DOUBLE_FREE), 1);
    fclose(f);
    close(saved);
    dmahal_platform_close(p);
}

/* Out of memory, the verifier says so once, turns off and lets every call through. */
TEST(verify_out_of_memory_turns_it_off_never_fails_the_driver)
{
    struct vrig r;
    struct dmahal_buf tracked, b, c;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &tracked));
    CHECK_EQ(dmahal_verify_enabled(r.p), 1);
    atomic_store(&dmahal__verify_fail_countdown, 1);
    CHECK_OK(dmahal_common_alloc(r.a, 100, 0, &b));
    CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_VERIFIER_OOM)->message, "turns itself off");
    CHECK_EQ(dmahal_verify_enabled(r.p), 0);
    CHECK_ERR(dmahal_verify_check(r.p), -ENOTSUP);
    /* Buffers from before and after both free; nothing more is reported. */
    CHECK_OK(dmahal_common_free(r.a, &tracked));
    c = b;
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_ERR(dmahal_common_free(r.a, &c), -EINVAL);
    CHECK_OK(dmahal_common_alloc(r.a, 100, 0, &b));
    ((unsigned char *)b.va)[100] = 1;
    CHECK_OK(dmahal_common_free(r.a, &b));
    dmahal_platform_close(r.p);
    CHECK_EQ(r.calls, 1);
}

TEST(verify_out_of_memory_growing_the_index)
{
    struct vrig r;
    struct dmahal_buf b;

    vrig_open(&r, "sim", NULL);
    atomic_store(&dmahal__verify_fail_countdown, 2); /* the record, then the index */
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    vrig_one(&r, DMAHAL_REPORT_VERIFIER_OOM);
    CHECK_OK(dmahal_common_free(r.a, &b));
    dmahal_platform_close(r.p);
    CHECK_EQ(r.calls, 1);
}

static void quiet(const struct dmahal_report *r, void *ctx)
{
    (void)r;
    (void)ctx;
}

/* Adapters got before the verifier was on are left alone; DMAHAL_VERIFY=1 turns it on. */
TEST(verify_only_adapters_after_enable_and_the_environment)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *before, *after;
    struct dmahal_buf b, c;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_EQ(dmahal_verify_enabled(p), 0);
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &before));
    CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, quiet, NULL));
    CHECK_OK(dmahal_adapter_get(d, NULL, &after));
    CHECK_OK(dmahal_common_alloc(before, 64, 0, &b));
    c = b;
    CHECK_OK(dmahal_common_free(before, &b));
    CHECK_ERR(dmahal_common_free(before, &c), -EINVAL);
    CHECK_EQ(dmahal_verify_count(p, 0), 0);
    CHECK_OK(dmahal_common_alloc(after, 64, 0, &b));
    c = b;
    CHECK_OK(dmahal_common_free(after, &b));
    CHECK_ERR(dmahal_common_free(after, &c), -EINVAL);
    CHECK_EQ(dmahal_verify_count(p, DMAHAL_REPORT_DOUBLE_FREE), 1);
    dmahal_platform_close(p);

    setenv("DMAHAL_VERIFY", "1", 1);
    CHECK_OK(dmahal_platform_open("sim", &p));
    unsetenv("DMAHAL_VERIFY");
    CHECK_EQ(dmahal_verify_enabled(p), 1);
    CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, quiet, NULL));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &after));
    CHECK_OK(dmahal_common_alloc(after, 64, 0, &b));
    c = b;
    CHECK_OK(dmahal_common_free(after, &b));
    CHECK_ERR(dmahal_common_free(after, &c), -EINVAL);
    CHECK_EQ(dmahal_verify_count(p, DMAHAL_REPORT_DOUBLE_FREE), 1);
    dmahal_platform_close(p);
}

TEST(verify_api_arguments_and_names)
{
    struct dmahal_platform *p;
    struct dmahal_report rep = {.size = sizeof(rep), .kind = 99};

    CHECK_ERR(dmahal_verify_enable(NULL, 0, NULL, NULL), -EINVAL);
    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_ERR(dmahal_verify_enable(p, 0x100, NULL, NULL), -EINVAL);
    CHECK_ERR(dmahal_verify_report(p, 0, &rep), -ENOENT); /* never enabled */
    CHECK_EQ(rep.kind, 0);
    CHECK_EQ(dmahal_verify_count(p, 0), 0);
    CHECK_ERR(dmahal_verify_check(p), -ENOTSUP);
    CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_ERR(dmahal_verify_report(p, 0, &rep), -ENOENT);
    CHECK_ERR(dmahal_verify_report(p, 0, NULL), -EINVAL);
    CHECK_ERR(dmahal_verify_enabled(NULL), -EINVAL);
    CHECK_EQ(dmahal_verify_count(p, DMAHAL_REPORT_KINDS), 0);
    CHECK_EQ(dmahal_verify_count(NULL, 0), 0);
    dmahal_verify_clear(NULL);
    dmahal_platform_close(p);
    CHECK_STR(dmahal_report_kind_name(DMAHAL_REPORT_DOUBLE_FREE), "double-free");
    CHECK_STR(dmahal_report_kind_name(DMAHAL_REPORT_DEV_OUT_OF_BOUNDS), "device-out-of-bounds");
    CHECK_STR(dmahal_report_kind_name(0), "unknown");
    CHECK_STR(dmahal_report_kind_name(DMAHAL_REPORT_KINDS), "unknown");
    for (int k = 1; k < DMAHAL_REPORT_KINDS; k++)
        CHECK(strcmp(dmahal_report_kind_name(k), "unknown") != 0);
    CHECK(is_pow2(VERIFY_QUARANTINE));
}

/* The ring keeps the most recent 64, newest first. */
TEST(verify_report_ring_keeps_the_latest)
{
    struct vrig r;
    struct dmahal_buf bogus = {(void *)&r, 0x1000, 1};
    struct dmahal_report rep = {.size = sizeof(rep)};

    vrig_open(&r, "sim", NULL);
    for (size_t i = 0; i < 70; i++) {
        bogus.len = i + 1;
        CHECK_ERR(dmahal_common_free(r.a, &bogus), -EINVAL);
    }
    CHECK_EQ(dmahal_verify_count(r.p, DMAHAL_REPORT_FREE_UNKNOWN), 70);
    CHECK_OK(dmahal_verify_report(r.p, 0, &rep));
    CHECK_EQ_U(rep.len, 70);
    CHECK_OK(dmahal_verify_report(r.p, 63, &rep));
    CHECK_EQ_U(rep.len, 7);
    CHECK_CONTAINS(rep.message, "len 7 through adapter");
    CHECK_ERR(dmahal_verify_report(r.p, 64, &rep), -ENOENT);
    dmahal_verify_clear(r.p);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    CHECK_ERR(dmahal_verify_report(r.p, 0, &rep), -ENOENT);
    dmahal_platform_close(r.p);
}

/* The dump (the !dma analog) shows what the verifier knows: guards, backtraces, quarantine. */
TEST(verify_dump_shows_guards_backtraces_and_quarantine)
{
    struct vrig r;
    struct dmahal_buf b, gone;
    char *text = NULL, want[96];
    size_t size = 0;
    FILE *f;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &gone));
    CHECK_OK(dmahal_common_free(r.a, &gone));
    f = open_memstream(&text, &size);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_COMMON));
    fclose(f);
    snprintf(want, sizeof(want), "la 0x%012llx-0x%012llx  len 64  #1", (unsigned long long)b.la,
             (unsigned long long)(b.la + 63));
    CHECK_CONTAINS(text, want);
    CHECK_CONTAINS(text, "(verified)");
    CHECK_CONTAINS(text, "guards intact (64 before, 64 after)");
    CHECK_CONTAINS(text, "allocated by:\n          #0 0x");
    CHECK_CONTAINS(text, "common buffers: 1, 64 bytes (verified)");
    CHECK_CONTAINS(text, "verifier: on, 2 allocations, 1 frees, 1 buffers in quarantine");
    CHECK_CONTAINS(text, "quarantined: 4096-byte common buffer");
    free(text);

    ((unsigned char *)b.va)[65] = 0;
    f = open_memstream(&text, &size);
    CHECK_OK(dmahal_dump(r.p, f, 0));
    fclose(f);
    CHECK(strstr(text, "buffer va") == NULL); /* flag 0: counts only */
    free(text);
    f = open_memstream(&text, &size);
    CHECK_OK(dmahal_dump(r.p, f, DMAHAL_DUMP_COMMON));
    fclose(f);
    CHECK_CONTAINS(text, "OVERRUN: 2..2 byte(s) past the end changed");
    free(text);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0); /* the dump reports nothing, it shows */
    CHECK_EQ(dmahal_verify_check(r.p), 1);
    dmahal_platform_close(r.p);
}
