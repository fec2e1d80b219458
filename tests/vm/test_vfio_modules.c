/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_modules.c - the vfio platform's messages when the kernel side is missing: the
 * type1 IOMMU backend unloaded, or VFIO altogether. Runs in the test guest, which it leaves
 * as it found it: every case loads the modules back (from $DMAHAL_VM_MODULES, in the order
 * of /modules.order) before it checks anything, and checks that the devices came back.
 */
#include "vm.h"

#include <dmahal/dmahal.h>

static int sh(const char *fmt, const char *arg)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg);
    printf("$ %s\n", cmd);
    fflush(stdout);
    return system(cmd);
}

/* Loads every module of the guest's list back, those still loaded skipped. */
static int reload_all(void)
{
    return sh("for m in $(cat %s/../modules.order); do grep -q \"^$m \" /proc/modules || "
              "insmod %s/$m.ko || exit 1; done; sleep 0.2",
              vm_dev("DMAHAL_VM_MODULES"));
}

/* The device works again: bound to vfio-pci, its BAR answering. */
static void check_edu_back(void)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;

    CHECK_OK(dmahal_platform_open("vfio", &p));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 0), 0x010000edu);
    dmahal_platform_close(p);
}

TEST(type1_backend_unloaded)
{
    struct dmahal_platform *p = (void *)1;
    struct vm_capture c;
    int rc, removed, back;

    removed = sh("rmmod vfio_iommu_type1", "");
    vm_capture_begin(&c);
    rc = dmahal_platform_open("vfio", &p);
    vm_capture_end(&c);
    back = reload_all();
    CHECK_EQ(removed, 0);
    CHECK_EQ(back, 0);
    CHECK_ERR(rc, -ENOTSUP);
    CHECK(p == NULL);
    CHECK_CONTAINS(c.text, "modprobe vfio_iommu_type1");
    check_edu_back();
}

TEST(vfio_unloaded)
{
    struct dmahal_platform *p = (void *)1;
    struct vm_capture c;
    int rc, removed, back;

    removed = sh("rmmod vfio_pci vfio_pci_core vfio_iommu_type1 vfio_virqfd vfio", "");
    vm_capture_begin(&c);
    rc = dmahal_platform_open("vfio", &p);
    vm_capture_end(&c);
    back = reload_all();
    CHECK_EQ(removed, 0);
    CHECK_EQ(back, 0);
    CHECK_ERR(rc, -ENODEV);
    CHECK(p == NULL);
    CHECK_CONTAINS(c.text, "/dev/vfio/vfio is missing: load VFIO with modprobe vfio-pci");
    /* vfio-pci, loaded again, takes the devices back through their driver_override. */
    check_edu_back();
}
