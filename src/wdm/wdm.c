/*
 * wdm.c - the Windows-names layer: IoGetDmaAdapter and the DMA_OPERATIONS dmahal
 * implements, on top of the public API only (dmahal.h), like any driver framework would be.
 */
#include <dmahal/wdm.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Windows' x86 HAL limits devices it must map for to 16 map registers (64 KiB). */
#define WDM_MAX_MAP_REGISTERS_NO_SG 16u
/* The HAL drops MaximumLength's top bit so that BYTES_TO_PAGES cannot overflow. */
#define WDM_MAX_LENGTH_MASK 0x7fffffffu
#define WDM_ADAPTER_MAGIC   0x57444d41u /* "WDMA" */

/* One common buffer handed out through AllocateCommonBuffer. */
struct wdm_buf {
    struct dmahal_buf b;
    bool cached;
};

/* A DMA_ADAPTER and what dmahal needs behind it. The driver's PDMA_ADAPTER points at hdr. */
struct wdm_adapter {
    DMA_ADAPTER hdr; /* first, so that a PDMA_ADAPTER is a struct wdm_adapter * */
    uint32_t magic;
    struct dmahal_adapter *a;
    struct wdm_device *dev;
    struct wdm_adapter *prev, *next; /* on dev->adapters */
    pthread_mutex_t lock;            /* guards the map, and dmahal's buffers with it */
    struct wdm_buf *bufs;            /* sorted by va, for FreeCommonBuffer's lookup */
    size_t nbufs, cap;
};

/* The DEVICE_OBJECT of a dmahal device, attached to it as a context. */
struct wdm_device {
    DEVICE_OBJECT obj;    /* first, so that a PDEVICE_OBJECT is a struct wdm_device * */
    pthread_mutex_t lock; /* guards adapters */
    struct wdm_adapter *adapters;
};

/* The key under which a device's struct wdm_device is attached; its address is what counts. */
static const char device_key = 0;
/* Serialises the creation of device objects, so that two racing callers get the same one. */
static pthread_mutex_t device_create_lock = PTHREAD_MUTEX_INITIALIZER;

static struct wdm_adapter *wdm_adapter_of(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = (struct wdm_adapter *)DmaAdapter;

    return w && w->magic == WDM_ADAPTER_MAGIC ? w : NULL;
}

/* ---- the buffer map: va -> buffer, sorted, binary-searched --------------------------------- */

