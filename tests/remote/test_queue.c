/* test_queue.c — the scheduler's queue as real processes on loopback:
 * trials whose code no connected worker has wait (queued, with the
 * reason) and never run on other code; they run once a worker with their
 * code arrives, also when a script-mode program submitted them first; a
 * large submission is held as records and every trial is recorded once. */
#include "queue_fixture.h"

#include "experiment.h"

#include "remote/client.h"
#include "remote/message.h"

/* Sends msg and takes it, sent or not. */
static int s_send_take(zsock_t *sock, zmsg_t *msg)
{
    int rc = zmsg_send(&msg, sock);
    zmsg_destroy(&msg);
    return rc;
}

TestSuite(queue, .init = s_setup, .fini = s_teardown, .timeout = 60);

static xp_value *s_trials(int n)
{
    return xptr_trials_ab(n);
}

/* Polls until every trial of batch is finished or seconds pass. */
static xp_progress s_wait(xp_client *c, int64_t batch, double seconds)
{
    xp_progress p;
    int64_t cursor = 0;
    double end = xpt_now() + seconds;
    do {
        xp_error_t err;
        cr_assert_eq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                     "%s", err.message);
        if (p.done + p.failed >= p.total)
            break;
        xpt_sleep(0.05);
    } while (xpt_now() < end);
    return p;
}

/* ---- a definition of quickstart_pj with other code than the plugin's */

static int prepare_data(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) * xp_as_double(in[1]));
}

static int calculate_score(xp_step *st, const xp_value *const *in,
                           xp_value *out)
{
    (void)st;
    return xp_set_double(out, -xp_as_double(in[0]));
}

/* quickstart_pj defined here, frozen: its code and hash are not the
 * plugin's. */
static xp_experiment *s_other_code(void)
{
    xp_experiment *ex = xpt_open("quickstart_pj");
    xp_node *a = xp_parameter(ex, "a"), *b = xp_parameter(ex, "b");
    xp_node *d = XP_PERSIST(ex, prepare_data, a, b);
    cr_assert_not_null(XP_RESULT(ex, calculate_score, d));
    xp_error_t err;
    cr_assert_eq(xp__graph_freeze(ex, &err), 0, "%s", err.message);
    return ex;
}

