/* util/log.h — libxp's log calls, sent to the handler set with
 * xp_log_set_handler. */
#ifndef XP_UTIL_LOG_H
#define XP_UTIL_LOG_H

#include "xp/xp.h"

void xp__log(xp_log_level level, const char *fmt, ...) XP_PRINTF(2, 3);
bool xp__log_enabled(xp_log_level level);

#endif /* XP_UTIL_LOG_H */
