/* SPDX-License-Identifier: MIT */
/*
 * wdf.c - KMDF's DMA objects (wdf.h) over the Windows names of wdm.h only: an enabler is a
 * DMA_ADAPTER, a common buffer is AllocateCommonBuffer, a transaction maps its transfers with
 * GetScatterGatherList, as KMDF's own do on Windows.
 */
#include "core/framed.h"

#include <dmahal/wdf.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define MAGIC_DEVICE  0x57444644u /* "WDFD" */
#define MAGIC_ENABLER 0x57444645u /* "WDFE" */
#define MAGIC_BUFFER  0x57444642u /* "WDFB" */
#define MAGIC_TX      0x57444654u /* "WDFT" */

/* States of a transaction. */
enum tx_state {
    TX_IDLE,    /* created or released */
    TX_READY,   /* initialised */
    TX_RUNNING, /* executing: a transfer is mapped or being mapped */
    TX_DONE,    /* complete; Release makes it IDLE */
};

struct wdf_enabler;

struct wdf_device {
    uint32_t magic;
    struct dmahal_device *d;
    PDEVICE_OBJECT pdo;
    ULONG align;          /* alignment requirement, minus one */
    pthread_mutex_t lock; /* guards enablers */
    struct wdf_enabler *enablers;
};

struct wdf_buffer {
    uint32_t magic;
    struct wdf_enabler *en;
    struct wdf_buffer *next;
    PVOID va;            /* as allocated */
    PHYSICAL_ADDRESS la; /* as allocated */
    ULONG alloc_len;     /* as allocated */
    size_t off;          /* to the aligned start */
    size_t len;          /* as asked */
};

struct wdf_tx {
    uint32_t magic;
    enum tx_state state;
    struct wdf_enabler *en;
    struct wdf_tx *next;
    PFN_WDF_PROGRAM_DMA program;
    WDF_DMA_DIRECTION dir;
    PMDL mdl;
    char *va;       /* where the transaction starts, in mdl's buffer */
    size_t len;     /* the transaction's bytes */
    size_t done;    /* bytes of the completed transfers */
    size_t cur;     /* the current transfer's bytes */
    size_t max_len; /* this transaction's limit; 0: the enabler's */
    bool single;    /* must complete in one transfer */
    WDFCONTEXT ctx;
    PSCATTER_GATHER_LIST sg; /* the current transfer's list, while mapped */
    NTSTATUS status;         /* of the mapping that the list callback saw */
};

struct wdf_enabler {
    uint32_t magic;
    struct wdf_device *dev;
    struct wdf_enabler *next;
    PDMA_ADAPTER a;
    const DMA_OPERATIONS *ops;
    size_t max_len;
    size_t max_frags;
    bool single; /* WDF_DMA_ENABLER_CONFIG_REQUIRE_SINGLE_TRANSFER */
    struct wdf_buffer *bufs;
    struct wdf_tx *txs;
};

static const char device_key = 0;
static pthread_mutex_t device_create_lock = PTHREAD_MUTEX_INITIALIZER;

static struct wdf_device *device_of(WDFDEVICE h)
{
    struct wdf_device *dev = (struct wdf_device *)h;

    return dev && dev->magic == MAGIC_DEVICE ? dev : NULL;
}

static struct wdf_enabler *enabler_of(WDFDMAENABLER h)
{
    struct wdf_enabler *en = (struct wdf_enabler *)h;

    return en && en->magic == MAGIC_ENABLER ? en : NULL;
}

static struct wdf_buffer *buffer_of(WDFCOMMONBUFFER h)
{
    struct wdf_buffer *b = (struct wdf_buffer *)h;

    return b && b->magic == MAGIC_BUFFER ? b : NULL;
}

static struct wdf_tx *tx_of(WDFDMATRANSACTION h)
{
    struct wdf_tx *tx = (struct wdf_tx *)h;

    return tx && tx->magic == MAGIC_TX ? tx : NULL;
}

/* ---- the device ---------------------------------------------------------------------------- */

/* Frees the enabler's objects and the enabler; its adapter is the caller's to put or not. */
static void enabler_free(struct wdf_enabler *en)
{
    while (en->bufs) {
        struct wdf_buffer *b = en->bufs;

        en->bufs = b->next;
        b->magic = 0;
        free(b);
    }
    while (en->txs) {
        struct wdf_tx *tx = en->txs;

        en->txs = tx->next;
        tx->magic = 0;
        free(tx);
    }
    en->magic = 0;
    free(en);
}

