/* SPDX-License-Identifier: MIT */
/*
 * test_wdm.c - the Windows-names layer: layouts against Windows' x86-64 ABI, IoGetDmaAdapter's
 * translation of DEVICE_DESCRIPTION, the DMA_OPERATIONS table, and common buffers through
 * the saved operation pointers, bad frees included.
 */
#include <dmahal/wdm.h> /* first: the header must stand alone */

#include <dmahal/dmahal.h>

#include <errno.h>
#include <stddef.h>

#include "test.h"
#include "wrig.h"

/* Under AddressSanitizer a case can ask LeakSanitizer directly: forked cases end with _exit,
 * which skips the check it would make at exit. */
#if defined(__SANITIZE_ADDRESS__)
#define WDM_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WDM_HAVE_LSAN 1
#endif
#endif
#ifdef WDM_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#define CHECK_NO_LEAKS() CHECK_EQ(__lsan_do_recoverable_leak_check(), 0)
#else
#define CHECK_NO_LEAKS() ((void)0)
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KIB           1024u
#define MIB           (1024u * 1024u)

/* A bus-master description of @version with a 64 KiB MaximumLength. */
static DEVICE_DESCRIPTION desc_master(ULONG version)
{
    DEVICE_DESCRIPTION dd;

    memset(&dd, 0, sizeof(dd));
    dd.Version = version;
    dd.Master = TRUE;
    dd.InterfaceType = PCIBus;
    dd.MaximumLength = 64 * KIB;
    return dd;
}

static PDMA_ADAPTER get_adapter(struct wrig *r, DEVICE_DESCRIPTION dd, ULONG *nregs)
{
    ULONG n = 0xdeadbeef;
    PDMA_ADAPTER a = IoGetDmaAdapter(r->pdo, &dd, &n);

    if (nregs)
        *nregs = n;
    return a;
}

static void put_adapter(PDMA_ADAPTER a)
{
    a->DmaOperations->PutDmaAdapter(a);
}

/* The address width the adapter was given, read back through dmahal. */
static unsigned adapter_bits(PDMA_ADAPTER a)
{
    struct dmahal_desc desc = {.size = sizeof(desc)};

    CHECK_OK(dmahal_adapter_desc(dmahal_wdm_adapter(a), &desc));
    return desc.addr_bits;
}

/* ---- layouts: Windows' x86-64 offsets, so that code and data built for Windows agree ---- */

TEST(wdm_basic_types_have_windows_widths)
{
    CHECK_EQ(sizeof(ULONG), 4);
    CHECK_EQ(sizeof(LONG), 4);
    CHECK_EQ(sizeof(USHORT), 2);
    CHECK_EQ(sizeof(BOOLEAN), 1);
    CHECK_EQ(sizeof(NTSTATUS), 4);
    CHECK_EQ(sizeof(LARGE_INTEGER), 8);
    CHECK_EQ(sizeof(PHYSICAL_ADDRESS), 8);
    CHECK_EQ(sizeof(INTERFACE_TYPE), 4);
    CHECK_LT(STATUS_INSUFFICIENT_RESOURCES, 0);
    CHECK(!NT_SUCCESS(STATUS_INSUFFICIENT_RESOURCES));
    CHECK(NT_SUCCESS(STATUS_SUCCESS));
}

TEST(wdm_large_integer_halves_alias_quadpart)
{
    PHYSICAL_ADDRESS pa;

    pa.QuadPart = 0x123456789abcdef0LL;
    CHECK_EQ_U(pa.LowPart, 0x9abcdef0u);
    CHECK_EQ_U((ULONG)pa.HighPart, 0x12345678u);
    CHECK_EQ_U(pa.u.LowPart, 0x9abcdef0u);
    CHECK_EQ_U((ULONG)pa.u.HighPart, 0x12345678u);
    pa.HighPart = -1;
    CHECK_EQ(pa.QuadPart < 0, 1);
    CHECK_EQ(offsetof(LARGE_INTEGER, HighPart), 4);
}

