/* routes.h — the JSON API of xp-dashboard (/api/..., the contract in
 * docs/dashboard.md), answered through the public libxp API only. */
#ifndef XPD_ROUTES_H
#define XPD_ROUTES_H

#include "http.h"

#include <xp/xp.h>

#include <stddef.h>

/* Routes over backend (as xp_open_options'); ids (n of them, copied):
 * only these experiments are listed and served, or every experiment of
 * the backend when n is 0. At most max_open experiments are open at
 * once. Caller owns *out. */
int xpd_routes_new(xpd_routes **out, const char *backend,
                   const char *const *ids, size_t n, size_t max_open,
                   xp_error_t *err);
/* NULL-safe; sets *r to NULL. */
void xpd_routes_destroy(xpd_routes **r);
/* Answers the API request for path, the part after "/api/". */
void xpd_routes_api(xpd_routes *routes, xpd_request *req, const char *path);

#endif /* XPD_ROUTES_H */
