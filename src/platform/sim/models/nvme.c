/* SPDX-License-Identifier: MIT */
/*
 * nvme.c - a model of an NVMe controller (NVM Express Base Specification 1.4, NVM command
 * set) as QEMU 7.2's "nvme" device implements it, so that one driver runs unchanged on the
 * simulated platform and on the QEMU-emulated controller through VFIO. docs/devices/nvme.md
 * is this model's spec: the registers and commands it covers and where it departs from QEMU.
 *
 * The controller masters the bus only through dmahal_dev_read/dmahal_dev_write: submission
 * queue entries, PRP lists, data and completion queue entries all pass the platform's
 * translation (and the IOMMU, and the verifier). Commands run when their submission queue's
 * tail doorbell is written: run_sq() fetches, executes and completes every entry the queue
 * holds, for as long as its completion queue has room, and is the one place queue work is
 * done, so that it can equally be called later from a deferred callback.
 *
 * Namespaces are backed by sparse host memory (MAP_NORESERVE: a 1 GiB namespace costs what
 * has been written) or by a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "platform/sim/models.h"

/* ---- the register file (BAR0) ------------------------------------------------------------ */

#define REG_CAP    0x00 /* 64-bit, RO */
#define REG_VS     0x08
#define REG_INTMS  0x0c
#define REG_INTMC  0x10
#define REG_CC     0x14
#define REG_CSTS   0x1c
#define REG_NSSR   0x20
#define REG_AQA    0x24
#define REG_ASQ    0x28 /* 64-bit */
#define REG_ACQ    0x30 /* 64-bit */
#define REGS_SIZE  0x1000
#define DB_BASE    0x1000
#define NVME_VS    0x00010400u /* 1.4.0 */
#define NVME_MQES  0x7ffu      /* QEMU's: 2048 entries per queue */
#define NVME_TO    0xfu        /* CAP.TO: 7.5 s */
#define NVME_MPSMX 4u          /* CAP.MPSMAX: pages up to 64 KiB */

#define CAP_CQR        (UINT64_C(1) << 16)
#define CAP_TO(t)      ((uint64_t)(t) << 24)
#define CAP_DSTRD(s)   ((uint64_t)(s) << 32)
#define CAP_CSS_NVM    (UINT64_C(1) << 37)
#define CAP_MPSMAX(m)  ((uint64_t)(m) << 52)
#define CC_EN          0x1u
#define CC_CSS(cc)     (((cc) >> 4) & 0x7u)
#define CC_MPS(cc)     (((cc) >> 7) & 0xfu)
#define CC_SHN(cc)     (((cc) >> 14) & 0x3u)
#define CC_IOSQES(cc)  (((cc) >> 16) & 0xfu)
#define CC_IOCQES(cc)  (((cc) >> 20) & 0xfu)
#define CSTS_RDY       0x1u
#define CSTS_CFS       0x2u
#define CSTS_SHST_MASK 0xcu
#define CSTS_SHST_DONE 0x8u

#define SQE_SIZE 64u
#define CQE_SIZE 16u

/* MSI-X: the table and pending bits follow the doorbells in BAR0, as in QEMU. */
#define MSIX_ENTRY     16u
#define MSIX_VECTORS   65u     /* QEMU's msix_qsize: the admin queue's and 64 I/O queues' */
#define MSIX_TABLE_OFF 0x2000u /* in BAR0 */
#define MSIX_PBA_OFF   0x3000u
#define BAR0_SIZE      0x4000u
#define MSIX_VEC_CTRL  12u /* offset of Vector Control in an entry; bit 0 masks */

/* ---- status codes (the completion's status field: SC 7:0, SCT 10:8, M 13, DNR 14) ------ */

#define SC_SUCCESS         0x0000u
#define SC_INVALID_OPCODE  0x0001u
#define SC_INVALID_FIELD   0x0002u
#define SC_DATA_TRANSFER   0x0004u
#define SC_INTERNAL        0x0006u
#define SC_INVALID_NSID    0x000bu
#define SC_CMD_SEQ_ERROR   0x000cu
#define SC_INVALID_SGL_SEG 0x000du
#define SC_INVALID_NUM_SGL 0x000eu
#define SC_SGL_LEN_INVALID 0x000fu
#define SC_SGL_TYPE_BAD    0x0011u
#define SC_INVALID_PRP_OFS 0x0013u
#define SC_LBA_RANGE       0x0080u
#define SC_CQ_INVALID      0x0100u /* SCT 1: command specific */
#define SC_INVALID_QID     0x0101u
#define SC_MAX_QSIZE       0x0102u
#define SC_AER_LIMIT       0x0105u
#define SC_INVALID_VECTOR  0x0108u
#define SC_INVALID_QDEL    0x010cu
#define SC_NOT_SAVEABLE    0x010du
#define SC_NOT_CHANGEABLE  0x010eu
#define SC_WRITE_FAULT     0x0280u /* SCT 2: media and data integrity */
#define SC_UNRECOVERED     0x0281u
#define SC_COMPARE_FAILURE 0x0285u
#define SC_DNR             0x4000u
#define SC_NO_COMPLETION   0xffffu /* the command completes later (Asynchronous Event Request) */

/* Asynchronous events: result dword 0 = type | info << 8 | log page << 16. */
#define AERL           3u  /* Identify Controller AERL: four requests outstanding at most */
#define AER_MAX_QUEUED 64u /* QEMU's aer_max_queued: events beyond are dropped */
#define AER_ERROR      0u  /* type: error status, in the Error Information log */
#define AER_SMART      1u  /* type: SMART / health status, in the SMART log */
#define AER_BAD_DB_REG 0u  /* info: write to an invalid doorbell register */
#define AER_BAD_DB_VAL 1u  /* info: invalid doorbell write value */
#define AER_TEMP       1u  /* info: temperature threshold */

/* ---- commands ----------------------------------------------------------------------------- */

enum {
    ADM_DELETE_SQ = 0x00,
    ADM_CREATE_SQ = 0x01,
    ADM_GET_LOG = 0x02,
    ADM_DELETE_CQ = 0x04,
    ADM_CREATE_CQ = 0x05,
    ADM_IDENTIFY = 0x06,
    ADM_ABORT = 0x08,
    ADM_SET_FEATURES = 0x09,
    ADM_GET_FEATURES = 0x0a,
    ADM_ASYNC_EVENT = 0x0c,
};

enum {
    IO_FLUSH = 0x00,
    IO_WRITE = 0x01,
    IO_READ = 0x02,
    IO_WRITE_ZEROES = 0x08,
    IO_COMPARE = 0x05,
    IO_DSM = 0x09,
    IO_VERIFY = 0x0c,
};

enum {
    FEAT_ARBITRATION = 0x01,
    FEAT_POWER_MGMT = 0x02,
    FEAT_TEMP_THRESH = 0x04,
    FEAT_ERROR_RECOVERY = 0x05,
    FEAT_WRITE_CACHE = 0x06,
    FEAT_NUM_QUEUES = 0x07,
    FEAT_IRQ_COALESCING = 0x08,
    FEAT_IRQ_VECTOR_CONF = 0x09,
    FEAT_WRITE_ATOMICITY = 0x0a,
    FEAT_ASYNC_EVENT_CONF = 0x0b,
    FEAT_TIMESTAMP = 0x0e,
};

#define FEAT_CAP_SAVE   0x1u
#define FEAT_CAP_NS     0x2u
#define FEAT_CAP_CHANGE 0x4u

#define NSID_BROADCAST  0xffffffffu
#define MAX_NAMESPACES  256u   /* what QEMU reports in NN, whatever is attached */
#define TEMPERATURE     0x143u /* 323 K */
#define TEMP_WARNING    0x157u
#define TEMP_CRITICAL   0x175u
#define PAGE_MIN        4096u /* CAP.MPSMIN = 0 */
#define MAX_QUEUE_PAIRS 65535u

/* A submission queue entry, as the controller reads it (little-endian host). */
struct sqe {
    uint8_t opcode;
    uint8_t flags; /* FUSE 1:0, PSDT 7:6 */
    uint16_t cid;
    uint32_t nsid;
    uint32_t cdw2, cdw3;
    uint64_t mptr;
    uint64_t prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct cqe {
    uint32_t result;
    uint32_t rsvd;
    uint16_t sq_head, sq_id;
    uint16_t cid;
    uint16_t status; /* phase in bit 0 */
};

_Static_assert(sizeof(struct sqe) == SQE_SIZE, "submission queue entry layout");
_Static_assert(sizeof(struct cqe) == CQE_SIZE, "completion queue entry layout");

/* ---- state --------------------------------------------------------------------------------- */

struct nvme_sq {
    bool live;
    bool due; /* with a latency: its run is scheduled */
    uint64_t base;
    uint16_t size, head, tail, cqid;
};

struct nvme_cq {
    bool live, ien;
    uint64_t base;
    uint16_t size, head, tail, vector;
    uint8_t phase;
    unsigned nsq; /* submission queues that complete here */
};

struct nvme_ns {
    uint64_t nsze;      /* logical blocks */
    unsigned char *mem; /* sparse host memory, or NULL when file-backed */
    uint64_t file_off;  /* where the namespace starts in the backing file */
    unsigned char uuid[16];
};

/* One segment of a command's data, in the device's address space; a bit bucket's bytes are
 * read from the medium and dropped. */
struct seg {
    uint64_t la;
    size_t len;
    bool bucket;
};

/* An SGL descriptor: type in bits 7:4 of the last byte. */
struct sgld {
    uint64_t addr;
    uint32_t len;
    uint8_t rsvd[3];
    uint8_t type;
};

_Static_assert(sizeof(struct sgld) == 16, "SGL descriptor layout");

enum { SGL_DATA = 0x0, SGL_BUCKET = 0x1, SGL_SEGMENT = 0x2, SGL_LAST = 0x3 };

#define MAX_SGL_SEGS 1024u /* QEMU's limit on one command's mappings (IOV_MAX) */

struct ctrl {
    /* Register accesses may come from several driver threads; QEMU serialises them. */
    pthread_mutex_t lock;

