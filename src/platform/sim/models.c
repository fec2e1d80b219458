/* SPDX-License-Identifier: MIT */
/* models.c - the device models the simulated platform can instantiate, by name. */
#include "platform/sim/models.h"
#include "platform/sim/sim.h"

#include <errno.h>
#include <string.h>

#define MAX_MODELS 64

/* The library's copies, each full size: members beyond a model's own size are zero. */
static struct dmahal_model models[MAX_MODELS];
static size_t nmodels;
static pthread_mutex_t models_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t models_once = PTHREAD_ONCE_INIT;

static const struct dmahal_model *const builtin[] = {
    &dmahal__model_edu,
    &dmahal__model_nvme,
};

/*
 * Copies @m as its size says: a shorter (older) struct has its missing members zeroed, a
 * longer (newer) one is taken if what this library lacks is zero, as Linux's
 * copy_struct_from_user() takes an extensible struct. Size 0 is this library's own size: a
 * model built with the library itself.
 */
static int model_copy(struct dmahal_model *to, const struct dmahal_model *m)
{
    size_t size = m->size ? m->size : sizeof(*m);

    if (size < DMAHAL_MODEL_SIZE_V1)
        return -EINVAL;
    if (size > sizeof(*m)) {
        const unsigned char *extra = (const unsigned char *)m + sizeof(*m);

        for (size_t i = 0; i < size - sizeof(*m); i++)
            if (extra[i])
                return -E2BIG;
        size = sizeof(*m);
    }
    memset(to, 0, sizeof(*to));
    memcpy(to, m, size);
    to->size = sizeof(*to);
    return 0;
}

static void register_builtin(void)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (model_copy(&models[nmodels], builtin[i]) == 0)
            nmodels++;
}

static void models_init(void)
{
    pthread_once(&models_once, register_builtin);
}

static const struct dmahal_model *find_locked(const char *name, size_t len)
{
    for (size_t i = 0; i < nmodels; i++)
        if (strlen(models[i].name) == len && strncmp(models[i].name, name, len) == 0)
            return &models[i];
    return NULL;
}

int dmahal_model_register(const struct dmahal_model *m)
{
    struct dmahal_model copy;
    int rc;

    if (!m)
        return -EINVAL;
    rc = model_copy(&copy, m);
    if (rc)
        return rc;
    if (!copy.name || !*copy.name || !copy.mmio_read || !copy.mmio_write ||
        strpbrk(copy.name, ":,"))
        return -EINVAL;
    models_init();
    pthread_mutex_lock(&models_lock);
    if (find_locked(copy.name, strlen(copy.name)))
        rc = -EEXIST;
    else if (nmodels == MAX_MODELS)
        rc = -ENOSPC;
    else
        models[nmodels++] = copy;
    pthread_mutex_unlock(&models_lock);
    return rc;
}

/* Finds the model named by the first @len bytes of @name. */
const struct dmahal_model *dmahal__sim_model_find(const char *name, size_t len)
{
    const struct dmahal_model *m;

    models_init();
    pthread_mutex_lock(&models_lock);
    m = find_locked(name, len);
    pthread_mutex_unlock(&models_lock);
    return m;
}

void dmahal__model_set_bar_size(struct dmahal_device *d, unsigned bar, uint64_t size)
{
    if (bar < DMAHAL_MODEL_BARS)
        dmahal__dev(d)->bar_size[bar] = size;
}

const struct dmahal_model *dmahal_model_find(const char *name)
{
    return name ? dmahal__sim_model_find(name, strlen(name)) : NULL;
}

const struct dmahal_model *dmahal_model_at(size_t index)
{
    const struct dmahal_model *m = NULL;

    models_init();
    pthread_mutex_lock(&models_lock);
    if (index < nmodels)
        m = &models[index];
    pthread_mutex_unlock(&models_lock);
    return m;
}
