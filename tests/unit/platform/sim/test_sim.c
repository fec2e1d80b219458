/* SPDX-License-Identifier: MIT */
/* test_sim.c - the simulated platform: specs, RAM, translation, faults, the anti-pattern. */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "rig.h"
#include "test.h"

static char *dump_of(struct dmahal_platform *p, unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    CHECK(f != NULL);
    CHECK_OK(dmahal_dump(p, f, flags));
    fclose(f);
    return text;
}

TEST(sim_specs_accepted)
{
    static const char *const good[] = {
        NULL,
        "",
        "sim",
        "sim:",
        "sim:iommu=on",
        "sim:iommu=off,coherent=no",
        "sim:ram=0-1G,4G-64G",
        "sim:ram=0-16M",
        "sim:ram=1M-2M,2M-3M,iommu=on",
        "sim:page=64K",
        "sim:ram=0x100000-0x200000",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct dmahal_platform *p = NULL;

        CHECK_OK(dmahal_platform_open(good[i], &p));
        CHECK_STR(dmahal_platform_name(p), "sim");
        dmahal_platform_close(p);
    }
}

TEST(sim_specs_refused)
{
    static const char *const bad[] = {
        "bogus",
        "sim:iommu=maybe",
        "sim:coherent=on",
        "sim:ram=2G-1G",
        "sim:ram=0-1G,512M-2G",
        "sim:ram=100-5000",
        "sim:ram=",
        "sim:ram=1G",
        "sim:nonsense=1",
        "sim:iommu",
        "sim:page=3000",
        "sim:page=1M",
        "sim:ram=0-1X",
        "sim:ram=0-99999999999999999999G",
        "sim:ram=0-4K,8K-12K,16K-20K,24K-28K,32K-36K,40K-44K,48K-52K,56K-60K,64K-68K,72K-76K,"
        "80K-84K,88K-92K,96K-100K,104K-108K,112K-116K,120K-124K,128K-132K",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dmahal_platform *p = (struct dmahal_platform *)1;

        CHECK_ERR(dmahal_platform_open(bad[i], &p), -EINVAL);
        CHECK(p == NULL);
    }
    CHECK_ERR(dmahal_platform_open("sim", NULL), -EINVAL);
}

TEST(sim_environment_chooses_platform)
{
    struct dmahal_platform *p;

    setenv("DMAHAL_PLATFORM", "sim:iommu=on", 1);
    CHECK_OK(dmahal_platform_open(NULL, &p));
    CHECK_EQ(dmahal_platform_has_iommu(p), 1);
    dmahal_platform_close(p);
    setenv("DMAHAL_PLATFORM", "sim:iommu=nope", 1);
    CHECK_ERR(dmahal_platform_open("", &p), -EINVAL);
    /* An explicit spec wins over the environment. */
    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_EQ(dmahal_platform_has_iommu(p), 0);
    dmahal_platform_close(p);
    unsetenv("DMAHAL_PLATFORM");
}

TEST(sim_big_machine_costs_little_host_memory)
{
    struct dmahal_platform *p;
    struct rusage before, after;

    getrusage(RUSAGE_SELF, &before);
    CHECK_OK(dmahal_platform_open("sim:ram=0-1G,4G-1T", &p));
    getrusage(RUSAGE_SELF, &after);
    /* A terabyte machine, and the process grew by less than 16 MiB. */
    CHECK_LT(after.ru_maxrss - before.ru_maxrss, 16 * 1024);
    dmahal_platform_close(p);
}

TEST(sim_page_size_option)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;

    CHECK_OK(dmahal_platform_open("sim:page=16K,iommu=on", &p));
    CHECK_EQ(dmahal_platform_page_size(p), 16384);
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    CHECK_OK(dmahal_common_alloc(a, 20000, 0, &b));
    CHECK_EQ_U(b.la % 16384, 0);
    /* Map registers count pages of this size: 1 MiB / 16 KiB + 1. */
    CHECK_EQ(dmahal_adapter_map_registers(a), 65);
    dmahal_platform_close(p);
}

