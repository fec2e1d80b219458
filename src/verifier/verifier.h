/* SPDX-License-Identifier: MIT */
/*
 * verifier.h - private: the DMA verifier's state, shared by its files and by the dump.
 *
 * The verifier wraps an adapter's ops table, as Driver Verifier hooks DMA_OPERATIONS. Every
 * common buffer it hands out is a sub-range of a larger one from the wrapped allocator, with
 * guard zones on both sides filled with a pattern. It records each buffer (who allocated it,
 * where, as a pointer into a depot of distinct backtraces) in a hash table by CPU address, to
 * check frees, and by (device, logical address) (a hash table by page for buffers within one
 * page, a treap for larger ones), to check device accesses in O(1) or O(log n); naming the
 * nearest buffer, as AddressSanitizer does, walks them all, on the error path. A freed buffer
 * stays in a quarantine (its memory neither reused nor unmapped) for a number of frees, so a
 * late DMA into it is caught; when it leaves, the last few are kept (unindexed, still the
 * wrapped allocator's) for the next allocations of their size, which then need no call to
 * the allocator.
 *
 * Lock order: v->lock, then a device's lock, then an adapter's common lock; v->rlock (the
 * report log) is innermost.
 */
#ifndef DMAHAL_VERIFIER_H
#define DMAHAL_VERIFIER_H

#include "core/verify_hooks.h"

#define VERIFY_BT_DEPTH         16
#define VERIFY_RING             64  /* reports kept for dmahal_verify_report */
#define VERIFY_MSG              512 /* bytes of one report's message */
#define VERIFY_SEEN             256 /* device-side bugs remembered, to count their repeats */
#define VERIFY_QUARANTINE       64  /* freed buffers held back from reuse */
#define VERIFY_QUARANTINE_BYTES ((size_t)64 << 20)
#define VERIFY_GRAVEYARD        64   /* put adapters whose structs are kept to catch later use */
#define VERIFY_GUARD_MAX        1024 /* guard bytes filled and checked on each side, at most */
#define VERIFY_SPARE_RECS       64   /* records kept for reuse */
#define VERIFY_READY            8    /* buffers out of the quarantine kept for reuse ... */
#define VERIFY_READY_MAX        ((size_t)256 << 10) /* ... each this large at most */
#define VERIFY_GUARD_BYTE       0xfc                /* what the guard zones hold */
#define VERIFY_FREED_BYTE       0xfd                /* what a quarantined buffer holds */
#define VERIFY_FREED_FILL       512                 /* ... at each end, at most */

/* A backtrace as captured: return addresses, innermost first. */
struct verify_bt_raw {
    void *pc[VERIFY_BT_DEPTH];
    int n;
};

/* A backtrace as kept: interned in the verifier's stack depot, so that the many buffers
 * allocated from one place share one copy, and a record holds a pointer. Never NULL in a
 * record: &dmahal__verify_bt_none when none was recorded. */
struct verify_bt {
    struct verify_bt *next; /* in its depot bucket */
    uint64_t hash;
    int n;
    void *pc[VERIFY_BT_DEPTH];
};

struct verify_chunk {
    struct verify_chunk *next;
};

/* The stack depot: a hash table of distinct traces, carved from chunks freed at close. */
struct verify_depot {
    struct verify_bt **bucket;
    size_t cap, n;
    struct verify_chunk *chunks;
    char *chunk_at;
    size_t chunk_left;
    /* The trace last interned from each caller (by its return address, hashed): a loop's
     * allocations find theirs without hashing the whole trace. */
    struct verify_bt *recent[64];
};

enum verify_state { VERIFY_LIVE, VERIFY_FREED };

