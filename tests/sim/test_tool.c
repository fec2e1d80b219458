/* SPDX-License-Identifier: MIT */
/*
 * test_tool.c - the dmahal command, run as a person runs it: its exit codes and the lines
 * that carry the story (addresses, truncation, faults, verified data), checked against
 * each other and against the library.
 */
#include "test.h"

#include <dmahal/device.h>
#include <dmahal/dmahal.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef DMAHAL_TOOL_PATH
#error "DMAHAL_TOOL_PATH must name the dmahal binary (set by tests/CMakeLists.txt)"
#endif

#define EDU_MASK ((UINT64_C(1) << 28) - 1)
#define ECHO_OFF 0x800u

struct run {
    int status; /* exit code, or -signal if the tool died */
    char *out, *err;
};

/* Outputs stay reachable for the rest of the case (each case is its own process). */
static char *kept[64];
static size_t nkept;

static char *slurp(FILE *f)
{
    long n;
    char *s;

    fflush(f);
    n = ftell(f);
    CHECK(n >= 0);
    s = calloc(1, (size_t)n + 1);
    CHECK(s != NULL);
    rewind(f);
    CHECK_EQ(fread(s, 1, (size_t)n, f), n);
    fclose(f);
    CHECK_LT(nkept, sizeof(kept) / sizeof(kept[0]));
    kept[nkept++] = s;
    return s;
}

/* Runs the tool with @p args (NULL-terminated) and @p env ("NAME=value" or NULL). */
static struct run tool(const char *env, const char *const *args)
{
    const char *argv[16] = {"dmahal"};
    FILE *out = tmpfile(), *err = tmpfile();
    struct run r;
    pid_t pid;
    int ws;
    size_t n = 1;

    CHECK(out && err);
    while (args[n - 1] && n < 15) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        unsetenv("DMAHAL_PLATFORM");
        if (env)
            putenv((char *)env);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        execv(DMAHAL_TOOL_PATH, (char *const *)argv);
        _exit(127);
    }
    CHECK_EQ(waitpid(pid, &ws, 0), pid);
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

#define TOOL(...) tool(NULL, (const char *const[]){__VA_ARGS__, NULL})

/* The first line of @p text, at or after @p from, that contains @p needle; fails if none. */
static const char *line_with(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);

    if (!at)
        test_fail(__FILE__, __LINE__, "no line contains \"%s\" in:\n%s", needle, text);
    while (at > text && at[-1] != '\n')
        at--;
    return at;
}

/* Reads a hex number that follows @p key on the first line containing it. */
static uint64_t hex_after(const char *text, const char *key)
{
    const char *at = strstr(line_with(text, key), key) + strlen(key);
    unsigned long long v;

    if (sscanf(at, " %llx", &v) != 1)
        test_fail(__FILE__, __LINE__, "no number after \"%s\"", key);
    return v;
}

/* The section of the demo's output for one platform. */
static const char *section(const char *out, const char *spec)
{
    char head[96];

    snprintf(head, sizeof(head), "=== dmahal demo on \"%s\" ===", spec);
    CHECK_CONTAINS(out, head);
    return strstr(out, head);
}

/* What the wrong way printed: the physical address and where the device sent each access. */
struct wrong {
    uint64_t pa, src_from, src_to, dst_from, dst_to;
};

static struct wrong parse_wrong(const char *s)
{
    struct wrong w;
    unsigned long long a, b;

    w.pa = hex_after(s, "      pa ");
    CHECK_EQ(sscanf(strstr(s, "source       0x") + 13, "%llx -> %llx", &a, &b), 2);
    w.src_from = a;
    w.src_to = b;
    CHECK_EQ(sscanf(strstr(s, "destination  0x") + 13, "%llx -> %llx", &a, &b), 2);
    w.dst_from = a;
    w.dst_to = b;
    /* What the driver programmed is its physical address; the device keeps the low 28 bits. */
    CHECK_EQ_U(w.src_from, w.pa);
    CHECK_EQ_U(w.dst_from, w.pa + ECHO_OFF);
    CHECK_EQ_U(w.src_to, w.pa & EDU_MASK);
    CHECK_EQ_U(w.dst_to, (w.pa + ECHO_OFF) & EDU_MASK);
    CHECK_GT(w.pa, EDU_MASK);
    return w;
}

