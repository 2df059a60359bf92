/* capture/capture.h — what a trial records of its code and environment:
 * storing code and environment once per distinct content, and logging
 * their changes. (The code document itself: code_doc.h.) */
#ifndef XP_CAPTURE_CAPTURE_H
#define XP_CAPTURE_CAPTURE_H

#include "xp/xp.h"

#include <bson/bson.h>

/* XXH128 of a BSON document's bytes as 32 hex characters. */
void xp__hash_hex(const bson_t *doc, char out[33]);
/* Line rendering of a document (for text files and diffs). Caller frees. */
char *xp__render_text(const bson_t *doc);
/* Stores code and environment contents once per handle; logs code
 * changes against the previous trial. */
int xp__capture_before_trial(xp_experiment *ex, xp_error_t *err);
/* Logs environment changes against the last trial (at open). */
void xp__environment_check(xp_experiment *ex);

#endif /* XP_CAPTURE_CAPTURE_H */