Test(queue, stale_code_waits_with_the_reason_and_never_runs)
{
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    /* Same experiment, same parameters, different code. */
    xp_experiment *ex = s_other_code();
    xp_error_t err;
    char stale[33];
    snprintf(stale, sizeof stale, "%s", ex->code_hash);

    xp_client *c = s_client();
    xp_value *trials = s_trials(3);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    cr_assert_eq(xp__client_submit_code(c, "quickstart_pj", trials, stale,
                                        ex->code, &batch, &ids, &n, &err),
                 0, "submit: %s", err.message);
    cr_assert_eq(n, 3, "%zu ids", n);
    xp_progress p = s_wait(c, batch, 1.5);
    cr_assert_eq(p.done + p.failed, 0, "a trial ran on other code");
    cr_assert_eq(p.queued, 3, "queued %lld", (long long)p.queued);
    cr_assert_not_null(strstr(p.waiting, "no connected worker has code"),
                       "waiting: '%s'", p.waiting);
    cr_assert_not_null(strstr(p.waiting, stale), "waiting: '%s'", p.waiting);

    /* The store holds them as queued, referencing their own code. */
    xp_experiment_destroy(&ex);
    ex = xpt_open_existing("quickstart_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    for (size_t i = 0; i < n; i++) {
        xp_value *t = xpt_trial(ex, ids[i]);
        cr_assert_str_eq(xpt_get_str(t, "status"), "queued");
        cr_assert_str_eq(xpt_get_str(t, "code_hash"), stale);
        xp_value_destroy(&t);
    }
    xp_experiment_destroy(&ex);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

Test(queue, script_mode_trial_waits_for_a_worker_then_runs)
{
    char prog[PATH_MAX], why[256];
    if (!xpt_example("quickstart", prog, why))
        xpt_skip(why);
    /* No worker yet: the program's own code travels with its trial. */
    char out[PATH_MAX], errf[PATH_MAX];
    snprintf(out, sizeof out, "%s/prog.out", xpt_dir);
    snprintf(errf, sizeof errf, "%s/prog.err", xpt_dir);
    char *argv[] = {prog, "a=1", "b=2", "--scheduler", s_endpoint, NULL};
    pid_t pid = xpt_spawn(argv, xpt_dir, out, errf);
    bool told = false;
    for (double end = xpt_now() + 5; !told && xpt_now() < end;) {
        xpt_sleep(0.05);
        char *e = xpt_slurp(errf);
        told = strstr(e, "no connected worker has code") != NULL;
        free(e);
    }
    cr_assert(told, "the program did not say why its trial waits");
    s_start_worker("quickstart.so");
    cr_assert_eq(xpt_wait(pid), 0, "the program failed");
    char *o = xpt_slurp(out);
    cr_assert_not_null(strstr(o, "3.33"), "result: %s", o);
    free(o);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("quickstart_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    xp_value_destroy(&t);
    cr_assert_eq(xpt_last_id(ex), 1, "recorded more than once");
    xp_experiment_destroy(&ex);
}

Test(queue, large_submission_each_trial_recorded_once)
{
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    int total = 3000;
    xp_value *trials = s_trials(total);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &n, &err),
                 0, "submit: %s", err.message);
    cr_assert_eq(n, (size_t)total);
    xp_progress p = s_wait(c, batch, 40);
    cr_assert_eq(p.done, total, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    cr_assert_str_eq(p.waiting, "", "waiting: %s", p.waiting);
    xp_experiment *ex = xpt_open_existing("quickstart_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), (size_t)total, "%zu trials recorded",
                 xp_value_count(h));
    for (size_t i = 0; i < xp_value_count(h); i++) {
        const xp_value *t = xp_value_at(h, i);
        cr_assert_eq(xpt_get_int(t, "trial_id"), (int64_t)i + 1);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
        double want = 10.0 / (double)(i + 1 + 2);
        double got = xp_as_double(xp_value_get(t, "result"));
        cr_assert(got > want - 1e-9 && got < want + 1e-9,
                  "trial %zu: %g, want %g", i + 1, got, want);
    }
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

/* ---- restart on the shared backends */

/* Kill -9 the scheduler with trials running and queued on the backend
 * named by $var; a new one takes them up: each recorded once. */
static void s_restart_on(const char *var)
{
    const char *uri = getenv(var);
    if (!uri || !*uri) {
        char why[128];
        snprintf(why, sizeof why,
                 "%s is not set (tests/run.sh starts a "
                 "server)",
                 var);
        xpt_skip(why);
    }
    kill(s_sched, SIGTERM);
    xpt_wait(s_sched);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler1.log", xpt_dir);
    char *argv[] = {s_sched_bin, "--bind",         s_endpoint, "--backend",
                    (char *)uri, "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    xpt_sleep(0.3);
    s_start_worker("sleep_experiment.so");
    xpt_sleep(1.0); /* connect and register */
    int64_t before = s_last_on(uri, "sleep_pj");

    xp_client *c = s_client();
    xp_value *trials = xptr_trials(5, "seconds", 0.3, 0.05);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", trials, NULL, &batch, &ids, &n, &err),
        0, "submit: %s", err.message);
    cr_assert_eq(n, 5);
    cr_assert_eq(ids[0], before + 1, "ids start at %lld after %lld",
                 (long long)ids[0], (long long)before);
    xp_client_destroy(&c);
    xpt_sleep(0.15); /* two running (2 slots), three queued */
    kill(s_sched, SIGKILL);
    xpt_wait(s_sched);
    snprintf(log, sizeof log, "%s/scheduler2.log", xpt_dir);
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);

    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    o.must_exist = true;
    size_t done = 0;
    for (double end = xpt_now() + 30; done < n && xpt_now() < end;) {
        xpt_sleep(0.1);
        xp_experiment *ex = NULL;
        cr_assert_eq(xp_experiment_open(&ex, "sleep_pj", &o, &err), 0, "%s",
                     err.message);
        done = 0;
        for (size_t i = 0; i < n; i++) {
            xp_value *t = xpt_trial(ex, ids[i]);
            if (strcmp(xpt_get_str(t, "status"), "succeeded") == 0)
                done++;
            xp_value_destroy(&t);
        }
        xp_experiment_destroy(&ex);
    }
    char *slog = xpt_slurp(log);
    cr_assert_eq(done, n,
                 "%zu of %zu trials finished after the restart; "
                 "scheduler log:\n%s",
                 done, n, slog);
    cr_assert_not_null(strstr(slog, "Resumed"), "log:\n%s", slog);
    free(slog);
    cr_assert_eq(s_last_on(uri, "sleep_pj"), ids[n - 1],
                 "a trial was recorded twice or a new one appeared");
    xp_free(ids);
    xp_value_destroy(&trials);
}

Test(queue, restart_on_redis_takes_up_queued_trials)
{
    s_restart_on("XP_TEST_REDIS_URI");
}

Test(queue, restart_on_mongodb_takes_up_queued_trials)
{
    s_restart_on("XP_TEST_MONGODB_URI");
}

/* While its step runs on a worker, a trial reads as running, as a local
 * one does; then as succeeded. */
Test(queue, trial_shows_running_while_its_step_runs)
{
    s_start_worker("sleep_experiment.so");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    xp_value *trials = xptr_trials(1, "seconds", 1.5, 0);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", trials, NULL, &batch, &ids, &n, &err),
        0, "submit: %s", err.message);
    const char *seen = "";
    char status[32] = "";
    for (double end = xpt_now() + 1.0; xpt_now() < end;) {
        xpt_sleep(0.1);
        xp_experiment *ex = xpt_open_existing("sleep_pj", &err);
        cr_assert_not_null(ex, "%s", err.message);
        xp_value *t = xpt_trial(ex, ids[0]);
        snprintf(status, sizeof status, "%s", xpt_get_str(t, "status"));
        xp_value_destroy(&t);
        xp_experiment_destroy(&ex);
        if (strcmp(status, "running") == 0) {
            seen = "running";
            break;
        }
    }
    cr_assert_str_eq(seen, "running", "status while running: '%s'", status);
    xp_progress pr = s_wait(c, batch, 10);
    cr_assert_eq(pr.done, 1, "done %lld", (long long)pr.done);
    xp_experiment *ex = xpt_open_existing("sleep_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, ids[0]);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

/* One trial's independent steps go to every worker with free slots: the
 * 1,000 parts of a fan-out trial run on both workers, and the sum is
 * right. */
Test(queue, independent_steps_spread_over_workers)
{
    s_start_worker("fanout_experiment.so");
    s_start_worker("fanout_experiment.so");
    xpt_sleep(0.6);
    xp_client *c = s_client();
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    xp_value *spec = xp_array_append(trials);
    xp_set_document(spec);
    xp_value *p = xp_document_set(spec, "parameters");
    xp_set_document(p);
    xp_set_int64(xp_document_set(p, "x"), 3);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(
        xp_client_submit(c, "fanout_pj", trials, NULL, &batch, &ids, &n, &err),
        0, "submit: %s", err.message);
    xp_progress pr = s_wait(c, batch, 30);
    cr_assert_eq(pr.done, 1, "done %lld failed %lld", (long long)pr.done,
                 (long long)pr.failed);
    xp_experiment *ex = xpt_open_existing("fanout_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, ids[0]);
    cr_assert_eq(xpt_get_int(t, "result"), 1499500, "sum of 3i+1");
    const xp_value *steps = xpt_field(t, "steps");
    cr_assert_eq(xp_value_count(steps), 1001, "%zu steps placed",
                 xp_value_count(steps));
    char first[64] = "";
    size_t other = 0;
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const char *w =
            xp_as_string(xp_value_get(xp_value_at(steps, i), "worker"), NULL);
        cr_assert_not_null(w, "step %zu has no worker", i);
        if (!first[0])
            snprintf(first, sizeof first, "%s", w);
        else if (strcmp(first, w) != 0)
            other++;
    }
    cr_assert_gt(other, 0, "every step ran on worker %s", first);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

/* A scheduler that runs for months keeps no finished batch: once its
 * client has read every result and asked again, the batch is gone. */
Test(queue, finished_batch_is_dropped_once_read)
{
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    xp_value *trials = s_trials(3);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &n, &err),
                 0, "submit: %s", err.message);
    int64_t cursor = 0;
    size_t got = 0;
    xp_progress p = {0};
    for (double end = xpt_now() + 10; got < 3 && xpt_now() < end;) {
        xp_value *finished = NULL;
        cr_assert_eq(xp_client_progress(c, batch, &cursor, &p, &finished, &err),
                     0, "%s", err.message);
        got += xp_value_count(finished);
        xp_value_destroy(&finished);
        if (got < 3)
            xpt_sleep(0.05);
    }
    cr_assert_eq(got, 3, "results read: %zu", got);
    /* Asked again with everything read: answered, then forgotten. */
    cr_assert_eq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0, "%s",
                 err.message);
    cr_assert_eq(p.done, 3);
    cr_assert_neq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                  "the batch is still kept");
    cr_assert_not_null(strstr(err.message, "unknown batch"), "%s", err.message);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

