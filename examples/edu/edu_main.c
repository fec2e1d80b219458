/* SPDX-License-Identifier: MIT */
/*
 * edu_main.c - drives an edu device: liveness, factorial, and DMA both ways through common
 * buffers, with the data checked. The same program runs on the simulated platform and on
 * the real device through VFIO:
 *
 *   edu_example [--poll | --irq[=intx|msi]] [--stream] [--hugepages] [--addr-bits=N]
 *               [PLATFORM [DEVICE]]
 *   edu_example sim edu                   the simulated edu model (the default)
 *   edu_example vfio 0000:00:03.0         QEMU's edu, bound to vfio-pci
 *   edu_example --irq=intx vfio 1234:11e8 the first edu, waiting for its INTx interrupts
 *   edu_example --stream --hugepages --addr-bits=64 noiommu 0000:00:04.0
 *                                         an edu with a 64-bit DMA mask, without an IOMMU
 *
 * --poll (the default) polls the status registers; --irq waits for the device's interrupts
 * (MSI unless =intx), acknowledging each as an interrupt handler does. --stream also moves
 * data by DMA straight from and into malloc'd memory (streaming maps: dmahal bounces what the
 * device cannot reach in place); --hugepages does the same with a hugepage of the program's
 * own (mmap MAP_HUGETLB), registered with dmahal_register, which the device reaches in place
 * where it fits the device. --addr-bits is the width the device drives (28 by default, QEMU's
 * dma_mask).
 *
 * Without arguments PLATFORM comes from $DMAHAL_PLATFORM (else "sim") and DEVICE from
 * $DMAHAL_EDU_DEVICE, else $DMAHAL_VM_EDU (set by the test guest), else "edu".
 * Exits 0 when every check passed.
 */
#include "edu_driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

static const char *pick(int argc, char **argv, int i, const char *env1, const char *env2,
                        const char *dflt)
{
    const char *v;

    if (argc > i)
        return argv[i];
    if (env1 && (v = getenv(env1)) && *v)
        return v;
    if (env2 && (v = getenv(env2)) && *v)
        return v;
    return dflt;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "edu_example: " __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                                       \
        rc = 1;                                                                                    \
        goto out;                                                                                  \
    } while (0)

/* DMA a pattern into the device buffer and back; checks every byte. */
static int round_trip(struct edu *e, uint32_t off, uint32_t len, unsigned seed)
{
    unsigned char *src = malloc(len), *back = malloc(len);
    int rc = -ENOMEM;

    if (!src || !back)
        goto out;
    for (uint32_t i = 0; i < len; i++)
        src[i] = (unsigned char)(i * 7 + seed);
    memset(back, 0, len);
    rc = edu_write(e, off, src, len);
    if (!rc)
        rc = edu_read(e, off, back, len);
    if (!rc && memcmp(src, back, len) != 0)
        rc = -EIO;
out:
    free(src);
    free(back);
    return rc;
}

/* How the adapter maps @mem: in place, or through bounce pages (a copy). */
static const char *placement(struct dmahal_adapter *a, void *mem, size_t len)
{
    struct dmahal_sgl *s;
    const char *where;

    if (dmahal_map(a, &(struct iovec){mem, len}, 1, DMAHAL_TO_DEVICE, 0, &s))
        return "not mappable";
    where = dmahal_adapter_map_registers_in_use(a) ? "bounced" : "in place";
    dmahal_unmap(a, s);
    return where;
}

/* A pattern by DMA straight from @src into the device, and back straight into @dst. */
static int stream_trip(struct edu *e, unsigned char *src, unsigned char *dst, uint32_t len,
                       unsigned seed)
{
    int rc;

    for (uint32_t i = 0; i < len; i++)
        src[i] = (unsigned char)(i * 13 + seed);
    memset(dst, 0, len);
    rc = edu_dma_mem(e, src, 0, len, false);
    if (!rc)
        rc = edu_dma_mem(e, dst, 0, len, true);
    if (!rc && memcmp(src, dst, len) != 0)
        rc = -EIO;
    return rc;
}

#define HUGE (2u << 20)

