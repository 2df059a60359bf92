/* test_reproduce.c — xp reproduce on real programs: an experiment file
 * mixing a shell step, a C step from a shared library and a Python step,
 * and the seeded random example; re-run in-process (`xp reproduce ID
 * TRIAL FILE`, `xp run FILE --reproduce`), through an experiment
 * program's script mode (`-- PROGRAM`, `./PROG --reproduce [ID:]TRIAL`)
 * and through a real xp-scheduler and xp-worker. Checks the exit status,
 * the summary line naming what differs, and the stored records
 * (reproduces, step output hashes). */
#include "../remote/remote.h"

#define ID "repro_file"

static char s_cli[PATH_MAX], s_file[PATH_MAX], s_backend[PATH_MAX + 16];

static const char s_yaml[] =
    "experiment: " ID "\n"
    "parameters:\n"
    "  x: {type: float}\n"
    "steps:\n"
    "  double:\n"
    "    shell: awk -v x={x} 'BEGIN {{ if (x < 0) exit 3; print x * 2 }}'\n"
    "  scaled:\n"
    "    function: {library: ./steps.so, symbol: scale}\n"
    "    inputs: [double]\n"
    "  plus:\n"
    "    run: [python3, plus.py, '{scaled}']\n"
    "    code: [plus.py]\n"
    "result: plus\n";

