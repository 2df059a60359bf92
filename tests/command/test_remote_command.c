/* test_remote_command.c — an experiment file on a remote worker: xp-worker
 * loads the file (--plugin FILE.yaml) and runs its command steps; trials
 * come from xpsubmit and from `xp run FILE --scheduler`, and are recorded
 * with their results, metrics and command logs as local ones are. */
#include "../remote/remote.h"

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[1];
static int s_n_workers;
static char s_bin[4][PATH_MAX]; /* scheduler, worker, xpsubmit, xp */
static char s_file[PATH_MAX];

static const char s_yaml[] =
    "experiment: remote_cmd\n"
    "parameters:\n"
    "  x: {type: float}\n"
    "steps:\n"
    "  half:\n"
    "    shell: |\n"
    "      echo '{{\"name\": \"seen\", \"value\": 1}}' >> "
    "\"$XP_METRICS_FILE\"\n"
    "      case {x} in 1000*) yes xp | head -c 300000 >&2;; esac\n"
    "      awk -v x={x} 'BEGIN {{ if (x < 0) exit 3; print x / 2 }}'\n"
    "  square:\n"
    "    run: [python3, square.py, '{half}']\n"
    "    code: [square.py]\n";

static void s_write(const char *name, const char *text, char *path)
{
    char buf[PATH_MAX];
    if (!path)
        path = buf;
    snprintf(path, PATH_MAX, "%s/%s", xpt_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_setup(void)
{
    xpt_setup();
    xptr_bin("XP_SCHEDULER_BIN", s_bin[0]);
    xptr_bin("XP_WORKER_BIN", s_bin[1]);
    xptr_bin("XP_XPSUBMIT_BIN", s_bin[2]);
    xptr_bin("XP_CLI", s_bin[3]);
    s_write("square.py", "import sys\nv = float(sys.argv[1])\nprint(v * v)\n",
            NULL);
    s_write("remote_cmd.yaml", s_yaml, s_file);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *sched[] = {s_bin[0], "--bind",         s_endpoint, "--backend",
                     xpt_dir,  "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(sched, xpt_dir, NULL, log);
    snprintf(log, sizeof log, "%s/worker.log", xpt_dir);
    char *worker[] = {
        s_bin[1],         "--connect", s_endpoint, "--slots", "2",
        "--heartbeat-ms", "200",       "--plugin", s_file,    NULL};
    s_n_workers = 0;
    s_workers[s_n_workers++] = xpt_spawn(worker, xpt_dir, NULL, log);
    xptr_wait_registered(log);
}

static void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

TestSuite(remote_command, .init = s_setup, .fini = s_teardown, .timeout = 90);

Test(remote_command, xpsubmit_sweep_runs_the_commands_on_the_worker)
{
    char *argv[] = {s_bin[2],  "-s",     s_endpoint, "remote_cmd",
                    "x=2,4,6", "--wait", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "xpsubmit exited %d: %s %s", r.status, r.out,
                 r.err);
    xpt_run_result_free(&r);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("remote_cmd", &err);
    cr_assert_not_null(ex, "%s", err.message);
    double expected[] = {1, 4, 9};
    for (int64_t id = 1; id <= 3; id++) {
        xp_value *t = xpt_trial(ex, id);
        char *json = xpt_json(t);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "%s", json);
        double x = xp_as_double(xp_value_get(xpt_field(t, "parameters"), "x"));
        cr_assert_float_eq(xp_as_double(xpt_field(t, "result")),
                           expected[(int)(x / 2) - 1], 1e-9, "%s", json);
        free(json);
        xp_value_destroy(&t);
        xp_series *s = NULL;
        cr_assert_eq(
            xp_metric_series(ex, "seen", id, INT64_MIN, INT64_MAX, 0, &s, &err),
            0, "%s", err.message);
        cr_assert_eq(s->n, 1);
        xp_series_destroy(&s);
    }
    xp_experiment_destroy(&ex);
}

Test(remote_command, xp_run_with_scheduler_uses_the_same_code)
{
    char *argv[] = {s_bin[3],      "run",      s_file, "x=10",
                    "--scheduler", s_endpoint, NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "xp run exited %d: %s %s", r.status, r.out,
                 r.err);
    cr_assert_str_eq(r.out, "25.0\n", "%s", r.err);
    xpt_run_result_free(&r);
}

Test(remote_command, a_failing_command_fails_the_remote_trial)
{
    char *argv[] = {s_bin[2], "-s",     s_endpoint, "remote_cmd",
                    "x=-2",   "--wait", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    xpt_run_result_free(&r);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("remote_cmd", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed");
    cr_assert_str_eq(xpt_get_str(t, "description"), "half: exit status 3");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* An edited code file is other code: no worker has it, the trial waits. */
Test(remote_command, an_edited_code_file_does_not_run_on_the_old_worker)
{
    s_write("square.py", "import sys\nprint(float(sys.argv[1]) ** 2)\n", NULL);
    char err_path[PATH_MAX];
    snprintf(err_path, sizeof err_path, "%s/run.err", xpt_dir);
    char *argv[] = {s_bin[3],      "run",      s_file, "x=10",
                    "--scheduler", s_endpoint, NULL};
    pid_t pid = xpt_spawn(argv, xpt_dir, NULL, err_path);
    bool queued = xptr_wait_log(err_path, "is queued", 20);
    char *text = xpt_slurp(err_path);
    xptr_stop(&pid);
    cr_assert(queued, "xp run did not wait: %s", text ? text : "");
    free(text);
}

/* The log of a command step run by the worker comes back in its RESULT
 * and is stored as an in-process run stores it: `xp log` shows it. */
Test(remote_command, the_worker_sends_the_command_logs_back)
{
    char *argv[] = {s_bin[2], "-s",     s_endpoint, "remote_cmd",
                    "x=2,-2", "--wait", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    xpt_run_result_free(&r);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("remote_cmd", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *log = NULL;
    cr_assert_eq(xp_step_log(ex, 1, "half", &log, &err), 0, "%s", err.message);
    cr_assert_eq(xp_as_int64(xp_value_get(log, "status")), 0);
    cr_assert_str_eq(xp_as_string(xp_value_get(log, "stdout"), NULL), "1\n");
    xp_value_destroy(&log);
    cr_assert_eq(xp_step_log(ex, 1, "square", &log, &err), 0, "%s",
                 err.message);
    cr_assert_str_eq(xp_as_string(xp_value_get(log, "stdout"), NULL), "1.0\n");
    xp_value_destroy(&log);
    /* A failed step's log comes back too. */
    cr_assert_eq(xp_step_log(ex, 2, "half", &log, &err), 0, "%s", err.message);
    cr_assert_eq(xp_as_int64(xp_value_get(log, "status")), 3);
    xp_value_destroy(&log);
    xp_experiment_destroy(&ex);
    char backend[PATH_MAX + 16];
    snprintf(backend, sizeof backend, "--backend=%s", xpt_dir);
    char *show[] = {s_bin[3], "log", "remote_cmd", "1", backend, NULL};
    r = xpt_run(show, xpt_dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "== half: exit status 0"), "%s", r.out);
    cr_assert(strstr(r.out, "== square: exit status 0"), "%s", r.out);
    xpt_run_result_free(&r);
}

/* A remote log is bounded as a local one is: the tail of each stream. */
Test(remote_command, a_remote_log_keeps_the_tail_only)
{
    char *argv[] = {s_bin[2], "-s",     s_endpoint, "remote_cmd",
                    "x=1000", "--wait", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("remote_cmd", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *log = NULL;
    cr_assert_eq(xp_step_log(ex, 1, "half", &log, &err), 0, "%s", err.message);
    cr_assert_eq(xp_as_int64(xp_value_get(log, "stderr_bytes")), 300000);
    size_t len = 0;
    const char *tail = xp_as_string(xp_value_get(log, "stderr"), &len);
    cr_assert_not_null(tail);
    cr_assert_leq(len, 64 * 1024);
    cr_assert_geq(len, 60 * 1024);
    xp_value_destroy(&log);
    xp_experiment_destroy(&ex);
}

/* xpsubmit FILE.yaml reads the experiment's id and parameter types from
 * the file: a value of the wrong type is one line naming the parameter
 * and the value, and nothing reaches the scheduler. */
Test(remote_command, xpsubmit_file_checks_parameter_types)
{
    char *bad[] = {s_bin[2], "-s", s_endpoint, s_file, "x=1,abc", NULL};
    xpt_run_result r = xpt_run(bad, xpt_dir);
    cr_assert_eq(r.status, 2, "%s %s", r.out, r.err);
    cr_assert(strstr(r.err, "parameter 'x': expected float, got string"), "%s",
              r.err);
    cr_assert(strstr(r.err, "\"abc\""), "%s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "%s", r.err);
    cr_assert_str_eq(r.out, "");
    xpt_run_result_free(&r);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("remote_cmd", &err);
    cr_assert_null(ex, "a trial was recorded");
    /* Integers for a float parameter are floats, as with `xp run`. */
    char *good[] = {s_bin[2], "-s",     s_endpoint, s_file,
                    "x=2,4",  "--wait", NULL};
    r = xpt_run(good, xpt_dir);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    xpt_run_result_free(&r);
    ex = xpt_open_existing("remote_cmd", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, 2);
    const xp_value *x = xp_value_get(xpt_field(t, "parameters"), "x");
    cr_assert_eq(xp_value_type(x), XP_TYPE_DOUBLE);
    cr_assert_float_eq(xp_as_double(xpt_field(t, "result")), 4, 1e-9);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(remote_command, xpsubmit_bad_file_is_one_line)
{
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/none.yaml", xpt_dir);
    char *argv[] = {s_bin[2], "-s", s_endpoint, missing, "x=1", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 2, "%s %s", r.out, r.err);
    cr_assert(strstr(r.err, "none.yaml"), "%s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "%s", r.err);
    xpt_run_result_free(&r);
}
