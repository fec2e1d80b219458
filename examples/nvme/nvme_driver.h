/* SPDX-License-Identifier: MIT */
/*
 * nvme_driver.h - a small user-space NVMe driver written against the public dmahal API only:
 * dmahal_mmio_* on BAR0 for the registers and doorbells, and common buffers from one DMA
 * adapter for everything the controller reads or writes (admin and I/O queues, Identify
 * data, PRP lists and, from the caller, the data itself).
 *
 * The driver is synchronous and polls: one command in flight at a time, completions found by
 * their phase bit, no interrupts. Every wait is bounded (CAP.TO for the controller's ready
 * state, NVME_CMD_TIMEOUT_MS for a command); a timeout, a controller fatal status (CSTS.CFS)
 * or an error status in a completion gives a message on stderr and a negative errno.
 *
 * It runs on any platform whose device is an NVMe controller; in the test guest that is
 * QEMU's "nvme" bound to vfio-pci ("vfio", $DMAHAL_VM_NVME).
 */
#ifndef DMAHAL_EXAMPLE_NVME_DRIVER_H
#define DMAHAL_EXAMPLE_NVME_DRIVER_H

#include <dmahal/dmahal.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The memory page size the driver programs (CC.MPS = 0): PRP entries cover this much. */
#define NVME_PAGE_SIZE 4096u
/** How long one command may take before the driver gives up on it. */
#define NVME_CMD_TIMEOUT_MS 10000u

/** The NVM command set's I/O opcodes that nvme_io() issues. */
enum nvme_opcode {
    NVME_CMD_WRITE = 0x01,
    NVME_CMD_READ = 0x02,
};

/*
 * A completion's status field (completion dword 3, bits 31:17), as nvme_io() reports it:
 * bits 7:0 the status code, 10:8 the status code type, 13 More, 14 Do Not Retry.
 */
#define NVME_STATUS_SC(s)  ((unsigned)(s)&0xffu)          /**< status code */
#define NVME_STATUS_SCT(s) (((unsigned)(s) >> 8) & 0x7u)  /**< status code type */
#define NVME_STATUS_DNR(s) (((unsigned)(s) >> 14) & 0x1u) /**< do not retry */
/** Generic command status (SCT 0), status code 80h: LBA Out of Range. */
#define NVME_SC_LBA_RANGE 0x80u

/** One bound NVMe controller, with namespace 1 ready for I/O. */
struct nvme;

/** What Identify Controller and Identify Namespace say, and how the driver set things up. */
struct nvme_info {
    uint16_t vid;        /**< PCI vendor ID, from Identify Controller */
    char serial[21];     /**< serial number, trailing blanks removed */
    char model[41];      /**< model number, trailing blanks removed */
    char firmware[9];    /**< firmware revision, trailing blanks removed */
    uint32_t version;    /**< the VS register: major << 16 | minor << 8 | tertiary */
    uint32_t nn;         /**< number of namespaces */
    uint32_t nsid;       /**< the namespace nvme_io() addresses: 1 */
    uint64_t nsze;       /**< its size in logical blocks */
    uint32_t lba_size;   /**< its logical block size in bytes (from FLBAS's LBA format) */
    size_t max_transfer; /**< largest nvme_io() in bytes: MDTS, at most one PRP list page */
    unsigned io_depth;   /**< entries in the I/O submission and completion queues */
    unsigned db_stride;  /**< doorbell stride in bytes (4 << CAP.DSTRD) */
    unsigned ready_ms;   /**< worst-case ready time the controller declares (CAP.TO) */
};

