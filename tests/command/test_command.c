/* test_command.c — command steps and experiment files, through the public
 * API: steps in sh, awk and python3 with parameters and upstream files,
 * outputs persisted and read by a C step (in-process and from a library),
 * metrics, failures, timeouts, bounded output, hostile arguments, code
 * edits; each recording test on local, Redis (XP_TEST_REDIS_URI) and
 * MongoDB (XP_TEST_MONGODB_URI). */
#include "../backend_fixture.h"

#include <math.h>

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
    snprintf(s_id, sizeof s_id, "cmd_%d", (int)getpid());
    xpt_backend_pick(kind, s_backend, sizeof s_backend);
}

#define ON_EVERY_BACKEND(name, seconds)                                        \
    XPT_ON_EVERY_BACKEND(every, name, seconds, s_use, s_fini)

/* ---------------------------------------------------------------- helpers */

/* Writes text to xpt_dir/name; the path into path. */
static void s_write(const char *name, const char *text, char *path)
{
    char buf[PATH_MAX];
    if (!path)
        path = buf;
    snprintf(path, PATH_MAX, "%s/%s", xpt_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Writes the experiment file: "experiment: <this test's id>\n" + body. */
static void s_file(const char *body, char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    fprintf(m, "experiment: %s\n%s", s_id, body);
    fclose(m);
    s_write("experiment.yaml", text, path);
    free(text);
}

static xp_definition *s_load(const char *path)
{
    xp_definition *d = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_definition_load(&d, path, &err), 0, "load: %s",
                 err.message);
    return d;
}

/* Opens the experiment of the test on its backend and defines d on it,
 * the file's result as result. */
static xp_experiment *s_open_def(const xp_definition *d, bool mark_result)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.threads = 2;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, xp_definition_id(d), &o, &err), 0,
                 "%s: open: %s", xpt_kind_name[s_kind], err.message);
    xp_node *r = xp_definition_apply(d, ex);
    if (!r) {
        xp_experiment_check(ex, &err);
        cr_assert_fail("definition: %s", err.message);
    }
    if (mark_result) {
        cr_assert_not_null(xp_result(r));
        cr_assert_eq(xp_experiment_check(ex, &err), 0, "check: %s",
                     err.message);
    }
    return ex;
}

/* Runs one trial with the parameter literals given as "name=value"
 * (NULL-terminated); returns xp_compute's status, the id into *id. */
static int s_compute(xp_experiment *ex, const char *const *params,
                     xp_value **result, int64_t *id, xp_error_t *err)
{
    xp_value *p = xp_value_new();
    xp_set_document(p);
    for (size_t i = 0; params && params[i]; i++) {
        const char *eq = strchr(params[i], '=');
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - params[i]), params[i]);
        xp_error_t e;
        cr_assert_eq(
            xp_value_parse_literal(xp_document_set(p, name), eq + 1, &e), 0);
    }
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = p;
    o.has_seed = true;
    o.seed = 7;
    int rc = xp_compute(ex, &o, result, id, err);
    xp_value_destroy(&p);
    return rc;
}

static xp_value *s_log_of(xp_experiment *ex, int64_t trial, const char *step)
{
    xp_value *log = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_step_log(ex, trial, step, &log, &err), 0,
                 "%s: log of %s: %s", xpt_kind_name[s_kind], step, err.message);
    return log;
}

/* ---------------------------------------------------------------- C steps */

/* Data of produced file name in a step's output. */
static const char *file_data(const xp_value *out, const char *name, size_t *len)
{
    const xp_value *files = xp_value_get(out, "files");
    for (size_t i = 0; i < xp_value_count(files); i++) {
        const xp_value *f = xp_value_at(files, i);
        const char *n = xp_as_string(xp_value_get(f, "name"), NULL);
        if (n && strcmp(n, name) == 0)
            return xp_as_blob(xp_value_get(f, "data"), len);
    }
    return NULL;
}

