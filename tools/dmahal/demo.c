/* SPDX-License-Identifier: MIT */
/*
 * demo.c - `dmahal demo`: the seed's story, told on the simulated machine.
 *
 * A driver for QEMU's edu device, whose DMA engine drives 28 address bits, wants the device
 * to read a message from memory and write it back 2 KiB further on. First it does what the
 * seed warns against: contiguous memory (dmahal_sim_contig_alloc, the MmAllocateContiguous-
 * Memory analog) and its physical address (dmahal_sim_virt_to_phys, MmGetPhysicalAddress).
 * On a machine whose RAM is mostly above 4 GiB that address is beyond the device: the device
 * drops the high bits and the transfer goes elsewhere, or, with an IOMMU, faults. Then it
 * does what the seed says: an adapter that knows the device's width (dmahal_adapter_get, the
 * IoGetDmaAdapter analog) and a common buffer from it (dmahal_common_alloc, AllocateCommon-
 * Buffer), and programs the logical address. A second driver, written the right way, owns
 * memory below 2^28 as other drivers do on a real machine, so that damage has a victim.
 *
 * Last, the seed's closing advice: Driver Verifier's DMA checks (dmahal_verify_enable). A new
 * version of the driver, with the verifier on, makes four classic mistakes, and the demo
 * prints each report the verifier hands its callback.
 *
 * Every address and byte printed is read at run time; the demo checks each outcome against
 * what it explains and fails (exit 1) when the machine did something else.
 */
#include "tool.h"

#include "edu/edu_regs.h"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* What the driver knows about its device from the datasheet (docs/devices/edu.md). */
#define EDU_BAR       0
#define EDU_ADDR_BITS 28
#define EDU_MASK      ((UINT64_C(1) << EDU_ADDR_BITS) - 1)
#define EDU_SPINS     1000000u /* polls before a transfer counts as hung */

#define BUF_LEN  4096u  /* each driver's buffer */
#define ECHO_OFF 0x800u /* the device writes the message back this far into the buffer */
#define MSG_LEN  32u    /* bytes each transfer moves */

/* Addresses print as 12 hex digits (48 bits), so that columns line up. */
#define ADDR "0x%012" PRIx64

static const char MESSAGE[MSG_LEN] = "hello from the driver";
#define NEIGHBOUR "edu:dma_mask=0xfffffff"

static const char NB_HEAD[MSG_LEN] = "neighbour: account 0042";
static const char NB_ECHO[MSG_LEN] = "neighbour: ring head 7";

#define REPORTS_MAX 16  /* reports Part 4 keeps; it expects fewer */
#define REPORT_MSG  512 /* bytes of a report's message kept */
#define WRAP        92  /* columns a report's message is wrapped to, after its indent */
#define TABLE_LEN   512 /* the buffer Part 4's driver leaks */

/* A verifier report, as the callback received it. */
struct seen {
    int kind;
    uint64_t la;
    size_t len;
    char msg[REPORT_MSG];
};

/* What the callback collects: reports in order, and how many did not fit. */
struct reports {
    struct seen r[REPORTS_MAX];
    size_t n, shown, lost;
};

struct story {
    const char *spec;
    struct dmahal_platform *p;
    bool iommu;
    unsigned step;
    struct dmahal_device *nd, *d;  /* the neighbour's device, the driver's */
    struct dmahal_adapter *na, *a; /* their adapters */
    struct dmahal_buf nb, b;       /* their common buffers */
    void *contig;                  /* the driver's contiguous memory (the wrong way) */
    struct reports rep;            /* Part 4: what the verifier reported */
    char wrong[96], right[96];     /* one line each for the summary */
    char verified[96];
    char why[256]; /* why the story did not unfold; "" while it does */
};

/* Two transfers: the message from RAM into the device, then back out to RAM + ECHO_OFF. */
struct echo {
    uint32_t in, out; /* the DMA result register after each */
};

/* ---- printing --------------------------------------------------------------------------- */

