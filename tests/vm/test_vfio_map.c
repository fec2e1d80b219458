/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_map.c - streaming DMA (dmahal_map) on the vfio platform, in the test guest: the
 * caller's own malloc'd memory mapped through the real IOMMU and moved by QEMU's edu DMA
 * engine, both ways, with the data checked; unaligned and multi-page memory; the 28-bit
 * device's IOVAs; one IOVA space shared by the container's devices; many maps without leaking
 * IOVA space, pinned pages or the kernel's mapping entries; and the errors of misuse and of
 * exhausted limits. No case here may make the IOMMU fault (test_vfio_map_fault.c has those).
 *
 * The edu engine moves at most EDU_DMA_LIMIT bytes per transfer into its 4 KiB buffer, so
 * larger mappings are checked chunk by chunk.
 */
#include "vm.h"

#include <dmahal/dmahal.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "vfio_rig.h"

#define MASK28 ((UINT64_C(1) << 28) - 1)
#define PAGE   4096u

/* vfio, the device named by @var, the edu driver at @bits, and an adapter of @bits with @segs
 * elements per transfer and 1 MiB transfers. */
static void map_open(struct erig *r, const char *var, unsigned bits, unsigned segs)
{
    struct dmahal_desc desc = {.addr_bits = bits, .max_segments = segs, .max_transfer = 1 << 20};

    erig_open(r, var, bits, &desc);
}

/* The logical address of byte @off of the transfer, and how many bytes follow it in the same
 * element (at most @max). */
static dmahal_addr_t la_at(const struct dmahal_sgl *sgl, size_t off, size_t max, size_t *run)
{
    for (unsigned i = 0; i < sgl->nseg; i++) {
        if (off < sgl->seg[i].len) {
            *run = sgl->seg[i].len - off < max ? sgl->seg[i].len - off : max;
            return sgl->seg[i].la + off;
        }
        off -= sgl->seg[i].len;
    }
    test_fail(__FILE__, __LINE__, "offset %zu is past the list", off);
    return 0;
}

/* Has the device read the whole mapped transfer, chunk by chunk, and checks each chunk
 * against @want (what the CPU put there). */
static void device_reads(struct edu *e, const struct dmahal_sgl *sgl, const unsigned char *want,
                         size_t len)
{
    static unsigned char got[EDU_DMA_LIMIT];

    for (size_t off = 0, n; off < len; off += n) {
        dmahal_addr_t la = la_at(sgl, off, EDU_DMA_LIMIT, &n);

        CHECK_OK(edu_dma(e, la, 0, (uint32_t)n, false)); /* mapped memory -> device */
        CHECK_OK(edu_read(e, 0, got, (uint32_t)n));
        if (memcmp(got, want + off, n) != 0)
            test_fail(__FILE__, __LINE__, "the device read other bytes at offset %zu", off);
    }
}

/* Has the device write @src over the whole mapped transfer, chunk by chunk. */
static void device_writes(struct edu *e, const struct dmahal_sgl *sgl, const unsigned char *src,
                          size_t len)
{
    for (size_t off = 0, n; off < len; off += n) {
        dmahal_addr_t la = la_at(sgl, off, EDU_DMA_LIMIT, &n);

        CHECK_OK(edu_write(e, 0, src + off, (uint32_t)n));
        CHECK_OK(edu_dma(e, la, 0, (uint32_t)n, true)); /* device -> mapped memory */
    }
}

/* Each element's address keeps the offset in the page of the memory it stands for. */
static void check_offsets(const struct dmahal_sgl *sgl, const struct iovec *iov)
{
    CHECK_EQ_U(sgl->seg[0].la & (PAGE - 1), (uintptr_t)iov[0].iov_base & (PAGE - 1));
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *at = hay; (at = strstr(at, needle)); at++)
        n++;
    return n;
}

/* A platform's dump, for the lines the vfio platform writes about itself. */
static long long dump_value(struct dmahal_platform *p, const char *key)
{
    char *text = NULL, *at;
    size_t len = 0;
    long long v = -1;
    FILE *f = open_memstream(&text, &len);

    CHECK(f != NULL);
    CHECK_OK(dmahal_dump(p, f, DMAHAL_DUMP_PLATFORM));
    fclose(f);
    at = strstr(text, key);
    if (at)
        v = strtoll(at + strlen(key), NULL, 0);
    free(text);
    return v;
}

