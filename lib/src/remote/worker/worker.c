/* worker.c — the xp-worker engine's connection loop: loads experiment
 * plugins (plugins.c), registers them with an xp-scheduler over a DEALER
 * socket (docs/protocol.md), hands each valid TASK to a free slot thread
 * (slots.c) and forwards its RESULT, keeping heartbeats both ways and
 * registering again when the scheduler forgot it. As a batch job it
 * drains (SIGTERM, --lifetime), exits when the scheduler stays away
 * (--death-timeout) and names its job in HELLO. Nothing a peer sends can
 * crash it. */
#include "remote/worker.h"

#include "remote/keys.h"
#include "remote/worker/plugins.h"
#include "remote/worker/slots.h"

#include "util/error.h"
#include "util/log.h"
#include "util/sys.h"
#include "value.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(XP_WORKER_PREFETCH_MAX == XP_MSG_PREFETCH_MAX,
               "a worker's prefetch limit is the protocol's");

#define S_POLL_MAX_MS 100 /* how late a stop from another thread is seen */
/* A drained worker leaves once its last RESULT went and no TASK came for
 * this long: one the scheduler sent on that RESULT is refused (and queued
 * again, same attempt) instead of being lost with the connection (next
 * attempt). */
#define S_DRAIN_QUIET_MS 250

/* Kinds of bad input from the scheduler, each logged once. */
enum {
    S_BAD_FRAMES,     /* not three frames */
    S_BAD_PROTOCOL,   /* first frame is not XP1 */
    S_BAD_TYPE,       /* unknown message type */
    S_BAD_SIZE,       /* body over the limit */
    S_BAD_BSON,       /* body is not valid BSON */
    S_BAD_FIELDS,     /* a TASK we cannot even answer */
    S_BAD_UNEXPECTED, /* a message type a worker never receives */
    S_BAD_COUNT
};

static const char *const s_bad_names[S_BAD_COUNT] = {
    "wrong frame count", "foreign protocol", "unknown type",
    "oversized body",    "invalid BSON",     "missing fields",
    "unexpected type",
};

struct xp_worker {
    char *endpoint;
    char *key, *server_key; /* CURVE; NULL: plain */
    int slots;
    int heartbeat_ms;
    size_t max_message;
    xp_worker_plugin *plugins;
    size_t n_plugins;
    int prefetch;    /* tasks held waiting beyond the slots */
    xp_slots *pool;  /* the slot threads and their RESULT socket */
    zsock_t *dealer; /* to the scheduler */
    _Atomic int stop;
    _Atomic int drain_asked; /* xp__worker_drain */
    int64_t death_timeout_ms, lifetime_ms, drain_timeout_ms; /* 0: none */
    char *job_id, *job_node; /* NULL: no batch job */
    int64_t job_index;
    /* connection state, main thread only */
    bool welcomed, gone;
    bool bundles;    /* the scheduler takes RESULTS (WELCOME) */
    size_t send_max; /* the smaller of ours and the scheduler's limit */
    int64_t last_recv_ms, last_heartbeat_ms, last_hello_ms, last_connect_ms;
    bool connect_failed;
    uint64_t malformed[S_BAD_COUNT];
    uint64_t refused; /* TASKs answered ok:false without running */
    int64_t started_ms;
    bool draining;
    int64_t drain_end_ms, last_work_ms; /* a TASK came, a RESULT went */
    int status;                         /* what run returns */
    /* The scheduler's last ERROR, logged once however often it comes
     * (a refused registration, a withdrawn key: one per heartbeat). */
    char last_error[256];
};

static int64_t s_now(void)
{
    return zclock_mono();
}

/* ---------------------------------------------------------------- messages */

/* Sends and destroys msg; a message the socket cannot take now (no
 * scheduler for a long time: high-water mark) is dropped. */