    /* configuration, from the device name's arguments */
    uint64_t ns_bytes;
    unsigned lbads, nns, qpairs, nvec, dstrd, mdts;
    uint64_t latency_ns; /* from a tail doorbell to the queue's run; 0: inside the write */
    char serial[21];
    int fd; /* the backing file, -1 for memory */

    /* BAR0 layout */
    uint64_t msix_off, pba_off, bar0_size;
    size_t db_stride;

    /* registers, at their offsets, little-endian */
    unsigned char regs[REGS_SIZE];
    uint32_t *msix;                                  /* nvec entries of four dwords */
    uint64_t msix_pending[(MSIX_VECTORS + 63) / 64]; /* the PBA */

    /* the enabled controller */
    unsigned page_bits;
    size_t page_size;
    struct nvme_sq *sq; /* qpairs + 1, [0] the admin queue */
    struct nvme_cq *cq;
    bool qs_created;

    /* asynchronous events: requests the host left outstanding, events not yet reported */
    uint16_t aer_cid[AERL + 1];
    unsigned aer_outstanding, aer_queued;
    uint32_t aer_queue[AER_MAX_QUEUED];
    unsigned aer_mask;   /* event types reported and not yet cleared by reading their log */
    uint32_t irq_status; /* INTx: vectors with completions the host has not consumed */
    bool line;

    /* features (current values) */
    uint32_t feat_temp_over, feat_err_rec, feat_vwc, feat_coalescing, feat_async;
    uint64_t host_ts, host_ts_at; /* the Timestamp the host set (ms), and when (ms) */

    /* SMART counters */
    uint64_t bytes_read, bytes_written, reads, writes;

    struct nvme_ns *ns;
    size_t max_xfer;  /* MDTS in bytes */
    struct seg *segs; /* nsegs_max segments: one command's data */
    unsigned nsegs_max;
    unsigned char *buf; /* max_xfer bytes: admin data, file-backed I/O */
    unsigned char id_ctrl[4096];
};

/* Little-endian register and structure access. The model assumes a little-endian host, as
 * the simulated platform does. */
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static void put16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

#define REG32(c, off) get32((c)->regs + (off))

/* Copies a string into a space-padded ASCII field. */
static void padcpy(unsigned char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);

    memset(dst, ' ', len);
    memcpy(dst, src, n < len ? n : len);
}

/* ---- arguments ---------------------------------------------------------------------------- */

static int parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long x;

    if (*v < '0' || *v > '9')
        return -EINVAL;
    errno = 0;
    x = strtoull(v, &end, 0);
    if (errno || *end || x < min || x > max)
        return -EINVAL;
    *out = x;
    return 0;
}

static int parse_one(struct ctrl *c, const char *key, const char *val, char *path, size_t plen)
{
    uint64_t v;
    int rc = 0;

    if (!strcmp(key, "size")) {
        rc = dmahal__parse_size(val, &c->ns_bytes);
    } else if (!strcmp(key, "lba")) {
        rc = dmahal__parse_size(val, &v);
        if (!rc && (v < 512 || v > 65536 || (v & (v - 1))))
            rc = -EINVAL;
        if (!rc)
            c->lbads = (unsigned)__builtin_ctzll(v);
    } else if (!strcmp(key, "namespaces")) {
        rc = parse_uint(val, 1, MAX_NAMESPACES, &v);
        c->nns = (unsigned)v;
    } else if (!strcmp(key, "queues")) {
        rc = parse_uint(val, 1, MAX_QUEUE_PAIRS, &v);
        c->qpairs = (unsigned)v;
    } else if (!strcmp(key, "mdts")) {
        rc = parse_uint(val, 1, 10, &v);
        c->mdts = (unsigned)v;
    } else if (!strcmp(key, "latency")) {
        rc = parse_uint(val, 0, UINT64_C(1) << 40, &c->latency_ns);
    } else if (!strcmp(key, "dstrd")) {
        rc = parse_uint(val, 0, 8, &v);
        c->dstrd = (unsigned)v;
    } else if (!strcmp(key, "serial")) {
        if (!*val || strlen(val) > 20)
            return -EINVAL;
        strcpy(c->serial, val);
    } else if (!strcmp(key, "file")) {
        if (!*val || strlen(val) >= plen)
            return -EINVAL;
        strcpy(path, val);
    } else {
        rc = -EINVAL;
    }
    return rc ? -EINVAL : 0;
}

/* Parses "key=value,..." (size, lba, namespaces, queues, mdts, dstrd, serial, file). */
static int parse_args(struct ctrl *c, const char *args, char *path, size_t plen)
{
    char *copy, *save = NULL;
    int rc = 0;

    if (!*args)
        return 0;
    copy = strdup(args);
    if (!copy)
        return -ENOMEM;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');

        if (!eq) {
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        rc = parse_one(c, tok, eq + 1, path, plen);
    }
    free(copy);
    if (!rc && (c->ns_bytes >> c->lbads) == 0)
        rc = -EINVAL; /* a namespace holds at least one block */
    return rc;
}

/* ---- set-up --------------------------------------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* BAR0 as QEMU lays it out with its default 64 queue pairs and 65 vectors: registers,
 * doorbells, the MSI-X table at 8 KiB and the pending bits at 12 KiB, 16 KiB in all. The
 * table's place is part of the model's PCI identity (its MSI-X capability), so the doorbells
 * must end before it: -EINVAL for more queue pairs than fit at the stride. */
static int layout_bar0(struct ctrl *c)
{
    uint64_t end;

    c->db_stride = (size_t)4 << c->dstrd;
    end = DB_BASE + 2 * (uint64_t)(c->qpairs + 1) * c->db_stride;
    if (end > MSIX_TABLE_OFF)
        return -EINVAL;
    c->msix_off = MSIX_TABLE_OFF;
    c->pba_off = MSIX_PBA_OFF;
    c->bar0_size = BAR0_SIZE;
    return 0;
}

static void build_id_ctrl(struct ctrl *c)
{
    unsigned char *id = c->id_ctrl;
    char nqn[64];

    put16(id + 0, 0x1b36); /* VID: Red Hat, as QEMU's PCI vendor ID */
    put16(id + 2, 0x1af4); /* SSVID */
    padcpy(id + 4, 20, c->serial);
    padcpy(id + 24, 40, "QEMU NVMe Ctrl");
    padcpy(id + 64, 8, "7.2.0");
    id[72] = 6;    /* RAB */
    id[73] = 0x00; /* IEEE OUI 52:54:00, least significant byte first */
    id[74] = 0x54;
    id[75] = 0x52;
    id[77] = (unsigned char)c->mdts;
    put16(id + 78, 0);       /* CNTLID */
    put32(id + 80, NVME_VS); /* VER */
    id[111] = 1;             /* CNTRLTYPE: I/O controller */
    id[258] = 3;             /* ACL */
    id[259] = 3;             /* AERL */
    id[260] = (1 << 1) | 1;  /* FRMW: one slot, slot 1 read-only */
    id[261] = 0x1 | 0x4;     /* LPA: SMART per namespace, extended Get Log Page */
    put16(id + 266, TEMP_WARNING);
    put16(id + 268, TEMP_CRITICAL);
    id[512] = (6 << 4) | 6; /* SQES: 64 bytes */
    id[513] = (4 << 4) | 4; /* CQES: 16 bytes */
    put32(id + 516, MAX_NAMESPACES);
    /* ONCS: Compare, DSM, Write Zeroes, Save/Select, Verify */
    put16(id + 520, 0x1 | 0x4 | 0x8 | 0x10 | 0x40 | 0x80); /* ... and Timestamp */
    put32(id + 536, 0x1 | 1u << 16); /* SGLS: SGLs without alignment rules, bit buckets */
    id[525] = 0x1 | 0x6;             /* VWC present; Flush takes the broadcast NSID */
    snprintf(nqn, sizeof(nqn), "nqn.2019-08.org.qemu:%s", c->serial);
    memcpy(id + 768, nqn, strlen(nqn));
    put16(id + 2048, 0x9c4); /* power state 0: 25 W */
    put32(id + 2048 + 4, 0x10);
    put32(id + 2048 + 8, 0x4);
}

