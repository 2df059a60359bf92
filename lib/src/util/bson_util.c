/* util/bson_util.c — typed readers of BSON document fields: absent and
 * mistyped fields read the same, so callers check one result. */
#include "util/bson_util.h"

const char *xp__bson_utf8(const bson_t *b, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

bool xp__bson_int64(const bson_t *b, const char *key, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, key))
        return false;
    if (BSON_ITER_HOLDS_INT64(&it))
        *out = bson_iter_int64(&it);
    else if (BSON_ITER_HOLDS_INT32(&it))
        *out = bson_iter_int32(&it);
    else
        return false;
    return true;
}

bool xp__bson_bool(const bson_t *b, const char *key, bool dflt)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_BOOL(&it))
        return bson_iter_bool(&it);
    return dflt;
}

bool xp__bson_sub(const bson_t *b, const char *key, bson_t *out)
{
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, b, key))
        return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
    else
        return false;
    return bson_init_static(out, data, len);
}
