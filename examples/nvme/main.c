/* SPDX-License-Identifier: MIT */
/*
 * main.c - drives an NVMe controller through the example driver: identifies it, then writes
 * patterns and reads them back with transfers of one block, two pages (PRP2 as a data
 * pointer), 64 KiB and the largest the controller allows (PRP lists), checking every byte;
 * then does so with up to a queue's worth of 8 KiB transfers in flight at once (nvme_submit,
 * nvme_reap), every other one starting inside a page and so over three pages, each of those
 * with a PRP list page of its own.
 *
 *   nvme_example [--poll | --irq] [--stream] [--hugepages] [PLATFORM [DEVICE]]
 *   nvme_example vfio 0000:00:05.0        QEMU's nvme bound to vfio-pci
 *   nvme_example sim nvme                 the simulated platform's NVMe controller model
 *   nvme_example --stream --hugepages noiommu 0000:00:05.0   without an IOMMU
 *
 * Without arguments PLATFORM comes from $DMAHAL_PLATFORM (else "vfio") and DEVICE from
 * $DMAHAL_NVME_DEVICE, else $DMAHAL_VM_NVME (set by the test guest). The program overwrites
 * the first blocks of the namespace. --irq waits for the I/O queue's interrupt (MSI-X, else
 * INTx); --poll (the default) polls the completion queue. --stream repeats the transfers
 * straight from and into malloc'd memory (nvme_io_mem: streaming maps, which dmahal bounces
 * where the controller cannot reach the memory in place); --hugepages does so with a hugepage
 * of the program's own (mmap MAP_HUGETLB), registered with dmahal_register, which the
 * controller reaches in place (the queued transfers too, through nvme_submit_mem). Exits 0
 * when every check passed.
 */
#include "nvme_driver.h"

#include <errno.h>
#include <inttypes.h>
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

/* Writes @len bytes of a pattern at @lba from offset @off of @buf, reads them back into a
 * cleared buffer, and compares. */
static int round_trip(struct nvme *n, const struct nvme_info *info, struct dmahal_buf *buf,
                      size_t off, uint64_t lba, size_t len, unsigned seed)
{
    unsigned char *p = (unsigned char *)buf->va + off;
    unsigned char *want = malloc(len);
    uint32_t nblocks = (uint32_t)(len / info->lba_size);
    int rc = -ENOMEM;

    if (!want)
        return rc;
    for (size_t i = 0; i < len; i++)
        want[i] = (unsigned char)((i >> 9) * 31 + i * 7 + seed);
    memcpy(p, want, len);
    rc = nvme_io(n, NVME_CMD_WRITE, lba, nblocks, buf, off, NULL);
    if (rc)
        goto out;
    memset(p, 0, len);
    rc = nvme_io(n, NVME_CMD_READ, lba, nblocks, buf, off, NULL);
    if (rc)
        goto out;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != want[i]) {
            fprintf(stderr,
                    "nvme_example: byte %zu of %zu at lba %" PRIu64 " reads %#x, "
                    "wrote %#x\n",
                    i, len, lba, p[i], want[i]);
            rc = -EIO;
            goto out;
        }
    }
    printf("  %7zu bytes at lba %-6" PRIu64 " buffer offset %-5zu written, read back, equal\n", len,
           lba, off);
out:
    free(want);
    return rc;
}

