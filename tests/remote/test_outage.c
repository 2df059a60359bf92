/* test_outage.c — what clients are told when the store goes away for a
 * moment: a private redis-server started by the test on its own port is
 * stopped (SIGSTOP: it hangs, as an overloaded or paused server does) and
 * continued; the errors name the timeout. */
#include "remote.h"

#include <netinet/in.h>
#include <sys/socket.h>

static pid_t s_redis = -1;
static char s_uri[128]; /* the private server, with a short io_timeout */

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
}

static void s_setup(void)
{
    xpt_setup();
    s_redis = -1;
    s_start_redis();
}

static void s_teardown(void)
{
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
