/* experiment.c — opening an experiment on its backend (with recovery of
 * trials whose recording process died), parameter values, and reading the
 * history, parameters, persisted values and metrics back. */
#include "experiment.h"

#include "memo.h"

#include "capture/snapshot.h"
#include "query/query.h"
#include "step.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sys.h"
#include "value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int s_env_threads(void)
{
    const char *s = getenv("XP_THREADS");
    if (s && *s) {
        char *end;
        long n = strtol(s, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 1024)
            return (int)n;
        xp__log(XP_LOG_WARNING, "ignoring XP_THREADS='%s' (expected 1-1024)",
                s);
    }
    return xp__cpu_count();
}

/* Marks trials recorded as running by a process of this host that no
 * longer exists as interrupted. Trials of other hosts cannot be checked
 * from here and are left as they are. */
static int s_recover_interrupted(xp_experiment *ex, xp_error_t *err)
{
    xp_running_trial *list = NULL;
    size_t n = 0;
    if (xp__store_running_trials(ex->backend, &list, &n, err) != 0)
        return -1;
    int rc = 0;
    const char *host = xp__hostname();
    for (size_t i = 0; i < n && rc == 0; i++) {
        xp_running_trial *t = &list[i];
        if (strcmp(t->host, host) != 0 || t->pid <= 0)
            continue;
        uint64_t start = xp__process_start((pid_t)t->pid);
        if (start != 0 && start == t->pstart)
            continue; /* still running */
        char desc[512];
        snprintf(desc, sizeof desc,
                 "interrupted: process %lld on %s ended during the trial",
                 (long long)t->pid, t->host);
        rc = xp__store_trial_interrupt(ex->backend, t->trial_id, xp__now_ms(),
                                       desc, err);
        if (rc == 0)
            xp__log(XP_LOG_WARNING,
                    "Trial %lld of experiment '%s' was interrupted (process "
                    "%lld on %s is gone)",
                    (long long)t->trial_id, ex->id, (long long)t->pid, t->host);
    }
    bson_free(list);
    return rc;
}

/* Checks open options; opts NULL: the defaults. */
static int s_check_options(const xp_open_options *opts, xp_error_t *err)
{
    if (opts && (opts->version < 1 || opts->version > XP_OPEN_OPTIONS_VERSION))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "xp_open_options version %u is not supported",
                         opts->version);
    if (opts && (opts->threads < 0 || opts->threads > 1024))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "threads must be between 1 and 1024");
    return 0;
}

int xp__experiment_attach(xp_experiment *ex, const xp_open_options *opts,
                          xp_error_t *err)
{
    xp_open_options defaults = XP_OPEN_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    if (ex->backend)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ESTATE,
                         "experiment '%s' is already open", ex->id);
    if (s_check_options(opts, err) != 0)
        return -1;
    /* Version 1 structures end before read_only. */
    bool read_only = opts->version >= 2 && opts->read_only;
    /* A handle that may run trials needs the environment at its first
     * trial: capture it meanwhile. Readers (must_exist) do not. */
    if (!opts->must_exist && !read_only)
        xp__environment_prefetch();
    /* A reader writes nothing: recovery and the spool wait for a writer. */
    int rc = read_only ? xp__store_open_reader(&ex->backend, ex->id,
                                               opts->backend, err)
                       : xp__store_open(&ex->backend, ex->id, opts->backend,
                                        opts->must_exist, err);
    if (rc != 0 || (!read_only && s_recover_interrupted(ex, err) != 0)) {
        xp__store_close(&ex->backend);
        return -1;
    }
    ex->threads = opts->threads ? opts->threads : s_env_threads();
    ex->read_only = read_only;
    size_t synced = 0;
    xp_error_t sync_err;
    if (!read_only && xp__store_sync(ex->backend, &synced, &sync_err) != 0)
        xp__log(XP_LOG_WARNING, "Spooled trials of '%s' not written yet: %s",
                ex->id, sync_err.message);
    if (synced)
        xp__log(XP_LOG_INFO, "Wrote %zu spooled trial(s) of '%s'", synced,
                ex->id);
    if (xp__log_enabled(XP_LOG_DEBUG)) { /* a query only for the log */
        int64_t last = 0;
        xp__store_last_id(ex->backend, &last, NULL);
        xp__log(XP_LOG_DEBUG,
                "Opened experiment '%s' on %s (last trial id=%lld)", ex->id,
                xp__store_description(ex->backend), (long long)last);
    }
    return 0;
}

