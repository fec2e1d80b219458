/* SPDX-License-Identifier: MIT */
/*
 * irq.c - the PCI side of the simulated devices: each model's configuration space (a type-0
 * header built from what the model declares, with its MSI and MSI-X capabilities), and its
 * interrupts, delivered to the eventfds the core hands over, with VFIO's semantics: INTx
 * fires when the line is asserted and unmasked, then masks itself until unmasked; MSI and
 * MSI-X messages fire once each.
 */
#include "platform/sim/sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFG_STATUS_INTX 0x0008u /* status: the INTx line is asserted */
#define CFG_STATUS_CAPS 0x0010u /* status: there is a capability list */
#define CMD_WRITABLE                                                                               \
    (DMAHAL_PCI_COMMAND_MEMORY | DMAHAL_PCI_COMMAND_MASTER | DMAHAL_PCI_COMMAND_INTX_OFF)
#define MSI_CTRL_ENABLE  0x0001u
#define MSI_CTRL_64BIT   0x0080u
#define MSIX_CTRL_ENABLE 0x8000u
#define BAR_BASE         UINT64_C(0xc0000000) /* where the platform's "firmware" places BARs */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static struct sim_dev *sim_dev_of(struct dmahal_device *d)
{
    if (!d || dmahal__dev_plat(d)->ops != &dmahal__sim_ops)
        return NULL;
    return dmahal__dev(d)->priv;
}

static unsigned log2u(unsigned v)
{
    return v ? 31u - (unsigned)__builtin_clz(v) : 0;
}

/* The header as a PCI device's firmware would leave it: IDs, BARs assigned, command 0. */
void dmahal__sim_pci_init(struct sim_dev *sd)
{
    const struct dmahal_model *m = sd->model;
    uint8_t *c = sd->pci.cfg;
    unsigned next = 0x40, *last = NULL;
    uint64_t at = BAR_BASE;

    pthread_mutex_init(&sd->pci.lock, NULL);
    put16(c + 0x00, m->vendor_id || m->device_id ? m->vendor_id : 0x1234);
    put16(c + 0x02, m->vendor_id || m->device_id ? m->device_id : 0xffff);
    c[0x08] = m->revision;
    c[0x09] = (uint8_t)m->class_code;
    c[0x0a] = (uint8_t)(m->class_code >> 8);
    c[0x0b] = (uint8_t)(m->class_code >> 16);
    put16(c + 0x2c, m->subsystem_vendor_id || m->subsystem_id ? m->subsystem_vendor_id : 0x1af4);
    put16(c + 0x2e, m->subsystem_vendor_id || m->subsystem_id ? m->subsystem_id : 0x1100);
    c[0x3d] = m->intx ? 1 : 0; /* INTA# */
    for (unsigned i = 0; i < DMAHAL__BARS; i++) {
        uint64_t size = m->bar_size[i];

        if (!size)
            continue;
        at = DMAHAL__ALIGN_UP(at, size < 4096 ? 4096 : size);
        sd->pci.bar_addr[i] = at;
        at += size;
    }
    if (m->msi_vectors) {
        sd->pci.msi_cap = next;
        c[next] = DMAHAL_PCI_CAP_ID_MSI;
        put16(c + next + 2, (uint16_t)(MSI_CTRL_64BIT | log2u(m->msi_vectors) << 1));
        last = &sd->pci.msi_cap;
        next += 0x10;
    }
    if (m->msix_vectors) {
        sd->pci.msix_cap = next;
        if (last)
            c[*last + 1] = (uint8_t)next;
        c[next] = DMAHAL_PCI_CAP_ID_MSIX;
        put16(c + next + 2, (uint16_t)(m->msix_vectors - 1));
        put32(c + next + 4, m->msix_table_off | (m->msix_bar & 7));
        put32(c + next + 8, m->msix_pba_off | (m->msix_bar & 7));
        last = &sd->pci.msix_cap;
    }
    if (last) {
        c[0x34] = 0x40;
        put16(c + 0x06, CFG_STATUS_CAPS);
    }
}

