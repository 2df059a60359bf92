/* test_distributed.c — xp-scheduler, xp-worker and clients as real
 * processes on loopback: one trial, a sweep, a failing step, script mode
 * with --scheduler, a worker killed mid-task, malformed frames, and what
 * the backend holds afterwards. */
#include "remote.h"

#include "remote/message.h"

#include <czmq.h>

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[4];
static int s_n_workers;
static char s_bin[3][PATH_MAX]; /* scheduler, worker, xpsubmit */

/* Paths of the three programs, or skip with the reason. */
static void s_find_binaries(void)
{
    xptr_bin("XP_SCHEDULER_BIN", s_bin[0]);
    xptr_bin("XP_WORKER_BIN", s_bin[1]);
    xptr_bin("XP_XPSUBMIT_BIN", s_bin[2]);
}

static void s_start_worker(const char *slots)
{
    char so1[PATH_MAX], so2[PATH_MAX], so3[PATH_MAX], why[256];
    if (!xpt_example("simple_experiment.so", so1, why) ||
        !xpt_example("sleep_experiment.so", so2, why) ||
        !xpt_example("quickstart.so", so3, why))
        xpt_skip(why);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, s_n_workers);
    char *argv[] = {s_bin[1],   "--connect",   s_endpoint,
                    "--slots",  (char *)slots, "--heartbeat-ms",
                    "200",      "--plugin",    so1,
                    "--plugin", so2,           "--plugin",
                    so3,        NULL};
    s_workers[s_n_workers++] = xpt_spawn(argv, xpt_dir, NULL, log);
    xptr_wait_registered(log);
}

