/* SPDX-License-Identifier: MIT */
/*
 * wdf.h - KMDF's DMA objects over the Windows names of wdm.h: DMA enablers, common buffers
 * and DMA transactions, so that the DMA parts of a KMDF driver compile and run unchanged:
 *
 *     WDF_DMA_ENABLER_CONFIG_INIT(&dmaConfig, WdfDmaProfileScatterGather64Duplex, MaxLength);
 *     status = WdfDmaEnablerCreate(Device, &dmaConfig, WDF_NO_OBJECT_ATTRIBUTES, &Enabler);
 *     status = WdfCommonBufferCreate(Enabler, Size, WDF_NO_OBJECT_ATTRIBUTES, &CommonBuffer);
 *     Base = WdfCommonBufferGetAlignedVirtualAddress(CommonBuffer);
 *     BaseLA = WdfCommonBufferGetAlignedLogicalAddress(CommonBuffer);
 *     status = WdfDmaTransactionCreate(Enabler, WDF_NO_OBJECT_ATTRIBUTES, &Transaction);
 *     status = WdfDmaTransactionInitialize(Transaction, EvtProgramDma,
 *                                          WdfDmaDirectionWriteToDevice, Mdl, Va, Length);
 *     status = WdfDmaTransactionExecute(Transaction, WDF_NO_CONTEXT);
 *     ... the device interrupts; in the DPC:
 *     if (WdfDmaTransactionDmaCompleted(Transaction, &status))
 *         WdfDmaTransactionRelease(Transaction);
 *
 * where Device is dmahal_wdf_device(dev) for a device opened with dmahal_device_open().
 *
 * What KMDF does and how much is here:
 *  - an enabler is IoGetDmaAdapter for a profile (packet or scatter/gather, 32 or 64 bits;
 *    the duplex profiles share one adapter for both directions) and a MaximumLength;
 *  - a common buffer is AllocateCommonBuffer, aligned to what the device and the buffer's
 *    configuration require;
 *  - a transaction maps an MDL's buffer in transfers of at most the enabler's (or the
 *    transaction's) maximum length, through GetScatterGatherList: the framework calls
 *    EvtProgramDma with each transfer's SCATTER_GATHER_LIST, and the driver reports each
 *    transfer's end with WdfDmaTransactionDmaCompleted(WithLength, Final), which starts the
 *    next one (calling EvtProgramDma again before it returns) until the whole length is
 *    done. Memory the device cannot reach, or a layout it cannot take, is bounced by the
 *    map registers underneath, as on Windows.
 *
 * Out of scope, because they have no DMA role: the driver and device objects' other
 * methods (WdfDriverCreate, WdfDeviceCreate, PnP and power callbacks), queues and requests
 * (WdfDmaTransactionInitializeUsingRequest therefore too), interrupts and DPCs, I/O
 * targets, object context areas (attributes are accepted and ignored), locks, timers, work
 * items and the registry. The enabler's PnP callbacks (EvtDmaEnablerFill, ...) are accepted
 * and never called: there is no power management. System-DMA profiles are refused.
 *
 * Objects are not thread-safe against themselves (KMDF's DMA transaction methods are not
 * either); distinct objects may be used from distinct threads.
 */
#ifndef DMAHAL_WDF_H
#define DMAHAL_WDF_H

#include <dmahal/wdm.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Handles, attributes, statuses
 * ------------------------------------------------------------------------------------------ */

typedef struct WDFOBJECT__ *WDFOBJECT;
typedef struct WDFDEVICE__ *WDFDEVICE;
typedef struct WDFDMAENABLER__ *WDFDMAENABLER;
typedef struct WDFCOMMONBUFFER__ *WDFCOMMONBUFFER;
typedef struct WDFDMATRANSACTION__ *WDFDMATRANSACTION;
typedef PVOID WDFCONTEXT;

#define WDF_NO_HANDLE            NULL
#define WDF_NO_CONTEXT           NULL
#define WDF_NO_OBJECT_ATTRIBUTES NULL

