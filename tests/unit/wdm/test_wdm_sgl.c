/* SPDX-License-Identifier: MIT */
/*
 * test_wdm_sgl.c - packet DMA through the Windows names: MDLs, SCATTER_GATHER_LIST's layout,
 * Get/Put/Calculate/BuildScatterGatherList, and AllocateAdapterChannel with MapTransfer,
 * FlushAdapterBuffers, FreeMapRegisters and FreeAdapterChannel. The device side is played
 * with dmahal_dev_read/dmahal_dev_write through the logical addresses the driver is given.
 */
#include <dmahal/wdm.h> /* first: the header must stand alone */

#include <dmahal/dmahal.h>

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

#include "test.h"
#include "wrig.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WDM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WDM_SANITIZED 1
#endif
#endif

#define PAGE 4096u

/* ---- layouts: Windows' x86-64 ABI ------------------------------------------------------------ */

_Static_assert(sizeof(MDL) == 48, "MDL header as on Windows x64");
_Static_assert(offsetof(MDL, Next) == 0, "Next");
_Static_assert(offsetof(MDL, Size) == 8, "Size");
_Static_assert(offsetof(MDL, MdlFlags) == 10, "MdlFlags");
_Static_assert(offsetof(MDL, Process) == 16, "Process");
_Static_assert(offsetof(MDL, MappedSystemVa) == 24, "MappedSystemVa");
_Static_assert(offsetof(MDL, StartVa) == 32, "StartVa");
_Static_assert(offsetof(MDL, ByteCount) == 40, "ByteCount");
_Static_assert(offsetof(MDL, ByteOffset) == 44, "ByteOffset");
_Static_assert(sizeof(SCATTER_GATHER_ELEMENT) == 24, "SCATTER_GATHER_ELEMENT as on Windows x64");
_Static_assert(offsetof(SCATTER_GATHER_ELEMENT, Address) == 0, "Address");
_Static_assert(offsetof(SCATTER_GATHER_ELEMENT, Length) == 8, "Length");
_Static_assert(offsetof(SCATTER_GATHER_ELEMENT, Reserved) == 16, "Reserved");
_Static_assert(sizeof(SCATTER_GATHER_LIST) == 16, "SCATTER_GATHER_LIST header as on Windows x64");
_Static_assert(offsetof(SCATTER_GATHER_LIST, NumberOfElements) == 0, "NumberOfElements");
_Static_assert(offsetof(SCATTER_GATHER_LIST, Reserved) == 8, "Reserved");
_Static_assert(offsetof(SCATTER_GATHER_LIST, Elements) == 16, "Elements");
_Static_assert(offsetof(DMA_OPERATIONS, GetScatterGatherList) == 0x58, "GetScatterGatherList");
_Static_assert(offsetof(DMA_OPERATIONS, BuildMdlFromScatterGatherList) == 0x78, "after Build");
_Static_assert(KeepObject == 1 && DeallocateObject == 2 && DeallocateObjectKeepRegisters == 3,
               "IO_ALLOCATION_ACTION values");

/* ---- rig ----------------------------------------------------------------------------------- */

static unsigned in_use(const struct wrig *r)
{
    return dmahal_adapter_map_registers_in_use(dmahal_wdm_adapter(r->a));
}

/* The routine's calls, in order. */
struct calls {
    int n;
    int id[8];
    PSCATTER_GATHER_LIST list[8];
    PDEVICE_OBJECT dev[8];
    PIRP irp[8];
};

struct req {
    struct calls *c;
    int id;
};

static VOID on_list(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST ScatterGather,
                    PVOID Context)
{
    struct req *q = Context;
    struct calls *c = q->c;

    c->id[c->n] = q->id;
    c->list[c->n] = ScatterGather;
    c->dev[c->n] = DeviceObject;
    c->irp[c->n] = Irp;
    c->n++;
}

static size_t sg_total(PSCATTER_GATHER_LIST sg)
{
    size_t t = 0;

    for (ULONG i = 0; i < sg->NumberOfElements; i++)
        t += sg->Elements[i].Length;
    return t;
}

/* The device reads the transfer through the list into @out, each element's Reserved zero. */
static void gather(struct dmahal_device *d, PSCATTER_GATHER_LIST sg, unsigned char *out)
{
    for (ULONG i = 0; i < sg->NumberOfElements; i++)
        CHECK_EQ_U(sg->Elements[i].Reserved, 0);
    sg_gather(d, sg, out);
}

static void check_below(PSCATTER_GATHER_LIST sg, unsigned bits)
{
    if (bits >= 64)
        return;
    for (ULONG i = 0; i < sg->NumberOfElements; i++)
        CHECK_LE_U((uint64_t)sg->Elements[i].Address.QuadPart + sg->Elements[i].Length - 1,
                   (UINT64_C(1) << bits) - 1);
}

/* ---- MDLs ---------------------------------------------------------------------------------- */

