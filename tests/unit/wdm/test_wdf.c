/* SPDX-License-Identifier: MIT */
/*
 * test_wdf.c - KMDF's DMA objects (wdf.h): enabler profiles and their errors, common buffers
 * and their alignment, transactions split into transfers and completed whole, partly or
 * finally, the element limit and the single-transfer requirement, and deletion. The device
 * side is played with dmahal_dev_read/dmahal_dev_write at the addresses EvtProgramDma gets.
 */
#include <dmahal/wdf.h> /* first: the header must stand alone */

#include <dmahal/dmahal.h>

#include <stdlib.h>

#include "rig.h"
#include "test.h"

#define PAGE 4096u

struct wdfrig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    WDFDEVICE dev;
    WDFDMAENABLER en;
};

static void wdf_open(struct wdfrig *r, const char *spec, WDF_DMA_PROFILE profile, size_t max_len)
{
    WDF_DMA_ENABLER_CONFIG cfg;

    RtlZeroMemory(r, sizeof(*r));
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    CHECK_OK(dmahal_verify_enable(r->p, 0, NULL, NULL));
    CHECK_OK(dmahal_device_open(r->p, "edu", &r->d));
    r->dev = dmahal_wdf_device(r->d);
    CHECK(r->dev != NULL);
    CHECK(dmahal_wdf_device(r->d) == r->dev);
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, profile, max_len);
    CHECK_EQ(WdfDmaEnablerCreate(r->dev, &cfg, WDF_NO_OBJECT_ATTRIBUTES, &r->en), STATUS_SUCCESS);
}

/* Closes everything; the verifier must have nothing to say (no leak, no bad access). */
static void wdf_close(struct wdfrig *r)
{
    if (r->en)
        WdfObjectDelete((WDFOBJECT)r->en);
    CHECK_EQ(dmahal_verify_check(r->p), 0);
    dmahal_device_close(r->d);
    CHECK_EQ(dmahal_verify_count(r->p, 0), 0);
    dmahal_platform_close(r->p);
}

