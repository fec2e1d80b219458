/* SPDX-License-Identifier: MIT */
/*
 * test_nvme.c - the example NVMe driver (examples/nvme) on QEMU's nvme through VFIO, in the
 * test guest: bring-up and Identify, reads and writes with every PRP layout (PRP1 alone,
 * PRP2 as a data pointer, PRP2 as a list pointer) checked byte by byte and block by block,
 * the controller's own errors (LBA out of range), the driver's argument checks, recovery from
 * a controller left failed, a bounded wait when the controller stops answering, I/O on
 * the caller's own memory mapped with dmahal_map, and two threads with an I/O queue each.
 *
 * The guest's namespace is a fresh 64 MiB file (tests/vm/run.sh) each boot.
 */
#include "vm.h"

#include <dmahal/dmahal.h>

#include "nvme/nvme_driver.h"

#include <pthread.h>

#define NS_BYTES (64ull << 20)
#define REG_CC   0x14
#define REG_CSTS 0x1c

struct ctx {
    struct dmahal_platform *p;
    struct dmahal_device *dev;
    struct nvme *n;
    struct nvme_info info;
    struct dmahal_buf buf; /* 256 KiB of data buffer from the driver's adapter */
};

static void dev_open(struct ctx *c)
{
    memset(c, 0, sizeof(*c));
    CHECK_OK(dmahal_platform_open("vfio", &c->p));
    CHECK_OK(dmahal_device_open(c->p, vm_dev("DMAHAL_VM_NVME"), &c->dev));
}

static void up(struct ctx *c)
{
    CHECK_OK(nvme_open(c->dev, &c->n));
    CHECK_OK(nvme_identify(c->n, &c->info));
    CHECK_OK(dmahal_common_alloc(nvme_adapter(c->n), 256 * 1024, 0, &c->buf));
}

static void ctx_open(struct ctx *c)
{
    dev_open(c);
    up(c);
}

static void down(struct ctx *c)
{
    if (c->buf.va)
        CHECK_OK(dmahal_common_free(nvme_adapter(c->n), &c->buf));
    memset(&c->buf, 0, sizeof(c->buf));
    nvme_close(c->n);
    c->n = NULL;
}

static void ctx_close(struct ctx *c)
{
    down(c);
    dmahal_device_close(c->dev);
    dmahal_platform_close(c->p);
}

/* The byte the pattern @seed puts at byte @i of block @lba: differs per block and per seed,
 * so data landing at the wrong block or coming from an earlier test is caught. */
static unsigned char pat(unsigned seed, uint64_t lba, size_t i)
{
    return (unsigned char)(seed * 131u + lba * 29u + i * 7u + (i >> 8));
}

static void fill(const struct ctx *c, size_t off, uint64_t lba, uint32_t nblocks, unsigned seed)
{
    unsigned char *p = (unsigned char *)c->buf.va + off;

    for (uint32_t b = 0; b < nblocks; b++)
        for (size_t i = 0; i < c->info.lba_size; i++)
            p[(size_t)b * c->info.lba_size + i] = pat(seed, lba + b, i);
}

/* Checks @nblocks blocks at @off of the buffer against the pattern written at @lba. */
static void verify(const struct ctx *c, size_t off, uint64_t lba, uint32_t nblocks, unsigned seed)
{
    const unsigned char *p = (const unsigned char *)c->buf.va + off;

    for (uint32_t b = 0; b < nblocks; b++) {
        for (size_t i = 0; i < c->info.lba_size; i++) {
            unsigned char got = p[(size_t)b * c->info.lba_size + i], want = pat(seed, lba + b, i);

            if (got != want)
                test_fail(__FILE__, __LINE__, "lba %" PRIu64 " byte %zu: got %#x, expected %#x",
                          lba + b, i, got, want);
        }
    }
}

static void io_ok(struct ctx *c, enum nvme_opcode op, uint64_t lba, uint32_t nblocks, size_t off)
{
    uint16_t st = 0xffff;

    CHECK_OK(nvme_io(c->n, op, lba, nblocks, &c->buf, off, &st));
    CHECK_EQ(st, 0);
}

/* Writes @bytes at @lba from buffer offset @off, reads them back into a cleared buffer at
 * the same offset with the same PRP layout, then block by block with PRP1 alone, so that a
 * PRP list that scrambles pages is caught even when it scrambles both ways alike. */
