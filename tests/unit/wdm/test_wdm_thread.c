/* SPDX-License-Identifier: MIT */
/*
 * test_wdm_thread.c - the Windows-names layer from several threads at once: one device
 * object per device however many ask, and AllocateCommonBuffer / FreeCommonBuffer racing on
 * one adapter without losing or sharing a buffer.
 */
#include <dmahal/wdm.h>

#include <pthread.h>

#include "test.h"

#define NTHREADS 4
#define ROUNDS   300
#define LIVE     8

struct shared {
    struct dmahal_device *d;
    PDMA_ADAPTER a;
    PDEVICE_OBJECT seen[NTHREADS];
    pthread_barrier_t start;
    int failures[NTHREADS];
};

struct worker {
    struct shared *s;
    int id;
};

static void *get_device_object(void *arg)
{
    struct worker *w = arg;

    pthread_barrier_wait(&w->s->start);
    w->s->seen[w->id] = dmahal_wdm_device(w->s->d);
    return NULL;
}

TEST(wdm_thread_device_object_is_one_per_device)
{
    struct dmahal_platform *p;
    struct shared s = {0};
    struct worker w[NTHREADS];
    pthread_t t[NTHREADS];

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &s.d));
    pthread_barrier_init(&s.start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){&s, i};
        CHECK_EQ(pthread_create(&t[i], NULL, get_device_object, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(s.seen[0] != NULL);
    for (int i = 1; i < NTHREADS; i++)
        CHECK(s.seen[i] == s.seen[0]);
    CHECK(dmahal_wdm_device(s.d) == s.seen[0]);
    pthread_barrier_destroy(&s.start);
    dmahal_platform_close(p);
}

/* Each thread keeps LIVE buffers filled with its own byte, checks and replaces them. */
static void *churn(void *arg)
{
    struct worker *w = arg;
    PDMA_ADAPTER a = w->s->a;
    PVOID va[LIVE] = {0};
    PHYSICAL_ADDRESS la[LIVE];
    ULONG len[LIVE];
    unsigned char mark = (unsigned char)(0x10 + w->id);

    pthread_barrier_wait(&w->s->start);
    for (int r = 0; r < ROUNDS; r++) {
        int k = r % LIVE;

        if (va[k]) {
            const unsigned char *c = va[k];

            if (c[0] != mark || c[len[k] - 1] != mark)
                w->s->failures[w->id]++;
            a->DmaOperations->FreeCommonBuffer(a, len[k], la[k], va[k], FALSE);
        }
        len[k] = 16u << (r % 10); /* 16 B .. 8 KiB: slab objects and page runs */
        va[k] = a->DmaOperations->AllocateCommonBuffer(a, len[k], &la[k], FALSE);
        if (!va[k]) {
            w->s->failures[w->id]++;
            continue;
        }
        memset(va[k], mark, len[k]);
    }
    for (int k = 0; k < LIVE; k++)
        if (va[k])
            a->DmaOperations->FreeCommonBuffer(a, len[k], la[k], va[k], FALSE);
    return NULL;
}

TEST(wdm_thread_alloc_free_race_on_one_adapter)
{
    struct dmahal_platform *p;
    struct shared s = {0};
    struct worker w[NTHREADS];
    pthread_t t[NTHREADS];
    DEVICE_DESCRIPTION dd;
    ULONG nregs;

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &s.d));
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.DmaAddressWidth = 32;
    s.a = IoGetDmaAdapter(dmahal_wdm_device(s.d), &dd, &nregs);
    CHECK(s.a != NULL);
    pthread_barrier_init(&s.start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){&s, i};
        CHECK_EQ(pthread_create(&t[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(s.failures[i], 0);
    s.a->DmaOperations->PutDmaAdapter(s.a);
    pthread_barrier_destroy(&s.start);
    dmahal_platform_close(p);
}
