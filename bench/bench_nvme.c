/* SPDX-License-Identifier: MIT */
/*
 * bench_nvme.c - 4 KiB random reads from the simulated platform's NVMe controller model, by a
 * polled user-space driver: IOPS at queue depth 1 and 32, and each I/O's CPU time split
 * between the driver (with dmahal), dmahal's streaming map, and the model.
 *
 * Contestants, interleaved in rotating order in one process:
 *   example QD1      examples/nvme's driver (nvme_io on a common buffer): one command at a time
 *   poll QD1/QD32    a minimal polled driver here: QD commands in flight, completions reaped in
 *                    batches, one SQ doorbell per batch of submissions
 *   map QD1/QD32     the same, with the data in malloc'd memory mapped and unmapped per I/O
 *                    (dmahal_map/dmahal_unmap), as a zero-copy driver does
 *   ... +verify      the same with the verifier on
 *   ... 2 queues     QD 32 spread over two I/O queue pairs, 16 commands on each
 *
 * The model runs each command synchronously inside the doorbell write that submits it, so
 * "the model's time" is the time spent in doorbell writes (the SQ tail, and the CQ head that
 * may release held commands): the model's register and queue work and its device-side DMA
 * (dmahal_dev_read/write, the simulated bus). dmahal's own share is the map and unmap; the
 * rest (queue bookkeeping, polling, dmahal's MMIO dispatch) is the driver's.
 */
#include "harness.h"

#include <dmahal/dmahal.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "nvme/nvme_driver.h"

#define MAX_REPS 1000
#define DEPTH    64u /* I/O queue entries: room for QD 32 without a full completion queue */
#define BLOCK    4096u
#define NS_SIZE  (16u << 20)
#define NBLOCKS  (NS_SIZE / BLOCK)
#define DEVICE   "nvme:size=16M,lba=4096,queues=4"

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

/* One I/O queue pair of the bench's driver. */
struct ioq {
    struct dmahal_buf sq, cq;
    uint16_t qid, tail, head;
    unsigned phase;
};

/* The bench's own driver: one admin queue pair and one or two I/O queue pairs, polled. */
struct drv {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf asq, acq, data;
    uint16_t atail, ahead;
    unsigned aphase, nq;
    struct ioq q[2];
    void *mem[DEPTH];              /* per-slot caller memory (map contestants) */
    struct dmahal_sgl *sgl[DEPTH]; /* its mapping while the command is in flight */
    uint64_t model_ns, dmahal_ns;  /* accumulated when timing the split */
};

