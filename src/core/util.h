/* SPDX-License-Identifier: MIT */
/*
 * util.h - private: the parsers of spec strings ("sim:ram=0-1G,iommu=on", "nvme:size=1G"),
 * for platforms and the built-in device models.
 */
#ifndef DMAHAL_UTIL_H
#define DMAHAL_UTIL_H

#include <stdint.h>

/* Parses "4096", "4K", "1M", "2G", "1T", "0x1000" into @out; -EINVAL if malformed or
 * overflowing. */
int dmahal__parse_size(const char *s, uint64_t *out);
/* Splits "key=val,key=val" one pair at a time: returns 1 with @key/@val set (pointing into
 * the string at *@cursor, which is modified), 0 at the end. */
int dmahal__next_kv(char **cursor, char **key, char **val);

#endif /* DMAHAL_UTIL_H */