static int ns_backing(struct ctrl *c, const char *path)
{
    uint64_t total = c->ns_bytes * c->nns;

    if (*path) {
        struct stat st;

        c->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (c->fd < 0)
            return -errno;
        if (fstat(c->fd, &st) || ((uint64_t)st.st_size < total && ftruncate(c->fd, (off_t)total)))
            return -errno;
    }
    for (unsigned i = 0; i < c->nns; i++) {
        struct nvme_ns *ns = &c->ns[i];

        ns->nsze = c->ns_bytes >> c->lbads;
        ns->file_off = (uint64_t)i * c->ns_bytes;
        /* A UUID of its own per namespace and serial, stable across runs (version 4 bits). */
        for (size_t k = 0; k < sizeof(ns->uuid); k++)
            ns->uuid[k] = (unsigned char)(c->serial[k % strlen(c->serial)] * 31 + i * 7 + k);
        ns->uuid[6] = (unsigned char)((ns->uuid[6] & 0x0f) | 0x40);
        ns->uuid[8] = (unsigned char)((ns->uuid[8] & 0x3f) | 0x80);
        if (c->fd >= 0)
            continue;
        ns->mem = mmap(NULL, c->ns_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (ns->mem == MAP_FAILED) {
            ns->mem = NULL;
            return -ENOMEM;
        }
    }
    return 0;
}

static void nvme_fini(struct dmahal_device *d, void *state)
{
    struct ctrl *c = state;

    (void)d;
    for (unsigned i = 0; c->ns && i < c->nns; i++)
        if (c->ns[i].mem)
            munmap(c->ns[i].mem, c->ns_bytes);
    if (c->fd >= 0)
        close(c->fd);
    free(c->ns);
    free(c->sq);
    free(c->cq);
    free(c->msix);
    free(c->segs);
    free(c->buf);
    pthread_mutex_destroy(&c->lock);
}

static int nvme_init(struct dmahal_device *d, void *state, const char *args)
{
    struct ctrl *c = state;
    char path[4096] = "";
    int rc;

    c->fd = -1;
    c->ns_bytes = UINT64_C(1) << 30;
    c->lbads = 9;
    c->nns = 1;
    c->qpairs = 64;
    c->nvec = MSIX_VECTORS;
    c->mdts = 7;
    strcpy(c->serial, "dmahal-nvme");
    rc = -pthread_mutex_init(&c->lock, NULL);
    if (rc)
        return rc;
    rc = parse_args(c, args, path, sizeof(path));
    if (rc)
        goto err;
    c->ns_bytes &= ~((UINT64_C(1) << c->lbads) - 1);
    rc = layout_bar0(c);
    if (rc)
        goto err;
    c->max_xfer = (size_t)PAGE_MIN << c->mdts;
    c->ns = calloc(c->nns, sizeof(*c->ns));
    c->sq = calloc(c->qpairs + 1, sizeof(*c->sq));
    c->cq = calloc(c->qpairs + 1, sizeof(*c->cq));
    c->msix = calloc(c->nvec, MSIX_ENTRY);
    /* Room for the pages of the largest transfer through PRPs, and for QEMU's limit on SGL
     * descriptors. */
    c->nsegs_max = (unsigned)(c->max_xfer / PAGE_MIN + 2);
    if (c->nsegs_max < MAX_SGL_SEGS)
        c->nsegs_max = MAX_SGL_SEGS;
    c->segs = calloc(c->nsegs_max, sizeof(*c->segs));
    c->buf = malloc(c->max_xfer);
    rc = -ENOMEM;
    if (!c->ns || !c->sq || !c->cq || !c->msix || !c->segs || !c->buf)
        goto err;
    rc = ns_backing(c, path);
    if (rc)
        goto err;
    for (unsigned v = 0; v < c->nvec; v++)
        c->msix[v * 4 + MSIX_VEC_CTRL / 4] = 1; /* masked until the host unmasks it */
    put64(c->regs + REG_CAP, NVME_MQES | CAP_CQR | CAP_TO(NVME_TO) | CAP_DSTRD(c->dstrd) |
                                 CAP_CSS_NVM | CAP_MPSMAX(NVME_MPSMX));
    put32(c->regs + REG_VS, NVME_VS);
    build_id_ctrl(c);
    c->feat_temp_over = TEMP_WARNING;
    c->feat_vwc = 1;
    dmahal__model_set_bar_size(d, 0, c->bar0_size);
    return 0;

err:
    nvme_fini(d, c);
    return rc;
}

/* ---- interrupts (INTx: the line follows unmasked vectors with pending completions) ------- */

static void irq_update(struct dmahal_device *d, struct ctrl *c)
{
    bool line = (c->irq_status & ~REG32(c, REG_INTMS)) != 0;

    if (line != c->line) {
        c->line = line;
        dmahal_irq_set(d, line);
    }
}

/* After the host consumed entries of @cq: a vector stays pending while any queue on it has
 * entries the host has not consumed. */
static void irq_recheck(struct dmahal_device *d, struct ctrl *c, const struct nvme_cq *cq)
{
    if (!cq->ien || cq->vector >= 32)
        return;
    for (unsigned q = 0; q <= c->qpairs; q++) {
        const struct nvme_cq *o = &c->cq[q];

        if (o->live && o->ien && o->vector == cq->vector && o->head != o->tail)
            return;
    }
    c->irq_status &= ~(UINT32_C(1) << cq->vector);
    irq_update(d, c);
}

/* MSI-X: a message for @vector, or its pending bit while the host masks it (QEMU's
 * msix_notify). */
static void msix_notify(struct dmahal_device *d, struct ctrl *c, unsigned vector)
{
    if (vector >= c->nvec)
        return;
    if (c->msix[vector * 4 + MSIX_VEC_CTRL / 4] & 1)
        c->msix_pending[vector / 64] |= UINT64_C(1) << (vector % 64);
    else
        dmahal_irq_raise(d, vector);
}

/* ---- controller state ----------------------------------------------------------------------- */

static void fatal(struct ctrl *c)
{
    put32(c->regs + REG_CSTS, REG32(c, REG_CSTS) | CSTS_CFS);
}

static bool running(const struct ctrl *c)
{
    return (REG32(c, REG_CC) & CC_EN) && (REG32(c, REG_CSTS) & (CSTS_RDY | CSTS_CFS)) == CSTS_RDY;
}

/* CC.EN 1 -> 0: every queue goes, and the registers but the admin queue attributes reset. */
static void ctrl_reset(struct dmahal_device *d, struct ctrl *c)
{
    memset(c->sq, 0, (c->qpairs + 1) * sizeof(*c->sq));
    memset(c->cq, 0, (c->qpairs + 1) * sizeof(*c->cq));
    c->qs_created = false;
    c->aer_outstanding = c->aer_queued = c->aer_mask = 0;
    c->irq_status = 0;
    put32(c->regs + REG_CSTS, 0);
    put32(c->regs + REG_INTMS, 0);
    put32(c->regs + REG_INTMC, 0);
    put32(c->regs + REG_CC, 0);
    irq_update(d, c);
}

/* CC.EN 0 -> 1: QEMU's checks; any failure is a controller fatal status. */
static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ctrl_start(struct ctrl *c)
{
    uint32_t cc = REG32(c, REG_CC), aqa = REG32(c, REG_AQA);
    uint64_t asq = get64(c->regs + REG_ASQ), acq = get64(c->regs + REG_ACQ);
    unsigned page_bits = CC_MPS(cc) + 12;
    uint64_t page_mask = (UINT64_C(1) << page_bits) - 1;
    unsigned asqs = aqa & 0xfff, acqs = (aqa >> 16) & 0xfff;

    if (c->sq[0].live || c->cq[0].live)
        return -1;
    if ((asq & page_mask) || (acq & page_mask))
        return -1;
    if (CC_CSS(cc) != 0 || CC_MPS(cc) > NVME_MPSMX)
        return -1;
    if (CC_IOSQES(cc) != 6 || CC_IOCQES(cc) != 4)
        return -1;
    if (!asqs || !acqs)
        return -1;
    c->page_bits = page_bits;
    c->page_size = (size_t)1 << page_bits;
    c->host_ts = 0; /* QEMU starts the Timestamp at 0 on enable */
    c->host_ts_at = now_ms();
    c->cq[0] = (struct nvme_cq){
        .live = true, .ien = true, .base = acq, .size = (uint16_t)(acqs + 1), .phase = 1, .nsq = 1};
    c->sq[0] = (struct nvme_sq){.live = true, .base = asq, .size = (uint16_t)(asqs + 1)};
    return 0;
}

static void ns_sync(struct ctrl *c)
{
    if (c->fd >= 0)
        fdatasync(c->fd);
}

static void write_cc(struct dmahal_device *d, struct ctrl *c, uint32_t v)
{
    uint32_t old = REG32(c, REG_CC), csts = REG32(c, REG_CSTS);

    put32(c->regs + REG_CC, v);
    if (CC_SHN(v) && !CC_SHN(old)) {
        ns_sync(c);
        csts = (csts & ~CSTS_SHST_MASK) | CSTS_SHST_DONE;
    } else if (!CC_SHN(v) && CC_SHN(old)) {
        csts &= ~CSTS_SHST_MASK;
    }
    if ((v & CC_EN) && !(old & CC_EN)) {
        csts = ctrl_start(c) ? CSTS_CFS : CSTS_RDY;
    } else if (!(v & CC_EN) && (old & CC_EN)) {
        ctrl_reset(d, c);
        return;
    }
    put32(c->regs + REG_CSTS, csts);
}

/* ---- data transfer: PRPs --------------------------------------------------------------------- */

/* Appends a segment; false when the command has more than the controller maps. */
static bool seg_add(struct ctrl *c, unsigned *n, uint64_t la, size_t len, bool bucket)
{
    struct seg *last = *n ? &c->segs[*n - 1] : NULL;

    /* Pages that follow each other in the device's address space move in one access. */
    if (last && !bucket && !last->bucket && last->la + last->len == la) {
        last->len += len;
        return true;
    }
    if (*n == c->nsegs_max)
        return false;
    c->segs[(*n)++] = (struct seg){la, len, bucket};
    return true;
}

/*
 * Walks PRP1 and PRP2 for @len bytes (at most max_xfer) into c->segs, before any data moves.
 * The rules: PRP1 may start anywhere dword-aligned in a page; PRP2 is the second page (no
 * offset) when the rest fits in one page, else a pointer to a PRP list, qword-aligned, that
 * may start inside its page; every list entry is a page address with no offset; a list page
 * holds entries up to its end, and when more are needed its last entry points at the next
 * list page, which must be page-aligned.
 */
static uint16_t prp_map(struct dmahal_device *d, struct ctrl *c, uint64_t prp1, uint64_t prp2,
                        size_t len, unsigned *nseg)
{
    size_t ps = c->page_size, first = ps - (prp1 & (ps - 1)), need;
    uint64_t ents[512], list;
    unsigned n = 0;

    *nseg = 0;
    if (prp1 & 3)
        return SC_INVALID_PRP_OFS | SC_DNR;
    first = first < len ? first : len;
    seg_add(c, &n, prp1, first, false);
    len -= first;
    if (len && len <= ps) {
        if (prp2 & (ps - 1))
            return SC_INVALID_PRP_OFS | SC_DNR;
        seg_add(c, &n, prp2, len, false);
        len = 0;
    }
    if (len && (prp2 & 7))
        return SC_INVALID_PRP_OFS | SC_DNR;
    for (list = prp2; len;) {
        size_t in_page = (ps - (list & (ps - 1))) / 8, take;
        uint64_t next = 0;
        bool chained = false;

        need = (len + ps - 1) / ps;
        take = need <= in_page ? need : in_page;
        for (size_t done = 0; done < take;) {
            size_t k = take - done < 512 ? take - done : 512;

            if (dmahal_dev_read(d, list + done * 8, ents, k * 8))
                return SC_DATA_TRANSFER;
            for (size_t i = 0; i < k; i++, done++) {
                uint64_t e = ents[i];

                if (e & (ps - 1))
                    return SC_INVALID_PRP_OFS | SC_DNR;
                if (done == take - 1 && need > in_page) {
                    next = e; /* the last entry of a full page chains to the next list */
                    chained = true;
                    continue;
                }
                seg_add(c, &n, e, len < ps ? len : ps, false);
                len -= len < ps ? len : ps;
            }
        }
        if (chained)
            list = next;
    }
    *nseg = n;
    return SC_SUCCESS;
}

/* Moves @len bytes between @buf and the mapped segments: to host memory when @to_host. */
static uint16_t seg_xfer(struct dmahal_device *d, struct ctrl *c, unsigned nseg, void *buf,
                         bool to_host)
{
    unsigned char *p = buf;

    for (unsigned i = 0; i < nseg; i++) {
        const struct seg *s = &c->segs[i];
        int rc = s->bucket ? 0
                 : to_host ? dmahal_dev_write(d, s->la, p, s->len)
                           : dmahal_dev_read(d, s->la, p, s->len);

        if (rc)
            return SC_DATA_TRANSFER;
        p += s->len;
    }
    return SC_SUCCESS;
}

/* Maps the data blocks and bit buckets of @nd descriptors, taking from *len what they
 * describe. A bit bucket in a Write is skipped, as QEMU does. */
static uint16_t sgl_data(struct ctrl *c, const struct sgld *sd, unsigned nd, size_t *len,
                         unsigned *n, bool write)
{
    for (unsigned i = 0; i < nd; i++) {
        unsigned type = sd[i].type >> 4;
        size_t take;

        switch (type) {
        case SGL_BUCKET:
            if (write)
                continue;
            break;
        case SGL_DATA:
            break;
        case SGL_SEGMENT:
        case SGL_LAST: /* only a segment's last descriptor may point at the next */
            return SC_INVALID_NUM_SGL | SC_DNR;
        default:
            return SC_SGL_TYPE_BAD | SC_DNR;
        }
        if (!sd[i].len)
            continue;
        if (*len == 0) /* more data than the command moves */
            return SC_SGL_LEN_INVALID | SC_DNR;
        if (type == SGL_DATA && UINT64_MAX - sd[i].addr < sd[i].len)
            return SC_SGL_LEN_INVALID | SC_DNR;
        take = *len < sd[i].len ? *len : sd[i].len;
        if (!seg_add(c, n, sd[i].addr, take, type == SGL_BUCKET))
            return SC_INTERNAL | SC_DNR;
        *len -= take;
    }
    return SC_SUCCESS;
}

/*
 * Walks an SGL for @len bytes into c->segs: SGL1 (in the command's data pointer) is a data
 * block, or a (last) segment descriptor pointing at a segment of descriptors; a segment's
 * last descriptor may point at the next segment unless it is a Last Segment. Segment
 * lengths are whole descriptors; a segment that moves no data is refused (a loop).
 */
static uint16_t sgl_map(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd, size_t len,
                        unsigned *nseg, bool write)
{
    struct sgld sd, seg[256];
    unsigned n = 0;
    uint16_t st;

    *nseg = 0;
    memcpy(&sd, (const unsigned char *)cmd + 24, sizeof(sd)); /* DPTR: bytes 24..39 */
    if (sd.type >> 4 == SGL_DATA) {
        st = sgl_data(c, &sd, 1, &len, &n, write);
        goto out;
    }
    for (;;) {
        unsigned type = sd.type >> 4, nd = sd.len / 16;
        uint64_t addr = sd.addr;
        size_t prev = len;

        if ((type != SGL_SEGMENT && type != SGL_LAST) || !sd.len || (sd.len & 0xf))
            return SC_INVALID_SGL_SEG | SC_DNR;
        if (UINT64_MAX - addr < sd.len)
            return SC_SGL_LEN_INVALID | SC_DNR;
        for (; nd > 256; nd -= 256, addr += sizeof(seg)) {
            if (dmahal_dev_read(d, addr, seg, sizeof(seg)))
                return SC_DATA_TRANSFER;
            st = sgl_data(c, seg, 256, &len, &n, write);
            if (st)
                return st;
        }
        if (dmahal_dev_read(d, addr, seg, nd * sizeof(seg[0])))
            return SC_DATA_TRANSFER;
        type = seg[nd - 1].type >> 4;
        if (type != SGL_SEGMENT && type != SGL_LAST) {
            st = sgl_data(c, seg, nd, &len, &n, write);
            goto out;
        }
        if (sd.type >> 4 == SGL_LAST)
            return SC_INVALID_SGL_SEG | SC_DNR;
        sd = seg[nd - 1];
        st = sgl_data(c, seg, nd - 1, &len, &n, write);
        if (st)
            return st;
        if (len == prev)
            return SC_INVALID_SGL_SEG | SC_DNR;
    }
out:
    if (st)
        return st;
    if (len) /* the SGL describes less than the command moves */
        return SC_SGL_LEN_INVALID | SC_DNR;
    *nseg = n;
    return SC_SUCCESS;
}

/* Maps an I/O command's data pointer: PRPs (PSDT 00b) or an SGL (01b, 10b). */
static uint16_t dptr_map(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd, size_t len,
                         unsigned *nseg, bool write)
{
    switch (cmd->flags >> 6) {
    case 0:
        return prp_map(d, c, cmd->prp1, cmd->prp2, len, nseg);
    case 1:
    case 2:
        return sgl_map(d, c, cmd, len, nseg, write);
    default:
        *nseg = 0;
        return SC_INVALID_FIELD;
    }
}

/* Hands @len bytes of controller data (Identify, a log page) to the host through the command's
 * PRPs. */
static uint16_t to_host(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd,
                        const void *data, size_t len)
{
    unsigned nseg;
    uint16_t st = prp_map(d, c, cmd->prp1, cmd->prp2, len, &nseg);

    return st ? st : seg_xfer(d, c, nseg, (void *)data, true);
}

/* Asynchronous events are reported through completions (see the queues below). */
static void aer_enqueue(struct dmahal_device *d, struct ctrl *c, unsigned type, unsigned info,
                        unsigned lid);
static void aer_clear(struct dmahal_device *d, struct ctrl *c, unsigned type);
static void aer_process(struct dmahal_device *d, struct ctrl *c);

/* ---- admin commands ---------------------------------------------------------------------------
 */

static bool nsid_valid(uint32_t nsid)
{
    return nsid && (nsid == NSID_BROADCAST || nsid <= MAX_NAMESPACES);
}

static struct nvme_ns *ns_get(struct ctrl *c, uint32_t nsid)
{
    return nsid >= 1 && nsid <= c->nns ? &c->ns[nsid - 1] : NULL;
}

static uint16_t mqes(const struct ctrl *c)
{
    return (uint16_t)(get64(c->regs + REG_CAP) & 0xffff);
}

static uint16_t create_cq(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff, qsize = cmd->cdw10 >> 16;
    uint16_t vector = cmd->cdw11 >> 16;
    bool pc = cmd->cdw11 & 1, ien = cmd->cdw11 & 2;

    if (!qid || qid > c->qpairs || c->cq[qid].live)
        return SC_INVALID_QID | SC_DNR;
    if (!qsize || qsize > mqes(c))
        return SC_MAX_QSIZE | SC_DNR;
    if (cmd->prp1 & (c->page_size - 1))
        return SC_INVALID_PRP_OFS | SC_DNR;
    /* Without MSI-X only vector 0 (INTx) exists. */
    if ((dmahal_irq_mode(d, NULL) != DMAHAL_IRQ_MSIX && vector) || vector >= c->nvec)
        return SC_INVALID_VECTOR | SC_DNR;
    if (!pc)
        return SC_INVALID_FIELD | SC_DNR;
    c->cq[qid] = (struct nvme_cq){.live = true,
                                  .ien = ien,
                                  .base = cmd->prp1,
                                  .size = (uint16_t)(qsize + 1),
                                  .vector = vector,
                                  .phase = 1};
    c->qs_created = true;
    return SC_SUCCESS;
}

static uint16_t create_sq(struct ctrl *c, const struct sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff, qsize = cmd->cdw10 >> 16, cqid = cmd->cdw11 >> 16;
    bool pc = cmd->cdw11 & 1;

    if (!cqid || cqid > c->qpairs || !c->cq[cqid].live)
        return SC_CQ_INVALID | SC_DNR;
    if (!qid || qid > c->qpairs || c->sq[qid].live)
        return SC_INVALID_QID | SC_DNR;
    if (!qsize || qsize > mqes(c))
        return SC_MAX_QSIZE | SC_DNR;
    if (cmd->prp1 & (c->page_size - 1))
        return SC_INVALID_PRP_OFS | SC_DNR;
    if (!pc)
        return SC_INVALID_FIELD | SC_DNR;
    c->sq[qid] = (struct nvme_sq){
        .live = true, .base = cmd->prp1, .size = (uint16_t)(qsize + 1), .cqid = cqid};
    c->cq[cqid].nsq++;
    c->qs_created = true;
    return SC_SUCCESS;
}

static uint16_t delete_sq(struct ctrl *c, const struct sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff;

    if (!qid || qid > c->qpairs || !c->sq[qid].live)
        return SC_INVALID_QID | SC_DNR;
    /* Commands run to completion as they are fetched: none is left to abort. */
    c->cq[c->sq[qid].cqid].nsq--;
    memset(&c->sq[qid], 0, sizeof(c->sq[qid]));
    return SC_SUCCESS;
}

static uint16_t delete_cq(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff;
    struct nvme_cq cq;

    if (!qid || qid > c->qpairs || !c->cq[qid].live)
        return SC_CQ_INVALID | SC_DNR;
    if (c->cq[qid].nsq)
        return SC_INVALID_QDEL;
    cq = c->cq[qid];
    memset(&c->cq[qid], 0, sizeof(c->cq[qid]));
    cq.head = cq.tail; /* its entries are gone: they no longer hold the vector */
    irq_recheck(d, c, &cq);
    return SC_SUCCESS;
}

static void build_id_ns(const struct ctrl *c, const struct nvme_ns *ns, unsigned char *id)
{
    /* QEMU's eight LBA formats (512 and 4096 bytes, with 0, 8, 16, 64 bytes of metadata),
     * and the configured size appended when it is neither. */
    static const unsigned char ds[8] = {9, 9, 9, 9, 12, 12, 12, 12};
    static const uint16_t ms[8] = {0, 8, 16, 64, 0, 8, 16, 64};
    unsigned nlbaf = 8, flbas = c->lbads == 9 ? 0 : c->lbads == 12 ? 4 : 8;

    memset(id, 0, 4096);
    put64(id + 0, ns->nsze);  /* NSZE */
    put64(id + 8, ns->nsze);  /* NCAP */
    put64(id + 16, ns->nsze); /* NUSE */
    for (unsigned i = 0; i < 8; i++) {
        put16(id + 128 + 4 * i, ms[i]);
        id[128 + 4 * i + 2] = ds[i];
    }
    if (flbas == 8) {
        id[128 + 4 * 8 + 2] = (unsigned char)c->lbads;
        nlbaf = 9;
    }
    id[25] = (unsigned char)(nlbaf - 1); /* NLBAF, 0's based */
    id[26] = (unsigned char)flbas;
    id[33] = 0x9; /* DLFEAT: deallocated blocks read as zeroes; Write Zeroes may deallocate */
    put64(id + 48, ns->nsze << c->lbads); /* NVMCAP, low 8 of 16 bytes */
}

static uint16_t identify(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd)
{
    unsigned cns = cmd->cdw10 & 0xff;
    unsigned char *id = c->buf;
    struct nvme_ns *ns;

    memset(id, 0, 4096);
    switch (cns) {
    case 0x00: /* namespace; an inactive one is all zeroes */
        if (!nsid_valid(cmd->nsid) || cmd->nsid == NSID_BROADCAST)
            return SC_INVALID_NSID | SC_DNR;
        ns = ns_get(c, cmd->nsid);
        if (ns)
            build_id_ns(c, ns, id);
        break;
    case 0x01:
        memcpy(id, c->id_ctrl, 4096);
        break;
    case 0x02: { /* active namespace IDs above NSID, ascending */
        unsigned k = 0;

        if (cmd->nsid >= NSID_BROADCAST - 1)
            return SC_INVALID_NSID | SC_DNR;
        for (uint32_t n = cmd->nsid + 1; n <= c->nns && k < 1024; n++)
            put32(id + 4 * k++, n);
        break;
    }
    case 0x03: /* namespace identification descriptors: the UUID, then the command set */
        if (!nsid_valid(cmd->nsid) || cmd->nsid == NSID_BROADCAST)
            return SC_INVALID_NSID | SC_DNR;
        ns = ns_get(c, cmd->nsid);
        if (!ns)
            return SC_INVALID_FIELD | SC_DNR;
        id[0] = 0x3;
        id[1] = 16;
        memcpy(id + 4, ns->uuid, 16);
        id[20] = 0x4;
        id[21] = 1; /* CSI 0: the NVM command set */
        break;
    default:
        return SC_INVALID_FIELD | SC_DNR;
    }
    return to_host(d, c, cmd, id, 4096);
}

static void smart_log(const struct ctrl *c, unsigned char *log)
{
    memset(log, 0, 512);
    put16(log + 1, TEMPERATURE);
    if (TEMPERATURE >= c->feat_temp_over)
        log[0] |= 0x2; /* critical warning: temperature */
    /* Data units are thousands of 512-byte units, rounded up. */
    put64(log + 32, ((c->bytes_read >> 9) + 999) / 1000);
    put64(log + 48, ((c->bytes_written >> 9) + 999) / 1000);
    put64(log + 64, c->reads);
    put64(log + 80, c->writes);
}

static uint16_t get_log(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd)
{
    unsigned lid = cmd->cdw10 & 0xff;
    uint64_t numd = ((uint64_t)(cmd->cdw11 & 0xffff) << 16 | cmd->cdw10 >> 16) + 1;
    uint64_t len = numd * 4, off = (uint64_t)cmd->cdw13 << 32 | cmd->cdw12;
    unsigned char *log = c->buf;
    size_t size;

    if (off & 3)
        return SC_INVALID_FIELD | SC_DNR;
    if (len > c->max_xfer)
        return SC_INVALID_FIELD | SC_DNR;
    switch (lid) {
    case 0x01: /* error information: one entry, QEMU's zeroed one (no error recorded) */
        size = 64;
        memset(log, 0, size);
        if (!(cmd->cdw10 & 1u << 15)) /* RAE clear: error events may be reported again */
            aer_clear(d, c, AER_ERROR);
        break;
    case 0x02: /* SMART / health, of the controller (broadcast) or of one namespace */
        if (cmd->nsid != NSID_BROADCAST && !ns_get(c, cmd->nsid))
            return SC_INVALID_NSID | SC_DNR;
        size = 512;
        smart_log(c, log);
        if (!(cmd->cdw10 & 1u << 15))
            aer_clear(d, c, AER_SMART);
        break;
    case 0x03: /* firmware slots: slot 1 active */
        size = 512;
        memset(log, 0, size);
        log[0] = 1;
        memcpy(log + 8, c->id_ctrl + 64, 8);
        break;
    default:
        return SC_INVALID_FIELD | SC_DNR;
    }
    if (off >= size)
        return SC_INVALID_FIELD | SC_DNR;
    return to_host(d, c, cmd, log + off, len < size - off ? len : size - off);
}

static uint32_t feature_cap(unsigned fid)
{
    switch (fid) {
    case FEAT_TEMP_THRESH:
    case FEAT_WRITE_CACHE:
    case FEAT_NUM_QUEUES:
    case FEAT_IRQ_COALESCING:
    case FEAT_ASYNC_EVENT_CONF:
    case FEAT_TIMESTAMP:
        return FEAT_CAP_CHANGE;
    case FEAT_ERROR_RECOVERY:
        return FEAT_CAP_CHANGE | FEAT_CAP_NS;
    default:
        return 0;
    }
}

static bool feature_supported(unsigned fid)
{
    return (fid >= FEAT_ARBITRATION && fid <= FEAT_ASYNC_EVENT_CONF && fid != 0x03) ||
           fid == FEAT_TIMESTAMP;
}

static uint16_t feature_ns_check(struct ctrl *c, unsigned fid, uint32_t nsid)
{
    if (!(feature_cap(fid) & FEAT_CAP_NS))
        return SC_SUCCESS;
    if (!nsid_valid(nsid) || nsid == NSID_BROADCAST)
        return SC_INVALID_NSID | SC_DNR;
    return ns_get(c, nsid) ? SC_SUCCESS : SC_INVALID_FIELD | SC_DNR;
}

static uint32_t nq_result(const struct ctrl *c)
{
    return (c->qpairs - 1) | (uint32_t)(c->qpairs - 1) << 16;
}

/* Get Features: the current value (SEL 0), the default (1), the saved one (2: none is
 * saveable, so the default) or the capabilities (3). */
static uint16_t get_features(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd,
                             uint32_t *result)
{
    unsigned fid = cmd->cdw10 & 0xff, sel = (cmd->cdw10 >> 8) & 0x7;
    bool cur = sel == 0;
    uint16_t st;

    if (!feature_supported(fid))
        return SC_INVALID_FIELD | SC_DNR;
    st = feature_ns_check(c, fid, cmd->nsid);
    if (st)
        return st;
    if (sel == 3) {
        *result = feature_cap(fid);
        return SC_SUCCESS;
    }
    if (sel > 3)
        return SC_INVALID_FIELD | SC_DNR;
    switch (fid) {
    case FEAT_ARBITRATION:
        *result = 0x7; /* no arbitration burst limit */
        break;
    case FEAT_TEMP_THRESH:
        /* Only the composite temperature's over-temperature threshold is kept. */
        *result = 0;
        if ((cmd->cdw11 >> 16 & 0xf) == 0 && (cmd->cdw11 >> 20 & 0x3) == 0)
            *result = cur ? c->feat_temp_over : TEMP_WARNING;
        break;
    case FEAT_ERROR_RECOVERY:
        *result = cur ? c->feat_err_rec : 0;
        break;
    case FEAT_WRITE_CACHE:
        *result = cur ? c->feat_vwc : 1;
        break;
    case FEAT_NUM_QUEUES:
        *result = nq_result(c);
        break;
    case FEAT_IRQ_COALESCING:
        *result = cur ? c->feat_coalescing : 0;
        break;
    case FEAT_IRQ_VECTOR_CONF: {
        uint32_t iv = cmd->cdw11 & 0xffff;

        if (iv >= c->qpairs + 1)
            return SC_INVALID_FIELD | SC_DNR;
        *result = iv | (iv == 0 ? UINT32_C(1) << 16 : 0); /* the admin vector: no coalescing */
        break;
    }
    case FEAT_ASYNC_EVENT_CONF:
        *result = cur ? c->feat_async : 0;
        break;
    case FEAT_TIMESTAMP:
        *result = 0;
        if (cur) { /* 8 bytes: milliseconds, then the origin: 1 once the host set it */
            unsigned char ts[8];
            uint64_t ms = c->host_ts + (now_ms() - c->host_ts_at);

            put64(ts, (ms & ((UINT64_C(1) << 48) - 1)) | (uint64_t)(c->host_ts ? 1 : 0) << 49);
            return to_host(d, c, cmd, ts, sizeof(ts));
        }
        break;
    default: /* power management, write atomicity: 0 */
        *result = 0;
        break;
    }
    return SC_SUCCESS;
}

static uint16_t set_features(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd,
                             uint32_t *result)
{
    unsigned fid = cmd->cdw10 & 0xff;
    bool save = cmd->cdw10 >> 31;
    uint32_t v = cmd->cdw11;
    uint16_t st;

    if (!feature_supported(fid))
        return SC_INVALID_FIELD | SC_DNR;
    if (save && !(feature_cap(fid) & FEAT_CAP_SAVE))
        return SC_NOT_SAVEABLE | SC_DNR;
    if (!(feature_cap(fid) & FEAT_CAP_CHANGE))
        return SC_NOT_CHANGEABLE | SC_DNR;
    st = feature_ns_check(c, fid, cmd->nsid);
    if (st)
        return st;
    switch (fid) {
    case FEAT_TEMP_THRESH:
        if ((v >> 16 & 0xf) == 0 && (v >> 20 & 0x3) == 0)
            c->feat_temp_over = v & 0xffff;
        /* Over the threshold now, with temperature events enabled: a SMART event. */
        if (TEMPERATURE >= c->feat_temp_over && (c->feat_async & 0x2))
            aer_enqueue(d, c, AER_SMART, AER_TEMP, 0x02);
        break;
    case FEAT_ERROR_RECOVERY:
        c->feat_err_rec = v & 0x1ffffu;
        break;
    case FEAT_WRITE_CACHE:
        if (!(v & 1) && c->feat_vwc)
            ns_sync(c);
        c->feat_vwc = v & 1;
        break;
    case FEAT_NUM_QUEUES:
        if (c->qs_created)
            return SC_CMD_SEQ_ERROR | SC_DNR;
        if ((v & 0xffff) == 0xffff || (v >> 16) == 0xffff)
            return SC_INVALID_FIELD | SC_DNR;
        *result = nq_result(c); /* every queue pair the controller has, whatever was asked */
        break;
    case FEAT_IRQ_COALESCING:
        c->feat_coalescing = v & 0xffff; /* accepted; completions are not delayed */
        break;
    case FEAT_ASYNC_EVENT_CONF:
        c->feat_async = v;
        break;
    case FEAT_TIMESTAMP: { /* 8 bytes through the data pointer: milliseconds in 47:0 */
        unsigned char ts[8];
        unsigned nseg;

        st = prp_map(d, c, cmd->prp1, cmd->prp2, sizeof(ts), &nseg);
        if (!st)
            st = seg_xfer(d, c, nseg, ts, false);
        if (st)
            return st;
        c->host_ts = get64(ts) & ((UINT64_C(1) << 48) - 1);
        c->host_ts_at = now_ms();
        break;
    }
    }
    return SC_SUCCESS;
}

static uint16_t admin_cmd(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd,
                          uint32_t *result)
{
    /* Admin commands take PRPs only (SGLs are not for admin commands over PCIe). */
    if (cmd->flags & 0xc0)
        return SC_INVALID_FIELD | SC_DNR;
    if (cmd->flags & 0x03)
        return SC_INVALID_FIELD;
    switch (cmd->opcode) {
    case ADM_DELETE_SQ:
        return delete_sq(c, cmd);
    case ADM_CREATE_SQ:
        return create_sq(c, cmd);
    case ADM_GET_LOG:
        return get_log(d, c, cmd);
    case ADM_DELETE_CQ:
        return delete_cq(d, c, cmd);
    case ADM_CREATE_CQ:
        return create_cq(d, c, cmd);
    case ADM_IDENTIFY:
        return identify(d, c, cmd);
    case ADM_ABORT:
        /* Nothing is ever outstanding to abort: bit 0 of the result says "not aborted". */
        *result = 1;
        if ((cmd->cdw10 & 0xffff) > c->qpairs || !c->sq[cmd->cdw10 & 0xffff].live)
            return SC_INVALID_FIELD | SC_DNR;
        return SC_SUCCESS;
    case ADM_SET_FEATURES:
        return set_features(d, c, cmd, result);
    case ADM_GET_FEATURES:
        return get_features(d, c, cmd, result);
    case ADM_ASYNC_EVENT:
        if (c->aer_outstanding > AERL)
            return SC_AER_LIMIT;
        c->aer_cid[c->aer_outstanding++] = cmd->cid;
        aer_process(d, c); /* reports what is queued, if anything may be */
        return SC_NO_COMPLETION;
    default:
        return SC_INVALID_OPCODE | SC_DNR;
    }
}

/* ---- I/O commands ------------------------------------------------------------------------------
 */

static uint16_t check_bounds(const struct nvme_ns *ns, uint64_t slba, uint64_t nlb)
{
    if (UINT64_MAX - slba < nlb || slba + nlb > ns->nsze)
        return SC_LBA_RANGE | SC_DNR;
    return SC_SUCCESS;
}

/* Zeroes [off, off + len) of a namespace: whole pages of memory go back to the host (they
 * read as zeroes again), a file gets a hole or zeroes. */
static int ns_zero(struct ctrl *c, struct nvme_ns *ns, uint64_t off, uint64_t len)
{
    if (ns->mem) {
        uint64_t lo = align_up(off, 4096), hi = (off + len) & ~UINT64_C(4095);

        if (hi > lo) {
            memset(ns->mem + off, 0, lo - off);
            madvise(ns->mem + lo, hi - lo, MADV_DONTNEED);
            memset(ns->mem + hi, 0, off + len - hi);
        } else {
            memset(ns->mem + off, 0, len);
        }
        return 0;
    }
    if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(ns->file_off + off),
                  (off_t)len) == 0)
        return 0;
    memset(c->buf, 0, c->max_xfer);
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < c->max_xfer ? (size_t)(len - done) : c->max_xfer;

        if (pwrite(c->fd, c->buf, n, (off_t)(ns->file_off + off + done)) != (ssize_t)n)
            return -EIO;
        done += n;
    }
    return 0;
}

