/* test_backends.c — the backend contract: the same checks, through the public
 * API, on local (temp dir), Redis (XP_TEST_REDIS_URI) and MongoDB
 * (XP_TEST_MONGODB_URI); unconfigured or unbuilt backends are skipped. */
#include "../backend_fixture.h"

#include "experiment.h"
#include "store/driver.h" /* the contract of the drivers' table */
#include "store/spool.h"

#include "trial.h"
#include "util/bson_util.h"
#include "util/names.h"
#include "util/sys.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <mongoc/mongoc.h>

enum { B_LOCAL, B_REDIS, B_MONGO };

static const char *const s_kind_name[] = {"local", "redis", "mongodb"};

/* The backend of the running test (each criterion test is a process). */
static int s_kind;
static char s_backend[PATH_MAX];
static xpt_log s_log;

/* Experiment ids this test created, for cleanup. */
#define MAX_IDS 32
static char s_ids[MAX_IDS][XP_ID_MAX + 8];
static int s_n_ids;

/* ---------------------------------------------------------------- setup */

/* A unique experiment id "<base>_<pid>_<n>": servers are shared between
 * runs (test-owned string). */
static const char *uid(const char *base)
{
    cr_assert_lt(s_n_ids, MAX_IDS, "too many experiment ids in one test");
    char *id = s_ids[s_n_ids];
    snprintf(id, sizeof s_ids[0], "%.40s_%d_%d", base, (int)getpid(), s_n_ids);
    s_n_ids++;
    return id;
}

/* Deletes the keys of the experiments this test created; never anything
 * else on the shared server. */
static void redis_cleanup(void)
{
    for (int i = 0; i < s_n_ids; i++)
        xpt_redis_forget(s_backend, s_ids[i]);
}

static void s_fini(void)
{
    if (s_kind == B_REDIS)
        redis_cleanup();
    xpt_teardown();
}

/* Selects the backend of the running test; skips when it is not
 * configured or not available in this build. */
static void s_use(int kind)
{
    s_kind = kind;
    xpt_log_init(&s_log);
    xp_log_set_handler(xpt_log_fn, &s_log);
    xp_log_set_level(XP_LOG_WARNING);
    char cache[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", xpt_dir);
    setenv("XP_CACHE_DIR", cache, 1);
    if (kind == B_LOCAL) {
        snprintf(s_backend, sizeof s_backend, "%s", xpt_dir);
        return;
    }
    const char *var =
        kind == B_REDIS ? "XP_TEST_REDIS_URI" : "XP_TEST_MONGODB_URI";
    const char *uri = getenv(var);
    if (!uri || !*uri)
        XPT_SKIP("%s is not set (tests/run.sh starts the %s test server)", var,
                 s_kind_name[kind]);
    snprintf(s_backend, sizeof s_backend, "%s", uri);
    /* A build without the backend answers with this message at open. */
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    if (xp_experiment_open(&ex, "xp_probe_never_created", &o, &err) == 0) {
        xp_experiment_destroy(&ex);
        return;
    }
    if (strstr(err.message, "not available in this build"))
        XPT_SKIP("%s", err.message);
    cr_assert_eq(err.code, XP_ENOTFOUND,
                 "%s backend at %s is not usable: code=%u '%s'",
                 s_kind_name[kind], var, err.code, err.message);
}

/* One test per backend for each behaviour. */
#define CONTRACT(name, seconds)                                                \
    static void contract_##name(void);                                         \
    Test(local, name, .init = xpt_setup, .fini = s_fini, .timeout = seconds)   \
    {                                                                          \
        s_use(B_LOCAL);                                                        \
        contract_##name();                                                     \
    }                                                                          \
    Test(redis, name, .init = xpt_setup, .fini = s_fini, .timeout = seconds)   \
    {                                                                          \
        s_use(B_REDIS);                                                        \
        contract_##name();                                                     \
    }                                                                          \
    Test(mongodb, name, .init = xpt_setup, .fini = s_fini, .timeout = seconds) \
    {                                                                          \
        s_use(B_MONGO);                                                        \
        contract_##name();                                                     \
    }                                                                          \
    static void contract_##name(void)

/* Opens (creating) id on the test's backend; asserts success. */
static xp_experiment *open_ex(const char *id)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.threads = 2;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    int rc = xp_experiment_open(&ex, id, &o, &err);
    cr_assert_eq(rc, 0, "%s: open %s: code=%u '%s'", s_kind_name[s_kind], id,
                 err.code, err.message);
    return ex;
}

/* Opens an existing experiment; NULL with err when it fails. */
static xp_experiment *open_existing(const char *id, xp_error_t *err)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    if (xp_experiment_open(&ex, id, &o, err) != 0)
        return NULL;
    return ex;
}

/* Runs one trial; asserts success and returns its id. */
static int64_t run_ok(xp_experiment *ex, const xp_run_options *o,
                      xp_value **result)
{
    int64_t id = 0;
    xp_error_t err = {0};
    int rc = xp_compute(ex, o, result, &id, &err);
    cr_assert_eq(rc, 0, "%s: xp_compute: code=%u '%s'", s_kind_name[s_kind],
                 err.code, err.message);
    cr_assert_gt(id, 0, "no trial id");
    return id;
}

static void set_int(xp_experiment *ex, const char *name, int64_t v)
{
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, name, v, &err), 0, "set %s: '%s'", name,
                 err.message);
}

/* ---------------------------------------------------------------- steps */

static int divide(xp_step *st, const xp_value *const *in, xp_value *out)
{
    double b = xp_as_double(in[1]);
    if (b == 0)
        return xp_step_fail(st, "division by zero");
    return xp_set_double(out, xp_as_double(in[0]) / b);
}

static int typed(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, (int64_t)((uint64_t)xp_as_int64(in[0]) * 2));
}

#define BLOB_SIZE (3 * 1024 * 1024)

static uint8_t blob_byte(size_t i, int64_t seed)
{
    return (uint8_t)((i * 131 + (size_t)seed * 7 + (i >> 13)) & 0xff);
}

static int make_blob(xp_step *st, const xp_value *const *in, xp_value *out)
{
    uint8_t *buf = malloc(BLOB_SIZE);
    if (!buf)
        return xp_step_fail(st, "out of memory");
    for (size_t i = 0; i < BLOB_SIZE; i++)
        buf[i] = blob_byte(i, xp_as_int64(in[0]));
    int rc = xp_set_blob(out, buf, BLOB_SIZE);
    free(buf);
    return rc;
}

static int small_value(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, (double)xp_as_int64(in[0]) * 1.5);
}

static int sizes(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    size_t len = 0;
    xp_as_blob(in[0], &len);
    return xp_set_int64(out, (int64_t)len);
}

/* Saves metric "loss" at epochs base + k * stride (k < count), value
 * epoch / 2 + 1000 * trial id; with `again`, epoch `base` once more at
 * the end with value -trial id (the last value of an epoch wins). */
static int save_points(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t base = xp_as_int64(in[0]), stride = xp_as_int64(in[1]);
    int64_t count = xp_as_int64(in[2]);
    double trial = (double)xp_step_trial_id(st);
    for (int64_t k = 0; k < count; k++) {
        int64_t e = base + k * stride;
        if (xp_save_metric(st, "loss", e, (double)e / 2 + 1000 * trial) != 0)
            return -1;
    }
    if (xp_as_bool(in[3]) && xp_save_metric(st, "loss", base, -trial) != 0)
        return -1;
    return xp_set_int64(out, count);
}

static int noisy(xp_step *st, const xp_value *const *in, xp_value *out)
{
    return xp_set_double(out, xp_random(st) + xp_as_double(in[0]));
}

static int plus_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]) + 1);
}

static int sleepy(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    xpt_sleep(30);
    return xp_set_int64(out, 1);
}

static int quick(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 1);
}

/* ---------------------------------------------------------------- history */

CONTRACT(history_ids_and_failures, 60)
{
    xp_experiment *ex = open_ex(uid("history"));
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    cr_assert_not_null(XP_RESULT(ex, divide, a, b), "definition");
    cr_assert_eq(xpt_last_id(ex), 0, "new experiment has trials");

    const int64_t bs[] = {2, 0, 4, 5};
    for (int i = 0; i < 4; i++) {
        set_int(ex, "a", 10);
        set_int(ex, "b", bs[i]);
        xp_value *res = NULL;
        int64_t id = 0;
        xp_error_t err = {0};
        int rc = xp_compute(ex, NULL, &res, &id, &err);
        cr_assert_eq(id, i + 1, "trial %d got id %lld", i, (long long)id);
        if (bs[i] == 0) {
            cr_assert_eq(rc, -1, "division by zero succeeded");
            cr_assert_eq(err.code, XP_ESTEP, "code %u '%s'", err.code,
                         err.message);
            cr_assert_str_eq(err.message, "divide: division by zero",
                             "message '%s'", err.message);
        } else {
            cr_assert_eq(rc, 0, "compute: '%s'", err.message);
            cr_assert_float_eq(xp_as_double(res), 10.0 / (double)bs[i], 1e-12,
                               "result");
        }
        xp_value_destroy(&res);
    }

    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 4, "history has %zu trials",
                 xp_value_count(h));
    for (size_t i = 0; i < 4; i++) {
        const xp_value *t = xp_value_at(h, i);
        cr_assert_eq(xpt_get_int(t, "trial_id"), (int64_t)i + 1,
                     "history[%zu] out of order", i);
        const xp_value *p = xpt_field(t, "parameters");
        cr_assert_eq(xpt_get_int(p, "b"), bs[i], "parameters of %zu", i);
        bool failed = bs[i] == 0;
        cr_assert_str_eq(xpt_get_str(t, "status"),
                         failed ? "failed" : "succeeded", "status of %zu", i);
        cr_assert_eq(xpt_get_bool(t, "success"), !failed, "success of %zu", i);
        cr_assert_str_eq(xpt_get_str(t, "description"),
                         failed ? "divide: division by zero" : "",
                         "description of %zu", i);
        cr_assert_str_eq(xpt_get_str(t, "result_type"),
                         failed ? "null" : "double", "result type of %zu", i);
        cr_assert_str_eq(xpt_get_str(t, "experiment"), xp_experiment_id(ex),
                         "experiment of %zu", i);
        xpt_typed(t, "started", XP_TYPE_DATETIME);
        xpt_typed(t, "finished", XP_TYPE_DATETIME);
        xpt_typed(t, "process_time", XP_TYPE_DOUBLE);
        cr_assert_eq(xpt_get_int(t, "pid"), (int64_t)getpid(), "pid");
    }
    xp_value_destroy(&h);
    cr_assert_eq(xpt_last_id(ex), 4, "last id");

    xp_value *t = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_trial_get(ex, 99, &t, &err), -1, "trial 99 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert(strstr(err.message, "trial 99 does not exist"), "'%s'",
              err.message);
    xp_experiment_destroy(&ex);
}

