/* trial.c — the trial lifecycle, one code path for every executor: resolve
 * parameters, allocate the id and record the trial, hand out ready steps
 * and take their outcomes, then record result or failure with metrics,
 * persisted values and step hashes. xp_compute drives it with the
 * in-process thread pool; xp-scheduler drives it with remote workers. */
#include "trial.h"

#include "capture/capture.h"
#include "capture/snapshot.h"
#include "command/run.h"
#include "experiment.h"
#include "memo.h"
#include "step.h"
#include "store/record.h"
#include "store/store.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/names.h"
#include "util/rng.h"
#include "util/sys.h"
#include "value.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct xp_trial {
    xp_experiment *ex;
    int64_t id;
    uint64_t seed;
    xp_trial_record rec;  /* the record as started, borrowing from: */
    bson_t *params;       /* its parameters (heap: bson_t wants 128-byte
                           * alignment, which a malloc'd struct lacks) */
    bson_t *source;       /* a resumed trial's stored record */
    char *scheduler;      /* a queued trial's scheduler */
    double t0;            /* monotonic start of execution */
    xp_value **outputs;   /* by node index; parameters hold their value */
    xp_step_hash *hashes; /* by node index, valid where hashed[] */
    bool *hashed;
    size_t *pending; /* by node index: step inputs not yet computed */
    /* Execution state, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on every step outcome */
    xp_node **ready;
    size_t n_ready;
    size_t done, inflight;
    /* In-process executor: the pool lending threads, how many it may
     * lend, and the runner tasks given to it (queued, or taking steps). */
    xp_pool *pool;
    size_t helpers, runners, runners_queued;
    bool failed;
    char *failure; /* "step: message" once failed (heap: queued trials
                    * in a scheduler must stay small) */
    bool spooled;  /* finished, and kept in the spool to be written */
    /* Metrics saved by steps, under metrics_lock. */
    pthread_mutex_t metrics_lock;
    xp_metric_set metrics;
    bool metric_failed;
    bool metric_held;   /* chunks waited in memory for the store */
    char *metric_error; /* why saving metrics failed, or NULL */
    /* Where remote steps ran: step name -> {host, worker, attempt,
     * elapsed}, under lock; recorded as "steps" when not empty. */
    bson_t *step_info;
    /* Side values of steps (command logs), stored with the persisted
     * values, under lock; keys and values owned. */
    xp_persisted_item *kept;
    size_t n_kept;
    /* Memoisation: the trial's mode and, when the experiment has pure
     * steps, what became of each (by node index). */
    xp_memo_mode memo;
    xp_memo_step *memo_steps;
};

/* ---------------------------------------------------------------- metrics */

/* A chunk of m has just filled: the whole chunks go to the store, so a
 * long metric never sits in memory. Chunks the store cannot take now
 * wait for the next one or the finish (which writes or spools them), up
 * to XP_METRIC_HELD_CHUNKS; then the trial fails and they are dropped.
 * metrics_lock held. */
static int s_flush_metric(xp_trial *t, xp_metric_buf *m)
{
    xp_error_t flush_err;
    if (xp__store_metric_flush(t->ex->backend, t->id, m, &flush_err) == 0)
        return 0;
    size_t held = xp__metric_buf_full_chunks(m);
    if (held <= XP_METRIC_HELD_CHUNKS) {
        if (!t->metric_held)
            xp__log(XP_LOG_WARNING,
                    "Metric '%s' of trial %lld waits in memory: %s", m->name,
                    (long long)t->id, flush_err.message);
        t->metric_held = true;
        return 0;
    }
    if (!t->metric_error)
        t->metric_error = bson_strdup_printf(
            "%zu chunks of metric '%s' could not be written (%s)", held,
            m->name, flush_err.message);
    t->metric_failed = true;
    xp__metric_buf_consume(m, held);
    return -1;
}

int xp__trial_save_metric(void *trial, const char *name, int64_t epoch,
                          double value)
{
    xp_trial *t = trial;
    int rc = 0;
    pthread_mutex_lock(&t->metrics_lock);
    xp_metric_buf *m = xp__metric_set_add(&t->metrics, name, epoch, value);
    if (!m) {
        if (!t->metric_error)
            t->metric_error = bson_strdup("out of memory");
        t->metric_failed = true;
        rc = -1;
    } else if (m->points.n % XP_METRIC_CHUNK_POINTS == 0) {
        rc = s_flush_metric(t, m);
    }
    pthread_mutex_unlock(&t->metrics_lock);
    return rc;
}

/* A step's side value (a command step's log): stored with the persisted
 * values, failed trial or not. Takes v. */
