/* dashboard.c — xp-dashboard over HTTP: seeds a local store (an
 * experiment of 100,000 trials x 10 parameters, one of 1,000, one trial
 * with a 1,000,000-point metric), starts the real server, and prints the
 * median time of 100-row history pages, a trial page, a downsampled
 * metric and more, asked with libcurl over one kept-alive connection,
 * then the server's peak RSS (VmHWM). Prints figures; asserts nothing.
 *
 *   bench/dashboard [--store DIR] [--dashboard PATH] [--runs N]
 *
 * --store keeps the seeded store in DIR and reuses it next time. */
#include <xp/xp.h>

#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define METRIC_POINTS 1000000

static int s_runs = 7;

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

/* ---------------------------------------------------------------- seeding */

static const char *const s_params[10] = {"p0", "p1", "p2", "p3", "p4",
                                         "p5", "p6", "p7", "p8", "p9"};

static int s_score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) * 0.5 + xp_as_double(in[1]) -
                                  (xp_as_bool(in[2]) ? 1 : 0));
}

static int s_curve(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    double x = 1;
    for (int64_t e = 0; e < METRIC_POINTS; e++) {
        x = x * 0.999999 + 1e-4 * (xp_random(st) - 0.5);
        if (xp_save_metric(st, "loss", e, x) != 0)
            return xp_step_fail(st, "cannot save the metric");
    }
    return xp_set_double(out, x);
}

/* Parameters of trial k: ints, doubles, a string of 1,000 values, a
 * bool. */
static xp_value *s_values(long k)
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
            xp_set_double(xp_document_set(p, s_params[i]), k * 0.001 * i);
        else
            xp_set_int64(xp_document_set(p, s_params[i]), k * i);
    return p;
}

static xp_experiment *s_open(const char *dir, const char *id)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = dir;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err;
    if (xp_experiment_open(&ex, id, &o, &err) != 0) {
        fprintf(stderr, "dashboard: %s\n", err.message);
        return NULL;
    }
    return ex;
}

/* Experiment id of dir with n trials (kept when it has them). */
static int s_seed_history(const char *dir, const char *id, long n)
{
    xp_experiment *ex = s_open(dir, id);
    if (!ex)
        return -1;
    xp_node *p[10];
    for (int i = 0; i < 10; i++)
        p[i] = xp_parameter(ex, s_params[i]);
    xp_node *in[3] = {p[0], p[1], p[3]};
    xp_result(xp_step_add(ex, "score", s_score, 3, in, __FILE__, __LINE__));
    int64_t last = 0;
    xp_error_t err;
    xp_last_trial_id(ex, &last, &err);
    double t0 = s_now();
    int rc = 0;
    for (long k = last + 1; rc == 0 && k <= n; k++) {
        xp_value *values = s_values(k);
        xp_run_options o = XP_RUN_OPTIONS_INIT;
        o.params = values;
        rc = xp_compute(ex, &o, NULL, NULL, &err);
        xp_value_destroy(&values);
        if (rc != 0)
            fprintf(stderr, "dashboard: trial %ld: %s\n", k, err.message);
    }
    if (last < n)
        printf("seeded %s: %ld trials in %.1f s\n", id, n - (long)last,
               s_now() - t0);
    xp_experiment_destroy(&ex);
    return rc;
}

static int s_seed_metric(const char *dir)
{
    xp_experiment *ex = s_open(dir, "bench_metric");
    if (!ex)
        return -1;
    xp_result(xp_step_add(ex, "curve", s_curve, 0, NULL, __FILE__, __LINE__));
    int64_t last = 0;
    xp_error_t err;
    xp_last_trial_id(ex, &last, &err);
    int rc = last > 0 ? 0 : xp_compute(ex, NULL, NULL, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "dashboard: metric trial: %s\n", err.message);
    xp_experiment_destroy(&ex);
    return rc;
}

/* ---------------------------------------------------------------- server */

static pid_t s_pid;

/* Starts the server on a free port; its URL into url. */
static int s_start(const char *program, const char *dir, char *url, size_t size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    s_pid = fork();
    if (s_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(program, program, "--backend", dir, "--listen", "127.0.0.1:0",
              "--log-level", "warning", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[512] = "";
    bool ok = f && fgets(line, sizeof line, f) &&
              strncmp(line, "xp dashboard: ", 14) == 0;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "dashboard: %s did not start\n", program);
        return -1;
    }
    snprintf(url, size, "%.*s", (int)strcspn(line + 14, "\n"), line + 14);
    return 0;
}

static long s_status_kb(const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s_pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field) + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ---------------------------------------------------------------- timing */

typedef struct {
    size_t bytes;
} s_sink;

static size_t s_write(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    ((s_sink *)user)->bytes += size * n;
    return size * n;
}

