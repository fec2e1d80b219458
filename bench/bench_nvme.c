/* SPDX-License-Identifier: MIT */
/*
 * bench_nvme.c - 4 KiB random reads from the simulated platform's NVMe controller model, by a
 * user-space driver: IOPS at queue depth 1 and 32, and each I/O's CPU time split between the
 * driver (with dmahal), dmahal's streaming map, and the model.
 *
 * Contestants, interleaved in rotating order in one process:
 *   example QD1      examples/nvme's driver (nvme_io on a common buffer): one command at a time
 *   example QD32     the same driver's queued calls: 32 reads in flight (nvme_submit into slots
 *                    of a common buffer), completions taken as they come (nvme_reap); with
 *                    "thr", on the threaded machine below
 *   poll QD1/QD32    a minimal polled driver here: QD commands in flight, completions reaped in
 *                    batches, one SQ doorbell per batch of submissions, data in a common buffer
 *   map QD1/QD32     the same, with the data in malloc'd memory mapped and unmapped per I/O
 *                    (dmahal_map/dmahal_unmap), as a zero-copy driver does
 *   reg QD1/QD32     the same, with the malloc'd memory registered once (dmahal_register), as
 *                    SPDK-style drivers register their buffer pools, and mapped per I/O
 *   ... +verify      the same with the verifier on
 *   ... 2 queues     QD 32 spread over two I/O queue pairs, 16 commands on each
 *   thr ...          sim:time=threads with a model latency of 1 ns: the controller works on a
 *                    thread of its own, beside the driver, in real time; "poll" contestants
 *                    spin on the completion queue, yielding the CPU after an empty look (the
 *                    controller's thread shares the CPUs), "irq" contestants sleep on the
 *                    queue's MSI-X vector (poll(2) on dmahal_irq_fd)
 *
 * In virtual time with no latency (the default machine) the model runs each command inside
 * the doorbell write that submits it, so "the model's time" is the time spent in doorbell
 * writes: the model's register and queue work and its device-side DMA (dmahal_dev_read/write,
 * the simulated bus). dmahal's own share is the map and unmap, timed (less the timer's own
 * cost, calibrated at start); the rest (queue bookkeeping, polling, dmahal's MMIO dispatch)
 * is the driver's. With time=threads the model's time is the process's CPU time less the
 * driver thread's (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID).
 */
#include "harness.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "nvme/nvme_driver.h"

#define MAX_REPS 1000
#define DEPTH    64u /* I/O queue entries: room for QD 32 without a full completion queue */
#define BLOCK    4096u
#define NS_SIZE  (16u << 20)
#define NBLOCKS  (NS_SIZE / BLOCK)
#define DEVICE   "nvme:size=16M,lba=4096,queues=4"
#define DEVICE_T DEVICE ",latency=1"
#define SPIN_NS  (2 * UINT64_C(1000000000)) /* a completion later than this is an error */

#define REG_CC   0x14
#define REG_CSTS 0x1c
#define REG_AQA  0x24
#define REG_ASQ  0x28
#define REG_ACQ  0x30
#define DB(i)    (0x1000u + 4u * (i))