static void step(struct story *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(struct story *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step(struct story *st, const char *fmt, ...)
{
    va_list ap;

    printf("%2u. ", ++st->step);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("      ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* Records the first reason the story went differently from what it explains. */
static void fail(struct story *st, const char *fmt, ...)
{
    va_list ap;

    if (st->why[0])
        return;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof(st->why), fmt, ap);
    va_end(ap);
    printf("   !! %s\n", st->why);
}

/* A dmahal call's result: false (and the story fails) when it is an error. */
static bool api(struct story *st, const char *call, int rc)
{
    if (rc)
        fail(st, "%s failed: %s (%d)", call, dmahal_strerror(rc), rc);
    return rc == 0;
}

/* Bytes as a person reads them: quoted text up to the first NUL, or "(N zero bytes)". */
static const char *show(char *out, size_t size, const void *data, size_t len)
{
    const unsigned char *c = data;
    size_t n = 0, o = 0;

    while (n < len && c[n] == 0)
        n++;
    if (n == len) {
        snprintf(out, size, "(%zu zero bytes)", len);
        return out;
    }
    out[o++] = '"';
    for (n = 0; n < len && c[n] && o + 3 < size; n++)
        out[o++] = c[n] >= 0x20 && c[n] < 0x7f ? (char)c[n] : '.';
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

#define SHOW(name, data) show(name, sizeof(name), data, MSG_LEN)

static const char *result_name(uint32_t r)
{
    switch (r) {
    case 0:
        return "done";
    case 1:
        return "refused";
    case 2:
        return "bus fault";
    default:
        return "unknown";
    }
}

static bool in_buf(const struct dmahal_buf *b, uint64_t la)
{
    return b->len && la >= b->la && la - b->la < b->len;
}

/* Prints the faults recorded after the first @p before; returns how many it saw. */
static uint64_t show_faults(struct story *st, uint64_t before)
{
    struct dmahal_fault f = {.size = sizeof(f)};
    uint64_t n = 0;

    for (size_t i = 0; dmahal_fault_get(st->p, i, &f) == 0; i++) {
        if (f.seq <= before)
            continue;
        say("fault #%" PRIu64 "  %-5s  %-5s " ADDR "  len %zu  (%s)", f.seq, f.device,
            f.write ? "write" : "read", (uint64_t)f.la, f.len, dmahal_fault_reason_name(f.reason));
        n++;
    }
    return n;
}

/* Did a fault after @p before hit @p la with @p reason (0: any)? */
static bool faulted_at(struct story *st, uint64_t before, uint64_t la, int reason)
{
    struct dmahal_fault f = {.size = sizeof(f)};

    for (size_t i = 0; dmahal_fault_get(st->p, i, &f) == 0; i++)
        if (f.seq > before && f.la == la && (!reason || (int)f.reason == reason))
            return true;
    return false;
}

/* ---- the driver's side: the edu's DMA engine ----------------------------------------------- */

static int edu_transfer(struct dmahal_device *d, uint64_t src, uint64_t dst, uint32_t cmd,
                        uint32_t *result)
{
    dmahal_mmio_write64(d, EDU_BAR, EDU_REG_DMA_SRC, src);
    dmahal_mmio_write64(d, EDU_BAR, EDU_REG_DMA_DST, dst);
    dmahal_mmio_write64(d, EDU_BAR, EDU_REG_DMA_CNT, MSG_LEN);
    dmahal_mmio_write32(d, EDU_BAR, EDU_REG_DMA_CMD, cmd | EDU_CMD_RUN);
    /* A driver polls rather than assuming a delay: QEMU's device takes about 100 ms. */
    for (unsigned spin = 0; dmahal_mmio_read32(d, EDU_BAR, EDU_REG_DMA_CMD) & EDU_CMD_RUN; spin++)
        if (spin == EDU_SPINS)
            return -ETIMEDOUT;
    *result = dmahal_mmio_read32(d, EDU_BAR, EDU_REG_SIM_DMA_RESULT);
    return 0;
}

/* The message at @p la goes into the device, then back out to @p la + ECHO_OFF. */
static int edu_echo(struct dmahal_device *d, uint64_t la, struct echo *e)
{
    int rc = edu_transfer(d, la, EDU_BUF_ADDR, 0, &e->in);

    return rc ? rc : edu_transfer(d, EDU_BUF_ADDR, la + ECHO_OFF, EDU_CMD_TO_RAM, &e->out);
}

static void show_program(uint64_t base, const char *name)
{
    say("RAM -> device   source       %-3s        = " ADDR, name, base);
    say("device -> RAM   destination  %-3s+0x%03x  = " ADDR, name, ECHO_OFF, base + ECHO_OFF);
}

/* ---- the neighbour ------------------------------------------------------------------------- */

static int bus_master_on(struct dmahal_device *d)
{
    uint16_t cmd;
    int rc = dmahal_config_read(d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd));

    cmd |= DMAHAL_PCI_COMMAND_MASTER | DMAHAL_PCI_COMMAND_MEMORY;
    return rc ? rc : dmahal_config_write(d, DMAHAL_PCI_COMMAND, &cmd, sizeof(cmd));
}

static bool neighbour_setup(struct story *st)
{
    struct dmahal_desc desc = {.addr_bits = EDU_ADDR_BITS};
    char t1[48], t2[48];

    /* The same 28-bit edu, opened under a name of its own so that the dump tells them apart. */
    if (!api(st, "the neighbour's dmahal_device_open",
             dmahal_device_open(st->p, NEIGHBOUR, &st->nd)) ||
        !api(st, "the neighbour's dmahal_adapter_get",
             dmahal_adapter_get(st->nd, &desc, &st->na)) ||
        !api(st, "the neighbour's dmahal_common_alloc",
             dmahal_common_alloc(st->na, BUF_LEN, 0, &st->nb)))
        return false;
    memcpy(st->nb.va, NB_HEAD, MSG_LEN);
    memcpy((char *)st->nb.va + ECHO_OFF, NB_ECHO, MSG_LEN);
    step(st, "Another driver (the neighbour, device %s), written the right way, owns:", NEIGHBOUR);
    say("la " ADDR ".." ADDR "  +0x000 %s", (uint64_t)st->nb.la, (uint64_t)st->nb.la + BUF_LEN - 1,
        SHOW(t1, st->nb.va));
    say("%*s  +0x%03x %s", 34, "", ECHO_OFF, SHOW(t2, (char *)st->nb.va + ECHO_OFF));
    return true;
}

/* ---- part 1: the wrong way ------------------------------------------------------------------ */

/* Without an IOMMU the device's addresses are physical: show where the data really went. */
static void wrong_direct(struct story *st, uint64_t src, uint64_t dst, const char *nb_before)
{
    char at_src[MSG_LEN], at_dst[MSG_LEN], t1[48], t2[48];

    /* Read as the device sees memory: without an IOMMU, logical = physical. */
    if (!api(st, "dmahal_dev_read", dmahal_dev_read(st->d, src, at_src, MSG_LEN)) ||
        !api(st, "dmahal_dev_read", dmahal_dev_read(st->d, dst, at_dst, MSG_LEN)))
        return;
    say("memory at " ADDR ": %s   (dmahal_dev_read)", dst, SHOW(t1, at_dst));
    if (memcmp(at_dst, at_src, MSG_LEN) != 0) {
        fail(st,
             "the bytes at " ADDR " are not those at " ADDR ": the DMA did not go where "
             "the mask sends it",
             dst, src);
        return;
    }
    say("= the bytes at " ADDR ", which the device read instead of the message", src);
    if (in_buf(&st->nb, src))
        say("  source is the neighbour's buffer +0x%03" PRIx64 ": its data leaked into the device",
            src - st->nb.la);
    if (in_buf(&st->nb, dst)) {
        uint64_t off = dst - st->nb.la;

        say("  destination is the neighbour's buffer +0x%03" PRIx64 ":", off);
        say("    was %s, now %s", SHOW(t1, nb_before + off), SHOW(t2, (char *)st->nb.va + off));
        if (memcmp((char *)st->nb.va + off, nb_before + off, MSG_LEN) == 0)
            say("  (the same bytes: the damage is there, but invisible this time)");
    }
    snprintf(st->wrong, sizeof(st->wrong), "DMA silently went to " ADDR, dst);
}

/* One wrong-way attempt: where the device really went, and the state before it went. */
struct attempt {
    uint64_t pa, src, dst; /* what the driver programmed; what the device drove */
    uint64_t faults0;      /* faults recorded before */
    struct echo e;
    char nb_before[BUF_LEN]; /* the neighbour's buffer before */
};

/* Step 6: checks the outcome against what the platform should have done, and says so. */
static void wrong_explain(struct story *st, const struct attempt *at)
{
    uint64_t nfaults = dmahal_fault_count(st->p) - at->faults0;
    char seen[MSG_LEN], t1[48];

    memcpy(seen, (char *)st->contig + ECHO_OFF, MSG_LEN);
    step(st, "What the driver finds at va+0x%03x: %s", ECHO_OFF, SHOW(t1, seen));
    if (memcmp(seen, MESSAGE, MSG_LEN) == 0) {
        say("the transfer worked: this machine put the memory where the edu reaches");
        fail(st,
             "the wrong way worked here (pa " ADDR " is below 2^28): give the machine RAM "
             "above 256 MiB, as the default sim has, to see it fail",
             at->pa);
        return;
    }
    say("not the message: the echo never reached the driver's buffer");
    if (st->iommu) {
        if (at->e.in != 2 || at->e.out != 2 ||
            !faulted_at(st, at->faults0, at->src, DMAHAL_FAULT_UNMAPPED) ||
            !faulted_at(st, at->faults0, at->dst, DMAHAL_FAULT_UNMAPPED)) {
            fail(st, "expected two IOMMU faults at " ADDR " and " ADDR, at->src, at->dst);
            return;
        }
        if (memcmp(at->nb_before, st->nb.va, BUF_LEN) != 0) {
            fail(st, "the neighbour's buffer changed although the IOMMU refused the DMA");
            return;
        }
        say("the neighbour's buffer is unchanged: the IOMMU contained the mistake");
        snprintf(st->wrong, sizeof(st->wrong), "IOMMU faults at " ADDR " and " ADDR, at->src,
                 at->dst);
    } else if (at->e.in == 0 && at->e.out == 0) {
        if (nfaults) {
            fail(st, "faults were recorded although both transfers completed");
            return;
        }
        say("and nothing reported an error: the bus saw two valid addresses");
        wrong_direct(st, at->src, at->dst, at->nb_before);
    } else if (faulted_at(st, at->faults0, at->src, DMAHAL_FAULT_NO_RAM) ||
               faulted_at(st, at->faults0, at->dst, DMAHAL_FAULT_NO_RAM)) {
        say("a truncated address is not RAM on this machine, so the bus refused it");
        snprintf(st->wrong, sizeof(st->wrong), "DMA to " ADDR "/" ADDR " faulted: no RAM", at->src,
                 at->dst);
    } else {
        fail(st, "the DMA failed (%s, %s) without a fault at the truncated addresses",
             result_name(at->e.in), result_name(at->e.out));
    }
}

static void wrong_way(struct story *st)
{
    struct attempt at;
    char t1[48];

    step(st, "dmahal_sim_contig_alloc(%u)   the MmAllocateContiguousMemory analog", BUF_LEN);
    if (!api(st, "dmahal_sim_contig_alloc", dmahal_sim_contig_alloc(st->p, BUF_LEN, &st->contig)))
        return;
    say("va " ADDR "   contiguous, but chosen with no thought for any device",
        (uint64_t)(uintptr_t)st->contig);
    step(st, "dmahal_sim_virt_to_phys(va)   the MmGetPhysicalAddress analog");
    if (!api(st, "dmahal_sim_virt_to_phys", dmahal_sim_virt_to_phys(st->p, st->contig, &at.pa)))
        return;
    say("pa " ADDR "   %s", at.pa,
        at.pa + BUF_LEN - 1 > EDU_MASK ? "above 2^28: out of the edu's reach"
                                       : "below 2^28: within the edu's reach, by luck");

    memcpy(st->contig, MESSAGE, MSG_LEN);
    step(st, "The driver writes %s at va and programs pa into the edu:", SHOW(t1, MESSAGE));
    show_program(at.pa, "pa");
    memcpy(at.nb_before, st->nb.va, BUF_LEN);
    at.faults0 = dmahal_fault_count(st->p);
    if (!api(st, "the edu's DMA", edu_echo(st->d, at.pa, &at.e)))
        return;
    at.src = at.pa & EDU_MASK;
    at.dst = (at.pa + ECHO_OFF) & EDU_MASK;

    step(st, "The edu keeps only the low %d bits of each address (mask " ADDR "):", EDU_ADDR_BITS,
         EDU_MASK);
    say("source       " ADDR " -> " ADDR, at.pa, at.src);
    say("destination  " ADDR " -> " ADDR, at.pa + ECHO_OFF, at.dst);
    if (st->iommu)
        say("with an IOMMU these go through the edu's IO page table, where the driver "
            "mapped nothing");
    say("DMA result: %s, then %s; faults recorded: %" PRIu64, result_name(at.e.in),
        result_name(at.e.out), dmahal_fault_count(st->p) - at.faults0);
    show_faults(st, at.faults0);
    wrong_explain(st, &at);
}

/* ---- part 2: the right way ------------------------------------------------------------------ */

static void right_way(struct story *st)
{
    struct dmahal_desc desc = {.addr_bits = EDU_ADDR_BITS};
    char seen[MSG_LEN], nb_before[BUF_LEN], t1[48];
    uint64_t pa, faults0, nfaults;
    struct echo e;

    step(st, "dmahal_adapter_get(edu, {.addr_bits = %d})   the IoGetDmaAdapter analog",
         EDU_ADDR_BITS);
    if (!api(st, "dmahal_adapter_get", dmahal_adapter_get(st->d, &desc, &st->a)))
        return;
    say("the adapter knows the edu's width: %u map registers, reach up to " ADDR,
        dmahal_adapter_map_registers(st->a), EDU_MASK);
    step(st, "dmahal_common_alloc(adapter, %u)   the AllocateCommonBuffer analog", BUF_LEN);
    if (!api(st, "dmahal_common_alloc", dmahal_common_alloc(st->a, BUF_LEN, 0, &st->b)))
        return;
    say("va " ADDR "  la " ADDR, (uint64_t)(uintptr_t)st->b.va, (uint64_t)st->b.la);
    if (!api(st, "dmahal_sim_virt_to_phys", dmahal_sim_virt_to_phys(st->p, st->b.va, &pa)))
        return;
    if (pa == st->b.la)
        say("la = pa " ADDR ": without an IOMMU the HAL picked frames below 2^28", pa);
    else
        say("pa " ADDR " is where the memory is; la is an IO address the IOMMU maps to it", pa);
    if (st->iommu && in_buf(&st->nb, st->b.la))
        say("(the neighbour uses the same la: each device has an IO address space of its own)");
    if (st->b.la + BUF_LEN - 1 > EDU_MASK) {
        fail(st, "the common buffer's la " ADDR " is beyond 28 bits", (uint64_t)st->b.la);
        return;
    }

    memcpy(st->b.va, MESSAGE, MSG_LEN);
    step(st, "The driver writes %s at va and programs la into the edu:", SHOW(t1, MESSAGE));
    show_program(st->b.la, "la");
    memcpy(nb_before, st->nb.va, BUF_LEN);
    faults0 = dmahal_fault_count(st->p);
    if (!api(st, "the edu's DMA", edu_echo(st->d, st->b.la, &e)))
        return;
    nfaults = dmahal_fault_count(st->p) - faults0;
    step(st, "The mask leaves la as it is (" ADDR " & " ADDR " = " ADDR "):", (uint64_t)st->b.la,
         EDU_MASK, (uint64_t)st->b.la & EDU_MASK);
    say("DMA result: %s, then %s; faults recorded: %" PRIu64, result_name(e.in), result_name(e.out),
        nfaults);
    show_faults(st, faults0);

    memcpy(seen, (char *)st->b.va + ECHO_OFF, MSG_LEN);
    step(st, "What the driver finds at va+0x%03x: %s", ECHO_OFF, SHOW(t1, seen));
    if (e.in != 0 || e.out != 0 || nfaults || memcmp(seen, MESSAGE, MSG_LEN) != 0) {
        fail(st, "the right way did not deliver the message");
        return;
    }
    say("the message, verified byte for byte");
    if (memcmp(nb_before, st->nb.va, BUF_LEN) != 0) {
        fail(st, "the neighbour's buffer changed during the right way's DMA");
        return;
    }
    say("the neighbour's buffer is untouched by this transfer");
    snprintf(st->right, sizeof(st->right), "data verified at la " ADDR,
             (uint64_t)st->b.la + ECHO_OFF);
}

/* ---- part 4: the verifier catches a driver's mistakes --------------------------------------- */

/* The report callback. It runs under the verifier's lock, so it only copies: the demo prints
 * the reports once the call that caused them has returned. */
static void on_report(const struct dmahal_report *r, void *ctx)
{
    struct reports *rs = ctx;
    struct seen *s;

    if (rs->n == REPORTS_MAX) {
        rs->lost++;
        return;
    }
    s = &rs->r[rs->n++];
    s->kind = r->kind;
    s->la = r->la;
    s->len = r->len;
    snprintf(s->msg, sizeof(s->msg), "%s", r->message ? r->message : "");
}

/* Prints @p text word-wrapped to WRAP columns, each line after @p indent. */
static void wrapped(const char *indent, const char *text)
{
    while (*text) {
        size_t n = strlen(text), cut = n;

        if (n > WRAP) {
            cut = WRAP;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = WRAP;
        }
        printf("%s%.*s\n", indent, (int)cut, text);
        text += cut;
        while (*text == ' ')
            text++;
    }
}

/* What a mistake should make the verifier report. */
struct want {
    int kind;
    uint64_t la;
    size_t len;
};

/* Prints the reports made since the last call, and checks them against @p w: the same
 * kinds in the same order, at the addresses and lengths of the buffers concerned. */
static void reports_expect(struct story *st, const struct want *w, size_t nw)
{
    struct reports *rs = &st->rep;
    size_t first = rs->shown, got = rs->n - first;

    for (size_t i = first; i < rs->n; i++) {
        const struct seen *s = &rs->r[i];

        say("report #%zu  %-22s  la " ADDR "  len %zu", i + 1, dmahal_report_kind_name(s->kind),
            s->la, s->len);
        wrapped("        ", s->msg);
    }
    rs->shown = rs->n;
    if (rs->lost) {
        fail(st, "%zu report(s) did not fit the demo's log", rs->lost);
        return;
    }
    for (size_t i = 0; i < nw; i++) {
        const struct seen *s = i < got ? &rs->r[first + i] : NULL;

        if (!s || s->kind != w[i].kind || s->la != w[i].la || s->len != w[i].len) {
            fail(st, "expected report: %s at la " ADDR " len %zu",
                 dmahal_report_kind_name(w[i].kind), w[i].la, w[i].len);
            return;
        }
    }
    if (got != nw)
        fail(st, "expected %zu report(s), the verifier made %zu", nw, got);
}

static void show_buf(const char *name, const struct dmahal_buf *b, const char *why)
{
    say("%-6s la " ADDR "-" ADDR "  len %-4zu  %s", name, (uint64_t)b->la,
        (uint64_t)b->la + b->len - 1, b->len, why);
}

static bool buggy_start(struct story *st, struct tool_buggy *bd)
{
    const struct tool_buggy_sizes sz = {EDU_ADDR_BITS, ECHO_OFF, MSG_LEN, TABLE_LEN};

    step(st, "dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, on_report, &log)   Driver Verifier");
    if (!api(st, "dmahal_verify_enable",
             dmahal_verify_enable(st->p, DMAHAL_VERIFY_COUNT, on_report, &st->rep)))
        return false;
    say("adapters got from now on are checked: guard zones around common buffers, a");
    say("quarantine for freed ones, and every access the edu makes on the simulated bus");
    step(st, "A new version of the driver gets an adapter (verified) and three buffers:");
    if (!api(st, "tool_buggy_load (dmahal_adapter_get, dmahal_common_alloc)",
             tool_buggy_load(st->d, &sz, bd)))
        return false;
    show_buf("ring", &bd->ring, "sized for the message: no room for its echo");
    show_buf("status", &bd->status, "where the edu writes its result");
    show_buf("table", &bd->table, "a lookup table");
    return true;
}

/* (a) The echo goes to ring+0x800, but the ring is only 0x800 bytes long. The message,
 * zero-padded, holds no byte of the verifier's guard pattern, so all MSG_LEN bytes the edu
 * writes show as changed; the same holds for the freed pattern in (c). */
static void bug_overrun(struct story *st, struct tool_buggy *bd)
{
    struct echo e;

    memcpy(bd->ring.va, MESSAGE, MSG_LEN);
    step(st,
         "Bug (a): the driver still has the edu echo to ring+0x%03x, the ring's end:", ECHO_OFF);
    show_program(bd->ring.la, "la");
    if (!api(st, "the edu's DMA", edu_echo(st->d, bd->ring.la, &e)))
        return;
    say("DMA result: %s, then %s: the bus let it through; the verifier did not", result_name(e.in),
        result_name(e.out));
    reports_expect(
        st,
        (const struct want[]){{DMAHAL_REPORT_DEV_OUT_OF_BOUNDS, bd->ring.la + ECHO_OFF, MSG_LEN}},
        1);
    say("dmahal_common_free(ring): the free checks the guard zone after the ring");
    if (!api(st, "dmahal_common_free", dmahal_common_free(bd->a, &bd->ring)))
        return;
    reports_expect(
        st, (const struct want[]){{DMAHAL_REPORT_OVERRUN, bd->ring.la + bd->ring.len, MSG_LEN}}, 1);
}

/* (b) An error path frees the ring again. */
static void bug_double_free(struct story *st, struct tool_buggy *bd)
{
    int rc;

    step(st, "Bug (b): an error path frees the ring a second time:");
    rc = dmahal_common_free(bd->a, &bd->ring);
    say("dmahal_common_free(ring) = %d (%s): the verifier stops the call", rc, dmahal_strerror(rc));
    if (rc != -EINVAL)
        fail(st, "the second free returned %d, not -EINVAL", rc);
    reports_expect(
        st, (const struct want[]){{DMAHAL_REPORT_DOUBLE_FREE, bd->ring.la, bd->ring.len}}, 1);
}

/* (c) The driver frees status while the edu still has it as its destination. */
static void bug_use_after_free(struct story *st, struct tool_buggy *bd)
{
    uint32_t result;
    int n;

    step(st, "Bug (c): the driver frees status, then the edu writes its result there:");
    if (!api(st, "dmahal_common_free", dmahal_common_free(bd->a, &bd->status)) ||
        !api(st, "the edu's DMA",
             edu_transfer(st->d, EDU_BUF_ADDR, bd->status.la, EDU_CMD_TO_RAM, &result)))
        return;
    say("device -> RAM   destination  status     = " ADDR "   DMA result: %s",
        (uint64_t)bd->status.la, result_name(result));
    reports_expect(
        st, (const struct want[]){{DMAHAL_REPORT_DEV_USE_AFTER_FREE, bd->status.la, MSG_LEN}}, 1);
    n = dmahal_verify_check(st->p);
    say("dmahal_verify_check(p) = %d: the freed buffer, held in quarantine, was written", n);
    if (n != 1)
        fail(st, "dmahal_verify_check found %d damaged buffer(s), not 1", n);
    reports_expect(
        st, (const struct want[]){{DMAHAL_REPORT_WRITE_AFTER_FREE, bd->status.la, MSG_LEN}}, 1);
}

/* (d) The driver unloads with table still allocated. */
static void bug_leak(struct story *st, struct tool_buggy *bd)
{
    step(st, "Bug (d): the driver unloads, putting its adapter with table still allocated:");
    dmahal_adapter_put(bd->a);
    bd->a = NULL;
    say("dmahal_adapter_put(adapter): the verifier lists what was never freed");
    reports_expect(st, (const struct want[]){{DMAHAL_REPORT_LEAK, bd->table.la, bd->table.len}}, 1);
}

/* Prints one line of a dump after @p indent, wrapped at spaces to 100 columns. */
static void dump_line(const char *indent, const char *line)
{
    size_t lead = strspn(line, " "), width = 100 - strlen(indent);
    char more[64];

    snprintf(more, sizeof(more), "%s%*s", indent, (int)(lead + 4), "");
    while (strlen(line) > width) {
        size_t cut = width;

        while (cut > lead && line[cut] != ' ')
            cut--;
        if (cut == lead)
            break;
        printf("%s%.*s\n", indent, (int)cut, line);
        line += cut + 1;
        indent = more;
        width = 100 - strlen(more);
        lead = 0;
    }
    printf("%s%s\n", indent, line);
}

/* Is this backtrace frame ("#N 0x... binary(name+0x...) [0x...]") in a function with a name
 * of its own that is not the library's? Frames without a name (static functions) are not. */
static bool driver_frame(const char *frame)
{
    /* "#N 0xPC function+0xoff ...": the third word, up to its '+'. */
    const char *name = strchr(frame, ' ');
    size_t n;

    if (!name || !(name = strchr(name + 1, ' ')))
        return false;
    n = strcspn(++name, "+ ");
    return n > 0 && memchr(name, '/', n) == NULL && strncmp(name, "dmahal_", 7) != 0;
}

/* dmahal_dump's view for Part 4: its lines within 100 columns, and of each allocation
 * backtrace the frames up to the first named function outside the library (the driver's,
 * that allocated the buffer); how many frames follow is said in one line. */
static void dump_view(struct story *st, unsigned flags)
{
    char *text = NULL, *line, *save = NULL;
    size_t size = 0, skipped = 0, lead = 0;
    FILE *mem = open_memstream(&text, &size);
    bool found = false; /* the current backtrace reached the driver's frame */
    int rc;

    if (!mem) {
        fail(st, "no memory for the dump");
        return;
    }
    rc = dmahal_dump(st->p, mem, flags);
    if (fclose(mem) != 0 && rc == 0)
        rc = -ENOMEM;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *t = line + strspn(line, " ");
        unsigned frame;

        if (sscanf(t, "#%u ", &frame) == 1) {
            if (found) {
                lead = (size_t)(t - line);
                skipped++;
                continue;
            }
            found = driver_frame(t);
        } else {
            found = false;
            if (skipped)
                say("%*s(%zu more frames)", (int)lead, "", skipped);
            skipped = 0;
        }
        dump_line("      ", line);
    }
    if (skipped)
        say("%*s(%zu more frames)", (int)lead, "", skipped);
    free(text);
    if (rc)
        fail(st, "dmahal_dump failed: %s", dmahal_strerror(rc));
}

static void verifier_part(struct story *st)
{
    struct tool_buggy bd;

    if (!buggy_start(st, &bd))
        return;
    bug_overrun(st, &bd);
    if (!st->why[0])
        bug_double_free(st, &bd);
    if (!st->why[0])
        bug_use_after_free(st, &bd);
    if (st->why[0])
        return;
    step(st, "dmahal_dump(p, stdout, DMAHAL_DUMP_COMMON): the !dma view, with the verifier on");
    dump_view(st, DMAHAL_DUMP_COMMON);
    say("in gdb, on a stopped process or a core: source tools/gdb/dmahal.py, then dma 0 0x2");
    bug_leak(st, &bd);
    if (!st->why[0])
        snprintf(st->verified, sizeof(st->verified), "%zu reports, for 4 bugs, as expected",
                 st->rep.n);
}

/* ---- one platform --------------------------------------------------------------------------- */

static void release(struct story *st)
{
    if (st->b.va && !st->why[0])
        api(st, "dmahal_common_free", dmahal_common_free(st->a, &st->b));
    if (st->contig && !st->why[0])
        api(st, "dmahal_sim_contig_free", dmahal_sim_contig_free(st->p, st->contig));
    /* Closing the platform puts the adapters and frees what is left. */
    dmahal_platform_close(st->p);
}

static void run(struct story *st)
{
    int rc;

    printf("=== dmahal demo on \"%s\" ===\n", st->spec);
    if (tool_platform_open(st->spec, &st->p)) {
        snprintf(st->why, sizeof(st->why), "cannot open the platform");
        return;
    }
    if (strcmp(dmahal_platform_name(st->p), "sim") != 0) {
        fail(st, "the demo runs on the simulated platform (\"sim[:...]\"), not \"%s\"",
             dmahal_platform_name(st->p));
        dmahal_platform_close(st->p);
        return;
    }
    st->iommu = dmahal_platform_has_iommu(st->p) == 1;
    printf("machine: %s\n", st->iommu ? "an IOMMU, one IO page table per device"
                                      : "no IOMMU (device address = physical address)");
    printf("device:  edu, whose DMA engine drives %d address bits\n", EDU_ADDR_BITS);
    tool_dump_indented(st->p, DMAHAL_DUMP_PLATFORM, "  ", "ram:");

    printf("\n-- Part 1: the wrong way (contiguous memory + its physical address) --\n");
    /* The wrong way asks for no adapter, so it turns on bus mastering itself, as a driver
     * that hand-rolls its DMA pokes the command register itself. */
    if (neighbour_setup(st) &&
        api(st, "dmahal_device_open(\"edu\")", dmahal_device_open(st->p, "edu", &st->d)) &&
        api(st, "dmahal_config_write(command |= bus master)", bus_master_on(st->d)))
        wrong_way(st);
    if (!st->why[0]) {
        printf("\n-- Part 2: the seed's way (adapter + common buffer + logical address) --\n");
        right_way(st);
    }
    printf("\n-- Part 3: dmahal_dump(p, stdout, DMAHAL_DUMP_ALL), the !dma analog --\n");
    rc = tool_dump_indented(st->p, DMAHAL_DUMP_ALL, "  ", NULL);
    if (rc)
        fail(st, "dmahal_dump failed: %s", dmahal_strerror(rc));
    if (!st->why[0] && dmahal_verify_enable(NULL, 0, NULL, NULL) == -ENOTSUP) {
        /* The library was built without the verifier (DMAHAL_VERIFIER=OFF). */
        snprintf(st->verified, sizeof(st->verified), "left out: this library has no verifier");
    } else if (!st->why[0]) {
        printf("\n-- Part 4: Driver Verifier's DMA checks catch a driver's mistakes --\n");
        verifier_part(st);
    }
    release(st);
    printf("\n");
}

int tool_demo(const char *spec)
{
    static const char *const defaults[] = TOOL_DEMO_SPECS;
    struct story st[sizeof(defaults) / sizeof(defaults[0])];
    size_t n = spec ? 1 : sizeof(defaults) / sizeof(defaults[0]);
    int failed = 0, w = 0;

    /* On a real machine without an IOMMU the story is told on a real device. */
    if (spec && strncmp(spec, "noiommu", 7) == 0 && (spec[7] == '\0' || spec[7] == ':'))
        return tool_demo_noiommu(spec);
    memset(st, 0, sizeof(st));
    for (size_t i = 0; i < n; i++) {
        st[i].spec = spec ? spec : defaults[i];
        run(&st[i]);
        if ((int)strlen(st[i].spec) > w)
            w = (int)strlen(st[i].spec);
    }
    printf("=== summary ===\n");
    for (size_t i = 0; i < n; i++) {
        if (st[i].why[0]) {
            printf("%-*s  FAILED: %s\n", w, st[i].spec, st[i].why);
            fprintf(stderr, "dmahal demo: on \"%s\": %s\n", st[i].spec, st[i].why);
            failed++;
            continue;
        }
        printf("%-*s  wrong way: %s\n", w, st[i].spec, st[i].wrong);
        printf("%-*s  right way: %s\n", w, "", st[i].right);
        printf("%-*s  verifier:  %s\n", w, "", st[i].verified);
    }
    if (failed)
        return TOOL_EXIT_FAIL;
    printf("the story unfolded as explained: the wrong way misdirected the DMA, "
           "the right way delivered it\n");
    return TOOL_EXIT_OK;
}
