/* capture/capture.h — what a trial records of its code and environment:
 * storing code and environment once per distinct content, and logging
 * their changes. (The code document itself: code_doc.h.) */
#ifndef XP_CAPTURE_CAPTURE_H
#define XP_CAPTURE_CAPTURE_H

#include "xp/xp.h"

#include <bson/bson.h>

/* Stores code and environment contents once per handle; logs code
 * changes against the previous trial. */
int xp__capture_before_trial(xp_experiment *ex, xp_error_t *err);
/* Logs environment changes against the last trial (at open). */
void xp__environment_check(xp_experiment *ex);

#endif /* XP_CAPTURE_CAPTURE_H */
