/* client.c — submitting trials to an xp-scheduler and following their
 * progress (xpsubmit, script mode with --scheduler): request/reply over a
 * DEALER socket with a timeout on every reply. The entry of the remote
 * module (libxp-remote.so), which libxp.so loads on first use. */
#include "remote/client.h"

#include "remote/keys.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/module.h"
#include "util/rng.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

struct xp_client {
    zsock_t *sock;
    char *endpoint;
    int timeout_ms;
    bool curve;
};

/* Without CURVE a client is its routing identity, the owner of its
 * batches: one chosen here at random (hex, never starting with the zero
 * byte of the identities the scheduler makes up) stays the same when the
 * connection is re-established, and no other client can guess it. */
static void s_set_identity(zsock_t *sock)
{
    uint8_t r[15];
    char hex[2 * sizeof r + 1];
    if (xp__random_bytes(r, sizeof r) != 0)
        return; /* the scheduler's own, for this connection */
    xp__hex(r, sizeof r, hex);
    zsock_set_identity(sock, hex);
}

int xp_client_connect(xp_client **out, const char *endpoint, int timeout_ms,
                      xp_error_t *err)
{
    return xp_client_connect_secure(out, endpoint, timeout_ms, NULL, NULL, err);
}

int xp_client_connect_secure(xp_client **out, const char *endpoint,
                             int timeout_ms, const char *key,
                             const char *server_key, xp_error_t *err)
{
    *out = NULL;
    if (!key)
        key = getenv("XP_KEY");
    if (!server_key)
        server_key = getenv("XP_SERVER_KEY");
    if (!endpoint || !*endpoint)
        endpoint = getenv("XP_SCHEDULER");
    if (!endpoint || !*endpoint)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no scheduler endpoint (use -s tcp://HOST:PORT or "
                         "XP_SCHEDULER)");
    if (strncmp(endpoint, "tcp://", 6) != 0 &&
        strncmp(endpoint, "ipc://", 6) != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "invalid scheduler endpoint '%s' (expected "
                         "tcp://HOST:PORT)",
                         endpoint);
    zsys_init();
    zsys_handler_set(NULL);
    xp_client *c = bson_malloc0(sizeof *c);
    c->sock = zsock_new(ZMQ_DEALER);
    c->endpoint = bson_strdup(endpoint);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    zsock_set_linger(c->sock, 0);
    zsock_set_maxmsgsize(c->sock, (int)XP_MAX_MESSAGE_DEFAULT + 4096);
    s_set_identity(c->sock);
    if (xp__keys_client(c->sock, key, server_key, err) != 0) {
        xp_client_destroy(&c);
        return -1;
    }
    c->curve = key && *key;
    if (zsock_connect(c->sock, "%s", endpoint) < 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "cannot connect to %s: %s", endpoint,
                  zmq_strerror(zmq_errno()));
        xp_client_destroy(&c);
        return -1;
    }
    *out = c;
    return 0;
}

void xp_client_destroy(xp_client **pc)
{
    if (!pc || !*pc)
        return;
    xp_client *c = *pc;
    zsock_destroy(&c->sock);
    bson_free(c->endpoint);
    bson_free(c);
    *pc = NULL;
}

/* Sends request (which it takes) and waits for its reply; ERROR replies
 * become errors. reply is initialised on success. */
static int s_request(xp_client *c, zmsg_t *request, int timeout_ms,
                     xp_msg_type expect, bson_t *reply, xp_error_t *err)
{
    if (zmsg_send(&request, c->sock) != 0) {
        zmsg_destroy(&request);
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "cannot send to the scheduler at %s", c->endpoint);
    }
    zpoller_t *poller = zpoller_new(c->sock, NULL);
    void *ready = zpoller_wait(poller, timeout_ms);
    zpoller_destroy(&poller);
    if (!ready)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "no answer from the scheduler at %s within %d ms (%s)",
                         c->endpoint, timeout_ms,
                         c->curve ? "is it running, and is this client's "
                                    "public key in its authorized directory?"
                                  : "is it running? One started with --keys "
                                    "answers only clients with a key: --key "
                                    "and --server-key, or XP_KEY and "
                                    "XP_SERVER_KEY");
    zmsg_t *answer = zmsg_recv(c->sock);
    if (!answer)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "interrupted");
    xp_msg_type got;
    int rc = xp__msg_decode(answer, XP_MAX_MESSAGE_DEFAULT, &got, reply, err);
    zmsg_destroy(&answer);
    if (rc != 0)
        return -1;
    if (got == XP_MSG_ERROR) {
        xp_msg_error e;
        xp__msg_error_decode(reply, &e, NULL);
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "scheduler: %s",
                  e.message ? e.message : "error");
        bson_destroy(reply);
        return -1;
    }
    if (got != expect) {
        bson_destroy(reply);
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "unexpected %s from the scheduler", xp__msg_name(got));
    }
    return 0;
}

