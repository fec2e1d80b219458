/* SPDX-License-Identifier: MIT */
/*
 * test_edu.c - the sim platform's model of QEMU's edu device, through the public API only:
 * registers as a driver sees them, and DMA into and out of common buffers.
 */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <time.h>

#include "edu/edu_regs.h"
#include "rig.h"
#include "test.h"

/* The register map of docs/devices/edu.md, written out again here on purpose: the test
 * checks the model against the spec, not against the model's own constants. */

#define MASK28 ((UINT64_C(1) << 28) - 1)

/* Opens @spec, a device @dev on it and an adapter of @bits address bits. */
static void edu_open(struct rig *r, const char *spec, const char *dev, unsigned bits)
{
    struct dmahal_desc desc = {.addr_bits = bits};

    rig_open_dev(r, spec, dev, &desc);
}

/* Starts a transfer the way a polling driver does, and waits for RUN to clear. */
static void dma(struct dmahal_device *d, uint64_t src, uint64_t dst, uint64_t cnt, uint32_t cmd)
{
    int spins = 0;

    dmahal_mmio_write64(d, 0, EDU_REG_DMA_SRC, src);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_DST, dst);
    dmahal_mmio_write64(d, 0, EDU_REG_DMA_CNT, cnt);
    dmahal_mmio_write32(d, 0, EDU_REG_DMA_CMD, cmd | EDU_CMD_RUN);
    while (dmahal_mmio_read32(d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN)
        CHECK_LT(++spins, 1000);
}

/* Writes a factorial's operand and polls STATUS until the device has computed it, as a
 * driver does: the result comes fact_ns of platform time later. */
static void fact(struct dmahal_device *d, uint32_t n)
{
    int spins = 0;

    dmahal_mmio_write32(d, 0, EDU_REG_FACT, n);
    while (dmahal_mmio_read32(d, 0, EDU_REG_STATUS) & 0x01)
        CHECK_LT(++spins, 1000);
}

/* Reference for the factorial register: n! modulo 2^32, the slow way. */
static uint32_t ref_factorial(uint32_t n)
{
    uint64_t r = 1;

    for (uint64_t i = 2; i <= n; i++)
        r = (r * i) & UINT32_MAX;
    return (uint32_t)r;
}

/* ---- identification, liveness, BAR -------------------------------------------------- */

TEST(edu_identification_is_read_only)
{
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_ID), 0x010000ed);
    dmahal_mmio_write32(r.d, 0, EDU_REG_ID, 0x12345678);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_ID), 0x010000ed);
    rig_close(&r);
}

TEST(edu_liveness_inverts)
{
    static const uint32_t vals[] = {0, 1, 0xdeadbeef, 0xffffffff, 0x80000000};
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_LIVENESS), 0); /* reset value */
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        dmahal_mmio_write32(r.d, 0, EDU_REG_LIVENESS, vals[i]);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_LIVENESS), (uint32_t)~vals[i]);
    }
    rig_close(&r);
}

