/* remote/worker/plugins.h — experiment plugins: shared libraries built
 * with -DXP_PLUGIN, each exporting one experiment definition. */
#ifndef XP_REMOTE_WORKER_PLUGINS_H
#define XP_REMOTE_WORKER_PLUGINS_H

#include "experiment.h"

typedef struct {
    char *path;
    void *handle;
    xp_experiment *ex; /* detached, its graph frozen with its code */
} xp_worker_plugin;

/* Loads path into *p: its experiment defined, checked and frozen, and not
 * one of the n_loaded already loaded. One-line err naming the plugin. */
int xp__plugin_load(xp_worker_plugin *p, const char *path,
                    const xp_worker_plugin *loaded, size_t n_loaded,
                    xp_error_t *err);
/* The plugin of experiment id among n, or NULL. */
xp_worker_plugin *xp__plugin_find(xp_worker_plugin *plugins, size_t n,
                                  const char *id);
/* Its experiment first (its nodes point into the plugin's code), then
 * the library. */
void xp__plugin_unload(xp_worker_plugin *p);

#endif /* XP_REMOTE_WORKER_PLUGINS_H */
