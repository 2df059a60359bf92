/* test_redis_history.c — history on Redis, read as the local store's is:
 * pages in trial id order by rank of ID:trials; other pages through the
 * handle's cache of record projections, which must follow every kind of
 * record write (a trial started, queued, marked running by a scheduler,
 * finished, interrupted, and a write by a libxp from before ID:version);
 * whole histories read in pipelined trips, which go on, each record
 * once, after the connection is lost on the way. */
#include "../backend_fixture.h"
#include "../history_pattern.h"

#include "experiment.h"
#include "store/record.h"
#include "store/store.h"
#include "util/sys.h"

TestSuite(redis_history, .init = xpt_setup, .fini = xpt_teardown,
          .timeout = 120);

static char s_uri[300];
static char s_id[64];

/* The shared server's URI into s_uri and a fresh experiment id into
 * s_id; a direct connection to it (caller frees). */
static redisContext *s_server(const char *base)
{
    char host[256];
    int port, db;
    xpt_backend_pick(XPT_REDIS, s_uri, sizeof s_uri);
    if (!xpt_redis_addr(s_uri, host, &port, &db))
        XPT_SKIP("XP_TEST_REDIS_URI is not of the form redis://host:port/db");
    snprintf(s_id, sizeof s_id, "%s_%d", base, (int)getpid());
    xpt_redis_forget(s_uri, s_id);
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    cr_assert(c && !c->err, "cannot connect to %s", s_uri);
    freeReplyObject(redisCommand(c, "SELECT %d", db));
    return c;
}

static void s_done(redisContext *c)
{
    redisFree(c);
    xpt_redis_forget(s_uri, s_id);
}

static xp_experiment *s_open(bool read_only)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_uri;
    o.read_only = read_only;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err;
    cr_assert_eq(xp_experiment_open(&ex, s_id, &o, &err), 0, "%s", err.message);
    return ex;
}

static const xpt_pattern_query s_queries[] = {
    {"a < 50 and flag == true", "-result", 0, 20},
    {"a < 50 and flag == true", NULL, 5, 20},
    {NULL, "s", 0, 30},
    {NULL, "s,-b", 17, 30},
    {"s == 'n-007' or b > 5", "-a", 0, 0},
    {"status == 'succeeded'", "result", 3, 25},
    {"status == 'queued' or status == 'running'", "-trial_id", 0, 0},
    {"status == 'interrupted'", NULL, 0, 0},
    {"not (a >= 10)", "-trial_id", 0, 15},
    {"parameters.missing == null", "b", 0, 10},
    {NULL, NULL, 0, 7},
    {NULL, NULL, 40, 0},
    {NULL, "-trial_id", 3, 4},
    {NULL, "-trial_id", 1000, 4},
};
#define N_QUERIES (sizeof s_queries / sizeof s_queries[0])

static xp_value *s_page(xp_experiment *ex, size_t i, int64_t *matched)
{
    return xpt_pattern_page(ex, &s_queries[i], matched);
}

/* The page of query i computed here from the whole history: the rows
 * that match, in the query's order, of its window. Only for the queries
 * whose order this file can tell: trial id either way, and none. */
static bool s_expected(const xp_value *all, size_t i, int64_t *matched,
                       int64_t *first, int64_t *count)
{
    const char *f = s_queries[i].filter, *s = s_queries[i].sort;
    if (f || (s && strcmp(s, "-trial_id") != 0))
        return false;
    int64_t n = (int64_t)xp_value_count(all);
    int64_t off = s_queries[i].offset, lim = s_queries[i].limit;
    *matched = n;
    *count = off >= n ? 0 : lim == 0 || off + lim > n ? n - off : lim;
    *first = s ? n - off : off + 1;
    return true;
}

/* Every query on ex (answered by its cache once it has one) gives the
 * page the same query gives on a fresh handle, whose first query is a
 * scan of every stored record; the id-order pages also the ids
 * computed from the whole history. */
