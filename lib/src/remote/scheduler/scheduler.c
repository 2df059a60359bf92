/* scheduler.c — the xp-scheduler engine's event loop: one thread, one
 * ROUTER socket. Each turn reads what peers sent (HELLO, RESULT, SUBMIT,
 * STATUS, ...) and hands it to its module, then records the turn's
 * trials, takes up queued ones, dispatches ready tasks and keeps the
 * heartbeats. The modules of this folder own the rest of the state. */
#include "remote/keys.h"
#include "remote/scheduler/batches.h"
#include "remote/scheduler/defs.h"
#include "remote/scheduler/recovery.h"
#include "remote/scheduler/state.h"
#include "remote/scheduler/submit.h"
#include "remote/scheduler/tasks.h"
#include "remote/scheduler/trials.h"
#include "remote/scheduler/workers.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- replies */

void xp__sched_send(xp_scheduler *s, zframe_t *to, zmsg_t *msg)
{
    zframe_t *id = zframe_dup(to);
    zmsg_prepend(msg, &id);
    zmsg_send(&msg, s->router);
}

void xp__sched_send_error(xp_scheduler *s, zframe_t *to, const char *message)
{
    xp_msg_error e = {message};
    xp__sched_send(s, to, xp__msg_error_encode(&e));
}

/* Refusals remembered for xp__sched_first_time before it starts over. */
#define S_LOGGED_MAX 4096

bool xp__sched_first_time(xp_scheduler *s, const char *kind, const char *who)
{
    char key[192];
    snprintf(key, sizeof key, "%s %s", kind, who);
    if (zhashx_lookup(s->logged, key))
        return false;
    if (zhashx_size(s->logged) >= S_LOGGED_MAX)
        zhashx_purge(s->logged);
    zhashx_insert(s->logged, key, (void *)1);
    return true;
}

/* The keys withdrawn from the directory since it was last read: the
 * workers that connected with one are lost now (their tasks go back to
 * the queue) rather than at their next message. */
static void s_check_keys(xp_scheduler *s)
{
    if (!s->auth || !xp__authorizer_refresh(s->auth))
        return;
    zlistx_t *gone = zlistx_new();
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers))
        if (!xp__authorizer_allows(s->auth, w->key))
            zlistx_add_end(gone, w);
    for (xp_sched_worker *w = zlistx_first(gone); w; w = zlistx_next(gone))
        xp__sched_worker_lost(s, w, "its key was withdrawn");
    zlistx_destroy(&gone);
}

/* Every heartbeat interval: heartbeats to the workers; with judge, also
 * the losses of silent workers and the expiry of batches and
 * definitions. */
static void s_heartbeats(xp_scheduler *s, bool judge)
{
    int64_t now = xp__sched_now();
    if (now - s->last_heartbeat_ms < s->opts.heartbeat_ms)
        return;
    s->last_heartbeat_ms = now;
    if (judge) {
        s_check_keys(s);
        xp__sched_batches_expire(s);
        xp__sched_defs_expire(s);
    }
    xp__sched_workers_heartbeat(s, now, judge);
}

void xp__sched_keepalive(xp_scheduler *s)
{
    s_heartbeats(s, false);
}

/* ---------------------------------------------------------------- loop */

static void s_identity_hex(zframe_t *identity, char out[64])
{
    const uint8_t *d = zframe_data(identity);
    size_t n = zframe_size(identity);
    if (n > 31)
        n = 31;
    xp__hex(d, n, out);
}

/* A body that does not decode: counted, and answered when it asks. */
static void s_malformed(xp_scheduler *s, zframe_t *from, const xp_error_t *err,
                        bool answer)
{
    s->malformed++;
    if (answer)
        xp__sched_send_error(s, from, err->message);
}

static void s_on_hello(xp_scheduler *s, zframe_t *from, const char *id,
                       const char *who, const bson_t *body)
{
    xp_msg_hello m;
    xp_error_t err;
    if (xp__msg_hello_decode(body, &m, &err) != 0)
        s_malformed(s, from, &err, true);
    else
        xp__sched_worker_hello(s, from, id, who, &m);
    xp__msg_hello_clear(&m);
}

