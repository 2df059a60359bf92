/* backend.c — picks the storage backend for an experiment from the
 * backend argument or XP_BACKEND: a directory selects the local (SQLite)
 * backend; URIs name the shared backends. */
#include "xp-private.h"

#include <stdlib.h>
#include <string.h>

/* The scheme of a URI ("mongodb" for "mongodb://h/db"), or NULL for a
 * plain path. */
static char *s_scheme(const char *spec)
{
    const char *sep = strstr(spec, "://");
    if (!sep)
        return NULL;
    for (const char *p = spec; p < sep; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
              *p == '.'))
            return NULL;
    return bson_strndup(spec, (size_t)(sep - spec));
}

int xp__backend_open(xp_backend **out, const char *id, const char *spec,
                     bool must_exist, xp_error_t *err)
{
    *out = NULL;
    if (!spec || !*spec)
        spec = getenv("XP_BACKEND");
    if (!spec || !*spec)
        spec = "xp_cache";
    char *scheme = s_scheme(spec);
    if (scheme) {
        int rc;
        if (strcmp(scheme, "file") == 0)
            rc = xp__backend_local_open(out, id, spec + strlen("file://"),
                                        must_exist, err);
        else
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "unsupported backend scheme '%s://' (this "
                           "build stores experiments in local directories)",
                           scheme);
        bson_free(scheme);
        return rc;
    }
    return xp__backend_local_open(out, id, spec, must_exist, err);
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
