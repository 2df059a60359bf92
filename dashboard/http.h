/* http.h — xp-dashboard's HTTP layer over libmicrohttpd: a thread pool
 * answering GET and HEAD only, with bounded connections, memory per
 * connection, timeouts and URL lengths, security headers on every
 * response, Basic authentication, and JSON error bodies. Routes see a
 * request only through the functions below, never libmicrohttpd. */
#ifndef XPD_HTTP_H
#define XPD_HTTP_H

#include "assets.h"
#include "auth.h"

#include <xp/xp.h>

#include <stdbool.h>
#include <stddef.h>

/* Longest request target (path and query) answered; longer is 414. */
#define XPD_URI_MAX 8192
/* Most query arguments a request may have. */
#define XPD_ARGS_MAX 64

typedef struct xpd_request xpd_request;
typedef struct xpd_routes xpd_routes;

typedef struct {
    int listen_fd; /* bound and listening */
    int threads;   /* the pool */
    unsigned max_connections;
    unsigned timeout_s;       /* idle connection timeout */
    size_t connection_memory; /* per connection, for the request head */
    bool loopback_only;       /* Host must name a loopback address */
    xpd_auth *auth;           /* NULL: no authentication */
    xpd_assets *assets;
    xpd_routes *routes;
} xpd_http_config;

typedef struct xpd_http xpd_http;

/* Starts serving c (whose pointers must outlive the server). Caller owns
 * *out (xpd_http_stop). */
int xpd_http_start(xpd_http **out, const xpd_http_config *c, xp_error_t *err);
/* Stops accepting, waits for the requests being answered; NULL-safe. */
void xpd_http_stop(xpd_http **h);

/* ---- for routes */

/* Query argument name (decoded), or NULL when absent. Request-owned. */
const char *xpd_request_arg(xpd_request *r, const char *name);
/* Answers with body (len bytes, freed with xp_free by the server) of
 * content type type. */
void xpd_reply(xpd_request *r, int status, const char *type, char *body,
               size_t len);
/* Answers with v as JSON (xp_value_to_json_ex with the page flags, '<',
 * '>' and '&' written as \u escapes). */
void xpd_reply_json(xpd_request *r, int status, const xp_value *v);
/* Answers {"error": message}. */
void xpd_reply_error(xpd_request *r, int status, const char *fmt, ...)
    XP_PRINTF(3, 4);

#endif /* XPD_HTTP_H */