static void s_keep(void *trial, const char *key, xp_value *v)
{
    xp_trial *t = trial;
    pthread_mutex_lock(&t->lock);
    t->kept = bson_realloc(t->kept, (t->n_kept + 1) * sizeof *t->kept);
    t->kept[t->n_kept++] = (xp_persisted_item){bson_strdup(key), v};
    pthread_mutex_unlock(&t->lock);
}

void xp__trial_keep_log(xp_trial *t, const char *step, xp_value *log)
{
    char key[XP_NAME_MAX + sizeof XP_COMMAND_LOG_PREFIX];
    snprintf(key, sizeof key, "%s%s", XP_COMMAND_LOG_PREFIX, step);
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_kept; i++) {
        if (strcmp(t->kept[i].step, key) == 0) {
            xp_value *old = (xp_value *)t->kept[i].value;
            xp_value_destroy(&old);
            t->kept[i].value = log;
            pthread_mutex_unlock(&t->lock);
            return;
        }
    }
    pthread_mutex_unlock(&t->lock);
    s_keep(t, key, log);
}

/* ---------------------------------------------------------------- hashing */

/* XXH128 of a canonical BSON encoding: type-sensitive (1 and 1.0
 * differ), key order as given. */
static void s_hash128(const bson_t *b, uint8_t out[16])
{
    xp__hash128(bson_get_data(b), b->len, out);
}

/* Records the purity-check hashes of one execution of step n. */
static void s_hash_step(xp_trial *t, xp_node *n, const xp_value *out)
{
    bson_t inputs = BSON_INITIALIZER, output = BSON_INITIALIZER;
    bool ok = true;
    char key[16];
    const char *k;
    for (size_t i = 0; i < n->n_inputs && ok; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        ok = xp__value_append_bson(&inputs, k,
                                   t->outputs[n->inputs[i]->index]) == 0;
    }
    ok = ok && xp__value_append_bson(&output, "v", out) == 0;
    if (ok) {
        xp_step_hash *h = &t->hashes[n->index];
        h->step = n->name;
        s_hash128(&inputs, h->input);
        s_hash128(&output, h->output);
        t->hashed[n->index] = true;
    }
    bson_destroy(&inputs);
    bson_destroy(&output);
}

/* ---------------------------------------------------------------- state */

bson_t *xp__trial_record(const xp_trial *t)
{
    bson_t *doc = bson_new();
    xp__record_encode(&t->rec, doc, NULL); /* a start record always fits */
    return doc;
}

int xp__trial_record_running(xp_trial *t, xp_error_t *err)
{
    xp_trial_record running = t->rec;
    running.trial_id = t->id;
    running.status = XP_STATUS_RUNNING;
    return xp__store_trial_running(t->ex->backend, &running, err);
}

int64_t xp__trial_id(const xp_trial *t)
{
    return t->id;
}

uint64_t xp__trial_seed(const xp_trial *t)
{
    return t->seed;
}

const xp_value *xp__trial_value(const xp_trial *t, const xp_node *n)
{
    return t->outputs[n->index];
}

