/* SPDX-License-Identifier: MIT */
/*
 * test_vfio.c - the vfio platform on real (QEMU-emulated) devices, in the test guest:
 * opening, every setup error and its message, BAR access, IOVA windows and widths, and DMA
 * through common buffers. No case here may make the IOMMU fault (run.sh fails the program if
 * the guest kernel logs one); the faults are test_vfio_fault.c's.
 */
#include "vm.h"

#include <dmahal/dmahal.h>

#include "edu/edu_driver.h"

#define EDU_ID 0x010000edu

static struct dmahal_platform *open_vfio(void)
{
    struct dmahal_platform *p = NULL;

    CHECK_OK(dmahal_platform_open("vfio", &p));
    return p;
}

TEST(platform_opens_with_iommu)
{
    struct dmahal_platform *p = open_vfio();

    CHECK_STR(dmahal_platform_name(p), "vfio");
    CHECK_EQ(dmahal_platform_has_iommu(p), 1);
    CHECK_EQ(dmahal_platform_page_size(p), 4096);
    dmahal_platform_close(p);
}

TEST(platform_rejects_options)
{
    struct dmahal_platform *p = (void *)1;
    struct vm_capture c;
    int rc;

    vm_capture_begin(&c);
    rc = dmahal_platform_open("vfio:iommu=on", &p);
    vm_capture_end(&c);
    CHECK_ERR(rc, -EINVAL);
    CHECK_CONTAINS(c.text, "takes no options");
    CHECK(p == NULL);
}

TEST(device_open_malformed_address)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d = (void *)1;
    struct vm_capture c;
    int rc;

    static const char *const bad[] = {"edu",      "0000:00:03.0x", "0000:00:03.8", "0000:00:20.0",
                                      "00:03.0 ", "0:00:03.0",     "+000:00:03.0", ""};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vm_capture_begin(&c);
        rc = dmahal_device_open(p, bad[i], &d);
        vm_capture_end(&c);
        printf("\"%s\": %d\n", bad[i], rc);
        CHECK_ERR(rc, -EINVAL);
        CHECK(d == NULL);
        if (*bad[i]) /* the core refuses "" before the platform sees it */
            CHECK_CONTAINS(c.text, "is not a PCI address");
    }
    dmahal_platform_close(p);
}

TEST(device_open_absent_device)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct vm_capture c;
    int rc;

    vm_capture_begin(&c);
    rc = dmahal_device_open(p, "0000:00:1e.0", &d);
    vm_capture_end(&c);
    CHECK_ERR(rc, -ENXIO); /* an absent device, told apart from an unknown model's -ENOENT */
    CHECK_CONTAINS(c.text, "no PCI device 0000:00:1e.0");
    dmahal_platform_close(p);
}

/* The SATA controller has no driver in the guest: the message gives the bind commands. */
TEST(device_open_unbound_device_names_the_fix)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct vm_capture c;
    int rc;
    const char *msg;

    vm_capture_begin(&c);
    rc = dmahal_device_open(p, "0000:00:1f.2", &d);
    msg = vm_capture_end(&c);
    CHECK_ERR(rc, -ENODEV);
    CHECK_CONTAINS(msg, "bound to no driver");
    CHECK_CONTAINS(msg, "echo vfio-pci > /sys/bus/pci/devices/0000:00:1f.2/driver_override");
    CHECK_CONTAINS(msg, "echo 0000:00:1f.2 > /sys/bus/pci/drivers_probe");
    dmahal_platform_close(p);
}

/* The LPC bridge is bound to lpc_ich: the message says so and how to unbind it. */
TEST(device_open_other_driver_names_the_fix)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct vm_capture c;
    int rc;
    const char *msg;

    vm_capture_begin(&c);
    rc = dmahal_device_open(p, "00:1f.0", &d);
    msg = vm_capture_end(&c);
    CHECK_ERR(rc, -EBUSY);
    CHECK_CONTAINS(msg, "0000:00:1f.0 is bound to lpc_ich, not vfio-pci");
    CHECK_CONTAINS(msg, "echo 0000:00:1f.0 > /sys/bus/pci/devices/0000:00:1f.0/driver/unbind");
    dmahal_platform_close(p);
}

/* The SMBus controller is on vfio-pci, but its group holds the LPC bridge, on lpc_ich. */
TEST(device_open_group_not_viable_names_the_culprit)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct vm_capture c;
    int rc;
    const char *msg;

    vm_capture_begin(&c);
    rc = dmahal_device_open(p, vm_dev("DMAHAL_VM_SMBUS"), &d);
    msg = vm_capture_end(&c);
    CHECK_ERR(rc, -EBUSY);
    CHECK_CONTAINS(msg, "is not viable");
    CHECK_CONTAINS(msg, "0000:00:1f.0: bound to lpc_ich (rebind it to vfio-pci)");
    /* The failed attach left the container usable. */
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 0), EDU_ID);
    dmahal_platform_close(p);
}