CONTRACT(parameters_keep_native_types, 60)
{
    const char *id = uid("types");
    xp_experiment *ex = open_ex(id);
    xp_node *i = xp_parameter(ex, "i");
    xp_node *d = xp_parameter(ex, "d");
    xp_node *s = xp_parameter(ex, "s");
    xp_node *f = xp_parameter(ex, "flag");
    xp_node *l = xp_parameter(ex, "lit");
    cr_assert_not_null(XP_RESULT(ex, typed, i, d, s, f, l), "definition");
    xp_error_t err = {0};
    set_int(ex, "i", 7);
    cr_assert_eq(xp_set_param_double(ex, "d", 7.0, &err), 0, "d");
    cr_assert_eq(xp_set_param_string(ex, "s", "seven \xc3\xa9", &err), 0, "s");
    cr_assert_eq(xp_set_param_bool(ex, "flag", true, &err), 0, "flag");
    cr_assert_eq(xp_set_param_literal(ex, "lit", "3.0", &err), 0, "lit");
    int64_t t1 = run_ok(ex, NULL, NULL);
    set_int(ex, "i", INT64_MAX);
    cr_assert_eq(xp_set_param_literal(ex, "lit", "3", &err), 0, "lit");
    int64_t t2 = run_ok(ex, NULL, NULL);
    xp_experiment_destroy(&ex);

    ex = open_ex(id);
    xp_value *p = NULL;
    cr_assert_eq(xp_trial_parameters(ex, t1, &p, &err), 0, "params: '%s'",
                 err.message);
    cr_assert_eq(xpt_get_int(p, "i"), 7, "i");
    cr_assert_eq(xp_as_double(xpt_typed(p, "d", XP_TYPE_DOUBLE)), 7.0, "d");
    cr_assert_str_eq(xpt_get_str(p, "s"), "seven \xc3\xa9", "s");
    cr_assert(xpt_get_bool(p, "flag"), "flag");
    xpt_typed(p, "lit", XP_TYPE_DOUBLE);
    xp_value_destroy(&p);
    cr_assert_eq(xp_trial_parameters(ex, t2, &p, &err), 0, "params: '%s'",
                 err.message);
    cr_assert_eq(xpt_get_int(p, "i"), INT64_MAX, "int64 max");
    cr_assert_eq(xpt_get_int(p, "lit"), 3, "lit");
    xp_value_destroy(&p);
    xp_value *t = xpt_trial(ex, t1);
    cr_assert_eq(xpt_get_int(t, "result"), 14, "result");
    cr_assert_str_eq(xpt_get_str(t, "result_type"), "int64", "result type");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- persisted */

CONTRACT(persisted_small_and_large, 60)
{
    const char *id = uid("persist");
    xp_experiment *ex = open_ex(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_node *big = XP_PERSIST(ex, make_blob, a);
    xp_node *small = XP_PERSIST(ex, small_value, a);
    cr_assert_not_null(XP_RESULT(ex, sizes, big, small), "definition");
    set_int(ex, "a", 3);
    run_ok(ex, NULL, NULL);
    set_int(ex, "a", 4);
    run_ok(ex, NULL, NULL);
    xp_experiment_destroy(&ex);

    ex = open_ex(id);
    xp_error_t err = {0};
    for (int64_t trial = 1; trial <= 2; trial++) {
        xp_value *v = NULL;
        cr_assert_eq(xp_load_persisted(ex, "small_value", trial, &v, &err), 0,
                     "small_value of %lld: '%s'", (long long)trial,
                     err.message);
        cr_assert_eq(xp_value_type(v), XP_TYPE_DOUBLE, "type");
        cr_assert_eq(xp_as_double(v), (double)(trial + 2) * 1.5, "value");
        xp_value_destroy(&v);
        cr_assert_eq(xp_load_persisted(ex, "make_blob", trial, &v, &err), 0,
                     "make_blob of %lld: '%s'", (long long)trial, err.message);
        size_t len = 0;
        const uint8_t *data = xp_as_blob(v, &len);
        cr_assert_not_null(data, "not a blob");
        cr_assert_eq(len, BLOB_SIZE, "blob of %zu bytes", len);
        for (size_t i = 0; i < len; i++)
            if (data[i] != blob_byte(i, trial + 2))
                cr_assert_fail("blob of trial %lld differs at byte %zu",
                               (long long)trial, i);
        xp_value_destroy(&v);
    }
    xp_value *v = NULL;
    cr_assert_eq(xp_load_persisted(ex, "sizes", 1, &v, &err), -1,
                 "a step that is not persisted has a value");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_eq(xp_load_persisted(ex, "small_value", 3, &v, &err), -1,
                 "trial 3 has a value");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- metrics */

#define MANY_POINTS 20000

CONTRACT(metrics_over_chunks_and_tables, 60)
{
    const char *id = uid("metrics");
    xp_experiment *ex = open_ex(id);
    xp_node *base = xp_parameter(ex, "base");
    xp_node *stride = xp_parameter(ex, "stride");
    xp_node *count = xp_parameter(ex, "count");
    xp_node *again = xp_parameter(ex, "again");
    cr_assert_not_null(XP_RESULT(ex, save_points, base, stride, count, again),
                       "definition");
    xp_error_t err = {0};
    /* Trial 1: epochs 0..19999 in three chunks, epoch 0 saved again last. */
    set_int(ex, "base", 0);
    set_int(ex, "stride", 1);
    set_int(ex, "count", MANY_POINTS);
    xp_set_param_bool(ex, "again", true, &err);
    run_ok(ex, NULL, NULL);
    /* Trial 2: epochs 19999, 20001, 20003. */
    set_int(ex, "base", MANY_POINTS - 1);
    set_int(ex, "stride", 2);
    set_int(ex, "count", 3);
    xp_set_param_bool(ex, "again", false, &err);
    run_ok(ex, NULL, NULL);
    /* Trial 3 saves no point. */
    set_int(ex, "count", 0);
    run_ok(ex, NULL, NULL);
    xp_experiment_destroy(&ex);

    ex = open_ex(id);
    xp_metric_table *t = NULL;
    int64_t ids[] = {1, 2};
    cr_assert_eq(xp_load_metric(ex, "loss", ids, 2, &t, &err), 0, "load: '%s'",
                 err.message);
    cr_assert_eq(xp_metric_table_trials(t), 2, "trials");
    cr_assert_eq(xp_metric_table_epochs(t), MANY_POINTS + 2, "epochs %zu",
                 xp_metric_table_epochs(t));
    cr_assert_eq(xp_metric_table_trial(t, 0), 1, "column 0");
    cr_assert_eq(xp_metric_table_trial(t, 1), 2, "column 1");
    cr_assert_eq(xp_metric_table_value(t, 0, 0), -1.0,
                 "the value saved last for epoch 0 wins (chunk order): %g",
                 xp_metric_table_value(t, 0, 0));
    for (size_t row = 1; row < MANY_POINTS; row++) {
        int64_t e = xp_metric_table_epoch(t, row);
        cr_assert_eq(e, (int64_t)row, "epoch of row %zu", row);
        double v = xp_metric_table_value(t, row, 0);
        if (v != (double)e / 2 + 1000)
            cr_assert_fail("trial 1 epoch %lld: %g", (long long)e, v);
        double w = xp_metric_table_value(t, row, 1);
        if (e == MANY_POINTS - 1)
            cr_assert_eq(w, (double)e / 2 + 2000, "trial 2 epoch %lld",
                         (long long)e);
        else if (!isnan(w))
            cr_assert_fail("trial 2 epoch %lld: %g, want NaN", (long long)e, w);
    }
    for (size_t row = MANY_POINTS; row < MANY_POINTS + 2; row++) {
        int64_t e = xp_metric_table_epoch(t, row);
        cr_assert_eq(e, MANY_POINTS - 1 + 2 * (int64_t)(row - MANY_POINTS + 1),
                     "epoch of row %zu: %lld", row, (long long)e);
        cr_assert(isnan(xp_metric_table_value(t, row, 0)),
                  "trial 1 at epoch %lld is not NaN", (long long)e);
        cr_assert_eq(xp_metric_table_value(t, row, 1), (double)e / 2 + 2000,
                     "trial 2 at epoch %lld", (long long)e);
    }
    xp_metric_table_destroy(&t);

    int64_t none[] = {3};
    cr_assert_eq(xp_load_metric(ex, "loss", none, 1, &t, &err), -1,
                 "trial 3 has the metric");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    int64_t missing[] = {1, 9};
    cr_assert_eq(xp_load_metric(ex, "loss", missing, 2, &t, &err), -1,
                 "trial 9 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_eq(xp_load_metric(ex, "accuracy", ids, 1, &t, &err), -1,
                 "unsaved metric found");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- capture */

CONTRACT(code_and_environment_per_trial, 60)
{
    const char *id = uid("capture");
    xp_experiment *ex = open_ex(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    cr_assert_not_null(XP_RESULT(ex, plus_one, a, b), "definition");
    set_int(ex, "a", 1);
    set_int(ex, "b", 2);
    run_ok(ex, NULL, NULL);
    run_ok(ex, NULL, NULL);
    xp_experiment_destroy(&ex);

    /* A reader handle gets both from the backend. */
    xp_error_t err = {0};
    ex = open_existing(id, &err);
    cr_assert_not_null(ex, "reopen: '%s'", err.message);
    xp_value *t1 = xpt_trial(ex, 1), *t2 = xpt_trial(ex, 2);
    cr_assert_eq(strlen(xpt_get_str(t1, "code_hash")), 32, "code hash");
    cr_assert_str_eq(xpt_get_str(t1, "code_hash"), xpt_get_str(t2, "code_hash"),
                     "code hash changed");
    cr_assert_str_eq(xpt_get_str(t1, "environment_hash"),
                     xpt_get_str(t2, "environment_hash"), "env hash changed");
    xp_value_destroy(&t1);
    xp_value_destroy(&t2);
    for (int64_t trial = 1; trial <= 2; trial++) {
        xp_value *code = NULL;
        cr_assert_eq(xp_code_get(ex, trial, &code, &err), 0,
                     "code of %lld: '%s'", (long long)trial, err.message);
        const xp_value *steps = xpt_typed(code, "steps", XP_TYPE_ARRAY);
        cr_assert_eq(xp_value_count(steps), 1, "steps");
        const xp_value *step = xp_value_at(steps, 0);
        cr_assert_str_eq(xpt_get_str(step, "name"), "plus_one", "name");
        cr_assert(strstr(xpt_get_str(step, "file"), "test_backends.c"),
                  "file '%s'", xpt_get_str(step, "file"));
        xp_value_destroy(&code);

        xp_value *env = NULL;
        cr_assert_eq(xp_environment_get(ex, trial, NULL, &env, &err), 0,
                     "environment of %lld: '%s'", (long long)trial,
                     err.message);
        xpt_typed(env, "platform", XP_TYPE_DOCUMENT);
        xpt_field(env, "libraries");
        xp_value *here = NULL;
        cr_assert_eq(xp_environment_get(ex, 0, "platform", &here, &err), 0,
                     "this process: '%s'", err.message);
        cr_assert(xp_value_equal(xp_value_get(env, "platform"), here),
                  "stored platform differs from this process");
        xp_value_destroy(&here);
        xp_value_destroy(&env);
    }
    xp_value *v = NULL;
    cr_assert_eq(xp_code_get(ex, 7, &v, &err), -1, "code of trial 7");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);

    /* Content documents are stored once: a second put is ignored. */
    xp_backend *be = ex->backend;
    char hash[33];
    snprintf(hash, sizeof hash, "%016llx%016llx", 0xfeedULL,
             (unsigned long long)getpid());
    bson_t first = BSON_INITIALIZER, second = BSON_INITIALIZER, got;
    BSON_APPEND_INT32(&first, "x", 1);
    BSON_APPEND_INT32(&second, "x", 2);
    cr_assert_eq(xp__store_content_put(be, "code", hash, &first, "x: 1", &err),
                 0, "content_put: '%s'", err.message);
    cr_assert_eq(xp__store_content_put(be, "code", hash, &second, "x: 2", &err),
                 0, "content_put again: '%s'", err.message);
    cr_assert_eq(xp__store_content_get(be, hash, &got, &err), 0,
                 "content_get: '%s'", err.message);
    cr_assert(bson_equal(&got, &first), "content was replaced");
    bson_destroy(&got);
    bson_destroy(&first);
    bson_destroy(&second);
    cr_assert_eq(xp__store_content_get(be, "00000000000000000000000000000000",
                                       &got, &err),
                 -1, "unknown content found");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
}

CONTRACT(purity_warnings_and_seeds, 60)
{
    xp_experiment *ex = open_ex(uid("purity"));
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(XP_RESULT(ex, noisy, a), "definition");
    set_int(ex, "a", 1);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.has_seed = true;
    o.seed = 1;
    xp_value *r1 = NULL, *r2 = NULL, *r3 = NULL;
    run_ok(ex, &o, &r1);
    run_ok(ex, &o, &r2);
    o.seed = 2;
    run_ok(ex, &o, &r3);
    cr_assert(xp_value_equal(r1, r2), "same seed, different result");
    cr_assert(!xp_value_equal(r1, r3), "different seed, same result");
    run_ok(ex, NULL, NULL);

    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 4, "history");
    const xp_value *t1 = xp_value_at(h, 0), *t2 = xp_value_at(h, 1);
    const xp_value *t3 = xp_value_at(h, 2), *t4 = xp_value_at(h, 3);
    cr_assert_eq(xpt_get_int(t1, "seed"), 1, "seed of trial 1");
    cr_assert_eq(xpt_get_int(t2, "seed"), 1, "seed of trial 2");
    cr_assert_eq(xpt_get_int(t3, "seed"), 2, "seed of trial 3");
    cr_assert_geq(xpt_get_int(t4, "seed"), 0, "generated seed recorded");
    cr_assert_null(xp_value_get(t1, "purity_warnings"), "trial 1 warned");
    cr_assert_null(xp_value_get(t2, "purity_warnings"),
                   "trial 2 (same seed) warned");
    const xp_value *w = xpt_typed(t3, "purity_warnings", XP_TYPE_ARRAY);
    cr_assert_eq(xp_value_count(w), 1, "warnings");
    cr_assert_str_eq(xp_as_string(xp_value_at(w, 0), NULL), "noisy",
                     "warned step");
    cr_assert_geq(xpt_log_find(&s_log, XP_LOG_WARNING, "step: noisy"), 0,
                  "no warning logged: %s", xpt_log_dump(&s_log));
    xp_value_destroy(&h);
    xp_value_destroy(&r1);
    xp_value_destroy(&r2);
    xp_value_destroy(&r3);

    /* The step-hash record: found for a known input, not for another. */
    xp_backend *be = ex->backend;
    uint8_t input[16] = {0}, output[16];
    bool found = true;
    xp_error_t err = {0};
    cr_assert_eq(
        xp__store_step_hash_get(be, "noisy", input, output, &found, &err), 0,
        "step_hash_get: '%s'", err.message);
    cr_assert(!found, "hash found for an input never seen");
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- lifecycle */

CONTRACT(reopen_reloads_last_id, 60)
{
    const char *id = uid("reopen");
    xp_error_t err = {0};
    cr_assert_null(open_existing(id, &err), "opened a missing experiment");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment *ex = open_ex(id);
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    for (int i = 0; i < 3; i++)
        run_ok(ex, NULL, NULL);
    xp_experiment_destroy(&ex);

    ex = open_existing(id, &err);
    cr_assert_not_null(ex, "reopen: '%s'", err.message);
    cr_assert_eq(xpt_last_id(ex), 3, "last id after reopen");
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    cr_assert_eq(run_ok(ex, NULL, NULL), 4, "next id after reopen");
    xp_experiment_destroy(&ex);
}

/* Polls until trial 1 of id shows as running. */
static void wait_running(const char *id, pid_t child)
{
    double deadline = xpt_now() + 30;
    while (xpt_now() < deadline) {
        int st;
        cr_assert_eq(waitpid(child, &st, WNOHANG), 0,
                     "the trial process ended before it was killed (%d)", st);
        xp_error_t err = {0};
        xp_experiment *ex = open_existing(id, &err);
        xp_value *h = NULL;
        bool running = false;
        if (ex && xp_history(ex, &h, &err) == 0 && xp_value_count(h) == 1) {
            const char *s =
                xp_as_string(xp_value_get(xp_value_at(h, 0), "status"), NULL);
            cr_assert(s && strcmp(s, "running") == 0,
                      "live trial has status '%s'", s ? s : "(none)");
            running = true;
        }
        xp_value_destroy(&h);
        xp_experiment_destroy(&ex);
        if (running)
            return;
        xpt_sleep(0.02);
    }
    cr_assert_fail("trial of %s never showed as running", id);
}

CONTRACT(killed_process_leaves_interrupted_trial, 90)
{
    const char *id = uid("killed");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        xp_open_options o = XP_OPEN_OPTIONS_INIT;
        o.backend = s_backend;
        xp_experiment *ex = NULL;
        if (xp_experiment_open(&ex, id, &o, NULL) != 0)
            _exit(3);
        xp_result(xp_step_add(ex, "sleepy", sleepy, 0, NULL, NULL, 0));
        xp_compute(ex, NULL, NULL, NULL, NULL);
        _exit(4);
    }
    wait_running(id, pid);
    cr_assert_eq(kill(pid, SIGKILL), 0, "kill: %s", strerror(errno));
    cr_assert_eq(xpt_wait(pid), 128 + SIGKILL, "not killed");

    for (int round = 0; round < 2; round++) { /* idempotent */
        xp_experiment *ex = open_ex(id);
        xp_value *t = xpt_trial(ex, 1);
        cr_assert_str_eq(xpt_get_str(t, "status"), "interrupted",
                         "killed trial has status '%s'",
                         xpt_get_str(t, "status"));
        cr_assert(!xpt_get_bool(t, "success"), "killed trial succeeded");
        cr_assert(strstr(xpt_get_str(t, "description"), "interrupted"),
                  "description '%s'", xpt_get_str(t, "description"));
        xpt_typed(t, "finished", XP_TYPE_DATETIME);
        xp_value_destroy(&t);
        xp_experiment_destroy(&ex);
    }
    xp_experiment *ex = open_ex(id);
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    cr_assert_eq(run_ok(ex, NULL, NULL), 2, "next id");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 2, "history");
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 1), "status"), "succeeded",
                     "trial 2");
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

