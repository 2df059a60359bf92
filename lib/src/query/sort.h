/* query/sort.h — sort keys of a history query ("-result,a"): parsed once,
 * then a memcmp-comparable key per stored trial document, or a MongoDB
 * sort document. Ties are the caller's to break, by trial id. */
#ifndef XP_QUERY_SORT_H
#define XP_QUERY_SORT_H

#include "xp/xp.h"

#include "query/field.h"

#include <bson/bson.h>

#define XP_SORT_KEYS_MAX 32

typedef struct xp_sort xp_sort;

/* Compiles text, comma-separated field names each with an optional '-'
 * (descending) or '+' before it (NULL or blank: *out NULL, trial id
 * order). XP_EINVAL with "sort: column N: what". Caller owns *out
 * (xp__sort_destroy). */
int xp__sort_parse(xp_sort **out, const char *text, xp_error_t *err);
/* NULL-safe; NULLs *s. */
void xp__sort_destroy(xp_sort **s);

/* Appends the key of doc (NULL: a damaged record, every field missing)
 * to out: ascending memcmp order is s's order. */
void xp__sort_key(const xp_sort *s, const bson_t *doc, xp_bytes *out);

/* Appends s's keys to out (initialised), {path: 1 | -1, ...}, the first
 * of a repeated path only. */
void xp__sort_mongo(const xp_sort *s, bson_t *out);

#endif /* XP_QUERY_SORT_H */
