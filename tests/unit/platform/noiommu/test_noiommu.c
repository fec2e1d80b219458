/* SPDX-License-Identifier: MIT */
/*
 * test_noiommu.c - the noiommu platform against a machine laid out in files: a sysfs tree of
 * PCI devices (config, resource, resource0, driver links, uio), and a physical-memory file
 * standing for /dev/mem whose bytes at offset PA are the memory at PA. So the options, device
 * lookup, BAR and config-space access, bus mastering, the low pool, reach checks, direct and
 * bounced streaming maps are all checked without a device or privileges, and so are the refusal
 * to register ordinary memory and the reading of smaps that decides it. Hugepages are tried
 * for real where the machine has some free (else skipped); the guest (tests/vm) runs the rest.
 */
#include <dmahal/dmahal.h>

#include "platform/noiommu/noiommu.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define LOW_START 0x8000000ull /* 128 MiB */
#define LOW_LEN   (8ull << 20)
#define EDU       "0000:00:03.0"

static char root[64];

static void machine_remove(void)
{
    char cmd[96];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (root[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static void put(const char *rel, const void *data, size_t len)
{
    char path[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void put_str(const char *rel, const char *s)
{
    put(rel, s, strlen(s));
}

static void mk(const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    CHECK_OK(mkdir(path, 0700));
}

static void link_to(const char *target, const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    CHECK_OK(symlink(target, path));
}

/* One PCI device directory: IDs, a 256-byte config space, BAR0 of 4 KiB, a driver. */
static void fake_dev(const char *addr, const char *ven, const char *dev, const char *driver)
{
    char rel[128], res[512] = "0x00000000fea00000 0x00000000fea00fff 0x0000000000040200\n";
    static const unsigned char zero[4096];

    snprintf(rel, sizeof(rel), "sys/%s", addr);
    mk(rel);
    snprintf(rel, sizeof(rel), "sys/%s/vendor", addr);
    put_str(rel, ven);
    snprintf(rel, sizeof(rel), "sys/%s/device", addr);
    put_str(rel, dev);
    snprintf(rel, sizeof(rel), "sys/%s/config", addr);
    put(rel, zero, 256);
    for (int i = 1; i < 6; i++)
        strcat(res, "0x0000000000000000 0x0000000000000000 0x0000000000000000\n");
    snprintf(rel, sizeof(rel), "sys/%s/resource", addr);
    put_str(rel, res);
    snprintf(rel, sizeof(rel), "sys/%s/resource0", addr);
    put(rel, zero, sizeof(zero));
    if (driver) {
        char target[128];

        snprintf(target, sizeof(target), "../../../../bus/pci/drivers/%s", driver);
        snprintf(rel, sizeof(rel), "sys/%s/driver", addr);
        link_to(target, rel);
    }
}

/* The fake machine: an edu on uio_pci_generic with uio0, a device bound to e1000, one bound to
 * nothing, one to vfio-pci; and the memory file. */
static void machine(void)
{
    int fd;

    snprintf(root, sizeof(root), "/tmp/dmahal-nio.XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    atexit(machine_remove);
    mk("sys");
    mk("dev");
    fake_dev(EDU, "0x1234\n", "0x11e8\n", "uio_pci_generic");
    mk("sys/" EDU "/uio");
    mk("sys/" EDU "/uio/uio0");
    put_str("dev/uio0", "");
    fake_dev("0000:00:04.0", "0x8086\n", "0x100e\n", "e1000");
    fake_dev("0000:00:05.0", "0x1b36\n", "0x0010\n", NULL);
    fake_dev("0000:00:06.0", "0x1b36\n", "0x0011\n", "vfio-pci");
    put_str("mem", "");
    fd = open(strcat(strcpy((char[96]){0}, root), "/mem"), O_RDWR);
    CHECK(fd >= 0);
    CHECK_OK(ftruncate(fd, (off_t)(LOW_START + LOW_LEN)));
    close(fd);
    unsetenv("DMAHAL_NOIOMMU_LOWMEM");
    setenv("DMAHAL_NOIOMMU_CONFIG", "/nonexistent", 1);
}

/* "noiommu:sysfs=...,dev=...,mem=..." plus @extra. */
static const char *spec(const char *extra)
{
    static char s[512];

    snprintf(s, sizeof(s), "noiommu:sysfs=%s/sys,dev=%s/dev,mem=%s/mem,hugepages=off%s%s", root,
             root, root, *extra ? "," : "", extra);
    return s;
}

static void mem_rw(bool write, uint64_t pa, void *buf, size_t len)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/mem", root);
    fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(write ? pwrite(fd, buf, len, (off_t)pa) : pread(fd, buf, len, (off_t)pa),
             (ssize_t)len);
    close(fd);
}

static uint16_t command_reg(const char *addr)
{
    char path[128];
    uint16_t cmd = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/sys/%s/config", root, addr);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pread(fd, &cmd, 2, 4), 2);
    close(fd);
    return cmd;
}

/* Captures stderr into @buf while @p is opened with @s. */
static int open_quiet(const char *s, struct dmahal_platform **p, char *buf, size_t size)
{
    char path[] = "/tmp/dmahal-nio-err.XXXXXX";
    int fd = mkstemp(path), saved = dup(2), rc;
    ssize_t n;

    CHECK(fd >= 0);
    unlink(path);
    fflush(stderr);
    dup2(fd, 2);
    rc = dmahal_platform_open(s, p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

struct stderr_cap {
    int fd, saved;
    char text[2048];
};

static void cap_begin(struct stderr_cap *c)
{
    char path[] = "/tmp/dmahal-nio-err.XXXXXX";

    c->fd = mkstemp(path);
    CHECK(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(2);
    dup2(c->fd, 2);
}

static const char *cap_end(struct stderr_cap *c)
{
    ssize_t n;

    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
    c->text[n > 0 ? n : 0] = '\0';
    close(c->fd);
    return c->text;
}

TEST(options_refused)
{
    static const char *const bad[] = {
        "lowmem=0x8000000",
        "lowmem=0x8000001+64M",
        "lowmem=0x8000000+0",
        "lowmem=+64M",
        "lowmem=1G+1x",
        "hugepages=maybe",
        "colour=blue",
        "lowmem",
        "lowmem=0xfffffffffffff000+8K",
    };
    struct dmahal_platform *p = (void *)1;
    char msg[1024];

    machine();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ERR(open_quiet(spec(bad[i]), &p, msg, sizeof(msg)), -EINVAL);
        CHECK(p == NULL);
        CHECK_CONTAINS(msg, "noiommu");
    }
    setenv("DMAHAL_NOIOMMU_LOWMEM", "64M", 1);
    CHECK_ERR(open_quiet(spec(""), &p, msg, sizeof(msg)), -EINVAL);
    CHECK_CONTAINS(msg, "DMAHAL_NOIOMMU_LOWMEM");
}

TEST(lowmem_from_spec_env_and_file)
{
    struct dmahal_platform *p;
    uint64_t start, len;
    char path[128], msg[1024];

    machine();
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    CHECK_STR(dmahal_platform_name(p), "noiommu");
    CHECK_EQ(dmahal_platform_has_iommu(p), 0);
    CHECK_ERR(dmahal_noiommu_lowmem(p, &start, &len), -ENOENT);
    dmahal_platform_close(p);

    /* The file, then the environment over it, then the spec over both. */
    snprintf(path, sizeof(path), "%s/noiommu.conf", root);
    put_str("noiommu.conf", "# reserved with memmap=8M$0x8000000\n  lowmem = 0x8000000+4M  \n");
    setenv("DMAHAL_NOIOMMU_CONFIG", path, 1);
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    CHECK_OK(dmahal_noiommu_lowmem(p, &start, &len));
    CHECK_EQ_U(start, LOW_START);
    CHECK_EQ_U(len, 4u << 20);
    dmahal_platform_close(p);
    setenv("DMAHAL_NOIOMMU_LOWMEM", "0x8000000+8M", 1);
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    CHECK_OK(dmahal_noiommu_lowmem(p, &start, &len));
    CHECK_EQ_U(len, LOW_LEN);
    dmahal_platform_close(p);
    CHECK_OK(dmahal_platform_open(spec("lowmem=0x8100000+1M"), &p));
    CHECK_OK(dmahal_noiommu_lowmem(p, &start, &len));
    CHECK_EQ_U(start, 0x8100000u);
    CHECK_EQ_U(len, 1u << 20);
    dmahal_platform_close(p);
    CHECK_OK(dmahal_platform_open(spec("lowmem=none"), &p));
    CHECK_ERR(dmahal_noiommu_lowmem(p, &start, &len), -ENOENT);
    dmahal_platform_close(p);

    /* A bad line in the file names the file and the line. */
    unsetenv("DMAHAL_NOIOMMU_LOWMEM");
    put_str("noiommu.conf", "lowmem=0x8000000+4M\nlowmem 64M\n");
    CHECK_ERR(open_quiet(spec(""), &p, msg, sizeof(msg)), -EINVAL);
    CHECK_CONTAINS(msg, "line 2");
}

TEST(lowmem_unreachable_file)
{
    struct dmahal_platform *p;
    char msg[1024], s[600];

    machine();
    snprintf(s, sizeof(s), "noiommu:sysfs=%s/sys,mem=%s/nothing,lowmem=0x8000000+8M", root, root);
    CHECK_ERR(open_quiet(s, &p, msg, sizeof(msg)), -ENOENT);
    CHECK_CONTAINS(msg, "nothing");
}

TEST(public_entry_points_off_platform)
{
    struct dmahal_platform *sim;
    uint64_t a = 1, b = 1;
    int x = 0;

    CHECK_OK(dmahal_platform_open("sim", &sim));
    CHECK_ERR(dmahal_noiommu_lowmem(sim, &a, &b), -ENOTSUP);
    CHECK_EQ_U(a, 0);
    CHECK_ERR(dmahal_noiommu_virt_to_phys(sim, &x, &a), -ENOTSUP);
    CHECK_ERR(dmahal_noiommu_lowmem(NULL, &a, &b), -EINVAL);
    CHECK_ERR(dmahal_noiommu_virt_to_phys(sim, NULL, &a), -EINVAL);
    dmahal_platform_close(sim);
}

TEST(virt_to_phys_of_a_page)
{
    struct dmahal_platform *p;
    uint64_t pa = 1;
    char *page = malloc(8192);
    int rc;

    machine();
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    page[0] = 1;
    rc = dmahal_noiommu_virt_to_phys(p, page, &pa);
    /* The kernel shows physical addresses only to CAP_SYS_ADMIN. */
    CHECK(rc == 0 || rc == -EPERM);
    if (rc == 0)
        CHECK_NE_U(pa, 0);
    else
        CHECK_EQ_U(pa, 0);
    free(page);
    dmahal_platform_close(p);
}

TEST(devices_by_address_and_id)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct stderr_cap c;

    machine();
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    CHECK_OK(dmahal_device_open(p, "00:03.0", &d));
    dmahal_device_close(d);
    CHECK_OK(dmahal_device_open(p, "1234:11e8", &d));
    dmahal_mmio_write32(d, 0, 4, 0x12345678);
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 4), 0x12345678u);
    dmahal_device_close(d);

    cap_begin(&c);
    CHECK_ERR(dmahal_device_open(p, "1234:ffff", &d), -ENOENT);
    CHECK_ERR(dmahal_device_open(p, "0000:00:09.0", &d), -ENOENT);
    CHECK_ERR(dmahal_device_open(p, "edu", &d), -EINVAL);
    CHECK_ERR(dmahal_device_open(p, "12345:11e8", &d), -EINVAL);
    CHECK_ERR(dmahal_device_open(p, "0000:00:04.0", &d), -EBUSY);
    CHECK_ERR(dmahal_device_open(p, "0000:00:05.0", &d), -ENODEV);
    CHECK_ERR(dmahal_device_open(p, "0000:00:06.0", &d), -ENODEV);
    CHECK(d == NULL);
    cap_end(&c);
    CHECK_CONTAINS(c.text, "no PCI device 1234:ffff");
    CHECK_CONTAINS(c.text, "bound to e1000, not uio_pci_generic");
    CHECK_CONTAINS(c.text, "echo 1b36 0010 > /sys/bus/pci/drivers/uio_pci_generic/new_id");
    CHECK_CONTAINS(c.text, "bound to vfio-pci");
    if (access("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", F_OK))
        CHECK_CONTAINS(c.text, "CONFIG_VFIO_NOIOMMU");
    dmahal_platform_close(p);
}

TEST(bar_is_the_resource_file)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    char path[128];
    uint32_t v = 0;
    int fd;

    machine();
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    CHECK_OK(dmahal_device_open(p, EDU, &d));
    dmahal_mmio_write32(d, 0, 0x80, 0xcafe0001);
    dmahal_mmio_write64(d, 0, 0x88, 0x1122334455667788ull);
    snprintf(path, sizeof(path), "%s/sys/" EDU "/resource0", root);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pread(fd, &v, 4, 0x80), 4);
    CHECK_EQ_U(v, 0xcafe0001u);
    close(fd);
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, 0x88), 0x1122334455667788ull);
    /* The BAR is 4 KiB, as the resource file says: beyond it is refused, not reached. */
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 4096), 0xffffffffu);
    CHECK_EQ_U(dmahal_mmio_read32(d, 1, 0), 0xffffffffu);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