/**
 * Binds the driver to an open device and brings the controller up: checks CAP, resets the
 * controller (CC.EN = 0, waits for CSTS.RDY = 0), sets up the admin queues (AQA, ASQ, ACQ),
 * enables it (CC with IOSQES, IOCQES, MPS; CC.EN = 1, waits for CSTS.RDY = 1), identifies the
 * controller and namespace 1, and creates one I/O completion and submission queue pair.
 *
 * @param dev  an open device (dmahal_device_open) whose BAR0 holds an NVMe controller; the
 *             driver does not close it.
 * @param out  receives the driver instance; cleared on failure.
 * @return 0; -EINVAL for NULL arguments; -ENODEV if BAR0 does not look like an NVMe
 *         controller (absent, all ones, no NVM command set, doorbells outside the BAR);
 *         -ENOTSUP if the controller cannot use 4 KiB pages or namespace 1 is unusable;
 *         -ETIMEDOUT if CSTS.RDY did not follow CC.EN within CAP.TO or a command did not
 *         complete; -EIO for CSTS.CFS or an error status; -ENOMEM; or what
 *         dmahal_adapter_get() / dmahal_common_alloc() return.
 */
int nvme_open(struct dmahal_device *dev, struct nvme **out);

/** nvme_open_flags(): wait for the I/O completion queue's interrupt instead of polling it. */
#define NVME_OPEN_IRQ 0x1u
/**
 * nvme_open_flags(): poll the I/O completion queue without pausing: the driver never yields
 * or sleeps while it waits and reads the clock (for NVME_CMD_TIMEOUT_MS) only every
 * NVME_SPIN_CLOCK looks at the queue. By default it spins for 200 us, then yields the CPU
 * every 64 looks, and sleeps 20 us every 64 looks once a command is 2 ms late; it reads the
 * clock after NVME_POLL_CLOCK_FIRST looks, then after twice as many each time, up to every
 * NVME_POLL_CLOCK_MAX looks (so those times are approximate: on a machine whose look at the
 * queue takes 2 ns, the clock is first read after 2 us). For a core given to the driver, and
 * for machines
 * whose clock is costly to read (a guest whose clocksource is an emulated HPET, where each
 * read traps to the hypervisor). A command that never completes is still noticed.
 */
#define NVME_OPEN_SPIN 0x2u
/** With NVME_OPEN_SPIN: looks at the completion queue between two reads of the clock. */
#define NVME_SPIN_CLOCK 65536u
/** Without it: the looks at the completion queue before the first read of the clock. */
#define NVME_POLL_CLOCK_FIRST 1024u
/** Without it: the most looks at the completion queue between two reads of the clock. */
#define NVME_POLL_CLOCK_MAX 65536u

/**
 * As nvme_open(); with NVME_OPEN_IRQ the I/O completion queue is created with interrupts
 * enabled, on MSI-X vector 1 when the device has MSI-X (vector 0 stays the admin queue's), else
 * on INTx, and the driver sleeps in dmahal_irq_wait() until an I/O completion arrives (the
 * admin queue is still polled). With NVME_OPEN_SPIN the I/O queue is polled as that flag says.
 * @return as nvme_open(); -EINVAL for unknown flags or NVME_OPEN_IRQ with NVME_OPEN_SPIN; what
 *         dmahal_irq_enable() returns (-ENOTSUP for a device with neither MSI-X nor INTx).
 */
int nvme_open_flags(struct dmahal_device *dev, unsigned flags, struct nvme **out);

/** The most I/O queue pairs nvme_open_queues() sets up. */
#define NVME_MAX_IO_QUEUES 16u

/**
 * As nvme_open_flags(), with up to @p nqueues I/O queue pairs (Set Features, Number of Queues:
 * the controller may grant fewer; nvme_queues() says how many), for a thread each: queue @c qi
 * is used through the *_on() calls by one thread at a time, and different queues by
 * different threads at once. With NVME_OPEN_IRQ each queue completes on an MSI-X vector of
 * its own (1 + qi) when the device has enough, else they share (INTx: one line, waits then
 * look again every millisecond). nvme_io(), nvme_io_mem() and the calls without _on use the
 * first queue; nvme_identify() and nvme_close() use the admin queue, from one thread.
 * @return as nvme_open_flags(); -EINVAL for @p nqueues 0 or above NVME_MAX_IO_QUEUES.
 */
int nvme_open_queues(struct dmahal_device *dev, unsigned flags, unsigned nqueues,
                     struct nvme **out);

/** The I/O queue pairs the driver has (1 unless nvme_open_queues() asked for more). 0 for
 *  NULL. */
