/* SPDX-License-Identifier: MIT */
/* nvme_drv_rig.h - the example NVMe driver on a sim machine, with the verifier counting: what
 * the driver's tests share. */
#ifndef DMAHAL_TESTS_SIM_NVME_DRV_RIG_H
#define DMAHAL_TESTS_SIM_NVME_DRV_RIG_H

#include <dmahal/dmahal.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvme/nvme_driver.h"
#include "test.h"

struct ctx {
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct nvme *n;
    struct nvme_info info;
};

static inline void up(struct ctx *c, const char *spec)
{
    memset(c, 0, sizeof(*c));
    CHECK_OK(dmahal_platform_open(spec, &c->p));
    CHECK_OK(dmahal_verify_enable(c->p, DMAHAL_VERIFY_COUNT, NULL, NULL));
    CHECK_OK(dmahal_device_open(c->p, "nvme:size=64M,serial=dmahal0", &c->d));
    CHECK_OK(nvme_open(c->d, &c->n));
    CHECK_OK(nvme_identify(c->n, &c->info));
}

static inline void down(struct ctx *c)
{
    nvme_close(c->n);
    dmahal_device_close(c->d);
    CHECK_EQ(dmahal_verify_count(c->p, 0), 0);
    dmahal_platform_close(c->p);
}

static inline void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 9));
}

/* A random mix of queued reads and writes on I/O queue @qi of @n, over the 8192 blocks from
 * @lba0, against a copy of what they hold (zeroes at first, as a fresh namespace): lengths of 1 to
 * 64 blocks, data in a common buffer (any dword offset) or in malloc'd memory (any byte offset:
 * bounced where not dword-aligned), up to 32 in flight over LBA ranges and memory that do not
 * overlap, completions taken a random number at a time. Every read is checked when it comes back,
 * and the verifier reports nothing. */
static inline void queued_mix_on(struct nvme *n, unsigned qi, uint64_t lba0, uint64_t seed,
                                 unsigned ops, const char *what)
{
    enum { SLOTS = 32, MAXB = 64, SPAN = MAXB * 512 + 8, NSB = 8192 };
    struct {
        bool busy, read;
        uint64_t lba;
        uint32_t nb;
        unsigned char *at;
    } cmd[SLOTS];
    unsigned char *shadow = calloc(NSB, 512), *heap = malloc((size_t)SLOTS * SPAN);
    uint64_t x = seed;
    struct dmahal_buf buf;
    unsigned inflight = 0;

    CHECK(shadow && heap);
    memset(cmd, 0, sizeof(cmd));
    CHECK_OK(dmahal_common_alloc(nvme_adapter(n), (size_t)SLOTS * SPAN, 0, &buf));
    for (unsigned op = 0; op < ops || inflight; op++) {
        unsigned slot = SLOTS;
        bool reap_now;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        reap_now = op >= ops || x % 4 == 0 || inflight == SLOTS;
        if (!reap_now) {
            for (unsigned i = 0; i < SLOTS && slot == SLOTS; i++)
                if (!cmd[(x >> 8) % SLOTS].busy)
                    slot = (unsigned)((x >> 8) % SLOTS);
                else if (!cmd[i].busy)
                    slot = i;
        }
        if (slot < SLOTS) {
            uint32_t nb = 1 + (uint32_t)((x >> 16) % MAXB);
            uint64_t lba = (x >> 24) % (NSB - nb);
            bool read = (x >> 40) & 1, mem = (x >> 41) & 1, clash = false;
            size_t off = mem ? (size_t)((x >> 42) % 8) : (size_t)((x >> 42) % 2) * 4;
            unsigned char *at = (mem ? heap : (unsigned char *)buf.va) + (size_t)slot * SPAN + off;

            for (unsigned i = 0; i < SLOTS; i++)
                clash |= cmd[i].busy && lba < cmd[i].lba + cmd[i].nb && cmd[i].lba < lba + nb;
            if (!clash) {
                if (read) {
                    memset(at, 0xee, (size_t)nb * 512);
                } else {
                    for (size_t k = 0; k < (size_t)nb * 512; k++)
                        at[k] = (unsigned char)(x >> (k % 7) ^ k);
                    memcpy(shadow + lba * 512, at, (size_t)nb * 512);
                }
                CHECK_OK(mem ? nvme_submit_mem_on(n, qi, read ? NVME_CMD_READ : NVME_CMD_WRITE,
                                                  lba0 + lba, nb, at, slot)
                             : nvme_submit_on(n, qi, read ? NVME_CMD_READ : NVME_CMD_WRITE,
                                              lba0 + lba, nb, &buf,
                                              (size_t)(at - (unsigned char *)buf.va), slot));
                cmd[slot].busy = true;
                cmd[slot].read = read;
                cmd[slot].lba = lba;
                cmd[slot].nb = nb;
                cmd[slot].at = at;
                inflight++;
                continue;
            }
        }
        if (inflight) {
            struct nvme_done done[SLOTS];
            unsigned min = (unsigned)((x >> 48) % (inflight + 1));
            int got = nvme_reap_on(n, qi, min ? min : 1, done, SLOTS);

            CHECK_GE(got, 1);
            CHECK_EQ(nvme_inflight_on(n, qi), inflight - (unsigned)got);
            for (int i = 0; i < got; i++) {
                unsigned s = (unsigned)done[i].tag;

                CHECK_LT_U(s, SLOTS);
                CHECK(cmd[s].busy);
                CHECK_EQ(done[i].rc, 0);
                if (cmd[s].read &&
                    memcmp(cmd[s].at, shadow + cmd[s].lba * 512, (size_t)cmd[s].nb * 512))
                    test_fail(__FILE__, __LINE__, "%s: read of %u blocks at %llu differs", what,
                              cmd[s].nb, (unsigned long long)cmd[s].lba);
                cmd[s].busy = false;
                inflight--;
            }
        }
    }
    CHECK_OK(dmahal_common_free(nvme_adapter(n), &buf));
    free(shadow);
    free(heap);
}

/* queued_mix_on on the first queue of a driver of its own on the machine @spec. */
static inline void queued_mix(const char *spec, uint64_t seed, unsigned ops)
{
    struct ctx c;

    up(&c, spec);
    queued_mix_on(c.n, 0, 0, seed, ops, spec);
    down(&c);
}

#endif
