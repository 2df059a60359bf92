/* capture/capture.h — what a trial records of its code and environment:
 * storing code and environment once per distinct content, and logging
 * their changes. (The code document itself: code_doc.h.) */
#ifndef XP_CAPTURE_CAPTURE_H
#define XP_CAPTURE_CAPTURE_H

#include "xp/xp.h"

#include <bson/bson.h>

/* Stores code and environment contents once per handle (not again when
 * the previous trial refers to the same); logs code and environment
 * changes against the previous trial at the first trial of a handle. */
int xp__capture_before_trial(xp_experiment *ex, xp_error_t *err);

#endif /* XP_CAPTURE_CAPTURE_H */