/* Returns the index of the first entry whose va is not below @va. Caller holds w->lock. */
static size_t bufs_lower_bound(const struct wdm_adapter *w, const void *va)
{
    size_t lo = 0, hi = w->nbufs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((uintptr_t)w->bufs[mid].b.va < (uintptr_t)va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Adds @wb to the map. Caller holds w->lock. */
static int bufs_insert(struct wdm_adapter *w, const struct wdm_buf *wb)
{
    size_t i;

    if (w->nbufs == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct wdm_buf *bufs = realloc(w->bufs, cap * sizeof(*bufs));

        if (!bufs)
            return -ENOMEM;
        w->bufs = bufs;
        w->cap = cap;
    }
    i = bufs_lower_bound(w, wb->b.va);
    memmove(&w->bufs[i + 1], &w->bufs[i], (w->nbufs - i) * sizeof(*w->bufs));
    w->bufs[i] = *wb;
    w->nbufs++;
    return 0;
}

/*
 * Takes the entry that matches @wb exactly out of the map. Returns 0; -ENOENT when no entry
 * has that va; -EINVAL when one has but its la or len differs; -EPERM when only its
 * CacheEnabled differs. A mismatched entry stays. Caller holds w->lock.
 */
static int bufs_take(struct wdm_adapter *w, const struct wdm_buf *wb)
{
    size_t i = bufs_lower_bound(w, wb->b.va);

    if (i == w->nbufs || w->bufs[i].b.va != wb->b.va)
        return -ENOENT;
    if (w->bufs[i].b.la != wb->b.la || w->bufs[i].b.len != wb->b.len)
        return -EINVAL;
    if (w->bufs[i].cached != wb->cached)
        return -EPERM;
    w->nbufs--;
    memmove(&w->bufs[i], &w->bufs[i + 1], (w->nbufs - i) * sizeof(*w->bufs));
    return 0;
}

/* ---- the operations -------------------------------------------------------------------------- */

/* Frees the wrapper only; the dmahal adapter is put (or was put) by the caller. */
static void wdm_adapter_free(struct wdm_adapter *w)
{
    w->magic = 0;
    pthread_mutex_destroy(&w->lock);
    free(w->bufs);
    free(w);
}

static VOID put_dma_adapter(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_device *dev;

    if (!w)
        return;
    dev = w->dev;
    pthread_mutex_lock(&dev->lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        dev->adapters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&dev->lock);
    /* dmahal frees the buffers still allocated, and its verifier reports them as leaks. */
    dmahal_adapter_put(w->a);
    wdm_adapter_free(w);
}

static PVOID allocate_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                                    PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_buf wb = {.cached = CacheEnabled != FALSE};
    int rc;

    if (!LogicalAddress)
        return NULL;
    LogicalAddress->QuadPart = 0;
    if (!w || Length == 0)
        return NULL;
    /* dmahal and the map change together, so that no free sees one without the other. */
    pthread_mutex_lock(&w->lock);
    rc = dmahal_common_alloc(w->a, Length, wb.cached ? DMAHAL_CACHED : 0, &wb.b);
    if (rc == 0) {
        rc = bufs_insert(w, &wb);
        if (rc)
            dmahal_common_free(w->a, &wb.b);
    }
    pthread_mutex_unlock(&w->lock);
    if (rc)
        return NULL;
    LogicalAddress->QuadPart = (LONGLONG)wb.b.la;
    return wb.b.va;
}

static VOID free_common_buffer(PDMA_ADAPTER DmaAdapter, ULONG Length,
                               PHYSICAL_ADDRESS LogicalAddress, PVOID VirtualAddress,
                               BOOLEAN CacheEnabled)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);
    struct wdm_buf wb = {
        .b = {.va = VirtualAddress, .la = (dmahal_addr_t)LogicalAddress.QuadPart, .len = Length},
        .cached = CacheEnabled != FALSE,
    };
    int rc;

    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    rc = bufs_take(w, &wb);
    /*
     * A buffer not ours as described goes to dmahal all the same: it refuses to free what
     * does not match a live buffer exactly, so nothing is freed, and its verifier reports
     * the bad free with both sides. A CacheEnabled mismatch alone would match, so it is not
     * handed on.
     */
    if (rc != -EPERM)
        dmahal_common_free(w->a, &wb.b);
    pthread_mutex_unlock(&w->lock);
}

static ULONG get_dma_alignment(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    return w ? (ULONG)dmahal_adapter_alignment(w->a) : 0;
}

/* Members not listed are NULL: dmahal does not implement them yet. */
static const DMA_OPERATIONS wdm_ops = {
    .Size = offsetof(DMA_OPERATIONS, ReadDmaCounter),
    .PutDmaAdapter = put_dma_adapter,
    .AllocateCommonBuffer = allocate_common_buffer,
    .FreeCommonBuffer = free_common_buffer,
    .GetDmaAlignment = get_dma_alignment,
};

/* ---- device objects -------------------------------------------------------------------------- */

