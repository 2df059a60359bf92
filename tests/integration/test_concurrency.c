/* test_concurrency.c — trials computed concurrently by 8 threads of one
 * process and by 4 processes on one backend get unique contiguous ids and
 * nothing is lost or mixed; a process killed mid-trial leaves its trial
 * `interrupted` (never running, never missing) and the store usable. */
#include "../common.h"

#include <stdatomic.h>

TestSuite(concurrency, .init = xpt_setup, .fini = xpt_teardown,
          .timeout = 120);

static int plus_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]) + 1);
}

/* A parallel branch so the graph itself is concurrent too. */
static int echo(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

static int combine(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]) -
                                 xp_as_int64(in[2]));
}

/* a, b -> plus_one; a -> echo; (plus_one, echo, echo) -> result = a+b+1. */
static void define_sum(xp_experiment *ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *p = XP_STEP(ex, plus_one, a, b);
    xp_node *e = XP_STEP(ex, echo, a);
    xp_node *r = XP_RESULT(ex, combine, p, e, e);
    cr_assert_not_null(r, "definition");
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);
}

/* Every trial of ex: ids exactly 1..n, succeeded, result == a + b + 1.
 * seen_a (may be NULL) gets each trial's a, indexed by id. */
static void check_history(xp_experiment *ex, size_t n, int64_t *seen_a)
{
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), n, "history has %zu trials, want %zu",
                 xp_value_count(h), n);
    for (size_t i = 0; i < n; i++) {
        const xp_value *t = xp_value_at(h, i);
        int64_t id = xpt_get_int(t, "trial_id");
        cr_assert_eq(id, (int64_t)i + 1, "history[%zu] is trial %lld", i,
                     (long long)id);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded",
                         "trial %lld status '%s' ('%s')", (long long)id,
                         xpt_get_str(t, "status"),
                         xpt_get_str(t, "description"));
        cr_assert(xpt_get_bool(t, "success"), "trial %lld not a success",
                  (long long)id);
        const xp_value *p = xpt_field(t, "parameters");
        int64_t a = xpt_get_int(p, "a"), b = xpt_get_int(p, "b");
        int64_t r = xpt_get_int(t, "result");
        cr_assert_eq(r, a + b + 1,
                     "trial %lld mixed: a=%lld b=%lld result=%lld",
                     (long long)id, (long long)a, (long long)b, (long long)r);
        if (seen_a)
            seen_a[id] = a;
    }
    xp_value_destroy(&h);
    cr_assert_eq(xpt_last_id(ex), (int64_t)n, "last id %lld, want %zu",
                 (long long)xpt_last_id(ex), n);
}

/* ---------------------------------------------------------------- threads */

#define N_THREADS 8
#define PER_THREAD 50

typedef struct {
    xp_experiment *ex;
    int thread;
    int64_t ids[PER_THREAD];
    int failures;
    char error[512];
} worker;

static void *thread_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        int64_t a = (int64_t)w->thread * 1000 + i, b = (int64_t)i * 7 + 3;
        xp_value *params = xp_value_new();
        xp_set_document(params);
        xp_set_int64(xp_document_set(params, "a"), a);
        xp_set_int64(xp_document_set(params, "b"), b);
        xp_run_options ro = XP_RUN_OPTIONS_INIT;
        ro.params = params;
        xp_value *res = NULL;
        xp_error_t err = {0};
        int64_t id = 0;
        if (xp_compute(w->ex, &ro, &res, &id, &err) != 0) {
            w->failures++;
            snprintf(w->error, sizeof w->error, "a=%lld: %.400s", (long long)a,
                     err.message);
        } else if (xp_as_int64(res) != a + b + 1) {
            w->failures++;
            snprintf(w->error, sizeof w->error,
                     "a=%lld b=%lld returned %lld", (long long)a,
                     (long long)b, (long long)xp_as_int64(res));
        }
        w->ids[i] = id;
        xp_value_destroy(&res);
        xp_value_destroy(&params);
    }
    return NULL;
}