struct sqe {
    uint32_t cdw0, nsid, cdw2, cdw3;
    uint64_t mptr, prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct cqe {
    uint32_t dw0, dw1, dw2, dw3;
};

/* Where each command's data lives. */
enum mem {
    MEM_COMMON, /* a slot of one common buffer: nothing to map */
    MEM_MAP,    /* malloc'd, mapped per I/O */
    MEM_REG,    /* malloc'd and registered once, mapped per I/O */
};

/* One I/O queue pair of the bench's driver. */
struct ioq {
    struct dmahal_buf sq, cq;
    uint16_t qid, tail, head;
    unsigned phase, vector, inflight;
};

/* The bench's own driver: one admin queue pair and one or two I/O queue pairs. */
struct drv {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf asq, acq, data;
    uint16_t atail, ahead;
    unsigned aphase, nq;
    enum mem mem;
    bool irq, threads;
    struct ioq q[2];
    char *arena;                   /* the map and reg contestants' memory, a slot per command */
    void *slot_mem[DEPTH];         /* per-slot caller memory */
    struct dmahal_sgl *sgl[DEPTH]; /* its mapping while the command is in flight */
    uint64_t model_ns, dmahal_ns;  /* accumulated when timing the split */
};

struct contestant {
    const char *name;
    unsigned qd, nq; /* queue depth; I/O queue pairs (0: one) */
    enum mem mem;
    bool verify, example, threads, irq;
    struct contestant *base; /* +verify: the same contestant without the verifier */
    struct drv drv;
    struct nvme *n; /* the example driver */
    struct dmahal_buf buf;
    double iops[MAX_REPS], total_ns[MAX_REPS], model_ns[MAX_REPS], dmahal_ns[MAX_REPS];
    double cpu_ns[MAX_REPS]; /* time=threads: the driver thread's CPU time per I/O */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t timer_ns; /* what one bench_now_ns() pair costs, taken off each timed span */

static uint64_t next_lba(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % NBLOCKS;
}

static uint64_t cpu_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time a span took less the timer's own cost. */
static uint64_t span(uint64_t t0)
{
    uint64_t d = bench_now_ns() - t0;

    return d > timer_ns ? d - timer_ns : 0;
}

static void calibrate_timer(void)
{
    double v[31];

    for (unsigned r = 0; r < 31; r++) {
        uint64_t t0 = bench_now_ns(), sum = 0;

        for (unsigned i = 0; i < 1000; i++) {
            uint64_t t = bench_now_ns();

            sum += bench_now_ns() - t;
        }
        (void)t0;
        v[r] = (double)sum / 1000;
    }
    timer_ns = (uint64_t)bench_median(v, 31);
}

static int wait_csts(struct drv *v, uint32_t want)
{
    uint64_t t0 = bench_now_ns();

    while (bench_now_ns() - t0 < SPIN_NS)
        if ((dmahal_mmio_read32(v->d, 0, REG_CSTS) & 3u) == want)
            return 0;
    return -ETIMEDOUT;
}

/* Spins until the entry's phase tag says the controller wrote it; -ETIMEDOUT. With
 * time=virtual a model without latency has written it already. */
static int wait_cqe(const volatile struct cqe *e, unsigned phase)
{
    uint64_t t0 = bench_now_ns();

    while (((e->dw3 >> 16) & 1) != phase)
        if (bench_now_ns() - t0 > SPIN_NS)
            return -ETIMEDOUT;
    return 0;
}

/* One admin command, polled; 0, -EIO or -ETIMEDOUT. */
static int admin(struct drv *v, struct sqe *cmd)
{
    volatile struct cqe *e = (volatile struct cqe *)v->acq.va + v->ahead;
    int rc;

    cmd->cdw0 |= (uint32_t)v->atail << 16;
    memcpy((struct sqe *)v->asq.va + v->atail, cmd, sizeof(*cmd));
    v->atail = (uint16_t)((v->atail + 1) % 16);
    dmahal_mmio_write32(v->d, 0, DB(0), v->atail);
    rc = wait_cqe(e, v->aphase);
    if (rc)
        return rc;
    if (++v->ahead == 16) {
        v->ahead = 0;
        v->aphase ^= 1;
    }
    dmahal_mmio_write32(v->d, 0, DB(1), v->ahead);
    return (e->dw3 >> 17) & 0x7ff ? -EIO : 0;
}

static int drv_memory(struct drv *v)
{
    int rc;

    if (v->mem == MEM_COMMON)
        return 0;
    if (posix_memalign((void **)&v->arena, BLOCK, (size_t)DEPTH * BLOCK))
        return -ENOMEM;
    memset(v->arena, 0, (size_t)DEPTH * BLOCK);
    for (unsigned i = 0; i < DEPTH; i++)
        v->slot_mem[i] = v->arena + (size_t)i * BLOCK;
    if (v->mem != MEM_REG)
        return 0;
    rc = dmahal_register(v->a, v->arena, (size_t)DEPTH * BLOCK);
    if (rc) {
        free(v->arena);
        v->arena = NULL;
    }
    return rc;
}

static int drv_open(struct drv *v, const struct contestant *c)
{
    struct dmahal_desc desc = {.addr_bits = 64, .alignment = 4, .coherent = true};
    struct sqe cmd;
    int rc;

    memset(v, 0, sizeof(*v));
    v->aphase = 1;
    v->nq = c->nq ? c->nq : 1;
    v->mem = c->mem;
    v->irq = c->irq;
    v->threads = c->threads;
    rc = dmahal_platform_open(c->threads ? "sim:time=threads" : "sim", &v->p);
    if (!rc && c->verify)
        rc = dmahal_verify_enable(v->p, DMAHAL_VERIFY_COUNT, NULL, NULL);
    if (!rc)
        rc = dmahal_device_open(v->p, c->threads ? DEVICE_T : DEVICE, &v->d);
    if (!rc)
        rc = dmahal_adapter_get(v->d, &desc, &v->a);
    if (!rc && v->irq) /* vector 0 the admin queue's, 1 and 2 the I/O queues' */
        rc = dmahal_irq_enable(v->d, DMAHAL_IRQ_MSIX, 3) < 0 ? -ENOTSUP : 0;
    if (!rc)
        rc = dmahal_common_alloc(v->a, 4096, 0, &v->asq);
    if (!rc)
        rc = dmahal_common_alloc(v->a, 4096, 0, &v->acq);
    for (unsigned k = 0; !rc && k < v->nq; k++) {
        v->q[k] = (struct ioq){.qid = (uint16_t)(k + 1), .phase = 1, .vector = k + 1};
        rc = dmahal_common_alloc(v->a, DEPTH * 64, 0, &v->q[k].sq);
        if (!rc) /* queue bases are page-aligned: a whole page */
            rc = dmahal_common_alloc(v->a, 4096, 0, &v->q[k].cq);
    }
    if (!rc)
        rc = dmahal_common_alloc(v->a, DEPTH * BLOCK, 0, &v->data);
    if (!rc)
        rc = drv_memory(v);
    if (rc)
        return rc;
    dmahal_mmio_write32(v->d, 0, REG_AQA, 15u << 16 | 15u);
    dmahal_mmio_write64(v->d, 0, REG_ASQ, v->asq.la);
    dmahal_mmio_write64(v->d, 0, REG_ACQ, v->acq.la);
    dmahal_mmio_write32(v->d, 0, REG_CC, 1u | 6u << 16 | 4u << 20);
    rc = wait_csts(v, 1);
    for (unsigned k = 0; !rc && k < v->nq; k++) {
        struct ioq *q = &v->q[k];

        /* Physically contiguous (bit 0); interrupts enabled (bit 1) on the queue's vector. */
        cmd = (struct sqe){.cdw0 = 0x05,
                           .prp1 = q->cq.la,
                           .cdw10 = (DEPTH - 1) << 16 | q->qid,
                           .cdw11 = v->irq ? q->vector << 16 | 2u | 1u : 1u};
        rc = admin(v, &cmd);
        if (rc)
            break;
        cmd = (struct sqe){.cdw0 = 0x01,
                           .prp1 = q->sq.la,
                           .cdw10 = (DEPTH - 1) << 16 | q->qid,
                           .cdw11 = (uint32_t)q->qid << 16 | 1};
        rc = admin(v, &cmd);
    }
    return rc;
}

static void drv_close(struct drv *v)
{
    if (v->d) {
        dmahal_mmio_write32(v->d, 0, REG_CC, 0);
        wait_csts(v, 0);
    }
    if (v->a) {
        struct dmahal_buf *b[] = {&v->asq,     &v->acq,     &v->q[0].sq, &v->q[0].cq,
                                  &v->q[1].sq, &v->q[1].cq, &v->data};

        for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
            if (b[i]->va)
                dmahal_common_free(v->a, b[i]);
        if (v->arena && v->mem == MEM_REG)
            dmahal_unregister(v->a, v->arena, (size_t)DEPTH * BLOCK);
    }
    free(v->arena);
    if (v->irq && v->d)
        dmahal_irq_disable(v->d);
    dmahal_adapter_put(v->a);
    dmahal_device_close(v->d);
    dmahal_platform_close(v->p);
    memset(v, 0, sizeof(*v));
}

/* Writes one command for slot @slot (its command identifier) at the tail of its queue. */
static int queue_read(struct drv *v, struct ioq *q, uint16_t slot, bool timed)
{
    uint64_t la = v->data.la + (uint64_t)slot * BLOCK, lba = next_lba();
    struct sqe *e = (struct sqe *)q->sq.va + q->tail;

    if (v->mem != MEM_COMMON) {
        uint64_t t0 = timed ? bench_now_ns() : 0;
        int rc = dmahal_map(v->a, &(struct iovec){v->slot_mem[slot], BLOCK}, 1, DMAHAL_FROM_DEVICE,
                            0, &v->sgl[slot]);

        if (timed)
            v->dmahal_ns += span(t0);
        if (rc)
            return rc;
        la = v->sgl[slot]->seg[0].la;
    }
    *e = (struct sqe){.cdw0 = 0x02 | (uint32_t)slot << 16,
                      .nsid = 1,
                      .prp1 = la,
                      .cdw10 = (uint32_t)lba,
                      .cdw11 = (uint32_t)(lba >> 32)};
    q->tail = (uint16_t)((q->tail + 1) % DEPTH);
    q->inflight++;
    return 0;
}

static void ring(struct drv *v, uint32_t db, uint16_t val, bool timed)
{
    uint64_t t0 = timed ? bench_now_ns() : 0;

    dmahal_mmio_write32(v->d, 0, db, val);
    if (timed)
        v->model_ns += span(t0);
}

/* Reaps the completions queue @q holds, freeing their slots; the count, or a negative errno. */
static int reap(struct drv *v, struct ioq *q, unsigned qd, bool timed, uint16_t *slots,
                uint16_t *nfree)
{
    int reaped = 0, rc;

    for (;; reaped++) {
        volatile struct cqe *e = (volatile struct cqe *)q->cq.va + q->head;
        uint32_t dw3 = e->dw3;
        uint16_t slot;

        if (((dw3 >> 16) & 1) != q->phase)
            break;
        slot = (uint16_t)(dw3 & 0xffff);
        if ((dw3 >> 17) & 0x7ff || slot >= qd)
            return -EIO;
        if (v->mem != MEM_COMMON) {
            uint64_t t0 = timed ? bench_now_ns() : 0;

            rc = dmahal_unmap(v->a, v->sgl[slot]);
            if (timed)
                v->dmahal_ns += span(t0);
            if (rc)
                return rc;
            bench_consume(v->slot_mem[slot], 64);
        } else {
            bench_consume((char *)v->data.va + (size_t)slot * BLOCK, 64);
        }
        slots[(*nfree)++] = slot;
        q->inflight--;
        if (++q->head == DEPTH) {
            q->head = 0;
            q->phase ^= 1;
        }
    }
    if (reaped)
        ring(v, DB(2 * q->qid + 1), q->head, timed);
    return reaped;
}

/* Nothing was reaped: sleeps until a queue with commands in flight signals its vector, and
 * consumes the events. */
static int wait_irq(struct drv *v)
{
    struct pollfd pf[2];
    unsigned vec[2], n = 0;
    int rc;

    for (unsigned k = 0; k < v->nq; k++) {
        if (!v->q[k].inflight)
            continue;
        rc = dmahal_irq_fd(v->d, v->q[k].vector);
        if (rc < 0)
            return rc;
        pf[n] = (struct pollfd){.fd = rc, .events = POLLIN};
        vec[n++] = v->q[k].vector;
    }
    rc = poll(pf, n, (int)(SPIN_NS / 1000000));
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return -ETIMEDOUT;
    for (unsigned i = 0; i < n; i++) {
        if (!(pf[i].revents & POLLIN))
            continue;
        rc = dmahal_irq_wait(v->d, vec[i], 0);
        if (rc && rc != -ETIMEDOUT)
            return rc;
    }
    return 0;
}

/* @n reads with @qd in flight, spread over the driver's queues; 0 or a negative errno. */
static int drv_run(struct drv *v, unsigned qd, unsigned n, bool timed)
{
    unsigned issued = 0, done = 0;
    uint16_t slots[DEPTH], nfree = 0;
    uint64_t idle_since = 0;
    int rc;

    for (uint16_t s = 0; s < qd; s++)
        slots[nfree++] = s;
    while (done < n) {
        unsigned batch[2] = {0, 0}, reaped = 0;

        /* A slot always goes to the same queue, so each queue holds qd / nq commands. */
        while (nfree && issued < n) {
            uint16_t slot = slots[--nfree];
            struct ioq *q = &v->q[slot % v->nq];

            rc = queue_read(v, q, slot, timed);
            if (rc)
                return rc;
            issued++;
            batch[slot % v->nq]++;
        }
        for (unsigned k = 0; k < v->nq; k++)
            if (batch[k])
                ring(v, DB(2 * v->q[k].qid), v->q[k].tail, timed);
        for (unsigned k = 0; k < v->nq; k++) {
            rc = reap(v, &v->q[k], qd, timed, slots, &nfree);
            if (rc < 0)
                return rc;
            reaped += (unsigned)rc;
        }
        done += reaped;
        if (reaped) {
            idle_since = 0;
        } else if (v->irq) {
            rc = wait_irq(v);
            if (rc)
                return rc;
        } else if (!idle_since) {
            idle_since = bench_now_ns();
        } else if (bench_now_ns() - idle_since > SPIN_NS) {
            return -ETIMEDOUT;
        } else if (v->threads) {
            sched_yield(); /* the controller's thread may be waiting for this CPU */
        }
    }
    return 0;
}

/* Writes every block of the namespace, one at a time through the first queue, so that reads
 * copy data rather than the host's zero page. */
static int drv_fill(struct drv *v)
{
    struct ioq *q = &v->q[0];

    memset(v->data.va, 0x5a, BLOCK);
    for (uint64_t lba = 0; lba < NBLOCKS; lba++) {
        struct sqe *e = (struct sqe *)q->sq.va + q->tail;
        volatile struct cqe *c = (volatile struct cqe *)q->cq.va + q->head;

        *e = (struct sqe){.cdw0 = 0x01, .nsid = 1, .prp1 = v->data.la, .cdw10 = (uint32_t)lba};
        q->tail = (uint16_t)((q->tail + 1) % DEPTH);
        dmahal_mmio_write32(v->d, 0, DB(2), q->tail);
        if (wait_cqe(c, q->phase) || (c->dw3 >> 17) & 0x7ff)
            return -EIO;
        if (++q->head == DEPTH) {
            q->head = 0;
            q->phase ^= 1;
        }
        dmahal_mmio_write32(v->d, 0, DB(3), q->head);
    }
    if (v->irq) /* the writes' events, so that the first wait does not return at once */
        while (dmahal_irq_wait(v->d, q->vector, 0) == 0)
            ;
    return 0;
}

/* Fills the namespace, so that reads copy data rather than the host's zero page. */
static int prefill(struct contestant *c)
{
    struct dmahal_buf *b = &c->buf;
    int rc = 0;

    memset(b->va, 0xa5, b->len);
    for (uint64_t lba = 0; !rc && lba < NBLOCKS; lba += 128)
        rc = nvme_io(c->n, NVME_CMD_WRITE, lba, 128, b, 0, NULL);
    return rc;
}

static int open_one(struct contestant *c)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    int rc;