TEST(mdl_describes_the_buffer)
{
    unsigned char *b = pages(3);
    PMDL mdl = IoAllocateMdl(b + 100, 5000, FALSE, FALSE, NULL);

    CHECK(mdl != NULL);
    CHECK(mdl->Next == NULL);
    CHECK_EQ(mdl->Size, sizeof(MDL));
    CHECK(mdl->StartVa == b);
    CHECK_EQ(MmGetMdlByteOffset(mdl), 100);
    CHECK_EQ(MmGetMdlByteCount(mdl), 5000);
    CHECK(MmGetMdlVirtualAddress(mdl) == b + 100);
    CHECK_EQ(mdl->MdlFlags, MDL_ALLOCATED_FIXED_SIZE | MDL_PAGES_LOCKED);
    CHECK_EQ(ADDRESS_AND_SIZE_TO_SPAN_PAGES(b + 100, 5000), 2);
    CHECK_EQ(ADDRESS_AND_SIZE_TO_SPAN_PAGES(b + 4000, 200), 2);
    CHECK_EQ(ADDRESS_AND_SIZE_TO_SPAN_PAGES(b, 8192), 2);
    CHECK_EQ(BYTES_TO_PAGES(8193), 3);
    /* Mapped on demand: the buffer's own address, recorded. */
    CHECK(MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute) == b + 100);
    CHECK(mdl->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA);
    CHECK(mdl->MappedSystemVa == b + 100);
    IoFreeMdl(mdl);

    mdl = IoAllocateMdl(b + 4096, 10, TRUE, TRUE, NULL);
    CHECK(mdl != NULL);
    MmBuildMdlForNonPagedPool(mdl);
    CHECK(mdl->MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL);
    CHECK(mdl->MappedSystemVa == b + 4096);
    CHECK(MmGetSystemAddressForMdlSafe(mdl, HighPagePriority) == b + 4096);
    KeFlushIoBuffers(mdl, TRUE, TRUE);
    IoFreeMdl(mdl);
    IoFreeMdl(NULL);
    MmBuildMdlForNonPagedPool(NULL);
    CHECK(MmGetSystemAddressForMdlSafe(NULL, NormalPagePriority) == NULL);
    free(b);
}

TEST(mdl_refuses_what_it_cannot_describe)
{
    unsigned char b[16];

    CHECK(IoAllocateMdl(NULL, 16, FALSE, FALSE, NULL) == NULL);
    CHECK(IoAllocateMdl(b, 0, FALSE, FALSE, NULL) == NULL);
    CHECK(IoAllocateMdl((PVOID)(UINTPTR_MAX - 10), 100, FALSE, FALSE, NULL) == NULL);
    /* There are no IRPs to chain to: any non-NULL one is refused. */
    CHECK(IoAllocateMdl(b, 16, FALSE, FALSE, (PIRP)b) == NULL);
}

/* ---- GetScatterGatherList / PutScatterGatherList ----------------------------------------------
 */