TEST(edu_bar0_is_one_mib)
{
    struct rig r;
    uint64_t size;

    edu_open(&r, "sim", "edu", 28);
    CHECK_OK(dmahal_device_bar_size(r.d, 0, &size));
    CHECK_EQ_U(size, 1u << 20);
    for (unsigned bar = 1; bar < 6; bar++) {
        CHECK_OK(dmahal_device_bar_size(r.d, bar, &size));
        CHECK_EQ_U(size, 0);
    }
    /* The last register of the BAR answers (unassigned: all ones); the next byte is out. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, (1u << 20) - 4), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, 1u << 20), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 1, EDU_REG_ID), 0xffffffff);
    rig_close(&r);
}

TEST(edu_instances_are_independent)
{
    struct rig r;
    struct dmahal_device *d2;

    edu_open(&r, "sim", "edu", 28);
    CHECK_OK(dmahal_device_open(r.p, "edu", &d2));
    dmahal_mmio_write32(r.d, 0, EDU_REG_LIVENESS, 0x1111);
    dmahal_mmio_write32(d2, 0, EDU_REG_LIVENESS, 0x2222);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x8);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_LIVENESS), (uint32_t)~0x1111u);
    CHECK_EQ_U(dmahal_mmio_read32(d2, 0, EDU_REG_LIVENESS), (uint32_t)~0x2222u);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    CHECK_EQ(dmahal_irq_pending(d2), 0);
    CHECK_EQ_U(dmahal_mmio_read32(d2, 0, EDU_REG_IRQ_STATUS), 0);
    dmahal_device_close(d2);
    rig_close(&r);
}

/* ---- access sizes and unassigned offsets ---------------------------------------------- */

TEST(edu_rejects_8_byte_access_below_0x80)
{
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, EDU_REG_ID), UINT64_MAX);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, EDU_REG_FACT), UINT64_MAX);
    /* Ignored writes: the liveness register keeps its reset value, no factorial starts,
     * no interrupt is raised. */
    dmahal_mmio_write64(r.d, 0, EDU_REG_LIVENESS - 4, 0); /* 8 bytes at 0x00 spans 0x04 */
    dmahal_mmio_write64(r.d, 0, EDU_REG_FACT, 5);
    dmahal_mmio_write64(r.d, 0, EDU_REG_IRQ_RAISE, 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_LIVENESS), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    rig_close(&r);
}

TEST(edu_dma_registers_are_64_bit_words)
{
    static const unsigned regs[] = {EDU_REG_DMA_SRC, EDU_REG_DMA_DST, EDU_REG_DMA_CNT};
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    for (size_t i = 0; i < 3; i++) {
        uint64_t v = UINT64_C(0x123456789abcdef0) + i;

        /* Stored whole: the mask applies when a transfer uses the address, not here. */
        dmahal_mmio_write64(r.d, 0, regs[i], v);
        CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, regs[i]), v);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, regs[i]), (uint32_t)v);
        /* The high half is not a register of its own: QEMU leaves +4 unassigned. */
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, regs[i] + 4), 0xffffffff);
        dmahal_mmio_write32(r.d, 0, regs[i] + 4, 0);
        CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, regs[i]), v);
        /* A 4-byte write replaces the whole register, zero-extended. */
        dmahal_mmio_write32(r.d, 0, regs[i], 0xcafef00d);
        CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, regs[i]), 0xcafef00d);
    }
    rig_close(&r);
}

TEST(edu_unassigned_offsets_read_all_ones)
{
    static const unsigned offs[] = {0x0c, 0x10, 0x1c,  0x28,         0x5c,   0x68,
                                    0x7c, 0xa8, 0x100, EDU_BUF_ADDR, 0xffffc};
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        dmahal_mmio_write32(r.d, 0, offs[i], 0);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, offs[i]), 0xffffffff);
    }
    /* The write-only registers read as unassigned too. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_RAISE), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_ACK), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, 0xa8), UINT64_MAX);
    /* A misaligned access is refused by the bus before it reaches the device. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_ID + 2), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, EDU_REG_DMA_SRC + 4), UINT64_MAX);
    rig_close(&r);
}

/* ---- factorial and status ---------------------------------------------------------------- */

TEST(edu_factorial_values)
{
    static const uint32_t big[] = {33, 34, 35, 100, 0x7fffffff, 0xffffffff};
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    for (uint32_t n = 0; n <= 40; n++) {
        fact(r.d, n);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), ref_factorial(n));
    }
    CHECK_EQ_U(ref_factorial(12), 479001600); /* the reference itself, on a known value */
    /* 33! holds 31 factors of two and 34! 32: the first result that wraps to zero. */
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        fact(r.d, big[i]);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), big[i] == 33 ? 0x80000000u : 0);
    }
    /* A factorial raises no interrupt unless asked to. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    rig_close(&r);
}

/* The work takes platform time, as QEMU's timer and worker thread do; a latency of 0 is the
 * synchronous device. */