/* The right way's buffer: its logical address, which must fit 28 bits, and the delivery. */
static uint64_t check_right(const char *s)
{
    const char *part2 = strstr(s, "-- Part 2");
    char verified[96];
    uint64_t la;

    CHECK(part2 != NULL);
    la = hex_after(part2, "  la ");
    CHECK_LE_U(la + 4095, EDU_MASK);
    CHECK_CONTAINS(part2, "What the driver finds at va+0x800: \"hello from the driver\"");
    CHECK_CONTAINS(part2, "the message, verified byte for byte");
    CHECK_CONTAINS(part2, "faults recorded: 0");
    snprintf(verified, sizeof(verified), "right way: data verified at la 0x%012llx",
             (unsigned long long)(la + ECHO_OFF));
    CHECK_CONTAINS(s, verified);
    /* The !dma view that follows lists the buffer under its logical address. */
    snprintf(verified, sizeof(verified), "la 0x%012llx-0x%012llx  len 4096", (unsigned long long)la,
             (unsigned long long)(la + 4095));
    CHECK_CONTAINS(strstr(part2, "-- Part 3"), verified);
    return la;
}

/* The physical address the demo's wrong way gets on @p spec, asked of the library: the
 * neighbour's 28-bit buffer first, then the contiguous memory, as the demo does. */
static uint64_t library_pa(const char *spec)
{
    struct dmahal_desc desc = {.addr_bits = 28};
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    void *va;
    uint64_t pa;

    CHECK_OK(dmahal_platform_open(spec, &p));
    CHECK_OK(dmahal_device_open(p, "edu", &d));
    CHECK_OK(dmahal_adapter_get(d, &desc, &a));
    CHECK_OK(dmahal_common_alloc(a, 4096, 0, &b));
    CHECK_OK(dmahal_sim_contig_alloc(p, 4096, &va));
    CHECK_OK(dmahal_sim_virt_to_phys(p, va, &pa));
    dmahal_platform_close(p);
    return pa;
}

/* The demo's own lines fit 100 columns (the dump's, in Part 3, are the dump's business; Part 4
 * wraps its view). */
static void check_line_width(const char *out)
{
    bool in_dump = false;

    for (const char *l = out; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);

        if (strncmp(l, "-- Part 3", 9) == 0)
            in_dump = true;
        else if (strncmp(l, "===", 3) == 0 || strncmp(l, "-- Part 4", 9) == 0)
            in_dump = false;
        if (!in_dump && len > 100)
            test_fail(__FILE__, __LINE__, "line of %zu columns: %.*s", len, (int)len, l);
        l += len + (nl != NULL);
    }
}

/* ---- demo ------------------------------------------------------------------------------- */

/* Skips a case about the verifier in a library built without it. */
static void need_verifier(void)
{
    if (dmahal_verify_enable(NULL, 0, NULL, NULL) == -ENOTSUP)
        TEST_SKIP("the library is built without the verifier (DMAHAL_VERIFIER=OFF)");
}

TEST(demo_default_runs_without_and_with_iommu)
{
    struct run r = TOOL("demo");

    CHECK_EQ(r.status, 0);
    CHECK_STR(r.err, "");
    CHECK(section(r.out, "sim") < section(r.out, "sim:iommu=on"));
    CHECK_CONTAINS(r.out, "sim           wrong way: DMA silently went to 0x");
    CHECK_CONTAINS(r.out, "sim:iommu=on  wrong way: IOMMU faults at 0x");
    CHECK_CONTAINS(r.out, "the story unfolded as explained");
    CHECK(strstr(r.out, "FAILED") == NULL);
    check_line_width(r.out);
}

