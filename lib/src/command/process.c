/* command/process.c — one program run by posix_spawn in a process group of
 * its own: stdin from /dev/null, stdout and stderr through non-blocking
 * pipes read with poll into fixed-size tails, stdout also cut into lines,
 * and the group ended on timeout and once the program exits. */

#include "command/process.h"

#include "util/error.h"
#include "util/sys.h"

#include <bson/bson.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* After the program exits, its pipes are read this long at most (a
 * process that left the group may hold them). */
#define S_DRAIN_MAX 2.0
/* SIGTERM first on timeout; SIGKILL this much later. */
#define S_KILL_GRACE 1.0
#define S_TICK 0.2

/* The last cap bytes written to a stream. */
typedef struct {
    char *buf;
    size_t cap, len, pos; /* pos: where the next byte goes once full */
    uint64_t total;
} s_tail;

static void s_tail_add(s_tail *t, const char *p, size_t n)
{
    t->total += n;
    if (t->cap == 0)
        return;
    if (n >= t->cap) {
        memcpy(t->buf, p + n - t->cap, t->cap);
        t->len = t->cap;
        t->pos = 0;
        return;
    }
    while (n > 0) {
        size_t at = t->len < t->cap ? t->len : t->pos;
        size_t room = t->cap - at;
        size_t k = n < room ? n : room;
        memcpy(t->buf + at, p, k);
        if (t->len < t->cap) {
            t->len += k;
        } else {
            t->pos = (t->pos + k) % t->cap;
        }
        p += k;
        n -= k;
    }
}

/* The tail in order, NUL-terminated; caller frees. */
static char *s_tail_take(s_tail *t, size_t *len)
{
    char *out = bson_malloc(t->len + 1);
    if (t->len < t->cap || t->pos == 0) {
        memcpy(out, t->buf, t->len);
    } else {
        memcpy(out, t->buf + t->pos, t->cap - t->pos);
        memcpy(out + t->cap - t->pos, t->buf, t->pos);
    }
    out[t->len] = '\0';
    *len = t->len;
    return out;
}

/* stdout cut into lines for the caller. */
typedef struct {
    char *buf;
    size_t len;
    bool overlong; /* the current line passed XP_PROC_LINE_MAX: skipped */
} s_lines;

static void s_lines_add(s_lines *l, const xp_proc_spec *spec, const char *p,
                        size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (!l->overlong) {
            if (l->len + k > XP_PROC_LINE_MAX) {
                l->overlong = true;
                l->len = 0;
            } else {
                if (!l->buf)
                    l->buf = bson_malloc(XP_PROC_LINE_MAX + 1);
                memcpy(l->buf + l->len, p, k);
                l->len += k;
            }
        }
        if (!nl)
            return;
        if (!l->overlong) {
            l->buf[l->len] = '\0';
            spec->on_line(spec->ctx, l->buf, l->len);
        }
        l->len = 0;
        l->overlong = false;
        p = nl + 1;
        n -= k + 1;
    }
}

static void s_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reads what fd has now; false once it is closed (EOF or error). */
static bool s_drain(int fd, s_tail *t, s_lines *lines, const xp_proc_spec *spec)
{
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r > 0) {
            s_tail_add(t, chunk, (size_t)r);
            if (lines)
                s_lines_add(lines, spec, chunk, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        return false;
    }
}

static int s_spawn(const xp_proc_spec *spec, int out_w, int err_w, pid_t *pid,
                   xp_error_t *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, defaults;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    if (spec->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, spec->cwd);
    /* Nothing of this process (store sockets, databases) leaks in. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigemptyset(&none);
    sigfillset(&defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                        POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    int rc =
        posix_spawnp(pid, spec->argv[0], &fa, &attr, spec->argv, spec->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP,
                         "cannot run '%.200s'%s%.200s: %s", spec->argv[0],
                         spec->cwd ? " in " : "", spec->cwd ? spec->cwd : "",
                         strerror(rc));
    return 0;
}

/* A pipe whose read end (returned in r) is non-blocking; both ends
 * close-on-exec (dup2 in the child clears it on the copy). */
static int s_pipe(int *r, int *w, xp_error_t *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "pipe: %s",
                         strerror(errno));
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    *r = fds[0];
    *w = fds[1];
    return 0;
}

/* True once pid has exited (left unreaped, so its pid, which is also its
 * group's id, cannot be reused while the group is killed). */
static bool s_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    /* ECHILD: SIGCHLD is ignored here, the kernel reaped it already. */
    return (rc == 0 && si.si_pid == pid) || (rc < 0 && errno == ECHILD);
}

typedef struct {
    const xp_proc_spec *spec;
    pid_t pid;
    int fds[3]; /* stdout, stderr, pidfd (or -1) */
    s_tail out, err;
    s_lines lines;
    bool exited;
    double t0, deadline, term_at, exit_at, next_tick;
    bool termed, killed;
} s_run;

/* Milliseconds poll may wait now. */
static int s_wait_ms(const s_run *r, double now)
{
    double until = now + (r->exited ? 0.05 : 0.5);
    if (r->spec->on_tick && r->next_tick < until)
        until = r->next_tick;
    if (!r->exited && r->deadline > 0) {
        double d = r->termed ? r->term_at + S_KILL_GRACE : r->deadline;
        if (d < until)
            until = d;
    }
    /* Without a pidfd, exit is noticed by looking: often at first. */
    if (!r->exited && r->fds[2] < 0) {
        double look = now + (now - r->t0 < 0.01 ? 0.001 : 0.02);
        if (look < until)
            until = look;
    }
    double ms = (until - now) * 1000.0;
    return ms <= 0 ? 0 : (int)(ms + 0.999);
}