/* With --keep-ms short: a finished batch its client never came back for
 * is dropped, and so is a definition no worker, trial or batch needs
 * (its experiment handle closed); a worker bringing it back registers it
 * again and trials run. */
Test(queue, unused_batches_and_definitions_expire)
{
    kill(s_sched, SIGTERM);
    xpt_wait(s_sched);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler-keep.log", xpt_dir);
    char *argv[] = {
        s_sched_bin,      "--bind", s_endpoint,  "--backend", xpt_dir,
        "--heartbeat-ms", "100",    "--keep-ms", "300",       NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    xpt_sleep(0.3);
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    xp_value *trials = s_trials(2);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &n, &err),
                 0, "submit: %s", err.message);
    xp_progress p = s_wait(c, batch, 10);
    cr_assert_eq(p.done, 2);
    xp_free(ids);
    /* The worker leaves; nothing needs the definition any more. */
    kill(s_workers[0], SIGTERM);
    xpt_wait(s_workers[0]);
    s_workers[0] = -1;
    bool closed = false;
    for (double end = xpt_now() + 5; !closed && xpt_now() < end;) {
        xpt_sleep(0.1);
        char *text = xpt_slurp(log);
        closed = strstr(text, "unused: closed") != NULL;
        free(text);
    }
    cr_assert(closed, "the unused definition was not closed");
    int64_t cursor = 0;
    cr_assert_neq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                  "the finished batch is still kept");
    cr_assert_not_null(strstr(err.message, "unknown batch"), "%s", err.message);
    /* It comes back with a worker. */
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &n, &err),
                 0, "submit after: %s", err.message);
    p = s_wait(c, batch, 10);
    cr_assert_eq(p.done, 2, "done %lld", (long long)p.done);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

