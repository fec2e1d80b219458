/* SPDX-License-Identifier: MIT */
/*
 * test_nvme_driver.c - the example NVMe driver (examples/nvme) on the sim's NVMe model, on
 * every machine the sim models: bring-up and Identify as on QEMU's nvme, I/O on common
 * buffers and on the caller's own memory (mapped per transfer, the PRP rule kept by the
 * adapter's virtual boundary), the controller's LBA range error, the driver's argument checks.
 */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>

#include "nvme_drv_rig.h"

static const char *const machines[] = {
    "sim", "sim:iommu=on", "sim:coherent=no", "sim:ram=4G-64G", "sim:iommu=on,coherent=no",
};

TEST(identify_as_qemu)
{
    struct ctx c;

    up(&c, "sim");
    CHECK_STR(c.info.model, "QEMU NVMe Ctrl");
    CHECK_STR(c.info.serial, "dmahal0");
    CHECK_STR(c.info.firmware, "7.2.0");
    CHECK_EQ_U(c.info.vid, 0x1b36);
    CHECK_EQ_U(c.info.version, 0x10400);
    CHECK_EQ_U(c.info.nsze, (64u << 20) / 512);
    CHECK_EQ_U(c.info.lba_size, 512);
    CHECK_EQ_U(c.info.max_transfer, 512 * 1024);
    CHECK_EQ_U(c.info.db_stride, 4);
    CHECK_EQ_U(c.info.ready_ms, 7500);
    down(&c);
}

TEST(caller_memory_on_every_machine)
{
    /* Offsets into a page-aligned allocation: page-aligned, inside a page (PRP1 with an
     * offset, then a list), not dword-aligned (bounced). */
    static const size_t offs[] = {0, 512, 4, 1};
    static const size_t lens[] = {512, 4096, 8192, 64 * 1024, 512 * 1024 - 4096};

    for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++) {
        unsigned char *mem = NULL, *want = malloc(512 * 1024);
        struct ctx c;

        CHECK(want != NULL);
        CHECK_EQ(posix_memalign((void **)&mem, 4096, 520 * 1024), 0);
        up(&c, machines[m]);
        for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
            for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
                uint32_t nb = (uint32_t)(lens[l] / 512);
                uint16_t st = 0xffff;

                fill(want, lens[l], (unsigned)(o * 8 + l));
                memcpy(mem + offs[o], want, lens[l]);
                CHECK_OK(nvme_io_mem(c.n, NVME_CMD_WRITE, 100 * l, nb, mem + offs[o], &st));
                CHECK_EQ(st, 0);
                memset(mem, 0, 520 * 1024);
                CHECK_OK(nvme_io_mem(c.n, NVME_CMD_READ, 100 * l, nb, mem + offs[o], &st));
                if (memcmp(mem + offs[o], want, lens[l]))
                    test_fail(__FILE__, __LINE__, "%s: %zu bytes at offset %zu read back wrong",
                              machines[m], lens[l], offs[o]);
            }
        }
        down(&c);
        free(mem);
        free(want);
    }
}

TEST(errors)
{
    struct ctx c;
    struct dmahal_buf buf;
    uint16_t st = 0;

    up(&c, "sim:iommu=on");
    CHECK_OK(dmahal_common_alloc(nvme_adapter(c.n), 1 << 20, 0, &buf));
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, c.info.nsze, 1, &buf, 0, &st), -EIO);
    CHECK_EQ_U(NVME_STATUS_SC(st), NVME_SC_LBA_RANGE);
    CHECK_EQ_U(NVME_STATUS_DNR(st), 1);
    CHECK_STR(nvme_status_name(st), "LBA out of range");
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1025, &buf, 0, &st), -E2BIG);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1, &buf, 2, &st), -EINVAL);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 0, &buf, 0, &st), -EINVAL);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 4096, &buf, 0, &st), -E2BIG);
    CHECK_OK(nvme_io(c.n, NVME_CMD_READ, c.info.nsze - 1, 1, &buf, 0, &st));
    CHECK_OK(dmahal_common_free(nvme_adapter(c.n), &buf));
    down(&c);
}