/* The blocks an I/O command names (SLBA in CDW10-11, a 0-based NLB in CDW12), as a byte
 * offset and length in @ns: Invalid Field past MDTS (when @mdts: the commands that move or
 * check data), LBA Out of Range past the namespace. */
static uint16_t blocks_of(const struct ctrl *c, const struct nvme_ns *ns, const struct sqe *cmd,
                          bool mdts, uint64_t *off, size_t *len)
{
    uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
    uint32_t nlb = (cmd->cdw12 & 0xffff) + 1;

    *off = slba << c->lbads;
    *len = (size_t)nlb << c->lbads;
    if (mdts && *len > c->max_xfer)
        return SC_INVALID_FIELD | SC_DNR;
    return check_bounds(ns, slba, nlb);
}

/* Read or Write: the data moves straight between the namespace's memory and the host's
 * pages; a file-backed namespace goes through the staging buffer. */
static uint16_t rw(struct dmahal_device *d, struct ctrl *c, struct nvme_ns *ns,
                   const struct sqe *cmd, bool write)
{
    uint64_t off;
    size_t len;
    unsigned nseg;
    uint16_t st = blocks_of(c, ns, cmd, true, &off, &len);

    if (!st)
        st = dptr_map(d, c, cmd, len, &nseg, write);
    if (st)
        return st;
    if (ns->mem) {
        st = seg_xfer(d, c, nseg, ns->mem + off, !write);
    } else if (write) {
        st = seg_xfer(d, c, nseg, c->buf, false);
        if (!st && pwrite(c->fd, c->buf, len, (off_t)(ns->file_off + off)) != (ssize_t)len)
            st = SC_WRITE_FAULT;
    } else {
        ssize_t got = pread(c->fd, c->buf, len, (off_t)(ns->file_off + off));

        if (got < 0)
            return SC_UNRECOVERED;
        memset(c->buf + got, 0, len - (size_t)got); /* past the file's end: never written */
        st = seg_xfer(d, c, nseg, c->buf, true);
    }
    if (st)
        return st;
    if (write) {
        c->bytes_written += len;
        c->writes++;
    } else {
        c->bytes_read += len;
        c->reads++;
    }
    return SC_SUCCESS;
}

