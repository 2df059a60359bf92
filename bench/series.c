/* series.c — metric series figures: one trial saving a metric of N points
 * (1,000,000 by default), then the median time of xp_metric_series over
 * every point and cut down to 2,000 points, and of xp_metric_names, on
 * the local store (a temporary directory) and, when XP_TEST_REDIS_URI is
 * set (or --backend names one), on that backend too. */
#include <xp/xp.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS 7

static long s_points = 1000000;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_die(const char *what, const xp_error_t *err)
{
    fprintf(stderr, "series: %s: %s\n", what, err->message);
    exit(1);
}

/* A noisy decreasing loss with one spike, as a chart would show it. */
static int log_points(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    for (long i = 0; i < s_points; i++) {
        double v = 1.0 / (1.0 + (double)i * 1e-4) + 0.01 * sin((double)i);
        if (i == s_points / 3)
            v = 100;
        if (xp_save_metric(st, "loss", i, v) != 0)
            return xp_step_fail(st, "cannot save metric");
    }
    return xp_set_int64(out, s_points);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, s_cmp_double);
    return t[n / 2];
}

/* Median seconds of RUNS reads of the series under max_points. */
static double s_time_series(xp_experiment *ex, int64_t trial, size_t max_points,
                            size_t *n)
{
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        xp_series *s = NULL;
        xp_error_t err;
        double t0 = s_now();
        if (xp_metric_series(ex, "loss", trial, INT64_MIN, INT64_MAX,
                             max_points, &s, &err) != 0)
            s_die("xp_metric_series", &err);
        t[r] = s_now() - t0;
        *n = s->n;
        xp_series_destroy(&s);
    }
    return s_median(t, RUNS);
}

static double s_time_names(xp_experiment *ex, int64_t trial)
{
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        xp_value *names = NULL;
        xp_error_t err;
        double t0 = s_now();
        if (xp_metric_names(ex, trial, &names, &err) != 0)
            s_die("xp_metric_names", &err);
        t[r] = s_now() - t0;
        xp_value_destroy(&names);
    }
    return s_median(t, RUNS);
}

static void s_bench(const char *label, const char *backend)
{
    char id[64];
    snprintf(id, sizeof id, "bench_series_%ld", (long)getpid());
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, id, &o, &err) != 0)
        s_die("open", &err);
    XP_RESULT(ex, log_points, xp_parameter_literal(ex, "unused", "0"));
    int64_t trial = 0;
    if (xp_compute(ex, NULL, NULL, &trial, &err) != 0)
        s_die("compute", &err);
    xp_experiment_destroy(&ex);
    o.read_only = true; /* as a dashboard opens it */
    if (xp_experiment_open(&ex, id, &o, &err) != 0)
        s_die("reopen", &err);
    size_t n_full = 0, n_down = 0;
    double full = s_time_series(ex, trial, 0, &n_full);
    double down = s_time_series(ex, trial, 2000, &n_down);
    double names = s_time_names(ex, trial);
    printf("%s: %ld points: full %.1f ms (%zu points), max_points 2000 "
           "%.1f ms (%zu points), metric names %.3f ms (medians of %d)\n",
           label, s_points, full * 1e3, n_full, down * 1e3, n_down, names * 1e3,
           RUNS);
    xp_experiment_destroy(&ex);
}

int main(int argc, char **argv)
{
    const char *backend = getenv("XP_TEST_REDIS_URI");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--points") == 0 && i + 1 < argc)
            s_points = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: series [--backend URI] [--points N]\n");
            return 2;
        }
    }
    xp_log_set_level(XP_LOG_WARNING);
    char tmp[] = "/tmp/xp-bench-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("series: mkdtemp");
        return 1;
    }
    s_bench("local", tmp);
    if (backend && *backend)
        s_bench(backend, backend);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "series: could not remove %s\n", tmp);
    return 0;
}