TEST(enabler_profiles_and_errors)
{
    struct wdfrig r;
    WDF_DMA_ENABLER_CONFIG cfg;
    WDFDMAENABLER en = (WDFDMAENABLER)1;
    struct dmahal_desc desc = {.size = sizeof(desc)};

    wdf_open(&r, "sim", WdfDmaProfileScatterGather64, 64 * 1024);
    CHECK_EQ(WdfDmaEnablerGetMaximumLength(r.en), 64 * 1024);
    CHECK_EQ(WdfDmaEnablerGetMaximumScatterGatherElements(r.en),
             WDF_DMA_ENABLER_UNLIMITED_FRAGMENTS);
    WdfDmaEnablerSetMaximumScatterGatherElements(r.en, 4);
    CHECK_EQ(WdfDmaEnablerGetMaximumScatterGatherElements(r.en), 4);
    CHECK(WdfDmaEnablerWdmGetDmaAdapter(r.en, WdfDmaDirectionReadFromDevice) ==
          WdfDmaEnablerWdmGetDmaAdapter(r.en, WdfDmaDirectionWriteToDevice));
    CHECK_OK(dmahal_adapter_desc(
        dmahal_wdm_adapter(WdfDmaEnablerWdmGetDmaAdapter(r.en, WdfDmaDirectionReadFromDevice)),
        &desc));
    CHECK_EQ(desc.addr_bits, 64);
    CHECK(WdfDeviceWdmGetDeviceObject(r.dev) == dmahal_wdm_device(r.d));
    CHECK(WdfDeviceWdmGetPhysicalDevice(r.dev) == dmahal_wdm_device(r.d));

    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfilePacket, 4096);
    cfg.AddressWidthOverride = 28;
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaEnablerGetMaximumScatterGatherElements(en), 1);
    CHECK_OK(dmahal_adapter_desc(
        dmahal_wdm_adapter(WdfDmaEnablerWdmGetDmaAdapter(en, WdfDmaDirectionReadFromDevice)),
        &desc));
    CHECK_EQ(desc.addr_bits, 28);
    CHECK(WdfDmaEnablerWdmGetDmaAdapter(en, WdfDmaDirectionReadFromDevice)
              ->DmaOperations->GetDmaAdapterInfo != NULL); /* version 3 for the override */
    WdfObjectDelete((WDFOBJECT)en);

    cfg.AddressWidthOverride = 40; /* more than the 32-bit profile drives */
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    CHECK(en == NULL);
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfileSystem, 4096);
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_NOT_SUPPORTED);
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfileInvalid, 4096);
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfilePacket64, 0);
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfilePacket64, 4096);
    cfg.Size = 8;
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    cfg.Size = sizeof(cfg);
    cfg.WdmDmaVersionOverride = 4;
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    cfg.WdmDmaVersionOverride = 0;
    CHECK_EQ(WdfDmaEnablerCreate(NULL, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    CHECK_EQ(WdfDmaEnablerCreate((WDFDEVICE)&cfg, &cfg, NULL, &en), STATUS_INVALID_PARAMETER);
    CHECK_EQ(WdfDmaEnablerGetMaximumLength(NULL), 0);
    wdf_close(&r);
}

TEST(common_buffers_are_aligned_and_coherent)
{
    struct wdfrig r;
    WDFCOMMONBUFFER b1, b2, b3 = (WDFCOMMONBUFFER)1;
    WDF_COMMON_BUFFER_CONFIG bc;
    unsigned char *va, seen[32];
    PHYSICAL_ADDRESS la;

    wdf_open(&r, "sim:coherent=no", WdfDmaProfilePacket, 4096);
    WdfDeviceSetAlignmentRequirement(r.dev, FILE_OCTA_ALIGNMENT);
    CHECK_EQ(WdfDeviceGetAlignmentRequirement(r.dev), FILE_OCTA_ALIGNMENT);
    WdfDeviceSetAlignmentRequirement(r.dev, 6); /* not a power of two minus one: ignored */
    CHECK_EQ(WdfDeviceGetAlignmentRequirement(r.dev), FILE_OCTA_ALIGNMENT);
    CHECK_EQ(WdfCommonBufferCreate(r.en, 100, NULL, &b1), STATUS_SUCCESS);
    CHECK_EQ(WdfCommonBufferGetLength(b1), 100);
    va = WdfCommonBufferGetAlignedVirtualAddress(b1);
    la = WdfCommonBufferGetAlignedLogicalAddress(b1);
    CHECK_EQ(la.QuadPart % 16, 0);
    CHECK_LT_U((uint64_t)la.QuadPart + 100, UINT64_C(1) << 32);
    memset(va, 0x77, 32);
    CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, seen, 32));
    CHECK_EQ(seen[31], 0x77);
    WDF_COMMON_BUFFER_CONFIG_INIT(&bc, 0xffff); /* 64 KiB */
    CHECK_EQ(WdfCommonBufferCreateWithConfig(r.en, 5000, &bc, NULL, &b2), STATUS_SUCCESS);
    CHECK_EQ(WdfCommonBufferGetAlignedLogicalAddress(b2).QuadPart % 0x10000, 0);
    CHECK_EQ(((unsigned char *)WdfCommonBufferGetAlignedVirtualAddress(b2))[4999], 0);
    WDF_COMMON_BUFFER_CONFIG_INIT(&bc, 0x30);
    CHECK_EQ(WdfCommonBufferCreateWithConfig(r.en, 10, &bc, NULL, &b3), STATUS_INVALID_PARAMETER);
    CHECK(b3 == NULL);
    CHECK_EQ(WdfCommonBufferCreate(r.en, 0, NULL, &b3), STATUS_INVALID_PARAMETER);
    CHECK(WdfCommonBufferGetAlignedVirtualAddress(NULL) == NULL);
    WdfObjectDelete((WDFOBJECT)b1);
    /* b2 goes with the enabler. */
    wdf_close(&r);
}

/* The device of the tests: EvtProgramDma records the list and plays the transfer. */
struct dev_play {
    struct dmahal_device *d;
    unsigned char *image; /* what the device holds */
    size_t pos;           /* where the next transfer goes in it */
    int calls;
    ULONG elems;
    PSCATTER_GATHER_LIST last;
};

