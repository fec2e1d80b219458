/*
 * dump.c - the !dma analog: a human-readable view of a platform's DMA state.
 */
#include "core/core.h"
#include "verifier/verifier.h"

#include <errno.h>

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

static void dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags)
{
    const struct dmahal__constraints *c = &a->c;
    struct walk w = {.f = f, .list = flags & DMAHAL_DUMP_COMMON};

    fprintf(f, "  adapter %p  id %llu  %u-bit  map registers %u  %s%s\n", (void *)a,
            (unsigned long long)a->id, c->addr_bits, a->map_registers,
            c->coherent ? "coherent" : "non-coherent",
            a->ops != &dmahal__direct_ops ? "  (verified)" : "");
    if (flags & DMAHAL_DUMP_DESC) {
        fprintf(f, "    description: addr_bits %u, max_segments %u, max_transfer %zu,\n"
                   "                 max_segment %zu, boundary %#llx, alignment %zu, coherent %s\n",
                a->desc.addr_bits, a->desc.max_segments, a->desc.max_transfer,
                a->desc.max_segment, (unsigned long long)a->desc.boundary, a->desc.alignment,
                a->desc.coherent ? "yes" : "no");
        fprintf(f, "    reach: logical addresses up to %#llx\n", (unsigned long long)c->max_addr);
    }
    if (flags & DMAHAL_DUMP_MAPREGS)
        fprintf(f, "    map registers: %u (none in use: no streaming maps)\n", a->map_registers);
    if (flags & DMAHAL_DUMP_SGL)
        fprintf(f, "    scatter/gather lists: none\n");
    /* A verified adapter's allocator holds buffers with guard zones around them: the
     * verifier knows what the driver got, and how the guards are. */
    if (a->verify) {
        dmahal__verify_dump_adapter(a, f, flags);
        return;
    }
    dmahal__common_walk(a, print_buf, &w);
    fprintf(f, "    common buffers: %zu, %zu bytes\n", w.n, w.bytes);
}

static void dump_faults(struct dmahal_platform *p, FILE *f)
{
    struct dmahal_fault ft;
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
    if (flags & DMAHAL_DUMP_FAULTS)
        dump_faults(p, f);
    /* As !dma does when Driver Verifier's DMA checks are on. */
    if (atomic_load(&p->verifier))
        dmahal__verify_dump_platform(p, f);
    fflush(f);
    return ferror(f) ? -EIO : 0;
}