TEST(bus_master_on_adapter_get_off_at_close)
{
    struct dmahal_desc desc = {.addr_bits = 28};
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;

    machine();
    CHECK_OK(dmahal_platform_open(spec("lowmem=0x8000000+8M"), &p));
    CHECK_OK(dmahal_device_open(p, EDU, &d));
    CHECK_EQ_U(command_reg(EDU) & 0x6, 0);
    CHECK_OK(dmahal_adapter_get(d, &desc, &a));
    CHECK_EQ_U(command_reg(EDU) & 0x6, 0x6); /* memory decoding and bus mastering */
    dmahal_adapter_put(a);
    dmahal_device_close(d);
    CHECK_EQ_U(command_reg(EDU) & 0x4, 0);
    dmahal_platform_close(p);
}

/* A platform with the 8 MiB low range, the edu and a 28-bit adapter. */
struct nio {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
};

static void nio_open(struct nio *n, unsigned bits, const char *extra)
{
    struct dmahal_desc desc = {.addr_bits = bits, .max_segments = 16, .max_transfer = 1 << 20};

    machine();
    CHECK_OK(dmahal_platform_open(spec(extra), &n->p));
    CHECK_OK(dmahal_device_open(n->p, EDU, &n->d));
    CHECK_OK(dmahal_adapter_get(n->d, &desc, &n->a));
}

