/* SPDX-License-Identifier: MIT */
/* test_verify_scale.c - what the verifier does to stay cheap, checked for what it must still
 * catch: many buffers and lists at once (its hash tables grow), backtraces by frame pointers
 * and by unwind tables agreeing, shared traces, buffers zeroed although the allocator leaves
 * guard memory alone, a large freed buffer watched at both ends, and the checksum of
 * to-device memory (vector loops of two widths) giving its definition's value and noticing
 * every changed byte. */
#include <dmahal/dmahal.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "verifier/verifier.h"
#include "vrig.h"

/* A recorded backtrace's frames, as the dump prints them ("#0 0x..."), for buffer @seq. */
static void dump_frames(struct dmahal_platform *p, unsigned long long seq, char *out, size_t size)
{
    char *text = NULL, want[64], *at, *end;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    CHECK(f != NULL);
    CHECK_OK(dmahal_dump(p, f, DMAHAL_DUMP_COMMON));
    fclose(f);
    snprintf(want, sizeof(want), "  #%llu\n", seq);
    at = strstr(text, want);
    CHECK(at != NULL);
    at = strstr(at, "allocated by:\n");
    CHECK(at != NULL);
    at += strlen("allocated by:\n");
    /* Up to the next buffer, or the first line less indented than a frame. */
    end = strstr(at, "      buffer va");
    if (!end) {
        end = at;
        while (strncmp(end, "          ", 10) == 0 && strchr(end, '\n'))
            end = strchr(end, '\n') + 1;
    }
    snprintf(out, size, "%.*s", (int)(end - at), at);
    free(text);
}

/* Only the return addresses: "#0 0x55..."; the symbol text after them may differ. */
static void frame_addrs(const char *frames, int n, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char want[16];
        const char *at;
        unsigned long long pc;

        snprintf(want, sizeof(want), "#%d 0x", i);
        at = strstr(frames, want);
        CHECK(at != NULL);
        CHECK_EQ(sscanf(at + strlen(want) - 2, "%llx", &pc), 1);
        used += (size_t)snprintf(out + used, size - used, "%llx ", pc);
    }
}

/* The frames below keep their frame pointers whatever the build (as a driver built with
 * -fno-omit-frame-pointer would); with a compiler that cannot be told so per function, only
 * the first frame, which the verifier's own frame record gives, is compared. */
#if defined(__GNUC__) && !defined(__clang__)
#define WITH_FP   __attribute__((noinline, optimize("no-omit-frame-pointer")))
#define FP_FRAMES 2
#else
#define WITH_FP   __attribute__((noinline))
#define FP_FRAMES 1
#endif

WITH_FP static void alloc_here(struct dmahal_adapter *a, struct dmahal_buf *b)
{
    CHECK_OK(dmahal_common_alloc(a, 64, 0, b));
    __asm__ volatile("" ::: "memory"); /* not a tail call: this frame is in the trace */
}

WITH_FP static void alloc_there(struct dmahal_adapter *a, struct dmahal_buf *b)
{
    CHECK_OK(dmahal_common_alloc(a, 64, 0, b));
    __asm__ volatile("" ::: "memory");
}

WITH_FP static void alloc_one(struct dmahal_adapter *a, struct dmahal_buf *b)
{
    alloc_here(a, b); /* one place */
    __asm__ volatile("" ::: "memory");
}

/* The frame-pointer walk and the unwind-table unwinder name the same frames; a trace is the
 * call site's, shared by the allocations made there. */
