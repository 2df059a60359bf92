/* test_script.c — script mode: xp__script_parse on valid and malformed
 * command lines (internal API), and the real example programs run as
 * processes: exit status, stdout result, one-line errors on stderr, --help,
 * and that refused command lines record nothing and create no store;
 * xp_main in-process for definitions no example has. */
#include "../common.h"

#include "script.h"

TestSuite(script, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define ARGC(...)                                                              \
    ((int)(sizeof((char *[]){"prog", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(a, err, ...)                                                     \
    xp__script_parse((a), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (err))

/* ---------------------------------------------------------------- parsing */

Test(script, parse_pairs_and_seed)
{
    xp_script_args a;
    xp_error_t err = {0};
    int rc = PARSE(&a, &err, "a=1", "b=2", "--seed", "7");
    cr_assert_eq(rc, 0, "parse failed: '%s'", err.message);
    cr_assert_eq(a.n, 2, "%zu pairs", a.n);
    cr_assert_str_eq(a.names[0], "a", "name 0 '%s'", a.names[0]);
    cr_assert_str_eq(a.values[0], "1", "value 0 '%s'", a.values[0]);
    cr_assert_str_eq(a.names[1], "b", "name 1 '%s'", a.names[1]);
    cr_assert_str_eq(a.values[1], "2", "value 1 '%s'", a.values[1]);
    cr_assert(a.has_seed, "no seed");
    cr_assert_eq(a.seed, 7, "seed %llu", (unsigned long long)a.seed);
    cr_assert(!a.help, "help set");
    cr_assert_null(a.backend, "backend set");
    cr_assert_null(a.log_level, "log level set");
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "--seed=7");
    cr_assert_eq(rc, 0, "--seed=7: '%s'", err.message);
    cr_assert(a.has_seed && a.seed == 7, "--seed=7 gave %d/%llu", a.has_seed,
              (unsigned long long)a.seed);
    cr_assert_eq(a.n, 0, "%zu pairs", a.n);
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "--seed", "0", "x=y");
    cr_assert_eq(rc, 0, "--seed 0: '%s'", err.message);
    cr_assert(a.has_seed && a.seed == 0, "seed 0");
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "--seed", "9223372036854775807");
    cr_assert_eq(rc, 0, "largest seed refused: '%s'", err.message);
    cr_assert_eq(a.seed, (uint64_t)INT64_MAX, "seed %llu",
                 (unsigned long long)a.seed);
    xp__script_args_free(&a);
}

Test(script, parse_no_arguments)
{
    xp_script_args a;
    xp_error_t err = {0};
    char *argv[] = {"prog", NULL};
    cr_assert_eq(xp__script_parse(&a, 1, argv, &err), 0, "empty: '%s'",
                 err.message);
    cr_assert_eq(a.n, 0, "pairs %zu", a.n);
    cr_assert(!a.has_seed && !a.help, "flags set");
    xp__script_args_free(&a);
}

Test(script, parse_values_keep_their_text)
{
    xp_script_args a;
    xp_error_t err = {0};
    int rc = PARSE(&a, &err, "s=a=b", "q=\"x y\"", "f=1e-3", "l=[1,2]",
                   "u=h\xc3\xa9");
    cr_assert_eq(rc, 0, "parse: '%s'", err.message);
    cr_assert_eq(a.n, 5, "%zu pairs", a.n);
    cr_assert_str_eq(a.names[0], "s", "split at the first '='");
    cr_assert_str_eq(a.values[0], "a=b", "value '%s'", a.values[0]);
    cr_assert_str_eq(a.values[1], "\"x y\"", "quoted value '%s'", a.values[1]);
    cr_assert_str_eq(a.values[2], "1e-3", "value '%s'", a.values[2]);
    cr_assert_str_eq(a.values[3], "[1,2]", "value '%s'", a.values[3]);
    cr_assert_str_eq(a.values[4], "h\xc3\xa9", "value '%s'", a.values[4]);
    xp__script_args_free(&a);
}

Test(script, parse_options)
{
    xp_script_args a;
    xp_error_t err = {0};
    int rc = PARSE(&a, &err, "--backend", "/tmp/some dir", "a=1");
    cr_assert_eq(rc, 0, "--backend: '%s'", err.message);
    cr_assert_str_eq(a.backend, "/tmp/some dir", "backend '%s'", a.backend);
    cr_assert_eq(a.n, 1, "pairs %zu", a.n);
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "--backend=/x");
    cr_assert_eq(rc, 0, "--backend=: '%s'", err.message);
    cr_assert_str_eq(a.backend, "/x", "backend '%s'", a.backend);
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "--log-level", "debug");
    cr_assert_eq(rc, 0, "--log-level: '%s'", err.message);
    cr_assert_str_eq(a.log_level, "debug", "log level '%s'", a.log_level);
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "--help");
    cr_assert_eq(rc, 0, "--help: '%s'", err.message);
    cr_assert(a.help, "--help not set");
    xp__script_args_free(&a);

    rc = PARSE(&a, &err, "a=1", "--help", "b=2");
    cr_assert_eq(rc, 0, "--help among pairs: '%s'", err.message);
    cr_assert(a.help, "--help not set");
    cr_assert_eq(a.n, 2, "pairs %zu", a.n);
    xp__script_args_free(&a);
}