TEST(sim_contig_and_virt_to_phys_are_the_anti_pattern)
{
    struct dmahal_platform *p;
    void *va;
    uint64_t pa, pa2;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_sim_contig_alloc(p, 8192, &va));
    CHECK_OK(dmahal_sim_virt_to_phys(p, va, &pa));
    /* High-first: the physical address is far above what a 32-bit device reaches. */
    CHECK_GE_U(pa, 4ull << 30);
    CHECK_OK(dmahal_sim_virt_to_phys(p, (char *)va + 5000, &pa2));
    CHECK_EQ_U(pa2, pa + 5000);
    CHECK_OK(dmahal_sim_contig_free(p, va));
    CHECK_ERR(dmahal_sim_contig_free(p, va), -EINVAL);
    CHECK_ERR(dmahal_sim_virt_to_phys(p, &pa, &pa2), -EINVAL); /* not simulated RAM */
    CHECK_EQ_U(pa2, 0);
    CHECK_ERR(dmahal_sim_virt_to_phys(p, NULL, &pa), -EINVAL);
    CHECK_ERR(dmahal_sim_contig_alloc(p, 0, &va), -EINVAL);
    CHECK_ERR(dmahal_sim_contig_alloc(NULL, 10, &va), -EINVAL);
    CHECK_ERR(dmahal_sim_contig_alloc(p, (size_t)1 << 41, &va), -E2BIG);
    dmahal_platform_close(p);
}

TEST(sim_no_iommu_logical_is_physical)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    uint64_t pa;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    CHECK_OK(dmahal_common_alloc(a, 128, 0, &b));
    CHECK_OK(dmahal_sim_virt_to_phys(p, b.va, &pa));
    CHECK_EQ_U(pa, b.la);
    dmahal_platform_close(p);
}

TEST(sim_device_access_outside_ram_faults)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    char x[32] = {0};
    struct dmahal_fault f = {.size = sizeof(f)};

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    rig_bus_master(d);
    /* 2 GiB is the hole between low and high RAM. */
    CHECK_ERR(dmahal_dev_write(d, 2ull << 30, x, sizeof(x)), -EFAULT);
    /* The last bytes of low RAM and then the hole: fails whole, at the first missing byte. */
    CHECK_ERR(dmahal_dev_read(d, (1ull << 30) - 16, x, sizeof(x)), -EFAULT);
    CHECK_EQ_U(dmahal_fault_count(p), 2);
    CHECK_OK(dmahal_fault_get(p, 0, &f));
    CHECK_EQ_U(f.la, 2ull << 30);
    CHECK(f.write);
    CHECK_EQ(f.reason, DMAHAL_FAULT_NO_RAM);
    CHECK_EQ_U(f.seq, 1);
    CHECK_OK(dmahal_fault_get(p, 1, &f));
    CHECK_EQ_U(f.la, 1ull << 30);
    CHECK(!f.write);
    CHECK_ERR(dmahal_fault_get(p, 2, &f), -ENOENT);
    CHECK_ERR(dmahal_fault_get(p, 0, NULL), -EINVAL);
    CHECK_ERR(dmahal_dev_read(d, UINT64_MAX - 4, x, sizeof(x)), -EINVAL); /* wraps */
    CHECK_ERR(dmahal_dev_read(NULL, 4096, x, sizeof(x)), -EINVAL);
    CHECK_ERR(dmahal_dev_read(d, 4096, NULL, sizeof(x)), -EINVAL);
    dmahal_fault_clear(p);
    CHECK_EQ_U(dmahal_fault_count(p), 0);
    CHECK_ERR(dmahal_fault_get(p, 0, &f), -ENOENT);
    dmahal_platform_close(p);
}

