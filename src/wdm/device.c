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
/* Serialises the creation of device objects, so that two racing callers get the same one. */
static pthread_mutex_t device_create_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs when the dmahal device closes: its adapters are (or are about to be) put by dmahal. */
static void wdm_device_release(void *ctx)
{
    struct wdm_device *dev = ctx;

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