    if (!c->example) {
        rc = drv_open(&c->drv, c);
        if (rc)
            return rc;
        return drv_fill(&c->drv);
    }
    rc = dmahal_platform_open(c->threads ? "sim:time=threads" : "sim", &p);
    if (!rc && c->verify)
        rc = dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, NULL, NULL);
    if (!rc)
        rc = dmahal_device_open(p, c->threads ? DEVICE_T : DEVICE, &d);
    if (!rc)
        rc = nvme_open(d, &c->n);
    if (!rc)
        rc = dmahal_common_alloc(nvme_adapter(c->n), 128 * BLOCK, 0, &c->buf);
    if (!rc)
        rc = prefill(c);
    c->drv.p = p;
    c->drv.d = d;
    return rc;
}

static void close_one(struct contestant *c)
{
    if (!c->example) {
        drv_close(&c->drv);
        return;
    }
    if (c->buf.va)
        dmahal_common_free(nvme_adapter(c->n), &c->buf);
    nvme_close(c->n);
    dmahal_device_close(c->drv.d);
    dmahal_platform_close(c->drv.p);
}

/* @n reads through the example driver's queued calls, c->qd in flight, each into its own
 * block of the buffer (the tag says which). */
static int example_queued(struct contestant *c, unsigned n)
{
    struct nvme_done done[32];
    unsigned sent = 0, got = 0, nfree = 0, free_slot[32];

    for (unsigned i = c->qd; i-- > 0;)
        free_slot[nfree++] = i;
    while (got < n) {
        int k;

        while (sent < n && nfree) {
            unsigned slot = free_slot[--nfree];
            int rc = nvme_submit(c->n, NVME_CMD_READ, next_lba(), 1, &c->buf, (size_t)slot * BLOCK,
                                 slot);

            if (rc)
                return rc;
            sent++;
        }
        k = nvme_reap(c->n, 1, done, 32);
        if (k < 0)
            return k;
        for (int i = 0; i < k; i++) {
            if (done[i].rc)
                return done[i].rc;
            bench_consume((char *)c->buf.va + done[i].tag * BLOCK, 64);
            free_slot[nfree++] = (unsigned)done[i].tag;
        }
        got += (unsigned)k;
    }
    return 0;
}