xp_node *xp__trial_take_ready(xp_trial *t)
{
    xp_node *n = NULL;
    pthread_mutex_lock(&t->lock);
    if (t->n_ready > 0 && !t->failed) {
        n = t->ready[--t->n_ready];
        t->inflight++;
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

void xp__trial_step_done(xp_trial *t, xp_node *n, xp_value *out,
                         const char *failure)
{
    /* Inputs are complete and immutable while n is in flight. */
    if (!failure && out)
        s_hash_step(t, n, out);
    /* The trials waiting for this step's memo key get its output. */
    if (t->memo_steps && n->pure)
        xp__memo_after(t->ex, &t->memo_steps[n->index], failure ? NULL : out,
                       t->id);
    pthread_mutex_lock(&t->lock);
    t->outputs[n->index] = out;
    t->inflight--;
    t->done++;
    if (failure || !out) {
        if (!t->failed) {
            t->failed = true;
            t->failure = bson_strdup_printf("%.100s: %.400s", n->name,
                                            failure ? failure : "no output");
        }
    } else if (!t->failed) {
        for (size_t i = 0; i < n->n_dependents; i++) {
            xp_node *d = n->dependents[i];
            if (--t->pending[d->index] == 0)
                t->ready[t->n_ready++] = d;
        }
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Step n's memo key from the trial's values of its inputs. */
static bool s_memo_key(xp_trial *t, xp_node *n, xp_memo_step *s)
{
    const xp_value *stack_in[8] = {NULL};
    const xp_value **in =
        n->n_inputs <= 8 ? stack_in : bson_malloc(n->n_inputs * sizeof *in);
    for (size_t i = 0; i < n->n_inputs; i++)
        in[i] = t->outputs[n->inputs[i]->index];
    bool keyed = xp__memo_key(t->ex, n, (const xp_value *const *)in, s);
    if (in != stack_in)
        bson_free(in);
    return keyed;
}

xp_trial_memo xp__trial_memo_dispatch(xp_trial *t, xp_node *n)
{
    xp_memo_step *s =
        t->memo_steps && n->pure ? &t->memo_steps[n->index] : NULL;
    if (!s)
        return XP_TRIAL_MEMO_RUN;
    xp_value *out = NULL;
    int64_t from = 0;
    int rc;
    if (s->flight) {
        rc = xp__memo_collect(t->ex, s, &out, &from);
        if (rc == 2)
            return XP_TRIAL_MEMO_WAIT;
        if (rc == 1)
            s->reused = from;
    } else if (!s_memo_key(t, n, s)) {
        return XP_TRIAL_MEMO_RUN;
    }
    if (!out) {
        rc = xp__memo_before_nowait(t->ex, n, t->memo, s, &out);
        if (rc == 2)
            return XP_TRIAL_MEMO_WAIT;
        if (rc == 0)
            return XP_TRIAL_MEMO_RUN;
    }
    xp__log(XP_LOG_INFO, "Reused step '%s' of trial %lld (trial id=%lld)",
            n->name, (long long)s->reused, (long long)t->id);
    xp__trial_step_done(t, n, out, NULL);
    return XP_TRIAL_MEMO_DONE;
}

void xp__trial_memo_abandon(xp_trial *t, xp_node *n)
{
    if (t->memo_steps && n->pure)
        xp__memo_abandon(t->ex, &t->memo_steps[n->index]);
}

void xp__trial_note_step(xp_trial *t, const char *step,
                         const xp_record_step *where)
{
    pthread_mutex_lock(&t->lock);
    if (!t->step_info)
        t->step_info = bson_new();
    xp__record_append_step(t->step_info, step, where);
    pthread_mutex_unlock(&t->lock);
}

void xp__trial_fail(xp_trial *t, const char *description)
{
    pthread_mutex_lock(&t->lock);
    if (!t->failed) {
        t->failed = true;
        t->failure = bson_strdup(description);
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static bool s_done_locked(const xp_trial *t)
{
    return t->inflight == 0 && (t->failed || t->done == t->ex->n_needed_steps);
}

bool xp__trial_done(xp_trial *t)
{
    pthread_mutex_lock(&t->lock);
    bool done = s_done_locked(t);
    pthread_mutex_unlock(&t->lock);
    return done;
}

bool xp__trial_failed(xp_trial *t, const char **why)
{
    pthread_mutex_lock(&t->lock);
    bool failed = t->failed;
    if (why)
        *why = t->failure ? t->failure : "";
    pthread_mutex_unlock(&t->lock);
    return failed;
}

bool xp__trial_spooled(const xp_trial *t)
{
    return t->spooled;
}

/* ---------------------------------------------------------------- start */

/* The value parameter n takes in a trial: from overrides, else the one
 * set on the experiment, else its default; NULL when it has none. */
static const xp_value *s_param_value(const xp_node *n,
                                     const xp_value *overrides)
{
    const xp_value *v = overrides ? xp_value_get(overrides, n->name) : NULL;
    if (!v)
        v = n->current ? n->current : n->def;
    return v;
}

/* The rule for a trial's parameters, whoever starts it: every name given
 * is declared, and every declared parameter has a value (read by the
 * result or not: a trial records all of them, as daskperiment refuses a
 * trial with one undefined). ex->lock held. */
static int s_check_params(xp_experiment *ex, const xp_value *overrides,
                          xp_error_t *err)
{
    for (size_t i = 0; overrides && i < xp_value_count(overrides); i++) {
        const char *key = xp_value_key_at(overrides, i);
        xp_node *n = key ? xp__graph_find(ex, key) : NULL;
        if (!n || !n->is_param)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                             "parameter '%s' is not declared in experiment "
                             "'%s'",
                             key ? key : "", ex->id);
    }
    /* Every undefined name in one message, as many as fit in it. */
    char names[400] = "";
    size_t len = 0, shown = 0, undefined = 0;
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (!n->is_param || s_param_value(n, overrides))
            continue;
        if (len + strlen(n->name) + 5 < sizeof names) {
            len += (size_t)snprintf(names + len, sizeof names - len, "%s'%s'",
                                    shown ? ", " : "", n->name);
            shown++;
        }
        undefined++;
    }
    if (undefined == 1)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_EUNDEFINED,
                         "parameter %s is not defined", names);
    if (undefined > shown)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_EUNDEFINED,
                         "parameters %s and %zu more are not defined", names,
                         undefined - shown);
    if (undefined)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_EUNDEFINED,
                         "parameters %s are not defined", names);
    return 0;
}

int xp__trial_check_params(xp_experiment *ex, const xp_value *params,
                           xp_error_t *err)
{
    if (params && xp_value_type(params) != XP_TYPE_DOCUMENT)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "parameters must be a document");
    pthread_mutex_lock(&ex->lock);
    int rc = s_check_params(ex, params, err);
    pthread_mutex_unlock(&ex->lock);
    return rc;
}

