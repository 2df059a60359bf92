/* storage.c — bytes on disk of the local store: runs the quickstart graph
 * N times (1,000, 10,000, 100,000 by default) on a fresh experiment and
 * prints the bytes per trial of every file of the store, while open and
 * at rest; then the bytes at rest of one metric point. */
#include <xp/xp.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the quickstart graph (bench/trials.c), with an optional metric */

static long s_points;      /* points calculate_score saves per trial */
static const char *s_keep; /* --keep DIR: stores go there and stay */

static int prepare_data(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]));
}

static int calculate_score(xp_step *st, const xp_value *const *in,
                           xp_value *out)
{
    double s = xp_as_double(in[0]);
    if (s == 0)
        return xp_step_fail(st, "division by zero");
    for (long epoch = 0; epoch < s_points; epoch++)
        if (xp_save_metric(st, "dummy_score", epoch,
                           100 - xp_random(st) * (double)epoch) != 0)
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

/* ---- sizes of the files of a store, by kind */

enum { K_DB, K_WAL, K_SHM, K_TSV, K_CODE, K_ENV, K_OTHER, K_COUNT };
static const char *const s_kind_names[K_COUNT] = {
    "xp.sqlite3", "-wal",         "-shm", "trials.tsv",
    "code/",      "environment/", "other"};

struct sizes {
    long long size[K_COUNT];  /* apparent (st_size) */
    long long alloc[K_COUNT]; /* allocated (st_blocks * 512) */
    long long size_all, alloc_all;
};

static struct sizes *s_walk_sizes; /* nftw has no user pointer */

static int s_kind(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strstr(path, "/code/"))
        return K_CODE;
    if (strstr(path, "/environment/"))
        return K_ENV;
    if (strcmp(base, "xp.sqlite3") == 0)
        return K_DB;
    if (strcmp(base, "xp.sqlite3-wal") == 0)
        return K_WAL;
    if (strcmp(base, "xp.sqlite3-shm") == 0)
        return K_SHM;
    if (strcmp(base, "trials.tsv") == 0)
        return K_TSV;
    return K_OTHER;
}

static int s_add_entry(const char *path, const struct stat *sb, int flag,
                       struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    int k = s_kind(path);
    s_walk_sizes->size[k] += (long long)sb->st_size;
    s_walk_sizes->alloc[k] += (long long)sb->st_blocks * 512;
    s_walk_sizes->size_all += (long long)sb->st_size;
    s_walk_sizes->alloc_all += (long long)sb->st_blocks * 512;
    return 0;
}

static int s_measure(const char *dir, struct sizes *out)
{
    memset(out, 0, sizeof *out);
    s_walk_sizes = out;
    if (nftw(dir, s_add_entry, 16, FTW_PHYS) != 0) {
        perror("storage: nftw");
        return -1;
    }
    return 0;
}

