/* scheduler.c — the xp-scheduler engine: one thread, one ROUTER socket,
 * an event loop that records submitted trials as queued (before answering
 * the client), splits them into step tasks, gives ready tasks to workers
 * with free slots and the trial's code, collects results through the
 * common trial lifecycle, and re-queues the tasks of workers that stop
 * answering. */
#include "remote/scheduler.h"

#include "capture/capture.h"
#include "experiment.h"

#include "remote/keys.h"

#include "trial.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/log.h"
#include "util/names.h"
#include "util/sys.h"
#include "value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_worker s_worker;
typedef struct s_def s_def;
typedef struct s_strial s_strial;
typedef struct s_batch s_batch;
typedef struct s_pending s_pending;

/* One step of one trial, waiting for or running on a worker. */
typedef struct {
    s_strial *trial;
    xp_node *node;
    int64_t attempt;
    s_worker *worker; /* NULL while queued */
    char key[XP_ID_MAX + XP_NAME_MAX + 32];
    int64_t dispatched_ms;
} s_task;

struct s_worker {
    char id[64]; /* hex of the routing identity */
    zframe_t *identity;
    char host[256];
    int64_t pid;
    int slots, busy;
    int64_t last_seen_ms;
    zlistx_t *defs;  /* "experiment/code_hash" strings it can run */
    zlistx_t *tasks; /* s_task* in flight on it */
};

/* A trial recorded as queued and not yet taken up: only its record, so
 * that a long queue costs little more than the records themselves. It
 * becomes an s_strial (full trial state) when a worker can run it soon. */
struct s_pending {
    s_pending *next;
    s_batch *batch; /* NULL: resumed after a restart */
    uint32_t len;
    uint8_t doc[]; /* BSON of the queued record, with trial_id */
};

typedef struct {
    s_pending *head, *tail;
    size_t n;
} s_fifo;

static void s_fifo_push(s_fifo *f, s_pending *p)
{
    p->next = NULL;
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
    f->n++;
}

static s_pending *s_fifo_pop(s_fifo *f)
{
    s_pending *p = f->head;
    if (p) {
        f->head = p->next;
        if (!f->head)
            f->tail = NULL;
        f->n--;
    }
    return p;
}

/* Moves every item of from to the end (or front) of to. */
static void s_fifo_splice(s_fifo *to, s_fifo *from, bool front)
{
    if (!from->head)
        return;
    if (!to->head) {
        *to = *from;
    } else if (front) {
        from->tail->next = to->head;
        to->head = from->head;
        to->n += from->n;
    } else {
        to->tail->next = from->head;
        to->tail = from->tail;
        to->n += from->n;
    }
    memset(from, 0, sizeof *from);
}

static void s_fifo_clear(s_fifo *f)
{
    s_pending *p;
    while ((p = s_fifo_pop(f)) != NULL)
        free(p);
}

/* One experiment definition (experiment id + code hash) with its handle on
 * the backend, built from the code document a worker announced. */
struct s_def {
    char key[XP_ID_MAX + 40];
    xp_experiment *ex;
    s_fifo pending;    /* trials not taken up yet */
    size_t active;     /* trials taken up and not finished */
    size_t batches;    /* batches kept that refer to it */
    int64_t unused_ms; /* since when nothing needs it; 0: in use */
    bool announced;    /* "waiting for code" logged since the last worker */
};

struct s_strial {
    s_def *def;
    s_batch *batch;
    xp_trial *t;
    size_t tasks_alive;
    s_strial *next_done; /* in the scheduler's list of trials to record */
    s_strial *next_mark; /* in its list of trials to record as running */
    bool marked;         /* recorded as running (or listed to be) */
    bool ok;             /* once finished */
    bson_t *report;      /* its line for the batch, until stored */
};

/* What one client (its CURVE public key, else its connection) has
 * accepted and not finished, for the per-client limit. */
typedef struct {
    char key[64];
    size_t unfinished;
    size_t batches; /* its batches still kept */
} s_client;

struct s_batch {
    int64_t id;
    s_def *def;
    s_client *owner;
    int64_t complete_ms; /* when its last trial was recorded; 0 before */
    zframe_t *client;
    size_t total, done, failed;
    size_t running;   /* tasks of the batch on workers */
    bson_t *finished; /* array of {trial_id, status, result, ...} */
    uint32_t n_finished;
};

struct xp_scheduler {
    xp_scheduler_options opts;
    char *backend;
    char *name; /* owner of the trials it accepts */
    zsock_t *router;
    zactor_t *auth;    /* CURVE authenticator, NULL when plain */
    zsock_t *monitor;  /* with auth: handshake failures of the router */
    uint64_t refused;  /* connections refused by the authenticator */
    zhashx_t *clients; /* client key -> s_client: unfinished trials */
    char endpoint[256];
    zhashx_t *workers; /* id -> s_worker */
    zhashx_t *defs;    /* key -> s_def */
    zhashx_t *latest;  /* experiment id -> "id/hash" of latest def */
    zhashx_t *tasks;   /* key -> s_task (queued or running) */
    zhashx_t *batches; /* "%lld" -> s_batch */
    zlistx_t *queue;   /* s_task* waiting for a worker (FIFO) */
    /* Trials whose last step is back, recorded together (group commit)
     * once per turn of the loop. */
    s_strial *done_head, **done_tail;
    s_strial *mark_head; /* first step dispatched this turn */
    int64_t next_batch;
    int64_t last_heartbeat_ms;
    volatile int stop;
    uint64_t malformed;
};

static int64_t s_now(void)
{
    return zclock_mono();
}

/* ---------------------------------------------------------------- replies */

static void s_send(xp_scheduler *s, zframe_t *to, xp_msg_type type,
                   const bson_t *body)
{
    zmsg_t *msg = xp__msg_new(type, body);
    zframe_t *id = zframe_dup(to);
    zmsg_prepend(msg, &id);
    zmsg_send(&msg, s->router);
}

static void s_send_error(xp_scheduler *s, zframe_t *to, const char *message)
{
    bson_t body = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&body, "message", message);
    s_send(s, to, XP_MSG_ERROR, &body);
    bson_destroy(&body);
}

/* ---------------------------------------------------------------- tasks */

static void s_task_key(char *key, size_t size, const s_strial *st,
                       const xp_node *n)
{
    snprintf(key, size, "%s/%lld/%s", xp_experiment_id(st->def->ex),
             (long long)xp__trial_id(st->t), n->name);
}

/* Queues every step of st that became ready. */
static void s_enqueue_ready(xp_scheduler *s, s_strial *st)
{
    xp_node *n;
    while ((n = xp__trial_take_ready(st->t)) != NULL) {
        s_task *task = calloc(1, sizeof *task);
        task->trial = st;
        task->node = n;
        task->attempt = 1;
        s_task_key(task->key, sizeof task->key, st, n);
        zhashx_insert(s->tasks, task->key, task);
        zlistx_add_end(s->queue, task);
        st->tasks_alive++;
    }
}

