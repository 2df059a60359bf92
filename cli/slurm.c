/* slurm.c — `xp slurm`: xp-workers as a Slurm array job. script prints
 * the job script libxp writes, submit hands it to `sbatch --parsable`,
 * status and cancel run squeue and scancel. Public API only; the options
 * are libxp's table (xp_slurm_job_load), shared with a configuration
 * file. */
#include "slurm.h"

#include <xp/xp.h>

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_USAGE                                                                \
    "usage: xp slurm script|submit [OPTIONS]\n"                                \
    "       xp slurm status|cancel [JOBID...] [OPTIONS]\n"                     \
    "       xp slurm --help (the options)\n"

/* The exit status of a child, 1 when it did not exit by itself. */
static int s_exit_status(int wstatus)
{
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
}

/* Runs argv[0] from PATH and waits; its exit status, or 127. */
static int s_run(char *const *argv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "xp slurm: cannot start %s: %s\n", argv[0],
                strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "xp slurm: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    int wstatus;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    return s_exit_status(wstatus);
}

/* ------------------------------------------------------------ submit */

/* Writes script to the child's stdin and reads its stdout into out (NUL
 * ended, at most size - 1 bytes). */
static int s_pipe_through(char *const *argv, const char *script, char *out,
                          size_t size)
{
    int in[2], res[2];
    if (pipe(in) != 0 || pipe(res) != 0) {
        fprintf(stderr, "xp slurm: pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(res[1], STDOUT_FILENO);
        close(in[0]);
        close(in[1]);
        close(res[0]);
        close(res[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "xp slurm: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(res[1]);
    /* a script is a few kB: the pipe takes it whole */
    size_t len = strlen(script), done = 0;
    while (pid > 0 && done < len) {
        ssize_t n = write(in[1], script + done, len - done);
        if (n <= 0 && errno != EINTR)
            break;
        done += n > 0 ? (size_t)n : 0;
    }
    close(in[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(res[0], out + got, size - 1 - got)) > 0 ||
           (n < 0 && errno == EINTR))
        got += n > 0 ? (size_t)n : 0;
    out[got] = '\0';
    close(res[0]);
    if (pid < 0) {
        fprintf(stderr, "xp slurm: cannot start %s: %s\n", argv[0],
                strerror(errno));
        return 1;
    }
    int wstatus;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    return s_exit_status(wstatus);
}

static int s_submit(const char *script)
{
    char *argv[] = {"sbatch", "--parsable", NULL};
    char out[256];
    int rc = s_pipe_through(argv, script, out, sizeof out);
    /* --parsable: "JOBID" or "JOBID;CLUSTER" */
    out[strcspn(out, ";\r\n")] = '\0';
    if (rc != 0 || !*out || strspn(out, "0123456789") != strlen(out)) {
        fprintf(stderr,
                "xp slurm: sbatch did not submit the job (status %d%s%s)\n", rc,
                *out ? ", said: " : "", out);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}

/* ------------------------------------------------------------ queue */

/* A job id as squeue and scancel take it: 1234 or 1234_5. */
static bool s_is_job_id(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0)
        return false;
    if (s[n] == '_')
        return s[n + 1] && strspn(s + n + 1, "0123456789") == strlen(s + n + 1);
    return s[n] == '\0';
}

static const char *s_user(void)
{
    struct passwd *pw = getpwuid(getuid());
    const char *name = pw ? pw->pw_name : getenv("USER");
    return name ? name : "root";
}

/* squeue or scancel on ids[0..n), else on the jobs named name of this
 * user. */
static int s_queue(bool cancel, char **ids, int n, const char *name)
{
    char **argv = calloc((size_t)n + 8, sizeof *argv);
    char jobs[4096] = "", by_name[512], by_user[512];
    int k = 0;
    if (!argv)
        return 1;
    argv[k++] = cancel ? "scancel" : "squeue";
    if (!cancel) {
        argv[k++] = "--array";
        argv[k++] = "--format=%.18i %.9T %.10M %.10l %.12j %R";
    }
    if (n > 0 && cancel) {
        for (int i = 0; i < n; i++)
            argv[k++] = ids[i];
    } else if (n > 0) {
        for (int i = 0; i < n; i++)
            snprintf(jobs + strlen(jobs), sizeof jobs - strlen(jobs), "%s%s",
                     i ? "," : "", ids[i]);
        argv[k++] = "--jobs";
        argv[k++] = jobs;
    } else {
        snprintf(by_name, sizeof by_name, "--name=%s", name);
        snprintf(by_user, sizeof by_user, "--user=%s", s_user());
        argv[k++] = by_name;
        argv[k++] = by_user;
    }
    int rc = s_run(argv);
    free(argv);
    return rc;
}

/* ------------------------------------------------------------ command */

int xp__cli_slurm(int argc, char **argv)
{
    if (argc < 2) {
        fputs(S_USAGE, stderr);
        return 2;
    }
    const char *verb = argv[1];
    bool help = strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0;
    bool script = strcmp(verb, "script") == 0;
    bool submit = strcmp(verb, "submit") == 0;
    bool status = strcmp(verb, "status") == 0;
    bool cancel = strcmp(verb, "cancel") == 0;
    if (!help && !script && !submit && !status && !cancel) {
        fprintf(stderr, "xp slurm: unknown subcommand '%s'\n" S_USAGE, verb);
        return 2;
    }
    /* status and cancel: job ids first, then options */
    int first = help ? 1 : 2, n_ids = 0;
    while ((status || cancel) && first + n_ids < argc &&
           argv[first + n_ids][0] != '-') {
        if (!s_is_job_id(argv[first + n_ids])) {
            fprintf(stderr, "xp slurm: '%s' is not a job id (1234 or 1234_5)\n",
                    argv[first + n_ids]);
            return 2;
        }
        n_ids++;
    }
    /* the loader reads argv[1..]: the verb (or program) stays argv[0] */
    int skip = first + n_ids - 1, rc = 0;
    xp_slurm_job *job = NULL;
    if (xp_slurm_job_load(&job, argc - skip, argv + skip, &rc) != 0)
        return rc;
    rc = 0;
    if (status || cancel) {
        rc = s_queue(cancel, argv + first, n_ids, xp_slurm_job_name(job));
    } else {
        char *text = NULL;
        xp_error_t err;
        if (xp_slurm_job_script(job, &text, &err) != 0) {
            fprintf(stderr, "xp slurm: %s\n", err.message);
            rc = 2;
        } else if (script) {
            fputs(text, stdout);
        } else {
            rc = s_submit(text);
        }
        xp_free(text);
    }
    xp_slurm_job_destroy(&job);
    return rc;
}
