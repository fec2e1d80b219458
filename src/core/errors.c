/* errors.c - one table names every code the library returns. */
#include "core/core.h"

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
    {ENXIO, "ENXIO", "no such device or address"},
    {ERANGE, "ERANGE", "value out of range"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {ETIMEDOUT, "ETIMEDOUT", "timed out"},
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
