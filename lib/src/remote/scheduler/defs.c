/* defs.c — the experiment definitions a scheduler knows: registered from
 * the code document a worker announced (or a client sent, or a queued
 * trial refers to after a restart) as a graph without a store; the store
 * is opened when trials are recorded or taken up and closed once none
 * has needed it for keep_ms, so that announcing code opens nothing. */
#include "remote/scheduler/defs.h"

#include "remote/scheduler/workers.h"

#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xp__sched_defs_init(xp_scheduler *s)
{
    s->defs = zhashx_new();
    s->latest = zhashx_new();
    zhashx_set_destructor(s->latest, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_duplicator(s->latest, (zhashx_duplicator_fn *)strdup);
}

static void s_def_close(xp_sched_def *d)
{
    xp__sched_fifo_clear(&d->pending);
    xp_experiment_destroy(&d->ex);
    xp_experiment_destroy(&d->graph);
    bson_free(d);
}

void xp__sched_defs_fini(xp_scheduler *s)
{
    if (s->defs)
        for (xp_sched_def *d = zhashx_first(s->defs); d;
             d = zhashx_next(s->defs))
            s_def_close(d);
    zhashx_destroy(&s->defs);
    zhashx_destroy(&s->latest);
}

xp_sched_def *xp__sched_def_get(xp_scheduler *s, const char *experiment,
                                const char *code_hash)
{
    char key[XP_ID_MAX + 40];
    snprintf(key, sizeof key, "%s/%s", experiment, code_hash);
    return zhashx_lookup(s->defs, key);
}

xp_sched_def *xp__sched_def_latest(xp_scheduler *s, const char *experiment)
{
    const char *key = zhashx_lookup(s->latest, experiment);
    return key ? zhashx_lookup(s->defs, key) : NULL;
}

/* Builds ex's graph from the code document and freezes it. */
static int s_build(xp_experiment *ex, const bson_t *code, xp_error_t *err)
{
    if (xp__graph_from_code(ex, code, err) != 0)
        return -1;
    return xp__graph_freeze(ex, err);
}

/* The definition alone, without a store: no file, thread or connection. */
static xp_experiment *s_graph(const char *experiment, const bson_t *code,
                              xp_error_t *err)
{
    xp_experiment *ex = NULL;
    if (xp__experiment_new_detached(&ex, experiment, err) != 0)
        return NULL;
    if (s_build(ex, code, err) != 0)
        xp_experiment_destroy(&ex);
    return ex;
}

xp_experiment *xp__sched_def_open(xp_scheduler *s, xp_sched_def *def,
                                  xp_error_t *err)
{
    if (def->ex)
        return def->ex;
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s->backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    if (xp_experiment_open(&ex, def->graph->id, &o, err) != 0)
        return NULL;
    if (s_build(ex, def->graph->code, err) != 0) {
        xp_experiment_destroy(&ex);
        return NULL;
    }
    def->ex = ex;
    def->idle_ms = 0;
    xp__log(XP_LOG_DEBUG, "Experiment %s (code %s): store opened",
            def->graph->id, def->graph->code_hash);
    return ex;
}

xp_sched_def *xp__sched_def_register(xp_scheduler *s, const char *experiment,
                                     const char *code_hash, const bson_t *code,
                                     bool from_worker, xp_error_t *err)
{
    xp_sched_def *def = xp__sched_def_get(s, experiment, code_hash);
    if (def) {
        if (from_worker) /* the code workers run now */
            zhashx_update(s->latest, experiment, def->key);
        return def;
    }
    char hash[33];
    xp__hash_hex(code, hash);
    if (strcmp(hash, code_hash) != 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "experiment '%s': code hash %s does not match its code "
                  "document (%s)",
                  experiment, code_hash, hash);
        return NULL;
    }
    xp_experiment *graph = s_graph(experiment, code, err);
    if (!graph)
        return NULL;
    def = bson_malloc0(sizeof *def);
    snprintf(def->key, sizeof def->key, "%s/%s", experiment, code_hash);
    def->graph = graph;
    zhashx_insert(s->defs, def->key, def);
    if (from_worker)
        zhashx_update(s->latest, experiment, def->key);
    xp__log(XP_LOG_INFO, "Experiment %s registered (code %s)", experiment,
            code_hash);
    return def;
}