/* The dmahal device closes: dmahal puts its adapters (and frees their buffers) itself. */
static void device_release(void *ctx)
{
    struct wdf_device *dev = ctx;

    while (dev->enablers) {
        struct wdf_enabler *en = dev->enablers;

        dev->enablers = en->next;
        enabler_free(en);
    }
    dev->magic = 0;
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

WDFDEVICE dmahal_wdf_device(struct dmahal_device *d)
{
    struct wdf_device *dev;
    PDEVICE_OBJECT pdo;

    if (!d || !(pdo = dmahal_wdm_device(d)))
        return NULL;
    pthread_mutex_lock(&device_create_lock);
    dev = dmahal_device_context(d, &device_key);
    if (dev)
        goto out;
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        goto out;
    dev->magic = MAGIC_DEVICE;
    dev->d = d;
    dev->pdo = pdo;
    pthread_mutex_init(&dev->lock, NULL);
    if (dmahal_device_set_context(d, &device_key, dev, device_release)) {
        pthread_mutex_destroy(&dev->lock);
        free(dev);
        dev = NULL;
    }
out:
    pthread_mutex_unlock(&device_create_lock);
    return (WDFDEVICE)dev;
}

PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE Device)
{
    struct wdf_device *dev = device_of(Device);

    return dev ? dev->pdo : NULL;
}

PDEVICE_OBJECT WdfDeviceWdmGetPhysicalDevice(WDFDEVICE Device)
{
    return WdfDeviceWdmGetDeviceObject(Device);
}

VOID WdfDeviceSetAlignmentRequirement(WDFDEVICE Device, ULONG AlignmentRequirement)
{
    struct wdf_device *dev = device_of(Device);

    if (dev && (AlignmentRequirement & (AlignmentRequirement + 1)) == 0)
        dev->align = AlignmentRequirement;
}

ULONG WdfDeviceGetAlignmentRequirement(WDFDEVICE Device)
{
    struct wdf_device *dev = device_of(Device);

    return dev ? dev->align : 0;
}

/* ---- enablers ------------------------------------------------------------------------------- */

/* The description of a profile; false for one dmahal cannot serve. */
static bool profile_desc(WDF_DMA_PROFILE profile, DEVICE_DESCRIPTION *dd, ULONG *bits)
{
    switch (profile) {
    case WdfDmaProfilePacket:
        *bits = 32;
        break;
    case WdfDmaProfileScatterGather:
    case WdfDmaProfileScatterGatherDuplex:
        dd->ScatterGather = TRUE;
        *bits = 32;
        break;
    case WdfDmaProfilePacket64:
        *bits = 64;
        break;
    case WdfDmaProfileScatterGather64:
    case WdfDmaProfileScatterGather64Duplex:
        dd->ScatterGather = TRUE;
        *bits = 64;
        break;
    default:
        return false;
    }
    dd->Dma32BitAddresses = *bits == 32;
    dd->Dma64BitAddresses = *bits == 64;
    return true;
}

/* Checks @cfg and fills @dd from it. */
static NTSTATUS config_desc(const WDF_DMA_ENABLER_CONFIG *cfg, DEVICE_DESCRIPTION *dd)
{
    ULONG bits = 0, version = cfg->WdmDmaVersionOverride;

    if (cfg->Size != sizeof(*cfg) || !cfg->MaximumLength || cfg->MaximumLength > MAXULONG)
        return STATUS_INVALID_PARAMETER;
    if (cfg->Profile == WdfDmaProfileSystem || cfg->Profile == WdfDmaProfileSystemDuplex)
        return STATUS_NOT_SUPPORTED;
    RtlZeroMemory(dd, sizeof(*dd));
    if (!profile_desc(cfg->Profile, dd, &bits))
        return STATUS_INVALID_PARAMETER;
    if (cfg->AddressWidthOverride > bits || (version && version != 2 && version != 3) ||
        (cfg->Flags & ~(ULONG)WDF_DMA_ENABLER_CONFIG_REQUIRE_SINGLE_TRANSFER))
        return STATUS_INVALID_PARAMETER;
    /* Only version 3 carries an address width other than 32 or 64. */
    if (cfg->AddressWidthOverride)
        version = 3;
    dd->Version = version == 3 ? DEVICE_DESCRIPTION_VERSION3 : DEVICE_DESCRIPTION_VERSION2;
    dd->DmaAddressWidth = cfg->AddressWidthOverride ? cfg->AddressWidthOverride : bits;
    dd->Master = TRUE;
    dd->InterfaceType = PCIBus;
    dd->MaximumLength = (ULONG)cfg->MaximumLength;
    return STATUS_SUCCESS;
}