/* A transfer to the device: the list covers the bytes in order and the device reads them. */
static void to_device_through_list(const char *spec, ULONG bits)
{
    struct wrig r;
    unsigned char *b = pages(4), *seen = pages(4);
    struct calls c = {0};
    struct req q = {&c, 1};
    PMDL mdl;

    wrig_open3(&r, spec, "edu:dma_mask=0xffffffffffffffff", bits, 64 * 1024, TRUE);
    fill13(b, 4 * PAGE, 7);
    mdl = IoAllocateMdl(b + 300, 3 * PAGE, FALSE, FALSE, NULL);
    CHECK(mdl != NULL);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 300, 3 * PAGE, on_list, &q, TRUE),
             STATUS_SUCCESS);
    /* The routine ran before the call returned, with the device object and no IRP. */
    CHECK_EQ(c.n, 1);
    CHECK(c.dev[0] == r.pdo);
    CHECK(c.irp[0] == NULL);
    CHECK_GE(c.list[0]->NumberOfElements, 1);
    CHECK_EQ(sg_total(c.list[0]), 3 * PAGE);
    check_below(c.list[0], bits);
    gather(r.d, c.list[0], seen);
    CHECK(memcmp(seen, b + 300, 3 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, c.list[0], TRUE);
    CHECK_EQ(in_use(&r), 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(seen);
}

TEST(get_list_to_device_in_place)
{
    to_device_through_list("sim", 64);
}

TEST(get_list_to_device_with_iommu)
{
    to_device_through_list("sim:iommu=on", 28);
}

TEST(get_list_to_device_bounced_for_a_28_bit_device)
{
    to_device_through_list("sim:ram=0-1G,4G-64G", 28);
}

TEST(get_list_to_device_non_coherent)
{
    to_device_through_list("sim:coherent=no", 32);
}

/* A transfer from the device: what it wrote is in the buffer once the list is put. */
static void from_device_through_list(const char *spec, ULONG bits)
{
    struct wrig r;
    unsigned char *b = pages(3), *data = pages(3);
    struct calls c = {0};
    struct req q = {&c, 1};
    PMDL mdl;

    wrig_open3(&r, spec, "edu", bits, 16 * 1024, TRUE);
    fill13(data, 3 * PAGE, 99);
    mdl = IoAllocateMdl(b + 1, 2 * PAGE + 5, FALSE, FALSE, NULL);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b + 1, 2 * PAGE + 5, on_list, &q, FALSE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK(c.dev[0] == NULL);
    CHECK_EQ(sg_total(c.list[0]), 2 * PAGE + 5);
    check_below(c.list[0], bits);
    sg_scatter(r.d, c.list[0], data);
    r.ops->PutScatterGatherList(r.a, c.list[0], FALSE);
    CHECK(memcmp(b + 1, data, 2 * PAGE + 5) == 0);
    CHECK_EQ(b[0], 0);
    CHECK_EQ(b[2 * PAGE + 6], 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(data);
}

TEST(get_list_from_device_bounced)
{
    from_device_through_list("sim", 28);
}

TEST(get_list_from_device_non_coherent)
{
    from_device_through_list("sim:coherent=no", 64);
}

TEST(get_list_from_device_non_coherent_bounced_with_iommu)
{
    from_device_through_list("sim:coherent=no,iommu=on", 28);
}

TEST(get_list_follows_the_mdl_chain)
{
    struct wrig r;
    unsigned char *b1 = pages(2), *b2 = pages(1), *b3 = pages(2), *seen = pages(4),
                  *want = pages(4);
    struct calls c = {0};
    struct req q = {&c, 1};
    PMDL m1, m2, m3;
    ULONG size = 0, regs = 0;

    wrig_open3(&r, "sim:iommu=on", "edu", 32, 64 * 1024, TRUE);
    fill13(b1, 2 * PAGE, 1);
    fill13(b2, PAGE, 2);
    fill13(b3, 2 * PAGE, 3);
    m1 = IoAllocateMdl(b1 + 10, 6000, FALSE, FALSE, NULL);
    m2 = IoAllocateMdl(b2 + 200, 1000, FALSE, FALSE, NULL);
    m3 = IoAllocateMdl(b3, 2 * PAGE, FALSE, FALSE, NULL);
    m1->Next = m2;
    m2->Next = m3;
    /* From 1000 bytes into the first buffer, to 700 bytes into the third. */
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, m1, b1 + 1010, 5000 + 1000 + 700, &size, &regs),
             STATUS_SUCCESS);
    CHECK_EQ(regs, 2 + 1 + 1);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, m1, b1 + 1010, 6700, on_list, &q, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(sg_total(c.list[0]), 6700);
    /* Three buffers at different page offsets: one element each, in order. */
    CHECK_EQ(c.list[0]->NumberOfElements, 3);
    CHECK_EQ(c.list[0]->Elements[0].Length, 5000);
    CHECK_EQ(c.list[0]->Elements[1].Length, 1000);
    CHECK_EQ(c.list[0]->Elements[2].Length, 700);
    memcpy(want, b1 + 1010, 5000);
    memcpy(want + 5000, b2 + 200, 1000);
    memcpy(want + 6000, b3, 700);
    gather(r.d, c.list[0], seen);
    CHECK(memcmp(seen, want, 6700) == 0);
    r.ops->PutScatterGatherList(r.a, c.list[0], TRUE);
    /* One byte more than the chain holds from there. */
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, m1, b1 + 1010, 5000 + 1000 + 2 * PAGE + 1,
                                         on_list, &q, TRUE),
             STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ(c.n, 1);
    IoFreeMdl(m1);
    IoFreeMdl(m2);
    IoFreeMdl(m3);
    wrig_close(&r);
    free(b1);
    free(b2);
    free(b3);
    free(seen);
    free(want);
}

TEST(get_list_errors_never_call_the_routine)
{
    struct wrig r;
    unsigned char *b = pages(20);
    struct calls c = {0};
    struct req q = {&c, 1};
    PMDL mdl = IoAllocateMdl(b + 8, 19 * PAGE, FALSE, FALSE, NULL);

    wrig_open3(&r, "sim", "edu", 32, 64 * 1024, TRUE);
    CHECK_EQ(r.nregs, 17);
    CHECK_EQ(r.ops->GetScatterGatherList(NULL, r.pdo, mdl, b + 8, 100, on_list, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, NULL, b + 8, 100, on_list, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, NULL, 100, on_list, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 8, 0, on_list, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 8, 100, NULL, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    /* CurrentVa before the MDL's buffer, and at its end. */
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 7, 100, on_list, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 8 + 19 * PAGE, 1, on_list, &q, TRUE),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 8, 19 * PAGE + 1, on_list, &q, TRUE),
             STATUS_BUFFER_TOO_SMALL);
    /* 17 map registers for 64 KiB: 17 pages less 7 bytes from byte 8 span 18 registers, one
     * more than there are. */
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 8, 17 * PAGE - 7, on_list, &q, TRUE),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK_EQ(c.n, 0);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, r.pdo, mdl, b + 8, 16 * PAGE, on_list, &q, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    r.ops->PutScatterGatherList(r.a, c.list[0], TRUE);
    CHECK_EQ(in_use(&r), 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
}

