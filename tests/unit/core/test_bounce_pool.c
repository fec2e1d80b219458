/* SPDX-License-Identifier: MIT */
/* test_bounce_pool.c - the bounce pools' promise: a request either can be served (now, or
 * once enough is unmapped), or fails at once with -E2BIG; never a false -ENOSPC with
 * nothing mapped, never a wait that no unmap can end. */
#include "rig.h"

#include <pthread.h>
#include <unistd.h>

/* The chunk a pool grows by need not be as aligned as an adapter's elements must be: on a
 * 16 MiB machine whose top page is taken, a chunk right below it is 1 MiB-aligned nowhere
 * a 1 MiB-aligned run fits. */
TEST(bounce_pool_serves_an_alignment_larger_than_the_page)
{
    struct dmahal_desc plain = {.addr_bits = 32};
    struct dmahal_desc mib = {.addr_bits = 32, .alignment = 1u << 20, .max_transfer = 1u << 20};
    struct rig r;
    struct dmahal_adapter *a;
    unsigned char *b = pages(257), *one = pages(1);
    struct iovec first = {one, 4096};
    struct dmahal_sgl *top;
    struct iovec iov = {b + 64, (1u << 20) - 64};
    struct dmahal_sgl *sgl = NULL;

    rig_open(&r, "sim:ram=0-16M", &plain);
    CHECK_OK(dmahal_map(r.a, &first, 1, DMAHAL_TO_DEVICE, 0, &top));
    CHECK_EQ_U(top->seg[0].la, (16u << 20) - 4096);
    CHECK_OK(dmahal_adapter_get(r.d, &mib, &a));
    fill(b, 257 * 4096, 9);
    CHECK_OK(dmahal_map(a, &iov, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &sgl));
    check_constraints(a, sgl);
    CHECK_EQ(dmahal_adapter_map_registers_in_use(a), 256);
    CHECK_OK(dmahal_unmap(a, sgl));
    /* Without the flag too: nothing is mapped, so nothing to wait for. */
    CHECK_OK(dmahal_map(a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    check_constraints(a, sgl);
    CHECK_OK(dmahal_unmap(a, sgl));
    CHECK_OK(dmahal_unmap(r.a, top));
    rig_close(&r);
    free(b);
    free(one);
}

/* Two adapters of a class join (one chunk each), one is put, and a third asks for a larger
 * share than either chunk: its largest transfer must still fit one chunk. */
TEST(bounce_pool_after_a_put_serves_a_larger_share)
{
    struct dmahal_desc small = {.addr_bits = 32, .max_transfer = 40960, .max_segments = 1};
    struct dmahal_desc large = {.addr_bits = 32, .max_transfer = 61440, .max_segments = 1};
    struct rig r;
    struct dmahal_adapter *b2, *c;
    unsigned char *b = pages(16);
    struct iovec one = {b, 4096}, all = {b, 61440};
    struct dmahal_sgl *s1, *s2;

    rig_open(&r, "sim", &small);
    CHECK_OK(dmahal_adapter_get(r.d, &small, &b2));
    CHECK_OK(dmahal_map(r.a, &one, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s1));
    CHECK_OK(dmahal_map(b2, &one, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s2));
    CHECK_OK(dmahal_unmap(r.a, s1));
    CHECK_OK(dmahal_unmap(b2, s2));
    dmahal_adapter_put(r.a);
    CHECK_OK(dmahal_adapter_get(r.d, &large, &c));
    CHECK_OK(dmahal_map(c, &all, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &s1));
    CHECK_EQ(dmahal_adapter_map_registers_in_use(c), 15);
    check_constraints(c, s1);
    CHECK_OK(dmahal_unmap(c, s1));
    CHECK_OK(dmahal_map(c, &all, 1, DMAHAL_TO_DEVICE, 0, &s1));
    CHECK_OK(dmahal_unmap(c, s1));
    rig_close(&r);
    free(b);
}

struct later {
    struct dmahal_adapter *a;
    struct dmahal_sgl *sgl;
    int rc;
};

static void *unmap_later(void *arg)
{
    struct later *l = arg;

    usleep(50 * 1000);
    l->rc = dmahal_unmap(l->a, l->sgl);
    return NULL;
}

/* Servable eventually: the pages are taken, the map waits, another thread's unmap ends it. */
TEST(bounce_pool_request_that_fits_waits_and_is_served)
{
    struct dmahal_desc d = {.addr_bits = 32, .max_transfer = 61440, .max_segments = 1};
    struct rig r;
    unsigned char *b = pages(32);
    struct iovec x = {b, 61440}, y = {b + 65536, 61440};
    struct later l = {0};
    struct dmahal_sgl *sgl;
    pthread_t t;

    rig_open(&r, "sim", &d);
    CHECK_OK(dmahal_map(r.a, &x, 1, DMAHAL_TO_DEVICE, 0, &l.sgl));
    CHECK_ERR(dmahal_map(r.a, &y, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &sgl), -ENOSPC);
    l.a = r.a;
    CHECK_EQ(pthread_create(&t, NULL, unmap_later, &l), 0);
    CHECK_OK(dmahal_map(r.a, &y, 1, DMAHAL_TO_DEVICE, 0, &sgl));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_OK(l.rc);
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

/* Never servable: fails at once, with or without the flag, and leaves the pool usable. */
TEST(bounce_pool_request_no_chunk_can_hold_fails_at_once_with_e2big)
{
    struct dmahal_desc d = {.addr_bits = 32, .max_transfer = 32u << 20, .max_segments = 1};
    struct rig r;
    size_t len = 17u << 20;
    unsigned char *b = malloc(len);
    struct iovec iov = {b, len}, small = {b, 4096};
    struct dmahal_sgl *sgl = (struct dmahal_sgl *)&r;

    CHECK(b != NULL);
    rig_open(&r, "sim", &d);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &sgl), -E2BIG);
    CHECK(sgl == NULL);
    CHECK_ERR(dmahal_map(r.a, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl), -E2BIG);
    CHECK_OK(dmahal_map(r.a, &small, 1, DMAHAL_TO_DEVICE, DMAHAL_MAP_NOWAIT, &sgl));
    CHECK_OK(dmahal_unmap(r.a, sgl));
    rig_close(&r);
    free(b);
}

/* A FROM_DEVICE map the device writes only part of: at unmap the rest of the driver's
 * buffer keeps the driver's bytes, never what the bounce pages held before (another
 * device's TO_DEVICE data). */
TEST(bounce_pages_start_with_the_drivers_bytes_in_every_direction)
{
    struct dmahal_desc d = {.addr_bits = 32, .max_transfer = 16384, .max_segments = 1};
    struct rig r;
    struct dmahal_adapter *other;
    unsigned char *secret = pages(4), *buf = pages(4), *want = pages(4), dev[100];
    struct iovec s = {secret, 16384}, b = {buf, 16384};
    struct dmahal_sgl *sgl;
    enum dmahal_dir dirs[] = {DMAHAL_FROM_DEVICE, DMAHAL_BIDIRECTIONAL};

    rig_open(&r, "sim", &d);
    CHECK_OK(dmahal_adapter_get(r.d, &d, &other));
    for (unsigned k = 0; k < 2; k++) {
        memset(secret, 0xa5, 16384);
        CHECK_OK(dmahal_map(other, &s, 1, DMAHAL_TO_DEVICE, 0, &sgl));
        CHECK_OK(dmahal_unmap(other, sgl));
        fill(buf, 16384, 3 + k);
        memcpy(want, buf, 16384);
        memset(dev, 0x5c, sizeof(dev));
        memcpy(want + 200, dev, sizeof(dev));
        CHECK_OK(dmahal_map(r.a, &b, 1, dirs[k], 0, &sgl));
        CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la + 200, dev, sizeof(dev)));
        CHECK_OK(dmahal_unmap(r.a, sgl));
        for (size_t i = 0; i < 16384; i++)
            if (buf[i] != want[i])
                CHECK_EQ_U(buf[i], want[i]);
    }
    rig_close(&r);
    free(secret);
    free(buf);
    free(want);
}

