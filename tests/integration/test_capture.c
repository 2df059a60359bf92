/* test_capture.c — reproducibility capture on real experiments in temporary
 * backends: code context (order, code/ files, missing source, changes across
 * processes), environment categories and change detection, git state in
 * temporary repositories, purity warnings, seeding across thread counts and
 * xp_trial_diff; the code document (a function used six times, decoding
 * and its refusals, a graph rebuilt from it) and queued trials resumed. */
#include "../common.h"

#include "capture/env.h"
#include "capture/git.h"
#include "code_doc.h"
#include "experiment.h"
#include "trial.h"
#include "util/bson_util.h"
#include "util/hash.h"
#include "util/names.h"
#include "value.h"

#include <gnu/libc-version.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/utsname.h>
#include <sys/wait.h>

TestSuite(capture, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

/* LeakSanitizer (ASan builds): libgit2 1.5's git_remote_lookup leaks
 * PCRE2 match data (libgit2 PR #6382) whenever a remote is configured, as
 * in git::remote_password_masked. Allocations made inside libpcre2 (used
 * here only by libgit2) are not reported; the fast unwinder often sees no
 * frame above them, so the module is named rather than a function. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpcre2-8.so\n";
}

/* ---------------------------------------------------------------- helpers */

/* Log lines of the running test (each criterion test is a process). */
static xpt_log s_log;

static void log_start(xp_log_level level)
{
    xpt_log_init(&s_log);
    xp_log_set_level(level);
    xp_log_set_handler(xpt_log_fn, &s_log);
}

/* Index of the first line at level, from index `from`, equal to `exact`
 * (exact) or containing it; -1 when none. */
static int log_index(xp_log_level level, const char *text, bool exact,
                     size_t from)
{
    for (size_t i = from; i < s_log.n; i++)
        if (s_log.level[i] == level &&
            (exact ? strcmp(s_log.msg[i], text) == 0
                   : strstr(s_log.msg[i], text) != NULL))
            return (int)i;
    return -1;
}

static size_t log_count(xp_log_level level, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < s_log.n; i++)
        if (s_log.level[i] == level && strstr(s_log.msg[i], text))
            n++;
    return n;
}

/* Runs one trial (seeded when has_seed); asserts success. */
static int64_t run_trial(xp_experiment *ex, bool has_seed, uint64_t seed,
                         xp_value **result)
{
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.has_seed = has_seed;
    o.seed = seed;
    int64_t id = 0;
    xp_error_t err = {0};
    int rc = xp_compute(ex, &o, result, &id, &err);
    cr_assert_eq(rc, 0, "xp_compute: code=%u '%s'", err.code, err.message);
    cr_assert_gt(id, 0, "no trial id");
    return id;
}

static xp_value *code_of(xp_experiment *ex, int64_t trial)
{
    xp_value *v = NULL;
    xp_error_t err = {0};
    int rc = xp_code_get(ex, trial, &v, &err);
    cr_assert_eq(rc, 0, "xp_code_get(%lld): code=%u '%s'", (long long)trial,
                 err.code, err.message);
    cr_assert_not_null(v, "xp_code_get returned no value");
    return v;
}

static xp_value *env_of(xp_experiment *ex, int64_t trial, const char *cat)
{
    xp_value *v = NULL;
    xp_error_t err = {0};
    int rc = xp_environment_get(ex, trial, cat, &v, &err);
    cr_assert_eq(rc, 0, "xp_environment_get(%lld, %s): code=%u '%s'",
                 (long long)trial, cat ? cat : "NULL", err.code, err.message);
    cr_assert_not_null(v, "xp_environment_get returned no value");
    return v;
}

/* Copy of a string field of trial `id`'s document into out[64]. */
static void trial_str(xp_experiment *ex, int64_t id, const char *key, char *out)
{
    xp_value *t = xpt_trial(ex, id);
    snprintf(out, 64, "%s", xpt_get_str(t, key));
    xp_value_destroy(&t);
}

static bool is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0, "closing %s", path);
}

/* True when string array arr holds an element equal to s. */
static bool array_has(const xp_value *arr, const char *s)
{
    for (size_t i = 0; i < xp_value_count(arr); i++) {
        const char *e = xp_as_string(xp_value_at(arr, i), NULL);
        if (e && strcmp(e, s) == 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------- steps */

static int zeta_step(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    /* zeta marker */
    return xp_set_int64(out, 3);
}

static int alpha_step(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 4);
}

static int combine(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) * 10 + xp_as_int64(in[1]) +
                                 xp_as_int64(in[2]) * 100);
}

static int const_seven(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 7);
}

static int add_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

/* A parameter a -> add_one (result). */
static void define_add_one(xp_experiment *ex)
{
    xp_node *a = xp_parameter_literal(ex, "a", "1");
    cr_assert_not_null(XP_RESULT(ex, add_one, a), "defining add_one");
}

/* ---------------------------------------------------------------- code */

Test(capture, code_context_in_registration_order)
{
    xp_experiment *ex = xpt_open("ctx");
    xp_node *k = xp_parameter_literal(ex, "k", "1");
    const int line_zeta = __LINE__ + 1;
    xp_node *z = XP_STEP0(ex, zeta_step);
    const int line_alpha = __LINE__ + 1;
    xp_node *a = XP_STEP0(ex, alpha_step);
    const int line_combine = __LINE__ + 1;
    xp_node *c = XP_RESULT(ex, combine, z, a, k);
    cr_assert_not_null(c, "definition");

    xp_value *res = NULL;
    int64_t t1 = run_trial(ex, true, 1, &res);
    cr_assert_eq(xp_as_int64(res), 134, "result %lld",
                 (long long)xp_as_int64(res));
    xp_value_destroy(&res);
    int64_t t2 = run_trial(ex, true, 1, NULL);

    xp_value *code = code_of(ex, t1);
    const xp_value *steps = xpt_typed(code, "steps", XP_TYPE_ARRAY);
    static const char *const names[] = {"zeta_step", "alpha_step", "combine"};
    const int lines[] = {line_zeta, line_alpha, line_combine};
    cr_assert_eq(xp_value_count(steps), 3,
                 "%zu steps (parameters are not "
                 "steps)",
                 xp_value_count(steps));
    for (size_t i = 0; i < 3; i++) {
        const xp_value *s = xp_value_at(steps, i);
        cr_assert_str_eq(xpt_get_str(s, "name"), names[i],
                         "steps[%zu] is '%s', want '%s' (registration order)",
                         i, xpt_get_str(s, "name"), names[i]);
        cr_assert_str_eq(xpt_get_str(s, "symbol"), names[i], "symbol");
        cr_assert_str_eq(xpt_get_str(s, "file"), __FILE__, "file '%s'",
                         xpt_get_str(s, "file"));
        cr_assert_eq(xpt_get_int(s, "line"), lines[i], "%s line %lld, want %d",
                     names[i], (long long)xpt_get_int(s, "line"), lines[i]);
        cr_assert_eq(xpt_get_bool(s, "result"), i == 2, "%s result flag",
                     names[i]);
        const char *src = xpt_get_str(s, "source");
        char sig[64];
        snprintf(sig, sizeof sig, "static int %s(xp_step *st", names[i]);
        cr_assert_not_null(strstr(src, sig), "%s source lacks '%s':\n%s",
                           names[i], sig, src);
        cr_assert_eq(src[strlen(src) - 1], '}',
                     "%s source does not end "
                     "with its body:\n%s",
                     names[i], src);
        cr_assert_null(xp_value_get(s, "build_id"),
                       "%s has a build_id although its source was found",
                       names[i]);
    }
    const char *zsrc = xpt_get_str(xp_value_at(steps, 0), "source");
    cr_assert_not_null(strstr(zsrc, "/* zeta marker */"), "zeta body:\n%s",
                       zsrc);
    cr_assert_null(strstr(zsrc, "alpha_step"),
                   "zeta source runs into the "
                   "next function:\n%s",
                   zsrc);
    const xp_value *inputs =
        xpt_typed(xp_value_at(steps, 2), "inputs", XP_TYPE_ARRAY);
    cr_assert_eq(xp_value_count(inputs), 3, "combine has %zu inputs",
                 xp_value_count(inputs));
    cr_assert_str_eq(xp_as_string(xp_value_at(inputs, 0), NULL), "zeta_step");
    cr_assert_str_eq(xp_as_string(xp_value_at(inputs, 1), NULL), "alpha_step");
    cr_assert_str_eq(xp_as_string(xp_value_at(inputs, 2), NULL), "k");

    /* Trial 0: the current registration, equal to what the trials used. */
    xp_value *now = code_of(ex, 0);
    cr_assert(xp_value_equal(now, code),
              "code of trial 0 differs from "
              "trial %lld",
              (long long)t1);
    xp_value *code2 = code_of(ex, t2);
    cr_assert(xp_value_equal(code2, code), "code of trials 1 and 2 differ");

    /* Both trials reference one content file, indexed in trials.tsv. */
    char h1[64], h2[64];
    trial_str(ex, t1, "code_hash", h1);
    trial_str(ex, t2, "code_hash", h2);
    cr_assert(is_hex32(h1), "code_hash '%s' is not 32 hex digits", h1);
    cr_assert_str_eq(h1, h2, "same code, different hashes");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/ctx/code/%s.c", xpt_dir, h1);
    char *text = xpt_slurp(path);
    cr_assert_not_null(strstr(text, "/* zeta marker */"),
                       "%s lacks zeta's body:\n%s", path, text);
    cr_assert_not_null(strstr(text, "static int combine(xp_step *st"),
                       "%s lacks combine:\n%s", path, text);
    free(text);
    /* <id>/trials.tsv: "trial_id<TAB>code hash<TAB>environment hash". */
    char e1[64], e2[64];
    trial_str(ex, t1, "environment_hash", e1);
    trial_str(ex, t2, "environment_hash", e2);
    snprintf(path, sizeof path, "%s/ctx/trials.tsv", xpt_dir);
    text = xpt_slurp(path);
    char want[512];
    snprintf(want, sizeof want, "%lld\t%s\t%s\n%lld\t%s\t%s\n", (long long)t1,
             h1, e1, (long long)t2, h2, e2);
    cr_assert_str_eq(text, want, "trials.tsv:\n%s\nwant:\n%s", text, want);
    free(text);

    /* A new handle without steps: trial 0 is the last trial's code. */
    xp_experiment *again = xpt_open("ctx");
    xp_value *last = code_of(again, 0);
    cr_assert(xp_value_equal(last, code), "code of a handle without steps "
                                          "is not the last trial's");
    xp_value *none = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_code_get(again, 99, &none, &err), -1, "trial 99 found");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert_null(none, "output set on failure");

    xp_value_destroy(&last);
    xp_value_destroy(&code2);
    xp_value_destroy(&now);
    xp_value_destroy(&code);
    xp_experiment_destroy(&again);
    xp_experiment_destroy(&ex);
}

