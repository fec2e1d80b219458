/* SPDX-License-Identifier: MIT */
/*
 * test_nvme_model.c - the sim platform's NVMe controller model, through the public API only,
 * as a driver sees it: the registers, controller enable, reset and shutdown, every admin and
 * I/O command the model offers with the statuses it returns for bad input, the PRP rules,
 * phase tags, a full completion queue, doorbells it must ignore, bus faults, INTx, and
 * namespaces in memory and in a file.
 */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <unistd.h>

#include "test.h"

#include "unit/platform/sim/nvme_rig.h"

static void fill(void *p, size_t len, unsigned seed)
{
    unsigned char *c = p;

    for (size_t i = 0; i < len; i++)
        c[i] = (unsigned char)(seed + i * 13 + (i >> 9));
}

static bool filled(const void *p, size_t len, unsigned seed)
{
    const unsigned char *c = p;

    for (size_t i = 0; i < len; i++)
        if (c[i] != (unsigned char)(seed + i * 13 + (i >> 9)))
            return false;
    return true;
}

static bool zeroes(const void *p, size_t len)
{
    const unsigned char *c = p;

    for (size_t i = 0; i < len; i++)
        if (c[i])
            return false;
    return true;
}

static unsigned char *data(struct rig *r, size_t off)
{
    return (unsigned char *)r->data.va + off;
}

/* ---- registers --------------------------------------------------------------------------- */

TEST(registers_as_qemu)
{
    struct rig r;
    uint64_t cap, bar = 0;

    rig_dev(&r, "sim", "nvme");
    cap = dmahal_mmio_read64(r.d, 0, CAP);
    CHECK_EQ_U(cap & 0xffff, 0x7ff);     /* MQES */
    CHECK_EQ_U((cap >> 16) & 1, 1);      /* CQR */
    CHECK_EQ_U((cap >> 24) & 0xff, 0xf); /* TO */
    CHECK_EQ_U((cap >> 32) & 0xf, 0);    /* DSTRD */
    CHECK_EQ_U((cap >> 37) & 0xff, 1);   /* CSS: NVM */
    CHECK_EQ_U((cap >> 48) & 0xf, 0);    /* MPSMIN: 4 KiB */
    CHECK_EQ_U((cap >> 52) & 0xf, 4);    /* MPSMAX: 64 KiB */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CAP + 4), cap >> 32);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, VS), 0x10400);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CC), 0);
    /* 64 queue pairs and 65 vectors: registers, doorbells, MSI-X table and PBA in 16 KiB. */
    CHECK_OK(dmahal_device_bar_size(r.d, 0, &bar));
    CHECK_EQ_U(bar, 16384);
    /* The MSI-X table starts at 8 KiB, every vector masked. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, 8192 + 12), 1);
    dmahal_mmio_write32(r.d, 0, 8192 + 12, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, 8192 + 12), 0);
    /* Read-only registers ignore writes; doorbells read as zero. */
    dmahal_mmio_write32(r.d, 0, VS, 0x20000);
    dmahal_mmio_write32(r.d, 0, CSTS, 0x3);
    dmahal_mmio_write64(r.d, 0, CAP, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, VS), 0x10400);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), 0);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, CAP), cap);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, DBS), 0);
    /* ASQ and ACQ take 64-bit writes and two dword writes alike. */
    dmahal_mmio_write64(r.d, 0, ASQ, 0x123456789000ull);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, ASQ), 0x123456789000ull);
    dmahal_mmio_write32(r.d, 0, ACQ, 0xabc000);
    dmahal_mmio_write32(r.d, 0, ACQ + 4, 0x12);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, ACQ), 0x1200abc000ull);
    enable(&r);
    rig_close(&r);
}

TEST(arguments)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint64_t bar = 0;
    static const char *const bad[] = {
        "nvme:size=0",
        "nvme:size=100",
        "nvme:lba=1000",
        "nvme:lba=256",
        "nvme:namespaces=0",
        "nvme:namespaces=257",
        "nvme:queues=0",
        "nvme:queues=70000",
        "nvme:mdts=0",
        "nvme:mdts=11",
        "nvme:dstrd=9",
        "nvme:serial=",
        "nvme:serial=123456789012345678901",
        "nvme:file=",
        "nvme:colour=blue",
        "nvme:size",
        "nvme:queues=-1",
        "nvme:vectors=65",
        "nvme:dstrd=3,queues=200",
        "nvme:queues=512",
        "nvme:queues=1x",
        "nvme:file=/nonexistent-dir/x.img",
    };

    CHECK_OK(dmahal_platform_open("sim", &p));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = dmahal_device_open(p, bad[i], &d);

        if (rc == 0)
            test_fail(__FILE__, __LINE__, "\"%s\" was accepted", bad[i]);
        CHECK(d == NULL);
    }
    /* The doorbell stride and the queue count size BAR0 and show in CAP. */
    CHECK_OK(dmahal_device_open(p, "nvme:dstrd=2,queues=100", &d));
    CHECK_EQ_U((dmahal_mmio_read64(d, 0, CAP) >> 32) & 0xf, 2);
    CHECK_OK(dmahal_device_bar_size(d, 0, &bar));
    CHECK_EQ_U(bar, 16384); /* the doorbells end before the MSI-X table at 8 KiB */
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(enable_checks_set_fatal_status)
{
    struct rig r;
    static const uint32_t bad_cc[] = {
        1u | 4u << 20,      /* IOSQES 0 */
        1u | 6u << 16,      /* IOCQES 0 */
        CC_READY | 1u << 4, /* CSS 1: no such command set */
        CC_READY | 5u << 7, /* MPS 128 KiB > MPSMAX */
    };

    rig_dev(&r, "sim", "nvme");
    for (size_t i = 0; i < sizeof(bad_cc) / sizeof(bad_cc[0]); i++) {
        admin_regs(&r, ADEPTH);
        dmahal_mmio_write32(r.d, 0, CC, bad_cc[i]);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_CFS);
        disable(&r);
    }
    /* Admin queues not aligned to the page, or of one entry. */
    dmahal_mmio_write32(r.d, 0, AQA, 0xf000f);
    dmahal_mmio_write64(r.d, 0, ASQ, r.admin.sq.la + 64);
    dmahal_mmio_write64(r.d, 0, ACQ, r.admin.cq.la);
    dmahal_mmio_write32(r.d, 0, CC, CC_READY);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_CFS);
    disable(&r);
    admin_regs(&r, 1);
    dmahal_mmio_write32(r.d, 0, CC, CC_READY);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_CFS);
    disable(&r);
    /* A good enable after the failures works. */
    enable(&r);
    rig_close(&r);
}

TEST(reset_forgets_queues_and_shutdown_reports)
{
    struct rig r;
    struct sqe id = {.cdw0 = 0x06, .cdw10 = 1};
    struct cqe e;

    rig_open(&r, "sim", "nvme");
    io_create(&r, 8);
    disable(&r);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CC), 0);
    /* The old admin queue is gone: a doorbell on it does nothing. */
    id.prp1 = r.data.la;
    queue_cmd(&r.admin, &id);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK(!reap(&r, &r.admin, &e));
    /* Enabled again, queue 1 must be created again. */
    enable(&r);
    io_create(&r, 8);
    /* Shutdown: SHST says complete, and clears when SHN does. */
    dmahal_mmio_write32(r.d, 0, CC, CC_READY | 1u << 14);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS) & CSTS_SHST, 0x8);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS) & CSTS_RDY, CSTS_RDY);
    dmahal_mmio_write32(r.d, 0, CC, CC_READY);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY);
    rig_close(&r);
}