/* One common buffer the verifier handed out. */
struct verify_rec {
    struct dmahal_adapter *a;
    struct dmahal_device *dev;
    struct dmahal__vadapter *va_owner;
    struct dmahal_buf user;  /* what the driver got */
    struct dmahal_buf under; /* what the wrapped allocator gave: user plus guard zones */
    size_t head, tail;       /* guard bytes filled before and after user (may be 0) */
    enum verify_state state;
    unsigned flags;   /* the allocation's */
    bool track_flush; /* cached, on a non-coherent adapter: device reads need a sync first */
    bool flushed;     /* hash holds what the last dmahal_common_sync gave the device */
    /* track_flush: bit i set when the device wrote chunk i since the last
     * dmahal_common_sync(DMAHAL_FROM_DEVICE) touching it (dmahal__verify_chunk_shift) */
    uint64_t pending;
    uint64_t hash;
    uint64_t seq;      /* 1 for the platform's first allocation, then counting up */
    uint64_t free_seq; /* the verifier's free count when it was freed */
    bool dev_wrote;    /* freed: a device wrote offsets dev_first..dev_last since the check */
    size_t dev_first, dev_last;
    const struct verify_bt *alloc_bt, *free_bt; /* in the depot */
    struct verify_rec *qnext;           /* quarantine FIFO (oldest first), or the spare list */
    struct verify_rec *next, *prev;     /* every record, live or quarantined, oldest first */
    struct verify_rec *hnext, **hpprev; /* the by-CPU-address hash chain */
    struct verify_rec *lnext, **lpprev; /* the by-page hash chain (one-page buffers) */
    struct verify_rec *left, *right;    /* the treap (buffers over more than a page) */
    uint32_t prio;
    bool big; /* spans more than one page: in the treap, not the page hash */
};

/* Records in two chained hash tables of one size: by CPU address, for the exact lookups of
 * free and sync; and, for the device side, a buffer within one page by (device, page). */
struct verify_vahash {
    struct verify_rec **bucket, **lbucket;
    size_t cap, n; /* cap a power of two, n <= cap */
};

/* A cached buffer's unsynced device writes are kept in 64 chunks: cache lines (64 bytes) up to
 * 4 KiB, larger beyond. A sync touching a chunk clears it, as an invalidate takes whole lines:
 * a coarse chunk can hide a missing sync, never report one that is not. */
static inline unsigned dmahal__verify_chunk_shift(size_t len)
{
    unsigned s = 6;

    while (s < 63 && ((len - 1) >> s) >= 64)
        s++;
    return s;
}

/* The bits of chunks [first >> s, last >> s]. */
static inline uint64_t dmahal__verify_chunks(size_t len, size_t first, size_t last)
{
    unsigned s = dmahal__verify_chunk_shift(len), a = (unsigned)(first >> s),
             b = (unsigned)(last >> s);

    return (b >= 63 ? ~UINT64_C(0) : (UINT64_C(1) << (b + 1)) - 1) & ~((UINT64_C(1) << a) - 1);
}

/* One streaming mapping the verifier handed out. The driver gets a copy of the core's list
 * (the shadow, the verifier's own memory), so that a list it changed is noticed, and a
 * stale pointer (unmapped already) never reaches the core: the shadow stays in a quarantine
 * after unmap. */
struct dmahal__verify_map {
    struct dmahal_adapter *a;
    struct dmahal_device *dev;
    struct dmahal__vadapter *owner;
    struct dmahal_sgl *inner;  /* the core's */
    struct dmahal_sgl *shadow; /* the driver's */
    struct iovec *iov;         /* the memory, copied */
    unsigned iovcnt;
    size_t bytes;
    enum dmahal_dir dir;
    bool cpu_owns; /* between dmahal_sync_for_cpu and dmahal_sync_for_device */
    bool unmapped;
    uint64_t hash; /* to-device: the memory's hash when it was last given to the device */
    uint64_t seq;  /* 1 for the platform's first mapping */
    uint64_t unmap_seq;
    const struct verify_bt *map_bt, *unmap_bt; /* in the depot */
    struct dmahal__verify_map
        *next; /* on the live list, or the unmapped quarantine (oldest first) */
    struct dmahal__verify_map *prev;  /* on the live list */
    struct dmahal__verify_map *hnext; /* live: the by-list hash chain; spare: the spare list */
    unsigned shadow_cap, iov_cap;     /* segments and iovecs the buffers hold, for reuse */
};

