/* test_cli.c — the command-line tools as real processes, through the
 * public API only: xpsubmit refuses what it cannot submit with one line
 * and exit status 2 (ranges it cannot count, sweeps over the limit, a
 * parameter given twice, bad seeds) and submits exact ranges at the ends
 * of int64 to a real scheduler; xp history and xp params show stored
 * control characters as escapes in tables and exactly in CSV and JSON. */
#include "../remote/remote.h"

static pid_t s_sched = -1, s_worker = -1;

static void s_setup(void)
{
    xpt_setup();
    unsetenv("XP_SCHEDULER");
    unsetenv("XP_KEY");
    unsetenv("XP_SERVER_KEY");
}

/* Stops the daemons a test started (none: nothing to do). */
static void s_teardown(void)
{
    xptr_teardown(&s_worker, 1, &s_sched);
}

TestSuite(cli, .init = s_setup, .fini = s_teardown, .timeout = 60);

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})

/* Runs xpsubmit with args (NULL-terminated, at most 12) under timeout(1),
 * so a sweep it never stops expanding fails the test instead of eating
 * the machine's memory. */
static xpt_run_result s_xpsubmit(char *const *args)
{
    char bin[PATH_MAX];
    xptr_bin("XP_XPSUBMIT_BIN", bin);
    if (access("/usr/bin/timeout", X_OK) != 0)
        xpt_skip("/usr/bin/timeout is missing");
    char *argv[16] = {"/usr/bin/timeout", "10", bin};
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return xpt_run(argv, xpt_dir);
}

/* args joined by spaces, for failure messages (static buffer). */
static const char *s_describe(char *const *args)
{
    static char buf[1024];
    buf[0] = '\0';
    for (size_t i = 0; args[i]; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s",
                 i ? " " : "", args[i]);
    return buf;
}

/* Asserts that xpsubmit args exits 2 at once with one line on stderr that
 * contains `says`, and prints nothing on stdout. */
