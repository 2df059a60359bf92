/* graph_view.c — the experiment's graph for people and pages: parameters
 * and steps with their inputs, from a code document, as a document
 * (xp_graph_get) and as Graphviz DOT (xp_graph_dot); for a trial, what
 * became of each step and where a scheduler's worker ran it. The status
 * rules are docs/guide.md's ("The graph"). */
#include "xp/xp.h"

#include "code_doc.h"
#include "experiment.h"
#include "store/record.h"
#include "store/store.h"
#include "util/error.h"
#include "util/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_NO_STATUS = 0, /* the definition alone */
    S_SUCCEEDED,
    S_FAILED,
    S_NOT_RUN,
    S_RUNNING,
} s_status;

static const char *const s_status_names[] = {
    [S_NO_STATUS] = "",      [S_SUCCEEDED] = "succeeded", [S_FAILED] = "failed",
    [S_NOT_RUN] = "not run", [S_RUNNING] = "running",
};

/* Graphviz colour names, by status. */
static const char *const s_status_colors[] = {
    [S_NO_STATUS] = "white", [S_SUCCEEDED] = "palegreen",
    [S_FAILED] = "salmon",   [S_NOT_RUN] = "lightgrey",
    [S_RUNNING] = "gold",
};

/* What trial.c keeps of a step name in a failure description
 * ("%.100s: message"). */
#define S_DESCRIPTION_NAME_MAX 100

typedef struct {
    const char *name;
    size_t index;
} s_named;

/* A graph read from a code document, with a trial's outcome. */
typedef struct {
    bson_t code, record;
    bool has_code, has_record;
    xp_code_def def;
    int64_t trial; /* 0: the definition alone, no statuses */
    xp_trial_record rec;
    s_named *by_name; /* steps sorted by name */
    s_status *status; /* by step */
    xp_record_step *where;
    bool *ran_remotely; /* where[i] holds what the record says */
    size_t failed;      /* the failed step, or XP_CODE_NONE */
} s_graph;

static void s_graph_clear(s_graph *g)
{
    xp__code_def_clear(&g->def);
    if (g->has_code)
        bson_destroy(&g->code);
    if (g->has_record)
        bson_destroy(&g->record);
    bson_free(g->by_name);
    bson_free(g->status);
    bson_free(g->where);
    bson_free(g->ran_remotely);
}

/* ---------------------------------------------------------------- loading */

/* The record of trial and the code it ran. */
static int s_load_trial(xp_experiment *ex, s_graph *g, int64_t trial,
                        xp_error_t *err)
{
    if (xp__store_trial_get(ex->backend, trial, &g->record, err) != 0)
        return -1;
    g->has_record = true;
    if (xp__record_decode(&g->record, &g->rec, err) != 0)
        return -1;
    if (!g->rec.code_hash || !g->rec.code_hash[0])
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                         "trial %lld has no code recorded", (long long)trial);
    if (xp__store_content_get(ex->backend, g->rec.code_hash, &g->code, err) !=
        0)
        return -1;
    g->has_code = true;
    return 0;
}

/* trial_id 0: the definition on this handle, else the last trial's. */
static int s_load_code(xp_experiment *ex, s_graph *g, int64_t trial_id,
                       xp_error_t *err)
{
    if (trial_id != 0 && xp__check_trial_id(trial_id, err) != 0)
        return -1;
    if (trial_id > 0) {
        g->trial = trial_id;
        return s_load_trial(ex, g, trial_id, err);
    }
    pthread_mutex_lock(&ex->lock);
    bool defined = ex->n_nodes > 0;
    if (defined) {
        bson_init(&g->code);
        xp__code_doc_encode(ex, &g->code);
        g->has_code = true;
    }
    pthread_mutex_unlock(&ex->lock);
    if (defined)
        return 0;
    int64_t last = 0;
    if (xp__store_last_id(ex->backend, &last, err) != 0)
        return -1;
    if (last < 1)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                         "experiment '%s' has no steps registered and no "
                         "trials",
                         ex->id);
    return s_load_trial(ex, g, last, err);
}