TEST(get_list_deferred_when_map_registers_are_short_and_called_in_order)
{
    struct wrig r;
    unsigned char *b = pages(12), *seen = pages(4);
    struct calls c = {0};
    struct req q1 = {&c, 1}, q2 = {&c, 2}, q3 = {&c, 3};
    PMDL mdl = IoAllocateMdl(b, 12 * PAGE, FALSE, FALSE, NULL);

    /* A 32-bit device on a machine whose RAM is mostly above 4 GiB bounces everything; 16 KiB
     * gives 5 map registers and a pool of 5 bounce pages. */
    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    CHECK_EQ(r.nregs, 5);
    fill13(b, 12 * PAGE, 21);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b, 4 * PAGE, on_list, &q1, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK_EQ(in_use(&r), 4);
    /* Short: both wait, and the small second one does not overtake the first. */
    CHECK_EQ(
        r.ops->GetScatterGatherList(r.a, NULL, mdl, b + 4 * PAGE, 4 * PAGE, on_list, &q2, TRUE),
        STATUS_SUCCESS);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b + 8 * PAGE, 100, on_list, &q3, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    /* Putting the first runs the second, then the third, before the put returns. */
    r.ops->PutScatterGatherList(r.a, c.list[0], TRUE);
    CHECK_EQ(c.n, 3);
    CHECK_EQ(c.id[1], 2);
    CHECK_EQ(c.id[2], 3);
    CHECK_EQ(in_use(&r), 5);
    gather(r.d, c.list[1], seen);
    CHECK(memcmp(seen, b + 4 * PAGE, 4 * PAGE) == 0);
    gather(r.d, c.list[2], seen);
    CHECK(memcmp(seen, b + 8 * PAGE, 100) == 0);
    r.ops->PutScatterGatherList(r.a, c.list[1], TRUE);
    r.ops->PutScatterGatherList(r.a, c.list[2], TRUE);
    CHECK_EQ(in_use(&r), 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(seen);
}

TEST(put_list_twice_or_elsewhere_is_ignored)
{
    struct wrig r, other;
    unsigned char *b = pages(8);
    struct calls c = {0};
    struct req q1 = {&c, 1}, q2 = {&c, 2}, q3 = {&c, 3};
    PMDL mdl = IoAllocateMdl(b, 8 * PAGE, FALSE, FALSE, NULL);

    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    wrig_open3(&other, "sim", "edu", 32, 16 * 1024, TRUE);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b, 4 * PAGE, on_list, &q1, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(in_use(&r), 4);
    /* Another adapter's put, and a NULL list, leave it mapped. */
    other.ops->PutScatterGatherList(other.a, c.list[0], TRUE);
    r.ops->PutScatterGatherList(r.a, NULL, TRUE);
    r.ops->PutScatterGatherList(NULL, c.list[0], TRUE);
    CHECK_EQ(in_use(&r), 4);
    r.ops->PutScatterGatherList(r.a, c.list[0], TRUE);
    CHECK_EQ(in_use(&r), 0);
    /* A second put finds nothing: a waiting request is not started by it either. */
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b, 4 * PAGE, on_list, &q2, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(
        r.ops->GetScatterGatherList(r.a, NULL, mdl, b + 4 * PAGE, 4 * PAGE, on_list, &q3, TRUE),
        STATUS_SUCCESS);
    CHECK_EQ(c.n, 2);
    /* The cache handed the first list's record to the second transfer. */
    CHECK(c.list[1] == c.list[0]);
    r.ops->PutScatterGatherList(r.a, c.list[1], TRUE);
    CHECK_EQ(c.n, 3);
    r.ops->PutScatterGatherList(r.a, c.list[1], TRUE);
    CHECK_EQ(in_use(&r), 4);
    r.ops->PutScatterGatherList(r.a, c.list[2], TRUE);
    CHECK_EQ(in_use(&r), 0);
    IoFreeMdl(mdl);
    wrig_close(&other);
    wrig_close(&r);
    free(b);
}

TEST(waiting_requests_are_dropped_when_the_adapter_goes)
{
    struct wrig r;
    unsigned char *b = pages(8);
    struct calls c = {0};
    struct req q1 = {&c, 1}, q2 = {&c, 2};
    PMDL mdl = IoAllocateMdl(b, 8 * PAGE, FALSE, FALSE, NULL);

    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b, 4 * PAGE, on_list, &q1, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(
        r.ops->GetScatterGatherList(r.a, NULL, mdl, b + 4 * PAGE, 4 * PAGE, on_list, &q2, TRUE),
        STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    wrig_close(&r);
    CHECK_EQ(c.n, 1);
    IoFreeMdl(mdl);
    free(b);
}

/* ---- CalculateScatterGatherList / BuildScatterGatherList ---------------------------------------
 */

TEST(calculate_sizes_and_errors)
{
    struct wrig r;
    unsigned char *b = pages(20);
    PMDL mdl = IoAllocateMdl(b + 8, 19 * PAGE, FALSE, FALSE, NULL);
    ULONG size = 1, regs = 1, one_size, four_size;

    wrig_open3(&r, "sim", "edu", 32, 64 * 1024, TRUE);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, NULL, b + 8, 100, &size, &regs),
             STATUS_SUCCESS);
    CHECK_EQ(regs, 1);
    one_size = size;
    CHECK_GE(one_size, sizeof(SCATTER_GATHER_LIST) + sizeof(SCATTER_GATHER_ELEMENT));
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 8, 3 * PAGE + 1, &size, NULL),
             STATUS_SUCCESS);
    four_size = size;
    /* Four pages spanned: room for up to four elements. */
    CHECK_EQ(four_size - one_size, 3 * sizeof(SCATTER_GATHER_ELEMENT));
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 8, 3 * PAGE + 1, &size, &regs),
             STATUS_SUCCESS);
    CHECK_EQ(regs, 4);

    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 8, 17 * PAGE - 7, &size, &regs),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK_EQ(size, 0);
    CHECK_EQ(regs, 0);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 8, 19 * PAGE + 1, &size, &regs),
             STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b, 10, &size, &regs),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 8, 0, &size, &regs),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, NULL, 10, &size, &regs),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->CalculateScatterGatherList(NULL, mdl, b + 8, 10, &size, &regs),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 8, 10, NULL, &regs),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(regs, 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
}

