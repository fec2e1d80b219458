/* SPDX-License-Identifier: MIT */
/*
 * kmdf_edu.h - a driver for QEMU's edu device written as a KMDF driver writes its DMA: a
 * DMA enabler (packet profile, the device's 28 address bits), a common buffer, and one DMA
 * transaction per direction whose transfers EvtProgramDma programs into the device's DMA
 * engine. The device (docs/devices/edu.md) copies between host memory and a 4 KiB buffer
 * of its own.
 */
#ifndef KMDF_EDU_H
#define KMDF_EDU_H

#include <dmahal/wdf.h>

#include "edu/edu_regs.h" /* EDU_BUF_SIZE, EDU_DMA_LIMIT */

/** The enabler's MaximumLength: a transaction longer than this is split into transfers. */
#define EDU_MAX_TRANSFER 1024u

typedef struct _EDU_EXTENSION EDU_EXTENSION, *PEDU_EXTENSION;

/**
 * What EvtPrepareHardware does: checks the device's identity, creates the DMA enabler, the
 * common buffer and the two transactions. STATUS_SUCCESS, with *Extension; else the failing
 * call's status (STATUS_DEVICE_DATA_ERROR for a device that is not an edu).
 */
NTSTATUS EduPrepareHardware(WDFDEVICE Device, struct dmahal_device *Hw, PEDU_EXTENSION *Extension);

/** What EvtReleaseHardware does: deletes the enabler (and with it the buffer and the
 *  transactions). NULL does nothing. */
VOID EduReleaseHardware(PEDU_EXTENSION Extension);

/**
 * Moves Length bytes between Buffer and the device's buffer at DeviceOffset, through a DMA
 * transaction (WriteToDevice: host to device). Returns when the transaction is complete,
 * with the bytes moved in *Transferred and the transfers it took in *Transfers.
 * STATUS_INVALID_PARAMETER for a range outside EDU_DMA_LIMIT; else the transaction's.
 */
NTSTATUS EduTransfer(PEDU_EXTENSION Extension, PVOID Buffer, ULONG Length, ULONG DeviceOffset,
                     BOOLEAN WriteToDevice, BOOLEAN RequireSingleTransfer, size_t *Transferred,
                     ULONG *Transfers);

/** Copies Length bytes of the device buffer at DeviceOffset into the common buffer and back,
 *  and checks them: programs the device with the common buffer's logical address. */
NTSTATUS EduCommonBufferRoundTrip(PEDU_EXTENSION Extension, ULONG DeviceOffset, ULONG Length);

#endif /* KMDF_EDU_H */
