/* SPDX-License-Identifier: MIT */
/* test_reg_threads.c - registered memory, the mapping cache and spill memory under threads:
 * maps inside a registration race registrations coming and going next to it; cached and
 * spilled maps race each other. Every map reads back what its thread wrote. */
#include <dmahal/dmahal.h>

#include <pthread.h>
#include <string.h>
#include <sys/uio.h>

#include "rig.h"

#define THREADS 4
#define ROUNDS  2000

struct job {
    struct rig *r;
    unsigned char *mem; /* this thread's 4 pages */
    unsigned seed;
    int err;
};

static void *mapper(void *arg)
{
    struct job *j = arg;
    unsigned char in[64];

    for (int i = 0; i < ROUNDS && !j->err; i++) {
        size_t off = (size_t)(i % 4) * 4096 + (size_t)(i % 7) * 8;
        struct iovec v = {j->mem + off, 64};
        struct dmahal_sgl *s;

        memset(j->mem + off, (int)(j->seed + (unsigned)i), 64);
        j->err = dmahal_map(j->r->a, &v, 1, DMAHAL_TO_DEVICE, 0, &s);
        if (j->err)
            break;
        j->err = dmahal_dev_read(j->r->d, s->seg[0].la, in, 64);
        if (!j->err && memcmp(in, j->mem + off, 64) != 0)
            j->err = -EIO;
        if (dmahal_unmap(j->r->a, s) && !j->err)
            j->err = -EIO;
    }
    return NULL;
}

static void run_mappers(struct rig *r, unsigned char *mem, void (*meanwhile)(struct rig *r))
{
    pthread_t t[THREADS];
    struct job j[THREADS];

    for (int i = 0; i < THREADS; i++) {
        j[i] = (struct job){r, mem + (size_t)i * 4 * 4096, (unsigned)i * 40, 0};
        CHECK_EQ(pthread_create(&t[i], NULL, mapper, &j[i]), 0);
    }
    if (meanwhile)
        meanwhile(r);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_OK(j[i].err);
    }
}

static unsigned char *other;

static void churn_registrations(struct rig *r)
{
    for (int i = 0; i < 300; i++) {
        CHECK_OK(dmahal_register(r->a, other + (i % 3) * 4096, 4096));
        CHECK_OK(dmahal_unregister(r->a, other + (i % 3) * 4096, 4096));
    }
}

TEST(reg_maps_race_registrations)
{
    struct dmahal_desc desc = {.addr_bits = 64};
    struct rig r;
    unsigned char *mem = pages(THREADS * 4);

    other = pages(3);
    rig_open(&r, "sim:iommu=on", &desc);
    CHECK_OK(dmahal_register(r.a, mem, THREADS * 4 * 4096));
    run_mappers(&r, mem, churn_registrations);
    CHECK_OK(dmahal_unregister(r.a, mem, THREADS * 4 * 4096));
    rig_close(&r);
    free(other);
    free(mem);
}

TEST(cached_and_spilled_maps_race)
{
    struct dmahal_desc desc = {
        .size = sizeof(desc), .addr_bits = 64, .flags = DMAHAL_DESC_MAP_CACHE};
    struct rig r;
    unsigned char *mem = pages(THREADS * 4);

    rig_open(&r, "sim:iommu=on,dma_entries=6", &desc);
    run_mappers(&r, mem, NULL);
    CHECK_GE(dmahal_map_cache_flush(r.a), 0);
    rig_close(&r);
    free(mem);
}