/* __FILE__ is relative to the compiler's directory (meson: the build
 * directory); the source must also be found when the process runs
 * elsewhere, from the directory of the binary holding the step — also when
 * argv[0] is no path to it (criterion's workers run as "boxfort-worker",
 * as does a program started through PATH). */
Test(capture, source_found_from_any_working_directory)
{
    char cwd[PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof cwd), "getcwd: %s", strerror(errno));
    xp_experiment *ex = xpt_open("anydir");
    cr_assert_eq(chdir("/"), 0, "chdir /: %s", strerror(errno));
    xp_node *z = XP_STEP0(ex, zeta_step);
    cr_assert_eq(chdir(cwd), 0, "chdir back: %s", strerror(errno));
    cr_assert_not_null(xp_result(z), "definition");
    xp_value *code = code_of(ex, 0);
    const xp_value *s = xp_value_at(xpt_field(code, "steps"), 0);
    cr_assert_not_null(s, "no step");
    const xp_value *src = xp_value_get(s, "source");
    cr_assert_not_null(src,
                       "source of zeta_step (file %s, registered "
                       "with cwd /) not found",
                       __FILE__);
    cr_assert_not_null(strstr(xp_as_string(src, NULL), "/* zeta marker */"),
                       "wrong source: %s", xp_as_string(src, NULL));
    xp_value_destroy(&code);
    xp_experiment_destroy(&ex);
}

Test(capture, missing_source_file)
{
    log_start(XP_LOG_WARNING);
    xp_experiment *ex = xpt_open("nosrc");
    xp_node *s1 =
        xp_step_add(ex, "lost", const_seven, 0, NULL, "/nonexistent/x.c", 12);
    xp_node *s2 = xp_result(
        xp_step_add(ex, "lost_too", add_one, 1, &s1, "/nonexistent/x.c", 20));
    cr_assert_not_null(s2, "definition");
    xp_value *res = NULL;
    int64_t t = run_trial(ex, false, 0, &res);
    cr_assert_eq(xp_as_int64(res), 8, "result %lld",
                 (long long)xp_as_int64(res));
    xp_value_destroy(&res);
    run_trial(ex, false, 0, NULL);

    size_t n = log_count(XP_LOG_WARNING, "/nonexistent/x.c");
    cr_assert_eq(n, 1, "%zu warnings mention the file (want one): %s", n,
                 xpt_log_dump(&s_log));
    xp_value *code = code_of(ex, t);
    const xp_value *steps = xpt_typed(code, "steps", XP_TYPE_ARRAY);
    cr_assert_eq(xp_value_count(steps), 2, "%zu steps", xp_value_count(steps));
    for (size_t i = 0; i < 2; i++) {
        const xp_value *s = xp_value_at(steps, i);
        cr_assert_null(xp_value_get(s, "source"), "step %zu has a source", i);
        const char *id = xpt_get_str(s, "build_id");
        for (const char *p = id; *p; p++)
            cr_assert((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'),
                      "build_id '%s' is not hex", id);
        cr_assert_str_eq(xpt_get_str(s, "file"), "/nonexistent/x.c");
        cr_assert_eq(xpt_get_int(s, "line"), i == 0 ? 12 : 20, "line");
    }
    xp_value_destroy(&code);
    xp_experiment_destroy(&ex);
}

/* The step registered as "f" from temporary source files. */
static int f_impl(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 1);
}

static const char s_src_a[] = "int unrelated;\n\nint f(void)\n{\n"
                              "    return 1;\n}\n";
static const char s_src_b[] = "int unrelated;\n\nint f(void)\n{\n"
                              "    return 2;\n}\n";

/* Opens experiment id, registers f from src and runs one trial; NULL and
 * a message in why[128] on failure (no criterion asserts: used in a
 * forked child too). */
static xp_experiment *f_trial(const char *id, const char *src, char *why)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        snprintf(why, 128, "open: %.100s", err.message);
        return NULL;
    }
    if (!xp_result(xp_step_add(ex, "f", f_impl, 0, NULL, src, 3))) {
        snprintf(why, 128, "definition failed");
        xp_experiment_destroy(&ex);
        return NULL;
    }
    if (xp_compute(ex, NULL, NULL, NULL, &err) != 0) {
        snprintf(why, 128, "trial: %.100s", err.message);
        xp_experiment_destroy(&ex);
        return NULL;
    }
    return ex;
}

/* Runs f_trial in a child process. */
static void f_trial_in_child(const char *id, const char *src)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        char why[128] = "";
        xp_experiment *ex = f_trial(id, src, why);
        if (!ex)
            fprintf(stderr, "child: %s\n", why);
        xp_experiment_destroy(&ex);
        _exit(why[0] ? 1 : 0);
    }
    int st = xpt_wait(pid);
    cr_assert_eq(st, 0, "child trial failed (status %d, see stderr)", st);
}

Test(capture, code_change_across_processes)
{
    char a[PATH_MAX], b[PATH_MAX], why[128] = "";
    snprintf(a, sizeof a, "%s/src_a.c", xpt_dir);
    snprintf(b, sizeof b, "%s/src_b.c", xpt_dir);
    write_file(a, s_src_a);
    write_file(b, s_src_b);
    f_trial_in_child("change", a);

    log_start(XP_LOG_WARNING);
    xp_experiment *ex = f_trial("change", b, why);
    cr_assert_not_null(ex, "parent trial: %s", why);
    cr_assert_eq(xpt_last_id(ex), 2, "parent trial is not trial 2");
    int h =
        log_index(XP_LOG_WARNING, "Code context has been changed: f", true, 0);
    cr_assert_geq(h, 0, "no code change warning: %s", xpt_log_dump(&s_log));
    int minus = log_index(XP_LOG_WARNING, "-    return 1;", true, (size_t)h);
    int plus = log_index(XP_LOG_WARNING, "+    return 2;", true, (size_t)h);
    cr_assert(minus > h && plus > h,
              "diff lines missing after the warning "
              "(-: %d, +: %d): %s",
              minus, plus, xpt_log_dump(&s_log));
    cr_assert_eq(log_index(XP_LOG_WARNING, "-    return 2;", true, 0), -1,
                 "diff is reversed: %s", xpt_log_dump(&s_log));

    /* The same difference through xp_trial_diff. */
    xp_value *d = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_trial_diff(ex, 1, 2, &d, &err), 0, "xp_trial_diff: '%s'",
                 err.message);
    const xp_value *code = xpt_typed(d, "code", XP_TYPE_ARRAY);
    cr_assert(array_has(code, "-    return 1;") &&
                  array_has(code, "+    return 2;"),
              "code diff: %s", xp_value_to_json(code));
    xp_value_destroy(&d);
    xp_experiment_destroy(&ex);
}

Test(capture, unchanged_code_across_processes)
{
    /* Same text at another path: the code documents differ (file), the
     * step's source does not, so no change is reported. */
    char a[PATH_MAX], a2[PATH_MAX], why[128] = "";
    snprintf(a, sizeof a, "%s/src_a.c", xpt_dir);
    snprintf(a2, sizeof a2, "%s/src_a_copy.c", xpt_dir);
    write_file(a, s_src_a);
    write_file(a2, s_src_a);
    f_trial_in_child("same", a);

    log_start(XP_LOG_WARNING);
    xp_experiment *ex = f_trial("same", a2, why);
    cr_assert_not_null(ex, "parent trial: %s", why);
    cr_assert_eq(xpt_last_id(ex), 2, "parent trial is not trial 2");
    cr_assert_eq(log_count(XP_LOG_WARNING, "Code context"), 0,
                 "unexpected code change warning: %s", xpt_log_dump(&s_log));
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- reuse */

static int sum_six(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    int64_t s = 0;
    for (int i = 0; i < 6; i++)
        s += xp_as_int64(in[i]);
    return xp_set_int64(out, s);
}

/* f (from src) used six times, summed; one trial. NULL and why[128] on
 * failure (no asserts: used in a forked child too). */
static xp_experiment *f6_trial(const char *id, const char *src, char *why)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        snprintf(why, 128, "open: %.100s", err.message);
        return NULL;
    }
    xp_node *uses[6];
    for (int i = 0; i < 6; i++)
        uses[i] = xp_step_add(ex, "f", f_impl, 0, NULL, src, 3);
    if (!xp_result(
            xp_step_add(ex, "sum_six", sum_six, 6, uses, __FILE__, __LINE__))) {
        snprintf(why, 128, "definition failed");
        xp_experiment_destroy(&ex);
        return NULL;
    }
    if (xp_compute(ex, NULL, NULL, NULL, &err) != 0) {
        snprintf(why, 128, "trial: %.100s", err.message);
        xp_experiment_destroy(&ex);
        return NULL;
    }
    return ex;
}

