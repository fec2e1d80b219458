/* SPDX-License-Identifier: MIT */
/*
 * devices.c - `dmahal devices`, `dmahal bind` and `dmahal unbind`: what a platform can see
 * and open, and giving a PCI device to vfio-pci (or back) through sysfs driver_override, as
 * dpdk-devbind.py does. Binding refuses a device whose IOMMU group holds other devices bound
 * to kernel drivers: VFIO could not open the group, and taking those devices from their
 * drivers is not this command's to decide.
 */
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSFS_PCI "/sys/bus/pci"

int tool_devices(const char *platform)
{
    struct dmahal_device_info *v;
    int n;

    if (!platform || !*platform)
        platform = getenv("DMAHAL_PLATFORM");
    if (!platform || !*platform)
        platform = "vfio";
    n = dmahal_device_list(platform, &v);
    if (n < 0) {
        fprintf(stderr, "dmahal devices: cannot list the devices of \"%s\": %s\n", platform,
                dmahal_strerror(n));
        return TOOL_EXIT_FAIL;
    }
    printf("%-14s %-9s %-6s %-5s %-12s %s\n", "DEVICE", "ID", "CLASS", "GROUP", "DRIVER",
           "OPENS (else the fix)");
    for (int i = 0; i < n; i++) {
        char group[16] = "-";

        if (v[i].iommu_group >= 0)
            snprintf(group, sizeof(group), "%d", v[i].iommu_group);
        printf("%-14s %04x:%04x %06x %-5s %-12s %s%s\n", v[i].name, v[i].vendor, v[i].device,
               v[i].class_code, group, v[i].driver[0] ? v[i].driver : "-",
               v[i].openable ? "yes" : "no: ", v[i].fix);
    }
    free(v);
    return TOOL_EXIT_OK;
}

/* "BB:SS.F" or "DDDD:BB:SS.F", to what sysfs names the device; false if it is neither. */
static bool bdf_canonical(const char *in, char *out, size_t size)
{
    unsigned dom = 0, bus, slot, fn;
    char tail;

    if (sscanf(in, "%4x:%2x:%2x.%1x%c", &dom, &bus, &slot, &fn, &tail) == 4 ||
        (dom = 0, sscanf(in, "%2x:%2x.%1x%c", &bus, &slot, &fn, &tail) == 3)) {
        if (slot > 0x1f || fn > 7)
            return false;
        snprintf(out, size, "%04x:%02x:%02x.%x", dom, bus, slot, fn);
        return true;
    }
    return false;
}

static int sysfs_write(const char *path, const char *val)
{
    FILE *f = fopen(path, "w");
    int rc = 0;

    if (!f)
        return -errno;
    if (fputs(val, f) == EOF)
        rc = -errno;
    if (fclose(f) == EOF && rc == 0)
        rc = -errno;
    return rc;
}