/* The verifier's per-adapter state. */
struct dmahal__vadapter {
    struct dmahal__verifier *v;
    const struct dmahal_dma_ops *inner; /* what the verifier forwards to */
    uint64_t id;
    char dev_name[64]; /* copied: a put adapter outlives its device */
    size_t live;       /* buffers allocated and not freed */
    bool dead;         /* put: every call through it is a bug */
    const struct verify_bt *put_bt;
    struct dmahal_adapter *adapter;
    struct dmahal__vadapter *grave_next;
};

struct dmahal__verifier {
    struct dmahal_platform *p;
    dmahal__lock_t lock; /* everything below but the report log (inlined: on every call) */
    atomic_bool on;      /* false once out of memory: calls go straight through */
    struct verify_rec *recs, *recs_tail; /* every record, oldest first */
    struct verify_vahash by_va;
    struct verify_rec *by_la; /* treap root of the big records, by (device, logical address) */
    uint32_t prio_seed;
    struct verify_depot depot;
    struct verify_rec *q_head, *q_tail;
    size_t q_n, q_bytes;
    uint64_t allocs, frees;
    struct dmahal__verify_map *maps;        /* live mappings, newest first */
    struct dmahal__verify_map **map_bucket; /* live mappings by the driver's list pointer */
    size_t map_cap;
    struct dmahal__verify_map *map_spare;
    size_t nmap_spare;
    struct dmahal__verify_map *unmapped, *unmapped_tail; /* the unmapped quarantine, oldest first */
    size_t nmaps, nunmapped;
    uint64_t nmapped, nunmaps;
    struct verify_rec *spare; /* records to reuse, linked by qnext */
    size_t nspare;
    /* Buffers out of the quarantine, still the wrapped allocator's, oldest first: the next
     * allocations of their adapter, size and flags take them (ops.c). */
    struct verify_rec *ready[VERIFY_READY];
    size_t nready;
    struct dmahal__vadapter *graveyard; /* newest first */
    size_t ngrave;

    pthread_mutex_t rlock; /* the report log and the report settings */
    unsigned flags;
    dmahal_report_fn fn;
    void *ctx;
    uint64_t count[DMAHAL_REPORT_KINDS];
    uint64_t total;
    struct dmahal_report ring[VERIFY_RING];
    char ring_msg[VERIFY_RING][VERIFY_MSG];
    /* Device-side bugs reported once: (kind, device, buffer or mapping), and how often each
     * was seen again (an open-addressed table; the oldest entry of a full probe is
     * replaced, so a bug long forgotten is reported anew). */
    struct verify_seen {
        const struct dmahal_device *dev;
        uint64_t key;
        int kind;
        uint64_t repeats;
    } seen[VERIFY_SEEN];
    uint64_t repeats[DMAHAL_REPORT_KINDS], repeats_total;
};

/* A report being made: the one line, plus what the printed form adds. */
struct verify_report {
    int kind;
    dmahal_addr_t la;
    size_t len;
    char msg[VERIFY_MSG];
    const struct verify_rec *rec;     /* the buffer concerned, or NULL */
    const struct verify_bt *extra_bt; /* e.g. where an adapter was put */
    const char *extra_what;
    const struct verify_bt *extra_bt2;
    const char *extra_what2;
    /* Nonzero: a device-side report about one buffer (its seq << 1) or mapping (seq << 1 |
     * 1) of @dedup_dev; a repeat of the same kind is counted, not reported. */
    uint64_t dedup;
    const struct dmahal_device *dedup_dev;
};

/* Two 64-bit words, as a 128-bit vector (SSE2, NEON): for patterns and checksums. */
typedef uint64_t verify_v2 __attribute__((vector_size(16)));

/* report.c */
/* Captures the backtrace of the verifier operation whose frame is @frame
 * (__builtin_frame_address(0) in it): its caller first, @skip frames fewer. A frame-pointer
 * walk unless DMAHAL_VERIFY_FULL_BACKTRACE; nothing with DMAHAL_VERIFY_NO_BACKTRACE. Takes no
 * lock. */
