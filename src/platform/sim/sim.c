/* SPDX-License-Identifier: MIT */
/*
 * sim.c - the simulated machine: physical RAM in ranges, frames handed out high-first,
 * logical = physical without an IOMMU, a per-device IO page table with one, and device
 * models that master the bus through dmahal_dev_read/dmahal_dev_write.
 *
 * Each RAM range is backed by one reservation of host address space (MAP_NORESERVE), so a
 * frame costs host memory only once something touches it: a 64 GiB machine runs in a few
 * megabytes. Physical address P of a range lives at host + (P - start), and the host base
 * is congruent to the range's start modulo 1 GiB, so a CPU address has the alignment of
 * its physical address.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HOST_ALIGN ((uint64_t)1 << 30)

/* ---- configuration --------------------------------------------------------------------- */

static int parse_range(const char *text, uint64_t *start, uint64_t *end)
{
    char buf[64];
    char *dash;

    if (strlen(text) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, text);
    dash = strchr(buf, '-');
    if (!dash)
        return -EINVAL;
    *dash = '\0';
    if (dmahal__parse_size(buf, start) || dmahal__parse_size(dash + 1, end))
        return -EINVAL;
    return *end > *start ? 0 : -EINVAL;
}

static int cmp_ram(const void *a, const void *b)
{
    const struct sim_ram *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorts the ranges, refuses overlaps and misalignment, and merges adjacent ones. */
static int ram_normalise(struct sim *s)
{
    unsigned out = 0;

    qsort(s->ram, s->nram, sizeof(s->ram[0]), cmp_ram);
    for (unsigned i = 0; i < s->nram; i++) {
        struct sim_ram *r = &s->ram[i];

        if ((r->start | r->end) & (s->page - 1))
            return -EINVAL;
        if (out && r->start < s->ram[out - 1].end)
            return -EINVAL;
        if (out && r->start == s->ram[out - 1].end)
            s->ram[out - 1].end = r->end;
        else
            s->ram[out++] = *r;
    }
    s->nram = out;
    return 0;
}

static int add_range(struct sim *s, const char *text)
{
    uint64_t start, end;

    if (s->nram == SIM_MAX_RAM || parse_range(text, &start, &end))
        return -EINVAL;
    s->ram[s->nram++] = (struct sim_ram){.start = start, .end = end};
    return 0;
}

static int parse_bool(const char *v, const char *yes, const char *no, bool *out)
{
    if (v && strcmp(v, yes) == 0)
        *out = true;
    else if (v && strcmp(v, no) == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

/* "ram=0-1G,4G-64G,iommu=on": a token without '=' continues the ram= before it. */
static int parse_args(struct sim *s, char *args)
{
    char *cursor = args, *key, *val;
    bool in_ram = false, ram_given = false, taken;
    uint64_t page = 4096;
    int rc = 0;

    while (rc == 0 && dmahal__next_kv(&cursor, &key, &val)) {
        if (!val && in_ram) {
            rc = add_range(s, key);
            continue;
        }
        in_ram = false;
        if (!val)
            rc = -EINVAL;
        else if ((rc = dmahal__sim_time_option(s, key, val, &taken)) != 0 || taken)
            continue;
        else if (strcmp(key, "ram") == 0) {
            if (!ram_given)
                s->nram = 0;
            ram_given = in_ram = true;
            rc = add_range(s, val);
        } else if (strcmp(key, "iommu") == 0)
            rc = parse_bool(val, "on", "off", &s->iommu);
        else if (strcmp(key, "dma_entries") == 0)
            rc = dmahal__parse_size(val, &s->dma_entries);
        else if (strcmp(key, "coherent") == 0)
            rc = parse_bool(val, "yes", "no", &s->coherent);
        else if (strcmp(key, "page") == 0) {
            rc = dmahal__parse_size(val, &page);
            if (rc == 0 && (!DMAHAL__IS_POW2(page) || page < 4096 || page > 65536))
                rc = -EINVAL;
        } else
            rc = -EINVAL;
    }
    s->page = (size_t)page;
    s->page_shift = (unsigned)__builtin_ctzll(page);
    return rc ? rc : ram_normalise(s);
}

/* ---- RAM --------------------------------------------------------------------------------- */

static int ram_map(struct sim_ram *r)
{
    size_t len = r->end - r->start;
    size_t map_len = len + HOST_ALIGN;
    char *base, *host;

    base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                -1, 0);
    if (base == MAP_FAILED)
        return -ENOMEM;
    /* Left out of core files: a 64 GiB machine would write a 64 GiB (sparse) core, the
     * verifier's abort mode one per bug. The library's own state, which the debugger's dma
     * command reads, is in ordinary memory and stays in the core. */
    (void)madvise(base, map_len, MADV_DONTDUMP);
    /* Congruent with the physical start modulo 1 GiB: va alignment follows pa alignment. */
    host = base + ((r->start - (uint64_t)(uintptr_t)base) & (HOST_ALIGN - 1));
    r->map_base = base;
    r->map_len = map_len;
    r->host = host;
    return 0;
}

static void ram_unmap(struct sim *s)
{
    for (unsigned i = 0; i < s->nram; i++)
        if (s->ram[i].map_base)
            munmap(s->ram[i].map_base, s->ram[i].map_len);
}

char *dmahal__sim_host(const struct sim *s, uint64_t pa, size_t len)
{
    for (unsigned i = 0; i < s->nram; i++) {
        const struct sim_ram *r = &s->ram[i];

        if (pa >= r->start && pa < r->end)
            return len <= r->end - pa ? r->host + (pa - r->start) : NULL;
    }
    return NULL;
}

/* The physical address behind a host address in simulated RAM, or false. */
static bool sim_phys(const struct sim *s, const void *va, uint64_t *pa)
{
    for (unsigned i = 0; i < s->nram; i++) {
        const struct sim_ram *r = &s->ram[i];
        const char *c = va;

        if (c >= r->host && c < r->host + (r->end - r->start)) {
            *pa = r->start + (uint64_t)(c - r->host);
            return true;
        }
    }
    return false;
}

int dmahal__sim_frames_alloc(struct sim *s, size_t len, size_t align, uint64_t boundary,
                             uint64_t max_addr, uint64_t *pa)
{
    int rc;

    pthread_mutex_lock(&s->lock);
    rc = dmahal__range_alloc(&s->free, len, align, boundary, max_addr, pa);
    if (rc == 0)
        s->ram_used += len;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Gives the host memory behind a run of free frames back to the host (the caller holds the
 * lock, so that nobody takes the frames meanwhile): their next use takes page faults and
 * reads zeroes. */
static void giveback(struct sim *s, uint64_t pa, uint64_t len)
{
    size_t host_page = (size_t)sysconf(_SC_PAGESIZE); /* no system call: libc knows it */
    char *h = dmahal__sim_host(s, pa, len);
    uintptr_t start, end;

    if (!h)
        return;
    start = DMAHAL__ALIGN_UP((uintptr_t)h, host_page);
    end = DMAHAL__ALIGN_DOWN((uintptr_t)h + len, host_page);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

/* A newer run in the ring covers @r: its frames were taken and freed again since, and are
 * kept as that run (a loop of allocations of one size cycles through the same frames). */
static bool kept_again(const struct sim *s, struct sim_run r)
{
    for (unsigned i = 0; i < s->giveback_n; i++) {
        const struct sim_run *k = &s->giveback[(s->giveback_head + i) % SIM_GIVEBACK_RUNS];

        if (k->pa <= r.pa && r.pa + r.len <= k->pa + k->len)
            return true;
    }
    return false;
}

/* Returns frames to the free set; false (and nothing changes) if the set cannot take them.
 * The caller holds the lock. */
static bool frames_put(struct sim *s, uint64_t pa, size_t len)
{
    if (dmahal__range_add(&s->free, pa, len) != 0)
        return false;
    s->ram_used -= len;
    return true;
}

/*
 * Frees frames whose host memory the simulated machine touched, so that a long run's
 * resident set follows what is allocated, not every page it ever touched: their host memory
 * goes back to the host, but not at once. The last runs freed stay resident up to a budget
 * (64 MiB, or a sixteenth of a smaller machine), since an allocation of the same size usually
 * follows and takes them again (the allocator gives the highest free frames first): a loop of
 * 2 MiB buffers then pays no page faults. Past the budget the oldest run is given back, if its
 * frames are all still free and no newer run kept covers them all. Whoever takes frames
 * zeroes what needs zeroes (common buffers, contiguous memory) or fills it (bounce pages).
 * Frames lent to pinned user memory never had their own host memory touched: not for them
 * (dmahal__sim_frames_free).
 */
void dmahal__sim_frames_release(struct sim *s, uint64_t pa, size_t len)
{
    pthread_mutex_lock(&s->lock);
    if (!frames_put(s, pa, len)) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    if (len > s->giveback_budget) {
        giveback(s, pa, len); /* more than is kept at all */
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->giveback[(s->giveback_head + s->giveback_n++) % SIM_GIVEBACK_RUNS] =
        (struct sim_run){pa, len};
    s->giveback_bytes += len;
    while (s->giveback_n == SIM_GIVEBACK_RUNS || s->giveback_bytes > s->giveback_budget) {
        struct sim_run r = s->giveback[s->giveback_head];

        s->giveback_head = (s->giveback_head + 1) % SIM_GIVEBACK_RUNS;
        s->giveback_n--;
        s->giveback_bytes -= r.len;
        if (dmahal__range_is_free(&s->free, r.pa, r.len) && !kept_again(s, r))
            giveback(s, r.pa, r.len);
    }
    pthread_mutex_unlock(&s->lock);
}

void dmahal__sim_frames_free(struct sim *s, uint64_t pa, size_t len)
{
    pthread_mutex_lock(&s->lock);
    frames_put(s, pa, len);
    pthread_mutex_unlock(&s->lock);
}

/* ---- the platform ------------------------------------------------------------------------ */

static int sim_open(struct dmahal_platform *p, const char *args)
{
    struct sim *s;
    char *copy;
    int rc;

    s = calloc(1, sizeof(*s));
    copy = strdup(args);
    if (!s || !copy) {
        rc = -ENOMEM;
        goto err_alloc;
    }
    s->coherent = true;
    s->ram[0] = (struct sim_ram){.start = 0, .end = (uint64_t)1 << 30};
    s->ram[1] = (struct sim_ram){.start = (uint64_t)4 << 30, .end = (uint64_t)64 << 30};
    s->nram = 2;
    dmahal__sim_time_defaults(s);
    rc = parse_args(s, copy);
    if (rc)
        goto err_alloc;
    pthread_mutex_init(&s->lock, NULL);
    dmahal__sim_time_init(s);
    dmahal__range_init(&s->free);
    dmahal__sim_cache_init(s);
    rc = dmahal__sim_pin_init(s);
    for (unsigned i = 0; rc == 0 && i < s->nram; i++) {
        struct sim_ram *r = &s->ram[i];
        /* Physical page 0 stays out of use: a zero logical address is never valid. */
        uint64_t start = r->start ? r->start : s->page;

        rc = ram_map(r);
        if (rc == 0 && r->end > start)
            rc = dmahal__range_add(&s->free, start, r->end - start);
        if (rc)
            goto err_ram;
        s->ram_total += r->end - r->start;
    }
    if (rc)
        goto err_ram;
    s->giveback_budget =
        s->ram_total / 16 < (UINT64_C(64) << 20) ? s->ram_total / 16 : UINT64_C(64) << 20;
    dmahal__plat(p)->priv = s;
    dmahal__plat(p)->page_size = s->page;
    dmahal__plat(p)->has_iommu = s->iommu;
    dmahal__plat(p)->coherent = s->coherent;
    free(copy);
    return 0;

err_ram:
    ram_unmap(s);
    dmahal__sim_time_fini(s);
    dmahal__sim_cache_fini(s);
    dmahal__sim_pin_fini(s);
    dmahal__range_fini(&s->free);
    pthread_mutex_destroy(&s->lock);
err_alloc:
    free(copy);
    free(s);
    return rc;
}

static void sim_close(struct dmahal_platform *p)
{
    struct sim *s = dmahal__plat(p)->priv;

    while (s->contig) {
        struct sim_contig *c = s->contig;

        s->contig = c->next;
        free(c);
    }
    dmahal__sim_time_fini(s);
    ram_unmap(s);
    dmahal__sim_cache_fini(s);
    dmahal__sim_pin_fini(s);
    dmahal__range_fini(&s->free);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- devices ------------------------------------------------------------------------------ */

static int sim_device_open(struct dmahal_device *d, const char *name)
{
    struct sim *s = dmahal__dev_plat(d)->priv;
    const char *colon = strchr(name, ':');
    size_t nlen = colon ? (size_t)(colon - name) : strlen(name);
    struct sim_dev *sd;
    int rc;

    sd = calloc(1, sizeof(*sd));
    if (!sd)
        return -ENOMEM;
    sd->model = dmahal__sim_model_find(name, nlen);
    if (!sd->model) {
        fprintf(stderr, "dmahal: sim: no device model \"%.*s\" (dmahal devices lists them)\n",
                (int)nlen, name);
        rc = -ENOENT;
        goto err_alloc;
    }
    dmahal__sim_pci_init(sd);
    if (s->iommu) {
        rc = dmahal__sim_iopt_init(&sd->iopt, s->page_shift, SIM_IOVA_BITS);
        if (rc == 0)
            rc = dmahal__iova_create(s->page, &dmahal__dev(d)->iova);
        /* IOVA page 0 stays unmapped, so a zero logical address always faults. */
        if (rc == 0)
            rc = dmahal__iova_add(dmahal__dev(d)->iova, s->page,
                                  ((uint64_t)1 << SIM_IOVA_BITS) - s->page);
        if (rc)
            goto err_iommu;
    }
    sd->state = calloc(1, sd->model->state_size ? sd->model->state_size : 1);
    if (!sd->state) {
        rc = -ENOMEM;
        goto err_iommu;
    }
    memcpy(dmahal__dev(d)->bar_size, sd->model->bar_size, sizeof(dmahal__dev(d)->bar_size));
    dmahal__dev(d)->priv = sd;
    rc = dmahal__sim_time_device_open(s, sd);
    if (rc)
        goto err_state;
    if (sd->model->init) {
        rc = sd->model->init(d, sd->state, colon ? colon + 1 : "");
        if (rc)
            goto err_time;
    }
    return 0;

err_time:
    dmahal__sim_time_device_close(s, d);
err_state:
    free(sd->state);
    dmahal__dev(d)->priv = NULL;
err_iommu:
    dmahal__sim_iopt_fini(&sd->iopt);
    dmahal__iova_destroy(dmahal__dev(d)->iova);
    dmahal__dev(d)->iova = NULL;
    dmahal__sim_pci_fini(sd);
err_alloc:
    free(sd);
    return rc;
}

static void sim_device_close(struct dmahal_device *d)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;

    /* The device stops first: none of its work runs once fini has begun. */
    dmahal__sim_time_device_close(sd->s, d);
    if (sd->model->fini)
        sd->model->fini(d, sd->state);
    free(sd->state);
    dmahal__sim_iopt_fini(&sd->iopt);
    dmahal__iova_destroy(dmahal__dev(d)->iova);
    dmahal__dev(d)->iova = NULL;
    dmahal__sim_pci_fini(sd);
    free(sd);
}

static uint64_t sim_mmio_read(struct dmahal_device *d, unsigned bar, uint64_t off, unsigned size)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;

    /* A read is a round trip on the bus: the device has moved on when it is answered. */
    dmahal__sim_time_read_point(sd->s);
    return sd->model->mmio_read(d, sd->state, bar, off, size);
}

static void sim_mmio_write(struct dmahal_device *d, unsigned bar, uint64_t off, uint64_t val,
                           unsigned size)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;

    dmahal__sim_time_write_begin(sd->s, bar, off, val, size);
    sd->model->mmio_write(d, sd->state, bar, off, val, size);
    dmahal__sim_time_write_end();
}

/* ---- DMA memory ---------------------------------------------------------------------------- */

static int sim_adapter_init(struct dmahal_adapter *a)
{
    /* With an IOMMU the device reaches no further than its page table does. */
    if (dmahal__adp_plat(a)->has_iommu &&
        dmahal__adp(a)->c.max_addr > ((uint64_t)1 << SIM_IOVA_BITS) - 1)
        dmahal__adp(a)->c.max_addr = ((uint64_t)1 << SIM_IOVA_BITS) - 1;
    return 0;
}

static int sim_mem_alloc(struct dmahal_adapter *a, size_t len, size_t align,
                         struct dmahal__chunk *out)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    struct sim_dev *sd = dmahal__adp_dev(a)->priv;
    uint64_t boundary = dmahal__adp(a)->c.boundary && len <= dmahal__adp(a)->c.boundary
                            ? dmahal__adp(a)->c.boundary
                            : 0;
    uint64_t pa, iova;
    int rc;

    if (!s->iommu) {
        /* logical = physical: the frames themselves must be within the device's reach. */
        rc = dmahal__sim_frames_alloc(s, len, align, boundary, dmahal__adp(a)->c.max_addr, &pa);
        if (rc)
            return rc;
        *out = (struct dmahal__chunk){dmahal__sim_host(s, pa, len), pa, len, pa};
        return 0;
    }
    rc = dmahal__sim_frames_alloc(s, len, align, 0, UINT64_MAX, &pa);
    if (rc)
        return rc;
    rc = dmahal__iova_alloc(dmahal__adp_dev(a)->iova, len, align, boundary,
                            dmahal__adp(a)->c.max_addr, &iova);
    if (rc == 0) {
        rc = dmahal__sim_iopt_map(&sd->iopt, iova, pa, len, IOPTE_R | IOPTE_W);
        if (rc)
            dmahal__iova_free(dmahal__adp_dev(a)->iova, iova, len);
        else
            atomic_fetch_add(&sd->mapped_pages, len >> s->page_shift);
    }
    if (rc) {
        dmahal__sim_frames_free(s, pa, len);
        return rc;
    }
    *out = (struct dmahal__chunk){dmahal__sim_host(s, pa, len), iova, len, pa};
    return 0;
}

/* Strict isolation: frames and IOVA for the chunk, nothing in the page table until
 * sim_mem_reach. The cookie is the frames' address with the low bit set. */
static int sim_mem_alloc_dark(struct dmahal_adapter *a, size_t len, size_t align,
                              struct dmahal__chunk *out)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    uint64_t boundary = dmahal__adp(a)->c.boundary && len <= dmahal__adp(a)->c.boundary
                            ? dmahal__adp(a)->c.boundary
                            : 0;
    uint64_t pa, iova;
    int rc;

    if (!s->iommu)
        return -ENOTSUP; /* logical = physical: nothing keeps the device from RAM */
    rc = dmahal__sim_frames_alloc(s, len, align, 0, UINT64_MAX, &pa);
    if (rc)
        return rc;
    rc = dmahal__iova_alloc(dmahal__adp_dev(a)->iova, len, align, boundary,
                            dmahal__adp(a)->c.max_addr, &iova);
    if (rc) {
        dmahal__sim_frames_free(s, pa, len);
        return rc;
    }
    *out = (struct dmahal__chunk){dmahal__sim_host(s, pa, len), iova, len, pa | 1};
    return 0;
}

static int sim_mem_reach(struct dmahal_adapter *a, const struct dmahal__chunk *ch, size_t off,
                         size_t len, bool reach)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    struct sim_dev *sd = dmahal__adp_dev(a)->priv;
    int rc;

    if (!reach) {
        dmahal__sim_iopt_unmap(&sd->iopt, ch->la + off, len);
        atomic_fetch_sub(&sd->mapped_pages, len >> s->page_shift);
        return 0;
    }
    rc = dmahal__sim_iopt_map(&sd->iopt, ch->la + off, (ch->cookie & ~(uint64_t)1) + off, len,
                              IOPTE_R | IOPTE_W);
    if (rc == 0)
        atomic_fetch_add(&sd->mapped_pages, len >> s->page_shift);
    return rc;
}