static void s_batch_free(s_batch *b)
{
    zframe_destroy(&b->client);
    bson_destroy(b->finished);
    free(b);
}

/* The line a batch reports for a finished trial. */
static bson_t *s_report(xp_trial *t, bool ok, const xp_value *result,
                        const char *failure)
{
    bson_t *item = bson_new();
    BSON_APPEND_INT64(item, "trial_id", xp__trial_id(t));
    BSON_APPEND_UTF8(item, "status", ok ? "succeeded" : "failed");
    if (result)
        xp__value_append_bson(item, "result", result);
    else
        BSON_APPEND_NULL(item, "result");
    BSON_APPEND_UTF8(item, "result_type", xp_type_name(xp_value_type(result)));
    BSON_APPEND_UTF8(item, "description", failure ? failure : "");
    return item;
}

static void s_batch_finished(s_batch *b, const bson_t *item, bool ok)
{
    if (b->done + b->failed + 1 >= b->total)
        b->complete_ms = s_now();
    char key[16];
    const char *k;
    bson_uint32_to_string(b->n_finished++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT(b->finished, k, item);
    if (ok)
        b->done++;
    else
        b->failed++;
}

/* Lists st for recording when its last task is back. */
static void s_maybe_finish(xp_scheduler *s, s_strial *st)
{
    if (st->tasks_alive > 0 || !xp__trial_done(st->t))
        return;
    st->next_done = NULL;
    *s->done_tail = st;
    s->done_tail = &st->next_done;
}

static void s_pending_push(s_fifo *f, s_batch *batch, const bson_t *doc);

/* Writes, inside the caller's group, the running records of def's trials
 * whose first step went out (status running, pid 0: the scheduler's),
 * so that the history shows them as a local run would; takes them off
 * the list. */
static void s_write_running(xp_scheduler *s, s_def *def)
{
    xp_backend *be = def->ex->backend;
    size_t failed = 0;
    xp_error_t err;
    s_strial **link = &s->mark_head;
    while (*link) {
        s_strial *st = *link;
        if (st->def != def) {
            link = &st->next_mark;
            continue;
        }
        *link = st->next_mark;
        if (!be->ops->trial_running)
            continue;
        bson_t *rec = xp__trial_record(st->t);
        bson_t doc = BSON_INITIALIZER;
        bson_copy_to_excluding_noinit(rec, &doc, "status", NULL);
        BSON_APPEND_UTF8(&doc, "status", "running");
        if (be->ops->trial_running(be, xp__trial_id(st->t), &doc, &err) != 0)
            failed++;
        bson_destroy(&doc);
        bson_destroy(rec);
    }
    /* Only the status shown while it runs: the trial goes on. */
    if (failed)
        xp__log(XP_LOG_WARNING,
                "Recording %zu trial(s) of %s as running "
                "failed: %s",
                failed, def->ex->id, err.message);
}

/* One group commit for def: the running records, then the finished
 * trials of list, which are then reported to their batches. If the group
 * cannot be stored, nothing of it is: the finished trials are queued
 * again from their records. */
static void s_record_group(xp_scheduler *s, s_def *def, s_strial *list)
{
    xp_backend *be = def->ex->backend;
    xp_error_t gerr;
    bool grouped = be->ops->group_begin && be->ops->group_begin(be, &gerr) == 0;
    s_write_running(s, def);
    size_t n = 0;
    for (s_strial *st = list; st; st = st->next_done, n++) {
        xp_value *result = NULL;
        xp_error_t err;
        st->ok = xp__trial_finish(st->t, &result, &err) == 0;
        if (st->batch) /* reported once the group is stored */
            st->report =
                s_report(st->t, st->ok, result, st->ok ? NULL : err.message);
        xp_value_destroy(&result);
    }
    bool lost = grouped && be->ops->group_end(be, &gerr) != 0;
    s_fifo again = {0};
    while (list) {
        s_strial *st = list;
        list = st->next_done;
        if (lost) {
            bson_t *doc = xp__trial_record(st->t);
            s_pending_push(&again, st->batch, doc);
            bson_destroy(doc);
        } else if (st->report) {
            s_batch_finished(st->batch, st->report, st->ok);
        }
        if (!lost && st->batch && st->batch->owner &&
            st->batch->owner->unfinished > 0)
            st->batch->owner->unfinished--;
        if (st->report)
            bson_destroy(st->report);
        xp__trial_free(&st->t);
        def->active--;
        free(st);
    }
    if (lost && n) {
        xp__log(XP_LOG_ERROR,
                "Recording %zu finished trial(s) of %s failed (%s); they "
                "are queued again",
                n, def->ex->id, gerr.message);
        s_fifo_splice(&def->pending, &again, true);
    } else if (lost) {
        xp__log(XP_LOG_WARNING, "Recording trials of %s as running failed: %s",
                def->ex->id, gerr.message);
    }
}

/* Records what this turn left (trials finished, trials that started
 * running), one group commit per definition. */
static void s_record(xp_scheduler *s)
{
    while (s->done_head || s->mark_head) {
        s_def *def = s->mark_head ? s->mark_head->def : s->done_head->def;
        s_strial *mine = NULL, **mine_tail = &mine;
        s_strial **link = &s->done_head;
        s->done_tail = &s->done_head;
        while (*link) {
            s_strial *st = *link;
            if (st->def == def) {
                *link = st->next_done;
                st->next_done = NULL;
                *mine_tail = st;
                mine_tail = &st->next_done;
            } else {
                link = &st->next_done;
                s->done_tail = link;
            }
        }
        s_record_group(s, def, mine);
    }
    s->done_tail = &s->done_head;
}

static void s_task_free(xp_scheduler *s, s_task *task)
{
    zhashx_delete(s->tasks, task->key);
    free(task);
}

/* ---------------------------------------------------------------- defs */

static s_def *s_def_get(xp_scheduler *s, const char *experiment,
                        const char *code_hash)
{
    char key[XP_ID_MAX + 40];
    snprintf(key, sizeof key, "%s/%s", experiment, code_hash);
    return zhashx_lookup(s->defs, key);
}

/* Registers (once) the definition a worker announced; checks that the
 * code document hashes to the announced hash. */
static s_def *s_def_register(xp_scheduler *s, const char *experiment,
                             const char *code_hash, const bson_t *code,
                             bool from_worker, xp_error_t *err)
{
    s_def *def = s_def_get(s, experiment, code_hash);
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
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s->backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    if (xp_experiment_open(&ex, experiment, &o, err) != 0)
        return NULL;
    if (xp__graph_from_code(ex, code, err) != 0) {
        xp_experiment_destroy(&ex);
        return NULL;
    }
    pthread_mutex_lock(&ex->lock);
    int rc = xp__graph_freeze(ex, err);
    pthread_mutex_unlock(&ex->lock);
    if (rc != 0) {
        xp_experiment_destroy(&ex);
        return NULL;
    }
    def = calloc(1, sizeof *def);
    snprintf(def->key, sizeof def->key, "%s/%s", experiment, code_hash);
    def->ex = ex;
    zhashx_insert(s->defs, def->key, def);
    if (from_worker)
        zhashx_update(s->latest, experiment, def->key);
    xp__log(XP_LOG_INFO, "Experiment %s registered (code %s)", experiment,
            code_hash);
    return def;
}

/* ---------------------------------------------------------------- workers */

static void s_worker_free(void **item)
{
    s_worker *w = *item;
    if (!w)
        return;
    zframe_destroy(&w->identity);
    zlistx_destroy(&w->defs);
    zlistx_destroy(&w->tasks);
    free(w);
    *item = NULL;
}

/* Task left its worker (result, loss): no longer running. */
static void s_task_off_worker(s_task *task)
{
    task->worker = NULL;
    if (task->trial->batch && task->trial->batch->running > 0)
        task->trial->batch->running--;
}

/* The worker is gone: its tasks go back to the front of the queue with
 * the next attempt, or fail their trial after max_attempts. */
static void s_worker_lost(xp_scheduler *s, s_worker *w, const char *why)
{
    xp__log(XP_LOG_WARNING,
            "Worker %s on %s lost (%s); %zu task(s) back "
            "in the queue",
            w->id, w->host, why, zlistx_size(w->tasks));
    s_task *task;
    while ((task = zlistx_first(w->tasks)) != NULL) {
        zlistx_delete(w->tasks, zlistx_cursor(w->tasks));
        s_task_off_worker(task);
        if (task->attempt >= s->opts.max_attempts) {
            char failure[512];
            snprintf(failure, sizeof failure,
                     "worker lost %lld time(s) running this step (last: "
                     "%.200s, %s)",
                     (long long)task->attempt, w->host, why);
            s_strial *st = task->trial;
            xp__trial_step_done(st->t, task->node, NULL, failure);
            st->tasks_alive--;
            s_task_free(s, task);
            s_maybe_finish(s, st);
            continue;
        }
        task->attempt++;
        zlistx_add_start(s->queue, task);
    }
    zhashx_delete(s->workers, w->id);
}

static void s_identity_hex(zframe_t *identity, char out[64])
{
    const uint8_t *d = zframe_data(identity);
    size_t n = zframe_size(identity);
    if (n > 31)
        n = 31;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[2 * n] = '\0';
}

static void s_on_hello(xp_scheduler *s, zframe_t *from, const char *id,
                       const bson_t *body)
{
    int64_t slots = 0, pid = 0;
    bson_t list;
    const char *host = xp__bson_utf8(body, "host");
    if (!host || !xp__bson_int64(body, "slots", &slots) || slots < 1 ||
        slots > 4096 || !xp__bson_sub(body, "experiments", &list)) {
        s->malformed++;
        s_send_error(s, from, "malformed HELLO");
        return;
    }
    xp__bson_int64(body, "pid", &pid);
    s_worker *old = zhashx_lookup(s->workers, id);
    if (old)
        s_worker_lost(s, old, "registered again");
    s_worker *w = calloc(1, sizeof *w);
    bson_strncpy(w->id, id, sizeof w->id);
    w->identity = zframe_dup(from);
    bson_strncpy(w->host, host, sizeof w->host);
    w->pid = pid;
    w->slots = (int)slots;
    /* A worker registering again may still run steps of lost tasks:
     * those slots are not free. */
    int64_t busy = 0;
    if (xp__bson_int64(body, "busy", &busy) && busy > 0 && busy <= slots)
        w->busy = (int)busy;
    w->last_seen_ms = s_now();
    w->defs = zlistx_new();
    zlistx_set_destructor(w->defs, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_duplicator(w->defs, (zlistx_duplicator_fn *)strdup);
    w->tasks = zlistx_new();
    bson_iter_t it;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it)) {
        bson_t e, code;
        uint32_t len;
        const uint8_t *data;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            continue;
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&e, data, len))
            continue;
        const char *exp = xp__bson_utf8(&e, "id");
        const char *hash = xp__bson_utf8(&e, "code_hash");
        xp_error_t err;
        if (!exp || !hash || xp_check_id(exp, &err) != 0 ||
            !xp__bson_sub(&e, "code", &code)) {
            s->malformed++;
            continue;
        }
        s_def *def = s_def_register(s, exp, hash, &code, true, &err);
        if (!def) {
            xp__log(XP_LOG_WARNING, "Worker %s on %s: %s", w->id, w->host,
                    err.message);
            continue;
        }
        zlistx_add_end(w->defs, def->key);
    }
    zhashx_insert(s->workers, w->id, w);
    xp__log(XP_LOG_INFO, "Worker %s on %s connected with %d slot(s)", w->id,
            w->host, w->slots);
    bson_t reply = BSON_INITIALIZER;
    BSON_APPEND_INT32(&reply, "heartbeat_ms", s->opts.heartbeat_ms);
    s_send(s, from, XP_MSG_WELCOME, &reply);
    bson_destroy(&reply);
}

