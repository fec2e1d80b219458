/* SPDX-License-Identifier: MIT */
/* test_verify_threads.c - the verifier under threads: adapters of one platform allocating,
 * freeing, mapping and doing device accesses at once get no false report, and a real bug among them
 * is reported exactly once. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <pthread.h>

#include "vrig.h"

#define THREADS 4
#define ROUNDS  2000

struct worker {
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    bool double_free; /* this one makes one mistake */
    int errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct dmahal_buf live[8] = {{0}};
    unsigned char host[2][8192];

    for (unsigned i = 0; i < ROUNDS; i++) {
        struct dmahal_buf *b = &live[i % 8];
        unsigned char x[16];

        if (b->len && dmahal_common_free(w->a, b))
            w->errors++;
        if (dmahal_common_alloc(w->a, 16 + (i * 37) % 6000, 0, b))
            w->errors++;
        /* The device touches the first and last bytes, as a correct transfer would. */
        if (dmahal_dev_write(w->d, b->la, x, b->len < 16 ? b->len : 16) ||
            dmahal_dev_read(w->d, b->la + b->len - 1, x, 1))
            w->errors++;
        /* A streaming transfer of the thread's own memory, each way, as a driver does it. */
        {
            struct iovec iov = {host[i % 2] + i % 64, 4096 + i % 3000};
            enum dmahal_dir dir = i % 2 ? DMAHAL_TO_DEVICE : DMAHAL_FROM_DEVICE;
            struct dmahal_sgl *sgl;

            if (dmahal_map(w->a, &iov, 1, dir, 0, &sgl))
                w->errors++;
            else {
                for (unsigned k = 0; k < sgl->nseg; k++) {
                    size_t n = sgl->seg[k].len < 16 ? sgl->seg[k].len : 16;

                    if (dir == DMAHAL_TO_DEVICE ? dmahal_dev_read(w->d, sgl->seg[k].la, x, n)
                                                : dmahal_dev_write(w->d, sgl->seg[k].la, x, n))
                        w->errors++;
                }
                if (dmahal_unmap(w->a, sgl))
                    w->errors++;
            }
        }
        if (w->double_free && i == ROUNDS / 2) {
            struct dmahal_buf copy = *b;

            if (dmahal_common_free(w->a, b) || dmahal_common_free(w->a, &copy) != -EINVAL)
                w->errors++;
            b->len = 0;
        }
    }
    for (unsigned i = 0; i < 8; i++)
        if (live[i].len && dmahal_common_free(w->a, &live[i]))
            w->errors++;
    return NULL;
}

TEST(verify_threads_report_only_the_real_bug)
{
    static const char *const specs[] = {"sim", "sim:iommu=on", "sim:coherent=no"};

    for (size_t s = 0; s < 3; s++) {
        struct vrig r;
        struct worker w[THREADS];
        pthread_t t[THREADS];

        vrig_open(&r, specs[s], NULL);
        for (int i = 0; i < THREADS; i++) {
            w[i] = (struct worker){.d = r.d, .a = r.a, .double_free = i == 1};
            if (i >= 2) { /* two threads on a second device, each with its own adapter */
                CHECK_OK(dmahal_device_open(r.p, "edu", &w[i].d));
                CHECK_OK(dmahal_adapter_get(w[i].d, NULL, &w[i].a));
            }
        }
        for (int i = 0; i < THREADS; i++)
            CHECK_EQ(pthread_create(&t[i], NULL, work, &w[i]), 0);
        for (int i = 0; i < THREADS; i++) {
            CHECK_EQ(pthread_join(t[i], NULL), 0);
            CHECK_EQ(w[i].errors, 0);
        }
        CHECK_EQ(dmahal_verify_check(r.p), 0);
        vrig_one(&r, DMAHAL_REPORT_DOUBLE_FREE);
        dmahal_platform_close(r.p);
        CHECK_EQ(r.calls, 1);
    }
}