static void round_trip(struct ctx *c, size_t off, uint64_t lba, size_t bytes, unsigned seed)
{
    uint32_t nblocks = (uint32_t)(bytes / c->info.lba_size);

    CHECK_EQ(bytes % c->info.lba_size, 0);
    fill(c, off, lba, nblocks, seed);
    io_ok(c, NVME_CMD_WRITE, lba, nblocks, off);
    memset(c->buf.va, 0, c->buf.len);
    io_ok(c, NVME_CMD_READ, lba, nblocks, off);
    verify(c, off, lba, nblocks, seed);
    memset(c->buf.va, 0, c->buf.len);
    for (uint32_t b = 0; b < nblocks; b++)
        io_ok(c, NVME_CMD_READ, lba + b, 1, (size_t)b * c->info.lba_size);
    verify(c, 0, lba, nblocks, seed);
}

TEST(identify_controller_and_namespace)
{
    struct ctx c;

    ctx_open(&c);
    printf("model \"%s\" serial \"%s\" firmware \"%s\" vid %#x version %#x nn %u\n", c.info.model,
           c.info.serial, c.info.firmware, c.info.vid, c.info.version, c.info.nn);
    printf("nsze %" PRIu64 " lba %u max_transfer %zu io_depth %u stride %u ready %u ms\n",
           c.info.nsze, c.info.lba_size, c.info.max_transfer, c.info.io_depth, c.info.db_stride,
           c.info.ready_ms);
    CHECK(c.info.model[0] != '\0');
    CHECK_EQ(strlen(c.info.model), strspn(c.info.model, " !\"#$%&'()*+,-./0123456789:;<=>?@"
                                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                                        "abcdefghijklmnopqrstuvwxyz{|}~"));
    CHECK_STR(c.info.serial, "dmahal0"); /* tests/vm/run.sh: -device nvme,serial=dmahal0 */
    CHECK_EQ_U(c.info.vid, 0x1b36);      /* QEMU's PCI vendor */
    CHECK_GE(c.info.version, 0x10000);
    CHECK_GE(c.info.nn, 1);
    CHECK_EQ(c.info.nsid, 1);
    CHECK(c.info.lba_size == 512 || c.info.lba_size == 4096);
    CHECK_EQ_U(c.info.nsze, NS_BYTES / c.info.lba_size);
    CHECK_GE(c.info.max_transfer, 64 * 1024);
    CHECK_EQ(c.info.max_transfer % NVME_PAGE_SIZE, 0);
    CHECK_GE(c.info.db_stride, 4);
    CHECK_GE(c.info.io_depth, 2);
    /* Identify again on the running controller: the same answers. */
    {
        struct nvme_info again;

        CHECK_OK(nvme_identify(c.n, &again));
        CHECK_STR(again.model, c.info.model);
        CHECK_EQ_U(again.nsze, c.info.nsze);
    }
    ctx_close(&c);
}

TEST(one_block_lands_at_its_lba_and_survives_a_reset)
{
    struct ctx c;

    ctx_open(&c);
    fill(&c, 0, 10, 1, 1);
    io_ok(&c, NVME_CMD_WRITE, 10, 1, 0);
    fill(&c, 0, 11, 1, 2);
    io_ok(&c, NVME_CMD_WRITE, 11, 1, 0);
    memset(c.buf.va, 0, c.buf.len);
    io_ok(&c, NVME_CMD_READ, 10, 1, 0);
    verify(&c, 0, 10, 1, 1);
    io_ok(&c, NVME_CMD_READ, 11, 1, c.info.lba_size);
    verify(&c, c.info.lba_size, 11, 1, 2);
    /* Close (the controller is disabled) and bring it up again: the data was on the medium. */
    down(&c);
    up(&c);
    io_ok(&c, NVME_CMD_READ, 10, 2, 0);
    verify(&c, 0, 10, 1, 1);
    verify(&c, c.info.lba_size, 11, 1, 2);
    ctx_close(&c);
}

TEST(two_pages_prp2_is_a_data_pointer)
{
    struct ctx c;

    ctx_open(&c);
    round_trip(&c, 0, 100, 2 * NVME_PAGE_SIZE, 3);
    ctx_close(&c);
}

TEST(two_pages_from_mid_page_need_a_prp_list)
{
    struct ctx c;

    ctx_open(&c);
    round_trip(&c, 512, 200, 2 * NVME_PAGE_SIZE, 4);              /* spans three pages */
    round_trip(&c, NVME_PAGE_SIZE - 512, 300, NVME_PAGE_SIZE, 5); /* two pages: PRP2 data */
    ctx_close(&c);
}