/* Build into exactly what Calculate said, deferred or not, with the data right. */
TEST(build_list_in_the_callers_buffer)
{
    struct wrig r;
    unsigned char *b = pages(12), *seen = pages(4);
    struct calls c = {0};
    struct req q1 = {&c, 1}, q2 = {&c, 2};
    PMDL mdl = IoAllocateMdl(b, 12 * PAGE, FALSE, FALSE, NULL);
    ULONG size1, size2;
    unsigned char *buf1, *buf2;

    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    fill13(b, 12 * PAGE, 5);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 10, 3 * PAGE, &size1, NULL),
             STATUS_SUCCESS);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 5 * PAGE, 4 * PAGE, &size2, NULL),
             STATUS_SUCCESS);
    buf1 = malloc(size1);
    buf2 = malloc(size2);
    CHECK_EQ(r.ops->BuildScatterGatherList(r.a, NULL, mdl, b + 10, 3 * PAGE, on_list, &q1, TRUE,
                                           buf1, size1 - 1),
             STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ(r.ops->BuildScatterGatherList(r.a, NULL, mdl, b + 10, 3 * PAGE, on_list, &q1, TRUE,
                                           NULL, size1),
             STATUS_BUFFER_TOO_SMALL);
    CHECK_EQ(c.n, 0);
    CHECK_EQ(r.ops->BuildScatterGatherList(r.a, NULL, mdl, b + 10, 3 * PAGE, on_list, &q1, TRUE,
                                           buf1, size1),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK((unsigned char *)c.list[0] >= buf1);
    CHECK((unsigned char *)&c.list[0]->Elements[c.list[0]->NumberOfElements] <= buf1 + size1);
    /* Four registers taken: the next four-page transfer waits, in its own buffer. */
    CHECK_EQ(r.ops->BuildScatterGatherList(r.a, NULL, mdl, b + 5 * PAGE, 4 * PAGE, on_list, &q2,
                                           TRUE, buf2, size2),
             STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    gather(r.d, c.list[0], seen);
    CHECK(memcmp(seen, b + 10, 3 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, c.list[0], TRUE);
    CHECK_EQ(c.n, 2);
    CHECK((unsigned char *)c.list[1] >= buf2 && (unsigned char *)c.list[1] < buf2 + size2);
    gather(r.d, c.list[1], seen);
    CHECK(memcmp(seen, b + 5 * PAGE, 4 * PAGE) == 0);
    r.ops->PutScatterGatherList(r.a, c.list[1], TRUE);
    /* Put again: ignored, the buffer is the driver's once more. */
    r.ops->PutScatterGatherList(r.a, c.list[1], TRUE);
    CHECK_EQ(in_use(&r), 0);
    free(buf1);
    free(buf2);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(seen);
}

/* Once a thread has mapped before, BuildScatterGatherList and the put allocate nothing. */
TEST(build_list_allocates_nothing_once_warm)
{
#ifdef WDM_SANITIZED
    /* The sanitizers' allocators do not report to mallinfo2. */
    return;
#else
    struct wrig r;
    unsigned char *b = pages(4);
    struct calls c = {0};
    struct req q = {&c, 1};
    PMDL mdl = IoAllocateMdl(b + 64, 2 * PAGE, FALSE, FALSE, NULL);
    ULONG size;
    unsigned char *buf;
    size_t before;

    /* The verifier records a backtrace per mapping: its cost, not the I/O path's. */
    unsetenv("DMAHAL_VERIFY");
    wrig_open3(&r, "sim", "edu", 64, 64 * 1024, TRUE);
    CHECK_EQ(r.ops->CalculateScatterGatherList(r.a, mdl, b + 64, 2 * PAGE, &size, NULL),
             STATUS_SUCCESS);
    buf = malloc(size);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(r.ops->BuildScatterGatherList(r.a, NULL, mdl, b + 64, 2 * PAGE, on_list, &q, TRUE,
                                               buf, size),
                 STATUS_SUCCESS);
        r.ops->PutScatterGatherList(r.a, c.list[c.n - 1], TRUE);
    }
    before = mallinfo2().uordblks;
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(r.ops->BuildScatterGatherList(r.a, NULL, mdl, b + 64, 2 * PAGE, on_list, &q, TRUE,
                                               buf, size),
                 STATUS_SUCCESS);
        CHECK_EQ(mallinfo2().uordblks, before);
        r.ops->PutScatterGatherList(r.a, c.list[c.n - 1], TRUE);
        c.n = 0;
    }
    CHECK_EQ(mallinfo2().uordblks, before);
    free(buf);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
#endif
}

/* ---- AllocateAdapterChannel, MapTransfer, FlushAdapterBuffers -----------------------------------
 */

struct chan {
    int n;
    int id[8];
    PVOID base[8];
    PIRP irp[8];
    IO_ALLOCATION_ACTION act;
    struct wrig *r; /* for routines that act on the adapter themselves */
};

struct creq {
    struct chan *c;
    int id;
};

static IO_ALLOCATION_ACTION on_channel(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID MapRegisterBase,
                                       PVOID Context)
{
    struct creq *q = Context;
    struct chan *c = q->c;

    (void)DeviceObject;
    c->id[c->n] = q->id;
    c->base[c->n] = MapRegisterBase;
    c->irp[c->n] = Irp;
    c->n++;
    return c->act;
}

/* Maps the whole of [va, va + len) with MapTransfer, piece by piece: the device reads or
 * writes each piece at the address returned. */
static unsigned map_all(struct wrig *r, PMDL mdl, PVOID base, unsigned char *va, ULONG len,
                        BOOLEAN write, unsigned char *dev_data)
{
    unsigned pieces = 0;

    while (len) {
        ULONG l = len;
        PHYSICAL_ADDRESS la = r->ops->MapTransfer(r->a, mdl, base, va, &l, write);

        CHECK_GT(l, 0);
        CHECK_LE(l, len);
        if (write)
            CHECK_OK(dmahal_dev_read(r->d, (dmahal_addr_t)la.QuadPart, dev_data, l));
        else
            CHECK_OK(dmahal_dev_write(r->d, (dmahal_addr_t)la.QuadPart, dev_data, l));
        dev_data += l;
        va += l;
        len -= l;
        pieces++;
    }
    return pieces;
}

static void channel_round_trip(const char *spec, ULONG bits, BOOLEAN sg)
{
    struct wrig r;
    unsigned char *b = pages(4), *in = pages(4), *dev = pages(4);
    struct chan c = {.act = DeallocateObjectKeepRegisters};
    struct creq q = {&c, 1};
    PMDL mdl = IoAllocateMdl(b + 100, 3 * PAGE, FALSE, FALSE, NULL);
    ULONG n = ADDRESS_AND_SIZE_TO_SPAN_PAGES(b + 100, 3 * PAGE);

    wrig_open3(&r, spec, "edu", bits, 16 * 1024, sg);
    fill13(b, 4 * PAGE, 3);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, r.pdo, n, on_channel, &q), STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    CHECK(c.base[0] != NULL);
    CHECK(c.irp[0] == NULL);
    /* To the device: what it reads at the addresses is the buffer. */
    map_all(&r, mdl, c.base[0], b + 100, 3 * PAGE, TRUE, dev);
    CHECK(memcmp(dev, b + 100, 3 * PAGE) == 0);
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 100, 3 * PAGE, TRUE));
    /* From the device, through the same registers: the buffer has it after the flush. */
    fill13(in, 3 * PAGE, 77);
    map_all(&r, mdl, c.base[0], b + 100, 3 * PAGE, FALSE, in);
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 100, 3 * PAGE, FALSE));
    CHECK(memcmp(b + 100, in, 3 * PAGE) == 0);
    r.ops->FreeMapRegisters(r.a, c.base[0], n);
    CHECK_EQ(in_use(&r), 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(in);
    free(dev);
}

