/* SPDX-License-Identifier: MIT */
/* A program outside the tree, built against the installed library through pkg-config. */
#include <dmahal/device.h>
#include <dmahal/dmahal.h>

int main(void)
{
    struct dmahal_platform *p;
    struct dmahal_device *d;
    struct dmahal_adapter *a;
    struct dmahal_buf b;
    int rc = dmahal_platform_open("sim", &p);

    if (rc == 0)
        rc = dmahal_device_open(p, "edu", &d);
    if (rc == 0)
        rc = dmahal_adapter_get(d, NULL, &a);
    if (rc == 0)
        rc = dmahal_common_alloc(a, 4096, 0, &b);
    if (rc == 0)
        rc = dmahal_common_free(a, &b);
    printf("dmahal %s: %s\n", dmahal_version(), dmahal_strerror(rc));
    dmahal_platform_close(p);
    return rc ? 1 : 0;
}
