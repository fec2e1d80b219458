/* SPDX-License-Identifier: MIT */
/*
 * irq.c - interrupts: one eventfd per enabled vector, handed to the platform, which makes it
 * readable when the vector fires (VFIO_DEVICE_SET_IRQS on vfio, the models' raises on sim).
 * A wait polls the vector's fd together with a cancel eventfd, so that disable can end
 * every pending wait before it closes the fds.
 */
#include "core/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

void dmahal__irq_init(struct dmahal_device *d)
{
    pthread_mutex_init(&d->irq.lock, NULL);
    pthread_cond_init(&d->irq.idle, NULL);
    d->irq.cancel = -1;
}

void dmahal__irq_fini(struct dmahal_device *d)
{
    if (d->irq.type)
        dmahal_irq_disable(d);
    pthread_cond_destroy(&d->irq.idle);
    pthread_mutex_destroy(&d->irq.lock);
}

static bool type_ok(enum dmahal_irq_type type)
{
    return type == DMAHAL_IRQ_INTX || type == DMAHAL_IRQ_MSI || type == DMAHAL_IRQ_MSIX;
}

int dmahal_irq_count(struct dmahal_device *d, enum dmahal_irq_type type)
{
    unsigned n;

    if (!d || !type_ok(type))
        return -EINVAL;
    if (!d->p->ops->irq_count)
        return 0;
    n = d->p->ops->irq_count(d, type);
    return n > 2048 ? 2048 : (int)n;
}

/* ANY: the best type the device has. */
static enum dmahal_irq_type best_type(struct dmahal_device *d)
{
    static const enum dmahal_irq_type order[] = {DMAHAL_IRQ_MSIX, DMAHAL_IRQ_MSI, DMAHAL_IRQ_INTX};

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (dmahal_irq_count(d, order[i]) > 0)
            return order[i];
    return DMAHAL_IRQ_ANY;
}

static void close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* The eventfds of @n vectors, plus the cancel fd; -errno with nothing left open. */
static int make_fds(unsigned n, int **fds, int **own, int *cancel)
{
    int rc = 0;

    *fds = calloc(n, sizeof(int));
    *own = calloc(n, sizeof(int));
    if (!*fds || !*own) {
        rc = -ENOMEM;
        goto err_alloc;
    }
    for (unsigned i = 0; i < n; i++)
        (*own)[i] = -1;
    for (unsigned i = 0; i < n; i++) {
        (*own)[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if ((*own)[i] < 0) {
            rc = -errno;
            goto err_fds;
        }
        (*fds)[i] = (*own)[i];
    }
    *cancel = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (*cancel < 0) {
        rc = -errno;
        goto err_fds;
    }
    return 0;

err_fds:
    close_fds(*own, n);
err_alloc:
    free(*fds);
    free(*own);
    *fds = *own = NULL;
    return rc;
}

int dmahal_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec)
{
    int *fds = NULL, *own = NULL, cancel = -1, have, rc;

    if (!d || (type != DMAHAL_IRQ_ANY && !type_ok(type)))
        return -EINVAL;
    if (!d->p->ops->irq_count)
        return -ENOTSUP;
    if (type == DMAHAL_IRQ_ANY)
        type = best_type(d);
    have = type == DMAHAL_IRQ_ANY ? 0 : dmahal_irq_count(d, type);
    if (have <= 0)
        return -ENOTSUP;
    if (nvec == 0 || nvec > (unsigned)have)
        nvec = (unsigned)have;
    /* MSI grants a power of two (Multiple Message Enable): round down. */
    if (type == DMAHAL_IRQ_MSI)
        nvec = 1u << (31 - __builtin_clz(nvec));
    pthread_mutex_lock(&d->irq.lock);
    if (d->irq.type || d->irq.closing) {
        rc = -EBUSY;
        goto out;
    }
    rc = make_fds(nvec, &fds, &own, &cancel);
    if (rc)
        goto out;
    rc = d->p->ops->irq_enable(d, type, nvec, fds);
    if (rc) {
        close_fds(own, nvec);
        close(cancel);
        free(fds);
        free(own);
        goto out;
    }
    d->irq.fds = fds;
    d->irq.own = own;
    d->irq.cancel = cancel;
    d->irq.nvec = nvec;
    d->irq.type = type;
    atomic_store_explicit(&d->irq.mode, (unsigned)type | nvec << 8, memory_order_release);
    rc = (int)nvec;
out:
    pthread_mutex_unlock(&d->irq.lock);
    return rc;
}

