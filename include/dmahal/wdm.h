/* SPDX-License-Identifier: MIT */
/*
 * wdm.h - Windows names for dmahal: IoGetDmaAdapter, DEVICE_DESCRIPTION, DMA_ADAPTER,
 * DMA_OPERATIONS, common buffers, MDLs and packet DMA (scatter/gather lists, adapter
 * channels and map registers).
 *
 * Driver code written for Windows' common-buffer DMA compiles unchanged against this header
 * and runs on any dmahal platform:
 *
 *     DEVICE_DESCRIPTION dd = {0};
 *     dd.Version = DEVICE_DESCRIPTION_VERSION3;
 *     dd.Master = TRUE;
 *     dd.DmaAddressWidth = 32;
 *     dd.MaximumLength = 64 * 1024;
 *     DmaAdapterObject = IoGetDmaAdapter(PDO, &dd, &NumberOfMapRegisters);
 *     AllocateCommonBuffer = DmaAdapterObject->DmaOperations->AllocateCommonBuffer;
 *     BaseVa = AllocateCommonBuffer(DmaAdapterObject, Length, &BaseLa, FALSE);
 *
 * where PDO is dmahal_wdm_device(dev) for a device opened with dmahal_device_open().
 *
 * Types have Windows' names, member order and, on x86-64, Windows' offsets and sizes
 * (ULONG and LONG are 32 bits, as on Windows, not C's long). Only what DMA drivers need is
 * declared. It is a thin layer over the public API of dmahal.h; the native handles stay
 * reachable (dmahal_wdm_adapter) for what has no Windows name.
 *
 * DMA_OPERATIONS lists every member Windows has, in Windows' order. Size covers exactly the
 * members filled, as on Windows, where the description's version picks the table's: for
 * versions 0 and 1 it is offsetof(DMA_OPERATIONS, CalculateScatterGatherList) (version 1:
 * Calculate and BuildScatterGatherList came with version 2); for version 2,
 * offsetof(DMA_OPERATIONS, GetDmaAdapterInfo); for version 3, sizeof(DMA_OPERATIONS), every
 * member set. Members beyond Size are NULL. Members that exist for
 * system DMA controllers or DMA domains, which dmahal does not have, are set too and
 * answer what Windows documents for an adapter without them (STATUS_NOT_SUPPORTED, or 0
 * and NULL where the member returns no status): never NULL inside Size. The table is
 * read-only.
 *
 * Packet DMA (streaming) comes in Windows' two shapes, both over dmahal_map():
 *  - GetScatterGatherList / BuildScatterGatherList hand the driver's AdapterListControl
 *    routine a SCATTER_GATHER_LIST for an MDL, at once or, when map registers are short,
 *    later and in request order; PutScatterGatherList ends the transfer;
 *  - AllocateAdapterChannel hands its AdapterControl routine a MapRegisterBase, through
 *    which MapTransfer maps piece by piece; FlushAdapterBuffers ends a transfer, and
 *    FreeMapRegisters / FreeAdapterChannel give the registers back.
 * What Windows' kernel has and a user-space process does not is left out or reduced:
 *  - there is no IRQL: routines Windows calls at DISPATCH_LEVEL are plain calls, made on
 *    the thread that asked or on the thread whose release made the resources available;
 *    the driver's own locks must allow for that (a routine must not wait for a lock its
 *    caller of PutScatterGatherList, FreeMapRegisters or FreeAdapterChannel may hold);
 *  - an IRP is opaque: where Windows passes DeviceObject->CurrentIrp to an execution
 *    routine, dmahal passes NULL; IoAllocateMdl takes no IRP to chain to;
 *  - an MDL describes memory of this process, already resident: IoAllocateMdl's have no
 *    page frame numbers after them, and MmBuildMdlForNonPagedPool only marks one mapped;
 *    MmAllocatePagesForMdl's carry the simulated machine's frames.
 *
 * The basic types and macros of ntdef.h a DMA driver uses (NTAPI, IN, OUT, OPTIONAL,
 * FIELD_OFFSET, CONTAINING_RECORD, C_ASSERT, the Rtl memory routines, ...) are here; NTAPI
 * and the SAL annotations are empty macros, as there is one calling convention on this
 * target and no analyser reads them.
 *
 * Out of scope: the I/O manager (IRPs, IoCreateDevice, dispatch routines, IoCallDriver),
 * the Plug and Play and power managers, spin locks, DPCs and interrupts: a driver's DMA
 * code compiles unchanged, the code around it is the driver's own on this target.
 */
#ifndef DMAHAL_WDM_H
#define DMAHAL_WDM_H

#include <dmahal/dmahal.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Basic types (ntdef.h). Windows is LLP64: LONG and ULONG are 32 bits.
 * ------------------------------------------------------------------------------------------ */

#ifndef VOID
#define VOID void
#endif
typedef uint8_t UCHAR;
typedef UCHAR *PUCHAR;
typedef UCHAR BOOLEAN;
typedef BOOLEAN *PBOOLEAN;
typedef uint16_t USHORT;
typedef int16_t CSHORT;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef ULONG *PULONG;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef uintptr_t ULONG_PTR;
typedef void *PVOID;
typedef PVOID HANDLE;
typedef LONG NTSTATUS;
typedef ULONG NODE_REQUIREMENT;

typedef char CHAR;
typedef CHAR *PCHAR;
typedef const CHAR *PCSTR;
typedef int16_t SHORT;
typedef USHORT *PUSHORT;
typedef LONG *PLONG;
typedef unsigned int UINT;
typedef int BOOL;
typedef uint8_t UINT8;
typedef uint16_t UINT16;
typedef uint32_t UINT32;
typedef uint64_t UINT64;
typedef int64_t LONG64;
typedef uint64_t ULONG64;
typedef ULONGLONG *PULONGLONG;
typedef intptr_t LONG_PTR;
typedef ULONG_PTR SIZE_T, *PSIZE_T;
typedef ULONG_PTR *PULONG_PTR;
typedef const void *PCVOID;
typedef void *const *PCPVOID;
typedef UCHAR KIRQL;
typedef ULONG_PTR PFN_NUMBER, *PPFN_NUMBER;
typedef enum _MODE { KernelMode, UserMode, MaximumMode } MODE;
typedef CHAR KPROCESSOR_MODE;

#ifndef FALSE
#define FALSE 0
#endif
#ifndef TRUE
#define TRUE 1
#endif

#define MAXUCHAR  0xff
#define MAXUSHORT 0xffff
#define MAXULONG  0xffffffffu
#define MAXLONG   0x7fffffff

/* Windows' calling conventions and parameter markers: one convention on this target, and
 * the markers are documentation only. */
#ifndef NTAPI
#define NTAPI
#endif
#ifndef IN
#define IN
#endif
#ifndef OUT
#define OUT
#endif
#ifndef OPTIONAL
#define OPTIONAL
#endif
#ifndef UNALIGNED
#define UNALIGNED
#endif
#ifndef FORCEINLINE
#define FORCEINLINE static inline
#endif

/** The offset of a member in a structure (offsetof with Windows' name). */
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
/** The structure of @p type whose member @p field is at @p address. */
#define CONTAINING_RECORD(address, type, field) ((type *)((char *)(address)-offsetof(type, field)))
/** Silences an unused parameter, as WDK code does. */
#define UNREFERENCED_PARAMETER(P) ((void)(P))
/** A compile-time assertion at file or block scope. */
#ifdef __cplusplus
#define C_ASSERT(e) static_assert(e, #e)
#else
#define C_ASSERT(e) _Static_assert(e, #e)
#endif

/* The Rtl memory routines, over the C library's. RtlEqualMemory is nonzero when equal. */
#define RtlZeroMemory(Destination, Length)          memset((Destination), 0, (Length))
#define RtlFillMemory(Destination, Length, Fill)    memset((Destination), (Fill), (Length))
#define RtlCopyMemory(Destination, Source, Length)  memcpy((Destination), (Source), (Length))
#define RtlMoveMemory(Destination, Source, Length)  memmove((Destination), (Source), (Length))
#define RtlEqualMemory(Destination, Source, Length) (!memcmp((Destination), (Source), (Length)))
#define RtlCompareMemory(Source1, Source2, Length)                                                 \
    dmahal_wdm_compare_memory(Source1, Source2, Length)

/**
 * RtlCompareMemory: the number of bytes, from the start, that two blocks have in common (at
 * most @p Length).
 */
static inline SIZE_T dmahal_wdm_compare_memory(const void *Source1, const void *Source2,
                                               SIZE_T Length)
{
    const UCHAR *a = (const UCHAR *)Source1, *b = (const UCHAR *)Source2;
    SIZE_T i = 0;

    while (i < Length && a[i] == b[i])
        i++;
    return i;
}