Test(capture, code_change_of_a_function_used_six_times)
{
    char a[PATH_MAX], b[PATH_MAX], why[128] = "";
    snprintf(a, sizeof a, "%s/src_a.c", xpt_dir);
    snprintf(b, sizeof b, "%s/src_b.c", xpt_dir);
    write_file(a, s_src_a);
    write_file(b, s_src_b);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        xp_experiment *first = f6_trial("change6", a, why);
        if (!first)
            fprintf(stderr, "child: %s\n", why);
        xp_experiment_destroy(&first);
        _exit(why[0] ? 1 : 0);
    }
    cr_assert_eq(xpt_wait(pid), 0, "child trial failed (see stderr)");

    log_start(XP_LOG_WARNING);
    xp_experiment *ex = f6_trial("change6", b, why);
    cr_assert_not_null(ex, "parent trial: %s", why);
    /* One report for the function, at its first use, with one diff. */
    cr_assert_eq(log_count(XP_LOG_WARNING, "Code context has been changed"), 1,
                 "want one change report: %s", xpt_log_dump(&s_log));
    cr_assert_geq(
        log_index(XP_LOG_WARNING, "Code context has been changed: f", true, 0),
        0, "not reported for step f: %s", xpt_log_dump(&s_log));
    cr_assert_eq(log_count(XP_LOG_WARNING, "+    return 2;"), 1,
                 "diff not shown once: %s", xpt_log_dump(&s_log));

    /* code/<hash>.c holds the function once and lists every use. */
    char hash[64], path[PATH_MAX];
    trial_str(ex, 2, "code_hash", hash);
    snprintf(path, sizeof path, "%s/change6/code/%s.c", xpt_dir, hash);
    char *text = xpt_slurp(path);
    const char *p = strstr(text, "return 2;");
    cr_assert(p && !strstr(p + 1, "return 2;"), "%s:\n%s", path, text);
    for (int i = 2; i <= 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "/* step f-%d (registered at ", i);
        cr_assert_not_null(strstr(text, want), "f-%d missing:\n%s", i, text);
    }
    free(text);

    xp_value *d = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_trial_diff(ex, 1, 2, &d, &err), 0, "xp_trial_diff: '%s'",
                 err.message);
    const xp_value *code = xpt_typed(d, "code", XP_TYPE_ARRAY);
    size_t plus = 0;
    for (size_t i = 0; i < xp_value_count(code); i++)
        plus += strcmp(xp_as_string(xp_value_at(code, i), NULL),
                       "+    return 2;") == 0;
    cr_assert_eq(plus, 1, "code diff: %s", xp_value_to_json(code));
    xp_value_destroy(&d);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- document */

/* The code document of ex (frozen by a trial), as BSON. */
static bson_t *doc_of(xp_experiment *ex)
{
    cr_assert_not_null(ex->code, "no code document");
    return bson_copy(ex->code);
}

/* 6 uses of add_one over a (default 1), one persisted, a renamed step
 * and combine as the result. */
static xp_experiment *define_rich(const char *id)
{
    xp_experiment *ex = xpt_open(id);
    xp_node *a = xp_parameter_literal(ex, "a", "1");
    xp_node *k = xp_parameter_literal(ex, "k", "\"text\"");
    xp_node *uses[6];
    for (int i = 0; i < 6; i++)
        uses[i] = XP_STEP(ex, add_one, a);
    xp_persist(uses[2]);
    xp_node *z = xp_step_add(ex, "zeta", zeta_step, 0, NULL, __FILE__, 1);
    xp_node *in[] = {uses[0], uses[5], z, k};
    cr_assert_not_null(xp_result(xp_step_add(ex, "combine", combine, 3, in,
                                             __FILE__, __LINE__)),
                       "definition");
    return ex;
}

Test(capture, code_document_rebuilds_the_graph)
{
    xp_experiment *ex = define_rich("rich");
    run_trial(ex, true, 1, NULL);
    bson_t *doc = doc_of(ex);

    xp_code_def def;
    xp_error_t err = {0};
    cr_assert_eq(xp__code_doc_decode(&def, doc, &err), 0, "decode: '%s'",
                 err.message);
    cr_assert_eq(def.n_params, 2, "%zu parameters", def.n_params);
    cr_assert_eq(def.n_steps, 8, "%zu steps", def.n_steps);
    cr_assert_str_eq(def.steps[def.result].name, "combine");
    cr_assert_eq(def.steps[0].same_as, XP_CODE_NONE, "first use");
    for (size_t i = 1; i < 6; i++) {
        cr_assert_eq(def.steps[i].same_as, 0, "use %zu", i + 1);
        cr_assert_str_eq(def.steps[i].source, def.steps[0].source,
                         "use %zu does not get its function's source", i + 1);
        cr_assert_str_eq(def.steps[i].symbol, "add_one");
    }
    cr_assert(def.steps[2].persisted && !def.steps[1].persisted, "persisted");
    cr_assert_str_eq(def.steps[6].symbol, "zeta_step", "renamed step");
    cr_assert_eq(def.steps[7].n_inputs, 3, "inputs");
    cr_assert_eq(def.steps[7].inputs[1], 2 + 5, "combine's second input");
    xp__code_def_clear(&def);

    /* As a scheduler does: an empty experiment defined by the document.
     * It encodes back to the same bytes and renders the same text. */
    xp_experiment *copy = NULL;
    cr_assert_eq(xp__experiment_new_detached(&copy, "rich", &err), 0);
    cr_assert_eq(xp__graph_from_code(copy, doc, &err), 0, "rebuild: '%s'",
                 err.message);
    cr_assert_str_eq(copy->code_hash, ex->code_hash, "hash");
    bson_t again = BSON_INITIALIZER;
    xp__code_doc_encode(copy, &again);
    cr_assert(again.len == doc->len &&
                  memcmp(bson_get_data(&again), bson_get_data(doc), doc->len) ==
                      0,
              "re-encoded document differs:\n%s\n%s",
              bson_as_relaxed_extended_json(&again, NULL),
              bson_as_relaxed_extended_json(doc, NULL));
    bson_destroy(&again);
    cr_assert_eq(xp__graph_freeze(copy, &err), 0, "freeze: '%s'", err.message);
    cr_assert_eq(xp__graph_from_code(copy, doc, &err), -1, "defined twice");
    cr_assert_eq(err.code, XP_ESTATE, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&copy);

    /* Each use keeps its own place in the text; the source appears once. */
    char *text = xp__code_doc_text(doc);
    const char *src = strstr(text, "static int add_one(xp_step *st");
    cr_assert(src && !strstr(src + 1, "static int add_one(xp_step *st"),
              "add_one not shown once:\n%s", text);
    cr_assert_not_null(strstr(text, "/* step zeta (registered at "),
                       "zeta:\n%s", text);
    cr_assert_not_null(strstr(text, ":1), function zeta_step */"),
                       "the renamed step does not name its function:\n%s",
                       text);
    cr_assert_not_null(strstr(text, "/* step add_one-3 (registered at "),
                       "add_one-3:\n%s", text);
    cr_assert_not_null(strstr(text, "not needed by the result: never runs: "
                                    "function add_one, as step add_one "
                                    "above */"),
                       "unneeded uses not marked:\n%s", text);
    free(text);
    bson_destroy(doc);
    xp_experiment_destroy(&ex);
}

Test(capture, code_document_of_earlier_versions_is_read)
{
    /* Before same_as every use held its own source and symbol was the
     * step's name; stored records keep that layout. Unknown fields are
     * ignored. */
    const char *json =
        "{\"parameters\": [{\"name\": \"a\", \"default\": 1}],"
        " \"steps\": [{\"name\": \"t\", \"file\": \"x.c\", \"line\": 3,"
        " \"symbol\": \"t\", \"inputs\": [\"a\"], \"result\": false,"
        " \"persisted\": false, \"source\": \"int t(void) {}\"},"
        " {\"name\": \"t-2\", \"file\": \"x.c\", \"line\": 4,"
        " \"symbol\": \"t-2\", \"inputs\": [\"a\", \"t\"], \"result\": true,"
        " \"persisted\": true, \"source\": \"int t(void) {}\","
        " \"later\": {\"x\": 1}}], \"version\": 7}";
    bson_error_t be;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &be);
    cr_assert_not_null(doc, "JSON: %s", be.message);
    xp_code_def def;
    xp_error_t err = {0};
    cr_assert_eq(xp__code_doc_decode(&def, doc, &err), 0, "'%s'", err.message);
    cr_assert_eq(def.steps[1].same_as, XP_CODE_NONE);
    cr_assert_str_eq(def.steps[1].source, "int t(void) {}");
    cr_assert_eq(xp_value_type(def.params[0].def), XP_TYPE_INT64, "default");
    cr_assert_eq(def.result, 1);
    xp__code_def_clear(&def);
    char *text = xp__code_doc_text(doc);
    cr_assert_not_null(strstr(text, "/* step t-2 (registered at x.c:4) */\n"
                                    "int t(void) {}\n"),
                       "text:\n%s", text);
    free(text);
    bson_destroy(doc);
}

/* Decoding json fails with code and a one-line message containing text. */
static void expect_refused_doc(const bson_t *doc, uint32_t code,
                               const char *text, const char *what)
{
    xp_code_def def;
    xp_error_t err = {0};
    cr_assert_eq(xp__code_doc_decode(&def, doc, &err), -1, "accepted: %s",
                 what);
    cr_assert_eq(err.code, code, "%s: code %u '%s', want %u", what, err.code,
                 err.message, code);
    cr_assert_not_null(strstr(err.message, text), "%s: '%s' lacks '%s'", what,
                       err.message, text);
    cr_assert_null(strchr(err.message, '\n'), "%s: not one line", what);
    xp__code_def_clear(&def);
    /* What cannot be decoded is still shown, with the reason. */
    char *shown = xp__code_doc_text(doc);
    cr_assert_not_null(strstr(shown, "code document: "), "%s: text '%s'", what,
                       shown);
    free(shown);
}

static void expect_refused(const char *json, uint32_t code, const char *text)
{
    bson_error_t be;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &be);
    cr_assert_not_null(doc, "test JSON %s: %s", json, be.message);
    expect_refused_doc(doc, code, text, json);
    bson_destroy(doc);
}

#define S_ONE "{\"name\": \"s\", \"inputs\": [\"a\"], \"result\": true}"
#define S_PARAMS "\"parameters\": [{\"name\": \"a\"}]"

