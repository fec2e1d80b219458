/* SPDX-License-Identifier: MIT */
/* test_time.c - device work in virtual time: scheduling, order, cancel, the points where
 * time moves, replay by seed, and the versioned model struct. */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "test.h"
#include "tick.h"

static void open_tick(const char *spec, struct dmahal_platform **p, struct dmahal_device **d)
{
    tick_register();
    CHECK_OK(dmahal_platform_open(spec, p));
    CHECK_OK(dmahal_device_open(*p, "tick", d));
}

static uint64_t now_of(struct dmahal_platform *p)
{
    uint64_t ns;

    CHECK_OK(dmahal_sim_now(p, &ns));
    return ns;
}

TEST(time_work_runs_when_time_reaches_it)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint64_t ran_at;

    open_tick("sim", &p, &d);
    CHECK_EQ_U(now_of(p), 0);
    dmahal_mmio_write64(d, 0, 0, 1000000); /* 1 ms, plus up to 250 us of jitter */
    CHECK_OK(dmahal_sim_advance(p, 999999));
    CHECK_EQ_U(now_of(p), 999999);
    /* The read itself moves time by under a microsecond: still short of the work. */
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 0);
    CHECK_OK(dmahal_sim_advance(p, 250001));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 1);
    ran_at = dmahal_mmio_read64(d, 0, 0x100);
    CHECK_GE_U(ran_at, 1000000);
    CHECK_LE_U(ran_at, 1250000);
    dmahal_platform_close(p);
}

TEST(time_work_runs_in_time_order)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;

    open_tick("sim", &p, &d);
    dmahal_mmio_write64(d, 0, 0, 3000000);
    dmahal_mmio_write64(d, 0, 0, 1000000);
    dmahal_mmio_write64(d, 0, 0, 2000000);
    /* Delay 0 runs at the next point, never inside the write; two of them in order. */
    dmahal_mmio_write64(d, 0, 0, 0);
    dmahal_mmio_write64(d, 0, 0, 0);
    CHECK_OK(dmahal_sim_advance(p, 0));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 2);
    CHECK_OK(dmahal_sim_advance(p, 10000000));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 5);
    for (unsigned i = 1; i < 5; i++)
        CHECK_LE_U(dmahal_mmio_read64(d, 0, 0x100 + 8 * (i - 1)),
                   dmahal_mmio_read64(d, 0, 0x100 + 8 * i));
    CHECK_GE_U(dmahal_mmio_read64(d, 0, 0x100 + 8 * 2), 1000000);
    CHECK_LT_U(dmahal_mmio_read64(d, 0, 0x100 + 8 * 2), 2000000);
    dmahal_platform_close(p);
}

TEST(time_cancel)
{
    struct dmahal_platform *p;
    struct dmahal_device *d, *other;
    uint64_t id;

    open_tick("sim", &p, &d);
    CHECK_OK(dmahal_device_open(p, "tick", &other));
    dmahal_mmio_write64(d, 0, 0, 1000000);
    id = dmahal_mmio_read64(d, 0, 0x08);
    CHECK_NE_U(id, 0);
    /* Another device cannot cancel it. */
    dmahal_mmio_write64(other, 0, 0x08, id);
    CHECK_EQ((int64_t)dmahal_mmio_read64(other, 0, 0x10), -ENOENT);
    dmahal_mmio_write64(d, 0, 0x08, id);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x10), 0);
    CHECK_OK(dmahal_sim_advance(p, 10000000));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 0);
    dmahal_mmio_write64(d, 0, 0x08, id);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x10), -ENOENT);
    /* Work that has run cannot be cancelled either. */
    dmahal_mmio_write64(d, 0, 0, 10);
    id = dmahal_mmio_read64(d, 0, 0x08);
    CHECK_OK(dmahal_sim_advance(p, 100));
    dmahal_mmio_write64(d, 0, 0x08, id);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x10), -ENOENT);
    dmahal_mmio_write64(d, 0, 0x08, 0);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x10), -EINVAL);
    dmahal_platform_close(p);
}