static void sim_mem_free(struct dmahal_adapter *a, const struct dmahal__chunk *ch)
{
    struct sim *s = dmahal__adp_plat(a)->priv;
    struct sim_dev *sd = dmahal__adp_dev(a)->priv;
    bool dark = ch->cookie & 1;

    if (s->iommu) {
        /* A dark chunk's reachable runs go with it (an adapter put with buffers live). */
        if (dark) {
            for (size_t off = 0; off < ch->len; off += s->page) {
                uint64_t addr;
                bool host;

                if (dmahal__sim_iopt_lookup(&sd->iopt, ch->la + off, IOPTE_R, &addr, &host) == 0)
                    atomic_fetch_sub(&sd->mapped_pages, 1);
            }
        }
        dmahal__sim_iopt_unmap(&sd->iopt, ch->la, ch->len);
        dmahal__iova_free(dmahal__adp_dev(a)->iova, ch->la, ch->len);
        if (!dark)
            atomic_fetch_sub(&sd->mapped_pages, ch->len >> s->page_shift);
    }
    dmahal__sim_frames_release(s, ch->cookie & ~(uint64_t)1, ch->len);
}

/* ---- the device's side of the bus ------------------------------------------------------- */

/* Translates one address as the device's bus does. Without an IOMMU a logical address is
 * physical: RAM, or user memory pinned by a streaming map. */