TEST(wdm_device_description_layout)
{
    static const struct {
        size_t off, want;
    } f[] = {
        {offsetof(DEVICE_DESCRIPTION, Version), 0x00},
        {offsetof(DEVICE_DESCRIPTION, Master), 0x04},
        {offsetof(DEVICE_DESCRIPTION, ScatterGather), 0x05},
        {offsetof(DEVICE_DESCRIPTION, DemandMode), 0x06},
        {offsetof(DEVICE_DESCRIPTION, AutoInitialize), 0x07},
        {offsetof(DEVICE_DESCRIPTION, Dma32BitAddresses), 0x08},
        {offsetof(DEVICE_DESCRIPTION, IgnoreCount), 0x09},
        {offsetof(DEVICE_DESCRIPTION, Reserved1), 0x0a},
        {offsetof(DEVICE_DESCRIPTION, Dma64BitAddresses), 0x0b},
        {offsetof(DEVICE_DESCRIPTION, BusNumber), 0x0c},
        {offsetof(DEVICE_DESCRIPTION, DmaChannel), 0x10},
        {offsetof(DEVICE_DESCRIPTION, InterfaceType), 0x14},
        {offsetof(DEVICE_DESCRIPTION, DmaWidth), 0x18},
        {offsetof(DEVICE_DESCRIPTION, DmaSpeed), 0x1c},
        {offsetof(DEVICE_DESCRIPTION, MaximumLength), 0x20},
        {offsetof(DEVICE_DESCRIPTION, DmaPort), 0x24},
        {offsetof(DEVICE_DESCRIPTION, DmaAddressWidth), 0x28},
        {offsetof(DEVICE_DESCRIPTION, DmaControllerInstance), 0x2c},
        {offsetof(DEVICE_DESCRIPTION, DmaRequestLine), 0x30},
        {offsetof(DEVICE_DESCRIPTION, DeviceAddress), 0x38},
    };

    for (size_t i = 0; i < ARRAY_SIZE(f); i++)
        CHECK_EQ_U(f[i].off, f[i].want);
    CHECK_EQ_U(sizeof(DEVICE_DESCRIPTION), 0x40);
    CHECK_EQ(PCIBus, 5);
    CHECK_EQ(InterfaceTypeUndefined, -1);
    CHECK_EQ(Width64Bits, 3);
    CHECK_EQ(TypeF, 4);
}

TEST(wdm_dma_adapter_layout)
{
    CHECK_EQ_U(offsetof(DMA_ADAPTER, Version), 0);
    CHECK_EQ_U(offsetof(DMA_ADAPTER, Size), 2);
    CHECK_EQ_U(offsetof(DMA_ADAPTER, DmaOperations), 8);
    CHECK_EQ_U(sizeof(DMA_ADAPTER), 16);
}

/* Every member of DMA_OPERATIONS after Size, in Windows' order. */
static const size_t ops_members[] = {
    offsetof(DMA_OPERATIONS, PutDmaAdapter),
    offsetof(DMA_OPERATIONS, AllocateCommonBuffer),
    offsetof(DMA_OPERATIONS, FreeCommonBuffer),
    offsetof(DMA_OPERATIONS, AllocateAdapterChannel),
    offsetof(DMA_OPERATIONS, FlushAdapterBuffers),
    offsetof(DMA_OPERATIONS, FreeAdapterChannel),
    offsetof(DMA_OPERATIONS, FreeMapRegisters),
    offsetof(DMA_OPERATIONS, MapTransfer),
    offsetof(DMA_OPERATIONS, GetDmaAlignment),
    offsetof(DMA_OPERATIONS, ReadDmaCounter),
    offsetof(DMA_OPERATIONS, GetScatterGatherList),
    offsetof(DMA_OPERATIONS, PutScatterGatherList),
    offsetof(DMA_OPERATIONS, CalculateScatterGatherList),
    offsetof(DMA_OPERATIONS, BuildScatterGatherList),
    offsetof(DMA_OPERATIONS, BuildMdlFromScatterGatherList),
    offsetof(DMA_OPERATIONS, GetDmaAdapterInfo),
    offsetof(DMA_OPERATIONS, GetDmaTransferInfo),
    offsetof(DMA_OPERATIONS, InitializeDmaTransferContext),
    offsetof(DMA_OPERATIONS, AllocateCommonBufferEx),
    offsetof(DMA_OPERATIONS, AllocateAdapterChannelEx),
    offsetof(DMA_OPERATIONS, ConfigureAdapterChannel),
    offsetof(DMA_OPERATIONS, CancelAdapterChannel),
    offsetof(DMA_OPERATIONS, MapTransferEx),
    offsetof(DMA_OPERATIONS, GetScatterGatherListEx),
    offsetof(DMA_OPERATIONS, BuildScatterGatherListEx),
    offsetof(DMA_OPERATIONS, FlushAdapterBuffersEx),
    offsetof(DMA_OPERATIONS, FreeAdapterObject),
    offsetof(DMA_OPERATIONS, CancelMappedTransfer),
    offsetof(DMA_OPERATIONS, AllocateDomainCommonBuffer),
    offsetof(DMA_OPERATIONS, FlushDmaBuffer),
    offsetof(DMA_OPERATIONS, JoinDmaDomain),
    offsetof(DMA_OPERATIONS, LeaveDmaDomain),
    offsetof(DMA_OPERATIONS, GetDmaDomain),
    offsetof(DMA_OPERATIONS, AllocateCommonBufferWithBounds),
    offsetof(DMA_OPERATIONS, AllocateCommonBufferVector),
    offsetof(DMA_OPERATIONS, GetCommonBufferFromVectorByIndex),
    offsetof(DMA_OPERATIONS, FreeCommonBufferFromVector),
    offsetof(DMA_OPERATIONS, FreeCommonBufferVector),
    offsetof(DMA_OPERATIONS, CreateCommonBufferFromMdl),
};