/* The longest wait between two tries at writing a spool. */
#define S_SYNC_MAX_MS (60 * 1000)

void xp__sched_def_spooled(xp_scheduler *s, xp_sched_def *def, size_t n)
{
    if (!n)
        return;
    if (!def->spooled) {
        def->sync_wait_ms = s->opts.heartbeat_ms;
        def->sync_at_ms = xp__sched_now() + def->sync_wait_ms;
    }
    def->spooled += n;
}

/* Writes the trials def's spool keeps, when it is time to try: the
 * client was told they will be; a backend still down is tried again
 * later and later (each try may wait for its timeouts). */
static void s_store_sync(xp_scheduler *s, xp_sched_def *d, int64_t now)
{
    if (!d->spooled || !d->ex || now < d->sync_at_ms)
        return;
    size_t written = 0;
    xp_error_t err;
    int rc = xp_experiment_sync(d->ex, &written, &err);
    if (written)
        xp__log(XP_LOG_INFO, "Wrote %zu spooled trial(s) of %s", written,
                d->graph->id);
    if (rc == 0) {
        d->spooled = 0;
        return;
    }
    if (d->sync_wait_ms == s->opts.heartbeat_ms)
        xp__log(XP_LOG_WARNING, "Spooled trials of %s not written yet: %s",
                d->graph->id, err.message);
    d->sync_wait_ms = d->sync_wait_ms * 2 > S_SYNC_MAX_MS ? S_SYNC_MAX_MS
                                                          : d->sync_wait_ms * 2;
    d->sync_at_ms = now + d->sync_wait_ms;
}

/* Its store, open with no trial since keep_ms: closed (the next trial
 * opens it again, writing what the spool kept meanwhile). */
static void s_store_expire(xp_scheduler *s, xp_sched_def *d, int64_t now)
{
    s_store_sync(s, d, now);
    if (!d->ex)
        return;
    if (d->active || d->pending.head || d->spooled)
        d->idle_ms = 0;
    else if (!d->idle_ms)
        d->idle_ms = now;
    else if (now - d->idle_ms > s->opts.keep_ms) {
        xp_experiment_destroy(&d->ex);
        d->idle_ms = 0;
        xp__log(XP_LOG_INFO,
                "Experiment %s (code %s): store closed, no trial "
                "needs it",
                d->graph->id, d->graph->code_hash);
    }
}

/* Code changes over months would pile definitions up: those that no
 * connected worker runs and no trial or batch refers to are dropped after
 * opts.keep_ms. A worker or a trial that brings one back registers it
 * again. */
void xp__sched_defs_expire(xp_scheduler *s)
{
    int64_t now = xp__sched_now();
    zlistx_t *old = zlistx_new();
    for (xp_sched_def *d = zhashx_first(s->defs); d; d = zhashx_next(s->defs)) {
        s_store_expire(s, d, now);
        bool used = d->active || d->pending.head || d->batches || d->spooled ||
                    xp__sched_def_slots(s, d) > 0;
        if (used)
            d->unused_ms = 0;
        else if (!d->unused_ms)
            d->unused_ms = now;
        else if (now - d->unused_ms > s->opts.keep_ms)
            zlistx_add_end(old, d);
    }
    for (xp_sched_def *d = zlistx_first(old); d; d = zlistx_next(old)) {
        const char *latest = zhashx_lookup(s->latest, d->graph->id);
        if (latest && strcmp(latest, d->key) == 0)
            zhashx_delete(s->latest, d->graph->id);
        xp__log(XP_LOG_INFO, "Experiment %s (code %s) unused: closed",
                d->graph->id, d->graph->code_hash);
        zhashx_delete(s->defs, d->key);
        s_def_close(d);
    }
    zlistx_destroy(&old);
}
