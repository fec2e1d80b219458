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

#include "test.h"

#define PAGE 4096u
#define KIB  1024u
#define MIB  (1024u * 1024u)

struct rig {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    PDEVICE_OBJECT pdo;
    PDMA_ADAPTER a;
    const DMA_OPERATIONS *ops;
    ULONG nregs;
};

static PDMA_ADAPTER rig_adapter(struct rig *r, DEVICE_DESCRIPTION *dd)
{
    r->a = IoGetDmaAdapter(r->pdo, dd, &r->nregs);
    CHECK(r->a != NULL);
    r->ops = r->a->DmaOperations;
    return r->a;
}

static void rig_open(struct rig *r, const char *spec)
{
    memset(r, 0, sizeof(*r));
    CHECK_OK(dmahal_platform_open(spec, &r->p));
    CHECK_OK(dmahal_device_open(r->p, "edu", &r->d));
    r->pdo = dmahal_wdm_device(r->d);
    CHECK(r->pdo != NULL);
}

/* A version-3 bus master of @bits and @max_len, scatter/gather or not. */
static void rig_open3(struct rig *r, const char *spec, ULONG bits, ULONG max_len, BOOLEAN sg)
{
    DEVICE_DESCRIPTION dd;

    rig_open(r, spec);
    RtlZeroMemory(&dd, sizeof(dd));
    dd.Version = DEVICE_DESCRIPTION_VERSION3;
    dd.Master = TRUE;
    dd.ScatterGather = sg;
    dd.InterfaceType = PCIBus;
    dd.DmaAddressWidth = bits;
    dd.MaximumLength = max_len;
    rig_adapter(r, &dd);
}

static void rig_close(struct rig *r)
{
    if (r->a)
        r->ops->PutDmaAdapter(r->a);
    dmahal_platform_close(r->p);
}

static unsigned char *pages(size_t n)
{
    void *p = NULL;

    CHECK_EQ(posix_memalign(&p, PAGE, n * PAGE), 0);
    memset(p, 0, n * PAGE);
    return p;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 13 + (i >> 9));
}

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

/* The device reads the transfer through the list into @out; returns the bytes. */
static size_t dev_gather(struct dmahal_device *d, PSCATTER_GATHER_LIST sg, unsigned char *out)
{
    size_t t = 0;

    for (ULONG i = 0; i < sg->NumberOfElements; i++) {
        CHECK_OK(dmahal_dev_read(d, (dmahal_addr_t)sg->Elements[i].Address.QuadPart, out + t,
                                 sg->Elements[i].Length));
        t += sg->Elements[i].Length;
    }
    return t;
}

/* ---- CalculateScatterGatherList with no MDL ---------------------------------------------- */

/* pcidrv's DMA_VER2 build sizes its lists at start-up with Mdl NULL and CurrentVa 0. */
TEST(calculate_without_an_mdl_takes_current_va_as_an_address)
{
    struct rig r;
    ULONG size = 0, regs = 0, size_off = 0, regs_off = 0;

    rig_open3(&r, "sim", 32, 64 * KIB, TRUE);
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
    rig_close(&r);
}

/* ---- a transfer above MaximumLength: only map registers decide -------------------------- */

TEST(transfer_above_maximum_length_fails_only_short_of_map_registers)
{
    struct rig r;
    unsigned char *b = pages(20), *seen = pages(20);
    PMDL mdl = IoAllocateMdl(b, 20 * PAGE, FALSE, FALSE, NULL);
    struct calls c = {0};
    ULONG size = 0, regs = 0;
    unsigned char *buf;

    /* 64 KiB: 17 map registers, which a page-aligned 68 KiB transfer fits. */
    rig_open3(&r, "sim", 32, 64 * KIB, TRUE);
    CHECK_EQ(r.nregs, 17);
    fill(b, 20 * PAGE, 9);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b, 17 * PAGE, &size, &regs),
             STATUS_SUCCESS);
    CHECK_EQ(regs, 17);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b, 17 * PAGE, on_list, &c, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(dev_gather(r.d, c.list, seen), 17 * PAGE);
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
    rig_close(&r);
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
    struct rig r;
    unsigned char *b = pages(4), *seen = pages(4);
    PMDL mdl = IoAllocateMdl(b + 100, 3 * PAGE, FALSE, FALSE, NULL);
    ULONG n = ADDRESS_AND_SIZE_TO_SPAN_PAGES(b + 100, 3 * PAGE);
    PVOID base = NULL;
    ULONG done = 0;

    rig_open3(&r, "sim", 32, 0xffffffffu, TRUE);
    CHECK_EQ(r.nregs, 524289);
    fill(b, 4 * PAGE, 4);
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
    rig_close(&r);
    free(b);
    free(seen);
}