TEST(edu_work_takes_time)
{
    struct rig r;
    uint64_t t0, t1;

    edu_open(&r, "sim", "edu", 28);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 5);
    /* Computing: the register reads the operand until the result is in. */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS) & 0x01, 0x01);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 5);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 7); /* ignored while computing */
    CHECK_OK(dmahal_sim_advance(r.p, 20000));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS) & 0x01, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 120);
    /* A transfer runs 100 ms (plus jitter) after its command. */
    CHECK_OK(dmahal_sim_now(r.p, &t0));
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_SRC, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_DST, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_CNT, 8);
    dmahal_mmio_write32(r.d, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN | EDU_CMD_TO_RAM);
    CHECK_OK(dmahal_sim_advance(r.p, 99000000));
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN, EDU_CMD_RUN);
    while (dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN)
        ;
    CHECK_OK(dmahal_sim_now(r.p, &t1));
    CHECK_GE_U(t1 - t0, 100000000);
    CHECK_LE_U(t1 - t0, 126000000);
    rig_close(&r);

    edu_open(&r, "sim", "edu:dma_ns=0,fact_ns=0", 28);
    dmahal_mmio_write32(r.d, 0, EDU_REG_FACT, 5);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS) & 0x01, 0); /* done at once */
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 120);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_SRC, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_DST, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_CNT, 8);
    dmahal_mmio_write32(r.d, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN | EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN, 0);
    rig_close(&r);
}

TEST(edu_status_register)
{
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS), 0);
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0x80);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS), 0x80);
    /* Only 0x80 is writable: 0x01 is the device's, and other bits do not stick. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS), 0x80);
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0x01);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_STATUS), 0);
    rig_close(&r);
}

TEST(edu_factorial_interrupt)
{
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0x80);
    CHECK_EQ(dmahal_irq_pending(r.d), 0); /* asking raises nothing by itself */
    fact(r.d, 10);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 3628800);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x01);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x01);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    /* Cleared again: the next factorial is silent. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_STATUS, 0);
    fact(r.d, 3);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_FACT), 6);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    rig_close(&r);
}

/* ---- interrupt controller ---------------------------------------------------------------- */

TEST(edu_interrupt_raise_and_ack)
{
    struct rig r;

    edu_open(&r, "sim", "edu", 28);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0); /* nothing to raise */
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x5);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_RAISE, 0x80000000);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x80000005);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    /* The status register is read-only. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_STATUS, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x80000005);
    /* The line stays up until every cause is acknowledged. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x80000004);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x80000000);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x4);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    /* Acknowledging what is not pending changes nothing. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0xffffffff);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    rig_close(&r);
}

/* ---- DMA ------------------------------------------------------------------------------- */

/* The spec's example: 100 bytes RAM -> device, then back to RAM 100 bytes further on. */
static void round_trip(const char *spec, const char *dev, unsigned bits)
{
    struct rig r;
    struct dmahal_buf b;
    unsigned char *c;

    edu_open(&r, spec, dev, bits);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    fill(b.va, b.len, 1);
    c = b.va;
    memset(c + 100, 0xee, 200);

    dma(r.d, b.la, EDU_BUF_ADDR, 100, 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 0);
    dma(r.d, EDU_BUF_ADDR, b.la + 100, 100, EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 0);
    CHECK_EQ(memcmp(c, c + 100, 100), 0);
    CHECK_EQ(c[200], 0xee); /* not a byte more */
    CHECK_EQ(c[99], (unsigned char)(1 + 99 * 7));

    /* The command register keeps its other bits; RUN is what clears. */
    CHECK_EQ_U(dmahal_mmio_read64(r.d, 0, EDU_REG_DMA_CMD), EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 0);
    CHECK_EQ(dmahal_irq_pending(r.d), 0); /* not asked for */
    CHECK_EQ_U(dmahal_fault_count(r.p), 0);
    CHECK_OK(dmahal_common_free(r.a, &b));
    rig_close(&r);
}

TEST(edu_dma_round_trip_no_iommu)
{
    round_trip("sim", "edu", 28);
}

TEST(edu_dma_round_trip_iommu)
{
    round_trip("sim:iommu=on", "edu", 28);
}

TEST(edu_dma_round_trip_64bit_mask)
{
    round_trip("sim", "edu:dma_mask=0xffffffffffffffff", 64);
    round_trip("sim:iommu=on", "edu:dma_mask=0xffffffffffffffff", 64);
}