static void s_send_msg(zsock_t *sock, zmsg_t **msg)
{
    if (!sock || zmsg_send(msg, sock) != 0) {
        xp__log(XP_LOG_DEBUG, "Dropped an outgoing message: %s",
                zmq_strerror(zmq_errno()));
        zmsg_destroy(msg);
    }
}

static void s_send(xp_worker *w, zmsg_t *msg)
{
    s_send_msg(w->dealer, &msg);
}

/* The jobs that wait and have not started: the scheduler queues their
 * tasks again once this registration is gone, so they are dropped. */
static void s_drop_waiting(xp_worker *w)
{
    xp_worker_job *job;
    while ((job = xp__slots_take_waiting(w->pool)) != NULL)
        xp__job_free(&job);
}

static void s_send_hello(xp_worker *w)
{
    s_drop_waiting(w);
    xp_msg_experiment *list =
        bson_malloc0((w->n_plugins ? w->n_plugins : 1) * sizeof *list);
    for (size_t i = 0; i < w->n_plugins; i++) {
        const xp_experiment *ex = w->plugins[i].ex;
        list[i].id = xp__experiment_id(ex);
        list[i].code_hash = xp__experiment_code_hash(ex);
        list[i].code = xp__msg_doc_of(xp__experiment_code(ex));
    }
    xp_msg_hello m = {
        .host = xp__hostname(),
        .pid = (int64_t)getpid(),
        .slots = w->slots,
        /* slots still running tasks of an earlier registration */
        .busy = xp__slots_busy(w->pool),
        .version = XP_VERSION_STRING,
        /* so that a task it could not take fails with the reason */
        .max_message = (int64_t)w->max_message,
        .experiments = list,
        .n_experiments = w->n_plugins,
        .job_id = w->job_id,
        .job_index = w->job_index,
        .job_node = w->job_node,
        .bundles = true,
        .prefetch = w->prefetch,
    };
    s_send(w, xp__msg_hello_encode(&m));
    bson_free(list);
    w->welcomed = false;
    w->last_hello_ms = s_now();
}

static void s_malformed(xp_worker *w, int kind, const char *detail)
{
    if (w->malformed[kind]++ == 0)
        xp__log(XP_LOG_WARNING,
                "Dropped a malformed message from the scheduler (%s): %s; "
                "further ones of this kind are only counted",
                s_bad_names[kind], detail);
}

/* Answers a task that does not run (ok: false, failure why); one
 * whose why starts with "worker busy" the scheduler queues again for
 * another worker (same attempt). */
static void s_unrun(xp_worker *w, int64_t trial, int64_t attempt,
                    const char *step, const char *why)
{
    xp_msg_result r = {
        .trial = trial, .attempt = attempt, .step = step, .failure = why};
    s_send(w, xp__msg_result_encode(&r));
}

/* Answers a TASK that will not run: it fails with why. */
static void s_refuse(xp_worker *w, const xp_msg_task *t, const char *why)
{
    if (w->refused++ < 10 || w->refused % 1000 == 0)
        xp__log(XP_LOG_WARNING,
                "Refused task (trial %lld, step %s, attempt %lld): %s",
                (long long)t->trial, t->step, (long long)t->attempt, why);
    s_unrun(w, t->trial, t->attempt, t->step, why);
}

/* ---------------------------------------------------------------- tasks */