TEST(intx_follows_admin_completions_and_mask)
{
    struct rig r;
    struct sqe gf = {.cdw0 = 0x0a, .cdw10 = 0x07};
    struct cqe e;

    rig_open(&r, "sim", "nvme");
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    /* The admin completion queue has interrupts on, vector 0: the line rises with a
     * completion and falls when the host has consumed it. */
    queue_cmd(&r.admin, &gf);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    dmahal_mmio_write32(r.d, 0, INTMS, 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, INTMS), 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, INTMC), 1);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    dmahal_mmio_write32(r.d, 0, INTMC, 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, INTMS), 0);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    rig_close(&r);
}

/* ---- admin commands ----------------------------------------------------------------------- */

TEST(identify)
{
    struct rig r;
    const unsigned char *id;
    struct sqe cmd = {.cdw0 = 0x06, .cdw10 = 1};

    rig_open(&r, "sim", "nvme:size=8M,lba=4096,namespaces=3,serial=SN42");
    id = data(&r, 0);
    cmd.prp1 = r.data.la;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(id[0] | id[1] << 8, 0x1b36);
    CHECK(!memcmp(id + 4, "SN42                ", 20));
    CHECK(!memcmp(id + 24, "QEMU NVMe Ctrl ", 15));
    CHECK_EQ_U(id[77], 7); /* MDTS: 512 KiB */
    CHECK_EQ_U(id[80] | id[81] << 8 | id[82] << 16, 0x10400);
    CHECK_EQ_U(id[512], 0x66);
    CHECK_EQ_U(id[513], 0x44);
    CHECK_EQ_U(id[516] | id[517] << 8, 256); /* NN */
    CHECK_EQ_U(id[520] & 0xc, 0xc);          /* ONCS: DSM and Write Zeroes */
    CHECK_STR((const char *)id + 768, "nqn.2019-08.org.qemu:SN42");

    /* Namespace 2: 2048 blocks of 4 KiB, LBA format 4. */
    memset(data(&r, 0), 0xff, PAGE);
    cmd = (struct sqe){.cdw0 = 0x06, .nsid = 2, .prp1 = r.data.la, .cdw10 = 0};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(id[0] | id[1] << 8, 2048);
    CHECK_EQ_U(id[26], 4);
    CHECK_EQ_U(id[128 + 4 * 4 + 2], 12);
    CHECK_EQ_U(id[128 + 0 * 4 + 2], 9);
    /* An inactive but valid namespace reads as zeroes; 0 and broadcast are invalid. */
    memset(data(&r, 0), 0xff, PAGE);
    cmd.nsid = 200;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK(zeroes(id, PAGE));
    cmd.nsid = 0;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_NSID);
    cmd.nsid = 0xffffffff;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_NSID);
    cmd.nsid = 257;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_NSID);

    /* Active namespace list above NSID 1: 2, 3, then zeroes. */
    cmd = (struct sqe){.cdw0 = 0x06, .nsid = 1, .prp1 = r.data.la, .cdw10 = 2};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(id[0], 2);
    CHECK_EQ_U(id[4], 3);
    CHECK_EQ_U(id[8], 0);
    cmd.nsid = 0xfffffffe;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_NSID);

    /* Descriptors: a UUID and the command set; absent namespace: invalid field. */
    cmd = (struct sqe){.cdw0 = 0x06, .nsid = 3, .prp1 = r.data.la, .cdw10 = 3};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(id[0], 3);
    CHECK_EQ_U(id[1], 16);
    CHECK_EQ_U(id[20], 4);
    cmd.nsid = 4;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    /* An unknown CNS. */
    cmd.cdw10 = 0x55;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    rig_close(&r);
}

TEST(admin_bad_opcode_and_flags)
{
    struct rig r;
    struct sqe cmd = {.cdw0 = 0x7f};

    rig_open(&r, "sim", "nvme");
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_OPCODE);
    cmd.cdw0 = 0x80; /* Format NVM: not offered */
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_OPCODE);
    cmd = (struct sqe){.cdw0 = 0x06 | 1u << 14, .cdw10 = 1, .prp1 = r.data.la}; /* SGL */
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    cmd.cdw0 = 0x06 | 1u << 8; /* fused */
    CHECK_EQ_U(admin(&r, &cmd), 0x02);
    rig_close(&r);
}