/* Checks the parameters and resolves the value of every one into
 * t->outputs and params (all are recorded). ex->lock held. */
static int s_resolve_params(xp_experiment *ex, const xp_value *overrides,
                            xp_trial *t, bson_t *params, xp_error_t *err)
{
    if (s_check_params(ex, overrides, err) != 0)
        return -1;
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (!n->is_param)
            continue;
        const xp_value *v = s_param_value(n, overrides);
        t->outputs[n->index] = xp_value_dup(v);
        if (!t->outputs[n->index] ||
            xp__value_append_bson(params, n->name, v) != 0)
            return xp__enomem(err);
    }
    return 0;
}

void xp__trial_free(xp_trial **pt)
{
    if (!pt || !*pt)
        return;
    xp_trial *t = *pt;
    for (size_t i = 0; t->outputs && i < t->ex->n_nodes; i++)
        xp_value_destroy(&t->outputs[i]);
    bson_free(t->outputs);
    bson_free(t->pending);
    bson_free(t->ready);
    bson_free(t->hashes);
    bson_free(t->hashed);
    xp__metric_set_clear(&t->metrics);
    bson_free(t->failure);
    bson_free(t->metric_error);
    if (t->params)
        bson_destroy(t->params);
    if (t->source)
        bson_destroy(t->source);
    bson_free(t->scheduler);
    if (t->step_info)
        bson_destroy(t->step_info);
    for (size_t i = 0; i < t->n_kept; i++) {
        bson_free((char *)t->kept[i].step);
        xp_value *v = (xp_value *)t->kept[i].value;
        xp_value_destroy(&v);
    }
    bson_free(t->kept);
    bson_free(t->memo_steps);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->metrics_lock);
    bson_free(t);
    *pt = NULL;
}

/* Counts each needed step's pending inputs; steps without any are ready. */
static void s_init_ready(xp_trial *t)
{
    xp_experiment *ex = t->ex;
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *node = ex->nodes[i];
        if (!node->needed || node->is_param)
            continue;
        for (size_t k = 0; k < node->n_inputs; k++)
            if (!node->inputs[k]->is_param)
                t->pending[i]++;
        if (t->pending[i] == 0)
            t->ready[t->n_ready++] = node;
    }
    /* Steps registered first run first (the ready list is a stack). */
    for (size_t i = 0; i < t->n_ready / 2; i++) {
        xp_node *tmp = t->ready[i];
        t->ready[i] = t->ready[t->n_ready - 1 - i];
        t->ready[t->n_ready - 1 - i] = tmp;
    }
}

static xp_trial *s_trial_alloc(xp_experiment *ex)
{
    xp_trial *t = bson_malloc0(sizeof *t);
    t->ex = ex;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    pthread_mutex_init(&t->metrics_lock, NULL);
    return t;
}

static void s_trial_arrays(xp_trial *t)
{
    size_t n = t->ex->n_nodes + 1;
    t->outputs = bson_malloc0(n * sizeof *t->outputs);
    t->pending = bson_malloc0(n * sizeof *t->pending);
    t->ready = bson_malloc0(n * sizeof *t->ready);
    t->hashes = bson_malloc0(n * sizeof *t->hashes);
    t->hashed = bson_malloc0(n * sizeof *t->hashed);
}

/* The parameter values of a queued record, by the rule of
 * xp__trial_check_params: every name declared, every declared parameter
 * with a value (the recorded one, else its default). A record queued
 * before that rule may lack a parameter the result does not read and that
 * has no default: it reads as null, and the record stays as accepted. A
 * missing parameter the result reads is damage. Graph frozen. */
