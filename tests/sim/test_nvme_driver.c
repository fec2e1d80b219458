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

#include "nvme/nvme_driver.h"
#include "test.h"

static const char *const machines[] = {
    "sim", "sim:iommu=on", "sim:coherent=no", "sim:ram=4G-64G", "sim:iommu=on,coherent=no",
};

struct ctx {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct nvme *n;
    struct nvme_info info;
};

static void up(struct ctx *c, const char *spec)
{
    memset(c, 0, sizeof(*c));
    CHECK_OK(dmahal_platform_open(spec, &c->p));
    CHECK_OK(dmahal_verify_enable(c->p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_OK(dmahal_device_open(c->p, "nvme:size=64M,serial=dmahal0", &c->d));
    CHECK_OK(nvme_open(c->d, &c->n));
    CHECK_OK(nvme_identify(c->n, &c->info));
}

static void down(struct ctx *c)
{
    nvme_close(c->n);
    dmahal_device_close(c->d);
    CHECK_EQ(dmahal_verify_count(c->p, 0), 0);
    dmahal_platform_close(c->p);
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 9));
}

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
