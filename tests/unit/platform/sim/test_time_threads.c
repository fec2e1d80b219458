/* SPDX-License-Identifier: MIT */
/* test_time_threads.c - device work with time=threads: a thread per device, real time,
 * drivers on several threads at once (run under ThreadSanitizer). */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <pthread.h>
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

/* Polls register 0 until it reads @want, for up to 5 s of real time. */
static bool wait_ticks(struct dmahal_device *d, uint64_t want)
{
    for (int i = 0; i < 5000; i++) {
        if (dmahal_mmio_read64(d, 0, 0) >= want)
            return true;
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
    return false;
}

TEST(threads_work_runs_in_real_time)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint64_t start, ran;

    open_tick("sim:time=threads", &p, &d);
    CHECK_OK(dmahal_sim_now(p, &start));
    dmahal_mmio_write64(d, 0, 0, 2000000);
    CHECK(wait_ticks(d, 1));
    ran = dmahal_mmio_read64(d, 0, 0x100);
    CHECK_GE_U(ran - start, 2000000);
    /* dmahal_sim_advance sleeps: real time passes. */
    CHECK_OK(dmahal_sim_now(p, &start));
    CHECK_OK(dmahal_sim_advance(p, 1000000));
    CHECK_OK(dmahal_sim_now(p, &ran));
    CHECK_GE_U(ran - start, 1000000);
    dmahal_mmio_write64(d, 0, 0x18, 100000);
    CHECK(wait_ticks(d, 5));
    dmahal_platform_close(p);
}

TEST(threads_cancel_and_close)
{
    struct dmahal_platform *p;
    struct dmahal_device *d, *other;
    uint64_t id;

    open_tick("sim:time=threads", &p, &d);
    CHECK_OK(dmahal_device_open(p, "tick", &other));
    dmahal_mmio_write64(d, 0, 0, 10000000000); /* 10 s */
    id = dmahal_mmio_read64(d, 0, 0x08);
    dmahal_mmio_write64(d, 0, 0x08, id);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x10), 0);
    dmahal_mmio_write64(d, 0, 0x08, id);
    CHECK_EQ((int64_t)dmahal_mmio_read64(d, 0, 0x10), -ENOENT);
    /* Pending work of a closed device never runs; the platform still closes at once. */
    dmahal_mmio_write64(other, 0, 0, 10000000000);
    dmahal_device_close(other);
    dmahal_mmio_write64(d, 0, 0, 10000000000);
    dmahal_platform_close(p);
}

struct driver {
    struct dmahal_device *d;
    unsigned n;
};

static void *driver_main(void *arg)
{
    struct driver *dr = arg;

    for (unsigned i = 0; i < dr->n; i++)
        dmahal_mmio_write64(dr->d, 0, 0, (i % 7) * 10000);
    return NULL;
}

TEST(threads_many_drivers_many_devices)
{
    struct dmahal_platform *p;
    struct dmahal_device *d[2];
    struct driver dr[4];
    pthread_t t[4];

    open_tick("sim:time=threads", &p, &d[0]);
    CHECK_OK(dmahal_device_open(p, "tick", &d[1]));
    for (int i = 0; i < 4; i++) {
        dr[i] = (struct driver){d[i % 2], 500};
        CHECK_EQ(pthread_create(&t[i], NULL, driver_main, &dr[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(wait_ticks(d[0], 1000));
    CHECK(wait_ticks(d[1], 1000));
    CHECK_EQ_U(dmahal_mmio_read64(d[0], 0, 0), 1000);
    dmahal_platform_close(p);
}