static int s_resume_params(xp_trial *t, const bson_t *params, xp_error_t *err)
{
    xp_experiment *ex = t->ex;
    bson_iter_t it;
    xp_error_t e;
    if (!bson_iter_init(&it, params))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "queued trial %lld: parameters are damaged",
                         (long long)t->id);
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (xp_check_name("parameter", key, &e) != 0)
            return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                             "queued trial %lld: %s", (long long)t->id,
                             e.message);
        xp_node *n = xp__graph_find(ex, key);
        if (!n || !n->is_param)
            return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                             "queued trial %lld has parameter '%s', which "
                             "experiment '%s' does not declare",
                             (long long)t->id, key, ex->id);
    }
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (!n->is_param)
            continue;
        int rc = 0;
        xp_value *v = t->outputs[i] = xp_value_new();
        if (bson_iter_init_find(&it, params, n->name))
            rc = xp__value_from_iter(v, &it, err);
        else if (n->def)
            rc = xp_set_value(v, n->def);
        else if (n->needed)
            rc = xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                           "queued trial %lld has no value for parameter "
                           "'%s'",
                           (long long)t->id, n->name);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int xp__trial_resume(xp_trial **out, xp_experiment *ex, const bson_t *doc,
                     xp_error_t *err)
{
    *out = NULL;
    const uint32_t needed =
        XP_RECORD_HAS_TRIAL_ID | XP_RECORD_HAS_SEED | XP_RECORD_HAS_PARAMETERS;
    xp_trial *t = s_trial_alloc(ex);
    bson_t params;
    t->source = bson_copy(doc);
    if (xp__record_decode(t->source, &t->rec, NULL) != 0 ||
        (t->rec.present & needed) != needed ||
        !xp__doc_view_bson(t->rec.parameters, &params)) {
        xp__trial_free(&t);
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "queued trial record is incomplete");
    }
    int64_t id = t->rec.trial_id;
    int rc = -1;
    if (xp__graph_freeze(ex, err) != 0)
        goto cleanup;
    s_trial_arrays(t);
    pthread_mutex_lock(&ex->lock);
    xp__memo_prepare_locked(ex);
    pthread_mutex_unlock(&ex->lock);
    /* The mode it was submitted with (a restarted scheduler keeps it). */
    t->memo = xp__memo_mode_parse(t->rec.memo);
    if (ex->n_pure)
        t->memo_steps = bson_malloc0(ex->n_nodes * sizeof *t->memo_steps);
    t->id = id;
    t->seed = (uint64_t)t->rec.seed;
    if (s_resume_params(t, &params, err) != 0)
        goto cleanup;
    s_init_ready(t);
    t->t0 = xp__monotonic();
    *out = t;
    t = NULL;
    rc = 0;
cleanup:
    xp__trial_free(&t);
    return rc;
}