/* A group belongs to one container: a second platform cannot take the device. */
TEST(device_open_group_busy_in_other_platform)
{
    struct dmahal_platform *p = open_vfio(), *q = open_vfio();
    struct dmahal_device *d, *e;
    struct vm_capture c;
    int rc;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    vm_capture_begin(&c);
    rc = dmahal_device_open(q, vm_dev("DMAHAL_VM_EDU"), &e);
    vm_capture_end(&c);
    CHECK_ERR(rc, -EBUSY);
    CHECK_CONTAINS(c.text, "open already");
    dmahal_device_close(d);
    /* Released: now the other platform can have it. */
    CHECK_OK(dmahal_device_open(q, vm_dev("DMAHAL_VM_EDU"), &e));
    dmahal_platform_close(q);
    dmahal_platform_close(p);
}

TEST(bar_reads_edu_identification)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    uint64_t size = 0;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(dmahal_device_bar_size(d, 0, &size));
    CHECK_EQ_U(size, 1 << 20);
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 0x00), EDU_ID);
    /* The liveness register inverts what is written: the write reached the device. */
    dmahal_mmio_write32(d, 0, 0x04, 0xa5a5f00d);
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 0x04), ~UINT32_C(0xa5a5f00d));
    /* 64-bit registers: the DMA count takes a full word. */
    dmahal_mmio_write64(d, 0, 0x90, UINT64_C(0x123456789a));
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0x90), UINT64_C(0x123456789a));
    dmahal_mmio_write64(d, 0, 0x90, 0);
    dmahal_platform_close(p);
}

TEST(dump_shows_windows_and_groups)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d, *e;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &e));
    f = open_memstream(&text, &len);
    CHECK_OK(dmahal_dump(p, f, DMAHAL_DUMP_PLATFORM));
    fclose(f);
    fputs(text, stdout);
    CHECK_CONTAINS(text, "iommu: vfio type1v2");
    /* VT-d keeps the interrupt window out of every domain: the windows skip it. */
    CHECK_CONTAINS(text, "iova-windows: 0x1000-0xfedfffff 0xfef00000-");
    CHECK_CONTAINS(text, "(1 device)");
    free(text);
    dmahal_platform_close(p);
}

/* Every buffer of a 28-bit adapter lies below 2^28; a 64-bit one gets IOVAs above it. */
TEST(adapter_width_bounds_iovas)
{
    static const size_t sizes[] = {16, 600, 4096, 65536, 3 << 20};
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct dmahal_adapter *narrow, *wide;
    struct dmahal_buf b[5], w;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(dmahal_adapter_get(d, &(struct dmahal_desc){.addr_bits = 28}, &narrow));
    CHECK_OK(dmahal_adapter_get(d, &(struct dmahal_desc){.addr_bits = 64}, &wide));
    for (int i = 0; i < 5; i++) {
        CHECK_OK(dmahal_common_alloc(narrow, sizes[i], 0, &b[i]));
        CHECK_NE_U(b[i].la, 0);
        CHECK_LT_U(b[i].la + sizes[i] - 1, UINT64_C(1) << 28);
        memset(b[i].va, 0x5a, sizes[i]); /* the memory is there and writable */
    }
    CHECK_OK(dmahal_common_alloc(wide, 8192, 0, &w));
    CHECK_GE_U(w.la, UINT64_C(1) << 28);
    CHECK_LT_U(w.la + 8191, UINT64_C(1) << 39); /* the guest IOMMU's 39-bit width */
    for (int i = 0; i < 5; i++)
        CHECK_OK(dmahal_common_free(narrow, &b[i]));
    CHECK_OK(dmahal_common_free(wide, &w));
    dmahal_adapter_put(narrow);
    dmahal_adapter_put(wide);
    dmahal_platform_close(p);
}

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)((i * 131 + seed) ^ (i >> 8));
}

/* The edu driver over vfio: registers, factorial, DMA both ways with the data checked. */
TEST(edu_driver_dma_round_trip)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct edu *e;
    unsigned char out[EDU_DMA_LIMIT], in[EDU_DMA_LIMIT];
    uint32_t f;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(edu_attach(d, EDU_DEFAULT_ADDR_BITS, &e));
    CHECK_OK(edu_liveness(e, 0xdeadbeef));
    CHECK_OK(edu_factorial(e, 12, &f));
    CHECK_EQ_U(f, 479001600);
    pattern(out, sizeof(out), 3);
    CHECK_OK(edu_write(e, 0, out, sizeof(out)));
    memset(in, 0, sizeof(in));
    CHECK_OK(edu_read(e, 0, in, sizeof(in)));
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    /* A part of the buffer, at an odd offset: only it changes. */
    pattern(out + 1000, 77, 9);
    CHECK_OK(edu_write(e, 1000, out + 1000, 77));
    CHECK_OK(edu_read(e, 0, in, sizeof(in)));
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    edu_detach(e);
    dmahal_platform_close(p);
}

