/* submit.c — a client's SUBMIT: its definition found (or registered from
 * the code it sent), every trial parsed and checked before anything is
 * recorded (a bad one refuses the batch), the client's limit applied,
 * then every trial recorded as queued in one group commit and only then
 * ACCEPTED sent. The trials wait in their definition's pending FIFO. */
#include "remote/scheduler/submit.h"

#include "remote/scheduler/batches.h"
#include "remote/scheduler/defs.h"

#include "trial.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/log.h"
#include "util/names.h"
#include "value.h"

#include <stdio.h>
#include <stdlib.h>

/* One trial of a SUBMIT, parsed and checked. */
typedef struct {
    xp_value *params;
    bool has_seed;
    int64_t seed;
} s_spec;

/* The definition the trials are for: by code hash (registered from the
 * code the client sent when no worker announced it: a script-mode
 * program's trials wait for such a worker), else the latest a worker
 * registered. NULL: the client got an ERROR. */
static xp_sched_def *s_definition(xp_scheduler *s, zframe_t *from,
                                  const char *exp, const char *hash,
                                  const bson_t *body)
{
    xp_sched_def *def = NULL;
    bson_t code;
    xp_error_t err;
    if (!hash)
        def = xp__sched_def_latest(s, exp);
    else if (!(def = xp__sched_def_get(s, exp, hash)) &&
             xp__bson_sub(body, "code", &code) &&
             !(def =
                   xp__sched_def_register(s, exp, hash, &code, false, &err))) {
        s->malformed++;
        xp__sched_send_error(s, from, err.message);
        return NULL;
    }
    if (!def) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "no worker has registered experiment '%s'%s%s", exp,
                 hash ? " with code " : "", hash ? hash : "");
        xp__sched_send_error(s, from, msg);
    }
    return def;
}

/* Checks a trial's parameters against the definition before anything is
 * recorded: every name declared, every needed parameter defined.
 * TODO(core): this restates the rules of s_resolve_params in trial.c;
 * call the core's parameter resolution once trial.c offers it to lib/. */
static int s_check_params(xp_experiment *ex, const xp_value *params,
                          xp_error_t *err)
{
    for (size_t i = 0; i < xp_value_count(params); i++) {
        xp_node *n = xp__graph_find(ex, xp_value_key_at(params, i));
        if (!n || !n->is_param)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                             "parameter '%s' is not declared in experiment "
                             "'%s'",
                             xp_value_key_at(params, i), ex->id);
    }
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (n->is_param && n->needed && !n->def &&
            !xp_value_get(params, n->name))
            return xp__error(err, XP_DOMAIN_TRIAL, XP_EUNDEFINED,
                             "parameter '%s' is not defined", n->name);
    }
    return 0;
}

/* One trial spec {parameters?, seed?} of the trials array. */
static int s_parse_spec(xp_experiment *ex, const bson_iter_t *it, size_t i,
                        s_spec *spec, xp_error_t *err)
{
    bson_t doc, pdoc;
    uint32_t len;
    const uint8_t *data;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed SUBMIT: trial %zu", i);
    bson_iter_document(it, &len, &data);
    bson_init_static(&doc, data, len);
    spec->params = xp_value_new();
    int rc = 0;
    if (xp__bson_sub(&doc, "parameters", &pdoc))
        rc = xp__value_from_bson(spec->params, &pdoc, err);
    else
        xp_set_document(spec->params);
    spec->has_seed = xp__bson_int64(&doc, "seed", &spec->seed);
    return rc == 0 ? s_check_params(ex, spec->params, err) : rc;
}

/* Every trial of the array, or the first error (a bad one rejects the
 * batch and records nothing). *specs: caller frees with s_specs_free. */
static int s_parse_trials(xp_experiment *ex, const bson_t *trials,
                          s_spec **specs, size_t *n, xp_error_t *err)
{
    *n = bson_count_keys(trials);
    *specs = calloc(*n ? *n : 1, sizeof **specs);
    bson_iter_t it;
    size_t i = 0;
    bson_iter_init(&it, trials);
    while (bson_iter_next(&it) && i < *n) {
        if (s_parse_spec(ex, &it, i, &(*specs)[i], err) != 0)
            return -1;
        i++;
    }
    return 0;
}

static void s_specs_free(s_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xp_value_destroy(&specs[i].params);
    free(specs);
}

/* Records one trial as queued and appends its record to f; the full
 * trial state is built only when it is taken up. */