/* A finished trial kept in the spool is written on the next open, and
 * replaying it again changes nothing (the finish is idempotent). */
CONTRACT(spooled_trial_written_once, 60)
{
    const char *id = uid("spool");
    xp_experiment *ex = open_ex(id);
    xp_backend *be = ex->backend;
    xp_error_t err = {0};
    bson_t params = BSON_INITIALIZER;
    BSON_APPEND_INT64(&params, "a", 5);
    xp_trial_record doc = {.experiment = id,
                           .status = XP_STATUS_RUNNING,
                           .parameters = xp__doc_view(&params),
                           .seed = 9,
                           .started_ms = xp__now_ms(),
                           .host = xp__hostname(),
                           .pid = getpid(),
                           .pstart = (int64_t)xp__self_start()};
    int64_t trial = 0;
    cr_assert_eq(xp__store_trial_begin(be, &doc, &err), 0, "trial_begin: '%s'",
                 err.message);
    trial = doc.trial_id;
    cr_assert_eq(trial, 1, "first id %lld", (long long)trial);

    xp_value *forty_two = xpt_int(42);
    xp_trial_record fin = doc;
    fin.trial_id = trial;
    fin.status = XP_STATUS_SUCCEEDED;
    fin.finished_ms = xp__now_ms();
    fin.result = forty_two;
    fin.success = true;
    fin.process_time = 0.5;
    fin.description = "";
    bson_t final = BSON_INITIALIZER;
    cr_assert_eq(xp__record_encode(&fin, &final, &err), 0, "'%s'", err.message);
    int64_t epochs[10];
    double values[10];
    for (int i = 0; i < 10; i++) {
        epochs[i] = i;
        values[i] = i * 0.25;
    }
    xp_metric_chunk m = {.name = "loss",
                         .chunk = 0,
                         .epochs = epochs,
                         .values = values,
                         .n = 10};
    xp_value *seven = xpt_int(7);
    xp_persisted_item p = {.step = "prep", .value = seven};
    xp_step_hash hash = {.step = "prep"};
    memset(hash.input, 0x11, 16);
    memset(hash.output, 0x22, 16);
    char *path = NULL;
    for (int round = 0; round < 2; round++) {
        xp_trial_outcome o = {.record = &fin,
                              .doc = &final,
                              .chunks = &m,
                              .n_chunks = 1,
                              .persisted = &p,
                              .n_persisted = 1,
                              .hashes = &hash,
                              .n_hashes = 1};
        cr_assert_eq(xp__spool_write(be, &o, &path, &err), 0, "spool: '%s'",
                     err.message);
        cr_assert_eq(access(path, F_OK), 0, "no spool file %s", path);
        if (round == 0) { /* written when the experiment is opened */
            xp_experiment_destroy(&ex);
            ex = open_ex(id);
            be = ex->backend;
        } else { /* or by xp_experiment_sync */
            size_t written = 0;
            cr_assert_eq(xp_experiment_sync(ex, &written, &err), 0,
                         "sync: '%s'", err.message);
            cr_assert_eq(written, 1, "written %zu", written);
        }
        cr_assert_neq(access(path, F_OK), 0, "spool file %s left", path);
        bson_free(path);
        path = NULL;

        xp_value *h = xpt_history(ex);
        cr_assert_eq(xp_value_count(h), 1, "history has %zu trials",
                     xp_value_count(h));
        const xp_value *t = xp_value_at(h, 0);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "status");
        cr_assert_eq(xpt_get_int(t, "result"), 42, "result");
        xp_value_destroy(&h);
        xp_metric_table *mt = NULL;
        cr_assert_eq(xp_load_metric(ex, "loss", &trial, 1, &mt, &err), 0,
                     "metric: '%s'", err.message);
        cr_assert_eq(xp_metric_table_epochs(mt), 10, "epochs %zu",
                     xp_metric_table_epochs(mt));
        cr_assert_eq(xp_metric_table_value(mt, 9, 0), 2.25, "value");
        xp_metric_table_destroy(&mt);
        xp_value *v = NULL;
        cr_assert_eq(xp_load_persisted(ex, "prep", trial, &v, &err), 0,
                     "persisted: '%s'", err.message);
        cr_assert_eq(xp_as_int64(v), 7, "persisted value");
        xp_value_destroy(&v);
        uint8_t out[16];
        bool found = false;
        cr_assert_eq(xp__store_step_hash_get(ex->backend, "prep", hash.input,
                                             out, &found, &err),
                     0, "step_hash_get: '%s'", err.message);
        cr_assert(found && memcmp(out, hash.output, 16) == 0,
                  "step hash not stored");
        xp_running_trial *running = NULL;
        size_t n_running = 9;
        cr_assert_eq(
            xp__store_running_trials(ex->backend, &running, &n_running, &err),
            0, "running_trials: '%s'", err.message);
        cr_assert_eq(n_running, 0, "%zu trials still running", n_running);
        bson_free(running);
    }
    xp_value_destroy(&seven);
    xp_value_destroy(&forty_two);
    bson_destroy(&params);
    bson_destroy(&final);
    xp_experiment_destroy(&ex);
}

/* Keeps final (a trial document with its trial_id) in be's spool, as a
 * finish the backend could not take does; *path: caller frees. */
static void spool_doc(xp_backend *be, const bson_t *final, char **path)
{
    xp_trial_record rec;
    xp_error_t err = {0};
    cr_assert_eq(xp__record_decode(final, &rec, &err), 0, "'%s'", err.message);
    xp_trial_outcome o = {.record = &rec, .doc = final};
    cr_assert_eq(xp__spool_write(be, &o, path, &err), 0, "spool: '%s'",
                 err.message);
}

/* The spool directory of experiment id on this machine. */
static void spool_dir(const char *id, char *buf, size_t size)
{
    if (s_kind == B_LOCAL)
        snprintf(buf, size, "%s/%s/spool", xpt_dir, id);
    else
        snprintf(buf, size, "%s/cache/%s/spool", xpt_dir, id);
}

/* Writes spool file <dir>/<trial>.bson by hand: trial's stored record
 * (read through ex) finished as succeeded with result 42, and metric
 * "loss" with the given bytes of epochs and values. */
static void spool_by_hand(xp_experiment *ex, const char *dir, int64_t trial,
                          size_t epoch_bytes, size_t value_bytes)
{
    bson_t stored, rec = BSON_INITIALIZER, doc, arr, item;
    xp_error_t err = {0};
    cr_assert_eq(xp__store_trial_get(ex->backend, trial, &stored, &err), 0,
                 "'%s'", err.message);
    BSON_APPEND_INT64(&rec, "trial_id", trial);
    BSON_APPEND_DOCUMENT_BEGIN(&rec, "doc", &doc);
    bson_copy_to_excluding_noinit(&stored, &doc, "status", "finished", "result",
                                  "result_type", "success", "description",
                                  NULL);
    BSON_APPEND_UTF8(&doc, "status", "succeeded");
    BSON_APPEND_DATE_TIME(&doc, "finished", xp__now_ms());
    BSON_APPEND_INT64(&doc, "result", 42);
    BSON_APPEND_UTF8(&doc, "result_type", "int64");
    BSON_APPEND_BOOL(&doc, "success", true);
    BSON_APPEND_UTF8(&doc, "description", "");
    bson_append_document_end(&rec, &doc);
    bson_destroy(&stored);
    uint8_t *zeros = calloc(1, epoch_bytes + value_bytes + 1);
    BSON_APPEND_ARRAY_BEGIN(&rec, "metrics", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &item);
    BSON_APPEND_UTF8(&item, "name", "loss");
    BSON_APPEND_INT64(&item, "chunk", 0);
    BSON_APPEND_BINARY(&item, "epochs", BSON_SUBTYPE_BINARY, zeros,
                       (uint32_t)epoch_bytes);
    BSON_APPEND_BINARY(&item, "values", BSON_SUBTYPE_BINARY, zeros,
                       (uint32_t)value_bytes);
    bson_append_document_end(&arr, &item);
    bson_append_array_end(&rec, &arr);
    free(zeros);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%lld.bson", dir, (long long)trial);
    cr_assert_eq(xp__mkdir_p(dir, NULL), 0, "mkdir %s", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(bson_get_data(&rec), 1, rec.len, f), rec.len);
    cr_assert_eq(fclose(f), 0);
    bson_destroy(&rec);
}

/* A spool file that is valid BSON but whose metric has 4,096 epochs and
 * one value is refused as damaged (read past the values before) and
 * kept; the other spool files are written. */