/* The node of a decoded TASK this worker can run now, or NULL with why. */
static const xp_node *s_runnable(xp_worker *w, const xp_msg_task *t, char *why,
                                 size_t size)
{
    xp_worker_plugin *p =
        xp__plugin_find(w->plugins, w->n_plugins, t->experiment);
    const xp_node *node = NULL;
    if (!p)
        snprintf(why, size, "experiment '%.64s' is not loaded on this worker",
                 t->experiment);
    else if (strcmp(t->code_hash, xp__experiment_code_hash(p->ex)) != 0)
        snprintf(why, size,
                 "code of experiment '%.64s' differs: the task needs %.40s, "
                 "this worker has %s",
                 t->experiment, t->code_hash, xp__experiment_code_hash(p->ex));
    else if (!(node = xp__graph_find(p->ex, t->step)) || node->is_param)
        snprintf(why, size, "experiment '%.64s' has no step '%.128s'",
                 t->experiment, t->step);
    else if (xp__slots_busy(w->pool) >= w->slots + w->prefetch)
        snprintf(why, size,
                 XP_MSG_WORKER_BUSY ": all %d slot(s) are running and %d "
                                    "task(s) wait",
                 w->slots, xp__slots_busy(w->pool) - w->slots);
    else
        return node;
    return NULL;
}

static void s_on_task(xp_worker *w, const bson_t *body)
{
    xp_msg_task t;
    xp_error_t err;
    char why[512];
    w->last_work_ms = s_now();
    if (w->draining && xp__msg_task_decode(body, &t, NULL) == 0) {
        s_unrun(w, t.trial, t.attempt, t.step, XP_MSG_WORKER_BUSY ": draining");
        return;
    }
    if (xp__msg_task_decode(body, &t, &err) != 0) {
        if (t.step)
            s_refuse(w, &t, err.message);
        else
            s_malformed(w, S_BAD_FIELDS, err.message);
        return;
    }
    const xp_node *node = s_runnable(w, &t, why, sizeof why);
    if (!node) {
        s_refuse(w, &t, why);
        return;
    }
    xp__slots_start(w->pool, xp__job_new(body, node));
    xp__log(XP_LOG_DEBUG, "Task trial %lld step %s attempt %lld (%d out)",
            (long long)t.trial, t.step, (long long)t.attempt,
            xp__slots_busy(w->pool));
}

/* A TASKS message: each of its tasks as if it came alone. */
static void s_on_tasks(xp_worker *w, const bson_t *body)
{
    bson_iter_t it;
    bson_t task;
    xp_error_t err;
    size_t bad = 0;
    if (xp__msg_bundle_open(body, XP_MSG_TASKS, &it, &err) != 0) {
        s_malformed(w, S_BAD_FIELDS, err.message);
        return;
    }
    while (xp__msg_bundle_next(&it, &task, &bad))
        s_on_task(w, &task);
    if (bad)
        s_malformed(w, S_BAD_FIELDS, "a task of TASKS is not a document");
}

/* Sends the RESULTs the slots finished: one RESULTS message (or more,
 * within the message limit) when the scheduler takes them, else one
 * message each. */
static void s_send_results(xp_worker *w)
{
    xp_msg_bundle b;
    bool open = false;
    size_t limit = w->send_max;
    zmsg_t **done = NULL;
    size_t n = xp__slots_take_results(w->pool, &done);
    if (n)
        w->last_work_ms = s_now();
    for (size_t i = 0; i < n; i++) {
        zmsg_t *msg = done[i];
        size_t bytes = zframe_size(zmsg_last(msg));
        if (!w->bundles || xp__msg_bundle_size_alone(bytes) > limit) {
            s_send_msg(w->dealer, &msg); /* alone, as it fits */
            continue;
        }
        if (open && xp__msg_bundle_size_with(&b, bytes) > limit) {
            zmsg_t *out = xp__msg_bundle_finish(&b);
            s_send_msg(w->dealer, &out);
            open = false;
        }
        if (!open)
            xp__msg_bundle_init(&b, XP_MSG_RESULTS);
        open = true;
        xp__msg_bundle_add(&b, &msg);
    }
    bson_free(done);
    if (open) {
        zmsg_t *out = xp__msg_bundle_finish(&b);
        s_send_msg(w->dealer, &out);
    }
}

/* ---------------------------------------------------------------- loop */

/* Decodes a message from the scheduler; false (counted, logged once per
 * kind) when it is malformed. */