int main(int argc, char **argv)
{
    const char *spec, *name;
    struct dmahal_platform *p = NULL;
    struct dmahal_device *dev = NULL;
    struct edu *e = NULL;
    unsigned char *huge = MAP_FAILED, *src = NULL, *dst = NULL;
    bool stream = false, hugepages = false, registered = false;
    unsigned bits = EDU_DEFAULT_ADDR_BITS;
    uint32_t f;
    int rc = 0, err, irq = -1;

    while (argc > 1 && argv[1][0] == '-') {
        if (strcmp(argv[1], "--poll") == 0)
            irq = -1;
        else if (strcmp(argv[1], "--stream") == 0)
            stream = true;
        else if (strcmp(argv[1], "--hugepages") == 0)
            hugepages = true;
        else if (strncmp(argv[1], "--addr-bits=", 12) == 0)
            bits = (unsigned)strtoul(argv[1] + 12, NULL, 10);
        else if (strcmp(argv[1], "--irq") == 0 || strcmp(argv[1], "--irq=msi") == 0)
            irq = DMAHAL_IRQ_MSI;
        else if (strcmp(argv[1], "--irq=intx") == 0)
            irq = DMAHAL_IRQ_INTX;
        else
            argc = 99; /* usage */
        argv++;
        argc--;
    }
    if (argc > 3) {
        fprintf(stderr, "usage: edu_example [--poll | --irq[=intx|msi]] [--stream] [--hugepages] "
                        "[--addr-bits=N] [PLATFORM [DEVICE]]  e.g. sim edu, vfio 0000:00:03.0\n");
        return 2;
    }
    spec = pick(argc, argv, 1, "DMAHAL_PLATFORM", NULL, "sim");
    name = pick(argc, argv, 2, "DMAHAL_EDU_DEVICE", "DMAHAL_VM_EDU", "edu");
    if ((err = dmahal_platform_open(spec, &p)))
        FAIL("cannot open platform \"%s\": %s", spec, dmahal_strerror(err));
    if ((err = dmahal_device_open(p, name, &dev)))
        FAIL("cannot open device \"%s\": %s", name, dmahal_strerror(err));
    if ((err = edu_attach(dev, bits, &e)))
        FAIL("%s is not a working edu device: %s", name, dmahal_strerror(err));
    if (irq > 0 && (err = edu_irq_enable(e, (enum dmahal_irq_type)irq)))
        FAIL("cannot enable %s interrupts: %s", irq == DMAHAL_IRQ_INTX ? "INTx" : "MSI",
             dmahal_strerror(err));
    printf("completion: %s\n", irq == DMAHAL_IRQ_INTX  ? "INTx interrupt"
                               : irq == DMAHAL_IRQ_MSI ? "MSI interrupt"
                                                       : "polling");
    printf("edu %s on %s: version %u.%u\n", name, dmahal_platform_name(p), edu_version(e) >> 8,
           edu_version(e) & 0xff);

    if (edu_liveness(e, 0x12345678) || edu_liveness(e, 0))
        FAIL("liveness check failed");
    printf("liveness: ok\n");

    if ((err = edu_factorial(e, 10, &f)) || f != 3628800)
        FAIL("10! = %u (%s), expected 3628800", f, dmahal_strerror(err));
    if ((err = edu_factorial(e, 13, &f)) || f != 1932053504u) /* 13! mod 2^32 */
        FAIL("13! = %u (%s), expected 1932053504", f, dmahal_strerror(err));
    printf("factorial: 10! = 3628800, 13! mod 2^32 = 1932053504: ok\n");

    if ((err = round_trip(e, 0, EDU_DMA_LIMIT, 1)))
        FAIL("DMA round trip of the whole buffer: %s", dmahal_strerror(err));
    if ((err = round_trip(e, 100, 300, 2)))
        FAIL("DMA round trip at offset 100: %s", dmahal_strerror(err));
    printf("dma: 4095 and 300 bytes to the device and back through common buffers: ok\n");

    if (stream) {
        src = malloc(EDU_DMA_LIMIT);
        dst = malloc(EDU_DMA_LIMIT);
        if (!src || !dst)
            FAIL("out of memory");
        if ((err = stream_trip(e, src, dst, EDU_DMA_LIMIT, 3)))
            FAIL("DMA from and into malloc'd memory: %s", dmahal_strerror(err));
        printf("dma: 4095 bytes from and into malloc'd memory (%s): ok\n",
               placement(edu_adapter(e), src, EDU_DMA_LIMIT));
    }
    if (hugepages) {
        huge = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB,
                    -1, 0);
        if (huge == MAP_FAILED)
            FAIL("no hugepage: %s (echo 16 > /proc/sys/vm/nr_hugepages)", strerror(errno));
        if ((err = dmahal_register(edu_adapter(e), huge, HUGE)))
            FAIL("cannot register a hugepage: %s", dmahal_strerror(err));
        registered = true;
        if ((err = stream_trip(e, huge + 4096, huge + HUGE / 2, EDU_DMA_LIMIT, 4)))
            FAIL("DMA from and into a registered hugepage: %s", dmahal_strerror(err));
        printf("dma: 4095 bytes from and into a registered hugepage (%s): ok\n",
               placement(edu_adapter(e), huge + 4096, EDU_DMA_LIMIT));
    }

    if (edu_write(e, EDU_DMA_LIMIT - 8, "0123456789abcdef", 16) != -EINVAL)
        FAIL("a transfer past the device buffer was not refused");
    printf("edu_example: all checks passed\n");
out:
    if (registered && (err = dmahal_unregister(edu_adapter(e), huge, HUGE))) {
        fprintf(stderr, "edu_example: cannot unregister the hugepage: %s\n", dmahal_strerror(err));
        rc = 1;
    }
    if (huge != MAP_FAILED)
        munmap(huge, HUGE);
    free(src);
    free(dst);
    edu_detach(e);
    dmahal_device_close(dev);
    dmahal_platform_close(p);
    return rc;
}
