/* test_graph.c — the experiment graph: independent steps run in parallel
 * (6 x 0.5 s in well under 3 s) with every thread, the computing one
 * included, taking ready steps; only ancestors of the result run; one
 * function used several times; parameters declared twice; one result (a
 * step made for a refused second one leaves, one the caller holds stays);
 * definition errors (duplicates, invalid names, NULL inputs, no result) are
 * reported instead of crashing, and per-step randomness is reproducible
 * whatever the thread count. */
#include "../common.h"

#include <stdatomic.h>

TestSuite(graph, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

static atomic_int g_ran;        /* steps executed */
static atomic_int g_orphan_ran; /* executions of the step off the path */
static atomic_int g_running, g_max_running;

static int nap(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    int now = atomic_fetch_add(&g_running, 1) + 1;
    int max = atomic_load(&g_max_running);
    while (now > max &&
           !atomic_compare_exchange_weak(&g_max_running, &max, now))
        ;
    struct timespec ts = {0, 500000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    atomic_fetch_sub(&g_running, 1);
    atomic_fetch_add(&g_ran, 1);
    /* sleep3 -> 4: the result proves which step produced what. */
    const char *name = xp_step_name(st);
    return xp_set_int64(out, (int64_t)(name[5] - '0') + 1);
}

static int orphan(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    atomic_fetch_add(&g_orphan_ran, 1);
    return xp_set_int64(out, -1000);
}

static int sum_all(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    int64_t s = 0;
    for (int i = 0; i < 6; i++)
        s += xp_as_int64(in[i]);
    return xp_set_int64(out, s);
}

/* 6 sleeping steps -> sum_all (result); `orphan` feeds nothing. */
static void define_sleepers(xp_experiment *ex)
{
    xp_node *sleepers[6];
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "sleep%d", i);
        sleepers[i] = xp_step_add(ex, name, nap, 0, NULL, __FILE__, __LINE__);
        cr_assert_not_null(sleepers[i], "step %s", name);
        cr_assert_str_eq(xp_node_name(sleepers[i]), name, "node name '%s'",
                         xp_node_name(sleepers[i]));
    }
    xp_node *o = xp_step_add(ex, "orphan", orphan, 1, sleepers, NULL, 0);
    cr_assert_not_null(o, "orphan");
    xp_node *r = xp_step_add(ex, "sum_all", sum_all, 6, sleepers, NULL, 0);
    cr_assert_not_null(xp_result(r), "result");
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
}

Test(graph, independent_steps_run_in_parallel)
{
    xp_experiment *ex = xpt_open_threads("parallel", 6);
    define_sleepers(ex);
    xp_value *res = NULL;
    xp_error_t err = {0};
    double t0 = xpt_now();
    int rc = xp_compute(ex, NULL, &res, NULL, &err);
    double elapsed = xpt_now() - t0;
    cr_assert_eq(rc, 0, "compute: '%s'", err.message);
    cr_assert_eq(xp_as_int64(res), 21, "sum %lld, want 1+..+6 = 21",
                 (long long)xp_as_int64(res));
    cr_assert_eq(atomic_load(&g_ran), 6, "%d sleeping steps ran",
                 atomic_load(&g_ran));
    cr_assert_lt(elapsed, 2.5,
                 "6 independent 0.5 s steps took %.2f s with 6 threads "
                 "(at most %d ran at once)",
                 elapsed, atomic_load(&g_max_running));
    cr_assert_geq(atomic_load(&g_max_running), 2,
                  "steps never overlapped (max %d at once)",
                  atomic_load(&g_max_running));
    xp_value_destroy(&res);
    xp_experiment_destroy(&ex);
}

Test(graph, only_ancestors_of_the_result_run)
{
    xp_experiment *ex = xpt_open_threads("ancestors", 6);
    define_sleepers(ex);
    xp_error_t err = {0};
    for (int i = 0; i < 2; i++)
        cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "compute: '%s'",
                     err.message);
    cr_assert_eq(atomic_load(&g_orphan_ran), 0,
                 "step not feeding the result ran %d times",
                 atomic_load(&g_orphan_ran));
    cr_assert_eq(atomic_load(&g_ran), 12, "%d sleeping steps ran, want 12",
                 atomic_load(&g_ran));
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- schedule */

static pthread_t g_caller; /* the thread calling xp_compute */
static atomic_int g_caller_ran, g_pool_ran;
static atomic_int g_branch_running, g_branch_max;