/* SAL annotations (sal.h, driverspecs.h): checked by Microsoft's analyser, empty here. */
#ifndef _In_
#define _In_
#define _In_opt_
#define _Out_
#define _Out_opt_
#define _Inout_
#define _Inout_opt_
#define _In_reads_(s)
#define _In_reads_opt_(s)
#define _In_reads_bytes_(s)
#define _In_reads_bytes_opt_(s)
#define _Out_writes_(s)
#define _Out_writes_opt_(s)
#define _Out_writes_bytes_(s)
#define _Out_writes_bytes_opt_(s)
#define _Out_writes_bytes_to_(s, c)
#define _Outptr_
#define _Outptr_opt_
#define _Outptr_result_maybenull_
#define _Outptr_result_buffer_(s)
#define _Ret_maybenull_
#define _Ret_notnull_
#define _Must_inspect_result_
#define _Success_(e)
#define _When_(e, a)
#define _Check_return_
#define _Post_invalid_
#define _Post_writable_byte_size_(s)
#define _Pre_notnull_
#define _Field_size_(s)
#define _Field_size_bytes_(s)
#define _Reserved_
#define _Analysis_assume_(e)
#define _Use_decl_annotations_
#define _Function_class_(n)
#define _IRQL_requires_(l)
#define _IRQL_requires_max_(l)
#define _IRQL_requires_min_(l)
#define _IRQL_requires_same_
#define _IRQL_raises_(l)
#define _IRQL_saves_
#define _IRQL_restores_
#define _IRQL_always_function_max_(l)
#define _Kernel_clear_do_init_(y)
#define _Requires_lock_held_(l)
#define _Requires_lock_not_held_(l)
#define _Acquires_lock_(l)
#define _Releases_lock_(l)
#define _Dispatch_type_(t)
#endif
#ifndef PASSIVE_LEVEL
#define PASSIVE_LEVEL  0
#define APC_LEVEL      1
#define DISPATCH_LEVEL 2
#endif

/** Tells whether an NTSTATUS is a success (or informational) code. */
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)

/** Tells whether an NTSTATUS is informational (0x40000000..0x7fffffff). */
#define NT_INFORMATION(Status) ((((ULONG)(Status)) >> 30) == 1)
/** Tells whether an NTSTATUS is a warning (0x80000000..0xbfffffff). */
#define NT_WARNING(Status) ((((ULONG)(Status)) >> 30) == 2)
/** Tells whether an NTSTATUS is an error (0xc0000000..). */
#define NT_ERROR(Status) ((((ULONG)(Status)) >> 30) == 3)

/* The codes the DMA paths (and drivers around them) return, with Windows' values. */
#define STATUS_SUCCESS                  ((NTSTATUS)0x00000000L)
#define STATUS_TIMEOUT                  ((NTSTATUS)0x00000102L)
#define STATUS_PENDING                  ((NTSTATUS)0x00000103L)
#define STATUS_BUFFER_OVERFLOW          ((NTSTATUS)0x80000005L)
#define STATUS_DEVICE_BUSY              ((NTSTATUS)0x80000011L)
#define STATUS_NO_MORE_ENTRIES          ((NTSTATUS)0x8000001AL)
#define STATUS_UNSUCCESSFUL             ((NTSTATUS)0xC0000001L)
#define STATUS_NOT_IMPLEMENTED          ((NTSTATUS)0xC0000002L)
#define STATUS_ACCESS_VIOLATION         ((NTSTATUS)0xC0000005L)
#define STATUS_INVALID_HANDLE           ((NTSTATUS)0xC0000008L)
#define STATUS_INVALID_PARAMETER        ((NTSTATUS)0xC000000DL)
#define STATUS_INVALID_DEVICE_REQUEST   ((NTSTATUS)0xC0000010L)
#define STATUS_MORE_PROCESSING_REQUIRED ((NTSTATUS)0xC0000016L)
#define STATUS_NO_MEMORY                ((NTSTATUS)0xC0000017L)
#define STATUS_BUFFER_TOO_SMALL         ((NTSTATUS)0xC0000023L)
#define STATUS_INTEGER_OVERFLOW         ((NTSTATUS)0xC0000095L)
#define STATUS_INSUFFICIENT_RESOURCES   ((NTSTATUS)0xC000009AL)
#define STATUS_DEVICE_DATA_ERROR        ((NTSTATUS)0xC000009CL)
#define STATUS_DEVICE_NOT_READY         ((NTSTATUS)0xC00000A3L)
#define STATUS_NOT_SUPPORTED            ((NTSTATUS)0xC00000BBL)
#define STATUS_INVALID_PARAMETER_1      ((NTSTATUS)0xC00000EFL)
#define STATUS_INVALID_PARAMETER_2      ((NTSTATUS)0xC00000F0L)
#define STATUS_INVALID_PARAMETER_3      ((NTSTATUS)0xC00000F1L)
#define STATUS_CANCELLED                ((NTSTATUS)0xC0000120L)
#define STATUS_INVALID_ADDRESS          ((NTSTATUS)0xC0000141L)
#define STATUS_INVALID_DEVICE_STATE     ((NTSTATUS)0xC0000184L)
#define STATUS_IO_DEVICE_ERROR          ((NTSTATUS)0xC0000185L)
#define STATUS_INVALID_BUFFER_SIZE      ((NTSTATUS)0xC0000206L)
#define STATUS_NOT_FOUND                ((NTSTATUS)0xC0000225L)

/* C11 has anonymous structs; C++ has them only as an extension, which GCC and Clang
 * accept quietly when told. */
#if defined(__cplusplus) && defined(__GNUC__)
#define DMAHAL_WDM_ANONYMOUS __extension__
#else
#define DMAHAL_WDM_ANONYMOUS
#endif

/** A 64-bit integer seen whole (QuadPart) or as two 32-bit halves, as Windows has it. */
typedef union _LARGE_INTEGER {
    DMAHAL_WDM_ANONYMOUS struct {
        ULONG LowPart;
        LONG HighPart;
    };
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;               /**< the two halves, named */
    LONGLONG QuadPart; /**< the whole */
} LARGE_INTEGER, *PLARGE_INTEGER;

/** A physical or, for DMA, logical address: what the device is programmed with. */
typedef LARGE_INTEGER PHYSICAL_ADDRESS, *PPHYSICAL_ADDRESS;

/* ------------------------------------------------------------------------------------------
 * Objects the DMA routines name. Those dmahal does not implement stay incomplete: their
 * pointers keep Windows' signatures exact without pretending to a layout.
 * ------------------------------------------------------------------------------------------ */

typedef struct _IRP IRP, *PIRP;
typedef struct _EPROCESS EPROCESS, *PEPROCESS;
typedef struct _DMA_COMMON_BUFFER_VECTOR DMA_COMMON_BUFFER_VECTOR, *PDMA_COMMON_BUFFER_VECTOR;

/* ------------------------------------------------------------------------------------------
 * DMA version 3: what GetDmaAdapterInfo and GetDmaTransferInfo fill in, and the transfer
 * context of the *Ex routines
 * ------------------------------------------------------------------------------------------ */

#define DMA_ADAPTER_INFO_VERSION1  1
#define DMA_TRANSFER_INFO_VERSION1 1
#define DMA_TRANSFER_INFO_VERSION2 2
/** Bytes of the DMA transfer context a driver passes to the *Ex routines. */
#define DMA_TRANSFER_CONTEXT_VERSION1 1
#define DMA_TRANSFER_CONTEXT_SIZE_V1  128
/** Flag of AllocateAdapterChannelEx, GetScatterGatherListEx and BuildScatterGatherListEx:
 *  grant now or fail, and return the result rather than (or besides) calling the routine. */
#define DMA_SYNCHRONOUS_CALLBACK 0x01

/** What the adapter can do (GetDmaAdapterInfo, version 1). 20 bytes. */
typedef struct _DMA_ADAPTER_INFO_V1 {
    ULONG ReadDmaCounterAvailable; /**< FALSE: dmahal has no system DMA controller */
    ULONG ScatterGatherLimit;      /**< the most elements of one list */
    ULONG DmaAddressWidth;         /**< address bits the device drives */
    ULONG Flags;                   /**< 0 */
    ULONG MinimumTransferUnit;     /**< element lengths are multiples of this; 1: any */
} DMA_ADAPTER_INFO_V1, *PDMA_ADAPTER_INFO_V1;

/** Set Version to DMA_ADAPTER_INFO_VERSION1 before the call. */
typedef struct _DMA_ADAPTER_INFO {
    ULONG Version; /**< DMA_ADAPTER_INFO_VERSION1 */
    DMAHAL_WDM_ANONYMOUS union {
        DMA_ADAPTER_INFO_V1 V1;
    };
} DMA_ADAPTER_INFO, *PDMA_ADAPTER_INFO;

/** What one transfer needs (GetDmaTransferInfo, version 1). */
typedef struct _DMA_TRANSFER_INFO_V1 {
    ULONG MapRegisterCount;          /**< map registers the transfer needs */
    ULONG ScatterGatherElementCount; /**< elements of its list */
    ULONG ScatterGatherListSize;     /**< bytes BuildScatterGatherListEx needs */
} DMA_TRANSFER_INFO_V1, *PDMA_TRANSFER_INFO_V1;

/** Version 2 adds the logical pages the transfer spans. */
typedef struct _DMA_TRANSFER_INFO_V2 {
    ULONG MapRegisterCount;          /**< as in version 1 */
    ULONG ScatterGatherElementCount; /**< as in version 1 */
    ULONG ScatterGatherListSize;     /**< as in version 1 */
    ULONG LogicalPageCount;          /**< logical pages the transfer spans */
} DMA_TRANSFER_INFO_V2, *PDMA_TRANSFER_INFO_V2;

/** Set Version to DMA_TRANSFER_INFO_VERSION1 or 2 before the call. */
typedef struct _DMA_TRANSFER_INFO {
    ULONG Version; /**< DMA_TRANSFER_INFO_VERSION1 or 2 */
    DMAHAL_WDM_ANONYMOUS union {
        DMA_TRANSFER_INFO_V1 V1;
        DMA_TRANSFER_INFO_V2 V2;
    };
} DMA_TRANSFER_INFO, *PDMA_TRANSFER_INFO;
typedef struct _DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
    *PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION;

