/* test_experiment.c — daskperiment's experiment behaviour in C: reopening
 * an id, id validation, declared/undefined parameters and defaults, chains,
 * persisted results, failures and their description, trial ids (invalid,
 * current vs last), autoload, metrics, run options, the trial document and
 * the Started/Finished log lines. */
#include "../common.h"

#include <math.h>
#include <stdatomic.h>

TestSuite(experiment, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

/* ---------------------------------------------------------------- steps */

/* a + b + 1, int64 when both are int64 (simple_experiment). */
static int plus_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    if (xp_value_type(in[0]) == XP_TYPE_INT64 &&
        xp_value_type(in[1]) == XP_TYPE_INT64)
        return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]) + 1);
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]) + 1);
}

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

/* plus_one over the first two of four inputs. */
static int plus_one_of_four(xp_step *st, const xp_value *const *in,
                            xp_value *out)
{
    return plus_one(st, in, out);
}

/* Defines a, b -> plus_one (result). */
static void define_simple(xp_experiment *ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    cr_assert_not_null(XP_RESULT(ex, plus_one, a, b), "defining plus_one");
}

/* Defines the quickstart graph: a, b -> prepare_data -> calculate_score. */
static void define_quickstart(xp_experiment *ex, bool persist)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *d = XP_STEP(ex, prepare_data, a, b);
    if (persist)
        xp_persist(d);
    xp_node *r = XP_RESULT(ex, calculate_score, d);
    if (persist)
        xp_persist(r);
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "quickstart graph: '%s'",
                 err.message);
}

static int64_t run_ab(xp_experiment *ex, int64_t a, int64_t b)
{
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", a, &err), 0, "set a: '%s'",
                 err.message);
    cr_assert_eq(xp_set_param_int64(ex, "b", b, &err), 0, "set b: '%s'",
                 err.message);
    int64_t id = 0;
    xp_value *res = NULL;
    int rc = xp_compute(ex, NULL, &res, &id, &err);
    cr_assert_eq(rc, 0, "compute a=%lld b=%lld: code=%u '%s'", (long long)a,
                 (long long)b, err.code, err.message);
    cr_assert_gt(id, 0, "trial id %lld", (long long)id);
    xp_value_destroy(&res);
    return id;
}

/* ---------------------------------------------------------------- reopen */

Test(experiment, same_id_reopen_reloads_counter_and_history)
{
    xp_experiment *ex = xpt_open("reopen_pj");
    cr_assert_str_eq(xp_experiment_id(ex), "reopen_pj", "id '%s'",
                     xp_experiment_id(ex));
    cr_assert_not_null(xp_experiment_backend(ex), "no backend description");
    define_simple(ex);
    cr_assert_eq(xpt_last_id(ex), 0, "fresh experiment last id %lld",
                 (long long)xpt_last_id(ex));
    cr_assert_eq(run_ab(ex, 1, 2), 1, "first trial id");
    cr_assert_eq(run_ab(ex, 3, 4), 2, "second trial id");
    xp_experiment_destroy(&ex);
    cr_assert_null(ex, "destroy did not reset the handle");

    ex = xpt_open("reopen_pj");
    cr_assert_eq(xpt_last_id(ex), 2, "last id after reopen %lld",
                 (long long)xpt_last_id(ex));
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 2, "history after reopen has %zu",
                 xp_value_count(h));
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(xpt_get_int(xp_value_at(h, i), "trial_id"), (int64_t)i + 1,
                     "history[%zu].trial_id", i);
    cr_assert_eq(xpt_get_int(xp_value_at(h, 1), "result"), 8, "trial 2 result");
    xp_value_destroy(&h);
    define_simple(ex);
    cr_assert_eq(run_ab(ex, 0, 0), 3, "trial after reopen continues at 3");
    xp_experiment_destroy(&ex);

    /* must_exist opens it; an unknown id with must_exist is ENOTFOUND. */
    xp_error_t err = {0};
    ex = xpt_open_existing("reopen_pj", &err);
    cr_assert_not_null(ex, "must_exist open failed: '%s'", err.message);
    xp_experiment_destroy(&ex);
    memset(&err, 0, sizeof err);
    ex = xpt_open_existing("never_created", &err);
    cr_assert_null(ex, "must_exist opened an unknown experiment");
    cr_assert_eq(err.code, XP_ENOTFOUND, "unknown must_exist code %u '%s'",
                 err.code, err.message);
    xp_experiment_destroy(NULL);
}

Test(experiment, experiments_are_independent)
{
    xp_experiment *a = xpt_open("exp_one");
    xp_experiment *b = xpt_open("exp_two");
    define_simple(a);
    define_simple(b);
    run_ab(a, 1, 1);
    run_ab(a, 1, 1);
    cr_assert_eq(run_ab(b, 1, 1), 1, "second experiment starts at 1");
    cr_assert_eq(xpt_last_id(a), 2, "first experiment last id");
    xp_experiment_destroy(&a);
    xp_experiment_destroy(&b);
}

/* Opens id on backend spec from directory xpt_dir, runs one trial and
 * returns the backend description. */
static void run_in_dir(const char *id, const char *spec, char *description)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = spec;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, id, &o, &err), 0, "open on '%s': %s",
                 spec ? spec : "(null)", err.message);
    define_simple(ex);
    run_ab(ex, 1, 2);
    snprintf(description, 256, "%s", xp_experiment_backend(ex));
    xp_experiment_destroy(&ex);
}

Test(experiment, backend_local_is_the_default_store)
{
    cr_assert_eq(chdir(xpt_dir), 0, "chdir %s", xpt_dir);
    char description[256];
    /* daskperiment's name for its default backend, given and from the
     * environment, also over another XP_BACKEND. */
    run_in_dir("by_name", "local", description);
    cr_assert_str_eq(description, "local:xp_cache/by_name");
    setenv("XP_BACKEND", "local", 1);
    run_in_dir("by_env", NULL, description);
    cr_assert_str_eq(description, "local:xp_cache/by_env");
    setenv("XP_BACKEND", "elsewhere", 1);
    run_in_dir("over_env", "local", description);
    cr_assert_str_eq(description, "local:xp_cache/over_env");
    unsetenv("XP_BACKEND");
    struct stat sb;
    cr_assert_eq(stat("xp_cache/by_name/xp.sqlite3", &sb), 0,
                 "no store in ./xp_cache/by_name");
    cr_assert_eq(stat("xp_cache/by_env/xp.sqlite3", &sb), 0,
                 "no store in ./xp_cache/by_env");
    cr_assert_neq(stat("local", &sb), 0, "a directory named 'local' made");
    /* A directory of that name is still reachable by its path. */
    run_in_dir("in_dir", "./local", description);
    cr_assert_eq(stat("local/in_dir/xp.sqlite3", &sb), 0,
                 "no store in ./local/in_dir");
}