TEST(wdm_dma_operations_layout_is_windows_order)
{
    /* Windows 11 24H2 on x86-64: 39 pointers 8 bytes apart after Size, 0x140 bytes. */
    CHECK_EQ(ARRAY_SIZE(ops_members), 39);
    for (size_t i = 0; i < ARRAY_SIZE(ops_members); i++)
        CHECK_EQ_U(ops_members[i], 8 * (i + 1));
    CHECK_EQ_U(offsetof(DMA_OPERATIONS, GetDmaAlignment), 0x48);
    CHECK_EQ_U(offsetof(DMA_OPERATIONS, FreeCommonBufferVector), 0x130);
    CHECK_EQ_U(sizeof(DMA_OPERATIONS), 0x140);
}

static const void *ops_member(const DMA_OPERATIONS *ops, size_t off)
{
    const void *fn;

    memcpy(&fn, (const char *)ops + off, sizeof(fn));
    return fn;
}

/* Size covers exactly the members filled: every member Windows has for the adapter's
 * version is set (those without a meaning here answer "not supported"), the rest is NULL. */
static void check_ops_table(ULONG version, size_t want_size)
{
    struct wrig r;
    PDMA_ADAPTER a;
    const DMA_OPERATIONS *ops;

    wrig_open(&r, "sim", "edu");
    DEVICE_DESCRIPTION dd = desc_master(version);
    dd.DmaAddressWidth = 64;
    dd.Dma64BitAddresses = TRUE;
    a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    ops = a->DmaOperations;
    CHECK(ops != NULL);
    CHECK_EQ_U(ops->Size, want_size);
    for (size_t i = 0; i < ARRAY_SIZE(ops_members); i++) {
        const void *fn = ops_member(ops, ops_members[i]);

        if (ops_members[i] >= ops->Size)
            CHECK(fn == NULL);
        else
            CHECK(fn != NULL);
    }
    CHECK_EQ(ops->ReadDmaCounter(a), 0);
    put_adapter(a);
    wrig_close(&r);
}

TEST(wdm_dma_operations_table_is_filled_up_to_size_and_null_after)
{
    check_ops_table(DEVICE_DESCRIPTION_VERSION,
                    offsetof(DMA_OPERATIONS, CalculateScatterGatherList));
    check_ops_table(DEVICE_DESCRIPTION_VERSION1,
                    offsetof(DMA_OPERATIONS, CalculateScatterGatherList));
    check_ops_table(DEVICE_DESCRIPTION_VERSION2, offsetof(DMA_OPERATIONS, GetDmaAdapterInfo));
    check_ops_table(DEVICE_DESCRIPTION_VERSION3, sizeof(DMA_OPERATIONS));
}

/* ---- IoGetDmaAdapter: arguments and versions ----------------------------------------------- */

TEST(wdm_get_adapter_refuses_null_arguments)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION3);
    ULONG n = 0xdeadbeef;

    dd.DmaAddressWidth = 32;
    wrig_open(&r, "sim", "edu");
    CHECK(IoGetDmaAdapter(NULL, &dd, &n) == NULL);
    CHECK_EQ_U(n, 0);
    n = 0xdeadbeef;
    CHECK(IoGetDmaAdapter(r.pdo, NULL, &n) == NULL);
    CHECK_EQ_U(n, 0);
    CHECK(IoGetDmaAdapter(r.pdo, &dd, NULL) == NULL);
    /* The same arguments, none NULL, succeed: the refusals above were for the NULLs. */
    PDMA_ADAPTER a = IoGetDmaAdapter(r.pdo, &dd, &n);
    CHECK(a != NULL);
    CHECK_NE_U(n, 0);
    put_adapter(a);
    wrig_close(&r);
}