static void s_check_all(xp_experiment *ex)
{
    xp_value *all = NULL;
    xp_error_t err;
    cr_assert_eq(xp_history(ex, &all, &err), 0, "%s", err.message);
    for (size_t i = 0; i < N_QUERIES; i++) {
        xp_experiment *fresh = s_open(true);
        int64_t m_scan = -1, m_cached = -2;
        xp_value *scan = s_page(fresh, i, &m_scan);
        xp_value *cached = s_page(ex, i, &m_cached);
        cr_assert_eq(m_cached, m_scan, "query %zu: %lld matched, scan %lld", i,
                     (long long)m_cached, (long long)m_scan);
        cr_assert(xp_value_equal(cached, scan), "query %zu: pages differ", i);
        int64_t matched, first, count;
        if (s_expected(all, i, &matched, &first, &count)) {
            cr_assert_eq(m_cached, matched, "query %zu", i);
            cr_assert_eq((int64_t)xp_value_count(cached), count,
                         "query %zu: %zu rows, want %lld", i,
                         xp_value_count(cached), (long long)count);
            int64_t step = s_queries[i].sort ? -1 : 1;
            for (int64_t k = 0; k < count; k++) {
                const xp_value *row = xp_value_at(cached, (size_t)k);
                int64_t id = xp_as_int64(xp_value_get(row, "trial_id"));
                cr_assert_eq(id, first + step * k, "query %zu row %lld", i,
                             (long long)k);
                cr_assert(xp_value_equal(row, xp_value_at(all, (size_t)id - 1)),
                          "query %zu: trial %lld differs from its history "
                          "row",
                          i, (long long)id);
            }
        }
        xp_value_destroy(&scan);
        xp_value_destroy(&cached);
        xp_experiment_destroy(&fresh);
    }
    xp_value_destroy(&all);
}

/* The count of query i on ex. */
static int64_t s_matched(xp_experiment *ex, size_t i)
{
    int64_t matched = -1;
    xp_value *page = s_page(ex, i, &matched);
    xp_value_destroy(&page);
    return matched;
}

enum { Q_SUCCEEDED = 5, Q_WAITING = 6, Q_INTERRUPTED = 7 };

Test(redis_history, cached_pages_follow_every_record_write)
{
    redisContext *c = s_server("rh_writes");
    xp_experiment *w = xpt_pattern_define(s_open(false));
    xpt_pattern_run(w, 0, 120);
    xp_experiment *r = s_open(true);
    /* twice: the first round builds the cache, the second reads it */
    s_check_all(r);
    s_check_all(r);
    cr_assert_eq(s_matched(r, Q_SUCCEEDED), 120);

    /* trials run by another handle: started (seen running), finished */
    xpt_pattern_reader = r;
    xpt_pattern_running_seen = 0;
    xpt_pattern_run(w, 120, 122);
    xpt_pattern_reader = NULL;
    cr_assert_eq(xpt_pattern_running_seen, 2,
                 "the reader saw %lld running trials",
                 (long long)xpt_pattern_running_seen);
    cr_assert_eq(s_matched(r, Q_SUCCEEDED), 122);

    /* a scheduler's trial: queued, then marked running, then interrupted
     * by a process-death check */
    xp_backend *be = xp__experiment_store(w);
    xp_error_t err;
    xp_trial_record queued = {.status = XP_STATUS_QUEUED};
    cr_assert_eq(xp__store_trial_begin(be, &queued, &err), 0, "%s",
                 err.message);
    cr_assert_eq(s_matched(r, Q_WAITING), 1, "queued trial not seen");
    xp_trial_record running = queued;
    running.status = XP_STATUS_RUNNING;
    running.started_ms = xp__now_ms();
    cr_assert_eq(xp__store_trial_running(be, &running, &err), 0, "%s",
                 err.message);
    xp_query q = XP_QUERY_INIT;
    q.filter = "status == 'running'";
    xp_value *page = NULL;
    int64_t matched = 0;
    cr_assert_eq(xp_history_query(r, &q, &page, &matched, &err), 0, "%s",
                 err.message);
    cr_assert_eq(matched, 1, "trial marked running not seen running");
    xp_value_destroy(&page);
    xp_trial_record owned = {.status = XP_STATUS_RUNNING,
                             .host = "elsewhere",
                             .pid = 4242,
                             .pstart = 77};
    cr_assert_eq(xp__store_trial_begin(be, &owned, &err), 0, "%s", err.message);
    cr_assert_eq(s_matched(r, Q_WAITING), 2);
    cr_assert_eq(xp__store_trial_interrupt(be, owned.trial_id, xp__now_ms(),
                                           "gone", &err),
                 0, "%s", err.message);
    cr_assert_eq(s_matched(r, Q_INTERRUPTED), 1, "interrupt not seen");
    cr_assert_eq(s_matched(r, Q_WAITING), 1);
    s_check_all(r);

    /* A libxp from before ID:version rewrote a record: another status,
     * and the counter moved by an id it allocated and gave up. */
    redisReply *rep =
        redisCommand(c, "GET %s:trial:%lld", s_id, (long long)queued.trial_id);
    cr_assert(rep && rep->type == REDIS_REPLY_STRING);
    bson_t doc, changed = BSON_INITIALIZER;
    cr_assert(bson_init_static(&doc, (const uint8_t *)rep->str, rep->len));
    bson_copy_to_excluding_noinit(&doc, &changed, "status", NULL);
    BSON_APPEND_UTF8(&changed, "status", "interrupted");
    freeReplyObject(rep);
    freeReplyObject(redisCommand(c, "MULTI"));
    freeReplyObject(redisCommand(c, "SET %s:trial:%lld %b", s_id,
                                 (long long)queued.trial_id,
                                 bson_get_data(&changed), (size_t)changed.len));
    freeReplyObject(redisCommand(c, "INCR %s:counter", s_id));
    freeReplyObject(redisCommand(c, "EXEC"));
    bson_destroy(&changed);
    cr_assert_eq(s_matched(r, Q_INTERRUPTED), 2,
                 "an older writer's change not seen");
    s_check_all(r);
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
    s_done(c);
}

