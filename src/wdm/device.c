/* SPDX-License-Identifier: MIT */
/*
 * device.c - the DEVICE_OBJECT of a dmahal device (dmahal_wdm_device), attached to the device
 * as a context so that it lives as long as the device does.
 */
#include "core/framed.h"

#include "wdm_internal.h"

#include <pthread.h>
#include <stdlib.h>

/* The key under which a device's struct wdm_device is attached; its address is what counts. */
static const char device_key = 0;
/* Serialises the creation of device objects, so that two racing callers get the same one;
 * guards the system platform below. */
static pthread_mutex_t device_create_lock = PTHREAD_MUTEX_INITIALIZER;
/* The platform the Mm routines take pages from (Windows has one machine; a process here may
 * open several): that of the first device given an object, while any of its devices has
 * one. */
static struct dmahal_platform *system_platform;
static unsigned system_devices;

struct dmahal_platform *dmahal__wdm_system_platform(void)
{
    struct dmahal_platform *p;

    pthread_mutex_lock(&device_create_lock);
    p = system_platform;
    pthread_mutex_unlock(&device_create_lock);
    return p;
}

/* Runs when the dmahal device closes: its adapters are (or are about to be) put by dmahal. */
static void wdm_device_release(void *ctx)
{
    struct wdm_device *dev = ctx;
    struct dmahal_platform *gone = NULL;

    pthread_mutex_lock(&device_create_lock);
    if (dev->counted && --system_devices == 0) {
        gone = system_platform;
        system_platform = NULL;
    }
    pthread_mutex_unlock(&device_create_lock);
    if (gone)
        dmahal__wdm_pages_release(gone);
    while (dev->adapters) {
        struct wdm_adapter *w = dev->adapters;

        dev->adapters = w->next;
        dmahal__wdm_adapter_free(w);
    }
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

PDEVICE_OBJECT dmahal_wdm_device(struct dmahal_device *d)
{
    struct wdm_device *dev;

    if (!d)
        return NULL;
    dev = dmahal_device_context(d, &device_key);
    if (dev)
        return &dev->obj;
    pthread_mutex_lock(&device_create_lock);
    dev = dmahal_device_context(d, &device_key);
    if (dev)
        goto out;
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        goto out;
    dev->obj.Type = IO_TYPE_DEVICE;
    dev->obj.Size = sizeof(dev->obj);
    dev->obj.DmahalDevice = d;
    pthread_mutex_init(&dev->lock, NULL);
    if (dmahal_device_set_context(d, &device_key, dev, wdm_device_release)) {
        pthread_mutex_destroy(&dev->lock);
        free(dev);
        dev = NULL;
        goto out;
    }
    if (!system_platform)
        system_platform = dmahal_device_platform(d);
    if (system_platform == dmahal_device_platform(d)) {
        dev->counted = true;
        system_devices++;
    }
out:
    pthread_mutex_unlock(&device_create_lock);
    return dev ? &dev->obj : NULL;
}

struct wdm_device *dmahal__wdm_device_of(PDEVICE_OBJECT obj)
{
    struct wdm_device *dev = (struct wdm_device *)obj;

    if (!dev || dev->obj.Type != IO_TYPE_DEVICE || !dev->obj.DmahalDevice ||
        dmahal_device_context(dev->obj.DmahalDevice, &device_key) != dev)
        return NULL;
    return dev;
}
