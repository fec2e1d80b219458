/* SPDX-License-Identifier: MIT */
/* nvme_driver.c - see nvme_driver.h. Uses the public dmahal API only. */
#include "nvme_driver.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Controller registers in BAR0 (NVM Express Base Specification, "Controller Registers"). */
#define REG_CAP  0x00 /* 64-bit: capabilities */
#define REG_VS   0x08
#define REG_CC   0x14
#define REG_CSTS 0x1c
#define REG_AQA  0x24
#define REG_ASQ  0x28   /* 64-bit */
#define REG_ACQ  0x30   /* 64-bit */
#define REG_DBS  0x1000 /* the first doorbell: admin SQ tail */

#define CAP_MQES(c)    ((unsigned)((c)&0xffff))        /* max queue entries, 0's based */
#define CAP_TO(c)      ((unsigned)((c) >> 24) & 0xffu) /* ready timeout, 500 ms units */
#define CAP_DSTRD(c)   ((unsigned)((c) >> 32) & 0xfu)  /* doorbell stride: 4 << DSTRD */
#define CAP_CSS_NVM(c) ((unsigned)((c) >> 37) & 1u)    /* NVM command set supported */
#define CAP_MPSMIN(c)  ((unsigned)((c) >> 48) & 0xfu)  /* min page size: 2^(12+MPSMIN) */

#define CC_EN         0x1u
#define CC_CSS_NVM    (0u << 4)
#define CC_MPS(shift) ((uint32_t)((shift)-12) << 7)
#define CC_AMS_RR     (0u << 11)
#define CC_IOSQES(n)  ((uint32_t)(n) << 16) /* log2 of the SQ entry size: 64 B -> 6 */
#define CC_IOCQES(n)  ((uint32_t)(n) << 20) /* log2 of the CQ entry size: 16 B -> 4 */
#define CSTS_RDY      0x1u
#define CSTS_CFS      0x2u

/* Admin opcodes. */
#define ADM_DELETE_SQ  0x00
#define ADM_CREATE_SQ  0x01
#define ADM_DELETE_CQ  0x04
#define ADM_CREATE_CQ  0x05
#define ADM_IDENTIFY   0x06
#define ADM_SET_FEAT   0x09
#define FEAT_NQUEUES   0x07
#define CNS_NAMESPACE  0x00
#define CNS_CONTROLLER 0x01

#define SQE_SIZE         64u
#define CQE_SIZE         16u
#define ADMIN_DEPTH      (NVME_PAGE_SIZE / SQE_SIZE) /* one page of admin SQ entries */
#define IO_DEPTH_MAX     (NVME_PAGE_SIZE / SQE_SIZE)
#define NSID             1u
#define PRP_LIST_ENTRIES (NVME_PAGE_SIZE / 8u) /* one list page, never chained */