NTSTATUS WdfDmaEnablerCreate(WDFDEVICE Device, PWDF_DMA_ENABLER_CONFIG Config,
                             PWDF_OBJECT_ATTRIBUTES Attributes, WDFDMAENABLER *DmaEnablerHandle)
{
    struct wdf_device *dev = device_of(Device);
    struct wdf_enabler *en;
    DEVICE_DESCRIPTION dd;
    ULONG nregs;
    NTSTATUS st;

    (void)Attributes;
    if (DmaEnablerHandle)
        *DmaEnablerHandle = NULL;
    if (!dev || !Config || !DmaEnablerHandle)
        return STATUS_INVALID_PARAMETER;
    st = config_desc(Config, &dd);
    if (st)
        return st;
    en = calloc(1, sizeof(*en));
    if (!en)
        return STATUS_INSUFFICIENT_RESOURCES;
    en->a = IoGetDmaAdapter(dev->pdo, &dd, &nregs);
    if (!en->a) {
        free(en);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    en->magic = MAGIC_ENABLER;
    en->dev = dev;
    en->ops = en->a->DmaOperations;
    en->max_len = Config->MaximumLength;
    en->max_frags = dd.ScatterGather ? WDF_DMA_ENABLER_UNLIMITED_FRAGMENTS : 1;
    en->single = (Config->Flags & WDF_DMA_ENABLER_CONFIG_REQUIRE_SINGLE_TRANSFER) != 0;
    pthread_mutex_lock(&dev->lock);
    en->next = dev->enablers;
    dev->enablers = en;
    pthread_mutex_unlock(&dev->lock);
    *DmaEnablerHandle = (WDFDMAENABLER)en;
    return STATUS_SUCCESS;
}

VOID WdfDmaEnablerSetMaximumScatterGatherElements(WDFDMAENABLER DmaEnabler, size_t MaximumFragments)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);

    if (en && MaximumFragments)
        en->max_frags = MaximumFragments;
}

size_t WdfDmaEnablerGetMaximumScatterGatherElements(WDFDMAENABLER DmaEnabler)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);

    return en ? en->max_frags : 0;
}

size_t WdfDmaEnablerGetMaximumLength(WDFDMAENABLER DmaEnabler)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);

    return en ? en->max_len : 0;
}

PDMA_ADAPTER WdfDmaEnablerWdmGetDmaAdapter(WDFDMAENABLER DmaEnabler, WDF_DMA_DIRECTION DmaDirection)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);

    (void)DmaDirection;
    return en ? en->a : NULL;
}

/* ---- common buffers ------------------------------------------------------------------------- */

static NTSTATUS buffer_create(struct wdf_enabler *en, size_t len, ULONG align, WDFCOMMONBUFFER *out)
{
    struct wdf_buffer *b;
    size_t extra = align >= PAGE_SIZE ? align : 0; /* below a page: met already */
    uint64_t la;

    if (len > MAXULONG - extra)
        return STATUS_INVALID_PARAMETER;
    b = calloc(1, sizeof(*b));
    if (!b)
        return STATUS_INSUFFICIENT_RESOURCES;
    b->alloc_len = (ULONG)(len + extra);
    b->va = en->ops->AllocateCommonBuffer(en->a, b->alloc_len, &b->la, FALSE);
    if (!b->va) {
        free(b);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    la = (uint64_t)b->la.QuadPart;
    b->off = (size_t)(((la + align) & ~(uint64_t)align) - la);
    b->len = len;
    b->en = en;
    b->magic = MAGIC_BUFFER;
    b->next = en->bufs;
    en->bufs = b;
    *out = (WDFCOMMONBUFFER)b;
    return STATUS_SUCCESS;
}

NTSTATUS WdfCommonBufferCreate(WDFDMAENABLER DmaEnabler, size_t Length,
                               PWDF_OBJECT_ATTRIBUTES Attributes, WDFCOMMONBUFFER *CommonBuffer)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);

    (void)Attributes;
    if (CommonBuffer)
        *CommonBuffer = NULL;
    if (!en || !Length || !CommonBuffer)
        return STATUS_INVALID_PARAMETER;
    return buffer_create(en, Length, en->dev->align, CommonBuffer);
}

