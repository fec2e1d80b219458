/* SPDX-License-Identifier: MIT */
/*
 * test_wdm_windows.c - where Windows' documented behaviour is not the obvious one, and real
 * drivers depend on it: CalculateScatterGatherList without an MDL, the statuses of a transfer
 * above MaximumLength, map registers granted as needed (not all at once), cached common
 * buffers on a device that does not snoop, page-aligned common buffers, DMA_ADAPTER.Version,
 * and a full map when low memory is scarce.
 */
#include <dmahal/wdm.h> /* first: the header must stand alone */

#include <dmahal/dmahal.h>

#include <stdlib.h>
#include <sys/mman.h>

#include "test.h"
#include "wrig.h"

#define PAGE 4096u
#define KIB  1024u
#define MIB  (1024u * 1024u)

struct calls {
    int n;
    PSCATTER_GATHER_LIST list;
};

static VOID on_list(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST ScatterGather,
                    PVOID Context)
{
    struct calls *c = Context;

    (void)DeviceObject;
    (void)Irp;
    c->n++;
    c->list = ScatterGather;
}

/* ---- CalculateScatterGatherList with no MDL ---------------------------------------------- */

/* pcidrv's DMA_VER2 build sizes its lists at start-up with Mdl NULL and CurrentVa 0. */
TEST(calculate_without_an_mdl_takes_current_va_as_an_address)
{
    struct wrig r;
    ULONG size = 0, regs = 0, size_off = 0, regs_off = 0;

    wrig_open3(&r, "sim", "edu", 32, 64 * KIB, TRUE);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, NULL, NULL, 64 * KIB, &size, &regs),
             STATUS_SUCCESS);
    CHECK_EQ(regs, 16);
    CHECK_GE(size, sizeof(SCATTER_GATHER_LIST) + 16 * sizeof(SCATTER_GATHER_ELEMENT));
    /* A page offset in CurrentVa: one page more. */
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, NULL, (PVOID)(ULONG_PTR)0x10, 64 * KIB,
                                               &size_off, &regs_off),
             STATUS_SUCCESS);
    CHECK_EQ(regs_off, 17);
    CHECK_EQ(size_off - size, sizeof(SCATTER_GATHER_ELEMENT));
    /* Still: a zero length, or more registers than the adapter has, fail. */
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, NULL, NULL, 0, &size, &regs),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, NULL, (PVOID)(ULONG_PTR)0x10, 68 * KIB, &size,
                                               &regs),
             STATUS_INSUFFICIENT_RESOURCES);
    wrig_close(&r);
}

/* ---- a transfer above MaximumLength: only map registers decide -------------------------- */

TEST(transfer_above_maximum_length_fails_only_short_of_map_registers)
{
    struct wrig r;
    unsigned char *b = pages(20), *seen = pages(20);
    PMDL mdl = IoAllocateMdl(b, 20 * PAGE, FALSE, FALSE, NULL);
    struct calls c = {0};
    ULONG size = 0, regs = 0;
    unsigned char *buf;

    /* 64 KiB: 17 map registers, which a page-aligned 68 KiB transfer fits. */
    wrig_open3(&r, "sim", "edu", 32, 64 * KIB, TRUE);
    CHECK_EQ(r.nregs, 17);
    fill13(b, 20 * PAGE, 9);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b, 17 * PAGE, &size, &regs),
             STATUS_SUCCESS);
    CHECK_EQ(regs, 17);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b, 17 * PAGE, on_list, &c, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(sg_gather(r.d, c.list, seen), 17 * PAGE);
    CHECK(memcmp(seen, b, 17 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, c.list, TRUE);
    buf = malloc(size);
    CHECK_EQ(
        r.ops->BuildScatterGatherList(r.a, r.pdo, mdl, b, 17 * PAGE, on_list, &c, TRUE, buf, size),
        STATUS_SUCCESS);
    CHECK_EQ(c.n, 2);
    r.ops->PutScatterGatherList(r.a, c.list, TRUE);
    free(buf);
    /* 18 registers: more than there are, whatever the call. */
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 1, 17 * PAGE, &size, &regs),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 1, 17 * PAGE, on_list, &c, TRUE),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK_EQ(c.n, 2);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(seen);
}

/* ---- map registers are granted as needed ------------------------------------------------ */

static IO_ALLOCATION_ACTION on_channel(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID MapRegisterBase,
                                       PVOID Context)
{
    PVOID *base = Context;

    (void)DeviceObject;
    (void)Irp;
    *base = MapRegisterBase;
    return DeallocateObjectKeepRegisters;
}

/* A USB port driver's MaximumLength of MAXULONG: 524,289 map registers, of which a request
 * takes a few. The channel must not pin memory for all of them. */
