/* SPDX-License-Identifier: MIT */
/*
 * bench_nvme_vm.c - the example NVMe driver (examples/nvme, through dmahal's vfio platform)
 * against the guest kernel's own nvme driver, on the same QEMU nvme controller in the same
 * boot: 4 KiB random reads at queue depth 1, and at queue depth 32, over the same blocks, in
 * the test guest (tests/vm/run.sh runs it like a test).
 *
 * Contestants:
 *   kernel irq      pread() of /dev/nvmeXn1 opened O_DIRECT: a system call, the block layer,
 *                   the nvme driver, and an MSI-X interrupt that wakes the reader;
 *   kernel hipri    preadv2(RWF_HIPRI), the module loaded with a poll queue (poll_queues=1):
 *                   whether the kernel polls for it shows in the interrupts per read;
 *   kernel iopoll   io_uring with IORING_SETUP_IOPOLL, one read per io_uring_enter(): the
 *                   kernel spins on the poll queue's completions, no interrupt;
 *   kernel uring32  io_uring at queue depth 32 (O_DIRECT reads, 32 in flight, completions
 *                   on the queue's interrupt): what the kernel offers for depth;
 *   kernel iopoll32 the same with IORING_SETUP_IOPOLL: the kernel polls the poll queue;
 *   dmahal poll     nvme_io() on a common buffer, completions polled in user space (the
 *                   clock read ever less often, yields then short sleeps once a command is
 *                   late);
 *   dmahal spin     the same with NVME_OPEN_SPIN: no sleeps, the clock read every
 *                   NVME_SPIN_CLOCK looks (the guest's clock is an emulated HPET: a trap);
 *   dmahal msix     the same with NVME_OPEN_IRQ: dmahal_irq_wait() on the I/O queue's vector,
 *                   whose guest interrupt lands where the kernel put it;
 *   dmahal msix local  the same with the reader pinned to its CPU and the vector's interrupt
 *                   sent there (/proc/irq/N/smp_affinity_list), as the kernel's nvme driver
 *                   places each queue's vector on the CPUs that submit to it;
 *   dmahal poll32   the example driver's queued calls at depth 32 (nvme_submit into 32 blocks
 *                   of a common buffer, nvme_reap polling), completions checked as they come.
 * The device starts bound to vfio-pci. The program writes a pattern over the range with the
 * example driver first, so that every read returns data it checks (a tag at both ends of each
 * block; the whole block on the warm-up reads), then runs rounds. A round runs the kernel's
 * contestants with the device bound to nvme and the example driver's with it bound to
 * vfio-pci, the two halves in alternating order (kernel, dmahal | dmahal, kernel | ...), and
 * the contestants within each half too; every contestant of a round reads the same random
 * blocks. The kernel's half binds the device to nvme and gives it back to vfio-pci.
 * Figures are medians over rounds, ratios medians of per-round ratios. Under TCG the absolute
 * figures are emulated time on a shared machine: read the ratios.
 *
 *   bench_nvme_vm [--quick] [--reps N]
 * The device comes from $DMAHAL_VM_NVME, the kernel's modules from $DMAHAL_VM_MODULES
 * (modules.extra beside it lists them in load order; run.sh puts them there). The program
 * leaves the device bound to vfio-pci and unloads the modules it loaded. Exits 0 when every
 * figure was measured and every read returned the block's data.
 */
#include "harness.h"
#include "nvme/nvme_driver.h"

#include <dmahal/dmahal.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS   1000
#define BLOCK      4096u
#define RANGE      (16u << 20) /* the blocks read: the first 16 MiB of namespace 1 */
#define NBLOCKS    (RANGE / BLOCK)
#define FILL_CHUNK (128u << 10)
#define WARMUP     16u /* reads per sample checked whole, not timed */
#define BIND_MS    60000u

enum contestant {
    K_IRQ,
    K_HIPRI,
    K_IOPOLL,
    K_URING32,
    K_IOPOLL32,
    D_POLL,
    D_SPIN,
    D_MSIX,
    D_MSIX_LOCAL,
    D_POLL32,
    NCONT
};

#define NKERNEL 5   /* the kernel's: the first five */
#define NDMAHAL 5   /* dmahal's: the last five */
#define QD      32u /* the depth of the *32 contestants */

static const char *const cont_name[NCONT] = {
    "kernel irq",  "kernel hipri", "kernel iopoll", "kernel uring32",    "kernel iopoll32",
    "dmahal poll", "dmahal spin",  "dmahal msix",   "dmahal msix local", "dmahal poll32"};

