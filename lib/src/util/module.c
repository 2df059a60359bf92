/* module.c — libxp's optional modules: the ones linked in, else a shared
 * object libxp-<name>.so loaded with dlopen on first need from next to
 * libxp (or $XP_MODULE_DIR), and the objects those loads brought into the
 * process, which the environment capture leaves out. */
#include "util/module.h"

#include "util/error.h"

#include <bson/bson.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XP_MODULES_MAX 16

/* Everything below is under s_lock: loads, and listings of the objects. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static const xp_module *s_loaded[XP_MODULES_MAX];
static size_t s_n_loaded;
/* dlpi_name of each object a module load brought in (owned). */
static char **s_objects;
static size_t s_n_objects, s_cap_objects;

typedef struct {
    char **names;
    size_t n, cap;
} s_names;

static void s_names_push(s_names *l, const char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->names = bson_realloc(l->names, l->cap * sizeof *l->names);
    }
    l->names[l->n++] = bson_strdup(name);
}

static bool s_names_has(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void s_names_clear(s_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        bson_free(l->names[i]);
    bson_free(l->names);
}

static int s_collect(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_name && info->dlpi_name[0])
        s_names_push(data, info->dlpi_name);
    return 0;
}

/* Remembers the objects that are loaded now and were not in before
 * (s_lock held). */
static void s_remember_new_objects(const s_names *before)
{
    s_names now = {0};
    dl_iterate_phdr(s_collect, &now);
    for (size_t i = 0; i < now.n; i++) {
        if (s_names_has(before->names, before->n, now.names[i]) ||
            s_names_has(s_objects, s_n_objects, now.names[i]))
            continue;
        if (s_n_objects == s_cap_objects) {
            s_cap_objects = s_cap_objects ? s_cap_objects * 2 : 64;
            s_objects =
                bson_realloc(s_objects, s_cap_objects * sizeof *s_objects);
        }
        s_objects[s_n_objects++] = now.names[i];
        now.names[i] = NULL;
    }
    for (size_t i = 0; i < now.n; i++)
        bson_free(now.names[i]);
    bson_free(now.names);
}

/* The directory modules are read from: $XP_MODULE_DIR, else libxp's own
 * (the build tree's lib/ or the installed libdir). */
static void s_module_dir(char *dir, size_t size)
{
    const char *env = getenv("XP_MODULE_DIR");
    Dl_info info;
    if (env && *env) {
        snprintf(dir, size, "%s", env);
    } else if (dladdr((const void *)xp__modules_linked, &info) != 0 &&
               info.dli_fname && strchr(info.dli_fname, '/')) {
        snprintf(dir, size, "%s", info.dli_fname);
        *strrchr(dir, '/') = '\0';
    } else {
        snprintf(dir, size, ".");
    }
}

/* Loads libxp-<name>.so (s_lock held). */
static const xp_module *s_load(const char *name, const char *what,
                               xp_error_t *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], symbol[64];
    s_module_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/libxp-%s.so", dir, name);
    snprintf(symbol, sizeof symbol, "xp__module_%s", name);
    s_names before = {0};
    dl_iterate_phdr(s_collect, &before);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    s_remember_new_objects(&before);
    s_names_clear(&before);
    if (!handle) {
        const char *why = dlerror();
        xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOTFOUND,
                  "%s is not installed: %s", what, why ? why : path);
        return NULL;
    }
    const xp_module *m = dlsym(handle, symbol);
    if (!m || strcmp(m->name, name) != 0) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOTFOUND,
                  "%s is not installed: %s has no %s", what, path, symbol);
        return NULL;
    }
    if (m->abi != XP_MODULE_ABI || strcmp(m->version, XP_VERSION_STRING) != 0) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOTFOUND,
                  "%s is not installed: %s is for libxp %s, this is libxp %s",
                  what, path, m->version, XP_VERSION_STRING);
        return NULL;
    }
    return m;
}

static const xp_module *s_find(const xp_module *const *list, size_t n,
                               const char *name)
{
    for (size_t i = 0; i < n && list[i]; i++)
        if (strcmp(list[i]->name, name) == 0)
            return list[i];
    return NULL;
}

const void *xp__module_ops(const char *name, const char *what, xp_error_t *err)
{
    const xp_module *m = s_find(xp__modules_linked, SIZE_MAX, name);
    if (m)
        return m->ops;
    pthread_mutex_lock(&s_lock);
    m = s_find(s_loaded, s_n_loaded, name);
    if (!m && s_n_loaded == XP_MODULES_MAX)
        xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOMEM, "too many modules");
    else if (!m && (m = s_load(name, what, err)) != NULL)
        s_loaded[s_n_loaded++] = m;
    pthread_mutex_unlock(&s_lock);
    return m ? m->ops : NULL;
}

typedef struct {
    int (*fn)(struct dl_phdr_info *info, size_t size, void *data);
    void *data;
} s_filter;

static int s_filtered(struct dl_phdr_info *info, size_t size, void *data)
{
    s_filter *f = data;
    if (info->dlpi_name && s_names_has(s_objects, s_n_objects, info->dlpi_name))
        return 0;
    return f->fn(info, size, f->data);
}

int xp__module_iterate_phdr(int (*fn)(struct dl_phdr_info *info, size_t size,
                                      void *data),
                            void *data)
{
    s_filter f = {fn, data};
    pthread_mutex_lock(&s_lock);
    int rc = dl_iterate_phdr(s_filtered, &f);
    pthread_mutex_unlock(&s_lock);
    return rc;
}
