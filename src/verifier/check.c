/* SPDX-License-Identifier: MIT */
/*
 * check.c - the verifier on demand (dmahal_verify_check) and its part of dmahal_dump.
 */
#include "core/framed.h"

#include "verifier/verifier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- on demand ----------------------------------------------------------------------------- */

int dmahal_verify_check(struct dmahal_platform *p)
{
    struct dmahal__verifier *v;
    int n = 0;

    if (!p)
        return -EINVAL;
    v = atomic_load(&p->verifier);
    if (!v || !atomic_load(&v->on))
        return -ENOTSUP;
    dmahal__lock_take(&v->lock);
    for (struct verify_rec *rec = v->recs; rec; rec = rec->next) {
        n += rec->state == VERIFY_LIVE ? dmahal__verify_check_guards(v, rec, "on demand")
                                       : dmahal__verify_check_freed(v, rec, "on demand");
    }
    dmahal__lock_drop(&v->lock);
    return n;
}

/* ---- the dump ------------------------------------------------------------------------------ */

static void guard_state(const struct verify_rec *rec, char *buf, size_t size)
{
    const unsigned char *start = rec->user.va;
    size_t first, last;
    bool under, over;

    if (!rec->head && !rec->tail) {
        snprintf(buf, size, "no guards (they would not fit the adapter's constraints)");
        return;
    }
    under =
        dmahal__verify_find_changed(start - rec->head, rec->head, VERIFY_GUARD_BYTE, &first, &last);
    over = dmahal__verify_find_changed(start + rec->user.len, rec->tail, VERIFY_GUARD_BYTE, &first,
                                       &last);
    if (!under && !over)
        snprintf(buf, size, "guards intact (%zu before, %zu after)", rec->head, rec->tail);
    else if (over)
        snprintf(buf, size, "OVERRUN: %zu..%zu byte(s) past the end changed%s", first + 1, last + 1,
                 under ? "; UNDERRUN too" : "");
    else
        snprintf(buf, size, "UNDERRUN: guard before the start changed");
}

void dmahal__verify_dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags)
{
    struct dmahal__verifier *v = a->verify->v;
    size_t n = 0, bytes = 0, size = 0;
    char *text = NULL;
    /* The items go to memory first, so that the count comes before them. */
    FILE *mem = open_memstream(&text, &size), *out = mem ? mem : f;

    dmahal__lock_take(&v->lock);
    for (const struct verify_rec *rec = v->recs; rec; rec = rec->next) {
        char state[160];

        if (rec->a != a || rec->state != VERIFY_LIVE)
            continue;
        n++;
        bytes += rec->user.len;
        if (!(flags & DMAHAL_DUMP_COMMON))
            continue;
        guard_state(rec, state, sizeof(state));
        fprintf(out, "      buffer va %p  la 0x%012llx-0x%012llx  len %zu  #%llu\n", rec->user.va,
                (unsigned long long)rec->user.la,
                (unsigned long long)(rec->user.la + rec->user.len - 1), rec->user.len,
                (unsigned long long)rec->seq);
        fprintf(out, "        %s\n", state);
        fprintf(out, "        allocated by:\n");
        dmahal__verify_bt_print(out, "          ", rec->alloc_bt);
    }
    dmahal__lock_drop(&v->lock);
    fprintf(f, "    common buffers: %zu, %zu bytes (verified)\n", n, bytes);
    if (mem) {
        fclose(mem);
        if (text)
            fputs(text, f);
        free(text);
        text = NULL;
        mem = open_memstream(&text, &size);
        out = mem ? mem : f;
    }
    if (flags & DMAHAL_DUMP_SGL) {
        n = dmahal__verify_stream_dump(v, a, out);
        fprintf(f, "    scatter/gather lists: %zu (verified)\n", n);
    }
    if (mem) {
        fclose(mem);
        if (text)
            fputs(text, f);
        free(text);
    }
}

void dmahal__verify_dump_platform(struct dmahal_platform *p, FILE *f)
{
    struct dmahal__verifier *v = atomic_load(&p->verifier);
    uint64_t counts[DMAHAL_REPORT_KINDS], total;

    if (!v) {
        fprintf(f, "verifier: off\n");
        return;
    }
    pthread_mutex_lock(&v->rlock);
    memcpy(counts, v->count, sizeof(counts));
    total = v->total;
    pthread_mutex_unlock(&v->rlock);
    dmahal__lock_take(&v->lock);
    fprintf(f,
            "verifier: %s, %llu allocations, %llu frees, %zu buffers in quarantine "
            "(%zu bytes), %zu put adapters kept\n",
            atomic_load(&v->on) ? "on" : "off (out of memory)", (unsigned long long)v->allocs,
            (unsigned long long)v->frees, v->q_n, v->q_bytes, v->ngrave);
    for (const struct verify_rec *rec = v->q_head; rec; rec = rec->qnext) {
        char name[160];

        dmahal__verify_rec_name(rec, name, sizeof(name));
        fprintf(f, "  quarantined: %s, freed %llu frees ago\n", name,
                (unsigned long long)(v->frees - rec->free_seq));
    }
    dmahal__lock_drop(&v->lock);
    fprintf(f, "  reports: %llu\n", (unsigned long long)total);
    for (int k = 1; k < DMAHAL_REPORT_KINDS; k++)
        if (counts[k])
            fprintf(f, "    %s: %llu\n", dmahal_report_kind_name(k), (unsigned long long)counts[k]);
}
