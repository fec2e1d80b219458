/* SPDX-License-Identifier: MIT */
/*
 * platform.c - the noiommu platform: its options (spec, environment, configuration file), its
 * description, its ops table, and the public entry points that are its own.
 *
 * "noiommu[:key=val,...]":
 *   lowmem=START+SIZE  a reserved physical range (memmap=SIZE$START), e.g. 0x8000000+64M;
 *                      else $DMAHAL_NOIOMMU_LOWMEM, else lowmem= in the configuration file
 *                      ($DMAHAL_NOIOMMU_CONFIG, else /etc/dmahal/noiommu.conf); lowmem=none: none
 *   hugepages=on|off   DMA memory from hugetlbfs pages (default on)
 *   mem=PATH           the physical-memory device (default /dev/mem)
 *   sysfs=PATH         the PCI devices directory (default /sys/bus/pci/devices)
 *   dev=PATH           where the uioN nodes are (default /dev)
 */
#include "platform/noiommu/noiommu.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dmahal__nio_say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "dmahal: noiommu: %s\n", line);
}

int dmahal__nio_parse_lowmem(const char *s, uint64_t *start, uint64_t *len)
{
    char buf[64], *plus;
    int rc;

    *start = *len = 0;
    if (!s || strlen(s) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, strlen(s) + 1);
    plus = strchr(buf, '+');
    if (!plus)
        return -EINVAL;
    *plus = '\0';
    rc = dmahal__parse_size(buf, start);
    if (rc == 0)
        rc = dmahal__parse_size(plus + 1, len);
    if (rc || *len == 0 || (*start & 4095) || (*len & 4095) || *start + *len < *start ||
        *len > DMAHAL__MAX_LEN) {
        *start = *len = 0;
        return -EINVAL;
    }
    return 0;
}

static int set_path(char *dst, const char *val)
{
    if (!*val || strlen(val) >= PATH_MAX)
        return -EINVAL;
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

/* One option; @from names where it came from (for messages). */
static int option(struct nio_plat *np, const char *key, const char *val, const char *from)
{
    if (strcmp(key, "lowmem") == 0) {
        snprintf(np->low_from, sizeof(np->low_from), "%s", from);
        if (strcmp(val, "none") == 0) {
            np->low_start = np->low_len = 0;
            return 0;
        }
        return dmahal__nio_parse_lowmem(val, &np->low_start, &np->low_len);
    }
    if (strcmp(key, "hugepages") == 0) {
        if (strcmp(val, "on") && strcmp(val, "off"))
            return -EINVAL;
        np->huge_on = strcmp(val, "on") == 0;
        return 0;
    }
    if (strcmp(key, "mem") == 0)
        return set_path(np->mem_path, val);
    if (strcmp(key, "sysfs") == 0)
        return set_path(np->sysfs, val);
    if (strcmp(key, "dev") == 0)
        return set_path(np->dev_dir, val);
    return -EINVAL;
}

/* @s without leading and trailing blanks (in place). */
static char *trim(char *s)
{
    char *end;

    s += strspn(s, " \t");
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

/* The configuration file: "key=val" lines, '#' comments. A missing file is no error. */
static int read_config(struct nio_plat *np, const char *path)
{
    char line[PATH_MAX + 64];
    unsigned n = 0;
    FILE *f = fopen(path, "re");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char from[PATH_MAX + 32], *key, *val = NULL, *eq;

        n++;
        line[strcspn(line, "#\r\n")] = '\0';
        eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            val = trim(eq + 1);
        }
        key = trim(line);
        if (!*key && !eq)
            continue;
        snprintf(from, sizeof(from), "%s line %u", path, n);
        if (!val || option(np, key, val, from)) {
            dmahal__nio_say("%s: not an option: \"%s\" (lowmem=START+SIZE, hugepages=on|off)", from,
                            key);
            fclose(f);
            return -EINVAL;
        }
    }
    fclose(f);
    return 0;
}

static size_t huge_default(void)
{
    char line[128];
    unsigned long kb = 0;
    FILE *f = fopen("/proc/meminfo", "re");

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb ? (size_t)kb << 10 : (size_t)2 << 20;
}

/* Defaults, then the configuration file, the environment and the spec, each over the last. */
static int options(struct nio_plat *np, const char *args)
{
    const char *cfg = getenv(NIO_ENV_CONFIG), *env = getenv(NIO_ENV_LOWMEM);
    char *copy, *cur, *key, *val;
    int rc;

    snprintf(np->mem_path, sizeof(np->mem_path), "/dev/mem");
    snprintf(np->sysfs, sizeof(np->sysfs), NIO_SYSFS_PCI);
    snprintf(np->dev_dir, sizeof(np->dev_dir), "/dev");
    np->huge_on = true;
    rc = read_config(np, cfg && *cfg ? cfg : NIO_CONFIG_FILE);
    if (rc)
        return rc;
    if (env && *env && option(np, "lowmem", env, "$" NIO_ENV_LOWMEM)) {
        dmahal__nio_say("$" NIO_ENV_LOWMEM "=\"%s\" is not START+SIZE (e.g. 0x8000000+64M)", env);
        return -EINVAL;
    }
    copy = cur = strdup(args ? args : "");
    if (!copy)
        return -ENOMEM;
    while (rc == 0 && dmahal__next_kv(&cur, &key, &val)) {
        rc = val ? option(np, key, val, "the platform spec") : -EINVAL;
        if (rc)
            dmahal__nio_say("bad option \"%s%s%s\" (lowmem=START+SIZE, hugepages=on|off, "
                            "mem=, sysfs=, dev=)",
                            key, val ? "=" : "", val ? val : "");
    }
    free(copy);
    return rc;
}

