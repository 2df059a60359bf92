/* recovery.c — taking up, after a restart, the trials an earlier run of
 * this scheduler accepted: whatever the backend, each experiment is
 * listed for queued trials; those of other schedulers sharing the backend
 * are left alone, the others go back to their definition's pending FIFO
 * (the definition rebuilt from the stored code document). */
#include "remote/scheduler/recovery.h"

#include "remote/scheduler/defs.h"

#include "store/record.h"
#include "store/store.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/log.h"

#include <string.h>

typedef struct {
    xp_scheduler *s;
    xp_experiment *ex; /* handle used to read the store */
    size_t resumed;
    size_t others; /* queued trials of other schedulers, left alone */
    /* The definition of the previous trial: a sweep's trials share one,
     * read from the store and registered once. */
    char last_hash[65];
    xp_sched_def *last_def;
} s_recovery;

/* The id of a queued record, for a message. */
static long long s_trial_id(const bson_t *doc)
{
    int64_t id = 0;
    xp__bson_int64(doc, XP_RECORD_TRIAL_ID, &id);
    return (long long)id;
}

/* Takes up one queued trial recorded by an earlier scheduler. */
static int s_resume_one(const bson_t *doc, void *user)
{
    s_recovery *r = user;
    /* Two fields, not the whole record: it is decoded (and checked) when
     * the trial is taken up. */
    const char *owner = xp__bson_utf8(doc, XP_RECORD_SCHEDULER);
    const char *hash = xp__bson_utf8(doc, XP_RECORD_CODE_HASH);
    /* Another scheduler's (sharing the backend): not ours to run. */
    if (owner && strcmp(owner, r->s->name) != 0) {
        r->others++;
        return 0;
    }
    if (r->last_def && hash && strcmp(hash, r->last_hash) == 0) {
        xp__sched_fifo_push(&r->last_def->pending, NULL, doc);
        r->resumed++;
        return 0;
    }
    bson_t code;
    xp_error_t err;
    if (!hash || xp__store_content_get(xp__experiment_store(r->ex), hash, &code,
                                       &err) != 0) {
        xp__log(XP_LOG_ERROR,
                "Queued trial %lld of %s cannot be resumed: "
                "its code definition is missing",
                s_trial_id(doc), xp__experiment_id(r->ex));
        return 0;
    }
    xp_sched_def *def = xp__sched_def_register(r->s, xp__experiment_id(r->ex),
                                               hash, &code, false, &err);
    bson_destroy(&code);
    if (!def) {
        xp__log(XP_LOG_ERROR, "Queued trial %lld of %s cannot be resumed: %s",
                s_trial_id(doc), xp__experiment_id(r->ex), err.message);
        return 0;
    }
    xp__sched_fifo_push(&def->pending, NULL, doc);
    r->resumed++;
    if (strlen(hash) < sizeof r->last_hash) {
        bson_strncpy(r->last_hash, hash, sizeof r->last_hash);
        r->last_def = def;
    }
    return 0;
}

/* Checks one experiment of the backend for queued trials. */
static int s_recover_one(const char *id, void *user)
{
    s_recovery *r = user;
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = r->s->backend;
    o.must_exist = true;
    o.threads = 1;
    xp_error_t err;
    if (xp_experiment_open(&r->ex, id, &o, &err) != 0) {
        xp__log(XP_LOG_WARNING, "Cannot check %s for queued trials: %s", id,
                err.message);
        return 0;
    }
    if (xp__store_queued_trials(xp__experiment_store(r->ex), s_resume_one, r,
                                &err) != 0)
        xp__log(XP_LOG_WARNING, "Reading queued trials of %s: %s", id,
                err.message);
    xp_experiment_destroy(&r->ex);
    r->last_def = NULL; /* a definition is one experiment's */
    return 0;
}

int xp__sched_recover(xp_scheduler *s, xp_error_t *err)
{
    s_recovery r = {.s = s};
    xp_error_t e;
    if (xp__store_experiments(s->backend, s_recover_one, &r, &e) != 0)
        return xp__error(err, e.domain, e.code,
                         "cannot look for queued trials to resume: %s",
                         e.message);
    if (r.resumed)
        xp__log(XP_LOG_INFO,
                "Resumed %zu queued trial(s) accepted before the restart",
                r.resumed);
    if (r.others)
        xp__log(XP_LOG_INFO,
                "Left %zu queued trial(s) of other schedulers alone (this "
                "one is '%s')",
                r.others, s->name);
    return 0;
}