/* ---------------------------------------------------------------- ids */

Test(experiment, invalid_ids)
{
    char long_id[66], max_id[65];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    memset(max_id, 'b', 64);
    max_id[64] = '\0';
    const char *bad[] = {"",       "-a",    "a/b",         "..",  "a.b",
                         "$where", long_id, "caf\xc3\xa9", "a b", ".",
                         "a\\b",   "a\nb",  "../x",        "a:b", "a*"};
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xp_experiment *ex = NULL;
        xp_error_t err = {0};
        int rc = xp_experiment_open(&ex, bad[i], &o, &err);
        cr_assert_eq(rc, -1, "id '%s' accepted", bad[i]);
        cr_assert_null(ex, "id '%s': handle returned on failure", bad[i]);
        cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT,
                     "id '%s': domain %u (want ARGUMENT) '%s'", bad[i],
                     err.domain, err.message);
        cr_assert_eq(err.code, XP_EINVAL, "id '%s': code %u (want EINVAL)",
                     bad[i], err.code);
        cr_assert_str_not_empty(err.message, "id '%s': no message", bad[i]);
        cr_assert_null(strchr(err.message, '\n'), "multi-line '%s'",
                       err.message);
        memset(&err, 0, sizeof err);
        cr_assert_eq(xp_check_id(bad[i], &err), -1, "check_id('%s') passed",
                     bad[i]);
        cr_assert_eq(err.code, XP_EINVAL, "check_id('%s') code %u", bad[i],
                     err.code);
    }
    /* Nothing was created for the refused ids. */
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/a", xpt_dir);
    cr_assert_neq(access(path, F_OK), 0, "a directory was created for 'a/b'");

    const char *good[] = {max_id, "a", "A_b-9", "_x", "0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        xp_error_t err = {0};
        cr_assert_eq(xp_check_id(good[i], &err), 0,
                     "check_id('%s') refused: '%s'", good[i], err.message);
        xp_experiment *ex = xpt_open(good[i]);
        cr_assert_str_eq(xp_experiment_id(ex), good[i], "id kept");
        xp_experiment_destroy(&ex);
    }
}

Test(experiment, invalid_names)
{
    char name128[129], name129[130];
    memset(name128, 'n', 128);
    name128[128] = '\0';
    memset(name129, 'n', 129);
    name129[129] = '\0';
    xp_error_t err = {0};
    cr_assert_eq(xp_check_name("parameter", name128, &err), 0,
                 "128-char name refused: '%s'", err.message);
    const char *bad[] = {"", "-a", "a/b", "a.b", "$where", name129, "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        cr_assert_eq(xp_check_name("step", bad[i], &err), -1,
                     "name '%.20s' accepted", bad[i]);
        cr_assert_eq(err.code, XP_EINVAL, "name '%.20s' code %u", bad[i],
                     err.code);
        cr_assert_str_not_empty(err.message, "no message");
    }
}

/* ---------------------------------------------------------------- params */

Test(experiment, undeclared_parameter_is_an_error)
{
    xp_experiment *ex = xpt_open("undeclared");
    define_simple(ex);
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "c", 1, &err), -1,
                 "undeclared int64 parameter accepted");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_str_not_empty(err.message, "no message");
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_set_param_literal(ex, "zz", "1.5", &err), -1,
                 "undeclared literal parameter accepted");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u", err.code);
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_set_param_string(ex, "prepare", "x", &err), -1,
                 "undeclared string parameter accepted");
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_set_param_double(ex, "plus_one", 1, &err), -1,
                 "a step name accepted as a parameter");
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_set_param_bool(ex, "B", true, &err), -1,
                 "names are case-sensitive, 'B' accepted");

    /* An undeclared name in run options is refused too and records
     * nothing. */
    xp_value *over = xp_value_new();
    xp_set_document(over);
    xp_set_int64(xp_document_set(over, "a"), 1);
    xp_set_int64(xp_document_set(over, "b"), 1);
    xp_set_int64(xp_document_set(over, "c"), 1);
    xp_run_options ro = XP_RUN_OPTIONS_INIT;
    ro.params = over;
    int64_t id = -1;
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_compute(ex, &ro, NULL, &id, &err), -1,
                 "run options with undeclared 'c' accepted");
    cr_assert_eq(id, 0, "trial id %lld for a refused trial", (long long)id);
    cr_assert_eq(xpt_last_id(ex), 0, "refused trial consumed an id");
    xp_value_destroy(&over);
    xp_experiment_destroy(&ex);
}

Test(experiment, undefined_parameter_consumes_no_id)
{
    xp_experiment *ex = xpt_open("undefined");
    define_simple(ex);
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", 1, &err), 0, "set a");
    int64_t id = -1;
    xp_value *res = NULL;
    int rc = xp_compute(ex, NULL, &res, &id, &err);
    cr_assert_eq(rc, -1, "compute with b undefined succeeded");
    cr_assert_eq(err.code, XP_EUNDEFINED, "code %u (want EUNDEFINED) '%s'",
                 err.code, err.message);
    cr_assert_not_null(strstr(err.message, "b"),
                       "message does not name b: "
                       "'%s'",
                       err.message);
    cr_assert_eq(id, 0, "trial id %lld reported", (long long)id);
    xp_value_destroy(&res);
    cr_assert_eq(xpt_last_id(ex), 0, "id consumed: last id %lld",
                 (long long)xpt_last_id(ex));
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 0, "history has %zu entries",
                 xp_value_count(h));
    xp_value_destroy(&h);

    /* Twice, to be sure. */
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1, "second try");
    cr_assert_eq(xp_set_param_int64(ex, "b", 2, &err), 0, "set b");
    id = 0;
    rc = xp_compute(ex, NULL, &res, &id, &err);
    cr_assert_eq(rc, 0, "compute: '%s'", err.message);
    cr_assert_eq(id, 1, "first successful trial got id %lld", (long long)id);
    cr_assert_eq(xp_as_int64(res), 4, "result %lld",
                 (long long)xp_as_int64(res));
    xp_value_destroy(&res);
    xp_experiment_destroy(&ex);
}

