/* SPDX-License-Identifier: MIT */
/*
 * dump.c - the !dma analog: a human-readable view of a platform's DMA state.
 *
 * Layout: a device at column 0, its adapters at 2, an adapter's sections at 4, each one's
 * count before its items, the items at 6, their details at 8 and backtraces at 10. A
 * streaming mapping is listed once, under "scatter/gather lists"; common buffers are what
 * the driver allocated, never a mapping's pages.
 */
#include "core/verify_hooks.h"

#include <errno.h>
#include <stdlib.h>

struct walk {
    FILE *f;
    size_t n;
    size_t bytes;
    bool list;
};

static void print_buf(const struct dmahal_buf *b, void *arg)
{
    struct walk *w = arg;

    w->n++;
    w->bytes += b->len;
    if (w->list)
        fprintf(w->f, "      buffer va %p  la 0x%012llx-0x%012llx  len %zu\n", b->va,
                (unsigned long long)b->la, (unsigned long long)(b->la + b->len - 1), b->len);
}

struct sgl_walk {
    FILE *f;
    size_t n;
};

static const char *dir_name(enum dmahal_dir dir)
{
    return dir == DMAHAL_TO_DEVICE     ? "to device"
           : dir == DMAHAL_FROM_DEVICE ? "from device"
                                       : "bidirectional";
}

static void print_sgl(const struct dmahal_sgl *sgl, enum dmahal_dir dir, unsigned regs, void *arg)
{
    struct sgl_walk *w = arg;
    size_t total = 0;

    w->n++;
    for (unsigned i = 0; i < sgl->nseg; i++)
        total += sgl->seg[i].len;
    fprintf(w->f, "      sgl %p  %s  %zu bytes  %u segments  map registers %u%s\n",
            (const void *)sgl, dir_name(dir), total, sgl->nseg, regs, regs ? " (bounced)" : "");
    for (unsigned i = 0; i < sgl->nseg; i++)
        fprintf(w->f, "        [%u] la 0x%012llx  len %zu\n", i, (unsigned long long)sgl->seg[i].la,
                sgl->seg[i].len);
}

/* Items written to a memory stream, so that the section's count can come first. */
struct items {
    FILE *f;
    char *text;
    size_t size;
};

static FILE *items_open(struct items *it, FILE *fallback)
{
    it->text = NULL;
    it->f = open_memstream(&it->text, &it->size);
    return it->f ? it->f : fallback; /* out of memory: items before their count */
}

static void items_close(struct items *it, FILE *f)
{
    if (!it->f)
        return;
    fclose(it->f);
    if (it->text)
        fputs(it->text, f);
    free(it->text);
}

static void dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags)
{
    const struct dmahal__constraints *c = &a->c;
    struct walk w = {.f = f, .list = flags & DMAHAL_DUMP_COMMON};
    struct items it;

    fprintf(f, "  adapter %p  id %llu  %u-bit  map registers %u  %s%s\n", (void *)a,
            (unsigned long long)a->id, c->addr_bits, a->map_registers,
            c->coherent ? "coherent" : "non-coherent", a->verify ? "  (verified)" : "");
    if (flags & DMAHAL_DUMP_DESC) {
        fprintf(f,
                "    description: addr_bits %u, max_segments %u, max_transfer %zu,\n"
                "                 max_segment %zu, boundary %#llx, alignment %zu, coherent %s\n",
                a->desc.addr_bits, a->desc.max_segments, a->desc.max_transfer, a->desc.max_segment,
                (unsigned long long)a->desc.boundary, a->desc.alignment,
                a->desc.coherent ? "yes" : "no");
        fprintf(f, "    reach: logical addresses up to %#llx\n", (unsigned long long)c->max_addr);
    }
    if (flags & DMAHAL_DUMP_MAPREGS)
        fprintf(f, "    map registers: %u, %u in use\n", a->map_registers,
                dmahal_adapter_map_registers_in_use(a));
    /* A verified adapter's allocator holds buffers with guard zones around them, and its
     * mappings have backtraces: the verifier knows what the driver got, and shows both. */
    if (dmahal__vhook_dump_adapter(a, f, flags))
        return;
    w.f = items_open(&it, f);
    dmahal__common_walk(a, print_buf, &w);
    fprintf(f, "    common buffers: %zu, %zu bytes\n", w.n, w.bytes);
    items_close(&it, f);
    if (flags & DMAHAL_DUMP_SGL) {
        struct sgl_walk sw = {.f = items_open(&it, f)};

        dmahal__stream_walk(a, print_sgl, &sw);
        fprintf(f, "    scatter/gather lists: %zu\n", sw.n);
        items_close(&it, f);
    }
}

static void dump_faults(struct dmahal_platform *p, FILE *f)
{
    struct dmahal_fault ft = {.size = sizeof(ft)};
    uint64_t total = dmahal_fault_count(p);

    fprintf(f, "faults: %llu\n", (unsigned long long)total);
    for (size_t i = 0; dmahal_fault_get(p, i, &ft) == 0; i++)
        fprintf(f, "  #%llu %s: %s %#llx len %zu (%s)\n", (unsigned long long)ft.seq, ft.device,
                ft.write ? "write" : "read", (unsigned long long)ft.la, ft.len,
                dmahal_fault_reason_name(ft.reason));
}

int dmahal_dump(struct dmahal_platform *p, FILE *f, unsigned flags)
{
    if (!p || !f || (flags & ~DMAHAL_DUMP_ALL))
        return -EINVAL;
    if (flags & DMAHAL_DUMP_PLATFORM)
        p->ops->describe(p, f);
    pthread_mutex_lock(&p->lock);
    for (struct dmahal_device *d = p->devices; d; d = d->next) {
        fprintf(f, "device %s\n", d->name);
        pthread_mutex_lock(&d->lock);
        if (!d->adapters)
            fprintf(f, "  no adapters\n");
        for (struct dmahal_adapter *a = d->adapters; a; a = a->next)
            dump_adapter(a, f, flags);
        pthread_mutex_unlock(&d->lock);
    }
    if (!p->devices)
        fprintf(f, "no devices\n");
    pthread_mutex_unlock(&p->lock);
    if (flags & DMAHAL_DUMP_MAPREGS)
        dmahal__bounce_describe(p, f);
    if (flags & DMAHAL_DUMP_FAULTS)
        dump_faults(p, f);
    /* As !dma does when Driver Verifier's DMA checks are on. */
    dmahal__vhook_dump_platform(p, f);
    fflush(f);
    return ferror(f) ? -EIO : 0;
}
