/* history.c — history queries: builds an experiment of N trials with 10
 * parameters (local: 1,000 and 100,000 by default; Redis and MongoDB when
 * XP_TEST_REDIS_URI / XP_TEST_MONGODB_URI are set, with fewer trials),
 * then prints the median time of whole xp_history and of 100-row pages
 * of xp_history_query with several filters, sorts and offsets: each page
 * on a fresh handle, its first query (the scan of the stored records)
 * and its second (which builds the handle's cache) apart from the median
 * of the next ones. */
#include <xp/xp.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS 7
#define PAGE 100

static double s_clock(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double s_now(void)
{
    return s_clock(CLOCK_MONOTONIC);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the experiment: 10 parameters, a result computed from 3 */

static int s_score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) * 0.5 + xp_as_double(in[1]) -
                                  (xp_as_bool(in[2]) ? 1 : 0));
}

static const char *const s_names[10] = {"p0", "p1", "p2", "p3", "p4",
                                        "p5", "p6", "p7", "p8", "p9"};

static void s_define(xp_experiment *ex)
{
    xp_node *p[10];
    for (int i = 0; i < 10; i++)
        p[i] = xp_parameter(ex, s_names[i]);
    xp_node *in[3] = {p[0], p[1], p[3]};
    xp_result(xp_step_add(ex, "score", s_score, 3, in, __FILE__, __LINE__));
}

/* Parameters of trial k: ints, doubles, a string of 1,000 values, a
 * bool. */
static xp_value *s_params(long k)
{
    xp_value *p = xp_value_new();
    char s[32];
    xp_set_document(p);
    xp_set_int64(xp_document_set(p, "p0"), k % 100);
    xp_set_double(xp_document_set(p, "p1"), (double)(k * 7919 % 10007) / 10);
    snprintf(s, sizeof s, "name-%04ld", k * 31 % 1000);
    xp_set_string(xp_document_set(p, "p2"), s);
    xp_set_bool(xp_document_set(p, "p3"), k % 3 == 0);
    for (int i = 4; i < 10; i++)
        if (i % 2)
            xp_set_double(xp_document_set(p, s_names[i]), k * 0.001 * i);
        else
            xp_set_int64(xp_document_set(p, s_names[i]), k * i);
    return p;
}

static int s_fill(xp_experiment *ex, long n)
{
    xp_error_t err;
    double t0 = s_now();
    for (long k = 1; k <= n; k++) {
        xp_value *params = s_params(k);
        xp_run_options o = XP_RUN_OPTIONS_INIT;
        o.params = params;
        int rc = xp_compute(ex, &o, NULL, NULL, &err);
        xp_value_destroy(&params);
        if (rc != 0) {
            fprintf(stderr, "history: trial %ld: %s\n", k, err.message);
            return -1;
        }
    }
    printf("  %ld trials recorded in %.1f s\n", n, s_now() - t0);
    return 0;
}

/* ---- measuring */

/* Seconds of one query (NULL q: whole xp_history) and CPU seconds of
 * this thread, which is what a shared machine disturbs least; -1 on
 * failure. */
static double s_once(xp_experiment *ex, const char *what, const xp_query *q,
                     double *cpu, size_t *rows, int64_t *matched)
{
    xp_value *v = NULL;
    xp_error_t err;
    double t0 = s_now(), c0 = s_clock(CLOCK_THREAD_CPUTIME_ID);
    int rc = q ? xp_history_query(ex, q, &v, matched, &err)
               : xp_history(ex, &v, &err);
    double t = s_now() - t0;
    *cpu = s_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (rc != 0) {
        fprintf(stderr, "history: %s: %s\n", what, err.message);
        return -1;
    }
    *rows = xp_value_count(v);
    xp_value_destroy(&v);
    return t;
}

/* Median, min and max of RUNS runs on ex (wall and CPU median). */
static int s_runs(xp_experiment *ex, const char *what, const xp_query *q,
                  double *t, double *cpu, size_t *rows, int64_t *matched)
{
    for (int r = 0; r < RUNS; r++)
        if ((t[r] = s_once(ex, what, q, &cpu[r], rows, matched)) < 0)
            return -1;
    qsort(t, RUNS, sizeof *t, s_cmp_double);
    qsort(cpu, RUNS, sizeof *cpu, s_cmp_double);
    return 0;
}

