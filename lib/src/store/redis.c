/* backend_redis.c — the Redis backend: keys under "<id>:" (docs/schema.md),
 * ids from INCR, one pipelined MULTI/EXEC per trial start and per end, over
 * one hiredis connection per handle, re-established once per operation. */
#include "query/projection.h"
#include "query/query.h"
#include "store/driver.h"
#include "store/redis_reply.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/names.h"
#include "util/sys.h"
#include "value.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XP_REDIS_FORMAT "xp-redis"
#define XP_REDIS_SCHEMA "1"
#define XP_REDIS_PORT 6379
#define XP_REDIS_CONNECT_MS 2000
#define XP_REDIS_IO_MS 10000
#define XP_REDIS_TIMEOUT_MAX_MS 3600000
/* Trial documents per MGET when reading history, and MGETs per round
 * trip: big enough to amortise the round trip, small enough to keep the
 * server's output buffer modest. */
#define XP_REDIS_MGET_KEYS 1000
#define XP_REDIS_MGETS_PER_TRIP 4

/* Rewrites a trial's record only while it is still the scheduler's
 * (in <id>:queued): a finish that lands first wins. */
static const char s_running_script[] =
    "if redis.call('ZSCORE', KEYS[1], ARGV[1]) then "
    "redis.call('SET', KEYS[2], ARGV[2]) redis.call('INCR', KEYS[3]) "
    "return 1 end return 0";

/* Marks a trial interrupted only while it is still in <id>:running, so a
 * trial that finished meanwhile keeps its final record. */
static const char s_interrupt_script[] =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then "
    "redis.call('SET', KEYS[2], ARGV[2]) "
    "redis.call('HDEL', KEYS[1], ARGV[1]) "
    "redis.call('INCR', KEYS[3]) "
    "return 1 end "
    "return 0";

/* Allocates a trial id: INCR of <id>:counter, moved past the largest id
 * in <id>:trials and past any stored <id>:trial:N, so that a lost counter
 * (a server restarted without persistence, a deleted key) never hands
 * out the id of a stored trial; the counter is set to the id given. */
static const char s_alloc_script[] =
    "local id = redis.call('INCR', KEYS[1]) "
    "local moved = false "
    "local top = redis.call('ZREVRANGE', KEYS[2], 0, 0) "
    "if top[1] and tonumber(top[1]) >= id then "
    "id = tonumber(top[1]) + 1 moved = true end "
    "while redis.call('EXISTS', ARGV[1] .. string.format('%d', id)) == 1 do "
    "id = id + 1 moved = true end "
    "if moved then redis.call('SET', KEYS[1], string.format('%d', id)) end "
    "return id";

/* Where and how to connect, parsed from the URI. */
typedef struct {
    char *host; /* TCP host, NULL for a Unix socket */
    int port;
    char *socket; /* Unix socket path, or NULL */
    char *user;   /* ACL user, or NULL */
    char *password;
    int db;
    int connect_ms, io_ms;
} s_target;

typedef struct {
    xp_backend base;
    char *id;
    s_target target;
    char *where; /* "host:port" or the socket path, for messages */
    /* One connection per handle (NULL while down), shared by its threads. */
    pthread_mutex_t lock;
    redisContext *c;
    char refused[128];         /* why the last connection attempt failed */
    xp_projection_cache *proj; /* history queries' (under the lock) */
} xp_redis;

/* ---------------------------------------------------------------- URIs */

static void s_target_clear(s_target *t)
{
    bson_free(t->host);
    bson_free(t->socket);
    bson_free(t->user);
    if (t->password)
        memset(t->password, 0, strlen(t->password));
    bson_free(t->password);
    memset(t, 0, sizeof *t);
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s + n) into a new string; NULL when malformed or
 * when it decodes to a NUL byte. Caller frees. */
static char *s_decode(const char *s, size_t n)
{
    char *out = bson_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[k++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? s_hex(s[i + 1]) : -1;
        int lo = i + 2 < n ? s_hex(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            bson_free(out);
            return NULL;
        }
        out[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[k] = '\0';
    return out;
}

/* Parses a decimal integer in [min, max] from [s, s + n). */
static bool s_parse_int(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

#define S_URI_FORMS                                                            \
    "redis://[[user]:password@]host[:port][/db][?timeout=MS]"                  \
    " or unix://[[user]:password@]/path.sock[?db=N]"

/* Options after '?': timeout (connect, ms), io_timeout (ms), db. */
static int s_parse_query(const char *q, s_target *t, bool *db_given,
                         xp_error_t *err)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t klen = eq ? (size_t)(eq - q) : n;
        const char *v = eq ? eq + 1 : q + n;
        size_t vlen = eq ? n - klen - 1 : 0;
        long value;
        if (klen == 7 && memcmp(q, "timeout", 7) == 0) {
            if (!s_parse_int(v, vlen, 1, XP_REDIS_TIMEOUT_MAX_MS, &value))
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "invalid Redis URI: timeout must be "
                                 "1-%d milliseconds",
                                 XP_REDIS_TIMEOUT_MAX_MS);
            t->connect_ms = (int)value;
        } else if (klen == 10 && memcmp(q, "io_timeout", 10) == 0) {
            if (!s_parse_int(v, vlen, 1, XP_REDIS_TIMEOUT_MAX_MS, &value))
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "invalid Redis URI: io_timeout must be "
                                 "1-%d milliseconds",
                                 XP_REDIS_TIMEOUT_MAX_MS);
            t->io_ms = (int)value;
        } else if (klen == 2 && memcmp(q, "db", 2) == 0) {
            if (*db_given)
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "invalid Redis URI: the database is given "
                                 "twice");
            if (!s_parse_int(v, vlen, 0, 999999, &value))
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "invalid Redis URI: db must be a database "
                                 "number (0, 1, ...)");
            t->db = (int)value;
            *db_given = true;
        } else if (n > 0) {
            /* Only the option name is shown: a value could be secret. */
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "invalid Redis URI: unknown option '%.*s' "
                             "(known: timeout, io_timeout, db)",
                             (int)(klen > 40 ? 40 : klen), q);
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* host[:port] or [v6]:port of a TCP URI. */
static int s_parse_host(const char *s, size_t n, s_target *t, xp_error_t *err)
{
    const char *host = s, *port = NULL;
    size_t hlen = n, plen = 0;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "invalid Redis URI: unterminated '[' in the "
                             "host");
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':')
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "invalid Redis URI: expected ':port' "
                                 "after ']'");
            port = close + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            if (memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "invalid Redis URI: write an IPv6 host in "
                                 "brackets, e.g. redis://[::1]:6379");
            hlen = (size_t)(colon - s);
            port = colon + 1;
            plen = n - hlen - 1;
        }
    }
    if (hlen == 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "invalid Redis URI: no host (expected " S_URI_FORMS
                         ")");
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= ' ' || host[i] == '%' ||
            (unsigned char)host[i] >= 0x7f)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "invalid Redis URI: bad character in the host");
    t->host = bson_strndup(host, hlen);
    t->port = XP_REDIS_PORT;
    if (port) {
        long p;
        if (!s_parse_int(port, plen, 1, 65535, &p)) {
            /* The port cannot hold the password (userinfo ends at the
             * last '@'), so it may be shown, shortened and printable. */
            char shown[41];
            size_t k = 0;
            for (size_t i = 0; i < plen && k < sizeof shown - 1; i++)
                shown[k++] = (port[i] >= ' ' && port[i] < 0x7f) ? port[i] : '?';
            shown[k] = '\0';
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "invalid Redis URI: port '%s' is not a number "
                             "between 1 and 65535",
                             shown);
        }
        t->port = (int)p;
    }
    return 0;
}

/* Parses uri into t (cleared on failure). Messages never show the
 * userinfo part, where the password is. */