/* ------------------------------------------------------------------------------------------
 * MDL: a buffer described for DMA (wdm.h's memory descriptor list, reduced)
 * ------------------------------------------------------------------------------------------ */

/** Windows' page size on x86-64: what the MDL macros count in (the CPU's pages). */
#ifndef PAGE_SIZE
#define PAGE_SIZE 0x1000
#endif
#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12L
#endif

/** The offset of a virtual address inside its page. */
#define BYTE_OFFSET(Va) ((ULONG)((ULONG_PTR)(Va) & (PAGE_SIZE - 1)))
/** The start of the page a virtual address is in. */
#define PAGE_ALIGN(Va) ((PVOID)((ULONG_PTR)(Va) & ~(ULONG_PTR)(PAGE_SIZE - 1)))
/** How many pages [Va, Va + Size) touches; 0 for a Size of 0. */
#define ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size)                                                   \
    ((ULONG)((((ULONG_PTR)(Size)) >> PAGE_SHIFT) +                                                 \
             ((BYTE_OFFSET(Va) + ((ULONG)(Size) & (PAGE_SIZE - 1)) + (PAGE_SIZE - 1)) >>           \
              PAGE_SHIFT)))
/** Size rounded up to a whole number of pages. */
#define ROUND_TO_PAGES(Size) (((ULONG_PTR)(Size) + PAGE_SIZE - 1) & ~(ULONG_PTR)(PAGE_SIZE - 1))
/** Pages that Size bytes fill, rounded up. */
#define BYTES_TO_PAGES(Size)                                                                       \
    ((ULONG)(((ULONG_PTR)(Size) >> PAGE_SHIFT) + (((Size) & (PAGE_SIZE - 1)) != 0)))

/* MdlFlags that dmahal sets; the others Windows has are never set. */
#define MDL_MAPPED_TO_SYSTEM_VA     0x0001 /**< MappedSystemVa is valid */
#define MDL_PAGES_LOCKED            0x0002 /**< set on every dmahal MDL: memory stays resident */
#define MDL_SOURCE_IS_NONPAGED_POOL 0x0004 /**< set by MmBuildMdlForNonPagedPool */
#define MDL_ALLOCATED_FIXED_SIZE    0x0008 /**< set by IoAllocateMdl */

/**
 * A memory descriptor list: one virtually contiguous buffer; buffers of one transfer are
 * chained through Next. Windows' x86-64 layout (48 bytes); Windows follows it with the
 * buffer's page frame numbers, which a process does not have: dmahal's MDLs end here, and
 * Size is sizeof(MDL). Read it with the Mm macros below, as Windows drivers do.
 */
typedef struct _MDL {
    struct _MDL *Next;    /**< the next buffer of the transfer, or NULL */
    CSHORT Size;          /**< sizeof(MDL) */
    CSHORT MdlFlags;      /**< MDL_* */
    PEPROCESS Process;    /**< always NULL */
    PVOID MappedSystemVa; /**< with MDL_MAPPED_TO_SYSTEM_VA or _SOURCE_IS_NONPAGED_POOL */
    PVOID StartVa;        /**< the buffer's first page */
    ULONG ByteCount;      /**< the buffer's length */
    ULONG ByteOffset;     /**< where the buffer starts in its first page */
} MDL, *PMDL;

/** The virtual address of an MDL's buffer. */
#define MmGetMdlVirtualAddress(Mdl) ((PVOID)((char *)((Mdl)->StartVa) + (Mdl)->ByteOffset))
/** The length of an MDL's buffer, in bytes. */
#define MmGetMdlByteCount(Mdl) ((Mdl)->ByteCount)
/** Where an MDL's buffer starts inside its first page. */
#define MmGetMdlByteOffset(Mdl) ((Mdl)->ByteOffset)

/** How urgently MmGetSystemAddressForMdlSafe needs its mapping; dmahal never needs one. */
typedef enum _MM_PAGE_PRIORITY {
    LowPagePriority,
    NormalPagePriority = 16,
    HighPagePriority = 32
} MM_PAGE_PRIORITY;
/** Or'ed into a priority on Windows 8 and later; accepted and ignored. */
#define MdlMappingNoExecute 0x40000000

/**
 * Allocates an MDL for the buffer [VirtualAddress, VirtualAddress + Length), which must stay
 * allocated (and is not copied) until IoFreeMdl. The MDL is not chained: to describe a
 * transfer over several buffers, set each MDL's Next to the following one, as a driver does
 * when it builds a chain itself.
 *
 * @param SecondaryBuffer, ChargeQuota  accepted and ignored (there is no IRP to chain to
 *                                      and no quota to charge).
 * @param Irp  must be NULL: dmahal has no IRPs.
 * @return the MDL (flags MDL_ALLOCATED_FIXED_SIZE | MDL_PAGES_LOCKED: user memory needs no
 *         MmProbeAndLockPages); NULL for a NULL address, a Length of 0, a buffer that wraps
 *         around the address space, a non-NULL Irp, or no memory.
 */
PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                   PIRP Irp);

/** Frees an MDL from IoAllocateMdl; not the buffer, nor the MDLs chained after it. NULL does
 *  nothing. */
VOID IoFreeMdl(PMDL Mdl);

/**
 * Completes an MDL whose buffer the driver allocated itself: on Windows, fills in its page
 * frame numbers; here, sets MappedSystemVa to the buffer's address and MDL_SOURCE_IS_NONPAGED_POOL,
 * so that MmGetSystemAddressForMdlSafe answers at once. NULL does nothing.
 */
VOID MmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList);

/**
 * Returns an address through which the CPU reaches an MDL's buffer: MappedSystemVa when the
 * MDL is mapped (or built for nonpaged pool), else the buffer's own address, which is valid
 * in this process (and is then recorded, with MDL_MAPPED_TO_SYSTEM_VA). Never fails for a
 * valid MDL; NULL for NULL.
 */
static inline PVOID MmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
    (void)Priority;
    if (!Mdl)
        return NULL;
    if (!(Mdl->MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL))) {
        Mdl->MappedSystemVa = MmGetMdlVirtualAddress(Mdl);
        Mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    }
    return Mdl->MappedSystemVa;
}

/**
 * Makes an MDL's buffer coherent for an I/O operation. On x86 and x86-64 Windows this does
 * nothing, and the same holds here on every platform: where devices do not snoop caches,
 * the DMA routines (GetScatterGatherList, MapTransfer, FlushAdapterBuffers,
 * PutScatterGatherList) do the cache maintenance themselves, as the HALs of such machines do.
 */
static inline VOID KeFlushIoBuffers(PMDL Mdl, BOOLEAN ReadOperation, BOOLEAN DmaOperation)
{
    (void)Mdl;
    (void)ReadOperation;
    (void)DmaOperation;
}

/* ------------------------------------------------------------------------------------------
 * SCATTER_GATHER_LIST: what GetScatterGatherList and BuildScatterGatherList hand the driver
 * ------------------------------------------------------------------------------------------ */

/** One piece of a transfer: program Address and Length into the device. 24 bytes. */
typedef struct _SCATTER_GATHER_ELEMENT {
    PHYSICAL_ADDRESS Address; /**< logical address, as the device must use it */
    ULONG Length;             /**< bytes */
    ULONG_PTR Reserved;       /**< 0 */
} SCATTER_GATHER_ELEMENT, *PSCATTER_GATHER_ELEMENT;

/* Windows declares Elements as a flexible array, which C++ knows only as an extension. */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
/**
 * A scatter/gather list: NumberOfElements elements, in transfer order, right after the
 * 16-byte header. Read-only for the driver; it stays valid until PutScatterGatherList.
 */
typedef struct _SCATTER_GATHER_LIST {
    ULONG NumberOfElements;            /**< elements that follow */
    ULONG_PTR Reserved;                /**< dmahal's: do not touch */
    SCATTER_GATHER_ELEMENT Elements[]; /**< NumberOfElements of them */
} SCATTER_GATHER_LIST, *PSCATTER_GATHER_LIST;
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/** The object type a DEVICE_OBJECT carries in Type. */
#define IO_TYPE_DEVICE 0x00000003

/**
 * A device object, reduced to what DMA needs. dmahal_wdm_device() makes the one for a dmahal
 * device; drivers do not build their own (IoGetDmaAdapter refuses them).
 */
typedef struct _DEVICE_OBJECT {
    CSHORT Type;                        /**< IO_TYPE_DEVICE */
    USHORT Size;                        /**< sizeof(DEVICE_OBJECT) */
    LONG ReferenceCount;                /**< unused, 0 */
    PVOID DeviceExtension;              /**< the driver's own, NULL until it sets it */
    struct dmahal_device *DmahalDevice; /**< the dmahal device this object stands for */
} DEVICE_OBJECT, *PDEVICE_OBJECT;

/** What an AdapterControl routine tells the I/O manager to do with the adapter. */
typedef enum _IO_ALLOCATION_ACTION {
    KeepObject = 1,
    DeallocateObject,
    DeallocateObjectKeepRegisters
} IO_ALLOCATION_ACTION,
    *PIO_ALLOCATION_ACTION;

/** How memory is cached (for the common-buffer routines of Windows 10 and later). */
typedef enum _MEMORY_CACHING_TYPE {
    MmNotMapped = -1,
    MmNonCached = FALSE,
    MmCached = TRUE,
    MmWriteCombined = 2,
    MmHardwareCoherentCached,
    MmNonCachedUnordered,
    MmUSWCCached,
    MmMaximumCacheType
} MEMORY_CACHING_TYPE;

