/* remote/client.h — the client side of SUBMIT and STATUS. */
#ifndef XP_REMOTE_CLIENT_H
#define XP_REMOTE_CLIENT_H

#include "xp/xp.h"

#include <bson/bson.h>

/* xp_client_submit that also sends the code document of code_hash, so
 * that the scheduler can queue the trials even before a worker with that
 * code connects (they wait for one). */
int xp__client_submit_code(xp_client *c, const char *experiment,
                           const xp_value *trials, const char *code_hash,
                           const bson_t *code, int64_t *batch, int64_t **ids,
                           size_t *n, xp_error_t *err);

#endif /* XP_REMOTE_CLIENT_H */