static bool s_decode(xp_worker *w, zmsg_t *msg, xp_msg_type *type, bson_t *body)
{
    static const int kinds[] = {
        [XP_MSG_FAULT_FRAMES] = S_BAD_FRAMES,
        [XP_MSG_FAULT_PROTOCOL] = S_BAD_PROTOCOL,
        [XP_MSG_FAULT_TYPE] = S_BAD_TYPE,
        [XP_MSG_FAULT_SIZE] = S_BAD_SIZE,
        [XP_MSG_FAULT_BODY] = S_BAD_BSON,
    };
    xp_error_t err;
    xp_msg_fault fault = xp__msg_open(msg, w->max_message, type, body, &err);
    if (fault != XP_MSG_FAULT_NONE)
        s_malformed(w, kinds[fault], err.message);
    return fault == XP_MSG_FAULT_NONE;
}

static void s_on_message(xp_worker *w, zmsg_t *msg)
{
    xp_msg_type type;
    bson_t body;
    if (!s_decode(w, msg, &type, &body))
        return;
    w->last_recv_ms = s_now();
    if (w->gone) {
        /* Back after being declared gone: the scheduler may have
         * forgotten this worker (or be a new process): register again. */
        w->gone = false;
        xp__log(XP_LOG_INFO, "Scheduler at %s answers again", w->endpoint);
        if (type != XP_MSG_WELCOME)
            s_send_hello(w);
    }
    switch (type) {
    case XP_MSG_WELCOME: {
        xp_msg_welcome m;
        xp__msg_welcome_decode(&body, &m, NULL);
        if (m.heartbeat_ms)
            w->heartbeat_ms = (int)m.heartbeat_ms;
        xp__slots_limit(w->pool, w->max_message, (size_t)m.max_message);
        w->bundles = m.bundles;
        w->send_max = m.max_message && (size_t)m.max_message < w->max_message
                          ? (size_t)m.max_message
                          : w->max_message;
        if (!w->welcomed)
            xp__log(XP_LOG_INFO,
                    "Registered with the scheduler at %s (%d slot(s), %zu "
                    "experiment(s))",
                    w->endpoint, w->slots, w->n_plugins);
        w->welcomed = true;
        w->last_error[0] = '\0';
        break;
    }
    case XP_MSG_HEARTBEAT: break;
    case XP_MSG_TASK: s_on_task(w, &body); break;
    case XP_MSG_TASKS: s_on_tasks(w, &body); break;
    case XP_MSG_ERROR: {
        xp_msg_error m;
        xp__msg_error_decode(&body, &m, NULL);
        const char *said = m.message ? m.message : "(no message)";
        if (strncmp(said, w->last_error, sizeof w->last_error - 1) != 0) {
            xp__log(XP_LOG_WARNING, "Scheduler says: %s", said);
            bson_strncpy(w->last_error, said, sizeof w->last_error);
        }
        /* It does not know this worker (restarted, or declared it lost):
         * register again. Errors arriving between a HELLO and its WELCOME
         * answer messages sent before that HELLO: one HELLO is enough. */
        if (xp__msg_error_wants_hello(&m) &&
            (w->welcomed || s_now() - w->last_hello_ms >= w->heartbeat_ms))
            s_send_hello(w);
        break;
    }
    default: s_malformed(w, S_BAD_UNEXPECTED, xp__msg_name(type)); break;
    }
    bson_destroy(&body);
}

/* (Re)creates the DEALER socket and connects it. A new socket after the
 * scheduler went silent: ZeroMQ reconnects by itself after network
 * errors, but not after a protocol error such as a message over the size
 * limit; what was queued for the old connection is stale by then (the
 * scheduler has re-queued those tasks). */