static int first_of_three(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

/* Refused with XP_EUNDEFINED, a message containing `names`, no trial. */
static void expect_undefined(xp_experiment *ex, const xp_run_options *ro,
                             const char *names)
{
    xp_error_t err = {0};
    int64_t id = -1;
    int64_t last = xpt_last_id(ex);
    cr_assert_eq(xp_compute(ex, ro, NULL, &id, &err), -1,
                 "trial with undefined parameters accepted");
    cr_assert_eq(err.code, XP_EUNDEFINED, "code %u (want EUNDEFINED) '%s'",
                 err.code, err.message);
    cr_assert_not_null(strstr(err.message, names), "'%s' does not name %s",
                       err.message, names);
    cr_assert_eq(id, 0, "trial id %lld reported", (long long)id);
    cr_assert_eq(xpt_last_id(ex), last, "a trial id was consumed");
}

Test(experiment, undefined_parameter_refused_even_when_no_step_reads_it)
{
    /* daskperiment refuses a trial with any undefined parameter: a trial
     * records every declared parameter, so it must have them all. */
    xp_experiment *ex = xpt_open("unread");
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_parameter(ex, "unused");
    cr_assert_not_null(XP_RESULT(ex, plus_one, a, b), "defining plus_one");
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", 1, &err), 0, "set a");
    cr_assert_eq(xp_set_param_int64(ex, "b", 2, &err), 0, "set b");
    expect_undefined(ex, NULL, "parameter 'unused' is not defined");

    /* Given for one trial only, then set: recorded either way. */
    xp_value *over = xp_value_new();
    xp_set_document(over);
    xp_set_int64(xp_document_set(over, "unused"), 7);
    xp_run_options ro = XP_RUN_OPTIONS_INIT;
    ro.params = over;
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, &ro, NULL, &id, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert_eq(id, 1, "trial id %lld", (long long)id);
    xp_value_destroy(&over);
    xp_value *params = NULL;
    cr_assert_eq(xp_trial_parameters(ex, id, &params, &err), 0, "params");
    cr_assert_eq(xp_value_count(params), 3, "%zu parameters recorded",
                 xp_value_count(params));
    cr_assert_eq(xpt_get_int(params, "unused"), 7, "unused recorded");
    xp_value_destroy(&params);
    expect_undefined(ex, NULL, "'unused'");
    cr_assert_eq(xp_set_param_int64(ex, "unused", 8, &err), 0, "set unused");
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert_eq(id, 2, "trial id %lld", (long long)id);
    xp_experiment_destroy(&ex);
}

Test(experiment, every_undefined_parameter_is_named)
{
    xp_experiment *ex = xpt_open("undefined_all");
    xp_node *in[3] = {xp_parameter(ex, "a"), xp_parameter(ex, "b"),
                      xp_parameter(ex, "c")};
    xp_result(xp_step_add(ex, "first_of_three", first_of_three, 3, in, __FILE__,
                          __LINE__));
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "b", 1, &err), 0, "set b");
    expect_undefined(ex, NULL, "parameters 'a', 'c' are not defined");
    xp_experiment_destroy(&ex);

    /* Many long names: as many as fit, and how many more. */
    ex = xpt_open("undefined_many");
    xp_node *p[12];
    for (int i = 0; i < 12; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s_%02d",
                 "a_rather_long_parameter_name_to_fill_the_message", i);
        p[i] = xp_parameter(ex, name);
    }
    xp_result(xp_step_add(ex, "first", first_of_three, 12, p, NULL, 0));
    expect_undefined(ex, NULL, "more are not defined");
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1, "compute");
    cr_assert_not_null(
        strstr(err.message,
               "'a_rather_long_parameter_name_to_fill_the_message_00'"),
        "first name missing: '%s'", err.message);
    xp_experiment_destroy(&ex);
}

Test(experiment, defaults)
{
    xp_experiment *ex = xpt_open("defaults");
    xp_value *ten = xpt_int(10);
    xp_node *a = xp_parameter_default(ex, "a", ten);
    xp_value_destroy(&ten); /* the default is a copy */
    xp_node *b = xp_parameter_literal(ex, "b", "2.5");
    cr_assert_not_null(a, "parameter_default");
    cr_assert_not_null(b, "parameter_literal");
    cr_assert_str_eq(xp_node_name(a), "a", "node name '%s'", xp_node_name(a));
    XP_RESULT(ex, plus_one, a, b);
    xp_error_t err = {0};
    xp_value *res = NULL;
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, &res, &id, &err), 0,
                 "compute with defaults only: '%s'", err.message);
    cr_assert_eq(xp_value_type(res), XP_TYPE_DOUBLE, "result type %s",
                 xp_type_name(xp_value_type(res)));
    cr_assert_float_eq(xp_as_double(res), 13.5, 1e-12, "result %g",
                       xp_as_double(res));
    xp_value_destroy(&res);
    xp_value *params = NULL;
    cr_assert_eq(xp_trial_parameters(ex, id, &params, &err), 0, "params");
    cr_assert_eq(xpt_get_int(params, "a"), 10, "default a recorded");
    cr_assert(xp_as_double(xpt_typed(params, "b", XP_TYPE_DOUBLE)) == 2.5,
              "default b recorded as %g",
              xp_as_double(xp_value_get(params, "b")));
    xp_value_destroy(&params);

    cr_assert_eq(xp_set_param_int64(ex, "a", 1, &err), 0, "override a");
    cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0, "compute");
    cr_assert_float_eq(xp_as_double(res), 4.5, 1e-12, "result %g",
                       xp_as_double(res));
    xp_value_destroy(&res);
    cr_assert_eq(xp_set_param_int64(ex, "b", 3, &err), 0, "override b");
    cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0, "compute");
    cr_assert_eq(xp_value_type(res), XP_TYPE_INT64, "int + int gave %s",
                 xp_type_name(xp_value_type(res)));
    cr_assert_eq(xp_as_int64(res), 5, "result %lld",
                 (long long)xp_as_int64(res));
    xp_value_destroy(&res);
    xp_experiment_destroy(&ex);

    /* A bad literal default is a definition error. */
    ex = xpt_open("bad_default");
    cr_assert_null(xp_parameter_literal(ex, "x", ""), "empty literal default");
    cr_assert_eq(xp_experiment_check(ex, &err), -1, "check passed");
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- chains */