/* The process's locked memory in KiB (VmLck): where VFIO accounts the pages it pins. */
static long vm_locked_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    CHECK(f != NULL);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmLck: %ld kB", &kib) == 1)
            break;
    fclose(f);
    CHECK_GE(kib, 0);
    return kib;
}

/* ---- data both ways ------------------------------------------------------------------------- */

TEST(map_to_device_the_device_reads_malloc_memory)
{
    struct erig r;
    unsigned char *mem = malloc(8192);
    unsigned char *buf = mem + 123; /* not page-aligned, as malloc'd memory is not */
    struct iovec iov = {buf, EDU_DMA_LIMIT};
    struct dmahal_sgl *sgl;

    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 1);
    fill(buf, EDU_DMA_LIMIT, 1);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ_U(sgl->seg[0].len, EDU_DMA_LIMIT);
    check_offsets(sgl, &iov);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0); /* in place, not bounced */
    printf("malloc'd %p mapped at la %#" PRIx64 "\n", (void *)buf, sgl->seg[0].la);
    device_reads(r.e, sgl, buf, EDU_DMA_LIMIT);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    free(mem);
    erig_close(&r);
}

TEST(map_from_device_the_device_writes_malloc_memory)
{
    struct erig r;
    unsigned char *mem = malloc(8192), want[EDU_DMA_LIMIT];
    unsigned char *buf = mem + 1000;
    struct iovec iov = {buf, EDU_DMA_LIMIT};
    struct dmahal_sgl *sgl;

    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 1);
    memset(mem, 0xee, 8192);
    fill(want, sizeof(want), 2);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    check_offsets(sgl, &iov);
    device_writes(r.e, sgl, want, sizeof(want));
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK(memcmp(buf, want, sizeof(want)) == 0);
    /* Bytes around the transfer, in the same pages, are untouched. */
    CHECK_EQ_U(buf[-1], 0xee);
    CHECK_EQ_U(buf[EDU_DMA_LIMIT], 0xee);
    free(mem);
    erig_close(&r);
}

/* Memory no one has written yet, mapped for the device to read, then written by the CPU and
 * handed over with sync_for_device: the device sees the CPU's bytes, not the zero page a
 * read-only pin of untouched memory would have pinned. */
TEST(map_to_device_of_untouched_memory_sees_later_writes)
{
    struct erig r;
    unsigned char *mem =
        mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct iovec iov = {mem + 500, EDU_DMA_LIMIT};
    struct dmahal_sgl *sgl;

    CHECK(mem != MAP_FAILED);
    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 1);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
    fill(mem + 500, EDU_DMA_LIMIT, 9);
    CHECK_OK(dmahal_sync_for_device(r.a, sgl));
    device_reads(r.e, sgl, mem + 500, EDU_DMA_LIMIT);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    munmap(mem, 2 * PAGE);
    erig_close(&r);
}

/* Five pages touched by 3.2 pages of memory starting mid-page: one element, the device sees
 * every byte in order, both ways. */
TEST(map_multi_page_unaligned_both_ways)
{
    const size_t len = 3 * PAGE + 777;
    struct erig r;
    unsigned char *mem = aligned_alloc(PAGE, 6 * PAGE), *want = malloc(len);
    unsigned char *buf = mem + PAGE - 300;
    struct iovec iov = {buf, len};
    struct dmahal_sgl *sgl;

    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 1);
    fill(buf, len, 3);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_EQ_U(sgl_total(sgl), len);
    check_offsets(sgl, &iov);
    CHECK_LE_U(sgl->seg[0].la + len - 1, MASK28);
    device_reads(r.e, sgl, buf, len);
    fill(want, len, 4);
    device_writes(r.e, sgl, want, len);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK(memcmp(buf, want, len) == 0);
    free(want);
    free(mem);
    erig_close(&r);
}

/* Two unaligned pieces: an adapter taking 4 elements gets two, in place; one taking a single
 * element cannot have them in place (the gap mid-page) and gets bounce pages, which the
 * IOMMU maps too. The device sees the same bytes either way. */