TEST(verify_backtraces_by_frame_pointers_match_the_unwinder)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b[4];
    char t1[2048], t2[2048], t3[2048], t4[2048], a1[256], a2[256], a3[256], a4[256];

    CHECK_OK(dmahal_platform_open("sim", &p));
    CHECK_OK(dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, NULL, &a));
    alloc_one(a, &b[0]); /* #1, #2: frame pointers */
    alloc_one(a, &b[1]);
    alloc_there(a, &b[2]);
    CHECK_OK(
        dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT | DMAHAL_VERIFY_FULL_BACKTRACE, NULL, NULL));
    alloc_one(a, &b[3]); /* #4: the unwinder */
    dump_frames(p, 1, t1, sizeof(t1));
    dump_frames(p, 2, t2, sizeof(t2));
    dump_frames(p, 3, t3, sizeof(t3));
    dump_frames(p, 4, t4, sizeof(t4));
    /* dmahal_common_alloc (unless it made a tail call), alloc_here, alloc_one: the test's own
     * frame differs (two places). */
    frame_addrs(t1, FP_FRAMES, a1, sizeof(a1));
    frame_addrs(t2, FP_FRAMES, a2, sizeof(a2));
    frame_addrs(t3, FP_FRAMES, a3, sizeof(a3));
    frame_addrs(t4, FP_FRAMES, a4, sizeof(a4));
    CHECK_STR(a1, a2);
    CHECK_STR(a1, a4);
    CHECK(strcmp(a1, a3) != 0);
    CHECK_EQ(dmahal_verify_count(p, 0), 0);
    for (int i = 0; i < 4; i++)
        CHECK_OK(dmahal_common_free(a, &b[i]));
    CHECK_ERR(dmahal_verify_enable(p, 0x100, NULL, NULL), -EINVAL);
    dmahal_platform_close(p);
}

/* The allocator leaves the guard memory as it is (the verifier fills it): what the driver
 * gets is zeroed all the same, however dirty the memory was before. */
TEST(verify_buffers_are_zeroed_when_memory_comes_back)
{
    static const size_t sizes[] = {16, 64, 100, 2048, 4096, 5000, 65536};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct vrig r;

        vrig_open(&r, "sim", NULL);
        /* Enough frees for the quarantine to hand memory back, many times over. */
        for (int k = 0; k < 200; k++) {
            struct dmahal_buf b;
            unsigned char *c;

            CHECK_OK(dmahal_common_alloc(r.a, sizes[i], 0, &b));
            c = b.va;
            for (size_t j = 0; j < sizes[i]; j++)
                CHECK_EQ(c[j], 0);
            memset(c, 0x5a, sizes[i]);
            CHECK_OK(dmahal_common_free(r.a, &b));
            if (sizes[i] >= 65536 && k == 80)
                break;
        }
        CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
        dmahal_platform_close(r.p);
    }
}

/* A large freed buffer holds the pattern at both ends: writes there are found, with their
 * offsets; a device write anywhere in it is found by its address, and by the check too. */
TEST(verify_large_freed_buffer_watched_at_both_ends)
{
    struct vrig r;
    struct dmahal_buf b;
    const struct dmahal_report *rep;
    unsigned char x[8] = {1};
    size_t len = 65536;
    char want[96];

    vrig_open(&r, "sim", NULL);
    CHECK_OK(dmahal_common_alloc(r.a, len, 0, &b));
    CHECK_OK(dmahal_common_free(r.a, &b));
    ((unsigned char *)b.va)[len - 1] = 7; /* the last byte */
    CHECK_EQ(dmahal_verify_check(r.p), 1);
    rep = vrig_one(&r, DMAHAL_REPORT_WRITE_AFTER_FREE);
    CHECK_EQ_U(rep->la, b.la + len - 1);
    snprintf(want, sizeof(want), "offsets %zu..%zu of 65536-byte", len - 1, len - 1);
    CHECK_CONTAINS(rep->message, want);
    CHECK_EQ(dmahal_verify_check(r.p), 0); /* repaired: once */

    ((unsigned char *)b.va)[3] = 7;
    ((unsigned char *)b.va)[len - 2] = 7;
    CHECK_EQ(dmahal_verify_check(r.p), 1);
    rep = vrig_one(&r, DMAHAL_REPORT_WRITE_AFTER_FREE);
    CHECK_EQ_U(rep->la, b.la + 3);
    CHECK_EQ_U(rep->len, len - 2 - 3 + 1);

    /* The middle holds no pattern; the device's write there is seen by its address. */
    CHECK_OK(dmahal_dev_write(r.d, b.la + 30000, x, sizeof(x)));
    vrig_one(&r, DMAHAL_REPORT_DEV_USE_AFTER_FREE);
    CHECK_EQ(dmahal_verify_check(r.p), 1);
    rep = vrig_one(&r, DMAHAL_REPORT_WRITE_AFTER_FREE);
    CHECK_EQ_U(rep->la, b.la + 30000);
    CHECK_EQ_U(rep->len, sizeof(x));
    CHECK_EQ(dmahal_verify_check(r.p), 0);
    dmahal_platform_close(r.p);
}