TEST(wdm_get_adapter_versions)
{
    static const struct {
        ULONG version;
        bool ok;
        USHORT adapter_version;
    } v[] = {
        {DEVICE_DESCRIPTION_VERSION, true, 1},
        {DEVICE_DESCRIPTION_VERSION1, true, 1},
        {DEVICE_DESCRIPTION_VERSION2, true, 1}, /* Windows sets 1 whatever the version */
        {DEVICE_DESCRIPTION_VERSION3, true, 1},
        {4, false, 0},
        {0x80000000u, false, 0},
        {0xffffffffu, false, 0},
    };
    struct wrig r;

    wrig_open(&r, "sim", "edu");
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        DEVICE_DESCRIPTION dd = desc_master(v[i].version);
        ULONG n;
        PDMA_ADAPTER a;

        dd.Dma32BitAddresses = TRUE;
        dd.DmaAddressWidth = 32;
        a = get_adapter(&r, dd, &n);
        CHECK_EQ(a != NULL, v[i].ok);
        if (!a) {
            CHECK_EQ_U(n, 0);
            continue;
        }
        CHECK_EQ(a->Version, v[i].adapter_version);
        CHECK_EQ(a->Size, sizeof(DMA_ADAPTER));
        CHECK(dmahal_wdm_adapter(a) != NULL);
        CHECK(dmahal_adapter_device(dmahal_wdm_adapter(a)) == r.d);
        put_adapter(a);
    }
    wrig_close(&r);
}

TEST(wdm_get_adapter_refuses_what_it_cannot_serve)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd;

    wrig_open(&r, "sim", "edu");
    dd = desc_master(DEVICE_DESCRIPTION_VERSION2);
    dd.Master = FALSE; /* a subordinate device needs a system DMA controller */
    dd.DmaChannel = 2;
    CHECK(get_adapter(&r, dd, NULL) == NULL);
    dd = desc_master(DEVICE_DESCRIPTION_VERSION2);
    dd.Reserved1 = TRUE;
    CHECK(get_adapter(&r, dd, NULL) == NULL);
    static const ULONG bad_widths[] = {0, 8, 16, 23, 65, 0xffffffffu};
    for (size_t i = 0; i < ARRAY_SIZE(bad_widths); i++) {
        dd = desc_master(DEVICE_DESCRIPTION_VERSION3);
        dd.DmaAddressWidth = bad_widths[i];
        CHECK(get_adapter(&r, dd, NULL) == NULL);
    }
    /* Versions 0-2 do not read DmaAddressWidth: garbage there changes nothing. */
    dd = desc_master(DEVICE_DESCRIPTION_VERSION2);
    dd.DmaAddressWidth = 0xffffffffu;
    dd.Dma64BitAddresses = TRUE;
    PDMA_ADAPTER a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    CHECK_EQ(adapter_bits(a), 64);
    put_adapter(a);
    wrig_close(&r);
}

TEST(wdm_get_adapter_refuses_device_objects_it_did_not_make)
{
    struct wrig r;
    DEVICE_OBJECT fake;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION);
    ULONG n = 7;

    wrig_open(&r, "sim", "edu");
    memset(&fake, 0, sizeof(fake));
    fake.Type = IO_TYPE_DEVICE;
    fake.Size = sizeof(fake);
    fake.DmahalDevice = r.d; /* the right device, but not the object that stands for it */
    CHECK(IoGetDmaAdapter(&fake, &dd, &n) == NULL);
    CHECK_EQ_U(n, 0);
    wrig_close(&r);
}

TEST(wdm_device_object_is_stable_per_device)
{
    struct wrig r;
    struct dmahal_device *d2;
    PDEVICE_OBJECT o2;

    wrig_open(&r, "sim", "edu");
    CHECK(dmahal_wdm_device(NULL) == NULL);
    CHECK(dmahal_wdm_device(r.d) == r.pdo);
    CHECK(dmahal_wdm_device(r.d) == r.pdo);
    CHECK_EQ(r.pdo->Type, IO_TYPE_DEVICE);
    CHECK_EQ(r.pdo->Size, sizeof(DEVICE_OBJECT));
    CHECK(r.pdo->DmahalDevice == r.d);
    CHECK(r.pdo->DeviceExtension == NULL);
    CHECK_OK(dmahal_device_open(r.p, "edu", &d2));
    o2 = dmahal_wdm_device(d2);
    CHECK(o2 != NULL);
    CHECK(o2 != r.pdo);
    CHECK(o2->DmahalDevice == d2);
    wrig_close(&r);
}

/* ---- NumberOfMapRegisters ------------------------------------------------------------------ */