/* Sleeps seconds, counting the steps running at once (all of them, and
 * those on branches) and which thread ran the step. */
static void timed_nap(double seconds, bool branch)
{
    int now = atomic_fetch_add(&g_running, 1) + 1;
    int max = atomic_load(&g_max_running);
    while (now > max &&
           !atomic_compare_exchange_weak(&g_max_running, &max, now))
        ;
    if (branch) {
        now = atomic_fetch_add(&g_branch_running, 1) + 1;
        max = atomic_load(&g_branch_max);
        while (now > max &&
               !atomic_compare_exchange_weak(&g_branch_max, &max, now))
            ;
    }
    if (pthread_equal(pthread_self(), g_caller))
        atomic_fetch_add(&g_caller_ran, 1);
    else
        atomic_fetch_add(&g_pool_ran, 1);
    xpt_sleep(seconds);
    if (branch)
        atomic_fetch_sub(&g_branch_running, 1);
    atomic_fetch_sub(&g_running, 1);
}

static int quarter_nap(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    timed_nap(0.25, false);
    return xp_set_int64(out, 1);
}

Test(graph, the_computing_thread_keeps_taking_ready_steps)
{
    /* 6 independent steps on 2 threads: the caller and the pool thread
     * each take ready steps while any is left (dask: 3 rounds), instead
     * of the caller running one and the pool thread the other five. */
    xp_experiment *ex = xpt_open_threads("every_thread", 2);
    xp_node *n[6];
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "quarter%d", i);
        n[i] = xp_step_add(ex, name, quarter_nap, 0, NULL, NULL, 0);
    }
    xp_result(xp_step_add(ex, "sum_all", sum_all, 6, n, NULL, 0));
    g_caller = pthread_self();
    xp_value *res = NULL;
    xp_error_t err = {0};
    double t0 = xpt_now();
    cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0, "compute: '%s'",
                 err.message);
    double elapsed = xpt_now() - t0;
    cr_assert_eq(xp_as_int64(res), 6, "sum %lld", (long long)xp_as_int64(res));
    int caller = atomic_load(&g_caller_ran), pool = atomic_load(&g_pool_ran);
    cr_assert_eq(caller + pool, 6, "%d + %d steps ran", caller, pool);
    cr_assert_geq(caller, 2,
                  "the computing thread ran %d step(s), the pool %d: it "
                  "stopped taking ready steps",
                  caller, pool);
    cr_assert_geq(pool, 1, "the pool thread ran no step");
    cr_assert_leq(atomic_load(&g_max_running), 2,
                  "%d steps at once on 2 threads", atomic_load(&g_max_running));
    /* Secondary, loose: 3 rounds of 0.25 s, not 1 + 5. */
    cr_assert_lt(elapsed, 1.15, "6 x 0.25 s on 2 threads took %.2f s", elapsed);
    xp_value_destroy(&res);
    xp_experiment_destroy(&ex);
}

static atomic_bool g_slow_running;
static atomic_int g_branches_beside_slow;

static int long_nap(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    atomic_store(&g_slow_running, true);
    timed_nap(1.0, false);
    atomic_store(&g_slow_running, false);
    return xp_set_int64(out, 1);
}

static int head_step(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 1);
}

static int branch_nap(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    timed_nap(0.2, true);
    if (atomic_load(&g_slow_running))
        atomic_fetch_add(&g_branches_beside_slow, 1);
    return xp_set_int64(out, xp_as_int64(in[0]));
}

static int sum_five(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    int64_t s = 0;
    for (int i = 0; i < 5; i++)
        s += xp_as_int64(in[i]);
    return xp_set_int64(out, s);
}