static int s_parse_uri(const char *uri, s_target *t, xp_error_t *err)
{
    memset(t, 0, sizeof *t);
    t->connect_ms = XP_REDIS_CONNECT_MS;
    t->io_ms = XP_REDIS_IO_MS;
    const char *rest;
    bool unix_socket = false;
    if (strncmp(uri, "rediss://", 9) == 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "rediss:// (Redis over TLS) needs hiredis >= 1.0 "
                         "built with TLS; this libxp uses hiredis "
                         "%d.%d.%d without TLS (use redis:// or unix://)",
                         HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    if (strncmp(uri, "redis://", 8) == 0) {
        rest = uri + 8;
    } else if (strncmp(uri, "unix://", 7) == 0) {
        rest = uri + 7;
        unix_socket = true;
    } else if (strncmp(uri, "unix:", 5) == 0) {
        rest = uri + 5;
        unix_socket = true;
    } else {
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "not a Redis URI (expected " S_URI_FORMS ")");
    }
    const char *query = strchr(rest, '?');
    const char *end = query ? query : rest + strlen(rest);
    /* userinfo ends at the last '@': a password may contain '@' or '/'. */
    const char *at = NULL;
    for (const char *p = rest; p < end; p++)
        if (*p == '@')
            at = p;
    int rc = -1;
    bool db_given = false;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (!colon) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                      "invalid Redis URI: write the password after a colon "
                      "(redis://:PASSWORD@host or "
                      "redis://USER:PASSWORD@host)");
            goto cleanup;
        }
        if (colon > rest) {
            t->user = s_decode(rest, (size_t)(colon - rest));
            if (!t->user) {
                xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                          "invalid Redis URI: bad %%-escape in the user "
                          "name");
                goto cleanup;
            }
        }
        t->password = s_decode(colon + 1, (size_t)(at - colon - 1));
        if (!t->password) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                      "invalid Redis URI: bad %%-escape in the password");
            goto cleanup;
        }
        rest = at + 1;
    }
    if (unix_socket) {
        if (rest == end || rest[0] != '/') {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                      "invalid Redis URI: expected an absolute socket path "
                      "(unix:///path/redis.sock)");
            goto cleanup;
        }
        t->socket = s_decode(rest, (size_t)(end - rest));
        if (!t->socket) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                      "invalid Redis URI: bad %%-escape in the socket "
                      "path");
            goto cleanup;
        }
    } else {
        const char *slash = memchr(rest, '/', (size_t)(end - rest));
        const char *host_end = slash ? slash : end;
        if (s_parse_host(rest, (size_t)(host_end - rest), t, err) != 0)
            goto cleanup;
        if (slash && slash + 1 < end) {
            long db;
            size_t dlen = (size_t)(end - slash - 1);
            if (!s_parse_int(slash + 1, dlen, 0, 999999, &db)) {
                xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                          "invalid Redis URI: database '%.*s' is not a "
                          "number (expected redis://host:port/0, /1, ...)",
                          (int)(dlen > 40 ? 40 : dlen), slash + 1);
                goto cleanup;
            }
            t->db = (int)db;
            db_given = true;
        }
    }
    if (query && s_parse_query(query + 1, t, &db_given, err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    if (rc != 0)
        s_target_clear(t);
    return rc;
}

/* The URI rebuilt with the password masked. Caller frees. */
static char *s_describe(const s_target *t)
{
    const char *user = t->user ? t->user : "";
    const char *mask = t->password ? ":***@" : "";
    if (t->socket)
        return t->db
                   ? bson_strdup_printf("unix://%s%s%s?db=%d", user, mask,
                                        t->socket, t->db)
                   : bson_strdup_printf("unix://%s%s%s", user, mask, t->socket);
    bool v6 = strchr(t->host, ':') != NULL;
    return bson_strdup_printf("redis://%s%s%s%s%s:%d/%d", user, mask,
                              v6 ? "[" : "", t->host, v6 ? "]" : "", t->port,
                              t->db);
}

/* ---------------------------------------------------------------- commands */

/* Commands to send as one pipeline. Arguments are borrowed unless added
 * with s_argf/s_arg_own, which the batch frees. */
typedef struct {
    size_t n_cmds, cap_cmds;
    size_t *start; /* index of each command's first argument */
    size_t n_args, cap_args;
    const char **argv;
    size_t *len;
    char **owned;
    size_t n_owned, cap_owned;
} s_batch;

static void s_cmd(s_batch *b)
{
    if (b->n_cmds == b->cap_cmds) {
        b->cap_cmds = b->cap_cmds ? b->cap_cmds * 2 : 8;
        b->start = bson_realloc(b->start, b->cap_cmds * sizeof *b->start);
    }
    b->start[b->n_cmds++] = b->n_args;
}

static void s_arg(s_batch *b, const void *data, size_t len)
{
    if (b->n_args == b->cap_args) {
        b->cap_args = b->cap_args ? b->cap_args * 2 : 16;
        b->argv = bson_realloc(b->argv, b->cap_args * sizeof *b->argv);
        b->len = bson_realloc(b->len, b->cap_args * sizeof *b->len);
    }
    b->argv[b->n_args] = data;
    b->len[b->n_args] = len;
    b->n_args++;
}

static void s_arg_str(s_batch *b, const char *s)
{
    s_arg(b, s, strlen(s));
}

/* Adds data (allocated with bson_malloc) as an argument; the batch takes
 * ownership. */
static void s_arg_own(s_batch *b, char *data, size_t len)
{
    if (b->n_owned == b->cap_owned) {
        b->cap_owned = b->cap_owned ? b->cap_owned * 2 : 16;
        b->owned = bson_realloc(b->owned, b->cap_owned * sizeof *b->owned);
    }
    b->owned[b->n_owned++] = data;
    s_arg(b, data, len);
}

static void s_argf(s_batch *b, const char *fmt, ...) XP_PRINTF(2, 3);

static void s_argf(s_batch *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = bson_strdupv_printf(fmt, ap);
    va_end(ap);
    s_arg_own(b, s, strlen(s));
}

static void s_batch_free(s_batch *b)
{
    for (size_t i = 0; i < b->n_owned; i++)
        bson_free(b->owned[i]);
    bson_free(b->owned);
    bson_free(b->start);
    bson_free(b->argv);
    bson_free(b->len);
    memset(b, 0, sizeof *b);
}

static void s_replies_free(redisReply **rep, size_t n)
{
    if (!rep)
        return;
    for (size_t i = 0; i < n; i++)
        if (rep[i])
            freeReplyObject(rep[i]);
    bson_free(rep);
}

/* ---------------------------------------------------------------- I/O */

/* hiredis writes with write(2): a server that went away would raise
 * SIGPIPE and kill the process. The signal is blocked on this thread
 * around every exchange and one raised meanwhile is discarded. */
typedef struct {
    sigset_t old;
    bool was_pending;
} s_sigpipe;

static void s_sigpipe_block(s_sigpipe *s)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    s->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &s->old);
}

static void s_sigpipe_restore(s_sigpipe *s)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    if (!s->was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &s->old, NULL);
}

static struct timeval s_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool s_is_error(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR;
}

/* Connects, authenticates and selects the database (lock held). */
static int s_connect(xp_redis *r, xp_error_t *err)
{
    const s_target *t = &r->target;
    redisContext *c =
        t->socket
            ? redisConnectUnixWithTimeout(t->socket, s_tv(t->connect_ms))
            : redisConnectWithTimeout(t->host, t->port, s_tv(t->connect_ms));
    if (!c)
        return xp__enomem(err);
    if (c->err) {
        snprintf(r->refused, sizeof r->refused, "%s", c->errstr);
        xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                  "cannot connect to Redis at %s: %s", r->where, c->errstr);
        redisFree(c);
        return -1;
    }
    redisSetTimeout(c, s_tv(t->io_ms));
    int rc = -1;
    redisReply *rep = NULL;
    if (t->password) {
        const char *argv[3] = {"AUTH", NULL, NULL};
        size_t len[3] = {4, 0, 0};
        int argc = 1;
        if (t->user) {
            argv[argc] = t->user;
            len[argc++] = strlen(t->user);
        }
        argv[argc] = t->password;
        len[argc++] = strlen(t->password);
        rep = redisCommandArgv(c, argc, argv, len);
        if (!rep) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                      "cannot connect to Redis at %s: %s", r->where, c->errstr);
            goto cleanup;
        }
        if (s_is_error(rep)) {
            /* The server's message names no password. */
            xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                      "Redis at %s refused the credentials: %s", r->where,
                      rep->str);
            goto cleanup;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    if (t->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", t->db);
        rep = redisCommandArgv(c, 2, (const char *[]){"SELECT", db},
                               (size_t[]){6, strlen(db)});
        if (!rep) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                      "cannot connect to Redis at %s: %s", r->where, c->errstr);
            goto cleanup;
        }
        if (s_is_error(rep)) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                      "Redis at %s: cannot select database %d: %s", r->where,
                      t->db, rep->str);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (rc != 0)
        snprintf(r->refused, sizeof r->refused, "%s",
                 rep ? rep->str : c->errstr);
    if (rep)
        freeReplyObject(rep);
    if (rc == 0)
        r->c = c;
    else
        redisFree(c);
    return rc;
}

/* Sends the batch and reads one reply per command (connection known to
 * be up). -1 when the connection failed; the replies are then freed. */
static int s_roundtrip(xp_redis *r, const s_batch *b, redisReply **rep)
{
    for (size_t i = 0; i < b->n_cmds; i++) {
        size_t first = b->start[i];
        size_t next = i + 1 < b->n_cmds ? b->start[i + 1] : b->n_args;
        if (redisAppendCommandArgv(r->c, (int)(next - first), &b->argv[first],
                                   &b->len[first]) != REDIS_OK)
            return -1;
    }
    for (size_t i = 0; i < b->n_cmds; i++) {
        void *reply = NULL;
        if (redisGetReply(r->c, &reply) != REDIS_OK || !reply) {
            for (size_t k = 0; k < i; k++) {
                freeReplyObject(rep[k]);
                rep[k] = NULL;
            }
            return -1;
        }
        rep[i] = reply;
    }
    return 0;
}

/* True when the server answered that it is still loading its data (just
 * restarted): worth waiting for. */
static bool s_loading(redisReply **rep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s_is_error(rep[i]) && strncmp(rep[i]->str, "LOADING", 7) == 0)
            return true;
    return false;
}

/* Why the exchange on r->c failed, into buf: a read that timed out
 * (hiredis reports the EAGAIN of its socket timeout) names the timeout
 * instead of "Resource temporarily unavailable". True for a timeout. */
static bool s_exchange_failure(const xp_redis *r, char *buf, size_t size)
{
    const redisContext *c = r->c;
    bool timeout = c->err == REDIS_ERR_IO &&
                   (strcmp(c->errstr, strerror(EAGAIN)) == 0 ||
                    strcmp(c->errstr, strerror(EWOULDBLOCK)) == 0 ||
                    strcmp(c->errstr, strerror(ETIMEDOUT)) == 0);
#ifdef REDIS_ERR_TIMEOUT
    timeout = timeout || c->err == REDIS_ERR_TIMEOUT;
#endif
    if (timeout)
        snprintf(buf, size, "Redis did not answer within %d ms",
                 r->target.io_ms);
    else
        snprintf(buf, size, "%s", c->errstr[0] ? c->errstr : "no reply");
    return timeout;
}

/* Connects when the handle has no connection; after a lost one (lost
 * set), an error names both. */
static int s_ensure_connected(xp_redis *r, const char *lost, const char *what,
                              xp_error_t *err)
{
    if (r->c)
        return 0;
    xp_error_t cerr;
    if (s_connect(r, &cerr) == 0)
        return 0;
    if (lost[0])
        xp__error(err, cerr.domain, cerr.code,
                  "Redis at %s: connection lost while %s (%s); reconnecting "
                  "failed (%s)",
                  r->where, what, lost, r->refused);
    else if (err)
        *err = cerr;
    return -1;
}