Test(script, parse_reproduce)
{
    xp_script_args a;
    xp_error_t err = {0};
    cr_assert_eq(PARSE(&a, &err, "--reproduce", "3"), 0, "%s", err.message);
    cr_assert_eq(a.reproduce, 3);
    cr_assert_null(a.reproduce_id);
    xp__script_args_free(&a);
    cr_assert_eq(PARSE(&a, &err, "--reproduce=exp_pj:12"), 0, "%s",
                 err.message);
    cr_assert_eq(a.reproduce, 12);
    cr_assert_str_eq(a.reproduce_id, "exp_pj");
    xp__script_args_free(&a);
    char *bad[] = {"0", "x", "exp_pj:", ":3", "bad id:3", "exp_pj:-1", "a:b:3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(PARSE(&a, &err, "--reproduce", bad[i]), -1, "%s", bad[i]);
        cr_assert(err.message[0], "%s: no message", bad[i]);
    }
}

/* Every malformed command line, shared with the program tests below. */
static const char *const MALFORMED[][3] = {
    {"=1", NULL, NULL},         {"a", NULL, NULL},
    {"a=", NULL, NULL},         {"a=1", "--seed", "x"},
    {"a=1", "--seed", NULL},    {"a=1", "--seed", "-1"},
    {"a=1", "--seed", "1.5"},   {"a=1", "--seed", "99999999999999999999"},
    {"a=1", "--seed", " 7"},    {"a=1", "--seed", "+7"},
    {"a=1", "--unknown", NULL}, {"a=1", "-x", NULL},
    {"a=1", "--backend", NULL}, {"a=1", "--log-level", NULL},
    {"a/b=1", NULL, NULL},      {"a=1", "a=2", NULL},
};
#define N_MALFORMED (sizeof MALFORMED / sizeof MALFORMED[0])

static void describe_args(const char *const *args, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < 3 && args[i]; i++) {
        strncat(buf, args[i], size - strlen(buf) - 2);
        strncat(buf, " ", size - strlen(buf) - 1);
    }
}

Test(script, parse_malformed)
{
    for (size_t k = 0; k < N_MALFORMED; k++) {
        char *argv[5] = {"prog", NULL, NULL, NULL, NULL};
        int argc = 1;
        for (int i = 0; i < 3 && MALFORMED[k][i]; i++)
            argv[argc++] = (char *)MALFORMED[k][i];
        char what[128];
        describe_args(MALFORMED[k], what, sizeof what);
        xp_script_args a;
        xp_error_t err = {0};
        int rc = xp__script_parse(&a, argc, argv, &err);
        cr_assert_eq(rc, -1, "malformed '%s' accepted", what);
        cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "'%s': domain %u", what,
                     err.domain);
        cr_assert_neq(err.code, XP_OK, "'%s': no code", what);
        cr_assert_str_not_empty(err.message, "'%s': no message", what);
        cr_assert_null(strchr(err.message, '\n'),
                       "'%s': multi-line message '%s'", what, err.message);
        xp__script_args_free(&a); /* safe after a failure */
    }
}

/* ---------------------------------------------------------------- programs */

static const char *example_or_skip(const char *name, char *buf)
{
    char why[256];
    const char *p = xpt_example(name, buf, why);
    if (!p)
        xpt_skip(why);
    return p;
}

/* Lines of stderr that are not log lines of the default handler. */
static size_t reason_lines(const char *err_text)
{
    size_t n = 0;
    const char *p = err_text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < 1023 ? len : 1023), p);
        if (!strstr(line, " [INFO] ") && !strstr(line, " [DEBUG] ") && len > 0)
            n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* History length of experiment `id` in the test dir (0 when it was never
 * created). */
