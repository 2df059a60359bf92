/* query/filter.h — the filter language of `xp history --filter` and the
 * dashboard (docs/guide.md#filters): text compiled once into a tree,
 * evaluated over stored trial documents, or translated into a MongoDB
 * query document. */
#ifndef XP_QUERY_FILTER_H
#define XP_QUERY_FILTER_H

#include "xp/xp.h"

#include "query/field.h"

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

/* Adds f's fields to plan; the slot of each, in f's order, for
 * xp__filter_match_found (NULL for a NULL f). Caller owns result
 * (bson_free). */
uint32_t *xp__filter_plan(const xp_filter *f, xp_field_plan *plan);
/* xp__filter_match over the values plan found in the document (readable
 * false: a damaged record); slots from xp__filter_plan. */
bool xp__filter_match_found(const xp_filter *f, const xp_field_plan *plan,
                            const uint32_t *slots, bool readable);

/* The values of one field in records 0 .. n-1 of a set: each record's
 * as an index into the field's distinct values. */
typedef struct {
    const uint32_t *cells;   /* by record */
    const xp_scalar *values; /* by index (a missing field: type EOD) */
    uint32_t n_values;
} xp_column;

/* The fields f reads, each once (0 for a NULL f), and field i. */
size_t xp__filter_fields(const xp_filter *f);
const xp_field *xp__filter_field(const xp_filter *f, size_t i);

/* xp__filter_match_found over records 0 .. records-1 at once: bit i of
 * out (a word per 64 records) set when record i matches, bit i of
 * readable when its bytes are readable. cols[k] is the column of
 * xp__filter_field(f, k). Every bit set for a
 * NULL f. */
void xp__filter_match_columns(const xp_filter *f, const xp_column *const *cols,
                              size_t records, const uint64_t *readable,
                              uint64_t *out);

/* Appends to out (initialised) the conditions of a MongoDB query that
 * matches the documents xp__filter_match does (docs/schema.md says where
 * MongoDB's arrays differ); nothing for a NULL f. */
void xp__filter_mongo(const xp_filter *f, bson_t *out);

#endif /* XP_QUERY_FILTER_H */