Test(graph, steps_made_ready_by_a_pool_thread_use_the_idle_ones)
{
    /* The caller is busy with a long step when a short one, on a pool
     * thread, makes four branches ready: both pool threads take them,
     * not only the one that finished. */
    xp_experiment *ex = xpt_open_threads("pool_fanout", 3);
    xp_node *slow = xp_step_add(ex, "slow", long_nap, 0, NULL, NULL, 0);
    xp_node *head = xp_step_add(ex, "head", head_step, 0, NULL, NULL, 0);
    xp_node *in[5] = {slow};
    for (int i = 1; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "branch%d", i);
        in[i] = xp_step_add(ex, name, branch_nap, 1, &head, NULL, 0);
    }
    xp_result(xp_step_add(ex, "sum_five", sum_five, 5, in, NULL, 0));
    g_caller = pthread_self();
    xp_value *res = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert_eq(xp_as_int64(res), 5, "sum %lld", (long long)xp_as_int64(res));
    cr_assert_eq(atomic_load(&g_branches_beside_slow), 4,
                 "%d of 4 branches ran while the caller ran the long step",
                 atomic_load(&g_branches_beside_slow));
    cr_assert_eq(atomic_load(&g_branch_max), 2,
                 "at most %d branch(es) ran at once on the 2 pool threads",
                 atomic_load(&g_branch_max));
    cr_assert_leq(atomic_load(&g_max_running), 3,
                  "%d steps at once on 3 threads", atomic_load(&g_max_running));
    xp_value_destroy(&res);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- errors */

static int ident(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

static int sum_all_two(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]));
}

static int constant(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 1);
}

/* Asserts ex's definition is invalid with `code`, and that compute fails
 * the same way without recording a trial. */
static void expect_definition_error(xp_experiment *ex, uint32_t code,
                                    const char *what)
{
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), -1, "%s: check passed", what);
    if (code)
        cr_assert_eq(err.code, code, "%s: check code %u (%s), want %u: '%s'",
                     what, err.code, xp_strerror(err.code), code, err.message);
    cr_assert_str_not_empty(err.message, "%s: no message", what);
    cr_assert_null(strchr(err.message, '\n'), "%s: multi-line message", what);
    xp_error_t err2 = {0};
    int64_t id = -1;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err2), -1,
                 "%s: compute succeeded", what);
    if (code)
        cr_assert_eq(err2.code, code, "%s: compute code %u, want %u: '%s'",
                     what, err2.code, code, err2.message);
    cr_assert_eq(id, 0, "%s: compute reported trial %lld", what, (long long)id);
    cr_assert_eq(xpt_last_id(ex), 0, "%s: a trial id was consumed", what);
}

Test(graph, duplicate_step_names)
{
    /* The same name for another function (a second use of one function
     * is a new node: graph::one_function_used_six_times). */
    xp_experiment *ex = xpt_open("dup_steps");
    xp_node *a = xp_parameter(ex, "a");
    xp_node *s1 = xp_step_add(ex, "dup", ident, 1, &a, NULL, 0);
    cr_assert_not_null(s1, "first 'dup'");
    xp_node *s2 = xp_step_add(ex, "dup", constant, 1, &a, NULL, 0);
    cr_assert_null(s2, "second step 'dup' accepted");
    xp_result(s1);
    expect_definition_error(ex, XP_EEXIST, "duplicate step");
    xp_experiment_destroy(&ex);
}

/* Log lines of the running test (each criterion test is a process). */
static xpt_log s_log;

static void log_start(void)
{
    xpt_log_init(&s_log);
    xp_log_set_handler(xpt_log_fn, &s_log);
}

/* Computes ex with a=a_value and returns the result. */
static int64_t compute_with_a(xp_experiment *ex, int64_t a_value)
{
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", a_value, &err), 0, "set a: '%s'",
                 err.message);
    xp_value *res = NULL;
    cr_assert_eq(xp_compute(ex, NULL, &res, NULL, &err), 0, "compute: '%s'",
                 err.message);
    int64_t v = xp_as_int64(res);
    xp_value_destroy(&res);
    return v;
}

Test(graph, parameter_declared_twice_is_the_same_parameter)
{
    /* daskperiment returns the existing parameter. */
    xp_experiment *ex = xpt_open("redeclared");
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(a, "first 'a'");
    cr_assert_eq(xp_parameter(ex, "a"), a, "second 'a' is another node");
    xp_value *one = xpt_int(1);
    xp_node *b = xp_parameter_default(ex, "b", one);
    cr_assert_eq(xp_parameter_default(ex, "b", one), b,
                 "'b' with the same default is another node");
    cr_assert_eq(xp_parameter_literal(ex, "b", "1"), b,
                 "'b' with the same literal default is another node");
    xp_value_destroy(&one);
    xp_node *in[] = {a, b};
    xp_result(xp_step_add(ex, "first_of", sum_all_two, 2, in, NULL, 0));
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
    cr_assert_eq(compute_with_a(ex, 5), 6, "a + b");
    /* After the first trial too. */
    cr_assert_eq(xp_parameter(ex, "a"), a, "'a' after the first trial");
    xp_experiment_destroy(&ex);
}

