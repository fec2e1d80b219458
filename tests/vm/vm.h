/* SPDX-License-Identifier: MIT */
/*
 * vm.h - helpers for the programs that run in the test guest (tests/vm/run.sh): the devices
 * the guest has, stderr capture for checking error messages, and the kernel's DMAR fault log.
 */
#ifndef DMAHAL_TEST_VM_H
#define DMAHAL_TEST_VM_H

#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A device address the guest exported (DMAHAL_VM_EDU, ...); fails the case outside it. */
static inline const char *vm_dev(const char *var)
{
    const char *v = getenv(var);

    if (!v || !*v)
        test_fail(__FILE__, __LINE__, "%s is not set: run this program through tests/vm/run.sh",
                  var);
    return v;
}

/* Redirects stderr into a temporary file until vm_capture_end(). */
struct vm_capture {
    int saved, fd;
    char text[4096];
};

static inline void vm_capture_begin(struct vm_capture *c)
{
    char path[] = "/tmp/vm-stderr.XXXXXX";

    fflush(stderr);
    c->fd = mkstemp(path);
    CHECK(c->fd >= 0);
    unlink(path);
    c->saved = dup(2);
    dup2(c->fd, 2);
}

/* Restores stderr; the captured text is in c->text (and echoed, for the log). */
static inline const char *vm_capture_end(struct vm_capture *c)
{
    ssize_t n;

    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
    close(c->fd);
    c->text[n > 0 ? n : 0] = '\0';
    fputs(c->text, stderr);
    return c->text;
}

/* The kernel log from now on: /dev/kmsg read from its end. */
static inline int vm_kmsg_open(void)
{
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    CHECK(fd >= 0);
    CHECK(lseek(fd, 0, SEEK_END) >= 0);
    return fd;
}

/*
 * Waits up to @secs for the kernel to log a DMAR fault of device @addr ("0000:00:03.0"):
 * returns 1 with the faulting address in @fault_addr, or 0 if none came. The VT-d fault
 * handler runs from an interrupt, shortly after the device's access.
 */
static inline int vm_kmsg_dmar_fault(int fd, const char *addr, double secs, uint64_t *fault_addr)
{
    struct timespec pause = {0, 10 * 1000 * 1000};
    char rec[1024], dev[32];
    const char *bdf = strlen(addr) > 5 ? addr + 5 : addr; /* the kernel prints no domain */

    snprintf(dev, sizeof(dev), "[%s]", bdf);
    for (int waited = 0; waited < (int)(secs * 100);) {
        ssize_t n = read(fd, rec, sizeof(rec) - 1);
        const char *at;

        if (n < 0) {
            if (errno == EPIPE)
                continue; /* records overwritten: read on */
            nanosleep(&pause, NULL);
            waited++;
            continue;
        }
        rec[n] = '\0';
        if (!strstr(rec, "DMAR") || !strstr(rec, dev) || !(at = strstr(rec, "fault addr ")))
            continue;
        *fault_addr = strtoull(at + strlen("fault addr "), NULL, 16);
        printf("kernel: %s", strchr(rec, ';') ? strchr(rec, ';') + 1 : rec);
        fflush(stdout);
        return 1;
    }
    return 0;
}

#endif /* DMAHAL_TEST_VM_H */