/* As round_trip, straight from and into @mem (nvme_io_mem). */
static int round_trip_mem(struct nvme *n, const struct nvme_info *info, unsigned char *mem,
                          uint64_t lba, size_t len, unsigned seed)
{
    uint32_t nblocks = (uint32_t)(len / info->lba_size);
    int rc;

    for (size_t i = 0; i < len; i++)
        mem[i] = (unsigned char)((i >> 9) * 17 + i * 5 + seed);
    rc = nvme_io_mem(n, NVME_CMD_WRITE, lba, nblocks, mem, NULL);
    if (rc)
        return rc;
    memset(mem, 0, len);
    rc = nvme_io_mem(n, NVME_CMD_READ, lba, nblocks, mem, NULL);
    for (size_t i = 0; rc == 0 && i < len; i++) {
        if (mem[i] != (unsigned char)((i >> 9) * 17 + i * 5 + seed)) {
            fprintf(stderr, "nvme_example: byte %zu of %zu at lba %" PRIu64 " differs\n", i, len,
                    lba);
            rc = -EIO;
        }
    }
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

/* The transfers of main() straight from and into @mem: one block, two pages from an odd
 * offset, 64 KiB, and the largest. */
static int streams(struct nvme *n, const struct nvme_info *info, unsigned char *mem,
                   const char *what)
{
    int rc = round_trip_mem(n, info, mem, 2048, info->lba_size, 6);

    if (!rc)
        rc = round_trip_mem(n, info, mem + 512, 2056, 2 * NVME_PAGE_SIZE, 7);
    if (!rc)
        rc = round_trip_mem(n, info, mem, 2304, 64 * 1024, 8);
    if (!rc)
        rc = round_trip_mem(n, info, mem, 3072, info->max_transfer, 9);
    if (rc)
        fprintf(stderr, "nvme_example: I/O from and into %s failed: %s\n", what,
                dmahal_strerror(rc));
    else
        printf("  %s (%s): 1 block, 2 pages, 64 KiB, %zu KiB written, read back, equal\n", what,
               placement(nvme_adapter(n), mem, 64 * 1024), info->max_transfer >> 10);
    return rc;
}

#define QBLK 8192u

static unsigned char qpattern(size_t i, unsigned seed)
{
    return (unsigned char)((i >> 9) * 13 + i * 3 + seed);
}

/* Takes every command in flight back; -EIO unless each succeeded. */
static int reap_all(struct nvme *n)
{
    struct nvme_done done[16];
    int rc = 0;

    while (nvme_inflight(n)) {
        int got = nvme_reap(n, 1, done, 16);

        if (got < 0)
            return got;
        for (int i = 0; i < got; i++)
            if (done[i].rc)
                rc = done[i].rc;
    }
    return rc;
}

/*
 * Queued I/O: up to nvme_queue_depth() writes of QBLK bytes in flight at once (as many as
 * the memory holds), every other one starting 512 bytes into a page (three pages: PRP2 points
 * at the command's own PRP list), then as many reads back, checked. From and into @mem when not
 * NULL (nvme_submit_mem: each mapped while it is in flight), else from the common buffer @buf.
 */
static int queued(struct nvme *n, const struct nvme_info *info, const struct dmahal_buf *buf,
                  unsigned char *mem, const char *what)
{
    unsigned depth = nvme_queue_depth(n), count = depth;
    unsigned char *base = mem ? mem : buf->va;
    size_t room = mem ? info->max_transfer : buf->len, stride = QBLK + NVME_PAGE_SIZE;
    uint32_t nb = QBLK / info->lba_size;
    int rc = 0;

    if ((size_t)count * stride > room)
        count = (unsigned)(room / stride);
    for (int pass = 0; pass < 2 && !rc; pass++) {
        enum nvme_opcode op = pass ? NVME_CMD_READ : NVME_CMD_WRITE;

        for (unsigned i = 0; i < count && !rc; i++) {
            size_t off = (size_t)i * stride + (i & 1 ? 512 : 0);
            uint64_t lba = 4096 + (uint64_t)i * nb;

            if (!pass)
                for (size_t k = 0; k < QBLK; k++)
                    base[off + k] = qpattern(k, i);
            else
                memset(base + off, 0, QBLK);
            rc = mem ? nvme_submit_mem(n, op, lba, nb, base + off, i)
                     : nvme_submit(n, op, lba, nb, buf, off, i);
        }
        if (!rc)
            rc = reap_all(n);
        else
            reap_all(n);
    }
    for (unsigned i = 0; i < count && !rc; i++) {
        size_t off = (size_t)i * stride + (i & 1 ? 512 : 0);

        for (size_t k = 0; k < QBLK && !rc; k++) {
            if (base[off + k] != qpattern(k, i)) {
                fprintf(stderr, "nvme_example: queued transfer %u: byte %zu reads %#x\n", i, k,
                        base[off + k]);
                rc = -EIO;
            }
        }
    }
    if (rc)
        fprintf(stderr, "nvme_example: queued I/O with %s failed: %s\n", what, dmahal_strerror(rc));
    else
        printf("  %u transfers of %u bytes in flight at once (%s): written, read back, equal\n",
               count, QBLK, what);
    return rc;
}

#define HUGE (2u << 20)

int main(int argc, char **argv)
{
    const char *spec, *name;
    struct dmahal_platform *p = NULL;
    struct dmahal_device *dev = NULL;
    struct dmahal_buf buf = {0};
    struct nvme_info info;
    struct nvme *n = NULL;
    unsigned char *heap = NULL, *huge = MAP_FAILED;
    bool stream = false, hugepages = false, registered = false;
    unsigned flags = 0;
    int rc;

    for (; argc > 1 && argv[1][0] == '-'; argv++, argc--) {
        if (strcmp(argv[1], "--irq") == 0)
            flags = NVME_OPEN_IRQ;
        else if (strcmp(argv[1], "--stream") == 0)
            stream = true;
        else if (strcmp(argv[1], "--hugepages") == 0)
            hugepages = true;
        else if (strcmp(argv[1], "--poll") == 0)
            flags = 0;
        else
            argc = 99;
    }
    if (argc > 3) {
        fprintf(stderr, "usage: nvme_example [--poll | --irq] [--stream] [--hugepages] "
                        "[PLATFORM [DEVICE]]  e.g. vfio 0000:00:05.0\n");
        return 2;
    }
    spec = pick(argc, argv, 1, "DMAHAL_PLATFORM", NULL, "vfio");
    name = pick(argc, argv, 2, "DMAHAL_NVME_DEVICE", "DMAHAL_VM_NVME", NULL);
    if (!name) {
        fprintf(stderr, "nvme_example: no device: give one, or set DMAHAL_NVME_DEVICE\n");
        return 2;
    }
    rc = dmahal_platform_open(spec, &p);
    if (!rc)
        rc = dmahal_device_open(p, name, &dev);
    if (!rc)
        rc = nvme_open_flags(dev, flags, &n);
    if (!rc)
        rc = nvme_identify(n, &info);
    if (rc) {
        fprintf(stderr, "nvme_example: cannot bring up %s on %s: %s\n", name, spec,
                dmahal_strerror(rc));
        goto out;
    }
    printf("%s on %s: model \"%s\", serial \"%s\", firmware \"%s\", NVMe %u.%u\n", name, spec,
           info.model, info.serial, info.firmware, info.version >> 16, (info.version >> 8) & 0xff);
    printf("  I/O completions: %s\n", nvme_irq_type(n) == DMAHAL_IRQ_MSIX   ? "MSI-X interrupt"
                                      : nvme_irq_type(n) == DMAHAL_IRQ_INTX ? "INTx interrupt"
                                                                            : "polled");
    printf("  namespace %" PRIu32 ": %" PRIu64 " blocks of %" PRIu32 " bytes (%" PRIu64
           " MiB); transfers up to %zu KiB; I/O queues of %u; doorbell stride %u\n",
           info.nsid, info.nsze, info.lba_size, info.nsze * info.lba_size >> 20,
           info.max_transfer >> 10, info.io_depth, info.db_stride);

    rc = dmahal_common_alloc(nvme_adapter(n), info.max_transfer + NVME_PAGE_SIZE, 0, &buf);
    if (rc) {
        fprintf(stderr, "nvme_example: no data buffer: %s\n", dmahal_strerror(rc));
        goto out;
    }
    rc = round_trip(n, &info, &buf, 0, 0, info.lba_size, 1);
    if (!rc)
        rc = round_trip(n, &info, &buf, 0, 8, 2 * NVME_PAGE_SIZE, 2);
    if (!rc) /* starts mid-page: three pages, PRP2 points at a list */
        rc = round_trip(n, &info, &buf, 512, 64, 2 * NVME_PAGE_SIZE, 3);
    if (!rc)
        rc = round_trip(n, &info, &buf, 0, 256, 64 * 1024, 4);
    if (!rc)
        rc = round_trip(n, &info, &buf, 0, 1024, info.max_transfer, 5);
    if (rc)
        fprintf(stderr, "nvme_example: I/O failed: %s\n", dmahal_strerror(rc));
    if (!rc)
        rc = queued(n, &info, &buf, NULL, "a common buffer");
    if (!rc && stream) {
        heap = malloc(info.max_transfer + NVME_PAGE_SIZE);
        rc = heap ? streams(n, &info, heap, "malloc'd memory") : -ENOMEM;
        if (!rc)
            rc = queued(n, &info, NULL, heap, "malloc'd memory");
    }
    if (!rc && hugepages) {
        huge = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB,
                    -1, 0);
        if (huge == MAP_FAILED || info.max_transfer + NVME_PAGE_SIZE > HUGE) {
            fprintf(stderr, "nvme_example: no hugepage (echo 16 > /proc/sys/vm/nr_hugepages)\n");
            rc = -ENOMEM;
        } else if ((rc = dmahal_register(nvme_adapter(n), huge, HUGE))) {
            fprintf(stderr, "nvme_example: cannot register a hugepage: %s\n", dmahal_strerror(rc));
        } else {
            registered = true;
            rc = streams(n, &info, huge, "a registered hugepage");
            if (!rc)
                rc = queued(n, &info, NULL, huge, "a registered hugepage");
        }
    }
out:
    if (registered && dmahal_unregister(nvme_adapter(n), huge, HUGE)) {
        fprintf(stderr, "nvme_example: cannot unregister the hugepage\n");
        rc = -EIO;
    }
    if (huge != MAP_FAILED)
        munmap(huge, HUGE);
    free(heap);
    if (buf.va)
        dmahal_common_free(nvme_adapter(n), &buf);
    nvme_close(n);
    dmahal_device_close(dev);
    dmahal_platform_close(p);
    if (!rc)
        printf("nvme_example: all checks passed\n");
    return rc ? 1 : 0;
}