static int times_two(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) * 2);
}

static int plus_three(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 3);
}

static int square(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) * xp_as_int64(in[0]));
}

static int describe(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    if (xp_set_document(out) != 0)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        static const char *const keys[] = {"left", "right", "chain"};
        if (xp_set_value(xp_document_set(out, keys[i]), in[i]) != 0)
            return -1;
    }
    return 0;
}

Test(experiment, chains)
{
    xp_experiment *ex;
    xp_node *x, *t, *p, *s, *l2, *r2;
    xp_error_t err = {0};
    ex = xpt_open("chains");
    x = xp_parameter(ex, "x");
    t = XP_STEP(ex, times_two, x);
    p = XP_STEP(ex, plus_three, t);
    s = XP_STEP(ex, square, p);
    l2 = xp_step_add(ex, "left", plus_three, 1, (xp_node *[]){x}, NULL, 0);
    r2 = xp_step_add(ex, "right", times_two, 1, (xp_node *[]){x}, NULL, 0);
    xp_node *res_node = XP_RESULT(ex, describe, l2, r2, s);
    cr_assert_str_eq(xp_node_name(res_node), "describe", "name '%s'",
                     xp_node_name(res_node));
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "check: '%s'", err.message);
    for (int64_t v = -2; v <= 3; v++) {
        cr_assert_eq(xp_set_param_int64(ex, "x", v, &err), 0, "set x");
        xp_value *res = NULL;
        cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0,
                     "compute x=%lld: '%s'", (long long)v, err.message);
        int64_t c = (2 * v + 3) * (2 * v + 3);
        cr_assert_eq(xpt_get_int(res, "chain"), c,
                     "chain(%lld) = %lld, "
                     "want %lld",
                     (long long)v, (long long)xpt_get_int(res, "chain"),
                     (long long)c);
        cr_assert_eq(xpt_get_int(res, "left"), v + 3, "left");
        cr_assert_eq(xpt_get_int(res, "right"), 2 * v, "right");
        xp_value_destroy(&res);
    }
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- persisted */

Test(experiment, persisted_results)
{
    xp_experiment *ex = xpt_open("persist");
    define_quickstart(ex, true);
    for (int64_t i = 1; i <= 4; i++)
        cr_assert_eq(run_ab(ex, i, 2 * i), i, "trial id");
    xp_error_t err = {0};
    for (int64_t i = 1; i <= 4; i++) {
        xp_value *v = NULL;
        int rc = xp_load_persisted(ex, "prepare_data", i, &v, &err);
        cr_assert_eq(rc, 0, "load_persisted(prepare_data, %lld): '%s'",
                     (long long)i, err.message);
        cr_assert_eq(xp_value_type(v), XP_TYPE_DOUBLE, "type %s",
                     xp_type_name(xp_value_type(v)));
        cr_assert_float_eq(xp_as_double(v), (double)(3 * i), 1e-12,
                           "prepare_data of trial %lld = %g", (long long)i,
                           xp_as_double(v));
        xp_value_destroy(&v);
        rc = xp_load_persisted(ex, "calculate_score", i, &v, &err);
        cr_assert_eq(rc, 0, "load_persisted(calculate_score): '%s'",
                     err.message);
        cr_assert_float_eq(xp_as_double(v), 10.0 / (double)(3 * i), 1e-12,
                           "calculate_score of trial %lld = %g", (long long)i,
                           xp_as_double(v));
        xp_value_destroy(&v);
    }
    xp_value *v = NULL;
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_load_persisted(ex, "no_such_step", 1, &v, &err), -1,
                 "unknown step loaded");
    cr_assert_eq(err.code, XP_ENOTFOUND, "unknown step code %u '%s'", err.code,
                 err.message);
    cr_assert_null(v, "value returned for an unknown step");
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_load_persisted(ex, "prepare_data", 5, &v, &err), -1,
                 "unknown trial loaded");
    cr_assert_eq(err.code, XP_ENOTFOUND, "unknown trial code %u '%s'", err.code,
                 err.message);
    xp_experiment_destroy(&ex);

    /* A step that is not persisted has no stored value. */
    ex = xpt_open("not_persisted");
    define_quickstart(ex, false);
    run_ab(ex, 1, 1);
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_load_persisted(ex, "prepare_data", 1, &v, &err), -1,
                 "value of a non-persisted step loaded");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- failure */

Test(experiment, failure_with_description)
{
    xp_experiment *ex = xpt_open("failure");
    define_quickstart(ex, false);
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 0, &err);
    xp_set_param_int64(ex, "b", 0, &err);
    xp_value *res = NULL;
    int64_t id = 0;
    int rc = xp_compute(ex, NULL, &res, &id, &err);
    cr_assert_eq(rc, -1, "failing trial returned %d", rc);
    cr_assert_eq(err.code, XP_ESTEP, "code %u (want ESTEP) '%s'", err.code,
                 err.message);
    cr_assert_not_null(strstr(err.message, "calculate_score: division by "
                                           "zero"),
                       "message '%s'", err.message);
    cr_assert_eq(id, 1, "failed trial id %lld", (long long)id);
    xp_value_destroy(&res);

    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed", "status '%s'",
                     xpt_get_str(t, "status"));
    cr_assert(!xpt_get_bool(t, "success"), "success is true");
    cr_assert_str_eq(xpt_get_str(t, "description"),
                     "calculate_score: division by zero", "description '%s'",
                     xpt_get_str(t, "description"));
    cr_assert_eq(xp_value_type(xpt_field(t, "result")), XP_TYPE_NULL,
                 "failed result is %s",
                 xp_type_name(xp_value_type(xpt_field(t, "result"))));
    xpt_typed(t, "finished", XP_TYPE_DATETIME);
    xp_value_destroy(&t);

    /* The next trial succeeds and both are in the history. */
    cr_assert_eq(run_ab(ex, 1, 1), 2, "trial after a failure");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 2, "history %zu", xp_value_count(h));
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 0), "status"), "failed",
                     "history[0].status");
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 1), "status"), "succeeded",
                     "history[1].status");
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 1), "description"), "",
                     "success description '%s'",
                     xpt_get_str(xp_value_at(h, 1), "description"));
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

