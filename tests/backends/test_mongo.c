/* test_mongo.c — MongoDB-specific tests on XP_TEST_MONGODB_URI: commands
 * per trial (APM hook), bad URIs and ids, GridFS, metric buckets, 8 processes,
 * the test server's refusals, and a private test server killed mid-run. */
#include "../common.h"

#include <math.h>

#include "util/names.h"

#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* backend_mongo.c: commands started on pools opened while counting is
 * enabled, with their names (space separated); reading resets. */
extern void xp__mongo_count_commands(bool enable);
extern uint64_t xp__mongo_commands(char *names, size_t size);

#define MAX_COMMANDS_PER_TRIAL 3

static char s_uri[1024];
static char s_cache[PATH_MAX];

static void s_init(void)
{
    xpt_setup();
    snprintf(s_cache, sizeof s_cache, "%s/cache", xpt_dir);
    setenv("XP_CACHE_DIR", s_cache, 1);
}

static void s_fini(void)
{
    xpt_teardown();
}

/* Selects XP_TEST_MONGODB_URI or skips the test with the reason. */
static void s_need_server(void)
{
    const char *uri = getenv("XP_TEST_MONGODB_URI");
    if (!uri || !*uri)
        xpt_skip("XP_TEST_MONGODB_URI is not set (tests/run.sh starts the "
                 "MongoDB wire-protocol test server)");
    snprintf(s_uri, sizeof s_uri, "%s", uri);
}

/* "<base>_<pid>": servers are shared between runs. */
static const char *s_uid(const char *base, char buf[XP_ID_MAX + 1])
{
    snprintf(buf, XP_ID_MAX + 1, "%.40s_%d", base, (int)getpid());
    return buf;
}

static xp_experiment *s_open(const char *uri, const char *id)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    o.threads = 2;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    int rc = xp_experiment_open(&ex, id, &o, &err);
    cr_assert_eq(rc, 0, "open %s on %s: code=%u '%s'", id, uri, err.code,
                 err.message);
    return ex;
}

/* Opening id on uri fails; returns the error and the time it took. */
static xp_error_t s_open_fails(const char *uri, const char *id, double *seconds)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    double t0 = xpt_now();
    int rc = xp_experiment_open(&ex, id, &o, &err);
    if (seconds)
        *seconds = xpt_now() - t0;
    cr_assert_eq(rc, -1, "open %s on %s succeeded", id, uri);
    cr_assert_null(ex, "failed open returned a handle");
    cr_assert_null(strchr(err.message, '\n'), "multi-line error: %s",
                   err.message);
    return err;
}

/* A raw driver client on the test server (for checking the stored layout
 * and talking to the server directly). Caller destroys. */
static mongoc_client_t *s_raw_client(const char *uri)
{
    mongoc_init();
    bson_error_t e;
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri, &e);
    cr_assert_not_null(u, "URI %s: %s", uri, e.message);
    mongoc_client_t *c = mongoc_client_new_from_uri(u);
    cr_assert_not_null(c, "client for %s", uri);
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    mongoc_uri_destroy(u);
    return c;
}

static mongoc_collection_t *s_raw_coll(mongoc_client_t *c, const char *uri,
                                       const char *name)
{
    mongoc_uri_t *u = mongoc_uri_new(uri);
    mongoc_collection_t *coll =
        mongoc_client_get_collection(c, mongoc_uri_get_database(u), name);
    mongoc_uri_destroy(u);
    return coll;
}

/* Documents matching filter, counted with a plain find (the test server
 * implements only the commands the backend sends). */
static int64_t s_count(mongoc_collection_t *coll, const bson_t *filter)
{
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    int64_t n = 0;
    while (mongoc_cursor_next(cur, &doc))
        n++;
    bson_error_t e;
    cr_assert(!mongoc_cursor_error(cur, &e), "counting documents: %s",
              e.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    return n;
}

/* ---------------------------------------------------------------- steps */

static int prepare_data(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]));
}

static int calculate_score(xp_step *st, const xp_value *const *in,
                           xp_value *out)
{
    double s = xp_as_double(in[0]);
    if (s == 0)
        return xp_step_fail(st, "division by zero");
    return xp_set_double(out, 10 / s);
}

/* The quickstart graph: two steps, the first persisted, no metrics. */
static void s_define_quickstart(xp_experiment *ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *d = XP_PERSIST(ex, prepare_data, a, b);
    XP_RESULT(ex, calculate_score, d);
}

/* Runs a trial with parameter a (and b unless negative); returns its
 * id. */