static int s_connect(xp_worker *w, xp_error_t *err)
{
    zsock_destroy(&w->dealer);
    w->dealer = zsock_new(ZMQ_DEALER);
    if (!w->dealer)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "cannot create a socket: %s",
                         zmq_strerror(zmq_errno()));
    zsock_set_maxmsgsize(w->dealer, (int64_t)w->max_message + 4096);
    zsock_set_sndtimeo(w->dealer, 0);
    zsock_set_linger(w->dealer, 0);
    /* ZeroMQ-level heartbeats notice a dead TCP peer, so messages queue
     * for the reconnection instead of vanishing into a dead connection. */
    zsock_set_heartbeat_ivl(w->dealer, w->heartbeat_ms);
    zsock_set_heartbeat_timeout(w->dealer, 3 * w->heartbeat_ms);
    if (xp__keys_client(w->dealer, w->key, w->server_key, err) != 0) {
        zsock_destroy(&w->dealer);
        return -1;
    }
    if (zsock_connect(w->dealer, "%s", w->endpoint) != 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "cannot connect to %s: %s", w->endpoint,
                  zmq_strerror(zmq_errno()));
        zsock_destroy(&w->dealer);
        return -1;
    }
    return 0;
}

static void s_heartbeat(xp_worker *w)
{
    int64_t now = s_now();
    if (now - w->last_heartbeat_ms >= w->heartbeat_ms) {
        s_send(w, xp__msg_empty_encode(XP_MSG_HEARTBEAT));
        w->last_heartbeat_ms = now;
    }
    if (now - w->last_recv_ms > 3 * (int64_t)w->heartbeat_ms &&
        now - w->last_connect_ms > 3 * (int64_t)w->heartbeat_ms) {
        if (!w->gone)
            xp__log(XP_LOG_WARNING,
                    "No message from the scheduler at %s for %lld ms; "
                    "running tasks continue, registering again when it "
                    "answers",
                    w->endpoint, (long long)(now - w->last_recv_ms));
        w->gone = true;
        w->welcomed = false;
        xp_error_t err;
        if (s_connect(w, &err) != 0 && !w->connect_failed)
            xp__log(XP_LOG_ERROR, "%s", err.message);
        w->connect_failed = w->dealer == NULL;
        w->last_connect_ms = now;
    }
}

/* Starts draining, once, saying why. */
static void s_drain(xp_worker *w, const char *why)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_end_ms = s_now() + w->drain_timeout_ms;
    /* What waits goes back to the scheduler for other workers. */
    xp_worker_job *job;
    while ((job = xp__slots_take_waiting(w->pool)) != NULL) {
        s_unrun(w, job->task.trial, job->task.attempt, job->task.step,
                XP_MSG_WORKER_BUSY ": draining");
        xp__job_free(&job);
    }
    xp__log(XP_LOG_INFO,
            "Draining (%s): taking no more tasks, %d step(s) running get "
            "up to %lld s",
            why, xp__slots_busy(w->pool),
            (long long)(w->drain_timeout_ms / 1000));
}

/* The batch-job rules, once per turn of the loop: drain on request or at
 * the end of the lifetime, stop at the end of a drain, give up on a
 * scheduler silent for the death timeout. */
static void s_batch_rules(xp_worker *w)
{
    int64_t now = s_now();
    if (atomic_load(&w->drain_asked))
        s_drain(w, "asked to, by SIGTERM");
    if (w->lifetime_ms && now - w->started_ms >= w->lifetime_ms)
        s_drain(w, "end of --lifetime");
    if (w->draining && xp__slots_busy(w->pool) == 0 &&
        now - w->last_work_ms >= S_DRAIN_QUIET_MS) {
        xp__log(XP_LOG_INFO, "Drained: no step running");
        atomic_store(&w->stop, 1);
    } else if (w->draining && now >= w->drain_end_ms) {
        xp__log(XP_LOG_WARNING,
                "Drain timeout: handing %d running step(s) back to the "
                "scheduler",
                xp__slots_busy(w->pool));
        atomic_store(&w->stop, 1);
    }
    if (w->death_timeout_ms && now - w->last_recv_ms >= w->death_timeout_ms) {
        xp__log(XP_LOG_ERROR,
                "No message from the scheduler at %s for %lld s "
                "(--death-timeout): exiting",
                w->endpoint, (long long)((now - w->last_recv_ms) / 1000));
        w->status = XP_WORKER_ORPHANED;
        atomic_store(&w->stop, 1);
    }
}

