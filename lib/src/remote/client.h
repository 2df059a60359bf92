/* remote/client.h — the client side of SUBMIT and STATUS, and the remote
 * module that carries it (with ZeroMQ) for libxp.so. */
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

/* The remote module (libxp-remote.so: client.c, keys.c, message.c): what
 * libxp.so's xp_client_* and xp_keygen (client_lazy.c) forward to, so a
 * program loads ZeroMQ only when it talks to a scheduler. */
typedef struct {
    int (*connect_secure)(xp_client **out, const char *endpoint, int timeout_ms,
                          const char *key, const char *server_key,
                          xp_error_t *err);
    void (*destroy)(xp_client **c);
    int (*submit_code)(xp_client *c, const char *experiment,
                       const xp_value *trials, const char *code_hash,
                       const bson_t *code, int64_t *batch, int64_t **ids,
                       size_t *n, xp_error_t *err);
    int (*wait)(xp_client *c, int64_t batch, int64_t *cursor, int wait_ms,
                xp_progress *p, xp_value **finished, xp_error_t *err);
    int (*keygen)(const char *dir, const char *name, char **public_path,
                  xp_error_t *err);
} xp_client_module;

#endif /* XP_REMOTE_CLIENT_H */
