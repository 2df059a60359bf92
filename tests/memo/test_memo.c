/* test_memo.c — memoised pure steps through the public API, on local,
 * Redis (XP_TEST_REDIS_URI) and MongoDB (XP_TEST_MONGODB_URI): counting
 * steps that record each execution in a file, so what ran is seen from
 * outside the library; reuse, code edits, changed upstream values,
 * failures, the modes, the purity check, environment in the key, and
 * concurrent trials of one key. */
#include "../backend_fixture.h"

#include <sqlite3.h>
#include <stdarg.h>

static int s_kind;
static char s_backend[PATH_MAX];
static char s_id[72];
static xpt_log s_log;

/* ---------------------------------------------------------------- setup */

static void s_fini(void)
{
    if (s_kind == XPT_REDIS)
        xpt_redis_forget(s_backend, s_id);
    xpt_teardown();
}

static void s_use(int kind)
{
    s_kind = kind;
    xpt_log_init(&s_log);
    xp_log_set_handler(xpt_log_fn, &s_log);
    xp_log_set_level(XP_LOG_WARNING);
    snprintf(s_id, sizeof s_id, "memo_%d_%d", (int)getpid(), s_kind);
    xpt_backend_pick(kind, s_backend, sizeof s_backend);
}

#define ON_EVERY_BACKEND(name, seconds)                                        \
    XPT_ON_EVERY_BACKEND(every, name, seconds, s_use, s_fini)

/* ---------------------------------------------------------------- steps */

/* Executions are counted in files of the test's directory, one per step
 * name: what ran is seen whatever thread or process ran it. */
static void s_count(const char *step)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/count.%s", xpt_dir, step);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f, "cannot append to %s", path);
    fputs("x\n", f);
    fclose(f);
}

static int s_executions(const char *step)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/count.%s", xpt_dir, step);
    char *text = xpt_slurp(path);
    int n = text ? (int)xpt_count_lines(text) : 0;
    free(text);
    return n;
}

static double s_sleep_s; /* how long add takes */

static int add(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    s_count("add");
    if (s_sleep_s > 0)
        xpt_sleep(s_sleep_s);
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]));
}

static int twice(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    s_count("twice");
    return xp_set_int64(out, 2 * xp_as_int64(in[0]));
}

static int square(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    s_count("square");
    return xp_set_int64(out, xp_as_int64(in[0]) * xp_as_int64(in[0]));
}

static int sum(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    s_count("sum");
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]));
}

static int report(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    s_count("report");
    return xp_set_int64(out, xp_as_int64(in[0]));
}

static int fragile(xp_step *st, const xp_value *const *in, xp_value *out)
{
    s_count("fragile");
    if (xp_as_int64(in[0]) == 0)
        return xp_step_fail(st, "a is zero");
    return xp_set_int64(out, 100 / xp_as_int64(in[0]));
}

/* Not pure at all: its output is how often it ran. */
static int counter(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    s_count("counter");
    return xp_set_int64(out, s_executions("counter"));
}

/* ---------------------------------------------------------------- helpers */

static xp_experiment *s_open(void)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.threads = 2;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, s_id, &o, &err), 0, "%s: open: %s",
                 xpt_kind_name[s_kind], err.message);
    return ex;
}

/* a, b -> add (pure) -> report (the result). */
static xp_experiment *s_open_add(void)
{
    xp_experiment *ex = s_open();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *s = XP_PURE(ex, add, a, b);
    XP_RESULT(ex, report, s);
    xp_error_t err;
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "%s", err.message);
    return ex;
}

/* One trial with integer parameters (name, value, ..., NULL); returns
 * its id after asserting the outcome wanted. */
static int64_t s_run(xp_experiment *ex, xp_memo_mode mode, bool ok,
                     int64_t *result, ...)
{
    xp_value *p = xp_value_new();
    xp_set_document(p);
    va_list ap;
    va_start(ap, result);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL)
        xp_set_int64(xp_document_set(p, name), va_arg(ap, int64_t));
    va_end(ap);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = p;
    o.memo = mode;
    xp_value *r = NULL;
    int64_t id = 0;
    xp_error_t err = {0};
    int rc = xp_compute(ex, &o, &r, &id, &err);
    cr_assert_eq(rc == 0, ok, "%s: trial: rc=%d '%s' (log: %s)",
                 xpt_kind_name[s_kind], rc, err.message, xpt_log_dump(&s_log));
    if (ok && result)
        *result = xp_as_int64(r);
    xp_value_destroy(&r);
    xp_value_destroy(&p);
    return id;
}

