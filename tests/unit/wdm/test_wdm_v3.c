/* SPDX-License-Identifier: MIT */
/*
 * test_wdm_v3.c - the DMA_OPERATIONS members of DMA version 3: adapter and transfer info,
 * transfer contexts, the *Ex routines (synchronous and queued), common buffers with bounds
 * and in vectors, and the documented "not supported" of system DMA and DMA domains.
 */
#include <dmahal/wdm.h> /* first: the header must stand alone */

#include <dmahal/dmahal.h>

#include <stdlib.h>

#include "test.h"
#include "wrig.h"

#define PAGE 4096u
#define KIB  1024u

C_ASSERT(sizeof(DMA_ADAPTER_INFO_V1) == 20);
C_ASSERT(FIELD_OFFSET(DMA_ADAPTER_INFO, V1) == 4);
C_ASSERT(sizeof(DMA_TRANSFER_INFO_V2) == 16);
C_ASSERT(FIELD_OFFSET(DMA_TRANSFER_INFO, V1) == 4);
C_ASSERT(DMA_TRANSFER_CONTEXT_SIZE_V1 == 128);
C_ASSERT(FIELD_OFFSET(DMA_OPERATIONS, GetDmaAdapterInfo) == 0x80);
C_ASSERT(FIELD_OFFSET(DMA_OPERATIONS, CreateCommonBufferFromMdl) == 0x138);

struct v3rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    PDMA_ADAPTER a;
    const DMA_OPERATIONS *ops;
    ULONG nregs;
    UCHAR ctx[DMA_TRANSFER_CONTEXT_SIZE_V1];
};

static void v3_open(struct v3rig *r, const char *spec, ULONG bits, ULONG max_len, BOOLEAN sg)
{
    DEVICE_DESCRIPTION dd = wrig_desc3(bits, max_len, sg);

    RtlZeroMemory(r, sizeof(*r));
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    CHECK_OK(dmahal_device_open(r->p, "edu", &r->d));
    r->a = IoGetDmaAdapter(dmahal_wdm_device(r->d), &dd, &r->nregs);
    CHECK(r->a != NULL);
    r->ops = r->a->DmaOperations;
    CHECK_EQ(r->ops->InitializeDmaTransferContext(r->a, r->ctx), STATUS_SUCCESS);
}

static void v3_close(struct v3rig *r)
{
    r->ops->PutDmaAdapter(r->a);
    dmahal_platform_close(r->p);
}

TEST(adapter_info_says_what_the_description_said)
{
    struct v3rig r;
    DMA_ADAPTER_INFO info;

    v3_open(&r, "sim", 36, 64 * KIB, TRUE);
    RtlZeroMemory(&info, sizeof(info));
    CHECK_EQ(r.ops->GetDmaAdapterInfo(r.a, &info), STATUS_NOT_SUPPORTED); /* Version 0 */
    info.Version = DMA_ADAPTER_INFO_VERSION1;
    CHECK_EQ(r.ops->GetDmaAdapterInfo(r.a, &info), STATUS_SUCCESS);
    CHECK_EQ(info.V1.DmaAddressWidth, 36);
    CHECK_EQ(info.V1.ScatterGatherLimit, r.nregs);
    CHECK_EQ(info.V1.ReadDmaCounterAvailable, FALSE);
    CHECK_EQ(info.V1.MinimumTransferUnit, 1);
    CHECK_EQ(r.ops->GetDmaAdapterInfo(r.a, NULL), STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetDmaAdapterInfo(NULL, &info), STATUS_INVALID_PARAMETER);
    v3_close(&r);
}