static int64_t s_run(xp_experiment *ex, int64_t a, int64_t b)
{
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", a, &err), 0, "%s", err.message);
    if (b >= 0)
        cr_assert_eq(xp_set_param_int64(ex, "b", b, &err), 0, "%s",
                     err.message);
    int64_t id = 0;
    int rc = xp_compute(ex, NULL, NULL, &id, &err);
    cr_assert_eq(rc, 0, "trial a=%lld b=%lld: code=%u '%s'", (long long)a,
                 (long long)b, err.code, err.message);
    return id;
}

/* True when XP_TEST_MONGODB_URI is FerretDB (buildInfo names it). */
static bool s_is_ferretdb(void)
{
    mongoc_client_t *c = s_raw_client(s_uri);
    bson_t *cmd = BCON_NEW("buildInfo", BCON_INT32(1));
    bson_t reply;
    bson_error_t e;
    bson_iter_t it;
    bool ferret =
        mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, &e) &&
        bson_iter_init_find(&it, &reply, "ferretdbVersion");
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_client_destroy(c);
    return ferret;
}

/* ---------------------------------------------------------------- tests */

TestSuite(mongo, .init = s_init, .fini = s_fini, .timeout = 120);

Test(mongo, commands_per_plain_trial_are_few_and_constant)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("commands", idbuf);
    /* FerretDB looks each step's hash up by _id and stores it there too
     * (mongo.c, docs/schema.md "Compatibility"): 2 more for 2 steps. */
    const uint64_t most = MAX_COMMANDS_PER_TRIAL + (s_is_ferretdb() ? 2 : 0);
    xp__mongo_count_commands(true);
    xp_experiment *ex = s_open(s_uri, id);
    s_define_quickstart(ex);
    s_run(ex, 1, 2); /* first trial: stores code and environment */
    char names[2048];
    uint64_t counts[20];
    for (int i = 0; i < 20; i++) {
        xp__mongo_commands(NULL, 0);
        /* New inputs for half the trials, repeated ones for the rest. */
        s_run(ex, i < 10 ? 100 + i : 1, 2);
        counts[i] = xp__mongo_commands(names, sizeof names);
        cr_assert_leq(counts[i], most, "trial %d took %llu commands: %s", i + 2,
                      (unsigned long long)counts[i], names);
        cr_assert_eq(counts[i], counts[0],
                     "trial %d took %llu commands, trial 2 took %llu: %s",
                     i + 2, (unsigned long long)counts[i],
                     (unsigned long long)counts[0], names);
    }
    fprintf(stderr, "commands per plain trial: %llu (%s)\n",
            (unsigned long long)counts[0], names);
    xp__mongo_count_commands(false);
    xp_experiment_destroy(&ex);
}

Test(mongo, stored_documents_are_queryable)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("layout", idbuf);
    xp_experiment *ex = s_open(s_uri, id);
    s_define_quickstart(ex);
    for (int a = 1; a < 5; a++)
        s_run(ex, a, 0);
    /* a + b = 0 divides by zero: a failed trial. */
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 0, &err);
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1,
                 "division by zero succeeded");
    xp_experiment_destroy(&ex);

    mongoc_client_t *c = s_raw_client(s_uri);
    char name[128];
    snprintf(name, sizeof name, "%s.trials", id);
    mongoc_collection_t *trials = s_raw_coll(c, s_uri, name);
    /* docs/schema.md: all succeeded trials with a < 3 sorted by result. */
    bson_t *filter = BCON_NEW("status", "succeeded", "parameters.a", "{", "$lt",
                              BCON_INT64(3), "}");
    bson_t *opts = BCON_NEW("sort", "{", "result", BCON_INT32(1), "}");
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(trials, filter, opts, NULL);
    const bson_t *doc;
    int n = 0;
    double last = -1;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it, sub;
        cr_assert(bson_iter_init(&it, doc) &&
                      bson_iter_find_descendant(&it, "parameters.a", &sub) &&
                      BSON_ITER_HOLDS_INT64(&sub),
                  "parameters.a is not stored as int64");
        cr_assert(bson_iter_init_find(&it, doc, "started") &&
                      BSON_ITER_HOLDS_DATE_TIME(&it),
                  "started is not a BSON date");
        cr_assert(bson_iter_init_find(&it, doc, "finished") &&
                      BSON_ITER_HOLDS_DATE_TIME(&it),
                  "finished is not a BSON date");
        cr_assert(bson_iter_init(&it, doc) &&
                      bson_iter_find_descendant(&it, "persisted.prepare_data",
                                                &sub) &&
                      BSON_ITER_HOLDS_DOUBLE(&sub),
                  "small persisted value is not inline");
        cr_assert(bson_iter_init_find(&it, doc, "result") &&
                      BSON_ITER_HOLDS_DOUBLE(&it),
                  "result is not a double");
        cr_assert_geq(bson_iter_double(&it), last, "not sorted by result");
        last = bson_iter_double(&it);
        n++;
    }
    bson_error_t e;
    cr_assert(!mongoc_cursor_error(cur, &e), "query: %s", e.message);
    cr_assert_eq(n, 2, "%d succeeded trials with a < 3", n);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(trials);
    mongoc_client_destroy(c);
}