/** How a DMA transfer ended, for DMA_COMPLETION_ROUTINE. */
typedef enum _DMA_COMPLETION_STATUS {
    DmaComplete,
    DmaAborted,
    DmaError,
    DmaCancelled
} DMA_COMPLETION_STATUS;

/* ------------------------------------------------------------------------------------------
 * Pages for MDLs: MmAllocatePagesForMdl(Ex), MmFreePagesFromMdl, and mapping them
 * ------------------------------------------------------------------------------------------ */

/* Flags of MmAllocatePagesForMdlEx: accepted; every allocation is zeroed, whole and at once. */
#define MM_DONT_ZERO_ALLOCATION               0x00000001
#define MM_ALLOCATE_FROM_LOCAL_NODE_ONLY      0x00000002
#define MM_ALLOCATE_FULLY_REQUIRED            0x00000004
#define MM_ALLOCATE_NO_WAIT                   0x00000008
#define MM_ALLOCATE_PREFER_CONTIGUOUS         0x00000010
#define MM_ALLOCATE_REQUIRE_CONTIGUOUS_CHUNKS 0x00000020

/**
 * Allocates TotalBytes (rounded up to pages) of zeroed memory and an MDL describing it,
 * followed by its page frame numbers, as Windows' MDLs are (MmGetMdlPfnArray). The pages
 * come from the simulated machine of the first device given a DEVICE_OBJECT
 * (dmahal_wdm_device) while any of its devices is open: there the frame numbers are the
 * sim's physical frames, and every frame must lie in [LowAddress, HighAddress] (the sim
 * hands frames out high-first, so a low range may not be met: NULL then). Elsewhere (no
 * such device, or another platform) the memory is the process's own and its frame numbers
 * are 0: a page of a process has no fixed frame, and no device may be given one.
 * SkipBytes, CacheType and Flags are accepted and ignored. The pages stay until
 * MmFreePagesFromMdl, or until the last device of that machine closes; ExFreePool frees the
 * MDL itself.
 *
 * @return the MDL (ByteCount the rounded length, StartVa page-aligned, MDL_PAGES_LOCKED), or
 *         NULL for a TotalBytes of 0 or of more than 4,089 pages (what an MDL's 16-bit Size
 *         counts), or when memory in range runs out. Unlike Windows, it never returns fewer
 *         bytes than asked for.
 */
PMDL MmAllocatePagesForMdlEx(PHYSICAL_ADDRESS LowAddress, PHYSICAL_ADDRESS HighAddress,
                             PHYSICAL_ADDRESS SkipBytes, SIZE_T TotalBytes,
                             MEMORY_CACHING_TYPE CacheType, ULONG Flags);

/** MmAllocatePagesForMdlEx with MmCached and no flags. */
PMDL MmAllocatePagesForMdl(PHYSICAL_ADDRESS LowAddress, PHYSICAL_ADDRESS HighAddress,
                           PHYSICAL_ADDRESS SkipBytes, SIZE_T TotalBytes);

/**
 * Frees the pages of an MDL from MmAllocatePagesForMdl(Ex) (not the MDL: ExFreePool does);
 * its ByteCount becomes 0. Anything else, NULL included, is ignored.
 */
VOID MmFreePagesFromMdl(PMDL MemoryDescriptorList);

/**
 * Frees an MDL from MmAllocatePagesForMdl(Ex), and its pages if MmFreePagesFromMdl has not.
 * It is the only pool block this layer hands out: any other pointer is ignored.
 */
VOID ExFreePool(PVOID P);
/** ExFreePool; the tag is not checked. */
VOID ExFreePoolWithTag(PVOID P, ULONG Tag);

/**
 * The page frame numbers that follow an MDL (one per page of its buffer), as Windows'
 * macro of the name gives them: for MDLs of MmAllocatePagesForMdl(Ex) only (the sim's
 * frames, or 0 elsewhere: see there); NULL for MDLs of IoAllocateMdl, which describe
 * process memory and have no frames after them, and for NULL.
 */
PPFN_NUMBER MmGetMdlPfnArray(PMDL Mdl);

/**
 * Maps an MDL's pages for the CPU: the process reaches them already, so this returns the
 * MDL's own address and records it (MappedSystemVa, MDL_MAPPED_TO_SYSTEM_VA). AccessMode,
 * CacheType, BugCheckOnFailure and Priority are accepted and ignored.
 *
 * @return the address; NULL for a NULL or empty MDL, or a RequestedAddress (dmahal cannot
 *         place a mapping).
 */
PVOID MmMapLockedPagesSpecifyCache(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode,
                                   MEMORY_CACHING_TYPE CacheType, PVOID RequestedAddress,
                                   ULONG BugCheckOnFailure, ULONG Priority);

/** Undoes MmMapLockedPagesSpecifyCache for BaseAddress, what it returned; else ignored. */
VOID MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList);

/* ------------------------------------------------------------------------------------------
 * DEVICE_DESCRIPTION: what the driver tells IoGetDmaAdapter about its device
 * ------------------------------------------------------------------------------------------ */

#define DEVICE_DESCRIPTION_VERSION  0
#define DEVICE_DESCRIPTION_VERSION1 1
#define DEVICE_DESCRIPTION_VERSION2 2
#define DEVICE_DESCRIPTION_VERSION3 3

/** The bus a device sits on. */
typedef enum _INTERFACE_TYPE {
    InterfaceTypeUndefined = -1,
    Internal = 0,
    Isa = 1,
    Eisa = 2,
    MicroChannel = 3,
    TurboChannel = 4,
    PCIBus = 5,
    VMEBus = 6,
    NuBus = 7,
    PCMCIABus = 8,
    CBus = 9,
    MPIBus = 10,
    MPSABus = 11,
    ProcessorInternal = 12,
    InternalPowerBus = 13,
    PNPISABus = 14,
    PNPBus = 15,
    Vmcs = 16,
    ACPIBus = 17,
    MaximumInterfaceType
} INTERFACE_TYPE,
    *PINTERFACE_TYPE;

/** Data width of a system DMA controller (subordinate devices only). */
typedef enum _DMA_WIDTH {
    Width8Bits,
    Width16Bits,
    Width32Bits,
    Width64Bits,
    WidthNoWrap,
    MaximumDmaWidth
} DMA_WIDTH,
    *PDMA_WIDTH;

/** Timing of a system DMA controller (subordinate devices only). */
typedef enum _DMA_SPEED {
    Compatible,
    TypeA,
    TypeB,
    TypeC,
    TypeF,
    MaximumDmaSpeed
} DMA_SPEED,
    *PDMA_SPEED;

/**
 * The device's DMA capabilities. Zero it, then set what the device has; see IoGetDmaAdapter
 * for which members dmahal reads.
 */
typedef struct _DEVICE_DESCRIPTION {
    ULONG Version;                /**< DEVICE_DESCRIPTION_VERSION .. DEVICE_DESCRIPTION_VERSION3 */
    BOOLEAN Master;               /**< a bus master; dmahal supports nothing else */
    BOOLEAN ScatterGather;        /**< the device takes scatter/gather lists */
    BOOLEAN DemandMode;           /**< subordinate devices only */
    BOOLEAN AutoInitialize;       /**< subordinate devices only */
    BOOLEAN Dma32BitAddresses;    /**< versions 0-2: drives 32-bit addresses */
    BOOLEAN IgnoreCount;          /**< subordinate devices only */
    BOOLEAN Reserved1;            /**< must be FALSE */
    BOOLEAN Dma64BitAddresses;    /**< versions 0-2: drives 64-bit addresses */
    ULONG BusNumber;              /**< unused */
    ULONG DmaChannel;             /**< subordinate devices only */
    INTERFACE_TYPE InterfaceType; /**< the bus: PCIBus (or 0, as PCI) for a bus master */
    DMA_WIDTH DmaWidth;           /**< subordinate devices only */
    DMA_SPEED DmaSpeed;           /**< subordinate devices only */
    ULONG MaximumLength;          /**< largest transfer in bytes */
    ULONG DmaPort;                /**< obsolete */
    ULONG DmaAddressWidth;        /**< version 3: address bits the device drives, 1..64 */
    ULONG DmaControllerInstance;  /**< unused */
    ULONG DmaRequestLine;         /**< subordinate devices only */
    PHYSICAL_ADDRESS DeviceAddress; /**< subordinate devices only */
} DEVICE_DESCRIPTION, *PDEVICE_DESCRIPTION;

/* ------------------------------------------------------------------------------------------
 * DMA_ADAPTER and DMA_OPERATIONS
 * ------------------------------------------------------------------------------------------ */

struct _DMA_OPERATIONS;

/** The adapter object IoGetDmaAdapter returns; its operations are reached through it. */
typedef struct _DMA_ADAPTER {
    USHORT Version; /**< 1, whatever the description's version (as Windows sets it) */
    USHORT Size;    /**< sizeof(DMA_ADAPTER) */
    struct _DMA_OPERATIONS *DmaOperations; /**< the operations (DMA_OPERATIONS) */
} DMA_ADAPTER, *PDMA_ADAPTER;

typedef IO_ALLOCATION_ACTION DRIVER_CONTROL(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                            PVOID MapRegisterBase, PVOID Context);
typedef DRIVER_CONTROL *PDRIVER_CONTROL;
typedef VOID DRIVER_LIST_CONTROL(PDEVICE_OBJECT DeviceObject, PIRP Irp,
                                 PSCATTER_GATHER_LIST ScatterGather, PVOID Context);