TEST(channel_grants_registers_as_needed_for_a_huge_maximum_length)
{
    struct wrig r;
    unsigned char *b = pages(4), *seen = pages(4);
    PMDL mdl = IoAllocateMdl(b + 100, 3 * PAGE, FALSE, FALSE, NULL);
    ULONG n = ADDRESS_AND_SIZE_TO_SPAN_PAGES(b + 100, 3 * PAGE);
    PVOID base = NULL;
    ULONG done = 0;

    wrig_open3(&r, "sim", "edu", 32, 0xffffffffu, TRUE);
    CHECK_EQ(r.nregs, 524289);
    fill13(b, 4 * PAGE, 4);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, r.pdo, n, on_channel, &base), STATUS_SUCCESS);
    CHECK(base != NULL);
    while (done < 3 * PAGE) {
        ULONG l = 3 * PAGE - done;
        PHYSICAL_ADDRESS la = r.ops->MapTransfer(r.a, mdl, base, b + 100 + done, &l, TRUE);

        CHECK_GT(l, 0);
        CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, seen + done, l));
        done += l;
    }
    CHECK(memcmp(seen, b + 100, 3 * PAGE) == 0);
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, base, b + 100, 3 * PAGE, TRUE));
    r.ops->FreeMapRegisters(r.a, base, n);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(seen);
}

/* ---- common buffers --------------------------------------------------------------------- */

/* A v1/v2 driver has no call to sync a common buffer: Windows makes a cached one coherent
 * for a device that does not snoop. */
TEST(cached_common_buffer_is_coherent_for_a_non_snooping_device)
{
    struct wrig r;
    PHYSICAL_ADDRESS la;
    unsigned char *va, seen[256], in[256];

    wrig_open3(&r, "sim:coherent=no", "edu", 32, 64 * KIB, FALSE);
    va = r.ops->AllocateCommonBuffer(r.a, PAGE, &la, TRUE);
    CHECK(va != NULL);
    fill13(va, sizeof(seen), 21);
    CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, seen, sizeof(seen)));
    CHECK(memcmp(seen, va, sizeof(seen)) == 0);
    fill13(in, sizeof(in), 99);
    CHECK_OK(dmahal_dev_write(r.d, (dmahal_addr_t)la.QuadPart + 512, in, sizeof(in)));
    CHECK(memcmp(va + 512, in, sizeof(in)) == 0);
    r.ops->FreeCommonBuffer(r.a, PAGE, la, va, TRUE);
    wrig_close(&r);
}

/* Drivers assume a common buffer starts a page, as Windows' contiguous memory does. */
TEST(common_buffers_start_page_aligned)
{
    struct wrig r;
    PHYSICAL_ADDRESS la[4];
    PVOID va[4];
    static const ULONG len[4] = {64, 64, 100, 5000};

    wrig_open3(&r, "sim", "edu", 32, 64 * KIB, FALSE);
    for (int i = 0; i < 4; i++) {
        va[i] = r.ops->AllocateCommonBuffer(r.a, len[i], &la[i], i & 1);
        CHECK(va[i] != NULL);
        CHECK_EQ((ULONG_PTR)va[i] % PAGE, 0);
        CHECK_EQ(la[i].QuadPart % PAGE, 0);
    }
    /* Freed with what they were allocated with, they go; with another length, they stay. */
    r.ops->FreeCommonBuffer(r.a, 65, la[0], va[0], FALSE);
    for (int i = 0; i < 4; i++)
        r.ops->FreeCommonBuffer(r.a, len[i], la[i], va[i], i & 1);
    r.ops->FreeCommonBuffer(r.a, len[1], la[1], va[1], TRUE); /* twice: ignored */
    wrig_close(&r);
}

/* ---- DMA_ADAPTER ------------------------------------------------------------------------- */

TEST(dma_adapter_version_is_1_whatever_the_description)
{
    for (ULONG v = DEVICE_DESCRIPTION_VERSION; v <= DEVICE_DESCRIPTION_VERSION3; v++) {
        struct wrig r;
        DEVICE_DESCRIPTION dd;

        wrig_open(&r, "sim", "edu");
        RtlZeroMemory(&dd, sizeof(dd));
        dd.Version = v;
        dd.Master = TRUE;
        dd.Dma32BitAddresses = TRUE;
        dd.DmaAddressWidth = 32;
        dd.MaximumLength = 4096;
        wrig_adapter(&r, &dd);
        CHECK_EQ(r.a->Version, 1);
        CHECK_EQ(r.a->Size, sizeof(DMA_ADAPTER));
        wrig_close(&r);
    }
}

/* ---- low memory ---------------------------------------------------------------------------- */

/* 2 MiB below 2^28: a small common buffer and then a full transfer of the adapter's map
 * registers, which must come from bounce pages there. */