Test(mongo, uri_without_database_is_rejected)
{
    const char *uris[] = {"mongodb://127.0.0.1:1", "mongodb://127.0.0.1:1/",
                          "mongodb://u:s3cret@127.0.0.1:1/?appname=x"};
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
        double seconds;
        xp_error_t err = s_open_fails(uris[i], "nodb", &seconds);
        cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "%s: '%s'", uris[i],
                     err.message);
        cr_assert_eq(err.code, XP_EINVAL, "%s: '%s'", uris[i], err.message);
        cr_assert_not_null(strstr(err.message, "names no database"), "%s: '%s'",
                           uris[i], err.message);
        cr_assert_null(strstr(err.message, "s3cret"), "password in '%s'",
                       err.message);
        cr_assert_lt(seconds, 0.25, "took %.2f s", seconds);
    }
}

Test(mongo, unparsable_uri_is_rejected)
{
    const char *uris[] = {"mongodb://u:s3cret@[::1/db",
                          "mongodb://u:s3cret@host:notaport/db",
                          "mongodb://u:s3cret@/db",
                          "mongodb://u:s3cret@h/db?w=nonsense&journal=maybe",
                          "mongodb://u:s3cret@h/bad.db.name"};
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
        double seconds;
        xp_error_t err = s_open_fails(uris[i], "baduri", &seconds);
        cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "%s: '%s'", uris[i],
                     err.message);
        cr_assert_eq(err.code, XP_EINVAL, "%s: '%s'", uris[i], err.message);
        cr_assert_null(strstr(err.message, "s3cret"), "password in '%s'",
                       err.message);
        cr_assert_lt(seconds, 0.25, "%s took %.2f s", uris[i], seconds);
    }
}

Test(mongo, unreachable_server_is_a_clear_error_within_the_timeout)
{
    const char *uri =
        "mongodb://u:s3cret@127.0.0.1:1/db?serverSelectionTimeoutMS=300";
    double seconds;
    xp_error_t err = s_open_fails(uri, "unreachable", &seconds);
    cr_assert_eq(err.domain, XP_DOMAIN_BACKEND, "'%s'", err.message);
    cr_assert_eq(err.code, XP_EIO, "'%s'", err.message);
    cr_assert_null(strstr(err.message, "s3cret"), "password in '%s'",
                   err.message);
    cr_assert_not_null(strstr(err.message, "u:***@127.0.0.1:1"),
                       "no masked URI in '%s'", err.message);
    cr_assert_not_null(strstr(err.message, "unreachable"), "'%s'", err.message);
    cr_assert_lt(seconds, 2.0, "took %.2f s", seconds);
}

Test(mongo, hostile_ids_never_reach_the_server)
{
    s_need_server();
    char longest[XP_ID_MAX + 2];
    memset(longest, 'x', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    const char *ids[] = {"$where",   "a.b",  "..",     "",   longest,
                         "\xff\xfe", "x\ny", "system", "-rf"};
    /* A server that would take 10 s to declare unreachable: an id
     * reaching it would fail slowly. */
    const char *slow = "mongodb://127.0.0.1:1/db?serverSelectionTimeoutMS="
                       "10000";
    xp__mongo_count_commands(true);
    xp__mongo_commands(NULL, 0);
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        for (int s = 0; s < 2; s++) {
            double seconds;
            xp_error_t err = s_open_fails(s ? slow : s_uri, ids[i], &seconds);
            cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "id #%zu: '%s'", i,
                         err.message);
            cr_assert_eq(err.code, XP_EINVAL, "id #%zu: '%s'", i, err.message);
            cr_assert_lt(seconds, 0.25, "id #%zu took %.2f s", i, seconds);
        }
    }
    char names[256];
    uint64_t n = xp__mongo_commands(names, sizeof names);
    xp__mongo_count_commands(false);
    cr_assert_eq(n, 0, "hostile ids sent %llu commands: %s",
                 (unsigned long long)n, names);
}

Test(mongo, unknown_experiment_with_must_exist_is_not_found)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_uri;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, s_uid("never", idbuf), &o, &err), -1,
                 "opened an experiment that does not exist");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
}

#define BIG_BYTES (20u * 1024 * 1024)

