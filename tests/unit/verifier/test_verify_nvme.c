/* SPDX-License-Identifier: MIT */
/*
 * test_verify_nvme.c - the verifier catching classic NVMe-driver bugs on the sim's NVMe model:
 * a PRP entry outside every buffer, a PRP list that runs across a page instead of chaining,
 * a data buffer unmapped while its command is still queued, a submission queue entry the
 * device reads before the CPU flushed it, and a completion read without the sync it needs
 * (stale data, and a report when the driver moves the queue's head past it).
 */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>

#include "test.h"

#include "unit/platform/sim/nvme_rig.h"

struct seen {
    int calls;
    int kind;
    dmahal_addr_t la;
};

static void on_report(const struct dmahal_report *r, void *ctx)
{
    struct seen *s = ctx;

    if (!s->calls++) {
        s->kind = r->kind;
        s->la = r->la;
    }
}

static void open_verified(struct rig *r, struct seen *s, const char *spec)
{
    memset(s, 0, sizeof(*s));
    rig_dev_verified(r, spec, "nvme:size=16M", on_report, s);
    enable(r);
    io_create(r, 8);
}

TEST(prp_entry_outside_every_buffer)
{
    struct rig r;
    struct seen s;
    struct sqe cmd;

    /* Without an IOMMU the access lands in RAM nobody gave the device: the command succeeds,
     * and the verifier names the address. */
    open_verified(&r, &s, "sim");
    cmd = rw_cmd(0x02, 1, 0, 8, 0x100000, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK_GE(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind),
              dmahal_report_kind_name(DMAHAL_REPORT_DEV_OUT_OF_BOUNDS));
    CHECK_EQ_U(s.la, 0x100000);
    dmahal_verify_clear(r.p);
    rig_close(&r);

    /* Behind an IOMMU it faults: Data Transfer Error, and the same report. */
    open_verified(&r, &s, "sim:iommu=on");
    cmd = rw_cmd(0x02, 1, 0, 8, 0x7f0000000000ull, 0);
    CHECK_EQ_U(io(&r, &cmd), ST_XFER);
    CHECK_GE(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind),
              dmahal_report_kind_name(DMAHAL_REPORT_DEV_OUT_OF_BOUNDS));
    CHECK_EQ_U(s.la, 0x7f0000000000ull);
    dmahal_verify_clear(r.p);
    rig_close(&r);
}

TEST(prp_list_across_a_page)
{
    struct rig r;
    struct seen s;
    struct sqe cmd;
    uint64_t *list;

    open_verified(&r, &s, "sim");
    list = r.list.va;
    /* A driver writes four entries from two before the end of a list page on, as if the list
     * went on in the next page. The controller takes the page's last entry for a pointer to
     * the next list, and reads the entries from that data page: zeroes, so it writes data to
     * address 0. */
    memset(r.data.va, 0, 8 * PAGE);
    list[510] = r.data.la + PAGE;
    list[511] = r.data.la + 2 * PAGE;
    list[512] = r.data.la + 3 * PAGE;
    list[513] = r.data.la + 4 * PAGE;
    cmd = rw_cmd(0x02, 1, 0, 40, r.data.la, r.list.la + 510 * 8);
    io(&r, &cmd);
    CHECK_GE(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind),
              dmahal_report_kind_name(DMAHAL_REPORT_DEV_OUT_OF_BOUNDS));
    CHECK_EQ_U(s.la, 0);
    dmahal_verify_clear(r.p);
    /* Chained properly, the same transfer is silent. */
    list[511] = r.list.la + PAGE;
    list[512] = r.data.la + 2 * PAGE;
    list[513] = r.data.la + 3 * PAGE;
    list[514] = r.data.la + 4 * PAGE;
    s.calls = 0;
    CHECK_EQ_U(io(&r, &cmd), ST_OK);
    CHECK_EQ(s.calls, 0);
    rig_close(&r);
}

/* I/O queue pair 2 in queues of their own, 8 submission entries and @cq_entries completion
 * entries, @sq_flags and @cq_flags saying which is DMAHAL_CACHED; no interrupts. */
static void queue2_open(struct rig *r, struct q *q, unsigned sq_flags, unsigned cq_flags,
                        unsigned cq_entries)
{
    struct sqe cmd = {.cdw0 = 0x05, .cdw10 = (cq_entries - 1) << 16 | 2, .cdw11 = 1};
    struct dmahal_buf sq, cq;

    CHECK_OK(dmahal_common_alloc(r->a, PAGE, sq_flags, &sq));
    CHECK_OK(dmahal_common_alloc(r->a, PAGE, cq_flags, &cq));
    cmd.prp1 = cq.la;
    CHECK_EQ_U(admin(r, &cmd), ST_OK);
    cmd = (struct sqe){.cdw0 = 0x01, .prp1 = sq.la, .cdw10 = 7u << 16 | 2, .cdw11 = 2u << 16 | 1};
    CHECK_EQ_U(admin(r, &cmd), ST_OK);
    *q = (struct q){sq, cq, 2, 8, 0, 0, 0, 1};
}

