/* client_lazy.c — libxp.so's xp_client_* and xp_keygen: each forwards to
 * the remote module (client.c in libxp-remote.so), loaded on first call,
 * so that ZeroMQ and CURVE are loaded only by a program that talks to a
 * scheduler. The static library links client.c itself instead. */
#include "remote/client.h"

#include "util/error.h"
#include "util/module.h"

static const xp_client_module *s_remote(xp_error_t *err)
{
    return xp__module_ops("remote", "Scheduler support (ZeroMQ)", err);
}

int xp_client_connect(xp_client **out, const char *endpoint, int timeout_ms,
                      xp_error_t *err)
{
    return xp_client_connect_secure(out, endpoint, timeout_ms, NULL, NULL, err);
}

int xp_client_connect_secure(xp_client **out, const char *endpoint,
                             int timeout_ms, const char *key,
                             const char *server_key, xp_error_t *err)
{
    *out = NULL;
    const xp_client_module *m = s_remote(err);
    return m ? m->connect_secure(out, endpoint, timeout_ms, key, server_key,
                                 err)
             : -1;
}

void xp_client_destroy(xp_client **c)
{
    if (!c || !*c)
        return;
    /* A client exists, so the module is loaded. */
    s_remote(NULL)->destroy(c);
}

int xp_client_submit(xp_client *c, const char *experiment,
                     const xp_value *trials, const char *code_hash,
                     int64_t *batch, int64_t **ids, size_t *n, xp_error_t *err)
{
    return xp__client_submit_code(c, experiment, trials, code_hash, NULL, batch,
                                  ids, n, err);
}

int xp__client_submit_code(xp_client *c, const char *experiment,
                           const xp_value *trials, const char *code_hash,
                           const bson_t *code, int64_t *batch, int64_t **ids,
                           size_t *n, xp_error_t *err)
{
    *ids = NULL;
    *n = 0;
    const xp_client_module *m = s_remote(err);
    return m ? m->submit_code(c, experiment, trials, code_hash, code, batch,
                              ids, n, err)
             : -1;
}

int xp_client_wait(xp_client *c, int64_t batch, int64_t *cursor, int wait_ms,
                   xp_progress *p, xp_value **finished, xp_error_t *err)
{
    if (finished)
        *finished = NULL;
    const xp_client_module *m = s_remote(err);
    return m ? m->wait(c, batch, cursor, wait_ms, p, finished, err) : -1;
}

int xp_client_progress(xp_client *c, int64_t batch, int64_t *cursor,
                       xp_progress *p, xp_value **finished, xp_error_t *err)
{
    return xp_client_wait(c, batch, cursor, 0, p, finished, err);
}

int xp_keygen(const char *dir, const char *name, char **public_path,
              xp_error_t *err)
{
    *public_path = NULL;
    const xp_client_module *m = s_remote(err);
    return m ? m->keygen(dir, name, public_path, err) : -1;
}