/* One sample of @n I/Os: IOPS untimed inside, then the split with timers. */
static int sample(struct contestant *c, unsigned n, unsigned r)
{
    uint64_t t0, t1, c0, p0;
    int rc = 0;

    if (c->example) {
        t0 = bench_now_ns();
        if (c->qd > 1)
            rc = example_queued(c, n);
        else
            for (unsigned i = 0; !rc && i < n; i++)
                rc = nvme_io(c->n, NVME_CMD_READ, next_lba(), 1, &c->buf, 0, NULL);
        t1 = bench_now_ns();
        c->iops[r] = 1e9 * n / (double)(t1 - t0);
        c->total_ns[r] = (double)(t1 - t0) / n;
        c->model_ns[r] = c->dmahal_ns[r] = 0;
        return rc;
    }
    t0 = bench_now_ns();
    rc = drv_run(&c->drv, c->qd, n, false);
    t1 = bench_now_ns();
    if (rc)
        return rc;
    c->iops[r] = 1e9 * n / (double)(t1 - t0);
    c->drv.model_ns = c->drv.dmahal_ns = 0;
    c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    t0 = bench_now_ns();
    rc = drv_run(&c->drv, c->qd, n, true);
    t1 = bench_now_ns();
    c->total_ns[r] = (double)(t1 - t0) / n;
    if (c->threads) {
        /* The driver's CPU time and the rest of the process's (the controller's thread). */
        uint64_t drv = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
        uint64_t all = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;

        c->cpu_ns[r] = (double)drv / n;
        c->model_ns[r] = all > drv ? (double)(all - drv) / n : 0;
    } else {
        c->model_ns[r] = (double)c->drv.model_ns / n;
    }
    c->dmahal_ns[r] = (double)c->drv.dmahal_ns / n;
    return rc;
}