/* A scheduler that cannot look for the trials it must resume does not
 * start (it would lose them quietly): one line, exit 1. */
Test(queue, unreachable_backend_stops_the_start)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", xptr_free_port());
    char *argv[] = {
        s_sched_bin, "--bind", ep, "--backend", "redis://127.0.0.1:1/0", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 1, "status %d", r.status);
    cr_assert_eq(xpt_count_lines(r.err), 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "queued trials"), "%s", r.err);
    xpt_run_result_free(&r);
}

/* Two schedulers share one backend: after a restart each takes up only
 * the trials it accepted (its name is on them). */
Test(queue, restart_takes_up_only_its_own_trials)
{
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    kill(s_workers[0], SIGTERM); /* the definition stays, no worker runs it */
    xpt_wait(s_workers[0]);
    s_workers[0] = -1;
    xp_client *c = s_client();
    xp_value *trials = s_trials(3);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &n, &err),
                 0, "submit: %s", err.message);
    xp_client_destroy(&c);
    kill(s_sched, SIGKILL);
    xpt_wait(s_sched);

    /* Another scheduler on the same backend leaves them alone. */
    char other_ep[64], log[PATH_MAX];
    snprintf(other_ep, sizeof other_ep, "tcp://127.0.0.1:%d", xptr_free_port());
    snprintf(log, sizeof log, "%s/other.log", xpt_dir);
    char *other[] = {s_sched_bin,      "--bind", other_ep, "--backend", xpt_dir,
                     "--heartbeat-ms", "200",    "--name", "other",     NULL};
    s_sched = xpt_spawn(other, xpt_dir, NULL, log);
    xpt_sleep(0.5);
    char *text = xpt_slurp(log);
    cr_assert_not_null(strstr(text, "Left 3 queued trial(s) of other "
                                    "schedulers alone"),
                       "log:\n%s", text);
    free(text);
    cr_assert_eq(xptr_stop(&s_sched), 0, "the other scheduler failed");

    /* The first one, restarted, takes them up and runs them. */
    snprintf(log, sizeof log, "%s/again.log", xpt_dir);
    char *again[] = {s_sched_bin, "--bind",         s_endpoint, "--backend",
                     xpt_dir,     "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(again, xpt_dir, NULL, log);
    xpt_sleep(0.3);
    s_start_worker("quickstart.so");
    xp_experiment *ex = NULL;
    size_t done = 0;
    for (double end = xpt_now() + 10; done < n && xpt_now() < end;) {
        xpt_sleep(0.1);
        ex = xpt_open_existing("quickstart_pj", &err);
        cr_assert_not_null(ex, "%s", err.message);
        done = 0;
        for (size_t i = 0; i < n; i++) {
            xp_value *t = xpt_trial(ex, ids[i]);
            done += strcmp(xpt_get_str(t, "status"), "succeeded") == 0;
            xp_value_destroy(&t);
        }
        xp_experiment_destroy(&ex);
    }
    cr_assert_eq(done, n, "%zu of %zu trials finished", done, n);
    xp_free(ids);
    xp_value_destroy(&trials);
}