void dmahal__verify_bt_capture_from(const struct dmahal__verifier *v, const void *frame, int skip,
                                    struct verify_bt_raw *bt);
#define verify_bt_capture(v, bt)                                                                   \
    dmahal__verify_bt_capture_from((v), __builtin_frame_address(0), 0, (bt))
/* Stores a trace in the depot (once per distinct trace); under v->lock. Never NULL. Inline,
 * the trace last interned from the same caller (most are); out of line, the depot's table. */
const struct verify_bt *dmahal__verify_bt_intern_slow(struct dmahal__verifier *v,
                                                      const struct verify_bt_raw *raw);

static inline bool dmahal__verify_same_pcs(void *const *x, void *const *y, int n)
{
    for (int i = 0; i < n; i++)
        if (x[i] != y[i])
            return false;
    return true;
}

/* The depot's recent[] slot of a trace's caller. */
static inline size_t dmahal__verify_bt_slot(const struct verify_bt_raw *raw)
{
    return (size_t)(dmahal__hash_ptr(raw->pc[0]) >> 58);
}

extern const struct verify_bt dmahal__verify_bt_none;

static inline const struct verify_bt *dmahal__verify_bt_intern(struct dmahal__verifier *v,
                                                               const struct verify_bt_raw *raw)
{
    size_t slot;

    if (raw->n == 0)
        return &dmahal__verify_bt_none;
    slot = dmahal__verify_bt_slot(raw);
    /* Two ways: an allocation's and a free's callers may share a slot. */
    for (int w = 0; w < 2; w++) {
        const struct verify_bt *e = v->depot.recent[slot ^ (size_t)w];

        if (e && e->n == raw->n && dmahal__verify_same_pcs(e->pc, raw->pc, raw->n))
            return e;
    }
    return dmahal__verify_bt_intern_slow(v, raw);
}
void dmahal__verify_depot_fini(struct verify_depot *d);
/* Prints a trace, a frame a line: "#N 0xPC function+0xoff (file:line) in object". */
void dmahal__verify_bt_print(FILE *f, const char *indent, const struct verify_bt *bt);
/* Names a return address (symbolize.c): "function+0xoff (file:line) in object" from the
 * debug information through libdw, else what dladdr knows. Thread-safe. */
void dmahal__verify_symbolize(const void *pc, char *buf, size_t size);
/* Which of the two names frames in this process: "libdw" or "dladdr". */
const char *dmahal__verify_symbolizer(void);
/* Makes a report: counts, keeps, calls back, prints, aborts, as the flags say. */
void dmahal__verify_emit(struct dmahal__verifier *v, const struct verify_report *r);
/* hooks.c: appends what the device was doing (its platform's word) to a device-side report. */
void dmahal__verify_add_activity(struct dmahal_device *d, struct verify_report *r);
/* Describes a buffer in a few words: "64-byte common buffer la 0x...-0x... (adapter #3,
 * device edu)". */
void dmahal__verify_rec_name(const struct verify_rec *rec, char *buf, size_t size);
/* Allocates verifier memory; fails on demand for tests (dmahal__verify_fail_countdown). */
void *dmahal__verify_malloc(size_t size);
void *dmahal__verify_realloc(void *p, size_t size);
/* Tests set it to N to make the verifier's Nth next allocation fail; 0: never. */
extern atomic_int dmahal__verify_fail_countdown;
/* Reports that the verifier ran out of memory and turns it off. */
void dmahal__verify_oom(struct dmahal__verifier *v, const char *what);

/* maps.c: streaming checks. The ops wrap the adapter's; the rest run under v->lock. */
int dmahal__verify_map(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                       enum dmahal_dir dir, unsigned flags, struct dmahal_sgl **out);
int dmahal__verify_map_async(struct dmahal_adapter *a, const struct iovec *iov, unsigned iovcnt,
                             enum dmahal_dir dir, unsigned flags, dmahal_map_fn fn, void *ctx);