static void s_write(const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", xpt_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* Copies the library named by environment variable var to DIR/steps.so
 * (a new file: as a rebuild leaves it). */
static void s_install_steps(const char *var)
{
    const char *from = getenv(var);
    if (!from || access(from, R_OK) != 0)
        xpt_skip("XP_STEPS_V1/V2 are not set (run through `meson test`)");
    char *bytes = NULL;
    FILE *in = fopen(from, "rb");
    cr_assert_not_null(in);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    rewind(in);
    bytes = malloc((size_t)n);
    cr_assert_eq(fread(bytes, 1, (size_t)n, in), (size_t)n);
    fclose(in);
    char to[PATH_MAX];
    snprintf(to, sizeof to, "%s/steps.so", xpt_dir);
    unlink(to);
    FILE *out = fopen(to, "wb");
    cr_assert_not_null(out);
    cr_assert_eq(fwrite(bytes, 1, (size_t)n, out), (size_t)n);
    fclose(out);
    free(bytes);
}

static void s_setup(void)
{
    xpt_setup();
    xptr_bin("XP_CLI", s_cli);
    s_install_steps("XP_STEPS_V1");
    s_write("plus.py", "import sys\nprint(float(sys.argv[1]) + 1)\n");
    s_write(ID ".yaml", s_yaml);
    snprintf(s_file, sizeof s_file, "%s/" ID ".yaml", xpt_dir);
    snprintf(s_backend, sizeof s_backend, "--backend=%s", xpt_dir);
}

/* Runs argv (NULL-terminated, argv[0] the program) in the test's
 * directory. */
static xpt_run_result s_run(char *const *argv)
{
    return xpt_run(argv, xpt_dir);
}

/* The last line of text (without its newline) into buf[1024]. */
static const char *s_last_line(const char *text, char *buf)
{
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n')
        n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(buf, 1024, "%.*s", (int)(n - start), text + start);
    return buf;
}

/* Stderr is exactly one line. */
static void s_one_line(const char *err)
{
    size_t n = strlen(err);
    cr_assert(n > 1 && err[n - 1] == '\n' && !memchr(err, '\n', n - 1),
              "not one line: [%s]", err);
}

static void s_run_trial(const char *x)
{
    char arg[64];
    snprintf(arg, sizeof arg, "x=%s", x);
    char *argv[] = {s_cli, "run", s_file, arg, s_backend, NULL};
    xpt_run_result r = s_run(argv);
    cr_assert_eq(r.status, x[0] == '-' ? 1 : 0, "xp run: %s %s", r.out, r.err);
    xpt_run_result_free(&r);
}

static xpt_run_result s_reproduce(const char *id, const char *trial)
{
    char *argv[] = {s_cli,  "reproduce", (char *)id, (char *)trial,
                    s_file, s_backend,   NULL};
    return s_run(argv);
}

static xp_value *s_record(const char *id, int64_t trial)
{
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing(id, &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, trial);
    xp_experiment_destroy(&ex);
    return t;
}

static int64_t s_last_id(const char *id)
{
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing(id, &err);
    cr_assert_not_null(ex, "%s", err.message);
    int64_t last = xpt_last_id(ex);
    xp_experiment_destroy(&ex);
    return last;
}

TestSuite(reproduce, .init = s_setup, .fini = xpt_teardown, .timeout = 120);

Test(reproduce, a_deterministic_trial_reproduces)
{
    s_run_trial("3");
    xpt_run_result r = s_reproduce(ID, "1");
    char line[1024];
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert_str_eq(s_last_line(r.out, line),
                     "reproduced: trial 2 has the status, result and step "
                     "outputs of trial 1");
    cr_assert(strstr(r.out, "code: same"), "%s", r.out);
    xpt_run_result_free(&r);
    /* The re-run is a trial of its own, saying which one it re-ran, with
     * the same parameters and seed, and each step's output hash. */
    xp_value *a = s_record(ID, 1), *b = s_record(ID, 2);
    cr_assert_eq(xpt_get_int(b, "reproduces"), 1);
    cr_assert_null(xp_value_get(a, "reproduces"));
    cr_assert_eq(xpt_get_int(a, "seed"), xpt_get_int(b, "seed"));
    cr_assert(
        xp_value_equal(xpt_field(a, "parameters"), xpt_field(b, "parameters")));
    const xp_value *h = xpt_typed(a, "hashes", XP_TYPE_DOCUMENT);
    cr_assert_eq(strlen(xpt_get_str(h, "double")), 16);
    cr_assert_eq(strlen(xpt_get_str(h, "scaled")), 16);
    cr_assert(xp_value_equal(h, xpt_field(b, "hashes")));
    xp_value_destroy(&a);
    xp_value_destroy(&b);
    /* xp history --verbose says which trial a re-run reproduces. */
    char *argv[] = {s_cli,      "history", ID,        "--verbose",
                    "--format", "csv",     s_backend, NULL};
    r = s_run(argv);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    const char *header = strstr(r.out, "Reproduces");
    cr_assert_not_null(header, "%s", r.out);
    /* the last column: empty for trial 1, 1 for trial 2 */
    const char *row2 = strstr(r.out, "\n2,");
    cr_assert_not_null(row2, "%s", r.out);
    const char *end = strchr(row2 + 1, '\n');
    cr_assert(end && end > row2 + 2 && end[-1] == '1' && end[-2] == ',',
              "row of trial 2 does not end in ,1: %s", r.out);
    xpt_run_result_free(&r);
}

Test(reproduce, an_edited_code_file_names_its_step)
{
    s_run_trial("3");
    s_write("plus.py", "import sys\nprint(float(sys.argv[1]) + 2)\n");
    xpt_run_result r = s_reproduce(ID, "1");
    char line[1024];
    cr_assert_eq(r.status, 1, "%s %s", r.out, r.err);
    cr_assert_str_eq(
        s_last_line(r.out, line),
        "not reproduced: trial 2 differs from trial 1 in the result, step "
        "plus");
    cr_assert(strstr(r.out, "code: differs"), "%s", r.out);
    cr_assert(strstr(r.out, "+print(float(sys.argv[1]) + 2)"), "%s", r.out);
    xpt_run_result_free(&r);
}

/* A code change that leaves every output as it was still reproduces;
 * the report shows the change. */
Test(reproduce, a_code_change_with_the_same_outputs_reproduces)
{
    s_run_trial("3");
    s_write("plus.py", "import sys\n# a comment\nprint(float(sys.argv[1]) "
                       "+ 1)\n");
    xpt_run_result r = s_reproduce(ID, "1");
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "code: differs"), "%s", r.out);
    cr_assert(strstr(r.out, "+# a comment"), "%s", r.out);
    xpt_run_result_free(&r);
}

Test(reproduce, a_rebuilt_c_step_names_it_and_what_follows)
{
    s_run_trial("3");
    s_install_steps("XP_STEPS_V2");
    xpt_run_result r = s_reproduce(ID, "1");
    char line[1024];
    cr_assert_eq(r.status, 1, "%s %s", r.out, r.err);
    cr_assert_str_eq(
        s_last_line(r.out, line),
        "not reproduced: trial 2 differs from trial 1 in the result, steps "
        "scaled, plus");
    /* The step's code is the library's build id: it changed. */
    cr_assert(strstr(r.out, "code: differs"), "%s", r.out);
    cr_assert(strstr(r.out, "build id"), "%s", r.out);
    xpt_run_result_free(&r);
}

/* A trial that failed and fails the same way again has reproduced. */
Test(reproduce, a_failure_that_repeats_reproduces)
{
    s_run_trial("-1");
    xpt_run_result r = s_reproduce(ID, "1");
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    xp_value *b = s_record(ID, 2);
    cr_assert_str_eq(xpt_get_str(b, "status"), "failed");
    cr_assert_eq(xpt_get_int(b, "reproduces"), 1);
    xp_value_destroy(&b);
}