static void nio_close(struct nio *n)
{
    dmahal_adapter_put(n->a);
    dmahal_device_close(n->d);
    dmahal_platform_close(n->p);
}

TEST(common_buffers_are_the_low_range)
{
    struct dmahal_buf b[3];
    unsigned char got[64];
    struct nio n;

    nio_open(&n, 28, "lowmem=0x8000000+8M");
    CHECK_OK(dmahal_common_alloc(n.a, 100, 0, &b[0]));
    CHECK_OK(dmahal_common_alloc(n.a, 8192, 0, &b[1]));
    CHECK_OK(dmahal_common_alloc(n.a, 1 << 20, 0, &b[2]));
    for (int i = 0; i < 3; i++) {
        CHECK_GE_U(b[i].la, LOW_START);
        CHECK_LE_U(b[i].la + b[i].len, LOW_START + LOW_LEN);
    }
    CHECK_EQ_U(b[1].la & 4095, 0);
    /* What the CPU writes is at the bus address in physical memory. */
    memset(b[0].va, 0x5a, 64);
    mem_rw(false, b[0].la, got, sizeof(got));
    for (int i = 0; i < 64; i++)
        CHECK_EQ(got[i], 0x5a);
    for (int i = 0; i < 3; i++)
        CHECK_OK(dmahal_common_free(n.a, &b[i]));
    nio_close(&n);
}