TEST(create_delete_queues)
{
    struct rig r;
    struct sqe cmd;
    uint64_t la;

    rig_open(&r, "sim", "nvme:queues=4");
    CHECK_OK(dmahal_common_alloc(r.a, 32 * PAGE, 0, &r.io.sq));
    CHECK_OK(dmahal_common_alloc(r.a, 8 * PAGE, 0, &r.io.cq));
    la = r.io.cq.la;
    /* Create I/O CQ: qid 0, beyond the queue count; size 1 entry, beyond MQES; base inside a
     * page; a vector without MSI-X; not physically contiguous. */
    cmd = (struct sqe){.cdw0 = 0x05, .prp1 = la, .cdw10 = 7u << 16 | 0, .cdw11 = 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd.cdw10 = 7u << 16 | 5;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd.cdw10 = 0u << 16 | 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_QSIZE);
    cmd.cdw10 = 0x800u << 16 | 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_QSIZE);
    cmd.cdw10 = 7u << 16 | 1;
    cmd.prp1 = la + 512;
    CHECK_EQ_U(admin(&r, &cmd), ST_PRP_OFFSET);
    cmd.prp1 = la;
    cmd.cdw11 = 1u << 16 | 3;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_VECTOR);
    cmd.cdw11 = 0;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    cmd.cdw11 = 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID); /* exists */

    /* Create I/O SQ: to an absent CQ, qid 0 / beyond / existing, sizes, offset, PC. */
    la = r.io.sq.la;
    cmd = (struct sqe){.cdw0 = 0x01, .prp1 = la, .cdw10 = 7u << 16 | 1, .cdw11 = 2u << 16 | 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_CQ_INVALID);
    cmd.cdw11 = 0u << 16 | 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_CQ_INVALID);
    cmd.cdw11 = 1u << 16 | 1;
    cmd.cdw10 = 7u << 16 | 0;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd.cdw10 = 7u << 16 | 5;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd.cdw10 = 0u << 16 | 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_QSIZE);
    cmd.cdw10 = 7u << 16 | 1;
    cmd.prp1 = la + 64;
    CHECK_EQ_U(admin(&r, &cmd), ST_PRP_OFFSET);
    cmd.prp1 = la;
    cmd.cdw11 = 1u << 16;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    cmd.cdw11 = 1u << 16 | 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);

    /* A CQ with a SQ on it cannot go; absent queues; then in order. */
    cmd = (struct sqe){.cdw0 = 0x04, .cdw10 = 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_QDEL);
    cmd.cdw10 = 2;
    CHECK_EQ_U(admin(&r, &cmd), ST_CQ_INVALID);
    cmd.cdw10 = 0; /* the admin queue is not deleted this way */
    CHECK_EQ_U(admin(&r, &cmd), ST_CQ_INVALID);
    cmd = (struct sqe){.cdw0 = 0x00, .cdw10 = 2};
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd.cdw10 = 0;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd.cdw10 = 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_QID);
    cmd = (struct sqe){.cdw0 = 0x04, .cdw10 = 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(admin(&r, &cmd), ST_CQ_INVALID);
    /* And again, with the queues working. */
    io_create(&r, 8);
    memset(data(&r, 0), 0x5a, 512);
    cmd = rw_cmd(0x01, 1, 0, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    rig_close(&r);
}

TEST(features)
{
    struct rig r;
    struct sqe cmd;

    rig_open(&r, "sim", "nvme:queues=16");
    /* Number of queues: what the controller has, whatever is asked; 0xffff is invalid. */
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x07};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 15u | 15u << 16);
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x07, .cdw11 = 3u << 16 | 3};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 15u | 15u << 16);
    cmd.cdw11 = 0xffff;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    /* Interrupt coalescing: accepted and read back. */
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x08, .cdw11 = 0x0a04};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x08};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 0x0a04);
    cmd.cdw10 = 0x08 | 1u << 8; /* its default */
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 0);
    cmd.cdw10 = 0x08 | 3u << 8; /* its capabilities: changeable */
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 0x4);
    cmd.cdw10 = 0x08 | 4u << 8;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    /* Volatile write cache: on by default, can be turned off. */
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x06};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 1);
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x06, .cdw11 = 0};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x06};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 0);
    /* Arbitration is not changeable; nothing is saveable; unknown features are invalid. */
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x01, .cdw11 = 3};
    CHECK_EQ_U(admin(&r, &cmd), ST_NOT_CHANGABLE);
    cmd.cdw10 = 0x08 | 1u << 31;
    CHECK_EQ_U(admin(&r, &cmd), ST_NOT_SAVEABLE);
    cmd.cdw10 = 0x7e;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x03};
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    /* Error recovery is per namespace. */
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x05, .nsid = 0};
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_NSID);
    cmd.nsid = 2;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    cmd.nsid = 1;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    /* Interrupt vector configuration: the admin vector does no coalescing. */
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x09, .cdw11 = 0};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0, 1u << 16);
    cmd.cdw11 = 17;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    /* Once a queue exists, the number of queues is fixed. */
    io_create(&r, 8);
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x07, .cdw11 = 0};
    CHECK_EQ_U(admin(&r, &cmd), ST_SEQ);
    rig_close(&r);
}

TEST(log_pages_and_abort)
{
    struct rig r;
    struct sqe cmd;
    const unsigned char *log;
    uint64_t v;

    rig_open(&r, "sim", "nvme");
    io_create(&r, 8);
    for (int i = 0; i < 3; i++) {
        cmd = rw_cmd(0x01, 1, 8 * i, 8, r.data.la, 0);
        CHECK_EQ_U(io(&r, &cmd), ST_OK);
    }
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    /* SMART, whole controller: 512 bytes (NUMD 127). */
    log = data(&r, PAGE);
    memset(data(&r, PAGE), 0xee, PAGE);
    cmd = (struct sqe){
        .cdw0 = 0x02, .nsid = 0xffffffff, .prp1 = r.data.la + PAGE, .cdw10 = 127u << 16 | 0x02};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(log[1] | log[2] << 8, 0x143);
    memcpy(&v, log + 64, 8);
    CHECK_EQ_U(v, 1); /* host read commands */
    memcpy(&v, log + 80, 8);
    CHECK_EQ_U(v, 3); /* host write commands */
    memcpy(&v, log + 48, 8);
    CHECK_EQ_U(v, 1);           /* 24 units of 512 bytes: one thousand, rounded up */
    CHECK_EQ_U(log[512], 0xee); /* nothing past the log */
    /* With an offset: the log's tail only. */
    cmd.cdw10 = 1u << 16 | 0x02;
    cmd.cdw12 = 64;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    memcpy(&v, log, 8);
    CHECK_EQ_U(v, 1);
    cmd.cdw12 = 2;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD); /* not dword-aligned */
    cmd.cdw12 = 512;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD); /* past the log */
    cmd.cdw12 = 0;
    cmd.nsid = 9;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_NSID);
    /* Error information: one zeroed 64-byte entry; firmware slot; an unknown log. */
    memset(data(&r, PAGE), 0xee, PAGE);
    cmd = (struct sqe){.cdw0 = 0x02, .prp1 = r.data.la + PAGE, .cdw10 = 15u << 16 | 0x01};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK(zeroes(log, 64));
    CHECK_EQ_U(log[64], 0xee);
    cmd.cdw10 = 127u << 16 | 0x03;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(log[0], 1);
    CHECK(!memcmp(log + 8, "7.2.0   ", 8));
    cmd.cdw10 = 127u << 16 | 0x7f;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    /* Beyond MDTS. */
    cmd.cdw10 = 0xffffu << 16 | 0x02;
    cmd.cdw11 = 0xff;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);

    /* Abort: never anything outstanding, so "not aborted"; an absent queue is invalid. */
    cmd = (struct sqe){.cdw0 = 0x08, .cdw10 = 5u << 16 | 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ_U(r.last.dw0 & 1, 1);
    cmd.cdw10 = 5u << 16 | 9;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_FIELD);
    rig_close(&r);
}

/* ---- I/O commands -------------------------------------------------------------------------- */