CONTRACT(damaged_spool_file_refused_and_kept, 60)
{
    const char *id = uid("spoolbad");
    xp_experiment *ex = open_ex(id);
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    run_ok(ex, NULL, NULL);
    run_ok(ex, NULL, NULL);
    char dir[PATH_MAX], bad[PATH_MAX + 16], good[PATH_MAX + 16];
    spool_dir(id, dir, sizeof dir);
    spool_by_hand(ex, dir, 1, 4096 * 8, 8);
    spool_by_hand(ex, dir, 2, 3 * 8, 3 * 8);
    xp_experiment_destroy(&ex);
    snprintf(bad, sizeof bad, "%s/1.bson", dir);
    snprintf(good, sizeof good, "%s/2.bson", dir);

    ex = open_ex(id); /* replays the spool */
    cr_assert_eq(access(bad, F_OK), 0, "damaged spool file %s not kept", bad);
    cr_assert_neq(access(good, F_OK), 0, "good spool file %s left", good);
    size_t written = 9;
    xp_error_t err = {0};
    cr_assert_neq(xp_experiment_sync(ex, &written, &err), 0,
                  "sync took a damaged spool file");
    cr_assert_eq(written, 0, "written %zu", written);
    cr_assert(strstr(err.message, "damaged") && strstr(err.message, bad),
              "'%s'", err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    cr_assert_eq(access(bad, F_OK), 0, "damaged spool file %s not kept", bad);

    xp_value *t = xpt_trial(ex, 2);
    cr_assert_eq(xpt_get_int(t, "result"), 42, "spooled trial 2 not written");
    xp_value_destroy(&t);
    xp_metric_table *mt = NULL;
    int64_t two = 2, one = 1;
    cr_assert_eq(xp_load_metric(ex, "loss", &two, 1, &mt, &err), 0, "'%s'",
                 err.message);
    cr_assert_eq(xp_metric_table_epochs(mt), 1, "%zu epochs",
                 xp_metric_table_epochs(mt));
    xp_metric_table_destroy(&mt);
    cr_assert_neq(xp_load_metric(ex, "loss", &one, 1, &mt, &err), 0,
                  "points of the damaged spool file were stored");
    t = xpt_trial(ex, 1);
    cr_assert_eq(xpt_get_int(t, "result"), 1,
                 "trial 1 was rewritten from the damaged spool file");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    cr_assert_eq(xpt_wait(pid), 0, "child");
    return pid;
}

/* A killed `xp sync` leaves its claim (N.bson.<pid>[.<start>].claimed)
 * behind: a claim whose process is gone is taken over and written; one
 * whose process lives is left to it. */
CONTRACT(stale_spool_claims_taken_over, 60)
{
    const char *id = uid("claims");
    xp_experiment *ex = open_ex(id);
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    for (int i = 0; i < 3; i++)
        run_ok(ex, NULL, NULL);
    char dir[PATH_MAX], from[PATH_MAX + 32], claim[3][PATH_MAX + 64];
    spool_dir(id, dir, sizeof dir);
    pid_t gone = dead_pid();
    for (int64_t t = 1; t <= 3; t++)
        spool_by_hand(ex, dir, t, 8, 8);
    xp_experiment_destroy(&ex);
    /* Trial 1: an older claim (pid only); 2: pid and start time of a
     * process that is gone; 3: this live process. */
    snprintf(claim[0], sizeof claim[0], "%s/1.bson.%d.claimed", dir, (int)gone);
    snprintf(claim[1], sizeof claim[1], "%s/2.bson.%d.%llu.claimed", dir,
             (int)gone, 12345ULL);
    snprintf(claim[2], sizeof claim[2], "%s/3.bson.%d.%llu.claimed", dir,
             (int)getpid(), (unsigned long long)xp__self_start());
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/%d.bson", dir, i + 1);
        cr_assert_eq(rename(from, claim[i]), 0, "rename: %s", strerror(errno));
    }

    ex = open_ex(id); /* replays the spool */
    for (int64_t t = 1; t <= 2; t++) {
        xp_value *v = xpt_trial(ex, t);
        cr_assert_eq(xpt_get_int(v, "result"), 42,
                     "trial %lld of a stale claim was not written",
                     (long long)t);
        xp_value_destroy(&v);
        cr_assert_neq(access(claim[t - 1], F_OK), 0, "claim %s left",
                      claim[t - 1]);
    }
    xp_value *v = xpt_trial(ex, 3);
    cr_assert_eq(xpt_get_int(v, "result"), 1,
                 "a live process's claim was taken");
    xp_value_destroy(&v);
    cr_assert_eq(access(claim[2], F_OK), 0, "a live claim was removed");
    size_t written = 9;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_sync(ex, &written, &err), 0, "'%s'",
                 err.message);
    cr_assert_eq(written, 0, "written %zu", written);
    xp_experiment_destroy(&ex);
}

/* A spool write whose process died before its rename leaves
 * N.bson.<pid>.tmp: the next replay removes it when that process is gone,
 * and leaves a live process's. */
CONTRACT(dead_writers_temporary_spool_files_removed, 60)
{
    const char *id = uid("tmps");
    xp_experiment *ex = open_ex(id);
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    run_ok(ex, NULL, NULL);
    char dir[PATH_MAX], dead[PATH_MAX + 64], live[PATH_MAX + 64];
    spool_dir(id, dir, sizeof dir);
    xp_experiment_destroy(&ex);
    cr_assert_eq(xp__mkdir_p(dir, NULL), 0);
    snprintf(dead, sizeof dead, "%s/1.bson.%d.tmp", dir, (int)dead_pid());
    snprintf(live, sizeof live, "%s/2.bson.%d.tmp", dir, (int)getpid());
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(i ? live : dead, "w");
        cr_assert_not_null(f, "%s", strerror(errno));
        fputs("half a record", f);
        fclose(f);
    }
    ex = open_ex(id); /* replays the spool */
    cr_assert_neq(access(dead, F_OK), 0, "%s left", dead);
    cr_assert_eq(access(live, F_OK), 0, "a live writer's %s removed", live);
    xp_experiment_destroy(&ex);
}

/* An experiment opened read-only reads its history and writes nothing:
 * a spooled trial waits for the next writer, sync is refused, and an
 * unknown experiment is not created. */
CONTRACT(reader_writes_nothing, 60)
{
    const char *id = uid("reader");
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.read_only = true;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, id, &o, &err), -1, "opened unknown");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);

    ex = open_ex(id);
    xp_backend *be = ex->backend;
    bson_t doc = BSON_INITIALIZER, params = BSON_INITIALIZER;
    BSON_APPEND_INT64(&params, "a", 3);
    BSON_APPEND_UTF8(&doc, "experiment", id);
    BSON_APPEND_UTF8(&doc, "status", "running");
    BSON_APPEND_DOCUMENT(&doc, "parameters", &params);
    BSON_APPEND_INT64(&doc, "seed", 5);
    BSON_APPEND_DATE_TIME(&doc, "started", xp__now_ms());
    BSON_APPEND_UTF8(&doc, "host", "elsewhere");
    BSON_APPEND_INT64(&doc, "pid", 1);
    xp_trial_record rec;
    cr_assert_eq(xp__record_decode(&doc, &rec, &err), 0, "'%s'", err.message);
    cr_assert_eq(xp__store_trial_begin(be, &rec, &err), 0, "trial_begin: '%s'",
                 err.message);
    int64_t trial = rec.trial_id;
    bson_t final = BSON_INITIALIZER;
    bson_append_int64(&final, "trial_id", -1, trial);
    bson_copy_to_excluding_noinit(&doc, &final, "status", NULL);
    BSON_APPEND_UTF8(&final, "status", "succeeded");
    BSON_APPEND_INT64(&final, "result", 6);
    char *path = NULL;
    spool_doc(be, &final, &path);
    xp_experiment_destroy(&ex);

    cr_assert_eq(xp_experiment_open(&ex, id, &o, &err), 0, "read_only: '%s'",
                 err.message);
    cr_assert_eq(xpt_last_id(ex), trial, "last id");
    xp_value *t = xpt_trial(ex, trial);
    cr_assert_str_eq(xpt_get_str(t, "status"), "running",
                     "replayed by a "
                     "reader");
    xp_value_destroy(&t);
    cr_assert_eq(access(path, F_OK), 0, "a reader took the spool file");
    size_t written = 9;
    cr_assert_eq(xp_experiment_sync(ex, &written, &err), -1, "sync");
    cr_assert_eq(err.code, XP_ESTATE, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);

    ex = open_ex(id); /* a writer writes it */
    t = xpt_trial(ex, trial);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "not replayed");
    xp_value_destroy(&t);
    cr_assert_neq(access(path, F_OK), 0, "spool file left");
    xp_experiment_destroy(&ex);
    bson_free(path);
    bson_destroy(&final);
    bson_destroy(&doc);
    bson_destroy(&params);
}

/* A direct connection to the test's Redis database. Caller frees. */
static redisContext *redis_direct(void)
{
    char host[256];
    int port, db;
    cr_assert(xpt_redis_addr(s_backend, host, &port, &db),
              "XP_TEST_REDIS_URI is not of the form redis://host:port/db");
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    cr_assert(c && !c->err, "cannot connect to %s", s_backend);
    redisReply *r = redisCommand(c, "SELECT %d", db);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SELECT %d", db);
    freeReplyObject(r);
    return c;
}

static void redis_do(redisContext *c, const char *fmt, const char *id)
{
    redisReply *r = redisCommand(c, fmt, id);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt,
              r ? r->str : c->errstr);
    freeReplyObject(r);
}

/* Loses the experiment's id counter, as a Redis restarted without
 * persistence or an operator's DEL would. The local store has none: its
 * ids come from the trials table itself. */
static void forget_counter(const char *id)
{
    if (s_kind == B_REDIS) {
        redisContext *c = redis_direct();
        redis_do(c, "DEL %s:counter", id);
        redisFree(c);
    } else if (s_kind == B_MONGO) {
        mongoc_init();
        mongoc_uri_t *u = mongoc_uri_new(s_backend);
        cr_assert_not_null(u, "URI");
        mongoc_client_t *c = mongoc_client_new_from_uri(u);
        mongoc_collection_t *counters = mongoc_client_get_collection(
            c, mongoc_uri_get_database(u), "xp.counters");
        bson_t sel = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&sel, "_id", id);
        bson_error_t e;
        cr_assert(mongoc_collection_delete_one(counters, &sel, NULL, NULL, &e),
                  "deleting the counter: %s", e.message);
        bson_destroy(&sel);
        mongoc_collection_destroy(counters);
        mongoc_client_destroy(c);
        mongoc_uri_destroy(u);
    }
}

/* Trial `trial` still holds the run with parameter a (step `typed`). */
static void check_trial(xp_experiment *ex, int64_t trial, int64_t a)
{
    xp_value *t = xpt_trial(ex, trial);
    cr_assert_eq(xpt_get_int(xpt_field(t, "parameters"), "a"), a,
                 "%s: trial %lld was overwritten", s_kind_name[s_kind],
                 (long long)trial);
    cr_assert_eq(xpt_get_int(t, "result"), 2 * a, "trial %lld result",
                 (long long)trial);
    xp_value_destroy(&t);
}

