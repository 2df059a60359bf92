/* trials.c — trial throughput on the local backend: runs the quickstart
 * graph N times in one process (N = 1,000, 10,000, 100,000 by default) and
 * prints trials/s overall and over the last 1,000 trials, then peak RSS. */
#include <xp/xp.h>

#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TAIL 1000 /* trials in the "last trials" rate */

static bool s_with_metric; /* --metric: save dummy_score over 100 epochs */

/* ---- the quickstart graph (examples/quickstart.c) */

static int prepare_data(xp_step *st, const xp_value *const *in, xp_value *out)
{
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]));
}

static int calculate_score(xp_step *st, const xp_value *const *in,
                           xp_value *out)
{
    double s = xp_as_double(in[0]);
    if (s == 0)
        return xp_step_fail(st, "division by zero");
    for (int epoch = 0; s_with_metric && epoch < 100; epoch++)
        if (xp_save_metric(st, "dummy_score", epoch,
                           100 - xp_random(st) * epoch) != 0)
            return xp_step_fail(st, "cannot save metric dummy_score");
    return xp_set_double(out, 10 / s);
}

static int s_define(xp_experiment *ex, xp_error_t *err)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *d = XP_PERSIST(ex, prepare_data, a, b);
    XP_RESULT(ex, calculate_score, d);
    if (xp_experiment_check(ex, err) != 0)
        return -1;
    if (xp_set_param_int64(ex, "a", 1, err) != 0 ||
        xp_set_param_int64(ex, "b", 2, err) != 0)
        return -1;
    return 0;
}

/* ---- one run of N trials over T threads */

struct run {
    xp_experiment *ex;
    long n;
    atomic_long next; /* next trial index to claim */
    atomic_long done; /* trials finished */
    atomic_bool failed;
    double tail_start;    /* time when done reached n - TAIL */
    pthread_mutex_t lock; /* guards err */
    xp_error_t err;
};

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *s_worker(void *arg)
{
    struct run *r = arg;
    xp_error_t err;
    while (!atomic_load(&r->failed) && atomic_fetch_add(&r->next, 1) < r->n) {
        if (xp_compute(r->ex, NULL, NULL, NULL, &err) != 0) {
            pthread_mutex_lock(&r->lock);
            if (!atomic_exchange(&r->failed, true))
                r->err = err;
            pthread_mutex_unlock(&r->lock);
            break;
        }
        if (atomic_fetch_add(&r->done, 1) + 1 == r->n - TAIL)
            r->tail_start = s_now();
    }
    return NULL;
}

static int s_remove_entry(const char *path, const struct stat *sb, int flag,
                          struct FTW *ftw)
{
    return remove(path);
}

/* Runs n trials on a fresh experiment in a temporary directory and prints
 * one line. */
static int s_run(long n, int threads)
{
    char dir[4096], backend[4200];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/xp-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("trials: mkdtemp");
        return -1;
    }
    snprintf(backend, sizeof backend, "%s/store", dir);

    struct run r = {.n = n, .tail_start = 0};
    pthread_mutex_init(&r.lock, NULL);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = backend;
    int rc = -1, started = 0;
    if (!tids) {
        fputs("trials: out of memory\n", stderr);
        goto cleanup;
    }
    if (xp_experiment_open(&r.ex, "bench_trials", &opts, &r.err) != 0 ||
        s_define(r.ex, &r.err) != 0) {
        fprintf(stderr, "trials: %s\n", r.err.message);
        goto cleanup;
    }

    double t0 = s_now();
    r.tail_start = t0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, s_worker, &r) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    double t1 = s_now();
    if (atomic_load(&r.failed)) {
        fprintf(stderr, "trials: %s\n", r.err.message);
        goto cleanup;
    }
    if (started == 0) {
        fputs("trials: cannot start threads\n", stderr);
        goto cleanup;
    }
    double secs = t1 - t0, tail = t1 - r.tail_start;
    long tail_n = n < TAIL ? n : TAIL;
    printf("%10ld  %10.3f  %12.1f  %14.1f\n", n, secs, (double)n / secs,
           (double)tail_n / tail);
    fflush(stdout);
    rc = 0;
cleanup:
    xp_experiment_destroy(&r.ex);
    free(tids);
    pthread_mutex_destroy(&r.lock);
    nftw(dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static void s_usage(FILE *f)
{
    fputs("usage: trials [--n N] [--threads T] [--metric]\n"
          "Runs the quickstart graph N times (default 1000, 10000, 100000)\n"
          "on a fresh local-backend experiment, from T threads (default 1).\n",
          f);
}

/* Positive integer option value, else -1. */
static long s_positive(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v > 0) ? v : -1;
}

int main(int argc, char **argv)
{
    long sizes[] = {1000, 10000, 100000};
    size_t nsizes = sizeof sizes / sizeof sizes[0];
    long threads = 1;
    for (int i = 1; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (strcmp(argv[i], "--metric") == 0) {
            s_with_metric = true;
        } else if (strcmp(argv[i], "--n") == 0 && has_value) {
            sizes[0] = s_positive(argv[++i]);
            nsizes = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && has_value) {
            threads = s_positive(argv[++i]);
        } else if (strcmp(argv[i], "--help") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "trials: bad argument '%s'\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
        if (sizes[0] < 0 || threads < 0 || threads > 1024) {
            fprintf(stderr, "trials: '%s' is not a valid count\n", argv[i]);
            return 2;
        }
    }
    xp_log_set_level(XP_LOG_OFF);

    printf("quickstart graph (persisted prepare_data, %s), local backend, "
           "%ld thread%s\n",
           s_with_metric ? "100-epoch metric" : "no metric", threads,
           threads == 1 ? "" : "s");
    printf("%10s  %10s  %12s  %14s\n", "trials", "seconds", "trials/s",
           "last 1000/s");
    for (size_t i = 0; i < nsizes; i++)
        if (s_run(sizes[i], (int)threads) != 0)
            return 1;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