TEST(read_write_flush_zeroes_deallocate)
{
    struct rig r;
    struct sqe cmd;
    uint64_t *ranges;

    rig_open(&r, "sim", "nvme:size=16M");
    io_create(&r, 16);
    fill(data(&r, 0), 64 * 1024, 7);
    cmd = rw_cmd(0x01, 1, 100, 128, r.data.la, 0);
    cmd.prp2 = r.list.la;
    for (unsigned i = 0; i < 15; i++)
        ((uint64_t *)r.list.va)[i] = r.data.la + (i + 1) * PAGE;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(data(&r, 0), 0, 64 * 1024);
    cmd.cdw0 = 0x02;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(data(&r, 0), 64 * 1024, 7));
    /* Flush, of the namespace and of all of them. */
    cmd = (struct sqe){.cdw0 = 0x00, .nsid = 1};
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    cmd.nsid = 0xffffffff;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    /* Write Zeroes over blocks 108..115 (no data pointer). */
    cmd = rw_cmd(0x08, 1, 108, 8, 0, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    /* Deallocate blocks 100..103 and a range outside the namespace (skipped). */
    ranges = (uint64_t *)data(&r, 128 * 1024);
    memset(ranges, 0, 64);
    ranges[0] = (uint64_t)4 << 32;
    ranges[1] = 100;
    ranges[2] = (uint64_t)4 << 32;
    ranges[3] = 1ull << 40;
    cmd = (struct sqe){
        .cdw0 = 0x09, .nsid = 1, .prp1 = r.data.la + 128 * 1024, .cdw10 = 1, .cdw11 = 0x4};
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(data(&r, 0), 0xff, 64 * 1024);
    cmd = rw_cmd(0x02, 1, 100, 16, r.data.la, r.data.la + PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    fill(data(&r, 256 * 1024), 64 * 1024, 7); /* what was written, for reference */
    CHECK(zeroes(data(&r, 0), 4 * 512));
    CHECK(!memcmp(data(&r, 4 * 512), data(&r, 256 * 1024 + 4 * 512), 4 * 512));
    CHECK(zeroes(data(&r, 0) + 8 * 512, 8 * 512));
    /* A DSM without deallocate changes nothing. */
    cmd = (struct sqe){.cdw0 = 0x09, .nsid = 1, .prp1 = r.data.la + 128 * 1024, .cdw10 = 0};
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    rig_close(&r);
}

TEST(io_errors)
{
    struct rig r;
    struct sqe cmd;
    uint64_t nsze = (16u << 20) / 512;

    rig_open(&r, "sim", "nvme:size=16M");
    io_create(&r, 16);
    /* LBA range: the last block is fine, one past is not; neither is a wrapping range. */
    cmd = rw_cmd(0x02, 1, nsze - 1, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    cmd = rw_cmd(0x02, 1, nsze - 1, 2, r.data.la, r.data.la + PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_LBA_RANGE);
    cmd = rw_cmd(0x01, 1, UINT64_MAX, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_LBA_RANGE);
    cmd = rw_cmd(0x08, 1, nsze, 1, 0, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_LBA_RANGE);
    /* Namespaces: 0 is invalid, 2 does not exist, broadcast only for Flush. */
    cmd = rw_cmd(0x02, 0, 0, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_NSID);
    cmd.nsid = 2;
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_FIELD);
    cmd.nsid = 0xffffffff;
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_FIELD);
    cmd.nsid = 300;
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_NSID);
    /* Opcodes the controller does not have, SGLs, fused commands. */
    cmd = rw_cmd(0x7c, 1, 0, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_OPCODE);
    cmd = rw_cmd(0x06, 1, 0, 1, r.data.la, 0); /* an admin opcode (Identify) */
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_OPCODE);
    cmd = rw_cmd(0x02 | 3u << 14, 1, 0, 1, r.data.la, 0); /* PSDT 11b: reserved */
    CHECK_EQ_U(io(&r, &cmd), 0x02);
    cmd = rw_cmd(0x02 | 1u << 8, 1, 0, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), 0x02);
    /* MDTS: 512 KiB is the most; one block more is refused before anything moves. */
    cmd = rw_cmd(0x02, 1, 0, 1025, r.data.la, r.list.la);
    CHECK_EQ_U(io(&r, &cmd), ST_BAD_FIELD);
    rig_close(&r);
}

/* ---- PRPs ---------------------------------------------------------------------------------- */

TEST(prp_layouts)
{
    struct rig r;
    struct sqe cmd;
    uint64_t *list;
    unsigned char *d;

    rig_open(&r, "sim", "nvme:size=16M");
    io_create(&r, 16);
    list = r.list.va;
    d = data(&r, 0);
    /* PRP1 inside its page, the rest through PRP2 as the second page. */
    fill(d + 1024, 4096, 1);
    cmd = rw_cmd(0x01, 1, 0, 8, r.data.la + 1024, r.data.la + PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(d, 0, 3 * PAGE);
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la + 1024, r.data.la + PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(d + 1024, 4096, 1));
    CHECK(zeroes(d, 1024));
    CHECK(zeroes(d + 1024 + 4096, 2 * PAGE - 1024));

    /* Data pages out of order through a list: the device follows the list, not addresses. */
    fill(d, 3 * PAGE, 2);
    list[0] = r.data.la + 2 * PAGE;
    list[1] = r.data.la + 1 * PAGE;
    cmd = rw_cmd(0x01, 1, 64, 24, r.data.la, r.list.la);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(d, 0, 3 * PAGE);
    list[0] = r.data.la + PAGE;
    list[1] = r.data.la + 2 * PAGE;
    cmd = rw_cmd(0x02, 1, 64, 24, r.data.la, r.list.la);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    fill(d + 3 * PAGE, 3 * PAGE, 2); /* the reference */
    CHECK(!memcmp(d, d + 3 * PAGE, PAGE));
    CHECK(!memcmp(d + PAGE, d + 3 * PAGE + 2 * PAGE, PAGE));
    CHECK(!memcmp(d + 2 * PAGE, d + 3 * PAGE + PAGE, PAGE));

    /* The list starts 16 bytes before its page ends: two entries there, the second chaining
     * to a list page that holds the rest (one page of PRP1 + 1 + 2 = 4 pages). */
    fill(d, 4 * PAGE, 3);
    list[510] = r.data.la + PAGE;
    list[511] = r.list.la + PAGE;
    list[512] = r.data.la + 2 * PAGE;
    list[513] = r.data.la + 3 * PAGE;
    cmd = rw_cmd(0x01, 1, 128, 32, r.data.la, r.list.la + 510 * 8);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(d, 0, 4 * PAGE);
    cmd.cdw0 = 0x02;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(d, 4 * PAGE, 3));
    /* The same list with exactly as many entries as its page holds: no chaining. */
    memset(d, 0, 4 * PAGE);
    cmd = rw_cmd(0x02, 1, 128, 24, r.data.la, r.list.la + 510 * 8);
    list[511] = r.data.la + 2 * PAGE;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(d, 3 * PAGE, 3));
    rig_close(&r);
}

TEST(prp_rules_broken)
{
    struct rig r;
    struct sqe cmd;
    uint64_t *list;

    rig_open(&r, "sim", "nvme:size=16M");
    io_create(&r, 16);
    list = r.list.va;
    /* PRP1 not dword-aligned. */
    cmd = rw_cmd(0x02, 1, 0, 1, r.data.la + 2, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_PRP_OFFSET);
    /* PRP2 as the second page, but with an offset. */
    cmd = rw_cmd(0x02, 1, 0, 16, r.data.la, r.data.la + PAGE + 512);
    CHECK_EQ_U(io(&r, &cmd), ST_PRP_OFFSET);
    /* A list entry with an offset. */
    list[0] = r.data.la + PAGE;
    list[1] = r.data.la + 2 * PAGE + 8;
    cmd = rw_cmd(0x02, 1, 0, 24, r.data.la, r.list.la);
    CHECK_EQ_U(io(&r, &cmd), ST_PRP_OFFSET);
    /* A list pointer that is not qword-aligned. */
    list[1] = r.data.la + 2 * PAGE;
    cmd = rw_cmd(0x02, 1, 0, 24, r.data.la, r.list.la + 4);
    CHECK_EQ_U(io(&r, &cmd), ST_PRP_OFFSET);
    /* A chain pointer with an offset. */
    list[510] = r.data.la + PAGE;
    list[511] = r.list.la + PAGE + 8;
    cmd = rw_cmd(0x02, 1, 0, 32, r.data.la, r.list.la + 510 * 8);
    CHECK_EQ_U(io(&r, &cmd), ST_PRP_OFFSET);
    /* Queue bases must be page-aligned too (Create I/O queues, above); admin data as well
     * go through the same rules. */
    cmd = (struct sqe){.cdw0 = 0x06, .cdw10 = 1, .prp1 = r.data.la + 1, .prp2 = 0};
    CHECK_EQ_U(admin(&r, &cmd), ST_PRP_OFFSET);
    rig_close(&r);
}