static void nop_work(struct dmahal_device *d, void *state, void *arg)
{
    (void)d, (void)state, (void)arg;
}

TEST(time_bad_arguments)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint64_t id = 7, ns = 7;

    open_tick("sim", &p, &d);
    CHECK_ERR(dmahal_model_schedule(NULL, 1, nop_work, NULL, &id), -EINVAL);
    CHECK_EQ_U(id, 0);
    CHECK_ERR(dmahal_model_schedule(d, 1, NULL, NULL, NULL), -EINVAL);
    CHECK_ERR(dmahal_model_schedule(d, (UINT64_C(1) << 62) + 1, nop_work, NULL, NULL), -EINVAL);
    CHECK_OK(dmahal_model_schedule(d, UINT64_C(1) << 62, nop_work, NULL, &id));
    CHECK_OK(dmahal_model_cancel(d, id));
    CHECK_ERR(dmahal_model_cancel(NULL, 1), -EINVAL);
    CHECK_ERR(dmahal_model_cancel(d, 0), -EINVAL);
    CHECK_EQ_U(dmahal_model_now(NULL), 0);
    CHECK_ERR(dmahal_sim_advance(NULL, 1), -EINVAL);
    CHECK_ERR(dmahal_sim_advance(p, (UINT64_C(1) << 62) + 1), -EINVAL);
    CHECK_ERR(dmahal_sim_now(NULL, &ns), -EINVAL);
    CHECK_EQ_U(ns, 0);
    CHECK_ERR(dmahal_sim_now(p, NULL), -EINVAL);
    dmahal_platform_close(p);
}

TEST(time_specs)
{
    static const char *const bad[] = {
        "sim:time=",        "sim:time=real", "sim:seed=",     "sim:seed=-1",
        "sim:seed=1x",      "sim:seed=abc",  "sim:mmio_ns=0", "sim:mmio_ns=1000000001",
        "sim:idle=3600001", "sim:idle=-5",   "sim:seed",
    };
    static const char *const good[] = {
        "sim:time=virtual",     "sim:time=threads",
        "sim:seed=0",           "sim:seed=0xffffffffffffffff",
        "sim:mmio_ns=1,idle=0", "sim:time=virtual,seed=42,mmio_ns=1000000000,idle=5",
    };
    struct dmahal_platform *p;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = dmahal_platform_open(bad[i], &p);

        if (rc != -EINVAL)
            test_fail(__FILE__, __LINE__, "%s: got %d", bad[i], rc);
        CHECK(p == NULL);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = dmahal_platform_open(good[i], &p);

        if (rc != 0)
            test_fail(__FILE__, __LINE__, "%s: got %d", good[i], rc);
        dmahal_platform_close(p);
    }
}

TEST(time_register_reads_move_time)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint64_t before, reads = 0;

    open_tick("sim:mmio_ns=1000", &p, &d);
    before = now_of(p);
    dmahal_mmio_read64(d, 0, 0);
    CHECK_GE_U(now_of(p) - before, 1000);
    CHECK_LE_U(now_of(p) - before, 1500);
    /* A driver polling a second of device work is not made to read a million times: once
     * its reads change nothing, time skips to the work. */
    dmahal_mmio_write64(d, 0, 0, 1000000000);
    while (dmahal_mmio_read64(d, 0, 0) == 0 && reads < 1000)
        reads++;
    CHECK_LE_U(reads, 20);
    CHECK_GE_U(now_of(p), 1000000000);
    dmahal_platform_close(p);
}

TEST(time_work_reschedules_itself)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;

    open_tick("sim", &p, &d);
    dmahal_mmio_write64(d, 0, 0x18, 1000000);
    CHECK_OK(dmahal_sim_advance(p, 100000000));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 4);
    for (unsigned i = 1; i < 4; i++) {
        uint64_t gap =
            dmahal_mmio_read64(d, 0, 0x100 + 8 * i) - dmahal_mmio_read64(d, 0, 0x100 + 8 * (i - 1));

        CHECK_GE_U(gap, 1000000);
        CHECK_LE_U(gap, 1250000);
    }
    dmahal_platform_close(p);
}