Test(capture, code_document_decoder_refuses)
{
    expect_refused("{}", XP_ECORRUPT, "no 'steps' array");
    expect_refused("{\"steps\": 1}", XP_ECORRUPT, "'steps' is not an array");
    expect_refused("{\"steps\": [1]}", XP_ECORRUPT,
                   "steps[0] is not a document");
    expect_refused("{\"parameters\": {}, \"steps\": [" S_ONE "]}", XP_ECORRUPT,
                   "'parameters' is not an array");
    expect_refused("{\"steps\": [], \"steps\": []}", XP_ECORRUPT,
                   "field 'steps' twice");
    expect_refused("{\"steps\": [{\"result\": true}]}", XP_ECORRUPT,
                   "steps[0] has no name string");
    expect_refused("{\"steps\": [{\"name\": 3}]}", XP_ECORRUPT,
                   "steps[0] has no name string");
    expect_refused("{\"parameters\": [{\"default\": 1}], \"steps\": []}",
                   XP_ECORRUPT, "parameters[0] has no name string");
    expect_refused("{\"steps\": [{\"name\": \"a/b\", \"result\": true}]}",
                   XP_EINVAL, "invalid step name 'a/b'");
    expect_refused("{" S_PARAMS ", \"steps\": [{\"name\": \"a\"}]}", XP_EINVAL,
                   "duplicate name 'a'");
    expect_refused("{\"parameters\": [{\"name\": \"a\", \"default\": "
                   "{\"$minKey\": 1}}], \"steps\": []}",
                   XP_ECORRUPT, "default of parameter 'a'");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"name\": \"t\"}]}",
                   XP_ECORRUPT, "steps[0] has field 'name' twice");
    /* Inputs: earlier nodes only, so no cycle can be described. */
    expect_refused("{\"steps\": [{\"name\": \"s\", \"inputs\": [\"x\"], "
                   "\"result\": true}]}",
                   XP_EINVAL,
                   "step 's': input 'x' is not a parameter or an earlier "
                   "step");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"inputs\": [\"s\"], "
                   "\"result\": true}]}",
                   XP_EINVAL, "input 's' is not");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"inputs\": [\"t\"]}, "
                   "{\"name\": \"t\", \"inputs\": [\"s\"], \"result\": true}]}",
                   XP_EINVAL, "input 't' is not");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"inputs\": \"a\"}]}",
                   XP_ECORRUPT, "'inputs' is not an array");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"inputs\": [5]}]}",
                   XP_ECORRUPT, "step 's': input 1 is not a string");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"inputs\": [\"$x\"]}]}",
                   XP_EINVAL, "invalid input name '$x'");
    /* Exactly one result. */
    expect_refused("{" S_PARAMS ", \"steps\": [{\"name\": \"s\"}]}", XP_EINVAL,
                   "no result step");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"result\": true}, "
                   "{\"name\": \"t\", \"result\": true}]}",
                   XP_EINVAL, "steps 's' and 't' are both the result");
    /* Types and lengths. */
    expect_refused("{\"steps\": [{\"name\": \"s\", \"line\": \"3\"}]}",
                   XP_ECORRUPT, "step 's': 'line' is not an integer");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"line\": "
                   "{\"$numberLong\": \"4294967296\"}}]}",
                   XP_ECORRUPT, "'line' is out of range");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"result\": 1}]}",
                   XP_ECORRUPT, "step 's': 'result' is not a bool");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"persisted\": \"yes\"}]}",
                   XP_ECORRUPT, "'persisted' is not a bool");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"file\": 1}]}", XP_ECORRUPT,
                   "'file' is not a string");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"symbol\": \"a b\"}]}",
                   XP_EINVAL, "symbol is not an identifier");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"symbol\": \"x*/y\"}]}",
                   XP_EINVAL, "symbol is not an identifier");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"build_id\": \"xyz\"}]}",
                   XP_EINVAL, "build id is not hexadecimal");
    /* same_as: an earlier first use, instead of the step's own code. */
    expect_refused("{" S_PARAMS ", \"steps\": [{\"name\": \"s\", "
                   "\"same_as\": \"a\", \"result\": true}]}",
                   XP_EINVAL, "same_as 'a' is not an earlier first use");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"same_as\": \"t\"}, "
                   "{\"name\": \"t\", \"source\": \"x\", \"result\": true}]}",
                   XP_EINVAL, "same_as 't' is not");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"source\": \"x\"}, "
                   "{\"name\": \"t\", \"same_as\": \"s\"}, "
                   "{\"name\": \"u\", \"same_as\": \"t\", \"result\": true}]}",
                   XP_EINVAL, "same_as 't' is not");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"source\": \"x\"}, "
                   "{\"name\": \"t\", \"same_as\": \"s\", \"source\": \"y\", "
                   "\"result\": true}]}",
                   XP_EINVAL, "step 't' has its own code and 'same_as' both");
    expect_refused("{\"steps\": [{\"name\": \"s\", \"same_as\": 1}]}",
                   XP_ECORRUPT, "'same_as' is not a string");
}