static double med(const double *v, unsigned n)
{
    double tmp[MAX_REPS];

    memcpy(tmp, v, n * sizeof(double));
    return bench_median(tmp, n);
}

static double ratio(const double *a, const double *b, unsigned n)
{
    double r[MAX_REPS];

    for (unsigned i = 0; i < n; i++)
        r[i] = a[i] / b[i];
    return bench_median(r, n);
}

/* The same driver on the same machine, apart from the verifier and where the data lives. */
static bool same_setup(const struct contestant *a, const struct contestant *b)
{
    return a->qd == b->qd && a->nq == b->nq && a->example == b->example &&
           a->threads == b->threads && a->irq == b->irq;
}

static const char usage[] = "usage: bench_nvme [--quick] [--reps N]\n"
                            "  4 KiB random reads from the sim's NVMe model: IOPS and per-I/O\n"
                            "  time split into driver, dmahal and model\n";

int main(int argc, char **argv)
{
    struct contestant cs[] = {
        {.name = "example QD1", .qd = 1, .example = true},
        {.name = "example QD32", .qd = 32, .example = true},
        {.name = "thr example QD1", .qd = 1, .example = true, .threads = true},
        {.name = "thr example QD32", .qd = 32, .example = true, .threads = true},
        {.name = "poll QD1", .qd = 1},
        {.name = "poll QD32", .qd = 32},
        {.name = "map QD1", .qd = 1, .mem = MEM_MAP},
        {.name = "map QD32", .qd = 32, .mem = MEM_MAP},
        {.name = "reg QD1", .qd = 1, .mem = MEM_REG},
        {.name = "reg QD32", .qd = 32, .mem = MEM_REG},
        {.name = "poll QD1 +verify", .qd = 1, .verify = true},
        {.name = "poll QD32 +verify", .qd = 32, .verify = true},
        {.name = "map QD1 +verify", .qd = 1, .mem = MEM_MAP, .verify = true},
        {.name = "map QD32 +verify", .qd = 32, .mem = MEM_MAP, .verify = true},
        {.name = "reg QD32 +verify", .qd = 32, .mem = MEM_REG, .verify = true},
        {.name = "poll QD32 2 queues", .qd = 32, .nq = 2},
        {.name = "map QD32 2 queues", .qd = 32, .nq = 2, .mem = MEM_MAP},
        {.name = "thr poll QD1", .qd = 1, .threads = true},
        {.name = "thr poll QD32", .qd = 32, .threads = true},
        {.name = "thr irq QD1", .qd = 1, .threads = true, .irq = true},
        {.name = "thr irq QD32", .qd = 32, .threads = true, .irq = true},
        {.name = "thr poll QD32 2q", .qd = 32, .nq = 2, .threads = true},
        {.name = "thr irq QD32 2q", .qd = 32, .nq = 2, .threads = true, .irq = true},
        {.name = "thr map QD32", .qd = 32, .mem = MEM_MAP, .threads = true},
        {.name = "thr reg QD32", .qd = 32, .mem = MEM_REG, .threads = true},
        {.name = "thr reg irq QD32", .qd = 32, .mem = MEM_REG, .threads = true, .irq = true},
        {.name = "thr reg QD32 +vfy", .qd = 32, .mem = MEM_REG, .threads = true, .verify = true},
    };
    const unsigned nc = sizeof(cs) / sizeof(cs[0]);
    struct bench_opts o;
    unsigned n;
    int rc = bench_parse(argc, argv, usage, &o), status = 1;

    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    n = o.quick ? 256 : 20000;
    calibrate_timer();
    for (unsigned i = 0; i < nc; i++)
        for (unsigned j = 0; cs[i].verify && j < nc; j++)
            if (!cs[j].verify && !cs[i].base && cs[j].mem == cs[i].mem &&
                same_setup(&cs[i], &cs[j]))
                cs[i].base = &cs[j];
    for (unsigned i = 0; i < nc; i++) {
        rc = open_one(&cs[i]);
        if (rc) {
            fprintf(stderr, "%s: cannot set up: %s\n", cs[i].name, dmahal_strerror(rc));
            goto out;
        }
    }
    bench_print_machine();
    printf("method: %u repetitions of %u random 4 KiB reads per contestant after a warm-up, "
           "interleaved in rotating order, device %s on sim (thr: sim:time=threads, %s); "
           "medians; timer cost %" PRIu64 " ns taken off each timed span%s\n",
           o.reps, n, DEVICE, DEVICE_T, timer_ns,
           o.quick ? " (--quick: figures are only a smoke test)" : "");
    for (unsigned i = 0; i < nc; i++) {
        rc = sample(&cs[i], n, 0);
        if (rc) {
            fprintf(stderr, "%s: %s\n", cs[i].name, dmahal_strerror(rc));
            goto out;
        }
    }
    for (unsigned r = 0; r < o.reps; r++) {
        for (unsigned k = 0; k < nc; k++) {
            struct contestant *c = &cs[(r + k) % nc];

            rc = sample(c, n, r);
            if (rc) {
                fprintf(stderr, "%s: %s\n", c->name, dmahal_strerror(rc));
                goto out;
            }
        }
    }
    printf("\n%-20s %8s %8s %8s %8s %8s %8s %7s %8s\n", "contestant", "kIOPS", "ns/IO", "driver",
           "dmahal", "model", "cpu/IO", "dmahal%", "vs off");
    for (unsigned i = 0; i < nc; i++) {
        struct contestant *c = &cs[i];
        double tot = med(c->total_ns, o.reps), mo = med(c->model_ns, o.reps);
        double dm = med(c->dmahal_ns, o.reps), cpu = med(c->cpu_ns, o.reps);

        printf("%-20s %8.1f %8.0f", c->name, med(c->iops, o.reps) / 1e3, tot);
        if (c->example)
            printf(" %8s %8s %8s %8s %7s", "-", "-", "-", "-", "-");
        else if (c->threads) /* CPU time per I/O: the driver thread's, and the controller's */
            printf(" %8.0f %8.0f %8.0f %8.0f %6.1f%%", cpu - dm, dm, mo, cpu + mo,
                   100 * dm / (cpu + mo));
        else
            printf(" %8.0f %8.0f %8.0f %8.0f %6.1f%%", tot - mo - dm, dm, mo, tot, 100 * dm / tot);
        if (c->base)
            printf(" %7.2fx", ratio(c->total_ns, c->base->total_ns, o.reps));
        printf("\n");
        if (c->verify && dmahal_verify_count(c->drv.p, 0) != 0) {
            printf("FAILED: the verifier reported on %s\n", c->name);
            goto out;
        }
    }
    printf("\nper-I/O cost of a streaming map, from the untimed runs (ns/IO against the same "
           "driver on a common buffer):\n");
    for (unsigned i = 0; i < nc; i++) {
        struct contestant *c = &cs[i];

        for (unsigned j = 0; j < nc; j++) {
            struct contestant *b = &cs[j];
            double r[MAX_REPS];

            if (c->mem == MEM_COMMON || b->mem != MEM_COMMON || b->verify != c->verify ||
                !same_setup(c, b))
                continue;
            for (unsigned k = 0; k < o.reps; k++)
                r[k] = 1e9 / c->iops[k] - 1e9 / b->iops[k];
            printf("  %-20s %+7.0f ns/IO (%s)\n", c->name, bench_median(r, o.reps), b->name);
        }
    }
    printf("\ndone\n");
    status = 0;
out:
    for (unsigned i = 0; i < nc; i++)
        close_one(&cs[i]);
    return status;
}