static bool s_worker_runs(const s_worker *w, const char *def_key)
{
    for (const char *k = zlistx_first(w->defs); k; k = zlistx_next(w->defs))
        if (strcmp(k, def_key) == 0)
            return true;
    return false;
}

static s_worker *s_pick_worker(xp_scheduler *s, const char *def_key)
{
    s_worker *best = NULL;
    for (s_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers)) {
        if (w->busy < w->slots && s_worker_runs(w, def_key) &&
            (!best || w->slots - w->busy > best->slots - best->busy))
            best = w;
    }
    return best;
}

static int s_free_slots(xp_scheduler *s)
{
    int free_slots = 0;
    for (s_worker *w = zhashx_first(s->workers); w; w = zhashx_next(s->workers))
        free_slots += w->slots - w->busy;
    return free_slots;
}

/* Sends queued tasks to workers with free slots and the task's code. */
/* Sends task to worker w and counts it as running there. */
static void s_send_task(xp_scheduler *s, s_worker *w, s_task *task)
{
    s_strial *st = task->trial;
    bson_t body = BSON_INITIALIZER, inputs;
    BSON_APPEND_INT64(&body, "trial", xp__trial_id(st->t));
    BSON_APPEND_INT64(&body, "attempt", task->attempt);
    BSON_APPEND_UTF8(&body, "experiment", xp_experiment_id(st->def->ex));
    BSON_APPEND_UTF8(&body, "code_hash", st->def->ex->code_hash);
    BSON_APPEND_UTF8(&body, "step", task->node->name);
    BSON_APPEND_INT64(&body, "seed", (int64_t)xp__trial_seed(st->t));
    BSON_APPEND_ARRAY_BEGIN(&body, "inputs", &inputs);
    for (size_t i = 0; i < task->node->n_inputs; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        xp__value_append_bson(&inputs, k,
                              xp__trial_value(st->t, task->node->inputs[i]));
    }
    bson_append_array_end(&body, &inputs);
    s_send(s, w->identity, XP_MSG_TASK, &body);
    bson_destroy(&body);
    task->worker = w;
    task->dispatched_ms = s_now();
    if (!st->marked) {
        st->marked = true;
        st->next_mark = s->mark_head;
        s->mark_head = st;
    }
    zlistx_add_end(w->tasks, task);
    w->busy++;
    if (st->batch)
        st->batch->running++;
}