NTSTATUS WdfCommonBufferCreateWithConfig(WDFDMAENABLER DmaEnabler, size_t Length,
                                         PWDF_COMMON_BUFFER_CONFIG Config,
                                         PWDF_OBJECT_ATTRIBUTES Attributes,
                                         WDFCOMMONBUFFER *CommonBuffer)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);
    ULONG align;

    (void)Attributes;
    if (CommonBuffer)
        *CommonBuffer = NULL;
    if (!en || !Length || !CommonBuffer || !Config || Config->Size != sizeof(*Config))
        return STATUS_INVALID_PARAMETER;
    align = Config->AlignmentRequirement;
    if (align & (align + 1))
        return STATUS_INVALID_PARAMETER;
    if (en->dev->align > align)
        align = en->dev->align;
    return buffer_create(en, Length, align, CommonBuffer);
}

PVOID WdfCommonBufferGetAlignedVirtualAddress(WDFCOMMONBUFFER CommonBuffer)
{
    struct wdf_buffer *b = buffer_of(CommonBuffer);

    return b ? (char *)b->va + b->off : NULL;
}

PHYSICAL_ADDRESS WdfCommonBufferGetAlignedLogicalAddress(WDFCOMMONBUFFER CommonBuffer)
{
    struct wdf_buffer *b = buffer_of(CommonBuffer);
    PHYSICAL_ADDRESS la;

    la.QuadPart = b ? b->la.QuadPart + (LONGLONG)b->off : 0;
    return la;
}

size_t WdfCommonBufferGetLength(WDFCOMMONBUFFER CommonBuffer)
{
    struct wdf_buffer *b = buffer_of(CommonBuffer);

    return b ? b->len : 0;
}

static void buffer_delete(struct wdf_buffer *b)
{
    struct wdf_enabler *en = b->en;
    struct wdf_buffer **pp;

    for (pp = &en->bufs; *pp && *pp != b; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = b->next;
    en->ops->FreeCommonBuffer(en->a, b->alloc_len, b->la, b->va, FALSE);
    b->magic = 0;
    free(b);
}

/* ---- transactions --------------------------------------------------------------------------- */

NTSTATUS WdfDmaTransactionCreate(WDFDMAENABLER DmaEnabler, PWDF_OBJECT_ATTRIBUTES Attributes,
                                 WDFDMATRANSACTION *DmaTransaction)
{
    struct wdf_enabler *en = enabler_of(DmaEnabler);
    struct wdf_tx *tx;

    (void)Attributes;
    if (DmaTransaction)
        *DmaTransaction = NULL;
    if (!en || !DmaTransaction)
        return STATUS_INVALID_PARAMETER;
    tx = calloc(1, sizeof(*tx));
    if (!tx)
        return STATUS_INSUFFICIENT_RESOURCES;
    tx->magic = MAGIC_TX;
    tx->state = TX_IDLE;
    tx->en = en;
    tx->single = en->single;
    tx->next = en->txs;
    en->txs = tx;
    *DmaTransaction = (WDFDMATRANSACTION)tx;
    return STATUS_SUCCESS;
}

/* The longest transfer of @tx. */
static size_t tx_max(const struct wdf_tx *tx)
{
    return tx->max_len && tx->max_len < tx->en->max_len ? tx->max_len : tx->en->max_len;
}

/* The MDL and address @pos bytes into the transaction; false past the chain's end. */
static bool tx_at(const struct wdf_tx *tx, size_t pos, PMDL *m, char **va)
{
    size_t off = (size_t)(tx->va - (char *)MmGetMdlVirtualAddress(tx->mdl)) + pos;

    for (PMDL x = tx->mdl; x; x = x->Next) {
        if (off < x->ByteCount) {
            *m = x;
            *va = (char *)MmGetMdlVirtualAddress(x) + off;
            return true;
        }
        off -= x->ByteCount;
    }
    return false;
}

NTSTATUS WdfDmaTransactionInitialize(WDFDMATRANSACTION DmaTransaction,
                                     PFN_WDF_PROGRAM_DMA EvtProgramDmaFunction,
                                     WDF_DMA_DIRECTION DmaDirection, PMDL Mdl, PVOID VirtualAddress,
                                     size_t Length)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);
    char *start, *va = VirtualAddress;
    PMDL m;

    if (!tx || !EvtProgramDmaFunction || !Mdl || !va || !Length || Length > MAXULONG)
        return STATUS_INVALID_PARAMETER;
    if (tx->state != TX_IDLE)
        return STATUS_INVALID_DEVICE_REQUEST;
    start = MmGetMdlVirtualAddress(Mdl);
    if (va < start || va >= start + Mdl->ByteCount)
        return STATUS_INVALID_PARAMETER;
    tx->mdl = Mdl;
    tx->va = va;
    /* The chain must hold the whole transaction. */
    if (!tx_at(tx, Length - 1, &m, &va))
        return STATUS_INVALID_PARAMETER;
    if (tx->single && Length > tx_max(tx))
        return STATUS_WDF_TOO_FRAGMENTED;
    tx->program = EvtProgramDmaFunction;
    tx->dir = DmaDirection;
    tx->len = Length;
    tx->done = 0;
    tx->cur = 0;
    tx->state = TX_READY;
    return STATUS_SUCCESS;
}

