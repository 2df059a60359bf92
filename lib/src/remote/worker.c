/* worker.c — the xp-worker engine: loads experiment plugins, registers
 * them with an xp-scheduler over a DEALER socket (docs/protocol.md), runs
 * each TASK on one of N slot threads and answers it with a RESULT, keeping
 * heartbeats both ways. Nothing a peer sends can crash it. */
#include "remote/worker.h"

#include "experiment.h"

#include "remote/keys.h"

#include "step.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sys.h"
#include "value.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_POLL_MAX_MS 100 /* how late a stop from another thread is seen */

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

typedef struct {
    char *path;
    void *handle;
    xp_experiment *ex;
} s_plugin;

/* Points of one metric saved by the running step. */
typedef struct {
    char *name;
    int64_t *epochs;
    double *values;
    size_t n, cap;
} s_metric;

/* A validated TASK waiting for or running on a slot. */
typedef struct {
    bson_t *body; /* the TASK body, owned; step and inputs point into it */
    const xp_node *node;
    const char *step;
    int64_t trial, attempt;
    uint64_t seed;
} s_job;

typedef struct {
    xp_worker *w;
    uint32_t index;
    pthread_t thread;
    bool started;
    pthread_cond_t cond;
    s_job *job; /* handed over under w->lock */
    bool busy;  /* main thread only: a job is out, its RESULT not back */
    /* metric buffer of the running step (slot thread only) */
    s_metric *metrics;
    size_t n_metrics, cap_metrics;
    size_t points;
} s_slot;

struct xp_worker {
    char *endpoint;
    char *key, *server_key; /* CURVE; NULL: plain */
    int slots;
    int heartbeat_ms;
    size_t max_message;
    s_plugin *plugins;
    size_t n_plugins;
    zsock_t *dealer;  /* to the scheduler */
    zsock_t *results; /* PULL: RESULT messages from the slot threads */
    char inproc[64];
    pthread_mutex_t lock;
    bool quit; /* under lock: slot threads end */
    s_slot *slot;
    int busy; /* main thread: slots with a job out */
    _Atomic int running;
    _Atomic int stop;
    /* connection state, main thread only */
    bool welcomed, gone;
    int64_t last_recv_ms, last_heartbeat_ms, last_hello_ms, last_connect_ms;
    bool connect_failed;
    uint64_t malformed[S_BAD_COUNT];
    uint64_t refused; /* TASKs answered ok:false without running */
};

static int64_t s_now(void)
{
    return zclock_mono();
}

/* ---------------------------------------------------------------- plugins */

static int s_plugin_load(xp_worker *w, const char *path, xp_error_t *err)
{
    s_plugin *p = &w->plugins[w->n_plugins];
    memset(p, 0, sizeof *p);
    int rc = -1;
    xp_error_t e;
    const char *path_for_dlopen = path;
    char local[4096];
    /* A bare file name means that file, not a library search. */
    if (!strchr(path, '/') && access(path, F_OK) == 0 &&
        (size_t)snprintf(local, sizeof local, "./%s", path) < sizeof local)
        path_for_dlopen = local;
    dlerror();
    p->handle = dlopen(path_for_dlopen, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        const char *why = dlerror();
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                  "cannot load plugin %s: %s", path, why ? why : "dlopen");
        goto cleanup;
    }
    const xp_experiment_def *def = dlsym(p->handle, "xp_plugin_experiment");
    if (!def) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                  "plugin %s has no symbol xp_plugin_experiment (build it "
                  "with -DXP_PLUGIN)",
                  path);
        goto cleanup;
    }
    if (def->abi != XP_PLUGIN_ABI) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "plugin %s has ABI %u, this worker needs %u", path,
                  (unsigned)def->abi, (unsigned)XP_PLUGIN_ABI);
        goto cleanup;
    }
    if (!def->id || !def->define) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "plugin %s has no experiment id or definition", path);
        goto cleanup;
    }
    if (xp__experiment_new_detached(&p->ex, def->id, &e) != 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "plugin %s: %s", path,
                  e.message);
        goto cleanup;
    }
    for (size_t i = 0; i < w->n_plugins; i++)
        if (strcmp(w->plugins[i].ex->id, def->id) == 0) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_EEXIST,
                      "plugin %s: experiment '%s' is already loaded from %s",
                      path, def->id, w->plugins[i].path);
            goto cleanup;
        }
    xp_node *result = def->define(p->ex);
    if (result && !p->ex->result)
        xp_result(result);
    if (xp_experiment_check(p->ex, &e) != 0) {
        xp__error(err, XP_DOMAIN_GRAPH, e.code ? e.code : XP_EINVAL,
                  "plugin %s: %s", path, e.message);
        goto cleanup;
    }
    pthread_mutex_lock(&p->ex->lock);
    int frozen = xp__graph_freeze(p->ex, &e);
    pthread_mutex_unlock(&p->ex->lock);
    if (frozen != 0 || !p->ex->code) {
        xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL, "plugin %s: %s", path,
                  frozen != 0 ? e.message : "no code document");
        goto cleanup;
    }
    p->path = bson_strdup(path);
    w->n_plugins++;
    xp__log(XP_LOG_INFO, "Loaded experiment '%s' from %s (code %s)", p->ex->id,
            path, p->ex->code_hash);
    rc = 0;
