/* util/bson_util.h — typed readers of BSON document fields, and a
 * bounded check of untrusted BSON bytes. */
#ifndef XP_UTIL_BSON_UTIL_H
#define XP_UTIL_BSON_UTIL_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Typed field readers: NULL/false when absent or of another type. */
const char *xp__bson_utf8(const bson_t *b, const char *key);
bool xp__bson_int64(const bson_t *b, const char *key, int64_t *out);
bool xp__bson_bool(const bson_t *b, const char *key, bool dflt);
/* Static view of a sub-document or array (valid while b lives). */
bool xp__bson_sub(const bson_t *b, const char *key, bson_t *out);

/* Checks that data[0..len) is exactly one BSON document whose every
 * length fits inside its parent, every element type is known, every key
 * and string is UTF-8 and whose documents nest at most max_depth deep
 * (the outermost is 1), without recursion: run it on untrusted bytes
 * before anything that walks them recursively (bson_validate,
 * bson_iter_visit_all, value trees), which a deep enough document would
 * take off the end of the stack. One-line err. */
int xp__bson_check(const uint8_t *data, size_t len, int max_depth,
                   xp_error_t *err);

/* The nesting a stored or sent document may have: a value's 100 levels
 * (value.c) inside the few of the record or message that holds it. */
#define XP_BSON_MAX_DEPTH 104

/* Initialises *doc (static: it borrows data) over untrusted bytes read
 * from a store or a file, when they pass xp__bson_check with
 * XP_BSON_MAX_DEPTH and bson_validate; false otherwise. */
bool xp__bson_view_checked(bson_t *doc, const uint8_t *data, size_t len);

#endif /* XP_UTIL_BSON_UTIL_H */
