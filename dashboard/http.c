/* http.c — the server: libmicrohttpd with its internal thread pool on a
 * socket main.c bound. Each request is checked in this order: method,
 * target length and bytes, Host (on loopback), credentials; then it goes
 * to the API routes or to a static file. Every response gets the
 * security headers; a request is logged at debug level when it ends,
 * at warning when it failed on the server's side. */
#include "http.h"

#include "routes.h"
#include "util/error.h"
#include "util/log.h"

#include <microhttpd.h>

#include <bson/bson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_CSP                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src "        \
    "'self' data:; connect-src 'self'; base-uri 'none'; form-action "          \
    "'none'; frame-ancestors 'none'"
#define S_JSON_TYPE "application/json; charset=utf-8"
#define S_PAGE_FLAGS                                                           \
    (XP_JSON_ISO_DATES | XP_JSON_SAFE_INTEGERS | XP_JSON_NONFINITE_STRINGS |   \
     XP_JSON_BRIEF_BLOBS)

struct xpd_http {
    struct MHD_Daemon *daemon;
    xpd_http_config c;
};

struct xpd_request {
    struct MHD_Connection *conn;
    xpd_http *http;
    double started;
    size_t uri_len;
    bool nul_in_path; /* %00 in the path: refused */
    char shown[200];  /* the target for the log, cut */
    char method[8];   /* for the log, cut */
    bool head_seen;   /* the first call of the handler is past */
    bool queued;
    bool api;
    /* The reply the routes gave. */
    int status;
    const char *type;
    char *body;
    size_t len;
};

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- replies */

void xpd_reply(xpd_request *r, int status, const char *type, char *body,
               size_t len)
{
    xp_free(r->body);
    r->status = status;
    r->type = type;
    r->body = body;
    r->len = len;
}

/* json with '<', '>' and '&' as \u escapes: they only ever occur inside
 * strings, and so no page can take a response for markup. Takes json. */