/* The whole history, RUNS times on ex. */
static int s_time_whole(xp_experiment *ex, const char *what)
{
    double t[RUNS], cpu[RUNS];
    size_t rows = 0;
    int64_t matched = 0;
    if (s_runs(ex, what, NULL, t, cpu, &rows, &matched) != 0)
        return -1;
    printf("  %-46s %9.2f ms  (%.2f - %.2f)  cpu %.2f ms  %zu rows\n", what,
           t[RUNS / 2] * 1e3, t[0] * 1e3, t[RUNS - 1] * 1e3,
           cpu[RUNS / 2] * 1e3, rows);
    fflush(stdout);
    return 0;
}

/* A handle of its own for each page: its first query (a one-shot
 * `xp history --filter`: the scan of the stored records), its second
 * (which also builds the handle's cache), then RUNS on the cache. */
static int s_time_page(xp_experiment *(*open)(void *), void *ctx,
                       const char *what, const xp_query *q)
{
    double t[RUNS], cpu[RUNS], first_cpu, second_cpu;
    size_t rows = 0;
    int64_t matched = 0;
    xp_experiment *ex = open(ctx);
    if (!ex)
        return -1;
    double first = s_once(ex, what, q, &first_cpu, &rows, &matched);
    double second =
        first < 0 ? -1 : s_once(ex, what, q, &second_cpu, &rows, &matched);
    int rc = second < 0 ? -1 : s_runs(ex, what, q, t, cpu, &rows, &matched);
    xp_experiment_destroy(&ex);
    if (rc != 0)
        return -1;
    printf("  %-46s first %6.2f (cpu %6.2f)  second %6.2f (cpu %6.2f)  "
           "then %6.2f ms (%.2f - %.2f, cpu %.2f)  %zu rows of %lld\n",
           what, first * 1e3, first_cpu * 1e3, second * 1e3, second_cpu * 1e3,
           t[RUNS / 2] * 1e3, t[0] * 1e3, t[RUNS - 1] * 1e3,
           cpu[RUNS / 2] * 1e3, rows, (long long)matched);
    fflush(stdout);
    return 0;
}

/* --only TEXT: the measurements whose label holds TEXT alone. */
static const char *s_only;

static int s_queries(xp_experiment *ex, xp_experiment *(*open)(void *),
                     void *ctx, long n)
{
    static const struct {
        const char *what, *filter, *sort;
        bool middle; /* offset n / 2 */
    } pages[] = {
        {"page: no filter, trial id order", NULL, NULL, false},
        {"page: p0 < 50 and p3 == true, sort -result", "p0 < 50 and p3 == true",
         "-result", false},
        {"page: sort by string p2", NULL, "p2", false},
        {"page: offset n/2, trial id order", NULL, NULL, true},
        {"page: offset n/2, sort -p1", NULL, "-p1", true},
        {"page: p0 < 50 and p3 == true, trial id order",
         "p0 < 50 and p3 == true", NULL, false},
        {"page: status == 'succeeded', sort p2,-p1", "status == 'succeeded'",
         "p2,-p1", false},
    };
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        if (s_only && !strstr(pages[i].what, s_only))
            continue;
        xp_query q = XP_QUERY_INIT;
        q.filter = pages[i].filter;
        q.sort = pages[i].sort;
        q.limit = PAGE;
        q.offset = pages[i].middle ? n / 2 : 0;
        if (s_time_page(open, ctx, pages[i].what, &q) != 0)
            return -1;
    }
    /* last: freeing 100,000 documents leaves glibc's heap to consolidate
     * on the next large allocation, which would be billed to a page */
    return s_only && !strstr("whole xp_history", s_only)
               ? 0
               : s_time_whole(ex, "whole xp_history");
}