/* ---- common buffers --------------------------------------------------------------------- */

/* A v1/v2 driver has no call to sync a common buffer: Windows makes a cached one coherent
 * for a device that does not snoop. */
TEST(cached_common_buffer_is_coherent_for_a_non_snooping_device)
{
    struct rig r;
    PHYSICAL_ADDRESS la;
    unsigned char *va, seen[256], in[256];

    rig_open3(&r, "sim:coherent=no", 32, 64 * KIB, FALSE);
    va = r.ops->AllocateCommonBuffer(r.a, PAGE, &la, TRUE);
    CHECK(va != NULL);
    fill(va, sizeof(seen), 21);
    CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, seen, sizeof(seen)));
    CHECK(memcmp(seen, va, sizeof(seen)) == 0);
    fill(in, sizeof(in), 99);
    CHECK_OK(dmahal_dev_write(r.d, (dmahal_addr_t)la.QuadPart + 512, in, sizeof(in)));
    CHECK(memcmp(va + 512, in, sizeof(in)) == 0);
    r.ops->FreeCommonBuffer(r.a, PAGE, la, va, TRUE);
    rig_close(&r);
}

/* Drivers assume a common buffer starts a page, as Windows' contiguous memory does. */
TEST(common_buffers_start_page_aligned)
{
    struct rig r;
    PHYSICAL_ADDRESS la[4];
    PVOID va[4];
    static const ULONG len[4] = {64, 64, 100, 5000};

    rig_open3(&r, "sim", 32, 64 * KIB, FALSE);
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
    rig_close(&r);
}

/* ---- DMA_ADAPTER ------------------------------------------------------------------------- */

TEST(dma_adapter_version_is_1_whatever_the_description)
{
    for (ULONG v = DEVICE_DESCRIPTION_VERSION; v <= DEVICE_DESCRIPTION_VERSION3; v++) {
        struct rig r;
        DEVICE_DESCRIPTION dd;

        rig_open(&r, "sim");
        RtlZeroMemory(&dd, sizeof(dd));
        dd.Version = v;
        dd.Master = TRUE;
        dd.Dma32BitAddresses = TRUE;
        dd.DmaAddressWidth = 32;
        dd.MaximumLength = 4096;
        rig_adapter(&r, &dd);
        CHECK_EQ(r.a->Version, 1);
        CHECK_EQ(r.a->Size, sizeof(DMA_ADAPTER));
        rig_close(&r);
    }
}

/* ---- low memory ---------------------------------------------------------------------------- */

/* 2 MiB below 2^28: a small common buffer and then a full transfer of the adapter's map
 * registers, which must come from bounce pages there. */
TEST(full_map_fits_when_low_memory_is_scarce)
{
    struct rig r;
    unsigned char *b = pages(257), *seen = pages(257);
    PMDL mdl = IoAllocateMdl(b, 256 * PAGE, FALSE, FALSE, NULL);
    struct calls c = {0};
    PHYSICAL_ADDRESS la;
    PVOID va;

    rig_open3(&r, "sim:ram=0-2M,4G-8G", 28, 1 * MIB, TRUE);
    CHECK_EQ(r.nregs, 257);
    va = r.ops->AllocateCommonBuffer(r.a, 20 * KIB, &la, FALSE);
    CHECK(va != NULL);
    fill(b, 256 * PAGE, 7);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b, 256 * PAGE, on_list, &c, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(dev_gather(r.d, c.list, seen), 256 * PAGE);
    CHECK(memcmp(seen, b, 256 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, c.list, TRUE);
    r.ops->FreeCommonBuffer(r.a, 20 * KIB, la, va, FALSE);
    IoFreeMdl(mdl);
    rig_close(&r);
    free(b);
    free(seen);
}