/* Drops r->c after an exchange on it failed, with the error in err
 * (lost: why, for a later message): a timeout or a lost connection,
 * worth one more attempt (true), or a server that does not answer in
 * the Redis protocol (false: retrying cannot help). */
static bool s_exchange_lost(xp_redis *r, const char *what, char lost[128],
                            xp_error_t *err)
{
    bool timeout = s_exchange_failure(r, lost, 128);
    bool protocol = r->c->err == REDIS_ERR_PROTOCOL;
    redisFree(r->c);
    r->c = NULL;
    if (protocol)
        xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                  "Redis at %s: %s: the server does not answer in the Redis "
                  "protocol (%s)",
                  r->where, what, lost);
    else if (timeout)
        xp__error(err, XP_DOMAIN_BACKEND, XP_EIO, "%s (at %s, %s)", lost,
                  r->where, what);
    else
        xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                  "Redis at %s: connection lost while %s: %s", r->where, what,
                  lost);
    return !protocol;
}

/* Runs the batch as one pipeline (lock held); *out gets one reply per
 * command (caller frees with s_replies_free), server error replies
 * included. A lost connection is re-established once and the whole batch
 * resent, so batches must be safe to repeat. */
static int s_exec(xp_redis *r, const s_batch *b, redisReply ***out,
                  const char *what, xp_error_t *err)
{
    redisReply **rep = bson_malloc0((b->n_cmds + 1) * sizeof *rep);
    char lost[128] = "";
    int rc = -1;
    double deadline = xp__monotonic() + r->target.connect_ms / 1000.0;
    s_sigpipe sp;
    s_sigpipe_block(&sp);
    for (int attempt = 0; attempt < 2;) {
        if (s_ensure_connected(r, lost, what, err) != 0)
            goto cleanup;
        if (s_roundtrip(r, b, rep) != 0) {
            if (!s_exchange_lost(r, what, lost, err))
                goto cleanup;
            attempt++;
            continue;
        }
        if (s_loading(rep, b->n_cmds) && xp__monotonic() < deadline) {
            for (size_t i = 0; i < b->n_cmds; i++) {
                freeReplyObject(rep[i]);
                rep[i] = NULL;
            }
            s_sleep_ms(50);
            continue;
        }
        rc = 0;
        goto cleanup;
    }
cleanup:
    s_sigpipe_restore(&sp);
    if (rc == 0)
        *out = rep;
    else
        s_replies_free(rep, b->n_cmds);
    return rc;
}

/* Error for a reply that is not of the expected kind. */
static int s_bad_reply(xp_redis *r, const redisReply *rep, const char *what,
                       xp_error_t *err)
{
    if (s_is_error(rep))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_EIO, "Redis at %s: %s: %s",
                         r->where, what, rep->str);
    return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                     "Redis at %s: %s: unexpected reply (type %d)", r->where,
                     what, rep ? rep->type : -1);
}

/* Checks the replies of a MULTI ... EXEC batch: every queued command and
 * every result of EXEC (the last reply). */
static int s_check_exec(xp_redis *r, redisReply **rep, size_t n,
                        const char *what, xp_error_t *err)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s_is_error(rep[i]))
            return s_bad_reply(r, rep[i], what, err);
    const redisReply *exec = rep[n - 1];
    if (exec->type == REDIS_REPLY_NIL)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                         "Redis at %s: %s: transaction aborted", r->where,
                         what);
    if (exec->type != REDIS_REPLY_ARRAY)
        return s_bad_reply(r, exec, what, err);
    for (size_t i = 0; i < exec->elements; i++)
        if (s_is_error(exec->element[i]))
            return s_bad_reply(r, exec->element[i], what, err);
    return 0;
}

/* Runs a single command; *out is its reply (caller frees). */
static int s_exec1(xp_redis *r, const s_batch *b, redisReply **out,
                   const char *what, xp_error_t *err)
{
    redisReply **rep;
    if (s_exec(r, b, &rep, what, err) != 0)
        return -1;
    *out = rep[0];
    bson_free(rep);
    return 0;
}

/* s_exec1 under the connection's lock: one command whose reply needs no
 * further exchange. */
static int s_query(xp_redis *r, const s_batch *b, redisReply **out,
                   const char *what, xp_error_t *err)
{
    pthread_mutex_lock(&r->lock);
    int rc = s_exec1(r, b, out, what, err);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Sends the one command of b (freed) and checks that the reply is not an
 * error: the commands whose answer says nothing else. */
static int s_send(xp_redis *r, s_batch *b, const char *what, xp_error_t *err)
{
    redisReply *rep = NULL;
    int rc = s_query(r, b, &rep, what, err);
    if (rc == 0 && s_is_error(rep))
        rc = s_bad_reply(r, rep, what, err);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(b);
    return rc;
}

/* ---------------------------------------------------------------- encoding */

/* Initialises doc over the bytes of a string reply when they hold a valid
 * BSON document (doc borrows the reply). */
static bool s_reply_bson(const redisReply *rep, bson_t *doc)
{
    return rep && rep->type == REDIS_REPLY_STRING &&
           xp__bson_view_checked(doc, (const uint8_t *)rep->str, rep->len);
}

/* Field of <id>:step_hashes: XXH128 (canonical, big-endian) of the step
 * name, a NUL byte and the 16-byte input hash. */
static void s_hash_field(const char *step, const uint8_t input[16],
                         uint8_t out[16])
{
    size_t slen = strlen(step);
    uint8_t stack[XP_NAME_MAX + 1 + 16];
    uint8_t *buf = slen + 17 <= sizeof stack ? stack : bson_malloc(slen + 17);
    memcpy(buf, step, slen);
    buf[slen] = 0;
    memcpy(buf + slen + 1, input, 16);
    xp__hash128(buf, slen + 17, out);
    if (buf != stack)
        bson_free(buf);
}

/* Adds MULTI-queued commands storing chunk c (the raw chunk encoding of
 * store/metric.h, which docs/schema.md documents; the reader takes the
 * compact one too). */
static void s_add_metric(xp_redis *r, s_batch *b, int64_t trial,
                         const xp_metric_chunk *c)
{
    size_t len;
    char *data = (char *)xp__metric_chunk_raw_new(c, &len);
    s_cmd(b);
    s_arg_str(b, "HSET");
    s_argf(b, "%s:metric:%lld:%s", r->id, (long long)trial, c->name);
    s_argf(b, "%lld", (long long)c->chunk);
    s_arg_own(b, data, len);
    s_cmd(b);
    s_arg_str(b, "SADD");
    s_argf(b, "%s:metrics:%lld", r->id, (long long)trial);
    s_arg_str(b, c->name);
}

/* Adds the MULTI-queued INCR of <id>:version that goes with every write
 * of a trial record: what tells a reader's history cache (s_version)
 * that the history changed. */
static void s_add_version(xp_redis *r, s_batch *b)
{
    s_cmd(b);
    s_arg_str(b, "INCR");
    s_argf(b, "%s:version", r->id);
}

/* ---------------------------------------------------------------- ops */

static int s_trial_begin(xp_backend *base, const xp_trial_record *rec,
                         int64_t *id, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL, **reps = NULL;
    bson_t full = BSON_INITIALIZER, running = BSON_INITIALIZER;
    int rc = -1;
    pthread_mutex_lock(&r->lock);
    s_cmd(&b);
    s_arg_str(&b, "EVAL");
    s_arg_str(&b, s_alloc_script);
    s_arg_str(&b, "2");
    s_argf(&b, "%s:counter", r->id);
    s_argf(&b, "%s:trials", r->id);
    s_argf(&b, "%s:trial:", r->id);
    if (s_exec1(r, &b, &rep, "allocating a trial id", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 1) {
        s_bad_reply(r, rep, "allocating a trial id", err);
        goto cleanup;
    }
    int64_t new_id = rep->integer;
    s_batch_free(&b);

    xp_trial_record with_id = *rec;
    with_id.trial_id = new_id;
    if (xp__record_encode(&with_id, &full, err) != 0)
        goto cleanup;
    /* A queued trial belongs to a scheduler, not to a process: it is not
     * in <id>:running, so no process-death check marks it interrupted. */
    bool running_now = rec->status == XP_STATUS_RUNNING;
    xp__record_encode_process(rec, &running);

    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)new_id);
    s_cmd(&b);
    s_arg_str(&b, "MULTI");
    s_cmd(&b);
    s_arg_str(&b, "SET");
    s_argf(&b, "%s:trial:%s", r->id, num);
    s_arg(&b, bson_get_data(&full), full.len);
    s_cmd(&b);
    s_arg_str(&b, "ZADD");
    s_argf(&b, "%s:trials", r->id);
    s_arg_str(&b, num);
    s_arg_str(&b, num);
    if (running_now) {
        s_cmd(&b);
        s_arg_str(&b, "HSET");
        s_argf(&b, "%s:running", r->id);
        s_arg_str(&b, num);
        s_arg(&b, bson_get_data(&running), running.len);
    } else if (rec->status == XP_STATUS_QUEUED) {
        /* Found again by a restarted scheduler (queued_trials). */
        s_cmd(&b);
        s_arg_str(&b, "ZADD");
        s_argf(&b, "%s:queued", r->id);
        s_arg_str(&b, num);
        s_arg_str(&b, num);
    }
    s_add_version(r, &b);
    s_cmd(&b);
    s_arg_str(&b, "EXEC");
    /* An id whose record fails stays unused: ids are never reused. */
    if (s_exec(r, &b, &reps, "recording trial", err) != 0 ||
        s_check_exec(r, reps, b.n_cmds, "recording trial", err) != 0)
        goto cleanup;
    *id = new_id;
    rc = 0;
cleanup:
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_replies_free(reps, b.n_cmds);
    s_batch_free(&b);
    bson_destroy(&full);
    bson_destroy(&running);
    return rc;
}