TEST(wdm_map_registers_as_windows_computes_them)
{
    /* BYTES_TO_PAGES(MaximumLength & 0x7fffffff) + 1 with 4 KiB pages, capped at 16 for a
     * device that cannot scatter/gather: the values Windows' x86 HAL returns. */
    static const struct {
        ULONG max_len;
        BOOLEAN sg;
        ULONG want;
        INTERFACE_TYPE bus; /* 0 (Internal) is taken as PCIBus below */
    } c[] = {
        {64 * KIB, TRUE, 16, Isa}, /* scatter/gather on ISA: the 64 KiB limit still holds */
        {64 * KIB, TRUE, 17, Eisa},
        {64 * KIB, TRUE, 17, InterfaceTypeUndefined},
        {0, FALSE, 1},
        {1, FALSE, 2},
        {4096, FALSE, 2},
        {4097, FALSE, 3},
        {8192, FALSE, 3},
        {60 * KIB, FALSE, 16},
        {60 * KIB + 1, FALSE, 16},
        {64 * KIB, FALSE, 16},
        {1 * MIB, FALSE, 16},
        {0xffffffffu, FALSE, 16},
        {0, TRUE, 1},
        {4096, TRUE, 2},
        {64 * KIB, TRUE, 17},
        {1 * MIB, TRUE, 257},
        {1 * MIB + 1, TRUE, 258},
        {0x7fffffffu, TRUE, 524289},
        {0x80000000u, TRUE, 1},      /* only the dropped top bit */
        {0x80001000u, TRUE, 2},      /* the top bit dropped, one page left */
        {0xffffffffu, TRUE, 524289}, /* 2 GiB - 1 */
    };
    struct wrig r;

    wrig_open(&r, "sim", "edu");
    for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
        DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION2);
        struct dmahal_desc desc = {.size = sizeof(desc)};
        ULONG n;
        PDMA_ADAPTER a;

        dd.Dma64BitAddresses = TRUE;
        dd.InterfaceType = c[i].bus ? c[i].bus : PCIBus;
        dd.ScatterGather = c[i].sg;
        dd.MaximumLength = c[i].max_len;
        a = get_adapter(&r, dd, &n);
        CHECK(a != NULL);
        if (n != c[i].want)
            test_fail(__FILE__, __LINE__, "MaximumLength %#x sg %d: %u map registers, want %u",
                      c[i].max_len, c[i].sg, n, c[i].want);
        CHECK_OK(dmahal_adapter_desc(dmahal_wdm_adapter(a), &desc));
        CHECK_EQ(desc.max_segments, c[i].sg ? c[i].want : 1);
        /* dmahal takes what the registers map, page-aligned: n pages, which it counts as
         * n + 1 registers (it allows for an unaligned start). */
        CHECK_EQ(desc.max_transfer, (size_t)n * 4096);
        if ((c[i].max_len & 0x7fffffffu) != 0)
            CHECK_EQ(dmahal_adapter_map_registers(dmahal_wdm_adapter(a)), n + 1);
        put_adapter(a);
    }
    wrig_close(&r);
}

TEST(wdm_map_registers_follow_the_platform_page)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION3);
    ULONG n;
    PDMA_ADAPTER a;

    wrig_open(&r, "sim:page=16K", "edu");
    dd.DmaAddressWidth = 64;
    dd.ScatterGather = TRUE;
    dd.MaximumLength = 64 * KIB; /* four 16 KiB pages */
    a = get_adapter(&r, dd, &n);
    CHECK(a != NULL);
    CHECK_EQ(n, 5);
    CHECK_EQ(dmahal_adapter_map_registers(dmahal_wdm_adapter(a)), 6);
    put_adapter(a);
    wrig_close(&r);
}

/* ---- address widths: the description decides what logical addresses the buffers get ------ */

struct width_case {
    ULONG version;
    BOOLEAN dma32, dma64, sg;
    INTERFACE_TYPE bus;
    ULONG width; /* DmaAddressWidth */
    unsigned want_bits;
};

static const struct width_case width_cases[] = {
    {DEVICE_DESCRIPTION_VERSION, FALSE, FALSE, FALSE, PCIBus, 0, 24},
    {DEVICE_DESCRIPTION_VERSION, FALSE, FALSE, TRUE, Isa, 0, 24},
    {DEVICE_DESCRIPTION_VERSION1, FALSE, FALSE, TRUE, PCIBus, 0, 32},
    {DEVICE_DESCRIPTION_VERSION1, FALSE, FALSE, TRUE, InterfaceTypeUndefined, 0, 32},
    {DEVICE_DESCRIPTION_VERSION1, TRUE, FALSE, FALSE, Isa, 0, 32},
    {DEVICE_DESCRIPTION_VERSION2, TRUE, TRUE, FALSE, PCIBus, 28, 64},
    {DEVICE_DESCRIPTION_VERSION2, FALSE, TRUE, TRUE, PCIBus, 0, 64},
    {DEVICE_DESCRIPTION_VERSION3, TRUE, TRUE, TRUE, PCIBus, 24, 24},
    {DEVICE_DESCRIPTION_VERSION3, FALSE, TRUE, FALSE, PCIBus, 28, 28},
    {DEVICE_DESCRIPTION_VERSION3, FALSE, FALSE, FALSE, PCIBus, 32, 32},
    {DEVICE_DESCRIPTION_VERSION3, FALSE, FALSE, FALSE, PCIBus, 40, 40},
    {DEVICE_DESCRIPTION_VERSION3, FALSE, FALSE, FALSE, PCIBus, 64, 64},
};

