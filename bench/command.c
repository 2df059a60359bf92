/* command.c — what a command step costs beyond the program it runs: the
 * bare spawn and wait of /bin/true (the program itself, as the OS runs
 * it), a one-step trial whose step is a C no-op (the trial's recording),
 * and a one-step trial whose step is the command `true` (spawn through
 * xp's process group, pipes, scratch directory, environment, log, record).
 * Prints the median per trial of several rounds, and the difference. */
#include <xp/xp.h>

#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ROUNDS 5

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_rm(const char *p, const struct stat *sb, int f, struct FTW *w)
{
    (void)sb;
    (void)f;
    (void)w;
    return remove(p);
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v)
{
    qsort(v, ROUNDS, sizeof *v, s_cmp);
    return v[ROUNDS / 2];
}

/* Seconds per bare posix_spawn + waitpid of /bin/true. */
static double s_bare(int n)
{
    char *argv[] = {"/bin/true", NULL};
    double t0 = s_now();
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int st;
        if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
            perror("posix_spawn");
            exit(1);
        }
        waitpid(pid, &st, 0);
    }
    return (s_now() - t0) / n;
}

static int noop(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 0);
}

/* Seconds per trial of ex. */
static double s_trials(xp_experiment *ex, int n)
{
    xp_error_t err;
    double t0 = s_now();
    for (int i = 0; i < n; i++)
        if (xp_compute(ex, NULL, NULL, NULL, &err) != 0) {
            fprintf(stderr, "bench/command: %s\n", err.message);
            exit(1);
        }
    return (s_now() - t0) / n;
}

static xp_experiment *s_open(const char *dir, const char *id)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = dir;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "bench/command: %s\n", err.message);
        exit(1);
    }
    return ex;
}

int main(int argc, char **argv)
{
    int n = argc > 2 && strcmp(argv[1], "--n") == 0 ? atoi(argv[2]) : 500;
    if (n <= 0)
        n = 500;
    char dir[] = "/tmp/xp-bench-command-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/true.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("experiment: bench_command\nsteps:\n  t:\n    run: [/bin/true]\n"
          "    output: none\n",
          f);
    fclose(f);
    xp_log_set_level(XP_LOG_OFF);

    xp_error_t err;
    xp_definition *d = NULL;
    if (xp_definition_load(&d, path, &err) != 0) {
        fprintf(stderr, "bench/command: %s\n", err.message);
        return 1;
    }
    xp_experiment *cmd = s_open(dir, "bench_command");
    xp_result(xp_definition_apply(d, cmd));
    xp_experiment *c = s_open(dir, "bench_c_noop");
    xp_result(xp_step_add(c, "noop", noop, 0, NULL, NULL, 0));
    /* Warm up: the first trial stores code and environment. */
    s_trials(cmd, 3);
    s_trials(c, 3);

    double bare[ROUNDS], noop_trial[ROUNDS], command[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        bare[r] = s_bare(n);
        noop_trial[r] = s_trials(c, n);
        command[r] = s_trials(cmd, n);
    }
    double b = s_median(bare), t = s_median(noop_trial), k = s_median(command);
    printf("command step cost, median of %d rounds of %d (local backend)\n",
           ROUNDS, n);
    printf("  bare spawn+wait of /bin/true      %8.3f ms\n", b * 1e3);
    printf("  trial, one C no-op step           %8.3f ms\n", t * 1e3);
    printf("  trial, one command step (true)    %8.3f ms  (range %.3f-%.3f)\n",
           k * 1e3, command[0] * 1e3, command[ROUNDS - 1] * 1e3);
    printf("  beyond the program (trial - bare) %8.3f ms\n", (k - b) * 1e3);
    printf("  command machinery (- C trial)     %8.3f ms\n", (k - b - t) * 1e3);
    xp_experiment_destroy(&cmd);
    xp_experiment_destroy(&c);
    xp_definition_destroy(&d);
    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