TEST(channel_round_trip_in_place)
{
    channel_round_trip("sim", 64, TRUE);
}

TEST(channel_round_trip_bounced)
{
    channel_round_trip("sim", 28, FALSE);
}

TEST(channel_round_trip_with_iommu)
{
    channel_round_trip("sim:iommu=on", 28, TRUE);
}

TEST(channel_round_trip_non_coherent)
{
    channel_round_trip("sim:coherent=no", 32, TRUE);
}

TEST(channel_map_transfer_pieces_and_errors)
{
    struct wrig r;
    unsigned char *b = pages(8), *other = pages(1);
    struct chan c = {.act = DeallocateObjectKeepRegisters};
    struct creq q = {&c, 1};
    PMDL mdl = IoAllocateMdl(b, 8 * PAGE, FALSE, FALSE, NULL);
    PHYSICAL_ADDRESS la, la2;
    ULONG l;

    /* No scatter/gather: every piece is contiguous for the device, its Length unchanged. */
    wrig_open3(&r, "sim", "edu", 64, 16 * 1024, FALSE);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 2, on_channel, &q), STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    l = PAGE + 50;
    la = r.ops->MapTransfer(r.a, mdl, c.base[0], b + 10, &l, TRUE);
    CHECK_EQ(l, PAGE + 50);
    CHECK_NE(la.QuadPart, 0);
    /* Inside what is mapped: the same mapping, at the offset. */
    l = 100;
    la2 = r.ops->MapTransfer(r.a, mdl, c.base[0], b + 60, &l, TRUE);
    CHECK_EQ(la2.QuadPart, la.QuadPart + 50);
    CHECK_EQ(l, 100);
    /* Both registers are taken: nothing more maps until a flush. */
    l = 10;
    la2 = r.ops->MapTransfer(r.a, mdl, c.base[0], b + 3 * PAGE, &l, TRUE);
    CHECK_EQ(l, 0);
    CHECK_EQ(la2.QuadPart, 0);
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 10, PAGE + 50, TRUE));
    /* After the flush, a piece longer than two registers is cut to what they cover. */
    l = 3 * PAGE;
    la = r.ops->MapTransfer(r.a, mdl, c.base[0], b + 3 * PAGE + 8, &l, TRUE);
    CHECK_EQ(l, 2 * PAGE - 8);
    CHECK_NE(la.QuadPart, 0);
    /* Errors: *Length 0, and no address. */
    l = 10;
    CHECK_EQ(r.ops->MapTransfer(r.a, mdl, NULL, b, &l, TRUE).QuadPart, 0);
    CHECK_EQ(l, 0);
    l = 10;
    CHECK_EQ(r.ops->MapTransfer(r.a, mdl, other, b, &l, TRUE).QuadPart, 0);
    CHECK_EQ(l, 0);
    l = 10;
    CHECK_EQ(r.ops->MapTransfer(r.a, mdl, c.base[0], b + 8 * PAGE, &l, TRUE).QuadPart, 0);
    CHECK_EQ(l, 0);
    l = 10;
    CHECK_EQ(r.ops->MapTransfer(r.a, NULL, c.base[0], b, &l, TRUE).QuadPart, 0);
    CHECK_EQ(l, 0);
    l = 10;
    CHECK_EQ(r.ops->MapTransfer(NULL, mdl, c.base[0], b, &l, TRUE).QuadPart, 0);
    CHECK_EQ(l, 0);
    CHECK_EQ(r.ops->MapTransfer(r.a, mdl, c.base[0], b, NULL, TRUE).QuadPart, 0);
    CHECK(!r.ops->FlushAdapterBuffers(r.a, mdl, other, b, 10, TRUE));
    CHECK(!r.ops->FlushAdapterBuffers(r.a, NULL, c.base[0], b, 10, TRUE));
    CHECK(!r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 8 * PAGE, 10, TRUE));
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 3 * PAGE + 8, 2 * PAGE - 8, TRUE));
    /* The wrong count frees nothing: the registers are still there to map through. */
    r.ops->FreeMapRegisters(r.a, c.base[0], 1);
    l = 10;
    r.ops->MapTransfer(r.a, mdl, c.base[0], b, &l, TRUE);
    CHECK_EQ(l, 10);
    r.ops->FreeMapRegisters(r.a, c.base[0], 2);
    /* Freed: the base is no longer one, and freeing it again does nothing. */
    l = 10;
    r.ops->MapTransfer(r.a, mdl, c.base[0], b, &l, TRUE);
    CHECK_EQ(l, 0);
    r.ops->FreeMapRegisters(r.a, c.base[0], 2);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, r.nregs + 1, on_channel, &q),
             STATUS_INSUFFICIENT_RESOURCES);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 1, NULL, &q), STATUS_INVALID_PARAMETER);
    CHECK_EQ(r.ops->AllocateAdapterChannel(NULL, NULL, 1, on_channel, &q),
             STATUS_INVALID_PARAMETER);
    CHECK_EQ(c.n, 1);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(other);
}