/* GetScatterGatherList's routine: the current transfer is mapped. */
static VOID on_list(PDEVICE_OBJECT DeviceObject, PIRP Irp, PSCATTER_GATHER_LIST ScatterGather,
                    PVOID Context)
{
    struct wdf_tx *tx = Context;
    struct wdf_enabler *en = tx->en;

    (void)DeviceObject;
    (void)Irp;
    if (ScatterGather->NumberOfElements > en->max_frags) {
        en->ops->PutScatterGatherList(en->a, ScatterGather, (BOOLEAN)tx->dir);
        tx->status = STATUS_WDF_TOO_FRAGMENTED;
        tx->state = TX_DONE;
        return;
    }
    tx->sg = ScatterGather;
    tx->program((WDFDMATRANSACTION)tx, (WDFDEVICE)en->dev, tx->ctx, tx->dir, ScatterGather);
}

/* Maps the transfer from tx->done on; its routine programs the device. */
static NTSTATUS tx_start(struct wdf_tx *tx)
{
    struct wdf_enabler *en = tx->en;
    size_t left = tx->len - tx->done, max = tx_max(tx);
    NTSTATUS st;
    char *va;
    PMDL m;

    tx->cur = left < max ? left : max;
    if (!tx_at(tx, tx->done, &m, &va))
        return STATUS_INVALID_PARAMETER;
    tx->status = STATUS_SUCCESS;
    tx->state = TX_RUNNING;
    st = en->ops->GetScatterGatherList(en->a, en->dev->pdo, m, va, (ULONG)tx->cur, on_list, tx,
                                       (BOOLEAN)tx->dir);
    if (st == STATUS_SUCCESS)
        st = tx->status;
    if (st != STATUS_SUCCESS)
        tx->state = TX_DONE;
    return st;
}

NTSTATUS WdfDmaTransactionExecute(WDFDMATRANSACTION DmaTransaction, WDFCONTEXT Context)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);
    NTSTATUS st;

    if (!tx)
        return STATUS_INVALID_PARAMETER;
    if (tx->state != TX_READY)
        return STATUS_INVALID_DEVICE_REQUEST;
    tx->ctx = Context;
    st = tx_start(tx);
    if (st != STATUS_SUCCESS)
        tx->state = TX_READY; /* nothing stays mapped: the driver may fail or retry */
    return st;
}

/* Ends the current transfer after @moved of its bytes; @final ends the transaction too. */
static BOOLEAN tx_completed(struct wdf_tx *tx, size_t moved, bool final, NTSTATUS *Status)
{
    struct wdf_enabler *en = tx->en;
    NTSTATUS st = STATUS_SUCCESS;

    if (tx->state != TX_RUNNING || !tx->sg) {
        if (Status)
            *Status = STATUS_INVALID_DEVICE_REQUEST;
        return FALSE;
    }
    en->ops->PutScatterGatherList(en->a, tx->sg, (BOOLEAN)tx->dir);
    tx->sg = NULL;
    tx->done += moved < tx->cur ? moved : tx->cur;
    if (!final && tx->done < tx->len) {
        st = tx_start(tx);
        if (st == STATUS_SUCCESS) {
            if (Status)
                *Status = STATUS_MORE_PROCESSING_REQUIRED;
            return FALSE;
        }
    }
    tx->state = TX_DONE;
    if (Status)
        *Status = st;
    return TRUE;
}