Test(capture, code_document_decoder_bounds)
{
    /* Bytes no JSON can hold: a NUL inside a name, invalid UTF-8. */
    bson_t doc = BSON_INITIALIZER, steps, step;
    BSON_APPEND_ARRAY_BEGIN(&doc, "steps", &steps);
    BSON_APPEND_DOCUMENT_BEGIN(&steps, "0", &step);
    bson_append_utf8(&step, "name", -1, "s\0t", 3);
    bson_append_document_end(&steps, &step);
    bson_append_array_end(&doc, &steps);
    expect_refused_doc(&doc, XP_ECORRUPT, "steps[0] has no name string",
                       "NUL in a name");
    bson_reinit(&doc);
    BSON_APPEND_ARRAY_BEGIN(&doc, "steps", &steps);
    BSON_APPEND_DOCUMENT_BEGIN(&steps, "0", &step);
    BSON_APPEND_UTF8(&step, "name", "s");
    bson_append_utf8(&step, "source", -1, "\xff\xfe", 2);
    bson_append_document_end(&steps, &step);
    bson_append_array_end(&doc, &steps);
    expect_refused_doc(&doc, XP_ECORRUPT, "step 's': 'source' is not a string",
                       "invalid UTF-8");
    bson_reinit(&doc);
    char name[XP_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    BSON_APPEND_ARRAY_BEGIN(&doc, "steps", &steps);
    BSON_APPEND_DOCUMENT_BEGIN(&steps, "0", &step);
    BSON_APPEND_UTF8(&step, "name", name);
    bson_append_document_end(&steps, &step);
    bson_append_array_end(&doc, &steps);
    expect_refused_doc(&doc, XP_EINVAL, "longer than 128 characters",
                       "long name");

    /* More nodes, or more inputs, than a program may define. */
    bson_reinit(&doc);
    BSON_APPEND_ARRAY_BEGIN(&doc, "steps", &steps);
    for (uint32_t i = 0; i <= XP_GRAPH_NODES_MAX; i++) {
        char key[16], n[32];
        const char *k;
        bson_uint32_to_string(i, &k, key, sizeof key);
        snprintf(n, sizeof n, "s%u", i);
        BSON_APPEND_DOCUMENT_BEGIN(&steps, k, &step);
        BSON_APPEND_UTF8(&step, "name", n);
        bson_append_document_end(&steps, &step);
    }
    bson_append_array_end(&doc, &steps);
    expect_refused_doc(&doc, XP_EINVAL, "more than 10000 parameters and steps",
                       "10001 steps");
    bson_reinit(&doc);
    bson_t params, param, inputs;
    BSON_APPEND_ARRAY_BEGIN(&doc, "parameters", &params);
    BSON_APPEND_DOCUMENT_BEGIN(&params, "0", &param);
    BSON_APPEND_UTF8(&param, "name", "a");
    bson_append_document_end(&params, &param);
    bson_append_array_end(&doc, &params);
    BSON_APPEND_ARRAY_BEGIN(&doc, "steps", &steps);
    BSON_APPEND_DOCUMENT_BEGIN(&steps, "0", &step);
    BSON_APPEND_UTF8(&step, "name", "s");
    BSON_APPEND_ARRAY_BEGIN(&step, "inputs", &inputs);
    for (uint32_t i = 0; i <= XP_STEP_INPUTS_MAX; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string(i, &k, key, sizeof key);
        BSON_APPEND_UTF8(&inputs, k, "a");
    }
    bson_append_array_end(&step, &inputs);
    bson_append_document_end(&steps, &step);
    bson_append_array_end(&doc, &steps);
    expect_refused_doc(&doc, XP_EINVAL, "step 's' has more than 10000 inputs",
                       "10001 inputs");

    /* Damaged bytes inside a step: its string runs past its document. */
    bson_reinit(&doc);
    BSON_APPEND_ARRAY_BEGIN(&doc, "steps", &steps);
    BSON_APPEND_DOCUMENT_BEGIN(&steps, "0", &step);
    BSON_APPEND_UTF8(&step, "name", "s");
    BSON_APPEND_BOOL(&step, "result", true);
    bson_append_document_end(&steps, &step);
    bson_append_array_end(&doc, &steps);
    uint8_t *bytes = bson_malloc(doc.len);
    memcpy(bytes, bson_get_data(&doc), doc.len);
    /* doc: len, array 'steps' (type, key, len), document '0' (type, key,
     * len), then "name": type, key, string length. */
    size_t at = 4 + 1 + 6 + 4 + 1 + 2 + 4 + 1 + 5;
    cr_assert_eq(bytes[at], 2, "layout: string length expected at %zu", at);
    bytes[at] = 0x40;
    bson_t damaged;
    cr_assert(bson_init_static(&damaged, bytes, doc.len), "outer length");
    expect_refused_doc(&damaged, XP_ECORRUPT, "steps[0] is damaged",
                       "damaged step");
    bson_free(bytes);
    bson_destroy(&doc);
}

/* ---------------------------------------------------------------- resume */

/* Parameter a (default 1) read by the result, u declared and unread. */
static xp_experiment *define_unread(const char *id, bool unread_default)
{
    xp_experiment *ex = xpt_open(id);
    xp_node *a = xp_parameter_literal(ex, "a", "1");
    if (unread_default)
        xp_parameter_literal(ex, "u", "5");
    else
        xp_parameter(ex, "u");
    cr_assert_not_null(XP_RESULT(ex, add_one, a), "definition");
    return ex;
}

/* xp__trial_resume of record with parameter name removed. */
static int resume_without(xp_experiment *ex, const bson_t *record,
                          const char *name, xp_trial **t, xp_error_t *err)
{
    bson_t params, without = BSON_INITIALIZER, doc = BSON_INITIALIZER;
    cr_assert(xp__bson_sub(record, "parameters", &params), "parameters");
    bson_copy_to_excluding_noinit(&params, &without, name, NULL);
    bson_copy_to_excluding_noinit(record, &doc, "parameters", NULL);
    BSON_APPEND_DOCUMENT(&doc, "parameters", &without);
    int rc = xp__trial_resume(t, ex, &doc, err);
    bson_destroy(&without);
    bson_destroy(&doc);
    return rc;
}

Test(capture, queued_trial_resumes_as_recorded)
{
    xp_experiment *ex = define_unread("resume", false);
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    xp_value *params = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_value_from_json(params = xp_value_new(),
                                    "{\"a\": 4, \"u\": 9}", &err),
                 0);
    o.params = params;
    o.has_seed = true;
    o.seed = 3;
    xp_trial *t = NULL;
    cr_assert_eq(xp__trial_start(&t, ex, &o, "test-scheduler", &err), 0,
                 "queue: '%s'", err.message);
    bson_t *record = xp__trial_record(t);
    xp__trial_free(&t);

    /* The full record: same id, seed, and every parameter. */
    cr_assert_eq(xp__trial_resume(&t, ex, record, &err), 0, "resume: '%s'",
                 err.message);
    cr_assert_eq(xp__trial_id(t), 1, "id");
    cr_assert_eq(xp__trial_seed(t), 3, "seed");
    cr_assert_eq(xp_as_int64(xp__trial_value(t, ex->nodes[0])), 4, "a");
    cr_assert_eq(xp_as_int64(xp__trial_value(t, ex->nodes[1])), 9, "u");
    xp__trial_free(&t);

    /* Queued before every parameter had to have a value: an unread one
     * without default may be missing, and reads as null. */
    cr_assert_eq(resume_without(ex, record, "u", &t, &err), 0,
                 "resume without the unread 'u': '%s'", err.message);
    cr_assert_eq(xp_value_type(xp__trial_value(t, ex->nodes[1])), XP_TYPE_NULL,
                 "missing 'u'");
    xp__trial_free(&t);
    /* A parameter the result reads is not made up: its default, else an
     * error. */
    cr_assert_eq(resume_without(ex, record, "a", &t, &err), 0, "'%s'",
                 err.message);
    cr_assert_eq(xp_as_int64(xp__trial_value(t, ex->nodes[0])), 1,
                 "default of 'a'");
    xp__trial_free(&t);
    bson_destroy(record);
    xp_value_destroy(&params);
    xp_experiment_destroy(&ex);

    ex = xpt_open("resume_read");
    xp_node *b = xp_parameter(ex, "b");
    cr_assert_not_null(XP_RESULT(ex, add_one, b), "definition");
    cr_assert_eq(xp_set_param_int64(ex, "b", 2, &err), 0);
    o.params = NULL;
    cr_assert_eq(xp__trial_start(&t, ex, &o, "test-scheduler", &err), 0,
                 "queue: '%s'", err.message);
    record = xp__trial_record(t);
    xp__trial_free(&t);
    cr_assert_eq(resume_without(ex, record, "b", &t, &err), -1,
                 "resumed without the value the result reads");
    cr_assert_eq(err.code, XP_ECORRUPT, "code %u '%s'", err.code, err.message);
    cr_assert_not_null(strstr(err.message, "'b'"), "'%s'", err.message);
    cr_assert_null(t, "trial made on failure");

    /* A name the experiment does not declare: not this graph's record. */
    bson_t params_doc, with = BSON_INITIALIZER, doc = BSON_INITIALIZER;
    cr_assert(xp__bson_sub(record, "parameters", &params_doc), "parameters");
    bson_copy_to_excluding_noinit(&params_doc, &with, "", NULL);
    BSON_APPEND_INT64(&with, "stray", 1);
    bson_copy_to_excluding_noinit(record, &doc, "parameters", NULL);
    BSON_APPEND_DOCUMENT(&doc, "parameters", &with);
    cr_assert_eq(xp__trial_resume(&t, ex, &doc, &err), -1,
                 "resumed with an undeclared parameter");
    cr_assert_eq(err.code, XP_ECORRUPT, "code %u '%s'", err.code, err.message);
    cr_assert_not_null(strstr(err.message, "'stray'"), "'%s'", err.message);
    bson_destroy(&with);
    bson_destroy(&doc);
    bson_destroy(record);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- environment
 */

static const char *const s_categories[] = {"platform", "cpu", "runtime",
                                           "libraries", "git"};

Test(capture, environment_categories)
{
    xp_experiment *ex = xpt_open("env");
    define_add_one(ex);
    int64_t t1 = run_trial(ex, false, 0, NULL);
    int64_t t2 = run_trial(ex, false, 0, NULL);
    char h1[64], h2[64];
    trial_str(ex, t1, "environment_hash", h1);
    trial_str(ex, t2, "environment_hash", h2);
    cr_assert(is_hex32(h1), "environment_hash '%s'", h1);
    cr_assert_str_eq(h1, h2,
                     "two trials of one process reference "
                     "different environments");

    xp_value *env = env_of(ex, t1, NULL);
    for (size_t i = 0; i < sizeof s_categories / sizeof *s_categories; i++) {
        const xp_value *whole =
            xpt_typed(env, s_categories[i], XP_TYPE_DOCUMENT);
        xp_value *alone = env_of(ex, t1, s_categories[i]);
        cr_assert(xp_value_equal(alone, whole),
                  "category %s alone differs "
                  "from the whole document's",
                  s_categories[i]);
        xp_value_destroy(&alone);
    }
    xp_value *bad = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_environment_get(ex, t1, "weather", &bad, &err), -1,
                 "unknown category accepted");
    cr_assert_eq(err.code, XP_EINVAL, "code %u '%s'", err.code, err.message);
    cr_assert_null(bad, "output set on failure");

    /* Stable: the second trial and this process (trial 0) are equal. */
    xp_value *env2 = env_of(ex, t2, NULL);
    xp_value *now = env_of(ex, 0, NULL);
    cr_assert(xp_value_equal(env2, env), "environment of trial 2 differs");
    cr_assert(xp_value_equal(now, env), "environment of this process "
                                        "differs from the stored one");

    /* Content checks against what this process sees. */
    const xp_value *platform = xpt_field(env, "platform");
    struct utsname u;
    cr_assert_eq(uname(&u), 0, "uname");
    cr_assert_str_eq(xpt_get_str(platform, "system"), u.sysname);
    cr_assert_str_eq(xpt_get_str(platform, "machine"), u.machine);
    cr_assert_gt(xpt_get_int(platform, "cpu_count"), 0, "cpu_count");
    const xp_value *runtime = xpt_field(env, "runtime");
    cr_assert_str_eq(xpt_get_str(runtime, "libxp_version"), XP_VERSION_STRING);
    cr_assert_str_eq(xpt_get_str(runtime, "libc_version"),
                     gnu_get_libc_version());
    const xp_value *git = xpt_field(env, "git");
    xpt_typed(git, "repository", XP_TYPE_BOOL);
    const xp_value *loaded =
        xpt_typed(xpt_field(env, "libraries"), "loaded", XP_TYPE_ARRAY);
    bool bson_seen = false;
    for (size_t i = 0; i < xp_value_count(loaded); i++) {
        const xp_value *lib = xp_value_at(loaded, i);
        if (strstr(xpt_get_str(lib, "name"), "libbson")) {
            bson_seen = true;
            cr_assert_neq(xpt_get_str(lib, "path")[0], '\0', "libbson path");
        }
    }
    cr_assert(bson_seen, "libbson not among %zu loaded libraries",
              xp_value_count(loaded));

    xp_value_destroy(&now);
    xp_value_destroy(&env2);
    xp_value_destroy(&env);
    xp_experiment_destroy(&ex);
}

/* The cpu category as read under a fake root holding proc/cpuinfo and,
 * when max_khz is not NULL, cpufreq's cpuinfo_max_freq; frequency_mhz
 * gets the recorded clock (0 when none). Caller frees the JSON. */
static char *fake_cpu(const char *model, const char *max_khz,
                      int64_t *frequency_mhz)
{
    char root[512], path[2 * 512 + 96], text[512];
    snprintf(root, sizeof root, "%s/fake%s", xpt_dir, max_khz ? "_freq" : "");
    snprintf(path, sizeof path,
             "mkdir -p %s/proc %s/sys/devices/system/cpu/cpu0/cpufreq", root,
             root);
    cr_assert_eq(system(path), 0, "%s", path);
    snprintf(path, sizeof path, "%s/proc/cpuinfo", root);
    snprintf(text, sizeof text,
             "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: %s\n"
             "cpu MHz\t\t: 1197.512\n\nprocessor\t: 1\ncpu MHz\t\t: "
             "1290.004\n",
             model);
    write_file(path, text);
    if (max_khz) {
        snprintf(path, sizeof path,
                 "%s/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
                 root);
        write_file(path, max_khz);
    }
    bson_t cpu = BSON_INITIALIZER;
    bson_iter_t it;
    xp__environment_cpu(&cpu, root);
    *frequency_mhz = 0;
    if (bson_iter_init_find(&it, &cpu, "frequency_mhz")) {
        cr_assert(BSON_ITER_HOLDS_INT64(&it), "frequency_mhz is not int64");
        *frequency_mhz = bson_iter_int64(&it);
    }
    char *json = bson_as_relaxed_extended_json(&cpu, NULL);
    bson_destroy(&cpu);
    cr_assert_null(strstr(json, "1197"), "current clock recorded: %s", json);
    cr_assert_null(strstr(json, "1290"), "current clock recorded: %s", json);
    return json;
}

