/* history_pattern.h — the experiment the tests of history's cached pages
 * page through, on the local store and on Redis: parameters a (an int),
 * b (a double), s (a string of 50 values) and flag (a bool), trial k's
 * values made from k, and a result made from three of them. While its
 * trial runs, the step may page the history through another handle. */
#ifndef XP_TESTS_HISTORY_PATTERN_H
#define XP_TESTS_HISTORY_PATTERN_H

#include "common.h"

/* A handle the step pages "status == 'running'" on while its trial runs
 * (NULL: none), and the matches it saw there. */
static xp_experiment *xpt_pattern_reader;
static int64_t xpt_pattern_running_seen;

static inline int xpt_pattern_score(xp_step *st, const xp_value *const *in,
                                    xp_value *out)
{
    (void)st;
    if (xpt_pattern_reader) {
        xp_query q = XP_QUERY_INIT;
        q.filter = "status == 'running'";
        q.sort = "-a";
        q.limit = 10;
        xp_value *page = NULL;
        int64_t matched = 0;
        xp_error_t err;
        if (xp_history_query(xpt_pattern_reader, &q, &page, &matched, &err) ==
            0)
            xpt_pattern_running_seen += matched;
        xp_value_destroy(&page);
    }
    double a = xp_as_double(in[0]), b = xp_as_double(in[1]);
    return xp_set_double(out, a * 0.5 - b + (xp_as_bool(in[3]) ? 1 : 0));
}

static inline xp_experiment *xpt_pattern_define(xp_experiment *ex)
{
    xp_node *p[4] = {xp_parameter(ex, "a"), xp_parameter(ex, "b"),
                     xp_parameter(ex, "s"), xp_parameter(ex, "flag")};
    xp_result(
        xp_step_add(ex, "score", xpt_pattern_score, 4, p, __FILE__, __LINE__));
    return ex;
}

/* Runs trials [from, to) of the pattern on ex. */
static inline void xpt_pattern_run(xp_experiment *ex, int from, int to)
{
    for (int k = from; k < to; k++) {
        xp_value *params = xp_value_new();
        char s[32];
        xp_set_document(params);
        xp_set_int64(xp_document_set(params, "a"), k % 97);
        xp_set_double(xp_document_set(params, "b"), (k * 7919 % 101) / 10.0);
        snprintf(s, sizeof s, "n-%03d", k * 31 % 50);
        xp_set_string(xp_document_set(params, "s"), s);
        xp_set_bool(xp_document_set(params, "flag"), k % 3 == 0);
        xp_run_options o = XP_RUN_OPTIONS_INIT;
        o.params = params;
        xp_error_t err;
        cr_assert_eq(xp_compute(ex, &o, NULL, NULL, &err), 0, "%s",
                     err.message);
        xp_value_destroy(&params);
    }
}

/* A query of a test's table. */
typedef struct {
    const char *filter, *sort;
    int64_t offset, limit;
} xpt_pattern_query;

/* The page of query q on ex (asserts it is given); *matched its count. */
static inline xp_value *xpt_pattern_page(xp_experiment *ex,
                                         const xpt_pattern_query *q,
                                         int64_t *matched)
{
    xp_query query = XP_QUERY_INIT;
    query.filter = q->filter;
    query.sort = q->sort;
    query.offset = q->offset;
    query.limit = q->limit;
    xp_value *page = NULL;
    xp_error_t err;
    cr_assert_eq(xp_history_query(ex, &query, &page, matched, &err), 0,
                 "query '%s' sort '%s': %s", q->filter ? q->filter : "",
                 q->sort ? q->sort : "", err.message);
    return page;
}

#endif /* XP_TESTS_HISTORY_PATTERN_H */