/* Found by the fuzzer (seed 1): the CPU changes a FROM_DEVICE transfer between
 * sync_for_cpu and sync_for_device, the device then writes only part of it: at unmap the
 * rest holds the CPU's new bytes, bounced or not, on a machine that snoops or not. */
TEST(sync_for_device_hands_the_drivers_bytes_over_in_every_direction)
{
    struct dmahal_desc d32 = {.addr_bits = 32, .max_transfer = 16384, .max_segments = 1};
    struct dmahal_desc d64 = {.addr_bits = 64, .max_transfer = 16384, .max_segments = 1};
    struct {
        const char *spec;
        const struct dmahal_desc *d;
    } cases[] = {{"sim", &d32}, {"sim:coherent=no", &d32}, {"sim:coherent=no", &d64}};

    for (unsigned i = 0; i < 3; i++) {
        struct rig r;
        unsigned char *b = pages(4), *want = pages(4), dev[64];
        struct iovec iov = {b, 16384};
        struct dmahal_sgl *sgl;

        rig_open(&r, cases[i].spec, cases[i].d);
        fill(b, 16384, 1);
        CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
        CHECK_OK(dmahal_sync_for_cpu(r.a, sgl));
        fill(b, 16384, 2);
        memcpy(want, b, 16384);
        CHECK_OK(dmahal_sync_for_device(r.a, sgl));
        memset(dev, 0x77, sizeof(dev));
        memcpy(want, dev, sizeof(dev));
        CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la, dev, sizeof(dev)));
        CHECK_OK(dmahal_unmap(r.a, sgl));
        for (size_t k = 0; k < 16384; k++)
            if (b[k] != want[k])
                CHECK_EQ_U(b[k], want[k]);
        rig_close(&r);
        free(b);
        free(want);
    }
}

/* The same at map time on a machine that does not snoop, in place: the driver's bytes
 * reach memory before the device writes part of the transfer. */
TEST(map_hands_the_drivers_bytes_over_in_every_direction_without_snooping)
{
    struct dmahal_desc d64 = {.addr_bits = 64, .max_transfer = 16384, .max_segments = 1};
    struct rig r;
    unsigned char *b = pages(4), *want = pages(4), dev[64];
    struct iovec iov = {b, 16384};
    struct dmahal_sgl *sgl;

    rig_open(&r, "sim:coherent=no", &d64);
    fill(b, 16384, 5);
    memcpy(want, b, 16384);
    CHECK_OK(dmahal_map(r.a, &iov, 1, DMAHAL_FROM_DEVICE, 0, &sgl));
    memset(dev, 0x66, sizeof(dev));
    memcpy(want + 4096, dev, sizeof(dev));
    CHECK_OK(dmahal_dev_write(r.d, sgl->seg[0].la + 4096, dev, sizeof(dev)));
    CHECK_OK(dmahal_unmap(r.a, sgl));
    for (size_t k = 0; k < 16384; k++)
        if (b[k] != want[k])
            CHECK_EQ_U(b[k], want[k]);
    rig_close(&r);
    free(b);
    free(want);
}