static BOOLEAN program(WDFDMATRANSACTION Transaction, WDFDEVICE Device, WDFCONTEXT Context,
                       WDF_DMA_DIRECTION Direction, PSCATTER_GATHER_LIST SgList)
{
    struct dev_play *dp = Context;
    size_t pos = dp->pos;

    (void)Device;
    CHECK(WdfDmaTransactionGetDevice(Transaction) == Device);
    for (ULONG i = 0; i < SgList->NumberOfElements; i++) {
        dmahal_addr_t la = (dmahal_addr_t)SgList->Elements[i].Address.QuadPart;
        ULONG len = SgList->Elements[i].Length;

        if (Direction == WdfDmaDirectionWriteToDevice)
            CHECK_OK(dmahal_dev_read(dp->d, la, dp->image + pos, len));
        else
            CHECK_OK(dmahal_dev_write(dp->d, la, dp->image + pos, len));
        pos += len;
    }
    CHECK_EQ(pos - dp->pos, WdfDmaTransactionGetCurrentDmaTransferLength(Transaction));
    dp->calls++;
    dp->elems = SgList->NumberOfElements;
    dp->last = SgList;
    return TRUE;
}

/* Runs @tx to its end, completing each transfer whole. Returns the transfers. */
static int run(WDFDMATRANSACTION tx, struct dev_play *dp)
{
    NTSTATUS st;

    CHECK_EQ(WdfDmaTransactionExecute(tx, dp), STATUS_SUCCESS);
    for (;;) {
        dp->pos += WdfDmaTransactionGetCurrentDmaTransferLength(tx);
        if (WdfDmaTransactionDmaCompleted(tx, &st))
            break;
        CHECK_EQ(st, STATUS_MORE_PROCESSING_REQUIRED);
    }
    CHECK_EQ(st, STATUS_SUCCESS);
    return dp->calls;
}

static void transaction_round_trip(const char *spec, WDF_DMA_PROFILE profile)
{
    struct wdfrig r;
    unsigned char *b = pages(6), *image = pages(6);
    PMDL m1 = IoAllocateMdl(b + 100, 2 * PAGE, FALSE, FALSE, NULL);
    PMDL m2 = IoAllocateMdl(b + 3 * PAGE, 2 * PAGE, FALSE, FALSE, NULL);
    struct dev_play dp = {.image = image};
    WDFDMATRANSACTION tx;
    size_t len = 4 * PAGE - 100;

    wdf_open(&r, spec, profile, 5000);
    dp.d = r.d;
    m1->Next = m2;
    for (size_t i = 0; i < 6 * PAGE; i++)
        b[i] = (unsigned char)(i * 11);
    CHECK_EQ(WdfDmaTransactionCreate(r.en, NULL, &tx), STATUS_SUCCESS);
    CHECK_EQ(
        WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, m1, b + 100, len),
        STATUS_SUCCESS);
    /* 16284 bytes in transfers of at most 5000. */
    CHECK_EQ(run(tx, &dp), 4);
    CHECK_EQ(WdfDmaTransactionGetBytesTransferred(tx), len);
    CHECK(memcmp(image, b + 100, 2 * PAGE) == 0);
    CHECK(memcmp(image + 2 * PAGE, b + 3 * PAGE, len - 2 * PAGE) == 0);
    CHECK_EQ(WdfDmaTransactionRelease(tx), STATUS_SUCCESS);
    /* Back from the device, into the same chain, each transfer limited to 3000 bytes. */
    memset(b, 0, 6 * PAGE);
    dp = (struct dev_play){.d = r.d, .image = image};
    WdfDmaTransactionSetMaximumLength(tx, 3000);
    CHECK_EQ(
        WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionReadFromDevice, m1, b + 100, len),
        STATUS_SUCCESS);
    CHECK_EQ(run(tx, &dp), 6);
    CHECK(memcmp(b + 100, image, 2 * PAGE) == 0);
    CHECK(memcmp(b + 3 * PAGE, image + 2 * PAGE, len - 2 * PAGE) == 0);
    CHECK_EQ(WdfDmaTransactionRelease(tx), STATUS_SUCCESS);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    wdf_close(&r); /* the transaction goes with the enabler */
    free(b);
    free(image);
}

TEST(transaction_split_into_transfers_packet)
{
    transaction_round_trip("sim", WdfDmaProfilePacket);
}