static int s_cmp_named(const void *a, const void *b)
{
    return strcmp(((const s_named *)a)->name, ((const s_named *)b)->name);
}

/* The index of the step called name, or XP_CODE_NONE. */
static size_t s_step_index(const s_graph *g, const char *name)
{
    s_named key = {name, 0};
    const s_named *hit = bsearch(&key, g->by_name, g->def.n_steps,
                                 sizeof *g->by_name, s_cmp_named);
    return hit ? hit->index : XP_CODE_NONE;
}

/* ---------------------------------------------------------------- statuses */

static void s_note_where(const char *step, const xp_record_step *info,
                         void *user)
{
    s_graph *g = user;
    size_t i = s_step_index(g, step);
    if (i == XP_CODE_NONE)
        return;
    g->where[i] = *info;
    g->ran_remotely[i] = true;
}

/* The step a failure description names ("STEP: message", as trial.c
 * writes a step's failure), or XP_CODE_NONE: the trial then failed after
 * its steps (saving metrics, storing the result). */
static size_t s_failed_step(const s_graph *g)
{
    const char *d = g->rec.description;
    const char *colon = d ? strstr(d, ": ") : NULL;
    size_t len = colon ? (size_t)(colon - d) : 0;
    if (len == 0 || len > XP_NAME_MAX)
        return XP_CODE_NONE;
    char name[XP_NAME_MAX + 1];
    memcpy(name, d, len);
    name[len] = '\0';
    size_t i = s_step_index(g, name);
    if (i != XP_CODE_NONE || len != S_DESCRIPTION_NAME_MAX)
        return i;
    for (size_t k = 0; k < g->def.n_steps; k++)
        if (strncmp(g->def.steps[k].name, name, len) == 0)
            return k;
    return XP_CODE_NONE;
}

/* A failed trial: its failed step, every step upstream of it (a step
 * starts only once all its inputs succeeded) and every step a worker
 * reported on succeeded; the others did not run. Without a failed step
 * every step the result needs ran. */
static void s_failed_statuses(s_graph *g, const bool *needed)
{
    g->failed = s_failed_step(g);
    bool *upstream = xp__code_def_upstream(&g->def, g->failed);
    for (size_t i = 0; i < g->def.n_steps; i++) {
        bool ran = g->failed == XP_CODE_NONE
                       ? needed[i]
                       : upstream[i] || g->ran_remotely[i];
        g->status[i] = i == g->failed ? S_FAILED
                       : ran          ? S_SUCCEEDED
                                      : S_NOT_RUN;
    }
    bson_free(upstream);
}

static void s_statuses(s_graph *g)
{
    size_t n = g->def.n_steps ? g->def.n_steps : 1;
    g->status = bson_malloc0(n * sizeof *g->status);
    g->where = bson_malloc0(n * sizeof *g->where);
    g->ran_remotely = bson_malloc0(n * sizeof *g->ran_remotely);
    g->failed = XP_CODE_NONE;
    if (g->trial == 0)
        return;
    xp__record_steps_each(g->rec.steps, s_note_where, g);
    bool *needed = xp__code_def_upstream(&g->def, g->def.result);
    if (g->rec.status == XP_STATUS_FAILED) {
        s_failed_statuses(g, needed);
        bson_free(needed);
        return;
    }
    for (size_t i = 0; i < g->def.n_steps; i++) {
        s_status st = S_NOT_RUN;
        if (g->rec.status == XP_STATUS_SUCCEEDED)
            st = needed[i] ? S_SUCCEEDED : S_NOT_RUN;
        else if (g->ran_remotely[i])
            st = S_SUCCEEDED;
        else if (g->rec.status == XP_STATUS_RUNNING && needed[i])
            st = S_RUNNING;
        g->status[i] = st;
    }
    bson_free(needed);
}

static int s_graph_load(xp_experiment *ex, int64_t trial_id, s_graph *g,
                        xp_error_t *err)
{
    memset(g, 0, sizeof *g);
    g->def.result = XP_CODE_NONE;
    if (!ex)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment");
    if (s_load_code(ex, g, trial_id, err) != 0 ||
        xp__code_doc_decode(&g->def, &g->code, err) != 0)
        return -1;
    size_t n = g->def.n_steps;
    g->by_name = bson_malloc0((n ? n : 1) * sizeof *g->by_name);
    for (size_t i = 0; i < n; i++)
        g->by_name[i] = (s_named){g->def.steps[i].name, i};
    qsort(g->by_name, n, sizeof *g->by_name, s_cmp_named);
    s_statuses(g);
    return 0;
}