static const char usage[] =
    "usage: bench_nvme_vm [--quick] [--reps N] [--only KEY[,KEY...]]\n"
    "  in the test guest: 4 KiB random reads at QD 1 and 32, the example NVMe\n"
    "  driver on vfio against the kernel's nvme driver\n"
    "  --only runs those contestants alone (e.g. to profile one): irq, hipri, iopoll,\n"
    "         uring32, iopoll32, poll, spin, msix, msix-local, poll32\n";

/* --only's names of the contestants, in enum order. */
static const char *const cont_key[] = {"irq",  "hipri", "iopoll", "uring32",    "iopoll32",
                                       "poll", "spin",  "msix",   "msix-local", "poll32"};
static unsigned want = (1u << NCONT) - 1; /* the contestants to run */

struct result {
    double iops[MAX_REPS];
    double irqs[MAX_REPS]; /* interrupts per read */
    bool ran;
};

static struct result res[NCONT];
static const char *addr;
static unsigned ios;
static bool polls = true; /* the kernel's namespace queue has a poll queue */

static uint64_t pattern(uint64_t blk, unsigned word)
{
    return ((blk << 16 | word) + 1) * 0x9e3779b97f4a7c15ull ^ 0xd1b54a32d192ed03ull;
}

static void fill_block(uint64_t *w, uint64_t blk)
{
    for (unsigned i = 0; i < BLOCK / 8; i++)
        w[i] = pattern(blk, i);
}

/* The tags at both ends of the block (every read), or every word (@whole). */
static int check_block(const uint64_t *w, uint64_t blk, bool whole)
{
    for (unsigned i = 0; i < BLOCK / 8; i += whole ? 1 : BLOCK / 8 - 1)
        if (w[i] != pattern(blk, i)) {
            fprintf(stderr, "bench_nvme_vm: block %llu word %u reads %#llx, wrote %#llx\n",
                    (unsigned long long)blk, i, (unsigned long long)w[i],
                    (unsigned long long)pattern(blk, i));
            return -EIO;
        }
    return 0;
}

/* The round's random blocks: the same sequence for every contestant of the round. */
static uint64_t next_block(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x % NBLOCKS;
}

/* ---- sysfs, modules and interrupts ---------------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        err = -errno;
    if (fd >= 0)
        close(fd);
    if (err)
        fprintf(stderr, "bench_nvme_vm: write \"%s\" to %s: %s\n", text, path, strerror(-err));
    return err;
}

/* The name of the driver the device is bound to, "" for none. */
static void driver_of(char *out, size_t len)
{
    char link[256], path[128];
    ssize_t n;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", addr);
    n = readlink(path, link, sizeof(link) - 1);
    out[0] = '\0';
    if (n > 0) {
        link[n] = '\0';
        snprintf(out, len, "%.63s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
    }
}

/* Moves the device to @drv: the override set, unbound from its driver, probed again. */
static int rebind(const char *drv)
{
    char path[128], cur[64];
    int err;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", addr);
    err = write_file(path, drv);
    driver_of(cur, sizeof(cur));
    if (!err && cur[0]) {
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", addr);
        err = write_file(path, addr);
    }
    if (!err)
        err = write_file("/sys/bus/pci/drivers_probe", addr);
    driver_of(cur, sizeof(cur));
    if (!err && strcmp(cur, drv) != 0) {
        fprintf(stderr, "bench_nvme_vm: %s did not bind to %s (driver: %s)\n", addr, drv,
                cur[0] ? cur : "none");
        err = -ENODEV;
    }
    return err;
}

static bool module_loaded(const char *m)
{
    char line[256];
    size_t len = strlen(m);
    FILE *f = fopen("/proc/modules", "r");
    bool found = false;

    while (f && !found && fgets(line, sizeof(line), f))
        found = strncmp(line, m, len) == 0 && line[len] == ' ';
    if (f)
        fclose(f);
    return found;
}

#define MAX_MODS 16
static char mods[MAX_MODS][64];
static bool loaded[MAX_MODS]; /* by this program, so to be unloaded by it */
static unsigned nmods;

/* Loads the modules of modules.extra in their order; nvme with a poll queue. */
static int modules_load(void)
{
    const char *dir = getenv("DMAHAL_VM_MODULES");
    char path[256], cmd[512];
    FILE *f;

    if (!dir || !*dir) {
        fprintf(stderr, "bench_nvme_vm: DMAHAL_VM_MODULES is not set: run this program through "
                        "tests/vm/run.sh\n");
        return -EINVAL;
    }
    snprintf(path, sizeof(path), "%s/../modules.extra", dir);
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_nvme_vm: %s: %s (run.sh copies the kernel's nvme modules)\n", path,
                strerror(errno));
        return -ENOENT;
    }
    while (nmods < MAX_MODS && fscanf(f, "%63s", mods[nmods]) == 1)
        nmods++;
    fclose(f);
    for (unsigned i = 0; i < nmods; i++) {
        const char *m = mods[i];

        if (module_loaded(m))
            continue;
        snprintf(cmd, sizeof(cmd), "insmod %s/%s.ko%s", dir, m,
                 strcmp(m, "nvme") == 0 ? " poll_queues=1" : "");
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_nvme_vm: %s failed\n", cmd);
            return -EIO;
        }
        loaded[i] = true;
    }
    return 0;
}