static int bare_failure(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    (void)out;
    return 7; /* non-zero without xp_step_fail */
}

Test(experiment, failure_without_message_names_the_step)
{
    xp_experiment *ex = xpt_open("bare_failure");
    xp_result(xp_step_add(ex, "bare_failure", bare_failure, 0, NULL, NULL, 0));
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), -1, "compute");
    cr_assert_eq(err.code, XP_ESTEP, "code %u '%s'", err.code, err.message);
    cr_assert_eq(strncmp(err.message, "bare_failure", 12), 0,
                 "message does not start with the step: '%s'", err.message);
    xp_value *t = xpt_trial(ex, id);
    const char *d = xpt_get_str(t, "description");
    cr_assert_eq(strncmp(d, "bare_failure: ", 14), 0, "description '%s'", d);
    cr_assert_gt(strlen(d), 14, "description has no reason: '%s'", d);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- trial ids */

Test(experiment, invalid_trial_ids)
{
    xp_experiment *ex = xpt_open("invalid_trials");
    define_quickstart(ex, true);
    const int64_t none[] = {0, -1, 999, 1};
    /* Empty experiment: even 1 is unknown. */
    for (int round = 0; round < 2; round++) {
        for (size_t i = round ? 0 : 3; i < (round ? 3u : 4u); i++) {
            xp_value *v = NULL;
            xp_error_t err = {0};
            cr_assert_eq(xp_trial_get(ex, none[i], &v, &err), -1,
                         "trial_get(%lld) succeeded", (long long)none[i]);
            cr_assert_eq(err.code, XP_ENOTFOUND, "trial_get(%lld) code %u",
                         (long long)none[i], err.code);
            cr_assert_null(v, "trial_get(%lld) returned a value",
                           (long long)none[i]);
            memset(&err, 0, sizeof err);
            cr_assert_eq(xp_trial_parameters(ex, none[i], &v, &err), -1,
                         "trial_parameters(%lld) succeeded",
                         (long long)none[i]);
            cr_assert_eq(err.code, XP_ENOTFOUND,
                         "trial_parameters(%lld) code %u", (long long)none[i],
                         err.code);
            memset(&err, 0, sizeof err);
            cr_assert_eq(
                xp_load_persisted(ex, "prepare_data", none[i], &v, &err), -1,
                "load_persisted(%lld) succeeded", (long long)none[i]);
            cr_assert_eq(err.code, XP_ENOTFOUND, "load_persisted(%lld) code %u",
                         (long long)none[i], err.code);
            xp_value_destroy(&v);
        }
        if (round == 0)
            run_ab(ex, 1, 2);
    }
    xp_experiment_destroy(&ex);
}

static xp_experiment *g_ex;
static int64_t g_current, g_step_id;
static int g_current_rc, g_last_rc;
static uint32_t g_current_code, g_last_code;

static int probe_ids(xp_step *st, const xp_value *const *in, xp_value *out)
{
    xp_error_t err = {0};
    g_step_id = xp_step_trial_id(st);
    g_current = -1;
    g_current_rc = xp_current_trial_id(&g_current, &err);
    g_current_code = err.code;
    int64_t last = -1;
    memset(&err, 0, sizeof err);
    g_last_rc = xp_last_trial_id(g_ex, &last, &err);
    g_last_code = err.code;
    return xp_set_value(out, in[0]);
}

Test(experiment, current_vs_last_trial_id)
{
    g_ex = xpt_open("trial_ids");
    xp_node *a = xp_parameter(g_ex, "a");
    XP_RESULT(g_ex, probe_ids, a);
    xp_error_t err = {0};
    int64_t id = -5;
    cr_assert_eq(xp_current_trial_id(&id, &err), -1,
                 "current_trial_id outside a step succeeded (%lld)",
                 (long long)id);
    cr_assert_eq(err.code, XP_ESTATE, "outside code %u '%s'", err.code,
                 err.message);
    cr_assert_eq(xpt_last_id(g_ex), 0, "last id before any trial");
    for (int64_t i = 1; i <= 3; i++) {
        xp_set_param_int64(g_ex, "a", i, &err);
        int64_t tid = 0;
        cr_assert_eq(xp_compute(g_ex, NULL, NULL, &tid, &err), 0,
                     "compute: '%s'", err.message);
        cr_assert_eq(g_current_rc, 0,
                     "current_trial_id inside a step "
                     "failed: code %u",
                     g_current_code);
        cr_assert_eq(g_current, i, "current id inside %lld, want %lld",
                     (long long)g_current, (long long)i);
        cr_assert_eq(g_step_id, i, "xp_step_trial_id %lld",
                     (long long)g_step_id);
        cr_assert_eq(tid, i, "compute reported id %lld", (long long)tid);
        cr_assert_eq(g_last_rc, -1, "last_trial_id inside a step succeeded");
        cr_assert_eq(g_last_code, XP_ESTATE, "inside code %u", g_last_code);
        cr_assert_eq(xpt_last_id(g_ex), i, "last id after trial %lld",
                     (long long)i);
    }
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_current_trial_id(&id, &err), -1,
                 "current_trial_id outside after trials succeeded");
    cr_assert_eq(err.code, XP_ESTATE, "code %u", err.code);
    xp_experiment_destroy(&g_ex);
}

/* ---------------------------------------------------------------- metrics */

static int train(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t a = xp_as_int64(in[0]);
    int64_t epochs = xp_as_int64(in[1]);
    for (int64_t e = 0; e < epochs; e++)
        if (xp_save_metric(st, "loss", e, (double)a + (double)e * 0.5) != 0)
            return xp_step_fail(st, "save_metric failed at epoch %lld",
                                (long long)e);
    if (epochs > 0 && xp_save_metric(st, "acc", 0, 0.25 * (double)a) != 0)
        return xp_step_fail(st, "save_metric acc failed");
    return xp_set_int64(out, a);
}