Test(reproduce, xp_run_file_reproduce_forms)
{
    s_run_trial("5");
    char *plain[] = {s_cli, "run", s_file, "--reproduce", "1", s_backend, NULL};
    xpt_run_result r = s_run(plain);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "reproduced: trial 2"), "%s", r.out);
    xpt_run_result_free(&r);
    char *named[] = {s_cli,     "run", s_file, "--reproduce=" ID ":1",
                     s_backend, NULL};
    r = s_run(named);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "reproduced: trial 3"), "%s", r.out);
    xpt_run_result_free(&r);
    cr_assert_eq(s_last_id(ID), 3);
}

/* The random example without --seed: a generated seed, recorded, gives
 * the same draws again. */
Test(reproduce, a_seeded_random_trial_reproduces)
{
    char prog[PATH_MAX], why[256];
    if (!xpt_example("random_experiment", prog, why))
        xpt_skip(why);
    char *first[] = {prog, "samples=1000", s_backend, NULL};
    xpt_run_result r = s_run(first);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "initialized with generated seed"), "%s", r.err);
    xpt_run_result_free(&r);
    char *via_xp[] = {s_cli, "reproduce", "random_pj", "1",
                      "--",  prog,        s_backend,   NULL};
    r = s_run(via_xp);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "reproduced: trial 2"), "%s", r.out);
    xpt_run_result_free(&r);
    char *script[] = {prog, "--reproduce", "random_pj:1", s_backend, NULL};
    r = s_run(script);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    char *bare[] = {prog, "--reproduce", "2", s_backend, NULL};
    r = s_run(bare);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    xp_value *a = s_record("random_pj", 1), *d = s_record("random_pj", 4);
    cr_assert(xp_value_equal(xpt_field(a, "result"), xpt_field(d, "result")));
    cr_assert_eq(xpt_get_int(d, "reproduces"), 2);
    xp_value_destroy(&a);
    xp_value_destroy(&d);
    /* Another seed draws otherwise: the comparison can fail. */
    char *other[] = {prog, "samples=1000", "--seed", "12345", s_backend, NULL};
    r = s_run(other);
    xpt_run_result_free(&r);
    a = s_record("random_pj", 1);
    d = s_record("random_pj", 5);
    cr_assert_not(
        xp_value_equal(xpt_field(a, "result"), xpt_field(d, "result")));
    xp_value_destroy(&a);
    xp_value_destroy(&d);
}