TEST(edu_dma_round_trip_32bit_mask)
{
    round_trip("sim", "edu:dma_mask=0xffffffff", 32);
    round_trip("sim:iommu=on", "edu:dma_mask=4294967295", 32);
}

/* The whole buffer both ways, in pieces at odd offsets, with the data checked end to end. */
TEST(edu_dma_whole_buffer)
{
    struct rig r;
    struct dmahal_buf in, out;

    edu_open(&r, "sim:iommu=on", "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &in));
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &out));
    fill(in.va, in.len, 3);
    dma(r.d, in.la + 1, EDU_BUF_ADDR, 1000, 0);
    dma(r.d, in.la + 1001, EDU_BUF_ADDR + 1000, 3096, 0);
    dma(r.d, EDU_BUF_ADDR, out.la + 4095, 4096, EDU_CMD_TO_RAM);
    CHECK_EQ(memcmp((char *)in.va + 1, (char *)out.va + 4095, 4096), 0);
    CHECK_EQ(((unsigned char *)out.va)[4094], 0);
    CHECK_EQ(((unsigned char *)out.va)[8191], 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 0);
    rig_close(&r);
}

TEST(edu_dma_interrupt)
{
    struct rig r;
    struct dmahal_buf b;

    edu_open(&r, "sim", "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    dma(r.d, b.la, EDU_BUF_ADDR, 64, EDU_CMD_IRQ);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x100);
    CHECK_EQ(dmahal_irq_pending(r.d), 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD), EDU_CMD_IRQ);
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x100);
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    dma(r.d, EDU_BUF_ADDR, b.la, 64, EDU_CMD_TO_RAM | EDU_CMD_IRQ);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x100);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD), EDU_CMD_TO_RAM | EDU_CMD_IRQ);
    rig_close(&r);
}

TEST(edu_dma_command_without_run_is_ignored)
{
    struct rig r;
    struct dmahal_buf b;

    edu_open(&r, "sim", "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 64, 0, &b));
    fill(b.va, b.len, 9);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_SRC, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_DST, b.la);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_CNT, 64);
    dmahal_mmio_write32(r.d, 0, EDU_REG_DMA_CMD, EDU_CMD_TO_RAM | EDU_CMD_IRQ);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD), 0); /* not even stored */
    CHECK_EQ(((unsigned char *)b.va)[0], 9);                    /* nothing moved */
    CHECK_EQ(dmahal_irq_pending(r.d), 0);
    rig_close(&r);
}

/* The default mask drops address bits 28 and up: a driver that programs an address the
 * device cannot drive has its data land lower. */
