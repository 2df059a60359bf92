/* test_memo_remote.c — memoised pure steps through a real xp-scheduler
 * and two xp-workers on loopback: concurrent trials of one key run it
 * once, a memo hit is never sent to a worker (the workers count what
 * they execute in a file), and --no-memo's mode reaches them. */
#include "../remote/remote.h"

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[2];
static int s_n_workers;
static char s_count[PATH_MAX];

static void s_setup(void)
{
    xpt_setup();
    char sched_bin[PATH_MAX], worker_bin[PATH_MAX], plugin[PATH_MAX];
    xptr_bin("XP_SCHEDULER_BIN", sched_bin);
    xptr_bin("XP_WORKER_BIN", worker_bin);
    const char *so = getenv("XP_TEST_MEMO_PLUGIN");
    if (!so || access(so, R_OK) != 0)
        xpt_skip("XP_TEST_MEMO_PLUGIN is not set (run through `meson test`)");
    snprintf(plugin, sizeof plugin, "%s", so);
    snprintf(s_count, sizeof s_count, "%s/count.slow_add", xpt_dir);
    setenv("XP_TEST_MEMO_COUNT", s_count, 1);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *sargv[] = {sched_bin, "--bind",         s_endpoint, "--backend",
                     xpt_dir,   "--heartbeat-ms", "200",      NULL};
    s_sched = xpt_spawn(sargv, xpt_dir, NULL, log);
    xpt_sleep(0.2);
    for (s_n_workers = 0; s_n_workers < 2; s_n_workers++) {
        snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, s_n_workers);
        char *wargv[] = {worker_bin, "--connect", s_endpoint, "--slots",
                         "2",        "--plugin",  plugin,     "--heartbeat-ms",
                         "200",      NULL};
        s_workers[s_n_workers] = xpt_spawn(wargv, xpt_dir, NULL, log);
        xptr_wait_registered(log);
    }
}

static void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

static int s_executions(void)
{
    char *text = xpt_slurp(s_count);
    int n = text ? (int)xpt_count_lines(text) : 0;
    free(text);
    return n;
}

/* Submits n trials a=1 b=2 in mode memo and waits for them; their ids
 * into ids. */
static void s_submit(xp_client *c, int n, int memo, int64_t *ids_out)
{
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    for (int i = 0; i < n; i++) {
        xp_value *spec = xp_array_append(trials);
        xp_set_document(spec);
        xp_value *p = xp_document_set(spec, "parameters");
        xp_set_document(p);
        xp_set_int64(xp_document_set(p, "a"), 1);
        xp_set_int64(xp_document_set(p, "b"), 2);
        if (memo)
            xp_set_int64(xp_document_set(spec, "memo"), memo);
    }
    int64_t batch = 0, *ids = NULL;
    size_t got = 0;
    xp_error_t err;
    cr_assert_eq(xp_client_submit(c, "memo_remote_pj", trials, NULL, &batch,
                                  &ids, &got, &err),
                 0, "%s", err.message);
    cr_assert_eq(got, (size_t)n);
    xp_progress p = xptr_wait(c, batch, 30);
    cr_assert_eq(p.done, n, "done %lld of %d (failed %lld)", (long long)p.done,
                 n, (long long)p.failed);
    for (int i = 0; i < n; i++)
        ids_out[i] = ids[i];
    xp_free(ids);
    xp_value_destroy(&trials);
}

/* The trial slow_add was reused from in trial id (0: none), and whether a
 * worker ran it there (the record's steps). */
static int64_t s_reused(xp_experiment *ex, int64_t id, bool *dispatched)
{
    xp_value *t = xpt_trial(ex, id);
    const xp_value *reused = xp_value_get(t, "reused");
    const xp_value *from = reused ? xp_value_get(reused, "slow_add") : NULL;
    int64_t n = from ? xp_as_int64(from) : 0;
    const xp_value *steps = xp_value_get(t, "steps");
    *dispatched = steps && xp_value_get(steps, "slow_add") != NULL;
    cr_expect_eq(xp_as_int64(xp_value_get(t, "result")), 3);
    xp_value_destroy(&t);
    return n;
}

Test(memo_remote, one_key_runs_once_and_a_hit_is_never_dispatched,
     .init = s_setup, .fini = s_teardown, .timeout = 90)
{
    xp_client *c = NULL;
    xp_error_t err;
    cr_assert_eq(xp_client_connect(&c, s_endpoint, 5000, &err), 0, "%s",
                 err.message);
    /* Four at once on 2 workers x 2 slots: one runs it, three wait. */
    int64_t ids[4];
    s_submit(c, 4, 0, ids);
    cr_expect_eq(s_executions(), 1, "slow_add ran %d times", s_executions());
    /* Later trials reuse the stored output without a worker. */
    int64_t later[2];
    s_submit(c, 2, 0, later);
    cr_expect_eq(s_executions(), 1, "a hit reached a worker");
    /* --no-memo runs it. */
    int64_t off[1];
    s_submit(c, 1, XP_MEMO_OFF, off);
    cr_expect_eq(s_executions(), 2, "--no-memo did not run it");
    xp_client_destroy(&c);
    /* xpsubmit's flags. */
    char xpsubmit[PATH_MAX];
    xptr_bin("XP_XPSUBMIT_BIN", xpsubmit);
    char *refresh[] = {xpsubmit,         "-s",     s_endpoint,
                       "memo_remote_pj", "a=1",    "b=2",
                       "--refresh",      "--wait", NULL};
    xpt_run_result r = xpt_run(refresh, xpt_dir);
    cr_expect_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    cr_expect_eq(s_executions(), 3, "xpsubmit --refresh did not run it");
    char *both[] = {xpsubmit,    "-s",        s_endpoint, "memo_remote_pj",
                    "--no-memo", "--refresh", NULL};
    r = xpt_run(both, xpt_dir);
    cr_expect_eq(r.status, 2, "%s", r.err);
    xpt_run_result_free(&r);

    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.must_exist = true;
    o.read_only = true;
    xp_experiment *ex = NULL;
    cr_assert_eq(xp_experiment_open(&ex, "memo_remote_pj", &o, &err), 0, "%s",
                 err.message);
    int reused = 0, dispatched_n = 0;
    for (int i = 0; i < 4; i++) {
        bool dispatched = false;
        reused += s_reused(ex, ids[i], &dispatched) > 0;
        dispatched_n += dispatched;
    }
    cr_expect_eq(reused, 3);
    cr_expect_eq(dispatched_n, 1, "only the runner's step went to a worker");
    for (int i = 0; i < 2; i++) {
        bool dispatched = true;
        cr_expect_gt(s_reused(ex, later[i], &dispatched), 0);
        cr_expect(!dispatched);
    }
    bool dispatched = false;
    cr_expect_eq(s_reused(ex, off[0], &dispatched), 0);
    cr_expect(dispatched);
    xp_experiment_destroy(&ex);
}