TEST(full_map_fits_when_low_memory_is_scarce)
{
    struct wrig r;
    unsigned char *b = pages(257), *seen = pages(257);
    PMDL mdl = IoAllocateMdl(b, 256 * PAGE, FALSE, FALSE, NULL);
    struct calls c = {0};
    PHYSICAL_ADDRESS la;
    PVOID va;

    wrig_open3(&r, "sim:ram=0-2M,4G-8G", "edu", 28, 1 * MIB, TRUE);
    CHECK_EQ(r.nregs, 257);
    va = r.ops->AllocateCommonBuffer(r.a, 20 * KIB, &la, FALSE);
    CHECK(va != NULL);
    fill13(b, 256 * PAGE, 7);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b, 256 * PAGE, on_list, &c, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(sg_gather(r.d, c.list, seen), 256 * PAGE);
    CHECK(memcmp(seen, b, 256 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, c.list, TRUE);
    r.ops->FreeCommonBuffer(r.a, 20 * KIB, la, va, FALSE);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(seen);
}

/* ---- PutScatterGatherList of a list this adapter did not hand out -------------------------- */

/* A list at the very start of a page whose predecessor is not mapped: looking in front of it
 * for a record would fault. Another adapter's list is ignored too, and stays live. */
TEST(put_of_a_foreign_list_reads_nothing_around_it)
{
    struct wrig r, r2;
    unsigned char *b = pages(2);
    PMDL mdl = IoAllocateMdl(b, PAGE, FALSE, FALSE, NULL);
    struct calls c = {0};
    unsigned char *area =
        mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    PSCATTER_GATHER_LIST foreign;
    unsigned held;

    CHECK(area != MAP_FAILED);
    CHECK_EQ(mprotect(area, PAGE, PROT_NONE), 0);
    foreign = (PSCATTER_GATHER_LIST)(area + PAGE);
    foreign->NumberOfElements = 1;
    wrig_open3(&r, "sim", "edu", 32, 64 * KIB, TRUE);
    wrig_open3(&r2, "sim", "edu", 32, 64 * KIB, TRUE);
    r.ops->PutScatterGatherList(r.a, foreign, TRUE);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b, PAGE, on_list, &c, TRUE),
             STATUS_SUCCESS);
    held = dmahal_adapter_map_registers_in_use(dmahal_wdm_adapter(r.a));
    CHECK_GT(held, 0); /* user memory bounces for a device below 64 bits without an IOMMU */
    r2.ops->PutScatterGatherList(r2.a, c.list, TRUE); /* another adapter's: ignored */
    CHECK_EQ(dmahal_adapter_map_registers_in_use(dmahal_wdm_adapter(r.a)), held);
    r.ops->PutScatterGatherList(r.a, c.list, TRUE);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(dmahal_wdm_adapter(r.a)), 0);
    r.ops->PutScatterGatherList(r.a, c.list, TRUE); /* put already: ignored */
    wrig_close(&r2);
    wrig_close(&r);
    munmap(area, 2 * PAGE);
    IoFreeMdl(mdl);
    free(b);
}

/* ---- ntdef.h names and the Mm routines ----------------------------------------------------- */

typedef struct _RECORD {
    ULONG Tag;
    UCHAR Bytes[12];
    LARGE_INTEGER Last;
} RECORD, *PRECORD;

C_ASSERT(FIELD_OFFSET(RECORD, Last) == 16);
C_ASSERT(MAXULONG == 0xffffffffu);
C_ASSERT(ROUND_TO_PAGES(1) == PAGE_SIZE && ROUND_TO_PAGES(PAGE_SIZE + 1) == 2 * PAGE_SIZE);
C_ASSERT(BYTES_TO_PAGES(2 * PAGE_SIZE) == 2);
C_ASSERT(sizeof(SIZE_T) == sizeof(void *) && sizeof(UINT) == 4 && sizeof(CHAR) == 1);

/* A WDK-style routine: SAL, NTAPI and the parameter markers are empty. */
_IRQL_requires_max_(DISPATCH_LEVEL) static NTSTATUS NTAPI
    fill_record(_Out_ PRECORD IN OUT Record, _In_opt_ PVOID OPTIONAL Unused)
{
    UNREFERENCED_PARAMETER(Unused);
    RtlZeroMemory(Record, sizeof(*Record));
    RtlFillMemory(Record->Bytes, sizeof(Record->Bytes), 0x5a);
    Record->Tag = 0x57444d41u;
    return STATUS_SUCCESS;
}