/* The name of node index i (parameters first, then steps). */
static const char *s_node_name(const xp_code_def *def, size_t i)
{
    return i < def->n_params ? def->params[i].name
                             : def->steps[i - def->n_params].name;
}

/* ---------------------------------------------------------------- document */

static void s_doc_params(const s_graph *g, xp_value *doc)
{
    xp_value *params = xp_document_set(doc, "parameters");
    xp_set_array(params);
    for (size_t i = 0; i < g->def.n_params; i++) {
        xp_value *p = xp_array_append(params);
        xp_set_document(p);
        xp_set_string(xp_document_set(p, "name"), g->def.params[i].name);
        if (g->def.params[i].def)
            xp_set_value(xp_document_set(p, "default"), g->def.params[i].def);
    }
}

static void s_doc_where(const xp_record_step *w, xp_value *step)
{
    xp_set_string(xp_document_set(step, "host"), w->host);
    xp_set_string(xp_document_set(step, "worker"), w->worker);
    xp_set_int64(xp_document_set(step, "attempt"), w->attempt);
    xp_set_double(xp_document_set(step, "elapsed"), w->elapsed);
    if (!*w->job_id)
        return;
    xp_value *job = xp_document_set(step, "job");
    xp_set_document(job);
    xp_set_string(xp_document_set(job, "id"), w->job_id);
    if (w->job_index >= 0)
        xp_set_int64(xp_document_set(job, "array_index"), w->job_index);
    if (*w->job_node)
        xp_set_string(xp_document_set(job, "node"), w->job_node);
}

static void s_doc_step(const s_graph *g, size_t i, xp_value *step)
{
    const xp_code_step *s = &g->def.steps[i];
    xp_set_document(step);
    xp_set_string(xp_document_set(step, "name"), s->name);
    xp_value *inputs = xp_document_set(step, "inputs");
    xp_set_array(inputs);
    for (size_t k = 0; k < s->n_inputs; k++)
        xp_set_string(xp_array_append(inputs),
                      s_node_name(&g->def, s->inputs[k]));
    xp_set_bool(xp_document_set(step, "persisted"), s->persisted);
    xp_set_bool(xp_document_set(step, "result"), i == g->def.result);
    if (g->trial == 0)
        return;
    xp_set_string(xp_document_set(step, "status"),
                  s_status_names[g->status[i]]);
    if (g->ran_remotely[i])
        s_doc_where(&g->where[i], step);
}

int xp_graph_get(xp_experiment *ex, int64_t trial_id, xp_value **out,
                 xp_error_t *err)
{
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "missing output");
    *out = NULL;
    s_graph g;
    if (s_graph_load(ex, trial_id, &g, err) != 0) {
        s_graph_clear(&g);
        return -1;
    }
    xp_value *doc = xp_value_new();
    xp_set_document(doc);
    s_doc_params(&g, doc);
    xp_value *steps = xp_document_set(doc, "steps");
    xp_set_array(steps);
    for (size_t i = 0; i < g.def.n_steps; i++)
        s_doc_step(&g, i, xp_array_append(steps));
    s_graph_clear(&g);
    *out = doc;
    return 0;
}

/* ---------------------------------------------------------------- DOT */

/* text as a DOT quoted string. Graphviz reads labels and tooltips as
 * escStrings: a backslash escapes, so stored text keeps its backslashes
 * doubled, its quotes escaped, its newlines as \n and other control
 * characters as blanks. */
static void s_dot_quoted(bson_string_t *s, const char *text)
{
    bson_string_append_c(s, '"');
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            bson_string_append_c(s, '\\');
            bson_string_append_c(s, (char)c);
        } else if (c == '\n') {
            bson_string_append(s, "\\n");
        } else if (c < 0x20 || c == 0x7f) {
            bson_string_append_c(s, ' ');
        } else {
            bson_string_append_c(s, (char)c);
        }
    }
    bson_string_append_c(s, '"');
}

