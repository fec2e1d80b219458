/* SPDX-License-Identifier: MIT */
/*
 * tick.h - a small device model for the tests of platform time: each write of N to
 * register 0 schedules a "tick" N ns later that counts itself and logs when it ran.
 *
 *   0x00 W: schedule a tick after the value's ns       R: ticks run
 *   0x08 R: the id of the last tick scheduled          W: cancel the tick with that id
 *   0x10 R: the result of that cancel (as a negated errno, two's complement)
 *   0x18 W: schedule a tick that reschedules itself the value's ns later, 4 times in all
 *   0x20 R: dmahal_sim_advance's result when a tick tries it
 *   0x28 W: as 0x00, the tick then tries dmahal_sim_advance (which must refuse)
 *   0x100 + 8i R: the time tick i ran at
 */
#ifndef DMAHAL_TEST_TICK_H
#define DMAHAL_TEST_TICK_H

#include <dmahal/device.h>

#include <pthread.h>

#define TICK_LOG 64

struct tick {
    pthread_mutex_t lock;
    uint64_t ticks, last_id;
    int64_t cancel_rc, advance_rc;
    unsigned repeats;
    uint64_t period;
    uint64_t log[TICK_LOG]; /* dmahal_model_now() in each tick, in the order they ran */
};

static void tick_work(struct dmahal_device *d, void *state, void *arg);

static void tick_record(struct dmahal_device *d, struct tick *t)
{
    if (t->ticks < TICK_LOG)
        t->log[t->ticks] = dmahal_model_now(d);
    t->ticks++;
}

static void tick_work(struct dmahal_device *d, void *state, void *arg)
{
    struct tick *t = state;
    uintptr_t kind = (uintptr_t)arg;

    pthread_mutex_lock(&t->lock);
    tick_record(d, t);
    if (kind == 1 && --t->repeats)
        dmahal_model_schedule(d, t->period, tick_work, (void *)1, NULL);
    if (kind == 2)
        t->advance_rc = dmahal_sim_advance(dmahal_device_platform(d), 1);
    pthread_mutex_unlock(&t->lock);
}

static int tick_init(struct dmahal_device *d, void *state, const char *args)
{
    (void)d, (void)args;
    return -pthread_mutex_init(&((struct tick *)state)->lock, NULL);
}

static void tick_fini(struct dmahal_device *d, void *state)
{
    (void)d;
    pthread_mutex_destroy(&((struct tick *)state)->lock);
}

static uint64_t tick_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                          unsigned size)
{
    struct tick *t = state;
    uint64_t v = 0;

    (void)d, (void)bar, (void)size;
    pthread_mutex_lock(&t->lock);
    if (off == 0x00)
        v = t->ticks;
    else if (off == 0x08)
        v = t->last_id;
    else if (off == 0x10)
        v = (uint64_t)t->cancel_rc;
    else if (off == 0x20)
        v = (uint64_t)t->advance_rc;
    else if (off >= 0x100 && off < 0x100 + 8 * TICK_LOG)
        v = t->log[(off - 0x100) / 8];
    pthread_mutex_unlock(&t->lock);
    return v;
}

static void tick_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                       uint64_t val, unsigned size)
{
    struct tick *t = state;

    (void)bar, (void)size;
    pthread_mutex_lock(&t->lock);
    if (off == 0x00 || off == 0x28)
        dmahal_model_schedule(d, val, tick_work, (void *)(uintptr_t)(off == 0x28 ? 2 : 0),
                              &t->last_id);
    else if (off == 0x08)
        t->cancel_rc = dmahal_model_cancel(d, val);
    else if (off == 0x18) {
        t->repeats = 4;
        t->period = val;
        dmahal_model_schedule(d, val, tick_work, (void *)1, &t->last_id);
    }
    pthread_mutex_unlock(&t->lock);
}

static const struct dmahal_model tick_model = {
    .size = sizeof(struct dmahal_model),
    .name = "tick",
    .summary = "schedules ticks: a test of platform time",
    .state_size = sizeof(struct tick),
    .bar_size = {4096},
    .init = tick_init,
    .fini = tick_fini,
    .mmio_read = tick_read,
    .mmio_write = tick_write,
};

/* Registers the model once per process. */
static void tick_register(void)
{
    int rc = dmahal_model_register(&tick_model);

    if (rc != 0 && rc != -EEXIST)
        abort();
}

#endif /* DMAHAL_TEST_TICK_H */