int xp_experiment_open(xp_experiment **out, const char *id,
                       const xp_open_options *opts, xp_error_t *err)
{
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no output pointer");
    *out = NULL;
    if (s_check_options(opts, err) != 0 ||
        xp__experiment_new_detached(out, id, err) != 0)
        return -1;
    if (xp__experiment_attach(*out, opts, err) != 0) {
        xp_experiment_destroy(out);
        return -1;
    }
    return 0;
}

const char *xp__experiment_id(const xp_experiment *ex)
{
    return ex->id;
}

xp_backend *xp__experiment_store(const xp_experiment *ex)
{
    return ex->backend;
}

const bson_t *xp__experiment_code(const xp_experiment *ex)
{
    return ex->code;
}

const char *xp__experiment_code_hash(const xp_experiment *ex)
{
    return ex->code_hash;
}

int xp__experiment_new_detached(xp_experiment **out, const char *id,
                                xp_error_t *err)
{
    *out = NULL;
    if (xp_check_id(id, err) != 0)
        return -1;
    xp_experiment *ex = bson_malloc0(sizeof *ex);
    ex->id = bson_strdup(id);
    pthread_mutex_init(&ex->lock, NULL);
    ex->threads = 1;
    *out = ex;
    return 0;
}

int xp_experiment_sync(xp_experiment *ex, size_t *written, xp_error_t *err)
{
    size_t n = 0;
    if (!ex)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "no experiment");
    if (ex->read_only)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ESTATE,
                         "experiment '%s' was opened read-only", ex->id);
    int rc = xp__store_sync(ex->backend, &n, err);
    if (written)
        *written = n;
    return rc;
}

void xp_experiment_destroy(xp_experiment **pex)
{
    if (!pex || !*pex)
        return;
    xp_experiment *ex = *pex;
    xp__pool_destroy(&ex->pool);
    xp__store_close(&ex->backend);
    xp__graph_free(ex);
    xp__memo_free(ex);
    pthread_mutex_destroy(&ex->lock);
    bson_free(ex->id);
    bson_free(ex);
    *pex = NULL;
}

const char *xp_experiment_id(const xp_experiment *ex)
{
    return ex ? ex->id : NULL;
}

const char *xp_experiment_backend(const xp_experiment *ex)
{
    return ex ? xp__store_description(ex->backend) : NULL;
}

void xp_experiment_set_seed(xp_experiment *ex, uint64_t seed)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->lock);
    ex->has_seed = true;
    ex->seed = seed;
    pthread_mutex_unlock(&ex->lock);
}

/* ---------------------------------------------------------------- params */

int xp_set_param(xp_experiment *ex, const char *name, const xp_value *v,
                 xp_error_t *err)
{
    if (!ex || !name || !v)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment, name or value");
    xp_value *copy = xp_value_dup(v);
    if (!copy)
        return xp__enomem(err);
    int rc = 0;
    pthread_mutex_lock(&ex->lock);
    xp_node *n = xp__graph_find(ex, name);
    if (!n || !n->is_param) {
        rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                       "parameter '%s' is not declared in experiment '%s'",
                       name, ex->id);
        xp_value_destroy(&copy);
    } else {
        xp_value_destroy(&n->current);
        n->current = copy;
    }
    pthread_mutex_unlock(&ex->lock);
    return rc;
}

int xp_set_param_literal(xp_experiment *ex, const char *name,
                         const char *literal, xp_error_t *err)
{
    xp_value v = {0};
    int rc = xp_value_parse_literal(&v, literal, err);
    if (rc == 0)
        rc = xp_set_param(ex, name, &v, err);
    xp__value_clear(&v);
    return rc;
}