TEST(channel_is_exclusive_and_requests_run_in_order)
{
    struct wrig r;
    struct chan c = {.act = KeepObject};
    struct creq q1 = {&c, 1}, q2 = {&c, 2}, q3 = {&c, 3};

    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    CHECK_EQ(r.nregs, 5);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 1, on_channel, &q1), STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    /* The first kept the channel: the others wait, though registers are free. */
    c.act = DeallocateObjectKeepRegisters;
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 4, on_channel, &q2), STATUS_SUCCESS);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 1, on_channel, &q3), STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    /* FreeMapRegisters cannot free what holds the channel. */
    r.ops->FreeMapRegisters(r.a, c.base[0], 1);
    CHECK_EQ(c.n, 1);
    /* Freeing the channel frees its register too: the second gets 4 of 5, the third waits
     * for the channel only, and gets the fifth. */
    r.ops->FreeAdapterChannel(r.a);
    CHECK_EQ(c.n, 3);
    CHECK_EQ(c.id[1], 2);
    CHECK_EQ(c.id[2], 3);
    CHECK(c.base[1] != c.base[2]);
    /* Nobody keeps the channel now: FreeAdapterChannel does nothing. */
    r.ops->FreeAdapterChannel(r.a);
    /* Registers all held: the next request waits for FreeMapRegisters. */
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 2, on_channel, &q1), STATUS_SUCCESS);
    CHECK_EQ(c.n, 3);
    r.ops->FreeMapRegisters(r.a, c.base[2], 1);
    CHECK_EQ(c.n, 3);
    r.ops->FreeMapRegisters(r.a, c.base[1], 4);
    CHECK_EQ(c.n, 4);
    CHECK_EQ(c.id[3], 1);
    /* DeallocateObject gives everything back as the routine returns. */
    r.ops->FreeMapRegisters(r.a, c.base[3], 2);
    c.act = DeallocateObject;
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 5, on_channel, &q2), STATUS_SUCCESS);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 5, on_channel, &q3), STATUS_SUCCESS);
    CHECK_EQ(c.n, 6);
    wrig_close(&r);
}