/* Unloads what modules_load() loaded, in reverse order. */
static void modules_unload(void)
{
    char cmd[128];

    for (unsigned i = nmods; i-- > 0;) {
        if (!loaded[i])
            continue;
        snprintf(cmd, sizeof(cmd), "rmmod %s", mods[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_nvme_vm: %s failed\n", cmd);
    }
}

/* Interrupts delivered so far on the lines whose name contains @a and @b. */
static uint64_t irq_count(const char *a, const char *b)
{
    static char line[4096];
    FILE *f = fopen("/proc/interrupts", "r");
    uint64_t total = 0;

    while (f && fgets(line, sizeof(line), f)) {
        char *p = strchr(line, ':'), *end;

        if (!p || !strstr(line, a) || (b && !strstr(line, b)))
            continue;
        for (p++;; p = end) {
            unsigned long long v = strtoull(p, &end, 10);

            if (end == p)
                break;
            total += v;
        }
    }
    if (f)
        fclose(f);
    return total;
}

/* ---- the kernel's driver -------------------------------------------------------------------- */

/* The namespace's block device once the kernel's driver has probed the controller: the
 * controller's name from the device's nvme/ directory, then /dev/<name>n1 opened O_DIRECT. */
static int kernel_open(char *name, size_t len)
{
    char path[128];
    uint64_t t0 = bench_now_ns();

    for (;;) {
        DIR *d;
        struct dirent *e;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvme", addr);
        d = opendir(path);
        while (d && (e = readdir(d)))
            if (strncmp(e->d_name, "nvme", 4) == 0) {
                int fd;

                snprintf(name, len, "%.48sn1", e->d_name);
                snprintf(path, sizeof(path), "/dev/%s", name);
                fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
                if (fd >= 0) {
                    closedir(d);
                    return fd;
                }
            }
        if (d)
            closedir(d);
        if (bench_now_ns() - t0 > (uint64_t)BIND_MS * 1000000u) {
            fprintf(stderr, "bench_nvme_vm: no namespace block device for %s within %u s\n", addr,
                    BIND_MS / 1000);
            return -ETIMEDOUT;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
}

/* Whether the namespace's queue polls (the module's poll queue came up). */
static bool kernel_polls(const char *name)
{
    char path[128], v[8] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/sys/block/%s/queue/io_poll", name);
    f = fopen(path, "r");
    if (f && !fgets(v, sizeof(v), f))
        v[0] = '\0';
    if (f)
        fclose(f);
    return v[0] == '1';
}

/* An io_uring, driven with raw system calls (no liburing in the guest). */
struct ring {
    int fd;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len, sqes_len;
    struct io_uring_sqe *sqes;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
};

static void ring_close(struct ring *r)
{
    if (r->sqes)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_map && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_len);
    if (r->sq_map)
        munmap(r->sq_map, r->sq_len);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

static void *ring_map(int fd, size_t len, off_t off)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off);

    return p == MAP_FAILED ? NULL : p;
}

/* A ring of @entries, polled by the kernel (@iopoll) or completed by interrupts. */
static int ring_open(struct ring *r, unsigned entries, bool iopoll)
{
    struct io_uring_params par = {.flags = iopoll ? IORING_SETUP_IOPOLL : 0};
    char *sq, *cq;

    memset(r, 0, sizeof(*r));
    r->fd = (int)syscall(__NR_io_uring_setup, entries, &par);
    if (r->fd < 0) {
        fprintf(stderr, "bench_nvme_vm: io_uring_setup(%u%s): %s\n", entries,
                iopoll ? ", IOPOLL" : "", strerror(errno));
        return -errno;
    }
    r->sq_len = par.sq_off.array + par.sq_entries * sizeof(unsigned);
    r->cq_len = par.cq_off.cqes + par.cq_entries * sizeof(struct io_uring_cqe);
    if (par.features & IORING_FEAT_SINGLE_MMAP && r->cq_len > r->sq_len)
        r->sq_len = r->cq_len;
    r->sq_map = ring_map(r->fd, r->sq_len, IORING_OFF_SQ_RING);
    r->cq_map = par.features & IORING_FEAT_SINGLE_MMAP
                    ? r->sq_map
                    : ring_map(r->fd, r->cq_len, IORING_OFF_CQ_RING);
    r->sqes_len = par.sq_entries * sizeof(*r->sqes);
    r->sqes = ring_map(r->fd, r->sqes_len, IORING_OFF_SQES);
    if (!r->sq_map || !r->cq_map || !r->sqes) {
        fprintf(stderr, "bench_nvme_vm: mapping the io_uring: %s\n", strerror(errno));
        ring_close(r);
        return -ENOMEM;
    }
    sq = r->sq_map;
    cq = r->cq_map;
    r->sq_tail = (unsigned *)(sq + par.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + par.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + par.sq_off.array);
    r->cq_head = (unsigned *)(cq + par.cq_off.head);
    r->cq_tail = (unsigned *)(cq + par.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + par.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + par.cq_off.cqes);
    return 0;
}

/* One read through the ring, waited for by the kernel's polling: bytes read or -errno. */
static ssize_t ring_read(struct ring *r, int fd, void *buf, off_t off)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
    uint64_t t0 = bench_now_ns();
    struct io_uring_sqe *e = &r->sqes[idx];
    int done;

    memset(e, 0, sizeof(*e));
    e->opcode = IORING_OP_READ;
    e->fd = fd;
    e->addr = (uintptr_t)buf;
    e->len = BLOCK;
    e->off = (uint64_t)off;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    /* The first call submits and polls; polling may stop before the completion (the task
     * had to reschedule), and then the next call polls on. */
    for (unsigned submit = 1;; submit = 0) {
        if (!submit && bench_now_ns() - t0 > 10000000000ull)
            return -ETIMEDOUT;
        if (syscall(__NR_io_uring_enter, r->fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0 &&
            errno != EINTR && errno != EAGAIN)
            return -errno;
        head = *r->cq_head;
        if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
            break;
    }
    done = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return done;
}

/* @n reads at depth QD through the ring into QD blocks of @bufs, the blocks from @x, each
 * checked as it completes (whole when @whole): 0 or -errno. */
static int ring_qd(struct ring *r, int fd, unsigned char *bufs, uint64_t *x, unsigned n, bool whole)
{
    uint64_t blk_of[QD], t0 = bench_now_ns();
    unsigned free_slot[QD], nfree = 0, sent = 0, got = 0, unsubmitted = 0;

    for (unsigned i = QD; i-- > 0;)
        free_slot[nfree++] = i;
    while (got < n) {
        unsigned head;
        long rc;

        while (sent < n && nfree) {
            unsigned slot = free_slot[--nfree], tail = *r->sq_tail, idx = tail & *r->sq_mask;
            struct io_uring_sqe *e = &r->sqes[idx];

            blk_of[slot] = next_block(x);
            memset(e, 0, sizeof(*e));
            e->opcode = IORING_OP_READ;
            e->fd = fd;
            e->addr = (uintptr_t)(bufs + (size_t)slot * BLOCK);
            e->len = BLOCK;
            e->off = blk_of[slot] * BLOCK;
            e->user_data = slot;
            r->sq_array[idx] = idx;
            __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
            sent++;
            unsubmitted++;
        }
        rc = syscall(__NR_io_uring_enter, r->fd, unsubmitted, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        if (rc < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
            return -errno;
        if (rc > 0)
            unsubmitted -= (unsigned)rc;
        for (head = *r->cq_head; head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE); head++) {
            const struct io_uring_cqe *e = &r->cqes[head & *r->cq_mask];
            unsigned slot = (unsigned)e->user_data;

            if (e->res != (int)BLOCK || slot >= QD) {
                fprintf(stderr, "bench_nvme_vm: ring read: %s\n",
                        e->res < 0 ? strerror(-e->res) : "short read");
                return -EIO;
            }
            if (check_block((const uint64_t *)(bufs + (size_t)slot * BLOCK), blk_of[slot], whole))
                return -EIO;
            free_slot[nfree++] = slot;
            got++;
        }
        __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
        if (bench_now_ns() - t0 > 10000000000ull * (1 + n / 1000))
            return -ETIMEDOUT;
    }
    return 0;
}

static ssize_t kernel_read(enum contestant c, int fd, struct ring *r, void *buf, uint64_t blk)
{
    struct iovec iov = {buf, BLOCK};
    ssize_t n;

    switch (c) {
    case K_HIPRI:
        n = preadv2(fd, &iov, 1, (off_t)(blk * BLOCK), RWF_HIPRI);
        break;
    case K_IOPOLL:
        return ring_read(r, fd, buf, (off_t)(blk * BLOCK));
    default:
        n = pread(fd, buf, BLOCK, (off_t)(blk * BLOCK));
        break;
    }
    return n < 0 ? -errno : n;
}

/* K_URING32 and K_IOPOLL32: a ring of their own, QD blocks of buffer. */
static int kernel_sample_qd(int fd, enum contestant c, unsigned round)
{
    uint64_t x = 0x2545f4914f6cdd1dull + round, t0, i0;
    unsigned char *bufs = aligned_alloc(BLOCK, (size_t)QD * BLOCK);
    struct ring r = {.fd = -1};
    int err = bufs ? ring_open(&r, QD, c == K_IOPOLL32) : -ENOMEM;

    if (!err)
        err = ring_qd(&r, fd, bufs, &x, WARMUP, true);
    i0 = irq_count("nvme", NULL);
    t0 = bench_now_ns();
    if (!err)
        err = ring_qd(&r, fd, bufs, &x, ios, false);
    if (!err) {
        res[c].iops[round] = ios / ((double)(bench_now_ns() - t0) / 1e9);
        res[c].irqs[round] = (double)(irq_count("nvme", NULL) - i0) / ios;
        res[c].ran = true;
    } else {
        fprintf(stderr, "bench_nvme_vm: %s: %s\n", cont_name[c], strerror(-err));
    }
    ring_close(&r);
    free(bufs);
    return err;
}

static int kernel_sample(int fd, struct ring *r, enum contestant c, unsigned round, void *buf)
{
    uint64_t x = 0x2545f4914f6cdd1dull + round, t0 = 0, i0 = 0;

    if (c == K_URING32 || c == K_IOPOLL32)
        return kernel_sample_qd(fd, c, round);
    for (unsigned i = 0; i < WARMUP + ios; i++) {
        uint64_t blk = next_block(&x);
        ssize_t n;

        if (i == WARMUP) {
            i0 = irq_count("nvme", NULL);
            t0 = bench_now_ns();
        }
        n = kernel_read(c, fd, r, buf, blk);
        if (n != BLOCK) {
            fprintf(stderr, "bench_nvme_vm: %s of block %llu: %s\n", cont_name[c],
                    (unsigned long long)blk, n < 0 ? strerror((int)-n) : "short read");
            return -EIO;
        }
        if (check_block(buf, blk, i < WARMUP))
            return -EIO;
    }
    res[c].iops[round] = ios / ((double)(bench_now_ns() - t0) / 1e9);
    res[c].irqs[round] = (double)(irq_count("nvme", NULL) - i0) / ios;
    res[c].ran = true;
    return 0;
}

static int kernel_half(unsigned round)
{
    struct ring r = {.fd = -1};
    char name[64];
    void *buf = NULL;
    int fd = -1, err = rebind("nvme");

    if (!err && (fd = kernel_open(name, sizeof(name))) < 0)
        err = fd;
    if (!err && !(buf = aligned_alloc(BLOCK, BLOCK)))
        err = -ENOMEM;
    if (!err && round == 0) {
        polls = kernel_polls(name);
        printf("kernel: /dev/%s, queue io_poll %d%s\n", name, polls,
               polls ? "" : " (no poll queue: hipri, iopoll and iopoll32 not run)");
    }
    if (!err && polls)
        err = ring_open(&r, 1, true);
    for (unsigned k = 0; k < NKERNEL && !err; k++) {
        enum contestant c = (enum contestant)((round + k) % NKERNEL);

        if ((c == K_IRQ || c == K_URING32 || polls) && want & 1u << c)
            err = kernel_sample(fd, &r, c, round, buf);
    }
    ring_close(&r);
    free(buf);
    if (fd >= 0)
        close(fd);
    /* Back to vfio-pci whatever happened: the guest's other programs expect it there. */
    return rebind("vfio-pci") ? -ENODEV : err;
}

/* ---- the example driver on vfio ------------------------------------------------------------- */

struct dside {
    struct dmahal_platform *p;
    struct dmahal_device *dev;
};

static int dside_open(struct dside *s)
{
    int err = dmahal_platform_open("vfio", &s->p);

    if (!err)
        err = dmahal_device_open(s->p, addr, &s->dev);
    if (err)
        fprintf(stderr, "bench_nvme_vm: cannot open %s on vfio: %s\n", addr, dmahal_strerror(err));
    return err;
}

static void dside_close(struct dside *s)
{
    dmahal_device_close(s->dev);
    dmahal_platform_close(s->p);
    s->dev = NULL;
    s->p = NULL;
}

/* Whether the process has a VFIO device region mapped: BAR0's doorbells are then stores, not
 * pwrite() calls. */
static bool bar_mapped(void)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    bool found = false;

    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, "vfio-device") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Writes the pattern over the range, @FILL_CHUNK at a time. */
static int dmahal_fill(struct dside *s)
{
    struct nvme *n = NULL;
    struct nvme_info info;
    struct dmahal_buf b = {0};
    size_t chunk = FILL_CHUNK;
    int err = nvme_open(s->dev, &n);

    if (!err)
        err = nvme_identify(n, &info);
    if (!err && (info.nsze * info.lba_size < RANGE || BLOCK % info.lba_size)) {
        fprintf(stderr,
                "bench_nvme_vm: namespace 1 has %llu blocks of %u bytes; %u MiB of "
                "4 KiB-divisible blocks needed\n",
                (unsigned long long)info.nsze, info.lba_size, RANGE >> 20);
        err = -ENOSPC;
    }
    if (!err) {
        printf("device: %s \"%s\" fw %s, %llu blocks of %u bytes, max transfer %zu, I/O queue "
               "depth %u\n",
               addr, info.model, info.firmware, (unsigned long long)info.nsze, info.lba_size,
               info.max_transfer, info.io_depth);
        printf("dmahal: BAR0 %s\n", bar_mapped() ? "mapped (doorbells are stores)"
                                                 : "not mapped (doorbells are pwrite calls)");
        if (chunk > info.max_transfer)
            chunk = info.max_transfer;
        err = dmahal_common_alloc(nvme_adapter(n), chunk, 0, &b);
    }
    for (size_t off = 0; !err && off < RANGE; off += chunk) {
        for (size_t k = 0; k < chunk; k += BLOCK)
            fill_block((uint64_t *)((char *)b.va + k), (off + k) / BLOCK);
        err = nvme_io(n, NVME_CMD_WRITE, off / info.lba_size, (uint32_t)(chunk / info.lba_size), &b,
                      0, NULL);
    }
    if (b.va)
        dmahal_common_free(nvme_adapter(n), &b);
    nvme_close(n);
    if (err)
        fprintf(stderr, "bench_nvme_vm: writing the pattern: %s\n", dmahal_strerror(err));
    return err;
}

/* The guest's interrupt number of the I/O queue's vector (vfio-msix[1]), or -1. */
static int vector_irq(void)
{
    static char line[4096];
    FILE *f = fopen("/proc/interrupts", "r");
    int irq = -1;

    while (f && irq < 0 && fgets(line, sizeof(line), f))
        if (strstr(line, "vfio-msix[1]") && strstr(line, addr))
            irq = atoi(line);
    if (f)
        fclose(f);
    return irq;
}

/* Reads /proc/irq/IRQ/NAME into @out ("?" if it cannot). */
static void irq_file(int irq, const char *name, char *out, size_t len)
{
    char path[96];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/irq/%d/%s", irq, name);
    f = fopen(path, "r");
    if (!f || !fgets(out, (int)len, f))
        snprintf(out, len, "?");
    out[strcspn(out, "\n")] = '\0';
    if (f)
        fclose(f);
}

/* D_MSIX_LOCAL: pins the reader to the CPU it runs on and sends the vector's interrupt there;
 * D_MSIX: reports where it lands. Once per contestant, in the first round. */
static int place_vector(enum contestant c, unsigned round, cpu_set_t *saved)
{
    int irq = vector_irq(), cpu = sched_getcpu();
    char path[96], v[64];
    cpu_set_t one;

    if (irq < 0) {
        fprintf(stderr, "bench_nvme_vm: no vfio-msix[1] line for %s in /proc/interrupts\n", addr);
        return -ENOENT;
    }
    if (c == D_MSIX_LOCAL) {
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        snprintf(v, sizeof(v), "%d", cpu);
        snprintf(path, sizeof(path), "/proc/irq/%d/smp_affinity_list", irq);
        if (sched_getaffinity(0, sizeof(*saved), saved) || sched_setaffinity(0, sizeof(one), &one))
            return -errno;
        if (write_file(path, v))
            return -EIO;
    }
    if (round == 0) {
        irq_file(irq, "effective_affinity_list", v, sizeof(v));
        printf("%s: reader on CPU %d, I/O queue vector is irq %d on CPU %s\n", cont_name[c], cpu,
               irq, v);
    }
    return 0;
}

/* @n reads at depth QD through the example driver's queued calls into QD blocks of @b, the
 * blocks from @x, each checked as it completes (whole when @whole). */
static int dmahal_qd(struct nvme *n, const struct dmahal_buf *b, uint32_t per, uint64_t *x,
                     unsigned count, bool whole)
{
    uint64_t blk_of[QD];
    unsigned free_slot[QD], nfree = 0, sent = 0, got = 0;
    struct nvme_done done[QD];

    for (unsigned i = QD; i-- > 0;)
        free_slot[nfree++] = i;
    while (got < count) {
        int k, err;

        while (sent < count && nfree) {
            unsigned slot = free_slot[--nfree];

            blk_of[slot] = next_block(x);
            err = nvme_submit(n, NVME_CMD_READ, blk_of[slot] * per, per, b, (size_t)slot * BLOCK,
                              slot);
            if (err)
                return err;
            sent++;
        }
        k = nvme_reap(n, 1, done, QD);
        if (k < 0)
            return k;
        for (int i = 0; i < k; i++) {
            unsigned slot = (unsigned)done[i].tag;

            if (done[i].rc)
                return done[i].rc;
            err = check_block((const uint64_t *)((char *)b->va + (size_t)slot * BLOCK),
                              blk_of[slot], whole);
            if (err)
                return err;
            free_slot[nfree++] = slot;
        }
        got += (unsigned)k;
    }
    return 0;
}

static int dmahal_sample(struct dside *s, enum contestant c, unsigned round)
{
    cpu_set_t saved;
    uint64_t x = 0x2545f4914f6cdd1dull + round, t0 = 0, i0 = 0;
    struct nvme *n = NULL;
    struct nvme_info info;
    struct dmahal_buf b = {0};
    uint32_t per;
    bool irq = c == D_MSIX || c == D_MSIX_LOCAL, pinned = false;
    int err = nvme_open_flags(s->dev, irq ? NVME_OPEN_IRQ : c == D_SPIN ? NVME_OPEN_SPIN : 0, &n);

    if (!err)
        err = nvme_identify(n, &info);
    if (!err && irq && nvme_irq_type(n) != DMAHAL_IRQ_MSIX) {
        fprintf(stderr, "bench_nvme_vm: the I/O queue completes on interrupt type %d, not MSI-X\n",
                nvme_irq_type(n));
        err = -ENOTSUP;
    }
    if (!err && irq) {
        err = place_vector(c, round, &saved);
        pinned = !err && c == D_MSIX_LOCAL;
    }
    if (!err)
        err = dmahal_common_alloc(nvme_adapter(n), c == D_POLL32 ? QD * BLOCK : BLOCK, 0, &b);
    per = err ? 0 : BLOCK / info.lba_size;
    if (!err && c == D_POLL32) {
        err = dmahal_qd(n, &b, per, &x, WARMUP, true);
        i0 = irq_count("vfio", addr);
        t0 = bench_now_ns();
        if (!err)
            err = dmahal_qd(n, &b, per, &x, ios, false);
    }
    for (unsigned i = 0; !err && c != D_POLL32 && i < WARMUP + ios; i++) {
        uint64_t blk = next_block(&x);

        if (i == WARMUP) {
            i0 = irq_count("vfio", addr);
            t0 = bench_now_ns();
        }
        err = nvme_io(n, NVME_CMD_READ, blk * per, per, &b, 0, NULL);
        if (!err)
            err = check_block(b.va, blk, i < WARMUP);
    }
    if (!err) {
        res[c].iops[round] = ios / ((double)(bench_now_ns() - t0) / 1e9);
        res[c].irqs[round] = (double)(irq_count("vfio", addr) - i0) / ios;
        res[c].ran = true;
    } else {
        fprintf(stderr, "bench_nvme_vm: %s: %s\n", cont_name[c], dmahal_strerror(err));
    }
    if (b.va)
        dmahal_common_free(nvme_adapter(n), &b);
    nvme_close(n);
    if (pinned)
        sched_setaffinity(0, sizeof(saved), &saved);
    return err;
}

static int dmahal_half(unsigned round)
{
    struct dside s = {0};
    int err = dside_open(&s);

    for (unsigned k = 0; k < NDMAHAL && !err; k++) {
        enum contestant c = (enum contestant)(D_POLL + (round + k) % NDMAHAL);

        if (want & 1u << c)
            err = dmahal_sample(&s, c, round);
    }
    dside_close(&s);
    return err;
}

/* ---- the report ----------------------------------------------------------------------------- */

static double median_of(const double *v, unsigned n)
{
    double tmp[MAX_REPS];

    memcpy(tmp, v, n * sizeof(double));
    return bench_median(tmp, n);
}

/* The median of the per-round ratios a/b, with their range in @lo and @hi. */
static double ratio_median(enum contestant a, enum contestant b, unsigned n, double *lo, double *hi)
{
    double r[MAX_REPS];

    for (unsigned i = 0; i < n; i++)
        r[i] = res[a].iops[i] / res[b].iops[i];
    bench_median(r, n); /* sorts */
    *lo = r[0];
    *hi = r[n - 1];
    return bench_median(r, n);
}

static int report(unsigned reps)
{
    static const enum contestant pairs[][2] = {
        {D_POLL, K_IRQ},    {D_SPIN, K_IRQ},    {D_MSIX, K_IRQ},       {D_MSIX_LOCAL, K_IRQ},
        {D_POLL, K_IOPOLL}, {D_SPIN, K_IOPOLL}, {D_POLL32, K_URING32}, {D_POLL32, K_IOPOLL32},
        {K_URING32, K_IRQ}, {D_POLL32, D_POLL}};

    printf("\n4 KiB random reads at QD 1 (the *32 contestants: QD %u) over %u MiB, %u reads per "
           "sample, %u rounds (medians)\n",
           QD, RANGE >> 20, ios, reps);
    printf("  %-18s %10s %10s %12s\n", "contestant", "IOPS", "us/read", "irqs/read");
    for (int c = 0; c < NCONT; c++) {
        double iops;

        if (!res[c].ran) {
            printf("  %-18s %10s\n", cont_name[c], "not run");
            continue;
        }
        iops = median_of(res[c].iops, reps);
        printf("  %-18s %10.0f %10.1f %12.2f\n", cont_name[c], iops, 1e6 / iops,
               median_of(res[c].irqs, reps));
        if (!(iops > 0))
            return -1;
    }
    printf("ratios of IOPS (medians of per-round ratios, and their range)\n");
    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        enum contestant a = pairs[k][0], b = pairs[k][1];
        double lo, hi, m;

        if (!res[a].ran || !res[b].ran)
            continue;
        m = ratio_median(a, b, reps, &lo, &hi);
        printf("  %s / %s %*s %6.2fx  (rounds %.2f-%.2f)\n", cont_name[a], cont_name[b],
               (int)(32 - strlen(cont_name[a]) - strlen(cont_name[b])), "", m, lo, hi);
    }
    return 0;
}

/* What the guest's clock and a bare system call cost: the floors under the contestants'
 * waits (the polled drivers read the clock; the kernel's pay a system call per read). */
static void print_floors(void)
{
    enum { N = 2000 };
    char src[64] = "?";
    uint64_t t0, t1, t2;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

    if (f && !fgets(src, sizeof(src), f))
        snprintf(src, sizeof(src), "?");
    src[strcspn(src, "\n")] = '\0';
    if (f)
        fclose(f);
    t0 = bench_now_ns();
    for (unsigned i = 0; i < N; i++)
        bench_now_ns();
    t1 = bench_now_ns();
    for (unsigned i = 0; i < N; i++)
        syscall(__NR_getppid);
    t2 = bench_now_ns();
    printf("guest: clocksource %s, clock_gettime %.2f us, getppid %.2f us\n", src,
           (double)(t1 - t0) / N / 1e3, (double)(t2 - t1) / N / 1e3);
}

/* Takes --only KEYS out of argv (bench_parse reads the rest): 0, or -1 for a bad key. */
static int parse_only(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        char *keys, *k, *save = NULL;

        if (strcmp(argv[i], "--only") != 0)
            continue;
        if (i + 1 >= *argc)
            return -1;
        keys = argv[i + 1];
        want = 0;
        for (k = strtok_r(keys, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            unsigned c = 0;

            while (c < NCONT && strcmp(k, cont_key[c]) != 0)
                c++;
            if (c == NCONT)
                return -1;
            want |= 1u << c;
        }
        memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2) * sizeof(*argv));
        *argc -= 2;
        return want ? 0 : -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct dside s = {0};
    int rc, err;

    _Static_assert(sizeof(cont_key) / sizeof(cont_key[0]) == NCONT, "a key per contestant");
    if (parse_only(&argc, argv)) {
        fputs(usage, stderr);
        return 2;
    }
    rc = bench_parse(argc, argv, usage, &o);
    if (rc)
        return rc < 0 ? 2 : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    addr = getenv("DMAHAL_VM_NVME");
    if (!addr || !*addr) {
        fprintf(stderr, "bench_nvme_vm: DMAHAL_VM_NVME is not set: run this program through "
                        "tests/vm/run.sh\n");
        return 2;
    }
    ios = o.quick ? 200 : 1000;
    bench_print_machine();
    printf("method: %u rounds, each the kernel's contestants (device on nvme) and dmahal's "
           "(device on vfio-pci), halves alternating; same blocks for all in a round%s\n",
           o.reps, o.quick ? " (--quick: a smoke test)" : "");
    printf("note: the guest is emulated (TCG): compare ratios, not absolute figures\n");
    print_floors();
    err = modules_load();
    if (!err)
        err = dside_open(&s);
    if (!err)
        err = dmahal_fill(&s);
    dside_close(&s);
    for (unsigned r = 0; r < o.reps && !err; r++) {
        bool kernel_first = r % 2 == 0;
        bool kernel = want & ((1u << NKERNEL) - 1), dmahal = want >> NKERNEL;

        if (kernel_first && kernel)
            err = kernel_half(r);
        if (!err && dmahal)
            err = dmahal_half(r);
        if (!err && !kernel_first && kernel)
            err = kernel_half(r);
    }
    if (!err)
        err = report(o.reps);
    modules_unload();
    if (err) {
        fprintf(stderr, "bench_nvme_vm: failed\n");
        return 1;
    }
    return 0;
}
