/* test_limits.c — what one peer may cost the scheduler, as real processes
 * on loopback with the test as a fake peer (a czmq DEALER): a HELLO
 * announcing 1,000 experiments is refused whole and the scheduler keeps
 * serving real workers with a bounded number of open files; announcing
 * code opens no store, a store is opened by the trials that need it and
 * closed once none has for --keep-ms. */
#include "remote.h"

#include "experiment.h"

#include "remote/message.h"

#include <dirent.h>

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[4];
static int s_n_workers;
static char s_sched_bin[PATH_MAX], s_worker_bin[PATH_MAX];
static char s_log[PATH_MAX];

static void s_start_scheduler(const char *keep_ms)
{
    snprintf(s_log, sizeof s_log, "%s/scheduler.log", xpt_dir);
    char *argv[] = {
        s_sched_bin,      "--bind", s_endpoint,  "--backend",     xpt_dir,
        "--heartbeat-ms", "100",    "--keep-ms", (char *)keep_ms, NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, s_log);
    xpt_sleep(0.3);
}

static void s_start_worker(const char *plugin, const char *max_message)
{
    char so[PATH_MAX], why[256], log[PATH_MAX];
    if (!xpt_example(plugin, so, why))
        xpt_skip(why);
    snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, s_n_workers);
    char *argv[] = {s_worker_bin,
                    "--connect",
                    s_endpoint,
                    "--slots",
                    "2",
                    "--plugin",
                    so,
                    "--heartbeat-ms",
                    "100",
                    "--max-message",
                    (char *)max_message,
                    NULL};
    s_workers[s_n_workers++] = xpt_spawn(argv, xpt_dir, NULL, log);
    xptr_wait_registered(log);
}

static void s_setup(void)
{
    xpt_setup();
    xptr_bin("XP_SCHEDULER_BIN", s_sched_bin);
    xptr_bin("XP_WORKER_BIN", s_worker_bin);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    s_n_workers = 0;
    s_sched = -1;
}

static void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

TestSuite(limits, .init = s_setup, .fini = s_teardown, .timeout = 90);

/* Open file descriptors of process pid. */
static int s_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot list %s", path);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* True when experiment id has a store under the test's backend. */
static bool s_has_store(const char *id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", xpt_dir, id);
    return access(path, F_OK) == 0;
}

/* Times text occurs in the scheduler's log. */
static int s_log_count(const char *text)
{
    char *log = xpt_slurp(s_log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++)
        n++;
    free(log);
    return n;
}

static bool s_log_has(const char *text, double seconds)
{
    for (double end = xpt_now() + seconds; xpt_now() < end; xpt_sleep(0.05))
        if (s_log_count(text) > 0)
            return true;
    return false;
}

static xp_client *s_client(void)
{
    xp_client *c = NULL;
    xp_error_t err;
    cr_assert_eq(xp_client_connect(&c, s_endpoint, 5000, &err), 0, "%s",
                 err.message);
    return c;
}

/* Submits trials (which it takes) of quickstart_pj and waits for them
 * to finish; the first trial's id into *first (may be NULL). */
static xp_progress s_submit_wait(xp_client *c, xp_value *trials, double seconds,
                                 int64_t *first)
{
    int64_t batch = 0, *ids = NULL;
    size_t got = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(c, "quickstart_pj", trials, NULL, &batch,
                                  &ids, &got, &err),
                 0, "submit: %s", err.message);
    if (first)
        *first = ids[0];
    xp_free(ids);
    xp_value_destroy(&trials);
    return xptr_wait(c, batch, seconds);
}

/* Submits n quickstart trials and waits for them; returns the progress. */
static xp_progress s_run(xp_client *c, int n, double seconds)
{
    return s_submit_wait(c, xptr_trials_ab(n), seconds, NULL);
}

/* ---- the test as a worker */

static int s_step(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_double(out, 1);
}

