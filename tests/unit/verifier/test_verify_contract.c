/* SPDX-License-Identifier: MIT */
/* test_verify_contract.c - the verifier keeps its promises: it never makes a call fail that
 * would succeed without it, reports every mismatched free (the Windows names' too), and
 * never reports a correct call. */
#include <dmahal/wdm.h>

#include "vrig.h"

#include <errno.h>
#include <stdlib.h>

/* Little reachable memory (8 MiB below 4 GiB for a 32-bit device): the quarantine must give
 * its buffers back before an allocation fails for want of memory. */
TEST(verify_quarantine_never_makes_an_allocation_fail)
{
    struct dmahal_desc d32 = {.addr_bits = 32};
    struct vrig r;
    struct dmahal_buf b;

    vrig_open(&r, "sim:ram=0-8M,4G-8G", &d32);
    for (int i = 0; i < 20; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 3u << 20, 0, &b));
        CHECK_OK(dmahal_common_free(r.a, &b));
    }
    /* And small ones, many rounds, around a large one that stays. */
    CHECK_OK(dmahal_common_alloc(r.a, 5u << 20, 0, &b));
    for (int i = 0; i < 20; i++) {
        struct dmahal_buf c;

        CHECK_OK(dmahal_common_alloc(r.a, 2u << 20, 0, &c));
        CHECK_OK(dmahal_common_free(r.a, &c));
    }
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_EQ(r.calls, 0);
    dmahal_platform_close(r.p);
}

/* Buffers out of the quarantine kept for reuse go back too, before an allocation of
 * another size fails for want of their memory: three large buffers fill what a 32-bit device
 * reaches, after many small ones came and went. */
TEST(verify_buffers_kept_for_reuse_never_make_an_allocation_fail)
{
    struct dmahal_desc d32 = {.addr_bits = 32};
    struct vrig r;
    struct dmahal_buf b, x[3];

    vrig_open(&r, "sim:ram=0-8M,4G-8G", &d32);
    for (int i = 0; i < 200; i++) {
        CHECK_OK(dmahal_common_alloc(r.a, 20u << 10, 0, &b));
        CHECK_OK(dmahal_common_free(r.a, &b));
    }
    for (int i = 0; i < 3; i++)
        CHECK_OK(dmahal_common_alloc(r.a, 1900u << 10, 0, &x[i]));
    for (int i = 0; i < 3; i++)
        CHECK_OK(dmahal_common_free(r.a, &x[i]));
    CHECK_EQ(r.calls, 0);
    dmahal_platform_close(r.p);
}

/* FreeCommonBuffer with another CacheEnabled than allocated frees nothing, and is reported
 * as the other mismatches are. */
TEST(verify_reports_free_common_buffer_with_the_wrong_cache_enabled)
{
    struct vrig r;
    DEVICE_DESCRIPTION dd;
    PDMA_ADAPTER a;
    ULONG nregs;
    PHYSICAL_ADDRESS la;
    PVOID va;
    const struct dmahal_report *rep;

    vrig_open(&r, "sim", NULL);
    memset(&dd, 0, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.ScatterGather = TRUE;
    dd.InterfaceType = PCIBus;
    dd.DmaAddressWidth = 64;
    dd.MaximumLength = 65536;
    a = IoGetDmaAdapter(dmahal_wdm_device(r.d), &dd, &nregs);
    CHECK(a != NULL);
    va = a->DmaOperations->AllocateCommonBuffer(a, 8192, &la, TRUE);
    CHECK(va != NULL);
    a->DmaOperations->FreeCommonBuffer(a, 8192, la, va, FALSE);
    rep = vrig_one(&r, DMAHAL_REPORT_FREE_WRONG_CACHE);
    CHECK_EQ_U(rep->la, (uint64_t)la.QuadPart);
    CHECK_EQ(rep->len, 8192);
    CHECK_CONTAINS(rep->message, "CacheEnabled FALSE");
    /* Nothing was freed: the right free works, and is not reported. */
    a->DmaOperations->FreeCommonBuffer(a, 8192, la, va, TRUE);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    a->DmaOperations->PutDmaAdapter(a);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    dmahal_platform_close(r.p);
}

static IO_ALLOCATION_ACTION on_channel(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID MapRegisterBase,
                                       PVOID Context)
{
    (void)DeviceObject, (void)Irp;
    *(PVOID *)Context = MapRegisterBase;
    return DeallocateObjectKeepRegisters;
}

/* A MapTransfer within the driver's map registers, page-aligned over all of them: correct,
 * so no report, whatever the layer tries first. */
TEST(verify_map_transfer_within_the_map_registers_is_not_reported)
{
    const char *specs[] = {"sim", "sim:iommu=on"};
    ULONG bits[] = {64, 32};

    for (unsigned i = 0; i < 2; i++) {
        for (unsigned k = 0; k < 2; k++) {
            struct vrig r;
            DEVICE_DESCRIPTION dd;
            PDMA_ADAPTER a;
            ULONG nregs, len;
            PVOID base = NULL;
            unsigned char *b = aligned_alloc(4096, 5 * 4096);
            PMDL mdl;
            PHYSICAL_ADDRESS la;

            CHECK(b != NULL);
            memset(b, 0x11, 5 * 4096);
            vrig_open(&r, specs[i], NULL);
            memset(&dd, 0, sizeof(dd));
            dd.Version = DEVICE_DESCRIPTION_VERSION3;
            dd.Master = TRUE;
            dd.ScatterGather = TRUE;
            dd.InterfaceType = PCIBus;
            dd.DmaAddressWidth = bits[k];
            dd.MaximumLength = 16384;
            a = IoGetDmaAdapter(dmahal_wdm_device(r.d), &dd, &nregs);
            CHECK(a != NULL);
            CHECK_EQ(nregs, 5);
            mdl = IoAllocateMdl(b, 5 * 4096, FALSE, FALSE, NULL);
            CHECK(mdl != NULL);
            CHECK_EQ(a->DmaOperations->AllocateAdapterChannel(a, dmahal_wdm_device(r.d), nregs,
                                                              on_channel, &base),
                     STATUS_SUCCESS);
            CHECK(base != NULL);
            len = 5 * 4096;
            la = a->DmaOperations->MapTransfer(a, mdl, base, b, &len, TRUE);
            CHECK_GT(len, 0);
            (void)la;
            CHECK(a->DmaOperations->FlushAdapterBuffers(a, mdl, base, b, len, TRUE));
            a->DmaOperations->FreeMapRegisters(a, base, nregs);
            CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
            IoFreeMdl(mdl);
            a->DmaOperations->PutDmaAdapter(a);
            dmahal_platform_close(r.p);
            free(b);
        }
    }
}

/* The layer-above entry: a buffer not live is -ENOENT and reports nothing. */
TEST(verify_free_mismatch_of_a_buffer_not_live)
{
    struct vrig r;
    struct dmahal_buf b, wrong;

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, 4096, 0, &b));
    CHECK_ERR(dmahal_verify_free_mismatch(NULL, &b, "x"), -EINVAL);
    CHECK_ERR(dmahal_verify_free_mismatch(r.a, NULL, "x"), -EINVAL);
    CHECK_ERR(dmahal_verify_free_mismatch(r.a, &b, NULL), -EINVAL);
    wrong = b;
    wrong.len = 100;
    CHECK_ERR(dmahal_verify_free_mismatch(r.a, &wrong, "x"), -ENOENT);
    CHECK_OK(dmahal_common_free(r.a, &b));
    CHECK_ERR(dmahal_verify_free_mismatch(r.a, &b, "x"), -ENOENT);
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    dmahal_platform_close(r.p);
}
