/* SPDX-License-Identifier: MIT */
/* test_iova_threads.c - the IOVA allocator's per-thread caches under many threads (run under
 * TSan too). */
#include "core/iova.h"

#include <dmahal/dmahal.h>

#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

#define THREADS 4

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

struct iova_worker {
    struct dmahal__iova *d;
    _Atomic unsigned char *owner; /* per page of the space: who holds it, 0 if nobody */
    unsigned char id;
    int errors;
};

static void *iova_work(void *arg)
{
    struct iova_worker *w = arg;
    uint64_t held[16] = {0}, len[16] = {0};
    unsigned seed = w->id;

    for (int r = 0; r < 20000; r++) {
        unsigned i = next_rand(&seed) % 16;

        if (held[i]) {
            for (uint64_t pg = held[i] / 4096; pg < (held[i] + len[i]) / 4096; pg++)
                atomic_store(&w->owner[pg], 0);
            dmahal__iova_free_fast(w->d, held[i], len[i]);
            held[i] = 0;
            continue;
        }
        len[i] = 4096u << (next_rand(&seed) % 3);
        if (dmahal__iova_alloc_fast(w->d, len[i], (1u << 24) - 1, &held[i])) {
            w->errors++;
            continue;
        }
        /* Nobody else may hold any page of it. */
        for (uint64_t pg = held[i] / 4096; pg < (held[i] + len[i]) / 4096; pg++) {
            unsigned char expected = 0;

            if (!atomic_compare_exchange_strong(&w->owner[pg], &expected, w->id))
                w->errors++;
        }
    }
    for (int i = 0; i < 16; i++)
        if (held[i]) {
            for (uint64_t pg = held[i] / 4096; pg < (held[i] + len[i]) / 4096; pg++)
                atomic_store(&w->owner[pg], 0);
            dmahal__iova_free_fast(w->d, held[i], len[i]);
        }
    return NULL;
}

TEST(iova_threads_never_hand_out_a_page_twice)
{
    struct dmahal__iova *d;
    _Atomic unsigned char *owner = calloc(4096, 1);
    struct iova_worker w[THREADS];
    pthread_t t[THREADS];

    CHECK_OK(dmahal__iova_create(4096, &d));
    CHECK_OK(dmahal__iova_add(d, 4096, (4096 - 1) * 4096ull)); /* 16 MiB, page 0 left out */
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct iova_worker){d, owner, (unsigned char)(i + 1), 0};
        CHECK_EQ(pthread_create(&t[i], NULL, iova_work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_EQ(w[i].errors, 0);
    }
    /* The threads exited: their caches went back to the space, all of it free again. */
    CHECK_EQ(dmahal__iova_free_bytes(d), (4096 - 1) * 4096ull);
    dmahal__iova_destroy(d);
    free((void *)owner);
}