/* The driver bound to @bdf, "" for none. */
static void driver_of(const char *bdf, char *out, size_t size)
{
    char path[PATH_MAX], link[PATH_MAX];
    ssize_t n;

    snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/driver", bdf);
    n = readlink(path, link, sizeof(link) - 1);
    out[0] = '\0';
    if (n < 0)
        return;
    link[n] = '\0';
    snprintf(out, size, "%.63s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
}

/* Refuses when another device of @bdf's IOMMU group is bound to a kernel driver. */
static int group_check(const char *bdf)
{
    struct dmahal_device_info *v;
    int n = dmahal_device_list("vfio", &v), group = -1, bad = 0;

    if (n < 0) {
        fprintf(stderr, "dmahal bind: cannot read " SYSFS_PCI ": %s\n", dmahal_strerror(n));
        return TOOL_EXIT_FAIL;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, bdf) == 0)
            group = v[i].iommu_group;
    if (group < 0) {
        fprintf(stderr,
                "dmahal bind: %s has no IOMMU group: the IOMMU is off (enable VT-d/AMD-Vi, boot "
                "with intel_iommu=on or amd_iommu=on)\n",
                bdf);
        free(v);
        return TOOL_EXIT_FAIL;
    }
    for (int i = 0; i < n; i++) {
        const char *drv = v[i].driver;

        if (v[i].iommu_group != group || strcmp(v[i].name, bdf) == 0 || !*drv ||
            strcmp(drv, "vfio-pci") == 0 || strcmp(drv, "pci-stub") == 0 ||
            strcmp(drv, "pcieport") == 0)
            continue;
        fprintf(stderr,
                "dmahal bind: refused: %s shares IOMMU group %d with %s, bound to %s; VFIO opens "
                "a group only when none of its devices has a kernel driver (bind %s first, if "
                "it may go)\n",
                bdf, group, v[i].name, drv, v[i].name);
        bad = 1;
    }
    free(v);
    return bad ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

int tool_bind(const char *arg, const char *driver)
{
    char bdf[32], path[PATH_MAX], now[64];
    int rc;

    if (!driver)
        driver = "vfio-pci";
    if (!bdf_canonical(arg, bdf, sizeof(bdf))) {
        fprintf(stderr, "dmahal bind: \"%s\" is not a PCI address (DDDD:BB:SS.F)\n", arg);
        return TOOL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s", bdf);
    if (access(path, F_OK)) {
        fprintf(stderr, "dmahal bind: no PCI device %s (dmahal devices lists them)\n", bdf);
        return TOOL_EXIT_FAIL;
    }
    snprintf(path, sizeof(path), SYSFS_PCI "/drivers/%s", driver);
    if (access(path, F_OK)) {
        fprintf(stderr, "dmahal bind: driver %s is not loaded: modprobe %s\n", driver, driver);
        return TOOL_EXIT_FAIL;
    }
    if (strcmp(driver, "vfio-pci") == 0 && group_check(bdf) != TOOL_EXIT_OK)
        return TOOL_EXIT_FAIL;
    driver_of(bdf, now, sizeof(now));
    if (strcmp(now, driver) == 0) {
        printf("%s is bound to %s already\n", bdf, driver);
        return TOOL_EXIT_OK;
    }
    snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/driver_override", bdf);
    rc = sysfs_write(path, driver);
    if (rc == 0 && now[0]) {
        snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/driver/unbind", bdf);
        rc = sysfs_write(path, bdf);
    }
    if (rc == 0)
        rc = sysfs_write(SYSFS_PCI "/drivers_probe", bdf);
    if (rc) {
        fprintf(stderr, "dmahal bind: cannot write %s: %s%s\n", path, strerror(-rc),
                rc == -EACCES || rc == -EPERM ? " (run as root)" : "");
        return TOOL_EXIT_FAIL;
    }
    driver_of(bdf, now, sizeof(now));
    if (strcmp(now, driver) != 0) {
        fprintf(stderr, "dmahal bind: %s did not bind to %s (it is bound to %s); see dmesg\n", bdf,
                driver, now[0] ? now : "no driver");
        return TOOL_EXIT_FAIL;
    }
    printf("%s bound to %s\n", bdf, driver);
    return TOOL_EXIT_OK;
}

int tool_unbind(const char *arg)
{
    char bdf[32], path[PATH_MAX], now[64];
    int rc = 0;

    if (!bdf_canonical(arg, bdf, sizeof(bdf))) {
        fprintf(stderr, "dmahal unbind: \"%s\" is not a PCI address (DDDD:BB:SS.F)\n", arg);
        return TOOL_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s", bdf);
    if (access(path, F_OK)) {
        fprintf(stderr, "dmahal unbind: no PCI device %s (dmahal devices lists them)\n", bdf);
        return TOOL_EXIT_FAIL;
    }
    driver_of(bdf, now, sizeof(now));
    if (now[0]) {
        snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/driver/unbind", bdf);
        rc = sysfs_write(path, bdf);
    }
    /* Forget the override, so that the next probe may give it its own driver again. */
    if (rc == 0) {
        snprintf(path, sizeof(path), SYSFS_PCI "/devices/%s/driver_override", bdf);
        rc = sysfs_write(path, "\n");
    }
    if (rc) {
        fprintf(stderr, "dmahal unbind: cannot write %s: %s%s\n", path, strerror(-rc),
                rc == -EACCES || rc == -EPERM ? " (run as root)" : "");
        return TOOL_EXIT_FAIL;
    }
    if (now[0])
        printf("%s unbound from %s\n", bdf, now);
    else
        printf("%s was bound to no driver\n", bdf);
    return TOOL_EXIT_OK;
}