static void s_on_result(xp_scheduler *s, zframe_t *from, xp_sched_worker *w,
                        const bson_t *body)
{
    xp_msg_result m;
    xp_error_t err;
    if (!w) {
        xp__sched_send_error(s, from, XP_MSG_UNKNOWN_WORKER);
        return;
    }
    if (xp__msg_result_decode(body, &m, &err) != 0)
        s_malformed(s, from, &err, false);
    else
        xp__sched_task_result(s, w, &m);
    xp__msg_result_clear(&m);
}

/* A RESULTS message: each of its results as if it came alone. */
static void s_on_results(xp_scheduler *s, zframe_t *from, xp_sched_worker *w,
                         const bson_t *body)
{
    bson_iter_t it;
    bson_t one;
    xp_error_t err;
    size_t bad = 0;
    if (!w) {
        xp__sched_send_error(s, from, XP_MSG_UNKNOWN_WORKER);
        return;
    }
    if (xp__msg_bundle_open(body, XP_MSG_RESULTS, &it, &err) != 0) {
        s_malformed(s, from, &err, false);
        return;
    }
    while (xp__msg_bundle_next(&it, &one, &bad))
        s_on_result(s, from, w, &one);
    s->malformed += bad;
}

static void s_on_submit(xp_scheduler *s, zframe_t *from, const char *who,
                        const bson_t *body)
{
    xp_msg_submit m;
    xp_error_t err;
    if (xp__msg_submit_decode(body, &m, &err) != 0)
        s_malformed(s, from, &err, true);
    else
        xp__sched_submit(s, from, who, &m);
    xp__msg_submit_clear(&m);
}

static void s_on_status(xp_scheduler *s, zframe_t *from, const char *who,
                        const bson_t *body)
{
    xp_msg_status m;
    xp_error_t err;
    if (xp__msg_status_decode(body, &m, &err) != 0)
        s_malformed(s, from, &err, true);
    else
        xp__sched_batch_status(s, from, who, &m);
}

static void s_dispatch(xp_scheduler *s, zframe_t *from, const char *id,
                       const char *who, xp_msg_type type, const bson_t *body)
{
    xp_sched_worker *w = xp__sched_worker_find(s, id);
    if (w)
        w->last_seen_ms = xp__sched_now();
    switch (type) {
    case XP_MSG_HELLO: s_on_hello(s, from, id, who, body); break;
    case XP_MSG_HEARTBEAT:
        if (!w) /* a worker we declared lost: it must register again */
            xp__sched_send_error(s, from, XP_MSG_UNKNOWN_WORKER);
        break;
    case XP_MSG_RESULT: s_on_result(s, from, w, body); break;
    case XP_MSG_RESULTS: s_on_results(s, from, w, body); break;
    case XP_MSG_BYE:
        if (w)
            xp__sched_worker_lost(s, w, "said goodbye");
        break;
    case XP_MSG_SUBMIT: s_on_submit(s, from, who, body); break;
    case XP_MSG_STATUS: s_on_status(s, from, who, body); break;
    default:
        s->malformed++;
        xp__sched_send_error(s, from, "unexpected message type");
        break;
    }
}

/* A message on a connection whose key is no longer authorized (withdrawn
 * from the directory since the handshake): refused, and the peer's
 * session dropped (a worker is lost: its tasks go back to the queue). */