cleanup:
    if (rc != 0) {
        xp_experiment_destroy(&p->ex);
        if (p->handle)
            dlclose(p->handle);
        p->handle = NULL;
    }
    return rc;
}

static s_plugin *s_plugin_find(xp_worker *w, const char *id)
{
    for (size_t i = 0; i < w->n_plugins; i++)
        if (strcmp(w->plugins[i].ex->id, id) == 0)
            return &w->plugins[i];
    return NULL;
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

static void s_send(xp_worker *w, xp_msg_type type, const bson_t *body)
{
    zmsg_t *msg = xp__msg_new(type, body);
    s_send_msg(w->dealer, &msg);
}

static void s_send_hello(xp_worker *w)
{
    bson_t body = BSON_INITIALIZER, list, item;
    BSON_APPEND_UTF8(&body, "host", xp__hostname());
    BSON_APPEND_INT64(&body, "pid", (int64_t)getpid());
    BSON_APPEND_INT32(&body, "slots", w->slots);
    /* Optional: slots still running tasks of an earlier registration. */
    BSON_APPEND_INT32(&body, "busy", w->busy);
    BSON_APPEND_UTF8(&body, "version", XP_VERSION_STRING);
    BSON_APPEND_ARRAY_BEGIN(&body, "experiments", &list);
    for (size_t i = 0; i < w->n_plugins; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        xp_experiment *ex = w->plugins[i].ex;
        BSON_APPEND_DOCUMENT_BEGIN(&list, k, &item);
        BSON_APPEND_UTF8(&item, "id", ex->id);
        BSON_APPEND_UTF8(&item, "code_hash", ex->code_hash);
        BSON_APPEND_DOCUMENT(&item, "code", ex->code);
        bson_append_document_end(&list, &item);
    }
    bson_append_array_end(&body, &list);
    s_send(w, XP_MSG_HELLO, &body);
    bson_destroy(&body);
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

/* Body of a RESULT. out NULL: failed with failure. */
static void s_result_body(bson_t *b, int64_t trial, int64_t attempt,
                          const char *step, const xp_value *out,
                          const char *failure, const s_slot *slot,
                          double elapsed)
{
    BSON_APPEND_INT64(b, "trial", trial);
    BSON_APPEND_INT64(b, "attempt", attempt);
    BSON_APPEND_UTF8(b, "step", step);
    BSON_APPEND_BOOL(b, "ok", out != NULL);
    if (out)
        xp__value_append_bson(b, "output", out);
    else
        BSON_APPEND_UTF8(b, "failure", failure);
    bson_t list, item;
    BSON_APPEND_ARRAY_BEGIN(b, "metrics", &list);
    for (size_t i = 0; slot && i < slot->n_metrics; i++) {
        const s_metric *m = &slot->metrics[i];
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&list, k, &item);
        BSON_APPEND_UTF8(&item, "name", m->name);
        /* Little-endian on the wire whatever this host is. */
        uint64_t *le = bson_malloc((m->n ? m->n : 1) * sizeof *le);
        for (size_t j = 0; j < m->n; j++)
            le[j] = BSON_UINT64_TO_LE((uint64_t)m->epochs[j]);
        bson_append_binary(&item, "epochs", -1, BSON_SUBTYPE_BINARY,
                           (const uint8_t *)le, (uint32_t)(m->n * 8));
        for (size_t j = 0; j < m->n; j++) {
            uint64_t v;
            memcpy(&v, &m->values[j], 8);
            le[j] = BSON_UINT64_TO_LE(v);
        }
        bson_append_binary(&item, "values", -1, BSON_SUBTYPE_BINARY,
                           (const uint8_t *)le, (uint32_t)(m->n * 8));
        bson_free(le);
        bson_append_document_end(&list, &item);
    }
    bson_append_array_end(b, &list);
    BSON_APPEND_DOUBLE(b, "elapsed", elapsed);
}

/* Answers a TASK that will not run. */
static void s_refuse(xp_worker *w, int64_t trial, int64_t attempt,
                     const char *step, const char *why)
{
    if (w->refused++ < 10 || w->refused % 1000 == 0)
        xp__log(XP_LOG_WARNING,
                "Refused task (trial %lld, step %s, attempt %lld): %s",
                (long long)trial, step, (long long)attempt, why);
    bson_t body = BSON_INITIALIZER;
    s_result_body(&body, trial, attempt, step, NULL, why, NULL, 0);
    s_send(w, XP_MSG_RESULT, &body);
    bson_destroy(&body);
}

/* ---------------------------------------------------------------- slots */

static void s_metrics_reset(s_slot *slot)
{
    for (size_t i = 0; i < slot->n_metrics; i++) {
        s_metric *m = &slot->metrics[i];
        bson_free(m->name);
        bson_free(m->epochs);
        bson_free(m->values);
    }
    slot->n_metrics = 0;
    slot->points = 0;
}

/* xp_metric_sink of a slot: buffers the points per metric name, within
 * what one RESULT can carry. */
static int s_metric_save(void *ctx, const char *name, int64_t epoch,
                         double value)
{
    s_slot *slot = ctx;
    if ((slot->points + 1) * 16 + 4096 > slot->w->max_message)
        return -1;
    s_metric *m = NULL;
    for (size_t i = 0; i < slot->n_metrics && !m; i++)
        if (strcmp(slot->metrics[i].name, name) == 0)
            m = &slot->metrics[i];
    if (!m) {
        if (slot->n_metrics == slot->cap_metrics) {
            size_t cap = slot->cap_metrics ? slot->cap_metrics * 2 : 4;
            slot->metrics =
                bson_realloc(slot->metrics, cap * sizeof *slot->metrics);
            slot->cap_metrics = cap;
        }
        m = &slot->metrics[slot->n_metrics++];
        memset(m, 0, sizeof *m);
        m->name = bson_strdup(name);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        m->epochs = bson_realloc(m->epochs, cap * sizeof *m->epochs);
        m->values = bson_realloc(m->values, cap * sizeof *m->values);
        m->cap = cap;
    }
    m->epochs[m->n] = epoch;
    m->values[m->n] = value;
    m->n++;
    slot->points++;
    return 0;
}

static void s_job_free(s_job **pjob)
{
    if (!*pjob)
        return;
    bson_destroy((*pjob)->body);
    bson_free(*pjob);
    *pjob = NULL;
}

/* Runs job on the calling slot thread; caller owns the RESULT message. */
static zmsg_t *s_job_run(s_slot *slot, const s_job *job)
{
    const xp_node *n = job->node;
    xp_value **inputs = bson_malloc0((n->n_inputs + 1) * sizeof *inputs);
    xp_value *out = xp_value_new();
    char failure[512] = "";
    double elapsed = 0;
    bson_iter_t it, list;
    size_t i = 0;
    s_metrics_reset(slot);
    if (bson_iter_init_find(&it, job->body, "inputs") &&
        bson_iter_recurse(&it, &list)) {
        for (; bson_iter_next(&list); i++) {
            xp_error_t e;
            if (i >= n->n_inputs)
                continue; /* counted for the message below */
            inputs[i] = xp_value_new();
            if (xp__value_from_iter(inputs[i], &list, &e) != 0) {
                snprintf(failure, sizeof failure,
                         "input %zu of step %.128s is malformed: %.300s", i,
                         job->step, e.message);
                break;
            }
        }
    }
    if (!failure[0] && i != n->n_inputs)
        snprintf(failure, sizeof failure,
                 "step %.128s takes %zu input(s), the task has %zu", job->step,
                 n->n_inputs, i);
    if (!failure[0]) {
        xp_metric_sink sink = {s_metric_save, slot};
        double t0 = xp__monotonic();
        atomic_fetch_add(&slot->w->running, 1);
        if (xp__step_run(n, job->trial, job->seed,
                         (const xp_value *const *)inputs, &sink, out, failure,
                         sizeof failure) != 0 &&
            !failure[0])
            snprintf(failure, sizeof failure, "step returned an error");
        atomic_fetch_sub(&slot->w->running, 1);
        elapsed = xp__monotonic() - t0;
    }
    bson_t body = BSON_INITIALIZER;
    s_result_body(&body, job->trial, job->attempt, job->step,
                  failure[0] ? NULL : out, failure, slot, elapsed);
    if (body.len + 64 > slot->w->max_message) {
        char why[256];
        snprintf(why, sizeof why,
                 "the result of step %s (%u bytes) exceeds the message "
                 "limit of %zu bytes",
                 job->step, body.len, slot->w->max_message);
        bson_reinit(&body);
        s_result_body(&body, job->trial, job->attempt, job->step, NULL, why,
                      NULL, elapsed);
    }
    zmsg_t *msg = xp__msg_new(XP_MSG_RESULT, &body);
    bson_destroy(&body);
    s_metrics_reset(slot);
    for (size_t k = 0; k < n->n_inputs; k++)
        xp_value_destroy(&inputs[k]);
    bson_free(inputs);
    xp_value_destroy(&out);
    return msg;
}

static void *s_slot_main(void *arg)
{
    s_slot *slot = arg;
    xp_worker *w = slot->w;
    zsock_t *push = zsock_new_push(w->inproc);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!slot->job && !w->quit)
            pthread_cond_wait(&slot->cond, &w->lock);
        s_job *job = slot->job;
        slot->job = NULL;
        bool quit = w->quit;
        pthread_mutex_unlock(&w->lock);
        if (quit) {
            s_job_free(&job);
            break;
        }
        zmsg_t *msg = s_job_run(slot, job);
        s_job_free(&job);
        /* The slot's index first: the main thread frees the slot. */
        zmsg_pushmem(msg, &slot->index, sizeof slot->index);
        if (!push || zmsg_send(&msg, push) != 0)
            zmsg_destroy(&msg);
    }
    zsock_destroy(&push);
    return NULL;
}