/* A definition without a store: its code document and hash. */
static xp_experiment *s_definition(void)
{
    xp_experiment *ex = NULL;
    xp_error_t err;
    cr_assert_eq(xp__experiment_new_detached(&ex, "flood", &err), 0, "%s",
                 err.message);
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(XP_RESULT(ex, s_step, a));
    cr_assert_eq(xp__graph_freeze(ex, &err), 0, "%s", err.message);
    return ex;
}

/* Sends a HELLO announcing n experiments flood_0 ... (one valid code
 * document each) from d. */
static void s_hello(zsock_t *d, const xp_experiment *def, size_t n)
{
    xp_msg_experiment *list = calloc(n, sizeof *list);
    char(*ids)[32] = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "flood_%zu", i);
        list[i].id = ids[i];
        list[i].code_hash = def->code_hash;
        list[i].code = xp__msg_doc_of(def->code);
    }
    xp_msg_hello m = {.host = "fake",
                      .pid = 1,
                      .slots = 1,
                      .experiments = list,
                      .n_experiments = n};
    zmsg_t *msg = xp__msg_hello_encode(&m);
    cr_assert_eq(zmsg_send(&msg, d), 0);
    free(list);
    free(ids);
}

/* The first WELCOME or ERROR the scheduler answers on d: its type, and
 * the message of an ERROR into why. */
static xp_msg_type s_answer(zsock_t *d, char *why, size_t size)
{
    for (double end = xpt_now() + 10; xpt_now() < end;) {
        zpoller_t *p = zpoller_new(d, NULL);
        void *ready = zpoller_wait(p, 100);
        zpoller_destroy(&p);
        if (!ready)
            continue;
        zmsg_t *msg = zmsg_recv(d);
        xp_msg_type type;
        bson_t body;
        xp_error_t err;
        cr_assert_eq(
            xp__msg_decode(msg, XP_MAX_MESSAGE_DEFAULT, &type, &body, &err), 0,
            "%s", err.message);
        zmsg_destroy(&msg);
        if (type == XP_MSG_ERROR) {
            xp_msg_error e;
            xp__msg_error_decode(&body, &e, NULL);
            snprintf(why, size, "%s", e.message ? e.message : "");
        }
        bson_destroy(&body);
        if (type == XP_MSG_ERROR || type == XP_MSG_WELCOME)
            return type;
    }
    cr_assert_fail("no answer to HELLO");
    return XP_MSG_COUNT;
}

/* One HELLO announcing 1,000 experiments used to open 1,000 stores (a
 * file, a thread and a directory each): it is refused whole with one
 * line, logged once, and the scheduler goes on serving a real worker
 * with about the files it had. */