static void s_withdrawn(xp_scheduler *s, zframe_t *from, const char *id,
                        const char *key)
{
    xp_sched_worker *w = xp__sched_worker_find(s, id);
    if (w)
        xp__sched_worker_lost(s, w, "its key was withdrawn");
    if (xp__sched_first_time(s, "withdrawn", key))
        xp__log(XP_LOG_WARNING,
                "Peer %s: key %s is not authorized any more; its messages "
                "are refused",
                id, key);
    xp__sched_send_error(s, from, "not authorized");
}

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
    if (s->auth && !xp__authorizer_allows(s->auth, user)) {
        s_withdrawn(s, from, id, who);
        zframe_destroy(&from);
        return;
    }
    xp_msg_type type;
    bson_t body;
    xp_error_t err;
    if (xp__msg_decode(msg, s->opts.max_message, &type, &body, &err) != 0) {
        if (s->malformed++ < 10 || s->malformed % 1000 == 0)
            xp__log(XP_LOG_WARNING, "Peer %s: %s (%llu malformed so far)", id,
                    err.message, (unsigned long long)s->malformed);
        xp__sched_send_error(s, from, err.message);
        zframe_destroy(&from);
        return;
    }
    s_dispatch(s, from, id, who, type, &body);
    bson_destroy(&body);
    zframe_destroy(&from);
}

/* Logs a handshake the authorizer refused, with the key: once per key. */
static void s_on_refused(void *user, const xp_refusal *r)
{
    xp_scheduler *s = user;
    s->refused++;
    if (xp__sched_first_time(s, "refused", r->key[0] ? r->key : r->address))
        xp__log(XP_LOG_WARNING,
                "Refused a connection on %s from %s: key %s is not "
                "authorized (%llu refused so far)",
                s->endpoint, r->address[0] ? r->address : "?",
                r->key[0] ? r->key : "(none)", (unsigned long long)s->refused);
}

/* Logs the handshakes that failed before the authorizer saw a key (no
 * key, or not the scheduler's public key): the first ten, then one in a
 * thousand. Those it refused are logged by s_on_refused. */
static void s_on_monitor(xp_scheduler *s)
{
    zmsg_t *msg;
    while ((msg = zmsg_recv_nowait(s->monitor)) != NULL) {
        zframe_t *ev = zmsg_first(msg);
        zframe_t *addr = zmsg_next(msg);
        uint16_t event = 0;
        if (ev && zframe_size(ev) >= 2)
            memcpy(&event, zframe_data(ev), 2);
        if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            char *where = addr ? zframe_strdup(addr) : NULL;
            s->refused++;
            if (s->refused <= 10 || s->refused % 1000 == 0)
                xp__log(XP_LOG_WARNING,
                        "Refused a connection on %s: no valid CURVE "
                        "handshake (no key, or not the scheduler's public "
                        "key) (%llu refused so far)",
                        where ? where : "?", (unsigned long long)s->refused);
            free(where);
        }
        zmsg_destroy(&msg);
    }
}

/* Handshakes: answered (authorizer), failures logged (monitor). */
static void s_on_handshakes(xp_scheduler *s)
{
    if (s->auth)
        xp__authorizer_serve(s->auth, s_on_refused, s);
    if (s->monitor)
        s_on_monitor(s);
}