TEST(sixty_four_kib_through_a_prp_list)
{
    struct ctx c;

    ctx_open(&c);
    round_trip(&c, 0, 1000, 64 * 1024, 6);
    ctx_close(&c);
}

TEST(largest_transfer_and_one_block_more)
{
    struct ctx c;
    size_t len;
    uint32_t max;
    uint16_t st = 0xffff;
    struct dmahal_buf big;

    ctx_open(&c);
    len = c.info.max_transfer;
    max = (uint32_t)(len / c.info.lba_size);
    CHECK_OK(dmahal_common_alloc(nvme_adapter(c.n), len + c.info.lba_size, 0, &big));
    for (size_t i = 0; i < len; i++)
        ((unsigned char *)big.va)[i] = pat(7, 4096 + i / c.info.lba_size, i % c.info.lba_size);
    CHECK_OK(nvme_io(c.n, NVME_CMD_WRITE, 4096, max, &big, 0, NULL));
    memset(big.va, 0, big.len);
    CHECK_OK(nvme_io(c.n, NVME_CMD_READ, 4096, max, &big, 0, NULL));
    for (size_t i = 0; i < len; i++)
        if (((unsigned char *)big.va)[i] != pat(7, 4096 + i / c.info.lba_size, i % c.info.lba_size))
            test_fail(__FILE__, __LINE__, "byte %zu of %zu differs", i, len);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 4096, max + 1, &big, 0, &st), -E2BIG);
    CHECK_EQ(st, 0); /* refused before any command */
    CHECK_OK(dmahal_common_free(nvme_adapter(c.n), &big));
    ctx_close(&c);
}

TEST(lba_out_of_range_is_the_controllers_error)
{
    struct ctx c;
    uint16_t st = 0;
    struct vm_capture cap;
    int rc;

    ctx_open(&c);
    vm_capture_begin(&cap);
    rc = nvme_io(c.n, NVME_CMD_READ, c.info.nsze, 1, &c.buf, 0, &st);
    vm_capture_end(&cap);
    CHECK_ERR(rc, -EIO);
    CHECK_EQ(NVME_STATUS_SCT(st), 0);
    CHECK_EQ_U(NVME_STATUS_SC(st), NVME_SC_LBA_RANGE);
    CHECK_STR(nvme_status_name(st), "LBA out of range");
    CHECK_CONTAINS(cap.text, "Read failed");
    CHECK_CONTAINS(cap.text, "LBA out of range");
    /* Starting inside and running past the end is out of range too; so is a write. */
    st = 0;
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, c.info.nsze - 1, 2, &c.buf, 0, &st), -EIO);
    CHECK_EQ_U(NVME_STATUS_SC(st), NVME_SC_LBA_RANGE);
    st = 0;
    CHECK_ERR(nvme_io(c.n, NVME_CMD_WRITE, UINT64_MAX - 1, 1, &c.buf, 0, &st), -EIO);
    CHECK_EQ_U(NVME_STATUS_SC(st), NVME_SC_LBA_RANGE);
    /* The queues are still in step: the last block reads and writes. */
    round_trip(&c, 0, c.info.nsze - 1, c.info.lba_size, 8);
    ctx_close(&c);
}

TEST(io_arguments_are_checked)
{
    struct ctx c;
    struct dmahal_buf other = {0};
    uint16_t st = 0xffff;

    ctx_open(&c);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 0, &c.buf, 0, &st), -EINVAL);
    CHECK_EQ(st, 0);
    CHECK_ERR(nvme_io(c.n, (enum nvme_opcode)0x09, 0, 1, &c.buf, 0, NULL), -EINVAL);
    CHECK_ERR(nvme_io(NULL, NVME_CMD_READ, 0, 1, &c.buf, 0, NULL), -EINVAL);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1, NULL, 0, NULL), -EINVAL);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1, &other, 0, NULL), -EINVAL);
    /* The data must fit the buffer: the last block exactly does, one byte more does not. */
    CHECK_OK(nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, c.buf.len - c.info.lba_size, NULL));
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, c.buf.len - c.info.lba_size + 4, NULL),
              -EINVAL);
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, SIZE_MAX, NULL), -EINVAL);
    /* PRP offsets are dword-aligned. */
    CHECK_ERR(nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, 2, NULL), -EINVAL);
    CHECK_OK(nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, 4, NULL));
    CHECK(nvme_adapter(NULL) == NULL);
    CHECK_ERR(nvme_identify(c.n, NULL), -EINVAL);
    ctx_close(&c);
}