/* Polling without pauses: the same I/O, and the flag refused beside NVME_OPEN_IRQ. */
TEST(spin_polling)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_buf buf;
    struct nvme *n = (struct nvme *)1;
    unsigned char want[4096];

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    CHECK_OK(dmahal_device_open(p, "nvme:size=64M", &d));
    CHECK_ERR(nvme_open_flags(d, NVME_OPEN_IRQ | NVME_OPEN_SPIN, &n), -EINVAL);
    CHECK(n == NULL);
    CHECK_ERR(nvme_open_flags(d, 0x4u, &n), -EINVAL);
    CHECK_OK(nvme_open_flags(d, NVME_OPEN_SPIN, &n));
    CHECK_EQ(nvme_irq_type(n), 0);
    CHECK_OK(dmahal_common_alloc(nvme_adapter(n), sizeof(want), 0, &buf));
    for (unsigned round = 0; round < 8; round++) {
        fill(want, sizeof(want), round);
        memcpy(buf.va, want, sizeof(want));
        CHECK_OK(nvme_io(n, NVME_CMD_WRITE, 8u * round, 8, &buf, 0, NULL));
        memset(buf.va, 0, sizeof(want));
        CHECK_OK(nvme_io(n, NVME_CMD_READ, 8u * round, 8, &buf, 0, NULL));
        CHECK(memcmp(buf.va, want, sizeof(want)) == 0);
    }
    CHECK_OK(dmahal_common_free(nvme_adapter(n), &buf));
    nvme_close(n);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

/* Reaps until nothing is in flight; checks each tag came back once, with status 0. */
static void reap_all(struct nvme *n, bool *seen, unsigned ntags)
{
    struct nvme_done done[8];

    while (nvme_inflight(n)) {
        int got = nvme_reap(n, 1, done, 8);

        CHECK_GE(got, 1);
        for (int i = 0; i < got; i++) {
            CHECK_LT_U(done[i].tag, ntags);
            CHECK(!seen[done[i].tag]);
            seen[done[i].tag] = true;
            CHECK_EQ(done[i].rc, 0);
            CHECK_EQ(done[i].status, 0);
        }
    }
}

/* Queued I/O on every machine: a queue's worth of writes from caller memory in flight at
 * once (each mapped until it is reaped), then reads into one common buffer, every block
 * checked; the queue's bounds and the synchronous calls refused meanwhile. */
