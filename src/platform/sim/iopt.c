/* SPDX-License-Identifier: MIT */
/*
 * iopt.c - the simulated IOMMU's page tables: one radix tree per device (per domain), walked
 * on every device access as the hardware walks its tables.
 *
 * Entries are atomics and interior nodes are installed with a compare-and-swap, so that
 * streaming maps of disjoint ranges update the table from many threads without a lock, and
 * the device walks it without one, as hardware does.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <stdlib.h>

#define LEVEL_BITS 9
#define LEVEL_SIZE (1u << LEVEL_BITS)

/*
 * The last leaf node each thread walked to, by table and index: a streaming map and its
 * unmap touch the same leaf, and so do most device accesses after them, so the walk from
 * the root is mostly skipped. Leaf nodes live as long as their table, and a table's id is
 * never reused, so a hint is never followed into freed memory.
 */
struct leaf_hint {
    uint64_t id;
    uint64_t key; /* iova >> (page_shift + LEVEL_BITS) */
    sim_pte *node;
};

static DMAHAL__TLS struct leaf_hint hint;
static atomic_uint_fast64_t next_id = 1;

int dmahal__sim_iopt_init(struct sim_iopt *t, unsigned page_shift, unsigned bits)
{
    t->id = atomic_fetch_add(&next_id, 1);
    unsigned index_bits = bits > page_shift ? bits - page_shift : 1;

    t->page_shift = page_shift;
    t->bits = bits;
    t->levels = (index_bits + LEVEL_BITS - 1) / LEVEL_BITS;
    t->root = calloc(LEVEL_SIZE, sizeof(sim_pte));
    return t->root ? 0 : -ENOMEM;
}

static void free_node(sim_pte *node, unsigned level)
{
    if (!node)
        return;
    if (level > 1)
        for (unsigned i = 0; i < LEVEL_SIZE; i++)
            free_node((sim_pte *)(uintptr_t)atomic_load_explicit(&node[i], memory_order_relaxed),
                      level - 1);
    free(node);
}

void dmahal__sim_iopt_fini(struct sim_iopt *t)
{
    free_node(t->root, t->levels);
    t->root = NULL;
}

static unsigned index_at(const struct sim_iopt *t, uint64_t iova, unsigned level)
{
    return (unsigned)((iova >> (t->page_shift + (level - 1) * LEVEL_BITS)) & (LEVEL_SIZE - 1));
}

/* The walk from the root, out of line so that a hit in the hint costs no register saves. */
static __attribute__((noinline)) sim_pte *leaf_walk(const struct sim_iopt *t, uint64_t iova,
                                                    bool create)
{
    sim_pte *node = t->root;
    uint64_t key = iova >> (t->page_shift + LEVEL_BITS);

    for (unsigned level = t->levels; level > 1; level--) {
        sim_pte *slot = &node[index_at(t, iova, level)];
        uint64_t next = atomic_load_explicit(slot, memory_order_acquire);

        if (!next) {
            sim_pte *fresh;
            uint64_t expected = 0;

            if (!create)
                return NULL;
            fresh = calloc(LEVEL_SIZE, sizeof(sim_pte));
            if (!fresh)
                return NULL;
            /* Another thread may have installed the node meanwhile: use its. */
            if (atomic_compare_exchange_strong_explicit(slot, &expected, (uint64_t)(uintptr_t)fresh,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                next = (uint64_t)(uintptr_t)fresh;
            } else {
                free(fresh);
                next = expected;
            }
        }
        node = (sim_pte *)(uintptr_t)next;
    }
    hint = (struct leaf_hint){t->id, key, node};
    return &node[index_at(t, iova, 1)];
}

/* The leaf entry for @iova, creating the path when @create; NULL if absent or no memory. */
static inline sim_pte *leaf(const struct sim_iopt *t, uint64_t iova, bool create)
{
    if (hint.node && hint.id == t->id && hint.key == iova >> (t->page_shift + LEVEL_BITS))
        return &hint.node[index_at(t, iova, 1)];
    return leaf_walk(t, iova, create);
}

int dmahal__sim_iopt_map(struct sim_iopt *t, uint64_t iova, uint64_t addr, size_t len,
                         unsigned perm)
{
    size_t page = (size_t)1 << t->page_shift;

    for (size_t off = 0; off < len; off += page) {
        sim_pte *pte = leaf(t, iova + off, true);

        if (!pte) {
            dmahal__sim_iopt_unmap(t, iova, off);
            return -ENOMEM;
        }
        atomic_store_explicit(pte, (addr + off) | perm, memory_order_release);
    }
    return 0;
}

void dmahal__sim_iopt_unmap(struct sim_iopt *t, uint64_t iova, size_t len)
{
    size_t page = (size_t)1 << t->page_shift;

    /* Interior nodes stay: they are reused by the next mapping of the same IOVA space. */
    for (size_t off = 0; off < len; off += page) {
        sim_pte *pte = leaf(t, iova + off, false);

        if (pte)
            atomic_store_explicit(pte, 0, memory_order_release);
    }
}

int dmahal__sim_iopt_lookup(const struct sim_iopt *t, uint64_t iova, unsigned perm, uint64_t *addr,
                            bool *host)
{
    const sim_pte *pte;
    uint64_t e, mask = ((uint64_t)1 << t->page_shift) - 1;

    if (t->bits < 64 && iova >> t->bits)
        return DMAHAL_FAULT_UNMAPPED;
    pte = leaf(t, iova, false);
    e = pte ? atomic_load_explicit(pte, memory_order_acquire) : 0;
    if (!(e & (IOPTE_R | IOPTE_W)))
        return DMAHAL_FAULT_UNMAPPED;
    if ((e & perm) != perm)
        return DMAHAL_FAULT_PERM;
    *addr = (e & ~mask) | (iova & mask);
    *host = e & IOPTE_HOST;
    return 0;
}
