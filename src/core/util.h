/* SPDX-License-Identifier: MIT */
/*
 * util.h - private: the parsers of spec strings ("sim:ram=0-1G,iommu=on", "nvme:size=1G"),
 * for platforms and the built-in device models; the copying of versioned public structs.
 */
#ifndef DMAHAL_UTIL_H
#define DMAHAL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Thread-local storage on the map and MMIO paths. A shared library's TLS defaults to the
 * general-dynamic model, a call to __tls_get_addr per access; initial-exec is one load
 * through the thread pointer. It takes static TLS space, which glibc reserves for libraries
 * loaded later (dlopen) too; these few small variables fit in it.
 */
#define DMAHAL__TLS _Thread_local __attribute__((tls_model("initial-exec")))

/* Parses "4096", "4K", "1M", "2G", "1T", "0x1000" into @out; -EINVAL if malformed or
 * overflowing. */
int dmahal__parse_size(const char *s, uint64_t *out);
/* Splits "key=val,key=val" one pair at a time: returns 1 with @key/@val set (pointing into
 * the string at *@cursor, which is modified), 0 at the end. */
int dmahal__next_kv(char **cursor, char **key, char **val);

/*
 * Versioned public structs (docs/ABI.md) start with a size_t size: the caller's
 * sizeof(struct ...), or 0 for the struct's first layout, @base bytes long. Members are only
 * ever appended, so a caller built against an older header passes a shorter struct.
 */
/* Copies a caller's struct @src into ours, @dst of @ours bytes: the members it has, zeroes for
 * the members it lacks, and @dst's size set to @ours. -EINVAL for a size between 1 and
 * @base - 1; -ENOTSUP for a longer struct (a newer caller) with a member past ours that is not
 * zero: it asks for what this library does not have. */
int dmahal__struct_in(void *dst, size_t ours, const void *src, size_t base);
/* Copies our struct @src, @ours bytes, to a caller's @dst as far as @dst's size says (0:
 * @base), and sets @dst's size to the bytes written. -EINVAL, touching nothing, for a size
 * between 1 and @base - 1. */
int dmahal__struct_out(void *dst, const void *src, size_t ours, size_t base);
/* Clears a caller's struct as far as its size says (keeping the size), for a failed call. */
void dmahal__struct_clear(void *dst, size_t ours, size_t base);

/* Reads exactly @n hex digits at @s into @out; false if one is not a hex digit. */
bool dmahal__hex_field(const char *s, int n, unsigned *out);
/* Accepts a PCI address "DDDD:BB:SS.F" or "BB:SS.F" exactly (slot <= 0x1f, function <= 7) and
 * writes the canonical form sysfs uses ("0000:00:03.0") into @out; -EINVAL otherwise. */
int dmahal__pci_addr_parse(const char *name, char *out, size_t size);

/* Reads or writes @len bytes of a PCI device's configuration space at @off, through @fd, in
 * which the space starts at @base (a sysfs "config" file: 0; a VFIO device fd: its config
 * region's offset). 0, -errno, or -EIO for a short transfer. */
int dmahal__pci_cfg_rw(int fd, uint64_t base, bool write, unsigned off, void *buf, size_t len);
/* Turns memory decoding and bus mastering on (@on) or bus mastering off, in the command
 * register: without bus mastering the device's DMA goes nowhere, silently. As above. */
int dmahal__pci_bus_master(int fd, uint64_t base, bool on);

/* Reads the sysfs attribute @attr of the PCI device @addr under @root (the devices' directory,
 * /sys/bus/pci/devices) holding one number ("0x1234", "7"); false if it cannot be read. */
bool dmahal__sysfs_num(const char *root, const char *addr, const char *attr, unsigned long *out);
/* Writes the last component of the device's sysfs symlink @what (its driver, its IOMMU group)
 * into @out: 0; -errno (-ENOENT: no such link); -ENAMETOOLONG when it does not fit @size. */
int dmahal__sysfs_link_base(const char *root, const char *addr, const char *what, char *out,
                            size_t size);

#endif /* DMAHAL_UTIL_H */
