/* SPDX-License-Identifier: MIT */
/*
 * test_irq_threads.c - interrupts across threads on the sim: a wait in one thread returns
 * when the device raises in another; disable while waits are pending ends them with
 * -ECANCELED instead of leaving them hanging; device close does the same.
 */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "edu/edu_regs.h"
#include "rig.h"
#include "test.h"

struct waiter {
    struct dmahal_device *d;
    int timeout_ms;
    atomic_int started;
    int rc;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;

    atomic_store(&w->started, 1);
    w->rc = dmahal_irq_wait(w->d, 0, w->timeout_ms);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

TEST(irq_thread_wait_wakes_on_a_raise_elsewhere)
{
    struct dmahal_desc desc = {.addr_bits = 28};
    struct rig r;
    struct waiter w = {.timeout_ms = 10000};
    pthread_t t;

    rig_open(&r, "sim", &desc);
    w.d = r.d;
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSI, 1), 1);
    for (int round = 0; round < 50; round++) {
        atomic_store(&w.started, 0);
        w.rc = 1;
        CHECK_OK(pthread_create(&t, NULL, wait_thread, &w));
        while (!atomic_load(&w.started))
            sched_yield();
        dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x1);
        CHECK_OK(pthread_join(t, NULL));
        CHECK_EQ(w.rc, 0);
        dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x1);
    }
    rig_close(&r);
}

TEST(irq_thread_disable_ends_pending_waits)
{
    struct dmahal_desc desc = {.addr_bits = 28};
    struct rig r;
    struct waiter w[3];
    pthread_t t[3];

    rig_open(&r, "sim", &desc);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter){.d = r.d, .timeout_ms = i == 0 ? -1 : 60000, .rc = 1};
        CHECK_OK(pthread_create(&t[i], NULL, wait_thread, &w[i]));
    }
    for (int i = 0; i < 3; i++)
        while (!atomic_load(&w[i].started))
            sched_yield();
    sleep_ms(20); /* let them reach poll */
    CHECK_OK(dmahal_irq_disable(r.d));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(pthread_join(t[i], NULL));
        CHECK_EQ(w[i].rc, -ECANCELED);
    }
    /* Enabled again, it works again. */
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x1);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 1000));
    rig_close(&r);
}

TEST(irq_thread_device_close_ends_a_pending_wait)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct waiter w = {.timeout_ms = -1, .rc = 1};
    pthread_t t;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_EQ(dmahal_irq_enable(d, DMAHAL_IRQ_MSI, 1), 1);
    w.d = d;
    CHECK_OK(pthread_create(&t, NULL, wait_thread, &w));
    while (!atomic_load(&w.started))
        sched_yield();
    sleep_ms(20);
    /* Only the interrupt part of close may race the wait; the rest needs the thread gone. */
    CHECK_OK(dmahal_irq_disable(d));
    CHECK_OK(pthread_join(t, NULL));
    CHECK_EQ(w.rc, -ECANCELED);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(irq_thread_raises_from_many_threads_all_arrive)
{
    struct dmahal_desc desc = {.addr_bits = 28};
    struct rig r;
    int got = 0;

    rig_open(&r, "sim", &desc);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSI, 1), 1);
    /* Raises and waits interleave: each wait consumes what has arrived so far. */
    for (int i = 0; i < 200; i++) {
        dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x1);
        if (dmahal_irq_wait(r.d, 0, 1000) == 0)
            got++;
    }
    CHECK_EQ(got, 200);
    rig_close(&r);
}