unsigned nvme_queues(const struct nvme *n);

/** Returns the interrupt type the I/O queue completes on (DMAHAL_IRQ_*), 0 when polled. */
int nvme_irq_type(const struct nvme *n);

/**
 * Disables the controller after deleting the I/O queues, so that it no longer touches the
 * driver's memory, then frees that memory and the adapter. NULL does nothing.
 */
void nvme_close(struct nvme *n);

/**
 * Issues Identify Controller and Identify Namespace (namespace 1) again and reports what
 * they say, with the driver's own setup figures.
 * @param out  receives the information; cleared on failure.
 * @return 0; -EINVAL for NULL arguments; -EIO if the controller failed a command or
 *         changed under the driver (namespace size or block size differ from nvme_open's);
 *         -ETIMEDOUT.
 */
int nvme_identify(struct nvme *n, struct nvme_info *out);

/** Returns the driver's DMA adapter: data buffers for nvme_io() come from it. NULL for NULL. */
struct dmahal_adapter *nvme_adapter(const struct nvme *n);

/**
 * Reads or writes @p nblocks logical blocks at @p lba of namespace 1, to or from
 * [@p off, @p off + nblocks * lba_size) of @p buf, a common buffer of nvme_adapter(). The
 * driver describes the data with PRPs: PRP1 alone within one page, PRP2 as the second
 * page's address for two, and PRP2 pointing at a PRP list for more.
 *
 * The driver does not check @p lba against the namespace: the controller does, and says so
 * in the completion's status (NVME_SC_LBA_RANGE).
 *
 * @param op      NVME_CMD_READ or NVME_CMD_WRITE.
 * @param status  if not NULL, receives the completion's status field (0 for success;
 *                see NVME_STATUS_SC); set to 0 when no command was issued.
 * @return 0; -EINVAL for NULL @p n or @p buf, an unknown opcode, zero blocks, a range
 *         outside @p buf or a data address that is not dword-aligned; -E2BIG above
 *         max_transfer; -EIO if the controller completed the command with an error status
 *         (the message names it) or the driver is unusable after an earlier timeout;
 *         -EBUSY while commands of nvme_submit() are in flight; -ETIMEDOUT.
 */
int nvme_io(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
            const struct dmahal_buf *buf, size_t off, uint16_t *status);

/**
 * Reads or writes @p nblocks logical blocks at @p lba of namespace 1, to or from the caller's
 * own memory: @p data, nblocks * lba_size bytes anywhere in the process (malloc'd, static, on
 * the stack). The driver maps it for the transfer with dmahal_map() and unmaps it when the
 * command completes, so the data needs no copy where the device can reach it in place
 * (through an IOMMU); elsewhere dmahal bounces it.
 *
 * @return as nvme_io(), with -EINVAL for NULL @p data; or what dmahal_map() returns
 *         (-EFAULT on vfio for memory the kernel cannot pin, -ENOMEM, -ENOSPC).
 */
int nvme_io_mem(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks, void *data,
                uint16_t *status);

/*
 * Queued I/O: up to nvme_queue_depth() commands in flight on the I/O queue at once, each
 * submitted with a tag of the caller's and given back with it by nvme_reap(), in the order
 * the controller completes them. Submission only writes the command into the queue: the
 * controller learns of what was written at the next nvme_reap() or nvme_ring(), with one
 * doorbell write for all of it, as drivers batch submissions. nvme_io() and nvme_io_mem()
 * refuse to run (-EBUSY) while any is in flight on the first queue. One thread at a time per
 * queue (see nvme_open_queues()).
 */

/** A command nvme_submit() or nvme_submit_mem() queued, as nvme_reap() gives it back. */
struct nvme_done {
    uint64_t tag;    /**< what the caller gave at submission */
    uint16_t status; /**< the completion's status field: 0 for success (see NVME_STATUS_SC) */
    int rc; /**< 0, or -EIO when the status says the command failed (the message names it) */
};

/** The most commands in flight at once on one I/O queue: its depth less one. 0 for NULL. */
unsigned nvme_queue_depth(const struct nvme *n);