/* Compare: the host's data against the blocks; Compare Failure at the first difference. */
static uint16_t compare(struct dmahal_device *d, struct ctrl *c, struct nvme_ns *ns,
                        const struct sqe *cmd)
{
    uint64_t off;
    size_t len;
    unsigned nseg;
    uint16_t st = blocks_of(c, ns, cmd, true, &off, &len);

    if (!st)
        st = dptr_map(d, c, cmd, len, &nseg, false);
    if (!st)
        st = seg_xfer(d, c, nseg, c->buf, false);
    if (st)
        return st;
    if (ns->mem)
        return memcmp(c->buf, ns->mem + off, len) ? SC_COMPARE_FAILURE | SC_DNR : SC_SUCCESS;
    for (size_t done = 0; done < len;) {
        unsigned char chunk[4096];
        size_t n = len - done < sizeof(chunk) ? len - done : sizeof(chunk);
        ssize_t got = pread(c->fd, chunk, n, (off_t)(ns->file_off + off + done));

        if (got < 0)
            return SC_UNRECOVERED;
        memset(chunk + got, 0, n - (size_t)got);
        if (memcmp(c->buf + done, chunk, n))
            return SC_COMPARE_FAILURE | SC_DNR;
        done += n;
    }
    return SC_SUCCESS;
}