static int s_remove_entry(const char *path, const struct stat *sb, int flag,
                          struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* --store DIR: the local store is kept there, and reused when it holds
 * the experiment already (for profiling). */
static const char *s_keep;

typedef struct {
    const char *id;
    const xp_open_options *o;
} s_open_ctx;

/* A fresh read-only handle, NULL on failure. */
static xp_experiment *s_open_fresh(void *user)
{
    s_open_ctx *c = user;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, c->id, c->o, &err) != 0) {
        fprintf(stderr, "history: %s\n", err.message);
        return NULL;
    }
    s_define(ex);
    return ex;
}

/* One backend (NULL: a fresh local store in a temporary directory). */
static int s_run(const char *label, const char *backend, long n)
{
    char dir[4096] = "", spec[4200], id[64];
    if (!backend && s_keep) {
        backend = s_keep;
    } else if (!backend) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/xp-bench-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("history: mkdtemp");
            return -1;
        }
        snprintf(spec, sizeof spec, "%s/store", dir);
        backend = spec;
    }
    /* A shared server's experiment is kept and reused, as a kept
     * store's: one of a pid of its own each run would grow the server
     * by the whole history every time (~90 MB for 100,000 on Redis). */
    if (backend == s_keep || !dir[0])
        snprintf(id, sizeof id, "bench_history_%ld", n);
    else
        snprintf(id, sizeof id, "bench_history_%d_%ld", (int)getpid(), n);
    printf("%s, %ld trials:\n", label, n);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    xp_experiment *ex = NULL;
    xp_error_t err;
    int rc = -1;
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "history: %s\n", err.message);
        goto cleanup;
    }
    s_define(ex);
    int64_t last = 0;
    xp_last_trial_id(ex, &last, &err);
    if (last != 0 && last != n) {
        fprintf(stderr,
                "history: experiment %s on %s holds %lld trials, not %ld "
                "(left by a run cut short?): remove it\n",
                id, backend, (long long)last, n);
        goto cleanup;
    }
    if (last != n && s_fill(ex, n) != 0)
        goto cleanup;
    /* Queried as the dashboard does: a read-only handle on a store at
     * rest (the writer's close checkpointed its WAL). */
    xp_experiment_destroy(&ex);
    o.read_only = true;
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "history: %s\n", err.message);
        goto cleanup;
    }
    s_open_ctx ctx = {id, &o};
    rc = s_queries(ex, s_open_fresh, &ctx, n);
cleanup:
    xp_experiment_destroy(&ex);
    if (dir[0])
        nftw(dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static long s_positive(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v > 0) ? v : -1;
}

int main(int argc, char **argv)
{
    long local[2] = {1000, 100000}, redis_n = 20000, mongo_n = 2000;
    size_t nlocal = 2;
    for (int i = 1; i < argc; i++) {
        long *target = NULL;
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            s_keep = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            s_only = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--n") == 0)
            target = &local[0];
        else if (strcmp(argv[i], "--redis-n") == 0)
            target = &redis_n;
        else if (strcmp(argv[i], "--mongo-n") == 0)
            target = &mongo_n;
        if (!target || i + 1 == argc || (*target = s_positive(argv[++i])) < 0) {
            fputs("usage: history [--n N] [--redis-n N] [--mongo-n N] "
                  "[--store DIR] [--only TEXT]\n"
                  "Times xp_history and 100-row xp_history_query pages on\n"
                  "a local experiment of N trials (default 1000 and\n"
                  "100000), and on XP_TEST_REDIS_URI / XP_TEST_MONGODB_URI\n"
                  "when set (default 20000 and 2000 trials). --store keeps\n"
                  "the local store in DIR and reuses it; --only times the\n"
                  "measurements whose label holds TEXT.\n",
                  stderr);
            return 2;
        }
        if (target == &local[0])
            nlocal = 1;
    }
    xp_log_set_level(XP_LOG_ERROR);
    int rc = 0;
    for (size_t i = 0; i < nlocal && rc == 0; i++)
        rc = s_run("local", NULL, local[i]);
    const char *redis = getenv("XP_TEST_REDIS_URI");
    const char *mongo = getenv("XP_TEST_MONGODB_URI");
    if (rc == 0 && redis && *redis)
        rc = s_run("redis", redis, redis_n);
    if (rc == 0 && mongo && *mongo)
        rc =
            s_run("mongodb (test server: mongomock in Python)", mongo, mongo_n);
    return rc == 0 ? 0 : 1;
}
