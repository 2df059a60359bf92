/* test_history_cache.c — pages of history that filter or sort, answered
 * by the local store's cache of record projections, are the pages a scan
 * of every stored record gives (same rows, same order, same count), and
 * the cache follows the store: trials added by this handle or another
 * connection, and a running trial that finishes, are seen by the next
 * page. Also the whole history (rows built in an arena) against
 * xp_trial_get, row by row. */
#include "../history_pattern.h"

#include "experiment.h"
#include "query/query.h"
#include "store/store.h"

TestSuite(history_cache, .init = xpt_setup, .fini = xpt_teardown);

static xp_experiment *s_reader_open(const char *id)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.read_only = true;
    xp_experiment *ex = NULL;
    xp_error_t err;
    cr_assert_eq(xp_experiment_open(&ex, id, &o, &err), 0, "%s", err.message);
    return ex;
}

static const xpt_pattern_query s_queries[] = {
    {"a < 50 and flag == true", "-result", 0, 20},
    {"a < 50 and flag == true", NULL, 5, 20},
    {NULL, "s", 0, 30},
    {NULL, "s,-b", 17, 30},
    {"s == 'n-007' or b > 5", "-a", 0, 0},
    {"status == 'succeeded'", "result", 3, 25},
    {"not (a >= 10)", "-trial_id", 0, 15},
    {"parameters.missing == null", "b", 0, 10},
    {"result > 100", "-result", 0, 10},
};

static xp_value *s_page(xp_experiment *ex, size_t i, int64_t *matched)
{
    return xpt_pattern_page(ex, &s_queries[i], matched);
}

static int s_scan_add(const bson_t *doc, int64_t id, void *user)
{
    xp__query_scan_add(user, doc, id);
    return 0;
}

static int s_collect(const bson_t *doc, int64_t id, void *user)
{
    (void)doc;
    int64_t **at = user;
    *(*at)++ = id;
    return 0;
}

/* Query i on ex against the plain scan (query.c) of every record the
 * store holds: the same count, the same trials in the same order. */
static void s_check_scan(xp_experiment *ex, size_t i)
{
    xp_query q = XP_QUERY_INIT;
    q.filter = s_queries[i].filter;
    q.sort = s_queries[i].sort;
    q.offset = s_queries[i].offset;
    q.limit = s_queries[i].limit;
    xp_compiled_query cq;
    xp_error_t err;
    cr_assert_eq(xp__query_compile(&cq, &q, &err), 0, "%s", err.message);
    xp_query_scan *scan = xp__query_scan_new_ids(&cq);
    cr_assert_eq(
        xp__store_trials_each(xp__experiment_store(ex), s_scan_add, scan, &err),
        0, "%s", err.message);
    int64_t ids[1000], *at = ids;
    cr_assert_eq(xp__query_scan_emit(scan, s_collect, &at), 0);
    int64_t matched = -1;
    xp_value *page = s_page(ex, i, &matched);
    cr_assert_eq(matched, xp__query_scan_matched(scan),
                 "query %zu: %lld matched, the scan %lld", i,
                 (long long)matched, (long long)xp__query_scan_matched(scan));
    cr_assert_eq(xp_value_count(page), (size_t)(at - ids), "query %zu", i);
    for (size_t r = 0; r < xp_value_count(page); r++)
        cr_assert_eq(
            xp_as_int64(xp_value_get(xp_value_at(page, r), "trial_id")), ids[r],
            "query %zu row %zu", i, r);
    xp_value_destroy(&page);
    xp__query_scan_destroy(&scan);
    xp__query_clear(&cq);
}

/* Every query on ex (pages answered by its cache once it has one) gives
 * what the plain scan of the stored records gives, and what the same
 * query gives on a fresh handle (whose cache its first page builds). */
static void s_check_all(xp_experiment *ex, const char *id)
{
    for (size_t i = 0; i < sizeof s_queries / sizeof *s_queries; i++) {
        s_check_scan(ex, i);
        xp_experiment *fresh = s_reader_open(id);
        int64_t m_scan = -1, m_cached = -2;
        xp_value *scan = s_page(fresh, i, &m_scan);
        xp_value *cached = s_page(ex, i, &m_cached);
        cr_assert_eq(m_cached, m_scan, "query %zu: %lld matched, scan %lld", i,
                     (long long)m_cached, (long long)m_scan);
        cr_assert(xp_value_equal(cached, scan), "query %zu: pages differ", i);
        xp_value_destroy(&scan);
        xp_value_destroy(&cached);
        xp_experiment_destroy(&fresh);
    }
}

