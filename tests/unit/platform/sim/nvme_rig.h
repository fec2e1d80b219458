/* SPDX-License-Identifier: MIT */
/*
 * nvme_rig.h - a minimal polled NVMe host for tests of the sim's NVMe model: the register
 * map and command layouts of the NVMe base specification, written out here on purpose (the
 * tests check the model against the spec, not against the model's own constants), an admin
 * and one I/O queue pair, and helpers that submit a command and return its status.
 */
#ifndef DMAHAL_TEST_NVME_RIG_H
#define DMAHAL_TEST_NVME_RIG_H

#include <dmahal/dmahal.h>

#include "test.h"

#define CAP   0x00
#define VS    0x08
#define INTMS 0x0c
#define INTMC 0x10
#define CC    0x14
#define CSTS  0x1c
#define AQA   0x24
#define ASQ   0x28
#define ACQ   0x30
#define DBS   0x1000

#define CC_READY  (1u | 6u << 16 | 4u << 20) /* EN, IOSQES 64 B, IOCQES 16 B, MPS 4 KiB */
#define CSTS_RDY  0x1u
#define CSTS_CFS  0x2u
#define CSTS_SHST 0xcu

/* Status fields (completion dword 3 bits 31:17): SCT << 8 | SC, DNR 0x4000. */
#define ST_OK            0x0000
#define DNR              0x4000
#define ST_BAD_OPCODE    (DNR | 0x01)
#define ST_BAD_FIELD     (DNR | 0x02)
#define ST_XFER          0x0004
#define ST_BAD_NSID      (DNR | 0x0b)
#define ST_SEQ           (DNR | 0x0c)
#define ST_PRP_OFFSET    (DNR | 0x13)
#define ST_LBA_RANGE     (DNR | 0x80)
#define ST_CQ_INVALID    (DNR | 0x100)
#define ST_BAD_QID       (DNR | 0x101)
#define ST_QSIZE         (DNR | 0x102)
#define ST_BAD_VECTOR    (DNR | 0x108)
#define ST_QDEL          0x10c
#define ST_NOT_SAVEABLE  (DNR | 0x10d)
#define ST_NOT_CHANGABLE (DNR | 0x10e)

#define PAGE   4096u
#define ADEPTH 16u

struct sqe {
    uint32_t cdw0, nsid, cdw2, cdw3;
    uint64_t mptr, prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct cqe {
    uint32_t dw0, dw1, dw2, dw3;
};

struct q {
    struct dmahal_buf sq, cq;
    uint16_t qid, depth, tail, head, cid;
    unsigned phase;
};

struct rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct q admin, io;
    struct dmahal_buf data; /* 1 MiB */
    struct dmahal_buf list; /* 3 pages for PRP lists */
    unsigned stride;
    struct cqe last; /* the last completion */
};

/* Opens @spec and the controller @dev, an adapter and the rig's buffers; with @report not
 * NULL, the verifier on first, counting and calling it. */
static inline void rig_dev_verified(struct rig *r, const char *spec, const char *dev,
                                    dmahal_report_fn report, void *ctx)
{
    struct dmahal_desc desc = {.addr_bits = 64,
                               .alignment = 4}; /* the platform says if it snoops */

    memset(r, 0, sizeof(*r));
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    if (report)
        CHECK_OK(dmahal_verify_enable(r->p, DMAHAL_VERIFY_COUNT, report, ctx));
    CHECK_OK(dmahal_device_open(r->p, dev, &r->d));
    CHECK_OK(dmahal_adapter_get(r->d, &desc, &r->a));
    r->stride = 4u << ((dmahal_mmio_read64(r->d, 0, CAP) >> 32) & 0xf);
    CHECK_OK(dmahal_common_alloc(r->a, PAGE, 0, &r->admin.sq));
    CHECK_OK(dmahal_common_alloc(r->a, PAGE, 0, &r->admin.cq));
    CHECK_OK(dmahal_common_alloc(r->a, 1u << 20, 0, &r->data));
    CHECK_OK(dmahal_common_alloc(r->a, 3 * PAGE, 0, &r->list));
}

static inline void rig_dev(struct rig *r, const char *spec, const char *dev)
{
    rig_dev_verified(r, spec, dev, NULL, NULL);
}

static inline void admin_regs(struct rig *r, unsigned depth)
{
    dmahal_mmio_write32(r->d, 0, AQA, (depth - 1) << 16 | (depth - 1));
    dmahal_mmio_write64(r->d, 0, ASQ, r->admin.sq.la);
    dmahal_mmio_write64(r->d, 0, ACQ, r->admin.cq.la);
}

static inline void enable(struct rig *r)
{
    memset(r->admin.sq.va, 0, PAGE);
    memset(r->admin.cq.va, 0, PAGE);
    r->admin = (struct q){r->admin.sq, r->admin.cq, 0, ADEPTH, 0, 0, 0, 1};
    admin_regs(r, ADEPTH);
    dmahal_mmio_write32(r->d, 0, CC, CC_READY);
    CHECK_EQ_U(dmahal_mmio_read32(r->d, 0, CSTS), CSTS_RDY);
}