/* The trial that step's output was reused from in trial id, 0 if none. */
static int64_t s_reused(xp_experiment *ex, int64_t id, const char *step)
{
    xp_value *t = xpt_trial(ex, id);
    const xp_value *reused = xp_value_get(t, "reused");
    const xp_value *from = reused ? xp_value_get(reused, step) : NULL;
    int64_t n = from ? xp_as_int64(from) : 0;
    xp_value_destroy(&t);
    return n;
}

static const char *s_memo_field(xp_experiment *ex, int64_t id, char *buf)
{
    xp_value *t = xpt_trial(ex, id);
    const xp_value *m = xp_value_get(t, "memo");
    snprintf(buf, 32, "%s", m ? xp_as_string(m, NULL) : "(none)");
    xp_value_destroy(&t);
    return buf;
}

/* ---------------------------------------------------------------- tests */

ON_EVERY_BACKEND(a_pure_step_run_twice_executes_once, 60)
{
    xp_experiment *ex = s_open_add();
    int64_t r1 = 0, r2 = 0, r3 = 0;
    int64_t t1 = s_run(ex, XP_MEMO_USE, true, &r1, "a", (int64_t)1, "b",
                       (int64_t)2, NULL);
    int64_t t2 = s_run(ex, XP_MEMO_USE, true, &r2, "a", (int64_t)1, "b",
                       (int64_t)2, NULL);
    cr_expect_eq(r1, 3);
    cr_expect_eq(r2, 3);
    cr_expect_eq(s_executions("add"), 1, "add ran %d times",
                 s_executions("add"));
    cr_expect_eq(s_executions("report"), 2, "report is not pure");
    cr_expect_eq(s_reused(ex, t1, "add"), 0);
    cr_expect_eq(s_reused(ex, t2, "add"), t1);
    char buf[32];
    cr_expect_str_eq(s_memo_field(ex, t2, buf), "use");
    xp_experiment_destroy(&ex);
    /* A new handle (a new process, in effect) reuses it from the store. */
    ex = s_open_add();
    int64_t t3 = s_run(ex, XP_MEMO_USE, true, &r3, "a", (int64_t)1, "b",
                       (int64_t)2, NULL);
    cr_expect_eq(r3, 3);
    cr_expect_eq(s_executions("add"), 1);
    cr_expect_gt(s_reused(ex, t3, "add"), 0);
    /* Other inputs: a new key. */
    s_run(ex, XP_MEMO_USE, true, &r3, "a", (int64_t)5, "b", (int64_t)2, NULL);
    cr_expect_eq(r3, 7);
    cr_expect_eq(s_executions("add"), 2);
    xp_experiment_destroy(&ex);
}

/* a -> twice (pure), b -> square (pure), both -> sum (pure) -> report. */
ON_EVERY_BACKEND(a_changed_parameter_reruns_only_its_dependents, 60)
{
    xp_experiment *ex = s_open();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *t = XP_PURE(ex, twice, a);
    xp_node *q = XP_PURE(ex, square, b);
    xp_node *s = XP_PURE(ex, sum, t, q);
    XP_RESULT(ex, report, s);
    int64_t r = 0;
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)3, NULL);
    cr_expect_eq(r, 11);
    int64_t t2 = s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b",
                       (int64_t)4, NULL);
    cr_expect_eq(r, 18);
    cr_expect_eq(s_executions("twice"), 1, "twice does not depend on b");
    cr_expect_eq(s_executions("square"), 2);
    cr_expect_eq(s_executions("sum"), 2);
    cr_expect_gt(s_reused(ex, t2, "twice"), 0);
    cr_expect_eq(s_reused(ex, t2, "square"), 0);
    /* The key is a chain of output hashes: b = -4 is a new input of
     * square, but its output (16) is not, so sum is reused. */
    int64_t t3 = s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b",
                       (int64_t)-4, NULL);
    cr_expect_eq(r, 18);
    cr_expect_eq(s_executions("square"), 3, "-4 is another input");
    cr_expect_eq(s_executions("sum"), 2, "sum's inputs are the same: 2, 16");
    cr_expect_gt(s_reused(ex, t3, "sum"), 0);
    xp_experiment_destroy(&ex);
}