/* Hundreds of buffers of every size at once: each found by its CPU address at free and by
 * its logical address on the device side; accesses past each one's end are named right. */
TEST(verify_many_buffers_each_found)
{
    enum { N = 600 };
    static struct dmahal_buf b[N];
    struct vrig r;
    unsigned char x[16];

    vrig_open(&r, "sim:iommu=on", NULL);
    for (int i = 0; i < N; i++) {
        size_t len = i % 3 == 0 ? 48 : i % 3 == 1 ? 4096 : 9000 + (size_t)i;

        CHECK_OK(dmahal_common_alloc(r.a, len, 0, &b[i]));
    }
    for (int i = 0; i < N; i += 7) {
        char want[96];

        CHECK_OK(dmahal_dev_read(r.d, b[i].la, x, sizeof(x)));
        CHECK_OK(dmahal_dev_read(r.d, b[i].la + b[i].len - sizeof(x), x, sizeof(x)));
        CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
        dmahal_dev_read(r.d, b[i].la + b[i].len, x, 1);
        CHECK_CONTAINS(vrig_one(&r, DMAHAL_REPORT_DEV_OUT_OF_BOUNDS)->message,
                       "0 byte(s) after the end of");
        snprintf(want, sizeof(want), "%zu-byte common buffer la 0x%012llx", b[i].len,
                 (unsigned long long)b[i].la);
        CHECK_CONTAINS(r.msg, want);
    }
    /* Freed in another order than allocated; a second free of each is a double free. */
    for (int i = N - 1; i >= 0; i -= 2)
        CHECK_OK(dmahal_common_free(r.a, &b[i]));
    for (int i = N - 2; i >= 0; i -= 2)
        CHECK_OK(dmahal_common_free(r.a, &b[i]));
    CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    CHECK_ERR(dmahal_common_free(r.a, &b[0]), -EINVAL); /* the last freed: in quarantine */
    CHECK_EQ(dmahal_verify_count(r.p, DMAHAL_REPORT_DOUBLE_FREE), 1);
    dmahal_platform_close(r.p);
}

/* Hundreds of live lists: each unmapped through the list the driver got, in any order; a
 * second unmap is a double unmap; the records are reused without mixing lists up. */
TEST(verify_many_live_lists)
{
    enum { N = 300 };
    static struct dmahal_sgl *sgl[N];
    struct vrig r;
    unsigned char *m = NULL;

    CHECK_EQ(posix_memalign((void **)&m, 4096, (size_t)N * 4096), 0);
    memset(m, 3, (size_t)N * 4096);
    vrig_open(&r, "sim:iommu=on", &(struct dmahal_desc){.max_segments = 8});
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            struct iovec iov = {m + (size_t)i * 4096 + (size_t)round, 100 + (size_t)i};

            CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl[i]));
            CHECK_EQ(sgl[i]->nseg, 1);
        }
        for (int i = 0; i < N; i++)
            CHECK_EQ_U(sgl[i]->seg[0].len, 100 + (size_t)i);
        for (int i = round % 2; i < N; i += 2)
            CHECK_OK(dmahal_unmap(r.a, sgl[i]));
        for (int i = 1 - round % 2; i < N; i += 2)
            CHECK_OK(dmahal_unmap(r.a, sgl[i]));
        CHECK_EQ(dmahal_verify_count(r.p, 0), 0);
    }
    /* The last list unmapped is still known. */
    CHECK_ERR(dmahal_unmap(r.a, sgl[N - 1 - (3 - 1) % 2]), -ENOENT);
    vrig_one(&r, DMAHAL_REPORT_DOUBLE_UNMAP);
    dmahal_platform_close(r.p);
    free(m);
}