static int nio_open(struct dmahal_platform *p, const char *args)
{
    struct nio_plat *np = calloc(1, sizeof(*np));
    long page = sysconf(_SC_PAGESIZE);
    int rc;

    if (!np)
        return -ENOMEM;
    rc = options(np, args);
    if (rc)
        goto err_free;
    np->huge_size = huge_default();
    np->huge_lowest = UINT64_MAX;
    pthread_mutex_init(&np->lock, NULL);
    if (np->low_len) {
        rc = dmahal__nio_low_open(np);
        if (rc)
            goto err_lock;
    }
    dmahal__plat(p)->priv = np;
    dmahal__plat(p)->page_size = page > 0 ? (size_t)page : 4096;
    dmahal__plat(p)->has_iommu = false;
    /* x86 DMA snoops the CPU caches; see docs/noiommu.md for what other machines need. */
    dmahal__plat(p)->coherent = true;
    return 0;

err_lock:
    pthread_mutex_destroy(&np->lock);
err_free:
    free(np);
    return rc;
}

static void nio_close(struct dmahal_platform *p)
{
    struct nio_plat *np = dmahal__plat(p)->priv;

    dmahal__nio_regions_free(np);
    pthread_mutex_destroy(&np->lock);
    free(np);
}

static void nio_describe(struct dmahal_platform *p, FILE *f)
{
    struct nio_plat *np = dmahal__plat(p)->priv;

    fprintf(f, "platform: noiommu\n");
    fprintf(f, "iommu: none (bus address = physical address; a device reaches all memory)\n");
    fprintf(f, "coherent: yes\n");
    fprintf(f, "page size: %zu\n", dmahal__plat(p)->page_size);
    fprintf(f, "devices: %s (uio_pci_generic, or vfio-pci in no-IOMMU mode)\n", np->sysfs);
    dmahal__nio_describe_mem(np, f);
}

const struct dmahal__platform_ops dmahal__noiommu_ops = {
    .name = "noiommu",
    .open = nio_open,
    .close = nio_close,
    .device_open = dmahal__nio_device_open,
    .device_close = dmahal__nio_device_close,
    .mmio_read = dmahal__nio_mmio_read,
    .mmio_write = dmahal__nio_mmio_write,
    .adapter_init = dmahal__nio_adapter_init,
    .mem_alloc = dmahal__nio_mem_alloc,
    .mem_free = dmahal__nio_mem_free,
    .describe = nio_describe,
    /* Finds memory the library owns; everything else is bounced (see mem.c). */
    .pin = dmahal__nio_pin,
    .unpin = dmahal__nio_unpin,
    .reg_pin = dmahal__nio_reg_pin,
    .reg_unpin = dmahal__nio_reg_unpin,
    .bounce_alloc = dmahal__nio_bounce_alloc,
    .bounce_free = dmahal__nio_bounce_free,
    /* INTx through the device's uio fd; MSI needs vfio-pci. */
    .irq_count = dmahal__nio_irq_count,
    .irq_enable = dmahal__nio_irq_enable,
    .irq_disable = dmahal__nio_irq_disable,
    .irq_unmask = dmahal__nio_irq_unmask,
    .irq_consume = dmahal__nio_irq_consume,
    .config_size = dmahal__nio_config_size,
    .config_read = dmahal__nio_config_read,
    .config_write = dmahal__nio_config_write,
};

/* ---- public entry points ------------------------------------------------------------------ */

static struct nio_plat *nio_of(struct dmahal_platform *p)
{
    return p && dmahal__plat(p)->ops == &dmahal__noiommu_ops ? dmahal__plat(p)->priv : NULL;
}

int dmahal_noiommu_virt_to_phys(struct dmahal_platform *p, const void *va, uint64_t *pa)
{
    if (pa)
        *pa = 0;
    if (!p || !va || !pa)
        return -EINVAL;
    if (!nio_of(p))
        return -ENOTSUP;
    if (dmahal__nio_region_phys(nio_of(p), va, pa) == 0)
        return 0;
    return dmahal__nio_virt_to_phys(va, pa);
}

int dmahal_noiommu_lowmem(struct dmahal_platform *p, uint64_t *start, uint64_t *len)
{
    struct nio_plat *np;

    if (start)
        *start = 0;
    if (len)
        *len = 0;
    if (!p || !start || !len)
        return -EINVAL;
    np = nio_of(p);
    if (!np)
        return -ENOTSUP;
    if (!np->low_len)
        return -ENOENT;
    *start = np->low_start;
    *len = np->low_len;
    return 0;
}