int xp__scheduler_run(xp_scheduler *s)
{
    zpoller_t *poller = zpoller_new(s->router, NULL);
    if (s->monitor)
        zpoller_add(poller, s->monitor);
    if (s->auth)
        zpoller_add(poller, xp__authorizer_socket(s->auth));
    s->last_heartbeat_ms = xp__sched_now();
    int64_t held = -1; /* ms until a held STATUS is due */
    while (!s->stop) {
        int timeout =
            s->opts.heartbeat_ms / 4 > 0 ? s->opts.heartbeat_ms / 4 : 1;
        if (held >= 0 && held < timeout)
            timeout = (int)held;
        int64_t due = xp__sched_trials_due(s); /* running records */
        if (due >= 0 && due < timeout)
            timeout = (int)due;
        void *which = zpoller_wait(poller, timeout);
        if (zpoller_terminated(poller))
            break;
        if (which && which != s->router) {
            s_on_handshakes(s);
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
        xp__sched_trials_record(s, false);
        xp__sched_trials_take_up(s);
        xp__sched_trials_record(s, false); /* trials without steps */
        xp__sched_tasks_dispatch(s);
        held = xp__sched_batches_wake(s);
        s_heartbeats(s, true);
    }
    xp__sched_trials_record(s, true);
    zpoller_destroy(&poller);
    return 0;
}

void xp__scheduler_stop(xp_scheduler *s)
{
    s->stop = 1;
}

/* ---------------------------------------------------------------- life */

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

/* The options with every unset one at its default. */
static void s_defaults(xp_scheduler_options *o)
{
    if (o->keys && !*o->keys)
        o->keys = NULL;
    if (o->heartbeat_ms <= 0)
        o->heartbeat_ms = XP_HEARTBEAT_MS_DEFAULT;
    if (o->max_attempts <= 0)
        o->max_attempts = XP_MAX_ATTEMPTS_DEFAULT;
    if (o->max_message == 0)
        o->max_message = XP_MAX_MESSAGE_DEFAULT;
    if (o->keep_ms <= 0)
        o->keep_ms = XP_KEEP_MS_DEFAULT;
    if (o->max_queued_per_client == 0)
        o->max_queued_per_client = XP_MAX_QUEUED_PER_CLIENT_DEFAULT;
    if (o->max_experiments_per_worker == 0)
        o->max_experiments_per_worker = XP_MAX_EXPERIMENTS_PER_WORKER_DEFAULT;
}

/* The ROUTER socket, CURVE and its monitor when keys are given, bound. */
static int s_bind(xp_scheduler *s, const char *bind, xp_error_t *err)
{
    s->router = zsock_new(ZMQ_ROUTER);
    zsock_set_maxmsgsize(s->router, (int)s->opts.max_message + 4096);
    zsock_set_router_mandatory(s->router, 0);
    zsock_set_sndhwm(s->router, 0);
    zsock_set_rcvhwm(s->router, 0);
    if (s->opts.keys &&
        xp__keys_server(s->router, s->opts.keys, &s->auth, err) != 0)
        return -1;
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
    if (zsock_bind(s->router, "%s", bind) < 0)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot bind %s: %s",
                         bind, zmq_strerror(zmq_errno()));
    const char *ep = zsock_endpoint(s->router);
    bson_strncpy(s->endpoint, ep ? ep : bind, sizeof s->endpoint);
    return 0;
}

int xp__scheduler_new(xp_scheduler **out, const xp_scheduler_options *opts,
                      xp_error_t *err)
{
    *out = NULL;
    if (xp__scheduler_check(opts, err) != 0)
        return -1;
    xp_scheduler *s = bson_malloc0(sizeof *s);
    s->opts = *opts;
    s_defaults(&s->opts);
    s->backend = opts->backend ? bson_strdup(opts->backend) : NULL;
    s->name = opts->name && *opts->name
                  ? bson_strdup(opts->name)
                  : bson_strdup_printf("%s %s", xp__hostname(), opts->bind);
    s->logged = zhashx_new();
    xp__sched_batches_init(s);
    xp__sched_workers_init(s);
    xp__sched_defs_init(s);
    xp__sched_tasks_init(s);
    s->done_tail = &s->done_head;
    s->mark_tail = &s->mark_head;
    if (s_bind(s, opts->bind, err) != 0 || xp__sched_recover(s, err) != 0) {
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

void xp__scheduler_destroy(xp_scheduler **ps)
{
    if (!ps || !*ps)
        return;
    xp_scheduler *s = *ps;
    xp__sched_trials_record(s, true);
    if (s->monitor) {
        zmq_socket_monitor(zsock_resolve(s->router), NULL, 0);
        zsock_destroy(&s->monitor);
    }
    zsock_destroy(&s->router);
    xp__authorizer_destroy(&s->auth);
    xp__sched_workers_fini(s);
    /* Unfinished trials stay queued in the backend for the next start. */
    xp__sched_tasks_fini(s);
    xp__sched_batches_fini(s);
    xp__sched_defs_fini(s);
    zhashx_destroy(&s->logged);
    bson_free(s->backend);
    bson_free(s->name);
    bson_free(s);
    *ps = NULL;
}