TEST(map_two_pieces_in_place_or_bounced)
{
    struct erig r;
    struct dmahal_adapter *one;
    struct dmahal_desc desc1 = {.addr_bits = 28, .max_segments = 1, .max_transfer = 1 << 20};
    unsigned char *m1 = malloc(3 * PAGE), *m2 = malloc(3 * PAGE), *all;
    struct iovec iov[2] = {{m1 + 50, PAGE + 100}, {m2 + 3000, 2000}};
    size_t len = iov[0].iov_len + iov[1].iov_len;
    struct dmahal_sgl *sgl;

    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 4);
    CHECK_OK(dmahal_adapter_get(r.d, &desc1, &one));
    all = malloc(len);
    fill(all, len, 5);
    memcpy(iov[0].iov_base, all, iov[0].iov_len);
    memcpy(iov[1].iov_base, all + iov[0].iov_len, iov[1].iov_len);

    CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 2);
    CHECK_EQ_U(sgl->seg[1].la & (PAGE - 1), (uintptr_t)iov[1].iov_base & (PAGE - 1));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(r.a), 0);
    device_reads(r.e, sgl, all, len);
    CHECK_OK(dmahal_unmap(r.a, sgl));

    CHECK_OK(dmahal_map(one, iov, 2, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(sgl->nseg, 1);
    CHECK_GT(dmahal_adapter_map_registers_in_use(one), 0);
    CHECK_LE_U(sgl->seg[0].la + len - 1, MASK28);
    device_reads(r.e, sgl, all, len);
    CHECK_OK(dmahal_unmap(one, sgl));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(one), 0);

    /* Bounced the other way: the device's bytes land in both pieces at unmap. */
    fill(all, len, 6);
    CHECK_OK(dmahal_map(one, iov, 2, DMAHAL_FROM_DEVICE, 0, &sgl));
    device_writes(r.e, sgl, all, len);
    CHECK_OK(dmahal_unmap(one, sgl));
    CHECK(memcmp(iov[0].iov_base, all, iov[0].iov_len) == 0);
    CHECK(memcmp(iov[1].iov_base, all + iov[0].iov_len, iov[1].iov_len) == 0);
    dmahal_adapter_put(one);
    free(all);
    free(m1);
    free(m2);
    erig_close(&r);
}

/* ---- addresses ------------------------------------------------------------------------------ */

/* The 28-bit edu's maps all lie below 2^28, though the space is handed out highest first; the
 * 64-bit edu, in the same container, gets its maps above. Common buffers and maps of both
 * devices share one space: no two ranges overlap, and each device reads its own data. */
TEST(maps_fit_the_device_and_share_the_container)
{
    struct erig r;
    struct dmahal_adapter *a64;
    struct dmahal_desc d64 = {.addr_bits = 64, .max_transfer = 1 << 20};
    struct dmahal_device *dev64;
    struct edu *e64;
    struct dmahal_buf cb;
    enum { N = 24 };
    struct dmahal_sgl *sgl[N];
    struct {
        uint64_t start, end;
    } used[N + 1];
    unsigned char *mem[N];

    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 1);
    CHECK_OK(dmahal_device_open(r.p, vm_dev("DMAHAL_VM_EDU64"), &dev64));
    CHECK_OK(edu_attach(dev64, 64, &e64));
    CHECK_OK(dmahal_adapter_get(dev64, &d64, &a64));
    /* A common buffer of the 28-bit adapter: below 2^28 too, where that device's maps go. */
    CHECK_OK(dmahal_common_alloc(r.a, 3 * PAGE, 0, &cb));
    used[N].start = cb.la;
    used[N].end = cb.la + cb.len;
    for (int i = 0; i < N; i++) {
        size_t len = 100 + (size_t)i * 900;
        struct iovec iov;
        struct dmahal_adapter *a = i % 2 ? a64 : r.a;

        mem[i] = malloc(len + 64);
        fill(mem[i], len + 64, (unsigned)i);
        iov = (struct iovec){mem[i] + i, len};
        CHECK_OK(dmahal_map(a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl[i]));
        used[i].start = sgl[i]->seg[0].la;
        used[i].end = sgl[i]->seg[0].la + len;
        if (i % 2)
            CHECK_LT_U(MASK28, used[i].start);
        else
            CHECK_LE_U(used[i].end - 1, MASK28);
    }
    for (int i = 0; i <= N; i++)
        for (int k = i + 1; k <= N; k++)
            if (used[i].start < used[k].end && used[k].start < used[i].end)
                test_fail(__FILE__, __LINE__, "ranges %d and %d overlap", i, k);
    for (int i = 0; i < N; i += 5) {
        size_t len = 100 + (size_t)i * 900;

        device_reads(i % 2 ? e64 : r.e, sgl[i], mem[i] + i,
                     len < EDU_DMA_LIMIT ? len : EDU_DMA_LIMIT);
    }
    for (int i = 0; i < N; i++) {
        CHECK_OK(dmahal_unmap(i % 2 ? a64 : r.a, sgl[i]));
        free(mem[i]);
    }
    CHECK_OK(dmahal_common_free(r.a, &cb));
    dmahal_adapter_put(a64);
    edu_detach(e64);
    erig_close(&r);
}