/* The tooltip of step i, or NULL for none (caller frees). */
static char *s_dot_tooltip(const s_graph *g, size_t i)
{
    bson_string_t *t = bson_string_new(NULL);
    if (g->ran_remotely[i]) {
        const xp_record_step *w = &g->where[i];
        bson_string_append_printf(
            t, "host: %s\nworker: %s\nattempt: %lld\nelapsed: %.3f s", w->host,
            w->worker, (long long)w->attempt, w->elapsed);
        if (*w->job_id)
            bson_string_append_printf(t, "\njob: %s", w->job_id);
        if (*w->job_id && w->job_index >= 0)
            bson_string_append_printf(t, "_%lld", (long long)w->job_index);
        if (*w->job_id && *w->job_node)
            bson_string_append_printf(t, " on %s", w->job_node);
    }
    if (i == g->failed && g->rec.description)
        bson_string_append_printf(t, "%serror: %s", t->len ? "\n" : "",
                                  g->rec.description);
    bool empty = t->len == 0;
    char *text = bson_string_free(t, empty);
    return empty ? NULL : text;
}

static void s_dot_step(bson_string_t *s, const s_graph *g, size_t i)
{
    const xp_code_step *step = &g->def.steps[i];
    bool result = i == g->def.result, trial = g->trial > 0;
    bson_string_append(s, "  ");
    s_dot_quoted(s, step->name);
    bson_string_append(s, " [shape=box");
    if (step->persisted)
        bson_string_append(s, ", peripheries=2");
    if (result || trial)
        bson_string_append_printf(s, ", style=\"%s\"",
                                  !trial   ? "bold"
                                  : result ? "filled,bold"
                                           : "filled");
    if (trial) {
        bson_string_append_printf(s, ", fillcolor=%s",
                                  s_status_colors[g->status[i]]);
        char *tip = s_dot_tooltip(g, i);
        if (tip) {
            bson_string_append(s, ", tooltip=");
            s_dot_quoted(s, tip);
            bson_free(tip);
        }
    }
    bson_string_append(s, "];\n");
}

static void s_dot_edges(bson_string_t *s, const s_graph *g)
{
    for (size_t i = 0; i < g->def.n_steps; i++) {
        const xp_code_step *step = &g->def.steps[i];
        for (size_t k = 0; k < step->n_inputs; k++) {
            bson_string_append(s, "  ");
            s_dot_quoted(s, s_node_name(&g->def, step->inputs[k]));
            bson_string_append(s, " -> ");
            s_dot_quoted(s, step->name);
            bson_string_append(s, ";\n");
        }
    }
}

static char *s_dot(const s_graph *g, const char *id)
{
    bson_string_t *s = bson_string_new("digraph ");
    s_dot_quoted(s, id);
    bson_string_append(s,
                       " {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
    if (g->trial > 0) {
        char label[64];
        snprintf(label, sizeof label, "trial %lld: %s", (long long)g->trial,
                 xp__trial_status_name(g->rec.status));
        bson_string_append(s, "  labelloc=t;\n  label=");
        s_dot_quoted(s, label);
        bson_string_append(s, ";\n");
    }
    for (size_t i = 0; i < g->def.n_params; i++) {
        bson_string_append(s, "  ");
        s_dot_quoted(s, g->def.params[i].name);
        bson_string_append(s, " [shape=ellipse];\n");
    }
    for (size_t i = 0; i < g->def.n_steps; i++)
        s_dot_step(s, g, i);
    s_dot_edges(s, g);
    bson_string_append(s, "}\n");
    return bson_string_free(s, false);
}

int xp_graph_dot(xp_experiment *ex, int64_t trial_id, char **out,
                 xp_error_t *err)
{
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "missing output");
    *out = NULL;
    s_graph g;
    int rc = s_graph_load(ex, trial_id, &g, err);
    if (rc == 0)
        *out = s_dot(&g, ex->id);
    s_graph_clear(&g);
    return rc;
}