int xp_client_submit(xp_client *c, const char *experiment,
                     const xp_value *trials, const char *code_hash,
                     int64_t *batch, int64_t **ids, size_t *n, xp_error_t *err)
{
    return xp__client_submit_code(c, experiment, trials, code_hash, NULL, batch,
                                  ids, n, err);
}

/* How long a SUBMIT of n trials may take to be answered: the scheduler
 * records every trial as queued before it answers (durability before
 * acceptance), about 10 us a trial here, so a sweep of a million needs
 * more than the connection's timeout; 0.1 ms a trial on top of it leaves
 * a tenfold margin. */
static int s_submit_timeout(const xp_client *c, size_t n)
{
    size_t ms = (size_t)c->timeout_ms + n / 10;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int xp__client_submit_code(xp_client *c, const char *experiment,
                           const xp_value *trials, const char *code_hash,
                           const bson_t *code, int64_t *batch, int64_t **ids,
                           size_t *n, xp_error_t *err)
{
    *ids = NULL;
    *n = 0;
    xp_msg_submit m = {.experiment = experiment, .code_hash = code_hash};
    if (xp_check_id(experiment, err) != 0 ||
        xp__msg_trials_from_value(trials, &m.trials, &m.n_trials, err) != 0)
        return -1;
    if (code_hash && code)
        m.code = xp__msg_doc_of(code);
    bson_t reply;
    int rc =
        s_request(c, xp__msg_submit_encode(&m), s_submit_timeout(c, m.n_trials),
                  XP_MSG_ACCEPTED, &reply, err);
    bson_free(m.trials);
    if (rc != 0)
        return -1;
    xp_msg_accepted a;
    rc = xp__msg_accepted_decode(&reply, &a, err);
    bson_destroy(&reply);
    if (rc != 0)
        return -1;
    *batch = a.batch;
    *ids = a.ids;
    *n = a.n_ids;
    a.ids = NULL;
    xp__msg_accepted_clear(&a);
    return 0;
}

int xp_client_wait(xp_client *c, int64_t batch, int64_t *cursor, int wait_ms,
                   xp_progress *p, xp_value **finished, xp_error_t *err)
{
    /* The answer must come within the request timeout. */
    if (wait_ms > c->timeout_ms / 2)
        wait_ms = c->timeout_ms / 2;
    if (wait_ms > XP_MSG_STATUS_WAIT_MAX)
        wait_ms = XP_MSG_STATUS_WAIT_MAX;
    xp_msg_status status = {batch, *cursor, wait_ms > 0 ? wait_ms : 0};
    bson_t reply;
    if (finished)
        *finished = NULL;
    if (s_request(c, xp__msg_status_encode(&status), c->timeout_ms,
                  XP_MSG_PROGRESS, &reply, err) != 0)
        return -1;
    xp_msg_progress m;
    int rc = xp__msg_progress_decode(&reply, &m, err);
    if (rc == 0) {
        memset(p, 0, sizeof *p);
        p->queued = m.queued;
        p->running = m.running;
        p->done = m.done;
        p->failed = m.failed;
        p->total = m.total;
        if (m.waiting)
            bson_strncpy(p->waiting, m.waiting, sizeof p->waiting);
        *cursor = m.cursor;
        if (finished)
            rc = xp__msg_progress_finished(&m, finished, err);
    }
    bson_destroy(&reply);
    return rc;
}

int xp_client_progress(xp_client *c, int64_t batch, int64_t *cursor,
                       xp_progress *p, xp_value **finished, xp_error_t *err)
{
    return xp_client_wait(c, batch, cursor, 0, p, finished, err);
}

static const xp_client_module s_ops = {
    xp_client_connect_secure, xp_client_destroy, xp__client_submit_code,
    xp_client_wait, xp__keygen};

const xp_module xp__module_remote = {"remote", XP_VERSION_STRING, XP_MODULE_ABI,
                                     &s_ops};