int xp__worker_run(xp_worker *w)
{
    if (!w || !w->dealer)
        return -1; /* run once */
    w->last_recv_ms = w->last_heartbeat_ms = w->last_connect_ms = s_now();
    w->started_ms = s_now();
    w->status = 0;
    s_send_hello(w);
    /* zsys_interrupted: czmq's own SIGINT handler, when the embedding
     * program kept it */
    while (!atomic_load(&w->stop) && !zsys_interrupted) {
        /* the dealer changes when the worker reconnects */
        zmq_pollitem_t items[2] = {
            {zsock_resolve(xp__slots_socket(w->pool)), 0, ZMQ_POLLIN, 0},
            {w->dealer ? zsock_resolve(w->dealer) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int64_t wait = w->last_heartbeat_ms + w->heartbeat_ms - s_now();
        if (wait > S_POLL_MAX_MS)
            wait = S_POLL_MAX_MS;
        if (wait < 0)
            wait = 0;
        if (zmq_poll(items, w->dealer ? 2 : 1, (long)wait) < 0 &&
            zmq_errno() != EINTR)
            break;         /* context terminated */
        s_send_results(w); /* each turn: woken for them or not */
        for (int i = 0;
             w->dealer && (items[1].revents & ZMQ_POLLIN) && i < 1000; i++) {
            zmsg_t *msg = zmsg_recv_nowait(w->dealer);
            if (!msg)
                break;
            s_on_message(w, msg);
            zmsg_destroy(&msg);
        }
        s_heartbeat(w);
        s_batch_rules(w);
    }
    s_send(w, xp__msg_empty_encode(XP_MSG_BYE));
    uint64_t bad = 0;
    for (int k = 0; k < S_BAD_COUNT; k++)
        bad += w->malformed[k];
    xp__log(XP_LOG_INFO,
            "Worker stopping (%d step(s) still running, %llu malformed "
            "message(s) dropped, %llu task(s) refused)",
            xp__slots_running(w->pool), (unsigned long long)bad,
            (unsigned long long)w->refused);
    /* Closing with linger delivers BYE before run returns: the process
     * may end without destroying the worker. */
    if (w->dealer)
        zsock_set_linger(w->dealer, 1000);
    zsock_destroy(&w->dealer);
    return w->status;
}

void xp__worker_stop(xp_worker *w)
{
    if (w)
        atomic_store(&w->stop, 1);
}

void xp__worker_drain(xp_worker *w)
{
    if (w)
        atomic_store(&w->drain_asked, 1);
}

int xp__worker_running(const xp_worker *w)
{
    return w && w->pool ? xp__slots_running(w->pool) : 0;
}

/* ---------------------------------------------------------------- life */

/* A variable of the environment, NULL when unset or empty. */
static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The batch job from the options, else from Slurm's variables. */
static void s_job(xp_worker *w, const xp_worker_options *opts)
{
    const char *id = opts->job_id, *index = NULL;
    w->job_index = opts->job_id && opts->job_index >= 0 ? opts->job_index : -1;
    if (!id && (id = s_env("SLURM_ARRAY_JOB_ID")) != NULL)
        index = s_env("SLURM_ARRAY_TASK_ID");
    if (!id)
        id = s_env("SLURM_JOB_ID");
    if (!id || strlen(id) > XP_MSG_JOB_MAX)
        return;
    char *end = NULL;
    long long i = index ? strtoll(index, &end, 10) : -1;
    if (index && !*end && i >= 0)
        w->job_index = i;
    const char *node =
        opts->job_node ? opts->job_node : s_env("SLURMD_NODENAME");
    w->job_id = bson_strdup(id);
    if (node && strlen(node) <= XP_MSG_JOB_MAX)
        w->job_node = bson_strdup(node);
}

int xp__worker_new(xp_worker **out, const xp_worker_options *opts,
                   xp_error_t *err)
{
    *out = NULL;
    int rc = -1;
    xp_worker *w = bson_malloc0(sizeof *w);
    if (!opts || !opts->endpoint || !*opts->endpoint) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "no scheduler endpoint (--connect or XP_SCHEDULER)");
        goto cleanup;
    }
    if (opts->n_plugins == 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "no experiment plugin (--plugin PATH.so)");
        goto cleanup;
    }
    w->endpoint = bson_strdup(opts->endpoint);
    w->key = opts->key ? bson_strdup(opts->key) : NULL;
    w->server_key = opts->server_key ? bson_strdup(opts->server_key) : NULL;
    w->slots = opts->slots > 0 ? opts->slots : xp__cpu_count();
    if (w->slots < 1)
        w->slots = 1;
    if (w->slots > XP_WORKER_SLOTS_MAX) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "%d slots is more than the limit of %d", w->slots,
                  XP_WORKER_SLOTS_MAX);
        goto cleanup;
    }
    w->prefetch = opts->prefetch < 0    ? 0
                  : opts->prefetch == 0 ? XP_WORKER_PREFETCH_DEFAULT
                                        : opts->prefetch;
    if (w->prefetch > XP_MSG_PREFETCH_MAX) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "a prefetch of %d tasks is more than the limit of %d",
                  w->prefetch, XP_MSG_PREFETCH_MAX);
        goto cleanup;
    }
    w->heartbeat_ms =
        opts->heartbeat_ms > 0 ? opts->heartbeat_ms : XP_HEARTBEAT_MS_DEFAULT;
    w->max_message =
        opts->max_message ? opts->max_message : XP_MAX_MESSAGE_DEFAULT;
    w->send_max = w->max_message;
    if (w->max_message < XP_MAX_MESSAGE_MIN || w->max_message > INT32_MAX) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "message limit %zu is outside [%d, 2^31)", w->max_message,
                  XP_MAX_MESSAGE_MIN);
        goto cleanup;
    }
    w->death_timeout_ms = (int64_t)opts->death_timeout * 1000;
    w->lifetime_ms = (int64_t)opts->lifetime * 1000;
    w->drain_timeout_ms =
        (int64_t)(opts->drain_timeout > 0 ? opts->drain_timeout
                                          : XP_WORKER_DRAIN_TIMEOUT_DEFAULT) *
        1000;
    s_job(w, opts);
    w->plugins = bson_malloc0(opts->n_plugins * sizeof *w->plugins);
    for (size_t i = 0; i < opts->n_plugins; i++, w->n_plugins++)
        if (xp__plugin_load(&w->plugins[i], opts->plugins[i], w->plugins,
                            w->n_plugins, err) != 0)
            goto cleanup;
    if (xp__slots_new(&w->pool, w->slots, w->max_message, err) != 0 ||
        s_connect(w, err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    if (rc != 0)
        xp__worker_destroy(&w);
    *out = w;
    return rc;
}

void xp__worker_destroy(xp_worker **pw)
{
    if (!pw || !*pw)
        return;
    xp_worker *w = *pw;
    xp__slots_destroy(&w->pool);
    zsock_destroy(&w->dealer);
    for (size_t i = 0; i < w->n_plugins; i++)
        xp__plugin_unload(&w->plugins[i]);
    bson_free(w->plugins);
    bson_free(w->endpoint);
    bson_free(w->key);
    bson_free(w->server_key);
    bson_free(w->job_id);
    bson_free(w->job_node);
    bson_free(w);
    *pw = NULL;
}