static int translate(struct dmahal_device *d, struct sim *s, dmahal_addr_t at, bool write,
                     char **host)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    uint64_t addr;
    bool is_host = false;
    int reason;

    if (!s->iommu) {
        *host = dmahal__sim_phys_host(s, at, 1);
        return *host ? 0 : DMAHAL_FAULT_NO_RAM;
    }
    reason = dmahal__sim_iopt_lookup(&sd->iopt, at, write ? IOPTE_W : IOPTE_R, &addr, &is_host);
    if (reason)
        return reason;
    *host = is_host ? (char *)(uintptr_t)addr : dmahal__sim_host(s, addr, 1);
    return *host ? 0 : DMAHAL_FAULT_NO_RAM;
}

/* Walks the access page by page: once to translate all of it (a faulting access touches
 * nothing), then to copy. */
/* A small aligned write (a completion entry, a status word) is stored a 32-bit word at a
 * time, in order, each a release, as a device's posted write lands: a driver that polls its
 * last word with an acquire load (a phase bit) then sees the words before it and the data the
 * device wrote earlier, and so does ThreadSanitizer when the device runs on a thread of its
 * own. Anything else is one copy. */
void dmahal__sim_dev_store(char *host, const void *buf, size_t len)
{
    if (len > SIM_POSTED_MAX || (((uintptr_t)host | len) & 3)) {
        memcpy(host, buf, len);
        return;
    }
    for (size_t i = 0; i < len; i += 4) {
        uint32_t w;

        memcpy(&w, (const char *)buf + i, 4);
        __atomic_store_n((uint32_t *)(void *)(host + i), w, __ATOMIC_RELEASE);
    }
}