/* Verify: the blocks are readable (no data moves); its size limit is QEMU's VSL, MDTS's. */
static uint16_t verify(struct ctrl *c, struct nvme_ns *ns, const struct sqe *cmd)
{
    uint64_t off;
    size_t len;

    return blocks_of(c, ns, cmd, true, &off, &len);
}

static uint16_t write_zeroes(struct ctrl *c, struct nvme_ns *ns, const struct sqe *cmd)
{
    uint64_t off;
    size_t len;
    uint16_t st = blocks_of(c, ns, cmd, false, &off, &len);

    if (st)
        return st;
    return ns_zero(c, ns, off, len) ? SC_WRITE_FAULT : SC_SUCCESS;
}

/* Dataset Management: deallocate (AD) the listed ranges; ranges outside the namespace are
 * skipped, as QEMU does. Without AD the hints are accepted and change nothing. */
static uint16_t dsm(struct dmahal_device *d, struct ctrl *c, struct nvme_ns *ns,
                    const struct sqe *cmd)
{
    unsigned nr = (cmd->cdw10 & 0xff) + 1, nseg;
    unsigned char *r = c->buf;
    uint16_t st;

    if (!(cmd->cdw11 & 0x4))
        return SC_SUCCESS;
    st = dptr_map(d, c, cmd, nr * 16u, &nseg, false);
    if (!st)
        st = seg_xfer(d, c, nseg, r, false);
    if (st)
        return st;
    for (unsigned i = 0; i < nr; i++) {
        uint32_t nlb = get32(r + 16 * i + 4);
        uint64_t slba = get64(r + 16 * i + 8);

        if (!nlb || check_bounds(ns, slba, nlb))
            continue;
        if (ns_zero(c, ns, slba << c->lbads, (uint64_t)nlb << c->lbads))
            return SC_INTERNAL;
    }
    return SC_SUCCESS;
}