/* ---- whole histories in pipelined trips */

static struct {
    redisContext *killer;
    int64_t kill_at; /* the record after which the connection is killed */
    int64_t seen, last, out_of_order;
} s_each;

static int s_count(const bson_t *doc, int64_t id, void *user)
{
    (void)user;
    cr_assert_not_null(doc, "record %lld damaged", (long long)id);
    if (id != s_each.last + 1)
        s_each.out_of_order++;
    s_each.last = id;
    if (++s_each.seen == s_each.kill_at)
        freeReplyObject(
            redisCommand(s_each.killer, "CLIENT KILL TYPE normal SKIPME yes"));
    return 0;
}

Test(redis_history, a_connection_lost_in_a_long_read_goes_on_where_it_was)
{
    redisContext *c = s_server("rh_trips");
    xp_experiment *w = s_open(false);
    xp_backend *be = xp__experiment_store(w);
    xp_error_t err;
    /* three trips of 4,000 records and a fourth of 1,500; queued records
     * are written fastest */
    const int64_t n = 13500;
    xp__store_group_begin(be, NULL);
    for (int64_t i = 0; i < n; i++) {
        xp_trial_record rec = {.status = XP_STATUS_QUEUED};
        cr_assert_eq(xp__store_trial_begin(be, &rec, &err), 0, "%s",
                     err.message);
    }
    xp__store_group_end(be, NULL);
    xp_experiment *r = s_open(true);
    xp_backend *rb = xp__experiment_store(r);
    s_each.killer = c;
    for (int64_t kill_at = 0; kill_at <= 9000; kill_at += 4500) {
        s_each.kill_at = kill_at ? kill_at : -1;
        s_each.seen = s_each.last = s_each.out_of_order = 0;
        cr_assert_eq(xp__store_trials_each(rb, s_count, NULL, &err), 0,
                     "killed after %lld: %s", (long long)kill_at, err.message);
        cr_assert_eq(s_each.seen, n, "killed after %lld: %lld records",
                     (long long)kill_at, (long long)s_each.seen);
        cr_assert_eq(s_each.out_of_order, 0, "killed after %lld",
                     (long long)kill_at);
    }
    /* the whole history and a page after one more kill */
    freeReplyObject(redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes"));
    xp_value *all = NULL;
    cr_assert_eq(xp_history(r, &all, &err), 0, "%s", err.message);
    cr_assert_eq(xp_value_count(all), (size_t)n);
    cr_assert_eq(
        xp_as_int64(xp_value_get(xp_value_at(all, (size_t)n - 1), "trial_id")),
        n);
    xp_value_destroy(&all);
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
    s_done(c);
}

/* Ids 1 .. the counter are read without listing ID:trials; a history
 * with an id given up (a start record that failed) is listed. */
Test(redis_history, a_history_with_an_id_given_up_is_read_whole)
{
    redisContext *c = s_server("rh_gap");
    xp_experiment *w = xpt_pattern_define(s_open(false));
    xpt_pattern_run(w, 0, 3);
    freeReplyObject(redisCommand(c, "INCR %s:counter", s_id)); /* id 4 */
    xpt_pattern_run(w, 3, 5);
    xp_experiment *r = s_open(true);
    xp_value *all = NULL;
    xp_error_t err;
    cr_assert_eq(xp_history(r, &all, &err), 0, "%s", err.message);
    static const int64_t want[] = {1, 2, 3, 5, 6};
    cr_assert_eq(xp_value_count(all), 5, "%zu rows", xp_value_count(all));
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(xp_as_int64(xp_value_get(xp_value_at(all, i), "trial_id")),
                     want[i]);
    xp_value_destroy(&all);
    cr_assert_eq(s_matched(r, Q_SUCCEEDED), 5);
    xp_experiment_destroy(&r);
    xp_experiment_destroy(&w);
    s_done(c);
}