int xp__trial_start(xp_trial **out, xp_experiment *ex,
                    const xp_run_options *opts, const char *scheduler,
                    xp_error_t *err)
{
    bool queued = scheduler != NULL;
    *out = NULL;
    xp_trial *t = s_trial_alloc(ex);
    t->params = bson_new();
    int rc = -1;

    pthread_mutex_lock(&ex->lock);
    if (xp__graph_freeze_locked(ex, err) != 0) {
        pthread_mutex_unlock(&ex->lock);
        goto cleanup;
    }
    s_trial_arrays(t);
    xp__memo_prepare_locked(ex);
    /* A reproduction re-runs everything. */
    t->memo = opts->reproduces > 0 ? XP_MEMO_OFF : opts->memo;
    if (ex->n_pure)
        t->memo_steps = bson_malloc0(ex->n_nodes * sizeof *t->memo_steps);
    if (s_resolve_params(ex, opts->params, t, t->params, err) != 0 ||
        xp__capture_before_trial(ex, err) != 0) {
        pthread_mutex_unlock(&ex->lock);
        goto cleanup;
    }
    /* Generated seeds are kept to 31 bits: easy to read and retype. */
    bool given = opts->has_seed || ex->has_seed;
    t->seed = opts->has_seed ? opts->seed
              : ex->has_seed ? ex->seed
                             : xp__random_seed() >> 33;
    pthread_mutex_unlock(&ex->lock);

    s_init_ready(t);

    /* The first record: everything needed to see and recover the trial.
     * A queued trial belongs to a scheduler: pid 0, so no process-death
     * check marks it interrupted. */
    const char *env_hash;
    xp__environment(&env_hash);
    t->scheduler = queued ? bson_strdup(scheduler) : NULL;
    t->rec = (xp_trial_record){
        .experiment = ex->id,
        .status = queued ? XP_STATUS_QUEUED : XP_STATUS_RUNNING,
        .parameters = xp__doc_view(t->params),
        .seed = (int64_t)t->seed,
        .started_ms = xp__now_ms(),
        .host = xp__hostname(),
        .pid = queued ? 0 : (int64_t)getpid(),
        .pstart = queued ? 0 : (int64_t)xp__self_start(),
        .scheduler = t->scheduler,
        .code_hash = ex->code_hash,
        .environment_hash = env_hash,
        .reproduces = opts->reproduces > 0 ? opts->reproduces : 0,
        .memo = ex->n_pure ? xp__memo_mode_name(t->memo) : NULL,
    };
    if (xp__store_trial_begin(ex->backend, &t->rec, err) != 0)
        goto cleanup;
    t->id = t->rec.trial_id;
    /* A scheduler accepting a sweep logs the batch once; its trials'
     * lines are for debugging. */
    xp_log_level level = queued ? XP_LOG_DEBUG : XP_LOG_INFO;
    xp__log(level, "%s Experiment (trial id=%lld)",
            queued ? "Queued" : "Started", (long long)t->id);
    if (given)
        xp__log(level, "Random seed is initialized with given seed: %llu",
                (unsigned long long)t->seed);
    else
        xp__log(level,
                "Random seed is not provided, initialized with generated "
                "seed: %llu",
                (unsigned long long)t->seed);
    t->t0 = xp__monotonic();
    *out = t;
    t = NULL;
    rc = 0;
cleanup:
    xp__trial_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- finish */

/* A metric that could not be saved fails the trial. */
static void s_take_metric_failure(xp_trial *t)
{
    pthread_mutex_lock(&t->metrics_lock);
    if (!t->failed && t->metric_failed) {
        t->failed = true;
        bson_free(t->failure);
        t->failure =
            bson_strdup_printf("saving metrics: %.480s",
                               t->metric_error ? t->metric_error : "error");
    }
    pthread_mutex_unlock(&t->metrics_lock);
}

/* Purity check: the same step with the same input hash must give the
 * same output hash as last time. Packs the hashes to store at the front
 * of t->hashes (their count returned); the names of changed steps go to
 * warnings. */
static size_t s_check_purity(xp_trial *t, bson_t *warnings)
{
    xp_experiment *ex = t->ex;
    size_t n_hashes = 0;
    uint32_t n_warnings = 0;
    for (size_t i = 0; i < ex->n_nodes; i++)
        if (t->hashed[i])
            t->hashes[n_hashes++] = t->hashes[i];
    if (n_hashes == 0)
        return 0;
    uint8_t(*previous)[16] = bson_malloc(n_hashes * sizeof *previous);
    bool *found = bson_malloc0(n_hashes * sizeof *found);
    /* A failed lookup only skips the check: the trial is still recorded. */
    if (xp__store_step_hashes_get(ex->backend, t->hashes, n_hashes, previous,
                                  found, NULL) != 0)
        memset(found, 0, n_hashes * sizeof *found);
    for (size_t i = 0; i < n_hashes; i++) {
        const xp_step_hash *h = &t->hashes[i];
        if (!found[i] || memcmp(previous[i], h->output, 16) == 0)
            continue;
        char in_hex[33], key[16];
        const char *k;
        xp__hex(h->input, 16, in_hex);
        xp__log(XP_LOG_WARNING,
                "Experiment step result is changed with the same input: "
                "(step: %s, input hash: %s, trial id=%lld)",
                h->step, in_hex, (long long)t->id);
        bson_uint32_to_string(n_warnings++, &k, key, sizeof key);
        bson_append_utf8(warnings, k, -1, h->step, -1);
    }
    bson_free(previous);
    bson_free(found);
    return n_hashes;
}

/* Each hashed step's output hash, {step: hex}, but the result step's
 * (the record has its output: the result): what xp reproduce compares
 * step by step. The first 64 bits of the purity check's XXH128 are
 * plenty to tell two outputs of one step apart, at half the bytes. */
static void s_output_hashes(const xp_step_hash *h, size_t n, const char *result,
                            bson_t *out)
{
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        if (strcmp(h[i].step, result) == 0)
            continue;
        xp__hex(h[i].output, 16, hex);
        bson_append_utf8(out, h[i].step, -1, hex, XP_RECORD_HASH_HEX);
    }
}

/* The final record of t into *fin, encoded into final (initialised). A
 * result that cannot be stored (nested too deep, too large) fails the
 * trial with that description. */
static void s_final_record(xp_trial *t, double elapsed, const bson_t *warnings,
                           const bson_t *hashes, xp_trial_record *fin,
                           bson_t *final)
{
    xp_error_t why;
    *fin = t->rec;
    fin->trial_id = t->id;
    fin->finished_ms = xp__now_ms();
    fin->process_time = elapsed;
    fin->purity_warnings = xp__doc_view(warnings);
    fin->steps = xp__doc_view(t->step_info);
    fin->hashes = xp__doc_view(hashes);
    for (;;) {
        fin->status = t->failed ? XP_STATUS_FAILED : XP_STATUS_SUCCEEDED;
        fin->success = !t->failed;
        fin->result = t->failed ? NULL : t->outputs[t->ex->result->index];
        fin->description = t->failed ? t->failure : "";
        if (xp__record_encode(fin, final, &why) == 0 || t->failed)
            return;
        t->failed = true;
        t->failure = bson_strdup(why.message);
        bson_reinit(final);
    }
}