/* Sends queued tasks to workers with free slots and the task's code, in
 * queue order; a task no free worker can run keeps its place. */
static void s_dispatch(xp_scheduler *s)
{
    int free_slots = s_free_slots(s);
    s_task *task = zlistx_first(s->queue);
    while (task && free_slots > 0) {
        /* Deleting a node other than the cursor leaves the cursor be. */
        void *handle = zlistx_cursor(s->queue);
        s_task *next = zlistx_next(s->queue);
        s_worker *w = s_pick_worker(s, task->trial->def->key);
        if (w) {
            zlistx_delete(s->queue, handle);
            s_send_task(s, w, task);
            free_slots--;
        }
        task = next;
    }
}

/* Reads the metric points of a RESULT into the trial. */
static int s_take_metrics(xp_trial *t, const bson_t *body)
{
    bson_t list;
    if (!xp__bson_sub(body, "metrics", &list))
        return 0;
    bson_iter_t it, f;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it)) {
        const char *name = NULL;
        const uint8_t *ep = NULL, *vp = NULL;
        uint32_t elen = 0, vlen = 0;
        if (!bson_iter_recurse(&it, &f))
            return -1;
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (strcmp(k, "name") == 0 && BSON_ITER_HOLDS_UTF8(&f))
                name = bson_iter_utf8(&f, NULL);
            else if (strcmp(k, "epochs") == 0 && BSON_ITER_HOLDS_BINARY(&f))
                bson_iter_binary(&f, NULL, &elen, &ep);
            else if (strcmp(k, "values") == 0 && BSON_ITER_HOLDS_BINARY(&f))
                bson_iter_binary(&f, NULL, &vlen, &vp);
        }
        if (!name || elen != vlen || elen % 8 != 0 ||
            xp_check_name("metric", name, NULL) != 0)
            return -1;
        for (uint32_t i = 0; i < elen / 8; i++) {
            uint64_t e, v;
            double d;
            memcpy(&e, ep + 8 * i, 8);
            memcpy(&v, vp + 8 * i, 8);
            e = BSON_UINT64_FROM_LE(e);
            v = BSON_UINT64_FROM_LE(v);
            memcpy(&d, &v, 8);
            xp__trial_save_metric(t, name, (int64_t)e, d);
        }
    }
    return 0;
}

static void s_on_result(xp_scheduler *s, s_worker *w, const bson_t *body)
{
    int64_t trial = 0, attempt = 0;
    const char *step = xp__bson_utf8(body, "step");
    if (!step || !xp__bson_int64(body, "trial", &trial) ||
        !xp__bson_int64(body, "attempt", &attempt)) {
        s->malformed++;
        return;
    }
    /* Find the task this worker is running. */
    s_task *task = NULL;
    for (s_task *t = zlistx_first(w->tasks); t; t = zlistx_next(w->tasks)) {
        if (xp__trial_id(t->trial->t) == trial &&
            strcmp(t->node->name, step) == 0) {
            task = t;
            break;
        }
    }
    if (!task || task->attempt != attempt) {
        xp__log(XP_LOG_DEBUG,
                "Ignoring stale result of trial %lld step %s "
                "attempt %lld",
                (long long)trial, step, (long long)attempt);
        /* A step it ran before registering again has freed its slot. */
        if (w->busy > (int)zlistx_size(w->tasks))
            w->busy--;
        return;
    }
    zlistx_delete(w->tasks, zlistx_find(w->tasks, task));
    s_task_off_worker(task);
    s_strial *st = task->trial;
    bool ok = xp__bson_bool(body, "ok", false);
    const char *failure = xp__bson_utf8(body, "failure");
    if (!ok && failure && strcmp(failure, "worker busy") == 0) {
        /* Its slots are taken by steps we do not know of: requeue and
         * count the slot as busy until one of those reports back. */
        zlistx_add_start(s->queue, task);
        return;
    }
    w->busy--;
    xp_value *out = NULL;
    char why[512] = "";
    if (ok) {
        bson_iter_t it;
        out = xp_value_new();
        xp_error_t err;
        if (!bson_iter_init_find(&it, body, "output") ||
            xp__value_from_iter(out, &it, &err) != 0) {
            xp_value_destroy(&out);
            snprintf(why, sizeof why, "worker %s sent a malformed output",
                     w->id);
        } else if (s_take_metrics(st->t, body) != 0) {
            xp_value_destroy(&out);
            snprintf(why, sizeof why, "worker %s sent malformed metrics",
                     w->id);
        }
    } else {
        s_take_metrics(st->t, body);
        snprintf(why, sizeof why, "%s",
                 failure ? failure : "step failed on the worker");
    }
    double elapsed = 0;
    bson_iter_t e;
    if (bson_iter_init_find(&e, body, "elapsed") && BSON_ITER_HOLDS_DOUBLE(&e))
        elapsed = bson_iter_double(&e);
    xp__trial_note_step(st->t, task->node->name, w->host, w->id, task->attempt,
                        elapsed);
    xp__trial_step_done(st->t, task->node, out, out ? NULL : why);
    st->tasks_alive--;
    s_task_free(s, task);
    s_enqueue_ready(s, st);
    s_maybe_finish(s, st);
}

/* ---------------------------------------------------------------- clients */

static void s_heartbeats(xp_scheduler *s, bool judge);

/* Heartbeats to the workers during a long piece of work (a large
 * submission), so that they do not take the scheduler for gone; losses
 * are judged only once the inbox has been read. */
static void s_keepalive(xp_scheduler *s)
{
    s_heartbeats(s, false);
}

/* Appends a queued record (with its trial_id) to f. */
static void s_pending_push(s_fifo *f, s_batch *batch, const bson_t *doc)
{
    s_pending *p = malloc(sizeof *p + doc->len);
    if (!p)
        return; /* stays queued in the backend for the next start */
    p->batch = batch;
    p->len = doc->len;
    memcpy(p->doc, bson_get_data(doc), doc->len);
    s_fifo_push(f, p);
}