Test(limits, hello_with_too_many_experiments_is_refused)
{
    s_start_scheduler("600000");
    int before = s_fds(s_sched);
    xp_experiment *def = s_definition();
    zsock_t *d = zsock_new_dealer(s_endpoint);
    char why[512] = "";
    for (int i = 0; i < 2; i++) {
        s_hello(d, def, 1000);
        cr_assert_eq(s_answer(d, why, sizeof why), XP_MSG_ERROR,
                     "a HELLO of 1,000 experiments was welcomed");
        cr_assert_not_null(strstr(why, "1000 experiments"), "%s", why);
        cr_assert_not_null(strstr(why, "--max-experiments-per-worker"), "%s",
                           why);
        cr_assert_null(strchr(why, '\n'), "%s", why);
    }
    cr_assert(!s_has_store("flood_0"), "a store was created on disk");

    s_start_worker("quickstart.so", "67108864");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    xp_progress p = s_run(c, 3, 10);
    cr_assert_eq(p.done, 3, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    int after = s_fds(s_sched);
    cr_assert_lt(after, before + 40, "%d open files, %d before", after, before);
    cr_assert_eq(s_log_count("announces 1000 experiments"), 1,
                 "the refusal is not logged once");
    xp_client_destroy(&c);
    zsock_destroy(&d);
    xp_experiment_destroy(&def);
}

/* Within the limit, announcing code costs no store: none is opened or
 * created; the first trial opens its experiment's store, which is closed
 * --keep-ms after the last trial while the worker stays. */
Test(limits, store_is_opened_by_trials_and_closed_when_idle)
{
    s_start_scheduler("400");
    xp_experiment *def = s_definition();
    zsock_t *d = zsock_new_dealer(s_endpoint);
    int before = s_fds(s_sched);
    s_hello(d, def, 64);
    char why[512] = "";
    cr_assert_eq(s_answer(d, why, sizeof why), XP_MSG_WELCOME, "%s", why);
    xpt_sleep(0.3);
    cr_assert(!s_has_store("flood_0"), "announcing code created a store");
    cr_assert_lt(s_fds(s_sched), before + 5, "announcing code opened files");

    s_start_worker("quickstart.so", "67108864");
    xpt_sleep(0.5);
    cr_assert(!s_has_store("quickstart_pj"), "a worker's HELLO made a store");
    xp_client *c = s_client();
    xp_progress p = s_run(c, 2, 10);
    cr_assert_eq(p.done, 2, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    cr_assert(s_has_store("quickstart_pj"), "the trials have no store");
    cr_assert(s_log_has("quickstart_pj", 0.1));
    cr_assert(s_log_has("store closed", 5), "the idle store stays open");
    /* It opens again for the next trials. */
    p = s_run(c, 2, 10);
    cr_assert_eq(p.done, 2, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    xp_client_destroy(&c);
    zsock_destroy(&d);
    xp_experiment_destroy(&def);
}

/* ---- a task larger than a worker's --max-message */

/* Submits one quickstart trial whose a is a text of bytes bytes (its
 * first step's TASK is that big) and waits for it; the trial's record
 * into *trial (caller destroys). */
static xp_progress s_run_big(xp_client *c, size_t bytes, xp_value **trial)
{
    char *text = malloc(bytes + 1);
    memset(text, 'x', bytes);
    text[bytes] = '\0';
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    xp_value *p = xptr_trial_params(trials);
    xp_set_string(xp_document_set(p, "a"), text);
    xp_set_int64(xp_document_set(p, "b"), 2);
    free(text);
    int64_t id = 0;
    xp_progress pr = s_submit_wait(c, trials, 20, &id);
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("quickstart_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    *trial = xpt_trial(ex, id);
    xp_experiment_destroy(&ex);
    return pr;
}

/* A TASK over the worker's --max-message used to cost the worker its
 * connection three times and fail the trial as "worker lost 3 time(s)
 * ... no heartbeat": the scheduler knows the worker's limit (HELLO) and
 * fails the step at once, saying why. */
Test(limits, task_over_the_workers_max_message_fails_at_once)
{
    s_start_scheduler("600000");
    s_start_worker("quickstart.so", "16384");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    double t0 = xpt_now();
    xp_value *t = NULL;
    xp_progress p = s_run_big(c, 40000, &t);
    cr_assert_eq(p.failed, 1, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    cr_assert_lt(xpt_now() - t0, 3.0, "it took %.1f s", xpt_now() - t0);
    const char *why = xpt_get_str(t, "description");
    cr_assert_not_null(strstr(why, "exceeds worker's --max-message 16384"),
                       "%s", why);
    cr_assert_null(strstr(why, "worker lost"), "%s", why);
    xp_value_destroy(&t);
    /* The worker is still there for tasks it takes. */
    p = s_run(c, 2, 10);
    cr_assert_eq(p.done, 2, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    xp_client_destroy(&c);
}

/* With a worker that takes it, the large task goes there the first time
 * (the small worker, with more free slots, would be picked otherwise). */
Test(limits, task_goes_to_a_worker_that_takes_it)
{
    s_start_scheduler("600000");
    char so[PATH_MAX], why[256], log[PATH_MAX];
    if (!xpt_example("quickstart.so", so, why))
        xpt_skip(why);
    snprintf(log, sizeof log, "%s/small.log", xpt_dir);
    char *small[] = {
        s_worker_bin, "--connect",     s_endpoint, "--slots",
        "4",          "--plugin",      so,         "--heartbeat-ms",
        "100",        "--max-message", "16384",    NULL};
    s_workers[s_n_workers++] = xpt_spawn(small, xpt_dir, NULL, log);
    s_start_worker("quickstart.so", "1048576");
    xpt_sleep(0.5);
    xp_client *c = s_client();
    xp_value *t = NULL;
    xp_progress p = s_run_big(c, 40000, &t);
    cr_assert_eq(p.done, 1, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    const xp_value *step = xpt_field(xpt_field(t, "steps"), "prepare_data");
    cr_assert_eq(xpt_get_int(step, "attempt"), 1,
                 "the task was lost on the small worker first");
    xp_value_destroy(&t);
    xp_client_destroy(&c);
}

/* A RESULT over the scheduler's --max-message used to be dropped by the
 * scheduler's socket, so the worker's connection went and the trial
 * failed as "worker lost": the worker learns the scheduler's limit in
 * WELCOME and fails such a step itself, saying why, and keeps serving. */
Test(limits, result_over_the_schedulers_max_message_fails_at_once)
{
    const char *so = getenv("XP_TEST_BIG_RESULT_PLUGIN");
    if (!so || access(so, R_OK) != 0)
        xpt_skip("XP_TEST_BIG_RESULT_PLUGIN is not set (run through "
                 "`meson test`)");
    snprintf(s_log, sizeof s_log, "%s/scheduler.log", xpt_dir);
    char *sched[] = {
        s_sched_bin,      "--bind", s_endpoint,      "--backend", xpt_dir,
        "--heartbeat-ms", "100",    "--max-message", "16384",     NULL};
    s_sched = xpt_spawn(sched, xpt_dir, NULL, s_log);
    xpt_sleep(0.3);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, s_n_workers);
    char *worker[] = {s_worker_bin, "--connect", s_endpoint, "--plugin",
                      (char *)so,   "--slots",   "1",        "--heartbeat-ms",
                      "100",        NULL};
    s_workers[s_n_workers++] = xpt_spawn(worker, xpt_dir, NULL, log);
    xptr_wait_registered(log);
    xp_client *c = s_client();
    double t0 = xpt_now();
    for (int round = 0; round < 2; round++) {
        /* 40,000 bytes do not fit; 100 do. */
        xp_value *trials = xp_value_new();
        xp_set_array(trials);
        xp_value *p = xptr_trial_params(trials);
        xp_set_int64(xp_document_set(p, "bytes"), round == 0 ? 40000 : 100);
        int64_t batch = 0, *ids = NULL;
        size_t got = 0;
        xp_error_t err;
        cr_assert_eq(xp_client_submit(c, "big_result_pj", trials, NULL, &batch,
                                      &ids, &got, &err),
                     0, "submit: %s", err.message);
        int64_t id = ids[0];
        xp_free(ids);
        xp_value_destroy(&trials);
        xp_progress pr = xptr_wait(c, batch, 20);
        xp_experiment *ex = xpt_open_existing("big_result_pj", &err);
        cr_assert_not_null(ex, "%s", err.message);
        xp_value *t = xpt_trial(ex, id);
        if (round == 0) {
            cr_assert_eq(pr.failed, 1, "done %lld failed %lld",
                         (long long)pr.done, (long long)pr.failed);
            const char *why = xpt_get_str(t, "description");
            cr_assert_not_null(strstr(why, "exceeds the message limit of "
                                           "16384 bytes"),
                               "%s", why);
            cr_assert_null(strstr(why, "worker lost"), "%s", why);
            cr_assert_lt(xpt_now() - t0, 5.0, "it took %.1f s", xpt_now() - t0);
        } else {
            cr_assert_eq(pr.done, 1, "done %lld failed %lld",
                         (long long)pr.done, (long long)pr.failed);
            cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
        }
        xp_value_destroy(&t);
        xp_experiment_destroy(&ex);
    }
    xp_client_destroy(&c);
}