static int big_value(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    uint8_t *data = malloc(BIG_BYTES);
    if (!data)
        return xp_step_fail(st, "out of memory");
    for (size_t i = 0; i < BIG_BYTES; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    int rc = xp_set_blob(out, data, BIG_BYTES);
    free(data);
    return rc;
}

static int blob_size(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    size_t len = 0;
    xp_as_blob(in[0], &len);
    return xp_set_int64(out, (int64_t)len);
}

Test(mongo, persisted_value_of_20_mb_round_trips_through_gridfs)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("gridfs", idbuf);
    xp_experiment *ex = s_open(s_uri, id);
    xp_node *big = XP_PERSIST(ex, big_value, xp_parameter(ex, "a"));
    XP_RESULT(ex, blob_size, big);
    int64_t trial = s_run(ex, 0, -1);
    xp_value *v = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_load_persisted(ex, "big_value", trial, &v, &err), 0,
                 "load: %s", err.message);
    size_t len = 0;
    const uint8_t *data = xp_as_blob(v, &len);
    cr_assert_not_null(data, "persisted value is %s",
                       xp_type_name(xp_value_type(v)));
    cr_assert_eq(len, BIG_BYTES, "%zu bytes read back", len);
    for (size_t i = 0; i < BIG_BYTES; i += 4099)
        cr_assert_eq(data[i], (uint8_t)(i * 2654435761u >> 13),
                     "byte %zu differs", i);
    cr_assert_eq(data[BIG_BYTES - 1],
                 (uint8_t)((BIG_BYTES - 1) * 2654435761u >> 13),
                 "last byte differs");
    xp_value_destroy(&v);
    xp_value *t = xpt_trial(ex, trial);
    cr_assert_eq(xpt_get_int(t, "result"), (int64_t)BIG_BYTES, "result");
    cr_assert_null(xp_value_get(t, "persisted_gridfs"),
                   "storage fields leak into the trial record");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);

    /* Stored in GridFS bucket <id>.fs and referenced by the trial. */
    mongoc_client_t *c = s_raw_client(s_uri);
    char name[128];
    snprintf(name, sizeof name, "%s.fs.files", id);
    mongoc_collection_t *files = s_raw_coll(c, s_uri, name);
    bson_t empty = BSON_INITIALIZER;
    cr_assert_eq(s_count(files, &empty), 1, "GridFS files");
    snprintf(name, sizeof name, "%s.trials", id);
    mongoc_collection_t *trials = s_raw_coll(c, s_uri, name);
    bson_t *filter = BCON_NEW("persisted_gridfs.big_value.file", "{", "$exists",
                              BCON_BOOL(true), "}");
    cr_assert_eq(s_count(trials, filter), 1, "GridFS reference");
    bson_destroy(filter);
    mongoc_collection_destroy(files);
    mongoc_collection_destroy(trials);
    mongoc_client_destroy(c);
}

#define RESULT_BYTES (3u * 1024 * 1024)

static int big_result(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    uint8_t *data = malloc(RESULT_BYTES);
    if (!data)
        return xp_step_fail(st, "out of memory");
    memset(data, (int)xp_as_int64(in[0]), RESULT_BYTES);
    int rc = xp_set_blob(out, data, RESULT_BYTES);
    free(data);
    return rc;
}

Test(mongo, large_result_is_kept_in_gridfs_and_read_back)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("bigresult", idbuf);
    xp_experiment *ex = s_open(s_uri, id);
    XP_RESULT(ex, big_result, xp_parameter(ex, "a"));
    s_run(ex, 7, -1);
    s_run(ex, 9, -1);
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 2, "history");
    for (size_t i = 0; i < 2; i++) {
        const xp_value *t = xp_value_at(h, i);
        size_t len = 0;
        const uint8_t *data = xp_as_blob(xpt_field(t, "result"), &len);
        cr_assert(data && len == RESULT_BYTES,
                  "result of trial %zu: %zu "
                  "bytes",
                  i + 1, len);
        cr_assert(data[0] == (i ? 9 : 7) && data[len - 1] == data[0],
                  "result of trial %zu differs", i + 1);
        cr_assert_null(xp_value_get(t, "result_gridfs"),
                       "storage fields leak into the history");
        cr_assert_str_eq(xpt_get_str(t, "result_type"), "blob");
    }
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

/* A result and a persisted value whose keys MongoDB documents cannot hold
 * portably ('$' first, '.'), a NaN and an array of arrays (FerretDB
 * refuses both). */
static int odd_keys(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    xp_set_document(out);
    xp_set_int64(xp_document_set(out, "a.b"), xp_as_int64(in[0]));
    xp_set_string(xp_document_set(out, "$set"), "dollar");
    xp_set_double(xp_document_set(out, "nan"), NAN);
    xp_value_from_json(xp_document_set(out, "grid"), "[[1, 2], [3]]", NULL);
    return 0;
}

