/* SPDX-License-Identifier: MIT */
/*
 * gdb_target.c - a driver stopped mid-run, for the gdb `dma` command's test (check.sh).
 *
 * It allocates common buffers on two adapters (one verified, one not), damages one guard
 * zone, frees one buffer into the quarantine, maps 8 KiB of its own memory to the device,
 * prints what the debugger must find, and calls
 * dmahal_gdb_stop() where the debugger stops it.
 */
#include <dmahal/dmahal.h>

#include <stdlib.h>
#include <unistd.h>

/* Where the debugger stops: not inlined, so that it has a breakpoint address of its own. */
__attribute__((noinline)) void dmahal_gdb_stop(void);
__attribute__((noinline)) void dmahal_gdb_stop(void)
{
    __asm__ volatile("" ::: "memory");
}

static void quiet(const struct dmahal_report *r, void *ctx)
{
    (void)r;
    (void)ctx;
}

int main(void)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *plain, *verified;
    struct dmahal_buf a, b, c, gone;
    struct dmahal_desc desc = {.addr_bits = 32, .alignment = 64};
    static unsigned char host[8192] __attribute__((aligned(4096)));
    struct iovec iov = {host, sizeof(host)};
    struct dmahal_sgl *sgl;

    if (dmahal_platform_open("sim:iommu=on", &p) || dmahal_device_open(p, "edu", &d) ||
        dmahal_adapter_get(d, NULL, &plain) || dmahal_common_alloc(plain, 100, 0, &a) ||
        dmahal_common_alloc(plain, 5000, 0, &b) ||
        dmahal_verify_enable(p, DMAHAL_VERIFY_COUNT, quiet, NULL) ||
        dmahal_adapter_get(d, &desc, &verified) || dmahal_common_alloc(verified, 64, 0, &c) ||
        dmahal_common_alloc(verified, 300, 0, &gone) ||
        dmahal_map(verified, &iov, 1, DMAHAL_TO_DEVICE, 0, &sgl))
        return 1;
    ((unsigned char *)c.va)[64 + 2] = 1; /* three bytes past the end */
    dmahal_common_free(verified, &gone);
    printf("plain %p id 1\n", (void *)plain);
    printf("buffer la 0x%012llx len 100\n", (unsigned long long)a.la);
    printf("buffer la 0x%012llx len 5000\n", (unsigned long long)b.la);
    printf("verified la 0x%012llx len 64\n", (unsigned long long)c.la);
    printf("quarantined la 0x%012llx len 300\n", (unsigned long long)gone.la);
    printf("mapped la 0x%012llx len %zu\n", (unsigned long long)sgl->seg[0].la, sgl->seg[0].len);
    fflush(stdout);
    dmahal_gdb_stop();
    /* For `dmahal dma --pid`: wait here, stopped in nothing, until killed. */
    if (getenv("DMAHAL_GDB_TARGET_WAIT")) {
        printf("waiting\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    dmahal_platform_close(p);
    return 0;
}
