/* backend.c — picks the storage backend for an experiment from the
 * backend argument or XP_BACKEND: a directory selects the local (SQLite)
 * backend; URIs name the shared backends. */
#include "store/store.h"

#include "util/error.h"
#include "util/uri.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where this machine keeps per-experiment files for a shared backend:
 * $XP_CACHE_DIR/<id>, else ./xp_cache/<id>. */
static char *s_cache_dir(const char *id)
{
    const char *root = getenv("XP_CACHE_DIR");
    if (!root || !*root)
        root = "xp_cache";
    return bson_strdup_printf("%s/%s", root, id);
}

/* The backend named by spec (NULL/"": $XP_BACKEND, else ./xp_cache) and
 * its scheme (NULL for a directory; caller frees). "local", daskperiment's
 * name for its default, is the default directory too (a directory named
 * local is ./local or file://local). */
static char *s_resolve(const char **spec)
{
    if (!*spec || !**spec)
        *spec = getenv("XP_BACKEND");
    if (!*spec || !**spec || strcmp(*spec, "local") == 0)
        *spec = "xp_cache";
    char *scheme = xp__uri_scheme(*spec);
    if (!scheme && strncmp(*spec, "unix:", 5) == 0)
        scheme = bson_strdup("unix");
    return scheme;
}

/* A local store at dir: opened read-only for a reader. */
static int s_local_open(xp_backend **out, const char *id, const char *dir,
                        bool must_exist, bool reader, xp_error_t *err)
{
    return reader ? xp__backend_local_open_reader(out, id, dir, err)
                  : xp__backend_local_open(out, id, dir, must_exist, err);
}

/* A reader opens as must_exist: the shared backends then only read. */
static int s_open(xp_backend **out, const char *id, const char *spec,
                  bool must_exist, bool reader, xp_error_t *err)
{
    *out = NULL;
    must_exist = must_exist || reader;
    char *scheme = s_resolve(&spec);
    if (!scheme)
        return s_local_open(out, id, spec, must_exist, reader, err);
    int rc;
    char *cache = s_cache_dir(id);
    if (strcmp(scheme, "file") == 0) {
        rc = s_local_open(out, id, spec + strlen("file://"), must_exist, reader,
                          err);
    } else if (strcmp(scheme, "mongodb") == 0 ||
               strcmp(scheme, "mongodb+srv") == 0) {
        rc = xp__backend_mongo_open(out, id, spec, cache, must_exist, err);
    } else if (strcmp(scheme, "redis") == 0 || strcmp(scheme, "rediss") == 0 ||
               strcmp(scheme, "unix") == 0) {
        rc = xp__backend_redis_open(out, id, spec, cache, must_exist, err);
    } else {
        rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                       "unsupported backend scheme '%s://' (expected a "
                       "directory, mongodb://, mongodb+srv://, redis://, "
                       "rediss:// or unix://)",
                       scheme);
    }
    bson_free(cache);
    bson_free(scheme);
    return rc;
}

int xp__backend_open(xp_backend **out, const char *id, const char *spec,
                     bool must_exist, xp_error_t *err)
{
    return s_open(out, id, spec, must_exist, false, err);
}

int xp__backend_open_reader(xp_backend **out, const char *id, const char *spec,
                            xp_error_t *err)
{
    return s_open(out, id, spec, true, true, err);
}

/* Experiments of a local root: directories holding an xp store. */
static int s_local_experiments(const char *root,
                               int (*fn)(const char *id, void *user),
                               void *user, xp_error_t *err)
{
    DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT
                   ? 0
                   : xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                               "cannot list %s: %s", root, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || xp_check_id(e->d_name, NULL) != 0)
            continue;
        char *path = bson_strdup_printf("%s/%s/xp.sqlite3", root, e->d_name);
        bool store = access(path, F_OK) == 0;
        bson_free(path);
        if (store)
            rc = fn(e->d_name, user);
    }
    closedir(d);
    return rc;
}

int xp__backend_experiments(const char *spec,
                            int (*fn)(const char *id, void *user), void *user,
                            xp_error_t *err)
{
    char *scheme = s_resolve(&spec);
    int rc;
    if (!scheme)
        rc = s_local_experiments(spec, fn, user, err);
    else if (strcmp(scheme, "file") == 0)
        rc = s_local_experiments(spec + strlen("file://"), fn, user, err);
    else if (strcmp(scheme, "mongodb") == 0 ||
             strcmp(scheme, "mongodb+srv") == 0)
        rc = xp__backend_mongo_experiments(spec, fn, user, err);
    else if (strcmp(scheme, "redis") == 0 || strcmp(scheme, "rediss") == 0 ||
             strcmp(scheme, "unix") == 0)
        rc = xp__backend_redis_experiments(spec, fn, user, err);
    else
        rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                       "unsupported backend scheme '%s://'", scheme);
    bson_free(scheme);
    return rc;
}

void xp__backend_close(xp_backend **b)
{
    if (!b || !*b)
        return;
    xp_backend *backend = *b;
    char *description = backend->description;
    char *dir = backend->dir;
    backend->ops->close(backend);
    bson_free(description);
    bson_free(dir);
    *b = NULL;
}