static void check_widths_on(const char *spec)
{
    static const ULONG lens[] = {64, 4096, 3 * 4096 + 100, 64 * KIB};
    struct wrig r;

    wrig_open(&r, spec, "edu");
    for (size_t i = 0; i < ARRAY_SIZE(width_cases); i++) {
        const struct width_case *w = &width_cases[i];
        DEVICE_DESCRIPTION dd = desc_master(w->version);
        PDMA_ADAPTER a;
        PALLOCATE_COMMON_BUFFER alloc;
        PFREE_COMMON_BUFFER release;

        dd.Dma32BitAddresses = w->dma32;
        dd.Dma64BitAddresses = w->dma64;
        dd.ScatterGather = w->sg;
        dd.InterfaceType = w->bus;
        dd.DmaAddressWidth = w->width;
        a = get_adapter(&r, dd, NULL);
        CHECK(a != NULL);
        if (adapter_bits(a) != w->want_bits)
            test_fail(__FILE__, __LINE__, "%s case %zu: %u address bits, want %u", spec, i,
                      adapter_bits(a), w->want_bits);
        alloc = a->DmaOperations->AllocateCommonBuffer;
        release = a->DmaOperations->FreeCommonBuffer;
        for (size_t j = 0; j < ARRAY_SIZE(lens); j++) {
            PHYSICAL_ADDRESS la;
            unsigned char *va = alloc(a, lens[j], &la, FALSE);
            uint64_t last;

            CHECK(va != NULL);
            CHECK_NE_U(la.QuadPart, 0);
            last = (uint64_t)la.QuadPart + lens[j] - 1;
            if (w->want_bits < 64 && (last >> w->want_bits) != 0)
                test_fail(__FILE__, __LINE__,
                          "%s case %zu: buffer ends at %#" PRIx64 ", beyond %u bits", spec, i, last,
                          w->want_bits);
            /* The device reaches it at that address and sees what the CPU wrote. */
            unsigned char back[64];
            memset(va, 0xa5, 64);
            CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, back, sizeof(back)));
            CHECK_EQ(back[0], 0xa5);
            CHECK_EQ(back[63], 0xa5);
            release(a, lens[j], la, va, FALSE);
        }
        put_adapter(a);
    }
    wrig_close(&r);
}

TEST(wdm_widths_give_logical_addresses_that_fit)
{
    check_widths_on("sim");
}

TEST(wdm_widths_give_logical_addresses_that_fit_with_iommu)
{
    check_widths_on("sim:iommu=on");
}

TEST(wdm_widths_give_logical_addresses_that_fit_with_ram_low)
{
    check_widths_on("sim:ram=0-64M");
}

/* ---- common buffers through the saved pointers --------------------------------------------- */

TEST(wdm_alloc_free_through_saved_pointers)
{
    static const ULONG lens[] = {1, 100, 4096, 4097, 5 * 4096, 256 * KIB};
    struct wrig r;
    PDMA_ADAPTER a;
    PALLOCATE_COMMON_BUFFER alloc;
    PFREE_COMMON_BUFFER release;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION3);
    PVOID va[ARRAY_SIZE(lens)][2];
    PHYSICAL_ADDRESS la[ARRAY_SIZE(lens)][2];

    wrig_open(&r, "sim:iommu=on", "edu");
    dd.DmaAddressWidth = 32;
    a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    alloc = a->DmaOperations->AllocateCommonBuffer;
    release = a->DmaOperations->FreeCommonBuffer;
    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        for (int c = 0; c < 2; c++) {
            unsigned char *p;

            la[i][c].QuadPart = -1;
            va[i][c] = alloc(a, lens[i], &la[i][c], (BOOLEAN)c);
            p = va[i][c];
            CHECK(p != NULL);
            CHECK_NE_U(la[i][c].QuadPart, 0);
            CHECK_LT_U((uint64_t)la[i][c].QuadPart + lens[i] - 1, UINT64_C(1) << 32);
            for (ULONG k = 0; k < lens[i]; k++)
                CHECK_EQ(p[k], 0); /* zeroed */
            memset(p, (int)(i * 2 + c + 1), lens[i]);
        }
    }
    /* Each buffer kept its own contents: no two overlap. */
    for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
        for (int c = 0; c < 2; c++) {
            unsigned char *p = va[i][c];

            CHECK_EQ(p[0], i * 2 + c + 1);
            CHECK_EQ(p[lens[i] - 1], i * 2 + c + 1);
        }
    for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
        for (int c = 0; c < 2; c++)
            release(a, lens[i], la[i][c], va[i][c], (BOOLEAN)c);
    put_adapter(a);
    wrig_close(&r);
}