/* Records one trial as queued and appends its record to f; the full
 * trial state is built only when it is taken up. */
static int s_accept(xp_scheduler *s, s_def *def, s_fifo *f, s_batch *b,
                    const xp_run_options *o, int64_t *id, xp_error_t *err)
{
    xp_trial *t = NULL;
    if (xp__trial_start(&t, def->ex, o, s->name, err) != 0)
        return -1;
    *id = xp__trial_id(t);
    bson_t *doc = xp__trial_record(t);
    s_pending_push(f, b, doc);
    bson_destroy(doc);
    xp__trial_free(&t);
    return 0;
}

/* Slots of the connected workers that run def's code. */
static int s_def_slots(xp_scheduler *s, const s_def *def)
{
    int slots = 0;
    for (s_worker *w = zhashx_first(s->workers); w; w = zhashx_next(s->workers))
        if (s_worker_runs(w, def->key))
            slots += w->slots;
    return slots;
}

/* Takes up queued trials of every definition some worker runs, keeping
 * about twice the workers' slots of trials in memory: enough to keep
 * every slot busy, little enough that the queue may be long. */
static void s_take_up(xp_scheduler *s)
{
    for (s_def *def = zhashx_first(s->defs); def; def = zhashx_next(s->defs)) {
        if (!def->pending.head)
            continue;
        int slots = s_def_slots(s, def);
        if (slots == 0) {
            if (!def->announced)
                xp__log(XP_LOG_WARNING,
                        "%zu trial(s) of %s wait for a worker with code %s",
                        def->pending.n, def->ex->id, def->ex->code_hash);
            def->announced = true;
            continue;
        }
        def->announced = false;
        while (def->pending.head && def->active < 2 * (size_t)slots + 16) {
            s_pending *p = s_fifo_pop(&def->pending);
            bson_t doc;
            xp_error_t err;
            s_strial *st = calloc(1, sizeof *st);
            if (!st || !bson_init_static(&doc, p->doc, p->len) ||
                xp__trial_resume(&st->t, def->ex, &doc, &err) != 0) {
                int64_t id = 0;
                if (bson_init_static(&doc, p->doc, p->len))
                    xp__bson_int64(&doc, "trial_id", &id);
                xp__log(XP_LOG_ERROR, "Queued trial %lld of %s cannot run: %s",
                        (long long)id, def->ex->id,
                        st ? err.message : "out of memory");
                free(st);
                free(p);
                continue;
            }
            st->def = def;
            st->batch = p->batch;
            free(p);
            def->active++;
            s_enqueue_ready(s, st);
            s_maybe_finish(s, st);
        }
    }
}

/* Checks a trial's parameters against the definition before anything is
 * recorded: every name declared, every needed parameter defined. */
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

static void s_client_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* The client's record for the per-client limit, made on first use. */
static s_client *s_client_get(xp_scheduler *s, const char *who)
{
    s_client *c = zhashx_lookup(s->clients, who);
    if (!c) {
        c = calloc(1, sizeof *c);
        bson_strncpy(c->key, who, sizeof c->key);
        zhashx_insert(s->clients, c->key, c);
    }
    return c;
}

/* Drops a batch (its results were read, or kept long enough), and its
 * client's record once nothing of it is left. */
static void s_batch_forget(xp_scheduler *s, s_batch *b)
{
    char bkey[32];
    snprintf(bkey, sizeof bkey, "%lld", (long long)b->id);
    s_client *owner = b->owner;
    if (b->def)
        b->def->batches--;
    zhashx_delete(s->batches, bkey);
    s_batch_free(b);
    if (owner && --owner->batches == 0 && owner->unfinished == 0)
        zhashx_delete(s->clients, owner->key);
}

/* Closes the definitions nothing has needed for opts.keep_ms (no
 * connected worker runs them, no trial or batch refers to them): each
 * holds an open experiment, and code changes over months would pile
 * them up. A worker or a trial that brings one back registers it again. */
static void s_expire_defs(xp_scheduler *s)
{
    int64_t now = s_now();
    zlistx_t *old = zlistx_new();
    for (s_def *d = zhashx_first(s->defs); d; d = zhashx_next(s->defs)) {
        bool used =
            d->active || d->pending.head || d->batches || s_def_slots(s, d) > 0;
        if (used)
            d->unused_ms = 0;
        else if (!d->unused_ms)
            d->unused_ms = now;
        else if (now - d->unused_ms > s->opts.keep_ms)
            zlistx_add_end(old, d);
    }
    for (s_def *d = zlistx_first(old); d; d = zlistx_next(old)) {
        const char *latest = zhashx_lookup(s->latest, d->ex->id);
        if (latest && strcmp(latest, d->key) == 0)
            zhashx_delete(s->latest, d->ex->id);
        xp__log(XP_LOG_INFO, "Experiment %s (code %s) unused: closed",
                d->ex->id, d->ex->code_hash);
        zhashx_delete(s->defs, d->key);
        xp_experiment_destroy(&d->ex);
        free(d);
    }
    zlistx_destroy(&old);
}

/* Drops the batches finished more than opts.keep_ms ago (a finished
 * batch is otherwise kept until its client asks once more after reading
 * every result). */
static void s_expire_batches(xp_scheduler *s)
{
    int64_t now = s_now();
    zlistx_t *old = zlistx_new();
    for (s_batch *b = zhashx_first(s->batches); b; b = zhashx_next(s->batches))
        if (b->complete_ms && now - b->complete_ms > s->opts.keep_ms)
            zlistx_add_end(old, b);
    for (s_batch *b = zlistx_first(old); b; b = zlistx_next(old))
        s_batch_forget(s, b);
    zlistx_destroy(&old);
}

