/* SPDX-License-Identifier: MIT */
/*
 * backtrace.c - the verifier's backtraces: a frame-pointer walk (exact through framed code, see
 * core/framed.h) with glibc's unwinder as the fallback, and the stack depot that keeps each
 * distinct trace once.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- backtraces -------------------------------------------------------------------------- */

/*
 * The cheap way, as AddressSanitizer records malloc stacks: follow the chain of saved frame
 * pointers. Each frame holds the caller's frame pointer, then the return address. A caller
 * built without frame pointers leaves some other value in the register; every link is
 * therefore checked to stay inside this thread's stack and to go up it, so a bad one ends
 * the walk (the trace is then short, never a fault).
 */
#if defined(__x86_64__) || defined(__aarch64__) || defined(__i386__)
#define VERIFY_FP_WALK 1
#endif

#ifdef VERIFY_FP_WALK
/* This thread's stack, found once per thread (pthread_getattr_np reads /proc for the main
 * thread); lo == hi means unknown: the walk then keeps the first frame only. */
static __thread uintptr_t stack_lo, stack_hi;
static __thread bool stack_known;

static void stack_bounds(void)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;

    stack_known = true;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        stack_lo = (uintptr_t)addr;
        stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

/*
 * Where code is: the executable segments of every loaded object, so that a value taken for
 * a return address is one. A frame without a frame pointer leaves some other value in the
 * register; when that happens to point into the stack, the walk would read a "return
 * address" out of a local variable (different on every call, and each would be a new trace
 * in the depot). Read without a lock; replaced, never changed, when objects come or go:
 * looked for again after every 1024 values found in no segment of it (a library may have
 * been loaded since; with glibc 2.35 on, only values in some object count).
 */
struct text_map {
    unsigned long long adds, subs; /* dl_iterate_phdr's counts when it was made */
    size_t n, cap;
    struct {
        uintptr_t lo, hi;
    } r[];
};

static _Atomic(struct text_map *) text_map;

struct text_build {
    struct text_map *m;
    bool grow; /* more segments than room */
};

static int text_segment(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct text_build *b = arg;

    (void)size;
    b->m->adds = info->dlpi_adds;
    b->m->subs = info->dlpi_subs;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        if (b->m->n == b->m->cap) {
            b->grow = true;
            return 1;
        }
        b->m->r[b->m->n].lo = (uintptr_t)(info->dlpi_addr + ph->p_vaddr);
        b->m->r[b->m->n].hi = (uintptr_t)(info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
        b->m->n++;
    }
    return 0;
}

static int segment_cmp(const void *x, const void *y)
{
    uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y; /* each starts with lo */

    return a < b ? -1 : a > b;
}

/* Makes the map anew if objects came or went since @old was made; returns the current one. */
static struct text_map *text_refresh(struct text_map *old)
{
    struct text_build b = {0};
    size_t cap = old ? old->cap : 32;

    for (;;) {
        b.m = malloc(sizeof(*b.m) + cap * sizeof(b.m->r[0]));
        if (!b.m)
            return old;
        b.m->n = 0;
        b.m->cap = cap;
        b.grow = false;
        dl_iterate_phdr(text_segment, &b);
        if (!b.grow)
            break;
        free(b.m);
        cap *= 2;
    }
    if (old && old->adds == b.m->adds && old->subs == b.m->subs) {
        free(b.m);
        return old;
    }
    qsort(b.m->r, b.m->n, sizeof(b.m->r[0]), segment_cmp);
    /* The old map stays: another thread may be reading it (a few hundred bytes per
     * dlopen or dlclose, for the process's life). */
    if (!atomic_compare_exchange_strong(&text_map, &old, b.m)) {
        free(b.m);
        return old;
    }
    return b.m;
}