TEST(sim_iommu_isolates_devices)
{
    struct dmahal_platform *p;
    struct dmahal_device *d1, *d2;
    struct dmahal_adapter *a1;
    struct dmahal_buf b;
    char x[8];
    struct dmahal_fault f = {.size = sizeof(f)};

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d1));
    CHECK_OK(dmahal_device_open(p, "edu", &d2));
    rig_bus_master(d2);
    CHECK_OK(dmahal_adapter_get(d1, NULL, &a1));
    CHECK_OK(dmahal_common_alloc(a1, 64, 0, &b));
    CHECK_OK(dmahal_dev_read(d1, b.la, x, sizeof(x)));
    /* The other device has its own page table: d1's buffer is not mapped for it. */
    CHECK_ERR(dmahal_dev_read(d2, b.la, x, sizeof(x)), -EFAULT);
    CHECK_OK(dmahal_fault_get(p, 0, &f));
    CHECK_EQ(f.reason, DMAHAL_FAULT_UNMAPPED);
    /* Address 0 is never mapped. */
    CHECK_ERR(dmahal_dev_write(d1, 0, x, sizeof(x)), -EFAULT);
    CHECK_EQ_U(dmahal_fault_count(p), 2);
    dmahal_platform_close(p);
}

TEST(sim_iommu_access_spanning_pages_checks_every_page)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    char *x = malloc(3 << 20);

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    CHECK_OK(dmahal_common_alloc(a, 3 << 20, 0, &b));
    memset(b.va, 0x11, b.len);
    CHECK_OK(dmahal_dev_read(d, b.la, x, b.len));
    CHECK_EQ(x[(3 << 20) - 1], 0x11);
    /* One byte past the end is unmapped: the access fails and writes nothing. */
    memset(x, 0x22, 3 << 20);
    CHECK_ERR(dmahal_dev_write(d, b.la + 4096, x, b.len), -EFAULT);
    CHECK_EQ(((char *)b.va)[4096], 0x11);
    free(x);
    dmahal_platform_close(p);
}

TEST(sim_faults_ring_keeps_latest)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_fault f = {.size = sizeof(f)};
    char x;

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    for (uint64_t i = 0; i < 300; i++)
        CHECK_ERR(dmahal_dev_read(d, 0x100000 + i, &x, 1), -EFAULT);
    CHECK_EQ_U(dmahal_fault_count(p), 300);
    CHECK_OK(dmahal_fault_get(p, 0, &f));
    CHECK_EQ_U(f.seq, 45);
    CHECK_EQ_U(f.la, 0x100000 + 44);
    CHECK_OK(dmahal_fault_get(p, 255, &f));
    CHECK_EQ_U(f.seq, 300);
    CHECK_ERR(dmahal_fault_get(p, 256, &f), -ENOENT);
    dmahal_platform_close(p);
}

TEST(sim_device_errors)
{
    struct dmahal_platform *p;
    struct dmahal_device *d = (struct dmahal_device *)1;
    uint64_t size;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_ERR(dmahal_device_open(p, "no-such-device", &d), -ENOENT);
    CHECK(d == NULL);
    CHECK_ERR(dmahal_device_open(p, "", &d), -EINVAL);
    CHECK_ERR(dmahal_device_open(p, NULL, &d), -EINVAL);
    CHECK_ERR(dmahal_device_open(NULL, "edu", &d), -EINVAL);
    CHECK_ERR(dmahal_device_open(p, "edu", NULL), -EINVAL);
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_STR(dmahal_device_name(d), "edu");
    CHECK(dmahal_device_platform(d) == p);
    CHECK_OK(dmahal_device_bar_size(d, 0, &size));
    CHECK_EQ_U(size, 1 << 20);
    CHECK_OK(dmahal_device_bar_size(d, 1, &size));
    CHECK_EQ_U(size, 0);
    CHECK_ERR(dmahal_device_bar_size(d, 6, &size), -EINVAL);
    /* Register access outside a BAR, misaligned, or without a device reads all ones. */
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 1 << 20), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(d, 1, 0), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 2), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(d, 9, 0), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read32(NULL, 0, 0), 0xffffffff);
    CHECK_EQ_U(dmahal_mmio_read64(d, 0, (1 << 20) - 4), UINT64_MAX);
    dmahal_mmio_write32(NULL, 0, 0, 1); /* dropped, no crash */
    dmahal_mmio_write64(d, 0, 3, 1);
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 0), 0x010000ed);
    CHECK_STR(dmahal_device_name(NULL), "");
    dmahal_device_close(NULL);
    dmahal_platform_close(p);
    dmahal_platform_close(NULL);
}