/* The persisted outputs of t (caller frees the array). */
static xp_persisted_item *s_persisted(const xp_trial *t, size_t *n)
{
    xp_experiment *ex = t->ex;
    xp_persisted_item *persisted =
        bson_malloc0((ex->n_nodes + t->n_kept + 1) * sizeof *persisted);
    *n = 0;
    for (size_t i = 0; i < t->n_kept; i++)
        persisted[(*n)++] = t->kept[i];
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *node = ex->nodes[i];
        if (node->persisted && node->needed && t->outputs[i]) {
            persisted[*n].step = node->name;
            persisted[*n].value = t->outputs[i];
            (*n)++;
        }
    }
    return persisted;
}

int xp__trial_finish(xp_trial *t, xp_value **result, xp_error_t *err)
{
    xp_experiment *ex = t->ex;
    double elapsed = xp__monotonic() - t->t0;
    bson_t final = BSON_INITIALIZER, warnings = BSON_INITIALIZER;
    xp_trial_record fin;
    xp_trial_outcome o = {.record = &fin, .doc = &final};
    int rc = -1;
    if (result)
        *result = NULL;

    s_take_metric_failure(t);
    xp_memo_entry *memo = NULL;
    size_t n_memo = xp__memo_entries(ex, t->id, t->memo, t->memo_steps,
                                     t->hashes, t->hashed, &memo);
    o.n_hashes = s_check_purity(t, &warnings);
    o.hashes = t->hashes;
    bson_t hashes = BSON_INITIALIZER;
    s_output_hashes(t->hashes, o.n_hashes, ex->result->name, &hashes);
    bson_t reused = BSON_INITIALIZER;
    if (xp__memo_reused_doc(ex, t->memo_steps, &reused))
        t->rec.reused = xp__doc_view(&reused);
    s_final_record(t, elapsed, &warnings, &hashes, &fin, &final);
    xp_persisted_item *persisted = s_persisted(t, &o.n_persisted);
    o.persisted = persisted;
    xp_metric_chunk *chunks = NULL;
    xp__metric_set_chunks(&t->metrics, true, &chunks, &o.n_chunks);
    o.chunks = chunks;
    xp_error_t store_err;
    if (xp__store_trial_finish(ex->backend, &o, &t->spooled, &store_err) != 0) {
        xp__log(XP_LOG_ERROR, "%s", store_err.message);
        if (err)
            *err = store_err;
        goto cleanup;
    }
    /* After the persisted values they point at; a lost entry is a miss. */
    xp_error_t memo_err;
    if (!t->spooled &&
        xp__store_memo_put(ex->backend, memo, n_memo, &memo_err) != 0)
        xp__log(XP_LOG_WARNING, "Memo entries of trial %lld not stored: %s",
                (long long)t->id, memo_err.message);
    if (t->failed) {
        xp__log(XP_LOG_ERROR, "Experiment failed (trial id=%lld): %s",
                (long long)t->id, t->failure);
        xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP, "%s", t->failure);
        goto cleanup;
    }
    xp__log(XP_LOG_INFO, "Finished Experiment (trial id=%lld)",
            (long long)t->id);
    if (result) {
        *result = t->outputs[ex->result->index];
        t->outputs[ex->result->index] = NULL;
    }
    rc = 0;
cleanup:
    bson_free(chunks);
    bson_free(persisted);
    bson_free(memo);
    t->rec.reused = (xp_doc_view){NULL, 0};
    bson_destroy(&reused);
    bson_destroy(&final);
    bson_destroy(&warnings);
    bson_destroy(&hashes);
    return rc;
}

/* ---------------------------------------------------------------- in-process
 * executor */

/* Executes step n of t and reports its outcome. */
static void s_run_node(xp_trial *t, xp_node *n)
{
    const xp_value *stack_in[8];
    const xp_value **in =
        n->n_inputs <= 8 ? stack_in : bson_malloc(n->n_inputs * sizeof *in);
    for (size_t i = 0; i < n->n_inputs; i++)
        in[i] = t->outputs[n->inputs[i]->index];
    xp_memo_step *memo =
        t->memo_steps && n->pure ? &t->memo_steps[n->index] : NULL;
    xp_value *out = NULL;
    if (memo && xp__memo_key(t->ex, n, (const xp_value *const *)in, memo) &&
        xp__memo_before(t->ex, n, t->memo, memo, &out) == 1) {
        xp__log(XP_LOG_INFO, "Reused step '%s' of trial %lld (trial id=%lld)",
                n->name, (long long)memo->reused, (long long)t->id);
        if (in != stack_in)
            bson_free(in);
        xp__trial_step_done(t, n, out, NULL);
        return;
    }
    out = xp_value_new();
    xp_metric_sink sink = {xp__trial_save_metric, t};
    char failure[400];
    xp_value *log = NULL;
    int rc = xp__step_run_log(n, t->id, t->seed, (const xp_value *const *)in,
                              &sink, out, &log, failure, sizeof failure);
    if (log)
        xp__trial_keep_log(t, n->name, log);
    if (in != stack_in)
        bson_free(in);
    if (rc != 0)
        xp_value_destroy(&out);
    xp__trial_step_done(t, n, out, rc != 0 ? failure : NULL);
}