/* Deletes queue pair 2 and frees its queues. */
static void queue2_close(struct rig *r, struct q *q)
{
    struct sqe cmd = {.cdw0 = 0x00, .cdw10 = 2};

    CHECK_EQ_U(admin(r, &cmd), ST_OK);
    cmd = (struct sqe){.cdw0 = 0x04, .cdw10 = 2};
    CHECK_EQ_U(admin(r, &cmd), ST_OK);
    CHECK_OK(dmahal_common_free(r->a, &q->sq));
    CHECK_OK(dmahal_common_free(r->a, &q->cq));
}

/* A command queued behind a full completion queue is still outstanding: the driver must not
 * unmap its data until it completes. */
static void unmapped_while_queued(const char *spec, unsigned want_status)
{
    static unsigned char mem[PAGE] __attribute__((aligned(4096)));
    struct sqe cmd;
    struct dmahal_sgl *sgl;
    struct q q;
    struct cqe e;
    struct rig r;
    struct seen s;

    open_verified(&r, &s, spec);
    queue2_open(&r, &q, 0, 0, 2); /* CQ 2 holds one completion */

    /* A fills the completion queue; B waits behind it, mapped for the device. */
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0);
    queue_cmd(&q, &cmd);
    CHECK_OK(dmahal_map(r.a, &(struct iovec){mem, PAGE}, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    cmd = rw_cmd(0x02, 1, 8, 8, sgl->seg[0].la, 0);
    queue_cmd(&q, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), q.tail);
    /* The bug: B's data is unmapped before B completed. */
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_EQ(s.calls, 0);
    q.depth = 2;
    CHECK(reap(&r, &q, &e)); /* frees the entry: the controller now runs B */
    CHECK(reap(&r, &q, &e));
    CHECK_EQ_U(e.dw3 >> 17, want_status);
    CHECK_GE(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind),
              dmahal_report_kind_name(DMAHAL_REPORT_DEV_USE_AFTER_UNMAP));
    dmahal_verify_clear(r.p);
    queue2_close(&r, &q);
    rig_close(&r);
}

TEST(data_unmapped_while_its_command_is_queued)
{
    /* Behind an IOMMU the late access faults (Data Transfer Error); without one it lands in
     * frames that are no longer the driver's, and completes: the verifier reports both. */
    unmapped_while_queued("sim:iommu=on", ST_XFER);
    unmapped_while_queued("sim", ST_OK);
}

TEST(submission_entry_not_flushed)
{
    struct sqe cmd;
    struct rig r;
    struct seen s;
    struct q q;

    /* The driver keeps its submission queue in cached memory on a machine whose device does
     * not snoop, writes an entry and rings the doorbell without flushing it. */
    open_verified(&r, &s, "sim:coherent=no");
    queue2_open(&r, &q, DMAHAL_CACHED, 0, 8);
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0);
    queue_cmd(&q, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), q.tail);
    CHECK_GE(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind), dmahal_report_kind_name(DMAHAL_REPORT_NOT_FLUSHED));
    CHECK_EQ_U(s.la, q.sq.la);
    dmahal_verify_clear(r.p);
    queue2_close(&r, &q);
    rig_close(&r);
}

/* On a non-coherent machine, a second queue pair whose completion queue is cached memory,
 * and one read submitted on it: its completion is in memory, not in the CPU's cache. */
static void cached_cq_read(struct rig *r, struct seen *s, struct q *q)
{
    struct sqe cmd;

    open_verified(r, s, "sim:coherent=no");
    queue2_open(r, q, 0, DMAHAL_CACHED, 8);
    cmd = rw_cmd(0x02, 1, 0, 8, r->data.la, 0);
    queue_cmd(q, &cmd);
    dmahal_mmio_write32(r->d, 0, sq_db(r, 2), q->tail);
}

TEST(completion_read_without_sync_is_stale)
{
    struct rig r;
    struct seen s;
    struct q q;
    struct cqe e;

    /* The completion queue in cached memory: the CPU reading it without invalidating sees
     * what its cache held (no new entry); after dmahal_common_sync it sees the completion. */
    cached_cq_read(&r, &s, &q);
    CHECK(!reap(&r, &q, &e));
    CHECK_OK(dmahal_common_sync(r.a, &q.cq, 0, 16, DMAHAL_FROM_DEVICE));
    CHECK(reap(&r, &q, &e));
    CHECK_EQ_U(e.dw3 >> 17, ST_OK);
    CHECK_EQ(s.calls, 0);
    queue2_close(&r, &q);
    rig_close(&r);
}

