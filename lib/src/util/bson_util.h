/* util/bson_util.h — typed readers of BSON document fields. */
#ifndef XP_UTIL_BSON_UTIL_H
#define XP_UTIL_BSON_UTIL_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* Typed field readers: NULL/false when absent or of another type. */
const char *xp__bson_utf8(const bson_t *b, const char *key);
bool xp__bson_int64(const bson_t *b, const char *key, int64_t *out);
bool xp__bson_bool(const bson_t *b, const char *key, bool dflt);
/* Static view of a sub-document or array (valid while b lives). */
bool xp__bson_sub(const bson_t *b, const char *key, bson_t *out);

#endif /* XP_UTIL_BSON_UTIL_H */