int dmahal__verify_unmap(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
int dmahal__verify_sync_for_device(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
int dmahal__verify_sync_for_cpu(struct dmahal_adapter *a, struct dmahal_sgl *sgl);
/* A device access outside every live common buffer: true if a mapping (live or unmapped)
 * explains it, with its reports made into @r (kind 0: none). */
bool dmahal__verify_stream_dev_access(struct dmahal__verifier *v, struct dmahal_device *d,
                                      dmahal_addr_t la, size_t len, bool write,
                                      struct verify_report *r);
/* The adapter goes: its live mappings are leaks; its unmapped ones are forgotten. */
void dmahal__verify_stream_forget_adapter(struct dmahal__verifier *v, struct dmahal_adapter *a);
/* A common buffer is freed: is any of it still mapped? */
void dmahal__verify_stream_check_free(struct dmahal__verifier *v, const struct verify_rec *rec);
void dmahal__verify_stream_fini(struct dmahal__verifier *v);
/* Lists the adapter's live mappings, one each; returns how many. */
size_t dmahal__verify_stream_dump(struct dmahal__verifier *v, struct dmahal_adapter *a, FILE *f);
uint64_t dmahal__verify_hash(const void *p, size_t n);
/* The widest vectors (bytes: 16, 32, 64) dmahal__verify_hash may use where the CPU has them;
 * tests lower it to check each of its loops. */
extern atomic_uint dmahal__verify_hash_width;

/* check.c: for the dump. Writes a verified adapter's buffers (with guard state and
 * allocation backtraces) and the platform's quarantine. Take v->lock themselves. */
void dmahal__verify_dump_adapter(struct dmahal_adapter *a, FILE *f, unsigned flags);
void dmahal__verify_dump_platform(struct dmahal_platform *p, FILE *f);

/* ---- shared between the verifier's files ------------------------------------------------ */

/* index.c: the indexes of live buffers; the caller holds v->lock. */
void dmahal__verify_rec_unindex(struct dmahal__verifier *v, struct verify_rec *rec);
void dmahal__verify_rec_index(struct dmahal__verifier *v, struct verify_rec *rec);
struct verify_rec *dmahal__verify_va_find(const struct dmahal__verifier *v, const void *va);
int dmahal__verify_va_reserve(struct verify_vahash *h);
struct verify_rec *dmahal__verify_la_find(const struct dmahal__verifier *v,
                                          const struct dmahal_device *d, dmahal_addr_t la);
void dmahal__verify_la_neighbours(const struct dmahal__verifier *v, const struct dmahal_device *d,
                                  dmahal_addr_t la, struct verify_rec **prev,
                                  struct verify_rec **next);

/* ops.c: guard zones and the freed pattern (damage is reported through v). */
int dmahal__verify_check_freed(struct dmahal__verifier *v, struct verify_rec *rec,
                               const char *when);
int dmahal__verify_check_guards(struct dmahal__verifier *v, struct verify_rec *rec,
                                const char *when);
void dmahal__verify_blocks_init(void);
extern pthread_once_t dmahal__verify_blocks_once;
bool dmahal__verify_find_changed(const unsigned char *p, size_t n, unsigned char want,
                                 size_t *first, size_t *last);
bool dmahal__verify_intact(const unsigned char *p, size_t n, unsigned char want);

/* ops.c: gives the buffers kept for reuse of @a (every adapter's if NULL) back to the wrapped
 * allocator. Under v->lock. */
void dmahal__verify_ready_drain(struct dmahal__verifier *v, struct dmahal_adapter *a);

/* ops.c: the wrapped common-buffer operations. */
int dmahal__verify_common_alloc(struct dmahal_adapter *a, size_t len, unsigned flags,
                                struct dmahal_buf *out);
int dmahal__verify_common_free(struct dmahal_adapter *a, const struct dmahal_buf *buf);
int dmahal__verify_common_sync(struct dmahal_adapter *a, const struct dmahal_buf *b, size_t off,
                               size_t len, enum dmahal_dir dir);

/* graveyard.c: the table that wraps a verified adapter. */
extern const struct dmahal_dma_ops dmahal__verify_ops;

#endif /* DMAHAL_VERIFIER_H */