static int s_metric_flush(xp_backend *base, int64_t id,
                          const xp_metric_chunk *chunks, size_t n,
                          xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    if (n == 0)
        return 0;
    s_batch b = {0};
    redisReply **reps = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "MULTI");
    for (size_t i = 0; i < n; i++)
        s_add_metric(r, &b, id, &chunks[i]);
    s_cmd(&b);
    s_arg_str(&b, "EXEC");
    pthread_mutex_lock(&r->lock);
    if (s_exec(r, &b, &reps, "storing metric", err) == 0 &&
        s_check_exec(r, reps, b.n_cmds, "storing metric", err) == 0)
        rc = 0;
    pthread_mutex_unlock(&r->lock);
    s_replies_free(reps, b.n_cmds);
    s_batch_free(&b);
    return rc;
}

/* Stores everything a finished trial leaves in one MULTI/EXEC. Every
 * command overwrites with the same content when repeated, so a finish
 * resent after a lost connection or replayed from the spool is harmless. */
static int s_trial_finish(xp_backend *base, const xp_trial_outcome *o,
                          xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    int64_t id = o->record->trial_id;
    const xp_persisted_item *persisted = o->persisted;
    size_t n_persisted = o->n_persisted;
    const xp_step_hash *hashes = o->hashes;
    size_t n_hashes = o->n_hashes;
    s_batch b = {0};
    redisReply **reps = NULL;
    /* bson_t wants 128-byte alignment: one bson_new each, not an array. */
    bson_t **values = bson_malloc0((n_persisted + 1) * sizeof *values);
    size_t n_values = 0;
    uint8_t(*fields)[16] = bson_malloc0((n_hashes + 1) * sizeof *fields);
    int rc = -1;
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)id);

    s_cmd(&b);
    s_arg_str(&b, "MULTI");
    for (size_t i = 0; i < o->n_chunks; i++)
        s_add_metric(r, &b, id, &o->chunks[i]);
    if (n_persisted > 0) {
        s_cmd(&b);
        s_arg_str(&b, "HSET");
        s_argf(&b, "%s:persisted:%s", r->id, num);
        for (size_t i = 0; i < n_persisted; i++) {
            bson_t *v = values[n_values++] = bson_new();
            if (xp__value_append_bson(v, "v", persisted[i].value) != 0) {
                xp__error(err, XP_DOMAIN_BACKEND, XP_EINVAL,
                          "persisted value of step '%s' is too large to "
                          "store",
                          persisted[i].step);
                goto cleanup;
            }
            s_arg_str(&b, persisted[i].step);
            s_arg(&b, bson_get_data(v), v->len);
        }
    }
    if (n_hashes > 0) {
        s_cmd(&b);
        s_arg_str(&b, "HSET");
        s_argf(&b, "%s:step_hashes", r->id);
        for (size_t i = 0; i < n_hashes; i++) {
            s_hash_field(hashes[i].step, hashes[i].input, fields[i]);
            s_arg(&b, fields[i], 16);
            s_arg(&b, hashes[i].output, 16);
        }
    }
    s_cmd(&b);
    s_arg_str(&b, "SET");
    s_argf(&b, "%s:trial:%s", r->id, num);
    s_arg(&b, bson_get_data(o->doc), o->doc->len);
    s_cmd(&b);
    s_arg_str(&b, "ZADD");
    s_argf(&b, "%s:trials", r->id);
    s_arg_str(&b, num);
    s_arg_str(&b, num);
    s_cmd(&b);
    s_arg_str(&b, "HDEL");
    s_argf(&b, "%s:running", r->id);
    s_arg_str(&b, num);
    s_cmd(&b);
    s_arg_str(&b, "ZREM");
    s_argf(&b, "%s:queued", r->id);
    s_arg_str(&b, num);
    s_add_version(r, &b);
    s_cmd(&b);
    s_arg_str(&b, "EXEC");

    pthread_mutex_lock(&r->lock);
    if (s_exec(r, &b, &reps, "recording trial result", err) == 0 &&
        s_check_exec(r, reps, b.n_cmds, "recording trial result", err) == 0)
        rc = 0;
    pthread_mutex_unlock(&r->lock);
cleanup:
    s_replies_free(reps, b.n_cmds);
    s_batch_free(&b);
    for (size_t i = 0; i < n_values; i++)
        bson_destroy(values[i]);
    bson_free(values);
    bson_free(fields);
    return rc;
}

static int s_trial_get(xp_backend *base, int64_t id, bson_t *out,
                       xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "GET");
    s_argf(&b, "%s:trial:%lld", r->id, (long long)id);
    pthread_mutex_lock(&r->lock);
    if (s_exec1(r, &b, &rep, "reading trial", err) != 0)
        goto cleanup;
    bson_t doc;
    if (rep->type == REDIS_REPLY_NIL) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "trial %lld does not exist", (long long)id);
    } else if (s_reply_bson(rep, &doc)) {
        bson_copy_to(&doc, out);
        rc = 0;
    } else if (s_is_error(rep)) {
        s_bad_reply(r, rep, "reading trial", err);
    } else {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "Redis at %s: stored record of trial %lld is damaged",
                  r->where, (long long)id);
    }
cleanup:
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- reading
 * records: the ids from a sorted set, then the documents by MGET, in
 * trips of XP_REDIS_MGETS_PER_TRIP MGETs. Two trips are in flight: the
 * next one is sent once the replies of the last have arrived, so the
 * server reads the next keys while this process builds rows. The
 * replies are decoded as they arrive and build nothing: hiredis's
 * reader hands each record, a bulk string still in its buffer, to a
 * callback (xp_redis_parse below), which passes it on, so a record is not
 * copied into a reply object and no object is made per record. */

/* Reads one reply through the callbacks into p: 0, or -1 when it did
 * not arrive whole (p->status tells a reply the read did not ask for or
 * a stop from fn from a failed connection). */
static int s_parse_reply(xp_redis *r, xp_redis_parse *p)
{
    redisReader *rd = r->c->reader;
    redisReplyObjectFunctions *fn = rd->fn;
    void *priv = rd->privdata;
    rd->fn = &xp__redis_parse_fns;
    rd->privdata = p;
    void *reply = NULL;
    int rc = redisGetReply(r->c, &reply);
    /* the reader would free a reply it did not finish as a reply object:
     * ours are not */
    rd->reply = NULL;
    rd->fn = fn;
    rd->privdata = priv;
    return rc == REDIS_OK && reply ? 0 : -1;
}

/* Drops r->c after a reply read through the callbacks failed or left it
 * out of step, and says why in err: a reply of the wrong kind, the
 * server's error, fn's stop (its own error stands), or a connection lost
 * (then true: worth one more attempt). */
static bool s_parse_failed(xp_redis *r, const xp_redis_parse *p,
                           const char *what, char lost[128], xp_error_t *err)
{
    if (p->status == XP_REDIS_PARSE_OK && !p->error[0])
        return s_exchange_lost(r, what, lost, err);
    if (p->status == XP_REDIS_PARSE_BAD)
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "Redis at %s: %s: unexpected reply", r->where, what);
    else if (p->status != XP_REDIS_PARSE_STOPPED)
        xp__error(err, XP_DOMAIN_BACKEND, XP_EIO, "Redis at %s: %s: %s",
                  r->where, what, p->error);
    redisFree(r->c);
    r->c = NULL;
    return false;
}

/* ZCARD of <id>:<set> into *total (when not NULL) and its members of
 * ranks start..stop (ZRANGE's meaning; ZREVRANGE with reverse) into
 * *ids (caller frees), in one MULTI. Lock held. */
static int s_range_ids(xp_redis *r, const char *set, int64_t start,
                       int64_t stop, bool reverse, int64_t **ids, size_t *n,
                       int64_t *total, const char *what, xp_error_t *err)
{
    s_batch b = {0};
    redisReply **reps = NULL;
    int rc = -1;
    *ids = NULL;
    *n = 0;
    s_cmd(&b);
    s_arg_str(&b, "MULTI");
    s_cmd(&b);
    s_arg_str(&b, "ZCARD");
    s_argf(&b, "%s:%s", r->id, set);
    s_cmd(&b);
    s_arg_str(&b, reverse ? "ZREVRANGE" : "ZRANGE");
    s_argf(&b, "%s:%s", r->id, set);
    s_argf(&b, "%lld", (long long)start);
    s_argf(&b, "%lld", (long long)stop);
    s_cmd(&b);
    s_arg_str(&b, "EXEC");
    if (s_exec(r, &b, &reps, what, err) != 0 ||
        s_check_exec(r, reps, b.n_cmds, what, err) != 0)
        goto cleanup;
    const redisReply *exec = reps[b.n_cmds - 1];
    if (exec->elements != 2 || exec->element[0]->type != REDIS_REPLY_INTEGER ||
        exec->element[1]->type != REDIS_REPLY_ARRAY) {
        s_bad_reply(r, exec, what, err);
        goto cleanup;
    }
    const redisReply *members = exec->element[1];
    int64_t *v = bson_malloc((members->elements + 1) * sizeof *v);
    for (size_t i = 0; i < members->elements; i++) {
        const redisReply *m = members->element[i];
        if (m->type != REDIS_REPLY_STRING ||
            !xp__redis_parse_i64(m->str, m->len, &v[i])) {
            bson_free(v);
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "Redis at %s: key %s:%s holds a member that is not a "
                      "trial id",
                      r->where, r->id, set);
            goto cleanup;
        }
    }
    if (total)
        *total = exec->element[0]->integer;
    *ids = v;
    *n = members->elements;
    rc = 0;
cleanup:
    s_replies_free(reps, b.n_cmds);
    s_batch_free(&b);
    return rc;
}

