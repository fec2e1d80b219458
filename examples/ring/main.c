/* SPDX-License-Identifier: MIT */
/*
 * main.c - the "ring" copy engine's driver, run on the simulated platform: rounds of
 * descriptors through the ring, each round ended by the device's interrupt.
 *
 *   ring [SPEC]   SPEC: a sim platform spec (default "sim"), e.g. "sim:iommu=on,seed=3"
 *
 * Exit status 0 when every byte arrived where it should.
 */
#include <dmahal/dmahal.h>

#include <stdio.h>
#include <string.h>

#include "ring_model.h"
#include "ring_regs.h"

#define ENTRIES 16
#define ROUNDS  4
#define BUF_LEN 4096

struct drv {
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf ring, src[ENTRIES], dst[ENTRIES];
    uint32_t tail;
    bool irq; /* interrupts, or polling the consumer index */
};

static int setup(struct drv *v)
{
    const struct dmahal_desc desc = {.addr_bits = 64};
    int rc = dmahal_adapter_get(v->d, &desc, &v->a);

    if (rc == 0)
        rc = dmahal_common_alloc(v->a, ENTRIES * sizeof(struct ring_desc), 0, &v->ring);
    for (int i = 0; rc == 0 && i < ENTRIES; i++) {
        rc = dmahal_common_alloc(v->a, BUF_LEN, 0, &v->src[i]);
        if (rc == 0)
            rc = dmahal_common_alloc(v->a, BUF_LEN, 0, &v->dst[i]);
    }
    if (rc)
        return rc;
    /* INTx if the platform has interrupts; else the driver polls the consumer index. */
    v->irq = dmahal_irq_enable(v->d, DMAHAL_IRQ_INTX, 1) == 1;
    dmahal_mmio_write64(v->d, 0, RING_REG_BASE, v->ring.la);
    dmahal_mmio_write32(v->d, 0, RING_REG_SIZE, ENTRIES);
    dmahal_mmio_write32(v->d, 0, RING_REG_CTRL, v->irq ? RING_CTRL_IRQ : 0);
    return 0;
}

/* Queues ENTRIES copies of varied lengths and rings the doorbell once. */
static void submit(struct drv *v, unsigned round)
{
    struct ring_desc *ring = v->ring.va;

    for (unsigned i = 0; i < ENTRIES; i++) {
        uint32_t len = 1 + (i * 509 + round * 97) % BUF_LEN;
        unsigned char *s = v->src[i].va;

        for (uint32_t j = 0; j < len; j++)
            s[j] = (unsigned char)(round * 31 + i * 7 + j);
        memset(v->dst[i].va, 0, BUF_LEN);
        ring[(v->tail + i) % ENTRIES] =
            (struct ring_desc){.src = v->src[i].la, .dst = v->dst[i].la, .len = len, .cookie = i};
    }
    v->tail += ENTRIES;
    dmahal_mmio_write32(v->d, 0, RING_REG_DOORBELL, v->tail);
}

/* Waits until the device has consumed everything, by interrupt or by polling. */
static int complete(struct drv *v)
{
    for (int spins = 0; dmahal_mmio_read32(v->d, 0, RING_REG_DONE) != v->tail; spins++) {
        if (v->irq) {
            int rc = dmahal_irq_wait(v->d, 0, 5000);

            if (rc)
                return rc;
            dmahal_mmio_write32(v->d, 0, RING_REG_IRQ, 1); /* acknowledge: the line drops */
            dmahal_irq_unmask(v->d, 0);
        } else if (spins > 1000000)
            return -1;
    }
    return 0;
}

static int check(struct drv *v, unsigned round)
{
    const struct ring_desc *ring = v->ring.va;

    for (unsigned i = 0; i < ENTRIES; i++) {
        const struct ring_desc *e = &ring[(v->tail - ENTRIES + i) % ENTRIES];

        if (e->status != RING_DESC_DONE || memcmp(v->src[i].va, v->dst[i].va, e->len) != 0) {
            fprintf(stderr, "ring: round %u, descriptor %u: status %u, data %s\n", round, i,
                    e->status, memcmp(v->src[i].va, v->dst[i].va, e->len) ? "differs" : "ok");
            return -1;
        }
    }
    return 0;
}

static void teardown(struct drv *v)
{
    if (!v->a)
        return;
    if (v->irq)
        dmahal_irq_disable(v->d);
    for (int i = 0; i < ENTRIES; i++) {
        if (v->src[i].va)
            dmahal_common_free(v->a, &v->src[i]);
        if (v->dst[i].va)
            dmahal_common_free(v->a, &v->dst[i]);
    }
    if (v->ring.va)
        dmahal_common_free(v->a, &v->ring);
    dmahal_adapter_put(v->a);
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "sim";
    struct dmahal_platform *p;
    struct drv v = {0};
    uint64_t ns = 0;
    int rc;

    rc = ring_model_register();
    if (rc == 0)
        rc = dmahal_platform_open(spec, &p);
    if (rc) {
        fprintf(stderr, "ring: %s: %s\n", spec, dmahal_strerror(rc));
        return 1;
    }
    rc = dmahal_device_open(p, "ring", &v.d);
    if (rc == 0)
        rc = setup(&v);
    for (unsigned round = 0; rc == 0 && round < ROUNDS; round++) {
        submit(&v, round);
        rc = complete(&v);
        if (rc == 0)
            rc = check(&v, round);
    }
    if (rc == 0 && dmahal_mmio_read32(v.d, 0, RING_REG_ERRORS) != 0)
        rc = -1;
    dmahal_sim_now(p, &ns);
    printf("ring: %s: %u descriptors copied (%s), platform time %.3f ms\n", rc ? "FAILED" : "ok",
           v.tail, v.irq ? "interrupts" : "polling", (double)ns / 1e6);
    teardown(&v);
    dmahal_platform_close(p);
    return rc ? 1 : 0;
}
