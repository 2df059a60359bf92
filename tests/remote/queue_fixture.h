/* queue_fixture.h — a scheduler on the local store of the test's
 * directory and workers started on demand, as test_queue.c and
 * test_db_outage.c use them (one copy of this state per test file). */
#ifndef XP_TEST_QUEUE_FIXTURE_H
#define XP_TEST_QUEUE_FIXTURE_H

#include "remote.h"

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[4];
static int s_n_workers;
static char s_sched_bin[PATH_MAX], s_worker_bin[PATH_MAX];

static inline void s_start_worker(const char *plugin)
{
    char so[PATH_MAX], why[256], log[PATH_MAX];
    if (!xpt_example(plugin, so, why))
        xpt_skip(why);
    snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, s_n_workers);
    char *argv[] = {s_worker_bin, "--connect", s_endpoint, "--slots",
                    "2",          "--plugin",  so,         "--heartbeat-ms",
                    "200",        NULL};
    s_workers[s_n_workers++] = xpt_spawn(argv, xpt_dir, NULL, log);
    xptr_wait_registered(log);
}

static inline void s_setup(void)
{
    xpt_setup();
    xptr_bin("XP_SCHEDULER_BIN", s_sched_bin);
    xptr_bin("XP_WORKER_BIN", s_worker_bin);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *argv[] = {s_sched_bin, "--bind",         s_endpoint, "--backend",
                    xpt_dir,     "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    s_n_workers = 0;
    xpt_sleep(0.2);
}

/* Every daemon must exit cleanly on SIGTERM: a non-zero status fails the
 * test (also what a sanitizer's report at exit gives). */
static inline void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

static inline xp_client *s_client(void)
{
    xp_client *c = NULL;
    xp_error_t err;
    cr_assert_eq(xp_client_connect(&c, s_endpoint, 5000, &err), 0, "%s",
                 err.message);
    return c;
}

static inline int64_t s_last_on(const char *uri, const char *id)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, id, &o, &err) != 0)
        return 0;
    int64_t last = xpt_last_id(ex);
    xp_experiment_destroy(&ex);
    return last;
}

#endif