void dmahal__sim_pci_fini(struct sim_dev *sd)
{
    pthread_mutex_destroy(&sd->pci.lock);
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    /* The counter is drained by the driver; it cannot reach its maximum. */
    ssize_t n = write(fd, &one, sizeof(one));

    (void)n;
}

/* INTx as VFIO delivers it: an asserted, unmasked, enabled line fires once and masks. */
static void intx_eval(struct sim_pci *pci)
{
    if (pci->irq_type == DMAHAL_IRQ_INTX && pci->line && !pci->masked &&
        !(get16(pci->cfg + DMAHAL_PCI_COMMAND) & DMAHAL_PCI_COMMAND_INTX_OFF)) {
        pci->masked = true;
        signal_fd(pci->irq_fds[0]);
    }
}

/* ---- the model's side (device.h) --------------------------------------------------------- */

void dmahal_irq_set(struct dmahal_device *d, bool asserted)
{
    struct sim_dev *sd = sim_dev_of(d);

    if (!sd)
        return;
    pthread_mutex_lock(&sd->pci.lock);
    sd->pci.line = asserted;
    intx_eval(&sd->pci);
    pthread_mutex_unlock(&sd->pci.lock);
}

int dmahal_irq_pending(const struct dmahal_device *d)
{
    struct sim_dev *sd;
    int line;

    if (!d)
        return -EINVAL;
    sd = sim_dev_of((struct dmahal_device *)d);
    if (!sd)
        return 0;
    pthread_mutex_lock(&sd->pci.lock);
    line = sd->pci.line;
    pthread_mutex_unlock(&sd->pci.lock);
    return line;
}

int dmahal_irq_raise(struct dmahal_device *d, unsigned vector)
{
    struct sim_dev *sd = sim_dev_of(d);
    unsigned most;
    int rc = 0;

    if (!d)
        return -EINVAL;
    if (!sd)
        return -ENOTSUP;
    most = sd->model->msi_vectors > sd->model->msix_vectors ? sd->model->msi_vectors
                                                            : sd->model->msix_vectors;
    if (vector >= most)
        return -EINVAL;
    pthread_mutex_lock(&sd->pci.lock);
    if ((sd->pci.irq_type == DMAHAL_IRQ_MSI || sd->pci.irq_type == DMAHAL_IRQ_MSIX) &&
        vector < sd->pci.irq_nvec) {
        signal_fd(sd->pci.irq_fds[vector]);
        rc = 1;
    }
    pthread_mutex_unlock(&sd->pci.lock);
    return rc;
}

int dmahal_model_bus_master(struct dmahal_device *d)
{
    struct sim_dev *sd = sim_dev_of(d);

    if (!d)
        return -EINVAL;
    if (!sd)
        return -ENOTSUP;
    return atomic_load_explicit(&sd->pci.master, memory_order_acquire);
}

/* ---- interrupts (the platform's ops) ----------------------------------------------------- */

unsigned dmahal__sim_irq_count(struct dmahal_device *d, enum dmahal_irq_type type)
{
    const struct dmahal_model *m = ((struct sim_dev *)dmahal__dev(d)->priv)->model;

    switch (type) {
    case DMAHAL_IRQ_INTX:
        return m->intx ? 1 : 0;
    case DMAHAL_IRQ_MSI:
        return m->msi_vectors > 32 ? 32 : m->msi_vectors;
    case DMAHAL_IRQ_MSIX:
        return m->msix_vectors > 2048 ? 2048 : m->msix_vectors;
    default:
        return 0;
    }
}

