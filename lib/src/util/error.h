/* util/error.h — filling xp_error_t: every failure path of libxp
 * returns through these. */
#ifndef XP_UTIL_ERROR_H
#define XP_UTIL_ERROR_H

#include "xp/xp.h"

#include <stdarg.h>

/* Fills err (may be NULL) and returns -1, so callers can
 * `return xp__error(err, ...);`. */
int xp__error(xp_error_t *err, uint32_t domain, uint32_t code, const char *fmt,
              ...) XP_PRINTF(4, 5);
int xp__verror(xp_error_t *err, uint32_t domain, uint32_t code, const char *fmt,
               va_list ap);
int xp__enomem(xp_error_t *err);
void xp__error_clear(xp_error_t *err);

#endif /* XP_UTIL_ERROR_H */