/* A submission queue entry: command dwords 0..15. */
struct sqe {
    uint32_t cdw0; /* opcode 7:0, PRP data transfer 15:14 = 0, command identifier 31:16 */
    uint32_t nsid;
    uint32_t cdw2, cdw3;
    uint64_t mptr;
    uint64_t prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

/* A completion queue entry. */
struct cqe {
    uint32_t dw0; /* command specific */
    uint32_t dw1;
    uint32_t dw2; /* SQ head pointer 15:0, SQ identifier 31:16 */
    uint32_t dw3; /* command identifier 15:0, phase 16, status 31:17 */
};

struct queue {
    struct dmahal_buf sq, cq;
    uint16_t qid, depth;
    uint16_t sq_tail, cq_head, cid;
    uint8_t phase; /* the phase bit of entries not yet consumed */
    bool unrung;   /* entries written since the last SQ tail doorbell */
    uint64_t sq_db, cq_db;
};

/* A command on the I/O queue, from nvme_submit to its completion; its command identifier is
 * its index. */
struct slot {
    bool busy;
    bool abandoned; /* in flight when the driver broke: its data is not the caller's to trust */
    uint8_t op;
    uint64_t tag;
    uint64_t seq;           /* submission order: the oldest is named when none completes */
    struct dmahal_sgl *sgl; /* caller memory mapped for it (nvme_submit_mem), else NULL */
    struct dmahal_buf list; /* its PRP list page, allocated the first time it needs one */
};

/* An I/O queue pair and the commands on it: one thread's at a time. */
struct ioq {
    struct queue q;
    struct slot slots[IO_DEPTH_MAX];
    unsigned inflight; /* busy slots */
    uint64_t seq;
    unsigned iv; /* its interrupt vector */
    bool cq_created, sq_created;
};

struct nvme {
    struct dmahal_device *dev;
    struct dmahal_adapter *adapter;
    struct queue admin;
    struct ioq io[NVME_MAX_IO_QUEUES];
    unsigned nq;             /* I/O queue pairs */
    struct dmahal_buf ident; /* one page for Identify data */
    uint64_t cap;
    atomic_bool broken; /* a command timed out: its completion may still land, stop issuing */
    int irq;            /* enum dmahal_irq_type the I/O queues complete on; 0: polled */
    bool spin;          /* NVME_OPEN_SPIN: the I/O queues polled without pauses */
    bool shared_line;   /* several queues on one vector (INTx): waits are kept short */
    struct nvme_info info;
};

static void abandon_maps(struct ioq *io, struct nvme *n);
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("nvme: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* How a polling wait paces itself, by how long it has waited: a spin first (a completion
 * often lands within microseconds), then yields of the CPU, so that an emulated controller's
 * thread on the same CPU gets it, and after 2 ms short sleeps. A sleep costs a timer's
 * latency and its slack (50 us by default) on top of the 20 us asked for: on a loaded
 * machine, where commands take hundreds of microseconds, sleeping early adds that to each. */
enum poll_pace { PACE_SPIN, PACE_YIELD, PACE_SLEEP };

static enum poll_pace poll_pace_at(uint64_t start, uint64_t t)
{
    return t - start > 2000000 ? PACE_SLEEP : t - start > 200000 ? PACE_YIELD : PACE_SPIN;
}

static void poll_pause(enum poll_pace pace)
{
    static const struct timespec pause = {0, 20000};

    if (pace == PACE_SLEEP)
        nanosleep(&pause, NULL);
    else if (pace == PACE_YIELD)
        sched_yield();
}

/* 64-bit registers are accessed as two dwords, low first: the specification allows it and
 * every transport (VFIO's read/write path included) supports 32-bit accesses. */
static uint64_t reg_read64(struct nvme *n, uint64_t off)
{
    uint64_t lo = dmahal_mmio_read32(n->dev, 0, off);

    return lo | (uint64_t)dmahal_mmio_read32(n->dev, 0, off + 4) << 32;
}

static void reg_write64(struct nvme *n, uint64_t off, uint64_t v)
{
    dmahal_mmio_write32(n->dev, 0, off, (uint32_t)v);
    dmahal_mmio_write32(n->dev, 0, off + 4, (uint32_t)(v >> 32));
}

/* Waits until CSTS.RDY equals @ready, for at most CAP.TO. */
static int wait_ready(struct nvme *n, bool ready)
{
    uint64_t start = now_ns(), limit = (uint64_t)n->info.ready_ms * 1000000u;

    for (;;) {
        uint32_t csts = dmahal_mmio_read32(n->dev, 0, REG_CSTS);
        uint64_t t;

        if (csts == UINT32_MAX) {
            say("CSTS reads all ones: the controller is gone");
            return -ENODEV;
        }
        /* While enabling, a fatal status is final; while disabling, CFS may stay set until
         * the reset completes, so only RDY matters. */
        if (ready && (csts & CSTS_CFS)) {
            say("controller fatal status (CSTS.CFS) while enabling, CSTS %#" PRIx32, csts);
            return -EIO;
        }
        if (!!(csts & CSTS_RDY) == ready)
            return 0;
        t = now_ns();
        if (t - start > limit) {
            say("CSTS.RDY did not become %d within CAP.TO (%u ms), CSTS %#" PRIx32, ready,
                n->info.ready_ms, csts);
            return -ETIMEDOUT;
        }
        poll_pause(poll_pace_at(start, t));
    }
}

static int queue_alloc(struct nvme *n, struct queue *q, uint16_t qid, uint16_t depth)
{
    int rc;

    q->qid = qid;
    q->depth = depth;
    q->phase = 1;
    q->sq_db = REG_DBS + (uint64_t)(2u * qid) * n->info.db_stride;
    q->cq_db = REG_DBS + (uint64_t)(2u * qid + 1) * n->info.db_stride;
    /* A page or more: page-aligned, as the controller requires of queue bases. */
    rc = dmahal_common_alloc(n->adapter, NVME_PAGE_SIZE, 0, &q->sq);
    if (rc)
        return rc;
    rc = dmahal_common_alloc(n->adapter, NVME_PAGE_SIZE, 0, &q->cq);
    if (rc) {
        dmahal_common_free(n->adapter, &q->sq);
        memset(&q->sq, 0, sizeof(q->sq));
    }
    return rc;
}

static void queue_free(struct nvme *n, struct queue *q)
{
    if (q->sq.va)
        dmahal_common_free(n->adapter, &q->sq);
    if (q->cq.va)
        dmahal_common_free(n->adapter, &q->cq);
    memset(q, 0, sizeof(*q));
}

static const char *opcode_name(const struct queue *q, uint8_t op)
{
    if (q->qid) {
        switch (op) {
        case NVME_CMD_READ:
            return "Read";
        case NVME_CMD_WRITE:
            return "Write";
        default:
            return "I/O command";
        }
    }
    switch (op) {
    case ADM_DELETE_SQ:
        return "Delete I/O Submission Queue";
    case ADM_CREATE_SQ:
        return "Create I/O Submission Queue";
    case ADM_DELETE_CQ:
        return "Delete I/O Completion Queue";
    case ADM_CREATE_CQ:
        return "Create I/O Completion Queue";
    case ADM_IDENTIFY:
        return "Identify";
    case ADM_SET_FEAT:
        return "Set Features";
    default:
        return "admin command";
    }
}

/* Whether the entry at the queue's head is the controller's (its phase bit flipped). The
 * controller writes the entry while the driver looks: an atomic load, whose acquire orders
 * the reads of the rest of the entry (and of the data) after it. */
static bool head_ready(const struct queue *q)
{
    const struct cqe *slot = (const struct cqe *)q->cq.va + q->cq_head;

    return ((__atomic_load_n(&slot->dw3, __ATOMIC_ACQUIRE) >> 16) & 1u) == q->phase;
}

/* Waits until the entry at the queue's head is the controller's (its phase bit flipped); the
 * wait started at @start. @io is the I/O queue pair @q belongs to, NULL for the admin queue.
 * @cid names the command waited for in a message (the oldest in flight). 0, or a negative
 * errno: -ETIMEDOUT, or -EIO for a controller fatal status. */
static int wait_head(struct nvme *n, struct queue *q, const struct ioq *io, uint16_t cid,
                     uint64_t start)
{
    bool spin = n->spin && io;
    unsigned every = spin ? NVME_SPIN_CLOCK : NVME_POLL_CLOCK_FIRST, left = every;
    enum poll_pace pace = PACE_SPIN;

    for (unsigned looks = 1;; looks++) {
        uint64_t t;

        if (head_ready(q))
            break;
        if (n->irq && io) {
            /* Sleep until the queue's vector fires, then look again: an event may be an
             * earlier completion's, already consumed. INTx is unmasked at once; it fires again
             * while entries stay unconsumed, which the loop also absorbs. */
            int ms =
                (int)(((uint64_t)NVME_CMD_TIMEOUT_MS * 1000000u - (now_ns() - start)) / 1000000u);
            int rc;

            /* A line shared by queues that other threads drain: another thread may take
             * this queue's event, so look again every millisecond. */
            if (n->shared_line && ms > 1)
                ms = 1;
            rc = dmahal_irq_wait(n->dev, io->iv, ms > 0 ? ms : 0);

            if (n->irq == DMAHAL_IRQ_INTX)
                dmahal_irq_unmask(n->dev, 0);
            if (rc && rc != -ETIMEDOUT && rc != -EINTR)
                return rc;
        } else {
            if (looks % 64 == 0)
                poll_pause(pace);
            if (--left)
                continue;
        }
        t = now_ns();
        if (t - start > (uint64_t)NVME_CMD_TIMEOUT_MS * 1000000u) {
            uint32_t csts = dmahal_mmio_read32(n->dev, 0, REG_CSTS);

            atomic_store(&n->broken, true);
            if (csts & CSTS_CFS && csts != UINT32_MAX) {
                say("controller fatal status (CSTS.CFS) waiting for command %u on queue %u", cid,
                    q->qid);
                return -EIO;
            }
            say("no completion for command %u on queue %u within %u ms (CSTS %#" PRIx32 ")", cid,
                q->qid, NVME_CMD_TIMEOUT_MS, csts);
            return -ETIMEDOUT;
        }
        /* The clock is read less often the longer the wait: where a read is costly (an
         * emulated HPET takes the emulator's global lock, which the controller's emulation
         * needs to post the completion) a long wait is not spent reading it. */
        if (!spin) {
            pace = poll_pace_at(start, t);
            if (every < NVME_POLL_CLOCK_MAX)
                every *= 2;
        }
        left = every;
    }
    return 0;
}

/* Takes the entry at the queue's head (the controller's, wait_head said) into @e and moves
 * the head on; the controller learns of it at the next ring_cq. */
static void take_head(struct queue *q, struct cqe *e)
{
    const struct cqe *slot = (const struct cqe *)q->cq.va + q->cq_head;

    e->dw0 = slot->dw0;
    e->dw1 = slot->dw1;
    e->dw2 = slot->dw2;
    e->dw3 = slot->dw3;
    if (++q->cq_head == q->depth) {
        q->cq_head = 0;
        q->phase ^= 1u;
    }
}

static void ring_cq(struct nvme *n, struct queue *q)
{
    dmahal_mmio_write32(n->dev, 0, q->cq_db, q->cq_head);
}

/* Waits for the completion at the admin queue's head; returns it in @e or a negative errno. */
static int wait_cqe(struct nvme *n, struct queue *q, uint16_t cid, struct cqe *e)
{
    int rc = wait_head(n, q, NULL, cid, now_ns());

    if (rc)
        return rc;
    take_head(q, e);
    ring_cq(n, q);
    if ((e->dw3 & 0xffff) != cid || (e->dw2 >> 16) != q->qid) {
        atomic_store(&n->broken, true);
        say("completion for command %u of queue %u, expected command %u of queue %u",
            e->dw3 & 0xffff, e->dw2 >> 16, cid, q->qid);
        return -EIO;
    }
    return 0;
}

static int refuse_broken(const struct queue *q, uint8_t op)
{
    say("%s refused: an earlier command timed out, the controller needs a reset",
        opcode_name(q, op));
    return -EIO;
}

/* Tells the controller of the entries written up to the queue's tail. */
static void ring_sq(struct nvme *n, struct queue *q)
{
    /* The entries must be in memory before the controller learns of them (a release). */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    dmahal_mmio_write32(n->dev, 0, q->sq_db, q->sq_tail);
    q->unrung = false;
}

/* Writes @cmd at the queue's tail as command @cid; ring_sq tells the controller. */
static void sq_write(struct queue *q, struct sqe *cmd, uint16_t cid)
{
    cmd->cdw0 = (cmd->cdw0 & 0xffu) | (uint32_t)cid << 16;
    memcpy((struct sqe *)q->sq.va + q->sq_tail, cmd, sizeof(*cmd));
    if (++q->sq_tail == q->depth)
        q->sq_tail = 0;
    q->unrung = true;
}

/* The status field of a completion: 0, or -EIO (and a message) when it says failure. */
static int status_rc(const struct queue *q, uint8_t op, uint16_t st)
{
    if (!(st & 0x7ff))
        return 0;
    say("%s failed on queue %u: status %#x (%s; type %u, code %#x%s)", opcode_name(q, op), q->qid,
        st, nvme_status_name(st), NVME_STATUS_SCT(st), NVME_STATUS_SC(st),
        NVME_STATUS_DNR(st) ? ", do not retry" : "");
    return -EIO;
}

/* Submits one admin command and waits for its completion. @status receives the status. */
static int submit(struct nvme *n, struct sqe *cmd, uint32_t *dw0, uint16_t *status)
{
    struct queue *q = &n->admin;
    uint8_t op = (uint8_t)cmd->cdw0;
    uint16_t cid = q->cid++;
    struct cqe e;
    int rc;

    *status = 0;
    if (atomic_load(&n->broken))
        return refuse_broken(q, op);
    sq_write(q, cmd, cid);
    ring_sq(n, q);
    rc = wait_cqe(n, q, cid, &e);
    if (rc)
        return rc;
    *status = (uint16_t)(e.dw3 >> 17);
    if (dw0)
        *dw0 = e.dw0;
    return status_rc(q, op, *status);
}

static int admin(struct nvme *n, struct sqe *cmd)
{
    uint16_t st;

    return submit(n, cmd, NULL, &st);
}

/* Copies a space-padded ASCII field and removes the padding. */
static void field(char *dst, const uint8_t *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
    while (len && (dst[len - 1] == ' ' || dst[len - 1] == '\0'))
        dst[--len] = '\0';
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int identify(struct nvme *n, unsigned cns, uint32_t nsid)
{
    struct sqe cmd = {.cdw0 = ADM_IDENTIFY, .nsid = nsid, .prp1 = n->ident.la, .cdw10 = cns};

    memset(n->ident.va, 0, NVME_PAGE_SIZE);
    return admin(n, &cmd);
}

/* Identify Controller then Identify Namespace 1, into @info. */
static int identify_all(struct nvme *n, struct nvme_info *info)
{
    const uint8_t *id = n->ident.va;
    unsigned mdts, flbas, lbads;
    int rc;

    rc = identify(n, CNS_CONTROLLER, 0);
    if (rc)
        return rc;
    info->vid = (uint16_t)(id[0] | id[1] << 8);
    field(info->serial, id + 4, 20);
    field(info->model, id + 24, 40);
    field(info->firmware, id + 64, 8);
    mdts = id[77];
    info->nn = le32(id + 516);
    /* MDTS is a power of two in units of the minimum page size; 0 means no limit. The driver
     * never chains PRP lists, which bounds a transfer to one list page of entries. */
    info->max_transfer = (size_t)PRP_LIST_ENTRIES * NVME_PAGE_SIZE;
    if (mdts && mdts < 20) {
        size_t m = ((size_t)NVME_PAGE_SIZE << CAP_MPSMIN(n->cap)) << mdts;

        if (m < info->max_transfer)
            info->max_transfer = m;
    }
    if (info->nn < NSID) {
        say("the controller has no namespace %u (NN %" PRIu32 ")", NSID, info->nn);
        return -ENOTSUP;
    }

    rc = identify(n, CNS_NAMESPACE, NSID);
    if (rc)
        return rc;
    info->nsid = NSID;
    info->nsze = le64(id + 0);
    flbas = id[26] & 0xf;
    if (flbas > id[25]) { /* NLBAF is 0's based */
        say("namespace %u formatted with LBA format %u of %u", NSID, flbas, id[25] + 1u);
        return -ENOTSUP;
    }
    lbads = id[128 + 4 * flbas + 2];
    if (!info->nsze || lbads < 9 || lbads > 12) {
        say("namespace %u is not usable: %" PRIu64 " blocks of 2^%u bytes", NSID, info->nsze,
            lbads);
        return -ENOTSUP;
    }
    info->lba_size = 1u << lbads;
    return 0;
}

/* Checks CAP and derives the driver's parameters from it. */
static int check_cap(struct nvme *n, uint64_t bar0)
{
    uint64_t cap = reg_read64(n, REG_CAP);
    uint64_t need;
    uint32_t vs;

    n->cap = cap;
    if (cap == UINT64_MAX || !cap) {
        say("CAP reads %s: no NVMe controller there", cap ? "all ones" : "zero");
        return -ENODEV;
    }
    /* Another device's registers rarely pass all three: the reserved top bits clear, the NVM
     * command set offered, and a version of 1.0 or later. */
    vs = dmahal_mmio_read32(n->dev, 0, REG_VS);
    if (cap >> 61 || !CAP_CSS_NVM(cap) || vs >> 16 == 0 || vs == UINT32_MAX) {
        say("CAP %#" PRIx64 " VS %#" PRIx32 ": not an NVMe controller", cap, vs);
        return -ENODEV;
    }
    if (CAP_MPSMIN(cap) != 0) {
        say("the controller's smallest page is %u bytes; the driver uses %u",
            4096u << CAP_MPSMIN(cap), NVME_PAGE_SIZE);
        return -ENOTSUP;
    }
    n->info.db_stride = 4u << CAP_DSTRD(cap);
    n->info.ready_ms = CAP_TO(cap) ? CAP_TO(cap) * 500u : 500u;
    n->info.io_depth = CAP_MQES(cap) + 1u < IO_DEPTH_MAX ? CAP_MQES(cap) + 1u : IO_DEPTH_MAX;
    if (n->info.io_depth < 2) {
        say("CAP.MQES %u leaves no room for a queue", CAP_MQES(cap));
        return -ENODEV;
    }
    need = REG_DBS + (uint64_t)(2 * n->nq + 2) * n->info.db_stride;
    if (bar0 < need) {
        say("BAR0 is %" PRIu64 " bytes; the doorbells need %" PRIu64, bar0, need);
        return -ENODEV;
    }
    return 0;
}

/* Reset, admin queues, enable: the controller initialisation sequence. */
static int enable(struct nvme *n)
{
    uint32_t cc;
    int rc;

    /* Whoever had the controller before (firmware, a crashed process) may have left it
     * enabled with queues in memory that is no longer theirs: reset it first. */
    if (dmahal_mmio_read32(n->dev, 0, REG_CC) & CC_EN)
        dmahal_mmio_write32(n->dev, 0, REG_CC, 0);
    rc = wait_ready(n, false);
    if (rc)
        return rc;
    rc = queue_alloc(n, &n->admin, 0, ADMIN_DEPTH);
    if (rc)
        return rc;
    dmahal_mmio_write32(n->dev, 0, REG_AQA,
                        (uint32_t)(ADMIN_DEPTH - 1) << 16 | (uint32_t)(ADMIN_DEPTH - 1));
    reg_write64(n, REG_ASQ, n->admin.sq.la);
    reg_write64(n, REG_ACQ, n->admin.cq.la);
    cc = CC_CSS_NVM | CC_MPS(12) | CC_AMS_RR | CC_IOSQES(6) | CC_IOCQES(4);
    dmahal_mmio_write32(n->dev, 0, REG_CC, cc);
    dmahal_mmio_write32(n->dev, 0, REG_CC, cc | CC_EN);
    rc = wait_ready(n, true);
    if (rc)
        return rc;
    n->info.version = dmahal_mmio_read32(n->dev, 0, REG_VS);
    return 0;
}

/* Asks for @n->nq I/O queue pairs (Set Features, Number of Queues) and keeps what the
 * controller grants. One pair needs no asking: every controller has it. */
static int ask_queues(struct nvme *n)
{
    struct sqe cmd = {
        .cdw0 = ADM_SET_FEAT, .cdw10 = FEAT_NQUEUES, .cdw11 = (n->nq - 1) << 16 | (n->nq - 1)};
    uint32_t dw0 = 0, granted;
    uint16_t st;
    int rc;

    if (n->nq == 1)
        return 0;
    rc = submit(n, &cmd, &dw0, &st);
    if (rc)
        return rc;
    granted = 1 + ((dw0 & 0xffff) < (dw0 >> 16) ? (dw0 & 0xffff) : (dw0 >> 16));
    if (granted < n->nq)
        n->nq = granted;
    return 0;
}

static int create_io_queues(struct nvme *n)
{
    for (unsigned i = 0; i < n->nq; i++) {
        struct ioq *io = &n->io[i];
        uint16_t qid = (uint16_t)(i + 1);
        uint32_t size = (uint32_t)(n->info.io_depth - 1) << 16 | qid;
        struct sqe cmd;
        int rc = queue_alloc(n, &io->q, qid, (uint16_t)n->info.io_depth);

        if (rc)
            return rc;
        /* Physically contiguous (PC = 1); interrupts (IEN, bit 1) on vector IV (31:16) when
         * the driver waits for them, else disabled: the driver polls. */
        cmd = (struct sqe){.cdw0 = ADM_CREATE_CQ,
                           .prp1 = io->q.cq.la,
                           .cdw10 = size,
                           .cdw11 = n->irq ? (uint32_t)io->iv << 16 | 2u | 1u : 1u};
        rc = admin(n, &cmd);
        if (rc)
            return rc;
        io->cq_created = true;
        /* PC = 1, priority ignored under round robin, completions to the queue made above. */
        cmd = (struct sqe){.cdw0 = ADM_CREATE_SQ,
                           .prp1 = io->q.sq.la,
                           .cdw10 = size,
                           .cdw11 = (uint32_t)qid << 16 | 1u};
        rc = admin(n, &cmd);
        if (rc)
            return rc;
        io->sq_created = true;
    }
    return 0;
}

/* Frees the driver's DMA memory and its adapter: only once the controller is off. */
static void release(struct nvme *n)
{
    for (unsigned q = 0; q < NVME_MAX_IO_QUEUES; q++) {
        queue_free(n, &n->io[q].q);
        for (unsigned i = 0; i < IO_DEPTH_MAX; i++)
            if (n->io[q].slots[i].list.va)
                dmahal_common_free(n->adapter, &n->io[q].slots[i].list);
    }
    queue_free(n, &n->admin);
    if (n->ident.va)
        dmahal_common_free(n->adapter, &n->ident);
    dmahal_adapter_put(n->adapter);
    n->adapter = NULL;
}

/* MSI-X with a vector for each I/O queue apart from the admin queue's, else INTx: one line
 * for all. */
static int irq_setup(struct nvme *n)
{
    unsigned nvec = 0;
    int rc = dmahal_irq_enable(n->dev, DMAHAL_IRQ_MSIX, n->nq + 1);

    if (rc == -ENOTSUP)
        rc = dmahal_irq_enable(n->dev, DMAHAL_IRQ_INTX, 1);
    if (rc < 0) {
        say("cannot enable interrupts on %s: %s", dmahal_device_name(n->dev), dmahal_strerror(rc));
        return rc;
    }
    n->irq = dmahal_irq_mode(n->dev, &nvec);
    for (unsigned i = 0; i < n->nq; i++)
        n->io[i].iv = n->irq == DMAHAL_IRQ_MSIX && nvec >= 2 ? 1 + i % (nvec - 1) : 0;
    n->shared_line = n->nq > 1 && (n->irq != DMAHAL_IRQ_MSIX || nvec < n->nq + 1);
    return 0;
}

int nvme_irq_type(const struct nvme *n)
{
    return n ? n->irq : 0;
}

int nvme_open(struct dmahal_device *dev, struct nvme **out)
{
    return nvme_open_flags(dev, 0, out);
}

int nvme_open_flags(struct dmahal_device *dev, unsigned flags, struct nvme **out)
{
    return nvme_open_queues(dev, flags, 1, out);
}

int nvme_open_queues(struct dmahal_device *dev, unsigned flags, unsigned nqueues, struct nvme **out)
{
    /* PRPs: dword-aligned data, a list of up to one page of entries after PRP1's page, and
     * the PRP rule as the adapter's virtual boundary. Whether the controller snoops the CPU's
     * caches is the machine's to say (coherent left false): the queues are uncached common
     * buffers, and data in caller memory goes through map and unmap, which sync it. */
    struct dmahal_desc desc = {.addr_bits = 64,
                               .alignment = 4,
                               .max_segments = PRP_LIST_ENTRIES + 1,
                               .virt_boundary = NVME_PAGE_SIZE};
    uint64_t bar0 = 0;
    struct nvme *n;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dev || (flags & ~(NVME_OPEN_IRQ | NVME_OPEN_SPIN)) ||
        (flags & NVME_OPEN_IRQ && flags & NVME_OPEN_SPIN) || !nqueues ||
        nqueues > NVME_MAX_IO_QUEUES)
        return -EINVAL;
    rc = dmahal_device_bar_size(dev, 0, &bar0);
    if (rc || !bar0) {
        say("%s has no BAR0", dmahal_device_name(dev));
        return -ENODEV;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->dev = dev;
    n->nq = nqueues;
    n->spin = flags & NVME_OPEN_SPIN;
    rc = check_cap(n, bar0);
    if (rc)
        goto err_free;
    rc = dmahal_adapter_get(dev, &desc, &n->adapter);
    if (rc)
        goto err_free;
    rc = dmahal_common_alloc(n->adapter, NVME_PAGE_SIZE, 0, &n->ident);
    if (rc)
        goto err_release;
    /* The first command's PRP list page now; the others' when they first need one. */
    rc = dmahal_common_alloc(n->adapter, NVME_PAGE_SIZE, 0, &n->io[0].slots[0].list);
    if (rc)
        goto err_release;
    rc = enable(n);
    if (rc)
        goto err_disable;
    rc = identify_all(n, &n->info);
    if (!rc)
        rc = ask_queues(n);
    if (rc)
        goto err_disable;
    if (flags & NVME_OPEN_IRQ) {
        rc = irq_setup(n);
        if (rc)
            goto err_disable;
    }
    rc = create_io_queues(n);
    if (rc)
        goto err_disable;
    *out = n;
    return 0;

err_disable:
    nvme_close(n);
    return rc;
err_release:
    release(n);
err_free:
    free(n);
    return rc;
}

void nvme_close(struct nvme *n)
{
    if (!n)
        return;
    for (unsigned i = 0; i < n->nq && !atomic_load(&n->broken); i++) {
        struct sqe cmd;

        if (n->io[i].sq_created) {
            cmd = (struct sqe){.cdw0 = ADM_DELETE_SQ, .cdw10 = i + 1};
            admin(n, &cmd);
        }
        if (n->io[i].cq_created) {
            cmd = (struct sqe){.cdw0 = ADM_DELETE_CQ, .cdw10 = i + 1};
            admin(n, &cmd);
        }
    }
    /* Disabled, the controller forgets every queue and stops using the driver's memory:
     * only then may that memory go back. If it does not acknowledge, the memory stays with
     * the adapter (until the device closes) rather than being handed out again at once. */
    dmahal_mmio_write32(n->dev, 0, REG_CC, 0);
    if (n->irq)
        dmahal_irq_disable(n->dev);
    /* Caller memory of commands still in flight goes back to the caller whatever the
     * controller does: unmapped, a late access faults (behind an IOMMU) instead of landing. */
    for (unsigned i = 0; i < n->nq; i++)
        abandon_maps(&n->io[i], n);
    if (wait_ready(n, false) == 0)
        release(n);
    free(n);
}

int nvme_identify(struct nvme *n, struct nvme_info *out)
{
    struct nvme_info info;
    int rc;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!n)
        return -EINVAL;
    info = n->info;
    rc = identify_all(n, &info);
    if (rc)
        return rc;
    if (info.nsze != n->info.nsze || info.lba_size != n->info.lba_size) {
        say("namespace %u changed: %" PRIu64 " blocks of %" PRIu32 " bytes, was %" PRIu64
            " of %" PRIu32,
            NSID, info.nsze, info.lba_size, n->info.nsze, n->info.lba_size);
        return -EIO;
    }
    *out = info;
    return 0;
}

struct dmahal_adapter *nvme_adapter(const struct nvme *n)
{
    return n ? n->adapter : NULL;
}

/*
 * Describes the transfer in @sgl with PRP1 and PRP2, writing the PRP list page if it needs
 * one. The list keeps the PRP rule (the adapter's virtual boundary): only its first element
 * starts inside a page, every element but the last ends on one, so the pages of the transfer
 * are the first element's pages and then each later element's, page by page.
 */
static int build_prps(struct nvme *n, const struct dmahal_sgl *sgl, struct dmahal_buf *list_buf,
                      struct sqe *cmd)
{
    uint64_t page = NVME_PAGE_SIZE, *list;
    size_t npages = 0, at = 0;