ON_EVERY_BACKEND(a_failure_is_not_reused, 60)
{
    xp_experiment *ex = s_open();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *f = XP_PURE(ex, fragile, a);
    XP_RESULT(ex, report, f);
    s_run(ex, XP_MEMO_USE, false, NULL, "a", (int64_t)0, NULL);
    s_run(ex, XP_MEMO_USE, false, NULL, "a", (int64_t)0, NULL);
    cr_expect_eq(s_executions("fragile"), 2, "a failed step ran again");
    int64_t r = 0;
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)4, NULL);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)4, NULL);
    cr_expect_eq(r, 25);
    cr_expect_eq(s_executions("fragile"), 3);
    xp_experiment_destroy(&ex);
}

ON_EVERY_BACKEND(no_memo_and_refresh, 60)
{
    xp_experiment *ex = s_open_add();
    int64_t r = 0;
    char buf[32];
    int64_t t1 = s_run(ex, XP_MEMO_OFF, true, &r, "a", (int64_t)1, "b",
                       (int64_t)1, NULL);
    cr_expect_str_eq(s_memo_field(ex, t1, buf), "off");
    /* off records nothing to reuse */
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    cr_expect_eq(s_executions("add"), 2);
    s_run(ex, XP_MEMO_OFF, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    cr_expect_eq(s_executions("add"), 3, "--no-memo runs");
    int64_t t4 = s_run(ex, XP_MEMO_REFRESH, true, &r, "a", (int64_t)1, "b",
                       (int64_t)1, NULL);
    cr_expect_eq(s_executions("add"), 4, "--refresh runs");
    cr_expect_str_eq(s_memo_field(ex, t4, buf), "refresh");
    int64_t t5 = s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b",
                       (int64_t)1, NULL);
    cr_expect_eq(s_executions("add"), 4);
    cr_expect_eq(s_reused(ex, t5, "add"), t4, "the refreshed output");
    /* A reproduction (reproduces > 0) re-runs everything. */
    xp_value *p = xp_value_new();
    xp_set_document(p);
    xp_set_int64(xp_document_set(p, "a"), 1);
    xp_set_int64(xp_document_set(p, "b"), 1);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = p;
    o.reproduces = t4;
    xp_error_t err;
    cr_assert_eq(xp_compute(ex, &o, NULL, NULL, &err), 0, "%s", err.message);
    cr_expect_eq(s_executions("add"), 5, "a reproduction runs");
    xp_value_destroy(&p);
    /* A bad mode is refused before any trial. */
    o = (xp_run_options)XP_RUN_OPTIONS_INIT;
    o.memo = (xp_memo_mode)7;
    cr_expect_neq(xp_compute(ex, &o, NULL, NULL, &err), 0);
    xp_experiment_destroy(&ex);
}

ON_EVERY_BACKEND(a_purity_violation_turns_reuse_off, 60)
{
    xp_experiment *ex = s_open();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *c = XP_PURE(ex, counter, a);
    XP_RESULT(ex, report, c);
    int64_t r = 0;
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, NULL);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, NULL);
    cr_expect_eq(r, 1, "reused");
    cr_expect_eq(s_executions("counter"), 1);
    /* Refresh runs it: another output for the same key. */
    s_run(ex, XP_MEMO_REFRESH, true, &r, "a", (int64_t)1, NULL);
    cr_expect_eq(r, 2);
    cr_expect_geq(xpt_log_find(&s_log, XP_LOG_WARNING,
                               "gave another output for the same inputs"),
                  0, "no impurity warning: %s", xpt_log_dump(&s_log));
    xp_experiment_destroy(&ex);
    ex = s_open();
    a = xp_parameter(ex, "a");
    c = XP_PURE(ex, counter, a);
    XP_RESULT(ex, report, c);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, NULL);
    cr_expect_eq(r, 3, "reuse is off for this code");
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, NULL);
    cr_expect_eq(r, 4);
    cr_expect_geq(xpt_log_find(&s_log, XP_LOG_WARNING, "is not reused"), 0,
                  "%s", xpt_log_dump(&s_log));
    xp_experiment_destroy(&ex);
}

