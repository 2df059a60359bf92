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

/* Whether p[0..n) is UTF-8 without NUL, as xp__bson_check requires of
 * every key and string (for a reader that checks as it goes). */
bool xp__bson_utf8_valid(const uint8_t *p, size_t n);

/* The nesting a stored or sent document may have: a value's 100 levels
 * (value.c) inside the few of the record or message that holds it. */
#define XP_BSON_MAX_DEPTH 104

/* Initialises *doc (static: it borrows data) over untrusted bytes read
 * from a store or a file, when they pass xp__bson_check with
 * XP_BSON_MAX_DEPTH (which implies bson_validate's BSON_VALIDATE_NONE);
 * false otherwise. Such a document is "checked": readers may then skip
 * their own UTF-8 and form checks (xp__record_decode_checked,
 * xp__value_from_checked_bson). */
bool xp__bson_view_checked(bson_t *doc, const uint8_t *data, size_t len);

/* Walking a checked document (or one nested in it) without bson_iter:
 * doc is where its length is; *pos starts at 4. */
typedef struct {
    uint8_t type;    /* bson_type_t */
    const char *key; /* NUL-terminated */
    size_t key_len;
    const uint8_t *value; /* the value's bytes, as the BSON spec lays them */
} xp_bson_elem;
/* The element at *pos into *e, *pos moved past it; false at the end. */
bool xp__bson_next_checked(const uint8_t *doc, size_t *pos, xp_bson_elem *e);
/* Elements of the checked document or array at doc. */
size_t xp__bson_count_checked(const uint8_t *doc);

#endif /* XP_UTIL_BSON_UTIL_H */