TEST(transaction_split_into_transfers_scatter_gather_iommu)
{
    transaction_round_trip("sim:iommu=on", WdfDmaProfileScatterGather64Duplex);
}

TEST(transaction_split_into_transfers_non_coherent)
{
    transaction_round_trip("sim:coherent=no", WdfDmaProfileScatterGather);
}

TEST(transaction_partial_final_and_state_errors)
{
    struct wdfrig r;
    unsigned char *b = pages(4), *image = pages(4);
    PMDL mdl = IoAllocateMdl(b, 4 * PAGE, FALSE, FALSE, NULL);
    struct dev_play dp = {.image = image};
    WDFDMATRANSACTION tx;
    NTSTATUS st = 0;

    wdf_open(&r, "sim", WdfDmaProfilePacket64, 4096);
    dp.d = r.d;
    CHECK_EQ(WdfDmaTransactionCreate(r.en, NULL, &tx), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionExecute(tx, &dp), STATUS_INVALID_DEVICE_REQUEST);
    CHECK_EQ(WdfDmaTransactionDmaCompleted(tx, &st), FALSE);
    CHECK_EQ(st, STATUS_INVALID_DEVICE_REQUEST);
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b - 1, 10),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b + 1,
                                         4 * PAGE),
             STATUS_INVALID_PARAMETER); /* past the chain */
    CHECK_EQ(
        WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b, 3 * PAGE),
        STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b, PAGE),
             STATUS_INVALID_DEVICE_REQUEST);
    CHECK_EQ(WdfDmaTransactionExecute(tx, &dp), STATUS_SUCCESS);
    CHECK_EQ(dp.calls, 1);
    CHECK_EQ(WdfDmaTransactionExecute(tx, &dp), STATUS_INVALID_DEVICE_REQUEST);
    /* The device moved 1000 bytes of the first 4096: the next transfer starts at 1000. */
    CHECK_EQ(WdfDmaTransactionDmaCompletedWithLength(tx, 1000, &st), FALSE);
    CHECK_EQ(st, STATUS_MORE_PROCESSING_REQUIRED);
    CHECK_EQ(dp.calls, 2);
    CHECK_EQ(WdfDmaTransactionGetBytesTransferred(tx), 1000);
    CHECK_EQ(WdfDmaTransactionGetCurrentDmaTransferLength(tx), 4096);
    /* Ended there, after 200 more. */
    CHECK_EQ(WdfDmaTransactionDmaCompletedFinal(tx, 200, &st), TRUE);
    CHECK_EQ(st, STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionGetBytesTransferred(tx), 1200);
    CHECK_EQ(WdfDmaTransactionDmaCompleted(tx, &st), FALSE); /* nothing in flight */
    CHECK_EQ(WdfDmaTransactionRelease(tx), STATUS_SUCCESS);
    /* Released in flight: the transfer is unmapped, and the object reusable. */
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b, 100),
             STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionExecute(tx, &dp), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionRelease(tx), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionRelease(NULL), STATUS_INVALID_PARAMETER);
    WdfObjectDelete((WDFOBJECT)tx);
    WdfObjectDelete(NULL);
    IoFreeMdl(mdl);
    wdf_close(&r);
    free(b);
    free(image);
}