static int released;

static void release_ctx(void *ctx)
{
    released += *(int *)ctx;
}

TEST(sim_device_contexts)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    static int key1, key2, v1 = 1, v2 = 10;

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK(dmahal_device_context(d, &key1) == NULL);
    CHECK_OK(dmahal_device_set_context(d, &key1, &v1, release_ctx));
    CHECK_OK(dmahal_device_set_context(d, &key2, &v2, release_ctx));
    CHECK_ERR(dmahal_device_set_context(d, &key1, &v2, NULL), -EEXIST);
    CHECK_ERR(dmahal_device_set_context(d, NULL, &v2, NULL), -EINVAL);
    CHECK_ERR(dmahal_device_set_context(NULL, &key1, &v2, NULL), -EINVAL);
    CHECK(dmahal_device_context(d, &key1) == &v1);
    CHECK(dmahal_device_context(d, &key2) == &v2);
    CHECK_EQ(released, 0);
    dmahal_device_close(d);
    CHECK_EQ(released, 11);
    dmahal_platform_close(p);
}

struct counter_state {
    uint32_t reg;
};

static uint64_t counter_read(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                             unsigned size)
{
    struct counter_state *s = state;

    (void)d, (void)bar, (void)off, (void)size;
    return ++s->reg;
}

static void counter_write(struct dmahal_device *d, void *state, unsigned bar, uint64_t off,
                          uint64_t val, unsigned size)
{
    struct counter_state *s = state;

    (void)bar, (void)off, (void)size;
    s->reg = (uint32_t)val;
    dmahal_irq_set(d, val != 0);
}

static int counter_init(struct dmahal_device *d, void *state, const char *args)
{
    (void)d, (void)state;
    return strcmp(args, "") == 0 || strcmp(args, "ok") == 0 ? 0 : -EINVAL;
}

static const struct dmahal_model counter_model = {
    .size = sizeof(struct dmahal_model),
    .name = "counter",
    .summary = "a register that counts its reads",
    .state_size = sizeof(struct counter_state),
    .bar_size = {0, 4096},
    .init = counter_init,
    .mmio_read = counter_read,
    .mmio_write = counter_write,
};

TEST(sim_custom_models)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_model bad = counter_model;

    CHECK_OK(dmahal_model_register(&counter_model));
    CHECK_ERR(dmahal_model_register(&counter_model), -EEXIST);
    CHECK(dmahal_model_find("counter") != NULL);
    CHECK(dmahal_model_find("counter")->mmio_read == counter_model.mmio_read);
    CHECK(dmahal_model_find("edu") != NULL);
    CHECK(dmahal_model_find("nope") == NULL);
    CHECK(dmahal_model_at(0) != NULL);
    CHECK(dmahal_model_at(1000) == NULL);
    bad.name = "bad:name";
    CHECK_ERR(dmahal_model_register(&bad), -EINVAL);
    bad.name = "nomethods";
    bad.mmio_read = NULL;
    CHECK_ERR(dmahal_model_register(&bad), -EINVAL);
    CHECK_ERR(dmahal_model_register(NULL), -EINVAL);

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_ERR(dmahal_device_open(p, "counter:bad", &d), -EINVAL);
    CHECK_OK(dmahal_device_open(p, "counter:ok", &d));
    CHECK_EQ_U(dmahal_mmio_read32(d, 0, 0), 0xffffffff); /* BAR 0 absent */
    CHECK_EQ_U(dmahal_mmio_read32(d, 1, 0), 1);
    CHECK_EQ_U(dmahal_mmio_read32(d, 1, 4), 2);
    CHECK_EQ(dmahal_irq_pending(d), 0);
    dmahal_mmio_write32(d, 1, 0, 41);
    CHECK_EQ(dmahal_irq_pending(d), 1);
    CHECK_EQ_U(dmahal_mmio_read32(d, 1, 0), 42);
    dmahal_mmio_write32(d, 1, 0, 0);
    CHECK_EQ(dmahal_irq_pending(d), 0);
    CHECK_ERR(dmahal_irq_pending(NULL), -EINVAL);
    dmahal_platform_close(p);
}