/* Bad arguments: exit status 2, one line on stderr, nothing recorded. */
Test(reproduce, bad_arguments_are_one_line_and_record_nothing)
{
    char prog[PATH_MAX], why[256];
    if (!xpt_example("random_experiment", prog, why))
        xpt_skip(why);
    s_run_trial("3");
    char *first[] = {prog, "samples=10", s_backend, NULL};
    xpt_run_result r = s_run(first);
    xpt_run_result_free(&r);
    char *cases[][9] = {
        {s_cli, "reproduce", NULL},
        {s_cli, "reproduce", ID, NULL},
        {s_cli, "reproduce", "bad id", "1", s_file, NULL},
        {s_cli, "reproduce", ID, "0", s_file, NULL},
        {s_cli, "reproduce", ID, "x", s_file, NULL},
        {s_cli, "reproduce", ID, "1", s_backend, NULL},
        {s_cli, "reproduce", ID, "9", s_file, s_backend, NULL},
        {s_cli, "reproduce", ID, "1", s_file, "--bogus", NULL},
        {s_cli, "reproduce", "other_pj", "1", s_file, s_backend, NULL},
        {s_cli, "reproduce", ID, "1", s_file, "--", prog, NULL},
        {s_cli, "reproduce", ID, "1", "--", NULL},
        {s_cli, "reproduce", ID, "1", "--", "/nonexistent/prog", NULL},
        {prog, "--reproduce", "1", "samples=3", s_backend, NULL},
        {prog, "--reproduce", "1", "--seed", "4", s_backend, NULL},
        {prog, "--reproduce", "other_pj:1", s_backend, NULL},
        {prog, "--reproduce", "0", s_backend, NULL},
        {prog, "--reproduce", "7", s_backend, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = s_run(cases[i]);
        cr_assert_eq(r.status, 2, "case %zu: status %d: %s %s", i, r.status,
                     r.out, r.err);
        s_one_line(r.err);
        cr_assert_str_eq(r.out, "", "case %zu", i);
        xpt_run_result_free(&r);
    }
    cr_assert_eq(s_last_id(ID), 1);
    cr_assert_eq(s_last_id("random_pj"), 1);
}

/* ---------------------------------------------------------------- remote */

static char s_endpoint[64], s_bin[2][PATH_MAX], s_worker_log[PATH_MAX];
static pid_t s_sched = -1, s_worker = -1;

static void s_start_worker(void)
{
    char *worker[] = {
        s_bin[1],         "--connect", s_endpoint, "--slots", "2",
        "--heartbeat-ms", "200",       "--plugin", s_file,    NULL};
    unlink(s_worker_log);
    s_worker = xpt_spawn(worker, xpt_dir, NULL, s_worker_log);
    xptr_wait_registered(s_worker_log);
}

static void s_remote_setup(void)
{
    s_setup();
    xptr_bin("XP_SCHEDULER_BIN", s_bin[0]);
    xptr_bin("XP_WORKER_BIN", s_bin[1]);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *sched[] = {s_bin[0], "--bind",         s_endpoint, "--backend",
                     xpt_dir,  "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(sched, xpt_dir, NULL, log);
    snprintf(s_worker_log, sizeof s_worker_log, "%s/worker.log", xpt_dir);
    s_start_worker();
}

static void s_remote_teardown(void)
{
    xptr_teardown(&s_worker, 1, &s_sched);
}

TestSuite(reproduce_remote, .init = s_remote_setup, .fini = s_remote_teardown,
          .timeout = 120);

Test(reproduce_remote, a_remote_trial_reproduces_through_the_scheduler)
{
    char *run[] = {s_cli,         "run",      s_file,    "x=2",
                   "--scheduler", s_endpoint, s_backend, NULL};
    xpt_run_result r = s_run(run);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    /* The file's code, on the scheduler's workers. */
    char *with_file[] = {s_cli,         "reproduce", ID,        "1", s_file,
                         "--scheduler", s_endpoint,  s_backend, NULL};
    r = s_run(with_file);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "reproduced: trial 2"), "%s", r.out);
    xpt_run_result_free(&r);
    xp_value *b = s_record(ID, 2);
    cr_assert_eq(xpt_get_int(b, "reproduces"), 1);
    /* It ran on the worker: where each step ran is recorded. */
    xpt_typed(xpt_field(b, "steps"), "plus", XP_TYPE_DOCUMENT);
    xp_value_destroy(&b);
}

/* Without a file or program, the workers' code runs it; the queued
 * record already says what it reproduces. */
Test(reproduce_remote, the_queued_record_keeps_reproduces)
{
    char *run[] = {s_cli,         "run",      s_file,    "x=2",
                   "--scheduler", s_endpoint, s_backend, NULL};
    xpt_run_result r = s_run(run);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    cr_assert_eq(xptr_stop(&s_worker), 0);
    char out[PATH_MAX], err[PATH_MAX];
    snprintf(out, sizeof out, "%s/reproduce.out", xpt_dir);
    snprintf(err, sizeof err, "%s/reproduce.err", xpt_dir);
    char *again[] = {s_cli,         "reproduce", ID,        "1",
                     "--scheduler", s_endpoint,  s_backend, NULL};
    pid_t pid = xpt_spawn(again, xpt_dir, out, err);
    bool queued = false;
    for (double end = xpt_now() + 20; !queued && xpt_now() < end;
         xpt_sleep(0.05)) {
        xp_error_t e;
        xp_experiment *ex = xpt_open_existing(ID, &e);
        xp_value *t = NULL;
        if (ex && xp_trial_get(ex, 2, &t, &e) == 0) {
            cr_assert_str_eq(xpt_get_str(t, "status"), "queued");
            cr_assert_eq(xpt_get_int(t, "reproduces"), 1);
            queued = true;
        }
        xp_value_destroy(&t);
        xp_experiment_destroy(&ex);
    }
    cr_assert(queued, "trial 2 was never recorded as queued");
    s_start_worker();
    int status = xpt_wait(pid);
    char *text = xpt_slurp(out), *errs = xpt_slurp(err);
    cr_assert_eq(status, 0, "%s %s", text, errs);
    cr_assert(strstr(text, "reproduced: trial 2"), "%s", text);
    free(text);
    free(errs);
    xp_value *b = s_record(ID, 2);
    cr_assert_str_eq(xpt_get_str(b, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(b, "reproduces"), 1);
    xp_value_destroy(&b);
}
