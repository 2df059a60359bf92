/* test_outage.c — what clients are told when the store goes away for a
 * moment: a private redis-server started by the test on its own port is
 * stopped (SIGSTOP: it hangs, as an overloaded or paused server does) and
 * continued; the errors name the timeout. */
#include "remote.h"

#include <netinet/in.h>
#include <sys/socket.h>

static pid_t s_redis = -1;
static char s_uri[128]; /* the private server, with a short io_timeout */
static int s_port;
static char s_endpoint[64];
static pid_t s_daemons[2] = {-1, -1}; /* scheduler, worker */

/* True once something accepts TCP connections on 127.0.0.1:port. */
static bool s_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A redis-server of the test's own (no persistence), or skip. */
static void s_start_redis(void)
{
    const char *bins[] = {"/usr/bin/redis-server",
                          "/usr/local/bin/redis-server"};
    const char *bin = NULL;
    for (size_t i = 0; i < 2 && !bin; i++)
        if (access(bins[i], X_OK) == 0)
            bin = bins[i];
    if (!bin)
        xpt_skip("redis-server is not installed");
    int port = xptr_free_port();
    char p[16], log[PATH_MAX];
    snprintf(p, sizeof p, "%d", port);
    snprintf(log, sizeof log, "%s/redis.log", xpt_dir);
    char *argv[] = {(char *)bin, "--port", p,       "--bind",
                    "127.0.0.1", "--save", "",      "--appendonly",
                    "no",        "--dir",  xpt_dir, NULL};
    s_redis = xpt_spawn(argv, xpt_dir, log, log);
    for (int i = 0; i < 100 && !s_port_open(port); i++)
        xpt_sleep(0.05);
    cr_assert(s_port_open(port), "redis-server did not start on %d", port);
    snprintf(s_uri, sizeof s_uri, "redis://127.0.0.1:%d/0?io_timeout=300",
             port);
    s_port = port;
}

static void s_setup(void)
{
    xpt_setup();
    s_redis = -1;
    s_start_redis();
}

static void s_teardown(void)
{
    xptr_stop(&s_daemons[1]);
    xptr_stop(&s_daemons[0]);
    if (s_redis > 0) {
        kill(s_redis, SIGCONT);
        xptr_stop(&s_redis);
    }
    xpt_teardown();
}

TestSuite(outage, .init = s_setup, .fini = s_teardown, .timeout = 60);

static int s_double(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, 2 * xp_as_double(in[0]));
}

/* A hung server times out; the error says so, with the timeout, instead
 * of hiredis's "Resource temporarily unavailable". */
Test(outage, hung_redis_names_the_timeout)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_uri;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, "hung_pj", &o, &err), 0, "%s",
                 err.message);
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(XP_RESULT(ex, s_double, a));
    cr_assert_eq(xp_set_param_double(ex, "a", 1.5, &err), 0, "%s", err.message);
    xp_value *result = NULL;
    cr_assert_eq(xp_compute(ex, NULL, &result, NULL, &err), 0, "%s",
                 err.message);
    xp_value_destroy(&result);

    kill(s_redis, SIGSTOP);
    double t0 = xpt_now();
    int rc = xp_compute(ex, NULL, &result, NULL, &err);
    double took = xpt_now() - t0;
    kill(s_redis, SIGCONT);
    cr_assert_neq(rc, 0, "a trial was recorded on a stopped server");
    cr_assert_not_null(strstr(err.message, "Redis did not answer within 300 "
                                           "ms"),
                       "%s", err.message);
    cr_assert_null(strstr(err.message, "temporarily"), "%s", err.message);
    cr_assert_lt(took, 5.0, "took %.1f s", took);
    xp_value_destroy(&result);
    xp_experiment_destroy(&ex);
}

/* ---- a sweep through a store outage */

/* Starts a scheduler on the private server and a worker with
 * sleep_experiment, or skips. */