/*
 * A machine with 4 MiB of RAM, so that an adapter runs out: whether memory came back is
 * then seen in what can be allocated again, whatever the allocator keeps mapped.
 */
#define SMALL_SPEC "sim:ram=0-4M"
#define FILL_LEN   (256 * KIB)
#define FILL_MAX   64

struct fill {
    PVOID va[FILL_MAX];
    PHYSICAL_ADDRESS la[FILL_MAX];
    size_t n;
};

/* Allocates FILL_LEN buffers from @a until it fails; returns how many it got. */
static size_t fill_up(PDMA_ADAPTER a, struct fill *f)
{
    f->n = 0;
    while (f->n < FILL_MAX) {
        PHYSICAL_ADDRESS la;
        PVOID va = a->DmaOperations->AllocateCommonBuffer(a, FILL_LEN, &la, FALSE);

        if (!va) {
            CHECK_EQ(la.QuadPart, 0);
            break;
        }
        f->va[f->n] = va;
        f->la[f->n++] = la;
    }
    CHECK_LT(f->n, FILL_MAX); /* 4 MiB must run out */
    return f->n;
}

static void fill_free(PDMA_ADAPTER a, struct fill *f)
{
    for (size_t i = 0; i < f->n; i++)
        a->DmaOperations->FreeCommonBuffer(a, FILL_LEN, f->la[i], f->va[i], FALSE);
    f->n = 0;
}

TEST(wdm_free_gives_the_memory_back)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION2);
    PDMA_ADAPTER a;
    struct fill f;
    size_t n;

    wrig_open(&r, SMALL_SPEC, "edu");
    dd.Dma32BitAddresses = TRUE;
    a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    n = fill_up(a, &f);
    CHECK_GT(n, 4);
    for (int round = 0; round < 3; round++) {
        fill_free(a, &f);
        CHECK_EQ(fill_up(a, &f), n);
    }
    fill_free(a, &f);
    put_adapter(a);
    wrig_close(&r);
}

TEST(wdm_alloc_failures_return_null_and_zero_the_address)
{
    struct wrig r;
    PDMA_ADAPTER a;
    PALLOCATE_COMMON_BUFFER alloc;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION);
    PHYSICAL_ADDRESS la;
    char fake[64];

    wrig_open(&r, "sim", "edu");
    a = get_adapter(&r, dd, NULL); /* 24 bits: 16 MiB of reach */
    CHECK(a != NULL);
    CHECK_EQ(adapter_bits(a), 24);
    alloc = a->DmaOperations->AllocateCommonBuffer;
    la.QuadPart = 0x1234;
    CHECK(alloc(a, 0, &la, FALSE) == NULL);
    CHECK_EQ(la.QuadPart, 0);
    CHECK(alloc(a, 4096, NULL, FALSE) == NULL);
    la.QuadPart = 0x1234;
    CHECK(alloc(NULL, 4096, &la, FALSE) == NULL);
    CHECK_EQ(la.QuadPart, 0);
    memset(fake, 0, sizeof(fake)); /* not an adapter IoGetDmaAdapter made */
    la.QuadPart = 0x1234;
    CHECK(alloc((PDMA_ADAPTER)fake, 4096, &la, FALSE) == NULL);
    CHECK_EQ(la.QuadPart, 0);
    CHECK(dmahal_wdm_adapter((PDMA_ADAPTER)fake) == NULL);
    CHECK(dmahal_wdm_adapter(NULL) == NULL);
    la.QuadPart = 0x1234;
    CHECK(alloc(a, 32 * MIB, &la, FALSE) == NULL); /* more than 24 bits reach */
    CHECK_EQ(la.QuadPart, 0);
    /* The adapter still works after the failures. */
    PVOID va = alloc(a, 4096, &la, FALSE);
    CHECK(va != NULL);
    CHECK_LT_U((uint64_t)la.QuadPart + 4095, UINT64_C(1) << 24);
    a->DmaOperations->FreeCommonBuffer(a, 4096, la, va, FALSE);
    put_adapter(a);
    wrig_close(&r);
}