/* The caller's own memory (nvme_io_mem: dmahal_map for each command): 64 KiB from a malloc'd
 * buffer at a dword offset mid-page, through a PRP list on the IOMMU's contiguous run; read
 * back through the common buffer and through malloc'd memory again; then memory at an odd
 * offset, which the adapter's dword alignment makes dmahal bounce, both ways. */
TEST(io_from_and_to_the_callers_memory)
{
    struct ctx c;
    const size_t bytes = 64 * 1024;
    unsigned char *src = malloc(bytes + 8192), *dst = malloc(bytes + 8192), *odd;
    uint32_t nblocks;
    uint16_t st = 0xffff;
    uint64_t lba = 4096;

    ctx_open(&c);
    nblocks = (uint32_t)(bytes / c.info.lba_size);
    fill(&c, 0, lba, nblocks, 21);
    memcpy(src + 1000, c.buf.va, bytes); /* the pattern, in malloc'd memory */
    memset(c.buf.va, 0, c.buf.len);
    CHECK_OK(nvme_io_mem(c.n, NVME_CMD_WRITE, lba, nblocks, src + 1000, &st));
    CHECK_EQ(st, 0);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(nvme_adapter(c.n)), 0);
    io_ok(&c, NVME_CMD_READ, lba, nblocks, 0);
    verify(&c, 0, lba, nblocks, 21);

    memset(dst, 0, bytes + 8192);
    CHECK_OK(nvme_io_mem(c.n, NVME_CMD_READ, lba, nblocks, dst + 2052, &st));
    CHECK_EQ(st, 0);
    CHECK(memcmp(dst + 2052, src + 1000, bytes) == 0);
    CHECK_EQ_U(dst[2051], 0);
    CHECK_EQ_U(dst[2052 + bytes], 0);

    odd = dst + 3;
    fill(&c, 0, lba + 200, 2, 22);
    memcpy(odd, c.buf.va, 2 * c.info.lba_size);
    CHECK_OK(nvme_io_mem(c.n, NVME_CMD_WRITE, lba + 200, 2, odd, &st));
    memset(odd, 0, 2 * c.info.lba_size);
    memset(c.buf.va, 0, c.buf.len);
    CHECK_OK(nvme_io_mem(c.n, NVME_CMD_READ, lba + 200, 2, odd, &st));
    memcpy(c.buf.va, odd, 2 * c.info.lba_size);
    verify(&c, 0, lba + 200, 2, 22);

    CHECK_ERR(nvme_io_mem(c.n, NVME_CMD_READ, lba, 1, NULL, &st), -EINVAL);
    CHECK_ERR(nvme_io_mem(c.n, NVME_CMD_READ, lba, 0, dst, &st), -EINVAL);
    CHECK_ERR(nvme_io_mem(c.n, NVME_CMD_READ, lba, 1, (void *)(uintptr_t)0x1000, &st), -EFAULT);
    CHECK_EQ(st, 0);
    free(src);
    free(dst);
    ctx_close(&c);
}

TEST(open_refuses_what_is_not_nvme)
{
    struct dmahal_platform *p;
    struct dmahal_device *dev;
    struct nvme *n = (void *)1;
    struct vm_capture cap;
    int rc;

    CHECK_ERR(nvme_open(NULL, &n), -EINVAL);
    CHECK(n == NULL);
    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_ERR(nvme_open(NULL, NULL), -EINVAL);
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &dev));
    n = (void *)1;
    vm_capture_begin(&cap);
    rc = nvme_open(dev, &n);
    vm_capture_end(&cap);
    CHECK_ERR(rc, -ENODEV);
    CHECK(n == NULL);
    CHECK_CONTAINS(cap.text, "not an NVMe controller");
    dmahal_device_close(dev);
    dmahal_platform_close(p);
}

TEST(open_resets_a_controller_left_failed)
{
    struct ctx c;

    dev_open(&c);
    /* Enable it as a careless driver would: no admin queue, no entry sizes. The controller
     * refuses and reports a fatal status; nvme_open must reset it and start over. */
    dmahal_mmio_write32(c.dev, 0, REG_CC, 0);
    for (int i = 0; i < 1000 && (dmahal_mmio_read32(c.dev, 0, REG_CSTS) & 1); i++)
        usleep(1000);
    dmahal_mmio_write32(c.dev, 0, REG_CC, 1);
    for (int i = 0; i < 1000 && !(dmahal_mmio_read32(c.dev, 0, REG_CSTS) & 2); i++)
        usleep(1000);
    CHECK_EQ_U(dmahal_mmio_read32(c.dev, 0, REG_CSTS) & 3, 2); /* CFS, not ready */
    up(&c);
    round_trip(&c, 0, 5000, NVME_PAGE_SIZE, 9);
    ctx_close(&c);
}