static int s_accept(xp_scheduler *s, xp_sched_def *def, xp_sched_fifo *f,
                    xp_sched_batch *b, const s_spec *spec, int64_t *id,
                    xp_error_t *err)
{
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = spec->params;
    o.has_seed = spec->has_seed;
    o.seed = (uint64_t)spec->seed;
    xp_trial *t = NULL;
    if (xp__trial_start(&t, def->ex, &o, s->name, err) != 0)
        return -1;
    *id = xp__trial_id(t);
    bson_t *doc = xp__trial_record(t);
    xp__sched_fifo_push(f, b, doc);
    bson_destroy(doc);
    xp__trial_free(&t);
    return 0;
}

/* One group commit for the whole batch: every trial is stored as queued
 * before the client hears of it. Their ids go to the array ids, their
 * records to accepted; returns how many were stored (0 with err). */
static size_t s_record_queued(xp_scheduler *s, xp_sched_def *def,
                              xp_sched_batch *b, const s_spec *specs, size_t n,
                              bson_t *ids, xp_sched_fifo *accepted,
                              xp_error_t *err)
{
    xp_backend *be = def->ex->backend;
    xp_error_t gerr;
    bool grouped = be->ops->group_begin && be->ops->group_begin(be, &gerr) == 0;
    size_t n_started = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t id;
        if (i % 256 == 255)
            xp__sched_keepalive(s);
        if (s_accept(s, def, accepted, b, &specs[i], &id, err) != 0) {
            /* The backend failed: trials recorded so far run; the client
             * learns which ones were accepted. */
            xp__log(XP_LOG_ERROR, "Submit to %s stopped after %zu trial(s): %s",
                    def->ex->id, n_started, err->message);
            break;
        }
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)n_started, &k, key, sizeof key);
        BSON_APPEND_INT64(ids, k, id);
        n_started++;
    }
    if (grouped && be->ops->group_end(be, &gerr) != 0) {
        xp__log(XP_LOG_ERROR, "Submit to %s: storing %zu trial(s) failed: %s",
                def->ex->id, n_started, gerr.message);
        *err = gerr;
        xp__sched_fifo_clear(accepted);
        n_started = 0;
    }
    return n_started;
}

/* Records the checked trials of def for client owner as a new batch and
 * answers ACCEPTED, or ERROR when none could be recorded. */
static void s_accept_batch(xp_scheduler *s, zframe_t *from, xp_sched_def *def,
                           xp_sched_client *owner, const s_spec *specs,
                           size_t n)
{
    xp_sched_batch *b = xp__sched_batch_new(s, def, owner, from);
    int64_t batch = xp__sched_batch_id(b);
    bson_t reply = BSON_INITIALIZER, ids;
    BSON_APPEND_INT64(&reply, "batch", batch);
    BSON_APPEND_ARRAY_BEGIN(&reply, "ids", &ids);
    xp_sched_fifo accepted = {0};
    xp_error_t err;
    size_t n_started =
        s_record_queued(s, def, b, specs, n, &ids, &accepted, &err);
    bson_append_array_end(&reply, &ids);
    xp__sched_fifo_splice(&def->pending, &accepted, false);
    xp__sched_batch_accepted(s, b, n_started);
    if (n_started == 0) {
        xp__sched_send_error(s, from, err.message);
    } else {
        xp__sched_send(s, from, XP_MSG_ACCEPTED, &reply);
        xp__log(XP_LOG_INFO, "Accepted %zu trial(s) of %s (batch %lld)",
                n_started, def->ex->id, (long long)batch);
    }
    bson_destroy(&reply);
}

void xp__sched_submit(xp_scheduler *s, zframe_t *from, const char *who,
                      const bson_t *body)
{
    const char *exp = xp__bson_utf8(body, "experiment");
    const char *hash = xp__bson_utf8(body, "code_hash");
    bson_t trials;
    xp_error_t err;
    if (!exp || xp_check_id(exp, &err) != 0 ||
        !xp__bson_sub(body, "trials", &trials)) {
        s->malformed++;
        xp__sched_send_error(s, from, exp ? err.message : "malformed SUBMIT");
        return;
    }
    if (bson_count_keys(&trials) == 0) {
        s->malformed++;
        xp__sched_send_error(s, from, "malformed SUBMIT: no trials");
        return;
    }
    xp_sched_def *def = s_definition(s, from, exp, hash, body);
    if (!def)
        return;
    s_spec *specs = NULL;
    size_t n = 0;
    xp_sched_client *owner = NULL;
    if (s_parse_trials(def->ex, &trials, &specs, &n, &err) != 0 ||
        !(owner = xp__sched_client_admit(s, who, n, &err)))
        xp__sched_send_error(s, from, err.message);
    else
        s_accept_batch(s, from, def, owner, specs, n);
    s_specs_free(specs, n);
}
