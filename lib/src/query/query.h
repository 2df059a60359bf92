/* query/query.h — a history query compiled from the public xp_query
 * (filter, sort keys, window), and the streamed scan that answers it
 * over records read one by one, for a store without a query engine. */
#ifndef XP_QUERY_QUERY_H
#define XP_QUERY_QUERY_H

#include "xp/xp.h"

#include "query/filter.h"
#include "query/sort.h"

#include <bson/bson.h>
#include <stdint.h>

typedef struct {
    xp_filter *filter; /* NULL: every trial */
    xp_sort *sort;     /* NULL: trial id order */
    int64_t offset;
    int64_t limit; /* 0: all */
} xp_compiled_query;

/* Compiles q into *out (cleared first). XP_EINVAL for an unknown version,
 * a negative window, a malformed filter or sort. Caller clears *out
 * (xp__query_clear), also on failure. */
int xp__query_compile(xp_compiled_query *out, const xp_query *q,
                      xp_error_t *err);
void xp__query_clear(xp_compiled_query *q);

/* The scan: records are added in trial id order; it counts matches and
 * keeps the offset + limit first ones (all with limit 0), then hands the
 * page to fn in the query's order. */
typedef struct xp_query_scan xp_query_scan;
typedef int (*xp_query_page_fn)(const bson_t *doc, int64_t id, void *user);

/* q must outlive the scan. Caller owns result (xp__query_scan_destroy).
 * It holds at most 1.25 (offset + limit) + 64 records (all matches with
 * limit 0). */
xp_query_scan *xp__query_scan_new(const xp_compiled_query *q);
/* The same, keeping only sort keys and ids (about 50 bytes a record):
 * emit passes doc NULL, for a caller that reads the page's documents by
 * id afterwards. */
xp_query_scan *xp__query_scan_new_ids(const xp_compiled_query *q);
/* Adds the record of trial id (doc NULL: damaged; copied when kept). */
void xp__query_scan_add(xp_query_scan *s, const bson_t *doc, int64_t id);
int64_t xp__query_scan_matched(const xp_query_scan *s);
/* The query s answers. */
const xp_compiled_query *xp__query_scan_query(const xp_query_scan *s);
/* For an evaluator of its own (the projection cache), instead of adding
 * records: matched records matched, the page ids[0..n) in order, handed
 * to emit with doc NULL. */
void xp__query_scan_set_page(xp_query_scan *s, int64_t matched,
                             const int64_t *ids, size_t n);
/* Calls fn for each trial of the page, in order; non-zero from fn stops
 * and is returned. */
int xp__query_scan_emit(xp_query_scan *s, xp_query_page_fn fn, void *user);
/* NULL-safe; NULLs *s. */
void xp__query_scan_destroy(xp_query_scan **s);

#endif /* XP_QUERY_QUERY_H */