static int sim_access(struct dmahal_device *d, struct sim *s, dmahal_addr_t la, void *buf,
                      size_t len, bool write)
{
    char *host, *first = NULL;
    bool contig = true;
    int reason;

    for (dmahal_addr_t at = la; at - la < len; at = DMAHAL__ALIGN_DOWN(at, s->page) + s->page) {
        reason = translate(d, s, at, write, &host);
        if (reason) {
            dmahal__fault_record(d, at, len, write, (enum dmahal_fault_reason)reason);
            return -EFAULT;
        }
        if (at == la)
            first = host;
        else if (host != first + (at - la))
            contig = false;
    }
    /* A buffer's pages are usually contiguous in host memory too (one arena is one run of
     * frames, a pinned range one run of user pages): then one copy does, unless the cache
     * model has to look at each page. */
    if (contig && atomic_load_explicit(&s->nshadow, memory_order_acquire) == 0) {
        if (write)
            dmahal__sim_dev_store(first, buf, len);
        else
            memcpy(buf, first, len);
        return 0;
    }
    for (size_t done = 0; done < len;) {
        size_t in_page = s->page - ((la + done) & (s->page - 1));
        size_t n = in_page < len - done ? in_page : len - done;

        translate(d, s, la + done, write, &host);
        dmahal__sim_dev_copy(s, host, (char *)buf + done, n, write);
        done += n;
    }
    return 0;
}