typedef DRIVER_LIST_CONTROL *PDRIVER_LIST_CONTROL;
typedef VOID DMA_COMPLETION_ROUTINE(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                    PVOID CompletionContext, DMA_COMPLETION_STATUS Status);
typedef DMA_COMPLETION_ROUTINE *PDMA_COMPLETION_ROUTINE;

/* Implemented by dmahal: see their documentation below the table. */
typedef VOID PUT_DMA_ADAPTER(PDMA_ADAPTER DmaAdapter);
typedef PUT_DMA_ADAPTER *PPUT_DMA_ADAPTER;
typedef PVOID ALLOCATE_COMMON_BUFFER(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                     PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled);
typedef ALLOCATE_COMMON_BUFFER *PALLOCATE_COMMON_BUFFER;
typedef VOID FREE_COMMON_BUFFER(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                PHYSICAL_ADDRESS LogicalAddress, PVOID VirtualAddress,
                                BOOLEAN CacheEnabled);
typedef FREE_COMMON_BUFFER *PFREE_COMMON_BUFFER;
typedef ULONG GET_DMA_ALIGNMENT(PDMA_ADAPTER DmaAdapter);
typedef GET_DMA_ALIGNMENT *PGET_DMA_ALIGNMENT;

/* Windows' other operations, each documented below the table. */
typedef NTSTATUS ALLOCATE_ADAPTER_CHANNEL(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                          ULONG NumberOfMapRegisters,
                                          PDRIVER_CONTROL ExecutionRoutine, PVOID Context);
typedef ALLOCATE_ADAPTER_CHANNEL *PALLOCATE_ADAPTER_CHANNEL;
typedef BOOLEAN FLUSH_ADAPTER_BUFFERS(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                      PVOID CurrentVa, ULONG Length, BOOLEAN WriteToDevice);
typedef FLUSH_ADAPTER_BUFFERS *PFLUSH_ADAPTER_BUFFERS;
typedef VOID FREE_ADAPTER_CHANNEL(PDMA_ADAPTER DmaAdapter);
typedef FREE_ADAPTER_CHANNEL *PFREE_ADAPTER_CHANNEL;
typedef VOID FREE_MAP_REGISTERS(PDMA_ADAPTER DmaAdapter, PVOID MapRegisterBase,
                                ULONG NumberOfMapRegisters);
typedef FREE_MAP_REGISTERS *PFREE_MAP_REGISTERS;
typedef PHYSICAL_ADDRESS MAP_TRANSFER(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                      PVOID CurrentVa, PULONG Length, BOOLEAN WriteToDevice);
typedef MAP_TRANSFER *PMAP_TRANSFER;
typedef ULONG READ_DMA_COUNTER(PDMA_ADAPTER DmaAdapter);
typedef READ_DMA_COUNTER *PREAD_DMA_COUNTER;
typedef NTSTATUS GET_SCATTER_GATHER_LIST(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                         PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                         PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                         BOOLEAN WriteToDevice);
typedef GET_SCATTER_GATHER_LIST *PGET_SCATTER_GATHER_LIST;
typedef VOID PUT_SCATTER_GATHER_LIST(PDMA_ADAPTER DmaAdapter, PSCATTER_GATHER_LIST ScatterGather,
                                     BOOLEAN WriteToDevice);
typedef PUT_SCATTER_GATHER_LIST *PPUT_SCATTER_GATHER_LIST;
typedef NTSTATUS CALCULATE_SCATTER_GATHER_LIST_SIZE(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                                                    PVOID CurrentVa, ULONG Length,
                                                    PULONG ScatterGatherListSize,
                                                    PULONG pNumberOfMapRegisters);
typedef CALCULATE_SCATTER_GATHER_LIST_SIZE *PCALCULATE_SCATTER_GATHER_LIST_SIZE;
typedef NTSTATUS BUILD_SCATTER_GATHER_LIST(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                           PMDL Mdl, PVOID CurrentVa, ULONG Length,
                                           PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                                           BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer,
                                           ULONG ScatterGatherLength);
typedef BUILD_SCATTER_GATHER_LIST *PBUILD_SCATTER_GATHER_LIST;
typedef NTSTATUS BUILD_MDL_FROM_SCATTER_GATHER_LIST(PDMA_ADAPTER DmaAdapter,
                                                    PSCATTER_GATHER_LIST ScatterGather,
                                                    PMDL OriginalMdl, PMDL *TargetMdl);
typedef BUILD_MDL_FROM_SCATTER_GATHER_LIST *PBUILD_MDL_FROM_SCATTER_GATHER_LIST;
typedef NTSTATUS GET_DMA_ADAPTER_INFO(PDMA_ADAPTER DmaAdapter, PDMA_ADAPTER_INFO AdapterInfo);
typedef GET_DMA_ADAPTER_INFO *PGET_DMA_ADAPTER_INFO;
typedef NTSTATUS GET_DMA_TRANSFER_INFO(PDMA_ADAPTER DmaAdapter, PMDL Mdl, ULONGLONG Offset,
                                       ULONG Length, BOOLEAN WriteOnly,
                                       PDMA_TRANSFER_INFO TransferInfo);
typedef GET_DMA_TRANSFER_INFO *PGET_DMA_TRANSFER_INFO;
typedef NTSTATUS INITIALIZE_DMA_TRANSFER_CONTEXT(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext);
typedef INITIALIZE_DMA_TRANSFER_CONTEXT *PINITIALIZE_DMA_TRANSFER_CONTEXT;
typedef PVOID ALLOCATE_COMMON_BUFFER_EX(PDMA_ADAPTER DmaAdapter, PPHYSICAL_ADDRESS MaximumAddress,
                                        ULONG Length, PPHYSICAL_ADDRESS LogicalAddress,
                                        BOOLEAN CacheEnabled, NODE_REQUIREMENT PreferredNode);
typedef ALLOCATE_COMMON_BUFFER_EX *PALLOCATE_COMMON_BUFFER_EX;
typedef NTSTATUS ALLOCATE_ADAPTER_CHANNEL_EX(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                             PVOID DmaTransferContext, ULONG NumberOfMapRegisters,
                                             ULONG Flags, PDRIVER_CONTROL ExecutionRoutine,
                                             PVOID ExecutionContext, PVOID *MapRegisterBase);
typedef ALLOCATE_ADAPTER_CHANNEL_EX *PALLOCATE_ADAPTER_CHANNEL_EX;
typedef NTSTATUS CONFIGURE_ADAPTER_CHANNEL(PDMA_ADAPTER DmaAdapter, ULONG FunctionNumber,
                                           PVOID Context);
typedef CONFIGURE_ADAPTER_CHANNEL *PCONFIGURE_ADAPTER_CHANNEL;
typedef BOOLEAN CANCEL_ADAPTER_CHANNEL(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                                       PVOID DmaTransferContext);
typedef CANCEL_ADAPTER_CHANNEL *PCANCEL_ADAPTER_CHANNEL;
typedef NTSTATUS MAP_TRANSFER_EX(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                 ULONGLONG Offset, ULONG DeviceOffset, PULONG Length,
                                 BOOLEAN WriteToDevice, PSCATTER_GATHER_LIST ScatterGatherBuffer,
                                 ULONG ScatterGatherBufferLength,
                                 PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
                                 PVOID CompletionContext);
typedef MAP_TRANSFER_EX *PMAP_TRANSFER_EX;
typedef NTSTATUS
GET_SCATTER_GATHER_LIST_EX(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
                           PVOID DmaTransferContext, PMDL Mdl, ULONGLONG Offset, ULONG Length,
                           ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context,
                           BOOLEAN WriteToDevice, PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
                           PVOID CompletionContext, PSCATTER_GATHER_LIST *ScatterGatherList);
typedef GET_SCATTER_GATHER_LIST_EX *PGET_SCATTER_GATHER_LIST_EX;
typedef NTSTATUS BUILD_SCATTER_GATHER_LIST_EX(
    PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject, PVOID DmaTransferContext, PMDL Mdl,
    ULONGLONG Offset, ULONG Length, ULONG Flags, PDRIVER_LIST_CONTROL ExecutionRoutine,
    PVOID Context, BOOLEAN WriteToDevice, PVOID ScatterGatherBuffer, ULONG ScatterGatherLength,
    PDMA_COMPLETION_ROUTINE DmaCompletionRoutine, PVOID CompletionContext, PVOID ScatterGatherList);
typedef BUILD_SCATTER_GATHER_LIST_EX *PBUILD_SCATTER_GATHER_LIST_EX;
typedef NTSTATUS FLUSH_ADAPTER_BUFFERS_EX(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
                                          ULONGLONG Offset, ULONG Length, BOOLEAN WriteToDevice);
typedef FLUSH_ADAPTER_BUFFERS_EX *PFLUSH_ADAPTER_BUFFERS_EX;
typedef VOID FREE_ADAPTER_OBJECT(PDMA_ADAPTER DmaAdapter, IO_ALLOCATION_ACTION AllocationAction);
typedef FREE_ADAPTER_OBJECT *PFREE_ADAPTER_OBJECT;
typedef NTSTATUS CANCEL_MAPPED_TRANSFER(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext);
typedef CANCEL_MAPPED_TRANSFER *PCANCEL_MAPPED_TRANSFER;
typedef NTSTATUS ALLOCATE_DOMAIN_COMMON_BUFFER(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle,
                                               PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                               ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
                                               NODE_REQUIREMENT PreferredNode,
                                               PPHYSICAL_ADDRESS LogicalAddress,
                                               PVOID *VirtualAddress);
