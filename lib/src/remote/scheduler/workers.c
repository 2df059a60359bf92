/* workers.c — the workers connected to a scheduler: a HELLO registers
 * one with its slots and the definitions it runs; heartbeats keep it; it
 * is lost on BYE, on registering again or after 3 silent intervals, and
 * its tasks go back to the queue. */
#include "remote/scheduler/workers.h"

#include "remote/scheduler/tasks.h"

#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static void s_worker_free(void **item)
{
    xp_sched_worker *w = *item;
    if (!w)
        return;
    if (w->out_open)
        xp__msg_bundle_clear(&w->out);
    zframe_destroy(&w->identity);
    zlistx_destroy(&w->defs);
    zlistx_destroy(&w->tasks);
    bson_free(w);
    *item = NULL;
}

void xp__sched_workers_init(xp_scheduler *s)
{
    s->workers = zhashx_new();
    zhashx_set_destructor(s->workers, s_worker_free);
}

void xp__sched_workers_fini(xp_scheduler *s)
{
    zhashx_destroy(&s->workers);
}

xp_sched_worker *xp__sched_worker_find(xp_scheduler *s, const char *id)
{
    return zhashx_lookup(s->workers, id);
}

void xp__sched_worker_lost(xp_scheduler *s, xp_sched_worker *w, const char *why)
{
    xp__log(XP_LOG_WARNING,
            "Worker %s on %s lost (%s); %zu task(s) back "
            "in the queue",
            w->id, w->host, why, zlistx_size(w->tasks));
    xp_sched_task *task;
    while ((task = zlistx_first(w->tasks)) != NULL) {
        zlistx_delete(w->tasks, zlistx_cursor(w->tasks));
        xp__sched_task_lost(s, task, w->host, why);
    }
    zhashx_delete(s->workers, w->id);
}

/* The definitions of a HELLO's experiments that build, added to w. */
static void s_add_defs(xp_scheduler *s, xp_sched_worker *w,
                       const xp_msg_hello *m)
{
    s->malformed += m->n_bad;
    for (size_t i = 0; i < m->n_experiments; i++) {
        const xp_msg_experiment *e = &m->experiments[i];
        xp_error_t err;
        bson_t code;
        xp__msg_doc_view(e->code, &code);
        xp_sched_def *def =
            xp__sched_def_register(s, e->id, e->code_hash, &code, true, &err);
        if (!def) {
            xp__log(XP_LOG_WARNING, "Worker %s on %s: %s", w->id, w->host,
                    err.message);
            continue;
        }
        zlistx_add_end(w->defs, def->key);
    }
}

/* A HELLO announcing more experiments than one worker may: refused whole
 * (each definition costs memory) with one line, logged once per peer.
 * The message does not ask for a HELLO: the worker would send it again
 * at once. */
static bool s_too_many(xp_scheduler *s, zframe_t *from, const char *id,
                       const xp_msg_hello *m)
{
    size_t announced = m->n_experiments + m->n_bad;
    if (announced <= s->opts.max_experiments_per_worker)
        return false;
    char why[256];
    snprintf(why, sizeof why,
             "refused: this worker announces %zu experiments, more than the "
             "%zu one worker may (--max-experiments-per-worker)",
             announced, s->opts.max_experiments_per_worker);
    if (xp__sched_first_time(s, "hello", id))
        xp__log(XP_LOG_WARNING, "Worker %s on %.64s %s", id, m->host, why);
    xp__sched_send_error(s, from, why);
    return true;
}