static int odd_keys_result(xp_step *st, const xp_value *const *in,
                           xp_value *out)
{
    (void)st;
    xp_set_document(out);
    xp_set_int64(xp_document_set(out, "a.b"),
                 xp_as_int64(xp_value_get(in[0], "a.b")));
    xp_set_string(xp_document_set(out, "$set"), "dollar");
    xp_set_double(xp_document_set(out, "nan"), NAN);
    xp_value_from_json(xp_document_set(out, "grid"), "[[1, 2], [3]]", NULL);
    return 0;
}

static void s_check_odd(const xp_value *v, int64_t a)
{
    cr_assert_eq(xp_value_type(v), XP_TYPE_DOCUMENT, "not a document");
    cr_assert_eq(xp_as_int64(xp_value_get(v, "a.b")), a, "'a.b'");
    cr_assert_str_eq(xp_as_string(xp_value_get(v, "$set"), NULL), "dollar");
    cr_assert(isnan(xp_as_double(xp_value_get(v, "nan"))), "NaN");
    const xp_value *grid = xp_value_get(v, "grid");
    cr_assert_eq(xp_value_count(grid), 2, "array of arrays");
    cr_assert_eq(xp_as_int64(xp_value_at(xp_value_at(grid, 1), 0)), 3);
}

Test(mongo, keys_with_dollar_and_dot_are_kept_or_refused_before_an_id)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("oddkeys", idbuf);
    xp_experiment *ex = s_open(s_uri, id);
    xp_node *a = xp_parameter(ex, "a");
    XP_RESULT(ex, odd_keys_result, XP_PERSIST(ex, odd_keys, a));
    /* Values a step returns are kept as they are (in GridFS). */
    cr_assert_eq(s_run(ex, 5, -1), 1, "trial id");
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    xp_value_destroy(&t);
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 1, "history");
    s_check_odd(xpt_field(xp_value_at(h, 0), "result"), 5);
    xp_value_destroy(&h);
    xp_value *v = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_load_persisted(ex, "odd_keys", 1, &v, &err), 0, "%s",
                 err.message);
    s_check_odd(v, 5);
    xp_value_destroy(&v);

    /* A parameter must stay queryable: refused with the field named, and
     * no trial id is taken. */
    cr_assert_eq(xp_set_param_literal(ex, "a", "{\"x.y\": 1}", &err), 0, "%s",
                 err.message);
    int64_t tid = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &tid, &err), -1, "accepted");
    cr_assert_not_null(strstr(err.message, "'parameters.a.x.y'"), "'%s'",
                       err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    cr_assert_eq(s_run(ex, 6, -1), 2, "an id was consumed by the refusal");
    xp_experiment_destroy(&ex);
}

static int text_length(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    size_t len = 0;
    xp_as_string(in[0], &len);
    return xp_set_int64(out, (int64_t)len);
}

static int plus_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

/* A 12.6 MB parameter leaves no room in the document: the persisted value
 * and the step hashes go to GridFS and the trial is recorded, not refused
 * at its end for the 16 MiB limit. */
Test(mongo, trial_document_near_the_16_mib_limit_is_recorded, .timeout = 240)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("nearlimit", idbuf);
    xp_experiment *ex = s_open(s_uri, id);
    xp_node *a = xp_parameter(ex, "a");
    XP_RESULT(ex, plus_one, XP_PERSIST(ex, text_length, a));
    const size_t big = 12600 * 1000; /* past the 12 MiB budget */
    char *text = malloc(big + 1);
    memset(text, 'x', big);
    text[big] = '\0';
    xp_value *v = xp_value_new();
    xp_set_string(v, text);
    free(text);
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param(ex, "a", v, &err), 0, "%s", err.message);
    xp_value_destroy(&v);
    int64_t tid = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &tid, &err), 0, "%s", err.message);
    xp_value *t = xpt_trial(ex, tid);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(t, "result"), (int64_t)big + 1);
    xp_value_destroy(&t);
    cr_assert_eq(xp_load_persisted(ex, "text_length", tid, &v, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_as_int64(v), (int64_t)big);
    xp_value_destroy(&v);

    mongoc_client_t *c = s_raw_client(s_uri);
    char name[XP_ID_MAX + 16];
    snprintf(name, sizeof name, "%s.trials", id);
    mongoc_collection_t *trials = s_raw_coll(c, s_uri, name);
    bson_t *filter = BCON_NEW("_id", BCON_INT64(tid), "step_hashes_gridfs.file",
                              BCON_UTF8("1/step_hashes"),
                              "persisted_gridfs.text_length.bytes", "{", "$gt",
                              BCON_INT32(0), "}");
    cr_assert_eq(s_count(trials, filter), 1,
                 "step hashes and the persisted value are not in GridFS");
    bson_destroy(filter);
    mongoc_collection_destroy(trials);
    mongoc_client_destroy(c);
    xp_experiment_destroy(&ex);
}