TEST(queued_io_on_every_machine)
{
    enum { BLK = 4096 };

    for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++) {
        struct ctx c;
        struct dmahal_buf buf;
        unsigned depth;
        unsigned char *mem;
        bool seen[64];
        struct nvme_done d;

        up(&c, machines[m]);
        depth = nvme_queue_depth(c.n);
        CHECK_EQ(depth, 63);
        CHECK_EQ(nvme_inflight(c.n), 0);
        CHECK_EQ(posix_memalign((void **)&mem, 4096, (size_t)depth * BLK), 0);
        CHECK_OK(dmahal_common_alloc(nvme_adapter(c.n), (size_t)depth * BLK, 0, &buf));
        for (unsigned i = 0; i < depth; i++) {
            fill(mem + (size_t)i * BLK, BLK, i + 1);
            /* Every other one inside a page: PRP1 with an offset and PRP2, or a list. */
            CHECK_OK(
                nvme_submit_mem(c.n, NVME_CMD_WRITE, 8u * i, BLK / 512, mem + (size_t)i * BLK, i));
        }
        CHECK_EQ(nvme_inflight(c.n), depth);
        /* Full: another command, and the one-at-a-time calls, wait their turn. */
        CHECK_ERR(nvme_submit(c.n, NVME_CMD_READ, 0, 8, &buf, 0, 99), -EBUSY);
        CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 8, &buf, 0, NULL), -EBUSY);
        CHECK_ERR(nvme_io_mem(c.n, NVME_CMD_READ, 0, 8, mem, NULL), -EBUSY);
        memset(seen, 0, sizeof(seen));
        reap_all(c.n, seen, depth);
        for (unsigned i = 0; i < depth; i++)
            CHECK(seen[i]);
        /* Reads back into the common buffer, in flight together. */
        memset(mem, 0, (size_t)depth * BLK);
        for (unsigned i = 0; i < depth; i++)
            CHECK_OK(nvme_submit(c.n, NVME_CMD_READ, 8u * i, BLK / 512, &buf, (size_t)i * BLK, i));
        memset(seen, 0, sizeof(seen));
        reap_all(c.n, seen, depth);
        for (unsigned i = 0; i < depth; i++) {
            unsigned char want[BLK];

            CHECK(seen[i]);
            fill(want, BLK, i + 1);
            if (memcmp((unsigned char *)buf.va + (size_t)i * BLK, want, BLK))
                test_fail(__FILE__, __LINE__, "%s: block %u read back wrong", machines[m], i);
        }
        /* Nothing in flight: reaping without waiting finds nothing, and may not wait. */
        CHECK_ERR(nvme_reap(c.n, 1, &d, 1), -EINVAL);
        /* One at a time works again. */
        CHECK_OK(nvme_io(c.n, NVME_CMD_READ, 0, 8, &buf, 0, NULL));
        CHECK_OK(dmahal_common_free(nvme_adapter(c.n), &buf));
        down(&c);
        free(mem);
    }
}

/* A failed command comes back with its status among good ones; bad arguments are refused
 * without a command being queued. */
TEST(queued_io_errors)
{
    struct nvme_done done[4];
    struct dmahal_buf buf;
    unsigned char *mem;
    struct ctx c;
    int got, bad = 0;

    up(&c, "sim:iommu=on");
    CHECK_OK(dmahal_common_alloc(nvme_adapter(c.n), 1 << 20, 0, &buf));
    CHECK_EQ(posix_memalign((void **)&mem, 4096, 8192), 0);
    CHECK_ERR(nvme_submit(NULL, NVME_CMD_READ, 0, 1, &buf, 0, 0), -EINVAL);
    CHECK_ERR(nvme_submit(c.n, NVME_CMD_READ, 0, 1, NULL, 0, 0), -EINVAL);
    CHECK_ERR(nvme_submit(c.n, NVME_CMD_READ, 0, 0, &buf, 0, 0), -EINVAL);
    CHECK_ERR(nvme_submit(c.n, NVME_CMD_READ, 0, 1025, &buf, 0, 0), -E2BIG);
    CHECK_ERR(nvme_submit(c.n, NVME_CMD_READ, 0, 1, &buf, 2, 0), -EINVAL);
    CHECK_ERR(nvme_submit(c.n, (enum nvme_opcode)0x09, 0, 1, &buf, 0, 0), -EINVAL);
    CHECK_ERR(nvme_submit_mem(c.n, NVME_CMD_READ, 0, 1, NULL, 0), -EINVAL);
    CHECK_ERR(nvme_submit_mem(c.n, NVME_CMD_READ, 0, 0, mem, 0), -EINVAL);
    CHECK_EQ(nvme_inflight(c.n), 0);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(nvme_adapter(c.n)), 0);
    CHECK_ERR(nvme_reap(NULL, 0, done, 4), -EINVAL);
    CHECK_ERR(nvme_reap(c.n, 0, NULL, 4), -EINVAL);
    CHECK_ERR(nvme_reap(c.n, 0, done, 0), -EINVAL);
    CHECK_ERR(nvme_reap(c.n, 2, done, 1), -EINVAL);
    CHECK_EQ(nvme_queue_depth(NULL), 0);
    CHECK_EQ(nvme_inflight(NULL), 0);

    CHECK_OK(nvme_submit(c.n, NVME_CMD_READ, 0, 1, &buf, 0, 10));
    CHECK_OK(nvme_submit(c.n, NVME_CMD_READ, c.info.nsze, 1, &buf, 512, 11));
    CHECK_OK(nvme_submit_mem(c.n, NVME_CMD_READ, 8, 2, mem + 4, 12)); /* bounced: not aligned */
    CHECK_EQ(nvme_inflight(c.n), 3);
    nvme_ring(NULL);
    nvme_ring(c.n); /* one doorbell for the three */
    /* min 0: takes what has completed without waiting (the model completes at the doorbell). */
    got = nvme_reap(c.n, 0, done, 4);
    CHECK_EQ(got, 3);
    for (int i = 0; i < got; i++) {
        if (done[i].tag == 11) {
            bad++;
            CHECK_EQ(done[i].rc, -EIO);
            CHECK_EQ_U(NVME_STATUS_SC(done[i].status), NVME_SC_LBA_RANGE);
        } else {
            CHECK_EQ(done[i].rc, 0);
            CHECK_EQ(done[i].status, 0);
        }
    }
    CHECK_EQ(bad, 1);
    CHECK_EQ(nvme_inflight(c.n), 0);
    CHECK_EQ(nvme_reap(c.n, 0, done, 4), 0); /* nothing in flight, nothing to wait for */
    CHECK_EQ(dmahal_adapter_map_registers_in_use(nvme_adapter(c.n)), 0);
    CHECK_OK(dmahal_common_free(nvme_adapter(c.n), &buf));
    down(&c);
    free(mem);
}