static void s_assert_refused(char *const *args, const char *says)
{
    xpt_run_result r = s_xpsubmit(args);
    const char *what = s_describe(args);
    cr_assert_eq(r.status, 2,
                 "xpsubmit %s: exit %d (124: still running "
                 "after 10 s), want 2; stderr: %s",
                 what, r.status, r.err);
    cr_assert_eq(xpt_count_lines(r.err), 1, "xpsubmit %s: stderr '%s'", what,
                 r.err);
    cr_assert_not_null(strstr(r.err, says),
                       "xpsubmit %s: stderr '%s' does not say '%s'", what,
                       r.err, says);
    cr_assert_str_empty(r.out, "xpsubmit %s: stdout '%s'", what, r.out);
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- ranges */

Test(cli, xpsubmit_refuses_ranges_it_cannot_count)
{
    /* (to - from) overflowed int64 for the first two, so the 1,000,000
     * check let them through to a loop without end. */
    const char *too_many[] = {
        "a=range(-9223372036854775808,9223372036854775807)",
        "a=range(9223372036854775807,-9223372036854775808,-1)",
        "a=range(-9223372036854775808,9223372036854775807,2)",
        "a=range(0,1000001)",
    };
    for (size_t i = 0; i < sizeof too_many / sizeof *too_many; i++)
        s_assert_refused(ARGS("exp", (char *)too_many[i]), "1000000");

    const char *malformed[] = {
        "a=range(0,10,0)",
        "a=range(5,0)",
        "a=range(0,5,-1)",
        "a=range(0,99999999999999999999)",
        "a=range(0,-99999999999999999999,-1)",
        "a=range(0,10",
        "a=range(0,10))",
        "a=range(x,10)",
        "a=range(0,10,2,3)",
        "a=range()",
        "a=range(1)",
        "a=range(0,,10)",
        "a=range(0,10,)",
        "a=range(1.5,3)",
        "a=range(0,10)x",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
        s_assert_refused(ARGS("exp", (char *)malformed[i]), malformed[i] + 2);
}

Test(cli, xpsubmit_refuses_a_sweep_over_the_limit)
{
    s_assert_refused(ARGS("exp", "a=range(0,1000)", "b=range(0,1001)"),
                     "1000000");
    /* 1000^7 trials: a product that wraps 64 bits if multiplied first. */
    char *axes[8];
    char text[7][32];
    for (int i = 0; i < 7; i++) {
        snprintf(text[i], sizeof text[i], "%c=range(0,1000)", 'a' + i);
        axes[i] = text[i];
    }
    axes[7] = NULL;
    char *args[9] = {"exp"};
    memcpy(args + 1, axes, sizeof axes);
    s_assert_refused(args, "1000000");
    s_assert_refused(ARGS("exp", "a=1,2", "b=range(0,500001)"), "1000000");
}

Test(cli, xpsubmit_refuses_a_parameter_given_twice)
{
    /* It used to sweep a over 1,1,2,2 (each trial's last a wins). */
    s_assert_refused(ARGS("exp", "a=1,2", "a=3,4"),
                     "parameter 'a' is given twice");
    s_assert_refused(ARGS("exp", "a=1", "b=2", "a=range(0,2)"),
                     "parameter 'a' is given twice");
}

Test(cli, xpsubmit_refuses_seeds_as_script_mode_does)
{
    /* strtoll clamped 99999999999999999999 to INT64_MAX and took "+5". */
    const char *bad[] = {"99999999999999999999",
                         "18446744073709551615",
                         "9223372036854775808",
                         "-1",
                         "+5",
                         " 5",
                         "abc",
                         "1.5",
                         "5x",
                         "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char says[128];
        snprintf(says, sizeof says,
                 "invalid --seed '%s': expected an integer from 0 to "
                 "9223372036854775807",
                 bad[i]);
        s_assert_refused(ARGS("exp", "a=1", "--seed", (char *)bad[i]), says);
    }
    s_assert_refused(ARGS("exp", "a=1", "--seed", ""), "--seed needs a value");
    s_assert_refused(ARGS("exp", "a=1", "--seed"), "--seed needs a value");
    /* In range: past the arguments, to the missing scheduler. */
    xpt_run_result r = s_xpsubmit(ARGS("exp", "a=1", "--seed", "0"));
    cr_assert_eq(r.status, 1, "--seed 0: exit %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, "no scheduler"), "stderr: %s", r.err);
    xpt_run_result_free(&r);
}

/* Starts an xp-scheduler on a free port with its backend in the test's
 * directory and one xp-worker with simple_experiment.so; the endpoint
 * into endpoint[64]. */
static void s_start_cluster(char *endpoint)
{
    char sched[PATH_MAX], worker[PATH_MAX], so[PATH_MAX], why[256];
    char slog[PATH_MAX], wlog[PATH_MAX];
    xptr_bin("XP_SCHEDULER_BIN", sched);
    xptr_bin("XP_WORKER_BIN", worker);
    if (!xpt_example("simple_experiment.so", so, why))
        xpt_skip(why);
    snprintf(endpoint, 64, "tcp://127.0.0.1:%d", xptr_free_port());
    snprintf(slog, sizeof slog, "%s/scheduler.log", xpt_dir);
    snprintf(wlog, sizeof wlog, "%s/worker.log", xpt_dir);
    s_sched = xpt_spawn(ARGS(sched, "--bind", endpoint, "--backend", xpt_dir,
                             "--heartbeat-ms", "200"),
                        xpt_dir, NULL, slog);
    s_worker = xpt_spawn(ARGS(worker, "--connect", endpoint, "--slots", "2",
                              "--heartbeat-ms", "200", "--plugin", so),
                         xpt_dir, NULL, wlog);
    xpt_sleep(0.5); /* connect and register */
}

/* Submits simple_experiment_pj with parameter spec a (and b) and --wait;
 * asserts success and that the new trials have exactly the values want[n]
 * of a, in order. */
static void s_assert_submits(const char *endpoint, const char *a, const char *b,
                             const int64_t *want, size_t n)
{
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("simple_experiment_pj", &err);
    int64_t first = ex ? xpt_last_id(ex) + 1 : 1;
    xp_experiment_destroy(&ex);
    xpt_run_result r = s_xpsubmit(
        ARGS("-s", (char *)endpoint, "simple_experiment_pj", (char *)a,
             (char *)b, "--seed", "9223372036854775807", "--wait"));
    cr_assert_eq(r.status, 0, "xpsubmit %s %s: exit %d: %s %s", a, b, r.status,
                 r.out, r.err);
    xpt_run_result_free(&r);
    ex = xpt_open_existing("simple_experiment_pj", &err);
    cr_assert_not_null(ex, "open: %s", err.message);
    cr_assert_eq(xpt_last_id(ex), first + (int64_t)n - 1, "%s: trials %lld", a,
                 (long long)(xpt_last_id(ex) - first + 1));
    for (size_t i = 0; i < n; i++) {
        xp_value *t = xpt_trial(ex, first + (int64_t)i);
        const xp_value *p = xpt_field(t, "parameters");
        cr_assert_eq(xpt_get_int(p, "a"), want[i], "%s: value %zu is %lld", a,
                     i, (long long)xpt_get_int(p, "a"));
        cr_assert_eq(xpt_get_int(t, "seed"), INT64_MAX, "seed %lld",
                     (long long)xpt_get_int(t, "seed"));
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
        xp_value_destroy(&t);
    }
    xp_experiment_destroy(&ex);
}

Test(cli, xpsubmit_submits_ranges_at_the_ends_of_int64)
{
    char endpoint[64];
    s_start_cluster(endpoint);
    /* The step computes a + b + 1: b keeps it inside int64. */
    const int64_t top[] = {INT64_MAX - 7, INT64_MAX - 2};
    s_assert_submits(endpoint,
                     "a=range(9223372036854775800,9223372036854775807,5)",
                     "b=-1", top, 2);
    const int64_t quarters[] = {INT64_MIN, INT64_MIN / 2, 0, INT64_MAX / 2 + 1};
    s_assert_submits(endpoint,
                     "a=range(-9223372036854775808,9223372036854775807,"
                     "4611686018427387904)",
                     "b=0", quarters, 4);
    const int64_t down[] = {INT64_MAX, INT64_MAX - 5};
    s_assert_submits(endpoint,
                     "a=range(9223372036854775807,9223372036854775797,-5)",
                     "b=-1", down, 2);
}

/* ---------------------------------------------------------------- xp */

/* ESC sequences (colour, clear screen), a newline, a tab, DEL, the C1
 * CSI (U+009B), CR and BEL: what a stored value may hold. */
static const char CONTROLS[] = "red\x1b[31mX\x1b[0m\nnext\tcol\x7f\xc2\x9b"
                               "2J\r\x07"
                               "end";
static const char CONTROLS_SHOWN[] = "red\\u001b[31mX\\u001b[0m\\nnext\\tcol"
                                     "\\u007f\\u009b2J\\r\\u0007end";

static int s_echo(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

/* One trial of experiment "controls" in the test's backend whose
 * parameter p, and so its result, is text. */
static void s_record(const char *text)
{
    xp_experiment *ex = xpt_open("controls");
    xp_node *p = xp_parameter(ex, "p");
    xp_result(xp_step_add(ex, "echo", s_echo, 1, &p, __FILE__, __LINE__));
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(xp_set_param_string(ex, "p", text, &err), 0, "set: %s",
                 err.message);
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute: %s",
                 err.message);
    xp_experiment_destroy(&ex);
}

/* Runs `xp args... --backend <test dir>`. Caller frees. */
static xpt_run_result s_xp_any(char *const *args)
{
    char bin[PATH_MAX];
    xptr_bin("XP_CLI_BIN", bin);
    char *argv[16] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 13; i++)
        argv[n++] = args[i];
    argv[n++] = "--backend";
    argv[n++] = xpt_dir;
    argv[n] = NULL;
    return xpt_run(argv, xpt_dir);
}

/* s_xp_any, asserting exit 0. */
static xpt_run_result s_xp(char *const *args)
{
    xpt_run_result r = s_xp_any(args);
    cr_assert_eq(r.status, 0, "xp %s: exit %d: %s", s_describe(args), r.status,
                 r.err);
    return r;
}

/* Asserts that no control character but the line ends reaches the
 * terminal: C0, DEL and C1 (UTF-8 C2 80..C2 9F). */
static void s_assert_no_raw_controls(const char *out)
{
    for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
        bool c1 = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
        cr_assert(!((*p < 0x20 && *p != '\n') || *p == 0x7f || c1),
                  "raw control 0x%02x at offset %zu of '%s'", *p,
                  (size_t)((const char *)p - out), out);
    }
}

Test(cli, history_table_shows_control_characters_as_escapes)
{
    s_record(CONTROLS);
    xpt_run_result r = s_xp(ARGS("history", "controls"));
    s_assert_no_raw_controls(r.out);
    cr_assert_eq(xpt_count_lines(r.out), 2, "one line per trial: '%s'", r.out);
    const char *row = strchr(r.out, '\n') + 1;
    const char *param = strstr(row, CONTROLS_SHOWN);
    cr_assert_not_null(param, "parameter not shown escaped: '%s'", r.out);
    /* Widths count the escapes: the Result column starts where its
     * header does. */
    const char *result = strstr(param + 1, CONTROLS_SHOWN);
    cr_assert_not_null(result, "result not shown escaped: '%s'", r.out);
    cr_assert_eq(strstr(r.out, "Result") - r.out, result - row,
                 "Result column misaligned: '%s'", r.out);
    xpt_run_result_free(&r);
}

Test(cli, history_csv_and_json_keep_control_characters_exactly)
{
    s_record(CONTROLS);
    xpt_run_result r = s_xp(ARGS("history", "controls", "--format", "csv"));
    char quoted[sizeof CONTROLS + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", CONTROLS);
    cr_assert_not_null(strstr(r.out, quoted), "CSV: '%s'", r.out);
    xpt_run_result_free(&r);

    r = s_xp(ARGS("history", "controls", "--format", "json"));
    xp_value *h = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_from_json(h, r.out, &err), 0, "JSON: %s: '%s'",
                 err.message, r.out);
    const xp_value *params = xpt_field(xp_value_at(h, 0), "parameters");
    cr_assert_str_eq(xpt_get_str(params, "p"), CONTROLS, "JSON: '%s'", r.out);
    xp_value_destroy(&h);
    xpt_run_result_free(&r);
}

Test(cli, params_show_control_characters_as_a_literal_that_reads_back)
{
    s_record(CONTROLS);
    xpt_run_result r = s_xp(ARGS("params", "controls", "1"));
    s_assert_no_raw_controls(r.out);
    cr_assert_eq(xpt_count_lines(r.out), 1, "one line: '%s'", r.out);
    cr_assert_eq(strncmp(r.out, "p=", 2), 0, "'%s'", r.out);
    r.out[strcspn(r.out, "\n")] = '\0';
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_parse_literal(v, r.out + 2, &err), 0,
                 "'%s' does not read back: %s", r.out, err.message);
    cr_assert_str_eq(xp_as_string(v, NULL), CONTROLS,
                     "'%s' reads back as "
                     "another value",
                     r.out);
    xp_value_destroy(&v);
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- graph */

static void s_assert_has(const char *text, const char *part)
{
    cr_assert_not_null(strstr(text, part), "no '%s' in:\n%s", part, text);
}

Test(cli, graph_shows_the_steps_as_dot)
{
    s_record("x");
    xpt_run_result r = s_xp(ARGS("graph", "controls"));
    s_assert_has(r.out, "digraph \"controls\" {");
    s_assert_has(r.out, "\"p\" [shape=ellipse];");
    s_assert_has(r.out, "\"echo\" [shape=box, style=\"bold\"];");
    s_assert_has(r.out, "\"p\" -> \"echo\";");
    cr_assert_null(strstr(r.out, "fillcolor"), "no trial, no status: %s",
                   r.out);
    xpt_run_result_free(&r);

    r = s_xp(ARGS("graph", "controls", "1", "--format", "dot"));
    s_assert_has(r.out, "label=\"trial 1: succeeded\"");
    s_assert_has(r.out, "\"echo\" [shape=box, style=\"filled,bold\", "
                        "fillcolor=palegreen];");
    xpt_run_result_free(&r);

    r = s_xp_any(ARGS("graph", "controls", "2"));
    cr_assert_eq(r.status, 1, "trial 2: exit %d", r.status);
    cr_assert_eq(xpt_count_lines(r.err), 1, "stderr: %s", r.err);
    xpt_run_result_free(&r);
    r = s_xp_any(ARGS("graph", "controls", "--format", "json"));
    cr_assert_eq(r.status, 2, "--format json: exit %d", r.status);
    xpt_run_result_free(&r);
}

Test(cli, graph_renders_svg)
{
    s_record("x");
    xpt_run_result r =
        s_xp_any(ARGS("graph", "controls", "1", "--format", "svg"));
    if (r.status != 0 && strstr(r.err, "SVG needs Graphviz")) {
        char why[512];
        snprintf(why, sizeof why, "neither libgvc nor dot: %s", r.err);
        xpt_run_result_free(&r);
        xpt_skip(why);
    }
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    s_assert_has(r.out, "<svg");
    s_assert_has(r.out, "</svg>");
    s_assert_has(r.out, ">echo</text>");
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- history
 * queries */

static int s_square(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) * xp_as_int64(in[0]));
}