TEST(completion_taken_without_sync_is_reported)
{
    struct sqe cmd;
    struct rig r;
    struct seen s;
    struct q q;
    struct cqe e;

    /* A driver that trusts its count of completions and reads the entry at the head without
     * invalidating it (nor checking the phase): it takes what its cache held, and moves the
     * head past it. The controller sees the doorbell, the verifier knows the bytes were never
     * synced for the CPU. */
    cached_cq_read(&r, &s, &q);
    cmd = rw_cmd(0x02, 1, 0, 8, r.data.la, 0); /* the same read again, below */
    e = ((struct cqe *)q.cq.va)[0];
    CHECK_EQ_U((e.dw3 >> 16) & 1, 0); /* stale: the cache's zeroes */
    CHECK_EQ(s.calls, 0);
    dmahal_mmio_write32(r.d, 0, cq_db(&r, 2), 1);
    CHECK_EQ(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind),
              dmahal_report_kind_name(DMAHAL_REPORT_NOT_INVALIDATED));
    CHECK_EQ_U(s.la, q.cq.la);
    /* The same driver with the sync: the next entry is taken as it should be, unreported. */
    q.head = 1;
    queue_cmd(&q, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), q.tail);
    CHECK_OK(dmahal_common_sync(r.a, &q.cq, 16, 16, DMAHAL_FROM_DEVICE));
    CHECK(reap(&r, &q, &e));
    CHECK_EQ_U(e.dw3 >> 17, ST_OK);
    CHECK_EQ(s.calls, 1);
    /* A sync of a part of what the device wrote leaves the rest unsynced: entries 2 and 3
     * (the first cache line, synced), and 4 (the second line, not). */
    for (int i = 0; i < 3; i++)
        queue_cmd(&q, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 2), q.tail);
    CHECK_OK(dmahal_common_sync(r.a, &q.cq, 32, 32, DMAHAL_FROM_DEVICE));
    CHECK(reap(&r, &q, &e));
    CHECK(reap(&r, &q, &e));
    CHECK(!reap(&r, &q, &e)); /* entry 4: stale */
    CHECK_EQ(s.calls, 1);
    q.head = 5; /* entry 4 taken unsynced: the same bug on the same buffer, counted */
    dmahal_mmio_write32(r.d, 0, cq_db(&r, 2), q.head);
    CHECK_EQ(s.calls, 1);
    CHECK_EQ_U(dmahal_verify_repeats(r.p, DMAHAL_REPORT_NOT_INVALIDATED), 1);
    queue2_close(&r, &q);
    rig_close(&r);
}

TEST(consumed_checks_its_arguments)
{
    struct rig r;
    struct seen s;

    open_verified(&r, &s, "sim");
    CHECK_ERR(dmahal_dev_consumed(NULL, 0, 16), -EINVAL);
    CHECK_ERR(dmahal_dev_consumed(r.d, UINT64_MAX, 16), -EINVAL);
    CHECK_OK(dmahal_dev_consumed(r.d, 0x1000, 0));
    /* Memory the verifier does not track as cached: nothing to report. */
    CHECK_OK(dmahal_dev_consumed(r.d, r.data.la, 16));
    CHECK_EQ(s.calls, 0);
    rig_close(&r);
}

TEST(data_unmapped_while_the_controller_works_in_time)
{
    static unsigned char mem[PAGE] __attribute__((aligned(4096)));
    struct dmahal_sgl *sgl;
    struct sqe cmd;
    struct rig r;
    struct seen s;
    struct cqe e;

    /* The controller takes 20 us: the driver unmaps before the command ran. */
    memset(&s, 0, sizeof(s));
    rig_dev_verified(&r, "sim:iommu=on", "nvme:size=16M,latency=20000", on_report, &s);
    enable(&r);
    CHECK_OK(dmahal_map(r.a, &(struct iovec){mem, PAGE}, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    cmd = (struct sqe){.cdw0 = 0x06, .cdw10 = 1, .prp1 = sgl->seg[0].la};
    queue_cmd(&r.admin, &cmd);
    dmahal_mmio_write32(r.d, 0, sq_db(&r, 0), r.admin.tail);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_EQ(s.calls, 0);
    CHECK_OK(dmahal_sim_advance(r.p, 40000));
    CHECK(reap(&r, &r.admin, &e));
    CHECK_EQ_U(e.dw3 >> 17, ST_XFER);
    CHECK_GE(s.calls, 1);
    CHECK_STR(dmahal_report_kind_name(s.kind),
              dmahal_report_kind_name(DMAHAL_REPORT_DEV_USE_AFTER_UNMAP));
    dmahal_verify_clear(r.p);
    rig_close(&r);
}
