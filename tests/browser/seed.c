/* seed.c — fills a local store for the dashboard's browser tests and its
 * benchmark, through the public API only. Modes:
 *   browser: six trials of a four-step graph with varied parameters, one
 *            hostile string value, one failed trial, persisted values and
 *            metrics (one longer than the server's default of 2000 points);
 *   wide:    N trials over P numeric parameters (history at scale);
 *   metric:  one trial saving one metric of N points (chart at scale);
 *   commands: an experiment file of two command steps (its file written
 *            beside the store), one trial whose first step prints the
 *            hostile string and whose second fails, and trial 2 that
 *            re-runs it. */
#include <xp/xp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 64
#define HOSTILE "<img src=x onerror=alert(1)>"

static long s_points = 3000; /* epochs of the long metric */

/* ---- browser mode: the graph */

static int prepare_data(xp_step *st, const xp_value *const *in, xp_value *out)
{
    if (xp_set_document(out) != 0)
        return xp_step_fail(st, "cannot build the data document");
    xp_value *layers = xp_document_set(out, "layers");
    xp_value *rows = xp_document_set(out, "rows");
    if (!layers || !rows || xp_set_int64(layers, xp_as_int64(in[0])) != 0 ||
        xp_set_int64(rows, 100) != 0)
        return xp_step_fail(st, "cannot build the data document");
    return 0;
}

static int train(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t layers = xp_as_int64(xp_value_get(in[0], "layers"));
    double lr = xp_as_double(in[1]);
    if (layers <= 0)
        return xp_step_fail(st, "layers must be positive (got %" PRId64 ")",
                            layers);
    double loss = 1;
    for (long e = 0; e < s_points; e++) {
        loss = loss * (1 - lr / 50) + 0.002 * (xp_random(st) - 0.5);
        if (xp_save_metric(st, "loss", e, loss) != 0)
            return xp_step_fail(st, "cannot save metric loss");
    }
    for (int e = 0; e < 50; e++)
        if (xp_save_metric(st, "accuracy", e,
                           1 - 0.5 / (1 + e * lr * (double)layers)) != 0)
            return xp_step_fail(st, "cannot save metric accuracy");
    return xp_set_double(out, loss);
}

static int score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    return xp_set_double(out, 1 - xp_as_double(in[0]));
}

static int s_define_browser(xp_experiment *ex, xp_error_t *err)
{
    xp_node *lr = xp_parameter(ex, "lr");
    xp_node *layers = xp_parameter(ex, "layers");
    xp_node *optimizer = xp_parameter_literal(ex, "optimizer", "adam");
    xp_node *data = XP_PERSIST(ex, prepare_data, layers);
    xp_node *model = XP_STEP(ex, train, data, lr, optimizer);
    XP_RESULT(ex, score, model);
    return xp_experiment_check(ex, err);
}

/* One trial with these parameter values; a failed step is expected when
 * `may_fail`. */
static int s_trial(xp_experiment *ex, double lr, int64_t layers,
                   const char *optimizer, bool may_fail, xp_error_t *err)
{
    xp_value *params = xp_value_new();
    int rc = -1;
    if (xp_set_document(params) != 0 ||
        xp_set_double(xp_document_set(params, "lr"), lr) != 0 ||
        xp_set_int64(xp_document_set(params, "layers"), layers) != 0 ||
        xp_set_string(xp_document_set(params, "optimizer"), optimizer) != 0)
        goto cleanup;
    xp_run_options run = XP_RUN_OPTIONS_INIT;
    run.params = params;
    run.has_seed = true;
    run.seed = (uint64_t)layers * 1000 + 7;
    rc = xp_compute(ex, &run, NULL, NULL, err);
    if (rc != 0 && may_fail && err->code == XP_ESTEP)
        rc = 0;
cleanup:
    xp_value_destroy(&params);
    return rc;
}

static int s_seed_browser(xp_experiment *ex, xp_error_t *err)
{
    static const struct {
        double lr;
        int64_t layers;
        const char *optimizer;
    } trials[] = {
        {0.1, 2, "adam"},  {0.01, 3, "sgd"}, {0.001, 4, HOSTILE},
        {0.05, 0, "adam"}, {0.2, 8, "sgd"},  {0.02, 1, "rmsprop"},
    };
    if (s_define_browser(ex, err) != 0)
        return -1;
    for (size_t i = 0; i < sizeof trials / sizeof trials[0]; i++)
        if (s_trial(ex, trials[i].lr, trials[i].layers, trials[i].optimizer,
                    trials[i].layers == 0, err) != 0)
            return -1;
    return 0;
}

/* ---- wide mode: one step summing P parameters */

static size_t s_nparams;

static int total(xp_step *st, const xp_value *const *in, xp_value *out)
{
    double sum = 0;
    for (size_t i = 0; i < s_nparams; i++)
        sum += xp_as_double(in[i]);
    if (xp_as_double(in[0]) > 0.98)
        return xp_step_fail(st, "p0 too large");
    return xp_set_double(out, sum);
}

/* Deterministic values in [0, 1): the same store every run. */
static double s_uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (double)(*state >> 11) / 9007199254740992.0;
}