/** The commands submitted to the first I/O queue and not yet reaped. 0 for NULL. */
unsigned nvme_inflight(const struct nvme *n);

/** As nvme_inflight(), for I/O queue @p qi; 0 when there is no such queue. */
unsigned nvme_inflight_on(const struct nvme *n, unsigned qi);

/**
 * Queues a read or write of @p nblocks blocks at @p lba, to or from [@p off, @p off +
 * nblocks * lba_size) of the common buffer @p buf; returns without waiting, and without
 * telling the controller yet (nvme_reap() and nvme_ring() do). The buffer must stay
 * allocated until nvme_reap() gives @p tag back.
 * @return 0; as nvme_io() for bad arguments (-EINVAL, -E2BIG) and for a broken driver
 *         (-EIO); -EBUSY when nvme_queue_depth() commands are in flight; -ENOMEM when a
 *         PRP list page cannot be had.
 */
int nvme_submit(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
                const struct dmahal_buf *buf, size_t off, uint64_t tag);

/**
 * As nvme_submit(), for the caller's own memory (as nvme_io_mem()): mapped here, unmapped
 * when nvme_reap() gives @p tag back (for a read, the data is then in @p data). The memory
 * must stay valid until then.
 * @return as nvme_submit(); or what dmahal_map() returns.
 */
int nvme_submit_mem(struct nvme *n, enum nvme_opcode op, uint64_t lba, uint32_t nblocks, void *data,
                    uint64_t tag);

/** As nvme_submit(), on I/O queue @p qi (nvme_open_queues()); -EINVAL when there is none. */
int nvme_submit_on(struct nvme *n, unsigned qi, enum nvme_opcode op, uint64_t lba, uint32_t nblocks,
                   const struct dmahal_buf *buf, size_t off, uint64_t tag);

/** As nvme_submit_mem(), on I/O queue @p qi; -EINVAL when there is none. */
int nvme_submit_mem_on(struct nvme *n, unsigned qi, enum nvme_opcode op, uint64_t lba,
                       uint32_t nblocks, void *data, uint64_t tag);

/** Tells the controller of the commands submitted since the last nvme_reap() or nvme_ring(),
 *  with one doorbell write. NULL does nothing. */
void nvme_ring(struct nvme *n);

/** As nvme_ring(), for I/O queue @p qi; nothing when there is none. */
void nvme_ring_on(struct nvme *n, unsigned qi);

/**
 * Rings the submission doorbell if commands wait for it (as nvme_ring()), then takes
 * completed commands: up to @p max into @p done, waiting (by polling, or for the I/O
 * queue's interrupt with NVME_OPEN_IRQ) until at least @p min have completed; @p min 0 never
 * waits. A command the controller failed comes back with its status and rc -EIO; the call
 * itself succeeds. Each wait is bounded by NVME_CMD_TIMEOUT_MS: a controller that completes
 * nothing for that long makes the driver unusable (as nvme_io()'s timeout does), and the
 * memory of every command in flight is unmapped, so that the caller may reuse it; such a
 * command that still completes later comes back with rc -EIO, and nothing is waited for
 * again.
 * @return the number taken (0 to @p max); -EINVAL for NULL @p n or @p done, @p max 0,
 *         @p min above @p max or above nvme_inflight(); when none was taken: -ETIMEDOUT,
 *         -EIO (controller fatal status, a completion for no command in flight, or a driver
 *         unusable after an earlier timeout).
 */
int nvme_reap(struct nvme *n, unsigned min, struct nvme_done *done, unsigned max);

/** As nvme_reap(), for I/O queue @p qi; -EINVAL when there is none (and as nvme_reap(), for
 *  @p min above nvme_inflight_on()). */
int nvme_reap_on(struct nvme *n, unsigned qi, unsigned min, struct nvme_done *done, unsigned max);

/** Names a completion status field ("success", "LBA out of range", ...); never NULL. */
const char *nvme_status_name(uint16_t status);

#ifdef __cplusplus
}
#endif

#endif /* DMAHAL_EXAMPLE_NVME_DRIVER_H */