/* ---- no leaks --------------------------------------------------------------------------- */

/* Thousands of maps and unmaps of varied shapes on an adapter of 24 bits, whose 16 MiB of
 * IOVA space a leak would soon use up; afterwards the kernel's pinned pages and mapping
 * entries are back where they started and a common buffer of most of the space fits. */
TEST(many_maps_leak_nothing)
{
    struct erig r;
    struct dmahal_adapter *a24;
    struct dmahal_desc d24 = {.addr_bits = 24, .max_segments = 8, .max_transfer = 1 << 20};
    enum { LIVE = 8, ROUNDS = 3000 };
    struct dmahal_sgl *live[LIVE] = {0};
    unsigned char *pool = malloc(1 << 20);
    long lck0, lck_peak = 0;
    long long avail0;
    struct dmahal_buf big;

    map_open(&r, "DMAHAL_VM_EDU64", 64, 1);
    CHECK_OK(dmahal_adapter_get(r.d, &d24, &a24));
    memset(pool, 1, 1 << 20);
    lck0 = vm_locked_kib();
    avail0 = dump_value(r.p, "dma-mappings-avail: ");
    printf("before: VmLck %ld kB, %lld mappings available\n", lck0, avail0);
    CHECK_GT(avail0, 0);
    for (unsigned i = 0; i < ROUNDS; i++) {
        unsigned slot = i % LIVE, n = 1 + i % 3;
        struct iovec iov[3];

        if (live[slot])
            CHECK_OK(dmahal_unmap(a24, live[slot]));
        for (unsigned k = 0; k < n; k++) {
            size_t off = ((size_t)i * 7919 + k * 104729) % ((1 << 20) - 70000);

            iov[k] = (struct iovec){pool + off, 1 + ((size_t)i * 1237 + k * 4099) % 65536};
        }
        CHECK_OK(
            dmahal_map(a24, iov, n, i % 2 ? DMAHAL_TO_DEVICE : DMAHAL_FROM_DEVICE, 0, &live[slot]));
        for (unsigned s = 0; s < live[slot]->nseg; s++)
            CHECK_LE_U(live[slot]->seg[s].la + live[slot]->seg[s].len - 1, (1u << 24) - 1);
        if (i == LIVE * 3) {
            lck_peak = vm_locked_kib();
            CHECK_GT(lck_peak, lck0); /* the kernel pins what is mapped */
            CHECK_LT(dump_value(r.p, "dma-mappings-avail: "), avail0);
        }
    }
    for (unsigned s = 0; s < LIVE; s++)
        CHECK_OK(dmahal_unmap(a24, live[s]));
    printf("while mapped: VmLck %ld kB; after: %ld kB, %lld mappings available\n", lck_peak,
           vm_locked_kib(), dump_value(r.p, "dma-mappings-avail: "));
    CHECK_EQ(vm_locked_kib(), lck0);
    CHECK_EQ(dump_value(r.p, "dma-mappings-avail: "), avail0);
    /* 14 of the 16 MiB in one piece: only possible if the maps gave all their space back. */
    CHECK_OK(dmahal_common_alloc(a24, 14 << 20, 0, &big));
    CHECK_LE_U(big.la + big.len - 1, (1u << 24) - 1);
    CHECK_OK(dmahal_common_free(a24, &big));
    dmahal_adapter_put(a24);
    free(pool);
    erig_close(&r);
}

/* Threads mapping and unmapping at once on one adapter (each with its own IOVA cache, the
 * kernel's ioctls in parallel): every list is distinct and right, and nothing is left pinned
 * or mapped afterwards. */
struct worker {
    struct dmahal_adapter *a;
    unsigned char *mem;
    int failures;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;

    for (unsigned i = 0; i < 400; i++) {
        struct iovec iov = {w->mem + (i * 61) % 8000, 1 + (i * 977) % 20000};
        struct dmahal_sgl *sgl;

        if (dmahal_map(w->a, &iov, 1, DMAHAL_BIDIRECTIONAL, 0, &sgl)) {
            w->failures++;
            continue;
        }
        if (sgl->nseg != 1 || sgl->seg[0].len != iov.iov_len ||
            (sgl->seg[0].la & (PAGE - 1)) != ((uintptr_t)iov.iov_base & (PAGE - 1)))
            w->failures++;
        if (dmahal_unmap(w->a, sgl))
            w->failures++;
    }
    return NULL;
}