TEST(single_transfer_and_element_limits)
{
    struct wdfrig r;
    WDF_DMA_ENABLER_CONFIG cfg;
    WDFDMAENABLER single;
    unsigned char *b = pages(4), *image = pages(4);
    PMDL mdl = IoAllocateMdl(b + 8, 2 * PAGE, FALSE, FALSE, NULL);
    struct dev_play dp = {.image = image};
    WDFDMATRANSACTION tx, tx2;

    /* No IOMMU, 64 bits: the two pages of user memory bounce, or map in place as two
     * elements; the limit of one element refuses what needs more. */
    wdf_open(&r, "sim:iommu=on", WdfDmaProfileScatterGather64, 8192);
    dp.d = r.d;
    CHECK_EQ(WdfDmaTransactionCreate(r.en, NULL, &tx), STATUS_SUCCESS);
    WdfDmaTransactionSetSingleTransferRequirement(tx, TRUE);
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b + 8,
                                         2 * PAGE),
             STATUS_SUCCESS);
    CHECK_EQ(run(tx, &dp), 1);
    WdfDmaTransactionRelease(tx);
    WdfDmaTransactionSetMaximumLength(tx, PAGE);
    WdfDmaTransactionSetSingleTransferRequirement(tx, TRUE);
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b + 8,
                                         2 * PAGE),
             STATUS_WDF_TOO_FRAGMENTED);
    WdfDmaTransactionRelease(tx); /* resets the limit and the requirement */
    CHECK_EQ(WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, mdl, b + 8,
                                         2 * PAGE),
             STATUS_SUCCESS);
    WdfDmaTransactionRelease(tx);

    /* The enabler flag: every transaction of it. */
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfileScatterGather64, PAGE);
    cfg.Flags = WDF_DMA_ENABLER_CONFIG_REQUIRE_SINGLE_TRANSFER;
    CHECK_EQ(WdfDmaEnablerCreate(r.dev, &cfg, NULL, &single), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionCreate(single, NULL, &tx2), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionInitialize(tx2, program, WdfDmaDirectionWriteToDevice, mdl, b + 8,
                                         2 * PAGE),
             STATUS_WDF_TOO_FRAGMENTED);
    WdfObjectDelete((WDFOBJECT)single);
    IoFreeMdl(mdl);
    wdf_close(&r);
    free(b);
    free(image);
}

TEST(element_limit_refuses_a_fragmented_transfer)
{
    struct wdfrig r;
    unsigned char *b = pages(4), *image = pages(4);
    PMDL m1 = IoAllocateMdl(b, PAGE, FALSE, FALSE, NULL);
    PMDL m2 = IoAllocateMdl(b + 2 * PAGE, PAGE, FALSE, FALSE, NULL);
    struct dev_play dp = {.image = image};
    WDFDMATRANSACTION tx;

    /* Behind an IOMMU two separate buffers still make two elements in dmahal's list only
     * where it does not merge them; without one, 64-bit, they are two elements at their
     * own addresses or one bounced run. Either way, a limit of one is met or refused. */
    wdf_open(&r, "sim", WdfDmaProfileScatterGather64, 4 * PAGE);
    dp.d = r.d;
    m1->Next = m2;
    WdfDmaEnablerSetMaximumScatterGatherElements(r.en, 1);
    CHECK_EQ(WdfDmaTransactionCreate(r.en, NULL, &tx), STATUS_SUCCESS);
    CHECK_EQ(
        WdfDmaTransactionInitialize(tx, program, WdfDmaDirectionWriteToDevice, m1, b, 2 * PAGE),
        STATUS_SUCCESS);
    NTSTATUS st = WdfDmaTransactionExecute(tx, &dp);
    if (st == STATUS_SUCCESS) {
        CHECK_EQ(dp.elems, 1);
        WdfDmaTransactionRelease(tx);
    } else {
        CHECK_EQ(st, STATUS_WDF_TOO_FRAGMENTED);
        CHECK_EQ(dp.calls, 0);
        CHECK_EQ(dmahal_adapter_map_registers_in_use(dmahal_wdm_adapter(
                     WdfDmaEnablerWdmGetDmaAdapter(r.en, WdfDmaDirectionWriteToDevice))),
                 0);
    }
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    wdf_close(&r);
    free(b);
    free(image);
}

/* A driver that leaves its objects: they go with the device, and the verifier names the
 * common buffer it never freed. */
TEST(objects_left_go_with_the_device)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    WDF_DMA_ENABLER_CONFIG cfg;
    WDFDMAENABLER en;
    WDFCOMMONBUFFER cb;
    WDFDMATRANSACTION tx;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    WDF_DMA_ENABLER_CONFIG_INIT(&cfg, WdfDmaProfilePacket, PAGE);
    CHECK_EQ(WdfDmaEnablerCreate(dmahal_wdf_device(d), &cfg, NULL, &en), STATUS_SUCCESS);
    CHECK_EQ(WdfCommonBufferCreate(en, 64, NULL, &cb), STATUS_SUCCESS);
    CHECK_EQ(WdfDmaTransactionCreate(en, NULL, &tx), STATUS_SUCCESS);
    dmahal_device_close(d);
    CHECK_GE(dmahal_verify_count(p, 0), 1);
    dmahal_platform_close(p);
}
