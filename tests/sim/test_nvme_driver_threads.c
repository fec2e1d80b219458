/* SPDX-License-Identifier: MIT */
/*
 * test_nvme_driver_threads.c - the example NVMe driver's queued I/O with the controller model
 * on a thread of its own (sim:time=threads): completions arrive while the driver submits, and
 * it closes with commands in flight. Run under ThreadSanitizer with the concurrency tests.
 */
#include <errno.h>
#include <pthread.h>

#include "nvme_drv_rig.h"

/* Closing with commands in flight: the controller is stopped, their caller memory unmapped,
 * nothing leaks (down() checks the verifier's count, the sanitizers the memory). */
TEST(close_with_queued_io)
{
    unsigned char *mem;
    struct ctx c;

    up(&c, "sim:iommu=on,time=threads");
    CHECK_EQ(posix_memalign((void **)&mem, 4096, 16 * 4096), 0);
    for (unsigned i = 0; i < 16; i++)
        CHECK_OK(nvme_submit_mem(c.n, NVME_CMD_READ, 8u * i, 8, mem + (size_t)i * 4096, i));
    nvme_ring(c.n); /* the controller's thread takes them up while the driver closes */
    down(&c);
    free(mem);
}

/* Queued I/O with the controller on its own thread, waiting on the queue's interrupt: what
 * completes while the driver submits is reaped as it comes. */
TEST(queued_io_threads_irq)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_buf buf;
    struct nvme *n;
    bool seen[256];
    unsigned submitted = 0, reaped = 0;

    CHECK_OK(dmahal_platform_open("sim:time=threads", &p));
    CHECK_OK(dmahal_device_open(p, "nvme:size=64M,latency=20000", &d));
    CHECK_OK(nvme_open_flags(d, NVME_OPEN_IRQ, &n));
    CHECK_OK(dmahal_common_alloc(nvme_adapter(n), 256 * 512, 0, &buf));
    memset(seen, 0, sizeof(seen));
    while (reaped < 256) {
        struct nvme_done done[16];
        int got;

        while (submitted < 256 && nvme_inflight(n) < 32) {
            CHECK_OK(
                nvme_submit(n, NVME_CMD_READ, submitted, 1, &buf, submitted * 512u, submitted));
            submitted++;
        }
        got = nvme_reap(n, 1, done, 16);
        CHECK_GE(got, 1);
        for (int i = 0; i < got; i++) {
            CHECK_LT_U(done[i].tag, 256);
            CHECK(!seen[done[i].tag]);
            seen[done[i].tag] = true;
            CHECK_EQ(done[i].rc, 0);
        }
        reaped += (unsigned)got;
    }
    CHECK_OK(dmahal_common_free(nvme_adapter(n), &buf));
    nvme_close(n);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

/* The random mix of queued I/O with the controller on its own thread, with and without an
 * IOMMU: completions land while the driver submits and checks. */
TEST(queued_random_mix_threads)
{
    queued_mix("sim:time=threads", 7, 600);
    queued_mix("sim:iommu=on,time=threads,coherent=no", 8, 600);
}

struct mixer {
    struct nvme *n;
    unsigned qi;
};

static void *mix_thread(void *arg)
{
    const struct mixer *m = arg;

    queued_mix_on(m->n, m->qi, (uint64_t)m->qi * 8192, 100 + m->qi, 400, "a queue's thread");
    return NULL;
}

/* Four threads, a queue each, with the controller on a thread of its own: each its own mix
 * over its own blocks, polled, then on interrupts (a vector per queue); the map and unmap of
 * their caller memory go through one adapter from all four at once. */
TEST(queues_for_threads)
{
    static const unsigned flags[] = {0, NVME_OPEN_IRQ};

    for (size_t f = 0; f < 2; f++) {
        struct dmahal_platform *p;
        struct dmahal_device *d;
        struct mixer m[4];
        pthread_t t[4];
        struct nvme *n;

        CHECK_OK(dmahal_platform_open("sim:iommu=on,time=threads", &p));
        CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, NULL, NULL));
        CHECK_OK(dmahal_device_open(p, "nvme:size=64M", &d));
        CHECK_OK(nvme_open_queues(d, flags[f], 4, &n));
        CHECK_EQ(nvme_queues(n), 4);
        for (unsigned i = 0; i < 4; i++) {
            m[i] = (struct mixer){n, i};
            CHECK_EQ(pthread_create(&t[i], NULL, mix_thread, &m[i]), 0);
        }
        for (unsigned i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        nvme_close(n);
        dmahal_device_close(d);
        CHECK_EQ(dmahal_verify_count(p, 0), 0);
        dmahal_platform_close(p);
    }
}

/* What the controller grants bounds the queues; bad queue numbers are refused. */
TEST(queues_granted_and_refused)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_buf buf;
    struct nvme_done done;
    struct nvme *n = (struct nvme *)1;
    unsigned char mem[512];

    CHECK_OK(dmahal_platform_open("sim:time=threads", &p));
    CHECK_OK(dmahal_device_open(p, "nvme:size=64M,queues=2", &d));
    CHECK_ERR(nvme_open_queues(d, 0, 0, &n), -EINVAL);
    CHECK(n == NULL);
    CHECK_ERR(nvme_open_queues(d, 0, NVME_MAX_IO_QUEUES + 1, &n), -EINVAL);
    CHECK_OK(nvme_open_queues(d, 0, 8, &n));
    CHECK_EQ(nvme_queues(n), 2);
    CHECK_EQ(nvme_queues(NULL), 0);
    CHECK_OK(dmahal_common_alloc(nvme_adapter(n), 4096, 0, &buf));
    CHECK_ERR(nvme_submit_on(n, 2, NVME_CMD_READ, 0, 1, &buf, 0, 0), -EINVAL);
    CHECK_ERR(nvme_submit_mem_on(n, 2, NVME_CMD_READ, 0, 1, mem, 0), -EINVAL);
    CHECK_ERR(nvme_reap_on(n, 2, 0, &done, 1), -EINVAL);
    CHECK_EQ(nvme_inflight_on(n, 2), 0);
    nvme_ring_on(n, 2);
    /* The second queue works, and its commands are not the first's. */
    CHECK_OK(nvme_submit_on(n, 1, NVME_CMD_READ, 0, 1, &buf, 0, 7));
    CHECK_EQ(nvme_inflight(n), 0);
    CHECK_EQ(nvme_inflight_on(n, 1), 1);
    CHECK_ERR(nvme_reap(n, 1, &done, 1), -EINVAL);
    CHECK_EQ(nvme_reap_on(n, 1, 1, &done, 1), 1);
    CHECK_EQ(done.tag, 7);
    CHECK_EQ(done.rc, 0);
    CHECK_OK(dmahal_common_free(nvme_adapter(n), &buf));
    nvme_close(n);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}