TEST(narrow_adapter_gets_enomem_saying_what_to_reserve)
{
    struct dmahal_buf b = {0};
    struct stderr_cap c;
    struct nio n;

    /* The low range starts at 2^27: a 26-bit device reaches none of it. */
    nio_open(&n, 26, "lowmem=0x8000000+8M");
    cap_begin(&c);
    CHECK_ERR(dmahal_common_alloc(n.a, 4096, 0, &b), -ENOMEM);
    cap_end(&c);
    CHECK(b.va == NULL);
    CHECK_CONTAINS(c.text, "below 2^26");
    CHECK_CONTAINS(c.text, "out of its reach");
    CHECK_CONTAINS(c.text, "memmap=");
    nio_close(&n);

    /* No low range and no hugepages: the message says what to reserve. */
    nio_open(&n, 32, "");
    cap_begin(&c);
    CHECK_ERR(dmahal_common_alloc(n.a, 4096, 0, &b), -ENOMEM);
    cap_end(&c);
    CHECK_CONTAINS(c.text, "memmap=64M$0x8000000");
    CHECK_CONTAINS(c.text, "lowmem=0x8000000+64M");
    nio_close(&n);
}

TEST(low_range_used_up)
{
    struct dmahal_buf b, more;
    struct stderr_cap c;
    struct nio n;

    nio_open(&n, 32, "lowmem=0x8000000+8M");
    CHECK_OK(dmahal_common_alloc(n.a, 6 << 20, 0, &b));
    cap_begin(&c);
    CHECK_ERR(dmahal_common_alloc(n.a, 4 << 20, 0, &more), -ENOMEM);
    cap_end(&c);
    CHECK_CONTAINS(c.text, "used up");
    CHECK_OK(dmahal_common_free(n.a, &b));
    CHECK_OK(dmahal_common_alloc(n.a, 6 << 20, 0, &b)); /* the space came back */
    CHECK_OK(dmahal_common_free(n.a, &b));
    nio_close(&n);
}