int xp_set_param_int64(xp_experiment *ex, const char *name, int64_t i,
                       xp_error_t *err)
{
    xp_value v = {.type = XP_TYPE_INT64, .u.i = i};
    return xp_set_param(ex, name, &v, err);
}

int xp_set_param_double(xp_experiment *ex, const char *name, double d,
                        xp_error_t *err)
{
    xp_value v = {.type = XP_TYPE_DOUBLE, .u.d = d};
    return xp_set_param(ex, name, &v, err);
}

int xp_set_param_bool(xp_experiment *ex, const char *name, bool b,
                      xp_error_t *err)
{
    xp_value v = {.type = XP_TYPE_BOOL, .u.b = b};
    return xp_set_param(ex, name, &v, err);
}

int xp_set_param_string(xp_experiment *ex, const char *name, const char *s,
                        xp_error_t *err)
{
    xp_value v = {0};
    if (xp_set_string(&v, s) != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "value of parameter '%s' is not valid UTF-8",
                         name ? name : "");
    int rc = xp_set_param(ex, name, &v, err);
    xp__value_clear(&v);
    return rc;
}

/* ---------------------------------------------------------------- reading */

int xp_last_trial_id(xp_experiment *ex, int64_t *id, xp_error_t *err)
{
    if (!ex || !id)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    if (xp__in_step())
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTATE,
                         "the last trial id is not available inside a step "
                         "(use the current trial id)");
    return xp__store_last_id(ex->backend, id, err);
}

int xp__check_trial_id(int64_t id, xp_error_t *err)
{
    if (id < 1)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                         "invalid trial id %lld (trial ids start at 1)",
                         (long long)id);
    return 0;
}

int xp_trial_get(xp_experiment *ex, int64_t trial_id, xp_value **out,
                 xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    if (xp__check_trial_id(trial_id, err) != 0)
        return -1;
    bson_t doc;
    if (xp__store_trial_get(ex->backend, trial_id, &doc, err) != 0)
        return -1;
    xp_value *v = xp_value_new();
    int rc = xp__value_from_bson(v, &doc, err);
    bson_destroy(&doc);
    if (rc != 0)
        xp_value_destroy(&v);
    *out = v;
    return rc;
}

/* Adds trial id's record (its stored bytes) to the history array; a
 * record that cannot be read is shown marked "damaged", so the others
 * are still listed. */
static int s_history_add_bytes(const uint8_t *data, size_t len, int64_t id,
                               void *user)
{
    xp_value *arr = user;
    xp_value *item = xp_array_append(arr);
    if (!item)
        return -1;
    /* not zeroed whole: 512 bytes a row (100,000 of them), read only
     * when the row is damaged */
    xp_error_t why;
    why.domain = why.code = 0;
    why.message[0] = '\0';
    /* one pass of the bytes that checks them as it builds the row (nodes
     * from the history's arena), then the record's fields checked on the
     * row; the reason of a damaged one is the decoder's when it has one */
    if (xp__record_read_row(item, data, len, arr, &why) == 0)
        return 0;
    char desc[sizeof why.message + 64];
    snprintf(desc, sizeof desc,
             "the stored record of trial %lld is damaged "
             "(%s)",
             (long long)id, why.message);
    bson_t marked = BSON_INITIALIZER;
    xp__record_damaged(&marked, id, desc);
    int rc = xp__value_from_bson(item, &marked, NULL);
    bson_destroy(&marked);
    return rc;
}

/* The same for a page's record (checked, or NULL when damaged). */
static int s_history_add(const bson_t *doc, int64_t id, void *user)
{
    return s_history_add_bytes(doc ? bson_get_data(doc) : NULL,
                               doc ? doc->len : 0, id, user);
}

