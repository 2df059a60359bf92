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

#endif
