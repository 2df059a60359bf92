/* test_batch.c — xp-worker as a batch job, with a real xp-scheduler and
 * real workers on loopback: SIGTERM drains (the running step finishes,
 * new tasks go elsewhere), a drain that runs out of time hands the step
 * back, --lifetime stops taking tasks, --death-timeout ends a worker
 * whose scheduler is gone, and the job a worker names (flags or Slurm's
 * variables) is in the steps record of every trial it ran; HELLO's job
 * field encoded and decoded. */
#include "remote.h"

#include "remote/message.h"

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[4];
static int s_n_workers;
static char s_bin[3][PATH_MAX]; /* scheduler, worker, xpsubmit */
static char s_sleep_so[PATH_MAX];

static void s_setup(void)
{
    xpt_setup();
    char why[256];
    xptr_bin("XP_SCHEDULER_BIN", s_bin[0]);
    xptr_bin("XP_WORKER_BIN", s_bin[1]);
    xptr_bin("XP_XPSUBMIT_BIN", s_bin[2]);
    if (!xpt_example("sleep_experiment.so", s_sleep_so, why))
        xpt_skip(why);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *argv[] = {s_bin[0], "--bind",         s_endpoint, "--backend",
                    xpt_dir,  "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    s_n_workers = 0;
}

static void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

TestSuite(batch, .init = s_setup, .fini = s_teardown, .timeout = 60);

/* Starts worker number s_n_workers with sleep_experiment, 2 slots and
 * the extra flags (NULL-terminated), waits until it registered; its log
 * path goes to log. */
static int s_start_worker(char *log, const char *const *extra)
{
    char *argv[32] = {s_bin[1],         "--connect", s_endpoint, "--slots", "2",
                      "--heartbeat-ms", "200",       "--plugin", s_sleep_so};
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    int k = s_n_workers++;
    snprintf(log, PATH_MAX, "%s/worker%d.log", xpt_dir, k);
    s_workers[k] = xpt_spawn(argv, xpt_dir, NULL, log);
    xptr_wait_registered(log);
    return k;
}

static void s_submit(const char *seconds)
{
    char values[64];
    snprintf(values, sizeof values, "seconds=%s", seconds);
    char *argv[] = {s_bin[2], "-s", s_endpoint, "sleep_pj", values, NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "xpsubmit: %s", r.err);
    xpt_run_result_free(&r);
}

/* Waits (at most seconds) for worker k to exit by itself: its status,
 * or -1 when it still runs. */
static int s_exit_of(int k, double seconds)
{
    int st = 0;
    for (double end = xpt_now() + seconds; xpt_now() < end; xpt_sleep(0.05))
        if (waitpid(s_workers[k], &st, WNOHANG) == s_workers[k]) {
            s_workers[k] = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    return -1;
}

/* Trial id of sleep_pj once it is no longer queued or running (at most
 * 20 s); caller destroys. */
static xp_value *s_finished(xp_experiment *ex, int64_t id)
{
    xp_value *t = NULL;
    for (double end = xpt_now() + 20; xpt_now() < end; xpt_sleep(0.05)) {
        xp_value_destroy(&t);
        t = xpt_trial(ex, id);
        const char *st = xpt_get_str(t, "status");
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
            break;
    }
    return t;
}

static void s_wait_running(xp_experiment *ex, int64_t id)
{
    for (double end = xpt_now() + 10; xpt_now() < end; xpt_sleep(0.02)) {
        xp_value *t = xpt_last_id(ex) >= id ? xpt_trial(ex, id) : NULL;
        bool running = t && strcmp(xpt_get_str(t, "status"), "running") == 0;
        xp_value_destroy(&t);
        if (running)
            return;
    }
    cr_assert_fail("trial %lld did not start", (long long)id);
}

static xp_experiment *s_open(void)
{
    xp_error_t err;
    xp_experiment *ex = NULL;
    for (int i = 0; i < 100 && !ex; i++, xpt_sleep(0.05))
        ex = xpt_open_existing("sleep_pj", &err);
    cr_assert_not_null(ex, "open sleep_pj: %s", err.message);
    return ex;
}

/* Where the one step of trial t ran. */
static const xp_value *s_step(const xp_value *t)
{
    const xp_value *step = xp_value_get(xpt_field(t, "steps"), "sleep_seconds");
    cr_assert_not_null(step, "no steps record: %s", xpt_json(t));
    return step;
}

static void s_assert_job(const xp_value *t, const char *id, int64_t index,
                         const char *node)
{
    const xp_value *job = xp_value_get(s_step(t), "job");
    cr_assert_not_null(job, "no job in %s", xpt_json(t));
    cr_assert_str_eq(xpt_get_str(job, "id"), id);
    cr_assert_eq(xpt_get_int(job, "array_index"), index);
    cr_assert_str_eq(xpt_get_str(job, "node"), node);
}

static void s_assert_log(const char *log, const char *text)
{
    char *s = xpt_slurp(log);
    bool found = strstr(s, text) != NULL;
    cr_assert(found, "'%s' not in the log:\n%s", text, s);
    free(s);
}

/* SIGTERM: the running step finishes and is recorded once; a task sent
 * meanwhile is refused and runs on another worker, which names its job
 * through Slurm's variables. */
Test(batch, sigterm_drains_the_running_step)
{
    char log0[PATH_MAX], log1[PATH_MAX];
    const char *job[] = {"--job-id",   "4242", "--job-index", "3",
                         "--job-node", "n1",   NULL};
    int k = s_start_worker(log0, job);
    s_submit("1.0");
    xp_experiment *ex = s_open();
    s_wait_running(ex, 1);
    kill(s_workers[k], SIGTERM);
    cr_assert(xptr_wait_log(log0, "Draining", 5), "no drain");
    s_submit("0.1"); /* the draining worker has a free slot: refused */
    setenv("SLURM_ARRAY_JOB_ID", "88", 1);
    setenv("SLURM_ARRAY_TASK_ID", "1", 1);
    setenv("SLURMD_NODENAME", "nodeB", 1);
    s_start_worker(log1, NULL);
    unsetenv("SLURM_ARRAY_JOB_ID");
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURMD_NODENAME");
    cr_assert_eq(s_exit_of(k, 15), 0, "the drained worker's exit");
    s_assert_log(log0, "Drained: no step running");

    xp_value *t1 = s_finished(ex, 1), *t2 = s_finished(ex, 2);
    cr_assert_str_eq(xpt_get_str(t1, "status"), "succeeded");
    cr_assert_str_eq(xpt_get_str(t2, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(s_step(t1), "attempt"), 1, "ran once");
    s_assert_job(t1, "4242", 3, "n1");
    s_assert_job(t2, "88", 1, "nodeB");
    cr_assert_eq(xpt_last_id(ex), 2);
    xp_value_destroy(&t1);
    xp_value_destroy(&t2);
    xp_experiment_destroy(&ex);
}

/* A drain that runs out of time hands the step back: it runs again on
 * another worker and the trial is recorded once. */
Test(batch, drain_timeout_hands_the_step_back)
{
    char log0[PATH_MAX], log1[PATH_MAX];
    const char *fast[] = {"--drain-timeout", "1", NULL};
    int k = s_start_worker(log0, fast);
    s_submit("3.0");
    xp_experiment *ex = s_open();
    s_wait_running(ex, 1);
    kill(s_workers[k], SIGTERM);
    cr_assert_eq(s_exit_of(k, 10), 0, "the worker's exit");
    s_assert_log(log0, "Drain timeout: handing 1 running step(s) back");
    s_start_worker(log1, NULL);
    xp_value *t = s_finished(ex, 1);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
    cr_assert_eq(xpt_get_int(s_step(t), "attempt"), 2, "%s", xpt_json(t));
    cr_assert_null(xp_value_get(s_step(t), "job"), "no batch job here");
    cr_assert_eq(xpt_last_id(ex), 1);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

/* --lifetime: after it the worker takes no task, finishes what runs and
 * exits 0; the rest of the sweep runs on another worker. */
Test(batch, lifetime_stops_taking_tasks)
{
    char log0[PATH_MAX], log1[PATH_MAX];
    const char *life[] = {"--lifetime", "1", "--slots", "1", NULL};
    int k = s_start_worker(log0, life);
    char *argv[] = {
        s_bin[2], "-s", s_endpoint, "sleep_pj", "seconds=0.4,0.41,0.42,0.43",
        NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "xpsubmit: %s", r.err);
    xpt_run_result_free(&r);
    cr_assert_eq(s_exit_of(k, 15), 0, "the worker's exit");
    s_assert_log(log0, "Draining (end of --lifetime)");
    s_assert_log(log0, "Drained: no step running");
    s_start_worker(log1, NULL);
    xp_experiment *ex = s_open();
    for (int64_t id = 1; id <= 4; id++) {
        xp_value *t = s_finished(ex, id);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "trial %lld",
                         (long long)id);
        /* 1 as a rule (a TASK sent on the drained worker's last RESULT is
         * refused, same attempt); 2 when it came after the worker's quiet
         * window, on a loaded machine, and went back on BYE */
        cr_assert_leq(xpt_get_int(s_step(t), "attempt"), 2);
        xp_value_destroy(&t);
    }
    cr_assert_eq(xpt_last_id(ex), 4);
    xp_experiment_destroy(&ex);
}

/* --death-timeout: the scheduler is killed; the worker gives up with
 * status 3 instead of waiting for ever in a job allocation. */
Test(batch, death_timeout_ends_an_orphaned_worker)
{
    char log0[PATH_MAX];
    const char *orphan[] = {"--death-timeout", "1", NULL};
    int k = s_start_worker(log0, orphan);
    kill(s_sched, SIGKILL);
    waitpid(s_sched, NULL, 0);
    s_sched = -1;
    cr_assert_eq(s_exit_of(k, 15), 3, "the orphaned worker's exit");
    s_assert_log(log0, "(--death-timeout): exiting");
}

/* ---- HELLO's job, encoded and decoded */

/* The body of HELLO m, opened as the scheduler opens it. */
static void s_hello_body(const xp_msg_hello *m, bson_t *body)
{
    zmsg_t *msg = xp__msg_hello_encode(m);
    xp_msg_type type;
    xp_error_t err;
    cr_assert_eq(xp__msg_decode(msg, XP_MAX_MESSAGE_DEFAULT, &type, body, &err),
                 0, "%s", err.message);
    zmsg_destroy(&msg);
}

Test(batch_hello, job_round_trips_and_bad_parts_read_as_absent)
{
    xp_msg_hello m = {.host = "cn042",
                      .slots = 2,
                      .job_id = "73311",
                      .job_index = 5,
                      .job_node = "cn042"};
    bson_t body;
    xp_msg_hello got;
    s_hello_body(&m, &body);
    cr_assert_eq(xp__msg_hello_decode(&body, &got, NULL), 0);
    cr_assert_str_eq(got.job_id, "73311");
    cr_assert_eq(got.job_index, 5);
    cr_assert_str_eq(got.job_node, "cn042");
    xp__msg_hello_clear(&got);
    bson_destroy(&body);

    /* no job: none; not an array element: index -1 */
    m.job_id = NULL;
    s_hello_body(&m, &body);
    cr_assert_eq(xp__msg_hello_decode(&body, &got, NULL), 0);
    cr_assert_null(got.job_id);
    cr_assert_eq(got.job_index, -1);
    xp__msg_hello_clear(&got);
    bson_destroy(&body);
    m.job_id = "9";
    m.job_index = -1;
    m.job_node = NULL;
    s_hello_body(&m, &body);
    cr_assert_eq(xp__msg_hello_decode(&body, &got, NULL), 0);
    cr_assert_str_eq(got.job_id, "9");
    cr_assert_eq(got.job_index, -1);
    cr_assert_null(got.job_node);
    xp__msg_hello_clear(&got);
    bson_destroy(&body);

    /* too long an id, a mistyped index: the registration still counts */
    char longid[XP_MSG_JOB_MAX + 2];
    memset(longid, '7', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    m.job_id = longid;
    s_hello_body(&m, &body);
    cr_assert_eq(xp__msg_hello_decode(&body, &got, NULL), 0);
    cr_assert_null(got.job_id);
    xp__msg_hello_clear(&got);
    bson_destroy(&body);
    bson_t bad = BSON_INITIALIZER, job, list;
    BSON_APPEND_UTF8(&bad, "host", "h");
    BSON_APPEND_INT32(&bad, "slots", 1);
    BSON_APPEND_ARRAY_BEGIN(&bad, "experiments", &list);
    bson_append_array_end(&bad, &list);
    BSON_APPEND_DOCUMENT_BEGIN(&bad, "job", &job);
    BSON_APPEND_UTF8(&job, "id", "12");
    BSON_APPEND_UTF8(&job, "array_index", "3");
    BSON_APPEND_INT32(&job, "node", 4);
    bson_append_document_end(&bad, &job);
    cr_assert_eq(xp__msg_hello_decode(&bad, &got, NULL), 0);
    cr_assert_str_eq(got.job_id, "12");
    cr_assert_eq(got.job_index, -1);
    cr_assert_null(got.job_node);
    xp__msg_hello_clear(&got);
    bson_destroy(&bad);
}
