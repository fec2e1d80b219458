/* SPDX-License-Identifier: MIT */
/*
 * test_nvme_threads.c - the NVMe model with several driver threads at once, each on an I/O
 * queue pair of its own (as a driver with a queue per CPU does): every write reads back,
 * the admin queue keeps working meanwhile, and ThreadSanitizer sees the model's locking.
 */
#include <dmahal/dmahal.h>

#include <pthread.h>

#include "test.h"

#include "unit/platform/sim/nvme_rig.h"

#define THREADS 3
#define ROUNDS  400

struct worker {
    struct rig *r;
    struct q q;
    struct dmahal_buf buf;
    unsigned id;
    int failures;
};

static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;

/* Submits on the worker's own queue and waits for its completion; the status. */
static unsigned wio(struct worker *w, struct sqe *cmd)
{
    uint16_t cid = queue_cmd(&w->q, cmd);
    struct cqe *e = (struct cqe *)w->q.cq.va + w->q.head;
    unsigned st;

    dmahal_mmio_write32(w->r->d, 0, sq_db(w->r, w->q.qid), w->q.tail);
    if (((__atomic_load_n(&e->dw3, __ATOMIC_ACQUIRE) >> 16) & 1) != w->q.phase)
        return 0xffff;
    st = e->dw3 >> 17;
    if ((e->dw3 & 0xffff) != cid)
        st = 0xfffe;
    if (++w->q.head == w->q.depth) {
        w->q.head = 0;
        w->q.phase ^= 1;
    }
    dmahal_mmio_write32(w->r->d, 0, cq_db(w->r, w->q.qid), w->q.head);
    return st;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    unsigned char *p = w->buf.va;

    for (unsigned i = 0; i < ROUNDS; i++) {
        uint64_t lba = (uint64_t)w->id * 4096 + (i % 64) * 8;
        struct sqe cmd = rw_cmd(0x01, 1, lba, 8, w->buf.la, 0);

        memset(p, (int)(w->id * 64 + i % 61), PAGE);
        if (wio(w, &cmd) != ST_OK)
            w->failures++;
        memset(p, 0, PAGE);
        cmd.cdw0 = 0x02;
        if (wio(w, &cmd) != ST_OK || p[0] != (unsigned char)(w->id * 64 + i % 61) ||
            p[PAGE - 1] != p[0])
            w->failures++;
        if (i % 50 == 0) { /* the admin queue, from every thread in turn */
            struct sqe gf = {.cdw0 = 0x0a, .cdw10 = 0x07};

            pthread_mutex_lock(&admin_lock);
            if (admin(w->r, &gf) != ST_OK)
                w->failures++;
            pthread_mutex_unlock(&admin_lock);
        }
    }
    return NULL;
}

TEST(queue_per_thread)
{
    struct worker w[THREADS];
    pthread_t t[THREADS];
    struct rig r;

    rig_open(&r, "sim:iommu=on", "nvme:size=64M,queues=4");
    for (unsigned k = 0; k < THREADS; k++) {
        uint16_t qid = (uint16_t)(k + 1);
        struct sqe cq = {.cdw0 = 0x05, .cdw10 = 15u << 16 | qid, .cdw11 = 1};
        struct sqe sq = {.cdw0 = 0x01, .cdw10 = 15u << 16 | qid, .cdw11 = (uint32_t)qid << 16 | 1};

        memset(&w[k], 0, sizeof(w[k]));
        w[k].r = &r;
        w[k].id = k;
        CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &w[k].q.sq));
        CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &w[k].q.cq));
        CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &w[k].buf));
        w[k].q = (struct q){w[k].q.sq, w[k].q.cq, qid, 16, 0, 0, 0, 1};
        cq.prp1 = w[k].q.cq.la;
        sq.prp1 = w[k].q.sq.la;
        CHECK_EQ_U(admin(&r, &cq), ST_OK);
        CHECK_EQ_U(admin(&r, &sq), ST_OK);
    }
    for (unsigned k = 0; k < THREADS; k++)
        CHECK_EQ(pthread_create(&t[k], NULL, work, &w[k]), 0);
    for (unsigned k = 0; k < THREADS; k++) {
        CHECK_EQ(pthread_join(t[k], NULL), 0);
        CHECK_EQ(w[k].failures, 0);
    }
    for (unsigned k = 0; k < THREADS; k++) {
        struct sqe del = {.cdw0 = 0x00, .cdw10 = k + 1};

        CHECK_EQ_U(admin(&r, &del), ST_OK);
        del.cdw0 = 0x04;
        CHECK_EQ_U(admin(&r, &del), ST_OK);
        CHECK_OK(dmahal_common_free(r.a, &w[k].q.sq));
        CHECK_OK(dmahal_common_free(r.a, &w[k].q.cq));
        CHECK_OK(dmahal_common_free(r.a, &w[k].buf));
    }
    rig_close(&r);
}