TEST(prp_outside_any_mapping_is_a_transfer_error)
{
    struct rig r;
    struct sqe cmd;

    rig_open(&r, "sim:iommu=on", "nvme:size=16M");
    io_create(&r, 16);
    /* Nothing is mapped at IOVA 0 nor far above the buffers: the IOMMU faults, the command
     * completes with Data Transfer Error and the controller carries on. */
    cmd = rw_cmd(0x02, 1, 0, 8, 0x7f0000000000ull, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_XFER);
    cmd = rw_cmd(0x01, 1, 0, 24, r.data.la, 0x7f0000000000ull); /* the list itself */
    CHECK_EQ_U(io(&r, &cmd), ST_XFER);
    cmd = (struct sqe){.cdw0 = 0x06, .cdw10 = 1, .prp1 = 0x7f0000000000ull};
    CHECK_EQ_U(admin(&r, &cmd), ST_XFER);
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY);
    rig_close(&r);
}

TEST(queue_faults_are_fatal)
{
    struct rig r;
    struct sqe cmd = {.cdw0 = 0x0a, .cdw10 = 0x07};
    struct cqe e;

    /* An admin SQ the device cannot read: CSTS.CFS, and nothing more is processed. */
    rig_dev(&r, "sim:iommu=on", "nvme");
    dmahal_mmio_write32(r.d, 0, AQA, 0xf000f);
    dmahal_mmio_write64(r.d, 0, ASQ, 0x7f0000000000ull);
    dmahal_mmio_write64(r.d, 0, ACQ, r.admin.cq.la);
    dmahal_mmio_write32(r.d, 0, CC, CC_READY);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY | CSTS_CFS);
    disable(&r);
    /* An admin CQ it cannot write. */
    r.admin = (struct q){r.admin.sq, r.admin.cq, 0, ADEPTH, 0, 0, 0, 1};
    dmahal_mmio_write64(r.d, 0, ASQ, r.admin.sq.la);
    dmahal_mmio_write64(r.d, 0, ACQ, 0x7f0000000000ull);
    dmahal_mmio_write32(r.d, 0, CC, CC_READY);
    queue_cmd(&r.admin, &cmd);
    queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY | CSTS_CFS);
    CHECK(!reap(&r, &r.admin, &e));
    /* A reset brings it back. */
    disable(&r);
    enable(&r);
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    rig_close(&r);
}

/* ---- queues ---------------------------------------------------------------------------------- */

TEST(phase_tags_wrap)
{
    struct rig r;
    struct sqe cmd;

    rig_open(&r, "sim", "nvme:size=16M");
    io_create(&r, 4);
    /* Three laps of a 4-entry queue: the phase flips at each wrap, and the reported SQ head
     * wraps with it (submit() checks both). */
    for (unsigned i = 0; i < 12; i++) {
        cmd = rw_cmd(0x02, 1, i, 1, r.data.la, 0);
        CHECK_EQ_U(io(&r, &cmd), ST_OK);
        CHECK_EQ_U(r.io.phase, (i + 1) / 4 % 2 ? 0u : 1u);
    }
    /* Admin queue too, past its 16 entries. */
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x07};
    for (unsigned i = 0; i < 40; i++)
        CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    rig_close(&r);
}

TEST(completion_queue_full_holds_commands)
{
    struct rig r;
    struct sqe cmd = {.cdw0 = 0x05, .cdw10 = 1u << 16 | 1, .cdw11 = 1}; /* CQ of 2: holds 1 */
    struct cqe e;
    uint16_t cid[3];

    rig_open(&r, "sim", "nvme:size=16M");
    CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &r.io.sq));
    CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &r.io.cq));
    cmd.prp1 = r.io.cq.la;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    cmd = (struct sqe){
        .cdw0 = 0x01, .prp1 = r.io.sq.la, .cdw10 = 7u << 16 | 1, .cdw11 = 1u << 16 | 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    r.io = (struct q){r.io.sq, r.io.cq, 1, 8, 0, 0, 0, 1};
    for (int i = 0; i < 3; i++) {
        cmd = rw_cmd(0x02, 1, (uint64_t)i, 1, r.data.la, 0);
        cid[i] = queue_cmd(&r.io, &cmd);
    }
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 1), r.io.tail);
    /* One completion fits; the others wait, unfetched, until the host frees the entry. */
    CHECK_EQ_U((((struct cqe *)r.io.cq.va)[1].dw3 >> 16) & 1, 0);
    r.io.depth = 2; /* from here on the queue's depth is the completion queue's */
    for (int i = 0; i < 3; i++) {
        CHECK(reap(&r, &r.io, &e));
        CHECK_EQ_U(e.dw3 & 0xffff, cid[i]);
        CHECK_EQ_U(e.dw2 & 0xffff, (unsigned)(i + 1)); /* SQ head: fetched one by one */
    }
    CHECK(!reap(&r, &r.io, &e));
    rig_close(&r);
}

TEST(bad_doorbells_are_ignored)
{
    struct rig r;
    struct sqe cmd = {.cdw0 = 0x0a, .cdw10 = 0x07};
    struct cqe e;

    rig_open(&r, "sim", "nvme:queues=2,dstrd=1");
    CHECK_EQ_U(r.stride, 8);
    /* Absent queues, values beyond the queue, offsets between doorbells. */
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 1), 1);
    dmahal_mmio_write32(r.d, 0, cq_db(&r, 2), 1);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), ADEPTH);
    dmahal_mmio_write32(r.d, 0, cq_db(&r, 0), 0xffff);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 3), 1); /* past the last queue pair */
    queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0) + 4, r.admin.tail);
    CHECK(!reap(&r, &r.admin, &e));
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw3 >> 17, ST_OK);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY);
    rig_close(&r);
}

/* ---- namespaces --------------------------------------------------------------------------------
 */