TEST(a_controller_that_stops_answering_times_out)
{
    struct ctx c;
    struct vm_capture cap;
    uint16_t st = 0xffff;
    struct timespec t0, t1;
    double secs;
    int rc;

    ctx_open(&c);
    /* Disable the controller behind the driver's back: it drops its queues, so the next
     * command is never fetched and never completes. */
    dmahal_mmio_write32(c.dev, 0, REG_CC, 0);
    for (int i = 0; i < 1000 && (dmahal_mmio_read32(c.dev, 0, REG_CSTS) & 1); i++)
        usleep(1000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vm_capture_begin(&cap);
    rc = nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, 0, &st);
    vm_capture_end(&cap);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_ERR(rc, -ETIMEDOUT);
    CHECK_EQ(st, 0);
    CHECK_CONTAINS(cap.text, "no completion for command");
    CHECK(secs >= NVME_CMD_TIMEOUT_MS / 1000.0 && secs < NVME_CMD_TIMEOUT_MS / 1000.0 + 5);
    /* The driver does not issue more on queues whose state it no longer knows. */
    vm_capture_begin(&cap);
    rc = nvme_io(c.n, NVME_CMD_READ, 0, 1, &c.buf, 0, &st);
    vm_capture_end(&cap);
    CHECK_ERR(rc, -EIO);
    CHECK_CONTAINS(cap.text, "needs a reset");
    /* Closing does not wait for commands either; a new open brings the controller back. */
    down(&c);
    up(&c);
    round_trip(&c, 0, 6000, NVME_PAGE_SIZE, 10);
    ctx_close(&c);
}

struct qthread {
    struct ctx *c;
    unsigned qi;
    int failed;
};

/* Queued writes then reads of 32 blocks of 4 KiB on the thread's own queue, over its own LBA
 * range and its own quarter of the buffer, each block checked. */
static void *queue_worker(void *arg)
{
    struct qthread *w = arg;
    struct ctx *c = w->c;
    uint32_t nb = 4096 / c->info.lba_size;
    uint64_t lba0 = 16384 + (uint64_t)w->qi * 32 * nb;
    size_t off0 = (size_t)w->qi * 32 * 4096;

    for (int pass = 0; pass < 2 && !w->failed; pass++) {
        struct nvme_done done[32];
        unsigned got = 0;

        for (unsigned i = 0; i < 32 && !w->failed; i++) {
            uint64_t lba = lba0 + (uint64_t)i * nb;

            if (pass == 0)
                fill(c, off0 + (size_t)i * 4096, lba, nb, 40 + w->qi);
            else
                memset((char *)c->buf.va + off0 + (size_t)i * 4096, 0, 4096);
            w->failed |= nvme_submit_on(c->n, w->qi, pass ? NVME_CMD_READ : NVME_CMD_WRITE, lba, nb,
                                        &c->buf, off0 + (size_t)i * 4096, i) != 0;
        }
        while (got < 32 && !w->failed) {
            int k = nvme_reap_on(c->n, w->qi, 1, done, 32);

            w->failed |= k < 1;
            for (int j = 0; j < k; j++)
                w->failed |= done[j].rc != 0;
            got += k > 0 ? (unsigned)k : 0;
        }
    }
    return NULL;
}

TEST(two_queues_two_threads)
{
    struct qthread w[2];
    pthread_t t[2];
    struct ctx c;

    dev_open(&c);
    CHECK_OK(nvme_open_queues(c.dev, 0, 2, &c.n));
    CHECK_EQ(nvme_queues(c.n), 2);
    CHECK_OK(nvme_identify(c.n, &c.info));
    CHECK_OK(dmahal_common_alloc(nvme_adapter(c.n), 256 * 1024, 0, &c.buf));
    for (unsigned i = 0; i < 2; i++) {
        w[i] = (struct qthread){&c, i, 0};
        CHECK_EQ(pthread_create(&t[i], NULL, queue_worker, &w[i]), 0);
    }
    for (unsigned i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (unsigned i = 0; i < 2; i++) {
        uint32_t nb = 4096 / c.info.lba_size;

        CHECK_EQ(w[i].failed, 0);
        for (unsigned b = 0; b < 32; b++)
            verify(&c, (size_t)i * 32 * 4096 + (size_t)b * 4096,
                   16384 + (uint64_t)i * 32 * nb + (uint64_t)b * nb, nb, 40 + i);
    }
    ctx_close(&c);
}
