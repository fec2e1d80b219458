/* SPDX-License-Identifier: MIT */
/*
 * time.c - the simulated machine's time: device work deferred by models
 * (dmahal_model_schedule), run in virtual time at defined points or on a thread per device
 * in real time.
 *
 * Virtual time is one clock per platform and one queue of work ordered by (due time, id).
 * Time moves only at the points device.h lists; whoever moves it (a driver thread in a
 * register read or dmahal_sim_advance, the idle watcher) takes run_lock and runs the work
 * that has fallen due, one callback at a time. Ids come from a counter and jitter from a
 * generator seeded by seed=, both under the queue's lock, so a driver that reaches the same
 * points in the same order gets the same run. With time=threads each device has a queue
 * and a thread of its own, and due times are CLOCK_MONOTONIC since the platform opened.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DELAY   ((uint64_t)1 << 62)
#define SPIN_READS  16 /* register reads in a row with nothing run: the driver is polling */
#define NS_PER_SEC  UINT64_C(1000000000)
#define NS_PER_MSEC UINT64_C(1000000)

/* The work running on this thread, if any: device work may not move time itself. */
static DMAHAL__TLS const struct sim_work *running_here;
/* The driver's register write in progress on this thread, for the work it queues. */
static DMAHAL__TLS struct sim_origin writing_here;

/* ---- the queue: a binary min-heap of (when, id) ------------------------------------------ */

static bool before(const struct sim_work *a, const struct sim_work *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void sift_up(struct sim_queue *q, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct sim_work *t;

        if (!before(q->heap[i], q->heap[parent]))
            break;
        t = q->heap[i];
        q->heap[i] = q->heap[parent];
        q->heap[parent] = t;
        i = parent;
    }
}

static void sift_down(struct sim_queue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct sim_work *t;

        if (l < q->n && before(q->heap[l], q->heap[m]))
            m = l;
        if (r < q->n && before(q->heap[r], q->heap[m]))
            m = r;
        if (m == i)
            break;
        t = q->heap[i];
        q->heap[i] = q->heap[m];
        q->heap[m] = t;
        i = m;
    }
}

static int queue_push(struct sim_queue *q, struct sim_work *w)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 16;
        struct sim_work **h = realloc(q->heap, cap * sizeof(*h));

        if (!h)
            return -ENOMEM;
        q->heap = h;
        q->cap = cap;
    }
    q->heap[q->n] = w;
    sift_up(q, q->n++);
    return 0;
}

static struct sim_work *queue_remove_at(struct sim_queue *q, size_t i)
{
    struct sim_work *w = q->heap[i];

    q->heap[i] = q->heap[--q->n];
    if (i < q->n) {
        sift_down(q, i);
        sift_up(q, i);
    }
    return w;
}

static struct sim_work *queue_top(const struct sim_queue *q)
{
    return q->n ? q->heap[0] : NULL;
}

/* Drops every piece of work of @d (all if @d is NULL). */
static void queue_drop(struct sim_queue *q, struct dmahal_device *d)
{
    for (size_t i = q->n; i-- > 0;)
        if (!d || q->heap[i]->d == d)
            free(queue_remove_at(q, i));
}

static void queue_fini(struct sim_queue *q)
{
    queue_drop(q, NULL);
    free(q->heap);
    *q = (struct sim_queue){0};
}