TEST(time_work_cannot_move_time)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;

    open_tick("sim", &p, &d);
    dmahal_mmio_write64(d, 0, 0x28, 10);
    CHECK_OK(dmahal_sim_advance(p, 1000));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 1);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x20), -EDEADLK);
    dmahal_platform_close(p);
}

static int flag_runs;

static void flag_work(struct dmahal_device *d, void *state, void *arg)
{
    (void)d, (void)state, (void)arg;
    flag_runs++;
}

TEST(time_closed_device_runs_nothing)
{
    struct dmahal_platform *p;
    struct dmahal_device *d, *other;

    open_tick("sim", &p, &d);
    CHECK_OK(dmahal_device_open(p, "tick", &other));
    flag_runs = 0;
    CHECK_OK(dmahal_model_schedule(d, 1000, flag_work, NULL, NULL));
    CHECK_OK(dmahal_model_schedule(other, 1000, flag_work, NULL, NULL));
    dmahal_device_close(d);
    CHECK_OK(dmahal_sim_advance(p, 1000000));
    CHECK_EQ(flag_runs, 1);
    /* Work pending when the platform closes is dropped with it. */
    CHECK_OK(dmahal_model_schedule(other, 1000, flag_work, NULL, NULL));
    dmahal_platform_close(p);
    CHECK_EQ(flag_runs, 1);
}

TEST(time_idle_driver_has_time_moved)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct timespec nap = {0, 10 * 1000 * 1000};
    int naps = 0;

    open_tick("sim:idle=5", &p, &d);
    flag_runs = 0;
    CHECK_OK(dmahal_model_schedule(d, 1000000000, flag_work, NULL, NULL));
    /* The driver waits without touching the device (it polls memory): the watcher runs the
     * work once no point has been reached for idle= ms. */
    while (__atomic_load_n(&flag_runs, __ATOMIC_ACQUIRE) == 0 && naps++ < 500)
        nanosleep(&nap, NULL);
    CHECK_EQ(__atomic_load_n(&flag_runs, __ATOMIC_ACQUIRE), 1);
    CHECK_GE_U(now_of(p), 1000000000);
    dmahal_platform_close(p);

    open_tick("sim:idle=0", &p, &d);
    CHECK_OK(dmahal_model_schedule(d, 1000, flag_work, NULL, NULL));
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    CHECK_EQ(__atomic_load_n(&flag_runs, __ATOMIC_ACQUIRE), 1);
    dmahal_platform_close(p);
}

/* A driver run whose every observation goes into a log: two tick devices with jittered
 * work of overlapping delays, polled. */
static size_t replay_run(const char *spec, char *log, size_t cap)
{
    struct dmahal_platform *p;
    struct dmahal_device *a, *b;
    size_t len = 0;

    open_tick(spec, &p, &a);
    CHECK_OK(dmahal_device_open(p, "tick", &b));
    for (unsigned round = 0; round < 8; round++) {
        dmahal_mmio_write64(a, 0, 0, 20000 + 1000 * round);
        dmahal_mmio_write64(b, 0, 0, 21000);
        dmahal_mmio_write64(a, 0, 0, 22000);
        for (unsigned i = 0; i < 40; i++) {
            uint64_t ta = dmahal_mmio_read64(a, 0, 0), tb = dmahal_mmio_read64(b, 0, 0);

            len += (size_t)snprintf(log + len, cap - len, "%llu %llu %llu;",
                                    (unsigned long long)now_of(p), (unsigned long long)ta,
                                    (unsigned long long)tb);
        }
    }
    dmahal_platform_close(p);
    return len;
}