static size_t recorded_trials(const char *id)
{
    xp_error_t err = {0};
    xp_experiment *ex = xpt_open_existing(id, &err);
    if (!ex) {
        cr_assert_eq(err.code, XP_ENOTFOUND, "opening %s: code %u '%s'", id,
                     err.code, err.message);
        return 0;
    }
    xp_value *h = xpt_history(ex);
    size_t n = xp_value_count(h);
    int64_t last = xpt_last_id(ex);
    cr_assert_eq(last, (int64_t)n, "last id %lld but %zu trials",
                 (long long)last, n);
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
    return n;
}

Test(script, program_runs_one_trial)
{
    char prog[PATH_MAX];
    example_or_skip("simple_experiment", prog);
    xpt_run_result r = xpt_run(
        (char *[]){prog, "a=1", "b=2", "--backend", xpt_dir, NULL}, xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "4\n", "stdout '%s', want '4\\n'", r.out);
    xpt_run_result_free(&r);

    r = xpt_run((char *[]){prog, "a=1.5", "b=2", "--seed", "7", "--backend",
                           xpt_dir, "--log-level", "warning", NULL},
                xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "4.5\n", "stdout '%s'", r.out);
    cr_assert_str_empty(r.err, "stderr at level warning: '%s'", r.err);
    xpt_run_result_free(&r);

    cr_assert_eq(recorded_trials("simple_experiment_pj"), 2, "trials");
    xp_error_t err = {0};
    xp_experiment *ex = xpt_open_existing("simple_experiment_pj", &err);
    cr_assert_not_null(ex, "open: '%s'", err.message);
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_eq(xpt_get_int(t, "result"), 4, "trial 1 result");
    const xp_value *p = xpt_field(t, "parameters");
    cr_assert_eq(xpt_get_int(p, "a"), 1, "a");
    cr_assert_eq(xpt_get_int(p, "b"), 2, "b");
    xp_value_destroy(&t);
    t = xpt_trial(ex, 2);
    cr_assert_eq(xpt_get_int(t, "seed"), 7, "--seed 7 recorded as %lld",
                 (long long)xpt_get_int(t, "seed"));
    p = xpt_field(t, "parameters");
    cr_assert_eq(xp_value_type(xpt_field(p, "a")), XP_TYPE_DOUBLE,
                 "a=1.5 recorded as %s",
                 xp_type_name(xp_value_type(xpt_field(p, "a"))));
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(script, program_default_backend_is_cwd_xp_cache)
{
    char prog[PATH_MAX];
    example_or_skip("simple_experiment", prog);
    xpt_run_result r = xpt_run((char *[]){prog, "a=1", "b=2", NULL}, xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    xpt_run_result_free(&r);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/xp_cache/simple_experiment_pj", xpt_dir);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s missing", path);
    cr_assert(S_ISDIR(sb.st_mode), "%s is not a directory", path);
}

/* A refused invocation creates no store for experiment id in the test
 * directory. */
static void store_absent_or_fail(const char *id, const char *what)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", xpt_dir, id);
    cr_assert_neq(access(path, F_OK), 0, "'%s' created %s", what, path);
}

Test(script, program_refuses_malformed_arguments)
{
    char prog[PATH_MAX];
    example_or_skip("simple_experiment", prog);
    for (size_t k = 0; k < N_MALFORMED + 4; k++) {
        const char *extra[3] = {NULL, NULL, NULL};
        if (k < N_MALFORMED) {
            memcpy(extra, MALFORMED[k], sizeof extra);
        } else if (k == N_MALFORMED) {
            extra[0] = "c=1"; /* unknown parameter */
        } else if (k == N_MALFORMED + 1) {
            extra[0] = "b=2"; /* a undefined (with b given below: none) */
        } else if (k == N_MALFORMED + 2) {
            extra[0] = "--log-level";
            extra[1] = "loud";
        } else {
            extra[0] = "b=[1,";
        }
        char *argv[10];
        int argc = 0;
        argv[argc++] = prog;
        argv[argc++] = "--backend";
        argv[argc++] = xpt_dir;
        /* Parameters given so that only the malformed piece is wrong: a and
         * b are defined unless the case is about them. */
        bool mentions_b = false;
        for (int i = 0; i < 3 && extra[i]; i++)
            if (strncmp(extra[i], "b=", 2) == 0)
                mentions_b = true;
        if (k < N_MALFORMED || k == N_MALFORMED || k == N_MALFORMED + 2) {
            if (!mentions_b)
                argv[argc++] = "b=2";
        }
        for (int i = 0; i < 3 && extra[i]; i++)
            argv[argc++] = (char *)extra[i];
        argv[argc] = NULL;
        char what[256] = "";
        for (int i = 3; i < argc; i++) {
            strncat(what, argv[i], sizeof what - strlen(what) - 2);
            strncat(what, " ", sizeof what - strlen(what) - 1);
        }
        xpt_run_result r = xpt_run(argv, xpt_dir);
        cr_assert_neq(r.status, 0, "'%s' exited 0 (stdout '%s')", what, r.out);
        cr_assert_lt(r.status, 128, "'%s' died of signal %d", what,
                     r.status - 128);
        if (k != N_MALFORMED + 1)
            cr_assert_eq(r.status, 2,
                         "'%s' exited %d, want 2 (bad "
                         "arguments); stderr: %s",
                         what, r.status, r.err);
        cr_assert_eq(reason_lines(r.err), 1,
                     "'%s': want one reason line on stderr, got: '%s'", what,
                     r.err);
        cr_assert_str_empty(r.out, "'%s': stdout '%s'", what, r.out);
        xpt_run_result_free(&r);
        cr_assert_eq(recorded_trials("simple_experiment_pj"), 0,
                     "'%s' recorded a trial", what);
        store_absent_or_fail("simple_experiment_pj", what);
    }
}