CONTRACT(lost_counter_never_reuses_an_id, 60)
{
    const char *id = uid("counter");
    xp_experiment *ex = open_ex(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_result(XP_STEP(ex, typed, a));
    for (int i = 1; i <= 3; i++) {
        set_int(ex, "a", i);
        run_ok(ex, NULL, NULL);
    }
    forget_counter(id);
    set_int(ex, "a", 40);
    cr_assert_eq(run_ok(ex, NULL, NULL), 4, "%s: id after the counter was lost",
                 s_kind_name[s_kind]);
    if (s_kind == B_REDIS) {
        /* A record the history index does not list is not handed out
         * either. */
        redisContext *c = redis_direct();
        redis_do(c, "DEL %s:counter", id);
        redis_do(c, "ZREM %s:trials 4", id);
        redisFree(c);
        set_int(ex, "a", 50);
        cr_assert_eq(run_ok(ex, NULL, NULL), 5, "id past an unlisted record");
        check_trial(ex, 5, 50);
    }
    for (int i = 1; i <= 3; i++)
        check_trial(ex, i, i);
    check_trial(ex, 4, 40);
    xp_experiment_destroy(&ex);
}

/* A spooled record whose id meanwhile holds another trial (the backend
 * lost the first one and handed its id out again) is not written: the
 * stored trial stays, the spool file too, and the reason is one line. */
CONTRACT(replay_never_overwrites_another_trial, 60)
{
    const char *id = uid("replay");
    xp_experiment *ex = open_ex(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_result(XP_STEP(ex, typed, a));
    set_int(ex, "a", 1);
    cr_assert_eq(run_ok(ex, NULL, NULL), 1, "first id");

    bson_t final = BSON_INITIALIZER, params = BSON_INITIALIZER;
    BSON_APPEND_INT64(&params, "a", 77);
    bson_append_int64(&final, "trial_id", -1, 1);
    BSON_APPEND_UTF8(&final, "experiment", id);
    BSON_APPEND_UTF8(&final, "status", "succeeded");
    BSON_APPEND_DOCUMENT(&final, "parameters", &params);
    BSON_APPEND_INT64(&final, "seed", 4242);
    BSON_APPEND_DATE_TIME(&final, "started", xp__now_ms() - 3600 * 1000);
    BSON_APPEND_UTF8(&final, "host", xp__hostname());
    BSON_APPEND_INT64(&final, "pid", 1);
    BSON_APPEND_DATE_TIME(&final, "finished", xp__now_ms());
    BSON_APPEND_INT64(&final, "result", 154);
    BSON_APPEND_UTF8(&final, "result_type", "int64");
    BSON_APPEND_BOOL(&final, "success", true);
    BSON_APPEND_UTF8(&final, "description", "");
    char *path = NULL;
    xp_error_t err = {0};
    spool_doc(ex->backend, &final, &path);
    for (int round = 0; round < 2; round++) {
        size_t written = 9;
        cr_assert_eq(xp_experiment_sync(ex, &written, &err), -1,
                     "%s: a replay overwrote another trial",
                     s_kind_name[s_kind]);
        cr_assert_eq(written, 0, "written %zu", written);
        cr_assert_eq(err.code, XP_EEXIST, "code %u '%s'", err.code,
                     err.message);
        cr_assert(strstr(err.message, "trial 1 ") && strstr(err.message, path),
                  "'%s' names neither the trial nor %s", err.message, path);
        cr_assert_null(strchr(err.message, '\n'), "multi-line error");
        cr_assert_eq(access(path, F_OK), 0, "spool file %s not kept", path);
        check_trial(ex, 1, 1);
        if (round == 0) { /* opening tries again, and says so once */
            xp_experiment_destroy(&ex);
            ex = open_ex(id);
            cr_assert_geq(xpt_log_find(&s_log, XP_LOG_WARNING, "trial 1 "), 0,
                          "no warning: %s", xpt_log_dump(&s_log));
            check_trial(ex, 1, 1);
        }
    }
    bson_free(path);
    bson_destroy(&final);
    bson_destroy(&params);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- bad input */

static const char *const s_hostile[] = {
    "$where", "a.b", "..",       "a:b",         "a b",  "a/b",
    "",       "-a",  "\xff\xfe", "caf\xc3\xa9", "a\nb", "*",
};
#define N_HOSTILE (sizeof s_hostile / sizeof *s_hostile)

/* Experiment id or name i of the hostile list; the last two are too long
 * (65 characters for an id, 129 for a name). Test-owned string. */
static const char *hostile(size_t i, size_t too_long)
{
    static char buf[256];
    if (i < N_HOSTILE)
        return s_hostile[i];
    memset(buf, 'a', too_long);
    buf[too_long] = '\0';
    return buf;
}

CONTRACT(hostile_ids_rejected_before_the_server, 60)
{
    /* An unreachable server of the same kind: an id reaching it would
     * fail differently (and slowly). */
    char unreachable[PATH_MAX];
    if (s_kind == B_LOCAL)
        snprintf(unreachable, sizeof unreachable, "%s/never", xpt_dir);
    else if (s_kind == B_REDIS)
        snprintf(unreachable, sizeof unreachable, "redis://127.0.0.1:1/0");
    else
        snprintf(unreachable, sizeof unreachable,
                 "mongodb://127.0.0.1:1/xp_test?serverSelectionTimeoutMS=300");
    const char *specs[] = {s_backend, unreachable};
    for (size_t i = 0; i <= N_HOSTILE; i++) {
        const char *id = hostile(i, XP_ID_MAX + 1);
        for (int s = 0; s < 2; s++) {
            xp_open_options o = XP_OPEN_OPTIONS_INIT;
            o.backend = specs[s];
            xp_experiment *ex = NULL;
            xp_error_t err = {0};
            double t0 = xpt_now();
            int rc = xp_experiment_open(&ex, id, &o, &err);
            cr_assert_eq(rc, -1, "hostile id #%zu accepted on %s", i, specs[s]);
            cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT,
                         "id #%zu: domain %u '%s'", i, err.domain, err.message);
            cr_assert_eq(err.code, XP_EINVAL, "id #%zu: code %u '%s'", i,
                         err.code, err.message);
            cr_assert_null(strchr(err.message, '\n'), "multi-line error");
            cr_assert_lt(xpt_now() - t0, 0.25, "id #%zu took %.2f s", i,
                         xpt_now() - t0);
        }
    }
    if (s_kind == B_LOCAL)
        cr_assert_neq(access(unreachable, F_OK), 0, "hostile ids created %s",
                      unreachable);
    /* 64 characters is the longest valid id. */
    char longest[XP_ID_MAX + 1];
    snprintf(longest, sizeof longest, "%s", uid("longest"));
    size_t n = strlen(longest);
    memset(longest + n, 'x', XP_ID_MAX - n);
    longest[XP_ID_MAX] = '\0';
    snprintf(s_ids[s_n_ids - 1], sizeof s_ids[0], "%s", longest);
    xp_experiment *ex = open_ex(longest);
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    run_ok(ex, NULL, NULL);
    xp_experiment_destroy(&ex);
}

static size_t s_hostile_index;

static int save_hostile(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    if (xp_save_metric(st, hostile(s_hostile_index, XP_NAME_MAX + 1), 0, 1.0) !=
        0)
        return -1;
    return xp_set_int64(out, 1);
}

CONTRACT(hostile_names_rejected, 60)
{
    const char *id = uid("names");
    xp_experiment *ex = open_ex(id);
    xp_result(xp_step_add(ex, "save_hostile", save_hostile, 0, NULL, NULL, 0));
    xp_error_t err = {0};
    for (size_t i = 0; i <= N_HOSTILE; i++) {
        const char *name = hostile(i, XP_NAME_MAX + 1);
        s_hostile_index = i;
        int64_t trial = 0;
        cr_assert_eq(xp_compute(ex, NULL, NULL, &trial, &err), -1,
                     "hostile metric name #%zu accepted", i);
        cr_assert_eq(err.code, XP_ESTEP, "#%zu: code %u '%s'", i, err.code,
                     err.message);
        cr_assert(strstr(err.message, "metric name"), "#%zu: '%s'", i,
                  err.message);
        xp_value *t = xpt_trial(ex, trial);
        cr_assert_str_eq(xpt_get_str(t, "status"), "failed", "status");
        xp_value_destroy(&t);

        xp_metric_table *mt = NULL;
        cr_assert_eq(xp_load_metric(ex, name, &trial, 1, &mt, &err), -1,
                     "loading hostile metric #%zu", i);
        cr_assert_eq(err.code, XP_EINVAL, "#%zu: code %u '%s'", i, err.code,
                     err.message);
        xp_value *v = NULL;
        cr_assert_eq(xp_load_persisted(ex, name, trial, &v, &err), -1,
                     "loading hostile step #%zu", i);
        cr_assert_eq(err.code, XP_EINVAL, "#%zu: code %u '%s'", i, err.code,
                     err.message);
    }
    xp_experiment_destroy(&ex);

    /* Hostile step and parameter names never make it into a definition. */
    for (size_t i = 0; i <= N_HOSTILE; i++) {
        const char *name = hostile(i, XP_NAME_MAX + 1);
        ex = open_ex(id);
        cr_assert_null(xp_step_add(ex, name, quick, 0, NULL, NULL, 0),
                       "hostile step name #%zu accepted", i);
        cr_assert_eq(xp_experiment_check(ex, &err), -1, "check");
        cr_assert_eq(err.code, XP_EINVAL, "#%zu: code %u '%s'", i, err.code,
                     err.message);
        xp_experiment_destroy(&ex);
        ex = open_ex(id);
        cr_assert_null(xp_parameter(ex, name),
                       "hostile parameter name #%zu accepted", i);
        xp_experiment_destroy(&ex);
    }
}

/* ---------------------------------------------------------------- concurrency
 */

#define N_PROCS 8
#define PER_PROC 50

/* Child: its own handle, opened after fork; exit 0 when every trial
 * succeeded with the right result. */
static void child_main(const char *id, int p)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "child %d: open: %s\n", p, err.message);
        _exit(3);
    }
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    XP_RESULT(ex, plus_one, a, b);
    for (int i = 0; i < PER_PROC; i++) {
        if (i == PER_PROC / 2) { /* an open while the others write */
            xp_experiment *again = NULL;
            if (xp_experiment_open(&again, id, &o, &err) != 0) {
                fprintf(stderr, "child %d: reopen: %s\n", p, err.message);
                _exit(6);
            }
            xp_experiment_destroy(&again);
        }
        xp_set_param_int64(ex, "a", (int64_t)p * 1000 + i, &err);
        xp_set_param_int64(ex, "b", i, &err);
        xp_value *res = NULL;
        if (xp_compute(ex, NULL, &res, NULL, &err) != 0) {
            fprintf(stderr, "child %d trial %d: %s\n", p, i, err.message);
            _exit(4);
        }
        if (xp_as_int64(res) != (int64_t)p * 1000 + 2 * i + 1)
            _exit(5);
        xp_value_destroy(&res);
    }
    xp_experiment_destroy(&ex);
    _exit(0);
}

CONTRACT(processes_get_unique_ids, 240)
{
    const char *id = uid("procs");
    /* Created once, so the children race on trials, not on creation. */
    xp_experiment *ex = open_ex(id);
    xp_experiment_destroy(&ex);
    pid_t pids[N_PROCS];
    char err_path[N_PROCS][PATH_MAX + 32];
    fflush(NULL);
    for (int p = 0; p < N_PROCS; p++) {
        snprintf(err_path[p], sizeof err_path[p], "%s/.child%d", xpt_dir, p);
        pids[p] = fork();
        cr_assert_neq(pids[p], -1, "fork: %s", strerror(errno));
        if (pids[p] == 0) {
            int fd = open(err_path[p], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0)
                dup2(fd, 2);
            child_main(id, p);
        }
    }
    for (int p = 0; p < N_PROCS; p++) {
        int st = xpt_wait(pids[p]);
        char *msg = xpt_slurp(err_path[p]);
        cr_assert_eq(st, 0, "child %d exited %d: %s", p, st, msg);
        free(msg);
    }
    ex = open_ex(id);
    xp_value *h = xpt_history(ex);
    const size_t total = N_PROCS * PER_PROC;
    cr_assert_eq(xp_value_count(h), total, "history has %zu trials",
                 xp_value_count(h));
    int per[N_PROCS] = {0};
    bool seen[N_PROCS][PER_PROC] = {{false}};
    for (size_t i = 0; i < total; i++) {
        const xp_value *t = xp_value_at(h, i);
        cr_assert_eq(xpt_get_int(t, "trial_id"), (int64_t)i + 1,
                     "history[%zu] is trial %lld", i,
                     (long long)xpt_get_int(t, "trial_id"));
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded",
                         "trial %zu: '%s'", i + 1,
                         xpt_get_str(t, "description"));
        int64_t a = xpt_get_int(xpt_field(t, "parameters"), "a");
        int64_t b = xpt_get_int(xpt_field(t, "parameters"), "b");
        int p = (int)(a / 1000), k = (int)(a % 1000);
        cr_assert(p >= 0 && p < N_PROCS && k == b && k < PER_PROC,
                  "trial %zu: a=%lld b=%lld", i + 1, (long long)a,
                  (long long)b);
        cr_assert(!seen[p][k], "process %d trial %d recorded twice", p, k);
        seen[p][k] = true;
        per[p]++;
        cr_assert_eq(xpt_get_int(t, "result"), a + b + 1, "result mixed");
    }
    for (int p = 0; p < N_PROCS; p++)
        cr_assert_eq(per[p], PER_PROC, "process %d recorded %d trials", p,
                     per[p]);
    xp_value_destroy(&h);
    cr_assert_eq(xpt_last_id(ex), (int64_t)total, "last id");
    xp_experiment_destroy(&ex);
    if (s_kind == B_LOCAL) { /* one line per trial, in id order */
        char tsv[PATH_MAX + 80];
        snprintf(tsv, sizeof tsv, "%s/%s/trials.tsv", xpt_dir, id);
        char *text = xpt_slurp(tsv);
        cr_assert_eq(xpt_count_lines(text), total, "trials.tsv has %zu lines",
                     xpt_count_lines(text));
        const char *line = text;
        for (size_t i = 0; i < total; i++) {
            cr_assert_eq(strtoll(line, NULL, 10), (long long)i + 1,
                         "line %zu of trials.tsv: %.40s", i + 1, line);
            line = strchr(line, '\n') + 1;
        }
        free(text);
    }
}

/* ---------------------------------------------------------------- queue */

static int collect_id(const bson_t *doc, void *user)
{
    xp_value *ids = user;
    int64_t id = 0;
    cr_assert(xp__bson_int64(doc, "trial_id", &id), "record without trial_id");
    bson_t params;
    cr_assert(xp__bson_sub(doc, "parameters", &params), "no parameters");
    xp_set_int64(xp_array_append(ids), id);
    return 0;
}

static int find_id(const char *id, void *user)
{
    const char **want = user;
    if (*want && strcmp(id, *want) == 0)
        *want = NULL; /* found */
    return 0;
}

/* What a restarted scheduler relies on: trials recorded as queued are
 * listed, in id order, until they are finished; the experiment is found
 * by listing the backend's experiments. */