/** KMDF's object attributes: accepted and ignored (no context areas, no cleanup callbacks). */
typedef struct _WDF_OBJECT_ATTRIBUTES {
    /** @{ */
    /** KMDF's members, in its order: WDF_OBJECT_ATTRIBUTES_INIT sets Size, dmahal ignores the rest.
     */
    ULONG Size;
    PVOID EvtCleanupCallback;
    PVOID EvtDestroyCallback;
    int ExecutionLevel;
    int SynchronizationScope;
    WDFOBJECT ParentObject;
    size_t ContextSizeOverride;
    const void *ContextTypeInfo;
    /** @} */
} WDF_OBJECT_ATTRIBUTES, *PWDF_OBJECT_ATTRIBUTES;

static inline VOID WDF_OBJECT_ATTRIBUTES_INIT(PWDF_OBJECT_ATTRIBUTES Attributes)
{
    RtlZeroMemory(Attributes, sizeof(*Attributes));
    Attributes->Size = sizeof(*Attributes);
}

/* KMDF's own statuses (facility 0x20), with Windows' values. */
#define STATUS_WDF_BUSY           ((NTSTATUS)0xC0200204L) /**< single-packet device busy */
#define STATUS_WDF_TOO_FRAGMENTED ((NTSTATUS)0xC020020AL) /**< more elements or transfers */

/* Alignment requirements: the alignment minus one, as for WdfDeviceSetAlignmentRequirement. */
#define FILE_BYTE_ALIGNMENT     0x00000000
#define FILE_WORD_ALIGNMENT     0x00000001
#define FILE_LONG_ALIGNMENT     0x00000003
#define FILE_QUAD_ALIGNMENT     0x00000007
#define FILE_OCTA_ALIGNMENT     0x0000000f
#define FILE_32_BYTE_ALIGNMENT  0x0000001f
#define FILE_64_BYTE_ALIGNMENT  0x0000003f
#define FILE_128_BYTE_ALIGNMENT 0x0000007f
#define FILE_256_BYTE_ALIGNMENT 0x000000ff
#define FILE_512_BYTE_ALIGNMENT 0x000001ff

/* ------------------------------------------------------------------------------------------
 * The device: only what DMA asks of it
 * ------------------------------------------------------------------------------------------ */

/**
 * Returns the WDFDEVICE that stands for a dmahal device (what WdfDeviceCreate gives a KMDF
 * driver). Every call for the same device returns the same handle, which lives until the
 * device closes; DMA objects still open then are freed with it (their common buffers as
 * leaks, which the verifier reports). Thread-safe.
 * @return the handle; NULL for NULL or when memory runs out.
 */
WDFDEVICE dmahal_wdf_device(struct dmahal_device *d);

/** The DEVICE_OBJECT of a WDFDEVICE (its PDO too: there is one object per device). */
PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE Device);
/** The same: the physical device object. */
PDEVICE_OBJECT WdfDeviceWdmGetPhysicalDevice(WDFDEVICE Device);

/**
 * Sets the alignment (minus one: FILE_*_ALIGNMENT) that common buffers created after this
 * must have; one below a page is met by every common buffer already. Ignored for a NULL
 * device or a value that is not a power of two minus one.
 */
VOID WdfDeviceSetAlignmentRequirement(WDFDEVICE Device, ULONG AlignmentRequirement);
/** The device's alignment requirement (FILE_BYTE_ALIGNMENT until set); 0 for NULL. */
ULONG WdfDeviceGetAlignmentRequirement(WDFDEVICE Device);

/* ------------------------------------------------------------------------------------------
 * DMA enablers
 * ------------------------------------------------------------------------------------------ */

