/* query/filter.h — the filter language of `xp history --filter` and the
 * dashboard (docs/guide.md#filters): text compiled once into a tree,
 * evaluated over stored trial documents, or translated into a MongoDB
 * query document. */
#ifndef XP_QUERY_FILTER_H
#define XP_QUERY_FILTER_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <stdbool.h>

/* Bounds on what a filter may ask for; beyond them, XP_EINVAL. */
#define XP_FILTER_TEXT_MAX 4096
#define XP_FILTER_DEPTH_MAX 64
#define XP_FILTER_LIST_MAX 1000

typedef struct xp_filter xp_filter;

/* Compiles text (NULL or blank: *out NULL, every trial). XP_EINVAL with
 * "filter: column N: what" on malformed text. Caller owns *out
 * (xp__filter_destroy). */
int xp__filter_parse(xp_filter **out, const char *text, xp_error_t *err);
/* NULL-safe; NULLs *f. */
void xp__filter_destroy(xp_filter **f);

/* Whether the stored trial document doc matches f (NULL: every trial);
 * doc NULL, a record whose bytes are damaged, matches only a NULL f. */
bool xp__filter_match(const xp_filter *f, const bson_t *doc);

/* Appends to out (initialised) the conditions of a MongoDB query that
 * matches the documents xp__filter_match does (docs/schema.md says where
 * MongoDB's arrays differ); nothing for a NULL f. */
void xp__filter_mongo(const xp_filter *f, bson_t *out);

#endif /* XP_QUERY_FILTER_H */
