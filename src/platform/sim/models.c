/* SPDX-License-Identifier: MIT */
/* models.c - the device models the simulated platform can instantiate, by name. */
#include "platform/sim/models.h"
#include "platform/sim/sim.h"

#include <errno.h>
#include <string.h>

#define MAX_MODELS 64

static const struct dmahal_model *models[MAX_MODELS];
static size_t nmodels;
static pthread_mutex_t models_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t models_once = PTHREAD_ONCE_INIT;

static const struct dmahal_model *const builtin[] = {
    &dmahal__model_edu,
    &dmahal__model_nvme,
};

static void register_builtin(void)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        models[nmodels++] = builtin[i];
}

static void models_init(void)
{
    pthread_once(&models_once, register_builtin);
}

static const struct dmahal_model *find_locked(const char *name, size_t len)
{
    for (size_t i = 0; i < nmodels; i++)
        if (strlen(models[i]->name) == len && strncmp(models[i]->name, name, len) == 0)
            return models[i];
    return NULL;
}

int dmahal_model_register(const struct dmahal_model *m)
{
    int rc = 0;

    if (!m || !m->name || !*m->name || !m->mmio_read || !m->mmio_write || strpbrk(m->name, ":,"))
        return -EINVAL;
    models_init();
    pthread_mutex_lock(&models_lock);
    if (find_locked(m->name, strlen(m->name)))
        rc = -EEXIST;
    else if (nmodels == MAX_MODELS)
        rc = -ENOSPC;
    else
        models[nmodels++] = m;
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
        m = models[index];
    pthread_mutex_unlock(&models_lock);
    return m;
}