/* Experiment "paged": trials 1..10 with k = id and result k * k. */
static void s_record_paged(void)
{
    xp_experiment *ex = xpt_open("paged");
    xp_node *k = xp_parameter(ex, "k");
    xp_result(xp_step_add(ex, "square", s_square, 1, &k, __FILE__, __LINE__));
    xp_error_t err = {0};
    for (int i = 1; i <= 10; i++) {
        cr_assert_eq(xp_set_param_int64(ex, "k", i, &err), 0, "%s",
                     err.message);
        cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "%s",
                     err.message);
    }
    xp_experiment_destroy(&ex);
}

Test(cli, history_filter_sort_limit_offset)
{
    s_record_paged();
    xpt_run_result r =
        s_xp(ARGS("history", "paged", "--filter", "k > 3 and k != 7", "--sort",
                  "-result", "--limit", "3", "--offset=1", "--format", "csv"));
    /* k in 4..10 without 7, by result descending: 10 9 8 6 5 4 */
    cr_assert_eq(xpt_count_lines(r.out), 4, "header and 3 rows: '%s'", r.out);
    const char *row = r.out;
    static const char *const ids[] = {"9,", "8,", "6,"};
    for (int i = 0; i < 3; i++) {
        row = strchr(row, '\n') + 1;
        cr_assert_eq(strncmp(row, ids[i], 2), 0, "row %d: '%s'", i, r.out);
    }
    cr_assert_str_eq(r.err, "xp history: 3 of 6 matching trials\n");
    xpt_run_result_free(&r);

    /* JSON stays one array; a whole match says nothing on stderr. */
    r = s_xp(ARGS("history", "paged", "--filter", "result >= 81", "--format",
                  "json"));
    xp_value *h = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_from_json(h, r.out, &err), 0, "%s: '%s'", err.message,
                 r.out);
    cr_assert_eq(xp_value_count(h), 2, "'%s'", r.out);
    cr_assert_eq(xpt_get_int(xp_value_at(h, 0), "trial_id"), 9);
    cr_assert_eq(xpt_get_int(xp_value_at(h, 1), "trial_id"), 10);
    cr_assert_str_empty(r.err, "stderr '%s'", r.err);
    xp_value_destroy(&h);
    xpt_run_result_free(&r);
}