TEST(transfer_info_counts_registers_elements_and_list_bytes)
{
    struct v3rig r;
    unsigned char *b = pages(8);
    PMDL m1 = IoAllocateMdl(b + 100, 2 * PAGE, FALSE, FALSE, NULL);
    PMDL m2 = IoAllocateMdl(b + 4 * PAGE, 3 * PAGE, FALSE, FALSE, NULL);
    DMA_TRANSFER_INFO ti;
    ULONG size, regs;

    v3_open(&r, "sim", 64, 64 * KIB, TRUE);
    m1->Next = m2;
    RtlZeroMemory(&ti, sizeof(ti));
    CHECK_EQ(r.ops->GetDmaTransferInfo(r.a, m1, 0, 100, TRUE, &ti), STATUS_NOT_SUPPORTED);
    ti.Version = DMA_TRANSFER_INFO_VERSION2;
    /* From byte 100 of the chain's second page: 2 pages of m1 less 100 + PAGE... */
    CHECK_EQ(r.ops->GetDmaTransferInfo(r.a, m1, PAGE, 2 * PAGE, TRUE, &ti), STATUS_SUCCESS);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, m2, b + 4 * PAGE, PAGE, &size, &regs),
             STATUS_SUCCESS);
    /* m1 from b+100+PAGE to its end (PAGE bytes, 2 pages), then PAGE of m2 (1 page). */
    CHECK_EQ(ti.V2.MapRegisterCount, 3);
    CHECK_EQ(ti.V2.LogicalPageCount, 3);
    CHECK_EQ(ti.V2.ScatterGatherElementCount, 3);
    CHECK_GT(ti.V2.ScatterGatherListSize, size);
    CHECK_EQ(r.ops->GetDmaTransferInfo(r.a, m1, 5 * PAGE, 1, TRUE, &ti), STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetDmaTransferInfo(r.a, m1, 0, 6 * PAGE, TRUE, &ti), STATUS_BUFFER_TOO_SMALL);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    v3_close(&r);
    free(b);
}

static IO_ALLOCATION_ACTION keep(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID MapRegisterBase,
                                 PVOID Context);

TEST(synchronous_channel_ex_then_map_transfer_ex_and_flush_ex)
{
    struct v3rig r;
    unsigned char *b = pages(4), *seen = pages(4);
    PMDL mdl = IoAllocateMdl(b, 4 * PAGE, FALSE, FALSE, NULL);
    union {
        SCATTER_GATHER_LIST l;
        UCHAR bytes[sizeof(SCATTER_GATHER_LIST) + 8 * sizeof(SCATTER_GATHER_ELEMENT)];
    } sgb;
    PVOID base = NULL, base2 = NULL;
    ULONG len = 3 * PAGE;
    size_t got = 0;

    v3_open(&r, "sim", 28, 16 * KIB, TRUE);
    fill(b, 4 * PAGE, 3);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 4, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base),
             STATUS_SUCCESS);
    CHECK(base != NULL);
    /* One more register than are left, now or never: refused. */
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 2, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base2),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK(base2 == NULL);
    CHECK_EQ(
        r.ops->MapTransferEx(r.a, mdl, base, 100, 0, &len, TRUE, &sgb.l, sizeof(sgb), NULL, NULL),
        STATUS_SUCCESS);
    CHECK_EQ(len, 3 * PAGE);
    got = sg_gather(r.d, &sgb.l, seen);
    CHECK_EQ(got, 3 * PAGE);
    CHECK(memcmp(seen, b + 100, 3 * PAGE) == 0);
    for (ULONG i = 0; i < sgb.l.NumberOfElements; i++)
        CHECK_LE_U((uint64_t)sgb.l.Elements[i].Address.QuadPart + sgb.l.Elements[i].Length - 1,
                   (UINT64_C(1) << 28) - 1);
    CHECK_EQ(r.ops->FlushAdapterBuffersEx(r.a, mdl, base, 100, 3 * PAGE, TRUE), STATUS_SUCCESS);
    len = PAGE;
    CHECK_EQ(r.ops->MapTransferEx(r.a, mdl, base, 0, 0, &len, TRUE, &sgb.l, 8, NULL, NULL),
             STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ(
        r.ops->MapTransferEx(r.a, mdl, NULL, 0, 0, &len, TRUE, &sgb.l, sizeof(sgb), NULL, NULL),
        STATUS_INVALID_PARAMETER);
    /* The caller holds the channel, as with KeepObject: FreeMapRegisters alone is ignored;
     * FreeAdapterObject gives back the channel and the registers. */
    r.ops->FreeMapRegisters(r.a, base, 4);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 0, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base2),
             STATUS_INSUFFICIENT_RESOURCES);
    r.ops->FreeAdapterObject(r.a, DeallocateObject);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 4, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base2),
             STATUS_SUCCESS);
    /* The channel released, the registers kept until FreeMapRegisters. */
    r.ops->FreeAdapterObject(r.a, DeallocateObjectKeepRegisters);
    CHECK_EQ(r.nregs, 5);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 2, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base),
             STATUS_INSUFFICIENT_RESOURCES);
    r.ops->FreeMapRegisters(r.a, base2, 4);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 1, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base),
             STATUS_SUCCESS);
    r.ops->FreeAdapterObject(r.a, DeallocateObject);
    /* A routine and a MapRegisterBase: one or the other. */
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 1, DMA_SYNCHRONOUS_CALLBACK, keep,
                                             NULL, &base2),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 2, 0, NULL, NULL, &base2),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, NULL, 2, DMA_SYNCHRONOUS_CALLBACK, NULL,
                                             NULL, &base2),
             STATUS_INVALID_PARAMETER);
    IoFreeMdl(mdl);
    v3_close(&r);
    free(b);
    free(seen);
}

