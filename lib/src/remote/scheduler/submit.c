/* submit.c — a client's SUBMIT (decoded by message.c): its definition
 * found (or registered from the code it sent), every trial checked before
 * anything is recorded (a bad one refuses the batch), the client's limit
 * applied, then every trial recorded as queued in one group commit and only
 * then ACCEPTED sent. The trials wait in their definition's pending FIFO. */
#include "remote/scheduler/submit.h"

#include "remote/scheduler/batches.h"
#include "remote/scheduler/defs.h"

#include "store/store.h"
#include "trial.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>

/* The definition the trials are for: by code hash (registered from the
 * code the client sent when no worker announced it: a script-mode
 * program's trials wait for such a worker), else the latest a worker
 * registered. NULL: the client got an ERROR. */
static xp_sched_def *s_definition(xp_scheduler *s, zframe_t *from,
                                  const xp_msg_submit *m)
{
    const char *exp = m->experiment, *hash = m->code_hash;
    xp_sched_def *def = NULL;
    bson_t code;
    xp_error_t err;
    if (!hash)
        def = xp__sched_def_latest(s, exp);
    else if (!(def = xp__sched_def_get(s, exp, hash)) &&
             xp__msg_doc_view(m->code, &code) &&
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

/* Every trial checked against the definition: a bad one rejects the
 * batch and records nothing. */
static int s_check_trials(xp_experiment *ex, const xp_msg_submit *m,
                          xp_error_t *err)
{
    for (size_t i = 0; i < m->n_trials; i++)
        if (xp__trial_check_params(ex, m->trials[i].params, err) != 0)
            return -1;
    return 0;
}

/* Records one trial as queued and appends its record to f; the full
 * trial state is built only when it is taken up. */
static int s_accept(xp_scheduler *s, xp_sched_def *def, xp_sched_fifo *f,
                    xp_sched_batch *b, const xp_msg_trial *trial, int64_t *id,
                    xp_error_t *err)
{
    xp_run_options o = XP_RUN_OPTIONS_INIT;
    o.params = trial->params;
    o.has_seed = trial->has_seed;
    o.seed = (uint64_t)trial->seed;
    o.memo = (xp_memo_mode)trial->memo;
    o.reproduces = trial->reproduces;
    if (o.reproduces > 0) /* a re-run that reused outputs would prove nothing */
        o.memo = XP_MEMO_OFF;
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
 * before the client hears of it. Their ids go to ids[n], their records
 * to accepted; returns how many were stored (0 with err). */
static size_t s_record_queued(xp_scheduler *s, xp_sched_def *def,
                              xp_sched_batch *b, const xp_msg_trial *trials,
                              size_t n, int64_t *ids, xp_sched_fifo *accepted,
                              xp_error_t *err)
{
    xp_backend *be = xp__experiment_store(def->ex);
    xp_error_t gerr;
    bool grouped = xp__store_group_begin(be, &gerr) == 0;
    size_t n_started = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t id;
        if (i % 256 == 255)
            xp__sched_keepalive(s);
        if (s_accept(s, def, accepted, b, &trials[i], &id, err) != 0) {
            /* The backend failed: trials recorded so far run; the client
             * learns which ones were accepted. */
            xp__log(XP_LOG_ERROR, "Submit to %s stopped after %zu trial(s): %s",
                    xp__experiment_id(def->ex), n_started, err->message);
            break;
        }
        ids[n_started++] = id;
    }
    if (grouped && xp__store_group_end(be, &gerr) != 0) {
        xp__log(XP_LOG_ERROR, "Submit to %s: storing %zu trial(s) failed: %s",
                xp__experiment_id(def->ex), n_started, gerr.message);
        *err = gerr;
        xp__sched_fifo_clear(accepted);
        n_started = 0;
    }
    return n_started;
}

/* Records the checked trials of def for client owner as a new batch and
 * answers ACCEPTED, or ERROR when none could be recorded. */
static void s_accept_batch(xp_scheduler *s, zframe_t *from, xp_sched_def *def,
                           xp_sched_client *owner, const xp_msg_submit *m)
{
    xp_sched_batch *b = xp__sched_batch_new(s, def, owner, from);
    xp_msg_accepted reply = {.batch = xp__sched_batch_id(b)};
    reply.ids = bson_malloc0((m->n_trials) * sizeof *reply.ids);
    xp_sched_fifo accepted = {0};
    xp_error_t err;
    reply.n_ids = s_record_queued(s, def, b, m->trials, m->n_trials, reply.ids,
                                  &accepted, &err);
    xp__sched_fifo_splice(&def->pending, &accepted, false);
    xp__sched_batch_accepted(s, b, reply.n_ids);
    if (reply.n_ids == 0) {
        xp__sched_send_error(s, from, err.message);
    } else {
        xp__sched_send(s, from, xp__msg_accepted_encode(&reply));
        xp__log(XP_LOG_INFO, "Accepted %zu trial(s) of %s (batch %lld)",
                reply.n_ids, xp__experiment_id(def->ex),
                (long long)reply.batch);
    }
    bson_free(reply.ids);
}

void xp__sched_submit(xp_scheduler *s, zframe_t *from, const char *who,
                      const xp_msg_submit *m)
{
    xp_sched_def *def = s_definition(s, from, m);
    if (!def)
        return;
    xp_error_t err;
    xp_sched_client *owner = NULL;
    if (s_check_trials(def->graph, m, &err) != 0 ||
        !xp__sched_def_open(s, def, &err) ||
        !(owner = xp__sched_client_admit(s, who, m->n_trials, &err)))
        xp__sched_send_error(s, from, err.message);
    else
        s_accept_batch(s, from, def, owner, m);
}