TEST(demo_runs_on_other_sim_machines)
{
    /* Pages of 64 KiB move the contiguous memory to 64 GiB - 64 KiB; a non-coherent machine
     * changes nothing for uncached common buffers. */
    static const char *const specs[] = {"sim:page=64K", "sim:coherent=no", "sim:iommu=on,page=16K",
                                        "sim:ram=0-64G"};

    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        struct run r = TOOL("demo", "--platform", specs[i]);
        const char *s = section(r.out, specs[i]);
        struct wrong w;

        CHECK_EQ(r.status, 0);
        w = parse_wrong(s);
        CHECK_EQ_U(w.pa, library_pa(specs[i]));
        check_right(s);
    }
}

TEST(demo_sim_truncation_hits_the_neighbour)
{
    struct run r = TOOL("demo", "--platform", "sim");
    const char *s = section(r.out, "sim");
    char line[128];
    struct wrong w;
    uint64_t nb;

    CHECK_EQ(r.status, 0);
    CHECK_STR(r.err, "");
    w = parse_wrong(s);
    CHECK_EQ_U(w.pa, library_pa("sim"));
    CHECK_CONTAINS(s, "DMA result: done, then done; faults recorded: 0");
    CHECK_CONTAINS(s, "What the driver finds at va+0x800: (32 zero bytes)");
    /* The echo is at the truncated destination, and it is the neighbour's data. */
    snprintf(line, sizeof(line), "memory at 0x%012llx: \"neighbour: account 0042\"",
             (unsigned long long)w.dst_to);
    CHECK_CONTAINS(s, line);
    nb = hex_after(s, "owns:\n      la ");
    CHECK_EQ_U(nb, w.src_to);
    CHECK_CONTAINS(s, "was \"neighbour: ring head 7\", now \"neighbour: account 0042\"");
    snprintf(line, sizeof(line), "wrong way: DMA silently went to 0x%012llx",
             (unsigned long long)w.dst_to);
    CHECK_CONTAINS(r.out, line);
    /* Without an IOMMU the common buffer's la is its physical address. */
    CHECK_CONTAINS(s, "la = pa 0x");
    check_right(s);
    CHECK_CONTAINS(s, "-- Part 3: dmahal_dump(p, stdout, DMAHAL_DUMP_ALL)");
    CHECK_CONTAINS(s, "  faults: 0");
}

TEST(demo_iommu_faults_at_the_truncated_addresses)
{
    struct run r = TOOL("demo", "--platform", "sim:iommu=on");
    const char *s = section(r.out, "sim:iommu=on");
    char line[128];
    struct wrong w;
    uint64_t la, pa;

    CHECK_EQ(r.status, 0);
    CHECK_STR(r.err, "");
    w = parse_wrong(s);
    CHECK_EQ_U(w.pa, library_pa("sim:iommu=on"));
    CHECK_CONTAINS(s, "DMA result: bus fault, then bus fault; faults recorded: 2");
    snprintf(line, sizeof(line), "fault #1  edu    read  0x%012llx  len 32  (unmapped)",
             (unsigned long long)w.src_to);
    CHECK_CONTAINS(s, line);
    snprintf(line, sizeof(line), "fault #2  edu    write 0x%012llx  len 32  (unmapped)",
             (unsigned long long)w.dst_to);
    CHECK_CONTAINS(s, line);
    CHECK_CONTAINS(s, "the neighbour's buffer is unchanged");
    /* The right way's la is an IO address: the memory itself is elsewhere, above 2^28. */
    la = check_right(s);
    pa = hex_after(strstr(s, "-- Part 2"), "      pa ");
    CHECK_NE_U(pa, la);
    CHECK_GT(pa, EDU_MASK);
    CHECK_CONTAINS(s, "  faults: 2");
}

TEST(demo_values_follow_the_machine)
{
    /* Another RAM layout moves the contiguous memory, and the story's addresses with it. */
    const char *spec = "sim:ram=0-1G,4G-32G";
    struct run r = TOOL("demo", "--platform", spec);
    struct wrong w;

    CHECK_EQ(r.status, 0);
    w = parse_wrong(section(r.out, spec));
    CHECK_EQ_U(w.pa, library_pa(spec));
    CHECK_LT_U(w.pa, UINT64_C(32) << 30);
    CHECK_GE_U(w.pa, UINT64_C(4) << 30);
    CHECK_NE_U(w.pa, library_pa("sim"));
}