    if (sgl->seg[0].la & 3) { /* PRP entries carry dword-aligned offsets only */
        say("data at %#" PRIx64 " is not dword-aligned", sgl->seg[0].la);
        return -EINVAL;
    }
    /* First the rule and the count of pages after PRP1's, then the entries. */
    for (unsigned i = 0; i < sgl->nseg; i++) {
        uint64_t la = sgl->seg[i].la, end = la + sgl->seg[i].len;
        /* The first page is PRP1's; later elements start on a page. */
        uint64_t p = i ? la : (la & ~(page - 1)) + page;

        if ((i && (la & (page - 1))) || (i + 1 < sgl->nseg && (end & (page - 1)))) {
            say("element %u of %u (%#" PRIx64 ", %zu bytes) breaks the PRP rule", i, sgl->nseg, la,
                sgl->seg[i].len);
            return -EINVAL;
        }
        if (end > p)
            npages += (size_t)((end - p + page - 1) / page);
    }
    if (npages > PRP_LIST_ENTRIES) {
        say("%u elements from %#" PRIx64 " need more than one PRP list", sgl->nseg, sgl->seg[0].la);
        return -E2BIG;
    }
    cmd->prp1 = sgl->seg[0].la;
    if (npages <= 1) {
        /* The second and last page goes in PRP2 itself. */
        cmd->prp2 =
            npages ? (sgl->nseg > 1 ? sgl->seg[1].la : (sgl->seg[0].la & ~(page - 1)) + page) : 0;
        return 0;
    }
    if (!list_buf->va) {
        int rc = dmahal_common_alloc(n->adapter, NVME_PAGE_SIZE, 0, list_buf);

        if (rc)
            return rc;
    }
    list = list_buf->va;
    for (unsigned i = 0; i < sgl->nseg; i++) {
        uint64_t la = sgl->seg[i].la, end = la + sgl->seg[i].len;

        for (uint64_t p = i ? la : (la & ~(page - 1)) + page; p < end; p += page)
            list[at++] = p;
    }
    cmd->prp2 = list_buf->la;
    return 0;
}

/* Checks what nvme_io() and nvme_io_mem() share; sets *len to the transfer's bytes. */
static int io_check(struct nvme *n, enum nvme_opcode op, uint32_t nblocks, size_t *len)
{
    if ((op != NVME_CMD_READ && op != NVME_CMD_WRITE) || !nblocks)
        return -EINVAL;
    if (nblocks > n->info.max_transfer / n->info.lba_size) {
        say("%" PRIu32 " blocks of %" PRIu32 " bytes exceed the %zu-byte transfer limit", nblocks,
            n->info.lba_size, n->info.max_transfer);
        return -E2BIG;
    }
    *len = (size_t)nblocks * n->info.lba_size;
    return 0;
}

/* The oldest command in flight on @io, named when none completes. */
static uint16_t oldest_cid(const struct ioq *io)
{
    uint16_t cid = 0;
    uint64_t seq = UINT64_MAX;

    for (uint16_t i = 0; i < IO_DEPTH_MAX; i++) {
        if (io->slots[i].busy && io->slots[i].seq < seq) {
            seq = io->slots[i].seq;
            cid = i;
        }
    }
    return cid;
}

/* After a timeout the controller may still be at the commands in flight on @io: their caller
 * memory is unmapped now, so that a late access faults in the IOMMU instead of landing in
 * memory the caller has reused. The slots stay busy: the driver is broken. */
static void abandon_maps(struct ioq *io, struct nvme *n)
{
    for (unsigned i = 0; i < IO_DEPTH_MAX; i++) {
        io->slots[i].abandoned = io->slots[i].busy;
        if (io->slots[i].sgl) {
            dmahal_unmap(n->adapter, io->slots[i].sgl);
            io->slots[i].sgl = NULL;
        }
    }
}

/* Queues the command for the data @sgl describes in a free slot of @io; @mapped, if not NULL,
 * is the caller memory's mapping, unmapped at completion. */
static int io_start(struct nvme *n, struct ioq *io, enum nvme_opcode op, uint64_t lba,
                    uint32_t nblocks, const struct dmahal_sgl *sgl, struct dmahal_sgl *mapped,
                    uint64_t tag)
{
    struct sqe cmd = {.cdw0 = op, .nsid = NSID};
    struct slot *s = NULL;
    uint16_t cid = 0;
    int rc;

    if (atomic_load(&n->broken))
        return refuse_broken(&io->q, (uint8_t)op);
    if (io->inflight >= nvme_queue_depth(n))
        return -EBUSY;
    while (io->slots[cid].busy)
        cid++;
    s = &io->slots[cid];
    rc = build_prps(n, sgl, &s->list, &cmd);
    if (rc)
        return rc;
    cmd.cdw10 = (uint32_t)lba;
    cmd.cdw11 = (uint32_t)(lba >> 32);
    cmd.cdw12 = nblocks - 1; /* 0's based */
    *s = (struct slot){true, false, (uint8_t)op, tag, io->seq++, mapped, s->list};
    io->inflight++;
    sq_write(&io->q, &cmd, cid);
    return 0;
}

/* Ends the command a completion on @io names; fills @d. -EIO when it names none in flight. */
static int io_end(struct nvme *n, struct ioq *io, const struct cqe *e, struct nvme_done *d)
{
    uint16_t cid = (uint16_t)(e->dw3 & 0xffff), st = (uint16_t)(e->dw3 >> 17);
    struct slot *s = cid < IO_DEPTH_MAX ? &io->slots[cid] : NULL;

    if ((e->dw2 >> 16) != io->q.qid || !s || !s->busy) {
        atomic_store(&n->broken, true);
        say("completion for command %u of queue %u, which is not in flight on queue %u", cid,
            e->dw2 >> 16, io->q.qid);
        return -EIO;
    }
    if (s->sgl)
        dmahal_unmap(n->adapter, s->sgl);
    s->sgl = NULL;
    s->busy = false;
    io->inflight--;
    *d = (struct nvme_done){.tag = s->tag, .status = st, .rc = status_rc(&io->q, s->op, st)};
    if (s->abandoned && !d->rc) {
        say("%s (command %u) completed after the driver gave it up: its data is lost",
            opcode_name(&io->q, s->op), cid);
        d->rc = -EIO;
    }
    s->abandoned = false;
    return 0;
}

/* The queue pair @qi of @n, NULL when there is none. */
static struct ioq *ioq_of(const struct nvme *n, unsigned qi)
{
    return n && qi < n->nq ? (struct ioq *)&n->io[qi] : NULL;
}

unsigned nvme_queues(const struct nvme *n)
{
    return n ? n->nq : 0;
}

unsigned nvme_queue_depth(const struct nvme *n)
{
    return n ? n->info.io_depth - 1 : 0;
}

unsigned nvme_inflight_on(const struct nvme *n, unsigned qi)
{
    const struct ioq *io = ioq_of(n, qi);

    return io ? io->inflight : 0;
}

unsigned nvme_inflight(const struct nvme *n)
{
    return nvme_inflight_on(n, 0);
}

void nvme_ring_on(struct nvme *n, unsigned qi)
{
    struct ioq *io = ioq_of(n, qi);

    if (io && io->q.unrung)
        ring_sq(n, &io->q);
}

void nvme_ring(struct nvme *n)
{
    nvme_ring_on(n, 0);
}

int nvme_reap_on(struct nvme *n, unsigned qi, unsigned min, struct nvme_done *done, unsigned max)
{
    struct ioq *io = ioq_of(n, qi);
    struct queue *q = io ? &io->q : NULL;
    uint64_t start = 0;
    unsigned got = 0;
    int rc = 0;

    if (!io || !done || !max || min > max || min > io->inflight)
        return -EINVAL;
    if (q->unrung)
        ring_sq(n, q);
    while (got < max && io->inflight) {
        struct cqe e;

        if (!head_ready(q)) {
            if (got >= min)
                break;
            if (atomic_load(&n->broken)) { /* no more waiting on a controller that stopped */
                say("waiting refused: an earlier command timed out, the controller needs a reset");
                rc = -EIO;
                break;
            }
            if (!start)
                start = now_ns();
            rc = wait_head(n, q, io, oldest_cid(io), start);
            if (rc)
                break;
        }
        take_head(q, &e);
        rc = io_end(n, io, &e, &done[got]);
        if (rc)
            break;
        got++;
    }
    if (atomic_load(&n->broken))
        abandon_maps(io, n);
    if (got)
        ring_cq(n, q);
    return got ? (int)got : rc;
}

int nvme_reap(struct nvme *n, unsigned min, struct nvme_done *done, unsigned max)
{
    return nvme_reap_on(n, 0, min, done, max);
}

/* The one-at-a-time calls (on the first queue) wait for nothing else: -EBUSY while queued
 * commands are in flight there, checked before any memory is mapped. */
static int refuse_queued(const struct nvme *n, enum nvme_opcode op)
{
    const struct ioq *io = &n->io[0];

    /* After a timeout its command stays in flight: the driver is broken, which says more. */
    if (atomic_load(&n->broken))
        return refuse_broken(&io->q, (uint8_t)op);
    if (!io->inflight)
        return 0;
    say("%s refused: %u command(s) of nvme_submit() in flight", opcode_name(&io->q, (uint8_t)op),
        io->inflight);
    return -EBUSY;
}

/* Runs one command alone on the first queue: queued, then waited for. @mapped (if not NULL)
 * is unmapped here when the command cannot be queued, else when it ends. */
static int io_run(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
                  const struct dmahal_sgl *sgl, struct dmahal_sgl *mapped, uint16_t *status)
{
    struct nvme_done d;
    int rc;

    rc = io_start(n, &n->io[0], op, lba, nblocks, sgl, mapped, 0);
    if (rc) {
        if (mapped)
            dmahal_unmap(n->adapter, mapped);
        return rc;
    }
    rc = nvme_reap(n, 1, &d, 1);
    if (rc < 0)
        return rc;
    if (status)
        *status = d.status;
    return d.rc;
}

/* A common buffer is one run for the device: a list of one element. */
union one_seg {
    struct dmahal_sgl sgl;
    unsigned char room[sizeof(struct dmahal_sgl) + sizeof(struct dmahal_seg)];
};

/* Checks a common-buffer transfer and describes it in @one. */
static int buf_sgl(struct nvme *n, enum nvme_opcode op, uint32_t nblocks,
                   const struct dmahal_buf *buf, size_t off, union one_seg *one)
{
    size_t len;
    int rc;

    if (!n || !buf || !buf->va)
        return -EINVAL;
    rc = io_check(n, op, nblocks, &len);
    if (rc)
        return rc;
    if (off > buf->len || len > buf->len - off)
        return -EINVAL;
    one->sgl.nseg = 1;
    one->sgl.seg[0] = (struct dmahal_seg){buf->la + off, len};
    return 0;
}

/* Checks a transfer of caller memory and maps it. The adapter's virtual boundary is the PRP
 * rule, so the list is one the PRPs can describe: pages the device reaches in place
 * (scattered without an IOMMU, one run behind one), or, where the memory breaks the rule or
 * is not dword-aligned, a bounce buffer. */
static int mem_sgl(struct nvme *n, enum nvme_opcode op, uint32_t nblocks, void *data,
                   struct dmahal_sgl **sgl)
{
    size_t len;
    int rc;