/* The device writes into a common buffer, the CPU sees it at va: the IOMMU maps la to va. */
TEST(device_writes_land_in_common_buffer)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct edu *e;
    struct dmahal_buf b;
    unsigned char out[512];

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
    CHECK_OK(edu_attach(d, EDU_DEFAULT_ADDR_BITS, &e));
    pattern(out, sizeof(out), 42);
    CHECK_OK(edu_write(e, 2048, out, sizeof(out)));
    CHECK_OK(dmahal_common_alloc(edu_adapter(e), 3 * 4096, 0, &b));
    /* Into the middle page, through the raw engine. */
    CHECK_OK(edu_dma(e, b.la + 4096 + 100, 2048, sizeof(out), true));
    CHECK(memcmp((unsigned char *)b.va + 4096 + 100, out, sizeof(out)) == 0);
    CHECK_EQ(((unsigned char *)b.va)[4096 + 99], 0);                /* nothing before it */
    CHECK_EQ(((unsigned char *)b.va)[4096 + 100 + sizeof(out)], 0); /* nor after */
    CHECK_OK(dmahal_common_free(edu_adapter(e), &b));
    edu_detach(e);
    dmahal_platform_close(p);
}

/* The 64-bit edu reaches IOVAs far above 4 GiB through the same container. */
TEST(wide_edu_dma_above_4g)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    struct edu *e;
    unsigned char out[EDU_DMA_LIMIT], in[EDU_DMA_LIMIT];
    struct dmahal_buf b;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d));
    CHECK_OK(edu_attach(d, 64, &e));
    CHECK_OK(dmahal_common_alloc(edu_adapter(e), 4096, 0, &b));
    CHECK_LT_U(UINT64_C(1) << 32, b.la);
    pattern(out, sizeof(out), 5);
    memcpy(b.va, out, sizeof(out));
    CHECK_OK(edu_dma(e, b.la, 0, sizeof(out), false));
    CHECK_OK(edu_read(e, 0, in, sizeof(in)));
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    CHECK_OK(dmahal_common_free(edu_adapter(e), &b));
    edu_detach(e);
    dmahal_platform_close(p);
}

/* Closing the last device detaches the group and drops the IOMMU; reopening sets it up
 * afresh and DMA works again. */
TEST(reopen_after_close)
{
    struct dmahal_platform *p = open_vfio();
    unsigned char out[256], in[256];

    for (unsigned round = 0; round < 3; round++) {
        struct dmahal_device *d;
        struct edu *e;

        CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d));
        CHECK_OK(edu_attach(d, EDU_DEFAULT_ADDR_BITS, &e));
        pattern(out, sizeof(out), round);
        CHECK_OK(edu_write(e, 0, out, sizeof(out)));
        CHECK_OK(edu_read(e, 0, in, sizeof(in)));
        CHECK(memcmp(in, out, sizeof(in)) == 0);
        edu_detach(e);
        dmahal_device_close(d);
    }
    dmahal_platform_close(p);
}

/* Both edus in one container, DMA on each, buffers of one adapter never overlapping the
 * other's IOVAs. */
TEST(two_devices_share_the_container)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d1, *d2;
    struct edu *e1, *e2;
    unsigned char a[1024], b[1024], in[1024];

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU"), &d1));
    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_EDU64"), &d2));
    CHECK_OK(edu_attach(d1, EDU_DEFAULT_ADDR_BITS, &e1));
    CHECK_OK(edu_attach(d2, EDU_DEFAULT_ADDR_BITS, &e2));
    pattern(a, sizeof(a), 1);
    pattern(b, sizeof(b), 2);
    CHECK_OK(edu_write(e1, 0, a, sizeof(a)));
    CHECK_OK(edu_write(e2, 0, b, sizeof(b)));
    CHECK_OK(edu_read(e1, 0, in, sizeof(in)));
    CHECK(memcmp(in, a, sizeof(in)) == 0);
    CHECK_OK(edu_read(e2, 0, in, sizeof(in)));
    CHECK(memcmp(in, b, sizeof(in)) == 0);
    edu_detach(e1);
    edu_detach(e2);
    dmahal_platform_close(p);
}

/* NVMe's BAR0 is 64-bit and holds the MSI-X table too: its registers read through either way
 * (mmap, or pread where the kernel refuses the mapping). */
TEST(nvme_bar_reads_version)
{
    struct dmahal_platform *p = open_vfio();
    struct dmahal_device *d;
    uint64_t size = 0, cap;
    uint32_t vs;

    CHECK_OK(dmahal_device_open(p, vm_dev("DMAHAL_VM_NVME"), &d));
    CHECK_OK(dmahal_device_bar_size(d, 0, &size));
    CHECK_GE_U(size, 0x1000);
    cap = dmahal_mmio_read64(d, 0, 0x00);
    vs = dmahal_mmio_read32(d, 0, 0x08);
    printf("nvme: BAR0 %#" PRIx64 " bytes, CAP %#" PRIx64 ", VS %#x\n", size, cap, vs);
    CHECK_NE_U(cap, UINT64_MAX);
    CHECK_NE_U(cap & 0xffff, 0); /* MQES: the largest queue, minus one */
    CHECK_EQ_U(vs >> 16, 1);     /* NVMe 1.x */
    dmahal_platform_close(p);
}