static void s_setup(void)
{
    xpt_setup();
    s_find_binaries();
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *argv[] = {s_bin[0], "--bind",         s_endpoint, "--backend",
                    xpt_dir,  "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    s_n_workers = 0;
    s_start_worker("2");
    xpt_sleep(0.5); /* connect and register */
}

/* Every daemon must exit cleanly on SIGTERM: a non-zero status fails the
 * test (also what a sanitizer's report at exit gives). */
static void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

TestSuite(distributed, .init = s_setup, .fini = s_teardown, .timeout = 60);

static xpt_run_result s_submit(char *a1, char *a2, char *a3, char *a4)
{
    char *argv[] = {s_bin[2], "-s", s_endpoint, a1, a2, a3, a4, NULL};
    return xpt_run(argv, xpt_dir);
}

static xp_experiment *s_open(const char *id)
{
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing(id, &err);
    cr_assert_not_null(ex, "open %s: %s", id, err.message);
    return ex;
}

Test(distributed, one_trial_is_recorded_like_a_local_one)
{
    xpt_run_result r = s_submit("simple_experiment_pj", "a=1", "b=2", "--wait");
    cr_assert_eq(r.status, 0, "xpsubmit exited %d: %s %s", r.status, r.out,
                 r.err);
    cr_assert_not_null(strstr(r.out, "4"), "output: %s", r.out);
    xpt_run_result_free(&r);
    xp_experiment *ex = s_open("simple_experiment_pj");
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(t, "result"), 4);
    const xp_value *params = xpt_field(t, "parameters");
    cr_assert_eq(xp_value_type(xp_value_get(params, "a")), XP_TYPE_INT64);
    const xp_value *steps = xpt_field(t, "steps");
    cr_assert_eq(xp_value_count(steps), 1, "steps: %s", xpt_json(steps));
    cr_assert_not_null(
        xp_as_string(xp_value_get(xp_value_at(steps, 0), "host"), NULL));
    cr_assert_gt(xpt_last_id(ex), 0);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(distributed, sweep_is_the_cartesian_product)
{
    xpt_run_result r =
        s_submit("simple_experiment_pj", "a=1,2,3", "b=range(0,2)", "--wait");
    cr_assert_eq(r.status, 0, "xpsubmit exited %d: %s", r.status, r.err);
    xpt_run_result_free(&r);
    xp_experiment *ex = s_open("simple_experiment_pj");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 6);
    for (size_t i = 0; i < 6; i++) {
        const xp_value *t = xp_value_at(h, i);
        const xp_value *p = xpt_field(t, "parameters");
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
        cr_assert_eq(xpt_get_int(t, "result"),
                     xp_as_int64(xp_value_get(p, "a")) +
                         xp_as_int64(xp_value_get(p, "b")) + 1);
    }
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

Test(distributed, failing_step_fails_the_trial_with_its_description)
{
    xpt_run_result r = s_submit("quickstart_pj", "a=1", "b=-1", "--wait");
    cr_assert_eq(r.status, 1, "xpsubmit exited %d", r.status);
    xpt_run_result_free(&r);
    xp_experiment *ex = s_open("quickstart_pj");
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed");
    cr_assert_str_eq(xpt_get_str(t, "description"),
                     "calculate_score: division by zero");
    /* The graph tells the failed step and where each one ran. */
    xp_value *g = NULL;
    xp_error_t err;
    cr_assert_eq(xp_graph_get(ex, 1, &g, &err), 0, "%s", err.message);
    const xp_value *steps = xpt_field(g, "steps");
    const xp_value *prep = xp_value_at(steps, 0),
                   *score = xp_value_at(steps, 1);
    cr_assert(
        strcmp(xpt_get_str(prep, "status"), "succeeded") == 0 &&
            strcmp(xpt_get_str(score, "status"), "failed") == 0 &&
            strcmp(xpt_get_str(prep, "host"),
                   xpt_get_str(xpt_field(xpt_field(t, "steps"), "prepare_data"),
                               "host")) == 0 &&
            xpt_get_int(score, "attempt") == 1,
        "graph: %s", xpt_json(g));
    xp_value_destroy(&g);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(distributed, script_mode_with_scheduler)
{
    char prog[PATH_MAX], why[256];
    if (!xpt_example("simple_experiment", prog, why))
        xpt_skip(why);
    char *argv[] = {prog, "a=5", "b=6", "--scheduler", s_endpoint, NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "12\n");
    xpt_run_result_free(&r);
}

Test(distributed, unknown_experiment_is_refused)
{
    xpt_run_result r = s_submit("nobody_pj", "a=1", "--wait", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert_not_null(strstr(r.err, "no worker has registered"), "%s", r.err);
    xpt_run_result_free(&r);
}

/* count sleep_pj trials of seconds through the client library: their
 * batch. */
static int64_t s_submit_sleeps(xp_client *c, double seconds, size_t count)
{
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    for (size_t i = 0; i < count; i++) {
        xp_value *spec = xp_array_append(trials);
        xp_set_document(spec);
        xp_value *params = xp_document_set(spec, "parameters");
        xp_set_document(params);
        xp_set_double(xp_document_set(params, "seconds"), seconds);
    }
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", trials, NULL, &batch, &ids, &n, &err),
        0, "%s", err.message);
    cr_assert_eq(n, count);
    xp_free(ids);
    xp_value_destroy(&trials);
    return batch;
}

static int64_t s_submit_sleep(xp_client *c, double seconds)
{
    return s_submit_sleeps(c, seconds, 1);
}

/* A client connected to the scheduler. */
static xp_client *s_client(void)
{
    xp_client *c = NULL;
    xp_error_t err;
    cr_assert_eq(xp_client_connect(&c, s_endpoint, 0, &err), 0, "%s",
                 err.message);
    return c;
}

/* Waits (up to 60 s) until every trial of batch finished; how many
 * succeeded. */
static int64_t s_wait_batch(xp_client *c, int64_t batch)
{
    int64_t cursor = 0, ok = 0;
    xp_progress p = {0};
    xp_error_t err;
    for (double end = xpt_now() + 60; xpt_now() < end;) {
        xp_value *finished = NULL;
        cr_assert_eq(
            xp_client_wait(c, batch, &cursor, 1000, &p, &finished, &err), 0,
            "%s", err.message);
        for (size_t i = 0; i < xp_value_count(finished); i++)
            ok += strcmp(xpt_get_str(xp_value_at(finished, i), "status"),
                         "succeeded") == 0;
        xp_value_destroy(&finished);
        if (p.done + p.failed == p.total)
            break;
    }
    cr_assert_eq(p.done + p.failed, p.total, "the batch did not finish");
    return ok;
}

/* The worker that ran trial id's sleep step (from its record), and its
 * attempt. */
static char *s_ran_on(xp_experiment *ex, int64_t id, int64_t *attempt)
{
    xp_value *t = xpt_trial(ex, id);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    const xp_value *step = xp_value_get(xpt_field(t, "steps"), "sleep_seconds");
    cr_assert_not_null(step, "steps: %s", xpt_json(xpt_field(t, "steps")));
    char *worker = strdup(xpt_get_str(step, "worker"));
    *attempt = xp_as_int64(xp_value_get(step, "attempt"));
    xp_value_destroy(&t);
    return worker;
}

Test(distributed, long_steps_are_not_held_beyond_the_slots)
{
    /* Steps of 0.3 s are not prefetched: the trials that do not fit the
     * first worker's 2 slots wait in the scheduler, and a worker that
     * connects later takes its share (held by the first worker, they
     * would all run there). */
    xp_client *c = s_client();
    int64_t batch = s_submit_sleeps(c, 0.3, 12);
    xpt_sleep(0.1);
    s_start_worker("2");
    cr_assert_eq(s_wait_batch(c, batch), 12);
    xp_client_destroy(&c);
    xp_experiment *ex = s_open("sleep_pj");
    char *first = NULL;
    int on_first = 0;
    for (int64_t id = 1; id <= 12; id++) {
        int64_t attempt;
        char *w = s_ran_on(ex, id, &attempt);
        if (!first)
            first = strdup(w);
        on_first += strcmp(w, first) == 0;
        free(w);
    }
    cr_assert_leq(on_first, 10,
                  "the first worker ran %d of 12 trials of 0.3 s: the "
                  "second got %d",
                  on_first, 12 - on_first);
    free(first);
    xp_experiment_destroy(&ex);
}

Test(distributed, prefetched_tasks_of_a_killed_worker_run_elsewhere_once)
{
    /* 2 ms steps: the worker holds some beyond its 2 slots when it is
     * killed; they run again on the other worker, each recorded once. */
    xp_client *c = s_client();
    int64_t batch = s_submit_sleeps(c, 0.002, 600);
    xpt_sleep(0.25);
    kill(s_workers[0], SIGKILL);
    xpt_wait(s_workers[0]);
    s_workers[0] = -1;
    s_start_worker("2");
    cr_assert_eq(s_wait_batch(c, batch), 600);
    xp_client_destroy(&c);
    xp_experiment *ex = s_open("sleep_pj");
    cr_assert_eq(xpt_last_id(ex), 600, "a trial was recorded twice");
    int again = 0;
    for (int64_t id = 1; id <= 600; id++) {
        int64_t attempt;
        free(s_ran_on(ex, id, &attempt));
        again += attempt == 2;
    }
    cr_assert_geq(again, 3,
                  "%d trial(s) ran again: the killed worker held fewer than "
                  "its slots and one prefetched task",
                  again);
    xp_experiment_destroy(&ex);
}

Test(distributed, held_status_answers_when_the_trial_is_recorded)
{
    xp_client *c = s_client();
    xp_error_t err;
    /* Held until the 0.4 s trial is recorded, not until the 4 s wait. */
    int64_t batch = s_submit_sleep(c, 0.4), cursor = 0;
    xp_progress p;
    xp_value *finished = NULL;
    double t0 = xpt_now();
    cr_assert_eq(xp_client_wait(c, batch, &cursor, 4000, &p, &finished, &err),
                 0, "%s", err.message);
    double held = xpt_now() - t0;
    cr_assert_eq(xp_value_count(finished), 1u, "answered after %.3f s with %s",
                 held, xpt_json(finished));
    cr_assert_str_eq(xpt_get_str(xp_value_at(finished, 0), "status"),
                     "succeeded");
    cr_assert_eq(cursor, 1);
    cr_assert(held >= 0.3 && held < 3.0, "held %.3f s", held);
    xp_value_destroy(&finished);
    /* Read to the end: the batch is forgotten, as with progress. */
    cr_assert_eq(xp_client_wait(c, batch, &cursor, 4000, &p, &finished, &err),
                 0, "%s", err.message);
    cr_assert_eq(xp_value_count(finished), 0u);
    xp_value_destroy(&finished);
    cr_assert_neq(xp_client_wait(c, batch, &cursor, 0, &p, NULL, &err), 0);
    cr_assert_not_null(strstr(err.message, "unknown batch"), "%s", err.message);

    /* Nothing finishes within the wait: answered when it is over, with the
     * trial still running, and the connection still usable. */
    batch = s_submit_sleep(c, 2.0);
    cursor = 0;
    t0 = xpt_now();
    cr_assert_eq(xp_client_wait(c, batch, &cursor, 500, &p, &finished, &err), 0,
                 "%s", err.message);
    held = xpt_now() - t0;
    cr_assert_eq(xp_value_count(finished), 0u, "%s", xpt_json(finished));
    cr_assert_eq(p.done + p.failed, 0);
    cr_assert(held >= 0.4 && held < 1.8, "held %.3f s for a 0.5 s wait", held);
    xp_value_destroy(&finished);
    cr_assert_eq(xp_client_wait(c, batch, &cursor, 4000, &p, &finished, &err),
                 0, "%s", err.message);
    cr_assert_eq(xp_value_count(finished), 1u);
    xp_value_destroy(&finished);
    xp_client_destroy(&c);
}

Test(distributed, held_status_of_another_clients_batch_is_refused_at_once)
{
    xp_client *a = NULL, *b = NULL;
    xp_error_t err;
    cr_assert_eq(xp_client_connect(&a, s_endpoint, 0, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_client_connect(&b, s_endpoint, 0, &err), 0, "%s",
                 err.message);
    int64_t batch = s_submit_sleep(a, 0.5), cursor = 0;
    xp_progress p;
    double t0 = xpt_now();
    cr_assert_neq(xp_client_wait(b, batch, &cursor, 4000, &p, NULL, &err), 0);
    cr_assert_lt(xpt_now() - t0, 1.0);
    cr_assert_not_null(strstr(err.message, "unknown batch"), "%s", err.message);
    /* The owner still gets its result. */
    xp_value *finished = NULL;
    cr_assert_eq(xp_client_wait(a, batch, &cursor, 4000, &p, &finished, &err),
                 0, "%s", err.message);
    cr_assert_eq(xp_value_count(finished), 1u);
    xp_value_destroy(&finished);
    xp_client_destroy(&a);
    xp_client_destroy(&b);
}

Test(distributed, killed_worker_task_runs_again_elsewhere)
{
    /* Only the first worker is up: it takes the task. */
    char *argv[] = {s_bin[2],   "-s",          s_endpoint,
                    "sleep_pj", "seconds=1.0", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    xpt_sleep(0.3);
    kill(s_workers[0], SIGKILL);
    xpt_wait(s_workers[0]);
    s_workers[0] = -1;
    s_start_worker("1");
    /* Lost after 3 heartbeats (600 ms), then runs again for 1 s. */
    xp_experiment *ex = s_open("sleep_pj");
    xp_value *t = NULL;
    for (int i = 0; i < 100; i++) {
        xp_value_destroy(&t);
        t = xpt_trial(ex, 1);
        const char *st = xpt_get_str(t, "status");
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
            break;
        xpt_sleep(0.1);
    }
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    const xp_value *step = xp_value_get(xpt_field(t, "steps"), "sleep_seconds");
    if (!step)
        step = xp_value_at(xpt_field(t, "steps"), 0);
    cr_assert_eq(xp_as_int64(xp_value_get(step, "attempt")), 2, "steps: %s",
                 xpt_json(xpt_field(t, "steps")));
    cr_assert_eq(xpt_last_id(ex), 1, "the trial was recorded twice");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(distributed, malformed_frames_do_not_stop_the_scheduler)
{
    zsock_t *d = zsock_new_dealer(s_endpoint);
    zstr_send(d, "garbage");
    zstr_sendx(d, "XP1", "SUBMIT", "not bson", NULL);
    zstr_sendx(d, "XP2", "HELLO", "x", NULL);
    zmsg_t *m = zmsg_new();
    zmsg_addmem(m, "XP1", 3);
    zmsg_addstr(m, "RESULT");
    zmsg_addmem(m, "\x05\x00\x00\x00\x00", 5); /* empty document */
    zmsg_send(&m, d);
    xpt_sleep(0.2);
    zsock_destroy(&d);
    xpt_run_result r = s_submit("simple_experiment_pj", "a=1", "b=1", "--wait");
    cr_assert_eq(r.status, 0, "scheduler stopped answering: %s", r.err);
    xpt_run_result_free(&r);
}

/* Bodies nesting 10,000 documents (80 KB) are refused with an ERROR
 * before anything walks them recursively (bson_validate would run off
 * the stack), whatever the message; the scheduler goes on serving. */
Test(distributed, deeply_nested_bodies_do_not_stop_the_scheduler)
{
    size_t len;
    uint8_t *deep = xptr_deep_bson(10000, &len);
    const char *types[] = {"STATUS", "SUBMIT", "HELLO", "RESULT"};
    zsock_t *d = zsock_new_dealer(s_endpoint);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        zmsg_t *m = zmsg_new();
        zmsg_addmem(m, "XP1", 3);
        zmsg_addstr(m, types[i]);
        zmsg_addmem(m, deep, len);
        cr_assert_eq(zmsg_send(&m, d), 0);
        zpoller_t *p = zpoller_new(d, NULL);
        void *ready = zpoller_wait(p, 5000);
        zpoller_destroy(&p);
        cr_assert_not_null(ready, "no answer to a deep %s", types[i]);
        zmsg_t *answer = zmsg_recv(d);
        xp_msg_type type;
        bson_t body;
        xp_error_t err;
        cr_assert_eq(
            xp__msg_decode(answer, XP_MAX_MESSAGE_DEFAULT, &type, &body, &err),
            0, "%s", err.message);
        zmsg_destroy(&answer);
        cr_assert_eq(type, XP_MSG_ERROR, "a deep %s got %s", types[i],
                     xp__msg_name(type));
        xp_msg_error e;
        xp__msg_error_decode(&body, &e, NULL);
        cr_assert(e.message && strstr(e.message, "nested deeper"), "%s: %s",
                  types[i], e.message);
        bson_destroy(&body);
    }
    zsock_destroy(&d);
    free(deep);
    xpt_run_result r = s_submit("simple_experiment_pj", "a=1", "b=1", "--wait");
    cr_assert_eq(r.status, 0, "scheduler stopped answering: %s", r.err);
    xpt_run_result_free(&r);
}

Test(distributed, scheduler_killed_and_restarted_loses_no_trial)
{
    char *argv[] = {s_bin[2],      "-s",     s_endpoint, "sleep_pj",
                    "seconds=0.4", "--seed", "1",        NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    char *sweep[] = {
        s_bin[2], "-s", s_endpoint, "sleep_pj", "seconds=0.2,0.3,0.4,0.5",
        NULL};
    r = xpt_run(sweep, xpt_dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    xpt_sleep(0.2); /* two running (2 slots), three queued */
    kill(s_sched, SIGKILL);
    xpt_wait(s_sched);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler2.log", xpt_dir);
    char *again[] = {s_bin[0], "--bind",         s_endpoint, "--backend",
                     xpt_dir,  "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(again, xpt_dir, NULL, log);
    xp_experiment *ex = s_open("sleep_pj");
    xp_value *h = NULL;
    size_t finished = 0;
    for (int i = 0; i < 150 && finished < 5; i++) {
        xpt_sleep(0.1);
        xp_value_destroy(&h);
        h = xpt_history(ex);
        finished = 0;
        for (size_t k = 0; k < xp_value_count(h); k++)
            if (strcmp(xpt_get_str(xp_value_at(h, k), "status"), "succeeded") ==
                0)
                finished++;
    }
    cr_assert_eq(xp_value_count(h), 5, "trials recorded: %zu",
                 xp_value_count(h));
    cr_assert_eq(finished, 5, "history: %s", xpt_json(h));
    for (size_t k = 0; k < 5; k++)
        cr_assert_eq(xpt_get_int(xp_value_at(h, k), "trial_id"),
                     (int64_t)k + 1);
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}