Test(graph, conflicting_parameter_default_keeps_the_first_declaration)
{
    xp_experiment *ex = xpt_open("conflicting");
    log_start();
    xp_node *a = xp_parameter(ex, "a");
    xp_value *one = xpt_int(1), *two = xpt_int(2), *one_double = NULL;
    one_double = xp_value_new();
    xp_set_double(one_double, 1.0);
    xp_node *b = xp_parameter_default(ex, "b", one);
    cr_assert_null(xp_parameter_default(ex, "a", one),
                   "'a' redeclared with a default");
    cr_assert_null(xp_parameter_default(ex, "b", two),
                   "'b' redeclared with another default");
    cr_assert_null(xp_parameter_default(ex, "b", one_double),
                   "'b' redeclared with 1.0 instead of 1");
    cr_assert_null(xp_parameter(ex, "b"), "'b' redeclared without default");
    cr_assert_geq(xpt_log_find(&s_log, XP_LOG_ERROR,
                               "parameter 'b' is already declared with "
                               "default 1, cannot declare it again with "
                               "default 2"),
                  0, "no clear error logged: %s", xpt_log_dump(&s_log));
    cr_assert_geq(xpt_log_find(&s_log, XP_LOG_ERROR,
                               "parameter 'a' is already declared with no "
                               "default"),
                  0, "no clear error logged: %s", xpt_log_dump(&s_log));
    xp_value_destroy(&one);
    xp_value_destroy(&two);
    xp_value_destroy(&one_double);
    /* The definition is not poisoned: the first declarations stand. */
    xp_node *in[] = {a, b};
    xp_result(xp_step_add(ex, "first_of", sum_all_two, 2, in, NULL, 0));
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
    cr_assert_eq(compute_with_a(ex, 5), 6, "a + default b");
    xp_experiment_destroy(&ex);

    /* The refused node given to a step: that error says why. */
    ex = xpt_open("conflicting_used");
    xp_parameter(ex, "a");
    xp_node *again = xp_parameter_literal(ex, "a", "3");
    cr_assert_null(again, "'a' redeclared with a default");
    cr_assert_null(XP_RESULT(ex, ident, again), "step over the refused 'a'");
    expect_definition_error(ex, XP_EINVAL, "refused parameter as input");
    xp_experiment_check(ex, &err);
    cr_assert_not_null(strstr(err.message, "already declared"),
                       "error does not say why the input is missing: '%s'",
                       err.message);
    xp_experiment_destroy(&ex);
}

Test(graph, parameter_named_like_a_step_is_a_duplicate)
{
    xp_experiment *ex = xpt_open("param_step_clash");
    xp_node *a = xp_parameter(ex, "a");
    xp_node *s = xp_step_add(ex, "s", ident, 1, &a, NULL, 0);
    cr_assert_null(xp_parameter(ex, "s"), "parameter 's' over step 's'");
    xp_result(s);
    expect_definition_error(ex, XP_EEXIST, "parameter named like a step");
    xp_experiment_destroy(&ex);
}

static int plus_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

/* Occurrences of needle in text. */
static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(graph, second_result_is_refused_and_the_first_stays)
{
    xp_experiment *ex = xpt_open("two_results");
    log_start();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *r = XP_RESULT(ex, plus_one, a);
    cr_assert_not_null(r, "first result");
    cr_assert_eq(xp_result(r), r, "the same result again");
    cr_assert_null(XP_RESULT(ex, ident, a), "second result accepted");
    int line = xpt_log_find(&s_log, XP_LOG_ERROR,
                            "the result of experiment 'two_results' is "
                            "already step 'plus_one', cannot also be "
                            "'ident'");
    cr_assert_geq(line, 0, "no clear error logged: %s", xpt_log_dump(&s_log));
    cr_assert_not_null(strstr(s_log.msg[line], "second experiment id"),
                       "no way out in '%s'", s_log.msg[line]);
    cr_assert_not_null(strstr(s_log.msg[line], "xp_persist"),
                       "no way out in '%s'", s_log.msg[line]);
    /* Recoverable: the experiment keeps its first result and runs. */
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
    cr_assert_eq(compute_with_a(ex, 1), 2, "result of plus_one");
    xp_value *code = NULL;
    cr_assert_eq(xp_code_get(ex, 1, &code, &err), 0, "code: '%s'", err.message);
    const xp_value *steps = xp_value_get(code, "steps");
    size_t results = 0;
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const xp_value *st = xp_value_at(steps, i);
        if (xp_as_bool(xp_value_get(st, "result"))) {
            results++;
            cr_assert_str_eq(xpt_get_str(st, "name"), "plus_one");
        }
    }
    cr_assert_eq(results, 1, "%zu result steps in the code", results);
    /* The step XP_RESULT made for the refused call left with it: the code
     * shows no step that was never wanted and never runs. */
    cr_assert_eq(xp_value_count(steps), 1, "%zu steps in the code",
                 xp_value_count(steps));
    xp_value_destroy(&code);
    xp_experiment_destroy(&ex);
}

