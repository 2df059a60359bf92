/* remote.h — helpers of the tests that run xp-scheduler, xp-worker and
 * xpsubmit as real processes: a free loopback port, and the programs'
 * paths from the environment meson sets (skipping, with the reason, when
 * one is missing). */
#ifndef XP_TESTS_REMOTE_H
#define XP_TESTS_REMOTE_H

#include "../common.h"

#include <netinet/in.h>
#include <sys/socket.h>

/* A TCP port free on 127.0.0.1 right now. */
static inline int xptr_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The program named by environment variable var into out[PATH_MAX], or
 * skips the test saying why. */
static inline void xptr_bin(const char *var, char *out)
{
    const char *p = getenv(var);
    if (!p || access(p, X_OK) != 0) {
        char why[300];
        snprintf(why, sizeof why,
                 "%s is not set or not executable (run through `meson "
                 "test`)",
                 var);
        xpt_skip(why);
    }
    snprintf(out, PATH_MAX, "%s", p);
}

/* Appends a trial spec {parameters: {}} to the array trials and returns
 * its (empty) parameters document. */
static inline xp_value *xptr_trial_params(xp_value *trials)
{
    xp_value *spec = xp_array_append(trials);
    xp_set_document(spec);
    xp_value *p = xp_document_set(spec, "parameters");
    xp_set_document(p);
    return p;
}

/* n trial specs {parameters: {name: v + step * i}} (a double), as
 * xp_client_submit takes them. */
static inline xp_value *xptr_trials(int n, const char *name, double v,
                                    double step)
{
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    for (int i = 0; i < n; i++)
        xp_set_double(xp_document_set(xptr_trial_params(trials), name),
                      v + step * i);
    return trials;
}

/* n trial specs {parameters: {a: i + 1, b: 2}} (int64), as
 * xp_client_submit takes them: quickstart_pj's parameters. */
static inline xp_value *xptr_trials_ab(int n)
{
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    for (int i = 0; i < n; i++) {
        xp_value *p = xptr_trial_params(trials);
        xp_set_int64(xp_document_set(p, "a"), i + 1);
        xp_set_int64(xp_document_set(p, "b"), 2);
    }
    return trials;
}

/* Waits up to seconds for text to appear in the file at path (a
 * daemon's log); true when it did. */
static inline bool xptr_wait_log(const char *path, const char *text,
                                 double seconds)
{
    for (double end = xpt_now() + seconds;; xpt_sleep(0.05)) {
        char *log = access(path, R_OK) == 0 ? xpt_slurp(path) : NULL;
        bool found = log && strstr(log, text);
        free(log);
        if (found || xpt_now() > end)
            return found;
    }
}

/* Waits (at most 10 s) until the worker logging to log has registered
 * with its scheduler, instead of guessing with a fixed sleep on a loaded
 * machine; a worker that does not register is for the test to find. */
static inline void xptr_wait_registered(const char *log)
{
    xptr_wait_log(log, "Registered with the scheduler", 10);
}

/* Progress of batch once every trial is finished (or after seconds),
 * read from the start each time (the batch is not dropped as read). */
static inline xp_progress xptr_wait(xp_client *c, int64_t batch, double seconds)
{
    xp_progress p;
    memset(&p, 0, sizeof p);
    xp_error_t err;
    for (double end = xpt_now() + seconds; xpt_now() < end; xpt_sleep(0.05)) {
        int64_t cursor = 0;
        cr_assert_eq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                     "%s", err.message);
        if (p.done + p.failed >= p.total)
            break;
    }
    return p;
}

/* A BSON document of depth documents nested one in the other, {"a": {"a":
 * ...}}: 8 bytes a level, so 10,000 levels are 80 KB. Caller frees. */
static inline uint8_t *xptr_deep_bson(int depth, size_t *len)
{
    size_t n = 5 + 8 * (size_t)(depth - 1), pos = 0;
    uint8_t *b = malloc(n);
    cr_assert_not_null(b);
    for (int i = 0; i < depth; i++) {
        uint32_t l = (uint32_t)(5 + 8 * (size_t)(depth - 1 - i));
        for (int k = 0; k < 4; k++)
            b[pos++] = (uint8_t)(l >> (8 * k));
        if (i < depth - 1) {
            b[pos++] = 0x03; /* document */
            b[pos++] = 'a';
            b[pos++] = 0;
        }
    }
    memset(b + pos, 0, n - pos); /* the terminators, innermost first */
    *len = n;
    return b;
}

/* Stops *pid with SIGTERM (SIGKILL after 10 s), sets it to -1 and
 * returns its exit status (128 + signal when killed; -1: no process). A
 * daemon that exits non-zero on SIGTERM, or whose sanitizer found
 * something at exit, shows here. */
static inline int xptr_stop(pid_t *pid)
{
    if (*pid <= 0)
        return -1;
    kill(*pid, SIGTERM);
    int st = 0;
    pid_t r = 0;
    for (int i = 0; i < 200 && (r = waitpid(*pid, &st, WNOHANG)) == 0; i++)
        xpt_sleep(0.05);
    if (r == 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, &st, 0);
    }
    *pid = -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* Stops a daemon at the end of a test and fails the test unless it
 * exited cleanly (its log is in the message). */
static inline void xptr_stop_clean(pid_t *pid, const char *what,
                                   const char *log)
{
    if (*pid <= 0)
        return;
    int status = xptr_stop(pid);
    if (status != 0) {
        char *text = log ? xpt_slurp(log) : NULL;
        char shown[4096];
        snprintf(shown, sizeof shown, "%s", text ? text : "");
        free(text);
        cr_assert_fail("%s exited with status %d; log:\n%s", what, status,
                       shown);
    }
}

/* The end of a test with daemons: stops the workers, then the
 * scheduler, removes the test's directory, and fails the test when one of
 * them did not exit cleanly. */
static inline void xptr_teardown(pid_t *workers, int n_workers, pid_t *sched)
{
    char failed[256] = "";
    for (int i = 0; i < n_workers; i++) {
        int st = xptr_stop(&workers[i]);
        if (st > 0 && !failed[0])
            snprintf(failed, sizeof failed,
                     "xp-worker %d exited with status %d", i, st);
    }
    int st = xptr_stop(sched);
    if (st > 0 && !failed[0])
        snprintf(failed, sizeof failed, "xp-scheduler exited with status %d",
                 st);
    xpt_teardown();
    cr_assert(!failed[0], "%s", failed);
}

#endif