/* Main thread: a slot's RESULT (index frame first) goes to the scheduler. */
static void s_on_slot_result(xp_worker *w, zmsg_t **msg)
{
    zframe_t *index = zmsg_pop(*msg);
    uint32_t i = UINT32_MAX;
    if (index && zframe_size(index) == sizeof i)
        memcpy(&i, zframe_data(index), sizeof i);
    zframe_destroy(&index);
    if (i < (uint32_t)w->slots && w->slot[i].busy) {
        w->slot[i].busy = false;
        w->busy--;
    }
    s_send_msg(w->dealer, msg);
}

/* ---------------------------------------------------------------- tasks */

static void s_on_task(xp_worker *w, const bson_t *body)
{
    int64_t trial = 0, attempt = 0, seed = 0;
    const char *step = xp__bson_utf8(body, "step");
    if (!step || !xp__bson_int64(body, "trial", &trial) ||
        !xp__bson_int64(body, "attempt", &attempt)) {
        s_malformed(w, S_BAD_FIELDS, "TASK without trial, attempt or step");
        return;
    }
    const char *exp = xp__bson_utf8(body, "experiment");
    const char *hash = xp__bson_utf8(body, "code_hash");
    bson_iter_t it;
    bool has_inputs =
        bson_iter_init_find(&it, body, "inputs") && BSON_ITER_HOLDS_ARRAY(&it);
    char why[512] = "";
    s_plugin *p = NULL;
    xp_node *node = NULL;
    if (!exp || !hash || !xp__bson_int64(body, "seed", &seed) || !has_inputs)
        snprintf(why, sizeof why,
                 "malformed TASK: experiment, code_hash, seed or inputs "
                 "missing or mistyped");
    else if (!(p = s_plugin_find(w, exp)))
        snprintf(why, sizeof why,
                 "experiment '%.64s' is not loaded on this worker", exp);
    else if (strcmp(hash, p->ex->code_hash) != 0)
        snprintf(why, sizeof why,
                 "code of experiment '%.64s' differs: the task needs %.40s, "
                 "this worker has %s",
                 exp, hash, p->ex->code_hash);
    else if (!(node = xp__graph_find(p->ex, step)) || node->is_param)
        snprintf(why, sizeof why, "experiment '%.64s' has no step '%.128s'",
                 exp, step);
    else if (w->busy >= w->slots)
        snprintf(why, sizeof why, "worker busy: all %d slot(s) are running",
                 w->slots);
    if (why[0]) {
        s_refuse(w, trial, attempt, step, why);
        return;
    }
    s_job *job = bson_malloc0(sizeof *job);
    job->body = bson_copy(body);
    job->node = node;
    job->step = xp__bson_utf8(job->body, "step");
    job->trial = trial;
    job->attempt = attempt;
    job->seed = (uint64_t)seed;
    s_slot *slot = NULL;
    for (int i = 0; i < w->slots && !slot; i++)
        if (!w->slot[i].busy)
            slot = &w->slot[i];
    slot->busy = true;
    w->busy++;
    pthread_mutex_lock(&w->lock);
    slot->job = job;
    pthread_cond_signal(&slot->cond);
    pthread_mutex_unlock(&w->lock);
    xp__log(XP_LOG_DEBUG, "Task trial %lld step %s attempt %lld on slot %u",
            (long long)trial, step, (long long)attempt, slot->index);
}

