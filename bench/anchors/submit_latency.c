/* submit_latency.c — client-observed latency of one trivial trial on an
 * xp-scheduler: submits simple_experiment_pj {a: i, b: 0} one at a time
 * and follows it to its end as xpsubmit does (xp_client_wait: the
 * scheduler holds the answer until the trial is recorded), or with
 * --poll by asking for progress again without pause; prints median, 90th
 * percentile, 99th percentile and min in microseconds. */
#include <xp/xp.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One trial submitted and followed to its end; *us gets the time. */
static int s_one(xp_client *c, long i, bool poll, double *us, xp_error_t *err)
{
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    xp_value *spec = xp_array_append(trials);
    xp_set_document(spec);
    xp_value *params = xp_document_set(spec, "parameters");
    xp_set_document(params);
    xp_set_int64(xp_document_set(params, "a"), i);
    xp_set_int64(xp_document_set(params, "b"), 0);
    int64_t batch = 0, *ids = NULL, cursor = 0;
    size_t n = 0;
    int rc = -1;
    double t0 = s_now_us();
    if (xp_client_submit(c, "simple_experiment_pj", trials, NULL, &batch, &ids,
                         &n, err) != 0)
        goto cleanup;
    for (;;) {
        xp_progress p;
        if (xp_client_wait(c, batch, &cursor, poll ? 0 : 1000, &p, NULL, err) !=
            0)
            goto cleanup;
        if (p.total > 0 && p.done + p.failed >= p.total)
            break;
    }
    *us = s_now_us() - t0;
    rc = 0;
cleanup:
    xp_free(ids);
    xp_value_destroy(&trials);
    return rc;
}

int main(int argc, char **argv)
{
    bool poll = argc > 1 && strcmp(argv[argc - 1], "--poll") == 0;
    if (poll)
        argc--;
    if (argc < 2 || argc > 3) {
        fputs("usage: submit_latency ENDPOINT [N] [--poll]\n"
              "Submits N (default 1000) trials of simple_experiment_pj one\n"
              "at a time and prints the client-observed submit -> result\n"
              "time in microseconds; --poll asks for progress again without\n"
              "pause instead of letting the scheduler hold its answer.\n",
              stderr);
        return 2;
    }
    long n = argc == 3 ? strtol(argv[2], NULL, 10) : 1000;
    if (n <= 0 || n > 10000000) {
        fprintf(stderr, "submit_latency: '%s' is not a valid count\n", argv[2]);
        return 2;
    }
    double *us = calloc((size_t)n, sizeof *us);
    xp_client *c = NULL;
    xp_error_t err;
    int status = 1;
    if (!us) {
        fputs("submit_latency: out of memory\n", stderr);
        return 1;
    }
    if (xp_client_connect(&c, argv[1], 0, &err) != 0)
        goto fail;
    for (long i = 0; i < n; i++)
        if (s_one(c, i, poll, &us[i], &err) != 0)
            goto fail;
    qsort(us, (size_t)n, sizeof *us, s_cmp_double);
    printf("latency_median_us %.1f\nlatency_p90_us %.1f\n"
           "latency_p99_us %.1f\nlatency_min_us %.1f\n",
           us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us[0]);
    status = 0;
    goto cleanup;
fail:
    fprintf(stderr, "submit_latency: %s\n", err.message);
cleanup:
    xp_client_destroy(&c);
    free(us);
    return status;
}