Test(graph, step_refused_as_second_result_stays_when_held)
{
    xp_experiment *ex = xpt_open("held_second");
    log_start();
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(XP_RESULT(ex, plus_one, a), "first result");
    /* Refused by XP_RESULT: gone, so the name is free again. */
    cr_assert_null(XP_RESULT(ex, ident, a), "second result accepted");
    xp_node *held = XP_STEP(ex, ident, a);
    cr_assert_str_eq(xp_node_name(held), "ident", "name after the refusal");
    /* Made by the caller, who holds it: an extra step, still usable. */
    cr_assert_null(xp_result(held), "second result accepted");
    cr_assert_str_eq(xp_node_name(held), "ident", "the held node");
    xp_node *after = XP_STEP(ex, plus_one, held);
    cr_assert_not_null(after, "the held step as an input");
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
    cr_assert_eq(compute_with_a(ex, 1), 2, "result of plus_one");
    xp_value *code = NULL;
    cr_assert_eq(xp_code_get(ex, 1, &code, &err), 0, "code: '%s'", err.message);
    cr_assert_eq(xp_value_count(xpt_field(code, "steps")), 3, "steps");
    xp_value_destroy(&code);
    /* The text says which steps never run. */
    char *text = NULL;
    cr_assert_eq(xp_code_text(ex, 1, &text, &err), 0, "text: '%s'",
                 err.message);
    cr_assert_not_null(strstr(text, "/* step ident (registered at "),
                       "ident:\n%s", text);
    cr_assert_eq(count_of(text, "not needed by the result: never runs"), 2,
                 "extra steps not marked:\n%s", text);
    xp_free(text);
    xp_experiment_destroy(&ex);
}

/* daskperiment's long_task: one function applied to several inputs. */
static int long_task(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) * 10);
}

/* The step called name in a code document. */
static const xp_value *code_step(const xp_value *code, const char *name)
{
    const xp_value *steps = xpt_typed(code, "steps", XP_TYPE_ARRAY);
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const xp_value *st = xp_value_at(steps, i);
        if (strcmp(xpt_get_str(st, "name"), name) == 0)
            return st;
    }
    cr_assert_fail("no step '%s' in the code", name);
    return NULL;
}

/* Source of the step called name in a code document. */
static const char *step_source(const xp_value *code, const char *name)
{
    return xpt_get_str(code_step(code, name), "source");
}