TEST(namespaces_in_a_file_persist)
{
    char path[] = "/tmp/dmahal-nvme-XXXXXX";
    char name[128];
    struct rig r;
    struct sqe cmd;
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    close(fd);
    snprintf(name, sizeof(name), "nvme:size=1M,lba=4096,namespaces=2,file=%s", path);
    rig_open(&r, "sim", name);
    io_create(&r, 8);
    fill(data(&r, 0), 2 * PAGE, 11);
    cmd = rw_cmd(0x01, 1, 255, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    fill(data(&r, 0), 2 * PAGE, 12);
    cmd = rw_cmd(0x01, 2, 0, 2, r.data.la, r.data.la + PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    cmd = rw_cmd(0x01, 2, 256, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_LBA_RANGE);
    rig_close(&r);

    rig_open(&r, "sim", name);
    io_create(&r, 8);
    memset(data(&r, 0), 0, 2 * PAGE);
    cmd = rw_cmd(0x02, 1, 255, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(data(&r, 0), PAGE, 11));
    cmd = rw_cmd(0x02, 2, 0, 2, r.data.la, r.data.la + PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(data(&r, 0), 2 * PAGE, 12));
    /* Write Zeroes and deallocate in a file. */
    cmd = rw_cmd(0x08, 2, 0, 1, 0, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    cmd = rw_cmd(0x02, 2, 0, 1, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(zeroes(data(&r, 0), PAGE));
    rig_close(&r);
    unlink(path);
}

TEST(verifier_quiet_on_a_good_driver)
{
    struct rig r;
    struct sqe cmd;

    /* Every access the model makes is in a live buffer the driver gave it: with the
     * verifier on (any report aborts), reads and writes through a PRP list pass. */
    setenv("DMAHAL_VERIFY", "abort", 1);
    rig_open(&r, "sim:iommu=on,coherent=no", "nvme:size=16M");
    io_create(&r, 8);
    cmd = rw_cmd(0x01, 1, 0, 24, r.data.la + 512, r.list.la);
    ((uint64_t *)r.list.va)[0] = r.data.la + PAGE;
    ((uint64_t *)r.list.va)[1] = r.data.la + 2 * PAGE;
    ((uint64_t *)r.list.va)[2] = r.data.la + 3 * PAGE;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    rig_close(&r);
    unsetenv("DMAHAL_VERIFY");
}

/* ---- SGLs ----------------------------------------------------------------------------------- */

#define SGL_DATA    0x00
#define SGL_BUCKET  0x10
#define SGL_SEGMENT 0x20
#define SGL_LAST    0x30

struct sgld {
    uint64_t addr;
    uint32_t len;
    uint8_t rsvd[3];
    uint8_t type;
};

static struct sqe sgl_cmd(unsigned op, uint64_t slba, unsigned nlb, struct sgld sgl1)
{
    struct sqe cmd = rw_cmd(op | 1u << 14, 1, slba, nlb, 0, 0);

    memcpy(&cmd.prp1, &sgl1, 8);
    memcpy(&cmd.prp2, (const char *)&sgl1 + 8, 8);
    return cmd;
}

static struct sgld sgl(uint64_t addr, uint32_t len, uint8_t type)
{
    return (struct sgld){.addr = addr, .len = len, .type = type};
}

TEST(sgl_layouts)
{
    struct rig r;
    struct sqe cmd;
    struct sgld *seg;
    unsigned char *d;
    const unsigned char *id;

    rig_open(&r, "sim", "nvme:size=16M");
    io_create(&r, 16);
    d = data(&r, 0);
    seg = r.list.va;
    /* Offered: SGLs without alignment rules, and bit buckets. */
    cmd = (struct sqe){.cdw0 = 0x06, .cdw10 = 1, .prp1 = r.data.la};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    id = data(&r, 0);
    CHECK_EQ_U(id[536] | id[538] << 16, 0x10001);

    /* One data block, at an odd address. */
    fill(d + 3, 4096, 21);
    cmd = sgl_cmd(0x01, 0, 8, sgl(r.data.la + 3, 4096, SGL_DATA));
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(d, 0, 3 * PAGE);
    cmd.cdw0 = (cmd.cdw0 & ~0xffu) | 0x02;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(d + 3, 4096, 21));

    /* A segment of three pieces, chained to a last segment of one: 100 + 1000 + 2996 + 4096. */
    fill(d + 2 * PAGE, 8192, 22);
    seg[0] = sgl(r.data.la + 2 * PAGE, 100, SGL_DATA);
    seg[1] = sgl(r.data.la + 2 * PAGE + 100, 1000, SGL_DATA);
    seg[2] = sgl(r.data.la + 2 * PAGE + 1100, 2996, SGL_DATA);
    seg[3] = sgl(r.list.la + PAGE, 16, SGL_LAST);
    seg[256] = sgl(r.data.la + 3 * PAGE, 4096, SGL_DATA);
    cmd = sgl_cmd(0x01, 64, 16, sgl(r.list.la, 64, SGL_SEGMENT));
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    memset(d, 0, 8 * PAGE);
    cmd = rw_cmd(0x02, 1, 64, 16, r.data.la + 2 * PAGE, r.data.la + 3 * PAGE);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(d + 2 * PAGE, 8192, 22));

    /* A bit bucket in a Read drops its bytes: 1 KiB, 2 KiB dropped, 1 KiB. */
    memset(d, 0xee, 8 * PAGE);
    seg[0] = sgl(r.data.la, 1024, SGL_DATA);
    seg[1] = sgl(0, 2048, SGL_BUCKET);
    seg[2] = sgl(r.data.la + 1024, 1024, SGL_DATA);
    cmd = sgl_cmd(0x02, 64, 8, sgl(r.list.la, 48, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK(filled(d, 1024, 22));
    fill(d + 4 * PAGE, 4096, 22);
    CHECK(!memcmp(d + 1024, d + 4 * PAGE + 3072, 1024));
    CHECK_EQ_U(d[2048], 0xee);
    rig_close(&r);
}

TEST(sgl_errors)
{
    struct rig r;
    struct sqe cmd;
    struct sgld *seg;

    rig_open(&r, "sim:iommu=on", "nvme:size=16M");
    io_create(&r, 16);
    seg = r.list.va;
    /* Too little data, too much data. */
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.data.la, 4000, SGL_DATA));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0f);
    seg[0] = sgl(r.data.la, 4096, SGL_DATA);
    seg[1] = sgl(r.data.la + PAGE, 512, SGL_DATA);
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 32, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0f);
    /* Segment descriptors: empty, not whole descriptors, not a segment at all (SGL1 a bit
     * bucket), a segment pointer in the middle of a segment, an unknown type. */
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 0, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0d);
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 20, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0d);
    cmd = sgl_cmd(0x02, 0, 8, sgl(0, 4096, SGL_BUCKET));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0d);
    seg[0] = sgl(r.list.la + PAGE, 16, SGL_SEGMENT);
    seg[1] = sgl(r.data.la, 4096, SGL_DATA);
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 32, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0e);
    seg[0] = sgl(r.data.la, 4096, 0x70);
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 16, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x11);
    /* A Last Segment that points on; a segment that points at itself (no progress). */
    seg[0] = sgl(r.data.la, 1024, SGL_DATA);
    seg[1] = sgl(r.list.la + PAGE, 16, SGL_SEGMENT);
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 32, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0d);
    seg[0] = sgl(r.list.la, 16, SGL_SEGMENT);
    cmd = sgl_cmd(0x02, 0, 8, sgl(r.list.la, 16, SGL_SEGMENT));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x0d);
    /* A segment or data block the bus refuses. */
    cmd = sgl_cmd(0x02, 0, 8, sgl(0x7f0000000000ull, 16, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), ST_XFER);
    cmd = sgl_cmd(0x02, 0, 8, sgl(0x7f0000000000ull, 4096, SGL_DATA));
    CHECK_EQ_U(io(&r, &cmd), ST_XFER);
    /* More descriptors than the controller maps (QEMU's 1024). */
    for (unsigned i = 0; i < 1025; i++)
        ((struct sgld *)r.data.va)[i] = sgl(r.list.la + (i % 2) * 64, 4, SGL_DATA);
    cmd = sgl_cmd(0x02, 0, 9, sgl(r.data.la, 1025 * 16, SGL_LAST));
    CHECK_EQ_U(io(&r, &cmd), DNR | 0x06);
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    rig_close(&r);
}

