/* SPDX-License-Identifier: MIT */
/*
 * test_wdm_sgl_thread.c - packet DMA through the Windows names from many threads at once:
 * scatter/gather lists deferred and granted across threads, and adapter channels and map
 * registers passed from thread to thread. Each transfer's data is checked.
 */
#include <dmahal/wdm.h>

#include <dmahal/dmahal.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "test.h"

#define THREADS 4
#define ROUNDS  200
#define PAGE    4096u

struct shared {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    PDMA_ADAPTER a;
    const DMA_OPERATIONS *ops;
    atomic_int failures;
    atomic_int transfers; /* checked ones */
};

struct worker {
    struct shared *s;
    unsigned id;
    atomic_int ready; /* set by the routine, on whichever thread ran it */
    PSCATTER_GATHER_LIST list;
    PVOID base;
};

static void open_shared(struct shared *s, ULONG bits)
{
    DEVICE_DESCRIPTION dd;
    ULONG nregs;

    CHECK_OK(dmahal_platform_open("sim", &s->p));
    CHECK_OK(dmahal_device_open(s->p, "edu", &s->d));
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.ScatterGather = TRUE;
    dd.DmaAddressWidth = bits;
    dd.MaximumLength = 16 * 1024; /* 5 map registers: threads wait for each other */
    s->a = IoGetDmaAdapter(dmahal_wdm_device(s->d), &dd, &nregs);
    CHECK(s->a != NULL);
    s->ops = s->a->DmaOperations;
    atomic_init(&s->failures, 0);
    atomic_init(&s->transfers, 0);
}

static void wait_ready(struct worker *w)
{
    while (!atomic_load_explicit(&w->ready, memory_order_acquire))
        sched_yield();
    atomic_store_explicit(&w->ready, 0, memory_order_relaxed);
}

static VOID on_list(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST ScatterGather,
                    PVOID Context)
{
    struct worker *w = Context;

    (void)DeviceObject;
    (void)Irp;
    w->list = ScatterGather;
    atomic_store_explicit(&w->ready, 1, memory_order_release);
}

static void *list_worker(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    unsigned char *b = malloc(4 * PAGE), *seen = malloc(4 * PAGE);
    PMDL mdl = IoAllocateMdl(b, 4 * PAGE, FALSE, FALSE, NULL);

    for (unsigned r = 0; r < ROUNDS; r++) {
        ULONG off = (w->id * 131 + r * 17) % PAGE, len = PAGE + (r * 1009) % (2 * PAGE) + 1;
        ULONG at = 0;

        for (ULONG i = 0; i < len; i++)
            b[off + i] = (unsigned char)(w->id * 31 + r + i);
        if (s->ops->GetScatterGatherList(s->a, NULL, mdl, b + off, len, on_list, w, TRUE) !=
            STATUS_SUCCESS) {
            atomic_fetch_add(&s->failures, 1);
            continue;
        }
        wait_ready(w);
        for (ULONG i = 0; i < w->list->NumberOfElements; i++) {
            if (dmahal_dev_read(s->d, (dmahal_addr_t)w->list->Elements[i].Address.QuadPart,
                                seen + at, w->list->Elements[i].Length))
                atomic_fetch_add(&s->failures, 1);
            at += w->list->Elements[i].Length;
        }
        if (at != len || memcmp(seen, b + off, len) != 0)
            atomic_fetch_add(&s->failures, 1);
        atomic_fetch_add(&s->transfers, 1);
        s->ops->PutScatterGatherList(s->a, w->list, TRUE);
    }
    IoFreeMdl(mdl);
    free(b);
    free(seen);
    return NULL;
}

static IO_ALLOCATION_ACTION on_channel(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID MapRegisterBase,
                                       PVOID Context)
{
    struct worker *w = Context;

    (void)DeviceObject;
    (void)Irp;
    w->base = MapRegisterBase;
    atomic_store_explicit(&w->ready, 1, memory_order_release);
    return DeallocateObjectKeepRegisters;
}

static void *channel_worker(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    unsigned char *b = malloc(3 * PAGE), *in = malloc(2 * PAGE);
    PMDL mdl = IoAllocateMdl(b, 3 * PAGE, FALSE, FALSE, NULL);

    for (unsigned r = 0; r < ROUNDS; r++) {
        ULONG off = (w->id * 211 + r * 29) % PAGE, len = 1 + (r * 733) % PAGE;
        ULONG regs = ADDRESS_AND_SIZE_TO_SPAN_PAGES(b + off, len), done = 0;

        for (ULONG i = 0; i < len; i++)
            in[i] = (unsigned char)(w->id * 7 + r * 3 + i);
        if (s->ops->AllocateAdapterChannel(s->a, NULL, regs, on_channel, w) != STATUS_SUCCESS) {
            atomic_fetch_add(&s->failures, 1);
            continue;
        }
        wait_ready(w);
        /* The device writes the data; the flush brings it into the buffer. */
        while (done < len) {
            ULONG l = len - done;
            PHYSICAL_ADDRESS la =
                s->ops->MapTransfer(s->a, mdl, w->base, b + off + done, &l, FALSE);

            if (!l || dmahal_dev_write(s->d, (dmahal_addr_t)la.QuadPart, in + done, l)) {
                atomic_fetch_add(&s->failures, 1);
                break;
            }
            done += l;
        }
        s->ops->FlushAdapterBuffers(s->a, mdl, w->base, b + off, len, FALSE);
        if (memcmp(b + off, in, len) != 0)
            atomic_fetch_add(&s->failures, 1);
        atomic_fetch_add(&s->transfers, 1);
        s->ops->FreeMapRegisters(s->a, w->base, regs);
    }
    IoFreeMdl(mdl);
    free(b);
    free(in);
    return NULL;
}

static void run_workers(ULONG bits, void *(*fn)(void *))
{
    struct shared s;
    struct worker w[THREADS];
    pthread_t t[THREADS];

    open_shared(&s, bits);
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = &s, .id = i};
        atomic_init(&w[i].ready, 0);
        CHECK_EQ(pthread_create(&t[i], NULL, fn, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(atomic_load(&s.failures), 0);
    CHECK_EQ(atomic_load(&s.transfers), THREADS * ROUNDS);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(dmahal_wdm_adapter(s.a)), 0);
    s.ops->PutDmaAdapter(s.a);
    dmahal_platform_close(s.p);
}

/* A 32-bit device bounces everything on the sim: 5 bounce pages for 4 threads' lists. */
TEST(lists_from_many_threads_bounced)
{
    run_workers(32, list_worker);
}

TEST(lists_from_many_threads_in_place)
{
    run_workers(64, list_worker);
}

/* 5 map registers for 4 threads asking for 1 or 2 each, and one channel. */
TEST(channels_from_many_threads)
{
    run_workers(28, channel_worker);
}