TEST(demo_truncated_address_outside_ram_faults)
{
    /* RAM up to 128 MiB only: the truncated addresses (near 256 MiB) are no RAM at all. */
    const char *spec = "sim:ram=0-128M,4G-64G";
    struct run r = TOOL("demo", "--platform", spec);
    const char *s = section(r.out, spec);
    char line[128];
    struct wrong w;

    CHECK_EQ(r.status, 0);
    w = parse_wrong(s);
    CHECK_GE_U(w.src_to, UINT64_C(128) << 20);
    snprintf(line, sizeof(line), "fault #1  edu    read  0x%012llx  len 32  (%s)",
             (unsigned long long)w.src_to, dmahal_fault_reason_name(DMAHAL_FAULT_NO_RAM));
    CHECK_CONTAINS(s, line);
    snprintf(line, sizeof(line), "fault #2  edu    write 0x%012llx  len 32  (%s)",
             (unsigned long long)w.dst_to, dmahal_fault_reason_name(DMAHAL_FAULT_NO_RAM));
    CHECK_CONTAINS(s, line);
    CHECK_CONTAINS(s, "What the driver finds at va+0x800: (32 zero bytes)");
    CHECK_LT_U(check_right(s), UINT64_C(128) << 20);
}

TEST(demo_fails_when_the_wrong_way_works)
{
    /* All RAM below 2^28: the mistake goes unnoticed, so there is no story to tell. */
    struct run r = TOOL("demo", "--platform", "sim:ram=0-256M");

    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "dmahal demo: on \"sim:ram=0-256M\": the wrong way worked here");
    CHECK_CONTAINS(r.out, "FAILED");
    CHECK(strstr(r.out, "the story unfolded") == NULL);
}

TEST(demo_fails_when_the_device_cannot_be_served)
{
    /* No RAM below 2^28 and no IOMMU: no memory the edu can reach. */
    struct run r = TOOL("demo", "--platform", "sim:ram=4G-64G");

    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "dmahal_common_alloc failed");
    CHECK_CONTAINS(r.err, dmahal_strerror(-ENOMEM));
}

TEST(demo_bad_platform)
{
    struct run r = TOOL("demo", "--platform", "sim:iommu=maybe");
    char msg[128];

    CHECK_EQ(r.status, 1);
    snprintf(msg, sizeof(msg), "cannot open platform \"sim:iommu=maybe\": %s",
             dmahal_strerror(-EINVAL));
    CHECK_CONTAINS(r.err, msg);
    r = TOOL("demo", "--platform=nonsense");
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "cannot open platform \"nonsense\"");
}

/* ---- demo, Part 4: the verifier ------------------------------------------------------------ */

/* A buffer the driver with bugs printed: "NAME   la 0xFIRST-0xLAST  len N". */
struct pbuf {
    uint64_t la, last;
    size_t len;
    char range[64]; /* "la 0x...-0x...", as the verifier names a buffer */
};

static struct pbuf parse_buf(const char *part4, const char *name)
{
    char key[32];
    const char *at;
    unsigned long long la, last;
    size_t len;
    struct pbuf b;

    snprintf(key, sizeof(key), "      %-6s la ", name);
    at = strstr(line_with(part4, key), key) + strlen(key);
    CHECK_EQ(sscanf(at, "%llx-%llx len %zu", &la, &last, &len), 3);
    b.la = la;
    b.last = last;
    b.len = len;
    CHECK_EQ_U(b.last, b.la + b.len - 1);
    CHECK_LE_U(b.last, EDU_MASK); /* a 28-bit adapter's buffers */
    snprintf(b.range, sizeof(b.range), "la 0x%012llx-0x%012llx", la, last);
    return b;
}

/* One report as the demo printed it: its header, then its message wrapped over the lines
 * below; the message comes back on one line. */
struct preport {
    char kind[40];
    uint64_t la;
    size_t len;
    char msg[512];
};

static struct preport parse_report(const char *part4, unsigned n)
{
    char key[32];
    const char *at, *l;
    unsigned long long la;
    struct preport r = {0};
    size_t o = 0;