static void define_train(xp_experiment *ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *n = xp_parameter(ex, "epochs");
    XP_RESULT(ex, train, a, n);
}

static int64_t run_train(xp_experiment *ex, int64_t a, int64_t epochs)
{
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", a, &err);
    xp_set_param_int64(ex, "epochs", epochs, &err);
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "train: '%s'",
                 err.message);
    return id;
}

Test(experiment, metrics_one_and_many_trials)
{
    xp_experiment *ex = xpt_open("metrics");
    define_train(ex);
    int64_t t1 = run_train(ex, 1, 100);
    int64_t t2 = run_train(ex, 2, 100);
    int64_t t3 = run_train(ex, 3, 50);
    xp_error_t err = {0};

    xp_metric_table *tab = NULL;
    int rc = xp_load_metric(ex, "loss", &t2, 1, &tab, &err);
    cr_assert_eq(rc, 0, "load_metric one trial: '%s'", err.message);
    cr_assert_eq(xp_metric_table_epochs(tab), 100, "epochs %zu",
                 xp_metric_table_epochs(tab));
    cr_assert_eq(xp_metric_table_trials(tab), 1, "trials %zu",
                 xp_metric_table_trials(tab));
    cr_assert_eq(xp_metric_table_trial(tab, 0), t2, "column trial %lld",
                 (long long)xp_metric_table_trial(tab, 0));
    for (size_t r = 0; r < 100; r++) {
        cr_assert_eq(xp_metric_table_epoch(tab, r), (int64_t)r,
                     "row %zu epoch %lld", r,
                     (long long)xp_metric_table_epoch(tab, r));
        double want = 2.0 + (double)r * 0.5;
        cr_assert_float_eq(xp_metric_table_value(tab, r, 0), want, 1e-12,
                           "value(%zu) = %g, want %g", r,
                           xp_metric_table_value(tab, r, 0), want);
    }
    xp_metric_table_destroy(&tab);
    cr_assert_null(tab, "destroy did not reset the table");

    /* Reopen: metrics are read from storage, in the order asked. */
    xp_experiment_destroy(&ex);
    ex = xpt_open("metrics");
    int64_t ids[3] = {t3, t1, t2};
    rc = xp_load_metric(ex, "loss", ids, 3, &tab, &err);
    cr_assert_eq(rc, 0, "load_metric many trials: '%s'", err.message);
    cr_assert_eq(xp_metric_table_epochs(tab), 100, "epochs %zu",
                 xp_metric_table_epochs(tab));
    cr_assert_eq(xp_metric_table_trials(tab), 3, "trials %zu",
                 xp_metric_table_trials(tab));
    for (size_t c = 0; c < 3; c++)
        cr_assert_eq(xp_metric_table_trial(tab, c), ids[c],
                     "column %zu is trial %lld, want %lld", c,
                     (long long)xp_metric_table_trial(tab, c),
                     (long long)ids[c]);
    const double base[3] = {3, 1, 2};
    for (size_t r = 0; r < 100; r++) {
        cr_assert_eq(xp_metric_table_epoch(tab, r), (int64_t)r, "epoch");
        for (size_t c = 0; c < 3; c++) {
            double v = xp_metric_table_value(tab, r, c);
            if (c == 0 && r >= 50) {
                cr_assert(isnan(v),
                          "trial %lld epoch %zu should be NaN, "
                          "got %g",
                          (long long)ids[c], r, v);
                continue;
            }
            double want = base[c] + (double)r * 0.5;
            cr_assert_float_eq(v, want, 1e-12,
                               "trial %lld epoch %zu = %g, "
                               "want %g",
                               (long long)ids[c], r, v, want);
        }
    }
    xp_metric_table_destroy(&tab);
    xp_metric_table_destroy(&tab);
    xp_metric_table_destroy(NULL);

    rc = xp_load_metric(ex, "acc", ids, 3, &tab, &err);
    cr_assert_eq(rc, 0, "load_metric acc: '%s'", err.message);
    cr_assert_eq(xp_metric_table_epochs(tab), 1, "acc epochs %zu",
                 xp_metric_table_epochs(tab));
    cr_assert_float_eq(xp_metric_table_value(tab, 0, 0), 0.75, 1e-12,
                       "acc of trial 3 = %g", xp_metric_table_value(tab, 0, 0));
    xp_metric_table_destroy(&tab);
    xp_experiment_destroy(&ex);
}

Test(experiment, metric_errors)
{
    xp_experiment *ex = xpt_open("metric_errors");
    define_train(ex);
    int64_t t1 = run_train(ex, 1, 10);
    int64_t t2 = run_train(ex, 2, 0); /* saves no loss */
    xp_error_t err = {0};
    xp_metric_table *tab = NULL;

    cr_assert_eq(xp_load_metric(ex, "unknown_metric", &t1, 1, &tab, &err), -1,
                 "unknown metric loaded");
    cr_assert_str_not_empty(err.message, "no message");
    cr_assert_null(tab, "table returned for an unknown metric");

    int64_t bad[2] = {t1, 999};
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_load_metric(ex, "loss", bad, 2, &tab, &err), -1,
                 "unknown trial 999 loaded");
    cr_assert_eq(err.code, XP_ENOTFOUND, "unknown trial code %u '%s'", err.code,
                 err.message);
    cr_assert_null(tab, "table returned for an unknown trial");

    int64_t zero = 0;
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_load_metric(ex, "loss", &zero, 1, &tab, &err), -1,
                 "trial 0 loaded");

    int64_t both[2] = {t1, t2};
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_load_metric(ex, "loss", both, 2, &tab, &err), -1,
                 "trial %lld without the metric loaded", (long long)t2);
    cr_assert_str_not_empty(err.message, "no message");
    xp_metric_table_destroy(&tab);
    xp_experiment_destroy(&ex);
}

static int bad_metric(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    xp_set_bool(out, xp_save_metric(st, "bad/name", 0, 1.0) == 0);
    return 0;
}