Test(graph, one_function_used_six_times)
{
    xp_experiment *ex = xpt_open("six_uses");
    log_start();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *uses[6];
    for (int i = 0; i < 6; i++) {
        uses[i] = XP_STEP(ex, long_task, a);
        char want[32] = "long_task";
        if (i > 0)
            snprintf(want, sizeof want, "long_task-%d", i + 1);
        cr_assert_not_null(uses[i], "use %d refused", i + 1);
        cr_assert_str_eq(xp_node_name(uses[i]), want, "use %d", i + 1);
    }
    xp_result(xp_step_add(ex, "sum_all", sum_all, 6, uses, NULL, 0));
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
    cr_assert_eq(compute_with_a(ex, 2), 120, "6 uses of long_task(2)");
    /* The document holds the function's source once, at its first use;
     * each later use names it and records the function's symbol. */
    xp_value *code = NULL;
    cr_assert_eq(xp_code_get(ex, 1, &code, &err), 0, "code: '%s'", err.message);
    const char *first = step_source(code, "long_task");
    cr_assert_not_null(strstr(first, "static int long_task(xp_step *st"),
                       "source of long_task:\n%s", first);
    cr_assert_str_eq(xpt_get_str(code_step(code, "long_task"), "symbol"),
                     "long_task");
    for (int i = 2; i <= 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "long_task-%d", i);
        const xp_value *st = code_step(code, name);
        cr_assert_str_eq(xpt_get_str(st, "same_as"), "long_task", "%s", name);
        cr_assert_str_eq(xpt_get_str(st, "symbol"), "long_task", "%s", name);
        cr_assert_null(xp_value_get(st, "source"), "%s repeats the source",
                       name);
        cr_assert_null(xp_value_get(st, "build_id"), "%s has a build id", name);
        cr_assert_eq(xpt_get_int(st, "line"),
                     xpt_get_int(code_step(code, "long_task"), "line"),
                     "%s registered elsewhere", name);
    }
    char *json = xp_value_to_json(code);
    cr_assert_eq(count_of(json, "static int long_task(xp_step *st"), 1,
                 "the source is not stored once: %s", json);
    xp_free(json);
    xp_value_destroy(&code);
    /* As text (`xp code`): every step listed, the source shown once. */
    char *text = NULL;
    cr_assert_eq(xp_code_text(ex, 1, &text, &err), 0, "text: '%s'",
                 err.message);
    cr_assert_eq(count_of(text, "static int long_task(xp_step *st"), 1,
                 "source shown more than once:\n%s", text);
    cr_assert_not_null(strstr(text, "/* step long_task (registered at "),
                       "no long_task:\n%s", text);
    for (int i = 2; i <= 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "/* step long_task-%d (registered at ", i);
        const char *at = strstr(text, want);
        cr_assert_not_null(at, "step long_task-%d not listed:\n%s", i, text);
        cr_assert_not_null(strstr(at, "function long_task, as step long_task "
                                      "above */"),
                           "long_task-%d does not say whose code:\n%s", i,
                           text);
    }
    xp_free(text);
    cr_assert_lt(xpt_log_find(&s_log, XP_LOG_WARNING, "not found"), 0,
                 "a definition was not found: %s", xpt_log_dump(&s_log));
    xp_experiment_destroy(&ex);
}

Test(graph, step_named_otherwise_than_its_function_keeps_its_source)
{
    xp_experiment *ex = xpt_open("renamed");
    log_start();
    xp_node *a = xp_parameter(ex, "a");
    xp_node *in[] = {
        xp_step_add(ex, "scaled", long_task, 1, &a, __FILE__, __LINE__),
        xp_step_add(ex, "scaled_again", long_task, 1, &a, __FILE__, __LINE__)};
    xp_result(xp_step_add(ex, "total", sum_all_two, 2, in, __FILE__, __LINE__));
    cr_assert_eq(compute_with_a(ex, 1), 20, "scaled + scaled_again");
    xp_value *code = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_code_get(ex, 1, &code, &err), 0, "code: '%s'", err.message);
    cr_assert_not_null(
        strstr(step_source(code, "scaled"), "static int long_task(xp_step *st"),
        "source of 'scaled':\n%s", step_source(code, "scaled"));
    /* The symbol is the function's, whatever the step's name. */
    cr_assert_str_eq(xpt_get_str(code_step(code, "scaled"), "symbol"),
                     "long_task");
    cr_assert_str_eq(xpt_get_str(code_step(code, "scaled_again"), "symbol"),
                     "long_task");
    cr_assert_str_eq(xpt_get_str(code_step(code, "scaled_again"), "same_as"),
                     "scaled", "the second use does not refer to the first");
    cr_assert_not_null(strstr(step_source(code, "total"),
                              "static int sum_all_two(xp_step *st"),
                       "source of 'total':\n%s", step_source(code, "total"));
    cr_assert_str_eq(xpt_get_str(code_step(code, "total"), "symbol"),
                     "sum_all_two");
    xp_value_destroy(&code);
    cr_assert_lt(xpt_log_find(&s_log, XP_LOG_WARNING, "not found"), 0,
                 "a definition was not found: %s", xpt_log_dump(&s_log));
    xp_experiment_destroy(&ex);
}