BOOLEAN WdfDmaTransactionDmaCompleted(WDFDMATRANSACTION DmaTransaction, NTSTATUS *Status)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    if (!tx) {
        if (Status)
            *Status = STATUS_INVALID_PARAMETER;
        return FALSE;
    }
    return tx_completed(tx, tx->cur, false, Status);
}

BOOLEAN WdfDmaTransactionDmaCompletedWithLength(WDFDMATRANSACTION DmaTransaction,
                                                size_t TransferredLength, NTSTATUS *Status)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    if (!tx) {
        if (Status)
            *Status = STATUS_INVALID_PARAMETER;
        return FALSE;
    }
    return tx_completed(tx, TransferredLength, false, Status);
}

BOOLEAN WdfDmaTransactionDmaCompletedFinal(WDFDMATRANSACTION DmaTransaction,
                                           size_t FinalTransferredLength, NTSTATUS *Status)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    if (!tx) {
        if (Status)
            *Status = STATUS_INVALID_PARAMETER;
        return FALSE;
    }
    return tx_completed(tx, FinalTransferredLength, true, Status);
}

size_t WdfDmaTransactionGetBytesTransferred(WDFDMATRANSACTION DmaTransaction)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    return tx ? tx->done : 0;
}

size_t WdfDmaTransactionGetCurrentDmaTransferLength(WDFDMATRANSACTION DmaTransaction)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    return tx ? tx->cur : 0;
}

WDFDEVICE WdfDmaTransactionGetDevice(WDFDMATRANSACTION DmaTransaction)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    return tx ? (WDFDEVICE)tx->en->dev : NULL;
}

VOID WdfDmaTransactionSetMaximumLength(WDFDMATRANSACTION DmaTransaction, size_t MaximumLength)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    if (tx && MaximumLength)
        tx->max_len = MaximumLength;
}

VOID WdfDmaTransactionSetSingleTransferRequirement(WDFDMATRANSACTION DmaTransaction,
                                                   BOOLEAN RequireSingleTransfer)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);

    if (tx)
        tx->single = RequireSingleTransfer != FALSE;
}

NTSTATUS WdfDmaTransactionRelease(WDFDMATRANSACTION DmaTransaction)
{
    struct wdf_tx *tx = tx_of(DmaTransaction);
    struct wdf_enabler *en;

    if (!tx)
        return STATUS_INVALID_PARAMETER;
    en = tx->en;
    if (tx->sg)
        en->ops->PutScatterGatherList(en->a, tx->sg, (BOOLEAN)tx->dir);
    tx->sg = NULL;
    tx->state = TX_IDLE;
    tx->max_len = 0;
    tx->single = en->single;
    tx->done = tx->cur = tx->len = 0;
    return STATUS_SUCCESS;
}

static void tx_delete(struct wdf_tx *tx)
{
    struct wdf_enabler *en = tx->en;
    struct wdf_tx **pp;

    WdfDmaTransactionRelease((WDFDMATRANSACTION)tx);
    for (pp = &en->txs; *pp && *pp != tx; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = tx->next;
    tx->magic = 0;
    free(tx);
}

static void enabler_delete(struct wdf_enabler *en)
{
    struct wdf_device *dev = en->dev;
    struct wdf_enabler **pp;

    while (en->txs)
        tx_delete(en->txs);
    while (en->bufs)
        buffer_delete(en->bufs);
    pthread_mutex_lock(&dev->lock);
    for (pp = &dev->enablers; *pp && *pp != en; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = en->next;
    pthread_mutex_unlock(&dev->lock);
    en->ops->PutDmaAdapter(en->a);
    enabler_free(en);
}

VOID WdfObjectDelete(WDFOBJECT Object)
{
    const uint32_t *magic = (const uint32_t *)Object;

    if (!magic)
        return;
    switch (*magic) {
    case MAGIC_TX:
        tx_delete((struct wdf_tx *)Object);
        break;
    case MAGIC_BUFFER:
        buffer_delete((struct wdf_buffer *)Object);
        break;
    case MAGIC_ENABLER:
        enabler_delete((struct wdf_enabler *)Object);
        break;
    default:
        break;
    }
}
