/* SPDX-License-Identifier: MIT */
/*
 * bench_irq.c - interrupt-to-wake latency on the simulated platform: a device model raises
 * (edu's raise register, MSI enabled, so the model sends a message) and another thread,
 * blocked in dmahal_irq_wait(), wakes; against the floor under it, a bare eventfd write in
 * one thread waking poll() + read() in another.
 *
 * Both contestants do the same round trip: the main thread notes the time and signals; the
 * waiter wakes, notes the latency, and answers on a second eventfd (the same way for both),
 * so only the one-way signal-to-wake time is measured. They run interleaved, in rotating
 * order; the report gives each one's median latency and the median of per-repetition ratios.
 */
#include "harness.h"

#include <dmahal/dmahal.h>

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "edu/edu_regs.h"

#define MAX_REPS  200
#define MAX_ITERS 4000

struct side {
    bool dmahal;             /* false: the bare eventfd */
    struct dmahal_device *d; /* dmahal: the edu, MSI enabled */
    int efd;                 /* bare: the eventfd the main thread writes */
    int ack;                 /* the waiter's answer, both contestants */
    unsigned iters;
    _Atomic uint64_t t0;   /* when the main thread signalled */
    double lat[MAX_ITERS]; /* ns, per round */
    int err;
};

static void wait_fd(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint64_t v;

    while (poll(&p, 1, -1) != 1)
        ;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        abort();
}

static void signal_fd(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one))
        abort();
}

static void *waiter(void *arg)
{
    struct side *s = arg;

    for (unsigned i = 0; i < s->iters; i++) {
        if (s->dmahal) {
            int rc = dmahal_irq_wait(s->d, 0, 5000);

            if (rc) {
                s->err = rc;
                signal_fd(s->ack);
                return NULL;
            }
        } else {
            wait_fd(s->efd);
        }
        s->lat[i] = (double)(bench_now_ns() - atomic_load(&s->t0));
        signal_fd(s->ack);
    }
    return NULL;
}

/* One repetition: @s->iters round trips; the median latency in ns, or -1. */
static double run(struct side *s)
{
    pthread_t t;

    if (pthread_create(&t, NULL, waiter, s))
        return -1;
    for (unsigned i = 0; i < s->iters; i++) {
        atomic_store(&s->t0, bench_now_ns());
        if (s->dmahal)
            dmahal_mmio_write32(s->d, 0, EDU_REG_IRQ_RAISE, 0x1);
        else
            signal_fd(s->efd);
        wait_fd(s->ack);
        if (s->err)
            break;
    }
    pthread_join(t, NULL);
    if (s->err) {
        fprintf(stderr, "bench_irq: dmahal_irq_wait: %s\n", dmahal_strerror(s->err));
        return -1;
    }
    return bench_median(s->lat, s->iters);
}

static const char usage[] = "usage: bench_irq [--quick] [--reps N]\n"
                            "  interrupt-to-wake latency: a sim model's MSI through\n"
                            "  dmahal_irq_wait against a bare eventfd -> poll wake\n";

int main(int argc, char **argv)
{
    static struct side sides[2];
    static double med[2][MAX_REPS], ratio[MAX_REPS];
    struct dmahal_platform *p = NULL;
    struct dmahal_device *d = NULL;
    struct bench_opts o;
    int rc = bench_parse(argc, argv, usage, &o), status = 1;
    unsigned reps;

    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    reps = o.reps > MAX_REPS ? MAX_REPS : o.reps;
    if (o.quick)
        reps = 3;
    if (dmahal_platform_open("sim", &p) || dmahal_device_open(p, "edu", &d) ||
        dmahal_irq_enable(d, DMAHAL_IRQ_MSI, 1) != 1) {
        fprintf(stderr, "bench_irq: cannot set up the sim's edu with MSI\n");
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        sides[i] = (struct side){.dmahal = i == 0, .d = d, .iters = o.quick ? 200 : 2000};
        sides[i].ack = eventfd(0, 0);
        sides[i].efd = eventfd(0, 0);
        if (sides[i].ack < 0 || sides[i].efd < 0)
            goto out;
    }
    bench_print_machine();
    /* A warm-up of each, untimed. */
    if (run(&sides[0]) < 0 || run(&sides[1]) < 0)
        goto out;
    for (unsigned r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int i = (int)(r + (unsigned)k) % 2;

            med[i][r] = run(&sides[i]);
            if (med[i][r] < 0)
                goto out;
        }
        ratio[r] = med[0][r] / med[1][r];
    }
    printf("interrupt-to-wake latency, median of %u repetitions x %u wakes:\n", reps,
           sides[0].iters);
    printf("  %-44s %8.2f us\n", "sim model MSI -> dmahal_irq_wait (edu raise)",
           bench_median(med[0], reps) / 1e3);
    printf("  %-44s %8.2f us\n", "bare eventfd write -> poll + read",
           bench_median(med[1], reps) / 1e3);
    printf("  ratio dmahal / bare: %.3fx (median of per-repetition ratios; goal <= 1.5x)\n",
           bench_median(ratio, reps));
    status = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (sides[i].ack > 0)
            close(sides[i].ack);
        if (sides[i].efd > 0)
            close(sides[i].efd);
    }
    dmahal_device_close(d);
    dmahal_platform_close(p);
    return status;
}