int dmahal_irq_disable(struct dmahal_device *d)
{
    uint64_t one = 1;

    if (!d)
        return -EINVAL;
    pthread_mutex_lock(&d->irq.lock);
    if (!d->irq.type || d->irq.closing) {
        pthread_mutex_unlock(&d->irq.lock);
        return -EINVAL;
    }
    d->irq.closing = true;
    atomic_store_explicit(&d->irq.mode, 0, memory_order_release);
    /* Every pending wait sees the cancel fd readable and leaves; new ones see closing. */
    /* An eventfd write of 1 to a fresh counter cannot fail. */
    ssize_t n = write(d->irq.cancel, &one, sizeof(one));
    (void)n;
    while (d->irq.waiters)
        pthread_cond_wait(&d->irq.idle, &d->irq.lock);
    d->p->ops->irq_disable(d);
    close_fds(d->irq.own, d->irq.nvec);
    close(d->irq.cancel);
    free(d->irq.fds);
    free(d->irq.own);
    d->irq.fds = d->irq.own = NULL;
    d->irq.cancel = -1;
    d->irq.nvec = 0;
    d->irq.type = 0;
    d->irq.closing = false;
    pthread_mutex_unlock(&d->irq.lock);
    return 0;
}

int dmahal_irq_mode(struct dmahal_device *d, unsigned *nvec)
{
    unsigned mode;

    if (nvec)
        *nvec = 0;
    if (!d)
        return -EINVAL;
    mode = atomic_load_explicit(&d->irq.mode, memory_order_acquire);
    if (nvec)
        *nvec = mode >> 8;
    return (int)(mode & 0xff);
}

int dmahal_irq_fd(struct dmahal_device *d, unsigned vector)
{
    int fd = -EINVAL;

    if (!d)
        return -EINVAL;
    pthread_mutex_lock(&d->irq.lock);
    if (d->irq.type && !d->irq.closing && vector < d->irq.nvec)
        fd = d->irq.fds[vector];
    pthread_mutex_unlock(&d->irq.lock);
    return fd;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 consumed, 0 nothing there (another reader was first), or -errno. */
static int consume(struct dmahal_device *d, unsigned vector, int fd)
{
    uint64_t count;
    ssize_t n;

    if (d->p->ops->irq_consume)
        return d->p->ops->irq_consume(d, vector, fd);
    n = read(fd, &count, sizeof(count));
    if (n == sizeof(count))
        return 1;
    return n < 0 && errno != EAGAIN ? -errno : 0;
}

/* Whether the vector's fd or the cancel fd is readable now (for the platform's wait_point). */
static bool fds_ready(void *ctx)
{
    struct pollfd *pfd = ctx;

    return poll(pfd, 2, 0) > 0;
}

/* Polls until the vector fires, the wait is cancelled, or the deadline passes. */
static int wait_fd(struct dmahal_device *d, unsigned vector, int fd, int cancel, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = cancel, .events = POLLIN}};
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    int left = timeout_ms, n, rc;

    /* Virtual time: the devices' work until the interrupt comes runs now. */
    if (d->p->ops->wait_point && timeout_ms != 0)
        d->p->ops->wait_point(d, timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * 1000000,
                              fds_ready, pfd);

    for (;;) {
        n = poll(pfd, 2, left);
        if (n < 0)
            return errno == EINTR ? -EINTR : -errno;
        if (pfd[1].revents)
            return -ECANCELED;
        if (n > 0) {
            rc = consume(d, vector, fd);
            if (rc != 0)
                return rc < 0 ? rc : 0;
        }
        if (timeout_ms == 0)
            return -ETIMEDOUT;
        if (timeout_ms > 0) {
            int64_t rest = deadline - now_ms();

            if (rest <= 0)
                return -ETIMEDOUT;
            left = (int)rest;
        }
    }
}

int dmahal_irq_wait(struct dmahal_device *d, unsigned vector, int timeout_ms)
{
    int fd, cancel, rc;

    if (!d || timeout_ms < -1)
        return -EINVAL;
    pthread_mutex_lock(&d->irq.lock);
    if (d->irq.closing) {
        pthread_mutex_unlock(&d->irq.lock);
        return -ECANCELED;
    }
    if (!d->irq.type || vector >= d->irq.nvec) {
        pthread_mutex_unlock(&d->irq.lock);
        return -EINVAL;
    }
    fd = d->irq.fds[vector];
    cancel = d->irq.cancel;
    d->irq.waiters++;
    pthread_mutex_unlock(&d->irq.lock);

    rc = wait_fd(d, vector, fd, cancel, timeout_ms);

    pthread_mutex_lock(&d->irq.lock);
    if (--d->irq.waiters == 0)
        pthread_cond_broadcast(&d->irq.idle);
    pthread_mutex_unlock(&d->irq.lock);
    return rc;
}

int dmahal_irq_unmask(struct dmahal_device *d, unsigned vector)
{
    int rc = 0;

    if (!d)
        return -EINVAL;
    pthread_mutex_lock(&d->irq.lock);
    if (!d->irq.type || d->irq.closing || vector >= d->irq.nvec)
        rc = -EINVAL;
    else if (d->irq.type == DMAHAL_IRQ_INTX && d->p->ops->irq_unmask)
        rc = d->p->ops->irq_unmask(d, vector);
    pthread_mutex_unlock(&d->irq.lock);
    return rc;
}