Test(concurrency, threads_get_unique_contiguous_ids)
{
    xp_experiment *ex = xpt_open_threads("threads", 2);
    define_sum(ex);
    static worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        w[t].ex = ex;
        w[t].thread = t;
        cr_assert_eq(pthread_create(&th[t], NULL, thread_main, &w[t]), 0,
                     "pthread_create");
    }
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    const size_t total = N_THREADS * PER_THREAD;
    static int seen[N_THREADS * PER_THREAD + 1];
    static int64_t thread_of[N_THREADS * PER_THREAD + 1];
    for (int t = 0; t < N_THREADS; t++) {
        cr_assert_eq(w[t].failures, 0, "thread %d: %d failures, last: %s", t,
                     w[t].failures, w[t].error);
        int64_t prev = 0;
        for (int i = 0; i < PER_THREAD; i++) {
            int64_t id = w[t].ids[i];
            cr_assert(id >= 1 && id <= (int64_t)total,
                      "thread %d got id %lld", t, (long long)id);
            cr_assert_eq(seen[id], 0, "id %lld given twice", (long long)id);
            cr_assert_gt(id, prev, "thread %d: ids not increasing", t);
            prev = id;
            seen[id] = 1;
            thread_of[id] = t;
        }
    }
    static int64_t a_of[N_THREADS * PER_THREAD + 1];
    check_history(ex, total, a_of);
    for (size_t id = 1; id <= total; id++)
        cr_assert_eq(a_of[id] / 1000, thread_of[id],
                     "trial %zu recorded a=%lld but thread %lld ran it", id,
                     (long long)a_of[id], (long long)thread_of[id]);
    xp_experiment_destroy(&ex);

    /* Reopened, the counter continues after the last id. */
    ex = xpt_open("threads");
    define_sum(ex);
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 1, &err);
    xp_set_param_int64(ex, "b", 1, &err);
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert_eq(id, (int64_t)total + 1, "next id %lld", (long long)id);
    xp_experiment_destroy(&ex);
}

/* Threads on separate handles of one experiment (as separate programs of
 * one process would). */
Test(concurrency, threads_on_separate_handles)
{
    static worker w[4];
    pthread_t th[4];
    xp_experiment *ex[4];
    for (int t = 0; t < 4; t++) {
        ex[t] = xpt_open("handles");
        define_sum(ex[t]);
        w[t].ex = ex[t];
        w[t].thread = t;
    }
    for (int t = 0; t < 4; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, thread_main, &w[t]), 0,
                     "pthread_create");
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++)
        cr_assert_eq(w[t].failures, 0, "handle %d: %d failures, last: %s", t,
                     w[t].failures, w[t].error);
    check_history(ex[0], 4 * PER_THREAD, NULL);
    for (int t = 0; t < 4; t++)
        xp_experiment_destroy(&ex[t]);
}

/* ---------------------------------------------------------------- processes */

#define N_PROCS 4
#define PER_PROC 50

/* Child: its own handle after fork; exit 0 when every trial succeeded. */
static void child_main(int p)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    if (xp_experiment_open(&ex, "processes", &o, &err) != 0) {
        fprintf(stderr, "child %d: open: %s\n", p, err.message);
        _exit(3);
    }
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    XP_RESULT(ex, plus_one, a, b);
    for (int i = 0; i < PER_PROC; i++) {
        xp_set_param_int64(ex, "a", (int64_t)p * 1000 + i, &err);
        xp_set_param_int64(ex, "b", i, &err);
        xp_value *res = NULL;
        if (xp_compute(ex, NULL, &res, NULL, &err) != 0) {
            fprintf(stderr, "child %d trial %d: %s\n", p, i, err.message);
            _exit(4);
        }
        if (xp_as_int64(res) != (int64_t)p * 1000 + 2 * i + 1) {
            fprintf(stderr, "child %d trial %d: result %lld\n", p, i,
                    (long long)xp_as_int64(res));
            _exit(5);
        }
        xp_value_destroy(&res);
    }
    xp_experiment_destroy(&ex);
    _exit(0);
}