/* The random mix of queued I/O (nvme_drv_rig.h) on every machine. */
TEST(queued_random_mix)
{
    for (size_t m = 0; m < sizeof(machines) / sizeof(machines[0]); m++)
        queued_mix(machines[m], 0x9e3779b97f4a7c15ull + m, 1500);
}

/* A controller that stops answering with queued commands in flight: the wait ends after
 * NVME_CMD_TIMEOUT_MS, the caller's memory is unmapped at once (no bounce page held, nothing
 * left for the verifier to call a leak), and the driver then refuses to submit or wait. */
TEST(queued_io_timeout)
{
    unsigned char *mem;
    struct nvme_done done[4];
    struct dmahal_buf buf;
    struct ctx c;
    struct timespec t0, t1;
    double secs;

    up(&c, "sim:ram=4G-64G"); /* no IOMMU and RAM out of a 32-bit reach: nothing special */
    CHECK_EQ(posix_memalign((void **)&mem, 4096, 3 * 4096), 0);
    CHECK_OK(dmahal_common_alloc(nvme_adapter(c.n), 4096, 0, &buf));
    /* Disabled behind the driver's back, the controller drops its queues: nothing completes. */
    dmahal_mmio_write32(c.d, 0, 0x14, 0);
    CHECK_OK(nvme_submit_mem(c.n, NVME_CMD_READ, 0, 8, mem + 1, 1)); /* bounced: odd address */
    CHECK_OK(nvme_submit(c.n, NVME_CMD_READ, 8, 8, &buf, 0, 2));
    CHECK_GT(dmahal_adapter_map_registers_in_use(nvme_adapter(c.n)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_ERR(nvme_reap(c.n, 1, done, 4), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs >= NVME_CMD_TIMEOUT_MS / 1000.0 && secs < NVME_CMD_TIMEOUT_MS / 1000.0 + 5);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(nvme_adapter(c.n)), 0);
    CHECK_EQ(nvme_inflight(c.n), 2);
    CHECK_ERR(nvme_reap(c.n, 1, done, 4), -EIO); /* at once: no second wait */
    CHECK_ERR(nvme_submit(c.n, NVME_CMD_READ, 0, 8, &buf, 0, 3), -EIO);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 8, &buf, 0, NULL), -EIO);
    CHECK_OK(dmahal_common_free(nvme_adapter(c.n), &buf));
    down(&c);
    free(mem);
}