static int sim_dev_access(struct dmahal_device *d, dmahal_addr_t la, void *buf, size_t len,
                          bool write)
{
    struct sim *s = dmahal__dev_plat(d)->priv;
    struct sim_dev *sd = dmahal__dev(d)->priv;

    /* A device whose bus-master bit is clear cannot start a transaction: as on hardware,
     * its DMA goes nowhere (here it is also a fault, so that a driver learns why). */
    if (!atomic_load_explicit(&sd->pci.master, memory_order_acquire)) {
        dmahal__fault_record(d, la, len, write, DMAHAL_FAULT_BUS_MASTER);
        return -EFAULT;
    }
    return sim_access(d, s, la, buf, len, write);
}

/* ---- the anti-pattern: contiguous memory and virt-to-phys ------------------------------ */

static struct sim *sim_of(struct dmahal_platform *p)
{
    return p && dmahal__plat(p)->ops == &dmahal__sim_ops ? dmahal__plat(p)->priv : NULL;
}

int dmahal_sim_contig_alloc(struct dmahal_platform *p, size_t len, void **va)
{
    struct sim *s = sim_of(p);
    struct sim_contig *c;
    uint64_t pa;
    size_t bytes;
    int rc;

    if (va)
        *va = NULL;
    if (!p || !va || len == 0)
        return -EINVAL;
    if (!s)
        return -ENOTSUP;
    if (len > DMAHAL__MAX_LEN)
        return -E2BIG;
    bytes = DMAHAL__ALIGN_UP(len, s->page);
    c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    rc = dmahal__sim_frames_alloc(s, bytes, s->page, 0, UINT64_MAX, &pa);
    if (rc) {
        free(c);
        return rc;
    }
    *c = (struct sim_contig){dmahal__sim_host(s, pa, bytes), pa, bytes, NULL};
    memset(c->va, 0, bytes);
    pthread_mutex_lock(&s->lock);
    c->next = s->contig;
    s->contig = c;
    pthread_mutex_unlock(&s->lock);
    *va = c->va;
    return 0;
}