typedef ALLOCATE_DOMAIN_COMMON_BUFFER *PALLOCATE_DOMAIN_COMMON_BUFFER;
typedef NTSTATUS FLUSH_DMA_BUFFER(PDMA_ADAPTER DmaAdapter, PMDL Mdl, BOOLEAN ReadOperation);
typedef FLUSH_DMA_BUFFER *PFLUSH_DMA_BUFFER;
typedef NTSTATUS JOIN_DMA_DOMAIN(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle);
typedef JOIN_DMA_DOMAIN *PJOIN_DMA_DOMAIN;
typedef NTSTATUS LEAVE_DMA_DOMAIN(PDMA_ADAPTER DmaAdapter);
typedef LEAVE_DMA_DOMAIN *PLEAVE_DMA_DOMAIN;
typedef HANDLE GET_DMA_DOMAIN(PDMA_ADAPTER DmaAdapter);
typedef GET_DMA_DOMAIN *PGET_DMA_DOMAIN;
typedef PVOID ALLOCATE_COMMON_BUFFER_WITH_BOUNDS(PDMA_ADAPTER DmaAdapter,
                                                 PPHYSICAL_ADDRESS MinimumAddress,
                                                 PPHYSICAL_ADDRESS MaximumAddress, ULONG Length,
                                                 ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
                                                 NODE_REQUIREMENT PreferredNode,
                                                 PPHYSICAL_ADDRESS LogicalAddress);
typedef ALLOCATE_COMMON_BUFFER_WITH_BOUNDS *PALLOCATE_COMMON_BUFFER_WITH_BOUNDS;
typedef NTSTATUS ALLOCATE_COMMON_BUFFER_VECTOR(PDMA_ADAPTER DmaAdapter, PHYSICAL_ADDRESS LowAddress,
                                               PHYSICAL_ADDRESS HighAddress,
                                               MEMORY_CACHING_TYPE CacheType,
                                               NODE_REQUIREMENT IdealNode, ULONG Flags,
                                               ULONG NumberOfElements, ULONGLONG SizeOfElements,
                                               PDMA_COMMON_BUFFER_VECTOR *VectorOut);
typedef ALLOCATE_COMMON_BUFFER_VECTOR *PALLOCATE_COMMON_BUFFER_VECTOR;
typedef VOID GET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX(PDMA_ADAPTER DmaAdapter,
                                                    PDMA_COMMON_BUFFER_VECTOR Vector, ULONG Index,
                                                    PVOID *VirtualAddressOut,
                                                    PPHYSICAL_ADDRESS LogicalAddressOut);
typedef GET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX *PGET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX;
typedef VOID FREE_COMMON_BUFFER_FROM_VECTOR(PDMA_ADAPTER DmaAdapter,
                                            PDMA_COMMON_BUFFER_VECTOR Vector, ULONG Index);
typedef FREE_COMMON_BUFFER_FROM_VECTOR *PFREE_COMMON_BUFFER_FROM_VECTOR;
typedef VOID FREE_COMMON_BUFFER_VECTOR(PDMA_ADAPTER DmaAdapter, PDMA_COMMON_BUFFER_VECTOR Vector);
typedef FREE_COMMON_BUFFER_VECTOR *PFREE_COMMON_BUFFER_VECTOR;
typedef NTSTATUS
CREATE_COMMON_BUFFER_FROM_MDL(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
                              PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION ExtendedConfigs,
                              ULONG ExtendedConfigsCount, PPHYSICAL_ADDRESS LogicalAddress);
typedef CREATE_COMMON_BUFFER_FROM_MDL *PCREATE_COMMON_BUFFER_FROM_MDL;

/**
 * The adapter's operations, every member of Windows' table in Windows' order (x86-64
 * offsets: 8 bytes apart after Size, 0x140 bytes in all). See the top of this file for
 * what Size means and which members are set.
 */
typedef struct _DMA_OPERATIONS {
    ULONG Size; /**< bytes of the table that are filled */
    /** @{ */
    /** An operation by its Windows name, in Windows' order; NULL past Size. */
    PPUT_DMA_ADAPTER PutDmaAdapter;
    PALLOCATE_COMMON_BUFFER AllocateCommonBuffer;
    PFREE_COMMON_BUFFER FreeCommonBuffer;
    PALLOCATE_ADAPTER_CHANNEL AllocateAdapterChannel;
    PFLUSH_ADAPTER_BUFFERS FlushAdapterBuffers;
    PFREE_ADAPTER_CHANNEL FreeAdapterChannel;
    PFREE_MAP_REGISTERS FreeMapRegisters;
    PMAP_TRANSFER MapTransfer;
    PGET_DMA_ALIGNMENT GetDmaAlignment;
    PREAD_DMA_COUNTER ReadDmaCounter;
    PGET_SCATTER_GATHER_LIST GetScatterGatherList;
    PPUT_SCATTER_GATHER_LIST PutScatterGatherList;
    PCALCULATE_SCATTER_GATHER_LIST_SIZE CalculateScatterGatherList;
    PBUILD_SCATTER_GATHER_LIST BuildScatterGatherList;
    PBUILD_MDL_FROM_SCATTER_GATHER_LIST BuildMdlFromScatterGatherList;
    PGET_DMA_ADAPTER_INFO GetDmaAdapterInfo;
    PGET_DMA_TRANSFER_INFO GetDmaTransferInfo;
    PINITIALIZE_DMA_TRANSFER_CONTEXT InitializeDmaTransferContext;
    PALLOCATE_COMMON_BUFFER_EX AllocateCommonBufferEx;
    PALLOCATE_ADAPTER_CHANNEL_EX AllocateAdapterChannelEx;
    PCONFIGURE_ADAPTER_CHANNEL ConfigureAdapterChannel;
    PCANCEL_ADAPTER_CHANNEL CancelAdapterChannel;
    PMAP_TRANSFER_EX MapTransferEx;
    PGET_SCATTER_GATHER_LIST_EX GetScatterGatherListEx;
    PBUILD_SCATTER_GATHER_LIST_EX BuildScatterGatherListEx;
    PFLUSH_ADAPTER_BUFFERS_EX FlushAdapterBuffersEx;
    PFREE_ADAPTER_OBJECT FreeAdapterObject;
    PCANCEL_MAPPED_TRANSFER CancelMappedTransfer;
    PALLOCATE_DOMAIN_COMMON_BUFFER AllocateDomainCommonBuffer;
    PFLUSH_DMA_BUFFER FlushDmaBuffer;
    PJOIN_DMA_DOMAIN JoinDmaDomain;
    PLEAVE_DMA_DOMAIN LeaveDmaDomain;
    PGET_DMA_DOMAIN GetDmaDomain;
    PALLOCATE_COMMON_BUFFER_WITH_BOUNDS AllocateCommonBufferWithBounds;
    PALLOCATE_COMMON_BUFFER_VECTOR AllocateCommonBufferVector;
    PGET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX GetCommonBufferFromVectorByIndex;
    PFREE_COMMON_BUFFER_FROM_VECTOR FreeCommonBufferFromVector;
    PFREE_COMMON_BUFFER_VECTOR FreeCommonBufferVector;
    PCREATE_COMMON_BUFFER_FROM_MDL CreateCommonBufferFromMdl;
    /** @} */
} DMA_OPERATIONS, *PDMA_OPERATIONS;