static void truncation(const char *spec)
{
    struct rig r;
    struct dmahal_buf b;
    unsigned char *c;

    edu_open(&r, spec, "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_LE_U(b.la + b.len - 1, MASK28); /* a 28-bit adapter gives 28-bit addresses */
    fill(b.va, b.len, 5);
    c = b.va;

    dma(r.d, b.la | (UINT64_C(1) << 28) | (UINT64_C(0xabc) << 40), EDU_BUF_ADDR, 256, 0);
    dma(r.d, EDU_BUF_ADDR, (b.la + 1024) | (UINT64_C(1) << 63), 256, EDU_CMD_TO_RAM);
    CHECK_EQ(memcmp(c, c + 1024, 256), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 0);
    CHECK_EQ_U(dmahal_fault_count(r.p), 0);
    rig_close(&r);
}

TEST(edu_dma_mask_truncates_no_iommu)
{
    truncation("sim");
}

TEST(edu_dma_mask_truncates_iommu)
{
    truncation("sim:iommu=on");
}

/* With the mask wide open the same high bits are driven: the data does not land in the
 * buffer (on the IOMMU platform the access faults at the untruncated address). */
TEST(edu_dma_wide_mask_does_not_truncate)
{
    struct rig r;
    struct dmahal_buf b;
    struct dmahal_fault f = {.size = sizeof(f)};
    uint64_t hi;

    edu_open(&r, "sim:iommu=on", "edu:dma_mask=0xffffffffffffffff", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    hi = b.la | (UINT64_C(1) << 40);
    fill(b.va, b.len, 5);
    dma(r.d, EDU_BUF_ADDR, hi, 256, EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 2);
    CHECK_EQ_U(dmahal_fault_count(r.p), 1);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ_U(f.la, hi);
    CHECK_EQ(f.reason, DMAHAL_FAULT_UNMAPPED);
    CHECK(f.write);
    CHECK_EQ(((unsigned char *)b.va)[0], 5);
    rig_close(&r);
}

/* Buffer-side ranges QEMU refuses: the command completes, nothing moves, and the model's
 * error registers say so. */
TEST(edu_dma_out_of_buffer_refused)
{
    static const struct {
        uint64_t dev, cnt;
    } bad[] = {
        {EDU_BUF_ADDR, EDU_BUF_SIZE + 1},         /* count beyond the buffer */
        {EDU_BUF_ADDR + 4000, 97},                /* ends one byte past it */
        {EDU_BUF_ADDR - 1, 2},                    /* starts before it */
        {EDU_BUF_ADDR + EDU_BUF_SIZE, 1},         /* starts at its end */
        {EDU_BUF_ADDR, 0},                        /* nothing to move: QEMU 7.2 refuses it too */
        {EDU_BUF_ADDR + 16, UINT64_MAX - 8},      /* wraps */
        {0, 16},                                  /* not the buffer at all */
        {EDU_BUF_ADDR | (UINT64_C(1) << 32), 16}, /* the device side is not masked */
    };
    const size_t n = sizeof(bad) / sizeof(bad[0]);
    struct rig r;
    struct dmahal_buf b;
    unsigned char *c;

    edu_open(&r, "sim", "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b));
    c = b.va;
    fill(b.va, b.len, 11);
    dma(r.d, b.la, EDU_BUF_ADDR, EDU_BUF_SIZE, 0); /* the buffer now holds the pattern */
    memset(c, 0, 8192);
    for (size_t i = 0; i < n; i++) {
        /* RAM -> device: the buffer must keep the pattern (checked below). */
        dma(r.d, b.la + 4096, bad[i].dev, bad[i].cnt, EDU_CMD_IRQ);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 1);
        /* device -> RAM: RAM must stay zero. */
        dma(r.d, bad[i].dev, b.la, bad[i].cnt, EDU_CMD_TO_RAM | EDU_CMD_IRQ);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 1);
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 2 * (i + 1));
        CHECK_EQ(c[0], 0);
        /* The command completed: an interrupt-driven driver does not hang. */
        CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x100);
        dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, 0x100);
    }
    for (size_t i = 0; i < 8192; i++)
        CHECK_EQ(c[i], 0);
    /* A good transfer afterwards works, and clears the error register. */
    dma(r.d, EDU_BUF_ADDR, b.la, EDU_BUF_SIZE, EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 0);
    for (size_t i = 0; i < EDU_BUF_SIZE; i++)
        CHECK_EQ(c[i], (unsigned char)(11 + i * 7 + (i >> 8)));
    CHECK_EQ_U(dmahal_fault_count(r.p), 0); /* refused before the bus */
    rig_close(&r);
}