/** What the device's DMA engine is. */
typedef enum _WDF_DMA_PROFILE {
    WdfDmaProfileInvalid = 0,
    WdfDmaProfilePacket,                /**< one element per transfer, 32 bits */
    WdfDmaProfileScatterGather,         /**< scatter/gather lists, 32 bits */
    WdfDmaProfilePacket64,              /**< one element, 64 bits */
    WdfDmaProfileScatterGather64,       /**< scatter/gather lists, 64 bits */
    WdfDmaProfileScatterGatherDuplex,   /**< as ScatterGather, both directions at once */
    WdfDmaProfileScatterGather64Duplex, /**< as ScatterGather64, both directions at once */
    WdfDmaProfileSystem,                /**< system DMA: refused */
    WdfDmaProfileSystemDuplex,          /**< system DMA: refused */
    WdfDmaProfileMaximum
} WDF_DMA_PROFILE;

/** Which way a transaction moves data. */
typedef enum _WDF_DMA_DIRECTION {
    WdfDmaDirectionReadFromDevice = FALSE,
    WdfDmaDirectionWriteToDevice = TRUE
} WDF_DMA_DIRECTION;

/** Flags of WDF_DMA_ENABLER_CONFIG. */
typedef enum _WDF_DMA_ENABLER_CONFIG_FLAGS {
    /** Every transaction of the enabler must complete in one transfer. */
    WDF_DMA_ENABLER_CONFIG_REQUIRE_SINGLE_TRANSFER = 0x1
} WDF_DMA_ENABLER_CONFIG_FLAGS;

/** WdfDmaEnablerSetMaximumScatterGatherElements' "no limit". */
#define WDF_DMA_ENABLER_UNLIMITED_FRAGMENTS ((ULONG)-1)

typedef NTSTATUS EVT_WDF_DMA_ENABLER_FILL(WDFDMAENABLER DmaEnabler);
typedef EVT_WDF_DMA_ENABLER_FILL *PFN_WDF_DMA_ENABLER_FILL;
typedef NTSTATUS EVT_WDF_DMA_ENABLER_FLUSH(WDFDMAENABLER DmaEnabler);
typedef EVT_WDF_DMA_ENABLER_FLUSH *PFN_WDF_DMA_ENABLER_FLUSH;
typedef NTSTATUS EVT_WDF_DMA_ENABLER_ENABLE(WDFDMAENABLER DmaEnabler);
typedef EVT_WDF_DMA_ENABLER_ENABLE *PFN_WDF_DMA_ENABLER_ENABLE;
typedef NTSTATUS EVT_WDF_DMA_ENABLER_DISABLE(WDFDMAENABLER DmaEnabler);
typedef EVT_WDF_DMA_ENABLER_DISABLE *PFN_WDF_DMA_ENABLER_DISABLE;
typedef NTSTATUS EVT_WDF_DMA_ENABLER_SELFMANAGED_IO_START(WDFDMAENABLER DmaEnabler);
typedef EVT_WDF_DMA_ENABLER_SELFMANAGED_IO_START *PFN_WDF_DMA_ENABLER_SELFMANAGED_IO_START;
typedef NTSTATUS EVT_WDF_DMA_ENABLER_SELFMANAGED_IO_STOP(WDFDMAENABLER DmaEnabler);
typedef EVT_WDF_DMA_ENABLER_SELFMANAGED_IO_STOP *PFN_WDF_DMA_ENABLER_SELFMANAGED_IO_STOP;

/** An enabler's configuration: WDF_DMA_ENABLER_CONFIG_INIT it, then change what differs. */
typedef struct _WDF_DMA_ENABLER_CONFIG {
    ULONG Size;                                   /**< sizeof(WDF_DMA_ENABLER_CONFIG) */
    WDF_DMA_PROFILE Profile;                      /**< the device's DMA engine */
    size_t MaximumLength;                         /**< the longest transfer, 1 .. 2^32 - 1 bytes */
    PFN_WDF_DMA_ENABLER_FILL EvtDmaEnablerFill;   /**< never called */
    PFN_WDF_DMA_ENABLER_FLUSH EvtDmaEnablerFlush; /**< never called */
    PFN_WDF_DMA_ENABLER_DISABLE EvtDmaEnablerDisable;                         /**< never called */
    PFN_WDF_DMA_ENABLER_ENABLE EvtDmaEnablerEnable;                           /**< never called */
    PFN_WDF_DMA_ENABLER_SELFMANAGED_IO_START EvtDmaEnablerSelfManagedIoStart; /**< never */
    PFN_WDF_DMA_ENABLER_SELFMANAGED_IO_STOP EvtDmaEnablerSelfManagedIoStop;   /**< never */
    ULONG AddressWidthOverride;  /**< 0, or the bits the device drives, up to the profile's */
    ULONG WdmDmaVersionOverride; /**< 0 (version 2 unless a width override needs 3), 2 or 3 */
    ULONG Flags;                 /**< WDF_DMA_ENABLER_CONFIG_FLAGS */
} WDF_DMA_ENABLER_CONFIG, *PWDF_DMA_ENABLER_CONFIG;