/*
 * The operations dmahal implements, as reached through DmaOperations (they are not exported
 * by name, as on Windows):
 *
 * PutDmaAdapter(DmaAdapter)
 *   Releases the adapter and frees every common buffer still allocated from it (dmahal
 *   reports those as leaks when its verifier is on). NULL does nothing.
 *
 * AllocateCommonBuffer(DmaAdapter, Length, LogicalAddress, CacheEnabled)
 *   Allocates Length bytes of zeroed memory that both the CPU and the device reach. Returns
 *   the virtual address and stores the logical address, which fits the adapter's
 *   description (below 2^width), in *LogicalAddress. Both start a page, as Windows'
 *   contiguous allocations do (the buffer takes whole pages; dmahal_common_alloc, the
 *   native call, packs small buffers instead). Whatever CacheEnabled says, the buffer is
 *   coherent for the device: where the device does not snoop caches, Windows makes a
 *   cached common buffer coherent (a driver of these routines has no call to sync one), and
 *   so does dmahal, by mapping it uncached; where it snoops, both are the same. Returns NULL, with
 * *LogicalAddress zeroed, for a NULL adapter or LogicalAddress, a zero Length, or when memory the
 * device can reach runs out. Thread-safe.
 *
 * FreeCommonBuffer(DmaAdapter, Length, LogicalAddress, VirtualAddress, CacheEnabled)
 *   Frees a buffer from AllocateCommonBuffer on the same adapter; all four values must be
 *   the ones it was allocated with. Anything else (an address never allocated, a double
 *   free, another length, another CacheEnabled, another adapter's buffer) frees nothing
 *   and is reported by dmahal's verifier when it is on. Thread-safe.
 *
 * GetDmaAlignment(DmaAdapter)
 *   The alignment in bytes that DMA buffer addresses and lengths need; 1 means none.
 *   0 for NULL.
 *
 * Packet DMA through scatter/gather lists. A transfer is Length bytes of an MDL chain,
 * starting at CurrentVa inside the first MDL's buffer and running on through Next. It needs
 * as many map registers as its buffers span pages of the platform (Windows' count); more
 * than IoGetDmaAdapter gave is STATUS_INSUFFICIENT_RESOURCES, as on Windows. That is the
 * only limit: a Length above the description's MaximumLength that fits the map registers
 * (a page-aligned MaximumLength + one page) is mapped, as Windows maps it. DeviceObject is
 * passed through to ExecutionRoutine, with Irp NULL. dmahal_map() does the mapping: in
 * place where the device reaches the memory (through the IOMMU, or at its bus address),
 * through bounce pages otherwise, with the cache maintenance a non-coherent platform needs.
 *
 * GetScatterGatherList(DmaAdapter, DeviceObject, Mdl, CurrentVa, Length, ExecutionRoutine,
 *                      Context, WriteToDevice)
 *   Maps the transfer and calls ExecutionRoutine(DeviceObject, NULL, ScatterGather,
 *   Context) with its list: before returning when the map registers are there; else the
 *   request waits, and the routine runs later on the thread whose PutScatterGatherList (or
 *   FreeMapRegisters...) freed enough, requests in the order they were made. Returns
 *   STATUS_SUCCESS in both cases; STATUS_INVALID_PARAMETER for a NULL adapter, Mdl,
 *   CurrentVa or ExecutionRoutine, a zero Length, or a CurrentVa outside the first MDL's
 *   buffer; STATUS_BUFFER_TOO_SMALL when the chain holds fewer than Length bytes from
 *   CurrentVa; STATUS_INSUFFICIENT_RESOURCES for too long a transfer or no memory. On
 *   failure the routine is never called. The list's memory comes from a per-adapter cache
 *   of lists (of 256 elements, or the adapter's most if fewer, or the transfer's most if
 *   more), so once warm only the iovec array of a transfer of more than 16 buffers is
 *   allocated. When
 *   the adapter is put, or its device closed, with requests still waiting, they are dropped
 *   without their routine running. Thread-safe.
 *
 * PutScatterGatherList(DmaAdapter, ScatterGather, WriteToDevice)
 *   Ends a transfer: with WriteToDevice FALSE, first makes the device's writes visible to
 *   the CPU (as Windows flushes the adapter buffers), then unmaps, which may start waiting
 *   requests (see above). ScatterGather must be a live list of this adapter, as handed to
 *   the routine; anything else, a list put already included, is ignored without being read
 *   (lists are looked up among the adapter's live ones, so a foreign list, or a built one
 *   whose buffer the driver freed after its put, is never dereferenced). Pass the same
 *   WriteToDevice as for the mapping (dmahal syncs by the mapping's own direction).
 *
 * CalculateScatterGatherList(DmaAdapter, Mdl, CurrentVa, Length, ScatterGatherListSize,
 *                            pNumberOfMapRegisters)
 *   The size of the buffer BuildScatterGatherList needs for the transfer, and its map
 *   registers (optional out). With Mdl NULL, CurrentVa is only an address, which may be 0
 *   (pcidrv sizes its lists so at start-up): the result is for one buffer of Length bytes
 *   starting at CurrentVa's page offset. The size counts dmahal's own record of the transfer, kept
 * in the buffer too, so it exceeds sizeof(SCATTER_GATHER_LIST) + elements * 24. Returns
 *   STATUS_SUCCESS; STATUS_INVALID_PARAMETER as GetScatterGatherList (Mdl may be NULL) or
 *   for a NULL ScatterGatherListSize; STATUS_BUFFER_TOO_SMALL when the chain is shorter than
 *   Length; STATUS_INSUFFICIENT_RESOURCES as GetScatterGatherList. The
 *   outs are 0 on failure.
 *
 * BuildScatterGatherList(DmaAdapter, DeviceObject, Mdl, CurrentVa, Length, ExecutionRoutine,
 *                        Context, WriteToDevice, ScatterGatherBuffer, ScatterGatherLength)
 *   GetScatterGatherList into the driver's buffer, of at least what
 *   CalculateScatterGatherList said: the list and dmahal's record of the transfer live
 *   there (the list need not start at the buffer's first byte: use the pointer the routine
 *   gets), so the Windows-names layer allocates nothing. The buffer belongs to dmahal until
 *   PutScatterGatherList. dmahal_map() itself takes its mapping record from a per-thread
 *   cache that only a thread's first maps, or a transfer of very many pieces, have to fill.
 *   Returns as GetScatterGatherList, plus STATUS_BUFFER_TOO_SMALL for a NULL or too small
 *   buffer.
 *
 * Packet DMA through an adapter channel and map registers. The adapter has as many map
 * registers as IoGetDmaAdapter said, granted as requests need them: a request for N takes
 * N of the count, and N pages of a common buffer to stage through, allocated with the
 * request (not for every register the adapter has: a MaximumLength of MAXULONG gives
 * 524,289) and kept with its record for the next request, until the adapter is put.
 * MapTransfer maps in place when dmahal_map() can do so at once, and copies through the
 * registers' pages when it cannot (the device cannot reach the memory and the bounce pages
 * are taken, or the layout does not fit): it never waits and never fails for lack of
 * memory, as Windows' does not. At most one AdapterControl routine holds the adapter
 * channel at a time.
 *
 * AllocateAdapterChannel(DmaAdapter, DeviceObject, NumberOfMapRegisters, ExecutionRoutine,
 *                        Context)
 *   When the channel is free and NumberOfMapRegisters registers are (in one run), calls
 *   ExecutionRoutine(DeviceObject, NULL, MapRegisterBase, Context) before returning; else
 *   queues the request, which runs later, in request order, on the thread whose
 *   FreeAdapterChannel or FreeMapRegisters made room (or inside the routine that ran
 *   before it, once that returns). What the
 *   routine returns decides:
 *     KeepObject: it keeps the channel and the registers until FreeAdapterChannel;
 *     DeallocateObject: the channel and the registers are released at once (anything still
 *       mapped through them is flushed and unmapped);
 *     DeallocateObjectKeepRegisters: the channel is released, the registers kept until
 *       FreeMapRegisters (what a bus-master driver returns after starting its device).
 *   Returns STATUS_SUCCESS (called or queued); STATUS_INVALID_PARAMETER for a NULL adapter
 *   or routine; STATUS_INSUFFICIENT_RESOURCES for more registers than IoGetDmaAdapter gave,
 *   or no memory for them. 0 registers is allowed: MapTransfer then maps nothing.
 *
 * MapTransfer(DmaAdapter, Mdl, MapRegisterBase, CurrentVa, Length, WriteToDevice)
 *   Maps the next piece of a transfer, from CurrentVa inside Mdl's buffer, and returns its
 *   logical address; *Length, the bytes wanted, becomes the bytes mapped: less when the
 *   piece is not contiguous for the device (scatter/gather adapters only: for others it is
 *   always contiguous), when the buffer ends, or when the registers run out (a piece takes
 *   the pages it spans; they come back when everything mapped is flushed). A CurrentVa
 *   inside what an earlier call mapped returns from that mapping. For TRUE WriteToDevice
 *   the data is in place for the device on return. Returns 0 with *Length 0 for a bad
 *   adapter, Mdl, MapRegisterBase or CurrentVa, a *Length of 0, or no registers left.
 *
 * FlushAdapterBuffers(DmaAdapter, Mdl, MapRegisterBase, CurrentVa, Length, WriteToDevice)
 *   Ends the transfer [CurrentVa, +Length) mapped through MapRegisterBase: every piece it
 *   overlaps is unmapped, and for FALSE WriteToDevice what the device wrote is in the
 *   buffer on return. When nothing mapped is left, the registers are free for the next
 *   MapTransfer. Returns TRUE; FALSE for a bad adapter, Mdl or MapRegisterBase, or a
 *   CurrentVa outside Mdl's buffer.
 *
 * FreeMapRegisters(DmaAdapter, MapRegisterBase, NumberOfMapRegisters)
 *   Releases registers kept with DeallocateObjectKeepRegisters (flushing what is still
 *   mapped); NumberOfMapRegisters must be the count allocated. Ignored for anything else,
 *   registers whose routine still holds the channel (KeepObject) included.
 *
 * FreeAdapterChannel(DmaAdapter)
 *   Releases the channel kept with KeepObject, and its registers. Ignored when no routine
 *   keeps the channel.
 *
 * ReadDmaCounter(DmaAdapter) -> 0; BuildMdlFromScatterGatherList -> STATUS_NOT_SUPPORTED
 *   (a system DMA controller's counter; logical addresses do not name CPU pages behind an
 *   IOMMU), with *TargetMdl NULL.
 *
 * Version 3 (a DEVICE_DESCRIPTION_VERSION3 adapter). A transfer is named by an MDL chain
 * and a byte Offset into it (not a CurrentVa); the *Ex routines take a DMA transfer
 * context of DMA_TRANSFER_CONTEXT_SIZE_V1 bytes that InitializeDmaTransferContext zeroed.
 * DmaCompletionRoutine (system DMA) must be NULL: STATUS_INVALID_PARAMETER otherwise.
 *
 * GetDmaAdapterInfo(DmaAdapter, AdapterInfo)
 *   With AdapterInfo->Version DMA_ADAPTER_INFO_VERSION1, fills V1: no DMA counter, the
 *   scatter/gather limit, DmaAddressWidth as the adapter drives it, no flags, a minimum
 *   transfer unit of 1. STATUS_NOT_SUPPORTED for another Version; STATUS_INVALID_PARAMETER
 *   for NULL arguments.
 * GetDmaTransferInfo(DmaAdapter, Mdl, Offset, Length, WriteOnly, TransferInfo)
 *   With Version 1 or 2: map registers, elements and the bytes BuildScatterGatherListEx
 *   needs for [Offset, +Length) of the chain (version 2: and the logical pages, the same as
 *   the registers). STATUS_INVALID_PARAMETER for an Offset past the chain or NULL
 *   arguments; STATUS_BUFFER_TOO_SMALL when the chain ends first; STATUS_NOT_SUPPORTED for
 *   another Version.
 * InitializeDmaTransferContext(DmaAdapter, DmaTransferContext): zeroes it; STATUS_SUCCESS.
 * AllocateCommonBufferEx(DmaAdapter, MaximumAddress, Length, LogicalAddress, CacheEnabled,
 *                        PreferredNode)
 *   AllocateCommonBuffer whose buffer also ends at or below *MaximumAddress (optional);
 *   NULL when dmahal's buffer does not (none is kept). PreferredNode is ignored.
 * AllocateAdapterChannelEx(DmaAdapter, DeviceObject, DmaTransferContext,
 *                          NumberOfMapRegisters, Flags, ExecutionRoutine, ExecutionContext,
 *                          MapRegisterBase)
 *   AllocateAdapterChannel, tagged with the context. With DMA_SYNCHRONOUS_CALLBACK it
 *   grants now or fails with STATUS_INSUFFICIENT_RESOURCES (the channel or the registers
 *   taken, or requests waiting); then ExecutionRoutine may be NULL: the registers come back
 *   in *MapRegisterBase and the caller holds the channel, as with KeepObject, until
 *   FreeAdapterObject (DeallocateObject: the registers too; DeallocateObjectKeepRegisters:
 *   then FreeMapRegisters). STATUS_INVALID_PARAMETER for a NULL context, unknown flags, and,
 *   as Windows documents, for a routine and a MapRegisterBase both or neither, or a
 *   MapRegisterBase without DMA_SYNCHRONOUS_CALLBACK.
 * CancelAdapterChannel(DmaAdapter, DeviceObject, DmaTransferContext)
 *   Takes a queued AllocateAdapterChannelEx request of that context off the queue (its
 *   routine never runs): TRUE; FALSE when none waits (granted already, or never made).
 * MapTransferEx(DmaAdapter, Mdl, MapRegisterBase, Offset, DeviceOffset, Length,
 *               WriteToDevice, ScatterGatherBuffer, ScatterGatherBufferLength, ...)
 *   MapTransfer over the chain from Offset, element after element into the driver's list
 *   buffer, until *Length bytes, the registers or the buffer's room run out; *Length
 *   becomes the bytes mapped. STATUS_SUCCESS; STATUS_BUFFER_TOO_SMALL for a buffer without
 *   room for one element; STATUS_INVALID_PARAMETER for bad arguments;
 *   STATUS_INSUFFICIENT_RESOURCES when nothing could be mapped.
 * GetScatterGatherListEx / BuildScatterGatherListEx(..., DmaTransferContext, Mdl, Offset,
 *                                                   Length, Flags, ExecutionRoutine, ...)
 *   GetScatterGatherList / BuildScatterGatherList from Offset into the chain. With
 *   DMA_SYNCHRONOUS_CALLBACK the list is mapped now or the call fails with
 *   STATUS_INSUFFICIENT_RESOURCES, and with ExecutionRoutine NULL the list comes back in
 *   *ScatterGatherList instead (which must then not be NULL); PutScatterGatherList, or
 *   FreeAdapterObject(DeallocateObject) as Windows has the driver call after the transfer,
 *   ends it. With a routine, *ScatterGatherList (optional) is left NULL: the routine gets
 *   the list (for Build, inside the driver's buffer but not at its first byte).
 * FlushAdapterBuffersEx(DmaAdapter, Mdl, MapRegisterBase, Offset, Length, WriteToDevice)
 *   FlushAdapterBuffers over [Offset, +Length) of the chain: STATUS_SUCCESS, or
 *   STATUS_INVALID_PARAMETER where FlushAdapterBuffers would return FALSE.
 * FreeAdapterObject(DmaAdapter, AllocationAction)
 *   What the holder of the channel's routine would have returned: DeallocateObject releases
 *   the channel and its registers, and ends the lists that synchronous *Ex calls handed
 *   back without a routine; DeallocateObjectKeepRegisters releases the channel only;
 *   KeepObject nothing.
 * FlushDmaBuffer(DmaAdapter, Mdl, ReadOperation)
 *   STATUS_SUCCESS: what this layer hands a device is coherent for it already (common
 *   buffers are mapped so; mapped transfers are synced by the calls that end them).
 * AllocateCommonBufferWithBounds(DmaAdapter, MinimumAddress, MaximumAddress, Length, Flags,
 *                                CacheType, PreferredNode, LogicalAddress)
 *   A common buffer inside [*MinimumAddress, *MaximumAddress] (each optional), or NULL;
 *   Flags must be 0.
 * AllocateCommonBufferVector(DmaAdapter, LowAddress, HighAddress, CacheType, IdealNode,
 *                            Flags, NumberOfElements, SizeOfElements, VectorOut)
 *   NumberOfElements common buffers inside [LowAddress, HighAddress], all or none:
 *   STATUS_SUCCESS; STATUS_INSUFFICIENT_RESOURCES; STATUS_INVALID_PARAMETER for a count or
 *   size of 0, a size above 4 GiB or Flags. GetCommonBufferFromVectorByIndex reads one
 *   (NULL and 0 for an index out of range or freed); FreeCommonBufferFromVector frees one;
 *   FreeCommonBufferVector frees the rest and the vector.
 * ConfigureAdapterChannel, CancelMappedTransfer (system DMA), AllocateDomainCommonBuffer,
 * JoinDmaDomain, LeaveDmaDomain (DMA domains): STATUS_NOT_SUPPORTED; GetDmaDomain: NULL.
 * CreateCommonBufferFromMdl: STATUS_NOT_SUPPORTED, *LogicalAddress 0: dmahal makes common
 *   buffers of memory it allocates for the device, not of memory the driver got elsewhere.
 */

