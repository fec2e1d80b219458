/*
 * iopt.c - the simulated IOMMU's page tables: one radix tree per device (per domain), walked
 * on every device access as the hardware walks its tables.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <stdlib.h>

#define LEVEL_BITS 9
#define LEVEL_SIZE (1u << LEVEL_BITS)

int sim_iopt_init(struct sim_iopt *t, unsigned page_shift)
{
    unsigned index_bits = SIM_IOVA_BITS - page_shift;

    t->page_shift = page_shift;
    t->levels = (index_bits + LEVEL_BITS - 1) / LEVEL_BITS;
    t->root = calloc(LEVEL_SIZE, sizeof(uint64_t));
    return t->root ? 0 : -ENOMEM;
}

static void free_node(uint64_t *node, unsigned level)
{
    if (!node)
        return;
    if (level > 1)
        for (unsigned i = 0; i < LEVEL_SIZE; i++)
            free_node((uint64_t *)(uintptr_t)node[i], level - 1);
    free(node);
}

void sim_iopt_fini(struct sim_iopt *t)
{
    free_node(t->root, t->levels);
    t->root = NULL;
}

static unsigned index_at(const struct sim_iopt *t, uint64_t iova, unsigned level)
{
    return (unsigned)((iova >> (t->page_shift + (level - 1) * LEVEL_BITS)) & (LEVEL_SIZE - 1));
}

/* The leaf entry for @iova, creating the path when @create; NULL if absent or no memory. */
static uint64_t *leaf(const struct sim_iopt *t, uint64_t iova, bool create)
{
    uint64_t *node = t->root;

    for (unsigned level = t->levels; level > 1; level--) {
        uint64_t *slot = &node[index_at(t, iova, level)];

        if (!*slot) {
            if (!create)
                return NULL;
            *slot = (uint64_t)(uintptr_t)calloc(LEVEL_SIZE, sizeof(uint64_t));
            if (!*slot)
                return NULL;
        }
        node = (uint64_t *)(uintptr_t)*slot;
    }
    return &node[index_at(t, iova, 1)];
}

int sim_iopt_map(struct sim_iopt *t, uint64_t iova, uint64_t pa, size_t len, unsigned perm)
{
    size_t page = (size_t)1 << t->page_shift;

    for (size_t off = 0; off < len; off += page) {
        uint64_t *pte = leaf(t, iova + off, true);

        if (!pte) {
            sim_iopt_unmap(t, iova, off);
            return -ENOMEM;
        }
        *pte = ((pa + off) >> t->page_shift) << 2 | perm;
    }
    return 0;
}

void sim_iopt_unmap(struct sim_iopt *t, uint64_t iova, size_t len)
{
    size_t page = (size_t)1 << t->page_shift;

    /* Interior nodes stay: they are reused by the next mapping of the same IOVA space. */
    for (size_t off = 0; off < len; off += page) {
        uint64_t *pte = leaf(t, iova + off, false);

        if (pte)
            *pte = 0;
    }
}

int sim_iopt_lookup(const struct sim_iopt *t, uint64_t iova, unsigned perm, uint64_t *pa)
{
    const uint64_t *pte;

    if (iova >> SIM_IOVA_BITS)
        return DMAHAL_FAULT_UNMAPPED;
    pte = leaf(t, iova, false);
    if (!pte || !(*pte & (IOPTE_R | IOPTE_W)))
        return DMAHAL_FAULT_UNMAPPED;
    if ((*pte & perm) != perm)
        return DMAHAL_FAULT_PERM;
    *pa = (*pte >> 2 << t->page_shift) | (iova & (((uint64_t)1 << t->page_shift) - 1));
    return 0;
}