TEST(time_same_seed_same_run)
{
    static char one[65536], two[65536];
    size_t n1 = replay_run("sim:seed=7", one, sizeof(one));
    size_t n2 = replay_run("sim:seed=7", two, sizeof(two));
    bool differs = false;

    CHECK_LT_U(n1, sizeof(one) - 1);
    CHECK_EQ_U(n1, n2);
    CHECK(memcmp(one, two, n1) == 0);
    /* Another seed, another interleaving. */
    for (unsigned seed = 8; seed < 12 && !differs; seed++) {
        char spec[32];

        snprintf(spec, sizeof(spec), "sim:seed=%u", seed);
        n2 = replay_run(spec, two, sizeof(two));
        differs = n1 != n2 || memcmp(one, two, n1) != 0;
    }
    CHECK(differs);
}

TEST(time_described)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    open_tick("sim:seed=5", &p, &d);
    dmahal_mmio_write64(d, 0, 0, 1000);
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(p, f, DMAHAL_DUMP_PLATFORM));
    fclose(f);
    CHECK_CONTAINS(text, "time: virtual (seed 5");
    CHECK_CONTAINS(text, "pending: 1");
    free(text);
    dmahal_platform_close(p);
}

/* ---- the versioned model struct ----------------------------------------------------------- */

/* struct dmahal_model as its first versioned layout had it: a model built against that
 * header. */
struct model_v1 {
    size_t size;
    const char *name;
    const char *summary;
    size_t state_size;
    uint64_t bar_size[DMAHAL_MODEL_BARS];
    int (*init)(struct dmahal_device *d, void *state, const char *args);
    void (*fini)(struct dmahal_device *d, void *state);
    uint64_t (*mmio_read)(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                          unsigned size);
    void (*mmio_write)(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                       uint64_t val, unsigned size);
};

/* A model built against a newer header: one member this library does not know. */
struct model_next {
    struct dmahal_model now;
    void (*future)(void);
};

TEST(model_struct_older_and_newer)
{
    struct model_v1 old = {
        .size = sizeof(struct model_v1),
        .name = "tick_v1",
        .summary = "a model built against the first versioned header",
        .state_size = sizeof(struct tick),
        .bar_size = {4096},
        .init = tick_init,
        .fini = tick_fini,
        .mmio_read = tick_read,
        .mmio_write = tick_write,
    };
    struct model_next next = {.now = tick_model};
    struct dmahal_platform *p;
    struct dmahal_device *d;
    const struct dmahal_model *m;

    CHECK_EQ_U(sizeof(struct model_v1), DMAHAL_MODEL_SIZE_V1);
    CHECK_LT_U(DMAHAL_MODEL_SIZE_V1, sizeof(struct dmahal_model));
    CHECK_OK(dmahal_model_register((const struct dmahal_model *)(const void *)&old));
    m = dmahal_model_find("tick_v1");
    CHECK(m != NULL);
    CHECK(m->usage == NULL); /* beyond its size: absent */
    CHECK_EQ(m->vendor_id, 0);
    CHECK_EQ(m->msix_vectors, 0);
    CHECK_EQ_U(m->size, sizeof(struct dmahal_model));
    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "tick_v1", &d));
    dmahal_mmio_write64(d, 0, 0, 10);
    CHECK_OK(dmahal_sim_advance(p, 1000));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0), 1);
    dmahal_platform_close(p);

    /* Too short for any layout. */
    old.name = "tick_short";
    old.size = DMAHAL_MODEL_SIZE_V1 - 1;
    CHECK_ERR(dmahal_model_register((const struct dmahal_model *)(const void *)&old), -EINVAL);
    old.size = 1;
    CHECK_ERR(dmahal_model_register((const struct dmahal_model *)(const void *)&old), -EINVAL);

    /* Newer: taken while the members this library lacks are unused, refused otherwise. */
    next.now.name = "tick_next";
    next.now.size = sizeof(next);
    next.future = (void (*)(void))abort;
    CHECK_ERR(dmahal_model_register(&next.now), -E2BIG);
    next.future = NULL;
    CHECK_OK(dmahal_model_register(&next.now));
    CHECK(dmahal_model_find("tick_next") != NULL);
}