static int s_remove_entry(const char *path, const struct stat *sb, int flag,
                          struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Records n trials of `points` metric points each on a fresh store;
 * *open_sz gets the sizes before the handle is closed, *rest after. */
static int s_fill(long n, long points, struct sizes *open_sz,
                  struct sizes *rest)
{
    char dir[4096], backend[4200];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/xp-bench-XXXXXX",
             s_keep        ? s_keep
             : tmp && *tmp ? tmp
                           : "/tmp");
    if (!mkdtemp(dir)) {
        perror("storage: mkdtemp");
        return -1;
    }
    snprintf(backend, sizeof backend, "%s/store", dir);
    if (s_keep)
        printf("  (store of %ld trials x %ld points: %s)\n", n, points,
               backend);
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = backend;
    xp_experiment *ex = NULL;
    xp_error_t err;
    int rc = -1;
    s_points = points;
    if (xp_experiment_open(&ex, "bench_storage", &opts, &err) != 0 ||
        s_define(ex, &err) != 0)
        goto fail;
    for (long i = 0; i < n; i++)
        if (xp_compute(ex, NULL, NULL, NULL, &err) != 0)
            goto fail;
    if (s_measure(backend, open_sz) != 0)
        goto cleanup;
    xp_experiment_destroy(&ex);
    if (s_measure(backend, rest) != 0)
        goto cleanup;
    rc = 0;
    goto cleanup;
fail:
    fprintf(stderr, "storage: %s\n", err.message);
cleanup:
    xp_experiment_destroy(&ex);
    if (!s_keep)
        nftw(dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static void s_print_trials(long n, const struct sizes *o, const struct sizes *r)
{
    printf("%9ld  %12.0f  %12.0f  %12.0f  %12.0f\n", n,
           (double)o->size_all / (double)n, (double)o->alloc_all / (double)n,
           (double)r->size_all / (double)n, (double)r->alloc_all / (double)n);
}

static void s_print_breakdown(const struct sizes *r)
{
    for (int k = 0; k < K_COUNT; k++)
        if (r->alloc[k] || r->size[k])
            printf("    %-13s %12lld bytes (%lld allocated)\n", s_kind_names[k],
                   r->size[k], r->alloc[k]);
}

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
    long points = 100000, metric_trials = 10000;
    for (int i = 1; i < argc; i++) {
        long *target = NULL;
        if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) {
            s_keep = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--n") == 0)
            target = &sizes[0];
        else if (strcmp(argv[i], "--points") == 0)
            target = &points;
        else if (strcmp(argv[i], "--metric-trials") == 0)
            target = &metric_trials;
        if (!target || i + 1 == argc || (*target = s_positive(argv[++i])) < 0) {
            fputs("usage: storage [--n N] [--points P] [--metric-trials M] "
                  "[--keep DIR]\n"
                  "Bytes on disk per quickstart trial of a local store of N\n"
                  "trials (default 1000, 10000, 100000); bytes per metric\n"
                  "point of one step saving P points (default 100000) and\n"
                  "of M quickstart trials of 100 points each (default\n"
                  "10000). --keep DIR: the stores are made in DIR and kept.\n",
                  stderr);
            return 2;
        }
        if (target == &sizes[0])
            nsizes = 1;
    }
    xp_log_set_level(XP_LOG_OFF);

    struct sizes o, r, base_o, base_r;
    printf("quickstart trials (persisted prepare_data, no metric), local "
           "store, bytes per trial:\n");
    printf("%9s  %12s  %12s  %12s  %12s\n", "trials", "open: size",
           "open: alloc", "rest: size", "rest: alloc");
    for (size_t i = 0; i < nsizes; i++) {
        if (s_fill(sizes[i], 0, &o, &r) != 0)
            return 1;
        s_print_trials(sizes[i], &o, &r);
        if (i + 1 == nsizes) {
            printf("  open (before the handle is closed), %ld trials, by "
                   "file:\n",
                   sizes[i]);
            s_print_breakdown(&o);
            printf("  at rest, %ld trials, by file:\n", sizes[i]);
            s_print_breakdown(&r);
        }
        fflush(stdout);
    }

    /* A point's cost: the same store with and without the points. */
    if (s_fill(1, 0, &base_o, &base_r) != 0 || s_fill(1, points, &o, &r) != 0)
        return 1;
    printf("metric points at rest, one trial saving %ld points: %.2f bytes "
           "per point (%.2f allocated)\n",
           points, (double)(r.size_all - base_r.size_all) / (double)points,
           (double)(r.alloc_all - base_r.alloc_all) / (double)points);
    if (s_fill(metric_trials, 0, &base_o, &base_r) != 0 ||
        s_fill(metric_trials, 100, &o, &r) != 0)
        return 1;
    printf("metric points at rest, %ld quickstart trials of 100 points: %.2f "
           "bytes per point (%.2f allocated); %.0f bytes per trial with "
           "its metric\n",
           metric_trials,
           (double)(r.size_all - base_r.size_all) / (100.0 * metric_trials),
           (double)(r.alloc_all - base_r.alloc_all) / (100.0 * metric_trials),
           (double)r.size_all / (double)metric_trials);
    return 0;
}
