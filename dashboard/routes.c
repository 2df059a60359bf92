/* routes.c — the JSON API (docs/dashboard.md): the path after /api/ cut
 * into segments, each route reading one experiment through the public
 * libxp API (xp.h) on a shared read-only handle, and answering a document
 * or a one-line error. Nothing here writes to a store. */
#include "routes.h"

#include "handles.h"

#include <xp/xp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds of the query arguments (docs/dashboard.md#limits). */
#define S_LIMIT_DEFAULT 100
#define S_LIMIT_MAX 10000
#define S_OFFSET_MAX 1000000000000LL
#define S_FILTER_MAX 4096
#define S_SORT_MAX 1024
#define S_FIELDS_MAX 64
#define S_POINTS_DEFAULT 2000
#define S_POINTS_MAX 100000
#define S_SEGMENTS_MAX 8

struct xpd_routes {
    char *backend;
    char *shown; /* the backend for pages, its password masked */
    char **ids;  /* sorted; NULL: every experiment of the backend */
    size_t n_ids;
    xpd_handles *handles;
};

/* ---------------------------------------------------------------- setup */

static char *s_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* backend as pages show it: "local:DIR" for a directory, a URI with the
 * password of its user information replaced by "***". */
static char *s_shown_backend(const char *backend)
{
    const char *scheme_end = strstr(backend, "://");
    if (!scheme_end && strncmp(backend, "unix:", 5) != 0) {
        char *s = malloc(strlen(backend) + 7);
        if (s)
            sprintf(s, "local:%s", backend);
        return s;
    }
    const char *auth = scheme_end ? scheme_end + 3 : backend + 5;
    const char *at = strchr(auth, '@');
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return s_dup(backend);
    size_t head = (size_t)(colon + 1 - backend);
    char *s = malloc(head + 3 + strlen(at) + 1);
    if (s) {
        memcpy(s, backend, head);
        strcpy(s + head, "***");
        strcat(s, at);
    }
    return s;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int xpd_routes_new(xpd_routes **out, const char *backend,
                   const char *const *ids, size_t n, size_t max_open,
                   xp_error_t *err)
{
    *out = NULL;
    xpd_routes *r = calloc(1, sizeof *r);
    bool ok = r && (r->backend = s_dup(backend)) &&
              (r->shown = s_shown_backend(backend));
    if (ok && n) {
        ok = (r->ids = calloc(n, sizeof *r->ids)) != NULL;
        for (size_t i = 0; ok && i < n; i++, r->n_ids++)
            ok = (r->ids[i] = s_dup(ids[i])) != NULL;
        if (ok)
            qsort(r->ids, n, sizeof *r->ids, s_cmp_str);
    }
    if (!ok) {
        if (err)
            snprintf(err->message, sizeof err->message, "out of memory");
        xpd_routes_destroy(&r);
        return -1;
    }
    if (xpd_handles_new(&r->handles, backend, max_open, err) != 0) {
        xpd_routes_destroy(&r);
        return -1;
    }
    *out = r;
    return 0;
}

void xpd_routes_destroy(xpd_routes **pr)
{
    if (!pr || !*pr)
        return;
    xpd_routes *r = *pr;
    xpd_handles_destroy(&r->handles);
    for (size_t i = 0; i < r->n_ids; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->backend);
    free(r->shown);
    free(r);
    *pr = NULL;
}

/* ---------------------------------------------------------------- helpers */

/* The HTTP status for a library error. */
static int s_status(const xp_error_t *err)
{
    switch (err->code) {
    case XP_ENOTFOUND: return 404;
    case XP_EINVAL: return 400;
    case XP_ESTATE: return 503;
    default: return 500;
    }
}

static void s_fail(xpd_request *req, const xp_error_t *err)
{
    xpd_reply_error(req, s_status(err), "%s", err->message);
}

/* A whole decimal number within [min, max]. */
static bool s_parse_int(const char *text, int64_t min, int64_t max,
                        int64_t *out)
{
    if (!text || !*text || (text[0] != '-' && (text[0] < '0' || text[0] > '9')))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Query argument name as a number in [min, max], dflt when absent; false
 * after answering 400. */
static bool s_int_arg(xpd_request *req, const char *name, int64_t min,
                      int64_t max, int64_t dflt, int64_t *out)
{
    const char *text = xpd_request_arg(req, name);
    *out = dflt;
    if (!text || s_parse_int(text, min, max, out))
        return true;
    xpd_reply_error(req, 400,
                    "%s must be a whole number from %" PRId64 " to %" PRId64
                    " (got '%.40s')",
                    name, min, max, text);
    return false;
}

/* Query argument name as text of at most max bytes (NULL when absent);
 * false after answering 400. */
static bool s_text_arg(xpd_request *req, const char *name, size_t max,
                       const char **out)
{
    *out = xpd_request_arg(req, name);
    if (!*out || strlen(*out) <= max)
        return true;
    xpd_reply_error(req, 400, "%s is longer than %zu bytes", name, max);
    return false;
}

/* The trial id of a path segment; false after answering 404. */
static bool s_trial_id(xpd_request *req, const char *seg, int64_t *id)
{
    if (s_parse_int(seg, 1, INT64_MAX, id) && seg[0] != '0')
        return true;
    xpd_reply_error(req, 404, "no trial '%.40s'", seg);
    return false;
}

static bool s_allowed(const xpd_routes *r, const char *id)
{
    return !r->ids ||
           bsearch(&id, r->ids, r->n_ids, sizeof *r->ids, s_cmp_str) != NULL;
}

/* Names of the elements of array arr of documents (their "name"). */
static void s_names(xp_value *into, const xp_value *arr)
{
    xp_set_array(into);
    for (size_t i = 0; i < xp_value_count(arr); i++) {
        const char *name =
            xp_as_string(xp_value_get(xp_value_at(arr, i), "name"), NULL);
        if (name)
            xp_set_string(xp_array_append(into), name);
    }
}

static xp_value *s_doc(void)
{
    xp_value *v = xp_value_new();
    xp_set_document(v);
    return v;
}

static void s_reply_owned(xpd_request *req, xp_value **v)
{
    xpd_reply_json(req, 200, *v);
    xp_value_destroy(v);
}

/* ---------------------------------------------------------------- list */

/* One entry of the experiment list: its last trial id, or why it cannot
 * be read. */
static void s_list_entry(xpd_routes *r, const char *id, xp_value *into)
{
    xp_set_document(into);
    xp_set_string(xp_document_set(into, "id"), id);
    xp_error_t err = {0};
    xp_experiment *ex = xpd_handles_acquire(r->handles, id, &err);
    int64_t last = 0;
    if (ex && xp_last_trial_id(ex, &last, &err) == 0)
        xp_set_int64(xp_document_set(into, "last_trial_id"), last);
    else
        xp_set_string(xp_document_set(into, "error"), err.message);
    xpd_handles_release(r->handles, ex);
}

static void s_experiments(xpd_routes *r, xpd_request *req)
{
    xp_value *ids = NULL;
    xp_error_t err = {0};
    if (!r->ids && xp_experiments(r->backend, &ids, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    size_t n = r->ids ? r->n_ids : xp_value_count(ids);
    xp_value *doc = s_doc();
    xp_set_string(xp_document_set(doc, "backend"), r->shown);
    xp_value *list = xp_document_set(doc, "experiments");
    xp_set_array(list);
    for (size_t i = 0; i < n; i++)
        s_list_entry(
            r, r->ids ? r->ids[i] : xp_as_string(xp_value_at(ids, i), NULL),
            xp_array_append(list));
    xp_value_destroy(&ids);
    s_reply_owned(req, &doc);
}

/* ---------------------------------------------------------------- experiment
 */

/* GET /api/experiments/ID: the graph's names, from the last trial's code
 * (empty before the first trial). */
static void s_experiment(xpd_request *req, xp_experiment *ex)
{
    int64_t last = 0;
    xp_error_t err = {0};
    if (xp_last_trial_id(ex, &last, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *graph = NULL;
    if (last > 0 && xp_graph_get(ex, 0, &graph, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_doc();
    xp_set_string(xp_document_set(doc, "id"), xp_experiment_id(ex));
    xp_set_string(xp_document_set(doc, "backend"), xp_experiment_backend(ex));
    xp_set_int64(xp_document_set(doc, "last_trial_id"), last);
    const xp_value *steps = xp_value_get(graph, "steps");
    s_names(xp_document_set(doc, "parameters"),
            xp_value_get(graph, "parameters"));
    s_names(xp_document_set(doc, "steps"), steps);
    xp_value *result = xp_document_set(doc, "result");
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const xp_value *s = xp_value_at(steps, i);
        if (xp_as_bool(xp_value_get(s, "result")))
            xp_set_value(result, xp_value_get(s, "name"));
    }
    xp_value_destroy(&graph);
    s_reply_owned(req, &doc);
}

/* ---------------------------------------------------------------- history */

typedef struct {
    char names[S_FIELDS_MAX][129];
    size_t n;
} s_fields;

/* fields=a,b: the top-level fields kept; false after answering 400. */
static bool s_parse_fields(xpd_request *req, const char *text, s_fields *f)
{
    f->n = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof f->names[0] || f->n == S_FIELDS_MAX) {
            xpd_reply_error(req, 400,
                            "fields: a comma-separated list of up to %d "
                            "names of up to 128 characters",
                            S_FIELDS_MAX);
            return false;
        }
        memcpy(f->names[f->n], p, len);
        f->names[f->n++][len] = '\0';
        p += len + (p[len] == ',');
    }
    return true;
}

static bool s_field_kept(const s_fields *f, const char *key)
{
    if (strcmp(key, "trial_id") == 0)
        return true;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], key) == 0)
            return true;
    return false;
}

/* The trials of page with only the fields f keeps, into out (array). */
static void s_keep_fields(const xp_value *page, const s_fields *f,
                          xp_value *out)
{
    xp_set_array(out);
    for (size_t i = 0; i < xp_value_count(page); i++) {
        const xp_value *t = xp_value_at(page, i);
        xp_value *kept = xp_array_append(out);
        xp_set_document(kept);
        for (size_t k = 0; k < xp_value_count(t); k++)
            if (s_field_kept(f, xp_value_key_at(t, k)))
                xp_set_value(xp_document_set(kept, xp_value_key_at(t, k)),
                             xp_value_at(t, k));
    }
}

static void s_history(xpd_request *req, xp_experiment *ex)
{
    xp_query q = XP_QUERY_INIT;
    int64_t last = 0, matched = 0;
    const char *fields_text = NULL;
    s_fields fields;
    if (!s_text_arg(req, "filter", S_FILTER_MAX, &q.filter) ||
        !s_text_arg(req, "sort", S_SORT_MAX, &q.sort) ||
        !s_text_arg(req, "fields", 8192, &fields_text) ||
        !s_int_arg(req, "offset", 0, S_OFFSET_MAX, 0, &q.offset) ||
        !s_int_arg(req, "limit", 1, S_LIMIT_MAX, S_LIMIT_DEFAULT, &q.limit) ||
        (fields_text && !s_parse_fields(req, fields_text, &fields)))
        return;
    xp_value *page = NULL;
    xp_error_t err = {0};
    if (xp_last_trial_id(ex, &last, &err) != 0 ||
        xp_history_query(ex, &q, &page, &matched, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_doc();
    xp_set_int64(xp_document_set(doc, "matched"), matched);
    xp_set_int64(xp_document_set(doc, "offset"), q.offset);
    xp_set_int64(xp_document_set(doc, "limit"), q.limit);
    xp_set_int64(xp_document_set(doc, "last_trial_id"), last);
    if (fields_text)
        s_keep_fields(page, &fields, xp_document_set(doc, "trials"));
    else
        xp_set_value(xp_document_set(doc, "trials"), page);
    xp_value_destroy(&page);
    s_reply_owned(req, &doc);
}

/* ---------------------------------------------------------------- graph */

static void s_graph(xpd_request *req, xp_experiment *ex, int64_t trial)
{
    const char *format = xpd_request_arg(req, "format");
    xp_error_t err = {0};
    if (format && strcmp(format, "dot") == 0) {
        char *dot = NULL;
        if (xp_graph_dot(ex, trial, &dot, &err) != 0)
            s_fail(req, &err);
        else
            xpd_reply(req, 200, "text/vnd.graphviz; charset=utf-8", dot,
                      strlen(dot));
        return;
    }
    if (format && strcmp(format, "json") != 0) {
        xpd_reply_error(req, 400, "format must be json or dot");
        return;
    }
    xp_value *g = NULL;
    if (xp_graph_get(ex, trial, &g, &err) != 0)
        s_fail(req, &err);
    else
        s_reply_owned(req, &g);
}

/* ---------------------------------------------------------------- diff */

static void s_diff(xpd_request *req, xp_experiment *ex)
{
    int64_t a = 0, b = 0;
    if (!s_int_arg(req, "a", 1, INT64_MAX, 0, &a) ||
        !s_int_arg(req, "b", 1, INT64_MAX, 0, &b))
        return;
    if (a == 0 || b == 0) {
        xpd_reply_error(req, 400, "diff needs trials a and b (?a=N&b=M)");
        return;
    }
    xp_value *d = NULL;
    xp_error_t err = {0};
    if (xp_trial_diff(ex, a, b, &d, &err) != 0)
        s_fail(req, &err);
    else
        s_reply_owned(req, &d);
}

/* ---------------------------------------------------------------- trials */

/* Steps of trial's code marked persisted, into out (array). */
static void s_persisted_names(xp_experiment *ex, int64_t trial, xp_value *out)
{
    xp_set_array(out);
    xp_value *code = NULL;
    if (xp_code_get(ex, trial, &code, NULL) != 0)
        return; /* no code recorded: nothing to name */
    const xp_value *steps = xp_value_get(code, "steps");
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const xp_value *s = xp_value_at(steps, i);
        if (xp_as_bool(xp_value_get(s, "persisted")))
            xp_set_value(xp_array_append(out), xp_value_get(s, "name"));
    }
    xp_value_destroy(&code);
}

static void s_trial(xpd_request *req, xp_experiment *ex, int64_t trial)
{
    xp_value *doc = NULL, *metrics = NULL;
    xp_error_t err = {0};
    if (xp_trial_get(ex, trial, &doc, &err) != 0 ||
        xp_metric_names(ex, trial, &metrics, &err) != 0) {
        xp_value_destroy(&doc);
        s_fail(req, &err);
        return;
    }
    xp_set_value(xp_document_set(doc, "metrics"), metrics);
    xp_value_destroy(&metrics);
    s_persisted_names(ex, trial, xp_document_set(doc, "persisted"));
    s_reply_owned(req, &doc);
}

static void s_code(xpd_request *req, xp_experiment *ex, int64_t trial)
{
    xp_value *code = NULL;
    char *text = NULL;
    xp_error_t err = {0};
    if (xp_code_get(ex, trial, &code, &err) != 0 ||
        xp_code_text(ex, trial, &text, &err) != 0) {
        xp_value_destroy(&code);
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_doc();
    xp_set_value(xp_document_set(doc, "code"), code);
    if (xp_set_string(xp_document_set(doc, "text"), text) != 0)
        xp_set_null(xp_document_set(doc, "text"));
    xp_free(text);
    xp_value_destroy(&code);
    s_reply_owned(req, &doc);
}

static void s_environment(xpd_request *req, xp_experiment *ex, int64_t trial)
{
    xp_value *env = NULL;
    xp_error_t err = {0};
    if (xp_environment_get(ex, trial, NULL, &env, &err) != 0)
        s_fail(req, &err);
    else
        s_reply_owned(req, &env);
}

static void s_persisted(xpd_request *req, xp_experiment *ex, int64_t trial,
                        const char *step)
{
    xp_value *v = NULL;
    xp_error_t err = {0};
    if (xp_load_persisted(ex, step, trial, &v, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_doc();
    xp_set_string(xp_document_set(doc, "step"), step);
    xp_set_value(xp_document_set(doc, "value"), v);
    xp_value_destroy(&v);
    s_reply_owned(req, &doc);
}

/* The series as {name, trial, total, downsampled, epochs, values}. */
static xp_value *s_series_doc(const char *name, int64_t trial,
                              const xp_series *s)
{
    xp_value *doc = s_doc();
    xp_set_string(xp_document_set(doc, "name"), name);
    xp_set_int64(xp_document_set(doc, "trial"), trial);
    xp_set_int64(xp_document_set(doc, "total"), (int64_t)s->total);
    xp_set_bool(xp_document_set(doc, "downsampled"), s->downsampled);
    xp_value *epochs = xp_document_set(doc, "epochs");
    xp_set_array(epochs);
    for (size_t i = 0; i < s->n; i++)
        xp_set_int64(xp_array_append(epochs), s->epochs[i]);
    xp_value *values = xp_document_set(doc, "values");
    xp_set_array(values);
    for (size_t i = 0; i < s->n; i++)
        xp_set_double(xp_array_append(values), s->values[i]);
    return doc;
}

static void s_metric(xpd_request *req, xp_experiment *ex, int64_t trial,
                     const char *name)
{
    int64_t points = 0, from = 0, to = 0, full = 0;
    if (!s_int_arg(req, "points", 1, S_POINTS_MAX, S_POINTS_DEFAULT, &points) ||
        !s_int_arg(req, "from", INT64_MIN, INT64_MAX, INT64_MIN, &from) ||
        !s_int_arg(req, "to", INT64_MIN, INT64_MAX, INT64_MAX, &to) ||
        !s_int_arg(req, "full", 0, 1, 0, &full))
        return;
    xp_series *s = NULL;
    xp_error_t err = {0};
    if (xp_metric_series(ex, name, trial, from, to, full ? 0 : (size_t)points,
                         &s, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_series_doc(name, trial, s);
    xp_series_destroy(&s);
    s_reply_owned(req, &doc);
}

/* The log of one command step: {step, log}. */
static void s_step_log(xpd_request *req, xp_experiment *ex, int64_t trial,
                       const char *step)
{
    xp_value *log = NULL;
    xp_error_t err = {0};
    if (xp_step_log(ex, trial, step, &log, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_doc();
    xp_set_string(xp_document_set(doc, "step"), step);
    xp_set_value(xp_document_set(doc, "log"), log);
    xp_value_destroy(&log);
    s_reply_owned(req, &doc);
}

/* Every command step's log, in the code's step order: {trial, logs:
 * [{step, log}]} (steps without a log are left out). */
static void s_logs(xpd_request *req, xp_experiment *ex, int64_t trial)
{
    xp_value *code = NULL;
    xp_error_t err = {0};
    if (xp_code_get(ex, trial, &code, &err) != 0) {
        s_fail(req, &err);
        return;
    }
    xp_value *doc = s_doc();
    xp_set_int64(xp_document_set(doc, "trial"), trial);
    xp_value *logs = xp_document_set(doc, "logs");
    xp_set_array(logs);
    const xp_value *steps = xp_value_get(code, "steps");
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const char *step =
            xp_as_string(xp_value_get(xp_value_at(steps, i), "name"), NULL);
        xp_value *log = NULL;
        if (!step || xp_step_log(ex, trial, step, &log, &err) != 0) {
            if (step && err.code != XP_ENOTFOUND) {
                xp_value_destroy(&code);
                xp_value_destroy(&doc);
                s_fail(req, &err);
                return;
            }
            continue;
        }
        xp_value *item = xp_array_append(logs);
        xp_set_document(item);
        xp_set_string(xp_document_set(item, "step"), step);
        xp_set_value(xp_document_set(item, "log"), log);
        xp_value_destroy(&log);
    }
    xp_value_destroy(&code);
    s_reply_owned(req, &doc);
}

/* /api/experiments/ID/trials/N[/...]: seg[0] is N. */
static void s_trial_routes(xpd_request *req, xp_experiment *ex, char **seg,
                           size_t n)
{
    int64_t trial;
    if (!s_trial_id(req, seg[0], &trial))
        return;
    if (n == 1)
        s_trial(req, ex, trial);
    else if (n == 2 && strcmp(seg[1], "code") == 0)
        s_code(req, ex, trial);
    else if (n == 2 && strcmp(seg[1], "environment") == 0)
        s_environment(req, ex, trial);
    else if (n == 2 && strcmp(seg[1], "graph") == 0)
        s_graph(req, ex, trial);
    else if (n == 3 && strcmp(seg[1], "persisted") == 0)
        s_persisted(req, ex, trial, seg[2]);
    else if (n == 3 && strcmp(seg[1], "metrics") == 0)
        s_metric(req, ex, trial, seg[2]);
    else if (n == 2 && strcmp(seg[1], "logs") == 0)
        s_logs(req, ex, trial);
    else if (n == 3 && strcmp(seg[1], "logs") == 0)
        s_step_log(req, ex, trial, seg[2]);
    else
        xpd_reply_error(req, 404, "no such route");
}

/* ---------------------------------------------------------------- dispatch */

/* /api/experiments/ID[/...]: seg[0] is ID. */
static void s_experiment_routes(xpd_routes *r, xpd_request *req, char **seg,
                                size_t n)
{
    const char *id = seg[0];
    xp_error_t err = {0};
    xp_experiment *ex = NULL;
    if (!s_allowed(r, id) || xp_check_id(id, NULL) != 0) {
        xpd_reply_error(req, 404, "no experiment '%.64s'", id);
        return;
    }
    if (!(ex = xpd_handles_acquire(r->handles, id, &err))) {
        s_fail(req, &err);
        return;
    }
    if (n == 1)
        s_experiment(req, ex);
    else if (n == 2 && strcmp(seg[1], "history") == 0)
        s_history(req, ex);
    else if (n == 2 && strcmp(seg[1], "graph") == 0)
        s_graph(req, ex, 0);
    else if (n == 2 && strcmp(seg[1], "diff") == 0)
        s_diff(req, ex);
    else if (n >= 3 && strcmp(seg[1], "trials") == 0)
        s_trial_routes(req, ex, seg + 2, n - 2);
    else
        xpd_reply_error(req, 404, "no such route");
    xpd_handles_release(r->handles, ex);
}

void xpd_routes_api(xpd_routes *r, xpd_request *req, const char *path)
{
    char buf[XPD_URI_MAX + 1];
    char *seg[S_SEGMENTS_MAX];
    size_t n = 0, len = strlen(path);
    if (len > XPD_URI_MAX) {
        xpd_reply_error(req, 414, "request target longer than 8 KiB");
        return;
    }
    memcpy(buf, path, len + 1);
    /* Segments as given: an empty one (a trailing '/', '//') or too many
     * match no route. */
    for (char *p = buf; n < S_SEGMENTS_MAX;) {
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    bool empty = strchr(seg[n - 1], '/') != NULL;
    for (size_t i = 0; i < n; i++)
        empty |= seg[i][0] == '\0';
    if (empty || strcmp(seg[0], "experiments") != 0)
        xpd_reply_error(req, 404, "no such route");
    else if (n == 1)
        s_experiments(r, req);
    else
        s_experiment_routes(r, req, seg + 1, n - 1);
}