static uint16_t io_cmd(struct dmahal_device *d, struct ctrl *c, const struct sqe *cmd)
{
    struct nvme_ns *ns;

    if (!nsid_valid(cmd->nsid))
        return SC_INVALID_NSID | SC_DNR;
    if (cmd->opcode == IO_FLUSH && cmd->nsid == NSID_BROADCAST) {
        ns_sync(c);
        return SC_SUCCESS;
    }
    ns = ns_get(c, cmd->nsid);
    if (!ns)
        return SC_INVALID_FIELD | SC_DNR;
    switch (cmd->opcode) {
    case IO_FLUSH:
    case IO_WRITE:
    case IO_READ:
    case IO_WRITE_ZEROES:
    case IO_DSM:
    case IO_COMPARE:
    case IO_VERIFY:
        break;
    default:
        return SC_INVALID_OPCODE | SC_DNR;
    }
    if (cmd->flags & 0x03)
        return SC_INVALID_FIELD;
    switch (cmd->opcode) {
    case IO_FLUSH:
        ns_sync(c);
        return SC_SUCCESS;
    case IO_WRITE:
        return rw(d, c, ns, cmd, true);
    case IO_READ:
        return rw(d, c, ns, cmd, false);
    case IO_WRITE_ZEROES:
        return write_zeroes(c, ns, cmd);
    case IO_COMPARE:
        return compare(d, c, ns, cmd);
    case IO_VERIFY:
        return verify(c, ns, cmd);
    default:
        return dsm(d, c, ns, cmd);
    }
}

/* ---- queues ------------------------------------------------------------------------------------
 */

static bool cq_full(const struct nvme_cq *cq)
{
    return (uint16_t)((cq->tail + 1) % cq->size) == cq->head;
}

/* Posts one completion; a completion the bus refuses is a controller fatal status. */
static int post(struct dmahal_device *d, struct ctrl *c, uint16_t sqid, const struct sqe *cmd,
                uint16_t status, uint32_t result)
{
    struct nvme_sq *sq = &c->sq[sqid];
    struct nvme_cq *cq = &c->cq[sq->cqid];
    struct cqe e = {.result = result,
                    .sq_head = sq->head,
                    .sq_id = sqid,
                    .cid = cmd->cid,
                    .status = (uint16_t)(status << 1 | cq->phase)};

    if (dmahal_dev_write(d, cq->base + (uint64_t)cq->tail * CQE_SIZE, &e, sizeof(e))) {
        fatal(c);
        return -1;
    }
    if (++cq->tail == cq->size) {
        cq->tail = 0;
        cq->phase ^= 1;
    }
    if (cq->ien && dmahal_irq_mode(d, NULL) == DMAHAL_IRQ_MSIX) {
        msix_notify(d, c, cq->vector);
    } else if (cq->ien && cq->vector < 32) {
        c->irq_status |= UINT32_C(1) << cq->vector;
        irq_update(d, c);
    }
    return 0;
}

/* Reports queued events while requests are outstanding and the admin completion queue has
 * room; an event of a type reported and not yet cleared waits. */
static void aer_process(struct dmahal_device *d, struct ctrl *c)
{
    for (unsigned i = 0; i < c->aer_queued && c->aer_outstanding;) {
        uint32_t ev = c->aer_queue[i];
        struct sqe req = {0};

        if (c->aer_mask & 1u << (ev & 0x7)) {
            i++;
            continue;
        }
        if (cq_full(&c->cq[0]))
            return;
        memmove(&c->aer_queue[i], &c->aer_queue[i + 1], (--c->aer_queued - i) * sizeof(ev));
        c->aer_mask |= 1u << (ev & 0x7);
        req.cid = c->aer_cid[--c->aer_outstanding];
        if (post(d, c, 0, &req, SC_SUCCESS, ev))
            return;
    }
}

static void aer_enqueue(struct dmahal_device *d, struct ctrl *c, unsigned type, unsigned info,
                        unsigned lid)
{
    if (c->aer_queued == AER_MAX_QUEUED)
        return;
    c->aer_queue[c->aer_queued++] = type | info << 8 | lid << 16;
    aer_process(d, c);
}

/* The host read the log of @type's events: they may be reported again. */
static void aer_clear(struct dmahal_device *d, struct ctrl *c, unsigned type)
{
    c->aer_mask &= ~(1u << type);
    aer_process(d, c);
}

/*
 * Runs submission queue @sqid: fetches each entry between head and tail, executes it and
 * posts its completion, while its completion queue has room. A queue left with entries
 * (its completion queue full) runs again when the host frees completion entries.
 */
static void run_sq(struct dmahal_device *d, struct ctrl *c, uint16_t sqid)
{
    struct nvme_sq *sq = &c->sq[sqid];

    while (sq->live && sq->head != sq->tail && running(c) && !cq_full(&c->cq[sq->cqid])) {
        struct sqe cmd;
        uint32_t result = 0;
        uint16_t st;

        if (dmahal_dev_read(d, sq->base + (uint64_t)sq->head * SQE_SIZE, &cmd, sizeof(cmd))) {
            fatal(c);
            return;
        }
        sq->head = (uint16_t)((sq->head + 1) % sq->size);
        st = sqid ? io_cmd(d, c, &cmd) : admin_cmd(d, c, &cmd, &result);
        /* A Delete I/O Submission Queue of this very queue leaves nothing to complete on it:
         * admin commands complete on the admin queue, which never goes. */
        if (st != SC_NO_COMPLETION && post(d, c, sqid, &cmd, st, result))
            return;
    }
}