Test(cli, history_refuses_a_bad_filter_with_one_line)
{
    s_record_paged();
    char bin[PATH_MAX];
    xptr_bin("XP_CLI_BIN", bin);
    static const char *const bad[][2] = {
        {"--filter", "k >"},
        {"--filter", "k == 1 and (k < 3"},
        {"--sort", "k,,result"},
        {"--limit", "-1"},
    };
    static const char *const says[] = {
        "xp history: filter: column 4: expected a value after '>'\n",
        ("xp history: filter: column 18: expected ')', 'and' or 'or', found "
         "the end\n"),
        "xp history: sort: column 3: expected a field name\n",
        "xp history: --limit needs a whole number >= 0, not '-1'\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *argv[] = {bin,
                        "history",
                        "paged",
                        (char *)bad[i][0],
                        (char *)bad[i][1],
                        "--backend",
                        xpt_dir,
                        NULL};
        xpt_run_result r = xpt_run(argv, xpt_dir);
        cr_assert_eq(r.status, 2, "%s %s: exit %d", bad[i][0], bad[i][1],
                     r.status);
        cr_assert_str_empty(r.out, "stdout '%s'", r.out);
        cr_assert_eq(strncmp(r.err, says[i], strlen(says[i])), 0,
                     "%s %s: stderr '%s'", bad[i][0], bad[i][1], r.err);
        if (i < 3)
            cr_assert_eq(xpt_count_lines(r.err), 1, "stderr '%s'", r.err);
        xpt_run_result_free(&r);
    }
}