static char *s_html_safe(char *json, size_t *len)
{
    size_t n = 0, extra = 0;
    for (; json[n]; n++)
        extra += json[n] == '<' || json[n] == '>' || json[n] == '&';
    *len = n + extra * 5;
    if (extra == 0)
        return json;
    char *out = bson_malloc(*len + 1), *o = out;
    for (const char *p = json; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '&') {
            o += sprintf(o, "\\u%04x", (unsigned)*p);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    xp_free(json);
    return out;
}

void xpd_reply_json(xpd_request *r, int status, const xp_value *v)
{
    char *json = xp_value_to_json_ex(v, S_PAGE_FLAGS);
    if (!json) {
        xpd_reply_error(r, 500, "the answer holds text that is not UTF-8");
        return;
    }
    size_t len;
    json = s_html_safe(json, &len);
    xpd_reply(r, status, S_JSON_TYPE, json, len);
}

void xpd_reply_error(xpd_request *r, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    xp_value *v = xp_value_new();
    xp_set_document(v);
    if (xp_set_string(xp_document_set(v, "error"), msg) != 0)
        xp_set_string(xp_document_set(v, "error"), "(message not UTF-8)");
    char *json = xp_value_to_json_ex(v, S_PAGE_FLAGS);
    xp_value_destroy(&v);
    size_t len;
    json = s_html_safe(json, &len);
    xpd_reply(r, status, S_JSON_TYPE, json, len);
}

const char *xpd_request_arg(xpd_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---------------------------------------------------------------- sending */

static void s_security_headers(struct MHD_Response *resp, bool api)
{
    MHD_add_response_header(resp, "Content-Security-Policy", S_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy",
                            "same-origin");
    MHD_add_response_header(resp, "Cache-Control",
                            api ? "no-store" : "no-cache");
}

/* Queues resp (destroying it) with the headers every response has. */
static enum MHD_Result s_send(xpd_request *r, int status,
                              struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    s_security_headers(resp, r->api);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate",
                                "Basic realm=\"xp\", charset=\"UTF-8\"");
    if (status == 405)
        MHD_add_response_header(resp, "Allow", "GET, HEAD");
    r->queued = true;
    r->status = status;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Sends the reply the request holds. */
static enum MHD_Result s_send_reply(xpd_request *r)
{
    struct MHD_Response *resp =
        r->body ? MHD_create_response_from_buffer_with_free_callback(
                      r->len, r->body, xp_free)
                : MHD_create_response_from_buffer(0, (void *)"",
                                                  MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->body = NULL; /* the response frees it */
    if (r->type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
    return s_send(r, r->status, resp);
}

static enum MHD_Result s_send_error(xpd_request *r, int status, const char *msg)
{
    xpd_reply_error(r, status, "%s", msg);
    return s_send_reply(r);
}

/* A static file, or 304 when the client holds this version. */
static enum MHD_Result s_send_asset(xpd_request *r, const char *name)
{
    xpd_asset_ref ref;
    if (!xpd_assets_find(r->http->c.assets, name, &ref))
        return s_send_error(r, 404, "no such page");
    const char *held = MHD_lookup_connection_value(
        r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = held && strcmp(held, ref.file.etag) == 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        fresh ? 0 : ref.file.size, fresh ? (void *)"" : (void *)ref.file.data,
        ref.owned ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, ref.file.etag);
        if (!fresh)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    ref.file.type);
        r->len = fresh ? 0 : ref.file.size;
    }
    xpd_asset_free(&ref);
    return s_send(r, fresh ? 304 : 200, resp);
}

/* ---------------------------------------------------------------- checks */

typedef struct {
    size_t n;
    bool bad; /* a NUL in a name or value */
} s_arg_count;

static enum MHD_Result s_count_arg(void *cls, enum MHD_ValueKind kind,
                                   const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    s_arg_count *c = cls;
    c->n++;
    c->bad |= strlen(key) != key_size || (value && strlen(value) != value_size);
    return MHD_YES;
}

/* host (a Host header) names a loopback address: localhost, 127.x.y.z or
 * [::1], with or without a port. Stops DNS rebinding: a page of another
 * site whose name resolves to 127.0.0.1 sends its own Host. */
static bool s_loopback_host(const char *host)
{
    char name[256];
    size_t n = strlen(host);
    if (n >= sizeof name)
        return false;
    memcpy(name, host, n + 1);
    if (name[0] == '[') {
        char *end = strchr(name, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
        end[1] = '\0';
        return strcmp(name, "[::1]") == 0;
    }
    name[strcspn(name, ":")] = '\0';
    if (strcasecmp(name, "localhost") == 0)
        return true;
    unsigned a, b, c, d;
    char tail;
    return sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 &&
           a == 127 && b < 256 && c < 256 && d < 256;
}

/* 0 when the credentials are good (or none are needed), else a 401 has
 * been queued. */
static enum MHD_Result s_authorize(xpd_request *r, bool *ok)
{
    *ok = true;
    if (!r->http->c.auth)
        return MHD_YES;
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(r->conn, &password);
    *ok = user && password && xpd_auth_check(r->http->c.auth, user, password);
    if (password) {
        memset(password, 0, strlen(password));
        MHD_free(password);
    }
    if (user)
        MHD_free(user);
    return *ok ? MHD_YES : s_send_error(r, 401, "authentication required");
}

/* Static file name of path ("/" is index.html), or NULL. */
static const char *s_static_name(const char *path)
{
    if (strcmp(path, "/") == 0)
        return "index.html";
    return path[0] == '/' && !strchr(path + 1, '/') ? path + 1 : NULL;
}

static enum MHD_Result s_answer(xpd_request *r, const char *url)
{
    const xpd_http_config *c = &r->http->c;
    if (r->uri_len > XPD_URI_MAX)
        return s_send_error(r, 414, "request target longer than 8 KiB");
    s_arg_count args = {0, false};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, s_count_arg,
                                &args);
    if (r->nul_in_path || args.bad)
        return s_send_error(r, 400, "NUL byte in the request target");
    if (args.n > XPD_ARGS_MAX)
        return s_send_error(r, 400, "more than 64 query arguments");
    const char *host =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    if (c->loopback_only && host && !s_loopback_host(host))
        return s_send_error(r, 403,
                            "this server answers requests for localhost, "
                            "127.0.0.1 or [::1] only");
    bool ok;
    enum MHD_Result rc = s_authorize(r, &ok);
    if (!ok)
        return rc;
    if (r->api) {
        xpd_routes_api(c->routes, r, url[4] ? url + 5 : "");
        if (!r->type && !r->body)
            xpd_reply_error(r, 500, "no answer");
        return s_send_reply(r);
    }
    const char *name = s_static_name(url);
    return name ? s_send_asset(r, name) : s_send_error(r, 404, "no such page");
}

/* ---------------------------------------------------------------- MHD */

/* Whether the request announces a body (GET and HEAD have none here). */
static bool s_has_body(struct MHD_Connection *conn)
{
    const char *len = MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (len && strcmp(len, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* libmicrohttpd calls this once the head is read, then again once the
 * body is: a response queued on the first call closes the connection, so
 * only refusals are (a method other than GET or HEAD, a body), and
 * answers wait for the second. */
static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload;
    xpd_request *r = *req_cls;
    if (!r)
        return MHD_NO;
    r->conn = conn;
    if (r->queued) { /* a body after the answer: read and dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->head_seen) {
        r->head_seen = true;
        snprintf(r->method, sizeof r->method, "%s", method);
        r->api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return s_send_error(r, 405, "only GET and HEAD are answered");
        if (s_has_body(conn))
            return s_send_error(r, 413, "a GET request has no body");
        return MHD_YES;
    }
    return s_answer(r, url);
}

/* Called with the raw request target before it is parsed: the request's
 * state starts here. */
static void *s_uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    xpd_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->http = cls;
    r->started = s_now();
    r->uri_len = strlen(uri);
    size_t path_len = strcspn(uri, "?");
    for (size_t i = 0; i + 2 < path_len; i++)
        if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
            r->nul_in_path = true;
    size_t shown =
        r->uri_len < sizeof r->shown - 1 ? r->uri_len : sizeof r->shown - 4;
    memcpy(r->shown, uri, shown);
    if (shown < r->uri_len)
        memcpy(r->shown + shown, "...", 4);
    for (char *p = r->shown; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return r;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    xpd_request *r = *req_cls;
    if (!r)
        return;
    double ms = (s_now() - r->started) * 1e3;
    bool failed =
        r->status >= 500 || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    xp_log_level level = r->status >= 500 ? XP_LOG_WARNING : XP_LOG_DEBUG;
    if (xp__log_enabled(level))
        xp__log(level, "%s %s %d %zu bytes %.1f ms%s", r->method, r->shown,
                r->status, r->len, ms,
                failed && r->status < 500 ? " (connection ended)" : "");
    xp_free(r->body);
    free(r);
    *req_cls = NULL;
}

/* libmicrohttpd's own messages (a client that broke the protocol, a
 * socket error), at warning level, one line each. */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    xp__log(XP_LOG_WARNING, "http: %s", line);
}

int xpd_http_start(xpd_http **out, const xpd_http_config *c, xp_error_t *err)
{
    *out = NULL;
    xpd_http *h = calloc(1, sizeof *h);
    if (!h)
        return xp__enomem(err);
    h->c = *c;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, s_handler, h, MHD_OPTION_EXTERNAL_LOGGER,
        s_mhd_log, h, MHD_OPTION_LISTEN_SOCKET, c->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads,
        MHD_OPTION_CONNECTION_LIMIT, c->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, c->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->connection_memory,
        MHD_OPTION_URI_LOG_CALLBACK, s_uri_seen, h, MHD_OPTION_NOTIFY_COMPLETED,
        s_completed, h, MHD_OPTION_END);
    if (!h->daemon) {
        free(h);
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "libmicrohttpd did not start (see the lines above)");
    }
    *out = h;
    return 0;
}

void xpd_http_stop(xpd_http **ph)
{
    if (!ph || !*ph)
        return;
    MHD_stop_daemon((*ph)->daemon);
    free(*ph);
    *ph = NULL;
}