/* The enable bits of the capabilities follow what the driver enabled, as VFIO's do. */
static void caps_update(struct sim_pci *pci)
{
    uint8_t *c = pci->cfg;

    if (pci->msi_cap) {
        uint16_t ctl = get16(c + pci->msi_cap + 2) & ~(uint16_t)(MSI_CTRL_ENABLE | 0x70);

        if (pci->irq_type == DMAHAL_IRQ_MSI)
            ctl |= (uint16_t)(MSI_CTRL_ENABLE | log2u(pci->irq_nvec) << 4);
        put16(c + pci->msi_cap + 2, ctl);
    }
    if (pci->msix_cap) {
        uint16_t ctl = get16(c + pci->msix_cap + 2) & ~(uint16_t)MSIX_CTRL_ENABLE;

        if (pci->irq_type == DMAHAL_IRQ_MSIX)
            ctl |= MSIX_CTRL_ENABLE;
        put16(c + pci->msix_cap + 2, ctl);
    }
}

/*
 * What the host's kernel does to a device's MSI-X table when it enables or disables the
 * vectors (VFIO's MSI-X setup, under which the table is the kernel's and not the driver's):
 * each vector's Vector Control cleared (@mask false) or set, through the model's own register
 * write, so that a message the model held back in its pending bits goes out.
 */
static void msix_table_mask(struct dmahal_device *d, struct sim_dev *sd, unsigned nvec, bool mask)
{
    const struct dmahal_model *m = sd->model;

    if (!m->mmio_write || !m->msix_vectors)
        return;
    for (unsigned v = 0; v < nvec && v < m->msix_vectors; v++)
        m->mmio_write(d, sd->state, m->msix_bar, (uint64_t)m->msix_table_off + 16u * v + 12u,
                      mask ? 1u : 0u, 4);
}

int dmahal__sim_irq_enable(struct dmahal_device *d, enum dmahal_irq_type type, unsigned nvec,
                           int *fds)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    struct sim_pci *pci = &sd->pci;

    pthread_mutex_lock(&pci->lock);
    pci->irq_type = type;
    pci->irq_nvec = nvec;
    pci->irq_fds = fds;
    pci->masked = false;
    caps_update(pci);
    /* A line already asserted fires at once: it is a level. */
    intx_eval(pci);
    pthread_mutex_unlock(&pci->lock);
    if (type == DMAHAL_IRQ_MSIX)
        msix_table_mask(d, sd, nvec, false);
    return 0;
}

void dmahal__sim_irq_disable(struct dmahal_device *d)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    struct sim_pci *pci = &sd->pci;

    if (pci->irq_type == DMAHAL_IRQ_MSIX)
        msix_table_mask(d, sd, pci->irq_nvec, true);
    pthread_mutex_lock(&pci->lock);
    pci->irq_type = 0;
    pci->irq_nvec = 0;
    pci->irq_fds = NULL;
    pci->masked = false;
    caps_update(pci);
    pthread_mutex_unlock(&pci->lock);
}

int dmahal__sim_irq_unmask(struct dmahal_device *d, unsigned vector)
{
    struct sim_pci *pci = &((struct sim_dev *)dmahal__dev(d)->priv)->pci;

    (void)vector;
    pthread_mutex_lock(&pci->lock);
    pci->masked = false;
    intx_eval(pci);
    pthread_mutex_unlock(&pci->lock);
    return 0;
}

/* ---- configuration space ------------------------------------------------------------------- */

unsigned dmahal__sim_config_size(struct dmahal_device *d)
{
    (void)d;
    return SIM_CFG_SIZE;
}

/* A BAR register as read: its address, or all ones masked to the size after sizing. */
static uint32_t bar_value(struct sim_dev *sd, unsigned i)
{
    uint64_t size = sd->model->bar_size[i];

    if (!size || size > (UINT64_C(1) << 31))
        return 0;
    return (uint32_t)(sd->pci.bar_addr[i] & ~(size - 1)) & ~UINT32_C(0xf);
}