    if (!n || !data)
        return -EINVAL;
    rc = io_check(n, op, nblocks, &len);
    if (rc)
        return rc;
    return dmahal_map(n->adapter, &(struct iovec){data, len}, 1,
                      op == NVME_CMD_WRITE ? DMAHAL_TO_DEVICE : DMAHAL_FROM_DEVICE, 0, sgl);
}

int nvme_io(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
            const struct dmahal_buf *buf, size_t off, uint16_t *status)
{
    union one_seg one;
    int rc;

    if (status)
        *status = 0;
    rc = buf_sgl(n, op, nblocks, buf, off, &one);
    if (!rc)
        rc = refuse_queued(n, op);
    return rc ? rc : io_run(n, op, lba, nblocks, &one.sgl, NULL, status);
}

int nvme_io_mem(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks, void *data,
                uint16_t *status)
{
    struct dmahal_sgl *sgl;
    int rc;

    if (status)
        *status = 0;
    if (n && (rc = refuse_queued(n, op)) != 0)
        return rc;
    rc = mem_sgl(n, op, nblocks, data, &sgl);
    if (rc)
        return rc;
    /* Unmapped at completion, at once after a timeout (abandon_maps), or by io_run when the
     * command is not queued. */
    return io_run(n, op, lba, nblocks, sgl, sgl, status);
}

int nvme_submit_on(struct nvme *n, unsigned qi, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
                   const struct dmahal_buf *buf, size_t off, uint64_t tag)
{
    struct ioq *io = ioq_of(n, qi);
    union one_seg one;
    int rc = io ? buf_sgl(n, op, nblocks, buf, off, &one) : -EINVAL;

    return rc ? rc : io_start(n, io, op, lba, nblocks, &one.sgl, NULL, tag);
}

int nvme_submit(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
                const struct dmahal_buf *buf, size_t off, uint64_t tag)
{
    return nvme_submit_on(n, 0, op, lba, nblocks, buf, off, tag);
}

int nvme_submit_mem_on(struct nvme *n, unsigned qi, enum nvme_opcode op, uint64_t lba,
                       uint32_t nblocks, void *data, uint64_t tag)
{
    struct ioq *io = ioq_of(n, qi);
    struct dmahal_sgl *sgl;
    int rc = io ? mem_sgl(n, op, nblocks, data, &sgl) : -EINVAL;

    if (rc)
        return rc;
    rc = io_start(n, io, op, lba, nblocks, sgl, sgl, tag);
    if (rc)
        dmahal_unmap(n->adapter, sgl);
    return rc;
}

int nvme_submit_mem(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks, void *data,
                    uint64_t tag)
{
    return nvme_submit_mem_on(n, 0, op, lba, nblocks, data, tag);
}

const char *nvme_status_name(uint16_t status)
{
    unsigned sct = NVME_STATUS_SCT(status), sc = NVME_STATUS_SC(status);

    if (sct == 0) {
        switch (sc) {
        case 0x00:
            return "success";
        case 0x01:
            return "invalid command opcode";
        case 0x02:
            return "invalid field in command";
        case 0x03:
            return "command ID conflict";
        case 0x04:
            return "data transfer error";
        case 0x06:
            return "internal error";
        case 0x07:
            return "command abort requested";
        case 0x08:
            return "command aborted: SQ deletion";
        case 0x0b:
            return "invalid namespace or format";
        case 0x0c:
            return "command sequence error";
        case 0x13:
            return "PRP offset invalid";
        case NVME_SC_LBA_RANGE:
            return "LBA out of range";
        case 0x81:
            return "capacity exceeded";
        case 0x82:
            return "namespace not ready";
        default:
            return "generic command status";
        }
    }
    if (sct == 1) {
        switch (sc) {
        case 0x00:
            return "completion queue invalid";
        case 0x01:
            return "invalid queue identifier";
        case 0x02:
            return "invalid queue size";
        case 0x08:
            return "invalid interrupt vector";
        case 0x0c:
            return "invalid queue deletion";
        default:
            return "command specific status";
        }
    }
    if (sct == 2) {
        switch (sc) {
        case 0x80:
            return "write fault";
        case 0x81:
            return "unrecovered read error";
        case 0x86:
            return "access denied";
        default:
            return "media or data integrity error";
        }
    }
    return "vendor or path related status";
}