static void s_start_daemons(void)
{
    char sched[PATH_MAX], worker[PATH_MAX], so[PATH_MAX], why[256];
    xptr_bin("XP_SCHEDULER_BIN", sched);
    xptr_bin("XP_WORKER_BIN", worker);
    if (!xpt_example("sleep_experiment.so", so, why))
        xpt_skip(why);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    char slog[PATH_MAX], wlog[PATH_MAX];
    snprintf(slog, sizeof slog, "%s/scheduler.log", xpt_dir);
    snprintf(wlog, sizeof wlog, "%s/worker.log", xpt_dir);
    /* Heartbeats slow enough that a loop held by the store's timeouts
     * loses no worker; timeouts short enough that a trial's writes fail
     * (each is tried twice) within the outage. */
    char uri[128];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0?io_timeout=100", s_port);
    char *sargv[] = {sched, "--bind",         s_endpoint, "--backend",
                     uri,   "--heartbeat-ms", "1000",     NULL};
    s_daemons[0] = xpt_spawn(sargv, xpt_dir, NULL, slog);
    char *wargv[] = {worker, "--connect", s_endpoint, "--slots",
                     "2",    "--plugin",  so,         "--heartbeat-ms",
                     "1000", NULL};
    s_daemons[1] = xpt_spawn(wargv, xpt_dir, NULL, wlog);
    xpt_sleep(0.8);
}

/* The status of every trial of sleep_pj 1..n on the private server:
 * how many read succeeded. */
static size_t s_succeeded(size_t n)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_uri;
    o.read_only = true;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, "sleep_pj", &o, &err) != 0)
        return 0;
    size_t ok = 0;
    for (size_t id = 1; id <= n; id++) {
        xp_value *t = NULL;
        if (xp_trial_get(ex, (int64_t)id, &t, &err) == 0 &&
            strcmp(xpt_get_str(t, "status"), "succeeded") == 0)
            ok++;
        xp_value_destroy(&t);
    }
    xp_experiment_destroy(&ex);
    return ok;
}

/* The server hangs for a second in the middle of a sweep: trials that
 * finish meanwhile cannot be recorded and wait in the scheduler's spool.
 * The client used to be told they "failed ... could not be recorded"
 * (and xpsubmit exited 1) although they were stored as succeeded; it is
 * told their real status, "spooled, will be written", exits 0, and the
 * scheduler writes them once the server answers. */
Test(outage, spooled_trials_are_reported_with_their_real_status)
{
    s_start_daemons();
    char bin[PATH_MAX];
    xptr_bin("XP_XPSUBMIT_BIN", bin);
    char values[1024] = "seconds=";
    size_t n = 40;
    for (size_t i = 0; i < n; i++)
        strcat(values, i ? ",0.05" : "0.05");
    char out[PATH_MAX], errf[PATH_MAX];
    snprintf(out, sizeof out, "%s/xpsubmit.out", xpt_dir);
    snprintf(errf, sizeof errf, "%s/xpsubmit.err", xpt_dir);
    char *argv[] = {bin, "-s", s_endpoint, "sleep_pj", values, "--wait", NULL};
    pid_t client = xpt_spawn(argv, xpt_dir, out, errf);
    /* Once the trials are accepted (their ids printed) and running. */
    bool accepted = false;
    for (double end = xpt_now() + 10; !accepted && xpt_now() < end;
         xpt_sleep(0.02)) {
        if (access(out, F_OK) != 0)
            continue;
        char *ids = xpt_slurp(out);
        accepted = xpt_count_lines(ids) >= n;
        free(ids);
    }
    cr_assert(accepted, "the sweep was not accepted");
    xpt_sleep(0.2);
    kill(s_redis, SIGSTOP);
    xpt_sleep(1.2);
    kill(s_redis, SIGCONT);
    int status = xpt_wait(client);
    char *text = xpt_slurp(out);
    char shown[8192];
    const char *table = strstr(text, "Trial ID");
    snprintf(shown, sizeof shown, "%s", table ? table : text);
    cr_assert_not_null(strstr(text, "spooled, will be written"),
                       "no trial met the outage:\n%s", shown);
    cr_assert_null(strstr(text, "failed"), "a trial reported failed:\n%s",
                   shown);
    cr_assert_eq(status, 0, "xpsubmit exited %d:\n%s", status, shown);
    /* Each spooled line names the status it will have. */
    for (const char *l = strstr(text, "spooled"); l;
         l = strstr(l + 1, "spooled")) {
        const char *start = l;
        while (start > text && start[-1] != '\n')
            start--;
        cr_assert_not_null(strstr(start, "succeeded"), "%.200s", start);
    }
    free(text);
    size_t ok = 0;
    for (double end = xpt_now() + 15; ok < n && xpt_now() < end; xpt_sleep(0.2))
        ok = s_succeeded(n);
    cr_assert_eq(ok, n, "%zu of %zu trials stored as succeeded", ok, n);
    xptr_stop_clean(&s_daemons[1], "xp-worker", NULL);
    xptr_stop_clean(&s_daemons[0], "xp-scheduler", NULL);
}