    snprintf(key, sizeof(key), "      report #%u  ", n);
    at = strstr(line_with(part4, key), key) + strlen(key);
    CHECK_EQ(sscanf(at, "%39s la %llx len %zu", r.kind, &la, &r.len), 3);
    r.la = la;
    for (l = strchr(at, '\n') + 1; strncmp(l, "        ", 8) == 0 && l[8] != ' ';) {
        const char *nl = strchr(l, '\n');
        size_t k = (size_t)(nl - l) - 8;

        CHECK_LT(o + k + 2, sizeof(r.msg));
        if (o)
            r.msg[o++] = ' ';
        memcpy(r.msg + o, l + 8, k);
        o += k;
        l = nl + 1;
    }
    r.msg[o] = '\0';
    CHECK_GT(o, 0);
    return r;
}

/* The report #@p n: of @p kind at @p la, @p len, naming the buffer @p b by its range. */
static struct preport check_report(const char *part4, unsigned n, const char *kind, uint64_t la,
                                   size_t len, const struct pbuf *b)
{
    struct preport r = parse_report(part4, n);
    char name[96];

    CHECK_STR(r.kind, kind);
    CHECK_EQ_U(r.la, la);
    CHECK_EQ(r.len, len);
    snprintf(name, sizeof(name), "%zu-byte common buffer %s", b->len, b->range);
    CHECK_CONTAINS(r.msg, name);
    return r;
}

/* Part 4 of the demo's output on @p spec, up to the next "===" line. */
static char *part4_of(const char *out, const char *spec)
{
    const char *s = strstr(section(out, spec), "-- Part 4: ");
    const char *end;
    char *p;

    CHECK(s != NULL);
    end = strstr(s, "\n===");
    CHECK(end != NULL);
    p = strndup(s, (size_t)(end - s) + 1);
    CHECK(p != NULL);
    CHECK_LT(nkept, sizeof(kept) / sizeof(kept[0]));
    kept[nkept++] = p;
    return p;
}

/* Part 4 on @p spec; @p before: reports the verifier made before Part 4 (the dump counts them). */
static void check_part4(const char *out, const char *spec, unsigned before)
{
    const char *p4 = part4_of(out, spec);
    struct pbuf ring = parse_buf(p4, "ring"), status = parse_buf(p4, "status"),
                table = parse_buf(p4, "table");
    const char *dump = strstr(p4, "the !dma view");
    char line[160];
    struct preport r;

    CHECK_CONTAINS(p4, "dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, on_report, &log)");
    CHECK_EQ(ring.len, ECHO_OFF); /* no room for the echo at +0x800 */
    CHECK_EQ(status.len, 32);
    /* (a) The echo lands right after the ring: on the bus, then in the guard zone. */
    r = check_report(p4, 1, "device-out-of-bounds", ring.la + ECHO_OFF, 32, &ring);
    CHECK_CONTAINS(r.msg, "device edu writes 32 byte(s)");
    CHECK_CONTAINS(r.msg, "outside every live buffer: 0 byte(s) after the end of 2048-byte");
    r = check_report(p4, 2, "overrun", ring.last + 1, 32, &ring);
    CHECK_CONTAINS(r.msg, "32 byte(s) past the end changed (offsets 2048..2079");
    /* (b) The second free is refused and named. */
    snprintf(line, sizeof(line), "dmahal_common_free(ring) = %d (%s)", -EINVAL,
             dmahal_strerror(-EINVAL));
    CHECK_CONTAINS(p4, line);
    r = check_report(p4, 3, "double-free", ring.la, ring.len, &ring);
    CHECK_CONTAINS(r.msg, "double free of 2048-byte");
    /* (c) The device writes into the freed status; the quarantine shows the damage. */
    r = check_report(p4, 4, "device-use-after-free", status.la, 32, &status);
    CHECK_CONTAINS(r.msg, "writes 32 byte(s)");
    CHECK_CONTAINS(r.msg, "in a freed buffer: offset 0 of 32-byte");
    CHECK_CONTAINS(p4, "dmahal_verify_check(p) = 1");
    r = check_report(p4, 5, "write-after-free", status.la, 32, &status);
    CHECK_CONTAINS(r.msg, "offsets 0..31 of 32-byte");
    /* (d) The adapter goes with the table still allocated. */
    r = check_report(p4, 6, "leak", table.la, table.len, &table);
    CHECK_CONTAINS(r.msg, "leak: adapter put with 512-byte");
    CHECK(strstr(p4, "report #7") == NULL);
    CHECK_CONTAINS(out, "verifier:  6 reports, for 4 bugs, as expected");

    /* The !dma view comes before the leak: the table, live, with where it was allocated;
     * the freed buffers in quarantine; the reports so far. */
    CHECK(dump != NULL && dump < strstr(p4, "report #6"));
    CHECK_CONTAINS(dump, "(verified)");
    snprintf(line, sizeof(line), "la 0x%012llx-0x%012llx  len 512", (unsigned long long)table.la,
             (unsigned long long)table.last);
    CHECK_CONTAINS(dump, line);
    CHECK_CONTAINS(dump, "guards intact");
    CHECK_CONTAINS(dump, "allocated by:");
    /* The driver's own frame, by name ("tool_buggy_load+0x30 (buggy.c:30) in dmahal", or
     * "tool_buggy_load+0x30 in ..." without libdw); dmahal_common_alloc's may be gone (its dispatch
     * is a tail call in optimised builds). */
    CHECK_CONTAINS(dump, " tool_buggy_load+0x");
    snprintf(line, sizeof(line), "quarantined: 2048-byte common buffer %s", ring.range);
    CHECK_CONTAINS(dump, line);
    snprintf(line, sizeof(line), "quarantined: 32-byte common buffer %s", status.range);
    CHECK_CONTAINS(dump, line);
    snprintf(line, sizeof(line), "reports: %u\n", 5 + before);
    CHECK_CONTAINS(dump, line);
    CHECK_CONTAINS(dump, "double-free: 1\n");
    CHECK_CONTAINS(dump, "device-use-after-free: 1\n");
    CHECK_CONTAINS(p4, "tools/gdb/dmahal.py, then dma 0 0x2");
}