/* The checksum as defined (verifier/maps.c), a word at a time: eight lanes of sums and sums
 * of sums over whole 64-byte blocks, each lane mixed with its key, then the tail's bytes. */
static uint64_t hash_reference(const unsigned char *c, size_t n)
{
    uint64_t a[8] = {0}, b[8] = {0}, h = 0x9e3779b97f4a7c15ull ^ n, s = 0;
    size_t i = 0;

    for (; i + 64 <= n; i += 64) {
        for (int j = 0; j < 8; j++) {
            uint64_t w;

            memcpy(&w, c + i + 8 * j, 8);
            a[j] += w;
            b[j] += a[j];
        }
    }
    for (int j = 0; j < 8; j++) {
        uint64_t x = (a[j] ^ 0x9e3779b97f4a7c15ull * (uint64_t)(j + 1)) * 0xff51afd7ed558ccdull;

        x ^= x >> 29;
        x = (x ^ b[j]) * 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 32;
        s += x;
    }
    h = (h ^ s) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    for (; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h * 0xc4ceb9fe1a85ec53ull;
}

TEST(verify_hash_matches_its_definition_and_sees_every_byte)
{
    size_t size = 3 * 16384 + 200;
    unsigned char *m = malloc(size);
    uint64_t base, x, y;

    CHECK(m != NULL);
    srand(7);
    for (size_t i = 0; i < size; i++)
        m[i] = (unsigned char)rand();
    /* Each loop the CPU has (the widest first): every length up to a few blocks, at unaligned
     * starts, then large ones: one block, two blocks a turn and the odd block after them, and
     * the tail. */
    for (unsigned width = 64; width >= 16; width /= 2) {
        atomic_store(&dmahal__verify_hash_width, width);
        for (size_t n = 0; n <= 520; n++)
            for (size_t off = 0; off < 3; off++)
                CHECK_EQ_U(dmahal__verify_hash(m + off, n), hash_reference(m + off, n));
        CHECK_EQ_U(dmahal__verify_hash(m, 16384), hash_reference(m, 16384));
        CHECK_EQ_U(dmahal__verify_hash(m + 1, 3 * 16384 + 64 + 37),
                   hash_reference(m + 1, 3 * 16384 + 64 + 37));
    }
    atomic_store(&dmahal__verify_hash_width, 64);
    /* One changed byte anywhere in 4 KiB changes it. */
    base = dmahal__verify_hash(m, 4096);
    for (size_t i = 0; i < 4096; i++) {
        m[i] ^= 0x10;
        CHECK_NE_U(dmahal__verify_hash(m, 4096), base);
        m[i] ^= 0x10;
    }
    /* So do two words of one lane trading places (the sums of sums see where a word is), and
     * two lanes trading their words throughout. */
    memcpy(&x, m + 8, 8);
    memcpy(&y, m + 8 + 64, 8);
    CHECK_NE_U(x, y);
    memcpy(m + 8, &y, 8);
    memcpy(m + 8 + 64, &x, 8);
    CHECK_NE_U(dmahal__verify_hash(m, 4096), base);
    memcpy(m + 8, &x, 8);
    memcpy(m + 8 + 64, &y, 8);
    CHECK_EQ_U(dmahal__verify_hash(m, 4096), base);
    for (size_t i = 0; i < 4096; i += 64) {
        memcpy(&x, m + i, 8);
        memcpy(m + i, m + i + 8, 8);
        memcpy(m + i + 8, &x, 8);
    }
    CHECK_NE_U(dmahal__verify_hash(m, 4096), base);
    free(m);
}
