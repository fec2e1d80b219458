/* SPDX-License-Identifier: MIT */
/*
 * lock.h - private: the core's lock for short critical sections on hot paths.
 *
 * Uncontended, a pthread mutex costs two calls with a type dispatch each, a quarter of a
 * small allocation; this lock is inlined: one atomic to take it, one to drop it. Contended,
 * waiters sleep on a futex (0: free, 1: held, 2: held and someone may sleep), so a preempted
 * holder on a loaded machine costs no spinning.
 */
#ifndef DMAHAL_LOCK_H
#define DMAHAL_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef atomic_int dmahal__lock_t;

static inline void dmahal__lock_init(dmahal__lock_t *l)
{
    atomic_init(l, 0);
}

static inline void dmahal__lock_take(dmahal__lock_t *l)
{
    int expect = 0;

    if (atomic_compare_exchange_strong_explicit(l, &expect, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    while (atomic_exchange_explicit(l, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

static inline void dmahal__lock_drop(dmahal__lock_t *l)
{
    if (atomic_exchange_explicit(l, 0, memory_order_release) == 2)
        syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif /* DMAHAL_LOCK_H */