Test(concurrency, processes_get_unique_contiguous_ids)
{
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
            child_main(p);
        }
    }
    for (int p = 0; p < N_PROCS; p++) {
        int st = xpt_wait(pids[p]);
        char *msg = xpt_slurp(err_path[p]);
        cr_assert_eq(st, 0, "child %d exited %d: %s", p, st, msg);
        free(msg);
        unlink(err_path[p]);
    }
    xp_experiment *ex = xpt_open("processes");
    static int64_t a_of[N_PROCS * PER_PROC + 1];
    check_history(ex, N_PROCS * PER_PROC, a_of);
    int per[N_PROCS] = {0};
    for (int id = 1; id <= N_PROCS * PER_PROC; id++) {
        int64_t p = a_of[id] / 1000;
        cr_assert(p >= 0 && p < N_PROCS, "trial %d: a=%lld", id,
                  (long long)a_of[id]);
        per[p]++;
    }
    for (int p = 0; p < N_PROCS; p++)
        cr_assert_eq(per[p], PER_PROC, "process %d recorded %d trials", p,
                     per[p]);
    xp_value *t = xpt_trial(ex, 1);
    pid_t pid1 = (pid_t)xpt_get_int(t, "pid");
    bool known = false;
    for (int p = 0; p < N_PROCS; p++)
        known = known || pids[p] == pid1;
    cr_assert(known, "trial 1 pid %d is none of the children", (int)pid1);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

#define EXEC_PROCS 4
#define EXEC_RUNS 8

Test(concurrency, example_program_processes)
{
    char prog[PATH_MAX], why[256];
    if (!xpt_example("simple_experiment", prog, why)) {
        xpt_skip(why);
    }
    pid_t pids[EXEC_PROCS];
    fflush(NULL);
    for (int p = 0; p < EXEC_PROCS; p++) {
        pids[p] = fork();
        cr_assert_neq(pids[p], -1, "fork: %s", strerror(errno));
        if (pids[p] != 0)
            continue;
        /* A runner process executing the program EXEC_RUNS times. */
        for (int i = 0; i < EXEC_RUNS; i++) {
            char a[32], b[32];
            snprintf(a, sizeof a, "a=%d", p * 1000 + i);
            snprintf(b, sizeof b, "b=%d", i);
            pid_t c = fork();
            if (c == 0) {
                int fd = open("/dev/null", O_WRONLY);
                dup2(fd, 1);
                execl(prog, prog, a, b, "--backend", xpt_dir, "--log-level",
                      "warning", (char *)NULL);
                _exit(127);
            }
            int st = 0;
            if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) ||
                WEXITSTATUS(st) != 0)
                _exit(10 + i);
        }
        _exit(0);
    }
    for (int p = 0; p < EXEC_PROCS; p++) {
        int st = xpt_wait(pids[p]);
        cr_assert_eq(st, 0, "runner %d exited %d", p, st);
    }
    xp_error_t err = {0};
    xp_experiment *ex = xpt_open_existing("simple_experiment_pj", &err);
    cr_assert_not_null(ex, "open: '%s'", err.message);
    check_history(ex, EXEC_PROCS * EXEC_RUNS, NULL);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- interrupted */

/* Polls until trial 1 of `id` shows as running (the experiment may not
 * exist yet). Returns the open handle. */
static xp_experiment *wait_running(const char *id, pid_t child)
{
    double deadline = xpt_now() + 30;
    while (xpt_now() < deadline) {
        int st;
        cr_assert_eq(waitpid(child, &st, WNOHANG), 0,
                     "the trial process ended before it was killed (%d)", st);
        xp_error_t err = {0};
        xp_experiment *ex = xpt_open_existing(id, &err);
        if (ex) {
            xp_value *h = NULL;
            if (xp_history(ex, &h, &err) == 0 && xp_value_count(h) == 1) {
                const xp_value *status =
                    xp_value_get(xp_value_at(h, 0), "status");
                const char *s = xp_as_string(status, NULL);
                cr_assert(s && strcmp(s, "running") == 0,
                          "live trial has status '%s' (opening must not "
                          "mark a live trial)",
                          s ? s : "(none)");
                xp_value_destroy(&h);
                return ex;
            }
            xp_value_destroy(&h);
            xp_experiment_destroy(&ex);
        }
        xpt_sleep(0.02);
    }
    cr_assert_fail("trial of %s never showed as running", id);
    return NULL;
}