Test(capture, cpu_frequency_is_the_advertised_one)
{
    int64_t mhz;
    char *json =
        fake_cpu("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", NULL, &mhz);
    cr_assert_eq(mhz, 2400, "clock from the model name: %lld MHz in %s",
                 (long long)mhz, json);
    bson_free(json);
    /* The kernel's maximum wins over the model name. */
    json = fake_cpu("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "3300000\n",
                    &mhz);
    cr_assert_eq(mhz, 3300, "clock from cpuinfo_max_freq: %lld MHz in %s",
                 (long long)mhz, json);
    cr_assert_not_null(strstr(json, "\"max_frequency_khz\" : \"3300000\""),
                       "max_frequency_khz: %s", json);
    bson_free(json);
    bson_free(fake_cpu("Intel(R) Pentium(R) M processor @ 800MHz", NULL, &mhz));
    cr_assert_eq(mhz, 800, "MHz in the model name: %lld", (long long)mhz);
    /* Neither: no clock at all rather than the current one. */
    json = fake_cpu("AMD EPYC", NULL, &mhz);
    cr_assert_eq(mhz, 0, "clock %lld MHz invented for 'AMD EPYC': %s",
                 (long long)mhz, json);
    cr_assert_null(strstr(json, "frequency"), "frequency recorded: %s", json);
    bson_free(json);
}

/* Copy of the BSON blob `SELECT doc FROM table WHERE key = ?` into out. */
static void db_doc(sqlite3 *db, const char *sql, const char *text_key,
                   int64_t int_key, bson_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    cr_assert_eq(rc, SQLITE_OK, "prepare '%s': %s", sql, sqlite3_errmsg(db));
    if (text_key)
        sqlite3_bind_text(st, 1, text_key, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(st, 1, int_key);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "'%s' (%s / %lld): no row", sql,
                 text_key ? text_key : "", (long long)int_key);
    bson_t tmp;
    cr_assert(bson_init_static(&tmp, sqlite3_column_blob(st, 0),
                               (size_t)sqlite3_column_bytes(st, 0)),
              "'%s': not BSON", sql);
    bson_copy_to(&tmp, out);
    sqlite3_finalize(st);
}

static void db_exec_blob(sqlite3 *db, const char *sql, const bson_t *doc,
                         const char *text, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    cr_assert_eq(rc, SQLITE_OK, "prepare '%s': %s", sql, sqlite3_errmsg(db));
    sqlite3_bind_blob(st, 1, bson_get_data(doc), (int)doc->len,
                      SQLITE_TRANSIENT);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(st, 2, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "'%s': %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_changes(db), 1, "'%s' changed no row", sql);
    sqlite3_finalize(st);
}

/* Copy of doc with string field parent.key (parent NULL: top level) set to
 * value; asserts the field existed. */
static void doc_set_str(const bson_t *doc, const char *parent, const char *key,
                        const char *value, bson_t *out)
{
    bson_iter_t it, sub;
    bool replaced = false;
    bson_init(out);
    cr_assert(bson_iter_init(&it, doc), "iterating a stored document");
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!parent && strcmp(k, key) == 0) {
            BSON_APPEND_UTF8(out, key, value);
            replaced = true;
        } else if (parent && strcmp(k, parent) == 0 &&
                   BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_t child;
            BSON_APPEND_DOCUMENT_BEGIN(out, parent, &child);
            cr_assert(bson_iter_recurse(&it, &sub), "%s", parent);
            while (bson_iter_next(&sub)) {
                if (strcmp(bson_iter_key(&sub), key) == 0) {
                    BSON_APPEND_UTF8(&child, key, value);
                    replaced = true;
                } else {
                    bson_append_iter(&child, NULL, 0, &sub);
                }
            }
            bson_append_document_end(out, &child);
        } else {
            bson_append_iter(out, NULL, 0, &it);
        }
    }
    cr_assert(replaced, "stored document has no field %s%s%s",
              parent ? parent : "", parent ? "." : "", key);
}

/* Simulates an environment change behind trial `id`, as if it had run
 * with another C library: its stored environment snapshot with
 * runtime.libc_version = value is stored under its own content hash, and
 * the trial references it (content addressing: a changed environment
 * always has another hash). */
static void simulate_libc_change(const char *db_path, int64_t id,
                                 const char *value)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);
    cr_assert_eq(rc, SQLITE_OK, "open %s: %s", db_path, sqlite3_errstr(rc));
    sqlite3_busy_timeout(db, 5000);
    bson_t trial, env, edited_env, edited_trial;
    db_doc(db, "SELECT doc FROM trials WHERE id = ?", NULL, id, &trial);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, &trial, "environment_hash") &&
                  BSON_ITER_HOLDS_UTF8(&it),
              "trial %lld has no environment_hash", (long long)id);
    db_doc(db, "SELECT doc FROM contents WHERE hash = ?",
           bson_iter_utf8(&it, NULL), 0, &env);
    doc_set_str(&env, "runtime", "libc_version", value, &edited_env);
    char hash[33];
    xp__hash_hex(&edited_env, hash);
    db_exec_blob(db,
                 "INSERT INTO contents(hash, kind, doc) "
                 "VALUES (?2, 'environment', ?1)",
                 &edited_env, hash, 0);
    doc_set_str(&trial, NULL, "environment_hash", hash, &edited_trial);
    db_exec_blob(db, "UPDATE trials SET doc = ?1 WHERE id = ?2", &edited_trial,
                 NULL, id);
    bson_destroy(&trial);
    bson_destroy(&env);
    bson_destroy(&edited_env);
    bson_destroy(&edited_trial);
    cr_assert_eq(sqlite3_close(db), SQLITE_OK, "close");
}

/* Opens experiment id, defines add_one and runs one trial. */
static int64_t reopen_and_run(const char *id)
{
    xp_experiment *ex = xpt_open(id);
    define_add_one(ex);
    int64_t t = run_trial(ex, false, 0, NULL);
    xp_experiment_destroy(&ex);
    return t;
}

Test(capture, environment_change_detected)
{
    reopen_and_run("envchg");
    /* Control: the same environment reports nothing. */
    log_start(XP_LOG_WARNING);
    int64_t t2 = reopen_and_run("envchg");
    cr_assert_eq(log_count(XP_LOG_WARNING, "Environment information"), 0,
                 "warning without a change: %s", xpt_log_dump(&s_log));

    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/envchg/xp.sqlite3", xpt_dir);
    simulate_libc_change(db, t2, "0.0-test");

    log_start(XP_LOG_WARNING);
    reopen_and_run("envchg");
    int h =
        log_index(XP_LOG_WARNING,
                  "Environment information has been changed: runtime", true, 0);
    cr_assert_geq(h, 0, "no runtime change warning: %s", xpt_log_dump(&s_log));
    int minus =
        log_index(XP_LOG_WARNING, "-libc_version: 0.0-test", true, (size_t)h);
    cr_assert_gt(minus, h, "no '-' diff line for the old libc version: %s",
                 xpt_log_dump(&s_log));
    char plus[128];
    snprintf(plus, sizeof plus, "+libc_version: %s", gnu_get_libc_version());
    cr_assert_gt(log_index(XP_LOG_WARNING, plus, true, (size_t)h), h,
                 "no '%s' diff line: %s", plus, xpt_log_dump(&s_log));
    cr_assert_eq(log_count(XP_LOG_WARNING, "Environment information"), 1,
                 "other categories reported as changed: %s",
                 xpt_log_dump(&s_log));
}

/* ---------------------------------------------------------------- purity */

/* x + a random number of the step: the same input gives different
 * outputs under different seeds. */
static int noisy(xp_step *st, const xp_value *const *in, xp_value *out)
{
    return xp_set_double(out, xp_random(st) + xp_as_double(in[0]));
}

static xp_experiment *open_noisy(const char *id)
{
    xp_experiment *ex = xpt_open(id);
    xp_node *x = xp_parameter(ex, "x");
    cr_assert_not_null(XP_RESULT(ex, noisy, x), "defining noisy");
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "x", 1, &err), 0, "'%s'", err.message);
    return ex;
}

#define PURITY_WARNING                                                         \
    "Experiment step result is changed with the same input: (step: noisy"

Test(capture, purity_same_seed_no_warning)
{
    log_start(XP_LOG_WARNING);
    xp_experiment *ex = open_noisy("pure");
    xp_value *r1 = NULL, *r2 = NULL;
    run_trial(ex, true, 7, &r1);
    int64_t t2 = run_trial(ex, true, 7, &r2);
    cr_assert(xp_value_equal(r1, r2), "same seed, results %.17g and %.17g",
              xp_as_double(r1), xp_as_double(r2));
    cr_assert_eq(log_count(XP_LOG_WARNING, "Experiment step result"), 0,
                 "purity warning with the same seed: %s", xpt_log_dump(&s_log));
    xp_value *doc = xpt_trial(ex, t2);
    cr_assert_null(xp_value_get(doc, "purity_warnings"),
                   "purity_warnings recorded without a warning");
    xp_value_destroy(&doc);
    xp_value_destroy(&r1);
    xp_value_destroy(&r2);
    xp_experiment_destroy(&ex);
}

Test(capture, purity_different_seed_warns)
{
    log_start(XP_LOG_WARNING);
    xp_experiment *ex = open_noisy("impure");
    xp_value *r1 = NULL, *r2 = NULL;
    int64_t t1 = run_trial(ex, true, 7, &r1);
    int64_t t2 = run_trial(ex, true, 8, &r2);
    cr_assert(!xp_value_equal(r1, r2), "different seeds, same result %.17g",
              xp_as_double(r1));
    cr_assert_eq(log_count(XP_LOG_WARNING, PURITY_WARNING), 1,
                 "want one purity warning: %s", xpt_log_dump(&s_log));
    xp_value *doc1 = xpt_trial(ex, t1);
    cr_assert_null(xp_value_get(doc1, "purity_warnings"), "first trial marked");
    xp_value *doc2 = xpt_trial(ex, t2);
    const xp_value *pw = xpt_typed(doc2, "purity_warnings", XP_TYPE_ARRAY);
    cr_assert_eq(xp_value_count(pw), 1, "purity_warnings has %zu items",
                 xp_value_count(pw));
    cr_assert(array_has(pw, "noisy"), "purity_warnings lacks 'noisy'");

    /* The latest output is what later trials are compared with. */
    run_trial(ex, true, 8, NULL);
    cr_assert_eq(log_count(XP_LOG_WARNING, PURITY_WARNING), 1,
                 "warning against an older output: %s", xpt_log_dump(&s_log));
    xp_value_destroy(&doc1);
    xp_value_destroy(&doc2);
    xp_value_destroy(&r1);
    xp_value_destroy(&r2);
    xp_experiment_destroy(&ex);
}

