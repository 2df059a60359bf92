/* handles.h — the experiments xp-dashboard reads, opened read-only on
 * first use and kept open (at most max_open at once, the least recently
 * used idle one closed to make room), shared by the request threads. */
#ifndef XPD_HANDLES_H
#define XPD_HANDLES_H

#include <xp/xp.h>

#include <stddef.h>

typedef struct xpd_handles xpd_handles;

/* backend: as xp_open_options' (copied). Caller owns *out. */
int xpd_handles_new(xpd_handles **out, const char *backend, size_t max_open,
                    xp_error_t *err);
/* NULL-safe; sets *h to NULL. No handle may be acquired. */
void xpd_handles_destroy(xpd_handles **h);
/* Experiment id, open and held until xpd_handles_release; NULL with err:
 * XP_ENOTFOUND for an experiment that does not exist, XP_ESTATE when
 * max_open experiments are all in use by other requests. */
xp_experiment *xpd_handles_acquire(xpd_handles *h, const char *id,
                                   xp_error_t *err);
void xpd_handles_release(xpd_handles *h, xp_experiment *ex);

#endif /* XPD_HANDLES_H */