/* ------------------------------------------------------------------------------------------
 * IoGetDmaAdapter, and the bridge to dmahal's own handles
 * ------------------------------------------------------------------------------------------ */

/**
 * Gets a DMA adapter for a device.
 *
 * The description is translated into a struct dmahal_desc and handed to
 * dmahal_adapter_get():
 *  - Master must be TRUE (there is no system DMA controller) and Reserved1 FALSE;
 *  - address width: version 3 uses DmaAddressWidth (24..64 accepted); versions 0-2 use
 *    64 bits if Dma64BitAddresses, else 32 bits if Dma32BitAddresses or if the device does
 *    scatter/gather on PCI (InterfaceType PCIBus, or InterfaceTypeUndefined, which resolves
 *    to the PCI bus every dmahal device sits on), else 24 bits, as Windows' HAL does;
 *  - *NumberOfMapRegisters is computed as Windows' x86 HAL computes it: MaximumLength is
 *    limited to 2 GiB (its top bit dropped), then BYTES_TO_PAGES(MaximumLength) + 1 with the
 *    platform's page size, capped at 16 (a 64 KiB transfer) unless the device does
 *    scatter/gather on PCI (or InterfaceTypeUndefined) or EISA;
 *  - the dmahal adapter's largest transfer is what those N map registers map when
 *    page-aligned, N pages (so dmahal_adapter_map_registers(), which allows for an
 *    unaligned start, says N + 1); the routines refuse only transfers needing more than N;
 *  - ScatterGather lets a transfer use as many elements as it has map registers; without
 *    it, one;
 *  - cache coherence is the platform's: a description has no word for it.
 *  - the adapter's map registers are reserved in its bounce pool now (where transfers
 *    bounce), so that common buffers allocated later cannot take the low memory a full
 *    transfer of a 24- or 28-bit device needs.
 * DMA_ADAPTER.Version is 1 for every version; the operations are the description
 * version's (see Size above).
 *
 * @param PhysicalDeviceObject  from dmahal_wdm_device().
 * @param DeviceDescription     the device's capabilities; not modified.
 * @param NumberOfMapRegisters  receives the map register count; 0 on failure.
 * @return the adapter, released with its PutDmaAdapter; NULL for NULL arguments, a device
 *         object not from dmahal_wdm_device(), a Version above 3, a subordinate (non-master)
 *         device, Reserved1 set, an address width dmahal cannot serve, or no memory.
 */
PDMA_ADAPTER IoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject,
                             PDEVICE_DESCRIPTION DeviceDescription, PULONG NumberOfMapRegisters);

/**
 * Returns the DEVICE_OBJECT that stands for a dmahal device: the PDO a driver passes to
 * IoGetDmaAdapter. Every call for the same device returns the same object, which lives
 * until the device closes (closing it also releases the device's DMA adapters' Windows
 * wrappers; a driver must not use them after). Thread-safe.
 *
 * @return the object; NULL for NULL or when memory runs out.
 */
PDEVICE_OBJECT dmahal_wdm_device(struct dmahal_device *d);

/**
 * Returns the dmahal adapter behind a DMA_ADAPTER from IoGetDmaAdapter, for what has no
 * Windows name yet (dmahal_common_sync, dmahal_adapter_desc, ...). The driver must not put
 * it: PutDmaAdapter does.
 *
 * @return the adapter; NULL for NULL or an adapter IoGetDmaAdapter did not make (told by a
 *         mark it leaves behind the DMA_ADAPTER, so what is passed must be at least that
 *         large: anything else is undefined, as it is on Windows).
 */
struct dmahal_adapter *dmahal_wdm_adapter(PDMA_ADAPTER DmaAdapter);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_WDM_H */