Test(capture, purity_input_hash_is_type_sensitive)
{
    log_start(XP_LOG_WARNING);
    xp_experiment *ex = open_noisy("typed");
    xp_value *r1 = NULL, *r2 = NULL;
    xp_error_t err = {0};
    run_trial(ex, true, 1, &r1); /* x = 1 (int64) */
    cr_assert_eq(xp_set_param_double(ex, "x", 1.0, &err), 0, "'%s'",
                 err.message);
    run_trial(ex, true, 2, &r2); /* x = 1.0 (double) */
    cr_assert(!xp_value_equal(r1, r2), "outputs should differ");
    cr_assert_eq(log_count(XP_LOG_WARNING, "Experiment step result"), 0,
                 "1 and 1.0 hashed as the same input: %s",
                 xpt_log_dump(&s_log));
    /* Control: x = 1 (int64) again under seed 2 is the same input as the
     * first trial with another output. */
    cr_assert_eq(xp_set_param_int64(ex, "x", 1, &err), 0, "'%s'", err.message);
    run_trial(ex, true, 2, NULL);
    cr_assert_eq(log_count(XP_LOG_WARNING, PURITY_WARNING), 1,
                 "no warning for the same int64 input: %s",
                 xpt_log_dump(&s_log));
    xp_value_destroy(&r1);
    xp_value_destroy(&r2);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- seeding */

static int draw(xp_step *st, xp_value *out)
{
    return xp_set_double(out, xp_random(st));
}

static int r1(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    return draw(st, out);
}

static int r2(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    return draw(st, out);
}

static int r3(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    return draw(st, out);
}

static int r4(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    return draw(st, out);
}

static int sum4(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]) +
                                  xp_as_double(in[2]) + xp_as_double(in[3]));
}

/* Runs a seeded trial of four independent random steps and their sum on
 * a handle with `threads` threads; vals[0..3] the steps, vals[4] the sum. */
static void random_trials(int threads, uint64_t seed, int n, double vals[5])
{
    xp_experiment *ex = xpt_open_threads("seeds", threads);
    xp_node *a = xp_persist(XP_STEP0(ex, r1));
    xp_node *b = xp_persist(XP_STEP0(ex, r2));
    xp_node *c = xp_persist(XP_STEP0(ex, r3));
    xp_node *d = xp_persist(XP_STEP0(ex, r4));
    cr_assert_not_null(XP_RESULT(ex, sum4, a, b, c, d), "definition");
    static const char *const names[] = {"r1", "r2", "r3", "r4"};
    for (int k = 0; k < n; k++) {
        xp_value *res = NULL;
        int64_t t = run_trial(ex, true, seed, &res);
        double got[5];
        for (int i = 0; i < 4; i++) {
            xp_value *v = NULL;
            xp_error_t err = {0};
            cr_assert_eq(xp_load_persisted(ex, names[i], t, &v, &err), 0,
                         "persisted %s: '%s'", names[i], err.message);
            got[i] = xp_as_double(v);
            xp_value_destroy(&v);
        }
        got[4] = xp_as_double(res);
        xp_value_destroy(&res);
        for (int i = 0; i < 5; i++) {
            if (k == 0)
                vals[i] = got[i];
            else
                cr_assert_eq(got[i], vals[i],
                             "threads=%d trial %d value %d:"
                             " %.17g vs %.17g",
                             threads, k, i, got[i], vals[i]);
        }
    }
    xp_experiment_destroy(&ex);
}

Test(capture, seed_reproducible_across_thread_counts)
{
    log_start(XP_LOG_WARNING);
    double one[5], four[5], other[5];
    random_trials(1, 12345, 1, one);
    random_trials(4, 12345, 3, four);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(one[i], four[i],
                     "value %d: %.17g (1 thread) vs %.17g "
                     "(4 threads)",
                     i, one[i], four[i]);
    for (int i = 0; i < 4; i++) {
        cr_assert(one[i] >= 0 && one[i] < 1, "r%d = %.17g", i + 1, one[i]);
        for (int j = 0; j < i; j++)
            cr_assert_neq(one[i], one[j],
                          "steps r%d and r%d drew the same "
                          "number",
                          j + 1, i + 1);
    }
    cr_assert_eq(log_count(XP_LOG_WARNING, "Experiment step result"), 0,
                 "purity warning for equal seeds: %s", xpt_log_dump(&s_log));
    random_trials(4, 54321, 1, other);
    cr_assert_neq(other[4], one[4], "another seed gave the same sum");
}

/* Seed recorded in trial id's document. */
static int64_t trial_seed(xp_experiment *ex, int64_t id)
{
    xp_value *t = xpt_trial(ex, id);
    int64_t s = xpt_get_int(t, "seed");
    xp_value_destroy(&t);
    return s;
}

