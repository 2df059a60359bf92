/* test_netns.c — the scheduler and two workers on three "hosts": network
 * namespaces joined by veth pairs (scheduler 10.201.1.1 / 10.201.2.1,
 * worker A 10.201.1.2, worker B 10.201.2.2). A sweep submitted in the
 * scheduler's namespace runs on both workers across the links and every
 * trial is recorded once. Needs root and iproute2; skipped, with the
 * reason printed, when namespaces cannot be made. */
#include "remote.h"

static char s_ip[PATH_MAX];
static char s_ns[3][32]; /* scheduler, worker A, worker B */
static bool s_made[3];
static pid_t s_pids[4];
static int s_n_pids;
static int s_tag;

/* Runs a shell command; true when it succeeded. Output to the test log. */
static bool s_sh(const char *fmt, ...) XP_PRINTF(1, 2);
static bool s_sh(const char *fmt, ...)
{
    char cmd[1024], full[PATH_MAX + 1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s >>'%s/netns.log' 2>&1", cmd, xpt_dir);
    return system(full) == 0;
}

static void s_setup(void)
{
    xpt_setup();
    s_n_pids = 0;
    memset(s_made, 0, sizeof s_made);
    s_tag = (int)(getpid() % 100000);
    const char *names[3] = {"s", "a", "b"};
    for (int i = 0; i < 3; i++)
        snprintf(s_ns[i], sizeof s_ns[i], "xpt%d%s", s_tag, names[i]);
}

static void s_teardown(void)
{
    /* Workers first, then the scheduler: each must exit cleanly. */
    char failed[256] = "";
    for (int i = s_n_pids - 1; i >= 0; i--) {
        int st = xptr_stop(&s_pids[i]);
        if (st > 0 && !failed[0])
            snprintf(failed, sizeof failed,
                     "process %d (0: the scheduler) exited with status %d", i,
                     st);
    }
    for (int i = 0; i < 3; i++)
        if (s_made[i])
            s_sh("'%s' netns del %s", s_ip, s_ns[i]);
    xpt_teardown();
    cr_assert(!failed[0], "%s", failed);
}

TestSuite(netns, .init = s_setup, .fini = s_teardown, .timeout = 90);

/* The reason namespaces cannot be used here, or NULL. */
static const char *s_unavailable(void)
{
    if (geteuid() != 0)
        return "network namespaces need root";
    const char *dirs[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
    s_ip[0] = '\0';
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs && !s_ip[0]; i++)
        if (access(dirs[i], X_OK) == 0)
            snprintf(s_ip, sizeof s_ip, "%s", dirs[i]);
    if (!s_ip[0])
        return "the ip command (iproute2) is not installed";
    for (int i = 0; i < 3; i++) {
        if (!s_sh("'%s' netns add %s", s_ip, s_ns[i]))
            return "cannot create a network namespace (no CAP_SYS_ADMIN?)";
        s_made[i] = true;
        if (!s_sh("'%s' -n %s link set lo up", s_ip, s_ns[i]))
            return "cannot configure a network namespace";
    }
    /* One veth pair from the scheduler's namespace to each worker's. */
    for (int w = 1; w <= 2; w++) {
        char here[16], there[16];
        snprintf(here, sizeof here, "x%d%c0", s_tag, 'a' + w - 1);
        snprintf(there, sizeof there, "x%d%c1", s_tag, 'a' + w - 1);
        if (!s_sh("'%s' link add %s netns %s type veth peer name %s netns %s",
                  s_ip, here, s_ns[0], there, s_ns[w]) ||
            !s_sh("'%s' -n %s addr add 10.201.%d.1/24 dev %s", s_ip, s_ns[0], w,
                  here) ||
            !s_sh("'%s' -n %s addr add 10.201.%d.2/24 dev %s", s_ip, s_ns[w], w,
                  there) ||
            !s_sh("'%s' -n %s link set %s up", s_ip, s_ns[0], here) ||
            !s_sh("'%s' -n %s link set %s up", s_ip, s_ns[w], there))
            return "cannot link the namespaces with veth pairs";
    }
    return NULL;
}

Test(netns, scheduler_and_two_workers_on_separate_hosts)
{
    char sched[PATH_MAX], worker[PATH_MAX], submit[PATH_MAX], so[PATH_MAX],
        why[256];
    xptr_bin("XP_SCHEDULER_BIN", sched);
    xptr_bin("XP_WORKER_BIN", worker);
    xptr_bin("XP_XPSUBMIT_BIN", submit);
    if (!xpt_example("sleep_experiment.so", so, why))
        xpt_skip(why);
    const char *no = s_unavailable();
    if (no)
        xpt_skip(no);

    int port = 5600 + s_tag % 1000;
    char bind[64], log[PATH_MAX];
    snprintf(bind, sizeof bind, "tcp://0.0.0.0:%d", port);
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *sargv[] = {s_ip,
                     "netns",
                     "exec",
                     s_ns[0],
                     sched,
                     "--bind",
                     bind,
                     "--insecure",
                     "--backend",
                     xpt_dir,
                     "--heartbeat-ms",
                     "200",
                     NULL};
    s_pids[s_n_pids++] = xpt_spawn(sargv, xpt_dir, NULL, log);
    xpt_sleep(0.3);
    for (int w = 1; w <= 2; w++) {
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://10.201.%d.1:%d", w, port);
        snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, w);
        char *wargv[] = {s_ip,   "netns",     "exec", s_ns[w],
                         worker, "--connect", ep,     "--slots",
                         "1",    "--plugin",  so,     "--heartbeat-ms",
                         "200",  NULL};
        s_pids[s_n_pids++] = xpt_spawn(wargv, xpt_dir, NULL, log);
    }
    xpt_sleep(1.0);

    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    char *argv[] = {
        s_ip,     "netns",    "exec",
        s_ns[0],  submit,     "-s",
        ep,       "sleep_pj", "seconds=0.2,0.21,0.22,0.23,0.24,0.25",
        "--wait", NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    if (r.status != 0) {
        snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
        char *slog = xpt_slurp(log);
        cr_assert_fail("xpsubmit: status %d\n%s\n%s\nscheduler log:\n%s",
                       r.status, r.out, r.err, slog);
    }
    xpt_run_result_free(&r);

    xp_error_t err;
    xp_experiment *ex = xpt_open_existing("sleep_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 6, "%zu trials recorded",
                 xp_value_count(h));
    /* Which workers ran the steps: both hosts took part. */
    char first[64] = "";
    bool two = false;
    for (size_t i = 0; i < xp_value_count(h); i++) {
        const xp_value *t = xp_value_at(h, i);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded");
        cr_assert_eq(xpt_get_int(t, "trial_id"), (int64_t)i + 1);
        xp_value *full = xpt_trial(ex, (int64_t)i + 1);
        const xp_value *steps = xpt_field(full, "steps");
        const xp_value *step = xp_value_at(steps, 0);
        const char *w = xp_as_string(xp_value_get(step, "worker"), NULL);
        cr_assert_not_null(w, "no worker recorded: %s", xpt_json(steps));
        if (!first[0])
            snprintf(first, sizeof first, "%s", w);
        else if (strcmp(first, w) != 0)
            two = true;
        xp_value_destroy(&full);
    }
    cr_assert(two, "every step ran on worker %s", first);
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}