/* ---- clocks ---------------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t real_now(const struct sim *s)
{
    return mono_ns() - s->t0;
}

static struct timespec mono_at(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / NS_PER_SEC),
                             .tv_nsec = (long)(ns % NS_PER_SEC)};
}

/* splitmix64: small, and the same sequence from the same seed everywhere. Under tlock. */
static uint64_t rng_next(struct sim *s)
{
    uint64_t z = (s->rng += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t jitter(struct sim *s, uint64_t delay, unsigned shift)
{
    return delay ? rng_next(s) % ((delay >> shift) + 1) : 0;
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

/* ---- running work ------------------------------------------------------------------------ */

static void run_one(struct sim_work *w)
{
    struct sim_dev *sd = dmahal__dev(w->d)->priv;

    running_here = w;
    w->fn(w->d, sd->state, w->arg);
    running_here = NULL;
    free(w);
}

/*
 * Virtual time: moves the clock to @target (to the next work first when @skip and it lies
 * beyond), running what falls due. Returns how many pieces of work ran.
 */
static unsigned advance_to(struct sim *s, uint64_t target, bool skip)
{
    unsigned ran = 0;
    struct sim_work *w;

    pthread_mutex_lock(&s->run_lock);
    pthread_mutex_lock(&s->tlock);
    w = queue_top(&s->queue);
    if (skip && w && w->when > target)
        target = w->when;
    while ((w = queue_top(&s->queue)) && w->when <= target) {
        queue_remove_at(&s->queue, 0);
        if (w->when > atomic_load_explicit(&s->now, memory_order_relaxed))
            atomic_store_explicit(&s->now, w->when, memory_order_relaxed);
        s->works_run++;
        pthread_mutex_unlock(&s->tlock);
        run_one(w);
        ran++;
        pthread_mutex_lock(&s->tlock);
    }
    if (target > atomic_load_explicit(&s->now, memory_order_relaxed))
        atomic_store_explicit(&s->now, target, memory_order_relaxed);
    pthread_mutex_unlock(&s->tlock);
    pthread_mutex_unlock(&s->run_lock);
    return ran;
}

/* The idle watcher: a driver that reached no point for idle ms has time moved for it. */
static void *idle_main(void *arg)
{
    struct sim *s = arg;
    uint64_t last;

    pthread_mutex_lock(&s->tlock);
    last = s->points;
    while (!s->idle_stop) {
        struct timespec at = mono_at(mono_ns() + s->idle_ms * NS_PER_MSEC);

        pthread_cond_timedwait(&s->idle_cond, &s->tlock, &at);
        if (s->idle_stop)
            break;
        if (s->points == last && s->queue.n) {
            s->idle_runs++;
            pthread_mutex_unlock(&s->tlock);
            advance_to(s, atomic_load_explicit(&s->now, memory_order_relaxed), true);
            pthread_mutex_lock(&s->tlock);
        }
        last = s->points;
    }
    pthread_mutex_unlock(&s->tlock);
    return NULL;
}

/* A device's thread with time=threads. */
static void *device_main(void *arg)
{
    struct sim_clock *c = arg;

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        struct sim_work *w = queue_top(&c->queue);
        uint64_t now = real_now(c->s);

        if (!w) {
            pthread_cond_wait(&c->cond, &c->lock);
            continue;
        }
        if (w->when > now) {
            struct timespec at = mono_at(c->s->t0 + w->when);

            pthread_cond_timedwait(&c->cond, &c->lock, &at);
            continue;
        }
        queue_remove_at(&c->queue, 0);
        c->works_run++;
        pthread_mutex_unlock(&c->lock);
        run_one(w);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- the platform's side ---------------------------------------------------------------- */

int dmahal__sim_time_option(struct sim *s, const char *key, const char *val, bool *taken)
{
    uint64_t v;

    *taken = true;
    if (strcmp(key, "time") == 0) {
        if (strcmp(val, "virtual") == 0)
            s->threads = false;
        else if (strcmp(val, "threads") == 0)
            s->threads = true;
        else
            return -EINVAL;
        return 0;
    }
    if (strcmp(key, "seed") && strcmp(key, "mmio_ns") && strcmp(key, "idle")) {
        *taken = false;
        return 0;
    }
    /* Plain numbers: no size suffixes, nothing after the digits. */
    if (*val < '0' || *val > '9')
        return -EINVAL;
    {
        char *end;

        errno = 0;
        v = strtoull(val, &end, 0);
        if (errno || *end)
            return -EINVAL;
    }
    if (strcmp(key, "seed") == 0)
        s->seed = v;
    else if (strcmp(key, "mmio_ns") == 0) {
        if (v == 0 || v > NS_PER_SEC)
            return -EINVAL;
        s->mmio_ns = v;
    } else {
        if (v > 3600 * 1000)
            return -EINVAL;
        s->idle_ms = (unsigned)v;
    }
    return 0;
}

void dmahal__sim_time_defaults(struct sim *s)
{
    s->mmio_ns = 500;
    s->idle_ms = 100;
}

void dmahal__sim_time_init(struct sim *s)
{
    pthread_mutex_init(&s->tlock, NULL);
    pthread_mutex_init(&s->run_lock, NULL);
    cond_init_mono(&s->idle_cond);
    s->rng = s->seed;
    s->t0 = mono_ns();
}

void dmahal__sim_time_fini(struct sim *s)
{
    if (s->idle_started) {
        pthread_mutex_lock(&s->tlock);
        s->idle_stop = true;
        pthread_cond_signal(&s->idle_cond);
        pthread_mutex_unlock(&s->tlock);
        pthread_join(s->idle_thread, NULL);
    }
    queue_fini(&s->queue);
    pthread_cond_destroy(&s->idle_cond);
    pthread_mutex_destroy(&s->run_lock);
    pthread_mutex_destroy(&s->tlock);
}

int dmahal__sim_time_device_open(struct sim *s, struct sim_dev *sd)
{
    struct sim_clock *c;
    int rc;

    sd->s = s;
    if (!s->threads)
        return 0;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->s = s;
    pthread_mutex_init(&c->lock, NULL);
    cond_init_mono(&c->cond);
    rc = -pthread_create(&c->thread, NULL, device_main, c);
    if (rc) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    sd->clock = c;
    return 0;
}

void dmahal__sim_time_device_close(struct sim *s, struct dmahal_device *d)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    struct sim_clock *c = sd->clock;

    if (c) {
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
        queue_fini(&c->queue);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c);
        sd->clock = NULL;
        return;
    }
    /* Under run_lock: none of the device's work is running elsewhere. */
    pthread_mutex_lock(&s->run_lock);
    pthread_mutex_lock(&s->tlock);
    queue_drop(&s->queue, d);
    pthread_mutex_unlock(&s->tlock);
    pthread_mutex_unlock(&s->run_lock);
}

void dmahal__sim_time_read_point(struct sim *s)
{
    uint64_t target;
    bool skip;

    if (s->threads || running_here)
        return;
    pthread_mutex_lock(&s->tlock);
    s->points++;
    target =
        atomic_load_explicit(&s->now, memory_order_relaxed) + s->mmio_ns + jitter(s, s->mmio_ns, 1);
    skip = s->spin >= SPIN_READS;
    if (!s->queue.n) {
        /* Nothing to run: the clock just moves. */
        atomic_store_explicit(&s->now, target, memory_order_relaxed);
        s->spin = 0;
        pthread_mutex_unlock(&s->tlock);
        return;
    }
    pthread_mutex_unlock(&s->tlock);
    if (advance_to(s, target, skip)) {
        pthread_mutex_lock(&s->tlock);
        s->spin = 0;
        pthread_mutex_unlock(&s->tlock);
    } else {
        pthread_mutex_lock(&s->tlock);
        s->spin++;
        pthread_mutex_unlock(&s->tlock);
    }
}

void dmahal__sim_wait_point(struct dmahal_device *d, uint64_t max_ns, bool (*ready)(void *ctx),
                            void *ctx)
{
    struct sim *s = ((struct sim_dev *)dmahal__dev(d)->priv)->s;
    uint64_t deadline;

    if (s->threads || running_here)
        return;
    if (max_ns == 0) {
        /* Only a look: as a register read. */
        dmahal__sim_time_read_point(s);
        return;
    }
    pthread_mutex_lock(&s->tlock);
    s->points++;
    s->spin = 0;
    deadline = atomic_load_explicit(&s->now, memory_order_relaxed);
    deadline = max_ns > MAX_DELAY ? UINT64_MAX : deadline + max_ns;
    pthread_mutex_unlock(&s->tlock);
    while (!ready(ctx)) {
        struct sim_work *w;
        uint64_t when = 0;

        pthread_mutex_lock(&s->tlock);
        w = queue_top(&s->queue);
        if (w)
            when = w->when;
        pthread_mutex_unlock(&s->tlock);
        if (!w || when > deadline) {
            /* Nothing comes in time: the wait's time passes. */
            if (deadline != UINT64_MAX)
                advance_to(s, deadline, false);
            break;
        }
        advance_to(s, when, false);
    }
}

void dmahal__sim_time_describe(struct sim *s, FILE *f)
{
    uint64_t now, run, pending = 0, idle;

    if (s->threads) {
        fprintf(f, "time: threads (a thread per device, real time)\n");
        return;
    }
    pthread_mutex_lock(&s->tlock);
    now = atomic_load_explicit(&s->now, memory_order_relaxed);
    run = s->works_run;
    pending = s->queue.n;
    idle = s->idle_runs;
    pthread_mutex_unlock(&s->tlock);
    fprintf(f, "time: virtual (seed %llu, register read %llu ns, idle %u ms)\n",
            (unsigned long long)s->seed, (unsigned long long)s->mmio_ns, s->idle_ms);
    fprintf(f, "time now: %llu ns, device work run: %llu, pending: %llu, idle advances: %llu\n",
            (unsigned long long)now, (unsigned long long)run, (unsigned long long)pending,
            (unsigned long long)idle);
}

void dmahal__sim_time_write_begin(struct sim *s, unsigned bar, uint64_t off, uint64_t val,
                                  unsigned size)
{
    writing_here = (struct sim_origin){
        true, bar, size,
        off,  val, s->threads ? real_now(s) : atomic_load_explicit(&s->now, memory_order_relaxed)};
}

void dmahal__sim_time_write_end(void)
{
    writing_here.set = false;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

size_t dmahal__sim_dev_activity(struct dmahal_device *d, char *buf, size_t size)
{
    const struct sim_work *w = running_here;
    int n;

    if (!w || w->d != d || size == 0)
        return 0;
    if (w->origin.set)
        n = snprintf(buf, size,
                     "in work due at %.6f ms, queued at %.6f ms, started by the driver's %u-byte "
                     "write of %#llx to BAR%u+%#llx at %.6f ms",
                     ms(w->when), ms(w->queued), w->origin.size, (unsigned long long)w->origin.val,
                     w->origin.bar, (unsigned long long)w->origin.off, ms(w->origin.at));
    else
        n = snprintf(buf, size, "in work due at %.6f ms, queued at %.6f ms", ms(w->when),
                     ms(w->queued));
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- the model's side ------------------------------------------------------------------ */

/* The model instance behind @d, or NULL when @d is not a simulated device. */
static struct sim_dev *sim_dev_of(struct dmahal_device *d)
{
    if (!d || dmahal__dev_plat(d)->ops != &dmahal__sim_ops)
        return NULL;
    return dmahal__dev(d)->priv;
}

int dmahal_model_schedule(struct dmahal_device *d, uint64_t delay_ns, dmahal_work_fn fn, void *arg,
                          uint64_t *id)
{
    struct sim_dev *sd;
    struct sim_work *w;
    struct sim *s;
    int rc;

    if (id)
        *id = 0;
    if (!d || !fn || delay_ns > MAX_DELAY)
        return -EINVAL;
    sd = sim_dev_of(d);
    if (!sd)
        return -ENOTSUP;
    s = sd->s;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->d = d;
    w->fn = fn;
    w->arg = arg;
    /* Work queued by work inherits its origin: the chain began at one register write. */
    if (running_here)
        w->origin = running_here->origin;
    else if (writing_here.set)
        w->origin = writing_here;
    pthread_mutex_lock(&s->tlock);
    w->id = ++s->next_id;
    w->queued = s->threads ? real_now(s) : atomic_load_explicit(&s->now, memory_order_relaxed);
    w->when = w->queued + delay_ns + jitter(s, delay_ns, 2);
    if (!s->threads) {
        rc = queue_push(&s->queue, w);
        if (rc == 0 && s->idle_ms && !s->idle_started &&
            pthread_create(&s->idle_thread, NULL, idle_main, s) == 0)
            s->idle_started = true;
    }
    pthread_mutex_unlock(&s->tlock);
    if (s->threads) {
        struct sim_clock *c = sd->clock;

        pthread_mutex_lock(&c->lock);
        rc = queue_push(&c->queue, w);
        if (rc == 0 && queue_top(&c->queue) == w)
            pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
    if (rc) {
        free(w);
        return rc;
    }
    if (id)
        *id = w->id;
    return 0;
}

static int cancel_in(struct sim_queue *q, struct dmahal_device *d, uint64_t id)
{
    for (size_t i = 0; i < q->n; i++) {
        if (q->heap[i]->id == id && q->heap[i]->d == d) {
            free(queue_remove_at(q, i));
            return 0;
        }
    }
    return -ENOENT;
}

int dmahal_model_cancel(struct dmahal_device *d, uint64_t id)
{
    struct sim_dev *sd;
    int rc;

    if (!d || id == 0)
        return -EINVAL;
    sd = sim_dev_of(d);
    if (!sd)
        return -ENOTSUP;
    if (sd->clock) {
        pthread_mutex_lock(&sd->clock->lock);
        rc = cancel_in(&sd->clock->queue, d, id);
        pthread_mutex_unlock(&sd->clock->lock);
    } else {
        pthread_mutex_lock(&sd->s->tlock);
        rc = cancel_in(&sd->s->queue, d, id);
        pthread_mutex_unlock(&sd->s->tlock);
    }
    return rc;
}

uint64_t dmahal_model_now(struct dmahal_device *d)
{
    struct sim_dev *sd = sim_dev_of(d);

    if (!sd)
        return 0;
    if (sd->s->threads)
        return real_now(sd->s);
    return atomic_load_explicit(&sd->s->now, memory_order_relaxed);
}

/* ---- the driver's side --------------------------------------------------------------- */

static struct sim *sim_of_platform(struct dmahal_platform *p)
{
    return dmahal__plat(p)->ops == &dmahal__sim_ops ? dmahal__plat(p)->priv : NULL;
}

int dmahal_sim_advance(struct dmahal_platform *p, uint64_t ns)
{
    struct sim *s;

    if (!p || ns > MAX_DELAY)
        return -EINVAL;
    s = sim_of_platform(p);
    if (!s)
        return -ENOTSUP;
    if (running_here)
        return -EDEADLK;
    if (s->threads) {
        struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_SEC),
                              .tv_nsec = (long)(ns % NS_PER_SEC)};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return 0;
    }
    pthread_mutex_lock(&s->tlock);
    s->points++;
    s->spin = 0;
    pthread_mutex_unlock(&s->tlock);
    advance_to(s, atomic_load_explicit(&s->now, memory_order_relaxed) + ns, false);
    return 0;
}

int dmahal_sim_now(struct dmahal_platform *p, uint64_t *ns)
{
    struct sim *s;

    if (ns)
        *ns = 0;
    if (!p || !ns)
        return -EINVAL;
    s = sim_of_platform(p);
    if (!s)
        return -ENOTSUP;
    *ns = s->threads ? real_now(s) : atomic_load_explicit(&s->now, memory_order_relaxed);
    return 0;
}