/* Decimal digits of v (>= 0) at p; their count. */
static size_t s_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Queues the MGETs of ids[from..to) on r->c and writes them out. The
 * commands are written in the protocol here, each key a memcpy of
 * "<id>:trial:" and the digits: printf per key was a tenth of a whole
 * history read's instructions. */
static int s_trip_send(xp_redis *r, char **text, size_t *text_cap,
                       const int64_t *ids, size_t from, size_t to)
{
    char prefix[XP_ID_MAX + 16];
    size_t np = (size_t)snprintf(prefix, sizeof prefix, "%s:trial:", r->id);
    /* "$" length "\r\n" key "\r\n" a key, and each command's head */
    size_t need = (to - from) * (np + 48) + 64;
    if (*text_cap < need) {
        bson_free(*text);
        *text = bson_malloc(need);
        *text_cap = need;
    }
    for (size_t at = from; at < to; at += XP_REDIS_MGET_KEYS) {
        size_t end =
            at + XP_REDIS_MGET_KEYS < to ? at + XP_REDIS_MGET_KEYS : to;
        char *p = *text;
        *p++ = '*';
        p += s_put_u64(p, end - at + 1);
        static const char head[] = "\r\n$4\r\nMGET\r\n";
        memcpy(p, head, sizeof head - 1);
        p += sizeof head - 1;
        for (size_t i = at; i < end; i++) {
            char digits[20];
            size_t nd = s_put_u64(digits, (uint64_t)ids[i]);
            *p++ = '$';
            p += s_put_u64(p, np + nd);
            *p++ = '\r';
            *p++ = '\n';
            memcpy(p, prefix, np);
            p += np;
            memcpy(p, digits, nd);
            p += nd;
            *p++ = '\r';
            *p++ = '\n';
        }
        if (redisAppendFormattedCommand(r->c, *text, (size_t)(p - *text)) !=
            REDIS_OK)
            return -1;
    }
    int done = 0;
    while (!done)
        if (redisBufferWrite(r->c, &done) != REDIS_OK)
            return -1;
    return 0;
}

/* Calls fn (lock held) for the stored record of each of ids[0..n), in
 * that order; a key that is gone (nil) is skipped. A connection lost on
 * the way is re-established once and the reading goes on from the first
 * record not yet handed over. */
static int s_read_records(xp_redis *r, const int64_t *ids, size_t n,
                          xp_redis_record_fn fn, void *user, const char *what,
                          xp_error_t *err)
{
    const size_t per_trip = XP_REDIS_MGET_KEYS * XP_REDIS_MGETS_PER_TRIP;
    size_t pos = 0;                 /* the next record to hand over */
    size_t next = 0;                /* the first one not asked for */
    size_t flight[2], n_flight = 0; /* where the trips in flight end */
    char *text = NULL;
    size_t text_cap = 0;
    char lost[128] = "";
    bool retried = false;
    int rc = -1;
    s_sigpipe sp;
    s_sigpipe_block(&sp);
    while (pos < n) {
        if (s_ensure_connected(r, lost, what, err) != 0)
            goto cleanup;
        xp_redis_parse p = {.fn = fn, .user = user};
        bool ok = true;
        for (; ok && n_flight < 2 && next < n; next = flight[n_flight++]) {
            flight[n_flight] = next + per_trip < n ? next + per_trip : n;
            ok = s_trip_send(r, &text, &text_cap, ids, next,
                             flight[n_flight]) == 0;
        }
        /* the first trip in flight, one MGET after another */
        while (ok && pos < flight[0]) {
            p.ids = ids + pos;
            p.count = flight[0] - pos < XP_REDIS_MGET_KEYS ? flight[0] - pos
                                                           : XP_REDIS_MGET_KEYS;
            p.at = 0;
            ok = s_parse_reply(r, &p) == 0 && !p.error[0];
            if (ok && p.at != p.count) {
                p.status = XP_REDIS_PARSE_BAD; /* cannot be: all or none */
                ok = false;
            }
            pos += p.at;
        }
        if (ok) {
            flight[0] = flight[1];
            n_flight--;
            continue;
        }
        if (!s_parse_failed(r, &p, what, lost, err) || retried)
            goto cleanup;
        retried = true;
        n_flight = 0;
        next = pos; /* ask again for what was in flight */
    }
    rc = 0;
cleanup:
    s_sigpipe_restore(&sp);
    bson_free(text);
    return rc;
}

/* The ids of the whole history without listing <id>:trials when they
 * are 1 .. the counter: its size is the counter and its largest member
 * is the counter (n distinct ids in [1, n]), as they are unless a trial
 * id was given up. The list costs the server ~5 ms and the client as
 * much a 100,000 trials, before the first record is asked for. False
 * when not so, or not known so (then it is listed, which says what is
 * wrong). */
static bool s_dense_ids(xp_redis *r, int64_t **ids, size_t *n)
{
    s_batch b = {0};
    redisReply **reps = NULL;
    bool dense = false;
    s_cmd(&b);
    s_arg_str(&b, "MULTI");
    s_cmd(&b);
    s_arg_str(&b, "ZCARD");
    s_argf(&b, "%s:trials", r->id);
    s_cmd(&b);
    s_arg_str(&b, "GET");
    s_argf(&b, "%s:counter", r->id);
    s_cmd(&b);
    s_arg_str(&b, "ZREVRANGE");
    s_argf(&b, "%s:trials", r->id);
    s_arg_str(&b, "0");
    s_arg_str(&b, "0");
    s_cmd(&b);
    s_arg_str(&b, "EXEC");
    if (s_exec(r, &b, &reps, "reading history", NULL) == 0 &&
        s_check_exec(r, reps, b.n_cmds, "reading history", NULL) == 0) {
        const redisReply *e = reps[b.n_cmds - 1];
        int64_t counter = 0, top = 0;
        dense = e->elements == 3 &&
                e->element[0]->type == REDIS_REPLY_INTEGER &&
                e->element[1]->type == REDIS_REPLY_STRING &&
                xp__redis_parse_i64(e->element[1]->str, e->element[1]->len,
                                    &counter) &&
                e->element[2]->type == REDIS_REPLY_ARRAY &&
                e->element[2]->elements == 1 &&
                e->element[2]->element[0]->type == REDIS_REPLY_STRING &&
                xp__redis_parse_i64(e->element[2]->element[0]->str,
                                    e->element[2]->element[0]->len, &top) &&
                counter > 0 && e->element[0]->integer == counter &&
                top == counter && (uint64_t)counter < SIZE_MAX / 16;
        if (dense) {
            *n = (size_t)counter;
            *ids = bson_malloc(*n * sizeof **ids);
            for (size_t i = 0; i < *n; i++)
                (*ids)[i] = (int64_t)i + 1;
        }
    }
    s_replies_free(reps, b.n_cmds);
    s_batch_free(&b);
    return dense;
}

/* Every member of sorted set <id>:<set>, in id order (caller frees).
 * Lock held. */
static int s_all_ids(xp_redis *r, const char *set, int64_t **ids, size_t *n,
                     xp_error_t *err)
{
    if (strcmp(set, "trials") == 0 && s_dense_ids(r, ids, n))
        return 0;
    return s_range_ids(r, set, 0, -1, false, ids, n, NULL, "reading history",
                       err);
}

/* The records of sorted set <id>:<set> (the history: <id>:trials) in id
 * order, to fn under the lock. */
static int s_read_set(xp_redis *r, const char *set, xp_redis_record_fn fn,
                      void *user, xp_error_t *err)
{
    int64_t *ids = NULL;
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    int rc = s_all_ids(r, set, &ids, &n, err);
    if (rc == 0)
        rc = s_read_records(r, ids, n, fn, user, "reading history", err);
    pthread_mutex_unlock(&r->lock);
    bson_free(ids);
    return rc;
}

typedef struct {
    xp_redis *r;
    xp_trial_fn fn;
    xp_trial_bytes_fn bytes_fn;
    void *user;
    bool damaged_ok;
    xp_error_t *err;
} s_each_ctx;

/* A checked document for fn: with damaged_ok a record that is not BSON
 * is passed as NULL, else it is an error. */
static int s_each_doc(const uint8_t *data, size_t len, int64_t id, void *user)
{
    s_each_ctx *c = user;
    bson_t doc;
    bool readable = data && xp__bson_view_checked(&doc, data, len);
    if (!readable && !c->damaged_ok)
        return xp__error(c->err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "Redis at %s: a stored trial record of '%s' is "
                         "damaged",
                         c->r->where, c->r->id);
    return c->fn(readable ? &doc : NULL, id, c->user);
}

static int s_each_bytes(const uint8_t *data, size_t len, int64_t id, void *user)
{
    s_each_ctx *c = user;
    return c->bytes_fn(data, len, id, c->user);
}

static int s_trials_in(xp_backend *base, const char *set, bool damaged_ok,
                       xp_trial_fn fn, void *user, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_each_ctx c = {
        .r = r, .fn = fn, .user = user, .damaged_ok = damaged_ok, .err = err};
    return s_read_set(r, set, s_each_doc, &c, err);
}

static int s_trials_each(xp_backend *base, xp_trial_fn fn, void *user,
                         xp_error_t *err)
{
    return s_trials_in(base, "trials", true, fn, user, err);
}

/* The bytes as stored: history's rows check them as they are read. */
static int s_trials_each_bytes(xp_backend *base, xp_trial_bytes_fn fn,
                               void *user, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_each_ctx c = {.r = r, .bytes_fn = fn, .user = user, .err = err};
    return s_read_set(r, "trials", s_each_bytes, &c, err);
}

/* ---------------------------------------------------------------- history
 * queries. A page in trial id order without a filter is a range of ranks
 * of <id>:trials (ZRANGE / ZREVRANGE, with ZCARD for the count) and the
 * page's documents. Any other page reads every record into the
 * handle's cache of their values of the query's fields
 * (query/projection.h), which answers it and, while the history's
 * version holds, the next pages without reading a record. */