struct contestant {
    const char *name;
    unsigned qd, nq; /* queue depth; I/O queue pairs (0: one) */
    bool map, verify, example;
    struct drv drv;
    struct nvme *n; /* the example driver */
    struct dmahal_buf buf;
    double iops[MAX_REPS], total_ns[MAX_REPS], model_ns[MAX_REPS], dmahal_ns[MAX_REPS];
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_lba(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % NBLOCKS;
}

static int wait_csts(struct drv *v, uint32_t want)
{
    for (int i = 0; i < 1000; i++)
        if ((dmahal_mmio_read32(v->d, 0, REG_CSTS) & 3u) == want)
            return 0;
    return -ETIMEDOUT;
}

/* One admin command, polled; 0 or -EIO. */
static int admin(struct drv *v, struct sqe *cmd)
{
    struct cqe *e = (struct cqe *)v->acq.va + v->ahead;

    cmd->cdw0 |= (uint32_t)v->atail << 16;
    memcpy((struct sqe *)v->asq.va + v->atail, cmd, sizeof(*cmd));
    v->atail = (uint16_t)((v->atail + 1) % 16);
    dmahal_mmio_write32(v->d, 0, DB(0), v->atail);
    if (((e->dw3 >> 16) & 1) != v->aphase)
        return -ETIMEDOUT;
    if (++v->ahead == 16) {
        v->ahead = 0;
        v->aphase ^= 1;
    }
    dmahal_mmio_write32(v->d, 0, DB(1), v->ahead);
    return (e->dw3 >> 17) & 0x7ff ? -EIO : 0;
}

static int drv_open(struct drv *v, unsigned nq, bool verify, bool map)
{
    struct dmahal_desc desc = {.addr_bits = 64, .alignment = 4, .coherent = true};
    struct sqe cmd;
    int rc;

    memset(v, 0, sizeof(*v));
    v->aphase = 1;
    v->nq = nq;
    rc = dmahal_platform_open("sim", &v->p);
    if (!rc && verify)
        rc = dmahal_verify_enable(v->p, DMAHAL_VERIFY_COUNT, NULL, NULL);
    if (!rc)
        rc = dmahal_device_open(v->p, DEVICE, &v->d);
    if (!rc)
        rc = dmahal_adapter_get(v->d, &desc, &v->a);
    if (!rc)
        rc = dmahal_common_alloc(v->a, 4096, 0, &v->asq);
    if (!rc)
        rc = dmahal_common_alloc(v->a, 4096, 0, &v->acq);
    for (unsigned k = 0; !rc && k < nq; k++) {
        v->q[k] = (struct ioq){.qid = (uint16_t)(k + 1), .phase = 1};
        rc = dmahal_common_alloc(v->a, DEPTH * 64, 0, &v->q[k].sq);
        if (!rc) /* queue bases are page-aligned: a whole page */
            rc = dmahal_common_alloc(v->a, 4096, 0, &v->q[k].cq);
    }
    if (!rc)
        rc = dmahal_common_alloc(v->a, DEPTH * BLOCK, 0, &v->data);
    for (unsigned i = 0; !rc && map && i < DEPTH; i++)
        rc = posix_memalign(&v->mem[i], BLOCK, BLOCK) ? -ENOMEM : 0;
    if (rc)
        return rc;
    dmahal_mmio_write32(v->d, 0, REG_AQA, 15u << 16 | 15u);
    dmahal_mmio_write64(v->d, 0, REG_ASQ, v->asq.la);
    dmahal_mmio_write64(v->d, 0, REG_ACQ, v->acq.la);
    dmahal_mmio_write32(v->d, 0, REG_CC, 1u | 6u << 16 | 4u << 20);
    rc = wait_csts(v, 1);
    for (unsigned k = 0; !rc && k < nq; k++) {
        uint32_t qid = v->q[k].qid;

        cmd = (struct sqe){
            .cdw0 = 0x05, .prp1 = v->q[k].cq.la, .cdw10 = (DEPTH - 1) << 16 | qid, .cdw11 = 1};
        rc = admin(v, &cmd);
        if (rc)
            break;
        cmd = (struct sqe){.cdw0 = 0x01,
                           .prp1 = v->q[k].sq.la,
                           .cdw10 = (DEPTH - 1) << 16 | qid,
                           .cdw11 = qid << 16 | 1};
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
    }
    for (unsigned i = 0; i < DEPTH; i++)
        free(v->mem[i]);
    dmahal_adapter_put(v->a);
    dmahal_device_close(v->d);
    dmahal_platform_close(v->p);
    memset(v, 0, sizeof(*v));
}

/* Writes one command for slot @slot (its command identifier) at the tail of its queue. */
static int queue_read(struct drv *v, struct ioq *q, uint16_t slot, bool map, bool timed)
{
    uint64_t la = v->data.la + (uint64_t)slot * BLOCK, lba = next_lba();
    struct sqe *e = (struct sqe *)q->sq.va + q->tail;

    if (map) {
        uint64_t t0 = timed ? bench_now_ns() : 0;
        int rc = dmahal_map(v->a, &(struct iovec){v->mem[slot], BLOCK}, 1, DMAHAL_FROM_DEVICE, 0,
                            &v->sgl[slot]);

        if (timed)
            v->dmahal_ns += bench_now_ns() - t0;
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
    return 0;
}

static void ring(struct drv *v, uint32_t db, uint16_t val, bool timed)
{
    uint64_t t0 = timed ? bench_now_ns() : 0;

    dmahal_mmio_write32(v->d, 0, db, val);
    if (timed)
        v->model_ns += bench_now_ns() - t0;
}

/* Reaps the completions queue @q holds, freeing their slots; the count, or a negative errno. */
static int reap(struct drv *v, struct ioq *q, unsigned qd, bool map, bool timed, uint16_t *slots,
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
        if (map) {
            uint64_t t0 = timed ? bench_now_ns() : 0;

            rc = dmahal_unmap(v->a, v->sgl[slot]);
            if (timed)
                v->dmahal_ns += bench_now_ns() - t0;
            if (rc)
                return rc;
            bench_consume(v->mem[slot], 64);
        } else {
            bench_consume((char *)v->data.va + (size_t)slot * BLOCK, 64);
        }
        slots[(*nfree)++] = slot;
        if (++q->head == DEPTH) {
            q->head = 0;
            q->phase ^= 1;
        }
    }
    if (reaped)
        ring(v, DB(2 * q->qid + 1), q->head, timed);
    return reaped;
}

/* @n reads with @qd in flight, spread over the driver's queues; 0 or a negative errno. */
static int drv_run(struct drv *v, unsigned qd, unsigned n, bool map, bool timed)
{
    unsigned issued = 0, done = 0;
    uint16_t slots[DEPTH], nfree = 0;
    int rc;

    for (uint16_t s = 0; s < qd; s++)
        slots[nfree++] = s;
    while (done < n) {
        unsigned batch[2] = {0, 0};

        /* A slot always goes to the same queue, so each queue holds qd / nq commands. */
        while (nfree && issued < n) {
            uint16_t slot = slots[--nfree];
            struct ioq *q = &v->q[slot % v->nq];

            rc = queue_read(v, q, slot, map, timed);
            if (rc)
                return rc;
            issued++;
            batch[slot % v->nq]++;
        }
        for (unsigned k = 0; k < v->nq; k++)
            if (batch[k])
                ring(v, DB(2 * v->q[k].qid), v->q[k].tail, timed);
        for (unsigned k = 0; k < v->nq; k++) {
            rc = reap(v, &v->q[k], qd, map, timed, slots, &nfree);
            if (rc < 0)
                return rc;
            done += (unsigned)rc;
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
        if (((c->dw3 >> 16) & 1) != q->phase || (c->dw3 >> 17) & 0x7ff)
            return -EIO;
        if (++q->head == DEPTH) {
            q->head = 0;
            q->phase ^= 1;
        }
        dmahal_mmio_write32(v->d, 0, DB(3), q->head);
    }
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
        rc = drv_open(&c->drv, c->nq ? c->nq : 1, c->verify, c->map);
        if (rc)
            return rc;
        return drv_fill(&c->drv);
    }
    rc = dmahal_platform_open("sim", &p);
    if (!rc && c->verify)
        rc = dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, NULL, NULL);
    if (!rc)
        rc = dmahal_device_open(p, DEVICE, &d);
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

/* One sample of @n I/Os: IOPS untimed inside, then the split with timers. */
static int sample(struct contestant *c, unsigned n, unsigned r)
{
    uint64_t t0, t1;
    int rc = 0;

    if (c->example) {
        t0 = bench_now_ns();
        for (unsigned i = 0; !rc && i < n; i++)
            rc = nvme_io(c->n, NVME_CMD_READ, next_lba(), 1, &c->buf, 0, NULL);
        t1 = bench_now_ns();
        c->iops[r] = 1e9 * n / (double)(t1 - t0);
        c->total_ns[r] = (double)(t1 - t0) / n;
        c->model_ns[r] = c->dmahal_ns[r] = 0;
        return rc;
    }
    t0 = bench_now_ns();
    rc = drv_run(&c->drv, c->qd, n, c->map, false);
    t1 = bench_now_ns();
    if (rc)
        return rc;
    c->iops[r] = 1e9 * n / (double)(t1 - t0);
    c->drv.model_ns = c->drv.dmahal_ns = 0;
    t0 = bench_now_ns();
    rc = drv_run(&c->drv, c->qd, n, c->map, true);
    t1 = bench_now_ns();
    c->total_ns[r] = (double)(t1 - t0) / n;
    c->model_ns[r] = (double)c->drv.model_ns / n;
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

static const char usage[] = "usage: bench_nvme [--quick] [--reps N]\n"
                            "  4 KiB random reads from the sim's NVMe model, polled: IOPS and\n"
                            "  per-I/O time split into driver, dmahal and model\n";

int main(int argc, char **argv)
{
    struct contestant cs[] = {
        {.name = "example QD1", .qd = 1, .example = true},
        {.name = "poll QD1", .qd = 1},
        {.name = "poll QD32", .qd = 32},
        {.name = "map QD1", .qd = 1, .map = true},
        {.name = "map QD32", .qd = 32, .map = true},
        {.name = "poll QD1 +verify", .qd = 1, .verify = true},
        {.name = "poll QD32 +verify", .qd = 32, .verify = true},
        {.name = "map QD1 +verify", .qd = 1, .map = true, .verify = true},
        {.name = "map QD32 +verify", .qd = 32, .map = true, .verify = true},
        {.name = "poll QD32 2 queues", .qd = 32, .nq = 2},
        {.name = "map QD32 2 queues", .qd = 32, .nq = 2, .map = true},
    };
    const unsigned nc = sizeof(cs) / sizeof(cs[0]);
    struct bench_opts o;
    unsigned n;
    int rc = bench_parse(argc, argv, usage, &o), status = 1;

    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    n = o.quick ? 256 : 20000;
    for (unsigned i = 0; i < nc; i++) {
        rc = open_one(&cs[i]);
        if (rc) {
            fprintf(stderr, "%s: cannot set up: %s\n", cs[i].name, dmahal_strerror(rc));
            goto out;
        }
    }
    bench_print_machine();
    printf("method: %u repetitions of %u random 4 KiB reads per contestant after a warm-up, "
           "interleaved in rotating order, device %s on sim; medians%s\n",
           o.reps, n, DEVICE, o.quick ? " (--quick: figures are only a smoke test)" : "");
    for (unsigned i = 0; i < nc; i++)
        if (sample(&cs[i], n, 0))
            goto out;
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
    printf("\n%-18s %10s %9s %9s %9s %9s %7s %9s\n", "contestant", "kIOPS", "ns/IO", "driver",
           "dmahal", "model", "dmahal%", "vs off");
    for (unsigned i = 0; i < nc; i++) {
        struct contestant *c = &cs[i];
        double tot = med(c->total_ns, o.reps), mo = med(c->model_ns, o.reps);
        double dm = med(c->dmahal_ns, o.reps);

        printf("%-18s %10.1f %9.0f", c->name, med(c->iops, o.reps) / 1e3, tot);
        if (c->example)
            printf(" %9s %9s %9s %7s", "-", "-", "-", "-");
        else
            printf(" %9.0f %9.0f %9.0f %6.1f%%", tot - mo - dm, dm, mo, 100 * dm / tot);
        if (c->verify) /* the same contestant without the verifier is four entries up */
            printf(" %8.2fx", ratio(c->total_ns, cs[i - 4].total_ns, o.reps));
        printf("\n");
        if (c->verify && dmahal_verify_count(c->drv.p, 0) != 0) {
            printf("FAILED: the verifier reported on %s\n", c->name);
            goto out;
        }
    }
    printf("\ndone\n");
    status = 0;
out:
    for (unsigned i = 0; i < nc; i++)
        close_one(&cs[i]);
    return status;
}