int dmahal__sim_config_read(struct dmahal_device *d, unsigned off, void *buf, size_t len)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    uint8_t view[SIM_CFG_SIZE];

    pthread_mutex_lock(&sd->pci.lock);
    memcpy(view, sd->pci.cfg, sizeof(view));
    for (unsigned i = 0; i < DMAHAL__BARS; i++)
        put32(view + 0x10 + 4 * i, bar_value(sd, i));
    if (sd->pci.line)
        put16(view + 0x06, get16(view + 0x06) | CFG_STATUS_INTX);
    pthread_mutex_unlock(&sd->pci.lock);
    memcpy(buf, view + off, len);
    return 0;
}

static void bar_write(struct sim_dev *sd, unsigned i, uint32_t v)
{
    uint64_t size = sd->model->bar_size[i];

    if (size && size <= (UINT64_C(1) << 31))
        sd->pci.bar_addr[i] = v & ~(size - 1);
}

int dmahal__sim_config_write(struct dmahal_device *d, unsigned off, const void *buf, size_t len)
{
    struct sim_dev *sd = dmahal__dev(d)->priv;
    struct sim_pci *pci = &sd->pci;
    const uint8_t *src = buf;
    uint8_t bars[4 * DMAHAL__BARS];
    bool bar_hit[DMAHAL__BARS] = {false};
    uint16_t cmd;

    pthread_mutex_lock(&pci->lock);
    for (unsigned i = 0; i < DMAHAL__BARS; i++)
        put32(bars + 4 * i, bar_value(sd, i));
    cmd = get16(pci->cfg + DMAHAL_PCI_COMMAND);
    for (size_t k = 0; k < len; k++) {
        unsigned at = off + (unsigned)k;

        if (at == DMAHAL_PCI_COMMAND)
            cmd = (uint16_t)((cmd & 0xff00) | (src[k] & CMD_WRITABLE));
        else if (at == DMAHAL_PCI_COMMAND + 1)
            cmd = (uint16_t)((cmd & 0x00ff) | ((src[k] << 8) & CMD_WRITABLE));
        else if (at >= 0x10 && at < 0x10 + sizeof(bars)) {
            bars[at - 0x10] = src[k];
            bar_hit[(at - 0x10) / 4] = true;
        } else if (at == 0x3c)
            pci->cfg[at] = src[k]; /* interrupt line: the firmware's scratch byte */
        /* Everything else is read-only: IDs, status, capabilities (enabled through
         * dmahal_irq_enable, as VFIO virtualises them). */
    }
    for (unsigned i = 0; i < DMAHAL__BARS; i++)
        if (bar_hit[i])
            bar_write(sd, i,
                      (uint32_t)bars[4 * i] | (uint32_t)bars[4 * i + 1] << 8 |
                          (uint32_t)bars[4 * i + 2] << 16 | (uint32_t)bars[4 * i + 3] << 24);
    put16(pci->cfg + DMAHAL_PCI_COMMAND, cmd);
    atomic_store_explicit(&pci->master, (cmd & DMAHAL_PCI_COMMAND_MASTER) != 0,
                          memory_order_release);
    /* Clearing INTx-disable lets an asserted line through. */
    intx_eval(pci);
    pthread_mutex_unlock(&pci->lock);
    return 0;
}

/* ---- discovery ------------------------------------------------------------------------------- */

int dmahal__sim_device_list(struct dmahal_device_info **out)
{
    struct dmahal_device_info *v;
    size_t n = 0;

    while (dmahal_model_at(n))
        n++;
    if (n == 0)
        return 0;
    v = calloc(n, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct dmahal_model *m = dmahal_model_at(i);

        if (!m) {
            n = i;
            break;
        }
        snprintf(v[i].name, sizeof(v[i].name), "%s", m->name);
        v[i].vendor = m->vendor_id || m->device_id ? m->vendor_id : 0x1234;
        v[i].device = m->vendor_id || m->device_id ? m->device_id : 0xffff;
        v[i].class_code = m->class_code;
        v[i].iommu_group = -1;
        snprintf(v[i].driver, sizeof(v[i].driver), "sim");
        v[i].openable = true;
    }
    *out = v;
    return (int)n;
}