/* The history's version as the server has it now, never 0:
 * <id>:version, moved by every write of a record, hashed with
 * <id>:counter and the sizes of <id>:trials, <id>:running and
 * <id>:queued, which writers from before <id>:version move too. One
 * MULTI, so the five are of one moment. */
static int s_version(xp_redis *r, uint64_t *out, xp_error_t *err)
{
    static const char *const cmd[][2] = {
        {"GET", "version"},  {"GET", "counter"},  {"ZCARD", "trials"},
        {"HLEN", "running"}, {"ZCARD", "queued"},
    };
    const char *what = "reading the history's version";
    s_batch b = {0};
    redisReply **reps = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "MULTI");
    for (size_t i = 0; i < sizeof cmd / sizeof cmd[0]; i++) {
        s_cmd(&b);
        s_arg_str(&b, cmd[i][0]);
        s_argf(&b, "%s:%s", r->id, cmd[i][1]);
    }
    s_cmd(&b);
    s_arg_str(&b, "EXEC");
    if (s_exec(r, &b, &reps, what, err) != 0 ||
        s_check_exec(r, reps, b.n_cmds, what, err) != 0)
        goto cleanup;
    const redisReply *exec = reps[b.n_cmds - 1];
    int64_t v[sizeof cmd / sizeof cmd[0]];
    if (exec->elements != sizeof v / sizeof v[0]) {
        s_bad_reply(r, exec, what, err);
        goto cleanup;
    }
    for (size_t i = 0; i < exec->elements; i++) {
        const redisReply *e = exec->element[i];
        v[i] = -1; /* a key that is not there */
        if (e->type == REDIS_REPLY_INTEGER)
            v[i] = e->integer;
        else if (e->type == REDIS_REPLY_STRING)
            xp__redis_parse_i64(e->str, e->len, &v[i]);
    }
    uint8_t h[16];
    xp__hash128(v, sizeof v, h);
    uint64_t version;
    memcpy(&version, h, sizeof version);
    *out = version | 1;
    rc = 0;
cleanup:
    s_replies_free(reps, b.n_cmds);
    s_batch_free(&b);
    return rc;
}

/* A page in trial id order (descending: newest first). */
static int s_query_window(xp_redis *r, const xp_compiled_query *q,
                          bool descending, s_each_ctx *c, int64_t *matched)
{
    int64_t stop = -1;
    if (q->limit > 0)
        stop = q->offset > INT64_MAX - q->limit ? INT64_MAX
                                                : q->offset + q->limit - 1;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = s_range_ids(r, "trials", q->offset, stop, descending, &ids, &n,
                         matched, "reading a page of history", c->err);
    if (rc == 0)
        rc = s_read_records(r, ids, n, s_each_doc, c,
                            "reading a page of history", c->err);
    bson_free(ids);
    return rc;
}

typedef struct {
    xp_query_scan *scan;        /* NULL: building the cache only */
    xp_projection_cache *cache; /* NULL: not building one */
} s_scan_ctx;

/* A record into the scan as stored (bson_iter checks each length it
 * follows; too short for a document: damaged), or into the cache. */
static int s_scan_record(const uint8_t *data, size_t len, int64_t id,
                         void *user)
{
    s_scan_ctx *c = user;
    bson_t doc;
    bool ok = data && len >= 5 && bson_init_static(&doc, data, len);
    if (c->scan)
        xp__query_scan_add(c->scan, ok ? &doc : NULL, id);
    if (c->cache)
        xp__projection_cache_add(c->cache, ok ? &doc : NULL, id);
    return 0;
}

typedef struct {
    int64_t *v;
    size_t n, cap;
} s_ids;

static int s_page_id(const bson_t *unused, int64_t id, void *user)
{
    (void)unused;
    s_ids *p = user;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 128;
        p->v = bson_realloc(p->v, p->cap * sizeof *p->v);
    }
    p->v[p->n++] = id;
    return 0;
}

/* A page that filters or sorts, by the handle's cache (or, when it cannot
 * keep them, every record through the scan), then the page's documents
 * by id. */
static int s_query_scan(xp_redis *r, const xp_compiled_query *q, s_each_ctx *c,
                        int64_t *matched)
{
    uint64_t version = 0;
    if (s_version(r, &version, c->err) != 0)
        return -1;
    if (!r->proj)
        r->proj = xp__projection_cache_new();
    s_scan_ctx sc = {.scan = xp__query_scan_new_ids(q)};
    s_ids page = {0};
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    bool cached = xp__projection_cache_ready(r->proj, q, version);
    if (!cached)
        rc = s_all_ids(r, "trials", &ids, &n, c->err);
    /* As the local store's: the page that builds the cache is answered
     * by it, the records going into the cache only; into the scan when
     * the cache cannot keep them (past its bound: read again). */
    if (rc == 0 && !cached && xp__projection_cache_keeping(r->proj)) {
        s_scan_ctx build = {.cache = r->proj};
        rc = s_read_records(r, ids, n, s_scan_record, &build, "reading history",
                            c->err);
        cached = rc == 0 && xp__projection_cache_keeping(r->proj);
        if (rc == 0)
            xp__projection_cache_done(r->proj);
    }
    if (cached)
        xp__projection_cache_scan(r->proj, sc.scan);
    else if (rc == 0)
        rc = s_read_records(r, ids, n, s_scan_record, &sc, "reading history",
                            c->err);
    bson_free(ids);
    *matched = xp__query_scan_matched(sc.scan);
    if (rc == 0)
        xp__query_scan_emit(sc.scan, s_page_id, &page);
    xp__query_scan_destroy(&sc.scan);
    if (rc == 0)
        rc = s_read_records(r, page.v, page.n, s_each_doc, c,
                            "reading a page of history", c->err);
    bson_free(page.v);
    return rc;
}

static int s_trials_query(xp_backend *base, const xp_compiled_query *q,
                          xp_trial_fn fn, void *user, int64_t *matched,
                          xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    /* a damaged record of a page is shown, marked */
    s_each_ctx c = {
        .r = r, .fn = fn, .user = user, .damaged_ok = true, .err = err};
    int by_id = q->sort ? xp__sort_by_trial_id(q->sort) : 1;
    pthread_mutex_lock(&r->lock);
    int rc = !q->filter && by_id != 0
                 ? s_query_window(r, q, by_id < 0, &c, matched)
                 : s_query_scan(r, q, &c, matched);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

typedef struct {
    bson_t **docs;
    size_t n, cap;
} s_docs;

static int s_collect(const bson_t *doc, int64_t id, void *user)
{
    (void)id;
    s_docs *d = user;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->docs = bson_realloc(d->docs, d->cap * sizeof *d->docs);
    }
    d->docs[d->n++] = bson_copy(doc);
    return 0;
}

/* Trials accepted by a scheduler and not finished: <id>:queued. fn runs
 * without the lock (it may read from this backend). */
static int s_queued_trials(xp_backend *base,
                           int (*fn)(const bson_t *doc, void *user), void *user,
                           xp_error_t *err)
{
    s_docs d = {0};
    int rc =
        s_trials_in(base, XP_STATUS_QUEUED_NAME, false, s_collect, &d, err);
    for (size_t i = 0; rc == 0 && i < d.n; i++)
        rc = fn(d.docs[i], user) != 0 ? -1 : 0;
    for (size_t i = 0; i < d.n; i++)
        bson_destroy(d.docs[i]);
    bson_free(d.docs);
    return rc;
}

static int s_last_id(xp_backend *base, int64_t *id, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "ZREVRANGE");
    s_argf(&b, "%s:trials", r->id);
    s_arg_str(&b, "0");
    s_arg_str(&b, "0");
    pthread_mutex_lock(&r->lock);
    if (s_exec1(r, &b, &rep, "reading last trial id", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY) {
        s_bad_reply(r, rep, "reading last trial id", err);
        goto cleanup;
    }
    *id = 0;
    if (rep->elements > 0) {
        const redisReply *m = rep->element[0];
        if (m->type != REDIS_REPLY_STRING ||
            !xp__redis_parse_i64(m->str, m->len, id)) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "Redis at %s: key %s:trials holds a member that is "
                      "not a trial id",
                      r->where, r->id);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

typedef struct {
    int64_t chunk;
    const redisReply *data;
} s_chunk;

static int s_cmp_chunk(const void *a, const void *b)
{
    int64_t x = ((const s_chunk *)a)->chunk, y = ((const s_chunk *)b)->chunk;
    return (x > y) - (x < y);
}

static int s_metric_read(xp_backend *base, const char *name, int64_t trial,
                         xp_metric_points *out, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    s_chunk *chunks = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "HGETALL");
    s_argf(&b, "%s:metric:%lld:%s", r->id, (long long)trial, name);
    if (s_query(r, &b, &rep, "reading metric", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
        s_bad_reply(r, rep, "reading metric", err);
        goto cleanup;
    }
    size_t n_chunks = rep->elements / 2;
    chunks = bson_malloc0((n_chunks + 1) * sizeof *chunks);
    for (size_t i = 0; i < n_chunks; i++) {
        const redisReply *f = rep->element[2 * i];
        const redisReply *d = rep->element[2 * i + 1];
        if (f->type != REDIS_REPLY_STRING || d->type != REDIS_REPLY_STRING ||
            !xp__redis_parse_i64(f->str, f->len, &chunks[i].chunk))
            goto damaged;
        chunks[i].data = d;
    }
    qsort(chunks, n_chunks, sizeof *chunks, s_cmp_chunk);
    for (size_t c = 0; c < n_chunks; c++)
        if (xp__metric_chunk_decode((const uint8_t *)chunks[c].data->str,
                                    chunks[c].data->len, out, NULL) != 0)
            goto damaged;
    rc = 0;
    goto cleanup;
damaged:
    xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
              "Redis at %s: stored metric '%s' of trial %lld is damaged",
              r->where, name, (long long)trial);
cleanup:
    bson_free(chunks);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

/* <id>:metrics:<trial>, the set every chunk's write adds its name to. */
static int s_metric_names(xp_backend *base, int64_t trial,
                          int (*fn)(const char *name, size_t len, void *user),
                          void *user, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "SMEMBERS");
    s_argf(&b, "%s:metrics:%lld", r->id, (long long)trial);
    if (s_query(r, &b, &rep, "listing metric names", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY) {
        s_bad_reply(r, rep, "listing metric names", err);
        goto cleanup;
    }
    rc = 0;
    for (size_t i = 0; i < rep->elements && rc == 0; i++) {
        const redisReply *m = rep->element[i];
        if (m->type != REDIS_REPLY_STRING) {
            rc = s_bad_reply(r, m, "listing metric names", err);
            break;
        }
        rc = fn(m->str, m->len, user) != 0 ? -1 : 0;
    }
cleanup:
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

static int s_persisted_read(xp_backend *base, const char *step, int64_t trial,
                            xp_value *out, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "HGET");
    s_argf(&b, "%s:persisted:%lld", r->id, (long long)trial);
    s_arg_str(&b, step);
    if (s_query(r, &b, &rep, "reading persisted value", err) != 0)
        goto cleanup;
    bson_t doc;
    bson_iter_t it;
    if (rep->type == REDIS_REPLY_NIL)
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "no persisted value of step '%s' in trial %lld", step,
                  (long long)trial);
    else if (s_is_error(rep))
        s_bad_reply(r, rep, "reading persisted value", err);
    else if (s_reply_bson(rep, &doc) && bson_iter_init_find(&it, &doc, "v"))
        rc = xp__value_from_iter(out, &it, err);
    else
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "Redis at %s: stored persisted value of step '%s' in "
                  "trial %lld is damaged",
                  r->where, step, (long long)trial);
