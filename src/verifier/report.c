/*
 * report.c - the verifier's reports: the log tests read back, the printed form with
 * buffers and backtraces, the bug check; and the verifier's settings and public entry points.
 */
#include "verifier/verifier.h"

#include <errno.h>
#include <execinfo.h>
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

void verify_bt_capture_skip(const struct dmahal__verifier *v, struct verify_bt *bt, int skip)
{
    void *pc[VERIFY_BT_DEPTH + 4];
    int n;

    bt->n = 0;
    if (__atomic_load_n(&v->flags, __ATOMIC_RELAXED) & DMAHAL_VERIFY_NO_BACKTRACE)
        return;
    n = backtrace(pc, VERIFY_BT_DEPTH + 4);
    /* This function and the verifier's operation (which inlined verify_bt_capture) are not
     * news. */
    skip += 2;
    n = n > skip ? n - skip : 0;
    if (n > VERIFY_BT_DEPTH)
        n = VERIFY_BT_DEPTH;
    memcpy(bt->pc, pc + skip, (size_t)n * sizeof(pc[0]));
    bt->n = n;
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

static const char *const kind_names[DMAHAL_REPORT_KINDS] = {
    [DMAHAL_REPORT_VERIFIER_OOM] = "verifier-out-of-memory",
    [DMAHAL_REPORT_BAD_ADAPTER] = "bad-adapter",
    [DMAHAL_REPORT_DOUBLE_FREE] = "double-free",
    [DMAHAL_REPORT_FREE_UNKNOWN] = "free-unknown",
    [DMAHAL_REPORT_FREE_WRONG_LEN] = "free-wrong-length",
    [DMAHAL_REPORT_FREE_WRONG_LA] = "free-wrong-address",
    [DMAHAL_REPORT_FREE_WRONG_ADAPTER] = "free-wrong-adapter",
    [DMAHAL_REPORT_LEAK] = "leak",
    [DMAHAL_REPORT_OVERRUN] = "overrun",
    [DMAHAL_REPORT_UNDERRUN] = "underrun",
    [DMAHAL_REPORT_WRITE_AFTER_FREE] = "write-after-free",
    [DMAHAL_REPORT_DEV_OUT_OF_BOUNDS] = "device-out-of-bounds",
    [DMAHAL_REPORT_DEV_USE_AFTER_FREE] = "device-use-after-free",
    [DMAHAL_REPORT_DEV_WRITE_TO_DEVICE] = "device-write-to-device-mapping",
    [DMAHAL_REPORT_CPU_WRITE_DEVICE_OWNS] = "cpu-write-while-device-owns",
    [DMAHAL_REPORT_DOUBLE_UNMAP] = "double-unmap",
    [DMAHAL_REPORT_UNMAP_NOT_MAPPED] = "unmap-not-mapped",
    [DMAHAL_REPORT_SYNC_NOT_MAPPED] = "sync-not-mapped",
    [DMAHAL_REPORT_WRONG_ADAPTER] = "wrong-adapter",
    [DMAHAL_REPORT_SGL_MODIFIED] = "sgl-modified",
    [DMAHAL_REPORT_SYNC_OUT_OF_RANGE] = "sync-out-of-range",
    [DMAHAL_REPORT_TOO_MANY_MAP_REGISTERS] = "too-many-map-registers",
    [DMAHAL_REPORT_FREED_WHILE_MAPPED] = "freed-while-mapped",
    [DMAHAL_REPORT_ZERO_LENGTH_MAP] = "zero-length-map",
    [DMAHAL_REPORT_OVERLAPPING_MAPPINGS] = "overlapping-mappings",
    [DMAHAL_REPORT_NOT_FLUSHED] = "not-flushed",
    [DMAHAL_REPORT_MAP_LEAK] = "map-leak",
    [DMAHAL_REPORT_DEV_USE_AFTER_UNMAP] = "device-use-after-unmap",
};

const char *dmahal_report_kind_name(int kind)
{
    if (kind <= 0 || kind >= DMAHAL_REPORT_KINDS || !kind_names[kind])
        return "unknown";
    return kind_names[kind];
}

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
            verify_bt_print(f, "    ", &r->rec->free_bt);
        }
        fprintf(f, "  allocated by:\n");
        verify_bt_print(f, "    ", &r->rec->alloc_bt);
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

#define KNOWN_FLAGS                                                                                \
    (DMAHAL_VERIFY_PRINT | DMAHAL_VERIFY_COUNT | DMAHAL_VERIFY_ABORT | DMAHAL_VERIFY_NO_BACKTRACE)

static struct dmahal__verifier *verifier_new(struct dmahal_platform *p)
{
    struct dmahal__verifier *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->p = p;
    pthread_mutex_init(&v->lock, NULL);
    pthread_mutex_init(&v->rlock, NULL);
    atomic_init(&v->on, true);
    return v;
}

int dmahal_verify_enable(struct dmahal_platform *p, unsigned flags, dmahal_report_fn fn, void *ctx)
{
    struct dmahal__verifier *v;

    if (!p || (flags & ~KNOWN_FLAGS))
        return -EINVAL;
    if (!(flags & ~DMAHAL_VERIFY_NO_BACKTRACE))
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