TEST(map_of_user_memory_is_bounced)
{
    size_t len = 3 * 4096 + 100;
    unsigned char *src = malloc(len), *dst = malloc(len), *seen = malloc(len);
    struct iovec v = {src + 1, len - 1};
    struct dmahal_sgl *sgl;
    size_t off = 0;
    struct nio n;

    nio_open(&n, 28, "lowmem=0x8000000+8M");
    for (size_t i = 0; i < len; i++)
        src[i] = (unsigned char)(i * 13 + 1);
    CHECK_OK(dmahal_map(n.a, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_GT(dmahal_adapter_map_registers_in_use(n.a), 0);
    for (unsigned i = 0; i < sgl->nseg; i++) {
        CHECK_GE_U(sgl->seg[i].la, LOW_START);
        CHECK_LE_U(sgl->seg[i].la + sgl->seg[i].len, LOW_START + LOW_LEN);
        mem_rw(false, sgl->seg[i].la, seen + off, sgl->seg[i].len);
        off += sgl->seg[i].len;
    }
    CHECK_EQ(off, len - 1);
    CHECK(memcmp(seen, src + 1, len - 1) == 0); /* the device sees the bytes at the bus address */
    CHECK_OK(dmahal_unmap(n.a, sgl));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(n.a), 0);

    /* From the device: what it writes at the bus address is the caller's at unmap. */
    v = (struct iovec){dst, len};
    CHECK_OK(dmahal_map(n.a, &v, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    off = 0;
    for (unsigned i = 0; i < sgl->nseg; i++) {
        mem_rw(true, sgl->seg[i].la, src + off, sgl->seg[i].len);
        off += sgl->seg[i].len;
    }
    CHECK_OK(dmahal_sync_for_device(n.a, sgl));
    CHECK_OK(dmahal_unmap(n.a, sgl));
    CHECK(memcmp(dst, src, len) == 0);
    free(src);
    free(dst);
    free(seen);
    nio_close(&n);
}

TEST(map_of_a_common_buffer_is_direct)
{
    struct dmahal_buf b, other;
    struct dmahal_sgl *sgl;
    struct iovec v[2];
    struct nio n;

    nio_open(&n, 28, "lowmem=0x8000000+8M");
    CHECK_OK(dmahal_common_alloc(n.a, 64 << 10, 0, &b));
    v[0] = (struct iovec){(char *)b.va + 100, 5000};
    CHECK_OK(dmahal_map(n.a, v, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ_U(sgl->seg[0].la, b.la + 100);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(n.a), 0);
    CHECK_OK(dmahal_unmap(n.a, sgl));

    /* A list with one piece the library does not own is bounced whole. */
    CHECK_OK(dmahal_common_free(n.a, &b));
    CHECK_OK(dmahal_common_alloc(n.a, 4096, 0, &other));
    v[0] = (struct iovec){other.va, 4096};
    v[1] = (struct iovec){malloc(4096), 4096};
    CHECK_OK(dmahal_map(n.a, v, 2, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_GT(dmahal_adapter_map_registers_in_use(n.a), 0); /* one piece not owned: bounced */
    CHECK_OK(dmahal_unmap(n.a, sgl));
    free(v[1].iov_base);
    CHECK_OK(dmahal_common_free(n.a, &other));
    nio_close(&n);
}

TEST(map_of_a_common_buffer_out_of_reach_is_bounced)
{
    struct dmahal_desc narrow = {.addr_bits = 28};
    struct dmahal_adapter *a28;
    struct dmahal_buf b;
    struct dmahal_sgl *sgl;
    struct iovec v;
    struct nio n;

    /* The low range is above 2^28 here: a buffer of the 32-bit adapter that a 28-bit one
     * cannot reach goes through its bounce pages, which come from the part it reaches. */
    nio_open(&n, 32, "lowmem=0x8000000+8M");
    CHECK_OK(dmahal_common_alloc(n.a, 4096, 0, &b));
    CHECK_GE_U(b.la, LOW_START);
    CHECK_OK(dmahal_adapter_get(n.d, &narrow, &a28));
    v = (struct iovec){b.va, 4096};
    CHECK_OK(dmahal_map(a28, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_LE_U(sgl->seg[0].la + 4095, (1u << 28) - 1);
    CHECK_OK(dmahal_unmap(a28, sgl));
    dmahal_adapter_put(a28);
    CHECK_OK(dmahal_common_free(n.a, &b));
    nio_close(&n);
}

TEST(no_memory_for_bounce_pages)
{
    unsigned char buf[4096];
    struct iovec v = {buf, sizeof(buf)};
    struct dmahal_sgl *sgl = (void *)1;
    struct stderr_cap c;
    struct nio n;

    nio_open(&n, 32, "");
    cap_begin(&c);
    CHECK_ERR(dmahal_map(n.a, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl), -ENOMEM);
    cap_end(&c);
    CHECK(sgl == NULL);
    CHECK_CONTAINS(c.text, "bounce pages");
    nio_close(&n);
}

TEST(describe)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    struct nio n;

    nio_open(&n, 28, "lowmem=0x8000000+8M");
    CHECK_OK(dmahal_dump(n.p, f, DMAHAL_DUMP_PLATFORM));
    fclose(f);
    CHECK_CONTAINS(text, "platform: noiommu");
    CHECK_CONTAINS(text, "lowmem: 0x008000000-0x008800000 (8 MiB, from the platform spec)");
    CHECK_CONTAINS(text, "hugepages: off");
    free(text);
    nio_close(&n);
}

/* Real hugepages, where this machine has some free and shows physical addresses. */
TEST(hugepages_for_a_wide_adapter)
{
    struct dmahal_desc desc = {.addr_bits = 64};
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    struct dmahal_sgl *sgl;
    struct iovec v;
    uint64_t pa;
    char s[600];
    FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
    long nr = 0;

    if (f) {
        if (fscanf(f, "%ld", &nr) != 1)
            nr = 0;
        fclose(f);
    }
    if (nr <= 0 || geteuid() != 0)
        TEST_SKIP("no hugepages reserved here, or not root (the guest test uses them)");
    machine();
    snprintf(s, sizeof(s), "noiommu:sysfs=%s/sys,dev=%s/dev,mem=%s/mem", root, root, root);
    CHECK_OK(dmahal_platform_open(s, &p));
    CHECK_OK(dmahal_device_open(p, EDU, &d));
    CHECK_OK(dmahal_adapter_get(d, &desc, &a));
    CHECK_OK(dmahal_common_alloc(a, 8192, 0, &b));
    CHECK_OK(dmahal_noiommu_virt_to_phys(p, b.va, &pa));
    CHECK_EQ_U(pa, b.la);
    v = (struct iovec){b.va, 8192};
    CHECK_OK(dmahal_map(a, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ_U(sgl->seg[0].la, b.la);
    CHECK_OK(dmahal_unmap(a, sgl));
    CHECK_OK(dmahal_common_free(a, &b));
    dmahal_adapter_put(a);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}

/* ---- registered memory ------------------------------------------------------------------ */

#define VMA(range, kps, flags)                                                                     \
    range " rw-s 00000000 00:0f 1234 /anon_hugepage (deleted)\n"                                   \
          "Size:               4096 kB\n"                                                          \
          "KernelPageSize:     " kps " kB\n"                                                       \
          "AnonHugePages:         0 kB\n"                                                          \
          "FilePmdMapped:         0 kB\n"                                                          \
          "VmFlags: " flags "\n"

static int smaps(const char *text, uintptr_t start, uintptr_t end, size_t *page, const char **why)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int rc;

    CHECK(f != NULL);
    rc = dmahal__nio_smaps_check(f, start, end, page, why);
    fclose(f);
    return rc;
}

TEST(smaps_decides_what_may_be_registered)
{
    static const char text[] =
        VMA("7f0000000000-7f0000400000", "2048", "rd wr sh mr mw me ms de ht sd") /* shared */
        VMA("7f0000400000-7f0000600000", "2048", "rd wr mr mw me dc de ht sd")    /* dontfork */
        VMA("7f0040000000-7f0080000000", "1048576", "rd wr sh mr mw me ms ht")
            VMA("7f0080000000-7f0080200000", "2048", "rd wr mr mw me ac ht sd") /* private */
        VMA("7f0080200000-7f0080400000", "4", "rd wr mr mw me ac sd")           /* ordinary */
        VMA("7f0080400000-7f0080600000", "4", "rd wr sh mr mw me ac sd")        /* shmem */
        VMA("7f0080600000-7f0080800000", "4", "rd wr mr mw me ac sd hg");       /* THP */
    const char *why = "x";
    size_t page = 1;

    CHECK_OK(smaps(text, 0x7f0000001000, 0x7f0000003000, &page, &why));
    CHECK_EQ(page, 2u << 20);
    CHECK(why == NULL);
    /* Across two mappings that touch, shared and kept out of children. */
    CHECK_OK(smaps(text, 0x7f0000200000, 0x7f0000600000, &page, &why));
    CHECK_EQ(page, 2u << 20);
    CHECK_OK(smaps(text, 0x7f0040000000, 0x7f0040001000, &page, &why));
    CHECK_EQ(page, 1u << 30);
    /* A hole between two mappings, or past the last. */
    CHECK_ERR(smaps(text, 0x7f0000500000, 0x7f0040001000, &page, &why), -EFAULT);
    CHECK_EQ(page, 0);
    CHECK_ERR(smaps(text, 0x7e0000000000, 0x7e0000001000, &page, &why), -EFAULT);
    CHECK_ERR(smaps(text, 0x7f0080800000, 0x7f0080900000, &page, &why), -EFAULT);
    /* Private hugepages a fork would copy, and every kind of ordinary page. */
    CHECK_ERR(smaps(text, 0x7f0080000000, 0x7f0080001000, &page, &why), -ENOTSUP);
    CHECK_CONTAINS(why, "fork");
    CHECK_ERR(smaps(text, 0x7f00801ff000, 0x7f0080201000, &page, &why), -ENOTSUP);
    for (uintptr_t at = 0x7f0080200000; at < 0x7f0080800000; at += 0x200000) {
        CHECK_ERR(smaps(text, at, at + 4096, &page, &why), -ENOTSUP);
        CHECK_CONTAINS(why, "not hugetlbfs");
    }
    CHECK_ERR(smaps("", 0x1000, 0x2000, &page, &why), -EFAULT);
}

TEST(smaps_of_this_process)
{
    size_t len = 64 << 10, page;
    char *heap = malloc(len);
    const char *why;
    FILE *f = fopen("/proc/self/smaps", "r");

    if (!f)
        TEST_SKIP("no /proc/self/smaps here");
    CHECK_ERR(dmahal__nio_smaps_check(f, (uintptr_t)heap, (uintptr_t)heap + len, &page, &why),
              -ENOTSUP);
    fclose(f);
    free(heap);
}

TEST(register_refuses_ordinary_memory)
{
    size_t len = 3 * 4096;
    char *heap = malloc(len), stack[4096];
    void *anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct dmahal_reg_info info;
    struct dmahal_sgl *sgl;
    struct iovec v = {heap, len};
    struct stderr_cap c;
    struct nio n;

    CHECK(anon != MAP_FAILED);
    CHECK_OK(mlock(anon, len)); /* locked pages move all the same */
    nio_open(&n, 28, "lowmem=0x8000000+8M");
    cap_begin(&c);
    CHECK_ERR(dmahal_register(n.a, heap, len), -ENOTSUP);
    CHECK_ERR(dmahal_register(n.a, anon, len), -ENOTSUP);
    CHECK_ERR(dmahal_register(n.a, stack, sizeof(stack)), -ENOTSUP);
    cap_end(&c);
    CHECK_CONTAINS(c.text, "not hugetlbfs memory");
    CHECK_CONTAINS(c.text, "MAP_HUGETLB");
    CHECK_OK(dmahal_register_info(n.a, &info));
    CHECK_EQ(info.regions, 0);
    /* Unregistered, the memory is bounced as before. */
    CHECK_OK(dmahal_map(n.a, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_GT(dmahal_adapter_map_registers_in_use(n.a), 0);
    CHECK_OK(dmahal_unmap(n.a, sgl));
    /* Memory nobody mapped. */
    CHECK_OK(munmap(anon, len));
    cap_begin(&c);
    CHECK_ERR(dmahal_register(n.a, anon, len), -EFAULT);
    cap_end(&c);
    nio_close(&n);
    free(heap);
}

TEST(register_of_a_common_buffer_maps_in_place)
{
    struct dmahal_reg_info info;
    struct dmahal_sgl *sgl;
    struct dmahal_buf b;
    struct iovec v;
    struct nio n;

    nio_open(&n, 28, "lowmem=0x8000000+8M");
    CHECK_OK(dmahal_common_alloc(n.a, 64 << 10, 0, &b));
    CHECK_OK(dmahal_register(n.a, b.va, b.len));
    CHECK_OK(dmahal_register_info(n.a, &info));
    CHECK_EQ(info.regions, 1);
    v = (struct iovec){(char *)b.va + 300, 9000};
    CHECK_OK(dmahal_map(n.a, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ_U(sgl->seg[0].la, b.la + 300);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(n.a), 0);
    CHECK_ERR(dmahal_unregister(n.a, b.va, b.len), -EBUSY);
    CHECK_OK(dmahal_unmap(n.a, sgl));
    CHECK_OK(dmahal_unregister(n.a, b.va, b.len));
    CHECK_OK(dmahal_common_free(n.a, &b));
    nio_close(&n);
}

/* Real hugepages of the caller's, where this machine has some and shows physical addresses. */
TEST(register_hugepages)
{
    const size_t huge = 2u << 20;
    struct dmahal_desc desc = {.addr_bits = 64}, narrow = {.addr_bits = 28};
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a, *a28;
    struct dmahal_sgl *sgl;
    struct stderr_cap c;
    struct iovec v;
    uint64_t pa;
    char *shared, *priv;
    char s[600];

    shared =
        mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    priv =
        mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (shared == MAP_FAILED || priv == MAP_FAILED || geteuid() != 0)
        TEST_SKIP("no two free hugepages here, or not root (the guest test registers them)");
    machine();
    snprintf(s, sizeof(s), "noiommu:sysfs=%s/sys,dev=%s/dev,mem=%s/mem,lowmem=0x8000000+8M", root,
             root, root);
    CHECK_OK(dmahal_platform_open(s, &p));
    CHECK_OK(dmahal_device_open(p, EDU, &d));
    CHECK_OK(dmahal_adapter_get(d, &desc, &a));
    CHECK_OK(dmahal_register(a, shared + 4096, huge - 8192));
    CHECK_OK(dmahal_noiommu_virt_to_phys(p, shared + 5000, &pa));
    v = (struct iovec){shared + 5000, 20000};
    CHECK_OK(dmahal_map(a, &v, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ_U(sgl->seg[0].la, pa);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(a), 0);
    CHECK_OK(dmahal_unmap(a, sgl));
    /* A private mapping is taken once a fork leaves it alone. */
    cap_begin(&c);
    CHECK_ERR(dmahal_register(a, priv, huge), -ENOTSUP);
    cap_end(&c);
    CHECK_CONTAINS(c.text, "fork");
    CHECK_OK(madvise(priv, huge, MADV_DONTFORK));
    CHECK_OK(dmahal_register(a, priv, huge));
    CHECK_OK(dmahal_unregister(a, priv, huge));
    /* A 28-bit adapter registers hugepages above its reach and bounces its maps of them. */
    CHECK_OK(dmahal_adapter_get(d, &narrow, &a28));
    CHECK_OK(dmahal_register(a28, shared + 4096, huge - 8192));
    CHECK_OK(dmahal_map(a28, &v, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    if (pa + 20000 > (1u << 28))
        CHECK_GT(dmahal_adapter_map_registers_in_use(a28), 0);
    CHECK_LE_U(sgl->seg[sgl->nseg - 1].la + sgl->seg[sgl->nseg - 1].len, 1u << 28);
    CHECK_OK(dmahal_unmap(a28, sgl));
    dmahal_adapter_put(a28);
    CHECK_OK(dmahal_unregister(a, shared + 4096, huge - 8192));
    dmahal_adapter_put(a);
    dmahal_device_close(d);
    dmahal_platform_close(p);
    munmap(shared, huge);
    munmap(priv, huge);
}

TEST(intx_through_the_uio_fd_and_config_space)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    uint32_t v = 0x12345678, back = 0;
    char path[128];
    struct stat st;

    machine();
    CHECK_OK(dmahal_platform_open(spec(""), &p));
    CHECK_OK(dmahal_device_open(p, EDU, &d));
    CHECK_EQ(dmahal_irq_count(d, DMAHAL_IRQ_INTX), 1);
    CHECK_EQ(dmahal_irq_count(d, DMAHAL_IRQ_MSI), 0);
    CHECK_ERR(dmahal_irq_enable(d, DMAHAL_IRQ_MSI, 1), -ENOTSUP);
    CHECK_EQ(dmahal_irq_enable(d, DMAHAL_IRQ_INTX, 0), 1);
    CHECK_GE(dmahal_irq_fd(d, 0), 0);
    /* The line is unmasked with the command register's Interrupt Disable bit. */
    CHECK_EQ_U(command_reg(EDU) & 0x400, 0);
    CHECK_OK(dmahal_irq_unmask(d, 0));
    CHECK_OK(dmahal_irq_disable(d));
    CHECK_EQ_U(command_reg(EDU) & 0x400, 0x400);
    snprintf(path, sizeof(path), "%s/dev/uio0", root);
    CHECK_OK(stat(path, &st));

    CHECK_OK(dmahal_config_write(d, 0x40, &v, 4));
    CHECK_OK(dmahal_config_read(d, 0x40, &back, 4));
    CHECK_EQ_U(back, v);
    dmahal_device_close(d);
    dmahal_platform_close(p);
}