CONTRACT(queued_trials_listed_until_finished, 60)
{
    const char *id = uid("queued");
    xp_experiment *ex = open_ex(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_result(XP_STEP(ex, typed, a));
    xp_trial *t[3];
    xp_error_t err = {0};
    for (int i = 0; i < 3; i++) {
        xp_value *params = xp_value_new();
        xp_set_document(params);
        xp_set_int64(xp_document_set(params, "a"), i);
        xp_run_options o = XP_RUN_OPTIONS_INIT;
        o.params = params;
        cr_assert_eq(xp__trial_start(&t[i], ex, &o, "test", &err), 0,
                     "queue trial %d: %s", i, err.message);
        xp_value_destroy(&params);
    }
    xp_backend *b = ex->backend;
    cr_assert_not_null(b->ops->queued_trials, "%s lists no queued trials",
                       s_kind_name[s_kind]);
    xp_value *ids = xp_value_new();
    xp_set_array(ids);
    cr_assert_eq(xp__store_queued_trials(b, collect_id, ids, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_value_count(ids), 3, "%zu queued", xp_value_count(ids));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(xp_as_int64(xp_value_at(ids, (size_t)i)), i + 1);

    /* Running on a scheduler's worker: still the scheduler's, listed. */
    cr_assert_not_null(b->ops->trial_running, "no trial_running");
    cr_assert_eq(xp__trial_record_running(t[2], &err), 0, "%s", err.message);
    xp_value *t3 = xpt_trial(ex, 3);
    cr_assert_str_eq(xpt_get_str(t3, "status"), "running");
    xp_value_destroy(&t3);

    /* The middle one finishes (failed here): two are left, in order. */
    xp__trial_fail(t[1], "stopped by the test");
    xp_value *result = NULL;
    cr_assert_neq(xp__trial_finish(t[1], &result, &err), 0, "should fail");
    xp_value_destroy(&ids);
    ids = xp_value_new();
    xp_set_array(ids);
    cr_assert_eq(xp__store_queued_trials(b, collect_id, ids, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_value_count(ids), 2, "%zu queued", xp_value_count(ids));
    cr_assert_eq(xp_as_int64(xp_value_at(ids, 0)), 1);
    cr_assert_eq(xp_as_int64(xp_value_at(ids, 1)), 3);
    xp_value_destroy(&ids);
    for (int i = 0; i < 3; i++)
        xp__trial_free(&t[i]);
    /* Reopening does not take the scheduler's running trial for one of a
     * dead local process. */
    xp_experiment_destroy(&ex);
    ex = open_ex(id);
    t3 = xpt_trial(ex, 3);
    cr_assert_str_eq(xpt_get_str(t3, "status"), "running");
    xp_value_destroy(&t3);

    const char *want = id;
    cr_assert_eq(xp__store_experiments(s_backend, find_id, &want, &err), 0,
                 "%s", err.message);
    cr_assert_null(want, "%s not among the experiments of %s", id,
                   s_kind_name[s_kind]);
    xp_experiment_destroy(&ex);
}

/* ---- metric names, series, graph */

/* Points of metric "loss" a trial of the series tests saves: fewer on
 * the MongoDB test server, which is slow. */
static int64_t series_points(void)
{
    return s_kind == B_MONGO ? 20000 : 100000;
}

static int64_t spike_epoch(int64_t n)
{
    return n * 3 / 7;
}

static double series_value(int64_t e, int64_t n)
{
    return e == spike_epoch(n) ? 1e9 : sin((double)e * 0.01);
}

/* Saves in[0] points of "loss" (epochs 0..n-1, one spike), 3 of
 * "accuracy", 1 of "lr" and 5 of "reverse" (epochs 4 down to 0); nothing
 * when in[0] is 0. */
static int charted(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t n = xp_as_int64(in[0]);
    for (int64_t e = 0; e < n; e++)
        if (xp_save_metric(st, "loss", e, series_value(e, n)) != 0)
            return -1;
    for (int64_t e = 0; n > 0 && e < 3; e++)
        if (xp_save_metric(st, "accuracy", e, 0.5) != 0)
            return -1;
    if (n > 0 && xp_save_metric(st, "lr", 0, 0.1) != 0)
        return -1;
    for (int64_t e = 4; n > 0 && e >= 0; e--)
        if (xp_save_metric(st, "reverse", e, (double)e) != 0)
            return -1;
    return xp_set_int64(out, n);
}

/* An experiment saving count points (trial ids in order of counts). */
static xp_experiment *charted_trials(const char *id, const int64_t *counts,
                                     size_t n)
{
    xp_experiment *ex = open_ex(id);
    xp_node *count = xp_parameter(ex, "count");
    cr_assert_not_null(XP_RESULT(ex, charted, count), "definition");
    for (size_t i = 0; i < n; i++) {
        set_int(ex, "count", counts[i]);
        run_ok(ex, NULL, NULL);
    }
    return ex;
}

static void assert_strings(const xp_value *arr, const char *const *want,
                           size_t n)
{
    char *json = xpt_json(arr);
    cr_assert_eq(xp_value_type(arr), XP_TYPE_ARRAY, "%s", json);
    cr_assert_eq(xp_value_count(arr), n, "%s", json);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(xp_as_string(xp_value_at(arr, i), NULL), want[i], "%s",
                         json);
    xp_free(json);
}

CONTRACT(metric_names_of_a_trial, 60)
{
    const char *id = uid("names");
    int64_t counts[] = {10, 0};
    xp_experiment *ex = charted_trials(id, counts, 2);
    xp_experiment_destroy(&ex);
    ex = open_ex(id);
    xp_value *names = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_metric_names(ex, 1, &names, &err), 0, "%s", err.message);
    const char *const want[] = {"accuracy", "loss", "lr", "reverse"};
    assert_strings(names, want, 4);
    xp_value_destroy(&names);
    cr_assert_eq(xp_metric_names(ex, 2, &names, &err), 0, "%s", err.message);
    assert_strings(names, NULL, 0);
    xp_value_destroy(&names);
    cr_assert_eq(xp_metric_names(ex, 3, &names, &err), -1, "trial 3 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_null(names);
    cr_assert_eq(xp_metric_names(ex, 0, &names, &err), -1, "trial 0 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
}

/* s holds points of "loss" with epochs in [from, to] in order, the spike
 * among them when it is in range. */
static void assert_loss_series(const xp_series *s, int64_t n, int64_t from,
                               int64_t to)
{
    cr_assert_gt(s->n, 0);
    cr_assert_eq(s->epochs[0], from, "first kept: %lld",
                 (long long)s->epochs[0]);
    cr_assert_eq(s->epochs[s->n - 1], to, "last kept: %lld",
                 (long long)s->epochs[s->n - 1]);
    bool spike = false;
    for (size_t i = 0; i < s->n; i++) {
        if (i > 0 && s->epochs[i] <= s->epochs[i - 1])
            cr_assert_fail("epochs out of order at %zu", i);
        if (s->values[i] != series_value(s->epochs[i], n))
            cr_assert_fail("epoch %lld: %g", (long long)s->epochs[i],
                           s->values[i]);
        spike |= s->epochs[i] == spike_epoch(n);
    }
    bool in_range = spike_epoch(n) >= from && spike_epoch(n) <= to;
    cr_assert_eq(spike, in_range, "spike %s", spike ? "shown" : "lost");
}

CONTRACT(metric_series_full_and_downsampled, 120)
{
    const char *id = uid("series");
    int64_t n = series_points();
    int64_t counts[] = {n};
    xp_experiment *ex = charted_trials(id, counts, 1);
    xp_experiment_destroy(&ex);
    ex = open_ex(id);
    xp_error_t err = {0};
    xp_series *s = NULL;
    cr_assert_eq(
        xp_metric_series(ex, "loss", 1, INT64_MIN, INT64_MAX, 0, &s, &err), 0,
        "%s", err.message);
    cr_assert_eq(s->n, (size_t)n, "%zu points", s->n);
    cr_assert_eq(s->total, (size_t)n);
    cr_assert(!s->downsampled);
    assert_loss_series(s, n, 0, n - 1);
    xp_series_destroy(&s);

    cr_assert_eq(
        xp_metric_series(ex, "loss", 1, INT64_MIN, INT64_MAX, 1000, &s, &err),
        0, "%s", err.message);
    cr_assert_leq(s->n, 1000, "%zu points", s->n);
    cr_assert_gt(s->n, 900, "%zu points", s->n);
    cr_assert_eq(s->total, (size_t)n);
    cr_assert(s->downsampled);
    assert_loss_series(s, n, 0, n - 1);
    xp_series_destroy(&s);

    /* A window: whole, then cut down. */
    int64_t from = n / 4, to = n / 2;
    cr_assert_eq(xp_metric_series(ex, "loss", 1, from, to, 0, &s, &err), 0,
                 "%s", err.message);
    cr_assert_eq(s->n, (size_t)(to - from + 1), "%zu points", s->n);
    cr_assert_eq(s->total, s->n);
    assert_loss_series(s, n, from, to);
    xp_series_destroy(&s);
    cr_assert_eq(xp_metric_series(ex, "loss", 1, from, to, 100, &s, &err), 0,
                 "%s", err.message);
    cr_assert_leq(s->n, 100);
    cr_assert_eq(s->total, (size_t)(to - from + 1));
    assert_loss_series(s, n, from, to);
    xp_series_destroy(&s);
    cr_assert_eq(xp_metric_series(ex, "loss", 1, from, from - 1, 0, &s, &err),
                 -1, "an empty range");
    cr_assert_eq(err.code, XP_EINVAL, "code %u '%s'", err.code, err.message);

    /* Saved in reverse, read in epoch order. */
    cr_assert_eq(
        xp_metric_series(ex, "reverse", 1, INT64_MIN, INT64_MAX, 0, &s, &err),
        0, "%s", err.message);
    cr_assert_eq(s->n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert(s->epochs[i] == (int64_t)i && s->values[i] == (double)i,
                  "point %zu: %lld %g", i, (long long)s->epochs[i],
                  s->values[i]);
    xp_series_destroy(&s);

    cr_assert_eq(xp_metric_series(ex, "nope", 1, 0, 10, 0, &s, &err), -1,
                 "unsaved metric found");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_str_eq(err.message, "trial 1 has no metric nope");
    cr_assert_eq(xp_metric_series(ex, "loss", 2, 0, 10, 0, &s, &err), -1,
                 "trial 2 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_null(s);
    xp_experiment_destroy(&ex);
}

static int prepare(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]));
}

static int score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    if (xp_as_double(in[0]) == 0)
        return xp_step_fail(st, "division by zero");
    return xp_set_double(out, 10 / xp_as_double(in[0]));
}

static int extra(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

/* Parameters a (default 1) and b; prepare(a, b), persisted; the result
 * score(prepare), failing on 0; extra(a), which the result does not
 * need. */
static void define_scored(xp_experiment *ex)
{
    xp_node *a = xp_parameter_literal(ex, "a", "1");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *p = XP_PERSIST(ex, prepare, a, b);
    cr_assert_not_null(XP_RESULT(ex, score, p), "definition");
    cr_assert_not_null(XP_STEP(ex, extra, a), "definition");
}

static const xp_value *graph_step(const xp_value *g, const char *name)
{
    const xp_value *steps = xpt_field(g, "steps");
    for (size_t i = 0; i < xp_value_count(steps); i++)
        if (strcmp(xpt_get_str(xp_value_at(steps, i), "name"), name) == 0)
            return xp_value_at(steps, i);
    cr_assert_fail("no step %s in the graph", name);
    return NULL;
}

static xp_value *graph_of(xp_experiment *ex, int64_t trial)
{
    xp_value *g = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_graph_get(ex, trial, &g, &err), 0, "graph of %lld: %s",
                 (long long)trial, err.message);
    return g;
}

static char *dot_of(xp_experiment *ex, int64_t trial)
{
    char *dot = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_graph_dot(ex, trial, &dot, &err), 0, "DOT of %lld: %s",
                 (long long)trial, err.message);
    return dot;
}

/* Asserts the statuses of prepare, score and extra in trial's graph. */
static void assert_statuses(xp_experiment *ex, int64_t trial,
                            const char *prepare_status,
                            const char *score_status)
{
    xp_value *g = graph_of(ex, trial);
    char *json = xpt_json(g);
    cr_assert_str_eq(xpt_get_str(graph_step(g, "prepare"), "status"),
                     prepare_status, "trial %lld: %s", (long long)trial, json);
    cr_assert_str_eq(xpt_get_str(graph_step(g, "score"), "status"),
                     score_status, "trial %lld: %s", (long long)trial, json);
    cr_assert_str_eq(xpt_get_str(graph_step(g, "extra"), "status"), "not run",
                     "trial %lld: %s", (long long)trial, json);
    xp_free(json);
    xp_value_destroy(&g);
}

static void assert_has(const char *text, const char *part)
{
    cr_assert_not_null(strstr(text, part), "no '%s' in:\n%s", part, text);
}

/* The definition's graph: parameters with defaults, steps with inputs,
 * the persisted and result marks, no status. */
static void assert_scored_definition(const xp_value *g)
{
    char *json = xpt_json(g);
    const xp_value *params = xpt_field(g, "parameters");
    cr_assert_eq(xp_value_count(params), 2, "%s", json);
    cr_assert_str_eq(xpt_get_str(xp_value_at(params, 0), "name"), "a");
    cr_assert_eq(xpt_get_int(xp_value_at(params, 0), "default"), 1);
    cr_assert_str_eq(xpt_get_str(xp_value_at(params, 1), "name"), "b");
    cr_assert_null(xp_value_get(xp_value_at(params, 1), "default"), "%s", json);
    cr_assert_eq(xp_value_count(xpt_field(g, "steps")), 3, "%s", json);
    const xp_value *p = graph_step(g, "prepare");
    const char *const ab[] = {"a", "b"};
    assert_strings(xpt_field(p, "inputs"), ab, 2);
    cr_assert(xpt_get_bool(p, "persisted") && !xpt_get_bool(p, "result"));
    const xp_value *s = graph_step(g, "score");
    const char *const pre[] = {"prepare"};
    assert_strings(xpt_field(s, "inputs"), pre, 1);
    cr_assert(!xpt_get_bool(s, "persisted") && xpt_get_bool(s, "result"));
    const xp_value *e = graph_step(g, "extra");
    assert_strings(xpt_field(e, "inputs"), ab, 1);
    cr_assert(!xpt_get_bool(e, "persisted") && !xpt_get_bool(e, "result"));
    cr_assert_null(xp_value_get(s, "status"), "%s", json);
    xp_free(json);
}

CONTRACT(graph_of_definition_and_trials, 60)
{
    const char *id = uid("graph");
    xp_experiment *ex = open_ex(id);
    define_scored(ex);
    xp_value *g = graph_of(ex, 0);
    assert_scored_definition(g);
    xp_value_destroy(&g);
    char *dot = dot_of(ex, 0);
    char head[128];
    snprintf(head, sizeof head, "digraph \"%s\" {\n  rankdir=LR;\n", id);
    cr_assert_eq(strncmp(dot, head, strlen(head)), 0, "%s", dot);
    assert_has(dot, "\"a\" [shape=ellipse];");
    assert_has(dot, "\"b\" [shape=ellipse];");
    assert_has(dot, "\"prepare\" [shape=box, peripheries=2];");
    assert_has(dot, "\"score\" [shape=box, style=\"bold\"];");
    assert_has(dot, "\"extra\" [shape=box];");
    assert_has(dot, "\"a\" -> \"prepare\";\n  \"b\" -> \"prepare\";");
    assert_has(dot, "\"prepare\" -> \"score\";");
    assert_has(dot, "\"a\" -> \"extra\";");
    cr_assert_null(strstr(dot, "fillcolor"), "%s", dot);
    cr_assert_eq(strcmp(dot + strlen(dot) - 2, "}\n"), 0, "%s", dot);
    xp_free(dot);

    xp_error_t err = {0};
    set_int(ex, "b", 2);
    run_ok(ex, NULL, NULL); /* 1 */
    set_int(ex, "b", -1);
    cr_assert_neq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "1 - 1 = 0");
    xp_experiment_destroy(&ex);

    /* Read back on a handle without a definition. */
    ex = open_ex(id);
    g = graph_of(ex, 0); /* the last trial's code */
    assert_scored_definition(g);
    xp_value_destroy(&g);
    assert_statuses(ex, 1, "succeeded", "succeeded");
    assert_statuses(ex, 2, "succeeded", "failed");
    g = graph_of(ex, 1);
    cr_assert_null(xp_value_get(graph_step(g, "score"), "host"),
                   "an in-process step has no worker");
    xp_value_destroy(&g);
    dot = dot_of(ex, 2);
    assert_has(dot, "label=\"trial 2: failed\"");
    assert_has(dot, "\"prepare\" [shape=box, peripheries=2, style=\"filled\", "
                    "fillcolor=palegreen];");
    assert_has(dot, "\"score\" [shape=box, style=\"filled,bold\", "
                    "fillcolor=salmon, tooltip=\"error: score: division by "
                    "zero\"];");
    assert_has(dot, "\"extra\" [shape=box, style=\"filled\", "
                    "fillcolor=lightgrey];");
    xp_free(dot);
    cr_assert_eq(xp_graph_get(ex, 3, &g, &err), -1, "trial 3 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_null(g);
    cr_assert_eq(xp_graph_dot(ex, -1, &dot, &err), -1, "trial -1 exists");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
}

/* What a stored record may hold where a worker's host name goes. */
static const char s_evil_host[] = "evil\"host\\\n} digraph x {\r\\N";
static const char s_evil_host_dot[] = "evil\\\"host\\\\\\n} digraph x { \\\\N";

/* Runs every ready step of t as a scheduler does with a worker's RESULT:
 * where it ran is noted, then its outcome taken (fail_step fails). */
static void run_as_scheduler(xp_trial *t, const char *fail_step)
{
    xp_node *n;
    while ((n = xp__trial_take_ready(t)) != NULL) {
        const char *name = xp_node_name(n);
        /* a worker in element 3 of Slurm array job 4242 */
        xp_record_step where = {.host = s_evil_host,
                                .worker = "w\"7",
                                .attempt = 2,
                                .elapsed = 0.125,
                                .job_id = "4242",
                                .job_index = 3,
                                .job_node = "n\"1"};
        xp__trial_note_step(t, name, &where);
        bool fail = fail_step && strcmp(name, fail_step) == 0;
        xp_value *out = fail ? NULL : xp_value_new();
        if (out)
            xp_set_double(out, 1);
        xp__trial_step_done(t, n, out, fail ? "division by zero" : NULL);
    }
}

static xp_trial *queue_trial(xp_experiment *ex, int64_t b)
{
    xp_value *params = xp_value_new();
    xp_set_document(params);
    xp_set_int64(xp_document_set(params, "b"), b);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = params;
    xp_trial *t = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp__trial_start(&t, ex, &o, "test", &err), 0, "queue: %s",
                 err.message);
    xp_value_destroy(&params);
    return t;
}

