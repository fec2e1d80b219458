/* SPDX-License-Identifier: MIT */
/*
 * report.c - the verifier's reports: the log tests read back, the printed form with buffers and
 * backtraces, and the verifier's own allocations (which tests can make fail).
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

void *dmahal__verify_malloc(size_t size)
{
    return inject_failure() ? NULL : malloc(size);
}

void *dmahal__verify_realloc(void *p, size_t size)
{
    return inject_failure() ? NULL : realloc(p, size);
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

        /* Past this function and dmahal__verify_emit: the check that failed, and its caller. */
        here.n = n > 2 ? n - 2 : 0;
        memcpy(here.pc, pc + 2, (size_t)here.n * sizeof(pc[0]));
        fprintf(f, "  here:\n");
        dmahal__verify_bt_print(f, "    ", &here);
    }
    if (r->rec) {
        char name[160];

        dmahal__verify_rec_name(r->rec, name, sizeof(name));
        fprintf(f, "  the buffer: %s\n", name);
        if (r->rec->state == VERIFY_FREED) {
            fprintf(f, "  freed by:\n");
            dmahal__verify_bt_print(f, "    ", r->rec->free_bt);
        }
        fprintf(f, "  allocated by:\n");
        dmahal__verify_bt_print(f, "    ", r->rec->alloc_bt);
    }
    if (r->extra_bt) {
        fprintf(f, "  %s:\n", r->extra_what);
        dmahal__verify_bt_print(f, "    ", r->extra_bt);
    }
    if (r->extra_bt2) {
        fprintf(f, "  %s:\n", r->extra_what2);
        dmahal__verify_bt_print(f, "    ", r->extra_bt2);
    }
    funlockfile(f);
}

/* Under rlock: true if @r repeats a device-side bug reported already (then counted). */
static bool repeated(struct dmahal__verifier *v, const struct verify_report *r)
{
    uint64_t h = r->dedup * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)(uintptr_t)r->dedup_dev ^
                 (uint64_t)r->kind;
    struct verify_seen *victim = NULL;

    h ^= h >> 29;
    for (unsigned probe = 0; probe < 8; probe++) {
        struct verify_seen *e = &v->seen[(h + probe) % VERIFY_SEEN];

        if (e->dev == r->dedup_dev && e->key == r->dedup && e->kind == r->kind) {
            e->repeats++;
            v->repeats[r->kind]++;
            v->repeats_total++;
            return true;
        }
        if (!victim && !e->dev)
            victim = e;
    }
    if (!victim)
        victim = &v->seen[h % VERIFY_SEEN];
    *victim = (struct verify_seen){r->dedup_dev, r->dedup, r->kind, 0};
    return false;
}

void dmahal__verify_emit(struct dmahal__verifier *v, const struct verify_report *r)
{
    struct dmahal_report pub = {sizeof(pub), r->kind, r->msg, r->la, r->len};
    unsigned flags;

    pthread_mutex_lock(&v->rlock);
    if (r->dedup && r->dedup_dev && repeated(v, r)) {
        pthread_mutex_unlock(&v->rlock);
        return;
    }
    flags = v->flags;
    if (flags & DMAHAL_VERIFY_COUNT) {
        size_t slot = v->total % VERIFY_RING;

        v->count[r->kind]++;
        v->total++;
        snprintf(v->ring_msg[slot], VERIFY_MSG, "%s", r->msg);
        v->ring[slot] = (struct dmahal_report){sizeof(v->ring[slot]), r->kind, v->ring_msg[slot],
                                               r->la, r->len};
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

void dmahal__verify_oom(struct dmahal__verifier *v, const char *what)
{
    struct verify_report r = {.kind = DMAHAL_REPORT_VERIFIER_OOM};

    /* Only the first time: after this the verifier stands aside. */
    if (!atomic_exchange(&v->on, false))
        return;
    snprintf(r.msg, sizeof(r.msg),
             "out of memory (%s): the verifier turns itself off; calls are no longer checked",
             what);
    dmahal__verify_emit(v, &r);
}