static int s_seed_wide(xp_experiment *ex, long n, size_t p, xp_error_t *err)
{
    xp_node *inputs[MAX_PARAMS];
    char names[MAX_PARAMS][16];
    s_nparams = p;
    for (size_t i = 0; i < p; i++) {
        snprintf(names[i], sizeof names[i], "p%zu", i);
        inputs[i] = xp_parameter(ex, names[i]);
    }
    xp_result(xp_step_add(ex, "total", total, p, inputs, __FILE__, __LINE__));
    if (xp_experiment_check(ex, err) != 0)
        return -1;
    uint64_t state = 42;
    xp_value *params = xp_value_new();
    int rc = 0;
    for (long t = 0; t < n && rc == 0; t++) {
        rc = xp_set_document(params);
        for (size_t i = 0; i < p && rc == 0; i++) {
            double v = (double)(int)(s_uniform(&state) * 1000) / 1000;
            rc = xp_set_double(xp_document_set(params, names[i]), v);
        }
        xp_run_options run = XP_RUN_OPTIONS_INIT;
        run.params = params;
        if (rc == 0 && xp_compute(ex, &run, NULL, NULL, err) != 0 &&
            err->code != XP_ESTEP)
            rc = -1;
    }
    xp_value_destroy(&params);
    return rc;
}

/* ---- metric mode */

static int long_run(xp_step *st, const xp_value *const *in, xp_value *out)
{
    double v = 0;
    for (long e = 0; e < s_points; e++) {
        v = 1.0 / (1 + (double)e / 1000) + 0.05 * (xp_random(st) - 0.5);
        if (xp_save_metric(st, "loss", e, v) != 0)
            return xp_step_fail(st, "cannot save metric loss");
    }
    return xp_set_double(out, v);
}

static int s_seed_metric(xp_experiment *ex, xp_error_t *err)
{
    xp_node *points = xp_parameter_literal(ex, "points", "0");
    XP_RESULT(ex, long_run, points);
    if (xp_experiment_check(ex, err) != 0 ||
        xp_set_param_int64(ex, "points", s_points, err) != 0)
        return -1;
    return xp_compute(ex, NULL, NULL, NULL, err);
}

/* ---- commands mode */

static int s_seed_commands(const char *backend, const char *id, xp_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.yaml", backend, id);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err->message, sizeof err->message, "cannot write %.400s",
                 path);
        return -1;
    }
    fprintf(f,
            "experiment: %s\n"
            "parameters:\n"
            "  n: {type: int, default: -1}\n"
            "steps:\n"
            "  greet:\n"
            "    shell: printf '%%s\\n' '" HOSTILE "'; echo warned >&2\n"
            "    output: none\n"
            "    pure: true\n"
            "  count:\n"
            "    shell: test {n} -ge 0 || {{ echo 'n is negative' >&2; exit "
            "4; }}; echo {n}\n"
            "    inputs: [greet]\n"
            "result: count\n",
            id);
    fclose(f);
    xp_definition *d = NULL;
    xp_experiment *ex = NULL;
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = backend;
    int rc = xp_definition_load(&d, path, err);
    if (rc == 0)
        rc = xp_experiment_open(&ex, id, &opts, err);
    if (rc == 0 && !xp_result(xp_definition_apply(d, ex)))
        rc = xp_experiment_check(ex, err);
    if (rc == 0 && xp_compute(ex, NULL, NULL, NULL, err) != 0)
        rc = err->code == XP_ESTEP ? 0 : -1;
    /* Trial 2 re-runs trial 1 (xp reproduce, every step run); trial 3
     * reuses the pure greet of trial 1. */
    if (rc == 0)
        rc = xp_reproduce_run(ex, 1, NULL, err);
    if (rc == 0 && xp_compute(ex, NULL, NULL, NULL, err) != 0)
        rc = err->code == XP_ESTEP ? 0 : -1;
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
    return rc;
}

/* ---- main */

static void s_usage(FILE *f)
{
    fputs("usage: xp_browser_seed browser|wide|metric|commands --backend "
          "DIR\n"
          "           [--experiment ID] [--trials N] [--params P] "
          "[--points N]\n",
          f);
}

static long s_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v > 0) ? v : -1;
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *id = NULL;
    long trials = 1000, params = 10;
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) {
            fprintf(stderr, "xp_browser_seed: '%s' needs a value\n", opt);
            return 2;
        }
        i++;
        if (strcmp(opt, "--backend") == 0)
            backend = val;
        else if (strcmp(opt, "--experiment") == 0)
            id = val;
        else if (strcmp(opt, "--trials") == 0)
            trials = s_count(val);
        else if (strcmp(opt, "--params") == 0)
            params = s_count(val);
        else if (strcmp(opt, "--points") == 0)
            s_points = s_count(val);
        else {
            fprintf(stderr, "xp_browser_seed: bad argument '%s'\n", opt);
            s_usage(stderr);
            return 2;
        }
    }
    if (!backend || trials < 0 || params < 0 || params > MAX_PARAMS ||
        s_points < 0) {
        s_usage(stderr);
        return 2;
    }
    xp_log_set_level(XP_LOG_OFF); /* expected failures are not news */
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = backend;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    int rc;
    if (strcmp(mode, "browser") == 0) {
        rc = xp_experiment_open(&ex, id ? id : "browser_pj", &opts, &err);
        rc = rc != 0 ? rc : s_seed_browser(ex, &err);
    } else if (strcmp(mode, "wide") == 0) {
        rc = xp_experiment_open(&ex, id ? id : "wide_pj", &opts, &err);
        rc = rc != 0 ? rc : s_seed_wide(ex, trials, (size_t)params, &err);
    } else if (strcmp(mode, "commands") == 0) {
        rc = s_seed_commands(backend, id ? id : "commands_pj", &err);
    } else if (strcmp(mode, "metric") == 0) {
        rc = xp_experiment_open(&ex, id ? id : "metric_pj", &opts, &err);
        rc = rc != 0 ? rc : s_seed_metric(ex, &err);
    } else {
        s_usage(stderr);
        return 2;
    }
    if (rc != 0)
        fprintf(stderr, "xp_browser_seed: %s\n", err.message);
    xp_experiment_destroy(&ex);
    return rc == 0 ? 0 : 1;
}
