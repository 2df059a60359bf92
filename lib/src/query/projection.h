/* query/projection.h — a store handle's cache of what history queries
 * read from every record: each record's values of the fields the filters
 * and sorts asked for, decoded once into columns of distinct values, so
 * that a page that filters or sorts by those fields is evaluated over a
 * few integers a trial instead of every stored record. The store says
 * when its records change (a version); the cache is then rebuilt by the
 * next page. */
#ifndef XP_QUERY_PROJECTION_H
#define XP_QUERY_PROJECTION_H

#include "query/query.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xp_projection_cache xp_projection_cache;

/* Caller owns result (xp__projection_cache_destroy). */
xp_projection_cache *xp__projection_cache_new(void);
/* NULL-safe; NULLs *c. */
void xp__projection_cache_destroy(xp_projection_cache **c);
/* Bytes c holds at most (default 256 MiB): past them it stops keeping
 * records and does not answer. */
void xp__projection_cache_set_bound(xp_projection_cache *c, size_t bytes);

/* Whether the cache answers q for records at version: it holds every
 * record's values of q's fields, taken at that version. Else the
 * cache is emptied, takes q's fields (beside those it had, within a
 * bound) and expects the caller to add every record
 * (xp__projection_cache_add, in trial id order) and then call
 * xp__projection_cache_done; it answers from then on, that query too
 * (building costs about what a plain scan does). */
bool xp__projection_cache_ready(xp_projection_cache *c,
                                const xp_compiled_query *q, uint64_t version);
/* The record of trial id (doc NULL: damaged). Past the cache's bound on
 * memory it stops keeping records (and will not answer). */
void xp__projection_cache_add(xp_projection_cache *c, const bson_t *doc,
                              int64_t id);
void xp__projection_cache_done(xp_projection_cache *c);
/* Whether c keeps the records added (it is building, within its bound):
 * before xp__projection_cache_done, whether c will answer the query of
 * its last xp__projection_cache_ready, so that the page that builds it
 * may be answered by it too (xp__projection_cache_scan). */
bool xp__projection_cache_keeping(const xp_projection_cache *c);
/* Forgets every record (the store changed in a way no version tells). */
void xp__projection_cache_drop(xp_projection_cache *c);
/* Answers scan's query (a cache ready for it): sets scan's count and
 * page (xp__query_scan_set_page), which emit hands out by id with doc
 * NULL, as a scan made by xp__query_scan_new_ids does. */
void xp__projection_cache_scan(const xp_projection_cache *c,
                               xp_query_scan *scan);

#endif /* XP_QUERY_PROJECTION_H */