ON_EVERY_BACKEND(the_environment_a_step_names_is_in_its_key, 60)
{
    xp_experiment *ex = s_open();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *s = xp_memo_env(XP_PURE(ex, add, a, b), "XP_TEST_MEMO_VAR");
    XP_RESULT(ex, report, s);
    int64_t r = 0;
    unsetenv("XP_TEST_MEMO_VAR");
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    setenv("XP_TEST_MEMO_VAR", "one", 1);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    setenv("XP_TEST_MEMO_VAR", "two", 1);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    unsetenv("XP_TEST_MEMO_VAR");
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    cr_expect_eq(s_executions("add"), 3, "unset, one, two: %d",
                 s_executions("add"));
    xp_experiment_destroy(&ex);
}

typedef struct {
    xp_experiment *ex;
    int rc;
    xp_error_t err;
} s_job;

static void *s_thread(void *arg)
{
    s_job *j = arg;
    xp_value *p = xp_value_new();
    xp_set_document(p);
    xp_set_int64(xp_document_set(p, "a"), 20);
    xp_set_int64(xp_document_set(p, "b"), 22);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = p;
    xp_value *r = NULL;
    j->rc = xp_compute(j->ex, &o, &r, NULL, &j->err);
    if (j->rc == 0 && xp_as_int64(r) != 42)
        j->rc = -2;
    xp_value_destroy(&r);
    xp_value_destroy(&p);
    return NULL;
}