Test(experiment, invalid_metric_name_is_refused)
{
    xp_experiment *ex = xpt_open("bad_metric");
    xp_result(xp_step_add(ex, "bad_metric", bad_metric, 0, NULL, NULL, 0));
    xp_value *res = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert(!xp_as_bool(res), "xp_save_metric accepted 'bad/name'");
    xp_value_destroy(&res);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- autoload */

Test(experiment, autoload_after_reopen)
{
    xp_experiment *ex = xpt_open("autoload");
    define_quickstart(ex, true);
    run_ab(ex, 1, 2);
    run_ab(ex, 3, 4);
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 0, &err);
    xp_set_param_int64(ex, "b", 0, &err);
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1, "failure");
    xp_experiment_destroy(&ex);

    ex = xpt_open("autoload");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 3, "history %zu", xp_value_count(h));
    const int64_t as[3] = {1, 3, 0}, bs[3] = {2, 4, 0};
    for (size_t i = 0; i < 3; i++) {
        const xp_value *t = xp_value_at(h, i);
        const xp_value *p = xpt_field(t, "parameters");
        cr_assert_eq(xpt_get_int(p, "a"), as[i], "trial %zu a", i + 1);
        cr_assert_eq(xpt_get_int(p, "b"), bs[i], "trial %zu b", i + 1);
        if (i < 2)
            cr_assert_float_eq(xp_as_double(xpt_field(t, "result")),
                               10.0 / (double)(as[i] + bs[i]), 1e-12,
                               "trial %zu result", i + 1);
    }
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 2), "status"), "failed",
                     "trial 3 status");
    xp_value_destroy(&h);
    xp_value *v = NULL;
    cr_assert_eq(xp_load_persisted(ex, "prepare_data", 2, &v, &err), 0,
                 "persisted after reopen: '%s'", err.message);
    cr_assert_float_eq(xp_as_double(v), 7.0, 1e-12, "persisted %g",
                       xp_as_double(v));
    xp_value_destroy(&v);
    cr_assert_eq(xp_trial_parameters(ex, 2, &v, &err), 0, "params");
    cr_assert_eq(xpt_get_int(v, "a"), 3, "a of trial 2");
    xp_value_destroy(&v);
    define_quickstart(ex, true);
    cr_assert_eq(run_ab(ex, 5, 5), 4, "next id after reopen");
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- options */

static int draw(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    if (xp_set_array(out) != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (xp_set_int64(xp_array_append(out), (int64_t)xp_random_u64(st)) != 0)
            return -1;
    return 0;
}

Test(experiment, run_options_params_and_seed)
{
    xp_experiment *ex = xpt_open("run_options");
    define_simple(ex);
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 1, &err);
    xp_set_param_int64(ex, "b", 2, &err);

    xp_value *over = xp_value_new();
    xp_set_document(over);
    xp_set_int64(xp_document_set(over, "a"), 10);
    xp_run_options ro = XP_RUN_OPTIONS_INIT;
    ro.params = over;
    ro.has_seed = true;
    ro.seed = 42;
    xp_value *res = NULL;
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, &ro, &res, &id, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert_eq(xp_as_int64(res), 13, "override result %lld, want 13",
                 (long long)xp_as_int64(res));
    xp_value_destroy(&res);
    xp_value *t = xpt_trial(ex, id);
    cr_assert_eq(xpt_get_int(t, "seed"), 42, "seed %lld",
                 (long long)xpt_get_int(t, "seed"));
    const xp_value *p = xpt_field(t, "parameters");
    cr_assert_eq(xpt_get_int(p, "a"), 10, "recorded a");
    cr_assert_eq(xpt_get_int(p, "b"), 2, "recorded b");
    xp_value_destroy(&t);
    xp_value_destroy(&over);

    /* The override was for that trial only. */
    cr_assert_eq(xp_compute(ex, NULL, &res, &id, &err), 0, "compute");
    cr_assert_eq(xp_as_int64(res), 4, "result after override %lld",
                 (long long)xp_as_int64(res));
    xp_value_destroy(&res);
    t = xpt_trial(ex, id);
    int64_t s1 = xpt_get_int(t, "seed");
    xp_value_destroy(&t);
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute");
    t = xpt_trial(ex, id);
    int64_t s2 = xpt_get_int(t, "seed");
    xp_value_destroy(&t);
    cr_assert_neq(s1, s2, "two generated seeds are equal (%lld)",
                  (long long)s1);

    /* Experiment default seed. */
    xp_experiment_set_seed(ex, 7);
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute");
    t = xpt_trial(ex, id);
    cr_assert_eq(xpt_get_int(t, "seed"), 7, "default seed %lld",
                 (long long)xpt_get_int(t, "seed"));
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);

    /* Same seed, same random draws; other seed, other draws. */
    ex = xpt_open("seeded");
    xp_result(xp_step_add(ex, "draw", draw, 0, NULL, NULL, 0));
    xp_value *r[3] = {NULL, NULL, NULL};
    const uint64_t seeds[3] = {99, 99, 100};
    for (int i = 0; i < 3; i++) {
        xp_run_options so = XP_RUN_OPTIONS_INIT;
        so.has_seed = true;
        so.seed = seeds[i];
        cr_assert_eq(xp_compute(ex, &so, &r[i], NULL, &err), 0, "compute: '%s'",
                     err.message);
    }
    cr_assert(xp_value_equal(r[0], r[1]), "same seed gave different draws");
    cr_assert(!xp_value_equal(r[0], r[2]), "other seed gave the same draws");
    for (int i = 0; i < 3; i++)
        xp_value_destroy(&r[i]);
    xp_experiment_destroy(&ex);
}

