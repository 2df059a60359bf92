/* test_db_outage.c — the scheduler on MongoDB (a private FerretDB over
 * PostgreSQL, tests/servers/ferretdb.sh) while the database is killed and
 * restarted on its data and a worker is killed -9 in the middle of a
 * sweep: every trial finishes and is recorded once. Its own executable:
 * criterion 2.4's runner leaked 48 bytes (LeakSanitizer) whenever a test
 * ran after this one in the same runner. */
#include "queue_fixture.h"

TestSuite(db_outage, .init = s_setup, .fini = s_teardown, .timeout = 60);

static pid_t s_db = -1;
static int s_db_port;

static bool s_db_listening(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s_db_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool up = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return up;
}

/* Starts a private FerretDB (tests/servers/ferretdb.sh, over PostgreSQL
 * where installed) on port with its data in dir, kept across restarts. */
static void s_db_start(int port, const char *dir, int n)
{
    const char *sh = getenv("XP_FERRETDB_SH");
    char p[16], log[PATH_MAX];
    snprintf(p, sizeof p, "%d", port);
    snprintf(log, sizeof log, "%s/ferretdb%d.log", xpt_dir, n);
    char *argv[] = {"/bin/bash", (char *)sh, "start", p, (char *)dir, NULL};
    s_db_port = port;
    cr_assert(!s_db_listening(), "port %d is taken", port);
    s_db = xpt_spawn(argv, xpt_dir, NULL, log);
    for (double end = xpt_now() + 30; xpt_now() < end; xpt_sleep(0.1)) {
        if (s_db_listening())
            return;
        int st;
        cr_assert_eq(waitpid(s_db, &st, WNOHANG), 0,
                     "FerretDB exited; log:\n%s", xpt_slurp(log));
    }
    cr_assert_fail("FerretDB did not listen within 30 s");
}

static void s_db_stop(void)
{
    if (s_db > 0) {
        kill(s_db, SIGTERM); /* FerretDB and its PostgreSQL, abruptly */
        xpt_wait(s_db);
        s_db = -1;
        cr_assert(!s_db_listening(), "FerretDB still listens on %d", s_db_port);
    }
}

static void s_db_teardown(void)
{
    s_teardown();
    s_db_stop();
}

Test(db_outage, database_and_worker_killed_mid_sweep_each_trial_recorded_once,
     .fini = s_db_teardown, .timeout = 120)
{
    const char *bin = getenv("XP_FERRETDB_BIN"), *sh = getenv("XP_FERRETDB_SH");
    if (!bin || access(bin, X_OK) != 0 || !sh || access(sh, R_OK) != 0)
        xpt_skip("XP_FERRETDB_BIN is not a FerretDB binary (tests/run.sh "
                 "builds one and sets it)");
    chmod(xpt_dir, 0755); /* FerretDB's PostgreSQL runs as postgres */
    char dir[PATH_MAX], uri[256];
    snprintf(dir, sizeof dir, "%s/ferretdb", xpt_dir);
    int port = xptr_free_port();
    snprintf(uri, sizeof uri,
             "mongodb://127.0.0.1:%d/xp_outage?serverSelectionTimeoutMS=500",
             port);
    s_db_start(port, dir, 1);

    kill(s_sched, SIGTERM);
    xpt_wait(s_sched);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler1.log", xpt_dir);
    char *argv[] = {s_sched_bin, "--bind",         s_endpoint, "--backend",
                    uri,         "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    s_start_worker("sleep_experiment.so");

    xp_client *c = s_client();
    const size_t n = 12;
    xp_value *trials = xptr_trials((int)n, "seconds", 0.15, 0.001);
    int64_t batch = 0, *ids = NULL;
    size_t got = 0;
    xp_error_t err;
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", trials, NULL, &batch, &ids, &got, &err),
        0, "submit: %s", err.message);
    cr_assert_eq(got, n);
    /* Down while trials run and finish: the scheduler must keep what
     * finishes (spooled) and what is queued (its records are stored). */
    xpt_sleep(0.4);
    xp_progress before;
    int64_t cursor = 0;
    cr_assert_eq(xp_client_progress(c, batch, &cursor, &before, NULL, &err), 0,
                 "%s", err.message);
    s_db_stop();
    xpt_sleep(3.0);
    s_db_start(port, dir, 2);
    cr_assert_lt((size_t)before.done, n, "the sweep ended before the outage");
    /* And the worker killed -9 with tasks on it: they run again on a new
     * one, each trial still recorded once. */
    kill(s_workers[0], SIGKILL);
    xpt_wait(s_workers[0]);
    s_workers[0] = -1;
    s_start_worker("sleep_experiment.so");
    xp_progress p = xptr_wait(c, batch, 60);
    char *slog = xpt_slurp(log);
    cr_assert_eq((size_t)p.done, n,
                 "%zu done, %zu failed of %zu; scheduler log:\n%s",
                 (size_t)p.done, (size_t)p.failed, n, slog);
    free(slog);
    xp_client_destroy(&c);

    /* Every trial stored, succeeded, once: no id beyond the batch's. */
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    size_t done = 0;
    for (double end = xpt_now() + 30; done < n && xpt_now() < end;
         xpt_sleep(0.2)) {
        cr_assert_eq(xp_experiment_open(&ex, "sleep_pj", &o, &err), 0, "%s",
                     err.message);
        done = 0;
        for (size_t i = 0; i < n; i++) {
            xp_value *t = xpt_trial(ex, ids[i]);
            done += strcmp(xpt_get_str(t, "status"), "succeeded") == 0;
            xp_value_destroy(&t);
        }
        xp_experiment_destroy(&ex);
    }
    cr_assert_eq(done, n, "%zu of %zu trials stored as succeeded", done, n);
    cr_assert_eq(s_last_on(uri, "sleep_pj"), ids[n - 1],
                 "a trial was recorded twice or a new one appeared");
    xp_free(ids);
    xp_value_destroy(&trials);
}