struct hold {
    int n;
    PVOID base;
};

static IO_ALLOCATION_ACTION keep(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID MapRegisterBase,
                                 PVOID Context)
{
    struct hold *h = Context;

    (void)DeviceObject;
    (void)Irp;
    h->n++;
    h->base = MapRegisterBase;
    return KeepObject;
}

TEST(queued_channel_ex_is_cancelled_and_free_adapter_object_releases)
{
    struct v3rig r;
    struct hold h1 = {0}, h2 = {0};
    UCHAR ctx2[DMA_TRANSFER_CONTEXT_SIZE_V1];

    v3_open(&r, "sim", 32, 16 * KIB, TRUE);
    CHECK_EQ(r.ops->InitializeDmaTransferContext(r.a, ctx2), STATUS_SUCCESS);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, r.ctx, 1, 0, keep, &h1, NULL),
             STATUS_SUCCESS);
    CHECK_EQ(h1.n, 1);
    /* The channel is held: a synchronous request fails, a queued one waits. */
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, ctx2, 1, DMA_SYNCHRONOUS_CALLBACK, keep,
                                             &h2, NULL),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, ctx2, 1, 0, keep, &h2, NULL),
             STATUS_SUCCESS);
    CHECK_EQ(h2.n, 0);
    CHECK_EQ(r.ops->CancelAdapterChannel(r.a, NULL, ctx2), TRUE);
    CHECK_EQ(r.ops->CancelAdapterChannel(r.a, NULL, ctx2), FALSE);
    r.ops->FreeAdapterObject(r.a, DeallocateObject);
    CHECK_EQ(h2.n, 0); /* cancelled: never runs */
    CHECK_EQ(r.ops->AllocateAdapterChannelEx(r.a, NULL, ctx2, 1, DMA_SYNCHRONOUS_CALLBACK, keep,
                                             &h2, NULL),
             STATUS_SUCCESS);
    CHECK_EQ(h2.n, 1);
    /* The channel released, the registers kept until FreeMapRegisters. */
    r.ops->FreeAdapterObject(r.a, DeallocateObjectKeepRegisters);
    r.ops->FreeMapRegisters(r.a, h2.base, 1);
    v3_close(&r);
}