/* The timeout: SIGTERM to the group, SIGKILL after the grace. */
static void s_enforce_timeout(s_run *r, double now)
{
    if (r->exited || r->deadline <= 0 || now < r->deadline)
        return;
    if (!r->termed) {
        kill(-r->pid, SIGTERM);
        r->termed = true;
        r->term_at = now;
    } else if (!r->killed && now >= r->term_at + S_KILL_GRACE) {
        kill(-r->pid, SIGKILL);
        r->killed = true;
    }
}

static void s_loop(s_run *r)
{
    const xp_proc_spec *spec = r->spec;
    for (;;) {
        double now = xp__monotonic();
        if (r->exited && (r->fds[0] < 0 && r->fds[1] < 0))
            break;
        if (r->exited && now - r->exit_at > S_DRAIN_MAX)
            break;
        struct pollfd p[3];
        int map[3], n = 0;
        for (int i = 0; i < 3; i++) {
            if (r->fds[i] < 0 || (i == 2 && r->exited))
                continue;
            p[n] = (struct pollfd){.fd = r->fds[i], .events = POLLIN};
            map[n++] = i;
        }
        int ready = poll(p, (nfds_t)n, s_wait_ms(r, now));
        for (int k = 0; ready > 0 && k < n; k++) {
            int i = map[k];
            if (!p[k].revents || i == 2)
                continue;
            bool open =
                s_drain(r->fds[i], i == 0 ? &r->out : &r->err,
                        i == 0 && spec->on_line ? &r->lines : NULL, spec);
            if (!open)
                s_close(&r->fds[i]);
        }
        now = xp__monotonic();
        if (!r->exited && s_exited(r->pid)) {
            r->exited = true;
            r->exit_at = now;
            /* What it left running goes with it (pipes then close). */
            kill(-r->pid, SIGKILL);
        }
        s_enforce_timeout(r, now);
        if (spec->on_tick && now >= r->next_tick) {
            spec->on_tick(spec->ctx, false);
            r->next_tick = now + S_TICK;
        }
    }
}

static void s_reap(s_run *r, xp_proc_result *res)
{
    int st = 0;
    pid_t got;
    while ((got = waitpid(r->pid, &st, 0)) < 0 && errno == EINTR)
        ;
    res->elapsed = xp__monotonic() - r->t0;
    res->timed_out = r->termed;
    res->lost = got < 0;
    if (res->lost)
        return;
    if (WIFEXITED(st)) {
        res->exited = true;
        res->status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        res->signal = WTERMSIG(st);
    }
}

int xp__proc_run(const xp_proc_spec *spec, xp_proc_result *res, xp_error_t *err)
{
    memset(res, 0, sizeof *res);
    s_run r = {.spec = spec, .fds = {-1, -1, -1}};
    int out_w = -1, err_w = -1, rc = -1;
    if (!spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "the command is empty");
    r.out.cap = r.err.cap = spec->tail_max;
    r.out.buf = bson_malloc(spec->tail_max + 1);
    r.err.buf = bson_malloc(spec->tail_max + 1);
    if (s_pipe(&r.fds[0], &out_w, err) != 0 ||
        s_pipe(&r.fds[1], &err_w, err) != 0)
        goto cleanup;
    r.t0 = xp__monotonic();
    if (s_spawn(spec, out_w, err_w, &r.pid, err) != 0)
        goto cleanup;
    s_close(&out_w);
    s_close(&err_w);
#ifdef SYS_pidfd_open
    r.fds[2] = (int)syscall(SYS_pidfd_open, r.pid, 0);
#endif
    if (r.fds[2] < 0)
        r.fds[2] = -1;
    r.deadline = spec->timeout > 0 ? r.t0 + spec->timeout : 0;
    r.next_tick = r.t0 + S_TICK;
    s_loop(&r);
    s_reap(&r, res);
    if (spec->on_tick)
        spec->on_tick(spec->ctx, true);
    res->out = s_tail_take(&r.out, &res->out_len);
    res->err = s_tail_take(&r.err, &res->err_len);
    res->out_total = r.out.total;
    res->err_total = r.err.total;
    rc = 0;
cleanup:
    for (int i = 0; i < 3; i++)
        s_close(&r.fds[i]);
    s_close(&out_w);
    s_close(&err_w);
    bson_free(r.out.buf);
    bson_free(r.err.buf);
    bson_free(r.lines.buf);
    return rc;
}

void xp__proc_result_clear(xp_proc_result *res)
{
    bson_free(res->out);
    bson_free(res->err);
    memset(res, 0, sizeof *res);
}

void xp__proc_describe(const xp_proc_result *res, double timeout, char *buf,
                       size_t size)
{
    if (res->timed_out)
        snprintf(buf, size, "timed out after %g s", timeout);
    else if (res->lost)
        snprintf(buf, size,
                 "its exit status was lost (this process ignores SIGCHLD)");
    else if (res->exited)
        snprintf(buf, size, "exit status %d", res->status);
    else
        snprintf(buf, size, "killed by signal %d (%s)", res->signal,
                 strsignal(res->signal));
}