static inline void disable(struct rig *r)
{
    dmahal_mmio_write32(r->d, 0, CC, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r->d, 0, CSTS), 0);
}

static inline void rig_open(struct rig *r, const char *spec, const char *dev)
{
    rig_dev(r, spec, dev);
    enable(r);
}

static inline void rig_close(struct rig *r)
{
    disable(r);
    CHECK_OK(dmahal_common_free(r->a, &r->list));
    CHECK_OK(dmahal_common_free(r->a, &r->data));
    if (r->io.sq.va)
        CHECK_OK(dmahal_common_free(r->a, &r->io.sq));
    if (r->io.cq.va)
        CHECK_OK(dmahal_common_free(r->a, &r->io.cq));
    CHECK_OK(dmahal_common_free(r->a, &r->admin.cq));
    CHECK_OK(dmahal_common_free(r->a, &r->admin.sq));
    dmahal_adapter_put(r->a);
    dmahal_device_close(r->d);
    dmahal_platform_close(r->p);
}

static inline uint64_t sq_db(const struct rig *r, unsigned qid)
{
    return DBS + 2u * qid * r->stride;
}

static inline uint64_t cq_db(const struct rig *r, unsigned qid)
{
    return DBS + (2u * qid + 1) * r->stride;
}

/* Puts a command in the queue without ringing; returns its command identifier. */
static inline uint16_t queue_cmd(struct q *q, const struct sqe *cmd)
{
    struct sqe e = *cmd;
    uint16_t cid = q->cid++;

    e.cdw0 = (e.cdw0 & 0xffff) | (uint32_t)cid << 16;
    memcpy((struct sqe *)q->sq.va + q->tail, &e, sizeof(e));
    q->tail = (uint16_t)((q->tail + 1) % q->depth);
    return cid;
}

/* Takes the completion at the head if its phase says it is new; rings the head doorbell. */
static inline bool reap(struct rig *r, struct q *q, struct cqe *out)
{
    struct cqe *e = (struct cqe *)q->cq.va + q->head;

    if (((e->dw3 >> 16) & 1) != q->phase)
        return false;
    *out = *e;
    if (++q->head == q->depth) {
        q->head = 0;
        q->phase ^= 1;
    }
    dmahal_mmio_write32(r->d, 0, cq_db(r, q->qid), q->head);
    return true;
}

/* Submits one command and returns its completion's status field. */
static inline unsigned submit(struct rig *r, struct q *q, const struct sqe *cmd)
{
    uint16_t cid = queue_cmd(q, cmd);
    struct cqe e;

    dmahal_mmio_write32(r->d, 0, sq_db(r, q->qid), q->tail);
    CHECK(reap(r, q, &e));
    CHECK_EQ_U(e.dw3 & 0xffff, cid);
    CHECK_EQ_U(e.dw2 >> 16, q->qid);
    CHECK_EQ_U(e.dw2 & 0xffff, q->tail); /* the SQ head the controller reports */
    r->last = e;
    return e.dw3 >> 17;
}

static inline unsigned admin(struct rig *r, const struct sqe *cmd)
{
    return submit(r, &r->admin, cmd);
}

static inline unsigned io(struct rig *r, const struct sqe *cmd)
{
    return submit(r, &r->io, cmd);
}

/* Creates I/O queue pair 1 of @depth entries, polled. */
static inline void io_create(struct rig *r, unsigned depth)
{
    struct sqe cq = {.cdw0 = 0x05, .cdw10 = (depth - 1) << 16 | 1, .cdw11 = 1};
    struct sqe sq = {.cdw0 = 0x01, .cdw10 = (depth - 1) << 16 | 1, .cdw11 = 1u << 16 | 1};

    if (!r->io.sq.va) {
        CHECK_OK(dmahal_common_alloc(r->a, 32 * PAGE, 0, &r->io.sq));
        CHECK_OK(dmahal_common_alloc(r->a, 8 * PAGE, 0, &r->io.cq));
    }
    memset(r->io.cq.va, 0, 8 * PAGE);
    r->io = (struct q){r->io.sq, r->io.cq, 1, (uint16_t)depth, 0, 0, 0, 1};
    cq.prp1 = r->io.cq.la;
    sq.prp1 = r->io.sq.la;
    CHECK_EQ_U(admin(r, &cq), ST_OK);
    CHECK_EQ_U(admin(r, &sq), ST_OK);
}

static inline struct sqe rw_cmd(unsigned op, uint32_t nsid, uint64_t slba, unsigned nlb,
                                uint64_t prp1, uint64_t prp2)
{
    return (struct sqe){.cdw0 = op,
                        .nsid = nsid,
                        .prp1 = prp1,
                        .prp2 = prp2,
                        .cdw10 = (uint32_t)slba,
                        .cdw11 = (uint32_t)(slba >> 32),
                        .cdw12 = nlb - 1};
}

#endif /* DMAHAL_TEST_NVME_RIG_H */
