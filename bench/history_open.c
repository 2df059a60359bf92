/* history_open.c — what a reader pays from nothing: opens an existing
 * experiment read-only, reads its whole history (or one 100-row page of
 * xp_history_query) and closes it, on a fresh handle each time; prints
 * the median (min - max) of each phase over RUNS runs. The experiment
 * comes from `bench/history --store DIR` (or any other backend). */
#include <xp/xp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void s_print(const char *what, double *t, int runs)
{
    qsort(t, (size_t)runs, sizeof *t, s_cmp_double);
    printf("  %-44s %9.2f ms  (%.2f - %.2f)\n", what, t[runs / 2] * 1e3,
           t[0] * 1e3, t[runs - 1] * 1e3);
}

/* One run: open, read (q NULL: whole xp_history), close; seconds of
 * each phase in t[0..2], rows in *rows. */
static int s_once(const char *backend, const char *id, const xp_query *q,
                  double t[3], size_t *rows)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    o.read_only = true;
    xp_experiment *ex = NULL;
    xp_value *v = NULL;
    xp_error_t err;
    int64_t matched = 0;
    double t0 = s_now();
    if (xp_experiment_open(&ex, id, &o, &err) != 0)
        goto fail;
    double t1 = s_now();
    if ((q ? xp_history_query(ex, q, &v, &matched, &err)
           : xp_history(ex, &v, &err)) != 0)
        goto fail;
    double t2 = s_now();
    *rows = xp_value_count(v);
    xp_value_destroy(&v);
    xp_experiment_destroy(&ex);
    double t3 = s_now();
    t[0] = t1 - t0;
    t[1] = t2 - t1;
    t[2] = t3 - t2;
    return 0;
fail:
    fprintf(stderr, "history_open: %s\n", err.message);
    xp_value_destroy(&v);
    xp_experiment_destroy(&ex);
    return -1;
}

int main(int argc, char **argv)
{
    int runs = RUNS;
    bool page_only = false, history_only = false;
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (strcmp(argv[a], "--once") == 0)
            runs = 1;
        else if (strcmp(argv[a], "--page") == 0)
            page_only = true;
        else if (strcmp(argv[a], "--history") == 0)
            history_only = true;
        else
            break;
    }
    if (argc - a != 2) {
        fputs("usage: history_open [--once] [--page|--history] BACKEND ID\n"
              "Times open (read-only) + whole xp_history + close, and open +\n"
              "one page (p0 < 50 and p3 == true, sort -result, 100 rows) +\n"
              "close, of experiment ID (made by bench/history), on a fresh\n"
              "handle each run; --once: one run (for callgrind).\n",
              stderr);
        return 2;
    }
    const char *backend = argv[a], *id = argv[a + 1];
    xp_log_set_level(XP_LOG_ERROR);
    xp_query q = XP_QUERY_INIT;
    q.filter = "p0 < 50 and p3 == true";
    q.sort = "-result";
    q.limit = 100;
    for (int pass = 0; pass < 2; pass++) {
        const xp_query *qp = pass ? &q : NULL;
        if ((pass == 0 && page_only) || (pass == 1 && history_only))
            continue;
        double open_t[RUNS], read_t[RUNS], close_t[RUNS], all_t[RUNS];
        size_t rows = 0;
        for (int r = 0; r < runs; r++) {
            double t[3];
            if (s_once(backend, id, qp, t, &rows) != 0)
                return 1;
            open_t[r] = t[0];
            read_t[r] = t[1];
            close_t[r] = t[2];
            all_t[r] = t[0] + t[1] + t[2];
        }
        printf("%s, %zu rows, fresh read-only handle, median of %d:\n",
               pass ? "page: p0 < 50 and p3 == true, sort -result"
                    : "whole xp_history",
               rows, runs);
        s_print("open", open_t, runs);
        s_print(pass ? "xp_history_query" : "xp_history", read_t, runs);
        s_print("free the rows, close", close_t, runs);
        s_print("open + read + close", all_t, runs);
        fflush(stdout);
    }
    return 0;
}