/* The driver's routine frees the channel itself, and asks for it again, from inside. */
static IO_ALLOCATION_ACTION on_channel_nested(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                              PVOID MapRegisterBase, PVOID Context)
{
    struct creq *q = Context;
    struct chan *c = q->c;
    static struct creq again;

    on_channel(DeviceObject, Irp, MapRegisterBase, Context);
    if (q->id == 1) {
        c->r->ops->FreeAdapterChannel(c->r->a);
        again = (struct creq){c, 2};
        CHECK_EQ(c->r->ops->AllocateAdapterChannel(c->r->a, NULL, 1, on_channel, &again),
                 STATUS_SUCCESS);
        /* Not granted inside: the grant runs after this routine returns. */
        CHECK_EQ(c->n, 1);
    }
    return KeepObject;
}

TEST(channel_routine_may_free_and_ask_again)
{
    struct wrig r;
    struct chan c = {.act = KeepObject, .r = &r};
    struct creq q = {&c, 1};

    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 1, on_channel_nested, &q), STATUS_SUCCESS);
    CHECK_EQ(c.n, 2);
    CHECK_EQ(c.id[1], 2);
    /* The record of the first, freed inside its routine, serves the second. */
    CHECK(c.base[1] == c.base[0]);
    r.ops->FreeAdapterChannel(r.a);
    wrig_close(&r);
}

/* With the bounce pages all taken by a list, MapTransfer still maps, through its registers. */
TEST(channel_map_transfer_stages_when_bounce_pages_are_taken)
{
    struct wrig r;
    unsigned char *b = pages(8), *in = pages(2), *dev = pages(2);
    struct calls lc = {0};
    struct req lq = {&lc, 1};
    struct chan c = {.act = DeallocateObjectKeepRegisters};
    struct creq q = {&c, 1};
    PMDL mdl = IoAllocateMdl(b, 8 * PAGE, FALSE, FALSE, NULL);

    wrig_open3(&r, "sim", "edu", 28, 16 * 1024, TRUE);
    fill13(b, 8 * PAGE, 40);
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b + 1, 5 * PAGE, on_list, &lq, TRUE),
             STATUS_INSUFFICIENT_RESOURCES);
    /* The bounce pool holds what the adapter's longest transfer needs: 6 pages, 5 taken. */
    CHECK_EQ(r.ops->GetScatterGatherList(r.a, NULL, mdl, b, 5 * PAGE, on_list, &lq, TRUE),
             STATUS_SUCCESS);
    CHECK_EQ(in_use(&r), 5);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 3, on_channel, &q), STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    /* Two pages from an unaligned start: three registers; the one free bounce page is not
     * enough, so the registers' own pages carry it, below 2^28. */
    CHECK_EQ(map_all(&r, mdl, c.base[0], b + 5 * PAGE + 300, 2 * PAGE, TRUE, dev), 1);
    CHECK(memcmp(dev, b + 5 * PAGE + 300, 2 * PAGE) == 0);
    CHECK_EQ(in_use(&r), 5);
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 5 * PAGE + 300, 2 * PAGE, TRUE));
    fill13(in, 2 * PAGE, 9);
    CHECK_EQ(map_all(&r, mdl, c.base[0], b + 5 * PAGE + 300, 2 * PAGE, FALSE, in), 1);
    CHECK(r.ops->FlushAdapterBuffers(r.a, mdl, c.base[0], b + 5 * PAGE + 300, 2 * PAGE, FALSE));
    CHECK(memcmp(b + 5 * PAGE + 300, in, 2 * PAGE) == 0);
    r.ops->FreeMapRegisters(r.a, c.base[0], 3);
    r.ops->PutScatterGatherList(r.a, lc.list[0], TRUE);
    CHECK_EQ(in_use(&r), 0);
    IoFreeMdl(mdl);
    wrig_close(&r);
    free(b);
    free(in);
    free(dev);
}

TEST(channel_requests_dropped_when_the_adapter_goes)
{
    struct wrig r;
    struct chan c = {.act = KeepObject};
    struct creq q1 = {&c, 1}, q2 = {&c, 2};

    wrig_open3(&r, "sim", "edu", 32, 16 * 1024, TRUE);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 1, on_channel, &q1), STATUS_SUCCESS);
    CHECK_EQ(r.ops->AllocateAdapterChannel(r.a, NULL, 1, on_channel, &q2), STATUS_SUCCESS);
    CHECK_EQ(c.n, 1);
    wrig_close(&r);
    CHECK_EQ(c.n, 1);
}