TEST(sim_model_registry_fills_up)
{
    static struct dmahal_model many[70];
    static char names[70][16];
    int rc = 0, i;

    for (i = 0; i < 70 && rc == 0; i++) {
        snprintf(names[i], sizeof(names[i]), "m%d", i);
        many[i] = counter_model;
        many[i].name = names[i];
        rc = dmahal_model_register(&many[i]);
    }
    CHECK_ERR(rc, -ENOSPC);
    CHECK_LT(i, 70);
}

TEST(sim_dump_shows_buffers_and_faults)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_desc desc = {.addr_bits = 28};
    struct dmahal_buf b;
    char x, la_text[32], *text;

    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    text = dump_of(p, 0);
    CHECK_CONTAINS(text, "no devices");
    free(text);
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, &desc, &a));
    CHECK_OK(dmahal_common_alloc(a, 1000, 0, &b));
    CHECK_ERR(dmahal_dev_read(d, 0x10, &x, 1), -EFAULT);
    text = dump_of(p, DMAHAL_DUMP_ALL);
    snprintf(la_text, sizeof(la_text), "la 0x%012llx", (unsigned long long)b.la);
    CHECK_CONTAINS(text, "platform: sim");
    CHECK_CONTAINS(text, "iommu: on");
    CHECK_CONTAINS(text, "device edu");
    CHECK_CONTAINS(text, "28-bit");
    CHECK_CONTAINS(text, la_text);
    CHECK_CONTAINS(text, "len 1000");
    CHECK_CONTAINS(text, "common buffers: 1, 1000 bytes");
    CHECK_CONTAINS(text, "addr_bits 28");
    CHECK_CONTAINS(text, "faults: 1");
    CHECK_CONTAINS(text, "read 0x10");
    free(text);
    /* Without DMAHAL_DUMP_COMMON the buffers are counted, not listed. */
    text = dump_of(p, 0);
    CHECK(strstr(text, la_text) == NULL);
    CHECK_CONTAINS(text, "common buffers: 1, 1000 bytes");
    free(text);
    CHECK_ERR(dmahal_dump(p, stdout, 0x80000), -EINVAL);
    CHECK_ERR(dmahal_dump(NULL, stdout, 0), -EINVAL);
    CHECK_ERR(dmahal_dump(p, NULL, 0), -EINVAL);
    dmahal_platform_close(p);
}

TEST(sim_closing_parents_closes_children)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;

    /* Devices, adapters and buffers left open are released by closing the platform; run
     * under AddressSanitizer this also proves nothing leaks. */
    CHECK_OK(dmahal_platform_open("sim:iommu=on", &p));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(dmahal_device_open(p, "edu", &d));
        CHECK_OK(dmahal_adapter_get(d, NULL, &a));
        CHECK_OK(dmahal_common_alloc(a, 100, 0, &b));
        CHECK_OK(dmahal_adapter_get(d, NULL, &a));
        CHECK_OK(dmahal_common_alloc(a, 1 << 22, 0, &b));
    }
    dmahal_platform_close(p);
}