Test(experiment, trial_document_fields)
{
    xp_experiment *ex = xpt_open("fields");
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *c = xp_parameter(ex, "c");
    xp_node *d = xp_parameter(ex, "d");
    /* Every parameter feeds the result, so every one is recorded. */
    XP_RESULT(ex, plus_one_of_four, a, b, c, d);
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 1, &err);
    xp_set_param_int64(ex, "b", 2, &err);
    xp_set_param_string(ex, "c", "text", &err);
    xp_set_param_bool(ex, "d", true, &err);
    int64_t before = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    xp_run_options ro = XP_RUN_OPTIONS_INIT;
    ro.has_seed = true;
    ro.seed = 12345;
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, &ro, NULL, &id, &err), 0, "compute: '%s'",
                 err.message);
    int64_t after;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }

    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 1, "history %zu", xp_value_count(h));
    xp_value *t = xpt_trial(ex, id);
    cr_assert(xp_value_equal(t, xp_value_at(h, 0)),
              "trial_get and history disagree");
    xp_value_destroy(&h);

    cr_assert_eq(xpt_get_int(t, "trial_id"), 1, "trial_id");
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "status '%s'",
                     xpt_get_str(t, "status"));
    const xp_value *p = xpt_typed(t, "parameters", XP_TYPE_DOCUMENT);
    cr_assert_eq(xp_value_count(p), 4, "parameters count %zu",
                 xp_value_count(p));
    cr_assert_eq(xpt_get_int(p, "a"), 1, "a");
    cr_assert_eq(xpt_get_int(p, "b"), 2, "b");
    cr_assert_str_eq(xpt_get_str(p, "c"), "text", "c");
    cr_assert(xpt_get_bool(p, "d"), "d");
    cr_assert_eq(xpt_get_int(t, "seed"), 12345, "seed");
    int64_t started = xp_as_int64(xpt_typed(t, "started", XP_TYPE_DATETIME));
    int64_t finished = xp_as_int64(xpt_typed(t, "finished", XP_TYPE_DATETIME));
    cr_assert(started >= before - 1000 && started <= after + 1000,
              "started %lld not within [%lld, %lld]", (long long)started,
              (long long)before, (long long)after);
    cr_assert(finished >= started && finished <= after + 1000,
              "finished %lld (started %lld, after %lld)", (long long)finished,
              (long long)started, (long long)after);
    cr_assert_eq(xpt_get_int(t, "result"), 4, "result");
    cr_assert_str_eq(xpt_get_str(t, "result_type"), "int64", "result_type '%s'",
                     xpt_get_str(t, "result_type"));
    cr_assert(xpt_get_bool(t, "success"), "success false");
    double pt = xp_as_double(xpt_typed(t, "process_time", XP_TYPE_DOUBLE));
    cr_assert(pt >= 0 && pt < 60, "process_time %g", pt);
    cr_assert_str_eq(xpt_get_str(t, "description"), "", "description '%s'",
                     xpt_get_str(t, "description"));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cr_assert_str_eq(xpt_get_str(t, "host"), host, "host '%s', want '%s'",
                     xpt_get_str(t, "host"), host);
    cr_assert_eq(xpt_get_int(t, "pid"), (int64_t)getpid(), "pid %lld",
                 (long long)xpt_get_int(t, "pid"));
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- logging */

Test(experiment, logging)
{
    static xpt_log log;
    xpt_log_init(&log);
    xp_log_set_handler(xpt_log_fn, &log);
    xp_log_set_level(XP_LOG_INFO);
    cr_assert_eq(xp_log_get_level(), XP_LOG_INFO, "level");

    xp_experiment *ex = xpt_open("logging");
    define_quickstart(ex, false);
    run_ab(ex, 1, 2);
    cr_assert_geq(
        xpt_log_find(&log, XP_LOG_INFO, "Started Experiment (trial id=1)"), 0,
        "no INFO 'Started Experiment (trial id=1)': %s", xpt_log_dump(&log));
    cr_assert_geq(
        xpt_log_find(&log, XP_LOG_INFO, "Finished Experiment (trial id=1)"), 0,
        "no INFO 'Finished Experiment (trial id=1)': %s", xpt_log_dump(&log));
    cr_assert_lt(xpt_log_find(&log, XP_LOG_INFO, "Started Experiment"),
                 xpt_log_find(&log, XP_LOG_INFO, "Finished Experiment"),
                 "Finished logged before Started: %s", xpt_log_dump(&log));
    for (size_t i = 0; i < log.n; i++)
        cr_assert_null(strchr(log.msg[i], '\n'), "log line with newline: '%s'",
                       log.msg[i]);

    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 0, &err);
    xp_set_param_int64(ex, "b", 0, &err);
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1, "failure");
    cr_assert_geq(
        xpt_log_find(&log, XP_LOG_INFO, "Started Experiment (trial id=2)"), 0,
        "failed trial not started in log: %s", xpt_log_dump(&log));
    cr_assert_geq(xpt_log_find(&log, XP_LOG_ERROR, "division by zero"), 0,
                  "no ERROR line about the failure: %s", xpt_log_dump(&log));

    /* Below the level nothing is delivered. */
    xp_log_set_level(XP_LOG_ERROR);
    size_t n = log.n;
    run_ab(ex, 2, 2);
    cr_assert_eq(log.n, n, "INFO lines delivered at level ERROR: %s",
                 xpt_log_dump(&log));
    xp_log_set_level(XP_LOG_OFF);
    xp_set_param_int64(ex, "a", 0, &err);
    xp_set_param_int64(ex, "b", 0, &err);
    xp_compute(ex, NULL, NULL, NULL, &err);
    cr_assert_eq(log.n, n, "lines delivered at level OFF: %s",
                 xpt_log_dump(&log));

    /* Restoring the default handler stops delivery to ours. */
    xp_log_set_level(XP_LOG_INFO);
    xp_log_set_handler(NULL, NULL);
    xp_log_set_level(XP_LOG_OFF); /* keep stderr quiet */
    run_ab(ex, 3, 3);
    cr_assert_eq(log.n, n, "handler called after restore");
    xp_experiment_destroy(&ex);

    xp_log_level lv;
    cr_assert_eq(xp_log_level_parse("debug", &lv, &err), 0, "parse debug");
    cr_assert_eq(lv, XP_LOG_DEBUG, "debug -> %d", (int)lv);
    cr_assert_eq(xp_log_level_parse("warning", &lv, &err), 0, "parse");
    cr_assert_eq(lv, XP_LOG_WARNING, "warning -> %d", (int)lv);
    cr_assert_eq(xp_log_level_parse("loud", &lv, &err), -1, "'loud' parsed");
    cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "domain %u", err.domain);
}

Test(experiment, strerror_names_every_code)
{
    for (uint32_t c = XP_OK; c <= XP_EUNDEFINED; c++) {
        const char *s = xp_strerror(c);
        cr_assert_not_null(s, "xp_strerror(%u) NULL", c);
        cr_assert_str_not_empty(s, "xp_strerror(%u) empty", c);
    }
    cr_assert_not_null(xp_strerror(1000), "xp_strerror(unknown) NULL");
}
