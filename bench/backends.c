/* backends.c — backend figures: metric points per second saved from one
 * step, and the time to read back the history of N trials, on the backend
 * given with --backend (a directory, redis://…, mongodb://…). */
#include <xp/xp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long s_points = 2000000;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int log_points(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    for (long i = 0; i < s_points; i++)
        if (xp_save_metric(st, "loss", i, 1.0 / (double)(i + 1)) != 0)
            return xp_step_fail(st, "cannot save metric");
    return xp_set_int64(out, s_points);
}

static int trivial(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

static xp_experiment *s_open(const char *id, const char *backend)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "backends: %s\n", err.message);
        exit(1);
    }
    return ex;
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    long trials = 100000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--points") == 0 && i + 1 < argc)
            s_points = atol(argv[++i]);
        else if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc)
            trials = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: backends [--backend B] [--points N] "
                            "[--trials N]\n");
            return 2;
        }
    }
    char tmp[] = "/tmp/xp-bench-XXXXXX";
    if (!backend)
        backend = mkdtemp(tmp);
    xp_log_set_level(XP_LOG_WARNING);
    char id[64];
    xp_error_t err;

    /* Metric logging from one step. */
    snprintf(id, sizeof id, "bench_metric_%ld", (long)getpid());
    xp_experiment *ex = s_open(id, backend);
    XP_RESULT(ex, log_points, xp_parameter_literal(ex, "unused", "0"));
    double t0 = s_now();
    if (xp_compute(ex, NULL, NULL, NULL, &err) != 0) {
        fprintf(stderr, "backends: %s\n", err.message);
        return 1;
    }
    double dt = s_now() - t0;
    printf("metric: %ld points in %.3f s = %.0f points/s\n", s_points, dt,
           (double)s_points / dt);
    int64_t one = 1;
    xp_metric_table *t = NULL;
    t0 = s_now();
    if (xp_load_metric(ex, "loss", &one, 1, &t, &err) != 0) {
        fprintf(stderr, "backends: %s\n", err.message);
        return 1;
    }
    printf("metric read back: %zu points in %.3f s\n",
           xp_metric_table_epochs(t), s_now() - t0);
    xp_metric_table_destroy(&t);
    xp_experiment_destroy(&ex);

    /* History of many trials. */
    snprintf(id, sizeof id, "bench_history_%ld", (long)getpid());
    ex = s_open(id, backend);
    XP_RESULT(ex, trivial, xp_parameter(ex, "a"));
    t0 = s_now();
    for (long i = 0; i < trials; i++) {
        xp_set_param_int64(ex, "a", i, NULL);
        if (xp_compute(ex, NULL, NULL, NULL, &err) != 0) {
            fprintf(stderr, "backends: %s\n", err.message);
            return 1;
        }
    }
    dt = s_now() - t0;
    printf("trials: %ld in %.3f s = %.0f trials/s\n", trials, dt,
           (double)trials / dt);
    xp_experiment_destroy(&ex);
    t0 = s_now();
    ex = s_open(id, backend);
    xp_value *h = NULL;
    if (xp_history(ex, &h, &err) != 0) {
        fprintf(stderr, "backends: %s\n", err.message);
        return 1;
    }
    printf("history: %zu trials read (open + xp_history) in %.3f s\n",
           xp_value_count(h), s_now() - t0);
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
    if (backend == tmp) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "backends: could not remove %s\n", tmp);
    }
    return 0;
}