TEST(threads_map_at_once)
{
    struct erig r;
    struct worker w[4];
    pthread_t t[4];
    long lck0;
    long long avail0;

    map_open(&r, "DMAHAL_VM_EDU64", 64, 1);
    lck0 = vm_locked_kib();
    avail0 = dump_value(r.p, "dma-mappings-avail: ");
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){r.a, malloc(32 * 1024), 0};
        CHECK_OK(pthread_create(&t[i], NULL, worker_run, &w[i]));
    }
    for (int i = 0; i < 4; i++) {
        CHECK_OK(pthread_join(t[i], NULL));
        CHECK_EQ(w[i].failures, 0);
        free(w[i].mem);
    }
    CHECK_EQ(vm_locked_kib(), lck0);
    CHECK_EQ(dump_value(r.p, "dma-mappings-avail: "), avail0);
    erig_close(&r);
}

/* ---- misuse and limits -------------------------------------------------------------------- */

TEST(map_misuse_errors)
{
    struct erig r;
    struct dmahal_adapter *other;
    struct dmahal_desc desc = {.addr_bits = 28};
    unsigned char *buf = malloc(PAGE);
    struct iovec iov = {buf, 100}, none = {NULL, 10}, empty = {buf, 0};
    struct dmahal_sgl *sgl, *bad = (void *)1;
    unsigned char *gone, *ro;

    map_open(&r, "DMAHAL_VM_EDU", EDU_DEFAULT_ADDR_BITS, 1);
    CHECK_OK(dmahal_adapter_get(r.d, &desc, &other));
    CHECK_ERR(dmahal_map(r.a, &none, 1, DMAHAL_TO_DEVICE, 0, &bad), -EINVAL);
    CHECK(bad == NULL);
    CHECK_ERR(dmahal_map(r.a, &empty, 1, DMAHAL_TO_DEVICE, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, (enum dmahal_dir)0, 0, &sgl), -EINVAL);
    CHECK_ERR(dmahal_map(r.a, &(struct iovec){buf, (1 << 20) + 1}, 1, DMAHAL_TO_DEVICE, 0, &sgl),
              -E2BIG);

    /* Memory that is not there: the kernel cannot pin it. */
    gone = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(gone != MAP_FAILED);
    munmap(gone, 2 * PAGE);
    bad = (void *)1;
    CHECK_ERR(dmahal_map(r.a, &(struct iovec){gone + 10, 100}, 1, DMAHAL_TO_DEVICE, 0, &bad),
              -EFAULT);
    CHECK(bad == NULL);

    /* Read-only memory: the device may read it, never write it. */
    ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    fill(ro, PAGE, 8);
    CHECK_OK(mprotect(ro, PAGE, PROT_READ));
    CHECK_ERR(dmahal_map(r.a, &(struct iovec){ro, 200}, 1, DMAHAL_FROM_DEVICE, 0, &sgl), -EFAULT);
    CHECK_OK(dmahal_map(r.a, &(struct iovec){ro, 200}, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    device_reads(r.e, sgl, ro, 200);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    munmap(ro, PAGE);

    /* A list is unmapped once, by its own adapter. */
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_ERR(dmahal_unmap(other, sgl), -ENOENT);
    CHECK_ERR(dmahal_sync_for_cpu(other, sgl), -ENOENT);
    CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
    CHECK_OK(dmahal_sync_for_device(r.a, sgl));
    CHECK_OK(dmahal_unmap(r.a, sgl));
    CHECK_ERR(dmahal_unmap(r.a, sgl), -ENOENT);
    CHECK_ERR(dmahal_sync_for_device(r.a, sgl), -ENOENT);
    dmahal_adapter_put(other);
    free(buf);
    erig_close(&r);
}

/* The kernel gives each container dma_entry_limit mappings (each piece of each map takes one):
 * on a platform opened with a small limit, maps past the last few go through the core's spill
 * memory (one mapping for 2 MiB of copies) instead of failing; nothing is said on stderr, the
 * data moves, and the mappings come back with the unmaps. */
TEST(dma_entry_limit_near_spills)
{
    static const char param[] = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit";
    char old[32] = "";
    struct erig r;
    enum { MAX = 64 };
    struct dmahal_sgl *sgl[MAX], *two;
    unsigned char *mem = aligned_alloc(PAGE, (MAX + 2) * 2 * PAGE);
    struct vm_capture c;
    FILE *f;
    long long avail;
    int n;

    f = fopen(param, "r");
    CHECK(f != NULL);
    CHECK(fgets(old, sizeof(old), f) != NULL);
    fclose(f);
    f = fopen(param, "w");
    CHECK(f != NULL);
    fputs("20\n", f);
    CHECK_EQ(fclose(f), 0);
    /* The limit is read when the container is set up: restore it at once. Two elements per
     * transfer, so that two pieces are mapped in place, not bounced into one. */
    map_open(&r, "DMAHAL_VM_EDU64", 64, 2);
    f = fopen(param, "w");
    CHECK(f != NULL);
    fputs(old, f);
    CHECK_EQ(fclose(f), 0);

    avail = dump_value(r.p, "dma-mappings-avail: ");
    printf("mappings available: %lld (the edu driver's buffer and the adapter's took some)\n",
           avail);
    CHECK_GT(avail, 2);
    CHECK_LT(avail, 20);
    for (size_t i = 0; i < (MAX + 2) * 2 * PAGE; i++)
        mem[i] = (unsigned char)(i * 31 + 7);
    vm_capture_begin(&c);
    for (n = 0; n < MAX; n++)
        CHECK_OK(dmahal_map(r.a, &(struct iovec){mem + (size_t)n * 2 * PAGE + 5, 10}, 1,
                            DMAHAL_TO_DEVICE, 0, &sgl[n]));
    {
        struct iovec iov[2] = {{mem + 3, 100}, {mem + 4 * PAGE + 9, 100}};

        CHECK_OK(dmahal_map(r.a, iov, 2, DMAHAL_TO_DEVICE, 0, &two));
    }
    vm_capture_end(&c);
    CHECK_EQ(count_of(c.text, "all in use"), 0);
    CHECK_LE(dump_value(r.p, "dma-mappings-avail: "), 1);
    for (n = 0; n < MAX; n += 9)
        device_reads(r.e, sgl[n], mem + (size_t)n * 2 * PAGE + 5, 10);
    CHECK_OK(dmahal_unmap(r.a, two));
    for (n = 0; n < MAX; n++)
        CHECK_OK(dmahal_unmap(r.a, sgl[n]));
    /* All back but the spill memory's, which stays mapped for the adapter's life. */
    CHECK_EQ(dump_value(r.p, "dma-mappings-avail: "), avail - 1);
    free(mem);
    erig_close(&r);
}

/* Without CAP_IPC_LOCK the pinned pages count against RLIMIT_MEMLOCK: a map past it is
 * -ENOMEM with the fix named, and one within it works. */
TEST(locked_memory_limit_is_enomem)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct cap[2];
    struct rlimit lim;
    struct erig r;
    size_t len = 1 << 20;
    unsigned char *mem = malloc(len);
    struct dmahal_sgl *sgl;
    struct vm_capture c;
    int rc;

    map_open(&r, "DMAHAL_VM_EDU64", 64, 1);
    memset(mem, 3, len);
    /* This process (the forked case) drops the capability and takes a 1 MiB limit. */
    CHECK_OK(syscall(SYS_capget, &hdr, cap));
    cap[0].effective &= ~(1u << CAP_IPC_LOCK);
    cap[0].permitted &= ~(1u << CAP_IPC_LOCK);
    CHECK_OK(syscall(SYS_capset, &hdr, cap));
    /* What is pinned already (the edu driver's buffer) counts: 512 KiB more than that. */
    lim.rlim_cur = lim.rlim_max = (rlim_t)vm_locked_kib() * 1024 + (512 << 10);
    CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &lim));

    vm_capture_begin(&c);
    rc = dmahal_map(r.a, &(struct iovec){mem, len}, 1, DMAHAL_TO_DEVICE, 0, &sgl);
    vm_capture_end(&c);
    CHECK_ERR(rc, -ENOMEM);
    CHECK_CONTAINS(c.text, "out of locked memory");
    CHECK_OK(dmahal_map(r.a, &(struct iovec){mem + 100, 3000}, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    device_reads(r.e, sgl, mem + 100, 3000);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    free(mem);
    erig_close(&r);
}