int xp_history(xp_experiment *ex, xp_value **out, xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    /* rows in one arena: a few large blocks, freed at once */
    xp_value *arr = xp__value_arena_array();
    xp__error_clear(err);
    if (xp__store_trials_each_bytes(ex->backend, s_history_add_bytes, arr,
                                    err) != 0) {
        if (err && err->code == XP_OK)
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "a stored trial record is damaged");
        xp_value_destroy(&arr);
        *out = NULL;
        return -1;
    }
    *out = arr;
    return 0;
}

int xp_history_query(xp_experiment *ex, const xp_query *q, xp_value **page,
                     int64_t *matched, xp_error_t *err)
{
    if (matched)
        *matched = 0;
    if (!ex || !page)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *page = NULL;
    xp__error_clear(err);
    xp_compiled_query cq;
    int rc = xp__query_compile(&cq, q, err);
    xp_value *arr = xp__value_arena_array();
    if (rc == 0)
        rc = xp__store_trials_query(ex->backend, &cq, s_history_add, arr,
                                    matched, err);
    if (rc != 0 && err && err->code == XP_OK)
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "a stored trial record is damaged");
    xp__query_clear(&cq);
    if (rc != 0)
        xp_value_destroy(&arr);
    *page = arr;
    return rc;
}

int xp_trial_parameters(xp_experiment *ex, int64_t trial_id, xp_value **out,
                        xp_error_t *err)
{
    xp_value *trial;
    if (xp_trial_get(ex, trial_id, &trial, err) != 0)
        return -1;
    const xp_value *params = xp_value_get(trial, XP_RECORD_PARAMETERS);
    *out = params ? xp_value_dup(params) : NULL;
    if (!*out) {
        *out = xp_value_new();
        xp_set_document(*out);
    }
    xp_value_destroy(&trial);
    return 0;
}