/* DOT text is well formed: every quoted string closed on its line, the
 * braces outside strings balanced. */
static void assert_dot_well_formed(const char *dot)
{
    bool quoted = false;
    int depth = 0;
    for (const char *p = dot; *p; p++) {
        if (quoted) {
            cr_assert_neq(*p, '\n', "raw newline in a string: %s", dot);
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = false;
        } else if (*p == '"') {
            quoted = true;
        } else if (*p == '{' || *p == '}') {
            depth += *p == '{' ? 1 : -1;
            cr_assert_geq(depth, 0, "%s", dot);
        }
    }
    cr_assert(!quoted && depth == 0, "unbalanced DOT: %s", dot);
}

CONTRACT(graph_of_a_scheduler_trial, 60)
{
    const char *id = uid("graphsched");
    xp_experiment *ex = open_ex(id);
    define_scored(ex);
    xp_error_t err = {0};
    xp_value *result = NULL;
    xp_trial *ok = queue_trial(ex, 2), *failed = queue_trial(ex, -1);
    xp_trial *running = queue_trial(ex, 5);
    run_as_scheduler(ok, NULL);
    cr_assert_eq(xp__trial_finish(ok, &result, &err), 0, "%s", err.message);
    xp_value_destroy(&result);
    run_as_scheduler(failed, "score");
    cr_assert_neq(xp__trial_finish(failed, &result, &err), 0, "should fail");
    assert_statuses(ex, 3, "not run", "not run"); /* queued */
    cr_assert_eq(xp__trial_record_running(running, &err), 0, "%s", err.message);
    assert_statuses(ex, 3, "running", "running");
    assert_statuses(ex, 1, "succeeded", "succeeded");
    assert_statuses(ex, 2, "succeeded", "failed");

    xp_value *g = graph_of(ex, 2);
    for (int i = 0; i < 2; i++) {
        const xp_value *s = graph_step(g, i ? "score" : "prepare");
        cr_assert_str_eq(xpt_get_str(s, "host"), s_evil_host);
        cr_assert_str_eq(xpt_get_str(s, "worker"), "w\"7");
        cr_assert_eq(xpt_get_int(s, "attempt"), 2);
        cr_assert_eq(xp_as_double(xpt_field(s, "elapsed")), 0.125);
        const xp_value *job = xpt_typed(s, "job", XP_TYPE_DOCUMENT);
        cr_assert_str_eq(xpt_get_str(job, "id"), "4242");
        cr_assert_eq(xpt_get_int(job, "array_index"), 3);
        cr_assert_str_eq(xpt_get_str(job, "node"), "n\"1");
    }
    cr_assert_null(xp_value_get(graph_step(g, "extra"), "host"));
    xp_value_destroy(&g);
    char *dot = dot_of(ex, 2);
    assert_dot_well_formed(dot);
    char tip[256];
    snprintf(tip, sizeof tip,
             "tooltip=\"host: %s\\nworker: w\\\"7\\nattempt: 2\\nelapsed: "
             "0.125 s\\njob: 4242_3 on n\\\"1\\nerror: score: division by "
             "zero\"",
             s_evil_host_dot);
    assert_has(dot, tip);
    cr_assert_null(strstr(dot, "} digraph x {\n"), "%s", dot);
    xp_free(dot);
    xp__trial_free(&ok);
    xp__trial_free(&failed);
    xp__trial_free(&running);
    xp_experiment_destroy(&ex);
}

/* ---- history queries */

/* What the query trials were run with: the expected pages are computed
 * from these, never written down. */
typedef struct {
    int64_t id, n;
    double lr;
    const char *name; /* NULL: the trial had no parameter `name` */
    bool flag;
    int x_kind; /* 0 int, 1 double, 2 string, 3 bool */
    int64_t x_int;
    double x_double;
    char x_string[16];
    bool x_bool;
    bool failed; /* n == 13: the step fails, result null */
} q_trial;

#define Q_TRIALS 50
#define Q_HOSTILE "<img src=x onerror=alert(1)>"

static q_trial s_q[Q_TRIALS];

static int q_score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t n = xp_as_int64(in[0]);
    if (n == 13)
        return xp_step_fail(st, "unlucky");
    return xp_set_double(out, (double)n * xp_as_double(in[1]));
}

static double q_result(const q_trial *t)
{
    return (double)t->n * t->lr;
}

/* Trial k's inputs (k from 1; the last one has no `name`). */
static void q_inputs(q_trial *t, int k)
{
    static const char *const names[] = {"alpha", "beta", "gamma",
                                        "delta", "Zeta", "\xc3\xa9psilon"};
    *t = (q_trial){.id = k, .n = k % 17, .lr = (k % 9) * 0.125};
    t->name = k == Q_TRIALS ? NULL : k == 20 ? Q_HOSTILE : names[k % 6];
    t->flag = k % 3 == 0;
    t->x_kind = k % 4;
    t->x_int = k;
    t->x_double = k + 0.5;
    snprintf(t->x_string, sizeof t->x_string, "s%d", k);
    t->x_bool = k % 8 == 3;
    t->failed = t->n == 13;
}

static xp_value *q_params(const q_trial *t)
{
    xp_value *p = xp_value_new();
    xp_set_document(p);
    xp_set_int64(xp_document_set(p, "n"), t->n);
    xp_set_double(xp_document_set(p, "lr"), t->lr);
    if (t->name)
        xp_set_string(xp_document_set(p, "name"), t->name);
    xp_set_bool(xp_document_set(p, "flag"), t->flag);
    xp_value *x = xp_document_set(p, "x");
    if (t->x_kind == 0)
        xp_set_int64(x, t->x_int);
    else if (t->x_kind == 1)
        xp_set_double(x, t->x_double);
    else if (t->x_kind == 2)
        xp_set_string(x, t->x_string);
    else
        xp_set_bool(x, t->x_bool);
    return p;
}

/* Defines the graph, with or without the parameter `name`. */
static void q_define(xp_experiment *ex, bool with_name)
{
    xp_node *n = xp_parameter(ex, "n");
    xp_node *lr = xp_parameter(ex, "lr");
    if (with_name)
        xp_parameter(ex, "name");
    xp_parameter(ex, "flag");
    xp_parameter(ex, "x");
    xp_result(XP_STEP(ex, q_score, n, lr));
}

/* Runs the 50 trials; the last from a second handle without `name`. */
static xp_experiment *q_seed(const char *id)
{
    xp_experiment *ex = open_ex(id);
    q_define(ex, true);
    for (int k = 1; k <= Q_TRIALS; k++) {
        q_inputs(&s_q[k - 1], k);
        if (k == Q_TRIALS) {
            xp_experiment_destroy(&ex);
            ex = open_ex(id);
            q_define(ex, false);
        }
        xp_value *params = q_params(&s_q[k - 1]);
        xp_run_options o = XP_RUN_OPTIONS_INIT;
        o.params = params;
        int64_t got = 0;
        xp_error_t err = {0};
        int rc = xp_compute(ex, &o, NULL, &got, &err);
        cr_assert_eq(rc == 0, !s_q[k - 1].failed, "trial %d: %s", k,
                     err.message);
        cr_assert_eq(got, k, "trial %d got id %lld", k, (long long)got);
        xp_value_destroy(&params);
    }
    return ex;
}

/* The filters, each with its meaning over the inputs. */
static bool q_x_number_above(const q_trial *t, double v)
{
    return (t->x_kind == 0 && t->x_int > v) ||
           (t->x_kind == 1 && t->x_double > v);
}

static bool q_x_is(const q_trial *t, int kind, double num, const char *s,
                   bool b)
{
    switch (kind) {
    case 0: /* a number literal */
        return (t->x_kind == 0 && t->x_int == num) ||
               (t->x_kind == 1 && t->x_double == num);
    case 2: return t->x_kind == 2 && strcmp(t->x_string, s) == 0;
    default: return t->x_kind == 3 && t->x_bool == b;
    }
}

static bool qf_all(const q_trial *t)
{
    (void)t;
    return true;
}
static bool qf_n(const q_trial *t)
{
    return t->n > 5;
}
static bool qf_n_lr(const q_trial *t)
{
    return t->n >= 3 && t->lr < 0.5;
}
static bool qf_hostile(const q_trial *t)
{
    return t->name && strcmp(t->name, Q_HOSTILE) == 0;
}
static bool qf_failed(const q_trial *t)
{
    return t->failed;
}
static bool qf_x_above(const q_trial *t)
{
    return q_x_number_above(t, 10);
}
static bool qf_x_in(const q_trial *t)
{
    return q_x_is(t, 3, 0, NULL, true) || q_x_is(t, 2, 0, "s7", false) ||
           q_x_is(t, 2, 0, "s14", false);
}
static bool qf_no_name(const q_trial *t)
{
    return t->name == NULL;
}
static bool qf_name_not_flag(const q_trial *t)
{
    return t->name && !t->flag;
}
static bool qf_x_not_in(const q_trial *t)
{
    return !(q_x_is(t, 0, 1, NULL, false) || q_x_is(t, 0, 2.5, NULL, false) ||
             q_x_is(t, 0, 5, NULL, false) || q_x_is(t, 2, 0, "s6", false) ||
             q_x_is(t, 3, 0, NULL, false));
}
static bool qf_result(const q_trial *t)
{
    return t->failed || q_result(t) > 2;
}
static bool qf_dates(const q_trial *t)
{
    return t->n < 4;
}
static bool qf_names(const q_trial *t)
{
    return t->name && strcmp(t->name, "beta") > 0 &&
           strcmp(t->name, "delta") != 0;
}