Test(script, refused_arguments_create_no_store)
{
    char prog[PATH_MAX];
    example_or_skip("simple_experiment", prog);
    char backend[PATH_MAX];
    snprintf(backend, sizeof backend, "%s/D", xpt_dir);
    /* Undeclared c: refused before the backend directory is made. */
    xpt_run_result r = xpt_run(
        (char *[]){prog, "a=1", "b=1", "c=3", "--backend", backend, NULL},
        xpt_dir);
    cr_assert_eq(r.status, 2, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "parameter 'c' is not declared"),
                       "stderr: %s", r.err);
    cr_assert_eq(reason_lines(r.err), 1, "stderr: %s", r.err);
    xpt_run_result_free(&r);
    cr_assert_neq(access(backend, F_OK), 0, "exit 2 created %s", backend);
    /* Every undefined parameter named at once, nothing created. */
    r = xpt_run((char *[]){prog, "--backend", backend, NULL}, xpt_dir);
    cr_assert_eq(r.status, 2, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "parameters 'a', 'b' are not defined"),
                       "stderr: %s", r.err);
    xpt_run_result_free(&r);
    cr_assert_neq(access(backend, F_OK), 0, "exit 2 created %s", backend);
    /* Valid: the trial is recorded as before. */
    r = xpt_run((char *[]){prog, "a=1", "b=1", "--backend", backend,
                           "--log-level", "off", NULL},
                xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "3\n", "stdout '%s'", r.out);
    xpt_run_result_free(&r);
    char db[PATH_MAX + 64];
    snprintf(db, sizeof db, "%s/simple_experiment_pj/xp.sqlite3", backend);
    cr_assert_eq(access(db, F_OK), 0, "%s missing", db);
}