/* ---------------------------------------------------------------- loop */

/* Classifies and decodes a message from the scheduler; false (counted,
 * logged once per kind) when it is malformed. */
static bool s_decode(xp_worker *w, zmsg_t *msg, xp_msg_type *type, bson_t *body)
{
    xp_error_t err;
    zframe_t *first = zmsg_first(msg);
    if (zmsg_size(msg) != 3)
        s_malformed(w, S_BAD_FRAMES, "expected 3 frames");
    else if (zframe_size(first) != 3 ||
             memcmp(zframe_data(first), XP_PROTOCOL, 3) != 0)
        s_malformed(w, S_BAD_PROTOCOL, "first frame is not " XP_PROTOCOL);
    else if (zframe_size(zmsg_last(msg)) > w->max_message)
        s_malformed(w, S_BAD_SIZE, "body over the message limit");
    else if (xp__msg_decode(msg, w->max_message, type, body, &err) != 0)
        s_malformed(
            w, strstr(err.message, "unknown type") ? S_BAD_TYPE : S_BAD_BSON,
            err.message);
    else
        return true;
    return false;
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
        int64_t hb;
        if (xp__bson_int64(&body, "heartbeat_ms", &hb) &&
            hb >= XP_HEARTBEAT_MS_MIN && hb <= XP_HEARTBEAT_MS_MAX)
            w->heartbeat_ms = (int)hb;
        if (!w->welcomed)
            xp__log(XP_LOG_INFO,
                    "Registered with the scheduler at %s (%d slot(s), %zu "
                    "experiment(s))",
                    w->endpoint, w->slots, w->n_plugins);
        w->welcomed = true;
        break;
    }
    case XP_MSG_HEARTBEAT: break;
    case XP_MSG_TASK: s_on_task(w, &body); break;
    case XP_MSG_ERROR: {
        const char *m = xp__bson_utf8(&body, "message");
        xp__log(XP_LOG_WARNING, "Scheduler says: %s", m ? m : "(no message)");
        /* It does not know this worker (restarted, or declared it lost):
         * register again. Errors arriving between a HELLO and its WELCOME
         * answer messages sent before that HELLO: one HELLO is enough. */
        if (m && strstr(m, "HELLO") &&
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
        bson_t empty = BSON_INITIALIZER;
        s_send(w, XP_MSG_HEARTBEAT, &empty);
        bson_destroy(&empty);
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

int xp__worker_run(xp_worker *w)
{
    if (!w || !w->dealer)
        return -1; /* run once */
    w->last_recv_ms = w->last_heartbeat_ms = w->last_connect_ms = s_now();
    s_send_hello(w);
    /* zsys_interrupted: czmq's own SIGINT handler, when the embedding
     * program kept it */
    while (!atomic_load(&w->stop) && !zsys_interrupted) {
        /* the dealer changes when the worker reconnects */
        zmq_pollitem_t items[2] = {
            {zsock_resolve(w->results), 0, ZMQ_POLLIN, 0},
            {w->dealer ? zsock_resolve(w->dealer) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int64_t wait = w->last_heartbeat_ms + w->heartbeat_ms - s_now();
        if (wait > S_POLL_MAX_MS)
            wait = S_POLL_MAX_MS;
        if (wait < 0)
            wait = 0;
        if (zmq_poll(items, w->dealer ? 2 : 1, (long)wait) < 0 &&
            zmq_errno() != EINTR)
            break; /* context terminated */
        for (int i = 0; (items[0].revents & ZMQ_POLLIN) && i < XP_WORKER_SLOTS_MAX;
             i++) {
            zmsg_t *msg = zmsg_recv_nowait(w->results);
            if (!msg)
                break;
            s_on_slot_result(w, &msg);
        }
        for (int i = 0;
             w->dealer && (items[1].revents & ZMQ_POLLIN) && i < 1000; i++) {
            zmsg_t *msg = zmsg_recv_nowait(w->dealer);
            if (!msg)
                break;
            s_on_message(w, msg);
            zmsg_destroy(&msg);
        }
        s_heartbeat(w);
    }
    bson_t empty = BSON_INITIALIZER;
    s_send(w, XP_MSG_BYE, &empty);
    bson_destroy(&empty);
    uint64_t bad = 0;
    for (int k = 0; k < S_BAD_COUNT; k++)
        bad += w->malformed[k];
    xp__log(XP_LOG_INFO,
            "Worker stopping (%d step(s) still running, %llu malformed "
            "message(s) dropped, %llu task(s) refused)",
            atomic_load(&w->running), (unsigned long long)bad,
            (unsigned long long)w->refused);
    /* Closing with linger delivers BYE before run returns: the process
     * may end without destroying the worker. */
    if (w->dealer)
        zsock_set_linger(w->dealer, 1000);
    zsock_destroy(&w->dealer);
    return 0;
}

void xp__worker_stop(xp_worker *w)
{
    if (w)
        atomic_store(&w->stop, 1);
}

int xp__worker_running(const xp_worker *w)
{
    return w ? atomic_load(&((xp_worker *)w)->running) : 0;
}

/* ---------------------------------------------------------------- life */

static int s_start_slots(xp_worker *w, xp_error_t *err)
{
    /* Signals go to the main thread, whose poll they interrupt. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (int i = 0; i < w->slots; i++) {
        s_slot *slot = &w->slot[i];
        slot->w = w;
        slot->index = (uint32_t)i;
        pthread_cond_init(&slot->cond, NULL);
        if (pthread_create(&slot->thread, NULL, s_slot_main, slot) != 0) {
            rc =
                xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOMEM,
                          "cannot start slot thread %d of %d", i + 1, w->slots);
            break;
        }
        slot->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int xp__worker_new(xp_worker **out, const xp_worker_options *opts,
                   xp_error_t *err)
{
    *out = NULL;
    int rc = -1;
    xp_worker *w = bson_malloc0(sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
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
    w->heartbeat_ms =
        opts->heartbeat_ms > 0 ? opts->heartbeat_ms : XP_HEARTBEAT_MS_DEFAULT;
    w->max_message =
        opts->max_message ? opts->max_message : XP_MAX_MESSAGE_DEFAULT;
    if (w->max_message < XP_MAX_MESSAGE_MIN || w->max_message > INT32_MAX) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "message limit %zu is outside [%d, 2^31)", w->max_message,
                  XP_MAX_MESSAGE_MIN);
        goto cleanup;
    }
    w->plugins = bson_malloc0(opts->n_plugins * sizeof *w->plugins);
    for (size_t i = 0; i < opts->n_plugins; i++)
        if (s_plugin_load(w, opts->plugins[i], err) != 0)
            goto cleanup;

    snprintf(w->inproc, sizeof w->inproc, "inproc://xp-worker-%p", (void *)w);
    w->results = zsock_new_pull(NULL);
    if (!w->results || zsock_bind(w->results, "%s", w->inproc) != 0) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                  "cannot create the slot result socket: %s",
                  zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    if (s_connect(w, err) != 0)
        goto cleanup;
    w->slot = bson_malloc0((size_t)w->slots * sizeof *w->slot);
    if (s_start_slots(w, err) != 0)
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
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    for (int i = 0; w->slot && i < w->slots; i++)
        if (w->slot[i].started)
            pthread_cond_signal(&w->slot[i].cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; w->slot && i < w->slots; i++) {
        s_slot *slot = &w->slot[i];
        if (!slot->started)
            continue;
        pthread_join(slot->thread, NULL);
        pthread_cond_destroy(&slot->cond);
        s_job_free(&slot->job);
        s_metrics_reset(slot);
        bson_free(slot->metrics);
    }
    bson_free(w->slot);
    zsock_destroy(&w->dealer);
    zsock_destroy(&w->results);
    /* Experiments first: their nodes point into the plugins' code. */
    for (size_t i = 0; i < w->n_plugins; i++) {
        xp_experiment_destroy(&w->plugins[i].ex);
        dlclose(w->plugins[i].handle);
        bson_free(w->plugins[i].path);
    }
    bson_free(w->plugins);
    pthread_mutex_destroy(&w->lock);
    bson_free(w->endpoint);
    bson_free(w->key);
    bson_free(w->server_key);
    bson_free(w);
    *pw = NULL;
}