/* ---- asynchronous events ------------------------------------------------------------------------
 */

/* Sends an Asynchronous Event Request: it stays outstanding. Returns its command identifier. */
static uint16_t aer(struct rig *r)
{
    struct sqe cmd = {.cdw0 = 0x0c};
    uint16_t cid = queue_cmd(&r->admin, &cmd);
    struct cqe e;

    dmahal_mmio_write32(r->d, 0, sq_db(r, 0), r->admin.tail);
    CHECK(!reap(r, &r->admin, &e));
    return cid;
}

TEST(asynchronous_events)
{
    struct rig r;
    struct sqe cmd;
    struct cqe e;
    uint16_t cid, cid2, log_cid;

    rig_open(&r, "sim", "nvme:queues=2");
    /* Without a request outstanding a bad doorbell is only ignored. */
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), 1);
    cid = aer(&r);
    /* A doorbell of no queue: an error event, Invalid Doorbell Register, Error log. */
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), 1);
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw3 & 0xffff, cid);
    CHECK_EQ_U(e.dw3 >> 17, ST_OK);
    CHECK_EQ_U(e.dw0, 0x010000);
    /* Error events are now masked until the host reads the Error log (RAE clear). */
    cid2 = aer(&r);
    dmahal_mmio_write32(r.d, 0, cq_db(&r, 0), 0xfff); /* value beyond the queue */
    CHECK(!reap(&r, &r.admin, &e));
    cmd = (struct sqe){.cdw0 = 0x02, .prp1 = r.data.la, .cdw10 = 15u << 16 | 1u << 15 | 0x01};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK); /* RAE set: still masked */
    cmd.cdw10 = 15u << 16 | 0x01;
    log_cid = queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK(reap(&r, &r.admin, &e)); /* the event, reported as the log is read */
    CHECK_EQ_U(e.dw3 & 0xffff, cid2);
    CHECK_EQ_U(e.dw0, 0x010100); /* Invalid Doorbell Write Value */
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw3 & 0xffff, log_cid);
    /* Four requests at most (AERL 3): the fifth fails. */
    for (int i = 0; i < 4; i++)
        aer(&r);
    cmd = (struct sqe){.cdw0 = 0x0c};
    CHECK_EQ_U(admin(&r, &cmd), 0x105);
    /* A SMART event: temperature events enabled, threshold set below the temperature. */
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x0b, .cdw11 = 0x2};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x04, .cdw11 = 300};
    log_cid = queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw0, 0x020101); /* SMART, temperature threshold, SMART log */
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw3 & 0xffff, log_cid);
    /* A reset forgets outstanding requests. */
    disable(&r);
    enable(&r);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), 1);
    CHECK(!reap(&r, &r.admin, &e));
    rig_close(&r);
}

TEST(compare_and_verify)
{
    char path[] = "/tmp/dmahal-nvme-cmp-XXXXXX";
    const char *names[2] = {"nvme:size=16M", NULL};
    char file[96];
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    close(fd);
    snprintf(file, sizeof(file), "nvme:size=16M,file=%s", path);
    names[1] = file;
    for (int k = 0; k < 2; k++) {
        struct rig r;
        struct sqe cmd;
        const unsigned char *id;

        rig_open(&r, "sim", names[k]);
        io_create(&r, 8);
        cmd = (struct sqe){.cdw0 = 0x06, .cdw10 = 1, .prp1 = r.data.la};
        CHECK_EQ_U(admin(&r, &cmd), ST_OK);
        id = data(&r, 0);
        CHECK_EQ_U(id[520] & 0x81, 0x81); /* ONCS: Compare, Verify */
        fill(data(&r, 0), 2 * PAGE, 40);
        cmd = rw_cmd(0x01, 1, 16, 16, r.data.la, r.data.la + PAGE);
        CHECK_EQ_U(io(&r, &cmd), ST_OK);
        /* The same data compares equal; one byte off in the second page does not. */
        cmd.cdw0 = 0x05;
        CHECK_EQ_U(io(&r, &cmd), ST_OK);
        data(&r, 0)[PAGE + 77] ^= 1;
        CHECK_EQ_U(io(&r, &cmd), DNR | 0x285);
        cmd = rw_cmd(0x05, 1, (16u << 20) / 512, 1, r.data.la, 0);
        CHECK_EQ_U(io(&r, &cmd), ST_LBA_RANGE);
        /* Verify: in range, no data; out of range; beyond the size limit. */
        cmd = rw_cmd(0x0c, 1, 0, 1024, 0, 0);
        CHECK_EQ_U(io(&r, &cmd), ST_OK);
        cmd = rw_cmd(0x0c, 1, (16u << 20) / 512 - 1, 2, 0, 0);
        CHECK_EQ_U(io(&r, &cmd), ST_LBA_RANGE);
        cmd = rw_cmd(0x0c, 1, 0, 1025, 0, 0);
        CHECK_EQ_U(io(&r, &cmd), ST_BAD_FIELD);
        rig_close(&r);
    }
    unlink(path);
}

/* ---- robustness ------------------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A data pointer: inside the data buffer (often), anywhere (sometimes). */
static uint64_t rnd_addr(struct rig *r, uint64_t *s)
{
    uint64_t v = rnd(s);

    switch (v % 4) {
    case 0:
        return v;
    case 1:
        return r->data.la + (v >> 8) % r->data.len;
    default:
        return r->data.la + ((v >> 8) % (r->data.len / PAGE)) * PAGE;
    }
}

TEST(random_commands_complete_and_never_break_the_controller)
{
    static const uint8_t admin_ops[] = {0x02, 0x06, 0x08, 0x09, 0x0a, 0x03, 0x7f, 0x80, 0xc1};
    uint64_t seed = 0x2545f4914f6cdd1dull;
    unsigned ok = 0, refused = 0;
    struct rig r;

    rig_open(&r, "sim:iommu=on", "nvme:size=16M,namespaces=2");
    io_create(&r, 16);
    for (unsigned i = 0; i < 4000; i++) {
        struct sqe cmd;
        uint32_t *dw = (uint32_t *)&cmd;
        unsigned st;

        for (unsigned k = 0; k < 16; k++)
            dw[k] = (uint32_t)rnd(&seed);
        cmd.prp1 = rnd_addr(&r, &seed);
        cmd.prp2 = rnd_addr(&r, &seed);
        if (rnd(&seed) % 2)
            cmd.nsid = (uint32_t)(rnd(&seed) % 4);
        if (rnd(&seed) % 2)
            cmd.cdw12 &= 0xff; /* transfers small enough to pass MDTS, often */
        if (rnd(&seed) % 8)    /* no fused command, PRPs: most of the time */
            cmd.cdw0 &= ~0xff00u;
        if (rnd(&seed) % 4) { /* a start inside the namespace: most of the time */
            cmd.cdw10 %= 32768;
            cmd.cdw11 = 0;
        }
        if (i % 3 == 0) {
            /* Admin: everything but queue deletion and event requests, which change what
             * the rest of the test relies on. */
            cmd.cdw0 = (cmd.cdw0 & ~0xffu) | admin_ops[rnd(&seed) % sizeof(admin_ops)];
            st = admin(&r, &cmd);
        } else {
            static const uint8_t io_ops[] = {0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x0c};
            uint64_t v = rnd(&seed);

            cmd.cdw0 = (cmd.cdw0 & ~0xffu) | (v % 4 ? io_ops[(v >> 8) % 7] : (v >> 8) % 256);
            st = io(&r, &cmd);
        }
        if (st)
            refused++;
        else
            ok++;
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, CSTS), CSTS_RDY);
    }
    /* Both kinds, plenty of each: the mix reaches the commands' work, not only their checks. */
    printf("%u completed, %u refused\n", ok, refused);
    CHECK_GT(ok, 100);
    CHECK_GT(refused, 100);
    rig_close(&r);
}