ON_EVERY_BACKEND(concurrent_trials_of_one_key_execute_it_once, 60)
{
    xp_experiment *ex = s_open_add();
    s_sleep_s = 0.3; /* the others start while it runs */
    enum { N = 4 };
    pthread_t th[N];
    s_job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (s_job){ex, -1, {0}};
        pthread_create(&th[i], NULL, s_thread, &jobs[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(jobs[i].rc, 0, "trial %d: rc %d: %s", i, jobs[i].rc,
                     jobs[i].err.message);
    }
    s_sleep_s = 0;
    cr_expect_eq(s_executions("add"), 1, "add ran %d times",
                 s_executions("add"));
    cr_expect_eq(s_executions("report"), N);
    int reused = 0;
    for (int64_t id = 1; id <= N; id++)
        reused += s_reused(ex, id, "add") > 0;
    cr_expect_eq(reused, N - 1);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- files and
 * the command line */

/* Runs `xp ARGS... --backend B` (NULL-terminated); returns its result. */
static xpt_run_result s_xp(const char *first, ...)
{
    const char *cli = getenv("XP_CLI");
    if (!cli || access(cli, X_OK) != 0)
        XPT_SKIP("XP_CLI is not set or missing (meson sets it)");
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)cli;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 13; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    static char backend[PATH_MAX + 16];
    snprintf(backend, sizeof backend, "--backend=%s", s_backend);
    argv[n++] = backend;
    argv[n] = NULL;
    return xpt_run(argv, xpt_dir);
}

/* The counting script of the file experiment: appends to count.prep and
 * prints ten times its argument. */
static void s_script(const char *extra)
{
    char text[PATH_MAX + 200];
    snprintf(text, sizeof text,
             "echo x >> '%s/count.prep'\n%s\necho $(( $1 * 10 ))\n", xpt_dir,
             extra);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/prep.sh", xpt_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_expect_run(const char *path, const char *mode, const char *out)
{
    xpt_run_result r = mode ? s_xp("run", path, "a=2", mode, NULL)
                            : s_xp("run", path, "a=2", NULL);
    cr_assert_eq(r.status, 0, "xp run: %s", r.err);
    cr_expect_str_eq(r.out, out);
    xpt_run_result_free(&r);
}

ON_EVERY_BACKEND(xp_run_of_a_file_with_a_pure_command_step, 120)
{
    char path[PATH_MAX], text[512];
    snprintf(text, sizeof text,
             "experiment: %s\n"
             "parameters:\n  a: 1\n"
             "steps:\n"
             "  prep:\n"
             "    run: [sh, prep.sh, '{a}']\n"
             "    code: [prep.sh]\n"
             "    pure: true\n"
             "    memo_env: [XP_TEST_MEMO_FILE_VAR]\n",
             s_id);
    snprintf(path, sizeof path, "%s/experiment.yaml", xpt_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    s_script("");
    unsetenv("XP_TEST_MEMO_FILE_VAR");
    s_expect_run(path, NULL, "20\n");
    s_expect_run(path, NULL, "20\n");
    cr_expect_eq(s_executions("prep"), 1, "run twice, executed once");
    s_expect_run(path, "--no-memo", "20\n");
    cr_expect_eq(s_executions("prep"), 2, "--no-memo runs it");
    /* An edited code file is another key. */
    s_script("# edited");
    s_expect_run(path, NULL, "20\n");
    cr_expect_eq(s_executions("prep"), 3, "the edited script runs");
    s_expect_run(path, NULL, "20\n");
    cr_expect_eq(s_executions("prep"), 3);
    s_expect_run(path, "--refresh", "20\n");
    cr_expect_eq(s_executions("prep"), 4, "--refresh runs it");
    /* So is another value of the environment it names. */
    setenv("XP_TEST_MEMO_FILE_VAR", "x", 1);
    s_expect_run(path, NULL, "20\n");
    unsetenv("XP_TEST_MEMO_FILE_VAR");
    cr_expect_eq(s_executions("prep"), 5);
    /* What reused what, in history --verbose and diff. */
    xpt_run_result r = s_xp("history", s_id, "--verbose", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "Reused"), "%s", r.out);
    cr_expect(strstr(r.out, "prep<-1"), "%s", r.out);
    cr_expect(strstr(r.out, "prep<-4"), "%s", r.out);
    xpt_run_result_free(&r);
    r = s_xp("diff", s_id, "1", "2", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "== reused: differ"), "%s", r.out);
    cr_expect(strstr(r.out, "+prep: 1"), "%s", r.out);
    xpt_run_result_free(&r);
    /* Bad modes are refused before anything is recorded. */
    r = s_xp("run", path, "--no-memo", "--refresh", NULL);
    cr_expect_eq(r.status, 2, "%s", r.err);
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- gc */

static bool s_has_value(xp_experiment *ex, const char *step, int64_t trial)
{
    xp_value *v = NULL;
    xp_error_t err;
    int rc = xp_load_persisted(ex, step, trial, &v, &err);
    xp_value_destroy(&v);
    return rc == 0;
}

ON_EVERY_BACKEND(gc_keeps_records_and_what_it_keeps_consistent, 120)
{
    xp_experiment *ex = s_open_add();
    int64_t r = 0;
    for (int64_t a = 1; a <= 3; a++)
        s_run(ex, XP_MEMO_USE, true, &r, "a", a, "b", (int64_t)0, NULL);
    cr_expect_eq(s_executions("add"), 3);
    size_t entries = 0, trials = 0;
    xp_error_t err;
    cr_assert_eq(xp_experiment_gc(ex, 1, true, &entries, &trials, &err), 0,
                 "%s", err.message);
    cr_expect_eq(entries, 2, "dry run: %zu entries", entries);
    cr_expect_eq(trials, 2);
    cr_expect(s_has_value(ex, "add", 1), "a dry run removes nothing");
    cr_assert_eq(xp_experiment_gc(ex, 1, false, &entries, &trials, &err), 0,
                 "%s", err.message);
    cr_expect_eq(entries, 2);
    cr_expect(!s_has_value(ex, "add", 1));
    cr_expect(!s_has_value(ex, "add", 2));
    cr_expect(s_has_value(ex, "add", 3), "the newest trial keeps its values");
    xp_value *h = xpt_history(ex);
    cr_expect_eq(xp_value_count(h), 3, "records are kept");
    xp_value_destroy(&h);
    /* Removed: runs again; kept: reused. */
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)0, NULL);
    cr_expect_eq(r, 1);
    cr_expect_eq(s_executions("add"), 4);
    int64_t t5 = s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)3, "b",
                       (int64_t)0, NULL);
    cr_expect_eq(r, 3);
    cr_expect_eq(s_executions("add"), 4);
    cr_expect_eq(s_reused(ex, t5, "add"), 3);
    /* Trial 3 is older than the newest one now, but trial 5 reused its
     * output: it is kept. */
    cr_assert_eq(xp_experiment_gc(ex, 1, false, &entries, &trials, &err), 0,
                 "%s", err.message);
    cr_expect_eq(entries, 1, "the entry of trial 4 goes, 3's stays");
    cr_expect(s_has_value(ex, "add", 3));
    cr_expect(!s_has_value(ex, "add", 4));
    int64_t t6 = s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)3, "b",
                       (int64_t)0, NULL);
    cr_expect_eq(s_reused(ex, t6, "add"), 3);
    cr_expect_eq(s_executions("add"), 4);
    /* Everything: the next trial of a kept key runs, no error. */
    cr_assert_eq(xp_experiment_gc(ex, 0, false, NULL, NULL, &err), 0, "%s",
                 err.message);
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)3, "b", (int64_t)0, NULL);
    cr_expect_eq(s_executions("add"), 5);
    cr_expect_neq(xp_experiment_gc(ex, -1, false, NULL, NULL, &err), 0);
    xp_experiment_destroy(&ex);
    /* The command line. */
    xpt_run_result cli =
        s_xp("gc", s_id, "--keep-last", "1", "--dry-run", NULL);
    cr_expect_eq(cli.status, 0, "%s", cli.err);
    cr_expect(strstr(cli.out, "would remove"), "%s", cli.out);
    xpt_run_result_free(&cli);
    cli = s_xp("gc", s_id, NULL);
    cr_expect_eq(cli.status, 2, "--keep-last is required: %s", cli.err);
    xpt_run_result_free(&cli);
}