/* The exact ends of the buffer are in range: its last byte alone, and all of it. */
TEST(edu_dma_buffer_edges_accepted)
{
    struct rig r;
    struct dmahal_buf b;
    unsigned char *c;

    edu_open(&r, "sim", "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 8192, 0, &b));
    c = b.va;
    c[0] = 0x5a;
    dma(r.d, b.la, EDU_BUF_ADDR + EDU_BUF_SIZE - 1, 1, 0);
    c[0] = 0xa5;
    dma(r.d, b.la, EDU_BUF_ADDR, 1, 0);
    dma(r.d, EDU_BUF_ADDR + EDU_BUF_SIZE - 1, b.la + 8191, 1, EDU_CMD_TO_RAM);
    CHECK_EQ(c[8191], 0x5a);
    dma(r.d, EDU_BUF_ADDR, b.la + 1, EDU_BUF_SIZE, EDU_CMD_TO_RAM);
    CHECK_EQ(c[1], 0xa5);
    CHECK_EQ(c[EDU_BUF_SIZE], 0x5a);
    CHECK_EQ(c[EDU_BUF_SIZE + 1], 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 0);
    rig_close(&r);
}

/* A RAM-side access the platform refuses: a fault at the truncated address, and the device
 * stays usable. The machine has RAM below 64 MiB only, so 128 MiB is nobody's. */
TEST(edu_dma_fault_leaves_device_sane)
{
    struct rig r;
    struct dmahal_buf b;
    struct dmahal_fault f = {.size = sizeof(f)};
    const uint64_t hole = UINT64_C(128) << 20;

    edu_open(&r, "sim:ram=0-64M", "edu", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    fill(b.va, b.len, 13);

    dma(r.d, b.la, EDU_BUF_ADDR, 4096, 0);
    dma(r.d, hole | (UINT64_C(1) << 28), EDU_BUF_ADDR, 4096, EDU_CMD_IRQ);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 2);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 1);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_IRQ_STATUS), 0x100);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD), EDU_CMD_IRQ);
    CHECK_EQ_U(dmahal_fault_count(r.p), 1);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ_U(f.la, hole); /* what the device drove, after the mask */
    CHECK_EQ(f.reason, DMAHAL_FAULT_NO_RAM);
    CHECK(!f.write);
    CHECK_STR(f.device, "edu");

    dma(r.d, EDU_BUF_ADDR, hole + 8, 16, EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_fault_count(r.p), 2);
    CHECK_OK(dmahal_fault_get(r.p, 1, &f));
    CHECK_EQ_U(f.la, hole + 8);
    CHECK(f.write);

    /* The device's buffer still holds what the good transfer brought. */
    memset(b.va, 0, 4096);
    dma(r.d, EDU_BUF_ADDR, b.la, 4096, EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_FAILS), 2);
    for (size_t i = 0; i < 4096; i++)
        CHECK_EQ(((unsigned char *)b.va)[i], (unsigned char)(13 + i * 7 + (i >> 8)));
    rig_close(&r);
}

/* ---- arguments ------------------------------------------------------------------------- */

TEST(edu_bad_arguments)
{
    static const char *bad[] = {
        "edu:dma_mask",        "edu:dma_mask=",         "edu:dma_mask=0x",
        "edu:dma_mask=-1",     "edu:dma_mask= 1",       "edu:dma_mask=0x1g",
        "edu:dma_mask=1 ",     "edu:mask=0xffffffff",   "edu:dma_mask=0x10000000000000000",
        "edu:DMA_MASK=0xffff", "edu:dma_mask=0xff,x=1", "edu:dma_mask=08",
        "edu:dma_ns=",         "edu:dma_ns=-1",         "edu:fact_ns=3600000000001",
        "edu:dma_ns=1,",       "edu:,dma_ns=1",         "edu:fact_ns=1x",
    };
    struct dmahal_platform *p;
    struct dmahal_device *d;

    CHECK_OK(dmahal_platform_open("sim", &p));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = (struct dmahal_device *)&p; /* must come back cleared */
        CHECK_ERR(dmahal_device_open(p, bad[i], &d), -EINVAL);
        CHECK(d == NULL);
    }
    /* Accepted forms: hex, decimal, octal as QEMU's parser takes them, and none at all. */
    CHECK_OK(dmahal_device_open(p, "edu:dma_mask=0xfff", &d));
    dmahal_device_close(d);
    CHECK_OK(dmahal_device_open(p, "edu:dma_mask=4095", &d));
    dmahal_device_close(d);
    CHECK_OK(dmahal_device_open(p, "edu:dma_mask=07777", &d));
    dmahal_device_close(d);
    CHECK_OK(dmahal_device_open(p, "edu:dma_mask=0xfff,dma_ns=5,fact_ns=3600000000000", &d));
    dmahal_device_close(d);
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_STR(dmahal_device_name(d), "edu");
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

/* An odd mask, set by argument, applies bit for bit: 0xfff0 folds every address into the
 * first 64 KiB, where this machine has no RAM, and clears the low four bits. */