TEST(synchronous_get_and_build_list_ex)
{
    struct v3rig r;
    unsigned char *b = pages(6), *seen = pages(6), *buf;
    PMDL m1 = IoAllocateMdl(b, 2 * PAGE, FALSE, FALSE, NULL);
    PMDL m2 = IoAllocateMdl(b + 3 * PAGE, 2 * PAGE, FALSE, FALSE, NULL);
    PSCATTER_GATHER_LIST sg = NULL;
    DMA_TRANSFER_INFO ti;

    v3_open(&r, "sim:iommu=on", 32, 64 * KIB, TRUE);
    m1->Next = m2;
    fill(b, 6 * PAGE, 11);
    /* From byte 10 of the chain to 10 bytes into m2. */
    CHECK_EQ(r.ops->GetScatterGatherListEx(r.a, NULL, r.ctx, m1, 10, 2 * PAGE,
                                           DMA_SYNCHRONOUS_CALLBACK, NULL, NULL, TRUE, NULL, NULL,
                                           &sg),
             STATUS_SUCCESS);
    CHECK(sg != NULL);
    CHECK_EQ(sg_gather(r.d, sg, seen), 2 * PAGE);
    CHECK(memcmp(seen, b + 10, 2 * PAGE - 10) == 0);
    CHECK(memcmp(seen + 2 * PAGE - 10, b + 3 * PAGE, 10) == 0);
    r.ops->PutScatterGatherList(r.a, sg, TRUE);
    ti.Version = DMA_TRANSFER_INFO_VERSION1;
    CHECK_EQ(r.ops->GetDmaTransferInfo(r.a, m1, 2 * PAGE, 2 * PAGE, TRUE, &ti), STATUS_SUCCESS);
    buf = malloc(ti.V1.ScatterGatherListSize);
    sg = NULL;
    CHECK_EQ(r.ops->BuildScatterGatherListEx(r.a, NULL, r.ctx, m1, 2 * PAGE, 2 * PAGE,
                                             DMA_SYNCHRONOUS_CALLBACK, NULL, NULL, TRUE, buf,
                                             ti.V1.ScatterGatherListSize, NULL, NULL, &sg),
             STATUS_SUCCESS);
    CHECK(sg != NULL);
    CHECK_EQ(sg_gather(r.d, sg, seen), 2 * PAGE);
    CHECK(memcmp(seen, b + 3 * PAGE, 2 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, sg, TRUE);
    free(buf);
    /* No routine and not synchronous; no context; past the chain. */
    CHECK_EQ(r.ops->GetScatterGatherListEx(r.a, NULL, r.ctx, m1, 0, PAGE, 0, NULL, NULL, TRUE, NULL,
                                           NULL, NULL),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherListEx(r.a, NULL, NULL, m1, 0, PAGE, DMA_SYNCHRONOUS_CALLBACK,
                                           NULL, NULL, TRUE, NULL, NULL, &sg),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherListEx(r.a, NULL, r.ctx, m1, 4 * PAGE, PAGE,
                                           DMA_SYNCHRONOUS_CALLBACK, NULL, NULL, TRUE, NULL, NULL,
                                           &sg),
             STATUS_INVALID_PARAMETER);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    v3_close(&r);
    free(b);
    free(seen);
}

TEST(common_buffers_ex_with_bounds_and_in_vectors)
{
    struct v3rig r;
    PHYSICAL_ADDRESS la, max, min, lo, hi, la2;
    MEMORY_CACHING_TYPE cached = MmCached;
    PDMA_COMMON_BUFFER_VECTOR v = NULL;
    PVOID va, va2;

    v3_open(&r, "sim", 64, 64 * KIB, FALSE);
    max.QuadPart = (LONGLONG)0xffffffffu;
    va = r.ops->AllocateCommonBufferEx(r.a, &max, 8 * KIB, &la, TRUE, 0);
    /* The adapter drives 64 bits, so dmahal's memory may be above 4 GiB: then NULL. */
    if (va) {
        CHECK_LE_U((uint64_t)la.QuadPart + 8 * KIB - 1, 0xffffffffu);
        r.ops->FreeCommonBuffer(r.a, 8 * KIB, la, va, TRUE);
    } else {
        CHECK_EQ(la.QuadPart, 0);
    }
    va = r.ops->AllocateCommonBufferEx(r.a, NULL, 100, &la, FALSE, 0);
    CHECK(va != NULL);
    CHECK_EQ(la.QuadPart % PAGE, 0);
    r.ops->FreeCommonBuffer(r.a, 100, la, va, FALSE);
    min.QuadPart = 0;
    max.QuadPart = -1;
    va = r.ops->AllocateCommonBufferWithBounds(r.a, &min, &max, PAGE, 0, &cached, 0, &la);
    CHECK(va != NULL);
    r.ops->FreeCommonBuffer(r.a, PAGE, la, va, TRUE);
    min.QuadPart = -2; /* nothing there */
    CHECK(r.ops->AllocateCommonBufferWithBounds(r.a, &min, &max, PAGE, 0, &cached, 0, &la) == NULL);
    CHECK_EQ(la.QuadPart, 0);
    lo.QuadPart = 0;
    hi.QuadPart = -1;
    CHECK_EQ(r.ops->AllocateCommonBufferVector(r.a, lo, hi, MmNonCached, 0, 0, 3, 512, &v),
             STATUS_SUCCESS);
    r.ops->GetCommonBufferFromVectorByIndex(r.a, v, 1, &va, &la);
    r.ops->GetCommonBufferFromVectorByIndex(r.a, v, 2, &va2, &la2);
    CHECK(va != NULL && va2 != NULL && va != va2);
    CHECK_OK(dmahal_dev_write(r.d, (dmahal_addr_t)la.QuadPart, "vector", 7));
    CHECK(memcmp(va, "vector", 7) == 0);
    r.ops->FreeCommonBufferFromVector(r.a, v, 1);
    r.ops->GetCommonBufferFromVectorByIndex(r.a, v, 1, &va, &la);
    CHECK(va == NULL);
    r.ops->GetCommonBufferFromVectorByIndex(r.a, v, 3, &va, &la);
    CHECK(va == NULL);
    r.ops->FreeCommonBufferVector(r.a, v);
    CHECK_EQ(r.ops->AllocateCommonBufferVector(r.a, lo, hi, MmNonCached, 0, 0, 0, 512, &v),
             STATUS_INVALID_PARAMETER);
    v3_close(&r);
}

TEST(system_dma_and_domains_are_not_supported)
{
    struct v3rig r;
    unsigned char *b = pages(1);
    PMDL mdl = IoAllocateMdl(b, PAGE, FALSE, FALSE, NULL);
    PHYSICAL_ADDRESS la;
    PVOID va = b;
    MEMORY_CACHING_TYPE ct = MmCached;

    v3_open(&r, "sim", 32, 64 * KIB, TRUE);
    CHECK_EQ(r.ops->ConfigureAdapterChannel(r.a, 0, NULL), STATUS_NOT_SUPPORTED);
    CHECK_EQ(r.ops->CancelMappedTransfer(r.a, r.ctx), STATUS_NOT_SUPPORTED);
    CHECK_EQ(r.ops->JoinDmaDomain(r.a, NULL), STATUS_NOT_SUPPORTED);
    CHECK_EQ(r.ops->LeaveDmaDomain(r.a), STATUS_NOT_SUPPORTED);
    CHECK(r.ops->GetDmaDomain(r.a) == NULL);
    CHECK_EQ(r.ops->AllocateDomainCommonBuffer(r.a, NULL, NULL, PAGE, 0, &ct, 0, &la, &va),
             STATUS_NOT_SUPPORTED);
    CHECK(va == NULL);
    CHECK_EQ(r.ops->CreateCommonBufferFromMdl(r.a, mdl, NULL, 0, &la), STATUS_NOT_SUPPORTED);
    CHECK_EQ(r.ops->BuildMdlFromScatterGatherList(r.a, NULL, mdl, NULL), STATUS_NOT_SUPPORTED);
    CHECK_EQ(r.ops->FlushDmaBuffer(r.a, mdl, TRUE), STATUS_SUCCESS);
    CHECK_EQ(r.ops->FlushDmaBuffer(r.a, NULL, TRUE), STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->ReadDmaCounter(r.a), 0);
    IoFreeMdl(mdl);
    v3_close(&r);
    free(b);
}

/* A list handed back without a routine is ended by FreeAdapterObject, as Windows has the
 * driver call it after the transfer; a put before or after is fine too. */
TEST(free_adapter_object_ends_a_list_held_without_a_routine)
{
    struct v3rig r;
    unsigned char *b = pages(2);
    PMDL mdl = IoAllocateMdl(b, 2 * PAGE, FALSE, FALSE, NULL);
    PSCATTER_GATHER_LIST sg = NULL, sg2 = NULL;
    struct dmahal_adapter *a;

    v3_open(&r, "sim", 32, 16 * KIB, TRUE);
    a = dmahal_wdm_adapter(r.a);
    CHECK_EQ(r.ops->GetScatterGatherListEx(r.a, NULL, r.ctx, mdl, 0, 2 * PAGE,
                                           DMA_SYNCHRONOUS_CALLBACK, NULL, NULL, TRUE, NULL, NULL,
                                           &sg),
             STATUS_SUCCESS);
    CHECK_GT(dmahal_adapter_map_registers_in_use(a), 0);          /* user memory bounces */
    r.ops->FreeAdapterObject(r.a, DeallocateObjectKeepRegisters); /* not this one */
    CHECK_GT(dmahal_adapter_map_registers_in_use(a), 0);
    r.ops->FreeAdapterObject(r.a, DeallocateObject);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(a), 0);
    r.ops->PutScatterGatherList(r.a, sg, TRUE); /* ended already: ignored */
    CHECK_EQ(r.ops->GetScatterGatherListEx(r.a, NULL, r.ctx, mdl, 0, PAGE, DMA_SYNCHRONOUS_CALLBACK,
                                           NULL, NULL, TRUE, NULL, NULL, &sg2),
             STATUS_SUCCESS);
    r.ops->PutScatterGatherList(r.a, sg2, TRUE);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(a), 0);
    r.ops->FreeAdapterObject(r.a, DeallocateObject); /* nothing left: nothing happens */
    IoFreeMdl(mdl);
    v3_close(&r);
    free(b);
}