/* @hint: the segment the walk's previous address was in (callers are mostly in one). */
static bool in_map(const struct text_map *m, uintptr_t pc, size_t *hint)
{
    size_t lo = 0, hi = m->n;

    if (*hint < m->n && pc - m->r[*hint].lo < m->r[*hint].hi - m->r[*hint].lo)
        return true;
    while (lo < hi) { /* the last segment starting at or below pc */
        size_t mid = lo + (hi - lo) / 2;

        if (m->r[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || pc >= m->r[lo - 1].hi)
        return false;
    *hint = lo - 1;
    return true;
}

static __thread unsigned text_misses;

static bool is_code(uintptr_t pc, size_t *hint)
{
    struct text_map *m = atomic_load_explicit(&text_map, memory_order_acquire);

    if (!m)
        m = text_refresh(NULL);
    if (m && in_map(m, pc, hint))
        return true;
#ifdef DLFO_EH_SEGMENT_TYPE
    {
        /* glibc 2.35 and later say, lock-free and fast, whether it is in an object at all:
         * a value that is not (most garbage) needs no second look. */
        struct dl_find_object o;

        if (_dl_find_object((void *)pc, &o) != 0)
            return false;
    }
#endif
    if (text_misses++ % 1024 != 0)
        return false;
    *hint = SIZE_MAX;
    m = text_refresh(m);
    return m && in_map(m, pc, hint);
}

/* Walks from @frame: @skip return addresses dropped, then up to VERIFY_BT_DEPTH kept. Not
 * instrumented by AddressSanitizer (its own unwinder is not either): a link that is not a
 * frame pointer may lead into a poisoned part of the stack, whose reading is harmless here. */
__attribute__((no_sanitize_address)) static void fp_walk(const void *frame, int skip,
                                                         struct verify_bt_raw *bt)
{
    const uintptr_t *fp = frame;
    size_t hint = SIZE_MAX;
    int n = 0;

    if (!stack_known)
        stack_bounds();
    /* The first frame is the verifier's own, which has a frame pointer: always readable. */
    if (skip == 0)
        bt->pc[n++] = (void *)fp[1];
    else
        skip--;
    if ((uintptr_t)fp >= stack_lo && (uintptr_t)fp < stack_hi) {
        /* Else on another stack (a signal's, a coroutine's): no bounds to trust. */
        while (n < VERIFY_BT_DEPTH) {
            const uintptr_t *next = (const uintptr_t *)fp[0];

            if ((uintptr_t)next <= (uintptr_t)fp ||
                (uintptr_t)next > stack_hi - 2 * sizeof(*next) ||
                ((uintptr_t)next & (sizeof(*next) - 1)) || next[1] < 4096 ||
                !is_code(next[1], &hint))
                break;
            fp = next;
            if (skip == 0)
                bt->pc[n++] = (void *)fp[1];
            else
                skip--;
        }
    }
    bt->n = n;
}
#endif

/* The unwinder that reads unwind tables: exact without frame pointers, slow. The trace
 * starts where the operation whose frame is @frame returns to, found in what backtrace()
 * gives (the frames above it are the verifier's, and a sanitizer's interceptor's). */
static __attribute__((noinline)) void full_backtrace(const void *frame, int skip,
                                                     struct verify_bt_raw *bt)
{
    void *pc[VERIFY_BT_DEPTH + 16];
    void *ret = (void *)((const uintptr_t *)frame)[1];
    int n = backtrace(pc, VERIFY_BT_DEPTH + 16);
    int start = 3; /* if not found: this function, dmahal__verify_bt_capture_from, the operation */

    for (int i = 0; i < n && i < 16; i++) {
        if (pc[i] == ret) {
            start = i;
            break;
        }
    }
    start += skip;
    n = n > start ? n - start : 0;
    if (n > VERIFY_BT_DEPTH)
        n = VERIFY_BT_DEPTH;
    memcpy(bt->pc, pc + start, (size_t)n * sizeof(pc[0]));
    bt->n = n;
}

__attribute__((noinline)) void dmahal__verify_bt_capture_from(const struct dmahal__verifier *v,
                                                              const void *frame, int skip,
                                                              struct verify_bt_raw *bt)
{
    unsigned flags = __atomic_load_n(&v->flags, __ATOMIC_RELAXED);

    bt->n = 0;
    if (flags & DMAHAL_VERIFY_NO_BACKTRACE)
        return;
#ifdef VERIFY_FP_WALK
    if (!(flags & DMAHAL_VERIFY_FULL_BACKTRACE)) {
        fp_walk(frame, skip, bt);
        return;
    }
#endif
    full_backtrace(frame, skip, bt);
    __asm__ volatile("" ::: "memory"); /* not a tail call: full_backtrace skips this frame */
}

/* The stack depot: every distinct trace is stored once, for the verifier's life. */
const struct verify_bt dmahal__verify_bt_none;

static uint64_t bt_hash(const struct verify_bt_raw *raw)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)raw->n;

    for (int i = 0; i < raw->n; i++) {
        h ^= (uint64_t)(uintptr_t)raw->pc[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static bool same_pcs(void *const *x, void *const *y, int n)
{
    return dmahal__verify_same_pcs(x, y, n);
}

static int depot_grow(struct verify_depot *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1024;
    struct verify_bt **b = dmahal__verify_malloc(cap * sizeof(*b));

    if (!b)
        return -ENOMEM;
    memset(b, 0, cap * sizeof(*b));
    for (size_t i = 0; i < d->cap; i++) {
        while (d->bucket[i]) {
            struct verify_bt *e = d->bucket[i];

            d->bucket[i] = e->next;
            e->next = b[e->hash & (cap - 1)];
            b[e->hash & (cap - 1)] = e;
        }
    }
    free(d->bucket);
    d->bucket = b;
    d->cap = cap;
    return 0;
}

/* The depot's hash table: the trace if stored, else stored now. */
static __attribute__((noinline)) const struct verify_bt *
intern_slow(struct dmahal__verifier *v, const struct verify_bt_raw *raw)
{
    struct verify_depot *d = &v->depot;
    uint64_t h = bt_hash(raw);
    struct verify_bt *e;
    size_t bytes;

    if (d->cap) {
        for (e = d->bucket[h & (d->cap - 1)]; e; e = e->next)
            if (e->hash == h && e->n == raw->n && same_pcs(e->pc, raw->pc, raw->n))
                return e;
    }
    if (d->n >= d->cap && depot_grow(d) != 0)
        return &dmahal__verify_bt_none; /* a report without its trace beats no verifier */
    bytes = (sizeof(*e) + 15) & ~(size_t)15;
    if (d->chunk_left < bytes) {
        /* Traces are carved from large chunks, freed together at close. */
        size_t size = 64 * 1024;
        struct verify_chunk *c = dmahal__verify_malloc(size);

        if (!c)
            return &dmahal__verify_bt_none;
        c->next = d->chunks;
        d->chunks = c;
        d->chunk_at = (char *)c + ((sizeof(*c) + 15) & ~(size_t)15);
        d->chunk_left = size - (size_t)(d->chunk_at - (char *)c);
    }
    e = (struct verify_bt *)(void *)d->chunk_at;
    d->chunk_at += bytes;
    d->chunk_left -= bytes;
    e->hash = h;
    e->n = raw->n;
    memcpy(e->pc, raw->pc, (size_t)raw->n * sizeof(raw->pc[0]));
    e->next = d->bucket[h & (d->cap - 1)];
    d->bucket[h & (d->cap - 1)] = e;
    d->n++;
    return e;
}

const struct verify_bt *dmahal__verify_bt_intern_slow(struct dmahal__verifier *v,
                                                      const struct verify_bt_raw *raw)
{
    struct verify_depot *d = &v->depot;
    const struct verify_bt *e;
    size_t slot;

    if (raw->n == 0)
        return &dmahal__verify_bt_none;
    slot = dmahal__verify_bt_slot(raw);
    e = intern_slow(v, raw);
    if (e != &dmahal__verify_bt_none) {
        d->recent[slot ^ 1] = d->recent[slot];
        d->recent[slot] = (struct verify_bt *)e;
    }
    return e;
}

void dmahal__verify_depot_fini(struct verify_depot *d)
{
    while (d->chunks) {
        struct verify_chunk *c = d->chunks;

        d->chunks = c->next;
        free(c);
    }
    free(d->bucket);
    memset(d, 0, sizeof(*d));
}

void dmahal__verify_bt_print(FILE *f, const char *indent, const struct verify_bt *bt)
{
    char name[512];

    if (bt->n == 0) {
        fprintf(f, "%s(no backtrace recorded)\n", indent);
        return;
    }
    for (int i = 0; i < bt->n; i++) {
        dmahal__verify_symbolize(bt->pc[i], name, sizeof(name));
        fprintf(f, "%s#%d %p %s\n", indent, i, bt->pc[i], name);
    }
}

void dmahal__verify_rec_name(const struct verify_rec *rec, char *buf, size_t size)
{
    snprintf(buf, size,
             "%zu-byte common buffer la 0x%012llx-0x%012llx va %p (adapter #%llu, device %s)",
             rec->user.len, (unsigned long long)rec->user.la,
             (unsigned long long)(rec->user.la + rec->user.len - 1), rec->user.va,
             (unsigned long long)rec->va_owner->id, rec->va_owner->dev_name);
}