/* ---- the test as a worker */

/* The next message of type want from the scheduler on d (HEARTBEATs
 * skipped) into body, or false after timeout_ms. */
static bool s_recv(zsock_t *d, xp_msg_type want, int timeout_ms, bson_t *body)
{
    double end = xpt_now() + timeout_ms / 1000.0;
    while (xpt_now() < end) {
        zpoller_t *p = zpoller_new(d, NULL);
        void *ready = zpoller_wait(p, 100);
        zpoller_destroy(&p);
        if (!ready)
            continue;
        zmsg_t *msg = zmsg_recv(d);
        xp_msg_type type;
        xp_error_t err;
        cr_assert_eq(
            xp__msg_decode(msg, XP_MAX_MESSAGE_DEFAULT, &type, body, &err), 0,
            "%s", err.message);
        zmsg_destroy(&msg);
        if (type == want)
            return true;
        bson_destroy(body);
    }
    return false;
}

/* A worker whose slots are all taken answers "worker busy": the task is
 * queued again with the same attempt and runs, the trial does not fail. */
Test(queue, busy_refusal_queues_the_task_again)
{
    xp_experiment *ex = s_other_code();
    xp_error_t err;
    xp_msg_experiment e = {ex->id, ex->code_hash, xp__msg_doc_of(ex->code)};
    xp_msg_hello hello = {.host = "fake",
                          .pid = 1,
                          .slots = 2,
                          .experiments = &e,
                          .n_experiments = 1};
    zsock_t *w = zsock_new_dealer(s_endpoint);
    cr_assert_eq(s_send_take(w, xp__msg_hello_encode(&hello)), 0);
    bson_t body;
    cr_assert(s_recv(w, XP_MSG_WELCOME, 5000, &body), "no WELCOME");
    bson_destroy(&body);

    xp_client *c = s_client();
    xp_value *trials = s_trials(1);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, ex->code_hash,
                                  &batch, &ids, &n, &err),
                 0, "submit: %s", err.message);
    xp_free(ids);
    xp_value_destroy(&trials);

    /* prepare_data: refused busy once, then run */
    const char *steps[] = {"prepare_data", "prepare_data", "calculate_score"};
    for (int i = 0; i < 3; i++) {
        cr_assert(s_recv(w, XP_MSG_TASK, 5000, &body), "no TASK %d", i);
        xp_msg_task t;
        cr_assert_eq(xp__msg_task_decode(&body, &t, &err), 0, "%s",
                     err.message);
        cr_assert_str_eq(t.step, steps[i]);
        cr_assert_eq(t.attempt, 1, "the refusal counted as an attempt");
        xp_value *out = xp_value_new();
        xp_set_double(out, 2.0);
        xp_msg_result r = {.trial = t.trial,
                           .attempt = t.attempt,
                           .step = t.step,
                           .ok = i > 0,
                           .output = i > 0 ? out : NULL,
                           .failure = XP_MSG_WORKER_BUSY
                           ": all 2 slot(s) are running"};
        cr_assert_eq(s_send_take(w, xp__msg_result_encode(&r)), 0);
        xp_value_destroy(&out);
        bson_destroy(&body);
    }
    xp_progress p = s_wait(c, batch, 5);
    cr_assert_eq(p.done, 1, "done %lld, failed %lld", (long long)p.done,
                 (long long)p.failed);
    zsock_destroy(&w);
    xp_client_destroy(&c);
    xp_experiment_destroy(&ex);
}