/* Device work: the queue's run, a latency after its doorbell. A queue deleted meanwhile does
 * not run; one created again in its place runs early, which a controller may do. */
static void sq_work(struct dmahal_device *d, void *state, void *arg)
{
    struct ctrl *c = state;
    uint16_t qid = (uint16_t)(uintptr_t)arg;

    pthread_mutex_lock(&c->lock);
    c->sq[qid].due = false;
    run_sq(d, c, qid);
    pthread_mutex_unlock(&c->lock);
}

static void sq_schedule(struct dmahal_device *d, struct ctrl *c, uint16_t qid)
{
    if (dmahal_model_schedule(d, c->latency_ns, sq_work, (void *)(uintptr_t)qid, NULL) == 0)
        c->sq[qid].due = true;
    else
        run_sq(d, c, qid); /* no time to defer in: at once */
}

/* The host freed completion entries of @cqid: the submission queues that were held back on it
 * run again. */
static void run_cq_waiters(struct dmahal_device *d, struct ctrl *c, uint16_t cqid)
{
    for (unsigned q = 0; q <= c->qpairs; q++)
        if (c->sq[q].live && c->sq[q].cqid == cqid && c->sq[q].head != c->sq[q].tail)
            run_sq(d, c, (uint16_t)q);
}

/* The host moved @cq's head to @head: it has taken the entries before it, which the verifier
 * checks it synced from a cached queue (in at most two pieces: the queue wraps). */
static void cq_consumed(struct dmahal_device *d, const struct nvme_cq *cq, uint16_t head)
{
    uint16_t from = cq->head;

    if (head == from)
        return;
    if (head < from) {
        dmahal_dev_consumed(d, cq->base + (uint64_t)from * CQE_SIZE,
                            (size_t)(cq->size - from) * CQE_SIZE);
        from = 0;
    }
    if (head > from)
        dmahal_dev_consumed(d, cq->base + (uint64_t)from * CQE_SIZE,
                            (size_t)(head - from) * CQE_SIZE);
}

/* A doorbell write. Writes the controller cannot take (an absent queue, a value beyond the
 * queue, an offset between doorbells) are ignored, as QEMU does. */
static void doorbell(struct dmahal_device *d, struct ctrl *c, uint64_t off, uint32_t v)
{
    uint64_t idx = (off - DB_BASE) / c->db_stride;
    uint16_t qid = (uint16_t)(idx / 2), val = (uint16_t)v;

    if ((off - DB_BASE) % c->db_stride)
        return;
    /* A doorbell of no queue, or a value beyond the queue: an error event for a host that
     * asked for them, as QEMU does; otherwise only ignored. */
    if (idx / 2 > c->qpairs || !(idx & 1 ? c->cq[qid].live : c->sq[qid].live)) {
        if (c->aer_outstanding)
            aer_enqueue(d, c, AER_ERROR, AER_BAD_DB_REG, 0x01);
        return;
    }
    if (idx & 1) {
        struct nvme_cq *cq = &c->cq[qid];
        bool was_full;

        if (val >= cq->size) {
            if (c->aer_outstanding)
                aer_enqueue(d, c, AER_ERROR, AER_BAD_DB_VAL, 0x01);
            return;
        }
        was_full = cq_full(cq);
        cq_consumed(d, cq, val);
        cq->head = val;
        if (cq->head == cq->tail)
            irq_recheck(d, c, cq);
        if (was_full)
            run_cq_waiters(d, c, qid);
        if (qid == 0)
            aer_process(d, c); /* events held back by a full admin queue */
    } else {
        struct nvme_sq *sq = &c->sq[qid];

        if (val >= sq->size) {
            if (c->aer_outstanding)
                aer_enqueue(d, c, AER_ERROR, AER_BAD_DB_VAL, 0x01);
            return;
        }
        sq->tail = val;
        if (!c->latency_ns)
            run_sq(d, c, qid);
        else if (!sq->due)
            sq_schedule(d, c, qid);
    }
}

/* ---- register access ------------------------------------------------------------------------ */

static uint64_t msix_read(const struct ctrl *c, uint64_t off, unsigned size)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i += 4) {
        uint64_t o = off + i, dw = 0;

        if (o >= c->msix_off && o < c->msix_off + (uint64_t)c->nvec * MSIX_ENTRY)
            dw = c->msix[(o - c->msix_off) / 4];
        else if (o >= c->pba_off && o < c->pba_off + sizeof(c->msix_pending))
            dw = (uint32_t)(c->msix_pending[(o - c->pba_off) / 8] >> (8 * ((o - c->pba_off) % 8)));
        v |= dw << (8 * i);
    }
    return v;
}

/* The table is the host's; unmasking a vector with its pending bit set sends the message. */
static void msix_write(struct dmahal_device *d, struct ctrl *c, uint64_t off, uint64_t v,
                       unsigned size)
{
    for (unsigned i = 0; i < size; i += 4) {
        uint64_t o = off + i;
        unsigned vec = (unsigned)((o - c->msix_off) / MSIX_ENTRY);
        uint64_t bit = UINT64_C(1) << (vec % 64);

        if (o < c->msix_off || o >= c->msix_off + (uint64_t)c->nvec * MSIX_ENTRY)
            continue;
        c->msix[(o - c->msix_off) / 4] = (uint32_t)(v >> (8 * i));
        if ((o - c->msix_off) % MSIX_ENTRY == MSIX_VEC_CTRL &&
            !(c->msix[vec * 4 + MSIX_VEC_CTRL / 4] & 1) && (c->msix_pending[vec / 64] & bit)) {
            c->msix_pending[vec / 64] &= ~bit;
            dmahal_irq_raise(d, vec);
        }
    }
}

static uint64_t nvme_mmio_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                               unsigned size)
{
    struct ctrl *c = state;
    uint64_t v = 0;

    (void)d;
    if (bar != 0)
        return UINT64_MAX;
    pthread_mutex_lock(&c->lock);
    if (off + size <= REGS_SIZE)
        memcpy(&v, c->regs + off, size); /* doorbells read as 0, as in QEMU */
    else if (off >= c->msix_off)
        v = msix_read(c, off, size);
    pthread_mutex_unlock(&c->lock);
    return v;
}

static void write_reg(struct dmahal_device *d, struct ctrl *c, uint64_t off, uint64_t v,
                      unsigned size)
{
    uint32_t intms = REG32(c, REG_INTMS);

    switch (off) {
    case REG_INTMS:
        intms |= (uint32_t)v;
        put32(c->regs + REG_INTMS, intms);
        put32(c->regs + REG_INTMC, intms);
        irq_update(d, c);
        break;
    case REG_INTMC:
        intms &= ~(uint32_t)v;
        put32(c->regs + REG_INTMS, intms);
        put32(c->regs + REG_INTMC, intms);
        irq_update(d, c);
        break;
    case REG_CC:
        write_cc(d, c, (uint32_t)v);
        break;
    case REG_AQA:
        put32(c->regs + REG_AQA, (uint32_t)v);
        break;
    case REG_ASQ:
    case REG_ACQ:
        if (size == 8)
            put64(c->regs + off, v);
        else
            put32(c->regs + off, (uint32_t)v);
        break;
    case REG_ASQ + 4:
    case REG_ACQ + 4:
        put32(c->regs + off, (uint32_t)v);
        break;
    default:
        /* CAP, VS, CSTS and the rest are read-only; NSSR is not supported (CAP.NSSRS = 0). */
        break;
    }
}

static void nvme_mmio_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                            uint64_t val, unsigned size)
{
    struct ctrl *c = state;

    if (bar != 0 || (off & 3))
        return;
    pthread_mutex_lock(&c->lock);
    if (off < REGS_SIZE)
        write_reg(d, c, off, val, size);
    else if (off >= c->msix_off)
        msix_write(d, c, off, val, size);
    else
        doorbell(d, c, off, (uint32_t)val);
    pthread_mutex_unlock(&c->lock);
}

const struct dmahal_model dmahal__model_nvme = {
    .name = "nvme",
    .summary = "NVMe 1.4 controller as QEMU 7.2's nvme (1b36:0010): admin and I/O queues, "
               "PRPs, namespaces in sparse memory or a file",
    .state_size = sizeof(struct ctrl),
    .bar_size = {16384},
    .init = nvme_init,
    .fini = nvme_fini,
    .mmio_read = nvme_mmio_read,
    .mmio_write = nvme_mmio_write,
    .usage = "size=N,lba=N,namespaces=N,queues=N,mdts=N,dstrd=N,latency=NS,serial=S,file=PATH",
    /* QEMU 7.2's nvme: Red Hat's 1b36:0010, NVM Express class 01:08:02, INTA# and 65 MSI-X
     * vectors with the table and PBA in BAR0. */
    .vendor_id = 0x1b36,
    .device_id = 0x0010,
    .subsystem_vendor_id = 0x1af4,
    .subsystem_id = 0x1100,
    .class_code = 0x010802,
    .revision = 0x02,
    .intx = true,
    .msix_vectors = MSIX_VECTORS,
    .msix_bar = 0,
    .msix_table_off = MSIX_TABLE_OFF,
    .msix_pba_off = MSIX_PBA_OFF,
};