Test(graph, invalid_node_names)
{
    const char *bad[] = {"", "a/b", "-x", "a.b", "$where", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "bad_param_%zu", i);
        xp_experiment *ex = xpt_open(id);
        xp_node *p = xp_parameter(ex, bad[i]);
        cr_assert_null(p, "parameter '%s' accepted", bad[i]);
        expect_definition_error(ex, XP_EINVAL, bad[i]);
        xp_experiment_destroy(&ex);

        snprintf(id, sizeof id, "bad_step_%zu", i);
        ex = xpt_open(id);
        xp_node *s = xp_step_add(ex, bad[i], constant, 0, NULL, NULL, 0);
        cr_assert_null(s, "step '%s' accepted", bad[i]);
        expect_definition_error(ex, XP_EINVAL, bad[i]);
        xp_experiment_destroy(&ex);
    }
}

Test(graph, null_input_propagates)
{
    /* An explicit NULL input. */
    xp_experiment *ex = xpt_open("null_input");
    xp_node *s = XP_STEP(ex, ident, NULL);
    cr_assert_null(s, "step over a NULL input accepted");
    cr_assert_null(xp_result(s), "xp_result(NULL) returned a node");
    cr_assert_null(xp_persist(NULL), "xp_persist(NULL) returned a node");
    expect_definition_error(ex, 0, "NULL input");
    xp_experiment_destroy(&ex);

    /* A failed constructor feeding later steps: the first error wins. */
    ex = xpt_open("null_chain");
    xp_node *p = xp_parameter(ex, "bad/name");
    xp_node *t = XP_STEP(ex, ident, p);
    xp_node *r = XP_RESULT(ex, ident, t);
    cr_assert_null(t, "step over a failed parameter accepted");
    cr_assert_null(r, "result over a failed step accepted");
    expect_definition_error(ex, XP_EINVAL, "failed parameter");
    xp_error_t err = {0};
    xp_experiment_check(ex, &err);
    cr_assert_not_null(strstr(err.message, "bad"),
                       "first error is not about the parameter 'bad/name': "
                       "'%s'",
                       err.message);
    xp_experiment_destroy(&ex);

    /* Inputs with n > 0 but no array. */
    ex = xpt_open("null_array");
    cr_assert_null(xp_step_add(ex, "s", ident, 1, NULL, NULL, 0),
                   "n=1 with NULL inputs accepted");
    expect_definition_error(ex, 0, "NULL input array");
    xp_experiment_destroy(&ex);

    /* NULL function. */
    ex = xpt_open("null_fn");
    cr_assert_null(xp_step_add(ex, "s", NULL, 0, NULL, NULL, 0),
                   "NULL step function accepted");
    expect_definition_error(ex, 0, "NULL function");
    xp_experiment_destroy(&ex);
}

Test(graph, foreign_node_is_refused)
{
    xp_experiment *a = xpt_open("owner_a");
    xp_experiment *b = xpt_open("owner_b");
    xp_node *pa = xp_parameter(a, "x");
    cr_assert_not_null(pa, "parameter");
    xp_node *s = xp_step_add(b, "uses_foreign", ident, 1, &pa, NULL, 0);
    cr_assert_null(s, "a node of another experiment accepted as input");
    expect_definition_error(b, 0, "foreign node");
    xp_experiment_destroy(&b);
    xp_experiment_destroy(&a);
}

Test(graph, no_result_is_an_error)
{
    xp_experiment *ex = xpt_open("no_result");
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(XP_STEP(ex, ident, a), "step");
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 1, &err);
    int64_t id = -1;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), -1,
                 "compute without a result succeeded");
    cr_assert_str_not_empty(err.message, "no message");
    cr_assert_eq(id, 0, "trial %lld reported", (long long)id);
    cr_assert_eq(xpt_last_id(ex), 0, "a trial id was consumed");
    xp_experiment_destroy(&ex);

    /* An empty experiment too. */
    ex = xpt_open("empty");
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1,
                 "compute of an empty experiment succeeded");
    xp_experiment_destroy(&ex);
}

static int fail_fast(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    (void)out;
    return xp_step_fail(st, "broken branch %d", 3);
}