static void check_interrupted(const char *id)
{
    xp_experiment *ex = xpt_open(id);
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 1, "history has %zu trials",
                 xp_value_count(h));
    xp_value_destroy(&h);
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "interrupted",
                     "killed trial has status '%s'", xpt_get_str(t, "status"));
    cr_assert(!xpt_get_bool(t, "success"), "killed trial is a success");
    xp_value_destroy(&t);
    cr_assert_eq(xpt_last_id(ex), 1, "last id %lld",
                 (long long)xpt_last_id(ex));
    xp_experiment_destroy(&ex);
}

Test(concurrency, killed_program_leaves_interrupted_trial)
{
    char prog[PATH_MAX], why[256];
    if (!xpt_example("sleep_experiment", prog, why)) {
        xpt_skip(why);
    }
    pid_t pid = xpt_spawn((char *[]){prog, "seconds=30", "--backend",
                                     xpt_dir, "--log-level", "warning", NULL},
                          xpt_dir, NULL, NULL);
    xp_experiment *watch = wait_running("sleep_pj", pid);
    cr_assert_eq(kill(pid, SIGKILL), 0, "kill: %s", strerror(errno));
    cr_assert_eq(xpt_wait(pid), 128 + SIGKILL, "not killed");
    xp_experiment_destroy(&watch);

    check_interrupted("sleep_pj");
    /* Opening again keeps it interrupted (idempotent). */
    check_interrupted("sleep_pj");

    /* The next trial, by the program, gets id 2 and succeeds. */
    xpt_run_result r = xpt_run((char *[]){prog, "seconds=0.01", "--backend",
                                          xpt_dir, "--log-level", "warning",
                                          NULL},
                               xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    xpt_run_result_free(&r);
    xp_experiment *ex = xpt_open("sleep_pj");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 2, "history has %zu", xp_value_count(h));
    cr_assert_eq(xpt_get_int(xp_value_at(h, 1), "trial_id"), 2, "next id");
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 0), "status"), "interrupted",
                     "trial 1");
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 1), "status"), "succeeded",
                     "trial 2");
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

static int sleep_forever(xp_step *st, const xp_value *const *in,
                         xp_value *out)
{
    (void)st;
    (void)in;
    (void)out;
    for (;;)
        pause();
    return 0;
}

static int quick(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 1);
}

Test(concurrency, killed_library_process_leaves_interrupted_trial)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        xp_open_options o = XP_OPEN_OPTIONS_INIT;
        o.backend = xpt_dir;
        xp_experiment *ex = NULL;
        if (xp_experiment_open(&ex, "killed", &o, NULL) != 0)
            _exit(3);
        xp_result(xp_step_add(ex, "sleep_forever", sleep_forever, 0, NULL,
                              NULL, 0));
        xp_compute(ex, NULL, NULL, NULL, NULL);
        _exit(4);
    }
    xp_experiment *watch = wait_running("killed", pid);
    cr_assert_eq(kill(pid, SIGKILL), 0, "kill: %s", strerror(errno));
    cr_assert_eq(xpt_wait(pid), 128 + SIGKILL, "not killed");
    xp_experiment_destroy(&watch);
    check_interrupted("killed");

    xp_experiment *ex = xpt_open("killed");
    xp_result(xp_step_add(ex, "quick", quick, 0, NULL, NULL, 0));
    xp_error_t err = {0};
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute: '%s'",
                 err.message);
    cr_assert_eq(id, 2, "next trial id %lld", (long long)id);
    xp_experiment_destroy(&ex);
}