static inline VOID WDF_DMA_ENABLER_CONFIG_INIT(PWDF_DMA_ENABLER_CONFIG Config,
                                               WDF_DMA_PROFILE Profile, size_t MaximumLength)
{
    RtlZeroMemory(Config, sizeof(*Config));
    Config->Size = sizeof(*Config);
    Config->Profile = Profile;
    Config->MaximumLength = MaximumLength;
}

/**
 * Creates a DMA enabler: a DMA adapter for the device, described by the profile.
 *
 * @param Config  Size sizeof(WDF_DMA_ENABLER_CONFIG); a packet or scatter/gather profile; a
 *                MaximumLength of 1 .. 2^32 - 1.
 * @return STATUS_SUCCESS, with *DmaEnablerHandle; STATUS_INVALID_PARAMETER for NULL
 *         arguments, a bad Size, profile, MaximumLength, width or version override, or a
 *         device not from dmahal_wdf_device(); STATUS_NOT_SUPPORTED for the system
 *         profiles; STATUS_INSUFFICIENT_RESOURCES when IoGetDmaAdapter fails.
 *         *DmaEnablerHandle is NULL on failure.
 */
NTSTATUS WdfDmaEnablerCreate(WDFDEVICE Device, PWDF_DMA_ENABLER_CONFIG Config,
                             PWDF_OBJECT_ATTRIBUTES Attributes, WDFDMAENABLER *DmaEnablerHandle);

/**
 * Limits the elements of a transfer's list (default: 1 for packet profiles, else
 * unlimited): a transfer whose list has more fails with STATUS_WDF_TOO_FRAGMENTED.
 * Ignored for NULL or 0.
 */
VOID WdfDmaEnablerSetMaximumScatterGatherElements(WDFDMAENABLER DmaEnabler,
                                                  size_t MaximumFragments);
/** The element limit; 0 for NULL. */
size_t WdfDmaEnablerGetMaximumScatterGatherElements(WDFDMAENABLER DmaEnabler);
/** The configured MaximumLength; 0 for NULL. */
size_t WdfDmaEnablerGetMaximumLength(WDFDMAENABLER DmaEnabler);
/** The DMA_ADAPTER underneath (one for both directions); NULL for NULL. */
PDMA_ADAPTER WdfDmaEnablerWdmGetDmaAdapter(WDFDMAENABLER DmaEnabler,
                                           WDF_DMA_DIRECTION DmaDirection);

/* ------------------------------------------------------------------------------------------
 * Common buffers
 * ------------------------------------------------------------------------------------------ */

/** A common buffer's configuration. */
typedef struct _WDF_COMMON_BUFFER_CONFIG {
    ULONG Size;                 /**< sizeof(WDF_COMMON_BUFFER_CONFIG) */
    ULONG AlignmentRequirement; /**< the alignment minus one (FILE_*_ALIGNMENT) */
} WDF_COMMON_BUFFER_CONFIG, *PWDF_COMMON_BUFFER_CONFIG;

static inline VOID WDF_COMMON_BUFFER_CONFIG_INIT(PWDF_COMMON_BUFFER_CONFIG Config,
                                                 ULONG AlignmentRequirement)
{
    RtlZeroMemory(Config, sizeof(*Config));
    Config->Size = sizeof(*Config);
    Config->AlignmentRequirement = AlignmentRequirement;
}