/* Reads the sh step's produced file and the awk step's count. */
static int check_files(xp_step *st, const xp_value *const *in, xp_value *out)
{
    size_t len = 0;
    const char *data = file_data(in[0], "data.txt", &len);
    if (!data)
        return xp_step_fail(st, "no data.txt in %s",
                            xp_type_name(xp_value_type(in[0])));
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    xp_set_document(out);
    xp_set_int64(xp_document_set(out, "c_lines"), lines);
    xp_set_value(xp_document_set(out, "awk"), in[1]);
    xp_set_value(xp_document_set(out, "python"), in[2]);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static const char s_pipeline[] =
    "parameters:\n"
    "  n: 3\n"
    "  word: {type: string, default: hello}\n"
    "steps:\n"
    "  make:\n"
    "    shell: |\n"
    "      for i in $(seq 1 {n}); do echo {word} $i; done > "
    "\"$XP_OUTPUT_DIR/data.txt\"\n"
    "      echo '{{\"made\": true}}'\n"
    "    produces: [data.txt]\n"
    "    persist: true\n"
    "  count:\n"
    "    run: [awk, 'END {{ print NR }}', '{make/data.txt}']\n"
    "  py:\n"
    "    run: [python3, report.py, '{word}', '{count}', '{make}']\n"
    "    code: [report.py]\n"
    "    inputs: [word]\n";

ON_EVERY_BACKEND(params_files_and_a_c_step, 60)
{
    char path[PATH_MAX];
    s_write("report.py",
            "import json, os, sys\n"
            "print(json.dumps({'argv': sys.argv[1:3], 'made': sys.argv[3],\n"
            "                  'env': os.environ['XP_PARAM_WORD'],\n"
            "                  'trial': os.environ['XP_TRIAL_ID'],\n"
            "                  'step': os.environ['XP_STEP']}))\n",
            NULL);
    s_file(s_pipeline, path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, false);
    xp_node *in[] = {xp_node_find(ex, "make"), xp_node_find(ex, "count"),
                     xp_node_find(ex, "py")};
    cr_assert(in[0] && in[1] && in[2]);
    cr_assert_not_null(
        xp_result(xp_step_add(ex, "check_files", check_files, 3, in, NULL, 0)));
    xp_value *result = NULL;
    int64_t id = 0;
    xp_error_t err = {0};
    const char *params[] = {"n=4", NULL};
    cr_assert_eq(s_compute(ex, params, &result, &id, &err), 0, "%s: %s",
                 xpt_kind_name[s_kind], err.message);
    char *json = xpt_json(result);
    cr_assert_eq(xp_as_int64(xp_value_get(result, "c_lines")), 4, "%s", json);
    cr_assert_eq(xp_as_int64(xp_value_get(result, "awk")), 4, "%s", json);
    const xp_value *py = xp_value_get(result, "python");
    cr_assert_str_eq(xp_as_string(xp_value_get(py, "env"), NULL), "hello");
    cr_assert_str_eq(xp_as_string(xp_value_get(py, "step"), NULL), "py");
    cr_assert_str_eq(xp_as_string(xp_value_get(py, "made"), NULL),
                     "{ \"made\" : true }", "%s", json);
    char trial[32];
    snprintf(trial, sizeof trial, "%lld", (long long)id);
    cr_assert_str_eq(xp_as_string(xp_value_get(py, "trial"), NULL), trial);
    const xp_value *argv = xp_value_get(py, "argv");
    cr_assert_str_eq(xp_as_string(xp_value_at(argv, 0), NULL), "hello");
    cr_assert_str_eq(xp_as_string(xp_value_at(argv, 1), NULL), "4");
    free(json);
    /* The persisted output holds the produced file. */
    xp_value *made = NULL;
    cr_assert_eq(xp_load_persisted(ex, "make", id, &made, &err), 0, "%s",
                 err.message);
    size_t len = 0;
    const char *data = file_data(made, "data.txt", &len);
    cr_assert_not_null(data);
    cr_assert_eq(len, strlen("hello 1\nhello 2\nhello 3\nhello 4\n"));
    cr_assert(memcmp(data, "hello 1\n", 8) == 0);
    cr_assert(xp_as_bool(xp_value_get(xp_value_get(made, "value"), "made")));
    /* Every command step left a log. */
    xp_value *log = s_log_of(ex, id, "count");
    cr_assert_eq(xp_as_int64(xp_value_get(log, "status")), 0);
    cr_assert_str_eq(xp_as_string(xp_value_get(log, "stdout"), NULL), "4\n");
    xp_value_destroy(&log);
    cr_assert_eq(xp_step_log(ex, id, "check_files", &log, &err), -1);
    cr_assert_eq(err.code, XP_ENOTFOUND);
    xp_value_destroy(&made);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

ON_EVERY_BACKEND(metrics_from_file_and_stdout, 60)
{
    char path[PATH_MAX];
    s_write("train.py",
            "import json, os\n"
            "f = open(os.environ['XP_METRICS_FILE'], 'a')\n"
            "for e in range(5):\n"
            "    f.write(json.dumps({'name': 'loss', 'epoch': e,\n"
            "                        'value': 1.0 / (e + 1)}) + '\\n')\n"
            "    f.flush()\n"
            "f.write(json.dumps({'name': 'acc', 'value': 0.5}))\n"
            "f.close()\n"
            "print('lr: 0.1'); print('lr: 0.05'); print('not a metric')\n"
            "print(7)\n",
            NULL);
    s_file("steps:\n"
           "  train:\n"
           "    run: [python3, train.py]\n"
           "    stdout_metrics: true\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_value *result = NULL;
    int64_t id = 0;
    xp_error_t err = {0};
    cr_assert_eq(s_compute(ex, NULL, &result, &id, &err), 0, "%s: %s",
                 xpt_kind_name[s_kind], err.message);
    cr_assert_eq(xp_as_int64(result), 7);
    xp_series *s = NULL;
    cr_assert_eq(
        xp_metric_series(ex, "loss", id, INT64_MIN, INT64_MAX, 0, &s, &err), 0,
        "%s", err.message);
    cr_assert_eq(s->n, 5);
    cr_assert_eq(s->epochs[4], 4);
    cr_assert_float_eq(s->values[3], 0.25, 1e-12);
    xp_series_destroy(&s);
    cr_assert_eq(
        xp_metric_series(ex, "lr", id, INT64_MIN, INT64_MAX, 0, &s, &err), 0,
        "%s", err.message);
    cr_assert_eq(s->n, 2);
    cr_assert_eq(s->epochs[0], 0);
    cr_assert_eq(s->epochs[1], 1);
    cr_assert_float_eq(s->values[1], 0.05, 1e-12);
    xp_series_destroy(&s);
    /* The last line without a newline counts too. */
    cr_assert_eq(
        xp_metric_series(ex, "acc", id, INT64_MIN, INT64_MAX, 0, &s, &err), 0,
        "%s", err.message);
    cr_assert_eq(s->n, 1);
    xp_series_destroy(&s);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

ON_EVERY_BACKEND(non_zero_exit_fails_with_stderr_tail, 60)
{
    char path[PATH_MAX];
    s_file("steps:\n"
           "  bad:\n"
           "    shell: echo progress; echo first >&2; echo 'it broke' >&2; "
           "exit 3\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    int64_t id = 0;
    xp_error_t err = {0};
    cr_assert_eq(s_compute(ex, NULL, NULL, &id, &err), -1);
    cr_assert_eq(err.code, XP_ESTEP);
    cr_assert_str_eq(err.message, "bad: exit status 3: first | it broke");
    xp_value *t = xpt_trial(ex, id);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed");
    cr_assert_str_eq(xpt_get_str(t, "description"),
                     "bad: exit status 3: first | it broke");
    xp_value_destroy(&t);
    /* The failed step's log is kept with the failed trial. */
    xp_value *log = s_log_of(ex, id, "bad");
    cr_assert_eq(xp_as_int64(xp_value_get(log, "status")), 3);
    cr_assert_str_eq(xp_as_string(xp_value_get(log, "stdout"), NULL),
                     "progress\n");
    cr_assert_str_eq(xp_as_string(xp_value_get(log, "stderr"), NULL),
                     "first\nit broke\n");
    xp_value_destroy(&log);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

/* State letter of pid in /proc, or 0 when it is gone. */
static char s_proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *close = strrchr(buf, ')');
    return close && close[1] == ' ' ? close[2] : 0;
}

ON_EVERY_BACKEND(timeout_kills_the_child_tree, 60)
{
    char path[PATH_MAX], body[PATH_MAX + 1024], pidfile[PATH_MAX];
    snprintf(pidfile, sizeof pidfile, "%s/grandchild.pid", xpt_dir);
    snprintf(body, sizeof body,
             "steps:\n"
             "  slow:\n"
             "    shell: sh -c 'sleep 300 & echo $! > %s; wait' & sleep 300\n"
             "    timeout: 0.5\n",
             pidfile);
    s_file(body, path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    int64_t id = 0;
    xp_error_t err = {0};
    double t0 = xpt_now();
    cr_assert_eq(s_compute(ex, NULL, NULL, &id, &err), -1);
    cr_assert(xpt_now() - t0 < 60);
    cr_assert_str_eq(err.message, "slow: timed out after 0.5 s");
    char *text = xpt_slurp(pidfile);
    cr_assert_not_null(text, "the grandchild never started");
    pid_t grandchild = (pid_t)atoi(text);
    free(text);
    cr_assert_gt(grandchild, 0);
    /* Gone, or a zombie waiting for a reaper that is not us. */
    for (int i = 0;
         i < 200 && s_proc_state(grandchild) && s_proc_state(grandchild) != 'Z';
         i++)
        xpt_sleep(0.01);
    char st = s_proc_state(grandchild);
    cr_assert(st == 0 || st == 'Z', "grandchild %d still running (%c)",
              (int)grandchild, st);
    xp_value *log = s_log_of(ex, id, "slow");
    cr_assert(xp_as_bool(xp_value_get(log, "timed_out")));
    xp_value_destroy(&log);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

ON_EVERY_BACKEND(ten_megabytes_of_stdout_are_bounded, 120)
{
    char path[PATH_MAX];
    s_write("loud.py",
            "import sys\n"
            "line = 'x' * 1023 + '\\n'\n"
            "for i in range(10240):\n"
            "    sys.stdout.write(line)\n"
            "print(42)\n",
            NULL);
    s_file("steps:\n"
           "  loud:\n"
           "    run: [python3, loud.py]\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_value *result = NULL;
    int64_t id = 0;
    xp_error_t err = {0};
    cr_assert_eq(s_compute(ex, NULL, &result, &id, &err), 0, "%s", err.message);
    cr_assert_eq(xp_as_int64(result), 42);
    xp_value *log = s_log_of(ex, id, "loud");
    size_t len = 0;
    const char *out = xp_as_string(xp_value_get(log, "stdout"), &len);
    cr_assert_not_null(out);
    cr_assert_leq(len, 64 * 1024);
    cr_assert_geq(len, 60 * 1024);
    cr_assert_eq(xp_as_int64(xp_value_get(log, "stdout_bytes")),
                 10240 * 1024 + 3);
    cr_assert(strcmp(out + len - 3, "42\n") == 0);
    xp_value_destroy(&log);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

ON_EVERY_BACKEND(hostile_arguments_stay_one_argument, 60)
{
    static const char hostile[] = "a b; touch pwned 'q\" $(touch pwned2) `x` *";
    char path[PATH_MAX];
    s_file("parameters:\n"
           "  s: {type: string}\n"
           "steps:\n"
           "  direct:\n"
           "    run: [python3, -c, 'import sys, json; "
           "print(json.dumps(sys.argv[1:]))', '{s}', 'x{s}y']\n"
           "  shelled:\n"
           "    shell: python3 -c 'import sys, json; "
           "print(json.dumps(sys.argv[1:]))' {s} {direct}\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_value *p = xp_value_new();
    xp_set_document(p);
    xp_set_string(xp_document_set(p, "s"), hostile);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = p;
    xp_value *result = NULL;
    int64_t id = 0;
    xp_error_t err = {0};
    cr_assert_eq(xp_compute(ex, &o, &result, &id, &err), 0, "%s", err.message);
    char *json = xpt_json(result);
    cr_assert_eq(xp_value_count(result), 2, "%s", json);
    cr_assert_str_eq(xp_as_string(xp_value_at(result, 0), NULL), hostile, "%s",
                     json);
    xp_value *direct = NULL;
    cr_assert_eq(xp_value_from_json(direct = xp_value_new(),
                                    xp_as_string(xp_value_at(result, 1), NULL),
                                    &err),
                 0, "%s", json);
    cr_assert_str_eq(xp_as_string(xp_value_at(direct, 0), NULL), hostile);
    char xy[128];
    snprintf(xy, sizeof xy, "x%sy", hostile);
    cr_assert_str_eq(xp_as_string(xp_value_at(direct, 1), NULL), xy);
    char pwned[PATH_MAX];
    snprintf(pwned, sizeof pwned, "%s/pwned", xpt_dir);
    cr_assert_neq(access(pwned, F_OK), 0, "an argument ran as a command");
    snprintf(pwned, sizeof pwned, "%s/pwned2", xpt_dir);
    cr_assert_neq(access(pwned, F_OK), 0, "an argument ran as a command");
    free(json);
    xp_value_destroy(&direct);
    xp_value_destroy(&result);
    xp_value_destroy(&p);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

static int64_t s_run_file_once(const char *path, char *code_hash)
{
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    int64_t id = 0;
    xp_error_t err = {0};
    cr_assert_eq(s_compute(ex, NULL, NULL, &id, &err), 0, "%s", err.message);
    xp_value *t = xpt_trial(ex, id);
    snprintf(code_hash, 33, "%s", xpt_get_str(t, "code_hash"));
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
    return id;
}

ON_EVERY_BACKEND(edited_code_file_is_a_code_change, 60)
{
    char path[PATH_MAX], h1[33], h2[33], h3[33];
    s_write("train.py", "print(1)\n", NULL);
    s_file("steps:\n"
           "  train:\n"
           "    run: [python3, train.py]\n"
           "    code: [train.py]\n",
           path);
    s_run_file_once(path, h1);
    cr_assert_eq(xpt_log_find(&s_log, XP_LOG_WARNING, "Code context"), -1, "%s",
                 xpt_log_dump(&s_log));
    s_write("train.py", "print(2)\n", NULL);
    s_run_file_once(path, h2);
    cr_assert_geq(xpt_log_find(&s_log, XP_LOG_WARNING,
                               "Code context has been changed: train"),
                  0, "%s", xpt_log_dump(&s_log));
    cr_assert_geq(xpt_log_find(&s_log, XP_LOG_WARNING, "+print(2)"), 0, "%s",
                  xpt_log_dump(&s_log));
    cr_assert_str_neq(h1, h2);
    s_run_file_once(path, h3);
    cr_assert_str_eq(h2, h3);
}

/* ---------------------------------------------------------------- local only
 */

static void s_local(void)
{
    xpt_setup();
    s_use(XPT_LOCAL);
}

/* The error loading body (with this test's experiment line). */
static void s_refused(const char *body, const char *expected)
{
    char path[PATH_MAX];
    s_file(body, path);
    xp_definition *d = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_definition_load(&d, path, &err), -1, "accepted: %s", body);
    cr_assert_null(d);
    cr_assert_eq(err.code, XP_EINVAL);
    cr_assert(strstr(err.message, expected), "'%s' lacks '%s'", err.message,
              expected);
}

Test(file, bad_files_are_refused_with_their_line, .init = s_local,
     .fini = s_fini)
{
    s_refused("steps:\n  a:\n    run: [echo]\n    colour: red\n",
              "experiment.yaml:5: step 'a': unknown key 'colour'");
    s_refused("steps:\n  a:\n    run: [echo, '{nope}']\n",
              "refers to 'nope', which is neither a parameter nor a step");
    s_refused("steps:\n  a:\n    run: [echo, '{b}']\n  b:\n    run: [echo]\n",
              "defined above it");
    s_refused("steps:\n  a:\n    run: [echo, '{x']\n", "is not closed");
    s_refused("steps:\n  a:\n    run: [echo]\n  b:\n    run: [cat, "
              "'{a/out.txt}']\n",
              "step 'a' does not produce 'out.txt'");
    s_refused("parameters:\n  n: {type: int, default: 1.5}\n"
              "steps:\n  a:\n    run: [echo]\n",
              "default of parameter 'n': expected int, got double");
    s_refused("parameters:\n  x: &anchor 1\n  y: *anchor\nsteps: {}\n",
              "aliases");
    s_refused("steps:\n  a:\n    run: []\n", "run needs a program");
    s_refused("steps:\n  a:\n    run: [echo]\n    timeout: -1\n", "timeout");
    s_refused("steps:\n  a:\n    run: [echo]\n    produces: [../x]\n",
              "file name '../x'");
    s_refused("steps:\n  a:\n    run: [echo]\nresult: b\n",
              "result 'b' is not a step");
    s_refused("steps:\n  a: [echo]\n", "must be a mapping");
    s_refused("steps:\n  a:\n    run: [echo]\n  a:\n    run: [echo]\n",
              "duplicate name 'a'");
    s_refused("steps:\n  a:\n    run: [echo]\n    output: stdout\n",
              "output 'stdout'");
    s_refused("steps:\n  a:\n    run: [echo]\n    env: {A: x}\n"
              "    env: {B: y}\n",
              "experiment.yaml:6: key 'env' is repeated");
    s_refused("steps:\n  a:\n    run: [echo]\n    shell: echo\n",
              "step 'a' has both run and shell");
}

Test(file, missing_program_fails_the_step, .init = s_local, .fini = s_fini)
{
    char path[PATH_MAX];
    s_file("steps:\n  a:\n    run: [xp-no-such-program-anywhere, x]\n", path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(s_compute(ex, NULL, NULL, &id, &err), -1);
    cr_assert_gt(id, 0);
    cr_assert(
        strstr(err.message, "a: cannot run 'xp-no-such-program-anywhere'"),
        "%s", err.message);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

Test(file, output_modes, .init = s_local, .fini = s_fini)
{
    char path[PATH_MAX];
    s_file("steps:\n"
           "  status:\n"
           "    shell: exit 5\n"
           "    output: exit-status\n"
           "  from_file:\n"
           "    shell: |\n"
           "      echo '{{\"s\": {status}}}' > \"$XP_OUTPUT_DIR/r.json\"\n"
           "      echo 99\n"
           "    output: {file: r.json}\n"
           "  nothing:\n"
           "    run: [echo, '{from_file}']\n"
           "    output: none\n"
           "  all:\n"
           "    run: [echo, '[{status}, {from_file}]']\n"
           "    inputs: [nothing]\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_value *result = NULL;
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(s_compute(ex, NULL, &result, &id, &err), 0, "%s", err.message);
    char *json = xpt_json(result);
    cr_assert_str_eq(json, "[ 5, { \"s\" : 5 } ]");
    free(json);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

Test(file, a_c_function_from_a_library, .init = s_local, .fini = s_fini)
{
    const char *lib = getenv("XP_TEST_STEPS_LIB");
    if (!lib || access(lib, R_OK) != 0)
        XPT_SKIP("XP_TEST_STEPS_LIB is not set or missing (meson sets it)");
    char path[PATH_MAX], body[PATH_MAX + 1024];
    snprintf(body, sizeof body,
             "parameters:\n  x: {type: float}\n"
             "steps:\n"
             "  half:\n"
             "    shell: awk -v x={x} 'BEGIN {{ print x / 2 }}'\n"
             "  twice:\n"
             "    function: {library: %s, symbol: twice}\n"
             "    inputs: [half]\n",
             lib);
    s_file(body, path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_value *result = NULL;
    xp_error_t err = {0};
    int64_t id = 0;
    const char *params[] = {"x=3", NULL};
    cr_assert_eq(xp_definition_check_params(d, NULL, &err),
                 0); /* NULL: nothing */
    cr_assert_eq(s_compute(ex, params, &result, &id, &err), 0, "%s",
                 err.message);
    cr_assert_float_eq(xp_as_double(result), 3.0, 1e-12);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

/* xp run: script mode's exit codes and records, through the binary. */
Test(file, xp_run_exit_codes, .init = s_local, .fini = s_fini)
{
    const char *cli = getenv("XP_CLI");
    if (!cli || access(cli, X_OK) != 0)
        XPT_SKIP("XP_CLI is not set or missing (meson sets it)");
    char path[PATH_MAX];
    s_file("parameters:\n  a: {type: float}\n  b: 1\n"
           "steps:\n"
           "  div:\n"
           "    run: [python3, -c, 'import sys; a = float(sys.argv[1]); "
           "print(1 / a)', '{a}', '{b}']\n",
           path);
    char backend[PATH_MAX + 16];
    snprintf(backend, sizeof backend, "--backend=%s", xpt_dir);
    char *ok[] = {(char *)cli, "run", path,    "a=2",
                  "--seed",    "7",   backend, NULL};
    xpt_run_result r = xpt_run(ok, xpt_dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "0.5\n");
    xpt_run_result_free(&r);
    char *fail[] = {(char *)cli, "run", path, "a=0", backend, NULL};
    r = xpt_run(fail, xpt_dir);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "div: exit status 1: "), "%s", r.err);
    cr_assert(strstr(r.err, "ZeroDivisionError"), "%s", r.err);
    xpt_run_result_free(&r);
    char *bad[] = {(char *)cli, "run", path, "a=x", backend, NULL};
    r = xpt_run(bad, xpt_dir);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "parameter 'a': expected float, got string"), "%s",
              r.err);
    xpt_run_result_free(&r);
    char *undeclared[] = {(char *)cli, "run",   path, "a=1",
                          "c=1",       backend, NULL};
    r = xpt_run(undeclared, xpt_dir);
    cr_assert_eq(r.status, 2, "%s", r.err);
    xpt_run_result_free(&r);
    /* Two trials recorded, the refused invocations none. */
    xp_error_t err = {0};
    xp_experiment *ex = xpt_open_existing(s_id, &err);
    cr_assert_not_null(ex, "%s", err.message);
    cr_assert_eq(xpt_last_id(ex), 2);
    xp_experiment_destroy(&ex);
    char *log[] = {(char *)cli, "log", s_id, "2", backend, NULL};
    r = xpt_run(log, xpt_dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "== div: exit status 1"), "%s", r.out);
    cr_assert(strstr(r.out, "ZeroDivisionError"), "%s", r.out);
    xpt_run_result_free(&r);
}

/* XP_SEED is the seed a C step of the same name gets from the same trial
 * seed (xp_step_seed). */
static int seed_of(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)xp_step_seed(st));
    return xp_set_string(out, text);
}

Test(file, xp_seed_is_the_c_step_seed, .init = s_local, .fini = s_fini)
{
    char path[PATH_MAX];
    s_file("steps:\n  same_name:\n    shell: echo \"\\\"$XP_SEED\\\"\"\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_value *from_command = NULL, *from_c = NULL;
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(s_compute(ex, NULL, &from_command, &id, &err), 0, "%s",
                 err.message);
    xp_experiment *c = xpt_open("c_seed");
    cr_assert_not_null(
        xp_result(xp_step_add(c, "same_name", seed_of, 0, NULL, NULL, 0)));
    cr_assert_eq(s_compute(c, NULL, &from_c, &id, &err), 0, "%s", err.message);
    cr_assert_str_eq(xp_as_string(from_command, NULL),
                     xp_as_string(from_c, NULL));
    xp_value_destroy(&from_command);
    xp_value_destroy(&from_c);
    xp_experiment_destroy(&c);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

/* The examples in examples/commands/ run as shipped. */
static void s_example(const char *rel, const char *const *params,
                      const char *result_key)
{
    const char *src = getenv("XP_SOURCE_DIR");
    if (!src)
        XPT_SKIP("XP_SOURCE_DIR is not set (meson sets it)");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/examples/commands/%s", src, rel);
    xp_definition *d = s_load(path);
    snprintf(s_id, sizeof s_id, "%s", xp_definition_id(d));
    xp_experiment *ex = s_open_def(d, true);
    xp_value *result = NULL;
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(s_compute(ex, params, &result, &id, &err), 0, "%s: %s", rel,
                 err.message);
    const xp_value *v = result_key ? xp_value_get(result, result_key) : result;
    char *json = xpt_json(result);
    cr_assert_eq(xp_value_type(v), XP_TYPE_DOUBLE, "%s: %s", rel, json);
    free(json);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

Test(file, the_examples_run, .init = s_local, .fini = s_fini, .timeout = 120)
{
    const char *quick[] = {"a=1", "b=2", NULL};
    s_example("quickstart.yaml", quick, NULL);
    const char *pipe[] = {"n=100", "epochs=20", NULL};
    s_example("pipeline/pipeline.yaml", pipe, "mse");
}

Test(file, a_last_line_that_is_not_json_fails, .init = s_local, .fini = s_fini)
{
    char path[PATH_MAX];
    s_file("steps:\n  a:\n    shell: |\n      echo 1\n      echo '{{oops'\n",
           path);
    xp_definition *d = s_load(path);
    xp_experiment *ex = s_open_def(d, true);
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(s_compute(ex, NULL, NULL, &id, &err), -1);
    cr_assert_str_eq(err.message,
                     "a: the last JSON line of stdout is not valid JSON: "
                     "{oops");
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}