#define METRIC_POINTS 200000
#define BUCKET_POINTS 8192

static int long_metric(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    for (int64_t e = 0; e < METRIC_POINTS; e++)
        if (xp_save_metric(st, "loss", e, 1.0 / (double)(e + 1)) != 0)
            return xp_step_fail(st, "save_metric failed at %lld", (long long)e);
    return xp_set_int64(out, METRIC_POINTS);
}

Test(mongo, metric_of_200000_points_is_bucketed, .timeout = 240)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("metric", idbuf);
    xp_experiment *ex = s_open(s_uri, id);
    XP_RESULT(ex, long_metric, xp_parameter(ex, "a"));
    double t0 = xpt_now();
    int64_t trial = s_run(ex, 0, -1);
    double written = xpt_now() - t0;
    xp_metric_table *table = NULL;
    xp_error_t err = {0};
    t0 = xpt_now();
    cr_assert_eq(xp_load_metric(ex, "loss", &trial, 1, &table, &err), 0,
                 "load: %s", err.message);
    double read = xpt_now() - t0;
    cr_assert_eq(xp_metric_table_epochs(table), METRIC_POINTS, "%zu epochs",
                 xp_metric_table_epochs(table));
    for (size_t r = 0; r < METRIC_POINTS; r += 997) {
        cr_assert_eq(xp_metric_table_epoch(table, r), (int64_t)r, "epoch");
        cr_assert_eq(xp_metric_table_value(table, r, 0), 1.0 / (double)(r + 1),
                     "value at epoch %zu", r);
    }
    xp_metric_table_destroy(&table);
    xp_experiment_destroy(&ex);
    fprintf(stderr, "metric of %d points: written in %.2f s, read in %.2f s\n",
            METRIC_POINTS, written, read);

    mongoc_client_t *c = s_raw_client(s_uri);
    char name[128];
    snprintf(name, sizeof name, "%s.metrics", id);
    mongoc_collection_t *metrics = s_raw_coll(c, s_uri, name);
    bson_t *filter = BCON_NEW("trial", BCON_INT64(trial), "name", "loss");
    int64_t buckets = s_count(metrics, filter);
    int64_t expected = (METRIC_POINTS + BUCKET_POINTS - 1) / BUCKET_POINTS;
    cr_assert_eq(buckets, expected, "%lld buckets, expected %lld",
                 (long long)buckets, (long long)expected);
    bson_destroy(filter);
    filter = BCON_NEW("n", "{", "$gt", BCON_INT32(BUCKET_POINTS), "}");
    cr_assert_eq(s_count(metrics, filter), 0, "a bucket is too large");
    bson_destroy(filter);
    mongoc_collection_destroy(metrics);
    mongoc_client_destroy(c);
}

#define N_PROCS 8
#define PER_PROC 50

static int add_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

static void s_child(const char *uri, const char *id, int p)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "child %d: open: %s\n", p, err.message);
        _exit(2);
    }
    XP_RESULT(ex, add_one, xp_parameter(ex, "a"));
    for (int k = 0; k < PER_PROC; k++) {
        if (xp_set_param_int64(ex, "a", p * 1000 + k, &err) != 0 ||
            xp_compute(ex, NULL, NULL, NULL, &err) != 0) {
            fprintf(stderr, "child %d trial %d: %s\n", p, k, err.message);
            _exit(3);
        }
    }
    xp_experiment_destroy(&ex);
    _exit(0);
}