int xp_load_persisted(xp_experiment *ex, const char *step, int64_t trial_id,
                      xp_value **out, xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    if (xp_check_name("step", step, err) != 0 ||
        xp__check_trial_id(trial_id, err) != 0)
        return -1;
    xp_value *v = xp_value_new();
    if (xp__store_persisted_read(ex->backend, step, trial_id, v, err) != 0) {
        xp_value_destroy(&v);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- metrics */

struct xp_metric_table {
    size_t n_epochs, n_trials;
    int64_t *epochs; /* sorted, distinct */
    int64_t *trials;
    double *values; /* row-major: epoch x trial */
};

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Index of e in sorted epochs (present by construction). */
static size_t s_epoch_row(const xp_metric_table *t, int64_t e)
{
    size_t lo = 0, hi = t->n_epochs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->epochs[mid] < e)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int xp_load_metric(xp_experiment *ex, const char *name,
                   const int64_t *trial_ids, size_t n, xp_metric_table **out,
                   xp_error_t *err)
{
    if (!ex || !out || (n && !trial_ids))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment, trial ids or output");
    *out = NULL;
    if (xp_check_name("metric", name, err) != 0)
        return -1;
    if (n == 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no trial ids given for metric '%s'", name);
    xp_metric_points *points = bson_malloc0(n * sizeof *points);
    xp_metric_table *t = NULL;
    int64_t last = 0;
    int rc = -1;
    if (xp__store_last_id(ex->backend, &last, err) != 0)
        goto cleanup;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (xp__check_trial_id(trial_ids[i], err) != 0)
            goto cleanup;
        if (trial_ids[i] > last) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                      "trial %lld does not exist (last trial id is %lld)",
                      (long long)trial_ids[i], (long long)last);
            goto cleanup;
        }
        if (xp__store_metric_read(ex->backend, name, trial_ids[i], &points[i],
                                  err) != 0)
            goto cleanup;
        if (points[i].n == 0) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                      "metric '%s' was not saved in trial %lld", name,
                      (long long)trial_ids[i]);
            goto cleanup;
        }
        total += points[i].n;
    }
    t = bson_malloc0(sizeof *t);
    t->n_trials = n;
    t->trials = bson_malloc(n * sizeof *t->trials);
    memcpy(t->trials, trial_ids, n * sizeof *t->trials);
    t->epochs = bson_malloc(total * sizeof *t->epochs);
    for (size_t i = 0, k = 0; i < n; i++)
        for (size_t j = 0; j < points[i].n; j++)
            t->epochs[k++] = points[i].epochs[j];
    qsort(t->epochs, total, sizeof *t->epochs, s_cmp_i64);
    size_t distinct = 0;
    for (size_t k = 0; k < total; k++)
        if (distinct == 0 || t->epochs[distinct - 1] != t->epochs[k])
            t->epochs[distinct++] = t->epochs[k];
    t->n_epochs = distinct;
    t->values = bson_malloc(distinct * n * sizeof *t->values);
    for (size_t k = 0; k < distinct * n; k++)
        t->values[k] = NAN;
    /* A repeated epoch keeps the last value saved, as daskperiment does. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < points[i].n; j++)
            t->values[s_epoch_row(t, points[i].epochs[j]) * n + i] =
                points[i].values[j];
    *out = t;
    t = NULL;
    rc = 0;
cleanup:
    for (size_t i = 0; i < n; i++)
        xp__metric_points_clear(&points[i]);
    bson_free(points);
    xp_metric_table_destroy(&t);
    return rc;
}

void xp_metric_table_destroy(xp_metric_table **pt)
{
    if (!pt || !*pt)
        return;
    xp_metric_table *t = *pt;
    bson_free(t->epochs);
    bson_free(t->trials);
    bson_free(t->values);
    bson_free(t);
    *pt = NULL;
}

size_t xp_metric_table_epochs(const xp_metric_table *t)
{
    return t ? t->n_epochs : 0;
}

size_t xp_metric_table_trials(const xp_metric_table *t)
{
    return t ? t->n_trials : 0;
}

int64_t xp_metric_table_epoch(const xp_metric_table *t, size_t row)
{
    return t && row < t->n_epochs ? t->epochs[row] : 0;
}

int64_t xp_metric_table_trial(const xp_metric_table *t, size_t col)
{
    return t && col < t->n_trials ? t->trials[col] : 0;
}

double xp_metric_table_value(const xp_metric_table *t, size_t row, size_t col)
{
    if (!t || row >= t->n_epochs || col >= t->n_trials)
        return NAN;
    return t->values[row * t->n_trials + col];
}

/* ---------------------------------------------------------------- listing */

/* Experiments xp_experiments lists at most: a backend listing more is
 * refused rather than read into memory without end. */
#define S_EXPERIMENTS_MAX 100000

typedef struct {
    char **ids;
    size_t n, cap;
} s_id_list;

static int s_collect_id(const char *id, void *user)
{
    s_id_list *l = user;
    if (l->n == S_EXPERIMENTS_MAX)
        return -1;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ids = bson_realloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = bson_strdup(id);
    return 0;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int xp_experiments(const char *backend, xp_value **out, xp_error_t *err)
{
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no output pointer");
    *out = NULL;
    s_id_list l = {0};
    xp__error_clear(err);
    int rc = xp__store_experiments(backend, s_collect_id, &l, err);
    if (rc != 0 && l.n == S_EXPERIMENTS_MAX && (!err || err->code == XP_OK))
        xp__error(err, XP_DOMAIN_BACKEND, XP_EINVAL,
                  "the backend holds more than %d experiments",
                  S_EXPERIMENTS_MAX);
    if (rc == 0) {
        if (l.n)
            qsort(l.ids, l.n, sizeof *l.ids, s_cmp_str);
        xp_value *arr = xp_value_new();
        xp_set_array(arr);
        for (size_t i = 0; i < l.n; i++)
            if (i == 0 || strcmp(l.ids[i], l.ids[i - 1]) != 0)
                xp_set_string(xp_array_append(arr), l.ids[i]);
        *out = arr;
    }
    for (size_t i = 0; i < l.n; i++)
        bson_free(l.ids[i]);
    bson_free(l.ids);
    return rc == 0 ? 0 : -1;
}