TEST(ntdef_names_and_rtl_memory_routines)
{
    RECORD a, b;
    PRECORD back;

    CHECK_EQ(fill_record(&a, NULL), STATUS_SUCCESS);
    RtlCopyMemory(&b, &a, sizeof(a));
    CHECK(RtlEqualMemory(&a, &b, sizeof(a)));
    b.Bytes[3] = 0;
    CHECK(!RtlEqualMemory(&a, &b, sizeof(a)));
    CHECK_EQ(RtlCompareMemory(&a, &b, sizeof(a)), FIELD_OFFSET(RECORD, Bytes) + 3);
    RtlMoveMemory(a.Bytes + 1, a.Bytes, 4);
    CHECK_EQ(a.Bytes[1], 0x5a);
    back = CONTAINING_RECORD(&a.Last, RECORD, Last);
    CHECK(back == &a);
    CHECK(NT_ERROR(STATUS_INSUFFICIENT_RESOURCES) && NT_WARNING(STATUS_BUFFER_OVERFLOW));
    CHECK(NT_SUCCESS(STATUS_PENDING) && !NT_ERROR(STATUS_PENDING));
}

/* On the sim, MmAllocatePagesForMdl's frames are the machine's: the device finds the data
 * there when the adapter reaches physical memory as it is (no IOMMU, 64 bits). */
TEST(pages_for_mdl_carry_the_sims_frames)
{
    struct wrig r;
    PHYSICAL_ADDRESS lo, hi, skip;
    PMDL mdl;
    PPFN_NUMBER pfn;
    unsigned char *va, seen[64];
    PMDL plain;

    wrig_open3(&r, "sim", "edu", 64, 64 * KIB, TRUE);
    lo.QuadPart = 0;
    hi.QuadPart = -1;
    skip.QuadPart = 0;
    mdl = MmAllocatePagesForMdl(lo, hi, skip, 3 * PAGE - 100);
    CHECK(mdl != NULL);
    CHECK_EQ(MmGetMdlByteCount(mdl), 3 * PAGE);
    CHECK_EQ(mdl->Size, sizeof(MDL) + 3 * sizeof(PFN_NUMBER));
    pfn = MmGetMdlPfnArray(mdl);
    CHECK(pfn != NULL);
    va = MmMapLockedPagesSpecifyCache(mdl, KernelMode, MmCached, NULL, FALSE, NormalPagePriority);
    CHECK(va == MmGetMdlVirtualAddress(mdl));
    CHECK(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA);
    for (int i = 0; i < 3; i++) {
        uint64_t pa;

        CHECK_OK(dmahal_sim_virt_to_phys(r.p, va + i * PAGE, &pa));
        CHECK_EQ_U(pfn[i], pa >> PAGE_SHIFT);
        CHECK_EQ(va[i * PAGE], 0);
    }
    fill13(va + PAGE, sizeof(seen), 3);
    CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)pfn[1] << PAGE_SHIFT, seen, sizeof(seen)));
    CHECK(memcmp(seen, va + PAGE, sizeof(seen)) == 0);
    MmUnmapLockedPages(va, mdl);
    CHECK(!(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA));
    MmFreePagesFromMdl(mdl);
    CHECK_EQ(MmGetMdlByteCount(mdl), 0);
    ExFreePool(mdl);
    /* A range the sim's frames are not in; too many pages for an MDL; IoAllocateMdl's MDLs
     * have no frames. */
    hi.QuadPart = 0xfffff;
    CHECK(MmAllocatePagesForMdlEx(lo, hi, skip, PAGE, MmCached, MM_ALLOCATE_FULLY_REQUIRED) ==
          NULL);
    hi.QuadPart = -1;
    CHECK(MmAllocatePagesForMdl(lo, hi, skip, 8192 * PAGE) == NULL);
    CHECK(MmAllocatePagesForMdl(lo, hi, skip, 0) == NULL);
    plain = IoAllocateMdl(seen, sizeof(seen), FALSE, FALSE, NULL);
    CHECK(MmGetMdlPfnArray(plain) == NULL);
    CHECK(MmMapLockedPagesSpecifyCache(plain, KernelMode, MmCached, seen, FALSE, 0) == NULL);
    MmFreePagesFromMdl(plain); /* not pages of ours: ignored */
    ExFreePool(plain);         /* ignored too */
    IoFreeMdl(plain);
    wrig_close(&r);
}

/* With no device object open, the pages are the process's own, with no frames. */
TEST(pages_for_mdl_without_a_machine_have_no_frames)
{
    PHYSICAL_ADDRESS lo, hi, skip;
    PMDL mdl;

    lo.QuadPart = 0;
    hi.QuadPart = -1;
    skip.QuadPart = 0;
    mdl = MmAllocatePagesForMdl(lo, hi, skip, PAGE);
    CHECK(mdl != NULL);
    CHECK_EQ(MmGetMdlPfnArray(mdl)[0], 0);
    CHECK_EQ(((unsigned char *)MmGetMdlVirtualAddress(mdl))[PAGE - 1], 0);
    ExFreePoolWithTag(mdl, 0x54657374u); /* the pages with it */
}
