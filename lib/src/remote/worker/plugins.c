/* plugins.c — loading an experiment plugin into a worker: dlopen, the
 * xp_plugin_experiment symbol and its ABI, the experiment it defines
 * (checked and frozen, so that its code document and hash are what the
 * worker announces). */
#include "remote/worker/plugins.h"

#include "util/error.h"
#include "util/log.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The plugin's definition, or NULL with err. */
static const xp_experiment_def *s_definition(void *handle, const char *path,
                                             xp_error_t *err)
{
    const xp_experiment_def *def = dlsym(handle, "xp_plugin_experiment");
    if (!def)
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                  "plugin %s has no symbol xp_plugin_experiment (build it "
                  "with -DXP_PLUGIN)",
                  path);
    else if (def->abi != XP_PLUGIN_ABI)
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "plugin %s has ABI %u, this worker needs %u", path,
                  (unsigned)def->abi, (unsigned)XP_PLUGIN_ABI);
    else if (!def->id || !def->define)
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "plugin %s has no experiment id or definition", path);
    else
        return def;
    return NULL;
}

/* Defines, checks and freezes the experiment of def into p->ex (through
 * define(ex, ctx) when given, else def's own). */
static int s_define(xp_worker_plugin *p, const xp_experiment_def *def,
                    xp_node *(*define)(xp_experiment *, void *), void *ctx,
                    const char *path, const xp_worker_plugin *loaded,
                    size_t n_loaded, xp_error_t *err)
{
    xp_error_t e;
    if (xp__experiment_new_detached(&p->ex, def->id, &e) != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "plugin %s: %s",
                         path, e.message);
    for (size_t i = 0; i < n_loaded; i++)
        if (strcmp(xp__experiment_id(loaded[i].ex), def->id) == 0)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EEXIST,
                             "plugin %s: experiment '%s' is already loaded "
                             "from %s",
                             path, def->id, loaded[i].path);
    xp_node *result = define ? define(p->ex, ctx) : def->define(p->ex);
    if (result && !xp__graph_result(p->ex))
        xp_result(result);
    if (xp_experiment_check(p->ex, &e) != 0)
        return xp__error(err, XP_DOMAIN_GRAPH, e.code ? e.code : XP_EINVAL,
                         "plugin %s: %s", path, e.message);
    int frozen = xp__graph_freeze(p->ex, &e);
    if (frozen != 0 || !xp__experiment_code(p->ex))
        return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL, "plugin %s: %s", path,
                         frozen != 0 ? e.message : "no code document");
    return 0;
}

/* An experiment file (docs/commands.md) instead of a library: its
 * command steps run here; the code hash covers the files' text, so a
 * trial runs only where the files are the submitter's. */
static bool s_is_experiment_file(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".yml") == 0);
}

static xp_node *s_define_file(xp_experiment *ex, void *ctx)
{
    return xp_definition_apply(ctx, ex);
}

static int s_load_file(xp_worker_plugin *p, const char *path,
                       const xp_worker_plugin *loaded, size_t n_loaded,
                       xp_error_t *err)
{
    xp_definition *d = NULL;
    if (xp_definition_load(&d, path, err) != 0)
        return -1;
    xp_experiment_def def = {XP_PLUGIN_ABI, xp_definition_id(d), NULL};
    int rc = s_define(p, &def, s_define_file, d, path, loaded, n_loaded, err);
    xp_definition_destroy(&d);
    return rc;
}

int xp__plugin_load(xp_worker_plugin *p, const char *path,
                    const xp_worker_plugin *loaded, size_t n_loaded,
                    xp_error_t *err)
{
    memset(p, 0, sizeof *p);
    if (s_is_experiment_file(path)) {
        if (s_load_file(p, path, loaded, n_loaded, err) != 0) {
            xp__plugin_unload(p);
            return -1;
        }
        p->path = bson_strdup(path);
        xp__log(XP_LOG_INFO, "Loaded experiment '%s' from %s (code %s)",
                xp__experiment_id(p->ex), path,
                xp__experiment_code_hash(p->ex));
        return 0;
    }
    const char *path_for_dlopen = path;
    char local[4096];
    /* A bare file name means that file, not a library search. */
    if (!strchr(path, '/') && access(path, F_OK) == 0 &&
        (size_t)snprintf(local, sizeof local, "./%s", path) < sizeof local)
        path_for_dlopen = local;
    dlerror();
    p->handle = dlopen(path_for_dlopen, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        const char *why = dlerror();
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                         "cannot load plugin %s: %s", path,
                         why ? why : "dlopen");
    }
    const xp_experiment_def *def = s_definition(p->handle, path, err);
    if (!def ||
        s_define(p, def, NULL, NULL, path, loaded, n_loaded, err) != 0) {
        xp__plugin_unload(p);
        return -1;
    }
    p->path = bson_strdup(path);
    xp__log(XP_LOG_INFO, "Loaded experiment '%s' from %s (code %s)",
            xp__experiment_id(p->ex), path, xp__experiment_code_hash(p->ex));
    return 0;
}

xp_worker_plugin *xp__plugin_find(xp_worker_plugin *plugins, size_t n,
                                  const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(xp__experiment_id(plugins[i].ex), id) == 0)
            return &plugins[i];
    return NULL;
}

void xp__plugin_unload(xp_worker_plugin *p)
{
    xp_experiment_destroy(&p->ex);
    if (p->handle)
        dlclose(p->handle);
    p->handle = NULL;
    bson_free(p->path);
    p->path = NULL;
}