/**
 * Creates a common buffer of Length bytes (AllocateCommonBuffer, not cached: coherent for
 * the device everywhere), aligned as the device requires (WdfDeviceSetAlignmentRequirement).
 * Zeroed. Deleted with WdfObjectDelete, or with its enabler.
 *
 * @return STATUS_SUCCESS, with *CommonBuffer; STATUS_INVALID_PARAMETER for NULL arguments or
 *         a Length of 0; STATUS_INSUFFICIENT_RESOURCES when memory the device reaches runs
 *         out. *CommonBuffer is NULL on failure.
 */
NTSTATUS WdfCommonBufferCreate(WDFDMAENABLER DmaEnabler, size_t Length,
                               PWDF_OBJECT_ATTRIBUTES Attributes, WDFCOMMONBUFFER *CommonBuffer);

/**
 * WdfCommonBufferCreate, aligned to the larger of the device's and Config's requirement
 * (a power of two minus one: STATUS_INVALID_PARAMETER otherwise, or for a bad Size).
 */
NTSTATUS WdfCommonBufferCreateWithConfig(WDFDMAENABLER DmaEnabler, size_t Length,
                                         PWDF_COMMON_BUFFER_CONFIG Config,
                                         PWDF_OBJECT_ATTRIBUTES Attributes,
                                         WDFCOMMONBUFFER *CommonBuffer);

/** The buffer's aligned CPU address; NULL for NULL. */
PVOID WdfCommonBufferGetAlignedVirtualAddress(WDFCOMMONBUFFER CommonBuffer);
/** The buffer's aligned logical address (program the device with it); 0 for NULL. */
PHYSICAL_ADDRESS WdfCommonBufferGetAlignedLogicalAddress(WDFCOMMONBUFFER CommonBuffer);
/** The Length it was created with; 0 for NULL. */
size_t WdfCommonBufferGetLength(WDFCOMMONBUFFER CommonBuffer);

/* ------------------------------------------------------------------------------------------
 * DMA transactions
 * ------------------------------------------------------------------------------------------ */

/**
 * Called for each transfer of a transaction, with its list: program the device and return
 * TRUE. Returning FALSE leaves the transfer mapped; the driver then ends the transaction
 * with WdfDmaTransactionDmaCompletedFinal.
 */
typedef BOOLEAN EVT_WDF_PROGRAM_DMA(WDFDMATRANSACTION Transaction, WDFDEVICE Device,
                                    WDFCONTEXT Context, WDF_DMA_DIRECTION Direction,
                                    PSCATTER_GATHER_LIST SgList);
typedef EVT_WDF_PROGRAM_DMA *PFN_WDF_PROGRAM_DMA;

/**
 * Creates a transaction of an enabler; it is reused through Initialize / Release.
 * @return STATUS_SUCCESS; STATUS_INVALID_PARAMETER for NULL arguments;
 *         STATUS_INSUFFICIENT_RESOURCES. *DmaTransaction is NULL on failure.
 */
NTSTATUS WdfDmaTransactionCreate(WDFDMAENABLER DmaEnabler, PWDF_OBJECT_ATTRIBUTES Attributes,
                                 WDFDMATRANSACTION *DmaTransaction);

/**
 * Prepares a transaction over Length bytes of an MDL chain, from VirtualAddress (inside
 * the first MDL's buffer). Nothing is mapped yet.
 *
 * @return STATUS_SUCCESS; STATUS_INVALID_PARAMETER for NULL arguments, a Length of 0, a
 *         VirtualAddress outside the MDL or a chain shorter than Length;
 *         STATUS_INVALID_DEVICE_REQUEST for a transaction initialised already (Release it);
 *         STATUS_WDF_TOO_FRAGMENTED when a single transfer is required and Length is above
 *         the transfer's maximum length.
 */
