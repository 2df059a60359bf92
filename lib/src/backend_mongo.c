/* backend_mongo.c — the MongoDB backend (placeholder until implemented). */
#include "xp-private.h"

int xp__backend_mongo_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err)
{
    (void)id;
    (void)uri;
    (void)cache_dir;
    (void)must_exist;
    *out = NULL;
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "the MongoDB backend is not available in this build");
}