/* A value removed behind the memo's back (another tool, a partial gc)
 * is a miss: the step runs, nothing fails. */
Test(local, a_missing_value_is_a_miss, .init = xpt_setup, .fini = s_fini)
{
    s_use(XPT_LOCAL);
    xp_experiment *ex = s_open_add();
    int64_t r = 0;
    s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b", (int64_t)1, NULL);
    xp_experiment_destroy(&ex);
    char db_path[PATH_MAX];
    snprintf(db_path, sizeof db_path, "%s/%s/xp.sqlite3", xpt_dir, s_id);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DELETE FROM persisted", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    ex = s_open_add();
    int64_t t2 = s_run(ex, XP_MEMO_USE, true, &r, "a", (int64_t)1, "b",
                       (int64_t)1, NULL);
    cr_expect_eq(r, 2);
    cr_expect_eq(s_executions("add"), 2);
    cr_expect_eq(s_reused(ex, t2, "add"), 0);
    xp_experiment_destroy(&ex);
}

/* A file's pure and memo_env are checked like its other keys. */
Test(file, bad_memo_keys_are_refused_with_their_line, .init = xpt_setup,
     .fini = s_fini)
{
    s_use(XPT_LOCAL);
    static const char *const bodies[] = {
        "    pure: maybe\n",
        "    memo_env: HOME\n",
        "    memo_env: [[HOME]]\n",
    };
    static const char *const errors[] = {"pure", "memo_env", "memo_env"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char path[PATH_MAX], text[512];
        snprintf(text, sizeof text,
                 "experiment: bad_memo\nsteps:\n  s:\n    run: [true]\n%s",
                 bodies[i]);
        snprintf(path, sizeof path, "%s/bad%zu.yaml", xpt_dir, i);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
        xp_definition *d = NULL;
        xp_error_t err = {0};
        cr_expect_neq(xp_definition_load(&d, path, &err), 0, "%s loaded",
                      bodies[i]);
        cr_expect(strstr(err.message, errors[i]) && strstr(err.message, ":5"),
                  "%s: '%s'", bodies[i], err.message);
        xp_definition_destroy(&d);
    }
}