int dmahal_sim_contig_free(struct dmahal_platform *p, void *va)
{
    struct sim *s = sim_of(p);
    struct sim_contig **pp, *c = NULL;

    if (!p || !va)
        return -EINVAL;
    if (!s)
        return -ENOTSUP;
    pthread_mutex_lock(&s->lock);
    for (pp = &s->contig; *pp; pp = &(*pp)->next) {
        if ((*pp)->va == va) {
            c = *pp;
            *pp = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!c)
        return -EINVAL;
    dmahal__sim_frames_release(s, c->pa, c->len);
    free(c);
    return 0;
}

int dmahal_sim_virt_to_phys(struct dmahal_platform *p, const void *va, uint64_t *pa)
{
    struct sim *s = sim_of(p);

    if (pa)
        *pa = 0;
    if (!p || !va || !pa)
        return -EINVAL;
    if (!s)
        return -ENOTSUP;
    return sim_phys(s, va, pa) ? 0 : -EINVAL;
}

/* ---- description ---------------------------------------------------------------------------- */

static void sim_describe(struct dmahal_platform *p, FILE *f)
{
    struct sim *s = dmahal__plat(p)->priv;
    uint64_t used;

    pthread_mutex_lock(&s->lock);
    used = s->ram_used;
    pthread_mutex_unlock(&s->lock);
    fprintf(f, "platform: sim\n");
    fprintf(f, "iommu: %s\n", s->iommu ? "on (per-device IO page tables, 48-bit IOVA)" : "off");
    if (s->dma_entries)
        fprintf(f, "dma-entries: %" PRIu64 " (%" PRIu64 " in use)\n", s->dma_entries,
                (uint64_t)atomic_load(&s->dma_used));
    fprintf(f, "coherent: %s\n", s->coherent ? "yes" : "no");
    fprintf(f, "page size: %zu\n", s->page);
    for (unsigned i = 0; i < s->nram; i++)
        fprintf(f, "ram: 0x%012llx-0x%012llx (%llu MiB)\n", (unsigned long long)s->ram[i].start,
                (unsigned long long)s->ram[i].end,
                (unsigned long long)((s->ram[i].end - s->ram[i].start) >> 20));
    fprintf(f, "ram total: %llu MiB, in use: %llu KiB\n", (unsigned long long)(s->ram_total >> 20),
            (unsigned long long)(used >> 10));
    dmahal__sim_time_describe(s, f);
}

const struct dmahal__platform_ops dmahal__sim_ops = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .device_open = sim_device_open,
    .device_close = sim_device_close,
    .mmio_read = sim_mmio_read,
    .mmio_write = sim_mmio_write,
    .adapter_init = sim_adapter_init,
    .mem_alloc = sim_mem_alloc,
    .mem_free = sim_mem_free,
    .mem_alloc_dark = sim_mem_alloc_dark,
    .mem_reach = sim_mem_reach,
    .dev_access = sim_dev_access,
    .mappings_avail = dmahal__sim_mappings_avail,
    .describe = sim_describe,
    .pin = dmahal__sim_pin,
    .unpin = dmahal__sim_unpin,
    .iommu_map = dmahal__sim_iommu_map,
    .iommu_unmap = dmahal__sim_iommu_unmap,
    .bounce_alloc = dmahal__sim_bounce_alloc,
    .bounce_free = dmahal__sim_bounce_free,
    .cache_track = dmahal__sim_cache_track,
    .cache_untrack = dmahal__sim_cache_untrack,
    .cache_flush = dmahal__sim_cache_flush,
    .cache_invalidate = dmahal__sim_cache_invalidate,
    .wait_point = dmahal__sim_wait_point,
    .dev_activity = dmahal__sim_dev_activity,
    .irq_count = dmahal__sim_irq_count,
    .irq_enable = dmahal__sim_irq_enable,
    .irq_disable = dmahal__sim_irq_disable,
    .irq_unmask = dmahal__sim_irq_unmask,
    .config_size = dmahal__sim_config_size,
    .config_read = dmahal__sim_config_read,
    .config_write = dmahal__sim_config_write,
    .device_list = dmahal__sim_device_list,
};