TEST(edu_dma_mask_argument_applies)
{
    struct rig r;
    struct dmahal_buf b;
    struct dmahal_fault f = {.size = sizeof(f)};

    edu_open(&r, "sim:ram=16M-32M", "edu:dma_mask=0xfff0", 28);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_GE_U(b.la, UINT64_C(16) << 20);
    dma(r.d, EDU_BUF_ADDR, b.la + 0x13, 16, EDU_CMD_TO_RAM);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 2);
    CHECK_EQ_U(dmahal_fault_count(r.p), 1);
    CHECK_OK(dmahal_fault_get(r.p, 0, &f));
    CHECK_EQ_U(f.la, (b.la + 0x13) & 0xfff0);
    CHECK_EQ(f.reason, DMAHAL_FAULT_NO_RAM);
    rig_close(&r);
}

/* The bug the mask exists to teach: on a machine without an IOMMU, a buffer from a 64-bit
 * adapter sits above 4 GiB (frames are handed out high-first), and the 28-bit device
 * writes somewhere else in RAM, silently. Told its real width, the same device works. */
static void high_buffer(const char *dev, bool lands)
{
    struct rig r;
    struct dmahal_adapter *a64;
    struct dmahal_desc desc = {.addr_bits = 64};
    struct dmahal_buf lo, hi;

    edu_open(&r, "sim", dev, 28);
    CHECK_OK(dmahal_adapter_get(r.d, &desc, &a64));
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &lo));
    CHECK_OK(dmahal_common_alloc(a64, 4096, 0, &hi));
    CHECK_GE_U(hi.la, UINT64_C(4) << 30);
    fill(lo.va, lo.len, 17);
    dma(r.d, lo.la, EDU_BUF_ADDR, 4096, 0);
    dma(r.d, EDU_BUF_ADDR, hi.la, 4096, EDU_CMD_TO_RAM);
    CHECK_EQ(memcmp(lo.va, hi.va, 4096) == 0, lands);
    if (!lands)
        CHECK_EQ(((unsigned char *)hi.va)[0], 0);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_SIM_DMA_RESULT), 0); /* nobody noticed */
    CHECK_EQ_U(dmahal_fault_count(r.p), 0);
    dmahal_adapter_put(a64);
    rig_close(&r);
}

TEST(edu_dma_above_mask_lands_elsewhere)
{
    high_buffer("edu", false);
}

TEST(edu_dma_64bit_mask_reaches_high_ram)
{
    high_buffer("edu:dma_mask=0xffffffffffffffff", true);
}

/* A driver that sleeps in dmahal_irq_wait has virtual time move to its interrupt at once:
 * the 100 ms transfer does not cost 100 ms of real time. */
TEST(edu_irq_wait_moves_virtual_time)
{
    struct rig r;
    struct timespec t0, t1;
    uint64_t now, t0_ns;

    edu_open(&r, "sim:idle=0", "edu", 28);
    CHECK_EQ(dmahal_irq_enable(r.d, DMAHAL_IRQ_INTX, 1), 1);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_SRC, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_DST, EDU_BUF_ADDR);
    dmahal_mmio_write64(r.d, 0, EDU_REG_DMA_CNT, 8);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dmahal_mmio_write32(r.d, 0, EDU_REG_DMA_CMD, EDU_CMD_RUN | EDU_CMD_TO_RAM | EDU_CMD_IRQ);
    CHECK_OK(dmahal_irq_wait(r.d, 0, 10000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_OK(dmahal_sim_now(r.p, &now));
    CHECK_GE_U(now, 100000000);
    CHECK_LT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 90);
    CHECK_EQ_U(dmahal_mmio_read32(r.d, 0, EDU_REG_DMA_CMD) & EDU_CMD_RUN, 0);
    /* Nothing pending: a wait with a timeout lets that much virtual time pass. */
    dmahal_mmio_write32(r.d, 0, EDU_REG_IRQ_ACK, EDU_IRQ_DMA);
    CHECK_OK(dmahal_irq_unmask(r.d, 0));
    CHECK_ERR(dmahal_irq_wait(r.d, 0, 5), -ETIMEDOUT);
    CHECK_OK(dmahal_sim_now(r.p, &t0_ns));
    CHECK_GE_U(t0_ns, now + 5000000);
    CHECK_OK(dmahal_irq_disable(r.d));
    rig_close(&r);
}
