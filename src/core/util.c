/* SPDX-License-Identifier: MIT */
/* util.c - parsing shared by the platforms' spec strings. */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dmahal__parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    *out = 0;
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno)
        return -EINVAL;
    switch (*end) {
    case 'T':
    case 't':
        shift = 40;
        end++;
        break;
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    case 'M':
    case 'm':
        shift = 20;
        end++;
        break;
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0')
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int dmahal__next_kv(char **cursor, char **key, char **val)
{
    char *s = *cursor, *comma, *eq;

    *key = *val = NULL;
    if (!s || !*s)
        return 0;
    comma = strchr(s, ',');
    if (comma) {
        *comma = '\0';
        *cursor = comma + 1;
    } else {
        *cursor = s + strlen(s);
    }
    eq = strchr(s, '=');
    if (eq) {
        *eq = '\0';
        *val = eq + 1;
    }
    *key = s;
    return 1;
}

/* ---- versioned public structs ---------------------------------------------------------------- */

/* The length a caller's struct claims: its size, 0 standing for @base; 0 if impossible. */
static size_t caller_size(const void *s, size_t base)
{
    size_t n;

    memcpy(&n, s, sizeof(n));
    if (n == 0)
        return base;
    return n < base ? 0 : n;
}

int dmahal__struct_in(void *dst, size_t ours, const void *src, size_t base)
{
    size_t n = caller_size(src, base);

    if (!n)
        return -EINVAL;
    for (size_t i = ours; i < n; i++)
        if (((const unsigned char *)src)[i])
            return -ENOTSUP;
    memset(dst, 0, ours);
    memcpy(dst, src, n < ours ? n : ours);
    memcpy(dst, &ours, sizeof(ours));
    return 0;
}

int dmahal__struct_out(void *dst, const void *src, size_t ours, size_t base)
{
    size_t n = caller_size(dst, base);

    if (!n)
        return -EINVAL;
    if (n > ours)
        n = ours;
    memcpy(dst, src, n);
    memcpy(dst, &n, sizeof(n));
    return 0;
}

void dmahal__struct_clear(void *dst, size_t ours, size_t base)
{
    size_t n = caller_size(dst, base);

    if (n > ours)
        n = ours;
    if (n > sizeof(size_t))
        memset((char *)dst + sizeof(size_t), 0, n - sizeof(size_t));
}

/* ---- PCI names, for the platforms of real devices ---------------------------------- */

bool dmahal__hex_field(const char *s, int n, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        int c = s[i];
        unsigned v = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;

        if (v == 16)
            return false;
        *out = *out << 4 | v;
    }
    return true;
}

int dmahal__pci_addr_parse(const char *name, char *out, size_t size)
{
    unsigned dom = 0, bus, slot, fn;
    size_t len = strlen(name);
    const char *s = name;

    if (len == 12) {
        if (!dmahal__hex_field(s, 4, &dom) || s[4] != ':')
            return -EINVAL;
        s += 5;
    } else if (len != 7) {
        return -EINVAL;
    }
    if (!dmahal__hex_field(s, 2, &bus) || s[2] != ':' || !dmahal__hex_field(s + 3, 2, &slot) ||
        s[5] != '.' || !dmahal__hex_field(s + 6, 1, &fn) || slot > 0x1f || fn > 7)
        return -EINVAL;
    snprintf(out, size, "%04x:%02x:%02x.%x", dom, bus, slot, fn);
    return 0;
}

int dmahal__pci_cfg_rw(int fd, uint64_t base, bool write, unsigned off, void *buf, size_t len)
{
    ssize_t n = write ? pwrite(fd, buf, len, (off_t)(base + off))
                      : pread(fd, buf, len, (off_t)(base + off));

    return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int dmahal__pci_bus_master(int fd, uint64_t base, bool on)
{
    uint16_t cmd;
    int rc = dmahal__pci_cfg_rw(fd, base, false, PCI_COMMAND, &cmd, sizeof(cmd));

    if (rc)
        return rc;
    if (on)
        cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    else
        cmd &= (uint16_t)~PCI_COMMAND_MASTER;
    return dmahal__pci_cfg_rw(fd, base, true, PCI_COMMAND, &cmd, sizeof(cmd));
}

bool dmahal__sysfs_num(const char *root, const char *addr, const char *attr, unsigned long *out)
{
    char path[PATH_MAX], buf[64];
    FILE *f;
    bool ok;

    if (snprintf(path, sizeof(path), "%s/%s/%s", root, addr, attr) >= (int)sizeof(path))
        return false;
    f = fopen(path, "re");
    if (!f)
        return false;
    ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    if (ok)
        *out = strtoul(buf, NULL, 0);
    return ok;
}

int dmahal__sysfs_link_base(const char *root, const char *addr, const char *what, char *out,
                            size_t size)
{
    char path[PATH_MAX], link[PATH_MAX];
    const char *base;
    ssize_t n;

    if (snprintf(path, sizeof(path), "%s/%s/%s", root, addr, what) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return -errno;
    link[n] = '\0';
    base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
    if (strlen(base) >= size)
        return -ENAMETOOLONG;
    memcpy(out, base, strlen(base) + 1);
    return 0;
}