Test(capture, seed_logged_and_recorded)
{
    log_start(XP_LOG_INFO);
    xp_experiment *ex = xpt_open("seedlog");
    define_add_one(ex);

    static const char generated[] =
        "Random seed is not provided, initialized with generated seed: ";
    int64_t t1 = run_trial(ex, false, 0, NULL);
    int i = log_index(XP_LOG_INFO, generated, false, 0);
    cr_assert_geq(i, 0, "no generated-seed line: %s", xpt_log_dump(&s_log));
    cr_assert_eq(strncmp(s_log.msg[i], generated, sizeof generated - 1), 0,
                 "line '%s'", s_log.msg[i]);
    char *end = NULL;
    unsigned long long logged =
        strtoull(s_log.msg[i] + sizeof generated - 1, &end, 10);
    cr_assert(end && *end == '\0' && end != s_log.msg[i] + sizeof generated - 1,
              "no number in '%s'", s_log.msg[i]);
    cr_assert_eq((unsigned long long)trial_seed(ex, t1), logged,
                 "recorded seed %lld, logged %llu",
                 (long long)trial_seed(ex, t1), logged);
    int64_t t2 = run_trial(ex, false, 0, NULL);
    cr_assert_neq(trial_seed(ex, t2), trial_seed(ex, t1),
                  "two generated seeds are equal");

    int64_t t3 = run_trial(ex, true, 42, NULL);
    cr_assert_geq(log_index(XP_LOG_INFO,
                            "Random seed is initialized with given seed: 42",
                            true, 0),
                  0, "no given-seed line: %s", xpt_log_dump(&s_log));
    cr_assert_eq(trial_seed(ex, t3), 42, "recorded seed %lld",
                 (long long)trial_seed(ex, t3));

    xp_experiment_set_seed(ex, 99);
    int64_t t4 = run_trial(ex, false, 0, NULL);
    cr_assert_geq(
        log_index(XP_LOG_INFO, "Random seed is initialized with given seed: 99",
                  true, 0),
        0, "default seed not logged as given: %s", xpt_log_dump(&s_log));
    cr_assert_eq(trial_seed(ex, t4), 99, "recorded seed %lld",
                 (long long)trial_seed(ex, t4));
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- diff */

Test(capture, trial_diff)
{
    xp_experiment *ex = xpt_open("diff");
    define_add_one(ex);
    xp_error_t err = {0};
    int64_t t1 = run_trial(ex, true, 5, NULL);
    cr_assert_eq(xp_set_param_int64(ex, "a", 2, &err), 0, "'%s'", err.message);
    int64_t t2 = run_trial(ex, true, 5, NULL);
    cr_assert_eq(xp_set_param_int64(ex, "a", 1, &err), 0, "'%s'", err.message);
    int64_t t3 = run_trial(ex, true, 5, NULL);

    xp_value *d = NULL;
    cr_assert_eq(xp_trial_diff(ex, t1, t2, &d, &err), 0, "diff: '%s'",
                 err.message);
    const xp_value *params = xpt_typed(d, "parameters", XP_TYPE_ARRAY);
    char *json = xp_value_to_json(params);
    cr_assert_gt(xp_value_count(params), 0, "no parameter differences");
    cr_assert(array_has(params, "-a: 1") && array_has(params, "+a: 2"),
              "parameter diff lines: %s", json);
    xp_free(json);
    cr_assert_eq(xp_value_count(xpt_typed(d, "code", XP_TYPE_ARRAY)), 0,
                 "code differs between trials of one handle");
    cr_assert_eq(xp_value_count(xpt_typed(d, "environment", XP_TYPE_ARRAY)), 0,
                 "environment differs within one process");
    xp_value_destroy(&d);

    cr_assert_eq(xp_trial_diff(ex, t1, t3, &d, &err), 0, "diff: '%s'",
                 err.message);
    static const char *const keys[] = {"parameters", "code", "environment"};
    for (size_t i = 0; i < 3; i++) {
        const xp_value *arr = xpt_typed(d, keys[i], XP_TYPE_ARRAY);
        json = xp_value_to_json(arr);
        cr_assert_eq(xp_value_count(arr), 0, "identical trials: %s differ: %s",
                     keys[i], json);
        xp_free(json);
    }
    xp_value_destroy(&d);

    cr_assert_eq(xp_trial_diff(ex, t1, 99, &d, &err), -1,
                 "diff with an unknown trial succeeded");
    cr_assert_null(d, "output set on failure");
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- git */

/* Repository work area under the test's backend directory, and the
 * working directory to come back to. */
static char s_repo[PATH_MAX];
static char s_cwd[PATH_MAX];

static void git_setup(void)
{
    xpt_setup();
    cr_assert_not_null(getcwd(s_cwd, sizeof s_cwd), "getcwd: %s",
                       strerror(errno));
    /* Only the repositories made here count. */
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    unsetenv("GIT_INDEX_FILE");
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    snprintf(s_repo, sizeof s_repo, "%s/repo", xpt_dir);
    cr_assert_eq(mkdir(s_repo, 0755), 0, "mkdir %s: %s", s_repo,
                 strerror(errno));
}

static void git_teardown(void)
{
    if (s_cwd[0] && chdir(s_cwd) != 0)
        cr_log_warn("cannot return to %s: %s", s_cwd, strerror(errno));
    xpt_teardown();
}

TestSuite(git, .init = git_setup, .fini = git_teardown, .timeout = 60);

static void sh(const char *fmt, ...) XP_PRINTF(1, 2);

/* Runs a shell command in s_repo; asserts it succeeds (output in the
 * failure message). */
static void sh(const char *fmt, ...)
{
    char cmd[1024], full[2048 + 2 * PATH_MAX], log[PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/.sh.log", xpt_dir);
    snprintf(full, sizeof full, "cd '%s' && (%s) >'%s' 2>&1", s_repo, cmd, log);
    int rc = system(full);
    if (rc != 0) {
        char *out = xpt_slurp(log);
        cr_assert_fail("`%s` failed (status %d): %s", cmd, rc, out);
    }
}

/* First line of a command's output in s_repo, trimmed, into out[256]. */
static void sh_line(const char *cmd, char *out)
{
    char full[PATH_MAX + 1100];
    snprintf(full, sizeof full, "cd '%s' && %s", s_repo, cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    if (!fgets(out, 256, p))
        out[0] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    cr_assert_eq(pclose(p), 0, "`%s` failed", cmd);
}

static void need_git(void)
{
    if (system("git --version >/dev/null 2>&1") != 0)
        xpt_skip("the git command is not available");
}

/* A repository with one committed file f.txt ("hello"). */
static void make_repo(void)
{
    need_git();
    sh("git init -q && git config user.email test@example.com && "
       "git config user.name Test && git config commit.gpgsign false && "
       "printf 'hello\\n' > f.txt && git add f.txt && "
       "git commit -q -m init");
}

/* xp__git_capture run with dir as working directory. */
static xp_value *capture_in(const char *dir)
{
    cr_assert_eq(chdir(dir), 0, "chdir %s: %s", dir, strerror(errno));
    bson_t doc = BSON_INITIALIZER;
    xp__git_capture(&doc);
    cr_assert_eq(chdir(s_cwd), 0, "chdir back: %s", strerror(errno));
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp__value_from_bson(v, &doc, &err), 0, "'%s'", err.message);
    bson_destroy(&doc);
    return v;
}

static void check_head(const xp_value *g)
{
    char head[256];
    sh_line("git rev-parse HEAD", head);
    cr_assert_str_eq(xpt_get_str(g, "commit"), head, "commit");
}

Test(git, clean_repository)
{
    make_repo();
    char branch[256], real[PATH_MAX], root[PATH_MAX + 2];
    sh_line("git symbolic-ref --short HEAD", branch);
    cr_assert(strcmp(branch, "master") == 0 || strcmp(branch, "main") == 0,
              "git created branch '%s'", branch);
    xp_value *g = capture_in(s_repo);
    cr_assert(xpt_get_bool(g, "repository"), "not seen as a repository");
    cr_assert_str_eq(xpt_get_str(g, "branch"), branch, "branch");
    check_head(g);
    cr_assert(!xpt_get_bool(g, "dirty"), "clean repository is dirty");
    cr_assert_not_null(realpath(s_repo, real), "realpath");
    cr_assert_str_eq(xpt_get_str(g, "working_dir"), real, "working_dir");
    snprintf(root, sizeof root, "%s/", real);
    const char *r = xpt_get_str(g, "root");
    cr_assert(strcmp(r, real) == 0 || strcmp(r, root) == 0, "root '%s'", r);
    const xp_value *diff = xp_value_get(g, "diff");
    cr_assert(!diff || strcmp(xp_as_string(diff, NULL), "") == 0,
              "clean repository has a diff: %s", xp_as_string(diff, NULL));
    xp_value_destroy(&g);
}

Test(git, dirty_repository_with_diff)
{
    make_repo();
    sh("printf 'changed line\\n' >> f.txt");
    xp_value *g = capture_in(s_repo);
    cr_assert(xpt_get_bool(g, "repository"), "not seen as a repository");
    cr_assert(xpt_get_bool(g, "dirty"), "modified file not dirty");
    check_head(g);
    const char *diff = xpt_get_str(g, "diff");
    cr_assert_not_null(strstr(diff, "+changed line"), "diff:\n%s", diff);
    cr_assert_not_null(strstr(diff, "f.txt"), "diff:\n%s", diff);
    xp_value_destroy(&g);
}

Test(git, detached_head)
{
    make_repo();
    sh("git checkout -q --detach");
    xp_value *g = capture_in(s_repo);
    cr_assert_str_eq(xpt_get_str(g, "branch"), "DETACHED", "branch");
    check_head(g);
    cr_assert(!xpt_get_bool(g, "dirty"), "detached checkout is dirty");
    xp_value_destroy(&g);
}

Test(git, repository_without_commits)
{
    need_git();
    sh("git init -q");
    xp_value *g = capture_in(s_repo);
    cr_assert(xpt_get_bool(g, "repository"), "not seen as a repository");
    cr_assert_str_eq(xpt_get_str(g, "commit"), "", "commit");
    xp_value_destroy(&g);
}

Test(git, no_repository)
{
    /* s_repo is a plain directory; make sure git agrees (a repository
     * around /tmp would make the test meaningless). */
    if (system("git --version >/dev/null 2>&1") == 0) {
        char full[PATH_MAX + 64];
        snprintf(full, sizeof full,
                 "git -C '%s' rev-parse --git-dir >/dev/null 2>&1", s_repo);
        if (system(full) == 0)
            xpt_skip("the temporary directory is inside a git repository");
    }
    xp_value *g = capture_in(s_repo);
    cr_assert(!xpt_get_bool(g, "repository"), "plain directory seen as a "
                                              "repository");
    char real[PATH_MAX];
    cr_assert_not_null(realpath(s_repo, real), "realpath");
    cr_assert_str_eq(xpt_get_str(g, "working_dir"), real, "working_dir");
    cr_assert_null(xp_value_get(g, "commit"), "commit outside a repository");
    xp_value_destroy(&g);
}

Test(git, remote_password_masked)
{
    make_repo();
    sh("git remote add origin https://user:secret@example.com/r.git");
    xp_value *g = capture_in(s_repo);
    const char *url = xpt_get_str(g, "remote_url");
    cr_assert_null(strstr(url, "secret"), "password stored: %s", url);
    cr_assert_not_null(strstr(url, "example.com/r.git"), "url '%s'", url);
    cr_assert_not_null(strstr(url, "user"), "user name lost: '%s'", url);
    char *json = xp_value_to_json(g);
    cr_assert_null(strstr(json, "secret"), "password in the document: %s",
                   json);
    xp_free(json);
    xp_value_destroy(&g);
}

/* Discovery walks up: a directory deep inside a work tree is in it. */
Test(git, subdirectory_of_repository)
{
    make_repo();
    sh("mkdir -p a/b/c");
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/a/b/c", s_repo);
    xp_value *g = capture_in(sub);
    cr_assert(xpt_get_bool(g, "repository"), "subdirectory not seen in its "
                                             "repository");
    check_head(g);
    xp_value_destroy(&g);
}

/* A bare repository has no .git entry; it is still a repository. */
Test(git, bare_repository)
{
    need_git();
    sh("git init -q --bare");
    xp_value *g = capture_in(s_repo);
    cr_assert(xpt_get_bool(g, "repository"), "bare repository not seen");
    xp_value_destroy(&g);
}

/* GIT_DIR names a repository elsewhere: honoured as git does. */
Test(git, git_dir_variable)
{
    make_repo();
    char git_dir[PATH_MAX + 8], plain[PATH_MAX + 8];
    snprintf(git_dir, sizeof git_dir, "%s/.git", s_repo);
    snprintf(plain, sizeof plain, "%s/plain", xpt_dir);
    cr_assert_eq(mkdir(plain, 0755), 0, "mkdir: %s", strerror(errno));
    setenv("GIT_DIR", git_dir, 1);
    xp_value *g = capture_in(plain);
    unsetenv("GIT_DIR");
    cr_assert(xpt_get_bool(g, "repository"), "GIT_DIR not honoured");
    check_head(g);
    xp_value_destroy(&g);
}

/* The environment is captured on a background thread from open; a fork
 * right after open must neither hang the child nor lose the capture. */
Test(capture, fork_right_after_open)
{
    xp_experiment *ex = xpt_open("fork_open");
    define_add_one(ex);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The child's own handle: a connection is not shared over fork. */
        alarm(20); /* a hang fails the test instead of blocking it */
        xp_open_options o = XP_OPEN_OPTIONS_INIT;
        o.backend = xpt_dir;
        xp_experiment *child = NULL;
        xp_error_t err;
        if (xp_experiment_open(&child, "fork_open", &o, &err) != 0)
            _exit(2);
        define_add_one(child);
        int rc = xp_compute(child, NULL, NULL, NULL, &err);
        xp_experiment_destroy(&child);
        _exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child trial failed (status %d)", status);
    int64_t id = run_trial(ex, false, 0, NULL);
    cr_assert_eq(id, 2, "parent trial id");
    xp_value *platform = env_of(ex, id, "platform");
    cr_assert_not_null(xp_value_get(platform, "hostname"), "no hostname");
    xp_value_destroy(&platform);
    /* Both trials refer to the same environment. */
    char a[64], b[64];
    trial_str(ex, 1, "environment_hash", a);
    trial_str(ex, 2, "environment_hash", b);
    cr_assert(is_hex32(a), "child trial has no environment hash: '%s'", a);
    cr_assert_str_eq(a, b, "child and parent environments differ");
    xp_experiment_destroy(&ex);
}
