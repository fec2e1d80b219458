/* SPDX-License-Identifier: MIT */
/* test_map_threads.c - streaming maps from many threads at once (run under TSan too): the
 * IOMMU path with its per-thread IOVA caches, bounce pages that run short and make threads
 * wait. (The IOVA allocator's own threaded test: tests/unit/core/test_iova_threads.c.) */
#include "rig.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define THREADS 4

struct worker {
    struct dmahal_adapter *a;
    struct dmahal_device *d;
    unsigned seed;
    int rounds;
    unsigned flags;
    int errors;
};

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Each round maps one to three pieces of its own memory both ways, checks that the device
 * reads exactly them, has the device write a tag, and checks the tag after unmap. A list
 * pointing at another thread's memory, or two lists sharing device addresses, shows up as
 * a wrong byte. */
static void *work(void *arg)
{
    struct worker *w = arg;
    unsigned char *mem = pages(8), *seen = pages(8), *tag = pages(8);

    for (int r = 0; r < w->rounds; r++) {
        unsigned n = 1 + next_rand(&w->seed) % 3;
        struct iovec iov[3];
        struct dmahal_sgl *sgl;
        size_t total = 0;

        for (unsigned i = 0; i < n; i++) {
            size_t off = (size_t)i * 8192 + next_rand(&w->seed) % 2048;
            size_t len = 1 + next_rand(&w->seed) % 4000;

            iov[i] = (struct iovec){mem + off, len};
            total += len;
        }
        fill(mem, 8 * 4096, w->seed);
        if (dmahal_map(w->a, iov, n, DMAHAL_BIDIRECTIONAL, w->flags, &sgl)) {
            w->errors++;
            continue;
        }
        dev_gather(w->d, sgl, seen);
        for (unsigned i = 0, at = 0; i < n; at += (unsigned)iov[i].iov_len, i++)
            if (memcmp(seen + at, iov[i].iov_base, iov[i].iov_len) != 0)
                w->errors++;
        memset(tag, (int)(w->seed & 0xff), total);
        dev_scatter(w->d, sgl, tag);
        if (dmahal_unmap(w->a, sgl))
            w->errors++;
        for (unsigned i = 0; i < n; i++)
            if (((unsigned char *)iov[i].iov_base)[iov[i].iov_len - 1] != (w->seed & 0xff))
                w->errors++;
    }
    free(mem);
    free(seen);
    free(tag);
    return NULL;
}

static void run(const char *spec, const struct dmahal_desc *desc, bool shared, int rounds)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a[THREADS];
    struct worker w[THREADS];
    pthread_t t[THREADS];

    CHECK_OK(dmahal_platform_open(spec, &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    for (int i = 0; i < THREADS; i++) {
        if (shared && i > 0)
            a[i] = a[0];
        else
            CHECK_OK(dmahal_adapter_get(d, desc, &a[i]));
        w[i] = (struct worker){a[i], d, 1000u + (unsigned)i * 7919u, rounds, 0, 0};
        CHECK_EQ(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_EQ(w[i].errors, 0);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(dmahal_adapter_map_registers_in_use(a[i]), 0);
    CHECK_EQ(dmahal_fault_count(p), 0);
    dmahal_platform_close(p);
}

TEST(map_threads_iommu_own_adapters)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_segments = 4, .max_transfer = 65536};

    run("sim:iommu=on", &desc, false, 1500);
}

TEST(map_threads_iommu_shared_adapter)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_segments = 4, .max_transfer = 65536};

    run("sim:iommu=on", &desc, true, 1500);
}

TEST(map_threads_pinned_direct)
{
    struct dmahal_desc desc = {.addr_bits = 64, .max_segments = 4, .max_transfer = 65536};

    run("sim", &desc, false, 1000);
}

/* One adapter, a pool of 5 pages, four threads needing up to 3 each: they wait for each
 * other's pages (no NOWAIT), and each holds one list at most, so every wait ends. */
TEST(map_threads_bounce_pages_run_short_and_waiters_proceed)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_segments = 1, .max_transfer = 16384};

    run("sim", &desc, true, 1000);
}

TEST(map_threads_noncoherent_bounce)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_segments = 1, .max_transfer = 16384};

    run("sim:coherent=no", &desc, true, 500);
}

struct racer {
    struct dmahal_adapter *a;
    struct dmahal_sgl *sgl;
    atomic_int syncs;
    int last;
};

static void *sync_until_gone(void *arg)
{
    struct racer *r = arg;
    int rc;

    do {
        rc = dmahal_sync_for_device(r->a, r->sgl);
        if (rc == 0)
            rc = dmahal_sync_for_cpu(r->a, r->sgl);
        atomic_fetch_add(&r->syncs, 1);
    } while (rc == 0);
    r->last = rc;
    return NULL;
}

/* A driver bug: syncs racing the unmap of the same list. Each sync either happens wholly
 * before the unmap or is refused after it; none touches freed memory (ASan, TSan). */
TEST(map_threads_sync_racing_unmap_is_refused_not_a_crash)
{
    struct dmahal_desc desc = {.addr_bits = 32, .max_segments = 1, .max_transfer = 65536};
    static const char *const specs[] = {"sim", "sim:iommu=on", "sim:coherent=no"};

    for (int s = 0; s < 3; s++) {
        struct rig r;
        unsigned char *b = pages(4);
        struct iovec iov = {b + 1, 3 * 4096};
        struct racer rc[2];
        pthread_t t[2];

        rig_open(&r, specs[s], &desc);
        for (int round = 0; round < 50; round++) {
            struct dmahal_sgl *sgl;

            CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
            for (int i = 0; i < 2; i++) {
                rc[i].a = r.a;
                rc[i].sgl = sgl;
                atomic_init(&rc[i].syncs, 0);
                CHECK_EQ(pthread_create(&t[i], NULL, sync_until_gone, &rc[i]), 0);
            }
            while (atomic_load(&rc[0].syncs) + atomic_load(&rc[1].syncs) < 4)
                sched_yield();
            CHECK_OK(dmahal_unmap(r.a, sgl));
            for (int i = 0; i < 2; i++) {
                CHECK_EQ(pthread_join(t[i], NULL), 0);
                CHECK_EQ(rc[i].last, -ENOENT);
            }
        }
        CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
        rig_close(&r);
        free(b);
    }
}