Test(graph, failing_parallel_branch_fails_the_trial)
{
    xp_experiment *ex = xpt_open_threads("failing_branch", 4);
    xp_node *n[6];
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "sleep%d", i);
        n[i] = xp_step_add(ex, name, nap, 0, NULL, NULL, 0);
    }
    n[5] = xp_step_add(ex, "fail_fast", fail_fast, 0, NULL, NULL, 0);
    xp_result(xp_step_add(ex, "sum_all", sum_all, 6, n, NULL, 0));
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), -1,
                 "trial with a failing branch succeeded");
    cr_assert_eq(err.code, XP_ESTEP, "code %u '%s'", err.code, err.message);
    cr_assert_not_null(strstr(err.message, "fail_fast: broken branch 3"),
                       "message '%s'", err.message);
    xp_value *t = xpt_trial(ex, id);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed", "status");
    cr_assert_str_eq(xpt_get_str(t, "description"),
                     "fail_fast: broken branch 3", "description '%s'",
                     xpt_get_str(t, "description"));
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- RNG */

static int draw(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    if (xp_set_document(out) != 0)
        return -1;
    xp_set_int64(xp_document_set(out, "seed"), (int64_t)xp_step_seed(st));
    xp_value *u = xp_document_set(out, "u64");
    xp_set_array(u);
    for (int i = 0; i < 8; i++)
        xp_set_int64(xp_array_append(u), (int64_t)xp_random_u64(st));
    xp_value *f = xp_document_set(out, "unit");
    xp_set_array(f);
    for (int i = 0; i < 1000; i++) {
        double x = xp_random(st);
        if (!(x >= 0.0 && x < 1.0))
            return xp_step_fail(st, "xp_random gave %g", x);
        if (i < 8)
            xp_set_double(xp_array_append(f), x);
    }
    return 0;
}

static int collect(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    if (xp_set_document(out) != 0)
        return -1;
    static const char *const names[] = {"r0", "r1", "r2", "r3"};
    for (int i = 0; i < 4; i++)
        xp_set_value(xp_document_set(out, names[i]), in[i]);
    return 0;
}

static xp_value *random_trial(const char *id, int threads, uint64_t seed)
{
    xp_experiment *ex = xpt_open_threads(id, threads);
    xp_node *r[4];
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", i);
        r[i] = xp_step_add(ex, name, draw, 0, NULL, NULL, 0);
    }
    xp_result(xp_step_add(ex, "collect", collect, 4, r, NULL, 0));
    xp_run_options ro = XP_RUN_OPTIONS_INIT;
    ro.has_seed = true;
    ro.seed = seed;
    xp_value *res = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_compute(ex, &ro, &res, NULL, &err), 0, "compute(%s): '%s'",
                 id, err.message);
    xp_experiment_destroy(&ex);
    return res;
}

Test(graph, per_step_rng_is_reproducible)
{
    xp_value *one = random_trial("rng_t1", 1, 2024);
    xp_value *four = random_trial("rng_t4", 4, 2024);
    xp_value *again = random_trial("rng_t4", 4, 2024);
    xp_value *other = random_trial("rng_other", 4, 2025);
    char *j1 = xpt_json(one), *j4 = xpt_json(four);
    cr_assert(xp_value_equal(one, four),
              "same seed, 1 vs 4 threads differ:\n%s\n%s", j1, j4);
    cr_assert(xp_value_equal(four, again), "same seed twice differs");
    cr_assert(!xp_value_equal(one, other), "seeds 2024 and 2025 agree");
    xp_free(j1);
    xp_free(j4);

    /* Different step names get different seeds and sequences. */
    static const char *const names[] = {"r0", "r1", "r2", "r3"};
    for (int i = 0; i < 4; i++)
        for (int k = i + 1; k < 4; k++) {
            const xp_value *a = xp_value_get(one, names[i]);
            const xp_value *b = xp_value_get(one, names[k]);
            cr_assert_neq(xpt_get_int(a, "seed"), xpt_get_int(b, "seed"),
                          "steps %s and %s share seed %lld", names[i], names[k],
                          (long long)xpt_get_int(a, "seed"));
            cr_assert(!xp_value_equal(xpt_field(a, "u64"), xpt_field(b, "u64")),
                      "steps %s and %s draw the same numbers", names[i],
                      names[k]);
        }
    /* Within one step the numbers vary. */
    const xp_value *u = xpt_field(xp_value_get(one, "r0"), "u64");
    cr_assert_neq(xp_as_int64(xp_value_at(u, 0)),
                  xp_as_int64(xp_value_at(u, 1)), "sequence repeats");
    xp_value_destroy(&one);
    xp_value_destroy(&four);
    xp_value_destroy(&again);
    xp_value_destroy(&other);
}