Test(history_cache, cached_pages_are_the_pages_of_a_scan)
{
    xp_experiment *w = xpt_pattern_define(xpt_open("hc"));
    xpt_pattern_run(w, 0, 300);
    xp_experiment *r = s_reader_open("hc");
    /* twice: the first round builds the cache, the second reads it */
    s_check_all(r, "hc");
    s_check_all(r, "hc");
    /* hand-checked: a < 50 and flag, sort -result, the first row */
    int64_t matched = 0;
    xp_value *page = s_page(r, 0, &matched);
    int64_t expect = 0;
    double best = -1e300;
    int64_t best_id = 0;
    for (int k = 0; k < 300; k++) {
        int64_t a = k % 97;
        double b = (k * 7919 % 101) / 10.0;
        if (a < 50 && k % 3 == 0) {
            expect++;
            double res = a * 0.5 - b + 1;
            if (res > best) {
                best = res;
                best_id = k + 1;
            }
        }
    }
    cr_assert_eq(matched, expect);
    cr_assert_eq(xp_as_int64(xp_value_get(xp_value_at(page, 0), "trial_id")),
                 best_id);
    xp_value_destroy(&page);
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
}

Test(history_cache, pages_see_trials_added_since)
{
    xp_experiment *w = xpt_pattern_define(xpt_open("hc"));
    xpt_pattern_run(w, 0, 100);
    xp_experiment *r = s_reader_open("hc");
    s_check_all(r, "hc");
    s_check_all(w, "hc");
    /* another connection adds trials: the reader's next pages see them */
    xpt_pattern_run(w, 100, 160);
    s_check_all(r, "hc");
    /* and the writer's own pages see its own trials */
    s_check_all(w, "hc");
    int64_t matched = 0;
    xp_value *page = s_page(r, 5, &matched); /* status == 'succeeded' */
    cr_assert_eq(matched, 160);
    xp_value_destroy(&page);
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
}

Test(history_cache, a_running_trial_that_finishes_is_seen_finished)
{
    xp_experiment *w = xpt_pattern_define(xpt_open("hc"));
    xpt_pattern_run(w, 0, 50);
    xp_experiment *r = s_reader_open("hc");
    int64_t matched = 0;
    xp_value *page = s_page(r, 5, &matched); /* cache: 50 succeeded */
    cr_assert_eq(matched, 50);
    xp_value_destroy(&page);
    /* during trial 51 the reader pages "status == 'running'" */
    xpt_pattern_reader = r;
    xpt_pattern_running_seen = 0;
    xpt_pattern_run(w, 50, 51);
    xpt_pattern_reader = NULL;
    cr_assert_eq(xpt_pattern_running_seen, 1,
                 "the reader saw %lld running trials",
                 (long long)xpt_pattern_running_seen);
    page = s_page(r, 5, &matched);
    cr_assert_eq(matched, 51, "the finished trial is not seen succeeded");
    xp_value_destroy(&page);
    s_check_all(r, "hc");
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
}

Test(history_cache, whole_history_rows_are_the_stored_records)
{
    xp_experiment *w = xpt_pattern_define(xpt_open("hc"));
    xpt_pattern_run(w, 0, 120);
    xp_experiment *r = s_reader_open("hc");
    xp_value *all = NULL;
    xp_error_t err;
    cr_assert_eq(xp_history(r, &all, &err), 0, "%s", err.message);
    cr_assert_eq(xp_value_count(all), 120);
    for (size_t i = 0; i < xp_value_count(all); i++) {
        xp_value *one = NULL;
        cr_assert_eq(xp_trial_get(r, (int64_t)i + 1, &one, &err), 0, "%s",
                     err.message);
        cr_assert(xp_value_equal(xp_value_at(all, i), one), "row %zu", i);
        xp_value_destroy(&one);
    }
    /* rows change like any value, and are freed with the history */
    xp_value *row = (xp_value *)xp_value_at(all, 3);
    xp_set_string(xp_document_set(row, "note"), "changed");
    xp_set_int64((xp_value *)xp_value_get(row, "trial_id"), 1000);
    cr_assert_eq(xp_as_int64(xp_value_get(row, "trial_id")), 1000);
    xp_value_destroy(&all);
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
}