static void s_runner(void *arg);

/* Takes a ready step for the calling thread, or NULL, and asks the pool
 * for a runner per ready step left that no queued runner will take, up
 * to the threads the pool lends: every thread keeps working while steps
 * are ready. t->lock held. */
static xp_node *s_take_locked(xp_trial *t)
{
    if (t->n_ready == 0 || t->failed)
        return NULL;
    xp_node *n = t->ready[--t->n_ready];
    t->inflight++;
    while (t->pool && t->n_ready > t->runners_queued &&
           t->runners < t->helpers &&
           xp__pool_submit(t->pool, s_runner, t) == 0) {
        t->runners++;
        t->runners_queued++;
    }
    return n;
}

/* A pool thread's share of a trial: ready steps until none is left. */
static void s_runner(void *arg)
{
    xp_trial *t = arg;
    pthread_mutex_lock(&t->lock);
    t->runners_queued--;
    xp_node *n;
    while ((n = s_take_locked(t)) != NULL) {
        pthread_mutex_unlock(&t->lock);
        s_run_node(t, n);
        pthread_mutex_lock(&t->lock);
    }
    t->runners--;
    pthread_mutex_unlock(&t->lock);
}

/* Runs all needed steps on the calling thread and the pool's: each takes
 * ready steps until none is left, the caller then waits for more or for
 * the end. Returns after every started step has finished, also on
 * failure, with no runner left holding t. */
static void s_execute(xp_trial *t, xp_pool *pool)
{
    pthread_mutex_lock(&t->lock);
    t->pool = pool;
    t->helpers = (size_t)xp__pool_threads(pool);
    for (;;) {
        xp_node *n = s_take_locked(t);
        if (n) {
            pthread_mutex_unlock(&t->lock);
            s_run_node(t, n);
            pthread_mutex_lock(&t->lock);
            continue;
        }
        if (s_done_locked(t))
            break;
        pthread_cond_wait(&t->cond, &t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    /* Runners still queued (their thread busy with another trial) have
     * nothing left to take. */
    if (pool)
        xp__pool_cancel(pool, t);
}

int xp_compute(xp_experiment *ex, const xp_run_options *opts, xp_value **result,
               int64_t *trial_id, xp_error_t *err)
{
    xp_run_options defaults = XP_RUN_OPTIONS_INIT;
    if (result)
        *result = NULL;
    if (trial_id)
        *trial_id = 0;
    if (!ex)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "no experiment");
    if (!opts)
        opts = &defaults;
    xp_run_options v2;
    if (opts->version == 1) {
        /* Version 1 ends before memo. */
        memcpy(&v2, &defaults, sizeof v2);
        memcpy(&v2, opts, offsetof(xp_run_options, memo));
        v2.version = XP_RUN_OPTIONS_VERSION;
        opts = &v2;
    }
    if (opts->version != XP_RUN_OPTIONS_VERSION)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "xp_run_options version %u is not supported",
                         opts->version);
    if (opts->params && xp_value_type(opts->params) != XP_TYPE_DOCUMENT)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "parameter overrides must be a document");
    if ((unsigned)opts->memo > XP_MEMO_REFRESH)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "memo mode %d is not one of XP_MEMO_USE, XP_MEMO_OFF "
                         "and XP_MEMO_REFRESH",
                         (int)opts->memo);
    if (xp__in_step())
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTATE,
                         "cannot compute a trial from inside a step");
    if (ex->read_only)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTATE,
                         "experiment '%s' was opened read-only", ex->id);

    xp_trial *t;
    if (xp__trial_start(&t, ex, opts, NULL, err) != 0)
        return -1;
    if (trial_id)
        *trial_id = t->id;
    pthread_mutex_lock(&ex->lock);
    if (ex->threads > 1 && ex->n_needed_steps > 1 && !ex->pool)
        ex->pool = xp__pool_new(ex->threads - 1);
    xp_pool *pool = ex->pool;
    pthread_mutex_unlock(&ex->lock);
    s_execute(t, pool);
    int rc = xp__trial_finish(t, result, err);
    xp__trial_free(&t);
    return rc;
}
