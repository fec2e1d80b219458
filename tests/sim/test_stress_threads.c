/* SPDX-License-Identifier: MIT */
/* test_stress_threads.c - common buffers from many threads at once (run under TSan too). */
#include <dmahal/dmahal.h>

#include <pthread.h>

#include "test.h"

#define THREADS 4
#define ROUNDS  3000
#define LIVE    32

struct worker {
    struct dmahal_adapter *a;
    struct dmahal_device *d;
    unsigned seed;
    int errors;
};

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Each thread keeps LIVE buffers, filled with its own tag, and checks the tag (through the
 * CPU and through the device) before freeing: an allocator handing the same memory to two
 * threads shows up as a foreign tag. */
static void *work(void *arg)
{
    struct worker *w = arg;
    struct dmahal_buf live[LIVE] = {{0}};
    static const size_t sizes[] = {16, 64, 200, 4096, 9000, 65536};
    unsigned char tag = (unsigned char)(w->seed & 0xff);

    for (int r = 0; r < ROUNDS; r++) {
        unsigned i = next_rand(&w->seed) % LIVE;
        struct dmahal_buf *b = &live[i];

        if (b->va) {
            unsigned char first, last;

            if (dmahal_dev_read(w->d, b->la, &first, 1) || first != tag)
                w->errors++;
            last = ((unsigned char *)b->va)[b->len - 1];
            if (last != tag)
                w->errors++;
            if (dmahal_common_free(w->a, b))
                w->errors++;
            b->va = NULL;
            continue;
        }
        if (dmahal_common_alloc(w->a, sizes[next_rand(&w->seed) % 6], 0, b)) {
            w->errors++;
            continue;
        }
        for (size_t k = 0; k < b->len; k++)
            if (((unsigned char *)b->va)[k]) {
                w->errors++; /* not zeroed */
                break;
            }
        memset(b->va, tag, b->len);
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].va && dmahal_common_free(w->a, &live[i]))
            w->errors++;
    return NULL;
}

static void stress(const char *spec)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    pthread_t t[THREADS];
    struct worker w[THREADS];
    char *text = NULL;
    size_t len;
    FILE *f;

    CHECK_OK(dmahal_platform_open(spec, &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){a, d, 0x51u + 0x22u * (unsigned)i, 0};
        CHECK_EQ(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_EQ(w[i].errors, 0);
    }
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(p, f, 0));
    fclose(f);
    CHECK_CONTAINS(text, "common buffers: 0, 0 bytes");
    free(text);
    dmahal_platform_close(p);
}

TEST(stress_threads_no_iommu)
{
    stress("sim");
}

TEST(stress_threads_iommu)
{
    stress("sim:iommu=on");
}