/* Runs when the dmahal device closes: its adapters are (or are about to be) put by dmahal. */
static void wdm_device_release(void *ctx)
{
    struct wdm_device *dev = ctx;

    while (dev->adapters) {
        struct wdm_adapter *w = dev->adapters;

        dev->adapters = w->next;
        wdm_adapter_free(w);
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

/* ---- IoGetDmaAdapter ------------------------------------------------------------------------- */

/* Every dmahal device sits on PCI; an undefined interface type resolves to it, as Windows
 * resolves it from the PDO. */
static bool desc_on_pci(const DEVICE_DESCRIPTION *dd)
{
    return dd->InterfaceType == PCIBus || dd->InterfaceType == InterfaceTypeUndefined;
}

static unsigned desc_addr_bits(const DEVICE_DESCRIPTION *dd)
{
    if (dd->Version == DEVICE_DESCRIPTION_VERSION3)
        return dd->DmaAddressWidth;
    if (dd->Dma64BitAddresses)
        return 64;
    if (dd->Dma32BitAddresses)
        return 32;
    /* Windows takes a PCI scatter/gather master to drive 32 bits even if the flag is unset. */
    if (dd->ScatterGather && desc_on_pci(dd))
        return 32;
    return 24;
}

/* Fills @desc from @dd and returns the map register count Windows would give. */
static ULONG desc_translate(const DEVICE_DESCRIPTION *dd, size_t page, struct dmahal_desc *desc)
{
    size_t max_len = dd->MaximumLength & WDM_MAX_LENGTH_MASK;
    ULONG nregs = (ULONG)((max_len + page - 1) / page + 1);

    /* Only a scatter/gather master on PCI or EISA escapes the HAL's 64 KiB limit. */
    if (!(dd->ScatterGather && (desc_on_pci(dd) || dd->InterfaceType == Eisa)) &&
        nregs > WDM_MAX_MAP_REGISTERS_NO_SG)
        nregs = WDM_MAX_MAP_REGISTERS_NO_SG;
    *desc = (struct dmahal_desc){
        .addr_bits = desc_addr_bits(dd),
        .max_segments = dd->ScatterGather ? nregs : 1,
        /* What nregs map registers span, so that dmahal counts as many. */
        .max_transfer = max_len ? (nregs - 1) * page : page,
        .coherent = false, /* the platform decides */
    };
    if (max_len && max_len < desc->max_transfer)
        desc->max_transfer = max_len;
    return nregs;
}

PDMA_ADAPTER IoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject,
                             PDEVICE_DESCRIPTION DeviceDescription, PULONG NumberOfMapRegisters)
{
    struct wdm_device *dev = (struct wdm_device *)PhysicalDeviceObject;
    const DEVICE_DESCRIPTION *dd = DeviceDescription;
    struct dmahal_desc desc;
    struct wdm_adapter *w;
    size_t page;
    ULONG nregs;

    if (!NumberOfMapRegisters)
        return NULL;
    *NumberOfMapRegisters = 0;
    if (!dev || !dd || dev->obj.Type != IO_TYPE_DEVICE || !dev->obj.DmahalDevice ||
        dmahal_device_context(dev->obj.DmahalDevice, &device_key) != dev)
        return NULL;
    if (dd->Version > DEVICE_DESCRIPTION_VERSION3 || !dd->Master || dd->Reserved1)
        return NULL;
    if (dd->Version == DEVICE_DESCRIPTION_VERSION3 &&
        (dd->DmaAddressWidth == 0 || dd->DmaAddressWidth > 64))
        return NULL;
    page = dmahal_platform_page_size(dmahal_device_platform(dev->obj.DmahalDevice));
    if (!page)
        return NULL;
    nregs = desc_translate(dd, page, &desc);

    w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    if (dmahal_adapter_get(dev->obj.DmahalDevice, &desc, &w->a))
        goto err_alloc;
    w->hdr.Version = dd->Version <= DEVICE_DESCRIPTION_VERSION1 ? 1 : (USHORT)dd->Version;
    w->hdr.Size = sizeof(w->hdr);
    /* Windows' member is not const; the table is, and stays read-only. */
    w->hdr.DmaOperations = (PDMA_OPERATIONS)&wdm_ops;
    w->magic = WDM_ADAPTER_MAGIC;
    w->dev = dev;
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_lock(&dev->lock);
    w->next = dev->adapters;
    if (dev->adapters)
        dev->adapters->prev = w;
    dev->adapters = w;
    pthread_mutex_unlock(&dev->lock);
    *NumberOfMapRegisters = nregs;
    return &w->hdr;

err_alloc:
    free(w);
    return NULL;
}

struct dmahal_adapter *dmahal_wdm_adapter(PDMA_ADAPTER DmaAdapter)
{
    struct wdm_adapter *w = wdm_adapter_of(DmaAdapter);

    return w ? w->a : NULL;
}