TEST(demo_verifier_names_each_bug)
{
    need_verifier();
    static const char *const specs[] = {"sim", "sim:iommu=on", "sim:page=64K"};

    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        struct run r = TOOL("demo", "--platform", specs[i]);

        CHECK_EQ(r.status, 0);
        CHECK_STR(r.err, "");
        check_part4(r.out, specs[i], 0);
        check_line_width(r.out);
    }
}

TEST(demo_verifier_part_on_both_default_machines)
{
    need_verifier();
    struct run r = TOOL("demo");

    CHECK_EQ(r.status, 0);
    check_part4(r.out, "sim", 0);
    check_part4(r.out, "sim:iommu=on", 0);
}

TEST(demo_verifier_already_on_from_the_environment)
{
    need_verifier();
    /* DMAHAL_VERIFY=1 turns the verifier on before the demo does: Parts 1 and 2 are then
     * checked too (the wrong way's stray accesses are printed on stderr), and Part 4 hears
     * only its own bugs. */
    struct run r =
        tool("DMAHAL_VERIFY=1", (const char *const[]){"demo", "--platform", "sim", NULL});
    unsigned before = 0;

    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.err, "dmahal verifier: device-out-of-bounds: device edu reads 32 byte(s)");
    /* Those reports went to stderr; Part 4's went to the demo's callback alone, and the
     * dump counts both. */
    for (const char *e = r.err; (e = strstr(e, "dmahal verifier: ")) != NULL; e++)
        before++;
    CHECK_GT(before, 0);
    check_part4(r.out, "sim", before);
    CHECK(strstr(r.err, "double free") == NULL);
}

/* ---- info ------------------------------------------------------------------------------- */

