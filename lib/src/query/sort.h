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
/* 1 when s is the one key trial_id, ascending; -1 descending; else 0 (a
 * store may then read along its primary key instead of sorting). */
int xp__sort_by_trial_id(const xp_sort *s);

/* Keys of s (0 for a NULL s); key i's field, and whether it descends. */
int xp__sort_keys(const xp_sort *s);
const xp_field *xp__sort_field(const xp_sort *s, int i);
bool xp__sort_descending(const xp_sort *s, int i);

/* Appends the key of doc (NULL: a damaged record, every field missing)
 * to out: ascending memcmp order is s's order. */
void xp__sort_key(const xp_sort *s, const bson_t *doc, xp_bytes *out);

/* Adds s's fields to plan; the slot of each key, for xp__sort_key_found
 * (NULL for a NULL s). Caller owns result (bson_free). */
uint32_t *xp__sort_plan(const xp_sort *s, xp_field_plan *plan);
/* xp__sort_key over the values plan found in the document. */
void xp__sort_key_found(const xp_sort *s, const xp_field_plan *plan,
                        const uint32_t *slots, xp_bytes *out);

/* Appends s's keys to out (initialised), {path: 1 | -1, ...}, the first
 * of a repeated path only. */
void xp__sort_mongo(const xp_sort *s, bson_t *out);

#endif /* XP_QUERY_SORT_H */