cleanup:
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

static int s_cmp_running(const void *a, const void *b)
{
    int64_t x = ((const xp_running_trial *)a)->trial_id;
    int64_t y = ((const xp_running_trial *)b)->trial_id;
    return (x > y) - (x < y);
}

static int s_running_trials(xp_backend *base, xp_running_trial **out, size_t *n,
                            xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    xp_running_trial *list = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "HGETALL");
    s_argf(&b, "%s:running", r->id);
    if (s_query(r, &b, &rep, "reading running trials", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
        s_bad_reply(r, rep, "reading running trials", err);
        goto cleanup;
    }
    size_t count = rep->elements / 2;
    list = bson_malloc0((count + 1) * sizeof *list);
    for (size_t i = 0; i < count; i++) {
        const redisReply *f = rep->element[2 * i];
        bson_t doc;
        xp_trial_record rec;
        xp_running_trial *t = &list[i];
        if (f->type != REDIS_REPLY_STRING ||
            !xp__redis_parse_i64(f->str, f->len, &t->trial_id) ||
            !s_reply_bson(rep->element[2 * i + 1], &doc) ||
            xp__record_decode(&doc, &rec, NULL) != 0) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "Redis at %s: key %s:running is damaged", r->where,
                      r->id);
            goto cleanup;
        }
        if (rec.host)
            bson_strncpy(t->host, rec.host, sizeof t->host);
        t->pid = rec.pid;
        t->pstart = (uint64_t)rec.pstart;
    }
    qsort(list, count, sizeof *list, s_cmp_running);
    *out = list;
    *n = count;
    list = NULL;
    rc = 0;
cleanup:
    bson_free(list);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

static int s_trial_interrupt(xp_backend *base, int64_t id, int64_t finished_ms,
                             const char *description, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    bson_t updated = BSON_INITIALIZER;
    int rc = -1;
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)id);
    s_cmd(&b);
    s_arg_str(&b, "GET");
    s_argf(&b, "%s:trial:%s", r->id, num);
    pthread_mutex_lock(&r->lock);
    if (s_exec1(r, &b, &rep, "reading running trial", err) != 0)
        goto cleanup;
    bson_t doc;
    if (rep->type == REDIS_REPLY_NIL) { /* nothing recorded: nothing to do */
        rc = 0;
        goto cleanup;
    }
    if (!s_reply_bson(rep, &doc) ||
        xp__record_interrupt(&doc, finished_ms, description, &updated, NULL) !=
            0) {
        if (s_is_error(rep))
            s_bad_reply(r, rep, "reading running trial", err);
        else
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "Redis at %s: stored record of trial %lld is damaged",
                      r->where, (long long)id);
        goto cleanup;
    }
    freeReplyObject(rep);
    rep = NULL;
    s_batch_free(&b);
    /* Conditional on the trial still being in <id>:running: a finish that
     * lands between the GET and here wins. */
    s_cmd(&b);
    s_arg_str(&b, "EVAL");
    s_arg_str(&b, s_interrupt_script);
    s_arg_str(&b, "3");
    s_argf(&b, "%s:running", r->id);
    s_argf(&b, "%s:trial:%s", r->id, num);
    s_argf(&b, "%s:version", r->id);
    s_arg_str(&b, num);
    s_arg(&b, bson_get_data(&updated), updated.len);
    if (s_exec1(r, &b, &rep, "marking trial interrupted", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_INTEGER) {
        s_bad_reply(r, rep, "marking trial interrupted", err);
        goto cleanup;
    }
    rc = 0;
cleanup:
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    bson_destroy(&updated);
    return rc;
}

static int s_trial_running(xp_backend *base, const xp_trial_record *rec,
                           xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    bson_t doc = BSON_INITIALIZER;
    if (xp__record_encode(rec, &doc, err) != 0) {
        bson_destroy(&doc);
        return -1;
    }
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)rec->trial_id);
    s_cmd(&b);
    s_arg_str(&b, "EVAL");
    s_arg_str(&b, s_running_script);
    s_arg_str(&b, "3");
    s_argf(&b, "%s:queued", r->id);
    s_argf(&b, "%s:trial:%s", r->id, num);
    s_argf(&b, "%s:version", r->id);
    s_arg_str(&b, num);
    s_arg(&b, bson_get_data(&doc), doc.len);
    pthread_mutex_lock(&r->lock);
    int rc = s_exec1(r, &b, &rep, "marking trial running", err);
    if (rc == 0 && rep->type != REDIS_REPLY_INTEGER)
        rc = s_bad_reply(r, rep, "marking trial running", err);
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    bson_destroy(&doc);
    return rc;
}

static int s_step_hash_get(xp_backend *base, const char *step,
                           const uint8_t input[16], uint8_t output[16],
                           bool *found, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    uint8_t field[16];
    int rc = -1;
    *found = false;
    s_hash_field(step, input, field);
    s_cmd(&b);
    s_arg_str(&b, "HGET");
    s_argf(&b, "%s:step_hashes", r->id);
    s_arg(&b, field, 16);
    if (s_query(r, &b, &rep, "reading step hashes", err) != 0)
        goto cleanup;
    if (rep->type == REDIS_REPLY_STRING && rep->len == 16) {
        memcpy(output, rep->str, 16);
        *found = true;
    } else if (s_is_error(rep)) {
        s_bad_reply(r, rep, "reading step hashes", err);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

/* Content documents are immutable (keyed by their hash): SET NX stores
 * the first copy and ignores later ones. The kind and the text rendering
 * are not stored; the local store keeps text files for diffing. */
static int s_content_put(xp_backend *base, const char *kind, const char *hash,
                         const bson_t *doc, const char *text, xp_error_t *err)
{
    (void)kind;
    (void)text;
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    s_cmd(&b);
    s_arg_str(&b, "SET");
    s_argf(&b, "%s:content:%s", r->id, hash);
    s_arg(&b, bson_get_data(doc), doc->len);
    s_arg_str(&b, "NX");
    return s_send(r, &b, "storing content", err);
}

static int s_content_get(xp_backend *base, const char *hash, bson_t *out,
                         xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "GET");
    s_argf(&b, "%s:content:%s", r->id, hash);
    if (s_query(r, &b, &rep, "reading content", err) != 0)
        goto cleanup;
    bson_t doc;
    if (rep->type == REDIS_REPLY_NIL) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "no stored content with hash %s", hash);
    } else if (s_reply_bson(rep, &doc)) {
        bson_copy_to(&doc, out);
        rc = 0;
    } else if (s_is_error(rep)) {
        s_bad_reply(r, rep, "reading content", err);
    } else {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "Redis at %s: stored content %s is damaged", r->where, hash);
    }
cleanup:
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- memo */

/* Memo entries live in the hash <id>:memo: field the 16-byte key, value
 * the 24 bytes of xp__memo_value_pack. */