Test(mongo, eight_processes_get_ids_1_to_400_once, .timeout = 240)
{
    s_need_server();
    char idbuf[XP_ID_MAX + 1];
    const char *id = s_uid("procs", idbuf);
    pid_t pids[N_PROCS];
    char logs[N_PROCS][PATH_MAX];
    fflush(NULL);
    /* Every child opens after the fork, racing also on creation. */
    for (int p = 0; p < N_PROCS; p++) {
        snprintf(logs[p], sizeof logs[p], "%s/child%d.log", xpt_dir, p);
        pids[p] = fork();
        cr_assert_neq(pids[p], -1, "fork: %s", strerror(errno));
        if (pids[p] == 0) {
            int fd = open(logs[p], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0)
                dup2(fd, 2);
            s_child(s_uri, id, p);
        }
    }
    for (int p = 0; p < N_PROCS; p++) {
        int st = xpt_wait(pids[p]);
        char *msg = xpt_slurp(logs[p]);
        cr_assert_eq(st, 0, "child %d exited %d: %s", p, st, msg);
        free(msg);
    }
    xp_experiment *ex = s_open(s_uri, id);
    xp_value *h = xpt_history(ex);
    const size_t total = N_PROCS * PER_PROC;
    cr_assert_eq(xp_value_count(h), total, "%zu trials recorded",
                 xp_value_count(h));
    bool seen[N_PROCS][PER_PROC] = {{false}};
    for (size_t i = 0; i < total; i++) {
        const xp_value *t = xp_value_at(h, i);
        cr_assert_eq(xpt_get_int(t, "trial_id"), (int64_t)i + 1,
                     "history[%zu] is trial %lld", i,
                     (long long)xpt_get_int(t, "trial_id"));
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "trial %zu",
                         i + 1);
        int64_t a = xpt_get_int(xpt_field(t, "parameters"), "a");
        int p = (int)(a / 1000), k = (int)(a % 1000);
        cr_assert(p >= 0 && p < N_PROCS && k < PER_PROC, "a=%lld",
                  (long long)a);
        cr_assert(!seen[p][k], "process %d trial %d recorded twice", p, k);
        seen[p][k] = true;
        cr_assert_eq(xpt_get_int(t, "result"), a + 1, "result of %lld",
                     (long long)a);
    }
    xp_value_destroy(&h);
    cr_assert_eq(xpt_last_id(ex), (int64_t)total, "last id");
    xp_experiment_destroy(&ex);

    /* Ids come from the trials themselves (largest + 1): no other
     * collection counts them. */
}

/* ---------------------------------------------------------------- faults */

static pid_t s_server_pid;
static int s_server_port;
static char s_server_log[PATH_MAX];

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0, "bind");
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0, "name");
    close(fd);
    return ntohs(addr.sin_port);
}

/* Starts the private test server on s_server_port and waits for "ready". */
static void s_server_start(void)
{
    const char *script = getenv("XP_TEST_MONGO_SERVER");
    char port[16];
    snprintf(port, sizeof port, "%d", s_server_port);
    /* A log per start: an old "ready" must not count. */
    static int starts;
    snprintf(s_server_log, sizeof s_server_log, "%s/server%d.log", xpt_dir,
             ++starts);
    char *argv[] = {"/usr/bin/python3", (char *)script, "--port", port, NULL};
    s_server_pid = xpt_spawn(argv, NULL, s_server_log, NULL);
    for (int i = 0; i < 200; i++) {
        bool ready = false;
        if (access(s_server_log, R_OK) == 0) {
            char *out = xpt_slurp(s_server_log);
            ready = strstr(out, "ready") != NULL;
            free(out);
        }
        if (ready)
            return;
        int st;
        cr_assert_eq(waitpid(s_server_pid, &st, WNOHANG), 0,
                     "the test server exited (port %d busy?)", s_server_port);
        xpt_sleep(0.05);
    }
    cr_assert_fail("the test server did not start within 10 s");
}

static void s_server_kill(void)
{
    if (s_server_pid > 0) {
        kill(s_server_pid, SIGKILL);
        xpt_wait(s_server_pid);
        s_server_pid = 0;
    }
}

static void s_fault_fini(void)
{
    s_server_kill();
    s_fini();
}

/* The Python wire-protocol test server (tests/servers/, started here on a
 * port of its own) serves what FerretDB cannot: faults on demand (killed
 * and restarted with its state lost, within 0.1 s) and answers to
 * commands it does not know, which this test checks. */
static void s_need_test_server(void)
{
    const char *script = getenv("XP_TEST_MONGO_SERVER");
    if (!script || access(script, R_OK) != 0)
        xpt_skip("XP_TEST_MONGO_SERVER is not set (run through `meson "
                 "test`)");
    if (access("/usr/bin/python3", X_OK) != 0)
        xpt_skip("/usr/bin/python3 is missing");
    s_server_port = s_free_port();
    s_server_start();
}

Test(mongo, test_server_refuses_unknown_commands, .init = s_init,
     .fini = s_fault_fini)
{
    s_need_test_server();
    char uri[128];
    snprintf(uri, sizeof uri,
             "mongodb://127.0.0.1:%d/xp_test?serverSelectionTimeoutMS=2000",
             s_server_port);
    mongoc_client_t *c = s_raw_client(uri);
    bson_t *cmd = BCON_NEW("collMod", "anything");
    bson_error_t e;
    bool ok = mongoc_client_command_simple(c, "xp_test", cmd, NULL, NULL, &e);
    cr_assert(!ok, "collMod succeeded on the test server");
    cr_assert_eq(e.code, 59, "error code %u: %s", e.code, e.message);
    cr_assert_str_eq(e.message, "unsupported command: collMod");
    bson_destroy(cmd);
    mongoc_client_destroy(c);
}