static bool has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        bool start =
            p == text ||
            !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
              (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
        char e = p[n];
        bool end = !(e == '_' || (e >= 'a' && e <= 'z') ||
                     (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'));
        if (start && end)
            return true;
    }
    return false;
}

Test(script, program_help_lists_parameters)
{
    char prog[PATH_MAX];
    example_or_skip("simple_experiment", prog);
    xpt_run_result r = xpt_run(
        (char *[]){prog, "--help", "--backend", xpt_dir, NULL}, xpt_dir);
    cr_assert_eq(r.status, 0, "--help exit %d, stderr: %s", r.status, r.err);
    size_t len = strlen(r.out) + strlen(r.err) + 2;
    char *all = malloc(len);
    snprintf(all, len, "%s\n%s", r.out, r.err);
    cr_assert(has_word(all, "a"), "--help does not list 'a': %s", all);
    cr_assert(has_word(all, "b"), "--help does not list 'b': %s", all);
    cr_assert(has_word(all, "--seed"), "--help does not mention --seed: %s",
              all);
    free(all);
    xpt_run_result_free(&r);
    cr_assert_eq(recorded_trials("simple_experiment_pj"), 0,
                 "--help recorded a trial");
    /* It opens no store: nothing is created. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/simple_experiment_pj", xpt_dir);
    cr_assert_neq(access(path, F_OK), 0, "--help created %s", path);
    r = xpt_run((char *[]){prog, "--help", NULL}, xpt_dir);
    cr_assert_eq(r.status, 0);
    xpt_run_result_free(&r);
    snprintf(path, sizeof path, "%s/xp_cache", xpt_dir);
    cr_assert_neq(access(path, F_OK), 0, "--help created %s", path);
}

Test(script, program_failed_trial_exits_1)
{
    char prog[PATH_MAX];
    example_or_skip("quickstart", prog);
    xpt_run_result r = xpt_run((char *[]){prog, "a=0", "b=0", "--backend",
                                          xpt_dir, "--log-level", "off", NULL},
                               xpt_dir);
    cr_assert_eq(r.status, 1, "failed trial exit %d, stderr: %s", r.status,
                 r.err);
    cr_assert_not_null(strstr(r.err, "division by zero"),
                       "stderr does not give the reason: '%s'", r.err);
    xpt_run_result_free(&r);
    r = xpt_run((char *[]){prog, "a=1", "b=1", "--seed", "1", "--backend",
                           xpt_dir, "--log-level", "off", NULL},
                xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "5.0\n", "10 / (1 + 1) printed as '%s'", r.out);
    xpt_run_result_free(&r);

    xp_error_t err = {0};
    xp_experiment *ex = xpt_open_existing("quickstart_pj", &err);
    cr_assert_not_null(ex, "open quickstart_pj: '%s'", err.message);
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed", "status");
    cr_assert_str_eq(xpt_get_str(t, "description"),
                     "calculate_score: division by zero", "description '%s'",
                     xpt_get_str(t, "description"));
    xp_value_destroy(&t);
    t = xpt_trial(ex, 2);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "status");
    xp_value_destroy(&t);
    int64_t id = 2;
    xp_metric_table *tab = NULL;
    cr_assert_eq(xp_load_metric(ex, "dummy_score", &id, 1, &tab, &err), 0,
                 "quickstart metric: '%s'", err.message);
    cr_assert_eq(xp_metric_table_epochs(tab), 100, "epochs %zu",
                 xp_metric_table_epochs(tab));
    xp_metric_table_destroy(&tab);
    xp_experiment_destroy(&ex);
}

Test(script, program_logs_started_and_finished)
{
    char prog[PATH_MAX];
    example_or_skip("simple_experiment", prog);
    xpt_run_result r = xpt_run(
        (char *[]){prog, "a=1", "b=2", "--backend", xpt_dir, NULL}, xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "[INFO] Started Experiment (trial id=1)"),
                       "stderr: '%s'", r.err);
    cr_assert_not_null(strstr(r.err, "[INFO] Finished Experiment (trial id=1)"),
                       "stderr: '%s'", r.err);
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- xp_main */

/* Runs xp_main(id, define, argv) in a child process, as a program would;
 * captures status, stdout and stderr. */
static xpt_run_result run_main(const char *id, xp_define_fn define, char **argv)
{
    char out_path[PATH_MAX], err_path[PATH_MAX];
    snprintf(out_path, sizeof out_path, "%s/.main_out", xpt_dir);
    snprintf(err_path, sizeof err_path, "%s/.main_err", xpt_dir);
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (!freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr))
            _exit(126);
        int status = xp_main(id, define, argc, argv);
        fflush(NULL);
        _exit(status);
    }
    xpt_run_result r;
    r.status = xpt_wait(pid);
    r.out = xpt_slurp(out_path);
    r.err = xpt_slurp(err_path);
    return r;
}

static int add_a(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

static int use_u(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

/* a -> add_a (the result); u, read only by a second XP_RESULT (refused). */
static xp_node *define_second_result(xp_experiment *ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *u = xp_parameter_literal(ex, "u", "7");
    xp_node *r = XP_RESULT(ex, add_a, a);
    XP_RESULT(ex, use_u, u);
    return r;
}

Test(script, help_after_a_refused_second_result)
{
    xpt_run_result r = run_main("second_result", define_second_result,
                                (char *[]){"prog", "--help", NULL});
    cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "cannot also be 'use_u'"),
                       "the refusal is not logged: %s", r.err);
    cr_assert_not_null(strstr(r.out, "prints its result (step 'add_a')"),
                       "--help does not name the result step: %s", r.out);
    cr_assert_null(strstr(r.out, "use_u"),
                   "--help mentions the refused "
                   "step: %s",
                   r.out);
    const char *u = strstr(r.out, "  u ");
    cr_assert_not_null(u, "--help does not list u: %s", r.out);
    cr_assert_not_null(strstr(u, "default 7; the result does not read it\n"),
                       "u is not said unread: %s", r.out);
    const char *a = strstr(r.out, "  a ");
    cr_assert_not_null(a, "--help does not list a: %s", r.out);
    cr_assert(strncmp(strchr(a, '('), "(required)\n", 11) == 0, "a: %s", r.out);
    xpt_run_result_free(&r);
}
