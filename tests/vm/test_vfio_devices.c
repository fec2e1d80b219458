/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_devices.c - discovery and binding against the guest's real sysfs: the device
 * list (IDs, class, groups, drivers, the fix for each device vfio cannot open), and the
 * dmahal command (run.sh puts it in /tests): `dmahal devices`; `dmahal unbind` an edu, its
 * open failing with the fix, `dmahal bind` it back and open it; a bind into a group that is
 * not viable refused with the reason.
 */
#include "vm.h"

#include <dmahal/dmahal.h>

#include <sys/wait.h>

/* Runs the dmahal command; its stdout and stderr in @out, its exit status returned. */
static int dmahal_cmd(const char *args, char *out, size_t size)
{
    char cmd[256];
    size_t n = 0;
    FILE *f;
    int st;

    snprintf(cmd, sizeof(cmd), "/tests/dmahal %s 2>&1", args);
    f = popen(cmd, "r");
    CHECK(f != NULL);
    n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    st = pclose(f);
    printf("$ dmahal %s\n%s", args, out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const struct dmahal_device_info *find(const struct dmahal_device_info *v, int n,
                                             const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    test_fail(__FILE__, __LINE__, "%s is not in the device list", name);
    return NULL;
}

TEST(devices_list_the_guest)
{
    static char out[16384];
    struct dmahal_device_info *v;
    const struct dmahal_device_info *x;
    int n = dmahal_device_list("vfio", &v);

    CHECK_GE(n, 6);
    x = find(v, n, vm_dev("DMAHAL_VM_EDU"));
    CHECK_EQ_U(x->vendor, 0x1234);
    CHECK_EQ_U(x->device, 0x11e8);
    CHECK_EQ_U(x->class_code, 0x00ff00);
    CHECK_GE(x->iommu_group, 0);
    CHECK_STR(x->driver, "vfio-pci");
    CHECK(x->openable);
    CHECK_STR(x->fix, "");
    x = find(v, n, vm_dev("DMAHAL_VM_NVME"));
    CHECK_EQ_U(x->class_code, 0x010802);
    CHECK(x->openable);
    x = find(v, n, "0000:00:1f.0");
    CHECK_STR(x->driver, "lpc_ich");
    CHECK(!x->openable);
    CHECK_CONTAINS(x->fix, "dmahal bind 0000:00:1f.0");
    x = find(v, n, vm_dev("DMAHAL_VM_SMBUS"));
    CHECK(!x->openable);
    CHECK_CONTAINS(x->fix, "not viable: 0000:00:1f.0 is bound to lpc_ich");
    free(v);
    CHECK_EQ(dmahal_cmd("devices", out, sizeof(out)), 0);
    CHECK_CONTAINS(out, "1234:11e8 00ff00");
    CHECK_CONTAINS(out, "lpc_ich");
}

TEST(unbind_then_open_fails_with_the_fix_then_bind_opens)
{
    const char *edu = vm_dev("DMAHAL_VM_EDU64");
    static char out[4096];
    char args[64];
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_device_info *v;
    struct vm_capture c;
    int rc, n;

    CHECK_OK(dmahal_platform_open("vfio", &p));
    snprintf(args, sizeof(args), "unbind %s", edu);
    CHECK_EQ(dmahal_cmd(args, out, sizeof(out)), 0);
    CHECK_CONTAINS(out, "unbound from vfio-pci");
    vm_capture_begin(&c);
    rc = dmahal_device_open(p, edu, &d);
    vm_capture_end(&c);
    CHECK_ERR(rc, -ENODEV);
    CHECK_CONTAINS(c.text, "bound to no driver");
    n = dmahal_device_list("vfio", &v);
    CHECK_CONTAINS(find(v, n, edu)->fix, "dmahal bind");
    CHECK(!find(v, n, edu)->openable);
    free(v);
    CHECK_EQ(dmahal_cmd(args, out, sizeof(out)), 0); /* unbound already: says so */
    CHECK_CONTAINS(out, "bound to no driver");
    snprintf(args, sizeof(args), "bind %s", edu);
    CHECK_EQ(dmahal_cmd(args, out, sizeof(out)), 0);
    CHECK_CONTAINS(out, "bound to vfio-pci");
    snprintf(args, sizeof(args), "bind %s vfio-pci", edu);
    CHECK_EQ(dmahal_cmd(args, out, sizeof(out)), 0);
    CHECK_CONTAINS(out, "already");
    CHECK_OK(dmahal_device_open(p, edu, &d));
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(bind_refuses_and_says_why)
{
    static char out[4096];
    char args[64];

    snprintf(args, sizeof(args), "bind %s", vm_dev("DMAHAL_VM_SMBUS"));
    CHECK_EQ(dmahal_cmd(args, out, sizeof(out)), 1);
    CHECK_CONTAINS(out, "refused");
    CHECK_CONTAINS(out, "0000:00:1f.0, bound to lpc_ich");
    CHECK_EQ(dmahal_cmd("bind 0000:00:1e.0", out, sizeof(out)), 1);
    CHECK_CONTAINS(out, "no PCI device 0000:00:1e.0");
    snprintf(args, sizeof(args), "bind %s no-such-driver", vm_dev("DMAHAL_VM_EDU"));
    CHECK_EQ(dmahal_cmd(args, out, sizeof(out)), 1);
    CHECK_CONTAINS(out, "modprobe no-such-driver");
    CHECK_EQ(dmahal_cmd("bind bogus", out, sizeof(out)), 2);
    CHECK_EQ(dmahal_cmd("unbind bogus", out, sizeof(out)), 2);
    CHECK_EQ(dmahal_cmd("unbind", out, sizeof(out)), 2);
}
