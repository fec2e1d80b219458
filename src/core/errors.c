/* SPDX-License-Identifier: MIT */
/* errors.c - one table names every code the library returns. */
#include "core/internal.h"

#include <errno.h>

#ifndef DMAHAL_VERSION_STRING
#define DMAHAL_VERSION_STRING "0.0.0"
#endif

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    {EINVAL, "EINVAL", "invalid argument"},
    {ENOMEM, "ENOMEM", "out of memory the device can reach"},
    {ENOSPC, "ENOSPC", "no map registers or space left"},
    {EFAULT, "EFAULT", "device access outside any mapping (DMA fault)"},
    {ENOTSUP, "ENOTSUP", "not supported on this platform"},
    {EBUSY, "EBUSY", "resource busy"},
    {E2BIG, "E2BIG", "length too large for the adapter or platform"},
    {EEXIST, "EEXIST", "already exists"},
    {ENOENT, "ENOENT", "no such device, model or record"},
    {EACCES, "EACCES", "permission denied"},
    {EPERM, "EPERM", "operation not permitted"},
    {ENODEV, "ENODEV", "no such device or IOMMU"},
    {EIO, "EIO", "I/O error"},
    {ENXIO, "ENXIO", "no such PCI device (at that address or with those IDs)"},
    {ERANGE, "ERANGE", "value out of range"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {ETIMEDOUT, "ETIMEDOUT", "timed out"},
    {EINPROGRESS, "EINPROGRESS", "queued: the callback runs when resources free up"},
    {ECANCELED, "ECANCELED", "cancelled: what it waited for went away first"},
    {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
    {EINTR, "EINTR", "interrupted by a signal"},
    {ELOOP, "ELOOP", "the capability list loops"},
    {EMFILE, "EMFILE", "too many open files"},
    {EDEADLK, "EDEADLK", "would deadlock: called from device work"},
};

const char *dmahal_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err < 0)
        err = -err;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].text;
    return "unknown error";
}

const char *dmahal__errname(int err)
{
    if (err < 0)
        err = -err;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    return "E?";
}

const char *dmahal_version(void)
{
    return DMAHAL_VERSION_STRING;
}

/* ---- the verifier's report kinds (named whether or not this build has the verifier) ---- */

static const char *const kind_names[DMAHAL_REPORT_KINDS] = {
    [DMAHAL_REPORT_VERIFIER_OOM] = "verifier-out-of-memory",
    [DMAHAL_REPORT_BAD_ADAPTER] = "bad-adapter",
    [DMAHAL_REPORT_DOUBLE_FREE] = "double-free",
    [DMAHAL_REPORT_FREE_UNKNOWN] = "free-unknown",
    [DMAHAL_REPORT_FREE_WRONG_LEN] = "free-wrong-length",
    [DMAHAL_REPORT_FREE_WRONG_LA] = "free-wrong-address",
    [DMAHAL_REPORT_FREE_WRONG_ADAPTER] = "free-wrong-adapter",
    [DMAHAL_REPORT_LEAK] = "leak",
    [DMAHAL_REPORT_OVERRUN] = "overrun",
    [DMAHAL_REPORT_UNDERRUN] = "underrun",
    [DMAHAL_REPORT_WRITE_AFTER_FREE] = "write-after-free",
    [DMAHAL_REPORT_DEV_OUT_OF_BOUNDS] = "device-out-of-bounds",
    [DMAHAL_REPORT_DEV_USE_AFTER_FREE] = "device-use-after-free",
    [DMAHAL_REPORT_DEV_WRITE_TO_DEVICE] = "device-write-to-device-mapping",
    [DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS] = "cpu-write-while-device-owns",
    [DMAHAL_REPORT_DOUBLE_UNMAP] = "double-unmap",
    [DMAHAL_REPORT_UNMAP_NOT_MAPPED] = "unmap-not-mapped",
    [DMAHAL_REPORT_SYNC_NOT_MAPPED] = "sync-not-mapped",
    [DMAHAL_REPORT_WRONG_ADAPTER] = "wrong-adapter",
    [DMAHAL_REPORT_SGL_MODIFIED] = "sgl-modified",
    [DMAHAL_REPORT_SYNC_OUT_OF_RANGE] = "sync-out-of-range",
    [DMAHAL_REPORT_TOO_MANY_MAP_REGISTERS] = "too-many-map-registers",
    [DMAHAL_REPORT_FREED_WHILE_MAPPED] = "freed-while-mapped",
    [DMAHAL_REPORT_ZERO_LENGTH_MAP] = "zero-length-map",
    [DMAHAL_REPORT_OVERLAPPING_MAPPINGS] = "overlapping-mappings",
    [DMAHAL_REPORT_NOT_FLUSHED] = "not-flushed",
    [DMAHAL_REPORT_MAP_LEAK] = "map-leak",
    [DMAHAL_REPORT_DEV_USE_AFTER_UNMAP] = "device-use-after-unmap",
    [DMAHAL_REPORT_FREE_WRONG_CACHE] = "free-wrong-cache",
    [DMAHAL_REPORT_NOT_INVALIDATED] = "not-invalidated",
};

const char *dmahal_report_kind_name(int kind)
{
    if (kind <= 0 || kind >= DMAHAL_REPORT_KINDS || !kind_names[kind])
        return "unknown";
    return kind_names[kind];
}
