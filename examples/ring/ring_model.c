/* SPDX-License-Identifier: MIT */
/*
 * ring_model.c - the device model of "ring" (ring_regs.h), written as a model outside the
 * library is: against <dmahal/device.h> only. docs/models.md walks through it.
 *
 * Time: a doorbell schedules the engine; each descriptor takes RING_NS_PER_DESC plus a
 * nanosecond a byte of platform time, after which the engine copies it, writes its status,
 * and reschedules itself while descriptors remain. All state is under the model's lock: with
 * sim:time=threads the engine runs on the device's thread beside the driver's accesses.
 */
#include "ring_model.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "ring_regs.h"

#define RING_NS_PER_DESC 2000u

struct ring {
    pthread_mutex_t lock;
    uint64_t base;
    uint32_t size, ctrl, errors;
    uint32_t tail; /* the doorbell: producer index */
    uint32_t head; /* consumer index */
    bool busy;     /* the engine is scheduled */
    bool irq;
    unsigned char buf[RING_MAX_COPY];
};

static int ring_init(struct dmahal_device *d, void *state, const char *args)
{
    struct ring *r = state;

    (void)d;
    if (args && *args)
        return -EINVAL; /* the model takes no arguments */
    r->size = 16;
    return -pthread_mutex_init(&r->lock, NULL);
}

static void ring_fini(struct dmahal_device *d, void *state)
{
    (void)d;
    pthread_mutex_destroy(&((struct ring *)state)->lock);
}

/* Under the lock: how long the next descriptor takes (its length, read ahead). */
static uint64_t next_delay(struct dmahal_device *d, struct ring *r)
{
    struct ring_desc desc;
    uint64_t at = r->base + (uint64_t)(r->head % r->size) * sizeof(desc);

    if (dmahal_dev_read(d, at, &desc, sizeof(desc)) != 0 || desc.len > RING_MAX_COPY)
        return RING_NS_PER_DESC;
    return RING_NS_PER_DESC + desc.len;
}

static void engine(struct dmahal_device *d, void *state, void *arg);

/* Under the lock: schedules the engine if there is work and it is not scheduled yet. */
static void kick(struct dmahal_device *d, struct ring *r)
{
    if (r->busy || r->head == r->tail || !r->base)
        return;
    if (dmahal_model_schedule(d, next_delay(d, r), engine, NULL, NULL) == 0)
        r->busy = true;
}

/* One descriptor: read it, copy, write the status back. */
static void process(struct dmahal_device *d, struct ring *r)
{
    struct ring_desc desc;
    uint64_t at = r->base + (uint64_t)(r->head % r->size) * sizeof(desc);
    uint32_t status = RING_DESC_ERROR;

    if (dmahal_dev_read(d, at, &desc, sizeof(desc)) == 0) {
        if (desc.len >= 1 && desc.len <= RING_MAX_COPY &&
            dmahal_dev_read(d, desc.src, r->buf, desc.len) == 0 &&
            dmahal_dev_write(d, desc.dst, r->buf, desc.len) == 0)
            status = RING_DESC_DONE;
        dmahal_dev_write(d, at + offsetof(struct ring_desc, status), &status, sizeof(status));
    }
    if (status != RING_DESC_DONE)
        r->errors++;
    r->head++;
}

static void engine(struct dmahal_device *d, void *state, void *arg)
{
    struct ring *r = state;

    (void)arg;
    pthread_mutex_lock(&r->lock);
    r->busy = false;
    if (r->head != r->tail)
        process(d, r);
    if (r->head == r->tail) {
        if ((r->ctrl & RING_CTRL_IRQ) && !r->irq) {
            r->irq = true;
            dmahal_irq_set(d, true);
        }
    } else
        kick(d, r);
    pthread_mutex_unlock(&r->lock);
}

static uint64_t ring_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                          unsigned size)
{
    struct ring *r = state;
    uint64_t v = UINT64_MAX;

    (void)d;
    if (bar != 0 || (size == 8 && off != RING_REG_BASE))
        return UINT64_MAX;
    pthread_mutex_lock(&r->lock);
    switch (off) {
    case RING_REG_ID:
        v = RING_ID;
        break;
    case RING_REG_BASE:
        v = r->base;
        break;
    case RING_REG_SIZE:
        v = r->size;
        break;
    case RING_REG_DONE:
        v = r->head;
        break;
    case RING_REG_IRQ:
        v = r->irq;
        break;
    case RING_REG_CTRL:
        v = r->ctrl;
        break;
    case RING_REG_ERRORS:
        v = r->errors;
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return size == 8 ? v : v & UINT32_MAX;
}

static void ring_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                       uint64_t val, unsigned size)
{
    struct ring *r = state;
    bool idle;

    if (bar != 0 || (size == 8 && off != RING_REG_BASE))
        return;
    pthread_mutex_lock(&r->lock);
    idle = r->head == r->tail && !r->busy;
    switch (off) {
    case RING_REG_BASE:
        if (idle)
            r->base = size == 8 ? val : (r->base & ~(uint64_t)UINT32_MAX) | (uint32_t)val;
        break;
    case RING_REG_SIZE:
        /* A power of two in range, while idle; anything else is ignored. */
        if (idle && val >= 2 && val <= RING_MAX_ENTRIES && (val & (val - 1)) == 0)
            r->size = (uint32_t)val;
        break;
    case RING_REG_DOORBELL:
        /* A producer index more than a ring ahead is the driver's bug: ignored. */
        if ((uint32_t)val - r->head <= r->size) {
            r->tail = (uint32_t)val;
            kick(d, r);
        }
        break;
    case RING_REG_IRQ:
        if ((val & 1) && r->irq) {
            r->irq = false;
            dmahal_irq_set(d, false);
        }
        break;
    case RING_REG_CTRL:
        r->ctrl = (uint32_t)val & RING_CTRL_IRQ;
        break;
    }
    pthread_mutex_unlock(&r->lock);
}

static const struct dmahal_model ring_model = {
    .size = sizeof(struct dmahal_model),
    .name = "ring",
    .summary = "a descriptor-ring copy engine: ring, doorbell, completion, INTx",
    .state_size = sizeof(struct ring),
    .bar_size = {RING_BAR0_SIZE},
    .init = ring_init,
    .fini = ring_fini,
    .mmio_read = ring_read,
    .mmio_write = ring_write,
    .vendor_id = 0x1234,
    .device_id = 0x5249,
    .class_code = 0x088000, /* system peripheral, other */
    .intx = true,
};

int ring_model_register(void)
{
    int rc = dmahal_model_register(&ring_model);

    return rc == -EEXIST ? 0 : rc;
}