static void s_on_submit(xp_scheduler *s, zframe_t *from, const char *who,
                        const bson_t *body)
{
    const char *exp = xp__bson_utf8(body, "experiment");
    const char *hash = xp__bson_utf8(body, "code_hash");
    bson_t trials;
    xp_error_t err;
    if (!exp || xp_check_id(exp, &err) != 0 ||
        !xp__bson_sub(body, "trials", &trials)) {
        s->malformed++;
        s_send_error(s, from, exp ? err.message : "malformed SUBMIT");
        return;
    }
    s_def *def = NULL;
    bson_t code;
    if (hash) {
        def = s_def_get(s, exp, hash);
        /* A definition no worker has announced yet, sent by the client
         * (a script-mode program): its trials wait for such a worker. */
        if (!def && xp__bson_sub(body, "code", &code)) {
            def = s_def_register(s, exp, hash, &code, false, &err);
            if (!def) {
                s->malformed++;
                s_send_error(s, from, err.message);
                return;
            }
        }
    } else {
        const char *key = zhashx_lookup(s->latest, exp);
        def = key ? zhashx_lookup(s->defs, key) : NULL;
    }
    if (!def) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "no worker has registered experiment '%s'%s%s", exp,
                 hash ? " with code " : "", hash ? hash : "");
        s_send_error(s, from, msg);
        return;
    }
    /* Parse and check every trial first: a bad one rejects the batch and
     * records nothing. */
    size_t n = bson_count_keys(&trials);
    xp_value **params = calloc(n ? n : 1, sizeof *params);
    int64_t *seeds = calloc(n ? n : 1, sizeof *seeds);
    bool *has_seed = calloc(n ? n : 1, sizeof *has_seed);
    bson_iter_t it;
    size_t i = 0;
    int rc = 0;
    bson_iter_init(&it, &trials);
    while (rc == 0 && bson_iter_next(&it) && i < n) {
        bson_t spec, pdoc;
        uint32_t len;
        const uint8_t *data;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
            rc = xp__error(&err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "malformed SUBMIT: trial %zu", i);
            break;
        }
        bson_iter_document(&it, &len, &data);
        bson_init_static(&spec, data, len);
        params[i] = xp_value_new();
        if (xp__bson_sub(&spec, "parameters", &pdoc))
            rc = xp__value_from_bson(params[i], &pdoc, &err);
        else
            xp_set_document(params[i]);
        has_seed[i] = xp__bson_int64(&spec, "seed", &seeds[i]);
        if (rc == 0)
            rc = s_check_params(def->ex, params[i], &err);
        i++;
    }
    if (rc != 0) {
        s_send_error(s, from, err.message);
        goto cleanup;
    }
    s_client *owner = s_client_get(s, who);
    if (owner->unfinished + n > s->opts.max_queued_per_client) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "too many trials: this client has %zu accepted and "
                 "unfinished, %zu more would pass its limit of %zu",
                 owner->unfinished, n, s->opts.max_queued_per_client);
        s_send_error(s, from, msg);
        goto cleanup;
    }
    s_batch *b = calloc(1, sizeof *b);
    b->owner = owner;
    owner->batches++;
    def->batches++;
    b->id = ++s->next_batch;
    b->def = def;
    b->client = zframe_dup(from);
    b->total = n;
    b->finished = bson_new();
    char bkey[32];
    snprintf(bkey, sizeof bkey, "%lld", (long long)b->id);
    zhashx_insert(s->batches, bkey, b);
    bson_t reply = BSON_INITIALIZER, ids;
    BSON_APPEND_INT64(&reply, "batch", b->id);
    BSON_APPEND_ARRAY_BEGIN(&reply, "ids", &ids);
    /* One group commit for the whole batch: every trial is stored as
     * queued before the client hears of it. */
    xp_backend *be = def->ex->backend;
    xp_error_t gerr;
    bool grouped = be->ops->group_begin && be->ops->group_begin(be, &gerr) == 0;
    s_fifo accepted = {0};
    size_t n_started = 0;
    for (i = 0; i < n; i++) {
        xp_run_options o = XP_RUN_OPTIONS_INIT;
        o.params = params[i];
        o.has_seed = has_seed[i];
        o.seed = (uint64_t)seeds[i];
        int64_t id;
        if (i % 256 == 255)
            s_keepalive(s);
        if (s_accept(s, def, &accepted, b, &o, &id, &err) != 0) {
            /* The backend failed: trials recorded so far run; the client
             * learns which ones were accepted. */
            xp__log(XP_LOG_ERROR,
                    "Submit to %s stopped after %zu trial(s): "
                    "%s",
                    exp, n_started, err.message);
            break;
        }
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)n_started, &k, key, sizeof key);
        BSON_APPEND_INT64(&ids, k, id);
        n_started++;
    }
    bson_append_array_end(&reply, &ids);
    if (grouped && be->ops->group_end(be, &gerr) != 0) {
        xp__log(XP_LOG_ERROR, "Submit to %s: storing %zu trial(s) failed: %s",
                exp, n_started, gerr.message);
        err = gerr;
        s_fifo_clear(&accepted);
        n_started = 0;
    }
    b->total = n_started;
    owner->unfinished += n_started;
    s_fifo_splice(&def->pending, &accepted, false);
    if (n_started == 0) {
        s_send_error(s, from, err.message);
        s_batch_forget(s, b);
    } else {
        s_send(s, from, XP_MSG_ACCEPTED, &reply);
        xp__log(XP_LOG_INFO, "Accepted %zu trial(s) of %s (batch %lld)",
                n_started, exp, (long long)b->id);
    }
    bson_destroy(&reply);
cleanup:
    for (i = 0; i < n; i++)
        xp_value_destroy(&params[i]);
    free(params);
    free(seeds);
    free(has_seed);
}

static void s_on_status(xp_scheduler *s, zframe_t *from, const bson_t *body)
{
    int64_t batch = 0, cursor = 0;
    if (!xp__bson_int64(body, "batch", &batch)) {
        s->malformed++;
        s_send_error(s, from, "malformed STATUS");
        return;
    }
    xp__bson_int64(body, "cursor", &cursor);
    char bkey[32];
    snprintf(bkey, sizeof bkey, "%lld", (long long)batch);
    s_batch *b = zhashx_lookup(s->batches, bkey);
    if (!b) {
        s_send_error(s, from, "unknown batch");
        return;
    }
    /* running counts tasks; a trial with parallel steps counts once. */
    size_t pending = b->total - b->done - b->failed;
    size_t running = b->running < pending ? b->running : pending;
    size_t queued = pending - running;
    bson_t reply = BSON_INITIALIZER, list;
    BSON_APPEND_INT64(&reply, "queued", (int64_t)queued);
    BSON_APPEND_INT64(&reply, "running", (int64_t)running);
    BSON_APPEND_INT64(&reply, "done", (int64_t)b->done);
    BSON_APPEND_INT64(&reply, "failed", (int64_t)b->failed);
    BSON_APPEND_INT64(&reply, "total", (int64_t)b->total);
    if (queued > 0 && s_def_slots(s, b->def) == 0) {
        char why[256];
        snprintf(why, sizeof why,
                 "no connected worker has code %s of experiment %s",
                 b->def->ex->code_hash, b->def->ex->id);
        BSON_APPEND_UTF8(&reply, "waiting", why);
    }
    BSON_APPEND_ARRAY_BEGIN(&reply, "finished", &list);
    bson_iter_t it;
    uint32_t k = 0, out = 0;
    if (bson_iter_init(&it, b->finished)) {
        while (bson_iter_next(&it)) {
            if (k++ < (uint64_t)cursor)
                continue;
            char key[16];
            const char *kp;
            bson_uint32_to_string(out++, &kp, key, sizeof key);
            bson_append_iter(&list, kp, -1, &it);
            if (out >= 1000)
                break; /* bounded replies; the client asks again */
        }
    }
    bson_append_array_end(&reply, &list);
    BSON_APPEND_INT64(&reply, "cursor", cursor + out);
    s_send(s, from, XP_MSG_PROGRESS, &reply);
    bson_destroy(&reply);
    /* Asked again with every result read: the client is done with it. */
    if (b->complete_ms && out == 0 && (uint64_t)cursor >= b->n_finished)
        s_batch_forget(s, b);
}

