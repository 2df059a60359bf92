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

#endif