/* Median of s_runs requests of path (after one to warm up). */
static int s_time(CURL *c, const char *url, const char *what, const char *path)
{
    char full[4096];
    snprintf(full, sizeof full, "%s%s", url, path);
    double *t = calloc((size_t)s_runs, sizeof *t);
    s_sink sink = {0};
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    for (int r = -1; r < s_runs; r++) {
        sink.bytes = 0;
        double t0 = s_now();
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200) {
            fprintf(stderr, "dashboard: %s: %s (HTTP %ld)\n", full,
                    curl_easy_strerror(rc), status);
            free(t);
            return -1;
        }
        if (r >= 0)
            t[r] = s_now() - t0;
    }
    qsort(t, (size_t)s_runs, sizeof *t, s_cmp_double);
    printf("  %-58s %8.2f ms  (%.2f - %.2f)  %zu bytes\n", what,
           t[s_runs / 2] * 1e3, t[0] * 1e3, t[s_runs - 1] * 1e3, sink.bytes);
    fflush(stdout);
    free(t);
    return 0;
}

static int s_pages(CURL *c, const char *url, const char *id)
{
    static const struct {
        const char *what, *query;
    } pages[] = {
        {"history page: no filter", "?limit=100"},
        {"history page: p0 < 50 and p3 == true, sort -result",
         "?filter=p0%20%3C%2050%20and%20p3%20%3D%3D%20true&sort=-result"
         "&limit=100"},
        {"history page: sort by string p2", "?sort=p2&limit=100"},
        {"history page: offset 500 (live poll: sort -trial_id)",
         "?sort=-trial_id&offset=500&limit=100"},
        {"parallel coordinates: 10,000 rows of 3 fields",
         "?fields=parameters,result,status&limit=10000"},
    };
    char path[1024];
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        snprintf(path, sizeof path, "api/experiments/%s/history%s", id,
                 pages[i].query);
        if (s_time(c, url, pages[i].what, path) != 0)
            return -1;
    }
    snprintf(path, sizeof path, "api/experiments/%s/trials/777", id);
    if (s_time(c, url, "trial page (document, metric names, persisted)",
               path) != 0)
        return -1;
    snprintf(path, sizeof path, "api/experiments/%s", id);
    return s_time(c, url, "experiment (graph names)", path);
}

static int s_remove_entry(const char *path, const struct stat *sb, int flag,
                          struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_bench(const char *program, const char *dir)
{
    if (s_seed_history(dir, "bench_1k", 1000) != 0 ||
        s_seed_history(dir, "bench_100k", 100000) != 0 ||
        s_seed_metric(dir) != 0)
        return -1;
    char url[400];
    if (s_start(program, dir, url, sizeof url) != 0)
        return -1;
    CURL *c = curl_easy_init();
    int rc = -1;
    printf("xp-dashboard at %s, medians of %d requests, one connection:\n", url,
           s_runs);
    printf("1,000 trials x 10 parameters:\n");
    if (s_pages(c, url, "bench_1k") != 0)
        goto done;
    printf("100,000 trials x 10 parameters:\n");
    if (s_pages(c, url, "bench_100k") != 0)
        goto done;
    printf("a metric of 1,000,000 points:\n");
    if (s_time(c, url, "metric cut to 2,000 points",
               "api/experiments/bench_metric/trials/1/metrics/loss") != 0 ||
        s_time(c, url, "metric window of 10,000 epochs cut to 2,000",
               "api/experiments/bench_metric/trials/1/metrics/"
               "loss?from=500000&to=509999") != 0 ||
        s_time(c, url, "metric 100,000 points (the most a request cuts to)",
               "api/experiments/bench_metric/trials/1/metrics/"
               "loss?points=100000") != 0)
        goto done;
    printf("other:\n");
    if (s_time(c, url, "experiment list", "api/experiments") != 0 ||
        s_time(c, url, "static file app.js", "app.js") != 0)
        goto done;
    printf("server memory: VmHWM %ld kB, VmRSS %ld kB\n", s_status_kb("VmHWM"),
           s_status_kb("VmRSS"));
    rc = 0;
done:
    curl_easy_cleanup(c);
    kill(s_pid, SIGTERM);
    waitpid(s_pid, NULL, 0);
    return rc;
}

/* xp-dashboard beside this program in the build tree. */
static const char *s_default_program(char *buf, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return "xp-dashboard";
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(buf, size, "%s/../dashboard/xp-dashboard", self);
    return buf;
}

int main(int argc, char **argv)
{
    char program_buf[PATH_MAX + 32], tmp[PATH_MAX] = "";
    const char *program = s_default_program(program_buf, sizeof program_buf);
    const char *store = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            store = argv[++i];
        } else if (strcmp(argv[i], "--dashboard") == 0 && i + 1 < argc) {
            program = argv[++i];
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            s_runs = atoi(argv[++i]);
            if (s_runs < 1 || s_runs > 1000)
                s_runs = 7;
        } else {
            fputs("usage: dashboard [--store DIR] [--dashboard PATH] "
                  "[--runs N]\n",
                  stderr);
            return 2;
        }
    }
    xp_log_set_level(XP_LOG_WARNING);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!store) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/xp-bench-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) {
            perror("dashboard: mkdtemp");
            return 1;
        }
        store = tmp;
    }
    int rc = s_bench(program, store);
    if (tmp[0])
        nftw(tmp, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    curl_global_cleanup();
    return rc == 0 ? 0 : 1;
}