static int s_memo_get(xp_backend *base, xp_memo_entry *e, size_t n, bool *found,
                      xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "HMGET");
    s_argf(&b, "%s:memo", r->id);
    for (size_t i = 0; i < n; i++)
        s_arg(&b, e[i].key, 16);
    if (s_query(r, &b, &rep, "reading memo entries", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
        s_bad_reply(r, rep, "reading memo entries", err);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            found[i] = xp__memo_value_unpack(rep->element[i]->str,
                                             rep->element[i]->len, &e[i]);
    rc = 0;
cleanup:
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

static int s_memo_put(xp_backend *base, const xp_memo_entry *e, size_t n,
                      xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    s_batch b = {0};
    s_cmd(&b);
    s_arg_str(&b, "HSET");
    s_argf(&b, "%s:memo", r->id);
    for (size_t i = 0; i < n; i++) {
        char *v = bson_malloc(XP_MEMO_VALUE_SIZE);
        xp__memo_value_pack(&e[i], (uint8_t *)v);
        s_arg(&b, e[i].key, 16);
        s_arg_own(&b, v, XP_MEMO_VALUE_SIZE);
    }
    return s_send(r, &b, "storing memo entries", err);
}

static int s_memo_each(xp_backend *base,
                       int (*fn)(const xp_memo_entry *e, void *user),
                       void *user, xp_error_t *err)
{
    xp_redis *r = (xp_redis *)base;
    char cursor[32] = "0";
    int rc = 0;
    /* Collected first: fn may call back into the backend. */
    xp_memo_entry *all = NULL;
    size_t n = 0, cap = 0;
    do {
        s_batch b = {0};
        redisReply *rep = NULL;
        s_cmd(&b);
        s_arg_str(&b, "HSCAN");
        s_argf(&b, "%s:memo", r->id);
        s_arg_str(&b, cursor);
        s_arg_str(&b, "COUNT");
        s_arg_str(&b, "1000");
        rc = s_query(r, &b, &rep, "listing memo entries", err);
        s_batch_free(&b);
        if (rc != 0)
            break;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[0]->len >= sizeof cursor ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = s_bad_reply(r, rep, "listing memo entries", err);
            freeReplyObject(rep);
            break;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = '\0';
        redisReply *kv = rep->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            xp_memo_entry e;
            if (kv->element[i]->type != REDIS_REPLY_STRING ||
                kv->element[i]->len != 16 ||
                kv->element[i + 1]->type != REDIS_REPLY_STRING ||
                !xp__memo_value_unpack(kv->element[i + 1]->str,
                                       kv->element[i + 1]->len, &e))
                continue;
            memcpy(e.key, kv->element[i]->str, 16);
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                all = bson_realloc(all, cap * sizeof *all);
            }
            all[n++] = e;
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (fn(&all[i], user) != 0)
            break;
    bson_free(all);
    return rc;
}

/* One command over a key of this experiment and n 16-byte arguments. */
static int s_simple(xp_redis *r, const char *cmd, const char *key,
                    const uint8_t (*args)[16], size_t n, const char *what,
                    xp_error_t *err)
{
    s_batch b = {0};
    s_cmd(&b);
    s_arg_str(&b, cmd);
    s_argf(&b, "%s:%s", r->id, key);
    for (size_t i = 0; i < n; i++)
        s_arg(&b, args[i], 16);
    return s_send(r, &b, what, err);
}

static int s_memo_delete(xp_backend *base, const uint8_t (*keys)[16], size_t n,
                         xp_error_t *err)
{
    return s_simple((xp_redis *)base, "HDEL", "memo", keys, n,
                    "removing memo entries", err);
}

static int s_persisted_drop(xp_backend *base, int64_t trial, xp_error_t *err)
{
    char key[48];
    snprintf(key, sizeof key, "persisted:%lld", (long long)trial);
    return s_simple((xp_redis *)base, "DEL", key, NULL, 0,
                    "removing persisted values", err);
}

static void s_close(xp_backend *base)
{
    xp_redis *r = (xp_redis *)base;
    if (r->c)
        redisFree(r->c);
    xp__projection_cache_destroy(&r->proj);
    s_target_clear(&r->target);
    pthread_mutex_destroy(&r->lock);
    bson_free(r->where);
    bson_free(r->id);
    bson_free(r);
}

static const xp_backend_ops s_ops = {
    .name = "redis",
    .trial_begin = s_trial_begin,
    .trial_finish = s_trial_finish,
    .metric_flush = s_metric_flush,
    .trial_get = s_trial_get,
    .trials_each = s_trials_each,
    .trials_each_bytes = s_trials_each_bytes,
    .trials_query = s_trials_query,
    .queued_trials = s_queued_trials,
    .trial_running = s_trial_running,
    .last_id = s_last_id,
    .metric_read = s_metric_read,
    .metric_names = s_metric_names,
    .persisted_read = s_persisted_read,
    .running_trials = s_running_trials,
    .trial_interrupt = s_trial_interrupt,
    .step_hash_get = s_step_hash_get,
    .content_put = s_content_put,
    .content_get = s_content_get,
    .memo_get = s_memo_get,
    .memo_put = s_memo_put,
    .memo_each = s_memo_each,
    .memo_delete = s_memo_delete,
    .persisted_drop = s_persisted_drop,
    .close = s_close,
};

/* Checks <id>:meta of an existing experiment, or creates it. */
static int s_register(xp_redis *r, xp_error_t *err);

/* host:port, [v6]:port or the socket path, for messages. */
static char *s_where(const s_target *t)
{
    if (t->socket)
        return bson_strdup(t->socket);
    return strchr(t->host, ':')
               ? bson_strdup_printf("[%s]:%d", t->host, t->port)
               : bson_strdup_printf("%s:%d", t->host, t->port);
}

static int s_init_meta(xp_redis *r, bool must_exist, xp_error_t *err)
{
    s_batch b = {0};
    redisReply *rep = NULL;
    int rc = -1;
    s_cmd(&b);
    s_arg_str(&b, "HMGET");
    s_argf(&b, "%s:meta", r->id);
    s_arg_str(&b, "format");
    s_arg_str(&b, "schema");
    pthread_mutex_lock(&r->lock);
    if (s_exec1(r, &b, &rep, "reading store metadata", err) != 0)
        goto cleanup;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        s_bad_reply(r, rep, "reading store metadata", err);
        goto cleanup;
    }
    const redisReply *format = rep->element[0], *schema = rep->element[1];
    if (format->type == REDIS_REPLY_STRING) {
        if (strcmp(format->str, XP_REDIS_FORMAT) != 0) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "Redis at %s: key %s:meta is not an xp store (format "
                      "'%.40s')",
                      r->where, r->id, format->str);
            goto cleanup;
        }
        if (schema->type != REDIS_REPLY_STRING ||
            strcmp(schema->str, XP_REDIS_SCHEMA) != 0) {
            xp__error(
                err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                "Redis at %s: experiment '%s' has unsupported schema "
                "version '%.20s' (this libxp reads version " XP_REDIS_SCHEMA
                ")",
                r->where, r->id,
                schema->type == REDIS_REPLY_STRING ? schema->str : "");
            goto cleanup;
        }
        rc = 0;
        goto cleanup;
    }
    if (must_exist) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                  "experiment '%s' not found on %s", r->id,
                  r->base.description);
        goto cleanup;
    }
    freeReplyObject(rep);
    rep = NULL;
    s_batch_free(&b);
    s_cmd(&b);
    s_arg_str(&b, "HSET");
    s_argf(&b, "%s:meta", r->id);
    s_arg_str(&b, "format");
    s_arg_str(&b, XP_REDIS_FORMAT);
    s_arg_str(&b, "schema");
    s_arg_str(&b, XP_REDIS_SCHEMA);
    s_arg_str(&b, "experiment");
    s_arg_str(&b, r->id);
    s_arg_str(&b, "created_by");
    s_arg_str(&b, "libxp " XP_VERSION_STRING);
    if (s_exec1(r, &b, &rep, "creating store metadata", err) != 0)
        goto cleanup;
    if (s_is_error(rep)) {
        s_bad_reply(r, rep, "creating store metadata", err);
        goto cleanup;
    }
    rc = 0;
cleanup:
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc == 0 && !must_exist ? s_register(r, err) : rc;
}

/* The experiments of a Redis database, for a restarted scheduler: a set
 * of ids, so that nothing needs KEYS or SCAN. */
#define XP_REDIS_EXPERIMENTS "xp:experiments"

static int s_register(xp_redis *r, xp_error_t *err)
{
    s_batch b = {0};
    redisReply *rep = NULL;
    s_cmd(&b);
    s_arg_str(&b, "SADD");
    s_arg_str(&b, XP_REDIS_EXPERIMENTS);
    s_arg_str(&b, r->id);
    pthread_mutex_lock(&r->lock);
    int rc = s_exec1(r, &b, &rep, "registering the experiment", err);
    if (rc == 0 && s_is_error(rep))
        rc = s_bad_reply(r, rep, "registering the experiment", err);
    pthread_mutex_unlock(&r->lock);
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    return rc;
}

int xp__backend_redis_experiments(const char *uri,
                                  int (*fn)(const char *id, void *user),
                                  void *user, xp_error_t *err)
{
    s_target t;
    if (s_parse_uri(uri, &t, err) != 0)
        return -1;
    xp_redis *r = bson_malloc0(sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->target = t;
    r->id = bson_strdup("xp");
    r->where = s_where(&t);
    s_batch b = {0};
    redisReply *rep = NULL;
    s_cmd(&b);
    s_arg_str(&b, "SMEMBERS");
    s_arg_str(&b, XP_REDIS_EXPERIMENTS);
    int rc = s_exec1(r, &b, &rep, "listing experiments", err);
    if (rc == 0 && rep->type != REDIS_REPLY_ARRAY)
        rc = s_bad_reply(r, rep, "listing experiments", err);
    for (size_t i = 0; rc == 0 && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_STRING && xp_check_id(e->str, NULL) == 0)
            rc = fn(e->str, user);
    }
    if (rep)
        freeReplyObject(rep);
    s_batch_free(&b);
    s_close(&r->base);
    return rc;
}

int xp__backend_redis_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err)
{
    *out = NULL;
    if (xp_check_id(id, err) != 0)
        return -1;
    s_target t;
    if (s_parse_uri(uri, &t, err) != 0)
        return -1;
    xp_redis *r = bson_malloc0(sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->base.ops = &s_ops;
    r->target = t;
    r->id = bson_strdup(id);
    r->where = s_where(&t);
    r->base.description = s_describe(&t);
    r->base.dir = bson_strdup(cache_dir);
    if (s_init_meta(r, must_exist, err) != 0) {
        bson_free(r->base.description);
        bson_free(r->base.dir);
        s_close(&r->base);
        return -1;
    }
    *out = &r->base;
    return 0;
}