#define A_BOUNCE 2000 /* the step restarts the server (state lost) */
#define A_KILL 1000   /* the step kills the server */

static int fault_step(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    int64_t a = xp_as_int64(in[0]);
    if (a == A_KILL || a == A_BOUNCE)
        s_server_kill();
    if (a == A_BOUNCE)
        s_server_start();
    return xp_set_int64(out, a * 2);
}

static void s_define_fault(xp_experiment *ex)
{
    XP_RESULT(ex, fault_step, xp_parameter(ex, "a"));
}

/* Runs a trial expected to fail; returns its error and duration. */
static xp_error_t s_run_fails(xp_experiment *ex, int64_t a, int64_t *id,
                              double *seconds)
{
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", a, &err), 0, "%s", err.message);
    double t0 = xpt_now();
    int rc = xp_compute(ex, NULL, NULL, id, &err);
    *seconds = xpt_now() - t0;
    cr_assert_eq(rc, -1, "trial a=%lld succeeded without a server",
                 (long long)a);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    return err;
}

Test(mongo, server_killed_mid_run_loses_no_finished_trial, .init = s_init,
     .fini = s_fault_fini, .timeout = 120)
{
    s_need_test_server();
    char uri[256];
    snprintf(uri, sizeof uri,
             "mongodb://127.0.0.1:%d/xp_fault?serverSelectionTimeoutMS=500",
             s_server_port);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    o.threads = 1; /* steps run on the test's thread */
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, "fault", &o, &err), 0, "open: %s",
                 err.message);
    s_define_fault(ex);
    for (int64_t a = 1; a <= 3; a++)
        cr_assert_eq(s_run(ex, a, -1), a, "trial id");

    /* Killed during trial 4: the finished trial is spooled. */
    int64_t id = 0;
    double seconds;
    err = s_run_fails(ex, A_KILL, &id, &seconds);
    cr_assert_eq(id, 4, "trial id %lld", (long long)id);
    cr_assert_not_null(strstr(err.message, "could not be recorded"), "'%s'",
                       err.message);
    cr_assert_not_null(strstr(err.message, "spool/4.bson"), "'%s'",
                       err.message);
    cr_assert_not_null(strstr(err.message, uri), "no server in '%s'",
                       err.message);
    cr_assert_lt(seconds, 5.0, "finishing took %.2f s", seconds);
    char spool[PATH_MAX + 32];
    snprintf(spool, sizeof spool, "%s/fault/spool/4.bson", s_cache);
    cr_assert_eq(access(spool, R_OK), 0, "no spool file %s", spool);

    /* While it is down, a new trial gets a clear error and no id. */
    err = s_run_fails(ex, 7, &id, &seconds);
    cr_assert_eq(id, 0, "a trial id was allocated without a server");
    cr_assert_not_null(strstr(err.message, "unreachable"), "'%s'", err.message);
    cr_assert_lt(seconds, 3.0, "failing took %.2f s", seconds);

    /* Back up, empty (its state was in memory): the next open writes the
     * spooled trial. */
    s_server_start();
    xp_experiment *ex2 = NULL;
    cr_assert_eq(xp_experiment_open(&ex2, "fault", &o, &err), 0, "reopen: %s",
                 err.message);
    cr_assert_neq(access(spool, F_OK), 0, "spool file %s is still there",
                  spool);
    xp_value *t = xpt_trial(ex2, 4);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(t, "result"), 2 * A_KILL, "result");
    xp_value_destroy(&t);

    /* New trials continue after the replayed one (ids come from the
     * stored trials). */
    s_define_fault(ex2);
    const int64_t expected[] = {5, 6, 7, 8, 9};
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
        cr_assert_eq(s_run(ex2, 10 + (int64_t)i, -1), expected[i], "trial %zu",
                     i);
    t = xpt_trial(ex2, 4);
    cr_assert_eq(xpt_get_int(t, "result"), 2 * A_KILL, "trial 4 changed");
    xp_value_destroy(&t);
    /* The first handle reconnected by itself. */
    cr_assert_eq(s_run(ex, 20, -1), 10, "old handle after the restart");

    /* Restarted during trial 11 (the other handle took 10): the final
     * write is retried on the new server and succeeds. */
    cr_assert_eq(s_run(ex2, A_BOUNCE, -1), 11, "trial id");
    t = xpt_trial(ex2, 11);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(t, "result"), 2 * A_BOUNCE, "result");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex2);
    xp_experiment_destroy(&ex);
}