TEST(timestamp)
{
    struct rig r;
    struct sqe cmd;
    uint64_t ts;

    rig_open(&r, "sim", "nvme");
    /* Since enable, from 0, no origin; set by the host, it counts on from there. */
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x0e, .prp1 = r.data.la};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    memcpy(&ts, data(&r, 0), 8);
    CHECK_LT_U(ts & 0xffffffffffffull, 60000);
    CHECK_EQ_U((ts >> 49) & 7, 0);
    ts = 1700000000000ull;
    memcpy(data(&r, PAGE), &ts, 8);
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x0e, .prp1 = r.data.la + PAGE};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x0e, .prp1 = r.data.la};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    memcpy(&ts, data(&r, 0), 8);
    CHECK_GE_U(ts & 0xffffffffffffull, 1700000000000ull);
    CHECK_LT_U(ts & 0xffffffffffffull, 1700000060000ull);
    CHECK_EQ_U((ts >> 49) & 7, 1);
    cmd = (struct sqe){.cdw0 = 0x09, .cdw10 = 0x0e, .prp1 = r.data.la + 2};
    CHECK_EQ_U(admin(&r, &cmd), ST_PRP_OFFSET);
    rig_close(&r);
}

/* ---- interrupts through the platform ------------------------------------------------------- */

TEST(msix_per_queue_and_intx)
{
    struct rig r;
    struct sqe cmd = {.cdw0 = 0x05, .cdw10 = 7u << 16 | 1, .cdw11 = 3u << 16 | 0x3};
    uint32_t pba;

    rig_open(&r, "sim", "nvme:size=16M");
    /* Without MSI-X only vector 0 exists. */
    CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &r.io.sq));
    CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &r.io.cq));
    cmd.prp1 = r.io.cq.la;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_VECTOR);
    CHECK_EQ(dmahal_irq_count(r.d, DMAHAL_IRQ_MSIX), 65);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_MSIX, 0), 65);
    /* The I/O CQ on vector 3; 65 is beyond the table. */
    cmd.cdw11 = 65u << 16 | 0x3;
    CHECK_EQ_U(admin(&r, &cmd), ST_BAD_VECTOR);
    cmd.cdw11 = 3u << 16 | 0x3;
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    cmd = (struct sqe){
        .cdw0 = 0x01, .prp1 = r.io.sq.la, .cdw10 = 7u << 16 | 1, .cdw11 = 1u << 16 | 1};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    r.io = (struct q){r.io.sq, r.io.cq, 1, 8, 0, 0, 0, 1};
    /* Enabling unmasked the table, as the host's kernel does: the admin queue's completions
     * went out on vector 0. */
    CHECK_EQ(dmahal_irq_wait(r.d, 0, 0), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, 0x2000 + 3 * 16 + 12), 0);
    /* Masked by the driver: the message waits in the PBA, and goes when unmasked. */
    dmahal_mmio_write32(r.d, 0, 0x2000 + 3 * 16 + 12, 1);
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK_EQ(dmahal_irq_wait(r.d, 3, 0), -ETIMEDOUT);
    pba = dmahal_mmio_read32(r.d, 0, 0x3000);
    CHECK_EQ_U(pba, 1u << 3);
    dmahal_mmio_write32(r.d, 0, 0x2000 + 3 * 16 + 12, 0);
    CHECK_EQ(dmahal_irq_wait(r.d, 3, 0), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, 0x3000), 0);
    /* Unmasked: each completion is a message on the queue's vector, not on the admin's. */
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK_EQ(dmahal_irq_wait(r.d, 3, 0), 0);
    CHECK_EQ(dmahal_irq_wait(r.d, 0, 0), -ETIMEDOUT);
    CHECK_EQ(dmahal_irq_wait(r.d, 3, 0), -ETIMEDOUT);
    CHECK_OK(dmahal_irq_disable(r.d));
    /* Disabling masked the table again, as the kernel does. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, 0x2000 + 3 * 16 + 12), 1);
    /* INTx: the admin queue's completions raise the line (vector 0). */
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x07};
    CHECK_EQ_U(admin(&r, &cmd), ST_OK);
    CHECK_EQ(dmahal_irq_wait(r.d, 0, 0), 0);
    CHECK_OK(dmahal_irq_disable(r.d));
    rig_close(&r);
}

/* ---- time ------------------------------------------------------------------------------------ */

TEST(latency_defers_commands_in_virtual_time)
{
    struct rig r;
    struct sqe cmd;
    struct cqe e;

    rig_open(&r, "sim", "nvme:size=16M,latency=20000");
    /* Admin commands too: io_create waits for each. */
    CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &r.io.sq));
    CHECK_OK(dmahal_common_alloc(r.a, PAGE, 0, &r.io.cq));
    cmd = (struct sqe){.cdw0 = 0x0a, .cdw10 = 0x07};
    queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK(!reap(&r, &r.admin, &e)); /* not yet: the controller takes 20 us */
    CHECK_OK(dmahal_sim_advance(r.p, 10000));
    CHECK(!reap(&r, &r.admin, &e));
    CHECK_OK(dmahal_sim_advance(r.p, 20000));
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw3 >> 17, ST_OK);
    /* Several doorbells before the run: one run takes them all. */
    for (int i = 0; i < 3; i++) {
        queue_cmd(&r.admin, &cmd);
        dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    }
    CHECK_OK(dmahal_sim_advance(r.p, 40000));
    for (int i = 0; i < 3; i++)
        CHECK(reap(&r, &r.admin, &e));
    rig_close(&r);
}

TEST(latency_with_a_thread_per_device)
{
    struct rig r;
    struct sqe cmd = {.cdw0 = 0x0a, .cdw10 = 0x07};
    struct cqe e;
    int spins = 0;

    rig_open(&r, "sim:time=threads", "nvme:size=16M,latency=50000");
    queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    while (!reap(&r, &r.admin, &e)) {
        CHECK_LT(++spins, 100000);
        usleep(10);
    }
    CHECK_EQ_U(e.dw3 >> 17, ST_OK);
    rig_close(&r);
}