TEST(info_default)
{
    struct run r = TOOL("info");
    const struct dmahal_model *edu = dmahal_model_find("edu");
    char version[64];

    CHECK_EQ(r.status, 0);
    CHECK_STR(r.err, "");
    snprintf(version, sizeof(version), "dmahal %s\n", dmahal_version());
    CHECK(strncmp(r.out, version, strlen(version)) == 0);
    CHECK_CONTAINS(r.out, "platform \"sim\": no IOMMU, page size 4096");
    CHECK_CONTAINS(r.out, "  iommu: off");
    CHECK_CONTAINS(r.out, "(61440 MiB)");
    CHECK(edu != NULL);
    CHECK_CONTAINS(r.out, edu->summary);
}

TEST(info_platform_option_and_environment)
{
    struct run r = TOOL("info", "--platform", "sim:iommu=on,page=64K");

    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "IOMMU, page size 65536");
    CHECK_CONTAINS(r.out, "  iommu: on");
    r = tool("DMAHAL_PLATFORM=sim:iommu=on", (const char *const[]){"info", NULL});
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "platform \"sim:iommu=on\": IOMMU");
    r = tool("DMAHAL_PLATFORM=bogus", (const char *const[]){"info", NULL});
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "cannot open platform \"bogus\"");
}

/* ---- usage ------------------------------------------------------------------------------ */

TEST(help_goes_to_stdout)
{
    struct run r = TOOL("help");

    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "usage: dmahal COMMAND");
    CHECK_STR(r.err, "");
    r = TOOL("--help");
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "usage: dmahal COMMAND");
    r = TOOL("--version");
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, dmahal_version());
}

static void check_misuse(struct run r, const char *why)
{
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, why);
    CHECK_CONTAINS(r.err, "usage: dmahal COMMAND");
    CHECK_STR(r.out, "");
}

TEST(misuse_exits_2)
{
    check_misuse(tool(NULL, (const char *const[]){NULL}), "no command given");
    check_misuse(TOOL("frobnicate"), "unknown command 'frobnicate'");
    check_misuse(TOOL("demo", "--iommu"), "unknown option '--iommu'");
    check_misuse(TOOL("demo", "--platform"), "option --platform needs a value");
    check_misuse(TOOL("info", "--platform="), "option --platform needs a value");
    check_misuse(TOOL("demo", "--platform", "sim", "--platform", "sim"), "given twice");
    check_misuse(TOOL("help", "demo"), "'help' takes no arguments");
}

TEST(devices_lists_the_sim_models)
{
    struct run r = TOOL("devices", "--platform", "sim");

    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "edu            1234:11e8 00ff00");
    CHECK_CONTAINS(r.out, "nvme           1b36:0010 010802");
    r = TOOL("devices", "--platform", "nonsense");
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "cannot list the devices of \"nonsense\"");
    r = TOOL("devices", "--bogus");
    CHECK_EQ(r.status, 2);
}

/* Only the refusals: they touch nothing in sysfs. */
TEST(bind_and_unbind_refuse_bad_devices)
{
    struct run r = TOOL("bind", "bogus");

    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "\"bogus\" is not a PCI address");
    r = TOOL("bind", "00:1f.8");
    CHECK_EQ(r.status, 2);
    r = TOOL("bind", "ffff:ff:1f.7");
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "no PCI device ffff:ff:1f.7");
    r = TOOL("unbind", "ffff:ff:1f.7");
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "no PCI device ffff:ff:1f.7");
    r = TOOL("unbind");
    CHECK_EQ(r.status, 2);
    r = TOOL("bind", "1", "2", "3");
    CHECK_EQ(r.status, 2);
}

/* The host's PCI devices, as sysfs shows them: whatever is there, a device that cannot be
 * opened carries its fix. */
TEST(devices_on_the_host_each_unopenable_has_a_fix)
{
    struct dmahal_device_info *v;
    int n = dmahal_device_list("vfio", &v);
    struct run r;

    if (n < 0)
        TEST_SKIP("no /sys/bus/pci here (%s)", dmahal_strerror(n));
    for (int i = 0; i < n; i++) {
        CHECK_EQ(strlen(v[i].name), 12);
        if (!v[i].openable)
            CHECK_NE(strlen(v[i].fix), 0);
        if (v[i].iommu_group < 0)
            CHECK(!v[i].openable);
    }
    free(v);
    r = TOOL("devices");
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "DEVICE");
}