TEST(wdm_bad_frees_free_nothing_and_do_not_crash)
{
    struct wrig r;
    PDMA_ADAPTER a, b;
    PFREE_COMMON_BUFFER release;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION3);
    PHYSICAL_ADDRESS la, other_la, bad;
    PVOID va, other_va;
    struct fill f;
    unsigned char *p;

    wrig_open(&r, SMALL_SPEC, "edu");
    dd.DmaAddressWidth = 32;
    a = get_adapter(&r, dd, NULL);
    b = get_adapter(&r, dd, NULL);
    CHECK(a != NULL && b != NULL);
    release = a->DmaOperations->FreeCommonBuffer;
    other_va = b->DmaOperations->AllocateCommonBuffer(b, 4096, &other_la, FALSE);
    CHECK(other_va != NULL);
    CHECK_GT(fill_up(a, &f), 1);
    va = f.va[0];
    la = f.la[0];
    p = va;
    memset(p, 0x5a, FILL_LEN);

    bad.QuadPart = 0x12345000;
    release(a, FILL_LEN, bad, (PVOID)(uintptr_t)0x1234, FALSE); /* garbage */
    release(a, FILL_LEN, la, p + 4096, FALSE);                  /* inside, not the start */
    release(a, FILL_LEN - 1, la, va, FALSE);                    /* wrong length */
    release(a, 0, la, va, FALSE);                               /* no length */
    bad.QuadPart = la.QuadPart + 4096;
    release(a, FILL_LEN, bad, va, FALSE);        /* wrong logical address */
    release(a, FILL_LEN, la, va, TRUE);          /* wrong CacheEnabled */
    release(a, 4096, other_la, other_va, FALSE); /* another adapter's buffer */
    release(NULL, FILL_LEN, la, va, FALSE);      /* no adapter */
    /* Nothing came back: the adapter is as full as before, and the buffers are intact. */
    CHECK(a->DmaOperations->AllocateCommonBuffer(a, FILL_LEN, &bad, FALSE) == NULL);
    CHECK_EQ(p[0], 0x5a);
    CHECK_EQ(p[FILL_LEN - 1], 0x5a);
    CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, &p[1], 1));

    release(a, FILL_LEN, la, va, FALSE); /* the right free works... */
    release(a, FILL_LEN, la, va, FALSE); /* ...once: the double free frees nothing more */
    f.va[0] = a->DmaOperations->AllocateCommonBuffer(a, FILL_LEN, &f.la[0], FALSE);
    CHECK(f.va[0] != NULL);
    CHECK(a->DmaOperations->AllocateCommonBuffer(a, FILL_LEN, &bad, FALSE) == NULL);
    fill_free(a, &f);
    release(b, 4096, other_la, other_va, FALSE);
    put_adapter(a);
    put_adapter(b);
    wrig_close(&r);
}

TEST(wdm_get_dma_alignment)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION1);
    PDMA_ADAPTER a;

    wrig_open(&r, "sim", "edu");
    a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    CHECK_EQ(a->DmaOperations->GetDmaAlignment(a), dmahal_adapter_alignment(dmahal_wdm_adapter(a)));
    CHECK_GE(a->DmaOperations->GetDmaAlignment(a), 1);
    CHECK_EQ(a->DmaOperations->GetDmaAlignment(NULL), 0);
    put_adapter(a);
    wrig_close(&r);
}

TEST(wdm_put_adapter_frees_what_is_left)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION3);
    PDMA_ADAPTER a;
    PHYSICAL_ADDRESS la;
    unsigned char byte;

    wrig_open(&r, "sim:iommu=on", "edu");
    dd.DmaAddressWidth = 40;
    a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    CHECK(a->DmaOperations->AllocateCommonBuffer(a, 4096, &la, TRUE) != NULL);
    CHECK_OK(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, &byte, 1));
    a->DmaOperations->PutDmaAdapter(a);
    CHECK_ERR(dmahal_dev_read(r.d, (dmahal_addr_t)la.QuadPart, &byte, 1), -EFAULT);
    /* NULL does nothing; the device object still makes adapters. */
    DMA_OPERATIONS const *ops = NULL;
    a = get_adapter(&r, dd, NULL);
    CHECK(a != NULL);
    ops = a->DmaOperations;
    ops->PutDmaAdapter(NULL);
    ops->PutDmaAdapter(a);
    wrig_close(&r);
}

TEST(wdm_device_close_with_adapters_still_held)
{
    struct wrig r;
    DEVICE_DESCRIPTION dd = desc_master(DEVICE_DESCRIPTION_VERSION2);
    PHYSICAL_ADDRESS la;
    struct dmahal_device *d2;

    wrig_open(&r, "sim", "edu");
    dd.Dma32BitAddresses = TRUE;
    for (int i = 0; i < 3; i++) {
        PDMA_ADAPTER a = get_adapter(&r, dd, NULL);

        CHECK(a != NULL);
        CHECK(a->DmaOperations->AllocateCommonBuffer(a, 4096, &la, FALSE) != NULL);
    }
    /* The driver never put them: closing the device releases both sides. */
    dmahal_device_close(r.d);
    CHECK_OK(dmahal_device_open(r.p, "edu", &d2));
    CHECK(dmahal_wdm_device(d2) != NULL);
    wrig_close(&r);
    CHECK_NO_LEAKS(); /* under AddressSanitizer */
}