/* ---- batches answer their owner only */

/* Progress of batch read by c from cursor 0 without keeping the cursor:
 * 0, or -1 with err. */
static int s_peek(xp_client *c, int64_t batch, xp_progress *p, xp_error_t *err)
{
    int64_t cursor = 0;
    return xp_client_progress(c, batch, &cursor, p, NULL, err);
}

/* Batch ids were sequential, and any client could read another's results
 * and, by asking past them, make the scheduler drop the batch under its
 * owner. Another client is now told "unknown batch", as for a batch that
 * does not exist, and the owner still reads every result. */
Test(queue, batch_answers_only_its_owner)
{
    s_start_worker("quickstart.so");
    xpt_sleep(0.5);
    xp_client *owner = s_client(), *other = s_client();
    xp_value *trials = s_trials(3);
    int64_t batch = 0, second = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(owner, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &n, &err),
                 0, "submit: %s", err.message);
    xp_free(ids);
    xp_progress p;
    cr_assert_neq(s_peek(other, batch, &p, &err), 0,
                  "another client read the batch");
    cr_assert_str_eq(err.message, "scheduler: unknown batch");
    for (double end = xpt_now() + 10; xpt_now() < end; xpt_sleep(0.05)) {
        cr_assert_eq(s_peek(owner, batch, &p, &err), 0, "%s", err.message);
        if (p.done + p.failed >= p.total)
            break;
    }
    cr_assert_eq(p.done, 3, "done %lld", (long long)p.done);
    /* Past the end, twice: what used to drop it. */
    for (int i = 0; i < 2; i++) {
        int64_t cursor = 3;
        cr_assert_neq(xp_client_progress(other, batch, &cursor, &p, NULL, &err),
                      0, "another client read the batch");
        cr_assert_str_eq(err.message, "scheduler: unknown batch");
    }
    int64_t cursor = 0;
    xp_value *finished = NULL;
    cr_assert_eq(xp_client_progress(owner, batch, &cursor, &p, &finished, &err),
                 0, "the owner lost its batch: %s", err.message);
    cr_assert_eq(xp_value_count(finished), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(
            xp_as_string(xp_value_get(xp_value_at(finished, i), "status"),
                         NULL),
            "succeeded");
    xp_value_destroy(&finished);
    /* Ids are not counted out. */
    cr_assert_eq(xp_client_submit(owner, "quickstart_pj", trials, NULL, &second,
                                  &ids, &n, &err),
                 0, "submit: %s", err.message);
    xp_free(ids);
    cr_assert(batch > 0 && second > 0, "%lld %lld", (long long)batch,
              (long long)second);
    cr_assert(second != batch + 1 && second != batch,
              "sequential batch ids %lld, %lld", (long long)batch,
              (long long)second);
    xp_value_destroy(&trials);
    xp_client_destroy(&owner);
    xp_client_destroy(&other);
}