NTSTATUS WdfDmaTransactionInitialize(WDFDMATRANSACTION DmaTransaction,
                                     PFN_WDF_PROGRAM_DMA EvtProgramDmaFunction,
                                     WDF_DMA_DIRECTION DmaDirection, PMDL Mdl, PVOID VirtualAddress,
                                     size_t Length);

/**
 * Starts the transaction: maps its first transfer (at most the maximum length) and calls
 * EvtProgramDma with its list, before returning when the map registers are free, else
 * later, from the call that freed them.
 *
 * @return STATUS_SUCCESS; STATUS_INVALID_DEVICE_REQUEST for a transaction not initialised
 *         or executing already; STATUS_WDF_TOO_FRAGMENTED when the list has more elements
 *         than the enabler allows (nothing stays mapped); what GetScatterGatherList returns.
 */
NTSTATUS WdfDmaTransactionExecute(WDFDMATRANSACTION DmaTransaction, WDFCONTEXT Context);

/**
 * Ends the current transfer, all of it done: unmaps it (what the device wrote is in the
 * buffer) and starts the next, calling EvtProgramDma before returning.
 * @return TRUE when the transaction is complete (*Status STATUS_SUCCESS, or the error that
 *         ended it); FALSE while transfers remain (*Status STATUS_MORE_PROCESSING_REQUIRED),
 *         or for a transaction with no transfer in flight (*Status
 *         STATUS_INVALID_DEVICE_REQUEST).
 */
BOOLEAN WdfDmaTransactionDmaCompleted(WDFDMATRANSACTION DmaTransaction, NTSTATUS *Status);
/** WdfDmaTransactionDmaCompleted when the device moved only TransferredLength bytes of the
 *  current transfer: the next transfer starts after them. */
BOOLEAN WdfDmaTransactionDmaCompletedWithLength(WDFDMATRANSACTION DmaTransaction,
                                                size_t TransferredLength, NTSTATUS *Status);
/** Ends the transaction after FinalTransferredLength bytes of the current transfer, whatever
 *  remains: TRUE. */
BOOLEAN WdfDmaTransactionDmaCompletedFinal(WDFDMATRANSACTION DmaTransaction,
                                           size_t FinalTransferredLength, NTSTATUS *Status);

/** The bytes the completed transfers moved; 0 for NULL. */
size_t WdfDmaTransactionGetBytesTransferred(WDFDMATRANSACTION DmaTransaction);
/** The length of the transfer in flight (or last started); 0 for NULL. */
size_t WdfDmaTransactionGetCurrentDmaTransferLength(WDFDMATRANSACTION DmaTransaction);
/** The device of the transaction's enabler; NULL for NULL. */
WDFDEVICE WdfDmaTransactionGetDevice(WDFDMATRANSACTION DmaTransaction);

/**
 * Limits this transaction's transfers to MaximumLength bytes (below the enabler's); call it
 * before Initialize. Reset by Release. Ignored for NULL or 0.
 */
VOID WdfDmaTransactionSetMaximumLength(WDFDMATRANSACTION DmaTransaction, size_t MaximumLength);
/** Requires this transaction to complete in one transfer (before Initialize; reset by
 *  Release). The enabler flag WDF_DMA_ENABLER_CONFIG_REQUIRE_SINGLE_TRANSFER sets it for
 *  all. */
VOID WdfDmaTransactionSetSingleTransferRequirement(WDFDMATRANSACTION DmaTransaction,
                                                   BOOLEAN RequireSingleTransfer);

/**
 * Ends the transaction, unmapping a transfer still in flight, so that the object can be
 * initialised again. STATUS_SUCCESS; STATUS_INVALID_PARAMETER for NULL.
 */
NTSTATUS WdfDmaTransactionRelease(WDFDMATRANSACTION DmaTransaction);

/**
 * Deletes a DMA object: a transaction (released first), a common buffer (freed), or an
 * enabler with every common buffer and transaction created from it (its adapter put).
 * A WDFDEVICE is deleted by closing its dmahal device, not here. NULL, or a handle not of
 * these, is ignored.
 */
VOID WdfObjectDelete(WDFOBJECT Object);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_WDF_H */