static const struct {
    const char *text;
    bool (*match)(const q_trial *t);
} s_q_filters[] = {
    {NULL, qf_all},
    {"n > 5", qf_n},
    {"n >= 3 and parameters.lr < 0.5", qf_n_lr},
    {"name == '" Q_HOSTILE "'", qf_hostile},
    {"status == \"failed\"", qf_failed},
    {"x > 10", qf_x_above},
    {"x == true or x in ['s7', \"s14\"]", qf_x_in},
    {"name == null", qf_no_name},
    {"name != null and not flag == true", qf_name_not_flag},
    {"x not in [1, 2.5, 5.0, 's6', false]", qf_x_not_in},
    {"result > 2 or (result == null)", qf_result},
    {"finished > '2000-01-01' and started > '2000-01-01T00:00:00Z' and n < 4",
     qf_dates},
    {"name > 'beta' and name != 'delta'", qf_names},
};

/* Sorts: each a comparison of two inputs (the trial id breaks ties). */
static int q_sign(double a, double b)
{
    return (a > b) - (a < b);
}

static int qs_result_desc(const q_trial *a, const q_trial *b)
{
    if (a->failed != b->failed)
        return a->failed ? 1 : -1; /* null first ascending: last here */
    return a->failed ? 0 : -q_sign(q_result(a), q_result(b));
}

static int qs_name(const q_trial *a, const q_trial *b)
{
    if (!a->name || !b->name)
        return (a->name != NULL) - (b->name != NULL);
    int c = strcmp(a->name, b->name);
    return (c > 0) - (c < 0);
}

/* x in BSON order: numbers, strings, bools; then n descending. */
static int qs_x_n(const q_trial *a, const q_trial *b)
{
    static const int cls[] = {0, 0, 1, 2};
    int c = cls[a->x_kind] - cls[b->x_kind];
    if (c == 0 && cls[a->x_kind] == 0)
        c = q_sign(a->x_kind ? a->x_double : (double)a->x_int,
                   b->x_kind ? b->x_double : (double)b->x_int);
    else if (c == 0 && a->x_kind == 2)
        c = strcmp(a->x_string, b->x_string);
    else if (c == 0)
        c = (int)a->x_bool - (int)b->x_bool;
    c = (c > 0) - (c < 0);
    return c ? c : -q_sign((double)a->n, (double)b->n);
}

static int qs_flag_lr(const q_trial *a, const q_trial *b)
{
    int c = (int)b->flag - (int)a->flag;
    return c ? c : q_sign(a->lr, b->lr);
}

/* Newest first (the dashboard's live view; the local store reads it
 * along its primary key). */
static int qs_id_desc(const q_trial *a, const q_trial *b)
{
    return (a->id < b->id) - (a->id > b->id);
}

static const struct {
    const char *text;
    int (*cmp)(const q_trial *a, const q_trial *b);
} s_q_sorts[] = {
    {NULL, NULL},
    {"-result", qs_result_desc},
    {"name", qs_name},
    {"x, -n", qs_x_n},
    {"-flag,+parameters.lr", qs_flag_lr},
    {"-trial_id", qs_id_desc},
};

static int (*s_q_cmp)(const q_trial *a, const q_trial *b);

static int q_order(const void *pa, const void *pb)
{
    const q_trial *a = *(const q_trial *const *)pa;
    const q_trial *b = *(const q_trial *const *)pb;
    int c = s_q_cmp ? s_q_cmp(a, b) : 0;
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* Checks one page against the expected window of the ordered matches. */
static void q_check(xp_experiment *ex, const xp_value *history, size_t f,
                    size_t s, int64_t offset, int64_t limit)
{
    const q_trial *want[Q_TRIALS];
    size_t n = 0;
    for (int i = 0; i < Q_TRIALS; i++)
        if (s_q_filters[f].match(&s_q[i]))
            want[n++] = &s_q[i];
    s_q_cmp = s_q_sorts[s].cmp;
    qsort(want, n, sizeof *want, q_order);
    size_t from = (size_t)offset < n ? (size_t)offset : n;
    size_t to = limit && from + (size_t)limit < n ? from + (size_t)limit : n;

    xp_query q = XP_QUERY_INIT;
    q.filter = s_q_filters[f].text;
    q.sort = s_q_sorts[s].text;
    q.offset = offset;
    q.limit = limit;
    xp_value *page = NULL;
    int64_t matched = -1;
    xp_error_t err = {0};
    const char *what = s_kind_name[s_kind];
    int rc = xp_history_query(ex, &q, &page, &matched, &err);
    cr_assert_eq(rc, 0, "%s: filter '%s' sort '%s': %s", what, q.filter, q.sort,
                 err.message);
    cr_assert_eq(matched, (int64_t)n, "%s: filter '%s': %lld matched, want %zu",
                 what, q.filter, (long long)matched, n);
    cr_assert_eq(xp_value_count(page), to - from,
                 "%s: filter '%s' sort '%s' %lld+%lld: %zu rows, want %zu",
                 what, q.filter, q.sort, (long long)offset, (long long)limit,
                 xp_value_count(page), to - from);
    for (size_t i = from; i < to; i++) {
        const xp_value *row = xp_value_at(page, i - from);
        int64_t id = xp_as_int64(xp_value_get(row, "trial_id"));
        cr_assert_eq(id, want[i]->id,
                     "%s: filter '%s' sort '%s' %lld+%lld: row %zu is trial "
                     "%lld, want %lld",
                     what, q.filter, q.sort, (long long)offset,
                     (long long)limit, i - from, (long long)id,
                     (long long)want[i]->id);
        cr_assert(xp_value_equal(row, xp_value_at(history, (size_t)id - 1)),
                  "%s: trial %lld differs from its xp_history document", what,
                  (long long)id);
    }
    xp_value_destroy(&page);
}

/* Filters x sorts x windows on the same 50 trials give the same pages on
 * every backend: the ones computed here from the inputs. */
CONTRACT(history_query_pages, 240)
{
    xp_experiment *ex = q_seed(uid("query"));
    xp_value *history = xpt_history(ex);
    cr_assert_eq(xp_value_count(history), Q_TRIALS);
    static const int64_t windows[][2] = {
        {0, 0}, {0, 10}, {7, 5}, {45, 10}, {100, 5}};
    for (size_t f = 0; f < sizeof s_q_filters / sizeof *s_q_filters; f++)
        for (size_t s = 0; s < sizeof s_q_sorts / sizeof *s_q_sorts; s++)
            for (size_t w = 0; w < sizeof windows / sizeof *windows; w++)
                q_check(ex, history, f, s, windows[w][0], windows[w][1]);
    xp_value_destroy(&history);
    xp_experiment_destroy(&ex);
}

/* The count of an unfiltered page follows the trials recorded since the
 * last page, by this handle or another one (the local store counts only
 * the rows above its last count), and a reader's page holds them. */
static int64_t q_count(xp_experiment *ex, int64_t offset, int64_t *last)
{
    xp_query q = XP_QUERY_INIT;
    q.offset = offset;
    q.limit = 10;
    xp_value *page = NULL;
    int64_t matched = -1;
    xp_error_t err = {0};
    cr_assert_eq(xp_history_query(ex, &q, &page, &matched, &err), 0, "%s",
                 err.message);
    size_t n = xp_value_count(page);
    *last =
        n ? xp_as_int64(xp_value_get(xp_value_at(page, n - 1), "trial_id")) : 0;
    xp_value_destroy(&page);
    return matched;
}

CONTRACT(history_query_counts_new_trials, 60)
{
    const char *id = uid("query_count");
    xp_experiment *ex = open_ex(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_result(XP_STEP(ex, typed, a));
    int64_t last = 0;
    cr_assert_eq(q_count(ex, 0, &last), 0);
    for (int i = 1; i <= 3; i++) {
        set_int(ex, "a", i);
        run_ok(ex, NULL, NULL);
    }
    cr_assert_eq(q_count(ex, 0, &last), 3);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.read_only = true;
    xp_experiment *reader = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&reader, id, &o, &err), 0, "%s",
                 err.message);
    cr_assert_eq(q_count(reader, 0, &last), 3);
    cr_assert_eq(last, 3);
    xp_experiment *other = open_ex(id);
    xp_node *b = xp_parameter(other, "a");
    xp_result(XP_STEP(other, typed, b));
    for (int i = 4; i <= 5; i++) {
        set_int(other, "a", i);
        run_ok(other, NULL, NULL);
    }
    cr_assert_eq(q_count(ex, 0, &last), 5, "the writer sees another's");
    cr_assert_eq(q_count(reader, 0, &last), 5, "the reader sees them");
    cr_assert_eq(last, 5);
    set_int(ex, "a", 6);
    run_ok(ex, NULL, NULL);
    cr_assert_eq(q_count(ex, 0, &last), 6, "the writer sees its own");
    cr_assert_eq(q_count(reader, 4, &last), 6);
    cr_assert_eq(last, 6, "the reader's page holds the newest trial");
    xp_experiment_destroy(&other);
    xp_experiment_destroy(&reader);
    xp_experiment_destroy(&ex);
}

/* A malformed filter or sort is XP_EINVAL naming the column, before the
 * store is read; matched is 0 and no page is given. */
CONTRACT(history_query_refuses_malformed, 60)
{
    xp_experiment *ex = open_ex(uid("query_bad"));
    xp_node *a = xp_parameter(ex, "a");
    xp_result(XP_STEP(ex, typed, a));
    set_int(ex, "a", 1);
    run_ok(ex, NULL, NULL);
    xp_query q = XP_QUERY_INIT;
    q.filter = "a >";
    xp_value *page = (xp_value *)1;
    int64_t matched = -1;
    xp_error_t err = {0};
    cr_assert_eq(xp_history_query(ex, &q, &page, &matched, &err), -1);
    cr_assert_eq(err.code, XP_EINVAL);
    cr_assert_str_eq(err.message,
                     "filter: column 4: expected a value after '>'");
    cr_assert_null(page);
    cr_assert_eq(matched, 0);
    q.filter = "a == 2";
    q.sort = "a,";
    cr_assert_eq(xp_history_query(ex, &q, &page, &matched, &err), -1);
    cr_assert_str_eq(err.message, "sort: column 3: expected a field name");
    q.sort = NULL;
    cr_assert_eq(xp_history_query(ex, &q, &page, &matched, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_value_count(page), 0);
    cr_assert_eq(matched, 0);
    xp_value_destroy(&page);
    xp_experiment_destroy(&ex);
}

/* ---- experiment listing */

/* xp_experiments lists the experiments this test created among the
 * backend's (shared servers hold others), sorted and without repeats; an
 * id never opened is not listed; a reader listing opens nothing. */
CONTRACT(experiment_listing, 60)
{
    const char *ids[3] = {uid("list_b"), uid("list_a"), uid("list_c")};
    for (int i = 0; i < 3; i++) {
        xp_experiment *ex = open_ex(ids[i]);
        xp_experiment_destroy(&ex);
    }
    const char *never = uid("list_never");
    xp_value *list = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiments(s_backend, &list, &err), 0, "%s: %s",
                 s_kind_name[s_kind], err.message);
    cr_assert_eq(xp_value_type(list), XP_TYPE_ARRAY);
    int found[3] = {0};
    for (size_t i = 0; i < xp_value_count(list); i++) {
        const char *id = xp_as_string(xp_value_at(list, i), NULL);
        cr_assert_not_null(id, "element %zu is not a string", i);
        if (i > 0)
            cr_assert_lt(
                strcmp(xp_as_string(xp_value_at(list, i - 1), NULL), id), 0,
                "not sorted or repeated at %zu ('%s')", i, id);
        for (int k = 0; k < 3; k++)
            found[k] += strcmp(id, ids[k]) == 0;
        cr_assert_str_neq(id, never, "an id never opened is listed");
    }
    for (int k = 0; k < 3; k++)
        cr_assert_eq(found[k], 1, "%s listed %d times", ids[k], found[k]);
    xp_value_destroy(&list);
    cr_assert_neq(xp_experiments(s_backend, NULL, &err), 0, "NULL output");
    if (s_kind == B_LOCAL) {
        char missing[PATH_MAX];
        snprintf(missing, sizeof missing, "%s/no_such_root", xpt_dir);
        cr_assert_eq(xp_experiments(missing, &list, &err), 0, "%s",
                     err.message);
        cr_assert_eq(xp_value_count(list), 0, "a missing root lists some");
        cr_assert_neq(access(missing, F_OK), 0, "listing created the root");
        xp_value_destroy(&list);
    }
}