/* ---------------------------------------------------------------- loop */

static void s_handle(xp_scheduler *s, zmsg_t *msg)
{
    zframe_t *from = zmsg_pop(msg);
    if (!from)
        return;
    char id[64];
    s_identity_hex(from, id);
    /* A client is its CURVE public key when it has one (it survives
     * reconnections), else its connection. */
    char who[64];
    zframe_t *first = zmsg_first(msg);
    const char *user = first ? zframe_meta(first, "User-Id") : NULL;
    snprintf(who, sizeof who, "%s", user && *user ? user : id);
    xp_msg_type type;
    bson_t body;
    xp_error_t err;
    if (xp__msg_decode(msg, s->opts.max_message, &type, &body, &err) != 0) {
        if (s->malformed++ < 10 || s->malformed % 1000 == 0)
            xp__log(XP_LOG_WARNING, "Peer %s: %s (%llu malformed so far)", id,
                    err.message, (unsigned long long)s->malformed);
        s_send_error(s, from, err.message);
        zframe_destroy(&from);
        return;
    }
    s_worker *w = zhashx_lookup(s->workers, id);
    if (w)
        w->last_seen_ms = s_now();
    switch (type) {
    case XP_MSG_HELLO: s_on_hello(s, from, id, &body); break;
    case XP_MSG_HEARTBEAT:
        if (!w) /* a worker we declared lost: it must register again */
            s_send_error(s, from, "unknown worker: send HELLO");
        break;
    case XP_MSG_RESULT:
        if (w)
            s_on_result(s, w, &body);
        else
            s_send_error(s, from, "unknown worker: send HELLO");
        break;
    case XP_MSG_BYE:
        if (w)
            s_worker_lost(s, w, "said goodbye");
        break;
    case XP_MSG_SUBMIT: s_on_submit(s, from, who, &body); break;
    case XP_MSG_STATUS: s_on_status(s, from, &body); break;
    default:
        s->malformed++;
        s_send_error(s, from, "unexpected message type");
        break;
    }
    bson_destroy(&body);
    zframe_destroy(&from);
}

/* Sends heartbeats every interval; with judge, a worker silent for 3
 * intervals is lost. */
static void s_heartbeats(xp_scheduler *s, bool judge)
{
    int64_t now = s_now();
    if (now - s->last_heartbeat_ms < s->opts.heartbeat_ms)
        return;
    s->last_heartbeat_ms = now;
    if (judge) {
        s_expire_batches(s);
        s_expire_defs(s);
    }
    bson_t empty = BSON_INITIALIZER;
    zlistx_t *lost = zlistx_new();
    for (s_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers)) {
        if (judge && now - w->last_seen_ms > 3 * s->opts.heartbeat_ms)
            zlistx_add_end(lost, w);
        else
            s_send(s, w->identity, XP_MSG_HEARTBEAT, &empty);
    }
    for (s_worker *w = zlistx_first(lost); w; w = zlistx_next(lost))
        s_worker_lost(s, w, "no heartbeat");
    zlistx_destroy(&lost);
    bson_destroy(&empty);
}

/* ---------------------------------------------------------------- restart */

typedef struct {
    xp_scheduler *s;
    xp_experiment *ex; /* handle used to read the store */
    size_t resumed;
    size_t others; /* queued trials of other schedulers, left alone */
} s_recovery;

/* Takes up one queued trial recorded by an earlier scheduler. */
static int s_resume_one(const bson_t *doc, void *user)
{
    s_recovery *r = user;
    xp_backend *b = r->ex->backend;
    /* Another scheduler's (sharing the backend): not ours to run. */
    const char *owner = xp__bson_utf8(doc, "scheduler");
    if (owner && strcmp(owner, r->s->name) != 0) {
        r->others++;
        return 0;
    }
    const char *hash = xp__bson_utf8(doc, "code_hash");
    int64_t id = 0;
    xp__bson_int64(doc, "trial_id", &id);
    bson_t code;
    xp_error_t err;
    if (!hash || b->ops->content_get(b, hash, &code, &err) != 0) {
        xp__log(XP_LOG_ERROR,
                "Queued trial %lld of %s cannot be resumed: "
                "its code definition is missing",
                (long long)id, r->ex->id);
        return 0;
    }
    s_def *def = s_def_register(r->s, r->ex->id, hash, &code, false, &err);
    bson_destroy(&code);
    if (!def) {
        xp__log(XP_LOG_ERROR, "Queued trial %lld of %s cannot be resumed: %s",
                (long long)id, r->ex->id, err.message);
        return 0;
    }
    s_pending_push(&def->pending, NULL, doc);
    r->resumed++;
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
    if (r->ex->backend->ops->queued_trials &&
        r->ex->backend->ops->queued_trials(r->ex->backend, s_resume_one, r,
                                           &err) != 0)
        xp__log(XP_LOG_WARNING, "Reading queued trials of %s: %s", id,
                err.message);
    xp_experiment_destroy(&r->ex);
    return 0;
}

/* After a restart: every trial an earlier scheduler accepted (recorded
 * as queued) is queued again, whatever the backend. A backend that cannot
 * be listed stops the start: running without those trials would lose
 * them quietly. */
static int s_recover(xp_scheduler *s, xp_error_t *err)
{
    s_recovery r = {s, NULL, 0, 0};
    xp_error_t e;
    if (xp__backend_experiments(s->backend, s_recover_one, &r, &e) != 0)
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

/* Without keys, loopback endpoints only, unless insecure. */
static bool s_is_loopback(const char *ep)
{
    return strncmp(ep, "tcp://127.", 10) == 0 ||
           strncmp(ep, "tcp://localhost:", 16) == 0 ||
           strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0;
}

int xp__scheduler_check(const xp_scheduler_options *opts, xp_error_t *err)
{
    bool keys = opts->keys && *opts->keys;
    if (!opts->bind || !*opts->bind)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no endpoint to bind");
    if (!s_is_loopback(opts->bind) && !opts->insecure && !keys)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "binding %s exposes the scheduler without "
                         "authentication; give --keys DIR, or pass "
                         "--insecure to do it anyway",
                         opts->bind);
    return 0;
}