void xp__sched_worker_hello(xp_scheduler *s, zframe_t *from, const char *id,
                            const char *who, const xp_msg_hello *m)
{
    xp_sched_worker *old = xp__sched_worker_find(s, id);
    if (old)
        xp__sched_worker_lost(s, old, "registered again");
    if (s_too_many(s, from, id, m))
        return;
    xp_sched_worker *w = bson_malloc0(sizeof *w);
    bson_strncpy(w->id, id, sizeof w->id);
    bson_strncpy(w->key, who, sizeof w->key);
    w->identity = zframe_dup(from);
    bson_strncpy(w->host, m->host, sizeof w->host);
    w->pid = m->pid;
    bson_strncpy(w->job_id, m->job_id ? m->job_id : "", sizeof w->job_id);
    bson_strncpy(w->job_node, m->job_node ? m->job_node : "",
                 sizeof w->job_node);
    w->job_index = m->job_index;
    w->slots = (int)m->slots;
    /* A worker that does not say has the default. */
    w->max_message =
        m->max_message ? (size_t)m->max_message : XP_MAX_MESSAGE_DEFAULT;
    /* A worker registering again may still run steps of lost tasks:
     * those slots are not free. */
    w->busy = (int)m->busy;
    w->bundles = m->bundles;
    w->prefetch = (int)m->prefetch;
    w->last_seen_ms = xp__sched_now();
    w->defs = zlistx_new();
    zlistx_set_destructor(w->defs, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_duplicator(w->defs, (zlistx_duplicator_fn *)strdup);
    w->tasks = zlistx_new();
    s_add_defs(s, w, m);
    zhashx_insert(s->workers, w->id, w);
    xp__log(XP_LOG_INFO,
            "Worker %s on %s connected with %d slot(s), prefetch %d", w->id,
            w->host, w->slots, w->prefetch);
    xp_msg_welcome welcome = {.heartbeat_ms = s->opts.heartbeat_ms,
                              .max_message = (int64_t)s->opts.max_message,
                              .bundles = true};
    xp__sched_send(s, from, xp__msg_welcome_encode(&welcome));
}

static bool s_runs(const xp_sched_worker *w, const char *def_key)
{
    for (const char *k = zlistx_first(w->defs); k; k = zlistx_next(w->defs))
        if (strcmp(k, def_key) == 0)
            return true;
    return false;
}

int xp__sched_worker_prefetch(const xp_sched_worker *w, const xp_sched_def *def)
{
    if (!w->bundles || w->prefetch <= 0 || !def->timed)
        return 0;
    double step = def->step_s > 1e-6 ? def->step_s : 1e-6;
    double n = w->slots * XP_SCHED_PREFETCH_WINDOW_S / step;
    return n < w->prefetch ? (int)n : w->prefetch;
}

/* How w ranks for a task of def and bytes: free slots first, then room
 * beyond them; 0: it cannot take it now. */
static int s_rank(const xp_sched_worker *w, const xp_sched_def *def,
                  size_t bytes)
{
    if (w->max_message < bytes || !s_runs(w, def->key))
        return 0;
    if (w->busy < w->slots)
        return (1 << 24) + w->slots - w->busy;
    if (bytes > XP_SCHED_PREFETCH_TASK_MAX)
        return 0;
    int room = w->slots + xp__sched_worker_prefetch(w, def) - w->busy;
    return room > 0 ? room : 0;
}

xp_sched_worker *xp__sched_worker_pick(xp_scheduler *s, const xp_sched_def *def,
                                       size_t bytes)
{
    xp_sched_worker *best = NULL;
    int best_rank = 0;
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers)) {
        int rank = s_rank(w, def, bytes);
        if (rank > best_rank) {
            best = w;
            best_rank = rank;
        }
    }
    return best;
}

void xp__sched_worker_flush(xp_scheduler *s, xp_sched_worker *w)
{
    if (!w->out_open)
        return;
    w->out_open = false;
    zmsg_t *msg = xp__msg_bundle_finish(&w->out);
    if (msg)
        xp__sched_send(s, w->identity, msg);
}

size_t xp__sched_def_max_message(xp_scheduler *s, const char *def_key)
{
    size_t most = 0;
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers))
        if (w->max_message > most && s_runs(w, def_key))
            most = w->max_message;
    return most;
}

int xp__sched_free_slots(xp_scheduler *s)
{
    int free_slots = 0;
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers)) {
        int room = w->slots + (w->bundles ? w->prefetch : 0) - w->busy;
        free_slots += room > 0 ? room : 0;
    }
    return free_slots;
}

int xp__sched_def_slots(xp_scheduler *s, const xp_sched_def *def)
{
    int slots = 0;
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers))
        if (s_runs(w, def->key))
            slots += w->slots;
    return slots;
}

int xp__sched_def_capacity(xp_scheduler *s, const xp_sched_def *def)
{
    int n = 0;
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers))
        if (s_runs(w, def->key))
            n += w->slots + xp__sched_worker_prefetch(w, def);
    return n;
}

void xp__sched_def_timed(xp_sched_def *def, double elapsed)
{
    if (!(elapsed >= 0) || elapsed > 1e6)
        return; /* not a duration: a peer's mistake */
    def->step_s =
        def->timed ? def->step_s + (elapsed - def->step_s) / 8 : elapsed;
    def->timed = true;
}

void xp__sched_workers_heartbeat(xp_scheduler *s, int64_t now, bool judge)
{
    zlistx_t *lost = zlistx_new();
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers)) {
        if (judge && now - w->last_seen_ms > 3 * s->opts.heartbeat_ms)
            zlistx_add_end(lost, w);
        else
            xp__sched_send(s, w->identity,
                           xp__msg_empty_encode(XP_MSG_HEARTBEAT));
    }
    for (xp_sched_worker *w = zlistx_first(lost); w; w = zlistx_next(lost))
        xp__sched_worker_lost(s, w, "no heartbeat");
    zlistx_destroy(&lost);
}
