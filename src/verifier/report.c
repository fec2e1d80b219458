/*
 * report.c - the verifier's reports: the log tests read back, the printed form with
 * buffers and backtraces, the bug check; and the verifier's settings and public entry points.
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

atomic_int dmahal__verify_fail_countdown;

static bool inject_failure(void)
{
    int n = atomic_load_explicit(&dmahal__verify_fail_countdown, memory_order_relaxed);

    while (n > 0) {
        if (atomic_compare_exchange_weak(&dmahal__verify_fail_countdown, &n, n - 1))
            return n == 1;
    }
    return false;
}

void *verify_malloc(size_t size)
{
    return inject_failure() ? NULL : malloc(size);
}

void *verify_realloc(void *p, size_t size)
{
    return inject_failure() ? NULL : realloc(p, size);
}

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
    int start = 3; /* if not found: this function, verify_bt_capture_from, the operation */

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

__attribute__((noinline)) void verify_bt_capture_from(const struct dmahal__verifier *v,
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
const struct verify_bt verify_bt_none;

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
    for (int i = 0; i < n; i++)
        if (x[i] != y[i])
            return false;
    return true;
}

static int depot_grow(struct verify_depot *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1024;
    struct verify_bt **b = verify_malloc(cap * sizeof(*b));

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
        return &verify_bt_none; /* a report without its trace beats no verifier */
    bytes = (sizeof(*e) + 15) & ~(size_t)15;
    if (d->chunk_left < bytes) {
        /* Traces are carved from large chunks, freed together at close. */
        size_t size = 64 * 1024;
        struct verify_chunk *c = verify_malloc(size);

        if (!c)
            return &verify_bt_none;
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

const struct verify_bt *verify_bt_intern(struct dmahal__verifier *v,
                                         const struct verify_bt_raw *raw)
{
    struct verify_depot *d = &v->depot;
    const struct verify_bt *e;
    size_t slot;

    if (raw->n == 0)
        return &verify_bt_none;
    slot = (size_t)(((uint64_t)(uintptr_t)raw->pc[0] * 0x9e3779b97f4a7c15ull) >> 58);
    /* Two ways: an allocation's and a free's callers may share a slot. */
    for (int w = 0; w < 2; w++) {
        e = d->recent[slot ^ (size_t)w];
        if (e && e->n == raw->n && same_pcs(e->pc, raw->pc, raw->n))
            return e;
    }
    e = intern_slow(v, raw);
    if (e != &verify_bt_none) {
        d->recent[slot ^ 1] = d->recent[slot];
        d->recent[slot] = (struct verify_bt *)e;
    }
    return e;
}

void verify_depot_fini(struct verify_depot *d)
{
    while (d->chunks) {
        struct verify_chunk *c = d->chunks;

        d->chunks = c->next;
        free(c);
    }
    free(d->bucket);
    memset(d, 0, sizeof(*d));
}

void verify_bt_print(FILE *f, const char *indent, const struct verify_bt *bt)
{
    char **sym;

    if (bt->n == 0) {
        fprintf(f, "%s(no backtrace recorded)\n", indent);
        return;
    }
    sym = backtrace_symbols(bt->pc, bt->n);
    for (int i = 0; i < bt->n; i++)
        fprintf(f, "%s#%d %p %s\n", indent, i, bt->pc[i], sym ? sym[i] : "");
    free(sym);
}

void verify_rec_name(const struct verify_rec *rec, char *buf, size_t size)
{
    snprintf(buf, size,
             "%zu-byte common buffer la 0x%012llx-0x%012llx va %p (adapter #%llu, device %s)",
             rec->user.len, (unsigned long long)rec->user.la,
             (unsigned long long)(rec->user.la + rec->user.len - 1), rec->user.va,
             (unsigned long long)rec->va_owner->id, rec->va_owner->dev_name);
}

/* ---- reports ----------------------------------------------------------------------------- */

static void print_report(const struct verify_report *r, unsigned flags)
{
    FILE *f = stderr;
    struct verify_bt here;

    flockfile(f);
    fprintf(f, "dmahal verifier: %s: %s\n", dmahal_report_kind_name(r->kind), r->msg);
    if (!(flags & DMAHAL_VERIFY_NO_BACKTRACE)) {
        void *pc[VERIFY_BT_DEPTH + 2];
        int n = backtrace(pc, VERIFY_BT_DEPTH + 2);

        /* Past this function and verify_emit: the check that failed, and its caller. */
        here.n = n > 2 ? n - 2 : 0;
        memcpy(here.pc, pc + 2, (size_t)here.n * sizeof(pc[0]));
        fprintf(f, "  here:\n");
        verify_bt_print(f, "    ", &here);
    }
    if (r->rec) {
        char name[160];

        verify_rec_name(r->rec, name, sizeof(name));
        fprintf(f, "  the buffer: %s\n", name);
        if (r->rec->state == VERIFY_FREED) {
            fprintf(f, "  freed by:\n");
            verify_bt_print(f, "    ", r->rec->free_bt);
        }
        fprintf(f, "  allocated by:\n");
        verify_bt_print(f, "    ", r->rec->alloc_bt);
    }
    if (r->extra_bt) {
        fprintf(f, "  %s:\n", r->extra_what);
        verify_bt_print(f, "    ", r->extra_bt);
    }
    if (r->extra_bt2) {
        fprintf(f, "  %s:\n", r->extra_what2);
        verify_bt_print(f, "    ", r->extra_bt2);
    }
    funlockfile(f);
}

void verify_emit(struct dmahal__verifier *v, const struct verify_report *r)
{
    struct dmahal_report pub = {r->kind, r->msg, r->la, r->len};
    unsigned flags;

    pthread_mutex_lock(&v->rlock);
    flags = v->flags;
    if (flags & DMAHAL_VERIFY_COUNT) {
        size_t slot = v->total % VERIFY_RING;

        v->count[r->kind]++;
        v->total++;
        snprintf(v->ring_msg[slot], VERIFY_MSG, "%s", r->msg);
        v->ring[slot] = (struct dmahal_report){r->kind, v->ring_msg[slot], r->la, r->len};
    }
    if (v->fn)
        v->fn(&pub, v->ctx);
    if (!v->fn || (flags & (DMAHAL_VERIFY_PRINT | DMAHAL_VERIFY_ABORT)))
        print_report(r, flags);
    pthread_mutex_unlock(&v->rlock);
    if (flags & DMAHAL_VERIFY_ABORT) {
        fprintf(stderr,
                "dmahal verifier: DRIVER_VERIFIER_DMA_VIOLATION (bug check 0xE6, "
                "%s): aborting\n",
                dmahal_report_kind_name(r->kind));
        abort();
    }
}

void verify_oom(struct dmahal__verifier *v, const char *what)
{
    struct verify_report r = {.kind = DMAHAL_REPORT_VERIFIER_OOM};

    /* Only the first time: after this the verifier stands aside. */
    if (!atomic_exchange(&v->on, false))
        return;
    snprintf(r.msg, sizeof(r.msg),
             "out of memory (%s): the verifier turns itself off; calls are no longer checked",
             what);
    verify_emit(v, &r);
}

/* ---- the public entry points --------------------------------------------------------------- */

#define BT_FLAGS    (DMAHAL_VERIFY_NO_BACKTRACE | DMAHAL_VERIFY_FULL_BACKTRACE)
#define KNOWN_FLAGS (DMAHAL_VERIFY_PRINT | DMAHAL_VERIFY_COUNT | DMAHAL_VERIFY_ABORT | BT_FLAGS)

static struct dmahal__verifier *verifier_new(struct dmahal_platform *p)
{
    struct dmahal__verifier *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->p = p;
    dmahal__lock_init(&v->lock);
    pthread_mutex_init(&v->rlock, NULL);
    atomic_init(&v->on, true);
    v->prio_seed = 0x9e3779b9u;
    return v;
}

int dmahal_verify_enable(struct dmahal_platform *p, unsigned flags, dmahal_report_fn fn, void *ctx)
{
    struct dmahal__verifier *v;

    if (!p || (flags & ~KNOWN_FLAGS))
        return -EINVAL;
    if (!(flags & ~BT_FLAGS))
        flags |= DMAHAL_VERIFY_PRINT | DMAHAL_VERIFY_COUNT;
    /* Serialised against other enables by the platform lock: one verifier per platform. */
    pthread_mutex_lock(&p->lock);
    v = atomic_load(&p->verifier);
    if (!v) {
        v = verifier_new(p);
        if (!v) {
            pthread_mutex_unlock(&p->lock);
            return -ENOMEM;
        }
    }
    pthread_mutex_lock(&v->rlock);
    v->fn = fn;
    v->ctx = ctx;
    __atomic_store_n(&v->flags, flags, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&v->rlock);
    atomic_store_explicit(&p->verifier, v, memory_order_release);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void dmahal__verify_platform_open(struct dmahal_platform *p)
{
    const char *env = getenv("DMAHAL_VERIFY");

    if (!env || !*env || strcmp(env, "0") == 0)
        return;
    /* Out of memory here, the platform simply opens unverified, as the contract promises. */
    dmahal_verify_enable(
        p, strcmp(env, "abort") == 0 ? DMAHAL_VERIFY_ABORT | DMAHAL_VERIFY_COUNT : 0, NULL, NULL);
}

int dmahal_verify_enabled(const struct dmahal_platform *p)
{
    struct dmahal__verifier *v;

    if (!p)
        return -EINVAL;
    v = atomic_load(&((struct dmahal_platform *)p)->verifier);
    return v && atomic_load(&v->on);
}

uint64_t dmahal_verify_count(const struct dmahal_platform *p, int kind)
{
    struct dmahal__verifier *v = p ? atomic_load(&((struct dmahal_platform *)p)->verifier) : NULL;
    uint64_t n;

    if (!v || kind < 0 || kind >= DMAHAL_REPORT_KINDS)
        return 0;
    pthread_mutex_lock(&v->rlock);
    n = kind ? v->count[kind] : v->total;
    pthread_mutex_unlock(&v->rlock);
    return n;
}

int dmahal_verify_report(const struct dmahal_platform *p, size_t index, struct dmahal_report *out)
{
    struct dmahal__verifier *v;
    int rc = 0;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!p || !out)
        return -EINVAL;
    v = atomic_load(&((struct dmahal_platform *)p)->verifier);
    if (!v)
        return -ENOENT;
    pthread_mutex_lock(&v->rlock);
    if (index >= VERIFY_RING || index >= v->total)
        rc = -ENOENT;
    else
        *out = v->ring[(v->total - 1 - index) % VERIFY_RING];
    pthread_mutex_unlock(&v->rlock);
    return rc;
}

void dmahal_verify_clear(struct dmahal_platform *p)
{
    struct dmahal__verifier *v = p ? atomic_load(&p->verifier) : NULL;

    if (!v)
        return;
    pthread_mutex_lock(&v->rlock);
    memset(v->count, 0, sizeof(v->count));
    memset(v->ring, 0, sizeof(v->ring));
    v->total = 0;
    pthread_mutex_unlock(&v->rlock);
}