int xp__scheduler_new(xp_scheduler **out, const xp_scheduler_options *opts,
                      xp_error_t *err)
{
    *out = NULL;
    if (xp__scheduler_check(opts, err) != 0)
        return -1;
    xp_scheduler *s = calloc(1, sizeof *s);
    s->opts = *opts;
    if (s->opts.keys && !*s->opts.keys)
        s->opts.keys = NULL;
    if (s->opts.heartbeat_ms <= 0)
        s->opts.heartbeat_ms = XP_HEARTBEAT_MS_DEFAULT;
    if (s->opts.max_attempts <= 0)
        s->opts.max_attempts = XP_MAX_ATTEMPTS_DEFAULT;
    if (s->opts.max_message == 0)
        s->opts.max_message = XP_MAX_MESSAGE_DEFAULT;
    if (s->opts.keep_ms <= 0)
        s->opts.keep_ms = XP_KEEP_MS_DEFAULT;
    if (s->opts.max_queued_per_client == 0)
        s->opts.max_queued_per_client = XP_MAX_QUEUED_PER_CLIENT_DEFAULT;
    s->clients = zhashx_new();
    zhashx_set_destructor(s->clients, s_client_free);
    s->backend = opts->backend ? strdup(opts->backend) : NULL;
    s->name = opts->name && *opts->name
                  ? bson_strdup(opts->name)
                  : bson_strdup_printf("%s %s", xp__hostname(), opts->bind);
    s->workers = zhashx_new();
    zhashx_set_destructor(s->workers, s_worker_free);
    s->defs = zhashx_new();
    s->latest = zhashx_new();
    zhashx_set_destructor(s->latest, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_duplicator(s->latest, (zhashx_duplicator_fn *)strdup);
    s->tasks = zhashx_new();
    s->batches = zhashx_new();
    s->queue = zlistx_new();
    s->done_tail = &s->done_head;
    s->router = zsock_new(ZMQ_ROUTER);
    zsock_set_maxmsgsize(s->router, (int)s->opts.max_message + 4096);
    zsock_set_router_mandatory(s->router, 0);
    zsock_set_sndhwm(s->router, 0);
    zsock_set_rcvhwm(s->router, 0);
    if (s->opts.keys &&
        xp__keys_server(s->router, s->opts.keys, &s->auth, err) != 0) {
        xp__scheduler_destroy(&s);
        return -1;
    }
    if (s->auth) {
        /* Refused peers are logged: an operator sees why a worker or a
         * client does not get in. */
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://xp-monitor-%p", (void *)s);
        if (zmq_socket_monitor(zsock_resolve(s->router), ep,
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0)
            s->monitor = zsock_new_pair(ep);
    }
    if (zsock_bind(s->router, "%s", opts->bind) < 0) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot bind %s: %s",
                  opts->bind, zmq_strerror(zmq_errno()));
        xp__scheduler_destroy(&s);
        return -1;
    }
    const char *ep = zsock_endpoint(s->router);
    bson_strncpy(s->endpoint, ep ? ep : opts->bind, sizeof s->endpoint);
    if (s_recover(s, err) != 0) {
        xp__scheduler_destroy(&s);
        return -1;
    }
    *out = s;
    return 0;
}

const char *xp__scheduler_endpoint(const xp_scheduler *s)
{
    return s->endpoint;
}

void xp__scheduler_stop(xp_scheduler *s)
{
    s->stop = 1;
}

/* Logs connections the authenticator refused (the first ten, then one
 * in a thousand). */
static void s_on_monitor(xp_scheduler *s)
{
    zmsg_t *msg;
    while ((msg = zmsg_recv_nowait(s->monitor)) != NULL) {
        zframe_t *ev = zmsg_first(msg);
        zframe_t *addr = zmsg_next(msg);
        uint16_t event = 0;
        if (ev && zframe_size(ev) >= 2)
            memcpy(&event, zframe_data(ev), 2);
        char *where = addr ? zframe_strdup(addr) : NULL;
        s->refused++;
        if (s->refused <= 10 || s->refused % 1000 == 0)
            xp__log(XP_LOG_WARNING,
                    "Refused a connection on %s: %s (%llu so far)",
                    where ? where : "?",
                    event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                        ? "its key is not in the authorized directory"
                        : "no valid CURVE handshake (no key, or not the "
                          "scheduler's public key)",
                    (unsigned long long)s->refused);
        free(where);
        zmsg_destroy(&msg);
    }
}

int xp__scheduler_run(xp_scheduler *s)
{
    zpoller_t *poller = zpoller_new(s->router, NULL);
    if (s->monitor)
        zpoller_add(poller, s->monitor);
    s->last_heartbeat_ms = s_now();
    while (!s->stop) {
        int timeout =
            s->opts.heartbeat_ms / 4 > 0 ? s->opts.heartbeat_ms / 4 : 1;
        if (s->mark_head) /* running records to write: come right back */
            timeout = 0;
        void *which = zpoller_wait(poller, timeout);
        if (zpoller_terminated(poller))
            break;
        if (which && which == s->monitor) {
            s_on_monitor(s);
            which = NULL;
            if (zsock_events(s->router) & ZMQ_POLLIN)
                which = s->router;
        }
        /* Drain what is there before dispatching. */
        for (int i = 0; which && i < 1000; i++) {
            zmsg_t *msg = zmsg_recv_nowait(s->router);
            if (!msg)
                break;
            s_handle(s, msg);
            zmsg_destroy(&msg);
        }
        s_record(s);
        s_take_up(s);
        s_record(s); /* trials without steps */
        s_dispatch(s);
        s_heartbeats(s, true);
    }
    s_record(s);
    zpoller_destroy(&poller);
    return 0;
}

void xp__scheduler_destroy(xp_scheduler **ps)
{
    if (!ps || !*ps)
        return;
    xp_scheduler *s = *ps;
    s_record(s);
    if (s->monitor) {
        zmq_socket_monitor(zsock_resolve(s->router), NULL, 0);
        zsock_destroy(&s->monitor);
    }
    zsock_destroy(&s->router);
    zactor_destroy(&s->auth);
    zhashx_destroy(&s->workers);
    /* Unfinished trials stay queued in the backend for the next start. */
    for (s_task *t = zhashx_first(s->tasks); t; t = zhashx_next(s->tasks)) {
        s_strial *st = t->trial;
        if (--st->tasks_alive == 0) {
            xp__trial_free(&st->t);
            free(st);
        }
        free(t);
    }
    zhashx_destroy(&s->tasks);
    zlistx_destroy(&s->queue);
    for (s_batch *b = zhashx_first(s->batches); b; b = zhashx_next(s->batches))
        s_batch_free(b);
    zhashx_destroy(&s->batches);
    for (s_def *d = zhashx_first(s->defs); d; d = zhashx_next(s->defs)) {
        s_fifo_clear(&d->pending);
        xp_experiment_destroy(&d->ex);
        free(d);
    }
    zhashx_destroy(&s->defs);
    zhashx_destroy(&s->latest);
    zhashx_destroy(&s->clients);
    free(s->backend);
    bson_free(s->name);
    free(s);
    *ps = NULL;
}
