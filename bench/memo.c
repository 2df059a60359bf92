/* memo.c — memoised pure steps: a sweep of 100 trials of 10 pure steps of
 * ~2 ms each, where 9 of the 10 steps read only a constant parameter (so
 * 90% of step executions are memo hits once the first trial ran), with
 * reuse and with --no-memo (XP_MEMO_OFF), on the local store and, when
 * given, Redis and MongoDB. One step thread, so steps cost what they
 * take. Prints the median of 3 runs of each.
 *
 *   build/bench/memo [--trials N] [--step-ms MS] [--redis URI]
 *                    [--mongodb URI]
 */
#include <xp/xp.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEPS 10
#define RUNS 3

static double s_step_s = 0.002; /* what a pure step takes */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* s_step_s of work (2 ms by default): a small real step. */
static int work(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    double end = s_now() + s_step_s, x = xp_as_double(in[0]);
    while (s_now() < end)
        x = x * 1.0000001 + 1e-9;
    return xp_set_double(out, x);
}

static int total(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    double s = 0;
    for (int i = 0; i < STEPS; i++)
        s += xp_as_double(in[i]);
    return xp_set_double(out, s);
}

static int s_rm(const char *path, const struct stat *sb, int flag,
                struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Seconds for n trials (i = 0..n-1) of a fresh experiment in mode. */
static double s_sweep(const char *backend, const char *id, int n,
                      xp_memo_mode mode)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "memo: open %s: %s\n", backend, err.message);
        exit(1);
    }
    xp_node *c = xp_parameter(ex, "c");
    xp_node *i = xp_parameter(ex, "i");
    xp_node *steps[STEPS];
    for (int k = 0; k < STEPS; k++)
        steps[k] = xp_pure(
            xp_step_add(ex, "work", work, 1, k == 0 ? &i : &c, __FILE__, 0));
    xp_result(xp_step_add(ex, "total", total, STEPS, steps, __FILE__, 0));
    if (xp_experiment_check(ex, &err) != 0) {
        fprintf(stderr, "memo: %s\n", err.message);
        exit(1);
    }
    xp_value *p = xp_value_new();
    double t0 = s_now();
    for (int k = 0; k < n; k++) {
        xp_set_document(p);
        xp_set_double(xp_document_set(p, "c"), 1.5);
        xp_set_double(xp_document_set(p, "i"), k);
        xp_run_options r = XP_RUN_OPTIONS_INIT;
        r.params = p;
        r.memo = mode;
        if (xp_compute(ex, &r, NULL, NULL, &err) != 0) {
            fprintf(stderr, "memo: trial: %s\n", err.message);
            exit(1);
        }
    }
    double dt = s_now() - t0;
    xp_value_destroy(&p);
    xp_experiment_destroy(&ex);
    return dt;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void s_bench(const char *name, const char *backend, int n)
{
    static int seq;
    double t[2][RUNS];
    for (int r = 0; r < RUNS; r++)
        for (int m = 0; m < 2; m++) {
            char id[64];
            snprintf(id, sizeof id, "bench_memo_%d_%d", (int)getpid(), seq++);
            t[m][r] = s_sweep(backend, id, n, m ? XP_MEMO_OFF : XP_MEMO_USE);
        }
    qsort(t[0], RUNS, sizeof(double), s_cmp);
    qsort(t[1], RUNS, sizeof(double), s_cmp);
    double use = t[0][RUNS / 2], off = t[1][RUNS / 2];
    printf("%-8s %4d trials x %d pure steps of %g ms: reuse %7.1f ms "
           "(%5.2f ms/trial)  --no-memo %7.1f ms (%5.2f ms/trial)  "
           "speed-up %.1fx\n",
           name, n, STEPS, s_step_s * 1e3, use * 1e3, use * 1e3 / n, off * 1e3,
           off * 1e3 / n, off / use);
}

int main(int argc, char **argv)
{
    int n = 100;
    const char *redis = NULL, *mongo = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--step-ms") == 0 && i + 1 < argc)
            s_step_s = atof(argv[++i]) / 1e3;
        else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
            redis = argv[++i];
        else if (strcmp(argv[i], "--mongodb") == 0 && i + 1 < argc)
            mongo = argv[++i];
        else {
            fprintf(stderr, "usage: memo [--trials N] [--step-ms MS] "
                            "[--redis URI] [--mongodb URI]\n");
            return 2;
        }
    }
    if (n < 1)
        n = 100;
    xp_log_set_level(XP_LOG_ERROR);
    char dir[] = "/tmp/xp-bench-memo-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("median of %d runs; 90%% of step executions are memo hits with "
           "reuse; one step thread\n",
           RUNS);
    s_bench("local", dir, n);
    if (redis)
        s_bench("redis", redis, n);
    if (mongo)
        s_bench("mongodb", mongo, n);
    nftw(dir, s_rm, 32, FTW_DEPTH | FTW_PHYS);
    return 0;
}
